/*
 * A real pciefw-endpoint serving testdev, driven through the host library:
 * handshake, description, every BAR kind, config space, DMA, interrupts,
 * reset, one-host-at-a-time, and the deadlock-freedom rule (spec 5).
 * Register map: docs/testdev.md.
 */
#include <glib.h>
#include <string.h>

#include "host_util.h"
#include "msg.h"
#include "pciefw.h"

enum {
	R_ID = 0x00, R_SCRATCH = 0x04, R_INV = 0x08, R_DMA_SRC = 0x10,
	R_DMA_DST = 0x18, R_DMA_LEN = 0x20, R_DMA_CMD = 0x24, R_DMA_STATUS = 0x28,
	R_DMA_IRQ = 0x2c, R_DB_MSIX = 0x30, R_DB_MSI = 0x34, R_INTX = 0x38,
	R_RESET_COUNT = 0x3c, R_SCRATCH64 = 0x40, R_SIDE = 0x48, R_DMA_SUM = 0x50,
	R_FETCH_ADDR = 0x58, R_FETCH = 0x60,
};

static const char *const testdev_args[] = { "--device", "testdev", NULL };

struct fixture {
	struct endpoint_proc ep;
	struct pf_host *h;
};

static void setup(struct fixture *f, gconstpointer tcp)
{
	endpoint_start(&f->ep, tcp != NULL, testdev_args);
	f->h = connect_host(&f->ep);
}

static void teardown(struct fixture *f, gconstpointer data)
{
	pf_host_close(f->h, true);
	g_assert_true(endpoint_alive(&f->ep));
	g_assert_cmpint(endpoint_stop(&f->ep), ==, 0);
}

static void test_description(struct fixture *f, gconstpointer data)
{
	const Pciefw__DeviceDescription *d = pf_host_description(f->h);
	const struct pf_session *s = pf_host_session(f->h);
	uint64_t sizes[6] = { 0 };
	int kinds[6];

	g_assert_cmpuint(s->version_major, ==, PCIEFW_VERSION_MAJOR);
	g_assert_cmpuint(s->max_payload, ==, PCIEFW_DEFAULT_PAYLOAD);
	g_assert_true(g_str_has_prefix(s->peer_name, "pciefw-endpoint"));
	g_assert_cmphex(d->vendor_id, ==, 0x1234);
	g_assert_cmphex(d->device_id, ==, 0xfe01);
	g_assert_cmphex(d->subsystem_vendor_id, ==, 0x1234);
	g_assert_cmphex(d->subsystem_id, ==, 0x0001);
	g_assert_cmphex(d->class_code, ==, 0xff0000);
	g_assert_cmpuint(d->revision, ==, 1);
	g_assert_cmpuint(d->intx_pin, ==, 1);
	g_assert_cmpuint(d->msi_vectors, ==, 4);
	g_assert_cmpuint(d->msix_vectors, ==, 8);
	g_assert_cmpuint(d->msix_table_bar, ==, 1);
	g_assert_cmpuint(d->msix_pba_bar, ==, 1);
	g_assert_cmphex(d->msix_pba_offset, ==, 0x800);
	g_assert_cmpuint(d->n_bars, ==, 4);
	for (size_t i = 0; i < d->n_bars; i++) {
		sizes[d->bars[i]->index] = d->bars[i]->size;
		kinds[d->bars[i]->index] = d->bars[i]->kind;
	}
	g_assert_cmpuint(sizes[0], ==, 4096);
	g_assert_cmpint(kinds[0], ==, PCIEFW__BAR_KIND__BAR_MEM32);
	g_assert_cmpuint(sizes[2], ==, 1u << 20);
	g_assert_cmpint(kinds[2], ==, PCIEFW__BAR_KIND__BAR_MEM64);
	g_assert_cmpuint(sizes[4], ==, 32);
	g_assert_cmpint(kinds[4], ==, PCIEFW__BAR_KIND__BAR_IO);
	g_assert_cmpuint(sizes[3], ==, 0);
}

