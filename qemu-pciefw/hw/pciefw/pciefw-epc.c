/*
 * pciefw-epc: a PCI endpoint controller whose function is served, over the
 * pciefw protocol, to a host QEMU's pciefw device
 *
 * The guest of this QEMU (the endpoint guest) programs one endpoint
 * function through the registers of BAR0 -- its identity, BARs backed by
 * its own memory, interrupt capabilities -- and starts the link.  The
 * device then plays the protocol's endpoint side: it describes that
 * function to the host, serves the host's BAR accesses from the endpoint
 * guest's memory, and raises the host's interrupts; its outbound window
 * (BAR2, pciefw-epc-window.c) reaches the host's memory.  The connection
 * is pciefw-conn.c's, in the endpoint role, over a UNIX socket (with the
 * shared-memory rings and the host's guest memory, spec 10 and 11) or TCP
 * (with TLS, spec 1.5).  The registers are specified in docs/epc.md of the
 * pciefw project ("epc.md N" below); the protocol in docs/protocol.md
 * ("spec N").
 *
 * Copyright (c) 2025 The pciefw authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include <netdb.h>
#include <sys/un.h>
#include "qemu/cutils.h"
#include "qemu/error-report.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "qemu/module.h"
#include "qemu/sockets.h"
#include "qapi/error.h"
#include "qapi/qapi-types-sockets.h"
#include "hw/pci/pci.h"
#include "hw/pci/msi.h"
#include "hw/qdev-properties.h"
#include "migration/vmstate.h"
#include "pciefw-epc.h"

#include "protocol/pciefw.h"
#include "protocol/description.h"
#include "protocol/msg.h"

/* epc.md 1 */
#define EPC_VENDOR_ID           0x1234
#define EPC_DEVICE_ID           0xfe0c
#define EPC_REGS_SIZE           0x1000

/* epc.md 2 */
#define EPC_ID                  0x000
#define EPC_ID_VALUE            0x43504546
#define EPC_VERSION             0x004
#define EPC_VERSION_VALUE       0x00010002
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
#define EPC_EV_HOST_IRQ_CONFIG  0x10
#define EPC_EV_ALL              0x1f
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

void epc_dma_done(PfEpcState *s)
{
    epc_event(s, EPC_EV_DMA);
}

void epc_irqcfg_changed(PfEpcState *s)
{
    epc_event(s, EPC_EV_HOST_IRQ_CONFIG);
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
const PfEpcBar *epc_bar(PfEpcState *s, uint32_t bar, bool io)
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
           (pciefw_conn_session(s->conn)->features & PCIEFW_FEATURE_MEM_BURST);
}

static void epc_complete(PfEpcState *s, uint32_t tag, int status,
                         const void *data, uint32_t size)
{
    size_t mark = pciefw_conn_mark(s->conn);

    pciefw_conn_queued(s->conn, mark,
                       pf_put_completion(pciefw_conn_out(s->conn), tag, status,
                                         status ? NULL : data,
                                         status ? 0 : size), "completion");
}

/* epc.md 5.1: what the host did is to be seen by the next read. */
static void epc_request_seen(PfEpcState *s)
{
    s->ra.len = 0;
}

