/*
 * pciefw: the function's MSI-X table and PBA, wherever its endpoint puts
 * them in its BARs (docs/protocol.md 4.2).
 *
 * msix_init() maps its table and PBA regions straight into the BAR.  At an
 * offset that is not a multiple of the page (pci-epf-test puts its table
 * at 0x80), a table of more than a page then covers whole pages at an
 * offset within itself that is not page aligned, which TCG cannot
 * represent: its TLB keeps the section number in the low bits of that
 * offset (accel/tcg/cputlb.c), and the first load from such a page aborts
 * QEMU in iotlb_to_section().  So the table and PBA go into containers
 * that nothing maps, and each BAR holding one of them gets a window: one
 * MMIO region, page aligned, over the pages they touch, which hands every
 * access to the table, the PBA or the BAR's forwarding region.
 *
 * Copyright (c) 2025 The pciefw authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_PCIEFW_MSIX_H
#define HW_PCIEFW_MSIX_H

#include "system/memory.h"
#include "hw/pci/pci_device.h"

#define PCIEFW_MSIX_PARTS 2     /* the table and the PBA */

typedef struct PCIeFwMsix PCIeFwMsix;

/* The guest wrote MSI-X table entry @vector. */
typedef void PCIeFwMsixWritten(void *opaque, unsigned vector);

typedef struct PCIeFwMsixWindow {
    PCIeFwMsix *m;
    uint8_t bar;
    bool mapped;
    hwaddr base;                /* offset of @mr in the BAR */
    MemoryRegion mr;
    MemoryRegion *container;    /* the BAR as mapped */
    MemoryRegion *fwd;          /* what the rest of its pages forward to */
} PCIeFwMsixWindow;

struct PCIeFwMsix {
    PCIDevice *pdev;
    /* [0]: the table, [1]: the PBA */
    uint8_t part_bar[PCIEFW_MSIX_PARTS];
    uint64_t part_offset[PCIEFW_MSIX_PARTS];
    MemoryRegion *part_mr[PCIEFW_MSIX_PARTS];
    /* msix_init()'s BARs: one per distinct BAR, never mapped */
    MemoryRegion space[PCIEFW_MSIX_PARTS];
    PCIeFwMsixWindow win[PCIEFW_MSIX_PARTS];
    unsigned n_win;
    PCIeFwMsixWritten *table_written;
    void *opaque;
};

/*
 * msix_init() for @pdev with @nentries vectors, the table at
 * @table_offset of BAR @table_bar and the PBA at @pba_offset of BAR
 * @pba_bar.  @bar_mr[i] is what BAR i maps (a container) and @bar_fwd[i]
 * the region below the window that forwards its accesses; both present
 * for the BARs named.  Every guest write to the table passes through the
 * window: @table_written(@opaque, entry) follows each, once the table
 * holds it.
 */
bool pciefw_msix_init(PCIeFwMsix *m, PCIDevice *pdev, uint32_t nentries,
                      MemoryRegion *const bar_mr[],
                      MemoryRegion *const bar_fwd[],
                      uint8_t table_bar, uint64_t table_offset,
                      uint8_t pba_bar, uint64_t pba_offset, uint8_t cap_pos,
                      PCIeFwMsixWritten *table_written, void *opaque,
                      Error **errp);

/* msix_unuse_all_vectors() and msix_uninit(); nothing if not initialized. */
void pciefw_msix_uninit(PCIeFwMsix *m);

#endif
