/*
 * The endpoint's device framework: checks the host's requests against the
 * model's identity, calls the model, sends completions, and gives models
 * DMA and interrupts.  Rules are those of docs/protocol.md (spec N.N).
 */
#include <ev.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "conn.h"
#include "endpoint.h"
#include "log.h"
#include "msg.h"
#include "regrec.h"
#include "trace.h"

struct dma_op {
	struct dma_op *next;
	uint64_t addr;
	uint32_t len;
	uint32_t first_tag;
	uint32_t n_chunks;
	uint32_t n_done;
	bool failed;
	bool by_copy;           /* done through shared memory (spec 10) */
	uint8_t *buf;
	uint8_t *chunk_done;    /* bitmap: which chunks have completed */
	pf_dma_done_fn *done;
	void *opaque;
};

static void dev_detach(struct pf_dev *dev);
static void maps_end_all(struct pf_dev *dev, const char *when);
static void maps_end_cb(struct ev_loop *loop, ev_prepare *w, int revents);
static void prefault_cb(struct ev_loop *loop, ev_idle *w, int revents);

static void dma_op_free(struct pf_dev *dev, struct dma_op *op)
{
	dev->dma_reads_out--;
	dev->dma_bytes_out -= op->len;
	free(op->chunk_done);
	free(op->buf);
	free(op);
}

/* ---- Sending ---- */

#define SEND(dev, put_call)                                           \
	do {                                                          \
		size_t mark_;                                         \
		struct pf_buf *o;                                     \
		if (!(dev)->conn)                                     \
			break;                                        \
		o = pf_conn_out_begin((dev)->conn, &mark_);           \
		if ((put_call) < 0)                                   \
			pf_err("out of memory queueing a message");   \
		pf_conn_out_end((dev)->conn, mark_);                  \
	} while (0)

static void send_completion(struct pf_dev *dev, uint32_t tag, int status,
			    const void *data, uint32_t size)
{
	if (status != PF_CPL_OK)
		size = 0;
	/* On the rings, as a binary record where one carries it (11.7). */
	SEND(dev, pf_put_completion_or_record(o, pf_conn_records(dev->conn), tag,
					      (Pciefw__Status)status, data,
					      size));
	if (dev->completion_note) {
		if (dev->conn)
			pf_conn_trace_note(dev->conn, PF_DIR_TO_HOST,
					   dev->completion_note);
		free(dev->completion_note);
		dev->completion_note = NULL;
	}
}

/* ---- Instance life cycle ---- */

static const struct pf_model_option *find_option(const struct pf_model *m,
						 const char *name, size_t len)
{
	for (const struct pf_model_option *o = m->options; o && o->name; o++)
		if (strlen(o->name) == len && !strncmp(o->name, name, len))
			return o;
	return NULL;
}

int pf_dev_check_options(const struct pf_model *model, char *const *opts,
			 size_t n_opts, char *err, size_t errlen)
{
	if (n_opts > PF_MAX_MODEL_OPTS) {
		snprintf(err, errlen, "too many options for device %s", model->name);
		return -1;
	}
	for (size_t i = 0; i < n_opts; i++) {
		const char *eq = strchr(opts[i], '=');

		if (!eq || eq == opts[i]) {
			snprintf(err, errlen, "device %s: option '%s' is not NAME=VALUE",
				 model->name, opts[i]);
			return -1;
		}
		if (!find_option(model, opts[i], (size_t)(eq - opts[i]))) {
			snprintf(err, errlen,
				 "device %s has no option '%.*s' (see --list-devices)",
				 model->name, (int)(eq - opts[i]), opts[i]);
			return -1;
		}
	}
	return 0;
}

/* The framework's own watchers on the loop, stopped until a host attaches. */
static int watchers_init(struct pf_dev *dev)
{
	ev_prepare *maps_end = calloc(1, sizeof(*maps_end));
	ev_idle *prefault = calloc(1, sizeof(*prefault));

	dev->maps_end = maps_end;
	dev->prefault = prefault;
	if (!maps_end || !prefault)
		return -1;
	ev_prepare_init(maps_end, maps_end_cb);
	maps_end->data = dev;
	ev_idle_init(prefault, prefault_cb);
	ev_set_priority(prefault, EV_MINPRI);
	prefault->data = dev;
	return 0;
}

struct pf_dev *pf_dev_create(const struct pf_model *model, struct ev_loop *loop,
			     char **opts, size_t n_opts, char *err, size_t errlen)
{
	struct pf_dev *dev;

	if (pf_dev_check_options(model, opts, n_opts, err, errlen))
		return NULL;
	dev = calloc(1, sizeof(*dev));
	if (!dev) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	dev->model = model;
	dev->loop = loop;
	dev->next_tag = 1;
	if (watchers_init(dev)) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	for (size_t i = 0; i < n_opts; i++) {
		dev->opt_names[i] = opts[i];
		dev->opt_values[i] = strchr(opts[i], '=') + 1;
	}
	dev->n_opts = n_opts;
	dev->state = model->create(dev, &dev->id);
	if (!dev->state) {
		snprintf(err, errlen, "device %s: %s", model->name,
			 dev->error[0] ? dev->error : "cannot create");
		goto fail;
	}
	for (unsigned i = 0; i < 6; i++) {
		char why[160];

		if (pf_access_normalize(&dev->id.bars[i], i, why, sizeof(why))) {
			snprintf(err, errlen, "device %s: %s", model->name, why);
			if (model->ops->destroy)
				model->ops->destroy(dev->state);
			goto fail;
		}
	}
	return dev;
fail:
	free(dev->maps_end);
	free(dev->prefault);
	free(dev);
	return NULL;
}

