/*
 * e1000: Intel 82540EM as QEMU's -device e1000 presents it, for Linux's
 * stock e1000 driver.  Specified in docs/e1000.md ("e1000 N" below); the
 * register-level facts come from Intel's 8254x Software Developer's
 * Manual ("SDM x.y").  Internal to the model's files:
 *   e1000.c          registers, interrupts, RX and TX rings
 *   e1000_nvm.c      the EEPROM (Microwire and EERD) and the PHY (MDIC)
 *   e1000_offload.c  TX checksum insertion and TCP segmentation, RX checks
 */
#ifndef PCIEFW_E1000_H
#define PCIEFW_E1000_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* e1000 3: register offsets in BAR 0 (SDM 13.4, 13.5, 13.7) */
enum {
	E1K_CTRL = 0x0000, E1K_STATUS = 0x0008, E1K_EECD = 0x0010,
	E1K_EERD = 0x0014, E1K_CTRL_EXT = 0x0018, E1K_MDIC = 0x0020,
	E1K_FCAH = 0x002c, E1K_FCT = 0x0030,
	E1K_VET = 0x0038, E1K_ICR = 0x00c0, E1K_ITR = 0x00c4,
	E1K_ICS = 0x00c8, E1K_IMS = 0x00d0, E1K_IMC = 0x00d8,
	E1K_RCTL = 0x0100, E1K_TCTL = 0x0400, E1K_TIPG = 0x0410,
	E1K_LEDCTL = 0x0e00, E1K_PBA = 0x1000,
	E1K_RDBAL = 0x2800, E1K_RDBAH = 0x2804, E1K_RDLEN = 0x2808,
	E1K_RDH = 0x2810, E1K_RDT = 0x2818, E1K_RDTR = 0x2820,
	E1K_RADV = 0x282c,
	E1K_TDBAL = 0x3800, E1K_TDBAH = 0x3804, E1K_TDLEN = 0x3808,
	E1K_TDH = 0x3810, E1K_TDT = 0x3818, E1K_TIDV = 0x3820,
	E1K_TADV = 0x382c,
	E1K_STATS = 0x4000, E1K_STATS_END = 0x4100,
	E1K_RXCSUM = 0x5000,
	E1K_MTA = 0x5200, E1K_RA = 0x5400, E1K_VFTA = 0x5600,
	E1K_REGS_SIZE = 0x20000,
};

/* Statistics (SDM 13.7), as indexes of the 64 dwords at E1K_STATS. */
enum {
	ST_MPC = 0x10 / 4, ST_GPRC = 0x74 / 4, ST_BPRC = 0x78 / 4,
	ST_MPRC = 0x7c / 4, ST_GPTC = 0x80 / 4, ST_GORCL = 0x88 / 4,
	ST_GORCH = 0x8c / 4, ST_GOTCL = 0x90 / 4, ST_GOTCH = 0x94 / 4,
	ST_RNBC = 0xa0 / 4, ST_ROC = 0xac / 4, ST_TORL = 0xc0 / 4,
	ST_TORH = 0xc4 / 4, ST_TOTL = 0xc8 / 4, ST_TOTH = 0xcc / 4,
	ST_TPR = 0xd0 / 4, ST_TPT = 0xd4 / 4, ST_MPTC = 0xf0 / 4,
	ST_BPTC = 0xf4 / 4, ST_TSCTC = 0xf8 / 4, ST_TSCTFC = 0xfc / 4,
	N_STATS = 0x100 / 4,
};

/* CTRL (SDM 13.4.1) */
#define CTRL_SLU      (1u << 6)
#define CTRL_RST      (1u << 26)
#define CTRL_VME      (1u << 30)
#define CTRL_PHY_RST  (1u << 31)
/* STATUS (SDM 13.4.2) */
#define STATUS_FD         (1u << 0)
#define STATUS_LU         (1u << 1)
#define STATUS_SPEED_1000 (2u << 6)
#define STATUS_ASDV_1000  (2u << 8)
/* Interrupt causes, ICR/ICS/IMS/IMC (SDM 13.4.17-21) */
#define ICR_TXDW   (1u << 0)
#define ICR_TXQE   (1u << 1)
#define ICR_LSC    (1u << 2)
#define ICR_RXDMT0 (1u << 4)
#define ICR_RXO    (1u << 6)
#define ICR_RXT0   (1u << 7)
#define ICR_MDAC   (1u << 9)
/*
 * Cause bits 16:0 (SDM 13.4.17); 5, 8 and 11, reserved on some parts, are
 * kept: Linux's self-test sets bits 0-9 through ICS and IMS and expects
 * each as an interrupt (e1000_ethtool.c e1000_intr_test).
 */
