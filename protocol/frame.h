/*
 * Stream framing (spec 1.2): every message is a 4-byte little-endian length
 * followed by that many bytes of encoded Message.
 *
 * The decoder is incremental: it accepts the stream in pieces of any size,
 * down to one byte, and never holds more than one frame.
 */
#ifndef PCIEFW_FRAME_H
#define PCIEFW_FRAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PF_FRAME_HEADER 4u

struct pf_frame_decoder {
	uint8_t *buf;        /* header and body of the frame being gathered */
	size_t cap;
	size_t have;         /* bytes of the current frame gathered so far */
	size_t max_frame;    /* largest body accepted */
	int error;           /* sticky: once broken, a stream stays broken */
	/*
	 * Binary register records (spec 11.7) may come between frames: a
	 * length word with bit 31 set begins one, of PF_FRAME_RECORD bytes.
	 */
	bool records;
	bool record;         /* what the last PF_OK returned is one */
};

/* A binary register record's size (regrec.h). */
#define PF_FRAME_RECORD 24u

int pf_frame_decoder_init(struct pf_frame_decoder *d, size_t max_frame);
void pf_frame_decoder_free(struct pf_frame_decoder *d);
/* Raise or lower the limit, e.g. after the handshake negotiated it. */
void pf_frame_decoder_set_max(struct pf_frame_decoder *d, size_t max_frame);

/* From now on, take binary register records between frames (or not). */
void pf_frame_decoder_records(struct pf_frame_decoder *d, bool on);

/*
 * Feed up to @len bytes of stream.  Sets *@used to the bytes taken.
 * Returns PF_OK with (*@frame, *@frame_len) pointing at one complete frame
 * body (valid until the next call) -- or, with d->record set, at a whole
 * binary register record, its marker included --, PF_AGAIN once all input is taken
 * without completing a frame, or PF_ERR_OVERSIZE / PF_ERR_ZERO_LENGTH as
 * soon as a bad length prefix is seen.  Errors are sticky.
 */
int pf_frame_decoder_push(struct pf_frame_decoder *d,
			  const uint8_t *data, size_t len, size_t *used,
			  const uint8_t **frame, size_t *frame_len);

/* At end of stream: PF_EOF if it ended between frames, else PF_ERR_TRUNCATED. */
int pf_frame_decoder_finish(const struct pf_frame_decoder *d);

static inline void pf_frame_put_header(uint8_t *p, uint32_t len)
{
	p[0] = (uint8_t)len;
	p[1] = (uint8_t)(len >> 8);
	p[2] = (uint8_t)(len >> 16);
	p[3] = (uint8_t)(len >> 24);
}

static inline uint32_t pf_frame_get_header(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 |
	       (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

#endif /* PCIEFW_FRAME_H */
