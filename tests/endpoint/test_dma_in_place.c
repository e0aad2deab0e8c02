/*
 * DMA in place (endpoint/device.h: pf_dma_map): a model reads and writes
 * shared guest memory through a pointer where the host shares it
 * (docs/protocol.md 10), falls back to DMA by copy or by messages
 * everywhere else, with the same bounds and ordering rules, and never
 * holds a mapping past its callback.  Driven in process (inproc.h) with
 * guest RAM in a real sealed memory file, as QEMU shares it.
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

#include "inproc.h"
#include "msg.h"

#define OK PCIEFW__STATUS__STATUS_SUCCESSFUL
#define RAM 0x100000ull
#define RAM_SIZE (1u << 20)

/* ---- The endpoint's trace (docs/protocol.md 10.5) ---- */

/*
 * The message records of @path, each with the note recorded after it
 * ("" if none), unpacked: @n of them.
 */
struct traced {
	Pciefw__Message *m;
	char note[128];
};

static struct traced *read_trace(const char *path, unsigned *n)
{
	struct pf_trace_record rec;
	struct traced *t = NULL;
	char err[200];
	struct pf_trace_reader *r = pf_trace_open(path, err, sizeof(err));

	g_assert_nonnull(r);
	pf_trace_want_all(r);
	*n = 0;
	while (pf_trace_next(r, &rec, err, sizeof(err)) == PF_OK) {
		if (rec.type == PF_REC_NOTE && *n) {
			g_strlcpy(t[*n - 1].note, (const char *)rec.body,
				  MIN(sizeof(t->note), rec.body_len + 1));
			continue;
		}
		if (rec.type != PF_REC_MESSAGE)
			continue;
		t = g_renew(struct traced, t, *n + 1);
		t[*n].m = pciefw__message__unpack(NULL, rec.body_len, rec.body);
		g_assert_nonnull(t[*n].m);
		t[*n].note[0] = '\0';
		(*n)++;
	}
	pf_trace_close_reader(r);
	return t;
}

static void free_trace(struct traced *t, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		pciefw__message__free_unpacked(t[i].m, NULL);
	g_free(t);
}

static bool all_bytes(const ProtobufCBinaryData *d, size_t len, uint8_t v)
{
	if (d->len != len)
		return false;
	for (size_t i = 0; i < len; i++)
		if (d->data[i] != v)
			return false;
	return true;
}

/* ---- testdev (docs/testdev.md) ---- */

enum {
	TD_SCRATCH = 0x04, TD_DMA_SRC = 0x10, TD_DMA_DST = 0x18,
	TD_DMA_LEN = 0x20, TD_DMA_CMD = 0x24, TD_DMA_STATUS = 0x28,
	TD_SIDE_EFFECTS = 0x48, TD_DMA_SUM = 0x50,
};
enum { OP_COPY, OP_FILL, OP_SUM };
#define ST_BUSY 1u
#define ST_DONE 2u
#define ST_ERROR 4u

static void wr64(struct inproc *ip, uint64_t off, uint64_t v)
{
	inproc_wr32(ip, 0, off, (uint32_t)v);
	inproc_wr32(ip, 0, off + 4, (uint32_t)(v >> 32));
}

/* Start a testdev DMA and return DMA_STATUS once it is no longer busy. */
static uint32_t td_dma(struct inproc *ip, unsigned op, uint64_t src,
		       uint64_t dst, uint32_t len)
{
	uint32_t st;

	inproc_wr32(ip, 0, TD_DMA_STATUS, ST_DONE | ST_ERROR);
	wr64(ip, TD_DMA_SRC, src);
	wr64(ip, TD_DMA_DST, dst);
	inproc_wr32(ip, 0, TD_DMA_LEN, len);
	inproc_wr32(ip, 0, TD_DMA_CMD, 1 | op << 4);
	for (int i = 0; i < 1000; i++) {
		st = inproc_rd32(ip, 0, TD_DMA_STATUS);
		if (!(st & ST_BUSY))
			return st;
		inproc_settle(ip);
	}
	g_error("testdev DMA never finished");
}

