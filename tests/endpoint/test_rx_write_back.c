/*
 * The NIC models' receive path (issue 23 item 5): the frames a packet
 * backend delivers in one pass of the loop are written back in one DMA
 * write of their descriptors (docs/nic.md 3.1, docs/e1000.md 5.2), both
 * with guest memory shared (in place) and by messages; a reset between
 * the frames and the end of the pass leaves the ring untouched.  Driven
 * in process (inproc.h) through slirp: each ARP request the guest sends
 * is answered at once, so a doorbell of N requests makes N frames in one
 * pass.
 */
#include <glib.h>
#include <string.h>

#include "inproc.h"
#include "msg.h"

#define OK PCIEFW__STATUS__STATUS_SUCCESSFUL
#define RAM 0x100000ull
#define RAM_SIZE (1u << 20)
#define RING 16u
#define FRAMES 4u
#define RX_RING (RAM + 0x0000)
#define TX_RING (RAM + 0x1000)
#define RX_BUFS (RAM + 0x10000)
#define TX_BUFS (RAM + 0x80000)

static const uint8_t mac[6] = { 0x52, 0x54, 0x00, 0xaa, 0xbb, 0x01 };

/* "Who has 10.0.2.2, tell 10.0.2.15": slirp answers it at once. */
static uint16_t arp_request(uint8_t *p)
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

static void start(struct inproc *ip, const char *model, bool shared)
{
	const char *opts[] = { "mac=52:54:00:aa:bb:01", NULL };

	if (shared)
		inproc_start_shared(ip, model, opts, RAM, RAM_SIZE);
	else
		inproc_start(ip, model, opts, RAM, RAM_SIZE);
}

/* An ARP reply for us in RX buffer @i. */
static void assert_reply(struct inproc *ip, unsigned i)
{
	const uint8_t *buf = inproc_ram(ip, RX_BUFS + i * 2048);

	g_assert_cmpmem(buf, 6, mac, 6);
	g_assert_cmphex(buf[12] << 8 | buf[13], ==, 0x0806);
	g_assert_cmphex(buf[21], ==, 2);
}

/* ---- nic (docs/nic.md) ---- */

enum {
	NIC_CTRL = 0x000, NIC_IMS = 0x014, NIC_IRQ_MODE = 0x020,
	NIC_RX_BASE_LO = 0x100, NIC_RX_SIZE = 0x108, NIC_RX_HEAD = 0x10c,
	NIC_RX_TAIL = 0x110, NIC_TX_BASE_LO = 0x200, NIC_TX_SIZE = 0x208,
	NIC_TX_TAIL = 0x210,
};

/* RX buffers for the whole ring; FRAMES ARP requests queued for TX. */
static void nic_rings(struct inproc *ip)
{
	for (uint32_t i = 0; i < RING; i++) {
		uint8_t *d = inproc_ram(ip, RX_RING + i * 16);

		pf_le_store(d, 8, RX_BUFS + i * 2048);
		pf_le_store(d + 8, 2, 2048);
	}
	for (uint32_t i = 0; i < FRAMES; i++) {
		uint8_t *d = inproc_ram(ip, TX_RING + i * 16);

		pf_le_store(d, 8, TX_BUFS + i * 2048);
		pf_le_store(d + 8, 2, arp_request(inproc_ram(ip, TX_BUFS + i * 2048)));
		pf_le_store(d + 10, 2, 1);                      /* EOP */
	}
	inproc_wr32(ip, 0, NIC_RX_BASE_LO, (uint32_t)RX_RING);
	inproc_wr32(ip, 0, NIC_RX_SIZE, RING);
	inproc_wr32(ip, 0, NIC_TX_BASE_LO, (uint32_t)TX_RING);
	inproc_wr32(ip, 0, NIC_TX_SIZE, RING);
	inproc_wr32(ip, 0, NIC_IRQ_MODE, 2);                    /* MSI-X */
	inproc_wr32(ip, 0, NIC_IMS, 7);
	inproc_wr32(ip, 0, NIC_CTRL, 6);                        /* RX, TX on */
	inproc_wr32(ip, 0, NIC_RX_TAIL, RING - 1);
	inproc_settle(ip);
}

static uint16_t nic_rx_status(struct inproc *ip, unsigned i)
{
	return (uint16_t)pf_le_load(inproc_ram(ip, RX_RING + i * 16 + 12), 2);
}

static bool nic_all_received(struct inproc *ip, void *arg)
{
	return nic_rx_status(ip, FRAMES - 1) == 3;
}

