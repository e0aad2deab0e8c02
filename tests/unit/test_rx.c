/*
 * The session's receiving half (protocol/rx.h), alone: the Hello rule and
 * negotiation, dispatch by kind (a kind without a handler is unexpected),
 * Goodbye and Error in any state, a handler's pause and its errors, and
 * every frame handled once whatever the stream's splits.
 */
#include <glib.h>
#include <string.h>

#include "buf.h"
#include "handshake.h"
#include "msg.h"
#include "rx.h"

struct seen {
	int reads, writes, hellos, ended;
	uint32_t last_tag;
	uint8_t frame[64];       /* the frame body of the last read (rx->body) */
	size_t frame_len;
	struct pf_rx *rx;
	int answer;              /* what the mem_read handler returns */
	struct pf_session session;
};

static int on_mem_read(void *opaque, const PfMessage *m, char *err,
		       size_t errlen)
{
	struct seen *s = opaque;

	s->reads++;
	s->last_tag = m->mem_read->tag;
	if (s->rx && s->rx->body_len <= sizeof(s->frame)) {
		memcpy(s->frame, s->rx->body, s->rx->body_len);
		s->frame_len = s->rx->body_len;
	}
	if (s->answer < 0)
		snprintf(err, errlen, "tag %u refused", m->mem_read->tag);
	return s->answer;
}

static int on_mem_write(void *opaque, const PfMessage *m, char *err,
			size_t errlen)
{
	((struct seen *)opaque)->writes++;
	return PF_OK;
}

static int on_hello(void *opaque, const struct pf_session *s, char *err,
		    size_t errlen)
{
	struct seen *seen = opaque;

	seen->hellos++;
	seen->session = *s;
	return PF_OK;
}

static void on_ended(void *opaque, const PfMessage *m)
{
	((struct seen *)opaque)->ended++;
}

static const struct pf_rx_handlers handlers = {
	.on = {
		[PCIEFW__MESSAGE__BODY_MEM_READ] = on_mem_read,
		[PCIEFW__MESSAGE__BODY_MEM_WRITE] = on_mem_write,
	},
	.hello = on_hello,
	.ended = on_ended,
};

static struct pf_hello_params ours;

static void start(struct pf_rx *rx, struct seen *s)
{
	memset(s, 0, sizeof(*s));
	pf_hello_defaults(&ours, "test endpoint");
	g_assert_cmpint(pf_rx_init(rx, &handlers, s, PF_DIR_TO_ENDPOINT, &ours,
				   NULL), ==, PF_OK);
}

static void put_hello(struct pf_buf *b, uint32_t max_payload)
{
	struct pf_hello_params p;

	pf_hello_defaults(&p, "test host");
	p.max_payload = max_payload;
	g_assert_cmpint(pf_put_hello(b, &p), ==, PF_OK);
}

static int push_all(struct pf_rx *rx, struct pf_buf *b, size_t *used)
{
	return pf_rx_push(rx, pf_buf_peek(b), pf_buf_used(b), used);
}

/* A session's messages in pieces of every size take the same course. */
static void test_any_split(void)
{
	struct pf_buf b;
	uint8_t data[4] = { 1, 2, 3, 4 };

	pf_buf_init(&b);
	put_hello(&b, 4096);
	for (uint32_t t = 1; t <= 5; t++) {
		g_assert_cmpint(pf_put_mem_read(&b, t, 0, 0, 4), ==, PF_OK);
		g_assert_cmpint(pf_put_mem_write(&b, 0, 4, data, 4), ==, PF_OK);
	}
	for (size_t piece = 1; piece <= pf_buf_used(&b); piece++) {
		struct pf_rx rx;
		struct seen s;

		start(&rx, &s);
		for (size_t off = 0; off < pf_buf_used(&b); off += piece) {
			size_t n = MIN(piece, pf_buf_used(&b) - off), used;

			g_assert_cmpint(pf_rx_push(&rx, pf_buf_peek(&b) + off, n,
						   &used), ==, PF_OK);
			g_assert_cmpuint(used, ==, n);
		}
		g_assert_cmpint(s.hellos, ==, 1);
		g_assert_cmpuint(s.session.max_payload, ==, 4096);
		g_assert_cmpint(s.reads, ==, 5);
		g_assert_cmpint(s.writes, ==, 5);
		g_assert_cmpint(pf_rx_finish(&rx), ==, PF_EOF);
		pf_rx_free(&rx);
	}
	pf_buf_free(&b);
}

static void expect_error(struct pf_buf *b, int status, Pciefw__ErrorCode code,
			 const char *text)
{
	struct pf_rx rx;
	struct seen s;
	size_t used;

	start(&rx, &s);
	g_assert_cmpint(push_all(&rx, b, &used), ==, status);
	g_assert_cmpint(rx.code, ==, code);
	if (!strstr(rx.why, text))
		g_error("why '%s' lacks '%s'", rx.why, text);
	/* Nothing more is taken after it. */
	g_assert_cmpint(push_all(&rx, b, &used), ==, PF_EOF);
	pf_rx_free(&rx);
	pf_buf_clear(b);
}