static uint32_t sum_of(const uint8_t *p, uint32_t len)
{
	uint32_t s = 0;

	for (uint32_t i = 0; i < len; i++)
		s += p[i];
	return s;
}

static void fill_pattern(uint8_t *p, uint32_t len, unsigned seed)
{
	for (uint32_t i = 0; i < len; i++)
		p[i] = (uint8_t)(i * 31 + seed + i / 251);
}

/* SUM, COPY and FILL read and write guest memory in place: no messages. */
static void test_testdev_in_place(void)
{
	char *dir = g_dir_make_tmp("dma-in-place-XXXXXX", NULL);
	char *trace = g_build_filename(dir, "ep.pcapng", NULL);
	struct inproc ip;
	struct traced *t;
	unsigned n, reads = 0, data = 0, fills = 0;
	uint8_t *a, *b;

	inproc_trace_next(trace);
	inproc_start_shared(&ip, "testdev", NULL, RAM, RAM_SIZE);
	a = inproc_ram(&ip, RAM + 0x1000);
	b = inproc_ram(&ip, RAM + 0x40000);
	/* Odd lengths and offsets: the sum's word loop and its tail. */
	for (uint32_t len = 1; len <= 70000; len = len * 7 + 3) {
		fill_pattern(a, len, len);
		memset(b, 0xee, len + 16);
		g_assert_cmphex(td_dma(&ip, OP_SUM, RAM + 0x1000 + len % 8, 0, len), ==, ST_DONE);
		g_assert_cmphex(inproc_rd32(&ip, 0, TD_DMA_SUM), ==, sum_of(a + len % 8, len));
		g_assert_cmphex(td_dma(&ip, OP_COPY, RAM + 0x1000, RAM + 0x40000, len), ==,
				ST_DONE);
		g_assert_cmpmem(b, len, a, len);
		g_assert_cmphex(b[len], ==, 0xee);
	}
	inproc_wr32(&ip, 0, TD_SCRATCH, 0x5a);
	memset(b, 0xee, 5016);
	g_assert_cmphex(td_dma(&ip, OP_FILL, 0, RAM + 0x40000, 5000), ==, ST_DONE);
	for (uint32_t i = 0; i < 5000; i++)
		g_assert_cmphex(b[i], ==, 0x5a);
	g_assert_cmphex(b[5000], ==, 0xee);
	/* Overlapping COPY, source after destination: as memmove. */
	fill_pattern(a, 4096, 9);
	g_assert_cmphex(td_dma(&ip, OP_COPY, RAM + 0x1000 + 100, RAM + 0x1000, 3000), ==,
			ST_DONE);
	{
		uint8_t want[4096];

		fill_pattern(want, 4096, 9);
		g_assert_cmpmem(a, 3000, want + 100, 3000);
	}
	/* Every read in place; COPY's write by copy, FILL's in place. */
	g_assert_cmpuint(ip.dma_reads, ==, 0);
	g_assert_cmpuint(ip.dma_writes, ==, 0);
	g_assert_cmpuint(ip.dev->n_dma_in_place, ==, 2 * 6 + 1 + 1);
	g_assert_cmpuint(ip.dev->n_maps, ==, 0);
	inproc_stop(&ip);

	/*
	 * Spec 10.5: each read in place recorded as its DmaRead and its
	 * Completion with the data read, each write as its DmaWrite.
	 */
	t = read_trace(trace, &n);
	for (unsigned i = 0; i < n; i++) {
		const Pciefw__Message *m = t[i].m;

		if (m->body_case == PCIEFW__MESSAGE__BODY_DMA_READ &&
		    !strcmp(t[i].note, "shared memory: read in place")) {
			reads++;
			g_assert_cmpuint(i + 1, <, n);
			g_assert_cmpint(t[i + 1].m->body_case, ==,
					PCIEFW__MESSAGE__BODY_COMPLETION);
			g_assert_cmpuint(t[i + 1].m->completion->tag, ==,
					 m->dma_read->tag);
			g_assert_cmpuint(t[i + 1].m->completion->data.len, ==,
					 m->dma_read->size);
			data += m->dma_read->size;
		}
		if (m->body_case == PCIEFW__MESSAGE__BODY_DMA_WRITE &&
		    !strcmp(t[i].note, "shared memory: written in place") &&
		    m->dma_write->address == RAM + 0x40000 &&
		    all_bytes(&m->dma_write->data, 5000, 0x5a))
			fills++;
	}
	/* Each of the 13 reads, in 64 KiB pieces (the session's payload). */
	g_assert_cmpuint(reads, ==, 2 * 6 + 1);
	g_assert_cmpuint(data, ==, 2 * (1 + 10 + 73 + 514 + 3601 + 25210) + 3000);
	g_assert_cmpuint(fills, ==, 1);
	free_trace(t, n);
	g_unlink(trace);
	g_rmdir(dir);
	g_free(trace);
	g_free(dir);
}

