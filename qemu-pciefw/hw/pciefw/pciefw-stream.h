/*
 * pciefw: the byte stream under a connection -- the socket itself, TLS
 * over it (docs/protocol.md 1.5), or rings in shared memory beside it
 * (docs/protocol.md 11) -- in either role.  Each transport owns its
 * readiness: how the main loop learns there is input or room, and how a
 * waiting vCPU waits for it.  The connection (pciefw-conn.c) moves bytes
 * through these operations only and never asks which transport it has.
 *
 * Copyright (c) 2025 The pciefw authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_PCIEFW_STREAM_H
#define HW_PCIEFW_STREAM_H

#include "qemu/main-loop.h"
#include "crypto/tlscreds.h"
#include "protocol/fdpass.h"
#include "protocol/pciefw.h"

typedef struct PCIeFwStream PCIeFwStream;

typedef struct PCIeFwStreamOps {
    /*
     * Before the first send or recv: 1 once the stream is established, 0
     * while it is not yet (wait for the socket to become writable if
     * *@want_write, readable otherwise), -1 with @errp set.
     */
    int (*handshake)(PCIeFwStream *st, bool *want_write, Error **errp);
    /*
     * Like send()/recv() on a non-blocking socket: bytes moved, 0 at the
     * end of the stream (recv), or -1 with errno set: EAGAIN (wait for
     * readiness), EBADMSG (the peer broke the transport's rule, a
     * protocol error to report, spec 7.1), anything else a failure;
     * st->error may say more than errno.
     */
    ssize_t (*send)(PCIeFwStream *st, const void *buf, size_t len);
    ssize_t (*recv)(PCIeFwStream *st, void *buf, size_t len);
    /*
     * A recv now would not return EAGAIN, though the socket may not show
     * it (decrypted input TLS holds, bytes in a ring, a hang-up seen).
     */
    bool (*pending)(PCIeFwStream *st);
    /*
     * From the main loop: call @ready(@opaque) whenever recv may have
     * something, and, with @want_write, whenever send may move bytes.
     * NULL @ready stops.  Called again whenever @want_write changes.
     */
    void (*set_handlers)(PCIeFwStream *st, IOHandler *ready, void *opaque,
                         bool want_write);
    /*
     * For a vCPU waiting with the BQL held (spec 5.3): return once recv
     * may have something (or, with @want_write, send may move bytes), or
     * when QEMU_CLOCK_REALTIME reaches @deadline (ms).  False only if
     * waiting itself failed (st->error says why).
     */
    bool (*wait)(PCIeFwStream *st, bool want_write, int64_t deadline);
    void (*free)(PCIeFwStream *st);
    /*
     * Optional: fds that travel beside the bytes rather than with them
     * (the rings' socket) are read into in_fds now, for a message that
     * claims them.
     */
    void (*collect_fds)(PCIeFwStream *st);
    /* A UNIX socket: fds travel with the bytes (spec 10.2, 11.1). */
    bool can_pass_fds;
} PCIeFwStreamOps;

struct PCIeFwStream {
    const PCIeFwStreamOps *ops;
    int fd;                     /* owned by the connection, not the stream */
    char *error;                /* why the last call failed, if known */
    /* fds to pass with the next bytes sent: our own duplicates */
    int out_fds[PCIEFW_MAX_PENDING_FDS];
    unsigned n_out_fds;
    /*
     * fds received with the bytes, until a message claims them: kept only
     * where messages claim them (the endpoint role), else closed at once.
     */
    bool keep_in_fds;
    struct pf_fd_queue in_fds;
    /* The socket's own handlers, as registered (pciefw-stream.c) */
    IOHandler *ready;
    void *ready_opaque;
    bool watch_read, watch_write;
};

/* The connected socket itself. */
PCIeFwStream *pciefw_stream_socket(int fd);

/*
 * Rings in shared memory beside the connected UNIX socket @fd (docs/
 * protocol.md 11).  The host makes the region and both doorbells:
 * @setup_fds gets the three fds its RingSetup passes (the stream keeps
 * them; pass duplicates), @region_size the size it announces.
 */
PCIeFwStream *pciefw_stream_ring_host(int fd, uint32_t ring_bytes,
                                      int setup_fds[PCIEFW_RING_SETUP_FDS],
                                      uint64_t *region_size, Error **errp);
/*
 * The endpoint maps the host's: @fds (region, our doorbell, the host's)
 * are taken whatever happens; NULL with the reason if the region cannot
 * be used (spec 11.1 refusals).
 */
PCIeFwStream *pciefw_stream_ring_endpoint(int fd,
                                          const int fds[PCIEFW_RING_SETUP_FDS],
                                          uint64_t region_size, Error **errp);

/*
 * TLS over the connected socket @fd: a client checking the server's
 * certificate against @hostname, or a server (creds with
 * endpoint=server), as @creds says.
 */
PCIeFwStream *pciefw_stream_tls(int fd, QCryptoTLSCreds *creds,
                                const char *hostname, Error **errp);

/*
 * The tls-creds-x509 object @id, for a client (@server false: the host
 * role) or a server; @dev names the device in errors.
 */
QCryptoTLSCreds *pciefw_tls_creds_find(const char *id, bool server,
                                       const char *dev, Error **errp);

/*
 * Pass (duplicates of) @fds with the next bytes sent.  False, nothing
 * queued, if the stream cannot carry fds or still holds some.
 */
bool pciefw_stream_attach_fds(PCIeFwStream *st, const int *fds, unsigned n);

/* Why the last call failed, for a one-line report. */
const char *pciefw_stream_strerror(PCIeFwStream *st, int err);

/* Keep @fmt as the reason of the next failure (st->error). */
void G_GNUC_PRINTF(2, 3)
pciefw_stream_set_error(PCIeFwStream *st, const char *fmt, ...);

void pciefw_stream_free(PCIeFwStream *st);

/*
 * For transports over the socket: the socket's own handlers and waits,
 * send and recv with fds; others build on them.
 */
void pciefw_socket_set_handlers(PCIeFwStream *st, IOHandler *ready,
                                void *opaque, bool want_write);
bool pciefw_socket_wait(PCIeFwStream *st, bool want_write, int64_t deadline);
ssize_t pciefw_socket_send(PCIeFwStream *st, const void *buf, size_t len);
ssize_t pciefw_socket_recv(PCIeFwStream *st, void *buf, size_t len);

#endif
