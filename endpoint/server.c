/*
 * Listening sockets and the host connection: framing, handshake, protocol
 * errors and the non-blocking output queue.  Requests are handed to the
 * device framework (device.c).
 */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <ev.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "busy.h"
#include "frame.h"
#include "log.h"
#include "msg.h"
#include "ring.h"
#include "stream.h"
#include "tls.h"

#define MAX_LISTENERS 8
#define READ_CHUNK (64 * 1024)
/* Reads per wake-up before yielding to other watchers (fairness). */
#define READS_PER_EVENT 16
/* What a closing host may have left unread when a new one arrives. */
#define HANGUP_READS 256
/* How long we poll the rings for more before sleeping (spec 11.4). */
#define RING_SPIN_MIN_NS 10000
#define RING_SPIN_MAX_NS 500000
/* One idle callback's poll, before other watchers get their turn. */
#define RING_SPIN_SLICE_NS 20000
/* Unread input read at close, so the host sees our end, not a reset. */
#define CLOSE_DRAIN_BYTES (256 * 1024)

/* CONN_TLS: the TLS handshake; our Hello waits in the output queue. */
enum conn_state { CONN_TLS, CONN_HELLO, CONN_READY };

struct pf_conn {
	struct pf_server *srv;
	int fd;
	struct pf_stream *st;       /* the socket, or TLS over it */
	struct pf_hello_params hello;   /* ours, as offered on this socket */
	bool tls;
	bool received;              /* the host sent something after TLS */
	/*
	 * Refused, with the reason queued after our Hello: closed once the
	 * host's Hello is read (closing with it unread would reset the
	 * connection, and the host might never read why).
	 */
	char refusal[300];
	ev_io rd, wr;
	ev_idle reaper;             /* closes a connection that failed */
	/*
	 * On the rings (spec 11): the host kicks bell while we sleep; spin
	 * polls the ring while work keeps coming, for an adaptive budget.
	 */
	ev_io bell;
	ev_idle spin;
	struct pf_spin budget;
	uint64_t last_work_ns, slept_ns;
	/*
	 * The host's Hello (after the TLS handshake, if any) is due within
	 * the configured hello timeout of its connecting (spec 2.1): a silent
	 * host does not keep the device.
	 */
	ev_timer deadline;
	/*
	 * Spec 11.1: a RingSetup may only be the host's first message after
	 * our DeviceDescription, once.
	 */
	bool ring_setup_allowed;
	enum conn_state state;
	struct pf_frame_decoder dec;
	struct pf_codec codec;
	struct pf_buf out;
	/*
	 * Over PF_OUT_QUEUE_MAX of output the host's input is not read
	 * (docs/protocol.md 1.3): what was read but not handled waits here.
	 */
	struct pf_buf held;
	bool throttled;
	bool in_dispatch;
	bool dead;
	char why[300];              /* why it is closing, for the log */
	char name[80];
};

struct listener {
	ev_io io;
	int fd;
	struct pf_addr addr;
	struct pf_server *srv;
};

struct pf_server {
	struct ev_loop *loop;
	struct pf_server_config cfg;
	struct listener listeners[MAX_LISTENERS];
	unsigned n_listeners;
	struct pf_conn *conn;
	uint64_t n_connections;
	bool warned_plain_tcp;
};

static void conn_close(struct pf_conn *c);
static int on_ring_setup(struct pf_conn *c, const Pciefw__RingSetup *rs,
			 char *err, size_t errlen);

/* ---- Output ---- */

