/*
 * pciefw: one protocol connection, for either role (pciefw-conn.h).
 *
 * Copyright (c) 2025 The pciefw authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/error-report.h"
#include "qemu/main-loop.h"
#include "qemu/timer.h"
#include "qapi/error.h"
#include "trace.h"
#include "pciefw-conn.h"
#include "protocol/msg.h"
#include "protocol/ring.h"

#define PCIEFW_CONN_RX_CHUNK    (64 * 1024)
/* Reads per main-loop callback before yielding to other handlers. */
#define PCIEFW_CONN_RX_BATCH    16
/* What a closing side reads of the peer's last words. */
#define PCIEFW_CONN_LAST_READS  4

typedef enum PCIeFwConnState {
    CONN_DOWN,
    CONN_HANDSHAKE,             /* the transport's (TLS); our Hello waits */
    CONN_HELLO,                 /* our Hello is out, the peer's is due */
    CONN_SESSION,
} PCIeFwConnState;

struct PCIeFwConn {
    DeviceState *dev;           /* its re-entrancy guard covers our work */
    PCIeFwRole role;
    const PCIeFwConnOps *ops;
    void *opaque;
    char *name;                 /* the device's, for its reports */
    uint32_t timeout_ms;
    char *peer;

    PCIeFwConnState state;
    int fd;
    PCIeFwStream *stream;
    bool handshake_wants_write;
    struct pf_hello_params hello;
    struct pf_rx_handlers rx_handlers;  /* the device's, and Completion */
    struct pf_rx rx;
    bool rx_ready;                      /* rx initialised for a session */
    struct pf_buf out;
    uint8_t *rxbuf;
    struct pf_trace_writer *trace;
    unsigned sessions;
    QCryptoTLSCreds *creds;

    PCIeFwRequest *requests[PCIEFW_CONN_MAX_REQUESTS];
    unsigned n_requests;
    uint32_t next_tag;

    bool records;               /* binary register records on (11.7) */
    bool offer_rings;           /* shm-rings: where the socket allows */
    bool offer_records;         /* reg-records, with the rings */
    PCIeFwStream *rings_proposed;   /* host: RingSetup out, RingReady due */
    bool ring_setup_allowed;    /* endpoint: a RingSetup may come now */
    bool dispatching;           /* handling the peer's messages */
    bool draining;              /* only the peer's last words matter */
    QEMUBH *input_bh;           /* input the transport holds unseen */
    QEMUTimer *hello_timer;     /* the peer's Hello is due (spec 2.1) */
};

static void conn_update_watch(PCIeFwConn *c);
static bool conn_can_offer_rings(PCIeFwConn *c, int fd);
static void conn_read(PCIeFwConn *c, int max_reads);

/* ---------------------------------------------------------------------- */
/* Ending                                                                  */

/* Outstanding requests fail: nobody will complete them on this session. */
static void conn_fail_requests(PCIeFwConn *c)
{
    while (c->n_requests) {
        PCIeFwRequest *req = c->requests[--c->n_requests];

        req->done = true;
        req->status = -1;
        if (req->complete) {
            req->complete(req, req->opaque);
        }
    }
}

/*
 * Read (and drop) what the peer sent that nobody will handle, so that
 * closing does not reset the connection: the peer then reads our last
 * words and a clean end of stream.  Bounded.
 */
static void conn_drain_socket(PCIeFwConn *c)
{
    uint8_t buf[4096];

    for (int i = 0; i < 64; i++) {
        if (recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT) <= 0) {
            break;
        }
    }
}

static void conn_drop(PCIeFwConn *c)
{
    if (c->stream) {
        c->stream->ops->set_handlers(c->stream, NULL, NULL, false);
    }
    g_clear_pointer(&c->stream, pciefw_stream_free);
    g_clear_pointer(&c->rings_proposed, pciefw_stream_free);
    c->ring_setup_allowed = false;
    if (c->fd >= 0) {
        conn_drain_socket(c);
        close(c->fd);
        c->fd = -1;
    }
    timer_del(c->hello_timer);
    c->state = CONN_DOWN;
    /* Stop the input being handled now, if we are inside it. */
    c->rx.ended = true;
    pf_buf_clear(&c->out);
    if (c->trace) {
        pf_trace_flush(c->trace);
    }
}

void pciefw_conn_close(PCIeFwConn *c, const char *fmt, ...)
{
    g_autofree char *why = NULL;
    va_list ap;

    if (c->state == CONN_DOWN) {
        return;
    }
    va_start(ap, fmt);
    why = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    trace_pciefw_disconnect(why);
    conn_drop(c);
    conn_fail_requests(c);
    c->ops->closed(c->opaque, why);
}

/* The send failed: the peer may have said why before it went. */
static void conn_send_failed(PCIeFwConn *c, int err)
{
    g_autofree char *why = g_strdup(pciefw_stream_strerror(c->stream, err));

    if (!c->draining && !c->dispatching) {
        c->draining = true;
        conn_read(c, PCIEFW_CONN_LAST_READS);
        c->draining = false;
    }
    pciefw_conn_close(c, "send failed: %s", why);
}

