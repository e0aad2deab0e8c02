"""The pciefw QEMU device against a hostile guest and hostile or stuck
endpoints (issue 10 of the review): re-entry through the device's own BARs
and config space, reconnection that must not block the main loop, memory
bounded against a peer that never reads, and no interrupt left asserted by
an endpoint that is refused.

Each test starts its own endpoint (the real one, or a scripted peer from
pfwire.py where the point is what no real endpoint sends) and QEMU under
qtest on UNIX sockets in a private directory.
"""

import errno
import os
import re
import signal
import threading
import time

import pytest

import pfwire
from pfwire import ScriptedEndpoint
from test_qemu_device import (ALL_ONES, RAM_A, RAM_B, TOPOLOGIES,
                              DeviceUnderTest, start, wait_for)
from testdev_map import ID, REG_ID, REG_INTX, ST_DONE, ST_ERROR

# q35: where the tests put the MMCONFIG window (MCH PCIEXBAR, 256 buses).
MMCONFIG_BASE = 0xB0000000
MCH_PCIEXBAR = 0x60


def _scripted(harness, greeting=None, topo="q35-rootbus", dev_opts="",
              extra=(), collect_fds=False, rings=False):
    """A scripted endpoint and QEMU with the device on q35's root bus."""
    path = harness.path("peer.sock")
    peer = harness.track(ScriptedEndpoint(path, greeting,
                                          collect_fds=collect_fds, rings=rings))
    t = TOPOLOGIES[topo]
    dev = f"pciefw,id=fw0,path={path},bus={t['bus']}"
    if t["addr"]:
        dev += f",addr={t['addr']}"
    if dev_opts:
        dev += "," + dev_opts
    q = harness.qemu(t["machine"] + t["extra"] + list(extra) + ["-device", dev])
    return peer, q, DeviceUnderTest(q, t)


def _completion(peer, tag):
    return peer.wait_for(lambda m: m.kind == pfwire.COMPLETION and m.get(1) == tag,
                         what=f"completion of tag {tag}")


def _rss_peak_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise AssertionError("no VmHWM")


# ---------------------------------------------------------------------------
# Guest RAM shared with an endpoint that shrinks it (spec 10.2)

GUEST_RAM = {
    "file": ["-object", "memory-backend-file,id=mem,size=128M,share=on,"
             "mem-path={dir}/ram"],
    "memfd-unsealed": ["-object",
                       "memory-backend-memfd,id=mem,size=128M,share=on,seal=off"],
    "memfd-sealed": ["-object", "memory-backend-memfd,id=mem,size=128M,share=on"],
}


@pytest.mark.parametrize("ram", sorted(GUEST_RAM))
def test_endpoint_truncating_guest_ram(harness, ram):
    """An endpoint that negotiates guest memory and truncates every fd it
    is given must not kill QEMU (SIGBUS on its next guest-RAM access):
    QEMU shares only files sealed against shrinking, and says once why it
    shares nothing else."""
    greeting = pfwire.hello(minor=1, features=3 | pfwire.FEATURE_GUEST_MEMORY,
                            max_payload=65536) + pfwire.description()
    backing = [a.format(dir=harness.workdir) for a in GUEST_RAM[ram]]
    peer, q, d = _scripted(harness, greeting, collect_fds=True,
                           extra=backing + ["-M", "q35,memory-backend=mem"])
    peer.wait_for(lambda m: m.kind == pfwire.KINDS["memory_map"],
                  what="QEMU's memory map")
    truncated = 0
    for fd in list(peer.fds):
        try:
            os.ftruncate(fd, 0)
            truncated += 1
        except OSError as e:
            assert e.errno == errno.EPERM, e
    # QEMU touches guest RAM (qtest writes and reads through its mapping).
    d.qt.writel(RAM_A, 0x600DF00D)
    assert d.qt.readl(RAM_A) == 0x600DF00D
    assert q.alive(), q.output()
    assert truncated == 0
    if ram == "memfd-sealed":
        assert peer.fds, "sealed guest RAM is shared"
        assert "not shared with the endpoint" not in q.output()
    else:
        assert not peer.fds, peer.fds
        out = q.output()
        assert out.count("is not shared with the endpoint (the file is not "
                         "sealed against shrinking") == 1, out


