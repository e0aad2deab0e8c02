/* Passing fds on a UNIX socket: fdpass.h, spec 10.2, 11.1. */
#include "fdpass.h"

#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void keep_fds(struct pf_fd_queue *q, struct msghdr *msg)
{
	if (q && (msg->msg_flags & MSG_CTRUNC))
		q->overflow = true;   /* the kernel closed what did not fit */
	for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c; c = CMSG_NXTHDR(msg, c)) {
		size_t n;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < n; i++) {
			int fd;

			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (q && q->n < PCIEFW_MAX_PENDING_FDS) {
				q->fds[q->n++] = fd;
				continue;
			}
			close(fd);
			if (q)
				q->overflow = true;
		}
	}
}

ssize_t pf_recv_fds(int fd, void *buf, size_t len, struct pf_fd_queue *q)
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
	ssize_t n = recvmsg(fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

	if (n >= 0 && msg.msg_controllen)
		keep_fds(q, &msg);
	return n;
}

ssize_t pf_send_fds(int fd, const void *buf, size_t len, const int *fds,
		    unsigned n_fds)
{
	union {
		char buf[CMSG_SPACE(sizeof(int) * PCIEFW_MAX_PENDING_FDS)];
		struct cmsghdr align;
	} control;
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *cmsg;

	if (!n_fds)
		return send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n_fds > PCIEFW_MAX_PENDING_FDS)
		n_fds = PCIEFW_MAX_PENDING_FDS;
	memset(&control, 0, sizeof(control));
	msg.msg_control = control.buf;
	msg.msg_controllen = CMSG_SPACE(sizeof(int) * n_fds);
	cmsg = CMSG_FIRSTHDR(&msg);
	cmsg->cmsg_level = SOL_SOCKET;
	cmsg->cmsg_type = SCM_RIGHTS;
	cmsg->cmsg_len = CMSG_LEN(sizeof(int) * n_fds);
	memcpy(CMSG_DATA(cmsg), fds, sizeof(int) * n_fds);
	return sendmsg(fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
}

bool pf_fd_queue_take(struct pf_fd_queue *q, int *out, unsigned n)
{
	if (n > q->n)
		return false;
	memcpy(out, q->fds, n * sizeof(int));
	memmove(q->fds, q->fds + n, (q->n - n) * sizeof(int));
	q->n -= n;
	return true;
}

void pf_fd_queue_clear(struct pf_fd_queue *q)
{
	for (unsigned i = 0; i < q->n; i++)
		close(q->fds[i]);
	q->n = 0;
}
