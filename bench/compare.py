"""./dev bench --compare REV: the guest benchmarks of this tree and of the
revision REV in one run, on the same machine, with the same guest kernel
and the same benchmark programs, so that a change to the bridge is judged
by ratios measured side by side rather than by figures from another day.

REV is exported (git archive) under $PCIEFW_CACHE/bench-compare/, its
endpoint and tools are built there with meson, and its QEMU by its own
qemu-pciefw/build-qemu.sh (cached by input hash, as always).  Both builds
then run this tree's bench/guest_bench.py (access latency and NICs), one
after the other and then once more in the other order, and the table
gives, per row, each build's figure as a ratio of the in-process baseline
of its own run, and the change.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("PCIEFW_CACHE", Path.home() / ".cache" / "pciefw"))


def _run(cmd, cwd=None, env=None):
    r = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    if r.returncode:
        sys.stderr.write(r.stdout[-4000:])
        raise SystemExit(f"bench --compare: {' '.join(map(str, cmd))} failed")
    return r.stdout


def build_revision(rev: str) -> tuple[Path, str]:
    """REV's build directory and QEMU binary (built if needed)."""
    sha = _run(["git", "rev-parse", "--verify", f"{rev}^{{commit}}"],
               cwd=REPO).strip()
    tree = CACHE / "bench-compare" / sha[:12]
    if not (tree / "meson.build").exists():
        tree.mkdir(parents=True, exist_ok=True)
        archive = subprocess.Popen(["git", "archive", "--format=tar", sha],
                                   cwd=REPO, stdout=subprocess.PIPE)
        subprocess.run(["tar", "-x", "-C", str(tree)], stdin=archive.stdout,
                       check=True)
        if archive.wait():
            raise SystemExit(f"bench --compare: git archive {sha} failed")
    env = dict(os.environ, PATH="/usr/bin:" + os.environ.get("PATH", ""))
    build = tree / "build"
    if not (build / "build.ninja").exists():
        _run(["meson", "setup", str(build)], cwd=tree, env=env)
    _run(["ninja", "-C", str(build)], env=env)
    qemu = _run([str(tree / "qemu-pciefw" / "build-qemu.sh"), "--print-binary"],
                env=env).strip().splitlines()[-1]
    return build, qemu


def guest_figures(build: Path, qemu: str, smoke: bool) -> list[dict]:
    env = dict(os.environ, PCIEFW_BUILD=str(build), PCIEFW_QEMU=qemu)
    bench = [sys.executable, str(REPO / "bench" / "guest_bench.py")]
    counts = (["--reads", "50"], ["--mib", "1", "--rr", "20"]) if smoke else \
        (["--reads", "20000"], ["--mib", "64", "--rr", "2000"])
    out = []
    for what, extra in (("access", counts[0]), ("nic", counts[1])):
        text = _run(bench + [what] + extra, env=env)
        out += [json.loads(l) for l in text.splitlines() if l.startswith("{")]
    return out


def ratios(recs: list[dict]) -> dict[str, float]:
    """Each pciefw row as a ratio of its run's in-process baseline:
    latency over in-process pci-testdev (lower is better), throughput and
    round trips over QEMU's in-process e1000 (higher is better)."""
    out = {}
    lat = {(r["target"], r["kind"], r["op"]): float(r["p50_us"])
           for r in recs if "p50_us" in r}
    for (t, k, op), v in lat.items():
        if t.startswith("pciefw"):
            out[f"{t} {k} {op} p50 / in-process"] = v / lat[("in-process", k, op)]
    nic = {(r["nic"], r["op"]): r for r in recs if "nic" in r}
    for (n, op), r in nic.items():
        if not n.startswith("pciefw"):
            continue
        field = "rate_per_s" if op == "rr" else "mbit_s"
        base = float(nic[("e1000", op)][field])
        out[f"{n} {op} / e1000"] = float(r[field]) / base
    return out


def mean(a: dict, b: dict) -> dict:
    return {k: (a[k] + b[k]) / 2 for k in a if k in b}


def compare(rev: str, smoke: bool, this_qemu: str) -> str:
    build_b, qemu_b = build_revision(rev)
    build_a = Path(os.environ.get("PCIEFW_BUILD", REPO / "build"))
    runs = []
    # A B, then B A: drift of a shared machine weighs on both alike.
    for build, qemu in ((build_b, qemu_b), (build_a, this_qemu),
                        (build_a, this_qemu), (build_b, qemu_b)):
        runs.append(ratios(guest_figures(build, qemu, smoke)))
    before, after = mean(runs[0], runs[3]), mean(runs[1], runs[2])
    rows = ["| figure | " + rev + " | this tree | this tree / " + rev + " |",
            "|---|---|---|---|"]
    for key in sorted(before):
        if key in after:
            rows.append(f"| {key} | {before[key]:.2f}x | {after[key]:.2f}x | "
                        f"{after[key] / before[key]:.2f} |")
    return ("Each figure is a ratio to the in-process baseline of its own run "
            "(latency: lower is better; NIC: higher is better), the mean of "
            "two runs per build, ordered A B B A.\n\n" + "\n".join(rows) + "\n")
