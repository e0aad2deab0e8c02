"""Trace capture and inspection (docs/protocol.md section 6): the endpoint's
--trace, pciefw-trace, and the Wireshark dissector under tshark."""

import os
import re
import shutil
import struct
import subprocess

import pytest

import pfwire

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DISSECTOR = os.path.join(REPO, "tools", "wireshark", "pciefw.lua")


def tool(endpoint_binary, name):
    build = os.path.dirname(os.path.dirname(endpoint_binary))
    path = os.path.join(build, "tools" if name == "pciefw-trace" else "bench", name)
    assert os.access(path, os.X_OK), f"{path} not built"
    return path


@pytest.fixture
def recorded(harness, endpoint_binary):
    """A trace of a pciefw-bench run against a testdev endpoint."""
    trace = harness.path("testdev.pcapng")
    ep = harness.endpoint(args=["--trace", trace])
    bench = tool(endpoint_binary, "pciefw-bench")
    # --no-shm, --no-rings: one session of messages (the shm and rings
    # rows would add more).
    r = subprocess.run([bench, "-n", "200", "-w", "300", "-d", "1", "--no-shm",
                        "--no-rings", ep.address],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stdout
    # The bench's Goodbye is the last record: stop the endpoint only once
    # it has read it, or its own shutdown Goodbye may come first.
    ep.wait_log("host said goodbye")
    assert ep.stop() == 0
    return trace


def run(args, **kw):
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, timeout=60, **kw)


def test_print_filter_and_stats(recorded, endpoint_binary):
    trace_tool = tool(endpoint_binary, "pciefw-trace")
    r = run([trace_tool, recorded])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    # A session record marks where the connection begins (spec 6).
    assert lines[0].startswith("#1 ") and "---  session: session 1: host connected" in lines[0]
    assert "E>H  hello magic=0x21574650" in lines[1]
    assert "H>E  hello" in lines[2]
    assert "device_description id=1234:fe01" in lines[3]
    assert any("mem_write bar=0 offset=0x4 data=" in l for l in lines)
    assert lines[-1].endswith('goodbye reason=0 text="host closing"')

    r = run([trace_tool, "--kind", "dma_read,msix", recorded])
    kinds = {l.split()[3] for l in r.stdout.splitlines()}
    assert kinds == {"dma_read", "msix"}, kinds

    r = run([trace_tool, "--dir", "endpoint", "--bar", "0", "--addr", "0x20-0x24",
             recorded])
    assert r.stdout and all("bar=0 offset=0x2" in l for l in r.stdout.splitlines())

    r = run([trace_tool, "--stats", recorded])
    assert r.returncode == 0
    assert re.search(r"mem_read\s+\d{3,}\s+0", r.stdout)
    assert "DMA read 1048576, DMA written 1048576" in r.stdout
    assert re.search(r"^dma_read\s+\d+\s+[\d.]+", r.stdout, re.M)