static void epc_bar_read(PfEpcState *s, uint32_t tag, uint32_t bar,
                         uint64_t off, uint32_t size, bool io)
{
    const PfEpcBar *b = epc_bar(s, bar, io);
    g_autofree uint8_t *data = NULL;
    int status = PCIEFW__STATUS__STATUS_SUCCESSFUL;

    epc_request_seen(s);
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

    epc_request_seen(s);
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

static int epc_on_mem_read(void *opaque, const PfMessage *m, char *err,
                           size_t errlen)
{
    const Pciefw__MemRead *r = m->mem_read;

    epc_bar_read(opaque, r->tag, r->bar, r->offset, r->size, false);
    return PF_OK;
}

static int epc_on_io_read(void *opaque, const PfMessage *m, char *err,
                          size_t errlen)
{
    const Pciefw__IoRead *r = m->io_read;

    epc_bar_read(opaque, r->tag, r->bar, r->offset, r->size, true);
    return PF_OK;
}

static int epc_on_mem_write(void *opaque, const PfMessage *m, char *err,
                            size_t errlen)
{
    const Pciefw__MemWrite *w = m->mem_write;

    epc_bar_write(opaque, w->bar, w->offset, &w->data, false);
    return PF_OK;
}

static int epc_on_io_write(void *opaque, const PfMessage *m, char *err,
                           size_t errlen)
{
    const Pciefw__IoWrite *w = m->io_write;

    epc_complete(opaque, w->tag,
                 epc_bar_write(opaque, w->bar, w->offset, &w->data, true),
                 NULL, 0);
    return PF_OK;
}

/* No device-specific config registers: reads 0, writes ignored (4.1). */
static int epc_on_config_read(void *opaque, const PfMessage *m, char *err,
                              size_t errlen)
{
    uint8_t zero[4] = { 0 };

    epc_request_seen(opaque);
    epc_complete(opaque, m->config_read->tag,
                 PCIEFW__STATUS__STATUS_SUCCESSFUL, zero,
                 m->config_read->size);
    return PF_OK;
}

static int epc_on_config_write(void *opaque, const PfMessage *m, char *err,
                               size_t errlen)
{
    epc_request_seen(opaque);
    epc_complete(opaque, m->config_write->tag,
                 PCIEFW__STATUS__STATUS_SUCCESSFUL, NULL, 0);
    return PF_OK;
}

/* epc.md 6: the function lives in the endpoint guest; tell it. */
static int epc_on_reset(void *opaque, const PfMessage *m, char *err,
                        size_t errlen)
{
    PfEpcState *s = opaque;

    epc_request_seen(s);
    /* A reset clears Bus Master Enable (spec 10.3) and MSI/MSI-X (12.3). */
    s->hmem.bus_master = false;
    epc_irqcfg_reset(s, true);
    epc_complete(s, m->reset->tag, PCIEFW__STATUS__STATUS_SUCCESSFUL, NULL, 0);
    epc_event(s, EPC_EV_HOST_RESET);
    return PF_OK;
}

/* ---------------------------------------------------------------------- */
/* The connection (pciefw-conn.c, endpoint role)                           */

/*
 * The Hellos agreed: the function is described (spec 2.3) as its
 * registers are now -- a BAR set since START with another size is seen by
 * a host that connects later (epc.md 3.2) -- if they still pass START's
 * checks; else as it was last described.
 */
static int epc_on_session(void *opaque, const struct pf_session *ses,
                          char *err, size_t errlen)
{
    PfEpcState *s = opaque;
    char why[256];
    PfEpcDesc desc;
    size_t mark;

    if (epc_check_function(&s->fn, why, sizeof(why))) {
        qemu_log_mask(LOG_GUEST_ERROR, "pciefw-epc: the function's registers "
                      "no longer pass START's checks (%s): the host sees the "
                      "function as described before\n", why);
    } else {
        s->live = s->fn;
    }
    epc_build_desc(&s->live, &desc);
    mark = pciefw_conn_mark(s->conn);
    if (!pciefw_conn_queued(s->conn, mark,
                            pf_put_description(pciefw_conn_out(s->conn),
                                               &desc.d),
                            "device_description")) {
        return PF_OK;
    }
    s->status |= EPC_STATUS_LINK_UP;
    /* What the new host programs comes from the reset state (12.3). */
    epc_irqcfg_reset(s, true);
    info_report("pciefw-epc: host %s connected: function %04x:%04x",
                ses->peer_name, desc.d.vendor_id, desc.d.device_id);
    /* A level the function holds reaches the new host (epc.md 3.3). */
    if (s->intx && s->live.intx_pin) {
        mark = pciefw_conn_mark(s->conn);
        pciefw_conn_queued(s->conn, mark,
                           pf_put_intx(pciefw_conn_out(s->conn), true), "intx");
    }
    epc_event(s, EPC_EV_LINK_UP);
    return PF_OK;
}

/* The host is gone (spec 7.2): the link is down. */
static void epc_conn_closed(void *opaque, const char *why)
{
    PfEpcState *s = opaque;
    bool was_up = s->status & EPC_STATUS_LINK_UP;

    info_report("pciefw-epc: host disconnected: %s", why);
    if (s->hmem.copies) {
        info_report("pciefw-epc: %" PRIu64 " outbound accesses done "
                    "through shared memory", s->hmem.copies);
    }
    s->hmem.copies = 0;
    epc_window_forget(s);
    epc_irqcfg_reset(s, false);
    s->status &= ~EPC_STATUS_LINK_UP;
    pf_epc_dma_link_down(s->dma);
    if (was_up) {
        epc_event(s, EPC_EV_LINK_DOWN);
    }
}

/* The DMA engine may wait for the output to drain (epc.md 12). */
static void epc_out_idle(void *opaque)
{
    PfEpcState *s = opaque;

    pf_epc_dma_kick(s->dma);
}

static const PCIeFwConnOps epc_conn_ops = {
    .on = {
        [PCIEFW__MESSAGE__BODY_CONFIG_READ] = epc_on_config_read,
        [PCIEFW__MESSAGE__BODY_CONFIG_WRITE] = epc_on_config_write,
        [PCIEFW__MESSAGE__BODY_MEM_READ] = epc_on_mem_read,
        [PCIEFW__MESSAGE__BODY_MEM_WRITE] = epc_on_mem_write,
        [PCIEFW__MESSAGE__BODY_IO_READ] = epc_on_io_read,
        [PCIEFW__MESSAGE__BODY_IO_WRITE] = epc_on_io_write,
        [PCIEFW__MESSAGE__BODY_RESET] = epc_on_reset,
        [PCIEFW__MESSAGE__BODY_MEMORY_MAP] = epc_on_memory_map,
        [PCIEFW__MESSAGE__BODY_BUS_MASTER] = epc_on_bus_master,
        [PCIEFW__MESSAGE__BODY_INTERRUPT_CONFIG] = epc_on_interrupt_config,
    },
    .session = epc_on_session,
    .closed = epc_conn_closed,
    .out_idle = epc_out_idle,
};

/* The link is up and a host is held: the session begins (spec 2). */
static void epc_greet(PfEpcState *s)
{
    int fd = s->held_fd;
    PCIeFwStream *st;
    Error *err = NULL;

    if (fd < 0 || !(s->status & EPC_STATUS_STARTED)) {
        return;
    }
    s->held_fd = -1;
    qemu_set_fd_handler(fd, NULL, NULL, NULL);
    st = pciefw_conn_creds(s->conn) ?
         pciefw_stream_tls(fd, pciefw_conn_creds(s->conn), NULL, &err) :
         pciefw_stream_socket(fd);
    if (!st) {
        warn_report_err(err);
        close(fd);
        return;
    }
    epc_window_forget(s);
    pciefw_conn_start(s->conn, fd, st, &s->hello, "host connected");
}

/*
 * A held connection is not read: the host's Hello waits for START.  Its
 * end goes unnoticed until a new host knocks: then a peek tells whether
 * the held one is still there.
 */
static bool epc_held_gone(PfEpcState *s)
{
    uint8_t byte;
    ssize_t n = recv(s->held_fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);

    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK &&
                      errno != EINTR);
}

