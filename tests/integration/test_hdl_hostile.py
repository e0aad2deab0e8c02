"""Broken RTL behind the RTL bridge (docs/hdl.md 9), through the real QEMU
(qtest): a design that never answers a read, one held in reset, one whose
DMA goes where there is no guest memory, one that asks for a vector the
function does not have, one that ends its simulation.  Each time the
endpoint lives on and says what happened in one line that names the BAR
and offset or the port, and the cycle; the guest reads all ones or the DMA
fails as a bus would.  The designs are in tests/hdl/."""

import re

import rtllib
from test_qemu_device import (CAP_EXP, MSI_LAND, RAM_A, start, wait_for)

ALL_ONES = 0xFFFFFFFF
OKAY, SLVERR, DECERR = 0, 2, 3


def run(harness, design, opts=""):
    ep = harness.endpoint(device=rtllib.hostile(design, opts))
    return start(harness, endpoint=ep)


def warnings(ep, text):
    return [l for l in ep.output().splitlines() if " warn: " in l and text in l]


def flr(d):
    exp = d.pci.caps(d.bdf)[CAP_EXP]
    d.cfg_write(exp + 8, d.cfg(exp + 8, 2) | 0x8000, 2)
    d.enumerate()


def test_read_never_answered(harness):
    """A read whose address is never taken completes Unsupported Request
    after the watchdog's cycles, and the bus goes on.  A read the design
    took and never answered does too; but its answer may yet come, and
    AXI4-Lite has no IDs to tell it from another's, so the BAR's bus stays
    closed (reads all ones at once) until a reset: no read is ever given
    data that may be another's."""
    ep, q, d = run(harness, "never_answers")
    bar0 = d.bars[0].addr
    assert d.qt.readl(bar0) == 0x0BAD0000
    assert d.qt.readl(bar0 + 0x14) == ALL_ONES          # ARREADY never comes
    assert d.qt.readl(bar0 + 4) == 0x0BAD0004
    assert d.qt.readl(bar0 + 0x10) == ALL_ONES          # RVALID never comes
    assert d.qt.readl(bar0 + 8) == ALL_ONES             # the bus is closed
    flr(d)
    assert d.qt.readl(bar0 + 8) == 0x0BAD0008
    a, r = warnings(ep, "BAR0+0x14"), warnings(ep, "BAR0+0x10")
    assert len(a) == 1 and len(r) == 1, ep.output()
    assert "no ARREADY for 20000 cycles" in a[0] and "Unsupported Request" in a[0], a
    assert re.search(r"BAR0\+0x10: the design gave no RVALID for 20000 cycles \(the "
                     r"read was presented at cycle \d+ \(\d+ ns\)\), given up at cycle "
                     r"\d+ .*Unsupported Request", r[0]), r
    # The closed bus's refusal follows the line that said why: not repeated.
    assert not warnings(ep, "BAR0+0x8"), ep.output()
    assert ep.alive() and q.alive()


def test_design_held_in_reset(harness):
    """A design that never leaves reset takes no write and answers no read:
    the write is dropped after the watchdog, said once; the reads behind it
    read all ones, and do not wait the watchdog again."""
    ep, q, d = run(harness, "holds_reset")
    bar0 = d.bars[0].addr
    d.qt.writel(bar0 + 4, 0x1234)
    assert d.qt.readl(bar0 + 4) == ALL_ONES
    assert d.qt.readl(bar0) == ALL_ONES
    lines = [l for l in ep.output().splitlines() if "the design gave no" in l]
    assert len(lines) == 1 and " warn: " in lines[0], ep.output()
    assert re.search(r"BAR0\+0x4: the design gave no AWREADY for 20000 cycles .*"
                     r"cycle \d+.*the write is dropped", lines[0]), lines
    # A function-level reset asserts rst_n again: it does not help this one.
    flr(d)
    assert d.reg(0) == ALL_ONES
    assert ep.alive() and q.alive()


def test_dma_outside_guest_memory(harness):
    """DMA where the guest has no memory: a read the host refuses is SLVERR,
    one past 2^64 never leaves (DECERR), each said once with its cycle; a
    write there is posted and lost, as on a bus; then DMA works again."""
    ep, q, d = run(harness, "dma_outside")

    def burst(addr, go):
        done = d.reg(0xC) >> 16
        d.set_reg(0x0, addr & ALL_ONES)
        d.set_reg(0x4, addr >> 32)
        d.set_reg(0x8, go)
        wait_for(lambda: d.reg(0xC) >> 16 == done + 1, what="the burst")
        return d.reg(0xC)

    assert burst(0xFFF000000000, 1) & 3 == SLVERR
    assert burst(0xFFFFFFFFFFFFFFF0, 1) & 3 == DECERR
    assert burst(0xFFF000000000, 2) >> 8 & 3 == OKAY      # posted: lost
    assert burst(0xFFFFFFFFFFFFFFF0, 2) >> 8 & 3 == DECERR
    assert burst(RAM_A, 1) & 3 == OKAY
    refused = warnings(ep, "m_dma: the 64-byte read at 0xfff000000000")
    assert len(refused) == 1 and "answered SLVERR" in refused[0], ep.output()
    assert re.search(r"\(AR at cycle \d+ \(\d+ ns\)\)", refused[0]), refused
    wrapped = warnings(ep, "0xfffffffffffffff0")
    assert len(wrapped) == 2 and all("DECERR" in l for l in wrapped), ep.output()
    assert ep.alive() and q.alive()


def test_undeclared_vector(harness):
    """A thousand requests for MSI-X vector 300 of a function with 8: each
    acknowledged and dropped, said once with its cycle; the vector after
    them arrives."""
    ep, q, d = run(harness, "bad_vector")
    d.setup_msix(1, MSI_LAND, 0xB1)
    d.qt.writel(MSI_LAND, 0)
    d.set_reg(0, 1000)
    wait_for(lambda: d.qt.readl(MSI_LAND) == 0xB1, what="vector 1")
    assert d.reg(4) == 1001
    lines = [l for l in ep.output().splitlines() if "vector 300" in l]
    assert len(lines) == 1 and " warn: " in lines[0], ep.output()
    assert re.search(r"MSI-X vector 300 at cycle \d+ \(\d+ ns\).*8 declared", lines[0])
    assert ep.alive() and q.alive()


def test_simulation_ends(harness):
    """A design that calls $finish: the endpoint says so once, its BAR reads
    all ones, and a reset starts the simulation again."""
    ep, q, d = run(harness, "dies")
    assert d.reg(0) == 0x0A11FE
    d.set_reg(0, 1)
    ep.wait_log("the simulation exited with status 3")
    assert d.reg(0) == ALL_ONES
    flr(d)
    assert d.reg(0) == 0x0A11FE
    assert len(re.findall(r"rtl: simulating", ep.output())) == 2, ep.output()
    assert ep.alive() and q.alive()
