/*
 * pciefw-epc: the way to the host's memory -- the outbound window (epc.md
 * 5), through which the endpoint guest's CPU reaches it, and the DMA
 * engine's access (epc.md 12).  An access becomes DMA to the host: a copy
 * into the host's guest RAM where the host shared it (spec 10) and bus
 * mastering is on, else a DmaWrite (posted) or a DmaRead -- which the CPU
 * waits for, with read-ahead (epc.md 5.1), and the engine does not.
 *
 * Copyright (c) 2025 The pciefw authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "pciefw-epc.h"
#include "protocol/msg.h"

static uint64_t all_ones(unsigned size)
{
    return size >= 8 ? UINT64_MAX : (1ULL << (size * 8)) - 1;
}

/* ---------------------------------------------------------------------- */
/* Regions (epc.md 5)                                                      */

static uint64_t epc_set64(uint64_t v, bool lo, uint32_t val)
{
    return lo ? (v & ~0xffffffffULL) | val
              : (v & 0xffffffffULL) | (uint64_t)val << 32;
}

uint64_t epc_map_reg_read(PfEpcState *s, hwaddr addr)
{
    PfEpcMap *m = &s->maps[(addr - 0x400) / 0x20];

    switch ((addr - 0x400) % 0x20) {
    case 0x00:
        return m->win_offset;
    case 0x04:
        return m->size;
    case 0x08:
        return (uint32_t)m->host;
    case 0x0c:
        return m->host >> 32;
    case 0x10:
        return m->enabled;
    default:
        return 0;
    }
}

/*
 * A region that cannot be mapped does not enable, and changing an enabled
 * region's place disables it, so that every region in use has passed
 * ENABLE's checks.
 */
void epc_map_reg_write(PfEpcState *s, hwaddr addr, uint32_t val)
{
    PfEpcMap *m = &s->maps[(addr - 0x400) / 0x20];
    unsigned reg = (addr - 0x400) % 0x20;

    s->ra.len = 0;
    if (reg < 0x10) {
        m->enabled = false;
    }
    switch (reg) {
    case 0x00:
        m->win_offset = val;
        break;
    case 0x04:
        m->size = val;
        break;
    case 0x08:
        m->host = epc_set64(m->host, true, val);
        break;
    case 0x0c:
        m->host = epc_set64(m->host, false, val);
        break;
    case 0x10:
        m->enabled = (val & 1) && m->size &&
                     m->win_offset < EPC_WINDOW_SIZE &&
                     m->size <= EPC_WINDOW_SIZE - m->win_offset &&
                     m->host + (m->size - 1) >= m->host;
        break;
    }
}

static const PfEpcMap *epc_find_map(PfEpcState *s, hwaddr addr, unsigned size)
{
    for (unsigned r = 0; r < EPC_NUM_MAPS; r++) {
        const PfEpcMap *m = &s->maps[r];

        if (m->enabled && addr >= m->win_offset &&
            addr - m->win_offset + size <= m->size) {
            return m;
        }
    }
    return NULL;
}

/* ---------------------------------------------------------------------- */
/* The host's guest memory (spec 10)                                       */

static void epc_log_shared_ram(void *opaque, bool warn, const char *line)
{
    if (warn) {
        warn_report("pciefw-epc: %s", line);
    } else {
        info_report("pciefw-epc: %s", line);
    }
}

int epc_on_memory_map(void *opaque, const PfMessage *m, char *err,
                      size_t errlen)
{
    PfEpcState *s = opaque;
    const Pciefw__MemoryMap *mm = m->memory_map;
    int fds[PCIEFW_MAX_MEM_REGIONS];

    if (!(pciefw_conn_session(s->conn)->features &
          PCIEFW_FEATURE_GUEST_MEMORY)) {
        snprintf(err, errlen, "memory_map without the guest memory feature "
                 "negotiated");
        return PF_ERR_UNEXPECTED;
    }
    if (!pciefw_conn_take_fds(s->conn, fds, mm->n_regions)) {
        snprintf(err, errlen, "memory map of %zu regions came without a "
                 "file descriptor for each", mm->n_regions);
        return PF_ERR_INVALID;
    }
    pf_shared_ram_set(&s->hmem.ram, mm, fds, "host", epc_log_shared_ram, s);
    return PF_OK;
}

int epc_on_bus_master(void *opaque, const PfMessage *m, char *err,
                      size_t errlen)
{
    PfEpcState *s = opaque;

    if (!(pciefw_conn_session(s->conn)->features &
          PCIEFW_FEATURE_GUEST_MEMORY)) {
        snprintf(err, errlen, "bus_master without the guest memory feature "
                 "negotiated");
        return PF_ERR_UNEXPECTED;
    }
    s->hmem.bus_master = m->bus_master->enabled;
    return PF_OK;
}

void epc_window_forget(PfEpcState *s)
{
    s->ra.len = 0;
    pf_shared_ram_clear(&s->hmem.ram);
    s->hmem.bus_master = false;
    s->hmem.msg_write_unfenced = false;
}

