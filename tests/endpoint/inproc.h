/*
 * A device model driven in the test's own process, without the daemon: the
 * device is created by the framework (pf_dev_create), served through the
 * endpoint's real connection (conn.c) over a stream in memory, and the host
 * at the other end is the session's receiving half (protocol/rx.h) with a
 * simulated guest memory.  No socket, no listener (server.c), no process.
 */
#ifndef PCIEFW_TEST_INPROC_H
#define PCIEFW_TEST_INPROC_H

#include <stdbool.h>
#include <stdint.h>

#include "endpoint.h"
#include "handshake.h"
#include "rx.h"

struct mem_stream;

#define INPROC_VECTORS 64
#define INPROC_MAX_DATA 4096
#define INPROC_MAX_DMA 64
#define INPROC_CPLS 8

struct inproc_cpl {
	uint32_t tag;
	int status;
	uint32_t len;
	uint8_t data[INPROC_MAX_DATA];
};

struct inproc {
	struct ev_loop *loop;
	struct pf_dev *dev;
	struct pf_conn *conn;           /* NULL once closed */
	struct mem_stream *st;
	/* The host. */
	struct pf_hello_params hello;
	struct pf_rx rx;
	uint32_t next_tag;
	/* What the endpoint said about itself (spec 2.3). */
	bool described;
	uint32_t vendor_id, device_id, class_code;
	uint32_t msi_vectors, msix_vectors, intx_pin, n_bars;
	/* Completions, in the order they came: the last INPROC_CPLS kept. */
	struct inproc_cpl cpl[INPROC_CPLS];
	unsigned n_cpl;
	/* Guest memory, at bus addresses [ram_base, ram_base + ram_size). */
	uint8_t *ram;
	uint64_t ram_base, ram_size;
	/* Shared with the endpoint (inproc_start_shared): its memory file. */
	int memfd;
	uint8_t *old_ram[4];            /* inproc_remap's former RAM */
	unsigned n_old;
	struct pf_trace_writer *trace;  /* the endpoint's (inproc_trace_next) */
	/* DmaReads waiting for an answer while serving is held. */
	bool hold_dma;
	struct { uint32_t tag; uint64_t addr; uint32_t size; } dma[INPROC_MAX_DMA];
	unsigned n_dma;
	uint64_t dma_reads, dma_writes, dma_refused;
	/* Interrupts, as the host received them. */
	uint64_t msix[INPROC_VECTORS], msi[INPROC_VECTORS];
	bool intx_level;
	uint64_t intx_asserts;
	bool ended;                     /* the endpoint said Goodbye or Error */
	char why[320];
};

/*
 * Create @model with @opts (NULL-terminated "NAME=VALUE", or NULL) and
 * connect to it with @ram_size bytes of guest memory at @ram_base; the
 * handshake is done on return (the test fails otherwise).
 */
void inproc_start(struct inproc *ip, const char *model, const char *const *opts,
		  uint64_t ram_base, uint64_t ram_size);
/*
 * The same with guest memory shared (docs/protocol.md 10): the RAM is a
 * sealed memory file, the session negotiates the feature, and the host
 * sends its MemoryMap (one region) and BusMaster{true} before returning.
 */
void inproc_start_shared(struct inproc *ip, const char *model,
			 const char *const *opts, uint64_t ram_base,
			 uint64_t ram_size);
/*
 * Send a MemoryMap of @n regions of the memory file: region i at bus
 * address ram_base + offs[i], @sizes[i] bytes from the same offset in the
 * file (0 regions: the map is withdrawn).
 */
void inproc_memory_map(struct inproc *ip, const uint64_t *offs,
		       const uint64_t *sizes, unsigned n);
/*
 * Move guest RAM to a new memory file (its contents copied) and map that;
 * the old one stays mapped here, at the returned address, until
 * inproc_stop, so a test can see whether anything still writes there.
 */
uint8_t *inproc_remap(struct inproc *ip);
void inproc_bus_master(struct inproc *ip, bool on);
/* The next inproc_start* records the endpoint's trace to @path. */
void inproc_trace_next(const char *path);
/* Say goodbye, close, destroy the device (and close the trace). */
void inproc_stop(struct inproc *ip);

/* Run the loop until @cond(ip, arg) holds or @timeout_ms passes. */
bool inproc_run(struct inproc *ip, bool (*cond)(struct inproc *, void *),
		void *arg, int timeout_ms);
/* Run the loop until nothing moves between host and endpoint. */
void inproc_settle(struct inproc *ip);

/* Requests: non-posted ones wait for their completion and return its status. */
int inproc_mem_read(struct inproc *ip, unsigned bar, uint64_t off, void *buf,
		    uint32_t size);
void inproc_mem_write(struct inproc *ip, unsigned bar, uint64_t off,
		      const void *buf, uint32_t size);
int inproc_io_read(struct inproc *ip, unsigned bar, uint64_t off, void *buf,
		   uint32_t size);
int inproc_io_write(struct inproc *ip, unsigned bar, uint64_t off,
		    const void *buf, uint32_t size);
int inproc_config_read(struct inproc *ip, uint32_t off, void *buf, uint32_t size);
int inproc_config_write(struct inproc *ip, uint32_t off, const void *buf,
			uint32_t size);
int inproc_reset(struct inproc *ip, Pciefw__ResetKind kind);
/* Send a read and return its tag without waiting (inproc_wait_tag). */
uint32_t inproc_mem_read_async(struct inproc *ip, unsigned bar, uint64_t off,
			       uint32_t size);
/*
 * Wait for the completion of @tag: its status (and data, up to @size
 * bytes into @buf if not NULL), or -1 if none came.
 */
int inproc_wait_tag(struct inproc *ip, uint32_t tag, void *buf, uint32_t size);
/* Has the completion of @tag come? */
bool inproc_completed(struct inproc *ip, uint32_t tag);

uint32_t inproc_rd32(struct inproc *ip, unsigned bar, uint64_t off);
void inproc_wr32(struct inproc *ip, unsigned bar, uint64_t off, uint32_t v);

/* Guest memory at bus address @addr. */
uint8_t *inproc_ram(struct inproc *ip, uint64_t addr);
/* Answer the DmaReads held back while hold_dma was set. */
void inproc_serve_dma(struct inproc *ip);

#endif /* PCIEFW_TEST_INPROC_H */