static void conn_fail(struct pf_conn *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* Mark the connection broken; it is closed from the loop, not from here,
 * because we may be deep inside a model callback. */
static void conn_fail(struct pf_conn *c, const char *fmt, ...)
{
	va_list ap;

	if (c->dead)
		return;
	va_start(ap, fmt);
	vsnprintf(c->why, sizeof(c->why), fmt, ap);
	va_end(ap);
	c->dead = true;
	ev_io_stop(c->srv->loop, &c->rd);
	ev_io_stop(c->srv->loop, &c->wr);
	ev_io_stop(c->srv->loop, &c->bell);
	ev_idle_stop(c->srv->loop, &c->spin);
	ev_idle_start(c->srv->loop, &c->reaper);
}

static void conn_flush(struct pf_conn *c)
{
	int r;

	if (c->dead || c->state == CONN_TLS)
		return;
	r = pf_stream_flush(c->st, &c->out);
	if (r == PF_AGAIN) {
		/*
		 * Keep reading meanwhile: the deadlock rule (spec 5.3).  A full
		 * ring asked the host to kick our doorbell instead.
		 */
		if (c->st->wake_fd < 0)
			ev_io_start(c->srv->loop, &c->wr);
		return;
	}
	if (r < 0)
		conn_fail(c, "write failed: %s", strerror(errno));
	ev_io_stop(c->srv->loop, &c->wr);
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
	struct pf_trace_writer *tw = c->srv->cfg.trace;

	if (tw) {
		size_t added = pf_buf_used(&c->out) - mark;
		const uint8_t *p = c->out.data + c->out.len - added;
		const uint8_t *end = c->out.data + c->out.len;
		uint64_t now = pf_now_ns();

		while (p + PF_FRAME_HEADER <= end) {
			uint32_t len = pf_frame_get_header(p);

			pf_trace_write(tw, now, PF_DIR_TO_HOST, p + PF_FRAME_HEADER, len);
			p += PF_FRAME_HEADER + len;
		}
	}
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
	return c->srv->cfg.trace != NULL;
}

void pf_conn_trace_frames(struct pf_conn *c, int dir, const struct pf_buf *b,
			  const char *note)
{
	struct pf_trace_writer *tw = c->srv->cfg.trace;
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
		struct pollfd pfd = { .fd = c->fd, .events = POLLOUT };
		ssize_t n;

		if (poll(&pfd, 1, 100) <= 0)
			break;
		n = c->st->ops->send(c->st, pf_buf_peek(&c->out),
				     pf_buf_used(&c->out));
		if (n <= 0)
			break;
		pf_buf_consume(&c->out, (size_t)n);
	}
}

/* ---- Input ---- */

static int send_description(struct pf_conn *c)
{
	Pciefw__DeviceDescription d;
	Pciefw__Bar bars[6], *ptrs[6];
	size_t mark;
	int r;

	pf_dev_describe(c->srv->cfg.dev, &d, bars, ptrs);
	r = pf_put_description(pf_conn_out_begin(c, &mark), &d);
	pf_conn_out_end(c, mark);
	return r;
}

static int on_hello(struct pf_conn *c, const PfMessage *m)
{
	struct pf_session s;
	char err[256];
	int r = pf_hello_negotiate(&c->hello, m, &s, err, sizeof(err));

	if (r) {
		queue_error(c, pf_error_code(r), err);
		conn_fail(c, "handshake refused: %s", err);
		return r;
	}
	pf_info("%s: host '%s' speaks %u.%u, max payload %u, features 0x%llx",
		c->name, s.peer_name, s.version_major, s.version_minor,
		s.max_payload, (unsigned long long)s.features);
	pf_frame_decoder_set_max(&c->dec, PCIEFW_MAX_FRAME(s.max_payload));
	c->state = CONN_READY;
	ev_timer_stop(c->srv->loop, &c->deadline);
	c->ring_setup_allowed = s.features & PCIEFW_FEATURE_SHM_RINGS;
	pf_dev_attach(c->srv->cfg.dev, c, &s);
	return send_description(c);
}

/* Record a frame that is not a valid message, length prefix included. */
static void trace_malformed_frame(struct pf_conn *c, const uint8_t *body,
				  size_t len)
{
	uint8_t raw[PF_TRACE_MAX_MALFORMED];
	size_t n = len < sizeof(raw) - PF_FRAME_HEADER ?
		   len : sizeof(raw) - PF_FRAME_HEADER;

	pf_frame_put_header(raw, (uint32_t)len);
	memcpy(raw + PF_FRAME_HEADER, body, n);
	pf_trace_write_malformed(c->srv->cfg.trace, pf_now_ns(),
				 PF_DIR_TO_ENDPOINT, raw, PF_FRAME_HEADER + n);
}

