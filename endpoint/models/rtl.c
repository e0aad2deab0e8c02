/*
 * rtl: the RTL bridge.  A device written in Verilog or VHDL, simulated by
 * Verilator or GHDL in a process of its own (built by hdl/build.py, run by
 * rtl_proc.c), behind the interface an FPGA designer targets behind an
 * AXI-PCIe bridge: an AXI4-Lite slave per BAR, an AXI4 master for DMA, an
 * interrupt port, clock and active-low reset.  docs/hdl.md is the manual;
 * hdl/runtime/rtl_link.h the link this file speaks.
 *
 * A host read becomes one AXI4-Lite read (two for 8 bytes, as an AXI-PCIe
 * bridge splits a 64-bit access on a 32-bit bus) and completes when the
 * design has answered: it is deferred (device.h), so DMA the design makes
 * meanwhile is served.  A host write becomes one AXI4-Lite write whose
 * WSTRB are the bytes written (two for 8 bytes).  The design's DMA bursts
 * become pf_dma_read()/pf_dma_write(), its interrupt requests
 * pf_raise_msix()/pf_raise_msi(), its INTx level pf_set_intx().  Each is
 * noted in the trace with the simulation cycle at which the design made
 * the handshake, so a trace record leads to the cycle in the waveform.
 *
 * The design is not trusted: an access it never answers completes UR
 * after the watchdog's cycles (reads all ones), a burst outside guest
 * memory gets SLVERR or DECERR as on a bus, an undeclared vector is
 * dropped, a simulation that dies leaves reads UR until the next reset
 * starts it again; each said once, in one line, with the cycle.
 */
#include <ev.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "device.h"
#include "rtl_proc.h"

/* How long a host read may wait for the simulation, in wall time. */
#define ANSWER_S 2.0
/* How long the simulation may take to start. */
#define START_S 30.0
/* DMA reads the bridge lets the design have waiting for the host. */
#define MAX_DMA_READS 64u
#define NOTE_MAX 600
/*
 * While the simulation works, the loop polls its events rather than wait
 * for the doorbell (a wake-up across CPUs costs tens of µs here), until
 * this long after the last one.
 */
#define POLL_NS 200000u
/*
 * A read the simulation answers within this, while it runs, completes at
 * once: no deferral, no turn of the loop (the endpoint's own polling of
 * the host's ring may hold the loop for 20 µs at a time).
 */
#define SYNC_NS 30000u

enum { LOG_TIMEOUT, LOG_DMA, LOG_DMA_BAD, LOG_IRQ, LOG_BRESP, LOG_QUEUE, LOG_KINDS };

struct host_read {              /* the deferred read (one at a time) */
	bool active;
	uint32_t id;            /* of its first AXI read */
	uint8_t bar, size, parts, done;
	bool sync, answered;    /* being waited for in bar_read; it came */
	uint64_t off;
	int status;
	uint8_t data[8];
	char note[NOTE_MAX];
	size_t note_len;
};

struct dma_read {               /* a burst the design waits for */
	struct rtl *r;
	uint32_t id;
	uint64_t addr, cycle;
	uint32_t len;
};

struct rtl {
	struct pf_dev *dev;
	char sim[4096], wave[4096];
	struct pf_rtl_shared cfg;
	struct rtl_proc proc;
	bool dead;              /* the simulation is gone until a reset */
	ev_io bell;
	ev_child exit_w;        /* libev reaps children: this has the status */
	ev_idle poll;
	uint64_t last_event_ns;
	ev_timer answer;        /* ANSWER_S for the deferred read */
	struct host_read rd;
	uint32_t next_id, id_floor;     /* ids below the floor: before a reset */
	uint32_t writes_out, dma_reads;
	uint32_t epoch;
	unsigned axi_bars;      /* BARs with an AXI4-Lite window */
	unsigned msix_vectors, msi_vectors;
	bool intx_pin;
	unsigned warned[LOG_KINDS]; /* per kind: BARs/flags logged once */
	uint8_t payload[PF_RTL_MAX_PAYLOAD];
};

