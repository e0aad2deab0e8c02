/* Command-line sizes; see size.h. */
#include "size.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static unsigned suffix_shift(const char *end)
{
	if (!strcmp(end, "k"))
		return 10;
	if (!strcmp(end, "M"))
		return 20;
	if (!strcmp(end, "G"))
		return 30;
	return 64;              /* not a suffix */
}

int pf_parse_size(const char *s, uint64_t *out)
{
	unsigned long long v;
	unsigned shift = 0;
	char *end;

	/* strtoull would take leading blanks and a minus sign. */
	if (!s || !isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 0);
	if (errno || end == s)
		return -1;
	if (*end) {
		shift = suffix_shift(end);
		if (shift == 64)
			return -1;
	}
	if (v > (UINT64_MAX >> shift))
		return -1;      /* the suffix would overflow */
	*out = (uint64_t)v << shift;
	return 0;
}
