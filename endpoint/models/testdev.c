/*
 * testdev: a device for testing the bridge itself.  Register map and
 * behaviour: docs/testdev.md.
 */
#include <stdlib.h>
#include <string.h>
#if defined(__SSE2__) && defined(__x86_64__)
#include <emmintrin.h>
#endif

#include "device.h"
#include "log.h"

#define TESTDEV_ID          0x7e57de01u
#define TESTDEV_IO_ID       0x7e5710deu
#define TESTDEV_CFG_ID      0x7e57cf61u

#define BAR_REGS    0
#define BAR_MSIX    1
#define BAR_RAM     2
#define BAR_IO      4
#define RAM_SIZE    (1u << 20)
#define IO_SIZE     32u
#define MSIX_VECTORS 8
#define MSI_VECTORS  4
#define DMA_MAX_LEN (16u << 20)

enum {
	REG_ID = 0x00,
	REG_SCRATCH = 0x04,
	REG_INV = 0x08,
	REG_DMA_SRC = 0x10,
	REG_DMA_DST = 0x18,
	REG_DMA_LEN = 0x20,
	REG_DMA_CMD = 0x24,
	REG_DMA_STATUS = 0x28,
	REG_DMA_IRQ = 0x2c,
	REG_DOORBELL_MSIX = 0x30,
	REG_DOORBELL_MSI = 0x34,
	REG_INTX = 0x38,
	REG_RESET_COUNT = 0x3c,
	REG_SCRATCH64 = 0x40,
	REG_SIDE_EFFECTS = 0x48,
	REG_DMA_SUM = 0x50,
	REG_FETCH_ADDR = 0x58,
	REG_FETCH = 0x60,
	REGS_END = 0x64,
};

#define DMA_CMD_START   (1u << 0)
#define DMA_CMD_IRQ     (1u << 1)
#define DMA_CMD_OP(c)   (((c) >> 4) & 3)
enum { DMA_OP_COPY, DMA_OP_FILL, DMA_OP_SUM };
#define DMA_ST_BUSY     (1u << 0)
#define DMA_ST_DONE     (1u << 1)
#define DMA_ST_ERROR    (1u << 2)

enum { IRQ_NONE, IRQ_INTX, IRQ_MSI, IRQ_MSIX };

#define CFG_BASE 0x40u
#define CFG_END  0x80u

struct testdev {
	struct pf_dev *dev;
	uint64_t side_effects;  /* SIDE_EFFECTS reads so far */
	/* BAR0 registers, as a little-endian image so any access size works. */
	uint8_t regs[REGS_END];
	uint8_t io[IO_SIZE];
	uint8_t cfg[CFG_END - CFG_BASE];
	uint8_t *ram;
	uint32_t reset_count;
	uint32_t dma_cmd;      /* command of the copy in flight */
	uint64_t dma_dst;
	uint32_t dma_len;
};

static uint32_t reg32(const struct testdev *t, unsigned off)
{
	return (uint32_t)pf_le_load(t->regs + off, 4);
}

static void set_reg32(struct testdev *t, unsigned off, uint32_t v)
{
	pf_le_store(t->regs + off, 4, v);
}

static void power_on(struct testdev *t)
{
	memset(t->regs, 0, sizeof(t->regs));
	memset(t->io, 0, sizeof(t->io));
	memset(t->cfg, 0, sizeof(t->cfg));
	memset(t->ram, 0, RAM_SIZE);
	set_reg32(t, REG_ID, TESTDEV_ID);
	set_reg32(t, REG_INV, ~0u);
	pf_le_store(t->io, 4, TESTDEV_IO_ID);
	pf_le_store(t->cfg, 4, TESTDEV_CFG_ID);
	t->dma_cmd = 0;
	t->side_effects = 0;
}

static void raise_irq(struct testdev *t, uint32_t sel)
{
	unsigned vector = (sel >> 8) & 0xff;

	switch (sel & 3) {
	case IRQ_INTX:
		pf_set_intx(t->dev, true);
		set_reg32(t, REG_INTX, 1);
		break;
	case IRQ_MSI:
		pf_raise_msi(t->dev, vector);
		break;
	case IRQ_MSIX:
		pf_raise_msix(t->dev, vector);
		break;
	}
}

static void dma_finish(struct testdev *t, uint32_t status)
{
	set_reg32(t, REG_DMA_STATUS, (reg32(t, REG_DMA_STATUS) & ~DMA_ST_BUSY) | status);
	/* The data went out before this interrupt (spec 5.1). */
	if (t->dma_cmd & DMA_CMD_IRQ)
		raise_irq(t, reg32(t, REG_DMA_IRQ));
	t->dma_cmd = 0;
}

