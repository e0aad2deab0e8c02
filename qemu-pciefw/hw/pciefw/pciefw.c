/*
 * pciefw: a PCI/PCI Express function served by an external endpoint
 *
 * The device forwards the guest's config (device-specific region), memory
 * and I/O transactions to an endpoint process that implements the function,
 * and carries the endpoint's DMA and interrupts back into QEMU.  The
 * protocol is docs/protocol.md of the pciefw project ("spec N"); the
 * connection under it -- transport, framing, Hellos, requests and their
 * completions, waits -- is pciefw-conn.c, in the host role.
 *
 * QEMU keeps the standard header, the BARs and the capabilities it
 * emulates (PCI Express, MSI, MSI-X table and PBA); config offsets
 * 0x40-0x7f, and with the CONFIG_EXT feature the extended config space,
 * belong to the endpoint.
 *
 * Copyright (c) 2025 The pciefw authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/range.h"
#include "qemu/error-report.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "qemu/rcu.h"
#include "qemu/module.h"
#include "qemu/timer.h"
#include "qapi/error.h"
#include "hw/pci/pci.h"
#include "hw/pci/pci_device.h"
#include "hw/pci/pcie.h"
#include "hw/pci/pcie_host.h"
#include "hw/pci/msi.h"
#include "hw/pci/msix.h"
#include "hw/qdev-properties.h"
#include "migration/vmstate.h"
#include "qom/object.h"
#include "crypto/tlscreds.h"
#include "trace.h"
#include "pciefw-conn.h"
#include "pciefw-dial.h"
#include "pciefw-irqcfg.h"
#include "pciefw-memmap.h"
#include "pciefw-msix.h"

#include "protocol/pciefw.h"
#include "protocol/description.h"
#include "protocol/msg.h"
#include "protocol/regrec.h"

#define TYPE_PCIEFW "pciefw"
OBJECT_DECLARE_TYPE(PCIeFwState, PCIeFwClass, PCIEFW)

/* Config space split (see the header comment). */
#define PCIEFW_CFG_DEV_START    0x40
#define PCIEFW_CFG_DEV_END      0x80
#define PCIEFW_CAP_EXP          0x80
#define PCIEFW_CAP_MSI          0xc0
#define PCIEFW_CAP_MSIX         0xe0

/*
 * Faults of the endpoint that do not end the session (it keeps working,
 * the message is ignored): each kind is reported once per connection.
 */
typedef enum PCIeFwFault {
    PCIEFW_FAULT_VECTOR = 1 << 0,       /* interrupt vector out of range */
    PCIEFW_FAULT_INTX = 1 << 1,         /* INTx from a function without a pin */
    PCIEFW_FAULT_DMA = 1 << 2,          /* DMA outside memory and devices */
} PCIeFwFault;

/*
 * The link goes DOWN -> CONNECTING (the socket) -> SESSION (the
 * connection's handshake, then the description) -> SETTLING (the
 * connection settles its transport, pciefw_conn_settle()) -> UP;
 * reconnecting to a known device adds RESETTING (the returning
 * endpoint's function-level reset).  Only UP serves the guest.
 */
typedef enum PCIeFwLinkState {
    PCIEFW_DOWN,
    PCIEFW_CONNECTING,
    PCIEFW_SESSION,
    PCIEFW_SETTLING,
    PCIEFW_RESETTING,
    PCIEFW_UP,
} PCIeFwLinkState;

/* What the endpoint told us about the function, in comparable form. */
typedef struct PCIeFwBarDesc {
    bool present;
    uint8_t kind;               /* Pciefw__BarKind */
    bool prefetchable;
    uint64_t size;
} PCIeFwBarDesc;

typedef struct PCIeFwDesc {
    uint16_t vendor_id;
    uint16_t device_id;
    uint16_t subsystem_vendor_id;
    uint16_t subsystem_id;
    uint32_t class_code;
    uint8_t revision;
    uint8_t intx_pin;
    uint32_t msi_vectors;
    uint32_t msix_vectors;
    uint32_t msix_table_bar;
    uint64_t msix_table_offset;
    uint32_t msix_pba_bar;
    uint64_t msix_pba_offset;
    bool config_ext;
    PCIeFwBarDesc bars[PCIEFW_NUM_BARS];
} PCIeFwDesc;

typedef struct PCIeFwBar {
    PCIeFwState *s;
    uint8_t index;
    MemoryRegion container;     /* what the BAR maps; MSI-X overlays it */
    MemoryRegion fwd;           /* accesses forwarded to the endpoint */
} PCIeFwBar;

struct PCIeFwClass {
    PCIDeviceClass parent_class;
    DeviceRealize parent_dc_realize;
};

struct PCIeFwState {
    PCIDevice parent_obj;

    /* Properties */
    char *raddr;
    uint16_t rport;
    char *path;
    uint32_t reconnect_s;
    char *tls_hostname;
    PCIeFwConnConfig conf;

    /* The link */
    PCIeFwConn *conn;
    PCIeFwLinkState state;
    char *peer;                 /* "unix:PATH" or "tcp:HOST:PORT" */
    PCIeFwDialer dial;
    struct pf_hello_params hello;
    bool realizing;             /* failures go to connect_error */
    bool reconnecting;          /* a background attempt is under way */
    bool closing;               /* unrealize: nothing more is applied */
    char *connect_error;
    bool error_reported;
    bool mismatch_reported;
    QEMUTimer *reconnect_timer;
    QEMUTimer *attempt_timer;   /* deadline of a background attempt */
    PCIeFwRequest revive;       /* RESETTING: the Reset we wait for */
    unsigned int faults_reported;   /* PCIeFwFault bits, this connection */

    /* The guest's accesses and what the endpoint does meanwhile */
    bool resetting;             /* DMA and interrupts refused */
    bool intx_level;

    /* Guest memory shared with the endpoint (docs/protocol.md 10) */
    PCIeFwMemMap memmap;        /* listening only if we offer sharing */
    /* The MSI and MSI-X settings told to the endpoint (12) */
    PCIeFwIrqCfg irqcfg;

    /* The function */
    bool have_desc;             /* desc holds the realized device */
    PCIeFwDesc desc;
    PCIeFwDesc new_desc;
    PCIeFwBar bars[PCIEFW_NUM_BARS];
    PCIeFwMsix msix;            /* its table and PBA in those BARs */
    bool config_ext;
};

static void pciefw_schedule_reconnect(PCIeFwState *s);

static uint64_t all_ones(unsigned size)
{
    return size >= 8 ? UINT64_MAX : (1ULL << (size * 8)) - 1;
}

static void pciefw_set_intx(PCIeFwState *s, bool level)
{
    if (s->intx_level != level) {
        s->intx_level = level;
        pci_set_irq(PCI_DEVICE(s), level);
    }
}

/*
 * The endpoint did something a device must not do, but the session goes
 * on: say so once per connection (a flood of the same fault is one line).
 */
