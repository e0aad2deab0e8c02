/*
 * Every shipped model driven without the daemon (issue 22 item 4): created
 * by the framework, served by the endpoint's connection over a stream in
 * memory, with the host in this process (inproc.h).  Each test feeds its
 * model requests and checks completions, DMA and interrupts; the deferred
 * read of testdev checks that the host's later requests wait behind it.
 */
#include <glib.h>
#include <string.h>

#include "inproc.h"
#include "msg.h"

#define OK PCIEFW__STATUS__STATUS_SUCCESSFUL
#define UR PCIEFW__STATUS__STATUS_UNSUPPORTED_REQUEST
#define RAM 0x100000ull               /* guest memory's bus address */
#define RAM_SIZE (1u << 20)

static bool msix_seen(struct inproc *ip, void *arg)
{
	return ip->msix[*(unsigned *)arg] > 0;
}

static void wait_msix(struct inproc *ip, unsigned vector)
{
	g_assert_true(inproc_run(ip, msix_seen, &vector, 5000));
}

/* ---- testdev (docs/testdev.md) ---- */

enum {
	TD_ID = 0x00, TD_SCRATCH = 0x04, TD_INV = 0x08, TD_DMA_SRC = 0x10,
	TD_DMA_DST = 0x18, TD_DMA_LEN = 0x20, TD_DMA_CMD = 0x24,
	TD_DMA_STATUS = 0x28, TD_DMA_IRQ = 0x2c, TD_RESET_COUNT = 0x3c,
	TD_FETCH_ADDR = 0x58, TD_FETCH = 0x60,
};

static void test_testdev_registers_and_copy(void)
{
	struct inproc ip;
	uint8_t b[4];

	inproc_start(&ip, "testdev", NULL, RAM, RAM_SIZE);
	g_assert_cmphex(ip.vendor_id, ==, 0x1234);
	g_assert_cmphex(ip.device_id, ==, 0xfe01);
	g_assert_cmpuint(ip.msix_vectors, ==, 8);
	g_assert_cmpuint(ip.n_bars, ==, 4);
	g_assert_cmphex(inproc_rd32(&ip, 0, TD_ID), ==, 0x7e57de01);
	inproc_wr32(&ip, 0, TD_SCRATCH, 0xa5a5f00f);
	g_assert_cmphex(inproc_rd32(&ip, 0, TD_INV), ==, 0x5a5a0ff0);
	g_assert_cmpint(inproc_config_read(&ip, 0x40, b, 4), ==, OK);
	g_assert_cmphex(pf_le_load(b, 4), ==, 0x7e57cf61);
	g_assert_cmpint(inproc_io_read(&ip, 4, 0, b, 4), ==, OK);
	g_assert_cmphex(pf_le_load(b, 4), ==, 0x7e5710de);
	g_assert_cmpint(inproc_mem_read(&ip, 0, 4096, b, 4), ==, UR);
	/* A copy by DMA read and write, then MSI-X vector 2. */
	for (unsigned i = 0; i < 300; i++)
		inproc_ram(&ip, RAM)[i] = (uint8_t)(i * 7);
	inproc_wr32(&ip, 0, TD_DMA_SRC, (uint32_t)RAM);
	inproc_wr32(&ip, 0, TD_DMA_DST, (uint32_t)RAM + 0x1000);
	inproc_wr32(&ip, 0, TD_DMA_LEN, 300);
	inproc_wr32(&ip, 0, TD_DMA_IRQ, 3 | 2 << 8);
	inproc_wr32(&ip, 0, TD_DMA_CMD, 1 | 2);
	wait_msix(&ip, 2);
	g_assert_cmpmem(inproc_ram(&ip, RAM + 0x1000), 300, inproc_ram(&ip, RAM), 300);
	g_assert_cmphex(inproc_rd32(&ip, 0, TD_DMA_STATUS), ==, 2);
	g_assert_cmpuint(ip.dma_reads, >=, 1);
	g_assert_cmpuint(ip.dma_writes, >=, 1);
	/* A reset: registers back to power-on, counted. */
	g_assert_cmpint(inproc_reset(&ip, PCIEFW__RESET_KIND__RESET_FUNCTION), ==, OK);
	g_assert_cmphex(inproc_rd32(&ip, 0, TD_SCRATCH), ==, 0);
	g_assert_cmpuint(inproc_rd32(&ip, 0, TD_RESET_COUNT), ==, 1);
	inproc_stop(&ip);
}

