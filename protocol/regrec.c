/* Binary register records: regrec.h, spec 11.7. */
#include "regrec.h"

#include <stdio.h>
#include <string.h>

#include "msg.h"
#include "pciefw.h"

#define K(x) PCIEFW__MESSAGE__BODY_##x

bool pf_regrec_is_request(int kind)
{
	return kind >= K(CONFIG_READ) && kind <= K(IO_WRITE);
}

static bool is_write(int kind)
{
	return kind == K(CONFIG_WRITE) || kind == K(MEM_WRITE) ||
	       kind == K(IO_WRITE);
}

bool pf_regrec_fits(int kind, uint32_t size)
{
	if (kind == K(COMPLETION))
		return size <= PF_REGREC_DATA;
	return pf_regrec_is_request(kind) && size >= 1 && size <= PF_REGREC_DATA;
}

static void put_u32(uint8_t *p, uint32_t v)
{
	pf_le_store(p, 4, v);
}

static void put_u64(uint8_t *p, uint64_t v)
{
	pf_le_store(p, 8, v);
}

/* One record, @data (may be NULL) in its data field. */
static int put(struct pf_buf *o, int kind, uint32_t size, uint32_t bar_status,
	       uint32_t tag, uint64_t off, const void *data)
{
	uint8_t *p = pf_buf_reserve(o, PF_REGREC_SIZE);

	if (!p)
		return PF_ERR_NOMEM;
	memset(p, 0, PF_REGREC_SIZE);
	p[0] = (uint8_t)kind;
	p[1] = (uint8_t)size;
	p[2] = (uint8_t)bar_status;
	p[3] = PF_REGREC_MARKER;
	put_u32(p + 4, tag);
	put_u64(p + 8, off);
	if (data)
		memcpy(p + 16, data, size);
	o->len += PF_REGREC_SIZE;
	return PF_OK;
}

int pf_regrec_put_request(struct pf_buf *o, int kind, uint32_t tag,
			  uint32_t bar, uint64_t off, const void *data,
			  uint32_t size)
{
	if (!pf_regrec_fits(kind, size) || bar > 0xff ||
	    is_write(kind) != (data != NULL))
		return PF_ERR_INVALID;
	return put(o, kind, size, kind == K(CONFIG_READ) ||
		   kind == K(CONFIG_WRITE) ? 0 : bar,
		   kind == K(MEM_WRITE) ? 0 : tag, off, data);
}

int pf_regrec_put_completion(struct pf_buf *o, uint32_t tag,
			     Pciefw__Status status, const void *data,
			     uint32_t size)
{
	if (size > PF_REGREC_DATA || (unsigned)status > 0xff)
		return PF_ERR_INVALID;
	return put(o, K(COMPLETION), size, (uint32_t)status, tag, 0,
		   size ? data : NULL);
}

int pf_put_access(struct pf_buf *o, bool record, int kind, uint32_t tag,
		  uint32_t bar, uint64_t off, const void *data, uint32_t size)
{
	if (record && pf_regrec_fits(kind, size))
		return pf_regrec_put_request(o, kind, tag, bar, off, data, size);
	switch (kind) {
	case K(CONFIG_READ):
		return pf_put_config_read(o, tag, (uint32_t)off, size);
	case K(CONFIG_WRITE):
		return pf_put_config_write(o, tag, (uint32_t)off, data, size);
	case K(MEM_READ):
		return pf_put_mem_read(o, tag, bar, off, size);
	case K(MEM_WRITE):
		return pf_put_mem_write(o, bar, off, data, size);
	case K(IO_READ):
		return pf_put_io_read(o, tag, bar, off, size);
	case K(IO_WRITE):
		return pf_put_io_write(o, tag, bar, off, data, size);
	default:
		return PF_ERR_INVALID;
	}
}

int pf_put_completion_or_record(struct pf_buf *o, bool record, uint32_t tag,
				Pciefw__Status status, const void *data,
				uint32_t size)
{
	if (record && pf_regrec_fits(K(COMPLETION), size))
		return pf_regrec_put_completion(o, tag, status, data, size);
	return pf_put_completion(o, tag, status, data, size);
}

static int malformed(char *err, size_t errlen, const char *fmt, unsigned v)
{
	snprintf(err, errlen, fmt, v);
	return PF_ERR_DECODE;
}

static bool zeros(const uint8_t *p, size_t n)
{
	while (n--)
		if (*p++)
			return false;
	return true;
}