void pciefw_conn_protocol_error(PCIeFwConn *c, Pciefw__ErrorCode code,
                                const char *fmt, ...)
{
    g_autofree char *why = NULL;
    va_list ap;
    size_t mark;

    va_start(ap, fmt);
    why = g_strdup_vprintf(fmt, ap);
    va_end(ap);
    if (c->state == CONN_DOWN) {
        return;
    }
    if (c->state != CONN_HANDSHAKE) {
        /* The reason is all we still want to send (no limits apply). */
        c->draining = true;
        mark = pciefw_conn_mark(c);
        if (pciefw_conn_queued(c, mark, pf_put_error(&c->out, code, why),
                               "error")) {
            pciefw_conn_flush(c);
        }
        c->draining = false;
    }
    pciefw_conn_close(c, "protocol error: %s", why);
}

void pciefw_conn_goodbye(PCIeFwConn *c, Pciefw__GoodbyeReason reason,
                         const char *text)
{
    size_t mark;

    if (c->state != CONN_SESSION) {
        pciefw_conn_close(c, "%s", text);
        return;
    }
    c->draining = true;
    mark = pciefw_conn_mark(c);
    if (pciefw_conn_queued(c, mark, pf_put_goodbye(&c->out, reason, text),
                           "goodbye")) {
        pciefw_conn_flush(c);
    }
    c->draining = false;
    pciefw_conn_close(c, "%s", text);
}

/* ---------------------------------------------------------------------- */
/* Output                                                                  */

struct pf_buf *pciefw_conn_out(PCIeFwConn *c)
{
    return &c->out;
}

size_t pciefw_conn_mark(PCIeFwConn *c)
{
    return pf_buf_used(&c->out);
}

static enum pf_dir conn_out_dir(PCIeFwConn *c)
{
    return c->role == PCIEFW_ROLE_HOST ? PF_DIR_TO_ENDPOINT : PF_DIR_TO_HOST;
}

bool pciefw_conn_queued(PCIeFwConn *c, size_t mark, int r, const char *kind)
{
    const uint8_t *p = pf_buf_peek(&c->out) + mark;
    size_t len = pf_buf_used(&c->out) - mark;

    if (r != PF_OK) {
        pciefw_conn_close(c, "cannot encode %s: %s", kind, pf_strerror(r));
        return false;
    }
    trace_pciefw_send(kind, len);
    pf_trace_write_frames(c->trace, pf_now_ns(), conn_out_dir(c), p, len);
    if (pf_buf_used(&c->out) > PCIEFW_CONN_HIGH_WATER && !c->draining) {
        pciefw_conn_flush(c);
    }
    if (c->state != CONN_DOWN && !c->draining &&
        pf_buf_used(&c->out) > PCIEFW_CONN_TX_LIMIT) {
        pciefw_conn_protocol_error(c, PCIEFW__ERROR_CODE__ERROR_LIMIT,
                                   "the %s leaves more than %u MiB of our "
                                   "messages unread",
                                   c->role == PCIEFW_ROLE_HOST ? "endpoint" :
                                   "host", PCIEFW_CONN_TX_LIMIT >> 20);
        return false;
    }
    return c->state != CONN_DOWN;
}

bool pciefw_conn_flush(PCIeFwConn *c)
{
    while (c->state > CONN_HANDSHAKE && !pf_buf_empty(&c->out)) {
        ssize_t n = c->stream->ops->send(c->stream, pf_buf_peek(&c->out),
                                         pf_buf_used(&c->out));
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return true;
            }
            conn_send_failed(c, errno);
            return false;
        }
        pf_buf_consume(&c->out, n);
    }
    if (c->state > CONN_HANDSHAKE && pf_buf_empty(&c->out) &&
        c->ops->out_idle && !c->draining) {
        c->ops->out_idle(c->opaque);
    }
    return c->state != CONN_DOWN;
}

static bool conn_out_drained(void *arg)
{
    PCIeFwConn *c = arg;

    return pf_buf_used(&c->out) < PCIEFW_CONN_HIGH_WATER / 2;
}

void pciefw_conn_posted(PCIeFwConn *c)
{
    pciefw_conn_flush(c);
    if (c->state == CONN_SESSION && !c->dispatching &&
        pf_buf_used(&c->out) > PCIEFW_CONN_HIGH_WATER) {
        pciefw_conn_pump(c, conn_out_drained, c, "progress on posted writes",
                         pciefw_conn_deadline(c));
    }
    conn_update_watch(c);
}

bool pciefw_conn_attach_fds(PCIeFwConn *c, const int *fds, unsigned n)
{
    return c->stream && pciefw_stream_attach_fds(c->stream, fds, n);
}

bool pciefw_conn_take_fds(PCIeFwConn *c, int *out, unsigned n)
{
    if (!c->stream) {
        return false;
    }
    if (n > c->stream->in_fds.n && c->stream->ops->collect_fds) {
        c->stream->ops->collect_fds(c->stream);
    }
    return pf_fd_queue_take(&c->stream->in_fds, out, n);
}

