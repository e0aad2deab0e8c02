/*
 * The nic model (docs/nic.md) in a real pciefw-endpoint, driven through the
 * host library the way the Linux driver drives it: rings in guest memory,
 * doorbells, write-backs, MSI-X.  slirp answers ARP; two endpoints wired by
 * the dgram backend pass frames to each other.
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "host_util.h"
#include "msg.h"
#include "pciefw.h"
#include "raw_host.h"
#include "transport.h"

enum {
	CTRL = 0x000, STATUS = 0x004, MAC_LO = 0x008, MAC_HI = 0x00c, ICR = 0x010,
	IMS = 0x014, IMC = 0x018, ITR = 0x01c, IRQ_MODE = 0x020, MAX_FRAME = 0x024,
	RX_BASE_LO = 0x100, RX_BASE_HI = 0x104, RX_SIZE = 0x108, RX_HEAD = 0x10c,
	RX_TAIL = 0x110, TX_BASE_LO = 0x200, TX_BASE_HI = 0x204, TX_SIZE = 0x208,
	TX_HEAD = 0x20c, TX_TAIL = 0x210, STATS = 0x300,
};
enum { ST_RX_PACKETS, ST_RX_BYTES, ST_TX_PACKETS, ST_TX_BYTES, ST_RX_DROPPED,
       ST_RX_ERRORS, ST_TX_ERRORS, ST_INTERRUPTS };

#define RING      16u
#define RX_RING   (GUEST_BASE + 0x0000)
#define TX_RING   (GUEST_BASE + 0x1000)
#define RX_BUFS   (GUEST_BASE + 0x10000)
#define TX_BUFS   (GUEST_BASE + 0x100000)
#define BUF_SIZE  2048u

static const uint8_t our_mac[6] = { 0x52, 0x54, 0x00, 0xaa, 0xbb, 0x01 };

struct fixture {
	struct endpoint_proc ep;
	struct pf_host *h;
	uint32_t tx_next;
};

static uint8_t *gmem(struct pf_host *h, uint64_t addr)
{
	return pf_host_mem(h)->data + (addr - GUEST_BASE);
}

static uint64_t nic_stat(struct pf_host *h, unsigned i)
{
	uint8_t b[8];

	g_assert_cmpint(pf_host_mem_read(h, 0, STATS + 8 * i, b, 8), ==, 0);
	return pf_le_load(b, 8);
}

static void bring_up_keep(struct pf_host *h, uint32_t rx_avail);

/* RX descriptors pointing at 2 KiB buffers. */
static void init_rx_ring(struct pf_host *h)
{
	for (uint32_t i = 0; i < RING; i++) {
		uint8_t *d = gmem(h, RX_RING + i * 16);

		memset(d, 0, 16);
		pf_le_store(d, 8, RX_BUFS + i * BUF_SIZE);
		pf_le_store(d + 8, 2, BUF_SIZE);
	}
}

/* What the driver's open does (nic 2, 3): rings, buffers, MSI-X, enable. */
static void bring_up(struct pf_host *h, uint32_t rx_avail)
{
	init_rx_ring(h);
	bring_up_keep(h, rx_avail);
}

/* The same, with the RX descriptors as the test left them. */
static void bring_up_keep(struct pf_host *h, uint32_t rx_avail)
{
	wr32(h, 0, RX_BASE_LO, (uint32_t)RX_RING);
	wr32(h, 0, RX_BASE_HI, (uint32_t)(RX_RING >> 32));
	wr32(h, 0, RX_SIZE, RING);
	wr32(h, 0, TX_BASE_LO, (uint32_t)TX_RING);
	wr32(h, 0, TX_BASE_HI, (uint32_t)(TX_RING >> 32));
	wr32(h, 0, TX_SIZE, RING);
	wr32(h, 0, IRQ_MODE, 2);
	wr32(h, 0, IMS, 7);
	wr32(h, 0, CTRL, 6);
	wr32(h, 0, RX_TAIL, rx_avail);
	/*
	 * The device now reads the descriptors by DMA.  Two round trips make
	 * sure it has them: our host library is single-threaded and serves
	 * DMA only while it waits, where QEMU serves it at once.
	 */
	rd32(h, 0, STATUS);
	rd32(h, 0, STATUS);
}

static void setup_opts(struct fixture *f, const char *device)
{
	const char *args[] = { "--device", device, NULL };

	endpoint_start(&f->ep, false, args);
	f->h = connect_host(&f->ep);
	f->tx_next = 0;
}

static void setup(struct fixture *f, gconstpointer data)
{
	setup_opts(f, "nic,mac=52:54:00:aa:bb:01");
}

static void teardown(struct fixture *f, gconstpointer data)
{
	pf_host_close(f->h, true);
	g_assert_true(endpoint_alive(&f->ep));
	g_assert_cmpint(endpoint_stop(&f->ep), ==, 0);
}