/*
 * Where a range is not wholly inside one shared region the model gets
 * NULL and does the DMA by messages: across two regions, past the end of
 * RAM, wrapping past 2^64 (refused before anything is sent).
 */
static void test_in_place_bounds(void)
{
	/* The same file as two regions: [0, 64K) and [64K, 512K); 512K.. not shared. */
	const uint64_t offs[2] = { 0, 0x10000 }, sizes[2] = { 0x10000, 0x70000 };
	struct inproc ip;
	uint8_t *a;
	uint64_t reads;

	inproc_start_shared(&ip, "testdev", NULL, RAM, RAM_SIZE);
	inproc_memory_map(&ip, offs, sizes, 2);
	inproc_settle(&ip);
	a = inproc_ram(&ip, RAM + 0xf000);
	fill_pattern(a, 0x2000, 3);
	/* Inside the first region: in place. */
	g_assert_cmphex(td_dma(&ip, OP_SUM, RAM + 0xf000, 0, 0x1000), ==, ST_DONE);
	g_assert_cmpuint(ip.dma_reads, ==, 0);
	/* Straddling the two: by messages, the same sum. */
	g_assert_cmphex(td_dma(&ip, OP_SUM, RAM + 0xf800, 0, 0x1000), ==, ST_DONE);
	g_assert_cmphex(inproc_rd32(&ip, 0, TD_DMA_SUM), ==, sum_of(a + 0x800, 0x1000));
	g_assert_cmpuint(ip.dma_reads, ==, 1);
	/* RAM the map left out (host memory all the same): by messages. */
	fill_pattern(inproc_ram(&ip, RAM + 0x80000), 64, 5);
	g_assert_cmphex(td_dma(&ip, OP_SUM, RAM + 0x80000, 0, 64), ==, ST_DONE);
	g_assert_cmphex(inproc_rd32(&ip, 0, TD_DMA_SUM), ==,
			sum_of(inproc_ram(&ip, RAM + 0x80000), 64));
	g_assert_cmpuint(ip.dma_reads, ==, 2);
	/* Past the end of guest RAM: by messages, refused by the host. */
	reads = ip.dma_refused;
	g_assert_cmphex(td_dma(&ip, OP_SUM, RAM + RAM_SIZE - 8, 0, 16), ==, ST_ERROR);
	g_assert_cmpuint(ip.dma_refused, ==, reads + 1);
	/* Wrapping past 2^64: refused by the framework, nothing sent. */
	g_assert_cmphex(td_dma(&ip, OP_SUM, UINT64_MAX - 7, 0, 16), ==, ST_ERROR);
	g_assert_cmpuint(ip.dma_refused, ==, reads + 1);
	g_assert_cmpuint(ip.dev->n_dma_in_place, ==, 1);
	inproc_stop(&ip);
}

/*
 * Spec 10.3 and 10.4 hold for mappings as for copies: nothing in place
 * with bus mastering off, nor once a DmaWrite went as a message until a
 * read sent after it completed; and no read in place passes a read the
 * model issued earlier.
 */
