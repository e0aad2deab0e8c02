/* The plain byte stream: recv()/send() on the connected socket. */
#include "stream.h"

#include <stdlib.h>
#include <sys/socket.h>

static ssize_t socket_send(struct pf_stream *st, const void *buf, size_t len)
{
	return send(st->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
}

/* Readiness is the socket's. */
static void socket_watch(struct pf_stream *st)
{
	pf_stream_watch_socket(st, st->want_in, st->want_out);
}

static void socket_free(struct pf_stream *st)
{
	free(st);
}

static const struct pf_stream_ops socket_ops = {
	.recv = pf_socket_recv,
	.send = socket_send,
	.watch = socket_watch,
	.free = socket_free,
};

struct pf_stream *pf_stream_socket(int fd)
{
	struct pf_stream *st = malloc(sizeof(*st));

	if (st)
		pf_stream_init(st, &socket_ops, fd);
	return st;
}
