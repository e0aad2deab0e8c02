/*
 * pciefw: dialing an endpoint (pciefw-dial.h).
 *
 * Copyright (c) 2025 The pciefw authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <poll.h>
#include <sys/un.h>
#include "qemu/cutils.h"
#include "qemu/main-loop.h"
#include "qemu/sockets.h"
#include "qemu/timer.h"
#include "qapi/error.h"
#include "pciefw-dial.h"

static bool dial_unix(PCIeFwDialer *d, const char *path, Error **errp)
{
    struct sockaddr_un *un;

    if (strlen(path) >= sizeof(un->sun_path)) {
        error_setg(errp, "pciefw: path '%s' is longer than a UNIX socket "
                   "path may be (%zu bytes)", path, sizeof(un->sun_path) - 1);
        return false;
    }
    d->path = g_strdup(path);
    d->addrs = g_new0(struct addrinfo, 1);
    un = g_new0(struct sockaddr_un, 1);
    un->sun_family = AF_UNIX;
    pstrcpy(un->sun_path, sizeof(un->sun_path), path);
    d->addrs->ai_family = AF_UNIX;
    d->addrs->ai_socktype = SOCK_STREAM;
    d->addrs->ai_addr = (struct sockaddr *)un;
    d->addrs->ai_addrlen = sizeof(*un);
    return true;
}

bool pciefw_dial_init(PCIeFwDialer *d, const char *path, const char *host,
                      uint16_t port, PCIeFwDialDone *done, void *opaque,
                      Error **errp)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC,
        .ai_socktype = SOCK_STREAM,
    };
    g_autofree char *port_str = g_strdup_printf("%u", port);
    int r;

    memset(d, 0, sizeof(*d));
    d->fd = -1;
    d->done = done;
    d->opaque = opaque;
    if (path) {
        return dial_unix(d, path, errp);
    }
    r = getaddrinfo(host, port_str, &hints, &d->addrs);
    if (r) {
        d->addrs = NULL;
        error_setg(errp, "pciefw: cannot resolve endpoint host '%s': %s",
                   host, gai_strerror(r));
        return false;
    }
    return true;
}

static void dial_failed(PCIeFwDialer *d, const char *why)
{
    g_free(d->error);
    d->error = g_strdup(why);
}

static void dial_end(PCIeFwDialer *d, int fd)
{
    d->fd = -1;
    d->next = NULL;
    if (fd >= 0 && d->addrs->ai_family != AF_UNIX) {
        socket_set_nodelay(fd);
    }
    d->done(d->opaque, fd, fd >= 0 ? NULL :
            d->error ?: "no address to connect to");
}

static void dial_next(PCIeFwDialer *d);

/* A connect in progress finished, or failed (the socket is writable). */
static void dial_connected(void *opaque)
{
    PCIeFwDialer *d = opaque;
    int fd = d->fd, err = 0;
    socklen_t len = sizeof(err);

    qemu_set_fd_handler(fd, NULL, NULL, NULL);
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) {
        err = errno;
    }
    if (!err) {
        dial_end(d, fd);
        return;
    }
    close(fd);
    d->fd = -1;
    dial_failed(d, strerror(err));
    d->next = d->next->ai_next;
    dial_next(d);
}

/* Connect to d->next, or the next address after it that can be tried. */
static void dial_next(PCIeFwDialer *d)
{
    for (; d->next; d->next = d->next->ai_next) {
        struct addrinfo *ai = d->next;
        int fd = qemu_socket(ai->ai_family, ai->ai_socktype, 0);

        if (fd < 0 || !qemu_set_blocking(fd, false, NULL)) {
            dial_failed(d, strerror(errno));
            if (fd >= 0) {
                close(fd);
            }
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            dial_end(d, fd);
            return;
        }
        if (errno == EINPROGRESS) {
            d->fd = fd;
            qemu_set_fd_handler(fd, NULL, dial_connected, d);
            return;
        }
        /* A UNIX socket whose listen backlog is full: the endpoint hangs. */
        dial_failed(d, errno == EAGAIN ? "the endpoint accepts no "
                    "connection (listen backlog full)" : strerror(errno));
        close(fd);
    }
    dial_end(d, -1);
}

void pciefw_dial_start(PCIeFwDialer *d)
{
    pciefw_dial_cancel(d);
    g_clear_pointer(&d->error, g_free);
    d->next = d->addrs;
    dial_next(d);
}

bool pciefw_dial_busy(PCIeFwDialer *d)
{
    return d->fd >= 0;
}

void pciefw_dial_wait(PCIeFwDialer *d, int64_t deadline)
{
    while (d->fd >= 0) {
        int64_t left = deadline - qemu_clock_get_ms(QEMU_CLOCK_REALTIME);
        struct pollfd pfd = { .fd = d->fd, .events = POLLOUT };

        if (left <= 0) {
            pciefw_dial_cancel(d);
            dial_failed(d, "no answer within the timeout");
            dial_end(d, -1);
            return;
        }
        if (poll(&pfd, 1, MIN(left, INT_MAX)) > 0) {
            dial_connected(d);
        }
    }
}

void pciefw_dial_cancel(PCIeFwDialer *d)
{
    if (d->fd >= 0) {
        qemu_set_fd_handler(d->fd, NULL, NULL, NULL);
        close(d->fd);
        d->fd = -1;
    }
}

void pciefw_dial_free(PCIeFwDialer *d)
{
    pciefw_dial_cancel(d);
    if (d->path && d->addrs) {
        g_free(d->addrs->ai_addr);
        g_free(d->addrs);
    } else if (d->addrs) {
        freeaddrinfo(d->addrs);
    }
    d->addrs = NULL;
    g_clear_pointer(&d->path, g_free);
    g_clear_pointer(&d->error, g_free);
}