static void on_frame(struct pf_conn *c, const uint8_t *body, size_t len)
{
	PfMessage *m;
	char err[256];
	uint32_t max = c->state == CONN_READY ?
		       c->srv->cfg.dev->session.max_payload : PCIEFW_MAX_PAYLOAD;
	int r;

	r = pf_codec_decode(&c->codec, body, len, &m, err, sizeof(err));
	if (!r)
		r = pf_msg_validate(m, max, err, sizeof(err));
	if (c->refusal[0]) {
		conn_fail(c, "refused: %s", c->refusal);
		return;
	}
	if (c->srv->cfg.trace && r)
		trace_malformed_frame(c, body, len);
	else if (c->srv->cfg.trace)
		pf_trace_write(c->srv->cfg.trace, pf_now_ns(), PF_DIR_TO_ENDPOINT,
			       body, len);
	if (r) {
		queue_error(c, pf_error_code(r), err);
		conn_fail(c, "protocol error: %s", err);
		return;
	}
	/* Goodbye and Error are allowed in every state (spec 7.2). */
	if (c->state == CONN_HELLO &&
	    m->body_case != PCIEFW__MESSAGE__BODY_GOODBYE &&
	    m->body_case != PCIEFW__MESSAGE__BODY_ERROR) {
		on_hello(c, m);
		return;
	}
	switch (m->body_case) {
	case PCIEFW__MESSAGE__BODY_GOODBYE:
		conn_fail(c, "host said goodbye: %s", m->goodbye->text);
		return;
	case PCIEFW__MESSAGE__BODY_ERROR:
		conn_fail(c, "host reported error %d: %s", m->error->code,
			  m->error->text);
		return;
	case PCIEFW__MESSAGE__BODY_HELLO:
		snprintf(err, sizeof(err), "second hello");
		r = PF_ERR_UNEXPECTED;
		break;
	case PCIEFW__MESSAGE__BODY_RING_SETUP:
		r = on_ring_setup(c, m->ring_setup, err, sizeof(err));
		break;
	default:
		c->ring_setup_allowed = false;
		r = pf_dev_handle(c->srv->cfg.dev, m, err, sizeof(err));
	}
	if (r) {
		queue_error(c, pf_error_code(r), err);
		conn_fail(c, "protocol error: %s", err);
	}
}

static void feed(struct pf_conn *c, const uint8_t *p, size_t len)
{
	struct pf_stream *st;

	while (len && !c->dead) {
		const uint8_t *body;
		size_t used, blen;
		int r;

		if (pf_buf_used(&c->out) > PF_OUT_QUEUE_MAX) {
			/* Hold the rest until the host has read its answers. */
			c->throttled = true;
			if (pf_buf_append(&c->held, p, len) < 0)
				conn_fail(c, "out of memory holding input");
			return;
		}
		r = pf_frame_decoder_push(&c->dec, p, len, &used, &body, &blen);

		p += used;
		len -= used;
		if (r == PF_AGAIN)
			return;
		if (r < 0) {
			/* The refused length prefix and what came with it. */
			if (c->srv->cfg.trace)
				pf_trace_write_malformed(c->srv->cfg.trace, pf_now_ns(),
							 PF_DIR_TO_ENDPOINT, p - used,
							 len + used);
			queue_error(c, pf_error_code(r), pf_strerror(r));
			conn_fail(c, "framing error: %s", pf_strerror(r));
			return;
		}
		st = c->st;
		on_frame(c, body, blen);
		if (c->st != st && (len || pf_frame_decoder_finish(&c->dec) != PF_EOF)) {
			queue_error(c, PCIEFW__ERROR_CODE__ERROR_PROTOCOL,
				    "bytes on the socket after ring_setup");
			conn_fail(c, "protocol error: bytes on the socket after "
				  "ring_setup");
			return;
		}
	}
}

