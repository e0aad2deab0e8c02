/*
 * nic: the pciefw network controller.  Registers, descriptors and
 * interrupts are specified in docs/nic.md ("nic N" below); frames come and
 * go through a packet backend (endpoint/net/).
 */
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "log.h"
#include "net/backend.h"

/* nic 2: registers */
enum {
	REG_CTRL = 0x000, REG_STATUS = 0x004, REG_MAC_LO = 0x008, REG_MAC_HI = 0x00c,
	REG_ICR = 0x010, REG_IMS = 0x014, REG_IMC = 0x018, REG_ITR = 0x01c,
	REG_IRQ_MODE = 0x020, REG_MAX_FRAME = 0x024,
	REG_RX_BASE_LO = 0x100, REG_RX_BASE_HI = 0x104, REG_RX_SIZE = 0x108,
	REG_RX_HEAD = 0x10c, REG_RX_TAIL = 0x110,
	REG_TX_BASE_LO = 0x200, REG_TX_BASE_HI = 0x204, REG_TX_SIZE = 0x208,
	REG_TX_HEAD = 0x20c, REG_TX_TAIL = 0x210,
	REG_STATS = 0x300,
};

#define CTRL_RST     (1u << 0)
#define CTRL_RX_EN   (1u << 1)
#define CTRL_TX_EN   (1u << 2)
#define STATUS_LINK  (1u << 0)
#define CAUSE_RX     (1u << 0)
#define CAUSE_TX     (1u << 1)
#define CAUSE_LINK   (1u << 2)
#define CAUSES       (CAUSE_RX | CAUSE_TX | CAUSE_LINK)
#define DESC_DD      (1u << 0)
#define DESC_EOP     (1u << 1)
#define DESC_ERR     (1u << 2)
#define TX_FLAG_EOP  (1u << 0)
#define RX_BUF_MIN   14u      /* an Ethernet header */
#define DESC_SIZE    16u
#define RING_MIN     8u
#define RING_MAX     4096u
#define FRAME_MIN    64u
#define FRAME_MAX    9018u
#define FRAME_DEFAULT 1518u    /* 1500-byte payload, header, one 802.1Q tag (nic 5) */
#define ITR_MAX      100000u

enum irq_mode { MODE_INTX, MODE_MSI, MODE_MSIX };
enum { VEC_RX, VEC_TX, VEC_LINK, N_VECTORS };
enum nic_stat { RX_PACKETS, RX_BYTES, TX_PACKETS, TX_BYTES, RX_DROPPED, RX_ERRORS,
	    TX_ERRORS, INTERRUPTS, N_STATS };

struct ring {
	uint64_t base;
	uint32_t size;
	uint32_t head;          /* next descriptor the device uses */
	uint32_t tail;          /* first descriptor the device may not use */
	/*
	 * Bumped by every geometry change (BASE, SIZE) and reset: DMA issued
	 * for an older generation finds its ring gone and drops its result.
	 */
	uint32_t gen;
};

#define TX_BATCHES 64

struct tx_batch {
	uint32_t first, count;
	uint32_t pending;        /* DMA reads still outstanding */
};

struct rx_slot {
	uint64_t addr;
	uint16_t buf_len;
	uint16_t len, status;   /* to write back (nic 3.1) */
};

struct nic {
	struct pf_dev *dev;
	struct pf_net *net;
	uint8_t mac[6];
	uint32_t ctrl, icr, ims, itr, irq_mode, max_frame;
	bool intx;
	struct ring rx, tx;
	uint64_t stats[N_STATS];

	/*
	 * RX: descriptors up to rx_fetched are being read; those in
	 * [rx.head, rx_valid) are cached in rx_slots, ready for frames.
	 */
	struct rx_slot *rx_slots;
	uint32_t rx_fetched, rx_valid;
	/*
	 * RX write-backs of one pass of the loop (nic 3.1): descriptors
	 * [rx_wb_first, rx_wb_first + rx_wb_count) are used and go back in
	 * one DMA write of whole descriptors (built in rx_wb) when the loop
	 * is about to wait (@rx_wb_flush), before any register access, and
	 * before the run would wrap.
	 */
	uint32_t rx_wb_first, rx_wb_count;
	bool rx_wb_frames;       /* some carry frames: raise RX after */
	uint8_t *rx_wb;
	ev_prepare rx_wb_flush;

