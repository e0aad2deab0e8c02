/*
 * Binary register records (spec 11.7; protocol/regrec.h): the byte layout
 * of the spec's table, each record read back as the message it stands
 * for (the same as that message's protobuf frame), the malformed and size
 * rules, records among frames split anywhere, and the receiving half's
 * handling of them (direction, the message's own rules, traces).
 */
#include <glib.h>
#include <string.h>
#include <unistd.h>

#include "frame.h"
#include "handshake.h"
#include "msg.h"
#include "regrec.h"
#include "rx.h"
#include "trace.h"

#define K(x) PCIEFW__MESSAGE__BODY_##x

static const uint8_t W4[4] = { 0x78, 0x56, 0x34, 0x12 };

/* The record as the spec's table lays it out, byte by byte. */
static void test_layout(void)
{
	static const uint8_t want[PF_REGREC_SIZE] = {
		K(IO_WRITE), 4, 5, 0x80, 0x2a, 0, 0, 0,
		0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe,
		0x78, 0x56, 0x34, 0x12, 0, 0, 0, 0,
	};
	static const uint8_t cpl[PF_REGREC_SIZE] = {
		K(COMPLETION), 2, PCIEFW__STATUS__STATUS_SUCCESSFUL, 0x80,
		0xef, 0xbe, 0xad, 0xde, 0, 0, 0, 0, 0, 0, 0, 0,
		0x78, 0x56, 0, 0, 0, 0, 0, 0,
	};
	struct pf_buf b;

	pf_buf_init(&b);
	g_assert_cmpint(pf_regrec_put_request(&b, K(IO_WRITE), 42, 5,
					      0xfedcba9876543210ull, W4, 4), ==, PF_OK);
	g_assert_cmpuint(pf_buf_used(&b), ==, PF_REGREC_SIZE);
	g_assert_cmpmem(pf_buf_peek(&b), PF_REGREC_SIZE, want, sizeof(want));
	pf_buf_clear(&b);
	g_assert_cmpint(pf_regrec_put_completion(&b, 0xdeadbeef,
						 PCIEFW__STATUS__STATUS_SUCCESSFUL,
						 W4, 2), ==, PF_OK);
	g_assert_cmpmem(pf_buf_peek(&b), PF_REGREC_SIZE, cpl, sizeof(cpl));
	/* Where a frame's length would be, bit 31: no frame is that long. */
	g_assert_true(pf_regrec_starts(pf_buf_peek(&b)));
	pf_buf_free(&b);
}

/* The body of the protobuf frame @frame (length prefix dropped). */
static GBytes *body_of(const struct pf_buf *frame)
{
	return g_bytes_new(pf_buf_peek(frame) + PF_FRAME_HEADER,
			   pf_buf_used(frame) - PF_FRAME_HEADER);
}

/*
 * Every kind stands for the message the same fields make: read back and
 * re-encoded, it is that message's protobuf body, byte for byte.
 */
static void test_each_kind_is_its_message(void)
{
	static const struct {
		int kind;
		uint32_t size;
		bool write;
	} cases[] = {
		{ K(CONFIG_READ), 2, false }, { K(CONFIG_WRITE), 4, true },
		{ K(MEM_READ), 8, false }, { K(MEM_WRITE), 1, true },
		{ K(IO_READ), 4, false }, { K(IO_WRITE), 2, true },
	};
	static const uint8_t data[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		struct pf_buf rec, frame, body;
		bool config = cases[i].kind <= K(CONFIG_WRITE);
		uint64_t off = config ? 0x44 : 0x123456789ull;
		const void *d = cases[i].write ? data : NULL;
		GBytes *want, *got;

		pf_buf_init(&rec);
		pf_buf_init(&frame);
		pf_buf_init(&body);
		g_assert_cmpint(pf_put_access(&rec, true, cases[i].kind, 77,
					      config ? 0 : 3, off, d,
					      cases[i].size), ==, PF_OK);
		g_assert_cmpuint(pf_buf_used(&rec), ==, PF_REGREC_SIZE);
		g_assert_cmpint(pf_put_access(&frame, false, cases[i].kind, 77,
					      config ? 0 : 3, off, d,
					      cases[i].size), ==, PF_OK);
		g_assert_false(pf_regrec_starts(pf_buf_peek(&frame)));
		g_assert_cmpint(pf_regrec_to_body(pf_buf_peek(&rec), &body), ==,
				PF_OK);
		want = body_of(&frame);
		got = g_bytes_new(pf_buf_peek(&body), pf_buf_used(&body));
		if (!g_bytes_equal(want, got))
			g_error("kind %d: the record is not its message",
				cases[i].kind);
		g_bytes_unref(want);
		g_bytes_unref(got);
		pf_buf_free(&rec);
		pf_buf_free(&frame);
		pf_buf_free(&body);
	}
}

