/*
 * Sizes given on command lines: "4096", "0x1000", "64k", "16M", "1G".
 * One parser for every option that takes a size, so that each rejects the
 * same bad input.
 */
#ifndef PCIEFW_SIZE_H
#define PCIEFW_SIZE_H

#include <stdint.h>

/*
 * Parse @s: a decimal or 0x-hexadecimal number, optionally followed by one
 * suffix k (2^10), M (2^20) or G (2^30).  Returns 0 with *@out set, or -1
 * for anything else: empty, a sign, trailing text, or a value that does not
 * fit in 64 bits before or after the suffix is applied.
 */
int pf_parse_size(const char *s, uint64_t *out);

#endif
