/*
 * pciefw-epc: a PCI endpoint controller whose function is served, over the
 * pciefw protocol, to a host QEMU's pciefw device
 *
 * The guest of this QEMU (the endpoint guest) programs one endpoint
 * function through the registers of BAR0 -- its identity, BARs backed by
 * its own memory, interrupt capabilities -- and starts the link.  The
 * device then plays the protocol's endpoint side: it describes that
 * function to the host, serves the host's BAR accesses from the endpoint
 * guest's memory, turns accesses to the outbound window (BAR2) into DMA to
 * the host, and raises the host's interrupts.  The registers are specified
 * in docs/epc.md of the pciefw project ("epc.md N" below); the protocol in
 * docs/protocol.md ("spec N").
 *
 * Copyright (c) 2025 The pciefw authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <poll.h>
#include <sys/un.h>
#include "qemu/cutils.h"
#include "qemu/error-report.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "qemu/module.h"
#include "qemu/sockets.h"
#include "qemu/timer.h"
#include "qapi/error.h"
#include "hw/pci/pci.h"
#include "hw/pci/pci_device.h"
#include "hw/pci/msi.h"
#include "hw/qdev-properties.h"
#include "migration/vmstate.h"
#include "qom/object.h"

#include "protocol/pciefw.h"
#include "protocol/buf.h"
#include "protocol/codec.h"
#include "protocol/description.h"
#include "protocol/frame.h"
#include "protocol/handshake.h"
#include "protocol/msg.h"

#include "pciefw-epc-dma.h"

#define TYPE_PCIEFW_EPC "pciefw-epc"
OBJECT_DECLARE_SIMPLE_TYPE(PfEpcState, PCIEFW_EPC)

/* epc.md 1 */
#define EPC_VENDOR_ID           0x1234
#define EPC_DEVICE_ID           0xfe0c
#define EPC_REGS_SIZE           0x1000
#define EPC_WINDOW_SIZE         (16 * 1024 * 1024)
#define EPC_NUM_MAPS            16

/* epc.md 2 */
#define EPC_ID                  0x000
#define EPC_ID_VALUE            0x43504546
#define EPC_VERSION             0x004
#define EPC_VERSION_VALUE       0x00010001
#define EPC_WINDOW              0x008
#define EPC_MAP_SLOTS           0x00c
#define EPC_CTRL                0x010
#define EPC_CTRL_START          0x1
#define EPC_STATUS              0x014
#define EPC_STATUS_STARTED      0x1
#define EPC_STATUS_LINK_UP      0x2
#define EPC_STATUS_START_ERROR  0x4
#define EPC_ERROR               0x018
#define EPC_EVENTS              0x01c
#define EPC_EVENT_ENABLE        0x020
#define EPC_EV_LINK_UP          0x1
#define EPC_EV_LINK_DOWN        0x2
#define EPC_EV_HOST_RESET       0x4
#define EPC_EV_DMA              0x8
#define EPC_EV_ALL              0xf
#define EPC_RAISE_IRQ           0x024
#define EPC_RAISE_STATUS        0x028
#define EPC_INTX                0x02c

/* epc.md 3.3: RAISE_STATUS, what became of the last interrupt asked for */
enum {
    EPC_RAISE_SENT = 0,
    EPC_RAISE_NO_LINK = 1,
    EPC_RAISE_NOT_DECLARED = 2,
};

/* epc.md 3.1 */
#define EPC_FN_ID               0x040
#define EPC_FN_SUBSYS           0x044
#define EPC_FN_CLASS_REV        0x048
#define EPC_FN_INTX_PIN         0x04c
#define EPC_FN_MSI_VECTORS      0x050
#define EPC_FN_MSIX_VECTORS     0x054
#define EPC_FN_MSIX_TABLE       0x058
#define EPC_FN_MSIX_PBA         0x05c

/* epc.md 3.2, 5 */
#define EPC_BAR_BASE            0x100
#define EPC_BAR_END             (EPC_BAR_BASE + 0x20 * PCIEFW_NUM_BARS)
#define EPC_BAR_FLAGS_IO        0x1
#define EPC_BAR_FLAGS_64        0x4
#define EPC_BAR_FLAGS_PREFETCH  0x8
#define EPC_BAR_FLAGS_MASK      0xd
#define EPC_BAR_ENABLE          0x80000000u
#define EPC_MAP_BASE            0x400
#define EPC_MAP_END             (EPC_MAP_BASE + 0x20 * EPC_NUM_MAPS)

/* epc.md 4: why a START was refused */
enum {
    EPC_ERR_VENDOR = 1,
    EPC_ERR_BAR = 2,
    EPC_ERR_VECTORS = 4,
    EPC_ERR_MSIX = 5,
    EPC_ERR_PIN = 6,
};

#define EPC_DEFAULT_TIMEOUT_MS  5000
#define EPC_MAX_TIMEOUT_MS      60000
#define EPC_RX_CHUNK            (64 * 1024)
#define EPC_RX_BATCH            16
/* Posted window writes queued beyond this wait for the socket to drain. */
#define EPC_TX_HIGH_WATER       (1024 * 1024)
/*
 * Completions a host may leave unread: beyond this the session fails with
 * ERROR_LIMIT, so a host that sends reads and never reads the answers
 * cannot grow QEMU's memory (as the pciefw host's own limit, spec 7.2).
 */
#define EPC_TX_LIMIT            (32 * 1024 * 1024)
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

/* The function as latched at START (epc.md 3). */
typedef struct PfEpcFunction {
    uint32_t id, subsys, class_rev, intx_pin;
    uint32_t msi_vectors, msix_vectors, msix_table, msix_pba;
    PfEpcBar bars[PCIEFW_NUM_BARS];
} PfEpcFunction;

/*
 * A host connection goes HELD (accepted, link down: nothing is sent) ->
 * WAIT_HELLO (our Hello is out) -> UP (the description is out).
 */
typedef enum PfEpcConnState {
    EPC_NONE,
    EPC_HELD,
    EPC_WAIT_HELLO,
    EPC_UP,
} PfEpcConnState;

struct PfEpcState {
    PCIDevice parent_obj;

    MemoryRegion regs;
    MemoryRegion window;
    char *path;
    uint32_t timeout_ms;
    uint32_t read_ahead;        /* bytes an outbound read fetches, 0: exact */

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

    /* The host connection */
    int listen_fd;
    int fd;
    bool read_watched;          /* the handlers registered for fd */
    bool write_watched;
    PfEpcConnState state;
    struct pf_frame_decoder dec;
    struct pf_codec codec;
    struct pf_buf out;
    uint8_t *rxbuf;
    struct pf_hello_params hello;
    struct pf_session session;
    bool dispatching;           /* handling a host message */
    QEMUTimer *hello_timer;     /* a host that never says hello goes */

    /* The outbound read the CPU waits for */
    uint32_t next_tag;
    bool waiting;
    uint32_t wait_tag;
    uint32_t wait_size;
    bool cpl_done;
    int cpl_status;
    uint8_t cpl_data[8];
    uint8_t *cpl_dest;          /* where the completion's data goes */