void pf_dev_destroy(struct pf_dev *dev)
{
	if (!dev)
		return;
	dev_detach(dev);
	free(dev->dma_kick);
	free(dev->maps_end);
	free(dev->prefault);
	if (dev->model->ops->destroy)
		dev->model->ops->destroy(dev->state);
	free(dev->completion_note);
	free(dev->scratch);
	free(dev);
}

const char *pf_dev_option(struct pf_dev *dev, const char *name)
{
	const struct pf_model_option *o;

	/* The last occurrence wins, as on most command lines. */
	for (size_t i = dev->n_opts; i-- > 0;) {
		size_t len = (size_t)(dev->opt_values[i] - 1 - dev->opt_names[i]);

		if (strlen(name) == len && !strncmp(dev->opt_names[i], name, len))
			return dev->opt_values[i];
	}
	o = find_option(dev->model, name, strlen(name));
	return o ? o->def : NULL;
}

void pf_dev_error(struct pf_dev *dev, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(dev->error, sizeof(dev->error), fmt, ap);
	va_end(ap);
}

struct ev_loop *pf_dev_loop(struct pf_dev *dev)
{
	return dev->loop;
}

bool pf_dev_connected(const struct pf_dev *dev)
{
	return dev->conn != NULL;
}

void pf_dev_log(struct pf_dev *dev, int level, const char *fmt, ...)
{
	char msg[900];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	pf_log((enum pf_log_level)level, "%s: %s", dev->model->name, msg);
}

bool pf_dev_tracing(const struct pf_dev *dev)
{
	return dev->conn && pf_conn_tracing(dev->conn);
}

void pf_dev_note_completion(struct pf_dev *dev, const char *note)
{
	free(dev->completion_note);
	dev->completion_note = pf_dev_tracing(dev) && note ? strdup(note) : NULL;
}

void pf_dev_note(struct pf_dev *dev, bool to_host, const char *fmt, ...)
{
	char note[PF_TRACE_MAX_NOTE];
	va_list ap;

	if (!pf_dev_tracing(dev))
		return;
	va_start(ap, fmt);
	vsnprintf(note, sizeof(note), fmt, ap);
	va_end(ap);
	pf_conn_trace_note(dev->conn, to_host ? PF_DIR_TO_HOST : PF_DIR_TO_ENDPOINT,
			   note);
}

void pf_dev_describe(const struct pf_dev *dev, Pciefw__DeviceDescription *d,
		     Pciefw__Bar *bars, Pciefw__Bar **bar_ptrs)
{
	const struct pf_identity *id = &dev->id;
	static const Pciefw__BarKind kinds[] = {
		[PF_BAR_MEM32] = PCIEFW__BAR_KIND__BAR_MEM32,
		[PF_BAR_MEM64] = PCIEFW__BAR_KIND__BAR_MEM64,
		[PF_BAR_IO] = PCIEFW__BAR_KIND__BAR_IO,
	};

	pciefw__device_description__init(d);
	d->vendor_id = id->vendor_id;
	d->device_id = id->device_id;
	d->subsystem_vendor_id = id->subsystem_vendor_id;
	d->subsystem_id = id->subsystem_id;
	d->class_code = id->class_code;
	d->revision = id->revision;
	d->intx_pin = id->intx_pin;
	d->msi_vectors = id->msi_vectors;
	d->msix_vectors = id->msix_vectors;
	d->msix_table_bar = id->msix_table_bar;
	d->msix_table_offset = id->msix_table_offset;
	d->msix_pba_bar = id->msix_pba_bar;
	d->msix_pba_offset = id->msix_pba_offset;
	d->bars = bar_ptrs;
	d->n_bars = 0;
	for (unsigned i = 0; i < 6; i++) {
		const struct pf_bar_decl *b = &id->bars[i];
		Pciefw__Bar *pb = &bars[d->n_bars];

		if (b->kind == PF_BAR_NONE)
			continue;
		pciefw__bar__init(pb);
		pb->index = i;
		pb->kind = kinds[b->kind];
		pb->prefetchable = b->prefetchable;
		pb->size = b->size;
		bar_ptrs[d->n_bars++] = pb;
	}
}

/* ---- DMA (spec 5.2) ---- */

/* ---- Guest memory shared by the host (spec 10) ---- */

/*
 * Where a DMA of [addr, addr + len) may be done by copy, or NULL: the
 * whole range in one mapped region, bus mastering on, and no DmaWrite
 * message that may not have been applied yet (10.4).
 */
