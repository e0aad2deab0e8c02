/*
 * The simulator side of the RTL bridge: the bus around a simulated design,
 * one clock cycle per pf_rtl_cycle() call (pf_rtl.h, docs/hdl.md).
 *
 * A call first looks at the rising edge it is about: which handshakes
 * complete there (VALID and READY both high, as the design drives its
 * outputs and as we drove its inputs in the previous call); those become
 * events for the bridge, stamped with the edge's number.  Then it takes
 * the bridge's requests and sets the inputs for the next edge.  When
 * nothing is going on -- no host access, no DMA burst, no interrupt
 * request, busy low -- for GRACE_CYCLES, it sleeps until the bridge sends
 * something: simulated time stands still while the design is idle.
 *
 * Host accesses go on the AXI4-Lite buses one at a time, in the order the
 * host sent them, across BARs: a read never passes a write (PCIe
 * ordering), and the note in the trace can say exactly when the design
 * took each.  The design's DMA master may have PF_RTL_DMA_OUTSTANDING
 * bursts in flight each way, served in order (one AXI ID).
 */
#include "pf_rtl.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "rtl_link.h"

/* Idle cycles after the last activity before the simulation sleeps. */
#define GRACE_CYCLES 8
/* After a BAR's watchdog fired, its next accesses give up this soon. */
#define HUNG_CYCLES 256u
/* Host accesses we queue; the bridge sends at most PF_RTL_MAX_QUEUED. */
#define HOSTQ 1024u
/* Free-running: how often to look at the wall clock, in cycles. */
#define PACE_EVERY 64

struct lite_access {            /* the host access on an AXI4-Lite bus */
	bool active;
	struct pf_rtl_rec req;
	uint64_t start, a_cyc, w_cyc, limit;
	bool a_done, w_done;
};

/*
 * A BAR's bus after the watchdog gave up on an access.  If the design had
 * taken it (AR, or AW and W), its answer may still come, and AXI4-Lite has
 * no IDs to tell it from the next access's: nothing more goes on the bus
 * until it comes (dropped) or a reset, so no access is ever given another's
 * data.  A write taken halfway (AW without W, or W without AW) leaves the
 * design mid-transaction: the bus stays closed until a reset.
 */
struct bar_state {
	bool owed_r, owed_b;            /* a late answer to drop */
	bool broken;                    /* a write taken halfway */
	bool hung;                      /* the watchdog fired, nothing since */
};

struct rd_burst {
	uint32_t id;
	uint16_t beats, beat;
	uint8_t resp;
	bool has_data;
	uint32_t data[PF_RTL_MAX_BEATS];
};

struct wr_burst {
	uint32_t id;
	uint16_t beats, beat;
	uint8_t resp, bad;
	bool data_done, resp_in;
	uint64_t addr, aw_cyc, w_first;
	uint8_t data[PF_RTL_MAX_BURST];
	uint8_t strb[PF_RTL_MAX_BURST / 8];
};

struct pf_rtl {
	struct pf_rtl_link link;
	unsigned bars;
	uint64_t cycle;
	bool stop;

	struct pf_rtl_rec q[HOSTQ];     /* host accesses not yet on the bus */
	unsigned q_head, q_n;
	struct lite_access lite;
	struct bar_state bar[6];

	uint32_t reset_left;            /* edges of rst_n low still to come */
	bool reset_report;              /* RESET_DONE not sent yet */
	uint32_t reset_epoch;
	uint64_t reset_start;

	struct rd_burst rd[PF_RTL_DMA_OUTSTANDING];
	unsigned rd_head, rd_n;
	struct wr_burst wr[PF_RTL_DMA_OUTSTANDING];
	unsigned wr_head, wr_n;
	uint32_t next_burst;

	uint8_t irq_ack_prev;           /* what we drove for this edge */
	uint64_t irq_first;             /* edge irq_req was first seen high */
	uint8_t intx;                   /* level the bridge knows */
	bool room;                      /* room for this edge's events */

	unsigned quiet;
	uint64_t clock_start_ns;
	uint64_t pace_t0_ns, pace_c0;

	uint8_t payload[PF_RTL_MAX_PAYLOAD];
};

static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
	(void)sig;
	stop_signal = 1;
}

static void link_broken(struct pf_rtl *rt, const char *why)
{
	fprintf(stderr, "pf_rtl: the link to the bridge is broken: %s\n", why);
	rt->stop = true;
}

