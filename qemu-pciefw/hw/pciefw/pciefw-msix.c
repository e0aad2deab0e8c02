/*
 * pciefw: the function's MSI-X table and PBA behind page-aligned windows
 * (see pciefw-msix.h for why).
 *
 * Copyright (c) 2025 The pciefw authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/log.h"
#include "qemu/range.h"
#include "qapi/error.h"
#include "exec/target_page.h"
#include "hw/pci/msix.h"
#include "pciefw-msix.h"

/*
 * The region serving @size bytes at @addr of window @w, and the offset
 * in it; NULL for an access that straddles the edge of the table or
 * PBA (which region answers would be arbitrary: it is refused).
 */
static MemoryRegion *pciefw_msix_route(PCIeFwMsixWindow *w, hwaddr addr,
                                       unsigned size, hwaddr *offset)
{
    PCIeFwMsix *m = w->m;
    hwaddr in_bar = w->base + addr;

    for (int i = 0; i < PCIEFW_MSIX_PARTS; i++) {
        uint64_t start = m->part_offset[i];
        uint64_t len = memory_region_size(m->part_mr[i]);

        if (m->part_bar[i] != w->bar ||
            !ranges_overlap(in_bar, size, start, len)) {
            continue;
        }
        if (in_bar < start || in_bar + size > start + len) {
            return NULL;
        }
        *offset = in_bar - start;
        return m->part_mr[i];
    }
    *offset = in_bar;
    return w->fwd;
}

static void pciefw_msix_straddle(PCIeFwMsixWindow *w, const char *what,
                                 hwaddr addr, unsigned size)
{
    qemu_log_mask(LOG_GUEST_ERROR, "pciefw: %u-byte %s at 0x%" HWADDR_PRIx
                  " of BAR%u straddles the MSI-X table or PBA: refused\n",
                  size, what, w->base + addr, w->bar);
}

static MemTxResult pciefw_msix_window_read(void *opaque, hwaddr addr,
                                           uint64_t *val, unsigned size,
                                           MemTxAttrs attrs)
{
    PCIeFwMsixWindow *w = opaque;
    hwaddr offset;
    MemoryRegion *mr = pciefw_msix_route(w, addr, size, &offset);

    if (!mr) {
        pciefw_msix_straddle(w, "read", addr, size);
        *val = MAKE_64BIT_MASK(0, size * 8);
        return MEMTX_OK;
    }
    return memory_region_dispatch_read(mr, offset, val,
                                       size_memop(size) | MO_LE, attrs);
}

static MemTxResult pciefw_msix_window_write(void *opaque, hwaddr addr,
                                            uint64_t val, unsigned size,
                                            MemTxAttrs attrs)
{
    PCIeFwMsixWindow *w = opaque;
    PCIeFwMsix *m = w->m;
    hwaddr offset;
    MemoryRegion *mr = pciefw_msix_route(w, addr, size, &offset);
    MemTxResult r;

    if (!mr) {
        pciefw_msix_straddle(w, "write", addr, size);
        return MEMTX_OK;
    }
    r = memory_region_dispatch_write(mr, offset, val,
                                     size_memop(size) | MO_LE, attrs);
    if (mr == m->part_mr[0] && m->table_written) {
        for (hwaddr e = offset / PCI_MSIX_ENTRY_SIZE;
             e <= (offset + size - 1) / PCI_MSIX_ENTRY_SIZE; e++) {
            m->table_written(m->opaque, e);
        }
    }
    return r;
}

/* Every size through: the region behind says what it accepts. */
static const MemoryRegionOps pciefw_msix_window_ops = {
    .read_with_attrs = pciefw_msix_window_read,
    .write_with_attrs = pciefw_msix_window_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .min_access_size = 1, .max_access_size = 8 },
    .impl = { .min_access_size = 1, .max_access_size = 8 },
};

