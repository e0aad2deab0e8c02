/*
 * Option value parsers (endpoint/options.h): integers with range and
 * K/M/G suffixes, overflow refused; booleans; MAC addresses.
 */
#include <glib.h>

#include "options.h"

static uint64_t ok_u64(const char *s, uint64_t min, uint64_t max)
{
	char err[200];
	uint64_t v = 12345;

	if (pf_parse_u64(s, min, max, &v, err, sizeof(err)))
		g_error("'%s' refused: %s", s, err);
	return v;
}

static void bad_u64(const char *s, uint64_t min, uint64_t max, const char *why)
{
	char err[200] = "";
	uint64_t v = 777;

	g_assert_cmpint(pf_parse_u64(s, min, max, &v, err, sizeof(err)), ==, -1);
	g_assert_cmpuint(v, ==, 777);          /* untouched on error */
	if (!strstr(err, why))
		g_error("'%s': error '%s' lacks '%s'", s ? s : "(null)", err, why);
}

static void test_u64(void)
{
	g_assert_cmpuint(ok_u64("0", 0, 10), ==, 0);
	g_assert_cmpuint(ok_u64("4096", 0, UINT64_MAX), ==, 4096);
	g_assert_cmpuint(ok_u64("0x1000", 0, UINT64_MAX), ==, 4096);
	g_assert_cmpuint(ok_u64("4K", 0, UINT64_MAX), ==, 4096);
	g_assert_cmpuint(ok_u64("4k", 0, UINT64_MAX), ==, 4096);
	g_assert_cmpuint(ok_u64("1M", 0, UINT64_MAX), ==, 1u << 20);
	g_assert_cmpuint(ok_u64("3G", 0, UINT64_MAX), ==, 3ull << 30);
	g_assert_cmpuint(ok_u64("0x10M", 0, UINT64_MAX), ==, 16ull << 20);
	g_assert_cmpuint(ok_u64("18446744073709551615", 0, UINT64_MAX), ==, UINT64_MAX);
	g_assert_cmpuint(ok_u64("0xffffffffffffffff", 0, UINT64_MAX), ==, UINT64_MAX);
	g_assert_cmpuint(ok_u64("17179869183G", 0, UINT64_MAX), ==, 17179869183ull << 30);
	g_assert_cmpuint(ok_u64("16", 16, 16), ==, 16);
}

static void test_u64_refused(void)
{
	bad_u64("", 0, 10, "empty");
	bad_u64(NULL, 0, 10, "empty");
	bad_u64("-1", 0, UINT64_MAX, "not a number");
	bad_u64(" 1", 0, UINT64_MAX, "not a number");
	bad_u64("+1", 0, UINT64_MAX, "not a number");
	bad_u64("0x", 0, UINT64_MAX, "not a number");
	bad_u64("K", 0, UINT64_MAX, "not a number");
	bad_u64("18446744073709551616", 0, UINT64_MAX, "64 bits");
	bad_u64("0x10000000000000000", 0, UINT64_MAX, "64 bits");
	bad_u64("17179869184G", 0, UINT64_MAX, "overflows");
	bad_u64("16777216T", 0, UINT64_MAX, "unexpected");
	bad_u64("4KB", 0, UINT64_MAX, "unexpected 'B'");
	bad_u64("1 ", 0, UINT64_MAX, "unexpected");
	bad_u64("12abc", 0, UINT64_MAX, "unexpected");
	bad_u64("11", 0, 10, "outside 0..10");
	bad_u64("4", 5, 10, "outside 5..10");
	bad_u64("1K", 0, 1000, "outside");
}

static void test_bool(void)
{
	static const char *const yes[] = { "on", "yes", "true", "1" };
	static const char *const no[] = { "off", "no", "false", "0" };
	static const char *const bad[] = { "", "2", "ON", "y", "onn", "of" };
	char err[200];
	bool b;

	for (unsigned i = 0; i < G_N_ELEMENTS(yes); i++) {
		b = false;
		g_assert_cmpint(pf_parse_bool(yes[i], &b, err, sizeof(err)), ==, 0);
		g_assert_true(b);
		g_assert_cmpint(pf_parse_bool(no[i], &b, err, sizeof(err)), ==, 0);
		g_assert_false(b);
	}
	for (unsigned i = 0; i < G_N_ELEMENTS(bad); i++) {
		b = true;
		g_assert_cmpint(pf_parse_bool(bad[i], &b, err, sizeof(err)), ==, -1);
		g_assert_true(b);
		g_assert_nonnull(strstr(err, "on/off"));
	}
}

static void test_mac(void)
{
	static const char *const bad[] = {
		"", "52:54:00:12:34", "52:54:00:12:34:56:", "52:54:00:12:34:5",
		"52:54:00:12:34:567", "52-54-00-12-34-56", "5:54:00:12:34:56",
		"zz:54:00:12:34:56", "52:54:00:12:34:5g", " 52:54:00:12:34:56",
	};
	uint8_t mac[6] = { 0 }, want[6] = { 0x52, 0x54, 0x00, 0xab, 0xCD, 0xef };
	char err[200];

	g_assert_cmpint(pf_parse_mac("52:54:00:ab:CD:ef", mac, err, sizeof(err)), ==, 0);
	g_assert_cmpmem(mac, 6, want, 6);
	for (unsigned i = 0; i < G_N_ELEMENTS(bad); i++) {
		memset(mac, 0x11, 6);
		if (pf_parse_mac(bad[i], mac, err, sizeof(err)) != -1)
			g_error("'%s' accepted", bad[i]);
		g_assert_nonnull(strstr(err, "not a MAC address"));
		g_assert_cmpuint(mac[0], ==, 0x11);
	}
	g_assert_cmpint(pf_parse_mac("01:00:5e:00:00:01", mac, err, sizeof(err)), ==, -1);
	g_assert_nonnull(strstr(err, "multicast"));
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/options/u64", test_u64);
	g_test_add_func("/options/u64-refused", test_u64_refused);
	g_test_add_func("/options/bool", test_bool);
	g_test_add_func("/options/mac", test_mac);
	return g_test_run();
}
