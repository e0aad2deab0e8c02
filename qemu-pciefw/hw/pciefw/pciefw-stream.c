/*
 * pciefw: the plain byte stream, send() and recv() on the socket, and
 * what every transport over the socket shares: its handlers, its waits,
 * fds passed with the bytes.
 *
 * Copyright (c) 2025 The pciefw authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <poll.h>
#include "qapi/error.h"
#include "qemu/timer.h"
#include "pciefw-stream.h"

static void close_out_fds(PCIeFwStream *st)
{
    for (unsigned i = 0; i < st->n_out_fds; i++) {
        close(st->out_fds[i]);
    }
    st->n_out_fds = 0;
}

/* With fds attached, the first bytes that go carry them (spec 10.2). */
ssize_t pciefw_socket_send(PCIeFwStream *st, const void *buf, size_t len)
{
    ssize_t n = pf_send_fds(st->fd, buf, len, st->out_fds, st->n_out_fds);

    if (n > 0) {
        close_out_fds(st);      /* the peer has its own now */
    }
    return n;
}

/* fds a host passes are kept for the message that claims them (10.2). */
ssize_t pciefw_socket_recv(PCIeFwStream *st, void *buf, size_t len)
{
    return pf_recv_fds(st->fd, buf, len, st->keep_in_fds ? &st->in_fds : NULL);
}

/*
 * The handlers change only when what is wanted changes: this runs once per
 * request, and registering is not free.
 */
void pciefw_socket_set_handlers(PCIeFwStream *st, IOHandler *ready,
                                void *opaque, bool want_write)
{
    bool want_read = ready != NULL;

    want_write = want_write && ready;
    if (ready == st->ready && opaque == st->ready_opaque &&
        want_read == st->watch_read && want_write == st->watch_write) {
        return;
    }
    st->ready = ready;
    st->ready_opaque = opaque;
    st->watch_read = want_read;
    st->watch_write = want_write;
    qemu_set_fd_handler(st->fd, want_read ? ready : NULL,
                        want_write ? ready : NULL, opaque);
}

bool pciefw_socket_wait(PCIeFwStream *st, bool want_write, int64_t deadline)
{
    struct pollfd pfd = {
        .fd = st->fd,
        .events = POLLIN | (want_write ? POLLOUT : 0),
    };
    int64_t left = deadline - qemu_clock_get_ms(QEMU_CLOCK_REALTIME);
    int r;

    if (left <= 0) {
        return true;
    }
    r = poll(&pfd, 1, MIN(left, INT_MAX));
    if (r < 0 && errno != EINTR) {
        pciefw_stream_set_error(st, "poll failed: %s", strerror(errno));
        return false;
    }
    return true;
}

static int socket_handshake(PCIeFwStream *st, bool *want_write, Error **errp)
{
    return 1;
}

static bool socket_pending(PCIeFwStream *st)
{
    return false;
}

static void socket_free(PCIeFwStream *st)
{
    g_free(st);
}

static const PCIeFwStreamOps socket_ops = {
    .handshake = socket_handshake,
    .send = pciefw_socket_send,
    .recv = pciefw_socket_recv,
    .pending = socket_pending,
    .set_handlers = pciefw_socket_set_handlers,
    .wait = pciefw_socket_wait,
    .free = socket_free,
    .can_pass_fds = true,
};

PCIeFwStream *pciefw_stream_socket(int fd)
{
    PCIeFwStream *st = g_new0(PCIeFwStream, 1);

    st->ops = &socket_ops;
    st->fd = fd;
    return st;
}

bool pciefw_stream_attach_fds(PCIeFwStream *st, const int *fds, unsigned n)
{
    unsigned i;

    if (!st->ops->can_pass_fds || st->n_out_fds ||
        n > PCIEFW_MAX_PENDING_FDS) {
        return false;
    }
    for (i = 0; i < n; i++) {
        st->out_fds[i] = dup(fds[i]);
        if (st->out_fds[i] < 0) {
            st->n_out_fds = i;
            close_out_fds(st);
            return false;
        }
    }
    st->n_out_fds = n;
    return true;
}

const char *pciefw_stream_strerror(PCIeFwStream *st, int err)
{
    return st->error ?: strerror(err);
}

void pciefw_stream_set_error(PCIeFwStream *st, const char *fmt, ...)
{
    va_list ap;

    g_free(st->error);
    va_start(ap, fmt);
    st->error = g_strdup_vprintf(fmt, ap);
    va_end(ap);
}

void pciefw_stream_free(PCIeFwStream *st)
{
    if (st) {
        if (st->ready) {
            st->ops->set_handlers(st, NULL, NULL, false);
        }
        close_out_fds(st);
        pf_fd_queue_clear(&st->in_fds);
        g_free(st->error);
        st->ops->free(st);
    }
}