static void send_frame(struct fixture *f, const uint8_t *frame, uint16_t len)
{
	uint32_t i = f->tx_next;
	uint8_t *d = gmem(f->h, TX_RING + i * 16);

	memcpy(gmem(f->h, TX_BUFS + i * BUF_SIZE), frame, len);
	memset(d, 0, 16);
	pf_le_store(d, 8, TX_BUFS + i * BUF_SIZE);
	pf_le_store(d + 8, 2, len);
	pf_le_store(d + 10, 2, 1);          /* EOP */
	f->tx_next = (i + 1) % RING;
	wr32(f->h, 0, TX_TAIL, f->tx_next);
}

/* An ARP request "who has 10.0.2.2, tell 10.0.2.15". */
static uint16_t arp_request(uint8_t *p)
{
	static const uint8_t tail[] = {
		0x08, 0x06, 0, 1, 0x08, 0x00, 6, 4, 0, 1,
	};

	memset(p, 0xff, 6);
	memcpy(p + 6, our_mac, 6);
	memcpy(p + 12, tail, sizeof(tail));
	memcpy(p + 22, our_mac, 6);
	memcpy(p + 28, (uint8_t[]){ 10, 0, 2, 15 }, 4);
	memset(p + 32, 0, 6);
	memcpy(p + 38, (uint8_t[]){ 10, 0, 2, 2 }, 4);
	memset(p + 42, 0, 18);
	return 60;
}

static bool msix_at_least(struct pf_host *h, void *arg)
{
	const unsigned *want = arg;

	return pf_host_irqs(h)->msix[want[0]] >= want[1];
}

static void wait_msix(struct pf_host *h, unsigned vec, unsigned count)
{
	unsigned want[2] = { vec, count };

	g_assert_cmpint(pf_host_wait(h, msix_at_least, want, 5000), ==, 0);
}

static void test_identity(struct fixture *f, gconstpointer data)
{
	const Pciefw__DeviceDescription *d = pf_host_description(f->h);

	g_assert_cmphex(d->device_id, ==, 0xfe02);
	g_assert_cmphex(d->class_code, ==, 0x020000);
	g_assert_cmpuint(d->msix_vectors, ==, 3);
	g_assert_cmphex(rd32(f->h, 0, MAC_LO), ==, 0xaa005452);
	g_assert_cmphex(rd32(f->h, 0, MAC_HI), ==, 0x01bb);
	g_assert_cmphex(rd32(f->h, 0, STATUS), ==, 1);
	g_assert_cmphex(rd32(f->h, 0, MAX_FRAME), ==, 1518);
}

static void test_arp_through_slirp(struct fixture *f, gconstpointer data)
{
	struct pf_host *h = f->h;
	uint8_t frame[2048] = { 0 };
	uint8_t *rx0 = gmem(h, RX_RING), *buf = gmem(h, RX_BUFS);

	bring_up(h, RING - 1);
	send_frame(f, frame, arp_request(frame));
	wait_msix(h, 1, 1);                          /* TX written back */
	g_assert_cmphex(pf_le_load(gmem(h, TX_RING) + 12, 2), ==, 1);   /* DD */
	wait_msix(h, 0, 1);                          /* RX */
	g_assert_cmphex(pf_le_load(rx0 + 12, 2), ==, 3);                /* DD|EOP */
	uint16_t len = (uint16_t)pf_le_load(rx0 + 10, 2);
	g_assert_cmpuint(len, >=, 42);
	g_assert_cmpmem(buf, 6, our_mac, 6);                 /* to us */
	g_assert_cmphex(buf[12] << 8 | buf[13], ==, 0x0806);  /* ARP */
	g_assert_cmphex(buf[21], ==, 2);                      /* reply */
	g_assert_cmpmem(buf + 28, 4, ((uint8_t[]){ 10, 0, 2, 2 }), 4);
	g_assert_cmpuint(nic_stat(h, ST_TX_PACKETS), ==, 1);
	g_assert_cmpuint(nic_stat(h, ST_TX_BYTES), ==, 60);
	g_assert_cmpuint(nic_stat(h, ST_RX_PACKETS), ==, 1);
	g_assert_cmpuint(rd32(h, 0, RX_HEAD), ==, 1);
	g_assert_cmpuint(rd32(h, 0, TX_HEAD), ==, 1);
	/* Both causes auto-masked themselves (nic 4); only LINK is enabled. */
	g_assert_cmphex(rd32(h, 0, IMS), ==, 4);
	/* Masked: a second exchange raises no interrupt... */
	send_frame(f, frame, arp_request(frame));
	for (int i = 0; i < 20 && nic_stat(h, ST_RX_PACKETS) < 2; i++)
		pf_host_poll(h, 20);
	g_assert_cmpuint(nic_stat(h, ST_RX_PACKETS), ==, 2);
	g_assert_cmpuint(pf_host_irqs(h)->msix[0], ==, 1);
	/* ...until the driver re-enables it: then at once. */
	wr32(h, 0, IMS, 3);
	wait_msix(h, 0, 2);
	wait_msix(h, 1, 2);
}

