/* Feed arbitrary bytes through framing, decoding and validation. */
#ifndef PCIEFW_DECODE_INPUT_H
#define PCIEFW_DECODE_INPUT_H

#include <stddef.h>
#include <stdint.h>

struct decode_counts {
	uint64_t valid, invalid, decode_errors, framing_errors, truncated;
};

void decode_input(const uint8_t *data, size_t len, struct decode_counts *n);

#endif
