"""The pciefw QEMU device, driven through qtest, against the real endpoint
serving testdev (docs/testdev.md).

Each test starts its own pciefw-endpoint and QEMU (-accel qtest) on UNIX
sockets in a private directory; the harness fixture stops both by PID.
The tests do what firmware and a driver would: size and assign the BARs,
enable decoding and bus mastering, program MSI/MSI-X, then use testdev.
Every test runs twice: over the shared-memory rings (the default on a
UNIX socket, docs/protocol.md 11) and with every message on the socket.
"""

import os
import re
import signal
import socket
import subprocess
import struct
import threading
import time

import pytest

import pfwire
from qtest import QTestError

from testdev_map import *  # noqa: F401,F403  (docs/testdev.md)

# PCI config registers
PCI_COMMAND, PCI_STATUS = 0x04, 0x06
CMD_IO, CMD_MEM, CMD_MASTER = 1, 2, 4
CAP_PM, CAP_MSI, CAP_EXP, CAP_MSIX = 0x01, 0x05, 0x10, 0x11

# Where the tests put things (guest RAM is 128 MiB, PCI space above it).
MMIO_BASE = 0xC0000000
IO_BASE = 0xC000
RAM_A, RAM_B = 0x01000000, 0x02000000
MSI_LAND = 0x03000000

ALL_ONES = {1: 0xFF, 2: 0xFFFF, 4: 0xFFFFFFFF, 8: 0xFFFFFFFFFFFFFFFF}

# Device options start() adds: this module runs every test both ways.
TRANSPORT_OPTS = ""


@pytest.fixture(params=["rings", "socket"], autouse=True)
def transport(request):
    global TRANSPORT_OPTS
    TRANSPORT_OPTS = "" if request.param == "rings" else "shm-rings=off"
    yield request.param
    TRANSPORT_OPTS = ""

TOPOLOGIES = {
    # PCIe endpoint behind a root port of q35
    "q35-rootport": dict(
        machine=["-M", "q35"],
        extra=["-device", "pcie-root-port,id=rp0,bus=pcie.0,addr=0x2,chassis=1"],
        bus="rp0", addr=None, bdf=(1, 0, 0), bridge=(0, 2, 0), express=True),
    # Root-complex integrated endpoint on q35's root bus
    "q35-rootbus": dict(
        machine=["-M", "q35"], extra=[], bus="pcie.0", addr="0x4",
        bdf=(0, 4, 0), bridge=None, express=True),
    # Conventional PCI on i440fx
    "pc": dict(
        machine=["-M", "pc"], extra=[], bus="pci.0", addr="0x4",
        bdf=(0, 4, 0), bridge=None, express=False),
}


class Pci:
    """Configuration mechanism #1 (0xcf8/0xcfc) through qtest."""

    def __init__(self, qt):
        self.qt = qt

    @staticmethod
    def _cf8(bdf, off):
        bus, dev, fn = bdf
        return 0x80000000 | bus << 16 | dev << 11 | fn << 8 | (off & 0xFC)

    def read(self, bdf, off, size=4):
        self.qt.outl(0xCF8, self._cf8(bdf, off))
        port = 0xCFC + (off & 3)
        return {1: self.qt.inb, 2: self.qt.inw, 4: self.qt.inl}[size](port)

    def write(self, bdf, off, val, size=4):
        self.qt.outl(0xCF8, self._cf8(bdf, off))
        port = 0xCFC + (off & 3)
        {1: self.qt.outb, 2: self.qt.outw, 4: self.qt.outl}[size](port, val)

    def caps(self, bdf):
        """{cap id: offset} from the capability list."""
        out = {}
        if not self.read(bdf, PCI_STATUS, 2) & 0x10:
            return out
        ptr = self.read(bdf, 0x34, 1) & 0xFC
        while ptr and len(out) < 48:
            cid = self.read(bdf, ptr, 1)
            out[cid] = ptr
            ptr = self.read(bdf, ptr + 1, 1) & 0xFC
        return out


class Bar:
    def __init__(self, index, kind, size, prefetchable):
        self.index, self.kind, self.size = index, kind, size
        self.prefetchable = prefetchable
        self.addr = None


class DeviceUnderTest:
    """testdev behind the pciefw device, set up as firmware would."""

    def __init__(self, qemu, topo):
        self.qemu = qemu
        self.qt = qemu.qtest
        self.pci = Pci(self.qt)
        self.topo = topo
        self.bdf = topo["bdf"]
        self.enumerate()

    def enumerate(self):
        """Bus numbers and windows for the bridge, BAR sizing, addresses."""
        pci, bdf = self.pci, self.bdf
        br = self.topo["bridge"]
        if br:
            pci.write(br, 0x18, 0x00010100)               # pri 0, sec 1, sub 1
            pci.write(br, 0x1C, 0xC0, 1)                  # I/O base 0xc000
            pci.write(br, 0x1D, 0xC0, 1)                  # I/O limit 0xcfff
            pci.write(br, 0x20, 0xC0F0C000)               # mem 0xc0000000-0xc0ffffff
            pci.write(br, 0x24, 0x0000FFF0)               # no prefetchable window
            pci.write(br, 0x28, 0xFFFFFFFF)
            pci.write(br, 0x2C, 0)
            pci.write(br, PCI_COMMAND, CMD_IO | CMD_MEM | CMD_MASTER, 2)
        if self.topo["machine"][1] == "pc":
            # PIIX3 PIRQ[A-D] -> IRQ 11, so INTx reaches the IOAPIC.
            pci.write((0, 1, 0), 0x60, 0x0B0B0B0B)
        self.bars = self.size_bars()
        mem = MMIO_BASE
        io = IO_BASE
        for bar in sorted(self.bars.values(), key=lambda b: -b.size):
            off = 0x10 + 4 * bar.index
            if bar.kind == "io":
                bar.addr = io
                io += max(bar.size, 0x100)
                pci.write(bdf, off, bar.addr)
            else:
                bar.addr = mem
                mem += max(bar.size, 0x1000)
                pci.write(bdf, off, bar.addr & 0xFFFFFFFF)
                if bar.kind == "mem64":
                    pci.write(bdf, off + 4, bar.addr >> 32)
        self.enable(CMD_IO | CMD_MEM | CMD_MASTER)

    def size_bars(self):
        pci, bdf = self.pci, self.bdf
        bars = {}
        i = 0
        while i < 6:
            off = 0x10 + 4 * i
            pci.write(bdf, off, 0xFFFFFFFF)
            v = pci.read(bdf, off)
            if v == 0:
                i += 1
                continue
            if v & 1:
                size = (~(v & ~3) & 0xFFFF) + 1
                bars[i] = Bar(i, "io", size, False)
                i += 1
                continue
            pref = bool(v & 8)
            if (v >> 1) & 3 == 2:
                pci.write(bdf, off + 4, 0xFFFFFFFF)
                hi = pci.read(bdf, off + 4)
                full = (hi << 32) | (v & ~0xF)
                size = ((~full) & 0xFFFFFFFFFFFFFFFF) + 1
                bars[i] = Bar(i, "mem64", size, pref)
                i += 2
            else:
                size = ((~(v & ~0xF)) & 0xFFFFFFFF) + 1
                bars[i] = Bar(i, "mem32", size, pref)
                i += 1
        return bars

    def enable(self, bits):
        self.pci.write(self.bdf, PCI_COMMAND, bits, 2)

    def cfg(self, off, size=4):
        return self.pci.read(self.bdf, off, size)

    def cfg_write(self, off, val, size=4):
        self.pci.write(self.bdf, off, val, size)

    # BAR0 registers
    def reg(self, off):
        return self.qt.readl(self.bars[0].addr + off)

    def set_reg(self, off, val):
        self.qt.writel(self.bars[0].addr + off, val)

    def dma(self, src, dst, length, cmd_extra=0, timeout=60.0):
        """Run one DMA_CMD and wait until BUSY clears; returns DMA_STATUS."""
        self.set_reg(REG_DMA_STATUS, ST_DONE | ST_ERROR)
        self.qt.writeq(self.bars[0].addr + REG_DMA_SRC, src)
        self.qt.writeq(self.bars[0].addr + REG_DMA_DST, dst)
        self.set_reg(REG_DMA_LEN, length)
        self.set_reg(REG_DMA_CMD, DMA_START | cmd_extra)
        deadline = time.monotonic() + timeout
        while True:
            st = self.reg(REG_DMA_STATUS)
            if not st & ST_BUSY and st & (ST_DONE | ST_ERROR):
                return st
            assert time.monotonic() < deadline, f"DMA stuck, status {st:#x}"
            time.sleep(0.002)

    def setup_msix(self, vector, addr, data, masked=False):
        caps = self.pci.caps(self.bdf)
        cap = caps[CAP_MSIX]
        table = self.cfg(cap + 4)
        bar = self.bars[table & 7]
        entry = bar.addr + (table & ~7) + 16 * vector
        self.qt.writel(entry, addr & 0xFFFFFFFF)
        self.qt.writel(entry + 4, addr >> 32)
        self.qt.writel(entry + 8, data)
        self.qt.writel(entry + 12, 1 if masked else 0)
        ctrl = self.cfg(cap + 2, 2)
        self.cfg_write(cap + 2, (ctrl | 0x8000) & ~0x4000, 2)
        return entry

    def setup_msi(self, addr, data, vectors_log2):
        cap = self.pci.caps(self.bdf)[CAP_MSI]
        ctrl = self.cfg(cap + 2, 2)
        assert ctrl & 0x80, "MSI capability should be 64-bit"
        self.cfg_write(cap + 4, addr & 0xFFFFFFFF)
        self.cfg_write(cap + 8, addr >> 32)
        self.cfg_write(cap + 0xC, data, 2)
        self.cfg_write(cap + 2, (ctrl & ~0x70) | (vectors_log2 << 4) | 1, 2)
        return cap