/* Where host memory [host, host + len) may be copied, or NULL (10.1). */
static uint8_t *epc_copy_target(PfEpcState *s, uint64_t host, unsigned len)
{
    if (!s->hmem.bus_master || s->hmem.msg_write_unfenced) {
        return NULL;
    }
    return pf_shared_ram_find(&s->hmem.ram, host, len);
}

/* Spec 10.5: a copy is recorded as the messages it replaces. */
static void epc_trace_copy(PfEpcState *s, bool write, uint64_t host,
                           const uint8_t *data, unsigned size)
{
    struct pf_trace_writer *trace = pciefw_conn_trace(s->conn);
    struct pf_buf b;

    if (!trace) {
        return;
    }
    pf_buf_init(&b);
    if (write) {
        pf_put_dma_write(&b, host, data, size);
        pf_trace_write_frames(trace, pf_now_ns(), PF_DIR_TO_HOST,
                              pf_buf_peek(&b), pf_buf_used(&b));
        pf_trace_write_note(trace, pf_now_ns(), PF_DIR_TO_HOST,
                            "shared memory: copied to guest memory");
    } else {
        pf_put_dma_read(&b, 0, host, size);
        pf_trace_write_frames(trace, pf_now_ns(), PF_DIR_TO_HOST,
                              pf_buf_peek(&b), pf_buf_used(&b));
        pf_trace_write_note(trace, pf_now_ns(), PF_DIR_TO_HOST,
                            "shared memory: read by copy");
        pf_buf_clear(&b);
        pf_put_completion(&b, 0, PCIEFW__STATUS__STATUS_SUCCESSFUL, data,
                          size);
        pf_trace_write_frames(trace, pf_now_ns(), PF_DIR_TO_ENDPOINT,
                              pf_buf_peek(&b), pf_buf_used(&b));
        pf_trace_write_note(trace, pf_now_ns(), PF_DIR_TO_ENDPOINT,
                            "shared memory: the data the copy read");
    }
    pf_buf_free(&b);
}

/* ---------------------------------------------------------------------- */
/* Reads and writes by messages                                            */

/*
 * One DmaRead of @len bytes at host address @host into @dest; the CPU
 * waits for its completion (spec 5.3: the host's requests are served
 * meanwhile).  False if it did not complete successfully.
 */
static bool epc_fetch(PfEpcState *s, uint64_t host, uint32_t len,
                      uint8_t *dest)
{
    PCIeFwRequest req = { .size = len, .dest = dest };
    size_t mark;

    if (!pciefw_conn_request(s->conn, &req)) {
        return false;
    }
    mark = pciefw_conn_mark(s->conn);
    if (!pciefw_conn_queued(s->conn, mark,
                            pf_put_dma_read(pciefw_conn_out(s->conn), req.tag,
                                            host, len), "dma_read")) {
        return false;
    }
    if (pciefw_conn_wait(s->conn, &req, "completion of an outbound read",
                         pciefw_conn_deadline(s->conn)) < 0) {
        return false;
    }
    /* The host handled our earlier DmaWrites before this read (10.4). */
    s->hmem.msg_write_unfenced = false;
    return req.status == PCIEFW__STATUS__STATUS_SUCCESSFUL;
}

/*
 * epc.md 5.1: a read forward of the last one, inside what the last fetch
 * brought, is served from it.  A read at or below an address already
 * served (a poll) fetches again.
 */
static bool epc_ra_hit(PfEpcState *s, uint64_t host, unsigned size)
{
    return s->ra.len && host >= s->ra.next && host >= s->ra.host &&
           host - s->ra.host + size <= s->ra.len;
}

/* How much a read of @size at window offset @addr in @m fetches. */
static uint32_t epc_ra_len(PfEpcState *s, const PfEpcMap *m, hwaddr addr,
                           unsigned size)
{
    uint64_t left = m->size - (addr - m->win_offset);
    uint64_t len = MIN(MIN(s->read_ahead,
                           pciefw_conn_session(s->conn)->max_payload), left);

    return MAX(len, size);
}

static uint64_t epc_read_by_message(PfEpcState *s, const PfEpcMap *m,
                                    hwaddr addr, uint64_t host, unsigned size)
{
    uint8_t data[8];
    uint32_t len;

    if (epc_ra_hit(s, host, size)) {
        s->ra.next = host + size;
        return pf_le_load(s->ra.buf + (host - s->ra.host), size);
    }
    s->ra.len = 0;
    len = epc_ra_len(s, m, addr, size);
    if (len > size) {
        if (epc_fetch(s, host, len, s->ra.buf)) {
            s->ra.host = host;
            s->ra.len = len;
            s->ra.next = host + size;
            return pf_le_load(s->ra.buf, size);
        }
        if (!pciefw_conn_up(s->conn)) {
            return all_ones(size);
        }
        /* The host refused the longer read: the read alone may pass. */
    }
    if (!epc_fetch(s, host, size, data)) {
        return all_ones(size);
    }
    return pf_le_load(data, size);
}

/* ---------------------------------------------------------------------- */
/* The window's accesses                                                   */

