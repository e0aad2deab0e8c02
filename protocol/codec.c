/* Message codec and validation; see codec.h and spec 3. */
#include "codec.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "pciefw.h"

#define ARENA_INITIAL (16u * 1024)

struct pf_arena_chunk {
	struct pf_arena_chunk *next;
	max_align_t data[];
};

static void *arena_alloc(void *opaque, size_t size)
{
	struct pf_codec *c = opaque;
	size_t align = _Alignof(max_align_t);
	size_t start = (c->used + align - 1) & ~(align - 1);

	if (start <= c->cap && size <= c->cap - start) {
		c->used = start + size;
		return c->mem + start;
	}
	if (size > SIZE_MAX - sizeof(struct pf_arena_chunk))
		return NULL;
	struct pf_arena_chunk *ch = malloc(sizeof(*ch) + size);
	if (!ch)
		return NULL;
	ch->next = c->overflow;
	c->overflow = ch;
	return ch->data;
}

/* Freed wholesale by arena_reset(). */
static void arena_free(void *opaque, void *p)
{
	(void)opaque;
	(void)p;
}

/*
 * Start a new message: drop overflow blocks, and if they were needed grow
 * the bump region so the next message of that size fits in it.
 */
static void arena_reset(struct pf_codec *c, size_t frame_len)
{
	size_t want = c->cap;

	while (c->overflow) {
		struct pf_arena_chunk *next = c->overflow->next;

		free(c->overflow);
		c->overflow = next;
		want = c->cap * 2;
	}
	/* Unpacked size is bounded by a small multiple of the frame length. */
	while (want < 2 * frame_len + 1024 && want < 4 * PCIEFW_MAX_PAYLOAD)
		want = want ? want * 2 : ARENA_INITIAL;
	if (want > c->cap) {
		uint8_t *p = malloc(want);

		if (p) {
			free(c->mem);
			c->mem = p;
			c->cap = want;
		}
	}
	c->used = 0;
}

void pf_codec_init(struct pf_codec *c)
{
	memset(c, 0, sizeof(*c));
	c->alloc.alloc = arena_alloc;
	c->alloc.free = arena_free;
	c->alloc.allocator_data = c;
}

void pf_codec_free(struct pf_codec *c)
{
	arena_reset(c, 0);
	free(c->mem);
	c->mem = NULL;
	c->cap = 0;
}

static int fail(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return PF_ERR_INVALID;
}

/* Like fail(), for a size above a limit of spec 1.3: ERROR_LIMIT. */
static int over_limit(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int over_limit(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err && errlen) {
		va_start(ap, fmt);
		vsnprintf(err, errlen, fmt, ap);
		va_end(ap);
	}
	return PF_ERR_LIMIT;
}

int pf_codec_decode(struct pf_codec *c, const uint8_t *frame, size_t len,
		    PfMessage **out, char *err, size_t errlen)
{
	PfMessage *m;

	arena_reset(c, len);
	m = (PfMessage *)protobuf_c_message_unpack(&pciefw__message__descriptor,
						   &c->alloc, len, frame);
	if (!m) {
		if (err && errlen)
			snprintf(err, errlen, "%zu-byte frame is not a pciefw Message", len);
		return PF_ERR_DECODE;
	}
	if (m->body_case == PCIEFW__MESSAGE__BODY__NOT_SET) {
		if (err && errlen)
			snprintf(err, errlen, "message of an unknown kind");
		return PF_ERR_DECODE;
	}
	*out = m;
	return PF_OK;
}

int pf_codec_encode(const PfMessage *m, struct pf_buf *out)
{
	size_t len = protobuf_c_message_get_packed_size(&m->base);
	uint8_t *p;

	if (len > UINT32_MAX)
		return PF_ERR_OVERSIZE;
	p = pf_buf_reserve(out, PF_FRAME_HEADER + len);
	if (!p)
		return PF_ERR_NOMEM;
	pf_frame_put_header(p, (uint32_t)len);
	protobuf_c_message_pack(&m->base, p + PF_FRAME_HEADER);
	out->len += PF_FRAME_HEADER + len;
	return PF_OK;
}

