/*
 * e1000: the Intel 82540EM Gigabit Ethernet controller, for guests' stock
 * e1000 drivers.  Specified in docs/e1000.md ("e1000 N" below) from
 * Intel's 8254x Software Developer's Manual ("SDM x.y").  This file has
 * the registers, interrupts and the RX/TX rings; e1000_nvm.c the EEPROM
 * and PHY, e1000_offload.c the checksum offloads and TSO.  Frames come
 * and go through a packet backend (endpoint/net/), as for the nic model.
 */
#include <ev.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "e1000.h"
#include "log.h"
#include "net/backend.h"
#include "net/checksum.h"

#define DESC_SIZE    16u
#define RING_MAX     65528u    /* RDLEN/TDLEN bits 19:7 (e1000 7) */
#define TX_BATCHES   64u
#define TX_BATCH_MAX 256u      /* descriptors fetched by one DMA read */
#define TX_BUF_SIZE  (E1K_TSO_MAX + 256u)
#define RX_MIN_FRAME 60u       /* padded as on the wire, before the FCS */
#define FCS_LEN      4u
#define FRAME_STD    1522u     /* RCTL.LPE clear: with tag and FCS */
#define DELAY_UNIT   1.024e-6  /* RDTR/RADV/TIDV/TADV unit (SDM 13.4.30) */
#define ITR_UNIT     256e-9    /* ITR unit (SDM 13.4.18) */
#define REVIVE_IRQ_S 2.0       /* the longest a revival's INTx stays up (3.1) */
#define REVIVE_DOWN_S 3.0      /* a revival's first link-down, over a driver watchdog period */

struct e1k_ring {
	uint64_t base;
	uint32_t count;          /* descriptors; 0: no ring */
	uint32_t head, tail;
	/*
	 * Bumped by every geometry or head change and by reset: DMA issued
	 * for an older generation drops its result (e1000 7).
	 */
	uint32_t gen;
};

struct tx_batch {
	uint32_t first, count;
	uint32_t pending;        /* descriptor fetch + buffer reads outstanding */
	bool report;             /* a descriptor asked for status (RS) */
	bool delay;              /* ... and all of those allow delay (IDE) */
	bool failed;             /* the descriptors could not be read */
};

/* One packet being gathered from its descriptors (e1000 6.2). */
struct tx_pkt {
	struct e1k_txjob job;
	uint32_t gen;
	uint32_t total;          /* bytes of all its descriptors so far */
	unsigned refs;           /* reads outstanding, +1 while still open */
	bool eop, bad;
};

struct e1k {
	struct pf_dev *dev;
	struct pf_net *net;
	uint8_t mac[6];
	uint32_t regs[E1K_REGS_SIZE / 4];   /* plain registers (e1000 3.9) */
	uint32_t ioaddr;
	struct e1k_eeprom ee;
	struct e1k_phy phy;

	/* Interrupts (e1000 4). */
	uint32_t icr, ims;
	bool intx;
	/*
	 * The host's session has made no request yet: a function reset now
	 * is a reconnecting host's (docs/protocol.md 1.4), a revival (3.1):
	 * @revive_irq asserts INTx whatever IMS says until ICR is read, and
	 * the link reads down (@revive) until the driver resets the device,
	 * but for one spell of link up that lets it queue a frame.
	 */
	bool session_fresh, revive_irq;
	enum { REVIVE_NONE, REVIVE_DOWN, REVIVE_UP, REVIVE_DOWN_AGAIN } revive;
	ev_timer revive_timer, revive_link_timer;
	ev_tstamp last_assert;
	ev_timer itr_timer, rdtr_timer, radv_timer, tidv_timer, tadv_timer;

	struct e1k_ring rx, tx;

	/* RX: [rx.head, rx_valid) are cached, up to rx_fetched being read. */
	uint64_t *rx_addr;
	uint32_t rx_fetched, rx_valid;
	/*
	 * Write-backs of one pass of the loop (e1000 5.2): the descriptors
	 * frames used, whole, at their place in @rx_wb (indexed like the
	 * ring), go back in one DMA write per contiguous run
	 * [rx_wb_first, rx_wb_first + rx_wb_count) when the loop is about to
	 * wait (@rx_wb_flush), before any register access, and where the run
	 * would wrap; then the pass is reported (RXDMT0 from @rx_pass_head,
	 * the head the pass started from, and the receive timers).
	 */
	uint8_t *rx_wb;
	uint32_t rx_wb_first, rx_wb_count, rx_pass_head;
	bool rx_pass;
	ev_prepare rx_wb_flush;
	uint8_t rx_buf[E1K_FRAME_MAX + RX_MIN_FRAME + FCS_LEN];

	/* TX: batches in flight, oldest at tx_q_head (e1000 6.1). */
	struct tx_batch tx_q[TX_BATCHES];
	unsigned tx_q_head, tx_q_len;
	uint32_t tx_fetched;
	uint8_t *tx_descs;       /* copy of the ring, indexed like it */
	bool tx_kicking, tx_kick_again;
	struct e1k_txctx txctx;  /* last context descriptor (SDM 3.3.6) */
	struct tx_pkt *tx_open;  /* gathering at descriptor time */
	struct tx_pkt *tx_asm;   /* whose data tx_buf holds */
	uint8_t *tx_buf;

	uint64_t stats[N_STATS];            /* e1000 3.8 */
	/* Totals for the log at disconnect (tests read them). */
	uint64_t n_tx_frames, n_rx_frames, n_tso_pkts, n_tso_segs, n_tx_bad;
};

struct dma_ctx {
	struct e1k *e;
	struct e1k_ring *ring;
	uint32_t gen;
	uint32_t first, count;   /* descriptors, or the slot of a buffer */
	struct tx_pkt *pkt;      /* TX buffer reads: the packet, */
	uint32_t off, len;       /* where in it the buffer goes, its length */
};

static struct dma_ctx *ctx_new(struct e1k *e, struct e1k_ring *r,
			       uint32_t first, uint32_t count)
{
	struct dma_ctx *c = calloc(1, sizeof(*c));

	if (c)
		*c = (struct dma_ctx){ e, r, r->gen, first, count, NULL, 0, 0 };
	return c;
}

/* Whether a read issued as @c still concerns the ring as it is now. */
static bool ctx_live(const struct dma_ctx *c, enum pf_dma_result res)
{
	const struct e1k_ring *r = c->ring;

	return res != PF_DMA_CANCELLED && c->gen == r->gen && r->count &&
	       c->first < r->count && c->count <= r->count - c->first;
}

static uint64_t desc_addr(const struct e1k_ring *r, uint32_t idx)
{
	return r->base + (uint64_t)idx * DESC_SIZE;
}

/* Descriptors from @from up to @to, going round @r. */
static uint32_t ring_dist(const struct e1k_ring *r, uint32_t from, uint32_t to)
{
	return to >= from ? to - from : r->count - from + to;
}

/*
 * Heads and tails hold whatever 16-bit value the guest wrote (SDM
 * 13.4.28-29, 13.4.39-40: the driver's self-test reads them back); the
 * ring runs only while both lie inside it (e1000 7).
 */
