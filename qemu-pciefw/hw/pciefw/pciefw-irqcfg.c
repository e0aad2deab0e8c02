/*
 * pciefw: the function's MSI and MSI-X settings, told to the endpoint
 * (docs/protocol.md 12; see pciefw-irqcfg.h).
 *
 * Copyright (c) 2025 The pciefw authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "hw/pci/msi.h"
#include "hw/pci/msix.h"
#include "hw/pci/pci.h"
#include "trace.h"
#include "pciefw-irqcfg.h"

#include "protocol/pciefw.h"

/* An MSI-X entry as a reset leaves it: masked, address and data 0. */
static const struct pf_msix_entry pciefw_irqcfg_entry_reset = {
    .masked = true,
};

void pciefw_irqcfg_init(PCIeFwIrqCfg *c, PCIDevice *pdev, PCIeFwConn *conn)
{
    memset(c, 0, sizeof(*c));
    c->pdev = pdev;
    c->conn = conn;
    c->entries_told = g_new0(struct pf_msix_entry, PCIEFW_MAX_MSIX_VECTORS);
}

void pciefw_irqcfg_free(PCIeFwIrqCfg *c)
{
    g_clear_pointer(&c->entries_told, g_free);
    c->active = false;
}

/* The MSI capability and MSI-X control bits as the guest left them. */
static void pciefw_irqcfg_read(PCIDevice *pdev, struct pf_interrupt_config *o)
{
    memset(o, 0, sizeof(*o));
    if (msi_present(pdev)) {
        const uint8_t *cap = pdev->config + pdev->msi_cap;
        uint16_t flags = pci_get_word(cap + PCI_MSI_FLAGS);
        bool wide = flags & PCI_MSI_FLAGS_64BIT;

        o->msi_enabled = flags & PCI_MSI_FLAGS_ENABLE;
        if (o->msi_enabled) {
            /* QEMU keeps QSIZE within what the capability offers. */
            o->msi_vectors = 1u << ((flags & PCI_MSI_FLAGS_QSIZE) >> 4);
        }
        o->msi_address = pci_get_long(cap + PCI_MSI_ADDRESS_LO);
        if (wide) {
            o->msi_address |= (uint64_t)pci_get_long(cap + PCI_MSI_ADDRESS_HI)
                              << 32;
        }
        o->msi_data = pci_get_word(cap + (wide ? PCI_MSI_DATA_64
                                               : PCI_MSI_DATA_32));
        if (flags & PCI_MSI_FLAGS_MASKBIT) {
            o->msi_mask = pci_get_long(cap + (wide ? PCI_MSI_MASK_64
                                                   : PCI_MSI_MASK_32));
        }
    }
    if (msix_present(pdev)) {
        uint16_t ctrl = pci_get_word(pdev->config + pdev->msix_cap +
                                     PCI_MSIX_FLAGS);

        o->msix_enabled = ctrl & PCI_MSIX_FLAGS_ENABLE;
        o->msix_masked = ctrl & PCI_MSIX_FLAGS_MASKALL;
    }
}

static void pciefw_irqcfg_read_entry(PCIDevice *pdev, unsigned vector,
                                     struct pf_msix_entry *e)
{
    const uint8_t *p = pdev->msix_table + vector * PCI_MSIX_ENTRY_SIZE;

    e->vector = vector;
    e->address = pci_get_quad(p + PCI_MSIX_ENTRY_LOWER_ADDR);
    e->data = pci_get_long(p + PCI_MSIX_ENTRY_DATA);
    e->masked = p[PCI_MSIX_ENTRY_VECTOR_CTRL] & PCI_MSIX_ENTRY_CTRL_MASKBIT;
}

static bool pciefw_irqcfg_entry_same(const struct pf_msix_entry *a,
                                     const struct pf_msix_entry *b)
{
    return a->address == b->address && a->data == b->data &&
           a->masked == b->masked;
}

static bool pciefw_irqcfg_same(const struct pf_interrupt_config *a,
                               const struct pf_interrupt_config *b)
{
    return a->msi_enabled == b->msi_enabled &&
           a->msi_vectors == b->msi_vectors &&
           a->msi_address == b->msi_address && a->msi_data == b->msi_data &&
           a->msi_mask == b->msi_mask && a->msix_enabled == b->msix_enabled &&
           a->msix_masked == b->msix_masked;
}

