/*
 * The e1000 model (docs/e1000.md) in a real pciefw-endpoint, driven through
 * the host library as Linux's e1000 driver drives it: the EEPROM bit by bit,
 * the PHY, interrupts, and TSO whose segments a test-owned dgram socket
 * receives and checks; then what a hostile guest may write.
 */
#include <glib.h>
#include <glib/gstdio.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "host_util.h"
#include "msg.h"
#include "pciefw.h"

enum {
	CTRL = 0x0, STATUS = 0x8, EECD = 0x10, EERD = 0x14, MDIC = 0x20,
	ICR = 0xc0, ICS = 0xc8, IMS = 0xd0, IMC = 0xd8, RCTL = 0x100,
	TCTL = 0x400, RDBAL = 0x2800, RDBAH = 0x2804, RDLEN = 0x2808,
	RDH = 0x2810, RDT = 0x2818,
	TDBAL = 0x3800, TDBAH = 0x3804, TDLEN = 0x3808, TDH = 0x3810,
	TDT = 0x3818, TSCTC = 0x40f8, TSCTFC = 0x40fc, GPTC = 0x4080,
	MPC = 0x4010, GPRC = 0x4074, GORCL = 0x4088, GORCH = 0x408c,
	GOTCL = 0x4090, GOTCH = 0x4094, TORL = 0x40c0, TORH = 0x40c4,
	TOTL = 0x40c8, TOTH = 0x40cc,
};
#define RCTL_EN  0x2u
#define RCTL_BAM 0x8000u
#define EECD_SK 1u
#define EECD_CS 2u
#define EECD_DI 4u
#define EECD_DO 8u
#define EECD_REQ 0x40u
#define EECD_GNT 0x80u

#define TX_RING (GUEST_BASE + 0x1000)
#define TX_BUF  (GUEST_BASE + 0x10000)
#define RING    16u

struct fixture {
	struct endpoint_proc ep;
	struct pf_host *h;
	int sock;                /* the test's end of the dgram wire */
	char dir[64], path[96];
};

static uint8_t *gmem(struct pf_host *h, uint64_t addr)
{
	return pf_host_mem(h)->data + (addr - GUEST_BASE);
}

static void setup(struct fixture *f, gconstpointer data)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char *device;

	g_strlcpy(f->dir, "/tmp/pfe1k-XXXXXX", sizeof(f->dir));
	g_assert_nonnull(g_mkdtemp(f->dir));
	g_snprintf(f->path, sizeof(f->path), "%s/wire", f->dir);
	f->sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	g_strlcpy(sa.sun_path, f->path, sizeof(sa.sun_path));
	g_assert_cmpint(bind(f->sock, (struct sockaddr *)&sa, sizeof(sa)), ==, 0);
	device = g_strdup_printf("e1000,mac=52:54:00:e1:00:07,backend=dgram,"
				 "local=unix:%s/ep,remote=unix:%s", f->dir, f->path);
	const char *args[] = { "--device", device, NULL };

	endpoint_start(&f->ep, false, args);
	f->h = connect_host(&f->ep);
	g_free(device);
}

static void teardown(struct fixture *f, gconstpointer data)
{
	char *ep_sock = g_strdup_printf("%s/ep", f->dir);

	pf_host_close(f->h, true);
	g_assert_true(endpoint_alive(&f->ep));
	g_assert_cmpint(endpoint_stop(&f->ep), ==, 0);
	close(f->sock);
	g_unlink(f->path);
	g_unlink(ep_sock);
	g_rmdir(f->dir);
	g_free(ep_sock);
}

/* ---- EEPROM, as e1000_hw.c bit-bangs it (e1000 3.2) ---- */

static void ee_clock(struct pf_host *h, uint32_t *eecd)
{
	wr32(h, 0, EECD, *eecd | EECD_SK);
	wr32(h, 0, EECD, *eecd);
}

static uint16_t ee_read(struct pf_host *h, unsigned addr)
{
	uint32_t eecd = EECD_REQ, cmd = 0x6u << 6 | addr;
	uint16_t v = 0;

	wr32(h, 0, EECD, eecd);
	g_assert_true(rd32(h, 0, EECD) & EECD_GNT);
	eecd |= EECD_CS;
	wr32(h, 0, EECD, eecd);
	for (int bit = 8; bit >= 0; bit--) {
		uint32_t e = (eecd & ~EECD_DI) | (cmd >> bit & 1 ? EECD_DI : 0);

		wr32(h, 0, EECD, e);
		ee_clock(h, &e);
	}
	for (int i = 0; i < 16; i++) {
		wr32(h, 0, EECD, eecd | EECD_SK);
		v = (uint16_t)(v << 1 | !!(rd32(h, 0, EECD) & EECD_DO));
		wr32(h, 0, EECD, eecd);
	}
	wr32(h, 0, EECD, 0);
	return v;
}

