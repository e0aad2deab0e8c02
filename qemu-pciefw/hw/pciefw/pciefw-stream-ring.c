/*
 * pciefw: the shared-memory transport (docs/protocol.md 11), in either
 * role.  The frames go through two byte rings in a region the host makes
 * and the endpoint maps; the socket stays beside them to pass fds (each
 * batch with one zero byte) and to show the peer's hang-up.
 *
 * QEMU's reader of its ring is asleep (the peer kicks our doorbell) except
 * while a vCPU waits for a completion: then it polls for as long as the
 * polling rule says the answer is near (protocol/ring.h: from the peer's
 * turnarounds it measured), before it sleeps in poll().  The main loop
 * never polls.
 *
 * Copyright (c) 2025 The pciefw authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <poll.h>
#include <sys/eventfd.h>
#include "qapi/error.h"
#include "qemu/memfd.h"
#include "qemu/processor.h"
#include "qemu/timer.h"
#include "pciefw-stream.h"
#include "protocol/ring.h"

/* How long a vCPU waiting for a completion polls (spec 11.4). */
#define RING_POLL_MIN_NS 50000
#define RING_POLL_MAX_NS 200000

typedef struct PCIeFwRingStream {
    PCIeFwStream base;          /* base.fd: the socket beside the rings */
    void *region;
    size_t region_size;
    int region_fd;              /* the host's own, -1 for the endpoint */
    int our_bell;               /* the peer writes it to wake us */
    int peer_bell;              /* we write it */
    struct pf_ring tx, rx;
    struct pf_poll rule;
    bool host;                  /* our role */
    bool hung_up;               /* the socket said the peer is gone */
    bool socket_rule_broken;    /* it sent other bytes on the socket */
} PCIeFwRingStream;

static PCIeFwRingStream *ring_of(PCIeFwStream *st)
{
    return container_of(st, PCIeFwRingStream, base);
}

static int ring_handshake(PCIeFwStream *st, bool *want_write, Error **errp)
{
    return 1;
}

static ssize_t ring_corrupt(PCIeFwStream *st)
{
    pciefw_stream_set_error(st, "the peer wrote an impossible ring index");
    errno = EPROTO;
    return -1;
}

static ssize_t ring_send(PCIeFwStream *st, const void *buf, size_t len)
{
    PCIeFwRingStream *r = ring_of(st);
    ssize_t n;

    /* fds go on the socket before the frame that claims them (11.1). */
    if (st->n_out_fds && pciefw_socket_send(st, "", 1) != 1) {
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
                pf_doorbell_ring(r->peer_bell);
            }
            return n;
        }
        /* Full: ask to be kicked once the peer has read (11.4). */
        if (pf_ring_producer_wait(&r->tx)) {
            errno = EAGAIN;
            return -1;
        }
    }
}

/*
 * One batch from the socket (11.1): its end, one zero byte carrying fds
 * (the endpoint role keeps them), or anything else: the rule broken.  One
 * recvmsg a call, so a peer that keeps the socket full cannot keep us.
 */
static void ring_read_socket(PCIeFwRingStream *r)
{
    unsigned fds_before = r->base.in_fds.n;
    uint8_t buf[64];
    ssize_t n = pciefw_socket_recv(&r->base, buf, sizeof(buf));

    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        r->hung_up = true;
    } else if (n > 0 && (n != 1 || buf[0] || r->host ||
                         (r->base.in_fds.n == fds_before &&
                          !r->base.in_fds.overflow))) {
        pciefw_stream_set_error(&r->base, "the %s sent bytes on the socket "
                                "beside the rings (spec 11.1)",
                                r->host ? "endpoint" : "host");
        r->socket_rule_broken = true;
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
            pf_doorbell_ring(r->peer_bell);
        }
        return n;
    }
    if (!r->hung_up && !r->socket_rule_broken) {
        ring_read_socket(r);
    }
    if (r->socket_rule_broken) {
        /* A protocol error: the rings still carry our Error (7.1). */
        errno = EBADMSG;
        return -1;
    }
    if (r->hung_up && !pf_ring_readable(&r->rx)) {
        return 0;       /* everything it sent before going was read */
    }
    errno = EAGAIN;
    return -1;
}