static void test_in_place_ordering(void)
{
	const uint64_t off = 0, size = 0x80000;
	struct inproc ip;
	uint8_t b[4];

	inproc_start_shared(&ip, "testdev", NULL, RAM, RAM_SIZE);
	inproc_bus_master(&ip, false);
	inproc_wr32(&ip, 0, TD_SCRATCH, 0x11);
	g_assert_cmphex(td_dma(&ip, OP_FILL, 0, RAM, 100), ==, ST_DONE);
	g_assert_cmpuint(ip.dma_writes, ==, 1);             /* a message */
	inproc_bus_master(&ip, true);
	/* That write may be unapplied: still a message (10.4). */
	g_assert_cmphex(td_dma(&ip, OP_FILL, 0, RAM, 100), ==, ST_DONE);
	g_assert_cmpuint(ip.dma_writes, ==, 2);
	g_assert_cmpuint(ip.dev->n_dma_in_place, ==, 0);
	/* A read by message completes after them: the fence is passed. */
	g_assert_cmphex(td_dma(&ip, OP_SUM, RAM, 0, 100), ==, ST_DONE);
	g_assert_cmpuint(ip.dma_reads, ==, 1);
	g_assert_cmphex(inproc_rd32(&ip, 0, TD_DMA_SUM), ==, 100 * 0x11);
	g_assert_cmphex(td_dma(&ip, OP_FILL, 0, RAM, 100), ==, ST_DONE);
	g_assert_cmpuint(ip.dma_writes, ==, 2);
	g_assert_cmpuint(ip.dev->n_dma_in_place, ==, 1);

	/*
	 * Only [0, 512K) shared.  A SIDE_EFFECTS read leaves a DmaRead of
	 * DMA_SRC outstanding (not deferred: later requests go on), here
	 * outside the map, so a message the host holds back.
	 */
	inproc_memory_map(&ip, &off, &size, 1);
	inproc_settle(&ip);
	pf_le_store(inproc_ram(&ip, RAM + 0x90000), 8, 0x1122334455667788ull);
	wr64(&ip, TD_DMA_SRC, RAM + 0x90000);
	wr64(&ip, TD_DMA_DST, RAM + 0x3000);
	ip.hold_dma = true;
	g_assert_cmpint(inproc_mem_read(&ip, 0, TD_SIDE_EFFECTS, b, 4), ==, OK);
	inproc_settle(&ip);
	g_assert_cmpuint(ip.n_dma, ==, 1);
	/* A SUM in shared memory now: not in place, it waits its turn. */
	fill_pattern(inproc_ram(&ip, RAM + 0x2000), 256, 1);
	wr64(&ip, TD_DMA_SRC, RAM + 0x2000);
	inproc_wr32(&ip, 0, TD_DMA_LEN, 256);
	inproc_wr32(&ip, 0, TD_DMA_CMD, 1 | OP_SUM << 4);
	g_assert_cmphex(inproc_rd32(&ip, 0, TD_DMA_STATUS), ==, ST_BUSY);
	inproc_settle(&ip);
	g_assert_cmphex(inproc_rd32(&ip, 0, TD_DMA_STATUS), ==, ST_BUSY);
	ip.hold_dma = false;
	inproc_serve_dma(&ip);
	inproc_settle(&ip);
	g_assert_cmphex(inproc_rd32(&ip, 0, TD_DMA_STATUS), ==, ST_DONE);
	g_assert_cmphex(inproc_rd32(&ip, 0, TD_DMA_SUM), ==,
			sum_of(inproc_ram(&ip, RAM + 0x2000), 256));
	g_assert_cmphex(pf_le_load(inproc_ram(&ip, RAM + 0x3000), 8), ==, 1);
	g_assert_cmpuint(ip.dev->n_dma_in_place, ==, 1);
	/* Nothing outstanding any more: in place again. */
	g_assert_cmphex(td_dma(&ip, OP_SUM, RAM + 0x2000, 0, 256), ==, ST_DONE);
	g_assert_cmpuint(ip.dev->n_dma_in_place, ==, 2);
	inproc_stop(&ip);
}

/* ---- nic (docs/nic.md): a hostile guest's TX descriptors ---- */

enum {
	NIC_CTRL = 0x000, NIC_TX_BASE_LO = 0x200, NIC_TX_SIZE = 0x208,
	NIC_TX_TAIL = 0x210, NIC_TX_PACKETS = 0x310, NIC_TX_ERRORS = 0x330,
};