/* ---------------------------------------------------------------------- */
/* Requests and their completions (spec 3.4)                               */

bool pciefw_conn_request(PCIeFwConn *c, PCIeFwRequest *req)
{
    if (c->state != CONN_SESSION ||
        c->n_requests == PCIEFW_CONN_MAX_REQUESTS) {
        return false;
    }
    req->tag = c->next_tag++;
    req->done = false;
    req->status = -1;
    c->requests[c->n_requests++] = req;
    return true;
}

/* The outstanding request with @tag: its index, or -1. */
static int conn_find_request(PCIeFwConn *c, uint32_t tag)
{
    for (unsigned i = 0; i < c->n_requests; i++) {
        if (c->requests[i]->tag == tag) {
            return i;
        }
    }
    return -1;
}

static void conn_forget_request(PCIeFwConn *c, int i)
{
    c->requests[i] = c->requests[--c->n_requests];
}

static int conn_on_completion(void *opaque, const PfMessage *m, char *err,
                              size_t errlen)
{
    const Pciefw__Completion *cpl = m->completion;
    PCIeFwConn *c = opaque;
    int i = conn_find_request(c, cpl->tag);
    PCIeFwRequest *req;

    if (i < 0) {
        snprintf(err, errlen, "completion with tag %u, which no request is "
                 "waiting for", cpl->tag);
        return PF_ERR_UNKNOWN_TAG;
    }
    req = c->requests[i];
    /* Spec 3.4: a read's exactly, a write's or reset's none. */
    if (cpl->status == PCIEFW__STATUS__STATUS_SUCCESSFUL &&
        cpl->data.len != req->size) {
        snprintf(err, errlen, "completion for tag %u carries %zu bytes, "
                 "%u expected", cpl->tag, cpl->data.len, req->size);
        return PF_ERR_INVALID;
    }
    conn_forget_request(c, i);
    req->status = cpl->status;
    if (cpl->status == PCIEFW__STATUS__STATUS_SUCCESSFUL && req->size) {
        memcpy(req->dest, cpl->data.data, req->size);
    }
    req->done = true;
    if (req->complete) {
        req->complete(req, req->opaque);
    }
    return PF_OK;
}

/* The device's handler for @m's kind, with the device's opaque. */
static int conn_on_device_message(void *opaque, const PfMessage *m, char *err,
                                  size_t errlen)
{
    PCIeFwConn *c = opaque;

    /* A host's message before its RingSetup ends that place (11.1). */
    c->ring_setup_allowed = false;
    return c->ops->on[m->body_case](c->opaque, m, err, errlen);
}

static bool conn_request_done(void *arg)
{
    return ((PCIeFwRequest *)arg)->done;
}

int pciefw_conn_wait(PCIeFwConn *c, PCIeFwRequest *req, const char *what,
                     int64_t deadline)
{
    pciefw_conn_pump(c, conn_request_done, req, what, deadline);
    conn_update_watch(c);
    /*
     * A completion that came before the peer hung up (a Goodbye in the
     * same read) still answers the request: messages are in order.
     */
    if (!req->done) {
        int i = conn_find_request(c, req->tag);

        if (i >= 0) {
            conn_forget_request(c, i);
        }
        return -1;
    }
    if (req->status != PCIEFW__STATUS__STATUS_SUCCESSFUL && req->status >= 0) {
        trace_pciefw_request_failed(what, req->tag,
                                    pf_status_name(req->status));
    }
    return req->status;
}

int64_t pciefw_conn_deadline(PCIeFwConn *c)
{
    return qemu_clock_get_ms(QEMU_CLOCK_REALTIME) + c->timeout_ms;
}

/* ---------------------------------------------------------------------- */
/* Input                                                                   */

/* Bytes from the stream, through the session's input, with the guard on. */
static int conn_dispatch(PCIeFwConn *c, const uint8_t *p, size_t len,
                         size_t *used)
{
    MemReentrancyGuard *guard = &c->dev->mem_reentrancy_guard;
    bool engaged = guard->engaged_in_io;
    int r;

    guard->engaged_in_io = true;
    c->dispatching = true;
    r = pf_rx_push(&c->rx, p, len, used);
    c->dispatching = false;
    guard->engaged_in_io = engaged;
    return r;
}

/* One chunk received: handled, or why the connection ends. */
static void conn_take(PCIeFwConn *c, size_t n)
{
    PCIeFwStream *from = c->stream;
    size_t used;
    int r = conn_dispatch(c, c->rxbuf, n, &used);

    if (c->state == CONN_DOWN) {
        return;                 /* a handler closed it */
    }
    if (r == PF_EOF) {
        return;                 /* ended(): the peer's Goodbye or Error */
    }
    if (r < 0) {
        pciefw_conn_protocol_error(c, c->rx.code, "%s", c->rx.why);
        return;
    }
    /* Spec 11.1: after the switch, nothing more comes on the socket. */
    if (c->stream != from &&
        (used < n || pf_rx_finish(&c->rx) != PF_EOF)) {
        pciefw_conn_protocol_error(c, PCIEFW__ERROR_CODE__ERROR_PROTOCOL,
                                   "%zu bytes on the socket after the switch "
                                   "to the rings", n - used);
    }
}

