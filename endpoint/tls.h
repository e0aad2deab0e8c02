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

/*
 * A server-side TLS stream over the connected socket @fd; its handshake
 * is its pf_stream_open() (stream.h).
 */
struct pf_stream *pf_tls_stream(struct pf_tls *tls, int fd,
				char *err, size_t errlen);

#endif /* PCIEFW_TLS_H */
