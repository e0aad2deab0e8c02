/* Growable byte buffer; see buf.h. */
#include "buf.h"

#include <stdlib.h>
#include <string.h>

#include "pciefw.h"

void pf_buf_init(struct pf_buf *b)
{
	memset(b, 0, sizeof(*b));
}

void pf_buf_free(struct pf_buf *b)
{
	free(b->data);
	pf_buf_init(b);
}

void pf_buf_clear(struct pf_buf *b)
{
	b->head = b->len = 0;
}

uint8_t *pf_buf_reserve(struct pf_buf *b, size_t n)
{
	size_t used = b->len - b->head;

	if (b->cap - b->len >= n)
		return b->data + b->len;
	/* Slide unconsumed bytes down before growing: queues drain from the front. */
	if (b->head && b->cap - used >= n) {
		memmove(b->data, b->data + b->head, used);
		b->head = 0;
		b->len = used;
		return b->data + b->len;
	}
	if (n > SIZE_MAX / 2 - used)
		return NULL;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < used + n)
		cap *= 2;
	uint8_t *p = malloc(cap);
	if (!p)
		return NULL;
	if (used)
		memcpy(p, b->data + b->head, used);
	free(b->data);
	b->data = p;
	b->cap = cap;
	b->head = 0;
	b->len = used;
	return b->data + b->len;
}

int pf_buf_append(struct pf_buf *b, const void *p, size_t n)
{
	uint8_t *dst = pf_buf_reserve(b, n);

	if (!dst)
		return PF_ERR_NOMEM;
	if (n)
		memcpy(dst, p, n);
	b->len += n;
	return PF_OK;
}

void pf_buf_consume(struct pf_buf *b, size_t n)
{
	if (n >= b->len - b->head) {
		b->head = b->len = 0;
		return;
	}
	b->head += n;
}
