/*
 * Reads a model completes later (PF_CPL_DEFER), e.g. after fetching data
 * by DMA, as a device that reads a descriptor before answering.  While
 * such a read is outstanding the host's later requests are held, in
 * order, and handled once it has completed: the endpoint keeps reading its
 * socket (the DMA completions it waits for arrive there, spec 5.3), and
 * every request is still handled and completed in the order received
 * (spec 5.1).  Completions from the host are never held.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endpoint.h"
#include "log.h"
#include "msg.h"
#include "trace.h"

struct pf_held {
	struct pf_held *next;
	size_t len;
	uint8_t data[];            /* the packed Message */
};

static bool is_host_request(const PfMessage *m)
{
	switch (m->body_case) {
	case PCIEFW__MESSAGE__BODY_MEM_READ:
	case PCIEFW__MESSAGE__BODY_MEM_WRITE:
	case PCIEFW__MESSAGE__BODY_IO_READ:
	case PCIEFW__MESSAGE__BODY_IO_WRITE:
	case PCIEFW__MESSAGE__BODY_CONFIG_READ:
	case PCIEFW__MESSAGE__BODY_CONFIG_WRITE:
	case PCIEFW__MESSAGE__BODY_RESET:
		return true;
	default:
		return false;
	}
}

bool pf_defer_hold(struct pf_dev *dev, const PfMessage *m, int *r,
		   char *err, size_t errlen)
{
	struct pf_deferred *d = &dev->deferred;
	size_t len;
	struct pf_held *h;

	if (!d->active || !is_host_request(m))
		return false;
	len = protobuf_c_message_get_packed_size(&m->base);
	if (d->n_held >= PF_MAX_HELD_MSGS ||
	    d->held_bytes + len > PF_MAX_HELD_BYTES) {
		snprintf(err, errlen,
			 "more than %u requests or %u bytes sent while a read was "
			 "outstanding", PF_MAX_HELD_MSGS, PF_MAX_HELD_BYTES);
		*r = PF_ERR_LIMIT;
		return true;
	}
	h = malloc(sizeof(*h) + len);
	if (!h) {
		snprintf(err, errlen, "out of memory holding a request");
		*r = PF_ERR_NOMEM;
		return true;
	}
	h->next = NULL;
	h->len = len;
	protobuf_c_message_pack(&m->base, h->data);
	if (d->tail)
		d->tail->next = h;
	else
		d->head = h;
	d->tail = h;
	d->n_held++;
	d->held_bytes += len;
	*r = PF_OK;
	return true;
}

void pf_defer_begin(struct pf_dev *dev, uint32_t tag, uint32_t size)
{
	dev->deferred.active = true;
	dev->deferred.tag = tag;
	dev->deferred.size = size;
}

void pf_defer_reset(struct pf_dev *dev)
{
	struct pf_deferred *d = &dev->deferred;

	while (d->head) {
		struct pf_held *h = d->head;

		d->head = h->next;
		free(h);
	}
	memset(d, 0, sizeof(*d));
}

/* Handle held requests in order, until one of them is deferred again. */
static void drain(struct pf_dev *dev)
{
	struct pf_deferred *d = &dev->deferred;

	while (d->head && !d->active && dev->conn) {
		struct pf_held *h = d->head;
		PfMessage *m;
		char err[256];

		d->head = h->next;
		if (!d->head)
			d->tail = NULL;
		d->n_held--;
		d->held_bytes -= h->len;
		m = (PfMessage *)protobuf_c_message_unpack(&pciefw__message__descriptor,
							   NULL, h->len, h->data);
		free(h);
		if (!m)
			continue;      /* packed by us: cannot fail but for memory */
		if (pf_dev_handle(dev, m, err, sizeof(err)))
			pf_warn("held request failed: %s", err);
		protobuf_c_message_free_unpacked(&m->base, NULL);
	}
}

void pf_complete_read(struct pf_dev *dev, int status, const void *data,
		      uint32_t size)
{
	pf_complete_read_note(dev, status, data, size, NULL);
}

void pf_complete_read_note(struct pf_dev *dev, int status, const void *data,
			   uint32_t size, const char *note)
{
	struct pf_deferred *d = &dev->deferred;
	size_t mark;

	if (!d->active)
		return;         /* reset or disconnect dropped it */
	d->active = false;
	if (status == PF_CPL_OK && size != d->size) {
		pf_dev_log(dev, PF_LOG_ERROR, "deferred read of %u bytes completed "
			   "with %u", d->size, size);
		status = PF_CPL_CA;
	}
	if (dev->conn) {
		struct pf_buf *o = pf_conn_out_begin(dev->conn, &mark);

		if (pf_put_completion(o, d->tag, (Pciefw__Status)status,
				      status == PF_CPL_OK ? data : NULL,
				      status == PF_CPL_OK ? size : 0) < 0)
			pf_err("out of memory queueing a completion");
		pf_conn_out_end(dev->conn, mark);
		if (note)
			pf_conn_trace_note(dev->conn, PF_DIR_TO_HOST, note);
	}
	drain(dev);
}
