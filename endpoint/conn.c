/* The endpoint's connection to its host: conn.h, spec 1, 2, 5.3, 7, 11.1. */
#include "conn.h"

#include <errno.h>
#include <ev.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "defer.h"
#include "device.h"
#include "log.h"
#include "msg.h"
#include "regrec.h"
#include "stream.h"

#define READ_CHUNK (64 * 1024)
/* Reads per readiness before yielding to other watchers (fairness). */
#define READS_PER_EVENT 16
/* Unread input read at close, so the host sees our end, not a reset. */
#define CLOSE_DRAIN_BYTES (256 * 1024)

/* CONN_OPENING: the stream's handshake; our Hello waits in the queue. */
enum conn_state { CONN_OPENING, CONN_HELLO, CONN_READY };

struct pf_conn {
	struct pf_conn_config cfg;
	char name[80];
	struct pf_hello_params hello;   /* ours, as offered */
	struct pf_stream *st;
	enum conn_state state;
	struct pf_rx rx;
	struct pf_rx_handlers table;    /* ours, over cfg.h */
	bool attached;
	bool opened;                /* the stream had a handshake, and it is done */
	bool received;              /* the host sent something after it */
	/*
	 * Refused, with the reason queued after our Hello: closed once the
	 * host's Hello is read (closing with it unread would reset the
	 * connection, and the host might never read why).
	 */
	char refusal[300];
	/*
	 * Spec 11.1: a RingSetup may only be the host's first message after
	 * our DeviceDescription, once.
	 */
	bool ring_setup_allowed;
	struct pf_buf out;
	/*
	 * Over PF_OUT_QUEUE_MAX of output the host's input is not read
	 * (docs/protocol.md 1.3): what was read but not handled waits here.
	 */
	struct pf_buf backlog;
	bool throttled;
	bool in_dispatch;           /* output is flushed at the batch's end */
	/* Requests held behind a deferred read (5.3), decoded again later. */
	bool holding, draining;
	struct pf_defer_queue held;
	struct pf_codec held_codec;
	bool records;               /* binary register records on (11.7) */
	ev_idle reaper;             /* closes a connection that failed */
	bool dead;
	char why[300];              /* why it is closing, for the log */
};

static void conn_read(struct pf_conn *c, int max_reads, bool to_eof);
static void ready_cb(void *opaque, unsigned events);

/* ---- Failing and output ---- */

