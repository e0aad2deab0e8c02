/*
 * The replay engine, for both roles.
 *
 * A session of the trace is walked in record order.  Records in our
 * direction are sent; records in the peer's direction are *expected*: the
 * peer's live messages are matched against them on arrival, in order, in
 * two streams (completions, and everything else: DMA, interrupts, requests,
 * goodbye), so the peer may answer earlier or later relative to what we
 * send than it did in the recording, but each stream must match in order.
 * With --loose-irqs, the interrupts of each kind and vector are a stream of
 * their own: an interrupt held back by a moderation timer (which works per
 * vector) may then come after DMA or other vectors that followed it when
 * recorded.
 *
 * Before sending a record we wait (up to --timeout) until every peer
 * record that precedes it in the trace has arrived.  Whichever end
 * recorded the trace, a message recorded before one of ours cannot depend
 * on it, so the wait cannot deadlock; and as both peers handle messages in
 * stream order (spec 5.1), a deterministic peer that gets the same stream
 * in the same order answers the same.
 *
 * Completions we send answer the live request matched to the recorded one
 * (the live tag).  As the host, a DMA read that does not match the
 * recorded one is answered from a simulated guest memory (mem.c) holding
 * what the recorded DMA read completions and the live DMA writes put
 * there; as the endpoint, a request that cannot take the recorded
 * completion gets UNSUPPORTED_REQUEST.
 *
 * A session whose recording ends with a goodbye ended because that side
 * was stopped: the peer's closing goodbye is not required, and ours is
 * said last (build_streams()).  After the last record, the replay watches
 * for more from the peer: as the host for LINGER_MS, as the endpoint until
 * the host disconnects.
 */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "format.h"
#include "msg.h"
#include "replay.h"
#include "transport.h"

#define HANDSHAKE_TIMEOUT_MS 5000
#define LINGER_MS            200      /* as host: watch for extras at the end */
#define DETAILED_REPORTS     10       /* --keep-going: then one line each */
#define PROGRESS_NS          100000000ull

/* Stream keys: completions, the rest, and with --loose-irqs one per
 * interrupt kind and vector. */
enum { KEY_COMPLETION, KEY_OTHER, KEY_INTX, KEY_MSI = 0x10000, KEY_MSIX = 0x20000,
       KEY_LIMIT = 0x30000 };

struct stream {
	int key;
	size_t *pos;             /* the peer's records, in trace order */
	size_t n, head;          /* head: the next one to match */
};

struct stats {
	uint64_t divergences;
	uint64_t replayed;       /* messages handled: sent or matched */
	uint64_t total;          /* messages to replay */
	unsigned sessions;
};

struct ctx {
	const struct rp_opts *o;
	struct rp_script *s;
	const struct rp_session *ss;
	unsigned sess_no;
	struct stats *st;
	struct rp_conn conn;
	bool have_conn;
	enum pf_dir ours, theirs;
	const char *peer;                /* "endpoint" or "host" */
	struct stream *streams;          /* the peer's records of this session */
	size_t n_streams;
	/*
	 * Lookups stay linear in the trace however many vectors it names
	 * (a crafted trace may name 2^17): stream of each key (index + 1, 0:
	 * none), and every record of every stream in trace order with the
	 * first not yet come (first_pending()).
	 */
	uint32_t *stream_of;             /* KEY_LIMIT entries */
	size_t *expected, n_expected, next_expected;
	long optional;                   /* a trailing goodbye of the peer */
	long deferred;                   /* a trailing goodbye of ours */
	size_t end;                      /* first position not replayed */
	bool partial;                    /* --until cut this session */
	struct rp_mem *mem;
	struct pf_hello_params hello;
	struct pf_session session;
	uint64_t live_t0;                /* when this session started, monotonic */
	long cursor;                     /* last record sent or matched */
	bool stop;                       /* stop everything (first divergence) */
	bool closed;                     /* this session's connection is over */
	bool said_bye;                   /* we sent goodbye/error */
	bool peer_silent;                /* an expected message did not come */
	bool progress_shown;
	uint64_t last_draw;
};

/* ---- Output ---- */

static bool progress_on;
static bool progress_dirty;

static void progress_clear(void)
{
	if (progress_dirty) {
		fputs("\r\033[K", stderr);
		fflush(stderr);
		progress_dirty = false;
	}
}

static void progress(struct ctx *c, bool force)
{
	uint64_t now;
	unsigned width = 30, fill;
	double frac;

	if (!progress_on)
		return;
	now = rp_mono_ns();
	if (!force && now - c->last_draw < PROGRESS_NS)
		return;
	c->last_draw = now;
	frac = c->st->total ? (double)c->st->replayed / (double)c->st->total : 1.0;
	if (frac > 1.0)
		frac = 1.0;
	fill = (unsigned)(frac * width);
	fprintf(stderr, "\r\033[K[");
	for (unsigned i = 0; i < width; i++)
		fputc(i < fill ? '#' : '.', stderr);
	fprintf(stderr, "] %3.0f%% %llu/%llu messages, %llu divergence%s",
		frac * 100, (unsigned long long)c->st->replayed,
		(unsigned long long)c->st->total,
		(unsigned long long)c->st->divergences,
		c->st->divergences == 1 ? "" : "s");
	fflush(stderr);
	progress_dirty = true;
}

static const char *dir_name(enum pf_dir d)
{
	return d == PF_DIR_TO_ENDPOINT ? "H>E" : "E>H";
}

