"""The table of docs/protocol.md 7.1, from each violation to its ErrorCode,
checked against the real receivers: the test reads the table from the spec
and sends every case a pciefw-endpoint can receive, byte by byte (pfwire,
written from the spec alone), then checks the Error it gets back and that
the endpoint closes the connection cleanly after it; and it sends every
case a host can receive to the real QEMU device from a fake endpoint.  A case in the table
with no driver here, or a driver with no row, fails the test: the document
and the code stay in step."""

import os
import re
import shutil
import socket
import struct
import tempfile
import threading

import pytest

import pfwire
from epcqtest import REGS, program_function, start_epc
from procs import Endpoint, endpoint_in_tempdir
from pfwire import message

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PAYLOAD = 4096                      # the max payload every case negotiates


def spec_table():
    """{case: (receiver, code)} from section 7.1 of docs/protocol.md."""
    text = open(os.path.join(REPO, "docs", "protocol.md")).read()
    section = text[text.index("### 7.1"):text.index("### 7.2")]
    rows = re.findall(r"^\| `([a-z0-9-]+)` \| .*? \| (either|host|endpoint) \| "
                      r"`(ERROR_[A-Z_]+)` \|$", section, re.M)
    table = {case: (receiver, code) for case, receiver, code in rows}
    assert len(table) == len(rows) and len(table) >= 30, rows
    return table


# ---------------------------------------------------------------------------
# Drivers: each opens connections to @ep and sends one violation; it returns
# the connection whose Error is checked.

def _ready(ep):
    c = pfwire.Conn(ep.address)
    c.handshake(max_payload=PAYLOAD)
    return c


def _after_handshake(*frames):
    def drive(ep):
        c = _ready(ep)
        c.send(b"".join(frames))
        return c
    return drive


def _instead_of_hello(data):
    def drive(ep):
        c = pfwire.Conn(ep.address)
        c.send(data)
        return c
    return drive


def _wrong_length_completion(ep):
    """testdev's SUM makes the endpoint read 4 bytes by DMA (docs/testdev.md);
    the host answers with 2."""
    c = _ready(ep)
    wr = lambda off, v: message("mem_write", (1, 0), (2, off), (3, v.to_bytes(4, "little")))
    c.send(wr(0x10, 0x1000) + wr(0x20, 4) + wr(0x24, 1 | 2 << 4))
    kind, dma = c.until("dma_read")[-1]
    assert dma.get(3) == 4, dma
    c.send(message("completion", (1, dma.get(1, 0)), (2, 0), (3, b"\x01\x02")))
    return c


def _too_many_held(ep):
    """testdev's FETCH read waits for its DMA read, which we never answer;
    the requests sent behind it are held, up to the limit of 5.3."""
    c = _ready(ep)
    c.send(message("mem_write", (1, 0), (2, 0x58), (3, (0x1000).to_bytes(8, "little")))
           + _mem_read(tag=1, offset=0x60))
    c.until("dma_read")
    wr = message("mem_write", (1, 0), (2, 4), (3, bytes(4)))
    c.send(wr * 257)
    return c


def _second_host(ep):
    first = _ready(ep)
    c = pfwire.Conn(ep.address)
    c.send(pfwire.hello())          # as a host does, without waiting
    c.keep = first                  # the first host stays connected
    return c


def _negotiated(feature, minor, act):
    """A host that negotiated @feature (introduced in 1.@minor), then @act."""
    def drive(ep):
        c = pfwire.Conn(ep.address)
        c.handshake(max_payload=PAYLOAD, minor=minor, features=3 | feature)
        act(c)
        return c
    return drive


def _guest_memory(act):
    """After a handshake that negotiated guest memory (spec 10.1)."""
    return _negotiated(pfwire.FEATURE_GUEST_MEMORY, 1, act)


def _shm_rings(act):
    """After a handshake that negotiated the rings (spec 11.1)."""
    return _negotiated(pfwire.FEATURE_SHM_RINGS, 2, act)


def _stray_socket_byte(ep):
    """On the rings, a zero byte on the socket that carries no fds."""
    c = pfwire.RingHost(ep.address)
    c.handshake(max_payload=PAYLOAD, minor=2, features=3 | pfwire.FEATURE_SHM_RINGS)
    assert c.setup().get(1, 0) == 1
    c.sock.sendall(b"\x00")
    return c


