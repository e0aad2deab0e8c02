"""A smoke run of the benchmark command (tiny counts), so it cannot rot.
Its figures are not judged: benchmarks are not pass/fail tests."""

import os
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
    for target in ("in-process", "pciefw-unix", "pciefw-tcp", "vfio-user",
                   "e1000", "virtio-net-pci", "raw socket"):
        assert target in doc, target
    png = (tmp_path / "benchmarks.png").read_bytes()
    assert png.startswith(b"\x89PNG") and len(png) > 5000