static void conn_recv_failed(PCIeFwConn *c, ssize_t n, int err)
{
    const char *peer = c->role == PCIEFW_ROLE_HOST ? "endpoint" : "host";

    if (n == 0) {
        pciefw_conn_close(c, "connection closed by the %s%s", peer,
                          pf_rx_finish(&c->rx) == PF_EOF ? "" :
                          " in the middle of a message");
    } else if (err == EBADMSG) {
        pciefw_conn_protocol_error(c, PCIEFW__ERROR_CODE__ERROR_PROTOCOL, "%s",
                                   pciefw_stream_strerror(c->stream, err));
    } else {
        pciefw_conn_close(c, "receive failed: %s",
                          pciefw_stream_strerror(c->stream, err));
    }
}

/* Read what is there (up to @max_reads chunks) and handle it in order. */
static void conn_read(PCIeFwConn *c, int max_reads)
{
    while (max_reads-- > 0 && c->state > CONN_HANDSHAKE) {
        ssize_t n = c->stream->ops->recv(c->stream, c->rxbuf,
                                         PCIEFW_CONN_RX_CHUNK);

        if (c->stream->in_fds.overflow) {
            pciefw_conn_protocol_error(c, PCIEFW__ERROR_CODE__ERROR_LIMIT,
                                       "more than %u file descriptors passed "
                                       "and not claimed",
                                       PCIEFW_MAX_PENDING_FDS);
            return;
        }
        if (n < 0 && errno == EINTR) {
            max_reads++;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return;
        }
        if (n <= 0) {
            conn_recv_failed(c, n, errno);
            return;
        }
        conn_take(c, n);
    }
}

/* The transport's handshake goes on; once done, our Hello goes out. */
static void conn_handshake_step(PCIeFwConn *c)
{
    Error *err = NULL;
    int r = c->stream->ops->handshake(c->stream, &c->handshake_wants_write,
                                      &err);

    if (r < 0) {
        pciefw_conn_close(c, "%s", error_get_pretty(err));
        error_free(err);
        return;
    }
    if (r > 0) {
        trace_pciefw_tls_established(c->peer);
        c->state = CONN_HELLO;
        pciefw_conn_flush(c);
    }
}

/* Ready for one pass: the handshake, or output and input. */
static void conn_serve(PCIeFwConn *c, int max_reads)
{
    if (c->state == CONN_HANDSHAKE) {
        conn_handshake_step(c);
        return;
    }
    pciefw_conn_flush(c);
    conn_read(c, max_reads);
    pciefw_conn_flush(c);
}

/* The main loop: the transport says input or room may be there. */
static void conn_ready(void *opaque)
{
    PCIeFwConn *c = opaque;

    conn_serve(c, PCIEFW_CONN_RX_BATCH);
    conn_update_watch(c);
    /*
     * Capture is buffered; hand it to the kernel once per batch, off the
     * vCPU path, so a killed QEMU loses at most the current batch.
     */
    if (c->trace) {
        pf_trace_flush(c->trace);
    }
}

static void conn_input_bh(void *opaque)
{
    PCIeFwConn *c = opaque;

    if (c->stream && c->stream->ops->pending(c->stream)) {
        conn_ready(c);
    }
}

static void conn_update_watch(PCIeFwConn *c)
{
    bool want_write;

    if (!c->stream) {
        return;
    }
    want_write = c->state == CONN_HANDSHAKE ? c->handshake_wants_write :
                 !pf_buf_empty(&c->out);
    c->stream->ops->set_handlers(c->stream, conn_ready, c, want_write);
    /* Input the transport holds where the main loop cannot see it. */
    if (c->state > CONN_HANDSHAKE && c->stream->ops->pending(c->stream)) {
        qemu_bh_schedule(c->input_bh);
    }
}

bool pciefw_conn_pump(PCIeFwConn *c, bool (*done)(void *arg), void *arg,
                      const char *what, int64_t deadline)
{
    pciefw_conn_flush(c);
    while (c->state != CONN_DOWN && !done(arg)) {
        bool want_write;

        /*
         * The deadline first: a peer that keeps sending (the transport
         * always holds input then) must not hold the vCPU and the BQL past
         * it.  Each pass handles at most one chunk of input.
         */
        if (qemu_clock_get_ms(QEMU_CLOCK_REALTIME) >= deadline) {
            pciefw_conn_close(c, "no %s within %u ms (completion timeout)",
                              what, c->timeout_ms);
            return false;
        }
        if (c->state > CONN_HANDSHAKE && c->stream->ops->pending(c->stream)) {
            conn_serve(c, 1);
            continue;
        }
        want_write = c->state == CONN_HANDSHAKE ? c->handshake_wants_write :
                     !pf_buf_empty(&c->out);
        if (!c->stream->ops->wait(c->stream, want_write, deadline)) {
            pciefw_conn_close(c, "%s", c->stream->error);
            return false;
        }
        conn_serve(c, 1);
    }
    /* What came behind the awaited message is the main loop's. */
    if (c->state != CONN_DOWN) {
        conn_update_watch(c);
    }
    return c->state != CONN_DOWN && done(arg);
}

