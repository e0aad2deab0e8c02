/* A device model driven in the test's own process: inproc.h. */
#include "inproc.h"

#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <glib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "conn.h"
#include "msg.h"
#include "stream.h"

/* ---- The stream: two byte queues in memory ---- */

struct mem_stream {
	struct pf_stream base;
	struct pf_buf to_endpoint;      /* the host's bytes, not yet read */
	struct pf_buf to_host;          /* the endpoint's, not yet taken */
	ev_idle news;                   /* input is there: tell the reader */
};

static ssize_t mem_recv(struct pf_stream *st, void *buf, size_t len)
{
	struct mem_stream *ms = (struct mem_stream *)st;
	size_t n = MIN(len, pf_buf_used(&ms->to_endpoint));

	if (!n) {
		errno = EAGAIN;
		return -1;
	}
	memcpy(buf, pf_buf_peek(&ms->to_endpoint), n);
	pf_buf_consume(&ms->to_endpoint, n);
	return (ssize_t)n;
}

/* Room is endless: a send never waits. */
static ssize_t mem_send(struct pf_stream *st, const void *buf, size_t len)
{
	struct mem_stream *ms = (struct mem_stream *)st;

	return pf_buf_append(&ms->to_host, buf, len) ? -1 : (ssize_t)len;
}

/* Readiness is input waiting while the reader wants it. */
static void mem_watch(struct pf_stream *st)
{
	struct mem_stream *ms = (struct mem_stream *)st;

	if (!st->loop)
		return;
	if (st->want_in && !pf_buf_empty(&ms->to_endpoint))
		ev_idle_start(st->loop, &ms->news);
	else
		ev_idle_stop(st->loop, &ms->news);
}

static void news_cb(struct ev_loop *loop, ev_idle *w, int revents)
{
	struct mem_stream *ms = w->data;

	ms->base.ready(ms->base.opaque, PF_STREAM_IN);
	mem_watch(&ms->base);
}

static void mem_free(struct pf_stream *st)
{
	struct mem_stream *ms = (struct mem_stream *)st;

	pf_buf_free(&ms->to_endpoint);
	pf_buf_free(&ms->to_host);
	g_free(ms);
}

static const struct pf_stream_ops mem_ops = {
	.recv = mem_recv,
	.send = mem_send,
	.watch = mem_watch,
	.free = mem_free,
};

static struct mem_stream *mem_stream_new(void)
{
	struct mem_stream *ms = g_new0(struct mem_stream, 1);

	pf_stream_init(&ms->base, &mem_ops, -1);
	pf_buf_init(&ms->to_endpoint);
	pf_buf_init(&ms->to_host);
	ev_idle_init(&ms->news, news_cb);
	ms->news.data = ms;
	return ms;
}

/* ---- The host: what the endpoint sends, by kind ---- */

static struct pf_buf *host_out(struct inproc *ip)
{
	return &ip->st->to_endpoint;
}

/* The host's message is queued: the stream has news. */
static void host_sent(struct inproc *ip, int r)
{
	g_assert_cmpint(r, ==, PF_OK);
	mem_watch(&ip->st->base);
}

static bool in_ram(const struct inproc *ip, uint64_t addr, uint64_t len)
{
	return addr >= ip->ram_base && len <= ip->ram_size &&
	       addr - ip->ram_base <= ip->ram_size - len;
}

static void answer_dma_read(struct inproc *ip, uint32_t tag, uint64_t addr,
			    uint32_t size)
{
	int r;

	if (!in_ram(ip, addr, size)) {
		ip->dma_refused++;
		r = pf_put_completion(host_out(ip), tag,
				      PCIEFW__STATUS__STATUS_COMPLETER_ABORT, NULL, 0);
	} else {
		ip->dma_reads++;
		r = pf_put_completion(host_out(ip), tag,
				      PCIEFW__STATUS__STATUS_SUCCESSFUL,
				      inproc_ram(ip, addr), size);
	}
	host_sent(ip, r);
}