static bool is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

static bool small_size(uint32_t size)
{
	return size == 1 || size == 2 || size == 4;
}

/*
 * Structural limits of a memory access (spec 3.3).  Sizes and alignments a
 * device does not support are answered with UR by the completer instead.
 */
static int check_mem_size(uint64_t offset, uint64_t size, uint32_t max_payload,
			  char *err, size_t errlen)
{
	if (size == 0)
		return fail(err, errlen, "zero-length memory access");
	if (size > max_payload)
		return over_limit(err, errlen, "%llu-byte access exceeds max payload %u",
			    (unsigned long long)size, max_payload);
	if (offset + (size - 1) < offset)
		return fail(err, errlen, "access wraps around the address space");
	return PF_OK;
}

static int check_small(const char *what, uint64_t offset, uint64_t size,
		       char *err, size_t errlen)
{
	(void)offset;
	if (size > 4 || !small_size((uint32_t)size))
		return fail(err, errlen, "%s of %llu bytes (1, 2 or 4 allowed)",
			    what, (unsigned long long)size);
	return PF_OK;
}

static int check_bar(uint32_t bar, char *err, size_t errlen)
{
	if (bar >= PCIEFW_NUM_BARS)
		return fail(err, errlen, "BAR index %u out of range 0..5", bar);
	return PF_OK;
}

static int check_config(uint32_t offset, uint64_t size, char *err, size_t errlen)
{
	int r = check_small("config access", offset, size, err, errlen);

	if (r)
		return r;
	if (offset >= PCIEFW_CONFIG_SPACE)
		return fail(err, errlen, "config offset 0x%x beyond 4 KiB", offset);
	return PF_OK;
}

static int check_description(const Pciefw__DeviceDescription *d,
			     char *err, size_t errlen)
{
	/* Slots taken (a mem64 BAR takes two), and indexes that are a BAR. */
	uint32_t used = 0, declared = 0;

	if (d->vendor_id > 0xffff || d->device_id > 0xffff ||
	    d->subsystem_vendor_id > 0xffff || d->subsystem_id > 0xffff)
		return fail(err, errlen, "ID field wider than 16 bits");
	if (d->vendor_id == 0xffff || d->vendor_id == 0)
		return fail(err, errlen, "invalid vendor ID 0x%04x", d->vendor_id);
	if (d->class_code > 0xffffff || d->revision > 0xff)
		return fail(err, errlen, "class code or revision out of range");
	if (d->intx_pin > 4)
		return fail(err, errlen, "INTx pin %u (0..4 allowed)", d->intx_pin);
	if (d->msi_vectors > 32 || (d->msi_vectors && !is_pow2(d->msi_vectors)))
		return fail(err, errlen, "MSI vector count %u (1..32, power of two)",
			    d->msi_vectors);
	if (d->msix_vectors > PCIEFW_MAX_MSIX_VECTORS)
		return fail(err, errlen, "MSI-X vector count %u above %u",
			    d->msix_vectors, PCIEFW_MAX_MSIX_VECTORS);
	if (d->n_bars > PCIEFW_NUM_BARS)
		return fail(err, errlen, "%zu BARs declared", d->n_bars);
	for (size_t i = 0; i < d->n_bars; i++) {
		const Pciefw__Bar *b = d->bars[i];
		uint32_t slots;

		if (check_bar(b->index, err, errlen))
			return PF_ERR_INVALID;
		switch (b->kind) {
		case PCIEFW__BAR_KIND__BAR_MEM32:
			slots = 1u << b->index;
			if (b->size < 16 || b->size > (1ull << 31))
				return fail(err, errlen, "BAR%u: mem32 size %llu",
					    b->index, (unsigned long long)b->size);
			break;
		case PCIEFW__BAR_KIND__BAR_MEM64:
			if (b->index == 5)
				return fail(err, errlen, "BAR5 cannot be 64-bit");
			slots = 3u << b->index;
			if (b->size < 16 || b->size > (1ull << 40))
				return fail(err, errlen, "BAR%u: mem64 size %llu",
					    b->index, (unsigned long long)b->size);
			break;
		case PCIEFW__BAR_KIND__BAR_IO:
			slots = 1u << b->index;
			if (b->prefetchable)
				return fail(err, errlen, "BAR%u: IO BAR cannot be prefetchable",
					    b->index);
			if (b->size < 4 || b->size > 256)
				return fail(err, errlen, "BAR%u: IO size %llu (4..256)",
					    b->index, (unsigned long long)b->size);
			break;
		default:
			return fail(err, errlen, "BAR%u: unknown kind %d", b->index, b->kind);
		}
		if (!is_pow2(b->size))
			return fail(err, errlen, "BAR%u: size %llu is not a power of two",
				    b->index, (unsigned long long)b->size);
		if (used & slots)
			return fail(err, errlen, "BAR%u overlaps another BAR", b->index);
		used |= slots;
		declared |= 1u << b->index;
	}
	if (d->msix_vectors) {
		if (check_bar(d->msix_table_bar, err, errlen) ||
		    check_bar(d->msix_pba_bar, err, errlen))
			return PF_ERR_INVALID;
		if (!(declared & (1u << d->msix_table_bar)) ||
		    !(declared & (1u << d->msix_pba_bar)))
			return fail(err, errlen, "MSI-X table or PBA in an undeclared BAR");
		if ((d->msix_table_offset & 7) || (d->msix_pba_offset & 7))
			return fail(err, errlen, "MSI-X table/PBA offsets must be 8-aligned");
	}
	return PF_OK;
}