static bool ring_live(const struct e1k_ring *r)
{
	return r->count && r->head < r->count && r->tail < r->count;
}

static bool link_up(const struct e1k *e)
{
	return e->net && e->net->link_up &&
	       (e->revive == REVIVE_NONE || e->revive == REVIVE_UP);
}

/* ---- Interrupts (e1000 4) ---- */

/*
 * INTA# is a level: asserted while ICR & IMS is non-zero, but at most
 * once per ITR interval (SDM 13.4.18): an assertion due sooner waits for
 * the interval's end.
 */
static void update_irq(struct e1k *e)
{
	struct ev_loop *loop = pf_dev_loop(e->dev);
	bool want = (e->icr & e->ims) != 0 || (e->revive_irq && e->icr);
	ev_tstamp gap, since;

	if (!want) {
		if (e->intx) {
			e->intx = false;
			pf_set_intx(e->dev, false);
		}
		return;
	}
	if (e->intx || ev_is_active(&e->itr_timer))
		return;
	gap = (e->regs[E1K_ITR / 4] & 0xffff) * ITR_UNIT;
	since = ev_now(loop) - e->last_assert;
	if (gap > 0 && since < gap) {
		ev_timer_set(&e->itr_timer, gap - since, 0);
		ev_timer_start(loop, &e->itr_timer);
		return;
	}
	e->intx = true;
	e->last_assert = ev_now(loop);
	pf_set_intx(e->dev, true);
}

static void raise_cause(struct e1k *e, uint32_t causes);

/* The link the model reports changed (e1000 3.1, 3.3): PHY bits and LSC. */
static void link_changed(struct e1k *e)
{
	e1k_phy_set_link(&e->phy, link_up(e));
	raise_cause(e, ICR_LSC);
}

/*
 * The function was reset by a host reconnecting to this endpoint, which
 * replaces one the guest had configured (e1000 3.1).  The guest's driver
 * believes its rings, interrupt mask and receive settings are in place;
 * only its own reset brings them back.  The link reads down and LSC is
 * latched, and INTx is asserted for it even though IMS is 0 (from just
 * after the reset's completion: the host takes no interrupt while the
 * function is being reset), for a bounded time.
 */
static void revive(struct e1k *e)
{
	struct ev_loop *loop = pf_dev_loop(e->dev);

	e->revive = REVIVE_DOWN;
	e1k_phy_set_link(&e->phy, false);
	e->icr |= ICR_LSC;
	ev_timer_set(&e->revive_timer, 0, 0);
	ev_timer_start(loop, &e->revive_timer);
	ev_timer_set(&e->revive_link_timer, REVIVE_DOWN_S, 0);
	ev_timer_start(loop, &e->revive_link_timer);
}

/*
 * Still no reset from the driver: it had nothing to send when the link
 * went (Linux's e1000 resets only a link-down device that has frames
 * queued).  The link comes up so that it queues some (e1000 3.1).
 */
static void revive_link_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct e1k *e = w->data;

	if (e->revive != REVIVE_DOWN)
		return;
	e->revive = REVIVE_UP;
	link_changed(e);
}

/* A TX tail written for a ring this device does not have: link down again. */
static void revive_tx(struct e1k *e)
{
	if (e->revive != REVIVE_UP || ring_live(&e->tx))
		return;
	pf_dev_log(e->dev, PF_LOG_INFO, "revived: the driver queued frames on a "
		   "ring it set up before; link down until it resets the device");
	e->revive = REVIVE_DOWN_AGAIN;
	link_changed(e);
}

static void revive_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct e1k *e = w->data;

	e->revive_irq = !e->revive_irq;
	if (e->revive_irq) {
		pf_dev_log(e->dev, PF_LOG_INFO, "revived by a reconnecting host: "
			   "link change interrupt raised for the guest's driver");
		ev_timer_set(&e->revive_timer, REVIVE_IRQ_S, 0);
		ev_timer_start(loop, &e->revive_timer);
	}
	update_irq(e);
}

static void raise_cause(struct e1k *e, uint32_t causes)
{
	e->icr |= causes & ICR_VALID;
	update_irq(e);
}

static void itr_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	update_irq(w->data);
}

static void stop_timer(struct e1k *e, ev_timer *t)
{
	ev_timer_stop(pf_dev_loop(e->dev), t);
}

/*
 * Delayed causes (SDM 3.2.7, 3.4): @timer restarts with every event,
 * @absolute runs from the first one; either firing raises @cause.
 */
static void delay_cause(struct e1k *e, ev_timer *timer, ev_timer *absolute,
			uint32_t delay, uint32_t abs_delay, uint32_t cause)
{
	struct ev_loop *loop = pf_dev_loop(e->dev);

	if (delay == 0) {
		ev_timer_stop(loop, timer);
		ev_timer_stop(loop, absolute);
		raise_cause(e, cause);
		return;
	}
	ev_timer_stop(loop, timer);
	ev_timer_set(timer, delay * DELAY_UNIT, 0);
	ev_timer_start(loop, timer);
	if (abs_delay && !ev_is_active(absolute)) {
		ev_timer_set(absolute, abs_delay * DELAY_UNIT, 0);
		ev_timer_start(loop, absolute);
	}
}

static void rx_delay_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct e1k *e = w->data;

	stop_timer(e, &e->rdtr_timer);
	stop_timer(e, &e->radv_timer);
	raise_cause(e, ICR_RXT0);
}

static void tx_delay_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct e1k *e = w->data;

	stop_timer(e, &e->tidv_timer);
	stop_timer(e, &e->tadv_timer);
	raise_cause(e, ICR_TXDW);
}

static void rx_done(struct e1k *e)
{
	delay_cause(e, &e->rdtr_timer, &e->radv_timer,
		    e->regs[E1K_RDTR / 4] & 0xffff, e->regs[E1K_RADV / 4] & 0xffff,
		    ICR_RXT0);
}

static void tx_done(struct e1k *e, bool delay)
{
	delay_cause(e, &e->tidv_timer, &e->tadv_timer,
		    delay ? e->regs[E1K_TIDV / 4] & 0xffff : 0,
		    e->regs[E1K_TADV / 4] & 0xffff, ICR_TXDW);
}

/* ---- Statistics (e1000 3.8) ---- */

static void stat_add(struct e1k *e, unsigned idx, uint64_t v)
{
	e->stats[idx] += v;
}

/* Reading clears; a 64-bit pair clears when its high half is read. */
static uint32_t stat_read(struct e1k *e, unsigned idx)
{
	uint64_t v;

	switch (idx) {
	case ST_GORCL: case ST_GOTCL: case ST_TORL: case ST_TOTL:
		return (uint32_t)e->stats[idx];
	case ST_GORCH: case ST_GOTCH: case ST_TORH: case ST_TOTH:
		v = e->stats[idx - 1];
		e->stats[idx - 1] = 0;
		return (uint32_t)(v >> 32);
	}
	v = e->stats[idx];
	e->stats[idx] = 0;
	return v > 0xffffffffu ? 0xffffffffu : (uint32_t)v;
}

