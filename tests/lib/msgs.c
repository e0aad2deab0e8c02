/* Samples of every message kind; see msgs.h. */
#include "msgs.h"

#include <glib.h>
#include <stdint.h>
#include <string.h>

#include "handshake.h"
#include "msg.h"

int sample_stream(struct pf_buf *b)
{
	static uint8_t big[PCIEFW_DEFAULT_PAYLOAD];
	uint8_t d8[8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
	struct pf_hello_params hp;
	Pciefw__DeviceDescription d = PCIEFW__DEVICE_DESCRIPTION__INIT;
	Pciefw__Bar bars[3] = { PCIEFW__BAR__INIT, PCIEFW__BAR__INIT, PCIEFW__BAR__INIT };
	Pciefw__Bar *bp[3] = { &bars[0], &bars[1], &bars[2] };
	int n = 0;

	for (size_t i = 0; i < sizeof(big); i++)
		big[i] = (uint8_t)(i * 7);
	pf_hello_defaults(&hp, "unit test");
	g_assert_cmpint(pf_put_hello(b, &hp), ==, 0);
	n++;
	hp.max_payload = UINT32_MAX;
	hp.features = UINT64_MAX;
	hp.name = "";
	g_assert_cmpint(pf_put_hello(b, &hp), ==, 0);
	n++;

	g_assert_cmpint(pf_put_config_read(b, 0, 0, 1), ==, 0);
	n++;
	g_assert_cmpint(pf_put_config_read(b, UINT32_MAX, 4092, 4), ==, 0);
	n++;
	g_assert_cmpint(pf_put_config_write(b, 7, 0x40, d8, 4), ==, 0);
	n++;
	g_assert_cmpint(pf_put_mem_read(b, 1, 0, 0, 1), ==, 0);
	n++;
	g_assert_cmpint(pf_put_mem_read(b, 2, 5, UINT64_MAX - 7, 8), ==, 0);
	n++;
	g_assert_cmpint(pf_put_mem_write(b, 0, 0, d8, 1), ==, 0);
	n++;
	g_assert_cmpint(pf_put_mem_write(b, 2, 0x1000, big, sizeof(big)), ==, 0);
	n++;
	g_assert_cmpint(pf_put_io_read(b, 3, 4, 0x1f, 1), ==, 0);
	n++;
	g_assert_cmpint(pf_put_io_write(b, 4, 4, 0x1c, d8, 4), ==, 0);
	n++;
	g_assert_cmpint(pf_put_completion(b, 9, PCIEFW__STATUS__STATUS_SUCCESSFUL,
					  d8, 8), ==, 0);
	n++;
	g_assert_cmpint(pf_put_completion(b, 10, PCIEFW__STATUS__STATUS_UNSUPPORTED_REQUEST,
					  NULL, 0), ==, 0);
	n++;
	g_assert_cmpint(pf_put_completion(b, 11, PCIEFW__STATUS__STATUS_SUCCESSFUL,
					  big, sizeof(big)), ==, 0);
	n++;
	g_assert_cmpint(pf_put_dma_read(b, 12, UINT64_MAX - 0xfff, 0x1000), ==, 0);
	n++;
	g_assert_cmpint(pf_put_dma_write(b, 0, d8, 8), ==, 0);
	n++;
	g_assert_cmpint(pf_put_intx(b, true), ==, 0);
	n++;
	g_assert_cmpint(pf_put_intx(b, false), ==, 0);
	n++;
	g_assert_cmpint(pf_put_msi(b, 31), ==, 0);
	n++;
	g_assert_cmpint(pf_put_msix(b, 2047), ==, 0);
	n++;

	d.vendor_id = 0x1234;
	d.device_id = 0xffff;
	d.class_code = 0xffffff;
	d.revision = 0xff;
	bars[0].index = 0;
	bars[0].kind = PCIEFW__BAR_KIND__BAR_MEM32;
	bars[0].size = 1ull << 31;
	bars[1].index = 2;
	bars[1].kind = PCIEFW__BAR_KIND__BAR_MEM64;
	bars[1].prefetchable = true;
	bars[1].size = 1ull << 40;
	bars[2].index = 4;
	bars[2].kind = PCIEFW__BAR_KIND__BAR_IO;
	bars[2].size = 4;
	d.bars = bp;
	d.n_bars = 3;
	d.msi_vectors = 32;
	d.msix_vectors = 2048;
	d.msix_table_bar = 0;
	d.msix_pba_bar = 2;
	d.msix_pba_offset = 0x8000;
	d.intx_pin = 4;
	g_assert_cmpint(pf_put_description(b, &d), ==, 0);
	n++;

	g_assert_cmpint(pf_put_reset(b, 13, PCIEFW__RESET_KIND__RESET_SYSTEM), ==, 0);
	n++;
	g_assert_cmpint(pf_put_reset(b, 14, PCIEFW__RESET_KIND__RESET_FUNCTION), ==, 0);
	n++;
	{
		/* Below 4 GiB and above, as QEMU's q35 lays out its RAM. */
		const struct pf_mem_region mr[2] = {
			{ 0, 0x80000000ull, 0 },
			{ 0x100000000ull, 0x40000000ull, 0x80000000ull },
		};

		g_assert_cmpint(pf_put_memory_map(b, mr, 2), ==, 0);
		n++;
		g_assert_cmpint(pf_put_memory_map(b, NULL, 0), ==, 0);
		n++;
	}
	g_assert_cmpint(pf_put_bus_master(b, true), ==, 0);
	n++;
	g_assert_cmpint(pf_put_bus_master(b, false), ==, 0);
	n++;
	{
		/* The reset state, then every field at its widest (spec 12). */
		const struct pf_interrupt_config off = { 0 };
		const struct pf_interrupt_config on = {
			true, 32, UINT64_MAX, UINT32_MAX, UINT32_MAX, true, true,
		};
		struct pf_msix_entry e[PCIEFW_MAX_MSIX_ENTRIES];

		for (uint32_t i = 0; i < PCIEFW_MAX_MSIX_ENTRIES; i++)
			e[i] = (struct pf_msix_entry){ 2047 - i, UINT64_MAX - i,
						       UINT32_MAX - i, !(i & 1) };
		g_assert_cmpint(pf_put_interrupt_config(b, &off, NULL, 0), ==, 0);
		n++;
		g_assert_cmpint(pf_put_interrupt_config(b, &on, e,
							PCIEFW_MAX_MSIX_ENTRIES), ==, 0);
		n++;
	}
	g_assert_cmpint(pf_put_goodbye(b, PCIEFW__GOODBYE_REASON__GOODBYE_UNPLUG,
				       "bye"), ==, 0);
	n++;
	g_assert_cmpint(pf_put_error(b, PCIEFW__ERROR_CODE__ERROR_INTERNAL,
				     "\xc3\xa9rror"), ==, 0);
	n++;
	return n;
}
