/*
 * pciefw: the byte stream under the connection to the endpoint -- the
 * socket itself, TLS over it (docs/protocol.md 1.5), or rings in shared
 * memory beside it (docs/protocol.md 11).  The device reads and writes
 * through these operations only.
 *
 * Copyright (c) 2025 The pciefw authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_PCIEFW_STREAM_H
#define HW_PCIEFW_STREAM_H

#include "crypto/tlscreds.h"
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
     * Like send()/recv() on the non-blocking socket: bytes moved, 0 at
     * the end of the stream (recv), or -1 with errno set (EAGAIN: wait
     * for the socket); st->error may say more than errno.
     */
    ssize_t (*send)(PCIeFwStream *st, const void *buf, size_t len);
    ssize_t (*recv)(PCIeFwStream *st, void *buf, size_t len);
    /* Input already taken from the socket, which poll() cannot show. */
    size_t (*pending)(PCIeFwStream *st);
    /*
     * Optional (a UNIX socket): the next send that moves bytes carries
     * st->fds as SCM_RIGHTS ancillary data (docs/protocol.md 10.2).
     */
    bool can_pass_fds;
    void (*free)(PCIeFwStream *st);
    /*
     * Optional, for a stream whose readiness is not the socket's (the
     * rings): spin for input for the adaptive budget; true once some is
     * there.  The stream then stays asleep: the peer kicks wake_fd.
     */
    bool (*spin)(PCIeFwStream *st);
    /*
     * Optional: the socket polled readable (it carries no messages any
     * more): notice the peer's hang-up, refuse stray bytes.
     */
    void (*socket_event)(PCIeFwStream *st);
} PCIeFwStreamOps;

struct PCIeFwStream {
    const PCIeFwStreamOps *ops;
    int fd;                     /* owned by the device, not the stream */
    char *error;                /* why the last call failed, if known */
    int fds[PCIEFW_MAX_MEM_REGIONS]; /* to pass with the next send: dups */
    unsigned n_fds;
    int wake_fd;                /* >= 0: readiness comes from here (ours) */
};

/* The connected socket itself. */
PCIeFwStream *pciefw_stream_socket(int fd);

/*
 * Rings in shared memory (docs/protocol.md 11) beside the connected UNIX
 * socket @fd: creates the region and both doorbells.  @setup_fds gets the
 * three fds RingSetup passes (the stream keeps them; the caller passes
 * duplicates); @region_size the size it announces.
 */
PCIeFwStream *pciefw_stream_ring(int fd, uint32_t ring_bytes,
                                 int setup_fds[PCIEFW_RING_SETUP_FDS],
                                 uint64_t *region_size, Error **errp);

/* Send on the socket, passing st->fds with the bytes if there are any. */
ssize_t pciefw_socket_send(PCIeFwStream *st, const void *buf, size_t len);

/* A TLS client over the connected socket @fd. */
PCIeFwStream *pciefw_stream_tls(int fd, QCryptoTLSCreds *creds,
                                const char *hostname, Error **errp);

/*
 * Pass (duplicates of) @fds with the next bytes sent.  False, nothing
 * queued, if the stream cannot carry fds or still holds some.
 */
bool pciefw_stream_attach_fds(PCIeFwStream *st, const int *fds, unsigned n);

/* Why the last send/recv failed, for a one-line report. */
const char *pciefw_stream_strerror(PCIeFwStream *st, int err);

void pciefw_stream_free(PCIeFwStream *st);

#endif
