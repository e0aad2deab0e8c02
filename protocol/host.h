/*
 * libpciefw host side: the QEMU end of the protocol, with a simulated guest
 * memory, for tests, benchmarks and trace replay.  Calls block until their
 * completion arrives, and while they wait they serve what the endpoint sends
 * (DMA, interrupts) exactly as the QEMU device does (spec 5.3).
 */
#ifndef PCIEFW_HOST_H
#define PCIEFW_HOST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "handshake.h"
#include "pciefw.pb-c.h"

/* Guest RAM seen by endpoint DMA: bus addresses [base, base + size). */
struct pf_guest_mem {
	uint64_t base;
	uint64_t size;
	uint8_t *data;
	bool bus_master;          /* Bus Master Enable: DMA refused when off */
};

struct pf_host_opts {
	const char *name;         /* Hello.peer_name; default "pciefw-host" */
	uint32_t max_payload;     /* 0: PCIEFW_DEFAULT_PAYLOAD */
	uint32_t version_major;   /* 0: this build's; tests override */
	uint32_t version_minor;
	uint64_t features;        /* used when version_major != 0 */
	int timeout_ms;           /* per completion; 0: 5000 */
	uint64_t mem_base;        /* simulated guest RAM */
	uint64_t mem_size;        /* 0: none (every DMA completes with CA) */
	/*
	 * Guest RAM in a sealed memfd passed to the endpoint (spec 10), so
	 * that its DMA is a copy: UNIX sockets only; mem_base and mem_size
	 * 4 KiB aligned.
	 */
	bool share_memory;
	/*
	 * Move the session to shared-memory rings (spec 11) when the
	 * endpoint offers them: UNIX sockets only.
	 */
	bool shm_rings;
	/*
	 * On the rings, send register accesses as binary records when the
	 * endpoint offers them (spec 11.7, protocol 1.4).
	 */
	bool reg_records;
};

#define PF_HOST_MAX_VECTORS 64

struct pf_host_irqs {
	uint64_t msix[PF_HOST_MAX_VECTORS];
	uint64_t msi[PF_HOST_MAX_VECTORS];
	uint64_t intx_asserts;
	bool intx_level;
	uint64_t total;
};

struct pf_host_stats {
	uint64_t dma_reads, dma_read_bytes, dma_writes, dma_write_bytes;
	uint64_t dma_refused;
};

struct pf_host;

/*
 * Connect to "tcp:HOST:PORT" or "unix:PATH", do the handshake and read the
 * device description.  NULL with the reason in @err on failure (including
 * the text of an Error the endpoint sent, e.g. a version refusal).
 */
struct pf_host *pf_host_connect(const char *addr, const struct pf_host_opts *o,
				char *err, size_t errlen);
/* Say goodbye (if @goodbye) and free everything. */
void pf_host_close(struct pf_host *h, bool goodbye);

const Pciefw__DeviceDescription *pf_host_description(const struct pf_host *h);
const struct pf_session *pf_host_session(const struct pf_host *h);
struct pf_guest_mem *pf_host_mem(struct pf_host *h);
const struct pf_host_irqs *pf_host_irqs(const struct pf_host *h);
const struct pf_host_stats *pf_host_stats(const struct pf_host *h);
/* Why the last call failed, or the endpoint's last Error/Goodbye text. */
const char *pf_host_error(const struct pf_host *h);
int pf_host_fd(const struct pf_host *h);
/* The session runs on shared-memory rings (spec 11)... */
bool pf_host_on_rings(const struct pf_host *h);
/* ...and register accesses travel as binary records there (11.7). */
bool pf_host_records(const struct pf_host *h);

/*
 * Requests.  Non-posted ones return the completion status (>= 0, one of
 * Pciefw__Status) or a negative PF_ERR_*; reads fill @buf on success.
 */
int pf_host_mem_read(struct pf_host *h, unsigned bar, uint64_t off, void *buf,
		     uint32_t size);
int pf_host_mem_write(struct pf_host *h, unsigned bar, uint64_t off,
		      const void *buf, uint32_t size);     /* posted: 0 or < 0 */
int pf_host_io_read(struct pf_host *h, unsigned bar, uint64_t off, void *buf,
		    uint32_t size);
int pf_host_io_write(struct pf_host *h, unsigned bar, uint64_t off,
		     const void *buf, uint32_t size);
int pf_host_config_read(struct pf_host *h, uint32_t off, void *buf, uint32_t size);
int pf_host_config_write(struct pf_host *h, uint32_t off, const void *buf,
			 uint32_t size);
int pf_host_reset(struct pf_host *h, Pciefw__ResetKind kind);

/*
 * Pipelined reads (spec 5.1 rule 3: non-posted requests may be
 * outstanding together; a completer answers them in order).  _start sends
 * a read and returns at once with a ticket (>= 0) or a negative PF_ERR_*;
 * @buf is filled when its completion comes, which pf_host_finish() waits
 * for and returns the status of (as pf_host_mem_read() does).  At most
 * PF_HOST_MAX_INFLIGHT requests are outstanding; every call waiting for
 * one serves the endpoint meanwhile and takes whatever completes.
 */
#define PF_HOST_MAX_INFLIGHT 64
int pf_host_mem_read_start(struct pf_host *h, unsigned bar, uint64_t off,
			   void *buf, uint32_t size);
int pf_host_finish(struct pf_host *h, int ticket);
/* Requests started and not finished. */
unsigned pf_host_inflight(const struct pf_host *h);

/* Register-sized helpers: value in, value out (little-endian on the wire). */
int pf_host_read32(struct pf_host *h, unsigned bar, uint64_t off, uint32_t *v);
int pf_host_write32(struct pf_host *h, unsigned bar, uint64_t off, uint32_t v);

/*
 * Serve incoming messages for up to @timeout_ms (0: only what is already
 * there).  Returns the number handled or a negative PF_ERR_*.
 */
int pf_host_poll(struct pf_host *h, int timeout_ms);
/*
 * Serve messages until @cond(h, arg) holds (checked after each batch read)
 * or @timeout_ms passes; returns 0, PF_ERR_TIMEOUT or another PF_ERR_*.
 */
int pf_host_wait(struct pf_host *h, bool (*cond)(struct pf_host *, void *),
		 void *arg, int timeout_ms);
/* Make sure everything queued has been written to the socket. */
int pf_host_flush(struct pf_host *h);

/*
 * Called as each interrupt message (Intx, Msi, MsiX: @kind is its
 * Pciefw__Message body case, @value the vector or level) is handled, in
 * stream order: what guest memory holds then is what a driver taking the
 * interrupt would see (spec 5.1).  NULL removes the hook.
 */
typedef void (*pf_host_irq_hook)(struct pf_host *h, int kind, uint32_t value,
				 void *arg);
void pf_host_set_irq_hook(struct pf_host *h, pf_host_irq_hook fn, void *arg);

/* Send raw bytes, bypassing the codec (for bad-input tests). */
int pf_host_send_raw(struct pf_host *h, const void *p, size_t len);

#endif /* PCIEFW_HOST_H */