static int on_dma_read(void *opaque, const PfMessage *m, char *err,
		       size_t errlen)
{
	struct inproc *ip = opaque;
	const Pciefw__DmaRead *d = m->dma_read;

	if (!ip->hold_dma) {
		answer_dma_read(ip, d->tag, d->address, d->size);
		return PF_OK;
	}
	g_assert_cmpuint(ip->n_dma, <, INPROC_MAX_DMA);
	ip->dma[ip->n_dma].tag = d->tag;
	ip->dma[ip->n_dma].addr = d->address;
	ip->dma[ip->n_dma].size = d->size;
	ip->n_dma++;
	return PF_OK;
}

static int on_dma_write(void *opaque, const PfMessage *m, char *err,
			size_t errlen)
{
	struct inproc *ip = opaque;
	const Pciefw__DmaWrite *d = m->dma_write;

	if (!in_ram(ip, d->address, d->data.len)) {
		ip->dma_refused++;    /* posted: dropped, as a bus would */
		return PF_OK;
	}
	ip->dma_writes++;
	memcpy(inproc_ram(ip, d->address), d->data.data, d->data.len);
	return PF_OK;
}

static int on_completion(void *opaque, const PfMessage *m, char *err,
			 size_t errlen)
{
	struct inproc *ip = opaque;
	const Pciefw__Completion *c = m->completion;
	struct inproc_cpl *k = &ip->cpl[ip->n_cpl++ % INPROC_CPLS];

	g_assert_cmpuint(c->data.len, <=, INPROC_MAX_DATA);
	k->tag = c->tag;
	k->status = c->status;
	k->len = (uint32_t)c->data.len;
	if (c->data.len)
		memcpy(k->data, c->data.data, c->data.len);
	return PF_OK;
}

static int on_msix(void *opaque, const PfMessage *m, char *err, size_t errlen)
{
	struct inproc *ip = opaque;

	if (m->msix->vector < INPROC_VECTORS)
		ip->msix[m->msix->vector]++;
	return PF_OK;
}

static int on_msi(void *opaque, const PfMessage *m, char *err, size_t errlen)
{
	struct inproc *ip = opaque;

	if (m->msi->vector < INPROC_VECTORS)
		ip->msi[m->msi->vector]++;
	return PF_OK;
}

static int on_intx(void *opaque, const PfMessage *m, char *err, size_t errlen)
{
	struct inproc *ip = opaque;

	ip->intx_asserts += m->intx->asserted && !ip->intx_level;
	ip->intx_level = m->intx->asserted;
	return PF_OK;
}

static int on_description(void *opaque, const PfMessage *m, char *err,
			  size_t errlen)
{
	struct inproc *ip = opaque;
	const Pciefw__DeviceDescription *d = m->device_description;

	ip->vendor_id = d->vendor_id;
	ip->device_id = d->device_id;
	ip->class_code = d->class_code;
	ip->msi_vectors = d->msi_vectors;
	ip->msix_vectors = d->msix_vectors;
	ip->intx_pin = d->intx_pin;
	ip->n_bars = (uint32_t)d->n_bars;
	ip->described = true;
	return PF_OK;
}

static void on_ended(void *opaque, const PfMessage *m)
{
	struct inproc *ip = opaque;

	ip->ended = true;
	g_strlcpy(ip->why, m->body_case == PCIEFW__MESSAGE__BODY_ERROR ?
		  m->error->text : m->goodbye->text, sizeof(ip->why));
}

static const struct pf_rx_handlers host_handlers = {
	.on = {
		[PCIEFW__MESSAGE__BODY_DEVICE_DESCRIPTION] = on_description,
		[PCIEFW__MESSAGE__BODY_COMPLETION] = on_completion,
		[PCIEFW__MESSAGE__BODY_DMA_READ] = on_dma_read,
		[PCIEFW__MESSAGE__BODY_DMA_WRITE] = on_dma_write,
		[PCIEFW__MESSAGE__BODY_MSI] = on_msi,
		[PCIEFW__MESSAGE__BODY_MSIX] = on_msix,
		[PCIEFW__MESSAGE__BODY_INTX] = on_intx,
	},
	.ended = on_ended,
};