static void test_rx_without_descriptors(struct fixture *f, gconstpointer data)
{
	struct pf_host *h = f->h;
	uint8_t frame[2048] = { 0 };

	bring_up(h, 0);                    /* RX enabled, nothing available */
	memset(gmem(h, RX_BUFS), 0x77, BUF_SIZE);
	send_frame(f, frame, arp_request(frame));
	wait_msix(h, 1, 1);
	for (int i = 0; i < 50 && nic_stat(h, ST_RX_DROPPED) == 0; i++)
		pf_host_poll(h, 10);
	g_assert_cmpuint(nic_stat(h, ST_RX_DROPPED), ==, 1);
	g_assert_cmpuint(nic_stat(h, ST_RX_PACKETS), ==, 0);
	/* Dropped frames touch no guest memory. */
	g_assert_cmpuint(gmem(h, RX_BUFS)[0], ==, 0x77);
	g_assert_cmpuint(pf_le_load(gmem(h, RX_RING) + 12, 2), ==, 0);
}

/* A malformed RX descriptor is skipped, never written into (nic 3.1). */
static void test_bad_rx_descriptor(struct fixture *f, gconstpointer data)
{
	struct pf_host *h = f->h;
	uint8_t frame[2048] = { 0 };

	init_rx_ring(h);
	pf_le_store(gmem(h, RX_RING) + 8, 2, 0);       /* buf_len 0 */
	bring_up_keep(h, RING - 1);
	memset(gmem(h, RX_BUFS), 0x77, 16);
	send_frame(f, frame, arp_request(frame));
	wait_msix(h, 0, 1);
	g_assert_cmphex(pf_le_load(gmem(h, RX_RING) + 12, 2), ==, 5);    /* DD|ERR */
	g_assert_cmpuint(pf_le_load(gmem(h, RX_RING) + 10, 2), ==, 0);
	g_assert_cmpuint(gmem(h, RX_BUFS)[0], ==, 0x77);
	g_assert_cmphex(pf_le_load(gmem(h, RX_RING + 16) + 12, 2), ==, 3); /* DD|EOP */
	g_assert_cmpuint(nic_stat(h, ST_RX_ERRORS), ==, 1);
	g_assert_cmpuint(nic_stat(h, ST_RX_PACKETS), ==, 1);
}

static void test_bad_tx_descriptors(struct fixture *f, gconstpointer data)
{
	struct pf_host *h = f->h;
	uint8_t frame[2048] = { 0 };
	uint8_t *d;

	bring_up(h, RING - 1);
	/* Zero length, then oversize, then a buffer outside guest memory. */
	send_frame(f, frame, 0);
	wait_msix(h, 1, 1);
	g_assert_cmphex(pf_le_load(gmem(h, TX_RING) + 12, 2), ==, 5);  /* DD|ERR */
	wr32(h, 0, IMS, 2);
	send_frame(f, frame, 1519);     /* default MAX_FRAME + 1 (nic 5.1) */
	wait_msix(h, 1, 2);
	g_assert_cmphex(pf_le_load(gmem(h, TX_RING + 16) + 12, 2), ==, 5);
	wr32(h, 0, IMS, 2);
	d = gmem(h, TX_RING + 32);
	send_frame(f, frame, arp_request(frame));
	/* send_frame pointed it at a valid buffer; the doorbell already went.
	 * Point the next one at nowhere before ringing. */
	memset(d + 16, 0, 16);
	pf_le_store(d + 16, 8, 0x10);
	pf_le_store(d + 16 + 8, 2, 60);
	pf_le_store(d + 16 + 10, 2, 1);
	f->tx_next = 4;
	wait_msix(h, 1, 3);
	wr32(h, 0, IMS, 2);
	wr32(h, 0, TX_TAIL, 4);
	wait_msix(h, 1, 4);
	g_assert_cmphex(pf_le_load(gmem(h, TX_RING + 32) + 12, 2), ==, 1);
	g_assert_cmphex(pf_le_load(gmem(h, TX_RING + 48) + 12, 2), ==, 5);
	g_assert_cmpuint(nic_stat(h, ST_TX_ERRORS), ==, 3);
	g_assert_cmpuint(nic_stat(h, ST_TX_PACKETS), ==, 1);
	g_assert_cmpuint(rd32(h, 0, TX_HEAD), ==, 4);
}