static void count_frame(struct e1k *e, const uint8_t *dst, size_t octets, bool rx)
{
	bool bcast = !memcmp(dst, "\xff\xff\xff\xff\xff\xff", 6);

	if (rx) {
		stat_add(e, ST_GPRC, 1);
		stat_add(e, ST_TPR, 1);
		stat_add(e, ST_GORCL, octets);
		stat_add(e, ST_TORL, octets);
		stat_add(e, bcast ? ST_BPRC : ST_MPRC, bcast || dst[0] & 1);
	} else {
		stat_add(e, ST_GPTC, 1);
		stat_add(e, ST_TPT, 1);
		stat_add(e, ST_GOTCL, octets);
		stat_add(e, ST_TOTL, octets);
		stat_add(e, bcast ? ST_BPTC : ST_MPTC, bcast || dst[0] & 1);
	}
}

/* ---- RX (e1000 5) ---- */

/* RX descriptors [first, first + count) read: their buffers are usable. */
static void rx_descs_ready(struct e1k *e, uint32_t first, uint32_t count,
			   const uint8_t *data)
{
	for (uint32_t i = 0; i < count; i++)
		e->rx_addr[first + i] = pf_le_load(data + i * DESC_SIZE, 8);
	/* Fetches complete in the order issued (spec 5.2). */
	e->rx_valid = (first + count) % e->rx.count;
}

static void rx_descs_done(void *opaque, enum pf_dma_result res,
			  const void *data, uint32_t len)
{
	struct dma_ctx *c = opaque;
	struct e1k *e = c->e;
	uint32_t first = c->first, count = c->count;
	bool live = ctx_live(c, res);

	free(c);
	if (!live)
		return;
	if (res != PF_DMA_OK || len != count * DESC_SIZE) {
		/*
		 * Only what was read may receive frames: fetches issued after
		 * this one are dropped (their slots would follow a gap) and the
		 * next tail write reads again from here (e1000 7).  Earlier
		 * fetches have completed (spec 5.2), so rx_valid is @first.
		 */
		pf_dev_log(e->dev, PF_LOG_WARN, "RX ring unreadable at 0x%llx",
			   (unsigned long long)desc_addr(&e->rx, first));
		e->rx.gen++;
		e->rx_fetched = e->rx_valid;
		return;
	}
	rx_descs_ready(e, first, count, data);
}

/*
 * Read RX descriptors [first, first + count) in at most two pieces, in
 * place where guest memory is shared; returns how many are being read
 * (fewer if the framework refused).
 */
static uint32_t rx_fetch_descs(struct e1k *e, uint32_t first, uint32_t count)
{
	struct e1k_ring *r = &e->rx;
	uint32_t issued = 0;

	while (issued < count) {
		uint32_t left = count - issued;
		uint32_t run = r->count - first < left ? r->count - first : left;
		const uint8_t *d = pf_dma_map(e->dev, desc_addr(r, first),
					      run * DESC_SIZE, false);
		struct dma_ctx *c;

		if (d) {
			rx_descs_ready(e, first, run, d);
			pf_dma_unmap(e->dev, d);
		} else if (!(c = ctx_new(e, r, first, run)) ||
			   pf_dma_read(e->dev, desc_addr(r, first),
				       run * DESC_SIZE, rx_descs_done, c) < 0) {
			free(c);
			break;
		}
		first = (first + run) % r->count;
		issued += run;
	}
	return issued;
}

/*
 * A tail write may only give descriptors: one that would take back
 * descriptors already fetched is ignored (e1000 7).
 */
static bool tail_ok(const struct e1k_ring *r, uint32_t fetched, uint32_t tail)
{
	return r->count && tail < r->count &&
	       ring_dist(r, r->head, tail) >= ring_dist(r, r->head, fetched);
}

/* Read the descriptors the guest has given and the device not yet fetched. */
static void rx_fetch(struct e1k *e)
{
	uint32_t count;

	if (!ring_live(&e->rx) || !pf_dev_connected(e->dev))
		return;
	count = ring_dist(&e->rx, e->rx_fetched, e->rx.tail);
	if (count)
		count = rx_fetch_descs(e, e->rx_fetched, count);
	e->rx_fetched = (e->rx_fetched + count) % e->rx.count;
}

static void rx_tail_write(struct e1k *e, uint32_t tail)
{
	if (ring_live(&e->rx) && tail < e->rx.count &&
	    !tail_ok(&e->rx, e->rx_fetched, tail)) {
		pf_dev_log(e->dev, PF_LOG_DEBUG, "ignoring RDT %u", tail);
		return;
	}
	e->rx.tail = tail;
	rx_fetch(e);
}

static uint32_t ethertype(const uint8_t *f)
{
	return (uint32_t)f[12] << 8 | f[13];
}

static bool bit_set(const uint32_t *table, unsigned bit)
{
	return table[bit / 32] >> (bit % 32) & 1;
}

/* Exact match in the 16 receive address registers (SDM 13.5.2-3). */
static bool ra_match(const struct e1k *e, const uint8_t *dst)
{
	for (unsigned i = 0; i < 16; i++) {
		uint32_t lo = e->regs[E1K_RA / 4 + 2 * i];
		uint32_t hi = e->regs[E1K_RA / 4 + 2 * i + 1];
		uint8_t a[6];

		if (!(hi & RAH_AV))
			continue;
		pf_le_store(a, 4, lo);
		pf_le_store(a + 4, 2, hi & 0xffff);
		if (!memcmp(a, dst, 6))
			return true;
	}
	return false;
}

/* The multicast table, indexed by 12 bits of the address RCTL.MO picks. */
static bool mta_match(const struct e1k *e, const uint8_t *dst)
{
	unsigned mo = e->regs[E1K_RCTL / 4] >> RCTL_MO_SHIFT & 3;
	unsigned shift = mo == 3 ? 0 : 4 - mo;
	unsigned hash = ((dst[4] >> shift) | (unsigned)dst[5] << (8 - shift)) & 0xfff;

	return bit_set(&e->regs[E1K_MTA / 4], hash);
}

/* e1000 5.1: whether a frame passes the address and VLAN filters. */
static bool rx_accept(const struct e1k *e, const uint8_t *f, size_t len)
{
	uint32_t rctl = e->regs[E1K_RCTL / 4];
	const uint8_t *dst = f;
	bool bcast = !memcmp(dst, "\xff\xff\xff\xff\xff\xff", 6);

	if (len >= 18 && ethertype(f) == (e->regs[E1K_VET / 4] & 0xffff) &&
	    rctl & RCTL_VFE) {
		unsigned vid = (f[14] << 8 | f[15]) & 0xfff;

		if (!bit_set(&e->regs[E1K_VFTA / 4], vid))
			return false;
	}
	if (bcast && rctl & RCTL_BAM)
		return true;
	if (dst[0] & 1)
		return rctl & RCTL_MPE || ra_match(e, dst) || mta_match(e, dst);
	return rctl & RCTL_UPE || ra_match(e, dst);
}