/* Accesses while the host's messages are handled would re-enter. */
static bool epc_window_usable(PfEpcState *s)
{
    return pciefw_conn_up(s->conn) && !pciefw_conn_dispatching(s->conn);
}

static uint64_t epc_window_read(void *opaque, hwaddr addr, unsigned size)
{
    PfEpcState *s = opaque;
    const PfEpcMap *m = epc_find_map(s, addr, size);
    uint64_t host;
    uint8_t *src;

    if (!m || !epc_window_usable(s)) {
        return all_ones(size);
    }
    host = m->host + (addr - m->win_offset);
    src = epc_copy_target(s, host, size);
    if (src) {
        uint64_t val = pf_le_load(src, size);

        s->hmem.copies++;
        epc_trace_copy(s, false, host, src, size);
        return val;
    }
    return epc_read_by_message(s, m, addr, host, size);
}

/*
 * Write @size bytes to host address @host: a copy, or a posted DmaWrite.
 * False if the connection failed.  What the CPU read ahead may be stale
 * now (epc.md 5.1).
 */
static bool epc_host_write(PfEpcState *s, uint64_t host, const void *data,
                           uint32_t size)
{
    uint8_t *dst = epc_copy_target(s, host, size);
    size_t mark;

    s->ra.len = 0;
    if (dst) {
        /* In host memory before anything we send later (spec 10.4). */
        memcpy(dst, data, size);
        s->hmem.copies++;
        epc_trace_copy(s, true, host, data, size);
        return true;
    }
    mark = pciefw_conn_mark(s->conn);
    if (!pciefw_conn_queued(s->conn, mark,
                            pf_put_dma_write(pciefw_conn_out(s->conn), host,
                                             data, size), "dma_write")) {
        return false;
    }
    /* Copies wait until a later read shows it applied (10.4). */
    s->hmem.msg_write_unfenced = true;
    pciefw_conn_posted(s->conn);
    return true;
}

static void epc_window_write(void *opaque, hwaddr addr, uint64_t val,
                             unsigned size)
{
    PfEpcState *s = opaque;
    const PfEpcMap *m = epc_find_map(s, addr, size);
    uint8_t data[8];

    if (!m || !epc_window_usable(s)) {
        return;
    }
    pf_le_store(data, size, val);
    epc_host_write(s, m->host + (addr - m->win_offset), data, size);
}

const MemoryRegionOps epc_window_ops = {
    .read = epc_window_read,
    .write = epc_window_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .min_access_size = 1, .max_access_size = 8 },
    .impl = { .min_access_size = 1, .max_access_size = 8 },
};

/* ---------------------------------------------------------------------- */
/* The DMA engine's access (epc.md 12)                                     */

static uint32_t epc_dma_link(void *opaque)
{
    PfEpcState *s = opaque;

    return pciefw_conn_up(s->conn) ? pciefw_conn_session(s->conn)->max_payload
                                   : 0;
}

static bool epc_dma_read_now(void *opaque, uint64_t host, void *dest,
                             uint32_t len)
{
    PfEpcState *s = opaque;
    uint8_t *src = epc_copy_target(s, host, len);

    if (!src) {
        return false;
    }
    memcpy(dest, src, len);
    s->hmem.copies++;
    epc_trace_copy(s, false, host, dest, len);
    return true;
}

static bool epc_dma_read_message(void *opaque, PCIeFwRequest *req,
                                 uint64_t host)
{
    PfEpcState *s = opaque;
    size_t mark;

    if (!pciefw_conn_request(s->conn, req)) {
        return false;
    }
    /* If queueing fails, the connection fails @req as it closes. */
    mark = pciefw_conn_mark(s->conn);
    if (pciefw_conn_queued(s->conn, mark,
                           pf_put_dma_read(pciefw_conn_out(s->conn), req->tag,
                                           host, req->size), "dma_read")) {
        pciefw_conn_flush(s->conn);
    }
    return true;
}

static bool epc_dma_write(void *opaque, uint64_t host, const void *data,
                          uint32_t len)
{
    PfEpcState *s = opaque;

    return pciefw_conn_up(s->conn) && epc_host_write(s, host, data, len);
}

static size_t epc_dma_backlog(void *opaque)
{
    PfEpcState *s = opaque;

    return pf_buf_used(pciefw_conn_out(s->conn));
}

static bool epc_dma_window(void *opaque, uint64_t off, uint64_t *host,
                           uint64_t *room)
{
    PfEpcState *s = opaque;
    const PfEpcMap *m = epc_find_map(s, off, 1);

    if (!m) {
        return false;
    }
    *host = m->host + (off - m->win_offset);
    *room = m->size - (off - m->win_offset);
    return true;
}

static void epc_dma_ended(void *opaque)
{
    epc_dma_done(opaque);
}

const PfEpcDmaOps epc_dma_ops = {
    .link = epc_dma_link,
    .read_now = epc_dma_read_now,
    .dma_read = epc_dma_read_message,
    .dma_write = epc_dma_write,
    .backlog = epc_dma_backlog,
    .window = epc_dma_window,
    .ended = epc_dma_ended,
};
