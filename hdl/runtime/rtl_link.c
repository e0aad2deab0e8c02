/* The RTL link's records over the shared-memory rings; see rtl_link.h. */
#include "rtl_link.h"

#include <stdio.h>
#include <string.h>

#include "pciefw.h"

size_t pf_rtl_link_size(void)
{
	return PF_RTL_REGION_OFFSET + pf_ring_region_size(PF_RTL_RING_BYTES);
}

int pf_rtl_link_init(void *base, char *err, size_t errlen)
{
	struct pf_rtl_shared *sh = base;
	uint8_t *region = (uint8_t *)base + PF_RTL_REGION_OFFSET;

	memset(sh, 0, PF_RTL_SHARED_SIZE);
	sh->magic = PF_RTL_MAGIC;
	sh->version = PF_RTL_VERSION;
	sh->ring_bytes = PF_RTL_RING_BYTES;
	if (pf_ring_region_init(region, pf_ring_region_size(PF_RTL_RING_BYTES),
				PF_RTL_RING_BYTES) != PF_OK) {
		snprintf(err, errlen, "cannot lay out the RTL link's rings");
		return -1;
	}
	return 0;
}

int pf_rtl_link_attach(struct pf_rtl_link *l, void *base, size_t size, bool sim,
		       int peer_bell, char *err, size_t errlen)
{
	struct pf_rtl_shared *sh = base;
	uint8_t *region = (uint8_t *)base + PF_RTL_REGION_OFFSET;
	size_t rsize;

	memset(l, 0, sizeof(*l));
	if (size < pf_rtl_link_size() || sh->magic != PF_RTL_MAGIC ||
	    sh->version != PF_RTL_VERSION) {
		snprintf(err, errlen, "not an RTL link of version %u (%zu bytes)",
			 PF_RTL_VERSION, size);
		return -1;
	}
	rsize = size - PF_RTL_REGION_OFFSET;
	if (pf_ring_attach(&l->rx, region, rsize,
			   sim ? PF_RTL_TO_SIM : PF_RTL_TO_BRIDGE, false,
			   err, errlen) != PF_OK ||
	    pf_ring_attach(&l->tx, region, rsize,
			   sim ? PF_RTL_TO_BRIDGE : PF_RTL_TO_SIM, true,
			   err, errlen) != PF_OK)
		return -1;
	l->shared = sh;
	l->peer_bell = peer_bell;
	return 0;
}

bool pf_rtl_room(struct pf_rtl_link *l, uint32_t payload_len)
{
	return pf_ring_writable(&l->tx) >= sizeof(struct pf_rtl_rec) + payload_len;
}

int pf_rtl_send(struct pf_rtl_link *l, struct pf_rtl_rec *rec,
		const void *payload, uint32_t payload_len)
{
	uint8_t buf[sizeof(*rec) + PF_RTL_MAX_PAYLOAD];
	size_t n = sizeof(*rec) + payload_len;

	if (payload_len > PF_RTL_MAX_PAYLOAD || !pf_rtl_room(l, payload_len))
		return -1;
	rec->len = payload_len;
	/* One write publishes the whole record: the reader never sees half. */
	memcpy(buf, rec, sizeof(*rec));
	if (payload_len)
		memcpy(buf + sizeof(*rec), payload, payload_len);
	if (pf_ring_write(&l->tx, buf, n) != (ssize_t)n)
		return -1;
	if (pf_ring_consumer_needs_kick(&l->tx))
		pf_doorbell_ring(l->peer_bell);
	return 0;
}

int pf_rtl_recv(struct pf_rtl_link *l, struct pf_rtl_rec *rec, void *payload,
		char *err, size_t errlen)
{
	size_t avail = pf_ring_readable(&l->rx);

	if (l->rx.corrupt)
		goto corrupt;
	if (avail == 0)
		return 0;
	if (avail < sizeof(*rec) ||
	    pf_ring_read(&l->rx, rec, sizeof(*rec)) != (ssize_t)sizeof(*rec)) {
		snprintf(err, errlen, "a torn record (%zu bytes waiting)", avail);
		return -1;
	}
	if (rec->len > PF_RTL_MAX_PAYLOAD || rec->len > avail - sizeof(*rec)) {
		snprintf(err, errlen, "a record of type %u with a %u-byte payload "
			 "(%zu bytes waiting, at most %u)", rec->type, rec->len,
			 avail - sizeof(*rec), PF_RTL_MAX_PAYLOAD);
		return -1;
	}
	if (rec->len && pf_ring_read(&l->rx, payload, rec->len) != (ssize_t)rec->len)
		goto corrupt;
	return 1;
corrupt:
	snprintf(err, errlen, "the ring's indices are impossible");
	return -1;
}
