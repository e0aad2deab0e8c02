/*
 * pciefw: a PCI/PCI Express function served by an external endpoint
 *
 * The device forwards the guest's config (device-specific region), memory
 * and I/O transactions over a stream socket to an endpoint process that
 * implements the function, and carries the endpoint's DMA and interrupts
 * back into QEMU.  Every message is a length-prefixed protobuf (see
 * docs/protocol.md of the pciefw project); the protocol library is built
 * into this directory (hw/pciefw/protocol/).
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
#include <poll.h>
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qemu/module.h"
#include "qemu/sockets.h"
#include "qemu/timer.h"
#include "qapi/error.h"
#include "qapi/qapi-types-sockets.h"
#include "hw/pci/pci.h"
#include "hw/pci/pci_device.h"
#include "hw/pci/pcie.h"
#include "hw/pci/msi.h"
#include "hw/pci/msix.h"
#include "hw/qdev-properties.h"
#include "migration/vmstate.h"
#include "qom/object.h"
#include "trace.h"

#include "protocol/pciefw.h"
#include "protocol/buf.h"
#include "protocol/codec.h"
#include "protocol/frame.h"
#include "protocol/handshake.h"
#include "protocol/msg.h"
#include "protocol/trace.h"

#define TYPE_PCIEFW "pciefw"
OBJECT_DECLARE_TYPE(PCIeFwState, PCIeFwClass, PCIEFW)

/* Config space split (see the header comment). */
#define PCIEFW_CFG_DEV_START    0x40
#define PCIEFW_CFG_DEV_END      0x80
#define PCIEFW_CAP_EXP          0x80
#define PCIEFW_CAP_MSI          0xc0
#define PCIEFW_CAP_MSIX         0xe0

#define PCIEFW_DEFAULT_TIMEOUT_MS   5000
#define PCIEFW_RX_CHUNK             (64 * 1024)
/* Reads per idle callback before yielding back to the main loop. */
#define PCIEFW_RX_BATCH             16
/* Posted writes queued beyond this wait for the socket to drain. */
#define PCIEFW_TX_HIGH_WATER        (1024 * 1024)

typedef enum PCIeFwLinkState {
    PCIEFW_DOWN,
    PCIEFW_WAIT_HELLO,
    PCIEFW_WAIT_DESC,
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
    uint32_t timeout_ms;
    uint32_t reconnect_s;
    char *trace_path;
    uint64_t trace_limit;

    /* Connection */
    char *peer;                 /* "unix:PATH" or "tcp:HOST:PORT" */
    int fd;
    PCIeFwLinkState state;
    bool connecting;            /* failures go to connect_error */
    char *connect_error;
    bool error_reported;
    bool mismatch_reported;
    struct pf_hello_params hello;
    struct pf_session session;
    struct pf_frame_decoder dec;
    struct pf_codec codec;
    struct pf_buf out;
    uint8_t *rxbuf;
    bool write_watched;
    bool draining;
    struct pf_trace_writer *trace;
    QEMUTimer *reconnect_timer;

    /* The one outstanding non-posted request (accesses hold the BQL). */
    uint32_t next_tag;
    bool waiting;
    uint32_t wait_tag;
    uint32_t wait_size;
    bool cpl_done;
    int cpl_status;
    uint8_t cpl_data[8];

    /* The function */
    PCIeFwDesc desc;
    PCIeFwDesc new_desc;
    PCIeFwBar bars[PCIEFW_NUM_BARS];
    bool config_ext;
};

static void pciefw_read_input(PCIeFwState *s, int max_reads);
static void pciefw_update_watch(PCIeFwState *s);
static void pciefw_schedule_reconnect(PCIeFwState *s);

static uint64_t all_ones(unsigned size)
{
    return size >= 8 ? UINT64_MAX : (1ULL << (size * 8)) - 1;
}

/* ---------------------------------------------------------------------- */
/* Connection loss                                                         */

/* Close the socket and forget the session's stream state. */
static void pciefw_drop(PCIeFwState *s)
{
    if (s->fd >= 0) {
        qemu_set_fd_handler(s->fd, NULL, NULL, NULL);
        close(s->fd);
        s->fd = -1;
    }
    s->write_watched = false;
    s->state = PCIEFW_DOWN;
    s->waiting = false;
    pf_buf_clear(&s->out);
    pf_frame_decoder_free(&s->dec);
    if (s->trace) {
        pf_trace_flush(s->trace);
    }
}