/*
 * The sum of @len bytes at memory speed: 64 at a time with SSE2's PSADBW
 * (the sum of 8 bytes' distances from zero) where the build has it, then
 * 8 at a time, two bytes per 16-bit lane of a word, folded before a lane
 * can overflow (128 steps of at most 510).  A byte at a time, summing ran
 * at a fifth of memcpy's speed, and the bench's "DMA read" timed that loop
 * rather than the DMA.
 */
static uint32_t byte_sum(const uint8_t *p, uint32_t len)
{
	const uint64_t lanes = 0x00ff00ff00ff00ffull;
	uint64_t total = 0;
	uint32_t i = 0;

#if defined(__SSE2__) && defined(__x86_64__)
	__m128i sums[4] = { _mm_setzero_si128(), _mm_setzero_si128(),
			    _mm_setzero_si128(), _mm_setzero_si128() };

	for (; len - i >= 64; i += 64)
		for (int k = 0; k < 4; k++)
			sums[k] = _mm_add_epi64(sums[k], _mm_sad_epu8(
				_mm_loadu_si128((const __m128i *)(p + i + 16 * k)),
				_mm_setzero_si128()));
	for (int k = 0; k < 4; k++)
		total += (uint64_t)_mm_cvtsi128_si64(sums[k]) +
			 (uint64_t)_mm_cvtsi128_si64(_mm_unpackhi_epi64(sums[k], sums[k]));
#endif
	while (len - i >= 8) {
		uint32_t end = len - i >= 8 * 128 ? i + 8 * 128 : len & ~7u;
		uint64_t acc = 0;

		for (; i < end; i += 8) {
			uint64_t w;

			memcpy(&w, p + i, 8);
			acc += (w & lanes) + (w >> 8 & lanes);
		}
		total += (acc & 0xffff) + (acc >> 16 & 0xffff) +
			 (acc >> 32 & 0xffff) + (acc >> 48);
	}
	for (; i < len; i++)
		total += p[i];
	return (uint32_t)total;
}

/* The source's bytes have been read (by DMA, or in place): SUM or COPY. */
static void dma_source(struct testdev *t, const uint8_t *data, uint32_t len)
{
	if (DMA_CMD_OP(t->dma_cmd) == DMA_OP_SUM) {
		set_reg32(t, REG_DMA_SUM, byte_sum(data, len));
	} else if (pf_dma_write(t->dev, t->dma_dst, data, len) < 0) {
		dma_finish(t, DMA_ST_ERROR);
		return;
	}
	dma_finish(t, DMA_ST_DONE);
}

static void dma_read_done(void *opaque, enum pf_dma_result res,
			  const void *data, uint32_t len)
{
	struct testdev *t = opaque;

	if (res == PF_DMA_CANCELLED)
		return;          /* reset already cleared the registers */
	if (res != PF_DMA_OK) {
		dma_finish(t, DMA_ST_ERROR);
		return;
	}
	dma_source(t, data, len);
}

/*
 * FILL in pieces from one small buffer: the model holds no copy of a
 * 16 MiB fill; the framework bounds what it queues (device.h).
 */
static int dma_fill(struct testdev *t, uint32_t len)
{
	static uint8_t piece[64 * 1024];
	uint8_t *p;

	if (t->dma_dst > UINT64_MAX - (len - 1))
		return -1;       /* wraps past 2^64: nothing is written */
	p = pf_dma_map(t->dev, t->dma_dst, len, true);
	if (p) {
		memset(p, t->regs[REG_SCRATCH], len);
		pf_dma_unmap(t->dev, p);
		return 0;
	}
	memset(piece, t->regs[REG_SCRATCH], sizeof(piece));
	for (uint32_t off = 0; off < len; off += sizeof(piece)) {
		uint32_t n = len - off < sizeof(piece) ? len - off : sizeof(piece);

		if (pf_dma_write(t->dev, t->dma_dst + off, piece, n) < 0)
			return -1;
	}
	return 0;
}