# ---------------------------------------------------------------------------
# Every wait ends at its deadline, whatever the endpoint sends meanwhile

TIMEOUT_MS = 2000
# INTx up and down: cheap for the endpoint, handled one by one by QEMU.
INTX_FLOOD = b"".join(pfwire.intx(i % 2 == 0) for i in range(8192))


class _Flood(threading.Thread):
    """Keeps the ring to QEMU full of frames while the test runs."""

    def __init__(self, rings):
        super().__init__(daemon=True)
        self.rings = rings
        self.stopping = False
        self.sent = 0
        self.start()

    def run(self):
        view, at = memoryview(INTX_FLOOD), 0
        while not self.stopping:
            n = self.rings.write_some(view[at:])
            self.sent += n
            at = (at + n) % len(INTX_FLOOD)
            if not n:
                time.sleep(0.0002)

    def stop(self):
        self.stopping = True
        self.join(5)


class _QmpProbe(threading.Thread):
    """query-status every 0.2 s until stopped; the slowest answer is how
    long QEMU's main loop (and the BQL) was held."""

    def __init__(self, qmp):
        super().__init__(daemon=True)
        self.qmp = qmp
        self.stopping = False
        self.slowest = 0.0
        self.start()

    def run(self):
        while not self.stopping:
            t = time.monotonic()
            self.qmp.cmd("query-status")
            self.slowest = max(self.slowest, time.monotonic() - t)
            time.sleep(0.2)

    def stop(self):
        self.stopping = True
        self.join(30)


def _qtest_durations(out, command):
    """How long QEMU spent in each @command, from its qtest log: the time
    of the reply line minus that of the request line."""
    times, begun = [], None
    for line in out.splitlines():
        m = re.match(r"\[([RS]) \+([0-9.]+)\] (\S*)", line)
        if not m:
            continue
        if m.group(1) == "R":
            begun = float(m.group(2)) if m.group(3) == command else None
        elif begun is not None:
            times.append(float(m.group(2)) - begun)
            begun = None
    return times


@pytest.mark.parametrize("wait", ["mem-read", "reset", "posted-drain"])
def test_flooding_endpoint_does_not_hold_the_vcpu(harness, wait):
    """An endpoint that leaves a request unanswered (a MemRead, a Reset)
    or its posted writes unread, and keeps the ring to QEMU full of
    frames, holds the vCPU and the BQL only until the timeout: the wait
    ends at its deadline (the guest's read returns all ones within
    timeout + 1 s), and QMP is never kept waiting longer than that
    (spec 7.2)."""
    greeting = pfwire.hello(minor=2, features=3 | pfwire.FEATURE_SHM_RINGS,
                            max_payload=65536) + pfwire.description(
                                bars=pfwire.bar(0, 1 << 20))
    peer, q, d = _scripted(harness, greeting, rings=True,
                           dev_opts=f"timeout={TIMEOUT_MS}")
    assert peer.rings, "QEMU did not move to the rings"
    bar0 = d.bars[0].addr
    bound = TIMEOUT_MS / 1000 + 1.0
    if wait == "mem-read":
        peer.unanswered.add(pfwire.MEM_READ)
    elif wait == "reset":
        peer.unanswered.add(pfwire.RESET)
    else:
        peer.reading = False
    flood = harness.track(_Flood(peer.rings))
    probe = harness.track(_QmpProbe(q.qmp))
    if wait == "mem-read":
        t0 = time.monotonic()
        assert d.qt.readl(bar0) == ALL_ONES[4]
        assert time.monotonic() - t0 <= bound
    elif wait == "reset":
        # Requested here, the reset runs from the main loop.
        q.qmp.cmd("system_reset")
        wait_for(lambda: "completion timeout" in q.output(), 60,
                 "the reset's completion timeout")
    else:
        # 1 MiB of posted writes fills the ring, the next 1 MiB our
        # queue; the write that finds it full waits for room.
        chunk = bytes(range(256)) * 256
        for _ in range(64):
            d.qt.b64write(bar0, chunk)
            if "completion timeout" in q.output():
                break
        assert max(_qtest_durations(q.output(), "b64write")) <= bound
    time.sleep(0.5)             # one more probe after the wait
    probe.stop()
    flood.stop()
    assert flood.sent > (1 << 20), flood.sent
    assert probe.slowest <= bound, \
        f"{wait}: QMP waited {probe.slowest:.1f} s for an answer"
    assert q.alive()
    assert "completion timeout" in q.output(), q.output()[-2000:]