static bool ring_pending(PCIeFwStream *st)
{
    PCIeFwRingStream *r = ring_of(st);

    return pf_ring_readable(&r->rx) || r->rx.corrupt || r->hung_up ||
           r->socket_rule_broken;
}

/*
 * The doorbell says bytes or room; the socket a hang-up, fds or a stray
 * byte.  Room to write is signalled on the doorbell (a full ring asked
 * the peer to kick it), so @want_write needs no handler of its own.
 */
static void ring_bell_read(void *opaque)
{
    PCIeFwRingStream *r = opaque;

    pf_doorbell_drain(r->our_bell);
    if (r->base.ready) {
        r->base.ready(r->base.ready_opaque);
    }
}

static void ring_set_handlers(PCIeFwStream *st, IOHandler *ready, void *opaque,
                              bool want_write)
{
    PCIeFwRingStream *r = ring_of(st);

    if (ready == st->ready && opaque == st->ready_opaque) {
        return;
    }
    st->ready = ready;
    st->ready_opaque = opaque;
    qemu_set_fd_handler(r->our_bell, ready ? ring_bell_read : NULL, NULL, r);
    qemu_set_fd_handler(st->fd, ready, NULL, opaque);
}

/*
 * Poll for the window the polling rule gives (spec 11.4), from @start:
 * the time until bytes came is a turnaround it learns from.  What came
 * meanwhile is seen by the rest.
 */
static bool ring_poll(PCIeFwRingStream *r, uint64_t start)
{
    uint64_t window = pf_poll_window(&r->rule), now = start;

    pf_ring_consumer_awake(&r->rx);
    do {
        if (pf_ring_readable(&r->rx) || r->rx.corrupt) {
            pf_poll_gap(&r->rule, now - start);
            pf_ring_consumer_rest(&r->rx);
            return true;
        }
        if (!pf_poll_pause(&r->tx, now - start)) {
            break;          /* the CPU is contended: sleep */
        }
        now = pf_ring_now_ns();
    } while (now - start < window);
    /* Back to sleep; what came meanwhile is seen here (11.4). */
    return pf_ring_consumer_rest(&r->rx);
}

static bool ring_wait(PCIeFwStream *st, bool want_write, int64_t deadline)
{
    PCIeFwRingStream *r = ring_of(st);
    struct pollfd pfd[2] = {
        { .fd = r->our_bell, .events = POLLIN },
        { .fd = st->fd, .events = POLLIN },
    };
    uint64_t start = pf_ring_now_ns();
    int64_t left;
    int n;

    if (ring_pending(st) || ring_poll(r, start)) {
        return true;
    }
    left = deadline - qemu_clock_get_ms(QEMU_CLOCK_REALTIME);
    if (left <= 0) {
        return true;
    }
    n = poll(pfd, 2, MIN(left, INT_MAX));
    if (n < 0 && errno != EINTR) {
        pciefw_stream_set_error(st, "poll failed: %s", strerror(errno));
        return false;
    }
    if (n > 0 && pfd[0].revents) {
        pf_doorbell_drain(r->our_bell);
    }
    if (n > 0 && pfd[1].revents) {
        ring_read_socket(r);
    }
    /* A turnaround longer than the window: the rule learns it too. */
    if (pf_ring_readable(&r->rx)) {
        pf_poll_gap(&r->rule, pf_ring_now_ns() - start);
    }
    return true;
}

static void ring_free(PCIeFwStream *st)
{
    PCIeFwRingStream *r = ring_of(st);

    if (r->region) {
        munmap(r->region, r->region_size);
    }
    if (r->region_fd >= 0) {
        close(r->region_fd);
    }
    if (r->peer_bell >= 0) {
        close(r->peer_bell);
    }
    if (r->our_bell >= 0) {
        close(r->our_bell);
    }
    g_free(r);
}

