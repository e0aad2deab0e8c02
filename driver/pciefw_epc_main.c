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

#include <linux/bits.h>
#include <linux/bitfield.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/kernel.h>
#include <linux/log2.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/pci-epc.h>
#include <linux/pci-epf.h>
#include <linux/sizes.h>

#define DRV_NAME "pciefw_epc"

/* epc.md 1 */
#define PFE_VENDOR_ID		0x1234
#define PFE_DEVICE_ID		0xfe0c
#define PFE_REGS_BAR		0
#define PFE_REGS_SIZE		0x1000
#define PFE_WINDOW_BAR		2

/* epc.md 2 */
#define PFE_ID			0x000
#define PFE_ID_VALUE		0x43504546
#define PFE_VERSION		0x004
#define PFE_VERSION_MAJOR	GENMASK(31, 16)
#define PFE_WINDOW_SIZE		0x008
#define PFE_MAP_SLOTS		0x00c
#define PFE_CTRL		0x010
#define PFE_CTRL_START		BIT(0)
#define PFE_STATUS		0x014
#define PFE_STATUS_STARTED	BIT(0)
#define PFE_STATUS_LINK_UP	BIT(1)
#define PFE_STATUS_START_ERROR	BIT(2)
#define PFE_ERROR		0x018
#define PFE_EVENTS		0x01c
#define PFE_EVENT_ENABLE	0x020
#define PFE_EV_LINK_UP		BIT(0)
#define PFE_EV_LINK_DOWN	BIT(1)
#define PFE_EV_HOST_RESET	BIT(2)
#define PFE_EV_ALL		(PFE_EV_LINK_UP | PFE_EV_LINK_DOWN | \
				 PFE_EV_HOST_RESET)
#define PFE_RAISE_IRQ		0x024
#define PFE_RAISE_KIND		GENMASK(1, 0)
#define PFE_RAISE_VECTOR	GENMASK(27, 16)

/* epc.md 3.1 */
#define PFE_FN_ID		0x040
#define PFE_FN_SUBSYS		0x044
#define PFE_FN_CLASS_REV	0x048
#define PFE_FN_INTX_PIN		0x04c
#define PFE_FN_MSI_VECTORS	0x050
#define PFE_FN_MSIX_VECTORS	0x054
#define PFE_FN_MSIX_TABLE	0x058
#define PFE_FN_MSIX_PBA		0x05c
#define PFE_MSIX_BAR		GENMASK(2, 0)
#define PFE_MSIX_MAX		2048
#define PFE_MSI_MAX		32

/* epc.md 3.2: BAR n's registers at PFE_BAR(n) + register */
#define PFE_BAR(n)		(0x100 + 0x20 * (n))
#define PFE_BAR_ADDR_LO		0x00
#define PFE_BAR_ADDR_HI		0x04
#define PFE_BAR_SIZE_LO		0x08
#define PFE_BAR_SIZE_HI		0x0c
#define PFE_BAR_FLAGS		0x10
#define PFE_BAR_FLAGS_MASK	(PCI_BASE_ADDRESS_SPACE_IO | \
				 PCI_BASE_ADDRESS_MEM_TYPE_64 | \
				 PCI_BASE_ADDRESS_MEM_PREFETCH)
#define PFE_BAR_ENABLE		BIT(31)

/* epc.md 5: outbound region r's registers at PFE_MAP(r) + register */
#define PFE_MAP(r)		(0x400 + 0x20 * (r))
#define PFE_MAP_WIN_OFFSET	0x00
#define PFE_MAP_SIZE		0x04
#define PFE_MAP_HOST_LO		0x08
#define PFE_MAP_HOST_HI		0x0c
#define PFE_MAP_CTRL		0x10
#define PFE_MAP_ENABLE		BIT(0)
#define PFE_MAX_MAPS		16

/* Smallest outbound window worth registering (pci-epf-test's copies). */
#define PFE_MIN_WINDOW		SZ_1M

struct pfe {
	struct pci_dev *pdev;
	void __iomem *regs;
	struct pci_epc *epc;
	phys_addr_t win_base;
	resource_size_t win_size;
	unsigned int nr_maps;
	/* CPU address each outbound region maps, 0 if free (epc->lock) */
	phys_addr_t map_addr[PFE_MAX_MAPS];
	/* what the function declared (epc->lock) */
	u32 msi_vectors;
	u32 msix_vectors;
};

