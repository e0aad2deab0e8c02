/*
 * pcapng trace writer and reader; see trace.h and spec 6.
 * Block layouts follow the pcapng specification (draft-ietf-opsawg-pcapng).
 */
#include "trace.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "frame.h"
#include "pciefw.h"
#include "regrec.h"

#define BT_SHB  0x0A0D0D0Au
#define BT_IDB  0x00000001u
#define BT_EPB  0x00000006u
#define BOM     0x1A2B3C4Du
#define BOM_BE  0x4D3C2B1Au

#define OPT_END       0
#define OPT_SHB_APP   4
#define OPT_IF_NAME   2
#define OPT_IF_TSRES  9

#define MAX_IFACES    16

struct pf_trace_writer {
	FILE *f;
	char *vbuf;
	char *path;
	char *recorder;
	uint64_t written;       /* bytes in the current file, headers included */
	uint64_t records;       /* records in the current file */
	uint64_t max_bytes;     /* 0: no limit */
	unsigned keep;          /* rotated files kept */
};

struct pf_trace_reader {
	FILE *f;
	uint8_t *block;
	size_t cap;
	uint64_t index;          /* records read so far */
	bool all_types;
	/* Per interface of the current section: resolution, or 0 if absent. */
	uint32_t n_ifaces;
	uint64_t ticks_per_sec[MAX_IFACES];
	bool is_ours[MAX_IFACES];
};

uint64_t pf_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static size_t pad4(size_t n)
{
	return (n + 3) & ~(size_t)3;
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, 4);   /* pcapng sections we write are little-endian */
}