/* ---------------------------------------------------------------------- */
/* Sessions                                                                */

static int conn_on_hello(void *opaque, const struct pf_session *s, char *err,
                         size_t errlen)
{
    PCIeFwConn *c = opaque;
    int r;

    timer_del(c->hello_timer);
    c->state = CONN_SESSION;
    r = c->ops->session ? c->ops->session(c->opaque, s, err, errlen) : PF_OK;
    /* The endpoint's description is out: RingSetup's place (11.1). */
    c->ring_setup_allowed = r == PF_OK && c->state == CONN_SESSION &&
                            c->role == PCIEFW_ROLE_ENDPOINT;
    return r;
}

static const char *conn_enum_name(const ProtobufCEnumDescriptor *desc,
                                  int value)
{
    const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(desc,
                                                                      value);

    return v ? v->name : "unknown";
}

/* The peer's Goodbye or Error ends the session (spec 7.2). */
static void conn_on_ended(void *opaque, const PfMessage *m)
{
    PCIeFwConn *c = opaque;
    const char *peer = c->role == PCIEFW_ROLE_HOST ? "endpoint" : "host";
    const char *text;

    if (m->body_case == PCIEFW__MESSAGE__BODY_GOODBYE) {
        text = m->goodbye->text;
        pciefw_conn_close(c, "%s said goodbye (%s: %s)", peer,
                          conn_enum_name(&pciefw__goodbye_reason__descriptor,
                                         m->goodbye->reason),
                          text && *text ? text : "no reason given");
    } else {
        text = m->error->text;
        pciefw_conn_close(c, "%s reported an error (%s: %s)", peer,
                          conn_enum_name(&pciefw__error_code__descriptor,
                                         m->error->code),
                          text && *text ? text : "no reason given");
    }
}

static void conn_hello_timeout(void *opaque)
{
    PCIeFwConn *c = opaque;

    if (c->state == CONN_HANDSHAKE || c->state == CONN_HELLO) {
        pciefw_conn_protocol_error(c, PCIEFW__ERROR_CODE__ERROR_PROTOCOL,
                                   "no hello from the %s within %u ms",
                                   c->role == PCIEFW_ROLE_HOST ? "endpoint" :
                                   "host", c->timeout_ms);
    }
}

void pciefw_conn_start(PCIeFwConn *c, int fd, PCIeFwStream *st,
                       const struct pf_hello_params *hello, const char *what)
{
    size_t mark;

    g_assert(c->state == CONN_DOWN);
    c->fd = fd;
    c->stream = st;
    st->keep_in_fds = c->role == PCIEFW_ROLE_ENDPOINT;
    c->hello = *hello;
    if (conn_can_offer_rings(c, fd)) {
        c->hello.features |= PCIEFW_FEATURE_SHM_RINGS |
            (c->offer_records ? PCIEFW_FEATURE_REG_RECORDS : 0);
    }
    c->draining = false;
    c->records = false;
    c->next_tag = 1;
    if (c->rx_ready) {
        pf_rx_free(&c->rx);
    }
    pf_rx_init(&c->rx, &c->rx_handlers, c,
               c->role == PCIEFW_ROLE_HOST ? PF_DIR_TO_HOST :
               PF_DIR_TO_ENDPOINT, &c->hello, c->trace);
    c->rx_ready = true;
    pf_buf_clear(&c->out);
    if (c->trace) {
        g_autofree char *text = g_strdup_printf("session %u: %s",
                                                ++c->sessions, what);

        /* Spec 6: one file spans sessions; mark where each begins. */
        pf_trace_write_session(c->trace, pf_now_ns(), text);
    }
    c->state = CONN_HANDSHAKE;
    c->handshake_wants_write = true;    /* a TLS client speaks first */
    timer_mod(c->hello_timer, pciefw_conn_deadline(c));
    mark = pciefw_conn_mark(c);
    if (!pciefw_conn_queued(c, mark, pf_put_hello(&c->out, &c->hello),
                            "hello")) {
        return;
    }
    conn_handshake_step(c);
    conn_update_watch(c);
}

/* ---------------------------------------------------------------------- */
/* The shared-memory rings (spec 11.1)                                     */

/* Fds must travel (a UNIX socket), and TLS would be bypassed. */
static bool conn_can_offer_rings(PCIeFwConn *c, int fd)
{
    struct sockaddr_storage addr;
    socklen_t len = sizeof(addr);

    return c->offer_rings && !c->creds &&
           getsockname(fd, (struct sockaddr *)&addr, &len) == 0 &&
           addr.ss_family == AF_UNIX;
}