static void epc_drop_held(PfEpcState *s)
{
    if (s->held_fd >= 0) {
        close(s->held_fd);
        s->held_fd = -1;
    }
}

/*
 * Spec 2.4: one host at a time; a second one is told why and closed.  On
 * TLS no session exists to carry the words: it sees the close.
 */
static void epc_refuse(PfEpcState *s, int fd)
{
    struct pf_buf b;

    warn_report("pciefw-epc: refused a second host: it already serves one");
    pf_buf_init(&b);
    if (!pciefw_conn_creds(s->conn) &&
        pf_put_error(&b, PCIEFW__ERROR_CODE__ERROR_BUSY,
                     "pciefw-epc is busy: it already serves a host") == PF_OK &&
        send(fd, pf_buf_peek(&b), pf_buf_used(&b), MSG_NOSIGNAL) < 0) {
        /* Best effort: the host learns it from the close too. */
    }
    pf_buf_free(&b);
    close(fd);
}

static void epc_accept(void *opaque)
{
    PfEpcState *s = opaque;
    int fd = qemu_accept(s->listen_fd, NULL, NULL);

    if (fd < 0) {
        return;
    }
    if (s->held_fd >= 0 && epc_held_gone(s)) {
        epc_drop_held(s);
    }
    if (s->held_fd >= 0 || pciefw_conn_alive(s->conn)) {
        epc_refuse(s, fd);
        return;
    }
    qemu_set_blocking(fd, false, NULL);
    if (s->listen_tcp) {
        socket_set_nodelay(fd);
    }
    s->held_fd = fd;
    epc_greet(s);
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
    s->live = s->fn;
    s->status = EPC_STATUS_STARTED;
    epc_greet(s);
}

static void epc_stop(PfEpcState *s)
{
    if (!(s->status & EPC_STATUS_STARTED)) {
        return;
    }
    pciefw_conn_goodbye(s->conn, PCIEFW__GOODBYE_REASON__GOODBYE_SHUTDOWN,
                        "the endpoint stopped the link");
    epc_drop_held(s);
    s->status &= ~(EPC_STATUS_STARTED | EPC_STATUS_LINK_UP);
    epc_event(s, EPC_EV_LINK_DOWN);
}

