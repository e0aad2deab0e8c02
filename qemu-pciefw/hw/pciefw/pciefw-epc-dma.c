/*
 * pciefw-epc's DMA engine: copies between the endpoint guest's memory and
 * the host's, asynchronously (docs/epc.md 12 of the pciefw project)
 *
 * The endpoint guest programs one transfer at a time: a source and a
 * destination bus address and a length.  A bus address inside the EPC's
 * outbound window goes, through the window's regions, to the host; any
 * other is the endpoint guest's memory.  Reads from the host are copies
 * where the host shares its memory, else DmaReads of up to the session's
 * max payload, several in flight; writes to it are copies or posted
 * DmaWrites, queued while the connection's output stays short.  All the
 * work, the writing of what the reads brought included, is done from a
 * bottom half (guarded against re-entry: a transfer may target the EPC
 * itself), a bounded amount at a time, so QEMU's main loop never waits
 * for the host; the end of a transfer raises the EPC's DMA event.
 *
 * Copyright (c) 2025 The pciefw authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/main-loop.h"
#include "block/aio.h"
#include "hw/pci/pci.h"
#include "hw/pci/pci_device.h"

#include "pciefw-epc-dma.h"
#include "protocol/msg.h"

/* epc.md 12: registers, offsets in BAR0 */
#define DMA_SRC_LO      0x800
#define DMA_SRC_HI      0x804
#define DMA_DST_LO      0x808
#define DMA_DST_HI      0x80c
#define DMA_LEN         0x810
#define DMA_CTRL        0x814
#define DMA_CTRL_START  0x1
#define DMA_CTRL_ABORT  0x2
#define DMA_STATUS      0x818
#define DMA_ST_BUSY     0x1
#define DMA_ST_DONE     0x2
#define DMA_ST_ERROR    0x4
#define DMA_ERROR       0x81c
#define DMA_COUNT       0x820

/* epc.md 12: DMA_ERROR, why the last transfer failed */
enum {
    DMA_ERR_LENGTH = 1,         /* DMA_LEN 0 */
    DMA_ERR_LOCAL = 2,          /* the endpoint guest's memory refused */
    DMA_ERR_UNMAPPED = 3,       /* a window address no region maps */
    DMA_ERR_LINK = 4,           /* no host, or it went */
    DMA_ERR_HOST = 5,           /* the host completed a read with an error */
    DMA_ERR_ABORTED = 6,        /* DMA_CTRL.ABORT */
};

/* Largest piece of a transfer, and a bound on what one piece may hold. */
#define DMA_CHUNK_MAX   (64 * 1024)
/* DmaReads in flight: 512 KiB, far below the host's unread limit. */
#define DMA_READS_MAX   8
/* Bytes moved per turn of the main loop before the engine yields. */
#define DMA_BUDGET      (1024 * 1024)
/* Output queued for the host beyond which the engine waits for it. */
#define DMA_BACKLOG_MAX (1024 * 1024)

/* A DmaRead of the engine: asked, then its data ready to be written. */
typedef struct PfEpcDmaRead {
    PCIeFwRequest req;          /* size, and dest: this slot's buffer */
    bool used;                  /* asked, or ready: not yet written */
    bool ready;                 /* completed successfully, data in dest */
    bool cancelled;             /* its transfer ended: drop its data */
    uint64_t off;               /* where in the transfer its data goes */
} PfEpcDmaRead;

/* One end of a piece of the transfer. */
typedef struct PfEpcDmaEnd {
    bool host;                  /* in the window: at host address @addr */
    uint64_t addr;
    uint64_t room;              /* bytes from @addr in the same mapping */
} PfEpcDmaEnd;

struct PfEpcDma {
    PCIDevice *pdev;
    int window_bar;
    uint64_t window_size;
    const PfEpcDmaOps *ops;
    void *opaque;
    QEMUBH *bh;
    uint8_t *buf;               /* a piece not read by message */
    uint8_t *read_bufs;         /* DMA_READS_MAX pieces, one per read */

