// SPDX-License-Identifier: GPL-2.0
/*
 * pciefw_epc: PCI endpoint controller driver for QEMU's pciefw-epc device.
 *
 * The device gives the endpoint guest one endpoint function that a host
 * QEMU sees through its pciefw device.  This driver registers it with the
 * kernel's PCI endpoint framework, so that function drivers such as
 * pci-epf-test run on it unchanged.  The device is specified in
 * docs/epc.md; comments cite it by section ("epc.md 3.2").
 */

#include <linux/bitfield.h>
#include <linux/delay.h>
#include <linux/interrupt.h>
#include <linux/kernel.h>
#include <linux/log2.h>
#include <linux/module.h>
#include <linux/pci-epf.h>

#include "pciefw_epc.h"

/*
 * epc.md 10.2: linkup_notifier stays false although the driver calls
 * pci_epc_linkup() on every link-up: in 6.1 a function bound after the
 * link came up never hears of it (the core does not replay it), and
 * pci-epf-test's unbind leaves its notifier registered.  Functions poll
 * (pci-epf-test, pci-epf-vntb).  BARs are allocated at power-of-two sizes
 * (align 0: a non-zero align makes pci_epf_alloc_space() stop rounding
 * sizes to powers of two); any BAR may be 32- or 64-bit.
 */
static const struct pci_epc_features pfe_features = {
	.linkup_notifier = false,
	.core_init_notifier = false,
	.msi_capable = true,
	.msix_capable = true,
};

/*
 * epc.md 10.2: BARs that are 64-bit whatever a function asks, as on
 * controllers whose BAR types are fixed.  0x15 (BARs 0, 2, 4) is NXP
 * i.MX8's layout, the one the host's ntb_hw_epf expects of pci-epf-vntb
 * (its mx8_map); 0, the default, leaves every BAR free.
 */
static uint fixed_64bit_bars;
module_param(fixed_64bit_bars, uint, 0444);
MODULE_PARM_DESC(fixed_64bit_bars,
		 "bitmask of BARs that are always 64-bit (0x15: BARs 0, 2, 4, as i.MX8); default 0");

/* A mask of 64-bit BARs below BAR5 whose upper halves are not in it. */
static bool pfe_fixed_64bit_ok(uint mask)
{
	return !(mask & ~0x1fU) && !(mask & mask << 1);
}

/*
 * The controller's state, or NULL while probe has not finished: the ops
 * run under epc->lock, under which probe publishes it.
 */
static struct pfe *pfe_of(struct pci_epc *epc)
{
	return epc_get_drvdata(epc);
}

/* Only physical function 0 exists (max_functions = 1), no virtual ones. */
static bool pfe_bad_fn(u8 func_no, u8 vfunc_no)
{
	return func_no != 0 || vfunc_no != 0;
}

static int pfe_write_header(struct pci_epc *epc, u8 func_no, u8 vfunc_no,
			    struct pci_epf_header *hdr)
{
	struct pfe *pfe = pfe_of(epc);

	if (!pfe || pfe_bad_fn(func_no, vfunc_no) ||
	    hdr->interrupt_pin > PCI_INTERRUPT_INTD)
		return -EINVAL;
	/* epc.md 3.1; cache_line_size is the host's (it emulates the header) */
	pfe_wr(pfe, PFE_FN_ID, hdr->vendorid | (u32)hdr->deviceid << 16);
	pfe_wr(pfe, PFE_FN_SUBSYS,
	       hdr->subsys_vendor_id | (u32)hdr->subsys_id << 16);
	pfe_wr(pfe, PFE_FN_CLASS_REV, hdr->revid | (u32)hdr->progif_code << 8 |
	       (u32)hdr->subclass_code << 16 | (u32)hdr->baseclass_code << 24);
	pfe_wr(pfe, PFE_FN_INTX_PIN, hdr->interrupt_pin);
	pfe->intx_pin = hdr->interrupt_pin;
	return 0;
}