/* ---------------------------------------------------------------------- */
/* Interrupts to the host (epc.md 3.3)                                     */

/* Queue what RAISE_IRQ asks for; RAISE_STATUS says if it could. */
static uint32_t epc_queue_irq(PfEpcState *s, uint32_t val)
{
    uint32_t kind = val & 3, vector = (val >> 16) & 0xfff;
    struct pf_buf *out = pciefw_conn_out(s->conn);
    size_t mark = pciefw_conn_mark(s->conn);
    int r;

    /* Raised while the host's messages are handled: a re-entry. */
    if (!pciefw_conn_up(s->conn) || pciefw_conn_dispatching(s->conn)) {
        return EPC_RAISE_NO_LINK;
    }
    switch (kind) {
    case 1:
        if (!s->live.intx_pin) {
            return EPC_RAISE_NOT_DECLARED;
        }
        /* A pulse; the INTX register holds a level. */
        r = pf_put_intx(out, true);
        if (r == PF_OK && !s->intx) {
            r = pf_put_intx(out, false);
        }
        break;
    case 2:
        if (vector >= s->live.msi_vectors) {
            return EPC_RAISE_NOT_DECLARED;
        }
        r = pf_put_msi(out, vector);
        break;
    case 3:
        if (vector >= s->live.msix_vectors) {
            return EPC_RAISE_NOT_DECLARED;
        }
        r = pf_put_msix(out, vector);
        break;
    default:
        return EPC_RAISE_NOT_DECLARED;
    }
    if (!pciefw_conn_queued(s->conn, mark, r, "interrupt")) {
        return EPC_RAISE_NO_LINK;
    }
    pciefw_conn_posted(s->conn);
    return EPC_RAISE_SENT;
}