static double rec_offset(const struct ctx *c, const struct rp_rec *r)
{
	return (double)(int64_t)(r->ts_ns - c->s->t0) / 1e9;
}

static void print_rec(const struct ctx *c, const char *lead, const struct rp_rec *r)
{
	char line[2048];

	printf("%s#%-6llu %+12.6f %s  %s\n", lead, (unsigned long long)r->index,
	       rec_offset(c, r), dir_name(r->dir), pf_msg_format(r->m, line, sizeof(line)));
}

/*
 * One divergence.  @pos: the recorded record it is about, or -1 for a
 * message the recording does not have (reported after the cursor).
 * @live: what came instead (NULL: nothing, @nothing says why).
 */
static void diverge(struct ctx *c, long pos, const PfMessage *live,
		    const char *nothing, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));

static void diverge(struct ctx *c, long pos, const PfMessage *live,
		    const char *nothing, const char *fmt, ...)
{
	const struct rp_rec *r = pos >= 0 ? &c->s->rec[pos] : NULL;
	long at = r ? pos : c->cursor;
	const struct rp_rec *ref =
		&c->s->rec[at >= (long)c->ss->first ? at : (long)c->ss->first];
	double replay_s = (double)(rp_mono_ns() - c->live_t0) / 1e9;
	uint64_t n = ++c->st->divergences;
	char what[512], line[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	progress_clear();
	if (n > DETAILED_REPORTS && c->o->keep_going) {
		printf("divergence %llu %s record #%llu: %s\n", (unsigned long long)n,
		       r ? "at" : "after", (unsigned long long)ref->index, what);
		goto out;
	}
	printf("divergence %llu %s record #%llu (%+.6f s in the recording, "
	       "%+.6f s into the replay): %s\n", (unsigned long long)n,
	       r ? "at" : "after", (unsigned long long)ref->index,
	       rec_offset(c, ref), replay_s, what);
	if (r)
		print_rec(c, "  expected: ", r);
	else
		printf("  expected: nothing more from the %s here\n", c->peer);
	if (live)
		printf("  actual:   %21s%s  %s\n", "", dir_name(c->theirs),
		       pf_msg_format(live, line, sizeof(line)));
	else
		printf("  actual:   %s\n", nothing ? nothing : "nothing");
	/* The lines above cut data to its first bytes: say where it differs. */
	if (r && live)
		rp_print_data_diff(stdout, r->m, live);
	if (c->o->context) {
		long from = (r ? pos : c->cursor + 1) - (long)c->o->context;
		long to = r ? pos : c->cursor + 1;

		if (from < (long)c->ss->first)
			from = (long)c->ss->first;
		if (from < to)
			printf("  recorded before it:\n");
		for (long i = from; i < to; i++)
			print_rec(c, "    ", &c->s->rec[i]);
	}
out:
	fflush(stdout);
	if (!c->o->keep_going)
		c->stop = true;
}

/* ---- Streams of the peer's records ---- */

static bool loose_irqs;

/* The stream a message of the peer belongs to; -1: none (handshake). */
static int stream_key(const PfMessage *m)
{
	switch (m->body_case) {
	case PCIEFW__MESSAGE__BODY_COMPLETION:
		return KEY_COMPLETION;
	case PCIEFW__MESSAGE__BODY_HELLO:
	case PCIEFW__MESSAGE__BODY_DEVICE_DESCRIPTION:
		return -1;
	case PCIEFW__MESSAGE__BODY_INTX:
		return loose_irqs ? KEY_INTX : KEY_OTHER;
	case PCIEFW__MESSAGE__BODY_MSI:
		return loose_irqs ? KEY_MSI + (int)(m->msi->vector & 0xffff) : KEY_OTHER;
	case PCIEFW__MESSAGE__BODY_MSIX:
		return loose_irqs ? KEY_MSIX + (int)(m->msix->vector & 0xffff) : KEY_OTHER;
	default:
		return KEY_OTHER;
	}
}

static void stream_name(int key, char *buf, size_t len)
{
	if (key == KEY_COMPLETION)
		snprintf(buf, len, "completions");
	else if (key == KEY_OTHER)
		snprintf(buf, len, "messages other than completions%s",
			 loose_irqs ? " and interrupts" : "");
	else if (key == KEY_INTX)
		snprintf(buf, len, "intx messages");
	else
		snprintf(buf, len, "%s for vector %d", key >= KEY_MSIX ? "msix" : "msi",
			 key & 0xffff);
}

static struct stream *find_stream(struct ctx *c, int key)
{
	uint32_t i = key >= 0 && key < KEY_LIMIT ? c->stream_of[key] : 0;

	return i ? &c->streams[i - 1] : NULL;
}

static bool is_handshake(const struct ctx *c, size_t pos)
{
	return (long)pos == c->ss->host_hello || (long)pos == c->ss->ep_hello ||
	       (long)pos == c->ss->desc;
}

/* The stream of peer record @p, or -1 if it is not matched in one. */
static int record_key(const struct ctx *c, size_t p)
{
	const struct rp_rec *r = &c->s->rec[p];

	if (r->dir != c->theirs || is_handshake(c, p))
		return -1;
	return stream_key(r->m);
}

static int build_streams(struct ctx *c)
{
	const struct rp_session *ss = c->ss;
	uint32_t *count;

	c->streams = NULL;
	c->n_streams = 0;
	c->n_expected = c->next_expected = 0;
	c->end = ss->end;
	c->partial = false;
	for (size_t p = ss->first; p < ss->end; p++) {
		if (c->s->rec[p].index > c->o->until) {
			c->end = p;
			c->partial = true;
			break;
		}
	}
	/* A trace cut short ends anywhere: what the peer sends past the cut
	 * is not judged. */
	if (c->s->truncated && ss == &c->s->sess[c->s->n_sess - 1])
		c->partial = true;
	c->optional = -1;
	/* Two passes: count each stream's records, then place them. */
	c->stream_of = calloc(KEY_LIMIT, sizeof(*c->stream_of));
	count = calloc(KEY_LIMIT, sizeof(*count));
	c->expected = malloc((c->end - ss->first + 1) * sizeof(*c->expected));
	c->streams = malloc((c->end - ss->first + 1) * sizeof(*c->streams));
	if (!c->stream_of || !count || !c->expected || !c->streams) {
		free(count);
		return -1;
	}
	for (size_t p = ss->first; p < c->end; p++) {
		int key = record_key(c, p);

		if (key < 0)
			continue;
		if (!count[key]++) {
			struct stream *st = &c->streams[c->n_streams++];

			memset(st, 0, sizeof(*st));
			st->key = key;
			c->stream_of[key] = (uint32_t)c->n_streams;
		}
	}
	for (size_t i = 0; i < c->n_streams; i++) {
		c->streams[i].pos = malloc(count[c->streams[i].key] * sizeof(size_t));
		if (!c->streams[i].pos) {
			free(count);
			return -1;
		}
	}
	free(count);
	for (size_t p = ss->first; p < c->end; p++) {
		int key = record_key(c, p);
		struct stream *st;

		if (key < 0)
			continue;
		st = find_stream(c, key);
		st->pos[st->n++] = p;
		c->expected[c->n_expected++] = p;
	}
	/*
	 * A recording that ends with a goodbye ended because that side was
	 * stopped (at any time after its last message).  The peer's is welcome
	 * but not required; ours is sent last, when the peer has had its say:
	 * sent early it could overtake the peer's last request (QEMU drops a
	 * completion that comes in one read with a goodbye).
	 */
	c->deferred = -1;
	if (!c->partial && c->end > ss->first) {
		const struct rp_rec *r = &c->s->rec[c->end - 1];

		if (r->m->body_case == PCIEFW__MESSAGE__BODY_GOODBYE) {
			if (r->dir == c->theirs)
				c->optional = (long)c->end - 1;
			else
				c->deferred = (long)c->end - 1;
		}
	}
	return 0;
}

static void free_streams(struct ctx *c)
{
	for (size_t i = 0; c->streams && i < c->n_streams; i++)
		free(c->streams[i].pos);
	free(c->streams);
	free(c->stream_of);
	free(c->expected);
	c->streams = NULL;
	c->stream_of = NULL;
	c->expected = NULL;
	c->n_streams = c->n_expected = c->next_expected = 0;
}

/*
 * The earliest peer record before @limit that has not come yet, or -1.
 * Streams are matched in order, so that is the earliest head of a stream:
 * the first record of c->expected not done.  The scan only moves forward,
 * so all calls of a session together cost O(records).
 */
static long first_pending(struct ctx *c, size_t limit)
{
	while (c->next_expected < c->n_expected &&
	       (c->s->rec[c->expected[c->next_expected]].done ||
		(long)c->expected[c->next_expected] == c->optional))
		c->next_expected++;
	if (c->next_expected == c->n_expected ||
	    c->expected[c->next_expected] >= limit)
		return -1;
	return (long)c->expected[c->next_expected];
}

static void advance_cursor(struct ctx *c, long pos)
{
	if (pos > c->cursor)
		c->cursor = pos;
}

/* ---- Answers ---- */

static uint32_t read_size(const PfMessage *m)
{
	switch (m->body_case) {
	case PCIEFW__MESSAGE__BODY_CONFIG_READ: return m->config_read->size;
	case PCIEFW__MESSAGE__BODY_MEM_READ: return m->mem_read->size;
	case PCIEFW__MESSAGE__BODY_IO_READ: return m->io_read->size;
	case PCIEFW__MESSAGE__BODY_DMA_READ: return m->dma_read->size;
	default: return 0;
	}
}

static void note_live(struct rp_rec *r, const PfMessage *m)
{
	int bar;
	unsigned long long addr = 0, size = 0;

	r->live_set = true;
	r->live_kind = m->body_case;
	r->live_has_tag = rp_is_request(m);
	if (r->live_has_tag)
		pf_msg_tag(m, &r->live_tag);
	pf_msg_target(m, &bar, &addr, &size);
	r->live_addr = addr;
	r->live_size = read_size(m);
}

static void send_buf(struct ctx *c, struct pf_buf *b)
{
	/* A failed write shows as the peer's close on the read side, after
	 * whatever it said before closing. */
	rp_conn_send_buf(&c->conn, b);
	pf_buf_clear(b);
}

/* Answer a live request the recording cannot answer. */
static void answer_unmatched(struct ctx *c, uint32_t tag, int kind,
			     uint64_t addr, uint32_t size)
{
	struct pf_buf b;

	pf_buf_init(&b);
	if (c->o->role == RP_AS_HOST) {
		uint8_t *data;

		if (kind != PCIEFW__MESSAGE__BODY_DMA_READ)
			return;   /* nothing else from the endpoint needs an answer */
		data = malloc(size ? size : 1);
		if (!data)
			return;
		rp_mem_read(c->mem, addr, data, size);
		pf_put_completion(&b, tag, PCIEFW__STATUS__STATUS_SUCCESSFUL, data, size);
		free(data);
	} else {
		pf_put_completion(&b, tag, PCIEFW__STATUS__STATUS_UNSUPPORTED_REQUEST,
				  NULL, 0);
	}
	send_buf(c, &b);
	pf_buf_free(&b);
}

/* Our recorded completion @r, for the live request matched to r->req. */
static void send_completion(struct ctx *c, const struct rp_rec *r)
{
	const Pciefw__Completion *cp = r->m->completion;
	struct rp_rec *q;
	struct pf_buf b;
	bool fits;

	if (r->req < 0) {
		/* The recording answers nothing we know of: send it as it is. */
		rp_conn_send(&c->conn, r->m);
		return;
	}
	q = &c->s->rec[r->req];
	if (c->o->role == RP_AS_HOST &&
	    q->m->body_case == PCIEFW__MESSAGE__BODY_DMA_READ &&
	    cp->status == PCIEFW__STATUS__STATUS_SUCCESSFUL)
		rp_mem_write(c->mem, q->m->dma_read->address, cp->data.data, cp->data.len);
	if (!q->live_set || !q->live_has_tag || q->answered)
		return;   /* it never came, or needs no (more) answer */
	q->answered = true;
	fits = q->live_kind == (int)q->m->body_case &&
	       (cp->status != PCIEFW__STATUS__STATUS_SUCCESSFUL ||
		cp->data.len == 0 || cp->data.len == q->live_size);
	if (c->o->role == RP_AS_HOST && q->live_kind == PCIEFW__MESSAGE__BODY_DMA_READ &&
	    !q->live_same && q->live_addr != q->m->dma_read->address)
		fits = false;
	if (!fits) {
		answer_unmatched(c, q->live_tag, q->live_kind, q->live_addr, q->live_size);
		return;
	}
	pf_buf_init(&b);
	pf_put_completion(&b, q->live_tag, (Pciefw__Status)cp->status,
			  cp->data.data, (uint32_t)cp->data.len);
	send_buf(c, &b);
	pf_buf_free(&b);
}

static void send_ours(struct ctx *c, size_t pos)
{
	const struct rp_rec *r = &c->s->rec[pos];

	switch (r->m->body_case) {
	case PCIEFW__MESSAGE__BODY_COMPLETION:
		send_completion(c, r);
		break;
	case PCIEFW__MESSAGE__BODY_INTERRUPT_CONFIG:
		/* Only a session that negotiated it carries it (spec 12.1). */
		if (c->session.features & PCIEFW_FEATURE_INTERRUPT_CONFIG)
			rp_conn_send(&c->conn, r->m);
		break;
	case PCIEFW__MESSAGE__BODY_GOODBYE:
	case PCIEFW__MESSAGE__BODY_ERROR:
		c->said_bye = true;
		/* fall through */
	default:
		rp_conn_send(&c->conn, r->m);
	}
}

/* ---- What the peer sends ---- */

static void on_live(struct ctx *c, const PfMessage *m)
{
	int key = stream_key(m);
	struct stream *st = key < 0 ? NULL : find_stream(c, key);
	char diff[256];
	struct rp_rec *r;
	size_t pos;
	bool same;

	if (c->o->role == RP_AS_HOST && m->body_case == PCIEFW__MESSAGE__BODY_DMA_WRITE)
		rp_mem_write(c->mem, m->dma_write->address, m->dma_write->data.data,
			     m->dma_write->data.len);
	if (key < 0) {
		diverge(c, -1, m, NULL, "unexpected %s from the %s after the handshake",
			pf_msg_kind_name(m->body_case), c->peer);
		return;
	}
	if (!st || st->head == st->n) {
		uint32_t tag = 0;
		char name[80];

		if (c->partial)
			return;   /* past --until: not judged */
		stream_name(key, name, sizeof(name));
		diverge(c, -1, m, NULL, "the %s sent more than the recording has "
			"(no more %s expected from it)", c->peer, name);
		if (rp_is_request(m) && pf_msg_tag(m, &tag))
			answer_unmatched(c, tag, m->body_case,
					 m->body_case == PCIEFW__MESSAGE__BODY_DMA_READ ?
					 m->dma_read->address : 0, read_size(m));
		return;
	}
	pos = st->pos[st->head++];
	r = &c->s->rec[pos];
	r->done = true;
	c->st->replayed++;
	advance_cursor(c, (long)pos);
	note_live(r, m);
	same = rp_msg_equal(&c->o->ig, r->m, m, diff, sizeof(diff));
	r->live_same = same;
	if (!same) {
		if (!strcmp(diff, "kind"))
			diverge(c, (long)pos, m, NULL, "the %s sent %s instead of %s",
				c->peer, pf_msg_kind_name(m->body_case),
				pf_msg_kind_name(r->m->body_case));
		else
			diverge(c, (long)pos, m, NULL, "%s differs in %s",
				pf_msg_kind_name(m->body_case), diff);
	}
	/* A live request the recorded completion will not answer. */
	if (r->live_has_tag && (r->live_kind != (int)r->m->body_case ||
				(!same && r->cpl < 0))) {
		r->answered = true;
		answer_unmatched(c, r->live_tag, r->live_kind, r->live_addr, r->live_size);
	}
	progress(c, false);
}

static void missing(struct ctx *c, long pos, const char *why)
{
	struct rp_rec *r = &c->s->rec[pos];
	int key = stream_key(r->m);
	struct stream *st = key < 0 ? NULL : find_stream(c, key);

	diverge(c, pos, NULL, why, "the %s did not send the recorded %s",
		c->peer, pf_msg_kind_name(r->m->body_case));
	r->done = r->missed = true;
	if (st && st->head < st->n && st->pos[st->head] == (size_t)pos)
		st->head++;
	c->st->replayed++;
	advance_cursor(c, pos);
}

/* The connection failed or closed with @pending (or -1) still expected. */
static void lost(struct ctx *c, int r, long pending)
{
	char why[600];

	c->closed = true;
	if (r != PF_ERR_CLOSED) {
		diverge(c, -1, NULL, NULL, "the %s broke the protocol: %s", c->peer,
			c->conn.why);
		return;
	}
	if (pending < 0)
		return;
	snprintf(why, sizeof(why), "the %s closed the connection (%s)", c->peer,
		 c->conn.why);
	missing(c, pending, why);
}

/*
 * Serve the connection until every peer record before @limit has come
 * (false when the session cannot go on), or until @until_ns (monotonic,
 * non-zero: a --timing pause).
 */
static bool wait_peer(struct ctx *c, size_t limit, uint64_t until_ns)
{
	long waiting = -1;
	uint64_t since = 0;
	/* Once the peer has left out a message, it has shown that it does not
	 * follow the recording: do not wait as long for the next ones. */
	int timeout_ms = c->o->timeout_ms < 0 || !c->peer_silent ? c->o->timeout_ms :
			 c->o->timeout_ms / 10 > 100 ? c->o->timeout_ms / 10 :
			 (c->o->timeout_ms < 100 ? c->o->timeout_ms : 100);

	for (;;) {
		long e = first_pending(c, limit);
		uint64_t now = rp_mono_ns();
		PfMessage *m;
		int left, r;

		if (c->stop)
			return false;
		if (until_ns ? now >= until_ns : e < 0)
			return !c->closed;
		if (c->closed) {
			if (e >= 0 && !until_ns)
				lost(c, PF_ERR_CLOSED, e);
			return false;
		}
		if (until_ns) {
			left = (int)((until_ns - now + 999999) / 1000000);
		} else {
			if (e != waiting) {
				waiting = e;
				since = now;
			}
			if (timeout_ms < 0) {
				left = -1;
			} else {
				int64_t l = (int64_t)timeout_ms -
					    (int64_t)((now - since) / 1000000);

				left = l > 0 ? (int)l : 0;
			}
		}
		if (progress_on && (left < 0 || left > 100))
			left = 100;
		r = rp_conn_next(&c->conn, left, &m);
		if (r == PF_OK) {
			on_live(c, m);
			continue;
		}
		if (r == PF_ERR_TIMEOUT) {
			progress(c, false);
			if (!until_ns && e >= 0 && timeout_ms >= 0 &&
			    rp_mono_ns() - since >= (uint64_t)timeout_ms * 1000000ull) {
				char why[96];

				/* Everything overdue by now is missing. */
				snprintf(why, sizeof(why), "nothing within %d ms", timeout_ms);
				c->peer_silent = true;
				for (long p = e; p >= 0 && !c->stop;
				     p = first_pending(c, limit))
					missing(c, p, why);
				waiting = -1;
			}
			continue;
		}
		if (r == PF_ERR_CLOSED && c->said_bye && e < 0) {
			c->closed = true;
			return false;
		}
		lost(c, r, e);
		return false;
	}
}

/*
 * After the last record: watch for what the peer sends beyond it.  As the
 * host, for a moment; as the endpoint, until the host disconnects (or
 * --timeout ms pass without a message).
 */
static void linger(struct ctx *c)
{
	bool forever = c->o->role == RP_AS_ENDPOINT && c->o->timeout_ms < 0;
	uint64_t window = c->o->role == RP_AS_HOST ? LINGER_MS :
			  (uint64_t)(c->o->timeout_ms < 0 ? 0 : c->o->timeout_ms);
	uint64_t end = rp_mono_ns() + window * 1000000ull;

	if (c->partial || c->closed || c->stop)
		return;
	for (;;) {
		uint64_t now = rp_mono_ns();
		PfMessage *m;
		int left = -1, r;

		if (!forever) {
			if (now >= end)
				return;
			left = (int)((end - now) / 1000000) + 1;
		}
		if (progress_on && (left < 0 || left > 100))
			left = 100;
		r = rp_conn_next(&c->conn, left, &m);
		if (r == PF_OK) {
			on_live(c, m);
			if (c->stop)
				return;
			if (c->o->role == RP_AS_ENDPOINT)
				end = rp_mono_ns() + window * 1000000ull;
			continue;
		}
		if (r == PF_ERR_TIMEOUT) {
			progress(c, false);
			continue;
		}
		if (r != PF_ERR_CLOSED)
			lost(c, r, -1);
		c->closed = true;
		return;
	}
}

/* ---- Handshake ---- */

static void hello_from(struct pf_hello_params *p, const PfMessage *m)
{
	pf_hello_defaults(p, "pciefw-replay");
	if (m && m->body_case == PCIEFW__MESSAGE__BODY_HELLO) {
		p->version_major = m->hello->version_major;
		p->version_minor = m->hello->version_minor;
		p->features = m->hello->features;
		p->max_payload = m->hello->max_payload;
	}
	/*
	 * No fds to pass: a replay never shares guest memory (spec 10.5) nor
	 * rings, so binary records are off too (11.6, 11.7): it sends every
	 * recorded message as its frame.
	 */
	p->features &= ~(PCIEFW_FEATURE_GUEST_MEMORY | PCIEFW_FEATURE_SHM_RINGS |
			 PCIEFW_FEATURE_REG_RECORDS);
}

static int handshake_message(struct ctx *c, PfMessage **m, const char *what)
{
	int ms = c->o->timeout_ms < 0 ? -1 : c->o->timeout_ms > HANDSHAKE_TIMEOUT_MS ?
		 c->o->timeout_ms : HANDSHAKE_TIMEOUT_MS;
	int r = rp_conn_next(&c->conn, ms, m);

	if (r == PF_ERR_TIMEOUT)
		snprintf(c->conn.why, sizeof(c->conn.why), "no %s within %d ms", what, ms);
	if (r) {
		progress_clear();
		fprintf(stderr, "pciefw-replay: session %u: handshake with the %s "
			"failed: %s\n", c->sess_no, c->peer, c->conn.why);
		return RP_EXIT_FAILED;
	}
	if ((*m)->body_case == PCIEFW__MESSAGE__BODY_ERROR ||
	    (*m)->body_case == PCIEFW__MESSAGE__BODY_GOODBYE) {
		progress_clear();
		fprintf(stderr, "pciefw-replay: session %u: the %s refused the "
			"connection: %s\n", c->sess_no, c->peer,
			(*m)->body_case == PCIEFW__MESSAGE__BODY_ERROR ?
			(*m)->error->text : (*m)->goodbye->text);
		return RP_EXIT_FAILED;
	}
	return 0;
}

static void judge_handshake(struct ctx *c, long pos, const PfMessage *m)
{
	char diff[256];

	if (pos < 0)
		return;
	c->s->rec[pos].done = true;
	c->st->replayed++;
	advance_cursor(c, pos);
	if (m->body_case != c->s->rec[pos].m->body_case)
		diverge(c, pos, m, NULL, "the %s sent %s instead of %s", c->peer,
			pf_msg_kind_name(m->body_case),
			pf_msg_kind_name(c->s->rec[pos].m->body_case));
	else if (!rp_msg_equal(&c->o->ig, c->s->rec[pos].m, m, diff, sizeof(diff)))
		diverge(c, pos, m, NULL, "%s differs in %s",
			pf_msg_kind_name(c->s->rec[pos].m->body_case), diff);
}

static int peer_hello(struct ctx *c, long rec_pos)
{
	PfMessage *m;
	char err[300];
	int r = handshake_message(c, &m, "hello");

	if (r)
		return r;
	if (m->body_case == PCIEFW__MESSAGE__BODY_HELLO)
		judge_handshake(c, rec_pos, m);
	r = pf_hello_negotiate(&c->hello, m, &c->session, err, sizeof(err));
	if (r) {
		struct pf_buf b;

		pf_buf_init(&b);
		pf_put_error(&b, r == PF_ERR_VERSION ? PCIEFW__ERROR_CODE__ERROR_VERSION :
			     PCIEFW__ERROR_CODE__ERROR_PROTOCOL, err);
		rp_conn_send_buf(&c->conn, &b);
		rp_conn_flush(&c->conn, 1000);
		pf_buf_free(&b);
		progress_clear();
		fprintf(stderr, "pciefw-replay: session %u: handshake with the %s "
			"failed: %s\n", c->sess_no, c->peer, err);
		return RP_EXIT_FAILED;
	}
	rp_conn_set_max_payload(&c->conn, c->session.max_payload);
	return 0;
}

static int host_handshake(struct ctx *c)
{
	const struct rp_session *ss = c->ss;
	struct pf_addr a;
	struct pf_buf b;
	PfMessage *m;
	char err[512];
	int fd, r;

	if (pf_addr_parse(c->o->addr, &a, err, sizeof(err)) ||
	    (fd = pf_connect(&a, err, sizeof(err))) < 0) {
		progress_clear();
		fprintf(stderr, "pciefw-replay: %s\n", err);
		return RP_EXIT_FAILED;
	}
	rp_conn_init(&c->conn, fd);
	c->have_conn = true;
	c->live_t0 = rp_mono_ns();
	hello_from(&c->hello, ss->host_hello >= 0 ? c->s->rec[ss->host_hello].m : NULL);
	pf_buf_init(&b);
	pf_put_hello(&b, &c->hello);
	rp_conn_send_buf(&c->conn, &b);
	pf_buf_free(&b);
	if (ss->host_hello >= 0) {
		c->s->rec[ss->host_hello].done = true;
		c->st->replayed++;
	}
	r = peer_hello(c, ss->ep_hello);
	if (r)
		return r;
	r = handshake_message(c, &m, "device description");
	if (r)
		return r;
	judge_handshake(c, ss->desc, m);
	return 0;
}

/* The next host; as long as it takes, or --timeout ms if given. */
static int accept_host(struct ctx *c, int lfd)
{
	uint64_t deadline = rp_mono_ns() + (uint64_t)(c->o->timeout_ms > 0 ?
						      c->o->timeout_ms : 0) * 1000000ull;

	for (;;) {
		struct pollfd p = { .fd = lfd, .events = POLLIN };
		uint64_t now = rp_mono_ns();
		int fd, r, wait = -1;

		if (c->o->timeout_ms > 0) {
			if (now >= deadline) {
				progress_clear();
				fprintf(stderr, "pciefw-replay: session %u: no host connected "
					"within %d ms\n", c->sess_no, c->o->timeout_ms);
				return -1;
			}
			wait = (int)((deadline - now) / 1000000) + 1;
		}
		if (progress_on && (wait < 0 || wait > 100))
			wait = 100;
		r = poll(&p, 1, wait);
		if (r < 0 && errno != EINTR) {
			fprintf(stderr, "pciefw-replay: poll: %s\n", strerror(errno));
			return -1;
		}
		if (r <= 0) {
			progress(c, false);
			continue;
		}
		fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EAGAIN || errno == EINTR || errno == ECONNABORTED)
				continue;
			fprintf(stderr, "pciefw-replay: accept: %s\n", strerror(errno));
			return -1;
		}
		pf_tune_socket(fd);
		return fd;
	}
}