RECORDS = 3 | pfwire.FEATURE_SHM_RINGS | pfwire.FEATURE_REG_RECORDS


def _records(record):
    """On the rings with binary register records negotiated (1.4, spec
    11.7), a host that then writes @record."""
    def drive(ep):
        c = pfwire.RingHost(ep.address)
        c.handshake(max_payload=PAYLOAD, minor=4, features=RECORDS)
        assert c.setup().get(1, 0) == 1 and c.records
        c.send(record)
        return c
    return drive


def _pass_65_fds(c):
    r, w = os.pipe()
    try:
        c.send_fds(pfwire.bus_master(False), [r] * 65)
    finally:
        os.close(r)
        os.close(w)


def _mem_read(tag=1, bar=0, offset=0, size=4):
    return message("mem_read", (1, tag), (2, bar), (3, offset), (4, size))


DRIVERS = {
    "zero-length-frame": _after_handshake(b"\x00\x00\x00\x00"),
    "undecodable": _after_handshake(pfwire.frame(b"\xff" * 6)),
    "unknown-kind": _after_handshake(pfwire.frame(b"\x9a\x06\x00")),
    "oversized-frame": _after_handshake(b"\x41\x10\x00\x00" + b"\x00" * 16),
    "oversized-handshake-frame": _instead_of_hello(b"\x01\x10\x00\x00" + b"\x00" * 16),
    "first-not-hello": _instead_of_hello(_mem_read()),
    "bad-magic": _instead_of_hello(pfwire.hello(magic=0x12345678)),
    "version-major": _instead_of_hello(pfwire.hello(major=2)),
    "payload-below-8": _instead_of_hello(pfwire.hello(max_payload=4)),
    "long-peer-name": _instead_of_hello(pfwire.hello(name="n" * 65)),
    "second-hello": _after_handshake(pfwire.hello()),
    "msix-from-host": _after_handshake(message("msix", (1, 1))),
    "description-from-host": _after_handshake(message("device_description", (1, 0x1234))),
    "bar-index-6": _after_handshake(_mem_read(bar=6)),
    "config-offset-4096": _after_handshake(message("config_read", (1, 1), (2, 4096), (3, 4))),
    "config-size-3": _after_handshake(message("config_read", (1, 1), (2, 0x40), (3, 3))),
    "io-size-8": _after_handshake(message("io_read", (1, 1), (2, 4), (3, 0), (4, 8))),
    "mem-read-size-0": _after_handshake(_mem_read(size=0)),
    "mem-write-empty": _after_handshake(message("mem_write", (1, 0), (2, 4))),
    "mem-wraps": _after_handshake(_mem_read(bar=2, offset=(1 << 64) - 1, size=2)),
    "reset-kind-7": _after_handshake(message("reset", (1, 1), (2, 7))),
    "completion-status-9": _after_handshake(message("completion", (1, 1), (2, 9))),
    "completion-status-timeout": _after_handshake(message("completion", (1, 1), (2, 4))),
    "completion-error-with-data": _after_handshake(
        message("completion", (1, 1), (2, 1), (3, b"\x00" * 4))),
    "completion-wrong-length": _wrong_length_completion,
    "unknown-tag": _after_handshake(message("completion", (1, 0xDEADBEEF), (3, b"\x00" * 4))),
    "mem-read-above-max-payload": _after_handshake(_mem_read(bar=2, size=PAYLOAD + 1)),
    "mem-write-above-max-payload": _after_handshake(
        message("mem_write", (1, 2), (2, 0), (3, b"\x00" * (PAYLOAD + 1)))),
    "completion-above-max-payload": _after_handshake(
        message("completion", (1, 1), (3, b"\x00" * (PAYLOAD + 1)))),
    "long-text": _after_handshake(message("goodbye", (1, 0), (2, "t" * 1025))),
    "second-host": _second_host,
    "too-many-held-requests": _too_many_held,
    "guest-memory-unnegotiated": _after_handshake(pfwire.bus_master(True)),
    "memory-map-overlap": _after_handshake(
        pfwire.memory_map((0, 0x2000, 0), (0x1000, 0x1000, 0))),
    "memory-map-too-many": _after_handshake(
        pfwire.memory_map(*[(i << 12, 0x1000, 0) for i in range(33)])),
    "memory-map-fds": _guest_memory(lambda c: c.send(
        pfwire.memory_map((0, 0x1000, 0)))),
    "too-many-fds": _guest_memory(_pass_65_fds),
    "rings-unnegotiated": _after_handshake(pfwire.ring_setup(1 << 20)),
    "ring-setup-fds": _shm_rings(lambda c: c.send(pfwire.ring_setup(1 << 20))),
    "socket-bytes-after-rings": _stray_socket_byte,
    "binary-record-malformed": _records(pfwire.regrec("mem_read", tag=1, size=4,
                                                      marker=0x81)),
    "binary-record-size": _records(pfwire.regrec("mem_read", tag=1, size=9)),
    "binary-record-direction": _records(pfwire.regrec("completion", tag=1,
                                                      data=bytes(4))),
    # pciefw-endpoint does not offer the interrupt settings (spec 12.1):
    # a host that offers them is sent none and must send none.
    "interrupt-config-unnegotiated": _negotiated(
        pfwire.FEATURE_INTERRUPT_CONFIG, 3,
        lambda c: c.send(pfwire.interrupt_config(msi_enabled=True, msi_vectors=1))),
    "interrupt-config-bad": _after_handshake(
        pfwire.interrupt_config(msi_enabled=True, msi_vectors=3)),
    "interrupt-config-too-many-entries": _after_handshake(pfwire.interrupt_config(
        entries=[(v, 0, 0, True) for v in range(65)])),
}