/*
 * Throttled: send what is queued and, once under the cap, handle the held
 * input and read again.  Over the cap the write watcher brings us back.
 */
static void conn_pump(struct pf_conn *c)
{
	while (!c->dead && c->throttled) {
		struct pf_buf in = c->held;

		conn_flush(c);
		if (c->dead || pf_buf_used(&c->out) > PF_OUT_QUEUE_MAX)
			return;
		c->throttled = false;
		pf_buf_init(&c->held);
		c->in_dispatch = true;
		feed(c, pf_buf_peek(&in), pf_buf_used(&in));
		c->in_dispatch = false;
		pf_buf_free(&in);
	}
	if (c->dead)
		return;
	conn_flush(c);
	ev_io_start(c->srv->loop, &c->rd);
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

/*
 * Read and handle up to @max_reads chunks.  With @to_eof false a short read
 * ends the round (the socket is most likely empty: save a syscall); with
 * it true reading goes on until the socket says EAGAIN, so a host that has
 * hung up is seen to have done so.
 */
static void conn_read(struct pf_conn *c, int max_reads, bool to_eof)
{
	static uint8_t buf[READ_CHUNK];

	c->in_dispatch = true;
	for (int i = 0; i < max_reads && !c->dead && !c->throttled; i++) {
		ssize_t n = pf_stream_recv(c->st, buf, sizeof(buf));

		/* Beside the rings fds come without ring bytes: look every time. */
		if (c->st->fd_overflow) {
			char text[120];

			snprintf(text, sizeof(text),
				 "more than %u file descriptors passed and not "
				 "claimed by a memory map", PCIEFW_MAX_PENDING_FDS);
			protocol_error(c, PCIEFW__ERROR_CODE__ERROR_LIMIT, text);
			break;
		}
		if (n > 0) {
			if (!c->received && !c->tls && speaks_tls(buf, (size_t)n)) {
				conn_fail(c, "the host speaks TLS: start the endpoint "
					  "with --tls-creds (or give QEMU's device no "
					  "tls-creds)");
				break;
			}
			c->received = true;
			feed(c, buf, (size_t)n);
			if ((size_t)n < sizeof(buf) && !to_eof &&
			    !pf_stream_pending(c->st))
				break;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			break;
		if (n == 0 && c->refusal[0])
			conn_fail(c, "refused: %s", c->refusal);
		else if (n == 0 && c->tls && !c->received)
			conn_fail(c, "host disconnected right after the TLS "
				  "handshake (did it refuse our certificate? "
				  "its log says why)");
		else if (n == 0)
			conn_fail(c, pf_frame_decoder_finish(&c->dec) == PF_EOF ?
				  "host disconnected" :
				  "host disconnected in the middle of a frame");
		else if (errno == EPROTO && c->st->wake_fd >= 0)
			/* Nothing can be trusted to carry an Error (11.5). */
			conn_fail(c, "the host broke the shared-memory rings (an "
				  "impossible index; spec 11.5)");
		else if (errno == EBADMSG && c->st->wake_fd >= 0)
			protocol_error(c, PCIEFW__ERROR_CODE__ERROR_PROTOCOL,
				       "bytes on the socket beside the rings "
				       "other than one zero byte with each "
				       "batch of file descriptors (spec 11.1)");
		else
			conn_fail(c, "read failed: %s", strerror(errno));
	}
	c->in_dispatch = false;
	if (c->throttled) {
		ev_io_stop(c->srv->loop, &c->rd);
		conn_pump(c);
		return;
	}
	/* Decrypted input the socket's readiness no longer shows. */
	if (!c->dead && pf_stream_pending(c->st))
		ev_feed_event(c->srv->loop, &c->rd, EV_READ);
	conn_flush(c);
}

/* Drive the TLS handshake; once done, our Hello goes out (spec 1.5). */
static void conn_handshake(struct pf_conn *c)
{
	char err[300];
	bool want_write;
	int r = pf_tls_handshake(c->st, &want_write, err, sizeof(err));

	if (r == PF_AGAIN) {
		if (want_write)
			ev_io_start(c->srv->loop, &c->wr);
		else
			ev_io_stop(c->srv->loop, &c->wr);
		return;
	}
	ev_io_stop(c->srv->loop, &c->wr);
	if (r == PF_ERR_NO_HELLO) {
		/* A plain-text host reads our Hello, then why, in plain text. */
		pf_stream_free(c->st);
		c->st = pf_stream_socket(c->fd);
		c->tls = false;
		if (!c->st) {
			conn_fail(c, "out of memory");
			return;
		}
	} else if (r != PF_OK && r != PF_ERR_PEER) {
		/* No session: nothing can be sent, the host sees the close. */
		conn_fail(c, "refused: %s", err);
		return;
	}
	c->state = CONN_HELLO;
	if (r == PF_OK) {
		/* The deadline runs on: the Hello is due too (spec 2.1). */
		pf_info("%s: TLS session established", c->name);
	} else {
		snprintf(c->refusal, sizeof(c->refusal), "%s", err);
		queue_error(c, PCIEFW__ERROR_CODE__ERROR_PROTOCOL, err);
	}
	conn_flush(c);
	conn_read(c, READS_PER_EVENT, false);
}

/* ---- The shared-memory rings (spec 11) ---- */

/*
 * Poll the ring while the host keeps sending, up to the adaptive budget
 * past the last work; then announce sleep and wait for the doorbell.  One
 * call polls for a slice only, so the loop's other watchers still run.
 */
static void spin_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
	struct pf_conn *c = w->data;
	uint64_t now = pf_ring_now_ns(), slice_end = now + RING_SPIN_SLICE_NS;

	if (c->throttled) {
		/* Nothing to read until the host read: its kick resumes us. */
		ev_idle_stop(loop, w);
		return;
	}
	/* Work keeps us here for the slice: the next request is close. */
	do {
		if (pf_stream_pending(c->st)) {
			conn_read(c, READS_PER_EVENT, false);
			c->last_work_ns = pf_ring_now_ns();
			if (c->dead || c->throttled || !ev_is_active(w))
				return;
		}
		now = pf_ring_now_ns();
	} while (now < slice_end);
	if (now - c->last_work_ns < c->budget.budget_ns)
		return;
	if (c->st->ops->try_sleep(c->st)) {
		ev_idle_stop(loop, w);
		pf_spin_miss(&c->budget);
		c->slept_ns = now;
	}
}

static void bell_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct pf_conn *c = w->data;
	uint64_t now = pf_ring_now_ns();

	pf_doorbell_drain(w->fd);
	/* Woken soon after giving up: the budget was too short. */
	if (!ev_is_active(&c->spin) && now - c->slept_ns < RING_SPIN_MAX_NS)
		pf_spin_hit(&c->budget);
	c->st->ops->awake(c->st);
	c->last_work_ns = now;
	ev_idle_start(loop, &c->spin);
	conn_flush(c);              /* a kick may mean room to write */
	if (c->throttled)
		conn_pump(c);
	else
		conn_read(c, READS_PER_EVENT, false);
}

