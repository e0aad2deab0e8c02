/*
 * Where two messages' data first differ, shown as a short hex dump of
 * both around that byte: a divergence in a 590-byte frame then says which
 * byte, not only that the first 16 bytes of each look alike.
 */
#include <stdio.h>

#include "replay.h"

#define ROW   16u     /* bytes per dump line */
#define ROWS  2u      /* lines: the first difference's, and the next */

/* The data field of the kinds that carry one; NULL for the others. */
static const ProtobufCBinaryData *data_of(const PfMessage *m)
{
	switch (m->body_case) {
	case PCIEFW__MESSAGE__BODY_CONFIG_WRITE: return &m->config_write->data;
	case PCIEFW__MESSAGE__BODY_MEM_WRITE: return &m->mem_write->data;
	case PCIEFW__MESSAGE__BODY_IO_WRITE: return &m->io_write->data;
	case PCIEFW__MESSAGE__BODY_COMPLETION: return &m->completion->data;
	case PCIEFW__MESSAGE__BODY_DMA_WRITE: return &m->dma_write->data;
	default: return NULL;
	}
}

/* Byte @i of both: equal (or both past their end)? */
static bool same_at(const ProtobufCBinaryData *a, const ProtobufCBinaryData *b,
		    size_t i)
{
	if (i >= a->len || i >= b->len)
		return i >= a->len && i >= b->len;
	return a->data[i] == b->data[i];
}

/* The ROW bytes of @d from @from ("--" past its end). */
static void dump_row(FILE *f, const char *who, const ProtobufCBinaryData *d,
		     size_t from)
{
	fprintf(f, "    %-8s 0x%04zx:", who, from);
	for (size_t i = from; i < from + ROW; i++) {
		fputs(i - from == ROW / 2 ? "  " : " ", f);
		if (i < d->len)
			fprintf(f, "%02x", d->data[i]);
		else
			fputs("--", f);
	}
	fputc('\n', f);
}

/* Carets under the bytes of the row from @from that differ. */
static void mark_row(FILE *f, const ProtobufCBinaryData *a,
		     const ProtobufCBinaryData *b, size_t from)
{
	size_t end = from + ROW;

	while (end > from && same_at(a, b, end - 1))
		end--;
	fprintf(f, "%19s", "");
	for (size_t i = from; i < end; i++) {
		fputs(i - from == ROW / 2 ? "  " : " ", f);
		fputs(same_at(a, b, i) ? "  " : "^^", f);
	}
	fputc('\n', f);
}

bool rp_print_data_diff(FILE *f, const PfMessage *want, const PfMessage *got)
{
	const ProtobufCBinaryData *a, *b;
	size_t first = 0, longer, row;

	if (want->body_case != got->body_case)
		return false;
	a = data_of(want);
	b = data_of(got);
	if (!a || !b)
		return false;
	longer = a->len > b->len ? a->len : b->len;
	while (first < longer && same_at(a, b, first))
		first++;
	if (first == longer)
		return false;
	fprintf(f, "  data: first difference at byte %zu (0x%zx) of %zu recorded, "
		"%zu live:\n", first, first, a->len, b->len);
	row = first / ROW * ROW;
	for (unsigned n = 0; n < ROWS && row < longer; n++, row += ROW) {
		dump_row(f, "expected", a, row);
		dump_row(f, "actual", b, row);
		mark_row(f, a, b, row);
	}
	return true;
}