static void send(struct pf_rtl *rt, struct pf_rtl_rec *r, const void *payload,
		 uint32_t len)
{
	if (pf_rtl_send(&rt->link, r, payload, len))
		link_broken(rt, "no room for an event");
}

/* ---- Start ---- */

static void *map_link(size_t *size)
{
	struct stat st;
	void *p;

	if (fstat(PF_RTL_FD_REGION, &st) || (size_t)st.st_size < pf_rtl_link_size())
		return NULL;
	*size = (size_t)st.st_size;
	p = mmap(NULL, *size, PROT_READ | PROT_WRITE, MAP_SHARED, PF_RTL_FD_REGION, 0);
	return p == MAP_FAILED ? NULL : p;
}

static void start_reset(struct pf_rtl *rt, uint32_t epoch)
{
	memset(&rt->lite, 0, sizeof(rt->lite));
	memset(rt->bar, 0, sizeof(rt->bar));
	rt->q_n = 0;
	rt->rd_n = rt->wr_n = 0;
	rt->irq_first = 0;
	rt->intx = 0;
	rt->reset_left = rt->link.shared->reset_cycles;
	if (!rt->reset_left)
		rt->reset_left = 1;
	rt->reset_report = true;
	rt->reset_epoch = epoch;
	rt->reset_start = rt->cycle + 1;
}

struct pf_rtl *pf_rtl_open(unsigned bars, const char *name)
{
	struct pf_rtl *rt = calloc(1, sizeof(*rt));
	struct sigaction sa;
	struct pf_rtl_rec hello = { .type = PF_RTL_HELLO };
	char err[200];
	size_t size;
	void *base;