/* A BAR's own rules (epc.md 4, ERROR 2). */
static bool pfe_bar_ok(const struct pci_epf_bar *bar)
{
	u64 size = bar->size;

	if (!is_power_of_2(size))
		return false;
	if (bar->flags & PCI_BASE_ADDRESS_SPACE_IO)
		return !(bar->flags & PCI_BASE_ADDRESS_MEM_PREFETCH) &&
		       size >= 4 && size <= 256;
	if (bar->flags & PCI_BASE_ADDRESS_MEM_TYPE_64)
		return bar->barno < BAR_5 && size >= 16 && size <= SZ_1T;
	return size >= 16 && size <= SZ_2G;
}

static bool pfe_bar_set(struct pfe *pfe, int barno)
{
	return barno >= 0 && barno < PCI_STD_NUM_BARS && pfe->bars[barno].size;
}

static bool pfe_bar_is_64(struct pfe *pfe, int barno)
{
	return pfe_bar_set(pfe, barno) &&
	       (pfe->bars[barno].flags & PCI_BASE_ADDRESS_MEM_TYPE_64);
}

/*
 * The rules between BARs, checked here rather than only at START: a BAR
 * next to a 64-bit one is its upper half.  A BAR already set may only be
 * retargeted (as on a DesignWare controller): another size or kind needs
 * clear_bar first, and reaches a host only when it enumerates the
 * function anew (epc.md 3.2).
 */
static int pfe_bar_conflict(struct pfe *pfe, const struct pci_epf_bar *bar)
{
	const struct pci_epf_bar *old = &pfe->bars[bar->barno];

	if (pfe_bar_is_64(pfe, bar->barno - 1))
		return -EINVAL;
	if ((bar->flags & PCI_BASE_ADDRESS_MEM_TYPE_64) &&
	    pfe_bar_set(pfe, bar->barno + 1))
		return -EINVAL;
	if (old->size && (old->size != bar->size || old->flags != bar->flags))
		return -EBUSY;
	return 0;
}

static int pfe_set_bar(struct pci_epc *epc, u8 func_no, u8 vfunc_no,
		       struct pci_epf_bar *bar)
{
	struct pfe *pfe = pfe_of(epc);
	u32 base;
	int ret;

	if (!pfe || pfe_bad_fn(func_no, vfunc_no) ||
	    bar->barno >= PCI_STD_NUM_BARS)
		return -EINVAL;
	/* A fixed 64-bit BAR is 64-bit: the function is told (its flags). */
	if (pfe->features.bar_fixed_64bit & BIT(bar->barno))
		bar->flags |= PCI_BASE_ADDRESS_MEM_TYPE_64;
	if (!pfe_bar_ok(bar))
		return -EINVAL;
	ret = pfe_bar_conflict(pfe, bar);
	if (ret)
		return ret;
	base = PFE_BAR(bar->barno);
	/*
	 * epc.md 3.2: the device serves the host from these registers at
	 * once.  A BAR being retargeted is disabled meanwhile, so that no
	 * host access lands on half of the new address.
	 */
	if (pfe->bars[bar->barno].size)
		pfe_wr(pfe, base + PFE_BAR_FLAGS, 0);
	pfe_wr(pfe, base + PFE_BAR_ADDR_LO, lower_32_bits(bar->phys_addr));
	pfe_wr(pfe, base + PFE_BAR_ADDR_HI, upper_32_bits(bar->phys_addr));
	pfe_wr(pfe, base + PFE_BAR_SIZE_LO, lower_32_bits((u64)bar->size));
	pfe_wr(pfe, base + PFE_BAR_SIZE_HI, upper_32_bits((u64)bar->size));
	pfe_wr(pfe, base + PFE_BAR_FLAGS,
	       (bar->flags & PFE_BAR_FLAGS_MASK) | PFE_BAR_ENABLE);
	pfe->bars[bar->barno] = *bar;
	return 0;
}