    /* What the last outbound read fetched ahead (epc.md 5.1) */
    uint8_t *ra_buf;
    uint64_t ra_host;           /* host address of ra_buf[0] */
    uint32_t ra_len;            /* bytes valid, 0: none */
    uint64_t ra_next;           /* reads below this address fetch again */

    PfEpcDma *dma;              /* the DMA engine (pciefw-epc-dma.c) */
};

static void epc_read_input(PfEpcState *s, int max_reads);
static void epc_update_watch(PfEpcState *s);

static uint64_t all_ones(unsigned size)
{
    return size >= 8 ? UINT64_MAX : (1ULL << (size * 8)) - 1;
}

/* ---------------------------------------------------------------------- */
/* The EPC's own interrupt (epc.md 6)                                      */

static void epc_update_irq(PfEpcState *s)
{
    PCIDevice *pdev = PCI_DEVICE(s);
    bool level = s->events & s->event_enable;

    if (msi_enabled(pdev)) {
        if (level && !s->irq_level) {
            msi_notify(pdev, 0);
        }
    } else {
        pci_set_irq(pdev, level);
    }
    s->irq_level = level;
}

static void epc_event(PfEpcState *s, uint32_t ev)
{
    s->events |= ev;
    epc_update_irq(s);
}

/* ---------------------------------------------------------------------- */
/* The connection                                                          */

/* Forget the host: the link is down (spec 7.2: the host sees it gone). */
static void epc_drop(PfEpcState *s, const char *why)
{
    bool was_up = s->state == EPC_UP;

    if (s->fd < 0) {
        return;
    }
    if (was_up || s->state == EPC_WAIT_HELLO) {
        info_report("pciefw-epc: host disconnected: %s", why);
    }
    qemu_set_fd_handler(s->fd, NULL, NULL, NULL);
    close(s->fd);
    s->fd = -1;
    s->read_watched = false;
    s->write_watched = false;
    s->state = EPC_NONE;
    if (s->hello_timer) {
        timer_del(s->hello_timer);
    }
    s->waiting = false;
    s->ra_len = 0;
    pf_buf_clear(&s->out);
    pf_frame_decoder_free(&s->dec);
    s->status &= ~EPC_STATUS_LINK_UP;
    pf_epc_dma_link_down(s->dma);
    if (was_up) {
        epc_event(s, EPC_EV_LINK_DOWN);
    }
}

/* Write what the socket takes without blocking. */
static bool epc_flush(PfEpcState *s)
{
    while (s->fd >= 0 && !pf_buf_empty(&s->out)) {
        ssize_t n = send(s->fd, pf_buf_peek(&s->out), pf_buf_used(&s->out),
                         MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return true;
            }
            epc_drop(s, strerror(errno));
            return false;
        }
        pf_buf_consume(&s->out, n);
    }
    return s->fd >= 0;
}

/* A pf_put_*() result: out of memory ends the session. */
static bool epc_queued(PfEpcState *s, int r)
{
    if (r != PF_OK) {
        epc_drop(s, "cannot encode a message");
        return false;
    }
    return true;
}

static void G_GNUC_PRINTF(3, 4)
epc_protocol_error(PfEpcState *s, Pciefw__ErrorCode code, const char *fmt, ...)
{
    g_autofree char *why = NULL;
    va_list ap;

    va_start(ap, fmt);
    why = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    warn_report("pciefw-epc: protocol error: %s", why);
    if (epc_queued(s, pf_put_error(&s->out, code, why))) {
        epc_flush(s);
    }
    epc_drop(s, why);
}

/*
 * Serve the socket until @done says so or the timeout passes; meanwhile
 * every host message is handled in order (spec 5.3).  Holds the BQL.
 */
static bool epc_pump(PfEpcState *s, bool (*done)(PfEpcState *))
{
    int64_t deadline = qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + s->timeout_ms;

    epc_flush(s);
    while (s->fd >= 0 && !done(s)) {
        int64_t left = deadline - qemu_clock_get_ms(QEMU_CLOCK_REALTIME);
        struct pollfd pfd = {
            .fd = s->fd,
            .events = POLLIN | (pf_buf_empty(&s->out) ? 0 : POLLOUT),
        };
        int r;

        if (left <= 0) {
            epc_drop(s, "no answer within the timeout");
            return false;
        }
        r = poll(&pfd, 1, MIN(left, INT_MAX));
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            epc_drop(s, strerror(errno));
            return false;
        }
        if (pfd.revents & POLLOUT) {
            epc_flush(s);
        }
        if (s->fd >= 0 && pfd.revents & (POLLIN | POLLHUP | POLLERR)) {
            epc_read_input(s, 1);
        }
    }
    return s->fd >= 0 && done(s);
}

static bool epc_cpl_done(PfEpcState *s)
{
    return s->cpl_done;
}

static bool epc_out_drained(PfEpcState *s)
{
    return pf_buf_used(&s->out) < EPC_TX_HIGH_WATER / 2;
}

/* A posted message was queued: send it, bounding the backlog. */
static void epc_posted(PfEpcState *s)
{
    epc_flush(s);
    if (s->fd >= 0 && !s->waiting && !s->dispatching &&
        pf_buf_used(&s->out) > EPC_TX_HIGH_WATER) {
        epc_pump(s, epc_out_drained);
    }
    epc_update_watch(s);
}

/* ---------------------------------------------------------------------- */
/* The function's description (epc.md 3, spec 4.2)                        */

typedef struct PfEpcDesc {
    Pciefw__DeviceDescription d;
    Pciefw__Bar bars[PCIEFW_NUM_BARS];
    Pciefw__Bar *bar_ptrs[PCIEFW_NUM_BARS];
} PfEpcDesc;

static void epc_build_desc(const PfEpcFunction *f, PfEpcDesc *o)
{
    Pciefw__DeviceDescription *d = &o->d;

    pciefw__device_description__init(d);
    d->vendor_id = f->id & 0xffff;
    d->device_id = f->id >> 16;
    d->subsystem_vendor_id = f->subsys & 0xffff;
    d->subsystem_id = f->subsys >> 16;
    d->class_code = f->class_rev >> 8;
    d->revision = f->class_rev & 0xff;
    d->intx_pin = f->intx_pin;
    d->msi_vectors = f->msi_vectors;
    d->msix_vectors = f->msix_vectors;
    if (f->msix_vectors) {
        d->msix_table_bar = f->msix_table & 7;
        d->msix_table_offset = f->msix_table & ~7u;
        d->msix_pba_bar = f->msix_pba & 7;
        d->msix_pba_offset = f->msix_pba & ~7u;
    }
    d->bars = o->bar_ptrs;
    d->n_bars = 0;
    for (unsigned i = 0; i < PCIEFW_NUM_BARS; i++) {
        const PfEpcBar *b = &f->bars[i];
        Pciefw__Bar *pb = &o->bars[d->n_bars];

        if (!(b->flags & EPC_BAR_ENABLE)) {
            continue;
        }
        pciefw__bar__init(pb);
        pb->index = i;
        pb->size = b->size;
        pb->prefetchable = !!(b->flags & EPC_BAR_FLAGS_PREFETCH);
        if (b->flags & EPC_BAR_FLAGS_IO) {
            pb->kind = PCIEFW__BAR_KIND__BAR_IO;
        } else if (b->flags & EPC_BAR_FLAGS_64) {
            pb->kind = PCIEFW__BAR_KIND__BAR_MEM64;
        } else {
            pb->kind = PCIEFW__BAR_KIND__BAR_MEM32;
        }
        o->bar_ptrs[d->n_bars++] = pb;
    }
}