static uint8_t *copy_target(const struct pf_dev *dev, uint64_t addr, uint32_t len)
{
	if (!len || !dev->bus_master || dev->msg_write_unfenced)
		return NULL;
	return pf_shared_ram_find(&dev->gmem, addr, len);
}

static void trace_copy(struct pf_dev *dev, struct pf_buf *b, int dir,
		       const char *what)
{
	pf_conn_trace_frames(dev->conn, dir, b, what);
	pf_buf_clear(b);
}

/* Spec 10.5: a copy is recorded as the messages it replaces. */
static void trace_copy_write(struct pf_dev *dev, uint64_t addr,
			     const uint8_t *data, uint32_t len, const char *what)
{
	uint32_t chunk = dev->session.max_payload;
	struct pf_buf b;

	if (!dev->conn || !pf_conn_tracing(dev->conn))
		return;
	pf_buf_init(&b);
	for (uint32_t off = 0; off < len; off += chunk) {
		uint32_t n = len - off < chunk ? len - off : chunk;

		pf_put_dma_write(&b, addr + off, data + off, n);
		trace_copy(dev, &b, PF_DIR_TO_HOST, what);
	}
	pf_buf_free(&b);
}

/*
 * A read by copy is recorded as its DmaReads when it is issued and as
 * their Completions when the model gets the data (@data), so that the
 * recording orders the data among the host's messages as the model saw
 * it: a replay over messages then feeds the model the same order.
 */
static void trace_read(struct pf_dev *dev, uint32_t first_tag, uint64_t addr,
		       const uint8_t *buf, uint32_t len, bool data,
		       const char *what)
{
	uint32_t chunk = dev->session.max_payload;
	struct pf_buf b;

	if (!dev->conn || !pf_conn_tracing(dev->conn))
		return;
	pf_buf_init(&b);
	for (uint32_t off = 0, i = 0; off < len; off += chunk, i++) {
		uint32_t n = len - off < chunk ? len - off : chunk;

		if (!data) {
			pf_put_dma_read(&b, first_tag + i, addr + off, n);
			trace_copy(dev, &b, PF_DIR_TO_HOST, what);
			continue;
		}
		pf_put_completion(&b, first_tag + i,
				  PCIEFW__STATUS__STATUS_SUCCESSFUL, buf + off, n);
		trace_copy(dev, &b, PF_DIR_TO_ENDPOINT,
			   "shared memory: the data the copy read");
	}
	pf_buf_free(&b);
}

static void trace_copy_read(struct pf_dev *dev, const struct dma_op *op,
			    bool data)
{
	trace_read(dev, op->first_tag, op->addr, op->buf, op->len, data,
		   "shared memory: read by copy");
}

static void dma_deliver(struct pf_dev *dev);

/* Reads done by copy reach the model from the loop (device.h). */
static void dma_kick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)loop;
	(void)revents;
	dma_deliver(w->data);
}

static void dma_kick(struct pf_dev *dev)
{
	ev_timer *t = dev->dma_kick;

	if (!t) {
		t = calloc(1, sizeof(*t));
		if (!t)
			return;     /* delivered with the next completion */
		ev_timer_init(t, dma_kick_cb, 0., 0.);
		t->data = dev;
		dev->dma_kick = t;
	}
	if (!ev_is_active(t))
		ev_timer_start(dev->loop, t);
}

static void log_shared_ram(void *opaque, bool warn, const char *line)
{
	if (warn)
		pf_warn("%s", line);
	else
		pf_info("%s", line);
}

static int handle_memory_map(struct pf_dev *dev, const Pciefw__MemoryMap *mm,
			     char *err, size_t errlen)
{
	int fds[PCIEFW_MAX_MEM_REGIONS];

	if (!pf_conn_take_fds(dev->conn, fds, (unsigned)mm->n_regions)) {
		snprintf(err, errlen, "memory map of %zu regions came without a "
			 "file descriptor for each", mm->n_regions);
		return PF_ERR_INVALID;
	}
	maps_end_all(dev, "when a new memory map came");
	if (pf_shared_ram_set(&dev->gmem, mm, fds, pf_conn_name(dev->conn),
			      log_shared_ram, NULL)) {
		dev->prefault_ns = 0;
		ev_idle_start(dev->loop, dev->prefault);
	}
	return PF_OK;
}

static void dma_cancel_all(struct pf_dev *dev, bool remember_tags)
{
	struct dma_op *op = dev->dma_head;

	if (op && remember_tags)
		pf_tag_windows_add(&dev->cancelled, op->first_tag, dev->next_tag);
	dev->dma_head = dev->dma_tail = NULL;
	while (op) {
		struct dma_op *next = op->next;

		op->done(op->opaque, PF_DMA_CANCELLED, NULL, 0);
		dma_op_free(dev, op);
		op = next;
	}
}

/* Is [addr, addr + len) a range of the 64-bit bus address space? */
static bool dma_range_ok(uint64_t addr, uint32_t len)
{
	return len == 0 || addr <= UINT64_MAX - (len - 1);
}