static void test_nic_one_write_back(gconstpointer shared)
{
	struct inproc ip;

	start(&ip, "nic", shared != NULL);
	nic_rings(&ip);
	inproc_wr32(&ip, 0, NIC_TX_TAIL, FRAMES);
	g_assert_true(inproc_run(&ip, nic_all_received, NULL, 5000));
	inproc_settle(&ip);
	for (unsigned i = 0; i < FRAMES; i++) {
		const uint8_t *d = inproc_ram(&ip, RX_RING + i * 16);

		g_assert_cmphex(nic_rx_status(&ip, i), ==, 3);      /* DD|EOP */
		g_assert_cmpuint(pf_le_load(d + 10, 2), >=, 42);
		/* Written back whole: the address and size as fetched. */
		g_assert_cmphex(pf_le_load(d, 8), ==, RX_BUFS + i * 2048);
		g_assert_cmpuint(pf_le_load(d + 8, 2), ==, 2048);
		assert_reply(&ip, i);
	}
	g_assert_cmphex(nic_rx_status(&ip, FRAMES), ==, 0);
	g_assert_cmpuint(inproc_rd32(&ip, 0, NIC_RX_HEAD), ==, FRAMES);
	g_assert_cmpuint(ip.msix[0], ==, 1);      /* RX, auto-masked after */
	if (shared) {
		/* Descriptors and frames read in place; nothing by message. */
		g_assert_cmpuint(ip.dma_reads + ip.dma_writes, ==, 0);
		g_assert_cmpuint(ip.dev->n_dma_in_place, >=, 2 + FRAMES);
	} else {
		/* The frames, one write-back for RX, one for the TX batch. */
		g_assert_cmpuint(ip.dma_writes, ==, FRAMES + 1 + 1);
	}
	inproc_stop(&ip);
}

/*
 * A reset between the frames and the end of their pass (the doorbell
 * and the Reset in one batch; in place, the frames arrive inside the
 * doorbell's write): the write-backs are dropped with the ring, none
 * lands after the reset, and no RX interrupt is raised.
 */
static void test_nic_reset_mid_receive(void)
{
	struct inproc ip;
	uint8_t ring[RING * 16];
	uint64_t writes;

	start(&ip, "nic", true);
	nic_rings(&ip);
	inproc_wr32(&ip, 0, NIC_TX_TAIL, FRAMES);
	g_assert_cmpint(inproc_reset(&ip, PCIEFW__RESET_KIND__RESET_FUNCTION), ==, OK);
	memcpy(ring, inproc_ram(&ip, RX_RING), sizeof(ring));
	writes = ip.dev->n_dma_writes;
	/* A register access writes back what is pending: nothing now. */
	g_assert_cmpuint(inproc_rd32(&ip, 0, NIC_RX_HEAD), ==, 0);
	inproc_settle(&ip);
	/* No DMA at all after the reset, to the old ring or anywhere. */
	g_assert_cmpuint(ip.dev->n_dma_writes, ==, writes);
	g_assert_cmpuint(ip.dma_writes + ip.dma_refused, ==, 0);
	g_assert_cmpmem(inproc_ram(&ip, RX_RING), sizeof(ring), ring, sizeof(ring));
	for (unsigned i = 0; i < RING; i++)
		g_assert_cmphex(nic_rx_status(&ip, i), ==, 0);
	/* The frames themselves were received: the replies are there. */
	assert_reply(&ip, 0);
	g_assert_cmpuint(ip.msix[0], ==, 0);
	inproc_stop(&ip);
}

/* ---- e1000 (docs/e1000.md) ---- */

enum {
	E1K_ICR = 0xc0, E1K_IMS = 0xd0, E1K_RCTL = 0x100, E1K_TCTL = 0x400,
	E1K_RDBAL = 0x2800, E1K_RDLEN = 0x2808, E1K_RDH = 0x2810, E1K_RDT = 0x2818,
	E1K_TDBAL = 0x3800, E1K_TDLEN = 0x3808, E1K_TDT = 0x3818,
};
#define RCTL_EN (1u << 1)
#define RCTL_BAM (1u << 15)
#define RCTL_SECRC (1u << 26)
#define ICR_RXT0 (1u << 7)

