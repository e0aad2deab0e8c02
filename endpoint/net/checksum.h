/*
 * Checksums of Ethernet frames and the protocols inside them, for models
 * that offload them (endpoint/models/e1000_offload.c): the Internet
 * ones'-complement sum (RFC 1071) and the Ethernet FCS (CRC-32, IEEE 802.3
 * clause 3.2.9).
 */
#ifndef PCIEFW_NET_CHECKSUM_H
#define PCIEFW_NET_CHECKSUM_H

#include <stddef.h>
#include <stdint.h>

/*
 * Add @len bytes at @p, as big-endian 16-bit words, to the running sum
 * @sum (a trailing odd byte counts as its high half).  Call it on pieces
 * that start at even offsets of the summed range.
 */
uint32_t pf_csum_add(uint32_t sum, const uint8_t *p, size_t len);
/* Fold @sum to 16 bits (not complemented). */
uint16_t pf_csum_fold(uint32_t sum);
/* The Internet checksum of a range whose sum is @sum: ~fold. */
static inline uint16_t pf_csum_finish(uint32_t sum)
{
	return (uint16_t)~pf_csum_fold(sum);
}
/* The Ethernet FCS of @len bytes, as sent on the wire (little-endian). */
uint32_t pf_crc32_eth(const uint8_t *p, size_t len);

#endif
