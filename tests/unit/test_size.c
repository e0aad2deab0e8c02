/* pf_parse_size (protocol/size.h): every size option's one parser. */
#include <glib.h>

#include "size.h"

static void test_accepts(void)
{
	static const struct { const char *s; uint64_t v; } ok[] = {
		{ "0", 0 }, { "4096", 4096 }, { "0x1000", 4096 }, { "64k", 65536 },
		{ "16M", 16u << 20 }, { "1G", 1ull << 30 }, { "5K", 5120 },
		{ "2g", 2ull << 30 }, { "010", 10 },
		{ "17179869183G", 17179869183ull << 30 },          /* 2^64 - 2^30 */
		{ "18446744073709551615", UINT64_MAX },
	};

	for (size_t i = 0; i < G_N_ELEMENTS(ok); i++) {
		uint64_t v = 1;

		g_assert_cmpint(pf_parse_size(ok[i].s, &v), ==, 0);
		g_assert_cmpuint(v, ==, ok[i].v);
	}
}

/* Overflow, before or after the suffix, is an error, never a wrap. */
static void test_rejects(void)
{
	static const char *const bad[] = {
		"", "-1", "+5", " 5", "k", "5x", "5kk", "5 k", "5T", "0x",
		"17179869184G", "17179869185G", "18014398509481984M",
		"18446744073709551616", "0x10000000000000000", "1e9",
	};

	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		uint64_t v = 7;

		if (pf_parse_size(bad[i], &v) != -1)
			g_error("'%s' accepted as %llu", bad[i], (unsigned long long)v);
		g_assert_cmpuint(v, ==, 7);
	}
	g_assert_cmpint(pf_parse_size(NULL, NULL), ==, -1);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/size/accepts", test_accepts);
	g_test_add_func("/size/rejects", test_rejects);
	return g_test_run();
}
