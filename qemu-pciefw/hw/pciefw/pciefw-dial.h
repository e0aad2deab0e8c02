/*
 * pciefw: dialing an endpoint -- its address (a UNIX socket path, or a
 * TCP host and port) resolved once, then a non-blocking connect() to each
 * of its addresses in turn, from the main loop.  Nothing here waits,
 * except pciefw_dial_wait(), for realize.
 *
 * Copyright (c) 2025 The pciefw authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_PCIEFW_DIAL_H
#define HW_PCIEFW_DIAL_H

#include <netdb.h>

/*
 * The attempt ended: @fd is the connected socket (the caller's now), or
 * -1 and @error says why ("connection refused", ...).
 */
typedef void PCIeFwDialDone(void *opaque, int fd, const char *error);

typedef struct PCIeFwDialer {
    char *path;                 /* a UNIX socket, or */
    struct addrinfo *addrs;     /* the TCP addresses, resolved once */
    struct addrinfo *next;      /* the candidate being connected to */
    int fd;                     /* its connect() in progress */
    char *error;                /* why the last candidate failed */
    PCIeFwDialDone *done;
    void *opaque;
} PCIeFwDialer;

/* For @path, or @host and @port; false with @errp if it cannot resolve. */
bool pciefw_dial_init(PCIeFwDialer *d, const char *path, const char *host,
                      uint16_t port, PCIeFwDialDone *done, void *opaque,
                      Error **errp);
/* Start an attempt; @done runs when it ends (perhaps before this returns). */
void pciefw_dial_start(PCIeFwDialer *d);
/* An attempt under way: finish it here by @deadline (ms, realtime). */
void pciefw_dial_wait(PCIeFwDialer *d, int64_t deadline);
bool pciefw_dial_busy(PCIeFwDialer *d);
/* Give up the attempt under way, if any; @done is not called. */
void pciefw_dial_cancel(PCIeFwDialer *d);
void pciefw_dial_free(PCIeFwDialer *d);

#endif
