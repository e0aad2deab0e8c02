/*
 * Frame decoder tests (spec 1.2): any split of a real stream yields the same
 * frames; truncated, oversized and zero-length input each give their error.
 */
#include <glib.h>
#include <string.h>

#include "frame.h"
#include "handshake.h"
#include "msg.h"
#include "msgs.h"
#include "pciefw.h"

struct collected {
	GPtrArray *frames;    /* GBytes of each body */
};

/* Feed @len bytes in pieces given by @piece(i); collect frames. */
static int feed_all(struct pf_frame_decoder *d, const uint8_t *p, size_t len,
		    size_t (*piece)(size_t i, void *arg), void *arg,
		    GPtrArray *frames)
{
	size_t i = 0;

	while (len) {
		size_t n = piece(i++, arg);

		if (n > len)
			n = len;
		const uint8_t *q = p;
		size_t left = n;

		while (left) {
			const uint8_t *body;
			size_t used, blen;
			int r = pf_frame_decoder_push(d, q, left, &used, &body, &blen);

			g_assert_cmpuint(used, <=, left);
			q += used;
			left -= used;
			if (r == PF_AGAIN) {
				g_assert_cmpuint(left, ==, 0);
				break;
			}
			if (r < 0)
				return r;
			g_ptr_array_add(frames, g_bytes_new(body, blen));
		}
		p += n;
		len -= n;
	}
	return pf_frame_decoder_finish(d);
}

static size_t one_byte(size_t i, void *arg)
{
	return 1;
}

static size_t split_at(size_t i, void *arg)
{
	size_t at = *(size_t *)arg;

	return i == 0 ? at : SIZE_MAX;
}

static size_t random_piece(size_t i, void *arg)
{
	return (size_t)g_rand_int_range(arg, 1, 3000);
}

static void check_frames(const struct pf_buf *stream, GPtrArray *frames, int n)
{
	size_t off = 0;

	g_assert_cmpint(frames->len, ==, n);
	for (guint i = 0; i < frames->len; i++) {
		gsize blen;
		const uint8_t *body = g_bytes_get_data(frames->pdata[i], &blen);
		uint32_t len = pf_frame_get_header(stream->data + off);

		g_assert_cmpmem(body, blen, stream->data + off + 4, len);
		off += 4 + len;
	}
	g_assert_cmpuint(off, ==, stream->len);
}

static void test_one_byte_at_a_time(void)
{
	struct pf_buf s;
	struct pf_frame_decoder d;
	GPtrArray *frames = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	int n;

	pf_buf_init(&s);
	n = sample_stream(&s);
	pf_frame_decoder_init(&d, PCIEFW_MAX_FRAME(PCIEFW_DEFAULT_PAYLOAD));
	g_assert_cmpint(feed_all(&d, s.data, s.len, one_byte, NULL, frames), ==, PF_EOF);
	check_frames(&s, frames, n);
	pf_frame_decoder_free(&d);
	g_ptr_array_unref(frames);
	pf_buf_free(&s);
}

/* A stream of small messages, short enough to try every split point. */
static int small_stream(struct pf_buf *s)
{
	uint8_t d[8] = { 9, 8, 7, 6, 5, 4, 3, 2 };
	struct pf_hello_params hp;

	pf_hello_defaults(&hp, "split");
	pf_put_hello(s, &hp);
	pf_put_mem_read(s, 1, 2, 0x10, 4);
	pf_put_mem_write(s, 0, 0x8, d, 8);
	pf_put_completion(s, 1, PCIEFW__STATUS__STATUS_SUCCESSFUL, d, 4);
	pf_put_dma_read(s, 77, 0x1000, 64);
	pf_put_msix(s, 3);
	pf_put_error(s, PCIEFW__ERROR_CODE__ERROR_PROTOCOL, "x");
	return 7;
}

static void test_every_split(void)
{
	struct pf_buf s;
	int n;

	pf_buf_init(&s);
	n = small_stream(&s);
	for (size_t at = 0; at <= s.len; at++) {
		struct pf_frame_decoder d;
		GPtrArray *frames =
			g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);

		pf_frame_decoder_init(&d, 1024);
		g_assert_cmpint(feed_all(&d, s.data, s.len, split_at, &at, frames),
				==, PF_EOF);
		check_frames(&s, frames, n);
		pf_frame_decoder_free(&d);
		g_ptr_array_unref(frames);
	}
	pf_buf_free(&s);
}