static const struct pf_model_option rtl_options[] = {
	{ "sim", "the simulation to run: a directory hdl/build.py made (docs/hdl.md)", "" },
	{ "wave", "write the design's waveform to FILE: .vcd or .fst (Verilator), "
	  ".vcd, .ghw or .fst (GHDL)", "" },
	{ "watchdog", "cycles a host access waits for the design before it "
	  "completes UR (reads) or is dropped (writes)", "20000" },
	{ "cycles-per-us", "0: the clock runs while the design has work; N: "
	  "free-running, at most N cycles per microsecond of wall time", "0" },
	{ "reset-cycles", "cycles rst_n is held low (start, system reset, FLR, "
	  "disconnect)", "16" },
	{ "vendor", "vendor ID", "0x1234" },
	{ "device", "device ID", "0xfe11" },
	{ "subsystem-vendor", "subsystem vendor ID", "0x1234" },
	{ "subsystem", "subsystem ID", "0x0011" },
	{ "class", "class code (base << 16 | sub << 8 | prog-if)", "0xff0000" },
	{ "revision", "revision ID", "1" },
	{ "bar0", "size of BAR0, an AXI4-Lite window (s_bar0_*); 0: none", "4K" },
	{ "bar1", "size of BAR1's AXI4-Lite window; 0: none", "0" },
	{ "bar2", "size of BAR2's AXI4-Lite window; 0: none", "0" },
	{ "bar3", "size of BAR3's AXI4-Lite window; 0: none", "0" },
	{ "bar4", "size of BAR4's AXI4-Lite window; 0: none", "0" },
	{ "bar5", "size of BAR5's AXI4-Lite window; 0: none", "0" },
	{ "msix", "MSI-X vectors (0: none)", "8" },
	{ "msix-bar", "the BAR of the MSI-X table and PBA (no AXI window there)", "1" },
	{ "msi", "MSI vectors: 0, 1, 2, 4, 8, 16 or 32", "4" },
	{ "intx", "an INTA# pin", "on" },
	{ NULL, NULL, NULL },
};

static const char *const resp_names[] = { "OKAY", "EXOKAY", "SLVERR", "DECERR" };

/* ---- Logging and notes ---- */

/* Once per kind and key at WARN; later ones at debug level. */
static void warn_once(struct rtl *r, unsigned kind, unsigned key,
		      const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void warn_once(struct rtl *r, unsigned kind, unsigned key,
		      const char *fmt, ...)
{
	bool first = !(r->warned[kind] & (1u << key));
	char msg[700];
	va_list ap;

	r->warned[kind] |= 1u << key;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pf_dev_log(r->dev, first ? PF_LOG_WARN : PF_LOG_DEBUG, "%s%s", msg,
		   first ? " (more like it at debug level)" : "");
}

/* "cycle N (T ns)": where the handshake is in the waveform. */
static const char *at(char *buf, size_t len, uint64_t cycle)
{
	snprintf(buf, len, "cycle %" PRIu64 " (%" PRIu64 " ns)", cycle,
		 cycle * PF_RTL_PERIOD_NS);
	return buf;
}

/* ---- Talking to the simulation ---- */

static void sim_gone(struct rtl *r, const char *why);
static uint64_t sim_cycle(const struct rtl *r);

static void poll_start(struct rtl *r);

static bool send_rec(struct rtl *r, struct pf_rtl_rec *rec, const void *payload,
		     uint32_t len)
{
	if (r->dead)
		return false;
	if (pf_rtl_send(&r->proc.link, rec, payload, len)) {
		sim_gone(r, "stopped taking requests (its link is full)");
		return false;
	}
	poll_start(r);
	return true;
}

/*
 * Whether a host takes DMA writes, for the simulation, which answers them
 * at once (posted): set by the host's first access, cleared when it goes.
 */
static void host_here(struct rtl *r)
{
	struct pf_rtl_shared *sh = r->proc.link.shared;

	if (sh && __atomic_load_n(&sh->no_host, __ATOMIC_RELAXED))
		__atomic_store_n(&sh->no_host, 0, __ATOMIC_RELAXED);
}

/* ---- Host reads ---- */

static void read_finish(struct rtl *r)
{
	struct host_read *h = &r->rd;

	if (h->sync) {
		h->answered = true;     /* bar_read completes it */
		return;
	}
	ev_timer_stop(pf_dev_loop(r->dev), &r->answer);
	h->active = false;
	pf_complete_read_note(r->dev, h->status, h->data, h->size,
			      h->note_len ? h->note : NULL);
}

static void read_fail_all(struct rtl *r)
{
	if (!r->rd.active)
		return;
	r->rd.status = PF_CPL_UR;
	read_finish(r);
}

static unsigned take_events(struct rtl *r);

/*
 * Wait a little for the answer, if the simulation runs (a sleeping one
 * takes a wake-up across CPUs: not worth spinning for).
 */
static bool answered_now(struct rtl *r, bool sim_awake)
{
	struct host_read *h = &r->rd;
	uint64_t until = pf_ring_now_ns() + SYNC_NS;

	if (!sim_awake)
		return false;
	h->sync = true;
	while (!h->answered && !r->dead && pf_ring_now_ns() < until)
		if (!take_events(r))
			__builtin_ia32_pause();
	h->sync = false;
	return h->answered;
}

static int rtl_bar_read(void *s, unsigned bar, uint64_t off, void *data,
			uint32_t size)
{
	struct rtl *r = s;
	struct host_read *h = &r->rd;
	bool sim_awake;

	/* The MSI-X BAR's other bytes: the host serves the table and PBA. */
	if (r->dead || !(r->axi_bars & (1u << bar)))
		return PF_CPL_UR;
	host_here(r);
	memset(h, 0, sizeof(*h));
	h->active = true;
	h->id = r->next_id;
	h->bar = (uint8_t)bar;
	h->size = (uint8_t)size;
	h->off = off;
	h->parts = size == 8 ? 2 : 1;
	h->status = PF_CPL_OK;
	if (pf_dev_tracing(r->dev))
		h->note_len = (size_t)snprintf(h->note, sizeof(h->note),
					       "rtl: BAR%u+0x%" PRIx64 " read, %u bytes:",
					       bar, off, size);
	sim_awake = !pf_ring_consumer_needs_kick(&r->proc.link.tx);
	for (unsigned i = 0; i < h->parts; i++) {
		struct pf_rtl_rec rec = { .type = PF_RTL_READ, .bar = (uint16_t)bar,
					  .id = r->next_id++,
					  .addr = (off & ~3ull) + 4 * i };

		if (!send_rec(r, &rec, NULL, 0)) {
			h->active = false;
			return PF_CPL_UR;
		}
	}
	if (answered_now(r, sim_awake)) {
		h->active = false;
		pf_dev_note_completion(r->dev, h->note_len ? h->note : NULL);
		memcpy(data, h->data, size);
		return h->status;
	}
	ev_timer_set(&r->answer, ANSWER_S, 0);
	ev_timer_start(pf_dev_loop(r->dev), &r->answer);
	return PF_CPL_DEFER;
}

static void note_read_part(struct rtl *r, const struct pf_rtl_rec *e, unsigned part)
{
	struct host_read *h = &r->rd;
	char a[64], b[64];

	if (!h->note_len || h->note_len >= sizeof(h->note))
		return;
	h->note_len += (size_t)snprintf(h->note + h->note_len,
					sizeof(h->note) - h->note_len,
					"%s AR at %s, R at %s, %s",
					part ? ";" : "", at(a, sizeof(a), e->cycle[0]),
					at(b, sizeof(b), e->cycle[1]),
					resp_names[e->resp & 3]);
}

static void on_read_done(struct rtl *r, const struct pf_rtl_rec *e)
{
	struct host_read *h = &r->rd;
	unsigned part = e->id - h->id;
	uint32_t v = (uint32_t)e->data;

	if (!h->active || part >= h->parts || (h->done & (1u << part)))
		return;                 /* a read a reset or the clock gave up */
	h->done |= (uint8_t)(1u << part);
	r->warned[LOG_TIMEOUT] &= ~(1u << h->bar);
	note_read_part(r, e, part);
	if (e->resp != PF_RTL_OKAY && h->status == PF_CPL_OK)
		h->status = e->resp == PF_RTL_DECERR ? PF_CPL_UR : PF_CPL_CA;
	if (h->size == 8) {
		pf_le_store(h->data + 4 * part, 4, v);
	} else {
		v >>= 8 * (h->off & 3);
		pf_le_store(h->data, h->size, v);
	}
	if (h->done == (1u << h->parts) - 1)
		read_finish(r);
}

static void answer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct rtl *r = w->data;

	pf_dev_log(r->dev, PF_LOG_WARN, "BAR%u+0x%" PRIx64 ": the simulation did "
		   "not answer the read within %.0f s (it is at cycle %" PRIu64
		   "); completed as Unsupported Request (the guest reads all ones)",
		   r->rd.bar, r->rd.off, ANSWER_S, sim_cycle(r));
	read_fail_all(r);
}