static void G_GNUC_PRINTF(3, 4)
pciefw_fault(PCIeFwState *s, PCIeFwFault kind, const char *fmt, ...)
{
    g_autofree char *what = NULL;
    va_list ap;

    va_start(ap, fmt);
    what = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    trace_pciefw_fault(what);
    if (!(s->faults_reported & kind)) {
        s->faults_reported |= kind;
        warn_report("pciefw: endpoint %s: %s (ignored; further faults of "
                    "this kind are not reported)", s->peer, what);
    }
}

/* ---------------------------------------------------------------------- */
/* Losing the endpoint                                                     */

/*
 * The link is down.  Whatever the endpoint had asserted goes with it: a
 * lost connection never leaves INTx asserted.
 */
static void pciefw_link_down(PCIeFwState *s)
{
    pciefw_dial_cancel(&s->dial);
    pciefw_memmap_end(&s->memmap);
    pciefw_irqcfg_end(&s->irqcfg);
    if (s->attempt_timer) {
        timer_del(s->attempt_timer);
    }
    s->state = PCIEFW_DOWN;
    if (s->desc.intx_pin) {
        pciefw_set_intx(s, false);
    }
}

/*
 * The link failed.  While realizing, the reason becomes realize's error;
 * during a background reconnection attempt it is only traced (the loss
 * was reported already) and the next attempt is scheduled; otherwise the
 * loss is reported once.
 */
static void pciefw_lost(PCIeFwState *s, const char *why)
{
    pciefw_link_down(s);
    if (s->realizing) {
        g_free(s->connect_error);
        s->connect_error = g_strdup(why);
        return;
    }
    if (s->closing) {
        return;
    }
    if (!s->reconnecting && !s->error_reported) {
        s->error_reported = true;
        if (s->reconnect_s) {
            error_report("pciefw: endpoint %s: %s; reads return all ones and "
                         "writes are dropped until it is back (retrying "
                         "every %u s)", s->peer, why, s->reconnect_s);
        } else {
            error_report("pciefw: endpoint %s: %s; reads return all ones and "
                         "writes are dropped (set reconnect=SECONDS to "
                         "reconnect)", s->peer, why);
        }
    }
    s->reconnecting = false;
    pciefw_schedule_reconnect(s);
}

/* The connection's report (pciefw-conn.h): it is gone. */
static void pciefw_conn_closed(void *opaque, const char *why)
{
    pciefw_lost(opaque, why);
}

static void G_GNUC_PRINTF(2, 3)
pciefw_disconnect(PCIeFwState *s, const char *fmt, ...)
{
    g_autofree char *why = NULL;
    va_list ap;

    va_start(ap, fmt);
    why = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (pciefw_conn_alive(s->conn)) {
        pciefw_conn_close(s->conn, "%s", why);
    } else {
        trace_pciefw_disconnect(why);
        pciefw_lost(s, why);
    }
}

/* ---------------------------------------------------------------------- */
/* The guest's requests                                                    */

/*
 * An access to the device while it handles the endpoint's messages (a
 * DMA or an MSI that lands on the device itself): answering it would
 * start a nested exchange on the same connection.  A real bus fails such
 * a transaction; so do we (reads return all ones, writes are dropped).
 */
static bool pciefw_reentered(PCIeFwState *s, const char *what, uint64_t addr)
{
    if (!pciefw_conn_dispatching(s->conn)) {
        return false;
    }
    trace_pciefw_reentry_blocked(what, addr);
    qemu_log_mask(LOG_GUEST_ERROR, "pciefw: %s at 0x%" PRIx64 " while the "
                  "device handles its endpoint's messages: refused\n",
                  what, addr);
    return true;
}

/*
 * A non-posted request for the guest, which waits for its completion
 * until @deadline: @put appends the message with the request's tag.
 * Returns the completion status, or -1 without one.
 */
typedef int (*PCIeFwPut)(struct pf_buf *out, uint32_t tag, const void *arg);

static int pciefw_request(PCIeFwState *s, const char *kind, PCIeFwPut put,
                          const void *arg, uint8_t *dest, uint32_t size,
                          int64_t deadline)
{
    PCIeFwRequest req = { .size = size, .dest = dest };
    size_t mark;

    if (s->state != PCIEFW_UP || !pciefw_conn_request(s->conn, &req)) {
        return -1;
    }
    mark = pciefw_conn_mark(s->conn);
    if (!pciefw_conn_queued(s->conn, mark,
                            put(pciefw_conn_out(s->conn), req.tag, arg),
                            kind)) {
        return -1;
    }
    return pciefw_conn_wait(s->conn, &req, "completion", deadline);
}

/* A posted message for the guest. */
static void pciefw_posted(PCIeFwState *s, size_t mark, int r,
                          const char *kind)
{
    if (pciefw_conn_queued(s->conn, mark, r, kind)) {
        pciefw_conn_posted(s->conn);
    }
}

/* ---------------------------------------------------------------------- */
/* Guest memory shared with the endpoint (docs/protocol.md 10)             */

/* Bus Master Enable as the endpoint is to see it: off during a reset. */
static bool pciefw_bme(PCIeFwState *s)
{
    return !s->resetting &&
           (pci_get_word(PCI_DEVICE(s)->config + PCI_COMMAND) &
            PCI_COMMAND_MASTER);
}

/* The output queue emptied: a map that waited may go now. */
static void pciefw_out_idle(void *opaque)
{
    PCIeFwState *s = opaque;

    pciefw_memmap_flush(&s->memmap);
}

/* ---------------------------------------------------------------------- */
/* The endpoint's DMA (spec 3.2)                                           */

/*
 * Endpoint DMA reaches what a real device's DMA reaches: memory and,
 * peer to peer, other devices' BARs -- never the configuration-space
 * window (MMCONFIG), which only the CPU uses (docs/protocol.md 3.2).
 */
static bool pciefw_dma_hits_config(PCIDevice *pdev, uint64_t addr,
                                   uint64_t len, bool is_write)
{
    AddressSpace *as = pci_get_address_space(pdev);

    RCU_READ_LOCK_GUARD();
    while (len) {
        hwaddr xlat, l = len;
        MemoryRegion *mr = address_space_translate(as, addr, &xlat, &l,
                                                   is_write,
                                                   MEMTXATTRS_UNSPECIFIED);

        if (mr->owner &&
            object_dynamic_cast(mr->owner, TYPE_PCIE_HOST_BRIDGE)) {
            return true;
        }
        if (!l || l > len) {
            break;
        }
        addr += l;
        len -= l;
    }
    return false;
}

/* Why endpoint DMA to [addr, addr + len) is refused, or NULL. */
static const char *pciefw_dma_refusal(PCIeFwState *s, uint64_t addr,
                                      uint64_t len, bool is_write)
{
    PCIDevice *pdev = PCI_DEVICE(s);

    if (!(pci_get_word(pdev->config + PCI_COMMAND) & PCI_COMMAND_MASTER)) {
        return "bus mastering is off";
    }
    if (s->resetting) {
        return "the function is being reset";
    }
    if (pciefw_dma_hits_config(pdev, addr, len, is_write)) {
        return "it targets the configuration-space window";
    }
    return NULL;
}

/*
 * Answer a DmaRead.  The request's fields are copied first: nothing here
 * may depend on the decoder's buffers once guest memory is touched.
 */