# ---------------------------------------------------------------------------
# Re-entry: device accesses while the device handles its endpoint's messages

def test_guest_dma_from_the_device_itself(harness):
    """A guest alone, with the stock endpoint: testdev copies from its own
    BAR0.  The DMA read reaches the device while it serves the endpoint's
    DmaRead, so it fails as a real bus fails it, and QEMU lives on."""
    ep, q, d = start(harness)
    qt = d.qt
    qt.memset(RAM_B, 16, 0x5A)
    d.set_reg(0x28, ST_DONE | ST_ERROR)                 # DMA_STATUS: clear
    qt.writeq(d.bars[0].addr + 0x10, d.bars[0].addr)     # DMA_SRC: own BAR0
    qt.writeq(d.bars[0].addr + 0x18, RAM_B)              # DMA_DST: RAM
    d.set_reg(0x20, 4)                                   # DMA_LEN
    d.set_reg(0x24, 1)                                   # DMA_CMD: START
    # Let the endpoint's DmaRead reach an idle QEMU (its main loop, not a
    # guest access already waiting): the path that used to crash.
    time.sleep(0.5)
    assert q.alive(), q.output()
    st = d.reg(0x28)
    assert st & ST_ERROR and not st & 1, hex(st)
    assert qt.read(RAM_B, 4) == b"\x5a" * 4
    assert d.reg(REG_ID) == ID
    assert q.alive()


def test_endpoint_dma_onto_its_own_bar(harness):
    peer, q, d = _scripted(harness)
    qt = d.qt
    bar0 = d.bars[0].addr
    qt.memset(RAM_A, 8, 0x77)
    peer.send(pfwire.dma_read(0x1001, bar0, 4))
    assert _completion(peer, 0x1001).get(2) == pfwire.CA
    # A DmaWrite onto the BAR is dropped, not forwarded back as MemWrite.
    peer.send(pfwire.dma_write(bar0 + 8, b"\x01\x02\x03\x04"))
    # Memory is still served, in order after the refused accesses.
    peer.send(pfwire.dma_read(0x1002, RAM_A, 8))
    c = _completion(peer, 0x1002)
    assert c.get(2) == pfwire.SC and c.get(3) == b"\x77" * 8
    assert not [m for m in peer.received if m.kind == pfwire.MEM_WRITE]
    assert q.alive()
    # The guest's own accesses still work.
    assert qt.readl(bar0) == 0


def test_endpoint_dma_onto_config_space(harness):
    """MMCONFIG is the CPU's window on configuration space: endpoint DMA
    never reaches it (docs/protocol.md 3.2), reads or writes."""
    peer, q, d = _scripted(harness)
    qt = d.qt
    d.pci.write((0, 0, 0), MCH_PCIEXBAR + 4, 0)
    d.pci.write((0, 0, 0), MCH_PCIEXBAR, MMCONFIG_BASE | 1)
    bus, dev, fn = d.bdf
    cfg = MMCONFIG_BASE + (bus << 20 | dev << 15 | fn << 12)
    # The window works for the CPU ...
    assert qt.readl(cfg) == d.cfg(0)
    # ... not for the device: a forwarded register (0x40) and the header.
    for tag, off in ((0x2001, 0x40), (0x2002, 0x0)):
        peer.send(pfwire.dma_read(tag, cfg + off, 4))
        assert _completion(peer, tag).get(2) == pfwire.CA
    command = d.cfg(0x04, 2)
    peer.send(pfwire.dma_write(cfg + 0x04, b"\x00\x00"))
    peer.send(pfwire.dma_read(0x2003, RAM_A, 4))
    assert _completion(peer, 0x2003).get(2) == pfwire.SC
    assert d.cfg(0x04, 2) == command
    assert q.alive()