/* epc.md 3.2: the host reads all ones from a cleared BAR at once. */
static void pfe_clear_bar(struct pci_epc *epc, u8 func_no, u8 vfunc_no,
			  struct pci_epf_bar *bar)
{
	struct pfe *pfe = pfe_of(epc);

	if (!pfe || pfe_bad_fn(func_no, vfunc_no) ||
	    bar->barno >= PCI_STD_NUM_BARS)
		return;
	pfe_wr(pfe, PFE_BAR(bar->barno) + PFE_BAR_FLAGS, 0);
	memset(&pfe->bars[bar->barno], 0, sizeof(pfe->bars[0]));
}

/*
 * epc.md 5: program a free region.  Both ends must be aligned as a
 * DesignWare iATU needs them (PFE_MAP_ALIGN), and the region covers whole
 * 4 KiB pages, as there: a function developed here then maps the same
 * way on hardware.  The device refuses a region it cannot map.
 */
static int pfe_map_addr(struct pci_epc *epc, u8 func_no, u8 vfunc_no,
			phys_addr_t addr, u64 pci_addr, size_t size)
{
	struct pfe *pfe = pfe_of(epc);
	unsigned int r;
	u32 base;

	if (!pfe || pfe_bad_fn(func_no, vfunc_no) || !size)
		return -EINVAL;
	if (!IS_ALIGNED(addr, PFE_MAP_ALIGN) ||
	    !IS_ALIGNED(pci_addr, PFE_MAP_ALIGN)) {
		dev_err_ratelimited(&pfe->pdev->dev,
				    "map_addr: %pa -> %#llx: both must be %u-byte aligned\n",
				    &addr, pci_addr, PFE_MAP_ALIGN);
		return -EINVAL;
	}
	size = ALIGN(size, PFE_MAP_ALIGN);
	if (addr < pfe->win_base || size > pfe->win_size ||
	    addr - pfe->win_base > pfe->win_size - size)
		return -EINVAL;
	for (r = 0; r < pfe->nr_maps && pfe->map_addr[r]; r++)
		;
	if (r == pfe->nr_maps)
		return -ENOSPC;
	base = PFE_MAP(r);
	pfe_wr(pfe, base + PFE_MAP_WIN_OFFSET, addr - pfe->win_base);
	pfe_wr(pfe, base + PFE_MAP_SIZE, size);
	pfe_wr(pfe, base + PFE_MAP_HOST_LO, lower_32_bits(pci_addr));
	pfe_wr(pfe, base + PFE_MAP_HOST_HI, upper_32_bits(pci_addr));
	pfe_wr(pfe, base + PFE_MAP_CTRL, PFE_MAP_ENABLE);
	if (pfe_rd(pfe, base + PFE_MAP_CTRL) != PFE_MAP_ENABLE) {
		pfe_wr(pfe, base + PFE_MAP_CTRL, 0);
		return -EINVAL;
	}
	pfe->map_addr[r] = addr;
	return 0;
}

static void pfe_unmap_addr(struct pci_epc *epc, u8 func_no, u8 vfunc_no,
			   phys_addr_t addr)
{
	struct pfe *pfe = pfe_of(epc);
	unsigned int r;

	if (!pfe || pfe_bad_fn(func_no, vfunc_no) || !addr)
		return;
	for (r = 0; r < pfe->nr_maps; r++) {
		if (pfe->map_addr[r] == addr) {
			pfe_wr(pfe, PFE_MAP(r) + PFE_MAP_CTRL, 0);
			pfe->map_addr[r] = 0;
			return;
		}
	}
}

/* @mmc: log2 of the vector count, as in the MSI capability's MMC field. */
static int pfe_set_msi(struct pci_epc *epc, u8 func_no, u8 vfunc_no, u8 mmc)
{
	struct pfe *pfe = pfe_of(epc);

	if (!pfe || pfe_bad_fn(func_no, vfunc_no) || mmc > ilog2(PFE_MSI_MAX))
		return -EINVAL;
	pfe->msi_vectors = 1U << mmc;
	pfe_wr(pfe, PFE_FN_MSI_VECTORS, pfe->msi_vectors);
	return 0;
}