/* The rules of spec 4.2, as epc.md 4's ERROR codes; 0 if none is broken. */
static uint32_t epc_check_function(const PfEpcFunction *f, char *err,
                                   size_t errlen)
{
    PfEpcDesc desc;
    PfMessage m;
    uint32_t vendor = f->id & 0xffff;
    uint32_t msi = f->msi_vectors;

    if (vendor == 0 || vendor == 0xffff) {
        snprintf(err, errlen, "vendor ID 0x%04x", vendor);
        return EPC_ERR_VENDOR;
    }
    if (f->intx_pin > 4) {
        snprintf(err, errlen, "interrupt pin %u", f->intx_pin);
        return EPC_ERR_PIN;
    }
    if (msi > 32 || (msi & (msi - 1)) ||
        f->msix_vectors > PCIEFW_MAX_MSIX_VECTORS) {
        snprintf(err, errlen, "%u MSI, %u MSI-X vectors", msi,
                 f->msix_vectors);
        return EPC_ERR_VECTORS;
    }
    epc_build_desc(f, &desc);
    if (f->msix_vectors &&
        pf_desc_check_msix(&desc.d, err, errlen) != PF_OK) {
        return EPC_ERR_MSIX;
    }
    pciefw__message__init(&m);
    m.body_case = PCIEFW__MESSAGE__BODY_DEVICE_DESCRIPTION;
    m.device_description = &desc.d;
    if (pf_msg_validate(&m, PCIEFW_HANDSHAKE_FRAME, err, errlen) != PF_OK) {
        /* What is left after the checks above: the BARs, MSI-X offsets. */
        return strstr(err, "MSI-X") ? EPC_ERR_MSIX : EPC_ERR_BAR;
    }
    return 0;
}

/* ---------------------------------------------------------------------- */
/* Host requests (spec 3.1), served from the endpoint guest's memory       */

/* An enabled BAR of the wanted space. */
static bool epc_bar_is(const PfEpcBar *b, bool io)
{
    return (b->flags & EPC_BAR_ENABLE) &&
           !!(b->flags & EPC_BAR_FLAGS_IO) == io;
}

/*
 * epc.md 3.2: the host addresses BAR @bar as it was described to it, and
 * reaches the memory the BAR registers name now: a BAR retargeted while
 * the link is up serves its new memory at once, a disabled one (or one at
 * bus address 0: nothing behind it yet) serves nothing.
 */
static const PfEpcBar *epc_bar(PfEpcState *s, uint32_t bar, bool io)
{
    const PfEpcBar *now;

    if (bar >= PCIEFW_NUM_BARS) {
        return NULL;
    }
    now = &s->fn.bars[bar];
    if (!epc_bar_is(&s->live.bars[bar], io) || !epc_bar_is(now, io) ||
        !now->addr) {
        return NULL;
    }
    return now;
}

/* Spec 3.3: what a BAR access must be to be served. */
static bool epc_access_ok(PfEpcState *s, const PfEpcBar *b, uint64_t off,
                          uint64_t size, bool io)
{
    bool single = size == 1 || size == 2 || size == 4 || (!io && size == 8);

    if (!b || off >= b->size || size > b->size - off) {
        return false;
    }
    if (single) {
        return !(off & (size - 1));
    }
    return !io && size > 8 &&
           (s->session.features & PCIEFW_FEATURE_MEM_BURST);
}

static void epc_complete(PfEpcState *s, uint32_t tag, int status,
                         const void *data, uint32_t size)
{
    if (!epc_queued(s, pf_put_completion(&s->out, tag, status,
                                         status ? NULL : data,
                                         status ? 0 : size))) {
        return;
    }
    if (pf_buf_used(&s->out) > EPC_TX_HIGH_WATER) {
        epc_flush(s);
    }
    if (s->fd >= 0 && pf_buf_used(&s->out) > EPC_TX_LIMIT) {
        epc_protocol_error(s, PCIEFW__ERROR_CODE__ERROR_LIMIT,
                           "the host leaves more than %u MiB of completions "
                           "unread", EPC_TX_LIMIT >> 20);
    }
}

static void epc_bar_read(PfEpcState *s, uint32_t tag, uint32_t bar,
                         uint64_t off, uint32_t size, bool io)
{
    const PfEpcBar *b = epc_bar(s, bar, io);
    g_autofree uint8_t *data = NULL;
    int status = PCIEFW__STATUS__STATUS_SUCCESSFUL;

    if (!epc_access_ok(s, b, off, size, io)) {
        status = PCIEFW__STATUS__STATUS_UNSUPPORTED_REQUEST;
    } else {
        data = g_malloc(size);
        if (pci_dma_read(PCI_DEVICE(s), b->addr + off, data, size) !=
            MEMTX_OK) {
            status = PCIEFW__STATUS__STATUS_COMPLETER_ABORT;
        }
    }
    epc_complete(s, tag, status, data, size);
}

/* Returns the completion status (a posted write has none to carry). */
static int epc_bar_write(PfEpcState *s, uint32_t bar, uint64_t off,
                         const ProtobufCBinaryData *data, bool io)
{
    const PfEpcBar *b = epc_bar(s, bar, io);

    if (!epc_access_ok(s, b, off, data->len, io)) {
        qemu_log_mask(LOG_GUEST_ERROR, "pciefw-epc: host write of %zu bytes "
                      "at BAR%u+0x%" PRIx64 " unsupported: dropped\n",
                      data->len, bar, off);
        return PCIEFW__STATUS__STATUS_UNSUPPORTED_REQUEST;
    }
    if (pci_dma_write(PCI_DEVICE(s), b->addr + off, data->data, data->len) !=
        MEMTX_OK) {
        return PCIEFW__STATUS__STATUS_COMPLETER_ABORT;
    }
    return PCIEFW__STATUS__STATUS_SUCCESSFUL;
}

