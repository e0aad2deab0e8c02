/* Refusing a second host politely; see busy.h and spec 2.4. */
#include "busy.h"

#include <errno.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "buf.h"
#include "frame.h"
#include "log.h"
#include "msg.h"
#include "pciefw.h"
#include "tls.h"

struct refusal {
	struct refusal *next;
	int fd;
	struct pf_stream *st;
	bool handshaking;           /* a TLS stream before its handshake */
	ev_io rd, wr;
	ev_timer timer;
	struct pf_frame_decoder dec;
	char text[200];
};

static struct refusal *pending;
static unsigned n_pending;

/*
 * Best effort: the Error is a few dozen bytes and the socket is fresh.
 * Over a TLS session that never came up nothing can be sent.
 */
static void answer_and_close(int fd, struct pf_stream *st, const char *text)
{
	struct pf_buf b;

	pf_buf_init(&b);
	if (!pf_put_error(&b, PCIEFW__ERROR_CODE__ERROR_BUSY, text))
		pf_stream_flush(st, &b);
	pf_buf_free(&b);
	pf_stream_free(st);
	close(fd);
}

static void finish(struct ev_loop *loop, struct refusal *r)
{
	struct refusal **p;

	for (p = &pending; *p && *p != r; p = &(*p)->next)
		;
	if (*p)
		*p = r->next;
	n_pending--;
	ev_io_stop(loop, &r->rd);
	ev_io_stop(loop, &r->wr);
	ev_timer_stop(loop, &r->timer);
	answer_and_close(r->fd, r->st, r->text);
	pf_frame_decoder_free(&r->dec);
	free(r);
}

/*
 * A TLS host is answered inside its session, like a served one; its
 * certificate is not checked: it is told only that the device is busy.
 * Returns false when the refusal is over (@r is freed).
 */
static bool handshake(struct ev_loop *loop, struct refusal *r)
{
	char err[300];
	bool want_write;
	int st = pf_tls_handshake(r->st, &want_write, err, sizeof(err));

	if (st == PF_AGAIN) {
		if (want_write)
			ev_io_start(loop, &r->wr);
		else
			ev_io_stop(loop, &r->wr);
		return true;
	}
	ev_io_stop(loop, &r->wr);
	r->handshaking = false;
	if (st == PF_ERR_NO_HELLO) {
		/* A plain-text host is answered in plain text. */
		pf_stream_free(r->st);
		r->st = pf_stream_socket(r->fd);
	}
	if (!r->st || (st != PF_OK && st != PF_ERR_PEER && st != PF_ERR_NO_HELLO)) {
		finish(loop, r);
		return false;
	}
	return true;
}

static void write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	handshake(loop, w->data);
}

/* Done once the host's first frame (its Hello) is read, or it is gone. */
static void read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct refusal *r = w->data;
	uint8_t buf[512];
	ssize_t n;
	size_t off = 0;

	if (r->handshaking && (!handshake(loop, r) || r->handshaking))
		return;
	n = pf_stream_recv(r->st, buf, sizeof(buf));

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0) {
		finish(loop, r);
		return;
	}
	while (off < (size_t)n) {
		const uint8_t *body;
		size_t used, blen;
		int st = pf_frame_decoder_push(&r->dec, buf + off, (size_t)n - off,
					       &used, &body, &blen);

		off += used;
		if (st != PF_AGAIN) {
			finish(loop, r);
			return;
		}
	}
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	finish(loop, w->data);
}

void pf_busy_refuse(struct ev_loop *loop, int fd, struct pf_stream *st,
		    bool tls, const char *text)
{
	struct refusal *r;

	pf_warn("refused a second host: %s", text);
	if (n_pending >= PF_BUSY_MAX_PENDING || !(r = calloc(1, sizeof(*r)))) {
		answer_and_close(fd, st, text);
		return;
	}
	r->fd = fd;
	r->st = st;
	r->handshaking = tls;
	snprintf(r->text, sizeof(r->text), "%s", text);
	pf_frame_decoder_init(&r->dec, PCIEFW_HANDSHAKE_FRAME);
	ev_io_init(&r->rd, read_cb, fd, EV_READ);
	ev_io_init(&r->wr, write_cb, fd, EV_WRITE);
	ev_timer_init(&r->timer, timer_cb, PF_BUSY_WAIT_S, 0);
	r->rd.data = r->wr.data = r->timer.data = r;
	r->next = pending;
	pending = r;
	n_pending++;
	ev_io_start(loop, &r->rd);
	ev_timer_start(loop, &r->timer);
}

void pf_busy_shutdown(struct ev_loop *loop)
{
	while (pending)
		finish(loop, pending);
}
