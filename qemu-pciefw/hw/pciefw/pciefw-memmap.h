/*
 * pciefw: the guest RAM the endpoint may map (docs/protocol.md 10.2).
 *
 * A MemoryListener keeps the list of shareable RAM ranges of an address
 * space: RAM backed by an fd and mapped shared, not ROM, not read-only,
 * and sealed against shrinking (protocol/shared_fd.h).
 * The device sends it as a MemoryMap with the fds.
 *
 * Copyright (c) 2025 The pciefw authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_PCIEFW_MEMMAP_H
#define HW_PCIEFW_MEMMAP_H

#include "system/memory.h"
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
    unsigned refused;           /* RAM whose fd is not safe to share */
    uint64_t refused_start;     /* the last of them, and why */
    char why[160];
    bool warned;                /* that was said, once per device */
    void (*changed)(void *opaque);
    void *opaque;
} PCIeFwMemMap;

/* Listen to @as; @changed runs after every commit that changed the map. */
void pciefw_memmap_start(PCIeFwMemMap *m, AddressSpace *as,
                         void (*changed)(void *opaque), void *opaque);
void pciefw_memmap_stop(PCIeFwMemMap *m);

/*
 * Append the current map as a MemoryMap frame to @out; *@fds and *@n_fds
 * get its fds, in region order (still owned by @m).
 */
int pciefw_memmap_put(PCIeFwMemMap *m, struct pf_buf *out,
                      int *fds, unsigned *n_fds);

#endif