static int pciefw_on_dma_read(void *opaque, const PfMessage *m, char *err,
                              size_t errlen)
{
    PCIeFwState *s = opaque;
    const uint32_t tag = m->dma_read->tag, size = m->dma_read->size;
    const uint64_t address = m->dma_read->address;
    g_autofree uint8_t *data = NULL;
    int status = PCIEFW__STATUS__STATUS_SUCCESSFUL;
    const char *refusal = pciefw_dma_refusal(s, address, size, false);
    size_t mark;

    if (refusal) {
        trace_pciefw_dma_refused("read", address, size, refusal);
        status = PCIEFW__STATUS__STATUS_COMPLETER_ABORT;
    } else {
        data = g_malloc(size);
        if (pci_dma_read(PCI_DEVICE(s), address, data, size) != MEMTX_OK) {
            pciefw_fault(s, PCIEFW_FAULT_DMA, "DMA read of 0x%" PRIx64
                         " (%u bytes) outside memory and devices", address,
                         size);
            status = PCIEFW__STATUS__STATUS_COMPLETER_ABORT;
        }
    }
    trace_pciefw_dma_read(tag, address, size, status);
    mark = pciefw_conn_mark(s->conn);
    pciefw_conn_queued(s->conn, mark,
                       pf_put_completion(pciefw_conn_out(s->conn), tag, status,
                                         status ? NULL : data,
                                         status ? 0 : size),
                       "completion");
    return PF_OK;
}

static int pciefw_on_dma_write(void *opaque, const PfMessage *m, char *err,
                               size_t errlen)
{
    PCIeFwState *s = opaque;
    const Pciefw__DmaWrite *w = m->dma_write;
    const char *refusal = pciefw_dma_refusal(s, w->address, w->data.len,
                                             true);

    trace_pciefw_dma_write(w->address, w->data.len, refusal != NULL);
    if (refusal) {
        trace_pciefw_dma_refused("write", w->address, w->data.len, refusal);
        return PF_OK;
    }
    if (pci_dma_write(PCI_DEVICE(s), w->address, w->data.data,
                      w->data.len) != MEMTX_OK) {
        pciefw_fault(s, PCIEFW_FAULT_DMA, "DMA write to 0x%" PRIx64
                     " (%zu bytes) outside memory and devices", w->address,
                     w->data.len);
    }
    return PF_OK;
}

/* ---------------------------------------------------------------------- */
/* The endpoint's interrupts (spec 3.2)                                    */

/*
 * Each message's fate -- delivered, left pending, or dropped and why --
 * goes to the trace events and, as a note record after the message, to
 * the capture file (docs/protocol.md 3.2, 6).
 */
static void G_GNUC_PRINTF(2, 3)
pciefw_irq_note(PCIeFwState *s, const char *fmt, ...)
{
    g_autofree char *text = NULL;
    va_list ap;

    if (!pciefw_conn_trace(s->conn)) {
        return;
    }
    va_start(ap, fmt);
    text = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    pf_trace_write_note(pciefw_conn_trace(s->conn), pf_now_ns(),
                        PF_DIR_TO_HOST, text);
}

static const char *pciefw_irq_blocked(PCIeFwState *s)
{
    PCIDevice *pdev = PCI_DEVICE(s);

    if (s->resetting) {
        return "dropped: the function is being reset";
    }
    if (!(pci_get_word(pdev->config + PCI_COMMAND) & PCI_COMMAND_MASTER)) {
        return "dropped: bus mastering is off";
    }
    return NULL;
}

static int pciefw_on_intx(void *opaque, const PfMessage *m, char *err,
                          size_t errlen)
{
    PCIeFwState *s = opaque;
    PCIDevice *pdev = PCI_DEVICE(s);
    bool asserted = m->intx->asserted;
    const char *outcome = "delivered";

    if (!s->desc.intx_pin) {
        pciefw_fault(s, PCIEFW_FAULT_INTX, "INTx from a function that "
                     "declared no interrupt pin");
        outcome = "dropped: no interrupt pin";
    } else if (s->resetting) {
        outcome = "dropped: the function is being reset";
    } else {
        pciefw_set_intx(s, asserted);
        if (asserted && pci_get_word(pdev->config + PCI_COMMAND) &
                        PCI_COMMAND_INTX_DISABLE) {
            outcome = "pending: INTx Disable is set";
        }
    }
    trace_pciefw_intx(asserted, outcome);
    pciefw_irq_note(s, "intx level %d: %s", asserted, outcome);
    return PF_OK;
}

static int pciefw_on_msi(void *opaque, const PfMessage *m, char *err,
                         size_t errlen)
{
    PCIeFwState *s = opaque;
    PCIDevice *pdev = PCI_DEVICE(s);
    uint32_t vector = m->msi->vector;
    const char *outcome = pciefw_irq_blocked(s);
    unsigned int allocated;

    if (vector >= s->desc.msi_vectors) {
        pciefw_fault(s, PCIEFW_FAULT_VECTOR, "MSI vector %u, of %u declared",
                     vector, s->desc.msi_vectors);
        outcome = "dropped: vector out of range";
    } else if (!outcome && !msi_enabled(pdev)) {
        outcome = "dropped: MSI is disabled";
    }
    if (!outcome) {
        /* Fewer vectors enabled than requested alias (PCI 3.0 6.8.3.4). */
        allocated = msi_nr_vectors_allocated(pdev);
        vector &= allocated - 1;
        outcome = msi_is_masked(pdev, vector) ? "pending: vector masked"
                                              : "delivered";
        msi_notify(pdev, vector);
    }
    trace_pciefw_msi(vector, outcome);
    pciefw_irq_note(s, "msi vector %u: %s", vector, outcome);
    return PF_OK;
}

static int pciefw_on_msix(void *opaque, const PfMessage *m, char *err,
                          size_t errlen)
{
    PCIeFwState *s = opaque;
    PCIDevice *pdev = PCI_DEVICE(s);
    uint32_t vector = m->msix->vector;
    const char *outcome = pciefw_irq_blocked(s);

    if (vector >= s->desc.msix_vectors) {
        pciefw_fault(s, PCIEFW_FAULT_VECTOR, "MSI-X vector %u, of %u declared",
                     vector, s->desc.msix_vectors);
        outcome = "dropped: vector out of range";
    } else if (!outcome && !msix_enabled(pdev)) {
        outcome = "dropped: MSI-X is disabled";
    }
    if (!outcome) {
        outcome = msix_is_masked(pdev, vector) ? "pending: vector masked"
                                               : "delivered";
        msix_notify(pdev, vector);
    }
    trace_pciefw_msix(vector, outcome);
    pciefw_irq_note(s, "msix vector %u: %s", vector, outcome);
    return PF_OK;
}

/*
 * DMA and interrupts arrive only once the function is described: before
 * that, the same handlers refuse them as messages out of place.
 */
static int pciefw_described(PCIeFwState *s, const PfMessage *m, char *err,
                            size_t errlen)
{
    if (s->state == PCIEFW_UP || s->state == PCIEFW_RESETTING) {
        return PF_OK;
    }
    snprintf(err, errlen, "unexpected %s before the device description",
             pf_msg_kind_name(m->body_case));
    return PF_ERR_UNEXPECTED;
}

