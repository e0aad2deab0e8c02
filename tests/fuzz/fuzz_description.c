/*
 * libFuzzer target: a DeviceDescription as the QEMU host takes it (spec
 * 2.3, 4.2).  The input is the description's protobuf bytes; it is sent
 * through the path of every received message (pf_codec_decode,
 * pf_msg_validate), formatted as traces and logs show it, and, when
 * valid, checked for MSI-X placement (pf_desc_check_msix, what
 * hw/pciefw/pciefw.c and msix_init() need beyond validation) and stored
 * per BAR index the way pciefw_save_desc() does.  What is accepted must
 * satisfy the rules independently restated here: a description the host
 * would turn into a device it cannot build is a finding (abort).
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec.h"
#include "description.h"
#include "format.h"
#include "pciefw.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_DESC 4096

struct bar_slot {
	bool present;
	int kind;
	uint64_t size;
};

static void check(bool ok)
{
	if (!ok)
		abort();
}

/* The BAR rules of spec 4.2, for a description validation accepted. */
static void check_bars(const Pciefw__DeviceDescription *d, struct bar_slot *slots)
{
	uint32_t used = 0;

	check(d->n_bars <= PCIEFW_NUM_BARS);
	for (size_t i = 0; i < d->n_bars; i++) {
		const Pciefw__Bar *b = d->bars[i];
		uint32_t span = b->kind == PCIEFW__BAR_KIND__BAR_MEM64 ? 3u : 1u;

		check(b->index < PCIEFW_NUM_BARS);
		check(b->size && !(b->size & (b->size - 1)));
		switch (b->kind) {
		case PCIEFW__BAR_KIND__BAR_MEM32:
			check(b->size >= 16 && b->size <= (1ull << 31));
			break;
		case PCIEFW__BAR_KIND__BAR_MEM64:
			check(b->index < 5 && b->size >= 16 && b->size <= (1ull << 40));
			break;
		case PCIEFW__BAR_KIND__BAR_IO:
			check(!b->prefetchable && b->size >= 4 && b->size <= 256);
			break;
		default:
			check(false);
		}
		check(!(used & (span << b->index)));
		used |= span << b->index;
		/* As pciefw_save_desc(): one slot per declared index. */
		slots[b->index] = (struct bar_slot){ true, b->kind, b->size };
	}
}

static void check_msix(const Pciefw__DeviceDescription *d,
		       const struct bar_slot *slots, bool placed)
{
	const struct bar_slot *t, *p;
	uint64_t tlen = (uint64_t)d->msix_vectors * PF_MSIX_ENTRY_SIZE;
	uint64_t plen = PF_MSIX_PBA_SIZE((uint64_t)d->msix_vectors);

	check(d->msix_vectors <= PCIEFW_MAX_MSIX_VECTORS);
	if (!d->msix_vectors)
		return;
	check(d->msix_table_bar < PCIEFW_NUM_BARS && d->msix_pba_bar < PCIEFW_NUM_BARS);
	check(!(d->msix_table_offset & 7) && !(d->msix_pba_offset & 7));
	t = &slots[d->msix_table_bar];
	p = &slots[d->msix_pba_bar];
	/* The host builds the table in the BAR it declared at that index. */
	check(t->present && p->present);
	if (!placed)
		return;
	check(t->kind != PCIEFW__BAR_KIND__BAR_IO && p->kind != PCIEFW__BAR_KIND__BAR_IO);
	check(d->msix_table_offset <= UINT32_MAX && d->msix_pba_offset <= UINT32_MAX);
	check(d->msix_table_offset + tlen <= t->size);
	check(d->msix_pba_offset + plen <= p->size);
	check(d->msix_table_bar != d->msix_pba_bar ||
	      d->msix_table_offset >= d->msix_pba_offset + plen ||
	      d->msix_pba_offset >= d->msix_table_offset + tlen);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct pf_codec codec;
	static bool init;
	uint8_t msg[MAX_DESC + 8];
	size_t n = 0, len = size;
	struct bar_slot slots[PCIEFW_NUM_BARS] = { { 0 } };
	char err[256], line[2048];
	PfMessage *m;
	int r;

	if (size > MAX_DESC)
		return -1;
	if (!init) {
		pf_codec_init(&codec);
		init = true;
	}
	/* Message field 14 (device_description), length-delimited. */
	msg[n++] = 14 << 3 | 2;
	do {
		msg[n++] = (uint8_t)(len & 0x7f) | (len > 0x7f ? 0x80 : 0);
		len >>= 7;
	} while (len);
	memcpy(msg + n, data, size);
	if (pf_codec_decode(&codec, msg, n + size, &m, err, sizeof(err)))
		return 0;
	check(m->body_case == PCIEFW__MESSAGE__BODY_DEVICE_DESCRIPTION);
	pf_msg_format(m, line, sizeof(line));
	r = pf_msg_validate(m, PCIEFW_DEFAULT_PAYLOAD, err, sizeof(err));
	check(r == PF_OK || r == PF_ERR_INVALID);
	if (r != PF_OK)
		return 0;
	check(m->device_description->vendor_id && m->device_description->vendor_id < 0xffff);
	check_bars(m->device_description, slots);
	r = pf_desc_check_msix(m->device_description, err, sizeof(err));
	check(r == PF_OK || r == PF_ERR_INVALID);
	check_msix(m->device_description, slots, r == PF_OK);
	return 0;
}
