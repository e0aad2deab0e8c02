/* SPDX-License-Identifier: GPL-2.0 */
/*
 * pciefw_epc: the registers of QEMU's pciefw-epc device (docs/epc.md,
 * cited by section: "epc.md 3.2") and what the driver's files share.
 */
#ifndef PCIEFW_EPC_H
#define PCIEFW_EPC_H

#include <linux/bits.h>
#include <linux/io.h>
#include <linux/pci.h>
#include <linux/pci-epc.h>
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
#define PFE_VERSION_MINOR	GENMASK(15, 0)
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
#define PFE_EV_DMA		BIT(3)
/* The events the driver takes (HOST_IRQ_CONFIG is read on demand). */
#define PFE_EV_ALL		(PFE_EV_LINK_UP | PFE_EV_LINK_DOWN | \
				 PFE_EV_HOST_RESET | PFE_EV_DMA)
#define PFE_EV_HOST_IRQ_CONFIG	BIT(4)
#define PFE_RAISE_IRQ		0x024
#define PFE_RAISE_KIND		GENMASK(1, 0)
#define PFE_RAISE_VECTOR	GENMASK(27, 16)
#define PFE_RAISE_STATUS	0x028
#define PFE_RAISE_SENT		0
#define PFE_RAISE_NO_LINK	1
#define PFE_INTX		0x02c

/* epc.md 3.1 */
#define PFE_FN_ID		0x040
#define PFE_FN_SUBSYS		0x044
#define PFE_FN_CLASS_REV	0x048
#define PFE_FN_INTX_PIN		0x04c
#define PFE_FN_MSI_VECTORS	0x050
#define PFE_FN_MSIX_VECTORS	0x054
#define PFE_FN_MSIX_TABLE	0x058
#define PFE_FN_MSIX_PBA		0x05c
#define PFE_MSIX_MAX		2048
#define PFE_MSI_MAX		32

/* epc.md 3.4: the host's MSI/MSI-X settings, device 1.2 and later */
#define PFE_HOST_MSI_CTRL	0x080
#define PFE_HOST_MSI_ENABLED	BIT(0)
#define PFE_HOST_MSI_VECTORS	GENMASK(15, 8)
#define PFE_HOST_MSI_ADDR_LO	0x084
#define PFE_HOST_MSI_ADDR_HI	0x088
#define PFE_HOST_MSI_DATA	0x08c
#define PFE_HOST_MSI_MASK	0x090
#define PFE_HOST_MSIX_CTRL	0x094
#define PFE_HOST_MSIX_ENABLED	BIT(0)

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
/*
 * What a DesignWare controller's outbound iATU needs (its region_align):
 * both ends of a region 4 KiB aligned, the region a multiple of 4 KiB.
 */
#define PFE_MAP_ALIGN		SZ_4K

/* Smallest outbound window worth registering (pci-epf-test's copies). */
#define PFE_MIN_WINDOW		SZ_1M

struct pfe {
	struct pci_dev *pdev;
	struct pci_epc_features features;
	void __iomem *regs;
	struct pci_epc *epc;
	phys_addr_t win_base;
	resource_size_t win_size;
	unsigned int nr_maps;
	/* the device shows the host's MSI/MSI-X settings (epc.md 3.4) */
	bool host_irq;
	/* CPU address each outbound region maps, 0 if free (epc->lock) */
	phys_addr_t map_addr[PFE_MAX_MAPS];
	/* what the function declared (epc->lock) */
	u32 msi_vectors;
	u32 msix_vectors;
	u8 intx_pin;
	/* the BARs set, as set_bar was given them (epc->lock) */
	struct pci_epf_bar bars[PCI_STD_NUM_BARS];
	struct pfe_dma *dma;
};

static inline u32 pfe_rd(struct pfe *pfe, u32 reg)
{
	return ioread32(pfe->regs + reg);
}

static inline void pfe_wr(struct pfe *pfe, u32 reg, u32 val)
{
	iowrite32(val, pfe->regs + reg);
}

/* pciefw_epc_unbind.c */
void pfe_unbind_functions(struct pfe *pfe);

/* pciefw_epc_dma.c */
int pfe_dma_probe(struct pfe *pfe);
void pfe_dma_remove(struct pfe *pfe);
void pfe_dma_event(struct pfe *pfe);
const char *pfe_dma_name(struct pfe *pfe);

#endif