# ---------------------------------------------------------------------------
# Reconnection

def test_reconnect_to_a_stopped_endpoint_keeps_qemu_responsive(harness):
    """A stopped endpoint never accepts: each attempt's connection stays in
    its listen backlog (8 here) until connect() would block.  Attempts are
    non-blocking, so the monitor keeps answering throughout."""
    ep = harness.endpoint()
    t = TOPOLOGIES["q35-rootbus"]
    q = harness.qemu(t["machine"] + [
        "-trace", "pciefw_reconnect_attempt", "-device",
        f"pciefw,id=fw0,path={ep.listen[5:]},bus=pcie.0,addr={t['addr']},"
        "reconnect=1,timeout=300"])
    d = DeviceUnderTest(q, t)
    assert d.reg(REG_ID) == ID
    os.kill(ep.pid, signal.SIGSTOP)
    try:
        assert d.reg(REG_ID) == ALL_ONES[4]              # lost: timed out
        q.qmp.timeout = 5.0
        worst, deadline = 0.0, time.monotonic() + 60
        # 9 connections fill a backlog of 8; go well past that.
        while q.output().count("pciefw_reconnect_attempt") < 14:
            assert time.monotonic() < deadline, q.output()
            t0 = time.monotonic()
            q.qmp.cmd("query-status")
            worst = max(worst, time.monotonic() - t0)
            time.sleep(0.2)
        assert worst < 1.0, f"the monitor took {worst:.2f} s to answer"
        assert d.reg(REG_ID) == ALL_ONES[4]
    finally:
        os.kill(ep.pid, signal.SIGCONT)
    assert q.alive()


def test_refused_reconnect_leaves_nothing_applied(harness):
    """An endpoint that comes back describing another device, with an
    INTx assertion and a DMA write right behind its description: refused,
    and nothing it sent takes effect."""
    ep, q, d = start(harness, "q35-rootport", dev_opts="reconnect=1")
    qt = d.qt
    qt.irq_intercept_in("ioapic")
    qt.memset(RAM_A, 64, 0x11)
    # INTx asserted by the endpoint goes down with the endpoint.
    d.set_reg(REG_INTX, 1)
    wait_for(lambda: (qt.poll_async(0.05), any(qt.irq_level.values()))[1],
             what="INTx assert")
    (pin,) = [p for p, lvl in qt.irq_level.items() if lvl]
    ep.kill()
    assert d.reg(REG_ID) == ALL_ONES[4]
    qt.wait_irq(pin, False)

    path = ep.listen[len("unix:"):]
    os.unlink(path)
    impostor = harness.track(ScriptedEndpoint(
        path, pfwire.hello(features=0, max_payload=65536)
        + pfwire.description(device=0xBEEF)
        + pfwire.intx(True) + pfwire.dma_write(RAM_A, b"\x99" * 64)))
    wait_for(lambda: "different device" in q.output(), timeout=30,
             what="the refusal")
    assert impostor.wait_closed(30)
    qt.poll_async(0.3)
    assert not qt.irq_level.get(pin), qt.irq_events
    assert qt.read(RAM_A, 64) == b"\x11" * 64
    assert q.alive()


# ---------------------------------------------------------------------------
# Memory

def test_dma_reads_from_a_peer_that_never_reads(harness):
    """An endpoint sends DmaReads of 64 KiB and never reads the
    completions: QEMU fails the connection with ERROR_LIMIT once its
    unread output passes the limit of docs/protocol.md 5.4, instead of
    growing without bound."""
    peer, q, d = _scripted(harness)
    qt = d.qt
    assert qt.readl(d.bars[0].addr) == 0                 # the session works
    before = _rss_peak_kib(q.proc.pid)
    peer.reading = False
    batch = b"".join(pfwire.dma_read(i, RAM_A, 65536) for i in range(1000))
    sent = 0
    try:
        for _ in range(20):                              # 1.3 GB of answers
            peer.send(batch)
            sent += 1000
    except OSError:
        pass
    wait_for(lambda: "ERROR_LIMIT" in q.output() or "MiB" in q.output(),
             timeout=60, what="the limit error")
    growth = _rss_peak_kib(q.proc.pid) - before
    assert growth < 160 * 1024, f"QEMU grew by {growth} KiB ({sent} reads sent)"
    assert q.alive()
    assert qt.readl(d.bars[0].addr) == ALL_ONES[4]       # the device is down
    errs = [l for l in q.output().splitlines() if "pciefw" in l]
    assert len(errs) == 1 and "32 MiB" in errs[0], errs


