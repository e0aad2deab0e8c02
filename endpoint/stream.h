/*
 * The byte stream under a host connection: the socket itself, TLS over it
 * (tls.h), or the shared-memory rings beside it (stream_ring.c).
 *
 * Each transport owns its readiness: it watches whatever tells it that
 * bytes or room may be there -- its socket, a doorbell, data it already
 * holds -- and tells its owner through one callback.  The owner reads,
 * writes and says what it waits for through these operations only, so it
 * never knows which transport it has.
 */
#ifndef PCIEFW_STREAM_H
#define PCIEFW_STREAM_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "buf.h"
#include "fdpass.h"
#include "pciefw.h"

struct pf_stream;

/* What a stream tells its owner (pf_stream_ready_fn's @events). */
enum {
	PF_STREAM_IN = 1,       /* recv has news: bytes, the end, an error */
	PF_STREAM_OUT = 2,      /* room to send again after PF_AGAIN */
};

typedef void pf_stream_ready_fn(void *opaque, unsigned events);

struct pf_stream_ops {
	/*
	 * Like recv()/send() on a non-blocking socket: bytes moved, 0 at the
	 * peer's end of stream (recv), or -1 with errno set: EAGAIN (wait
	 * for readiness), EBADMSG (the host broke the transport's rule and
	 * can still be told why: st->why), EPROTO with st->why set (nothing
	 * can be carried any more), or the socket's own.  recv returns all
	 * the stream holds, up to @len: a short read means it held no more.
	 */
	ssize_t (*recv)(struct pf_stream *st, void *buf, size_t len);
	ssize_t (*send)(struct pf_stream *st, const void *buf, size_t len);
	/*
	 * Watch, on st->loop, for what the owner waits for (st->want_in,
	 * st->want_out), and stop watching what it no longer does.
	 */
	void (*watch)(struct pf_stream *st);
	/* Frees the stream; the socket is closed by its owner. */
	void (*free)(struct pf_stream *st);
	/* Optional: see pf_stream_open(). */
	int (*open)(struct pf_stream *st, char *err, size_t errlen);
	/* Optional: fds that wait beside the bytes, collected now. */
	void (*collect_fds)(struct pf_stream *st);
};

struct pf_stream {
	const struct pf_stream_ops *ops;
	int fd;                         /* the connected socket */
	/* Readiness: whom to tell, and what the owner waits for. */
	struct ev_loop *loop;
	pf_stream_ready_fn *ready;
	void *opaque;
	bool want_in, want_out;
	/* The socket's readiness, for transports that watch it. */
	ev_io sock_in, sock_out;
	/*
	 * File descriptors received with the bytes (SCM_RIGHTS on a UNIX
	 * socket), oldest first, not yet claimed (docs/protocol.md 10.2).
	 */
	struct pf_fd_queue fds;
	char why[200];                  /* what EBADMSG or EPROTO meant */
};

/* For transports: a stream of @ops over the socket @fd. */
void pf_stream_init(struct pf_stream *st, const struct pf_stream_ops *ops,
		    int fd);
/* For transports: watch the socket for input and/or room. */
void pf_stream_watch_socket(struct pf_stream *st, bool in, bool out);

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

/*
 * Tell @ready on @loop when @st has news; input is waited for from now
 * on, room only when asked (pf_stream_want_write).
 */
void pf_stream_set_handlers(struct pf_stream *st, struct ev_loop *loop,
			    pf_stream_ready_fn *ready, void *opaque);
void pf_stream_want_read(struct pf_stream *st, bool on);
void pf_stream_want_write(struct pf_stream *st, bool on);
/* Wait for nothing more (the owner is closing). */
void pf_stream_stop(struct pf_stream *st);

/*
 * What must happen before bytes flow, e.g. a TLS handshake, driven by the
 * owner at each readiness: PF_OK once done, with @err saying what was
 * opened, for the log (or empty); PF_AGAIN while under way; otherwise an
 * error with @err saying why: PF_ERR_NO_HELLO (the host speaks plain
 * text: the stream carries it so from now on, so that it can be told
 * why), PF_ERR_PEER (open, but the host is not trusted: it can be told
 * why), or another (nothing can be sent).  PF_OK at once for a stream
 * with nothing to open.
 */
int pf_stream_open(struct pf_stream *st, char *err, size_t errlen);

static inline bool pf_stream_needs_open(const struct pf_stream *st)
{
	return st->ops->open != NULL;
}

static inline ssize_t pf_stream_recv(struct pf_stream *st, void *buf, size_t len)
{
	return st->ops->recv(st, buf, len);
}

/* Stops watching, closes the received fds nobody claimed, frees. */
void pf_stream_free(struct pf_stream *st);

/* Move the @n oldest received fds to @out; false if fewer are queued. */
bool pf_stream_take_fds(struct pf_stream *st, int *out, unsigned n);
/* Hand the fds still queued in @from to @to (the stream changed). */
void pf_stream_move_fds(struct pf_stream *to, struct pf_stream *from);

/*
 * Send what @b holds, without blocking: PF_OK when all is sent, PF_AGAIN
 * when the stream is full (the rest stays in @b), PF_ERR_IO with errno.
 */
int pf_stream_flush(struct pf_stream *st, struct pf_buf *b);

#endif /* PCIEFW_STREAM_H */