/*
 * Move the session to @st (the rings) once everything queued has left
 * by the old stream; fds received so far go along.  False (and the
 * connection failed) if the queue could not be sent.
 */
static bool conn_switch_stream(PCIeFwConn *c, PCIeFwStream *st)
{
    PCIeFwStream *old = c->stream;

    /* Everything so far leaves by the socket, before the switch. */
    while (!pf_buf_empty(&c->out)) {
        ssize_t n = old->ops->send(old, pf_buf_peek(&c->out),
                                   pf_buf_used(&c->out));

        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            pciefw_stream_free(st);
            pciefw_conn_close(c, "cannot finish sending on the socket "
                              "before the switch to the rings: %s",
                              n < 0 ? strerror(errno) : "nothing sent");
            return false;
        }
        pf_buf_consume(&c->out, n);
    }
    st->keep_in_fds = old->keep_in_fds;
    st->in_fds = old->in_fds;
    old->in_fds.n = 0;
    old->ops->set_handlers(old, NULL, NULL, false);
    pciefw_stream_free(old);
    c->stream = st;
    /* Spec 11.7: records beside the frames, from the next bytes on. */
    c->records = c->rx.session.features & PCIEFW_FEATURE_REG_RECORDS;
    if (c->records) {
        pf_rx_take_records(&c->rx);
    }
    if (c->trace) {
        pf_trace_write_note(c->trace, pf_now_ns(), conn_out_dir(c),
                            "session continues over shared-memory rings");
    }
    conn_update_watch(c);
    return true;
}

/*
 * The host's offer (11.1): RingSetup, its first message after the
 * description, with the region and both doorbells.  False if not
 * offered: the socket serves.
 */
static bool conn_propose_rings(PCIeFwConn *c)
{
    int fds[PCIEFW_RING_SETUP_FDS];
    Error *err = NULL;
    uint64_t size;
    size_t mark;

    if (!(c->rx.session.features & PCIEFW_FEATURE_SHM_RINGS)) {
        return false;
    }
    c->rings_proposed = pciefw_stream_ring_host(c->fd, PF_RING_DEFAULT_BYTES,
                                                fds, &size, &err);
    if (!c->rings_proposed) {
        /* Reported once; the socket serves as before. */
        warn_report_err(err);
        return false;
    }
    mark = pciefw_conn_mark(c);
    if (!pciefw_conn_attach_fds(c, fds, PCIEFW_RING_SETUP_FDS)) {
        pciefw_conn_close(c, "cannot pass the rings to the endpoint: %s",
                          strerror(errno));
        return true;
    }
    if (pciefw_conn_queued(c, mark, pf_put_ring_setup(&c->out, size),
                           "ring_setup")) {
        pciefw_conn_flush(c);
    }
    return true;
}

static void conn_settled(PCIeFwConn *c)
{
    if (c->ops->settled) {
        c->ops->settled(c->opaque);
    }
}

void pciefw_conn_settle(PCIeFwConn *c)
{
    g_assert(c->role == PCIEFW_ROLE_HOST);
    if (!conn_propose_rings(c)) {
        conn_settled(c);
    }
}

/*
 * The endpoint answered RingSetup: accepted, both directions move to the
 * rings and its RingReady was its last frame on the socket (conn_take
 * refuses anything after it); refused, the socket serves.
 */
static int conn_on_ring_ready(void *opaque, const PfMessage *m, char *err,
                              size_t errlen)
{
    PCIeFwConn *c = opaque;

    if (!c->rings_proposed) {
        snprintf(err, errlen, "ring_ready without a ring_setup");
        return PF_ERR_UNEXPECTED;
    }
    if (!m->ring_ready->accepted) {
        trace_pciefw_rings_refused(m->ring_ready->reason);
        g_clear_pointer(&c->rings_proposed, pciefw_stream_free);
        conn_settled(c);
        return PF_OK;
    }
    if (conn_switch_stream(c, g_steal_pointer(&c->rings_proposed))) {
        conn_settled(c);
    }
    return PF_RX_PAUSE;
}

/*
 * RingSetup (11.1), the endpoint's side: map the host's region and answer
 * on the socket; accepted, that answer is our last frame there and both
 * directions move to the rings.  A region we cannot use is refused: the
 * socket serves.
 */
