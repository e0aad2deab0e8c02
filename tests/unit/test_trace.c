/*
 * Trace file tests (spec 6): write/read round trip, and truncated, corrupt,
 * empty and wrong-format files each give a clear error, never a crash.
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

#include "frame.h"
#include "msg.h"
#include "msgs.h"
#include "trace.h"

static char *tmpdir;

static char *path_of(const char *name)
{
	return g_build_filename(tmpdir, name, NULL);
}

/* Write the sample stream as a trace; returns the number of records. */
static int write_sample(const char *path, struct pf_buf *s)
{
	char err[256];
	struct pf_trace_writer *w = pf_trace_create(path, "unit-test", err, sizeof(err));
	int n = sample_stream(s);
	size_t off = 0;

	g_assert_nonnull(w);
	for (int i = 0; i < n; i++) {
		uint32_t len = pf_frame_get_header(s->data + off);

		g_assert_cmpint(pf_trace_write(w, 1700000000123456789ull + (uint64_t)i,
					       (enum pf_dir)(i & 1),
					       s->data + off + 4, len), ==, 0);
		off += 4 + len;
	}
	g_assert_cmpint(pf_trace_close(w), ==, 0);
	return n;
}

/* Read all records; returns the final status and the count. */
static int read_all(const char *path, int *count, char *err, size_t errlen)
{
	struct pf_trace_reader *r = pf_trace_open(path, err, errlen);
	struct pf_trace_record rec;
	int ret;

	*count = 0;
	if (!r)
		return PF_ERR_FORMAT;
	while ((ret = pf_trace_next(r, &rec, err, errlen)) == PF_OK)
		(*count)++;
	pf_trace_close_reader(r);
	return ret;
}

static void test_roundtrip(void)
{
	char *p = path_of("rt.pcapng"), err[256];
	struct pf_buf s;
	struct pf_trace_reader *r;
	struct pf_trace_record rec;
	size_t off = 0;
	int n, i = 0;

	pf_buf_init(&s);
	n = write_sample(p, &s);
	r = pf_trace_open(p, err, sizeof(err));
	g_assert_nonnull(r);
	while (pf_trace_next(r, &rec, err, sizeof(err)) == PF_OK) {
		uint32_t len = pf_frame_get_header(s.data + off);

		g_assert_cmpuint(rec.index, ==, (uint64_t)i + 1);   /* from 1 */
		g_assert_cmpuint(rec.ts_ns, ==, 1700000000123456789ull + (uint64_t)i);
		g_assert_cmpint(rec.dir, ==, i & 1);
		g_assert_cmpmem(rec.body, rec.body_len, s.data + off + 4, len);
		off += 4 + len;
		i++;
	}
	g_assert_cmpint(i, ==, n);
	pf_trace_close_reader(r);
	pf_buf_free(&s);
	g_free(p);
}

/* Cut the file at many points: every earlier record still reads. */
static void test_truncated(void)
{
	char *p = path_of("full.pcapng"), *q = path_of("cut.pcapng"), err[256];
	struct pf_buf s;
	gchar *data;
	gsize len;
	int n, count, prev = 0;

	pf_buf_init(&s);
	n = write_sample(p, &s);
	g_assert_true(g_file_get_contents(p, &data, &len, NULL));
	for (gsize cut = 1; cut < len; cut += (cut < 600 ? 1 : 997)) {
		int r;

		g_assert_true(g_file_set_contents(q, data, (gssize)cut, NULL));
		r = read_all(q, &count, err, sizeof(err));
		if (cut < 4) {
			g_assert_cmpint(r, ==, PF_ERR_FORMAT);
			continue;
		}
		g_assert_true(r == PF_ERR_TRUNCATED || r == PF_EOF);
		g_assert_cmpint(count, >=, prev);
		g_assert_cmpint(count, <, n);
		prev = count;
	}
	g_assert_cmpint(read_all(p, &count, err, sizeof(err)), ==, PF_EOF);
	g_assert_cmpint(count, ==, n);
	g_free(data);
	pf_buf_free(&s);
	g_free(p);
	g_free(q);
}

static void test_corrupt(void)
{
	char *p = path_of("c.pcapng"), err[256];
	struct pf_buf s;
	gchar *data;
	gsize len;
	int count;

	pf_buf_init(&s);
	write_sample(p, &s);
	g_assert_true(g_file_get_contents(p, &data, &len, NULL));

	/* Last block's trailer no longer matches its header. */
	data[len - 1] ^= 0x40;
	g_assert_true(g_file_set_contents(p, data, (gssize)len, NULL));
	g_assert_cmpint(read_all(p, &count, err, sizeof(err)), ==, PF_ERR_CORRUPT);
	g_assert_nonnull(strstr(err, "trailer"));
	data[len - 1] ^= 0x40;

	/* A block length that is impossible. */
	memset(data + 4, 0xff, 4);
	g_assert_true(g_file_set_contents(p, data, (gssize)len, NULL));
	g_assert_cmpint(read_all(p, &count, err, sizeof(err)), ==, PF_ERR_CORRUPT);

	/* Big-endian byte-order magic. */
	pf_buf_clear(&s);
	write_sample(p, &s);
	g_free(data);
	g_assert_true(g_file_get_contents(p, &data, &len, NULL));
	data[8] = 0x1a; data[9] = 0x2b; data[10] = 0x3c; data[11] = 0x4d;
	g_assert_true(g_file_set_contents(p, data, (gssize)len, NULL));
	g_assert_cmpint(read_all(p, &count, err, sizeof(err)), ==, PF_ERR_FORMAT);
	g_assert_nonnull(strstr(err, "big-endian"));

	g_free(data);
	pf_buf_free(&s);
	g_free(p);
}