	/* TX: batches in flight, oldest at tx_q_head (nic 3.2). */
	struct tx_batch tx_q[TX_BATCHES];
	unsigned tx_q_head, tx_q_len;
	uint32_t tx_fetched;     /* descriptors up to here are being handled */
	uint8_t *tx_descs;       /* copy of the ring, indexed like it */
	bool tx_kicking, tx_kick_again;
	uint8_t tx_frame[FRAME_MAX];    /* a frame read in place, copied */

	/* Interrupt moderation (nic 4), per vector. */
	ev_timer itr_timer[N_VECTORS];
	ev_tstamp last_irq[N_VECTORS];
	bool irq_pending[N_VECTORS];
};

/* Context of one DMA read: which ring, in which geometry, it belongs to. */
struct dma_ctx {
	struct nic *n;
	struct ring *ring;
	uint32_t gen;
	uint32_t first, count;   /* descriptors, or the TX slot of a frame */
};

static struct dma_ctx *ctx_new(struct nic *n, struct ring *r, uint32_t first,
			       uint32_t count)
{
	struct dma_ctx *c = malloc(sizeof(*c));

	if (c)
		*c = (struct dma_ctx){ n, r, r->gen, first, count };
	return c;
}

/*
 * Free @c; true if its result still matters: not cancelled, the ring has
 * not changed since the read was issued, and the slots are inside it.
 */
static bool ctx_end(struct dma_ctx *c, enum pf_dma_result res)
{
	const struct ring *r = c->ring;
	bool live = res != PF_DMA_CANCELLED && c->gen == r->gen &&
		    r->size && c->first < r->size && c->count <= r->size - c->first;

	free(c);
	return live;
}

/* ---- Interrupts (nic 4) ---- */

static void fire(struct nic *n, unsigned vec)
{
	n->last_irq[vec] = ev_now(pf_dev_loop(n->dev));
	n->irq_pending[vec] = false;
	n->stats[INTERRUPTS]++;
	switch (n->irq_mode) {
	case MODE_MSIX:
		pf_raise_msix(n->dev, vec);
		break;
	case MODE_MSI:
		pf_raise_msi(n->dev, 0);
		break;
	default:
		n->intx = true;
		pf_set_intx(n->dev, true);
	}
}

static void deliver(struct nic *n, unsigned vec)
{
	struct ev_loop *loop = pf_dev_loop(n->dev);
	ev_tstamp gap = n->itr / 1e6, since = ev_now(loop) - n->last_irq[vec];

	if (n->itr == 0 || since >= gap) {
		fire(n, vec);
		return;
	}
	if (!n->irq_pending[vec]) {
		n->irq_pending[vec] = true;
		ev_timer_set(&n->itr_timer[vec], gap - since, 0);
		ev_timer_start(loop, &n->itr_timer[vec]);
	}
}

static unsigned vector_of(const struct nic *n, uint32_t cause)
{
	if (n->irq_mode != MODE_MSIX)
		return 0;
	return cause == CAUSE_RX ? VEC_RX : cause == CAUSE_TX ? VEC_TX : VEC_LINK;
}

/*
 * A cause occurred: note it and, if enabled, interrupt and auto-mask.
 * With MSI/MSI-X the cause bit clears as its message goes out; with INTx
 * it stays until ICR is read.
 */
static void raise_cause(struct nic *n, uint32_t cause)
{
	n->icr |= cause;
	if (!(n->ims & cause))
		return;
	n->ims &= ~cause;
	if (n->irq_mode != MODE_INTX)
		n->icr &= ~cause;
	deliver(n, vector_of(n, cause));
}

static void itr_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct nic *n = w->data;
	unsigned vec = (unsigned)(w - n->itr_timer);

	if (n->irq_pending[vec])
		fire(n, vec);
}

/* ---- Ring helpers ---- */

static uint64_t desc_addr(const struct ring *r, uint32_t idx)
{
	return r->base + (uint64_t)idx * DESC_SIZE;
}

static bool ring_ready(const struct ring *r)
{
	return r->size && r->base;
}

/* ---- RX (nic 3.1) ---- */