static int conn_on_ring_setup(void *opaque, const PfMessage *m, char *err,
                              size_t errlen)
{
    PCIeFwConn *c = opaque;
    int fds[PCIEFW_RING_SETUP_FDS];
    PCIeFwStream *st;
    Error *local_err = NULL;
    size_t mark;

    if (!(c->rx.session.features & PCIEFW_FEATURE_SHM_RINGS) ||
        !c->ring_setup_allowed) {
        snprintf(err, errlen, "ring_setup without the shm rings feature, "
                 "not first after the description, or a second one");
        return PF_ERR_UNEXPECTED;
    }
    c->ring_setup_allowed = false;
    if (!pciefw_conn_take_fds(c, fds, PCIEFW_RING_SETUP_FDS)) {
        snprintf(err, errlen, "ring_setup without its %u fds",
                 PCIEFW_RING_SETUP_FDS);
        return PF_ERR_INVALID;
    }
    st = pciefw_stream_ring_endpoint(c->fd, fds, m->ring_setup->region_size,
                                     &local_err);
    mark = pciefw_conn_mark(c);
    if (!pciefw_conn_queued(c, mark,
                            pf_put_ring_ready(&c->out, st != NULL, st ? NULL :
                                              error_get_pretty(local_err)),
                            "ring_ready")) {
        pciefw_stream_free(st);
        error_free(local_err);
        return PF_RX_PAUSE;
    }
    if (!st) {
        warn_report("%s: shared-memory rings refused, staying on the "
                    "socket: %s", c->name, error_get_pretty(local_err));
        error_free(local_err);
        return PF_OK;
    }
    conn_switch_stream(c, st);
    return PF_RX_PAUSE;
}

/* ---------------------------------------------------------------------- */
/* Life cycle                                                              */

static bool conn_open_trace(PCIeFwConn *c, const PCIeFwConnConfig *conf,
                            const char *name, Error **errp)
{
    g_autofree char *recorder = g_strdup_printf("qemu %s " QEMU_VERSION, name);
    char err[256];

    if (!conf->trace_path) {
        return true;
    }
    c->trace = pf_trace_create(conf->trace_path, recorder, err, sizeof(err));
    if (!c->trace) {
        error_setg(errp, "%s: cannot create trace file '%s': %s", name,
                   conf->trace_path, err);
        return false;
    }
    /* Rotated pieces: FILE.1 .. FILE.4 (docs/protocol.md section 6). */
    pf_trace_set_limit(c->trace, conf->trace_limit, 4);
    return true;
}

PCIeFwConn *pciefw_conn_new(DeviceState *dev, const char *name,
                            PCIeFwRole role, const PCIeFwConnOps *ops,
                            void *opaque, const PCIeFwConnConfig *conf,
                            Error **errp)
{
    PCIeFwConn *c;

    if (!conf->timeout_ms || conf->timeout_ms > PCIEFW_CONN_MAX_TIMEOUT_MS) {
        error_setg(errp, "%s: timeout must be between 1 and %u ms (a guest "
                   "access waits for the peer at most that long, holding "
                   "QEMU's main lock)", name, PCIEFW_CONN_MAX_TIMEOUT_MS);
        return NULL;
    }
    c = g_new0(PCIeFwConn, 1);
    c->fd = -1;
    if (conf->tls_creds) {
        c->creds = pciefw_tls_creds_find(conf->tls_creds,
                                         role == PCIEFW_ROLE_ENDPOINT, name,
                                         errp);
    }
    if ((conf->tls_creds && !c->creds) ||
        !conn_open_trace(c, conf, name, errp)) {
        if (c->creds) {
            object_unref(OBJECT(c->creds));
        }
        g_free(c);
        return NULL;
    }
    c->dev = dev;
    c->role = role;
    c->ops = ops;
    c->opaque = opaque;
    c->name = g_strdup(name);
    c->timeout_ms = conf->timeout_ms;
    c->offer_rings = conf->shm_rings;
    c->offer_records = conf->reg_records;
    c->peer = g_strdup(role == PCIEFW_ROLE_HOST ? "endpoint" : "host");
    for (unsigned k = 0; k < PF_MSG_KINDS; k++) {
        if (ops->on[k]) {
            c->rx_handlers.on[k] = conn_on_device_message;
        }
    }
    c->rx_handlers.on[PCIEFW__MESSAGE__BODY_COMPLETION] = conn_on_completion;
    if (role == PCIEFW_ROLE_HOST) {
        c->rx_handlers.on[PCIEFW__MESSAGE__BODY_RING_READY] =
            conn_on_ring_ready;
    } else {
        c->rx_handlers.on[PCIEFW__MESSAGE__BODY_RING_SETUP] =
            conn_on_ring_setup;
    }
    c->rx_handlers.hello = conn_on_hello;
    c->rx_handlers.ended = conn_on_ended;
    pf_buf_init(&c->out);
    c->rxbuf = g_malloc(PCIEFW_CONN_RX_CHUNK);
    c->input_bh = aio_bh_new_guarded(qemu_get_aio_context(), conn_input_bh, c,
                                     &dev->mem_reentrancy_guard);
    c->hello_timer = timer_new_ms(QEMU_CLOCK_REALTIME, conn_hello_timeout, c);
    return c;
}

void pciefw_conn_free(PCIeFwConn *c)
{
    if (!c) {
        return;
    }
    conn_drop(c);
    conn_fail_requests(c);
    if (c->rx_ready) {
        pf_rx_free(&c->rx);
    }
    qemu_bh_delete(c->input_bh);
    timer_free(c->hello_timer);
    pf_buf_free(&c->out);
    g_free(c->rxbuf);
    g_free(c->peer);
    g_free(c->name);
    if (c->trace) {
        pf_trace_close(c->trace);
    }
    if (c->creds) {
        object_unref(OBJECT(c->creds));
    }
    g_free(c);
}