/* Spec 5.3: behind a read waiting for its DMA, requests are held, in order. */
static void test_testdev_deferred_fetch(void)
{
	struct inproc ip;
	uint32_t fetch, scratch;
	uint8_t b[4];

	inproc_start(&ip, "testdev", NULL, RAM, RAM_SIZE);
	pf_le_store(inproc_ram(&ip, RAM + 0x80), 4, 0xfeedf00d);
	inproc_wr32(&ip, 0, TD_FETCH_ADDR, (uint32_t)RAM + 0x80);
	ip.hold_dma = true;
	fetch = inproc_mem_read_async(&ip, 0, TD_FETCH, 4);
	inproc_wr32(&ip, 0, TD_SCRATCH, 5);
	scratch = inproc_mem_read_async(&ip, 0, TD_SCRATCH, 4);
	inproc_settle(&ip);
	g_assert_cmpuint(ip.n_dma, ==, 1);        /* FETCH's DmaRead, unanswered */
	g_assert_false(inproc_completed(&ip, fetch));
	g_assert_false(inproc_completed(&ip, scratch));
	ip.hold_dma = false;
	inproc_serve_dma(&ip);
	g_assert_cmpint(inproc_wait_tag(&ip, fetch, b, 4), ==, OK);
	g_assert_cmphex(pf_le_load(b, 4), ==, 0xfeedf00d);
	g_assert_cmpint(inproc_wait_tag(&ip, scratch, b, 4), ==, OK);
	g_assert_cmphex(pf_le_load(b, 4), ==, 5);  /* the held write came first */
	g_assert_cmpuint(ip.cpl[(ip.n_cpl - 2) % INPROC_CPLS].tag, ==, fetch);
	g_assert_cmpuint(ip.cpl[(ip.n_cpl - 1) % INPROC_CPLS].tag, ==, scratch);
	inproc_stop(&ip);
}

/* ---- nic (docs/nic.md): a frame out and its answer in, through slirp ---- */

enum {
	NIC_CTRL = 0x000, NIC_IMS = 0x014, NIC_IRQ_MODE = 0x020,
	NIC_RX_BASE_LO = 0x100, NIC_RX_SIZE = 0x108, NIC_RX_TAIL = 0x110,
	NIC_TX_BASE_LO = 0x200, NIC_TX_SIZE = 0x208, NIC_TX_TAIL = 0x210,
};
#define NIC_RING 16u
#define NIC_RX_RING (RAM + 0x0000)
#define NIC_TX_RING (RAM + 0x1000)
#define NIC_RX_BUFS (RAM + 0x10000)
#define NIC_TX_BUF  (RAM + 0x80000)

static const uint8_t nic_mac[6] = { 0x52, 0x54, 0x00, 0xaa, 0xbb, 0x01 };

/* "Who has 10.0.2.2, tell 10.0.2.15": slirp answers it. */
static uint16_t arp_request(uint8_t *p, const uint8_t *mac)
{
	static const uint8_t arp[] = { 0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1 };

	memset(p, 0, 60);
	memset(p, 0xff, 6);
	memcpy(p + 6, mac, 6);
	memcpy(p + 12, arp, sizeof(arp));
	memcpy(p + 22, mac, 6);
	memcpy(p + 28, (uint8_t[]){ 10, 0, 2, 15 }, 4);
	memcpy(p + 38, (uint8_t[]){ 10, 0, 2, 2 }, 4);
	return 60;
}

