/*
 * ex-basic: step 1 of the "QEMU PCIe device development" tutorial, a
 * device that only has an identity: 1234:11e8, an Ethernet controller with
 * no BARs and no interrupts.  lspci lists it; nothing else reaches it.
 * Walkthrough: docs/models.md.
 */
#include <stdlib.h>

#include "device.h"

/* No BARs are declared, so the framework never calls these. */
static int basic_bar_read(void *s, unsigned bar, uint64_t off, void *data,
			  uint32_t size)
{
	return PF_CPL_UR;
}

static void basic_bar_write(void *s, unsigned bar, uint64_t off,
			    const void *data, uint32_t size)
{
}

static void basic_reset(void *s, enum pf_reset_kind kind)
{
}

static void *basic_create(struct pf_dev *dev, struct pf_identity *id)
{
	static int state;   /* no state, but create() must not return NULL */

	id->vendor_id = 0x1234;
	id->device_id = 0x11e8;
	id->subsystem_vendor_id = 0x1af4;
	id->subsystem_id = 0x1100;
	id->class_code = 0x020000;         /* Ethernet controller */
	return &state;
}

static const struct pf_model_ops basic_ops = {
	.bar_read = basic_bar_read,
	.bar_write = basic_bar_write,
	.reset = basic_reset,
};

static struct pf_model basic_model = {
	.name = "ex-basic",
	.summary = "example: identity only, 1234:11e8 (docs/models.md)",
	.create = basic_create,
	.ops = &basic_ops,
};

PF_MODEL_REGISTER(basic_model);