/*
 * A MemoryMap on its own (spec 10.2): few enough regions, each aligned,
 * not empty, not wrapping, in ascending order without overlap.  Whether
 * the endpoint can map a region is judged where its fd is (10.2).
 */
static int check_memory_map(const Pciefw__MemoryMap *mm, char *err, size_t errlen)
{
	const uint64_t mask = PCIEFW_MEM_ALIGN - 1;
	uint64_t next = 0;     /* lowest address the next region may start at */
	bool first = true;

	if (mm->n_regions > PCIEFW_MAX_MEM_REGIONS)
		return over_limit(err, errlen, "memory map of %zu regions (at most %u)",
				  mm->n_regions, PCIEFW_MAX_MEM_REGIONS);
	for (size_t i = 0; i < mm->n_regions; i++) {
		const Pciefw__MemoryRegion *r = mm->regions[i];
		unsigned long long ga = r->guest_address, sz = r->size;

		if (!sz || (ga | sz | r->fd_offset) & mask)
			return fail(err, errlen,
				    "memory region %zu (0x%llx, %llu bytes, fd offset 0x%llx) "
				    "is empty or not 4 KiB aligned", i, ga, sz,
				    (unsigned long long)r->fd_offset);
		if (ga + (sz - 1) < ga || r->fd_offset + (sz - 1) < r->fd_offset)
			return fail(err, errlen, "memory region %zu at 0x%llx (%llu bytes) "
				    "wraps past 2^64", i, ga, sz);
		if (!first && ga < next)
			return fail(err, errlen, "memory region %zu at 0x%llx overlaps or "
				    "precedes the region before it", i, ga);
		first = false;
		/* 0 after a region that ends at 2^64: nothing may follow. */
		next = ga + sz;
		if (!next && i + 1 < mm->n_regions)
			return fail(err, errlen, "memory region %zu follows one that ends "
				    "at 2^64", i + 1);
	}
	return PF_OK;
}

/*
 * An InterruptConfig on its own (spec 12.5): few enough entries, an MSI
 * vector count the capability can enable (0 exactly when MSI is off), and
 * each entry a vector of the table, once.  The declared counts are the
 * receiver's to check, in context.
 */
