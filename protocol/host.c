/* The host side of the protocol; see host.h and spec 5. */
#include "host.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "fdpass.h"
#include "host_rings.h"
#include "regrec.h"
#include "ring.h"
#include "msg.h"
#include "rx.h"
#include "transport.h"

struct pf_host {
	int fd;
	/* The session on shared-memory rings (spec 11), or NULL: the socket. */
	struct pf_host_rings *rings;
	bool ring_pending;          /* our RingSetup waits for its answer */
	bool ring_accepted;
	struct pf_hello_params hello;
	struct pf_session session;
	Pciefw__DeviceDescription *desc;
	struct pf_rx rx;                /* what the endpoint sends (rx.h) */
	int handled;                    /* messages in the last read */
	struct pf_buf out;
	struct pf_guest_mem mem;
	int memfd;                  /* shared guest RAM (spec 10), or -1 */
	struct pf_host_irqs irqs;
	struct pf_host_stats stats;
	int timeout_ms;
	uint32_t next_tag;
	/* Our non-posted requests outstanding (spec 5.1 rule 3: pipelined). */
	struct host_req {
		bool used, done;
		uint32_t tag;
		int status;
		void *buf;              /* a read's destination, else NULL */
		uint32_t size;
	} reqs[PF_HOST_MAX_INFLIGHT];
	unsigned inflight;
	uint64_t completions;       /* completions of ours handled so far */
	bool records;               /* binary register records on (11.7) */
	bool broken;
	pf_host_irq_hook irq_hook;
	void *irq_hook_arg;
	char error[512];
	uint8_t rbuf[64 * 1024];
};