static void test_version_refusal(void)
{
	struct endpoint_proc ep;
	struct pf_host_opts o = { .version_major = 2, .version_minor = 3 };
	char err[512], ours[16];
	struct pf_host *h;

	/* Ours is whatever this build speaks (pciefw.h). */
	g_snprintf(ours, sizeof(ours), "%u.%u", PCIEFW_VERSION_MAJOR,
		   PCIEFW_VERSION_MINOR);
	endpoint_start(&ep, false, testdev_args);
	h = pf_host_connect(ep.addr, &o, err, sizeof(err));
	g_assert_null(h);
	g_assert_nonnull(strstr(err, "protocol version mismatch"));
	g_assert_nonnull(strstr(err, "2.3"));
	g_assert_nonnull(strstr(err, ours));
	/* The endpoint refused too, said why, and serves the next host. */
	h = connect_host(&ep);
	g_assert_cmphex(rd32(h, 0, R_ID), ==, 0x7e57de01);
	pf_host_close(h, true);
	char *log = endpoint_log(&ep);
	char said[64];

	g_snprintf(said, sizeof(said), "peer speaks 2.3, we speak %s", ours);
	g_assert_nonnull(strstr(log, said));
	g_free(log);
	g_assert_cmpint(endpoint_stop(&ep), ==, 0);
}

static void test_bar0_registers(struct fixture *f, gconstpointer data)
{
	struct pf_host *h = f->h;
	uint8_t b[8];

	g_assert_cmphex(rd32(h, 0, R_ID), ==, 0x7e57de01);
	wr32(h, 0, R_SCRATCH, 0xa5a5f00f);
	g_assert_cmphex(rd32(h, 0, R_SCRATCH), ==, 0xa5a5f00f);
	g_assert_cmphex(rd32(h, 0, R_INV), ==, 0x5a5a0ff0);
	/* Byte and word accesses see the little-endian image. */
	g_assert_cmpint(pf_host_mem_read(h, 0, R_SCRATCH + 1, b, 1), ==, 0);
	g_assert_cmphex(b[0], ==, 0xf0);
	g_assert_cmpint(pf_host_mem_read(h, 0, R_SCRATCH + 2, b, 2), ==, 0);
	g_assert_cmphex(pf_le_load(b, 2), ==, 0xa5a5);
	b[0] = 0x11;
	g_assert_cmpint(pf_host_mem_write(h, 0, R_SCRATCH, b, 1), ==, 0);
	g_assert_cmphex(rd32(h, 0, R_SCRATCH), ==, 0xa5a5f011);
	wr64(h, 0, R_SCRATCH64, 0x0123456789abcdefull);
	g_assert_cmpint(pf_host_mem_read(h, 0, R_SCRATCH64, b, 8), ==, 0);
	g_assert_cmphex(pf_le_load(b, 8), ==, 0x0123456789abcdefull);
	/* Undefined offsets read 0; the MSI-X BAR is the host's, never ours. */
	g_assert_cmphex(rd32(h, 0, 0x800), ==, 0);
	g_assert_cmpint(pf_host_mem_read(h, 1, 0, b, 4), ==,
			PCIEFW__STATUS__STATUS_UNSUPPORTED_REQUEST);
	/* A register file takes no bursts (docs/testdev.md): UR, or dropped. */
	uint8_t burst[16];

	memset(burst, 0x77, sizeof(burst));
	g_assert_cmpint(pf_host_mem_read(h, 0, 0, burst, 16), ==,
			PCIEFW__STATUS__STATUS_UNSUPPORTED_REQUEST);
	g_assert_cmpint(pf_host_mem_write(h, 0, R_SCRATCH, burst, 16), ==, 0);
	g_assert_cmphex(rd32(h, 0, R_SCRATCH), ==, 0xa5a5f011);
	g_assert_cmphex(rd32(h, 0, R_DMA_SRC), ==, 0);
}

/*
 * FETCH completes only after the data of its own DMA read has arrived: the
 * host library serves that read while it waits (spec 5.3).
 */
