/*
 * Codec tests: every message kind round-trips with boundary values, and
 * pf_msg_validate() enforces each rule of docs/protocol.md section 3.
 */
#include <glib.h>
#include <string.h>

#include "codec.h"
#include "frame.h"
#include "msg.h"
#include "msgs.h"
#include "pciefw.h"

/* Decode every frame of the sample stream, re-encode it, compare bytes. */
static void test_roundtrip_every_kind(void)
{
	struct pf_buf in, again;
	struct pf_codec codec;
	bool seen[32] = { false };
	int n, count = 0;

	pf_buf_init(&in);
	pf_buf_init(&again);
	pf_codec_init(&codec);
	n = sample_stream(&in);
	for (size_t off = 0; off < in.len; count++) {
		uint32_t len = pf_frame_get_header(in.data + off);
		const uint8_t *body = in.data + off + PF_FRAME_HEADER;
		PfMessage *m;
		char err[200];

		g_assert_cmpint(pf_codec_decode(&codec, body, len, &m, err, sizeof(err)), ==, 0);
		g_assert_cmpint(pf_msg_validate(m, PCIEFW_DEFAULT_PAYLOAD, err, sizeof(err)),
				==, PF_OK);
		seen[m->body_case] = true;
		pf_buf_clear(&again);
		g_assert_cmpint(pf_codec_encode(m, &again), ==, 0);
		g_assert_cmpuint(again.len, ==, PF_FRAME_HEADER + len);
		g_assert_cmpmem(again.data, again.len, in.data + off, PF_FRAME_HEADER + len);
		off += PF_FRAME_HEADER + len;
	}
	g_assert_cmpint(count, ==, n);
	/* The sample covers every kind the .proto declares. */
	for (int k = PCIEFW__MESSAGE__BODY_HELLO; k <= PCIEFW__MESSAGE__BODY_BUS_MASTER; k++) {
		g_assert_true(seen[k]);
		g_assert_cmpstr(pf_msg_kind_name(k), !=, "unknown");
		g_assert_cmpint(pf_msg_kind_from_name(pf_msg_kind_name(k)), ==, k);
	}
	g_assert_true(seen[PCIEFW__MESSAGE__BODY_INTERRUPT_CONFIG]);
	g_assert_cmpstr(pf_msg_kind_name(PCIEFW__MESSAGE__BODY_INTERRUPT_CONFIG), ==,
			"interrupt_config");
	pf_codec_free(&codec);
	pf_buf_free(&in);
	pf_buf_free(&again);
}

static void test_fields_survive(void)
{
	struct pf_buf b;
	struct pf_codec c;
	PfMessage *m;
	uint8_t data[8] = { 0xef, 0xbe, 0xad, 0xde, 0, 0, 0, 0x80 };

	pf_buf_init(&b);
	pf_codec_init(&c);
	pf_put_mem_write(&b, 5, UINT64_MAX - 7, data, 8);
	g_assert_cmpint(pf_codec_decode(&c, b.data + 4, b.len - 4, &m, NULL, 0), ==, 0);
	g_assert_cmpint(m->body_case, ==, PCIEFW__MESSAGE__BODY_MEM_WRITE);
	g_assert_cmpuint(m->mem_write->bar, ==, 5);
	g_assert_cmphex(m->mem_write->offset, ==, UINT64_MAX - 7);
	g_assert_cmphex(pf_le_load(m->mem_write->data.data, 8), ==, 0x80000000deadbeefull);
	g_assert_cmpint(pf_msg_validate(m, 8, NULL, 0), ==, PF_OK);

	pf_buf_clear(&b);
	pf_put_completion(&b, UINT32_MAX, PCIEFW__STATUS__STATUS_COMPLETER_ABORT, NULL, 0);
	g_assert_cmpint(pf_codec_decode(&c, b.data + 4, b.len - 4, &m, NULL, 0), ==, 0);
	g_assert_cmpuint(m->completion->tag, ==, UINT32_MAX);
	g_assert_cmpint(m->completion->status, ==, PCIEFW__STATUS__STATUS_COMPLETER_ABORT);
	uint32_t tag = 0;
	g_assert_true(pf_msg_tag(m, &tag));
	g_assert_cmpuint(tag, ==, UINT32_MAX);
	pf_codec_free(&c);
	pf_buf_free(&b);
}