static void test_reset_and_intx(struct fixture *f, gconstpointer data)
{
	struct pf_host *h = f->h;
	uint8_t frame[2048] = { 0 };

	bring_up(h, RING - 1);
	wr32(h, 0, IRQ_MODE, 0);           /* INTx */
	send_frame(f, frame, arp_request(frame));
	for (int i = 0; i < 100 && !pf_host_irqs(h)->intx_level; i++)
		pf_host_poll(h, 10);
	g_assert_true(pf_host_irqs(h)->intx_level);
	/* Reading ICR acknowledges and lowers the pin. */
	g_assert_cmphex(rd32(h, 0, ICR) & 2, ==, 2);
	g_assert_false(pf_host_irqs(h)->intx_level);
	wr32(h, 0, CTRL, 1);               /* RST */
	g_assert_cmphex(rd32(h, 0, CTRL), ==, 0);
	g_assert_cmphex(rd32(h, 0, IMS), ==, 0);
	g_assert_cmphex(rd32(h, 0, RX_SIZE), ==, 0);
	g_assert_cmphex(rd32(h, 0, TX_HEAD), ==, 0);
	/* Statistics survive a reset (nic 6). */
	g_assert_cmpuint(nic_stat(h, ST_TX_PACKETS), ==, 1);
}

/* ---- Ring registers changed with work in flight (nic 2) ---- */

/* The endpoint is alive and its log has no sanitizer report. */
static void assert_endpoint_sound(struct fixture *f)
{
	char *log = endpoint_log(&f->ep);

	g_assert_true(endpoint_alive(&f->ep));
	if (strstr(log, "AddressSanitizer") || strstr(log, "runtime error"))
		g_error("endpoint reported memory errors:\n%s", log);
	g_free(log);
}

/* TX descriptors [0, count) pointing at valid 60-byte frames. */
static void fill_tx_ring(struct pf_host *h, uint64_t ring, uint32_t count)
{
	for (uint32_t i = 0; i < count; i++) {
		uint8_t *d = gmem(h, ring + i * 16);

		memset(d, 0, 16);
		pf_le_store(d, 8, TX_BUFS + (i % RING) * BUF_SIZE);
		pf_le_store(d + 8, 2, 60);
		pf_le_store(d + 10, 2, 1);          /* EOP */
	}
}

static void tx_ring_at(struct pf_host *h, uint64_t ring, uint32_t size)
{
	wr32(h, 0, TX_BASE_LO, (uint32_t)ring);
	wr32(h, 0, TX_BASE_HI, (uint32_t)(ring >> 32));
	wr32(h, 0, TX_SIZE, size);
}

/*
 * The review's trigger, all posted writes: a 4096-entry ring, a doorbell
 * for 4095 descriptors, then TX_SIZE 8 before the descriptor fetch
 * completes.  The old code copied the fetch into the 8-entry buffer.
 */
static void test_tx_shrink_during_fetch(struct fixture *f, gconstpointer data)
{
	struct pf_host *h = f->h;

	fill_tx_ring(h, TX_RING, 4096);
	tx_ring_at(h, TX_RING, 4096);
	wr32(h, 0, CTRL, 4);
	wr32(h, 0, TX_TAIL, 4095);
	wr32(h, 0, TX_SIZE, 8);
	for (int i = 0; i < 4; i++)
		rd32(h, 0, STATUS);     /* serves the fetch and whatever follows */
	assert_endpoint_sound(f);
	/* The abandoned batch sent nothing and wrote nothing back. */
	g_assert_cmpuint(nic_stat(h, ST_TX_PACKETS), ==, 0);
	g_assert_cmpuint(nic_stat(h, ST_TX_ERRORS), ==, 0);
	g_assert_cmphex(pf_le_load(gmem(h, TX_RING) + 12, 2), ==, 0);
	g_assert_cmpuint(rd32(h, 0, TX_HEAD), ==, 0);
	g_assert_cmpuint(rd32(h, 0, TX_SIZE), ==, 8);
}

static void raw_w32(struct pf_buf *b, uint32_t off, uint32_t v)
{
	uint8_t d[4];

	pf_le_store(d, 4, v);
	g_assert_cmpint(pf_put_mem_write(b, 0, off, d, 4), ==, 0);
}

/*
 * Shrunk after the descriptors arrived, while the frame reads are out: the
 * old code wrote their status into the 8-entry copy of the ring, and wrote
 * heap bytes back to the guest.  A raw host answers the DMA itself, so the
 * frame reads are certainly outstanding when TX_SIZE changes.
 */