static void test_identity_eeprom_phy(struct fixture *f, gconstpointer data)
{
	const Pciefw__DeviceDescription *d = pf_host_description(f->h);
	struct pf_host *h = f->h;
	uint16_t sum = 0;
	uint32_t v;

	g_assert_cmphex(d->vendor_id, ==, 0x8086);
	g_assert_cmphex(d->device_id, ==, 0x100e);
	g_assert_cmphex(d->subsystem_vendor_id, ==, 0x1af4);
	g_assert_cmphex(d->class_code, ==, 0x020000);
	g_assert_cmpuint(d->msi_vectors, ==, 0);
	g_assert_cmpuint(d->n_bars, >=, 2);
	for (unsigned i = 0; i < 0x40; i++)
		sum = (uint16_t)(sum + ee_read(h, i));
	g_assert_cmphex(sum, ==, 0xbaba);
	g_assert_cmphex(ee_read(h, 0), ==, 0x5452);
	g_assert_cmphex(ee_read(h, 2), ==, 0x0700);
	wr32(h, 0, EERD, 1u | 1u << 8);
	g_assert_cmphex(rd32(h, 0, EERD), ==, 0xe1000000u | 1u << 8 | 0x10);
	/* PHY 1: M88E1011 identifiers, link up, autonegotiation complete. */
	wr32(h, 0, MDIC, 2u << 26 | 1u << 21 | 2u << 16);
	g_assert_cmphex(rd32(h, 0, MDIC), ==, 1u << 28 | 2u << 26 | 1u << 21 | 2u << 16 | 0x0141);
	wr32(h, 0, MDIC, 2u << 26 | 1u << 21 | 1u << 16);
	v = rd32(h, 0, MDIC);
	g_assert_cmphex(v & 0x24, ==, 0x24);
	wr32(h, 0, MDIC, 2u << 26 | 2u << 21 | 1u << 16);     /* no PHY 2 */
	g_assert_cmphex(rd32(h, 0, MDIC) & (1u << 30), !=, 0);
	g_assert_cmphex(rd32(h, 0, STATUS) & 2, ==, 2);
	/* The IO window reaches the same registers (e1000 2). */
	v = 0x8;
	g_assert_cmpint(pf_host_io_write(h, 1, 0, &v, 4), ==, 0);
	g_assert_cmpint(pf_host_io_read(h, 1, 4, &v, 4), ==, 0);
	g_assert_cmphex(v, ==, rd32(h, 0, STATUS));
}

/* ICR read-to-clear and INTx as the level of ICR & IMS (e1000 4). */
static void test_intx_level(struct fixture *f, gconstpointer data)
{
	struct pf_host *h = f->h;

	wr32(h, 0, ICS, 0x4);                 /* LSC, masked: no interrupt */
	rd32(h, 0, STATUS);
	g_assert_false(pf_host_irqs(h)->intx_level);
	wr32(h, 0, IMS, 0x4);                 /* unmasking asserts it */
	for (int i = 0; i < 100 && !pf_host_irqs(h)->intx_level; i++)
		pf_host_poll(h, 10);
	g_assert_true(pf_host_irqs(h)->intx_level);
	wr32(h, 0, IMC, 0x4);                 /* masking lowers it */
	rd32(h, 0, STATUS);
	g_assert_false(pf_host_irqs(h)->intx_level);
	g_assert_cmphex(rd32(h, 0, ICR), ==, 0x4);
	g_assert_cmphex(rd32(h, 0, ICR), ==, 0);   /* read cleared it */
}

/* ---- TX and TSO (e1000 6) ---- */

static uint16_t be16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t csum_add(uint32_t s, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		s += be16(p + i);
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	return s;
}

static uint16_t fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

#define HDR 54u
#define MSS 1000u
#define PAYLOAD 3000u