/*
 * epc.md 3.4: the MSI vectors the host enabled, 0 while MSI is off (or
 * the device is gone: all ones).
 */
static u32 pfe_host_msi_vectors(struct pfe *pfe)
{
	u32 ctrl = pfe_rd(pfe, PFE_HOST_MSI_CTRL);
	u32 vectors = FIELD_GET(PFE_HOST_MSI_VECTORS, ctrl);

	if (!(ctrl & PFE_HOST_MSI_ENABLED) || !is_power_of_2(vectors) ||
	    vectors > PFE_MSI_MAX)
		return 0;
	return vectors;
}

/*
 * As DesignWare's: log2 of the vectors the host enabled, -EINVAL while it
 * has MSI off.  A device before 1.2 cannot tell: what was declared.
 */
static int pfe_get_msi(struct pci_epc *epc, u8 func_no, u8 vfunc_no)
{
	struct pfe *pfe = pfe_of(epc);
	u32 vectors;

	if (!pfe || pfe_bad_fn(func_no, vfunc_no) || !pfe->msi_vectors)
		return -EINVAL;
	if (!pfe->host_irq)
		return ilog2(pfe->msi_vectors);
	vectors = pfe_host_msi_vectors(pfe);
	return vectors ? ilog2(vectors) : -EINVAL;
}

/* @count_1: vector count - 1; the PBA follows the table (epc.md 3.1). */
static int pfe_set_msix(struct pci_epc *epc, u8 func_no, u8 vfunc_no,
			u16 count_1, enum pci_barno bir, u32 offset)
{
	struct pfe *pfe = pfe_of(epc);
	u32 count = (u32)count_1 + 1;
	u32 pba = offset + count * PCI_MSIX_ENTRY_SIZE;

	if (!pfe || pfe_bad_fn(func_no, vfunc_no) || count > PFE_MSIX_MAX ||
	    bir >= PCI_STD_NUM_BARS || !IS_ALIGNED(offset, 8) || pba < offset)
		return -EINVAL;
	pfe->msix_vectors = count;
	pfe_wr(pfe, PFE_FN_MSIX_VECTORS, count);
	pfe_wr(pfe, PFE_FN_MSIX_TABLE, offset | bir);
	pfe_wr(pfe, PFE_FN_MSIX_PBA, pba | bir);
	return 0;
}

/*
 * As DesignWare's: the table's size - 1 while the host has MSI-X enabled
 * (epc.md 3.4), -EINVAL while not.  Before 1.2: the declared count - 1.
 */
static int pfe_get_msix(struct pci_epc *epc, u8 func_no, u8 vfunc_no)
{
	struct pfe *pfe = pfe_of(epc);
	u32 ctrl;

	if (!pfe || pfe_bad_fn(func_no, vfunc_no) || !pfe->msix_vectors)
		return -EINVAL;
	if (pfe->host_irq) {
		ctrl = pfe_rd(pfe, PFE_HOST_MSIX_CTRL);
		if (ctrl == U32_MAX || !(ctrl & PFE_HOST_MSIX_ENABLED))
			return -EINVAL;
	}
	return pfe->msix_vectors - 1;
}

/*
 * epc.md 10.2, as Cadence's (DesignWare's 6.1 controller has none) for
 * its one 6.1 caller, pci-epf-ntb: @interrupt_num regions of @entry_size
 * from @phys_addr, each mapped by map_addr to the host's MSI address
 * rounded down to map_addr's alignment; vector i is then raised by
 * writing *@msi_data | i at @phys_addr + i * @entry_size +
 * *@msi_addr_offset.
 */