/* RX descriptors [first, first + count) read: their buffers are usable. */
static void rx_descs_ready(struct nic *n, uint32_t first, uint32_t count,
			   const uint8_t *data)
{
	for (uint32_t i = 0; i < count; i++) {
		const uint8_t *d = data + i * DESC_SIZE;
		struct rx_slot *s = &n->rx_slots[first + i];

		s->addr = pf_le_load(d, 8);
		s->buf_len = (uint16_t)pf_le_load(d + 8, 2);
	}
	/* Fetches complete in the order issued (spec 5.2). */
	n->rx_valid = (first + count) % n->rx.size;
}

static void rx_descs_done(void *opaque, enum pf_dma_result res,
			  const void *data, uint32_t len)
{
	struct dma_ctx *c = opaque;
	struct nic *n = c->n;
	uint32_t first = c->first, count = c->count;

	if (!ctx_end(c, res))
		return;
	if (res != PF_DMA_OK || len != count * DESC_SIZE) {
		pf_dev_log(n->dev, PF_LOG_WARN, "RX ring unreadable at 0x%llx",
			   (unsigned long long)desc_addr(&n->rx, first));
		return;
	}
	rx_descs_ready(n, first, count, data);
}

/*
 * Read RX descriptors [first, first + count), in at most two pieces, in
 * place where guest memory is shared.  Returns how many are being read:
 * fewer if the framework refused a read (DMA limits, device.h); the rest
 * are fetched by a later doorbell.
 */
static uint32_t rx_fetch_descs(struct nic *n, uint32_t first, uint32_t count)
{
	struct ring *r = &n->rx;
	uint32_t issued = 0;

	while (issued < count) {
		uint32_t left = count - issued;
		uint32_t run = r->size - first < left ? r->size - first : left;
		const uint8_t *d = pf_dma_map(n->dev, desc_addr(r, first),
					      run * DESC_SIZE, false);
		struct dma_ctx *c;

		if (d) {
			rx_descs_ready(n, first, run, d);
			pf_dma_unmap(n->dev, d);
		} else if (!(c = ctx_new(n, r, first, run)) ||
			   pf_dma_read(n->dev, desc_addr(r, first),
				       run * DESC_SIZE, rx_descs_done, c) < 0) {
			free(c);
			break;
		}
		first = (first + run) % r->size;
		issued += run;
	}
	return issued;
}

/* Descriptors from @r's head to @idx, modulo the ring size. */
static uint32_t ahead_of_head(const struct ring *r, uint32_t idx)
{
	return (idx - r->head) & (r->size - 1);
}

/*
 * A doorbell may only give descriptors: a tail behind those the device
 * already fetched would take back descriptors in flight (nic 3).
 */
static bool tail_ok(const struct ring *r, uint32_t fetched, uint32_t tail)
{
	return ring_ready(r) && tail < r->size &&
	       ahead_of_head(r, tail) >= ahead_of_head(r, fetched);
}

static void rx_tail_write(struct nic *n, uint32_t tail)
{
	uint32_t count;

	if (!tail_ok(&n->rx, n->rx_fetched, tail)) {
		pf_dev_log(n->dev, PF_LOG_DEBUG, "ignoring RX_TAIL %u", tail);
		return;
	}
	n->rx.tail = tail;
	count = (tail - n->rx_fetched) & (n->rx.size - 1);
	if (count)
		count = rx_fetch_descs(n, n->rx_fetched, count);
	n->rx_fetched = (n->rx_fetched + count) & (n->rx.size - 1);
}

/* Write the pass's used RX descriptors back, whole, in one DMA write. */
static void rx_flush(struct nic *n)
{
	uint32_t first = n->rx_wb_first, count = n->rx_wb_count;

	if (!count)
		return;
	n->rx_wb_count = 0;
	ev_prepare_stop(pf_dev_loop(n->dev), &n->rx_wb_flush);
	for (uint32_t i = 0; i < count; i++) {
		const struct rx_slot *s = &n->rx_slots[first + i];
		uint8_t *d = n->rx_wb + i * DESC_SIZE;

		pf_le_store(d, 8, s->addr);
		pf_le_store(d + 8, 2, s->buf_len);
		pf_le_store(d + 10, 2, s->len);
		pf_le_store(d + 12, 2, s->status);
		pf_le_store(d + 14, 2, 0);
	}
	/* Frames, then their write-backs, then the interrupt (spec 5.1). */
	pf_dma_write(n->dev, desc_addr(&n->rx, first), n->rx_wb, count * DESC_SIZE);
	if (n->rx_wb_frames) {
		n->rx_wb_frames = false;
		raise_cause(n, CAUSE_RX);
	}
}

