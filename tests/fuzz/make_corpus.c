/*
 * Write the fuzzers' binary seed corpora (the device-options seeds are
 * text, committed as they are).  Usage:
 *   make-corpus DIR               frames for fuzz-decoder (tests/fuzz/corpus):
 *                                 one file per sample message (framed)
 *   make-corpus trace DIR         trace files for fuzz-trace
 *   make-corpus description DIR   DeviceDescription bodies for fuzz-description
 */
#include <glib.h>
#include <stdio.h>
#include <string.h>

#include "codec.h"
#include "frame.h"
#include "handshake.h"
#include "msg.h"
#include "msgs.h"
#include "trace.h"

static const char *dir;

static void save(const char *name, const void *data, size_t len)
{
	char *p = g_strdup_printf("%s/%s", dir, name);

	if (!g_file_set_contents(p, data, (gssize)len, NULL)) {
		fprintf(stderr, "make-corpus: cannot write %s\n", p);
		exit(1);
	}
	g_free(p);
}

static int frames(void)
{
	struct pf_buf s;
	size_t off = 0;
	int n;

	pf_buf_init(&s);
	n = sample_stream(&s);
	for (int i = 0; i < n; i++) {
		uint32_t len = pf_frame_get_header(s.data + off);
		char *name = g_strdup_printf("msg-%02d", i);

		/* The largest samples would only slow the fuzzer down. */
		if (len < 4096)
			save(name, s.data + off, len + 4);
		g_free(name);
		off += 4 + len;
	}
	pf_buf_free(&s);
	return 0;
}

/* ---- Traces ---- */

static struct pf_trace_writer *trace_new(const char *name)
{
	char *p = g_strdup_printf("%s/%s", dir, name);
	char err[256];
	struct pf_trace_writer *w = pf_trace_create(p, "make-corpus", err, sizeof(err));

	if (!w) {
		fprintf(stderr, "make-corpus: %s\n", err);
		exit(1);
	}
	g_free(p);
	return w;
}

/* Each frame in @b (built by pf_put_*) as a message record. */
static void put_frames(struct pf_trace_writer *w, uint64_t *ts, enum pf_dir dir_,
		       struct pf_buf *b)
{
	for (size_t off = 0; off < b->len;) {
		uint32_t len = pf_frame_get_header(b->data + off);

		pf_trace_write(w, (*ts)++, dir_, b->data + off + 4, len);
		off += 4 + len;
	}
	b->len = 0;
}

/* One connection: session record, handshake, description, a read. */
static void session(struct pf_trace_writer *w, uint64_t *ts, const char *text)
{
	Pciefw__DeviceDescription d = PCIEFW__DEVICE_DESCRIPTION__INIT;
	Pciefw__Bar bar = PCIEFW__BAR__INIT, *bp = &bar;
	static const uint8_t junk[] = { 0, 0, 0, 0, 0xff, 0xfe };
	uint8_t v[4] = { 0x34, 0x12, 0x01, 0xfe };
	struct pf_hello_params hp;
	struct pf_buf b;

	pf_buf_init(&b);
	pf_trace_write_session(w, (*ts)++, text);
	pf_hello_defaults(&hp, "qemu");
	pf_put_hello(&b, &hp);
	put_frames(w, ts, PF_DIR_TO_ENDPOINT, &b);
	pf_hello_defaults(&hp, "pciefw-endpoint");
	pf_put_hello(&b, &hp);
	d.vendor_id = 0x1234;
	d.device_id = 0xfe01;
	bar.size = 4096;
	d.bars = &bp;
	d.n_bars = 1;
	d.intx_pin = 1;
	pf_put_description(&b, &d);
	put_frames(w, ts, PF_DIR_TO_HOST, &b);
	pf_put_reset(&b, 1, PCIEFW__RESET_KIND__RESET_FUNCTION);
	pf_put_mem_read(&b, 2, 0, 0, 4);
	put_frames(w, ts, PF_DIR_TO_ENDPOINT, &b);
	pf_put_completion(&b, 1, PCIEFW__STATUS__STATUS_SUCCESSFUL, NULL, 0);
	pf_put_completion(&b, 2, PCIEFW__STATUS__STATUS_SUCCESSFUL, v, 4);
	pf_put_dma_read(&b, 1, 0x1000, 8);
	put_frames(w, ts, PF_DIR_TO_HOST, &b);
	pf_put_completion(&b, 1, PCIEFW__STATUS__STATUS_UNSUPPORTED_REQUEST, NULL, 0);
	put_frames(w, ts, PF_DIR_TO_ENDPOINT, &b);
	pf_trace_write_malformed(w, (*ts)++, PF_DIR_TO_ENDPOINT, junk, sizeof(junk));
	pf_put_error(&b, PCIEFW__ERROR_CODE__ERROR_BAD_FRAME, "zero-length frame");
	put_frames(w, ts, PF_DIR_TO_HOST, &b);
	pf_buf_free(&b);
}

static char *load(const char *name, gsize *len)
{
	char *p = g_strdup_printf("%s/%s", dir, name), *data;

	if (!g_file_get_contents(p, &data, len, NULL))
		exit(1);
	g_free(p);
	return data;
}