#define PCIEFW_SESSION_HANDLER(name, fn)                                \
    static int name(void *opaque, const PfMessage *m, char *err,        \
                    size_t errlen)                                      \
    {                                                                   \
        return pciefw_described(opaque, m, err, errlen) ?:              \
               fn(opaque, m, err, errlen);                              \
    }

PCIEFW_SESSION_HANDLER(pciefw_dma_read_handler, pciefw_on_dma_read)
PCIEFW_SESSION_HANDLER(pciefw_dma_write_handler, pciefw_on_dma_write)
PCIEFW_SESSION_HANDLER(pciefw_intx_handler, pciefw_on_intx)
PCIEFW_SESSION_HANDLER(pciefw_msi_handler, pciefw_on_msi)
PCIEFW_SESSION_HANDLER(pciefw_msix_handler, pciefw_on_msix)

/* ---------------------------------------------------------------------- */
/* The session: description, transport, a returning endpoint's reset     */

static void pciefw_save_desc(PCIeFwState *s, const Pciefw__DeviceDescription *d)
{
    PCIeFwDesc *n = &s->new_desc;

    memset(n, 0, sizeof(*n));
    n->vendor_id = d->vendor_id;
    n->device_id = d->device_id;
    n->subsystem_vendor_id = d->subsystem_vendor_id;
    n->subsystem_id = d->subsystem_id;
    n->class_code = d->class_code;
    n->revision = d->revision;
    n->intx_pin = d->intx_pin;
    n->msi_vectors = d->msi_vectors;
    n->msix_vectors = d->msix_vectors;
    if (d->msix_vectors) {
        n->msix_table_bar = d->msix_table_bar;
        n->msix_table_offset = d->msix_table_offset;
        n->msix_pba_bar = d->msix_pba_bar;
        n->msix_pba_offset = d->msix_pba_offset;
    }
    n->config_ext = pciefw_conn_session(s->conn)->features &
                    PCIEFW_FEATURE_CONFIG_EXT;
    for (size_t i = 0; i < d->n_bars; i++) {
        const Pciefw__Bar *b = d->bars[i];
        PCIeFwBarDesc *bd = &n->bars[b->index];

        bd->present = true;
        bd->kind = b->kind;
        bd->prefetchable = b->prefetchable;
        bd->size = b->size;
    }
    trace_pciefw_description(n->vendor_id, n->device_id, n->class_code,
                             d->n_bars, n->msi_vectors, n->msix_vectors,
                             n->intx_pin);
}

/* The reset of a reconnection completed: the device serves the guest. */
static void pciefw_revived(PCIeFwRequest *req, void *opaque)
{
    PCIeFwState *s = opaque;

    if (req->status < 0 || s->state != PCIEFW_RESETTING) {
        return;                 /* the connection went; it said why */
    }
    timer_del(s->attempt_timer);
    s->state = PCIEFW_UP;
    pciefw_memmap_after_reset(&s->memmap, pciefw_bme(s));
    pciefw_irqcfg_begin(&s->irqcfg);
    s->reconnecting = false;
    s->error_reported = false;
    s->mismatch_reported = false;
    trace_pciefw_reconnected();
    info_report("pciefw: reconnected to endpoint %s", s->peer);
}

/* The returning endpoint describes the same device: reset it first. */
static void pciefw_send_revive_reset(PCIeFwState *s)
{
    size_t mark;

    trace_pciefw_reset("function");
    s->revive = (PCIeFwRequest) { .complete = pciefw_revived, .opaque = s };
    if (!pciefw_conn_request(s->conn, &s->revive)) {
        return;
    }
    mark = pciefw_conn_mark(s->conn);
    if (pciefw_conn_queued(s->conn, mark,
                           pf_put_reset(pciefw_conn_out(s->conn),
                                        s->revive.tag,
                                        PCIEFW__RESET_KIND__RESET_FUNCTION),
                           "reset")) {
        pciefw_conn_flush(s->conn);
    }
}

/*
 * The function is described and the connection settled its transport
 * (pciefw-conn.h): at realize the device is up; on reconnection the
 * endpoint's function is reset first.
 */
static void pciefw_session_start(void *opaque)
{
    PCIeFwState *s = opaque;

    s->state = s->have_desc ? PCIEFW_RESETTING : PCIEFW_UP;
    s->faults_reported = 0;
    pciefw_memmap_begin(&s->memmap, pciefw_bme(s));
    if (s->state == PCIEFW_UP) {
        pciefw_irqcfg_begin(&s->irqcfg);
    } else if (pciefw_conn_up(s->conn)) {
        pciefw_send_revive_reset(s);  /* then the settings (12.3) */
    }
}

/*
 * The endpoint described its function.  At realize it defines the device;
 * on reconnection it must describe the same device, and nothing it sent
 * takes effect before that check passed.
 */
static int pciefw_on_description(void *opaque, const PfMessage *m, char *err,
                                 size_t errlen)
{
    PCIeFwState *s = opaque;
    const Pciefw__DeviceDescription *d = m->device_description;

    if (s->state != PCIEFW_SESSION) {
        snprintf(err, errlen, "a second device_description");
        return PF_ERR_UNEXPECTED;
    }
    /* Where MSI-X goes, beyond the message's own rules (spec 4.2). */
    if (pf_desc_check_msix(d, err, errlen) != PF_OK) {
        g_autofree char *why = g_strdup(err);

        snprintf(err, errlen, "cannot add MSI-X: %s", why);
        return PF_ERR_INVALID;
    }
    pciefw_save_desc(s, d);
    if (s->have_desc && memcmp(&s->new_desc, &s->desc, sizeof(s->desc))) {
        /* Reported once per loss of the endpoint, like the loss itself. */
        if (!s->mismatch_reported) {
            s->mismatch_reported = true;
            error_report("pciefw: endpoint %s now describes a different "
                         "device (%04x:%04x, expected %04x:%04x, or other "
                         "BARs, vectors or features); not using it, "
                         "retrying every %u s", s->peer,
                         s->new_desc.vendor_id, s->new_desc.device_id,
                         s->desc.vendor_id, s->desc.device_id, s->reconnect_s);
        }
        pciefw_disconnect(s, "endpoint describes a different device");
        return PF_RX_PAUSE;
    }
    s->state = PCIEFW_SETTLING;
    pciefw_conn_settle(s->conn);
    return PF_OK;
}

static int pciefw_on_session(void *opaque, const struct pf_session *ses,
                             char *err, size_t errlen)
{
    trace_pciefw_connected(ses->peer_name, ses->version_major,
                           ses->version_minor, ses->max_payload,
                           ses->features);
    return PF_OK;
}

