"""The shared-memory rings (docs/protocol.md 11) through the real QEMU and
the real endpoint: used by default on a UNIX socket (so every qtest of
test_qemu_device.py runs over them), recorded in traces, the fallbacks,
either side dying while the other polls, and an endpoint that writes an
impossible index.  The hostile-host cases are in test_shm_rings_wire.py."""

import os
import re
import signal
import socket
import ctypes
import mmap
import subprocess
import threading
import time

import pytest

import pfwire
from test_qemu_device import TOPOLOGIES, DeviceUnderTest, start
from test_guest_memory import TRACE_TOOL
from testdev_map import ID, REG_ID, REG_INV, REG_SCRATCH

IN_USE = "shared-memory rings in use"
RECORDS = "with binary register records"


def test_rings_are_the_default_and_traced(harness):
    """Over the rings by default, with binary register records (spec
    11.7): the fast path is what the guest's accesses take, the endpoint
    counts them, and QEMU's trace holds them as their messages."""
    trace = harness.path("qemu.pcapng")
    ep, q, d = start(harness, dev_opts=f"trace={trace}")
    ep.wait_log(IN_USE + ", " + RECORDS)
    assert d.reg(REG_ID) == ID
    for i in range(200):
        d.set_reg(REG_SCRATCH, i)
        assert d.reg(REG_INV) == i ^ 0xFFFFFFFF
    q.stop()
    out = subprocess.run([TRACE_TOOL, trace], check=True, text=True,
                         stdout=subprocess.PIPE).stdout
    assert "ring_setup region=" in out and "ring_ready accepted" in out, out
    assert "session continues over shared-memory rings" in out, out
    # The session's messages are all there, after the switch as before,
    # and every register access and its completion came as a record.
    reads = [l for l in out.splitlines() if "H>E  mem_read" in l]
    assert len(reads) >= 201, out
    after = out[out.index("session continues"):].splitlines()[1:]
    accesses = [l for l in after if re.search(r" (H>E  mem_|E>H  completion)", l)]
    assert len(accesses) >= 2 * 201 + 200, len(accesses)
    assert all(l.endswith("[binary record]") for l in accesses), \
        [l for l in accesses if not l.endswith("[binary record]")][:5]
    m = re.search(r"(\d+) requests came as binary register records",
                  ep.wait_log("requests came as binary register records"))
    assert m and int(m.group(1)) >= 401, ep.output()


def test_a_host_without_records_keeps_frames_on_the_rings(harness):
    """QEMU with reg-records=off is a 1.4 host without the feature, as a
    1.3 one is: the rings carry protobuf frames only, and the device
    works as before."""
    trace = harness.path("qemu.pcapng")
    ep, q, d = start(harness, dev_opts=f"reg-records=off,trace={trace}")
    ep.wait_log(IN_USE)
    for i in range(50):
        d.set_reg(REG_SCRATCH, i)
        assert d.reg(REG_INV) == i ^ 0xFFFFFFFF
    q.stop()
    ep.wait_log("host disconnected")
    assert RECORDS not in ep.output()
    out = subprocess.run([TRACE_TOOL, trace], check=True, text=True,
                         stdout=subprocess.PIPE).stdout
    assert "[binary record]" not in out and out.count("mem_read") >= 50, out


@pytest.mark.parametrize("how", ["shm-rings=off", "--no-shm-rings", "tcp"])
def test_fallback_to_the_socket(harness, how):
    trace = harness.path("qemu.pcapng")
    if how == "tcp":
        ep = harness.endpoint(listen="tcp:127.0.0.1:0")
        host, port = ep.address[4:].rsplit(":", 1)
        topo = TOPOLOGIES["q35-rootbus"]
        q = harness.qemu(topo["machine"] + [
            "-device", f"pciefw,id=fw0,raddr={host},rport={port},"
                       f"bus={topo['bus']},addr={topo['addr']},trace={trace}"])
        d = DeviceUnderTest(q, topo)
    elif how == "shm-rings=off":
        ep, q, d = start(harness, dev_opts=f"{how},trace={trace}")
    else:
        ep, q, d = start(harness, ep_args=[how], dev_opts=f"trace={trace}")
    assert d.reg(REG_ID) == ID
    d.set_reg(REG_SCRATCH, 0x1234)
    assert d.reg(REG_INV) == 0xFFFFEDCB
    q.stop()
    ep.wait_log("host disconnected")
    assert IN_USE not in ep.output()
    # QEMU's own offer (spec 11.1): the rings, and records with them, on a
    # UNIX socket unless shm-rings=off; never on TCP.
    out = subprocess.run([TRACE_TOOL, trace], check=True, text=True,
                         stdout=subprocess.PIPE).stdout
    offered = int(re.search(r"H>E +hello .*features=(0x[0-9a-f]+)",
                            out).group(1), 16)
    rings = pfwire.FEATURE_SHM_RINGS | pfwire.FEATURE_REG_RECORDS
    assert offered & rings == (rings if how == "--no-shm-rings" else 0), out