static void test_wrong_files(void)
{
	char *p = path_of("w"), err[256];
	int count;
	/* A classic libpcap header, not pcapng. */
	static const uint8_t pcap[24] = { 0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0 };

	g_assert_true(g_file_set_contents(p, "", 0, NULL));
	g_assert_null(pf_trace_open(p, err, sizeof(err)));
	g_assert_nonnull(strstr(err, "empty"));

	g_assert_true(g_file_set_contents(p, "hello, world\n", -1, NULL));
	g_assert_null(pf_trace_open(p, err, sizeof(err)));
	g_assert_nonnull(strstr(err, "not a pcapng"));

	g_assert_true(g_file_set_contents(p, (const char *)pcap, sizeof(pcap), NULL));
	g_assert_null(pf_trace_open(p, err, sizeof(err)));

	g_assert_null(pf_trace_open("/nonexistent/x.pcapng", err, sizeof(err)));
	g_assert_nonnull(strstr(err, "No such file"));

	/* A pcapng of Ethernet frames: right container, wrong content. */
	struct pf_buf s;
	gchar *data;
	gsize len;

	pf_buf_init(&s);
	write_sample(p, &s);
	g_assert_true(g_file_get_contents(p, &data, &len, NULL));
	/* The IDB follows the SHB; its link type is its first field. */
	uint32_t shb_len;
	memcpy(&shb_len, data + 4, 4);
	data[shb_len + 8] = 1;   /* LINKTYPE_ETHERNET */
	g_assert_true(g_file_set_contents(p, data, (gssize)len, NULL));
	g_assert_cmpint(read_all(p, &count, err, sizeof(err)), ==, PF_ERR_FORMAT);
	g_assert_nonnull(strstr(err, "link type"));
	g_free(data);
	pf_buf_free(&s);
	g_free(p);
}

static void test_random_garbage_files(void)
{
	char *p = path_of("g"), err[256];
	GRand *rnd = g_rand_new_with_seed(7);
	uint8_t buf[4096];
	int count;

	for (int round = 0; round < 200; round++) {
		gsize len = (gsize)g_rand_int_range(rnd, 1, sizeof(buf));

		for (gsize i = 0; i < len; i++)
			buf[i] = (uint8_t)g_rand_int(rnd);
		/* Half the files start like pcapng so the block parser is reached. */
		if (round & 1 && len >= 12) {
			memcpy(buf, "\x0a\x0d\x0d\x0a", 4);
			memcpy(buf + 8, "\x4d\x3c\x2b\x1a", 4);
		}
		g_assert_true(g_file_set_contents(p, (char *)buf, (gssize)len, NULL));
		int r = read_all(p, &count, err, sizeof(err));
		g_assert_cmpint(r, <, 0);
	}
	g_rand_free(rnd);
	g_free(p);
}