static int pfe_map_msi_irq(struct pci_epc *epc, u8 func_no, u8 vfunc_no,
			   phys_addr_t phys_addr, u8 interrupt_num,
			   u32 entry_size, u32 *msi_data, u32 *msi_addr_offset)
{
	struct pfe *pfe = pfe_of(epc);
	u32 vectors;
	u64 addr, aligned;
	unsigned int i;
	int ret;

	if (!pfe || pfe_bad_fn(func_no, vfunc_no) || !pfe->host_irq)
		return -EINVAL;
	vectors = pfe_host_msi_vectors(pfe);
	if (!interrupt_num || interrupt_num > vectors)
		return -EINVAL;
	addr = (u64)pfe_rd(pfe, PFE_HOST_MSI_ADDR_HI) << 32 |
	       pfe_rd(pfe, PFE_HOST_MSI_ADDR_LO);
	aligned = ALIGN_DOWN(addr, PFE_MAP_ALIGN);
	for (i = 0; i < interrupt_num; i++) {
		ret = pfe_map_addr(epc, func_no, vfunc_no,
				   phys_addr + i * entry_size, aligned,
				   entry_size);
		if (ret) {
			while (i--)
				pfe_unmap_addr(epc, func_no, vfunc_no,
					       phys_addr + i * entry_size);
			return ret;
		}
	}
	/* The data of vector 0: the caller puts the vector in its low bits. */
	*msi_data = pfe_rd(pfe, PFE_HOST_MSI_DATA) & ~(vectors - 1);
	*msi_addr_offset = addr - aligned;
	return 0;
}

/* epc.md 3.3: RAISE_STATUS says whether anything went to the host. */
static int pfe_raise_status(struct pfe *pfe)
{
	switch (pfe_rd(pfe, PFE_RAISE_STATUS)) {
	case PFE_RAISE_SENT:
		return 0;
	case PFE_RAISE_NO_LINK:
		return -ENOLINK;
	default:
		return -EINVAL;
	}
}

/*
 * INTx is a level (epc.md 3.3).  6.1's raise_irq has no deassert, so it
 * is held for a millisecond, as Cadence's and TI's DRA7xx controllers
 * hold it.
 */
static int pfe_raise_intx(struct pfe *pfe)
{
	int ret;

	if (!pfe->intx_pin)
		return -EINVAL;
	pfe_wr(pfe, PFE_INTX, 1);
	ret = pfe_raise_status(pfe);
	if (!ret)
		usleep_range(1000, 2000);
	pfe_wr(pfe, PFE_INTX, 0);
	return ret;
}

/* epc.md 3.3; @num is 1-based for MSI and MSI-X */
static int pfe_raise_irq(struct pci_epc *epc, u8 func_no, u8 vfunc_no,
			 enum pci_epc_irq_type type, u16 num)
{
	struct pfe *pfe = pfe_of(epc);

	if (!pfe || pfe_bad_fn(func_no, vfunc_no))
		return -EINVAL;
	switch (type) {
	case PCI_EPC_IRQ_LEGACY:
		return pfe_raise_intx(pfe);
	case PCI_EPC_IRQ_MSI:
		if (!num || num > pfe->msi_vectors)
			return -EINVAL;
		break;
	case PCI_EPC_IRQ_MSIX:
		if (!num || num > pfe->msix_vectors)
			return -EINVAL;
		break;
	default:
		return -EINVAL;
	}
	pfe_wr(pfe, PFE_RAISE_IRQ, FIELD_PREP(PFE_RAISE_KIND, type) |
	       FIELD_PREP(PFE_RAISE_VECTOR, num - 1));
	return pfe_raise_status(pfe);
}

static const char *pfe_start_error(u32 err)
{
	static const char * const why[] = {
		[1] = "vendor ID 0 or 0xffff",
		[2] = "a BAR's size, kind or placement",
		[4] = "bad MSI or MSI-X vector count",
		[5] = "MSI-X table or PBA misplaced",
		[6] = "interrupt pin above INTD",
	};

	return err < ARRAY_SIZE(why) && why[err] ? why[err] : "unknown reason";
}

