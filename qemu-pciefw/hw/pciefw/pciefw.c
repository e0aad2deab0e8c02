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
#include <netdb.h>
#include <poll.h>
#include <sys/un.h>
#include "qemu/cutils.h"
#include "qemu/range.h"
#include "qemu/error-report.h"
#include "qemu/log.h"
#include "qemu/main-loop.h"
#include "qemu/rcu.h"
#include "qemu/module.h"
#include "qemu/sockets.h"
#include "qemu/timer.h"
#include "qapi/error.h"
#include "qapi/qapi-types-sockets.h"
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
#include "pciefw-stream.h"
#include "pciefw-memmap.h"
#include "pciefw-msix.h"

#include "protocol/pciefw.h"
#include "protocol/buf.h"
#include "protocol/codec.h"
#include "protocol/description.h"
#include "protocol/frame.h"
#include "protocol/handshake.h"
#include "protocol/msg.h"
#include "protocol/ring.h"
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
/* A forwarded access holds the BQL while it waits: bound that stall. */
#define PCIEFW_MAX_TIMEOUT_MS       60000
#define PCIEFW_RX_CHUNK             (64 * 1024)
/* Reads per idle callback before yielding back to the main loop. */
#define PCIEFW_RX_BATCH             16
/* Posted writes queued beyond this wait for the socket to drain. */
#define PCIEFW_TX_HIGH_WATER        (1024 * 1024)
/*
 * Output an endpoint may leave unread (docs/protocol.md 5.4): beyond it
 * the connection fails with ERROR_LIMIT, so a peer that sends DmaReads and
 * never reads their completions cannot grow QEMU's memory.
 */
#define PCIEFW_TX_LIMIT             (32 * 1024 * 1024)

/*
 * A connection goes DOWN -> CONNECTING -> WAIT_HELLO -> WAIT_DESC -> UP;
 * with tls-creds, TLS_HANDSHAKE comes before WAIT_HELLO (our Hello waits
 * in the output queue).  Reconnecting to a known device adds RESETTING
 * (the function-level reset of a returning endpoint) before UP.  Only UP
 * serves the guest.
 */
/*
 * Faults of the endpoint that do not end the session (it keeps working,
 * the message is ignored): each kind is reported once per connection.
 */
typedef enum PCIeFwFault {
    PCIEFW_FAULT_VECTOR = 1 << 0,       /* interrupt vector out of range */
    PCIEFW_FAULT_INTX = 1 << 1,         /* INTx from a function without a pin */
    PCIEFW_FAULT_DMA = 1 << 2,          /* DMA outside memory and devices */
} PCIeFwFault;

typedef enum PCIeFwLinkState {
    PCIEFW_DOWN,
    PCIEFW_CONNECTING,
    PCIEFW_TLS_HANDSHAKE,
    PCIEFW_WAIT_HELLO,
    PCIEFW_WAIT_DESC,
    PCIEFW_WAIT_RINGS,          /* RingSetup sent, RingReady due (spec 11) */
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
    uint32_t timeout_ms;
    uint32_t reconnect_s;
    char *trace_path;
    uint64_t trace_limit;
    char *tls_creds;
    char *tls_hostname;
    bool guest_memory;
    bool shm_rings;

    /* Connection */
    char *peer;                 /* "unix:PATH" or "tcp:HOST:PORT" */
    struct addrinfo *addrs;     /* resolved once, at realize */
    struct addrinfo *next_addr; /* the candidate being connected to */
    int fd;
    PCIeFwStream *stream;       /* over fd: the socket itself, or TLS */
    PCIeFwStream *ring_stream;  /* WAIT_RINGS: the rings proposed */
    QCryptoTLSCreds *creds;     /* tls-creds, resolved at realize */
    bool handshake_wants_write;
    QEMUBH *input_bh;           /* input the stream holds, poll() cannot see */
    QEMUBH *memmap_bh;          /* a changed map, sent from the main loop */
    PCIeFwLinkState state;
    bool realizing;             /* failures go to connect_error */
    bool reconnecting;          /* a background attempt is under way */
    bool closing;               /* unrealize: nothing more is applied */
    char *connect_error;
    bool error_reported;
    bool mismatch_reported;
    QEMUTimer *attempt_timer;   /* deadline of a background attempt */
    uint32_t reset_tag;         /* RESETTING: the Reset we wait for */
    struct pf_hello_params hello;
    struct pf_session session;
    struct pf_frame_decoder dec;
    struct pf_codec codec;
    struct pf_buf out;
    uint8_t *rxbuf;
    bool read_watched;
    bool write_watched;
    bool draining;
    bool dispatching;           /* handling the endpoint's messages */
    bool resetting;             /* DMA and interrupts refused */
    bool intx_level;
    unsigned int faults_reported;   /* PCIeFwFault bits, this connection */
    struct pf_trace_writer *trace;
    unsigned int sessions;      /* connections made, for trace records */
    QEMUTimer *reconnect_timer;

    /* The one outstanding non-posted request (accesses hold the BQL). */
    uint32_t next_tag;
    bool waiting;
    uint32_t wait_tag;
    uint32_t wait_size;
    bool cpl_done;
    int cpl_status;
    uint8_t cpl_data[8];

    /* Guest memory shared with the endpoint (docs/protocol.md 10) */
    PCIeFwMemMap memmap;        /* listening only if we offer sharing */
    bool memmap_dirty;          /* the endpoint lacks the current map */
    bool bm_reported;           /* the Bus Master Enable it was told */

    /* The function */
    bool have_desc;             /* desc holds the realized device */
    PCIeFwDesc desc;
    PCIeFwDesc new_desc;
    PCIeFwBar bars[PCIEFW_NUM_BARS];
    PCIeFwMsix msix;            /* its table and PBA in those BARs */
    bool config_ext;
};

static void pciefw_read_input(PCIeFwState *s, int max_reads);
static void pciefw_update_watch(PCIeFwState *s);
static void pciefw_socket_read(void *opaque);
static void pciefw_bell_read(void *opaque);
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
/* Connection loss                                                         */

/*
 * Close the socket and forget the session's stream state.  Whatever the
 * endpoint had asserted goes with it: a dropped connection never leaves
 * INTx asserted.
 */
static void pciefw_drop(PCIeFwState *s)
{
    if (s->stream && s->stream->wake_fd >= 0) {
        qemu_set_fd_handler(s->stream->wake_fd, NULL, NULL, NULL);
    }
    g_clear_pointer(&s->stream, pciefw_stream_free);
    g_clear_pointer(&s->ring_stream, pciefw_stream_free);
    if (s->fd >= 0) {
        qemu_set_fd_handler(s->fd, NULL, NULL, NULL);
        close(s->fd);
        s->fd = -1;
    }
    if (s->attempt_timer) {
        timer_del(s->attempt_timer);
    }
    s->read_watched = false;
    s->write_watched = false;
    s->state = PCIEFW_DOWN;
    s->waiting = false;
    pf_buf_clear(&s->out);
    pf_frame_decoder_free(&s->dec);
    if (s->desc.intx_pin) {
        pciefw_set_intx(s, false);
    }
    if (s->trace) {
        pf_trace_flush(s->trace);
    }
}