static void test_nic_arp(void)
{
	const char *opts[] = { "mac=52:54:00:aa:bb:01", NULL };
	struct inproc ip;
	uint8_t *d, *buf;

	inproc_start(&ip, "nic", opts, RAM, RAM_SIZE);
	g_assert_cmphex(ip.device_id, ==, 0xfe02);
	for (uint32_t i = 0; i < NIC_RING; i++) {
		d = inproc_ram(&ip, NIC_RX_RING + i * 16);
		pf_le_store(d, 8, NIC_RX_BUFS + i * 2048);
		pf_le_store(d + 8, 2, 2048);
	}
	d = inproc_ram(&ip, NIC_TX_RING);
	pf_le_store(d, 8, NIC_TX_BUF);
	pf_le_store(d + 8, 2, arp_request(inproc_ram(&ip, NIC_TX_BUF), nic_mac));
	pf_le_store(d + 10, 2, 1);                      /* EOP */
	inproc_wr32(&ip, 0, NIC_RX_BASE_LO, (uint32_t)NIC_RX_RING);
	inproc_wr32(&ip, 0, NIC_RX_SIZE, NIC_RING);
	inproc_wr32(&ip, 0, NIC_TX_BASE_LO, (uint32_t)NIC_TX_RING);
	inproc_wr32(&ip, 0, NIC_TX_SIZE, NIC_RING);
	inproc_wr32(&ip, 0, NIC_IRQ_MODE, 2);           /* MSI-X */
	inproc_wr32(&ip, 0, NIC_IMS, 7);
	inproc_wr32(&ip, 0, NIC_CTRL, 6);
	inproc_wr32(&ip, 0, NIC_RX_TAIL, NIC_RING - 1);
	inproc_wr32(&ip, 0, NIC_TX_TAIL, 1);
	wait_msix(&ip, 1);                               /* TX written back */
	g_assert_cmphex(pf_le_load(d + 12, 2), ==, 1);  /* DD */
	wait_msix(&ip, 0);                               /* the answer */
	d = inproc_ram(&ip, NIC_RX_RING);
	buf = inproc_ram(&ip, NIC_RX_BUFS);
	g_assert_cmphex(pf_le_load(d + 12, 2), ==, 3);  /* DD|EOP */
	g_assert_cmpmem(buf, 6, nic_mac, 6);
	g_assert_cmphex(buf[12] << 8 | buf[13], ==, 0x0806);
	g_assert_cmphex(buf[21], ==, 2);                 /* an ARP reply */
	inproc_stop(&ip);
}

/* ---- e1000 (docs/e1000.md) ---- */

enum {
	E1K_STATUS = 0x8, E1K_EERD = 0x14, E1K_ICR = 0xc0, E1K_ICS = 0xc8,
	E1K_IMS = 0xd0, E1K_TCTL = 0x400, E1K_TDBAL = 0x3800, E1K_TDLEN = 0x3808,
	E1K_TDH = 0x3810, E1K_TDT = 0x3818,
};

static bool intx_up(struct inproc *ip, void *arg)
{
	return ip->intx_level;
}