/* epc.md 4 */
static int pfe_start(struct pci_epc *epc)
{
	struct pfe *pfe = pfe_of(epc);
	u32 status, err;

	if (!pfe)
		return -EAGAIN;
	pfe_wr(pfe, PFE_CTRL, PFE_CTRL_START);
	status = pfe_rd(pfe, PFE_STATUS);
	if (status == U32_MAX)
		return -ENODEV;
	if (!(status & PFE_STATUS_STARTED)) {
		err = pfe_rd(pfe, PFE_ERROR);
		dev_err(&pfe->pdev->dev, "start refused: %s (error %u)\n",
			pfe_start_error(err), err);
		return -EINVAL;
	}
	return 0;
}

static void pfe_stop(struct pci_epc *epc)
{
	struct pfe *pfe = pfe_of(epc);

	if (pfe)
		pfe_wr(pfe, PFE_CTRL, 0);
}

static const struct pci_epc_features *
pfe_get_features(struct pci_epc *epc, u8 func_no, u8 vfunc_no)
{
	struct pfe *pfe = pfe_of(epc);

	return !pfe || pfe_bad_fn(func_no, vfunc_no) ? NULL : &pfe->features;
}

/*
 * No .owner: the core takes a reference on it for the whole life of the
 * controller's configfs group, which would make rmmod impossible.  A
 * function bound when the controller goes is unbound first (remove).
 */
static const struct pci_epc_ops pfe_epc_ops = {
	.write_header = pfe_write_header,
	.set_bar = pfe_set_bar,
	.clear_bar = pfe_clear_bar,
	.map_addr = pfe_map_addr,
	.unmap_addr = pfe_unmap_addr,
	.set_msi = pfe_set_msi,
	.get_msi = pfe_get_msi,
	.set_msix = pfe_set_msix,
	.get_msix = pfe_get_msix,
	.raise_irq = pfe_raise_irq,
	.map_msi_irq = pfe_map_msi_irq,
	.start = pfe_start,
	.stop = pfe_stop,
	.get_features = pfe_get_features,
};

/*
 * 6.1's pci_epc_create() gives the EPC's device no release function, so
 * device_unregister() in pci_epc_destroy() WARNs on every controller
 * removal ("does not have a release() function, it is broken"), and
 * pci_epc_destroy() then frees the EPC itself: nothing is left to do here.
 */
static void pfe_epc_dev_release(struct device *dev)
{
}

/* epc.md 6: the link's events.  INTx may be shared: IRQ_NONE if none. */
static irqreturn_t pfe_irq(int irq, void *data)
{
	struct pfe *pfe = data;
	u32 ev = pfe_rd(pfe, PFE_EVENTS);

	if (ev == U32_MAX || !(ev & PFE_EV_ALL))
		return IRQ_NONE;
	pfe_wr(pfe, PFE_EVENTS, ev & PFE_EV_ALL);
	if (ev & PFE_EV_LINK_DOWN)
		dev_info_ratelimited(&pfe->pdev->dev, "link down\n");
	if (ev & PFE_EV_HOST_RESET)
		dev_info_ratelimited(&pfe->pdev->dev, "host reset the function\n");
	if (ev & PFE_EV_LINK_UP) {
		dev_info_ratelimited(&pfe->pdev->dev, "link up\n");
		pci_epc_linkup(pfe->epc);
	}
	if (ev & PFE_EV_DMA)
		pfe_dma_event(pfe);
	return IRQ_HANDLED;
}