static const PCIeFwConnOps pciefw_conn_ops = {
    .on = {
        [PCIEFW__MESSAGE__BODY_DEVICE_DESCRIPTION] = pciefw_on_description,
        [PCIEFW__MESSAGE__BODY_DMA_READ] = pciefw_dma_read_handler,
        [PCIEFW__MESSAGE__BODY_DMA_WRITE] = pciefw_dma_write_handler,
        [PCIEFW__MESSAGE__BODY_INTX] = pciefw_intx_handler,
        [PCIEFW__MESSAGE__BODY_MSI] = pciefw_msi_handler,
        [PCIEFW__MESSAGE__BODY_MSIX] = pciefw_msix_handler,
    },
    .session = pciefw_on_session,
    .closed = pciefw_conn_closed,
    .out_idle = pciefw_out_idle,
    .settled = pciefw_session_start,
};

/* ---------------------------------------------------------------------- */
/* Connecting                                                              */

/*
 * Connecting never blocks: the dialer connects from the main loop, and the
 * session is the connection's from there.  At realize the steps are
 * driven synchronously, bounded by the timeout; a reconnection runs in
 * the background, bounded by attempt_timer.
 */

/* The socket is connected, or the attempt failed. */
static void pciefw_dialed(void *opaque, int fd, const char *error)
{
    PCIeFwState *s = opaque;
    g_autofree char *what = g_strdup_printf("connected to %s", s->peer);
    QCryptoTLSCreds *creds = pciefw_conn_creds(s->conn);
    PCIeFwStream *st;
    Error *err = NULL;

    if (fd < 0) {
        g_autofree char *why = g_strdup_printf("cannot connect: %s", error);

        pciefw_lost(s, why);
        return;
    }
    st = creds ? pciefw_stream_tls(fd, creds, s->tls_hostname ?: s->raddr,
                                   &err)
               : pciefw_stream_socket(fd);
    if (!st) {
        close(fd);
        pciefw_lost(s, error_get_pretty(err));
        error_free(err);
        return;
    }
    s->state = PCIEFW_SESSION;
    pciefw_conn_start(s->conn, fd, st, &s->hello, what);
}

static void pciefw_start_connect(PCIeFwState *s)
{
    s->state = PCIEFW_CONNECTING;
    pciefw_dial_start(&s->dial);
}

static bool pciefw_up(void *arg)
{
    return ((PCIeFwState *)arg)->state == PCIEFW_UP;
}

/*
 * Realize's connection: connect, exchange Hellos and read the
 * DeviceDescription into s->new_desc, all within the completion timeout.
 */
static void pciefw_connect_once(PCIeFwState *s)
{
    int64_t deadline = pciefw_conn_deadline(s->conn);

    g_clear_pointer(&s->connect_error, g_free);
    pciefw_start_connect(s);
    pciefw_dial_wait(&s->dial, deadline);
    if (pciefw_conn_alive(s->conn)) {
        pciefw_conn_pump(s->conn, pciefw_up, s, "hello and device "
                         "description", deadline);
    }
}

/* Nobody listens there (yet), as opposed to a refusal or a failure. */
static bool pciefw_nobody_there(PCIeFwState *s)
{
    return s->state != PCIEFW_UP && s->connect_error &&
           g_str_has_prefix(s->connect_error, "cannot connect: ");
}

static bool pciefw_connect(PCIeFwState *s, Error **errp)
{
    s->realizing = true;
    pciefw_connect_once(s);
    /*
     * With reconnect=N an endpoint not up yet is waited for, as a chardev
     * socket with reconnect= waits for its server: QEMU needs the
     * function's description to present the device.  Before the main
     * loop runs, SIGINT and SIGTERM still end QEMU here.
     */
    if (s->reconnect_s && pciefw_nobody_there(s)) {
        warn_report("pciefw: no endpoint at %s yet (%s); waiting for it, "
                    "trying every %u s", s->peer,
                    s->connect_error + strlen("cannot connect: "),
                    s->reconnect_s);
        while (pciefw_nobody_there(s)) {
            g_usleep((uint64_t)s->reconnect_s * G_USEC_PER_SEC);
            pciefw_connect_once(s);
        }
    }
    s->realizing = false;

    if (s->state != PCIEFW_UP) {
        const char *why = s->connect_error ?: "handshake failed";

        if (g_str_has_prefix(why, "cannot connect: ")) {
            error_setg(errp, "cannot connect to the pciefw endpoint at %s: "
                       "%s; start it first (pciefw-endpoint --listen %s ...)",
                       s->peer, why + strlen("cannot connect: "), s->peer);
        } else {
            error_setg(errp, "pciefw endpoint at %s: %s", s->peer, why);
        }
        pciefw_conn_close(s->conn, "realize failed");
        pciefw_link_down(s);
        return false;
    }
    return true;
}

/*
 * A reconnection attempt: everything happens from the main loop's fd
 * handlers; attempt_timer ends an attempt that takes longer than the
 * completion timeout.
 */
static void pciefw_reconnect(void *opaque)
{
    PCIeFwState *s = opaque;

    if (s->state != PCIEFW_DOWN) {
        return;
    }
    trace_pciefw_reconnect_attempt();
    s->reconnecting = true;
    timer_mod(s->attempt_timer, pciefw_conn_deadline(s->conn));
    pciefw_start_connect(s);
}

static void pciefw_attempt_timeout(void *opaque)
{
    PCIeFwState *s = opaque;

    if (s->reconnecting && s->state != PCIEFW_DOWN) {
        pciefw_disconnect(s, "no hello, description and reset completion "
                          "within %u ms", s->conf.timeout_ms);
    }
}

static void pciefw_schedule_reconnect(PCIeFwState *s)
{
    if (s->reconnect_s && s->reconnect_timer && !s->closing) {
        timer_mod(s->reconnect_timer,
                  qemu_clock_get_ms(QEMU_CLOCK_REALTIME) +
                  (int64_t)s->reconnect_s * 1000);
    }
}

/* ---------------------------------------------------------------------- */
/* Resets (spec 3.1)                                                       */

static int pciefw_put_reset(struct pf_buf *out, uint32_t tag, const void *arg)
{
    return pf_put_reset(out, tag, *(const Pciefw__ResetKind *)arg);
}

static void pciefw_send_reset(PCIeFwState *s, Pciefw__ResetKind kind)
{
    trace_pciefw_reset(kind == PCIEFW__RESET_KIND__RESET_FUNCTION ?
                       "function" : "system");
    if (s->state != PCIEFW_UP) {
        return;         /* a reconnection resets the endpoint anyway */
    }
    s->resetting = true;
    /* The reset clears Bus Master Enable: no copies from here (10.3). */
    pciefw_memmap_report_bme(&s->memmap, false, false);
    pciefw_request(s, "reset", pciefw_put_reset, &kind, NULL, 0,
                   pciefw_conn_deadline(s->conn));
    /* QEMU resets MSI and MSI-X next: both sides hold the reset state. */
    pciefw_irqcfg_reset(&s->irqcfg);
    s->resetting = false;
    pciefw_memmap_after_reset(&s->memmap, pciefw_bme(s));
    if (s->desc.intx_pin) {
        pciefw_set_intx(s, false);
    }
}

/* ---------------------------------------------------------------------- */
/* BAR accesses                                                            */