static void test_tx_shrink_during_frame_reads(struct fixture *f, gconstpointer data)
{
	enum { N = 500 };
	static uint8_t descs[N * 16], frame[60];
	static uint32_t tags[N];
	struct raw_host r;
	struct pf_buf b;
	PfMessage *m;
	bool wrote = false;

	pf_host_close(f->h, true);
	raw_host_open(&r, f->ep.addr, PCIEFW_DEFAULT_PAYLOAD);
	pf_buf_init(&b);
	raw_w32(&b, TX_BASE_LO, (uint32_t)TX_RING);
	raw_w32(&b, TX_BASE_HI, (uint32_t)(TX_RING >> 32));
	raw_w32(&b, TX_SIZE, 512);
	raw_w32(&b, CTRL, 4);
	raw_w32(&b, TX_TAIL, N);
	raw_host_send(&r, &b);
	m = raw_host_expect(&r, PCIEFW__MESSAGE__BODY_DMA_READ, 10000);
	g_assert_nonnull(m);
	g_assert_cmpuint(m->dma_read->size, ==, sizeof(descs));
	for (uint32_t i = 0; i < N; i++) {
		pf_le_store(descs + i * 16, 8, TX_BUFS + i * 64);
		pf_le_store(descs + i * 16 + 8, 2, sizeof(frame));
		pf_le_store(descs + i * 16 + 10, 2, 1);          /* EOP */
	}
	pf_put_completion(&b, m->dma_read->tag, PCIEFW__STATUS__STATUS_SUCCESSFUL,
			  descs, sizeof(descs));
	raw_host_send(&r, &b);
	for (unsigned i = 0; i < N; i++) {
		m = raw_host_expect(&r, PCIEFW__MESSAGE__BODY_DMA_READ, 10000);
		g_assert_nonnull(m);
		tags[i] = m->dma_read->tag;
	}
	/* All 500 frame reads are out.  Shrink, then answer them. */
	raw_w32(&b, TX_SIZE, 8);
	for (unsigned i = 0; i < N; i++)
		pf_put_completion(&b, tags[i], PCIEFW__STATUS__STATUS_SUCCESSFUL,
				  frame, sizeof(frame));
	pf_put_mem_read(&b, 1, 0, TX_HEAD, 4);
	raw_host_send(&r, &b);
	while ((m = raw_host_next(&r, 10000)) &&
	       m->body_case != PCIEFW__MESSAGE__BODY_COMPLETION) {
		g_assert_cmpint(m->body_case, !=, PCIEFW__MESSAGE__BODY_ERROR);
		wrote |= m->body_case == PCIEFW__MESSAGE__BODY_DMA_WRITE;
	}
	g_assert_nonnull(m);                        /* it answered, alive */
	g_assert_cmpuint(m->completion->tag, ==, 1);
	g_assert_cmpuint(pf_le_load(m->completion->data.data, 4), ==, 0);
	g_assert_false(wrote);                      /* no write-back at all */
	raw_host_close(&r);
	pf_buf_free(&b);
	f->h = connect_host(&f->ep);
	assert_endpoint_sound(f);
}

/* A new TX_BASE: batches of the old ring never write into the new one. */
static void test_tx_rebase_in_flight(struct fixture *f, gconstpointer data)
{
	struct pf_host *h = f->h;
	uint64_t other = TX_RING + 0x8000;

	fill_tx_ring(h, TX_RING, RING);
	fill_tx_ring(h, other, RING);
	tx_ring_at(h, TX_RING, RING);
	wr32(h, 0, CTRL, 4);
	wr32(h, 0, TX_TAIL, 4);
	wr32(h, 0, TX_BASE_LO, (uint32_t)other);
	for (int i = 0; i < 4; i++)
		rd32(h, 0, STATUS);
	assert_endpoint_sound(f);
	for (uint32_t i = 0; i < RING; i++)
		g_assert_cmphex(pf_le_load(gmem(h, other + i * 16) + 12, 2), ==, 0);
	g_assert_cmpuint(rd32(h, 0, TX_HEAD), ==, 0);
	g_assert_cmpuint(nic_stat(h, ST_TX_PACKETS), ==, 0);
}

/*
 * TX_TAIL moved back over descriptors being sent is ignored: each frame
 * leaves once, in one batch sequence (nic 3).
 */
static void test_tx_tail_backwards(struct fixture *f, gconstpointer data)
{
	struct pf_host *h = f->h;

	fill_tx_ring(h, TX_RING, RING);
	tx_ring_at(h, TX_RING, RING);
	wr32(h, 0, IRQ_MODE, 2);
	wr32(h, 0, CTRL, 4);
	wr32(h, 0, TX_TAIL, 10);
	wr32(h, 0, TX_TAIL, 2);
	for (int i = 0; i < 50 && rd32(h, 0, TX_HEAD) != 10; i++)
		pf_host_poll(h, 10);
	for (int i = 0; i < 4; i++)
		rd32(h, 0, STATUS);
	assert_endpoint_sound(f);
	g_assert_cmpuint(rd32(h, 0, TX_HEAD), ==, 10);
	g_assert_cmpuint(rd32(h, 0, TX_TAIL), ==, 10);
	g_assert_cmpuint(nic_stat(h, ST_TX_PACKETS), ==, 10);
	g_assert_cmpuint(nic_stat(h, ST_TX_ERRORS), ==, 0);
}