/* What the endpoint sent, to the host; how many bytes there were. */
static size_t pump(struct inproc *ip)
{
	struct pf_buf *b = &ip->st->to_host;
	size_t n = pf_buf_used(b), used;
	int r;

	if (!n)
		return 0;
	r = pf_rx_push(&ip->rx, pf_buf_peek(b), n, &used);
	if (r < 0)
		g_error("the endpoint broke the protocol: %s", ip->rx.why);
	pf_buf_clear(b);       /* after a Goodbye, nothing more is read */
	return n;
}

/* ---- Running ---- */

static void tick_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
	/* Only bounds how long the loop sleeps. */
}

bool inproc_run(struct inproc *ip, bool (*cond)(struct inproc *, void *),
		void *arg, int timeout_ms)
{
	gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;
	ev_timer tick;
	bool ok;

	ev_timer_init(&tick, tick_cb, 0.001, 0.001);
	ev_timer_start(ip->loop, &tick);
	for (;;) {
		pump(ip);
		ok = cond(ip, arg);
		if (ok || g_get_monotonic_time() > deadline)
			break;
		ev_run(ip->loop, EVRUN_ONCE);
	}
	ev_timer_stop(ip->loop, &tick);
	return ok;
}

/* Quiet: both queues empty at a few consecutive looks. */
static bool settled(struct inproc *ip, void *arg)
{
	unsigned *quiet = arg;

	if (!pf_buf_empty(&ip->st->to_host) || !pf_buf_empty(&ip->st->to_endpoint))
		*quiet = 0;
	return ++*quiet > 3;
}

void inproc_settle(struct inproc *ip)
{
	unsigned quiet = 0;

	inproc_run(ip, settled, &quiet, 5000);
}

static bool described(struct inproc *ip, void *arg)
{
	return ip->described || ip->ended;
}

static void closed_cb(void *owner, struct pf_conn *c)
{
	((struct inproc *)owner)->conn = NULL;
}

/* Guest RAM in a sealed memory file another process could map (10.2). */
static uint8_t *ram_file(uint64_t size, int *fd)
{
	uint8_t *p;

	*fd = memfd_create("inproc-guest", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	g_assert_cmpint(*fd, >=, 0);
	g_assert_cmpint(ftruncate(*fd, (off_t)size), ==, 0);
	g_assert_cmpint(fcntl(*fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW), ==, 0);
	p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, *fd, 0);
	g_assert_true(p != MAP_FAILED);
	return p;
}

static const char *next_trace;

void inproc_trace_next(const char *path)
{
	next_trace = path;
}

static void start(struct inproc *ip, const char *model, const char *const *opts,
		  uint64_t ram_base, uint64_t ram_size, bool shared)
{
	const struct pf_model *m = pf_model_find(model);
	char *o[PF_MAX_MODEL_OPTS];
	size_t n = 0;
	char err[300];
	struct pf_conn_config cc = {
		.fd = -1, .name = "in-process connection",
		.h = &pf_dev_host_handlers, .closed = closed_cb, .owner = ip,
	};

	memset(ip, 0, sizeof(*ip));
	ip->memfd = -1;
	g_assert_nonnull(m);
	for (; opts && opts[n]; n++)
		o[n] = (char *)opts[n];
	ip->loop = ev_loop_new(EVFLAG_AUTO);
	ip->dev = pf_dev_create(m, ip->loop, o, n, err, sizeof(err));
	if (!ip->dev)
		g_error("%s", err);
	ip->ram = shared ? ram_file(ram_size, &ip->memfd) : g_malloc0(ram_size);
	ip->ram_base = ram_base;
	ip->ram_size = ram_size;
	ip->next_tag = 1;
	pf_hello_defaults(&ip->hello, "in-process host");
	ip->st = mem_stream_new();
	cc.loop = ip->loop;
	cc.st = &ip->st->base;
	cc.opaque = ip->dev;
	if (next_trace) {
		ip->trace = pf_trace_create(next_trace, "inproc", err, sizeof(err));
		if (!ip->trace)
			g_error("%s", err);
		cc.trace = ip->trace;
		next_trace = NULL;
	}
	pf_hello_defaults(&cc.hello, "in-process endpoint");
	if (shared) {
		ip->hello.features |= PCIEFW_FEATURE_GUEST_MEMORY;
		cc.hello.features |= PCIEFW_FEATURE_GUEST_MEMORY;
	}
	g_assert_cmpint(pf_rx_init(&ip->rx, &host_handlers, ip, PF_DIR_TO_HOST,
				   &ip->hello, NULL), ==, PF_OK);
	ip->conn = pf_conn_new(&cc);
	g_assert_nonnull(ip->conn);
	host_sent(ip, pf_put_hello(host_out(ip), &ip->hello));
	if (!inproc_run(ip, described, NULL, 5000) || ip->ended)
		g_error("no handshake with %s: %s", model, ip->why);
}

