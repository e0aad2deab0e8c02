/*
 * TLS for host connections (GnuTLS, x509; docs/protocol.md 1.5).
 *
 * The credentials directory follows QEMU's tls-creds-x509 layout for a
 * server: server-cert.pem and server-key.pem, and ca-cert.pem, which is
 * needed only to verify the hosts' client certificates.
 */
#ifndef PCIEFW_TLS_H
#define PCIEFW_TLS_H

#include <stdbool.h>
#include <stddef.h>

#include "stream.h"

struct pf_tls;

/* Load the credentials in @dir; NULL with @err set on failure. */
struct pf_tls *pf_tls_new(const char *dir, bool verify_peer,
			  char *err, size_t errlen);
void pf_tls_free(struct pf_tls *tls);

/* A server-side TLS stream over the connected socket @fd. */
struct pf_stream *pf_tls_stream(struct pf_tls *tls, int fd,
				char *err, size_t errlen);

/*
 * Drive the handshake without blocking: PF_OK once it is done (and, when
 * asked, the host's certificate verified), PF_AGAIN with *@want_write
 * telling which readiness to wait for, or an error with @err set to one
 * line that says why: PF_ERR_NO_HELLO when the host speaks the protocol in
 * plain text (its first byte is no TLS record), PF_ERR_PEER when the
 * session is up but the host's certificate is not trusted (both can still
 * be told why), PF_ERR_CLOSED when the host closed, PF_ERR_INVALID for a
 * failed handshake.
 */
int pf_tls_handshake(struct pf_stream *st, bool *want_write,
		     char *err, size_t errlen);

#endif /* PCIEFW_TLS_H */