/* ---- Host writes ---- */

static void rtl_bar_write(void *s, unsigned bar, uint64_t off, const void *data,
			  uint32_t size)
{
	struct rtl *r = s;
	uint64_t v = pf_le_load(data, size);
	unsigned parts = size == 8 ? 2 : 1;

	if (r->dead || !(r->axi_bars & (1u << bar)))
		return;
	host_here(r);
	if (r->writes_out + parts > PF_RTL_MAX_QUEUED) {
		warn_once(r, LOG_QUEUE, bar, "BAR%u+0x%" PRIx64 ": dropping a write: "
			  "%u accesses already wait for the design", bar, off,
			  r->writes_out);
		return;
	}
	for (unsigned i = 0; i < parts; i++) {
		struct pf_rtl_rec rec = { .type = PF_RTL_WRITE, .bar = (uint16_t)bar,
					  .id = r->next_id++ };

		if (size == 8) {
			rec.addr = off + 4 * i;
			rec.data = (uint32_t)(v >> (32 * i));
			rec.strb = 0xf;
		} else {
			rec.addr = off & ~3ull;
			rec.data = (uint32_t)(v << (8 * (off & 3)));
			rec.strb = (uint8_t)(((1u << size) - 1) << (off & 3));
		}
		if (!send_rec(r, &rec, NULL, 0))
			return;
		r->writes_out++;
	}
}