static void dma_start(struct testdev *t, uint32_t cmd)
{
	uint32_t len = reg32(t, REG_DMA_LEN);
	uint64_t src = pf_le_load(t->regs + REG_DMA_SRC, 8);
	const uint8_t *data;

	if (reg32(t, REG_DMA_STATUS) & DMA_ST_BUSY)
		return;
	t->dma_cmd = cmd;
	if (len == 0 || len > DMA_MAX_LEN) {
		dma_finish(t, DMA_ST_ERROR);
		return;
	}
	t->dma_dst = pf_le_load(t->regs + REG_DMA_DST, 8);
	t->dma_len = len;
	set_reg32(t, REG_DMA_STATUS, DMA_ST_BUSY);
	if (DMA_CMD_OP(cmd) == DMA_OP_FILL) {
		dma_finish(t, dma_fill(t, len) < 0 ? DMA_ST_ERROR : DMA_ST_DONE);
		return;
	}
	/* In place where guest memory is shared (device.h), else by DMA. */
	data = pf_dma_map(t->dev, src, len, false);
	if (data) {
		dma_source(t, data, len);
		pf_dma_unmap(t->dev, data);
		return;
	}
	if (pf_dma_read(t->dev, src, len, dma_read_done, t) < 0)
		dma_finish(t, DMA_ST_ERROR);
}

static void side_read_done(void *opaque, enum pf_dma_result res,
			   const void *data, uint32_t len)
{
	struct testdev *t = opaque;

	if (res == PF_DMA_OK && len == 8)
		memcpy(t->regs + REG_SCRATCH64, data, 8);
}

/*
 * Before its completion leaves, a SIDE_EFFECTS read sends a DMA write, an
 * MSI-X and a DMA read: the host must serve them while it waits (spec 5.3).
 */
static uint64_t side_effects(struct testdev *t)
{
	uint8_t seq[8];

	pf_le_store(seq, 8, ++t->side_effects);
	pf_dma_write(t->dev, pf_le_load(t->regs + REG_DMA_DST, 8), seq, 8);
	pf_raise_msix(t->dev, 1);
	pf_dma_read(t->dev, pf_le_load(t->regs + REG_DMA_SRC, 8), 8,
		    side_read_done, t);
	return t->side_effects;
}

static void fetch_done(void *opaque, enum pf_dma_result res,
		       const void *data, uint32_t len)
{
	struct testdev *t = opaque;

	if (res == PF_DMA_CANCELLED)
		return;          /* the framework dropped the read with the host */
	pf_complete_read(t->dev, res == PF_DMA_OK ? PF_CPL_OK : PF_CPL_CA, data, len);
}

/*
 * FETCH: the read completes only once the 4 bytes it DMA-reads at
 * FETCH_ADDR have arrived, as a device that fetches a descriptor before
 * answering.  The host must serve the DMA read while it waits (spec 5.3).
 */
static int fetch(struct testdev *t)
{
	if (pf_dma_read(t->dev, pf_le_load(t->regs + REG_FETCH_ADDR, 8), 4,
			fetch_done, t) < 0)
		return PF_CPL_CA;
	return PF_CPL_DEFER;
}

static void regs_write(struct testdev *t, uint64_t off, const void *data,
		       uint32_t size)
{
	uint32_t v = (uint32_t)pf_le_load(data, size);

	if (off + size > REGS_END)
		return;
	switch (off) {
	case REG_ID:
	case REG_INV:
	case REG_RESET_COUNT:
	case REG_SIDE_EFFECTS:
	case REG_SIDE_EFFECTS + 4:
	case REG_DMA_SUM:
	case REG_FETCH:
		return;
	case REG_DMA_CMD:
		if (v & DMA_CMD_START)
			dma_start(t, v);
		return;
	case REG_DMA_STATUS:
		set_reg32(t, off, reg32(t, off) & ~(v & (DMA_ST_DONE | DMA_ST_ERROR)));
		return;
	case REG_DOORBELL_MSIX:
		pf_raise_msix(t->dev, v);
		return;
	case REG_DOORBELL_MSI:
		pf_raise_msi(t->dev, v);
		return;
	case REG_INTX:
		set_reg32(t, off, v & 1);
		pf_set_intx(t->dev, v & 1);
		return;
	}
	memcpy(t->regs + off, data, size);
	if (off < REG_SCRATCH + 4 && off + size > REG_SCRATCH)
		set_reg32(t, REG_INV, ~reg32(t, REG_SCRATCH));
}