/* A TCP/IPv4 packet as the driver hands it to TSO (e1000_tso). */
static void tso_packet(uint8_t *p)
{
	uint8_t *ip = p + 14, *tcp = p + 34;

	memset(p, 0, HDR);
	memcpy(p, "\x52\x54\x00\x00\x00\x02\x52\x54\x00\xe1\x00\x07\x08\x00", 14);
	ip[0] = 0x45;
	ip[4] = 0x12, ip[5] = 0x34;           /* id */
	ip[8] = 64, ip[9] = 6;
	/* A stale IP checksum: each segment's is computed without it. */
	ip[10] = 0xbe, ip[11] = 0xef;
	memcpy(ip + 12, "\x0a\x00\x00\x01\x0a\x00\x00\x02", 8);
	tcp[0] = 0x30, tcp[1] = 0x39, tcp[2] = 0x00, tcp[3] = 0x50;
	memcpy(tcp + 4, "\x11\x22\x33\x44", 4);
	tcp[12] = 0x50;
	tcp[13] = 0x18;                        /* ACK PSH */
	/* Pseudo-header sum without the length. */
	uint16_t seed = fold(csum_add(6, ip + 12, 8));
	tcp[16] = (uint8_t)(seed >> 8), tcp[17] = (uint8_t)seed;
	for (unsigned i = 0; i < PAYLOAD; i++)
		p[HDR + i] = (uint8_t)(i * 7);
}

static void put_tx(struct pf_host *h, unsigned mss, unsigned hdrlen)
{
	uint8_t *c = gmem(h, TX_RING), *d = gmem(h, TX_RING + 16);

	memset(c, 0, 32);
	c[0] = 14, c[1] = 24;                  /* IPCSS, IPCSO */
	pf_le_store(c + 2, 2, 33);             /* IPCSE */
	c[4] = 34, c[5] = 50;                  /* TUCSS, TUCSO */
	pf_le_store(c + 8, 4, PAYLOAD | 0x27u << 24);  /* DEXT TSE IP TCP */
	c[13] = (uint8_t)hdrlen;
	pf_le_store(c + 14, 2, mss);
	pf_le_store(d, 8, TX_BUF);
	pf_le_store(d + 8, 4, (HDR + PAYLOAD) | 1u << 20 | 0x2du << 24);  /* EOP TSE RS DEXT */
	d[13] = 3;                             /* IXSM TXSM */
	tso_packet(gmem(h, TX_BUF));
	wr32(h, 0, TDBAL, (uint32_t)TX_RING);
	wr32(h, 0, TDBAH, (uint32_t)(TX_RING >> 32));
	wr32(h, 0, TDLEN, RING * 16);
	wr32(h, 0, TDH, 0);
	wr32(h, 0, TCTL, 2);
	wr32(h, 0, TDT, 2);
}

static bool tx_done(struct pf_host *h)
{
	return gmem(h, TX_RING + 16)[12] & 1;
}

static ssize_t recv_frame(struct fixture *f, uint8_t *buf, size_t len)
{
	for (int i = 0; i < 300; i++) {
		ssize_t n = recv(f->sock, buf, len, MSG_DONTWAIT);

		if (n > 0)
			return n;
		pf_host_poll(f->h, 10);
	}
	return -1;
}

/*
 * A 64-bit octet counter (SDM 13.7): the low half reads without clearing,
 * the high half clears both (e1000 3.8).
 */
static void check_octets(struct pf_host *h, uint32_t lo, uint32_t hi, uint32_t want)
{
	g_assert_cmpuint(rd32(h, 0, lo), ==, want);
	g_assert_cmpuint(rd32(h, 0, lo), ==, want);
	g_assert_cmpuint(rd32(h, 0, hi), ==, 0);
	g_assert_cmpuint(rd32(h, 0, lo), ==, 0);
}

