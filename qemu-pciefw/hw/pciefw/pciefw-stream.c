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

static ssize_t socket_send(PCIeFwStream *st, const void *buf, size_t len)
{
    return send(st->fd, buf, len, MSG_NOSIGNAL);
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
    g_free(st);
}

static const PCIeFwStreamOps socket_ops = {
    .handshake = socket_handshake,
    .send = socket_send,
    .recv = socket_recv,
    .pending = socket_pending,
    .free = socket_free,
};

PCIeFwStream *pciefw_stream_socket(int fd)
{
    PCIeFwStream *st = g_new0(PCIeFwStream, 1);

    st->ops = &socket_ops;
    st->fd = fd;
    return st;
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