@pytest.fixture(scope="module")
def endpoint(endpoint_binary):
    with endpoint_in_tempdir(endpoint_binary, prefix="pfe-") as ep:
        yield ep


def test_every_endpoint_case_has_a_driver():
    table = spec_table()
    endpoint_cases = {c for c, (recv, _) in table.items() if recv != "host"}
    drivers = set(DRIVERS) | set(EPC_CASES)
    assert endpoint_cases == drivers, (endpoint_cases ^ drivers)


@pytest.mark.parametrize("case", sorted(DRIVERS))
def test_endpoint_sends_the_code_of_the_table(endpoint, case):
    receiver, code = spec_table()[case]
    c = DRIVERS[case](endpoint)
    try:
        # Whatever came before (a hello refused with its own), the last
        # message is the Error, and then a clean end of stream: no reset.
        got = c.rest()
    finally:
        c.close()
        if hasattr(c, "keep"):
            c.keep.close()
    assert got and got[-1][0] == "error", (case, got)
    fields = got[-1][1]
    assert pfwire.ERROR_CODES[fields.get(1, 0)] == code, (case, fields)
    assert fields.get(2), f"{case}: the Error has no text"
    assert endpoint.alive()


def test_rules_on_the_message_come_before_rules_in_context(endpoint):
    """Spec 7.1's order: a completion of a 4-byte DMA read with more than
    max payload bytes breaks a limit (the message alone) and the length
    rule (in context); the limit is what the endpoint reports."""
    c = _ready(endpoint)
    wr = lambda off, v: message("mem_write", (1, 0), (2, off), (3, v.to_bytes(4, "little")))
    c.send(wr(0x10, 0x1000) + wr(0x20, 4) + wr(0x24, 1 | 2 << 4))
    kind, dma = c.until("dma_read")[-1]
    c.send(message("completion", (1, dma.get(1, 0)), (2, 0),
                   (3, bytes(PAYLOAD + 1))))
    got = c.rest()
    c.close()
    assert got and got[-1][0] == "error", got
    assert pfwire.ERROR_CODES[got[-1][1].get(1, 0)] == "ERROR_LIMIT", got