static void e1k_rings(struct inproc *ip)
{
	for (uint32_t i = 0; i < RING; i++)
		pf_le_store(inproc_ram(ip, RX_RING + i * 16), 8, RX_BUFS + i * 2048);
	for (uint32_t i = 0; i < FRAMES; i++) {
		uint8_t *d = inproc_ram(ip, TX_RING + i * 16);

		pf_le_store(d, 8, TX_BUFS + i * 2048);
		pf_le_store(d + 8, 2, arp_request(inproc_ram(ip, TX_BUFS + i * 2048)));
		d[11] = 0x01 | 0x08;                            /* EOP, RS */
	}
	inproc_wr32(ip, 0, E1K_RDBAL, (uint32_t)RX_RING);
	inproc_wr32(ip, 0, E1K_RDLEN, RING * 16);
	inproc_wr32(ip, 0, E1K_TDBAL, (uint32_t)TX_RING);
	inproc_wr32(ip, 0, E1K_TDLEN, RING * 16);
	inproc_wr32(ip, 0, E1K_IMS, ICR_RXT0);
	inproc_wr32(ip, 0, E1K_RCTL, RCTL_EN | RCTL_BAM | RCTL_SECRC);   /* 2 KiB */
	inproc_wr32(ip, 0, E1K_TCTL, 2);
	inproc_wr32(ip, 0, E1K_RDT, RING - 1);
	inproc_settle(ip);
}

static uint8_t e1k_rx_status(struct inproc *ip, unsigned i)
{
	return inproc_ram(ip, RX_RING + i * 16)[12];
}

static bool e1k_all_received(struct inproc *ip, void *arg)
{
	return e1k_rx_status(ip, FRAMES - 1) & 1;
}

static void test_e1000_one_write_back(gconstpointer shared)
{
	struct inproc ip;

	start(&ip, "e1000", shared != NULL);
	e1k_rings(&ip);
	inproc_wr32(&ip, 0, E1K_TDT, FRAMES);
	g_assert_true(inproc_run(&ip, e1k_all_received, NULL, 5000));
	inproc_settle(&ip);
	for (unsigned i = 0; i < FRAMES; i++) {
		const uint8_t *d = inproc_ram(&ip, RX_RING + i * 16);

		g_assert_cmphex(d[12] & 3, ==, 3);                /* DD|EOP */
		g_assert_cmpuint(pf_le_load(d + 8, 2), >=, 60);   /* padded */
		g_assert_cmphex(pf_le_load(d, 8), ==, RX_BUFS + i * 2048);
		assert_reply(&ip, i);
	}
	g_assert_cmphex(e1k_rx_status(&ip, FRAMES), ==, 0);
	g_assert_cmpuint(inproc_rd32(&ip, 0, E1K_RDH), ==, FRAMES);
	g_assert_true(ip.intx_level);
	g_assert_cmphex(inproc_rd32(&ip, 0, E1K_ICR) & ICR_RXT0, ==, ICR_RXT0);
	if (shared) {
		g_assert_cmpuint(ip.dma_reads + ip.dma_writes, ==, 0);
		g_assert_cmpuint(ip.dev->n_dma_in_place, >=, 2 + FRAMES);
	} else {
		g_assert_cmpuint(ip.dma_writes, ==, FRAMES + 1 + 1);
	}
	inproc_stop(&ip);
}

static void test_e1000_reset_mid_receive(void)
{
	struct inproc ip;
	uint8_t ring[RING * 16];
	uint64_t writes;

	start(&ip, "e1000", true);
	e1k_rings(&ip);
	inproc_wr32(&ip, 0, E1K_TDT, FRAMES);
	g_assert_cmpint(inproc_reset(&ip, PCIEFW__RESET_KIND__RESET_FUNCTION), ==, OK);
	memcpy(ring, inproc_ram(&ip, RX_RING), sizeof(ring));
	writes = ip.dev->n_dma_writes;
	/* A register access writes back what is pending: nothing now. */
	g_assert_cmpuint(inproc_rd32(&ip, 0, E1K_RDH), ==, 0);
	inproc_settle(&ip);
	/* No DMA at all after the reset, to the old ring or anywhere. */
	g_assert_cmpuint(ip.dev->n_dma_writes, ==, writes);
	g_assert_cmpuint(ip.dma_writes + ip.dma_refused, ==, 0);
	g_assert_cmpmem(inproc_ram(&ip, RX_RING), sizeof(ring), ring, sizeof(ring));
	for (unsigned i = 0; i < RING; i++)
		g_assert_cmphex(e1k_rx_status(&ip, i), ==, 0);
	assert_reply(&ip, 0);
	g_assert_false(ip.intx_level);
	inproc_stop(&ip);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_data_func("/rx-write-back/nic/messages", NULL,
			     test_nic_one_write_back);
	g_test_add_data_func("/rx-write-back/nic/in-place", "",
			     test_nic_one_write_back);
	g_test_add_func("/rx-write-back/nic/reset-mid-receive",
			test_nic_reset_mid_receive);
	g_test_add_data_func("/rx-write-back/e1000/messages", NULL,
			     test_e1000_one_write_back);
	g_test_add_data_func("/rx-write-back/e1000/in-place", "",
			     test_e1000_one_write_back);
	g_test_add_func("/rx-write-back/e1000/reset-mid-receive",
			test_e1000_reset_mid_receive);
	return g_test_run();
}