/*
 * RingSetup (spec 11.1): map the host's region and answer on the socket;
 * accepted, that answer is our last frame there and both directions move
 * to the rings.  A region we cannot use is refused and the session stays
 * on the socket.
 */
static int on_ring_setup(struct pf_conn *c, const Pciefw__RingSetup *rs,
			 char *err, size_t errlen)
{
	int fds[PCIEFW_RING_SETUP_FDS];
	struct pf_stream *st;
	char why[300];
	size_t mark;

	if (!(c->srv->cfg.dev->session.features & PCIEFW_FEATURE_SHM_RINGS) ||
	    !c->ring_setup_allowed) {
		snprintf(err, errlen, "ring_setup %s",
			 !(c->srv->cfg.dev->session.features & PCIEFW_FEATURE_SHM_RINGS) ?
			 "without the shm rings feature" :
			 "not as the host's first message after the description, "
			 "or a second one");
		return PF_ERR_UNEXPECTED;
	}
	/* Accepted or refused, there is one per session. */
	c->ring_setup_allowed = false;
	if (!pf_conn_take_fds(c, fds, PCIEFW_RING_SETUP_FDS)) {
		snprintf(err, errlen, "ring_setup without its %u fds",
			 PCIEFW_RING_SETUP_FDS);
		return PF_ERR_INVALID;
	}
	st = pf_stream_ring(c->fd, fds, rs->region_size, why, sizeof(why));
	pf_put_ring_ready(pf_conn_out_begin(c, &mark), st != NULL,
			  st ? NULL : why);
	pf_conn_out_end(c, mark);
	if (!st) {
		pf_warn("%s: shared-memory rings refused, staying on the socket: "
			"%s", c->name, why);
		return PF_OK;
	}
	/* Everything so far leaves by the socket, before the switch. */
	if (pf_stream_flush(c->st, &c->out) != PF_OK) {
		pf_stream_free(st);
		snprintf(err, errlen, "cannot send ring_ready: %s", strerror(errno));
		return PF_ERR_IO;
	}
	memcpy(st->fds, c->st->fds, c->st->n_fds * sizeof(int));
	st->n_fds = c->st->n_fds;
	c->st->n_fds = 0;
	pf_stream_free(c->st);
	c->st = st;
	pf_spin_init(&c->budget, RING_SPIN_MIN_NS, RING_SPIN_MAX_NS);
	ev_io_set(&c->bell, st->wake_fd, EV_READ);
	ev_io_start(c->srv->loop, &c->bell);
	c->last_work_ns = pf_ring_now_ns();
	st->ops->awake(st);
	ev_idle_start(c->srv->loop, &c->spin);
	pf_info("%s: shared-memory rings in use", c->name);
	if (c->srv->cfg.trace)
		pf_trace_write_note(c->srv->cfg.trace, pf_now_ns(),
				    PF_DIR_TO_HOST,
				    "session continues over shared-memory rings");
	return PF_OK;
}

