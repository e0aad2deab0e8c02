/*
 * pciefw-epc: the function's MSI and MSI-X settings as the host's software
 * programmed them (spec 12), shown to the endpoint guest (epc.md 3.4):
 * the MSI capability and the MSI-X control bits in read-only registers,
 * the MSI-X table's entries written into the function's own memory where
 * it declared its table, as a DesignWare controller's host writes land in
 * the BAR memory itself.
 *
 * Copyright (c) 2025 The pciefw authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "hw/pci/pci.h"
#include "pciefw-epc.h"

#include "protocol/pciefw.h"

/* epc.md 3.4 */
#define EPC_HOST_MSI_CTRL       0x080
#define EPC_HOST_MSI_ADDR_LO    0x084
#define EPC_HOST_MSI_ADDR_HI    0x088
#define EPC_HOST_MSI_DATA       0x08c
#define EPC_HOST_MSI_MASK       0x090
#define EPC_HOST_MSIX_CTRL      0x094

#define EPC_MSIX_ENTRY_SIZE     16

bool epc_irqcfg_reg_read(PfEpcState *s, hwaddr addr, uint64_t *val)
{
    const struct pf_interrupt_config *c = &s->host_irq;

    switch (addr) {
    case EPC_HOST_MSI_CTRL:
        *val = c->msi_enabled | c->msi_vectors << 8;
        return true;
    case EPC_HOST_MSI_ADDR_LO:
        *val = (uint32_t)c->msi_address;
        return true;
    case EPC_HOST_MSI_ADDR_HI:
        *val = c->msi_address >> 32;
        return true;
    case EPC_HOST_MSI_DATA:
        *val = c->msi_data;
        return true;
    case EPC_HOST_MSI_MASK:
        *val = c->msi_mask;
        return true;
    case EPC_HOST_MSIX_CTRL:
        *val = c->msix_enabled | c->msix_masked << 1;
        return true;
    default:
        return false;
    }
}

/*
 * Where the function's MSI-X table lies in the endpoint guest's memory
 * now: its BAR as the host was described it and as it is, enabled, not at
 * address 0 (epc.md 3.2's rule for what a BAR serves); 0 if nowhere.
 * @entries: how many whole entries the BAR holds from there.
 */
static uint64_t epc_irqcfg_table(PfEpcState *s, uint32_t *entries)
{
    uint32_t bir = s->live.msix_table & 7;
    uint64_t off = s->live.msix_table & ~7u;
    const PfEpcBar *b = epc_bar(s, bir, false);

    *entries = 0;
    if (!s->live.msix_vectors || !b || off >= b->size) {
        return 0;
    }
    *entries = MIN((b->size - off) / EPC_MSIX_ENTRY_SIZE,
                   s->live.msix_vectors);
    return b->addr + off;
}

static void epc_irqcfg_put_entry(uint8_t *p, uint64_t address, uint32_t data,
                                 bool masked)
{
    stl_le_p(p + 0, address);
    stl_le_p(p + 4, address >> 32);
    stl_le_p(p + 8, data);
    stl_le_p(p + 12, masked);
}

static bool epc_irqcfg_is_reset(const struct pf_interrupt_config *c)
{
    return !c->msi_enabled && !c->msi_vectors && !c->msi_address &&
           !c->msi_data && !c->msi_mask && !c->msix_enabled &&
           !c->msix_masked;
}

/*
 * The endpoint holds the reset state (spec 12.3): a session starts, the
 * host reset the function, or the link is down.  With @table the table's
 * entries in the function's memory are written masked, address and data
 * 0, so that no entry of an earlier host is taken for this one's.
 */
void epc_irqcfg_reset(PfEpcState *s, bool table)
{
    bool changed = !epc_irqcfg_is_reset(&s->host_irq);
    uint32_t n;
    uint64_t base = table ? epc_irqcfg_table(s, &n) : 0;

    memset(&s->host_irq, 0, sizeof(s->host_irq));
    if (base) {
        g_autofree uint8_t *buf = g_malloc(n * EPC_MSIX_ENTRY_SIZE);

        for (uint32_t v = 0; v < n; v++) {
            epc_irqcfg_put_entry(buf + v * EPC_MSIX_ENTRY_SIZE, 0, 0, true);
        }
        pci_dma_write(PCI_DEVICE(s), base, buf, n * EPC_MSIX_ENTRY_SIZE);
    }
    if (changed) {
        epc_irqcfg_changed(s);
    }
}

/* Spec 12.5, in context: the vectors the function declared. */
static bool epc_irqcfg_declared(PfEpcState *s, const Pciefw__InterruptConfig *c,
                                char *err, size_t errlen)
{
    if (c->msi_vectors > s->live.msi_vectors) {
        snprintf(err, errlen, "%u MSI vectors enabled, of %u declared",
                 c->msi_vectors, s->live.msi_vectors);
        return false;
    }
    for (size_t i = 0; i < c->n_msix_entries; i++) {
        if (c->msix_entries[i]->vector >= s->live.msix_vectors) {
            snprintf(err, errlen, "MSI-X entry %u, of %u vectors declared",
                     c->msix_entries[i]->vector, s->live.msix_vectors);
            return false;
        }
    }
    return true;
}

int epc_on_interrupt_config(void *opaque, const PfMessage *m, char *err,
                            size_t errlen)
{
    PfEpcState *s = opaque;
    const Pciefw__InterruptConfig *c = m->interrupt_config;
    struct pf_interrupt_config *h = &s->host_irq;
    uint32_t n;
    uint64_t base;

    if (!(pciefw_conn_session(s->conn)->features &
          PCIEFW_FEATURE_INTERRUPT_CONFIG)) {
        snprintf(err, errlen, "interrupt_config without the interrupt "
                 "config feature negotiated");
        return PF_ERR_UNEXPECTED;
    }
    if (!epc_irqcfg_declared(s, c, err, errlen)) {
        return PF_ERR_INVALID;
    }
    /* A host message: what the window fetched ahead is stale (5.1). */
    s->ra.len = 0;
    h->msi_enabled = c->msi_enabled;
    h->msi_vectors = c->msi_vectors;
    h->msi_address = c->msi_address;
    h->msi_data = c->msi_data;
    h->msi_mask = c->msi_mask;
    h->msix_enabled = c->msix_enabled;
    h->msix_masked = c->msix_masked;
    base = epc_irqcfg_table(s, &n);
    for (size_t i = 0; i < c->n_msix_entries && base; i++) {
        const Pciefw__MsixEntry *e = c->msix_entries[i];
        uint8_t entry[EPC_MSIX_ENTRY_SIZE];

        if (e->vector >= n) {
            continue;           /* past a BAR made smaller meanwhile */
        }
        epc_irqcfg_put_entry(entry, e->address, e->data, e->masked);
        pci_dma_write(PCI_DEVICE(s), base + e->vector * EPC_MSIX_ENTRY_SIZE,
                      entry, sizeof(entry));
    }
    epc_irqcfg_changed(s);
    return PF_OK;
}