/* Too big for a record: the message goes as a frame, whatever is asked. */
static void test_what_does_not_fit_is_a_frame(void)
{
	uint8_t data[16] = { 0 };
	struct pf_buf b;

	pf_buf_init(&b);
	g_assert_cmpint(pf_put_access(&b, true, K(MEM_WRITE), 0, 0, 0, data, 16),
			==, PF_OK);
	g_assert_false(pf_regrec_starts(pf_buf_peek(&b)));
	pf_buf_clear(&b);
	g_assert_cmpint(pf_put_completion_or_record(&b, true, 1, 0, data, 9), ==,
			PF_OK);
	g_assert_false(pf_regrec_starts(pf_buf_peek(&b)));
	pf_buf_clear(&b);
	g_assert_cmpint(pf_put_completion_or_record(&b, true, 1, 0, NULL, 0), ==,
			PF_OK);
	g_assert_true(pf_regrec_starts(pf_buf_peek(&b)));
	pf_buf_free(&b);
}

static void expect_refused(const uint8_t *rec, int status, const char *text)
{
	struct pf_regrec_msg m;
	char err[200] = "";

	g_assert_cmpint(pf_regrec_decode(rec, &m, err, sizeof(err)), ==, status);
	if (!strstr(err, text))
		g_error("why '%s' lacks '%s'", err, text);
}

/* 11.7's own rules: malformed (ERROR_BAD_FRAME) and size (ERROR_PROTOCOL). */
static void test_malformed_and_size(void)
{
	uint8_t good[PF_REGREC_SIZE], rec[PF_REGREC_SIZE];
	struct pf_regrec_msg m;
	struct pf_buf b;
	char err[200];

	pf_buf_init(&b);
	pf_regrec_put_request(&b, K(MEM_WRITE), 0, 1, 8, W4, 4);
	memcpy(good, pf_buf_peek(&b), sizeof(good));
	pf_buf_free(&b);
	g_assert_cmpint(pf_regrec_decode(good, &m, err, sizeof(err)), ==, PF_OK);
	g_assert_cmpint(m.m.body_case, ==, K(MEM_WRITE));
	g_assert_cmpuint(m.m.mem_write->offset, ==, 8);
	g_assert_cmpmem(m.m.mem_write->data.data, m.m.mem_write->data.len, W4, 4);

	memcpy(rec, good, sizeof(rec));
	rec[3] = 0x81;
	expect_refused(rec, PF_ERR_DECODE, "marker byte 0x81");
	memcpy(rec, good, sizeof(rec));
	rec[0] = 9;             /* DmaRead: not a record's kind */
	expect_refused(rec, PF_ERR_DECODE, "unknown kind 9");
	memcpy(rec, good, sizeof(rec));
	rec[20] = 1;            /* data past size 4 */
	expect_refused(rec, PF_ERR_DECODE, "past its size");
	memcpy(rec, good, sizeof(rec));
	rec[4] = 1;             /* a MemWrite has no tag */
	expect_refused(rec, PF_ERR_DECODE, "with a tag");
	memcpy(rec, good, sizeof(rec));
	rec[1] = 9;
	expect_refused(rec, PF_ERR_INVALID, "of 9 bytes");
	memcpy(rec, good, sizeof(rec));
	rec[0] = K(MEM_READ);
	rec[1] = 0;
	memset(rec + 16, 0, 8);
	expect_refused(rec, PF_ERR_INVALID, "of 0 bytes");
	/* A completion of 0 bytes is a write's: fine. */
	pf_buf_init(&b);
	pf_regrec_put_completion(&b, 3, PCIEFW__STATUS__STATUS_UNSUPPORTED_REQUEST,
				 NULL, 0);
	g_assert_cmpint(pf_regrec_decode(pf_buf_peek(&b), &m, err, sizeof(err)),
			==, PF_OK);
	g_assert_cmpint(m.m.completion->status, ==,
			PCIEFW__STATUS__STATUS_UNSUPPORTED_REQUEST);
	/* With an offset it is not a completion record. */
	memcpy(rec, pf_buf_peek(&b), sizeof(rec));
	rec[9] = 1;
	expect_refused(rec, PF_ERR_DECODE, "with an offset");
	pf_buf_free(&b);
	/*
	 * A config offset is 32 bits in its message: one above them is
	 * refused, not cut to its low half (fuzz-regrec found 0x80000000004
	 * read as 4).
	 */
	pf_buf_init(&b);
	pf_regrec_put_request(&b, K(CONFIG_WRITE), 2, 0, 4, W4, 2);
	memcpy(rec, pf_buf_peek(&b), sizeof(rec));
	pf_buf_free(&b);
	g_assert_cmpint(pf_regrec_decode(rec, &m, err, sizeof(err)), ==, PF_OK);
	rec[13] = 8;
	expect_refused(rec, PF_ERR_DECODE, "config offset above 32 bits");
}

