/*
 * pciefw-epc: a PCI endpoint controller whose function is served, over the
 * pciefw protocol, to a host QEMU's pciefw device (docs/epc.md of the
 * pciefw project, "epc.md N"; the protocol is docs/protocol.md, "spec N").
 *
 * The device's parts share this state: the controller and its host
 * requests (pciefw-epc.c), the way to the host's memory: the outbound
 * window and the DMA engine's access (pciefw-epc-window.c); the DMA
 * engine (pciefw-epc-dma.c); the host's MSI/MSI-X settings
 * (pciefw-epc-irqcfg.c); the connection under them is pciefw-conn.c in
 * the endpoint role.
 *
 * Copyright (c) 2025 The pciefw authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_PCIEFW_EPC_H
#define HW_PCIEFW_EPC_H

#include "hw/pci/pci_device.h"
#include "crypto/tlscreds.h"
#include "qom/object.h"
#include "pciefw-conn.h"
#include "pciefw-epc-dma.h"
#include "protocol/msg.h"
#include "protocol/shared_ram.h"

#define TYPE_PCIEFW_EPC "pciefw-epc"
OBJECT_DECLARE_SIMPLE_TYPE(PfEpcState, PCIEFW_EPC)

/* epc.md 1, 5 */
#define EPC_WINDOW_SIZE         (16 * 1024 * 1024)
#define EPC_NUM_MAPS            16
/* The most an outbound read may fetch ahead (epc.md 5.1). */
#define EPC_MAX_READ_AHEAD      (64 * 1024)

typedef struct PfEpcBar {
    uint64_t addr;
    uint64_t size;
    uint32_t flags;
} PfEpcBar;

typedef struct PfEpcMap {
    uint32_t win_offset;
    uint32_t size;
    uint64_t host;
    bool enabled;
} PfEpcMap;

/* The function as programmed, or as latched at START (epc.md 3). */
typedef struct PfEpcFunction {
    uint32_t id, subsys, class_rev, intx_pin;
    uint32_t msi_vectors, msix_vectors, msix_table, msix_pba;
    PfEpcBar bars[PCIEFW_NUM_BARS];
} PfEpcFunction;

/* The host's guest memory, as the host shared it (spec 10). */
typedef struct PfEpcHostMemory {
    struct pf_shared_ram ram;
    bool bus_master;            /* the function's BME, as the host said */
    /* A DmaWrite sent as a message may not be applied yet (10.4). */
    bool msg_write_unfenced;
    uint64_t copies;            /* window accesses done as copies */
} PfEpcHostMemory;

/* What the last outbound read fetched ahead (epc.md 5.1). */
typedef struct PfEpcReadAhead {
    uint8_t *buf;
    uint64_t host;              /* host address of buf[0] */
    uint32_t len;               /* bytes valid, 0: none */
    uint64_t next;              /* reads below this address fetch again */
} PfEpcReadAhead;

struct PfEpcState {
    PCIDevice parent_obj;

    MemoryRegion regs;
    MemoryRegion window;

    /* Properties */
    char *path;
    char *laddr;
    uint16_t lport;
    uint32_t read_ahead;        /* bytes an outbound read fetches, 0: exact */
    PCIeFwConnConfig conf;

    /* Registers (epc.md 2-5) */
    uint32_t ctrl;
    uint32_t status;
    uint32_t error;
    uint32_t events;
    uint32_t event_enable;
    PfEpcFunction fn;           /* as programmed */
    PfEpcFunction live;         /* as described to the connected host */
    PfEpcMap maps[EPC_NUM_MAPS];
    bool irq_level;
    uint32_t raise_status;
    bool intx;                  /* the function's INTx level (epc.md 3.3) */

    /* The host */
    int listen_fd;
    bool listen_tcp;
    int held_fd;                /* accepted while the link is down */
    PCIeFwConn *conn;
    struct pf_hello_params hello;

    PfEpcHostMemory hmem;
    /* The function's MSI/MSI-X settings as the host said (epc.md 3.4) */
    struct pf_interrupt_config host_irq;
    PfEpcReadAhead ra;
    PfEpcDma *dma;              /* the DMA engine (epc.md 12) */
};

/* The BAR @bar of the function as it serves the host now, or NULL. */
const PfEpcBar *epc_bar(PfEpcState *s, uint32_t bar, bool io);

/* The host's interrupt settings (pciefw-epc-irqcfg.c, epc.md 3.4). */
int epc_on_interrupt_config(void *opaque, const PfMessage *m, char *err,
                            size_t errlen);
/* Back to the reset state; @table: write the table's entries so too. */
void epc_irqcfg_reset(PfEpcState *s, bool table);
/* A HOST_* register at @addr: its value in @val, else false. */
bool epc_irqcfg_reg_read(PfEpcState *s, hwaddr addr, uint64_t *val);
/* The settings changed: the EPC's HOST_IRQ_CONFIG event (pciefw-epc.c). */
void epc_irqcfg_changed(PfEpcState *s);

/* The outbound window, BAR2 (pciefw-epc-window.c). */
extern const MemoryRegionOps epc_window_ops;
uint64_t epc_map_reg_read(PfEpcState *s, hwaddr addr);
void epc_map_reg_write(PfEpcState *s, hwaddr addr, uint32_t val);
/* The host's messages about its memory (spec 10). */
int epc_on_memory_map(void *opaque, const PfMessage *m, char *err,
                      size_t errlen);
int epc_on_bus_master(void *opaque, const PfMessage *m, char *err,
                      size_t errlen);
/* Forget what the window knew of the host (a new session, a stop). */
void epc_window_forget(PfEpcState *s);
/* The DMA engine's way to the host (epc.md 12). */
extern const PfEpcDmaOps epc_dma_ops;
/* A transfer of the engine ended: the EPC's DMA event (pciefw-epc.c). */
void epc_dma_done(PfEpcState *s);

#endif
