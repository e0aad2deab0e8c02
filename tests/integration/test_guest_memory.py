"""Guest memory shared with the endpoint (docs/protocol.md 10), through
the real QEMU and the real endpoint: testdev's DMA done as copies into
guest RAM the endpoint has mapped, and every case that falls back to
messages (TCP, RAM QEMU does not share, the feature turned off, bus
mastering off).  The hostile-host cases are in test_guest_memory_wire.py.
"""

import os
import subprocess

import pytest

from test_qemu_device import (CMD_IO, CMD_MEM, CMD_MASTER, RAM_A, RAM_B,
                              TOPOLOGIES, DeviceUnderTest, start)
from testdev_map import *  # noqa: F401,F403  (docs/testdev.md)

MEMFD = ["-object", "memory-backend-memfd,id=mem,size=128M,share=on",
         "-M", "q35,memory-backend=mem"]
COPIES = "DMA transfers done through shared memory"
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TRACE_TOOL = os.path.join(os.path.dirname(os.environ.get(
    "PCIEFW_ENDPOINT", os.path.join(REPO, "build", "endpoint", "x"))),
    "..", "tools", "pciefw-trace")


def start_shm(harness, machine=MEMFD, dev_opts="", ep_args=()):
    """testdev on q35 behind a root port, guest RAM as @machine says."""
    topo = dict(TOPOLOGIES["q35-rootport"], machine=machine)
    ep = harness.endpoint(args=ep_args)
    sock = ep.listen[len("unix:"):]
    dev = f"pciefw,id=fw0,path={sock},bus={topo['bus']}"
    if dev_opts:
        dev += "," + dev_opts
    q = harness.qemu(topo["machine"] + topo["extra"] + ["-device", dev])
    return ep, q, DeviceUnderTest(q, topo)


def copies_reported(ep, q):
    """Stop QEMU; (copies, DMA transfers) the endpoint counted for it."""
    q.stop()
    ep.wait_log(COPIES)
    line = next(l for l in ep.output().splitlines() if COPIES in l)
    words = line.split(COPIES)[0].split()
    return int(words[-3]), int(words[-1])