/* ---- Among frames, in the receiving half ---- */

struct seen {
	int reads, writes, completions;
	uint32_t last_tag;
	uint64_t last_value;
	bool last_was_record;
	struct pf_rx *rx;
};

static int on_mem_read(void *opaque, const PfMessage *m, char *err,
		       size_t errlen)
{
	struct seen *s = opaque;

	s->reads++;
	s->last_tag = m->mem_read->tag;
	s->last_was_record = s->rx->record != NULL;
	return PF_OK;
}

static int on_mem_write(void *opaque, const PfMessage *m, char *err,
			size_t errlen)
{
	struct seen *s = opaque;

	s->writes++;
	s->last_value = pf_le_load(m->mem_write->data.data,
				   m->mem_write->data.len);
	return PF_OK;
}

static int on_completion(void *opaque, const PfMessage *m, char *err,
			 size_t errlen)
{
	((struct seen *)opaque)->completions++;
	return PF_OK;
}

static const struct pf_rx_handlers endpoint_side = {
	.on = {
		[K(MEM_READ)] = on_mem_read,
		[K(MEM_WRITE)] = on_mem_write,
		[K(COMPLETION)] = on_completion,
	},
};

/* An endpoint's receiving half, past the handshake, taking records. */
static void start(struct pf_rx *rx, struct seen *s,
		  struct pf_trace_writer *trace)
{
	memset(s, 0, sizeof(*s));
	s->rx = rx;
	g_assert_cmpint(pf_rx_init(rx, &endpoint_side, s, PF_DIR_TO_ENDPOINT,
				   NULL, trace), ==, PF_OK);
	pf_rx_set_max_payload(rx, 4096);
	pf_rx_take_records(rx);
}

/* Records and frames interleaved, in pieces of every size: all handled. */
static void test_records_among_frames_split_anywhere(void)
{
	struct pf_buf b;

	pf_buf_init(&b);
	for (uint32_t t = 1; t <= 4; t++) {
		pf_put_access(&b, true, K(MEM_WRITE), 0, 0, 4, W4, t);
		pf_put_access(&b, false, K(MEM_READ), t, 0, 4, NULL, 4);
		pf_put_access(&b, true, K(MEM_READ), 100 + t, 0, 4, NULL, 4);
	}
	for (size_t piece = 1; piece <= pf_buf_used(&b); piece++) {
		struct pf_rx rx;
		struct seen s;

		start(&rx, &s, NULL);
		for (size_t off = 0; off < pf_buf_used(&b); off += piece) {
			size_t n = MIN(piece, pf_buf_used(&b) - off), used;

			g_assert_cmpint(pf_rx_push(&rx, pf_buf_peek(&b) + off, n,
						   &used), ==, PF_OK);
			g_assert_cmpuint(used, ==, n);
		}
		g_assert_cmpint(s.reads, ==, 8);
		g_assert_cmpint(s.writes, ==, 4);
		g_assert_cmpuint(s.last_value, ==, 0x12345678);
		g_assert_cmpuint(s.last_tag, ==, 104);
		g_assert_true(s.last_was_record);
		g_assert_cmpuint(rx.records, ==, 8);
		g_assert_cmpint(pf_rx_finish(&rx), ==, PF_EOF);
		pf_rx_free(&rx);
	}
	pf_buf_free(&b);
}

static void expect_error(const uint8_t *p, size_t len, bool records,
			 Pciefw__ErrorCode code, const char *text)
{
	struct pf_rx rx;
	struct seen s;
	size_t used;

	start(&rx, &s, NULL);
	if (!records)
		pf_frame_decoder_records(&rx.dec, false);
	g_assert_cmpint(pf_rx_push(&rx, p, len, &used), <, 0);
	g_assert_cmpint(rx.code, ==, code);
	if (!strstr(rx.why, text))
		g_error("why '%s' lacks '%s'", rx.why, text);
	g_assert_cmpint(s.reads + s.writes + s.completions, ==, 0);
	pf_rx_free(&rx);
}

