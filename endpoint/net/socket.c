/*
 * Socket backends compatible with QEMU's -netdev dgram (one frame per
 * datagram) and -netdev stream (4-byte big-endian length, then the frame),
 * so a pciefw NIC can be wired to another VM (docs/nic.md section 7).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "backend.h"
#include "buf.h"
#include "device.h"
#include "log.h"
#include "pciefw.h"
#include "transport.h"

#define MAX_FRAME 65536
/*
 * stream: frames waiting for the peer to read.  Beyond this they are
 * dropped, as a NIC drops what it cannot put on the wire: the endpoint's
 * loop never waits for a peer (docs/protocol.md 5.2).
 */
#define STREAM_QUEUE_MAX (256 * 1024)

struct sock_net {
	struct pf_net net;
	int fd;              /* dgram socket, or the stream connection */
	int listen_fd;       /* stream: listening socket, or -1 */
	ev_io rd, wr, acc;
	ev_timer retry;
	struct sockaddr_storage remote;
	socklen_t remote_len;
	struct pf_addr connect_to;
	bool is_stream;
	uint8_t buf[4 + MAX_FRAME];
	size_t have;
	struct pf_buf out;   /* stream: queued for the peer */
	uint64_t dropped;    /* stream: frames dropped with the queue full */
};

/* "udp:HOST:PORT" or "unix:PATH" into a sockaddr. */
static int dgram_addr(const char *spec, struct sockaddr_storage *ss,
		      socklen_t *len, char *err, size_t errlen)
{
	memset(ss, 0, sizeof(*ss));
	if (!strncmp(spec, "unix:", 5)) {
		struct sockaddr_un *sun = (struct sockaddr_un *)ss;

		if (strlen(spec + 5) >= sizeof(sun->sun_path) || !spec[5])
			goto bad;
		sun->sun_family = AF_UNIX;
		strcpy(sun->sun_path, spec + 5);
		*len = sizeof(*sun);
		return 0;
	}
	if (!strncmp(spec, "udp:", 4)) {
		struct pf_addr a;
		char tcp[300];
		struct addrinfo hints = { .ai_socktype = SOCK_DGRAM }, *res;
		char port[8];

		snprintf(tcp, sizeof(tcp), "tcp:%s", spec + 4);
		if (pf_addr_parse(tcp, &a, err, errlen))
			goto bad;
		snprintf(port, sizeof(port), "%u", a.port);
		if (getaddrinfo(a.host, port, &hints, &res))
			goto bad;
		memcpy(ss, res->ai_addr, res->ai_addrlen);
		*len = res->ai_addrlen;
		freeaddrinfo(res);
		return 0;
	}
bad:
	snprintf(err, errlen, "'%s': expected udp:HOST:PORT or unix:PATH", spec);
	return -1;
}

static void deliver_datagrams(struct ev_loop *loop, ev_io *w, int revents)
{
	struct sock_net *s = w->data;

	for (int i = 0; i < 64; i++) {
		ssize_t n = recv(s->fd, s->buf, MAX_FRAME, MSG_DONTWAIT);

		if (n <= 0)
			return;
		pf_net_deliver(&s->net, s->buf, (size_t)n);
	}
}

static struct pf_net *dgram_create(struct ev_loop *loop, struct pf_dev *dev,
				   char *err, size_t errlen)
{
	const char *local = pf_dev_option(dev, "local");
	const char *remote = pf_dev_option(dev, "remote");
	struct sockaddr_storage l;
	socklen_t llen;
	struct sock_net *s;

	if (!local || !*local || !remote || !*remote) {
		snprintf(err, errlen, "backend dgram needs local= and remote=");
		return NULL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	if (dgram_addr(local, &l, &llen, err, errlen) ||
	    dgram_addr(remote, &s->remote, &s->remote_len, err, errlen))
		goto fail;
	s->fd = socket(l.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->fd < 0)
		goto sys;
	if (l.ss_family == AF_UNIX)
		unlink(((struct sockaddr_un *)&l)->sun_path);
	if (bind(s->fd, (struct sockaddr *)&l, llen) < 0)
		goto sys;
	ev_io_init(&s->rd, deliver_datagrams, s->fd, EV_READ);
	s->rd.data = s;
	ev_io_start(loop, &s->rd);
	s->listen_fd = -1;
	s->net.link_up = true;
	return &s->net;
sys:
	snprintf(err, errlen, "dgram backend on %s: %s", local, strerror(errno));
	if (s->fd > 0)
		close(s->fd);
fail:
	free(s);
	return NULL;
}

static void dgram_send(struct pf_net *n, const uint8_t *frame, size_t len)
{
	struct sock_net *s = (struct sock_net *)n;

	/* A missing peer is an unplugged cable: the frame is lost. */
	sendto(s->fd, frame, len, MSG_DONTWAIT, (struct sockaddr *)&s->remote,
	       s->remote_len);
}

static void sock_destroy(struct pf_net *n)
{
	struct sock_net *s = (struct sock_net *)n;

	ev_io_stop(n->loop, &s->rd);
	ev_io_stop(n->loop, &s->wr);
	ev_io_stop(n->loop, &s->acc);
	pf_buf_free(&s->out);
	ev_timer_stop(n->loop, &s->retry);
	if (s->fd >= 0)
		close(s->fd);
	if (s->listen_fd >= 0)
		close(s->listen_fd);
	free(s);
}

/* ---- stream ---- */

static void stream_attach(struct sock_net *s, int fd);

static void stream_drop(struct sock_net *s, const char *why)
{
	pf_info("stream backend: peer %s; link down", why);
	ev_io_stop(s->net.loop, &s->rd);
	ev_io_stop(s->net.loop, &s->wr);
	close(s->fd);
	s->fd = -1;
	s->have = 0;
	pf_buf_clear(&s->out);
	pf_net_set_link(&s->net, false);
	if (s->listen_fd < 0) {
		ev_timer_set(&s->retry, 1.0, 0);
		ev_timer_start(s->net.loop, &s->retry);
	}
}

static void stream_read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct sock_net *s = w->data;
	ssize_t n = recv(s->fd, s->buf + s->have, sizeof(s->buf) - s->have,
			 MSG_DONTWAIT);

	if (n <= 0) {
		if (n == 0 || (errno != EAGAIN && errno != EINTR))
			stream_drop(s, n == 0 ? "closed" : strerror(errno));
		return;
	}
	s->have += (size_t)n;
	while (s->have >= 4) {
		uint32_t len;

		memcpy(&len, s->buf, 4);
		len = ntohl(len);
		if (len == 0 || len > MAX_FRAME) {
			stream_drop(s, "sent a bad frame length");
			return;
		}
		if (s->have < 4 + len)
			break;
		pf_net_deliver(&s->net, s->buf + 4, len);
		memmove(s->buf, s->buf + 4 + len, s->have - 4 - len);
		s->have -= 4 + len;
	}
}

