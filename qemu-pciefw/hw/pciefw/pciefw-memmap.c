/*
 * pciefw: the guest RAM the endpoint may map (docs/protocol.md 10.2).
 *
 * Copyright (c) 2025 The pciefw authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "exec/cpu-common.h"
#include "trace.h"
#include "pciefw-memmap.h"
#include "qemu/main-loop.h"
#include "protocol/shared_fd.h"

#define PCIEFW_MEMMAP_MASK  ((uint64_t)PCIEFW_MEM_ALIGN - 1)

/*
 * RAM another process can map and see the guest's writes in: an fd, and
 * mapped shared by QEMU (a private mapping of the same fd would not show
 * the endpoint's writes).  ROM and read-only views are left to messages.
 */
static bool pciefw_memmap_shareable(MemoryRegionSection *sec)
{
    MemoryRegion *mr = sec->mr;

    return memory_region_is_ram(mr) && !memory_region_is_ram_device(mr) &&
           !memory_region_is_rom(mr) && !memory_region_is_romd(mr) &&
           !sec->readonly && mr->ram_block &&
           qemu_ram_is_shared(mr->ram_block) &&
           memory_region_get_fd(mr) >= 0;
}

static void pciefw_memmap_addnop(MemoryListener *l, MemoryRegionSection *sec)
{
    PCIeFwMemMap *m = container_of(l, PCIeFwMemMap, listener);
    uint64_t start, end, fd_off;
    PCIeFwMemRange *prev;
    const char *why;
    int fd;

    m->touched = true;
    if (!pciefw_memmap_shareable(sec)) {
        return;
    }
    /* Whole 4 KiB pages only: mmap() maps pages. */
    start = ROUND_UP(sec->offset_within_address_space, PCIEFW_MEM_ALIGN);
    end = QEMU_ALIGN_DOWN(sec->offset_within_address_space +
                          int128_get64(sec->size), PCIEFW_MEM_ALIGN);
    if (end <= start) {
        return;
    }
    fd = memory_region_get_fd(sec->mr);
    fd_off = sec->offset_within_region +
             (start - sec->offset_within_address_space) +
             qemu_ram_get_fd_offset(sec->mr->ram_block);
    if (fd_off & PCIEFW_MEMMAP_MASK) {
        return;
    }
    /*
     * The endpoint is trusted less than QEMU: a file it could shrink
     * would make our own next access to guest RAM fault (spec 10.2).
     */
    why = pf_shared_fd_refusal(fd, fd_off, end - start, m->why,
                               sizeof(m->why));
    if (why) {
        if (why != m->why) {
            g_strlcpy(m->why, why, sizeof(m->why));
        }
        m->refused_start = start;
        m->refused++;
        return;
    }
    /* Sections come in address order: merge what continues the last. */
    prev = m->n_building ? &m->building[m->n_building - 1] : NULL;
    if (prev && prev->fd == fd &&
        prev->r.guest_address + prev->r.size == start &&
        prev->r.fd_offset + prev->r.size == fd_off) {
        prev->r.size += end - start;
        return;
    }
    if (m->n_building == PCIEFW_MAX_MEM_REGIONS ||
        (prev && prev->r.guest_address + prev->r.size > start)) {
        m->skipped++;           /* DMA there goes by messages */
        return;
    }
    m->building[m->n_building++] = (PCIeFwMemRange) {
        .r = { .guest_address = start, .size = end - start,
               .fd_offset = fd_off },
        .fd = fd,
    };
}

static void pciefw_memmap_del(MemoryListener *l, MemoryRegionSection *sec)
{
    container_of(l, PCIeFwMemMap, listener)->touched = true;
}

static void pciefw_memmap_begin_commit(MemoryListener *l)
{
    PCIeFwMemMap *m = container_of(l, PCIeFwMemMap, listener);

    m->n_building = 0;
    m->skipped = 0;
    m->refused = 0;
    m->touched = false;
}

static bool pciefw_memmap_same(PCIeFwMemMap *m)
{
    if (m->n_building != m->n_cur) {
        return false;
    }
    for (unsigned i = 0; i < m->n_cur; i++) {
        if (memcmp(&m->building[i].r, &m->cur[i].r, sizeof(m->cur[i].r))) {
            return false;
        }
    }
    return true;
}

static void pciefw_memmap_clear(PCIeFwMemMap *m)
{
    for (unsigned i = 0; i < m->n_cur; i++) {
        close(m->cur[i].fd);
    }
    m->n_cur = 0;
}