void inproc_start(struct inproc *ip, const char *model, const char *const *opts,
		  uint64_t ram_base, uint64_t ram_size)
{
	start(ip, model, opts, ram_base, ram_size, false);
}

void inproc_start_shared(struct inproc *ip, const char *model,
			 const char *const *opts, uint64_t ram_base,
			 uint64_t ram_size)
{
	uint64_t off = 0;

	start(ip, model, opts, ram_base, ram_size, true);
	inproc_memory_map(ip, &off, &ram_size, 1);
	inproc_bus_master(ip, true);
	inproc_settle(ip);
}

void inproc_memory_map(struct inproc *ip, const uint64_t *offs,
		       const uint64_t *sizes, unsigned n)
{
	struct pf_mem_region r[PCIEFW_MAX_MEM_REGIONS];
	struct pf_fd_queue *q = &ip->st->base.fds;

	g_assert_cmpuint(n, <=, PCIEFW_MAX_MEM_REGIONS);
	for (unsigned i = 0; i < n; i++) {
		r[i] = (struct pf_mem_region){ ip->ram_base + offs[i], sizes[i], offs[i] };
		/* As SCM_RIGHTS would: the endpoint gets its own descriptors. */
		g_assert_cmpuint(q->n, <, PCIEFW_MAX_PENDING_FDS);
		q->fds[q->n++] = dup(ip->memfd);
	}
	host_sent(ip, pf_put_memory_map(host_out(ip), r, n));
}

uint8_t *inproc_remap(struct inproc *ip)
{
	uint8_t *old = ip->ram;
	uint64_t off = 0;

	g_assert_cmpint(ip->memfd, >=, 0);
	g_assert_cmpuint(ip->n_old, <, G_N_ELEMENTS(ip->old_ram));
	ip->old_ram[ip->n_old++] = old;
	close(ip->memfd);
	ip->ram = ram_file(ip->ram_size, &ip->memfd);
	memcpy(ip->ram, old, ip->ram_size);
	inproc_memory_map(ip, &off, &ip->ram_size, 1);
	return old;
}

void inproc_bus_master(struct inproc *ip, bool on)
{
	host_sent(ip, pf_put_bus_master(host_out(ip), on));
}

void inproc_stop(struct inproc *ip)
{
	if (ip->conn)
		pf_conn_goodbye(ip->conn, "test done");
	g_assert_null(ip->conn);
	pf_dev_destroy(ip->dev);
	pf_rx_free(&ip->rx);
	ev_loop_destroy(ip->loop);
	if (ip->trace)
		g_assert_cmpint(pf_trace_close(ip->trace), ==, 0);
	if (ip->memfd < 0) {
		g_free(ip->ram);
		return;
	}
	munmap(ip->ram, ip->ram_size);
	for (unsigned i = 0; i < ip->n_old; i++)
		munmap(ip->old_ram[i], ip->ram_size);
	close(ip->memfd);
}

/* ---- Requests ---- */

static const struct inproc_cpl *find_cpl(const struct inproc *ip, uint32_t tag)
{
	for (unsigned i = 0; i < INPROC_CPLS && i < ip->n_cpl; i++) {
		const struct inproc_cpl *k = &ip->cpl[(ip->n_cpl - 1 - i) % INPROC_CPLS];

		if (k->tag == tag)
			return k;
	}
	return NULL;
}

