/*
 * Internals shared by the endpoint's framework (device.c) and its
 * transport (server.c).  Models see only device.h.
 */
#ifndef PCIEFW_ENDPOINT_H
#define PCIEFW_ENDPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "codec.h"
#include "device.h"
#include "shared_ram.h"
#include "handshake.h"
#include "tag_window.h"

struct pf_conn;
struct dma_op;

#define PF_MAX_MODEL_OPTS 32
/* Host requests held while a deferred read is outstanding (spec 5.3). */
#define PF_MAX_HELD_MSGS 256u
#define PF_MAX_HELD_BYTES (2u << 20)

struct pf_held;

/* A read the model completes later, and the requests held behind it. */
struct pf_deferred {
	bool active;
	uint32_t tag, size;
	struct pf_held *head, *tail;
	unsigned n_held;
	size_t held_bytes;
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

	struct pf_deferred deferred;    /* defer.c */

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

	/* Counters, for logs and tests. */
	uint64_t n_requests, n_dma_reads, n_dma_writes, n_irqs, n_dma_refused;
	uint64_t n_dma_copies;          /* reads and writes done by copy */
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

/* A host finished the handshake / went away (cancels DMA, resets model). */
void pf_dev_attach(struct pf_dev *dev, struct pf_conn *conn,
		   const struct pf_session *s);
void pf_dev_detach(struct pf_dev *dev);

/*
 * Handle one validated message from the host.  Returns PF_OK, or a
 * negative PF_ERR_* with @err set when the host broke the protocol and the
 * connection must be closed; pf_error_code() names its ErrorCode.
 */
int pf_dev_handle(struct pf_dev *dev, const PfMessage *m, char *err, size_t errlen);

/*
 * Deferred reads (defer.c).  pf_defer_hold() takes @m if a deferred read
 * is outstanding and @m is a host request, setting *@r (PF_OK, or
 * PF_ERR_LIMIT with @err when too much is held); returns whether it did.
 */
bool pf_defer_hold(struct pf_dev *dev, const PfMessage *m, int *r,
		   char *err, size_t errlen);
void pf_defer_begin(struct pf_dev *dev, uint32_t tag, uint32_t size);
/* Forget the deferred read and everything held (the host is gone). */
void pf_defer_reset(struct pf_dev *dev);

/* Transport services used by device.c (server.c). */
struct pf_buf *pf_conn_out_begin(struct pf_conn *c, size_t *mark);
/* Bytes queued for the host and not yet sent. */
size_t pf_conn_out_queued(const struct pf_conn *c);
void pf_conn_out_end(struct pf_conn *c, size_t mark);
/* Claim the @n oldest fds the host passed (spec 10.2). */
bool pf_conn_take_fds(struct pf_conn *c, int *out, unsigned n);
const char *pf_conn_name(const struct pf_conn *c);
/*
 * Record the frames in @b (not sent) in the trace, each followed by a
 * note @note (spec 10.5); nothing without a trace.
 */
bool pf_conn_tracing(const struct pf_conn *c);
void pf_conn_trace_frames(struct pf_conn *c, int dir, const struct pf_buf *b,
			  const char *note);

#endif /* PCIEFW_ENDPOINT_H */