def test_endpoint_killed_while_a_read_waits(harness):
    """Spec 11.5: QEMU waiting (polling, then asleep on its doorbell) for a
    completion sees the endpoint's socket close at once: the read returns
    all ones long before the 60 s timeout, and the device comes back."""
    ep, q, d = start(harness, dev_opts="reconnect=1,timeout=60000")
    ep.wait_log(IN_USE)
    assert d.reg(REG_ID) == ID
    os.kill(ep.proc.pid, signal.SIGSTOP)
    result = {}

    def read():
        t0 = time.monotonic()
        result["value"] = d.reg(REG_ID)
        result["took"] = time.monotonic() - t0

    reader = threading.Thread(target=read)
    reader.start()
    reader.join(0.5)                 # most likely waiting by now
    ep.kill()
    reader.join(60)
    assert result.get("value") == 0xFFFFFFFF, result
    assert result["took"] < 30, result
    ep2 = harness.endpoint(listen=ep.listen, name="endpoint2")
    deadline = time.monotonic() + 30
    while d.reg(REG_ID) != ID:
        assert time.monotonic() < deadline, "no reconnection"
    ep2.wait_log(IN_USE)
    assert q.alive()


def test_qemu_killed_while_the_endpoint_polls(harness):
    """The endpoint polls its ring after every request; QEMU killed in the
    middle of that ends the connection cleanly, and the next QEMU is
    served (over the rings again)."""
    ep, q, d = start(harness)
    ep.wait_log(IN_USE)
    for i in range(100):
        d.set_reg(REG_SCRATCH, i)
    assert d.reg(REG_INV) == 99 ^ 0xFFFFFFFF
    os.kill(q.proc.pid, signal.SIGKILL)
    q.proc.wait()
    ep.wait_log("connection 1: closed")
    assert ep.alive()
    _, q2, d2 = start(harness, endpoint=ep)
    assert d2.reg(REG_ID) == ID
    assert ep.output().count(IN_USE) == 2


class RingEndpoint(threading.Thread):
    """An endpoint written from the spec that accepts QEMU's rings and
    then writes an impossible tail into the ring to the host."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(1)
        self.srv.settimeout(60)
        self.switched = threading.Event()
        self.start()

    def run(self):
        conn, _ = self.srv.accept()
        self.conn = conn
        conn.sendall(pfwire.hello(minor=2, features=pfwire.FEATURE_SHM_RINGS,
                                  max_payload=65536) + pfwire.description())
        buf, fds = b"", []
        while True:
            data, got, _, _ = socket.recv_fds(conn, 65536, 8)
            assert data, "QEMU closed before RingSetup"
            fds += got
            frames, buf = pfwire.split_frames(buf + data)
            if any(pfwire.Msg(f).kind == pfwire.KINDS["ring_setup"]
                   for f in frames):
                break
        region, ep_bell, host_bell = fds[:3]
        size = os.fstat(region).st_size
        self.mem = mmap.mmap(region, size)
        conn.sendall(pfwire.message("ring_ready", (1, 1)))
        # The host's ring: tail far beyond anything the ring can hold,
        # stored as one word (a torn store could look like garbage bytes).
        ctypes.c_uint64.from_buffer(self.mem, 64 + 256 * pfwire.TO_HOST).value = 1 << 40
        os.eventfd_write(host_bell, 1)
        self.switched.set()


def test_an_impossible_index_from_the_endpoint(harness):
    """Spec 11.5: QEMU checks the endpoint's tail on every load; an
    impossible one drops the connection (reads return all ones), QEMU
    keeps running and reads no memory outside the ring."""
    path = harness.path("ring-ep.sock")
    ep = RingEndpoint(path)
    q = harness.qemu(["-M", "q35", "-device",
                      f"pciefw,id=fw0,path={path},bus=pcie.0,reconnect=0"])
    assert ep.switched.wait(60)
    deadline = time.monotonic() + 30
    while "impossible ring index" not in q.output():
        assert time.monotonic() < deadline, q.output()
        time.sleep(0.05)
    assert q.alive()
    ep.conn.close()
