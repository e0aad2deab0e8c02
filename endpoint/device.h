/*
 * The device-model API of pciefw-endpoint.
 *
 * A model is one C file: it fills a struct pf_identity, implements the
 * callbacks of struct pf_model_ops, and registers itself with
 * PF_MODEL_REGISTER().  The framework answers the host's requests by
 * calling those callbacks and gives the model DMA into guest memory and
 * interrupts.  docs/models.md walks through writing one; the small models
 * in endpoint/models/examples/ are the ones to copy, endpoint/models/
 * testdev.c uses every service.  docs/protocol.md has the rules behind
 * each call.
 *
 * Life cycle: create() once at startup (options are checked there); then
 * for each host that connects, the host's accesses and Reset messages,
 * and, when it goes away, reset(PF_RESET_DISCONNECT); destroy() at exit.
 * No reset() runs when a host connects: the state is power-on state
 * already (from create() or from the last host's disconnect reset).
 *
 * Everything runs on one libev loop thread: callbacks never run
 * concurrently, and a model must never block (spec 5.2).
 */
#ifndef PCIEFW_DEVICE_H
#define PCIEFW_DEVICE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "log.h"           /* PF_LOG_* levels for pf_dev_log() */
#include "msg.h"           /* pf_le_load/pf_le_store for register values */
#include "pciefw.pb-c.h"

struct ev_loop;
struct pf_dev;

/* Completion status a callback returns (spec 3.5). */
enum pf_cpl {
	PF_CPL_OK = PCIEFW__STATUS__STATUS_SUCCESSFUL,
	PF_CPL_UR = PCIEFW__STATUS__STATUS_UNSUPPORTED_REQUEST,
	PF_CPL_CA = PCIEFW__STATUS__STATUS_COMPLETER_ABORT,
	/*
	 * From bar_read of a memory BAR: the completion comes later, by
	 * pf_complete_read() (e.g. once data fetched by DMA has arrived).
	 */
	PF_CPL_DEFER = 100,
};

enum pf_bar_kind {
	PF_BAR_NONE = 0,
	PF_BAR_MEM32,
	PF_BAR_MEM64,
	PF_BAR_IO,
};

/*
 * A BAR, and the access contract of its bar_read/bar_write (as QEMU's
 * MemoryRegionOps .impl sizes): the framework hands the model only
 *
 *   - accesses of access_min..access_max bytes (1, 2, 4 or 8; 0 means 1
 *     and 8, IO BARs 1 and 4), naturally aligned, inside the BAR;
 *   - and, with @bursts PF_BURST_WHOLE (memory BARs), accesses longer
 *     than 8 bytes of any length up to the session's max payload at any
 *     offset inside the BAR: the model then serves exactly @size bytes.
 *
 * Any other access the host may send (spec 3.3) is brought to that shape
 * first: a read narrower than access_min is widened to it and the bytes
 * asked for are taken from the result; a longer one (an 8-byte access to
 * a 4-byte register file, a burst to a BAR with PF_BURST_SPLIT) is split
 * into the largest declared accesses, in ascending address order, as a
 * register block sees a multi-dword TLP; a write that does not start and
 * end on an access_min boundary is refused (posted: dropped and logged
 * once; IO: UR), since widening it would invent bytes.  A split read
 * completes with the status of its first piece that is not OK.
 */
enum pf_burst {
	PF_BURST_SPLIT = 0,     /* split into declared accesses (the default) */
	PF_BURST_UR,            /* refused: reads UR, writes dropped and logged */
	PF_BURST_WHOLE,         /* handed to the model whole */
};

struct pf_bar_decl {
	enum pf_bar_kind kind;
	bool prefetchable;
	uint64_t size;             /* power of two */
	uint8_t access_min, access_max;
	enum pf_burst bursts;      /* accesses longer than 8 bytes */
};

struct pf_identity {
	uint16_t vendor_id, device_id;
	uint16_t subsystem_vendor_id, subsystem_id;
	uint32_t class_code;       /* base class << 16 | subclass << 8 | prog-if */
	uint8_t revision;
	struct pf_bar_decl bars[6];
	uint8_t intx_pin;          /* 0 none, 1 = INTA# .. 4 = INTD# */
	uint16_t msi_vectors;      /* 0, 1, 2, 4, 8, 16, 32 */
	uint16_t msix_vectors;
	uint8_t msix_table_bar, msix_pba_bar;
	uint32_t msix_table_offset, msix_pba_offset;
};

/*
 * A model option, given as --device MODEL,NAME=VALUE or -O NAME=VALUE.
 * Unknown names are refused before create() runs; values are strings,
 * parsed in create() with pf_opt_u64()/pf_opt_bool()/pf_opt_mac() below.
 */
