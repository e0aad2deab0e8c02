/*
 * ex-mmio: step 2 of the "QEMU PCIe device development" tutorial: a 4 KiB
 * non-prefetchable memory BAR of registers that read back what was
 * written, at any access size.  Walkthrough: docs/models.md.
 */
#include <stdlib.h>
#include <string.h>

#include "device.h"

#define REGS_SIZE 4096u

struct mmio {
	struct pf_dev *dev;
	uint8_t regs[REGS_SIZE];
};

static int mmio_bar_read(void *s, unsigned bar, uint64_t off, void *data,
			 uint32_t size)
{
	struct mmio *m = s;

	memcpy(data, m->regs + off, size);
	pf_dev_log(m->dev, PF_LOG_INFO, "MMIO read addr=0x%llx size=%u val=0x%llx",
		   (unsigned long long)off, size,
		   (unsigned long long)pf_le_load(data, size < 8 ? size : 8));
	return PF_CPL_OK;
}

static void mmio_bar_write(void *s, unsigned bar, uint64_t off,
			   const void *data, uint32_t size)
{
	struct mmio *m = s;

	memcpy(m->regs + off, data, size);
	pf_dev_log(m->dev, PF_LOG_INFO, "MMIO write addr=0x%llx size=%u data=0x%llx",
		   (unsigned long long)off, size,
		   (unsigned long long)pf_le_load(data, size < 8 ? size : 8));
}

static void mmio_reset(void *s, enum pf_reset_kind kind)
{
	struct mmio *m = s;

	memset(m->regs, 0, sizeof(m->regs));
}

static void mmio_destroy(void *s)
{
	free(s);
}

static void *mmio_create(struct pf_dev *dev, struct pf_identity *id)
{
	struct mmio *m = calloc(1, sizeof(*m));

	if (!m) {
		pf_dev_error(dev, "out of memory");
		return NULL;
	}
	m->dev = dev;
	id->vendor_id = 0x1234;
	id->device_id = 0x11e9;
	id->subsystem_vendor_id = 0x1af4;
	id->subsystem_id = 0x1100;
	id->class_code = 0x020000;
	id->bars[0] = (struct pf_bar_decl){ .kind = PF_BAR_MEM32, .size = REGS_SIZE };
	return m;
}

static const struct pf_model_ops mmio_ops = {
	.bar_read = mmio_bar_read,
	.bar_write = mmio_bar_write,
	.reset = mmio_reset,
	.destroy = mmio_destroy,
};

static struct pf_model mmio_model = {
	.name = "ex-mmio",
	.summary = "example: 4 KiB register BAR that reads back (docs/models.md)",
	.create = mmio_create,
	.ops = &mmio_ops,
};

PF_MODEL_REGISTER(mmio_model);
