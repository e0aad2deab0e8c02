/* Command-line sizes and counts; see size.h. */
#include "size.h"

#include <stdio.h>

int pf_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Digits in @base up to the first non-digit; -1 on overflow or none. */
static int parse_digits(const char **sp, unsigned base, uint64_t *out)
{
	const char *s = *sp;
	uint64_t v = 0;
	int d;

	if (pf_hex_digit(*s) < 0 || (unsigned)pf_hex_digit(*s) >= base)
		return -1;
	while ((d = pf_hex_digit(*s)) >= 0 && (unsigned)d < base) {
		if (v > (UINT64_MAX - (unsigned)d) / base)
			return -1;
		v = v * base + (unsigned)d;
		s++;
	}
	*sp = s;
	*out = v;
	return 0;
}

static unsigned suffix_shift(char c)
{
	switch (c) {
	case 'k': case 'K': return 10;
	case 'm': case 'M': return 20;
	case 'g': case 'G': return 30;
	default: return 0;
	}
}

#define FAIL(...) do {					\
		if (err)				\
			snprintf(err, errlen, __VA_ARGS__);	\
		return -1;				\
	} while (0)

int pf_parse_number(const char *s, uint64_t *out, char *err, size_t errlen)
{
	const char *p = s;
	unsigned base = 10, shift;
	uint64_t v;

	if (!s || !*s)
		FAIL("empty value, expected a number");
	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) {
		base = 16;
		p += 2;
	}
	if (parse_digits(&p, base, &v))
		FAIL("'%s' is not a number that fits 64 bits", s);
	shift = suffix_shift(*p);
	if (shift) {
		/* In hex, K/M/G are not digits: no ambiguity. */
		if (v > UINT64_MAX >> shift)
			FAIL("'%s' overflows 64 bits", s);
		v <<= shift;
		p++;
	}
	if (*p)
		FAIL("'%s': unexpected '%s' (suffixes: K, M, G)", s, p);
	*out = v;
	return 0;
}

int pf_parse_size(const char *s, uint64_t *out)
{
	return pf_parse_number(s, out, NULL, 0);
}
