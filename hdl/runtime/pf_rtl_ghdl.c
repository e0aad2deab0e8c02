/*
 * The GHDL glue of the RTL bridge (docs/hdl.md): the clock process of the
 * testbench hdl/build.py generates (pf_tb) calls these through VHPIDIRECT
 * (hdl/runtime/pf_rtl_pkg.vhd).  The design's outputs arrive as one array
 * of std_ulogic and its inputs leave as another, in the order of the
 * tables below, which the generator follows field by field (build.py:
 * VHDL_OUTS, VHDL_INS), each vector most significant bit first (a slice
 * assignment of a (N-1 downto 0) port); only the BARs the design has a
 * port for take space.  GHDL passes a std_ulogic as its position in the
 * type: 'U' 0, 'X' 1, '0' 2, '1' 3, ... 'H' 7.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "pf_rtl.h"

/* hdl/build.py says which design and which GHDL. */
#ifndef PF_TOP_NAME
#define PF_TOP_NAME "?"
#endif
#ifndef PF_GHDL_VERSION
#define PF_GHDL_VERSION "?"
#endif

/* Entry points: GHDL finds them by name (pf_rtl_pkg.vhd). */
void pf_rtl_ghdl_init(int32_t bars, int32_t *ok);
void pf_rtl_ghdl_cycle(const uint8_t *outs, uint8_t *ins, int32_t *ctl);

#define SL_0 2
#define SL_1 3
#define SL_H 7

struct field {
	size_t off;             /* in struct pf_rtl_pins, or in a BAR's pins */
	unsigned width, size;   /* bits; bytes of the C member */
};

/* What pf_rtl_ghdl_cycle() tells the testbench (pf_rtl_pkg.vhd). */
#define CTL_STOP    1       /* end the simulation */
#define CTL_INPUTS  2       /* the inputs changed: assign them */

#define F(type, member, w) { offsetof(type, member), w, sizeof(((type *)0)->member) }
#define BARF(member, w) F(struct pf_rtl_axil_pins, member, w)
#define PINF(member, w) F(struct pf_rtl_pins, member, w)

static const struct field bar_outs[] = {
	BARF(awready, 1), BARF(wready, 1), BARF(bvalid, 1), BARF(bresp, 2),
	BARF(arready, 1), BARF(rvalid, 1), BARF(rresp, 2), BARF(rdata, 32),
};
static const struct field bar_ins[] = {
	BARF(awaddr, 32), BARF(awvalid, 1), BARF(wdata, 32), BARF(wstrb, 4),
	BARF(wvalid, 1), BARF(bready, 1), BARF(araddr, 32), BARF(arvalid, 1),
	BARF(rready, 1),
};
static const struct field pin_outs[] = {
	PINF(dma.awaddr, 64), PINF(dma.awlen, 8), PINF(dma.awsize, 3),
	PINF(dma.awburst, 2), PINF(dma.awvalid, 1), PINF(dma.wdata, 32),
	PINF(dma.wstrb, 4), PINF(dma.wlast, 1), PINF(dma.wvalid, 1),
	PINF(dma.bready, 1), PINF(dma.araddr, 64), PINF(dma.arlen, 8),
	PINF(dma.arsize, 3), PINF(dma.arburst, 2), PINF(dma.arvalid, 1),
	PINF(dma.rready, 1), PINF(irq_req, 1), PINF(irq_msi, 1),
	PINF(irq_vector, 11), PINF(intx, 1), PINF(busy, 1),
};
static const struct field pin_ins[] = {
	PINF(dma.awready, 1), PINF(dma.wready, 1), PINF(dma.bvalid, 1),
	PINF(dma.bresp, 2), PINF(dma.arready, 1), PINF(dma.rvalid, 1),
	PINF(dma.rresp, 2), PINF(dma.rlast, 1), PINF(dma.rdata, 32),
	PINF(irq_ack, 1),
};
#define N(a) (sizeof(a) / sizeof((a)[0]))

