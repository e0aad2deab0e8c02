/*
 * pciefw: one protocol connection, for either role -- the host (the
 * pciefw device, which connects to an endpoint) or the endpoint
 * (pciefw-epc, which serves a host).  The connection owns the byte stream
 * and its readiness, the session's input (protocol/rx.h: framing,
 * checks, trace, the Hellos, Goodbye and Error), the output queue and its
 * limits, the non-posted requests this side has outstanding and their
 * completions, the waits of a vCPU that needs one, and the move to the
 * shared-memory rings after the description (spec 11.1: RingSetup and
 * RingReady, in either role).  A device gives it its message handlers,
 * says whether it offers the rings (shm-rings), and is told when the
 * session's transport is settled and when the connection ends; it never
 * sees the transport under it.
 *
 * The rules it keeps, stated once here:
 * - a side that waits keeps reading (spec 5.3): every wait serves what the
 *   peer sends, in order, and ends at its deadline whatever arrives;
 * - the device's own accesses while its peer's messages are handled are
 *   refused (re-entry: a DMA or MSI landing on the device itself);
 * - queued output is bounded: posted messages beyond the high water wait
 *   for the peer to read, and a peer that leaves more than the limit
 *   unread breaks the connection (spec 7.2);
 * - when a send fails, the peer's last words (an Error, a Goodbye) are
 *   read before the failure is reported.
 *
 * Copyright (c) 2025 The pciefw authors
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#ifndef HW_PCIEFW_CONN_H
#define HW_PCIEFW_CONN_H

#include "hw/qdev-core.h"
#include "hw/qdev-properties.h"
#include "pciefw-stream.h"
#include "protocol/buf.h"
#include "protocol/rx.h"
#include "protocol/trace.h"

/* Posted output queued beyond this waits for the peer to read. */
#define PCIEFW_CONN_HIGH_WATER      (1024 * 1024)
/* Output a peer may leave unread before the connection fails (7.2). */
#define PCIEFW_CONN_TX_LIMIT        (32 * 1024 * 1024)
/* Non-posted requests one side may have outstanding at once. */
#define PCIEFW_CONN_MAX_REQUESTS    64

typedef enum PCIeFwRole {
    PCIEFW_ROLE_HOST,
    PCIEFW_ROLE_ENDPOINT,
} PCIeFwRole;

typedef struct PCIeFwConn PCIeFwConn;

/* What a device's properties say of its connection, in either role. */
typedef struct PCIeFwConnConfig {
    uint32_t timeout_ms;        /* a request's completion, the peer's Hello */
    char *trace_path;           /* record every message (spec 6) */
    uint64_t trace_limit;       /* rotate the trace at this size */
    char *tls_creds;            /* a tls-creds-x509 object's id (1.5) */
    bool guest_memory;          /* offer spec 10 on a UNIX socket */
    bool shm_rings;             /* offer spec 11 on a UNIX socket */
    bool reg_records;           /* and 11.7 with it (the host role) */
} PCIeFwConnConfig;

#define PCIEFW_CONN_DEFAULT_TIMEOUT_MS  5000
/* A forwarded access holds the BQL while it waits: bound that stall. */
#define PCIEFW_CONN_MAX_TIMEOUT_MS      60000

/*
 * Give a device class of @role its own @props and the connection's
 * (timeout, trace, trace-limit, tls-creds, guest-memory, shm-rings, and
 * for a host reg-records, with their descriptions), read into the
 * PCIeFwConnConfig at @conf_offset of its state.
 */
void pciefw_conn_class_props(ObjectClass *klass, PCIeFwRole role,
                             const Property *props, size_t n_props,
                             size_t conf_offset);

typedef struct PCIeFwConnOps {
    /* The messages the device takes, by kind; Completion is ours. */
    pf_rx_fn on[PF_MSG_KINDS];
    /* The Hellos agreed into @s (2.2): PF_OK or a PF_ERR_* refusing. */
    int (*session)(void *opaque, const struct pf_session *s, char *err,
                   size_t errlen);
    /*
     * The connection is gone (the peer closed, said Goodbye or Error,
     * broke the protocol, timed out, or the device closed it): @why for
     * the device's one report.  Outstanding requests have failed by then.
     * It may run inside a message handler: a new session is not started
     * from here (a timer or bottom half does that).
     */
    void (*closed)(void *opaque, const char *why);
    /* Optional: the output queue is empty (fds may go with a frame). */
    void (*out_idle)(void *opaque);
    /*
     * Optional: after pciefw_conn_settle(), the session's transport is
     * settled -- moved to the rings, or staying where it is -- and the
     * session's requests may begin.
     */
    void (*settled)(void *opaque);
} PCIeFwConnOps;

/* A non-posted request of ours and, once done, its completion. */
typedef struct PCIeFwRequest {
    uint32_t tag;               /* set by pciefw_conn_request() */
    uint32_t size;              /* bytes a successful completion carries */
    uint8_t *dest;              /* where they go */
    bool done;
    int status;                 /* Pciefw__Status, or -1: no completion */
    /* Optional: called once done; NULL: a waiter looks at @done. */
    void (*complete)(struct PCIeFwRequest *req, void *opaque);
    void *opaque;
} PCIeFwRequest;