static void test_errors(void)
{
	struct pf_buf b;

	pf_buf_init(&b);
	/* A completion record to the endpoint: the wrong direction. */
	pf_regrec_put_completion(&b, 1, 0, W4, 4);
	expect_error(pf_buf_peek(&b), pf_buf_used(&b), true,
		     PCIEFW__ERROR_CODE__ERROR_UNEXPECTED, "from the host");
	/* The message's own rules: BAR 6 (bar-index-6). */
	pf_buf_clear(&b);
	pf_regrec_put_request(&b, K(MEM_READ), 1, 6, 0, NULL, 4);
	expect_error(pf_buf_peek(&b), pf_buf_used(&b), true,
		     PCIEFW__ERROR_CODE__ERROR_PROTOCOL, "BAR");
	/* Without records taken, the same bytes are an oversized frame. */
	pf_buf_clear(&b);
	pf_regrec_put_request(&b, K(MEM_READ), 1, 0, 0, NULL, 4);
	expect_error(pf_buf_peek(&b), pf_buf_used(&b), false,
		     PCIEFW__ERROR_CODE__ERROR_LIMIT, "bad frame");
	pf_buf_free(&b);
}

/*
 * Traces (spec 6): a record is recorded as its message with flag bit 0,
 * which a reader reports; a malformed one as a malformed record.
 */
static void test_traced_as_the_message(void)
{
	char path[] = "/tmp/pfw-regrec-XXXXXX";
	struct pf_trace_writer *w;
	struct pf_trace_reader *r;
	struct pf_trace_record rec;
	struct pf_buf b, frame;
	struct pf_rx rx;
	struct seen s;
	char err[256];
	size_t used;
	int fd = mkstemp(path);

	g_assert_cmpint(fd, >=, 0);
	close(fd);
	w = pf_trace_create(path, "test", err, sizeof(err));
	g_assert_nonnull(w);
	pf_buf_init(&b);
	pf_buf_init(&frame);
	pf_put_access(&b, true, K(MEM_READ), 9, 2, 0x40, NULL, 4);
	pf_put_access(&b, true, K(MEM_READ), 9, 2, 0x40, NULL, 4);
	b.data[b.head + PF_REGREC_SIZE + 3] = 0xc0;     /* the second: malformed */
	start(&rx, &s, w);
	g_assert_cmpint(pf_rx_push(&rx, pf_buf_peek(&b), pf_buf_used(&b), &used),
			<, 0);
	pf_rx_free(&rx);
	g_assert_cmpint(pf_trace_close(w), ==, PF_OK);

	pf_put_mem_read(&frame, 9, 2, 0x40, 4);
	r = pf_trace_open(path, err, sizeof(err));
	g_assert_nonnull(r);
	pf_trace_want_all(r);
	g_assert_cmpint(pf_trace_next(r, &rec, err, sizeof(err)), ==, PF_OK);
	g_assert_cmpint(rec.type, ==, PF_REC_MESSAGE);
	g_assert_true(rec.regrec);
	g_assert_cmpmem(rec.body, rec.body_len, pf_buf_peek(&frame) + PF_FRAME_HEADER,
			pf_buf_used(&frame) - PF_FRAME_HEADER);
	g_assert_cmpint(pf_trace_next(r, &rec, err, sizeof(err)), ==, PF_OK);
	g_assert_cmpint(rec.type, ==, PF_REC_MALFORMED);
	g_assert_cmpmem(rec.body, rec.body_len, pf_buf_peek(&b) + PF_REGREC_SIZE,
			PF_REGREC_SIZE);
	g_assert_cmpint(pf_trace_next(r, &rec, err, sizeof(err)), ==, PF_EOF);
	pf_trace_close_reader(r);
	unlink(path);
	pf_buf_free(&b);
	pf_buf_free(&frame);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/regrec/layout", test_layout);
	g_test_add_func("/regrec/each-kind-is-its-message",
			test_each_kind_is_its_message);
	g_test_add_func("/regrec/what-does-not-fit-is-a-frame",
			test_what_does_not_fit_is_a_frame);
	g_test_add_func("/regrec/malformed-and-size", test_malformed_and_size);
	g_test_add_func("/regrec/records-among-frames-split-anywhere",
			test_records_among_frames_split_anywhere);
	g_test_add_func("/regrec/errors", test_errors);
	g_test_add_func("/regrec/traced-as-the-message", test_traced_as_the_message);
	return g_test_run();
}