static void test_fetch(struct fixture *f, gconstpointer data)
{
	struct pf_host *h = f->h;
	struct pf_guest_mem *m = pf_host_mem(h);
	uint8_t b[4];

	for (uint32_t i = 0; i < 100; i++) {
		uint32_t v = 0x600d0000u + i;

		pf_le_store(m->data + 0x4000 + 4 * i, 4, v);
		wr64(h, 0, R_FETCH_ADDR, GUEST_BASE + 0x4000 + 4 * i);
		g_assert_cmphex(rd32(h, 0, R_FETCH), ==, v);
	}
	g_assert_cmpuint(pf_host_stats(h)->dma_reads, ==, 100);
	/* Other sizes at FETCH do not fetch. */
	g_assert_cmpint(pf_host_mem_read(h, 0, R_FETCH, b, 2), ==, 0);
	g_assert_cmpuint(pf_host_stats(h)->dma_reads, ==, 100);
	/* A refused DMA read: the register refuses too (CA, all ones). */
	m->bus_master = false;
	g_assert_cmpint(pf_host_mem_read(h, 0, R_FETCH, b, 4), ==,
			PCIEFW__STATUS__STATUS_COMPLETER_ABORT);
	m->bus_master = true;
	wr64(h, 0, R_FETCH_ADDR, 0x10);                    /* no memory there */
	g_assert_cmpint(pf_host_mem_read(h, 0, R_FETCH, b, 4), ==,
			PCIEFW__STATUS__STATUS_COMPLETER_ABORT);
	/* And the device goes on as before. */
	g_assert_cmphex(rd32(h, 0, R_ID), ==, 0x7e57de01);
}

static void test_bar2_ram(struct fixture *f, gconstpointer data)
{
	struct pf_host *h = f->h;
	uint32_t max = pf_host_session(h)->max_payload;
	uint8_t *w = g_malloc(max), *r = g_malloc(max);
	static const uint32_t sizes[] = { 1, 2, 4, 8, 16, 100, 4096 };
	const Pciefw__DeviceDescription *d = pf_host_description(h);
	const Pciefw__Bar *bar2 = NULL;

	/* What the description says of BAR2 (docs/testdev.md). */
	for (size_t i = 0; i < d->n_bars; i++)
		if (d->bars[i]->index == 2)
			bar2 = d->bars[i];
	g_assert_nonnull(bar2);
	g_assert_cmpint(bar2->kind, ==, PCIEFW__BAR_KIND__BAR_MEM64);
	g_assert_true(bar2->prefetchable);
	g_assert_cmpuint(bar2->size, ==, 1u << 20);

	for (size_t i = 0; i < G_N_ELEMENTS(sizes); i++) {
		uint64_t off = (1u << 20) - 4096 * (i + 1);

		for (uint32_t j = 0; j < sizes[i]; j++)
			w[j] = (uint8_t)(j * 13 + i);
		g_assert_cmpint(pf_host_mem_write(h, 2, off, w, sizes[i]), ==, 0);
		g_assert_cmpint(pf_host_mem_read(h, 2, off, r, sizes[i]), ==, 0);
		g_assert_cmpmem(r, sizes[i], w, sizes[i]);
	}
	/* A burst of the negotiated maximum, at the very end of the BAR. */
	for (uint32_t j = 0; j < max; j++)
		w[j] = (uint8_t)(j ^ (j >> 8));
	g_assert_cmpint(pf_host_mem_write(h, 2, (1u << 20) - max, w, max), ==, 0);
	g_assert_cmpint(pf_host_mem_read(h, 2, (1u << 20) - max, r, max), ==, 0);
	g_assert_cmpmem(r, max, w, max);
	g_free(w);
	g_free(r);
}