/* Build a message with @put, then check what validate says about it. */
static int validate_one(struct pf_buf *b, uint32_t max_payload, char *err, size_t errlen)
{
	struct pf_codec c;
	PfMessage *m;
	int r;

	pf_codec_init(&c);
	r = pf_codec_decode(&c, b->data + 4, b->len - 4, &m, err, errlen);
	if (r == PF_OK)
		r = pf_msg_validate(m, max_payload, err, errlen);
	pf_codec_free(&c);
	pf_buf_clear(b);
	return r;
}

static void test_validate_rules(void)
{
	struct pf_buf b;
	char err[256];
	uint8_t d[16] = { 0 };

	pf_buf_init(&b);
	pf_put_mem_read(&b, 1, 6, 0, 4);
	g_assert_cmpint(validate_one(&b, 64, err, sizeof(err)), ==, PF_ERR_INVALID);
	g_assert_nonnull(strstr(err, "BAR index 6"));
	pf_put_mem_read(&b, 1, 0, 0, 0);
	g_assert_cmpint(validate_one(&b, 64, err, sizeof(err)), ==, PF_ERR_INVALID);
	pf_put_mem_read(&b, 1, 0, 0, 65);
	g_assert_cmpint(validate_one(&b, 64, err, sizeof(err)), ==, PF_ERR_LIMIT);
	g_assert_nonnull(strstr(err, "max payload"));
	pf_put_mem_read(&b, 1, 0, 0, 64);
	g_assert_cmpint(validate_one(&b, 64, err, sizeof(err)), ==, PF_OK);
	pf_put_mem_read(&b, 1, 0, UINT64_MAX, 2);
	g_assert_cmpint(validate_one(&b, 64, err, sizeof(err)), ==, PF_ERR_INVALID);
	pf_put_mem_write(&b, 0, 0, d, 16);
	g_assert_cmpint(validate_one(&b, 8, err, sizeof(err)), ==, PF_ERR_LIMIT);
	pf_put_io_read(&b, 1, 4, 0, 8);
	g_assert_cmpint(validate_one(&b, 64, err, sizeof(err)), ==, PF_ERR_INVALID);
	pf_put_io_write(&b, 1, 4, 0, d, 3);
	g_assert_cmpint(validate_one(&b, 64, err, sizeof(err)), ==, PF_ERR_INVALID);
	pf_put_config_read(&b, 1, 4096, 4);
	g_assert_cmpint(validate_one(&b, 64, err, sizeof(err)), ==, PF_ERR_INVALID);
	pf_put_config_write(&b, 1, 0x40, d, 0);
	g_assert_cmpint(validate_one(&b, 64, err, sizeof(err)), ==, PF_ERR_INVALID);
	pf_put_completion(&b, 1, (Pciefw__Status)99, NULL, 0);
	g_assert_cmpint(validate_one(&b, 64, err, sizeof(err)), ==, PF_ERR_INVALID);
	g_assert_nonnull(strstr(err, "unknown completion status 99"));
	pf_put_completion(&b, 1, PCIEFW__STATUS__STATUS_UNSUPPORTED_REQUEST, d, 4);
	g_assert_cmpint(validate_one(&b, 64, err, sizeof(err)), ==, PF_ERR_INVALID);
	pf_put_reset(&b, 1, (Pciefw__ResetKind)7);
	g_assert_cmpint(validate_one(&b, 64, err, sizeof(err)), ==, PF_ERR_INVALID);
	pf_put_dma_read(&b, 1, 0, 65);
	g_assert_cmpint(validate_one(&b, 64, err, sizeof(err)), ==, PF_ERR_LIMIT);
	/* STATUS_TIMEOUT is a requester's verdict, never a wire status (3.5). */
	pf_put_completion(&b, 1, PCIEFW__STATUS__STATUS_TIMEOUT, NULL, 0);
	g_assert_cmpint(validate_one(&b, 64, err, sizeof(err)), ==, PF_ERR_INVALID);
	g_assert_nonnull(strstr(err, "STATUS_TIMEOUT"));
	pf_put_completion(&b, 1, PCIEFW__STATUS__STATUS_SUCCESSFUL, d, 16);
	g_assert_cmpint(validate_one(&b, 8, err, sizeof(err)), ==, PF_ERR_LIMIT);
	pf_buf_free(&b);
}