static void test_tso_segments(struct fixture *f, gconstpointer data)
{
	struct pf_host *h = f->h;
	uint8_t seg[2048];

	put_tx(h, MSS, HDR);
	for (unsigned k = 0; k < PAYLOAD / MSS; k++) {
		const uint8_t *ip = seg + 14, *tcp = seg + 34;
		ssize_t n = recv_frame(f, seg, sizeof(seg));
		uint32_t s;

		g_assert_cmpint(n, ==, HDR + MSS);
		g_assert_cmphex(fold(csum_add(0, ip, 20)), ==, 0xffff);
		g_assert_cmpuint(be16(ip + 2), ==, 20 + 20 + MSS);
		g_assert_cmphex(be16(ip + 4), ==, 0x1234 + k);
		g_assert_cmphex((uint32_t)be16(tcp + 4) << 16 | be16(tcp + 6), ==,
				0x11223344u + k * MSS);
		g_assert_cmphex(tcp[13], ==, k + 1 < PAYLOAD / MSS ? 0x10 : 0x18);
		s = csum_add(0, ip + 12, 8) + 6 + 20 + MSS;
		g_assert_cmphex(fold(csum_add(s, tcp, 20 + MSS)), ==, 0xffff);
		g_assert_cmpuint(seg[HDR + 5], ==, (uint8_t)((k * MSS + 5) * 7));
	}
	g_assert_cmpint(recv(f->sock, seg, sizeof(seg), MSG_DONTWAIT), <, 0);
	g_assert_true(tx_done(h));
	g_assert_cmpuint(rd32(h, 0, TSCTC), ==, 1);
	g_assert_cmpuint(rd32(h, 0, GPTC), ==, 3);
	g_assert_cmpuint(rd32(h, 0, GPTC), ==, 0);  /* clear on read */
	check_octets(h, GOTCL, GOTCH, 3 * (HDR + MSS + 4));
	check_octets(h, TOTL, TOTH, 3 * (HDR + MSS + 4));
}

/* A TSO context that does not fit the packet sends nothing (e1000 7). */
static void test_tso_hostile(struct fixture *f, gconstpointer data)
{
	static const unsigned cases[][2] = {
		{ 0, HDR },               /* MSS 0 */
		{ 16331, HDR },           /* HDRLEN + MSS = 16385 */
		{ MSS, 40 },              /* TCP header cut by HDRLEN */
	};
	struct pf_host *h = f->h;
	uint8_t seg[2048];
	uint64_t reads;

	for (unsigned i = 0; i < G_N_ELEMENTS(cases); i++) {
		put_tx(h, cases[i][0], cases[i][1]);
		for (int j = 0; j < 300 && !tx_done(h); j++)
			pf_host_poll(h, 10);
		g_assert_true(tx_done(h));     /* completed all the same */
		g_assert_cmpint(recv_frame(f, seg, sizeof(seg)), <, 0);
		g_assert_cmpuint(rd32(h, 0, TSCTFC), ==, 1);
	}
	/* Lengths keep bits 19:7. */
	wr32(h, 0, TDLEN, 0xffffffffu);
	g_assert_cmphex(rd32(h, 0, TDLEN), ==, 0xfff80u);
	/*
	 * Heads and tails read back their 16 bits (the driver's self-test
	 * checks it); outside the ring they stop it: nothing is fetched.
	 */
	wr32(h, 0, TDLEN, RING * 16);
	reads = pf_host_stats(h)->dma_reads;
	wr32(h, 0, TDT, RING + 5);
	g_assert_cmpuint(rd32(h, 0, TDT), ==, RING + 5);
	wr32(h, 0, TDH, 70000);
	g_assert_cmpuint(rd32(h, 0, TDH), ==, 70000 & 0xffff);
	wr32(h, 0, TDT, 1);
	g_assert_cmpuint(rd32(h, 0, TDT), ==, 1);
	g_assert_cmpuint(pf_host_stats(h)->dma_reads, ==, reads);
	g_assert_cmpint(recv(f->sock, seg, sizeof(seg), MSG_DONTWAIT), <, 0);
}

#define HDR6 74u           /* Ethernet, IPv6, TCP */

/*
 * A TCP/IPv6 packet as Linux prepares one for TSO (tcp_v6_gso_csum_prep:
 * the TCP checksum seeded with the pseudo-header, length left out).
 */
static void tso6_packet(uint8_t *p)
{
	uint8_t *ip = p + 14, *tcp = p + 54;
	uint32_t sum;

	memset(p, 0, HDR6);
	memcpy(p, "\x52\x54\x00\x00\x00\x02\x52\x54\x00\xe1\x00\x07\x86\xdd", 14);
	ip[0] = 0x60;
	ip[6] = 6, ip[7] = 64;                 /* next header TCP, hop limit */
	ip[23] = 1, ip[39] = 2;                /* ::1 to ::2 */
	tcp[0] = 0x30, tcp[1] = 0x39, tcp[2] = 0x00, tcp[3] = 0x50;
	memcpy(tcp + 4, "\x11\x22\x33\x44", 4);
	tcp[12] = 0x50;
	tcp[13] = 0x19;                        /* ACK PSH FIN */
	sum = fold(csum_add(6, ip + 8, 32));
	tcp[16] = (uint8_t)(sum >> 8), tcp[17] = (uint8_t)sum;
	for (unsigned i = 0; i < PAYLOAD; i++)
		p[HDR6 + i] = (uint8_t)(i * 11);
}