static void test_bar4_io(struct fixture *f, gconstpointer data)
{
	struct pf_host *h = f->h;
	uint8_t b[4];

	g_assert_cmpint(pf_host_io_read(h, 4, 0, b, 4), ==, 0);
	g_assert_cmphex(pf_le_load(b, 4), ==, 0x7e5710de);
	pf_le_store(b, 4, 0xcafef00d);
	g_assert_cmpint(pf_host_io_write(h, 4, 0x1c, b, 4), ==, 0);
	b[0] = 0x77;
	g_assert_cmpint(pf_host_io_write(h, 4, 0x1d, b, 1), ==, 0);
	g_assert_cmpint(pf_host_io_read(h, 4, 0x1c, b, 4), ==, 0);
	g_assert_cmphex(pf_le_load(b, 4), ==, 0xcafe770d);
	g_assert_cmpint(pf_host_io_read(h, 4, 0x1e, b, 2), ==, 0);
	g_assert_cmphex(pf_le_load(b, 2), ==, 0xcafe);
	/* The ID is read-only. */
	g_assert_cmpint(pf_host_io_write(h, 4, 0, b, 4), ==, 0);
	g_assert_cmpint(pf_host_io_read(h, 4, 0, b, 4), ==, 0);
	g_assert_cmphex(pf_le_load(b, 4), ==, 0x7e5710de);
	/* IO accesses to a memory BAR and vice versa are unsupported. */
	g_assert_cmpint(pf_host_io_read(h, 0, 0, b, 4), ==,
			PCIEFW__STATUS__STATUS_UNSUPPORTED_REQUEST);
	g_assert_cmpint(pf_host_mem_read(h, 4, 0, b, 4), ==,
			PCIEFW__STATUS__STATUS_UNSUPPORTED_REQUEST);
}

static void test_config_space(struct fixture *f, gconstpointer data)
{
	struct pf_host *h = f->h;
	uint8_t b[4];

	g_assert_cmpint(pf_host_config_read(h, 0x40, b, 4), ==, 0);
	g_assert_cmphex(pf_le_load(b, 4), ==, 0x7e57cf61);
	pf_le_store(b, 4, 0x12345678);
	g_assert_cmpint(pf_host_config_write(h, 0x7c, b, 4), ==, 0);
	g_assert_cmpint(pf_host_config_write(h, 0x40, b, 4), ==, 0);   /* RO */
	g_assert_cmpint(pf_host_config_read(h, 0x7e, b, 2), ==, 0);
	g_assert_cmphex(pf_le_load(b, 2), ==, 0x1234);
	g_assert_cmpint(pf_host_config_read(h, 0x40, b, 4), ==, 0);
	g_assert_cmphex(pf_le_load(b, 4), ==, 0x7e57cf61);
	/* Extended config reads as an empty capability list. */
	g_assert_cmpint(pf_host_config_read(h, 0x100, b, 4), ==, 0);
	g_assert_cmphex(pf_le_load(b, 4), ==, 0);
	/* The standard header is the host's: the device does not answer it. */
	g_assert_cmpint(pf_host_config_read(h, 0x00, b, 4), ==,
			PCIEFW__STATUS__STATUS_UNSUPPORTED_REQUEST);
	/* Unaligned: UR, connection stays up. */
	g_assert_cmpint(pf_host_config_read(h, 0x41, b, 4), ==,
			PCIEFW__STATUS__STATUS_UNSUPPORTED_REQUEST);
	/* Offsets the host never forwards (spec 4.1): UR, reads and writes. */
	for (uint32_t off = 0; off < 0x100; off += 4) {
		if (off >= 0x40 && off < 0x80)
			continue;
		g_assert_cmpint(pf_host_config_read(h, off, b, 4), ==,
				PCIEFW__STATUS__STATUS_UNSUPPORTED_REQUEST);
		g_assert_cmpint(pf_host_config_write(h, off, b, 4), ==,
				PCIEFW__STATUS__STATUS_UNSUPPORTED_REQUEST);
	}
}