/* Each kind of failure maps to the ErrorCode of the table in spec 7.1. */
static void test_error_codes(void)
{
	g_assert_cmpint(pf_error_code(PF_ERR_ZERO_LENGTH), ==,
			PCIEFW__ERROR_CODE__ERROR_BAD_FRAME);
	g_assert_cmpint(pf_error_code(PF_ERR_DECODE), ==,
			PCIEFW__ERROR_CODE__ERROR_BAD_FRAME);
	g_assert_cmpint(pf_error_code(PF_ERR_OVERSIZE), ==,
			PCIEFW__ERROR_CODE__ERROR_LIMIT);
	g_assert_cmpint(pf_error_code(PF_ERR_LIMIT), ==,
			PCIEFW__ERROR_CODE__ERROR_LIMIT);
	g_assert_cmpint(pf_error_code(PF_ERR_INVALID), ==,
			PCIEFW__ERROR_CODE__ERROR_PROTOCOL);
	g_assert_cmpint(pf_error_code(PF_ERR_NO_HELLO), ==,
			PCIEFW__ERROR_CODE__ERROR_PROTOCOL);
	g_assert_cmpint(pf_error_code(PF_ERR_BAD_MAGIC), ==,
			PCIEFW__ERROR_CODE__ERROR_PROTOCOL);
	g_assert_cmpint(pf_error_code(PF_ERR_VERSION), ==,
			PCIEFW__ERROR_CODE__ERROR_VERSION);
	g_assert_cmpint(pf_error_code(PF_ERR_UNKNOWN_TAG), ==,
			PCIEFW__ERROR_CODE__ERROR_UNKNOWN_TAG);
	g_assert_cmpint(pf_error_code(PF_ERR_UNEXPECTED), ==,
			PCIEFW__ERROR_CODE__ERROR_UNEXPECTED);
	g_assert_cmpint(pf_error_code(PF_ERR_NOMEM), ==,
			PCIEFW__ERROR_CODE__ERROR_INTERNAL);
}

static void put_desc(struct pf_buf *b, uint32_t idx, Pciefw__BarKind kind,
		     uint64_t size, bool pref, uint32_t msix)
{
	Pciefw__DeviceDescription d = PCIEFW__DEVICE_DESCRIPTION__INIT;
	Pciefw__Bar bar = PCIEFW__BAR__INIT, *bp = &bar;

	d.vendor_id = 0x1234;
	bar.index = idx;
	bar.kind = kind;
	bar.size = size;
	bar.prefetchable = pref;
	d.bars = &bp;
	d.n_bars = 1;
	d.msix_vectors = msix;
	d.msix_table_bar = idx;
	d.msix_pba_bar = idx;
	d.msix_pba_offset = 0x800;
	pf_put_description(b, &d);
}