static uint32_t rx_buf_size(uint32_t rctl)
{
	static const uint32_t plain[4] = { 2048, 1024, 512, 256 };
	static const uint32_t ext[4] = { 2048, 16384, 8192, 4096 };
	unsigned code = rctl >> RCTL_BSIZE_SHIFT & 3;

	return rctl & RCTL_BSEX ? ext[code] : plain[code];
}

/* No descriptor for a frame: count and flag the overrun (SDM 13.4.17). */
static void rx_missed(struct e1k *e)
{
	stat_add(e, ST_MPC, 1);
	stat_add(e, ST_RNBC, 1);
	raise_cause(e, ICR_RXO);
}

/* Write the run of used RX descriptors back, in one DMA write. */
static void rx_wb_write(struct e1k *e)
{
	if (!e->rx_wb_count)
		return;
	pf_dma_write(e->dev, desc_addr(&e->rx, e->rx_wb_first),
		     e->rx_wb + e->rx_wb_first * DESC_SIZE,
		     e->rx_wb_count * DESC_SIZE);
	e->rx_wb_count = 0;
}

/* The pass's frames are in the ring: write back, then report (5.1). */
static void rx_flush(struct e1k *e)
{
	uint32_t before, after, thr;

	if (!e->rx_pass)
		return;
	rx_wb_write(e);
	e->rx_pass = false;
	ev_prepare_stop(pf_dev_loop(e->dev), &e->rx_wb_flush);
	/* Free descriptors fell to the RCTL.RDMTS threshold (SDM 13.4.22). */
	before = ring_dist(&e->rx, e->rx_pass_head, e->rx.tail);
	after = ring_dist(&e->rx, e->rx.head, e->rx.tail);
	thr = e->rx.count >> ((e->regs[E1K_RCTL / 4] >> RCTL_RDMTS_SHIFT & 3) + 1);
	if (before > thr && after <= thr)
		raise_cause(e, ICR_RXDMT0);
	rx_done(e);
}

static void rx_flush_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	rx_flush(w->data);
}

/* Forget the pass's write-backs: the ring they belong to is gone. */
static void rx_forget(struct e1k *e)
{
	e->rx_wb_count = 0;
	e->rx_pass = false;
	ev_prepare_stop(pf_dev_loop(e->dev), &e->rx_wb_flush);
}

/* RX descriptor @idx is used: its write-back @wb goes with the run's. */
static void rx_wb_add(struct e1k *e, uint32_t idx, const uint8_t wb[8])
{
	uint8_t *d = e->rx_wb + idx * DESC_SIZE;

	if (!e->rx_pass) {
		e->rx_pass = true;
		e->rx_pass_head = e->rx.head;
		ev_prepare_start(pf_dev_loop(e->dev), &e->rx_wb_flush);
	}
	/* A run never wraps: one contiguous write each. */
	if (e->rx_wb_count && idx == 0)
		rx_wb_write(e);
	if (!e->rx_wb_count)
		e->rx_wb_first = idx;
	e->rx_wb_count++;
	pf_le_store(d, 8, e->rx_addr[idx]);
	memcpy(d + 8, wb, 8);
}

/*
 * Write the frame in @e->rx_buf to descriptors from the head (e1000 5.2);
 * false if it was dropped.  The write-backs go with the pass's others.
 */
static bool rx_store(struct e1k *e, size_t total, uint8_t status, uint8_t errors,
		     uint16_t csum, uint16_t special)
{
	uint32_t bsize = rx_buf_size(e->regs[E1K_RCTL / 4]);
	uint32_t need = (uint32_t)((total + bsize - 1) / bsize);
	uint32_t idx = e->rx.head;

	if (ring_dist(&e->rx, e->rx.head, e->rx_valid) < need) {
		rx_missed(e);
		return false;
	}
	/* Data first, then write-backs, then the interrupt (spec 5.1). */
	for (uint32_t i = 0, off = 0; i < need; i++, off += bsize) {
		uint32_t n = total - off < bsize ? (uint32_t)(total - off) : bsize;

		if (pf_dma_write(e->dev, e->rx_addr[(idx + i) % e->rx.count],
				 e->rx_buf + off, n) < 0) {
			rx_missed(e);
			return false;
		}
	}
	for (uint32_t i = 0, off = 0; i < need; i++, off += bsize) {
		uint32_t n = total - off < bsize ? (uint32_t)(total - off) : bsize;
		bool last = i + 1 == need;
		uint8_t wb[8];

		pf_le_store(wb, 2, n);
		pf_le_store(wb + 2, 2, last ? csum : 0);
		wb[4] = (uint8_t)(RXD_DD | (last ? RXD_EOP | status : 0));
		wb[5] = last ? errors : 0;
		pf_le_store(wb + 6, 2, last ? special : 0);
		rx_wb_add(e, idx, wb);
		idx = (idx + 1) % e->rx.count;
	}
	e->rx.head = idx;
	return true;
}

static void e1k_receive(void *opaque, const uint8_t *frame, size_t len)
{
	struct e1k *e = opaque;
	uint32_t rctl = e->regs[E1K_RCTL / 4];
	uint32_t max = rctl & RCTL_LPE ? E1K_FRAME_MAX : FRAME_STD;
	uint8_t status = 0, errors = 0;
	uint16_t csum, special = 0;
	size_t n = len;

	if (!pf_dev_connected(e->dev) || !(rctl & RCTL_EN) || !ring_live(&e->rx) ||
	    len < 14 || !rx_accept(e, frame, len))
		return;
	if (len + FCS_LEN > max) {
		stat_add(e, ST_ROC, 1);
		return;
	}
	/* CTRL.VME: the tag moves to the descriptor (SDM 3.2.3, 13.4.1). */
	if (e->regs[E1K_CTRL / 4] & CTRL_VME && len >= 18 &&
	    ethertype(frame) == (e->regs[E1K_VET / 4] & 0xffff)) {
		special = (uint16_t)(frame[14] << 8 | frame[15]);
		status |= RXD_VP;
		memcpy(e->rx_buf, frame, 12);
		memcpy(e->rx_buf + 12, frame + 16, len - 16);
		n = len - 4;
	} else {
		memcpy(e->rx_buf, frame, len);
	}
	if (n < RX_MIN_FRAME) {
		memset(e->rx_buf + n, 0, RX_MIN_FRAME - n);
		n = RX_MIN_FRAME;
	}
	e1k_rx_checksum(e->rx_buf, n, e->regs[E1K_RXCSUM / 4], &status, &errors, &csum);
	if (!(rctl & RCTL_SECRC)) {
		pf_le_store(e->rx_buf + n, 4, pf_crc32_eth(e->rx_buf, n));
		n += FCS_LEN;
	}
	if (rx_store(e, n, status, errors, csum, special)) {
		count_frame(e, frame, len + FCS_LEN, true);
		e->n_rx_frames++;
	}
}

/* ---- TX (e1000 6) ---- */

static struct tx_batch *tx_batch_of(struct e1k *e, uint32_t slot)
{
	for (unsigned i = 0; i < e->tx_q_len; i++) {
		struct tx_batch *b = &e->tx_q[(e->tx_q_head + i) % TX_BATCHES];

		if (slot - b->first < b->count)
			return b;
	}
	return NULL;
}

