/*
 * Message codec: Message <-> frame bytes, and the semantic checks of
 * spec 3 that protobuf itself cannot express (sizes, ranges, enum values).
 *
 * Decoding allocates from a per-connection arena so that the hot path does
 * no malloc/free per message; a decoded message is valid until the next
 * pf_codec_decode() on the same codec.
 */
#ifndef PCIEFW_CODEC_H
#define PCIEFW_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "pciefw.pb-c.h"

typedef Pciefw__Message PfMessage;

struct pf_arena_chunk;

struct pf_codec {
	ProtobufCAllocator alloc;
	uint8_t *mem;                     /* bump region, reused per message */
	size_t cap;
	size_t used;
	struct pf_arena_chunk *overflow;  /* blocks that did not fit */
};

void pf_codec_init(struct pf_codec *c);
void pf_codec_free(struct pf_codec *c);

/*
 * Decode one frame body.  Returns PF_OK and sets *@out, PF_ERR_DECODE for
 * bytes that are not a Message (or a Message with no body set, i.e. a
 * message kind this version does not know), or PF_ERR_INVALID when the
 * message breaks a rule of spec 3 (@err says which, if non-NULL).
 */
int pf_codec_decode(struct pf_codec *c, const uint8_t *frame, size_t len,
		    PfMessage **out, char *err, size_t errlen);

/* Append @m as one frame (length prefix + body) to @out. */
int pf_codec_encode(const PfMessage *m, struct pf_buf *out);

/*
 * Check the rules of spec 3 for @m; @max_payload bounds data fields.
 * Returns PF_OK, PF_ERR_INVALID (a structural rule of spec 3.3 broken) or
 * PF_ERR_LIMIT (a size above a limit of spec 1.3), with a reason in @err.
 */
int pf_msg_validate(const PfMessage *m, uint32_t max_payload,
		    char *err, size_t errlen);

/*
 * The ErrorCode a receiver sends for a protocol error reported by a
 * libpciefw call as @status (a negative PF_ERR_*): the table of spec 7.1.
 */
Pciefw__ErrorCode pf_error_code(int status);

/* "mem_read", "completion", ...: the oneof field names of pciefw.proto. */
const char *pf_msg_kind_name(Pciefw__Message__BodyCase kind);
/* Inverse of pf_msg_kind_name(); 0 (NOT_SET) if unknown. */
Pciefw__Message__BodyCase pf_msg_kind_from_name(const char *name);
const char *pf_status_name(int status);

/* Tag of a non-posted request or completion; returns 0 if @m has none. */
int pf_msg_tag(const PfMessage *m, uint32_t *tag);

#endif /* PCIEFW_CODEC_H */