static void rx_flush_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	rx_flush(w->data);
}

/* RX descriptor @idx is used: written back with the pass's others. */
static void rx_write_back(struct nic *n, uint32_t idx, uint16_t len,
			  uint16_t status)
{
	struct rx_slot *s = &n->rx_slots[idx];

	/* A run never wraps: one contiguous write. */
	if (n->rx_wb_count && idx == 0)
		rx_flush(n);
	if (!n->rx_wb_count) {
		n->rx_wb_first = idx;
		ev_prepare_start(pf_dev_loop(n->dev), &n->rx_wb_flush);
	}
	n->rx_wb_count++;
	s->len = len;
	s->status = status;
	n->rx.head = (idx + 1) % n->rx.size;
}

static void nic_receive(void *opaque, const uint8_t *frame, size_t len)
{
	struct nic *n = opaque;
	struct rx_slot *s;
	uint32_t idx;

	if (!pf_dev_connected(n->dev) || !(n->ctrl & CTRL_RX_EN)) {
		n->stats[RX_DROPPED]++;
		return;
	}
	/* A buffer too small for any frame is malformed: skip it (nic 3.1). */
	while (n->rx.head != n->rx_valid &&
	       n->rx_slots[n->rx.head].buf_len < RX_BUF_MIN) {
		n->stats[RX_ERRORS]++;
		rx_write_back(n, n->rx.head, 0, DESC_DD | DESC_ERR);
	}
	if (n->rx.head == n->rx_valid) {
		n->stats[RX_DROPPED]++;
		return;
	}
	idx = n->rx.head;
	s = &n->rx_slots[idx];
	if (len > n->max_frame || len > s->buf_len) {
		n->stats[RX_ERRORS]++;
		return;
	}
	/* Frame, then write-back, then interrupt: ordered (spec 5.1). */
	if (pf_dma_write(n->dev, s->addr, frame, (uint32_t)len) < 0) {
		/* Refused by the framework (wraps, or output over its limit). */
		n->stats[RX_ERRORS]++;
		return;
	}
	rx_write_back(n, idx, (uint16_t)len, DESC_DD | DESC_EOP);
	n->rx_wb_frames = true;
	n->stats[RX_PACKETS]++;
	n->stats[RX_BYTES] += len;
}

/* ---- TX (nic 3.2) ---- */

/*
 * TX is pipelined: each doorbell starts fetching the new descriptors at
 * once, even while earlier batches still wait for their frames.  DMA
 * completions arrive in issue order (spec 5.2), so frames still leave in
 * ring order, and batches retire in order.
 */
static struct tx_batch *tx_batch_of(struct nic *n, uint32_t slot)
{
	for (unsigned i = 0; i < n->tx_q_len; i++) {
		struct tx_batch *b = &n->tx_q[(n->tx_q_head + i) % TX_BATCHES];

		if (slot - b->first < b->count)
			return b;
	}
	return NULL;
}

static void tx_set_status(struct nic *n, uint32_t slot, uint16_t status)
{
	if (slot >= n->tx.size)
		return;
	pf_le_store(n->tx_descs + slot * DESC_SIZE + 12, 2, status);
}

static void tx_kick(struct nic *n);

/* Write finished batches back, oldest first, in one DMA write each. */
static void tx_retire(struct nic *n)
{
	bool done = false;

	while (n->tx_q_len && n->tx_q[n->tx_q_head].pending == 0) {
		struct tx_batch *b = &n->tx_q[n->tx_q_head];

		pf_dma_write(n->dev, desc_addr(&n->tx, b->first),
			     n->tx_descs + b->first * DESC_SIZE, b->count * DESC_SIZE);
		n->tx.head = (b->first + b->count) % n->tx.size;
		n->tx_q_head = (n->tx_q_head + 1) % TX_BATCHES;
		n->tx_q_len--;
		done = true;
	}
	if (done) {
		raise_cause(n, CAUSE_TX);
		tx_kick(n);
	}
}