static int check_interrupt_config(const Pciefw__InterruptConfig *c,
				  char *err, size_t errlen)
{
	uint64_t seen[PCIEFW_MAX_MSIX_VECTORS / 64] = { 0 };
	uint32_t v = c->msi_vectors;

	if (c->n_msix_entries > PCIEFW_MAX_MSIX_ENTRIES)
		return over_limit(err, errlen, "interrupt config of %zu MSI-X entries "
				  "(at most %u)", c->n_msix_entries,
				  PCIEFW_MAX_MSIX_ENTRIES);
	if (v > PCIEFW_MAX_MSI_VECTORS || (v & (v - 1)))
		return fail(err, errlen, "%u MSI vectors enabled (0, 1, 2, 4, 8, 16 "
			    "or 32)", v);
	if (!v != !c->msi_enabled)
		return fail(err, errlen, "MSI %s with %u vectors enabled",
			    c->msi_enabled ? "enabled" : "disabled", v);
	for (size_t i = 0; i < c->n_msix_entries; i++) {
		uint32_t vec = c->msix_entries[i]->vector;

		if (vec >= PCIEFW_MAX_MSIX_VECTORS)
			return fail(err, errlen, "MSI-X entry vector %u out of range "
				    "0..%u", vec, PCIEFW_MAX_MSIX_VECTORS - 1);
		if (seen[vec / 64] & 1ull << (vec % 64))
			return fail(err, errlen, "MSI-X entry vector %u twice in one "
				    "interrupt config", vec);
		seen[vec / 64] |= 1ull << (vec % 64);
	}
	return PF_OK;
}

static int check_text(const char *s, size_t max, char *err, size_t errlen)
{
	if (s && strlen(s) > max)
		return over_limit(err, errlen, "text field longer than %zu bytes", max);
	return PF_OK;
}