@pytest.mark.parametrize("transport", ["unix", "tcp"])
def test_busy_refusal_reaches_a_host_that_said_hello(endpoint_binary, transport):
    """Spec 2.4: the second host sends its Hello at once, then reads
    Error{ERROR_BUSY} and a clean end of stream: no EPIPE on its write, no
    reset losing the Error; and the first host is still served."""
    workdir = tempfile.mkdtemp(prefix="pfb-", dir="/tmp")
    listen = f"unix:{workdir}/ep.sock" if transport == "unix" else "tcp:127.0.0.1:0"
    ep = Endpoint(endpoint_binary, workdir, listen)
    try:
        first = _ready(ep)
        for _ in range(5):
            c = pfwire.Conn(ep.address)
            c.send(pfwire.hello())
            got = c.rest()
            c.close()
            assert [m[0] for m in got] == ["error"], got
            assert pfwire.ERROR_CODES[got[0][1][1]] == "ERROR_BUSY"
            assert b"busy" in got[0][1][2]
        first.send(_mem_read(tag=7))
        assert first.until("completion")[-1][1].get(1) == 7
        first.close()
    finally:
        ep.stop()
        shutil.rmtree(workdir, ignore_errors=True)


@pytest.mark.parametrize("when", ["instead-of-hello", "after-handshake"])
@pytest.mark.parametrize("kind", ["goodbye", "error"])
def test_goodbye_or_error_gets_no_answer(endpoint, when, kind):
    """Spec 7.2: a receiver of Goodbye or Error, even as the first message,
    handles nothing after it, answers nothing and closes."""
    c = pfwire.Conn(endpoint.address)
    if when == "after-handshake":
        c.handshake()
    bye = message(kind, (1, 0), (2, "test leaving"))
    c.send(bye + _mem_read(tag=5))              # the read must not be served
    got = c.rest()
    c.close()
    expected = ["hello"] if when == "instead-of-hello" else []
    assert [m[0] for m in got] == expected, got
    assert endpoint.alive()


# ---------------------------------------------------------------------------
# The endpoint side played by QEMU's pciefw-epc (docs/epc.md), which offers
# the interrupt settings (spec 12): the rows pciefw-endpoint cannot meet,
# and the others of section 12 again, against its function as
# epcqtest.program_function() declares it (4 MSI, 8 MSI-X vectors).

IRQCFG_FEATURES = 3 | pfwire.FEATURE_INTERRUPT_CONFIG


def _epc_host(frames, features=IRQCFG_FEATURES):
    def drive(harness):
        q, qt, addr = start_epc(harness)
        program_function(qt)
        c = pfwire.Conn(addr)
        qt.writel(REGS + 0x010, 1)                  # START
        c.handshake(max_payload=PAYLOAD, minor=3, features=features)
        c.send(frames)
        c.qemu = q
        return c
    return drive


EPC_CASES = {
    "interrupt-config-unnegotiated": [_epc_host(
        pfwire.interrupt_config(msi_enabled=True, msi_vectors=1), features=3)],
    "interrupt-config-bad": [
        _epc_host(pfwire.interrupt_config(msi_vectors=4)),
        _epc_host(pfwire.interrupt_config(entries=[(2048, 0, 0, True)])),
        _epc_host(pfwire.interrupt_config(entries=[(1, 0, 0, 1), (1, 0, 0, 0)]))],
    "interrupt-config-too-many-entries": [_epc_host(pfwire.interrupt_config(
        entries=[(v, 0, 0, True) for v in range(65)]))],
    "interrupt-config-vector-undeclared": [
        _epc_host(pfwire.interrupt_config(msi_enabled=True, msi_vectors=8)),
        _epc_host(pfwire.interrupt_config(entries=[(8, 0xFEE00000, 0, False)]))],
}


@pytest.mark.parametrize("case", sorted(EPC_CASES))
def test_epc_sends_the_code_of_the_table(harness, case):
    receiver, code = spec_table()[case]
    assert receiver == "endpoint"
    for drive in EPC_CASES[case]:
        c = drive(harness)
        try:
            got = c.rest()
        finally:
            c.close()
        assert got and got[-1][0] == "error", (case, got)
        fields = got[-1][1]
        assert pfwire.ERROR_CODES[fields.get(1, 0)] == code, (case, fields)
        assert fields.get(2), f"{case}: the Error has no text"
        assert c.qemu.alive()
        c.qemu.stop()


# ---------------------------------------------------------------------------
# The host side: the same table, with the real QEMU device as the receiver
# and a fake endpoint (pfwire) sending each violation a host can receive.