def start(harness, topo_name="q35-rootport", dev_opts="", endpoint=None,
          ep_args=(), qemu_args=()):
    """An endpoint (unless given), QEMU with the device (and @qemu_args),
    and a DeviceUnderTest."""
    topo = TOPOLOGIES[topo_name]
    ep = endpoint or harness.endpoint(args=ep_args)
    sock = ep.listen[len("unix:"):]
    dev = f"pciefw,id=fw0,path={sock},bus={topo['bus']}"
    if topo["addr"]:
        dev += f",addr={topo['addr']}"
    for opts in (dev_opts, TRANSPORT_OPTS):
        if opts:
            dev += "," + opts
    q = harness.qemu(topo["machine"] + topo["extra"] + list(qemu_args) +
                     ["-device", dev])
    return ep, q, DeviceUnderTest(q, topo)


def _lines(out):
    """Non-empty output lines, without sanitizer notes ("==PID==...") that
    a QEMU built with --enable-asan prints at start-up."""
    return [l for l in out.splitlines()
            if l.strip() and not re.match(r"==\d+==", l)]


def wait_for(pred, timeout=10.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


# ---------------------------------------------------------------------------
# Start-up and properties

def test_help_lists_properties(qemu_binary, harness):
    rc, out = harness.run_qemu(["-device", "pciefw,help"])
    assert rc == 0, out
    for prop, words in [("raddr", "TCP host"), ("rport", "TCP port"),
                        ("path", "UNIX socket"), ("timeout", "timeout"),
                        ("reconnect", "reconnect"), ("trace", "record")]:
        line = next((l for l in out.splitlines()
                     if l.strip().startswith(prop + "=")), None)
        assert line, f"{prop} missing from:\n{out}"
        assert words in line, line


def test_unreachable_tcp_endpoint_fails_cleanly(harness):
    rc, out = harness.run_qemu(["-M", "q35", "-device",
                                "pciefw,raddr=127.0.0.1,rport=1"])
    assert rc != 0
    lines = _lines(out)
    assert len(lines) == 1, out
    assert "cannot connect" in lines[0] and "127.0.0.1:1" in lines[0], out
    assert "pciefw-endpoint --listen" in lines[0]


@pytest.mark.parametrize("opts, message", [
    ("", "socket is missing"),
    ("raddr=127.0.0.1", "raddr needs rport=PORT"),
    ("rport=7420", "rport needs raddr=HOST"),
    ("path=/tmp/x.sock,raddr=127.0.0.1,rport=7420", "not both"),
    ("path=/nonexistent/pciefw.sock", "cannot connect"),
    ("path=/tmp/x.sock,timeout=0", "timeout"),
    ("rport=70000,raddr=127.0.0.1", "rport"),
])
def test_bad_properties_refused(harness, opts, message):
    dev = "pciefw" + ("," + opts if opts else "")
    rc, out = harness.run_qemu(["-M", "q35", "-device", dev])
    assert rc != 0
    assert message in out, out
    assert len(_lines(out)) == 1, out


def test_bad_trace_path_refused(harness):
    ep = harness.endpoint()
    rc, out = harness.run_qemu(["-M", "q35", "-device",
                                f"pciefw,{ep.listen.replace('unix:', 'path=')},"
                                "trace=/nonexistent/dir/t.pcapng"])
    assert rc != 0 and "trace file" in out, out


class _FakePeer(threading.Thread):
    """Not an endpoint: accepts one connection on @path, sends @payload and
    records what QEMU sends until it closes.  For handshake failures only."""

    def __init__(self, path, payload):
        super().__init__(daemon=True)
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(1)
        self.payload = payload
        self.received = b""
        self.start()

    def run(self):
        self.srv.settimeout(20)
        try:
            conn, _ = self.srv.accept()
        except OSError:
            return
        conn.sendall(self.payload)
        conn.settimeout(10)
        try:
            while True:
                data = conn.recv(4096)
                if not data:
                    break
                self.received += data
        except OSError:
            pass
        conn.close()
        self.srv.close()

    def frames(self):
        out, buf = [], self.received
        while len(buf) >= 4:
            n = struct.unpack_from("<I", buf)[0]
            out.append(buf[4:4 + n])
            buf = buf[4 + n:]
        return out


def _fake_peer(path, payload):
    return _FakePeer(path, payload)


_varint = pfwire.varint
_field = pfwire.field_bytes


def _hello(major):
    return pfwire.hello(major, features=0, max_payload=65536)


def test_version_mismatch_refused(harness):
    path = harness.path("v2.sock")
    t = _fake_peer(path, _hello(2))
    rc, out = harness.run_qemu(["-M", "q35", "-device", f"pciefw,path={path}"])
    t.join(15)
    assert rc != 0
    assert "version mismatch" in out and "2.0" in out, out
    # QEMU said hello, then Error{ERROR_VERSION} (Message field 17, code 1).
    frames = t.frames()
    assert len(frames) == 2, frames
    assert frames[0][:1] == b"\x0a"
    assert frames[1][:4] == b"\x8a\x01" + bytes([len(frames[1]) - 3]) + b"\x08"
    assert frames[1][4] == 1 and b"version mismatch" in frames[1]


def _description(vendor=0x1234, extra=b""):
    """DeviceDescription: VENDOR:fe01, BAR0 mem32 4 KiB, INTA#, + @extra."""
    return pfwire.description(vendor=vendor, extra=extra)


@pytest.mark.parametrize("desc, message", [
    (_description(vendor=0xFFFF), "invalid vendor ID"),
    # BAR4 I/O, with the MSI-X table and PBA in it
    (_description(extra=_field(7, b"\x08\x04\x10\x02\x20\x20")
                  + b"\x48\x02\x50\x04\x58\x00\x60\x04\x68\x10"),
     "must be in memory BARs"),
    # 64 MSI-X vectors (1 KiB table) in a 4 KiB BAR at offset 0xf00
    (_description(extra=b"\x48\x40\x50\x00\x58" + _varint(0xF00)
                  + b"\x60\x00\x68\x00"),
     "cannot add MSI-X"),
], ids=["bad-vendor", "msix-in-io-bar", "msix-table-overflow"])
def test_impossible_description_refused(harness, desc, message):
    _assert_description_refused(harness, desc, message)


def _assert_description_refused(harness, desc, message):
    """QEMU refuses @desc at start-up with @message, in one line."""
    path = harness.path("desc.sock")
    t = _fake_peer(path, _hello(1) + desc)
    rc, out = harness.run_qemu(["-M", "q35", "-device", f"pciefw,path={path}"])
    t.join(15)
    assert rc != 0
    assert message in out, out
    assert len(_lines(out)) == 1, out


_D, _B, _V = pfwire.description, pfwire.bar, pfwire.field_varint
_MEM32, _MEM64, _IO = 0, 1, 2


@pytest.mark.parametrize("desc, message", [
    (_D(vendor=0), "invalid vendor ID 0x0000"),
    (_D(device=0x10000), "ID field wider than 16 bits"),
    (_D(class_code=0x1000000), "class code or revision out of range"),
    (_D(intx_pin=5), "INTx pin 5 (0..4 allowed)"),
    (_D(extra=_V(8, 3)), "MSI vector count 3 (1..32, power of two)"),
    (_D(extra=_V(8, 64)), "MSI vector count 64"),
    (_D(extra=_V(9, 2049)), "MSI-X vector count 2049 above 2048"),
    (_D(bars=_B(6, 4096)), "BAR index 6"),
    (_D(bars=_B(0, 8)), "BAR0: mem32 size 8"),
    (_D(bars=_B(0, 1 << 32)), "BAR0: mem32 size 4294967296"),
    (_D(bars=_B(5, 4096, _MEM64)), "BAR5 cannot be 64-bit"),
    (_D(bars=_B(2, 32, _IO, prefetchable=True)), "IO BAR cannot be prefetchable"),
    (_D(bars=_B(2, 512, _IO)), "BAR2: IO size 512 (4..256)"),
    (_D(bars=_B(0, 48)), "BAR0: size 48 is not a power of two"),
    (_D(bars=_B(0, 4096, _MEM64) + _B(1, 4096)), "BAR1 overlaps another BAR"),
    (_D(bars=_B(0, 4096) + _B(0, 4096)), "BAR0 overlaps another BAR"),
    (_D(extra=_V(9, 8) + _V(10, 2) + _V(12, 0)),
     "MSI-X table or PBA in an undeclared BAR"),
    (_D(extra=_V(9, 8) + _V(11, 4) + _V(13, 0x800)),
     "MSI-X table/PBA offsets must be 8-aligned"),
    (_D(bars=b"".join(_B(i, 4096) for i in range(6)) + _B(0, 4096)),
     "7 BARs declared"),
    (_D(bars=_B(0, 4096, _MEM64), extra=_V(9, 1) + _V(10, 1) + _V(12, 0)
        + _V(13, 0x800)), "MSI-X table or PBA in an undeclared BAR"),
    (_D(extra=_V(9, 1) + _V(11, 0xFFFFFFF8) + _V(13, 0x800)),
     "cannot add MSI-X: the MSI-X table (16 bytes at 0xfffffff8) does not fit"),
], ids=["vendor-0", "id-17-bits", "class-25-bits", "intx-pin-5", "msi-3",
        "msi-64", "msix-2049", "bar-index-6", "mem32-too-small",
        "mem32-too-large", "mem64-at-bar5", "io-prefetchable", "io-too-large",
        "size-not-pow2", "mem64-overlaps-next", "same-index-twice",
        "msix-undeclared-bar", "msix-misaligned", "seven-bars",
        "msix-in-mem64-upper-half", "msix-table-wraps-32-bits"])
def test_description_rules_refused(harness, desc, message):
    """Each rule of docs/protocol.md 4.2, broken alone, is refused by the
    real QEMU with its reason, in one line, and no device is created."""
    _assert_description_refused(harness, desc, message)


class _GarbageAfterReset(_FakePeer):
    """Handshakes correctly, then answers the first Reset with garbage."""

    def run(self):
        self.srv.settimeout(20)
        try:
            conn, _ = self.srv.accept()
        except OSError:
            return
        conn.sendall(_hello(1) + _description())
        conn.settimeout(10)
        try:
            while True:
                data = conn.recv(4096)
                if not data:
                    break
                self.received += data
                if any(f[:1] == b"\x7a" for f in self.frames()):   # Reset
                    conn.sendall(b"\x03\x00\x00\x00\xff\xff\xff")
        except OSError:
            pass
        conn.close()
        self.srv.close()


def test_garbage_mid_session(harness):
    """Garbage instead of a completion: reported once, QEMU carries on."""
    path = harness.path("junk2.sock")
    peer = _GarbageAfterReset(path, b"")
    q = harness.qemu(["-M", "q35", "-device",
                      f"pciefw,path={path},bus=pcie.0,addr=0x4"])
    pci = Pci(q.qtest)
    assert pci.read((0, 4, 0), 0) == 0x1234 | 0xFE01 << 16
    assert pci.read((0, 4, 0), 0x40) == 0xFFFFFFFF
    peer.join(15)
    errs = _errors(q)
    assert len(errs) == 1 and "protocol error" in errs[0], errs
    # QEMU told the peer why (Error, Message field 17).
    assert any(f[:2] == b"\x8a\x01" for f in peer.frames()), peer.frames()
    assert q.alive()


class _Refuse(_FakePeer):
    """Refuses QEMU with Error{ERROR_BUSY} in one of three orders:
    after-hello: reads QEMU's Hello first, then sends the Error and closes;
    unread: sends the Error and closes at once, reading nothing (QEMU's
    Hello may meet a closed socket); error-first: sends the Error, then
    reads QEMU's Hello, then closes."""

    def __init__(self, path, payload, order):
        self.order = order
        self.saw_hello = False
        super().__init__(path, payload)

    def _read_hello(self, conn):
        conn.settimeout(10)
        buf = b""
        while len(buf) < 4 or len(buf) < 4 + struct.unpack_from("<I", buf)[0]:
            data = conn.recv(4096)
            if not data:
                return
            buf += data
        self.saw_hello = buf[4:5] == b"\x0a"           # Message.hello

    def run(self):
        self.srv.settimeout(20)
        try:
            conn, _ = self.srv.accept()
        except OSError:
            return
        if self.order == "after-hello":
            self._read_hello(conn)
        conn.sendall(self.payload)
        if self.order == "error-first":
            self._read_hello(conn)
        conn.close()
        self.srv.close()


@pytest.mark.parametrize("order", ["after-hello", "unread", "error-first"])
def test_refusal_reason_reported(harness, order):
    """Whatever the order of QEMU's Hello and the peer's Error and close,
    the peer's reason reaches the user."""
    err = b"\x08\x04\x12\x09busy test"                 # code 4, text
    m = _field(17, err)
    path = harness.path("refuse.sock")
    t = _Refuse(path, struct.pack("<I", len(m)) + m, order)
    rc, out = harness.run_qemu(["-M", "q35", "-device", f"pciefw,path={path}"])
    t.join(15)
    assert rc != 0
    assert "ERROR_BUSY: busy test" in out, out
    assert t.saw_hello == (order != "unread")


def test_garbage_peer_refused(harness):
    path = harness.path("junk.sock")
    t = _fake_peer(path, b"\x05\x00\x00\x00hello, world\r\n" * 4)
    rc, out = harness.run_qemu(["-M", "q35", "-device",
                                f"pciefw,path={path},timeout=2000"])
    t.join(15)
    assert rc != 0
    assert "pciefw endpoint" in out and "protocol error" in out, out


def test_silent_peer_times_out(harness):
    path = harness.path("mute.sock")
    t = _fake_peer(path, b"")
    t0 = time.monotonic()
    rc, out = harness.run_qemu(["-M", "q35", "-device",
                                f"pciefw,path={path},timeout=500"])
    t.join(15)
    assert rc != 0 and "within 500 ms" in out, out
    assert time.monotonic() - t0 < 10


# ---------------------------------------------------------------------------
# Identity, BARs and capabilities

@pytest.mark.parametrize("topo", list(TOPOLOGIES))
def test_identity_and_bars(harness, topo):
    _, q, d = start(harness, topo)
    assert d.cfg(0x00, 2) == VENDOR
    assert d.cfg(0x02, 2) == DEVICE
    assert d.cfg(0x2C, 2) == SUBSYS_VENDOR
    assert d.cfg(0x2E, 2) == SUBSYS
    assert d.cfg(0x08) >> 8 == CLASS
    assert d.cfg(0x08, 1) == REVISION
    assert d.cfg(0x3D, 1) == 1                        # INTA#

    b = d.bars
    assert sorted(b) == [0, 1, 2, 4], b
    assert (b[0].kind, b[0].size, b[0].prefetchable) == ("mem32", 4096, False)
    assert (b[1].kind, b[1].size) == ("mem32", 4096)
    assert (b[2].kind, b[2].size, b[2].prefetchable) == ("mem64", 1 << 20, True)
    assert (b[4].kind, b[4].size) == ("io", 32)
    assert d.cfg(0x10 + 4 * 3) == 0                    # upper half of BAR2

    caps = d.pci.caps(d.bdf)
    assert CAP_MSI in caps and CAP_MSIX in caps, caps
    assert (CAP_EXP in caps) == TOPOLOGIES[topo]["express"], caps
    assert all(off >= 0x80 for off in caps.values()), caps
    msix = caps[CAP_MSIX]
    assert d.cfg(msix + 2, 2) & 0x7FF == 7              # 8 vectors
    assert d.cfg(msix + 4) == 0x000 | 1                 # table in BAR1 at 0
    assert d.cfg(msix + 8) == 0x800 | 1                 # PBA in BAR1 at 0x800
    msi = caps[CAP_MSI]
    assert (d.cfg(msi + 2, 2) >> 1) & 7 == 2            # 4 vectors requested
    assert q.alive()


@pytest.mark.parametrize("topo", list(TOPOLOGIES))
def test_mmio_and_io(harness, topo):
    _, q, d = start(harness, topo)
    qt = d.qt
    bar0, bar2, io = d.bars[0].addr, d.bars[2].addr, d.bars[4].addr

    assert qt.readl(bar0 + REG_ID) == ID
    assert qt.readl(bar0 + REG_SCRATCH) == 0
    qt.writel(bar0 + REG_SCRATCH, 0x12345678)
    assert qt.readl(bar0 + REG_SCRATCH) == 0x12345678
    assert qt.readl(bar0 + REG_INV) == 0xEDCBA987
    assert qt.readw(bar0 + REG_SCRATCH + 2) == 0x1234
    assert qt.readb(bar0 + REG_SCRATCH + 1) == 0x56
    qt.writeq(bar0 + REG_SCRATCH64, 0x0123456789ABCDEF)
    assert qt.readq(bar0 + REG_SCRATCH64) == 0x0123456789ABCDEF
    assert qt.readl(bar0 + REG_SCRATCH64 + 4) == 0x01234567

    # BAR2: RAM, every access size, 8-byte included
    qt.writeb(bar2 + 1, 0xAB)
    qt.writew(bar2 + 2, 0xCDEF)
    qt.writel(bar2 + 4, 0x11223344)
    assert qt.readl(bar2) == 0xCDEFAB00
    qt.writeq(bar2 + 0xFFFF8, 0xFEEDFACECAFEBEEF)
    assert qt.readq(bar2 + 0xFFFF8) == 0xFEEDFACECAFEBEEF
    assert qt.readq(bar2) == 0x11223344CDEFAB00
    data = bytes(range(256)) * 4
    qt.write(bar2 + 0x1000, data)
    assert qt.read(bar2 + 0x1000, len(data)) == data

    # BAR4: I/O
    assert qt.inl(io) == IO_ID
    qt.outl(io + 4, 0xA5A5F00D)
    assert qt.inl(io + 4) == 0xA5A5F00D
    qt.outw(io + 8, 0xBEEF)
    qt.outb(io + 0x1F, 0x7E)
    assert qt.inw(io + 8) == 0xBEEF
    assert qt.inb(io + 0x1F) == 0x7E
    assert qt.inb(io + 4) == 0x0D
    qt.outl(io, 0)                                      # IO_ID is read-only
    assert qt.inl(io) == IO_ID

    # BAR1 outside the MSI-X table and PBA is unsupported: all ones
    assert qt.readl(d.bars[1].addr + 0x400) == 0xFFFFFFFF
    assert q.alive()


def test_device_specific_config(harness):
    _, q, d = start(harness)
    assert d.cfg(0x40) == CFG_ID
    d.cfg_write(0x40, 0)                                 # read-only
    assert d.cfg(0x40) == CFG_ID
    for off in range(0x44, 0x80, 4):
        d.cfg_write(off, 0xC0DE0000 | off)
    for off in range(0x44, 0x80, 4):
        assert d.cfg(off) == 0xC0DE0000 | off
    d.cfg_write(0x45, 0x99, 1)
    assert d.cfg(0x44) == 0xC0DE9944
    assert d.cfg(0x46, 2) == 0xC0DE
    # The header stays QEMU's: the endpoint never sees it.
    assert d.cfg(0x00, 2) == VENDOR


def test_extended_config_forwarded(harness):
    """Offsets 0x100+ of a PCIe device reach the endpoint (via MMCONFIG)."""
    _, q, d = start(harness)
    qt = d.qt
    # q35: enable MMCONFIG at 0xb0000000 (PCIEXBAR, MCH config 0x60).
    d.pci.write((0, 0, 0), 0x64, 0)
    d.pci.write((0, 0, 0), 0x60, 0xB0000000 | 1)
    bus, dev, fn = d.bdf
    ecam = 0xB0000000 | bus << 20 | dev << 15 | fn << 12
    assert qt.readl(ecam) == VENDOR | DEVICE << 16
    assert qt.readl(ecam + 0x40) == CFG_ID
    assert qt.readl(ecam + 0x100) == 0                   # testdev: empty list
    qt.writel(ecam + 0x200, 0x12345678)                  # ignored, no crash
    assert qt.readl(ecam + 0x200) == 0
    assert q.alive()


# ---------------------------------------------------------------------------
# DMA

@pytest.mark.parametrize("size", [1, 4096, 1 << 20])
def test_dma_copy_through_guest_ram(harness, size):
    _, q, d = start(harness)
    qt = d.qt
    pattern = (bytes(range(251)) * (size // 251 + 1))[:size]
    qt.b64write(RAM_A, pattern)
    qt.memset(RAM_B, size + 16, 0xEE)
    st = d.dma(RAM_A, RAM_B, size)
    assert st & ST_DONE and not st & ST_ERROR, hex(st)
    assert qt.b64read(RAM_B, size) == pattern
    assert qt.b64read(RAM_B + size, 16) == b"\xee" * 16   # nothing beyond


def test_dma_fill_and_sum(harness):
    """DMA write only (FILL) and DMA read only (SUM)."""
    _, q, d = start(harness)
    qt = d.qt
    d.set_reg(REG_SCRATCH, 0x5A)
    st = d.dma(0, RAM_B, 8192, cmd_extra=1 << 4)
    assert st & ST_DONE, hex(st)
    assert qt.b64read(RAM_B, 8192) == b"\x5a" * 8192
    data = bytes([7]) * 1000 + bytes([1]) * 24
    qt.b64write(RAM_A, data)
    st = d.dma(RAM_A, 0, len(data), cmd_extra=2 << 4)
    assert st & ST_DONE, hex(st)
    assert d.reg(0x50) == sum(data)


def test_dma_refused_without_bus_master(harness):
    _, q, d = start(harness)
    qt = d.qt
    qt.memset(RAM_A, 64, 0x11)
    qt.memset(RAM_B, 64, 0x22)
    d.enable(CMD_IO | CMD_MEM)                       # Bus Master Enable off
    st = d.dma(RAM_A, RAM_B, 64)
    assert st & ST_ERROR, hex(st)
    assert qt.read(RAM_B, 64) == b"\x22" * 64
    # A FILL (posted DMA writes only) is dropped by the host side.
    d.set_reg(REG_SCRATCH, 0x33)
    d.dma(0, RAM_B, 64, cmd_extra=1 << 4)
    assert qt.read(RAM_B, 64) == b"\x22" * 64
    # Refused by the rule, not taken for an endpoint's fault (3.2).
    assert "outside memory" not in q.output(), q.output()
    d.enable(CMD_IO | CMD_MEM | CMD_MASTER)
    st = d.dma(RAM_A, RAM_B, 64)
    assert st & ST_DONE and not st & ST_ERROR, hex(st)
    assert qt.read(RAM_B, 64) == b"\x11" * 64
    # A DMA read of memory that does not exist is refused as well.
    st = d.dma(0x100000000000, RAM_B, 64)
    assert st & ST_ERROR, hex(st)


def test_side_effects_served_while_waiting(harness):
    """A read whose completion follows a DMA write, an MSI-X and a DMA read
    (the endpoint's deadlock-freedom test): all are served in order."""
    _, q, d = start(harness)
    qt = d.qt
    d.setup_msix(1, MSI_LAND, 0xA11CE)
    qt.writeq(RAM_A, 0x1122334455667788)
    qt.writeq(RAM_B, 0)
    qt.writel(MSI_LAND, 0)
    d.qt.writeq(d.bars[0].addr + REG_DMA_SRC, RAM_A)
    d.qt.writeq(d.bars[0].addr + REG_DMA_DST, RAM_B)
    for seq in (1, 2, 3):
        assert qt.readl(d.bars[0].addr + REG_SIDE_EFFECTS) == seq
        assert qt.readq(RAM_B) == seq                     # DMA write landed
        assert qt.readl(MSI_LAND) == 0xA11CE              # MSI-X delivered
        qt.writel(MSI_LAND, 0)
        # The DMA read was served before the completion: SCRATCH64 has
        # what RAM_A held at the time of the read.
        assert qt.readq(d.bars[0].addr + REG_SCRATCH64) == 0x1122334455667788 + seq - 1
        qt.writeq(RAM_A, 0x1122334455667788 + seq)


def test_fetch_completes_after_its_dma_read(harness):
    """The deadlock-freedom test of spec 5.3: FETCH's completion waits for
    the data of the DMA read it issues, so the read returns only because
    QEMU serves that DMA read while the vCPU waits for the completion."""
    _, q, d = start(harness)
    qt = d.qt
    bar0 = d.bars[0].addr
    for i in range(16):
        value = 0xF00D0000 | i << 8 | i
        qt.writel(RAM_A + 0x40 * i, value)
        qt.writeq(bar0 + REG_FETCH_ADDR, RAM_A + 0x40 * i)
        assert qt.readl(bar0 + REG_FETCH) == value
    # The value is read at the time of the access, not cached.
    qt.writel(RAM_A, 0x12345678)
    qt.writeq(bar0 + REG_FETCH_ADDR, RAM_A)
    assert qt.readl(bar0 + REG_FETCH) == 0x12345678
    # Bus mastering off: the DMA read is refused, and so is the register.
    d.enable(CMD_IO | CMD_MEM)
    assert qt.readl(bar0 + REG_FETCH) == 0xFFFFFFFF
    d.enable(CMD_IO | CMD_MEM | CMD_MASTER)
    assert qt.readl(bar0 + REG_FETCH) == 0x12345678
    assert d.reg(REG_ID) == ID and q.alive()


# ---------------------------------------------------------------------------
# Interrupts

def test_msix_delivery_masking_and_pending(harness):
    _, q, d = start(harness)
    qt = d.qt
    for v in range(8):
        d.setup_msix(v, MSI_LAND + 4 * v, 0x5000 + v)
    qt.memset(MSI_LAND, 64, 0)
    for v in (0, 3, 7):
        d.set_reg(REG_DOORBELL_MSIX, v)
        wait_for(lambda: qt.readl(MSI_LAND + 4 * v) == 0x5000 + v,
                 what=f"MSI-X vector {v}")
    assert qt.readl(MSI_LAND + 4) == 0

    # Masked: the vector becomes pending in the PBA and fires on unmask.
    entry = d.setup_msix(5, MSI_LAND + 0x40, 0x5555, masked=True)
    d.set_reg(REG_DOORBELL_MSIX, 5)
    pba = d.bars[1].addr + 0x800
    wait_for(lambda: qt.readq(pba) & (1 << 5), what="PBA bit 5")
    assert qt.readl(MSI_LAND + 0x40) == 0
    qt.writel(entry + 12, 0)
    assert qt.readl(MSI_LAND + 0x40) == 0x5555
    assert not qt.readq(pba) & (1 << 5)


def test_msix_access_across_an_edge_is_served_in_aligned_pieces(harness):
    """An 8-byte access across the end of the MSI-X table or an edge of the
    PBA (testdev: table 0x000-0x07f, PBA 0x800-0x807 of BAR1) reaches the
    device as two aligned 4-byte accesses, each served by its owner: the
    table or PBA in QEMU, the rest of BAR1 by the endpoint (unsupported
    request: all ones) -- as a CPU splits it into two transactions on real
    hardware.  QEMU's memory core hands a region that does not declare
    unaligned accesses only aligned ones, and the table and PBA edges are
    8-byte aligned, so the windows' refusal of an access straddling an edge
    (pciefw-msix.c, logged as a guest error) is never reached: with
    -d guest_errors it logs nothing, while QEMU's own refusal of a 1-byte
    table access shows that the log is on."""
    _, q, d = start(harness, qemu_args=["-d", "guest_errors,invalid_mem"])
    qt = d.qt
    bar1 = d.bars[1].addr
    # 0x7c is vector 7's control word, masked since reset; 0x80 is the
    # endpoint's.
    assert qt.readq(bar1 + 0x7C) == 0xFFFFFFFF_00000001
    qt.writeq(bar1 + 0x7C, 0xA5A5A5A5_00000000)       # unmasks vector 7
    assert qt.readl(bar1 + 0x7C) == 0
    # Vector 5 masked and rung: pending, bit 5 of the PBA's first dword.
    d.setup_msix(5, MSI_LAND, 0x5555, masked=True)
    d.set_reg(REG_DOORBELL_MSIX, 5)
    wait_for(lambda: qt.readl(bar1 + 0x800) & 1 << 5, what="PBA bit 5")
    assert qt.readq(bar1 + 0x7FC) == (1 << 5) << 32 | 0xFFFFFFFF
    assert qt.readq(bar1 + 0x804) == 0xFFFFFFFF_00000000
    qt.writeq(bar1 + 0x804, 0)                        # the PBA is read-only
    assert qt.readl(bar1 + 0x800) == 1 << 5
    assert d.reg(REG_ID) == ID
    qt.readb(bar1)
    wait_for(lambda: "region 'msix-table', reason: invalid size" in q.output(),
             what="QEMU's log of a 1-byte table read")
    assert "straddles" not in q.output(), q.output()


def test_msi_delivery(harness):
    _, q, d = start(harness)
    qt = d.qt
    qt.memset(MSI_LAND, 16, 0)
    d.setup_msi(MSI_LAND, 0x4440, 2)                 # 4 vectors enabled
    for v in (0, 2, 3):
        qt.writel(MSI_LAND, 0)
        d.set_reg(REG_DOORBELL_MSI, v)
        wait_for(lambda: qt.readl(MSI_LAND) == 0x4440 | v,
                 what=f"MSI vector {v}")


def test_dma_completion_interrupt(harness):
    """The MSI-X that reports a DMA copy comes after all of its data."""
    _, q, d = start(harness)
    qt = d.qt
    size = 256 * 1024
    d.setup_msix(2, MSI_LAND, 0xD0E)
    qt.writel(MSI_LAND, 0)
    pattern = bytes((i * 7) & 0xFF for i in range(size))
    qt.b64write(RAM_A, pattern)
    d.set_reg(REG_DMA_IRQ, IRQ_MSIX | 2 << 8)
    st = d.dma(RAM_A, RAM_B, size, cmd_extra=DMA_IRQ)
    assert st & ST_DONE
    assert qt.readl(MSI_LAND) == 0xD0E
    assert qt.b64read(RAM_B, size) == pattern


def test_dma_read_met_while_waiting_is_answered(harness):
    """A DMA read that arrives together with the completion a vCPU waits
    for is answered at once, not when the guest next touches the device:
    the copy below finishes and interrupts with no further access (over
    the rings it stalled until the device's output was next flushed)."""
    topo = TOPOLOGIES["q35-rootport"]
    ep = harness.endpoint()
    dev = f"pciefw,id=fw0,path={ep.listen[5:]},bus={topo['bus']}"
    if TRANSPORT_OPTS:
        dev += "," + TRANSPORT_OPTS
    q = harness.qemu(topo["machine"] + topo["extra"] +
                     ["-trace", "pciefw_send", "-device", dev])
    d = DeviceUnderTest(q, topo)
    qt = d.qt
    d.setup_msix(2, MSI_LAND, 0xD0E)
    qt.writel(MSI_LAND, 0)
    qt.b64write(RAM_A, b"\x5a" * 64)
    d.set_reg(REG_DMA_IRQ, IRQ_MSIX | 2 << 8)
    d.set_reg(REG_DMA_STATUS, ST_DONE | ST_ERROR)
    qt.writeq(d.bars[0].addr + REG_DMA_SRC, RAM_A)
    qt.writeq(d.bars[0].addr + REG_DMA_DST, RAM_B)
    d.set_reg(REG_DMA_LEN, 64)
    assert d.reg(REG_ID) == ID
    # The endpoint stopped, the copy's start (posted) and a read both wait
    # for it; woken, it answers both in one batch: the copy's DMA read and
    # the read's completion reach QEMU together while the vCPU waits.
    os.kill(ep.proc.pid, signal.SIGSTOP)
    try:
        d.set_reg(REG_DMA_CMD, DMA_START | DMA_IRQ)
        sent = q.output().count("mem_read")
        result = {}
        reader = threading.Thread(target=lambda: result.update(v=d.reg(REG_ID)))
        reader.start()
        wait_for(lambda: q.output().count("mem_read") > sent,
                 what="the read queued behind the copy")
    finally:
        os.kill(ep.proc.pid, signal.SIGCONT)
    reader.join(60)
    assert result.get("v") == ID, result
    wait_for(lambda: qt.readl(MSI_LAND) == 0xD0E, timeout=30,
             what="the copy's MSI-X without another access")
    assert qt.read(RAM_B, 64) == b"\x5a" * 64


@pytest.mark.parametrize("topo", ["q35-rootport", "pc"])
def test_intx(harness, topo):
    _, q, d = start(harness, topo)
    qt = d.qt
    qt.irq_intercept_in("ioapic")
    d.set_reg(REG_INTX, 1)
    wait_for(lambda: (qt.poll_async(0.05), any(qt.irq_level.values()))[1],
             what="INTx assert")
    pins = [p for p, lvl in qt.irq_level.items() if lvl]
    assert len(pins) == 1, qt.irq_events
    pin = pins[0]
    assert d.reg(REG_INTX) == 1
    d.set_reg(REG_INTX, 0)
    qt.wait_irq(pin, False)
    # INTx Disable in the command register masks the pin.
    d.enable(CMD_IO | CMD_MEM | CMD_MASTER | 0x400)
    d.set_reg(REG_INTX, 1)
    qt.poll_async(0.3)
    assert not qt.irq_level.get(pin), qt.irq_events
    assert d.cfg(PCI_STATUS, 2) & 0x08                   # Interrupt Status
    d.enable(CMD_IO | CMD_MEM | CMD_MASTER)
    qt.wait_irq(pin, True)
    d.set_reg(REG_INTX, 0)
    qt.wait_irq(pin, False)


# ---------------------------------------------------------------------------
# Reset

def _dirty(d):
    qt = d.qt
    d.set_reg(REG_SCRATCH, 0xDEADBEEF)
    qt.writel(d.bars[2].addr + 0x100, 0xCAFEF00D)
    d.cfg_write(0x48, 0x600DF00D)
    qt.outl(d.bars[4].addr + 4, 0x12121212)


def _check_power_on(d):
    qt = d.qt
    assert d.reg(REG_SCRATCH) == 0
    assert d.reg(REG_INV) == 0xFFFFFFFF
    assert qt.readl(d.bars[2].addr + 0x100) == 0
    assert d.cfg(0x48) == 0
    assert qt.inl(d.bars[4].addr + 4) == 0


def test_system_reset(harness):
    ep, q, d = start(harness)
    count = d.reg(REG_RESET_COUNT)
    assert count >= 1                                  # machine start-up reset
    _dirty(d)
    assert d.reg(REG_SCRATCH) == 0xDEADBEEF
    q.qmp.cmd("system_reset")
    q.qmp.wait_event("RESET")
    # The platform reset cleared the bridge and the BARs: set them up again.
    d.enumerate()
    assert d.cfg(0x00, 2) == VENDOR
    assert d.reg(REG_RESET_COUNT) == count + 1
    _check_power_on(d)
    assert ep.output().count("system reset") == count + 1
    assert "function-level reset" not in ep.output()


def test_function_level_reset(harness):
    ep, q, d = start(harness)
    count = d.reg(REG_RESET_COUNT)
    _dirty(d)
    exp = d.pci.caps(d.bdf)[CAP_EXP]
    assert d.cfg(exp + 4) & (1 << 28)                  # DEVCAP: FLR capable
    d.cfg_write(exp + 8, d.cfg(exp + 8, 2) | 0x8000, 2)
    d.enumerate()
    assert d.reg(REG_RESET_COUNT) == count + 1
    _check_power_on(d)
    assert ep.output().count("function-level reset") == 1


# ---------------------------------------------------------------------------
# Endpoint failures

def _errors(q):
    return [l for l in q.output().splitlines() if "pciefw" in l]


def test_endpoint_killed(harness):
    ep, q, d = start(harness)
    qt = d.qt
    assert d.reg(REG_ID) == ID
    ep.kill()
    assert d.reg(REG_ID) == 0xFFFFFFFF
    assert qt.readq(d.bars[2].addr) == ALL_ONES[8]
    assert qt.inw(d.bars[4].addr) == 0xFFFF
    assert d.cfg(0x40) == 0xFFFFFFFF
    qt.writel(d.bars[0].addr + REG_SCRATCH, 1)            # dropped
    qt.outl(d.bars[4].addr + 4, 1)
    d.cfg_write(0x44, 1)
    # QEMU's own config space still works.
    assert d.cfg(0x00, 2) == VENDOR
    assert q.alive()
    errs = _errors(q)
    assert len(errs) == 1, errs
    assert "reads return all ones" in errs[0], errs


def test_completion_timeout(harness):
    ep, q, d = start(harness, dev_opts="timeout=1000")
    assert d.reg(REG_ID) == ID
    os.kill(ep.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        assert d.reg(REG_ID) == 0xFFFFFFFF
        assert time.monotonic() - t0 < 5
        assert d.reg(REG_SCRATCH) == 0xFFFFFFFF            # at once now
    finally:
        os.kill(ep.pid, signal.SIGCONT)
    assert q.alive()
    errs = _errors(q)
    assert len(errs) == 1 and "1000 ms" in errs[0], errs


def test_reconnect(harness):
    ep, q, d = start(harness, dev_opts="reconnect=1")
    d.set_reg(REG_SCRATCH, 0x1234)
    ep.kill()
    assert d.reg(REG_ID) == 0xFFFFFFFF
    ep2 = harness.endpoint(listen=ep.listen, name="endpoint2")
    wait_for(lambda: d.reg(REG_ID) == ID, timeout=15, what="reconnect")
    # A fresh endpoint, reset once by the reconnection; the BARs stayed.
    assert d.reg(REG_RESET_COUNT) == 1
    assert d.reg(REG_SCRATCH) == 0
    d.set_reg(REG_SCRATCH, 0x4321)
    assert d.reg(REG_INV) == 0xFFFFBCDE
    out = q.output()
    assert "reconnected" in out, out
    # Lost again and back again: each loss is reported once.
    ep2.kill()
    assert d.reg(REG_ID) == 0xFFFFFFFF
    harness.endpoint(listen=ep.listen, name="endpoint3")
    wait_for(lambda: d.reg(REG_ID) == ID, timeout=15, what="second reconnect")
    assert len([l for l in q.output().splitlines()
                if "reads return all ones" in l]) == 2


@pytest.mark.parametrize("given", ["raddr", "rport"])
def test_tcp_address_half_given_refused(harness, given):
    """raddr without rport (or the reverse) says which one is missing."""
    dev = "pciefw,raddr=127.0.0.1" if given == "raddr" else "pciefw,rport=7420"
    rc, out = harness.run_qemu(["-M", "q35", "-device", dev])
    missing = "rport" if given == "raddr" else "raddr"
    assert rc != 0 and f"{given} needs {missing}=" in out, out


def test_reconnect_waits_for_an_endpoint_not_up_yet(harness):
    """With reconnect=N QEMU may start before its endpoint: it says it
    waits, and the device comes up once the endpoint listens (as a chardev
    socket with reconnect= waits for its server)."""
    topo = TOPOLOGIES["q35-rootbus"]
    sock = harness.path("late.sock")
    started = []

    def start_endpoint_when_waited_for():
        # The event: QEMU has said it waits (its log is the harness's).
        log = harness.path("qemu.log")
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if os.path.exists(log) and "waiting for it" in open(log).read():
                started.append(harness.endpoint(listen=f"unix:{sock}",
                                                name="late"))
                return
            time.sleep(0.05)

    t = threading.Thread(target=start_endpoint_when_waited_for, daemon=True)
    t.start()
    q = harness.qemu(topo["machine"] + [
        "-device", f"pciefw,id=fw0,path={sock},bus={topo['bus']},"
                   f"addr={topo['addr']},reconnect=1"])
    t.join(60)
    assert started, q.output()
    d = DeviceUnderTest(q, topo)
    assert d.reg(REG_ID) == ID
    assert "no endpoint at unix:" in q.output() and "yet" in q.output()


def test_endpoint_killed_under_an_idle_guest_is_reported(harness):
    """Nobody touches the device: QEMU still notices the endpoint's death
    and says so once (its socket, or its rings' socket, is watched)."""
    ep, q, d = start(harness)
    assert d.reg(REG_ID) == ID
    ep.kill()
    wait_for(lambda: "connection closed by the endpoint" in q.output(),
             timeout=30, what="QEMU's report")
    assert q.output().count("reads return all ones") == 1


def test_reconnect_refuses_a_different_device(harness):
    """An endpoint that comes back serving another device is not used (and
    said once); the right one is accepted when it returns."""
    ep, q, d = start(harness, dev_opts="reconnect=1")
    ep.kill()
    assert d.reg(REG_ID) == 0xFFFFFFFF
    other = harness.endpoint(listen=ep.listen, name="nic", device="nic")
    wait_for(lambda: "different device" in q.output(), timeout=15,
             what="the refusal")
    time.sleep(2.5)                                  # more attempts, refused
    assert d.reg(REG_ID) == 0xFFFFFFFF
    assert q.output().count("different device") == 1, q.output()
    other.stop()
    harness.endpoint(listen=ep.listen, name="endpoint2")
    wait_for(lambda: d.reg(REG_ID) == ID, timeout=15, what="reconnect")
    assert q.alive()


def test_reconnect_with_smaller_payload(harness):
    """The endpoint comes back with a smaller max payload: the same device,
    accepted, and DMA runs in the newly negotiated chunks."""
    ep, q, d = start(harness, dev_opts="reconnect=1")
    ep.kill()
    assert d.reg(REG_ID) == 0xFFFFFFFF
    harness.endpoint(listen=ep.listen, name="endpoint2",
                     args=["--max-payload", "4096"])
    wait_for(lambda: d.reg(REG_ID) == ID, timeout=15, what="reconnect")
    size = 64 * 1024                                   # 16 chunks now
    pattern = bytes((i * 13) & 0xFF for i in range(size))
    d.qt.b64write(RAM_A, pattern)
    st = d.dma(RAM_A, RAM_B, size)
    assert st & ST_DONE, hex(st)
    assert d.qt.b64read(RAM_B, size) == pattern


def test_posted_write_backlog_bounded(harness):
    """Posted writes to a stalled endpoint: the backlog is bounded by the
    completion timeout, the guest is not stuck, QEMU stays up."""
    ep, q, d = start(harness, dev_opts="timeout=1000")
    qt = d.qt
    os.kill(ep.pid, signal.SIGSTOP)
    try:
        chunk = bytes(4096)
        t0 = time.monotonic()
        for i in range(1024):                     # up to 4 MiB of MemWrites
            qt.write(d.bars[2].addr + (i % 256) * 4096, chunk)
            if _errors(q):
                break
        assert time.monotonic() - t0 < 60
        errs = _errors(q)
        assert len(errs) == 1 and "1000 ms" in errs[0], errs
        assert d.reg(REG_ID) == 0xFFFFFFFF
    finally:
        os.kill(ep.pid, signal.SIGCONT)
    assert q.alive()


def test_busy_endpoint_refuses_second_host(harness):
    ep, q, d = start(harness)
    rc, out = harness.run_qemu(["-M", "q35", "-device",
                                f"pciefw,path={ep.listen[5:]}"])
    assert rc != 0
    assert "busy" in out, out
    assert d.reg(REG_ID) == ID                          # the first one is fine


def test_hotplug_and_unplug(harness):
    """device_add / device_del (ACPI hotplug on pc): the endpoint is told of
    the unplug, and serves the next host."""
    ep = harness.endpoint()
    q = harness.qemu(["-M", "pc"])
    topo = TOPOLOGIES["pc"]
    for round_ in range(2):
        q.qmp.cmd("device_add", driver="pciefw", id="hp0",
                  path=ep.listen[5:], bus="pci.0", addr="0x4")
        d = DeviceUnderTest(q, topo)
        assert d.reg(REG_ID) == ID
        q.qmp.cmd("device_del", id="hp0")
        q.qtest.outl(0xAE08, 1 << 4)                  # ACPI eject slot 4
        q.qmp.wait_event("DEVICE_DELETED")
        assert Pci(q.qtest).read((0, 4, 0), 0, 2) == 0xFFFF
        wait_for(lambda: ep.output().count("host said goodbye") == round_ + 1,
                 what="the host's goodbye in the endpoint's log")
    assert q.alive() and ep.alive()


def test_endpoint_goodbye_on_sigterm(harness):
    ep, q, d = start(harness)
    ep.stop()                                          # SIGTERM: goodbye
    assert d.reg(REG_ID) == 0xFFFFFFFF
    errs = _errors(q)
    assert len(errs) == 1 and "goodbye" in errs[0], errs
    assert q.alive()


# ---------------------------------------------------------------------------
# Capture file and TCP

def _pcapng_records(path):
    """(direction, frame) of each message record (Enhanced Packet Blocks
    of record type 0; spec 6: session and malformed records are not
    messages)."""
    data = open(path, "rb").read()
    assert struct.unpack_from("<I", data, 0)[0] == 0x0A0D0D0A
    out = []
    off = 0
    while off + 12 <= len(data):
        btype, blen = struct.unpack_from("<II", data, off)
        if btype == 6:
            caplen = struct.unpack_from("<I", data, off + 20)[0]
            pkt = data[off + 28: off + 28 + caplen]
            if pkt[2] == 0:
                out.append((pkt[1], pkt[4:]))
        off += blen
    return out


def test_trace_file_records_both_directions(harness):
    trace = harness.path("t.pcapng")
    ep, q, d = start(harness, dev_opts=f"trace={trace}")
    assert d.reg(REG_ID) == ID
    d.set_reg(REG_SCRATCH, 7)
    q.stop()
    recs = _pcapng_records(trace)
    dirs = [r[0] for r in recs]
    assert dirs[0] == 0 and 1 in dirs, dirs             # hello first, both ways
    # Each frame carries its length prefix.
    for _, frame in recs:
        assert struct.unpack_from("<I", frame)[0] == len(frame) - 4
    assert len(recs) >= 6, len(recs)


def test_trace_says_what_became_of_each_interrupt(harness, endpoint_binary):
    """QEMU's capture notes each interrupt's fate after its message, and
    pciefw-trace shows it (docs/protocol.md 3.2, 6)."""
    trace = harness.path("irq.pcapng")
    ep, q, d = start(harness, dev_opts=f"trace={trace}")
    qt = d.qt

    def ring():
        d.set_reg(REG_DOORBELL_MSIX, 3)
        assert d.reg(REG_ID) == ID     # the MSI-X comes before this completion

    ring()                                               # MSI-X disabled
    entry = d.setup_msix(3, MSI_LAND, 0x33, masked=True)
    ring()                                               # masked: pending
    qt.writel(entry + 12, 0)
    qt.writel(MSI_LAND, 0)
    ring()                                               # delivered
    d.enable(CMD_IO | CMD_MEM)
    ring()                                               # no bus mastering
    q.stop()
    tool = os.path.join(os.path.dirname(os.path.dirname(endpoint_binary)),
                        "tools", "pciefw-trace")
    out = subprocess.run([tool, "--kind", "msix", trace], stdout=subprocess.PIPE,
                         text=True, check=True).stdout
    notes = [l.split("^", 1)[1].strip() for l in out.splitlines() if " ^ " in l]
    assert notes == ["msix vector 3: dropped: MSI-X is disabled",
                     "msix vector 3: pending: vector masked",
                     "msix vector 3: delivered",
                     "msix vector 3: dropped: bus mastering is off"], out


def test_tcp_transport(harness):
    ep = harness.endpoint(listen="tcp:127.0.0.1:0")
    m = re.search(r":(\d+)$", ep.address)
    assert m, ep.address
    q = harness.qemu(["-M", "q35", "-device",
                      f"pciefw,raddr=127.0.0.1,rport={m.group(1)},bus=pcie.0,addr=0x4"])
    d = DeviceUnderTest(q, TOPOLOGIES["q35-rootbus"])
    assert d.reg(REG_ID) == ID
    st = d.dma(0, RAM_B, 4096, cmd_extra=1 << 4)
    assert st & ST_DONE