static void test_errors(void)
{
	struct pf_buf b;
	uint8_t data[2] = { 0 };

	pf_buf_init(&b);
	/* 2.1: the first message must be a Hello. */
	pf_put_mem_read(&b, 1, 0, 0, 4);
	expect_error(&b, PF_ERR_NO_HELLO, PCIEFW__ERROR_CODE__ERROR_PROTOCOL,
		     "expected hello");
	/* A second Hello. */
	put_hello(&b, 4096);
	put_hello(&b, 4096);
	expect_error(&b, PF_ERR_UNEXPECTED, PCIEFW__ERROR_CODE__ERROR_UNEXPECTED,
		     "second hello from the host");
	/* A kind without a handler: the wrong direction. */
	put_hello(&b, 4096);
	pf_put_msix(&b, 1);
	expect_error(&b, PF_ERR_UNEXPECTED, PCIEFW__ERROR_CODE__ERROR_UNEXPECTED,
		     "unexpected msix from the host");
	/* Checked on its own: above the negotiated max payload. */
	put_hello(&b, 64);
	pf_put_mem_read(&b, 1, 2, 0, 65);
	expect_error(&b, PF_ERR_LIMIT, PCIEFW__ERROR_CODE__ERROR_LIMIT, "65");
	/* Framing: a zero length prefix. */
	put_hello(&b, 4096);
	pf_buf_append(&b, "\0\0\0\0", 4);
	expect_error(&b, PF_ERR_ZERO_LENGTH, PCIEFW__ERROR_CODE__ERROR_BAD_FRAME,
		     "bad frame");
	/* Structure: a config write of 2 bytes at 4096. */
	put_hello(&b, 4096);
	pf_put_config_write(&b, 1, 4096, data, 2);
	expect_error(&b, PF_ERR_INVALID, PCIEFW__ERROR_CODE__ERROR_PROTOCOL,
		     "beyond 4 KiB");
	pf_buf_free(&b);
}

static void test_handler_error_and_pause(void)
{
	struct pf_buf b;
	struct pf_rx rx;
	struct seen s;
	size_t used, first;

	pf_buf_init(&b);
	put_hello(&b, 4096);
	pf_put_mem_read(&b, 7, 0, 0, 4);
	first = pf_buf_used(&b);
	pf_put_mem_read(&b, 8, 0, 0, 4);
	/* A pause stops right after the message that asked for it. */
	start(&rx, &s);
	s.answer = PF_RX_PAUSE;
	g_assert_cmpint(push_all(&rx, &b, &used), ==, PF_RX_PAUSE);
	g_assert_cmpuint(used, ==, first);
	g_assert_cmpuint(s.last_tag, ==, 7);
	s.answer = PF_OK;
	g_assert_cmpint(pf_rx_push(&rx, pf_buf_peek(&b) + used,
				   pf_buf_used(&b) - used, &used), ==, PF_OK);
	g_assert_cmpuint(s.last_tag, ==, 8);
	pf_rx_free(&rx);
	/* A handler's error is the peer's protocol error, with its text. */
	start(&rx, &s);
	s.answer = PF_ERR_UNKNOWN_TAG;
	g_assert_cmpint(push_all(&rx, &b, &used), ==, PF_ERR_UNKNOWN_TAG);
	g_assert_cmpint(rx.code, ==, PCIEFW__ERROR_CODE__ERROR_UNKNOWN_TAG);
	g_assert_cmpstr(rx.why, ==, "tag 7 refused");
	g_assert_cmpint(s.reads, ==, 1);
	pf_rx_free(&rx);
	pf_buf_free(&b);
}

/* 7.2: Goodbye and Error end the session in any state, even first. */
static void test_goodbye_any_state(void)
{
	struct pf_buf b;

	pf_buf_init(&b);
	for (int hello_first = 0; hello_first < 2; hello_first++) {
		struct pf_rx rx;
		struct seen s;
		size_t used;

		pf_buf_clear(&b);
		if (hello_first)
			put_hello(&b, 4096);
		pf_put_goodbye(&b, PCIEFW__GOODBYE_REASON__GOODBYE_SHUTDOWN, "bye");
		pf_put_mem_read(&b, 1, 0, 0, 4);
		start(&rx, &s);
		g_assert_cmpint(push_all(&rx, &b, &used), ==, PF_EOF);
		g_assert_cmpint(s.ended, ==, 1);
		g_assert_cmpint(s.reads, ==, 0);
		g_assert_cmpuint(used, <, pf_buf_used(&b));
		pf_rx_free(&rx);
	}
	pf_buf_free(&b);
}