static void conn_fail(struct pf_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/*
 * Mark the connection broken; it is closed from the loop, not from here,
 * because we may be deep inside a model callback.
 */
static void conn_fail(struct pf_conn *c, const char *fmt, ...)
{
	va_list ap;

	if (c->dead)
		return;
	va_start(ap, fmt);
	vsnprintf(c->why, sizeof(c->why), fmt, ap);
	va_end(ap);
	c->dead = true;
	pf_stream_stop(c->st);
	ev_idle_start(c->cfg.loop, &c->reaper);
}

static void conn_flush(struct pf_conn *c)
{
	int r;

	if (c->dead || c->state == CONN_OPENING)
		return;
	r = pf_stream_flush(c->st, &c->out);
	/* Full: keep reading meanwhile, the deadlock rule (spec 5.3). */
	pf_stream_want_write(c->st, r == PF_AGAIN);
	if (r < 0)
		conn_fail(c, "write failed: %s", strerror(errno));
}

bool pf_conn_records(const struct pf_conn *c)
{
	return c->records;
}

size_t pf_conn_out_queued(const struct pf_conn *c)
{
	return pf_buf_used(&c->out);
}

struct pf_buf *pf_conn_out_begin(struct pf_conn *c, size_t *mark)
{
	*mark = pf_buf_used(&c->out);
	return &c->out;
}

void pf_conn_out_end(struct pf_conn *c, size_t mark)
{
	size_t added = pf_buf_used(&c->out) - mark;

	if (c->cfg.trace && added)
		pf_trace_write_frames(c->cfg.trace, pf_now_ns(), PF_DIR_TO_HOST,
				      pf_buf_peek(&c->out) + mark, added);
	/* Inside a read batch, one flush at the end sends everything at once. */
	if (!c->in_dispatch)
		conn_flush(c);
}

bool pf_conn_take_fds(struct pf_conn *c, int *out, unsigned n)
{
	return pf_stream_take_fds(c->st, out, n);
}

const char *pf_conn_name(const struct pf_conn *c)
{
	return c->name;
}

bool pf_conn_tracing(const struct pf_conn *c)
{
	return c->cfg.trace != NULL;
}

void pf_conn_trace_note(struct pf_conn *c, int dir, const char *note)
{
	if (c->cfg.trace)
		pf_trace_write_note(c->cfg.trace, pf_now_ns(), (enum pf_dir)dir,
				    note);
}

void pf_conn_trace_frames(struct pf_conn *c, int dir, const struct pf_buf *b,
			  const char *note)
{
	struct pf_trace_writer *tw = c->cfg.trace;
	const uint8_t *p = pf_buf_peek(b), *end = p + pf_buf_used(b);
	uint64_t now = pf_now_ns();

	while (tw && p + PF_FRAME_HEADER <= end) {
		uint32_t len = pf_frame_get_header(p);

		pf_trace_write(tw, now, (enum pf_dir)dir, p + PF_FRAME_HEADER, len);
		pf_trace_write_note(tw, now, (enum pf_dir)dir, note);
		p += PF_FRAME_HEADER + len;
	}
}

static void queue_error(struct pf_conn *c, Pciefw__ErrorCode code, const char *text)
{
	size_t mark;

	pf_put_error(pf_conn_out_begin(c, &mark), code, text);
	pf_conn_out_end(c, mark);
}

/* Spec 7.1: tell the host why, then close. */
static void protocol_error(struct pf_conn *c, Pciefw__ErrorCode code,
			   const char *text)
{
	queue_error(c, code, text);
	conn_fail(c, "protocol error: %s", text);
}

/* ---- Requests held behind a deferred read (spec 5.3) ---- */

/* The host's requests (spec 3.1); its completions are never held. */
static bool is_host_request(int kind)
{
	switch (kind) {
	case PCIEFW__MESSAGE__BODY_MEM_READ:
	case PCIEFW__MESSAGE__BODY_MEM_WRITE:
	case PCIEFW__MESSAGE__BODY_IO_READ:
	case PCIEFW__MESSAGE__BODY_IO_WRITE:
	case PCIEFW__MESSAGE__BODY_CONFIG_READ:
	case PCIEFW__MESSAGE__BODY_CONFIG_WRITE:
	case PCIEFW__MESSAGE__BODY_RESET:
		return true;
	default:
		return false;
	}
}

void pf_conn_hold(struct pf_conn *c)
{
	c->holding = true;
}

/* A held frame or record, handled as it would have been on arrival. */
static void handle_held(struct pf_conn *c, const struct pf_held *h)
{
	struct pf_regrec_msg rec;
	PfMessage *m = &rec.m;
	char err[300] = "";
	int r;

	/* It decoded and passed the checks when it came: it does again. */
	if (h->record ? pf_regrec_decode(h->frame, &rec, err, sizeof(err)) :
	    pf_codec_decode(&c->held_codec, h->frame, h->len, &m, err,
			    sizeof(err)))
		return;
	r = c->cfg.h->on[m->body_case](c->cfg.opaque, m, err, sizeof(err));
	if (r < 0)
		pf_warn("held request failed: %s", err);
}

void pf_conn_release(struct pf_conn *c)
{
	c->holding = false;
	/* Released by a request being drained: the loop below goes on. */
	if (c->draining)
		return;
	c->draining = true;
	while (!c->holding && c->attached) {
		struct pf_held *h = pf_defer_pop(&c->held);

		if (!h)
			break;
		handle_held(c, h);
		free(h);
	}
	c->draining = false;
}

/* ---- The host's messages (rx.h) ---- */

/*
 * Over the output cap, input waits until the host has read (1.3); a
 * connection that failed takes nothing more.
 */
static int after_message(const struct pf_conn *c)
{
	return c->dead || pf_buf_used(&c->out) > PF_OUT_QUEUE_MAX ?
	       PF_RX_PAUSE : PF_OK;
}

static int on_message(void *opaque, const PfMessage *m, char *err, size_t errlen)
{
	struct pf_conn *c = opaque;
	int r;

	c->ring_setup_allowed = false;
	/* Behind a deferred read, requests wait their turn (spec 5.1). */
	if (c->holding && is_host_request(m->body_case))
		return c->rx.record ?
		       pf_defer_push(&c->held, c->rx.record, PF_REGREC_SIZE, true,
				     err, errlen) :
		       pf_defer_push(&c->held, c->rx.body, c->rx.body_len, false,
				     err, errlen);
	r = c->cfg.h->on[m->body_case](c->cfg.opaque, m, err, errlen);
	return r == PF_OK ? after_message(c) : r;
}

static int on_hello(void *opaque, const struct pf_session *s, char *err,
		    size_t errlen)
{
	struct pf_conn *c = opaque;
	int r;

	/* Refused: the Hello is read, which is all we waited for. */
	if (c->refusal[0]) {
		snprintf(err, errlen, "%s", c->refusal);
		return PF_ERR_PEER;
	}
	pf_info("%s: host '%s' speaks %u.%u, max payload %u, features 0x%llx",
		c->name, s->peer_name, s->version_major, s->version_minor,
		s->max_payload, (unsigned long long)s->features);
	c->state = CONN_READY;
	c->ring_setup_allowed = s->features & PCIEFW_FEATURE_SHM_RINGS;
	r = c->cfg.h->attach(c->cfg.opaque, c, s, err, errlen);
	c->attached = r == PF_OK;
	return r;
}

static void on_ended(void *opaque, const PfMessage *m)
{
	struct pf_conn *c = opaque;

	if (c->refusal[0])
		conn_fail(c, "refused: %s", c->refusal);
	else if (m->body_case == PCIEFW__MESSAGE__BODY_GOODBYE)
		conn_fail(c, "host said goodbye: %s", m->goodbye->text);
	else
		conn_fail(c, "host reported error %d: %s", m->error->code,
			  m->error->text);
}

/* Everything so far leaves by the old stream, then the new one carries on. */
static int switch_stream(struct pf_conn *c, struct pf_stream *st, char *err,
			 size_t errlen)
{
	if (pf_stream_flush(c->st, &c->out) != PF_OK) {
		pf_stream_free(st);
		snprintf(err, errlen, "cannot send ring_ready: %s", strerror(errno));
		return PF_ERR_IO;
	}
	pf_stream_move_fds(st, c->st);
	pf_stream_free(c->st);
	c->st = st;
	pf_stream_set_handlers(st, c->cfg.loop, ready_cb, c);
	return PF_RX_PAUSE;
}

static int ring_setup_refusal(const struct pf_conn *c, char *err, size_t errlen)
{
	bool negotiated = c->rx.session.features & PCIEFW_FEATURE_SHM_RINGS;

	snprintf(err, errlen, "ring_setup %s", !negotiated ?
		 "without the shm rings feature" :
		 "not as the host's first message after the description, "
		 "or a second one");
	return PF_ERR_UNEXPECTED;
}

/*
 * RingSetup (spec 11.1): map the host's region and answer on the socket;
 * accepted, that answer is our last frame there and both directions move
 * to the rings (PF_RX_PAUSE: the bytes after it are not the socket's).  A
 * region we cannot use is refused and the session stays on the socket.
 */
static int on_ring_setup(void *opaque, const PfMessage *m, char *err,
			 size_t errlen)
{
	struct pf_conn *c = opaque;
	int fds[PCIEFW_RING_SETUP_FDS];
	struct pf_stream *st;
	char why[300];
	size_t mark;

	if (!c->ring_setup_allowed)
		return ring_setup_refusal(c, err, errlen);
	/* Accepted or refused, there is one per session. */
	c->ring_setup_allowed = false;
	if (!pf_conn_take_fds(c, fds, PCIEFW_RING_SETUP_FDS)) {
		snprintf(err, errlen, "ring_setup without its %u fds",
			 PCIEFW_RING_SETUP_FDS);
		return PF_ERR_INVALID;
	}
	st = pf_stream_ring(c->cfg.fd, fds, m->ring_setup->region_size, why,
			    sizeof(why));
	pf_put_ring_ready(pf_conn_out_begin(c, &mark), st != NULL,
			  st ? NULL : why);
	pf_conn_out_end(c, mark);
	if (!st) {
		pf_warn("%s: shared-memory rings refused, staying on the socket: "
			"%s", c->name, why);
		return PF_OK;
	}
	/* Spec 11.7: records beside the frames, from the next bytes on. */
	c->records = c->rx.session.features & PCIEFW_FEATURE_REG_RECORDS;
	if (c->records)
		pf_rx_take_records(&c->rx);
	pf_info("%s: shared-memory rings in use%s", c->name, c->records ?
		", with binary register records" : "");
	if (c->cfg.trace)
		pf_trace_write_note(c->cfg.trace, pf_now_ns(), PF_DIR_TO_HOST,
				    "session continues over shared-memory rings");
	return switch_stream(c, st, err, errlen);
}

/* Ours over theirs: what a connection does with each message first. */
static void build_table(struct pf_conn *c)
{
	for (unsigned k = 0; k < PF_MSG_KINDS; k++)
		if (c->cfg.h->on[k])
			c->table.on[k] = on_message;
	c->table.on[PCIEFW__MESSAGE__BODY_RING_SETUP] = on_ring_setup;
	c->table.hello = on_hello;
	c->table.ended = on_ended;
}

/* ---- Input ---- */

/* The bytes after a switch of stream came by the old one (spec 11.1). */
static void check_switch(struct pf_conn *c, size_t left)
{
	if (left || pf_rx_finish(&c->rx) != PF_EOF)
		protocol_error(c, PCIEFW__ERROR_CODE__ERROR_PROTOCOL,
			       "bytes on the socket after ring_setup");
}

/* What the host broke, or that it is gone (the rx's verdict). */
static void conn_ended(struct pf_conn *c, int r)
{
	if (c->refusal[0])
		conn_fail(c, "refused: %s", c->refusal);
	else if (r != PF_EOF)
		protocol_error(c, c->rx.code, c->rx.why);
}

static void feed(struct pf_conn *c, const uint8_t *p, size_t len)
{
	struct pf_stream *st = c->st;
	size_t used = 0;
	int r = PF_RX_PAUSE;

	if (after_message(c) == PF_OK)
		r = pf_rx_push(&c->rx, p, len, &used);
	if (c->dead || r == PF_OK)
		return;
	if (r == PF_RX_PAUSE && c->st != st) {
		check_switch(c, len - used);
	} else if (r == PF_RX_PAUSE) {
		/* Hold the rest until the host has read its answers. */
		c->throttled = true;
		if (used < len &&
		    pf_buf_append(&c->backlog, p + used, len - used) < 0)
			conn_fail(c, "out of memory holding input");
	} else {
		conn_ended(c, r);
	}
}

/*
 * Throttled: send what is queued and, once under the cap, handle the held
 * input and read again.  Over the cap the stream tells us of room.
 */
static void conn_pump(struct pf_conn *c)
{
	while (!c->dead && c->throttled) {
		struct pf_buf in = c->backlog;

		conn_flush(c);
		if (c->dead || pf_buf_used(&c->out) > PF_OUT_QUEUE_MAX)
			return;
		c->throttled = false;
		pf_buf_init(&c->backlog);
		c->in_dispatch = true;
		if (!pf_buf_empty(&in))
			feed(c, pf_buf_peek(&in), pf_buf_used(&in));
		c->in_dispatch = false;
		pf_buf_free(&in);
	}
	if (c->dead)
		return;
	conn_flush(c);
	pf_stream_want_read(c->st, true);
}

/*
 * The first bytes of a connection are a TLS handshake record (type 0x16,
 * version 3.x), which no Hello frame's length prefix can be: a clearer
 * refusal than the framing error it would otherwise be.
 */
static bool speaks_tls(const uint8_t *p, size_t n)
{
	return n >= 3 && p[0] == 0x16 && p[1] == 0x03 && p[2] <= 0x04;
}

/* Bytes came: the first ones may be the wrong language. */
static void took(struct pf_conn *c, const uint8_t *p, size_t n)
{
	if (!c->received && !c->opened && speaks_tls(p, n)) {
		conn_fail(c, "the host speaks TLS: start the endpoint with "
			  "--tls-creds (or give QEMU's device no tls-creds)");
		return;
	}
	c->received = true;
	feed(c, p, n);
}

/* The host's end of stream. */
static void hung_up(struct pf_conn *c)
{
	if (c->refusal[0])
		conn_fail(c, "refused: %s", c->refusal);
	else if (c->opened && !c->received)
		conn_fail(c, "host disconnected right after the TLS handshake "
			  "(did it refuse our certificate? its log says why)");
	else
		conn_fail(c, pf_rx_finish(&c->rx) == PF_EOF ?
			  "host disconnected" :
			  "host disconnected in the middle of a frame");
}

/* A read failed: why, as the stream tells it. */
static void read_failed(struct pf_conn *c)
{
	if (errno == EPROTO && c->st->why[0])
		conn_fail(c, "%s", c->st->why);     /* nothing can carry an Error */
	else if (errno == EBADMSG && c->st->why[0])
		protocol_error(c, PCIEFW__ERROR_CODE__ERROR_PROTOCOL, c->st->why);
	else
		conn_fail(c, "read failed: %s", strerror(errno));
}

static bool too_many_fds(struct pf_conn *c)
{
	char text[120];

	if (!c->st->fds.overflow)
		return false;
	snprintf(text, sizeof(text), "more than %u file descriptors passed and "
		 "not claimed by a memory map", PCIEFW_MAX_PENDING_FDS);
	protocol_error(c, PCIEFW__ERROR_CODE__ERROR_LIMIT, text);
	return true;
}

/*
 * Read and handle up to @max_reads chunks.  With @to_eof false a short read
 * ends the round (the stream is most likely empty: save a call); with it
 * true reading goes on until the stream says EAGAIN, so a host that has
 * hung up is seen to have done so.
 */
static void conn_read(struct pf_conn *c, int max_reads, bool to_eof)
{
	static uint8_t buf[READ_CHUNK];

	c->in_dispatch = true;
	for (int i = 0; i < max_reads && !c->dead && !c->throttled; i++) {
		ssize_t n = pf_stream_recv(c->st, buf, sizeof(buf));

		/* Beside the rings fds come without bytes: look every time. */
		if (too_many_fds(c))
			break;
		if (n > 0) {
			took(c, buf, (size_t)n);
			if ((size_t)n < sizeof(buf) && !to_eof)
				break;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n == 0)
			hung_up(c);
		else
			read_failed(c);
	}
	c->in_dispatch = false;
	if (c->throttled) {
		pf_stream_want_read(c->st, false);
		conn_pump(c);
		return;
	}
	conn_flush(c);
}

void pf_conn_read(struct pf_conn *c, int max_reads, bool to_eof)
{
	if (c->state != CONN_OPENING)
		conn_read(c, max_reads, to_eof);
}

/* Drive the stream's handshake; once done, our Hello goes out (spec 1.5). */
static void conn_open(struct pf_conn *c)
{
	char err[300];
	int r = pf_stream_open(c->st, err, sizeof(err));

	if (r == PF_AGAIN)
		return;
	if (r != PF_OK && r != PF_ERR_PEER && r != PF_ERR_NO_HELLO) {
		/* No session: nothing can be sent, the host sees the close. */
		conn_fail(c, "refused: %s", err);
		return;
	}
	c->state = CONN_HELLO;
	if (r == PF_OK) {
		/* The deadline runs on: the Hello is due too (spec 2.1). */
		c->opened = true;
		if (err[0])
			pf_info("%s: %s", c->name, err);
	} else {
		/* Told why after our Hello; closed once its Hello is read. */
		snprintf(c->refusal, sizeof(c->refusal), "%s", err);
		queue_error(c, PCIEFW__ERROR_CODE__ERROR_PROTOCOL, err);
	}
	conn_flush(c);
	conn_read(c, READS_PER_EVENT, false);
}

static void ready_cb(void *opaque, unsigned events)
{
	struct pf_conn *c = opaque;

	if (c->state == CONN_OPENING) {
		conn_open(c);
		return;
	}
	if (events & PF_STREAM_OUT) {
		conn_flush(c);
		if (c->throttled)
			conn_pump(c);
	}
	if ((events & PF_STREAM_IN) && !c->throttled)
		conn_read(c, READS_PER_EVENT, false);
}

/* ---- Life cycle ---- */

bool pf_conn_dead(const struct pf_conn *c)
{
	return c->dead;
}

void pf_conn_hello_overdue(struct pf_conn *c, double s)
{
	char text[120];

	if (c->refusal[0]) {
		conn_fail(c, "refused: %s (no Hello from the host within %g s)",
			  c->refusal, s);
	} else if (c->state == CONN_OPENING) {
		conn_fail(c, "no TLS handshake from the host within %g s", s);
	} else if (c->state == CONN_HELLO) {
		snprintf(text, sizeof(text), "no hello from the host within %g s "
			 "of connecting (spec 2.1)", s);
		protocol_error(c, PCIEFW__ERROR_CODE__ERROR_PROTOCOL, text);
	}
}

/*
 * Read (and drop) what the host sent that we will never handle, so that
 * closing does not reset the connection: the host then reads our last
 * words (an Error) and a clean end of stream (spec 2.4, 7.1).  Bounded:
 * a host that keeps writing gets the reset.
 */
static void drain_before_close(struct pf_conn *c)
{
	static uint8_t buf[4096];
	size_t total = 0;

	while (total < CLOSE_DRAIN_BYTES) {
		ssize_t n = pf_socket_recv(c->st, buf, sizeof(buf));

		if (n <= 0 && !(n < 0 && errno == EINTR))
			break;
		if (n > 0)
			total += (size_t)n;
	}
}

/* Best effort, bounded: the peer may not be reading any more. */
static void flush_before_close(struct pf_conn *c)
{
	for (int i = 0; i < 10 && !pf_buf_empty(&c->out); i++) {
		struct pollfd pfd = { .fd = c->st->fd, .events = POLLOUT };
		ssize_t n = c->st->ops->send(c->st, pf_buf_peek(&c->out),
					     pf_buf_used(&c->out));

		if (n > 0) {
			pf_buf_consume(&c->out, (size_t)n);
			continue;
		}
		if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK) ||
		    poll(&pfd, 1, 100) <= 0)
			break;
	}
}

