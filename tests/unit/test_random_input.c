/*
 * 10 MB of random bytes through the receive path: errors, never a crash or
 * a leak (the suite also runs this under ASan/UBSan).  Also feeds mutated
 * copies of valid streams, which reach the message decoder far more often.
 */
#include <glib.h>
#include <string.h>

#include "decode_input.h"
#include "msgs.h"

#define RANDOM_BYTES (10u * 1024 * 1024)

static void test_random_bytes(void)
{
	GRand *rnd = g_rand_new_with_seed(20121122);
	uint8_t *buf = g_malloc(RANDOM_BYTES);
	struct decode_counts n = { 0 };

	for (size_t i = 0; i < RANDOM_BYTES; i += 4) {
		guint32 v = g_rand_int(rnd);

		memcpy(buf + i, &v, 4);
	}
	/* Small, plausible lengths now and then, so frames do get decoded. */
	for (size_t i = 0; i + 4 < RANDOM_BYTES; i += 4096) {
		buf[i] = (uint8_t)g_rand_int_range(rnd, 1, 200);
		buf[i + 1] = buf[i + 2] = buf[i + 3] = 0;
	}
	decode_input(buf, RANDOM_BYTES, &n);
	g_test_message("valid %llu invalid %llu undecodable %llu framing %llu",
		       (unsigned long long)n.valid, (unsigned long long)n.invalid,
		       (unsigned long long)n.decode_errors,
		       (unsigned long long)n.framing_errors);
	g_assert_cmpuint(n.framing_errors + n.decode_errors, >, 0);
	g_free(buf);
	g_rand_free(rnd);
}

static void test_mutated_streams(void)
{
	GRand *rnd = g_rand_new_with_seed(4);
	struct pf_buf s;
	struct decode_counts n = { 0 };

	pf_buf_init(&s);
	sample_stream(&s);
	for (int round = 0; round < 300; round++) {
		uint8_t *copy = g_memdup2(s.data, s.len);
		int flips = g_rand_int_range(rnd, 1, 8);

		for (int i = 0; i < flips; i++)
			copy[g_rand_int_range(rnd, 0, (gint32)s.len)] = (uint8_t)g_rand_int(rnd);
		decode_input(copy, s.len, &n);
		g_free(copy);
	}
	g_assert_cmpuint(n.valid, >, 0);
	g_assert_cmpuint(n.invalid + n.decode_errors + n.framing_errors, >, 0);
	pf_buf_free(&s);
	g_rand_free(rnd);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/random-input/10MB-random-bytes", test_random_bytes);
	g_test_add_func("/random-input/mutated-streams", test_mutated_streams);
	return g_test_run();
}