static void on_write_done(struct rtl *r, const struct pf_rtl_rec *e)
{
	char a[64], w[64], b[64];

	if ((int32_t)(e->id - r->id_floor) < 0)
		return;
	if (r->writes_out)
		r->writes_out--;
	r->warned[LOG_TIMEOUT] &= ~(1u << e->bar);
	if (e->resp != PF_RTL_OKAY)
		warn_once(r, LOG_BRESP, e->bar, "BAR%u+0x%" PRIx64 ": the design "
			  "answered a write with %s at %s (posted: the host is not "
			  "told)", e->bar, e->addr, resp_names[e->resp & 3],
			  at(b, sizeof(b), e->cycle[2]));
	pf_dev_note(r->dev, false, "rtl: BAR%u+0x%" PRIx64 " write, WSTRB 0x%x: "
		    "AW at %s, W at %s, B at %s, %s", e->bar, e->addr, e->strb,
		    at(a, sizeof(a), e->cycle[0]), at(w, sizeof(w), e->cycle[1]),
		    at(b, sizeof(b), e->cycle[2]), resp_names[e->resp & 3]);
}

/* ---- The watchdog ---- */

static const char *const timeout_names[] = {
	[PF_RTL_TO_AR] = "ARREADY", [PF_RTL_TO_R] = "RVALID",
	[PF_RTL_TO_AW] = "AWREADY", [PF_RTL_TO_W] = "WREADY",
	[PF_RTL_TO_B] = "BVALID",
};

static void on_timeout(struct rtl *r, const struct pf_rtl_rec *e)
{
	struct host_read *h = &r->rd;
	bool rd = e->data == PF_RTL_READ;
	const char *fate = rd ? "completed as Unsupported Request (the guest "
			   "reads all ones)" : "the write is dropped";
	char a[64], b[64];

	if ((int32_t)(e->id - r->id_floor) < 0 || e->what < PF_RTL_TO_AR ||
	    e->what > PF_RTL_TO_BLOCKED)
		return;
	if (e->what == PF_RTL_TO_BLOCKED)
		warn_once(r, LOG_TIMEOUT, e->bar & 7, "BAR%u+0x%" PRIx64 ": not "
			  "tried, at %s: the design never finished an earlier access "
			  "on this BAR, and nothing goes on its bus until it does or a "
			  "reset (docs/hdl.md 9): %s", e->bar, e->addr,
			  at(a, sizeof(a), e->cycle[0]), fate);
	else
		warn_once(r, LOG_TIMEOUT, e->bar & 7, "BAR%u+0x%" PRIx64 ": the "
			  "design gave no %s for %" PRIu64 " cycles (the %s was "
			  "presented at %s), given up at %s: %s", e->bar, e->addr,
			  timeout_names[e->what], e->cycle[2] - e->cycle[0],
			  rd ? "read" : "write", at(a, sizeof(a), e->cycle[0]),
			  at(b, sizeof(b), e->cycle[2]), fate);
	if (!rd) {
		if (r->writes_out)
			r->writes_out--;
		return;
	}
	if (h->active && e->id - h->id < h->parts && !(h->done & (1u << (e->id - h->id)))) {
		h->done |= (uint8_t)(1u << (e->id - h->id));
		h->status = PF_CPL_UR;
		if (h->done == (1u << h->parts) - 1)
			read_finish(r);
	}
}

/* ---- DMA ---- */

static void dma_answer(struct rtl *r, uint32_t id, uint8_t resp, const void *data,
		       uint32_t len)
{
	struct pf_rtl_rec rec = { .type = PF_RTL_DMA_DATA, .id = id, .resp = resp };

	send_rec(r, &rec, resp == PF_RTL_OKAY ? data : NULL,
		 resp == PF_RTL_OKAY ? len : 0);
}

static void dma_read_done(void *opaque, enum pf_dma_result res, const void *data,
			  uint32_t len)
{
	struct dma_read *d = opaque;
	struct rtl *r = d->r;
	char a[64];

	r->dma_reads--;
	if (res == PF_DMA_OK && len == d->len) {
		dma_answer(r, d->id, PF_RTL_OKAY, data, len);
	} else if (res != PF_DMA_CANCELLED) {
		warn_once(r, LOG_DMA, 0, "m_dma: the %u-byte read at 0x%" PRIx64
			  " (AR at %s) failed: the host refused it; answered SLVERR",
			  d->len, d->addr, at(a, sizeof(a), d->cycle));
		dma_answer(r, d->id, PF_RTL_SLVERR, NULL, 0);
	}
	free(d);
}

static void on_dma_read(struct rtl *r, const struct pf_rtl_rec *e)
{
	struct dma_read *d;
	uint32_t len = (uint32_t)e->data;
	char a[64];

	if (!len || len > PF_RTL_MAX_BURST)
		return;
	/* Past 2^64 there is no bus to send it on. */
	d = r->dma_reads < MAX_DMA_READS && e->addr <= UINT64_MAX - (len - 1) ?
	    calloc(1, sizeof(*d)) : NULL;
	if (d) {
		*d = (struct dma_read){ .r = r, .id = e->id, .addr = e->addr,
					.cycle = e->cycle[0], .len = len };
		if (pf_dma_read(r->dev, e->addr, len, dma_read_done, d) == 0) {
			r->dma_reads++;
			pf_dev_note(r->dev, true, "rtl: m_dma read, %u bytes at 0x%"
				    PRIx64 ": AR at %s", len, e->addr,
				    at(a, sizeof(a), e->cycle[0]));
			return;
		}
		free(d);
	}
	warn_once(r, LOG_DMA, 1, "m_dma: the %u-byte read at 0x%" PRIx64 " (AR at "
		  "%s) could not be sent%s; answered DECERR", len, e->addr,
		  at(a, sizeof(a), e->cycle[0]),
		  pf_dev_connected(r->dev) ? "" : " (no host)");
	dma_answer(r, e->id, PF_RTL_DECERR, NULL, 0);
}