int pf_dma_read(struct pf_dev *dev, uint64_t addr, uint32_t len,
		pf_dma_done_fn *done, void *opaque)
{
	uint32_t chunk;
	struct dma_op *op;
	const uint8_t *src;

	if (!dev->conn || len == 0)
		return -1;
	if (!dma_range_ok(addr, len)) {
		pf_dev_log(dev, PF_LOG_WARN,
			   "refusing a %u-byte DMA read at 0x%llx: wraps past 2^64",
			   len, (unsigned long long)addr);
		return -1;
	}
	if (dev->dma_reads_out >= PF_DMA_MAX_READS ||
	    len > PF_DMA_MAX_BYTES - dev->dma_bytes_out ||
	    pf_conn_out_queued(dev->conn) > PF_OUT_QUEUE_LIMIT) {
		pf_debug("DMA read of %u bytes refused: %u reads, %llu bytes outstanding",
			 len, dev->dma_reads_out,
			 (unsigned long long)dev->dma_bytes_out);
		dev->n_dma_refused++;
		return -1;
	}
	chunk = dev->session.max_payload;
	op = calloc(1, sizeof(*op));
	if (!op)
		return -1;
	op->n_chunks = (len + chunk - 1) / chunk;
	op->buf = malloc(len);
	op->chunk_done = calloc((op->n_chunks + 7) / 8, 1);
	if (!op->buf || !op->chunk_done) {
		free(op->buf);
		free(op->chunk_done);
		free(op);
		return -1;
	}
	op->addr = addr;
	op->len = len;
	op->done = done;
	op->opaque = opaque;
	op->first_tag = dev->next_tag;
	dev->next_tag += op->n_chunks;
	dev->dma_reads_out++;
	dev->dma_bytes_out += len;
	if (dev->dma_tail)
		dev->dma_tail->next = op;
	else
		dev->dma_head = op;
	dev->dma_tail = op;
	src = copy_target(dev, addr, len);
	if (src) {
		/* Complete now; delivered in issue order, from the loop. */
		memcpy(op->buf, src, len);
		op->by_copy = true;
		op->n_done = op->n_chunks;
		dev->n_dma_reads++;
		dev->n_dma_copies++;
		trace_copy_read(dev, op, false);
		dma_kick(dev);
		return 0;
	}
	for (uint32_t i = 0; i < op->n_chunks; i++) {
		uint32_t off = i * chunk;
		uint32_t n = len - off < chunk ? len - off : chunk;

		SEND(dev, pf_put_dma_read(o, op->first_tag + i, addr + off, n));
	}
	dev->n_dma_reads++;
	return 0;
}

int pf_dma_write(struct pf_dev *dev, uint64_t addr, const void *data, uint32_t len)
{
	uint32_t chunk;
	uint8_t *dst;

	if (!dev->conn)
		return -1;
	if (!dma_range_ok(addr, len)) {
		pf_dev_log(dev, PF_LOG_WARN,
			   "refusing a %u-byte DMA write at 0x%llx: wraps past 2^64",
			   len, (unsigned long long)addr);
		return -1;
	}
	if (len > PF_OUT_QUEUE_LIMIT - pf_conn_out_queued(dev->conn) ||
	    pf_conn_out_queued(dev->conn) > PF_OUT_QUEUE_LIMIT) {
		pf_debug("DMA write of %u bytes refused: %zu bytes of output queued",
			 len, pf_conn_out_queued(dev->conn));
		dev->n_dma_refused++;
		return -1;
	}
	dst = copy_target(dev, addr, len);
	if (dst) {
		/*
		 * In guest memory before anything we send later (10.4).
		 * @data may be guest memory itself (pf_dma_map), even the
		 * same bytes.
		 */
		memmove(dst, data, len);
		dev->n_dma_writes++;
		dev->n_dma_copies++;
		trace_copy_write(dev, addr, dst, len,
				 "shared memory: copied to guest memory");
		return 0;
	}
	chunk = dev->session.max_payload;
	for (uint32_t off = 0; off < len; off += chunk) {
		uint32_t n = len - off < chunk ? len - off : chunk;

		SEND(dev, pf_put_dma_write(o, addr + off,
					   (const uint8_t *)data + off, n));
	}
	if (len && (dev->session.features & PCIEFW_FEATURE_GUEST_MEMORY)) {
		/* Copies wait until a later read shows it applied (10.4). */
		dev->msg_write_unfenced = true;
		dev->msg_write_tag = dev->next_tag;
	}
	dev->n_dma_writes++;
	return 0;
}

/* ---- DMA in place (device.h: pf_dma_map) ---- */

