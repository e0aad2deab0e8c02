/* Internet checksum and Ethernet FCS; see checksum.h. */
#include "checksum.h"

#include <stdbool.h>

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/*
 * Four bytes a step: a 32-bit word adds hi * 2^16 + lo, the same as its
 * two 16-bit words once folded (2^16 is 1 modulo 0xffff, RFC 1071 2(B)).
 */
uint32_t pf_csum_add(uint32_t sum, const uint8_t *p, size_t len)
{
	uint64_t s = sum;
	size_t i = 0;

	for (; i + 4 <= len; i += 4)
		s += be32(p + i);
	for (; i + 1 < len; i += 2)
		s += (uint32_t)p[i] << 8 | p[i + 1];
	if (i < len)
		s += (uint32_t)p[i] << 8;
	while (s >> 32)
		s = (s & 0xffffffffu) + (s >> 32);
	return (uint32_t)s;
}

uint16_t pf_csum_fold(uint32_t sum)
{
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	return (uint16_t)sum;
}

/*
 * Reflected CRC-32, polynomial 0x04c11db7 (0xedb88320 reflected), eight
 * bytes a step ("slicing by 8"): table k gives the CRC of a byte followed
 * by k zero bytes.  A byte a step, the FCS of each received frame was the
 * e1000 model's largest cost after the loop itself.
 */
static uint32_t crc_table[8][256];
static bool crc_ready;

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int k = 1; k < 8; k++)
			crc_table[k][i] = crc_table[k - 1][i] >> 8 ^
					  crc_table[0][crc_table[k - 1][i] & 0xff];
	crc_ready = true;
}

static uint32_t le32(const uint8_t *p)
{
	return p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

uint32_t pf_crc32_eth(const uint8_t *p, size_t len)
{
	const uint32_t (*t)[256] = crc_table;
	uint32_t c = 0xffffffffu;

	if (!crc_ready)
		crc_init();
	for (; len >= 8; p += 8, len -= 8) {
		uint32_t lo = le32(p) ^ c, hi = le32(p + 4);

		c = t[7][lo & 0xff] ^ t[6][lo >> 8 & 0xff] ^
		    t[5][lo >> 16 & 0xff] ^ t[4][lo >> 24] ^
		    t[3][hi & 0xff] ^ t[2][hi >> 8 & 0xff] ^
		    t[1][hi >> 16 & 0xff] ^ t[0][hi >> 24];
	}
	for (; len; p++, len--)
		c = t[0][(c ^ *p) & 0xff] ^ (c >> 8);
	return ~c;
}