/* Each run of enabled bytes is one posted write; all must be sent. */
static uint8_t dma_write_runs(struct rtl *r, uint64_t addr, const uint8_t *data,
			      const uint8_t *strb, uint32_t len)
{
	uint8_t resp = PF_RTL_OKAY;

	for (uint32_t i = 0; i < len;) {
		uint32_t j;

		if (!(strb[i / 8] & (1u << (i % 8)))) {
			i++;
			continue;
		}
		for (j = i; j < len && (strb[j / 8] & (1u << (j % 8))); j++)
			;
		if (pf_dma_write(r->dev, addr + i, data + i, j - i) < 0)
			resp = PF_RTL_DECERR;
		i = j;
	}
	return resp;
}

/* A posted write: the design has its OKAY; a failure here is only said. */
static void on_dma_write(struct rtl *r, const struct pf_rtl_rec *e,
			 const uint8_t *payload)
{
	uint32_t len = (uint32_t)e->data;
	char a[64], b[64], c[64];

	if (!len || len > PF_RTL_MAX_BURST || e->len != len + (len + 7) / 8 ||
	    e->addr > UINT64_MAX - (len - 1))
		return;
	if (dma_write_runs(r, e->addr, payload, payload + len, len) != PF_RTL_OKAY)
		warn_once(r, LOG_DMA, 2, "m_dma: the %u-byte write at 0x%" PRIx64
			  " (AW at %s) could not be sent%s: lost (posted: the "
			  "design had its OKAY)", len, e->addr,
			  at(a, sizeof(a), e->cycle[0]),
			  pf_dev_connected(r->dev) ? " (output queue full)" : " (no host)");
	else
		pf_dev_note(r->dev, true, "rtl: m_dma write, %u bytes at 0x%" PRIx64
			    ": AW at %s, W from %s to %s", len, e->addr,
			    at(a, sizeof(a), e->cycle[0]), at(b, sizeof(b), e->cycle[1]),
			    at(c, sizeof(c), e->cycle[2]));
}

static void on_dma_bad(struct rtl *r, const struct pf_rtl_rec *e)
{
	static const char *const why[] = {
		[PF_RTL_BAD_SIZE] = "its AxSIZE is not 2 (4 bytes, the bus width)",
		[PF_RTL_BAD_BURST] = "its AxBURST is not INCR",
		[PF_RTL_BAD_ALIGN] = "its address is not a multiple of 4",
		[PF_RTL_BAD_WLAST] = "WLAST was not on its last beat",
		[PF_RTL_BAD_WRAP] = "it goes past 2^64",
		[PF_RTL_BAD_NO_HOST] = "no host is connected",
	};
	unsigned w = e->what & 7;
	char a[64];

	warn_once(r, LOG_DMA_BAD, w, "m_dma: the %" PRIu64 "-byte %s burst at 0x%"
		  PRIx64 " (at %s) is refused: %s; answered %s", e->data,
		  e->what & PF_RTL_BAD_READ ? "read" : "write", e->addr,
		  at(a, sizeof(a), e->cycle[0]), w < 7 && why[w] ? why[w] : "?",
		  resp_names[e->resp & 3]);
}

/* ---- Interrupts ---- */

static void on_irq(struct rtl *r, const struct pf_rtl_rec *e)
{
	bool msi = e->what == PF_RTL_IRQ_MSI;
	unsigned declared = msi ? r->msi_vectors : r->msix_vectors;
	char a[64], b[64];

	if (e->data >= declared) {
		warn_once(r, LOG_IRQ, msi, "irq: the design asked for %s vector %"
			  PRIu64 " at %s, which the function does not have (%u "
			  "declared): dropped", msi ? "MSI" : "MSI-X", e->data,
			  at(a, sizeof(a), e->cycle[1]), declared);
		return;
	}
	if (msi)
		pf_raise_msi(r->dev, (unsigned)e->data);
	else
		pf_raise_msix(r->dev, (unsigned)e->data);
	pf_dev_note(r->dev, true, "rtl: %s vector %" PRIu64 ": irq_req at %s, "
		    "irq_ack at %s", msi ? "MSI" : "MSI-X", e->data,
		    at(a, sizeof(a), e->cycle[0]), at(b, sizeof(b), e->cycle[1]));
}

