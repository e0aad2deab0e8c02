// SPDX-License-Identifier: GPL-2.0
/*
 * The PCI endpoint framework as one module.
 *
 * Debian's kernel is built without CONFIG_PCI_ENDPOINT.  The framework's
 * core files (pci-ep-cfs.c, pci-epc-core.c, pci-epf-core.c, pci-epc-mem.c)
 * call each other in a circle, so as separate modules depmod rejects them
 * and insmod cannot load them.  build-epf.sh links them into this one
 * module and turns each file's module_init()/module_exit() into the hooks
 * of pci_endpoint_hooks.h (a sed); this file calls them in the order the
 * built-in framework initialises (link order: cfs, epc, epf) and tears
 * them down in reverse.
 */

#include <linux/init.h>
#include <linux/module.h>

#include "pci_endpoint_hooks.h"

static int __init pci_endpoint_init(void)
{
	int ret;

	ret = pci_endpoint_cfs_init();
	if (ret)
		return ret;
	ret = pci_endpoint_epc_init();
	if (ret)
		goto err_cfs;
	ret = pci_endpoint_epf_init();
	if (ret)
		goto err_epc;
	return 0;

err_epc:
	pci_endpoint_epc_exit();
err_cfs:
	pci_endpoint_cfs_exit();
	return ret;
}
module_init(pci_endpoint_init);

static void __exit pci_endpoint_exit(void)
{
	pci_endpoint_epf_exit();
	pci_endpoint_epc_exit();
	pci_endpoint_cfs_exit();
}
module_exit(pci_endpoint_exit);

MODULE_DESCRIPTION("PCI endpoint framework (configfs, EPC, EPF, EPC memory) as one module");
MODULE_LICENSE("GPL");