    /* Registers */
    uint64_t src, dst;
    uint32_t len;
    uint32_t status;
    uint32_t error;
    uint32_t count;

    /* The transfer under way (status & DMA_ST_BUSY) */
    uint64_t issued;            /* bytes read or asked for */
    uint64_t done;              /* bytes written */
    unsigned inflight;
    PfEpcDmaRead reads[DMA_READS_MAX];
};

static bool dma_busy(PfEpcDma *d)
{
    return d->status & DMA_ST_BUSY;
}

/* The transfer ends: DMA_STATUS, DMA_COUNT, and the EPC's event. */
static void dma_end(PfEpcDma *d, uint32_t error)
{
    if (!dma_busy(d)) {
        return;
    }
    d->status = error ? DMA_ST_ERROR : DMA_ST_DONE;
    d->error = error;
    d->count = d->done;
    for (unsigned i = 0; i < DMA_READS_MAX; i++) {
        d->reads[i].cancelled = d->reads[i].used;
    }
    d->ops->ended(d->opaque);
}

/* Where bus address @bus lies: the host, through the window, or local. */
static uint32_t dma_resolve(PfEpcDma *d, uint64_t bus, PfEpcDmaEnd *e)
{
    pcibus_t w = pci_get_bar_addr(d->pdev, d->window_bar);

    if (w != PCI_BAR_UNMAPPED && bus >= w && bus - w < d->window_size) {
        e->host = true;
        return d->ops->window(d->opaque, bus - w, &e->addr, &e->room) ?
               0 : DMA_ERR_UNMAPPED;
    }
    e->host = false;
    e->addr = bus;
    e->room = UINT64_MAX;
    return 0;
}

/* Write @n bytes to end @t: a posted DmaWrite or the guest's memory. */
static uint32_t dma_put(PfEpcDma *d, const PfEpcDmaEnd *t,
                        const uint8_t *data, uint32_t n)
{
    if (t->host) {
        return d->ops->dma_write(d->opaque, t->addr, data, n) ?
               0 : DMA_ERR_LINK;
    }
    return pci_dma_write(d->pdev, t->addr, data, n) == MEMTX_OK ?
           0 : DMA_ERR_LOCAL;
}

static void dma_check_end(PfEpcDma *d)
{
    if (dma_busy(d) && d->done == d->len && !d->inflight) {
        dma_end(d, 0);
    }
}

static PfEpcDmaRead *dma_free_slot(PfEpcDma *d)
{
    for (unsigned i = 0; i < DMA_READS_MAX; i++) {
        if (!d->reads[i].used) {
            return &d->reads[i];
        }
    }
    return NULL;
}

/*
 * A read's completion: a failure ends the transfer; data waits in the
 * slot for the bottom half to write it.
 */
static void dma_read_done(PCIeFwRequest *req, void *opaque)
{
    PfEpcDmaRead *r = container_of(req, PfEpcDmaRead, req);
    PfEpcDma *d = opaque;

    if (r->cancelled) {
        r->used = false;
        d->inflight--;
        return;
    }
    if (req->status != PCIEFW__STATUS__STATUS_SUCCESSFUL) {
        r->used = false;
        d->inflight--;
        dma_end(d, req->status < 0 ? DMA_ERR_LINK : DMA_ERR_HOST);
        return;
    }
    r->ready = true;
    qemu_bh_schedule(d->bh);
}

/* Ask the host for @n bytes at @host, for offset d->issued. */
static uint32_t dma_ask(PfEpcDma *d, uint64_t host, uint32_t n)
{
    PfEpcDmaRead *r = dma_free_slot(d);

    r->req.size = n;
    r->req.complete = dma_read_done;
    r->req.opaque = d;
    r->off = d->issued;
    r->ready = false;
    r->cancelled = false;
    /* Counted first: a failure may complete it before dma_read returns. */
    r->used = true;
    d->inflight++;
    if (!d->ops->dma_read(d->opaque, &r->req, host)) {
        r->used = false;
        d->inflight--;
        return DMA_ERR_LINK;
    }
    return 0;
}