static int endpoint_handshake(struct ctx *c, int lfd)
{
	const struct rp_session *ss = c->ss;
	struct pf_buf b;
	int fd, r;

	progress(c, true);
	fd = accept_host(c, lfd);
	if (fd < 0)
		return RP_EXIT_FAILED;
	rp_conn_init(&c->conn, fd);
	c->have_conn = true;
	c->live_t0 = rp_mono_ns();
	hello_from(&c->hello, ss->ep_hello >= 0 ? c->s->rec[ss->ep_hello].m : NULL);
	pf_buf_init(&b);
	pf_put_hello(&b, &c->hello);
	rp_conn_send_buf(&c->conn, &b);
	pf_buf_free(&b);
	if (ss->ep_hello >= 0) {
		c->s->rec[ss->ep_hello].done = true;
		c->st->replayed++;
	}
	r = peer_hello(c, ss->host_hello);
	if (r)
		return r;
	if (ss->desc >= 0) {
		rp_conn_send(&c->conn, c->s->rec[ss->desc].m);
		c->s->rec[ss->desc].done = true;
		c->st->replayed++;
		advance_cursor(c, ss->desc);
	}
	return 0;
}

/* ---- A session ---- */

static int replay_session(struct ctx *c, int lfd)
{
	const struct rp_session *ss = c->ss;
	uint64_t ts0 = c->s->rec[ss->first].ts_ns;
	int r;

	c->cursor = (long)ss->first - 1;
	c->closed = c->said_bye = c->peer_silent = false;
	if (build_streams(c)) {
		free_streams(c);
		fprintf(stderr, "pciefw-replay: out of memory\n");
		return RP_EXIT_FAILED;
	}
	if (ss->ep_hello < 0 || ss->desc < 0 || ss->host_hello < 0) {
		/* A connection refused or lost during the handshake. */
		progress_clear();
		free_streams(c);
		if (c->o->session) {
			fprintf(stderr, "pciefw-replay: session %u (record #%llu) has no "
				"complete handshake (hello both ways, then the device "
				"description): nothing to replay\n", c->sess_no,
				(unsigned long long)c->s->rec[ss->first].index);
			return RP_EXIT_FAILED;
		}
		printf("pciefw-replay: skipping session %u (records #%llu..#%llu): no "
		       "complete handshake\n", c->sess_no,
		       (unsigned long long)c->s->rec[ss->first].index,
		       (unsigned long long)c->s->rec[ss->end - 1].index);
		for (size_t p = ss->first; p < ss->end; p++)
			if (c->s->rec[p].index <= c->o->until)
				c->st->total--;
		c->st->sessions--;
		return 0;
	}
	r = c->o->role == RP_AS_HOST ? host_handshake(c) : endpoint_handshake(c, lfd);
	if (r)
		goto out;
	for (size_t pos = ss->first; pos < c->end && !c->stop && !c->closed; pos++) {
		struct rp_rec *rec = &c->s->rec[pos];

		if (is_handshake(c, pos) || rec->dir != c->ours || (long)pos == c->deferred)
			continue;
		if (!wait_peer(c, pos, 0))
			break;
		if (c->o->timing && rec->ts_ns > ts0 &&
		    !wait_peer(c, pos, c->live_t0 + (rec->ts_ns - ts0)))
			break;
		send_ours(c, pos);
		rec->done = true;
		c->st->replayed++;
		advance_cursor(c, (long)pos);
		progress(c, false);
	}
	if (!c->stop && !c->closed && wait_peer(c, c->end, 0))
		linger(c);
	if (c->deferred >= 0) {
		if (!c->closed && !c->stop)
			send_ours(c, (size_t)c->deferred);
		c->s->rec[c->deferred].done = true;
		c->st->replayed++;
	}
	/* Our own writes reach a peer that is still reading. */
	if (!c->closed)
		rp_conn_flush(&c->conn, 1000);
	/* A trailing goodbye of the peer that did not come is no divergence. */
	if (c->optional >= 0 && !c->s->rec[c->optional].done) {
		c->s->rec[c->optional].done = true;
		c->st->replayed++;
	}
out:
	if (c->have_conn) {
		rp_conn_free(&c->conn);
		c->have_conn = false;
	}
	free_streams(c);
	return r;
}