/* Session and malformed records: kept apart from messages (spec 6). */
static void test_session_and_malformed(void)
{
	char *p = path_of("kinds.pcapng"), err[256];
	static const uint8_t junk[] = { 0, 0, 0, 0x40, 0xde, 0xad };
	struct pf_trace_writer *w = pf_trace_create(p, "unit-test", err, sizeof(err));
	struct pf_trace_reader *r;
	struct pf_trace_record rec;
	struct pf_buf b;

	g_assert_nonnull(w);
	pf_buf_init(&b);
	pf_put_msix(&b, 3);
	g_assert_cmpint(pf_trace_write_session(w, 10, "session 1: test"), ==, 0);
	g_assert_cmpint(pf_trace_write(w, 11, PF_DIR_TO_HOST, b.data + 4, b.len - 4), ==, 0);
	g_assert_cmpint(pf_trace_write_malformed(w, 12, PF_DIR_TO_ENDPOINT, junk,
						 sizeof(junk)), ==, 0);
	g_assert_cmpint(pf_trace_write_session(w, 13, "session 2: again"), ==, 0);
	g_assert_cmpint(pf_trace_close(w), ==, 0);

	/* By default a reader returns the messages only. */
	r = pf_trace_open(p, err, sizeof(err));
	g_assert_cmpint(pf_trace_next(r, &rec, err, sizeof(err)), ==, PF_OK);
	g_assert_cmpint(rec.type, ==, PF_REC_MESSAGE);
	g_assert_cmpuint(rec.index, ==, 2);
	g_assert_cmpmem(rec.body, rec.body_len, b.data + 4, b.len - 4);
	g_assert_cmpint(pf_trace_next(r, &rec, err, sizeof(err)), ==, PF_EOF);
	pf_trace_close_reader(r);

	r = pf_trace_open(p, err, sizeof(err));
	pf_trace_want_all(r);
	g_assert_cmpint(pf_trace_next(r, &rec, err, sizeof(err)), ==, PF_OK);
	g_assert_cmpint(rec.type, ==, PF_REC_SESSION);
	g_assert_cmpmem(rec.body, rec.body_len, "session 1: test", 15);
	g_assert_cmpint(pf_trace_next(r, &rec, err, sizeof(err)), ==, PF_OK);
	g_assert_cmpint(rec.type, ==, PF_REC_MESSAGE);
	g_assert_cmpint(pf_trace_next(r, &rec, err, sizeof(err)), ==, PF_OK);
	g_assert_cmpint(rec.type, ==, PF_REC_MALFORMED);
	g_assert_cmpint(rec.dir, ==, PF_DIR_TO_ENDPOINT);
	g_assert_cmpuint(rec.ts_ns, ==, 12);
	g_assert_cmpmem(rec.body, rec.body_len, junk, sizeof(junk));
	g_assert_cmpint(pf_trace_next(r, &rec, err, sizeof(err)), ==, PF_OK);
	g_assert_cmpint(rec.type, ==, PF_REC_SESSION);
	g_assert_cmpuint(rec.index, ==, 4);
	g_assert_cmpint(pf_trace_next(r, &rec, err, sizeof(err)), ==, PF_EOF);
	pf_trace_close_reader(r);
	pf_buf_free(&b);
	g_free(p);
}

static goffset file_size(const char *p)
{
	GStatBuf st;

	g_assert_cmpint(g_stat(p, &st), ==, 0);
	return st.st_size;
}

/* Rotated pieces never exceed the limit, whatever the record sizes. */
static void test_rotation_limit(void)
{
	char *p = path_of("rot.pcapng"), err[256];
	struct pf_trace_writer *w = pf_trace_create(p, "unit-test", err, sizeof(err));
	uint8_t data[3000];
	GRand *rnd = g_rand_new_with_seed(7);
	struct pf_buf b;
	int pieces = 0;

	g_assert_nonnull(w);
	memset(data, 0x5a, sizeof(data));
	pf_buf_init(&b);
	pf_trace_set_limit(w, 4096, 1000);
	for (int i = 0; i < 400; i++) {
		pf_buf_clear(&b);
		pf_put_dma_write(&b, 0x1000, data, (uint32_t)g_rand_int_range(rnd, 1, 1500));
		g_assert_cmpint(pf_trace_write(w, (uint64_t)i, PF_DIR_TO_HOST,
					       b.data + 4, b.len - 4), ==, 0);
	}
	/* A record larger than the limit gets a piece of its own. */
	pf_buf_clear(&b);
	pf_put_dma_write(&b, 0x1000, data, sizeof(data));
	for (int i = 0; i < 2; i++)
		g_assert_cmpint(pf_trace_write(w, 999, PF_DIR_TO_HOST, b.data + 4,
					       b.len - 4), ==, 0);
	g_assert_cmpint(pf_trace_close(w), ==, 0);
	for (unsigned i = 0;; i++) {
		char *q = i ? g_strdup_printf("%s.%u", p, i) : g_strdup(p);
		int count;

		if (!g_file_test(q, G_FILE_TEST_EXISTS)) {
			g_free(q);
			break;
		}
		g_assert_cmpint(read_all(q, &count, err, sizeof(err)), ==, PF_EOF);
		g_assert_cmpint(count, >=, 1);
		if (count > 1 && file_size(q) > 4096)
			g_error("%s: %d records in %lld bytes, limit 4096", q, count,
				(long long)file_size(q));
		pieces++;
		g_free(q);
	}
	g_assert_cmpint(pieces, >, 50);
	g_rand_free(rnd);
	pf_buf_free(&b);
	g_free(p);
}

int main(int argc, char **argv)
{
	int r;

	g_test_init(&argc, &argv, NULL);
	tmpdir = g_dir_make_tmp("pciefw-trace-XXXXXX", NULL);
	g_test_add_func("/trace/roundtrip", test_roundtrip);
	g_test_add_func("/trace/truncated", test_truncated);
	g_test_add_func("/trace/corrupt", test_corrupt);
	g_test_add_func("/trace/wrong-files", test_wrong_files);
	g_test_add_func("/trace/random-garbage-files", test_random_garbage_files);
	g_test_add_func("/trace/session-and-malformed", test_session_and_malformed);
	g_test_add_func("/trace/rotation-limit", test_rotation_limit);
	r = g_test_run();
	GDir *d = g_dir_open(tmpdir, 0, NULL);
	const char *name;
	while (d && (name = g_dir_read_name(d))) {
		char *p = path_of(name);
		g_unlink(p);
		g_free(p);
	}
	if (d)
		g_dir_close(d);
	g_rmdir(tmpdir);
	g_free(tmpdir);
	return r;
}