/* Write what a completed read brought (a failure ends the transfer). */
static void dma_write_ready(PfEpcDma *d, PfEpcDmaRead *r)
{
    PfEpcDmaEnd t;
    uint32_t err, len = r->req.size;

    r->used = false;
    r->ready = false;
    d->inflight--;
    if (r->cancelled) {
        return;
    }
    err = dma_resolve(d, d->dst + r->off, &t);
    if (!err && t.room < len) {
        err = DMA_ERR_UNMAPPED;     /* the regions changed meanwhile */
    }
    if (!err) {
        err = dma_put(d, &t, r->req.dest, len);
    }
    if (err) {
        dma_end(d, err);
        return;
    }
    d->done += len;
}

/*
 * Start the next piece: one DmaRead, or a read of the guest's memory
 * written at once.  0 with *n = 0 if it must wait (reads in flight,
 * output queued); else 0 or why the transfer fails.
 */
static uint32_t dma_step(PfEpcDma *d, uint32_t *n)
{
    PfEpcDmaEnd s, t;
    uint32_t err, payload = DMA_CHUNK_MAX;
    uint64_t left = d->len - d->issued;

    *n = 0;
    err = dma_resolve(d, d->src + d->issued, &s);
    if (!err) {
        err = dma_resolve(d, d->dst + d->issued, &t);
    }
    if (err) {
        return err;
    }
    if (s.host || t.host) {
        payload = MIN(payload, d->ops->link(d->opaque));
        if (!payload) {
            return DMA_ERR_LINK;
        }
    }
    if ((s.host && d->inflight == DMA_READS_MAX) ||
        (t.host && d->ops->backlog(d->opaque) > DMA_BACKLOG_MAX)) {
        return 0;
    }
    *n = MIN(MIN(left, payload), MIN(s.room, t.room));
    if (s.host && !d->ops->read_now(d->opaque, s.addr, d->buf, *n)) {
        return dma_ask(d, s.addr, *n);
    }
    if (!s.host && pci_dma_read(d->pdev, s.addr, d->buf, *n) != MEMTX_OK) {
        return DMA_ERR_LOCAL;
    }
    err = dma_put(d, &t, d->buf, *n);
    if (!err) {
        d->done += *n;
    }
    return err;
}

/*
 * The bottom half: write what completed reads brought, then start pieces
 * until the transfer is all under way, it must wait (a completion or
 * drained output calls it again), or this turn of the main loop has moved
 * DMA_BUDGET bytes.
 */
static void dma_run(void *opaque)
{
    PfEpcDma *d = opaque;
    uint64_t moved = 0;

    for (unsigned i = 0; i < DMA_READS_MAX; i++) {
        if (d->reads[i].ready) {
            dma_write_ready(d, &d->reads[i]);
        }
    }
    while (dma_busy(d) && d->issued < d->len) {
        uint32_t n, err = dma_step(d, &n);

        if (err) {
            dma_end(d, err);
            return;
        }
        if (!n) {
            return;
        }
        d->issued += n;
        moved += n;
        if (moved >= DMA_BUDGET && d->issued < d->len) {
            qemu_bh_schedule(d->bh);
            return;
        }
    }
    dma_check_end(d);
}

void pf_epc_dma_kick(PfEpcDma *d)
{
    if (dma_busy(d) && d->issued < d->len) {
        qemu_bh_schedule(d->bh);
    }
}

/*
 * The connection failed its requests (our reads) before it said so: a
 * transfer that still needs the host fails too.
 */
void pf_epc_dma_link_down(PfEpcDma *d)
{
    PfEpcDmaEnd s, t;

    if (dma_busy(d) && d->issued < d->len &&
        (dma_resolve(d, d->src + d->issued, &s) ||
         dma_resolve(d, d->dst + d->issued, &t) || s.host || t.host)) {
        dma_end(d, DMA_ERR_LINK);
    }
}