# ---------------------------------------------------------------------------
# Reset

class _DmaDuringReset(ScriptedEndpoint):
    """Answers a Reset only after a DMA write and an INTx assertion, as a
    function that still had work in flight when the reset came (from
    the moment the test arms it)."""

    dma_on_reset = False

    def _handle(self, m):
        if m.kind == pfwire.RESET and self.dma_on_reset:
            self.send(pfwire.dma_write(RAM_B, b"\x66" * 16) + pfwire.intx(True))
        super()._handle(m)


def test_no_dma_or_interrupt_during_function_reset(harness):
    """An FLR clears bus mastering: DMA and interrupts the endpoint sends
    while it resets are refused, not applied."""
    path = harness.path("peer.sock")
    peer = harness.track(_DmaDuringReset(path))
    t = TOPOLOGIES["q35-rootport"]
    q = harness.qemu(t["machine"] + t["extra"] + [
        "-device", f"pciefw,id=fw0,path={path},bus={t['bus']}"])
    d = DeviceUnderTest(q, t)
    qt = d.qt
    qt.irq_intercept_in("ioapic")
    qt.memset(RAM_B, 16, 0x11)
    peer.dma_on_reset = True
    exp = d.pci.caps(d.bdf)[0x10]
    d.cfg_write(exp + 8, d.cfg(exp + 8, 2) | 0x8000, 2)    # DEVCTL: FLR
    peer.wait_for(lambda m: m.kind == pfwire.RESET and m.get(2) == 1,
                  what="the function-level Reset")
    qt.poll_async(0.3)
    assert qt.read(RAM_B, 16) == b"\x11" * 16
    assert not any(qt.irq_level.values()), qt.irq_events
    assert q.alive()


# ---------------------------------------------------------------------------
# A hostile endpoint mid-session (issue 12): QEMU neither crashes nor hangs,
# touches no memory outside the guest's, reports each fault once, and the
# guest keeps running.

NOWHERE = 0x100000000000            # no memory, no device
OTHER_BAR = 0xC1000000              # QEMU's pci-testdev, BAR0 (MMIO)


def _qemu_answers(q):
    t0 = time.monotonic()
    q.qmp.cmd("query-status")
    return time.monotonic() - t0 < 5


def _warnings(q, text):
    return [l for l in q.output().splitlines() if text in l]


def test_dma_outside_memory_is_refused_and_reported_once(harness):
    peer, q, d = _scripted(harness)
    qt = d.qt
    qt.memset(RAM_A, 16, 0x5C)
    peer.send(b"".join(pfwire.dma_read(0x3000 + i, NOWHERE + 4096 * i, 64)
                       for i in range(500)))
    peer.send(b"".join(pfwire.dma_write(NOWHERE + 64 * i, b"\xEE" * 64)
                       for i in range(500)))
    peer.send(pfwire.dma_read(0x4000, RAM_A, 16))
    assert _completion(peer, 0x4000).get(3) == b"\x5C" * 16
    cpl = [m for m in peer.received if m.kind == pfwire.COMPLETION
           and 0x3000 <= m.get(1) < 0x3000 + 500]
    assert len(cpl) == 500 and all(m.get(2) == pfwire.CA for m in cpl)
    assert len(_warnings(q, "outside memory and devices")) == 1, q.output()
    assert qt.readl(d.bars[0].addr) == 0                # still in session
    assert _qemu_answers(q)