static void epc_handle_completion(PfEpcState *s, const Pciefw__Completion *c)
{
    if (c->tag & PF_EPC_DMA_TAG_BIT) {
        int r = pf_epc_dma_completion(s->dma, c->tag, c->status,
                                      c->data.data, c->data.len);

        if (r) {
            epc_protocol_error(s, r == -ENOENT ?
                               PCIEFW__ERROR_CODE__ERROR_UNKNOWN_TAG :
                               PCIEFW__ERROR_CODE__ERROR_PROTOCOL,
                               "completion with tag %u: %s", c->tag,
                               r == -ENOENT ? "no DMA read has it" :
                               "not the size the DMA engine asked for");
        }
        return;
    }
    if (!s->waiting || s->cpl_done || c->tag != s->wait_tag) {
        epc_protocol_error(s, PCIEFW__ERROR_CODE__ERROR_UNKNOWN_TAG,
                           "completion with tag %u, which no request is "
                           "waiting for", c->tag);
        return;
    }
    if (c->status == PCIEFW__STATUS__STATUS_SUCCESSFUL &&
        c->data.len != s->wait_size) {
        epc_protocol_error(s, PCIEFW__ERROR_CODE__ERROR_PROTOCOL,
                           "completion for tag %u carries %zu bytes, %u "
                           "expected", c->tag, c->data.len, s->wait_size);
        return;
    }
    s->cpl_status = c->status;
    if (c->status == PCIEFW__STATUS__STATUS_SUCCESSFUL) {
        memcpy(s->cpl_dest, c->data.data, s->wait_size);
    }
    s->cpl_done = true;
}

/*
 * The host enumerates the function as its registers are now (a BAR set
 * since START with another size is seen by a host that connects later,
 * epc.md 3.2), so they are checked again.
 */
static void epc_send_description(PfEpcState *s)
{
    PfEpcDesc desc;
    char err[256] = "";

    if (epc_check_function(&s->fn, err, sizeof(err))) {
        qemu_log_mask(LOG_GUEST_ERROR, "pciefw-epc: the function's registers "
                      "no longer describe a valid function: %s\n", err);
        epc_protocol_error(s, PCIEFW__ERROR_CODE__ERROR_PROTOCOL,
                           "the endpoint's function is not valid: %s", err);
        return;
    }
    s->live = s->fn;
    epc_build_desc(&s->live, &desc);
    if (!epc_queued(s, pf_put_description(&s->out, &desc.d))) {
        return;
    }
    s->state = EPC_UP;
    timer_del(s->hello_timer);
    s->status |= EPC_STATUS_LINK_UP;
    info_report("pciefw-epc: host %s connected: function %04x:%04x",
                s->session.peer_name, desc.d.vendor_id, desc.d.device_id);
    if (s->intx && s->live.intx_pin &&
        epc_queued(s, pf_put_intx(&s->out, true))) {
        epc_flush(s);
    }
    epc_event(s, EPC_EV_LINK_UP);
}

static void epc_handle_hello(PfEpcState *s, const PfMessage *m)
{
    char err[256];
    int r = pf_hello_negotiate(&s->hello, m, &s->session, err, sizeof(err));

    if (r != PF_OK) {
        epc_protocol_error(s, pf_error_code(r), "handshake failed: %s", err);
        return;
    }
    pf_frame_decoder_set_max(&s->dec, PCIEFW_MAX_FRAME(s->session.max_payload));
    epc_send_description(s);
}

static void epc_handle_request(PfEpcState *s, const PfMessage *m)
{
    int status;

    if (m->body_case != PCIEFW__MESSAGE__BODY_COMPLETION) {
        /* epc.md 5.1: what the host did before this is to be seen. */
        s->ra_len = 0;
    }
    switch (m->body_case) {
    case PCIEFW__MESSAGE__BODY_CONFIG_READ: {
        /* No device-specific config registers: reads 0 (spec 4.1). */
        uint8_t zero[4] = { 0 };

        epc_complete(s, m->config_read->tag, PCIEFW__STATUS__STATUS_SUCCESSFUL,
                     zero, m->config_read->size);
        break;
    }
    case PCIEFW__MESSAGE__BODY_CONFIG_WRITE:
        epc_complete(s, m->config_write->tag,
                     PCIEFW__STATUS__STATUS_SUCCESSFUL, NULL, 0);
        break;
    case PCIEFW__MESSAGE__BODY_MEM_READ:
        epc_bar_read(s, m->mem_read->tag, m->mem_read->bar,
                     m->mem_read->offset, m->mem_read->size, false);
        break;
    case PCIEFW__MESSAGE__BODY_MEM_WRITE:
        epc_bar_write(s, m->mem_write->bar, m->mem_write->offset,
                      &m->mem_write->data, false);
        break;
    case PCIEFW__MESSAGE__BODY_IO_READ:
        epc_bar_read(s, m->io_read->tag, m->io_read->bar, m->io_read->offset,
                     m->io_read->size, true);
        break;
    case PCIEFW__MESSAGE__BODY_IO_WRITE:
        status = epc_bar_write(s, m->io_write->bar, m->io_write->offset,
                               &m->io_write->data, true);
        epc_complete(s, m->io_write->tag, status, NULL, 0);
        break;
    case PCIEFW__MESSAGE__BODY_RESET:
        /* epc.md 6: the function lives in the endpoint guest; tell it. */
        epc_complete(s, m->reset->tag, PCIEFW__STATUS__STATUS_SUCCESSFUL,
                     NULL, 0);
        epc_event(s, EPC_EV_HOST_RESET);
        break;
    case PCIEFW__MESSAGE__BODY_COMPLETION:
        epc_handle_completion(s, m->completion);
        break;
    case PCIEFW__MESSAGE__BODY_GOODBYE:
        epc_drop(s, "the host said goodbye");
        break;
    case PCIEFW__MESSAGE__BODY_ERROR:
        epc_drop(s, m->error->text && *m->error->text ? m->error->text :
                 "the host reported an error");
        break;
    default:
        epc_protocol_error(s, PCIEFW__ERROR_CODE__ERROR_UNEXPECTED,
                           "unexpected %s message from the host",
                           pf_msg_kind_name(m->body_case));
        break;
    }
}

static void epc_handle_frame(PfEpcState *s, const uint8_t *frame, size_t len)
{
    uint32_t max_payload = s->state == EPC_UP ? s->session.max_payload
                                              : PCIEFW_HANDSHAKE_FRAME;
    PfMessage *m;
    char err[256];
    int r;

    r = pf_codec_decode(&s->codec, frame, len, &m, err, sizeof(err));
    if (r == PF_OK) {
        r = pf_msg_validate(m, max_payload, err, sizeof(err));
    }
    if (r != PF_OK) {
        epc_protocol_error(s, pf_error_code(r), "%s", err);
        return;
    }
    if (s->state == EPC_WAIT_HELLO) {
        if (m->body_case == PCIEFW__MESSAGE__BODY_GOODBYE ||
            m->body_case == PCIEFW__MESSAGE__BODY_ERROR) {
            epc_drop(s, "the host refused the handshake");
        } else {
            epc_handle_hello(s, m);
        }
        return;
    }
    epc_handle_request(s, m);
}

/*
 * Handle one frame with the device marked busy: a BAR placed on the EPC's
 * own window would make serving it access the device itself, which is
 * refused (QEMU's reentrancy guard and s->dispatching).
 */
