/*
 * devdiff's procedures for the Intel 8254x family (docs/e1000.md 10): the
 * EEPROM as Linux's e1000_hw.c bit-bangs it and through EERD, the PHY
 * through MDIC, CTRL.RST, the IO window, and "wire": the same TX packets
 * (descriptors shaped as Linux's e1000_tso/e1000_tx_csum/e1000_tx_queue
 * write them) and the same RX frames through both devices, with the
 * descriptors' write-backs compared.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "devdiff.h"

enum {
	CTRL = 0x0, STATUS = 0x8, EECD = 0x10, EERD = 0x14, MDIC = 0x20,
	ICR = 0xc0, IMC = 0xd8, RCTL = 0x100, TCTL = 0x400, TIPG = 0x410,
	RDBAL = 0x2800, RDBAH = 0x2804, RDLEN = 0x2808, RDH = 0x2810,
	RDT = 0x2818, RDTR = 0x2820, TDBAL = 0x3800, TDBAH = 0x3804,
	TDLEN = 0x3808, TDH = 0x3810, TDT = 0x3818, RXCSUM = 0x5000,
	VET = 0x38,
};

/* ---- EEPROM (SDM 5; Linux e1000_hw.c, Microwire) ---- */

#define EECD_SK  0x01u
#define EECD_CS  0x02u
#define EECD_DI  0x04u
#define EECD_DO  0x08u
#define EECD_REQ 0x40u
#define EECD_GNT 0x80u

static void ee_write(struct dev *d, uint32_t eecd)
{
	wr(d, EECD, eecd);
	flush(d);
}

static void ee_shift_out(struct dev *d, uint32_t *eecd, uint32_t data, int bits)
{
	for (int i = bits - 1; i >= 0; i--) {
		*eecd = (*eecd & ~EECD_DI) | (data >> i & 1 ? EECD_DI : 0);
		ee_write(d, *eecd);
		ee_write(d, *eecd | EECD_SK);
		ee_write(d, *eecd);
	}
	*eecd &= ~EECD_DI;
	ee_write(d, *eecd);
}

static uint16_t ee_shift_in(struct dev *d, uint32_t *eecd)
{
	uint16_t v = 0;

	*eecd &= ~(EECD_DO | EECD_DI);
	for (int i = 0; i < 16; i++) {
		ee_write(d, *eecd | EECD_SK);
		v = (uint16_t)(v << 1 | !!(rd(d, EECD) & EECD_DO));
		ee_write(d, *eecd);
	}
	return v;
}

/* e1000_read_eeprom for a Microwire part: one command per word. */
static void proc_eeprom(struct dev *d, struct rec *r, const struct args *a)
{
	uint32_t words = arg_u32(a, "words", 64), abits = arg_u32(a, "abits", 6);
	uint32_t eecd = rd(d, EECD) & ~(EECD_DO);
	char name[32];

	record(r, "EECD", "idle read", rd(d, EECD));
	eecd |= EECD_REQ;
	wr(d, EECD, eecd);
	record(r, "EECD", "after REQ", rd(d, EECD));
	eecd &= ~(EECD_DI | EECD_SK);
	ee_write(d, eecd);
	eecd |= EECD_CS;
	ee_write(d, eecd);
	for (uint32_t w = 0; w < words; w++) {
		ee_shift_out(d, &eecd, 0x6, 3);          /* start bit, READ */
		ee_shift_out(d, &eecd, w, (int)abits);
		snprintf(name, sizeof(name), "EEPROM[%u]", w);
		record(r, name, "Microwire read", ee_shift_in(d, &eecd));
		/* standby between words */
		eecd &= ~(EECD_CS | EECD_SK);
		ee_write(d, eecd);
		ee_write(d, eecd | EECD_SK);
		eecd |= EECD_CS;
		ee_write(d, eecd | EECD_SK);
		ee_write(d, eecd);
	}
	eecd &= ~(EECD_CS | EECD_DI);
	ee_write(d, eecd);
	ee_write(d, eecd | EECD_SK);
	ee_write(d, eecd);
	eecd &= ~EECD_REQ;
	ee_write(d, eecd);
	record(r, "EECD", "released", rd(d, EECD));
}