/* The frame of TX slot @slot was read (@ok), or could not be. */
static void tx_frame_ready(struct nic *n, uint32_t slot, bool ok,
			   const uint8_t *frame, uint32_t len)
{
	if (ok) {
		pf_net_send(n->net, frame, len);
		n->stats[TX_PACKETS]++;
		n->stats[TX_BYTES] += len;
		tx_set_status(n, slot, DESC_DD);
	} else {
		n->stats[TX_ERRORS]++;
		tx_set_status(n, slot, DESC_DD | DESC_ERR);
	}
}

static void tx_frame_done(void *opaque, enum pf_dma_result res,
			  const void *data, uint32_t len)
{
	struct dma_ctx *c = opaque;
	struct nic *n = c->n;
	uint32_t slot = c->first;
	struct tx_batch *b;

	if (!ctx_end(c, res) || !(b = tx_batch_of(n, slot)))
		return;
	tx_frame_ready(n, slot, res == PF_DMA_OK, data, len);
	b->pending--;
	tx_retire(n);
}

/*
 * Read the frame of TX slot @slot: in place (copied first: the guest may
 * change it while the backend reads it), else by DMA, counted in @b.
 * False if it cannot be read at all.
 */
static bool tx_frame_read(struct nic *n, struct tx_batch *b, uint32_t slot,
			  uint64_t addr, uint32_t flen)
{
	const uint8_t *p = pf_dma_map(n->dev, addr, flen, false);
	struct dma_ctx *fc;

	if (p) {
		memcpy(n->tx_frame, p, flen);
		pf_dma_unmap(n->dev, p);
		tx_frame_ready(n, slot, true, n->tx_frame, flen);
		return true;
	}
	fc = ctx_new(n, &n->tx, slot, 1);
	if (!fc || pf_dma_read(n->dev, addr, flen, tx_frame_done, fc) < 0) {
		free(fc);
		return false;
	}
	b->pending++;
	return true;
}

/* Validate each descriptor of batch @b, fetched (@ok), and read its frame. */
static void tx_descs_ready(struct nic *n, struct tx_batch *b, bool ok)
{
	for (uint32_t slot = b->first; slot < b->first + b->count; slot++) {
		const uint8_t *d = n->tx_descs + slot * DESC_SIZE;
		uint64_t addr = pf_le_load(d, 8);
		uint32_t flen = (uint32_t)pf_le_load(d + 8, 2);

		if (!ok || flen == 0 || flen > n->max_frame ||
		    !(pf_le_load(d + 10, 2) & TX_FLAG_EOP) ||
		    !tx_frame_read(n, b, slot, addr, flen)) {
			n->stats[TX_ERRORS]++;
			tx_set_status(n, slot, DESC_DD | DESC_ERR);
		}
	}
	b->pending--;            /* the descriptor fetch itself */
	tx_retire(n);
}

static void tx_descs_done(void *opaque, enum pf_dma_result res,
			  const void *data, uint32_t len)
{
	struct dma_ctx *c = opaque;
	struct nic *n = c->n;
	uint32_t first = c->first, count = c->count;
	struct tx_batch *b;

	if (!ctx_end(c, res) || !(b = tx_batch_of(n, first)) ||
	    b->first != first || b->count != count)
		return;
	if (res == PF_DMA_OK && len != count * DESC_SIZE)
		res = PF_DMA_FAILED;
	if (res == PF_DMA_OK)
		memcpy(n->tx_descs + first * DESC_SIZE, data, count * DESC_SIZE);
	else
		pf_dev_log(n->dev, PF_LOG_WARN, "TX ring unreadable at 0x%llx",
			   (unsigned long long)desc_addr(&n->tx, first));
	tx_descs_ready(n, b, res == PF_DMA_OK);
}

/*
 * Fetch batch @b's descriptors: in place (handled now, frames too), or by
 * DMA.  False if the framework refused the read.
 */