int pf_msg_validate(const PfMessage *m, uint32_t max_payload,
		    char *err, size_t errlen)
{
	switch (m->body_case) {
	case PCIEFW__MESSAGE__BODY_HELLO:
		return check_text(m->hello->peer_name, PCIEFW_MAX_NAME, err, errlen);
	case PCIEFW__MESSAGE__BODY_CONFIG_READ:
		return check_config(m->config_read->offset, m->config_read->size,
				    err, errlen);
	case PCIEFW__MESSAGE__BODY_CONFIG_WRITE:
		return check_config(m->config_write->offset,
				    m->config_write->data.len, err, errlen);
	case PCIEFW__MESSAGE__BODY_MEM_READ:
		return check_bar(m->mem_read->bar, err, errlen) ?:
		       check_mem_size(m->mem_read->offset, m->mem_read->size,
				      max_payload, err, errlen);
	case PCIEFW__MESSAGE__BODY_MEM_WRITE:
		return check_bar(m->mem_write->bar, err, errlen) ?:
		       check_mem_size(m->mem_write->offset,
				      m->mem_write->data.len, max_payload,
				      err, errlen);
	case PCIEFW__MESSAGE__BODY_IO_READ:
		return check_bar(m->io_read->bar, err, errlen) ?:
		       check_small("IO read", m->io_read->offset,
				   m->io_read->size, err, errlen);
	case PCIEFW__MESSAGE__BODY_IO_WRITE:
		return check_bar(m->io_write->bar, err, errlen) ?:
		       check_small("IO write", m->io_write->offset,
				   m->io_write->data.len, err, errlen);
	case PCIEFW__MESSAGE__BODY_COMPLETION:
		/* STATUS_TIMEOUT is a requester's own verdict, never sent (3.5). */
		if (m->completion->status == PCIEFW__STATUS__STATUS_TIMEOUT)
			return fail(err, errlen,
				    "completion status STATUS_TIMEOUT is never sent");
		if ((unsigned)m->completion->status > PCIEFW__STATUS__STATUS_TIMEOUT)
			return fail(err, errlen, "unknown completion status %d",
				    m->completion->status);
		if (m->completion->data.len > max_payload)
			return over_limit(err, errlen,
					  "%zu bytes of completion data exceed max payload %u",
					  m->completion->data.len, max_payload);
		if (m->completion->status && m->completion->data.len)
			return fail(err, errlen, "error completion carries data");
		return PF_OK;
	case PCIEFW__MESSAGE__BODY_DMA_READ:
		return check_mem_size(m->dma_read->address, m->dma_read->size,
				      max_payload, err, errlen);
	case PCIEFW__MESSAGE__BODY_DMA_WRITE:
		return check_mem_size(m->dma_write->address,
				      m->dma_write->data.len, max_payload,
				      err, errlen);
	case PCIEFW__MESSAGE__BODY_INTX:
	case PCIEFW__MESSAGE__BODY_MSI:
	case PCIEFW__MESSAGE__BODY_MSIX:
		return PF_OK;   /* vector ranges depend on the description */
	case PCIEFW__MESSAGE__BODY_DEVICE_DESCRIPTION:
		return check_description(m->device_description, err, errlen);
	case PCIEFW__MESSAGE__BODY_RESET:
		if ((unsigned)m->reset->kind > PCIEFW__RESET_KIND__RESET_FUNCTION)
			return fail(err, errlen, "unknown reset kind %d", m->reset->kind);
		return PF_OK;
	case PCIEFW__MESSAGE__BODY_GOODBYE:
		return check_text(m->goodbye->text, PCIEFW_MAX_TEXT, err, errlen);
	case PCIEFW__MESSAGE__BODY_ERROR:
		return check_text(m->error->text, PCIEFW_MAX_TEXT, err, errlen);
	case PCIEFW__MESSAGE__BODY_MEMORY_MAP:
		return check_memory_map(m->memory_map, err, errlen);
	case PCIEFW__MESSAGE__BODY_BUS_MASTER:
	case PCIEFW__MESSAGE__BODY_RING_SETUP:
		return PF_OK;
	case PCIEFW__MESSAGE__BODY_RING_READY:
		return check_text(m->ring_ready->reason, PCIEFW_MAX_TEXT, err, errlen);
	case PCIEFW__MESSAGE__BODY_INTERRUPT_CONFIG:
		return check_interrupt_config(m->interrupt_config, err, errlen);
	default:
		return fail(err, errlen, "message of unknown kind %d", m->body_case);
	}
}

Pciefw__ErrorCode pf_error_code(int status)
{
	switch (status) {
	case PF_ERR_ZERO_LENGTH:
	case PF_ERR_DECODE:
	case PF_ERR_TRUNCATED:
		return PCIEFW__ERROR_CODE__ERROR_BAD_FRAME;
	case PF_ERR_OVERSIZE:
	case PF_ERR_LIMIT:
		return PCIEFW__ERROR_CODE__ERROR_LIMIT;
	case PF_ERR_INVALID:
	case PF_ERR_BAD_MAGIC:
	case PF_ERR_NO_HELLO:
		return PCIEFW__ERROR_CODE__ERROR_PROTOCOL;
	case PF_ERR_VERSION:
		return PCIEFW__ERROR_CODE__ERROR_VERSION;
	case PF_ERR_UNKNOWN_TAG:
		return PCIEFW__ERROR_CODE__ERROR_UNKNOWN_TAG;
	case PF_ERR_UNEXPECTED:
		return PCIEFW__ERROR_CODE__ERROR_UNEXPECTED;
	default:
		return PCIEFW__ERROR_CODE__ERROR_INTERNAL;
	}
}

