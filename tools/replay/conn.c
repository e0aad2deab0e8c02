/*
 * The replay's end of a connection: a frame at a time in, a queue out.
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

void rp_conn_init(struct rp_conn *c, int fd)
{
	memset(c, 0, sizeof(*c));
	c->fd = fd;
	pf_frame_decoder_init(&c->dec, PCIEFW_HANDSHAKE_FRAME);
	pf_codec_init(&c->codec);
	pf_buf_init(&c->out);
	c->rbuf = malloc(RBUF_SIZE);
	c->max_payload = PCIEFW_MAX_PAYLOAD;
}

void rp_conn_free(struct rp_conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	pf_frame_decoder_free(&c->dec);
	pf_codec_free(&c->codec);
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

/* One whole frame from the bytes already received, if there is one. */
static int take_frame(struct rp_conn *c, PfMessage **m)
{
	while (c->roff < c->rlen) {
		const uint8_t *body;
		size_t used, len;
		char err[256];
		int r = pf_frame_decoder_push(&c->dec, c->rbuf + c->roff,
					      c->rlen - c->roff, &used, &body, &len);

		c->roff += used;
		if (r == PF_AGAIN)
			break;
		if (r < 0) {
			snprintf(c->why, sizeof(c->why), "framing error: %s",
				 pf_strerror(r));
			return r;
		}
		r = pf_codec_decode(&c->codec, body, len, m, err, sizeof(err));
		if (!r)
			r = pf_msg_validate(*m, c->max_payload, err, sizeof(err));
		if (r) {
			snprintf(c->why, sizeof(c->why), "bad message: %s", err);
			return r;
		}
		return PF_OK;
	}
	c->roff = c->rlen = 0;
	return PF_AGAIN;
}

int rp_conn_next(struct rp_conn *c, int timeout_ms, PfMessage **m)
{
	uint64_t deadline = rp_mono_ns() +
			    (uint64_t)(timeout_ms > 0 ? timeout_ms : 0) * 1000000ull;

	for (;;) {
		struct pollfd p = { .fd = c->fd, .events = POLLIN };
		int r = take_frame(c, m), wait;
		ssize_t n;

		if (r != PF_AGAIN)
			return r;
		if (c->eof) {
			snprintf(c->why, sizeof(c->why), "connection closed%s",
				 pf_frame_decoder_finish(&c->dec) == PF_EOF ? "" :
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
