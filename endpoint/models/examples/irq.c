/*
 * ex-irq: step 3 of the "QEMU PCIe device development" tutorial: the
 * registers of ex-mmio, four interrupt vectors, and a doorbell: writing N
 * to BAR0 offset 0 fires vector N.  Option irq=msix (default) declares
 * four MSI-X vectors with their table and PBA in BAR1; irq=msi declares
 * four MSI vectors and no BAR1.  Walkthrough: docs/models.md.
 */
#include <stdlib.h>
#include <string.h>

#include "device.h"

#define REGS_SIZE 4096u
#define VECTORS   4
#define REG_DOORBELL 0x00

struct irq {
	struct pf_dev *dev;
	bool msix;
	uint8_t regs[REGS_SIZE];
};

static int irq_bar_read(void *s, unsigned bar, uint64_t off, void *data,
			uint32_t size)
{
	struct irq *d = s;

	memcpy(data, d->regs + off, size);
	return PF_CPL_OK;
}

/*
 * The host decides what becomes of the vector: delivered, left pending if
 * masked, dropped if the guest has not enabled MSI-X/MSI (device.h).
 */
static void irq_bar_write(void *s, unsigned bar, uint64_t off,
			  const void *data, uint32_t size)
{
	struct irq *d = s;
	uint32_t v = (uint32_t)pf_le_load(data, size < 4 ? size : 4);

	memcpy(d->regs + off, data, size);
	if (off != REG_DOORBELL)
		return;
	pf_dev_log(d->dev, PF_LOG_INFO, "doorbell: %s vector %u",
		   d->msix ? "MSI-X" : "MSI", v);
	if (d->msix)
		pf_raise_msix(d->dev, v);
	else
		pf_raise_msi(d->dev, v);
}

static void irq_reset(void *s, enum pf_reset_kind kind)
{
	struct irq *d = s;

	memset(d->regs, 0, sizeof(d->regs));
}

static void irq_destroy(void *s)
{
	free(s);
}

static void *irq_create(struct pf_dev *dev, struct pf_identity *id)
{
	struct irq *d = calloc(1, sizeof(*d));
	const char *mode = pf_dev_option(dev, "irq");

	if (!d) {
		pf_dev_error(dev, "out of memory");
		return NULL;
	}
	d->dev = dev;
	d->msix = !strcmp(mode, "msix");
	if (!d->msix && strcmp(mode, "msi")) {
		pf_dev_error(dev, "option irq: '%s' is not msi or msix", mode);
		free(d);
		return NULL;
	}
	id->vendor_id = 0x1234;
	id->device_id = 0x11ea;
	id->subsystem_vendor_id = 0x1af4;
	id->subsystem_id = 0x1100;
	id->class_code = 0x020000;
	id->bars[0] = (struct pf_bar_decl){ .kind = PF_BAR_MEM32, .size = REGS_SIZE };
	if (d->msix) {
		/* The host emulates the table and PBA inside BAR1. */
		id->bars[1] = (struct pf_bar_decl){ .kind = PF_BAR_MEM32, .size = 4096 };
		id->msix_vectors = VECTORS;
		id->msix_table_bar = 1;
		id->msix_table_offset = 0;
		id->msix_pba_bar = 1;
		id->msix_pba_offset = 0x800;
	} else {
		id->msi_vectors = VECTORS;
	}
	return d;
}

static const struct pf_model_option irq_options[] = {
	{ "irq", "interrupt kind: msix or msi", "msix" },
	{ NULL, NULL, NULL },
};

static const struct pf_model_ops irq_ops = {
	.bar_read = irq_bar_read,
	.bar_write = irq_bar_write,
	.reset = irq_reset,
	.destroy = irq_destroy,
};

static struct pf_model irq_model = {
	.name = "ex-irq",
	.summary = "example: BAR0 doorbell fires MSI-X/MSI vector N (docs/models.md)",
	.options = irq_options,
	.create = irq_create,
	.ops = &irq_ops,
};

PF_MODEL_REGISTER(irq_model);