static void test_validate_description(void)
{
	struct pf_buf b;
	char err[256];

	pf_buf_init(&b);
	put_desc(&b, 0, PCIEFW__BAR_KIND__BAR_MEM32, 4096, false, 8);
	g_assert_cmpint(validate_one(&b, 64, err, sizeof(err)), ==, PF_OK);
	put_desc(&b, 0, PCIEFW__BAR_KIND__BAR_MEM32, 4095, false, 0);
	g_assert_cmpint(validate_one(&b, 64, err, sizeof(err)), ==, PF_ERR_INVALID);
	g_assert_nonnull(strstr(err, "power of two"));
	put_desc(&b, 5, PCIEFW__BAR_KIND__BAR_MEM64, 4096, false, 0);
	g_assert_cmpint(validate_one(&b, 64, err, sizeof(err)), ==, PF_ERR_INVALID);
	put_desc(&b, 0, PCIEFW__BAR_KIND__BAR_IO, 4096, false, 0);
	g_assert_cmpint(validate_one(&b, 64, err, sizeof(err)), ==, PF_ERR_INVALID);
	put_desc(&b, 0, PCIEFW__BAR_KIND__BAR_IO, 16, true, 0);
	g_assert_cmpint(validate_one(&b, 64, err, sizeof(err)), ==, PF_ERR_INVALID);
	put_desc(&b, 0, (Pciefw__BarKind)9, 4096, false, 0);
	g_assert_cmpint(validate_one(&b, 64, err, sizeof(err)), ==, PF_ERR_INVALID);
	g_assert_nonnull(strstr(err, "unknown kind 9"));
	put_desc(&b, 0, PCIEFW__BAR_KIND__BAR_MEM32, 4096, false, 4096);
	g_assert_cmpint(validate_one(&b, 64, err, sizeof(err)), ==, PF_ERR_INVALID);
	pf_buf_free(&b);
}

/*
 * The MSI-X table must be in a declared BAR, not in the upper half of a
 * 64-bit one: that slot has no BAR of its own for the host to put it in
 * (found by fuzz-description; tests/fuzz/corpus-description/regress-*).
 */
static void test_msix_in_upper_half_of_mem64(void)
{
	struct pf_buf b;
	char err[256];

	pf_buf_init(&b);
	put_desc(&b, 0, PCIEFW__BAR_KIND__BAR_MEM64, 4096, false, 8);
	g_assert_cmpint(validate_one(&b, 64, err, sizeof(err)), ==, PF_OK);
	for (uint32_t table = 0; table < 2; table++) {
		Pciefw__DeviceDescription d = PCIEFW__DEVICE_DESCRIPTION__INIT;
		Pciefw__Bar bar = PCIEFW__BAR__INIT, *bp = &bar;

		d.vendor_id = 0x1234;
		bar.index = 0;
		bar.kind = PCIEFW__BAR_KIND__BAR_MEM64;
		bar.size = 4096;
		d.bars = &bp;
		d.n_bars = 1;
		d.msix_vectors = 8;
		d.msix_table_bar = table;
		d.msix_pba_bar = !table;
		d.msix_pba_offset = 0x800;
		pf_put_description(&b, &d);
		g_assert_cmpint(validate_one(&b, 64, err, sizeof(err)), ==,
				PF_ERR_INVALID);
		g_assert_nonnull(strstr(err, "undeclared BAR"));
	}
	pf_buf_free(&b);
}

static void test_garbage_and_unknown_kind(void)
{
	struct pf_codec c;
	PfMessage *m;
	char err[200];
	/* Field 1 as varint where a message is expected. */
	static const uint8_t wrong_wire_type[] = { 0x08, 0x01 };
	/* Field 99 (a kind from the future), length-delimited, empty. */
	static const uint8_t future_kind[] = { 0x9a, 0x06, 0x00 };
	/* Truncated length-delimited field. */
	static const uint8_t truncated[] = { 0x0a, 0x10, 0x01 };

	pf_codec_init(&c);
	g_assert_cmpint(pf_codec_decode(&c, wrong_wire_type, sizeof(wrong_wire_type), &m,
					err, sizeof(err)), ==, PF_ERR_DECODE);
	g_assert_cmpint(pf_codec_decode(&c, future_kind, sizeof(future_kind), &m,
					err, sizeof(err)), ==, PF_ERR_DECODE);
	g_assert_nonnull(strstr(err, "unknown kind"));
	g_assert_cmpint(pf_codec_decode(&c, truncated, sizeof(truncated), &m,
					err, sizeof(err)), ==, PF_ERR_DECODE);
	pf_codec_free(&c);
}