static void tx_emit(void *opaque, const uint8_t *frame, size_t len)
{
	struct e1k *e = opaque;

	pf_net_send(e->net, frame, len);
	count_frame(e, frame, len + FCS_LEN, false);
	e->n_tx_frames++;
}

/* All of a packet's data is in (or it failed): send it (e1000 6.3). */
static void tx_pkt_finish(struct e1k *e, struct tx_pkt *p)
{
	int sent;

	if (!p->total)
		return;
	sent = e1k_tx_finish(&p->job, e->tx_buf, p->total, tx_emit, e);
	if (sent < 0) {
		e->n_tx_bad++;
		if (p->job.tse)
			stat_add(e, ST_TSCTFC, 1);
		pf_dev_log(e->dev, PF_LOG_DEBUG, "TX packet of %u bytes dropped: "
			   "offload fields do not fit it", p->total);
	} else if (p->job.tse) {
		e->n_tso_pkts++;
		e->n_tso_segs += (uint64_t)sent;
	}
}

static void tx_pkt_put(struct e1k *e, struct tx_pkt *p)
{
	if (--p->refs)
		return;
	if (p->eop && !p->bad && p->gen == e->tx.gen && e->tx_asm == p)
		tx_pkt_finish(e, p);
	if (e->tx_asm == p)
		e->tx_asm = NULL;
	free(p);
}

static void tx_kick(struct e1k *e);

/* Write finished batches back, oldest first, and report them. */
static void tx_retire(struct e1k *e)
{
	bool done = false, report = false, delay = true;

	while (e->tx_q_len && e->tx_q[e->tx_q_head].pending == 0) {
		struct tx_batch *b = &e->tx_q[e->tx_q_head];

		if (b->report && !b->failed) {
			pf_dma_write(e->dev, desc_addr(&e->tx, b->first),
				     e->tx_descs + b->first * DESC_SIZE,
				     b->count * DESC_SIZE);
			report = true;
			delay = delay && b->delay;
		}
		e->tx.head = (b->first + b->count) % e->tx.count;
		e->tx_q_head = (e->tx_q_head + 1) % TX_BATCHES;
		e->tx_q_len--;
		done = true;
	}
	if (!done)
		return;
	if (report)
		tx_done(e, delay);
	if (e->tx.head == e->tx.tail)
		raise_cause(e, ICR_TXQE);
	tx_kick(e);
}

static void tx_buf_done(void *opaque, enum pf_dma_result res,
			const void *data, uint32_t len)
{
	struct dma_ctx *c = opaque;
	struct e1k *e = c->e;
	struct tx_pkt *p = c->pkt;
	bool live = ctx_live(c, res);
	struct tx_batch *b = live ? tx_batch_of(e, c->first) : NULL;

	if (!live || res != PF_DMA_OK || len != c->len) {
		p->bad = true;
	} else {
		/* Completions come in issue order: one packet gathers at a time. */
		e->tx_asm = p;
		memcpy(e->tx_buf + c->off, data, len);
	}
	free(c);
	tx_pkt_put(e, p);
	if (b) {
		b->pending--;
		tx_retire(e);
	}
}

/* Start (or continue) the packet a data or legacy descriptor belongs to. */
static struct tx_pkt *tx_pkt_get(struct e1k *e)
{
	struct tx_pkt *p = e->tx_open;

	if (p)
		return p;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->gen = e->tx.gen;
	p->refs = 1;
	p->job.ctx = e->txctx;
	p->job.vet = (uint16_t)e->regs[E1K_VET / 4];
	e->tx_open = p;
	return p;
}

/* Gather @len bytes at @addr into the open packet for TX slot @slot. */
static void tx_gather(struct e1k *e, struct tx_batch *b, struct tx_pkt *p,
		      uint32_t slot, uint64_t addr, uint32_t len)
{
	uint32_t limit = p->job.tse ? TX_BUF_SIZE : E1K_FRAME_MAX;
	const uint8_t *src;
	struct dma_ctx *c;

	if (!len || p->bad)
		return;
	if (len > limit - p->total || p->total + len > limit) {
		p->bad = true;          /* too big for the part (e1000 7) */
		return;
	}
	src = pf_dma_map(e->dev, addr, len, false);
	if (src) {
		/* No earlier read is outstanding (device.h): ours in turn. */
		e->tx_asm = p;
		memcpy(e->tx_buf + p->total, src, len);
		pf_dma_unmap(e->dev, src);
		p->total += len;
		return;
	}
	c = ctx_new(e, &e->tx, slot, 1);
	if (!c || pf_dma_read(e->dev, addr, len, tx_buf_done, c) < 0) {
		free(c);
		p->bad = true;
		return;
	}
	c->len = len;
	c->pkt = p;
	c->off = p->total;
	p->total += len;
	p->refs++;
	b->pending++;
}

#define TXD_DEXT  (1u << 29)
#define TXD_EOP   0x01
#define TXD_IC    0x04      /* legacy: insert checksum */
#define TXD_TSE   0x04      /* data descriptor: segment */
#define TXD_RS    0x08
#define TXD_VLE   0x40
#define TXD_IDE   0x80
#define POPTS_IXSM 0x01
#define POPTS_TXSM 0x02

/* A TCP/IP context descriptor (SDM 3.3.6): kept for the packets after it. */
static void tx_context(struct e1k *e, const uint8_t *d, uint32_t lower)
{
	struct e1k_txctx *x = &e->txctx;

	x->ipcss = d[0];
	x->ipcso = d[1];
	x->ipcse = (uint16_t)pf_le_load(d + 2, 2);
	x->tucss = d[4];
	x->tucso = d[5];
	x->tucse = (uint16_t)pf_le_load(d + 6, 2);
	x->paylen = lower & 0xfffff;
	x->tucmd = (uint8_t)(lower >> 24);
	x->hdrlen = d[13];
	x->mss = (uint16_t)pf_le_load(d + 14, 2);
	if (x->tucmd & TUCMD_TSE)
		stat_add(e, ST_TSCTC, 1);
}

/* Handle TX descriptor @slot of batch @b at fetch time (e1000 6.2). */
static void tx_desc(struct e1k *e, struct tx_batch *b, uint32_t slot)
{
	uint8_t *d = e->tx_descs + slot * DESC_SIZE;
	uint32_t lower = (uint32_t)pf_le_load(d + 8, 4);
	bool dext = lower & TXD_DEXT;
	unsigned dtyp = lower >> 20 & 0xf;
	uint8_t cmd = (uint8_t)(lower >> 24);
	struct tx_pkt *p;
	uint32_t len;

	if (dext && dtyp == 0) {
		tx_context(e, d, lower);
	} else if (!dext || dtyp == 1) {
		bool first = !e->tx_open;

		p = tx_pkt_get(e);
		len = dext ? lower & 0xfffff : lower & 0xffff;
		if (!p) {
			pf_dev_log(e->dev, PF_LOG_WARN, "TX: out of memory");
		} else {
			if (first && dext) {
				/* POPTS and TSE count in the first descriptor. */
				p->job.tse = cmd & TXD_TSE;
				p->job.ixsm = d[13] & POPTS_IXSM;
				p->job.txsm = d[13] & POPTS_TXSM;
			} else if (first) {
				p->job.legacy_ic = cmd & TXD_IC;
				p->job.cso = d[10];
				p->job.css = d[13];
			}
			tx_gather(e, b, p, slot, pf_le_load(d, 8), len);
			if (cmd & TXD_EOP) {
				/* VLE and the tag count in the last one (SDM 3.3.3). */
				p->job.vle = cmd & TXD_VLE &&
					     e->regs[E1K_CTRL / 4] & CTRL_VME;
				p->job.vlan_tci = (uint16_t)pf_le_load(d + 14, 2);
				p->eop = true;
				e->tx_open = NULL;
				tx_pkt_put(e, p);
			}
		}
	}
	/* Status is written back for descriptors that ask (SDM 3.3.3.2). */
	if (cmd & TXD_RS) {
		d[12] |= 0x01;          /* DD */
		b->delay = (b->report ? b->delay : true) && cmd & TXD_IDE;
		b->report = true;
	}
}