def exercise_dma(d):
    """testdev COPY (read + write), FILL (writes), SUM (reads)."""
    qt = d.qt
    for size in (1, 4096, 1 << 20):
        pattern = (bytes(range(251)) * (size // 251 + 1))[:size]
        qt.b64write(RAM_A, pattern)
        qt.memset(RAM_B, size + 16, 0xEE)
        st = d.dma(RAM_A, RAM_B, size)
        assert st & ST_DONE and not st & ST_ERROR, hex(st)
        assert qt.b64read(RAM_B, size) == pattern
        assert qt.b64read(RAM_B + size, 16) == b"\xee" * 16
    d.set_reg(REG_SCRATCH, 0x5A)
    st = d.dma(0, RAM_B, 8192, cmd_extra=1 << 4)
    assert st & ST_DONE, hex(st)
    assert qt.b64read(RAM_B, 8192) == b"\x5a" * 8192
    data = bytes([7]) * 1000 + bytes([1]) * 24
    qt.b64write(RAM_A, data)
    st = d.dma(RAM_A, 0, len(data), cmd_extra=2 << 4)
    assert st & ST_DONE, hex(st)
    assert d.reg(0x50) == sum(data)


def test_dma_through_shared_memory(harness):
    ep, q, d = start_shm(harness)
    # q35 with a memfd backend: RAM below the VGA hole and above 1 MiB.
    ep.wait_log("guest memory: 2 of 2 regions mapped")
    exercise_dma(d)
    copies, total = copies_reported(ep, q)
    # COPY x3 (a read and a write each), FILL, SUM: every one by copy.
    assert copies == total and total >= 8, ep.output()


def test_trace_marks_copies(harness):
    """Spec 10.5: each copy is recorded as the message it replaces, with a
    note; pciefw-trace reads the file as any other."""
    trace = harness.path("ep.pcapng")
    ep, q, d = start_shm(harness, ep_args=["--trace", trace])
    ep.wait_log("guest memory: 2 of 2 regions mapped")
    qt = d.qt
    qt.b64write(RAM_A, b"\x42" * 4096)
    st = d.dma(RAM_A, RAM_B, 4096)
    assert st & ST_DONE and not st & ST_ERROR, hex(st)
    copies_reported(ep, q)
    ep.stop()
    out = subprocess.run([TRACE_TOOL, trace], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, check=True).stdout
    assert "memory_map" in out and "bus_master" in out, out
    assert "dma_read" in out and "dma_write" in out, out
    assert out.count("shared memory") >= 3, out


@pytest.mark.parametrize("case", ["tcp", "ram-not-shared", "default-ram",
                                  "device-off", "endpoint-off", "iommu"])
def test_fallback_to_messages(harness, case):
    """Where memory cannot be shared, DMA goes by messages as in 1.0 and
    works the same (spec 10.1)."""
    machine, dev_opts, ep_args = MEMFD, "", ()
    if case == "ram-not-shared":
        machine = ["-object", "memory-backend-memfd,id=mem,size=128M,share=off",
                   "-M", "q35,memory-backend=mem"]
    elif case == "default-ram":
        machine = ["-M", "q35"]
    elif case == "device-off":
        dev_opts = "guest-memory=off"
    elif case == "endpoint-off":
        ep_args = ["--no-guest-memory"]
    elif case == "iommu":
        # Bus addresses are the IOMMU's to translate (spec 10.1); it is
        # created before the PCI devices, as QEMU requires.
        machine = MEMFD + ["-device", "intel-iommu"]
    if case == "tcp":
        topo = dict(TOPOLOGIES["q35-rootport"], machine=MEMFD)
        ep = harness.endpoint(listen="tcp:127.0.0.1:0")
        port = int(ep.address.rsplit(":", 1)[1])
        q = harness.qemu(MEMFD + topo["extra"] + [
            "-device", f"pciefw,id=fw0,raddr=127.0.0.1,rport={port},bus=rp0"])
        d = DeviceUnderTest(q, topo)
    else:
        ep, q, d = start_shm(harness, machine, dev_opts, ep_args)
    exercise_dma(d)
    copies, total = copies_reported(ep, q)
    assert copies == 0 and total >= 8, ep.output()
    log = ep.output()
    if case in ("ram-not-shared", "default-ram"):
        assert "guest memory: 0 of 0 regions mapped" in log, log
    else:
        assert "guest memory:" not in log, log
    # The rings do not depend on guest memory (spec 11.1): not over TCP.
    assert ("shared-memory rings in use" in log) == (case != "tcp"), log


def test_bus_master_off_refuses_as_before(harness):
    """With Bus Master Enable clear the endpoint does not copy: its DMA goes
    by messages and QEMU refuses it as in 1.0 (spec 10.3)."""
    ep, q, d = start_shm(harness)
    ep.wait_log("guest memory: 2 of 2 regions mapped")
    qt = d.qt
    qt.memset(RAM_A, 64, 0x11)
    qt.memset(RAM_B, 64, 0x22)
    d.enable(CMD_IO | CMD_MEM)
    st = d.dma(RAM_A, RAM_B, 64)
    assert st & ST_ERROR, hex(st)
    assert qt.read(RAM_B, 64) == b"\x22" * 64
    d.set_reg(REG_SCRATCH, 0x33)
    d.dma(0, RAM_B, 64, cmd_extra=1 << 4)             # FILL: dropped
    assert qt.read(RAM_B, 64) == b"\x22" * 64
    d.enable(CMD_IO | CMD_MEM | CMD_MASTER)
    st = d.dma(RAM_A, RAM_B, 64)
    assert st & ST_DONE and not st & ST_ERROR, hex(st)
    assert qt.read(RAM_B, 64) == b"\x11" * 64
    # Outside guest RAM: not in the map, so a message, refused by QEMU.
    st = d.dma(0x100000000000, RAM_B, 64)
    assert st & ST_ERROR, hex(st)
    copies, total = copies_reported(ep, q)
    # The refused ones went by message; once a read by message showed the
    # dropped FILL handled (10.4), copies resumed.
    assert 0 < copies < total, ep.output()


def test_map_follows_reset_and_reconnect(harness):
    """A system reset keeps the map (BME is reported off, then on again); a
    new connection gets the map again."""
    ep, q, d = start_shm(harness, dev_opts="reconnect=1")
    ep.wait_log("guest memory: 2 of 2 regions mapped")
    q.qmp.cmd("system_reset")
    d.enumerate()
    exercise_dma(d)
    ep.stop()
    ep2 = harness.endpoint(name="endpoint")
    ep2.wait_log("guest memory: 2 of 2 regions mapped", timeout=60)
    exercise_dma(d)
    copies, total = copies_reported(ep2, q)
    assert copies == total and total >= 8, ep2.output()


def test_replay_of_a_shared_memory_session(harness, endpoint_binary):
    """The endpoint's recording of a session whose DMA went by copy replays
    against an endpoint without the feature, with no divergence (10.5)."""
    from test_replay import run_testdev_session, tool, run
    trace = harness.path("shm-ep.pcapng")
    ep = harness.endpoint(name="rec", args=["--trace", trace])
    q = harness.qemu(MEMFD + ["-device", "pciefw,id=fw0,path="
                              f"{ep.listen[len('unix:'):]},bus=pcie.0,addr=0x4"])
    ep.wait_log("guest memory: 2 of 2 regions mapped")
    run_testdev_session(q)
    copies, total = copies_reported(ep, q)
    assert copies == total and copies > 0, ep.output()
    assert ep.stop() == 0, ep.output()
    printed = run([tool(endpoint_binary, "pciefw-trace"), trace]).stdout
    assert "shared memory" in printed, printed
    fresh = harness.endpoint(name="fresh")
    r = run([tool(endpoint_binary, "pciefw-replay"), trace, fresh.address])
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.splitlines()[-1].endswith(": 0 divergences"), r.stdout