static void dma_start(PfEpcDma *d)
{
    if (dma_busy(d)) {
        return;
    }
    d->status = DMA_ST_BUSY;
    d->error = 0;
    d->count = 0;
    d->issued = 0;
    d->done = 0;
    if (!d->len) {
        dma_end(d, DMA_ERR_LENGTH);
        return;
    }
    qemu_bh_schedule(d->bh);
}

static uint32_t dma_half(uint64_t v, bool lo)
{
    return lo ? (uint32_t)v : v >> 32;
}

static uint64_t dma_set_half(uint64_t v, bool lo, uint32_t val)
{
    return lo ? (v & ~0xffffffffULL) | val
              : (v & 0xffffffffULL) | (uint64_t)val << 32;
}

uint32_t pf_epc_dma_reg_read(PfEpcDma *d, hwaddr addr)
{
    switch (addr) {
    case DMA_SRC_LO:
    case DMA_SRC_HI:
        return dma_half(d->src, addr == DMA_SRC_LO);
    case DMA_DST_LO:
    case DMA_DST_HI:
        return dma_half(d->dst, addr == DMA_DST_LO);
    case DMA_LEN:
        return d->len;
    case DMA_STATUS:
        return d->status;
    case DMA_ERROR:
        return d->error;
    case DMA_COUNT:
        return dma_busy(d) ? d->done : d->count;
    default:
        return 0;
    }
}

/* The registers of a transfer under way are kept until it ends. */
void pf_epc_dma_reg_write(PfEpcDma *d, hwaddr addr, uint32_t val)
{
    if (addr == DMA_CTRL) {
        if (val & DMA_CTRL_ABORT) {
            dma_end(d, DMA_ERR_ABORTED);
        } else if (val & DMA_CTRL_START) {
            dma_start(d);
        }
        return;
    }
    if (dma_busy(d)) {
        return;
    }
    switch (addr) {
    case DMA_SRC_LO:
    case DMA_SRC_HI:
        d->src = dma_set_half(d->src, addr == DMA_SRC_LO, val);
        break;
    case DMA_DST_LO:
    case DMA_DST_HI:
        d->dst = dma_set_half(d->dst, addr == DMA_DST_LO, val);
        break;
    case DMA_LEN:
        d->len = val;
        break;
    }
}

/* Reads still out stay counted until the connection completes them. */
void pf_epc_dma_reset(PfEpcDma *d)
{
    qemu_bh_cancel(d->bh);
    for (unsigned i = 0; i < DMA_READS_MAX; i++) {
        PfEpcDmaRead *r = &d->reads[i];

        if (r->ready) {
            r->used = r->ready = false;
            d->inflight--;
        }
        r->cancelled = r->used;
    }
    d->src = d->dst = 0;
    d->len = 0;
    d->status = 0;
    d->error = 0;
    d->count = 0;
}

PfEpcDma *pf_epc_dma_new(PCIDevice *pdev, int window_bar,
                         uint64_t window_size, const PfEpcDmaOps *ops,
                         void *opaque)
{
    PfEpcDma *d = g_new0(PfEpcDma, 1);

    d->pdev = pdev;
    d->window_bar = window_bar;
    d->window_size = window_size;
    d->ops = ops;
    d->opaque = opaque;
    d->buf = g_malloc(DMA_CHUNK_MAX);
    d->read_bufs = g_malloc(DMA_READS_MAX * DMA_CHUNK_MAX);
    for (unsigned i = 0; i < DMA_READS_MAX; i++) {
        d->reads[i].req.dest = d->read_bufs + i * DMA_CHUNK_MAX;
    }
    d->bh = aio_bh_new_guarded(qemu_get_aio_context(), dma_run, d,
                               &DEVICE(pdev)->mem_reentrancy_guard);
    return d;
}

void pf_epc_dma_free(PfEpcDma *d)
{
    if (d) {
        qemu_bh_delete(d->bh);
        g_free(d->read_bufs);
        g_free(d->buf);
        g_free(d);
    }
}
