"""A smoke run of the benchmark command (tiny counts), so it cannot rot.
Its figures are not judged: benchmarks are not pass/fail tests.  What is
checked is that every promised row and column is there with a measured
figure in it (check_doc)."""

import os
import re
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

ACCESS = [(t, k, op) for t, kinds in (("in-process", ("mmio", "io")),
                                      ("pciefw-shm", ("mmio", "io")),
                                      ("pciefw-unix", ("mmio", "io")),
                                      ("pciefw-tcp", ("mmio", "io")),
                                      ("vfio-user", ("io",)))
          for k in kinds for op in ("read", "write")]
DEVICES = ("in-process", "pciefw-shm", "pciefw-unix", "pciefw-tcp", "vfio-user")
NICS = ("pciefw", "pciefw-shm", "pciefw-e1000", "e1000", "virtio-net-pci")
# Rows of these have no process beside QEMU: "-" in the endpoint column.
QEMU_ONLY = ("in-process", "e1000", "virtio-net-pci")
SECTIONS = ("In-guest register access latency", "Idle CPU of a quiet session",
            "The shared-memory path against its targets", "Devices in RTL beside testdev",
            "NIC throughput", "Under contention", "Protocol level (`pciefw-bench`)",
            "Rings against the socket by host think time")
NIC_TRAFFIC = ("guest→host, s per GB", "host→guest, s per GB",
               "1-byte round trips, s per M")


