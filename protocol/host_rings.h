/*
 * libpciefw host side: the shared-memory rings (docs/protocol.md 11) for
 * the host library (host.c), a blocking peer without an event loop.  It
 * makes the region and both doorbells, moves bytes through the rings, and
 * waits as spec 11.4 says: polling for the window its polling rule gives
 * (ring.h), then asleep on its doorbell and the socket beside the rings.
 */
#ifndef PCIEFW_HOST_RINGS_H
#define PCIEFW_HOST_RINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "pciefw.h"

struct pf_host_rings;

/*
 * A fresh region of two rings of @ring_bytes beside the connected UNIX
 * socket @sock (not taken), with both doorbells.  @fds gets what a
 * RingSetup passes (region, the endpoint's doorbell, ours; still owned by
 * the rings), @region_size what it announces.  NULL with @err set.
 */
struct pf_host_rings *pf_host_rings_new(int sock, uint32_t ring_bytes,
					int fds[PCIEFW_RING_SETUP_FDS],
					uint64_t *region_size, char *err,
					size_t errlen);
void pf_host_rings_free(struct pf_host_rings *r);

/*
 * Like send()/recv() on a non-blocking socket: bytes moved; 0 from recv
 * once the endpoint hung up and everything it wrote was read; -1 with
 * errno EAGAIN (wait), EPROTO (an impossible ring index, spec 11.5) or
 * EBADMSG (bytes on the socket beside the rings, spec 11.1).
 */
ssize_t pf_host_rings_send(struct pf_host_rings *r, const void *buf,
			   size_t len);
ssize_t pf_host_rings_recv(struct pf_host_rings *r, void *buf, size_t len);

/*
 * Wait up to @timeout_ms until recv has news (or, with @want_write, send
 * may move bytes): polling first, as the polling rule says, then asleep.
 * 1 when there may be something, 0 at the timeout, -1 if waiting failed.
 */
int pf_host_rings_wait(struct pf_host_rings *r, bool want_write,
		       int timeout_ms);

#endif /* PCIEFW_HOST_RINGS_H */