/* EERD: START with the address, then the word (SDM 13.4.4). */
static void proc_eerd(struct dev *d, struct rec *r, const struct args *a)
{
	uint32_t words = arg_u32(a, "words", 64);
	const uint32_t extra[] = { words, 0xff };
	char name[32];

	for (uint32_t i = 0; i < words + 2; i++) {
		uint32_t w = i < words ? i : extra[i - words];

		wr(d, EERD, 1u | w << 8);
		snprintf(name, sizeof(name), "EERD[%u]", w);
		record(r, name, "read", rd(d, EERD));
	}
}

/* ---- PHY (SDM 13.4.7; Linux e1000_read_phy_reg_ex) ---- */

#define MDIC_OP_WRITE (1u << 26)
#define MDIC_OP_READ  (2u << 26)
#define MDIC_READY    (1u << 28)
#define MDIC_INT_EN   (1u << 29)
#define MDIC_ERROR    (1u << 30)

static uint32_t mdic(struct dev *d, uint32_t cmd)
{
	uint32_t v = 0;

	wr(d, MDIC, cmd);
	for (int i = 0; i < 64; i++) {
		v = rd(d, MDIC);
		if (v & MDIC_READY)
			break;
	}
	return v;
}

/*
 * Every PHY register read; then written (0, ones, 0x5a5a, 0xa5a5 within
 * the write mask) and read back, and restored.  Register 0's reset,
 * restart-autonegotiation and power-down bits are not written: they start
 * timed link events that would race the rest of the sequence.
 */
static void proc_mdic(struct dev *d, struct rec *r, const struct args *a)
{
	uint32_t phy = arg_u32(a, "phy", 1) << 21;
	const uint16_t patterns[] = { 0, 0xffff, 0x5a5a, 0xa5a5 };
	char name[32], step[40];

	for (uint32_t reg = 0; reg < 32; reg++) {
		uint32_t rcmd = MDIC_OP_READ | phy | reg << 16;
		uint32_t v0 = mdic(d, rcmd);
		uint16_t wmask = reg == 0 ? 0x75ff : 0xffff;

		snprintf(name, sizeof(name), "PHY[%u]", reg);
		record(r, name, "MDIC read", v0);
		for (size_t i = 0; i < 4; i++) {
			uint16_t w = patterns[i] & wmask;

			snprintf(step, sizeof(step), "MDIC write 0x%04x", w);
			record(r, name, step, mdic(d, MDIC_OP_WRITE | phy | reg << 16 | w));
			snprintf(step, sizeof(step), "MDIC read after 0x%04x", w);
			record(r, name, step, mdic(d, rcmd));
		}
		mdic(d, MDIC_OP_WRITE | phy | reg << 16 | (v0 & 0xffff & wmask));
	}
	record(r, "MDIC", "read at PHY address 2", mdic(d, MDIC_OP_READ | 2u << 21 | 1u << 16));
	wr(d, IMC, 0xffffffffu);
	rd(d, ICR);
	mdic(d, MDIC_OP_READ | phy | 2u << 16 | MDIC_INT_EN);
	record(r, "MDIC", "ICR after a read with I", rd(d, ICR));
}

/* ---- CTRL.RST and the IO window ---- */

/* What CTRL.RST leaves (SDM 13.4.1): registers back at power-on. */
static void proc_ctrl_rst(struct dev *d, struct rec *r, const struct args *a)
{
	wr(d, VET, 0x88a8);
	wr(d, TIPG, 0x00602008);
	wr(d, RDLEN, 0x1000);
	wr(d, CTRL, rd(d, CTRL) | 1u << 26);
	sleep_ms(5);                   /* e1000_reset_hw's msleep(5) */
	record(r, "CTRL.RST", "CTRL read", rd(d, CTRL));
	record(r, "CTRL.RST", "VET read", rd(d, VET));
	record(r, "CTRL.RST", "TIPG read", rd(d, TIPG));
	record(r, "CTRL.RST", "RDLEN read", rd(d, RDLEN));
	dev_reset(d);
}

static uint32_t io_access(struct dev *d, int fd, uint32_t off, const uint32_t *w)
{
	uint32_t v = 0;

	if (w ? pwrite(fd, w, 4, off) != 4 : pread(fd, &v, 4, off) != 4)
		die("%s: resource1 at %u: %s", d->bdf, off, strerror(errno));
	return v;
}