/* The descriptors of batch @b were read (@ok): handle each (e1000 6.2). */
static void tx_descs_ready(struct e1k *e, struct tx_batch *b, bool ok)
{
	if (ok) {
		for (uint32_t slot = b->first; slot < b->first + b->count; slot++)
			tx_desc(e, b, slot);
	} else {
		pf_dev_log(e->dev, PF_LOG_WARN, "TX ring unreadable at 0x%llx",
			   (unsigned long long)desc_addr(&e->tx, b->first));
		b->failed = true;
	}
	b->pending--;            /* the descriptor fetch itself */
	tx_retire(e);
}

static void tx_descs_done(void *opaque, enum pf_dma_result res,
			  const void *data, uint32_t len)
{
	struct dma_ctx *c = opaque;
	struct e1k *e = c->e;
	uint32_t first = c->first, count = c->count;
	bool live = ctx_live(c, res);
	struct tx_batch *b;

	free(c);
	if (!live || !(b = tx_batch_of(e, first)) || b->first != first ||
	    b->count != count)
		return;
	if (res == PF_DMA_OK && len == count * DESC_SIZE)
		memcpy(e->tx_descs + first * DESC_SIZE, data, count * DESC_SIZE);
	tx_descs_ready(e, b, res == PF_DMA_OK && len == count * DESC_SIZE);
}

/*
 * Fetch batch @b's descriptors: in place (handled now, buffers too where
 * they can be), or by DMA.  False if the framework refused the read.
 */
static bool tx_fetch(struct e1k *e, struct tx_batch *b)
{
	uint32_t bytes = b->count * DESC_SIZE;
	uint64_t at = desc_addr(&e->tx, b->first);
	const uint8_t *d = pf_dma_map(e->dev, at, bytes, false);
	struct dma_ctx *c;

	if (d) {
		memcpy(e->tx_descs + b->first * DESC_SIZE, d, bytes);
		pf_dma_unmap(e->dev, d);
		tx_descs_ready(e, b, true);
		return true;
	}
	c = ctx_new(e, &e->tx, b->first, b->count);
	if (!c || pf_dma_read(e->dev, at, bytes, tx_descs_done, c) < 0) {
		free(c);
		return false;
	}
	return true;
}

/*
 * Fetch what the tail gave.  Batches fetched in place are handled at once
 * and retire into another call of this, which only asks the running one
 * to go round again: no recursion, however many batches.
 */
static void tx_kick(struct e1k *e)
{
	if (!(e->regs[E1K_TCTL / 4] & TCTL_EN) || !ring_live(&e->tx) ||
	    !pf_dev_connected(e->dev))
		return;
	if (e->tx_kicking) {
		e->tx_kick_again = true;
		return;
	}
	e->tx_kicking = true;
	do {
		e->tx_kick_again = false;
		while (e->tx_fetched != e->tx.tail && e->tx_q_len < TX_BATCHES &&
		       ring_live(&e->tx) && e->regs[E1K_TCTL / 4] & TCTL_EN) {
			uint32_t first = e->tx_fetched;
			/* A batch never wraps: a wrapped tail makes two batches. */
			uint32_t end = e->tx.tail > first ? e->tx.tail : e->tx.count;
			uint32_t n = end - first < TX_BATCH_MAX ? end - first : TX_BATCH_MAX;
			struct tx_batch *b =
				&e->tx_q[(e->tx_q_head + e->tx_q_len) % TX_BATCHES];

			*b = (struct tx_batch){ first, n, 1, false, false, false };
			e->tx_q_len++;
			e->tx_fetched = (first + n) % e->tx.count;
			if (!tx_fetch(e, b)) {
				/* Retried by the next tail write. */
				e->tx_q_len--;
				e->tx_fetched = first;
				break;
			}
		}
	} while (e->tx_kick_again);
	e->tx_kicking = false;
}

/* ---- Ring geometry (e1000 7) ---- */

/* Forget everything fetched or in flight for the RX ring as it was. */
static void rx_restart(struct e1k *e, uint32_t head)
{
	rx_forget(e);
	e->rx.gen++;
	e->rx.head = e->rx_fetched = e->rx_valid = head;
}

/* The same for TX: batches in flight are abandoned, never written back. */
static void tx_restart(struct e1k *e, uint32_t head)
{
	e->tx.gen++;
	e->tx.head = e->tx_fetched = head;
	e->tx_q_head = e->tx_q_len = 0;
	if (e->tx_open) {
		e->tx_open->bad = true;
		tx_pkt_put(e, e->tx_open);
		e->tx_open = NULL;
	}
}

/* RDLEN/TDLEN: bytes, a multiple of 128 (SDM 13.4.27). */
static void set_ring_len(struct e1k *e, bool rx, uint32_t v)
{
	/* A driver that sets its rings up again without a reset ends a revival. */
	if (e->revive != REVIVE_NONE) {
		e->revive = REVIVE_NONE;
		link_changed(e);
	}
	uint32_t count = (v & 0xfff80u) / DESC_SIZE;
	void *mem = NULL;

	if (count && count <= RING_MAX && rx) {
		uint8_t *wb = realloc(e->rx_wb, (size_t)count * DESC_SIZE);

		if (wb)
			e->rx_wb = wb;
		mem = wb ? realloc(e->rx_addr, count * sizeof(uint64_t)) : NULL;
	} else if (count && count <= RING_MAX) {
		mem = realloc(e->tx_descs, (size_t)count * DESC_SIZE);
	}
	if (mem && rx)
		e->rx_addr = mem;
	else if (mem)
		e->tx_descs = mem;
	if (rx) {
		e->rx.count = mem ? count : 0;
		e->rx.tail = 0;
		rx_restart(e, 0);
	} else {
		e->tx.count = mem ? count : 0;
		e->tx.tail = 0;
		tx_restart(e, 0);
	}
}

static void set_ring_base(struct e1k *e, bool rx, bool high, uint32_t v)
{
	struct e1k_ring *r = rx ? &e->rx : &e->tx;

	if (high)
		r->base = (r->base & 0xffffffffull) | (uint64_t)v << 32;
	else
		r->base = (r->base & ~0xffffffffull) | (v & ~0xfu);
	r->tail = 0;
	if (rx)
		rx_restart(e, 0);
	else
		tx_restart(e, 0);
}