static void G_GNUC_PRINTF(2, 3)
pciefw_disconnect(PCIeFwState *s, const char *fmt, ...)
{
    PCIDevice *pdev = PCI_DEVICE(s);
    bool was_up = s->state == PCIEFW_UP;
    g_autofree char *why = NULL;
    va_list ap;

    va_start(ap, fmt);
    why = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    trace_pciefw_disconnect(why);

    pciefw_drop(s);
    if (was_up && s->desc.intx_pin) {
        pci_set_irq(pdev, 0);
    }

    if (s->connecting) {
        g_free(s->connect_error);
        s->connect_error = g_steal_pointer(&why);
        return;
    }
    if (!s->error_reported) {
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
    pciefw_schedule_reconnect(s);
}

/* ---------------------------------------------------------------------- */
/* Output                                                                  */

static size_t pciefw_mark(PCIeFwState *s)
{
    return pf_buf_used(&s->out);
}

/*
 * A pf_put_*() call appended the frame(s) after @mark: record them in the
 * capture file and account for failure.
 */
static bool pciefw_queued(PCIeFwState *s, size_t mark, int r, const char *kind)
{
    const uint8_t *p = pf_buf_peek(&s->out) + mark;
    size_t len = pf_buf_used(&s->out) - mark;

    if (r != PF_OK) {
        pciefw_disconnect(s, "cannot encode %s: %s", kind, pf_strerror(r));
        return false;
    }
    trace_pciefw_send(kind, len);
    if (s->trace && len >= PF_FRAME_HEADER) {
        pf_trace_write(s->trace, pf_now_ns(), PF_DIR_TO_ENDPOINT,
                       p + PF_FRAME_HEADER, len - PF_FRAME_HEADER);
    }
    return true;
}

/*
 * The peer closed: it may have said why (Error, Goodbye) before closing,
 * so read what is left before reporting the failed send.
 */
static void pciefw_send_failed(PCIeFwState *s, int err)
{
    if (!s->draining) {
        s->draining = true;
        pciefw_read_input(s, 4);
        s->draining = false;
    }
    if (s->fd >= 0) {
        pciefw_disconnect(s, "send failed: %s", strerror(err));
    }
}

/* Write what the socket takes without blocking. */
static bool pciefw_flush(PCIeFwState *s)
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
            pciefw_send_failed(s, errno);
            return false;
        }
        pf_buf_consume(&s->out, n);
    }
    return s->fd >= 0;
}

/*
 * A protocol error (spec 7): tell the endpoint why, best effort, then drop
 * the connection.
 */
static void G_GNUC_PRINTF(3, 4)
pciefw_protocol_error(PCIeFwState *s, Pciefw__ErrorCode code,
                      const char *fmt, ...)
{
    g_autofree char *why = NULL;
    va_list ap;
    size_t mark;

    va_start(ap, fmt);
    why = g_strdup_vprintf(fmt, ap);
    va_end(ap);

    if (s->fd >= 0) {
        mark = pciefw_mark(s);
        if (pciefw_queued(s, mark, pf_put_error(&s->out, code, why), "error")) {
            pciefw_flush(s);
        }
    }
    pciefw_disconnect(s, "protocol error: %s", why);
}

/*
 * Serve the socket until @done says so, within the completion timeout:
 * while waiting, everything the endpoint sends is handled in order, and
 * queued output keeps draining (spec: a side that cannot write keeps
 * reading).
 */
static bool pciefw_pump(PCIeFwState *s, bool (*done)(PCIeFwState *),
                        const char *what)
{
    int64_t deadline = qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + s->timeout_ms;

    pciefw_flush(s);
    while (s->fd >= 0 && !done(s)) {
        int64_t left = deadline - qemu_clock_get_ms(QEMU_CLOCK_REALTIME);
        struct pollfd pfd = {
            .fd = s->fd,
            .events = POLLIN | (pf_buf_empty(&s->out) ? 0 : POLLOUT),
        };
        int r;

        if (left <= 0) {
            pciefw_disconnect(s, "no %s within %u ms (completion timeout)",
                              what, s->timeout_ms);
            return false;
        }
        r = poll(&pfd, 1, MIN(left, INT_MAX));
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            pciefw_disconnect(s, "poll failed: %s", strerror(errno));
            return false;
        }
        if (pfd.revents & POLLOUT) {
            pciefw_flush(s);
        }
        if (s->fd >= 0 && (pfd.revents & (POLLIN | POLLHUP | POLLERR))) {
            pciefw_read_input(s, 1);
        }
    }
    return s->fd >= 0 && done(s);
}

static bool pciefw_cpl_done(PCIeFwState *s)
{
    return s->cpl_done;
}

static bool pciefw_out_drained(PCIeFwState *s)
{
    return pf_buf_used(&s->out) < PCIEFW_TX_HIGH_WATER / 2;
}

/* Begin a non-posted request: pick its tag.  False when not connected. */
static bool pciefw_begin(PCIeFwState *s, uint32_t *tag, uint32_t size)
{
    if (s->state != PCIEFW_UP || s->waiting) {
        return false;
    }
    *tag = s->next_tag++;
    s->waiting = true;
    s->wait_tag = *tag;
    s->wait_size = size;
    s->cpl_done = false;
    return true;
}

