// SPDX-License-Identifier: GPL-2.0
/*
 * pciefw_test_epc_irq: a test helper for the endpoint guest, not a driver.
 * Loaded next to a function bound to an endpoint controller, it asks the
 * controller, through the 6.1 endpoint core's own calls, what the host
 * enabled and programmed, prints each answer to dmesg on a line of its
 * own beginning "pciefw_test_epc_irq: ", and stays loaded doing nothing
 * until rmmod (tests/integration/test_epf_host_irq.py; docs/epc.md 3.4,
 * 10.2):
 *
 *   insmod pciefw_test_epc_irq.ko epc=NAME op=msi [vector=V]
 *	pci_epc_get_msi(); then pci_epc_map_msi_irq() for V + 1 interrupts
 *	of 4 KiB each, in window memory from pci_epc_mem_alloc_addr(), and
 *	a write of msi_data | V through it: vector V raised on the host.
 *   insmod pciefw_test_epc_irq.ko epc=NAME op=msix bar=B offset=O [entries=N]
 *	pci_epc_get_msix(); then the first N entries of the function's
 *	MSI-X table, read from its BAR B's memory at offset O.
 */

#include <linux/io.h>
#include <linux/module.h>
#include <linux/pci-epc.h>
#include <linux/pci-epf.h>
#include <linux/sizes.h>

#define DRV_NAME "pciefw_test_epc_irq"

static char *epc_name;
module_param_named(epc, epc_name, charp, 0444);
MODULE_PARM_DESC(epc, "the endpoint controller (its name in /sys/class/pci_epc)");

static char *op;
module_param(op, charp, 0444);
MODULE_PARM_DESC(op, "msi or msix");

static uint vector;
module_param(vector, uint, 0444);
MODULE_PARM_DESC(vector, "op=msi: the vector raised through map_msi_irq (0-based)");

static uint bar;
module_param(bar, uint, 0444);
MODULE_PARM_DESC(bar, "op=msix: the BAR holding the function's MSI-X table");

static uint offset;
module_param(offset, uint, 0444);
MODULE_PARM_DESC(offset, "op=msix: the table's offset in that BAR");

static uint entries = 8;
module_param(entries, uint, 0444);
MODULE_PARM_DESC(entries, "op=msix: how many entries to print (default 8)");

/* Map vector+1 interrupts of 4 KiB each and raise the last one. */
static void check_msi(struct pci_epc *epc)
{
	u32 data, off, n = vector + 1;
	phys_addr_t phys;
	void __iomem *va;
	int count, ret;

	count = pci_epc_get_msi(epc, 0, 0);
	pr_info(DRV_NAME ": msi vectors %d\n", count);
	if (count <= 0 || vector >= count)
		return;
	va = pci_epc_mem_alloc_addr(epc, &phys, n * SZ_4K);
	if (!va) {
		pr_info(DRV_NAME ": no window memory\n");
		return;
	}
	ret = pci_epc_map_msi_irq(epc, 0, 0, phys, n, SZ_4K, &data, &off);
	pr_info(DRV_NAME ": map_msi_irq %d data %#x offset %#x\n", ret, data,
		off);
	if (!ret) {
		writel(data | vector, va + vector * SZ_4K + off);
		pr_info(DRV_NAME ": raised vector %u\n", vector);
		while (n--)
			pci_epc_unmap_addr(epc, 0, 0, phys + n * SZ_4K);
	}
	pci_epc_mem_free_addr(epc, phys, va, (vector + 1) * SZ_4K);
}

/* The function's table, as the controller wrote it into its BAR memory. */
static void check_msix(struct pci_epc *epc)
{
	struct pci_epf_msix_tbl *tbl;
	struct pci_epf *epf;
	unsigned int i;

	pr_info(DRV_NAME ": msix vectors %d\n", pci_epc_get_msix(epc, 0, 0));
	mutex_lock(&epc->list_lock);
	epf = list_first_entry_or_null(&epc->pci_epf, struct pci_epf, list);
	if (!epf || bar >= PCI_STD_NUM_BARS || !epf->bar[bar].addr ||
	    offset + (size_t)entries * sizeof(*tbl) > epf->bar[bar].size) {
		pr_info(DRV_NAME ": no table at BAR%u+%#x\n", bar, offset);
	} else {
		tbl = epf->bar[bar].addr + offset;
		for (i = 0; i < entries; i++)
			pr_info(DRV_NAME ": msix entry %u address %#llx data %#x control %#x\n",
				i, READ_ONCE(tbl[i].msg_addr),
				READ_ONCE(tbl[i].msg_data),
				READ_ONCE(tbl[i].vector_ctrl));
	}
	mutex_unlock(&epc->list_lock);
}

static int __init test_epc_irq_init(void)
{
	struct pci_epc *epc;

	if (!epc_name || !op)
		return -EINVAL;
	epc = pci_epc_get(epc_name);
	if (IS_ERR(epc)) {
		pr_info(DRV_NAME ": no controller %s\n", epc_name);
		return PTR_ERR(epc);
	}
	if (!strcmp(op, "msi"))
		check_msi(epc);
	else if (!strcmp(op, "msix"))
		check_msix(epc);
	else
		pr_info(DRV_NAME ": unknown op %s\n", op);
	pr_info(DRV_NAME ": done\n");
	pci_epc_put(epc);
	return 0;
}

static void __exit test_epc_irq_exit(void)
{
}

module_init(test_epc_irq_init);
module_exit(test_epc_irq_exit);

MODULE_DESCRIPTION("Test helper: an endpoint controller's view of the host's MSI/MSI-X settings");
MODULE_LICENSE("GPL");