static int testdev_bar_read(void *s, unsigned bar, uint64_t off, void *data,
			    uint32_t size)
{
	struct testdev *t = s;

	switch (bar) {
	case BAR_REGS:
		if (off == REG_FETCH && size == 4)
			return fetch(t);
		pf_le_store(t->regs + REG_RESET_COUNT, 4, t->reset_count);
		if (off == REG_SIDE_EFFECTS && size >= 4)
			pf_le_store(t->regs + REG_SIDE_EFFECTS, 8, side_effects(t));
		memset(data, 0, size);
		if (off + size <= REGS_END)
			memcpy(data, t->regs + off, size);
		return PF_CPL_OK;
	case BAR_RAM:
		memcpy(data, t->ram + off, size);
		return PF_CPL_OK;
	case BAR_IO:
		memcpy(data, t->io + off, size);
		return PF_CPL_OK;
	default:
		/* BAR1 holds the MSI-X table, which the host emulates. */
		return PF_CPL_UR;
	}
}

static void testdev_bar_write(void *s, unsigned bar, uint64_t off,
			      const void *data, uint32_t size)
{
	struct testdev *t = s;

	switch (bar) {
	case BAR_REGS:
		regs_write(t, off, data, size);
		break;
	case BAR_RAM:
		memcpy(t->ram + off, data, size);
		break;
	case BAR_IO:
		if (off >= 4)
			memcpy(t->io + off, data, size);
		break;
	}
}

static int testdev_config_read(void *s, uint32_t off, void *data, uint32_t size)
{
	struct testdev *t = s;

	if (off < CFG_BASE)
		return PF_CPL_UR;
	memset(data, 0, size);
	/* Nothing beyond 0x80: extended config reads as an empty cap list. */
	if (off + size <= CFG_END)
		memcpy(data, t->cfg + (off - CFG_BASE), size);
	return PF_CPL_OK;
}

static int testdev_config_write(void *s, uint32_t off, const void *data,
				uint32_t size)
{
	struct testdev *t = s;

	if (off < CFG_BASE)
		return PF_CPL_UR;
	if (off >= CFG_BASE + 4 && off + size <= CFG_END)
		memcpy(t->cfg + (off - CFG_BASE), data, size);
	return PF_CPL_OK;
}

static void testdev_reset(void *s, enum pf_reset_kind kind)
{
	struct testdev *t = s;

	if (kind != PF_RESET_DISCONNECT)
		t->reset_count++;
	power_on(t);
}

static void testdev_destroy(void *s)
{
	struct testdev *t = s;

	free(t->ram);
	free(t);
}

static void *testdev_create(struct pf_dev *dev, struct pf_identity *id)
{
	struct testdev *t = calloc(1, sizeof(*t));

	if (!t || !(t->ram = malloc(RAM_SIZE))) {
		free(t);
		pf_dev_error(dev, "out of memory");
		return NULL;
	}
	t->dev = dev;
	power_on(t);

	id->vendor_id = 0x1234;
	id->device_id = 0xfe01;
	id->subsystem_vendor_id = 0x1234;
	id->subsystem_id = 0x0001;
	id->class_code = 0xff0000;
	id->revision = 1;
	/* A register file: 1-8 bytes, no bursts (docs/testdev.md). */
	id->bars[BAR_REGS] = (struct pf_bar_decl){
		.kind = PF_BAR_MEM32, .size = 4096, .bursts = PF_BURST_UR,
	};
	id->bars[BAR_MSIX] = (struct pf_bar_decl){ .kind = PF_BAR_MEM32, .size = 4096 };
	id->bars[BAR_RAM] = (struct pf_bar_decl){
		.kind = PF_BAR_MEM64, .prefetchable = true, .size = RAM_SIZE,
		.bursts = PF_BURST_WHOLE,
	};
	id->bars[BAR_IO] = (struct pf_bar_decl){ .kind = PF_BAR_IO, .size = IO_SIZE };
	id->intx_pin = 1;
	id->msi_vectors = MSI_VECTORS;
	id->msix_vectors = MSIX_VECTORS;
	id->msix_table_bar = BAR_MSIX;
	id->msix_table_offset = 0;
	id->msix_pba_bar = BAR_MSIX;
	id->msix_pba_offset = 0x800;
	return t;
}

static const struct pf_model_ops testdev_ops = {
	.bar_read = testdev_bar_read,
	.bar_write = testdev_bar_write,
	.config_read = testdev_config_read,
	.config_write = testdev_config_write,
	.reset = testdev_reset,
	.destroy = testdev_destroy,
};

static struct pf_model testdev_model = {
	.name = "testdev",
	.summary = "bridge test device: every BAR kind, DMA engine, doorbells (docs/testdev.md)",
	.create = testdev_create,
	.ops = &testdev_ops,
};

PF_MODEL_REGISTER(testdev_model);