/*
 * Wait for the completion of the request begun by pciefw_begin().
 * Returns its status (PCIEFW__STATUS__STATUS_SUCCESSFUL with the data in
 * s->cpl_data), or -1 if the connection was lost.
 */
static int pciefw_complete(PCIeFwState *s, const char *kind)
{
    bool ok = pciefw_pump(s, pciefw_cpl_done, "completion");

    s->waiting = false;
    pciefw_update_watch(s);
    /*
     * A completion that arrived before the endpoint hung up (a Goodbye in
     * the same read) still answers the request: messages are in order.
     */
    if (!ok && !pciefw_cpl_done(s)) {
        return -1;
    }
    if (s->cpl_status != PCIEFW__STATUS__STATUS_SUCCESSFUL) {
        trace_pciefw_request_failed(kind, s->wait_tag,
                                    pf_status_name(s->cpl_status));
    }
    return s->cpl_status;
}

/* A posted message was queued: send it, bounding the backlog. */
static void pciefw_posted(PCIeFwState *s)
{
    pciefw_flush(s);
    if (s->fd >= 0 && !s->waiting &&
        pf_buf_used(&s->out) > PCIEFW_TX_HIGH_WATER) {
        pciefw_pump(s, pciefw_out_drained, "progress on posted writes");
    }
    pciefw_update_watch(s);
}

/* ---------------------------------------------------------------------- */
/* Messages from the endpoint                                              */

static void pciefw_handle_dma_read(PCIeFwState *s, const Pciefw__DmaRead *r)
{
    PCIDevice *pdev = PCI_DEVICE(s);
    g_autofree uint8_t *data = NULL;
    int status = PCIEFW__STATUS__STATUS_SUCCESSFUL;
    size_t mark;

    if (!(pci_get_word(pdev->config + PCI_COMMAND) & PCI_COMMAND_MASTER)) {
        status = PCIEFW__STATUS__STATUS_COMPLETER_ABORT;
    } else {
        data = g_malloc(r->size);
        if (pci_dma_read(pdev, r->address, data, r->size) != MEMTX_OK) {
            status = PCIEFW__STATUS__STATUS_COMPLETER_ABORT;
        }
    }
    trace_pciefw_dma_read(r->tag, r->address, r->size, status);
    mark = pciefw_mark(s);
    pciefw_queued(s, mark,
                  pf_put_completion(&s->out, r->tag, status,
                                    status ? NULL : data,
                                    status ? 0 : r->size),
                  "completion");
}

static void pciefw_handle_dma_write(PCIeFwState *s, const Pciefw__DmaWrite *w)
{
    PCIDevice *pdev = PCI_DEVICE(s);
    bool bme = pci_get_word(pdev->config + PCI_COMMAND) & PCI_COMMAND_MASTER;

    trace_pciefw_dma_write(w->address, w->data.len, !bme);
    if (bme) {
        pci_dma_write(pdev, w->address, w->data.data, w->data.len);
    }
}

static void pciefw_handle_msi(PCIeFwState *s, uint32_t vector)
{
    PCIDevice *pdev = PCI_DEVICE(s);
    bool enabled = s->desc.msi_vectors && msi_enabled(pdev);
    unsigned int allocated;

    trace_pciefw_msi(vector, enabled);
    if (!enabled || vector >= s->desc.msi_vectors) {
        return;
    }
    /* Fewer vectors enabled than requested: they alias (PCI 3.0 6.8.3.4). */
    allocated = msi_nr_vectors_allocated(pdev);
    msi_notify(pdev, vector & (allocated - 1));
}

static void pciefw_handle_msix(PCIeFwState *s, uint32_t vector)
{
    PCIDevice *pdev = PCI_DEVICE(s);
    bool enabled = s->desc.msix_vectors && msix_enabled(pdev);

    trace_pciefw_msix(vector, enabled);
    if (enabled && vector < s->desc.msix_vectors) {
        msix_notify(pdev, vector);
    }
}

static void pciefw_handle_completion(PCIeFwState *s,
                                     const Pciefw__Completion *c)
{
    if (!s->waiting || s->cpl_done || c->tag != s->wait_tag) {
        pciefw_protocol_error(s, PCIEFW__ERROR_CODE__ERROR_UNKNOWN_TAG,
                              "completion with tag %u, which no request is "
                              "waiting for", c->tag);
        return;
    }
    if (c->status == PCIEFW__STATUS__STATUS_SUCCESSFUL && s->wait_size &&
        c->data.len != s->wait_size) {
        pciefw_protocol_error(s, PCIEFW__ERROR_CODE__ERROR_PROTOCOL,
                              "completion for tag %u carries %zu bytes, %u "
                              "expected", c->tag, c->data.len, s->wait_size);
        return;
    }
    s->cpl_status = c->status;
    memset(s->cpl_data, 0, sizeof(s->cpl_data));
    if (c->status == PCIEFW__STATUS__STATUS_SUCCESSFUL && s->wait_size) {
        memcpy(s->cpl_data, c->data.data, s->wait_size);
    }
    s->cpl_done = true;
}

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
    n->config_ext = s->session.features & PCIEFW_FEATURE_CONFIG_EXT;
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

