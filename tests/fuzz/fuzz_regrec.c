/*
 * libFuzzer target: binary register records (docs/protocol.md 11.7) as a
 * hostile peer could write them into a ring.  The input is cut into
 * 24-byte records; each is decoded as pf_rx_record() does.  A record that
 * decodes must stand for exactly one message: its protobuf body (what the
 * trace records) unpacks to the same kind, and encoding that message as
 * a record again gives back the very same 24 bytes -- so no byte of a
 * record is ignored or read past, and 11.7's zero bytes are enforced.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "pciefw.h"
#include "regrec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok)
{
	if (!ok)
		abort();
}

/* The message @m again as a record, into @o. */
static int reencode(struct pf_buf *o, const PfMessage *m)
{
	switch (m->body_case) {
	case PCIEFW__MESSAGE__BODY_CONFIG_READ:
		return pf_regrec_put_request(o, m->body_case, m->config_read->tag,
					     0, m->config_read->offset, NULL,
					     m->config_read->size);
	case PCIEFW__MESSAGE__BODY_CONFIG_WRITE:
		return pf_regrec_put_request(o, m->body_case, m->config_write->tag,
					     0, m->config_write->offset,
					     m->config_write->data.data,
					     (uint32_t)m->config_write->data.len);
	case PCIEFW__MESSAGE__BODY_MEM_READ:
		return pf_regrec_put_request(o, m->body_case, m->mem_read->tag,
					     m->mem_read->bar, m->mem_read->offset,
					     NULL, m->mem_read->size);
	case PCIEFW__MESSAGE__BODY_MEM_WRITE:
		return pf_regrec_put_request(o, m->body_case, 0, m->mem_write->bar,
					     m->mem_write->offset,
					     m->mem_write->data.data,
					     (uint32_t)m->mem_write->data.len);
	case PCIEFW__MESSAGE__BODY_IO_READ:
		return pf_regrec_put_request(o, m->body_case, m->io_read->tag,
					     m->io_read->bar, m->io_read->offset,
					     NULL, m->io_read->size);
	case PCIEFW__MESSAGE__BODY_IO_WRITE:
		return pf_regrec_put_request(o, m->body_case, m->io_write->tag,
					     m->io_write->bar, m->io_write->offset,
					     m->io_write->data.data,
					     (uint32_t)m->io_write->data.len);
	case PCIEFW__MESSAGE__BODY_COMPLETION:
		return pf_regrec_put_completion(o, m->completion->tag,
						m->completion->status,
						m->completion->data.data,
						(uint32_t)m->completion->data.len);
	default:
		return PF_ERR_INVALID;
	}
}

static void one_record(const uint8_t *rec)
{
	struct pf_regrec_msg msg;
	struct pf_buf body, again;
	Pciefw__Message *unpacked;
	char err[256];

	if (pf_regrec_decode(rec, &msg, err, sizeof(err)) != PF_OK) {
		check(err[0] != '\0');          /* every refusal says why */
		return;
	}
	pf_buf_init(&body);
	pf_buf_init(&again);
	check(pf_regrec_to_body(rec, &body) == PF_OK);
	unpacked = pciefw__message__unpack(NULL, body.len, body.data);
	check(unpacked && unpacked->body_case == msg.m.body_case);
	pciefw__message__free_unpacked(unpacked, NULL);
	check(reencode(&again, &msg.m) == PF_OK);
	check(again.len == PF_REGREC_SIZE && !memcmp(again.data, rec, PF_REGREC_SIZE));
	pf_buf_free(&body);
	pf_buf_free(&again);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	for (size_t at = 0; at + PF_REGREC_SIZE <= size; at += PF_REGREC_SIZE) {
		/* Exactly 24 bytes of its own: ASan sees any read past one. */
		uint8_t *rec = malloc(PF_REGREC_SIZE);

		if (!rec)
			return 0;
		memcpy(rec, data + at, PF_REGREC_SIZE);
		one_record(rec);
		free(rec);
	}
	return 0;
}