/* ---- Entry ---- */

static uint64_t count_records(const struct rp_opts *o, const struct rp_script *s)
{
	uint64_t n = 0;

	for (size_t i = 0; i < s->n_sess; i++) {
		if (o->session && o->session != i + 1)
			continue;
		for (size_t p = s->sess[i].first; p < s->sess[i].end; p++)
			if (s->rec[p].index <= o->until)
				n++;
	}
	return n;
}

int rp_replay(const struct rp_opts *o, struct rp_script *s)
{
	struct stats st = { 0 };
	struct ctx c;
	uint64_t t_start = rp_mono_ns();
	int lfd = -1, ret = RP_EXIT_MATCH;
	char err[512];
	bool all = true;

	memset(&c, 0, sizeof(c));
	c.o = o;
	c.s = s;
	c.st = &st;
	c.ours = o->role == RP_AS_HOST ? PF_DIR_TO_ENDPOINT : PF_DIR_TO_HOST;
	c.theirs = o->role == RP_AS_HOST ? PF_DIR_TO_HOST : PF_DIR_TO_ENDPOINT;
	c.peer = o->role == RP_AS_HOST ? "endpoint" : "host";
	c.mem = rp_mem_new();
	if (!c.mem) {
		fprintf(stderr, "pciefw-replay: out of memory\n");
		return RP_EXIT_FAILED;
	}
	progress_on = o->progress;
	loose_irqs = o->loose_irqs;
	st.total = count_records(o, s);
	if (o->session > s->n_sess) {
		fprintf(stderr, "pciefw-replay: --session %lu: the trace has %zu session%s\n",
			o->session, s->n_sess, s->n_sess == 1 ? "" : "s");
		rp_mem_free(c.mem);
		return RP_EXIT_USAGE;
	}
	if (o->role == RP_AS_ENDPOINT) {
		struct pf_addr a;
		char shown[300];

		if (pf_addr_parse(o->addr, &a, err, sizeof(err)) ||
		    (lfd = pf_listen(&a, err, sizeof(err))) < 0) {
			fprintf(stderr, "pciefw-replay: %s\n", err);
			rp_mem_free(c.mem);
			return RP_EXIT_FAILED;
		}
		if (a.kind == PF_ADDR_TCP && !a.port)
			a.port = (uint16_t)pf_bound_port(lfd);
		pf_addr_format(&a, shown, sizeof(shown));
		printf("listening on %s\n", shown);
	}
	/* Records as pciefw-trace --stats counts them (every type). */
	printf("pciefw-replay: %s: %llu records, %llu messages", o->trace,
	       (unsigned long long)s->records, (unsigned long long)s->messages);
	if (s->messages != s->n)
		printf(" (%zu replayed: guest memory and ring set-up are not, spec "
		       "10.5, 11.6)", s->n);
	printf(", %zu session%s over %.6f s; replaying %s as the %s %s %s\n",
	       s->n_sess, s->n_sess == 1 ? "" : "s",
	       s->n ? (double)(s->rec[s->n - 1].ts_ns - s->t0) / 1e9 : 0.0,
	       o->session ? "one session" : (s->n_sess > 1 ? "every session" : "it"),
	       o->role == RP_AS_HOST ? "host" : "endpoint",
	       o->role == RP_AS_HOST ? "against" : "on", o->addr);
	if (s->skipped)
		printf("pciefw-replay: skipping %zu messages before the first hello\n",
		       s->skipped);
	if (s->truncated)
		printf("pciefw-replay: the trace is truncated (%s); replaying its "
		       "whole records\n", s->truncation);
	fflush(stdout);

	for (size_t i = 0; i < s->n_sess && !c.stop; i++) {
		if (o->session && o->session != i + 1)
			continue;
		if (s->rec[s->sess[i].first].index > o->until)
			break;
		c.ss = &s->sess[i];
		c.sess_no = (unsigned)i + 1;
		st.sessions++;
		ret = replay_session(&c, lfd);
		if (ret)
			break;
		if (c.partial)
			all = false;
	}
	if (o->until != UINT64_MAX)
		all = false;
	progress_clear();
	if (lfd >= 0) {
		if (o->addr && !strncmp(o->addr, "unix:", 5))
			unlink(o->addr + 5);
		close(lfd);
	}
	rp_mem_free(c.mem);
	if (ret)
		return ret;
	if (!st.sessions) {
		fprintf(stderr, "pciefw-replay: %s: no session with a complete handshake "
			"to replay\n", o->trace);
		return RP_EXIT_FAILED;
	}
	if (o->until != UINT64_MAX)
		snprintf(err, sizeof(err), " (up to record #%llu: a prefix of the trace)",
			 (unsigned long long)o->until);
	else
		snprintf(err, sizeof(err), "%s", all ? "" : " (a prefix of the trace)");
	printf("pciefw-replay: %s %llu of %llu messages%s in %.3f s: %llu divergence%s%s\n",
	       c.stop ? "stopped after" : "replayed",
	       (unsigned long long)st.replayed, (unsigned long long)st.total, err,
	       (double)(rp_mono_ns() - t_start) / 1e9,
	       (unsigned long long)st.divergences, st.divergences == 1 ? "" : "s",
	       c.stop ? " (stopped at the first; --keep-going counts them all)" : "");
	fflush(stdout);
	return st.divergences ? RP_EXIT_DIVERGED : RP_EXIT_MATCH;
}