def test_dma_to_another_devices_mmio(harness):
    """Peer to peer is what DMA may do: served, nothing breaks."""
    peer, q, d = _scripted(harness, extra=["-device", "pci-testdev,addr=0x5"])
    d.pci.write((0, 5, 0), 0x10, OTHER_BAR)
    d.pci.write((0, 5, 0), 0x04, 0x2, 2)                 # memory decoding on
    peer.send(pfwire.dma_read(0x5000, OTHER_BAR, 4))
    c = _completion(peer, 0x5000)
    assert c.get(2) == pfwire.SC and len(c.get(3)) == 4
    assert d.qt.readl(OTHER_BAR) == int.from_bytes(c.get(3), "little")
    assert q.alive() and _qemu_answers(q)


def test_interrupt_faults_are_ignored_and_reported_once(harness):
    greeting = pfwire.hello(features=0, max_payload=65536) + pfwire.description(
        intx_pin=0, extra=pfwire.field_varint(8, 2) + pfwire.field_varint(9, 4)
        + pfwire.field_varint(10, 0) + pfwire.field_varint(11, 0x800)
        + pfwire.field_varint(12, 0) + pfwire.field_varint(13, 0xC00))
    peer, q, d = _scripted(harness, greeting)
    qt = d.qt
    qt.irq_intercept_in("ioapic")
    d.setup_msix(0, 0x03000000, 0x1234)
    flood = b"".join(pfwire.msix(100 + i) + pfwire.message(pfwire.MSI, (1, 7))
                     + pfwire.intx(i & 1) for i in range(1000))
    peer.send(flood)
    peer.send(pfwire.dma_read(0x6000, RAM_A, 4))        # all handled before
    _completion(peer, 0x6000)
    assert len(_warnings(q, "MSI-X vector")) == 1, q.output()
    assert len(_warnings(q, "no interrupt pin")) == 1, q.output()
    assert len(_warnings(q, "warning")) == 2, q.output()  # MSI: same kind
    assert not any(qt.irq_level.values()), qt.irq_events
    # A valid vector still works.
    qt.writel(0x03000000, 0)
    peer.send(pfwire.msix(0))
    wait_for(lambda: qt.readl(0x03000000) == 0x1234, what="MSI-X vector 0")
    assert _qemu_answers(q)


@pytest.mark.parametrize("case", ["unknown-tag", "second-completion",
                                  "wrong-size", "absurd-length"])
def test_session_ending_faults(harness, case):
    """Faults that end the session: one line, the device is gone, the
    guest and the monitor carry on."""
    peer, q, d = _scripted(harness)
    qt = d.qt
    if case == "unknown-tag":
        peer.send(pfwire.completion(0x7777, pfwire.SC))
    elif case == "second-completion":
        assert qt.readl(d.bars[0].addr) == 0
        read = peer.wait_for(lambda m: m.kind == pfwire.MEM_READ, what="MemRead")
        peer.send(pfwire.completion(read.get(1), pfwire.SC, b"\0" * 4))
    elif case == "wrong-size":
        peer.answer_reads_with = b"\1\2"
    elif case == "absurd-length":
        peer.send(pfwire.dma_read(0x8000, RAM_A, 0xFFFFFFFF))
    if case == "wrong-size":
        assert qt.readl(d.bars[0].addr) == ALL_ONES[4]
    else:
        assert peer.wait_closed(30)
    assert qt.readl(d.bars[0].addr) == ALL_ONES[4]
    errs = [l for l in q.output().splitlines() if "pciefw" in l]
    assert len(errs) == 1 and "protocol error" in errs[0], errs
    assert q.alive() and _qemu_answers(q)


def test_dma_write_flood(harness):
    """20000 DmaWrites of 64 KiB (1.25 GiB): applied in order, the monitor
    answers throughout, the last write wins."""
    peer, q, d = _scripted(harness)
    qt = d.qt
    chunk = bytes(range(256)) * 256
    batch = b"".join(pfwire.dma_write(RAM_A + 65536 * (i % 16), chunk)
                     for i in range(1000))
    for _ in range(20):
        peer.send(batch)
        assert _qemu_answers(q)
    peer.send(pfwire.dma_write(RAM_A, b"last") + pfwire.dma_read(0x9000, RAM_A, 4))
    assert _completion(peer, 0x9000).get(3) == b"last"
    assert qt.read(RAM_A + 65536, 16) == chunk[:16]