/*
 * IPv6 TSO, which Linux's e1000 never asks for: the descriptors as another
 * driver would write them (SDM 3.5; TUCMD.IP clear).  Each segment's
 * payload length counts the TCP header and data, not the 40-byte IPv6
 * header (e1000 6.4).
 */
static void test_tso_ipv6(struct fixture *f, gconstpointer data)
{
	struct pf_host *h = f->h;
	uint8_t *c = gmem(h, TX_RING), *d = gmem(h, TX_RING + 16), seg[2048];

	memset(c, 0, 32);
	c[0] = 14;                             /* IPCSS */
	c[4] = 54, c[5] = 70;                  /* TUCSS, TUCSO */
	pf_le_store(c + 8, 4, PAYLOAD | 0x25u << 24);  /* DEXT TSE TCP, no IP */
	c[13] = HDR6;
	pf_le_store(c + 14, 2, MSS);
	pf_le_store(d, 8, TX_BUF);
	pf_le_store(d + 8, 4, (HDR6 + PAYLOAD) | 1u << 20 | 0x2du << 24);
	d[13] = 2;                             /* TXSM */
	tso6_packet(gmem(h, TX_BUF));
	wr32(h, 0, TDBAL, (uint32_t)TX_RING);
	wr32(h, 0, TDBAH, (uint32_t)(TX_RING >> 32));
	wr32(h, 0, TDLEN, RING * 16);
	wr32(h, 0, TDH, 0);
	wr32(h, 0, TCTL, 2);
	wr32(h, 0, TDT, 2);
	for (unsigned k = 0; k < PAYLOAD / MSS; k++) {
		const uint8_t *ip = seg + 14, *tcp = seg + 54;
		ssize_t n = recv_frame(f, seg, sizeof(seg));
		uint32_t s;

		g_assert_cmpint(n, ==, HDR6 + MSS);
		g_assert_cmpuint(be16(ip + 4), ==, 20 + MSS);   /* payload length */
		g_assert_cmpuint(ip[6], ==, 6);
		g_assert_cmphex((uint32_t)be16(tcp + 4) << 16 | be16(tcp + 6), ==,
				0x11223344u + k * MSS);
		g_assert_cmphex(tcp[13], ==, k + 1 < PAYLOAD / MSS ? 0x10 : 0x19);
		s = csum_add(6 + 20 + MSS, ip + 8, 32);
		g_assert_cmphex(fold(csum_add(s, tcp, 20 + MSS)), ==, 0xffff);
		g_assert_cmpuint(seg[HDR6 + 7], ==, (uint8_t)((k * MSS + 7) * 11));
	}
	g_assert_cmpint(recv(f->sock, seg, sizeof(seg), MSG_DONTWAIT), <, 0);
	g_assert_true(tx_done(h));
}

/*
 * One TSO packet makes at most 1024 segments (e1000 7): a 3000-byte
 * payload at MSS 3 is sent (1000 frames), at MSS 2 (1500) it is dropped
 * and counted.  GPTC counts the frames made whether or not the test's
 * socket kept them all.
 */
static void test_tso_segment_bound(struct fixture *f, gconstpointer data)
{
	struct pf_host *h = f->h;

	put_tx(h, 3, HDR);
	for (int i = 0; i < 300 && !tx_done(h); i++)
		pf_host_poll(h, 10);
	g_assert_true(tx_done(h));
	g_assert_cmpuint(rd32(h, 0, GPTC), ==, 1000);
	g_assert_cmpuint(rd32(h, 0, TSCTFC), ==, 0);
	put_tx(h, 2, HDR);
	for (int i = 0; i < 300 && !tx_done(h); i++)
		pf_host_poll(h, 10);
	g_assert_true(tx_done(h));
	g_assert_cmpuint(rd32(h, 0, GPTC), ==, 0);
	g_assert_cmpuint(rd32(h, 0, TSCTFC), ==, 1);
}

