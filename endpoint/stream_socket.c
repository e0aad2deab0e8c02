/* The plain byte stream: recv()/send() on the connected socket. */
#include "stream.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "transport.h"

static ssize_t socket_recv(struct pf_stream *st, void *buf, size_t len)
{
	return recv(st->fd, buf, len, MSG_DONTWAIT);
}

static ssize_t socket_send(struct pf_stream *st, const void *buf, size_t len)
{
	return send(st->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
}

static size_t socket_pending(struct pf_stream *st)
{
	return 0;
}

static void socket_free(struct pf_stream *st)
{
	free(st);
}

static const struct pf_stream_ops socket_ops = {
	.recv = socket_recv,
	.send = socket_send,
	.pending = socket_pending,
	.free = socket_free,
};

struct pf_stream *pf_stream_socket(int fd)
{
	struct pf_stream *st = calloc(1, sizeof(*st));

	if (st) {
		st->ops = &socket_ops;
		st->fd = fd;
	}
	return st;
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
