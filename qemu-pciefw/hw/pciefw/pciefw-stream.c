/*
 * pciefw: the plain byte stream, send() and recv() on the socket.
 *
 * Copyright (c) 2025 The pciefw authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "pciefw-stream.h"

static int socket_handshake(PCIeFwStream *st, bool *want_write, Error **errp)
{
    return 1;
}

static void socket_close_fds(PCIeFwStream *st)
{
    for (unsigned i = 0; i < st->n_fds; i++) {
        close(st->fds[i]);
    }
    st->n_fds = 0;
}

/* With fds attached, the first bytes that go carry them (spec 10.2). */
ssize_t pciefw_socket_send(PCIeFwStream *st, const void *buf, size_t len)
{
    union {
        char buf[CMSG_SPACE(sizeof(int) * PCIEFW_MAX_MEM_REGIONS)];
        struct cmsghdr align;
    } control;
    struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
    struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
    struct cmsghdr *cmsg;
    ssize_t n;

    if (!st->n_fds) {
        return send(st->fd, buf, len, MSG_NOSIGNAL);
    }
    memset(&control, 0, sizeof(control));
    msg.msg_control = control.buf;
    msg.msg_controllen = CMSG_SPACE(sizeof(int) * st->n_fds);
    cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int) * st->n_fds);
    memcpy(CMSG_DATA(cmsg), st->fds, sizeof(int) * st->n_fds);
    n = sendmsg(st->fd, &msg, MSG_NOSIGNAL);
    if (n > 0) {
        socket_close_fds(st);   /* the peer has its own now */
    }
    return n;
}

static ssize_t socket_recv(PCIeFwStream *st, void *buf, size_t len)
{
    return recv(st->fd, buf, len, 0);
}

static size_t socket_pending(PCIeFwStream *st)
{
    return 0;
}

static void socket_free(PCIeFwStream *st)
{
    socket_close_fds(st);
    g_free(st);
}

static const PCIeFwStreamOps socket_ops = {
    .handshake = socket_handshake,
    .send = pciefw_socket_send,
    .recv = socket_recv,
    .pending = socket_pending,
    .free = socket_free,
    .can_pass_fds = true,
};

PCIeFwStream *pciefw_stream_socket(int fd)
{
    PCIeFwStream *st = g_new0(PCIeFwStream, 1);

    st->ops = &socket_ops;
    st->fd = fd;
    st->wake_fd = -1;
    return st;
}

bool pciefw_stream_attach_fds(PCIeFwStream *st, const int *fds, unsigned n)
{
    unsigned i;

    if (!st->ops->can_pass_fds || st->n_fds || n > PCIEFW_MAX_MEM_REGIONS) {
        return false;
    }
    for (i = 0; i < n; i++) {
        st->fds[i] = dup(fds[i]);
        if (st->fds[i] < 0) {
            st->n_fds = i;
            socket_close_fds(st);
            return false;
        }
    }
    st->n_fds = n;
    return true;
}

const char *pciefw_stream_strerror(PCIeFwStream *st, int err)
{
    return st->error ?: strerror(err);
}

void pciefw_stream_free(PCIeFwStream *st)
{
    if (st) {
        g_free(st->error);
        st->ops->free(st);
    }
}