/* A 60-byte frame in a legacy descriptor at @slot (EOP, IFCS, RS). */
static void put_legacy(struct pf_host *h, unsigned slot)
{
	uint8_t *d = gmem(h, TX_RING + slot * 16);

	memset(gmem(h, TX_BUF), 0, 60);
	memcpy(gmem(h, TX_BUF), "\xff\xff\xff\xff\xff\xff\x52\x54\x00\xe1\x00\x07\x08\x06", 14);
	pf_le_store(d, 8, TX_BUF);
	pf_le_store(d + 8, 4, 60 | 0x0bu << 24);
	pf_le_store(d + 12, 4, 0);
}

static bool slot_done(struct pf_host *h, unsigned slot)
{
	for (int i = 0; i < 300; i++) {
		if (gmem(h, TX_RING + slot * 16)[12] & 1)
			return true;
		pf_host_poll(h, 10);
	}
	return false;
}

/*
 * The ring restarted (TDH written) while its descriptor read is still in
 * flight: that read completes into nothing, the restarted ring reads slot
 * 0 again and sends it once, and the ring works on, packet after packet
 * (e1000 7).  The host answers the first read only after both writes
 * reached the endpoint, so the order is fixed.
 */
static void test_tx_reset_with_fetch_in_flight(struct fixture *f, gconstpointer data)
{
	struct pf_host *h = f->h;
	uint8_t frame[128];

	put_legacy(h, 0);
	wr32(h, 0, TDBAL, (uint32_t)TX_RING);
	wr32(h, 0, TDBAH, (uint32_t)(TX_RING >> 32));
	wr32(h, 0, TDLEN, RING * 16);
	wr32(h, 0, TDH, 0);
	wr32(h, 0, TCTL, 2);
	wr32(h, 0, TDT, 1);                    /* the read of slot 0 goes out */
	wr32(h, 0, TDH, 0);                    /* ... and the ring restarts */
	for (unsigned slot = 0; slot < 3; slot++) {
		if (slot) {
			put_legacy(h, slot);
			wr32(h, 0, TDT, slot + 1);
		}
		g_assert_true(slot_done(h, slot));
		g_assert_cmpuint(rd32(h, 0, TDH), ==, slot + 1);
		g_assert_cmpint(recv_frame(f, frame, sizeof(frame)), ==, 60);
	}
	g_assert_cmpint(recv(f->sock, frame, sizeof(frame), MSG_DONTWAIT), <, 0);
	g_assert_cmpuint(rd32(h, 0, GPTC), ==, 3);
}

/* ---- RX (e1000 5, 7) ---- */

#define RX_GOOD_RING (GUEST_BASE + 0x2000)
#define RX_BUF_OLD   (GUEST_BASE + 0x100000)   /* the first ring's buffers */
#define RX_BUF_NEW   (GUEST_BASE + 0x200000)   /* the second ring's */
#define RX_SLOTS     16u

/* Descriptors @first..@last of the ring at @ring, buffers from @buf. */
static void put_rx_descs(struct pf_host *h, uint64_t ring, unsigned first,
			 unsigned last, uint64_t buf)
{
	for (unsigned i = first; i <= last; i++) {
		uint64_t at = ring + i * 16;

		if (at < GUEST_BASE)
			continue;          /* outside guest RAM: nothing to write */
		memset(gmem(h, at), 0, 16);
		pf_le_store(gmem(h, at), 8, buf + i * 2048);
	}
}

static void rx_ring(struct pf_host *h, uint64_t ring)
{
	wr32(h, 0, RDBAL, (uint32_t)ring);
	wr32(h, 0, RDBAH, (uint32_t)(ring >> 32));
	wr32(h, 0, RDLEN, RX_SLOTS * 16);
	wr32(h, 0, RDH, 0);
}

static void send_broadcast(struct fixture *f)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	uint8_t frame[60] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
			      0x52, 0x54, 0x00, 0x00, 0x00, 0x02, 0x08, 0x06 };

	g_snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/ep", f->dir);
	g_assert_cmpint(sendto(f->sock, frame, sizeof(frame), 0,
			       (struct sockaddr *)&sa, sizeof(sa)), ==, sizeof(frame));
}

/* Wait until the frame has been received or dropped: (GPRC, MPC). */
static void rx_outcome(struct pf_host *h, uint32_t *gprc, uint32_t *mpc)
{
	*gprc = *mpc = 0;
	for (int i = 0; i < 300 && !*gprc && !*mpc; i++) {
		*gprc += rd32(h, 0, GPRC);
		*mpc += rd32(h, 0, MPC);
		pf_host_poll(h, 10);
	}
}