static struct pf_rtl *rt;
static struct pf_rtl_pins pins;
static unsigned bar_mask;
/*
 * The output bytes of the last cycle and the input bytes we gave: most
 * cycles change little, so only fields that changed are converted, and
 * the testbench assigns the inputs only when one changed (it is a GHDL
 * process, where each assignment costs).
 */
static uint8_t last_outs[512];
static size_t outs_len;
static uint64_t last_in_values[6 * 9 + 11];      /* per input field */
static bool ins_changed;

static uint64_t get_bits(const uint8_t *v, unsigned width)
{
	uint64_t x = 0;

	for (unsigned k = 0; k < width; k++)
		x = x << 1 | (v[k] == SL_1 || v[k] == SL_H);
	return x;
}

static void put_bits(uint8_t *v, unsigned width, uint64_t x)
{
	for (unsigned k = 0; k < width; k++)
		v[k] = x >> (width - 1 - k) & 1 ? SL_1 : SL_0;
}

static void store(void *base, const struct field *f, uint64_t x)
{
	uint8_t *p = (uint8_t *)base + f->off;

	switch (f->size) {
	case 1: *p = (uint8_t)x; break;
	case 2: *(uint16_t *)p = (uint16_t)x; break;
	case 4: *(uint32_t *)p = (uint32_t)x; break;
	default: *(uint64_t *)p = x; break;
	}
}

static uint64_t load(const void *base, const struct field *f)
{
	const uint8_t *p = (const uint8_t *)base + f->off;

	switch (f->size) {
	case 1: return *p;
	case 2: return *(const uint16_t *)p;
	case 4: return *(const uint32_t *)p;
	default: return *(const uint64_t *)p;
	}
}

static size_t unpack(const uint8_t *outs, size_t pos, void *base,
		     const struct field *t, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned w = t[i].width;

		if (memcmp(outs + pos, last_outs + pos, w)) {
			store(base, &t[i], get_bits(outs + pos, w));
			memcpy(last_outs + pos, outs + pos, w);
		}
		pos += w;
	}
	return pos;
}

static size_t pack(uint8_t *ins, size_t pos, unsigned *k, const void *base,
		   const struct field *t, size_t n)
{
	for (size_t i = 0; i < n; i++, (*k)++) {
		uint64_t x = load(base, &t[i]);

		if (x != last_in_values[*k]) {
			last_in_values[*k] = x;
			put_bits(ins + pos, t[i].width, x);
			ins_changed = true;
		}
		pos += t[i].width;
	}
	return pos;
}

void pf_rtl_ghdl_init(int32_t bars, int32_t *ok)
{
	bar_mask = (unsigned)bars & 0x3f;
	/* Impossible values: the first cycle converts every field. */
	memset(last_outs, 0xff, sizeof(last_outs));
	memset(last_in_values, 0xff, sizeof(last_in_values));
	rt = pf_rtl_open(bar_mask, "GHDL " PF_GHDL_VERSION ", top " PF_TOP_NAME);
	*ok = rt != NULL;
}

void pf_rtl_ghdl_cycle(const uint8_t *outs, uint8_t *ins, int32_t *ctl)
{
	static const struct field rst = PINF(rst_n, 1);
	size_t pos = 0;
	unsigned k = 0;

	/* Most cycles no output moves: one comparison says so. */
	if (!outs_len || memcmp(outs, last_outs, outs_len)) {
		for (unsigned b = 0; b < 6; b++)
			if (bar_mask & (1u << b))
				pos = unpack(outs, pos, &pins.bar[b], bar_outs, N(bar_outs));
		outs_len = unpack(outs, pos, &pins, pin_outs, N(pin_outs));
	}
	*ctl = pf_rtl_cycle(rt, &pins) ? 0 : CTL_STOP;
	/* The testbench's i keeps what we wrote: write only what changed. */
	ins_changed = false;
	pos = pack(ins, 0, &k, &pins, &rst, 1);
	for (unsigned b = 0; b < 6; b++)
		if (bar_mask & (1u << b))
			pos = pack(ins, pos, &k, &pins.bar[b], bar_ins, N(bar_ins));
	pack(ins, pos, &k, &pins, pin_ins, N(pin_ins));
	if (ins_changed)
		*ctl |= CTL_INPUTS;
}