/*
 * RX_SIZE changed while the descriptor fetch is out: the driver gave the
 * new ring nothing, so an arriving frame finds no descriptor.
 */
static void test_rx_resize_during_fetch(struct fixture *f, gconstpointer data)
{
	struct pf_host *h = f->h;
	uint8_t frame[2048] = { 0 };

	init_rx_ring(h);
	bring_up_keep(h, 0);
	wr32(h, 0, RX_SIZE, 4096);
	wr32(h, 0, RX_TAIL, 4095);
	wr32(h, 0, RX_SIZE, 8);
	rd32(h, 0, STATUS);
	rd32(h, 0, STATUS);
	send_frame(f, frame, arp_request(frame));
	wait_msix(h, 1, 1);
	for (int i = 0; i < 100 && nic_stat(h, ST_RX_DROPPED) == 0; i++)
		pf_host_poll(h, 10);
	assert_endpoint_sound(f);
	g_assert_cmpuint(nic_stat(h, ST_RX_DROPPED), ==, 1);
	g_assert_cmpuint(nic_stat(h, ST_RX_PACKETS), ==, 0);
	g_assert_cmpuint(pf_le_load(gmem(h, RX_RING) + 12, 2), ==, 0);
}

/* Two endpoints wired back to back with the dgram backend (nic 7). */
struct dgram_pair {
	char *dir;
	struct fixture a, b;
};

static void dgram_pair_open(struct dgram_pair *p)
{
	char *a, *b;

	p->dir = g_dir_make_tmp("pciefw-dgram-XXXXXX", NULL);
	a = g_strdup_printf("nic,mac=52:54:00:aa:bb:01,backend=dgram,"
			    "local=unix:%s/a,remote=unix:%s/b", p->dir, p->dir);
	b = g_strdup_printf("nic,mac=52:54:00:aa:bb:02,backend=dgram,"
			    "local=unix:%s/b,remote=unix:%s/a", p->dir, p->dir);
	setup_opts(&p->a, a);
	setup_opts(&p->b, b);
	g_free(a);
	g_free(b);
}

static void dgram_pair_close(struct dgram_pair *p)
{
	teardown(&p->a, NULL);
	teardown(&p->b, NULL);
	for (const char *c = "ab"; *c; c++) {
		char *path = g_strdup_printf("%s/%c", p->dir, *c);

		g_unlink(path);
		g_free(path);
	}
	g_rmdir(p->dir);
	g_free(p->dir);
}

static void test_dgram_pair(void)
{
	struct dgram_pair p;
	uint8_t frame[2048] = { 0 };

	dgram_pair_open(&p);
	bring_up(p.a.h, RING - 1);
	bring_up(p.b.h, RING - 1);
	send_frame(&p.a, frame, arp_request(frame));
	wait_msix(p.a.h, 1, 1);     /* A's host serves the frame's DMA read */
	g_assert_cmpuint(nic_stat(p.a.h, ST_TX_PACKETS), ==, 1);
	wait_msix(p.b.h, 0, 1);
	g_assert_cmpuint(pf_le_load(gmem(p.b.h, RX_RING) + 10, 2), ==, 60);
	g_assert_cmpmem(gmem(p.b.h, RX_BUFS), 60, frame, 60);
	dgram_pair_close(&p);
}

/* Frame @seq of an A-to-B stream: its length varies, its bytes say who it is. */
static uint16_t numbered_frame(uint8_t *p, uint32_t seq, const uint8_t *dst)
{
	uint16_t len = (uint16_t)(60 + (seq * 37) % 1455);

	memcpy(p, dst, 6);
	memcpy(p + 6, our_mac, 6);
	p[12] = 0x88;                           /* local experimental type */
	p[13] = 0xb5;
	pf_le_store(p + 14, 4, seq);
	for (uint16_t i = 18; i < len; i++)
		p[i] = (uint8_t)(seq * 7 + i);
	return len;
}

struct stat_want {
	unsigned stat;
	uint64_t value;
};

static bool stat_reached(struct pf_host *h, void *arg)
{
	const struct stat_want *w = arg;

	return nic_stat(h, w->stat) >= w->value;
}

static void wait_stat(struct pf_host *h, unsigned stat, uint64_t value)
{
	struct stat_want w = { stat, value };

	g_assert_cmpint(pf_host_wait(h, stat_reached, &w, 10000), ==, 0);
	g_assert_cmpuint(nic_stat(h, stat), ==, value);
}

/*
 * Every frame of a stream from A to B arrives, in order and intact, and
 * both ends count it (nic 3, 6): no loss hides behind a transfer that
 * retransmits.  Rounds of 8 frames fit B's RX ring of 15 descriptors.
 */
