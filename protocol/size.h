/*
 * Sizes and counts given on command lines and in options: "4096",
 * "0x1000", "64k", "16M", "1G".  One parser for every option that takes a
 * number, so that each refuses the same bad input.
 */
#ifndef PCIEFW_SIZE_H
#define PCIEFW_SIZE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Parse @s: a decimal or 0x-hexadecimal number (no octal: "010" is ten),
 * optionally followed by one suffix K (2^10), M (2^20) or G (2^30), either
 * case.  Returns 0 with *@out set, or -1 with the reason in @err (which may
 * be NULL) for anything else: empty, a sign or blank, trailing text, or a
 * value that does not fit in 64 bits before or after the suffix.
 */
int pf_parse_number(const char *s, uint64_t *out, char *err, size_t errlen);

/* The value of hexadecimal digit @c, or -1. */
int pf_hex_digit(char c);

/* The same without the reason. */
int pf_parse_size(const char *s, uint64_t *out);

#endif
