/*
 * The RTL link: how pciefw-endpoint's rtl model (endpoint/models/rtl.c,
 * "the bridge") and the runtime of a simulated design (hdl/runtime/
 * pf_rtl.c, "the simulator") talk.  docs/hdl.md section 8 describes it.
 *
 * The bridge creates one memfd: a page of struct pf_rtl_shared, then a
 * region of two byte rings (protocol/ring.h: the rings and the wake-up
 * protocol of the session's shared-memory transport, spec 11), and two
 * eventfd doorbells.  It starts the simulator with the memfd as fd 3, the
 * simulator's doorbell as fd 4 and its own as fd 5.  Each ring carries
 * records: a struct pf_rtl_rec, then rec.len bytes of payload.  Requests
 * go to the simulator; events come back, each stamped with the simulation
 * cycles at which the design made its handshakes.  A record is written
 * whole (its bytes published at once) or not at all.
 *
 * Both sides check what they read: the simulator runs a design someone
 * wrote, the bridge serves a guest.
 */
#ifndef PCIEFW_RTL_LINK_H
#define PCIEFW_RTL_LINK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pf_rtl.h"         /* PF_RTL_PERIOD_NS */
#include "ring.h"

#define PF_RTL_MAGIC       0x4c545250u   /* "PRTL" */
#define PF_RTL_VERSION     1u
#define PF_RTL_FD_REGION   3
#define PF_RTL_FD_SIM_BELL 4
#define PF_RTL_FD_BRIDGE_BELL 5
#define PF_RTL_RING_BYTES  (64u * 1024)
#define PF_RTL_SHARED_SIZE 4096u
/* The ring region's direction names, as the bridge plays the host. */
#define PF_RTL_TO_SIM      PF_RING_TO_ENDPOINT
#define PF_RTL_TO_BRIDGE   PF_RING_TO_HOST

/* AXI data bus width of every port, in bytes. */
#define PF_RTL_BUS_BYTES   4u
/* Longest DMA burst (AXI4: 256 beats) and its bytes. */
#define PF_RTL_MAX_BEATS   256u
#define PF_RTL_MAX_BURST   (PF_RTL_MAX_BEATS * PF_RTL_BUS_BYTES)
/* DMA bursts the simulator lets the design have outstanding, per direction. */
#define PF_RTL_DMA_OUTSTANDING 8u
/* Host accesses the bridge lets wait for the design at once. */
#define PF_RTL_MAX_QUEUED  256u
/* Largest record payload: a DMA write's data and its byte-enable bitmap. */
#define PF_RTL_MAX_PAYLOAD (PF_RTL_MAX_BURST + PF_RTL_MAX_BURST / 8)

/* AXI responses (xRESP). */
enum pf_rtl_resp {
	PF_RTL_OKAY = 0,
	PF_RTL_EXOKAY = 1,
	PF_RTL_SLVERR = 2,
	PF_RTL_DECERR = 3,
};

enum pf_rtl_rec_type {
	/* Bridge to simulator. */
	PF_RTL_READ = 1,        /* bar, addr: one AXI4-Lite read */
	PF_RTL_WRITE,           /* bar, addr, data, strb: one AXI4-Lite write */
	PF_RTL_DMA_DATA,        /* id (burst), resp; payload: the data (OKAY) */
	PF_RTL_RESET,           /* id (epoch): assert rst_n, drop everything */
	PF_RTL_EXIT,            /* finish the simulation (waves closed) */

	/* Simulator to bridge. */
	PF_RTL_HELLO = 64,      /* data: AXI4-Lite BARs (bit mask); payload: name */
	PF_RTL_READ_DONE,       /* id, resp, data; cycle: AR, R */
	PF_RTL_WRITE_DONE,      /* id, resp; cycle: AW, W, B */
	PF_RTL_TIMEOUT,         /* id, what, data (PF_RTL_READ or _WRITE); cycle:
				 * presented, taken (or 0), now */
	PF_RTL_DMA_READ,        /* id (burst), addr, data (bytes); cycle: AR */
	PF_RTL_DMA_WRITE,       /* id, addr, data (bytes); cycle: AW, first W, last W;
				 * payload: the bytes, then one bit per byte (WSTRB).
				 * Posted: the simulator has answered BRESP OKAY */
	PF_RTL_DMA_BAD,         /* id, addr, data (bytes), what, resp; cycle:
				 * handshake: a burst the bus refused */
	PF_RTL_IRQ,             /* what (PF_RTL_IRQ_*), data (vector); cycle: req, ack */
	PF_RTL_INTX,            /* what (level); cycle: change */
	PF_RTL_RESET_DONE,      /* id (epoch); cycle: asserted, released */
};

