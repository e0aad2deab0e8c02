/*
 * A growable byte buffer with a read position, used for encoded frames
 * and for output queues that must never block (spec 5.3).
 */
#ifndef PCIEFW_BUF_H
#define PCIEFW_BUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pf_buf {
	uint8_t *data;
	size_t head;    /* first unconsumed byte */
	size_t len;     /* end of valid bytes */
	size_t cap;
};

void pf_buf_init(struct pf_buf *b);
void pf_buf_free(struct pf_buf *b);
/* Make room for @n more bytes; returns a pointer to them, NULL on OOM. */
uint8_t *pf_buf_reserve(struct pf_buf *b, size_t n);
int pf_buf_append(struct pf_buf *b, const void *p, size_t n);
void pf_buf_consume(struct pf_buf *b, size_t n);
void pf_buf_clear(struct pf_buf *b);

static inline size_t pf_buf_used(const struct pf_buf *b)
{
	return b->len - b->head;
}

static inline const uint8_t *pf_buf_peek(const struct pf_buf *b)
{
	return b->data + b->head;
}

static inline bool pf_buf_empty(const struct pf_buf *b)
{
	return b->len == b->head;
}

#endif /* PCIEFW_BUF_H */