/* Without CONFIG_EXT the host never forwards 0x100-0xfff: UR there. */
static void test_config_without_ext(struct fixture *f, gconstpointer data)
{
	struct pf_host_opts o = { .version_major = PCIEFW_VERSION_MAJOR,
				  .features = PCIEFW_FEATURE_MEM_BURST };
	char err[256];
	struct pf_host *h;
	uint8_t b[4];

	pf_host_close(f->h, true);
	f->h = NULL;
	for (int i = 0; i < 100 && !(h = pf_host_connect(f->ep.addr, &o, err,
							 sizeof(err))); i++)
		g_usleep(10000);        /* until the endpoint saw us leave */
	g_assert_nonnull(h);
	g_assert_cmpint(pf_host_config_read(h, 0x100, b, 4), ==,
			PCIEFW__STATUS__STATUS_UNSUPPORTED_REQUEST);
	g_assert_cmpint(pf_host_config_read(h, 0xffc, b, 4), ==,
			PCIEFW__STATUS__STATUS_UNSUPPORTED_REQUEST);
	g_assert_cmpint(pf_host_config_read(h, 0x40, b, 4), ==, 0);
	g_assert_cmphex(pf_le_load(b, 4), ==, 0x7e57cf61);
	f->h = h;
}

static bool msix_seen(struct pf_host *h, void *arg)
{
	return pf_host_irqs(h)->msix[GPOINTER_TO_UINT(arg)] > 0;
}

struct landed {
	const uint8_t *want, *where;
	uint32_t len;
	int seen, complete;
};

/* At the moment the DMA-done MSI-X arrives, has all the data landed? */
static void check_landed(struct pf_host *h, int kind, uint32_t vector, void *arg)
{
	struct landed *l = arg;

	if (kind != PCIEFW__MESSAGE__BODY_MSIX || vector != 2)
		return;
	l->seen++;
	l->complete += !memcmp(l->where, l->want, l->len);
}

static void dma_copy(struct pf_host *h, uint32_t len)
{
	struct pf_guest_mem *m = pf_host_mem(h);
	uint64_t src = GUEST_BASE + 0x1000, dst = GUEST_BASE + (4u << 20) + 3;
	uint64_t before = pf_host_irqs(h)->msix[2];
	struct landed landed = {
		.want = m->data + 0x1000, .where = m->data + (4u << 20) + 3,
		.len = len,
	};

	for (uint32_t i = 0; i < len; i++)
		m->data[0x1000 + i] = (uint8_t)(i * 31 + len);
	memset(m->data + (4u << 20), 0, (2u << 20));
	wr64(h, 0, R_DMA_SRC, src);
	wr64(h, 0, R_DMA_DST, dst);
	wr32(h, 0, R_DMA_LEN, len);
	wr32(h, 0, R_DMA_IRQ, 3 | 2 << 8);            /* MSI-X vector 2 */
	pf_host_set_irq_hook(h, check_landed, &landed);
	wr32(h, 0, R_DMA_CMD, 3);                      /* START | IRQ */
	for (int i = 0; i < 100 && pf_host_irqs(h)->msix[2] == before; i++)
		g_assert_cmpint(pf_host_poll(h, 100), >=, 0);
	pf_host_set_irq_hook(h, NULL, NULL);
	g_assert_cmpuint(pf_host_irqs(h)->msix[2], ==, before + 1);
	/* Every byte had landed when the interrupt arrived (spec 5.1). */
	g_assert_cmpint(landed.seen, ==, 1);
	g_assert_cmpint(landed.complete, ==, 1);
	g_assert_cmphex(rd32(h, 0, R_DMA_STATUS), ==, 2);   /* DONE */
	g_assert_cmpmem(m->data + (4u << 20) + 3, len, m->data + 0x1000, len);
	g_assert_cmpuint(m->data[(4u << 20) + 3 + len], ==, 0);
	g_assert_cmpuint(m->data[(4u << 20) + 2], ==, 0);
	wr32(h, 0, R_DMA_STATUS, 2);
	g_assert_cmphex(rd32(h, 0, R_DMA_STATUS), ==, 0);
}

static void test_dma_copies(struct fixture *f, gconstpointer data)
{
	dma_copy(f->h, 1);
	dma_copy(f->h, 4096);
	dma_copy(f->h, 1u << 20);
	g_assert_cmpuint(pf_host_stats(f->h)->dma_read_bytes, ==, 1 + 4096 + (1u << 20));
	g_assert_cmpuint(pf_host_stats(f->h)->dma_write_bytes, ==, 1 + 4096 + (1u << 20));
}