static void epc_dispatch_frame(PfEpcState *s, const uint8_t *frame,
                               size_t len)
{
    MemReentrancyGuard *guard = &DEVICE(s)->mem_reentrancy_guard;
    bool engaged = guard->engaged_in_io;

    guard->engaged_in_io = true;
    s->dispatching = true;
    epc_handle_frame(s, frame, len);
    s->dispatching = false;
    guard->engaged_in_io = engaged;
}

static void epc_read_input(PfEpcState *s, int max_reads)
{
    while (max_reads-- > 0 && s->fd >= 0 && s->state != EPC_HELD) {
        ssize_t n = recv(s->fd, s->rxbuf, EPC_RX_CHUNK, 0);
        size_t off = 0;

        if (n < 0) {
            if (errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) {
                epc_drop(s, strerror(errno));
            }
            return;
        }
        if (n == 0) {
            epc_drop(s, "connection closed by the host");
            return;
        }
        while (off < (size_t)n && s->fd >= 0) {
            const uint8_t *frame;
            size_t used, len;
            int r = pf_frame_decoder_push(&s->dec, s->rxbuf + off, n - off,
                                          &used, &frame, &len);

            off += used;
            if (r == PF_OK) {
                epc_dispatch_frame(s, frame, len);
            } else if (r != PF_AGAIN) {
                epc_protocol_error(s, pf_error_code(r), "bad frame: %s",
                                   pf_strerror(r));
                return;
            }
        }
    }
}

static void epc_fd_read(void *opaque)
{
    PfEpcState *s = opaque;

    epc_read_input(s, EPC_RX_BATCH);
    epc_flush(s);
    epc_update_watch(s);
}

static void epc_fd_write(void *opaque)
{
    PfEpcState *s = opaque;

    epc_flush(s);
    epc_update_watch(s);
}

/*
 * A held connection is not read: the host's Hello waits for START.  The
 * handlers are re-registered only when they change: this runs once per
 * host request, and registering is not free.  It runs after every flush,
 * so it also tells the DMA engine the output may have drained.
 */
static void epc_update_watch(PfEpcState *s)
{
    bool want_read, want_write;

    if (s->fd < 0) {
        return;
    }
    /* The DMA engine may wait for the output to drain (epc.md 12). */
    pf_epc_dma_kick(s->dma);
    want_read = s->state != EPC_HELD;
    want_write = !pf_buf_empty(&s->out);
    if (want_read != s->read_watched || want_write != s->write_watched) {
        s->read_watched = want_read;
        s->write_watched = want_write;
        qemu_set_fd_handler(s->fd, want_read ? epc_fd_read : NULL,
                            want_write ? epc_fd_write : NULL, s);
    }
}

/* The link is up and a host is held: open the handshake (spec 2). */
static void epc_greet(PfEpcState *s)
{
    if (s->state != EPC_HELD || !(s->status & EPC_STATUS_STARTED)) {
        return;
    }
    if (pf_frame_decoder_init(&s->dec, PCIEFW_HANDSHAKE_FRAME) != PF_OK ||
        !epc_queued(s, pf_put_hello(&s->out, &s->hello))) {
        epc_drop(s, "out of memory");
        return;
    }
    s->state = EPC_WAIT_HELLO;
    timer_mod(s->hello_timer,
              qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + s->timeout_ms);
    epc_flush(s);
    epc_update_watch(s);
}

/* The host got our Hello but sent none within the timeout: free the link. */
static void epc_hello_timeout(void *opaque)
{
    PfEpcState *s = opaque;

    if (s->state == EPC_WAIT_HELLO) {
        epc_drop(s, "no hello from the host within the timeout");
    }
}

/* Spec 2.4: one host at a time; a second one is told why and closed. */
static void epc_refuse(int fd)
{
    struct pf_buf b;

    pf_buf_init(&b);
    if (pf_put_error(&b, PCIEFW__ERROR_CODE__ERROR_BUSY,
                     "pciefw-epc is busy: it already serves a host") == PF_OK) {
        if (send(fd, pf_buf_peek(&b), pf_buf_used(&b), MSG_NOSIGNAL) < 0) {
            /* Best effort: the host learns it from the close too. */
        }
    }
    pf_buf_free(&b);
    close(fd);
}

/*
 * A held connection is not read, so its end goes unnoticed until a new
 * host knocks: then a peek tells whether the held one is still there.
 */
static bool epc_held_gone(PfEpcState *s)
{
    uint8_t byte;
    ssize_t n = recv(s->fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);

    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
                      errno != EINTR);
}

static void epc_accept(void *opaque)
{
    PfEpcState *s = opaque;
    int fd = qemu_accept(s->listen_fd, NULL, NULL);

    if (fd < 0) {
        return;
    }
    if (s->fd >= 0 && s->state == EPC_HELD && epc_held_gone(s)) {
        epc_drop(s, "the held host went away");
    }
    if (s->fd >= 0) {
        epc_refuse(fd);
        return;
    }
    qemu_set_blocking(fd, false, NULL);
    s->fd = fd;
    s->read_watched = false;
    s->write_watched = false;
    s->state = EPC_HELD;
    s->waiting = false;
    epc_greet(s);
    epc_update_watch(s);
}

/* ---------------------------------------------------------------------- */
/* Start and stop (epc.md 4)                                               */

static void epc_start(PfEpcState *s)
{
    char err[256] = "";

    if (s->status & EPC_STATUS_STARTED) {
        return;
    }
    s->error = epc_check_function(&s->fn, err, sizeof(err));
    if (s->error) {
        s->status |= EPC_STATUS_START_ERROR;
        qemu_log_mask(LOG_GUEST_ERROR, "pciefw-epc: START refused (error "
                      "%u): %s\n", s->error, err);
        return;
    }
    s->status = EPC_STATUS_STARTED;
    epc_greet(s);
}

static void epc_stop(PfEpcState *s)
{
    if (!(s->status & EPC_STATUS_STARTED)) {
        return;
    }
    if (s->fd >= 0 && s->state != EPC_HELD &&
        epc_queued(s, pf_put_goodbye(&s->out,
                                     PCIEFW__GOODBYE_REASON__GOODBYE_SHUTDOWN,
                                     "the endpoint stopped the link"))) {
        epc_flush(s);
    }
    epc_drop(s, "the endpoint stopped the link");
    s->status &= ~(EPC_STATUS_STARTED | EPC_STATUS_LINK_UP);
    epc_event(s, EPC_EV_LINK_DOWN);
}

/* ---------------------------------------------------------------------- */
/* Interrupts to the host (epc.md 3.3)                                     */

