/* The Internet checksum and the Ethernet FCS (endpoint/net/checksum.h). */
#include <glib.h>
#include <string.h>

#include "net/checksum.h"

static void test_fcs(void)
{
	/* The CRC-32 check value (IEEE 802.3 polynomial, reflected). */
	g_assert_cmphex(pf_crc32_eth((const uint8_t *)"123456789", 9), ==, 0xcbf43926);
	g_assert_cmphex(pf_crc32_eth(NULL, 0), ==, 0);
}

static void test_internet_checksum(void)
{
	/* RFC 1071 section 3's example: the sum of these words is 0xddf2. */
	static const uint8_t words[] = { 0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7 };
	/* An IPv4 header with its checksum (0xb861) in place sums to all ones. */
	static const uint8_t ip[] = {
		0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
		0xb8, 0x61, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7,
	};
	uint8_t odd[3] = { 0x12, 0x34, 0x56 };

	g_assert_cmphex(pf_csum_fold(pf_csum_add(0, words, sizeof(words))), ==, 0xddf2);
	g_assert_cmphex(pf_csum_fold(pf_csum_add(0, ip, sizeof(ip))), ==, 0xffff);
	g_assert_cmphex(pf_csum_finish(pf_csum_add(0, ip, sizeof(ip))), ==, 0);
	/* A trailing odd byte counts as the high half of a word. */
	g_assert_cmphex(pf_csum_fold(pf_csum_add(0, odd, 3)), ==, 0x1234 + 0x5600);
	/* Carries wrap around, pieces add up. */
	g_assert_cmphex(pf_csum_fold(pf_csum_add(0xffffffffu, odd, 2)), ==,
			pf_csum_fold(0xffffu + 0xffffu + 0x1234u));
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/checksum/fcs", test_fcs);
	g_test_add_func("/checksum/internet", test_internet_checksum);
	return g_test_run();
}