/*
 * Linked at pci-epf-test's defaults: no notifier is needed (the function
 * polls its registers), BARs are allocated at power-of-two sizes (align 0),
 * any BAR may be 32- or 64-bit.
 */
static const struct pci_epc_features pfe_features = {
	.linkup_notifier = false,
	.core_init_notifier = false,
	.msi_capable = true,
	.msix_capable = true,
};

static u32 pfe_rd(struct pfe *pfe, u32 reg)
{
	return ioread32(pfe->regs + reg);
}

static void pfe_wr(struct pfe *pfe, u32 reg, u32 val)
{
	iowrite32(val, pfe->regs + reg);
}

/* Only physical function 0 exists (max_functions = 1), no virtual ones. */
static bool pfe_bad_fn(u8 func_no, u8 vfunc_no)
{
	return func_no != 0 || vfunc_no != 0;
}

static int pfe_write_header(struct pci_epc *epc, u8 func_no, u8 vfunc_no,
			    struct pci_epf_header *hdr)
{
	struct pfe *pfe = epc_get_drvdata(epc);

	if (pfe_bad_fn(func_no, vfunc_no) || hdr->interrupt_pin > PCI_INTERRUPT_INTD)
		return -EINVAL;
	/* epc.md 3.1; cache_line_size is the host's (it emulates the header) */
	pfe_wr(pfe, PFE_FN_ID, hdr->vendorid | (u32)hdr->deviceid << 16);
	pfe_wr(pfe, PFE_FN_SUBSYS,
	       hdr->subsys_vendor_id | (u32)hdr->subsys_id << 16);
	pfe_wr(pfe, PFE_FN_CLASS_REV, hdr->revid | (u32)hdr->progif_code << 8 |
	       (u32)hdr->subclass_code << 16 | (u32)hdr->baseclass_code << 24);
	pfe_wr(pfe, PFE_FN_INTX_PIN, hdr->interrupt_pin);
	return 0;
}

/* The size rules the device checks at START (epc.md 4, ERROR 2 and 3). */
static bool pfe_bar_ok(const struct pci_epf_bar *bar)
{
	u64 size = bar->size;

	if (!is_power_of_2(size))
		return false;
	if (bar->flags & PCI_BASE_ADDRESS_SPACE_IO)
		return size >= 4 && size <= 256;
	if (bar->flags & PCI_BASE_ADDRESS_MEM_TYPE_64)
		return bar->barno < BAR_5 && size >= 16 && size <= SZ_1T;
	return size >= 16 && size <= SZ_2G;
}

static int pfe_set_bar(struct pci_epc *epc, u8 func_no, u8 vfunc_no,
		       struct pci_epf_bar *bar)
{
	struct pfe *pfe = epc_get_drvdata(epc);
	u32 base;

	if (pfe_bad_fn(func_no, vfunc_no) || bar->barno >= PCI_STD_NUM_BARS ||
	    !pfe_bar_ok(bar))
		return -EINVAL;
	base = PFE_BAR(bar->barno);
	pfe_wr(pfe, base + PFE_BAR_ADDR_LO, lower_32_bits(bar->phys_addr));
	pfe_wr(pfe, base + PFE_BAR_ADDR_HI, upper_32_bits(bar->phys_addr));
	pfe_wr(pfe, base + PFE_BAR_SIZE_LO, lower_32_bits((u64)bar->size));
	pfe_wr(pfe, base + PFE_BAR_SIZE_HI, upper_32_bits((u64)bar->size));
	pfe_wr(pfe, base + PFE_BAR_FLAGS,
	       (bar->flags & PFE_BAR_FLAGS_MASK) | PFE_BAR_ENABLE);
	return 0;
}

static void pfe_clear_bar(struct pci_epc *epc, u8 func_no, u8 vfunc_no,
			  struct pci_epf_bar *bar)
{
	struct pfe *pfe = epc_get_drvdata(epc);

	if (pfe_bad_fn(func_no, vfunc_no) || bar->barno >= PCI_STD_NUM_BARS)
		return;
	pfe_wr(pfe, PFE_BAR(bar->barno) + PFE_BAR_FLAGS, 0);
}