void *pf_dma_map(struct pf_dev *dev, uint64_t addr, uint32_t len, bool write)
{
	uint32_t chunk = dev->session.max_payload;
	uint8_t *p;

	/* Reads reach the model in issue order: none may pass a queued one. */
	if (!dev->conn || !dma_range_ok(addr, len) ||
	    dev->n_maps >= PF_DMA_MAX_MAPS || (!write && dev->dma_head))
		return NULL;
	p = copy_target(dev, addr, len);
	if (!p)
		return NULL;
	dev->maps[dev->n_maps++] = (struct pf_dma_mapping){ p, addr, len, write };
	if (!write) {
		/* Recorded as the reads it replaces, with their data (10.5). */
		uint32_t first = dev->next_tag;

		dev->next_tag += (len + chunk - 1) / chunk;
		trace_read(dev, first, addr, p, len, false,
			   "shared memory: read in place");
		trace_read(dev, first, addr, p, len, true, NULL);
		dev->n_dma_reads++;
		dev->n_dma_copies++;
		dev->n_dma_in_place++;
	}
	return p;
}

/* Mapping @i is over: a write is complete now, and recorded (10.5). */
static void map_end(struct pf_dev *dev, unsigned i)
{
	struct pf_dma_mapping m = dev->maps[i];

	memmove(&dev->maps[i], &dev->maps[i + 1],
		(dev->n_maps - i - 1) * sizeof(dev->maps[0]));
	dev->n_maps--;
	if (!m.write)
		return;
	dev->n_dma_writes++;
	dev->n_dma_copies++;
	dev->n_dma_in_place++;
	trace_copy_write(dev, m.addr, m.p, m.len, "shared memory: written in place");
}

void pf_dma_unmap(struct pf_dev *dev, const void *p)
{
	/* The latest first: the same bytes may be mapped twice (read, write). */
	for (unsigned i = dev->n_maps; i-- > 0;)
		if (dev->maps[i].p == p) {
			map_end(dev, i);
			return;
		}
	pf_dev_log(dev, PF_LOG_ERROR, "pf_dma_unmap() of a pointer that is not "
		   "mapped (unmapped twice, or kept past its callback)");
}

/*
 * The framework has control again and the model still holds mappings:
 * a model bug (device.h).  End them before anything can unmap that memory.
 */
static void maps_end_all(struct pf_dev *dev, const char *when)
{
	if (!dev->n_maps)
		return;
	if (!dev->warned_maps)
		pf_dev_log(dev, PF_LOG_ERROR, "%u DMA mapping(s) still open %s: "
			   "the model must pf_dma_unmap() before it returns; "
			   "ended now", dev->n_maps, when);
	dev->warned_maps = true;
	while (dev->n_maps)
		map_end(dev, dev->n_maps - 1);
}

static void maps_end_cb(struct ev_loop *loop, ev_prepare *w, int revents)
{
	(void)loop;
	(void)revents;
	maps_end_all(w->data, "when the loop waited");
}

/*
 * A new map's page tables, filled while the endpoint has nothing else to
 * do (lowest priority: never before any other work), a step at a time: a
 * request that comes meanwhile waits for the step in progress, ~0.3 ms
 * here for 256 KiB the file holds (a page costs ~5 us on this VM).
 */
#define PREFAULT_STEP (256u << 10)

static void prefault_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
	struct pf_dev *dev = w->data;
	uint64_t t0 = pf_now_ns();
	bool more = pf_shared_ram_prefault(&dev->gmem, PREFAULT_STEP);

	(void)revents;
	dev->prefault_ns += pf_now_ns() - t0;
	if (more)
		return;
	ev_idle_stop(loop, w);
	pf_info("%s: guest memory: page tables filled for the %llu MiB the "
		"memory file holds (%.1f ms)", dev->conn ? pf_conn_name(dev->conn) : "-",
		(unsigned long long)(dev->gmem.filled >> 20), dev->prefault_ns / 1e6);
}

/* Hand finished reads to the model, oldest first. */
static void dma_deliver(struct pf_dev *dev)
{
	/*
	 * Reads a callback issues, done by copy, wait for the next round:
	 * a model that chains reads never keeps the loop from the socket.
	 */
	struct dma_op *last = dev->dma_tail;

	while (last && dev->dma_head &&
	       dev->dma_head->n_done == dev->dma_head->n_chunks) {
		struct dma_op *op = dev->dma_head;
		bool was_last = op == last;

		dev->dma_head = op->next;
		if (!dev->dma_head)
			dev->dma_tail = NULL;
		if (op->by_copy)
			trace_copy_read(dev, op, true);
		op->done(op->opaque, op->failed ? PF_DMA_FAILED : PF_DMA_OK,
			 op->failed ? NULL : op->buf, op->failed ? 0 : op->len);
		dma_op_free(dev, op);
		if (was_last)
			break;
	}
	if (dev->dma_head && dev->dma_head->n_done == dev->dma_head->n_chunks)
		dma_kick(dev);
}

