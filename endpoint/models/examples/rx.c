/*
 * ex-rx: step 4 of the "QEMU PCIe device development" tutorial, its RX
 * path: the driver gives the device a buffer in guest memory; when a
 * packet "arrives" (here: the guest writes RX_KICK), a DMA engine writes
 * it into that buffer and raises an MSI-X vector (1; option vector=).  Walkthrough:
 * docs/models.md.
 *
 * BAR0, 32-bit registers:
 *   0x00 RX_ADDR_LO, 0x04 RX_ADDR_HI   bus address of the buffer
 *   0x08 RX_SIZE                       its size in bytes
 *   0x0c RX_KICK      write: receive one packet
 *   0x10 RX_COUNT     packets written so far (read only)
 *   0x14 RX_LEN       length of the last packet (read only)
 * A packet is its 32-bit little-endian sequence number (from 1) followed
 * by the text of option payload, cut to RX_SIZE.
 */
#include <stdlib.h>
#include <string.h>

#include "device.h"

#define REGS_SIZE  4096u
#define VECTORS    4
#define MAX_PACKET 1518u

enum {
	RX_ADDR_LO = 0x00, RX_ADDR_HI = 0x04, RX_SIZE = 0x08, RX_KICK = 0x0c,
	RX_COUNT = 0x10, RX_LEN = 0x14, REGS_END = 0x18,
};

struct rx {
	struct pf_dev *dev;
	const char *payload;
	uint64_t vector;
	uint32_t regs[REGS_END / 4];
};

static void receive(struct rx *r)
{
	uint64_t addr = (uint64_t)r->regs[RX_ADDR_HI / 4] << 32 | r->regs[RX_ADDR_LO / 4];
	size_t text = strlen(r->payload);
	uint8_t pkt[MAX_PACKET];
	uint32_t len = 4 + (uint32_t)text;

	if (len > r->regs[RX_SIZE / 4])
		len = r->regs[RX_SIZE / 4];
	if (len == 0)
		return;            /* no buffer posted: the packet is lost */
	pf_le_store(pkt, 4, r->regs[RX_COUNT / 4] + 1);
	memcpy(pkt + 4, r->payload, text);
	/* Posted; it reaches guest memory before the interrupt (spec 5.1). */
	if (pf_dma_write(r->dev, addr, pkt, len) < 0)
		return;
	r->regs[RX_COUNT / 4]++;
	r->regs[RX_LEN / 4] = len;
	pf_raise_msix(r->dev, (unsigned)r->vector);
}

static int rx_bar_read(void *s, unsigned bar, uint64_t off, void *data,
		       uint32_t size)
{
	struct rx *r = s;

	pf_le_store(data, 4, off < REGS_END ? r->regs[off / 4] : 0);
	return PF_CPL_OK;
}

static void rx_bar_write(void *s, unsigned bar, uint64_t off,
			 const void *data, uint32_t size)
{
	struct rx *r = s;

	if (off >= RX_KICK + 4)
		return;
	if (off == RX_KICK)
		receive(r);
	else
		r->regs[off / 4] = (uint32_t)pf_le_load(data, 4);
}

static void rx_reset(void *s, enum pf_reset_kind kind)
{
	struct rx *r = s;

	memset(r->regs, 0, sizeof(r->regs));
}

static void rx_destroy(void *s)
{
	free(s);
}

static void *rx_create(struct pf_dev *dev, struct pf_identity *id)
{
	struct rx *r = calloc(1, sizeof(*r));

	if (!r) {
		pf_dev_error(dev, "out of memory");
		return NULL;
	}
	r->dev = dev;
	r->payload = pf_dev_option(dev, "payload");
	if (strlen(r->payload) > MAX_PACKET - 4) {
		pf_dev_error(dev, "option payload: longer than %u bytes", MAX_PACKET - 4);
		free(r);
		return NULL;
	}
	if (pf_opt_u64(dev, "vector", 0, VECTORS - 1, &r->vector)) {
		free(r);
		return NULL;
	}
	id->vendor_id = 0x1234;
	id->device_id = 0x11eb;
	id->subsystem_vendor_id = 0x1af4;
	id->subsystem_id = 0x1100;
	id->class_code = 0x020000;
	/* 32-bit registers: the framework hands us only 4-byte accesses. */
	id->bars[0] = (struct pf_bar_decl){
		.kind = PF_BAR_MEM32, .size = REGS_SIZE,
		.access_min = 4, .access_max = 4,
	};
	id->bars[1] = (struct pf_bar_decl){ .kind = PF_BAR_MEM32, .size = 4096 };
	id->msix_vectors = VECTORS;
	id->msix_table_bar = 1;
	id->msix_table_offset = 0;
	id->msix_pba_bar = 1;
	id->msix_pba_offset = 0x800;
	return r;
}

static const struct pf_model_option rx_options[] = {
	{ "payload", "text of each received packet, after its sequence number",
	  "hello from ex-rx" },
	{ "vector", "MSI-X vector raised for each packet, 0..3", "1" },
	{ NULL, NULL, NULL },
};

static const struct pf_model_ops rx_ops = {
	.bar_read = rx_bar_read,
	.bar_write = rx_bar_write,
	.reset = rx_reset,
	.destroy = rx_destroy,
};

static struct pf_model rx_model = {
	.name = "ex-rx",
	.summary = "example: RX DMA into a guest buffer, then MSI-X (docs/models.md)",
	.options = rx_options,
	.create = rx_create,
	.ops = &rx_ops,
};

PF_MODEL_REGISTER(rx_model);