/* PF_RTL_TIMEOUT.what: the handshake that never came. */
enum pf_rtl_timeout {
	PF_RTL_TO_AR = 1,       /* ARREADY */
	PF_RTL_TO_R,            /* RVALID */
	PF_RTL_TO_AW,           /* AWREADY */
	PF_RTL_TO_W,            /* WREADY */
	PF_RTL_TO_B,            /* BVALID */
	PF_RTL_TO_BLOCKED,      /* not tried: the design never finished an
				 * earlier access on this BAR (pf_rtl.c) */
};

/* PF_RTL_DMA_BAD.what: why the simulator refused a burst. */
enum pf_rtl_dma_bad {
	PF_RTL_BAD_SIZE = 1,    /* AxSIZE is not the bus width (2) */
	PF_RTL_BAD_BURST,       /* AxBURST is not INCR (1) */
	PF_RTL_BAD_ALIGN,       /* address not a multiple of 4 */
	PF_RTL_BAD_WLAST,       /* WLAST not on the burst's last beat */
	PF_RTL_BAD_WRAP,        /* a write past 2^64 (DECERR) */
	PF_RTL_BAD_NO_HOST,     /* a write with no host to take it (DECERR) */
	PF_RTL_BAD_READ = 8,    /* flag: the burst was a read */
};

/* PF_RTL_IRQ.what */
enum pf_rtl_irq_kind { PF_RTL_IRQ_MSIX = 0, PF_RTL_IRQ_MSI = 1 };

struct pf_rtl_rec {
	uint16_t type;          /* enum pf_rtl_rec_type */
	uint16_t bar;
	uint32_t len;           /* payload bytes after this record */
	uint32_t id;            /* request, burst or reset number */
	uint8_t resp;           /* enum pf_rtl_resp */
	uint8_t strb;           /* WSTRB of a host write */
	uint8_t what;
	uint8_t pad;
	uint64_t addr;          /* BAR offset or bus address */
	uint64_t data;
	uint64_t cycle[3];
};

/*
 * The first page of the memfd.  The bridge writes the configuration before
 * it starts the simulator; the simulator publishes its progress (relaxed
 * stores, for statistics only: nothing waits on them).
 */
struct pf_rtl_shared {
	uint32_t magic, version;
	uint32_t ring_bytes;
	uint32_t reset_cycles;          /* rst_n low this many cycles */
	uint64_t watchdog_cycles;       /* a host access gives up after this */
	uint64_t cycles_per_us;         /* 0: on demand; else free-running */
	uint32_t no_host;               /* the bridge's: DMA writes get DECERR */
	uint8_t pad0[64 - 36];
	uint64_t cycle;                 /* the simulator's: cycles so far */
	uint64_t clocking_ns;           /* wall time spent clocking */
	uint64_t sleeps;                /* times it slept for want of work */
};

/* Offset of the ring region in the memfd, and the memfd's size. */
#define PF_RTL_REGION_OFFSET PF_RTL_SHARED_SIZE
size_t pf_rtl_link_size(void);

/*
 * One side of the link: the rings it reads and writes, the peer's doorbell.
 * pf_rtl_link_attach() maps nothing: it takes the mapped memfd.
 */
struct pf_rtl_link {
	struct pf_rtl_shared *shared;
	struct pf_ring rx, tx;
	int peer_bell;
};

/* Bridge: lay out a fresh memfd mapping of pf_rtl_link_size() bytes. */
int pf_rtl_link_init(void *base, char *err, size_t errlen);
/* Either side: attach to a mapping (@sim: which side we are). */
int pf_rtl_link_attach(struct pf_rtl_link *l, void *base, size_t size, bool sim,
		       int peer_bell, char *err, size_t errlen);

/*
 * Send @rec (its len set from @payload_len) and @payload as one record;
 * rings the peer's doorbell if it sleeps.  Returns 0, or -1 when the ring
 * has no room for it now (nothing written) or is corrupt.
 */
int pf_rtl_send(struct pf_rtl_link *l, struct pf_rtl_rec *rec,
		const void *payload, uint32_t payload_len);
/* Room for a record with @payload_len bytes of payload? */
bool pf_rtl_room(struct pf_rtl_link *l, uint32_t payload_len);

/*
 * Take the next record: 1 (with @rec and up to PF_RTL_MAX_PAYLOAD bytes in
 * @payload), 0 if none waits, -1 if the peer broke the link (an
 * impossible index or length: @err says what).
 */
int pf_rtl_recv(struct pf_rtl_link *l, struct pf_rtl_rec *rec, void *payload,
		char *err, size_t errlen);

#endif /* PCIEFW_RTL_LINK_H */