static void test_dgram_every_frame_counted(void)
{
	static const uint8_t b_mac[6] = { 0x52, 0x54, 0x00, 0xaa, 0xbb, 0x02 };
	const uint32_t frames = 240, round = 8;
	uint32_t rx_next = 0, rx_tail = RING - 1;
	uint64_t bytes = 0;
	struct dgram_pair p;
	struct fixture *fa = &p.a, *fb = &p.b;
	uint8_t frame[2048];

	dgram_pair_open(&p);
	bring_up(fa->h, RING - 1);
	bring_up(fb->h, rx_tail);
	for (uint32_t seq = 0; seq < frames; seq += round) {
		for (uint32_t i = 0; i < round; i++) {
			uint16_t len = numbered_frame(frame, seq + i, b_mac);

			send_frame(fa, frame, len);
			bytes += len;
		}
		wait_stat(fa->h, ST_TX_PACKETS, seq + round);
		wait_stat(fb->h, ST_RX_PACKETS, seq + round);
		for (uint32_t i = 0; i < round; i++) {
			uint8_t *d = gmem(fb->h, RX_RING + rx_next * 16);
			uint16_t len = numbered_frame(frame, seq + i, b_mac);

			g_assert_cmpuint(pf_le_load(d + 12, 2), ==, 3);  /* DD|EOP */
			g_assert_cmpuint(pf_le_load(d + 10, 2), ==, len);
			g_assert_cmpmem(gmem(fb->h, RX_BUFS + rx_next * BUF_SIZE), len,
					frame, len);
			memset(d + 10, 0, 6);
			rx_next = (rx_next + 1) % RING;
		}
		rx_tail = (rx_tail + round) % RING;
		wr32(fb->h, 0, RX_TAIL, rx_tail);
		rd32(fb->h, 0, STATUS);         /* B has fetched them (bring_up) */
		rd32(fb->h, 0, STATUS);
	}
	g_assert_cmpuint(nic_stat(fa->h, ST_TX_BYTES), ==, bytes);
	g_assert_cmpuint(nic_stat(fb->h, ST_RX_BYTES), ==, bytes);
	g_assert_cmpuint(nic_stat(fb->h, ST_RX_DROPPED), ==, 0);
	g_assert_cmpuint(nic_stat(fb->h, ST_RX_ERRORS), ==, 0);
	g_assert_cmpuint(nic_stat(fa->h, ST_TX_ERRORS), ==, 0);
	dgram_pair_close(&p);
}

/*
 * ITR (nic 4): at most one interrupt per vector per ITR microseconds, even
 * when the driver re-enables the cause at once after each one.  The bound
 * holds on a machine of any speed: a slower run only widens it.
 */
static void test_itr_moderates(struct fixture *f, gconstpointer data)
{
	const uint32_t itr_us = 100000, frames = 200;
	struct pf_host *h = f->h;
	uint64_t seen = 0, t0, elapsed_us, irqs;
	uint8_t frame[2048] = { 0 };
	uint16_t len = arp_request(frame);

	bring_up(h, RING - 1);
	wr32(h, 0, ITR, itr_us);
	t0 = (uint64_t)g_get_monotonic_time();
	for (uint32_t sent = 0; sent < frames; ) {
		for (uint32_t i = 0; i < 8; i++, sent++)
			send_frame(f, frame, len);
		/* Wait for the TX slots to come back, unmasking TX at once. */
		while (nic_stat(h, ST_TX_PACKETS) < sent) {
			irqs = pf_host_irqs(h)->msix[1];
			if (irqs > seen) {
				seen = irqs;
				wr32(h, 0, IMS, 2);
			}
			g_assert_cmpint(pf_host_poll(h, 1), >=, 0);
			g_assert_cmpuint((uint64_t)g_get_monotonic_time() - t0, <,
					 60 * G_USEC_PER_SEC);
		}
	}
	elapsed_us = (uint64_t)g_get_monotonic_time() - t0;
	irqs = pf_host_irqs(h)->msix[1];
	g_assert_cmpuint(irqs, >=, 1);
	g_assert_cmpuint(irqs, <=, elapsed_us / itr_us + 2);
}


/*
 * The stream backend's peer connects and never reads (issue 11 item 8).
 * Sending used to block the endpoint's loop in poll(): after a few dozen
 * frames it answered nothing.  Now frames beyond a bounded queue are
 * dropped, and register reads keep being answered throughout.
 */