static void read_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct pf_conn *c = w->data;

	if (c->state == CONN_TLS)
		conn_handshake(c);
	else
		conn_read(c, READS_PER_EVENT, false);
}

static void write_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct pf_conn *c = w->data;

	if (c->state == CONN_TLS) {
		conn_handshake(c);
		return;
	}
	conn_flush(c);
	if (c->throttled)
		conn_pump(c);
}

static void deadline_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct pf_conn *c = w->data;
	double s = c->srv->cfg.hello_timeout_s;

	if (c->refusal[0])
		conn_fail(c, "refused: %s (no Hello from the host within %g s)",
			  c->refusal, s);
	else if (c->state == CONN_TLS)
		conn_fail(c, "no TLS handshake from the host within %g s", s);
	else if (c->state == CONN_HELLO) {
		char text[120];

		snprintf(text, sizeof(text), "no hello from the host within %g s "
			 "of connecting (spec 2.1)", s);
		protocol_error(c, PCIEFW__ERROR_CODE__ERROR_PROTOCOL, text);
	}
}

static void reaper_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
	conn_close(w->data);
}

static void conn_close(struct pf_conn *c)
{
	struct pf_server *srv = c->srv;

	pf_info("%s: closed: %s", c->name, c->why[0] ? c->why : "shutdown");
	if (srv->cfg.dev->conn == c)
		pf_dev_detach(srv->cfg.dev);
	flush_before_close(c);
	drain_before_close(c);
	ev_io_stop(srv->loop, &c->rd);
	ev_io_stop(srv->loop, &c->wr);
	ev_idle_stop(srv->loop, &c->reaper);
	ev_timer_stop(srv->loop, &c->deadline);
	ev_io_stop(srv->loop, &c->bell);
	ev_idle_stop(srv->loop, &c->spin);
	pf_stream_free(c->st);
	close(c->fd);
	pf_frame_decoder_free(&c->dec);
	pf_codec_free(&c->codec);
	pf_buf_free(&c->out);
	pf_buf_free(&c->held);
	if (srv->conn == c)
		srv->conn = NULL;
	if (srv->cfg.trace)
		pf_trace_flush(srv->cfg.trace);
	free(c);
}

