/* The plain byte stream: recv()/send() on the connected socket. */
#include "stream.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport.h"

/* Keep the fds that came with the bytes; more than fit are closed. */
static void keep_fds(struct pf_stream *st, struct msghdr *msg)
{
	if (msg->msg_flags & MSG_CTRUNC)
		st->fd_overflow = true;   /* the kernel closed what did not fit */
	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
		size_t n;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (st->n_fds < PCIEFW_MAX_PENDING_FDS) {
				st->fds[st->n_fds++] = fd;
			} else {
				close(fd);
				st->fd_overflow = true;
			}
		}
	}
}

/*
 * recvmsg() so that fds passed on a UNIX socket are received, not lost
 * (docs/protocol.md 10.2); on TCP no control data ever comes.
 */
ssize_t pf_socket_recv(struct pf_stream *st, void *buf, size_t len)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * PCIEFW_MAX_PENDING_FDS)];
		struct cmsghdr align;
	} control;
	struct iovec iov = { .iov_base = buf, .iov_len = len };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1,
		.msg_control = control.buf, .msg_controllen = sizeof(control.buf),
	};
	ssize_t n = recvmsg(st->fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

	if (n >= 0 && msg.msg_controllen)
		keep_fds(st, &msg);
	return n;
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
	.recv = pf_socket_recv,
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
		st->wake_fd = -1;
	}
	return st;
}

void pf_stream_close_fds(struct pf_stream *st)
{
	for (unsigned i = 0; i < st->n_fds; i++)
		close(st->fds[i]);
	st->n_fds = 0;
}

bool pf_stream_take_fds(struct pf_stream *st, int *out, unsigned n)
{
	if (n > st->n_fds && st->ops->collect_fds)
		st->ops->collect_fds(st);
	if (n > st->n_fds)
		return false;
	memcpy(out, st->fds, n * sizeof(int));
	memmove(st->fds, st->fds + n, (st->n_fds - n) * sizeof(int));
	st->n_fds -= n;
	return true;
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