static void test_stream_peer_not_reading(void)
{
	char *dir = g_dir_make_tmp("pciefw-stream-XXXXXX", NULL);
	char *path = g_strdup_printf("%s/peer", dir);
	char *opts = g_strdup_printf("nic,mac=52:54:00:aa:bb:01,backend=stream,"
				     "connect=unix:%s", path);
	char *addr = g_strdup_printf("unix:%s", path);
	struct pf_addr a;
	char err[256], *log;
	struct fixture f;
	uint8_t frame[2048] = { 0 };
	int lfd, peer;

	g_assert_cmpint(pf_addr_parse(addr, &a, err, sizeof(err)), ==, 0);
	g_free(addr);
	lfd = pf_listen(&a, err, sizeof(err));
	g_assert_cmpint(lfd, >=, 0);
	g_assert_cmpint(pf_set_nonblock(lfd, 0), ==, 0);
	setup_opts(&f, opts);
	peer = accept(lfd, NULL, NULL);          /* and never read from it */
	g_assert_cmpint(peer, >=, 0);
	for (int i = 0; i < 100 && rd32(f.h, 0, STATUS) != 1; i++)
		pf_host_poll(f.h, 10);
	g_assert_cmphex(rd32(f.h, 0, STATUS), ==, 1);   /* link up */
	bring_up(f.h, 0);
	memset(frame, 0xff, 6);
	for (int round = 0; round < 200; round++) {
		for (int i = 0; i < 15; i++) {
			uint32_t slot = f.tx_next;
			uint8_t *d = gmem(f.h, TX_RING + slot * 16);

			memcpy(gmem(f.h, TX_BUFS + slot * BUF_SIZE), frame, 1514);
			memset(d, 0, 16);
			pf_le_store(d, 8, TX_BUFS + slot * BUF_SIZE);
			pf_le_store(d + 8, 2, 1514);
			pf_le_store(d + 10, 2, 1);
			f.tx_next = (slot + 1) % RING;
		}
		wr32(f.h, 0, TX_TAIL, f.tx_next);
		/* Each read must be answered: the loop is never stuck. */
		for (int i = 0; i < 500 && rd32(f.h, 0, TX_HEAD) != f.tx_next; i++)
			pf_host_poll(f.h, 10);
		g_assert_cmpuint(rd32(f.h, 0, TX_HEAD), ==, f.tx_next);
	}
	g_assert_cmpuint(nic_stat(f.h, ST_TX_PACKETS), ==, 3000);
	log = endpoint_log(&f.ep);
	g_assert_nonnull(strstr(log, "peer not reading"));
	g_free(log);
	teardown(&f, NULL);
	close(peer);
	close(lfd);
	g_unlink(path);
	g_rmdir(dir);
	g_free(opts);
	g_free(path);
	g_free(dir);
}

static void test_bad_options(void)
{
	static const char *const cases[][2] = {
		{ "nic,mac=01:00:00:00:00:01", "invalid mac" },
		{ "nic,mac=zz", "invalid mac" },
		{ "nic,backend=carrier-pigeon", "unknown backend" },
		{ "nic,backend=dgram", "needs local= and remote=" },
		{ "nic,hostfwd=tcp::notaport-:22", "hostfwd" },
		{ "nic,colour=blue", "has no option 'colour'" },
	};

	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		gchar *out = NULL, *errout = NULL;
		gint status;
		const gchar *argv[] = { g_getenv("PCIEFW_ENDPOINT"), "--device",
					cases[i][0], "--listen", "tcp:127.0.0.1:0", NULL };

		g_assert_true(g_spawn_sync(NULL, (gchar **)argv, NULL, 0, NULL, NULL,
					   &out, &errout, &status, NULL));
		g_assert_false(g_spawn_check_wait_status(status, NULL));
		if (!strstr(errout, cases[i][1]))
			g_error("'%s': expected '%s' in: %s", cases[i][0], cases[i][1], errout);
		g_free(out);
		g_free(errout);
	}
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add(path, struct fixture, NULL, setup, fn, teardown)
	ADD("/nic/identity", test_identity);
	ADD("/nic/arp-through-slirp", test_arp_through_slirp);
	ADD("/nic/rx-without-descriptors", test_rx_without_descriptors);
	ADD("/nic/bad-rx-descriptor", test_bad_rx_descriptor);
	ADD("/nic/bad-tx-descriptors", test_bad_tx_descriptors);
	ADD("/nic/reset-and-intx", test_reset_and_intx);
	ADD("/nic/itr-moderates-interrupts", test_itr_moderates);
	g_test_add_func("/nic/dgram-every-frame-counted",
			test_dgram_every_frame_counted);
	ADD("/nic/tx-shrink-during-fetch", test_tx_shrink_during_fetch);
	ADD("/nic/tx-shrink-during-frame-reads", test_tx_shrink_during_frame_reads);
	ADD("/nic/tx-rebase-in-flight", test_tx_rebase_in_flight);
	ADD("/nic/tx-tail-backwards", test_tx_tail_backwards);
	ADD("/nic/rx-resize-during-fetch", test_rx_resize_during_fetch);
	g_test_add_func("/nic/dgram-pair", test_dgram_pair);
	g_test_add_func("/nic/stream-peer-not-reading", test_stream_peer_not_reading);
	g_test_add_func("/nic/bad-options", test_bad_options);
	return g_test_run();
}