static uint32_t get32(const uint8_t *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

/* Append an option (code, length, value padded to 4) at @p; returns bytes. */
static size_t put_option(uint8_t *p, uint16_t code, const void *val, uint16_t len)
{
	memcpy(p, &code, 2);
	memcpy(p + 2, &len, 2);
	memset(p + 4, 0, pad4(len));
	if (len)
		memcpy(p + 4, val, len);
	return 4 + pad4(len);
}

static int write_block(FILE *f, uint32_t type, const uint8_t *body, size_t len)
{
	uint8_t hdr[8];
	uint32_t total = (uint32_t)(12 + len);

	put32(hdr, type);
	put32(hdr + 4, total);
	if (fwrite(hdr, 1, 8, f) != 8 || fwrite(body, 1, len, f) != len ||
	    fwrite(&total, 1, 4, f) != 4)
		return PF_ERR_IO;
	return PF_OK;
}

static int write_headers(FILE *f, const char *recorder, uint64_t *written)
{
	uint8_t b[512];
	size_t n = 0;
	uint16_t u16;
	int64_t section_len = -1;
	uint8_t tsres = 9;   /* nanoseconds */
	size_t rlen = strlen(recorder);

	if (rlen > 200)
		rlen = 200;
	/* Section Header Block. */
	put32(b, BOM);
	u16 = 1;
	memcpy(b + 4, &u16, 2);
	u16 = 0;
	memcpy(b + 6, &u16, 2);
	memcpy(b + 8, &section_len, 8);
	n = 16;
	n += put_option(b + n, OPT_SHB_APP, recorder, (uint16_t)rlen);
	n += put_option(b + n, OPT_END, NULL, 0);
	if (write_block(f, BT_SHB, b, n))
		return PF_ERR_IO;
	*written += 12 + n;
	/* Interface Description Block. */
	u16 = PF_TRACE_LINKTYPE;
	memcpy(b, &u16, 2);
	memset(b + 2, 0, 2);
	put32(b + 4, 0);     /* snaplen: unlimited */
	n = 8;
	n += put_option(b + n, OPT_IF_NAME, "pciefw", 6);
	n += put_option(b + n, OPT_IF_TSRES, &tsres, 1);
	n += put_option(b + n, OPT_END, NULL, 0);
	*written += 12 + n;
	return write_block(f, BT_IDB, b, n);
}

struct pf_trace_writer *pf_trace_create(const char *path, const char *recorder,
					char *err, size_t errlen)
{
	struct pf_trace_writer *w = calloc(1, sizeof(*w));

	if (!w) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	w->f = fopen(path, "wbe");
	if (!w->f) {
		snprintf(err, errlen, "cannot create trace '%s': %s", path,
			 strerror(errno));
		free(w);
		return NULL;
	}
	w->path = strdup(path);
	w->recorder = strdup(recorder ? recorder : "pciefw");
	/* A large buffer keeps capture to one write(2) per many messages. */
	w->vbuf = malloc(1 << 20);
	if (w->vbuf)
		setvbuf(w->f, w->vbuf, _IOFBF, 1 << 20);
	if (!w->path || !w->recorder ||
	    write_headers(w->f, recorder ? recorder : "pciefw", &w->written)) {
		snprintf(err, errlen, "cannot write trace '%s': %s", path,
			 strerror(errno));
		pf_trace_close(w);
		return NULL;
	}
	return w;
}

void pf_trace_set_limit(struct pf_trace_writer *w, uint64_t max_bytes,
			unsigned keep)
{
	w->max_bytes = max_bytes;
	w->keep = keep ? keep : 1;
}

/* FILE -> FILE.1 -> FILE.2 ...; start FILE afresh. */
static int rotate(struct pf_trace_writer *w)
{
	size_t n = strlen(w->path) + 16;
	char *from = malloc(n), *to = malloc(n);
	int r = PF_OK;

	if (!from || !to || fclose(w->f)) {
		w->f = NULL;
		r = PF_ERR_IO;
		goto out;
	}
	w->f = NULL;
	for (unsigned i = w->keep; i > 1; i--) {
		snprintf(from, n, "%s.%u", w->path, i - 1);
		snprintf(to, n, "%s.%u", w->path, i);
		rename(from, to);      /* a missing older file is fine */
	}
	snprintf(to, n, "%s.1", w->path);
	if (rename(w->path, to))
		r = PF_ERR_IO;
	w->f = fopen(w->path, "wbe");
	if (!w->f) {
		r = PF_ERR_IO;
		goto out;
	}
	if (w->vbuf)
		setvbuf(w->f, w->vbuf, _IOFBF, 1 << 20);
	w->written = 0;
	w->records = 0;
	if (write_headers(w->f, w->recorder, &w->written))
		r = PF_ERR_IO;
out:
	free(from);
	free(to);
	return r;
}

/* The bytes of a record of @type holding @len bytes of data. */
static uint32_t record_total(enum pf_trace_type type, size_t len)
{
	size_t prefix = type == PF_REC_MESSAGE ? PF_FRAME_HEADER : 0;

	return (uint32_t)(8 + 20 + pad4(PF_TRACE_PSEUDO_LEN + prefix + len) + 4);
}

/*
 * One Enhanced Packet Block: pseudo-header, then (MESSAGE) a length prefix
 * for @data, then @data.
 */
static int write_record(struct pf_trace_writer *w, uint64_t ts_ns,
			enum pf_dir dir, enum pf_trace_type type,
			uint8_t flags, const uint8_t *data, size_t len)
{
	size_t prefix = type == PF_REC_MESSAGE ? PF_FRAME_HEADER : 0;
	uint8_t hdr[28 + PF_TRACE_PSEUDO_LEN + PF_FRAME_HEADER];
	size_t hlen = 28 + PF_TRACE_PSEUDO_LEN + prefix;
	size_t cap = PF_TRACE_PSEUDO_LEN + prefix + len;
	size_t padded = pad4(cap);
	uint32_t total = record_total(type, len);
	/* Room kept for the note that may follow (spec 6). */
	uint32_t reserve = type == PF_REC_NOTE ? 0 :
			   record_total(PF_REC_NOTE, PF_TRACE_MAX_NOTE);
	static const uint8_t zeros[4];

	if (len > PF_TRACE_MAX_BLOCK - 64)
		return PF_ERR_OVERSIZE;
	if (!w->f)
		return PF_ERR_IO;
	/*
	 * Rotate before the limit is crossed; one record per file at least.
	 * A note never starts a file: it is about the record before it, which
	 * left room for it.
	 */
	if (type != PF_REC_NOTE && w->max_bytes &&
	    w->written + total + reserve > w->max_bytes && w->records &&
	    rotate(w))
		return PF_ERR_IO;
	w->written += total;
	w->records++;
	put32(hdr, BT_EPB);
	put32(hdr + 4, total);
	put32(hdr + 8, 0);                          /* interface 0 */
	put32(hdr + 12, (uint32_t)(ts_ns >> 32));
	put32(hdr + 16, (uint32_t)ts_ns);
	put32(hdr + 20, (uint32_t)cap);
	put32(hdr + 24, (uint32_t)cap);
	hdr[28] = PF_TRACE_PSEUDO_VERSION;
	hdr[29] = (uint8_t)dir;
	hdr[30] = (uint8_t)type;
	hdr[31] = flags;
	if (prefix)
		pf_frame_put_header(hdr + 32, (uint32_t)len);
	if (fwrite(hdr, 1, hlen, w->f) != hlen ||
	    fwrite(data, 1, len, w->f) != len ||
	    fwrite(zeros, 1, padded - cap, w->f) != padded - cap ||
	    fwrite(&total, 1, 4, w->f) != 4)
		return PF_ERR_IO;
	return PF_OK;
}

int pf_trace_write(struct pf_trace_writer *w, uint64_t ts_ns, enum pf_dir dir,
		   const uint8_t *body, size_t body_len)
{
	return write_record(w, ts_ns, dir, PF_REC_MESSAGE, 0, body, body_len);
}

int pf_trace_write_session(struct pf_trace_writer *w, uint64_t ts_ns,
			   const char *text)
{
	size_t len = strlen(text);

	return write_record(w, ts_ns, PF_DIR_TO_ENDPOINT, PF_REC_SESSION, 0,
			    (const uint8_t *)text, len < 1024 ? len : 1024);
}

int pf_trace_write_regrec(struct pf_trace_writer *w, uint64_t ts_ns,
			  enum pf_dir dir, const uint8_t *rec)
{
	struct pf_buf body;
	int r;

	pf_buf_init(&body);
	r = pf_regrec_to_body(rec, &body);
	if (r == PF_OK)
		r = write_record(w, ts_ns, dir, PF_REC_MESSAGE,
				 PF_TRACE_FLAG_REGREC, pf_buf_peek(&body),
				 pf_buf_used(&body));
	else if (r != PF_ERR_NOMEM)
		r = pf_trace_write_malformed(w, ts_ns, dir, rec, PF_REGREC_SIZE);
	pf_buf_free(&body);
	return r;
}

void pf_trace_write_frames(struct pf_trace_writer *w, uint64_t ts_ns,
			   enum pf_dir dir, const uint8_t *p, size_t len)
{
	const uint8_t *end = p + len;

	while (w && (size_t)(end - p) >= PF_FRAME_HEADER) {
		uint32_t n = pf_frame_get_header(p);

		/* No frame is that long: a binary register record (11.7). */
		if (pf_regrec_starts(p)) {
			if ((size_t)(end - p) < PF_REGREC_SIZE)
				break;
			pf_trace_write_regrec(w, ts_ns, dir, p);
			p += PF_REGREC_SIZE;
			continue;
		}

		if (n > (size_t)(end - p) - PF_FRAME_HEADER)
			break;
		pf_trace_write(w, ts_ns, dir, p + PF_FRAME_HEADER, n);
		p += PF_FRAME_HEADER + n;
	}
}

int pf_trace_write_malformed(struct pf_trace_writer *w, uint64_t ts_ns,
			     enum pf_dir dir, const uint8_t *raw, size_t len)
{
	return write_record(w, ts_ns, dir, PF_REC_MALFORMED, 0, raw,
			    len < PF_TRACE_MAX_MALFORMED ? len : PF_TRACE_MAX_MALFORMED);
}

int pf_trace_write_note(struct pf_trace_writer *w, uint64_t ts_ns,
			enum pf_dir dir, const char *text)
{
	size_t len = strlen(text);

	return write_record(w, ts_ns, dir, PF_REC_NOTE, 0, (const uint8_t *)text,
			    len < PF_TRACE_MAX_NOTE ? len : PF_TRACE_MAX_NOTE);
}

int pf_trace_flush(struct pf_trace_writer *w)
{
	return !w->f || fflush(w->f) ? PF_ERR_IO : PF_OK;
}

int pf_trace_close(struct pf_trace_writer *w)
{
	int r = PF_OK;

	if (!w)
		return r;
	if (w->f && fclose(w->f))
		r = PF_ERR_IO;
	free(w->vbuf);
	free(w->path);
	free(w->recorder);
	free(w);
	return r;
}

/* @read: records read so far; the failure is in the next one. */
static int reader_fail(char *err, size_t errlen, int code, const char *msg,
		       uint64_t read)
{
	snprintf(err, errlen, "%s (at record %llu)", msg,
		 (unsigned long long)read + 1);
	return code;
}

/*
 * Read one block into r->block.  PF_EOF if the file ends cleanly before
 * the block, PF_ERR_TRUNCATED if it ends inside it.
 */
static int read_block(struct pf_trace_reader *r, uint32_t *type, uint32_t *len,
		      char *err, size_t errlen)
{
	uint8_t hdr[8];
	size_t n = fread(hdr, 1, 8, r->f);

	if (n == 0 && feof(r->f))
		return PF_EOF;
	if (n < 8)
		return reader_fail(err, errlen, PF_ERR_TRUNCATED,
				   "trace ends inside a block header", r->index);
	*type = get32(hdr);
	*len = get32(hdr + 4);
	if (*len < 12 || (*len & 3) || *len > PF_TRACE_MAX_BLOCK)
		return reader_fail(err, errlen, PF_ERR_CORRUPT,
				   "block with an impossible length", r->index);
	if (*len > r->cap) {
		uint8_t *p = realloc(r->block, *len);

		if (!p)
			return reader_fail(err, errlen, PF_ERR_NOMEM,
					   "out of memory", r->index);
		r->block = p;
		r->cap = *len;
	}
	memcpy(r->block, hdr, 8);
	if (fread(r->block + 8, 1, *len - 8, r->f) != *len - 8)
		return reader_fail(err, errlen, PF_ERR_TRUNCATED,
				   "trace ends inside a block", r->index);
	if (get32(r->block + *len - 4) != *len)
		return reader_fail(err, errlen, PF_ERR_CORRUPT,
				   "block trailer does not match its header",
				   r->index);
	return PF_OK;
}

static int parse_shb(struct pf_trace_reader *r, uint32_t len, char *err,
		     size_t errlen)
{
	uint32_t bom;
	uint16_t major;

	if (len < 28)
		return reader_fail(err, errlen, PF_ERR_CORRUPT,
				   "section header block too short", r->index);
	bom = get32(r->block + 8);
	if (bom == BOM_BE)
		return reader_fail(err, errlen, PF_ERR_FORMAT,
				   "big-endian pcapng sections are not supported",
				   r->index);
	if (bom != BOM)
		return reader_fail(err, errlen, PF_ERR_CORRUPT,
				   "bad byte-order magic in section header", r->index);
	memcpy(&major, r->block + 12, 2);
	if (major != 1)
		return reader_fail(err, errlen, PF_ERR_FORMAT,
				   "unsupported pcapng major version", r->index);
	r->n_ifaces = 0;
	return PF_OK;
}

/* Power-of-ten or power-of-two resolution from if_tsresol (default 10^-6). */
static uint64_t tsresol_ticks(uint8_t v)
{
	uint64_t t = 1;
	unsigned e = v & 0x7f;

	if (v & 0x80)
		return e < 63 ? 1ull << e : 0;
	if (e > 19)
		return 0;
	while (e--)
		t *= 10;
	return t;
}

static int parse_idb(struct pf_trace_reader *r, uint32_t len, char *err,
		     size_t errlen)
{
	uint16_t linktype;
	uint64_t ticks = 1000000;
	size_t off = 16, end = len - 4;

	if (len < 20)
		return reader_fail(err, errlen, PF_ERR_CORRUPT,
				   "interface description block too short", r->index);
	if (r->n_ifaces >= MAX_IFACES)
		return reader_fail(err, errlen, PF_ERR_CORRUPT,
				   "too many interfaces", r->index);
	memcpy(&linktype, r->block + 8, 2);
	while (off + 4 <= end) {
		uint16_t code, olen;

		memcpy(&code, r->block + off, 2);
		memcpy(&olen, r->block + off + 2, 2);
		if (code == OPT_END)
			break;
		if (off + 4 + pad4(olen) > end)
			return reader_fail(err, errlen, PF_ERR_CORRUPT,
					   "interface option overruns its block",
					   r->index);
		if (code == OPT_IF_TSRES && olen == 1)
			ticks = tsresol_ticks(r->block[off + 4]);
		off += 4 + pad4(olen);
	}
	if (!ticks)
		return reader_fail(err, errlen, PF_ERR_CORRUPT,
				   "unusable timestamp resolution", r->index);
	r->ticks_per_sec[r->n_ifaces] = ticks;
	r->is_ours[r->n_ifaces] = linktype == PF_TRACE_LINKTYPE;
	r->n_ifaces++;
	if (linktype != PF_TRACE_LINKTYPE)
		return reader_fail(err, errlen, PF_ERR_FORMAT,
				   "capture is not a pciefw trace (wrong link type)",
				   r->index);
	return PF_OK;
}

static uint64_t ticks_to_ns(uint64_t ticks, uint64_t per_sec)
{
	if (per_sec == 1000000000ull)
		return ticks;
	return (ticks / per_sec) * 1000000000ull +
	       (ticks % per_sec) * 1000000000ull / per_sec;
}

static int parse_epb(struct pf_trace_reader *r, uint32_t len,
		     struct pf_trace_record *rec, char *err, size_t errlen)
{
	const uint8_t *b = r->block;
	uint32_t iface, cap;
	const uint8_t *data;

	if (len < 32)
		return reader_fail(err, errlen, PF_ERR_CORRUPT,
				   "packet block too short", r->index);
	iface = get32(b + 8);
	cap = get32(b + 20);
	if (iface >= r->n_ifaces)
		return reader_fail(err, errlen, PF_ERR_CORRUPT,
				   "packet on an undeclared interface", r->index);
	if (cap > len - 32)
		return reader_fail(err, errlen, PF_ERR_CORRUPT,
				   "packet longer than its block", r->index);
	data = b + 28;
	if (cap < PF_TRACE_PSEUDO_LEN || data[0] != PF_TRACE_PSEUDO_VERSION ||
	    data[1] > PF_DIR_TO_HOST || data[2] > PF_REC_NOTE)
		return reader_fail(err, errlen, PF_ERR_CORRUPT,
				   "bad pciefw record header", r->index);
	rec->type = (enum pf_trace_type)data[2];
	if (rec->type == PF_REC_MESSAGE &&
	    (cap < PF_TRACE_PSEUDO_LEN + PF_FRAME_HEADER ||
	     pf_frame_get_header(data + PF_TRACE_PSEUDO_LEN) !=
	     cap - PF_TRACE_PSEUDO_LEN - PF_FRAME_HEADER))
		return reader_fail(err, errlen, PF_ERR_CORRUPT,
				   "frame length disagrees with the record",
				   r->index);
	rec->index = ++r->index;
	rec->ts_ns = ticks_to_ns((uint64_t)get32(b + 12) << 32 | get32(b + 16),
				 r->ticks_per_sec[iface]);
	rec->dir = (enum pf_dir)data[1];
	rec->regrec = rec->type == PF_REC_MESSAGE &&
		      (data[3] & PF_TRACE_FLAG_REGREC);
	if (rec->type == PF_REC_MESSAGE) {
		rec->body = data + PF_TRACE_PSEUDO_LEN + PF_FRAME_HEADER;
		rec->body_len = cap - PF_TRACE_PSEUDO_LEN - PF_FRAME_HEADER;
	} else {
		rec->body = data + PF_TRACE_PSEUDO_LEN;
		rec->body_len = cap - PF_TRACE_PSEUDO_LEN;
	}
	return PF_OK;
}

struct pf_trace_reader *pf_trace_open(const char *path, char *err, size_t errlen)
{
	struct pf_trace_reader *r = calloc(1, sizeof(*r));
	uint8_t magic[4];

	if (!r) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	r->f = fopen(path, "rbe");
	if (!r->f) {
		snprintf(err, errlen, "cannot open trace '%s': %s", path,
			 strerror(errno));
		free(r);
		return NULL;
	}
	size_t n = fread(magic, 1, 4, r->f);
	if (n == 0) {
		snprintf(err, errlen, "'%s' is empty, not a pciefw trace", path);
		goto fail;
	}
	if (n < 4 || get32(magic) != BT_SHB) {
		snprintf(err, errlen,
			 "'%s' is not a pcapng file (a pciefw trace)", path);
		goto fail;
	}
	rewind(r->f);
	return r;
fail:
	pf_trace_close_reader(r);
	return NULL;
}

int pf_trace_next(struct pf_trace_reader *r, struct pf_trace_record *rec,
		  char *err, size_t errlen)
{
	for (;;) {
		uint32_t type = 0, len = 0;
		int ret = read_block(r, &type, &len, err, errlen);

		if (ret)
			return ret;
		switch (type) {
		case BT_SHB:
			ret = parse_shb(r, len, err, errlen);
			break;
		case BT_IDB:
			ret = parse_idb(r, len, err, errlen);
			break;
		case BT_EPB:
			ret = parse_epb(r, len, rec, err, errlen);
			if (ret || rec->type == PF_REC_MESSAGE || r->all_types)
				return ret;
			break;
		default:
			ret = PF_OK;   /* statistics, comments, ...: skipped */
		}
		if (ret)
			return ret;
	}
}

void pf_trace_want_all(struct pf_trace_reader *r)
{
	r->all_types = true;
}

void pf_trace_close_reader(struct pf_trace_reader *r)
{
	if (!r)
		return;
	if (r->f)
		fclose(r->f);
	free(r->block);
	free(r);
}