/* Power-on state: link down, no BAR, no region, no event pending. */
static void pfe_reset(struct pfe *pfe)
{
	unsigned int i;

	pfe_wr(pfe, PFE_CTRL, 0);
	pfe_wr(pfe, PFE_EVENT_ENABLE, 0);
	pfe_wr(pfe, PFE_INTX, 0);
	for (i = 0; i < PCI_STD_NUM_BARS; i++)
		pfe_wr(pfe, PFE_BAR(i) + PFE_BAR_FLAGS, 0);
	for (i = 0; i < PFE_MAX_MAPS; i++)
		pfe_wr(pfe, PFE_MAP(i) + PFE_MAP_CTRL, 0);
	pfe_wr(pfe, PFE_FN_MSI_VECTORS, 0);
	pfe_wr(pfe, PFE_FN_MSIX_VECTORS, 0);
	pfe_wr(pfe, PFE_EVENTS, PFE_EV_ALL | PFE_EV_HOST_IRQ_CONFIG);
}

/*
 * A pciefw-epc 1.1 or later: RAISE_STATUS and INTX (epc.md 2); from 1.2
 * the host's interrupt settings (3.4).
 */
static int pfe_check_device(struct pfe *pfe)
{
	struct device *dev = &pfe->pdev->dev;
	u32 id = pfe_rd(pfe, PFE_ID), ver = pfe_rd(pfe, PFE_VERSION);

	if (id != PFE_ID_VALUE || FIELD_GET(PFE_VERSION_MAJOR, ver) != 1 ||
	    FIELD_GET(PFE_VERSION_MINOR, ver) < 1) {
		dev_err(dev, "not a pciefw-epc 1.1 or later 1.x (ID %#x, version %#x)\n",
			id, ver);
		return -ENODEV;
	}
	if (!(pci_resource_flags(pfe->pdev, PFE_WINDOW_BAR) & IORESOURCE_MEM) ||
	    pfe->win_size < PFE_MIN_WINDOW) {
		dev_err(dev, "BAR%d is not an outbound window of %d KiB or more\n",
			PFE_WINDOW_BAR, PFE_MIN_WINDOW / SZ_1K);
		return -ENODEV;
	}
	pfe->host_irq = FIELD_GET(PFE_VERSION_MINOR, ver) >= 2;
	pfe->nr_maps = min_t(u32, pfe_rd(pfe, PFE_MAP_SLOTS), PFE_MAX_MAPS);
	if (!pfe->nr_maps) {
		dev_err(dev, "the device has no outbound regions\n");
		return -ENODEV;
	}
	return 0;
}

/* Map BAR0 and claim BAR2 (the window: pci_epc_mem maps what it hands out). */
static int pfe_map_bars(struct pfe *pfe)
{
	struct pci_dev *pdev = pfe->pdev;
	int ret;

	if (pci_resource_len(pdev, PFE_REGS_BAR) < PFE_REGS_SIZE)
		return -ENODEV;
	ret = pcim_iomap_regions(pdev, BIT(PFE_REGS_BAR), DRV_NAME);
	if (ret)
		return ret;
	pfe->regs = pcim_iomap_table(pdev)[PFE_REGS_BAR];
	pfe->win_base = pci_resource_start(pdev, PFE_WINDOW_BAR);
	pfe->win_size = pci_resource_len(pdev, PFE_WINDOW_BAR);
	ret = pfe_check_device(pfe);
	if (ret)
		return ret;
	return pci_request_region(pdev, PFE_WINDOW_BAR, DRV_NAME);
}