bool inproc_completed(struct inproc *ip, uint32_t tag)
{
	return find_cpl(ip, tag) != NULL;
}

static bool completed(struct inproc *ip, void *arg)
{
	return inproc_completed(ip, *(uint32_t *)arg) || ip->ended;
}

int inproc_wait_tag(struct inproc *ip, uint32_t tag, void *buf, uint32_t size)
{
	const struct inproc_cpl *k;

	if (!inproc_run(ip, completed, &tag, 5000) || !(k = find_cpl(ip, tag)))
		return -1;
	if (buf)
		memcpy(buf, k->data, MIN(size, k->len));
	return k->status;
}

uint32_t inproc_mem_read_async(struct inproc *ip, unsigned bar, uint64_t off,
			       uint32_t size)
{
	uint32_t tag = ip->next_tag++;

	host_sent(ip, pf_put_mem_read(host_out(ip), tag, bar, off, size));
	return tag;
}

int inproc_mem_read(struct inproc *ip, unsigned bar, uint64_t off, void *buf,
		    uint32_t size)
{
	return inproc_wait_tag(ip, inproc_mem_read_async(ip, bar, off, size),
			       buf, size);
}

void inproc_mem_write(struct inproc *ip, unsigned bar, uint64_t off,
		      const void *buf, uint32_t size)
{
	host_sent(ip, pf_put_mem_write(host_out(ip), bar, off, buf, size));
}

int inproc_io_read(struct inproc *ip, unsigned bar, uint64_t off, void *buf,
		   uint32_t size)
{
	uint32_t tag = ip->next_tag++;

	host_sent(ip, pf_put_io_read(host_out(ip), tag, bar, off, size));
	return inproc_wait_tag(ip, tag, buf, size);
}

int inproc_io_write(struct inproc *ip, unsigned bar, uint64_t off,
		    const void *buf, uint32_t size)
{
	uint32_t tag = ip->next_tag++;

	host_sent(ip, pf_put_io_write(host_out(ip), tag, bar, off, buf, size));
	return inproc_wait_tag(ip, tag, NULL, 0);
}

int inproc_config_read(struct inproc *ip, uint32_t off, void *buf, uint32_t size)
{
	uint32_t tag = ip->next_tag++;

	host_sent(ip, pf_put_config_read(host_out(ip), tag, off, size));
	return inproc_wait_tag(ip, tag, buf, size);
}

int inproc_config_write(struct inproc *ip, uint32_t off, const void *buf,
			uint32_t size)
{
	uint32_t tag = ip->next_tag++;

	host_sent(ip, pf_put_config_write(host_out(ip), tag, off, buf, size));
	return inproc_wait_tag(ip, tag, NULL, 0);
}

int inproc_reset(struct inproc *ip, Pciefw__ResetKind kind)
{
	uint32_t tag = ip->next_tag++;

	host_sent(ip, pf_put_reset(host_out(ip), tag, kind));
	return inproc_wait_tag(ip, tag, NULL, 0);
}

uint32_t inproc_rd32(struct inproc *ip, unsigned bar, uint64_t off)
{
	uint8_t b[4];

	g_assert_cmpint(inproc_mem_read(ip, bar, off, b, 4), ==,
			PCIEFW__STATUS__STATUS_SUCCESSFUL);
	return (uint32_t)pf_le_load(b, 4);
}

void inproc_wr32(struct inproc *ip, unsigned bar, uint64_t off, uint32_t v)
{
	uint8_t b[4];

	pf_le_store(b, 4, v);
	inproc_mem_write(ip, bar, off, b, 4);
}

uint8_t *inproc_ram(struct inproc *ip, uint64_t addr)
{
	return ip->ram + (addr - ip->ram_base);
}

void inproc_serve_dma(struct inproc *ip)
{
	for (unsigned i = 0; i < ip->n_dma; i++)
		answer_dma_read(ip, ip->dma[i].tag, ip->dma[i].addr, ip->dma[i].size);
	ip->n_dma = 0;
}