static unsigned pciefw_irqcfg_n_entries(PCIeFwIrqCfg *c)
{
    return msix_present(c->pdev) ? c->pdev->msix_entries_nr : 0;
}

/*
 * Send @now with @n entries, posted.  What the endpoint holds is updated
 * first: a wait for the output to drain serves the endpoint, and a guest
 * write that lands meanwhile compares with what is on its way.
 */
static void pciefw_irqcfg_send(PCIeFwIrqCfg *c,
                               const struct pf_interrupt_config *now,
                               const struct pf_msix_entry *e, size_t n)
{
    size_t mark = pciefw_conn_mark(c->conn);

    c->told = *now;
    for (size_t i = 0; i < n; i++) {
        c->entries_told[e[i].vector] = e[i];
    }
    trace_pciefw_interrupt_config(now->msi_enabled, now->msi_vectors,
                                  now->msix_enabled, now->msix_masked, n);
    if (pciefw_conn_queued(c->conn, mark,
                           pf_put_interrupt_config(pciefw_conn_out(c->conn),
                                                   now, e, n),
                           "interrupt_config")) {
        pciefw_conn_posted(c->conn);
    }
}

/*
 * Tell the endpoint what differs from what it holds: the MSI fields and
 * MSI-X control bits, and the entries in [@first, @end) -- as many
 * messages as the entries need, each within the max frame (12.5).
 */
static void pciefw_irqcfg_sync(PCIeFwIrqCfg *c, unsigned first, unsigned end)
{
    struct pf_msix_entry batch[PCIEFW_MAX_MSIX_ENTRIES];
    struct pf_interrupt_config now;
    unsigned max, v = first;
    size_t n;

    if (!c->active || !pciefw_conn_up(c->conn)) {
        return;
    }
    max = pf_interrupt_config_max_entries(
              pciefw_conn_session(c->conn)->max_payload);
    end = MIN(end, pciefw_irqcfg_n_entries(c));
    do {
        pciefw_irqcfg_read(c->pdev, &now);
        for (n = 0; v < end && n < max; v++) {
            pciefw_irqcfg_read_entry(c->pdev, v, &batch[n]);
            if (!pciefw_irqcfg_entry_same(&batch[n], &c->entries_told[v])) {
                n++;
            }
        }
        if (n || !pciefw_irqcfg_same(&now, &c->told)) {
            pciefw_irqcfg_send(c, &now, batch, n);
        }
    } while (v < end && c->active && pciefw_conn_up(c->conn));
}

/* The endpoint holds the reset state (12.2). */
static void pciefw_irqcfg_forget(PCIeFwIrqCfg *c)
{
    memset(&c->told, 0, sizeof(c->told));
    for (unsigned v = 0; v < PCIEFW_MAX_MSIX_VECTORS; v++) {
        c->entries_told[v] = pciefw_irqcfg_entry_reset;
        c->entries_told[v].vector = v;
    }
}

void pciefw_irqcfg_begin(PCIeFwIrqCfg *c)
{
    c->active = pciefw_conn_up(c->conn) &&
                (pciefw_conn_session(c->conn)->features &
                 PCIEFW_FEATURE_INTERRUPT_CONFIG);
    pciefw_irqcfg_forget(c);
    pciefw_irqcfg_sync(c, 0, PCIEFW_MAX_MSIX_VECTORS);
}

void pciefw_irqcfg_end(PCIeFwIrqCfg *c)
{
    c->active = false;
}

void pciefw_irqcfg_reset(PCIeFwIrqCfg *c)
{
    if (c->active) {
        pciefw_irqcfg_forget(c);
    }
}

void pciefw_irqcfg_config_written(PCIeFwIrqCfg *c)
{
    pciefw_irqcfg_sync(c, 0, 0);
}

void pciefw_irqcfg_entry_written(void *opaque, unsigned vector)
{
    pciefw_irqcfg_sync(opaque, vector, vector + 1);
}