/* IOADDR/IODATA (SDM 13.2.2): Linux's e1000_reset_hw resets through it. */
static void proc_io(struct dev *d, struct rec *r, const struct args *a)
{
	char path[128];
	uint32_t reg = STATUS, vet = 0x9100;
	int fd;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/resource1", d->bdf);
	fd = open(path, O_RDWR);
	if (fd < 0)
		die("%s: %s", path, strerror(errno));
	io_access(d, fd, 0, &reg);
	record(r, "IOADDR", "read after writing 0x8", io_access(d, fd, 0, NULL));
	record(r, "IODATA", "read at STATUS", io_access(d, fd, 4, NULL));
	reg = VET;
	io_access(d, fd, 0, &reg);
	io_access(d, fd, 4, &vet);
	record(r, "IODATA", "VET through BAR0 after writing it", rd(d, VET));
	close(fd);
}

const struct proc e1000_procs[] = {
	{ "e1000-eeprom", proc_eeprom },
	{ "e1000-eerd", proc_eerd },
	{ "e1000-mdic", proc_mdic },
	{ "e1000-ctrl-rst", proc_ctrl_rst },
	{ "e1000-io", proc_io },
	{ NULL, NULL },
};

/* ---- wire: the rings ---- */

#define RING      64u
#define DEV_MEM   (2u << 20)    /* per device, from MEMBASE */
#define TX_RING   0x0000u
#define RX_RING   0x1000u
#define TX_BUF    0x10000u      /* 128 KiB of packet data */
#define RX_BUF    0x40000u      /* RING buffers of 2048 bytes */
#define RX_BSIZE  2048u

#define TXD_EOP   (1u << 24)
#define TXD_IFCS  (1u << 25)
#define TXD_RS    (1u << 27)
#define TXD_DEXT  (1u << 29)
#define TXD_VLE   (1u << 30)
#define TXD_DTYP_D (1u << 20)
#define TXD_TSE   (1u << 26)
#define TXD_CMD_TCP (1u << 24)  /* context descriptor TUCMD */
#define TXD_CMD_IP  (1u << 25)
#define POPTS_IXSM 0x01u
#define POPTS_TXSM 0x02u

struct nic {
	struct dev d;
	uint8_t *mem;            /* this device's DMA area, mapped */
	uint64_t bus;            /* ... and its bus address */
	uint8_t mac[6];
	uint32_t tdt, tx_used;   /* next descriptor, bytes of TX_BUF used */
};