static bool dma_idle(struct pf_host *h, void *arg)
{
	return !(rd32(h, 0, R_DMA_STATUS) & 1);
}

/* The one-way DMA operations the benchmark uses. */
static void test_dma_fill_and_sum(struct fixture *f, gconstpointer data)
{
	struct pf_host *h = f->h;
	uint8_t *mem = pf_host_mem(h)->data;
	uint32_t len = 200000, sum = 0;

	wr32(h, 0, R_SCRATCH, 0x5a);
	wr64(h, 0, R_DMA_DST, GUEST_BASE + 100);
	wr32(h, 0, R_DMA_LEN, len);
	wr32(h, 0, R_DMA_CMD, 1 | 1 << 4);             /* FILL */
	g_assert_cmpint(pf_host_wait(h, dma_idle, NULL, 5000), ==, 0);
	g_assert_cmphex(rd32(h, 0, R_DMA_STATUS), ==, 2);
	g_assert_cmpuint(mem[99], ==, 0);
	g_assert_cmpuint(mem[100], ==, 0x5a);
	g_assert_cmpuint(mem[100 + len - 1], ==, 0x5a);
	g_assert_cmpuint(mem[100 + len], ==, 0);
	g_assert_cmpuint(pf_host_stats(h)->dma_reads, ==, 0);

	for (uint32_t i = 0; i < len; i++) {
		mem[0x100000 + i] = (uint8_t)(i * 7);
		sum += (uint8_t)(i * 7);
	}
	wr64(h, 0, R_DMA_SRC, GUEST_BASE + 0x100000);
	wr32(h, 0, R_DMA_CMD, 1 | 2 << 4);             /* SUM */
	g_assert_cmpint(pf_host_wait(h, dma_idle, NULL, 5000), ==, 0);
	g_assert_cmphex(rd32(h, 0, R_DMA_SUM), ==, sum);
	g_assert_cmpuint(pf_host_stats(h)->dma_read_bytes, ==, len);
	g_assert_cmpuint(pf_host_stats(h)->dma_write_bytes, ==, len);
}

static void test_dma_refused(struct fixture *f, gconstpointer data)
{
	struct pf_host *h = f->h;

	pf_host_mem(h)->bus_master = false;
	wr64(h, 0, R_DMA_SRC, GUEST_BASE);
	wr64(h, 0, R_DMA_DST, GUEST_BASE + 0x10000);
	wr32(h, 0, R_DMA_LEN, 64);
	wr32(h, 0, R_DMA_IRQ, 3 | 4 << 8);
	wr32(h, 0, R_DMA_CMD, 3);
	g_assert_cmpint(pf_host_wait(h, msix_seen, GUINT_TO_POINTER(4), 5000), ==, 0);
	g_assert_cmphex(rd32(h, 0, R_DMA_STATUS), ==, 4);    /* ERROR */
	g_assert_cmpuint(pf_host_stats(h)->dma_refused, ==, 1);
	/* Outside guest RAM, with bus mastering on: refused as well. */
	pf_host_mem(h)->bus_master = true;
	wr32(h, 0, R_DMA_STATUS, 4);
	wr64(h, 0, R_DMA_SRC, 0x10);
	wr32(h, 0, R_DMA_CMD, 1);
	for (int i = 0; i < 50 && rd32(h, 0, R_DMA_STATUS) != 4; i++)
		pf_host_poll(h, 20);
	g_assert_cmphex(rd32(h, 0, R_DMA_STATUS), ==, 4);
	/* Length out of range. */
	wr32(h, 0, R_DMA_STATUS, 4);
	wr32(h, 0, R_DMA_LEN, 0);
	wr32(h, 0, R_DMA_CMD, 1);
	g_assert_cmphex(rd32(h, 0, R_DMA_STATUS), ==, 4);
}

