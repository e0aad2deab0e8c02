/*
 * ex-gpu: the "GPU" of the tutorial "Learning about PCI-e: Emulating a
 * custom device" -- 1234:1337, class 0x00ff, and one memory BAR of plain
 * RAM (1 MiB; option size=, e.g. size=64K) that the guest reads and
 * writes with devmem at 8, 16 and 32 bits.  Walkthrough: docs/models.md.
 */
#include <stdlib.h>
#include <string.h>

#include "device.h"

struct gpu {
	struct pf_dev *dev;
	uint64_t size;
	uint8_t *ram;
};

/* The framework checked that [off, off + size) lies inside BAR0. */
static int gpu_bar_read(void *s, unsigned bar, uint64_t off, void *data,
			uint32_t size)
{
	struct gpu *g = s;

	memcpy(data, g->ram + off, size);
	pf_dev_log(g->dev, PF_LOG_DEBUG, "read %u bytes at 0x%llx = 0x%llx", size,
		   (unsigned long long)off,
		   (unsigned long long)pf_le_load(data, size < 8 ? size : 8));
	return PF_CPL_OK;
}

static void gpu_bar_write(void *s, unsigned bar, uint64_t off,
			  const void *data, uint32_t size)
{
	struct gpu *g = s;

	memcpy(g->ram + off, data, size);
	pf_dev_log(g->dev, PF_LOG_DEBUG, "wrote %u bytes at 0x%llx", size,
		   (unsigned long long)off);
}

static void gpu_reset(void *s, enum pf_reset_kind kind)
{
	struct gpu *g = s;

	memset(g->ram, 0, g->size);
}

static void gpu_destroy(void *s)
{
	struct gpu *g = s;

	free(g->ram);
	free(g);
}

static void *gpu_create(struct pf_dev *dev, struct pf_identity *id)
{
	struct gpu *g = calloc(1, sizeof(*g));

	if (!g) {
		pf_dev_error(dev, "out of memory");
		return NULL;
	}
	g->dev = dev;
	/* BAR sizes are powers of two (spec 4.2). */
	if (pf_opt_u64(dev, "size", 16, 256u << 20, &g->size) ||
	    (g->size & (g->size - 1))) {
		if (g->size & (g->size - 1))
			pf_dev_error(dev, "option size: not a power of two");
		free(g);
		return NULL;
	}
	g->ram = calloc(1, g->size);
	if (!g->ram) {
		pf_dev_error(dev, "out of memory");
		free(g);
		return NULL;
	}
	id->vendor_id = 0x1234;
	id->device_id = 0x1337;
	id->subsystem_vendor_id = 0x1af4;
	id->subsystem_id = 0x1100;
	id->class_code = 0x00ff00;          /* PCI_CLASS_OTHERS */
	/* Video memory: any access, bursts handed whole. */
	id->bars[0] = (struct pf_bar_decl){
		.kind = PF_BAR_MEM32, .size = g->size, .bursts = PF_BURST_WHOLE,
	};
	return g;
}

static const struct pf_model_option gpu_options[] = {
	{ "size", "BAR0 size: a power of two, 16..256M (K/M suffixes)", "1M" },
	{ NULL, NULL, NULL },
};

static const struct pf_model_ops gpu_ops = {
	.bar_read = gpu_bar_read,
	.bar_write = gpu_bar_write,
	.reset = gpu_reset,
	.destroy = gpu_destroy,
};

static struct pf_model gpu_model = {
	.name = "ex-gpu",
	.summary = "example: the tutorial GPU, RAM BAR (docs/models.md)",
	.options = gpu_options,
	.create = gpu_create,
	.ops = &gpu_ops,
};

PF_MODEL_REGISTER(gpu_model);
