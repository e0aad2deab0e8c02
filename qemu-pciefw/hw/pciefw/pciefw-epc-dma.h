/*
 * pciefw-epc's DMA engine: copies between the endpoint guest's memory and
 * the host's, asynchronously (docs/epc.md 12 of the pciefw project)
 *
 * The engine knows nothing of the connection: pciefw-epc.c hands it the
 * few things it needs as PfEpcDmaOps, and calls it back on the events of
 * the connection (output drained, the link gone); its reads are the
 * connection's requests, completed through their callbacks.
 *
 * Copyright (c) 2025 The pciefw authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef PCIEFW_EPC_DMA_H
#define PCIEFW_EPC_DMA_H

#include "exec/hwaddr.h"
#include "hw/pci/pci_device.h"
#include "pciefw-conn.h"

/* epc.md 12: the engine's registers in BAR0 */
#define PF_EPC_DMA_BASE         0x800
#define PF_EPC_DMA_END          0x840

typedef struct PfEpcDma PfEpcDma;

typedef struct PfEpcDmaOps {
    /* The session's max payload if a host is connected, else 0. */
    uint32_t (*link)(void *opaque);
    /*
     * Copy @len bytes at host address @host into @dest now, from the
     * host's guest memory where it shares it (spec 10); false: they must
     * be asked for by a DmaRead.
     */
    bool (*read_now)(void *opaque, uint64_t host, void *dest, uint32_t len);
    /*
     * Send a DmaRead of @req->size bytes at @host for @req (the
     * connection gives it its tag).  False if it cannot be sent (no
     * link); once true, @req->complete runs exactly once, with status -1
     * if the link goes first.
     */
    bool (*dma_read)(void *opaque, PCIeFwRequest *req, uint64_t host);
    /* Write to host memory: a copy or a posted DmaWrite; false: no link. */
    bool (*dma_write)(void *opaque, uint64_t host, const void *data,
                      uint32_t len);
    /* Bytes queued for the host and not yet taken by the socket. */
    size_t (*backlog)(void *opaque);
    /*
     * The host address window offset @off maps to, and how many bytes
     * from there stay in its region; false if no region maps it.
     */
    bool (*window)(void *opaque, uint64_t off, uint64_t *host,
                   uint64_t *room);
    /* A transfer ended (DMA_STATUS says how): interrupt the guest. */
    void (*ended)(void *opaque);
} PfEpcDmaOps;

/*
 * An engine for @pdev, whose BAR @window_bar (@window_size bytes) is the
 * outbound window: bus addresses inside it go to the host.
 */
PfEpcDma *pf_epc_dma_new(PCIDevice *pdev, int window_bar,
                         uint64_t window_size, const PfEpcDmaOps *ops,
                         void *opaque);
void pf_epc_dma_free(PfEpcDma *d);
void pf_epc_dma_reset(PfEpcDma *d);

/* BAR0 accesses in [PF_EPC_DMA_BASE, PF_EPC_DMA_END), 4-byte aligned. */
uint32_t pf_epc_dma_reg_read(PfEpcDma *d, hwaddr addr);
void pf_epc_dma_reg_write(PfEpcDma *d, hwaddr addr, uint32_t val);

/* The connection's output drained. */
void pf_epc_dma_kick(PfEpcDma *d);
/* The host went away: a transfer that needs it fails. */
void pf_epc_dma_link_down(PfEpcDma *d);

#endif