#define ICR_VALID  0x0001ffffu
/* RCTL (SDM 13.4.22) */
#define RCTL_EN    (1u << 1)
#define RCTL_SBP   (1u << 2)
#define RCTL_UPE   (1u << 3)
#define RCTL_MPE   (1u << 4)
#define RCTL_LPE   (1u << 5)
#define RCTL_RDMTS_SHIFT 8
#define RCTL_MO_SHIFT 12
#define RCTL_BAM   (1u << 15)
#define RCTL_BSIZE_SHIFT 16
#define RCTL_VFE   (1u << 18)
#define RCTL_BSEX  (1u << 25)
#define RCTL_SECRC (1u << 26)
/* TCTL (SDM 13.4.33) */
#define TCTL_EN    (1u << 1)
/* RXCSUM (SDM 13.4.47) */
#define RXCSUM_IPOFL (1u << 8)
#define RXCSUM_TUOFL (1u << 9)
/* RAH (SDM 13.5.3) */
#define RAH_AV     (1u << 31)
/* RDTR (SDM 13.4.30): flush partial descriptor block */
#define RDTR_FPD   (1u << 31)

/* RX descriptor status and errors (SDM 3.2.3) */
#define RXD_DD     0x01
#define RXD_EOP    0x02
#define RXD_IXSM   0x04
#define RXD_VP     0x08
#define RXD_TCPCS  0x20
#define RXD_IPCS   0x40
#define RXE_TCPE   0x20
#define RXE_IPE    0x40

/* ---- EEPROM and PHY (e1000_nvm.c; e1000 3.2, 3.3) ---- */

#define E1K_EEPROM_WORDS 64

struct e1k_eeprom {
	uint16_t words[E1K_EEPROM_WORDS];
	/* The Microwire wires as last written, and the shift state. */
	uint32_t eecd;
	uint32_t in_bits, in_count;   /* opcode and address bits shifted in */
	bool reading;
	uint16_t out_word;
	unsigned out_pos, out_addr;   /* next bit of out_word to present */
	bool dout;
	uint32_t eerd;
};

struct e1k_phy {
	uint16_t regs[32];
};

/* Fill the image: MAC in words 0-2, checksum word 0x3f (e1000 3.2). */
void e1k_eeprom_init(struct e1k_eeprom *e, const uint8_t mac[6]);
/* Back to idle wires (reset); the contents stay. */
void e1k_eeprom_reset(struct e1k_eeprom *e);
uint32_t e1k_eecd_read(const struct e1k_eeprom *e);
void e1k_eecd_write(struct e1k_eeprom *e, uint32_t v);
uint32_t e1k_eerd_read(const struct e1k_eeprom *e);
void e1k_eerd_write(struct e1k_eeprom *e, uint32_t v);

void e1k_phy_reset(struct e1k_phy *p, bool link);
void e1k_phy_set_link(struct e1k_phy *p, bool link);
/* Carry out an MDIC write; returns the value MDIC reads back. */
uint32_t e1k_mdic(struct e1k_phy *p, uint32_t v, bool link);

/* ---- Offloads (e1000_offload.c; e1000 6.3, 6.4, 5.3) ---- */

/* A TCP/IP context descriptor's fields (SDM 3.3.6). */
struct e1k_txctx {
	uint8_t ipcss, ipcso, tucss, tucso;
	uint16_t ipcse, tucse;
	uint32_t paylen;
	uint8_t tucmd, hdrlen;
	uint16_t mss;
};

#define TUCMD_TCP  0x01
#define TUCMD_IP   0x02
#define TUCMD_TSE  0x04

/* What to do with one assembled packet. */
struct e1k_txjob {
	struct e1k_txctx ctx;
	bool tse;                /* segment (data descriptors, DCMD.TSE) */
	bool ixsm, txsm;         /* insert IP / TCP-UDP checksum (POPTS) */
	bool legacy_ic;          /* legacy descriptor: insert at CSO from CSS */
	uint8_t css, cso;
	bool vle;                /* insert an 802.1Q tag */
	uint16_t vlan_tci, vet;
};

/* Frames go out through this; @len includes any inserted tag. */
typedef void e1k_emit_fn(void *opaque, const uint8_t *frame, size_t len);

#define E1K_FRAME_MAX 16384u   /* largest frame sent or received (e1000 7) */
#define E1K_TSO_MAX   (65536u + 256u)  /* largest packet TSO accepts */
/*
 * Most segments one TSO packet may make, so that what one descriptor can
 * cost stays bounded (e1000 7): MSS 1 would make 65,536 frames.  Linux
 * asks for at most 745 (64 KiB at TCP_MIN_MSS, 88).
 */
#define E1K_TSO_SEGS_MAX 1024u

/*
 * Finish @pkt (@len bytes) as @job says and emit the frame(s).  Returns the number of frames
 * emitted, or -1 if the job's offsets or sizes do not fit the packet
 * (nothing is emitted: e1000 7).
 */
int e1k_tx_finish(const struct e1k_txjob *job, uint8_t *pkt, size_t len,
		  e1k_emit_fn *emit, void *opaque);

/* RX checksum checks of a received frame (SDM 3.2.9): status and errors. */
void e1k_rx_checksum(const uint8_t *frame, size_t len, uint32_t rxcsum,
		     uint8_t *status, uint8_t *errors, uint16_t *csum);

#endif /* PCIEFW_E1000_H */
