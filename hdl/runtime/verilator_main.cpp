// The Verilator glue of the RTL bridge (docs/hdl.md): drives the clock of
// a verilated design, moves its ports to and from struct pf_rtl_pins, and
// lets the runtime (pf_rtl.c) play the bus around it.  hdl/build.py
// compiles it with a generated pf_design.h that names the model class
// (PF_TOP), its header, and the BARs whose AXI4-Lite port it has
// (PF_BARS(X): X(0) X(2) ...).  Waves: --wave FILE (.vcd or .fst, as the
// model was verilated for).
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>

#include "verilated.h"
#include "pf_design.h"
#include "pf_rtl.h"

#if PF_WAVE_FST
#include "verilated_fst_c.h"
typedef VerilatedFstC WaveFile;
static const char wave_ext[] = ".fst";
#else
#include "verilated_vcd_c.h"
typedef VerilatedVcdC WaveFile;
static const char wave_ext[] = ".vcd";
#endif

#define BAR_MASK(n) | (1u << (n))

#define BAR_OUT(n)                                                      \
	{                                                               \
		pf_rtl_axil_pins &b = p.bar[n];                         \
		b.awready = top->s_bar##n##_awready;                    \
		b.wready = top->s_bar##n##_wready;                      \
		b.bvalid = top->s_bar##n##_bvalid;                      \
		b.bresp = top->s_bar##n##_bresp;                        \
		b.arready = top->s_bar##n##_arready;                    \
		b.rvalid = top->s_bar##n##_rvalid;                      \
		b.rresp = top->s_bar##n##_rresp;                        \
		b.rdata = top->s_bar##n##_rdata;                        \
	}

#define BAR_IN(n)                                                       \
	{                                                               \
		const pf_rtl_axil_pins &b = p.bar[n];                   \
		top->s_bar##n##_awaddr = b.awaddr;                      \
		top->s_bar##n##_awvalid = b.awvalid;                    \
		top->s_bar##n##_wdata = b.wdata;                        \
		top->s_bar##n##_wstrb = b.wstrb;                        \
		top->s_bar##n##_wvalid = b.wvalid;                      \
		top->s_bar##n##_bready = b.bready;                      \
		top->s_bar##n##_araddr = b.araddr;                      \
		top->s_bar##n##_arvalid = b.arvalid;                    \
		top->s_bar##n##_rready = b.rready;                      \
	}

static void sample(PF_TOP *top, pf_rtl_pins &p)
{
	pf_rtl_dma_pins &d = p.dma;

	PF_BARS(BAR_OUT)
	d.awaddr = top->m_dma_awaddr;
	d.awlen = top->m_dma_awlen;
	d.awsize = top->m_dma_awsize;
	d.awburst = top->m_dma_awburst;
	d.awvalid = top->m_dma_awvalid;
	d.wdata = top->m_dma_wdata;
	d.wstrb = top->m_dma_wstrb;
	d.wlast = top->m_dma_wlast;
	d.wvalid = top->m_dma_wvalid;
	d.bready = top->m_dma_bready;
	d.araddr = top->m_dma_araddr;
	d.arlen = top->m_dma_arlen;
	d.arsize = top->m_dma_arsize;
	d.arburst = top->m_dma_arburst;
	d.arvalid = top->m_dma_arvalid;
	d.rready = top->m_dma_rready;
	p.irq_req = top->irq_req;
	p.irq_msi = top->irq_msi;
	p.irq_vector = top->irq_vector;
	p.intx = top->intx;
	p.busy = top->busy;
}

static void drive(PF_TOP *top, const pf_rtl_pins &p)
{
	const pf_rtl_dma_pins &d = p.dma;

	top->rst_n = p.rst_n;
	PF_BARS(BAR_IN)
	top->m_dma_awready = d.awready;
	top->m_dma_wready = d.wready;
	top->m_dma_bvalid = d.bvalid;
	top->m_dma_bresp = d.bresp;
	top->m_dma_arready = d.arready;
	top->m_dma_rvalid = d.rvalid;
	top->m_dma_rresp = d.rresp;
	top->m_dma_rlast = d.rlast;
	top->m_dma_rdata = d.rdata;
	top->irq_ack = p.irq_ack;
}

static bool ends_with(const std::string &s, const char *ext)
{
	size_t n = std::strlen(ext);

	return s.size() >= n && s.compare(s.size() - n, n, ext) == 0;
}

int main(int argc, char **argv)
{
	std::string wave;

	for (int i = 1; i < argc; i++) {
		if (!std::strcmp(argv[i], "--wave") && i + 1 < argc) {
			wave = argv[++i];
		} else {
			std::fprintf(stderr, "usage: %s [--wave FILE%s]\n", argv[0], wave_ext);
			return 2;
		}
	}
	if (!wave.empty() && !ends_with(wave, wave_ext)) {
		std::fprintf(stderr, "%s: this simulation writes %s waves, not %s "
			     "(rebuild it with hdl/build.py --wave %s)\n", argv[0],
			     wave_ext + 1, wave.c_str(), wave_ext[1] == 'v' ? "fst" : "vcd");
		return 2;
	}

	const std::unique_ptr<VerilatedContext> ctx{new VerilatedContext};
	const std::unique_ptr<PF_TOP> top{new PF_TOP{ctx.get(), "top"}};
	// Times in the model's precision (its `timescale; 1 ps by default).
	uint64_t per_ns = 1;
	for (int p = ctx->timeprecision(); p < -9; p++)
		per_ns *= 10;
	std::unique_ptr<WaveFile> tfp;
	pf_rtl_pins p;
	std::memset(&p, 0, sizeof(p));

	pf_rtl *rt = pf_rtl_open(0u PF_BARS(BAR_MASK),
				 "Verilator " VERILATOR_VERSION ", top " PF_TOP_NAME);
	if (!rt)
		return 1;
	if (!wave.empty()) {
		ctx->traceEverOn(true);
		tfp.reset(new WaveFile);
		top->trace(tfp.get(), 99);
		tfp->open(wave.c_str());
		if (!tfp->isOpen()) {
			std::fprintf(stderr, "%s: cannot write %s\n", argv[0], wave.c_str());
			return 1;
		}
	}
	// Cycle N's rising edge is at N * PF_RTL_PERIOD_NS (rtl_link.h).
	const uint64_t half = PF_RTL_PERIOD_NS / 2 * per_ns;
	top->clk = 0;
	drive(top.get(), p);
	top->eval();
	if (tfp)
		tfp->dump(0);
	while (!ctx->gotFinish()) {
		sample(top.get(), p);
		if (!pf_rtl_cycle(rt, &p))
			break;
		uint64_t t = pf_rtl_now(rt) * PF_RTL_PERIOD_NS * per_ns;
		ctx->time(t);
		top->clk = 1;
		top->eval();                    // the edge: old inputs sampled
		drive(top.get(), p);
		top->eval();                    // new inputs, outputs settle
		if (tfp)
			tfp->dump(t);
		ctx->time(t + half);
		top->clk = 0;
		top->eval();
		if (tfp)
			tfp->dump(t + half);
	}
	top->final();
	if (tfp)
		tfp->close();
	if (ctx->gotFinish())
		std::fprintf(stderr, "%s: the design called $finish at cycle %llu\n",
			     argv[0], (unsigned long long)pf_rtl_now(rt));
	pf_rtl_close(rt);
	return ctx->gotFinish() ? 3 : 0;
}
