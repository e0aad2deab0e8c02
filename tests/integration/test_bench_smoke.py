"""A smoke run of the benchmark command (tiny counts), so it cannot rot.
Its figures are not judged: benchmarks are not pass/fail tests."""

import os
import re
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_bench_smoke(qemu_binary, endpoint_binary, tmp_path):
    env = dict(os.environ, PCIEFW_QEMU=qemu_binary,
               PCIEFW_BUILD=os.path.dirname(os.path.dirname(endpoint_binary)),
               PATH="/usr/bin:" + os.environ.get("PATH", ""))
    r = subprocess.run([os.path.join(REPO, "scripts", "bench.sh"), "--smoke",
                        "--out", str(tmp_path)], env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=900)
    assert r.returncode == 0, r.stdout[-4000:]
    doc = (tmp_path / "benchmarks.md").read_text()
    rows = _table_rows(doc)
    # Every promised target has a row of measured figures (the names alone
    # are fixed text of the report).
    # pciefw-shm: 4 access rows and a NIC row.
    for target, n in (("in-process", 4), ("pciefw-shm", 5), ("pciefw-unix", 4),
                      ("pciefw-tcp", 4), ("vfio-user", 2), ("pciefw", 1),
                      ("pciefw-e1000", 1), ("e1000", 1),
                      ("virtio-net-pci", 1)):
        got = [r for r in rows if r[0] == target]
        assert len(got) == n, (target, got)
        for r in got:
            nums = [c for c in r[1:] if re.fullmatch(r"[0-9.]+x?", c)]
            assert len(nums) >= 3 and any(float(c.rstrip("x")) > 0 for c in nums), r
    # Devices in RTL beside testdev: read latency, DMA, simulated cycles/s.
    for target, sim in (("testdev", "- (C)"), ("rtl-verilog", "Verilator"),
                        ("rtl-vhdl", "GHDL (LLVM)")):
        got = [r for r in rows if r[0] == target and r[1] == sim]
        assert len(got) == 1, (target, rows)
        assert all(float(c.rstrip("x")) > 0 for c in got[0][2:7]), got
    # The shared-memory path's targets, each with this run's ratio.
    targets = [r for r in rows if len(r) == 3 and r[2].startswith("at ")]
    assert len(targets) == 6, targets
    assert all(float(r[1].rstrip("x")) > 0 for r in targets), targets
    proto = [r for r in rows if r[0] in ("unix", "tcp")]
    assert proto and all(float(r[3]) > 0 and float(r[4]) > 0 for r in proto), proto
    png = (tmp_path / "benchmarks.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000


def _table_rows(doc):
    """Cells of every Markdown table body row."""
    return [[c.strip() for c in line.strip().strip("|").split("|")]
            for line in doc.splitlines()
            if line.startswith("|") and not line.startswith("|---")
            and "µs" not in line and "Mbit/s" not in line
            and "raw socket" not in line]