static void test_e1000_eeprom_irq_tx(void)
{
	const char *opts[] = { "mac=52:54:00:e1:00:07", NULL };
	struct inproc ip;
	uint8_t *d;

	inproc_start(&ip, "e1000", opts, RAM, RAM_SIZE);
	g_assert_cmphex(ip.vendor_id, ==, 0x8086);
	g_assert_cmphex(ip.device_id, ==, 0x100e);
	g_assert_cmpuint(ip.intx_pin, ==, 1);
	inproc_wr32(&ip, 0, E1K_EERD, 1u | 1u << 8);    /* word 1: MAC bytes 2-3 */
	g_assert_cmphex(inproc_rd32(&ip, 0, E1K_EERD), ==, 0xe1000000u | 1u << 8 | 0x10);
	g_assert_cmphex(inproc_rd32(&ip, 0, E1K_STATUS) & 2, ==, 2);   /* link up */
	/* One legacy descriptor: EOP, RS; its DD comes back, then TXDW. */
	d = inproc_ram(&ip, RAM);
	pf_le_store(d, 8, RAM + 0x1000);
	pf_le_store(d + 8, 2, arp_request(inproc_ram(&ip, RAM + 0x1000),
					  (const uint8_t *)"\x52\x54\x00\xe1\x00\x07"));
	d[11] = 0x01 | 0x08;
	inproc_wr32(&ip, 0, E1K_TDBAL, (uint32_t)RAM);
	inproc_wr32(&ip, 0, E1K_TDLEN, 16 * 16);
	inproc_wr32(&ip, 0, E1K_IMS, 1);                 /* TXDW */
	inproc_wr32(&ip, 0, E1K_TCTL, 2);
	inproc_wr32(&ip, 0, E1K_TDT, 1);
	g_assert_true(inproc_run(&ip, intx_up, NULL, 5000));
	g_assert_cmphex(d[12] & 1, ==, 1);               /* DD */
	g_assert_cmpuint(inproc_rd32(&ip, 0, E1K_TDH), ==, 1);
	g_assert_cmphex(inproc_rd32(&ip, 0, E1K_ICR) & 1, ==, 1);
	inproc_settle(&ip);
	g_assert_false(ip.intx_level);                   /* read, cleared */
	inproc_stop(&ip);
}

/* ---- The tutorial's examples (docs/models.md) ---- */

static void test_ex_basic(void)
{
	struct inproc ip;
	uint8_t b[4];

	inproc_start(&ip, "ex-basic", NULL, RAM, RAM_SIZE);
	g_assert_cmphex(ip.vendor_id, ==, 0x1234);
	g_assert_cmphex(ip.device_id, ==, 0x11e8);
	g_assert_cmphex(ip.class_code, ==, 0x020000);
	g_assert_cmpuint(ip.n_bars, ==, 0);
	g_assert_cmpint(inproc_mem_read(&ip, 0, 0, b, 4), ==, UR);
	inproc_stop(&ip);
}

static void test_ex_gpu(void)
{
	const char *opts[] = { "size=64K", NULL };
	struct inproc ip;
	uint8_t burst[200], b[200];

	inproc_start(&ip, "ex-gpu", opts, RAM, RAM_SIZE);
	g_assert_cmphex(ip.device_id, ==, 0x1337);
	inproc_mem_write(&ip, 0, 0x100, "\x11\x22\x33\x44\x55\x66\x77\x88", 8);
	g_assert_cmpint(inproc_mem_read(&ip, 0, 0x100, b, 8), ==, OK);
	g_assert_cmphex(pf_le_load(b, 8), ==, 0x8877665544332211ull);
	g_assert_cmpint(inproc_mem_read(&ip, 0, 0x102, b, 2), ==, OK);
	g_assert_cmphex(pf_le_load(b, 2), ==, 0x4433);
	/* Video memory takes bursts whole. */
	for (unsigned i = 0; i < sizeof(burst); i++)
		burst[i] = (uint8_t)(i ^ 0x5a);
	inproc_mem_write(&ip, 0, 0xffff - sizeof(burst), burst, sizeof(burst));
	g_assert_cmpint(inproc_mem_read(&ip, 0, 0xffff - sizeof(burst), b,
					sizeof(burst)), ==, OK);
	g_assert_cmpmem(b, sizeof(burst), burst, sizeof(burst));
	g_assert_cmpint(inproc_mem_read(&ip, 0, 0x10000, b, 4), ==, UR);
	g_assert_cmpint(inproc_reset(&ip, PCIEFW__RESET_KIND__RESET_SYSTEM), ==, OK);
	g_assert_cmphex(inproc_rd32(&ip, 0, 0x100), ==, 0);
	inproc_stop(&ip);
}

