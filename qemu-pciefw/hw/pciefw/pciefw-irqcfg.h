/*
 * pciefw: the function's MSI and MSI-X settings, told to the endpoint
 * (docs/protocol.md 12).
 *
 * QEMU emulates the function's MSI and MSI-X capabilities and its MSI-X
 * table.  With PCIEFW_FEATURE_INTERRUPT_CONFIG negotiated, the endpoint
 * is told what the guest programmed there: this keeps what the endpoint
 * holds -- the reset state at the start of each session and after each
 * Reset -- and sends an InterruptConfig, posted, whenever the guest's
 * settings differ from it.
 *
 * Copyright (c) 2025 The pciefw authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_PCIEFW_IRQCFG_H
#define HW_PCIEFW_IRQCFG_H

#include "hw/pci/pci_device.h"
#include "pciefw-conn.h"
#include "protocol/msg.h"

typedef struct PCIeFwIrqCfg {
    PCIDevice *pdev;
    PCIeFwConn *conn;
    bool active;                /* a session with the feature is ready */
    /* What the endpoint holds (12.3), entry by entry for the table. */
    struct pf_interrupt_config told;
    struct pf_msix_entry *entries_told;     /* PCIEFW_MAX_MSIX_VECTORS */
} PCIeFwIrqCfg;

void pciefw_irqcfg_init(PCIeFwIrqCfg *c, PCIDevice *pdev, PCIeFwConn *conn);
void pciefw_irqcfg_free(PCIeFwIrqCfg *c);

/*
 * The session serves requests: if it negotiated the feature, the
 * endpoint holds the reset state; tell it what differs (12.3).
 */
void pciefw_irqcfg_begin(PCIeFwIrqCfg *c);
/* The session is gone: nothing is sent until the next one begins. */
void pciefw_irqcfg_end(PCIeFwIrqCfg *c);
/* A Reset was forwarded: the endpoint holds the reset state again. */
void pciefw_irqcfg_reset(PCIeFwIrqCfg *c);
/* The guest wrote the config space QEMU keeps: MSI or MSI-X may differ. */
void pciefw_irqcfg_config_written(PCIeFwIrqCfg *c);
/* The guest wrote MSI-X table entry @vector (@opaque: the PCIeFwIrqCfg). */
void pciefw_irqcfg_entry_written(void *opaque, unsigned vector);

#endif
