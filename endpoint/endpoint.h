/*
 * The device framework's internals (device.c, with its helpers access.c
 * and options.c) and what the daemon calls (main.c, server.c).  Models see
 * only device.h.
 */
#ifndef PCIEFW_ENDPOINT_H
#define PCIEFW_ENDPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "codec.h"
#include "conn.h"
#include "device.h"
#include "shared_ram.h"
#include "handshake.h"
#include "tag_window.h"

struct dma_op;

#define PF_MAX_MODEL_OPTS 32

/*
 * A read the model completes later (pf_complete_read); the host's requests
 * behind it are held by the connection meanwhile (conn.h).
 */
struct pf_deferred {
	bool active;
	uint32_t tag, size;
};

/* A mapping pf_dma_map() gave the model (device.h), until it unmaps it. */
struct pf_dma_mapping {
	uint8_t *p;
	uint64_t addr;
	uint32_t len;
	bool write;
};

struct pf_dev {
	const struct pf_model *model;
	void *state;
	struct pf_identity id;
	const char *opt_names[PF_MAX_MODEL_OPTS];
	const char *opt_values[PF_MAX_MODEL_OPTS];
	size_t n_opts;
	char error[256];
	struct ev_loop *loop;

	struct pf_conn *conn;           /* NULL while no host is connected */
	struct pf_session session;
	uint8_t *scratch;               /* read data, max payload bytes */
	bool intx_level;
	unsigned warned_access;         /* BARs whose refused write was logged */

	/* Outstanding DMA reads, oldest first (spec 5.2), and their sum. */
	struct dma_op *dma_head, *dma_tail;
	uint32_t dma_reads_out;
	uint64_t dma_bytes_out;
	uint32_t next_tag;
	/* Tags of reads cancelled by resets, whose completions may still come. */
	struct pf_tag_windows cancelled;

	struct pf_deferred deferred;
	/* pf_dev_note_completion(): written after the next completion. */
	char *completion_note;

	/*
	 * Guest memory shared by the host (docs/protocol.md 10): DMA is a
	 * copy while bus mastering is on and no DmaWrite sent as a message
	 * may still be unapplied (10.4: until a DmaRead sent after it, tag
	 * msg_write_tag or later, completes).
	 */
	struct pf_shared_ram gmem;
	bool bus_master;
	bool msg_write_unfenced;
	uint32_t msg_write_tag;
	void *dma_kick;                 /* ev_timer: deliver copied reads */
	/*
	 * DMA in place (pf_dma_map): the mappings the model holds, ended at
	 * the latest when the loop is about to wait (ev_prepare @maps_end)
	 * and before the map or bus mastering changes.
	 */
	struct pf_dma_mapping maps[PF_DMA_MAX_MAPS];
	unsigned n_maps;
	bool warned_maps;
	void *maps_end;                 /* ev_prepare */
	/* Page tables of a new map filled while idle (pf_shared_ram_prefault). */
	void *prefault;                 /* ev_idle, lowest priority */
	uint64_t prefault_ns;

	/* Counters, for logs and tests. */
	uint64_t n_dma_reads, n_dma_writes, n_irqs, n_dma_refused;
	uint64_t n_dma_copies;          /* reads and writes done by copy */
	uint64_t n_dma_in_place;        /* ... of which in place (pf_dma_map) */
	uint64_t n_dma_base;            /* reads + writes before this host */
};

/*
 * Are @opts "name=value" with names @model declares?  0, or -1 with @err
 * set.  The values are checked by the model, in pf_dev_create().
 */
int pf_dev_check_options(const struct pf_model *model, char *const *opts,
			 size_t n_opts, char *err, size_t errlen);
/* Build an instance of @model with "name=value" options. */
struct pf_dev *pf_dev_create(const struct pf_model *model, struct ev_loop *loop,
			     char **opts, size_t n_opts, char *err, size_t errlen);
void pf_dev_destroy(struct pf_dev *dev);
void pf_dev_describe(const struct pf_dev *dev, Pciefw__DeviceDescription *d,
		     Pciefw__Bar *bars, Pciefw__Bar **bar_ptrs);

/*
 * Serving a host (conn.h): its messages, by kind; attach sends our
 * DeviceDescription (spec 2.3), detach cancels DMA and resets the model.
 */
extern const struct pf_conn_handlers pf_dev_host_handlers;

#endif /* PCIEFW_ENDPOINT_H */