/* ---- Reset (e1000 3.1) ---- */

static void device_reset(struct e1k *e)
{
	ev_timer *timers[] = { &e->itr_timer, &e->rdtr_timer, &e->radv_timer,
			       &e->tidv_timer, &e->tadv_timer, &e->revive_timer,
			       &e->revive_link_timer };

	for (size_t i = 0; i < sizeof(timers) / sizeof(timers[0]); i++)
		stop_timer(e, timers[i]);
	e->revive_irq = false;
	e->revive = REVIVE_NONE;
	e->icr = e->ims = 0;
	update_irq(e);
	e->last_assert = 0;
	memset(e->regs, 0, sizeof(e->regs));
	e->regs[E1K_CTRL / 4] = CTRL_SLU | 1u | 2u << 8;   /* FD, 1000 Mb/s */
	e->regs[E1K_VET / 4] = 0x8100;
	e->regs[E1K_RXCSUM / 4] = RXCSUM_IPOFL;
	e->regs[E1K_PBA / 4] = 0x00100030;                  /* 48 KB RX, 16 KB TX */
	e->regs[E1K_LEDCTL / 4] = 0x602;  /* as QEMU's e1000; only ethtool -p reads it */
	/* The EEPROM's address loads into receive address 0 (SDM 5.6.1). */
	e->regs[E1K_RA / 4] = (uint32_t)pf_le_load(e->mac, 4);
	e->regs[E1K_RA / 4 + 1] = (uint32_t)pf_le_load(e->mac + 4, 2) | RAH_AV;
	e->rx.base = e->tx.base = 0;
	e->rx.count = e->tx.count = 0;
	e->rx.tail = e->tx.tail = 0;
	rx_restart(e, 0);
	tx_restart(e, 0);
	e->tx_asm = NULL;
	memset(&e->txctx, 0, sizeof(e->txctx));
	e1k_eeprom_reset(&e->ee);
	e1k_phy_reset(&e->phy, link_up(e));
	memset(e->stats, 0, sizeof(e->stats));
}

/* ---- Registers (e1000 3) ---- */

static uint32_t reg_read(struct e1k *e, uint32_t off)
{
	uint32_t v;

	e->session_fresh = false;
	if (off >= E1K_STATS && off < E1K_STATS_END)
		return stat_read(e, (off - E1K_STATS) / 4);
	switch (off) {
	case E1K_STATUS:
		return STATUS_FD | STATUS_SPEED_1000 | STATUS_ASDV_1000 |
		       (link_up(e) ? STATUS_LU : 0);
	case E1K_EECD: return e1k_eecd_read(&e->ee);
	case E1K_EERD: return e1k_eerd_read(&e->ee);
	case E1K_ICR:
		/* Reading acknowledges every cause and lowers INTA# (SDM 13.4.17). */
		v = e->icr;
		e->icr = 0;
		e->revive_irq = false;
		stop_timer(e, &e->revive_timer);
		update_irq(e);
		return v;
	/*
	 * ICS reads as ICR without clearing it: real parts do, and drivers
	 * (VxWorks') rely on it, as QEMU's e1000 notes.
	 */
	case E1K_ICS: return e->icr;
	case E1K_IMC: return 0;
	case E1K_IMS: return e->ims;
	case E1K_RDH: return e->rx.head;
	case E1K_RDT: return e->rx.tail;
	case E1K_TDH: return e->tx.head;
	case E1K_TDT: return e->tx.tail;
	default: return e->regs[off / 4];
	}
}

/*
 * The bits a plain register keeps (e1000 3): reserved bits read 0 (SDM
 * 13.4, 13.5; the widths Linux's e1000_reg_test checks).
 */
static uint32_t plain_mask(uint32_t off)
{
	if (off >= E1K_RA && off < E1K_RA + 0x80)
		return off & 4 ? 0x8003ffffu : 0xffffffffu;   /* RAH: AV, AS, address */
	switch (off) {
	case E1K_FCAH: case E1K_FCT: case E1K_VET: case E1K_RADV: case E1K_TADV:
		return 0xffff;
	case E1K_TIPG: return 0x3fffffff;
	case E1K_RXCSUM: return 0x3ff;
	default: return 0xffffffffu;
	}
}

static void ctrl_write(struct e1k *e, uint32_t v)
{
	if (v & CTRL_RST) {
		device_reset(e);
		return;
	}
	if (v & CTRL_PHY_RST)
		e1k_phy_reset(&e->phy, link_up(e));
	e->regs[E1K_CTRL / 4] = v & ~(CTRL_RST | CTRL_PHY_RST);
}

/* A head write restarts the ring there; one outside it stops the ring (e1000 7). */
static void head_write(struct e1k *e, bool rx, uint32_t v)
{
	if (rx) {
		rx_restart(e, v);
		rx_fetch(e);
	} else {
		tx_restart(e, v);
		tx_kick(e);
	}
}

static void reg_write(struct e1k *e, uint32_t off, uint32_t v)
{
	e->session_fresh = false;
	if (off >= E1K_STATS && off < E1K_STATS_END)
		return;                 /* read-only counters */
	switch (off) {
	case E1K_CTRL: ctrl_write(e, v); return;
	case E1K_STATUS: return;
	case E1K_EECD: e1k_eecd_write(&e->ee, v); return;
	case E1K_EERD: e1k_eerd_write(&e->ee, v); return;
	case E1K_MDIC:
		e->regs[E1K_MDIC / 4] = e1k_mdic(&e->phy, v, link_up(e));
		if (v & (1u << 29))
			raise_cause(e, ICR_MDAC);
		return;
	case E1K_ICR: e->icr &= ~v; update_irq(e); return;
	case E1K_ICS: raise_cause(e, v); return;
	case E1K_IMS: e->ims |= v & ICR_VALID; update_irq(e); return;
	case E1K_IMC: e->ims &= ~v; update_irq(e); return;
	case E1K_ITR: e->regs[off / 4] = v & 0xffff; return;
	case E1K_TCTL: e->regs[off / 4] = v; tx_kick(e); return;
	case E1K_RDBAL: case E1K_RDBAH:
		/* Bits 3:0 of the base read 0 (SDM 13.4.25). */
		e->regs[off / 4] = off == E1K_RDBAL ? v & ~0xfu : v;
		set_ring_base(e, true, off == E1K_RDBAH, v);
		return;
	case E1K_RDLEN: e->regs[off / 4] = v & 0xfff80u; set_ring_len(e, true, v); return;
	case E1K_RDH: head_write(e, true, v & 0xffff); return;
	case E1K_RDT: rx_tail_write(e, v & 0xffff); return;
	case E1K_TDBAL: case E1K_TDBAH:
		e->regs[off / 4] = off == E1K_TDBAL ? v & ~0xfu : v;
		set_ring_base(e, false, off == E1K_TDBAH, v);
		return;
	case E1K_TDLEN: e->regs[off / 4] = v & 0xfff80u; set_ring_len(e, false, v); return;
	case E1K_TDH: head_write(e, false, v & 0xffff); return;
	case E1K_TDT:
		v &= 0xffff;
		if (ring_live(&e->tx) && v < e->tx.count &&
		    !tail_ok(&e->tx, e->tx_fetched, v)) {
			pf_dev_log(e->dev, PF_LOG_DEBUG, "ignoring TDT %u", v);
			return;
		}
		e->tx.tail = v;
		revive_tx(e);
		tx_kick(e);
		return;
	case E1K_RDTR: case E1K_TIDV:
		e->regs[off / 4] = v & 0xffff;
		/* FPD: report now what a delay timer holds, if any (SDM 13.4.30). */
		if (v & RDTR_FPD && off == E1K_RDTR && ev_is_active(&e->rdtr_timer))
			rx_delay_cb(pf_dev_loop(e->dev), &e->rdtr_timer, 0);
		else if (v & RDTR_FPD && off == E1K_TIDV && ev_is_active(&e->tidv_timer))
			tx_delay_cb(pf_dev_loop(e->dev), &e->tidv_timer, 0);
		return;
	default:
		e->regs[off / 4] = v & plain_mask(off);
	}
}

