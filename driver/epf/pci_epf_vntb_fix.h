/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Force-included into the kernel's pci-epf-vntb.c (Kbuild), which is
 * otherwise built unchanged: fixes for defects of 6.1's pci-epf-vntb on x86
 * (docs/epc.md 13.1).  Each replaces a kernel call of that file by a
 * function here that does the call and what the file leaves undone.
 *
 * 1. vpci_scan_bus() passes the function's own struct epf_ntb as the
 *    virtual bus's sysdata, and x86 reads every root bus's sysdata as a
 *    struct pci_sysdata (pci_domain_nr(), the NUMA node, the VMD device).
 *    At the scan those bytes are still zero: the bus lands in domain 0 next
 *    to the machine's own buses ("busn_res: can not insert [bus 10-ff]
 *    under domain [bus 00-ff]"), and once the NTB device is registered
 *    they are its kobject, so the domain and node become pointer halves
 *    and is_vmd() turns true.  Here the bus gets a real, zeroed
 *    pci_sysdata in a domain of its own, and each device found on it gets
 *    the epf_ntb as its own pdev->sysdata, which is where pci_vntb_probe()
 *    takes it from (x86 reads only the bus's).
 * 2. The virtual bus's driver has no remove(), and epf_ntb_unbind() neither
 *    unregisters the NTB device nor removes the bus: the NTB device stays
 *    with ntb_transport and ntb_netdev on it after its memory is freed
 *    (ntb_transport then writes the freed scratchpads), and a second bind
 *    registers the same struct device again over a bus that is still there
 *    (memory corruption, seen here).  Here the unbind first unregisters
 *    the NTB device (before any of its memory is freed: its first call is
 *    cancel_delayed_work_sync()), and unregistering the bus's driver
 *    removes the bus; a bind after that starts afresh.
 */
#ifndef PCI_EPF_VNTB_FIX_H
#define PCI_EPF_VNTB_FIX_H

#include <linux/device.h>
#include <linux/ntb.h>
#include <linux/pci.h>
#include <linux/string.h>
#include <linux/workqueue.h>

/* One vNTB function per system (the file's own state is static too). */
static struct pci_bus *vntb_fix_bus;
static struct pci_sysdata vntb_fix_sysdata;

static struct pci_bus *vntb_fix_scan_bus(int busnr, struct pci_ops *ops,
					 void *epf_ntb)
{
	struct pci_bus *bus = NULL;
	struct pci_dev *pdev;
	int domain = 0;

	while ((bus = pci_find_next_bus(bus)))
		domain = max(domain, pci_domain_nr(bus) + 1);
	memset(&vntb_fix_sysdata, 0, sizeof(vntb_fix_sysdata));
	vntb_fix_sysdata.domain = domain;
	vntb_fix_sysdata.node = NUMA_NO_NODE;
	bus = pci_scan_bus(busnr, ops, &vntb_fix_sysdata);
	if (!bus)
		return NULL;
	list_for_each_entry(pdev, &bus->devices, bus_list)
		pdev->sysdata = epf_ntb;
	vntb_fix_bus = bus;
	return bus;
}

static int vntb_fix_is_ntb(struct device *dev, void *unused)
{
	return dev->bus && !strcmp(dev->bus->name, "ntb");
}

/* Unregister the NTB devices pci_vntb_probe() registered on the bus. */
static void vntb_fix_unregister_ntb(void)
{
	struct pci_dev *pdev;
	struct device *dev;
	struct ntb_dev *ntb;

	if (!vntb_fix_bus)
		return;
	list_for_each_entry(pdev, &vntb_fix_bus->devices, bus_list) {
		dev = device_find_child(&pdev->dev, NULL, vntb_fix_is_ntb);
		if (!dev)
			continue;
		ntb = container_of(dev, struct ntb_dev, dev);
		put_device(dev);
		ntb_unregister_device(ntb);
		/* Released: a later bind registers it afresh. */
		memset(&ntb->dev, 0, sizeof(ntb->dev));
	}
}

static bool vntb_fix_cancel_delayed_work_sync(struct delayed_work *dwork)
{
	vntb_fix_unregister_ntb();
	return cancel_delayed_work_sync(dwork);
}

static void vntb_fix_unregister_driver(struct pci_driver *drv)
{
	vntb_fix_unregister_ntb();
	pci_unregister_driver(drv);
	if (!vntb_fix_bus)
		return;
	pci_lock_rescan_remove();
	pci_stop_root_bus(vntb_fix_bus);
	pci_remove_root_bus(vntb_fix_bus);
	pci_unlock_rescan_remove();
	vntb_fix_bus = NULL;
}

#define pci_scan_bus(bus, ops, sysdata) vntb_fix_scan_bus(bus, ops, sysdata)
#define cancel_delayed_work_sync(dwork) vntb_fix_cancel_delayed_work_sync(dwork)
#define pci_unregister_driver(drv) vntb_fix_unregister_driver(drv)

#endif
