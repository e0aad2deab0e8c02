/*
 * The 82540EM's EEPROM and PHY (docs/e1000.md 3.2 and 3.3): a 64-word
 * Microwire EEPROM read by bit-banging EECD or through EERD, and the
 * integrated PHY behind MDIC, always at 1000 Mb/s full duplex once its
 * link is up.
 */
#include <string.h>

#include "e1000.h"

/* EECD (SDM 13.4.3) */
#define EECD_SK   (1u << 0)
#define EECD_CS   (1u << 1)
#define EECD_DI   (1u << 2)
#define EECD_DO   (1u << 3)
#define EECD_FWE  (3u << 4)
#define EECD_REQ  (1u << 6)
#define EECD_GNT  (1u << 7)
#define EECD_PRES (1u << 8)
/* EECD_SIZE (bit 9) reads 0: 64 words, 6 address bits (e1000 3.2). */
#define EECD_WRITABLE (EECD_SK | EECD_CS | EECD_DI | EECD_FWE | EECD_REQ)

/* Microwire: start bit, 2-bit opcode, 6 address bits (SDM 5.3). */
#define MW_READ      0x6u     /* start bit + opcode 10 */
#define MW_ADDR_BITS 6u
#define MW_CMD_BITS  (3u + MW_ADDR_BITS)

/* EERD (SDM 13.4.4) */
#define EERD_START (1u << 0)
#define EERD_DONE  (1u << 4)
#define EERD_ADDR_SHIFT 8
#define EERD_DATA_SHIFT 16

#define EEPROM_CHECKSUM_WORD 0x3f
#define EEPROM_SUM 0xbabau

void e1k_eeprom_init(struct e1k_eeprom *e, const uint8_t mac[6])
{
	uint16_t sum = 0;

	memset(e->words, 0, sizeof(e->words));
	for (int i = 0; i < 3; i++)
		e->words[i] = (uint16_t)(mac[2 * i] | mac[2 * i + 1] << 8);
	/* ID LED settings (word 4): all ones means the driver's defaults. */
	e->words[4] = 0xffff;
	for (int i = 0; i < EEPROM_CHECKSUM_WORD; i++)
		sum = (uint16_t)(sum + e->words[i]);
	e->words[EEPROM_CHECKSUM_WORD] = (uint16_t)(EEPROM_SUM - sum);
	e1k_eeprom_reset(e);
}

void e1k_eeprom_reset(struct e1k_eeprom *e)
{
	e->eecd = 0;
	e->in_bits = e->in_count = 0;
	e->reading = false;
	e->out_word = 0;
	e->out_pos = e->out_addr = 0;
	e->dout = false;
	e->eerd = 0;
}

uint32_t e1k_eecd_read(const struct e1k_eeprom *e)
{
	uint32_t v = e->eecd | EECD_PRES;

	/* No firmware competes for the EEPROM: a request is granted at once. */
	if (v & EECD_REQ)
		v |= EECD_GNT;
	/* DO is high unless the EEPROM drives a bit (as QEMU's e1000 reads). */
	if (!e->reading || e->dout)
		v |= EECD_DO;
	return v;
}

/* A rising clock edge while selected: shift a command bit in or a data bit out. */
static void eeprom_clock(struct e1k_eeprom *e, bool di)
{
	if (e->reading) {
		if (e->out_pos == 0) {
			/* Sequential read: the next word follows (SDM 5.3). */
			e->out_addr = (e->out_addr + 1) % E1K_EEPROM_WORDS;
			e->out_word = e->words[e->out_addr];
			e->out_pos = 16;
		}
		e->out_pos--;
		e->dout = e->out_word >> e->out_pos & 1;
		return;
	}
	/* Leading zeros before the start bit are ignored. */
	if (e->in_count == 0 && !di)
		return;
	e->in_bits = e->in_bits << 1 | di;
	if (++e->in_count < MW_CMD_BITS)
		return;
	if (e->in_bits >> MW_ADDR_BITS == MW_READ) {
		e->reading = true;
		e->out_addr = e->in_bits & (E1K_EEPROM_WORDS - 1);
		e->out_word = e->words[e->out_addr];
		e->out_pos = 16;
		e->dout = false;        /* the dummy zero before the data */
	} else {
		/* Writes and erases are not modelled: the command is ignored. */
		e->in_count = MW_CMD_BITS + 1;
		e->in_bits = 0;
	}
}

void e1k_eecd_write(struct e1k_eeprom *e, uint32_t v)
{
	uint32_t old = e->eecd;

	e->eecd = v & EECD_WRITABLE;
	if (!(v & EECD_CS)) {
		/* Deselected: the next selection starts a new command. */
		e->in_bits = e->in_count = 0;
		e->reading = false;
		e->dout = false;
		return;
	}
	if (e->in_count > MW_CMD_BITS)
		return;                 /* an ignored command runs to deselection */
	if (!(old & EECD_SK) && (v & EECD_SK))
		eeprom_clock(e, v & EECD_DI);
}

uint32_t e1k_eerd_read(const struct e1k_eeprom *e)
{
	return e->eerd;
}