/* While a handler runs, rx->body is the frame its message came in. */
static void test_current_frame(void)
{
	struct pf_buf b;
	struct pf_rx rx;
	struct seen s;
	size_t used, at;

	pf_buf_init(&b);
	put_hello(&b, 4096);
	at = pf_buf_used(&b);
	pf_put_mem_read(&b, 42, 1, 0x10, 4);
	start(&rx, &s);
	s.rx = &rx;
	g_assert_cmpint(push_all(&rx, &b, &used), ==, PF_OK);
	g_assert_cmpuint(s.frame_len, ==, pf_buf_used(&b) - at - PF_FRAME_HEADER);
	g_assert_cmpmem(s.frame, s.frame_len,
			pf_buf_peek(&b) + at + PF_FRAME_HEADER, s.frame_len);
	g_assert_null(rx.body);
	pf_rx_free(&rx);
	pf_buf_free(&b);
}

/* A handler that changes the table: what follows meets the new one. */
static int switch_to_writes(void *opaque, const PfMessage *m, char *err,
			    size_t errlen);

static const struct pf_rx_handlers writes_only = {
	.on = { [PCIEFW__MESSAGE__BODY_MEM_WRITE] = on_mem_write },
};

static const struct pf_rx_handlers reads_then_writes = {
	.on = { [PCIEFW__MESSAGE__BODY_MEM_READ] = switch_to_writes },
};

static int switch_to_writes(void *opaque, const PfMessage *m, char *err,
			    size_t errlen)
{
	struct seen *s = opaque;

	s->reads++;
	pf_rx_set_handlers(s->rx, &writes_only);
	return PF_OK;
}

static void test_set_handlers(void)
{
	struct pf_buf b;
	struct pf_rx rx;
	struct seen s = { 0 };
	uint8_t data[4] = { 0 };
	size_t used;

	pf_buf_init(&b);
	pf_hello_defaults(&ours, "test endpoint");
	g_assert_cmpint(pf_rx_init(&rx, &reads_then_writes, &s, PF_DIR_TO_ENDPOINT,
				   &ours, NULL), ==, PF_OK);
	s.rx = &rx;
	put_hello(&b, 4096);
	pf_put_mem_read(&b, 1, 0, 0, 4);
	pf_put_mem_write(&b, 0, 4, data, 4);
	pf_put_mem_read(&b, 2, 0, 0, 4);
	g_assert_cmpint(push_all(&rx, &b, &used), ==, PF_ERR_UNEXPECTED);
	g_assert_cmpint(s.reads, ==, 1);
	g_assert_cmpint(s.writes, ==, 1);
	g_assert_cmpstr(rx.why, ==, "unexpected mem_read from the host");
	pf_rx_free(&rx);
	pf_buf_free(&b);
}

static const struct pf_rx_handlers hello_and_reads = {
	.on = {
		[PCIEFW__MESSAGE__BODY_HELLO] = on_mem_write,   /* counts it */
		[PCIEFW__MESSAGE__BODY_MEM_READ] = on_mem_read,
	},
};

/*
 * Without a handshake (replay), the Hello is a message like any other and
 * the limits are the reader's: the handshake's until it sets the session's.
 */
static void test_reader_limits(void)
{
	struct pf_buf b;
	struct pf_rx rx;
	struct seen s = { 0 };
	uint8_t big[5000] = { 0 };
	size_t used;

	pf_buf_init(&b);
	g_assert_cmpint(pf_rx_init(&rx, &hello_and_reads, &s, PF_DIR_TO_ENDPOINT,
				   NULL, NULL), ==, PF_OK);
	pf_rx_set_max_payload(&rx, 0);
	put_hello(&b, 64);
	pf_put_mem_write(&b, 0, 0, big, sizeof(big));
	g_assert_cmpint(push_all(&rx, &b, &used), ==, PF_ERR_OVERSIZE);
	g_assert_cmpint(s.writes, ==, 1);                /* the Hello */
	pf_rx_free(&rx);

	pf_buf_clear(&b);
	g_assert_cmpint(pf_rx_init(&rx, &hello_and_reads, &s, PF_DIR_TO_ENDPOINT,
				   NULL, NULL), ==, PF_OK);
	pf_rx_set_max_payload(&rx, 64);
	pf_put_mem_read(&b, 1, 2, 0, 64);
	pf_put_mem_read(&b, 2, 2, 0, 65);
	g_assert_cmpint(push_all(&rx, &b, &used), ==, PF_ERR_LIMIT);
	g_assert_cmpint(s.reads, ==, 1);
	pf_rx_free(&rx);
	pf_buf_free(&b);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/rx/any-split", test_any_split);
	g_test_add_func("/rx/errors", test_errors);
	g_test_add_func("/rx/handler-error-and-pause", test_handler_error_and_pause);
	g_test_add_func("/rx/goodbye-any-state", test_goodbye_any_state);
	g_test_add_func("/rx/current-frame", test_current_frame);
	g_test_add_func("/rx/set-handlers", test_set_handlers);
	g_test_add_func("/rx/reader-limits", test_reader_limits);
	return g_test_run();
}