/* msix_init()'s stand-in for BAR @bar: as large, never mapped. */
static MemoryRegion *pciefw_msix_space(PCIeFwMsix *m, uint8_t bar,
                                       MemoryRegion *const bar_mr[])
{
    g_autofree char *name = NULL;

    for (unsigned i = 0; i < m->n_win; i++) {
        if (m->win[i].bar == bar) {
            return &m->space[i];
        }
    }
    name = g_strdup_printf("pciefw-msix-bar%u", bar);
    memory_region_init(&m->space[m->n_win], OBJECT(m->pdev), name,
                       memory_region_size(bar_mr[bar]));
    m->win[m->n_win].bar = bar;
    return &m->space[m->n_win++];
}

/* Map window @w over the whole pages its BAR's table and PBA touch. */
static void pciefw_msix_map_window(PCIeFwMsixWindow *w)
{
    PCIeFwMsix *m = w->m;
    uint64_t page = qemu_target_page_size();
    uint64_t lo = UINT64_MAX, hi = 0, end;
    g_autofree char *name = g_strdup_printf("pciefw-msix-window-bar%u",
                                            w->bar);

    for (int i = 0; i < PCIEFW_MSIX_PARTS; i++) {
        if (m->part_bar[i] == w->bar) {
            lo = MIN(lo, m->part_offset[i]);
            hi = MAX(hi, m->part_offset[i] +
                         memory_region_size(m->part_mr[i]));
        }
    }
    /* A BAR smaller than a page holds no whole page: it all goes in. */
    w->base = QEMU_ALIGN_DOWN(lo, page);
    end = MIN(QEMU_ALIGN_UP(hi, page), memory_region_size(w->container));
    memory_region_init_io(&w->mr, OBJECT(m->pdev), &pciefw_msix_window_ops,
                          w, name, end - w->base);
    /*
     * An access here is handed on to the table, the PBA or the forwarding
     * region, each guarded as the device's own: the window itself is not.
     */
    w->mr.disable_reentrancy_guard = true;
    /* Above the forwarding region, at priority -1. */
    memory_region_add_subregion_overlap(w->container, w->base, &w->mr, 0);
    w->mapped = true;
}

bool pciefw_msix_init(PCIeFwMsix *m, PCIDevice *pdev, uint32_t nentries,
                      MemoryRegion *const bar_mr[],
                      MemoryRegion *const bar_fwd[],
                      uint8_t table_bar, uint64_t table_offset,
                      uint8_t pba_bar, uint64_t pba_offset, uint8_t cap_pos,
                      PCIeFwMsixWritten *table_written, void *opaque,
                      Error **errp)
{
    MemoryRegion *table_space, *pba_space;

    memset(m, 0, sizeof(*m));
    m->pdev = pdev;
    m->table_written = table_written;
    m->opaque = opaque;
    table_space = pciefw_msix_space(m, table_bar, bar_mr);
    pba_space = pciefw_msix_space(m, pba_bar, bar_mr);
    if (msix_init(pdev, nentries, table_space, table_bar, table_offset,
                  pba_space, pba_bar, pba_offset, cap_pos, errp)) {
        return false;
    }
    m->part_bar[0] = table_bar;
    m->part_offset[0] = table_offset;
    m->part_mr[0] = &pdev->msix_table_mmio;
    m->part_bar[1] = pba_bar;
    m->part_offset[1] = pba_offset;
    m->part_mr[1] = &pdev->msix_pba_mmio;
    for (unsigned i = 0; i < m->n_win; i++) {
        PCIeFwMsixWindow *w = &m->win[i];

        w->m = m;
        w->container = bar_mr[w->bar];
        w->fwd = bar_fwd[w->bar];
        pciefw_msix_map_window(w);
    }
    return true;
}

void pciefw_msix_uninit(PCIeFwMsix *m)
{
    PCIDevice *pdev = m->pdev;

    if (!pdev || !msix_present(pdev)) {
        return;
    }
    for (unsigned i = 0; i < m->n_win; i++) {
        if (m->win[i].mapped) {
            memory_region_del_subregion(m->win[i].container, &m->win[i].mr);
            m->win[i].mapped = false;
        }
    }
    msix_unuse_all_vectors(pdev);
    msix_uninit(pdev, &m->space[0], &m->space[m->n_win - 1]);
}