static int handle_completion(struct pf_dev *dev, const Pciefw__Completion *c,
			     char *err, size_t errlen)
{
	struct dma_op *op;
	uint32_t chunk = dev->session.max_payload;

	for (op = dev->dma_head; op; op = op->next)
		if (c->tag - op->first_tag < op->n_chunks)
			break;
	if (!op) {
		if (pf_tag_windows_has(&dev->cancelled, c->tag)) {
			pf_debug("dropping completion of cancelled DMA tag %u", c->tag);
			return PF_OK;
		}
		snprintf(err, errlen, "completion with unknown tag %u", c->tag);
		return PF_ERR_UNKNOWN_TAG;
	}
	uint32_t idx = c->tag - op->first_tag;
	uint32_t off = idx * chunk;
	uint32_t want = op->len - off < chunk ? op->len - off : chunk;

	/* Each chunk completes once: a second completion is not ours. */
	if (op->chunk_done[idx / 8] & (1u << (idx % 8))) {
		snprintf(err, errlen, "duplicate completion for DMA tag %u", c->tag);
		return PF_ERR_INVALID;
	}
	op->chunk_done[idx / 8] |= (uint8_t)(1u << (idx % 8));
	/* Sent after our last DmaWrite message: that write is applied (10.4). */
	if (dev->msg_write_unfenced && (int32_t)(c->tag - dev->msg_write_tag) >= 0)
		dev->msg_write_unfenced = false;
	if (c->status == PCIEFW__STATUS__STATUS_SUCCESSFUL) {
		if (c->data.len != want) {
			snprintf(err, errlen,
				 "completion for tag %u carries %zu bytes, %u were read",
				 c->tag, c->data.len, want);
			return PF_ERR_INVALID;
		}
		memcpy(op->buf + off, c->data.data, want);
	} else {
		op->failed = true;
	}
	op->n_done++;
	dma_deliver(dev);
	return PF_OK;
}

/* ---- Interrupts (spec 3.7) ---- */

void pf_raise_msix(struct pf_dev *dev, unsigned vector)
{
	if (!dev->conn)
		return;
	if (vector >= dev->id.msix_vectors) {
		pf_dev_log(dev, PF_LOG_WARN, "MSI-X vector %u not declared", vector);
		return;
	}
	dev->n_irqs++;
	SEND(dev, pf_put_msix(o, vector));
}

void pf_raise_msi(struct pf_dev *dev, unsigned vector)
{
	if (!dev->conn)
		return;
	if (vector >= dev->id.msi_vectors) {
		pf_dev_log(dev, PF_LOG_WARN, "MSI vector %u not declared", vector);
		return;
	}
	dev->n_irqs++;
	SEND(dev, pf_put_msi(o, vector));
}

void pf_set_intx(struct pf_dev *dev, bool level)
{
	if (!dev->id.intx_pin || dev->intx_level == level)
		return;
	dev->intx_level = level;
	if (!dev->conn)
		return;
	dev->n_irqs += level;
	SEND(dev, pf_put_intx(o, level));
}

/* ---- Host requests (spec 3.3, 4) ---- */

static void reset_device(struct pf_dev *dev, enum pf_reset_kind kind)
{
	maps_end_all(dev, "at a reset");
	dma_cancel_all(dev, kind != PF_RESET_DISCONNECT);
	dev->model->ops->reset(dev->state, kind);
	/* The pin follows the model; a reset leaves it deasserted. */
	if (dev->intx_level)
		pf_set_intx(dev, false);
}

static void dev_attach(struct pf_dev *dev, struct pf_conn *conn,
		       const struct pf_session *s)
{
	free(dev->scratch);
	dev->scratch = malloc(s->max_payload);
	dev->conn = conn;
	dev->session = *s;
	dev->next_tag = 1;
	pf_tag_windows_clear(&dev->cancelled);
	dev->intx_level = false;
	dev->warned_access = 0;
	/* No map and bus mastering off until the host says (10.2, 10.3). */
	pf_shared_ram_clear(&dev->gmem);
	dev->bus_master = false;
	dev->msg_write_unfenced = false;
	dev->n_dma_base = dev->n_dma_reads + dev->n_dma_writes;
	ev_prepare_start(dev->loop, dev->maps_end);
}

static void dev_detach(struct pf_dev *dev)
{
	if (!dev->conn)
		return;
	maps_end_all(dev, "when the host left");
	/* Tests and users learn from this line whether the fast path ran. */
	pf_info("%s: %llu of %llu DMA transfers done through shared memory "
		"(%llu of them in place)",
		pf_conn_name(dev->conn), (unsigned long long)dev->n_dma_copies,
		(unsigned long long)(dev->n_dma_reads + dev->n_dma_writes -
				     dev->n_dma_base),
		(unsigned long long)dev->n_dma_in_place);
	dev->conn = NULL;
	dev->deferred.active = false;
	reset_device(dev, PF_RESET_DISCONNECT);
	dev->intx_level = false;
	pf_shared_ram_clear(&dev->gmem);
	dev->bus_master = false;
	dev->n_dma_copies = 0;
	dev->n_dma_in_place = 0;
	if (dev->dma_kick)
		ev_timer_stop(dev->loop, dev->dma_kick);
	ev_prepare_stop(dev->loop, dev->maps_end);
	ev_idle_stop(dev->loop, dev->prefault);
}

static bool natural(uint64_t off, uint32_t size)
{
	return (size == 1 || size == 2 || size == 4 || size == 8) &&
	       !(off & (size - 1));
}