static uint64_t rd64(struct inproc *ip, uint64_t off)
{
	return inproc_rd32(ip, 0, off) | (uint64_t)inproc_rd32(ip, 0, off + 4) << 32;
}

static bool nic_tx_done(struct inproc *ip, void *arg)
{
	return pf_le_load(inproc_ram(ip, RAM + 0x1000 + 3 * 16 + 12), 2) & 1;
}

/*
 * Frames across two shared regions, outside RAM, wrapping past 2^64, and
 * a good one after them: the first falls back to messages and is sent,
 * the next two are refused (DD|ERR), and the last waits behind the
 * message read (no read in place passes it) and is sent.
 */
static void test_nic_tx_hostile_addresses(void)
{
	const uint64_t offs[2] = { 0, 0x10000 }, sizes[2] = { 0x10000, 0x70000 };
	static const uint64_t frames[4] = {
		RAM + 0x10000 - 30, RAM + RAM_SIZE + 0x1000, UINT64_MAX - 29,
		RAM + 0x20000,
	};
	struct inproc ip;

	inproc_start_shared(&ip, "nic", NULL, RAM, RAM_SIZE);
	inproc_memory_map(&ip, offs, sizes, 2);
	for (unsigned i = 0; i < 4; i++) {
		uint8_t *d = inproc_ram(&ip, RAM + 0x1000 + i * 16);

		pf_le_store(d, 8, frames[i]);
		pf_le_store(d + 8, 2, 60);
		pf_le_store(d + 10, 2, 1);                       /* EOP */
	}
	memset(inproc_ram(&ip, RAM + 0x10000 - 30), 0xff, 60);   /* broadcast */
	memset(inproc_ram(&ip, RAM + 0x20000), 0xff, 60);
	inproc_wr32(&ip, 0, NIC_TX_BASE_LO, (uint32_t)(RAM + 0x1000));
	inproc_wr32(&ip, 0, NIC_TX_SIZE, 16);
	inproc_wr32(&ip, 0, NIC_CTRL, 4);                        /* TX on */
	inproc_wr32(&ip, 0, NIC_TX_TAIL, 4);
	g_assert_true(inproc_run(&ip, nic_tx_done, NULL, 5000));
	inproc_settle(&ip);
	for (unsigned i = 0; i < 4; i++)
		g_assert_cmphex(pf_le_load(inproc_ram(&ip, RAM + 0x1000 + i * 16 + 12), 2),
				==, i == 1 || i == 2 ? 5 : 1);
	g_assert_cmpuint(rd64(&ip, NIC_TX_PACKETS), ==, 2);
	g_assert_cmpuint(rd64(&ip, NIC_TX_ERRORS), ==, 2);
	/* By message: the straddling frame, the one outside RAM (refused). */
	g_assert_cmpuint(ip.dma_reads, ==, 1);
	g_assert_cmpuint(ip.dma_refused, ==, 1);
	inproc_stop(&ip);
}

/* ---- A model that breaks the rules: maps and keeps ---- */

/*
 * BAR0: 0x00 address (64-bit), 0x08 length, 0x0c value, 0x10 command:
 * 1 map for writing, fill with the value, unmap; 2 the same but keep the
 * mapping (a model bug); 3 map for reading N times (the length), keeping
 * them all; 0x14 reads how many maps succeeded.
 */
struct keeper {
	struct pf_dev *dev;
	uint8_t regs[0x18];
};

static void keeper_command(struct keeper *k, uint32_t cmd)
{
	uint64_t addr = pf_le_load(k->regs, 8);
	uint32_t len = (uint32_t)pf_le_load(k->regs + 8, 4);
	uint32_t got = 0;
	uint8_t *p;

	switch (cmd) {
	case 1:
	case 2:
		p = pf_dma_map(k->dev, addr, len, true);
		if (p) {
			memset(p, k->regs[0x0c], len);
			got = 1;
			if (cmd == 1)
				pf_dma_unmap(k->dev, p);
		}
		break;
	case 3:
		for (uint32_t i = 0; i < len; i++)
			got += pf_dma_map(k->dev, addr, 8, false) != NULL;
		break;
	}
	pf_le_store(k->regs + 0x14, 4, got);
}