static void reaper_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
	pf_conn_close(w->data);
}

void pf_conn_close(struct pf_conn *c)
{
	pf_info("%s: closed: %s", c->name, c->why[0] ? c->why : "shutdown");
	/* Tests and users learn from this line whether the fast path ran. */
	if (c->records)
		pf_info("%s: %llu requests came as binary register records",
			c->name, (unsigned long long)c->rx.records);
	if (c->attached)
		c->cfg.h->detach(c->cfg.opaque);
	c->attached = false;
	flush_before_close(c);
	drain_before_close(c);
	ev_idle_stop(c->cfg.loop, &c->reaper);
	pf_stream_free(c->st);
	if (c->cfg.fd >= 0)
		close(c->cfg.fd);
	pf_rx_free(&c->rx);
	pf_buf_free(&c->out);
	pf_buf_free(&c->backlog);
	pf_defer_clear(&c->held);
	pf_codec_free(&c->held_codec);
	if (c->cfg.trace)
		pf_trace_flush(c->cfg.trace);
	if (c->cfg.closed)
		c->cfg.closed(c->cfg.owner, c);
	free(c);
}

void pf_conn_goodbye(struct pf_conn *c, const char *why)
{
	size_t mark;

	pf_put_goodbye(pf_conn_out_begin(c, &mark),
		       PCIEFW__GOODBYE_REASON__GOODBYE_SHUTDOWN, why);
	c->in_dispatch = true;   /* queue only: flushed as it closes */
	pf_conn_out_end(c, mark);
	snprintf(c->why, sizeof(c->why), "%s", why);
	pf_conn_close(c);
}