static void pciefw_handle_hello(PCIeFwState *s, const PfMessage *m)
{
    char err[256];
    int r;

    r = pf_hello_negotiate(&s->hello, m, &s->session, err, sizeof(err));
    if (r != PF_OK) {
        if (r == PF_ERR_VERSION) {
            pciefw_protocol_error(s, PCIEFW__ERROR_CODE__ERROR_VERSION,
                                  "handshake failed: %s; use an endpoint "
                                  "that speaks protocol %u.x", err,
                                  PCIEFW_VERSION_MAJOR);
        } else {
            pciefw_protocol_error(s, PCIEFW__ERROR_CODE__ERROR_PROTOCOL,
                                  "handshake failed: %s", err);
        }
        return;
    }
    trace_pciefw_connected(s->session.peer_name, s->session.version_major,
                           s->session.version_minor, s->session.max_payload,
                           s->session.features);
    pf_frame_decoder_set_max(&s->dec, PCIEFW_MAX_FRAME(s->session.max_payload));
    s->state = PCIEFW_WAIT_DESC;
}

static const char *pciefw_enum_name(const ProtobufCEnumDescriptor *desc,
                                    int value)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(desc,
                                                                      value);

    return v ? v->name : "unknown";
}

static void pciefw_handle_message(PCIeFwState *s, const PfMessage *m)
{
    switch (s->state) {
    case PCIEFW_WAIT_HELLO:
        /* An endpoint that refuses us may say why instead of hello. */
        if (m->body_case == PCIEFW__MESSAGE__BODY_GOODBYE ||
            m->body_case == PCIEFW__MESSAGE__BODY_ERROR) {
            break;
        }
        pciefw_handle_hello(s, m);
        return;
    case PCIEFW_WAIT_DESC:
        if (m->body_case != PCIEFW__MESSAGE__BODY_DEVICE_DESCRIPTION) {
            break;
        }
        pciefw_save_desc(s, m->device_description);
        s->state = PCIEFW_UP;
        return;
    case PCIEFW_UP:
        switch (m->body_case) {
        case PCIEFW__MESSAGE__BODY_COMPLETION:
            pciefw_handle_completion(s, m->completion);
            return;
        case PCIEFW__MESSAGE__BODY_DMA_READ:
            pciefw_handle_dma_read(s, m->dma_read);
            return;
        case PCIEFW__MESSAGE__BODY_DMA_WRITE:
            pciefw_handle_dma_write(s, m->dma_write);
            return;
        case PCIEFW__MESSAGE__BODY_INTX:
            trace_pciefw_intx(m->intx->asserted);
            if (s->desc.intx_pin) {
                pci_set_irq(PCI_DEVICE(s), m->intx->asserted);
            }
            return;
        case PCIEFW__MESSAGE__BODY_MSI:
            pciefw_handle_msi(s, m->msi->vector);
            return;
        case PCIEFW__MESSAGE__BODY_MSIX:
            pciefw_handle_msix(s, m->msix->vector);
            return;
        default:
            break;
        }
        break;
    case PCIEFW_DOWN:
        return;
    }

    /* Allowed in any state. */
    if (m->body_case == PCIEFW__MESSAGE__BODY_GOODBYE) {
        pciefw_disconnect(s, "endpoint said goodbye (%s: %s)",
                          pciefw_enum_name(&pciefw__goodbye_reason__descriptor,
                                           m->goodbye->reason),
                          m->goodbye->text && *m->goodbye->text ?
                          m->goodbye->text : "no reason given");
    } else if (m->body_case == PCIEFW__MESSAGE__BODY_ERROR) {
        pciefw_disconnect(s, "endpoint reported an error (%s: %s)",
                          pciefw_enum_name(&pciefw__error_code__descriptor,
                                           m->error->code),
                          m->error->text && *m->error->text ?
                          m->error->text : "no text");
    } else {
        pciefw_protocol_error(s, PCIEFW__ERROR_CODE__ERROR_UNEXPECTED,
                              "unexpected %s message",
                              pf_msg_kind_name(m->body_case));
    }
}