static void test_random_splits(void)
{
	struct pf_buf s;
	GRand *rnd = g_rand_new_with_seed(42);
	int n;

	pf_buf_init(&s);
	n = sample_stream(&s);
	for (int round = 0; round < 50; round++) {
		struct pf_frame_decoder d;
		GPtrArray *frames =
			g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);

		pf_frame_decoder_init(&d, PCIEFW_MAX_FRAME(PCIEFW_DEFAULT_PAYLOAD));
		g_assert_cmpint(feed_all(&d, s.data, s.len, random_piece, rnd, frames),
				==, PF_EOF);
		check_frames(&s, frames, n);
		pf_frame_decoder_free(&d);
		g_ptr_array_unref(frames);
	}
	g_rand_free(rnd);
	pf_buf_free(&s);
}

static int feed_bytes(const uint8_t *p, size_t len, size_t max)
{
	struct pf_frame_decoder d;
	GPtrArray *frames = g_ptr_array_new_with_free_func((GDestroyNotify)g_bytes_unref);
	int r;

	pf_frame_decoder_init(&d, max);
	r = feed_all(&d, p, len, one_byte, NULL, frames);
	pf_frame_decoder_free(&d);
	g_ptr_array_unref(frames);
	return r;
}

static void test_errors(void)
{
	struct pf_buf s;
	static const uint8_t zero[] = { 0, 0, 0, 0, 1, 2 };
	static const uint8_t huge[] = { 0xff, 0xff, 0xff, 0x7f };
	static const uint8_t http[] = "GET / HTTP/1.1\r\n";

	pf_buf_init(&s);
	small_stream(&s);
	/* Every proper prefix that ends inside a frame is truncated. */
	g_assert_cmpint(feed_bytes(s.data, s.len - 1, 1024), ==, PF_ERR_TRUNCATED);
	g_assert_cmpint(feed_bytes(s.data, 3, 1024), ==, PF_ERR_TRUNCATED);
	g_assert_cmpint(feed_bytes(s.data, 0, 1024), ==, PF_EOF);
	g_assert_cmpint(feed_bytes(zero, sizeof(zero), 1024), ==, PF_ERR_ZERO_LENGTH);
	g_assert_cmpint(feed_bytes(huge, sizeof(huge), 1024), ==, PF_ERR_OVERSIZE);
	/* A peer that is not pciefw at all: its text reads as a huge length. */
	g_assert_cmpint(feed_bytes(http, sizeof(http) - 1, PCIEFW_HANDSHAKE_FRAME),
			==, PF_ERR_OVERSIZE);
	/* Limit is inclusive. */
	uint32_t first = pf_frame_get_header(s.data);
	g_assert_cmpint(feed_bytes(s.data, 4 + first, first), ==, PF_EOF);
	g_assert_cmpint(feed_bytes(s.data, 4 + first, first - 1), ==, PF_ERR_OVERSIZE);
	pf_buf_free(&s);
}

static void test_error_is_sticky(void)
{
	struct pf_frame_decoder d;
	static const uint8_t zero[] = { 0, 0, 0, 0 };
	const uint8_t *body;
	size_t used, blen;
	uint8_t good[16];

	pf_frame_decoder_init(&d, 100);
	g_assert_cmpint(pf_frame_decoder_push(&d, zero, 4, &used, &body, &blen),
			==, PF_ERR_ZERO_LENGTH);
	pf_frame_put_header(good, 1);
	good[4] = 0;
	g_assert_cmpint(pf_frame_decoder_push(&d, good, 5, &used, &body, &blen),
			==, PF_ERR_ZERO_LENGTH);
	g_assert_cmpuint(used, ==, 0);
	g_assert_cmpint(pf_frame_decoder_finish(&d), ==, PF_ERR_ZERO_LENGTH);
	pf_frame_decoder_free(&d);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/frame/one-byte-at-a-time", test_one_byte_at_a_time);
	g_test_add_func("/frame/every-split", test_every_split);
	g_test_add_func("/frame/random-splits", test_random_splits);
	g_test_add_func("/frame/errors", test_errors);
	g_test_add_func("/frame/error-is-sticky", test_error_is_sticky);
	return g_test_run();
}