/* ---- Accepting ---- */

/* TLS is for TCP; a UNIX socket is protected by its mode (spec 1.5). */
static bool uses_tls(const struct pf_server *srv, const struct listener *l)
{
	return srv->cfg.tls && l->addr.kind == PF_ADDR_TCP;
}

static struct pf_stream *open_stream(struct pf_server *srv,
				     const struct listener *l, int fd)
{
	char err[200];
	struct pf_stream *st;

	if (!uses_tls(srv, l))
		return pf_stream_socket(fd);
	st = pf_tls_stream(srv->cfg.tls, fd, err, sizeof(err));
	if (!st)
		pf_warn("refused a host: %s", err);
	return st;
}

/* One host per device: tell a second one why, then hang up (spec 2.4). */
static void refuse_busy(struct pf_server *srv, const struct listener *l, int fd)
{
	struct pf_stream *st = open_stream(srv, l, fd);
	char text[200];

	if (!st) {
		close(fd);
		return;
	}
	snprintf(text, sizeof(text),
		 "device %s is busy: it already serves a host (%s)",
		 srv->cfg.dev->model->name, srv->conn->name);
	pf_busy_refuse(srv->loop, fd, st, uses_tls(srv, l), text);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct listener *l = w->data;
	struct pf_server *srv = l->srv;
	struct pf_conn *c;
	size_t mark;
	int fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

	if (fd < 0) {
		if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
			pf_warn("accept: %s", strerror(errno));
		return;
	}
	if (srv->conn) {
		/*
		 * Only a live host makes the device busy (spec 2.4).  A host
		 * that closed and connected again at once has its end of the
		 * old connection queued behind what it sent last: read up to
		 * that end before judging the newcomer.
		 */
		if (srv->conn->state != CONN_TLS)
			conn_read(srv->conn, HANGUP_READS, true);
	}
	if (srv->conn && srv->conn->dead)
		conn_close(srv->conn);
	if (srv->conn) {
		refuse_busy(srv, l, fd);
		return;
	}
	pf_tune_socket(fd);
	c = calloc(1, sizeof(*c));
	if (!c || !(c->st = open_stream(srv, l, fd))) {
		free(c);
		close(fd);
		return;
	}
	c->srv = srv;
	c->fd = fd;
	c->tls = uses_tls(srv, l);
	c->state = c->tls ? CONN_TLS : CONN_HELLO;
	snprintf(c->name, sizeof(c->name), "connection %llu",
		 (unsigned long long)++srv->n_connections);
	pf_frame_decoder_init(&c->dec, PCIEFW_HANDSHAKE_FRAME);
	pf_codec_init(&c->codec);
	pf_buf_init(&c->out);
	pf_buf_init(&c->held);
	ev_io_init(&c->rd, read_cb, fd, EV_READ);
	ev_io_init(&c->wr, write_cb, fd, EV_WRITE);
	ev_idle_init(&c->reaper, reaper_cb);
	ev_timer_init(&c->deadline, deadline_cb, srv->cfg.hello_timeout_s, 0);
	ev_idle_init(&c->spin, spin_cb);
	ev_init(&c->bell, bell_cb);
	c->rd.data = c->wr.data = c->reaper.data = c->deadline.data = c;
	c->spin.data = c->bell.data = c;
	ev_timer_start(loop, &c->deadline);
	srv->conn = c;
	pf_info("%s: accepted on %s%s", c->name,
		l->addr.kind == PF_ADDR_UNIX ? "unix socket" : "tcp",
		c->tls ? " (TLS)" : "");
	if (srv->cfg.trace) {
		char text[160];

		/* One trace file spans connections: mark where each begins. */
		snprintf(text, sizeof(text), "session %llu: host connected (%s, on %s)",
			 (unsigned long long)srv->n_connections, c->name,
			 l->addr.kind == PF_ADDR_UNIX ? "unix socket" : "tcp");
		pf_trace_write_session(srv->cfg.trace, pf_now_ns(), text);
	}
	/* Both sides send hello first (spec 2.1); fds need UNIX (10.1). */
	c->hello = srv->cfg.hello;
	if (l->addr.kind == PF_ADDR_UNIX && srv->cfg.guest_memory)
		c->hello.features |= PCIEFW_FEATURE_GUEST_MEMORY;
	if (l->addr.kind == PF_ADDR_UNIX && srv->cfg.shm_rings)
		c->hello.features |= PCIEFW_FEATURE_SHM_RINGS;
	pf_put_hello(pf_conn_out_begin(c, &mark), &c->hello);
	pf_conn_out_end(c, mark);
	ev_io_start(loop, &c->rd);
}