def test_bench_smoke(qemu_binary, endpoint_binary, tmp_path):
    env = dict(os.environ, PCIEFW_QEMU=qemu_binary,
               PCIEFW_BUILD=os.path.dirname(os.path.dirname(endpoint_binary)),
               PATH="/usr/bin:" + os.environ.get("PATH", ""))
    r = subprocess.run([os.path.join(REPO, "scripts", "bench.sh"), "--smoke",
                        "--out", str(tmp_path)], env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=1800)
    assert r.returncode == 0, r.stdout[-4000:]
    check_doc((tmp_path / "benchmarks.md").read_text())
    png = (tmp_path / "benchmarks.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000


def check_doc(doc):
    """Every table of docs/benchmarks.md that ./dev bench promises, with
    every row and column, and a measured figure in each cell."""
    sec = _sections(doc)
    missing = [h for h in SECTIONS if h not in sec]
    assert not missing, f"sections missing: {missing}"
    assert re.search(r"Load average \(1 / 5 / 15 min\) [\d.]+ / [\d.]+ / [\d.]+ when "
                     r"the run started and\s+[\d.]+ / [\d.]+ / [\d.]+ when it ended",
                     doc), "no load average at start and end"

    # Register access latency, with the CPU per access of each process.
    head, rows = _only_table(sec["In-guest register access latency"])
    assert head[-3:] == ["endpoint CPU s / M", "QEMU CPU s / M", "CPU / in-process"], head
    by = _keyed(rows, 3)
    assert sorted(by) == sorted(ACCESS), sorted(by)
    for (dev, _, _), r in by.items():
        assert _num(r[4]) > 0 and _num(r[5]) > 0, r            # p50, p99
        _check_endpoint_cpu(dev, r[8], r)
        assert _num(r[9]) > 0 and _num(r[10]) > 0, r           # QEMU, ratio

    # Idle CPU of a quiet session, per process.
    head, rows = _only_table(sec["Idle CPU of a quiet session"])
    assert head == ["device", "endpoint, % of a CPU", "QEMU, % of a CPU",
                    "interval s"], head
    by = _keyed(rows, 1)
    assert sorted(by) == sorted((d,) for d in DEVICES), sorted(by)
    for (dev,), r in by.items():
        _check_endpoint_cpu(dev, r[1], r)
        assert _num(r[2]) >= 0 and _num(r[3]) > 0, r

    # The shared-memory path's targets, each with this run's figure.
    # Every target of issue 23 has its row, a figure, and whether it was met.
    head, rows = _only_table(sec["The shared-memory path against its targets"])
    assert head == ["figure", "this run", "target", "met"], head
    names = [r[0] for r in rows]
    assert names == TARGETS, names
    for r in rows:
        assert re.fullmatch(r"-?[0-9]+\.[0-9]{2}(x|%| µs)", r[1]), r
        assert re.fullmatch(r"(at (most|least)|below) [0-9.]+(x|%| µs| of a CPU)+", r[2]), r
        assert r[3] in ("yes", "no"), r

    # Devices in RTL beside testdev: read latency, DMA, simulated cycles/s.
    _, rows = _only_table(sec["Devices in RTL beside testdev"])
    by = _keyed(rows, 2)
    assert sorted(by) == sorted([("testdev", "- (C)"), ("rtl-verilog", "Verilator"),
                                 ("rtl-vhdl", "GHDL (LLVM)")]), sorted(by)
    assert all(_num(c) > 0 for r in by.values() for c in r[2:7]), by

    # NIC throughput, and the CPU per GB / per M round trips of each process.
    (head, rows), (chead, crows) = _tables(sec["NIC throughput"])
    by = _keyed(rows, 1)
    assert sorted(by) == sorted((n,) for n in NICS), sorted(by)
    assert all(_num(c) > 0 for r in by.values() for c in r[1:]), by
    assert chead == ["NIC", "traffic", "endpoint CPU", "QEMU CPU", "both",
                     "both / e1000"], chead
    by = _keyed(crows, 2)
    assert sorted(by) == sorted((n, t) for n in NICS for t in NIC_TRAFFIC), sorted(by)
    for (nic, _), r in by.items():
        _check_endpoint_cpu(nic, r[2], r)
        assert all(_num(c) > 0 for c in r[3:]), r

    # The same under contention: latency p50/p99 and the NIC rows.
    text = sec["Under contention"]
    m = re.search(r"it had (\d+)% of a CPU", text)
    assert m and int(m.group(1)) > 0, text[:600]
    (head, rows), (nhead, nrows) = _tables(text)
    assert head == ["device", "BAR", "access", "p50 µs", "p99 µs", "p50 / quiet",
                    "p99 / quiet"], head
    by = _keyed(rows, 3)
    assert sorted(by) == sorted(ACCESS), sorted(by)
    # Times are measured, so above zero; a ratio to the quiet run may
    # round to 0.00x when a quiet smoke run's p99 caught a stray stall.
    assert all(_num(c) > 0 for r in by.values() for c in r[3:5]), by
    assert all(_num(c) >= 0 for r in by.values() for c in r[5:]), by
    by = _keyed(nrows, 1)
    assert sorted(by) == sorted((n,) for n in NICS), sorted(by)
    assert all(_num(c) > 0 for r in by.values() for c in r[1:]), by

    # Rings against the socket at each think time, in both placements.
    head, rows = _only_table(sec["Rings against the socket by host think time"])
    assert head[:2] == ["placement", "think µs"] and head[-1] == "rings within 1.1x", head
    assert [(r[0], int(r[1])) for r in rows] == [
        (p, t) for p in ("unpinned", "one CPU") for t in (0, 1, 10, 50, 200)], rows
    for r in rows:
        assert all(_num(c) > 0 for c in r[2:6] + r[8:10]), r
        assert all(_num(c) >= 0 for c in r[6:8]) and r[10] in ("yes", "no"), r

    # Protocol level against raw sockets.
    rows = [r for _, t in _tables(sec["Protocol level (`pciefw-bench`)"]) for r in t]
    assert rows and all(_num(r[3]) > 0 and _num(r[4]) > 0 for r in rows), rows


def _check_endpoint_cpu(device, cell, row):
    if device in QEMU_ONLY:
        assert cell == "-", row
    else:
        assert _num(cell) >= 0, row


TARGETS = [
    "MMIO read p50, pciefw-shm / in-process pci-testdev",
    "IO read p50 less MMIO read p50, pciefw-shm",
    "MMIO read p99 / its p50, pciefw-shm",
    "vfio-user IO read p50 / pciefw-shm MMIO read p50",
    "DMA write by copy / plain memcpy",
    "DMA write by copy / the same by socket messages",
    "DMA read by copy / plain memcpy",
    "DMA read by copy / the same by socket messages",
    "1-byte TCP round trips/s, pciefw-shm / in-process e1000",
    "1-byte TCP round trips/s, pciefw-e1000 / in-process e1000",
    "NIC guest→host, pciefw-shm / faster of e1000 and virtio-net",
    "NIC guest→host, pciefw-e1000 / in-process e1000",
    "NIC host→guest, pciefw-shm / faster of e1000 and virtio-net",
    "NIC host→guest, pciefw-e1000 / in-process e1000",
    "quiet pciefw-shm session, endpoint's CPU",
    "quiet pciefw-shm session, QEMU's CPU",
]


def _num(cell):
    """A figure as the report prints it ("1.23", "4x", "0.50%"); fails on
    anything else, such as "-" where a figure was promised."""
    assert re.fullmatch(r"[0-9]+(\.[0-9]+)?[x%]?", cell), f"not a figure: {cell!r}"
    return float(cell.rstrip("x%"))


def _sections(doc):
    """{heading: text} for each "## heading" of the report."""
    parts = re.split(r"^## (.+)$", doc, flags=re.MULTILINE)
    return dict(zip(parts[1::2], parts[2::2]))


def _tables(text):
    """Each Markdown table in @text as (header cells, body rows of cells)."""
    out, lines = [], text.splitlines()
    cells = lambda line: [c.strip() for c in line.strip().strip("|").split("|")]
    for i, line in enumerate(lines):
        if line.startswith("|---") and i and lines[i - 1].startswith("|"):
            body = []
            for nxt in lines[i + 1:]:
                if not nxt.startswith("|"):
                    break
                body.append(cells(nxt))
            out.append((cells(lines[i - 1]), body))
    return out


def _only_table(text):
    tables = _tables(text)
    assert len(tables) == 1, tables
    return tables[0]


def _keyed(rows, n):
    """Rows by their first @n cells; each key once."""
    by = {}
    for r in rows:
        key = tuple(r[:n])
        assert key not in by, f"row {key} twice"
        by[key] = r
    return by