static int keeper_read(void *s, unsigned bar, uint64_t off, void *data,
		       uint32_t size)
{
	struct keeper *k = s;

	memcpy(data, k->regs + off, size);
	return PF_CPL_OK;
}

static void keeper_write(void *s, unsigned bar, uint64_t off,
			 const void *data, uint32_t size)
{
	struct keeper *k = s;

	if (off == 0x10)
		keeper_command(k, (uint32_t)pf_le_load(data, 4));
	else
		memcpy(k->regs + off, data, size);
}

static void keeper_reset(void *s, enum pf_reset_kind kind)
{
	struct keeper *k = s;

	memset(k->regs, 0, sizeof(k->regs));
}

static void *keeper_create(struct pf_dev *dev, struct pf_identity *id)
{
	struct keeper *k = g_new0(struct keeper, 1);

	k->dev = dev;
	id->vendor_id = 0x1234;
	id->device_id = 0xfeed;
	id->bars[0] = (struct pf_bar_decl){
		.kind = PF_BAR_MEM32, .size = 4096, .access_min = 4, .access_max = 4,
	};
	return k;
}

static void keeper_destroy(void *s)
{
	g_free(s);
}

static const struct pf_model_ops keeper_ops = {
	.bar_read = keeper_read,
	.bar_write = keeper_write,
	.reset = keeper_reset,
	.destroy = keeper_destroy,
};

static struct pf_model keeper_model = {
	.name = "test-keeper",
	.summary = "keeps DMA mappings past its callback (a model bug)",
	.create = keeper_create,
	.ops = &keeper_ops,
};

PF_MODEL_REGISTER(keeper_model);

static void keeper_do(struct inproc *ip, uint64_t addr, uint32_t len,
		      uint8_t value, uint32_t cmd)
{
	wr64(ip, 0x00, addr);
	inproc_wr32(ip, 0, 0x08, len);
	inproc_wr32(ip, 0, 0x0c, value);
	inproc_wr32(ip, 0, 0x10, cmd);
}

/* Every table has a limit: PF_DMA_MAX_MAPS open at once, then NULL. */
static void test_map_limit(void)
{
	struct inproc ip;

	inproc_start_shared(&ip, "test-keeper", NULL, RAM, RAM_SIZE);
	keeper_do(&ip, RAM, PF_DMA_MAX_MAPS + 5, 0, 3);
	g_assert_cmpuint(inproc_rd32(&ip, 0, 0x14), ==, PF_DMA_MAX_MAPS);
	/* The framework ends them before the loop waits. */
	inproc_settle(&ip);
	g_assert_cmpuint(ip.dev->n_maps, ==, 0);
	keeper_do(&ip, RAM, 4, 0, 3);
	g_assert_cmpuint(inproc_rd32(&ip, 0, 0x14), ==, 4);
	inproc_stop(&ip);
}

/*
 * A mapping never outlives the map it points into: a model that keeps one
 * and a MemoryMap that replaces the memory, in the same batch of the
 * host's messages (no loop wait between them).  The framework ends the
 * mapping (the write counted as done) before it unmaps the old memory;
 * the model's next mapping points into the new memory, and nothing
 * reaches the old one after the replacement.
 */