static void pciefw_handle_frame(PCIeFwState *s, const uint8_t *frame,
                                size_t len)
{
    uint32_t max_payload = s->state >= PCIEFW_WAIT_DESC ?
                           s->session.max_payload : PCIEFW_HANDSHAKE_FRAME;
    PfMessage *m;
    char err[256];
    int r;

    if (s->trace) {
        pf_trace_write(s->trace, pf_now_ns(), PF_DIR_TO_HOST, frame, len);
    }
    r = pf_codec_decode(&s->codec, frame, len, &m, err, sizeof(err));
    if (r == PF_OK) {
        r = pf_msg_validate(m, max_payload, err, sizeof(err));
    }
    if (r != PF_OK) {
        pciefw_protocol_error(s, r == PF_ERR_DECODE ?
                              PCIEFW__ERROR_CODE__ERROR_BAD_FRAME :
                              PCIEFW__ERROR_CODE__ERROR_PROTOCOL, "%s", err);
        return;
    }
    trace_pciefw_recv(pf_msg_kind_name(m->body_case), len);
    pciefw_handle_message(s, m);
}

/* Read what is available (up to @max_reads chunks) and handle it in order. */
static void pciefw_read_input(PCIeFwState *s, int max_reads)
{
    while (max_reads-- > 0 && s->fd >= 0) {
        ssize_t n = recv(s->fd, s->rxbuf, PCIEFW_RX_CHUNK, 0);
        size_t off = 0;

        if (n < 0) {
            if (errno == EINTR) {
                max_reads++;
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                pciefw_disconnect(s, "receive failed: %s", strerror(errno));
            }
            return;
        }
        if (n == 0) {
            pciefw_disconnect(s, "connection closed by the endpoint%s",
                              pf_frame_decoder_finish(&s->dec) == PF_EOF ?
                              "" : " in the middle of a message");
            return;
        }
        while (off < (size_t)n && s->fd >= 0) {
            const uint8_t *frame;
            size_t used, len;
            int r = pf_frame_decoder_push(&s->dec, s->rxbuf + off, n - off,
                                          &used, &frame, &len);

            off += used;
            if (r == PF_OK) {
                pciefw_handle_frame(s, frame, len);
            } else if (r != PF_AGAIN) {
                pciefw_protocol_error(s, PCIEFW__ERROR_CODE__ERROR_BAD_FRAME,
                                      "bad frame: %s", pf_strerror(r));
                return;
            }
        }
    }
}

/* ---------------------------------------------------------------------- */
/* Idle service from the main loop                                         */

static void pciefw_fd_read(void *opaque)
{
    PCIeFwState *s = opaque;

    pciefw_read_input(s, PCIEFW_RX_BATCH);
    pciefw_flush(s);
    pciefw_update_watch(s);
    /*
     * Capture is buffered; hand it to the kernel once per batch, off the
     * vCPU path, so a killed QEMU loses at most the current batch.
     */
    if (s->trace) {
        pf_trace_flush(s->trace);
    }
}

static void pciefw_fd_write(void *opaque)
{
    PCIeFwState *s = opaque;

    pciefw_flush(s);
    pciefw_update_watch(s);
}

static void pciefw_update_watch(PCIeFwState *s)
{
    bool want_write;

    if (s->fd < 0) {
        return;
    }
    want_write = !pf_buf_empty(&s->out);
    if (want_write != s->write_watched) {
        s->write_watched = want_write;
        qemu_set_fd_handler(s->fd, pciefw_fd_read,
                            want_write ? pciefw_fd_write : NULL, s);
    }
}

/* ---------------------------------------------------------------------- */
/* Connecting                                                              */

static bool pciefw_up(PCIeFwState *s)
{
    return s->state == PCIEFW_UP;
}

/*
 * Connect, exchange Hellos and read the DeviceDescription into
 * s->new_desc, all within the completion timeout.
 */
static bool pciefw_connect(PCIeFwState *s, Error **errp)
{
    g_autoptr(SocketAddress) addr = g_new0(SocketAddress, 1);
    Error *local_err = NULL;
    size_t mark;
    int fd;

    if (s->path) {
        addr->type = SOCKET_ADDRESS_TYPE_UNIX;
        addr->u.q_unix.path = g_strdup(s->path);
    } else {
        addr->type = SOCKET_ADDRESS_TYPE_INET;
        addr->u.inet.host = g_strdup(s->raddr);
        addr->u.inet.port = g_strdup_printf("%u", s->rport);
    }
    fd = socket_connect(addr, &local_err);
    if (fd < 0) {
        error_setg(errp, "cannot connect to the pciefw endpoint at %s: %s; "
                   "start it first (pciefw-endpoint --listen %s ...)",
                   s->peer, error_get_pretty(local_err), s->peer);
        error_free(local_err);
        return false;
    }
    if (!qemu_set_blocking(fd, false, errp)) {
        close(fd);
        return false;
    }
    if (!s->path) {
        socket_set_nodelay(fd);
    }

    s->fd = fd;
    s->write_watched = false;
    s->state = PCIEFW_WAIT_HELLO;
    s->connecting = true;
    g_clear_pointer(&s->connect_error, g_free);
    pf_buf_clear(&s->out);
    pf_frame_decoder_init(&s->dec, PCIEFW_HANDSHAKE_FRAME);

    mark = pciefw_mark(s);
    if (pciefw_queued(s, mark, pf_put_hello(&s->out, &s->hello), "hello")) {
        pciefw_pump(s, pciefw_up, "hello and device description");
    }
    s->connecting = false;

    if (s->state != PCIEFW_UP) {
        error_setg(errp, "pciefw endpoint at %s: %s", s->peer,
                   s->connect_error ?: "handshake failed");
        pciefw_drop(s);
        return false;
    }
    qemu_set_fd_handler(s->fd, pciefw_fd_read, NULL, s);
    pciefw_update_watch(s);
    return true;
}

