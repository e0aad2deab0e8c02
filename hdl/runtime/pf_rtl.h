/*
 * The simulator side of the RTL bridge (docs/hdl.md): the runtime a
 * simulated design is linked with.  A simulator's glue (verilator_main.cpp
 * for Verilator, pf_rtl_ghdl.c for GHDL) calls pf_rtl_cycle() once per
 * clock cycle, before the rising edge, with the design's outputs sampled;
 * the runtime plays the bus around the design -- the AXI4-Lite masters of
 * the BARs, the AXI4 slave that serves the design's DMA, the interrupt
 * acknowledge, reset -- and returns the inputs to apply right after the
 * edge.  It sleeps inside pf_rtl_cycle() while the design has no work, so
 * simulated time stands still and no CPU is spent (docs/hdl.md 4).
 */
#ifndef PF_RTL_H
#define PF_RTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* One BAR's AXI4-Lite slave port (the design's s_barN_* signals). */
struct pf_rtl_axil_pins {
	/* Inputs of the design: the bridge drives them. */
	uint32_t awaddr, wdata, araddr;
	uint8_t awvalid, wvalid, wstrb, bready, arvalid, rready;
	/* Outputs of the design. */
	uint8_t awready, wready, bvalid, bresp, arready, rvalid, rresp;
	uint32_t rdata;
};

/* The design's AXI4 master for DMA (its m_dma_* signals). */
struct pf_rtl_dma_pins {
	/* Outputs of the design. */
	uint64_t awaddr, araddr;
	uint32_t wdata;
	uint8_t awlen, awsize, awburst, awvalid;
	uint8_t wstrb, wlast, wvalid, bready;
	uint8_t arlen, arsize, arburst, arvalid, rready;
	/* Inputs of the design. */
	uint32_t rdata;
	uint8_t awready, wready, bvalid, bresp, arready, rvalid, rresp, rlast;
};

struct pf_rtl_pins {
	uint8_t rst_n;                  /* input: active-low reset */
	struct pf_rtl_axil_pins bar[6];
	struct pf_rtl_dma_pins dma;
	/* Interrupt port: outputs but irq_ack. */
	uint8_t irq_req, irq_msi;       /* irq_msi: 1 MSI, 0 MSI-X */
	uint16_t irq_vector;
	uint8_t irq_ack;                /* input */
	uint8_t intx;                   /* INTx level */
	uint8_t busy;                   /* the design has work: keep clocking */
};

struct pf_rtl;

/* The clock: cycle N's rising edge is at N * PF_RTL_PERIOD_NS (100 MHz). */
#define PF_RTL_PERIOD_NS 10u

/*
 * Attach to the link the bridge passed (fds 3-5, rtl_link.h) and say
 * hello: @bars is the mask of BARs whose AXI4-Lite port the design has,
 * @name what runs (shown in the endpoint's log).  NULL, with the reason on
 * stderr, if this process was not started by the bridge.
 */
struct pf_rtl *pf_rtl_open(unsigned bars, const char *name);

/*
 * One clock cycle.  Call with @p's outputs as the design drives them just
 * before the rising edge (its combinational outputs settled on the inputs
 * from the previous call); on return @p's inputs are those to apply right
 * after that edge.  Returns true to go on, false when the simulation is
 * to end (the bridge said so, or is gone): close the waves and exit.
 */
bool pf_rtl_cycle(struct pf_rtl *rt, struct pf_rtl_pins *p);

/* The rising edge the last pf_rtl_cycle() call prepared: 1, 2, ... */
uint64_t pf_rtl_now(const struct pf_rtl *rt);

void pf_rtl_close(struct pf_rtl *rt);

#ifdef __cplusplus
}
#endif

#endif /* PF_RTL_H */