struct pf_model_option {
	const char *name;
	const char *help;
	const char *def;           /* default value, shown by --help */
};

enum pf_reset_kind {
	PF_RESET_SYSTEM = PCIEFW__RESET_KIND__RESET_SYSTEM,
	PF_RESET_FUNCTION = PCIEFW__RESET_KIND__RESET_FUNCTION,
	PF_RESET_DISCONNECT = 100, /* the host went away */
};

/*
 * Callbacks.  @s is the model's state from create().  BAR callbacks see
 * only the accesses their BAR declares (struct pf_bar_decl above), config
 * callbacks only 1, 2 or 4 bytes naturally aligned in the forwarded
 * ranges.  What the host sends that breaks spec 3.3 never reaches the
 * model: reads complete UR, posted writes are dropped with a warning.
 * Data is little-endian bytes.  Accesses to the MSI-X table and PBA are
 * the host's and never arrive.
 */
struct pf_model_ops {
	/*
	 * Required (the framework calls it unchecked).  Fill @data with @size
	 * bytes and return PF_CPL_OK, or PF_CPL_UR/PF_CPL_CA (the guest reads
	 * all ones), or PF_CPL_DEFER (memory BARs only, see
	 * pf_complete_read(); an access the framework split cannot wait and
	 * completes with CA, so a register that defers is declared wide
	 * enough for the accesses it takes).  @data is zeroed by nobody: fill
	 * all of it, and no more.
	 */
	int (*bar_read)(void *s, unsigned bar, uint64_t off, void *data, uint32_t size);
	/*
	 * Required.  Memory writes are posted: nothing the model does here
	 * reaches the guest as an error.  IO writes complete OK after it.
	 */
	void (*bar_write)(void *s, unsigned bar, uint64_t off, const void *data,
			  uint32_t size);
	/*
	 * Device-specific config space, offsets 0x40-0x7f and (when the host
	 * forwards it) 0x100-0xfff, naturally aligned: the framework answers
	 * UR for the rest (spec 4.1).  Optional: without them those offsets
	 * read 0 and ignore writes.  Each may be NULL on its own.
	 */
	int (*config_read)(void *s, uint32_t off, void *data, uint32_t size);
	int (*config_write)(void *s, uint32_t off, const void *data, uint32_t size);
	/*
	 * Required.  Back to power-on state.  Called for the host's Reset
	 * (PF_RESET_SYSTEM at machine reset, PF_RESET_FUNCTION for an FLR)
	 * before its completion is sent, and with PF_RESET_DISCONNECT when
	 * the host goes away.  Before the call the framework has cancelled
	 * outstanding DMA reads (their callbacks ran with PF_DMA_CANCELLED)
	 * and any deferred read; after it, it deasserts INTx if asserted.
	 */
	void (*reset)(void *s, enum pf_reset_kind kind);
	/* Optional (NULL: nothing is freed).  At exit, after the host left. */
	void (*destroy)(void *s);
};

struct pf_model {
	const char *name;
	const char *summary;
	const struct pf_model_option *options;   /* NULL-name terminated */
	/*
	 * Create an instance: read options with pf_dev_option(), fill @id,
	 * return the state (NULL with pf_dev_error() called on failure).
	 */
	void *(*create)(struct pf_dev *dev, struct pf_identity *id);
	const struct pf_model_ops *ops;
	struct pf_model *next;     /* registry link, set by PF_MODEL_REGISTER */
};

void pf_model_register(struct pf_model *m);
const struct pf_model *pf_model_find(const char *name);
const struct pf_model *pf_model_first(void);

#define PF_MODEL_REGISTER(m)                                          \
	static void __attribute__((constructor)) register_##m(void)   \
	{                                                             \
		pf_model_register(&(m));                              \
	}

/* ---- Services the framework gives a model ---- */

/* The value of option @name (its default if not given). */
const char *pf_dev_option(struct pf_dev *dev, const char *name);
/*
 * Typed options, for create(): parse option @name into @out.  On a bad
 * value they call pf_dev_error() ("invalid NAME: why") and return -1, so
 * create() can just return NULL.  Syntax (endpoint/options.h):
 * pf_opt_u64: decimal or 0x hex, optional K/M/G suffix (binary), within
 * [@min, @max], overflow refused; pf_opt_bool: on/off, yes/no, true/false,
 * 1/0; pf_opt_mac: unicast xx:xx:xx:xx:xx:xx.
 */
int pf_opt_u64(struct pf_dev *dev, const char *name, uint64_t min,
	       uint64_t max, uint64_t *out);