def _description():
    """testdev-like: 1234:fe01, BAR0 mem32 4 KiB, INTA#."""
    bar0 = pfwire.field(1, 0) + pfwire.field(2, 0) + pfwire.field(4, 4096)
    return message("device_description", (1, 0x1234), (2, 0xFE01), (5, 0xFF0000),
                   (7, bar0), (14, 1))


class _FakeEndpoint(threading.Thread):
    """Accepts QEMU on @path, sends @prelude, answers Resets, sends @after
    once the first Reset is answered (or answers the first ConfigRead with
    @wrong_read), and records what QEMU sends until it closes."""

    def __init__(self, path, prelude, after=b"", wrong_read=None):
        super().__init__(daemon=True)
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(1)
        self.prelude, self.after, self.wrong_read = prelude, after, wrong_read
        self.got = []
        self.start()

    def run(self):
        self.srv.settimeout(30)
        try:
            conn, _ = self.srv.accept()
        except OSError:
            return
        conn.settimeout(30)
        buf, sent_after = b"", False
        conn.sendall(self.prelude)
        try:
            while True:
                data = conn.recv(65536)
                if not data:
                    break
                buf += data
                while len(buf) >= 4 and len(buf) >= 4 + struct.unpack_from("<I", buf)[0]:
                    n = struct.unpack_from("<I", buf)[0]
                    kind, f = pfwire.decode(buf[4:4 + n])
                    buf = buf[4 + n:]
                    self.got.append((kind, f))
                    if kind == "reset":
                        conn.sendall(message("completion", (1, f.get(1, 0))))
                        if not sent_after:
                            conn.sendall(self.after)
                            sent_after = True
                    elif kind == "config_read":
                        data = self.wrong_read if self.wrong_read is not None else bytes(4)
                        conn.sendall(message("completion", (1, f.get(1, 0)), (3, data)))
        except OSError:
            pass
        conn.close()
        self.srv.close()


def _hello_then(violation):
    return pfwire.hello(max_payload=PAYLOAD) + _description(), violation


QEMU_CASES = {
    # before the handshake completes: QEMU refuses the device and exits
    "oversized-handshake-frame": (b"\x01\x10\x00\x00" + bytes(16), None),
    "first-not-hello": (message("msix", (1, 1)), None),
    "bad-magic": (pfwire.hello(magic=0x12345678), None),
    "version-major": (pfwire.hello(major=2), None),
    "payload-below-8": (pfwire.hello(max_payload=4), None),
    "long-peer-name": (pfwire.hello(name="n" * 65), None),
    "bad-description": (pfwire.hello() + message(
        "device_description", (1, 0x1234), (2, 0xFE01),
        (7, pfwire.field(1, 0) + pfwire.field(2, 9) + pfwire.field(4, 4096))), None),
    # after it: QEMU carries on without its endpoint
    "zero-length-frame": _hello_then(b"\x00\x00\x00\x00"),
    "undecodable": _hello_then(pfwire.frame(b"\xff" * 6)),
    "unknown-kind": _hello_then(pfwire.frame(b"\x9a\x06\x00")),
    "oversized-frame": _hello_then(b"\x41\x10\x00\x00" + bytes(16)),
    "second-hello": _hello_then(pfwire.hello()),
    "request-from-endpoint": _hello_then(_mem_read()),
    "completion-status-9": _hello_then(message("completion", (1, 1), (2, 9))),
    "completion-status-timeout": _hello_then(message("completion", (1, 1), (2, 4))),
    "completion-error-with-data": _hello_then(
        message("completion", (1, 1), (2, 1), (3, bytes(4)))),
    "completion-wrong-length": _hello_then(None),
    "unknown-tag": _hello_then(message("completion", (1, 0xDEADBEEF))),
    "dma-read-above-max-payload": _hello_then(
        message("dma_read", (1, 1), (2, 0x1000), (3, PAYLOAD + 1))),
    "completion-above-max-payload": _hello_then(
        message("completion", (1, 1), (3, bytes(PAYLOAD + 1)))),
    "long-text": _hello_then(message("goodbye", (1, 0), (2, "t" * 1025))),
    "interrupt-config-from-endpoint": (
        pfwire.hello(minor=3, features=IRQCFG_FEATURES, max_payload=PAYLOAD)
        + _description(), pfwire.interrupt_config(msi_enabled=True, msi_vectors=1)),
}


