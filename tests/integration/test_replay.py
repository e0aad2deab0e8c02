"""pciefw-replay (tools/pciefw-replay.c): play one side of a recorded trace
against a live peer and report where it departs from the recording.

A testdev session is driven through the real QEMU by qtest (no guest) and
recorded at both ends (the endpoint's --trace and QEMU's trace=); a NIC
session is a real guest (driver probe, DHCP, ping, a small transfer)
recorded the same way.  The recordings are replayed as the host against
fresh endpoints, and as the endpoint against QEMU running the same qtest
script again.
"""

import os
import re
import signal
import socket
import struct
import subprocess
import threading
import time

import pytest

import guestlib
import pfwire
from nicnet import DRIVER_KO, UDHCPC, guest_files, nic_device_args

from testdev_map import *  # noqa: F401,F403  (docs/testdev.md)
DISSECTOR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "tools", "wireshark", "pciefw.lua")

# Where the qtest script puts things: testdev on q35's root bus at 00:04.0.
BDF = (0, 4, 0)
BAR0, BAR1, BAR2, BAR4 = 0xC0000000, 0xC0001000, 0xC0100000, 0xC000
RAM_A, RAM_B, MSI_LAND = 0x01000000, 0x02000000, 0x03000000
CAP_MSIX = 0x11

NIC_MAC = "52:54:00:5e:91:a7"


def tool(endpoint_binary, name):
    build = os.path.dirname(os.path.dirname(endpoint_binary))
    path = os.path.join(build, "tools", name)
    assert os.access(path, os.X_OK), f"{path} not built"
    return path


def run(args, timeout=120, **kw):
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=timeout, **kw)


def records(path):
    """[(record number, direction, record type, bytes after the pseudo-
    header)] of every record of a trace, with a minimal pcapng reader."""
    data = open(path, "rb").read()
    out, off = [], 0
    while off + 12 <= len(data):
        btype, blen = struct.unpack_from("<II", data, off)
        if btype == 6:
            caplen = struct.unpack_from("<I", data, off + 20)[0]
            pkt = data[off + 28:off + 28 + caplen]
            # Numbered from 1, as Wireshark numbers frames (spec 6).
            out.append((len(out) + 1, pkt[1], pkt[2], pkt[4:]))
        off += blen
    return out


# Guest memory sharing is not replayed (docs/protocol.md 10.5).
NOT_REPLAYED = ("memory_map", "bus_master", "ring_setup", "ring_ready")


def frames(path):
    """[(direction, frame bytes)] of a trace's message records (spec 6:
    session and malformed records are not messages)."""
    return [(d, f) for _, d, t, f in records(path) if t == 0]


def records_before(data, end):
    """How many Enhanced Packet Blocks (records of any type) precede @end."""
    off = n = 0
    while off < end:
        btype, blen = struct.unpack_from("<II", data, off)
        n += btype == 6
        off += blen
    return n


def first_message_block(data):
    """Offset of the first Enhanced Packet Block that holds a message."""
    off = 0
    while off + 12 <= len(data):
        btype, blen = struct.unpack_from("<II", data, off)
        if btype == 6 and data[off + 30] == 0:
            return off
        off += blen
    raise AssertionError("no message record")


def trace_lines(endpoint_binary, path, *args):
    """pciefw-trace's lines: [(index, direction, message text)], the mark
    of a message that travelled as a binary record (spec 11.7) left off."""
    r = run([tool(endpoint_binary, "pciefw-trace"), *args, path])
    assert r.returncode == 0, r.stderr
    out = []
    for line in r.stdout.splitlines():
        m = re.match(r"#(\d+)\s+\S+\s+(H>E|E>H)\s+(.*?)(?:  \[binary record\])?$",
                     line)
        if m:
            out.append((int(m.group(1)), m.group(2), m.group(3)))
    return out


def assert_recordings_agree(endpoint_binary, a, b):
    """Both ends recorded the same messages in each direction, in order
    (the interleaving of the two directions and the timestamps differ)."""
    fa, fb = frames(a), frames(b)
    for d, name in ((0, "host to endpoint"), (1, "endpoint to host")):
        xa = [f for dd, f in fa if dd == d]
        xb = [f for dd, f in fb if dd == d]
        if xa != xb:
            la = [t for _, dd, t in trace_lines(endpoint_binary, a) if dd == ("H>E", "E>H")[d]]
            lb = [t for _, dd, t in trace_lines(endpoint_binary, b) if dd == ("H>E", "E>H")[d]]
            first = next((i for i, (x, y) in enumerate(zip(la, lb)) if x != y),
                         min(len(la), len(lb)))
            pytest.fail(f"{name}: {len(xa)} vs {len(xb)} messages, first "
                        f"difference at #{first}:\n  {la[first:first + 1]}\n"
                        f"  {lb[first:first + 1]}")
    assert len(fa) == len(fb)