static void on_intx(struct rtl *r, const struct pf_rtl_rec *e)
{
	char a[64];

	if (!r->intx_pin)
		return;
	pf_set_intx(r->dev, e->what != 0);
	pf_dev_note(r->dev, true, "rtl: intx %s at %s", e->what ? "high" : "low",
		    at(a, sizeof(a), e->cycle[0]));
}

/* ---- Events from the simulation ---- */

static void on_event(struct rtl *r, const struct pf_rtl_rec *e)
{
	switch (e->type) {
	case PF_RTL_READ_DONE:
		on_read_done(r, e);
		break;
	case PF_RTL_WRITE_DONE:
		on_write_done(r, e);
		break;
	case PF_RTL_TIMEOUT:
		on_timeout(r, e);
		break;
	case PF_RTL_DMA_READ:
		on_dma_read(r, e);
		break;
	case PF_RTL_DMA_WRITE:
		on_dma_write(r, e, r->payload);
		break;
	case PF_RTL_DMA_BAD:
		on_dma_bad(r, e);
		break;
	case PF_RTL_IRQ:
		on_irq(r, e);
		break;
	case PF_RTL_INTX:
		on_intx(r, e);
		break;
	case PF_RTL_RESET_DONE:
		pf_dev_log(r->dev, PF_LOG_DEBUG, "reset %u: rst_n low from cycle %"
			   PRIu64 " to %" PRIu64, e->id, e->cycle[0], e->cycle[1]);
		break;
	default:
		pf_dev_log(r->dev, PF_LOG_DEBUG, "ignoring an event of type %u",
			   e->type);
	}
}

/* Handle what the simulation sent; returns how many events. */
static unsigned take_events(struct rtl *r)
{
	struct pf_rtl_rec e;
	char err[200];
	unsigned count = 0;
	int n;

	while (!r->dead &&
	       (n = pf_rtl_recv(&r->proc.link, &e, r->payload, err, sizeof(err))) != 0) {
		if (n < 0) {
			char why[260];

			snprintf(why, sizeof(why), "broke the link (%s)", err);
			sim_gone(r, why);
			break;
		}
		on_event(r, &e);
		count++;
	}
	return count;
}

static void poll_start(struct rtl *r)
{
	if (r->dead)
		return;
	r->last_event_ns = pf_ring_now_ns();
	if (ev_is_active(&r->poll))
		return;
	/* Awake: the simulation need not ring our doorbell. */
	pf_ring_consumer_awake(&r->proc.link.rx);
	ev_idle_start(pf_dev_loop(r->dev), &r->poll);
}

static void poll_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
	struct rtl *r = w->data;
	uint64_t now = pf_ring_now_ns();

	if (take_events(r)) {
		r->last_event_ns = now;
		return;
	}
	if (r->dead || (now - r->last_event_ns >= POLL_NS &&
			pf_ring_consumer_sleep(&r->proc.link.rx)))
		ev_idle_stop(loop, w);
}

static void bell_cb(struct ev_loop *loop, ev_io *w, int revents)
{
	struct rtl *r = w->data;

	pf_doorbell_drain(w->fd);
	if (take_events(r))
		poll_start(r);
}

/* ---- The simulation's life ---- */

static void stats(struct rtl *r, const char *when)
{
	struct pf_rtl_shared *sh = r->proc.link.shared;
	uint64_t cycles, ns;

	if (!sh)
		return;
	cycles = __atomic_load_n(&sh->cycle, __ATOMIC_RELAXED);
	ns = __atomic_load_n(&sh->clocking_ns, __ATOMIC_RELAXED);
	pf_dev_log(r->dev, PF_LOG_INFO, "%s: %" PRIu64 " cycles simulated in %.3f s "
		   "of clocking (%.0f cycles/s), idle %" PRIu64 " times", when,
		   cycles, ns / 1e9, ns ? cycles * 1e9 / ns : 0.0,
		   __atomic_load_n(&sh->sleeps, __ATOMIC_RELAXED));
}

static void watch(struct rtl *r)
{
	struct ev_loop *loop = pf_dev_loop(r->dev);

	ev_io_set(&r->bell, r->proc.bridge_bell, EV_READ);
	ev_child_set(&r->exit_w, r->proc.pid, 0);
	ev_io_start(loop, &r->bell);
	ev_child_start(loop, &r->exit_w);
}

static void unwatch(struct rtl *r)
{
	struct ev_loop *loop = pf_dev_loop(r->dev);

	ev_io_stop(loop, &r->bell);
	ev_child_stop(loop, &r->exit_w);
	ev_idle_stop(loop, &r->poll);
	ev_timer_stop(loop, &r->answer);
}

static uint64_t sim_cycle(const struct rtl *r)
{
	const struct pf_rtl_shared *sh = r->proc.link.shared;

	return sh ? __atomic_load_n(&sh->cycle, __ATOMIC_RELAXED) : 0;
}

/*
 * The simulation is gone (@why: what it did; NULL: it exited by itself).
 * Reads complete UR and writes are dropped until a reset starts another.
 */