int pf_opt_bool(struct pf_dev *dev, const char *name, bool *out);
int pf_opt_mac(struct pf_dev *dev, const char *name, uint8_t mac[6]);
/* Report a create() failure. */
void pf_dev_error(struct pf_dev *dev, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
struct ev_loop *pf_dev_loop(struct pf_dev *dev);
/* True while a host is connected and past the handshake. */
bool pf_dev_connected(const struct pf_dev *dev);

enum pf_dma_result {
	PF_DMA_OK = 0,
	PF_DMA_FAILED,       /* the host refused (UR/CA), e.g. bus mastering off */
	PF_DMA_CANCELLED,    /* reset or disconnect; issue no DMA from here */
};

typedef void pf_dma_done_fn(void *opaque, enum pf_dma_result res,
			    const void *data, uint32_t len);

/*
 * Limits on outstanding DMA reads (docs/protocol.md 1.3): at most this many
 * reads, of at most this many bytes together, wait for the host at once.
 */
#define PF_DMA_MAX_READS 8192
#define PF_DMA_MAX_BYTES (16u << 20)

/*
 * Output queued for the host (docs/protocol.md 1.3).  Above
 * PF_OUT_QUEUE_MAX the endpoint stops reading the host's requests until
 * the host has read enough; so one request's output starts below it.  A
 * DMA read or write that would take the queue above PF_OUT_QUEUE_LIMIT
 * fails: that bounds what one request may make a model produce.
 */
#define PF_OUT_QUEUE_MAX   (4u << 20)
#define PF_OUT_QUEUE_LIMIT (PF_OUT_QUEUE_MAX + (32u << 20))

/*
 * Read @len bytes of guest memory at bus address @addr.  Never blocks:
 * @done runs later from the loop (never from inside this call) with the
 * whole buffer; reads longer than the negotiated payload are split.
 * Requests issued by one model complete in the order they were issued.
 * Returns 0, or -1 (@done is not called) if no host is connected, if the
 * range wraps past 2^64, or if the read would exceed PF_DMA_MAX_READS or
 * PF_DMA_MAX_BYTES: the model treats that like a refused DMA.
 *
 * When the host shares guest RAM (docs/protocol.md 10) and bus mastering
 * is on, a range wholly inside one shared region is read by a memory copy
 * at once instead of by messages; nothing changes for the model: @done
 * still runs later, from the loop, in issue order.
 */
int pf_dma_read(struct pf_dev *dev, uint64_t addr, uint32_t len,
		pf_dma_done_fn *done, void *opaque);
/* Posted write of guest memory; split as needed, or a memory copy into
 * shared guest RAM (docs/protocol.md 10).  Ordered before anything
 * the model sends afterwards (spec 5.1, 10.4).  Returns 0, or -1 if no host is
 * connected, the range wraps past 2^64, or the write would take queued
 * output above PF_OUT_QUEUE_LIMIT (nothing is sent). */
int pf_dma_write(struct pf_dev *dev, uint64_t addr, const void *data, uint32_t len);

/*
 * DMA in place (docs/protocol.md 10): guest memory itself, where the host
 * shares it, instead of a copy.  pf_dma_map() returns a pointer to the
 * @len bytes of guest memory at bus address @addr, to read (@write false)
 * or to write (@write true), or NULL; on NULL the model does the same DMA
 * with pf_dma_read()/pf_dma_write(), which work everywhere:
 *
 *	const uint8_t *p = pf_dma_map(dev, addr, len, false);
 *
 *	if (!p)
 *		return pf_dma_read(dev, addr, len, done, ctx);
 *	use(ctx, p, len);               (what done() does with the data)
 *	pf_dma_unmap(dev, p);
 *
 * NULL when no host is connected, @len is 0, the range wraps past 2^64 or
 * is not wholly inside one region the host shared, bus mastering is not
 * known to be on (10.3), a DmaWrite sent as a message may not have been
 * applied yet (10.4), PF_DMA_MAX_MAPS mappings are open, or, for a read,
 * a read issued by pf_dma_read() has not reached the model yet: reads
 * reach a model in the order it issued them, in place or not.
 *
 * Read: the bytes are the DMA read's data, as done() would have had them.
 * The guest runs meanwhile and may change them at any moment, as it may
 * under a device's DMA: read each value you check or use once, into a
 * local (a hostile guest otherwise passes a check with one length and has
 * the model use another), and copy what you hand to code you do not own.
 * Write: the model's stores land in guest memory as it makes them; the
 * DMA write is complete at pf_dma_unmap(), ordered before anything the
 * model sends after that (spec 5.1, 10.4), so unmap before raising the
 * interrupt that reports the data.
 *
 * Lifetime: the pointer is valid until pf_dma_unmap(), which the model
 * calls before it returns from the callback in which it mapped (any
 * callback: a register access, a DMA completion, a timer, a packet
 * backend's) and before it calls pf_complete_read() (which may run held
 * host requests, a Reset among them).  Never keep it, or a pointer into
 * it, in the model's state: a new MemoryMap, a reset clearing bus
 * mastering or the host leaving may unmap that memory between two
 * callbacks.  The framework never changes the map while a callback runs
 * but through pf_complete_read(), and it ends every mapping still open
 * when it regains control (before the loop waits, and before a MemoryMap,
 * a BusMaster, a Reset or the end of the connection is applied),
 * recording a write as written, and logs that as a model bug.
 *
 * Each mapping is counted and recorded in the trace as the DMA it
 * replaces, as a copy is (docs/protocol.md 10.5): a read as its DmaReads
 * and their Completions when mapped, a write as its DmaWrites when
 * unmapped.
 */
#define PF_DMA_MAX_MAPS 16
void *pf_dma_map(struct pf_dev *dev, uint64_t addr, uint32_t len, bool write);
/* The DMA through @p (from pf_dma_map()) is done; @p is invalid from now. */
void pf_dma_unmap(struct pf_dev *dev, const void *p);

/*
 * Complete the read a bar_read callback deferred (PF_CPL_DEFER): @status,
 * and on PF_CPL_OK the @size bytes it asked for.  At most one read is
 * deferred at a time: the host's later requests wait behind it, in order
 * (spec 5.1), while DMA completions keep arriving.  After a reset or a
 * disconnect the call is ignored.
 */
void pf_complete_read(struct pf_dev *dev, int status, const void *data,
		      uint32_t size);

/*
 * Interrupts (spec 3.2).  The model names a vector; the host owns what the
 * guest programmed and applies it, as QEMU's pciefw device does, first
 * matching row:
 *
 *   the function is being reset (a forwarded Reset)   dropped
 *   MSI/MSI-X: Bus Master Enable clear                dropped (the message
 *                                                     is a memory write)
 *   MSI/MSI-X: the capability's Enable bit clear      dropped, not pending
 *   MSI/MSI-X: vector (or MSI-X function) masked      pending bit set,
 *                                                     delivered on unmask
 *   MSI/MSI-X otherwise                               delivered
 *   INTx: the level is recorded (Status.INTx); the pin is signalled while
 *   the command register's Interrupt Disable is clear
 *
 * QEMU's trace events pciefw_msi/pciefw_msix/pciefw_intx say which row
 * applied to each message (./dev try writes them to build/try/qemu.log).
 *
 * A model cannot ask which of these applies: MSI/MSI-X enable, masks and
 * the command register live in the config space the host emulates and
 * never forwards (spec 4.1), and protocol 1.0 has no message carrying
 * them.  One would not help much: an answer would be stale by the time
 * the model's interrupt reaches the host (the guest may mask or disable
 * in between), while the host decides at delivery time, which is where
 * PCIe decides too.  So a model raises what its own registers say and
 * lets the host apply the guest's state.  docs/models.md shows how to
 * check in the guest that a vector arrived.
 *
 * Dropped by the endpoint with a warning in its log: a vector at or
 * above the number declared in the identity.  Dropped silently: any
 * interrupt while no host is connected.  pf_set_intx() is a level: it
 * sends only changes, and does nothing without a declared intx_pin.
 */
void pf_raise_msix(struct pf_dev *dev, unsigned vector);
void pf_raise_msi(struct pf_dev *dev, unsigned vector);
void pf_set_intx(struct pf_dev *dev, bool level);

/*
 * Notes in the trace (docs/protocol.md 6): what the model makes of a
 * transaction, as a note record.  pf_dev_note() writes one after the last
 * record: with @to_host, about the message the model's last call produced
 * (a DmaRead, DmaWrite or interrupt); without, about a host request.
 * pf_complete_read_note() is pf_complete_read() with @note (NULL: none)
 * recorded right after the completion, before held requests go on.  Both
 * do nothing without a trace; pf_dev_tracing() says whether there is one,
 * so that a model formats notes only when they are kept.
 */
bool pf_dev_tracing(const struct pf_dev *dev);
void pf_dev_note(struct pf_dev *dev, bool to_host, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/*
 * From bar_read, for a read it completes now (not deferred): @note is
 * recorded right after that read's completion.
 */
void pf_dev_note_completion(struct pf_dev *dev, const char *note);
void pf_complete_read_note(struct pf_dev *dev, int status, const void *data,
			   uint32_t size, const char *note);

/*
 * Logging to the endpoint's stderr, prefixed with the time, level and
 * model name.  @level is PF_LOG_ERROR, PF_LOG_WARN, PF_LOG_INFO or
 * PF_LOG_DEBUG; the endpoint shows INFO and above unless run with
 * --log-level debug.
 */
void pf_dev_log(struct pf_dev *dev, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif /* PCIEFW_DEVICE_H */