static void ring_collect_fds(PCIeFwStream *st)
{
    PCIeFwRingStream *r = ring_of(st);

    if (!r->hung_up && !r->socket_rule_broken) {
        ring_read_socket(r);
    }
}

static const PCIeFwStreamOps ring_ops = {
    .handshake = ring_handshake,
    .send = ring_send,
    .recv = ring_recv,
    .pending = ring_pending,
    .set_handlers = ring_set_handlers,
    .wait = ring_wait,
    .free = ring_free,
    .collect_fds = ring_collect_fds,
    .can_pass_fds = true,
};

static PCIeFwRingStream *ring_new(int fd, bool host)
{
    PCIeFwRingStream *r = g_new0(PCIeFwRingStream, 1);

    r->base.ops = &ring_ops;
    r->base.fd = fd;
    r->region_fd = r->our_bell = r->peer_bell = -1;
    r->host = host;
    pf_poll_init(&r->rule, RING_POLL_MIN_NS, RING_POLL_MAX_NS);
    return r;
}

/* Our ends of the two rings, by role. */
static bool ring_attach(PCIeFwRingStream *r, Error **errp)
{
    enum pf_ring_dir out = r->host ? PF_RING_TO_ENDPOINT : PF_RING_TO_HOST;
    enum pf_ring_dir in = r->host ? PF_RING_TO_HOST : PF_RING_TO_ENDPOINT;
    char err[160];

    if (pf_ring_attach(&r->tx, r->region, r->region_size, out, true, err,
                       sizeof(err)) != PF_OK ||
        pf_ring_attach(&r->rx, r->region, r->region_size, in, false, err,
                       sizeof(err)) != PF_OK) {
        error_setg(errp, "%s", err);
        return false;
    }
    /* Asleep until a vCPU spins: the peer kicks us (11.4). */
    pf_ring_consumer_rest(&r->rx);
    return true;
}

/* The region: sealed so the endpoint's mapping can never lose pages. */
static bool ring_create_region(PCIeFwRingStream *r, uint32_t ring_bytes,
                               Error **errp)
{
    r->region_size = pf_ring_region_size(ring_bytes);
    r->region = qemu_memfd_alloc("pciefw-rings", r->region_size,
                                 F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL,
                                 &r->region_fd, errp);
    if (!r->region) {
        r->region_fd = -1;
        return false;
    }
    if (pf_ring_region_init(r->region, r->region_size, ring_bytes) != PF_OK) {
        error_setg(errp, "cannot lay out the rings (%u bytes each)",
                   ring_bytes);
        return false;
    }
    return ring_attach(r, errp);
}

PCIeFwStream *pciefw_stream_ring_host(int fd, uint32_t ring_bytes,
                                      int setup_fds[PCIEFW_RING_SETUP_FDS],
                                      uint64_t *region_size, Error **errp)
{
    PCIeFwRingStream *r = ring_new(fd, true);

    r->our_bell = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    r->peer_bell = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (r->our_bell < 0 || r->peer_bell < 0) {
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
    setup_fds[2] = r->our_bell;
    *region_size = r->region_size;
    return &r->base;
}

PCIeFwStream *pciefw_stream_ring_endpoint(int fd,
                                          const int fds[PCIEFW_RING_SETUP_FDS],
                                          uint64_t region_size, Error **errp)
{
    PCIeFwRingStream *r = ring_new(fd, false);
    char err[200];

    r->our_bell = fds[1];
    r->peer_bell = fds[2];
    r->base.keep_in_fds = true;
    if (pf_doorbell_check(fds[1], err, sizeof(err)) &&
        pf_doorbell_check(fds[2], err, sizeof(err))) {
        r->region = pf_ring_region_map(fds[0], region_size, err, sizeof(err));
    }
    if (!r->region) {
        error_setg(errp, "%s", err);
        close(fds[0]);
        ring_free(&r->base);
        return NULL;
    }
    close(fds[0]);
    r->region_size = region_size;
    if (!ring_attach(r, errp)) {
        ring_free(&r->base);
        return NULL;
    }
    return &r->base;
}
