/*
 * pciefw: the shared-memory transport (docs/protocol.md 11).  The frames
 * go through two byte rings in a region this side creates; the socket
 * stays beside them to pass fds and to show the endpoint's hang-up.
 *
 * The host's side of the ring to us is asleep (the endpoint kicks our
 * doorbell) except while a vCPU spins for a completion: the main loop
 * never spins.
 *
 * Copyright (c) 2025 The pciefw authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qemu/memfd.h"
#include "qemu/processor.h"
#include <sys/eventfd.h>
#include "pciefw-stream.h"
#include "protocol/ring.h"

/* Spin budget of a vCPU waiting for a completion (spec 11.4). */
#define RING_SPIN_MIN_NS 2000
#define RING_SPIN_MAX_NS 200000

typedef struct PCIeFwRingStream {
    PCIeFwStream base;          /* base.fd: the socket; base.wake_fd: ours */
    void *region;
    size_t region_size;
    int region_fd;
    int peer_bell;              /* the endpoint's doorbell: we write it */
    struct pf_ring tx, rx;
    struct pf_spin spin;
    bool hung_up;               /* the socket said the endpoint is gone */
    bool socket_rule_broken;    /* it sent bytes on the socket (11.1) */
} PCIeFwRingStream;

static PCIeFwRingStream *ring_of(PCIeFwStream *st)
{
    return container_of(st, PCIeFwRingStream, base);
}

static int ring_handshake(PCIeFwStream *st, bool *want_write, Error **errp)
{
    return 1;
}

static void ring_kick_peer(PCIeFwRingStream *r)
{
    /* A full counter wakes it as well; another failure shows elsewhere. */
    pf_doorbell_ring(r->peer_bell);
}

static ssize_t ring_corrupt(PCIeFwStream *st)
{
    g_free(st->error);
    st->error = g_strdup("the endpoint wrote an impossible ring index");
    errno = EPROTO;
    return -1;
}

static ssize_t ring_send(PCIeFwStream *st, const void *buf, size_t len)
{
    PCIeFwRingStream *r = ring_of(st);
    ssize_t n;

    /* fds go on the socket before the frame that claims them. */
    if (st->n_fds && pciefw_socket_send(st, "", 1) != 1) {
        return -1;
    }
    for (;;) {
        n = pf_ring_write(&r->tx, buf, len);
        if (n < 0) {
            return ring_corrupt(st);
        }
        if (n > 0) {
            pf_ring_producer_awake(&r->tx);
            if (pf_ring_consumer_needs_kick(&r->tx)) {
                ring_kick_peer(r);
            }
            return n;
        }
        /* Full: ask to be kicked when the endpoint has read (11.4). */
        if (pf_ring_producer_wait(&r->tx)) {
            errno = EAGAIN;
            return -1;
        }
    }
}

static ssize_t ring_recv(PCIeFwStream *st, void *buf, size_t len)
{
    PCIeFwRingStream *r = ring_of(st);
    ssize_t n = pf_ring_read(&r->rx, buf, len);

    if (n < 0) {
        return ring_corrupt(st);
    }
    if (n > 0) {
        if (pf_ring_producer_needs_kick(&r->rx)) {
            ring_kick_peer(r);
        }
        return n;
    }
    if (r->socket_rule_broken) {
        /* A protocol error: the rings still carry our Error (7.1). */
        errno = EBADMSG;
        return -1;
    }
    if (r->hung_up) {
        return 0;       /* everything it sent before going was read */
    }
    errno = EAGAIN;
    return -1;
}

/* Input to read: bytes, an impossible index, or the hang-up to report. */
static size_t ring_pending(PCIeFwStream *st)
{
    PCIeFwRingStream *r = ring_of(st);
    size_t n = pf_ring_readable(&r->rx);

    return n ?: (r->rx.corrupt || r->hung_up || r->socket_rule_broken);
}