/* Can a memory/IO access of @size at @off in @bar reach the model? */
static bool access_ok(const struct pf_dev *dev, unsigned bar, uint64_t off,
		      uint32_t size, bool io)
{
	const struct pf_bar_decl *b = &dev->id.bars[bar];

	if (b->kind == PF_BAR_NONE || (b->kind == PF_BAR_IO) != io)
		return false;
	if (off >= b->size || size > b->size - off)
		return false;
	if (io)
		return size <= 4 && natural(off, size);
	if (size <= 8)
		return natural(off, size);
	return dev->session.features & PCIEFW_FEATURE_MEM_BURST;
}

/*
 * The host forwards only the device-specific region and, with CONFIG_EXT,
 * extended config space (spec 4.1); anything else completes with UR.
 */
static bool config_ok(const struct pf_dev *dev, uint32_t off, uint32_t size)
{
	bool forwarded = (off >= PCIEFW_CONFIG_DEV_START && off < PCIEFW_CONFIG_DEV_END) ||
			 (off >= PCIEFW_CONFIG_EXT_START &&
			  (dev->session.features & PCIEFW_FEATURE_CONFIG_EXT));

	return forwarded && size <= 4 && natural(off, size);
}

/* ---- The host's messages, by kind (conn.h) ---- */

static int on_mem_read(void *opaque, const PfMessage *m, char *err,
		       size_t errlen)
{
	struct pf_dev *dev = opaque;
	const Pciefw__MemRead *r = m->mem_read;
	int st = PF_CPL_UR;

	if (access_ok(dev, r->bar, r->offset, r->size, false))
		st = pf_access_read(dev, r->bar, r->offset, dev->scratch, r->size);
	if (st == PF_CPL_DEFER) {
		/* The host's later requests wait for it (spec 5.3). */
		pf_dev_note_completion(dev, NULL);
		dev->deferred.active = true;
		dev->deferred.tag = r->tag;
		dev->deferred.size = r->size;
		pf_conn_hold(dev->conn);
		return PF_OK;
	}
	send_completion(dev, r->tag, st, dev->scratch, r->size);
	return PF_OK;
}

void pf_complete_read(struct pf_dev *dev, int status, const void *data,
		      uint32_t size)
{
	pf_complete_read_note(dev, status, data, size, NULL);
}

void pf_complete_read_note(struct pf_dev *dev, int status, const void *data,
			   uint32_t size, const char *note)
{
	struct pf_deferred *d = &dev->deferred;

	if (!d->active)
		return;         /* reset or disconnect dropped it */
	d->active = false;
	if (status == PF_CPL_OK && size != d->size) {
		pf_dev_log(dev, PF_LOG_ERROR, "deferred read of %u bytes completed "
			   "with %u", d->size, size);
		status = PF_CPL_CA;
	}
	/* Recorded right after the completion, before held requests go on. */
	pf_dev_note_completion(dev, note);
	send_completion(dev, d->tag, status, data, size);
	if (dev->conn)
		pf_conn_release(dev->conn);
}

static int on_mem_write(void *opaque, const PfMessage *m, char *err,
			size_t errlen)
{
	struct pf_dev *dev = opaque;
	const Pciefw__MemWrite *w = m->mem_write;
	uint32_t size = (uint32_t)w->data.len;

	if (!access_ok(dev, w->bar, w->offset, size, false)) {
		/* Posted: nobody to tell but the log (spec 3.3). */
		pf_dev_log(dev, PF_LOG_WARN,
			   "dropping unsupported %u-byte write to BAR%u+0x%llx",
			   size, w->bar, (unsigned long long)w->offset);
		return PF_OK;
	}
	pf_access_write(dev, w->bar, w->offset, w->data.data, size);
	return PF_OK;
}

static int on_io_read(void *opaque, const PfMessage *m, char *err,
		      size_t errlen)
{
	struct pf_dev *dev = opaque;
	const Pciefw__IoRead *r = m->io_read;
	int st = PF_CPL_UR;

	if (access_ok(dev, r->bar, r->offset, r->size, true))
		st = pf_access_read(dev, r->bar, r->offset, dev->scratch, r->size);
	if (st == PF_CPL_DEFER) {
		/* Only memory reads may wait (device.h). */
		pf_dev_log(dev, PF_LOG_WARN, "the model deferred an IO read; "
			   "completing it with CA");
		st = PF_CPL_CA;
	}
	send_completion(dev, r->tag, st, dev->scratch, r->size);
	return PF_OK;
}

static int on_io_write(void *opaque, const PfMessage *m, char *err,
		       size_t errlen)
{
	struct pf_dev *dev = opaque;
	const Pciefw__IoWrite *w = m->io_write;
	int st = PF_CPL_UR;
	uint32_t size = (uint32_t)w->data.len;

	if (access_ok(dev, w->bar, w->offset, size, true) &&
	    pf_access_write(dev, w->bar, w->offset, w->data.data, size))
		st = PF_CPL_OK;
	send_completion(dev, w->tag, st, NULL, 0);
	return PF_OK;
}

