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
#include "codec.h"
#include "frame.h"
#include "msg.h"
#include "transport.h"

struct pf_host {
	int fd;
	struct pf_hello_params hello;
	struct pf_session session;
	Pciefw__DeviceDescription *desc;
	struct pf_frame_decoder dec;
	struct pf_codec codec;
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

static void serve_dma_read(struct pf_host *h, const Pciefw__DmaRead *r)
{
	const struct pf_guest_mem *m = &h->mem;

	if (!m->bus_master || !mem_range(m, r->address, r->size)) {
		h->stats.dma_refused++;
		pf_put_completion(&h->out, r->tag,
				  PCIEFW__STATUS__STATUS_COMPLETER_ABORT, NULL, 0);
		return;
	}
	h->stats.dma_reads++;
	h->stats.dma_read_bytes += r->size;
	pf_put_completion(&h->out, r->tag, PCIEFW__STATUS__STATUS_SUCCESSFUL,
			  m->data + (r->address - m->base), r->size);
}

static void serve_dma_write(struct pf_host *h, const Pciefw__DmaWrite *w)
{
	struct pf_guest_mem *m = &h->mem;

	if (!m->bus_master || !mem_range(m, w->address, w->data.len)) {
		h->stats.dma_refused++;
		return;   /* posted: dropped, as a real bus would */
	}
	h->stats.dma_writes++;
	h->stats.dma_write_bytes += w->data.len;
	memcpy(m->data + (w->address - m->base), w->data.data, w->data.len);
}

static void count_vector(uint64_t *counters, uint32_t v)
{
	if (v < PF_HOST_MAX_VECTORS)
		counters[v]++;
}

static int handle(struct pf_host *h, const PfMessage *m)
{
	const Pciefw__Completion *c;

	switch (m->body_case) {
	case PCIEFW__MESSAGE__BODY_COMPLETION:
		c = m->completion;
		if (!h->waiting || c->tag != h->wait_tag)
			return host_fail(h, PF_ERR_INVALID,
					 "completion with unexpected tag %u", c->tag);
		if (c->status == PCIEFW__STATUS__STATUS_SUCCESSFUL && h->got_buf &&
		    c->data.len != h->got_size)
			return host_fail(h, PF_ERR_INVALID,
					 "completion carries %zu bytes, %u were read",
					 c->data.len, h->got_size);
		if (c->status == PCIEFW__STATUS__STATUS_SUCCESSFUL && h->got_buf)
			memcpy(h->got_buf, c->data.data, c->data.len);
		h->got_status = c->status;
		h->got = true;
		h->waiting = false;
		return PF_OK;
	case PCIEFW__MESSAGE__BODY_DMA_READ:
		serve_dma_read(h, m->dma_read);
		return PF_OK;
	case PCIEFW__MESSAGE__BODY_DMA_WRITE:
		serve_dma_write(h, m->dma_write);
		return PF_OK;
	case PCIEFW__MESSAGE__BODY_INTX:
		if (m->intx->asserted && !h->irqs.intx_level) {
			h->irqs.intx_asserts++;
			h->irqs.total++;
		}
		h->irqs.intx_level = m->intx->asserted;
		irq_hook(h, m->body_case, m->intx->asserted);
		return PF_OK;
	case PCIEFW__MESSAGE__BODY_MSI:
		count_vector(h->irqs.msi, m->msi->vector);
		h->irqs.total++;
		irq_hook(h, m->body_case, m->msi->vector);
		return PF_OK;
	case PCIEFW__MESSAGE__BODY_MSIX:
		count_vector(h->irqs.msix, m->msix->vector);
		h->irqs.total++;
		irq_hook(h, m->body_case, m->msix->vector);
		return PF_OK;
	case PCIEFW__MESSAGE__BODY_GOODBYE:
		return host_fail(h, PF_ERR_PEER, "endpoint said goodbye: %s",
				 m->goodbye->text);
	case PCIEFW__MESSAGE__BODY_ERROR:
		return host_fail(h, PF_ERR_PEER, "endpoint error: %s", m->error->text);
	default:
		return host_fail(h, PF_ERR_INVALID, "unexpected %s from the endpoint",
				 pf_msg_kind_name(m->body_case));
	}
}

static int on_frame(struct pf_host *h, const uint8_t *body, size_t len)
{
	PfMessage *m;
	char err[256];
	int r = pf_codec_decode(&h->codec, body, len, &m, err, sizeof(err));

	if (!r)
		r = pf_msg_validate(m, h->session.max_payload, err, sizeof(err));
	if (r)
		return host_fail(h, r, "bad message from the endpoint: %s", err);
	return handle(h, m);
}

/* Read what is available and handle every whole frame in it. */
static int read_some(struct pf_host *h)
{
	ssize_t n = recv(h->fd, h->rbuf, sizeof(h->rbuf), MSG_DONTWAIT);
	const uint8_t *p = h->rbuf;
	int handled = 0;

	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return 0;
	if (n < 0)
		return host_fail(h, PF_ERR_IO, "read: %s", strerror(errno));
	if (n == 0)
		return host_fail(h, PF_ERR_CLOSED, "endpoint closed the connection%s",
				 pf_frame_decoder_finish(&h->dec) == PF_EOF ? "" :
				 " in the middle of a frame");
	while (n > 0) {
		const uint8_t *body;
		size_t used, blen;
		int r = pf_frame_decoder_push(&h->dec, p, (size_t)n, &used, &body, &blen);

		p += used;
		n -= (ssize_t)used;
		if (r == PF_AGAIN)
			break;
		if (r < 0)
			return host_fail(h, r, "framing error from the endpoint: %s",
					 pf_strerror(r));
		r = on_frame(h, body, blen);
		if (r < 0)
			return r;
		handled++;
	}
	/* Answers to DMA reads go out before we wait again. */
	if (!pf_buf_empty(&h->out)) {
		int r = pf_host_flush(h);

		if (r < 0)
			return r;
	}
	return handled;
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

int pf_host_wait(struct pf_host *h, bool (*cond)(struct pf_host *, void *),
		 void *arg, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;

	while (!cond(h, arg)) {
		int left = (int)(deadline - now_ms());
		int r;

		if (left <= 0)
			return PF_ERR_TIMEOUT;
		r = pf_host_poll(h, left < 50 ? left : 50);
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

/* Wait for the next whole message during the handshake. */
static int next_message(struct pf_host *h, PfMessage **out)
{
	int64_t deadline = now_ms() + h->timeout_ms;

	for (;;) {
		const uint8_t *body;
		size_t used, blen;
		uint8_t byte;
		struct pollfd p = { .fd = h->fd, .events = POLLIN };
		int left = (int)(deadline - now_ms());
		char err[256];
		int r;

		/* Byte by byte: what follows the handshake must stay unread. */
		if (left <= 0 || poll(&p, 1, left) <= 0)
			return host_fail(h, PF_ERR_TIMEOUT, "endpoint did not answer");
		ssize_t n = recv(h->fd, &byte, 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return host_fail(h, PF_ERR_CLOSED,
					 "endpoint closed the connection during the handshake");
		r = pf_frame_decoder_push(&h->dec, &byte, 1, &used, &body, &blen);
		if (r == PF_AGAIN)
			continue;
		if (r < 0)
			return host_fail(h, r, "handshake: %s", pf_strerror(r));
		r = pf_codec_decode(&h->codec, body, blen, out, err, sizeof(err));
		if (!r)
			r = pf_msg_validate(*out, PCIEFW_MAX_PAYLOAD, err, sizeof(err));
		if (r)
			return host_fail(h, r, "handshake: %s", err);
		return PF_OK;
	}
}

static int handshake(struct pf_host *h)
{
	PfMessage *m;
	char err[300];
	int r;

	r = pf_put_hello(&h->out, &h->hello);
	if (r)
		return host_fail(h, r, "out of memory");
	/*
	 * An endpoint that refuses us (busy) may hang up before our hello is
	 * written; its Error is still waiting to be read, and says more.
	 */
	int wr = pf_host_flush(h);
	h->broken = false;
	r = next_message(h, &m);
	if (r)
		return wr ? wr : r;
	/* A refusal (busy, spec 2.4) comes instead of the endpoint's hello. */
	if (m->body_case == PCIEFW__MESSAGE__BODY_ERROR)
		return host_fail(h, PF_ERR_PEER, "endpoint refused: %s", m->error->text);
	if (m->body_case == PCIEFW__MESSAGE__BODY_GOODBYE)
		return host_fail(h, PF_ERR_PEER, "endpoint said goodbye: %s",
				 m->goodbye->text);
	r = pf_hello_negotiate(&h->hello, m, &h->session, err, sizeof(err));
	if (r)
		return host_fail(h, r, "%s", err);
	pf_frame_decoder_set_max(&h->dec, PCIEFW_MAX_FRAME(h->session.max_payload));
	r = next_message(h, &m);
	if (r)
		return r;
	if (m->body_case == PCIEFW__MESSAGE__BODY_ERROR)
		return host_fail(h, PF_ERR_PEER, "endpoint refused: %s", m->error->text);
	if (m->body_case != PCIEFW__MESSAGE__BODY_DEVICE_DESCRIPTION)
		return host_fail(h, PF_ERR_INVALID, "expected device_description, got %s",
				 pf_msg_kind_name(m->body_case));
	/* Keep our own copy: the codec's arena is reused by the next message. */
	size_t len = protobuf_c_message_get_packed_size(&m->device_description->base);
	uint8_t *tmp = malloc(len ? len : 1);
	if (!tmp)
		return host_fail(h, PF_ERR_NOMEM, "out of memory");
	protobuf_c_message_pack(&m->device_description->base, tmp);
	h->desc = pciefw__device_description__unpack(NULL, len, tmp);
	free(tmp);
	return h->desc ? PF_OK : host_fail(h, PF_ERR_NOMEM, "out of memory");
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
	pf_frame_decoder_init(&h->dec, PCIEFW_HANDSHAKE_FRAME);
	pf_codec_init(&h->codec);
	pf_buf_init(&h->out);
	h->mem.base = o->mem_base;
	h->mem.size = o->mem_size;
	h->mem.bus_master = true;
	h->memfd = -1;
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
	pf_frame_decoder_free(&h->dec);
	pf_codec_free(&h->codec);
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