static int host_fail(struct pf_host *h, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void irq_hook(struct pf_host *h, int kind, uint32_t value)
{
	if (h->irq_hook)
		h->irq_hook(h, kind, value, h->irq_hook_arg);
}

void pf_host_set_irq_hook(struct pf_host *h, pf_host_irq_hook fn, void *arg)
{
	h->irq_hook = fn;
	h->irq_hook_arg = arg;
}

static int host_fail(struct pf_host *h, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(h->error, sizeof(h->error), fmt, ap);
	va_end(ap);
	if (code != PF_ERR_TIMEOUT)
		h->broken = true;
	return code;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- The byte stream: the socket, or the rings beside it (spec 11) ---- */

static ssize_t rings_send(void *ctx, const void *buf, size_t len)
{
	return pf_host_rings_send(ctx, buf, len);
}

/* Send what the stream takes now: PF_OK, PF_AGAIN (full) or PF_ERR_IO. */
static int stream_send(struct pf_host *h)
{
	if (h->rings)
		return pf_buf_drain(&h->out, rings_send, h->rings);
	return pf_buf_send(h->fd, &h->out);
}

/* Like recv() on a non-blocking socket. */
static ssize_t stream_recv(struct pf_host *h, void *buf, size_t len)
{
	if (h->rings)
		return pf_host_rings_recv(h->rings, buf, len);
	return recv(h->fd, buf, len, MSG_DONTWAIT);
}

/*
 * Wait up to @timeout_ms for input (or room, with @want_write): 1 when
 * there may be some, 0 at the timeout, -1 if waiting failed.
 */
static int stream_wait(struct pf_host *h, bool want_write, int timeout_ms)
{
	struct pollfd p = { .fd = h->fd,
			    .events = POLLIN | (want_write ? POLLOUT : 0) };
	int r;

	if (h->rings)
		return pf_host_rings_wait(h->rings, want_write, timeout_ms);
	do {
		r = poll(&p, 1, timeout_ms);
	} while (r < 0 && errno == EINTR);
	return r < 0 ? -1 : r > 0;
}

/* ---- Output: never block without reading (spec 5.3) ---- */

static int read_some(struct pf_host *h);

int pf_host_flush(struct pf_host *h)
{
	for (;;) {
		int r;

		if (h->broken)
			return PF_ERR_CLOSED;
		r = stream_send(h);
		if (r == PF_OK)
			return PF_OK;
		if (r < 0)
			return host_fail(h, PF_ERR_IO, "write: %s", strerror(errno));
		/* Full: wait, and serve the endpoint meanwhile (spec 5.3). */
		r = stream_wait(h, true, h->timeout_ms);
		if (r == 0)
			return host_fail(h, PF_ERR_TIMEOUT, "endpoint stopped reading");
		if (r < 0)
			return host_fail(h, PF_ERR_IO, "wait: %s", strerror(errno));
		r = read_some(h);
		if (r < 0)
			return r;
	}
}

int pf_host_send_raw(struct pf_host *h, const void *p, size_t len)
{
	if (pf_buf_append(&h->out, p, len))
		return PF_ERR_NOMEM;
	return pf_host_flush(h);
}

/* ---- Serving the endpoint's requests ---- */

static bool mem_range(const struct pf_guest_mem *m, uint64_t addr, uint64_t len)
{
	return m->data && addr >= m->base && len <= m->size &&
	       addr - m->base <= m->size - len;
}

/* Served at once, from the simulated guest memory (spec 3.2, 5.3). */
static int on_dma_read(void *opaque, const PfMessage *msg, char *err,
		       size_t errlen)
{
	struct pf_host *h = opaque;
	const Pciefw__DmaRead *r = msg->dma_read;
	const struct pf_guest_mem *m = &h->mem;

	h->handled++;
	if (!m->bus_master || !mem_range(m, r->address, r->size)) {
		h->stats.dma_refused++;
		pf_put_completion(&h->out, r->tag,
				  PCIEFW__STATUS__STATUS_COMPLETER_ABORT, NULL, 0);
		return PF_OK;
	}
	h->stats.dma_reads++;
	h->stats.dma_read_bytes += r->size;
	pf_put_completion(&h->out, r->tag, PCIEFW__STATUS__STATUS_SUCCESSFUL,
			  m->data + (r->address - m->base), r->size);
	return PF_OK;
}

static int on_dma_write(void *opaque, const PfMessage *msg, char *err,
			size_t errlen)
{
	struct pf_host *h = opaque;
	const Pciefw__DmaWrite *w = msg->dma_write;
	struct pf_guest_mem *m = &h->mem;

	h->handled++;
	if (!m->bus_master || !mem_range(m, w->address, w->data.len)) {
		h->stats.dma_refused++;
		return PF_OK;   /* posted: dropped, as a real bus would */
	}
	h->stats.dma_writes++;
	h->stats.dma_write_bytes += w->data.len;
	memcpy(m->data + (w->address - m->base), w->data.data, w->data.len);
	return PF_OK;
}

static void count_vector(uint64_t *counters, uint32_t v)
{
	if (v < PF_HOST_MAX_VECTORS)
		counters[v]++;
}

/* ---- The endpoint's messages, by kind (rx.h) ---- */

static int on_ring_ready(void *opaque, const PfMessage *m, char *err,
			 size_t errlen);

/* The outstanding request with @tag, or NULL. */
static struct host_req *find_req(struct pf_host *h, uint32_t tag)
{
	for (unsigned i = 0; i < PF_HOST_MAX_INFLIGHT; i++)
		if (h->reqs[i].used && !h->reqs[i].done && h->reqs[i].tag == tag)
			return &h->reqs[i];
	return NULL;
}

static int on_completion(void *opaque, const PfMessage *m, char *err,
			 size_t errlen)
{
	struct pf_host *h = opaque;
	const Pciefw__Completion *c = m->completion;
	struct host_req *q = find_req(h, c->tag);

	h->handled++;
	if (!q) {
		snprintf(err, errlen, "completion with unexpected tag %u", c->tag);
		return PF_ERR_UNKNOWN_TAG;
	}
	if (c->status == PCIEFW__STATUS__STATUS_SUCCESSFUL && q->buf &&
	    c->data.len != q->size) {
		snprintf(err, errlen, "completion carries %zu bytes, %u were read",
			 c->data.len, q->size);
		return PF_ERR_INVALID;
	}
	if (c->status == PCIEFW__STATUS__STATUS_SUCCESSFUL && q->buf)
		memcpy(q->buf, c->data.data, c->data.len);
	q->status = c->status;
	q->done = true;
	h->completions++;
	return PF_OK;
}

static int on_intx(void *opaque, const PfMessage *m, char *err, size_t errlen)
{
	struct pf_host *h = opaque;

	h->handled++;
	if (m->intx->asserted && !h->irqs.intx_level) {
		h->irqs.intx_asserts++;
		h->irqs.total++;
	}
	h->irqs.intx_level = m->intx->asserted;
	irq_hook(h, m->body_case, m->intx->asserted);
	return PF_OK;
}

/* An MSI or MSI-X message: counted, then the hook (stream order, 5.1). */
static int vector_irq(struct pf_host *h, uint64_t *counters, int kind,
		      uint32_t vector)
{
	h->handled++;
	count_vector(counters, vector);
	h->irqs.total++;
	irq_hook(h, kind, vector);
	return PF_OK;
}

static int on_msi(void *opaque, const PfMessage *m, char *err, size_t errlen)
{
	struct pf_host *h = opaque;

	return vector_irq(h, h->irqs.msi, m->body_case, m->msi->vector);
}

static int on_msix(void *opaque, const PfMessage *m, char *err, size_t errlen)
{
	struct pf_host *h = opaque;

	return vector_irq(h, h->irqs.msix, m->body_case, m->msix->vector);
}

/* The endpoint said Goodbye or Error (7.2); during the handshake, a refusal. */
static void on_ended(void *opaque, const PfMessage *m)
{
	struct pf_host *h = opaque;

	if (m->body_case == PCIEFW__MESSAGE__BODY_GOODBYE)
		host_fail(h, PF_ERR_PEER, "endpoint said goodbye: %s",
			  m->goodbye->text);
	else
		host_fail(h, PF_ERR_PEER, "endpoint %s: %s",
			  h->desc ? "error" : "refused", m->error->text);
}

/* After the handshake: what a host serves (spec 3.2) and its completions. */
static const struct pf_rx_handlers session_handlers = {
	.on = {
		[PCIEFW__MESSAGE__BODY_COMPLETION] = on_completion,
		[PCIEFW__MESSAGE__BODY_DMA_READ] = on_dma_read,
		[PCIEFW__MESSAGE__BODY_DMA_WRITE] = on_dma_write,
		[PCIEFW__MESSAGE__BODY_INTX] = on_intx,
		[PCIEFW__MESSAGE__BODY_MSI] = on_msi,
		[PCIEFW__MESSAGE__BODY_MSIX] = on_msix,
		[PCIEFW__MESSAGE__BODY_RING_READY] = on_ring_ready,
	},
	.ended = on_ended,
};

/* Keep our own copy: the codec's arena is reused by the next message. */
static int on_description(void *opaque, const PfMessage *m, char *err,
			  size_t errlen)
{
	struct pf_host *h = opaque;
	const ProtobufCMessage *d = &m->device_description->base;
	size_t len = protobuf_c_message_get_packed_size(d);
	uint8_t *tmp = malloc(len ? len : 1);

	if (tmp) {
		protobuf_c_message_pack(d, tmp);
		h->desc = pciefw__device_description__unpack(NULL, len, tmp);
		free(tmp);
	}
	if (!h->desc) {
		snprintf(err, errlen, "out of memory");
		return PF_ERR_NOMEM;
	}
	pf_rx_set_handlers(&h->rx, &session_handlers);
	return PF_OK;
}

/* Spec 2.3: after the Hellos, the endpoint's DeviceDescription only. */
static const struct pf_rx_handlers handshake_handlers = {
	.on = {
		[PCIEFW__MESSAGE__BODY_DEVICE_DESCRIPTION] = on_description,
	},
	.ended = on_ended,
};

/* Read what is available and handle every whole message in it. */
static int read_some(struct pf_host *h)
{
	ssize_t n = stream_recv(h, h->rbuf, sizeof(h->rbuf));
	size_t used;
	int r;

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return 0;
	if (n < 0 && errno == EPROTO)
		return host_fail(h, PF_ERR_IO, "the endpoint broke the "
				 "shared-memory rings (an impossible index; "
				 "spec 11.5)");
	if (n < 0 && errno == EBADMSG)
		return host_fail(h, PF_ERR_INVALID, "the endpoint sent bytes on "
				 "the socket beside the rings (spec 11.1)");
	if (n < 0)
		return host_fail(h, PF_ERR_IO, "read: %s", strerror(errno));
	if (n == 0)
		return host_fail(h, PF_ERR_CLOSED, "endpoint closed the connection%s",
				 !h->desc ? " during the handshake" :
				 pf_rx_finish(&h->rx) == PF_EOF ? "" :
				 " in the middle of a frame");
	h->handled = 0;
	r = pf_rx_push(&h->rx, h->rbuf, (size_t)n, &used);
	if (r == PF_EOF)
		return PF_ERR_PEER;        /* on_ended said what */
	if (r < 0)
		return host_fail(h, r, "%s", h->rx.why);
	/* Spec 11.1: RingReady was the endpoint's last frame on the socket. */
	if (r == PF_RX_PAUSE && (used < (size_t)n ||
				 pf_rx_finish(&h->rx) != PF_EOF))
		return host_fail(h, PF_ERR_INVALID, "bytes on the socket after "
				 "ring_ready");
	/* Answers to DMA reads go out before we wait again. */
	if (!pf_buf_empty(&h->out)) {
		r = pf_host_flush(h);
		if (r < 0)
			return r;
	}
	return h->handled;
}

int pf_host_poll(struct pf_host *h, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	uint64_t completions = h->completions;
	int total = 0;

	if (h->broken)
		return PF_ERR_CLOSED;
	for (;;) {
		int left = (int)(deadline - now_ms());
		int r = stream_wait(h, false, left > 0 ? left : 0);

		if (r < 0)
			return host_fail(h, PF_ERR_IO, "wait: %s", strerror(errno));
		if (r == 0)
			return total;
		r = read_some(h);
		if (r < 0)
			return r;
		total += r;
		if (h->completions != completions || (timeout_ms == 0 && r == 0))
			return total;
		if (total && timeout_ms == 0)
			return total;
	}
}

/*
 * Wait up to @timeout_ms for the endpoint to send, then handle what came:
 * returns as soon as something was read, so that a caller checks its
 * condition after every batch (pf_host_poll serves its whole timeout).
 */
static int serve_next(struct pf_host *h, int timeout_ms)
{
	struct pollfd p = { .fd = h->fd, .events = POLLIN };
	int r = poll(&p, 1, timeout_ms);

	if (r < 0 && errno != EINTR)
		return host_fail(h, PF_ERR_IO, "poll: %s", strerror(errno));
	return r > 0 ? read_some(h) : 0;
}

int pf_host_wait(struct pf_host *h, bool (*cond)(struct pf_host *, void *),
		 void *arg, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;

	if (h->broken)
		return PF_ERR_CLOSED;
	while (!cond(h, arg)) {
		int left = (int)(deadline - now_ms());
		int r;

		if (left <= 0)
			return PF_ERR_TIMEOUT;
		r = serve_next(h, left);
		if (r < 0)
			return r;
	}
	return PF_OK;
}

/* ---- Non-posted requests ---- */

/*
 * A request of @kind was queued with @tag: track it, and send it.
 * Returns its ticket (the slot) or a negative PF_ERR_*.
 */
static int req_start(struct pf_host *h, uint32_t tag, void *buf, uint32_t size)
{
	struct host_req *q = NULL;
	int r;

	for (unsigned i = 0; i < PF_HOST_MAX_INFLIGHT && !q; i++)
		if (!h->reqs[i].used)
			q = &h->reqs[i];
	if (!q)
		return host_fail(h, PF_ERR_LIMIT, "more than %u requests "
				 "outstanding", PF_HOST_MAX_INFLIGHT);
	*q = (struct host_req){ .used = true, .tag = tag, .buf = buf,
				.size = size };
	h->inflight++;
	r = pf_host_flush(h);
	return r < 0 ? r : (int)(q - h->reqs);
}

int pf_host_finish(struct pf_host *h, int ticket)
{
	int64_t deadline = now_ms() + h->timeout_ms;
	struct host_req *q;
	int r;

	if (ticket < 0 || ticket >= PF_HOST_MAX_INFLIGHT || !h->reqs[ticket].used)
		return PF_ERR_INVALID;
	q = &h->reqs[ticket];
	while (!q->done) {
		int left = (int)(deadline - now_ms());

		r = left <= 0 ? host_fail(h, PF_ERR_TIMEOUT, "no completion for "
					  "tag %u within %d ms", q->tag,
					  h->timeout_ms) :
		    pf_host_poll(h, left);
		if (r < 0) {
			q->used = false;
			h->inflight--;
			return r;
		}
	}
	q->used = false;
	h->inflight--;
	return q->status;
}

unsigned pf_host_inflight(const struct pf_host *h)
{
	return h->inflight;
}

/*
 * A register access (config, memory or IO; spec 3.1): as a binary record
 * on the rings where it fits one (11.7), else as its message.  Reads fill
 * @buf; posted writes return no ticket (0).
 */
static int access_start(struct pf_host *h, int kind, unsigned bar,
			uint64_t off, void *buf, const void *data, uint32_t size)
{
	uint32_t tag = kind == PCIEFW__MESSAGE__BODY_MEM_WRITE ? 0 : h->next_tag++;
	int r = pf_put_access(&h->out, h->records, kind, tag, bar, off, data, size);

	if (r < 0)
		return r;
	if (kind == PCIEFW__MESSAGE__BODY_MEM_WRITE)
		return pf_host_flush(h);
	return req_start(h, tag, buf, buf ? size : 0);
}

/* Start, then wait: the blocking calls. */
static int access_wait(struct pf_host *h, int kind, unsigned bar,
		       uint64_t off, void *buf, const void *data, uint32_t size)
{
	int t = access_start(h, kind, bar, off, buf, data, size);

	return t < 0 ? t : pf_host_finish(h, t);
}

int pf_host_mem_read_start(struct pf_host *h, unsigned bar, uint64_t off,
			   void *buf, uint32_t size)
{
	return access_start(h, PCIEFW__MESSAGE__BODY_MEM_READ, bar, off, buf,
			    NULL, size);
}

int pf_host_mem_read(struct pf_host *h, unsigned bar, uint64_t off, void *buf,
		     uint32_t size)
{
	return access_wait(h, PCIEFW__MESSAGE__BODY_MEM_READ, bar, off, buf, NULL,
			   size);
}

int pf_host_mem_write(struct pf_host *h, unsigned bar, uint64_t off,
		      const void *buf, uint32_t size)
{
	return access_start(h, PCIEFW__MESSAGE__BODY_MEM_WRITE, bar, off, NULL,
			    buf, size);
}

int pf_host_io_read(struct pf_host *h, unsigned bar, uint64_t off, void *buf,
		    uint32_t size)
{
	return access_wait(h, PCIEFW__MESSAGE__BODY_IO_READ, bar, off, buf, NULL,
			   size);
}

int pf_host_io_write(struct pf_host *h, unsigned bar, uint64_t off,
		     const void *buf, uint32_t size)
{
	return access_wait(h, PCIEFW__MESSAGE__BODY_IO_WRITE, bar, off, NULL, buf,
			   size);
}

int pf_host_config_read(struct pf_host *h, uint32_t off, void *buf, uint32_t size)
{
	return access_wait(h, PCIEFW__MESSAGE__BODY_CONFIG_READ, 0, off, buf,
			   NULL, size);
}

int pf_host_config_write(struct pf_host *h, uint32_t off, const void *buf,
			 uint32_t size)
{
	return access_wait(h, PCIEFW__MESSAGE__BODY_CONFIG_WRITE, 0, off, NULL,
			   buf, size);
}

int pf_host_reset(struct pf_host *h, Pciefw__ResetKind kind)
{
	uint32_t tag = h->next_tag++;
	int r = pf_put_reset(&h->out, tag, kind);
	int t = r < 0 ? r : req_start(h, tag, NULL, 0);

	return t < 0 ? t : pf_host_finish(h, t);
}

int pf_host_read32(struct pf_host *h, unsigned bar, uint64_t off, uint32_t *v)
{
	uint8_t b[4];
	int r = pf_host_mem_read(h, bar, off, b, 4);

	*v = r == 0 ? (uint32_t)pf_le_load(b, 4) : 0xffffffffu;
	return r;
}

int pf_host_write32(struct pf_host *h, unsigned bar, uint64_t off, uint32_t v)
{
	uint8_t b[4];

	pf_le_store(b, 4, v);
	return pf_host_mem_write(h, bar, off, b, 4);
}

/* ---- Connection ---- */

/*
 * Hello both ways, then the endpoint's DeviceDescription (spec 2): its
 * Hello is checked and agreed by the receiving half (rx.h).
 */
static int handshake(struct pf_host *h)
{
	int64_t deadline = now_ms() + h->timeout_ms;
	int r = pf_put_hello(&h->out, &h->hello);

	if (r)
		return host_fail(h, r, "out of memory");
	/*
	 * An endpoint that refuses us (busy) may hang up before our hello is
	 * written; its Error is still waiting to be read, and says more.
	 */
	pf_host_flush(h);
	h->broken = false;
	while (!h->desc) {
		int left = (int)(deadline - now_ms());

		if (left <= 0 || stream_wait(h, false, left) <= 0)
			return host_fail(h, PF_ERR_TIMEOUT, "endpoint did not answer");
		r = read_some(h);
		if (r < 0)
			return r;
	}
	h->session = h->rx.session;
	return PF_OK;
}

/* Spec 11.1: the endpoint's answer to our RingSetup, on the socket. */
static int on_ring_ready(void *opaque, const PfMessage *m, char *err,
			 size_t errlen)
{
	struct pf_host *h = opaque;

	if (!h->ring_pending) {
		snprintf(err, errlen, "ring_ready without a ring_setup");
		return PF_ERR_UNEXPECTED;
	}
	h->handled++;
	h->ring_pending = false;
	h->ring_accepted = m->ring_ready->accepted;
	/* Accepted: what follows is not the socket's (it must be nothing). */
	return h->ring_accepted ? PF_RX_PAUSE : PF_OK;
}

/*
 * Move the session to the rings (spec 11.1): RingSetup with the region
 * and both doorbells as the first message after the description; the
 * endpoint answers on the socket.  Refused, the socket serves on.
 */
static int rings_setup(struct pf_host *h)
{
	int64_t deadline = now_ms() + h->timeout_ms;
	struct pf_host_rings *rings;
	int fds[PCIEFW_RING_SETUP_FDS];
	uint64_t size;
	char err[256];
	ssize_t n;

	if (!(h->session.features & PCIEFW_FEATURE_SHM_RINGS))
		return PF_OK;
	rings = pf_host_rings_new(h->fd, PF_RING_DEFAULT_BYTES, fds, &size,
				  err, sizeof(err));
	if (!rings)
		return host_fail(h, PF_ERR_IO, "%s", err);
	if (pf_host_flush(h) || pf_put_ring_setup(&h->out, size)) {
		pf_host_rings_free(rings);
		return host_fail(h, PF_ERR_IO, "cannot send ring_setup");
	}
	do {
		n = pf_send_fds(h->fd, pf_buf_peek(&h->out), pf_buf_used(&h->out),
				fds, PCIEFW_RING_SETUP_FDS);
	} while (n < 0 && errno == EINTR);
	if (n <= 0) {
		pf_host_rings_free(rings);
		return host_fail(h, PF_ERR_IO, "sendmsg: %s", strerror(errno));
	}
	pf_buf_consume(&h->out, (size_t)n);
	h->ring_pending = true;
	while (h->ring_pending) {
		int left = (int)(deadline - now_ms());
		int r = pf_host_flush(h);

		if (r == PF_OK && (left <= 0 || stream_wait(h, false, left) <= 0))
			r = host_fail(h, PF_ERR_TIMEOUT, "no ring_ready");
		if (r == PF_OK)
			r = read_some(h);
		if (r < 0) {
			pf_host_rings_free(rings);
			return r;
		}
	}
	if (!h->ring_accepted) {
		pf_host_rings_free(rings);
		return PF_OK;
	}
	h->rings = rings;
	/* Spec 11.7: records beside the frames, from the next bytes on. */
	h->records = h->session.features & PCIEFW_FEATURE_REG_RECORDS;
	if (h->records)
		pf_rx_take_records(&h->rx);
	return PF_OK;
}

/* Guest RAM in a memfd sealed against shrinking (spec 10.2). */
static int share_memory_create(struct pf_host *h, const struct pf_host_opts *o,
			       char *err, size_t errlen)
{
	void *p;

	if (!o->mem_size || ((o->mem_base | o->mem_size) & (PCIEFW_MEM_ALIGN - 1))) {
		snprintf(err, errlen, "shared guest memory needs a 4 KiB aligned size");
		return -1;
	}
	h->memfd = memfd_create("pciefw-guest", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (h->memfd < 0 || ftruncate(h->memfd, (off_t)o->mem_size) ||
	    fcntl(h->memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW)) {
		snprintf(err, errlen, "memfd: %s", strerror(errno));
		return -1;
	}
	p = mmap(NULL, o->mem_size, PROT_READ | PROT_WRITE, MAP_SHARED, h->memfd, 0);
	if (p == MAP_FAILED) {
		snprintf(err, errlen, "mmap: %s", strerror(errno));
		return -1;
	}
	h->mem.data = p;
	return 0;
}

/*
 * The map with its fd, then bus mastering on (10.2, 10.3).  On the socket
 * the fd goes with the map's first byte; beside the rings, with one zero
 * byte on the socket before the map goes into the ring (11.1).
 */
static int share_memory_send(struct pf_host *h)
{
	struct pf_mem_region r = { h->mem.base, h->mem.size, 0 };
	ssize_t n;

	if (!(h->session.features & PCIEFW_FEATURE_GUEST_MEMORY))
		return 0;       /* the endpoint does not share: messages */
	if (pf_host_flush(h) || pf_put_memory_map(&h->out, &r, 1) ||
	    pf_put_bus_master(&h->out, true))
		return host_fail(h, PF_ERR_IO, "cannot send the memory map");
	do {
		n = h->rings ? pf_send_fds(h->fd, "", 1, &h->memfd, 1) :
		    pf_send_fds(h->fd, pf_buf_peek(&h->out),
				pf_buf_used(&h->out), &h->memfd, 1);
	} while (n < 0 && errno == EINTR);
	if (n <= 0)
		return host_fail(h, PF_ERR_IO, "sendmsg: %s", strerror(errno));
	if (!h->rings)
		pf_buf_consume(&h->out, (size_t)n);
	h->mem.bus_master = true;
	return pf_host_flush(h);
}

struct pf_host *pf_host_connect(const char *addr, const struct pf_host_opts *o,
				char *err, size_t errlen)
{
	static const struct pf_host_opts defaults;
	struct pf_host *h;
	struct pf_addr a;

	if (!o)
		o = &defaults;
	if (pf_addr_parse(addr, &a, err, errlen))
		return NULL;
	h = calloc(1, sizeof(*h));
	if (!h) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pf_hello_defaults(&h->hello, o->name ? o->name : "pciefw-host");
	if (o->max_payload)
		h->hello.max_payload = o->max_payload;
	if (o->version_major) {
		h->hello.version_major = o->version_major;
		h->hello.version_minor = o->version_minor;
		h->hello.features = o->features;
	}
	h->timeout_ms = o->timeout_ms ? o->timeout_ms : 5000;
	h->next_tag = 1;
	h->fd = -1;
	h->memfd = -1;
	pf_buf_init(&h->out);
	if (pf_rx_init(&h->rx, &handshake_handlers, h, PF_DIR_TO_HOST, &h->hello,
		       NULL) != PF_OK) {
		snprintf(err, errlen, "out of memory");
		pf_host_close(h, false);
		return NULL;
	}
	h->mem.base = o->mem_base;
	h->mem.size = o->mem_size;
	h->mem.bus_master = true;
	if (o->shm_rings)
		h->hello.features |= PCIEFW_FEATURE_SHM_RINGS |
			(o->reg_records ? PCIEFW_FEATURE_REG_RECORDS : 0);
	if (o->share_memory) {
		if (share_memory_create(h, o, err, errlen)) {
			h->fd = -1;
			pf_host_close(h, false);
			return NULL;
		}
		h->hello.features |= PCIEFW_FEATURE_GUEST_MEMORY;
	} else if (o->mem_size && !(h->mem.data = calloc(1, o->mem_size))) {
		snprintf(err, errlen, "cannot allocate %llu bytes of guest memory",
			 (unsigned long long)o->mem_size);
		h->fd = -1;
		pf_host_close(h, false);
		return NULL;
	}
	h->fd = pf_connect(&a, err, errlen);
	if (h->fd < 0) {
		pf_host_close(h, false);
		return NULL;
	}
	if (handshake(h) || (o->shm_rings && rings_setup(h)) ||
	    (o->share_memory && share_memory_send(h))) {
		snprintf(err, errlen, "%s", h->error);
		pf_host_close(h, false);
		return NULL;
	}
	h->error[0] = '\0';
	return h;
}

void pf_host_close(struct pf_host *h, bool goodbye)
{
	if (!h)
		return;
	if (goodbye && h->fd >= 0 && !h->broken) {
		pf_put_goodbye(&h->out, PCIEFW__GOODBYE_REASON__GOODBYE_SHUTDOWN,
			       "host closing");
		pf_host_flush(h);
	}
	pf_host_rings_free(h->rings);
	if (h->fd >= 0)
		close(h->fd);
	if (h->desc)
		pciefw__device_description__free_unpacked(h->desc, NULL);
	pf_rx_free(&h->rx);
	pf_buf_free(&h->out);
	if (h->memfd >= 0) {
		munmap(h->mem.data, h->mem.size);
		close(h->memfd);
	} else {
		free(h->mem.data);
	}
	free(h);
}

const Pciefw__DeviceDescription *pf_host_description(const struct pf_host *h)
{
	return h->desc;
}

const struct pf_session *pf_host_session(const struct pf_host *h)
{
	return &h->session;
}

struct pf_guest_mem *pf_host_mem(struct pf_host *h)
{
	return &h->mem;
}

const struct pf_host_irqs *pf_host_irqs(const struct pf_host *h)
{
	return &h->irqs;
}

const struct pf_host_stats *pf_host_stats(const struct pf_host *h)
{
	return &h->stats;
}

const char *pf_host_error(const struct pf_host *h)
{
	return h->error;
}

int pf_host_fd(const struct pf_host *h)
{
	return h->fd;
}

bool pf_host_on_rings(const struct pf_host *h)
{
	return h->rings != NULL;
}

bool pf_host_records(const struct pf_host *h)
{
	return h->records;
}