/* Queue what RAISE_IRQ asks for; RAISE_STATUS says if it could. */
static uint32_t epc_queue_irq(PfEpcState *s, uint32_t val)
{
    uint32_t kind = val & 3, vector = (val >> 16) & 0xfff;
    int r;

    if (s->state != EPC_UP) {
        return EPC_RAISE_NO_LINK;
    }
    switch (kind) {
    case 1:
        if (!s->live.intx_pin) {
            return EPC_RAISE_NOT_DECLARED;
        }
        /* A pulse; the INTX register holds a level (epc.md 3.3). */
        r = pf_put_intx(&s->out, true);
        if (r == PF_OK && !s->intx) {
            r = pf_put_intx(&s->out, false);
        }
        break;
    case 2:
        if (vector >= s->live.msi_vectors) {
            return EPC_RAISE_NOT_DECLARED;
        }
        r = pf_put_msi(&s->out, vector);
        break;
    case 3:
        if (vector >= s->live.msix_vectors) {
            return EPC_RAISE_NOT_DECLARED;
        }
        r = pf_put_msix(&s->out, vector);
        break;
    default:
        return EPC_RAISE_NOT_DECLARED;
    }
    if (!epc_queued(s, r)) {
        return EPC_RAISE_NO_LINK;
    }
    epc_posted(s);
    return EPC_RAISE_SENT;
}

static void epc_raise(PfEpcState *s, uint32_t val)
{
    s->raise_status = epc_queue_irq(s, val);
}

/* epc.md 3.3: the INTx pin as a level, sent when it changes. */
static void epc_set_intx(PfEpcState *s, bool level)
{
    bool changed = level != s->intx;

    s->intx = level;
    if (s->state != EPC_UP) {
        s->raise_status = EPC_RAISE_NO_LINK;
    } else if (!s->live.intx_pin) {
        s->raise_status = EPC_RAISE_NOT_DECLARED;
    } else if (!changed) {
        s->raise_status = EPC_RAISE_SENT;
    } else if (epc_queued(s, pf_put_intx(&s->out, level))) {
        epc_posted(s);
        s->raise_status = EPC_RAISE_SENT;
    } else {
        s->raise_status = EPC_RAISE_NO_LINK;
    }
}

/* ---------------------------------------------------------------------- */
/* BAR0: registers                                                         */

static uint64_t epc_get64(uint64_t v, bool lo)
{
    return lo ? (uint32_t)v : v >> 32;
}

static uint64_t epc_set64(uint64_t v, bool lo, uint32_t val)
{
    return lo ? (v & ~0xffffffffULL) | val
              : (v & 0xffffffffULL) | (uint64_t)val << 32;
}

static uint64_t epc_bar_reg_read(PfEpcState *s, hwaddr addr)
{
    PfEpcBar *b = &s->fn.bars[(addr - EPC_BAR_BASE) / 0x20];
    int field = (addr - EPC_BAR_BASE) % 0x20;

    switch (field) {
    case 0x00:
    case 0x04:
        return epc_get64(b->addr, field == 0x00);
    case 0x08:
    case 0x0c:
        return epc_get64(b->size, field == 0x08);
    case 0x10:
        return b->flags;
    default:
        return 0;
    }
}

static void epc_bar_reg_write(PfEpcState *s, hwaddr addr, uint32_t val)
{
    PfEpcBar *b = &s->fn.bars[(addr - EPC_BAR_BASE) / 0x20];
    int field = (addr - EPC_BAR_BASE) % 0x20;

    switch (field) {
    case 0x00:
    case 0x04:
        b->addr = epc_set64(b->addr, field == 0x00, val);
        break;
    case 0x08:
    case 0x0c:
        b->size = epc_set64(b->size, field == 0x08, val);
        break;
    case 0x10:
        b->flags = val & (EPC_BAR_FLAGS_MASK | EPC_BAR_ENABLE);
        break;
    }
}