static bool tx_fetch(struct nic *n, struct tx_batch *b)
{
	uint32_t bytes = b->count * DESC_SIZE;
	uint64_t at = desc_addr(&n->tx, b->first);
	const uint8_t *d = pf_dma_map(n->dev, at, bytes, false);
	struct dma_ctx *c;

	if (d) {
		memcpy(n->tx_descs + b->first * DESC_SIZE, d, bytes);
		pf_dma_unmap(n->dev, d);
		tx_descs_ready(n, b, true);
		return true;
	}
	c = ctx_new(n, &n->tx, b->first, b->count);
	if (!c || pf_dma_read(n->dev, at, bytes, tx_descs_done, c) < 0) {
		free(c);
		return false;
	}
	return true;
}

/*
 * Fetch what the doorbells gave.  Batches fetched in place are handled at
 * once and retire into another call of this, which only asks the running
 * one to go round again: no recursion, however many batches.
 */
static void tx_kick(struct nic *n)
{
	if (!(n->ctrl & CTRL_TX_EN) || !ring_ready(&n->tx) ||
	    !pf_dev_connected(n->dev))
		return;
	if (n->tx_kicking) {
		n->tx_kick_again = true;
		return;
	}
	n->tx_kicking = true;
	do {
		n->tx_kick_again = false;
		while (n->tx_fetched != n->tx.tail && n->tx_q_len < TX_BATCHES &&
		       ring_ready(&n->tx)) {
			uint32_t first = n->tx_fetched;
			/* A batch never wraps: a wrapped doorbell makes two. */
			uint32_t end = n->tx.tail > first ? n->tx.tail : n->tx.size;
			struct tx_batch *b =
				&n->tx_q[(n->tx_q_head + n->tx_q_len) % TX_BATCHES];

			*b = (struct tx_batch){ first, end - first, 1 };
			n->tx_q_len++;
			n->tx_fetched = end % n->tx.size;
			if (!tx_fetch(n, b)) {
				/* Retried by the next doorbell. */
				n->tx_q_len--;
				n->tx_fetched = first;
				break;
			}
		}
	} while (n->tx_kick_again);
	n->tx_kicking = false;
}

/* ---- Registers (nic 2) ---- */

/*
 * The RX ring's geometry changed: forget everything fetched or in flight
 * for the old one (nic 2).  Reads still outstanding see a newer generation
 * when they complete and drop their result.
 */
static void rx_restart(struct nic *n)
{
	/* Used descriptors not written back yet belong to the old ring. */
	n->rx_wb_count = 0;
	n->rx_wb_frames = false;
	ev_prepare_stop(pf_dev_loop(n->dev), &n->rx_wb_flush);
	n->rx.gen++;
	n->rx.head = n->rx.tail = 0;
	n->rx_fetched = n->rx_valid = 0;
}

/* The same for TX: batches in flight are abandoned, never written back. */
static void tx_restart(struct nic *n)
{
	n->tx.gen++;
	n->tx.head = n->tx.tail = 0;
	n->tx_fetched = 0;
	n->tx_q_head = n->tx_q_len = 0;
}

static void power_on(struct nic *n)
{
	struct ev_loop *loop = pf_dev_loop(n->dev);

	n->ctrl = n->icr = n->ims = n->itr = n->irq_mode = 0;
	n->max_frame = FRAME_DEFAULT;
	n->rx.base = n->tx.base = 0;
	n->rx.size = n->tx.size = 0;
	rx_restart(n);
	tx_restart(n);
	for (int v = 0; v < N_VECTORS; v++) {
		ev_timer_stop(loop, &n->itr_timer[v]);
		n->irq_pending[v] = false;
		n->last_irq[v] = 0;
	}
	if (n->intx)
		pf_set_intx(n->dev, false);
	n->intx = false;
}

static bool ring_size_ok(uint32_t v)
{
	return v >= RING_MIN && v <= RING_MAX && !(v & (v - 1));
}