struct pf_server *pf_server_new(struct ev_loop *loop,
				const struct pf_server_config *cfg)
{
	struct pf_server *srv = calloc(1, sizeof(*srv));

	if (!srv)
		return NULL;
	srv->loop = loop;
	srv->cfg = *cfg;
	return srv;
}

/* Bound to a loopback address, so only this machine can connect. */
static bool is_loopback(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&ss;

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
		return false;
	if (ss.ss_family == AF_INET)
		return (ntohl(((const struct sockaddr_in *)&ss)->sin_addr.s_addr)
			>> 24) == 127;
	if (ss.ss_family != AF_INET6)
		return false;
	if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
		return in6->sin6_addr.s6_addr[12] == 127;
	return IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr);
}

int pf_server_listen(struct pf_server *srv, const struct pf_addr *addr,
		     char *err, size_t errlen)
{
	struct listener *l;
	struct pf_addr bound = *addr;
	char name[300];
	int fd;

	if (srv->n_listeners == MAX_LISTENERS) {
		snprintf(err, errlen, "at most %d --listen addresses", MAX_LISTENERS);
		return -1;
	}
	fd = pf_listen(addr, err, errlen);
	if (fd < 0)
		return -1;
	if (bound.kind == PF_ADDR_TCP)
		bound.port = (uint16_t)pf_bound_port(fd);
	l = &srv->listeners[srv->n_listeners++];
	l->fd = fd;
	l->addr = bound;
	l->srv = srv;
	ev_io_init(&l->io, accept_cb, fd, EV_READ);
	l->io.data = l;
	ev_io_start(srv->loop, &l->io);
	pf_addr_format(&bound, name, sizeof(name));
	if (bound.kind == PF_ADDR_TCP && !srv->cfg.tls && !srv->warned_plain_tcp &&
	    !is_loopback(fd)) {
		srv->warned_plain_tcp = true;
		pf_warn("listening on %s without TLS: anyone who can reach it "
			"drives the device (and its DMA); use --tls-creds DIR "
			"(README, Security)", name);
	}
	/* Tests and scripts wait for this line to learn an ephemeral port. */
	printf("listening on %s\n", name);
	fflush(stdout);
	return 0;
}

void pf_server_shutdown(struct pf_server *srv, const char *why)
{
	struct pf_conn *c = srv->conn;

	if (c) {
		size_t mark;

		pf_put_goodbye(pf_conn_out_begin(c, &mark),
			       PCIEFW__GOODBYE_REASON__GOODBYE_SHUTDOWN, why);
		c->in_dispatch = true;   /* queue only; flushed below */
		pf_conn_out_end(c, mark);
		snprintf(c->why, sizeof(c->why), "%s", why);
		conn_close(c);
	}
	pf_busy_shutdown(srv->loop);
	for (unsigned i = 0; i < srv->n_listeners; i++) {
		struct listener *l = &srv->listeners[i];

		ev_io_stop(srv->loop, &l->io);
		close(l->fd);
		if (l->addr.kind == PF_ADDR_UNIX)
			unlink(l->addr.path);
	}
	srv->n_listeners = 0;
}

void pf_server_free(struct pf_server *srv)
{
	free(srv);
}
