"""The RTL bridge (docs/hdl.md) through the real QEMU (qtest), with the
example device in Verilog and in VHDL: rst_n asserted on a system reset, a
function-level reset and a disconnect; the waveform tied to the trace (each
transaction's note gives the cycle at which the design made its handshake,
and the VCD shows VALID and READY high there); no CPU spent while the
design is idle, and a free-running clock when asked for; waves in every
format the simulators write."""

import os
import re
import shutil
import subprocess
import time

import pytest

import rtllib
from test_qemu_device import CAP_EXP, MSI_LAND, RAM_A, RAM_B, start, wait_for
from vcd import Vcd

LANGS = ("verilog", "vhdl")
PERIOD_NS = 10          # cycle N's rising edge is at N * 10 ns


def run(harness, lang, opts="", ep_args=()):
    ep = harness.endpoint(device=rtllib.example(lang, opts), args=list(ep_args))
    ep_, q, d = start(harness, endpoint=ep)
    return ep, q, d


@pytest.mark.parametrize("lang", LANGS)
def test_reset_asserted(harness, lang):
    """SCRATCH is back to 0 after each kind of reset: the design saw rst_n."""
    ep, q, d = run(harness, lang)
    d.set_reg(4, 0x1234)
    assert d.reg(4) == 0x1234
    exp = d.pci.caps(d.bdf)[CAP_EXP]
    d.cfg_write(exp + 8, d.cfg(exp + 8, 2) | 0x8000, 2)    # FLR
    d.enumerate()
    assert d.reg(4) == 0, "no reset on FLR"
    d.set_reg(4, 0x5678)
    q.qmp.cmd("system_reset")
    q.qmp.wait_event("RESET")
    d.enumerate()
    assert d.reg(4) == 0, "no reset on system reset"
    d.set_reg(4, 0x9abc)
    assert d.reg(4) == 0x9abc
    q.stop()
    ep.wait_log("host gone")
    _, q2, d2 = start(harness, endpoint=ep)
    assert d2.reg(4) == 0, "no reset on disconnect"
    assert ep.alive()


def notes(tool, trace):
    out = subprocess.run([tool, trace], stdout=subprocess.PIPE, text=True,
                         check=True).stdout
    return [l.split("^", 1)[1].strip() for l in out.splitlines()
            if " ^ " in l and "rtl:" in l]


def cycles(note, *labels):
    """The cycles a note gives for each handshake label ("AR at cycle N")."""
    out = []
    for label in labels:
        m = re.search(rf"\b{label} at cycle (\d+) \((\d+) ns\)", note)
        assert m, (label, note)
        assert int(m.group(2)) == int(m.group(1)) * PERIOD_NS, note
        out.append(int(m.group(2)))
    return out


def handshake(w, prefix, t, **fields):
    """At the rising edge at @t, VALID and READY of channel @prefix were
    both high, with @fields as given."""
    assert w.before(prefix + "valid", t) == 1, (prefix, t)
    assert w.before(prefix + "ready", t) == 1, (prefix, t)
    for name, want in fields.items():
        assert w.before(prefix + name, t) == want, (prefix + name, t)


