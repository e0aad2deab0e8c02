/* The frames held behind a deferred read: defer.h, spec 5.3. */
#include "defer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pciefw.h"

int pf_defer_push(struct pf_defer_queue *q, const uint8_t *frame, size_t len,
		  bool record, char *err, size_t errlen)
{
	struct pf_held *h;

	if (q->n >= PF_MAX_HELD_MSGS || q->bytes + len > PF_MAX_HELD_BYTES) {
		snprintf(err, errlen,
			 "more than %u requests or %u bytes sent while a read was "
			 "outstanding", PF_MAX_HELD_MSGS, PF_MAX_HELD_BYTES);
		return PF_ERR_LIMIT;
	}
	h = malloc(sizeof(*h) + len);
	if (!h) {
		snprintf(err, errlen, "out of memory holding a request");
		return PF_ERR_NOMEM;
	}
	h->next = NULL;
	h->len = len;
	h->record = record;
	memcpy(h->frame, frame, len);
	if (q->tail)
		q->tail->next = h;
	else
		q->head = h;
	q->tail = h;
	q->n++;
	q->bytes += len;
	return PF_OK;
}

struct pf_held *pf_defer_pop(struct pf_defer_queue *q)
{
	struct pf_held *h = q->head;

	if (!h)
		return NULL;
	q->head = h->next;
	if (!q->head)
		q->tail = NULL;
	q->n--;
	q->bytes -= h->len;
	return h;
}

void pf_defer_clear(struct pf_defer_queue *q)
{
	struct pf_held *h;

	while ((h = pf_defer_pop(q)))
		free(h);
}
