/*
 * The frames held behind a deferred read (docs/protocol.md 5.3): while a
 * model has not completed a read it deferred, the host's later requests
 * wait here, in order, as the frames they came in (not re-packed), within
 * the bounds of the spec.  A leaf: it stores bytes and knows nothing of
 * who holds them or why.
 */
#ifndef PCIEFW_DEFER_H
#define PCIEFW_DEFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Host requests held while a deferred read is outstanding (spec 5.3). */
#define PF_MAX_HELD_MSGS 256u
#define PF_MAX_HELD_BYTES (2u << 20)

struct pf_held {
	struct pf_held *next;
	size_t len;
	bool record;                /* a binary register record (spec 11.7) */
	uint8_t frame[];            /* the frame's body or record, as received */
};

struct pf_defer_queue {
	struct pf_held *head, *tail;
	unsigned n;
	size_t bytes;
};

/*
 * Hold a copy of @frame (a frame body, or with @record a binary register
 * record): PF_OK, or PF_ERR_LIMIT / PF_ERR_NOMEM with @err
 * set (too much held already: the host broke the limit of 5.3).
 */
int pf_defer_push(struct pf_defer_queue *q, const uint8_t *frame, size_t len,
		  bool record, char *err, size_t errlen);
/* The oldest frame held, taken out (the caller frees it), or NULL. */
struct pf_held *pf_defer_pop(struct pf_defer_queue *q);
/* Drop everything held. */
void pf_defer_clear(struct pf_defer_queue *q);

#endif /* PCIEFW_DEFER_H */
