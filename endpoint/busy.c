/* Refusing a second host politely; see busy.h and spec 2.4. */
#include "busy.h"

#include <errno.h>
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "msg.h"
#include "pciefw.h"
#include "rx.h"
#include "stream.h"

struct refusal {
	struct refusal *next;
	struct ev_loop *loop;
	int fd;
	struct pf_stream *st;
	bool opening;               /* the stream's handshake (TLS) first */
	ev_timer timer;
	/*
	 * The host's first frame, read as any session's first (the Hello
	 * rule's limits); whatever it is, it ends the wait.  Nothing more is
	 * taken: a kind without a handler is an error here.
	 */
	struct pf_hello_params hello;
	struct pf_rx rx;
	char text[200];
};

static const struct pf_rx_handlers no_handlers;

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

static void finish(struct refusal *r)
{
	struct refusal **p;

	for (p = &pending; *p && *p != r; p = &(*p)->next)
		;
	if (*p)
		*p = r->next;
	n_pending--;
	ev_timer_stop(r->loop, &r->timer);
	answer_and_close(r->fd, r->st, r->text);
	pf_rx_free(&r->rx);
	free(r);
}

/*
 * A TLS host is answered inside its session, like a served one; its
 * certificate is not checked: it is told only that the device is busy.
 * A plain-text host is answered in plain text.  Returns false when the
 * refusal is over (@r is freed) or the handshake goes on.
 */
static bool opened(struct refusal *r)
{
	char err[300];
	int st = pf_stream_open(r->st, err, sizeof(err));

	if (st == PF_AGAIN)
		return false;
	r->opening = false;
	if (st != PF_OK && st != PF_ERR_PEER && st != PF_ERR_NO_HELLO) {
		finish(r);
		return false;
	}
	return true;
}

/* Done once the host's first frame (its Hello) is read, or it is gone. */
static void ready_cb(void *opaque, unsigned events)
{
	struct refusal *r = opaque;
	uint8_t buf[512];
	size_t used;
	ssize_t n;

	if (r->opening && !opened(r))
		return;
	n = pf_stream_recv(r->st, buf, sizeof(buf));
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return;
	if (n <= 0 || pf_rx_push(&r->rx, buf, (size_t)n, &used) != PF_OK ||
	    r->rx.hello_done)
		finish(r);
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	finish(w->data);
}

void pf_busy_refuse(struct ev_loop *loop, int fd, struct pf_stream *st,
		    const char *text)
{
	struct refusal *r;

	pf_warn("refused a second host: %s", text);
	if (n_pending >= PF_BUSY_MAX_PENDING || !(r = calloc(1, sizeof(*r)))) {
		answer_and_close(fd, st, text);
		return;
	}
	pf_hello_defaults(&r->hello, "pciefw-endpoint");
	if (pf_rx_init(&r->rx, &no_handlers, r, PF_DIR_TO_ENDPOINT, &r->hello,
		       NULL) != PF_OK) {
		free(r);
		answer_and_close(fd, st, text);
		return;
	}
	r->loop = loop;
	r->fd = fd;
	r->st = st;
	r->opening = pf_stream_needs_open(st);
	snprintf(r->text, sizeof(r->text), "%s", text);
	ev_timer_init(&r->timer, timer_cb, PF_BUSY_WAIT_S, 0);
	r->timer.data = r;
	r->next = pending;
	pending = r;
	n_pending++;
	pf_stream_set_handlers(st, loop, ready_cb, r);
	ev_timer_start(loop, &r->timer);
}

void pf_busy_shutdown(struct ev_loop *loop)
{
	while (pending)
		finish(pending);
}
