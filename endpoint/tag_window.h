/*
 * Tag windows of DMA reads cancelled by resets (docs/protocol.md 1.3, 3.4):
 * their completions may still come and are dropped, not taken for unknown
 * tags.  One window per reset, however many reads it cancelled; when the
 * table is full the two oldest merge.  Tags are 32-bit and wrap: windows
 * are compared modulo 2^32, and a merge that would span half the tag space
 * or more forgets the oldest window instead, so a window never covers tags
 * about to be reused.
 */
#ifndef PCIEFW_TAG_WINDOW_H
#define PCIEFW_TAG_WINDOW_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#define PF_CANCEL_WINDOWS 16

struct pf_tag_windows {
	struct { uint32_t lo, hi; } w[PF_CANCEL_WINDOWS];   /* [lo, hi), oldest first */
	unsigned n;
};

static inline void pf_tag_windows_clear(struct pf_tag_windows *t)
{
	t->n = 0;
}

/* Remember [lo, hi): the tags one reset cancelled, newer than any before. */
static inline void pf_tag_windows_add(struct pf_tag_windows *t, uint32_t lo,
				      uint32_t hi)
{
	if (t->n == PF_CANCEL_WINDOWS) {
		if (t->w[1].hi - t->w[0].lo < UINT32_MAX / 2)
			t->w[1].lo = t->w[0].lo;
		memmove(&t->w[0], &t->w[1], (PF_CANCEL_WINDOWS - 1) * sizeof(t->w[0]));
		t->n--;
	}
	t->w[t->n].lo = lo;
	t->w[t->n].hi = hi;
	t->n++;
}

static inline bool pf_tag_windows_has(const struct pf_tag_windows *t, uint32_t tag)
{
	for (unsigned i = 0; i < t->n; i++)
		if (tag - t->w[i].lo < t->w[i].hi - t->w[i].lo)
			return true;
	return false;
}

#endif