	if (!rt)
		return NULL;
	base = map_link(&size);
	if (!base) {
		fprintf(stderr, "pf_rtl: no RTL link on fd %d: this program is "
			"started by pciefw-endpoint --device rtl,sim=DIR "
			"(docs/hdl.md)\n", PF_RTL_FD_REGION);
		free(rt);
		return NULL;
	}
	if (pf_rtl_link_attach(&rt->link, base, size, true, PF_RTL_FD_BRIDGE_BELL,
			       err, sizeof(err))) {
		fprintf(stderr, "pf_rtl: %s\n", err);
		free(rt);
		return NULL;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sigaction(SIGTERM, &sa, NULL);      /* no SA_RESTART: a sleep ends */
	sigaction(SIGINT, &sa, NULL);
	rt->bars = bars & 0x3f;
	pf_ring_consumer_awake(&rt->link.rx);
	rt->clock_start_ns = rt->pace_t0_ns = pf_ring_now_ns();
	start_reset(rt, 0);                 /* power-on reset */
	hello.data = rt->bars;
	send(rt, &hello, name, (uint32_t)strnlen(name, 200));
	return rt;
}

uint64_t pf_rtl_now(const struct pf_rtl *rt)
{
	return rt->cycle;
}

void pf_rtl_close(struct pf_rtl *rt)
{
	free(rt);
}

/* ---- Handshakes at the edge ---- */

static void lite_done(struct pf_rtl *rt, uint8_t resp, uint64_t data, uint64_t c)
{
	struct lite_access *a = &rt->lite;
	struct pf_rtl_rec r = {
		.type = a->req.type == PF_RTL_READ ? PF_RTL_READ_DONE : PF_RTL_WRITE_DONE,
		.bar = a->req.bar, .id = a->req.id, .resp = resp, .strb = a->req.strb,
		.addr = a->req.addr,
		.data = data,
	};

	if (a->req.type == PF_RTL_READ) {
		r.cycle[0] = a->a_cyc;
		r.cycle[1] = c;
	} else {
		r.cycle[0] = a->a_cyc;
		r.cycle[1] = a->w_cyc;
		r.cycle[2] = c;
	}
	send(rt, &r, NULL, 0);
	rt->bar[a->req.bar].hung = false;
	a->active = false;
}

static void lite_edge(struct pf_rtl *rt, struct pf_rtl_pins *p, uint64_t c)
{
	struct lite_access *a = &rt->lite;

	for (unsigned i = 0; i < 6; i++) {
		struct pf_rtl_axil_pins *b = &p->bar[i];
		struct bar_state *s = &rt->bar[i];
		bool ours = a->active && a->req.bar == i;

		if (!(rt->bars & (1u << i)))
			continue;
		if (ours && !a->a_done &&
		    ((b->arvalid && b->arready) || (b->awvalid && b->awready))) {
			a->a_done = true;
			a->a_cyc = c;
		}
		if (ours && !a->w_done && b->wvalid && b->wready) {
			a->w_done = true;
			a->w_cyc = c;
		}
		/* Responses of abandoned accesses come first (one AXI ID). */
		if (b->rready && b->rvalid) {
			if (s->owed_r)
				s->owed_r = false;
			else if (ours && a->req.type == PF_RTL_READ && a->a_cyc < c)
				lite_done(rt, b->rresp, b->rdata, c);
		}
		if (b->bready && b->bvalid) {
			if (s->owed_b)
				s->owed_b = false;
			else if (ours && a->req.type == PF_RTL_WRITE)
				lite_done(rt, b->bresp, 0, c);
		}
	}
}

static void dma_bad(struct pf_rtl *rt, uint32_t id, uint64_t addr, uint32_t bytes,
		    uint8_t what, uint8_t resp, uint64_t c)
{
	struct pf_rtl_rec r = { .type = PF_RTL_DMA_BAD, .id = id, .addr = addr,
				.data = bytes, .what = what, .resp = resp,
				.cycle = { c } };

	send(rt, &r, NULL, 0);
}

/* Why the bus refuses a burst of this shape, or 0. */
static uint8_t burst_fault(uint64_t addr, uint8_t size, uint8_t burst)
{
	if (size != 2)
		return PF_RTL_BAD_SIZE;
	if (burst != 1)
		return PF_RTL_BAD_BURST;
	if (addr & 3)
		return PF_RTL_BAD_ALIGN;
	return 0;
}

static void dma_ar(struct pf_rtl *rt, struct pf_rtl_dma_pins *d, uint64_t c)
{
	struct rd_burst *b = &rt->rd[(rt->rd_head + rt->rd_n++) % PF_RTL_DMA_OUTSTANDING];
	uint8_t fault = burst_fault(d->araddr, d->arsize, d->arburst);

	b->id = ++rt->next_burst;
	b->beats = (uint16_t)(d->arlen + 1);
	b->beat = 0;
	b->has_data = false;
	b->resp = PF_RTL_OKAY;
	if (fault) {
		b->has_data = true;
		b->resp = PF_RTL_SLVERR;
		dma_bad(rt, b->id, d->araddr, b->beats * 4u, fault | PF_RTL_BAD_READ,
			PF_RTL_SLVERR, c);
		return;
	}
	struct pf_rtl_rec r = { .type = PF_RTL_DMA_READ, .id = b->id,
				.addr = d->araddr, .data = b->beats * 4u,
				.cycle = { c } };
	send(rt, &r, NULL, 0);
}

static void dma_r(struct pf_rtl *rt)
{
	struct rd_burst *b = &rt->rd[rt->rd_head];

	if (++b->beat == b->beats) {
		rt->rd_head = (rt->rd_head + 1) % PF_RTL_DMA_OUTSTANDING;
		rt->rd_n--;
	}
}

static void dma_aw(struct pf_rtl *rt, struct pf_rtl_dma_pins *d, uint64_t c)
{
	struct wr_burst *b = &rt->wr[(rt->wr_head + rt->wr_n++) % PF_RTL_DMA_OUTSTANDING];

	memset(b->strb, 0, sizeof(b->strb));
	b->id = ++rt->next_burst;
	b->beats = (uint16_t)(d->awlen + 1);
	b->beat = 0;
	b->addr = d->awaddr;
	b->aw_cyc = c;
	b->data_done = b->resp_in = false;
	b->bad = burst_fault(d->awaddr, d->awsize, d->awburst);
}

/* The burst the next W beat belongs to. */
static struct wr_burst *w_target(struct pf_rtl *rt)
{
	for (unsigned i = 0; i < rt->wr_n; i++) {
		struct wr_burst *b = &rt->wr[(rt->wr_head + i) % PF_RTL_DMA_OUTSTANDING];

		if (!b->data_done)
			return b;
	}
	return NULL;
}

static void dma_w(struct pf_rtl *rt, struct pf_rtl_dma_pins *d, uint64_t c)
{
	struct wr_burst *b = w_target(rt);
	unsigned at;
	uint32_t bytes;

	if (!b)
		return;
	at = b->beat * 4u;
	if (!b->beat)
		b->w_first = c;
	for (unsigned k = 0; k < 4; k++) {
		b->data[at + k] = (uint8_t)(d->wdata >> (8 * k));
		if (d->wstrb & (1u << k))
			b->strb[(at + k) / 8] |= (uint8_t)(1u << ((at + k) % 8));
	}
	if (!!d->wlast != (b->beat + 1 == b->beats) && !b->bad)
		b->bad = PF_RTL_BAD_WLAST;
	if (++b->beat < b->beats)
		return;
	b->data_done = true;
	bytes = b->beats * 4u;
	/*
	 * Posted, as a bridge to PCIe answers a write it has taken: OKAY now,
	 * the bridge sends it after what came before; DECERR only where there
	 * is no bus to send it on.
	 */
	b->resp_in = true;
	b->resp = PF_RTL_OKAY;
	if (!b->bad && b->addr > UINT64_MAX - (bytes - 1))
		b->bad = PF_RTL_BAD_WRAP;
	if (!b->bad && __atomic_load_n(&rt->link.shared->no_host, __ATOMIC_RELAXED))
		b->bad = PF_RTL_BAD_NO_HOST;
	if (b->bad) {
		b->resp = b->bad >= PF_RTL_BAD_WRAP ? PF_RTL_DECERR : PF_RTL_SLVERR;
		dma_bad(rt, b->id, b->addr, bytes, b->bad, b->resp, c);
		return;
	}
	memcpy(rt->payload, b->data, bytes);
	memcpy(rt->payload + bytes, b->strb, bytes / 8 + (bytes % 8 != 0));
	struct pf_rtl_rec r = { .type = PF_RTL_DMA_WRITE, .id = b->id, .addr = b->addr,
				.data = bytes, .cycle = { b->aw_cyc, b->w_first, c } };
	send(rt, &r, rt->payload, bytes + bytes / 8 + (bytes % 8 != 0));
}

static void dma_b(struct pf_rtl *rt)
{
	rt->wr_head = (rt->wr_head + 1) % PF_RTL_DMA_OUTSTANDING;
	rt->wr_n--;
}

static void dma_edge(struct pf_rtl *rt, struct pf_rtl_pins *p, uint64_t c)
{
	struct pf_rtl_dma_pins *d = &p->dma;

	if (d->rvalid && d->rready)
		dma_r(rt);
	if (d->bvalid && d->bready)
		dma_b(rt);
	if (d->arvalid && d->arready)
		dma_ar(rt, d, c);
	if (d->awvalid && d->awready)
		dma_aw(rt, d, c);
	if (d->wvalid && d->wready)
		dma_w(rt, d, c);
}

static void irq_edge(struct pf_rtl *rt, struct pf_rtl_pins *p, uint64_t c)
{
	if (p->irq_req && !rt->irq_first)
		rt->irq_first = c;
	if (p->irq_req && p->irq_ack) {
		struct pf_rtl_rec r = {
			.type = PF_RTL_IRQ, .data = p->irq_vector,
			.what = p->irq_msi ? PF_RTL_IRQ_MSI : PF_RTL_IRQ_MSIX,
			.cycle = { rt->irq_first, c },
		};

		send(rt, &r, NULL, 0);
		rt->irq_first = 0;
	}
	if (!!p->intx != rt->intx && rt->room) {
		struct pf_rtl_rec r = { .type = PF_RTL_INTX, .what = !!p->intx,
					.cycle = { c } };

		rt->intx = !!p->intx;
		send(rt, &r, NULL, 0);
	}
}

/* ---- The bridge's requests ---- */

static struct rd_burst *rd_find(struct pf_rtl *rt, uint32_t id)
{
	for (unsigned i = 0; i < rt->rd_n; i++) {
		struct rd_burst *b = &rt->rd[(rt->rd_head + i) % PF_RTL_DMA_OUTSTANDING];

		if (b->id == id && !b->has_data)
			return b;
	}
	return NULL;
}

static void take(struct pf_rtl *rt, const struct pf_rtl_rec *r)
{
	struct rd_burst *rb;
	char why[120];

	switch (r->type) {
	case PF_RTL_READ:
	case PF_RTL_WRITE:
		if (r->bar >= 6 || !(rt->bars & (1u << r->bar)) || rt->q_n == HOSTQ) {
			snprintf(why, sizeof(why), "an access to BAR%u (ports: 0x%x, "
				 "%u queued)", r->bar, rt->bars, rt->q_n);
			link_broken(rt, why);
			return;
		}
		rt->q[(rt->q_head + rt->q_n++) % HOSTQ] = *r;
		return;
	case PF_RTL_DMA_DATA:
		rb = rd_find(rt, r->id);
		if (!rb)
			return;             /* a burst a reset dropped */
		rb->resp = r->resp;
		if (r->resp == PF_RTL_OKAY && r->len != rb->beats * 4u)
			rb->resp = PF_RTL_SLVERR;
		if (rb->resp == PF_RTL_OKAY)
			memcpy(rb->data, rt->payload, r->len);
		rb->has_data = true;
		return;
	case PF_RTL_RESET:
		start_reset(rt, r->id);
		return;
	case PF_RTL_EXIT:
		rt->stop = true;
		return;
	default:
		snprintf(why, sizeof(why), "a record of unknown type %u", r->type);
		link_broken(rt, why);
	}
}

static void take_all(struct pf_rtl *rt)
{
	struct pf_rtl_rec r;
	char err[200];
	int n;

	while (!rt->stop &&
	       (n = pf_rtl_recv(&rt->link, &r, rt->payload, err, sizeof(err))) != 0) {
		if (n < 0) {
			link_broken(rt, err);
			return;
		}
		take(rt, &r);
	}
}

/* ---- Inputs for the next edge ---- */

static void idle_inputs(struct pf_rtl_pins *p)
{
	for (unsigned i = 0; i < 6; i++) {
		struct pf_rtl_axil_pins *b = &p->bar[i];

		b->awvalid = b->wvalid = b->bready = b->arvalid = b->rready = 0;
	}
	p->dma.awready = p->dma.wready = p->dma.bvalid = 0;
	p->dma.arready = p->dma.rvalid = p->dma.rlast = 0;
	p->irq_ack = 0;
}

/* The next access, unless its BAR's bus is closed: then it fails now. */
static void lite_start(struct pf_rtl *rt, uint64_t c)
{
	struct lite_access *a = &rt->lite;
	const struct pf_rtl_rec *q = &rt->q[rt->q_head];
	const struct bar_state *s = &rt->bar[q->bar];

	if (s->owed_r || s->owed_b || s->broken) {
		struct pf_rtl_rec r = { .type = PF_RTL_TIMEOUT, .bar = q->bar,
					.id = q->id, .addr = q->addr, .data = q->type,
					.what = PF_RTL_TO_BLOCKED, .cycle = { c, 0, c } };

		if (!rt->room)
			return;
		send(rt, &r, NULL, 0);
		rt->q_head = (rt->q_head + 1) % HOSTQ;
		rt->q_n--;
		return;
	}
	memset(a, 0, sizeof(*a));
	a->active = true;
	a->req = *q;
	rt->q_head = (rt->q_head + 1) % HOSTQ;
	rt->q_n--;
	a->start = c;
	a->limit = rt->link.shared->watchdog_cycles;
	if (rt->bar[a->req.bar].hung && a->limit > HUNG_CYCLES)
		a->limit = HUNG_CYCLES;
}

static void lite_inputs(struct pf_rtl *rt, struct pf_rtl_pins *p)
{
	struct lite_access *a = &rt->lite;

	for (unsigned i = 0; i < 6; i++) {
		struct pf_rtl_axil_pins *b = &p->bar[i];
		struct bar_state *s = &rt->bar[i];
		bool rd = a->active && a->req.bar == i && a->req.type == PF_RTL_READ;
		bool wr = a->active && a->req.bar == i && a->req.type == PF_RTL_WRITE;

		b->arvalid = rd && !a->a_done;
		b->awvalid = wr && !a->a_done;
		b->wvalid = wr && !a->w_done;
		if (rd)
			b->araddr = (uint32_t)a->req.addr;
		if (wr) {
			b->awaddr = (uint32_t)a->req.addr;
			b->wdata = (uint32_t)a->req.data;
			b->wstrb = a->req.strb;
		}
		b->rready = rt->room && (s->owed_r || (rd && a->a_done));
		b->bready = rt->room && (s->owed_b || (wr && a->a_done && a->w_done));
	}
}

static void dma_inputs(struct pf_rtl *rt, struct pf_rtl_pins *p)
{
	struct pf_rtl_dma_pins *d = &p->dma;
	struct rd_burst *rb = rt->rd_n ? &rt->rd[rt->rd_head] : NULL;
	struct wr_burst *wb = rt->wr_n ? &rt->wr[rt->wr_head] : NULL;

	d->arready = rt->room && rt->rd_n < PF_RTL_DMA_OUTSTANDING;
	d->awready = rt->room && rt->wr_n < PF_RTL_DMA_OUTSTANDING;
	d->wready = rt->room && w_target(rt) != NULL;
	d->rvalid = rb && rb->has_data;
	if (d->rvalid) {
		d->rresp = rb->resp;
		d->rdata = rb->resp == PF_RTL_OKAY ? rb->data[rb->beat] : 0;
		d->rlast = rb->beat + 1 == rb->beats;
	} else {
		d->rlast = 0;
	}
	d->bvalid = wb && wb->resp_in;
	if (d->bvalid)
		d->bresp = wb->resp;
}

static void next_inputs(struct pf_rtl *rt, struct pf_rtl_pins *p, uint64_t c)
{
	/* Room for the events the next edge may bring, the largest first. */
	rt->room = pf_ring_writable(&rt->link.tx) >=
		   2 * (sizeof(struct pf_rtl_rec) + PF_RTL_MAX_PAYLOAD) +
		   8 * sizeof(struct pf_rtl_rec);
	if (rt->reset_left) {
		idle_inputs(p);
		p->rst_n = 0;
		return;
	}
	p->rst_n = 1;
	if (!rt->lite.active && rt->q_n)
		lite_start(rt, c);
	lite_inputs(rt, p);
	dma_inputs(rt, p);
	/* A pulse: a request held high is taken every other edge. */
	p->irq_ack = rt->room && p->irq_req && !rt->irq_ack_prev;
}

/* ---- Watchdog ---- */

static void watchdog(struct pf_rtl *rt, uint64_t c)
{
	struct lite_access *a = &rt->lite;
	struct bar_state *s;
	bool rd = a->req.type == PF_RTL_READ;
	struct pf_rtl_rec r;

	if (!a->active || c - a->start < a->limit || !rt->room)
		return;
	memset(&r, 0, sizeof(r));
	r.type = PF_RTL_TIMEOUT;
	r.bar = a->req.bar;
	r.id = a->req.id;
	r.addr = a->req.addr;
	r.data = a->req.type;
	r.what = rd ? (a->a_done ? PF_RTL_TO_R : PF_RTL_TO_AR) :
		 !a->a_done ? PF_RTL_TO_AW : !a->w_done ? PF_RTL_TO_W : PF_RTL_TO_B;
	r.cycle[0] = a->start;
	r.cycle[1] = a->a_done ? a->a_cyc : 0;
	r.cycle[2] = c;
	send(rt, &r, NULL, 0);
	/* Its response, should it ever come, is not the next access's. */
	s = &rt->bar[a->req.bar];
	s->owed_r |= rd && a->a_done;
	s->owed_b |= !rd && a->a_done && a->w_done;
	s->broken |= !rd && a->a_done != a->w_done;
	s->hung = true;
	a->active = false;
}

/* ---- Time ---- */

static void publish(struct pf_rtl *rt, uint64_t now)
{
	struct pf_rtl_shared *sh = rt->link.shared;

	__atomic_store_n(&sh->cycle, rt->cycle, __ATOMIC_RELAXED);
	__atomic_store_n(&sh->clocking_ns, sh->clocking_ns + (now - rt->clock_start_ns),
			 __ATOMIC_RELAXED);
	rt->clock_start_ns = now;
}

/* Wait for the bell, a signal, or @ns nanoseconds (0: forever). */
static void doze(uint64_t ns)
{
	struct pollfd pfd = { .fd = PF_RTL_FD_SIM_BELL, .events = POLLIN };
	struct timespec ts = { .tv_sec = (time_t)(ns / 1000000000u),
			       .tv_nsec = (long)(ns % 1000000000u) };

	if (ppoll(&pfd, 1, ns ? &ts : NULL, NULL) > 0)
		pf_doorbell_drain(PF_RTL_FD_SIM_BELL);
}

/*
 * Nothing to do: sleep on the doorbell until the bridge sends something.
 * Simulated time does not move.  No spinning first: on a machine of two
 * CPUs, where QEMU's vCPU and the endpoint poll already, a spinning
 * simulation took their CPU and made register reads four times slower
 * (docs/hdl.md 10).
 */
static void sleep_for_work(struct pf_rtl *rt)
{
	publish(rt, pf_ring_now_ns());
	if (pf_ring_consumer_sleep(&rt->link.rx)) {
		__atomic_store_n(&rt->link.shared->sleeps, rt->link.shared->sleeps + 1,
				 __ATOMIC_RELAXED);
		while (!pf_ring_readable(&rt->link.rx) && !rt->link.rx.corrupt &&
		       !stop_signal)
			doze(0);
		pf_ring_consumer_awake(&rt->link.rx);
	}
	rt->clock_start_ns = pf_ring_now_ns();
}

/* Free-running: no faster than cycles_per_us of wall time. */
static void pace(struct pf_rtl *rt, uint64_t cpu)
{
	uint64_t now, due_ns;

	if (rt->cycle % PACE_EVERY)
		return;
	now = pf_ring_now_ns();
	due_ns = rt->pace_t0_ns + (rt->cycle - rt->pace_c0) * 1000 / cpu;
	if (now > due_ns + 100000000) {
		/* 100 ms behind: the design is slower than asked; no catching up. */
		rt->pace_t0_ns = now;
		rt->pace_c0 = rt->cycle;
		return;
	}
	if (now < due_ns && !pf_ring_readable(&rt->link.rx)) {
		publish(rt, now);
		doze(due_ns - now);
		rt->clock_start_ns = pf_ring_now_ns();
	}
}

/*
 * Does the next edge matter?  Not while the design only waits for the
 * bridge -- the data of a DMA read, the response to a DMA write -- and
 * does nothing else: then the clock stops until the answer comes, as if
 * host memory answered at once (docs/hdl.md 4).
 */
static bool dma_movable(const struct pf_rtl *rt)
{
	for (unsigned i = 0; i < rt->rd_n; i++)
		if (rt->rd[(rt->rd_head + i) % PF_RTL_DMA_OUTSTANDING].has_data)
			return true;
	for (unsigned i = 0; i < rt->wr_n; i++) {
		const struct wr_burst *b = &rt->wr[(rt->wr_head + i) % PF_RTL_DMA_OUTSTANDING];

		if (!b->data_done || b->resp_in)
			return true;
	}
	return false;
}

static bool has_work(const struct pf_rtl *rt, const struct pf_rtl_pins *p)
{
	return rt->reset_left || rt->lite.active || rt->q_n || dma_movable(rt) ||
	       p->dma.arvalid || p->dma.awvalid || p->dma.wvalid ||
	       p->irq_req || p->busy || !!p->intx != rt->intx;
}

/* ---- One cycle ---- */

bool pf_rtl_cycle(struct pf_rtl *rt, struct pf_rtl_pins *p)
{
	uint64_t c = ++rt->cycle;
	uint64_t cpu = rt->link.shared->cycles_per_us;

	if (rt->reset_left) {
		rt->reset_left--;
	} else {
		lite_edge(rt, p, c);
		dma_edge(rt, p, c);
		irq_edge(rt, p, c);
		watchdog(rt, c);
	}
	if (!rt->reset_left && rt->reset_report && rt->room) {
		struct pf_rtl_rec r = { .type = PF_RTL_RESET_DONE, .id = rt->reset_epoch,
					.cycle = { rt->reset_start, c } };

		rt->reset_report = false;
		send(rt, &r, NULL, 0);
	}
	rt->irq_ack_prev = p->irq_ack;
	for (;;) {
		take_all(rt);
		next_inputs(rt, p, c);
		if (stop_signal)
			rt->stop = true;
		if (rt->stop)
			break;
		if (cpu) {
			pace(rt, cpu);
			break;
		}
		if (has_work(rt, p)) {
			rt->quiet = 0;
			break;
		}
		if (++rt->quiet < GRACE_CYCLES)
			break;
		sleep_for_work(rt);
	}
	if (rt->cycle % 4096 == 0)
		publish(rt, pf_ring_now_ns());
	return !rt->stop;
}
