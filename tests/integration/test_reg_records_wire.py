"""Binary register records (docs/protocol.md 11.7, protocol 1.4) on the
wire, from scripted peers written from the spec (pfwire): a host against
the real pciefw-endpoint and an endpoint against the real QEMU.  Records
among frames through a small ring (they straddle its wrap), every access
kind as a record, records held behind a deferred read, the trace, and
peers without the feature -- a 1.3 peer, a 1.4 peer that does not offer
it -- that keep every message a protobuf frame on the rings.  The
malformed, size and direction rows are in test_error_table.py."""

import os
import shutil
import subprocess
import tempfile

import pytest

import pfwire
from pfwire import message, regrec
from procs import Endpoint
from testdev_map import CFG_ID, ID, IO_ID, REG_FETCH, REG_FETCH_ADDR, \
    REG_INV, REG_SCRATCH, REG_SCRATCH64

DISSECTOR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "tools", "wireshark", "pciefw.lua")
RECORDS = 3 | pfwire.FEATURE_SHM_RINGS | pfwire.FEATURE_REG_RECORDS
IO_BAR = 4


@pytest.fixture
def traced_endpoint(endpoint_binary):
    """A testdev endpoint on a UNIX socket, recording (--trace)."""
    workdir = tempfile.mkdtemp(prefix="pfq-", dir="/tmp")
    trace = f"{workdir}/ep.pcapng"
    ep = Endpoint(endpoint_binary, workdir, f"unix:{workdir}/ep.sock",
                  "testdev", ["--trace", trace])
    ep.trace = trace
    try:
        yield ep
    finally:
        ep.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def ring_host(ep, minor=4, features=RECORDS, **kw):
    h = pfwire.RingHost(ep.address, **kw)
    h.handshake(minor=minor, features=features, max_payload=4096)
    assert h.setup().get(1, 0) == 1
    return h


def value(fields):
    return int.from_bytes(fields.get(3, b""), "little")


def answer(h, tag):
    """The next message: the completion of @tag, as (fields, was a record)."""
    kind, f = h.next()
    assert kind == "completion" and f.get(1, 0) == tag, (kind, f)
    assert f.get(2, 0) == pfwire.SC, f
    return f, "record" in f


def trace_lines(endpoint_binary, trace):
    tool = endpoint_binary.replace("endpoint/pciefw-endpoint", "tools/pciefw-trace")
    return subprocess.run([tool, str(trace)], check=True, text=True,
                          stdout=subprocess.PIPE).stdout.splitlines()