static void pciefw_send_reset(PCIeFwState *s, Pciefw__ResetKind kind)
{
    const char *name = kind == PCIEFW__RESET_KIND__RESET_FUNCTION ?
                       "function" : "system";
    uint32_t tag;
    size_t mark;

    trace_pciefw_reset(name);
    if (!pciefw_begin(s, &tag, 0)) {
        return;
    }
    mark = pciefw_mark(s);
    if (pciefw_queued(s, mark, pf_put_reset(&s->out, tag, kind), "reset")) {
        pciefw_complete(s, "reset");
    }
}

static void pciefw_reconnect(void *opaque)
{
    PCIeFwState *s = opaque;
    Error *local_err = NULL;

    if (s->state != PCIEFW_DOWN) {
        return;
    }
    trace_pciefw_reconnect_attempt();
    if (!pciefw_connect(s, &local_err)) {
        trace_pciefw_disconnect(error_get_pretty(local_err));
        error_free(local_err);
        pciefw_schedule_reconnect(s);
        return;
    }
    if (memcmp(&s->new_desc, &s->desc, sizeof(s->desc))) {
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
        pciefw_drop(s);
        pciefw_schedule_reconnect(s);
        return;
    }
    pciefw_send_reset(s, PCIEFW__RESET_KIND__RESET_FUNCTION);
    if (s->state == PCIEFW_UP) {
        s->error_reported = false;
        s->mismatch_reported = false;
        trace_pciefw_reconnected();
        info_report("pciefw: reconnected to endpoint %s", s->peer);
    }
}

static void pciefw_schedule_reconnect(PCIeFwState *s)
{
    if (s->reconnect_s && s->reconnect_timer) {
        timer_mod(s->reconnect_timer,
                  qemu_clock_get_ms(QEMU_CLOCK_REALTIME) +
                  (int64_t)s->reconnect_s * 1000);
    }
}

/* ---------------------------------------------------------------------- */
/* BAR accesses                                                            */