static void test_ex_irq(gconstpointer data)
{
	const char *mode = data;
	char opt[32];
	const char *opts[] = { opt, NULL };
	bool msix = !strcmp(mode, "msix");
	struct inproc ip;

	g_snprintf(opt, sizeof(opt), "irq=%s", mode);
	inproc_start(&ip, "ex-irq", opts, RAM, RAM_SIZE);
	g_assert_cmpuint(msix ? ip.msix_vectors : ip.msi_vectors, ==, 4);
	inproc_wr32(&ip, 0, 0, 3);                       /* the doorbell */
	inproc_settle(&ip);
	g_assert_cmpuint(msix ? ip.msix[3] : ip.msi[3], ==, 1);
	g_assert_cmpuint(msix ? ip.msi[3] : ip.msix[3], ==, 0);
	inproc_wr32(&ip, 0, 0, 9);                       /* not declared */
	inproc_settle(&ip);
	g_assert_cmpuint(msix ? ip.msix[9] : ip.msi[9], ==, 0);
	g_assert_cmpuint(inproc_rd32(&ip, 0, 0), ==, 9);
	inproc_stop(&ip);
}

static void test_ex_mmio(void)
{
	struct inproc ip;
	uint8_t b[1];

	inproc_start(&ip, "ex-mmio", NULL, RAM, RAM_SIZE);
	g_assert_cmphex(ip.device_id, ==, 0x11e9);
	inproc_wr32(&ip, 0, 0x10, 0xcafe0123);
	g_assert_cmphex(inproc_rd32(&ip, 0, 0x10), ==, 0xcafe0123);
	g_assert_cmpint(inproc_mem_read(&ip, 0, 0x13, b, 1), ==, OK);
	g_assert_cmphex(b[0], ==, 0xca);
	g_assert_cmpint(inproc_reset(&ip, PCIEFW__RESET_KIND__RESET_FUNCTION), ==, OK);
	g_assert_cmphex(inproc_rd32(&ip, 0, 0x10), ==, 0);
	inproc_stop(&ip);
}

static void test_ex_rx(void)
{
	static const char text[] = "hello from ex-rx";
	struct inproc ip;
	uint8_t *pkt;

	inproc_start(&ip, "ex-rx", NULL, RAM, RAM_SIZE);
	pkt = inproc_ram(&ip, RAM + 0x2000);
	memset(pkt, 0xee, 64);
	inproc_wr32(&ip, 0, 0x00, (uint32_t)RAM + 0x2000);   /* RX_ADDR_LO */
	inproc_wr32(&ip, 0, 0x08, 64);                       /* RX_SIZE */
	inproc_wr32(&ip, 0, 0x0c, 1);                        /* RX_KICK */
	wait_msix(&ip, 1);
	g_assert_cmpuint(pf_le_load(pkt, 4), ==, 1);
	g_assert_cmpmem(pkt + 4, sizeof(text) - 1, text, sizeof(text) - 1);
	g_assert_cmphex(pkt[4 + sizeof(text) - 1], ==, 0xee);
	g_assert_cmpuint(inproc_rd32(&ip, 0, 0x10), ==, 1);  /* RX_COUNT */
	g_assert_cmpuint(inproc_rd32(&ip, 0, 0x14), ==, 4 + sizeof(text) - 1);
	inproc_stop(&ip);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/models/testdev/registers-and-copy",
			test_testdev_registers_and_copy);
	g_test_add_func("/models/testdev/deferred-fetch", test_testdev_deferred_fetch);
	g_test_add_func("/models/nic/arp", test_nic_arp);
	g_test_add_func("/models/e1000/eeprom-irq-tx", test_e1000_eeprom_irq_tx);
	g_test_add_func("/models/ex-basic", test_ex_basic);
	g_test_add_func("/models/ex-gpu", test_ex_gpu);
	g_test_add_data_func("/models/ex-irq/msix", "msix", test_ex_irq);
	g_test_add_data_func("/models/ex-irq/msi", "msi", test_ex_irq);
	g_test_add_func("/models/ex-mmio", test_ex_mmio);
	g_test_add_func("/models/ex-rx", test_ex_rx);
	return g_test_run();
}