/* Memory BAR accesses: dwords; narrower reads see part of one (e1000 2). */
static int e1k_bar_read(void *s, unsigned bar, uint64_t off, void *data,
			uint32_t size)
{
	struct e1k *e = s;
	uint32_t v;

	/* What the guest reads agrees with the ring in its memory. */
	rx_flush(e);
	/* 4-byte accesses only (the BARs' declaration): one register each. */
	if (bar == 1)
		v = off == 0 ? e->ioaddr :
		    off == 4 && e->ioaddr < E1K_REGS_SIZE ? reg_read(e, e->ioaddr) : 0;
	else
		v = reg_read(e, (uint32_t)off);
	pf_le_store(data, 4, v);
	return PF_CPL_OK;
}

static void e1k_bar_write(void *s, unsigned bar, uint64_t off, const void *data,
			  uint32_t size)
{
	struct e1k *e = s;
	uint32_t v = (uint32_t)pf_le_load(data, 4);

	rx_flush(e);
	if (bar == 1) {
		/* IOADDR selects a register, IODATA reaches it (SDM 13.2.2). */
		if (off == 0)
			e->ioaddr = v & 0x1fffcu;
		else if (off == 4)
			reg_write(e, e->ioaddr, v);
		return;
	}
	reg_write(e, (uint32_t)off, v);
}

static void e1k_reset(void *s, enum pf_reset_kind kind)
{
	struct e1k *e = s;

	if (kind == PF_RESET_DISCONNECT)
		pf_dev_log(e->dev, PF_LOG_INFO,
			   "totals: %llu frames sent, %llu received; TSO: %llu packets "
			   "in %llu segments; %llu packets dropped",
			   (unsigned long long)e->n_tx_frames,
			   (unsigned long long)e->n_rx_frames,
			   (unsigned long long)e->n_tso_pkts,
			   (unsigned long long)e->n_tso_segs,
			   (unsigned long long)e->n_tx_bad);
	e->ioaddr = 0;
	device_reset(e);
	if (kind == PF_RESET_FUNCTION && e->session_fresh)
		revive(e);
	/* A new host's session starts with the next connection. */
	e->session_fresh = kind == PF_RESET_DISCONNECT;
}

static void e1k_link(void *opaque, bool up)
{
	struct e1k *e = opaque;

	pf_dev_log(e->dev, PF_LOG_INFO, "link %s", up ? "up" : "down");
	link_changed(e);
}

static void e1k_destroy(void *s)
{
	struct e1k *e = s;

	device_reset(e);
	pf_net_destroy(e->net);
	free(e->rx_addr);
	free(e->rx_wb);
	free(e->tx_descs);
	free(e->tx_buf);
	free(e);
}

static void *e1k_create(struct pf_dev *dev, struct pf_identity *id)
{
	struct e1k *e = calloc(1, sizeof(*e));
	char err[300];

	if (!e)
		return NULL;
	ev_timer *timers[] = { &e->itr_timer, &e->rdtr_timer, &e->radv_timer,
			       &e->tidv_timer, &e->tadv_timer };
	e->dev = dev;
	e->session_fresh = true;
	e->tx_buf = malloc(TX_BUF_SIZE);
	if (!e->tx_buf || pf_opt_mac(dev, "mac", e->mac)) {
		free(e->tx_buf);
		free(e);
		return NULL;
	}
	for (size_t i = 0; i < sizeof(timers) / sizeof(timers[0]); i++) {
		ev_init(timers[i], i == 0 ? itr_cb : i < 3 ? rx_delay_cb : tx_delay_cb);
		timers[i]->data = e;
	}
	ev_prepare_init(&e->rx_wb_flush, rx_flush_cb);
	e->rx_wb_flush.data = e;
	ev_init(&e->revive_timer, revive_cb);
	e->revive_timer.data = e;
	ev_init(&e->revive_link_timer, revive_link_cb);
	e->revive_link_timer.data = e;
	e1k_eeprom_init(&e->ee, e->mac);
	e->net = pf_net_create(pf_dev_option(dev, "backend"), pf_dev_loop(dev), dev,
			       pf_dev_option(dev, "pcap"), e1k_receive, e1k_link, e,
			       err, sizeof(err));
	if (!e->net) {
		pf_dev_error(dev, "%s", err);
		free(e->tx_buf);
		free(e);
		return NULL;
	}
	device_reset(e);

	/* e1000 1: as QEMU's -device e1000 presents the part. */
	id->vendor_id = 0x8086;
	id->device_id = 0x100e;
	id->subsystem_vendor_id = 0x1af4;
	id->subsystem_id = 0x1100;
	id->class_code = 0x020000;
	id->revision = 3;
	/* 32-bit registers, in memory and through IOADDR/IODATA (SDM 13.2). */
	id->bars[0] = (struct pf_bar_decl){
		.kind = PF_BAR_MEM32, .size = E1K_REGS_SIZE,
		.access_min = 4, .access_max = 4,
	};
	id->bars[1] = (struct pf_bar_decl){
		.kind = PF_BAR_IO, .size = 64, .access_min = 4, .access_max = 4,
	};
	id->intx_pin = 1;
	return e;
}

static const struct pf_model_option e1k_options[] = {
	{ "mac", "station MAC address (EEPROM words 0-2)", "52:54:00:12:34:56" },
	PF_NET_MODEL_OPTIONS,
	{ NULL, NULL, NULL },
};

static const struct pf_model_ops e1k_ops = {
	.bar_read = e1k_bar_read,
	.bar_write = e1k_bar_write,
	.reset = e1k_reset,
	.destroy = e1k_destroy,
};

static struct pf_model e1k_model = {
	.name = "e1000",
	.summary = "Intel 82540EM for the stock e1000 driver (docs/e1000.md)",
	.options = e1k_options,
	.create = e1k_create,
	.ops = &e1k_ops,
};

PF_MODEL_REGISTER(e1k_model);
