/* MSI-X table and PBA placement (protocol/description.c). */
#include <glib.h>
#include <string.h>

#include "description.h"
#include "pciefw.h"

struct placement {
	Pciefw__BarKind kind;
	uint64_t bar_size;
	uint32_t vectors;
	uint32_t table_bar, pba_bar;
	uint64_t table_off, pba_off;
};

/* BAR0 of @p->kind and size, BAR2 a 4 KiB mem32, MSI-X as @p says. */
static int check(const struct placement *p, char *err, size_t errlen)
{
	Pciefw__DeviceDescription d = PCIEFW__DEVICE_DESCRIPTION__INIT;
	Pciefw__Bar bars[2] = { PCIEFW__BAR__INIT, PCIEFW__BAR__INIT };
	Pciefw__Bar *bp[2] = { &bars[0], &bars[1] };

	bars[0].kind = p->kind;
	bars[0].size = p->bar_size;
	bars[1].index = 2;
	bars[1].size = 4096;
	d.vendor_id = 0x1234;
	d.bars = bp;
	d.n_bars = 2;
	d.msix_vectors = p->vectors;
	d.msix_table_bar = p->table_bar;
	d.msix_table_offset = p->table_off;
	d.msix_pba_bar = p->pba_bar;
	d.msix_pba_offset = p->pba_off;
	err[0] = '\0';
	return pf_desc_check_msix(&d, err, errlen);
}

static void test_accepted(void)
{
	static const struct placement ok[] = {
		{ PCIEFW__BAR_KIND__BAR_MEM32, 4096, 0, 1, 1, 4, 4 },   /* no MSI-X */
		{ PCIEFW__BAR_KIND__BAR_MEM32, 4096, 8, 0, 0, 0, 0x800 },
		/* 64 entries and their 8-byte PBA, back to back, up to the end */
		{ PCIEFW__BAR_KIND__BAR_MEM32, 4096, 64, 0, 0, 4096 - 1032, 4096 - 8 },
		{ PCIEFW__BAR_KIND__BAR_MEM32, 16, 1, 0, 2, 0, 0 },
		{ PCIEFW__BAR_KIND__BAR_MEM64, 1ull << 33, 2048, 0, 0,
		  UINT32_MAX - 7 - 0x8000, UINT32_MAX - 7 },
	};
	char err[256];

	for (size_t i = 0; i < G_N_ELEMENTS(ok); i++) {
		g_test_message("placement %zu", i);
		g_assert_cmpint(check(&ok[i], err, sizeof(err)), ==, PF_OK);
	}
}

static void test_refused(void)
{
	static const struct {
		struct placement p;
		const char *why;
	} bad[] = {
		{ { PCIEFW__BAR_KIND__BAR_IO, 256, 1, 0, 2, 0, 0 }, "memory BARs" },
		{ { PCIEFW__BAR_KIND__BAR_MEM32, 4096, 1, 2, 3, 0, 0 }, "undeclared" },
		{ { PCIEFW__BAR_KIND__BAR_MEM64, 1ull << 34, 1, 0, 0,
		    1ull << 32, 0 }, "beyond 4 GiB" },
		/* 65 entries (1040 bytes) in 1 KiB */
		{ { PCIEFW__BAR_KIND__BAR_MEM32, 1024, 65, 0, 2, 0, 0 },
		  "table (1040 bytes at 0x0) does not fit in BAR0 (1024 bytes)" },
		/* a 32-bit sum would wrap to 8 and pass */
		{ { PCIEFW__BAR_KIND__BAR_MEM32, 4096, 1, 0, 2, UINT32_MAX - 7, 0 },
		  "table (16 bytes at 0xfffffff8) does not fit" },
		{ { PCIEFW__BAR_KIND__BAR_MEM32, 4096, 128, 2, 0, 0, 4096 - 8 },
		  "PBA (16 bytes at 0xff8) does not fit in BAR0" },
		{ { PCIEFW__BAR_KIND__BAR_MEM32, 4096, 8, 0, 0, 0, 0x78 }, "overlap" },
		{ { PCIEFW__BAR_KIND__BAR_MEM32, 4096, 8, 0, 0, 0x80, 0xf8 }, "overlap" },
	};
	char err[256];

	for (size_t i = 0; i < G_N_ELEMENTS(bad); i++) {
		g_test_message("placement %zu", i);
		g_assert_cmpint(check(&bad[i].p, err, sizeof(err)), ==, PF_ERR_INVALID);
		g_assert_nonnull(strstr(err, bad[i].why));
	}
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/description/msix-placement-accepted", test_accepted);
	g_test_add_func("/description/msix-placement-refused", test_refused);
	return g_test_run();
}
