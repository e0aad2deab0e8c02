/*
 * The receiving half of a pciefw session, shared by every peer -- QEMU's
 * device in either role, the endpoint daemon, its busy refuser, the host
 * library and replay: bytes in, framed (spec 1.2), decoded and checked on
 * their own (1.3, 3.3), recorded in the trace (6), the Hello rule and
 * negotiation (2), Goodbye and Error in any state (7.2), then each message
 * to its owner's handler for its kind.  What differs between the peers is
 * only their handlers.
 *
 * Failures follow spec 7.1: pf_rx_push() returns the PF_ERR_* and leaves
 * the ErrorCode and the text the peer is to be told in rx->code/rx->why;
 * the owner sends that Error and closes.  What could not be taken as a
 * message is recorded as a malformed record first.
 */
#ifndef PCIEFW_RX_H
#define PCIEFW_RX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "codec.h"
#include "frame.h"
#include "handshake.h"
#include "trace.h"

/* One past the highest Message body case (pciefw.proto's oneof). */
#define PF_MSG_KINDS (PCIEFW__MESSAGE__BODY_INTERRUPT_CONFIG + 1)

/*
 * A handler's answer: PF_OK, PF_RX_PAUSE (stop after this message: the
 * rest of the bytes is the owner's, e.g. the stream changed under them),
 * or a negative PF_ERR_* with @err set: a protocol error (7.1).
 */
#define PF_RX_PAUSE 3

typedef int (*pf_rx_fn)(void *opaque, const PfMessage *m, char *err,
			size_t errlen);

struct pf_rx_handlers {
	/*
	 * The messages this side takes after the handshake, by kind; a kind
	 * without a handler is ERROR_UNEXPECTED ("unexpected X from the
	 * host"), which is how direction and state are checked.
	 */
	pf_rx_fn on[PF_MSG_KINDS];
	/*
	 * The peer's Hello agreed with ours into @s (2.2): PF_OK, or a
	 * PF_ERR_* with @err refusing the session.  Optional.
	 */
	int (*hello)(void *opaque, const struct pf_session *s, char *err,
		     size_t errlen);
	/*
	 * The peer said Goodbye or Error (7.2), in any state: the session
	 * ends; pf_rx_push() returns PF_EOF and handles nothing after it.
	 */
	void (*ended)(void *opaque, const PfMessage *m);
};

struct pf_rx {
	const struct pf_rx_handlers *h;
	void *opaque;
	/* Our Hello (the rule of 2.1 applies), or NULL: no handshake here. */
	const struct pf_hello_params *hello;
	struct pf_session session;       /* once hello_done */
	bool hello_done;                 /* (or limits set, without a handshake) */
	bool ended;                      /* a Goodbye/Error came, or we failed */
	enum pf_dir dir;                 /* of what this side receives */
	const char *peer;                /* "host" or "endpoint", for texts */
	struct pf_trace_writer *trace;   /* may be NULL */
	/* No handshake here, but the handshake's limits (pf_rx_set_max_payload). */
	bool handshake_limits;
	struct pf_frame_decoder dec;
	struct pf_codec codec;
	/*
	 * While a handler runs: the frame body its message was decoded from,
	 * for a handler that keeps the frame rather than the message (the
	 * endpoint holds requests behind a deferred read, spec 5.3) -- or,
	 * for a message that came as a binary register record (spec 11.7),
	 * body NULL and @record its PF_REGREC_SIZE bytes.
	 */
	const uint8_t *body;
	size_t body_len;
	const uint8_t *record;
	/* Binary register records taken: how many (spec 11.7). */
	uint64_t records;
	/* After a protocol error: what the peer is to be told. */
	Pciefw__ErrorCode code;
	char why[320];
};

/*
 * @dir: the direction of what we receive (PF_DIR_TO_ENDPOINT for the
 * endpoint's side).  @hello: our Hello parameters, or NULL for a reader
 * that does no handshake (replay, checking traces).  Returns PF_OK or
 * PF_ERR_NOMEM.
 */
int pf_rx_init(struct pf_rx *rx, const struct pf_rx_handlers *h, void *opaque,
	       enum pf_dir dir, const struct pf_hello_params *hello,
	       struct pf_trace_writer *trace);
void pf_rx_free(struct pf_rx *rx);

/*
 * Take up to @len received bytes; every complete message among them is
 * handled, in order.  *@used says how many bytes were taken.  Returns
 * PF_OK (all taken), PF_RX_PAUSE (a handler asked to stop: *@used is
 * where), PF_EOF (the peer ended the session, 7.2), or a PF_ERR_* for a
 * protocol error, with rx->code and rx->why set.  Once it has returned
 * anything but PF_OK or PF_RX_PAUSE, it takes nothing more.
 */
int pf_rx_push(struct pf_rx *rx, const uint8_t *p, size_t len, size_t *used);

/*
 * Handle one whole frame body, as pf_rx_push() does for each frame it
 * gathers: for transports that deliver frames, and for replay.
 */
int pf_rx_frame(struct pf_rx *rx, const uint8_t *body, size_t len);

/*
 * The owner's state changed what it takes (the host library takes only the
 * DeviceDescription until it has come): @h from the next message on.
 */
void pf_rx_set_handlers(struct pf_rx *rx, const struct pf_rx_handlers *h);

/*
 * For a reader without a handshake here (@hello NULL) that agrees the
 * session itself, as replay does (it compares the peer's Hello before it
 * negotiates): from now on frames and payloads within @max_payload, or,
 * with 0, within the handshake's limits (spec 1.3).
 */
void pf_rx_set_max_payload(struct pf_rx *rx, uint32_t max_payload);

/*
 * From now on the stream may carry binary register records between its
 * frames (spec 11.7: the feature negotiated and the session on the
 * rings): each is handled as the message it stands for, by the same
 * handlers, after the same checks, and recorded as that message.
 */
void pf_rx_take_records(struct pf_rx *rx);

/*
 * Handle one binary register record, as pf_rx_push() does for each it
 * gathers (for a caller that holds one, e.g. a request held behind a
 * deferred read).
 */
int pf_rx_record(struct pf_rx *rx, const uint8_t *rec);

/* The stream ended: PF_EOF between frames, PF_ERR_TRUNCATED inside one. */
int pf_rx_finish(const struct pf_rx *rx);

#endif /* PCIEFW_RX_H */