/* Encode a MemoryMap of @n regions by hand (pf_put_memory_map caps n). */
static void put_raw_map(struct pf_buf *b, const struct pf_mem_region *r, size_t n)
{
	PfMessage m = PCIEFW__MESSAGE__INIT;
	Pciefw__MemoryMap mm = PCIEFW__MEMORY_MAP__INIT;
	Pciefw__MemoryRegion regs[40], *ptrs[40];

	g_assert_cmpuint(n, <=, 40);
	for (size_t i = 0; i < n; i++) {
		pciefw__memory_region__init(&regs[i]);
		regs[i].guest_address = r[i].guest_address;
		regs[i].size = r[i].size;
		regs[i].fd_offset = r[i].fd_offset;
		ptrs[i] = &regs[i];
	}
	mm.n_regions = n;
	mm.regions = ptrs;
	m.body_case = PCIEFW__MESSAGE__BODY_MEMORY_MAP;
	m.memory_map = &mm;
	g_assert_cmpint(pf_codec_encode(&m, b), ==, PF_OK);
}

/* Spec 10.2: the structural rules of a MemoryMap, each on its own. */
static void test_validate_memory_map(void)
{
	const uint64_t top = UINT64_MAX - 0xfff;   /* the last 4 KiB page */
	static const struct {
		struct pf_mem_region r[2];
		size_t n;
		int want;
		const char *why;
	} cases[] = {
		{ { { 0, 0x1000, 0 }, { 0x2000, 0x1000, 0 } }, 2, PF_OK, NULL },
		{ { { 0x1000, 0x1000, 0x1000 }, { 0 } }, 1, PF_OK, NULL },
		/* Ends exactly at 2^64: allowed, nothing may follow. */
		{ { { top, 0x1000, 0 }, { 0 } }, 1, PF_OK, NULL },
		{ { { 0, 0, 0 }, { 0 } }, 1, PF_ERR_INVALID, "empty" },
		{ { { 0x800, 0x1000, 0 }, { 0 } }, 1, PF_ERR_INVALID, "aligned" },
		{ { { 0, 0x1800, 0 }, { 0 } }, 1, PF_ERR_INVALID, "aligned" },
		{ { { 0, 0x1000, 0x10 }, { 0 } }, 1, PF_ERR_INVALID, "aligned" },
		{ { { top, 0x2000, 0 }, { 0 } }, 1, PF_ERR_INVALID, "wraps" },
		{ { { 0, 0x2000, top }, { 0 } }, 1, PF_ERR_INVALID, "wraps" },
		{ { { 0, 0x2000, 0 }, { 0x1000, 0x1000, 0 } }, 2, PF_ERR_INVALID,
		  "overlaps" },
		{ { { 0x2000, 0x1000, 0 }, { 0, 0x1000, 0 } }, 2, PF_ERR_INVALID,
		  "precedes" },
		{ { { 0, 0x1000, 0 }, { 0, 0x1000, 0 } }, 2, PF_ERR_INVALID,
		  "overlaps" },
		{ { { top, 0x1000, 0 }, { 0, 0x1000, 0 } }, 2, PF_ERR_INVALID,
		  "2^64" },
	};
	struct pf_mem_region many[40];
	struct pf_buf b;
	char err[256];

	pf_buf_init(&b);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = 0;
		put_raw_map(&b, cases[i].r, cases[i].n);
		g_assert_cmpint(validate_one(&b, 64, err, sizeof(err)), ==, cases[i].want);
		if (cases[i].why && !strstr(err, cases[i].why))
			g_error("case %zu: '%s' lacks '%s'", i, err, cases[i].why);
	}
	for (size_t i = 0; i < 40; i++)
		many[i] = (struct pf_mem_region){ i * 0x1000, 0x1000, 0 };
	put_raw_map(&b, many, PCIEFW_MAX_MEM_REGIONS);
	g_assert_cmpint(validate_one(&b, 64, err, sizeof(err)), ==, PF_OK);
	put_raw_map(&b, many, PCIEFW_MAX_MEM_REGIONS + 1);
	g_assert_cmpint(validate_one(&b, 64, err, sizeof(err)), ==, PF_ERR_LIMIT);
	g_assert_nonnull(strstr(err, "33 regions"));
	g_assert_cmpint(pf_put_memory_map(&b, many, PCIEFW_MAX_MEM_REGIONS + 1), ==,
			PF_ERR_LIMIT);
	g_assert_cmpuint(b.len, ==, 0);
	pf_put_bus_master(&b, true);
	g_assert_cmpint(validate_one(&b, 64, err, sizeof(err)), ==, PF_OK);
	pf_buf_free(&b);
}