static void test_mapping_ends_before_map_replaced(void)
{
	char *dir = g_dir_make_tmp("dma-in-place-XXXXXX", NULL);
	char *trace = g_build_filename(dir, "ep.pcapng", NULL);
	struct inproc ip;
	struct traced *t;
	unsigned n, kept = 0;
	uint8_t *old;
	uint64_t writes;

	/* Traced: ending a write reads its bytes, so it must come first. */
	inproc_trace_next(trace);
	inproc_start_shared(&ip, "test-keeper", NULL, RAM, RAM_SIZE);
	writes = ip.dev->n_dma_writes;
	keeper_do(&ip, RAM + 0x100, 64, 0xab, 2);        /* mapped, kept */
	old = inproc_remap(&ip);                         /* same batch */
	inproc_settle(&ip);
	g_assert_cmpuint(ip.dev->n_maps, ==, 0);
	g_assert_cmpuint(ip.dev->n_dma_writes, ==, writes + 1);
	g_assert_cmphex(old[0x100], ==, 0xab);
	g_assert_cmphex(ip.ram[0x100], ==, 0);   /* copied before the write */
	keeper_do(&ip, RAM + 0x200, 64, 0xcd, 1);
	inproc_settle(&ip);
	g_assert_cmphex(ip.ram[0x200], ==, 0xcd);
	g_assert_cmphex(old[0x200], ==, 0);
	/* Withdrawn: nothing to map, the model is told NULL. */
	inproc_memory_map(&ip, NULL, NULL, 0);
	keeper_do(&ip, RAM + 0x300, 64, 0xef, 1);
	g_assert_cmpuint(inproc_rd32(&ip, 0, 0x14), ==, 0);
	g_assert_cmphex(ip.ram[0x300], ==, 0);
	inproc_stop(&ip);

	/* The kept write recorded with its data, as written in place. */
	t = read_trace(trace, &n);
	for (unsigned i = 0; i < n; i++)
		kept += t[i].m->body_case == PCIEFW__MESSAGE__BODY_DMA_WRITE &&
			t[i].m->dma_write->address == RAM + 0x100 &&
			all_bytes(&t[i].m->dma_write->data, 64, 0xab) &&
			!strcmp(t[i].note, "shared memory: written in place");
	g_assert_cmpuint(kept, ==, 1);
	free_trace(t, n);
	g_unlink(trace);
	g_rmdir(dir);
	g_free(trace);
	g_free(dir);
}

static bool mapping_open(struct inproc *ip, void *arg)
{
	return ip->dev->n_maps > 0;
}

/* The same for a reset and for the host leaving, mid-mapping. */
static void test_mapping_ends_at_reset_and_disconnect(void)
{
	struct inproc ip;
	uint64_t writes;

	inproc_start_shared(&ip, "test-keeper", NULL, RAM, RAM_SIZE);
	writes = ip.dev->n_dma_writes;
	keeper_do(&ip, RAM + 0x100, 64, 0x12, 2);
	/* The Reset comes in the same batch as the write that mapped. */
	g_assert_cmpint(inproc_reset(&ip, PCIEFW__RESET_KIND__RESET_FUNCTION), ==, OK);
	g_assert_cmpuint(ip.dev->n_maps, ==, 0);
	g_assert_cmpuint(ip.dev->n_dma_writes, ==, writes + 1);
	g_assert_cmphex(ip.ram[0x100], ==, 0x12);
	/* Bus mastering is off after a reset (10.3): no mapping. */
	keeper_do(&ip, RAM + 0x200, 64, 0x34, 1);
	g_assert_cmpuint(inproc_rd32(&ip, 0, 0x14), ==, 0);
	g_assert_cmphex(ip.ram[0x200], ==, 0);
	inproc_bus_master(&ip, true);
	keeper_do(&ip, RAM + 0x300, 64, 0x56, 2);
	/* Stop right after the loop turn that mapped: the host leaves then. */
	g_assert_true(inproc_run(&ip, mapping_open, NULL, 5000));
	pf_conn_goodbye(ip.conn, "test done");
	g_assert_null(ip.conn);
	g_assert_cmpuint(ip.dev->n_maps, ==, 0);
	g_assert_cmpuint(ip.dev->gmem.n, ==, 0);
	inproc_stop(&ip);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/dma-in-place/testdev", test_testdev_in_place);
	g_test_add_func("/dma-in-place/bounds", test_in_place_bounds);
	g_test_add_func("/dma-in-place/ordering", test_in_place_ordering);
	g_test_add_func("/dma-in-place/nic-tx-hostile-addresses",
			test_nic_tx_hostile_addresses);
	g_test_add_func("/dma-in-place/limit", test_map_limit);
	g_test_add_func("/dma-in-place/map-replaced",
			test_mapping_ends_before_map_replaced);
	g_test_add_func("/dma-in-place/reset-and-disconnect",
			test_mapping_ends_at_reset_and_disconnect);
	return g_test_run();
}
