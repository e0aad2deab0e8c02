/* The receiving half of a session: rx.h, spec 1.2, 2, 3.3, 6, 7. */
#include "rx.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "msg.h"
#include "regrec.h"

int pf_rx_init(struct pf_rx *rx, const struct pf_rx_handlers *h, void *opaque,
	       enum pf_dir dir, const struct pf_hello_params *hello,
	       struct pf_trace_writer *trace)
{
	memset(rx, 0, sizeof(*rx));
	rx->h = h;
	rx->opaque = opaque;
	rx->dir = dir;
	rx->peer = dir == PF_DIR_TO_ENDPOINT ? "host" : "endpoint";
	rx->hello = hello;
	rx->trace = trace;
	pf_codec_init(&rx->codec);
	/* Without a handshake here, the session's limits are the caller's. */
	return pf_frame_decoder_init(&rx->dec, hello ? PCIEFW_HANDSHAKE_FRAME :
				     PCIEFW_MAX_FRAME(PCIEFW_MAX_PAYLOAD));
}

void pf_rx_free(struct pf_rx *rx)
{
	pf_frame_decoder_free(&rx->dec);
	pf_codec_free(&rx->codec);
}

static int fail(struct pf_rx *rx, int r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* A protocol error: what the peer is to be told (7.1), and the end. */
static int fail(struct pf_rx *rx, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(rx->why, sizeof(rx->why), fmt, ap);
	va_end(ap);
	rx->code = pf_error_code(r);
	rx->ended = true;
	return r;
}

/* Spec 6: a frame refused on its own, length prefix included. */
static void trace_malformed_frame(struct pf_rx *rx, const uint8_t *body,
				  size_t len)
{
	uint8_t raw[PF_TRACE_MAX_MALFORMED];
	size_t n = len < sizeof(raw) - PF_FRAME_HEADER ?
		   len : sizeof(raw) - PF_FRAME_HEADER;

	if (!rx->trace)
		return;
	pf_frame_put_header(raw, (uint32_t)len);
	memcpy(raw + PF_FRAME_HEADER, body, n);
	pf_trace_write_malformed(rx->trace, pf_now_ns(), rx->dir, raw,
				 PF_FRAME_HEADER + n);
}

/* The first message: the peer's Hello, agreed with ours (spec 2). */
static int take_hello(struct pf_rx *rx, const PfMessage *m)
{
	char err[256];
	int r = pf_hello_negotiate(rx->hello, m, &rx->session, err, sizeof(err));

	if (r != PF_OK)
		return fail(rx, r, "%s", err);
	rx->hello_done = true;
	pf_frame_decoder_set_max(&rx->dec,
				 PCIEFW_MAX_FRAME(rx->session.max_payload));
	if (rx->h->hello) {
		r = rx->h->hello(rx->opaque, &rx->session, err, sizeof(err));
		if (r < 0)
			return fail(rx, r, "%s", err);
	}
	return PF_OK;
}

static int dispatch(struct pf_rx *rx, const PfMessage *m)
{
	pf_rx_fn fn = (unsigned)m->body_case < PF_MSG_KINDS ?
		      rx->h->on[m->body_case] : NULL;
	char err[300] = "";
	int r;

	if (m->body_case == PCIEFW__MESSAGE__BODY_HELLO && rx->hello)
		return fail(rx, PF_ERR_UNEXPECTED, "second hello from the %s",
			    rx->peer);
	if (!fn)
		return fail(rx, PF_ERR_UNEXPECTED, "unexpected %s from the %s",
			    pf_msg_kind_name(m->body_case), rx->peer);
	r = fn(rx->opaque, m, err, sizeof(err));
	if (r < 0)
		return fail(rx, r, "%s", err[0] ? err : pf_strerror(r));
	return r;
}

void pf_rx_set_handlers(struct pf_rx *rx, const struct pf_rx_handlers *h)
{
	rx->h = h;
}

void pf_rx_set_max_payload(struct pf_rx *rx, uint32_t max_payload)
{
	rx->handshake_limits = !max_payload;
	rx->hello_done = max_payload != 0;
	rx->session.max_payload = max_payload;
	pf_frame_decoder_set_max(&rx->dec, max_payload ?
				 PCIEFW_MAX_FRAME(max_payload) :
				 PCIEFW_HANDSHAKE_FRAME);
}

/* The largest payload a message may carry now (spec 1.3). */
static uint32_t max_payload(const struct pf_rx *rx)
{
	if (rx->hello_done)
		return rx->session.max_payload;
	return rx->hello || rx->handshake_limits ? PCIEFW_HANDSHAKE_FRAME :
	       PCIEFW_MAX_PAYLOAD;
}

int pf_rx_frame(struct pf_rx *rx, const uint8_t *body, size_t len)
{
	uint32_t max = max_payload(rx);
	PfMessage *m;
	char err[256];
	int r;

	if (rx->ended)
		return PF_EOF;
	r = pf_codec_decode(&rx->codec, body, len, &m, err, sizeof(err));
	if (r == PF_OK)
		r = pf_msg_validate(m, max, err, sizeof(err));
	if (r != PF_OK) {
		trace_malformed_frame(rx, body, len);
		return fail(rx, r, "%s", err);
	}
	if (rx->trace)
		pf_trace_write(rx->trace, pf_now_ns(), rx->dir, body, len);
	/* Allowed in every state, even first (2.1, 7.2). */
	if (m->body_case == PCIEFW__MESSAGE__BODY_GOODBYE ||
	    m->body_case == PCIEFW__MESSAGE__BODY_ERROR) {
		rx->ended = true;
		if (rx->h->ended)
			rx->h->ended(rx->opaque, m);
		return PF_EOF;
	}
	if (rx->hello && !rx->hello_done)
		return take_hello(rx, m);
	rx->body = body;
	rx->body_len = len;
	r = dispatch(rx, m);
	rx->body = NULL;
	rx->body_len = 0;
	return r;
}

void pf_rx_take_records(struct pf_rx *rx)
{
	pf_frame_decoder_records(&rx->dec, true);
}

/*
 * Spec 11.7: requests travel as records only to the endpoint, completions
 * only to the host.
 */
static bool record_direction_ok(const struct pf_rx *rx, int kind)
{
	return pf_regrec_is_request(kind) == (rx->dir == PF_DIR_TO_ENDPOINT);
}

int pf_rx_record(struct pf_rx *rx, const uint8_t *rec)
{
	struct pf_regrec_msg msg;
	char err[256];
	int r;

	if (rx->ended)
		return PF_EOF;
	/* The record, then the message it stands for, on their own (7.1). */
	r = pf_regrec_decode(rec, &msg, err, sizeof(err));
	if (r == PF_OK)
		r = pf_msg_validate(&msg.m, max_payload(rx), err, sizeof(err));
	if (r != PF_OK) {
		if (rx->trace)
			pf_trace_write_malformed(rx->trace, pf_now_ns(), rx->dir,
						 rec, PF_REGREC_SIZE);
		return fail(rx, r, "%s", err);
	}
	if (rx->trace)
		pf_trace_write_regrec(rx->trace, pf_now_ns(), rx->dir, rec);
	if (!record_direction_ok(rx, msg.m.body_case))
		return fail(rx, PF_ERR_UNEXPECTED, "a %s as a binary record from "
			    "the %s: records carry requests only to the endpoint "
			    "and completions only to the host (spec 11.7)",
			    pf_msg_kind_name(msg.m.body_case), rx->peer);
	rx->records++;
	rx->record = rec;
	r = dispatch(rx, &msg.m);
	rx->record = NULL;
	return r;
}

int pf_rx_push(struct pf_rx *rx, const uint8_t *p, size_t len, size_t *used)
{
	*used = 0;
	while (len && !rx->ended) {
		const uint8_t *body;
		size_t n, blen;
		int r = pf_frame_decoder_push(&rx->dec, p, len, &n, &body, &blen);

		*used += n;
		if (r == PF_AGAIN)
			return PF_OK;
		if (r < 0) {
			/* Spec 6: the refused prefix and what came with it. */
			if (rx->trace)
				pf_trace_write_malformed(rx->trace, pf_now_ns(),
							 rx->dir, p, len);
			return fail(rx, r, "bad frame: %s", pf_strerror(r));
		}
		p += n;
		len -= n;
		r = rx->dec.record ? pf_rx_record(rx, body) :
		    pf_rx_frame(rx, body, blen);
		if (r != PF_OK)
			return r;
	}
	return rx->ended ? PF_EOF : PF_OK;
}

int pf_rx_finish(const struct pf_rx *rx)
{
	return pf_frame_decoder_finish(&rx->dec);
}