static void sim_gone(struct rtl *r, const char *why)
{
	uint64_t cycle = sim_cycle(r);
	char how[100];

	if (r->dead)
		return;
	r->dead = true;
	unwatch(r);
	rtl_proc_stop(&r->proc, 0);
	rtl_proc_describe_exit(&r->proc, how, sizeof(how));
	pf_dev_log(r->dev, PF_LOG_ERROR, "the simulation %s at cycle %" PRIu64
		   " (what it printed is above); until the next reset its BARs "
		   "read as all ones and ignore writes", why ? why : how, cycle);
	read_fail_all(r);
}

static void exit_cb(struct ev_loop *loop, ev_child *w, int revents)
{
	struct rtl *r = w->data;

	if (w->rpid != r->proc.pid)
		return;
	rtl_proc_exited(&r->proc, w->rstatus);
	take_events(r);         /* what it did before it went */
	sim_gone(r, NULL);
}

static int sim_start(struct rtl *r, char *err, size_t errlen)
{
	unsigned want = 0;

	if (rtl_proc_start(&r->proc, r->sim, r->wave, &r->cfg, START_S, err, errlen))
		return -1;
	for (unsigned i = 0; i < 6; i++)
		if (r->axi_bars & (1u << i))
			want |= 1u << i;
	if (want & ~r->proc.bars) {
		snprintf(err, errlen, "the design has no AXI4-Lite port for the BARs "
			 "in 0x%x (s_barN_* ports: 0x%x): build it with those BARs "
			 "(hdl/build.py --bars) or declare barN=0", want, r->proc.bars);
		rtl_proc_stop(&r->proc, 1.0);
		return -1;
	}
	r->dead = false;
	pf_dev_log(r->dev, PF_LOG_INFO, "simulating %s (pid %d)", r->proc.name,
		   (int)r->proc.pid);
	watch(r);
	return 0;
}

/* ---- Reset ---- */

static void rtl_reset(void *s, enum pf_reset_kind kind)
{
	struct rtl *r = s;
	struct pf_rtl_rec rec = { .type = PF_RTL_RESET };
	char err[300];

	/* The framework cancelled DMA and the deferred read already. */
	r->rd.active = false;
	ev_timer_stop(pf_dev_loop(r->dev), &r->answer);
	r->id_floor = r->next_id;
	r->writes_out = 0;
	memset(r->warned, 0, sizeof(r->warned));
	if (kind == PF_RESET_DISCONNECT) {
		stats(r, "host gone");
		if (r->proc.link.shared)
			__atomic_store_n(&r->proc.link.shared->no_host, 1,
					 __ATOMIC_RELAXED);
	}
	if (r->dead) {
		/* A reset starts a simulation that died again, as power would. */
		if (sim_start(r, err, sizeof(err)))
			pf_dev_log(r->dev, PF_LOG_ERROR, "cannot restart the "
				   "simulation: %s", err);
		return;
	}
	rec.id = ++r->epoch;
	send_rec(r, &rec, NULL, 0);
}

/* ---- Identity and options ---- */

static int parse_bars(struct rtl *r, struct pf_identity *id)
{
	uint64_t size, msix, msix_bar, msi;
	bool intx;

	for (unsigned i = 0; i < 6; i++) {
		char name[8];

		snprintf(name, sizeof(name), "bar%u", i);
		if (pf_opt_u64(r->dev, name, 0, 1u << 30, &size))
			return -1;
		if (!size)
			continue;
		if (size < 16 || (size & (size - 1))) {
			pf_dev_error(r->dev, "invalid %s: %" PRIu64 " is not a power of "
				     "two of at least 16", name, size);
			return -1;
		}
		id->bars[i] = (struct pf_bar_decl){
			/* 1..8 bytes: the bridge splits and strobes (docs/hdl.md). */
			.kind = PF_BAR_MEM32, .size = size, .access_min = 1,
			.access_max = 8, .bursts = PF_BURST_UR,
		};
		r->axi_bars |= 1u << i;
	}
	if (pf_opt_u64(r->dev, "msix", 0, 2048, &msix) ||
	    pf_opt_u64(r->dev, "msix-bar", 0, 5, &msix_bar) ||
	    pf_opt_u64(r->dev, "msi", 0, 32, &msi) ||
	    pf_opt_bool(r->dev, "intx", &intx))
		return -1;
	if (msi & (msi - 1)) {
		pf_dev_error(r->dev, "invalid msi: %" PRIu64 " (0, 1, 2, 4, 8, 16 or 32)",
			     msi);
		return -1;
	}
	if (msix) {
		uint32_t table = 16 * (uint32_t)msix;
		uint32_t pba = table < 0x800 ? 0x800 : (table + 0x7ff) & ~0x7ffu;
		uint64_t bar = 4096;

		if (r->axi_bars & (1u << msix_bar)) {
			pf_dev_error(r->dev, "msix-bar=%" PRIu64 " is an AXI4-Lite "
				     "window (bar%" PRIu64 "=): the MSI-X table needs "
				     "a BAR of its own", msix_bar, msix_bar);
			return -1;
		}
		while (bar < pba + (msix + 63) / 64 * 8)
			bar *= 2;
		id->bars[msix_bar] = (struct pf_bar_decl){ .kind = PF_BAR_MEM32,
							   .size = bar };
		id->msix_table_bar = id->msix_pba_bar = (uint8_t)msix_bar;
		id->msix_table_offset = 0;
		id->msix_pba_offset = pba;
	}
	if (!r->axi_bars) {
		pf_dev_error(r->dev, "no BAR: give at least one barN=SIZE");
		return -1;
	}
	id->msix_vectors = (uint16_t)msix;
	id->msi_vectors = (uint16_t)msi;
	id->intx_pin = intx ? 1 : 0;
	r->msix_vectors = (unsigned)msix;
	r->msi_vectors = (unsigned)msi;
	r->intx_pin = intx;
	return 0;
}