/* Encode an InterruptConfig of @n entries by hand (the builder caps n). */
static void put_raw_irqcfg(struct pf_buf *b, bool msi_on, uint32_t msi_vectors,
			   const uint32_t *vectors, size_t n)
{
	PfMessage m = PCIEFW__MESSAGE__INIT;
	Pciefw__InterruptConfig ic = PCIEFW__INTERRUPT_CONFIG__INIT;
	Pciefw__MsixEntry ents[80], *ptrs[80];

	g_assert_cmpuint(n, <=, 80);
	for (size_t i = 0; i < n; i++) {
		pciefw__msix_entry__init(&ents[i]);
		ents[i].vector = vectors[i];
		ptrs[i] = &ents[i];
	}
	ic.msi_enabled = msi_on;
	ic.msi_vectors = msi_vectors;
	ic.n_msix_entries = n;
	ic.msix_entries = ptrs;
	m.body_case = PCIEFW__MESSAGE__BODY_INTERRUPT_CONFIG;
	m.interrupt_config = &ic;
	g_assert_cmpint(pf_codec_encode(&m, b), ==, PF_OK);
}

/* Spec 12.5: the rules of an InterruptConfig checked on the message alone. */
static void test_validate_interrupt_config(void)
{
	static const struct {
		bool on;
		uint32_t msi;
		uint32_t vec[3];
		size_t n;
		int want;
		const char *why;
	} cases[] = {
		{ false, 0, { 0 }, 0, PF_OK, NULL },
		{ true, 1, { 0, 2047, 5 }, 3, PF_OK, NULL },
		{ true, 32, { 0 }, 0, PF_OK, NULL },
		{ true, 3, { 0 }, 0, PF_ERR_INVALID, "3 MSI vectors" },
		{ true, 64, { 0 }, 0, PF_ERR_INVALID, "64 MSI vectors" },
		{ true, 0, { 0 }, 0, PF_ERR_INVALID, "MSI enabled with 0" },
		{ false, 4, { 0 }, 0, PF_ERR_INVALID, "MSI disabled with 4" },
		{ false, 0, { 2048 }, 1, PF_ERR_INVALID, "vector 2048 out of range" },
		{ false, 0, { 7, 1, 7 }, 3, PF_ERR_INVALID, "vector 7 twice" },
	};
	uint32_t many[80];
	struct pf_buf b;
	char err[256];

	pf_buf_init(&b);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		err[0] = 0;
		put_raw_irqcfg(&b, cases[i].on, cases[i].msi, cases[i].vec, cases[i].n);
		g_assert_cmpint(validate_one(&b, 64, err, sizeof(err)), ==, cases[i].want);
		if (cases[i].why && !strstr(err, cases[i].why))
			g_error("case %zu: '%s' lacks '%s'", i, err, cases[i].why);
	}
	for (uint32_t i = 0; i < 80; i++)
		many[i] = i;
	put_raw_irqcfg(&b, false, 0, many, PCIEFW_MAX_MSIX_ENTRIES);
	g_assert_cmpint(validate_one(&b, PCIEFW_DEFAULT_PAYLOAD, err, sizeof(err)), ==,
			PF_OK);
	put_raw_irqcfg(&b, false, 0, many, PCIEFW_MAX_MSIX_ENTRIES + 1);
	g_assert_cmpint(validate_one(&b, PCIEFW_DEFAULT_PAYLOAD, err, sizeof(err)), ==,
			PF_ERR_LIMIT);
	g_assert_nonnull(strstr(err, "65 MSI-X entries"));
	g_assert_cmpint(pf_put_interrupt_config(&b, &(struct pf_interrupt_config){ 0 },
						NULL, PCIEFW_MAX_MSIX_ENTRIES + 1),
			==, PF_ERR_LIMIT);
	g_assert_cmpuint(b.len, ==, 0);
	pf_buf_free(&b);
}

