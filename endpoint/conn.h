/*
 * The endpoint's connection to its host: the bottom of the endpoint, below
 * the device framework (device.c) and the listeners (server.c).
 *
 * What the host sends goes through the session's receiving half
 * (protocol/rx.h) to the handlers of whoever serves it; what they send
 * goes out through a non-blocking output queue, recorded in the trace.
 * The connection also owns what a connection is beside its messages: our
 * Hello (spec 2.1), the stream's own handshake (TLS), the offer of the
 * shared-memory rings and the switch to them (11.1), throttling above PF_OUT_QUEUE_MAX (1.3), the
 * requests held behind a deferred read (5.3), protocol errors (7.1) and
 * closing (7.2).  It calls nothing above it: it is given its handlers.
 */
#ifndef PCIEFW_CONN_H
#define PCIEFW_CONN_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"
#include "handshake.h"
#include "rx.h"
#include "trace.h"

struct ev_loop;
struct pf_conn;
struct pf_stream;

/* Who serves the host (device.c): its side of the session. */
struct pf_conn_handlers {
	/*
	 * The host's messages after the handshake, by kind (rx.h): a kind
	 * without a handler is ERROR_UNEXPECTED.  An error a handler returns
	 * is the host's protocol error: it is told, and the connection closes.
	 */
	pf_rx_fn on[PF_MSG_KINDS];
	/*
	 * The Hello is agreed (spec 2.2): @c is served from now on.  PF_OK, or
	 * a PF_ERR_* with @err refusing the session.
	 */
	int (*attach)(void *opaque, struct pf_conn *c, const struct pf_session *s,
		      char *err, size_t errlen);
	/* The host attached is gone; the connection is about to be freed. */
	void (*detach)(void *opaque);
};

struct pf_conn_config {
	struct ev_loop *loop;
	int fd;                         /* the connected socket, closed with it */
	struct pf_stream *st;           /* over @fd: the connection's from now */
	const char *name;               /* "connection N", for the log */
	struct pf_hello_params hello;   /* ours, as offered on this socket */
	/*
	 * Offer the shared-memory rings (spec 11.1), and binary register
	 * records with them (11.7): added to @hello where @fd is a UNIX
	 * socket and @st has no TLS.
	 */
	bool shm_rings, reg_records;
	struct pf_trace_writer *trace;  /* may be NULL */
	const struct pf_conn_handlers *h;
	void *opaque;                   /* @h's */
	/* The connection closed and is about to be freed. */
	void (*closed)(void *owner, struct pf_conn *c);
	void *owner;
};

/*
 * Our Hello goes out (after the stream's handshake, if it has one) and the
 * host is read from the loop.  NULL only without memory (nothing taken).
 */
struct pf_conn *pf_conn_new(const struct pf_conn_config *cfg);

/*
 * Read and handle up to @max_reads chunks now.  With @to_eof the reading
 * goes on until the stream has nothing more, so that a host that hung up
 * is seen to have done so.  Nothing during the stream's handshake.
 */
void pf_conn_read(struct pf_conn *c, int max_reads, bool to_eof);
/* Failed or ended: it closes from the loop (or at pf_conn_close). */
bool pf_conn_dead(const struct pf_conn *c);
/*
 * The host was given @seconds to send its Hello, TLS handshake included
 * (spec 2.1): a connection still waiting for it is failed.
 */
void pf_conn_hello_overdue(struct pf_conn *c, double seconds);
/* Tell the host Goodbye with @why (spec 7.2), then close. */
void pf_conn_goodbye(struct pf_conn *c, const char *why);
/* Close now: detach, send what can be sent, free. */
void pf_conn_close(struct pf_conn *c);

/* ---- For whoever serves the host ---- */

/*
 * Queue messages for the host: put them into the buffer returned, then
 * end.  They are recorded in the trace and sent (at once, or at the end
 * of the batch being handled).
 */
struct pf_buf *pf_conn_out_begin(struct pf_conn *c, size_t *mark);
void pf_conn_out_end(struct pf_conn *c, size_t mark);
/*
 * Binary register records are on (spec 11.7: negotiated, and the session
 * on the rings): completions of up to 8 bytes may go as records.
 */
bool pf_conn_records(const struct pf_conn *c);
/* Bytes queued for the host and not yet sent. */
size_t pf_conn_out_queued(const struct pf_conn *c);
/* Claim the @n oldest fds the host passed (spec 10.2). */
bool pf_conn_take_fds(struct pf_conn *c, int *out, unsigned n);
const char *pf_conn_name(const struct pf_conn *c);
/*
 * Record the frames in @b (not sent) in the trace, each followed by a
 * note @note (spec 10.5); nothing without a trace.
 */
bool pf_conn_tracing(const struct pf_conn *c);
void pf_conn_trace_frames(struct pf_conn *c, int dir, const struct pf_buf *b,
			  const char *note);
/* A note record (spec 6) about the last record, in direction @dir. */
void pf_conn_trace_note(struct pf_conn *c, int dir, const char *note);
/*
 * A read is deferred (spec 5.3): from now on the host's requests wait,
 * in order; its DMA completions and the rest are still handled.
 */
void pf_conn_hold(struct pf_conn *c);
/* It completed: the requests held are handled, until one holds again. */
void pf_conn_release(struct pf_conn *c);

#endif /* PCIEFW_CONN_H */