def test_records_among_frames(traced_endpoint, endpoint_binary):
    """Through a 4 KiB ring (records straddle its wrap: 4096 is no
    multiple of 24), writes and reads as records or frames in every mix,
    in order (5.1): each read sees the write before it, and every
    completion of 4 bytes comes back as a record.  The endpoint counts
    the records it took; its trace holds them as their messages, marked."""
    ep = traced_endpoint
    h = ring_host(ep, ring_bytes=4096)
    assert h.records
    ep.wait_log("shared-memory rings in use, with binary register records")
    sent = 0
    for i in range(400):
        v = (0x5EC0 << 16) | i
        as_record = i % 2 == 0
        w = v.to_bytes(4, "little")
        h.send(regrec("mem_write", offset=REG_SCRATCH, data=w) if as_record else
               message("mem_write", (1, 0), (2, REG_SCRATCH), (3, w)))
        h.send(message("mem_read", (1, i + 1), (2, 0), (3, REG_INV), (4, 4))
               if as_record else
               regrec("mem_read", tag=i + 1, offset=REG_INV, size=4))
        sent += 1
        f, rec = answer(h, i + 1)
        assert value(f) == v ^ 0xFFFFFFFF, (i, f)
        assert rec, f
    assert h.index(pfwire.TO_ENDPOINT, pfwire.CTL_TAIL) > 3 * 4096     # wrapped
    h.close()
    # Half the writes and half the reads.
    ep.wait_log(f"{sent} requests came as binary register records")
    ep.stop()
    lines = trace_lines(endpoint_binary, ep.trace)
    marked = [l for l in lines if l.endswith("[binary record]")]
    # Half the requests and all the completions.
    assert len(marked) == 400 + 400, len(marked)
    assert any("H>E  mem_read tag=2 bar=0 offset=0x8 size=4  [binary record]" in l
               for l in lines), lines[:40]
    if shutil.which("tshark"):
        # The dissector's pciefw.binary_record marks the same records.
        r = subprocess.run(["tshark", "-X", f"lua_script:{DISSECTOR}", "-r",
                            ep.trace, "-Y", "pciefw.binary_record", "-T", "fields",
                            "-e", "frame.number"], text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert r.returncode == 0 and "Lua Error" not in r.stderr, r.stderr
        assert r.stdout.split() == [l.split()[0][1:] for l in marked], \
            (r.stdout.split()[:10], marked[:10])


def test_every_kind_as_a_record(traced_endpoint):
    """Config, memory (1, 2, 4, 8 bytes) and IO accesses as records give
    what the same accesses give as frames."""
    h = ring_host(traced_endpoint)
    tag = iter(range(1, 1000))

    def rd(kind, off, size, bar=0):
        t = next(tag)
        h.send(regrec(kind, tag=t, bar=bar, offset=off, size=size))
        f, rec = answer(h, t)
        assert rec and len(f[3]) == size, f
        return value(f)

    def wr(kind, off, data, bar=0):
        t = 0 if kind == "mem_write" else next(tag)     # posted: no tag
        h.send(regrec(kind, tag=t, bar=bar, offset=off, data=data))
        if kind != "mem_write":
            f, rec = answer(h, t)
            assert rec and not f.get(3), f

    assert rd("config_read", 0x40, 4) == CFG_ID
    wr("config_write", 0x44, b"\x11\x22")
    assert rd("config_read", 0x44, 2) == 0x2211
    assert rd("io_read", 0, 4, bar=IO_BAR) == IO_ID
    wr("io_write", 4, b"\xa5", bar=IO_BAR)
    assert rd("io_read", 4, 1, bar=IO_BAR) == 0xA5
    wr("mem_write", REG_SCRATCH64, (0x0123456789ABCDEF).to_bytes(8, "little"))
    assert rd("mem_read", REG_SCRATCH64, 8) == 0x0123456789ABCDEF
    assert rd("mem_read", REG_SCRATCH64 + 4, 4) == 0x01234567
    assert rd("mem_read", REG_SCRATCH64 + 2, 2) == 0x89AB
    assert rd("mem_read", REG_SCRATCH64 + 7, 1) == 0x01
    assert rd("mem_read", 0, 4) == ID
    # An access the device cannot serve completes UR, as a record too.
    t = next(tag)
    h.send(regrec("mem_read", tag=t, bar=3, offset=0, size=4))
    kind, f = h.next()
    assert kind == "completion" and f[1] == t and f[2] == pfwire.UR, f
    assert "record" in f and not f[3], f
    h.close()


def test_records_wait_behind_a_deferred_read(traced_endpoint):
    """Spec 5.3 with records: testdev's FETCH (a record) waits for its DMA
    read; the records sent behind it are held, in order, while the DMA
    completion (a frame) is taken, and complete after FETCH."""
    h = ring_host(traced_endpoint)
    h.send(regrec("mem_write", offset=REG_FETCH_ADDR,
                  data=(0x7000).to_bytes(8, "little"))
           + regrec("mem_read", tag=1, offset=REG_FETCH, size=4)
           + regrec("mem_write", offset=REG_SCRATCH, data=(0xABCD).to_bytes(4, "little"))
           + regrec("mem_read", tag=2, offset=REG_INV, size=4))
    kind, dma = h.next()
    assert kind == "dma_read" and dma.get(2) == 0x7000, (kind, dma)
    h.send(message("completion", (1, dma[1]), (3, b"\x0d\xf0\xad\x0b")))
    f1, r1 = answer(h, 1)
    f2, r2 = answer(h, 2)
    assert value(f1) == 0x0BADF00D and value(f2) == 0xABCD ^ 0xFFFFFFFF
    assert r1 and r2
    h.close()


@pytest.mark.parametrize("minor, features", [(3, RECORDS), (4, RECORDS & ~32)],
                         ids=["1.3-host", "1.4-host-without-the-feature"])
def test_a_host_without_records_keeps_frames(traced_endpoint, minor, features):
    """A 1.3 host (bit 5 means nothing at 1.3) or a 1.4 host that does
    not offer the feature: the rings carry frames only, both ways."""
    ep = traced_endpoint
    h = ring_host(ep, minor=minor, features=features)
    assert not h.records
    h.records = True        # anything record-like from the endpoint shows
    for i in range(50):
        h.send(message("mem_write", (1, 0), (2, REG_SCRATCH),
                       (3, (i * 3).to_bytes(4, "little"))))
        h.send(message("mem_read", (1, i + 1), (2, 0), (3, REG_INV), (4, 4)))
        f, rec = answer(h, i + 1)
        assert not rec and value(f) == (i * 3) ^ 0xFFFFFFFF, f
    h.close()
    ep.wait_log("host disconnected")
    assert "with binary register records" not in ep.output()
    assert "came as binary register records" not in ep.output()


# ---------------------------------------------------------------------------
# The real QEMU against a scripted endpoint


def qemu_config_reads(harness, peer, n):
    """@n reads of the endpoint's config offset 0x40, through qtest."""
    q = harness.qemu(["-M", "q35", "-device",
                      f"pciefw,path={peer_path(harness)},bus=pcie.0,addr=0x4"])
    assert peer.rings, "QEMU did not move to the rings"
    for _ in range(n):
        q.qtest.outl(0xCF8, 0x80000000 | 4 << 11 | 0x40)      # 00:04.0
        assert q.qtest.inl(0xCFC) == 0
    return q


def peer_path(harness):
    return harness.path("scripted.sock")


@pytest.mark.parametrize("minor, features, records", [
    (4, RECORDS, True), (3, RECORDS, False), (4, RECORDS & ~32, False)],
    ids=["1.4-endpoint", "1.3-endpoint", "1.4-endpoint-without-the-feature"])
def test_qemu_sends_records_only_where_negotiated(harness, minor, features,
                                                  records):
    greeting = pfwire.hello(minor=minor, features=features,
                            max_payload=4096) + pfwire.description()
    peer = harness.track(pfwire.ScriptedEndpoint(peer_path(harness), greeting,
                                                 rings=True))
    qemu_config_reads(harness, peer, 20)
    reads = peer.wait_for(lambda m: m.kind == pfwire.CONFIG_READ)
    got = [m for m in peer.received if m.kind == pfwire.CONFIG_READ]
    assert len(got) >= 20, got
    assert all((m.record is not None) == records for m in got), (reads, got)
    if records:
        assert all(m.record[3] == 0x80 and len(m.record) == 24 for m in got)


def test_qemu_takes_completion_records(harness):
    """The scripted endpoint answers QEMU's reads with completion records:
    the guest's value comes through them, and QEMU's trace marks them."""
    trace = harness.path("qemu.pcapng")
    greeting = pfwire.hello(minor=4, features=RECORDS,
                            max_payload=4096) + pfwire.description()
    peer = harness.track(pfwire.ScriptedEndpoint(peer_path(harness), greeting,
                                                 rings=True))
    peer.reply_records = True
    q = harness.qemu(["-M", "q35", "-device",
                      f"pciefw,path={peer_path(harness)},bus=pcie.0,addr=0x4,"
                      f"trace={trace}"])
    assert peer.rings and peer.records
    # BAR0 at 0xE0000000, memory decoding on (00:04.0).
    q.qtest.outl(0xCF8, 0x80000000 | 4 << 11 | 0x10)
    q.qtest.outl(0xCFC, 0xE0000000)
    q.qtest.outl(0xCF8, 0x80000000 | 4 << 11 | 0x04)
    q.qtest.outw(0xCFC, 0x2)
    for i in range(10):
        peer.answer_reads_with = (0xC0DE0000 | i).to_bytes(4, "little")
        assert q.qtest.readl(0xE0000000 + 4 * i) == 0xC0DE0000 | i
    q.stop()
    tool = harness.endpoint_binary.replace("endpoint/pciefw-endpoint",
                                           "tools/pciefw-trace")
    out = subprocess.run([tool, trace], check=True, text=True,
                         stdout=subprocess.PIPE).stdout
    assert "E>H  completion tag=" in out, out
    assert "data=0xc0de0009  [binary record]" in out, out
    assert "H>E  mem_read tag=" in out and \
        "offset=0x24 size=4  [binary record]" in out, out
