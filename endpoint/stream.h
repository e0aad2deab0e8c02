/*
 * The byte stream under a host connection: the socket itself, or TLS over
 * it (tls.h).  The server reads and writes through these operations only,
 * so it does not know which one it has.
 */
#ifndef PCIEFW_STREAM_H
#define PCIEFW_STREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "buf.h"
#include "pciefw.h"

struct pf_stream;

struct pf_stream_ops {
	/*
	 * Like recv()/send() on a non-blocking socket: bytes moved, 0 at the
	 * peer's end of stream (recv), or -1 with errno set (EAGAIN: try
	 * again when the socket is ready).
	 */
	ssize_t (*recv)(struct pf_stream *st, void *buf, size_t len);
	ssize_t (*send)(struct pf_stream *st, const void *buf, size_t len);
	/*
	 * Bytes already taken from the socket and not yet returned by recv:
	 * the socket's readiness does not show them.
	 */
	size_t (*pending)(struct pf_stream *st);
	/* Frees the stream; the socket is closed by its owner. */
	void (*free)(struct pf_stream *st);
	/*
	 * Optional (the rings, stream_ring.c): fds the host passed that
	 * wait beside the bytes, collected now (pf_stream_take_fds).
	 */
	void (*collect_fds)(struct pf_stream *st);
	/*
	 * Optional (the rings): the reader announces that it sleeps on
	 * wake_fd (false: input arrived meanwhile, it must not), or that it
	 * is awake and polling, so the host need not kick (spec 11.4).
	 */
	bool (*try_sleep)(struct pf_stream *st);
	void (*awake)(struct pf_stream *st);
};

struct pf_stream {
	const struct pf_stream_ops *ops;
	int fd;
	/*
	 * >= 0: readiness comes from this doorbell, not from the socket, and
	 * a full stream asked the host to kick it once there is room.
	 */
	int wake_fd;
	/*
	 * File descriptors received with the bytes (SCM_RIGHTS on a UNIX
	 * socket), oldest first, not yet claimed (docs/protocol.md 10.2).
	 * More than the queue holds, or a message's fds cut short, sets
	 * fd_overflow: the connection is then failed.
	 */
	int fds[PCIEFW_MAX_PENDING_FDS];
	unsigned n_fds;
	bool fd_overflow;
};

/* The socket itself. */
struct pf_stream *pf_stream_socket(int fd);

/* recv() on @st's socket, keeping the fds that come with the bytes. */
ssize_t pf_socket_recv(struct pf_stream *st, void *buf, size_t len);

/*
 * Rings in the host's region beside the socket @fd (docs/protocol.md 11).
 * Takes @fds (region, our doorbell, the host's doorbell) whatever happens;
 * NULL with the reason in @err if the region cannot be used.
 */
struct pf_stream *pf_stream_ring(int fd, const int fds[PCIEFW_RING_SETUP_FDS],
				 uint64_t region_size, char *err, size_t errlen);

static inline ssize_t pf_stream_recv(struct pf_stream *st, void *buf, size_t len)
{
	return st->ops->recv(st, buf, len);
}

static inline size_t pf_stream_pending(struct pf_stream *st)
{
	return st->ops->pending(st);
}

/* Close the received fds nobody claimed. */
void pf_stream_close_fds(struct pf_stream *st);

static inline void pf_stream_free(struct pf_stream *st)
{
	if (st) {
		pf_stream_close_fds(st);
		st->ops->free(st);
	}
}

/* Move the @n oldest received fds to @out; false if fewer are queued. */
bool pf_stream_take_fds(struct pf_stream *st, int *out, unsigned n);

/*
 * Send what @b holds, without blocking: PF_OK when all is sent, PF_AGAIN
 * when the socket is full (the rest stays in @b), PF_ERR_IO with errno.
 */
int pf_stream_flush(struct pf_stream *st, struct pf_buf *b);

#endif /* PCIEFW_STREAM_H */