/* epc.md 5: program a free region; the device refuses one it cannot map. */
static int pfe_map_addr(struct pci_epc *epc, u8 func_no, u8 vfunc_no,
			phys_addr_t addr, u64 pci_addr, size_t size)
{
	struct pfe *pfe = epc_get_drvdata(epc);
	unsigned int r;
	u32 base;

	if (pfe_bad_fn(func_no, vfunc_no) || !size || addr < pfe->win_base ||
	    size > pfe->win_size || addr - pfe->win_base > pfe->win_size - size)
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
	struct pfe *pfe = epc_get_drvdata(epc);
	unsigned int r;

	if (pfe_bad_fn(func_no, vfunc_no) || !addr)
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
	struct pfe *pfe = epc_get_drvdata(epc);

	if (pfe_bad_fn(func_no, vfunc_no) || mmc > ilog2(PFE_MSI_MAX))
		return -EINVAL;
	pfe->msi_vectors = 1U << mmc;
	pfe_wr(pfe, PFE_FN_MSI_VECTORS, pfe->msi_vectors);
	return 0;
}

/*
 * The host's Multiple Message Enable never reaches the endpoint (epc.md
 * 3.3): report what was declared, as log2.
 */
static int pfe_get_msi(struct pci_epc *epc, u8 func_no, u8 vfunc_no)
{
	struct pfe *pfe = epc_get_drvdata(epc);

	if (pfe_bad_fn(func_no, vfunc_no) || !pfe->msi_vectors)
		return -EINVAL;
	return ilog2(pfe->msi_vectors);
}

/* @count_1: vector count - 1; the PBA follows the table (epc.md 3.1). */
static int pfe_set_msix(struct pci_epc *epc, u8 func_no, u8 vfunc_no,
			u16 count_1, enum pci_barno bir, u32 offset)
{
	struct pfe *pfe = epc_get_drvdata(epc);
	u32 count = (u32)count_1 + 1;
	u32 pba = offset + count * PCI_MSIX_ENTRY_SIZE;

	if (pfe_bad_fn(func_no, vfunc_no) || count > PFE_MSIX_MAX ||
	    bir >= PCI_STD_NUM_BARS || !IS_ALIGNED(offset, 8) || pba < offset)
		return -EINVAL;
	pfe->msix_vectors = count;
	pfe_wr(pfe, PFE_FN_MSIX_VECTORS, count);
	pfe_wr(pfe, PFE_FN_MSIX_TABLE, offset | bir);
	pfe_wr(pfe, PFE_FN_MSIX_PBA, pba | bir);
	return 0;
}

/* Returns the count - 1 (epc.md 3.3: the declared count). */
static int pfe_get_msix(struct pci_epc *epc, u8 func_no, u8 vfunc_no)
{
	struct pfe *pfe = epc_get_drvdata(epc);

	if (pfe_bad_fn(func_no, vfunc_no) || !pfe->msix_vectors)
		return -EINVAL;
	return pfe->msix_vectors - 1;
}

/* epc.md 3.3; @num is 1-based for MSI and MSI-X */
static int pfe_raise_irq(struct pci_epc *epc, u8 func_no, u8 vfunc_no,
			 enum pci_epc_irq_type type, u16 num)
{
	struct pfe *pfe = epc_get_drvdata(epc);
	u32 vector = 0;

	if (pfe_bad_fn(func_no, vfunc_no))
		return -EINVAL;
	switch (type) {
	case PCI_EPC_IRQ_LEGACY:
		break;
	case PCI_EPC_IRQ_MSI:
		if (!num || num > pfe->msi_vectors)
			return -EINVAL;
		vector = num - 1;
		break;
	case PCI_EPC_IRQ_MSIX:
		if (!num || num > pfe->msix_vectors)
			return -EINVAL;
		vector = num - 1;
		break;
	default:
		return -EINVAL;
	}
	pfe_wr(pfe, PFE_RAISE_IRQ, FIELD_PREP(PFE_RAISE_KIND, type) |
	       FIELD_PREP(PFE_RAISE_VECTOR, vector));
	return 0;
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
	struct pfe *pfe = epc_get_drvdata(epc);
	u32 status, err;

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
	struct pfe *pfe = epc_get_drvdata(epc);

	pfe_wr(pfe, PFE_CTRL, 0);
}

static const struct pci_epc_features *
pfe_get_features(struct pci_epc *epc, u8 func_no, u8 vfunc_no)
{
	return pfe_bad_fn(func_no, vfunc_no) ? NULL : &pfe_features;
}

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
	.start = pfe_start,
	.stop = pfe_stop,
	.get_features = pfe_get_features,
	.owner = THIS_MODULE,
};

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
	return IRQ_HANDLED;
}