static int traces(void)
{
	struct pf_trace_writer *w;
	struct pf_buf s;
	uint64_t ts = 1700000000000000000ull;
	gsize len, len2;
	char *a, *b2, *both;

	w = trace_new("trace-headers-only");
	pf_trace_close(w);

	w = trace_new("trace-session");
	session(w, &ts, "session 1: host connected (connection 1, on unix socket)");
	pf_trace_close(w);

	w = trace_new("trace-two-sessions");
	session(w, &ts, "session 1: host connected (connection 1, on unix socket)");
	session(w, &ts, "session 2: host connected (connection 2, on tcp socket)");
	pf_trace_close(w);

	/* Every sample message kind, as message records of both directions. */
	w = trace_new("trace-all-kinds");
	pf_buf_init(&s);
	sample_stream(&s);
	for (size_t off = 0; off < s.len;) {
		uint32_t flen = pf_frame_get_header(s.data + off);

		if (flen < 4096)
			pf_trace_write(w, ts++, (off & 1) ? PF_DIR_TO_HOST :
				       PF_DIR_TO_ENDPOINT, s.data + off + 4, flen);
		off += 4 + flen;
	}
	pf_buf_free(&s);
	pf_trace_close(w);

	/* Cut inside its last block, as when the recorder was killed. */
	a = load("trace-session", &len);
	save("trace-truncated", a, len - 10);
	/* Two sections, as when rotated pieces are concatenated. */
	b2 = load("trace-two-sessions", &len2);
	both = g_malloc(len + len2);
	memcpy(both, a, len);
	memcpy(both + len, b2, len2);
	save("trace-two-sections", both, len + len2);
	g_free(both);
	g_free(a);
	g_free(b2);
	return 0;
}

/* ---- Descriptions ---- */

static void desc(const char *name, Pciefw__DeviceDescription *d,
		 Pciefw__Bar *bars, size_t n_bars)
{
	Pciefw__Bar *bp[6];
	uint8_t out[1024];
	size_t len;

	for (size_t i = 0; i < n_bars; i++)
		bp[i] = &bars[i];
	d->bars = bp;
	d->n_bars = n_bars;
	len = pciefw__device_description__pack(d, out);
	save(name, out, len);
}

#define BAR(i, k, s, p) { PROTOBUF_C_MESSAGE_INIT(&pciefw__bar__descriptor), \
			  (i), PCIEFW__BAR_KIND__BAR_##k, (p), (s) }

static int descriptions(void)
{
	Pciefw__DeviceDescription d = PCIEFW__DEVICE_DESCRIPTION__INIT;
	Pciefw__Bar testdev[] = { BAR(0, MEM32, 4096, 0), BAR(1, MEM32, 4096, 0),
				  BAR(2, MEM64, 1 << 20, 1), BAR(4, IO, 32, 0) };
	Pciefw__Bar nic[] = { BAR(0, MEM32, 4096, 0), BAR(1, MEM32, 4096, 0) };
	Pciefw__Bar max[] = { BAR(0, MEM32, 1ull << 31, 0),
			      BAR(2, MEM64, 1ull << 40, 1), BAR(4, IO, 4, 0) };
	Pciefw__Bar six[] = { BAR(0, MEM32, 16, 0), BAR(1, MEM32, 32, 0),
			      BAR(2, MEM32, 64, 1), BAR(3, IO, 256, 0),
			      BAR(4, MEM32, 128, 0), BAR(5, IO, 4, 0) };

	d.vendor_id = 0x1234;
	desc("desc-minimal", &d, NULL, 0);

	d.device_id = 0xfe01;
	d.subsystem_vendor_id = 0x1234;
	d.subsystem_id = 1;
	d.class_code = 0xff0000;
	d.revision = 1;
	d.intx_pin = 1;
	d.msi_vectors = 4;
	d.msix_vectors = 8;
	d.msix_table_bar = 1;
	d.msix_pba_bar = 1;
	d.msix_pba_offset = 0x800;
	desc("desc-testdev", &d, testdev, 4);

	d.device_id = 0xfe02;
	d.class_code = 0x020000;
	d.msi_vectors = 1;
	d.msix_vectors = 3;
	desc("desc-nic", &d, nic, 2);

	/* Every field at its largest; table and PBA in different BARs. */
	d.vendor_id = 0xfffe;
	d.device_id = d.subsystem_vendor_id = d.subsystem_id = 0xffff;
	d.class_code = 0xffffff;
	d.revision = 0xff;
	d.intx_pin = 4;
	d.msi_vectors = 32;
	d.msix_vectors = 2048;
	d.msix_table_bar = 0;
	d.msix_table_offset = 0;
	d.msix_pba_bar = 2;
	d.msix_pba_offset = 0x8000;
	desc("desc-max", &d, max, 3);

	/* Six BARs; a 16-byte BAR holding exactly one table entry. */
	d.vendor_id = 0x1af4;
	d.msix_vectors = 1;
	d.msix_table_bar = 0;
	d.msix_pba_bar = 1;
	d.msix_pba_offset = 24;
	desc("desc-six-bars", &d, six, 6);

	/* Table and PBA back to back, ending at the BAR's end. */
	d.msix_vectors = 64;
	d.msix_table_bar = d.msix_pba_bar = 0;
	d.msix_table_offset = 4096 - 1024 - 8;
	d.msix_pba_offset = 4096 - 8;
	desc("desc-msix-tight", &d, nic, 2);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 2) {
		dir = argv[1];
		return frames();
	}
	if (argc == 3 && !strcmp(argv[1], "trace")) {
		dir = argv[2];
		return traces();
	}
	if (argc == 3 && !strcmp(argv[1], "description")) {
		dir = argv[2];
		return descriptions();
	}
	fprintf(stderr, "usage: make-corpus [trace|description] DIR\n");
	return 2;
}