/* Both sides send Hello first (spec 2.1): ours waits for the handshake. */
/* Spec 11.1: fds must travel (a UNIX socket), and TLS would be bypassed. */
static bool can_offer_rings(const struct pf_conn_config *cfg)
{
	struct sockaddr_storage addr;
	socklen_t len = sizeof(addr);

	return cfg->shm_rings && !pf_stream_needs_open(cfg->st) &&
	       getsockname(cfg->fd, (struct sockaddr *)&addr, &len) == 0 &&
	       addr.ss_family == AF_UNIX;
}

static void send_hello(struct pf_conn *c)
{
	size_t mark;

	pf_put_hello(pf_conn_out_begin(c, &mark), &c->hello);
	pf_conn_out_end(c, mark);
}

struct pf_conn *pf_conn_new(const struct pf_conn_config *cfg)
{
	struct pf_conn *c = calloc(1, sizeof(*c));

	if (!c)
		return NULL;
	c->cfg = *cfg;
	c->hello = cfg->hello;
	if (can_offer_rings(cfg))
		c->hello.features |= PCIEFW_FEATURE_SHM_RINGS |
			(cfg->reg_records ? PCIEFW_FEATURE_REG_RECORDS : 0);
	c->st = cfg->st;
	snprintf(c->name, sizeof(c->name), "%s", cfg->name);
	build_table(c);
	if (pf_rx_init(&c->rx, &c->table, c, PF_DIR_TO_ENDPOINT, &c->hello,
		       cfg->trace) != PF_OK) {
		free(c);
		return NULL;
	}
	c->state = pf_stream_needs_open(c->st) ? CONN_OPENING : CONN_HELLO;
	pf_buf_init(&c->out);
	pf_buf_init(&c->backlog);
	pf_codec_init(&c->held_codec);
	ev_idle_init(&c->reaper, reaper_cb);
	c->reaper.data = c;
	send_hello(c);
	pf_stream_set_handlers(c->st, c->cfg.loop, ready_cb, c);
	return c;
}
