/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The hooks build-epf.sh makes of the framework files' module_init() and
 * module_exit() (pci-ep-cfs.c: cfs, pci-epc-core.c: epc, pci-epf-core.c:
 * epf); pci_endpoint_main.c calls them.  Kbuild force-includes this header
 * into those files, so the compiler checks both sides against it.
 */
#ifndef PCI_ENDPOINT_HOOKS_H
#define PCI_ENDPOINT_HOOKS_H

int pci_endpoint_cfs_init(void);
void pci_endpoint_cfs_exit(void);
int pci_endpoint_epc_init(void);
void pci_endpoint_epc_exit(void);
int pci_endpoint_epf_init(void);
void pci_endpoint_epf_exit(void);

#endif