static uint32_t reg_read(struct nic *n, uint32_t off)
{
	switch (off) {
	case REG_CTRL: return n->ctrl;
	case REG_STATUS: return n->net && n->net->link_up ? STATUS_LINK : 0;
	case REG_MAC_LO: return (uint32_t)pf_le_load(n->mac, 4);
	case REG_MAC_HI: return (uint32_t)pf_le_load(n->mac + 4, 2);
	case REG_ICR: {
		uint32_t v = n->icr;

		/* Reading ICR acknowledges: clears it and lowers INTx (nic 4). */
		n->icr = 0;
		if (n->intx) {
			n->intx = false;
			pf_set_intx(n->dev, false);
		}
		return v;
	}
	case REG_IMS: return n->ims;
	case REG_ITR: return n->itr;
	case REG_IRQ_MODE: return n->irq_mode;
	case REG_MAX_FRAME: return n->max_frame;
	case REG_RX_BASE_LO: return (uint32_t)n->rx.base;
	case REG_RX_BASE_HI: return (uint32_t)(n->rx.base >> 32);
	case REG_RX_SIZE: return n->rx.size;
	case REG_RX_HEAD: return n->rx.head;
	case REG_RX_TAIL: return n->rx.tail;
	case REG_TX_BASE_LO: return (uint32_t)n->tx.base;
	case REG_TX_BASE_HI: return (uint32_t)(n->tx.base >> 32);
	case REG_TX_SIZE: return n->tx.size;
	case REG_TX_HEAD: return n->tx.head;
	case REG_TX_TAIL: return n->tx.tail;
	default: return 0;
	}
}

static void reg_write(struct nic *n, uint32_t off, uint32_t v)
{
	switch (off) {
	case REG_CTRL:
		if (v & CTRL_RST) {
			power_on(n);
			return;
		}
		n->ctrl = v & (CTRL_RX_EN | CTRL_TX_EN);
		tx_kick(n);
		return;
	case REG_IMS:
		n->ims |= v & CAUSES;
		/* Causes that occurred while masked interrupt now (nic 4). */
		for (uint32_t c = CAUSE_RX; c <= CAUSE_LINK; c <<= 1)
			if (v & c && n->icr & c && (n->irq_mode != MODE_INTX || !n->intx))
				raise_cause(n, c);
		return;
	case REG_IMC: n->ims &= ~v; return;
	case REG_ITR: n->itr = v > ITR_MAX ? ITR_MAX : v; return;
	case REG_IRQ_MODE: n->irq_mode = v <= MODE_MSIX ? v : MODE_INTX; return;
	case REG_MAX_FRAME:
		if (v >= FRAME_MIN && v <= FRAME_MAX)
			n->max_frame = v;
		return;
	case REG_RX_BASE_LO:
		n->rx.base = (n->rx.base & ~0xffffffffull) | (v & ~0xfu);
		rx_restart(n);
		return;
	case REG_RX_BASE_HI:
		n->rx.base = (n->rx.base & 0xffffffffull) | (uint64_t)v << 32;
		rx_restart(n);
		return;
	case REG_RX_SIZE:
		if (ring_size_ok(v)) {
			struct rx_slot *s = realloc(n->rx_slots, v * sizeof(*s));
			uint8_t *wb = s ? realloc(n->rx_wb, v * DESC_SIZE) : NULL;

			if (s)
				n->rx_slots = s;
			if (wb)
				n->rx_wb = wb;
			n->rx.size = wb ? v : 0;
			rx_restart(n);
		}
		return;
	case REG_RX_TAIL: rx_tail_write(n, v); return;
	case REG_TX_BASE_LO:
		n->tx.base = (n->tx.base & ~0xffffffffull) | (v & ~0xfu);
		tx_restart(n);
		return;
	case REG_TX_BASE_HI:
		n->tx.base = (n->tx.base & 0xffffffffull) | (uint64_t)v << 32;
		tx_restart(n);
		return;
	case REG_TX_SIZE:
		if (ring_size_ok(v)) {
			uint8_t *d = realloc(n->tx_descs, v * DESC_SIZE);

			if (d)
				n->tx_descs = d;
			n->tx.size = d ? v : 0;
			tx_restart(n);
		}
		return;
	case REG_TX_TAIL:
		if (!tail_ok(&n->tx, n->tx_fetched, v)) {
			pf_dev_log(n->dev, PF_LOG_DEBUG, "ignoring TX_TAIL %u", v);
			return;
		}
		n->tx.tail = v;
		tx_kick(n);
		return;
	}
}