static int parse_identity(struct rtl *r, struct pf_identity *id)
{
	uint64_t vendor, device, svendor, sdevice, cls, rev;

	if (pf_opt_u64(r->dev, "vendor", 0, 0xffff, &vendor) ||
	    pf_opt_u64(r->dev, "device", 0, 0xffff, &device) ||
	    pf_opt_u64(r->dev, "subsystem-vendor", 0, 0xffff, &svendor) ||
	    pf_opt_u64(r->dev, "subsystem", 0, 0xffff, &sdevice) ||
	    pf_opt_u64(r->dev, "class", 0, 0xffffff, &cls) ||
	    pf_opt_u64(r->dev, "revision", 0, 0xff, &rev))
		return -1;
	id->vendor_id = (uint16_t)vendor;
	id->device_id = (uint16_t)device;
	id->subsystem_vendor_id = (uint16_t)svendor;
	id->subsystem_id = (uint16_t)sdevice;
	id->class_code = (uint32_t)cls;
	id->revision = (uint8_t)rev;
	return parse_bars(r, id);
}

static int parse_sim(struct rtl *r)
{
	uint64_t wd, cpu, rc;
	const char *sim = pf_dev_option(r->dev, "sim");
	const char *wave = pf_dev_option(r->dev, "wave");

	if (pf_opt_u64(r->dev, "watchdog", 16, 1ull << 40, &wd) ||
	    pf_opt_u64(r->dev, "cycles-per-us", 0, 100000, &cpu) ||
	    pf_opt_u64(r->dev, "reset-cycles", 1, 1u << 20, &rc))
		return -1;
	if (!sim[0]) {
		pf_dev_error(r->dev, "sim=DIR is required: the simulation hdl/build.py "
			     "built (docs/hdl.md)");
		return -1;
	}
	if (strlen(sim) >= sizeof(r->sim) - 8 || strlen(wave) >= sizeof(r->wave)) {
		pf_dev_error(r->dev, "sim= or wave= is too long a path");
		return -1;
	}
	strcpy(r->sim, sim);
	strcpy(r->wave, wave);
	r->cfg.watchdog_cycles = wd;
	r->cfg.cycles_per_us = cpu;
	r->cfg.reset_cycles = (uint32_t)rc;
	return 0;
}

static void rtl_destroy(void *s)
{
	struct rtl *r = s;

	if (!r->dead) {
		stats(r, "at exit");
		unwatch(r);
	}
	rtl_proc_stop(&r->proc, 5.0);
	free(r);
}

static void *rtl_create(struct pf_dev *dev, struct pf_identity *id)
{
	struct rtl *r = calloc(1, sizeof(*r));
	char err[300];

	if (!r) {
		pf_dev_error(dev, "out of memory");
		return NULL;
	}
	r->dev = dev;
	r->proc.pidfd = r->proc.sim_bell = r->proc.bridge_bell = -1;
	r->next_id = 1;
	r->dead = true;
	ev_io_init(&r->bell, bell_cb, -1, EV_READ);
	ev_idle_init(&r->poll, poll_cb);
	ev_child_init(&r->exit_w, exit_cb, 0, 0);
	ev_timer_init(&r->answer, answer_cb, ANSWER_S, 0);
	r->bell.data = r->exit_w.data = r->answer.data = r->poll.data = r;
	if (parse_identity(r, id) || parse_sim(r))
		goto fail;
	if (sim_start(r, err, sizeof(err))) {
		pf_dev_error(dev, "%s", err);
		goto fail;
	}
	return r;
fail:
	free(r);
	return NULL;
}

static const struct pf_model_ops rtl_ops = {
	.bar_read = rtl_bar_read,
	.bar_write = rtl_bar_write,
	.reset = rtl_reset,
	.destroy = rtl_destroy,
};

static struct pf_model rtl_model = {
	.name = "rtl",
	.summary = "a design in Verilog or VHDL, simulated by Verilator or GHDL "
		   "(sim=DIR from hdl/build.py; docs/hdl.md)",
	.options = rtl_options,
	.create = rtl_create,
	.ops = &rtl_ops,
};

PF_MODEL_REGISTER(rtl_model);