static bool ring_spin(PCIeFwStream *st)
{
    PCIeFwRingStream *r = ring_of(st);
    uint64_t end = pf_ring_now_ns() + r->spin.budget_ns;

    pf_ring_consumer_awake(&r->rx);
    do {
        if (pf_ring_readable(&r->rx) || r->rx.corrupt) {
            pf_spin_hit(&r->spin);
            pf_ring_consumer_rest(&r->rx);
            return true;
        }
        cpu_relax();
    } while (pf_ring_now_ns() < end);
    pf_spin_miss(&r->spin);
    /* Back to sleep; what came meanwhile is seen here (11.4). */
    return pf_ring_consumer_rest(&r->rx);
}

static void ring_socket_event(PCIeFwStream *st)
{
    PCIeFwRingStream *r = ring_of(st);
    char c;
    ssize_t n = recv(st->fd, &c, 1, MSG_DONTWAIT);

    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        r->hung_up = true;
    } else if (n > 0) {
        g_free(st->error);
        st->error = g_strdup("the endpoint sent bytes on the socket beside "
                             "the rings (spec 11.1)");
        r->socket_rule_broken = true;
    }
}

static void ring_free(PCIeFwStream *st)
{
    PCIeFwRingStream *r = ring_of(st);

    for (unsigned i = 0; i < st->n_fds; i++) {
        close(st->fds[i]);
    }
    if (r->region) {
        munmap(r->region, r->region_size);
    }
    if (r->region_fd >= 0) {
        close(r->region_fd);
    }
    if (r->peer_bell >= 0) {
        close(r->peer_bell);
    }
    if (st->wake_fd >= 0) {
        close(st->wake_fd);
    }
    g_free(r);
}

static const PCIeFwStreamOps ring_ops = {
    .handshake = ring_handshake,
    .send = ring_send,
    .recv = ring_recv,
    .pending = ring_pending,
    .free = ring_free,
    .can_pass_fds = true,
    .spin = ring_spin,
    .socket_event = ring_socket_event,
};

/* The region: sealed so the endpoint's mapping can never lose pages. */
static bool ring_create_region(PCIeFwRingStream *r, uint32_t ring_bytes,
                               Error **errp)
{
    char err[160];

    r->region_size = pf_ring_region_size(ring_bytes);
    r->region = qemu_memfd_alloc("pciefw-rings", r->region_size,
                                 F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL,
                                 &r->region_fd, errp);
    if (!r->region) {
        r->region_fd = -1;
        return false;
    }
    if (pf_ring_region_init(r->region, r->region_size, ring_bytes) != PF_OK ||
        pf_ring_attach(&r->tx, r->region, r->region_size,
                       PF_RING_TO_ENDPOINT, true, err, sizeof(err)) != PF_OK ||
        pf_ring_attach(&r->rx, r->region, r->region_size,
                       PF_RING_TO_HOST, false, err, sizeof(err)) != PF_OK) {
        error_setg(errp, "cannot lay out the rings (%u bytes each)",
                   ring_bytes);
        return false;
    }
    return true;
}

PCIeFwStream *pciefw_stream_ring(int fd, uint32_t ring_bytes,
                                 int setup_fds[PCIEFW_RING_SETUP_FDS],
                                 uint64_t *region_size, Error **errp)
{
    PCIeFwRingStream *r = g_new0(PCIeFwRingStream, 1);

    r->base.ops = &ring_ops;
    r->base.fd = fd;
    r->region_fd = -1;
    r->base.wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    r->peer_bell = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pf_spin_init(&r->spin, RING_SPIN_MIN_NS, RING_SPIN_MAX_NS);
    if (r->base.wake_fd < 0 || r->peer_bell < 0) {
        error_setg_errno(errp, errno, "cannot create the ring doorbells");
        ring_free(&r->base);
        return NULL;
    }
    if (!ring_create_region(r, ring_bytes, errp)) {
        ring_free(&r->base);
        return NULL;
    }
    setup_fds[0] = r->region_fd;
    setup_fds[1] = r->peer_bell;
    setup_fds[2] = r->base.wake_fd;
    *region_size = r->region_size;
    return &r->base;
}