static const char *const kind_names[] = {
	[PCIEFW__MESSAGE__BODY_HELLO] = "hello",
	[PCIEFW__MESSAGE__BODY_CONFIG_READ] = "config_read",
	[PCIEFW__MESSAGE__BODY_CONFIG_WRITE] = "config_write",
	[PCIEFW__MESSAGE__BODY_MEM_READ] = "mem_read",
	[PCIEFW__MESSAGE__BODY_MEM_WRITE] = "mem_write",
	[PCIEFW__MESSAGE__BODY_IO_READ] = "io_read",
	[PCIEFW__MESSAGE__BODY_IO_WRITE] = "io_write",
	[PCIEFW__MESSAGE__BODY_COMPLETION] = "completion",
	[PCIEFW__MESSAGE__BODY_DMA_READ] = "dma_read",
	[PCIEFW__MESSAGE__BODY_DMA_WRITE] = "dma_write",
	[PCIEFW__MESSAGE__BODY_INTX] = "intx",
	[PCIEFW__MESSAGE__BODY_MSI] = "msi",
	[PCIEFW__MESSAGE__BODY_MSIX] = "msix",
	[PCIEFW__MESSAGE__BODY_DEVICE_DESCRIPTION] = "device_description",
	[PCIEFW__MESSAGE__BODY_RESET] = "reset",
	[PCIEFW__MESSAGE__BODY_GOODBYE] = "goodbye",
	[PCIEFW__MESSAGE__BODY_ERROR] = "error",
	[PCIEFW__MESSAGE__BODY_MEMORY_MAP] = "memory_map",
	[PCIEFW__MESSAGE__BODY_BUS_MASTER] = "bus_master",
	[PCIEFW__MESSAGE__BODY_RING_SETUP] = "ring_setup",
	[PCIEFW__MESSAGE__BODY_RING_READY] = "ring_ready",
	[PCIEFW__MESSAGE__BODY_INTERRUPT_CONFIG] = "interrupt_config",
};

const char *pf_msg_kind_name(Pciefw__Message__BodyCase kind)
{
	if ((size_t)kind < sizeof(kind_names) / sizeof(kind_names[0]) &&
	    kind_names[kind])
		return kind_names[kind];
	return "unknown";
}

Pciefw__Message__BodyCase pf_msg_kind_from_name(const char *name)
{
	for (size_t i = 0; i < sizeof(kind_names) / sizeof(kind_names[0]); i++)
		if (kind_names[i] && !strcmp(kind_names[i], name))
			return (Pciefw__Message__BodyCase)i;
	return PCIEFW__MESSAGE__BODY__NOT_SET;
}

const char *pf_status_name(int status)
{
	switch (status) {
	case PCIEFW__STATUS__STATUS_SUCCESSFUL: return "successful";
	case PCIEFW__STATUS__STATUS_UNSUPPORTED_REQUEST: return "unsupported-request";
	case PCIEFW__STATUS__STATUS_COMPLETER_ABORT: return "completer-abort";
	case PCIEFW__STATUS__STATUS_CONFIG_RETRY: return "config-retry";
	case PCIEFW__STATUS__STATUS_TIMEOUT: return "timeout";
	default: return "unknown-status";
	}
}

int pf_msg_tag(const PfMessage *m, uint32_t *tag)
{
	switch (m->body_case) {
	case PCIEFW__MESSAGE__BODY_CONFIG_READ: *tag = m->config_read->tag; return 1;
	case PCIEFW__MESSAGE__BODY_CONFIG_WRITE: *tag = m->config_write->tag; return 1;
	case PCIEFW__MESSAGE__BODY_MEM_READ: *tag = m->mem_read->tag; return 1;
	case PCIEFW__MESSAGE__BODY_IO_READ: *tag = m->io_read->tag; return 1;
	case PCIEFW__MESSAGE__BODY_IO_WRITE: *tag = m->io_write->tag; return 1;
	case PCIEFW__MESSAGE__BODY_COMPLETION: *tag = m->completion->tag; return 1;
	case PCIEFW__MESSAGE__BODY_DMA_READ: *tag = m->dma_read->tag; return 1;
	case PCIEFW__MESSAGE__BODY_RESET: *tag = m->reset->tag; return 1;
	default: return 0;
	}
}