static bool irqs_at_least(struct pf_host *h, void *arg)
{
	return pf_host_irqs(h)->total >= GPOINTER_TO_UINT(arg);
}

static void test_interrupts(struct fixture *f, gconstpointer data)
{
	struct pf_host *h = f->h;
	const struct pf_host_irqs *irq = pf_host_irqs(h);

	wr32(h, 0, R_DB_MSIX, 5);
	wr32(h, 0, R_DB_MSIX, 7);
	wr32(h, 0, R_DB_MSI, 3);
	wr32(h, 0, R_DB_MSI, 0);
	wr32(h, 0, R_DB_MSIX, 8);      /* not declared: dropped by the endpoint */
	wr32(h, 0, R_DB_MSI, 4);
	wr32(h, 0, R_INTX, 1);
	g_assert_cmpint(pf_host_wait(h, irqs_at_least, GUINT_TO_POINTER(5), 5000), ==, 0);
	g_assert_cmpuint(irq->msix[5], ==, 1);
	g_assert_cmpuint(irq->msix[7], ==, 1);
	g_assert_cmpuint(irq->msix[8], ==, 0);
	g_assert_cmpuint(irq->msi[3], ==, 1);
	g_assert_cmpuint(irq->msi[0], ==, 1);
	g_assert_cmpuint(irq->msi[4], ==, 0);
	g_assert_true(irq->intx_level);
	g_assert_cmpuint(rd32(h, 0, R_INTX), ==, 1);
	wr32(h, 0, R_INTX, 0);
	g_assert_cmpuint(rd32(h, 0, R_INTX), ==, 0);
	g_assert_false(irq->intx_level);
	g_assert_cmpuint(irq->intx_asserts, ==, 1);
	g_assert_cmpuint(irq->total, ==, 5);
}

static void test_reset(struct fixture *f, gconstpointer data)
{
	struct pf_host *h = f->h;
	uint8_t b[4] = { 1, 2, 3, 4 };

	for (int kind = 0; kind < 2; kind++) {
		wr32(h, 0, R_SCRATCH, 0xdeadbeef);
		wr64(h, 0, R_SCRATCH64, 42);
		wr32(h, 0, R_INTX, 1);
		g_assert_cmpint(pf_host_mem_write(h, 2, 0x100, b, 4), ==, 0);
		g_assert_cmpint(pf_host_io_write(h, 4, 8, b, 4), ==, 0);
		g_assert_cmpint(pf_host_config_write(h, 0x50, b, 4), ==, 0);
		g_assert_true(pf_host_irqs(h)->intx_level);
		g_assert_cmpint(pf_host_reset(h, (Pciefw__ResetKind)kind), ==, 0);
		g_assert_cmphex(rd32(h, 0, R_SCRATCH), ==, 0);
		g_assert_cmphex(rd32(h, 0, R_INV), ==, 0xffffffff);
		g_assert_cmphex(rd32(h, 0, R_SCRATCH64), ==, 0);
		g_assert_cmphex(rd32(h, 0, R_INTX), ==, 0);
		g_assert_cmphex(rd32(h, 2, 0x100), ==, 0);
		g_assert_cmpint(pf_host_io_read(h, 4, 8, b, 4), ==, 0);
		g_assert_cmphex(pf_le_load(b, 4), ==, 0);
		g_assert_cmpint(pf_host_config_read(h, 0x50, b, 4), ==, 0);
		g_assert_cmphex(pf_le_load(b, 4), ==, 0);
		/* Reset deasserted the pin, and told us before completing. */
		g_assert_false(pf_host_irqs(h)->intx_level);
		g_assert_cmphex(rd32(h, 0, R_RESET_COUNT), ==, (uint32_t)kind + 1);
		pf_le_store(b, 4, 0x04030201);
	}
}