/* Power-on state: link down, no BAR, no region, no event pending. */
static void pfe_reset(struct pfe *pfe)
{
	unsigned int i;

	pfe_wr(pfe, PFE_CTRL, 0);
	pfe_wr(pfe, PFE_EVENT_ENABLE, 0);
	for (i = 0; i < PCI_STD_NUM_BARS; i++)
		pfe_wr(pfe, PFE_BAR(i) + PFE_BAR_FLAGS, 0);
	for (i = 0; i < PFE_MAX_MAPS; i++)
		pfe_wr(pfe, PFE_MAP(i) + PFE_MAP_CTRL, 0);
	pfe_wr(pfe, PFE_FN_MSI_VECTORS, 0);
	pfe_wr(pfe, PFE_FN_MSIX_VECTORS, 0);
	pfe_wr(pfe, PFE_EVENTS, PFE_EV_ALL);
}

static int pfe_check_device(struct pfe *pfe)
{
	struct device *dev = &pfe->pdev->dev;
	u32 id = pfe_rd(pfe, PFE_ID), ver = pfe_rd(pfe, PFE_VERSION);

	if (id != PFE_ID_VALUE || FIELD_GET(PFE_VERSION_MAJOR, ver) != 1) {
		dev_err(dev, "not a pciefw-epc 1.x (ID %#x, version %#x)\n",
			id, ver);
		return -ENODEV;
	}
	if (!(pci_resource_flags(pfe->pdev, PFE_WINDOW_BAR) & IORESOURCE_MEM) ||
	    pfe->win_size < PFE_MIN_WINDOW) {
		dev_err(dev, "BAR%d is not an outbound window of %d KiB or more\n",
			PFE_WINDOW_BAR, PFE_MIN_WINDOW / SZ_1K);
		return -ENODEV;
	}
	pfe->nr_maps = min_t(u32, pfe_rd(pfe, PFE_MAP_SLOTS), PFE_MAX_MAPS);
	if (!pfe->nr_maps) {
		dev_err(dev, "the device has no outbound regions\n");
		return -ENODEV;
	}
	return 0;
}

static int pfe_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct device *dev = &pdev->dev;
	struct pfe *pfe;
	int ret;

	pfe = devm_kzalloc(dev, sizeof(*pfe), GFP_KERNEL);
	if (!pfe)
		return -ENOMEM;
	pfe->pdev = pdev;
	ret = pcim_enable_device(pdev);
	if (ret)
		return ret;
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
	/* The function's BARs live in coherent memory the device reads. */
	ret = dma_set_mask_and_coherent(dev, DMA_BIT_MASK(64));
	if (ret)
		return ret;
	pfe_reset(pfe);
	pci_set_master(pdev);

	pfe->epc = devm_pci_epc_create(dev, &pfe_epc_ops);
	if (IS_ERR(pfe->epc))
		return PTR_ERR(pfe->epc);
	/* pci_epc_create() leaves it at 0: nothing could bind. */
	pfe->epc->max_functions = 1;
	epc_set_drvdata(pfe->epc, pfe);
	pci_set_drvdata(pdev, pfe);

	ret = pci_epc_mem_init(pfe->epc, pfe->win_base, pfe->win_size, PAGE_SIZE);
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
	dev_info(dev, "endpoint controller %s: %llu MiB outbound window, %u regions\n",
		 dev_name(&pfe->epc->dev), (u64)pfe->win_size / SZ_1M,
		 pfe->nr_maps);
	return 0;

err_vectors:
	pci_free_irq_vectors(pdev);
err_mem:
	pci_epc_mem_exit(pfe->epc);
	return ret;
}

/*
 * Stops the link and quiets the device; the EPC itself is destroyed by
 * devres after this returns.  Unbind the function first (configfs).
 */
static void pfe_remove(struct pci_dev *pdev)
{
	struct pfe *pfe = pci_get_drvdata(pdev);

	pfe_wr(pfe, PFE_EVENT_ENABLE, 0);
	pfe_wr(pfe, PFE_CTRL, 0);
	free_irq(pci_irq_vector(pdev, 0), pfe);
	pci_free_irq_vectors(pdev);
	pci_epc_mem_exit(pfe->epc);
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