static bool all_bytes(const uint8_t *p, size_t n, uint8_t v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return false;
	return true;
}

/*
 * Issue 21 item 5: the read of descriptors 0-3 fails (the ring starts
 * 64 bytes below guest RAM), that of 4-7 succeeds.  No frame may then go
 * to a buffer address that was not read from this ring: slots 0-3 still
 * hold the previous ring's addresses in the model's cache.
 */
static void test_rx_fetch_fails_in_part(struct fixture *f, gconstpointer data)
{
	struct pf_host *h = f->h;
	uint64_t bad_ring = GUEST_BASE - 4 * 16;
	uint32_t gprc, mpc;

	memset(gmem(h, RX_BUF_OLD), 0xa5, RX_SLOTS * 2048);
	memset(gmem(h, RX_BUF_NEW), 0xa5, RX_SLOTS * 2048);
	put_rx_descs(h, RX_GOOD_RING, 0, RX_SLOTS - 1, RX_BUF_OLD);
	wr32(h, 0, RCTL, RCTL_EN | RCTL_BAM);
	rx_ring(h, RX_GOOD_RING);
	wr32(h, 0, RDT, 8);                 /* the model caches slots 0-7 */
	rd32(h, 0, STATUS);
	rd32(h, 0, STATUS);                 /* after the fetch's completion */

	put_rx_descs(h, bad_ring, 0, RX_SLOTS - 1, RX_BUF_NEW);
	rx_ring(h, bad_ring);
	wr32(h, 0, RDT, 4);                 /* slots 0-3: unbacked, refused */
	wr32(h, 0, RDT, 8);                 /* slots 4-7: read */
	rd32(h, 0, STATUS);
	rd32(h, 0, STATUS);
	g_assert_cmpuint(pf_host_stats(h)->dma_refused, ==, 1);
	send_broadcast(f);
	rx_outcome(h, &gprc, &mpc);
	g_assert_cmpuint(gprc, ==, 0);      /* dropped: no descriptor was read */
	g_assert_cmpuint(mpc, ==, 1);
	g_assert_cmpuint(pf_host_stats(h)->dma_writes, ==, 0);
	g_assert_cmpuint(pf_host_stats(h)->dma_refused, ==, 1);
	g_assert_true(all_bytes(gmem(h, RX_BUF_OLD), RX_SLOTS * 2048, 0xa5));
	g_assert_true(all_bytes(gmem(h, RX_BUF_NEW), RX_SLOTS * 2048, 0xa5));

	/* The next tail write reads again: a readable ring receives. */
	put_rx_descs(h, RX_GOOD_RING, 0, RX_SLOTS - 1, RX_BUF_NEW);
	rx_ring(h, RX_GOOD_RING);
	wr32(h, 0, RDT, 8);
	rd32(h, 0, STATUS);
	rd32(h, 0, STATUS);
	send_broadcast(f);
	rx_outcome(h, &gprc, &mpc);
	g_assert_cmpuint(gprc, ==, 1);
	check_octets(h, GORCL, GORCH, 64);
	check_octets(h, TORL, TORH, 64);
	g_assert_cmphex(gmem(h, RX_BUF_NEW)[0], ==, 0xff);
	g_assert_cmphex(gmem(h, RX_GOOD_RING + 12)[0] & 3, ==, 3);   /* DD, EOP */
	g_assert_true(all_bytes(gmem(h, RX_BUF_OLD), RX_SLOTS * 2048, 0xa5));
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
#define ADD(path, fn) g_test_add(path, struct fixture, NULL, setup, fn, teardown)
	ADD("/e1000/identity-eeprom-phy", test_identity_eeprom_phy);
	ADD("/e1000/intx-level", test_intx_level);
	ADD("/e1000/tso-segments", test_tso_segments);
	ADD("/e1000/tso-hostile", test_tso_hostile);
	ADD("/e1000/tso-ipv6", test_tso_ipv6);
	ADD("/e1000/tso-segment-bound", test_tso_segment_bound);
	ADD("/e1000/tx-reset-with-fetch-in-flight", test_tx_reset_with_fetch_in_flight);
	ADD("/e1000/rx-fetch-fails-in-part", test_rx_fetch_fails_in_part);
	return g_test_run();
}
