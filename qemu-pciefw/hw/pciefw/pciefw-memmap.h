/*
 * pciefw: guest memory shared with the endpoint (docs/protocol.md 10).
 *
 * A MemoryListener keeps the list of shareable RAM ranges of an address
 * space: RAM backed by an fd and mapped shared, not ROM, not read-only,
 * and sealed against shrinking (protocol/shared_fd.h).  While a session
 * that negotiated guest memory is active, the map is sent as a MemoryMap
 * with the fds whenever it changes, and the function's Bus Master Enable
 * as BusMaster (10.3).
 *
 * Copyright (c) 2025 The pciefw authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_PCIEFW_MEMMAP_H
#define HW_PCIEFW_MEMMAP_H

#include "system/memory.h"
#include "pciefw-conn.h"
#include "protocol/buf.h"
#include "protocol/msg.h"
#include "protocol/pciefw.h"

typedef struct PCIeFwMemRange {
    struct pf_mem_region r;
    int fd;                     /* QEMU's fd while building, a dup after */
} PCIeFwMemRange;

typedef struct PCIeFwMemMap {
    MemoryListener listener;
    bool listening;
    /* A transaction's view, rebuilt from its region_add/region_nop calls. */
    PCIeFwMemRange building[PCIEFW_MAX_MEM_REGIONS];
    unsigned n_building;
    bool touched;               /* the address space changed in it */
    /* The committed map; each fd is our own dup. */
    PCIeFwMemRange cur[PCIEFW_MAX_MEM_REGIONS];
    unsigned n_cur;
    unsigned skipped;           /* shareable sections beyond the limit */
    /* The session it is sent on, while active */
    PCIeFwConn *conn;
    bool active;
    bool dirty;                 /* the endpoint lacks the current map */
    bool bm_reported;           /* the Bus Master Enable it was told */
    QEMUBH *bh;                 /* a changed map, sent from the main loop */
    unsigned refused;           /* RAM whose fd is not safe to share */
    uint64_t refused_start;     /* the last of them, and why */
    char why[160];
    bool warned;                /* that was said, once per device */
} PCIeFwMemMap;

/* Listen to @as for @dev's connection @conn. */
void pciefw_memmap_start(PCIeFwMemMap *m, AddressSpace *as, DeviceState *dev,
                         PCIeFwConn *conn);
void pciefw_memmap_stop(PCIeFwMemMap *m);

/*
 * A session that negotiated guest memory is up (@bme: the function's Bus
 * Master Enable): the endpoint has no map and thinks BME is off.
 */
void pciefw_memmap_begin(PCIeFwMemMap *m, bool bme);
/* The session is gone, or the device is closing. */
void pciefw_memmap_end(PCIeFwMemMap *m);
/* Bus Master Enable is @on now: say so if it changed (or @force). */
void pciefw_memmap_report_bme(PCIeFwMemMap *m, bool on, bool force);
/* After a forwarded Reset the endpoint has BME off (10.3): say it again. */
void pciefw_memmap_after_reset(PCIeFwMemMap *m, bool on);
/* The connection's output is empty: a map that waited may go. */
void pciefw_memmap_flush(PCIeFwMemMap *m);

#endif