/*
 * A connection for @dev (named @name in errors) as @conf says: its trace
 * file is created and its TLS credentials looked up here.  NULL with
 * @errp set if they cannot be.
 */
PCIeFwConn *pciefw_conn_new(DeviceState *dev, const char *name,
                            PCIeFwRole role, const PCIeFwConnOps *ops,
                            void *opaque, const PCIeFwConnConfig *conf,
                            Error **errp);
void pciefw_conn_free(PCIeFwConn *c);

/* The trace file (NULL: none), for a device's own note records. */
struct pf_trace_writer *pciefw_conn_trace(PCIeFwConn *c);
/* The TLS credentials (NULL: plain text). */
QCryptoTLSCreds *pciefw_conn_creds(PCIeFwConn *c);
/* Name the peer in reports, e.g. "unix:/tmp/ep.sock". */
void pciefw_conn_set_peer(PCIeFwConn *c, const char *peer);

/*
 * Start a session on the connected socket @fd (the connection owns it
 * from here) over @st: the transport's handshake, then our Hello, then
 * the peer's within the timeout.  @what describes the session in the
 * trace ("connected to ...").  To the device's @hello the connection
 * adds the rings (and binary register records with them) when its
 * configuration offers them and @fd is a plain UNIX socket (spec 11.1).
 */
void pciefw_conn_start(PCIeFwConn *c, int fd, PCIeFwStream *st,
                       const struct pf_hello_params *hello, const char *what);
/* Connected, session agreed, not failed. */
bool pciefw_conn_up(PCIeFwConn *c);
/* Connected at all (perhaps still in the handshake). */
bool pciefw_conn_alive(PCIeFwConn *c);
const struct pf_session *pciefw_conn_session(PCIeFwConn *c);
/* The peer's messages are being handled: a device access now re-enters. */
bool pciefw_conn_dispatching(PCIeFwConn *c);
/*
 * Binary register records are on (spec 11.7: negotiated, and the session
 * on the rings): register accesses of up to 8 bytes may go as records.
 */
bool pciefw_conn_records(PCIeFwConn *c);

/*
 * Output.  A device appends frames with pf_put_*() to pciefw_conn_out()
 * after pciefw_conn_mark(); pciefw_conn_queued() then records them in the
 * trace and checks the limits (false: the connection failed).
 */
struct pf_buf *pciefw_conn_out(PCIeFwConn *c);
size_t pciefw_conn_mark(PCIeFwConn *c);
bool pciefw_conn_queued(PCIeFwConn *c, size_t mark, int r, const char *kind);
/* Send what the transport takes now; false if the connection failed. */
bool pciefw_conn_flush(PCIeFwConn *c);
/* A posted message was queued: send, and bound the backlog (a wait). */
void pciefw_conn_posted(PCIeFwConn *c);
/* Pass @fds with the next bytes sent (the next frame queued). */
bool pciefw_conn_attach_fds(PCIeFwConn *c, const int *fds, unsigned n);
/* Claim the @n oldest fds the peer passed (spec 10.2). */
bool pciefw_conn_take_fds(PCIeFwConn *c, int *out, unsigned n);

/*
 * Requests.  pciefw_conn_request() gives @req its tag (the device then
 * queues the message that carries it) and keeps it until its completion
 * comes or the connection ends; false if there is no session or too many
 * are outstanding.  pciefw_conn_wait() serves the connection until @req
 * is done or @deadline (QEMU_CLOCK_REALTIME, ms) passes -- which ends the
 * connection -- and returns its status, or -1.
 */
bool pciefw_conn_request(PCIeFwConn *c, PCIeFwRequest *req);
int pciefw_conn_wait(PCIeFwConn *c, PCIeFwRequest *req, const char *what,
                     int64_t deadline);
/* Serve the connection until @done(@arg) or @deadline; see above. */
bool pciefw_conn_pump(PCIeFwConn *c, bool (*done)(void *arg), void *arg,
                      const char *what, int64_t deadline);
/* A deadline @timeout_ms from now. */
int64_t pciefw_conn_deadline(PCIeFwConn *c);

/*
 * The host accepted the endpoint's description: settle the session's
 * transport before any request (spec 11.1).  Where both sides offered
 * the rings, they are proposed and ops->settled() follows the
 * endpoint's answer; otherwise it is called from here.  (The endpoint
 * role needs no call: it answers the host's proposal by itself.)
 */
void pciefw_conn_settle(PCIeFwConn *c);

/* Tell the peer why (Error{code}), then close (spec 7.1). */
void G_GNUC_PRINTF(3, 4)
pciefw_conn_protocol_error(PCIeFwConn *c, Pciefw__ErrorCode code,
                           const char *fmt, ...);
/* Say Goodbye (best effort), then close quietly: the device chose to. */
void pciefw_conn_goodbye(PCIeFwConn *c, Pciefw__GoodbyeReason reason,
                         const char *text);
/* Close now; ops->closed() hears @why (unless @quiet). */
void G_GNUC_PRINTF(2, 3)
pciefw_conn_close(PCIeFwConn *c, const char *fmt, ...);

#endif