static int pfe_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct device *dev = &pdev->dev;
	struct pfe *pfe;
	int ret;

	if (!pfe_fixed_64bit_ok(fixed_64bit_bars)) {
		dev_err(dev, "fixed_64bit_bars=%#x: only BARs 0-4, none next to another\n",
			fixed_64bit_bars);
		return -EINVAL;
	}
	pfe = devm_kzalloc(dev, sizeof(*pfe), GFP_KERNEL);
	if (!pfe)
		return -ENOMEM;
	pfe->pdev = pdev;
	pfe->features = pfe_features;
	pfe->features.bar_fixed_64bit = fixed_64bit_bars;
	ret = pcim_enable_device(pdev);
	if (ret)
		return ret;
	ret = pfe_map_bars(pfe);
	if (ret)
		return ret;
	/* The function's BARs live in coherent memory the device reads. */
	ret = dma_set_mask_and_coherent(dev, DMA_BIT_MASK(64));
	if (ret)
		return ret;
	pfe_reset(pfe);
	pci_set_master(pdev);
	pci_set_drvdata(pdev, pfe);

	/* Its configfs group appears now; the ops refuse until the end. */
	pfe->epc = devm_pci_epc_create(dev, &pfe_epc_ops);
	if (IS_ERR(pfe->epc))
		return PTR_ERR(pfe->epc);
	pfe->epc->dev.release = pfe_epc_dev_release;
	ret = pci_epc_mem_init(pfe->epc, pfe->win_base, pfe->win_size,
			       PFE_MAP_ALIGN);
	if (ret) {
		dev_err(dev, "outbound window: %d\n", ret);
		return ret;
	}
	ret = pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_MSI | PCI_IRQ_LEGACY);
	if (ret < 0)
		goto err_mem;
	ret = request_irq(pci_irq_vector(pdev, 0), pfe_irq, IRQF_SHARED,
			  DRV_NAME, pfe);
	if (ret)
		goto err_vectors;
	pfe_wr(pfe, PFE_EVENT_ENABLE, PFE_EV_ALL);
	/* Before functions can bind: pci-epf-test asks for it at bind. */
	ret = pfe_dma_probe(pfe);
	if (ret)
		goto err_irq;

	mutex_lock(&pfe->epc->lock);
	/* pci_epc_create() leaves it at 0: nothing could bind. */
	pfe->epc->max_functions = 1;
	epc_set_drvdata(pfe->epc, pfe);
	mutex_unlock(&pfe->epc->lock);
	dev_info(dev, "endpoint controller %s: %llu MiB outbound window, %u regions, DMA channel %s\n",
		 dev_name(&pfe->epc->dev), (u64)pfe->win_size / SZ_1M,
		 pfe->nr_maps, pfe_dma_name(pfe));
	return 0;

err_irq:
	pfe_wr(pfe, PFE_EVENT_ENABLE, 0);
	free_irq(pci_irq_vector(pdev, 0), pfe);
err_vectors:
	pci_free_irq_vectors(pdev);
err_mem:
	pci_epc_mem_exit(pfe->epc);
	return ret;
}

/*
 * Unbinds the functions still bound (epc.md 10.1), stops the link and
 * quiets the device; the EPC itself is destroyed by devres after this
 * returns.
 */
static void pfe_remove(struct pci_dev *pdev)
{
	struct pfe *pfe = pci_get_drvdata(pdev);

	pfe_unbind_functions(pfe);
	mutex_lock(&pfe->epc->lock);
	epc_set_drvdata(pfe->epc, NULL);
	mutex_unlock(&pfe->epc->lock);
	pfe_wr(pfe, PFE_EVENT_ENABLE, 0);
	pfe_wr(pfe, PFE_CTRL, 0);
	free_irq(pci_irq_vector(pdev, 0), pfe);
	pfe_dma_remove(pfe);
	pci_free_irq_vectors(pdev);
	pci_epc_mem_exit(pfe->epc);
	pfe_reset(pfe);
	pci_clear_master(pdev);
}

static const struct pci_device_id pfe_ids[] = {
	{ PCI_DEVICE(PFE_VENDOR_ID, PFE_DEVICE_ID) },
	{ }
};
MODULE_DEVICE_TABLE(pci, pfe_ids);

static struct pci_driver pfe_driver = {
	.name = DRV_NAME,
	.id_table = pfe_ids,
	.probe = pfe_probe,
	.remove = pfe_remove,
};
module_pci_driver(pfe_driver);

MODULE_DESCRIPTION("PCI endpoint controller driver for QEMU's pciefw-epc");
MODULE_LICENSE("GPL");
