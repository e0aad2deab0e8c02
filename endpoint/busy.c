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

struct refusal {
	struct refusal *next;
	int fd;
	ev_io rd;
	ev_timer timer;
	struct pf_frame_decoder dec;
	char text[200];
};

static struct refusal *pending;
static unsigned n_pending;

/* Best effort: the Error is a few dozen bytes and the socket is fresh. */
static void answer_and_close(int fd, const char *text)
{
	struct pf_buf b;

	pf_buf_init(&b);
	if (!pf_put_error(&b, PCIEFW__ERROR_CODE__ERROR_BUSY, text))
		send(fd, pf_buf_peek(&b), pf_buf_used(&b), MSG_NOSIGNAL | MSG_DONTWAIT);
	pf_buf_free(&b);
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
	ev_timer_stop(loop, &r->timer);
	answer_and_close(r->fd, r->text);
	pf_frame_decoder_free(&r->dec);
	free(r);
}

/* Done once the host's first frame (its Hello) is read, or it is gone. */
static void read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct refusal *r = w->data;
	uint8_t buf[512];
	ssize_t n = recv(r->fd, buf, sizeof(buf), MSG_DONTWAIT);
	size_t off = 0;

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

void pf_busy_refuse(struct ev_loop *loop, int fd, const char *text)
{
	struct refusal *r;

	pf_warn("refused a second host: %s", text);
	if (n_pending >= PF_BUSY_MAX_PENDING || !(r = calloc(1, sizeof(*r)))) {
		answer_and_close(fd, text);
		return;
	}
	r->fd = fd;
	snprintf(r->text, sizeof(r->text), "%s", text);
	pf_frame_decoder_init(&r->dec, PCIEFW_HANDSHAKE_FRAME);
	ev_io_init(&r->rd, read_cb, fd, EV_READ);
	ev_timer_init(&r->timer, timer_cb, PF_BUSY_WAIT_S, 0);
	r->rd.data = r->timer.data = r;
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
