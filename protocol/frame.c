/* Incremental frame decoder; see frame.h and spec 1.2. */
#include "frame.h"

#include <stdlib.h>
#include <string.h>

#include "pciefw.h"

int pf_frame_decoder_init(struct pf_frame_decoder *d, size_t max_frame)
{
	memset(d, 0, sizeof(*d));
	d->max_frame = max_frame;
	return PF_OK;
}

void pf_frame_decoder_free(struct pf_frame_decoder *d)
{
	free(d->buf);
	memset(d, 0, sizeof(*d));
}

void pf_frame_decoder_set_max(struct pf_frame_decoder *d, size_t max_frame)
{
	d->max_frame = max_frame;
}

void pf_frame_decoder_records(struct pf_frame_decoder *d, bool on)
{
	d->records = on;
}

/* Bit 31 of a length word, where records are taken: one begins here. */
static bool is_record(const struct pf_frame_decoder *d, uint32_t word)
{
	return d->records && (word & 0x80000000u);
}

/* Bytes of the frame or record whose first word is @word, prefix included. */
static size_t total_of(const struct pf_frame_decoder *d, uint32_t word)
{
	return is_record(d, word) ? PF_FRAME_RECORD : PF_FRAME_HEADER + word;
}

static int check_length(struct pf_frame_decoder *d, uint32_t body)
{
	if (is_record(d, body))
		return PF_OK;
	if (body == 0)
		return d->error = PF_ERR_ZERO_LENGTH;
	if (body > d->max_frame)
		return d->error = PF_ERR_OVERSIZE;
	return PF_OK;
}

/* Grow the gather buffer lazily: most frames are tiny. */
static int ensure_cap(struct pf_frame_decoder *d, size_t need)
{
	if (need <= d->cap)
		return PF_OK;
	size_t cap = d->cap ? d->cap : 256;
	while (cap < need)
		cap *= 2;
	uint8_t *p = realloc(d->buf, cap);
	if (!p)
		return d->error = PF_ERR_NOMEM;
	d->buf = p;
	d->cap = cap;
	return PF_OK;
}

int pf_frame_decoder_push(struct pf_frame_decoder *d,
			  const uint8_t *data, size_t len, size_t *used,
			  const uint8_t **frame, size_t *frame_len)
{
	size_t taken = 0;
	int r;

	*used = 0;
	if (d->error)
		return d->error;

	/* Fast path: a whole frame at the start of the input, nothing gathered. */
	if (d->have == 0 && len >= PF_FRAME_HEADER) {
		uint32_t body = pf_frame_get_header(data);
		size_t total = total_of(d, body);

		r = check_length(d, body);
		if (r)
			return r;
		if (len >= total) {
			d->record = is_record(d, body);
			*frame = d->record ? data : data + PF_FRAME_HEADER;
			*frame_len = d->record ? total : body;
			*used = total;
			return PF_OK;
		}
	}

	if (d->have < PF_FRAME_HEADER) {
		size_t n = PF_FRAME_HEADER - d->have;

		if (n > len)
			n = len;
		r = ensure_cap(d, PF_FRAME_HEADER);
		if (r)
			return r;
		memcpy(d->buf + d->have, data, n);
		d->have += n;
		taken += n;
		if (d->have < PF_FRAME_HEADER) {
			*used = taken;
			return PF_AGAIN;
		}
		r = check_length(d, pf_frame_get_header(d->buf));
		if (r) {
			*used = taken;
			return r;
		}
	}

	size_t total = total_of(d, pf_frame_get_header(d->buf));
	size_t n = total - d->have;

	if (n > len - taken)
		n = len - taken;
	r = ensure_cap(d, total);
	if (r) {
		*used = taken;
		return r;
	}
	memcpy(d->buf + d->have, data + taken, n);
	d->have += n;
	taken += n;
	*used = taken;
	if (d->have < total)
		return PF_AGAIN;
	d->record = is_record(d, pf_frame_get_header(d->buf));
	*frame = d->record ? d->buf : d->buf + PF_FRAME_HEADER;
	*frame_len = d->record ? total : total - PF_FRAME_HEADER;
	d->have = 0;
	return PF_OK;
}

int pf_frame_decoder_finish(const struct pf_frame_decoder *d)
{
	if (d->error)
		return d->error;
	return d->have ? PF_ERR_TRUNCATED : PF_EOF;
}