static uint64_t epc_map_reg_read(PfEpcState *s, hwaddr addr)
{
    PfEpcMap *m = &s->maps[(addr - EPC_MAP_BASE) / 0x20];

    switch ((addr - EPC_MAP_BASE) % 0x20) {
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

/* epc.md 5: a region that cannot be mapped does not enable. */
static void epc_map_reg_write(PfEpcState *s, hwaddr addr, uint32_t val)
{
    PfEpcMap *m = &s->maps[(addr - EPC_MAP_BASE) / 0x20];

    s->ra_len = 0;

    switch ((addr - EPC_MAP_BASE) % 0x20) {
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

static uint64_t epc_regs_read(void *opaque, hwaddr addr, unsigned size)
{
    PfEpcState *s = opaque;

    if (size != 4 || (addr & 3)) {
        return 0;
    }
    if (addr >= EPC_BAR_BASE && addr < EPC_BAR_END) {
        return epc_bar_reg_read(s, addr);
    }
    if (addr >= EPC_MAP_BASE && addr < EPC_MAP_END) {
        return epc_map_reg_read(s, addr);
    }
    if (addr >= PF_EPC_DMA_BASE && addr < PF_EPC_DMA_END) {
        return pf_epc_dma_reg_read(s->dma, addr);
    }
    switch (addr) {
    case EPC_ID:
        return EPC_ID_VALUE;
    case EPC_VERSION:
        return EPC_VERSION_VALUE;
    case EPC_WINDOW:
        return EPC_WINDOW_SIZE;
    case EPC_MAP_SLOTS:
        return EPC_NUM_MAPS;
    case EPC_CTRL:
        return s->ctrl;
    case EPC_STATUS:
        return s->status;
    case EPC_ERROR:
        return s->error;
    case EPC_EVENTS:
        return s->events;
    case EPC_EVENT_ENABLE:
        return s->event_enable;
    case EPC_RAISE_STATUS:
        return s->raise_status;
    case EPC_INTX:
        return s->intx;
    case EPC_FN_ID:
        return s->fn.id;
    case EPC_FN_SUBSYS:
        return s->fn.subsys;
    case EPC_FN_CLASS_REV:
        return s->fn.class_rev;
    case EPC_FN_INTX_PIN:
        return s->fn.intx_pin;
    case EPC_FN_MSI_VECTORS:
        return s->fn.msi_vectors;
    case EPC_FN_MSIX_VECTORS:
        return s->fn.msix_vectors;
    case EPC_FN_MSIX_TABLE:
        return s->fn.msix_table;
    case EPC_FN_MSIX_PBA:
        return s->fn.msix_pba;
    default:
        return 0;
    }
}

static void epc_regs_write(void *opaque, hwaddr addr, uint64_t val64,
                           unsigned size)
{
    PfEpcState *s = opaque;
    uint32_t val = val64;

    if (size != 4 || (addr & 3)) {
        return;
    }
    if (addr >= EPC_BAR_BASE && addr < EPC_BAR_END) {
        epc_bar_reg_write(s, addr, val);
        return;
    }
    if (addr >= EPC_MAP_BASE && addr < EPC_MAP_END) {
        epc_map_reg_write(s, addr, val);
        return;
    }
    if (addr >= PF_EPC_DMA_BASE && addr < PF_EPC_DMA_END) {
        pf_epc_dma_reg_write(s->dma, addr, val);
        return;
    }
    switch (addr) {
    case EPC_CTRL:
        s->ctrl = val & EPC_CTRL_START;
        s->status &= ~EPC_STATUS_START_ERROR;
        s->error = 0;
        if (s->ctrl) {
            epc_start(s);
        } else {
            epc_stop(s);
        }
        break;
    case EPC_EVENTS:
        s->events &= ~val;
        epc_update_irq(s);
        break;
    case EPC_EVENT_ENABLE:
        s->event_enable = val & EPC_EV_ALL;
        epc_update_irq(s);
        break;
    case EPC_RAISE_IRQ:
        epc_raise(s, val);
        break;
    case EPC_INTX:
        epc_set_intx(s, val & 1);
        break;
    case EPC_FN_ID:
        s->fn.id = val;
        break;
    case EPC_FN_SUBSYS:
        s->fn.subsys = val;
        break;
    case EPC_FN_CLASS_REV:
        s->fn.class_rev = val;
        break;
    case EPC_FN_INTX_PIN:
        s->fn.intx_pin = val;
        break;
    case EPC_FN_MSI_VECTORS:
        s->fn.msi_vectors = val;
        break;
    case EPC_FN_MSIX_VECTORS:
        s->fn.msix_vectors = val;
        break;
    case EPC_FN_MSIX_TABLE:
        s->fn.msix_table = val;
        break;
    case EPC_FN_MSIX_PBA:
        s->fn.msix_pba = val;
        break;
    }
}

static const MemoryRegionOps epc_regs_ops = {
    .read = epc_regs_read,
    .write = epc_regs_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = {
        .min_access_size = 1,
        .max_access_size = 8,
    },
    .impl = {
        .min_access_size = 1,
        .max_access_size = 8,
    },
};

/* ---------------------------------------------------------------------- */
/* BAR2: the outbound window (epc.md 5)                                    */

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

/*
 * One DmaRead of @len bytes at host address @host into @dest; the CPU
 * waits for its completion (epc.md 5).  False if it did not complete
 * successfully.
 */
static bool epc_dma_read(PfEpcState *s, uint64_t host, uint32_t len,
                         uint8_t *dest)
{
    s->wait_tag = s->next_tag++ & ~PF_EPC_DMA_TAG_BIT;
    s->wait_size = len;
    s->cpl_dest = dest;
    s->cpl_done = false;
    if (!epc_queued(s, pf_put_dma_read(&s->out, s->wait_tag, host, len))) {
        return false;
    }
    s->waiting = true;
    epc_pump(s, epc_cpl_done);
    s->waiting = false;
    epc_update_watch(s);
    return s->cpl_done && s->cpl_status == PCIEFW__STATUS__STATUS_SUCCESSFUL;
}

/*
 * epc.md 5.1: a read forward of the last one, inside what the last fetch
 * brought, is served from it.  A read at or below an address already
 * served (a poll) fetches again.
 */
static bool epc_ra_hit(PfEpcState *s, uint64_t host, unsigned size)
{
    return s->ra_len && host >= s->ra_next && host >= s->ra_host &&
           host - s->ra_host + size <= s->ra_len;
}

/* How much a read of @size at window offset @addr in @m fetches. */
static uint32_t epc_ra_len(PfEpcState *s, const PfEpcMap *m, hwaddr addr,
                           unsigned size)
{
    uint64_t left = m->size - (addr - m->win_offset);
    uint64_t len = MIN(MIN(s->read_ahead, s->session.max_payload), left);

    return MAX(len, size);
}

static uint64_t epc_window_read(void *opaque, hwaddr addr, unsigned size)
{
    PfEpcState *s = opaque;
    const PfEpcMap *m = epc_find_map(s, addr, size);
    uint64_t host;
    uint32_t len;

    if (!m || s->state != EPC_UP || s->waiting || s->dispatching) {
        return all_ones(size);
    }
    host = m->host + (addr - m->win_offset);
    if (epc_ra_hit(s, host, size)) {
        s->ra_next = host + size;
        return pf_le_load(s->ra_buf + (host - s->ra_host), size);
    }
    s->ra_len = 0;
    len = epc_ra_len(s, m, addr, size);
    if (len > size) {
        if (epc_dma_read(s, host, len, s->ra_buf)) {
            s->ra_host = host;
            s->ra_len = len;
            s->ra_next = host + size;
            return pf_le_load(s->ra_buf, size);
        }
        if (s->state != EPC_UP) {
            return all_ones(size);
        }
        /* The host refused the longer read: the read alone may pass. */
    }
    if (!epc_dma_read(s, host, size, s->cpl_data)) {
        return all_ones(size);
    }
    return pf_le_load(s->cpl_data, size);
}

static void epc_window_write(void *opaque, hwaddr addr, uint64_t val,
                             unsigned size)
{
    PfEpcState *s = opaque;
    const PfEpcMap *m = epc_find_map(s, addr, size);
    uint8_t data[8];

    if (!m || s->state != EPC_UP || s->dispatching) {
        return;
    }
    s->ra_len = 0;
    pf_le_store(data, size, val);
    if (epc_queued(s, pf_put_dma_write(&s->out,
                                       m->host + (addr - m->win_offset),
                                       data, size))) {
        epc_posted(s);
    }
}

static const MemoryRegionOps epc_window_ops = {
    .read = epc_window_read,
    .write = epc_window_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = {
        .min_access_size = 1,
        .max_access_size = 8,
    },
    .impl = {
        .min_access_size = 1,
        .max_access_size = 8,
    },
};

/* ---------------------------------------------------------------------- */
/* What the DMA engine needs of the connection (epc.md 12)                 */

static uint32_t epc_dma_link(void *opaque)
{
    PfEpcState *s = opaque;

    return s->state == EPC_UP ? s->session.max_payload : 0;
}

/* Queue a message of the engine and send what the socket takes now. */
static bool epc_dma_send(PfEpcState *s, int r)
{
    if (!epc_queued(s, r)) {
        return false;
    }
    epc_flush(s);
    epc_update_watch(s);
    return s->state == EPC_UP;
}

static bool epc_dma_read_op(void *opaque, uint32_t tag, uint64_t host,
                            uint32_t len)
{
    PfEpcState *s = opaque;

    return s->state == EPC_UP &&
           epc_dma_send(s, pf_put_dma_read(&s->out, tag, host, len));
}

static bool epc_dma_write_op(void *opaque, uint64_t host, const void *data,
                             uint32_t len)
{
    PfEpcState *s = opaque;

    /* epc.md 5.1: what the CPU read ahead may be stale now. */
    s->ra_len = 0;
    return s->state == EPC_UP &&
           epc_dma_send(s, pf_put_dma_write(&s->out, host, data, len));
}

static size_t epc_dma_backlog(void *opaque)
{
    PfEpcState *s = opaque;

    return pf_buf_used(&s->out);
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
    epc_event(opaque, EPC_EV_DMA);
}

static const PfEpcDmaOps epc_dma_ops = {
    .link = epc_dma_link,
    .dma_read = epc_dma_read_op,
    .dma_write = epc_dma_write_op,
    .backlog = epc_dma_backlog,
    .window = epc_dma_window,
    .ended = epc_dma_ended,
};

/* ---------------------------------------------------------------------- */
/* Realize, reset, unrealize                                               */

static bool epc_listen(PfEpcState *s, Error **errp)
{
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    struct stat st;
    int fd;

    if (!s->path || !*s->path) {
        error_setg(errp, "pciefw-epc: set path=SOCKET, the UNIX socket the "
                   "host's pciefw device connects to");
        return false;
    }
    if (strlen(s->path) >= sizeof(un.sun_path)) {
        error_setg(errp, "pciefw-epc: path '%s' is too long for a UNIX "
                   "socket", s->path);
        return false;
    }
    pstrcpy(un.sun_path, sizeof(un.sun_path), s->path);
    /* A socket left by an earlier run is replaced; nothing else is. */
    if (lstat(s->path, &st) == 0 && S_ISSOCK(st.st_mode)) {
        unlink(s->path);
    }
    fd = qemu_socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) {
        error_setg_errno(errp, errno, "pciefw-epc: socket");
        return false;
    }
    if (bind(fd, (struct sockaddr *)&un, sizeof(un)) < 0 ||
        listen(fd, 4) < 0) {
        error_setg_errno(errp, errno, "pciefw-epc: cannot listen on '%s'",
                         s->path);
        close(fd);
        return false;
    }
    qemu_set_blocking(fd, false, NULL);
    s->listen_fd = fd;
    qemu_set_fd_handler(fd, epc_accept, NULL, s);
    return true;
}

static void epc_realize(PCIDevice *pdev, Error **errp)
{
    PfEpcState *s = PCIEFW_EPC(pdev);

    s->fd = -1;
    s->listen_fd = -1;
    if (!s->timeout_ms || s->timeout_ms > EPC_MAX_TIMEOUT_MS) {
        error_setg(errp, "pciefw-epc: timeout must be between 1 and %u ms",
                   EPC_MAX_TIMEOUT_MS);
        return;
    }
    if (s->read_ahead > EPC_MAX_READ_AHEAD) {
        error_setg(errp, "pciefw-epc: read-ahead must be at most %u bytes",
                   EPC_MAX_READ_AHEAD);
        return;
    }
    pci_config_set_interrupt_pin(pdev->config, 1);
    if (msi_init(pdev, 0, 1, true, false, NULL)) {
        /* Without MSI the EPC interrupts by INTA#. */
    }
    memory_region_init_io(&s->regs, OBJECT(s), &epc_regs_ops, s,
                          "pciefw-epc-regs", EPC_REGS_SIZE);
    memory_region_init_io(&s->window, OBJECT(s), &epc_window_ops, s,
                          "pciefw-epc-window", EPC_WINDOW_SIZE);
    pci_register_bar(pdev, 0, PCI_BASE_ADDRESS_SPACE_MEMORY, &s->regs);
    pci_register_bar(pdev, 2, PCI_BASE_ADDRESS_SPACE_MEMORY, &s->window);

    pf_codec_init(&s->codec);
    pf_buf_init(&s->out);
    s->rxbuf = g_malloc(EPC_RX_CHUNK);
    s->ra_buf = g_malloc(MAX(s->read_ahead, 8));
    pf_hello_defaults(&s->hello, "qemu pciefw-epc " QEMU_VERSION);
    s->next_tag = 1;
    s->hello_timer = timer_new_ms(QEMU_CLOCK_REALTIME, epc_hello_timeout, s);
    s->dma = pf_epc_dma_new(pdev, 2, EPC_WINDOW_SIZE, &epc_dma_ops, s);
    if (!epc_listen(s, errp)) {
        g_clear_pointer(&s->dma, pf_epc_dma_free);
        timer_free(s->hello_timer);
        g_free(s->rxbuf);
        s->rxbuf = NULL;
        g_clear_pointer(&s->ra_buf, g_free);
        pf_codec_free(&s->codec);
        msi_uninit(pdev);
    }
}

static void epc_exit(PCIDevice *pdev)
{
    PfEpcState *s = PCIEFW_EPC(pdev);

    epc_stop(s);
    epc_drop(s, "the device is removed");
    if (s->listen_fd >= 0) {
        qemu_set_fd_handler(s->listen_fd, NULL, NULL, NULL);
        close(s->listen_fd);
        s->listen_fd = -1;
        unlink(s->path);
    }
    timer_free(s->hello_timer);
    g_clear_pointer(&s->dma, pf_epc_dma_free);
    pf_buf_free(&s->out);
    pf_codec_free(&s->codec);
    g_free(s->rxbuf);
    s->rxbuf = NULL;
    g_clear_pointer(&s->ra_buf, g_free);
    msi_uninit(pdev);
}

/* Power-on state of the registers; a reset is a link down. */
static void epc_reset(DeviceState *dev)
{
    PfEpcState *s = PCIEFW_EPC(dev);

    epc_stop(s);
    s->ctrl = 0;
    s->status = 0;
    s->error = 0;
    s->events = 0;
    s->event_enable = 0;
    memset(&s->fn, 0, sizeof(s->fn));
    memset(s->maps, 0, sizeof(s->maps));
    s->irq_level = false;
    s->raise_status = EPC_RAISE_SENT;
    s->intx = false;
    pf_epc_dma_reset(s->dma);
    pci_set_irq(PCI_DEVICE(s), 0);
}

static const VMStateDescription vmstate_pciefw_epc = {
    .name = TYPE_PCIEFW_EPC,
    .unmigratable = 1,
};

static const Property epc_properties[] = {
    DEFINE_PROP_STRING("path", PfEpcState, path),
    DEFINE_PROP_UINT32("timeout", PfEpcState, timeout_ms,
                       EPC_DEFAULT_TIMEOUT_MS),
    DEFINE_PROP_UINT32("read-ahead", PfEpcState, read_ahead, 0),
};

static void epc_class_init(ObjectClass *klass, const void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);

    k->realize = epc_realize;
    k->exit = epc_exit;
    k->vendor_id = EPC_VENDOR_ID;
    k->device_id = EPC_DEVICE_ID;
    k->class_id = PCI_CLASS_OTHERS << 8;
    k->revision = 1;
    dc->desc = "PCI endpoint controller serving its function to a pciefw host";
    dc->vmsd = &vmstate_pciefw_epc;
    device_class_set_legacy_reset(dc, epc_reset);
    device_class_set_props(dc, epc_properties);
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
    object_class_property_set_description(klass, "path",
        "UNIX socket to listen on for the host's pciefw device");
    object_class_property_set_description(klass, "timeout",
        "ms an outbound window read waits for the host's completion, "
        "and a connected host for the other's hello");
    object_class_property_set_description(klass, "read-ahead",
        "bytes an outbound window read fetches from host memory at once "
        "(0: exactly what the CPU reads; docs/epc.md 5.1)");
}

static const TypeInfo epc_types[] = {
    {
        .name = TYPE_PCIEFW_EPC,
        .parent = TYPE_PCI_DEVICE,
        .instance_size = sizeof(PfEpcState),
        .class_init = epc_class_init,
        .interfaces = (const InterfaceInfo[]) {
            { INTERFACE_CONVENTIONAL_PCI_DEVICE },
            { },
        },
    },
};

DEFINE_TYPES(epc_types)