def test_bad_trace_files(recorded, endpoint_binary, tmp_path):
    trace_tool = tool(endpoint_binary, "pciefw-trace")
    data = open(recorded, "rb").read()
    # The first packet block after the section and interface headers.
    shb = struct.unpack_from("<I", data, 4)[0]
    epb = shb + struct.unpack_from("<I", data, shb + 4)[0]
    cases = {
        "empty": (b"", "is empty"),
        "text": (b"not a trace at all\n", "not a pcapng file"),
        "truncated": (data[:len(data) // 2], "ends inside a block"),
        "corrupt": (data[:epb + 4] + b"\xff" * 4 + data[epb + 8:], "(at record"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        r = run([trace_tool, str(path)])
        assert r.returncode == 1, (name, r.stdout[-500:], r.stderr)
        assert message in r.stderr, (name, r.stderr)
        assert "Traceback" not in r.stderr and "Segmentation" not in r.stderr
    # A truncated file still prints every whole record before the cut.
    r = run([trace_tool, str(tmp_path / "truncated")])
    assert r.stdout.count("\n") > 10
    r = run([trace_tool, "--kind", "teleport", recorded])
    assert r.returncode == 2 and "unknown message kind 'teleport'" in r.stderr
    r = run([trace_tool, str(tmp_path / "missing")])
    assert r.returncode == 1 and "No such file" in r.stderr


@pytest.mark.skipif(not shutil.which("tshark"), reason="tshark not installed")
def test_tshark_dissector(recorded, endpoint_binary):
    r = run(["tshark", "-X", f"lua_script:{DISSECTOR}", "-r", recorded, "-V"])
    assert r.returncode == 0, r.stderr
    assert "Malformed" not in r.stdout and "Lua Error" not in r.stdout + r.stderr
    assert "Kind: mem_read" in r.stdout and "Kind: completion" in r.stdout
    assert "Kind: dma_read" in r.stdout and "Kind: msix" in r.stdout
    r = run(["tshark", "-X", f"lua_script:{DISSECTOR}", "-r", recorded])
    summary = r.stdout.splitlines()
    assert "--- session: session 1" in summary[0], summary[0]
    assert "endpoint → host" in summary[1] and "hello" in summary[1]
    assert any("mem_read tag=" in l for l in summary)
    # Every field, at its default value too (bar=0 is not on the wire),
    # IDs in hex, register data as its value: as pciefw-trace shows it.
    assert "device_description vendor_id=0x1234 device_id=0xfe01 " in r.stdout, r.stdout
    writes = [l for l in summary if " mem_write " in l]
    assert writes and all(re.search(r"mem_write bar=0 offset=0x[0-9a-f]+ "
                                     r"data=0x[0-9a-f]{8}$", l) for l in writes), writes
    # Numeric fields to filter on, defaults included.
    r = run(["tshark", "-X", f"lua_script:{DISSECTOR}", "-r", recorded, "-Y",
             'pciefw.kind == "mem_write" && pciefw.bar == 0 && pciefw.offset == 0x4 '
             '&& pciefw.value == 7', "-T", "fields", "-e", "frame.number"])
    assert r.returncode == 0, r.stderr
    frames = r.stdout.split()
    trace = run([tool(endpoint_binary, "pciefw-trace"), recorded]).stdout.splitlines()
    wanted = [l.split()[0][1:] for l in trace
              if l.endswith("mem_write bar=0 offset=0x4 data=0x00000007")]
    assert frames and frames == wanted, (frames, wanted)
    r = run(["tshark", "-X", f"lua_script:{DISSECTOR}", "-r", recorded, "-V", "-Y",
             f"frame.number == {frames[0]}"])
    assert "[BAR: 0 (default: not on the wire)]" in r.stdout, r.stdout


def test_trace_rotation(harness, endpoint_binary):
    trace = harness.path("rot.pcapng")
    ep = harness.endpoint(args=["--trace", trace, "--trace-limit", "64k",
                                "--trace-files", "2"])
    bench = tool(endpoint_binary, "pciefw-bench")
    r = run([bench, "-n", "2000", "-w", "2000", "-d", "1", ep.address])
    assert r.returncode == 0, r.stdout + r.stderr
    assert ep.stop() == 0
    files = [trace, trace + ".1", trace + ".2"]
    assert all(os.path.exists(f) for f in files), os.listdir(harness.workdir)
    assert not os.path.exists(trace + ".3")          # only --trace-files kept
    trace_tool = tool(endpoint_binary, "pciefw-trace")
    for f in files:
        # Each piece is a whole trace of its own, within the limit unless
        # it holds a single record larger than the limit (a 64 KiB DMA
        # completion here) and the note about it (spec 6).
        r = run([trace_tool, f])
        assert r.returncode == 0 and r.stdout, (f, r.stderr)
        lines = r.stdout.splitlines()
        assert os.path.getsize(f) <= 64 << 10 or len(lines) == 1 or \
            (len(lines) == 2 and "shared memory" in lines[1]), (f, lines)


def test_trace_rotation_never_overshoots(harness, endpoint_binary):
    """Small records and the smallest limit: no piece is above 4096 bytes."""
    trace = harness.path("small.pcapng")
    ep = harness.endpoint(args=["--trace", trace, "--trace-limit", "4096",
                                "--trace-files", "1000"])
    c = pfwire.Conn(ep.address)
    c.handshake()
    for i in range(300):
        c.send(pfwire.message("mem_write", (1, 0), (2, 4), (3, bytes(4))))
        c.send(pfwire.message("mem_read", (1, i + 1), (2, 0), (3, 0), (4, 4)))
        assert c.until("completion")[-1][1][1] == i + 1
    c.close()
    assert ep.stop() == 0
    pieces = [f for f in os.listdir(harness.workdir) if f.startswith("small.pcapng")]
    assert len(pieces) > 5, pieces
    trace_tool = tool(endpoint_binary, "pciefw-trace")
    for f in pieces:
        path = os.path.join(harness.workdir, f)
        assert os.path.getsize(path) <= 4096, (f, os.path.getsize(path))
        r = run([trace_tool, path])
        assert r.returncode == 0 and r.stdout, (f, r.stderr)


def test_sessions_and_malformed_input(harness, endpoint_binary):
    """One trace over three connections: each begins with a session record;
    malformed input is recorded, raw and marked, before the Error reply."""
    trace = harness.path("multi.pcapng")
    ep = harness.endpoint(args=["--trace", trace])
    c = pfwire.Conn(ep.address)
    c.handshake()
    c.send(pfwire.message("mem_read", (1, 1), (2, 0), (3, 0), (4, 4)))
    assert c.until("completion")[-1][0] == "completion"
    c.close()
    c = pfwire.Conn(ep.address)                        # undecodable body
    c.handshake()
    c.send(b"\x06\x00\x00\x00\xff\xff\xff\xff\xff\xff")
    assert [m[0] for m in c.rest()] == ["error"]
    c.close()
    c = pfwire.Conn(ep.address)                        # zero-length frame
    c.send(pfwire.hello() + b"\x00\x00\x00\x00\x01\x02")
    assert [m[0] for m in c.rest()][-1] == "error"
    c.close()
    assert ep.stop() == 0
    trace_tool = tool(endpoint_binary, "pciefw-trace")
    r = run([trace_tool, trace])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    sessions = [l for l in lines if "---  session: " in l]
    assert len(sessions) == 3, r.stdout
    assert "session 1: host connected" in sessions[0]
    assert "session 3: host connected" in sessions[2]
    assert lines[0].startswith("#1 ") and "session 1" in lines[0], lines[0]
    bad = [i for i, l in enumerate(lines) if "MALFORMED" in l]
    assert len(bad) == 2, r.stdout
    assert "H>E  MALFORMED 10 bytes: 06 00 00 00 ff ff ff ff ff ff" in lines[bad[0]]
    assert "H>E  MALFORMED 6 bytes: 00 00 00 00 01 02" in lines[bad[1]]
    for i in bad:                                      # then the Error reply
        assert "E>H  error code=" in lines[i + 1], lines[i + 1]
    r = run([trace_tool, "--stats", trace])
    assert "sessions 3, notes 0, malformed records 2" in r.stdout, r.stdout
    if shutil.which("tshark"):
        r = run(["tshark", "-X", f"lua_script:{DISSECTOR}", "-r", trace])
        assert r.returncode == 0 and "Lua Error" not in r.stdout + r.stderr
        assert r.stdout.count("--- session: session ") == 3, r.stdout
        assert r.stdout.count("MALFORMED") == 2, r.stdout


def test_bad_trace_options(endpoint_binary):
    for bad in (["--trace-limit", "12"], ["--trace-limit", "lots"],
                ["--trace-files", "0"]):
        r = run([endpoint_binary, "--device", "testdev", "--listen",
                 "tcp:127.0.0.1:0", "--trace", "/tmp/x.pcapng"] + bad)
        assert r.returncode == 2 and "invalid --trace" in r.stderr, (bad, r.stderr)
    r = run([endpoint_binary, "--device", "testdev", "--listen", "tcp:127.0.0.1:0",
             "--trace", "/nonexistent/dir/t.pcapng"])
    assert r.returncode == 2 and "cannot create trace" in r.stderr


def test_interrupt_config_in_traces(harness, endpoint_binary):
    """Spec 12.6: the InterruptConfigs QEMU sends, recorded in its trace,
    read by pciefw-trace on one line each and by the dissector with every
    field, each entry a subtree whose fields filter."""
    from test_interrupt_config_wire import (MSI_ADDR, MSIX_ADDR, TABLE,
                                            _flush, _start)
    trace = harness.path("irqcfg.pcapng")
    peer, q, d = _start(harness, dev_opts=f"trace={trace}")
    d.setup_msi(MSI_ADDR, 0x4040, 1)
    entry = d.bars[0].addr + TABLE + 3 * 16
    d.qt.writel(entry, MSIX_ADDR)
    d.qt.writel(entry + 8, 0x4023)
    _flush(peer, d)
    q.stop()
    trace_tool = tool(endpoint_binary, "pciefw-trace")
    r = run([trace_tool, "--kind", "interrupt_config", trace])
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    # address, data, enable; the entry's address, its data (spec 12.3)
    assert len(lines) == 5 and all("H>E  interrupt_config " in l for l in lines), lines
    assert lines[-2].endswith("interrupt_config msi=on/2 address=0xfee01004 "
                              "data=0x4040 mask=0x0 msix=off entries=1 "
                              "[3 0xfee02000 0x0 masked]"), lines
    assert lines[-1].endswith("entries=1 [3 0xfee02000 0x4023 masked]"), lines
    if not shutil.which("tshark"):
        return
    r = run(["tshark", "-X", f"lua_script:{DISSECTOR}", "-r", trace, "-Y",
             "pciefw.interrupt_config.msix_entry.vector == 3 && "
             "pciefw.interrupt_config.msix_entry.data == 0x4023",
             "-T", "fields", "-e", "frame.number"])
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [lines[-1].split()[0][1:]], (r.stdout, lines)
    r = run(["tshark", "-X", f"lua_script:{DISSECTOR}", "-r", trace, "-V", "-Y",
             f"frame.number == {lines[-1].split()[0][1:]}"])
    assert "Malformed" not in r.stdout and "Lua Error" not in r.stdout + r.stderr
    for text in ("msi_enabled: True", "msi_vectors: 2", "msi_address: 0x00000000fee01004",
                 "msi_data: 0x00004040",
                 "[msix_enabled: False (default: not on the wire)]",
                 "vector: 3", "address: 0x00000000fee02000", "data: 0x00004023",
                 "masked: True"):
        assert text in r.stdout, (text, r.stdout)
    r = run(["tshark", "-X", f"lua_script:{DISSECTOR}", "-r", trace, "-Y",
             "pciefw.kind == \"interrupt_config\""])
    assert "interrupt_config msi_enabled=true msi_vectors=2 " \
           "msi_address=0xfee01004 msi_data=0x4040" in r.stdout, r.stdout
