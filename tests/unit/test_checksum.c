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

/* The definitions, a byte and a word at a time, to hold the fast ones to. */
static uint32_t crc_slow(const uint8_t *p, size_t len)
{
	uint32_t c = 0xffffffffu;

	for (size_t i = 0; i < len; i++) {
		c ^= p[i];
		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
	}
	return ~c;
}

static uint16_t csum_slow(uint32_t start, const uint8_t *p, size_t len)
{
	uint64_t s = start;

	for (size_t i = 0; i < len; i += 2)
		s += (uint32_t)p[i] << 8 | (i + 1 < len ? p[i + 1] : 0);
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

/*
 * Every length to 300 at every alignment, random bytes and all-ones
 * (the carries), pieces at even offsets: the same as the definitions.
 */
static void test_against_definitions(void)
{
	uint8_t buf[310];
	GRand *r = g_rand_new_with_seed(23);

	for (int fill = 0; fill < 2; fill++) {
		for (size_t i = 0; i < sizeof(buf); i++)
			buf[i] = fill ? 0xff : (uint8_t)g_rand_int(r);
		for (size_t len = 0; len <= 300; len++) {
			for (size_t at = 0; at < 8; at++) {
				const uint8_t *p = buf + at;
				size_t half = len / 2 & ~(size_t)1;

				g_assert_cmphex(pf_crc32_eth(p, len), ==, crc_slow(p, len));
				g_assert_cmphex(pf_csum_fold(pf_csum_add(0xfffe0001u, p, len)),
						==, csum_slow(0xfffe0001u, p, len));
				g_assert_cmphex(pf_csum_fold(pf_csum_add(pf_csum_add(0, p, half),
									  p + half, len - half)),
						==, csum_slow(0, p, len));
			}
		}
	}
	g_rand_free(r);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/checksum/fcs", test_fcs);
	g_test_add_func("/checksum/internet", test_internet_checksum);
	g_test_add_func("/checksum/against-definitions", test_against_definitions);
	return g_test_run();
}
