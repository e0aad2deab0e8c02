/*
 * What every stream shares (stream.h): its owner's readiness wishes, the
 * socket's own readiness for the transports that use it, the fds passed
 * with the bytes, and sending a queue.
 */
#include "stream.h"

#include <string.h>

#include "transport.h"

static void sock_in_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct pf_stream *st = w->data;

	/* The owner may free @st from here: nothing may touch it after. */
	st->ready(st->opaque, PF_STREAM_IN);
}

static void sock_out_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct pf_stream *st = w->data;

	st->ready(st->opaque, PF_STREAM_OUT);
}

void pf_stream_init(struct pf_stream *st, const struct pf_stream_ops *ops,
		    int fd)
{
	memset(st, 0, sizeof(*st));
	st->ops = ops;
	st->fd = fd;
	ev_io_init(&st->sock_in, sock_in_cb, fd, EV_READ);
	ev_io_init(&st->sock_out, sock_out_cb, fd, EV_WRITE);
	st->sock_in.data = st->sock_out.data = st;
}

static void set_watching(struct ev_loop *loop, ev_io *w, bool on)
{
	if (on)
		ev_io_start(loop, w);
	else
		ev_io_stop(loop, w);
}

void pf_stream_watch_socket(struct pf_stream *st, bool in, bool out)
{
	if (!st->loop)
		return;
	set_watching(st->loop, &st->sock_in, in);
	set_watching(st->loop, &st->sock_out, out);
}

void pf_stream_set_handlers(struct pf_stream *st, struct ev_loop *loop,
			    pf_stream_ready_fn *ready, void *opaque)
{
	st->loop = loop;
	st->ready = ready;
	st->opaque = opaque;
	st->want_in = true;
	st->want_out = false;
	st->ops->watch(st);
}

void pf_stream_want_read(struct pf_stream *st, bool on)
{
	if (st->want_in == on)
		return;
	st->want_in = on;
	st->ops->watch(st);
}

void pf_stream_want_write(struct pf_stream *st, bool on)
{
	if (st->want_out == on)
		return;
	st->want_out = on;
	st->ops->watch(st);
}

void pf_stream_stop(struct pf_stream *st)
{
	st->want_in = st->want_out = false;
	st->ops->watch(st);
}

int pf_stream_open(struct pf_stream *st, char *err, size_t errlen)
{
	if (errlen)
		err[0] = '\0';
	return st->ops->open ? st->ops->open(st, err, errlen) : PF_OK;
}

void pf_stream_free(struct pf_stream *st)
{
	if (!st)
		return;
	pf_stream_stop(st);
	pf_fd_queue_clear(&st->fds);
	st->ops->free(st);
}

ssize_t pf_socket_recv(struct pf_stream *st, void *buf, size_t len)
{
	return pf_recv_fds(st->fd, buf, len, &st->fds);
}

bool pf_stream_take_fds(struct pf_stream *st, int *out, unsigned n)
{
	if (n > st->fds.n && st->ops->collect_fds)
		st->ops->collect_fds(st);
	return pf_fd_queue_take(&st->fds, out, n);
}

void pf_stream_move_fds(struct pf_stream *to, struct pf_stream *from)
{
	to->fds = from->fds;
	from->fds.n = 0;
	from->fds.overflow = false;
}

static ssize_t stream_send(void *ctx, const void *buf, size_t len)
{
	struct pf_stream *st = ctx;

	return st->ops->send(st, buf, len);
}

int pf_stream_flush(struct pf_stream *st, struct pf_buf *b)
{
	return pf_buf_drain(b, stream_send, st);
}
