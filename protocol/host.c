/* The host side of the protocol; see host.h and spec 5. */
#include "host.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "buf.h"
#include "msg.h"
#include "rx.h"
#include "transport.h"

struct pf_host {
	int fd;
	struct pf_hello_params hello;
	struct pf_session session;
	Pciefw__DeviceDescription *desc;
	struct pf_rx rx;                /* what the endpoint sends (rx.h) */
	int handled;                    /* messages in the last read */
	struct pf_buf out;
	struct pf_guest_mem mem;
	int memfd;                  /* shared guest RAM (spec 10), or -1 */
	struct pf_host_irqs irqs;
	struct pf_host_stats stats;
	int timeout_ms;
	uint32_t next_tag;
	/* The one non-posted request we wait for. */
	uint32_t wait_tag;
	bool waiting, got;
	int got_status;
	void *got_buf;
	uint32_t got_size;
	bool broken;
	pf_host_irq_hook irq_hook;
	void *irq_hook_arg;
	char error[512];
	uint8_t rbuf[64 * 1024];
};

static int host_fail(struct pf_host *h, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void irq_hook(struct pf_host *h, int kind, uint32_t value)
{
	if (h->irq_hook)
		h->irq_hook(h, kind, value, h->irq_hook_arg);
}

void pf_host_set_irq_hook(struct pf_host *h, pf_host_irq_hook fn, void *arg)
{
	h->irq_hook = fn;
	h->irq_hook_arg = arg;
}

static int host_fail(struct pf_host *h, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(h->error, sizeof(h->error), fmt, ap);
	va_end(ap);
	if (code != PF_ERR_TIMEOUT)
		h->broken = true;
	return code;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- Output: never block without reading (spec 5.3) ---- */

static int read_some(struct pf_host *h);

int pf_host_flush(struct pf_host *h)
{
	for (;;) {
		struct pollfd p = { .fd = h->fd, .events = POLLIN | POLLOUT };
		int r;

		if (h->broken)
			return PF_ERR_CLOSED;
		r = pf_buf_send(h->fd, &h->out);
		if (r == PF_OK)
			return PF_OK;
		if (r < 0)
			return host_fail(h, PF_ERR_IO, "write: %s", strerror(errno));
		/* Full: wait, and serve the endpoint meanwhile (spec 5.3). */
		if (poll(&p, 1, h->timeout_ms) == 0)
			return host_fail(h, PF_ERR_TIMEOUT, "endpoint stopped reading");
		if (p.revents & POLLIN) {
			r = read_some(h);
			if (r < 0)
				return r;
		}
	}
}

int pf_host_send_raw(struct pf_host *h, const void *p, size_t len)
{
	if (pf_buf_append(&h->out, p, len))
		return PF_ERR_NOMEM;
	return pf_host_flush(h);
}

/* ---- Serving the endpoint's requests ---- */

static bool mem_range(const struct pf_guest_mem *m, uint64_t addr, uint64_t len)
{
	return m->data && addr >= m->base && len <= m->size &&
	       addr - m->base <= m->size - len;
}

/* Served at once, from the simulated guest memory (spec 3.2, 5.3). */
static int on_dma_read(void *opaque, const PfMessage *msg, char *err,
		       size_t errlen)
{
	struct pf_host *h = opaque;
	const Pciefw__DmaRead *r = msg->dma_read;
	const struct pf_guest_mem *m = &h->mem;

	h->handled++;
	if (!m->bus_master || !mem_range(m, r->address, r->size)) {
		h->stats.dma_refused++;
		pf_put_completion(&h->out, r->tag,
				  PCIEFW__STATUS__STATUS_COMPLETER_ABORT, NULL, 0);
		return PF_OK;
	}
	h->stats.dma_reads++;
	h->stats.dma_read_bytes += r->size;
	pf_put_completion(&h->out, r->tag, PCIEFW__STATUS__STATUS_SUCCESSFUL,
			  m->data + (r->address - m->base), r->size);
	return PF_OK;
}

static int on_dma_write(void *opaque, const PfMessage *msg, char *err,
			size_t errlen)
{
	struct pf_host *h = opaque;
	const Pciefw__DmaWrite *w = msg->dma_write;
	struct pf_guest_mem *m = &h->mem;

	h->handled++;
	if (!m->bus_master || !mem_range(m, w->address, w->data.len)) {
		h->stats.dma_refused++;
		return PF_OK;   /* posted: dropped, as a real bus would */
	}
	h->stats.dma_writes++;
	h->stats.dma_write_bytes += w->data.len;
	memcpy(m->data + (w->address - m->base), w->data.data, w->data.len);
	return PF_OK;
}

static void count_vector(uint64_t *counters, uint32_t v)
{
	if (v < PF_HOST_MAX_VECTORS)
		counters[v]++;
}

/* ---- The endpoint's messages, by kind (rx.h) ---- */

static int on_completion(void *opaque, const PfMessage *m, char *err,
			 size_t errlen)
{
	struct pf_host *h = opaque;
	const Pciefw__Completion *c = m->completion;

	h->handled++;
	if (!h->waiting || c->tag != h->wait_tag) {
		snprintf(err, errlen, "completion with unexpected tag %u", c->tag);
		return PF_ERR_INVALID;
	}
	if (c->status == PCIEFW__STATUS__STATUS_SUCCESSFUL && h->got_buf &&
	    c->data.len != h->got_size) {
		snprintf(err, errlen, "completion carries %zu bytes, %u were read",
			 c->data.len, h->got_size);
		return PF_ERR_INVALID;
	}
	if (c->status == PCIEFW__STATUS__STATUS_SUCCESSFUL && h->got_buf)
		memcpy(h->got_buf, c->data.data, c->data.len);
	h->got_status = c->status;
	h->got = true;
	h->waiting = false;
	return PF_OK;
}

static int on_intx(void *opaque, const PfMessage *m, char *err, size_t errlen)
{
	struct pf_host *h = opaque;

	h->handled++;
	if (m->intx->asserted && !h->irqs.intx_level) {
		h->irqs.intx_asserts++;
		h->irqs.total++;
	}
	h->irqs.intx_level = m->intx->asserted;
	irq_hook(h, m->body_case, m->intx->asserted);
	return PF_OK;
}

/* An MSI or MSI-X message: counted, then the hook (stream order, 5.1). */
static int vector_irq(struct pf_host *h, uint64_t *counters, int kind,
		      uint32_t vector)
{
	h->handled++;
	count_vector(counters, vector);
	h->irqs.total++;
	irq_hook(h, kind, vector);
	return PF_OK;
}

static int on_msi(void *opaque, const PfMessage *m, char *err, size_t errlen)
{
	struct pf_host *h = opaque;

	return vector_irq(h, h->irqs.msi, m->body_case, m->msi->vector);
}

static int on_msix(void *opaque, const PfMessage *m, char *err, size_t errlen)
{
	struct pf_host *h = opaque;

	return vector_irq(h, h->irqs.msix, m->body_case, m->msix->vector);
}

/* The endpoint said Goodbye or Error (7.2); during the handshake, a refusal. */
static void on_ended(void *opaque, const PfMessage *m)
{
	struct pf_host *h = opaque;

	if (m->body_case == PCIEFW__MESSAGE__BODY_GOODBYE)
		host_fail(h, PF_ERR_PEER, "endpoint said goodbye: %s",
			  m->goodbye->text);
	else
		host_fail(h, PF_ERR_PEER, "endpoint %s: %s",
			  h->desc ? "error" : "refused", m->error->text);
}

/* After the handshake: what a host serves (spec 3.2) and its completions. */
static const struct pf_rx_handlers session_handlers = {
	.on = {
		[PCIEFW__MESSAGE__BODY_COMPLETION] = on_completion,
		[PCIEFW__MESSAGE__BODY_DMA_READ] = on_dma_read,
		[PCIEFW__MESSAGE__BODY_DMA_WRITE] = on_dma_write,
		[PCIEFW__MESSAGE__BODY_INTX] = on_intx,
		[PCIEFW__MESSAGE__BODY_MSI] = on_msi,
		[PCIEFW__MESSAGE__BODY_MSIX] = on_msix,
	},
	.ended = on_ended,
};

/* Keep our own copy: the codec's arena is reused by the next message. */
static int on_description(void *opaque, const PfMessage *m, char *err,
			  size_t errlen)
{
	struct pf_host *h = opaque;
	const ProtobufCMessage *d = &m->device_description->base;
	size_t len = protobuf_c_message_get_packed_size(d);
	uint8_t *tmp = malloc(len ? len : 1);

	if (tmp) {
		protobuf_c_message_pack(d, tmp);
		h->desc = pciefw__device_description__unpack(NULL, len, tmp);
		free(tmp);
	}
	if (!h->desc) {
		snprintf(err, errlen, "out of memory");
		return PF_ERR_NOMEM;
	}
	pf_rx_set_handlers(&h->rx, &session_handlers);
	return PF_OK;
}

/* Spec 2.3: after the Hellos, the endpoint's DeviceDescription only. */
static const struct pf_rx_handlers handshake_handlers = {
	.on = {
		[PCIEFW__MESSAGE__BODY_DEVICE_DESCRIPTION] = on_description,
	},
	.ended = on_ended,
};

/* Read what is available and handle every whole message in it. */
static int read_some(struct pf_host *h)
{
	ssize_t n = recv(h->fd, h->rbuf, sizeof(h->rbuf), MSG_DONTWAIT);
	size_t used;
	int r;

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return 0;
	if (n < 0)
		return host_fail(h, PF_ERR_IO, "read: %s", strerror(errno));
	if (n == 0)
		return host_fail(h, PF_ERR_CLOSED, "endpoint closed the connection%s",
				 !h->desc ? " during the handshake" :
				 pf_rx_finish(&h->rx) == PF_EOF ? "" :
				 " in the middle of a frame");
	h->handled = 0;
	r = pf_rx_push(&h->rx, h->rbuf, (size_t)n, &used);
	if (r == PF_EOF)
		return PF_ERR_PEER;        /* on_ended said what */
	if (r < 0)
		return host_fail(h, r, "%s", h->rx.why);
	/* Answers to DMA reads go out before we wait again. */
	if (!pf_buf_empty(&h->out)) {
		r = pf_host_flush(h);
		if (r < 0)
			return r;
	}
	return h->handled;
}

int pf_host_poll(struct pf_host *h, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	int total = 0;

	if (h->broken)
		return PF_ERR_CLOSED;
	for (;;) {
		struct pollfd p = { .fd = h->fd, .events = POLLIN };
		int left = (int)(deadline - now_ms());
		int r = poll(&p, 1, left > 0 ? left : 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return total;
		r = read_some(h);
		if (r < 0)
			return r;
		total += r;
		if (h->got || (timeout_ms == 0 && r == 0))
			return total;
		if (total && timeout_ms == 0)
			return total;
	}
}

/*
 * Wait up to @timeout_ms for the endpoint to send, then handle what came:
 * returns as soon as something was read, so that a caller checks its
 * condition after every batch (pf_host_poll serves its whole timeout).
 */
static int serve_next(struct pf_host *h, int timeout_ms)
{
	struct pollfd p = { .fd = h->fd, .events = POLLIN };
	int r = poll(&p, 1, timeout_ms);

	if (r < 0 && errno != EINTR)
		return host_fail(h, PF_ERR_IO, "poll: %s", strerror(errno));
	return r > 0 ? read_some(h) : 0;
}

int pf_host_wait(struct pf_host *h, bool (*cond)(struct pf_host *, void *),
		 void *arg, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;

	if (h->broken)
		return PF_ERR_CLOSED;
	while (!cond(h, arg)) {
		int left = (int)(deadline - now_ms());
		int r;

		if (left <= 0)
			return PF_ERR_TIMEOUT;
		r = serve_next(h, left);
		if (r < 0)
			return r;
	}
	return PF_OK;
}

/* ---- Non-posted requests ---- */

static int transact(struct pf_host *h, uint32_t tag, void *buf, uint32_t size)
{
	int64_t deadline = now_ms() + h->timeout_ms;
	int r = pf_host_flush(h);

	if (r < 0)
		return r;
	h->wait_tag = tag;
	h->waiting = true;
	h->got = false;
	h->got_buf = buf;
	h->got_size = size;
	while (!h->got) {
		int left = (int)(deadline - now_ms());

		if (left <= 0) {
			h->waiting = false;
			return host_fail(h, PF_ERR_TIMEOUT,
					 "no completion for tag %u within %d ms",
					 tag, h->timeout_ms);
		}
		r = pf_host_poll(h, left);
		if (r < 0) {
			h->waiting = false;
			return r;
		}
	}
	return h->got_status;
}

#define REQUEST(h, put, buf, size)                              \
	({                                                      \
		uint32_t tag_ = (h)->next_tag++;                \
		int r_ = (put);                                 \
		r_ < 0 ? r_ : transact((h), tag_, (buf), (size)); \
	})

int pf_host_mem_read(struct pf_host *h, unsigned bar, uint64_t off, void *buf,
		     uint32_t size)
{
	return REQUEST(h, pf_put_mem_read(&h->out, tag_, bar, off, size),
		       buf, size);
}

int pf_host_mem_write(struct pf_host *h, unsigned bar, uint64_t off,
		      const void *buf, uint32_t size)
{
	int r = pf_put_mem_write(&h->out, bar, off, buf, size);

	return r < 0 ? r : pf_host_flush(h);
}

int pf_host_io_read(struct pf_host *h, unsigned bar, uint64_t off, void *buf,
		    uint32_t size)
{
	return REQUEST(h, pf_put_io_read(&h->out, tag_, bar, off, size),
		       buf, size);
}

int pf_host_io_write(struct pf_host *h, unsigned bar, uint64_t off,
		     const void *buf, uint32_t size)
{
	return REQUEST(h, pf_put_io_write(&h->out, tag_, bar, off, buf, size),
		       NULL, 0);
}

int pf_host_config_read(struct pf_host *h, uint32_t off, void *buf, uint32_t size)
{
	return REQUEST(h, pf_put_config_read(&h->out, tag_, off, size),
		       buf, size);
}

int pf_host_config_write(struct pf_host *h, uint32_t off, const void *buf,
			 uint32_t size)
{
	return REQUEST(h, pf_put_config_write(&h->out, tag_, off, buf, size),
		       NULL, 0);
}

int pf_host_reset(struct pf_host *h, Pciefw__ResetKind kind)
{
	return REQUEST(h, pf_put_reset(&h->out, tag_, kind), NULL, 0);
}

int pf_host_read32(struct pf_host *h, unsigned bar, uint64_t off, uint32_t *v)
{
	uint8_t b[4];
	int r = pf_host_mem_read(h, bar, off, b, 4);

	*v = r == 0 ? (uint32_t)pf_le_load(b, 4) : 0xffffffffu;
	return r;
}

int pf_host_write32(struct pf_host *h, unsigned bar, uint64_t off, uint32_t v)
{
	uint8_t b[4];

	pf_le_store(b, 4, v);
	return pf_host_mem_write(h, bar, off, b, 4);
}

/* ---- Connection ---- */

/*
 * Hello both ways, then the endpoint's DeviceDescription (spec 2): its
 * Hello is checked and agreed by the receiving half (rx.h).
 */
static int handshake(struct pf_host *h)
{
	int64_t deadline = now_ms() + h->timeout_ms;
	int r = pf_put_hello(&h->out, &h->hello);

	if (r)
		return host_fail(h, r, "out of memory");
	/*
	 * An endpoint that refuses us (busy) may hang up before our hello is
	 * written; its Error is still waiting to be read, and says more.
	 */
	pf_host_flush(h);
	h->broken = false;
	while (!h->desc) {
		struct pollfd p = { .fd = h->fd, .events = POLLIN };
		int left = (int)(deadline - now_ms());

		if (left <= 0 || poll(&p, 1, left) <= 0)
			return host_fail(h, PF_ERR_TIMEOUT, "endpoint did not answer");
		r = read_some(h);
		if (r < 0)
			return r;
	}
	h->session = h->rx.session;
	return PF_OK;
}

/* Guest RAM in a memfd sealed against shrinking (spec 10.2). */
static int share_memory_create(struct pf_host *h, const struct pf_host_opts *o,
			       char *err, size_t errlen)
{
	void *p;

	if (!o->mem_size || ((o->mem_base | o->mem_size) & (PCIEFW_MEM_ALIGN - 1))) {
		snprintf(err, errlen, "shared guest memory needs a 4 KiB aligned size");
		return -1;
	}
	h->memfd = memfd_create("pciefw-guest", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (h->memfd < 0 || ftruncate(h->memfd, (off_t)o->mem_size) ||
	    fcntl(h->memfd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW)) {
		snprintf(err, errlen, "memfd: %s", strerror(errno));
		return -1;
	}
	p = mmap(NULL, o->mem_size, PROT_READ | PROT_WRITE, MAP_SHARED, h->memfd, 0);
	if (p == MAP_FAILED) {
		snprintf(err, errlen, "mmap: %s", strerror(errno));
		return -1;
	}
	h->mem.data = p;
	return 0;
}

/* The map, its fd on its first byte, then bus mastering on (10.2, 10.3). */
static int share_memory_send(struct pf_host *h)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} control;
	struct pf_mem_region r = { h->mem.base, h->mem.size, 0 };
	struct iovec iov;
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct cmsghdr *c;
	ssize_t n;

	if (!(h->session.features & PCIEFW_FEATURE_GUEST_MEMORY))
		return 0;       /* the endpoint does not share: messages */
	if (pf_host_flush(h) || pf_put_memory_map(&h->out, &r, 1) ||
	    pf_put_bus_master(&h->out, true))
		return host_fail(h, PF_ERR_IO, "cannot send the memory map");
	iov.iov_base = (void *)pf_buf_peek(&h->out);
	iov.iov_len = pf_buf_used(&h->out);
	memset(&control, 0, sizeof(control));
	msg.msg_control = control.buf;
	msg.msg_controllen = sizeof(control.buf);
	c = CMSG_FIRSTHDR(&msg);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &h->memfd, sizeof(int));
	do {
		n = sendmsg(h->fd, &msg, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n <= 0)
		return host_fail(h, PF_ERR_IO, "sendmsg: %s", strerror(errno));
	pf_buf_consume(&h->out, (size_t)n);
	h->mem.bus_master = true;
	return pf_host_flush(h);
}

struct pf_host *pf_host_connect(const char *addr, const struct pf_host_opts *o,
				char *err, size_t errlen)
{
	static const struct pf_host_opts defaults;
	struct pf_host *h;
	struct pf_addr a;

	if (!o)
		o = &defaults;
	if (pf_addr_parse(addr, &a, err, errlen))
		return NULL;
	h = calloc(1, sizeof(*h));
	if (!h) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	pf_hello_defaults(&h->hello, o->name ? o->name : "pciefw-host");
	if (o->max_payload)
		h->hello.max_payload = o->max_payload;
	if (o->version_major) {
		h->hello.version_major = o->version_major;
		h->hello.version_minor = o->version_minor;
		h->hello.features = o->features;
	}
	h->timeout_ms = o->timeout_ms ? o->timeout_ms : 5000;
	h->next_tag = 1;
	h->fd = -1;
	h->memfd = -1;
	pf_buf_init(&h->out);
	if (pf_rx_init(&h->rx, &handshake_handlers, h, PF_DIR_TO_HOST, &h->hello,
		       NULL) != PF_OK) {
		snprintf(err, errlen, "out of memory");
		pf_host_close(h, false);
		return NULL;
	}
	h->mem.base = o->mem_base;
	h->mem.size = o->mem_size;
	h->mem.bus_master = true;
	if (o->share_memory) {
		if (share_memory_create(h, o, err, errlen)) {
			h->fd = -1;
			pf_host_close(h, false);
			return NULL;
		}
		h->hello.features |= PCIEFW_FEATURE_GUEST_MEMORY;
	} else if (o->mem_size && !(h->mem.data = calloc(1, o->mem_size))) {
		snprintf(err, errlen, "cannot allocate %llu bytes of guest memory",
			 (unsigned long long)o->mem_size);
		h->fd = -1;
		pf_host_close(h, false);
		return NULL;
	}
	h->fd = pf_connect(&a, err, errlen);
	if (h->fd < 0) {
		pf_host_close(h, false);
		return NULL;
	}
	if (handshake(h) || (o->share_memory && share_memory_send(h))) {
		snprintf(err, errlen, "%s", h->error);
		pf_host_close(h, false);
		return NULL;
	}
	h->error[0] = '\0';
	return h;
}

void pf_host_close(struct pf_host *h, bool goodbye)
{
	if (!h)
		return;
	if (goodbye && h->fd >= 0 && !h->broken) {
		pf_put_goodbye(&h->out, PCIEFW__GOODBYE_REASON__GOODBYE_SHUTDOWN,
			       "host closing");
		pf_host_flush(h);
	}
	if (h->fd >= 0)
		close(h->fd);
	if (h->desc)
		pciefw__device_description__free_unpacked(h->desc, NULL);
	pf_rx_free(&h->rx);
	pf_buf_free(&h->out);
	if (h->memfd >= 0) {
		munmap(h->mem.data, h->mem.size);
		close(h->memfd);
	} else {
		free(h->mem.data);
	}
	free(h);
}

const Pciefw__DeviceDescription *pf_host_description(const struct pf_host *h)
{
	return h->desc;
}

const struct pf_session *pf_host_session(const struct pf_host *h)
{
	return &h->session;
}

struct pf_guest_mem *pf_host_mem(struct pf_host *h)
{
	return &h->mem;
}

const struct pf_host_irqs *pf_host_irqs(const struct pf_host *h)
{
	return &h->irqs;
}

const struct pf_host_stats *pf_host_stats(const struct pf_host *h)
{
	return &h->stats;
}

const char *pf_host_error(const struct pf_host *h)
{
	return h->error;
}

int pf_host_fd(const struct pf_host *h)
{
	return h->fd;
}
