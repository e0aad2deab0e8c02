/*
 * Binary register records (docs/protocol.md 11.7): a config, memory or IO
 * access of at most 8 bytes, or the completion of one, as 24 fixed bytes
 * in the rings' byte stream instead of a protobuf frame -- no codec on
 * the register path.  Each stands for the Message it replaces: a
 * receiver turns it into that message (no allocation) and handles it as
 * such, with the same checks; traces record that message.
 *
 *   0  kind    the Message field number: 2 ConfigRead .. 7 IoWrite, 8 Completion
 *   1  size    bytes read or written; a completion's data bytes
 *   2  bar     (requests; 0 for config) or status (completion)
 *   3  0x80    the marker: where a frame's length prefix would have bit 31
 *   4  tag     u32 (0 for MemWrite)
 *   8  offset  u64 (0 for a completion)
 *  16  data    8 bytes: the first @size in bus order, the rest zero
 */
#ifndef PCIEFW_REGREC_H
#define PCIEFW_REGREC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "codec.h"

#define PF_REGREC_SIZE   24u
#define PF_REGREC_MARKER 0x80u
#define PF_REGREC_DATA   8u

/*
 * Where a frame's length prefix is due, do these 4 bytes begin a record?
 * (Bit 31 of the little-endian word: no frame is that long, spec 1.3.)
 */
static inline bool pf_regrec_starts(const uint8_t *p)
{
	return (p[3] & 0x80) != 0;
}

/* Can a message of @kind with @size bytes travel as a record? */
bool pf_regrec_fits(int kind, uint32_t size);

/*
 * Append a record: a request of @kind (a Pciefw__Message__BodyCase,
 * CONFIG_READ .. IO_WRITE) with @size bytes to read or @data to write,
 * or a completion.  PF_OK, PF_ERR_INVALID if it does not fit one, or
 * PF_ERR_NOMEM.
 */
int pf_regrec_put_request(struct pf_buf *o, int kind, uint32_t tag,
			  uint32_t bar, uint64_t off, const void *data,
			  uint32_t size);
int pf_regrec_put_completion(struct pf_buf *o, uint32_t tag,
			     Pciefw__Status status, const void *data,
			     uint32_t size);

/*
 * A register access as a record when @record and it fits one, else as
 * its protobuf frame (msg.h): what a sender on the rings calls.  @data is
 * NULL for reads, whose @size is the bytes to read.
 */
int pf_put_access(struct pf_buf *o, bool record, int kind, uint32_t tag,
		  uint32_t bar, uint64_t off, const void *data, uint32_t size);
int pf_put_completion_or_record(struct pf_buf *o, bool record, uint32_t tag,
				Pciefw__Status status, const void *data,
				uint32_t size);

/* The message a record stands for, in storage of its own. */
struct pf_regrec_msg {
	PfMessage m;
	union {
		Pciefw__ConfigRead config_read;
		Pciefw__ConfigWrite config_write;
		Pciefw__MemRead mem_read;
		Pciefw__MemWrite mem_write;
		Pciefw__IoRead io_read;
		Pciefw__IoWrite io_write;
		Pciefw__Completion completion;
	} u;
	uint8_t data[PF_REGREC_DATA];
};

/*
 * Read the record @rec into the message it stands for.  PF_OK;
 * PF_ERR_DECODE for a malformed record (a marker byte other than 0x80,
 * a kind not in 11.7's table, non-zero bytes where 11.7 says zero:
 * ERROR_BAD_FRAME); PF_ERR_INVALID for a size a record cannot carry (above
 * 8, or 0 for a request).  The message's own rules (3.3) are the
 * caller's (pf_msg_validate).  @err says why.
 */
int pf_regrec_decode(const uint8_t rec[PF_REGREC_SIZE],
		     struct pf_regrec_msg *out, char *err, size_t errlen);

/* Is @kind a request kind (host to endpoint) a record may carry? */
bool pf_regrec_is_request(int kind);

/*
 * The protobuf frame body of the message @rec stands for, appended to
 * @o without a length prefix (for traces, spec 6, and for requests held
 * behind a deferred read): PF_OK, or the error of pf_regrec_decode().
 */
int pf_regrec_to_body(const uint8_t rec[PF_REGREC_SIZE], struct pf_buf *o);

#endif /* PCIEFW_REGREC_H */