class Replay:
    """pciefw-replay --as-endpoint, running while QEMU is driven."""

    def __init__(self, binary, workdir, trace, name="replay", args=()):
        self.listen = os.path.join(workdir, name + ".sock")
        self.out_path = os.path.join(workdir, name + ".out")
        self.out = open(self.out_path, "wb")
        self.proc = subprocess.Popen(
            [binary, "--as-endpoint", "--listen", "unix:" + self.listen,
             *args, trace], stdin=subprocess.DEVNULL, stdout=self.out,
            stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 10
        while "listening on" not in self.output():
            assert self.proc.poll() is None, self.output()
            assert time.monotonic() < deadline, "pciefw-replay did not listen"
            time.sleep(0.02)

    def output(self):
        if not self.out.closed:
            self.out.flush()
        with open(self.out_path, "rb") as f:
            return f.read().decode(errors="replace")

    def wait(self, timeout=30):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            pytest.fail("pciefw-replay --as-endpoint did not finish:\n" + self.output())

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.out.close()
        return self.proc.returncode


# ---------------------------------------------------------------------------
# The testdev session, through QEMU under qtest


class Cfg:
    """Configuration mechanism #1 for the device at BDF."""

    def __init__(self, qt):
        self.qt = qt

    def _addr(self, off):
        bus, dev, fn = BDF
        self.qt.outl(0xCF8, 0x80000000 | bus << 16 | dev << 11 | fn << 8 | (off & 0xFC))
        return 0xCFC + (off & 3)

    def read(self, off, size=4):
        port = self._addr(off)
        return {1: self.qt.inb, 2: self.qt.inw, 4: self.qt.inl}[size](port)

    def write(self, off, val, size=4):
        port = self._addr(off)
        {1: self.qt.outb, 2: self.qt.outw, 4: self.qt.outl}[size](port, val)

    def cap(self, cid):
        ptr = self.read(0x34, 1) & 0xFC
        while ptr:
            if self.read(ptr, 1) == cid:
                return ptr
            ptr = self.read(ptr + 1, 1) & 0xFC
        raise AssertionError(f"no capability {cid:#x}")


def start_testdev_qemu(harness, path, trace=None, name="qemu"):
    dev = f"pciefw,id=fw0,path={path},bus=pcie.0,addr=0x4"
    if trace:
        dev += f",trace={trace}"
    return harness.qemu(["-M", "q35", "-device", dev], name=name)


def program_bars(cfg):
    """Firmware's job, at fixed addresses (testdev's BAR layout is known)."""
    cfg.write(0x10, BAR0)
    cfg.write(0x14, BAR1)
    cfg.write(0x18, BAR2 | 0xC)            # mem64, prefetchable
    cfg.write(0x1C, 0)
    cfg.write(0x20, BAR4 | 1)
    cfg.write(0x04, 0x7, 2)                # IO, memory, bus master


def wait_until(pred, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def run_testdev_session(q, scratch=0x12345678):
    """A deterministic tour of testdev: every kind of message both ways.
    What the device returns is checked, so a replayed endpoint must serve
    what the real one did."""
    qt, cfg = q.qtest, Cfg(q.qtest)
    program_bars(cfg)
    assert qt.readl(BAR0 + REG_ID) == ID
    count = qt.readl(BAR0 + REG_RESET_COUNT)
    assert count >= 1                                  # QEMU's start-up reset
    qt.writel(BAR0 + REG_SCRATCH, scratch)
    assert qt.readl(BAR0 + REG_INV) == ~scratch & 0xFFFFFFFF
    qt.writeq(BAR0 + REG_SCRATCH64, 0x0123456789ABCDEF)
    assert qt.readq(BAR0 + REG_SCRATCH64) == 0x0123456789ABCDEF
    # Device-specific config space and the IO BAR.
    assert cfg.read(0x40) == CFG_ID
    cfg.write(0x48, 0x600DF00D)
    assert cfg.read(0x48) == 0x600DF00D
    assert qt.inl(BAR4) == IO_ID
    qt.outw(BAR4 + 6, 0xBEEF)
    assert qt.inw(BAR4 + 6) == 0xBEEF
    # RAM BAR: a burst write and reads of it.
    blob = bytes((i * 37 + 11) & 0xFF for i in range(64))
    qt.write(BAR2 + 0x200, blob)
    assert qt.read(BAR2 + 0x200, 64) == blob
    # MSI-X vector 2 -> MSI_LAND; the doorbell and a DMA copy raise it.
    table = BAR1 + (cfg.read(cfg.cap(CAP_MSIX) + 4) & ~7)
    qt.writel(table + 32, MSI_LAND)
    qt.writel(table + 36, 0)
    qt.writel(table + 40, 0xD00D)
    qt.writel(table + 44, 0)
    ctrl = cfg.cap(CAP_MSIX) + 2
    cfg.write(ctrl, (cfg.read(ctrl, 2) | 0x8000) & ~0x4000, 2)
    qt.writel(MSI_LAND, 0)
    qt.writel(BAR0 + REG_DOORBELL_MSIX, 2)
    wait_until(lambda: qt.readl(MSI_LAND) == 0xD00D, "the MSI-X doorbell")
    # DMA copy RAM_A -> RAM_B (DMA reads and writes), MSI-X when done.
    pattern = bytes((i * 7 + 3) & 0xFF for i in range(6000))
    qt.b64write(RAM_A, pattern)
    qt.memset(RAM_B, len(pattern), 0)
    qt.writel(MSI_LAND, 0)
    qt.writeq(BAR0 + REG_DMA_SRC, RAM_A)
    qt.writeq(BAR0 + REG_DMA_DST, RAM_B)
    qt.writel(BAR0 + REG_DMA_LEN, len(pattern))
    qt.writel(BAR0 + REG_DMA_IRQ, IRQ_MSIX | 2 << 8)
    qt.writel(BAR0 + REG_DMA_CMD, DMA_START | DMA_IRQ)
    polls = 0
    while True:
        st = qt.readl(BAR0 + REG_DMA_STATUS)
        polls += 1
        if not st & ST_BUSY:
            break
        time.sleep(0.001)
    assert st & ST_DONE and not st & ST_ERROR, hex(st)
    wait_until(lambda: qt.readl(MSI_LAND) == 0xD00D, "the DMA interrupt")
    assert qt.b64read(RAM_B, len(pattern)) == pattern
    # SIDE_EFFECTS: a DMA write, an MSI-X and a DMA read before the completion.
    qt.writeq(RAM_A, 0x1122334455667788)
    qt.writeq(BAR0 + REG_DMA_DST, RAM_B)
    assert qt.readl(BAR0 + REG_SIDE_EFFECTS) >= 1
    assert qt.readq(BAR0 + REG_SCRATCH64) == 0x1122334455667788
    # INTx up and down.
    qt.writel(BAR0 + REG_INTX, 1)
    assert qt.readl(BAR0 + REG_INTX) == 1
    qt.writel(BAR0 + REG_INTX, 0)
    # A platform reset, then the BARs again and the count of resets.
    q.qmp.cmd("system_reset")
    q.qmp.wait_event("RESET")
    program_bars(cfg)
    assert qt.readl(BAR0 + REG_RESET_COUNT) == count + 1
    assert qt.readl(BAR0 + REG_SCRATCH) == 0
    return polls


def record_testdev(harness, name="td", endpoint_first=False):
    """(endpoint trace, QEMU trace) of one testdev session.  QEMU quits
    first, and the endpoint is stopped once it has seen the host go (else
    it would say goodbye to a host already gone, in its trace only); or,
    with @endpoint_first, the endpoint is stopped first: its goodbye ends
    both recordings."""
    ep_trace, q_trace = harness.path(f"{name}-ep.pcapng"), harness.path(f"{name}-qemu.pcapng")
    ep = harness.endpoint(name=name, args=["--trace", ep_trace])
    q = start_testdev_qemu(harness, ep.listen[len("unix:"):], trace=q_trace,
                           name=f"{name}-qemu")
    run_testdev_session(q)
    if endpoint_first:
        assert ep.stop() == 0, ep.output()
        wait_until(lambda: "goodbye" in q.output(), "QEMU to get the goodbye")
        q.stop()
    else:
        q.stop()
        wait_until(lambda: "closed: host disconnected" in ep.output(),
                   "the endpoint to see QEMU go")
        assert ep.stop() == 0, ep.output()
    return ep_trace, q_trace


@pytest.fixture
def testdev_recording(harness):
    return record_testdev(harness)


# ---------------------------------------------------------------------------
# testdev: recordings, replay as the host, replay as the endpoint


def test_both_ends_record_the_same_session(testdev_recording, endpoint_binary):
    ep_trace, q_trace = testdev_recording
    assert_recordings_agree(endpoint_binary, ep_trace, q_trace)
    kinds = {t.split()[0] for _, _, t in trace_lines(endpoint_binary, ep_trace)}
    assert kinds >= {"hello", "device_description", "reset", "config_read",
                     "config_write", "mem_read", "mem_write", "io_read",
                     "io_write", "completion", "dma_read", "dma_write", "msix",
                     "intx"}, kinds


def test_replay_as_host_matches(testdev_recording, harness, endpoint_binary):
    replay = tool(endpoint_binary, "pciefw-replay")
    for i, trace in enumerate(testdev_recording):
        ep = harness.endpoint(name=f"fresh{i}")
        r = run([replay, trace, ep.address])
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout.splitlines()[-1].endswith(": 0 divergences"), r.stdout
        assert "divergence 1" not in r.stdout and not r.stderr, r.stdout + r.stderr
    # --timing keeps the recorded pace: the replay lasts as long as the
    # recorded span of the host's messages.
    ep_trace = testdev_recording[0]
    hosts = [i for i, d, _ in trace_lines(endpoint_binary, ep_trace) if d == "H>E"]
    printed = run([tool(endpoint_binary, "pciefw-trace"), ep_trace]).stdout
    ts = {int(m.group(1)): float(m.group(2))
          for m in re.finditer(r"^#(\d+)\s+(\S+)", printed, re.M)}
    span = ts[hosts[-1]] - ts[hosts[0]]
    ep = harness.endpoint(name="paced")
    t0 = time.monotonic()
    r = run([replay, "--timing", ep_trace, ep.address])
    assert r.returncode == 0 and ": 0 divergences" in r.stdout, r.stdout + r.stderr
    assert time.monotonic() - t0 >= 0.9 * span, (time.monotonic() - t0, span)


def reset_count_completions(endpoint_binary, trace):
    """Record numbers of the completions of the RESET_COUNT reads."""
    lines = trace_lines(endpoint_binary, trace)
    out = []
    for i, (idx, d, text) in enumerate(lines):
        m = re.match(r"mem_read tag=(\d+) bar=0 offset=0x3c size=4$", text)
        if m:
            out.append(next(j for j, dd, t in lines[i + 1:]
                            if dd == "E>H" and t.startswith(f"completion tag={m.group(1)} ")))
    return out


def test_replay_as_host_finds_divergence(testdev_recording, harness, endpoint_binary):
    """An endpoint that has seen more resets than the recorded one (it
    served a replay already) answers RESET_COUNT differently: the first
    divergence is that completion, reported with its context."""
    replay = tool(endpoint_binary, "pciefw-replay")
    trace = testdev_recording[1]                      # recorded by QEMU
    first, second = reset_count_completions(endpoint_binary, trace)
    ep = harness.endpoint(name="used")
    r = run([replay, trace, ep.address])
    assert r.returncode == 0, r.stdout                # its first replay: 1 reset
    r = run([replay, "--context", "3", trace, ep.address])
    assert r.returncode == 1, r.stdout + r.stderr
    out = r.stdout.splitlines()
    head = next(i for i, l in enumerate(out) if l.startswith("divergence 1 "))
    assert re.match(rf"divergence 1 at record #{first} \(\+\d+\.\d{{6}} s in the "
                    r"recording, \+\d+\.\d{6} s into the replay\): completion "
                    r"differs in data$", out[head]), out[head]
    assert re.match(rf"  expected: #{first}\s+\+\S+ E>H  completion tag=\d+ "
                    r"status=successful data=0x00000001$", out[head + 1]), out[head + 1]
    # QEMU reset it twice per session: the second replay reads 3, not 1.
    assert re.match(r"  actual:\s+E>H  completion tag=\d+ status=successful "
                    r"data=0x00000003$", out[head + 2]), out[head + 2]
    # Where the data differ: byte 0, both dumped around it.
    assert out[head + 3] == "  data: first difference at byte 0 (0x0) of 4 recorded, 4 live:"
    assert re.match(r"    expected 0x0000: 01 00 00 00 -- ", out[head + 4]), out[head + 4]
    assert re.match(r"    actual   0x0000: 03 00 00 00 -- ", out[head + 5]), out[head + 5]
    assert out[head + 6] == " " * 19 + " ^^", out[head + 6]
    assert out[head + 7] == "  recorded before it:"
    context = out[head + 8:head + 11]
    assert len(context) == 3 and all(l.startswith("    #") for l in context), out
    assert "mem_read" in context[-1] and "offset=0x3c" in context[-1], context
    assert out[-1].endswith("1 divergence (stopped at the first; --keep-going "
                            "counts them all)"), out[-1]
    assert sum(l.startswith("divergence ") for l in out) == 1
    # --keep-going finds the second read of the count too, and nothing else.
    r = run([replay, "--keep-going", trace, ep.address])
    assert r.returncode == 1
    found = re.findall(r"^divergence \d+ at record #(\d+)", r.stdout, re.M)
    assert [int(x) for x in found] == [first, second], r.stdout
    assert r.stdout.splitlines()[-1].endswith(": 2 divergences"), r.stdout
    # Ignoring completion data, it matches.
    r = run([replay, "--ignore", "completion.data", trace, ep.address])
    assert r.returncode == 0 and ": 0 divergences" in r.stdout, r.stdout
    # Another device entirely: the description differs, at its record.
    desc = next(idx for idx, d, t in trace_lines(endpoint_binary, trace)
                if t.startswith("device_description"))
    nic = harness.endpoint(name="other", device="nic")
    r = run([replay, trace, nic.address])
    assert r.returncode == 1
    assert re.search(rf"^divergence 1 at record #{desc} .*: device_description differs "
                     r"in device_id, subsystem_id, class_code, bars, msi_vectors, "
                     r"msix_vectors$", r.stdout, re.M), r.stdout


def test_one_record_numbering_and_count_across_tools(testdev_recording, harness,
                                                     endpoint_binary):
    """QEMU's recording has sessions, notes and messages the replay does
    not send (guest memory and ring set-up): pciefw-trace numbers every
    record from #1, --stats counts them all, Wireshark's frame numbers are
    the same records, and pciefw-replay counts the same and takes --until
    in the same numbers (docs/protocol.md 6)."""
    trace = testdev_recording[1]
    r = run([tool(endpoint_binary, "pciefw-trace"), trace])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    numbers = [int(re.match(r"#(\d+) ", l).group(1)) for l in lines]
    total = len(lines)
    assert numbers == list(range(1, total + 1)), numbers[:5]
    msgs = trace_lines(endpoint_binary, trace)
    notes = [l for l in lines if re.match(r"#\d+ +\S+  \^   ", l)]
    assert notes and len(msgs) + len(notes) < total, r.stdout
    r = run([tool(endpoint_binary, "pciefw-trace"), "--stats", trace])
    assert r.stdout.splitlines()[0].startswith(f"{total} records (#1 to #{total}) "), r.stdout
    assert f"messages {len(msgs)}, sessions 1, notes {len(notes)}," in r.stdout, r.stdout
    # tshark numbers the same records: each message is of the same kind there.
    r = run(["tshark", "-X", f"lua_script:{DISSECTOR}", "-r", trace, "-T", "fields",
             "-e", "frame.number", "-e", "pciefw.kind"])
    assert r.returncode == 0, r.stderr
    frames = dict(l.split("\t") for l in r.stdout.splitlines())
    assert len(frames) == total
    assert all(frames[str(i)] == t.split()[0] for i, _, t in msgs), r.stdout
    # pciefw-replay: the same counts, and --until N is record #N.
    until = next(i for i, _, t in msgs if t.startswith("msix"))
    replayed = sum(1 for i, _, t in msgs if i <= until and not t.startswith(NOT_REPLAYED))
    ep = harness.endpoint(name="fresh-count")
    r = run([tool(endpoint_binary, "pciefw-replay"), "--until", str(until), trace,
             ep.address])
    assert r.returncode == 0, r.stdout + r.stderr
    assert f": {total} records, {len(msgs)} messages (" in r.stdout.splitlines()[0], r.stdout
    assert re.search(rf"^pciefw-replay: replayed {replayed} of {replayed} messages \(up to "
                     rf"record #{until}: a prefix of the trace\) in .*: 0 divergences$",
                     r.stdout, re.M), r.stdout


def test_divergence_shows_where_the_data_differ(harness, endpoint_binary):
    """A 64-byte burst read whose recorded completion differs from what the
    endpoint answers only at byte 40: the report names that byte and dumps
    both around it (the message lines show only the first 16 bytes)."""
    trace = harness.path("burst.pcapng")
    ep = harness.endpoint(name="rec", args=["--trace", trace])
    c = pfwire.Conn(ep.address)
    c.handshake()
    c.send(pfwire.message("mem_read", (1, 1), (2, 2), (3, 0x40), (4, 64)))
    assert c.until("completion")[-1][0] == "completion"
    c.close()
    ep.wait_log("host disconnected")
    assert ep.stop() == 0
    # The model "changed": byte 40 of the recorded data (RAM, zero) is 0x5a.
    data = bytearray(open(trace, "rb").read())
    at = data.index(b"\x1a\x40" + bytes(64))           # Completion.data, 64 bytes
    data[at + 2 + 40] = 0x5A
    open(trace, "wb").write(data)
    fresh = harness.endpoint(name="fresh-burst")
    r = run([tool(endpoint_binary, "pciefw-replay"), trace, fresh.address])
    assert r.returncode == 1, r.stdout + r.stderr
    out = r.stdout.splitlines()
    head = next(i for i, l in enumerate(out) if l.startswith("divergence 1 "))
    assert out[head].endswith(": completion differs in data"), out[head]
    assert out[head + 3] == ("  data: first difference at byte 40 (0x28) of 64 "
                             "recorded, 64 live:"), r.stdout
    row = " ".join(["00"] * 8)
    assert out[head + 4] == f"    expected 0x0020: {row}  5a {' '.join(['00'] * 7)}", r.stdout
    assert out[head + 5] == f"    actual   0x0020: {row}  {row}", r.stdout
    assert out[head + 6] == " " * 19 + "   " * 8 + "  ^^", r.stdout
    assert out[head + 7].startswith("    expected 0x0030: "), r.stdout


@pytest.mark.parametrize("which", ["endpoint-trace", "qemu-trace"])
def test_replay_as_endpoint_matches(testdev_recording, harness, endpoint_binary, which):
    """QEMU runs the same qtest script against the replayed endpoint: every
    value the script checks (registers, DMA'd data, interrupts) comes from
    the recording, and what QEMU sends matches it."""
    trace = testdev_recording[which == "qemu-trace"]
    rp = Replay(tool(endpoint_binary, "pciefw-replay"), harness.workdir, trace)
    try:
        q = start_testdev_qemu(harness, rp.listen, name="qemu-replayed")
        try:
            run_testdev_session(q)
        except AssertionError as e:
            q.stop()
            rp.wait()
            raise AssertionError(f"{e}\n--- pciefw-replay:\n{rp.output()}\n"
                                 f"--- QEMU:\n{open(q.log_path).read()}") from e
        q.stop()
        rc = rp.wait()
    finally:
        rp.stop()
    out = rp.output()
    assert rc == 0, out
    assert out.splitlines()[-1].endswith(": 0 divergences"), out


def test_requests_outstanding_at_once_are_replayed_so(harness, endpoint_binary):
    """A recorded host that had several reads outstanding at once (spec
    5.1 rule 3: testdev's FETCH waits for its DMA read, the reads behind
    it are sent meanwhile) is replayed the same way: each request goes out
    once the peer's records before it in the trace have come, not after
    the completion of the one before -- so the fresh endpoint receives
    all of them before it can answer the first."""
    rec_trace, live_trace = harness.path("pipe-rec.pcapng"), harness.path("pipe-live.pcapng")
    ep = harness.endpoint(name="pipe-rec", args=["--trace", rec_trace])
    c = pfwire.Conn(ep.address)
    c.handshake()
    reads = [message_read(t, off) for t, off in ((1, REG_FETCH), (2, REG_INV),
                                                 (3, REG_SCRATCH), (4, REG_ID))]
    c.send(pfwire.message("mem_write", (1, 0), (2, REG_FETCH_ADDR),
                          (3, (0x9000).to_bytes(8, "little"))) + b"".join(reads))
    dma = c.until("dma_read")[-1][1]
    c.send(pfwire.message("completion", (1, dma[1]), (3, b"\x01\x02\x03\x04")))
    assert [c.next()[1][1] for _ in range(4)] == [1, 2, 3, 4]
    c.send(pfwire.goodbye())
    c.close()
    ep.wait_log("host said goodbye")
    ep.stop()
    fresh = harness.endpoint(name="pipe-live", args=["--trace", live_trace])
    r = run([tool(endpoint_binary, "pciefw-replay"), rec_trace, fresh.address])
    assert r.returncode == 0, r.stdout + r.stderr
    fresh.stop()
    lines = [(d, t) for _, d, t in trace_lines(endpoint_binary, live_trace)]
    first_cpl = next(i for i, (d, t) in enumerate(lines)
                     if d == "E>H" and t.startswith("completion tag=1 "))
    before = [t for d, t in lines[:first_cpl] if t.startswith("mem_read")]
    assert len(before) == 4, lines


def message_read(tag, off):
    return pfwire.message("mem_read", (1, tag), (2, 0), (3, off), (4, 4))


def test_recording_ended_by_the_endpoint(harness, endpoint_binary):
    """Both recordings end with the endpoint's goodbye (it was stopped
    first).  Replayed as the host, that goodbye is not required of a live
    endpoint; replayed as the endpoint, it is said last, once the host is
    done (said earlier, it would cut off QEMU's last request)."""
    ep_trace, q_trace = record_testdev(harness, "bye", endpoint_first=True)
    assert_recordings_agree(endpoint_binary, ep_trace, q_trace)
    last = trace_lines(endpoint_binary, ep_trace)[-1]
    assert last[1] == "E>H" and last[2].startswith("goodbye reason=0"), last
    replay = tool(endpoint_binary, "pciefw-replay")
    for trace in (ep_trace, q_trace):
        ep = harness.endpoint(name="fresh")
        r = run([replay, trace, ep.address])
        assert r.returncode == 0, r.stdout + r.stderr
        # MemoryMap (18), BusMaster (19), RingSetup (20) and RingReady
        # (21) are not replayed (spec 10.5, 11.6); 20 and 21 have a
        # two-byte key.
        n = len([f for _, f in frames(trace)
                 if f[4] not in (18 << 3 | 2, 19 << 3 | 2)
                 and f[4:6] not in (bytes([0xA2, 1]), bytes([0xAA, 1]))])
        assert re.search(rf"replayed {n} of {n} messages in .*: 0 divergences$",
                         r.stdout), r.stdout
        ep.stop()
    rp = Replay(replay, harness.workdir, q_trace, name="bye-replay")
    try:
        q = start_testdev_qemu(harness, rp.listen, name="qemu-bye")
        run_testdev_session(q)                   # every read answered
        q.stop()
        rc = rp.wait()
    finally:
        rp.stop()
    assert rc == 0 and rp.output().splitlines()[-1].endswith(": 0 divergences"), \
        rp.output()


def test_replay_as_endpoint_finds_divergence(testdev_recording, harness, endpoint_binary):
    trace = testdev_recording[0]
    write = next(i for i, d, t in trace_lines(endpoint_binary, trace)
                 if t.startswith("mem_write bar=0 offset=0x4 "))
    rp = Replay(tool(endpoint_binary, "pciefw-replay"), harness.workdir, trace)
    try:
        q = start_testdev_qemu(harness, rp.listen, name="qemu-other")
        # Another SCRATCH value than recorded: the replay stops there and
        # hangs up, so the script's next check fails.
        with pytest.raises(AssertionError):
            run_testdev_session(q, scratch=0x0BADCAFE)
        rc = rp.wait()
        q.stop()
    finally:
        rp.stop()
    out = rp.output()
    assert rc == 1, out
    assert re.search(rf"^divergence 1 at record #{write} .*: mem_write differs in data\n"
                     rf"  expected: #{write} .* H>E  mem_write bar=0 offset=0x4 "
                     r"data=0x12345678\n"
                     r"  actual: +H>E  mem_write bar=0 offset=0x4 data=0x0badcafe\n",
                     out, re.M), out


# ---------------------------------------------------------------------------
# Bad traces and usage


def test_bad_trace_files(testdev_recording, harness, endpoint_binary, tmp_path):
    replay = tool(endpoint_binary, "pciefw-replay")
    data = open(testdev_recording[0], "rb").read()
    shb = struct.unpack_from("<I", data, 4)[0]
    idb = struct.unpack_from("<I", data, shb + 4)[0]
    other_link = bytearray(data)
    struct.pack_into("<H", other_link, shb + 8, 1)           # LINKTYPE_ETHERNET
    msg = first_message_block(data)
    bad_body = bytearray(data)
    bad_body[msg + 36:msg + 40] = b"\xff" * 4                # first message
    cases = {
        "empty": (b"", "is empty, not a pciefw trace"),
        "text": (b"not a trace at all\n", "is not a pcapng file"),
        "truncated": (data[:len(data) // 2], "truncated trace: trace ends inside a block"),
        "corrupt": (data[:msg + 4] + b"\xff" * 4 + data[msg + 8:], "corrupt trace: "),
        "ethernet": (bytes(other_link), "not a pciefw trace: capture is not a pciefw "
                     "trace (wrong link type)"),
        "headers-only": (data[:shb + idb], "the trace holds no messages"),
        "undecodable": (bytes(bad_body), f"record {records_before(data, msg) + 1} is "
                        "not a pciefw message (corrupt trace)"),
    }
    ep = harness.endpoint(name="target")
    for name, (content, message) in cases.items():
        path = tmp_path / f"{name}.pcapng"
        path.write_bytes(content)
        for args in ([str(path), ep.address],
                     ["--as-endpoint", "--listen", f"unix:{tmp_path}/l.sock", str(path)]):
            r = run([replay, *args])
            assert r.returncode == 3, (name, r.stdout, r.stderr)
            assert message in r.stderr, (name, r.stderr)
            assert r.stderr.count("\n") == 1, (name, r.stderr)
            assert "Sanitizer" not in r.stderr and "core dumped" not in r.stderr
    r = run([replay, str(tmp_path / "missing.pcapng"), ep.address])
    assert r.returncode == 3 and "No such file" in r.stderr
    # The whole records of the truncated trace replay, on request.
    r = run([replay, "--allow-truncated", str(tmp_path / "truncated.pcapng"), ep.address])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "the trace is truncated" in r.stdout and ": 0 divergences" in r.stdout
    # Nobody listening, or an endpoint that refuses us: exit 3.
    r = run([replay, testdev_recording[0], f"unix:{tmp_path}/nobody.sock"])
    assert r.returncode == 3 and "cannot connect" in r.stderr, r.stderr
    other_host = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        other_host.connect(ep.listen[len("unix:"):])
        time.sleep(0.2)                      # accepted: the endpoint is busy
        r = run([replay, testdev_recording[0], ep.address])
    finally:
        other_host.close()
    assert r.returncode == 3, r.stdout + r.stderr
    assert "the endpoint refused the connection: device testdev is busy" in r.stderr, r.stderr


def test_usage(endpoint_binary, testdev_recording):
    replay = tool(endpoint_binary, "pciefw-replay")
    r = run([replay, "--help"])
    assert r.returncode == 0 and r.stdout.startswith("Usage: pciefw-replay")
    for opt in ("--as-endpoint", "--listen", "--timing", "--keep-going", "--ignore",
                "--context", "--timeout", "--loose-irqs", "Exit status"):
        assert opt in r.stdout, opt
    trace, addr = testdev_recording[0], "unix:/tmp/x"
    for args, message in [
            ([], "expected TRACE ADDR"),
            ([trace], "expected TRACE ADDR"),
            ([trace, "nowhere"], "expected tcp:HOST:PORT or unix:PATH"),
            (["--as-endpoint", trace], "needs --listen"),
            (["--listen", addr, trace, addr], "--listen is for --as-endpoint"),
            (["--ignore", "colour", trace, addr], "no message kind has a field 'colour'"),
            (["--ignore", "dma_write.tag", trace, addr], "dma_write has no field 'tag'"),
            (["--ignore", "teleport.data", trace, addr], "unknown message kind 'teleport'"),
            (["--context", "-1", trace, addr], "--context '-1'"),
            (["--timeout", "soon", trace, addr], "--timeout 'soon'"),
            (["--frobnicate", trace, addr], "unrecognized option")]:
        r = run([replay, *args])
        assert r.returncode == 2, (args, r.stderr)
        assert message in r.stderr, (args, r.stderr)


def test_progress_bar_on_a_terminal(testdev_recording, harness, endpoint_binary):
    import pty
    ep = harness.endpoint(name="tty")
    master, slave = pty.openpty()
    try:
        p = subprocess.Popen([tool(endpoint_binary, "pciefw-replay"),
                              testdev_recording[0], ep.address],
                             stdout=subprocess.PIPE, stderr=slave)
        out, _ = p.communicate(timeout=60)
        os.close(slave)
        slave = None
        err = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            err += chunk
    finally:
        if slave is not None:
            os.close(slave)
        os.close(master)
    assert p.returncode == 0, out
    assert re.search(rb"\[#+\.*\] +\d+% \d+/\d+ messages, 0 divergences", err), err
    assert err.endswith(b"\r\x1b[K"), err[-80:]             # cleared at the end
    assert b"\r" not in out


# ---------------------------------------------------------------------------
# The NIC: a real guest session


NIC_SCRIPT = """#!/bin/sh
# A config read of the device-specific region (offsets 0x40, 0x44, 0x48)
# marks the end of each phase in the traces.
mark() {{
    dd if=/sys/class/net/eth0/device/config of=/dev/null bs=4 skip=$1 count=1 2>/dev/null
}}
insmod {driver} irq_mode=msix || exit 10
ip link set eth0 up || exit 11
udhcpc -i eth0 -n -q -t 10 -T 1 -s {udhcpc} || exit 12
mark 16
ping -c 3 -i 0.2 -W 5 10.0.2.2 || exit 13
mark 17
head -c {size} /dev/urandom | nc 10.0.2.2 {port} || exit 14
mark 18
"""
NIC_TRANSFER = 64 << 10


class PortSink(threading.Thread):
    """Takes one TCP connection on 127.0.0.1:@port (0: any), reads @size
    bytes and closes it (the guest's nc waits for that): the host end of the
    guest's transfer, recorded and replayed.  SO_REUSEADDR, so that a
    replay can listen on the recorded port while the recorded connection is
    in TIME_WAIT."""

    def __init__(self, port, size):
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", port))
        self.sock.listen(1)
        self.sock.settimeout(60)
        self.port = self.sock.getsockname()[1]
        self.conn = None
        self.size = size
        self.received = 0
        self.start()

    def run(self):
        try:
            self.conn, _ = self.sock.accept()
            self.conn.settimeout(60)
            while self.received < self.size:
                data = self.conn.recv(1 << 16)
                if not data:
                    break
                self.received += len(data)
            self.conn.close()
        except OSError:
            pass

    def close(self):
        """Stop listening (and reading), so that the port is free again."""
        for sock in (self.sock, self.conn):
            if sock:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
        self.join(10)
        for sock in (self.sock, self.conn):
            if sock:
                sock.close()


def pb_fields(buf):
    """{field number: value} of one protobuf message (varint and bytes)."""
    out, i = {}, 0
    while i < len(buf):
        key, i = _varint(buf, i)
        if key & 7 == 0:
            out[key >> 3], i = _varint(buf, i)
        elif key & 7 == 2:
            n, i = _varint(buf, i)
            out[key >> 3], i = buf[i:i + n], i + n
        elif key & 7 == 5:
            out[key >> 3], i = buf[i:i + 4], i + 4
        elif key & 7 == 1:
            out[key >> 3], i = buf[i:i + 8], i + 8
        else:
            raise ValueError("unexpected wire type")
    return out


def _varint(buf, i):
    v = shift = 0
    while True:
        b = buf[i]
        i += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, i


def first_tcp_rx(trace):
    """Record number of the first TCP segment from slirp the NIC delivered
    (a DmaWrite of a frame from 10.0.2.2 with IP protocol 6)."""
    for idx, d, rtype, frame in records(trace):
        if rtype != 0:
            continue
        msg = pb_fields(frame[4:])
        if d == 1 and 10 in msg:                      # Message.dma_write
            data = pb_fields(msg[10]).get(2, b"")
            if len(data) > 34 and data[12:14] == b"\x08\x00" and data[23] == 6 \
                    and data[26:30] == bytes([10, 0, 2, 2]):
                return idx
    raise AssertionError("no TCP segment delivered to the guest")


def test_nic_session_replay(harness, tmp_path, endpoint_binary):
    """Boot, driver probe, DHCP, ping and a small TCP transfer through the
    nic model with slirp, recorded at both ends, then replayed as the host
    against fresh nic endpoints.  What is deterministic, and checked:

    - up to the end of DHCP the replay matches, as fast as it goes, with
      every ordering strict;
    - up to the end of the ping it matches when interrupts are matched per
      vector (--loose-irqs): the nic's interrupt moderation (ITR, 20 us per
      vector) holds an MSI-X back when the replay sends faster than the
      recording did, and it then comes after DMA that followed it when
      recorded (strict, the replay nearly always diverges there; --timing
      does not avoid it reliably, its pacing is not that precise);
    - without a host end for the TCP transfer, slirp answers the guest's SYN
      with a RST: the first divergence is exactly that frame;
    - another MAC address shows in the driver's first read of MAC_LO.

    Not deterministic, so only bounded: the TCP transfer, even with its host
    end listening again.  slirp's frames (ACKs, window updates) come from
    its own timers and the host socket's progress, and where they land
    relative to the guest's RX_TAIL doorbells changes the nic's DMA sequence
    (an RX descriptor fetch before or after a frame's write).  The whole
    replay may match or not; its divergences are all in the transfer."""
    replay = tool(endpoint_binary, "pciefw-replay")
    ep_trace, q_trace = harness.path("nic-ep.pcapng"), harness.path("nic-qemu.pcapng")
    # The guest's transfer goes to PortSink on the host's 127.0.0.1.
    ep = harness.endpoint(name="nic", device=f"nic,mac={NIC_MAC},host-loopback=on",
                          args=["--trace", ep_trace])
    sink = PortSink(0, NIC_TRANSFER)
    initrd = guestlib.make_initramfs(
        tmp_path, NIC_SCRIPT.format(driver=DRIVER_KO, udhcpc=UDHCPC, size=NIC_TRANSFER,
                                   port=sink.port), guest_files())
    args = nic_device_args(ep.address)
    args[-1] += f",trace={q_trace}"
    try:
        # Both ends record the same DMA only when it goes by messages: a
        # copy into shared RAM is the endpoint's alone (spec 10.5).
        res = guestlib.boot_guest(harness.qemu_binary, initrd, args, timeout=240,
                                  memory=256, shared_ram=False)
    finally:
        sink.close()
    assert res.status == 0, res.describe()
    assert "PCIEFW-DHCP: eth0 10.0.2.15" in res.console, res.describe()
    assert "3 packets received" in res.console, res.describe()
    assert sink.received == NIC_TRANSFER, sink.received
    # QEMU is gone; once the endpoint has seen it go, stopping it adds no
    # goodbye to its trace.
    wait_until(lambda: "closed: host disconnected" in ep.output(),
               "the endpoint to see QEMU go")
    assert ep.stop() == 0, ep.output()

    assert_recordings_agree(endpoint_binary, ep_trace, q_trace)
    lines = trace_lines(endpoint_binary, ep_trace)

    def completion_of(request):
        i, tag = next((i, m.group(1)) for i, (_, d, t) in enumerate(lines)
                      if (m := re.match(request, t)))
        return next(j for j, d, t in lines[i:]
                    if d == "E>H" and t.startswith(f"completion tag={tag} "))

    dhcp_done = completion_of(r"config_read tag=(\d+) offset=0x40 ")
    ping_done = completion_of(r"config_read tag=(\d+) offset=0x44 ")
    mac_lo = completion_of(r"mem_read tag=(\d+) bar=0 offset=0x8 size=4$")
    syn_ack = first_tcp_rx(ep_trace)
    assert mac_lo < dhcp_done < ping_done < syn_ack, (mac_lo, dhcp_done, ping_done, syn_ack)

    def against_fresh_nic(name, *opts, mac=NIC_MAC, trace=ep_trace):
        nic = harness.endpoint(name=name, device=f"nic,mac={mac},host-loopback=on")
        r = run([replay, *opts, trace, nic.address])
        nic.stop()
        return r

    def divergences(out):
        """Record numbers of the divergences: 'at' a recorded message, or
        'after' the last one handled (a message the recording does not have)."""
        return [int(x) for x in re.findall(r"^divergence \d+ (?:at|after) record #(\d+)",
                                           out, re.M)]

    # Driver probe and DHCP, as fast as it goes, every ordering strict.
    for trace in (ep_trace, q_trace):
        r = against_fresh_nic("dhcp", "--until", str(dhcp_done), trace=trace)
        assert r.returncode == 0, r.stdout + r.stderr
        # Messages up to that record number (a session record is not one).
        n = sum(1 for i, _, t in trace_lines(endpoint_binary, trace)
                if i <= dhcp_done and not t.startswith(NOT_REPLAYED))
        assert re.search(rf"replayed {n} of {n} messages \(up to record "
                         rf"#{dhcp_done}: a prefix of the trace\) .*: 0 divergences$",
                         r.stdout), r.stdout
    # And the ping, with interrupts matched per vector.
    for trace in (ep_trace, q_trace):
        r = against_fresh_nic("ping", "--loose-irqs", "--until", str(ping_done),
                              trace=trace)
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout.splitlines()[-1].endswith(": 0 divergences"), r.stdout

    # Nobody listening on the host: slirp resets the guest's connection at
    # once, so the first divergence is its RST (a 54-byte frame) where the
    # recording has the SYN-ACK, or where the RST overtook the write-back
    # of a frame the guest sent just before (the replay does not wait for
    # the host, the recording did).
    r = against_fresh_nic("no-peer", "--loose-irqs")
    assert r.returncode == 1, r.stdout
    first = re.search(r"^divergence 1 at record #(\d+) .*: dma_write differs in "
                      r"(?:address, )?data\n.*\n +actual: .* dma_write address=\S+ "
                      r"data=\S+ \(54 bytes\)$", r.stdout, re.M)
    assert first and ping_done < int(first.group(1)) <= syn_ack, r.stdout

    # The whole session with the host end of the transfer listening again.
    # Every record is replayed; divergences, if any, are in the transfer:
    # slirp's own timers (delayed ACKs, window updates) land where the
    # replaying machine's timing puts them relative to a doorbell, which on
    # a loaded machine is often not where the recording had them.
    def whole(trace):
        peer = PortSink(sink.port, NIC_TRANSFER)
        try:
            r = against_fresh_nic("whole", "--loose-irqs", "--keep-going", trace=trace)
        finally:
            peer.close()
        assert r.returncode in (0, 1), r.stdout + r.stderr
        found = divergences(r.stdout)
        n = sum(1 for _, _, t in lines if not t.startswith(NOT_REPLAYED))
        assert re.search(rf"replayed {n} of {n} messages in .*: "
                         rf"{len(found)} divergences?$", r.stdout), r.stdout
        assert all(i >= syn_ack for i in found), r.stdout
        print(f"{os.path.basename(trace)}: whole session replayed with "
              f"{len(found)} divergences (first at #{found[0] if found else '-'}; "
              f"transfer from #{syn_ack}); the host end got {peer.received} bytes")
        return found

    for trace in (ep_trace, q_trace):
        whole(trace)

    # Another MAC address: the driver's first read of MAC_LO tells.
    r = against_fresh_nic("other-mac", mac="52:54:00:00:00:01")
    assert r.returncode == 1, r.stdout
    assert re.search(rf"^divergence 1 at record #{mac_lo} .*: completion differs in data\n"
                     r"  expected: .* data=0x5e005452\n  actual: .* data=0x00005452\n",
                     r.stdout, re.M), r.stdout


def test_replay_of_interrupt_settings(harness, endpoint_binary):
    """Spec 12.6: a session that carried InterruptConfig (a host and
    QEMU's pciefw-epc, which offers it; the EPC's own trace) replays as
    recorded against a fresh EPC, whose registers then hold the host's
    settings (docs/epc.md 3.4); a recording whose host did not offer the
    feature replays to the same EPC without them, as spec 12.1 wants."""
    from epcqtest import REGS, program_function, start_epc
    trace = harness.path("irq-epc.pcapng")
    q, qt, addr = start_epc(harness, f",trace={trace}", name="rec")
    program_function(qt)
    c = pfwire.Conn(addr)
    qt.writel(REGS + 0x010, 1)
    c.handshake(minor=3, features=3 | pfwire.FEATURE_INTERRUPT_CONFIG)
    c.send(pfwire.interrupt_config(msi_enabled=True, msi_vectors=2,
                                   msi_address=0xFEE01004, msi_data=0x4040)
           + pfwire.message("mem_read", (1, 1), (2, 0), (3, 0), (4, 4)))
    assert c.until("completion")[-1][1].get(1) == 1
    c.close()
    wait_until(lambda: "host disconnected" in q.output(), "the EPC to see the host go")
    q.stop()
    assert [t.split()[0] for _, d, t in trace_lines(endpoint_binary, trace)
            if d == "H>E"] == ["hello", "interrupt_config", "mem_read"]
    replay = tool(endpoint_binary, "pciefw-replay")
    for i, offered in enumerate((True, False)):
        if not offered:
            # The recorded host's Hello without bit 4: features 0x13 -> 0x03.
            data = bytearray(open(trace, "rb").read())
            at = data.index(b"\x20\x13\x2a")      # Hello.features, peer_name
            data[at + 1] = 0x03
            open(trace, "wb").write(bytes(data))
        live = harness.path(f"fresh{i}.pcapng")
        q, qt, addr = start_epc(harness, f",trace={live}", name=f"fresh{i}")
        program_function(qt)
        qt.writel(REGS + 0x010, 1)
        r = run([replay, trace, addr])
        assert r.returncode == 0, r.stdout + r.stderr
        assert r.stdout.splitlines()[-1].endswith(": 0 divergences"), r.stdout
        # The settings came (EVENTS.HOST_IRQ_CONFIG stays set after the
        # session, which took the registers back to the reset state).
        assert bool(qt.readl(REGS + 0x01C) & 0x10) == offered
        q.stop()
        got = [t for _, d, t in trace_lines(endpoint_binary, live) if d == "H>E"]
        assert [t.split()[0] for t in got] == \
            (["hello", "interrupt_config", "mem_read"] if offered else
             ["hello", "mem_read"]), got
        if offered:
            assert got[1].startswith("interrupt_config msi=on/2 "
                                     "address=0xfee01004 data=0x4040"), got