static void pciefw_memmap_commit(MemoryListener *l)
{
    PCIeFwMemMap *m = container_of(l, PCIeFwMemMap, listener);
    unsigned n = 0;

    if (m->refused && !m->warned) {
        m->warned = true;
        warn_report("pciefw: guest RAM at 0x%" PRIx64 " is not shared with "
                    "the endpoint (%s); its DMA goes by messages (use "
                    "memory-backend-memfd,share=on with seal=on, the "
                    "default)", m->refused_start, m->why);
    }
    /* Another address space changed, not ours. */
    if (!m->touched || pciefw_memmap_same(m)) {
        return;
    }
    pciefw_memmap_clear(m);
    for (unsigned i = 0; i < m->n_building; i++) {
        /* Our own reference: the region may go before the map is sent. */
        int fd = dup(m->building[i].fd);

        if (fd < 0) {
            continue;
        }
        m->cur[n] = m->building[i];
        m->cur[n++].fd = fd;
    }
    m->n_cur = n;
    trace_pciefw_memmap(n, m->skipped);
    /*
     * A commit runs in the middle of whatever changed the map (a guest
     * config write moving a BAR or RAM): the map is sent from the main
     * loop, since a send that fails reads and applies the endpoint's last
     * messages, which must not happen here.
     */
    m->dirty = true;
    if (m->active) {
        qemu_bh_schedule(m->bh);
    }
}

/*
 * Send the map when it changed.  Its fds go with the first bytes of its
 * frame, so it is queued only behind nothing (spec 10.2); until then the
 * endpoint uses the map it has, or messages.
 */
void pciefw_memmap_flush(PCIeFwMemMap *m)
{
    struct pf_mem_region r[PCIEFW_MAX_MEM_REGIONS];
    int fds[PCIEFW_MAX_MEM_REGIONS];
    size_t mark;

    if (!m->dirty || !m->active || !pf_buf_empty(pciefw_conn_out(m->conn))) {
        return;
    }
    for (unsigned i = 0; i < m->n_cur; i++) {
        r[i] = m->cur[i].r;
        fds[i] = m->cur[i].fd;
    }
    if (!pciefw_conn_attach_fds(m->conn, fds, m->n_cur)) {
        pciefw_conn_close(m->conn, "cannot pass guest memory to the "
                          "endpoint: %s", strerror(errno));
        return;
    }
    m->dirty = false;
    mark = pciefw_conn_mark(m->conn);
    if (pciefw_conn_queued(m->conn, mark,
                           pf_put_memory_map(pciefw_conn_out(m->conn), r,
                                             m->n_cur), "memory_map")) {
        pciefw_conn_flush(m->conn);
    }
}

static void pciefw_memmap_bh(void *opaque)
{
    pciefw_memmap_flush(opaque);
}

void pciefw_memmap_start(PCIeFwMemMap *m, AddressSpace *as, DeviceState *dev,
                         PCIeFwConn *conn)
{
    m->conn = conn;
    m->bh = aio_bh_new_guarded(qemu_get_aio_context(), pciefw_memmap_bh, m,
                               &dev->mem_reentrancy_guard);
    m->listener = (MemoryListener) {
        .name = "pciefw-memmap",
        .begin = pciefw_memmap_begin_commit,
        .commit = pciefw_memmap_commit,
        .region_add = pciefw_memmap_addnop,
        .region_nop = pciefw_memmap_addnop,
        .region_del = pciefw_memmap_del,
    };
    /* Registering replays the current sections between begin and commit. */
    memory_listener_register(&m->listener, as);
    m->listening = true;
}

void pciefw_memmap_stop(PCIeFwMemMap *m)
{
    m->active = false;
    if (m->listening) {
        memory_listener_unregister(&m->listener);
        m->listening = false;
    }
    g_clear_pointer(&m->bh, qemu_bh_delete);
    pciefw_memmap_clear(m);
}

void pciefw_memmap_report_bme(PCIeFwMemMap *m, bool on, bool force)
{
    size_t mark;

    if (!m->active || (!force && on == m->bm_reported)) {
        return;
    }
    mark = pciefw_conn_mark(m->conn);
    if (pciefw_conn_queued(m->conn, mark,
                           pf_put_bus_master(pciefw_conn_out(m->conn), on),
                           "bus_master")) {
        m->bm_reported = on;
    }
}

void pciefw_memmap_begin(PCIeFwMemMap *m, bool bme)
{
    if (!m->listening ||
        !(pciefw_conn_session(m->conn)->features &
          PCIEFW_FEATURE_GUEST_MEMORY)) {
        return;
    }
    m->active = true;
    m->dirty = true;
    m->bm_reported = false;
    pciefw_memmap_report_bme(m, bme, true);
    pciefw_conn_flush(m->conn);
}

void pciefw_memmap_end(PCIeFwMemMap *m)
{
    m->active = false;
}

void pciefw_memmap_after_reset(PCIeFwMemMap *m, bool on)
{
    m->bm_reported = false;
    pciefw_memmap_report_bme(m, on, false);
    if (m->active) {
        pciefw_conn_flush(m->conn);
    }
}