static uint64_t pciefw_bar_read(void *opaque, hwaddr addr, unsigned size)
{
    PCIeFwBar *bar = opaque;
    PCIeFwState *s = bar->s;
    bool io = s->desc.bars[bar->index].kind == PCIEFW__BAR_KIND__BAR_IO;
    uint64_t val = all_ones(size);
    uint32_t tag;
    size_t mark;
    int r;

    if (pciefw_begin(s, &tag, size)) {
        mark = pciefw_mark(s);
        r = io ? pf_put_io_read(&s->out, tag, bar->index, addr, size)
               : pf_put_mem_read(&s->out, tag, bar->index, addr, size);
        if (pciefw_queued(s, mark, r, io ? "io_read" : "mem_read") &&
            pciefw_complete(s, io ? "io_read" : "mem_read") ==
            PCIEFW__STATUS__STATUS_SUCCESSFUL) {
            val = pf_le_load(s->cpl_data, size);
        }
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
    uint32_t tag;
    size_t mark;

    pf_le_store(data, size, val);
    if (s->desc.bars[bar->index].kind == PCIEFW__BAR_KIND__BAR_IO) {
        /* I/O writes are non-posted. */
        trace_pciefw_io_write(bar->index, addr, size, val);
        if (!pciefw_begin(s, &tag, 0)) {
            return;
        }
        mark = pciefw_mark(s);
        if (pciefw_queued(s, mark, pf_put_io_write(&s->out, tag, bar->index,
                                                   addr, data, size),
                          "io_write")) {
            pciefw_complete(s, "io_write");
        }
        return;
    }

    trace_pciefw_mem_write(bar->index, addr, size, val);
    if (s->state != PCIEFW_UP) {
        return;
    }
    mark = pciefw_mark(s);
    if (pciefw_queued(s, mark, pf_put_mem_write(&s->out, bar->index, addr,
                                                data, size), "mem_write")) {
        pciefw_posted(s);
    }
}

static const MemoryRegionOps pciefw_mem_ops = {
    .read = pciefw_bar_read,
    .write = pciefw_bar_write,
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

static const MemoryRegionOps pciefw_io_ops = {
    .read = pciefw_bar_read,
    .write = pciefw_bar_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = {
        .min_access_size = 1,
        .max_access_size = 4,
    },
    .impl = {
        .min_access_size = 1,
        .max_access_size = 4,
    },
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
 * (spec 3.5).  Returns the final status, or -1 without a connection.
 */
static int pciefw_config_access(PCIeFwState *s, bool write, uint32_t addr,
                                uint32_t val, int len)
{
    const char *kind = write ? "config_write" : "config_read";
    int64_t deadline = qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + s->timeout_ms;
    uint8_t data[4];
    uint32_t tag;
    size_t mark;
    int status, r;

    for (;;) {
        if (!pciefw_begin(s, &tag, write ? 0 : len)) {
            return -1;
        }
        mark = pciefw_mark(s);
        if (write) {
            pf_le_store(data, len, val);
            r = pf_put_config_write(&s->out, tag, addr, data, len);
        } else {
            r = pf_put_config_read(&s->out, tag, addr, len);
        }
        if (!pciefw_queued(s, mark, r, kind)) {
            return -1;
        }
        status = pciefw_complete(s, kind);
        if (status != PCIEFW__STATUS__STATUS_CONFIG_RETRY ||
            qemu_clock_get_ms(QEMU_CLOCK_REALTIME) >= deadline) {
            return status;
        }
        g_usleep(1000);
    }
}

static uint32_t pciefw_config_read(PCIDevice *pdev, uint32_t addr, int len)
{
    PCIeFwState *s = PCIEFW(pdev);
    uint32_t val = all_ones(len);

    if (!pciefw_config_forwarded(s, addr)) {
        return pci_default_read_config(pdev, addr, len);
    }
    if (pciefw_config_access(s, false, addr, 0, len) ==
        PCIEFW__STATUS__STATUS_SUCCESSFUL) {
        val = pf_le_load(s->cpl_data, len);
    }
    trace_pciefw_config_read(addr, len, val);
    return val;
}

static void pciefw_config_write(PCIDevice *pdev, uint32_t addr, uint32_t val,
                                int len)
{
    PCIeFwState *s = PCIEFW(pdev);

    if (!pciefw_config_forwarded(s, addr)) {
        pci_default_write_config(pdev, addr, val, len);
        if (pci_is_express(pdev)) {
            pcie_cap_flr_write_config(pdev, addr, val, len);
        }
        return;
    }
    trace_pciefw_config_write(addr, len, val);
    pciefw_config_access(s, true, addr, val, len);
}

/* ---------------------------------------------------------------------- */
/* Realize, reset, unrealize                                               */

static bool pciefw_init_bars(PCIeFwState *s, Error **errp)
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

    if (s->desc.msix_vectors) {
        const PCIeFwDesc *d = &s->desc;

        if (d->bars[d->msix_table_bar].kind == PCIEFW__BAR_KIND__BAR_IO ||
            d->bars[d->msix_pba_bar].kind == PCIEFW__BAR_KIND__BAR_IO) {
            error_setg(errp, "the MSI-X table and PBA must be in memory "
                       "BARs, not I/O BARs");
            return false;
        }
        if (d->msix_table_offset > UINT32_MAX ||
            d->msix_pba_offset > UINT32_MAX) {
            error_setg(errp, "the MSI-X table or PBA offset is beyond 4 GiB");
            return false;
        }
    }
    return true;
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
        if (msix_init(pdev, d->msix_vectors,
                      &s->bars[d->msix_table_bar].container, d->msix_table_bar,
                      d->msix_table_offset,
                      &s->bars[d->msix_pba_bar].container, d->msix_pba_bar,
                      d->msix_pba_offset, PCIEFW_CAP_MSIX, &local_err)) {
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
    pciefw_drop(s);
    if (s->reconnect_timer) {
        timer_free(s->reconnect_timer);
        s->reconnect_timer = NULL;
    }
    if (s->trace) {
        pf_trace_close(s->trace);
        s->trace = NULL;
    }
    pf_codec_free(&s->codec);
    pf_buf_free(&s->out);
    g_clear_pointer(&s->rxbuf, g_free);
    g_clear_pointer(&s->connect_error, g_free);
    g_clear_pointer(&s->peer, g_free);
}

static void pciefw_realize(PCIDevice *pdev, Error **errp)
{
    ERRP_GUARD();
    PCIeFwState *s = PCIEFW(pdev);
    const PCIeFwDesc *d = &s->desc;
    uint8_t *conf = pdev->config;

    s->fd = -1;
    if (s->path && (s->raddr || s->rport)) {
        error_setg(errp, "pciefw: give either path (UNIX socket) or "
                   "raddr+rport (TCP), not both");
        return;
    }
    if (!s->path && !(s->raddr && s->rport)) {
        error_setg(errp, "pciefw: the endpoint's socket is missing: set "
                   "path=SOCKET for a UNIX socket or raddr=HOST,rport=PORT "
                   "for TCP");
        return;
    }
    if (s->path && !*s->path) {
        error_setg(errp, "pciefw: path must not be empty");
        return;
    }
    if (!s->timeout_ms) {
        error_setg(errp, "pciefw: timeout must be at least 1 ms");
        return;
    }
    s->peer = s->path ? g_strdup_printf("unix:%s", s->path)
                      : g_strdup_printf("tcp:%s:%u", s->raddr, s->rport);

    pf_codec_init(&s->codec);
    pf_buf_init(&s->out);
    s->rxbuf = g_malloc(PCIEFW_RX_CHUNK);
    pf_hello_defaults(&s->hello, "qemu " QEMU_VERSION);
    s->next_tag = 1;

    if (s->trace_path) {
        char err[256];

        s->trace = pf_trace_create(s->trace_path, "qemu " QEMU_VERSION,
                                   err, sizeof(err));
        if (!s->trace) {
            error_setg(errp, "pciefw: cannot create trace file '%s': %s",
                       s->trace_path, err);
            goto fail;
        }
        /* Rotated pieces: FILE.1 .. FILE.4 (docs/protocol.md section 6). */
        pf_trace_set_limit(s->trace, s->trace_limit, 4);
    }

    if (!pciefw_connect(s, errp)) {
        goto fail;
    }
    s->desc = s->new_desc;
    s->config_ext = pci_is_express(pdev) && d->config_ext;

    pci_config_set_vendor_id(conf, d->vendor_id);
    pci_config_set_device_id(conf, d->device_id);
    pci_set_word(conf + PCI_SUBSYSTEM_VENDOR_ID, d->subsystem_vendor_id);
    pci_set_word(conf + PCI_SUBSYSTEM_ID, d->subsystem_id);
    pci_config_set_class(conf, d->class_code >> 8);
    pci_config_set_prog_interface(conf, d->class_code & 0xff);
    pci_config_set_revision(conf, d->revision);
    pci_config_set_interrupt_pin(conf, d->intx_pin);

    if (!pciefw_init_bars(s, errp) || !pciefw_init_caps(s, errp)) {
        error_prepend(errp, "pciefw: endpoint %s describes a device QEMU "
                      "cannot present: ", s->peer);
        goto fail_caps;
    }

    s->reconnect_timer = timer_new_ms(QEMU_CLOCK_REALTIME, pciefw_reconnect, s);
    return;

fail_caps:
    if (s->desc.msix_vectors && msix_present(pdev)) {
        msix_unuse_all_vectors(pdev);
        msix_uninit(pdev, &s->bars[d->msix_table_bar].container,
                    &s->bars[d->msix_pba_bar].container);
    }
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
    const PCIeFwDesc *d = &s->desc;

    if (s->state == PCIEFW_UP) {
        /* Best effort: the endpoint learns it was unplugged. */
        size_t mark = pciefw_mark(s);
        int r = pf_put_goodbye(&s->out,
                               PCIEFW__GOODBYE_REASON__GOODBYE_UNPLUG,
                               "device removed");

        if (pciefw_queued(s, mark, r, "goodbye")) {
            pciefw_flush(s);
        }
    }
    if (d->msix_vectors) {
        msix_unuse_all_vectors(pdev);
        msix_uninit(pdev, &s->bars[d->msix_table_bar].container,
                    &s->bars[d->msix_pba_bar].container);
    }
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
    DEFINE_PROP_UINT32("timeout", PCIeFwState, timeout_ms,
                       PCIEFW_DEFAULT_TIMEOUT_MS),
    DEFINE_PROP_UINT32("reconnect", PCIeFwState, reconnect_s, 0),
    DEFINE_PROP_STRING("trace", PCIeFwState, trace_path),
    DEFINE_PROP_SIZE("trace-limit", PCIeFwState, trace_limit, 0),
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

    device_class_set_props(dc, pciefw_properties);
    object_class_property_set_description(klass, "raddr",
        "TCP host of the endpoint (with rport)");
    object_class_property_set_description(klass, "rport",
        "TCP port of the endpoint (with raddr)");
    object_class_property_set_description(klass, "path",
        "UNIX socket of the endpoint (instead of raddr/rport)");
    object_class_property_set_description(klass, "timeout",
        "completion timeout in milliseconds; the endpoint is considered "
        "dead when a request is not answered in time");
    object_class_property_set_description(klass, "reconnect",
        "seconds between reconnection attempts after the endpoint is "
        "lost (0: stay disconnected)");
    object_class_property_set_description(klass, "trace",
        "file to record every message of the session in (pcapng)");
    object_class_property_set_description(klass, "trace-limit",
        "rotate the capture file at this size, keeping FILE.1 to FILE.4 "
        "(0: unbounded)");
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