def _qemu_on_rings_gets_a_socket_byte(harness):
    """QEMU on the rings with a scripted endpoint that then writes a byte
    on the socket beside them (spec 11.1)."""
    path = harness.path("rings.sock")
    greeting = pfwire.hello(minor=2, features=3 | pfwire.FEATURE_SHM_RINGS,
                            max_payload=PAYLOAD) + _description()
    peer = harness.track(pfwire.ScriptedEndpoint(path, greeting, rings=True))
    harness.qemu(["-M", "q35", "-device", f"pciefw,path={path},bus=pcie.0,addr=0x4"])
    assert peer.rings, "QEMU did not move to the rings"
    peer.conn.sendall(b"\x01")
    return peer


def _qemu_on_records_gets(record):
    """QEMU on the rings with binary register records negotiated (1.4,
    spec 11.7), and a scripted endpoint that then writes @record."""
    def drive(harness):
        path = harness.path("records.sock")
        greeting = pfwire.hello(minor=4, features=RECORDS,
                                max_payload=PAYLOAD) + _description()
        peer = harness.track(pfwire.ScriptedEndpoint(path, greeting,
                                                     rings=True))
        harness.qemu(["-M", "q35", "-device",
                      f"pciefw,path={path},bus=pcie.0,addr=0x4"])
        assert peer.rings and peer.records, "QEMU did not take records"
        peer.send(record)
        return peer
    return drive


# Cases whose violation needs the session on the rings.
QEMU_RING_CASES = {
    "socket-bytes-after-rings": _qemu_on_rings_gets_a_socket_byte,
    "binary-record-malformed": _qemu_on_records_gets(
        pfwire.regrec("completion", tag=1, data=bytes(4), marker=0x90)),
    "binary-record-size": _qemu_on_records_gets(
        pfwire.regrec("completion", tag=1, raw_size=9)),
    "binary-record-direction": _qemu_on_records_gets(
        pfwire.regrec("mem_read", tag=1, size=4)),
}


def test_every_host_case_has_a_driver():
    table = spec_table()
    host_cases = {c for c, (recv, _) in table.items() if recv != "endpoint"}
    drivers = set(QEMU_CASES) | set(QEMU_RING_CASES)
    assert host_cases == drivers, host_cases ^ drivers


@pytest.mark.parametrize("case", sorted(QEMU_RING_CASES))
def test_qemu_on_the_rings_sends_the_code_of_the_table(harness, case):
    _, code = spec_table()[case]
    peer = QEMU_RING_CASES[case](harness)
    err = peer.wait_for(lambda m: m.kind == pfwire.ERROR, what="QEMU's Error")
    assert pfwire.ERROR_CODES[err.get(1)] == code, err
    assert peer.wait_closed(30), "QEMU did not close the connection"


@pytest.mark.parametrize("case", sorted(QEMU_CASES))
def test_qemu_sends_the_code_of_the_table(harness, case):
    _, code = spec_table()[case]
    prelude, after = QEMU_CASES[case]
    path = harness.path("fake.sock")
    dev = f"pciefw,path={path},bus=pcie.0,addr=0x4"
    if after is None and case != "completion-wrong-length":
        peer = _FakeEndpoint(path, prelude)
        rc, out = harness.run_qemu(["-M", "q35", "-device", dev])
        assert rc != 0, out                  # the device was refused
    else:
        peer = _FakeEndpoint(path, prelude, after or b"",
                             wrong_read=b"\x01\x02" if after is None else None)
        q = harness.qemu(["-M", "q35", "-device", dev])
        if after is None:                    # a read for the wrong completion
            q.qtest.outl(0xCF8, 0x80000000 | 4 << 11 | 0x40)       # 00:04.0
            assert q.qtest.inl(0xCFC) == 0xFFFFFFFF
    peer.join(30)
    assert not peer.is_alive(), f"{case}: QEMU did not close the connection"
    kinds = [k for k, _ in peer.got]
    assert kinds and kinds[0] == "hello" and kinds[-1] == "error", (case, kinds)
    fields = peer.got[-1][1]
    assert pfwire.ERROR_CODES[fields.get(1, 0)] == code, (case, fields)