@pytest.mark.parametrize("lang", LANGS)
def test_trace_leads_to_the_waveform(harness, lang, endpoint_binary):
    """Every RTL note in the trace names cycles at which the VCD shows the
    AXI handshake of that transaction: register read and write, the DMA's
    read and write bursts, the interrupt request and its acknowledge."""
    wave, trace = harness.path("w.vcd"), harness.path("t.pcapng")
    ep, q, d = run(harness, lang, f"wave={wave}", ["--trace", trace])
    bar0 = d.bars[0].addr
    d.qt.writel(bar0 + 4, 0xC0FFEE11)
    assert d.qt.readl(bar0 + 4) == 0xC0FFEE11
    data = bytes(range(256))
    d.qt.write(RAM_A, data)
    d.setup_msix(2, MSI_LAND, 0xD0E)
    d.qt.writel(MSI_LAND, 0)
    d.set_reg(0x2C, 3 | 2 << 8)
    assert d.dma(RAM_A, RAM_B, 256, cmd_extra=2) == 2
    wait_for(lambda: d.qt.readl(MSI_LAND) == 0xD0E, what="MSI-X")
    q.stop()
    assert ep.stop() == 0
    w = Vcd(wave)
    tool = endpoint_binary.replace("endpoint/pciefw-endpoint", "tools/pciefw-trace")
    ns = notes(tool, trace)

    wr = [n for n in ns if n.startswith("rtl: BAR0+0x4 write")]
    aw, wt, b = cycles(wr[0], "AW", "W", "B")
    handshake(w, "s_bar0_aw", aw, addr=4)
    handshake(w, "s_bar0_w", wt, data=0xC0FFEE11, strb=0xF)
    handshake(w, "s_bar0_b", b, resp=0)

    rd = [n for n in ns if n.startswith("rtl: BAR0+0x4 read")]
    ar, r = cycles(rd[0], "AR", "R")
    handshake(w, "s_bar0_ar", ar, addr=4)
    handshake(w, "s_bar0_r", r, data=0xC0FFEE11, resp=0)

    dr = [n for n in ns if n.startswith(f"rtl: m_dma read, 256 bytes at {RAM_A:#x}")]
    (ar,) = cycles(dr[0], "AR")
    handshake(w, "m_dma_ar", ar, addr=RAM_A, len=63)

    dw = [n for n in ns if n.startswith(f"rtl: m_dma write, 256 bytes at {RAM_B:#x}")]
    (aw,) = cycles(dw[0], "AW")
    handshake(w, "m_dma_aw", aw, addr=RAM_B, len=63)
    first, last = [int(x) * PERIOD_NS for x in
                   re.search(r"W from cycle (\d+) .* to cycle (\d+)", dw[0]).groups()]
    handshake(w, "m_dma_w", first, data=0x03020100)
    handshake(w, "m_dma_w", last, data=0xFFFEFDFC, last=1)

    if shutil.which("tshark"):
        # The dissector shows each note's first stamp as fields to filter on.
        r = subprocess.run(["tshark", "-X", "lua_script:" + str(rtllib.REPO / "tools" /
                            "wireshark" / "pciefw.lua"), "-r", trace, "-T", "fields",
                            "-e", "pciefw.sim_cycle", "-e", "pciefw.sim_time_ns",
                            "-Y", "pciefw.sim_time_ns"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        assert r.returncode == 0 and "Lua Error" not in r.stdout, r.stdout
        assert f"{ar // PERIOD_NS}\t{ar}" in r.stdout.splitlines(), r.stdout

    irq = [n for n in ns if n.startswith("rtl: MSI-X vector 2")]
    req, ack = cycles(irq[0], "irq_req", "irq_ack")
    assert w.before("irq_req", req) == 1 and w.before("irq_ack", req) == 0
    assert w.before("irq_req", ack) == 1 and w.before("irq_ack", ack) == 1
    assert w.before("irq_vector", ack) == 2 and w.before("irq_msi", ack) == 0


@pytest.mark.parametrize("lang", LANGS)
def test_idle_design_costs_no_cpu(harness, lang):
    """Once the guest stops touching it, the simulation sleeps: it spends
    (almost) no CPU, and simulated time stands still."""
    ep, q, d = run(harness, lang)
    assert d.reg(0) == 0x7E57DE01
    pid = rtllib.sim_pid(ep)
    time.sleep(0.3)                     # its spin budget runs out
    cpu0, wall0 = rtllib.cpu_seconds(pid), time.monotonic()
    time.sleep(1.0)
    cpu = rtllib.cpu_seconds(pid) - cpu0
    wall = time.monotonic() - wall0
    print(f"{lang}: idle simulation used {cpu * 1000:.0f} ms of CPU in "
          f"{wall * 1000:.0f} ms")
    assert cpu < 0.05 * wall, (cpu, wall)
    assert d.reg(0) == 0x7E57DE01


def stats(ep):
    m = re.findall(r"(\d+) cycles simulated", ep.output())
    assert m, ep.output()
    return int(m[-1])


@pytest.mark.parametrize("mode", ["on-demand", "free-running"])
def test_clock_modes(harness, mode):
    """On demand, idle wall time adds no cycles; free-running (at most 1
    cycle per µs here) the clock runs while nobody touches the design."""
    opts = "cycles-per-us=1" if mode == "free-running" else ""
    ep, q, d = run(harness, "verilog", opts)
    assert d.reg(0) == 0x7E57DE01
    q.stop()
    wait_for(lambda: ep.output().count("host gone") == 1, what="the first host gone")
    before = stats(ep)
    time.sleep(0.5)
    _, q2, d2 = start(harness, endpoint=ep)
    assert d2.reg(0) == 0x7E57DE01
    q2.stop()
    wait_for(lambda: ep.output().count("host gone") == 2, timeout=30,
             what="the second host gone")
    grown = stats(ep) - before
    print(f"{mode}: {grown} cycles across 0.5 s of idle and one session")
    if mode == "on-demand":
        assert grown < 5000, grown
    else:
        assert grown > 20000, grown


@pytest.mark.parametrize("lang,ext,magic", [
    ("verilog", "fst", b""), ("vhdl", "ghw", b"GHDLwave"), ("vhdl", "fst", b"")])
def test_wave_formats(harness, lang, ext, magic):
    """FST from Verilator (a build of its own), GHW and FST from GHDL."""
    wave = harness.path(f"w.{ext}")
    ep, q, d = run(harness, lang, f"wave={wave}")
    assert d.reg(0) == 0x7E57DE01
    q.stop()
    assert ep.stop() == 0
    assert os.path.getsize(wave) > 100
    with open(wave, "rb") as f:
        assert f.read(len(magic)) == magic


@pytest.mark.parametrize("lang,src", [("verilog", "hdl/verilog/pf_minimal.v"),
                                      ("vhdl", "hdl/vhdl/pf_minimal.vhd")])
def test_skeleton(harness, lang, src):
    """The skeletons docs/hdl.md 3 starts from: a register that reads back
    under byte strobes, a constant, and the identity given as options."""
    ep = harness.endpoint(device=rtllib.device(
        f"hdl-{lang},src={rtllib.REPO / src},device=0xbeef"))
    _, q, d = start(harness, endpoint=ep)
    assert d.cfg(0x00) == 0xBEEF1234
    bar0 = d.bars[0].addr
    assert d.qt.readl(bar0 + 4) == 0x600DCAFE
    d.qt.writel(bar0, 0x11223344)
    d.qt.writeb(bar0 + 2, 0xAB)
    assert d.qt.readl(bar0) == 0x11AB3344
    assert d.qt.readq(bar0) == 0x600DCAFE11AB3344


@pytest.mark.parametrize("ext", ["v", "vhd"])
def test_two_bars(harness, ext):
    """A design with AXI4-Lite windows on BAR0 and BAR2, and the MSI-X table
    in BAR1: each access reaches its own port."""
    lang = "verilog" if ext == "v" else "vhdl"
    ep = harness.endpoint(device=rtllib.device(
        f"hdl-{lang},src={rtllib.HOSTILE / ('two_bars.' + ext)},bar2=64K"))
    _, q, d = start(harness, endpoint=ep)
    assert d.bars[2].size == 64 * 1024 and d.bars[1].size == 4096
    b0, b2 = d.bars[0].addr, d.bars[2].addr
    assert d.qt.readl(b0) == 0xBA400000 and d.qt.readl(b2) == 0xBA420000
    d.qt.writel(b0 + 4, 0x1111)
    d.qt.writel(b2 + 4, 0x2222)
    assert d.qt.readl(b0 + 4) == 0x1111 and d.qt.readl(b2 + 4) == 0x2222
    assert d.qt.readl(d.bars[1].addr + 0x900) == 0xFFFFFFFF     # no window