/* The INTx pin as a level, sent when it changes. */
static uint32_t epc_set_intx(PfEpcState *s, bool level)
{
    bool changed = level != s->intx;
    size_t mark;

    s->intx = level;
    if (!pciefw_conn_up(s->conn) || pciefw_conn_dispatching(s->conn)) {
        return EPC_RAISE_NO_LINK;
    }
    if (!s->live.intx_pin) {
        return EPC_RAISE_NOT_DECLARED;
    }
    if (!changed) {
        return EPC_RAISE_SENT;
    }
    mark = pciefw_conn_mark(s->conn);
    if (!pciefw_conn_queued(s->conn, mark,
                            pf_put_intx(pciefw_conn_out(s->conn), level),
                            "intx")) {
        return EPC_RAISE_NO_LINK;
    }
    pciefw_conn_posted(s->conn);
    return EPC_RAISE_SENT;
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

static uint64_t epc_regs_read(void *opaque, hwaddr addr, unsigned size)
{
    PfEpcState *s = opaque;
    uint64_t val;

    if (size != 4 || (addr & 3)) {
        return 0;
    }
    if (epc_irqcfg_reg_read(s, addr, &val)) {
        return val;
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
        s->raise_status = epc_queue_irq(s, val);
        break;
    case EPC_INTX:
        s->raise_status = epc_set_intx(s, val & 1);
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
    .valid = { .min_access_size = 1, .max_access_size = 8 },
    .impl = { .min_access_size = 1, .max_access_size = 8 },
};

/* ---------------------------------------------------------------------- */
/* Realize, reset, unrealize                                               */

static bool epc_listen_unix(PfEpcState *s, Error **errp)
{
    struct sockaddr_un un = { .sun_family = AF_UNIX };
    struct stat st;
    int fd;

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
    s->listen_fd = fd;
    return true;
}

static bool epc_listen_tcp(PfEpcState *s, Error **errp)
{
    g_autofree char *port = g_strdup_printf("%u", s->lport);
    SocketAddress addr = {
        .type = SOCKET_ADDRESS_TYPE_INET,
        .u.inet = { .host = s->laddr, .port = port },
    };
    int fd = socket_listen(&addr, 4, errp);

    if (fd < 0) {
        error_prepend(errp, "pciefw-epc: cannot listen on %s:%u: ", s->laddr,
                      s->lport);
        return false;
    }
    s->listen_fd = fd;
    s->listen_tcp = true;
    return true;
}

static bool epc_check_properties(PfEpcState *s, Error **errp)
{
    bool tcp = s->laddr || s->lport;

    if (s->read_ahead > EPC_MAX_READ_AHEAD) {
        error_setg(errp, "pciefw-epc: read-ahead must be at most %u bytes",
                   EPC_MAX_READ_AHEAD);
        return false;
    }
    if ((s->path && *s->path) == (tcp && s->laddr && s->lport)) {
        error_setg(errp, "pciefw-epc: set path=SOCKET (a UNIX socket) or "
                   "laddr=HOST,lport=PORT (TCP), the address the host's "
                   "pciefw device connects to");
        return false;
    }
    if (s->conf.tls_creds && !tcp) {
        error_setg(errp, "pciefw-epc: tls-creds is for TCP (laddr, lport); "
                   "a UNIX socket is protected by its file mode");
        return false;
    }
    return true;
}

/* What this side offers in its Hello (spec 2.2, 10.1, 11.1). */
static void epc_offer(PfEpcState *s)
{
    pf_hello_defaults(&s->hello, "qemu pciefw-epc " QEMU_VERSION);
    if (s->path && s->conf.guest_memory) {
        s->hello.features |= PCIEFW_FEATURE_GUEST_MEMORY;
    }
    /* The rings (11.1): pciefw_conn_start() adds them (shm-rings). */
    /* The host's MSI/MSI-X settings, for epc.md 3.4 (spec 12). */
    s->hello.features |= PCIEFW_FEATURE_INTERRUPT_CONFIG;
}

static void epc_free_host_side(PfEpcState *s)
{
    g_clear_pointer(&s->conn, pciefw_conn_free);
    epc_drop_held(s);
    if (s->listen_fd >= 0) {
        qemu_set_fd_handler(s->listen_fd, NULL, NULL, NULL);
        close(s->listen_fd);
        s->listen_fd = -1;
        if (s->path) {
            unlink(s->path);
        }
    }
    pf_shared_ram_clear(&s->hmem.ram);
    g_clear_pointer(&s->ra.buf, g_free);
    /* After the connection: it completes the engine's reads as it goes. */
    g_clear_pointer(&s->dma, pf_epc_dma_free);
}

static void epc_realize(PCIDevice *pdev, Error **errp)
{
    PfEpcState *s = PCIEFW_EPC(pdev);

    s->listen_fd = -1;
    s->held_fd = -1;
    if (!epc_check_properties(s, errp)) {
        return;
    }
    s->conn = pciefw_conn_new(DEVICE(s), "pciefw-epc", PCIEFW_ROLE_ENDPOINT,
                              &epc_conn_ops, s, &s->conf, errp);
    if (!s->conn) {
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

    s->ra.buf = g_malloc(MAX(s->read_ahead, 8));
    s->dma = pf_epc_dma_new(pdev, 2, EPC_WINDOW_SIZE, &epc_dma_ops, s);
    epc_offer(s);
    if (!(s->path ? epc_listen_unix(s, errp) : epc_listen_tcp(s, errp))) {
        epc_free_host_side(s);
        msi_uninit(pdev);
        return;
    }
    qemu_set_blocking(s->listen_fd, false, NULL);
    qemu_set_fd_handler(s->listen_fd, epc_accept, NULL, s);
}

static void epc_exit(PCIDevice *pdev)
{
    PfEpcState *s = PCIEFW_EPC(pdev);

    epc_stop(s);
    epc_free_host_side(s);
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
    memset(&s->host_irq, 0, sizeof(s->host_irq));
    pf_epc_dma_reset(s->dma);
    pci_set_irq(PCI_DEVICE(s), 0);
}

static const VMStateDescription vmstate_pciefw_epc = {
    .name = TYPE_PCIEFW_EPC,
    .unmigratable = 1,
};

static const Property epc_properties[] = {
    DEFINE_PROP_STRING("path", PfEpcState, path),
    DEFINE_PROP_STRING("laddr", PfEpcState, laddr),
    DEFINE_PROP_UINT16("lport", PfEpcState, lport, 0),
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
    pciefw_conn_class_props(klass, PCIEFW_ROLE_ENDPOINT, epc_properties,
                            ARRAY_SIZE(epc_properties),
                            offsetof(PfEpcState, conf));
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);
    object_class_property_set_description(klass, "path",
        "UNIX socket to listen on for the host's pciefw device");
    object_class_property_set_description(klass, "laddr",
        "TCP address to listen on instead (with lport)");
    object_class_property_set_description(klass, "lport",
        "TCP port to listen on (with laddr)");
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