/* A config, memory or IO access of the guest's. */
typedef struct PCIeFwAccess {
    int kind;                   /* its Pciefw__Message__BodyCase */
    uint8_t bar;
    uint64_t addr;
    uint32_t size;
    const uint8_t *data;        /* writes */
    bool record;                /* as a binary record (spec 11.7) */
} PCIeFwAccess;

/* As a binary register record where the session takes one (11.7). */
static int pciefw_put_access(struct pf_buf *out, uint32_t tag,
                             const void *arg)
{
    const PCIeFwAccess *a = arg;

    return pf_put_access(out, a->record, a->kind, tag, a->bar, a->addr,
                         a->data, a->size);
}

static uint64_t pciefw_bar_read(void *opaque, hwaddr addr, unsigned size)
{
    PCIeFwBar *bar = opaque;
    PCIeFwState *s = bar->s;
    bool io = s->desc.bars[bar->index].kind == PCIEFW__BAR_KIND__BAR_IO;
    PCIeFwAccess a = { .kind = io ? PCIEFW__MESSAGE__BODY_IO_READ :
                       PCIEFW__MESSAGE__BODY_MEM_READ, .bar = bar->index,
                       .addr = addr, .size = size,
                       .record = pciefw_conn_records(s->conn) };
    uint64_t val = all_ones(size);
    uint8_t data[8];

    if (!pciefw_reentered(s, "BAR read", addr) &&
        pciefw_request(s, io ? "io_read" : "mem_read", pciefw_put_access, &a,
                       data, size, pciefw_conn_deadline(s->conn)) ==
        PCIEFW__STATUS__STATUS_SUCCESSFUL) {
        val = pf_le_load(data, size);
    }
    if (io) {
        trace_pciefw_io_read(bar->index, addr, size, val);
    } else {
        trace_pciefw_mem_read(bar->index, addr, size, val);
    }
    return val;
}

static void pciefw_bar_write(void *opaque, hwaddr addr, uint64_t val,
                             unsigned size)
{
    PCIeFwBar *bar = opaque;
    PCIeFwState *s = bar->s;
    uint8_t data[8];
    PCIeFwAccess a = { .kind = PCIEFW__MESSAGE__BODY_IO_WRITE,
                       .bar = bar->index, .addr = addr, .size = size,
                       .data = data, .record = pciefw_conn_records(s->conn) };
    size_t mark;

    if (pciefw_reentered(s, "BAR write", addr)) {
        return;
    }
    pf_le_store(data, size, val);
    if (s->desc.bars[bar->index].kind == PCIEFW__BAR_KIND__BAR_IO) {
        /* I/O writes are non-posted. */
        trace_pciefw_io_write(bar->index, addr, size, val);
        pciefw_request(s, "io_write", pciefw_put_access, &a, NULL, 0,
                       pciefw_conn_deadline(s->conn));
        return;
    }
    trace_pciefw_mem_write(bar->index, addr, size, val);
    if (s->state != PCIEFW_UP) {
        return;
    }
    a.kind = PCIEFW__MESSAGE__BODY_MEM_WRITE;
    mark = pciefw_conn_mark(s->conn);
    pciefw_posted(s, mark, pciefw_put_access(pciefw_conn_out(s->conn), 0, &a),
                  "mem_write");
}

static const MemoryRegionOps pciefw_mem_ops = {
    .read = pciefw_bar_read,
    .write = pciefw_bar_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .min_access_size = 1, .max_access_size = 8 },
    .impl = { .min_access_size = 1, .max_access_size = 8 },
};

static const MemoryRegionOps pciefw_io_ops = {
    .read = pciefw_bar_read,
    .write = pciefw_bar_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = { .min_access_size = 1, .max_access_size = 4 },
    .impl = { .min_access_size = 1, .max_access_size = 4 },
};

/* ---------------------------------------------------------------------- */
/* Config space                                                            */

static bool pciefw_config_forwarded(PCIeFwState *s, uint32_t addr)
{
    if (addr >= PCIEFW_CFG_DEV_START && addr < PCIEFW_CFG_DEV_END) {
        return true;
    }
    return addr >= PCI_CONFIG_SPACE_SIZE && s->config_ext;
}

/*
 * A forwarded config access; a device not ready after reset answers
 * CONFIG_RETRY, and the access is retried until the completion timeout
 * (spec 3.5): every attempt shares one deadline, so the access holds the
 * BQL for at most the timeout.  Returns the final status, or -1 without a
 * connection.
 */
static int pciefw_config_access(PCIeFwState *s, bool write, uint32_t addr,
                                uint32_t val, int len, uint8_t *out)
{
    int64_t deadline = pciefw_conn_deadline(s->conn);
    uint8_t data[4];
    PCIeFwAccess a = { .kind = write ? PCIEFW__MESSAGE__BODY_CONFIG_WRITE :
                       PCIEFW__MESSAGE__BODY_CONFIG_READ, .addr = addr,
                       .size = len, .data = write ? data : NULL };
    int status;

    pf_le_store(data, len, val);
    for (;;) {
        a.record = pciefw_conn_records(s->conn);
        status = pciefw_request(s, write ? "config_write" : "config_read",
                                pciefw_put_access, &a, out, write ? 0 : len,
                                deadline);
        if (status != PCIEFW__STATUS__STATUS_CONFIG_RETRY ||
            qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + 1 >= deadline) {
            return status;
        }
        g_usleep(1000);
    }
}

static uint32_t pciefw_config_read(PCIDevice *pdev, uint32_t addr, int len)
{
    PCIeFwState *s = PCIEFW(pdev);
    uint32_t val = all_ones(len);
    uint8_t data[4];

    if (!pciefw_config_forwarded(s, addr)) {
        return pci_default_read_config(pdev, addr, len);
    }
    if (pciefw_reentered(s, "config read", addr)) {
        return val;
    }
    if (pciefw_config_access(s, false, addr, 0, len, data) ==
        PCIEFW__STATUS__STATUS_SUCCESSFUL) {
        val = pf_le_load(data, len);
    }
    trace_pciefw_config_read(addr, len, val);
    return val;
}

static void pciefw_config_write(PCIDevice *pdev, uint32_t addr, uint32_t val,
                                int len)
{
    PCIeFwState *s = PCIEFW(pdev);

    if (pciefw_reentered(s, "config write", addr)) {
        return;
    }
    if (!pciefw_config_forwarded(s, addr)) {
        pci_default_write_config(pdev, addr, val, len);
        pciefw_irqcfg_config_written(&s->irqcfg);
        if (ranges_overlap(addr, len, PCI_COMMAND, 2)) {
            pciefw_memmap_report_bme(&s->memmap, pciefw_bme(s), false);
            pciefw_conn_posted(s->conn);
        }
        if (pci_is_express(pdev)) {
            pcie_cap_flr_write_config(pdev, addr, val, len);
        }
        return;
    }
    trace_pciefw_config_write(addr, len, val);
    pciefw_config_access(s, true, addr, val, len, NULL);
}

/* ---------------------------------------------------------------------- */
/* Realize, reset, unrealize                                               */