static void put16be(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32le(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get32le(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static uint32_t csum_add(uint32_t s, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		s += (uint32_t)p[n - 1] << 8;
	return s;
}

static uint16_t csum_fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)s;
}

enum l4 { TCP = 6, UDP = 17 };

/*
 * An IPv4 TCP (with timestamps: 32-byte header) or UDP packet of @payload
 * bytes into @p; returns its length.  Checksums: IP complete unless
 * @tso (then total length and checksum 0, as e1000_tso leaves them);
 * L4: "pseudo" seeds (with the length unless @tso), "full" computes it.
 */
static size_t build_ip(uint8_t *p, const uint8_t src[6], enum l4 proto,
		       size_t payload, uint8_t flags, bool tso, bool full_l4)
{
	static const uint8_t dst[6] = { 0x52, 0x54, 0x00, 0xdd, 0x00, 0x02 };
	size_t l4h = proto == TCP ? 32 : 8, len = 14 + 20 + l4h + payload;
	uint8_t *ip = p + 14, *l4 = ip + 20;
	uint16_t l4len = (uint16_t)(l4h + payload);
	uint32_t s;

	memset(p, 0, 14 + 20 + l4h);
	memcpy(p, dst, 6);
	memcpy(p + 6, src, 6);
	put16be(p + 12, 0x0800);
	ip[0] = 0x45;
	put16be(ip + 2, tso ? 0 : (uint16_t)(20 + l4len));
	put16be(ip + 4, 0x04d2);
	ip[6] = 0x40;                   /* DF */
	ip[8] = 64;
	ip[9] = (uint8_t)proto;
	memcpy(ip + 12, "\x0a\x00\x4e\x01\x0a\x00\x4e\x02", 8);
	if (!tso)
		put16be(ip + 10, (uint16_t)~csum_fold(csum_add(0, ip, 20)));
	if (proto == TCP) {
		put16be(l4, 40000);
		put16be(l4 + 2, 5001);
		memcpy(l4 + 4, "\x10\x20\x30\x40\x00\x00\x00\x01", 8);
		l4[12] = 0x80;          /* 32-byte header */
		l4[13] = flags;
		put16be(l4 + 14, 0xfaf0);
		memcpy(l4 + 20, "\x01\x01\x08\x0a\x00\x00\x12\x34\x00\x00\x56\x78", 12);
	} else {
		put16be(l4, 40001);
		put16be(l4 + 2, 5002);
		put16be(l4 + 4, l4len);
	}
	for (size_t i = 0; i < payload; i++)
		l4[l4h + i] = (uint8_t)(i * 13 + (i >> 8));
	s = csum_add(proto + (tso ? 0u : l4len), ip + 12, 8);
	if (full_l4)
		put16be(l4 + (proto == TCP ? 16 : 6),
			(uint16_t)~csum_fold(csum_add(s, l4, l4len)));
	else
		put16be(l4 + (proto == TCP ? 16 : 6), csum_fold(s));
	return len;
}

static uint8_t *txd(struct nic *n, uint32_t i)
{
	return n->mem + TX_RING + (i % RING) * 16;
}

/* A data or legacy descriptor for @len bytes of TX_BUF at @off. */
static void put_txd(struct nic *n, uint32_t off, uint32_t len, uint32_t lower,
		    uint32_t upper)
{
	uint8_t *d = txd(n, n->tdt++);
	uint64_t addr = n->bus + TX_BUF + off;

	put32le(d, (uint32_t)addr);
	put32le(d + 4, (uint32_t)(addr >> 32));
	put32le(d + 8, lower | len);
	put32le(d + 12, upper);
}

/* A TCP/IP context descriptor (SDM 3.3.6) as e1000_tso/e1000_tx_csum fill it. */
static void put_ctx(struct nic *n, uint8_t ipcss, uint8_t ipcso, uint16_t ipcse,
		    uint8_t tucss, uint8_t tucso, uint32_t cmd_len, uint8_t hdrlen,
		    uint16_t mss)
{
	uint8_t *d = txd(n, n->tdt++);

	memset(d, 0, 16);
	d[0] = ipcss;
	d[1] = ipcso;
	d[2] = (uint8_t)ipcse;
	d[3] = (uint8_t)(ipcse >> 8);
	d[4] = tucss;
	d[5] = tucso;
	put32le(d + 8, cmd_len | TXD_DEXT);
	d[13] = hdrlen;
	d[14] = (uint8_t)mss;
	d[15] = (uint8_t)(mss >> 8);
}

/*
 * A packet's bytes as descriptors: the first @first bytes, then pieces of
 * at most 4096 (E1000_MAX_DATA_PER_TXD); the last gets EOP and RS
 * (adapter->txd_cmd), all get @lower and @upper (e1000_tx_queue).
 */
static void put_data(struct nic *n, size_t len, size_t first, uint32_t lower,
		     uint32_t upper)
{
	size_t off = 0;

	while (off < len) {
		size_t piece = off == 0 && first ? first : len - off;
		bool last;

		if (piece > 4096)
			piece = 4096;
		if (piece > len - off)
			piece = len - off;
		last = off + piece == len;
		put_txd(n, n->tx_used + (uint32_t)off, (uint32_t)piece,
			lower | TXD_IFCS | (last ? TXD_EOP | TXD_RS : 0), upper);
		off += piece;
	}
	n->tx_used += (uint32_t)((len + 63) & ~(size_t)63);
}

static uint8_t *txbuf(struct nic *n)
{
	return n->mem + TX_BUF + n->tx_used;
}

/* The TX scenarios, each a packet the Linux driver could queue. */
static const char *const tx_names[] = {
	"tx-plain", "tx-csum-tcp", "tx-csum-udp", "tx-tso", "tx-vlan",
	"tx-tso-vlan", "tx-jumbo", "tx-tso-fin",
};

static void tx_scenario(struct nic *n, int s)
{
	uint8_t *p = txbuf(n);
	size_t len;

	switch (s) {
	case 0:         /* no offload: a legacy descriptor */
		len = build_ip(p, n->mac, UDP, 58, 0, false, true);
		put_data(n, len, 0, 0, 0);
		break;
	case 1:         /* CHECKSUM_PARTIAL TCP: context, then TXSM */
		len = build_ip(p, n->mac, TCP, 300, 0x18, false, false);
		put_ctx(n, 0, 0, 0, 34, 50, TXD_CMD_TCP, 0, 0);
		put_data(n, len, 0, TXD_DEXT | TXD_DTYP_D, POPTS_TXSM << 8);
		break;
	case 2:         /* CHECKSUM_PARTIAL UDP */
		len = build_ip(p, n->mac, UDP, 200, 0, false, false);
		put_ctx(n, 0, 0, 0, 34, 40, 0, 0, 0);
		put_data(n, len, 0, TXD_DEXT | TXD_DTYP_D, POPTS_TXSM << 8);
		break;
	case 3:         /* TSO over IPv4, as e1000_tso */
	case 5:
		len = build_ip(p, n->mac, TCP, s == 3 ? 8000 : 3000, 0x18, true, false);
		put_ctx(n, 14, 24, 33, 34, 50,
			TXD_TSE | TXD_CMD_TCP | TXD_CMD_IP | (uint32_t)(len - 66), 66, 1448);
		put_data(n, len, 66 + 1000, TXD_DEXT | TXD_DTYP_D | TXD_TSE |
			 (s == 5 ? TXD_VLE : 0),
			 (POPTS_TXSM | POPTS_IXSM) << 8 | (s == 5 ? 0x0007u << 16 : 0));
		break;
	case 4:         /* a VLAN tag inserted (CTRL.VME, VLE) */
		len = build_ip(p, n->mac, UDP, 100, 0, false, true);
		put_data(n, len, 0, TXD_VLE, 0x6005u << 16);
		break;
	case 6:         /* a 9014-byte frame (MTU 9000) with UDP offload */
		len = build_ip(p, n->mac, UDP, 9014 - 42, 0, false, false);
		put_ctx(n, 0, 0, 0, 34, 40, 0, 0, 0);
		put_data(n, len, 0, TXD_DEXT | TXD_DTYP_D, POPTS_TXSM << 8);
		break;
	case 7:         /* TSO of a FIN|PSH packet, odd MSS */
		len = build_ip(p, n->mac, TCP, 2000, 0x19, true, false);
		put_ctx(n, 14, 24, 33, 34, 50,
			TXD_TSE | TXD_CMD_TCP | TXD_CMD_IP | (uint32_t)(len - 66), 66, 536);
		put_data(n, len, 66, TXD_DEXT | TXD_DTYP_D | TXD_TSE,
			 (POPTS_TXSM | POPTS_IXSM) << 8);
		break;
	}
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Queue scenario @s, wait until the device has taken it, record the write-backs. */
static void tx_run(struct nic *n, struct rec *r, int s)
{
	uint32_t first = n->tdt;
	uint64_t t0 = now_ms();
	char name[40], step[40];

	tx_scenario(n, s);
	__sync_synchronize();
	wr(&n->d, TDT, n->tdt % RING);
	while (rd(&n->d, TDH) != n->tdt % RING && now_ms() - t0 < 10000)
		sleep_ms(1);
	snprintf(name, sizeof(name), "%s", tx_names[s]);
	record(r, name, "TDH after", rd(&n->d, TDH));
	for (uint32_t i = first; i != n->tdt; i++) {
		snprintf(step, sizeof(step), "descriptor %u dword 3", i - first);
		record(r, name, step, get32le(txd(n, i) + 12));
	}
}

/* ---- RX ---- */

static uint8_t *rxd(struct nic *n, uint32_t i)
{
	return n->mem + RX_RING + (i % RING) * 16;
}

static void rx_setup(struct nic *n)
{
	struct dev *d = &n->d;

	for (uint32_t i = 0; i < RING; i++) {
		uint64_t a = n->bus + RX_BUF + i * RX_BSIZE;

		memset(rxd(n, i), 0, 16);
		put32le(rxd(n, i), (uint32_t)a);
		put32le(rxd(n, i) + 4, (uint32_t)(a >> 32));
	}
	memset(n->mem + RX_BUF, 0xee, RING * RX_BSIZE);
	__sync_synchronize();
	wr(d, RDBAL, (uint32_t)(n->bus + RX_RING));
	wr(d, RDBAH, (uint32_t)((n->bus + RX_RING) >> 32));
	wr(d, RDLEN, RING * 16);
	wr(d, RDH, 0);
	wr(d, RDT, 0);
	wr(d, RDTR, 0);
	/* e1000_configure_rx: TCP/UDP checksum offload on top of what is there */
	wr(d, RXCSUM, rd(d, RXCSUM) | 1u << 9);
	/* e1000_setup_rctl with MTU 9000 and 2048-byte buffers: BAM, LPE */
	wr(d, RCTL, 1u << 1 | 1u << 15 | 1u << 5);
	wr(d, RDT, RING - 1);
	/*
	 * Frames come straight to the device's wire, not behind these
	 * writes: the first read returns after the device took them, the
	 * second after the descriptor read they started has completed (its
	 * data reached the device before this read's request did).
	 */
	flush(d);
	flush(d);
}

/* The frame's tag: "PFDD" and one byte, somewhere in its first buffer. */
static int frame_tag(const uint8_t *f, size_t len)
{
	for (size_t i = 0; i + 5 <= len && i < 200; i++)
		if (!memcmp(f + i, "PFDD", 4))
			return f[i + 4];
	return -1;
}

#define TAGS 32

struct rx_seen {
	uint32_t ndesc, len, status, errors, special, status_or;
	uint64_t hash;
	bool got;
};

static bool rx_has_sentinel(struct nic *n)
{
	for (uint32_t i = 0; i < RING - 1; i++) {
		uint8_t *d = rxd(n, i);

		if (!(d[12] & 1))
			return false;
		if (d[12] & 2 && frame_tag(n->mem + RX_BUF + i * RX_BSIZE,
					   (size_t)(d[8] | d[9] << 8)) == 0xff)
			return true;
	}
	return false;
}

/* Walk the written-back descriptors; one entry per tagged frame. */
static void rx_collect(struct nic *n, struct rx_seen seen[TAGS])
{
	static uint8_t frame[16384 + 64];
	uint32_t i = 0;

	memset(seen, 0, sizeof(struct rx_seen) * TAGS);
	while (i < RING - 1) {
		uint32_t start = i, total = 0, st_or = 0;
		uint8_t *d;
		int tag;

		do {
			uint32_t l;

			d = rxd(n, i);
			if (!(d[12] & 1))
				return;
			l = (uint32_t)(d[8] | d[9] << 8);
			if (total + l <= sizeof(frame))
				memcpy(frame + total, n->mem + RX_BUF + i * RX_BSIZE, l);
			total += l;
			st_or |= d[12];
			i++;
		} while (!(d[12] & 2) && i < RING - 1);
		tag = frame_tag(frame, total);
		if (tag < 0 || tag >= TAGS)
			continue;
		seen[tag] = (struct rx_seen){
			.ndesc = i - start, .len = total, .status = d[12], .errors = d[13],
			.special = (uint32_t)(d[14] | d[15] << 8), .status_or = st_or,
			/* The FCS is the driver's to drop (e1000_clean_rx_irq). */
			.hash = fnv1a(frame, total >= 4 ? total - 4 : total), .got = true,
		};
	}
}

static void rx_record(struct rec *r, const struct rx_seen seen[TAGS])
{
	char name[32];

	for (int t = 1; t < TAGS; t++) {
		const struct rx_seen *s = &seen[t];

		snprintf(name, sizeof(name), "rx-frame[%d]", t);
		record(r, name, "received", s->got);
		record(r, name, "descriptors", s->ndesc);
		record(r, name, "length", s->len);
		record(r, name, "status", s->status);
		record(r, name, "errors", s->errors);
		record(r, name, "special", s->special);
		record(r, name, "status of all descriptors", s->status_or);
		record(r, name, "data hash (low)", (uint32_t)s->hash);
		record(r, name, "data hash (high)", (uint32_t)(s->hash >> 32));
	}
}

static void nic_init(struct nic *n, const char *bdf, uint8_t *mem, uint64_t bus)
{
	struct dev *d = &n->d;
	uint32_t ral, rah;

	dev_open(d, bdf);
	d->flush_off = STATUS;
	dev_reset(d);
	n->mem = mem;
	n->bus = bus;
	n->tdt = n->tx_used = 0;
	memset(mem, 0, DEV_MEM);
	ral = rd(d, 0x5400);
	rah = rd(d, 0x5404);
	for (int i = 0; i < 4; i++)
		n->mac[i] = (uint8_t)(ral >> (8 * i));
	n->mac[4] = (uint8_t)rah;
	n->mac[5] = (uint8_t)(rah >> 8);
	wr(d, IMC, 0xffffffffu);
	/* e1000_configure_tx and e1000_vlan_mode: VLAN offload on */
	wr(d, CTRL, rd(d, CTRL) | 1u << 6 | 1u << 30);
	wr(d, TDBAL, (uint32_t)(bus + TX_RING));
	wr(d, TDBAH, (uint32_t)((bus + TX_RING) >> 32));
	wr(d, TDLEN, RING * 16);
	wr(d, TDH, 0);
	wr(d, TDT, 0);
	wr(d, TIPG, 0x00602008);
	wr(d, TCTL, 1u << 1 | 1u << 3 | 0xfu << 4 | 0x40u << 12);
}

static uint8_t *map_mem(uint64_t base, size_t len)
{
	int fd = open("/dev/mem", O_RDWR | O_SYNC);
	void *p;

	if (fd < 0)
		die("/dev/mem: %s", strerror(errno));
	p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)base);
	if (p == MAP_FAILED)
		die("mmap /dev/mem at 0x%llx: %s (boot with memmap=4M$0x%llx)",
		    (unsigned long long)base, strerror(errno), (unsigned long long)base);
	close(fd);
	return p;
}

