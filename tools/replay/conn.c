/*
 * The replay's end of a connection: a message at a time in, through the
 * session's receiving half (rx.h) without its handshake (the engine
 * compares the peer's Hello before it agrees it), and a queue out.
 * Waiting for input always drains output and vice versa, so neither side
 * can block the other (spec 5.3).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "replay.h"
#include "transport.h"

#define RBUF_SIZE (256 * 1024)

uint64_t rp_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Every message is the engine's, Goodbye and Error too: one at a time. */
static int take(void *opaque, const PfMessage *m, char *err, size_t errlen)
{
	((struct rp_conn *)opaque)->got = m;
	return PF_RX_PAUSE;
}

static void take_last(void *opaque, const PfMessage *m)
{
	((struct rp_conn *)opaque)->got = m;
}

static const struct pf_rx_handlers take_all = {
	.on = { [1 ... PF_MSG_KINDS - 1] = take },
	.ended = take_last,
};

void rp_conn_init(struct rp_conn *c, int fd)
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	pf_rx_init(&c->rx, &take_all, c, PF_DIR_TO_HOST, NULL, NULL);
	/* Until the handshake, its limits (spec 1.3). */
	pf_rx_set_max_payload(&c->rx, 0);
	pf_buf_init(&c->out);
	c->rbuf = malloc(RBUF_SIZE);
}

void rp_conn_set_max_payload(struct rp_conn *c, uint32_t max_payload)
{
	pf_rx_set_max_payload(&c->rx, max_payload);
}

void rp_conn_free(struct rp_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	pf_rx_free(&c->rx);
	pf_buf_free(&c->out);
	free(c->rbuf);
	c->rbuf = NULL;
}

/* Write what the socket takes without blocking. */
static int try_write(struct rp_conn *c)
{
	int r = pf_buf_send(c->fd, &c->out);

	if (r >= 0)
		return 0;
	snprintf(c->why, sizeof(c->why), "write failed: %s", strerror(errno));
	pf_buf_clear(&c->out);
	return PF_ERR_CLOSED;
}

int rp_conn_send_buf(struct rp_conn *c, struct pf_buf *b)
{
	if (pf_buf_append(&c->out, pf_buf_peek(b), pf_buf_used(b)))
		return PF_ERR_NOMEM;
	return try_write(c);
}

int rp_conn_send(struct rp_conn *c, const PfMessage *m)
{
	int r = pf_codec_encode(m, &c->out);

	return r ? r : try_write(c);
}

/*
 * The next message in the bytes already received, if a whole one is
 * there.  After the peer's Goodbye or Error its bytes are not read as
 * messages (spec 7.2): the engine waits for the end of the stream.
 */
static int take_message(struct rp_conn *c, PfMessage **m)
{
	size_t used;
	int r;

	c->got = NULL;
	r = pf_rx_push(&c->rx, c->rbuf + c->roff, c->rlen - c->roff, &used);
	c->roff += used;
	if (c->got) {
		*m = (PfMessage *)c->got;
		return PF_OK;
	}
	if (r == PF_OK || r == PF_EOF) {
		c->roff = c->rlen = 0;
		return PF_AGAIN;
	}
	snprintf(c->why, sizeof(c->why), "bad message: %s", c->rx.why);
	return r;
}

int rp_conn_next(struct rp_conn *c, int timeout_ms, PfMessage **m)
{
	uint64_t deadline = rp_mono_ns() +
			    (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000ull;

	for (;;) {
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		int r = take_message(c, m), wait;
		ssize_t n;

		if (r != PF_AGAIN)
			return r;
		if (c->eof) {
			snprintf(c->why, sizeof(c->why), "connection closed%s",
				 pf_rx_finish(&c->rx) == PF_EOF ? "" :
				 " in the middle of a message");
			return PF_ERR_CLOSED;
		}
		if (!pf_buf_empty(&c->out))
			p.events |= POLLOUT;
		if (timeout_ms < 0) {
			wait = -1;
		} else {
			uint64_t now = rp_mono_ns();

			wait = now >= deadline ? 0 :
			       (int)((deadline - now + 999999) / 1000000);
		}
		r = poll(&p, 1, wait);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			snprintf(c->why, sizeof(c->why), "poll: %s", strerror(errno));
			return PF_ERR_IO;
		}
		if (r == 0) {
			if (timeout_ms >= 0 && rp_mono_ns() >= deadline)
				return PF_ERR_TIMEOUT;
			continue;
		}
		if (p.revents & POLLOUT) {
			r = try_write(c);
			if (r)
				return r;
		}
		if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		n = recv(c->fd, c->rbuf + c->rlen, RBUF_SIZE - c->rlen, MSG_DONTWAIT);
		if (n < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK))
			continue;
		if (n < 0) {
			/* A reset connection: the peer is gone, as after a close. */
			c->eof = true;
			continue;
		}
		if (n == 0)
			c->eof = true;
		c->rlen += (size_t)n;
	}
}

int rp_conn_flush(struct rp_conn *c, int timeout_ms)
{
	uint64_t deadline = rp_mono_ns() + (uint64_t)timeout_ms * 1000000ull;

	while (!pf_buf_empty(&c->out)) {
		struct pollfd p = { .fd = c->fd, .events = POLLOUT };
		uint64_t now = rp_mono_ns();
		int r = try_write(c);

		if (r)
			return r;
		if (pf_buf_empty(&c->out))
			break;
		if (now >= deadline)
			return PF_ERR_TIMEOUT;
		poll(&p, 1, (int)((deadline - now) / 1000000) + 1);
	}
	return 0;
}