/*
 * The connection failed.  While realizing, the reason becomes realize's
 * error; during a background reconnection attempt it is only traced (the
 * loss was reported already) and the next attempt is scheduled; otherwise
 * the loss is reported once.
 */
static void G_GNUC_PRINTF(2, 3)
pciefw_disconnect(PCIeFwState *s, const char *fmt, ...)
{
    g_autofree char *why = NULL;
    va_list ap;

    va_start(ap, fmt);
    why = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    trace_pciefw_disconnect(why);

    pciefw_drop(s);
    if (s->realizing) {
        g_free(s->connect_error);
        s->connect_error = g_steal_pointer(&why);
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
 * so read what is left before reporting the failed send -- except while
 * unplugging, when nothing the endpoint sends may take effect any more.
 */
static void pciefw_send_failed(PCIeFwState *s, int err)
{
    if (!s->draining && !s->closing && !s->dispatching) {
        s->draining = true;
        pciefw_read_input(s, 4);
        s->draining = false;
    }
    if (s->fd >= 0) {
        pciefw_disconnect(s, "send failed: %s",
                          pciefw_stream_strerror(s->stream, err));
    }
}

/* The stream carries messages: connected and, with TLS, established. */
static bool pciefw_stream_up(PCIeFwState *s)
{
    return s->fd >= 0 && s->state > PCIEFW_TLS_HANDSHAKE;
}

static void pciefw_send_memmap(PCIeFwState *s);

/* Write what the socket takes without blocking. */
static bool pciefw_flush(PCIeFwState *s)
{
    pciefw_send_memmap(s);
    while (pciefw_stream_up(s) && !pf_buf_empty(&s->out)) {
        ssize_t n = s->stream->ops->send(s->stream, pf_buf_peek(&s->out),
                                         pf_buf_used(&s->out));
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
        if (pf_buf_empty(&s->out)) {
            pciefw_send_memmap(s);
        }
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

    if (pciefw_stream_up(s)) {
        mark = pciefw_mark(s);
        if (pciefw_queued(s, mark, pf_put_error(&s->out, code, why), "error")) {
            s->draining = true;     /* the reason is all we still want */
            pciefw_flush(s);
            s->draining = false;
        }
    }
    pciefw_disconnect(s, "protocol error: %s", why);
}

static void pciefw_connected(PCIeFwState *s);
static void pciefw_connect_next(PCIeFwState *s);
static void pciefw_handshake_step(PCIeFwState *s);

/*
 * The socket is writable: a pending connect finished (or failed), the TLS
 * handshake can go on, or queued output can move.
 */
static void pciefw_writable(PCIeFwState *s)
{
    int err = 0;
    socklen_t len = sizeof(err);

    if (s->state == PCIEFW_TLS_HANDSHAKE) {
        pciefw_handshake_step(s);
        return;
    }
    if (s->state != PCIEFW_CONNECTING) {
        pciefw_flush(s);
        return;
    }
    if (getsockopt(s->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) {
        err = errno;
    }
    if (err) {
        g_free(s->connect_error);
        s->connect_error = g_strdup(strerror(err));
        s->next_addr = s->next_addr->ai_next;
        pciefw_connect_next(s);
        return;
    }
    pciefw_connected(s);
}

/* The socket is readable: the handshake goes on, or input is handled. */
static void pciefw_readable(PCIeFwState *s, int max_reads)
{
    if (s->state == PCIEFW_TLS_HANDSHAKE) {
        pciefw_handshake_step(s);
    } else {
        pciefw_read_input(s, max_reads);
    }
}

static bool pciefw_want_write(PCIeFwState *s)
{
    switch (s->state) {
    case PCIEFW_CONNECTING:
        return true;
    case PCIEFW_TLS_HANDSHAKE:
        return s->handshake_wants_write;
    default:
        /* A full ring asked the endpoint to kick us (spec 11.4). */
        return !pf_buf_empty(&s->out) && s->stream->wake_fd < 0;
    }
}

static bool pciefw_want_read(PCIeFwState *s)
{
    switch (s->state) {
    case PCIEFW_CONNECTING:
        return false;
    case PCIEFW_TLS_HANDSHAKE:
        return !s->handshake_wants_write;
    default:
        return true;
    }
}

/* Input the stream took from the socket already: poll() cannot show it. */
static bool pciefw_input_held(PCIeFwState *s)
{
    return pciefw_stream_up(s) && s->stream->ops->pending(s->stream);
}

/* The stream is the rings: readiness comes from our doorbell. */
static bool pciefw_stream_waits_on_bell(PCIeFwState *s)
{
    return pciefw_stream_up(s) && s->stream->wake_fd >= 0;
}

static void pciefw_socket_event(PCIeFwState *s)
{
    if (pciefw_stream_waits_on_bell(s)) {
        s->stream->ops->socket_event(s->stream);
    }
}

/*
 * One wait of pciefw_pump() over the rings (spec 11.4): spin for the
 * adaptive budget, then sleep on the doorbell and the socket (which shows
 * the endpoint's hang-up) for at most @left ms.  False if the connection
 * was lost.
 */
static bool pciefw_wait_bell(PCIeFwState *s, int64_t left)
{
    struct pollfd pfd[2] = {
        { .fd = s->stream->wake_fd, .events = POLLIN },
        { .fd = s->fd, .events = POLLIN },
    };
    int r;

    /* What handling the input queued (a DMA read's data) goes first. */
    if (!pciefw_flush(s) || !pciefw_stream_waits_on_bell(s)) {
        return s->fd >= 0;
    }
    if (s->stream->ops->spin(s->stream)) {
        return true;
    }
    r = poll(pfd, 2, MIN(left, INT_MAX));
    if (r < 0 && errno != EINTR) {
        pciefw_disconnect(s, "poll failed: %s", strerror(errno));
        return false;
    }
    if (r > 0 && pfd[0].revents) {
        pf_doorbell_drain(s->stream->wake_fd);
        pciefw_flush(s);        /* a kick may also mean room to write */
    }
    if (r > 0 && pfd[1].revents && s->fd >= 0) {
        pciefw_socket_event(s);
    }
    return s->fd >= 0;
}

/*
 * Serve the socket until @done says so or @deadline (QEMU_CLOCK_REALTIME,
 * ms) passes: while waiting, everything the endpoint sends is handled in
 * order, and queued output keeps draining (spec 5.3: a side that waits
 * keeps reading).  This holds the BQL: @deadline bounds the stall.
 */
static bool pciefw_pump(PCIeFwState *s, bool (*done)(PCIeFwState *),
                        const char *what, int64_t deadline)
{
    pciefw_flush(s);
    while (s->fd >= 0 && !done(s)) {
        int64_t left = deadline - qemu_clock_get_ms(QEMU_CLOCK_REALTIME);
        struct pollfd pfd = {
            .fd = s->fd,
            .events = (pciefw_want_read(s) ? POLLIN : 0) |
                      (pciefw_want_write(s) ? POLLOUT : 0),
        };
        int r;

        /*
         * The deadline first: an endpoint that keeps sending (the rings
         * always hold input then) must not keep the vCPU and the BQL past
         * it.  Each pass handles at most one chunk of input.
         */
        if (left <= 0) {
            pciefw_disconnect(s, "no %s within %u ms (completion timeout)",
                              what, s->timeout_ms);
            return false;
        }
        if (pciefw_input_held(s)) {
            pciefw_read_input(s, 1);
            continue;
        }
        if (pciefw_stream_waits_on_bell(s)) {
            if (!pciefw_wait_bell(s, left)) {
                return false;
            }
            continue;
        }
        r = poll(&pfd, 1, MIN(left, INT_MAX));
        if (r < 0) {
            if (errno == EINTR) {
                continue;
            }
            pciefw_disconnect(s, "poll failed: %s", strerror(errno));
            return false;
        }
        if (pfd.revents & (POLLOUT | POLLERR | POLLHUP) &&
            (pfd.events & POLLOUT)) {
            pciefw_writable(s);
        }
        if (s->fd >= 0 && pciefw_want_read(s) &&
            (pfd.revents & (POLLIN | POLLHUP | POLLERR))) {
            pciefw_readable(s, 1);
        }
    }
    /*
     * What came behind the awaited message (the rings do not kick a
     * spinning reader, TLS may hold decrypted bytes) is the main loop's.
     */
    if (pciefw_input_held(s)) {
        qemu_bh_schedule(s->input_bh);
    }
    return s->fd >= 0 && done(s);
}

static int64_t pciefw_deadline(PCIeFwState *s)
{
    return qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + s->timeout_ms;
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
 * Wait, until @deadline, for the completion of the request begun by
 * pciefw_begin().  Returns its status (PCIEFW__STATUS__STATUS_SUCCESSFUL
 * with the data in s->cpl_data), or -1 if the connection was lost.
 */
static int pciefw_complete(PCIeFwState *s, const char *kind, int64_t deadline)
{
    bool ok = pciefw_pump(s, pciefw_cpl_done, "completion", deadline);

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
        pciefw_pump(s, pciefw_out_drained, "progress on posted writes",
                    pciefw_deadline(s));
    }
    pciefw_update_watch(s);
}

/*
 * An access to the device while it handles the endpoint's messages (a
 * DMA or an MSI that lands on the device itself): answering it would
 * start a nested exchange on the same connection.  A real bus fails such
 * a transaction; so do we (reads return all ones, writes are dropped).
 */
static bool pciefw_reentered(PCIeFwState *s, const char *what, uint64_t addr)
{
    if (!s->dispatching) {
        return false;
    }
    trace_pciefw_reentry_blocked(what, addr);
    qemu_log_mask(LOG_GUEST_ERROR, "pciefw: %s at 0x%" PRIx64 " while the "
                  "device handles its endpoint's messages: refused\n",
                  what, addr);
    return true;
}

/* ---------------------------------------------------------------------- */
/* Guest memory shared with the endpoint (docs/protocol.md 10)             */

static bool pciefw_shm(PCIeFwState *s)
{
    return !s->closing && (s->state == PCIEFW_UP ||
                           s->state == PCIEFW_RESETTING) &&
           (s->session.features & PCIEFW_FEATURE_GUEST_MEMORY);
}

/*
 * Send the map when it changed.  Its fds go with the first bytes of its
 * frame, so it is queued only behind nothing (spec 10.2); until then the
 * endpoint uses the map it has, or messages.
 */
static void pciefw_send_memmap(PCIeFwState *s)
{
    int fds[PCIEFW_MAX_MEM_REGIONS];
    unsigned n_fds;
    size_t mark;

    /* Draining: an Error or Goodbye was the last thing to send. */
    if (!s->memmap_dirty || !pciefw_shm(s) || s->draining ||
        !pf_buf_empty(&s->out) || s->stream->n_fds) {
        return;
    }
    mark = pciefw_mark(s);
    if (!pciefw_queued(s, mark, pciefw_memmap_put(&s->memmap, &s->out, fds,
                                                  &n_fds), "memory_map")) {
        return;
    }
    if (!pciefw_stream_attach_fds(s->stream, fds, n_fds)) {
        pciefw_disconnect(s, "cannot pass guest memory to the endpoint: %s",
                          strerror(errno));
        return;
    }
    s->memmap_dirty = false;
}

/*
 * The listener saw the map change.  That happens inside a memory
 * transaction's commit, in the middle of whatever changed the map (a
 * guest config write moving a BAR or RAM): the map is sent from the main
 * loop, since a send that fails reads and applies the endpoint's last
 * messages, which must not happen there.
 */
static void pciefw_memmap_changed(void *opaque)
{
    PCIeFwState *s = opaque;

    s->memmap_dirty = true;
    if (pciefw_shm(s)) {
        qemu_bh_schedule(s->memmap_bh);
    }
}

static void pciefw_memmap_bh(void *opaque)
{
    PCIeFwState *s = opaque;

    if (pciefw_shm(s)) {
        pciefw_flush(s);
        pciefw_update_watch(s);
    }
}

/*
 * Tell the endpoint when Bus Master Enable changes (spec 10.3): after a
 * config write, and as cleared before a reset is forwarded.  Copies are
 * allowed only while it is on.
 */
static void pciefw_report_bus_master(PCIeFwState *s, bool force)
{
    PCIDevice *pdev = PCI_DEVICE(s);
    bool on = !s->resetting &&
              (pci_get_word(pdev->config + PCI_COMMAND) & PCI_COMMAND_MASTER);
    size_t mark;

    if (!pciefw_shm(s) || (!force && on == s->bm_reported)) {
        return;
    }
    mark = pciefw_mark(s);
    if (pciefw_queued(s, mark, pf_put_bus_master(&s->out, on),
                      "bus_master")) {
        s->bm_reported = on;
    }
}

/*
 * The endpoint turned bus mastering off with the Reset (spec 10.3): tell
 * it again if the function's Bus Master Enable is still on (a reconnection
 * resets the endpoint, not the guest's config space).
 */
static void pciefw_bus_master_after_reset(PCIeFwState *s)
{
    s->bm_reported = false;
    pciefw_report_bus_master(s, false);
    pciefw_flush(s);
}

/* The session starts: the endpoint has no map and thinks BME is off. */
static void pciefw_shm_begin(PCIeFwState *s)
{
    s->memmap_dirty = true;
    s->bm_reported = false;
    pciefw_report_bus_master(s, true);
    pciefw_flush(s);
}

/* ---------------------------------------------------------------------- */
/* Messages from the endpoint                                              */

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
static void pciefw_handle_dma_read(PCIeFwState *s, const Pciefw__DmaRead *r)
{
    const uint32_t tag = r->tag, size = r->size;
    const uint64_t address = r->address;
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
    mark = pciefw_mark(s);
    if (!pciefw_queued(s, mark,
                       pf_put_completion(&s->out, tag, status,
                                         status ? NULL : data,
                                         status ? 0 : size),
                       "completion")) {
        return;
    }
    if (pf_buf_used(&s->out) > PCIEFW_TX_HIGH_WATER) {
        pciefw_flush(s);
    }
    if (s->fd >= 0 && pf_buf_used(&s->out) > PCIEFW_TX_LIMIT) {
        pciefw_protocol_error(s, PCIEFW__ERROR_CODE__ERROR_LIMIT,
                              "the endpoint leaves more than %u MiB of "
                              "completions to its DMA reads unread",
                              PCIEFW_TX_LIMIT >> 20);
    }
}

static void pciefw_handle_dma_write(PCIeFwState *s, const Pciefw__DmaWrite *w)
{
    const char *refusal = pciefw_dma_refusal(s, w->address, w->data.len,
                                             true);

    trace_pciefw_dma_write(w->address, w->data.len, refusal != NULL);
    if (refusal) {
        trace_pciefw_dma_refused("write", w->address, w->data.len, refusal);
        return;
    }
    if (pci_dma_write(PCI_DEVICE(s), w->address, w->data.data,
                      w->data.len) != MEMTX_OK) {
        pciefw_fault(s, PCIEFW_FAULT_DMA, "DMA write to 0x%" PRIx64
                     " (%zu bytes) outside memory and devices", w->address,
                     w->data.len);
    }
}

/*
 * Interrupts: each message's fate -- delivered, left pending, or dropped
 * and why -- goes to the trace events and, as a note record after the
 * message, to the capture file (docs/protocol.md 3.2, 6).
 */
static void G_GNUC_PRINTF(2, 3)
pciefw_irq_note(PCIeFwState *s, const char *fmt, ...)
{
    g_autofree char *text = NULL;
    va_list ap;

    if (!s->trace) {
        return;
    }
    va_start(ap, fmt);
    text = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    pf_trace_write_note(s->trace, pf_now_ns(), PF_DIR_TO_HOST, text);
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

static void pciefw_handle_intx(PCIeFwState *s, bool asserted)
{
    PCIDevice *pdev = PCI_DEVICE(s);
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
}

static void pciefw_handle_msi(PCIeFwState *s, uint32_t vector)
{
    PCIDevice *pdev = PCI_DEVICE(s);
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
}

static void pciefw_handle_msix(PCIeFwState *s, uint32_t vector)
{
    PCIDevice *pdev = PCI_DEVICE(s);
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
}

static void pciefw_revived(PCIeFwState *s);

static void pciefw_handle_completion(PCIeFwState *s,
                                     const Pciefw__Completion *c)
{
    if (s->state == PCIEFW_RESETTING && c->tag == s->reset_tag) {
        pciefw_revived(s);
        return;
    }
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
            pciefw_protocol_error(s, pf_error_code(r),
                                  "handshake failed: %s; use an endpoint "
                                  "that speaks protocol %u.x", err,
                                  PCIEFW_VERSION_MAJOR);
        } else {
            pciefw_protocol_error(s, pf_error_code(r),
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

static void pciefw_send_revive_reset(PCIeFwState *s);

/*
 * The function is described (and the rings settled): at realize the
 * device is up; on reconnection the endpoint's function is reset first.
 */
static void pciefw_session_start(PCIeFwState *s)
{
    if (!s->have_desc) {
        s->state = PCIEFW_UP;
        pciefw_shm_begin(s);
        return;
    }
    s->state = PCIEFW_RESETTING;
    pciefw_shm_begin(s);
    if (s->fd >= 0) {
        pciefw_send_revive_reset(s);
    }
}

/*
 * Offer the shared-memory rings (spec 11.1) when both sides can use them:
 * RingSetup with the region and both doorbells.  False if not offered, so
 * the session goes on over the socket.
 */
static bool pciefw_propose_rings(PCIeFwState *s)
{
    int fds[PCIEFW_RING_SETUP_FDS];
    Error *err = NULL;
    uint64_t size;
    size_t mark;

    if (!(s->session.features & PCIEFW_FEATURE_SHM_RINGS)) {
        return false;
    }
    s->ring_stream = pciefw_stream_ring(s->fd, PF_RING_DEFAULT_BYTES, fds,
                                        &size, &err);
    if (!s->ring_stream) {
        /* Reported once; the socket serves as before. */
        warn_report_err(err);
        return false;
    }
    mark = pciefw_mark(s);
    if (!pciefw_queued(s, mark, pf_put_ring_setup(&s->out, size),
                       "ring_setup")) {
        return true;
    }
    if (!pciefw_stream_attach_fds(s->stream, fds, PCIEFW_RING_SETUP_FDS)) {
        pciefw_disconnect(s, "cannot pass the rings to the endpoint: %s",
                          strerror(errno));
        return true;
    }
    s->state = PCIEFW_WAIT_RINGS;
    pciefw_flush(s);
    pciefw_update_watch(s);
    return true;
}

/* From here both directions use the rings; the socket only watches. */
static void pciefw_use_rings(PCIeFwState *s)
{
    qemu_set_fd_handler(s->fd, NULL, NULL, NULL);
    pciefw_stream_free(s->stream);
    s->stream = g_steal_pointer(&s->ring_stream);
    s->read_watched = s->write_watched = false;
    qemu_set_fd_handler(s->fd, pciefw_socket_read, NULL, s);
    qemu_set_fd_handler(s->stream->wake_fd, pciefw_bell_read, NULL, s);
    if (s->trace) {
        pf_trace_write_note(s->trace, pf_now_ns(), PF_DIR_TO_HOST,
                            "session continues over shared-memory rings");
    }
}

static void pciefw_handle_ring_ready(PCIeFwState *s,
                                     const Pciefw__RingReady *r)
{
    if (r->accepted) {
        pciefw_use_rings(s);
    } else {
        trace_pciefw_rings_refused(r->reason);
        g_clear_pointer(&s->ring_stream, pciefw_stream_free);
    }
    pciefw_session_start(s);
}

/*
 * The endpoint described its function.  At realize it defines the device;
 * on reconnection it must describe the same device, and nothing it sent
 * takes effect before that check passed.
 */
static void pciefw_handle_description(PCIeFwState *s,
                                      const Pciefw__DeviceDescription *d)
{
    char err[256];

    /* Where MSI-X goes, beyond the message's own rules (spec 4.2). */
    if (pf_desc_check_msix(d, err, sizeof(err)) != PF_OK) {
        pciefw_protocol_error(s, PCIEFW__ERROR_CODE__ERROR_PROTOCOL,
                              "cannot add MSI-X: %s", err);
        return;
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
        return;
    }
    if (!pciefw_propose_rings(s)) {
        pciefw_session_start(s);
    }
}

static void pciefw_handle_session_message(PCIeFwState *s, const PfMessage *m)
{
    switch (m->body_case) {
    case PCIEFW__MESSAGE__BODY_COMPLETION:
        pciefw_handle_completion(s, m->completion);
        break;
    case PCIEFW__MESSAGE__BODY_DMA_READ:
        pciefw_handle_dma_read(s, m->dma_read);
        break;
    case PCIEFW__MESSAGE__BODY_DMA_WRITE:
        pciefw_handle_dma_write(s, m->dma_write);
        break;
    case PCIEFW__MESSAGE__BODY_INTX:
        pciefw_handle_intx(s, m->intx->asserted);
        break;
    case PCIEFW__MESSAGE__BODY_MSI:
        pciefw_handle_msi(s, m->msi->vector);
        break;
    case PCIEFW__MESSAGE__BODY_MSIX:
        pciefw_handle_msix(s, m->msix->vector);
        break;
    default:
        g_assert_not_reached();
    }
}

static bool pciefw_is_session_message(const PfMessage *m)
{
    switch (m->body_case) {
    case PCIEFW__MESSAGE__BODY_COMPLETION:
    case PCIEFW__MESSAGE__BODY_DMA_READ:
    case PCIEFW__MESSAGE__BODY_DMA_WRITE:
    case PCIEFW__MESSAGE__BODY_INTX:
    case PCIEFW__MESSAGE__BODY_MSI:
    case PCIEFW__MESSAGE__BODY_MSIX:
        return true;
    default:
        return false;
    }
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
        pciefw_handle_description(s, m->device_description);
        return;
    case PCIEFW_WAIT_RINGS:
        if (m->body_case != PCIEFW__MESSAGE__BODY_RING_READY) {
            break;
        }
        pciefw_handle_ring_ready(s, m->ring_ready);
        return;
    case PCIEFW_RESETTING:
    case PCIEFW_UP:
        if (pciefw_is_session_message(m)) {
            pciefw_handle_session_message(s, m);
            return;
        }
        break;
    case PCIEFW_CONNECTING:
    case PCIEFW_TLS_HANDSHAKE:
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

    r = pf_codec_decode(&s->codec, frame, len, &m, err, sizeof(err));
    if (r == PF_OK) {
        r = pf_msg_validate(m, max_payload, err, sizeof(err));
    }
    if (s->trace && r == PF_OK) {
        pf_trace_write(s->trace, pf_now_ns(), PF_DIR_TO_HOST, frame, len);
    } else if (s->trace) {
        /* Spec 6: the frame as received, length prefix included. */
        g_autofree uint8_t *raw = g_malloc(PF_FRAME_HEADER + len);

        pf_frame_put_header(raw, len);
        memcpy(raw + PF_FRAME_HEADER, frame, len);
        pf_trace_write_malformed(s->trace, pf_now_ns(), PF_DIR_TO_HOST, raw,
                                 PF_FRAME_HEADER + len);
    }
    if (r != PF_OK) {
        pciefw_protocol_error(s, pf_error_code(r), "%s", err);
        return;
    }
    trace_pciefw_recv(pf_msg_kind_name(m->body_case), len);
    pciefw_handle_message(s, m);
}

/*
 * Handle one frame with the device marked busy: an access that the
 * handling makes to the device itself (DMA or MSI onto its own BARs or
 * config space) is refused instead of starting a nested exchange that
 * would reuse the decoder's buffers.  QEMU's memory core refuses accesses
 * to our regions while the device's reentrancy guard is engaged.
 */
static void pciefw_dispatch_frame(PCIeFwState *s, const uint8_t *frame,
                                  size_t len)
{
    MemReentrancyGuard *guard = &DEVICE(s)->mem_reentrancy_guard;
    bool engaged = guard->engaged_in_io;

    guard->engaged_in_io = true;
    s->dispatching = true;
    pciefw_handle_frame(s, frame, len);
    s->dispatching = false;
    guard->engaged_in_io = engaged;
}

/* Read what is available (up to @max_reads chunks) and handle it in order. */
static void pciefw_read_input(PCIeFwState *s, int max_reads)
{
    while (max_reads-- > 0 && s->fd >= 0) {
        PCIeFwStream *from = s->stream;
        ssize_t n = s->stream->ops->recv(s->stream, s->rxbuf,
                                         PCIEFW_RX_CHUNK);
        size_t off = 0;

        if (n < 0) {
            if (errno == EINTR) {
                max_reads++;
                continue;
            }
            if (errno == EBADMSG) {
                pciefw_protocol_error(s, PCIEFW__ERROR_CODE__ERROR_PROTOCOL,
                                      "%s", pciefw_stream_strerror(s->stream,
                                                                   errno));
            } else if (errno != EAGAIN && errno != EWOULDBLOCK) {
                pciefw_disconnect(s, "receive failed: %s",
                                  pciefw_stream_strerror(s->stream, errno));
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
                pciefw_dispatch_frame(s, frame, len);
                if (s->stream != from && s->fd >= 0 && off < (size_t)n) {
                    pciefw_protocol_error(s, PCIEFW__ERROR_CODE__ERROR_PROTOCOL,
                                          "%zu bytes on the socket after "
                                          "ring_ready", n - off);
                    return;
                }
            } else if (r != PF_AGAIN) {
                if (s->trace) {
                    pf_trace_write_malformed(s->trace, pf_now_ns(),
                                             PF_DIR_TO_HOST,
                                             s->rxbuf + off - used,
                                             n - off + used);
                }
                pciefw_protocol_error(s, pf_error_code(r),
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

    pciefw_readable(s, PCIEFW_RX_BATCH);
    pciefw_flush(s);
    pciefw_update_watch(s);
    if (pciefw_input_held(s)) {
        qemu_bh_schedule(s->input_bh);
    }
    /*
     * Capture is buffered; hand it to the kernel once per batch, off the
     * vCPU path, so a killed QEMU loses at most the current batch.
     */
    if (s->trace) {
        pf_trace_flush(s->trace);
    }
}

/* The socket beside the rings: only a hang-up or a violation shows. */
static void pciefw_socket_read(void *opaque)
{
    PCIeFwState *s = opaque;

    pciefw_socket_event(s);
    pciefw_fd_read(s);
}

/* The endpoint kicked our doorbell: bytes, or room, in the rings. */
static void pciefw_bell_read(void *opaque)
{
    PCIeFwState *s = opaque;

    pf_doorbell_drain(s->stream->wake_fd);
    pciefw_flush(s);
    pciefw_fd_read(s);
}

static void pciefw_input_bh(void *opaque)
{
    PCIeFwState *s = opaque;

    if (pciefw_input_held(s)) {
        pciefw_fd_read(s);
    }
}

static void pciefw_fd_write(void *opaque)
{
    PCIeFwState *s = opaque;

    pciefw_writable(s);
    pciefw_update_watch(s);
}

static void pciefw_update_watch(PCIeFwState *s)
{
    bool want_read, want_write;

    if (s->fd < 0) {
        return;
    }
    if (pciefw_stream_waits_on_bell(s)) {
        /*
         * The handlers are fixed while the rings last (pciefw_use_rings()),
         * and no handler waits for room to write: what handling input
         * queued (a DMA read's data, while a vCPU waited for something
         * else) goes now.  A full ring kicks us when it drains.
         */
        pciefw_flush(s);
        return;
    }
    want_read = pciefw_want_read(s);
    want_write = pciefw_want_write(s);
    if (want_read != s->read_watched || want_write != s->write_watched) {
        s->read_watched = want_read;
        s->write_watched = want_write;
        qemu_set_fd_handler(s->fd, want_read ? pciefw_fd_read : NULL,
                            want_write ? pciefw_fd_write : NULL, s);
    }
}

/* ---------------------------------------------------------------------- */
/* Connecting                                                              */

/*
 * Connecting never blocks: the socket is non-blocking from the start, a
 * connect in progress is finished by pciefw_writable(), and the handshake
 * is driven by the same message handlers as the session.  At realize the
 * steps are driven synchronously (pciefw_pump, bounded by the timeout);
 * a reconnection runs in the background from the main loop, bounded by
 * attempt_timer.
 */

static bool pciefw_resolve(PCIeFwState *s, Error **errp)
{
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC,
        .ai_socktype = SOCK_STREAM,
    };
    g_autofree char *port = NULL;
    struct sockaddr_un *un;
    int r;

    if (s->path) {
        if (strlen(s->path) >= sizeof(un->sun_path)) {
            error_setg(errp, "pciefw: path '%s' is longer than a UNIX socket "
                       "path may be (%zu bytes)", s->path,
                       sizeof(un->sun_path) - 1);
            return false;
        }
        s->addrs = g_new0(struct addrinfo, 1);
        un = g_new0(struct sockaddr_un, 1);
        un->sun_family = AF_UNIX;
        pstrcpy(un->sun_path, sizeof(un->sun_path), s->path);
        s->addrs->ai_family = AF_UNIX;
        s->addrs->ai_socktype = SOCK_STREAM;
        s->addrs->ai_addr = (struct sockaddr *)un;
        s->addrs->ai_addrlen = sizeof(*un);
        return true;
    }
    port = g_strdup_printf("%u", s->rport);
    r = getaddrinfo(s->raddr, port, &hints, &s->addrs);
    if (r) {
        s->addrs = NULL;
        error_setg(errp, "pciefw: cannot resolve endpoint host '%s': %s",
                   s->raddr, gai_strerror(r));
        return false;
    }
    return true;
}

static void pciefw_free_addrs(PCIeFwState *s)
{
    if (!s->addrs) {
        return;
    }
    if (s->path) {
        g_free(s->addrs->ai_addr);
        g_free(s->addrs);
    } else {
        freeaddrinfo(s->addrs);
    }
    s->addrs = NULL;
}

/*
 * Start connecting to s->next_addr, or to the next address after it that
 * can be tried; with none left the attempt has failed.
 */
static void pciefw_connect_next(PCIeFwState *s)
{
    if (s->fd >= 0) {
        qemu_set_fd_handler(s->fd, NULL, NULL, NULL);
        close(s->fd);
        s->fd = -1;
    }
    for (; s->next_addr; s->next_addr = s->next_addr->ai_next) {
        struct addrinfo *ai = s->next_addr;
        int fd = qemu_socket(ai->ai_family, ai->ai_socktype, 0);

        if (fd < 0) {
            g_free(s->connect_error);
            s->connect_error = g_strdup(strerror(errno));
            continue;
        }
        if (!qemu_set_blocking(fd, false, NULL)) {
            close(fd);
            continue;
        }
        s->fd = fd;
        s->read_watched = false;
        s->write_watched = false;
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0) {
            pciefw_connected(s);
            return;
        }
        if (errno == EINPROGRESS) {
            s->state = PCIEFW_CONNECTING;
            pciefw_update_watch(s);
            return;
        }
        g_free(s->connect_error);
        /* A UNIX socket whose listen backlog is full: the endpoint hangs. */
        s->connect_error = g_strdup(errno == EAGAIN ?
                                    "the endpoint accepts no connection "
                                    "(listen backlog full)" : strerror(errno));
        close(fd);
        s->fd = -1;
    }
    pciefw_disconnect(s, "cannot connect: %s",
                      s->connect_error ?: "no address to connect to");
}

/* Open the byte stream over the connected socket. */
static bool pciefw_open_stream(PCIeFwState *s)
{
    Error *err = NULL;

    if (!s->creds) {
        s->stream = pciefw_stream_socket(s->fd);
        s->state = PCIEFW_WAIT_HELLO;
        return true;
    }
    s->stream = pciefw_stream_tls(s->fd, s->creds,
                                  s->tls_hostname ?: s->raddr, &err);
    if (!s->stream) {
        pciefw_disconnect(s, "%s", error_get_pretty(err));
        error_free(err);
        return false;
    }
    s->state = PCIEFW_TLS_HANDSHAKE;
    s->handshake_wants_write = true;    /* the ClientHello goes first */
    return true;
}

/* The TLS handshake goes on; once done, our Hello goes out. */
static void pciefw_handshake_step(PCIeFwState *s)
{
    Error *err = NULL;
    int r = s->stream->ops->handshake(s->stream, &s->handshake_wants_write,
                                      &err);

    if (r < 0) {
        pciefw_disconnect(s, "%s", error_get_pretty(err));
        error_free(err);
        return;
    }
    if (r > 0) {
        trace_pciefw_tls_established(s->peer);
        s->state = PCIEFW_WAIT_HELLO;
        pciefw_flush(s);
    }
    pciefw_update_watch(s);
}

/* Connected: say hello; the handlers take it from there. */
static void pciefw_connected(PCIeFwState *s)
{
    size_t mark;

    if (s->next_addr->ai_family != AF_UNIX) {
        socket_set_nodelay(s->fd);
    }
    if (!pciefw_open_stream(s)) {
        return;
    }
    s->faults_reported = 0;
    if (s->trace) {
        g_autofree char *text = g_strdup_printf(
            "session %u: connected to %s", ++s->sessions, s->peer);

        /* Spec 6: one file spans reconnections; mark where each begins. */
        pf_trace_write_session(s->trace, pf_now_ns(), text);
    }
    pf_buf_clear(&s->out);
    pf_frame_decoder_init(&s->dec, PCIEFW_HANDSHAKE_FRAME);
    mark = pciefw_mark(s);
    if (!pciefw_queued(s, mark, pf_put_hello(&s->out, &s->hello), "hello")) {
        return;
    }
    if (s->state == PCIEFW_TLS_HANDSHAKE) {
        pciefw_handshake_step(s);
        return;
    }
    pciefw_flush(s);
    pciefw_update_watch(s);
}

static void pciefw_start_connect(PCIeFwState *s)
{
    g_clear_pointer(&s->connect_error, g_free);
    s->next_addr = s->addrs;
    pciefw_connect_next(s);
}

static bool pciefw_up(PCIeFwState *s)
{
    return s->state == PCIEFW_UP;
}

/*
 * Realize's connection: connect, exchange Hellos and read the
 * DeviceDescription into s->new_desc, all within the completion timeout.
 */
static bool pciefw_connect(PCIeFwState *s, Error **errp)
{
    s->realizing = true;
    pciefw_start_connect(s);
    if (s->fd >= 0) {
        pciefw_pump(s, pciefw_up, "hello and device description",
                    pciefw_deadline(s));
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
        pciefw_drop(s);
        return false;
    }
    pciefw_update_watch(s);
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
    timer_mod(s->attempt_timer, pciefw_deadline(s));
    pciefw_start_connect(s);
}

static void pciefw_attempt_timeout(void *opaque)
{
    PCIeFwState *s = opaque;

    if (s->reconnecting && s->state != PCIEFW_DOWN) {
        pciefw_disconnect(s, "no hello, description and reset completion "
                          "within %u ms", s->timeout_ms);
    }
}

/* The returning endpoint describes the same device: reset it first. */
static void pciefw_send_revive_reset(PCIeFwState *s)
{
    size_t mark = pciefw_mark(s);

    trace_pciefw_reset("function");
    s->reset_tag = s->next_tag++;
    s->state = PCIEFW_RESETTING;
    if (pciefw_queued(s, mark,
                      pf_put_reset(&s->out, s->reset_tag,
                                   PCIEFW__RESET_KIND__RESET_FUNCTION),
                      "reset")) {
        pciefw_flush(s);
    }
}

/* The reset of a reconnection completed: the device serves the guest. */
static void pciefw_revived(PCIeFwState *s)
{
    timer_del(s->attempt_timer);
    s->state = PCIEFW_UP;
    pciefw_bus_master_after_reset(s);
    s->reconnecting = false;
    s->error_reported = false;
    s->mismatch_reported = false;
    trace_pciefw_reconnected();
    info_report("pciefw: reconnected to endpoint %s", s->peer);
}

static void pciefw_schedule_reconnect(PCIeFwState *s)
{
    if (s->reconnect_s && s->reconnect_timer && !s->closing) {
        timer_mod(s->reconnect_timer,
                  qemu_clock_get_ms(QEMU_CLOCK_REALTIME) +
                  (int64_t)s->reconnect_s * 1000);
    }
}

/*
 * Forward a reset and wait for its completion.  Endpoint DMA and
 * interrupts that arrive meanwhile are refused: the function is being
 * reset (and its bus mastering about to be cleared).
 */
static void pciefw_send_reset(PCIeFwState *s, Pciefw__ResetKind kind)
{
    const char *name = kind == PCIEFW__RESET_KIND__RESET_FUNCTION ?
                       "function" : "system";
    uint32_t tag;
    size_t mark;

    trace_pciefw_reset(name);
    if (s->state != PCIEFW_UP) {
        return;         /* a reconnection resets the endpoint anyway */
    }
    if (!pciefw_begin(s, &tag, 0)) {
        /*
         * Only reachable if a reset arrived in the middle of another
         * request: the two sides would disagree on the device's state, so
         * start over (a reconnection resets the endpoint).
         */
        pciefw_disconnect(s, "%s reset while a request was in flight", name);
        return;
    }
    s->resetting = true;
    /* The reset clears Bus Master Enable: no copies from here (10.3). */
    pciefw_report_bus_master(s, false);
    mark = pciefw_mark(s);
    if (pciefw_queued(s, mark, pf_put_reset(&s->out, tag, kind), "reset")) {
        pciefw_complete(s, "reset", pciefw_deadline(s));
    }
    s->resetting = false;
    pciefw_bus_master_after_reset(s);
    if (s->desc.intx_pin) {
        pciefw_set_intx(s, false);
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

    if (pciefw_reentered(s, "BAR read", addr)) {
        return val;
    }
    if (pciefw_begin(s, &tag, size)) {
        mark = pciefw_mark(s);
        r = io ? pf_put_io_read(&s->out, tag, bar->index, addr, size)
               : pf_put_mem_read(&s->out, tag, bar->index, addr, size);
        if (pciefw_queued(s, mark, r, io ? "io_read" : "mem_read") &&
            pciefw_complete(s, io ? "io_read" : "mem_read",
                            pciefw_deadline(s)) ==
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

    if (pciefw_reentered(s, "BAR write", addr)) {
        return;
    }
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
            pciefw_complete(s, "io_write", pciefw_deadline(s));
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
 * (spec 3.5): every attempt shares one deadline, so the access holds the
 * BQL for at most the timeout.  Returns the final status, or -1 without a
 * connection.
 */
static int pciefw_config_access(PCIeFwState *s, bool write, uint32_t addr,
                                uint32_t val, int len)
{
    const char *kind = write ? "config_write" : "config_read";
    int64_t deadline = pciefw_deadline(s);
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
        status = pciefw_complete(s, kind, deadline);
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

    if (!pciefw_config_forwarded(s, addr)) {
        return pci_default_read_config(pdev, addr, len);
    }
    if (pciefw_reentered(s, "config read", addr)) {
        return val;
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

    if (pciefw_reentered(s, "config write", addr)) {
        return;
    }
    if (!pciefw_config_forwarded(s, addr)) {
        pci_default_write_config(pdev, addr, val, len);
        if (ranges_overlap(addr, len, PCI_COMMAND, 2) && pciefw_shm(s)) {
            pciefw_report_bus_master(s, false);
            pciefw_posted(s);
        }
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
                              PCIEFW_CAP_MSIX, &local_err)) {
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
    pciefw_drop(s);
    pciefw_memmap_stop(&s->memmap);
    g_clear_pointer(&s->reconnect_timer, timer_free);
    g_clear_pointer(&s->attempt_timer, timer_free);
    g_clear_pointer(&s->input_bh, qemu_bh_delete);
    g_clear_pointer(&s->memmap_bh, qemu_bh_delete);
    pciefw_free_addrs(s);
    if (s->creds) {
        object_unref(OBJECT(s->creds));
        s->creds = NULL;
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

/* tls-creds names a tls-creds-x509 object for a client (docs 1.5). */
static bool pciefw_lookup_creds(PCIeFwState *s, Error **errp)
{
    Object *obj = object_resolve_path_component(object_get_objects_root(),
                                                s->tls_creds);
    QCryptoTLSCreds *creds;

    if (!obj) {
        error_setg(errp, "pciefw: no TLS credentials object '%s' (give "
                   "-object tls-creds-x509,id=%s,dir=DIR,endpoint=client)",
                   s->tls_creds, s->tls_creds);
        return false;
    }
    creds = (QCryptoTLSCreds *)object_dynamic_cast(obj, TYPE_QCRYPTO_TLS_CREDS);
    if (!creds) {
        error_setg(errp, "pciefw: object '%s' is not TLS credentials",
                   s->tls_creds);
        return false;
    }
    if (!qcrypto_tls_creds_check_endpoint(creds,
                                          QCRYPTO_TLS_CREDS_ENDPOINT_CLIENT,
                                          errp)) {
        error_prepend(errp, "pciefw: tls-creds '%s': ", s->tls_creds);
        return false;
    }
    s->creds = creds;
    object_ref(obj);
    return true;
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
    if ((s->tls_creds || s->tls_hostname) && s->path) {
        error_setg(errp, "pciefw: tls-creds is for TCP (raddr, rport); a "
                   "UNIX socket is protected by its file mode");
        return;
    }
    if (s->tls_hostname && !s->tls_creds) {
        error_setg(errp, "pciefw: tls-hostname needs tls-creds");
        return;
    }
    if (s->tls_creds && !pciefw_lookup_creds(s, errp)) {
        return;
    }
    if (!s->timeout_ms || s->timeout_ms > PCIEFW_MAX_TIMEOUT_MS) {
        error_setg(errp, "pciefw: timeout must be between 1 and %u ms "
                   "(a guest access waits for the endpoint at most that "
                   "long, holding QEMU's main lock)", PCIEFW_MAX_TIMEOUT_MS);
        return;
    }
    s->peer = s->path ? g_strdup_printf("unix:%s", s->path)
                      : g_strdup_printf("tcp:%s:%u", s->raddr, s->rport);

    pf_codec_init(&s->codec);
    pf_buf_init(&s->out);
    s->rxbuf = g_malloc(PCIEFW_RX_CHUNK);
    pf_hello_defaults(&s->hello, "qemu " QEMU_VERSION);
    /*
     * Guest memory is offered on a UNIX socket when bus addresses are
     * guest-physical (no IOMMU in front of us): docs/protocol.md 10.1.
     * The listener sees RAM as the IOMMU-less bus-master view does, but
     * without the Bus Master Enable gate, which is reported on its own.
     */
    if (s->guest_memory && s->path &&
        pci_device_iommu_address_space(pdev) == &address_space_memory) {
        s->hello.features |= PCIEFW_FEATURE_GUEST_MEMORY;
        pciefw_memmap_start(&s->memmap, &address_space_memory,
                            pciefw_memmap_changed, s);
    }
    /* Rings on a UNIX socket, as plain as it is (spec 11.1). */
    if (s->shm_rings && s->path && !s->tls_creds) {
        s->hello.features |= PCIEFW_FEATURE_SHM_RINGS;
    }
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

    s->reconnect_timer = timer_new_ms(QEMU_CLOCK_REALTIME, pciefw_reconnect, s);
    s->attempt_timer = timer_new_ms(QEMU_CLOCK_REALTIME,
                                    pciefw_attempt_timeout, s);
    s->input_bh = aio_bh_new_guarded(qemu_get_aio_context(), pciefw_input_bh,
                                     s, &DEVICE(s)->mem_reentrancy_guard);
    s->memmap_bh = aio_bh_new_guarded(qemu_get_aio_context(),
                                      pciefw_memmap_bh, s,
                                      &DEVICE(s)->mem_reentrancy_guard);
    if (!pciefw_resolve(s, errp) || !pciefw_connect(s, errp)) {
        goto fail;
    }
    s->desc = s->new_desc;
    s->have_desc = true;
    s->config_ext = pci_is_express(pdev) && d->config_ext;

    pci_config_set_vendor_id(conf, d->vendor_id);
    pci_config_set_device_id(conf, d->device_id);
    pci_set_word(conf + PCI_SUBSYSTEM_VENDOR_ID, d->subsystem_vendor_id);
    pci_set_word(conf + PCI_SUBSYSTEM_ID, d->subsystem_id);
    pci_config_set_class(conf, d->class_code >> 8);
    pci_config_set_prog_interface(conf, d->class_code & 0xff);
    pci_config_set_revision(conf, d->revision);
    pci_config_set_interrupt_pin(conf, d->intx_pin);

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
        size_t mark = pciefw_mark(s);
        int r = pf_put_goodbye(&s->out,
                               PCIEFW__GOODBYE_REASON__GOODBYE_UNPLUG,
                               "device removed");

        if (pciefw_queued(s, mark, r, "goodbye")) {
            pciefw_flush(s);
        }
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
    DEFINE_PROP_UINT32("timeout", PCIeFwState, timeout_ms,
                       PCIEFW_DEFAULT_TIMEOUT_MS),
    DEFINE_PROP_UINT32("reconnect", PCIeFwState, reconnect_s, 0),
    DEFINE_PROP_STRING("trace", PCIeFwState, trace_path),
    DEFINE_PROP_SIZE("trace-limit", PCIeFwState, trace_limit, 0),
    DEFINE_PROP_STRING("tls-creds", PCIeFwState, tls_creds),
    DEFINE_PROP_STRING("tls-hostname", PCIeFwState, tls_hostname),
    DEFINE_PROP_BOOL("guest-memory", PCIeFwState, guest_memory, true),
    DEFINE_PROP_BOOL("shm-rings", PCIeFwState, shm_rings, true),
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
        "completion timeout in milliseconds (1-60000); the endpoint is "
        "considered dead when a request is not answered in time, and a "
        "guest access waits at most this long");
    object_class_property_set_description(klass, "reconnect",
        "seconds between reconnection attempts after the endpoint is "
        "lost (0: stay disconnected)");
    object_class_property_set_description(klass, "trace",
        "file to record every message of the session in (pcapng)");
    object_class_property_set_description(klass, "trace-limit",
        "rotate the capture file at this size, keeping FILE.1 to FILE.4 "
        "(0: unbounded)");
    object_class_property_set_description(klass, "tls-creds",
        "id of a tls-creds-x509 object (endpoint=client): TLS to a TCP "
        "endpoint started with --tls-creds");
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