static void test_busy(struct fixture *f, gconstpointer data)
{
	char err[512];
	struct pf_host *second = pf_host_connect(f->ep.addr, NULL, err, sizeof(err));

	g_assert_null(second);
	g_assert_nonnull(strstr(err, "busy"));
	/* The first host is unaffected. */
	g_assert_cmphex(rd32(f->h, 0, R_ID), ==, 0x7e57de01);
	/* Once it leaves, the next one is served. */
	pf_host_close(f->h, true);
	for (int i = 0; i < 100; i++) {
		second = pf_host_connect(f->ep.addr, NULL, err, sizeof(err));
		if (second)
			break;
		g_usleep(10000);
	}
	g_assert_nonnull(second);
	f->h = second;
	g_assert_cmphex(rd32(f->h, 0, R_ID), ==, 0x7e57de01);
}

static bool scratch64_is(struct pf_host *h, void *arg)
{
	uint8_t b[8];

	return pf_host_mem_read(h, 0, R_SCRATCH64, b, 8) == 0 &&
	       pf_le_load(b, 8) == *(uint64_t *)arg;
}

/*
 * SIDE_EFFECTS sends a DMA write, an MSI-X and a DMA read before its own
 * completion: the host serves them while it waits, and nothing is
 * reordered against the posted writes around it.
 */
static void test_no_deadlock_no_reordering(struct fixture *f, gconstpointer data)
{
	struct pf_host *h = f->h;
	struct pf_guest_mem *m = pf_host_mem(h);
	uint64_t pattern = 0x5555aaaa12345678ull;
	uint8_t b[8];

	memcpy(m->data + 0x2000, &pattern, 8);
	wr64(h, 0, R_DMA_SRC, GUEST_BASE + 0x2000);
	wr64(h, 0, R_DMA_DST, GUEST_BASE + 0x3000);
	for (uint32_t i = 1; i <= 500; i++) {
		wr32(h, 0, R_SCRATCH, i);                      /* posted */
		g_assert_cmpint(pf_host_mem_read(h, 0, R_SIDE, b, 8), ==, 0);
		g_assert_cmpuint(pf_le_load(b, 8), ==, i);
		/* Its DMA write and MSI-X came before its completion. */
		g_assert_cmpuint(pf_le_load(m->data + 0x3000, 8), ==, i);
		g_assert_cmpuint(pf_host_irqs(h)->msix[1], ==, i);
		/* And the posted write before it was applied before the read. */
		g_assert_cmphex(rd32(h, 0, R_INV), ==, ~i);
	}
	g_assert_cmpint(pf_host_wait(h, scratch64_is, &pattern, 5000), ==, 0);
	g_assert_cmpuint(pf_host_stats(h)->dma_reads, >=, 500);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(path, fn, tcp) \
	g_test_add(path, struct fixture, tcp, setup, fn, teardown)
	ADD("/endpoint/description", test_description, NULL);
	ADD("/endpoint/description-tcp", test_description, "tcp");
	g_test_add_func("/endpoint/version-refusal", test_version_refusal);
	ADD("/endpoint/bar0-registers", test_bar0_registers, NULL);
	ADD("/endpoint/bar2-ram-mem64-prefetchable", test_bar2_ram, NULL);
	ADD("/endpoint/bar2-ram-tcp", test_bar2_ram, "tcp");
	ADD("/endpoint/bar4-io", test_bar4_io, NULL);
	ADD("/endpoint/config-space", test_config_space, NULL);
	ADD("/endpoint/config-without-ext", test_config_without_ext, NULL);
	ADD("/endpoint/dma-copies", test_dma_copies, NULL);
	ADD("/endpoint/dma-copies-tcp", test_dma_copies, "tcp");
	ADD("/endpoint/dma-fill-and-sum", test_dma_fill_and_sum, NULL);
	ADD("/endpoint/dma-refused", test_dma_refused, NULL);
	ADD("/endpoint/interrupts", test_interrupts, NULL);
	ADD("/endpoint/reset", test_reset, NULL);
	ADD("/endpoint/busy", test_busy, NULL);
	ADD("/endpoint/no-deadlock-no-reordering", test_no_deadlock_no_reordering, NULL);
	ADD("/endpoint/fetch-waits-for-its-dma-read", test_fetch, NULL);
	return g_test_run();
}