struct pf_trace_writer *pciefw_conn_trace(PCIeFwConn *c)
{
    return c->trace;
}

QCryptoTLSCreds *pciefw_conn_creds(PCIeFwConn *c)
{
    return c->creds;
}

/* The connection's properties, with offsets in a PCIeFwConnConfig. */
static const Property pciefw_conn_props[] = {
    DEFINE_PROP_UINT32("timeout", PCIeFwConnConfig, timeout_ms,
                       PCIEFW_CONN_DEFAULT_TIMEOUT_MS),
    DEFINE_PROP_STRING("trace", PCIeFwConnConfig, trace_path),
    DEFINE_PROP_SIZE("trace-limit", PCIeFwConnConfig, trace_limit, 0),
    DEFINE_PROP_STRING("tls-creds", PCIeFwConnConfig, tls_creds),
    DEFINE_PROP_BOOL("guest-memory", PCIeFwConnConfig, guest_memory, true),
    DEFINE_PROP_BOOL("shm-rings", PCIeFwConnConfig, shm_rings, true),
};

/* Only a host sends register accesses. */
static const Property pciefw_conn_host_props[] = {
    DEFINE_PROP_BOOL("reg-records", PCIeFwConnConfig, reg_records, true),
};

static void pciefw_conn_describe_properties(ObjectClass *klass,
                                            PCIeFwRole role)
{
    bool host = role == PCIEFW_ROLE_HOST;

    object_class_property_set_description(klass, "timeout", host ?
        "completion timeout in milliseconds (1-60000); the endpoint is "
        "considered dead when a request is not answered in time, and a "
        "guest access waits at most this long" :
        "ms an outbound window read waits for the host's completion, "
        "and a connected host for the other's hello (1-60000)");
    object_class_property_set_description(klass, "trace",
        "file to record every message of the session in (pcapng)");
    object_class_property_set_description(klass, "trace-limit",
        "rotate the capture file at this size, keeping FILE.1 to FILE.4 "
        "(0: unbounded)");
    object_class_property_set_description(klass, "tls-creds", host ?
        "id of a tls-creds-x509 object (endpoint=client): TLS to a TCP "
        "endpoint started with --tls-creds" :
        "id of a tls-creds-x509 object (endpoint=server): TLS on TCP");
    object_class_property_set_description(klass, "guest-memory", host ?
        "on a UNIX socket, share guest RAM with the endpoint: its DMA "
        "becomes copies (docs/protocol.md 10)" :
        "on a UNIX socket, let the host share its guest RAM: outbound "
        "accesses become copies (docs/protocol.md 10)");
    object_class_property_set_description(klass, "shm-rings", host ?
        "on a UNIX socket, move the session to shared-memory rings "
        "(docs/protocol.md 11)" :
        "on a UNIX socket, accept the host's shared-memory rings "
        "(docs/protocol.md 11)");
    if (host) {
        object_class_property_set_description(klass, "reg-records",
            "on the rings, send register accesses as binary records "
            "rather than protobuf messages (protocol 1.4, "
            "docs/protocol.md 11.7)");
    }
}

void pciefw_conn_set_peer(PCIeFwConn *c, const char *peer)
{
    g_free(c->peer);
    c->peer = g_strdup(peer);
}

bool pciefw_conn_up(PCIeFwConn *c)
{
    return c->state == CONN_SESSION;
}

bool pciefw_conn_alive(PCIeFwConn *c)
{
    return c->state != CONN_DOWN;
}

const struct pf_session *pciefw_conn_session(PCIeFwConn *c)
{
    return &c->rx.session;
}

bool pciefw_conn_dispatching(PCIeFwConn *c)
{
    return c->dispatching;
}

bool pciefw_conn_records(PCIeFwConn *c)
{
    return c->records && c->state == CONN_SESSION;
}

void pciefw_conn_class_props(ObjectClass *klass, PCIeFwRole role,
                             const Property *props, size_t n_props,
                             size_t conf_offset)
{
    size_t n_conn = ARRAY_SIZE(pciefw_conn_props);
    size_t n_host = role == PCIEFW_ROLE_HOST ?
                    ARRAY_SIZE(pciefw_conn_host_props) : 0;
    /* Lives as long as the class: for ever. */
    Property *all = g_new(Property, n_props + n_conn + n_host);

    memcpy(all, props, n_props * sizeof(*props));
    memcpy(all + n_props, pciefw_conn_props, sizeof(pciefw_conn_props));
    memcpy(all + n_props + n_conn, pciefw_conn_host_props,
           n_host * sizeof(*pciefw_conn_host_props));
    n_conn += n_host;
    for (size_t i = 0; i < n_conn; i++) {
        all[n_props + i].offset += conf_offset;
    }
    device_class_set_props_n(DEVICE_CLASS(klass), all, n_props + n_conn);
    pciefw_conn_describe_properties(klass, role);
}