/* Send what the peer takes now; wait for writability for the rest. */
static void stream_flush(struct sock_net *s)
{
	int r = pf_buf_send(s->fd, &s->out);

	if (r == PF_AGAIN) {
		ev_io_start(s->net.loop, &s->wr);
		return;
	}
	ev_io_stop(s->net.loop, &s->wr);
	if (r < 0)
		stream_drop(s, "write failed");
}

static void stream_write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	stream_flush(w->data);
}

static void stream_attach(struct sock_net *s, int fd)
{
	s->fd = fd;
	s->have = 0;
	pf_buf_clear(&s->out);
	pf_tune_socket(fd);
	pf_set_nonblock(fd, 1);
	ev_io_init(&s->rd, stream_read_cb, fd, EV_READ);
	s->rd.data = s;
	ev_io_init(&s->wr, stream_write_cb, fd, EV_WRITE);
	s->wr.data = s;
	ev_io_start(s->net.loop, &s->rd);
	pf_net_set_link(&s->net, true);
}

static void stream_accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct sock_net *s = w->data;
	int fd = accept4(s->listen_fd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	if (s->fd >= 0) {           /* one peer, as QEMU's stream netdev */
		close(fd);
		return;
	}
	pf_info("stream backend: peer connected; link up");
	stream_attach(s, fd);
}

static void stream_retry_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct sock_net *s = w->data;
	char err[256];
	int fd = pf_connect(&s->connect_to, err, sizeof(err));

	if (fd < 0) {
		ev_timer_set(&s->retry, 1.0, 0);
		ev_timer_start(loop, &s->retry);
		return;
	}
	pf_info("stream backend: connected; link up");
	stream_attach(s, fd);
}

static struct pf_net *stream_create(struct ev_loop *loop, struct pf_dev *dev,
				    char *err, size_t errlen)
{
	const char *listen = pf_dev_option(dev, "listen");
	const char *connect = pf_dev_option(dev, "connect");
	struct sock_net *s;
	struct pf_addr a;

	if (!!(listen && *listen) == !!(connect && *connect)) {
		snprintf(err, errlen, "backend stream needs exactly one of listen= and connect=");
		return NULL;
	}
	if (pf_addr_parse(listen && *listen ? listen : connect, &a, err, errlen))
		return NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->is_stream = true;
	s->fd = s->listen_fd = -1;
	s->net.loop = loop;
	ev_init(&s->retry, stream_retry_cb);
	s->retry.data = s;
	if (listen && *listen) {
		s->listen_fd = pf_listen(&a, err, errlen);
		if (s->listen_fd < 0) {
			free(s);
			return NULL;
		}
		ev_io_init(&s->acc, stream_accept_cb, s->listen_fd, EV_READ);
		s->acc.data = s;
		ev_io_start(loop, &s->acc);
	} else {
		s->connect_to = a;
		ev_timer_set(&s->retry, 0, 0);
		ev_timer_start(loop, &s->retry);
	}
	return &s->net;
}

static void stream_send(struct pf_net *n, const uint8_t *frame, size_t len)
{
	struct sock_net *s = (struct sock_net *)n;
	uint32_t be = htonl((uint32_t)len);

	if (s->fd < 0)
		return;
	/* Whole frames only: a frame that does not fit is dropped whole. */
	if (pf_buf_used(&s->out) + 4 + len > STREAM_QUEUE_MAX) {
		if (s->dropped++ % 1000 == 0)
			pf_warn("stream backend: peer not reading; %llu frame(s) dropped",
				(unsigned long long)s->dropped);
		return;
	}
	if (pf_buf_append(&s->out, &be, 4) || pf_buf_append(&s->out, frame, len)) {
		stream_drop(s, "out of memory");
		return;
	}
	stream_flush(s);
}

const struct pf_net_ops pf_net_dgram_ops = {
	.name = "dgram",
	.create = dgram_create,
	.send = dgram_send,
	.destroy = sock_destroy,
};

const struct pf_net_ops pf_net_stream_ops = {
	.name = "stream",
	.create = stream_create,
	.send = stream_send,
	.destroy = sock_destroy,
};