void e1k_eerd_write(struct e1k_eeprom *e, uint32_t v)
{
	uint32_t addr = v >> EERD_ADDR_SHIFT & 0xff;

	if (!(v & EERD_START)) {
		e->eerd = v & ~(EERD_DONE | 0xffff0000u);
		return;
	}
	/* Words past the 64 the part has read as zero, done (e1000 3.2). */
	e->eerd = (addr << EERD_ADDR_SHIFT) | EERD_DONE |
		  (uint32_t)(addr < E1K_EEPROM_WORDS ? e->words[addr] : 0) << EERD_DATA_SHIFT;
}

/* ---- PHY (e1000 3.3; SDM 13.3, Linux e1000_hw.h names) ---- */

enum {
	PHY_CTRL = 0, PHY_STATUS = 1, PHY_ID1 = 2, PHY_ID2 = 3, PHY_ANAR = 4,
	PHY_LPAR = 5, PHY_ANER = 6, PHY_NPTX = 7, PHY_LPNP = 8,
	PHY_1000T_CTRL = 9, PHY_1000T_STATUS = 10, PHY_EXT_STATUS = 15,
	PHY_SPEC_CTRL = 16, PHY_SPEC_STATUS = 17, PHY_INT_ENABLE = 18,
	PHY_INT_STATUS = 19, PHY_EXT_SPEC_CTRL = 20, PHY_RX_ERR = 21,
};

#define MII_CR_RESTART_AN 0x0200
#define MII_CR_RESET      0x8000
#define MII_SR_LINK       0x0004
#define MII_SR_AN_DONE    0x0020
#define PSSR_LINK_UP      0xac00  /* 1000 Mb/s, full duplex, resolved, link */

/* Registers only the PHY changes; MDIC writes to them are ignored. */
static const uint32_t phy_read_only =
	1u << PHY_STATUS | 1u << PHY_ID1 | 1u << PHY_ID2 | 1u << PHY_LPAR |
	1u << PHY_ANER | 1u << PHY_LPNP | 1u << PHY_1000T_STATUS |
	1u << PHY_EXT_STATUS | 1u << PHY_SPEC_STATUS | 1u << PHY_INT_STATUS |
	1u << PHY_RX_ERR;

void e1k_phy_set_link(struct e1k_phy *p, bool link)
{
	/* Autonegotiation completes at once when the link is there. */
	p->regs[PHY_STATUS] = 0x7949 | (link ? MII_SR_LINK | MII_SR_AN_DONE : 0);
	p->regs[PHY_LPAR] = link ? 0x45e1 : 0;
	p->regs[PHY_ANER] = link ? 0x0001 : 0;
	p->regs[PHY_1000T_STATUS] = link ? 0x3c00 : 0;
	p->regs[PHY_SPEC_STATUS] = link ? PSSR_LINK_UP : 0;
}

void e1k_phy_reset(struct e1k_phy *p, bool link)
{
	memset(p->regs, 0, sizeof(p->regs));
	p->regs[PHY_CTRL] = 0x1140;      /* autoneg on, full duplex, 1000 */
	/* M88E1011 identifiers as the 82540EM reports them (e1000 3.3). */
	p->regs[PHY_ID1] = 0x0141;
	p->regs[PHY_ID2] = 0x0c20;
	p->regs[PHY_ANAR] = 0x0de1;
	p->regs[PHY_NPTX] = 0x2001;
	p->regs[PHY_1000T_CTRL] = 0x0e00;
	p->regs[PHY_EXT_STATUS] = 0x3000;
	p->regs[PHY_SPEC_CTRL] = 0x0360;     /* as QEMU's e1000 */
	p->regs[PHY_EXT_SPEC_CTRL] = 0x0d60;
	e1k_phy_set_link(p, link);
}

/* MDIC (SDM 13.4.7) */
#define MDIC_REG_SHIFT 16
#define MDIC_PHY_SHIFT 21
#define MDIC_OP_WRITE  (1u << 26)
#define MDIC_OP_READ   (2u << 26)
#define MDIC_READY     (1u << 28)
#define MDIC_INT_EN    (1u << 29)
#define MDIC_ERROR     (1u << 30)
#define PHY_ADDR       1u

uint32_t e1k_mdic(struct e1k_phy *p, uint32_t v, bool link)
{
	unsigned reg = v >> MDIC_REG_SHIFT & 0x1f;
	uint32_t op = v & (3u << 26);
	uint16_t data = (uint16_t)v;
	uint32_t keep = v & (0x03ff0000u | 3u << 26 | MDIC_INT_EN);

	/* Only PHY address 1 answers; other addresses and opcodes fail. */
	if ((v >> MDIC_PHY_SHIFT & 0x1f) != PHY_ADDR ||
	    (op != MDIC_OP_READ && op != MDIC_OP_WRITE))
		return keep | MDIC_READY | MDIC_ERROR;
	if (op == MDIC_OP_READ)
		return keep | MDIC_READY | p->regs[reg];
	if (reg == PHY_CTRL && data & MII_CR_RESET) {
		e1k_phy_reset(p, link);
	} else if (!(phy_read_only >> reg & 1)) {
		/*
		 * Reset and restart-autonegotiation are self-clearing; control
		 * bits 5:0 are reserved, read 0 (IEEE 802.3 22.2.4.1).
		 */
		p->regs[reg] = reg == PHY_CTRL ?
			       (uint16_t)(data & ~(MII_CR_RESET | MII_CR_RESTART_AN | 0x3f)) :
			       data;
		if (reg == PHY_CTRL)
			e1k_phy_set_link(p, link);
	}
	return keep | MDIC_READY | data;
}