static void pciefw_init_bars(PCIeFwState *s)
{
    PCIDevice *pdev = PCI_DEVICE(s);

    for (int i = 0; i < PCIEFW_NUM_BARS; i++) {
        const PCIeFwBarDesc *bd = &s->desc.bars[i];
        PCIeFwBar *bar = &s->bars[i];
        g_autofree char *name = NULL;
        g_autofree char *fwd_name = NULL;
        uint8_t type;

        bar->s = s;
        bar->index = i;
        if (!bd->present) {
            continue;
        }
        name = g_strdup_printf("pciefw-bar%d", i);
        fwd_name = g_strdup_printf("pciefw-bar%d-fwd", i);
        memory_region_init(&bar->container, OBJECT(s), name, bd->size);
        memory_region_init_io(&bar->fwd, OBJECT(s),
                              bd->kind == PCIEFW__BAR_KIND__BAR_IO ?
                              &pciefw_io_ops : &pciefw_mem_ops,
                              bar, fwd_name, bd->size);
        /* Below the MSI-X table and PBA that msix_init() may add. */
        memory_region_add_subregion_overlap(&bar->container, 0, &bar->fwd, -1);

        switch (bd->kind) {
        case PCIEFW__BAR_KIND__BAR_IO:
            type = PCI_BASE_ADDRESS_SPACE_IO;
            break;
        case PCIEFW__BAR_KIND__BAR_MEM64:
            type = PCI_BASE_ADDRESS_SPACE_MEMORY | PCI_BASE_ADDRESS_MEM_TYPE_64;
            break;
        default:
            type = PCI_BASE_ADDRESS_SPACE_MEMORY | PCI_BASE_ADDRESS_MEM_TYPE_32;
            break;
        }
        if (bd->prefetchable) {
            type |= PCI_BASE_ADDRESS_MEM_PREFETCH;
        }
        pci_register_bar(pdev, i, type, &bar->container);
    }
}

static bool pciefw_init_caps(PCIeFwState *s, Error **errp)
{
    PCIDevice *pdev = PCI_DEVICE(s);
    const PCIeFwDesc *d = &s->desc;
    Error *local_err = NULL;

    if (pci_is_express(pdev)) {
        if (pcie_endpoint_cap_init(pdev, PCIEFW_CAP_EXP) < 0) {
            error_setg(errp, "cannot add the PCI Express capability");
            return false;
        }
        pcie_cap_deverr_init(pdev);
        pcie_cap_flr_init(pdev);
    }
    if (d->msi_vectors &&
        msi_init(pdev, PCIEFW_CAP_MSI, d->msi_vectors, true, true,
                 &local_err)) {
        error_propagate_prepend(errp, local_err, "cannot add MSI: ");
        return false;
    }
    if (d->msix_vectors) {
        MemoryRegion *bar_mr[PCIEFW_NUM_BARS], *bar_fwd[PCIEFW_NUM_BARS];

        for (int i = 0; i < PCIEFW_NUM_BARS; i++) {
            bar_mr[i] = &s->bars[i].container;
            bar_fwd[i] = &s->bars[i].fwd;
        }
        if (!pciefw_msix_init(&s->msix, pdev, d->msix_vectors, bar_mr, bar_fwd,
                              d->msix_table_bar, d->msix_table_offset,
                              d->msix_pba_bar, d->msix_pba_offset,
                              PCIEFW_CAP_MSIX, pciefw_irqcfg_entry_written,
                              &s->irqcfg, &local_err)) {
            error_propagate_prepend(errp, local_err, "cannot add MSI-X: ");
            return false;
        }
        for (uint32_t i = 0; i < d->msix_vectors; i++) {
            msix_vector_use(pdev, i);
        }
    }
    return true;
}

static void pciefw_close(PCIeFwState *s)
{
    s->closing = true;
    pciefw_link_down(s);
    g_clear_pointer(&s->conn, pciefw_conn_free);
    pciefw_memmap_stop(&s->memmap);
    pciefw_irqcfg_free(&s->irqcfg);
    g_clear_pointer(&s->reconnect_timer, timer_free);
    g_clear_pointer(&s->attempt_timer, timer_free);
    pciefw_dial_free(&s->dial);
    g_clear_pointer(&s->connect_error, g_free);
    g_clear_pointer(&s->peer, g_free);
}

/* The properties, as realize checks them; false with @errp set. */
static bool pciefw_check_properties(PCIeFwState *s, Error **errp)
{
    if (s->path && (s->raddr || s->rport)) {
        error_setg(errp, "pciefw: give either path (UNIX socket) or "
                   "raddr+rport (TCP), not both");
        return false;
    }
    if (!s->path && (s->raddr || s->rport) && !(s->raddr && s->rport)) {
        error_setg(errp, "pciefw: %s", s->raddr ?
                   "raddr needs rport=PORT, the endpoint's TCP port" :
                   "rport needs raddr=HOST, the endpoint's TCP host");
        return false;
    }
    if (!s->path && !s->raddr) {
        error_setg(errp, "pciefw: the endpoint's socket is missing: set "
                   "path=SOCKET for a UNIX socket or raddr=HOST,rport=PORT "
                   "for TCP");
        return false;
    }
    if (s->path && !*s->path) {
        error_setg(errp, "pciefw: path must not be empty");
        return false;
    }
    if ((s->conf.tls_creds || s->tls_hostname) && s->path) {
        error_setg(errp, "pciefw: tls-creds is for TCP (raddr, rport); a "
                   "UNIX socket is protected by its file mode");
        return false;
    }
    if (s->tls_hostname && !s->conf.tls_creds) {
        error_setg(errp, "pciefw: tls-hostname needs tls-creds");
        return false;
    }
    return true;
}

/* What this side offers in its Hello (spec 2.2, 10.1, 12). */
static void pciefw_offer(PCIeFwState *s)
{
    PCIDevice *pdev = PCI_DEVICE(s);

    pf_hello_defaults(&s->hello, "qemu " QEMU_VERSION);
    /*
     * Guest memory is offered on a UNIX socket when bus addresses are
     * guest-physical (no IOMMU in front of us): docs/protocol.md 10.1.
     * The listener sees RAM as the IOMMU-less bus-master view does, but
     * without the Bus Master Enable gate, which is reported on its own.
     */
    if (s->conf.guest_memory && s->path &&
        pci_device_iommu_address_space(pdev) == &address_space_memory) {
        s->hello.features |= PCIEFW_FEATURE_GUEST_MEMORY;
        pciefw_memmap_start(&s->memmap, &address_space_memory, DEVICE(s),
                            s->conn);
    }
    /* The rings (11.1, 11.7): pciefw_conn_start() adds them (shm-rings). */
    /* The guest's MSI and MSI-X settings, on any transport (spec 12). */
    s->hello.features |= PCIEFW_FEATURE_INTERRUPT_CONFIG;
}

static void pciefw_apply_identity(PCIeFwState *s)
{
    uint8_t *conf = PCI_DEVICE(s)->config;
    const PCIeFwDesc *d = &s->desc;

    pci_config_set_vendor_id(conf, d->vendor_id);
    pci_config_set_device_id(conf, d->device_id);
    pci_set_word(conf + PCI_SUBSYSTEM_VENDOR_ID, d->subsystem_vendor_id);
    pci_set_word(conf + PCI_SUBSYSTEM_ID, d->subsystem_id);
    pci_config_set_class(conf, d->class_code >> 8);
    pci_config_set_prog_interface(conf, d->class_code & 0xff);
    pci_config_set_revision(conf, d->revision);
    pci_config_set_interrupt_pin(conf, d->intx_pin);
}