/* The bytes 11.7 says are zero for @kind: a read's data, a write's tag... */
static int check_reserved(const uint8_t *rec, int kind, uint32_t size,
			  char *err, size_t errlen)
{
	bool carries = is_write(kind) || kind == K(COMPLETION);

	if (!zeros(rec + 16 + (carries ? size : 0),
		   PF_REGREC_DATA - (carries ? size : 0)))
		return malformed(err, errlen, "binary record: data bytes past "
				 "its size %u are not zero", size);
	if (kind == K(MEM_WRITE) && !zeros(rec + 4, 4))
		return malformed(err, errlen, "binary record: a mem_write "
				 "record with a tag (%u)", (unsigned)pf_le_load(rec + 4, 4));
	if (kind == K(COMPLETION) && !zeros(rec + 8, 8))
		return malformed(err, errlen, "binary record: a completion "
				 "record with an offset (tag %u)",
				 (unsigned)pf_le_load(rec + 4, 4));
	if ((kind == K(CONFIG_READ) || kind == K(CONFIG_WRITE)) && rec[2])
		return malformed(err, errlen, "binary record: a config record "
				 "with a BAR (%u)", rec[2]);
	/* ConfigRead/Write carry a 32-bit offset: nothing may be cut off. */
	if ((kind == K(CONFIG_READ) || kind == K(CONFIG_WRITE)) &&
	    !zeros(rec + 12, 4))
		return malformed(err, errlen, "binary record: a config offset "
				 "above 32 bits (0x%llx)",
				 (unsigned long long)pf_le_load(rec + 8, 8));
	return PF_OK;
}

/* The message's own fields, pointing into @out. */
static void fill(struct pf_regrec_msg *out, int kind, uint32_t size,
		 uint8_t bar_status, uint32_t tag, uint64_t off)
{
	ProtobufCBinaryData data = { size, out->data };

	pciefw__message__init(&out->m);
	out->m.body_case = (Pciefw__Message__BodyCase)kind;
	switch (kind) {
	case K(CONFIG_READ):
		pciefw__config_read__init(&out->u.config_read);
		out->u.config_read.tag = tag;
		out->u.config_read.offset = (uint32_t)off;
		out->u.config_read.size = size;
		out->m.config_read = &out->u.config_read;
		break;
	case K(CONFIG_WRITE):
		pciefw__config_write__init(&out->u.config_write);
		out->u.config_write.tag = tag;
		out->u.config_write.offset = (uint32_t)off;
		out->u.config_write.data = data;
		out->m.config_write = &out->u.config_write;
		break;
	case K(MEM_READ):
		pciefw__mem_read__init(&out->u.mem_read);
		out->u.mem_read.tag = tag;
		out->u.mem_read.bar = bar_status;
		out->u.mem_read.offset = off;
		out->u.mem_read.size = size;
		out->m.mem_read = &out->u.mem_read;
		break;
	case K(MEM_WRITE):
		pciefw__mem_write__init(&out->u.mem_write);
		out->u.mem_write.bar = bar_status;
		out->u.mem_write.offset = off;
		out->u.mem_write.data = data;
		out->m.mem_write = &out->u.mem_write;
		break;
	case K(IO_READ):
		pciefw__io_read__init(&out->u.io_read);
		out->u.io_read.tag = tag;
		out->u.io_read.bar = bar_status;
		out->u.io_read.offset = off;
		out->u.io_read.size = size;
		out->m.io_read = &out->u.io_read;
		break;
	case K(IO_WRITE):
		pciefw__io_write__init(&out->u.io_write);
		out->u.io_write.tag = tag;
		out->u.io_write.bar = bar_status;
		out->u.io_write.offset = off;
		out->u.io_write.data = data;
		out->m.io_write = &out->u.io_write;
		break;
	default:
		pciefw__completion__init(&out->u.completion);
		out->u.completion.tag = tag;
		out->u.completion.status = (Pciefw__Status)bar_status;
		out->u.completion.data = data;
		out->m.completion = &out->u.completion;
		break;
	}
}

int pf_regrec_decode(const uint8_t rec[PF_REGREC_SIZE],
		     struct pf_regrec_msg *out, char *err, size_t errlen)
{
	int kind = rec[0];
	uint32_t size = rec[1];
	int r;

	if (rec[3] != PF_REGREC_MARKER)
		return malformed(err, errlen, "binary record: marker byte 0x%02x "
				 "(0x80 expected)", rec[3]);
	if (!pf_regrec_is_request(kind) && kind != K(COMPLETION))
		return malformed(err, errlen, "binary record of unknown kind %u",
				 (unsigned)kind);
	if (size > PF_REGREC_DATA || (!size && kind != K(COMPLETION))) {
		snprintf(err, errlen, "binary %s record of %u bytes (1 to %u; "
			 "0 to %u for a completion)", pf_msg_kind_name(kind), size,
			 PF_REGREC_DATA, PF_REGREC_DATA);
		return PF_ERR_INVALID;
	}
	r = check_reserved(rec, kind, size, err, errlen);
	if (r)
		return r;
	memcpy(out->data, rec + 16, PF_REGREC_DATA);
	fill(out, kind, size, rec[2], (uint32_t)pf_le_load(rec + 4, 4),
	     pf_le_load(rec + 8, 8));
	return PF_OK;
}

int pf_regrec_to_body(const uint8_t rec[PF_REGREC_SIZE], struct pf_buf *o)
{
	struct pf_regrec_msg msg;
	char err[160];
	int r = pf_regrec_decode(rec, &msg, err, sizeof(err));
	size_t len;
	uint8_t *p;

	if (r)
		return r;
	len = protobuf_c_message_get_packed_size(&msg.m.base);
	p = pf_buf_reserve(o, len);
	if (!p)
		return PF_ERR_NOMEM;
	protobuf_c_message_pack(&msg.m.base, p);
	o->len += len;
	return PF_OK;
}