static int nic_bar_read(void *s, unsigned bar, uint64_t off, void *data,
			uint32_t size)
{
	struct nic *n = s;

	if (bar != 0)
		return PF_CPL_UR;
	/* What the guest reads agrees with the ring in its memory. */
	rx_flush(n);
	memset(data, 0, size);
	if (off >= REG_STATS && off + size <= REG_STATS + 8 * N_STATS) {
		uint64_t v = n->stats[(off - REG_STATS) / 8];

		pf_le_store(data, size, v >> (8 * (off & 7)));
		return PF_CPL_OK;
	}
	if (size == 4)
		pf_le_store(data, 4, reg_read(n, (uint32_t)off));
	return PF_CPL_OK;
}

static void nic_bar_write(void *s, unsigned bar, uint64_t off, const void *data,
			  uint32_t size)
{
	if (bar != 0 || size != 4)
		return;
	rx_flush(s);
	reg_write(s, (uint32_t)off, (uint32_t)pf_le_load(data, 4));
}

static void nic_reset(void *s, enum pf_reset_kind kind)
{
	power_on(s);
}

static void nic_link(void *opaque, bool up)
{
	struct nic *n = opaque;

	pf_dev_log(n->dev, PF_LOG_INFO, "link %s", up ? "up" : "down");
	raise_cause(n, CAUSE_LINK);
}

static void nic_destroy(void *s)
{
	struct nic *n = s;

	for (int v = 0; v < N_VECTORS; v++)
		ev_timer_stop(pf_dev_loop(n->dev), &n->itr_timer[v]);
	ev_prepare_stop(pf_dev_loop(n->dev), &n->rx_wb_flush);
	pf_net_destroy(n->net);
	free(n->rx_slots);
	free(n->rx_wb);
	free(n->tx_descs);
	free(n);
}

static void *nic_create(struct pf_dev *dev, struct pf_identity *id)
{
	struct nic *n = calloc(1, sizeof(*n));
	char err[300];

	if (!n)
		return NULL;
	n->dev = dev;
	if (pf_opt_mac(dev, "mac", n->mac)) {
		free(n);
		return NULL;
	}
	for (int v = 0; v < N_VECTORS; v++) {
		ev_init(&n->itr_timer[v], itr_cb);
		n->itr_timer[v].data = n;
	}
	ev_prepare_init(&n->rx_wb_flush, rx_flush_cb);
	n->rx_wb_flush.data = n;
	power_on(n);
	n->net = pf_net_create(pf_dev_option(dev, "backend"), pf_dev_loop(dev), dev,
			       pf_dev_option(dev, "pcap"), nic_receive, nic_link, n,
			       err, sizeof(err));
	if (!n->net) {
		pf_dev_error(dev, "%s", err);
		free(n);
		return NULL;
	}

	id->vendor_id = 0x1234;
	id->device_id = 0xfe02;
	id->subsystem_vendor_id = 0x1234;
	id->subsystem_id = 0x0002;
	id->class_code = 0x020000;
	id->revision = 1;
	/* 32-bit registers and 64-bit statistics (docs/nic.md). */
	id->bars[0] = (struct pf_bar_decl){
		.kind = PF_BAR_MEM32, .size = 4096, .access_min = 4, .access_max = 8,
	};
	id->bars[1] = (struct pf_bar_decl){ .kind = PF_BAR_MEM32, .size = 4096 };
	id->intx_pin = 1;
	id->msi_vectors = 1;
	id->msix_vectors = N_VECTORS;
	id->msix_table_bar = 1;
	id->msix_table_offset = 0;
	id->msix_pba_bar = 1;
	id->msix_pba_offset = 0x800;
	return n;
}

static const struct pf_model_option nic_options[] = {
	{ "mac", "station MAC address", "52:54:00:12:34:56" },
	PF_NET_MODEL_OPTIONS,
	{ NULL, NULL, NULL },
};

static const struct pf_model_ops nic_ops = {
	.bar_read = nic_bar_read,
	.bar_write = nic_bar_write,
	.reset = nic_reset,
	.destroy = nic_destroy,
};

static struct pf_model nic_model = {
	.name = "nic",
	.summary = "Ethernet controller with descriptor rings (docs/nic.md)",
	.options = nic_options,
	.create = nic_create,
	.ops = &nic_ops,
};

PF_MODEL_REGISTER(nic_model);