static void pciefw_realize(PCIDevice *pdev, Error **errp)
{
    ERRP_GUARD();
    PCIeFwState *s = PCIEFW(pdev);

    s->dial.fd = -1;
    if (!pciefw_check_properties(s, errp)) {
        return;
    }
    s->peer = s->path ? g_strdup_printf("unix:%s", s->path)
                      : g_strdup_printf("tcp:%s:%u", s->raddr, s->rport);
    s->conn = pciefw_conn_new(DEVICE(s), "pciefw", PCIEFW_ROLE_HOST,
                              &pciefw_conn_ops, s, &s->conf, errp);
    if (!s->conn) {
        goto fail;
    }
    pciefw_conn_set_peer(s->conn, s->peer);
    pciefw_irqcfg_init(&s->irqcfg, pdev, s->conn);
    pciefw_offer(s);
    s->reconnect_timer = timer_new_ms(QEMU_CLOCK_REALTIME, pciefw_reconnect, s);
    s->attempt_timer = timer_new_ms(QEMU_CLOCK_REALTIME,
                                    pciefw_attempt_timeout, s);
    if (!pciefw_dial_init(&s->dial, s->path, s->raddr, s->rport,
                          pciefw_dialed, s, errp) ||
        !pciefw_connect(s, errp)) {
        goto fail;
    }
    s->desc = s->new_desc;
    s->have_desc = true;
    s->config_ext = pci_is_express(pdev) && s->desc.config_ext;
    pciefw_apply_identity(s);
    pciefw_init_bars(s);
    if (!pciefw_init_caps(s, errp)) {
        error_prepend(errp, "pciefw: endpoint %s describes a device QEMU "
                      "cannot present: ", s->peer);
        goto fail_caps;
    }
    return;

fail_caps:
    pciefw_msix_uninit(&s->msix);
    msi_uninit(pdev);
    if (pci_is_express(pdev)) {
        pcie_cap_exit(pdev);
    }
fail:
    pciefw_close(s);
}

static void pciefw_exit(PCIDevice *pdev)
{
    PCIeFwState *s = PCIEFW(pdev);

    /* From here on nothing the endpoint sends takes effect. */
    s->closing = true;
    if (s->state == PCIEFW_UP) {
        /* Best effort: the endpoint learns it was unplugged. */
        pciefw_conn_goodbye(s->conn, PCIEFW__GOODBYE_REASON__GOODBYE_UNPLUG,
                            "device removed");
    }
    pciefw_msix_uninit(&s->msix);
    msi_uninit(pdev);
    if (pci_is_express(pdev)) {
        pcie_cap_exit(pdev);
    }
    pciefw_close(s);
}

static void pciefw_reset(DeviceState *dev)
{
    PCIeFwState *s = PCIEFW(dev);
    PCIDevice *pdev = PCI_DEVICE(dev);
    bool flr = false;

    if (pci_is_express(pdev) && pdev->exp.exp_cap) {
        /* pcie_cap_flr_write_config() clears the bit after resetting us. */
        flr = pci_get_word(pdev->config + pdev->exp.exp_cap + PCI_EXP_DEVCTL) &
              PCI_EXP_DEVCTL_BCR_FLR;
    }
    pciefw_send_reset(s, flr ? PCIEFW__RESET_KIND__RESET_FUNCTION
                             : PCIEFW__RESET_KIND__RESET_SYSTEM);
}

/* A device on a PCI Express bus is a PCI Express endpoint. */
static void pciefw_dc_realize(DeviceState *dev, Error **errp)
{
    PCIDevice *pdev = PCI_DEVICE(dev);
    PCIeFwClass *pc = PCIEFW_GET_CLASS(dev);

    if (pci_bus_is_express(pci_get_bus(pdev))) {
        pdev->cap_present |= QEMU_PCI_CAP_EXPRESS;
    }
    pc->parent_dc_realize(dev, errp);
}

static const VMStateDescription vmstate_pciefw = {
    .name = "pciefw",
    .unmigratable = 1,
};

static const Property pciefw_properties[] = {
    DEFINE_PROP_STRING("raddr", PCIeFwState, raddr),
    DEFINE_PROP_UINT16("rport", PCIeFwState, rport, 0),
    DEFINE_PROP_STRING("path", PCIeFwState, path),
    DEFINE_PROP_UINT32("reconnect", PCIeFwState, reconnect_s, 0),
    DEFINE_PROP_STRING("tls-hostname", PCIeFwState, tls_hostname),
};

static void pciefw_class_init(ObjectClass *klass, const void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);
    PCIeFwClass *pc = PCIEFW_CLASS(klass);

    k->realize = pciefw_realize;
    k->exit = pciefw_exit;
    k->config_read = pciefw_config_read;
    k->config_write = pciefw_config_write;
    /* Placeholders: realize applies the endpoint's identity. */
    k->vendor_id = PCI_VENDOR_ID_QEMU;
    k->device_id = 0xfe00;
    k->class_id = PCI_CLASS_OTHERS;
    device_class_set_parent_realize(dc, pciefw_dc_realize,
                                    &pc->parent_dc_realize);
    device_class_set_legacy_reset(dc, pciefw_reset);
    dc->desc = "PCI/PCIe function served by a pciefw endpoint process";
    dc->vmsd = &vmstate_pciefw;
    set_bit(DEVICE_CATEGORY_MISC, dc->categories);

    pciefw_conn_class_props(klass, PCIEFW_ROLE_HOST, pciefw_properties,
                            ARRAY_SIZE(pciefw_properties),
                            offsetof(PCIeFwState, conf));
    object_class_property_set_description(klass, "raddr",
        "TCP host of the endpoint (with rport)");
    object_class_property_set_description(klass, "rport",
        "TCP port of the endpoint (with raddr)");
    object_class_property_set_description(klass, "path",
        "UNIX socket of the endpoint (instead of raddr/rport)");
    object_class_property_set_description(klass, "reconnect",
        "seconds between reconnection attempts after the endpoint is "
        "lost, and between attempts at start-up while it is not up yet "
        "(0: stay disconnected; the endpoint must be up at start-up)");
    object_class_property_set_description(klass, "tls-hostname",
        "name the endpoint's certificate must carry (default: raddr)");
}

static const TypeInfo pciefw_types[] = {
    {
        .name          = TYPE_PCIEFW,
        .parent        = TYPE_PCI_DEVICE,
        .instance_size = sizeof(PCIeFwState),
        .class_size    = sizeof(PCIeFwClass),
        .class_init    = pciefw_class_init,
        .interfaces    = (const InterfaceInfo[]) {
            { INTERFACE_PCIE_DEVICE },
            { INTERFACE_CONVENTIONAL_PCI_DEVICE },
            { },
        },
    },
};

DEFINE_TYPES(pciefw_types)