/* A model without config callbacks has no registers there: reads 0 (4.1). */
static int on_config_read(void *opaque, const PfMessage *m, char *err,
			  size_t errlen)
{
	struct pf_dev *dev = opaque;
	const Pciefw__ConfigRead *r = m->config_read;
	int st = PF_CPL_UR;

	if (config_ok(dev, r->offset, r->size)) {
		memset(dev->scratch, 0, r->size);
		st = PF_CPL_OK;
		if (dev->model->ops->config_read)
			st = dev->model->ops->config_read(dev->state, r->offset,
							  dev->scratch, r->size);
	}
	send_completion(dev, r->tag, st, dev->scratch, r->size);
	return PF_OK;
}

static int on_config_write(void *opaque, const PfMessage *m, char *err,
			   size_t errlen)
{
	struct pf_dev *dev = opaque;
	const Pciefw__ConfigWrite *w = m->config_write;
	int st = PF_CPL_UR;
	uint32_t size = (uint32_t)w->data.len;

	if (config_ok(dev, w->offset, size)) {
		st = PF_CPL_OK;
		if (dev->model->ops->config_write)
			st = dev->model->ops->config_write(dev->state, w->offset,
							   w->data.data, size);
	}
	send_completion(dev, w->tag, st, NULL, 0);
	return PF_OK;
}

static int on_completion(void *opaque, const PfMessage *m, char *err,
			 size_t errlen)
{
	return handle_completion(opaque, m->completion, err, errlen);
}

/* Spec 10.1: the guest memory messages only once negotiated. */
static int guest_memory_refused(const struct pf_dev *dev, const PfMessage *m,
				char *err, size_t errlen)
{
	if (dev->session.features & PCIEFW_FEATURE_GUEST_MEMORY)
		return PF_OK;
	snprintf(err, errlen, "%s without the guest memory feature negotiated",
		 pf_msg_kind_name(m->body_case));
	return PF_ERR_UNEXPECTED;
}

static int on_memory_map(void *opaque, const PfMessage *m, char *err,
			 size_t errlen)
{
	int r = guest_memory_refused(opaque, m, err, errlen);

	return r ? r : handle_memory_map(opaque, m->memory_map, err, errlen);
}

static int on_bus_master(void *opaque, const PfMessage *m, char *err,
			 size_t errlen)
{
	struct pf_dev *dev = opaque;
	int r = guest_memory_refused(dev, m, err, errlen);

	if (r)
		return r;
	maps_end_all(dev, "when bus mastering changed");
	dev->bus_master = m->bus_master->enabled;
	pf_debug("bus mastering %s", dev->bus_master ? "on" : "off");
	return PF_OK;
}

static int on_reset(void *opaque, const PfMessage *m, char *err, size_t errlen)
{
	struct pf_dev *dev = opaque;

	pf_dev_log(dev, PF_LOG_INFO, "%s reset",
		   m->reset->kind == PCIEFW__RESET_KIND__RESET_FUNCTION ?
		   "function-level" : "system");
	reset_device(dev, (enum pf_reset_kind)m->reset->kind);
	/* A reset clears Bus Master Enable (spec 10.3). */
	dev->bus_master = false;
	send_completion(dev, m->reset->tag, PF_CPL_OK, NULL, 0);
	return PF_OK;
}

static int send_description(struct pf_dev *dev)
{
	Pciefw__DeviceDescription d;
	Pciefw__Bar bars[6], *ptrs[6];
	size_t mark;
	int r;

	pf_dev_describe(dev, &d, bars, ptrs);
	r = pf_put_description(pf_conn_out_begin(dev->conn, &mark), &d);
	pf_conn_out_end(dev->conn, mark);
	return r;
}

/* The handshake is done: this host is served, and told what we are (2.3). */
static int on_attach(void *opaque, struct pf_conn *c, const struct pf_session *s,
		     char *err, size_t errlen)
{
	struct pf_dev *dev = opaque;
	int r;

	dev_attach(dev, c, s);
	r = send_description(dev);
	if (r < 0)
		snprintf(err, errlen, "cannot send the device description: %s",
			 pf_strerror(r));
	return r;
}

static void on_detach(void *opaque)
{
	dev_detach(opaque);
}

const struct pf_conn_handlers pf_dev_host_handlers = {
	.on = {
		[PCIEFW__MESSAGE__BODY_MEM_READ] = on_mem_read,
		[PCIEFW__MESSAGE__BODY_MEM_WRITE] = on_mem_write,
		[PCIEFW__MESSAGE__BODY_IO_READ] = on_io_read,
		[PCIEFW__MESSAGE__BODY_IO_WRITE] = on_io_write,
		[PCIEFW__MESSAGE__BODY_CONFIG_READ] = on_config_read,
		[PCIEFW__MESSAGE__BODY_CONFIG_WRITE] = on_config_write,
		[PCIEFW__MESSAGE__BODY_COMPLETION] = on_completion,
		[PCIEFW__MESSAGE__BODY_MEMORY_MAP] = on_memory_map,
		[PCIEFW__MESSAGE__BODY_BUS_MASTER] = on_bus_master,
		[PCIEFW__MESSAGE__BODY_RESET] = on_reset,
	},
	.attach = on_attach,
	.detach = on_detach,
};