/*
 * Spec 12.5: the entries pf_interrupt_config_max_entries() allows, each
 * field at its widest, fit the session's max frame, from the minimum max
 * payload (one entry) up to 64.
 */
static void test_interrupt_config_fits_the_frame(void)
{
	static const uint32_t payloads[] = { 8, 9, 32, 100, 1000, 1506, 1507,
					     PCIEFW_DEFAULT_PAYLOAD };
	const struct pf_interrupt_config wide = {
		true, 32, UINT64_MAX, UINT32_MAX, UINT32_MAX, true, true,
	};
	struct pf_msix_entry e[PCIEFW_MAX_MSIX_ENTRIES];
	struct pf_buf b;

	for (uint32_t i = 0; i < PCIEFW_MAX_MSIX_ENTRIES; i++)
		e[i] = (struct pf_msix_entry){ 2047 - i, UINT64_MAX, UINT32_MAX, true };
	pf_buf_init(&b);
	g_assert_cmpuint(pf_interrupt_config_max_entries(8), ==, 1);
	g_assert_cmpuint(pf_interrupt_config_max_entries(PCIEFW_DEFAULT_PAYLOAD), ==,
			 PCIEFW_MAX_MSIX_ENTRIES);
	for (size_t i = 0; i < sizeof(payloads) / sizeof(payloads[0]); i++) {
		uint32_t n = pf_interrupt_config_max_entries(payloads[i]);

		pf_buf_clear(&b);
		g_assert_cmpint(pf_put_interrupt_config(&b, &wide, e, n), ==, PF_OK);
		g_assert_cmpuint(b.len - PF_FRAME_HEADER, <=, PCIEFW_MAX_FRAME(payloads[i]));
		if (n < PCIEFW_MAX_MSIX_ENTRIES) {
			/* One more would not have fitted. */
			pf_buf_clear(&b);
			g_assert_cmpint(pf_put_interrupt_config(&b, &wide, e, n + 1), ==, PF_OK);
			g_assert_cmpuint(b.len - PF_FRAME_HEADER, >,
					 PCIEFW_MAX_FRAME(payloads[i]));
		}
	}
	pf_buf_free(&b);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/codec/roundtrip-every-kind", test_roundtrip_every_kind);
	g_test_add_func("/codec/fields-survive", test_fields_survive);
	g_test_add_func("/codec/validate-rules", test_validate_rules);
	g_test_add_func("/codec/error-codes", test_error_codes);
	g_test_add_func("/codec/validate-memory-map", test_validate_memory_map);
	g_test_add_func("/codec/validate-interrupt-config",
			test_validate_interrupt_config);
	g_test_add_func("/codec/interrupt-config-fits-the-frame",
			test_interrupt_config_fits_the_frame);
	g_test_add_func("/codec/validate-description", test_validate_description);
	g_test_add_func("/codec/msix-in-upper-half-of-mem64",
			test_msix_in_upper_half_of_mem64);
	g_test_add_func("/codec/garbage-and-unknown-kind", test_garbage_and_unknown_kind);
	return g_test_run();
}