/*
 * devdiff wire e1000 LIST MEMBASE BDF_A BDF_B: TX scenarios on both,
 * then "RX-READY": the test sends the same frames to both wires (each
 * with a tag, the last tagged 0xff); their write-backs are compared,
 * then LIST's counters and ICR.  MEMBASE: 4 MiB of reserved RAM.
 */
int e1000_wire(int argc, char **argv)
{
	struct nic n[2];
	struct rec rec[2] = { { 0 }, { 0 } };
	struct rx_seen seen[TAGS];
	uint64_t base, t0;
	uint8_t *mem;
	char *end;

	if (argc != 7)
		die("usage: devdiff wire e1000 LIST MEMBASE BDF_A BDF_B");
	base = strtoull(argv[4], &end, 0);
	if (*end || end == argv[4] || base & 0xfff)
		die("MEMBASE '%s': want the page-aligned address of 4 MiB of reserved RAM",
		    argv[4]);
	mem = map_mem(base, 2 * DEV_MEM);
	for (int k = 0; k < 2; k++)
		nic_init(&n[k], argv[5 + k], mem + k * DEV_MEM, base + k * DEV_MEM);
	for (int k = 0; k < 2; k++)
		for (int s = 0; s < (int)(sizeof(tx_names) / sizeof(tx_names[0])); s++)
			tx_run(&n[k], &rec[k], s);
	for (int k = 0; k < 2; k++)
		rx_setup(&n[k]);
	printf("RX-READY %s %s\n", argv[5], argv[6]);
	t0 = now_ms();
	while (!(rx_has_sentinel(&n[0]) && rx_has_sentinel(&n[1])) &&
	       now_ms() - t0 < 60000)
		sleep_ms(5);
	for (int k = 0; k < 2; k++) {
		rx_collect(&n[k], seen);
		rx_record(&rec[k], seen);
		record(&rec[k], "RDH", "after the frames", rd(&n[k].d, RDH));
		record(&rec[k], "ICR", "after the traffic", rd(&n[k].d, ICR));
		devdiff_counters(&n[k].d, argv[3], &rec[k]);
	}
	compare("wire", &n[0].d, &n[1].d, &rec[0], &rec[1], true);
	return 0;
}
