#!/usr/bin/python3
"""./dev bench: run every benchmark in one go on the same QEMU binary and the
same guest kernel, and write docs/benchmarks.md and docs/benchmarks.png.

  bench/run.py [--smoke] [--out DIR] [--compare REV]

--smoke runs each benchmark with tiny counts (the test suite does this so the
benchmarks cannot rot) and writes to --out, never to docs/.
--compare REV runs the guest benchmarks of this tree and of git revision REV
(built in a scratch tree under the cache) in one run and prints their
ratios side by side (bench/compare.py); with --out it also writes
compare.md there.  docs/ is left alone.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUILD = Path(os.environ.get("PCIEFW_BUILD", REPO / "build"))


def run_json_lines(cmd):
    r = subprocess.run(cmd, stdout=subprocess.PIPE, text=True)
    if r.returncode:
        raise SystemExit(f"bench: {' '.join(map(str, cmd))} failed")
    return [json.loads(l) for l in r.stdout.splitlines() if l.startswith("{")]


# What each guest benchmark promises: a table row per entry.
ACCESS_TARGETS = [(t, k, op) for t, kinds in (("in-process", ("mmio", "io")),
                                              ("pciefw-shm", ("mmio", "io")),
                                              ("pciefw-unix", ("mmio", "io")),
                                              ("pciefw-tcp", ("mmio", "io")),
                                              ("vfio-user", ("io",)))
                  for k in kinds for op in ("read", "write")]
NICS = ("pciefw", "pciefw-shm", "pciefw-e1000", "e1000", "virtio-net-pci")
NIC_TARGETS = [(n, op) for n in NICS
               for op in ("send", "recv", "rr")]


def require(recs, key, wanted, what):
    """Every @wanted key has a record, or the bench fails naming the gaps:
    a target whose run produced no figures is not left out of the table."""
    have = {key(r) for r in recs}
    missing = [w for w in wanted if w not in have]
    if missing:
        raise SystemExit(f"bench: no {what} figures for "
                         + ", ".join("/".join(m) for m in missing)
                         + " (their guest runs printed no result)")


def protocol_figures(smoke):
    n = ["-n", "200", "-w", "500", "-d", "1"] if smoke else \
        ["-n", "20000", "-w", "200000", "-d", "64"]
    out = {}
    for label, extra in (("unpinned", []), ("pinned to CPU 0", ["--pin", "0"])):
        r = subprocess.run([str(BUILD / "bench" / "pciefw-bench"), "--json"] + extra + n,
                           stdout=subprocess.PIPE, text=True, check=True)
        out[label] = json.loads(r.stdout)
    return out


def table(headers, rows):
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def access_section(recs):
    by = {(r["target"], r["kind"], r["op"]): r for r in recs}
    floor = lambda kind, op: float(by[("in-process", kind, op)]["p50_us"])
    rows = []
    for target in ("in-process", "pciefw-shm", "pciefw-unix", "pciefw-tcp", "vfio-user"):
        for kind in ("mmio", "io"):
            for op in ("read", "write"):
                r = by.get((target, kind, op))
                if not r:
                    continue            # not offered (vfio-user has no MMIO)
                p50 = float(r["p50_us"])
                vu = by.get(("vfio-user", kind, op))
                rows.append([target, kind, op, r["mean_us"], r["p50_us"], r["p99_us"],
                             f"{p50 / floor(kind, op):.0f}x",
                             f"{p50 / float(vu['p50_us']):.2f}x" if vu else "-"])
    return table(["device", "BAR", "access", "mean µs", "p50 µs", "p99 µs",
                  "p50 / in-process", "p50 / vfio-user"], rows)


def nic_section(recs):
    by = {(r["nic"], r["op"]): r for r in recs}
    rows = []
    for nic in NICS:
        send, recv, rr = (by.get((nic, op)) for op in ("send", "recv", "rr"))
        e_send, e_recv = by.get(("e1000", "send")), by.get(("e1000", "recv"))
        rows.append([nic, send["mbit_s"], recv["mbit_s"], rr["rate_per_s"],
                     f"{float(send['mbit_s']) / float(e_send['mbit_s']):.2f}x",
                     f"{float(recv['mbit_s']) / float(e_recv['mbit_s']):.2f}x"])
    return table(["NIC", "guest→host Mbit/s", "host→guest Mbit/s",
                  "1-byte TCP round trips/s", "send / e1000", "recv / e1000"], rows)


def targets_section(access, nic, proto):
    """Issue 17's targets for the shared-memory path, as ratios of this run."""
    p50 = {(r["target"], r["kind"], r["op"]): float(r["p50_us"]) for r in access}
    mbit = {(r["nic"], r["op"]): float(r["mbit_s"]) for r in nic if "mbit_s" in r}
    shm_read = p50[("pciefw-shm", "mmio", "read")]
    rows = [["MMIO read p50, pciefw-shm / in-process pci-testdev",
             f"{shm_read / p50[('in-process', 'mmio', 'read')]:.1f}x", "at most 5x"],
            ["vfio-user IO read p50 / pciefw-shm MMIO read p50",
             f"{p50[('vfio-user', 'io', 'read')] / shm_read:.1f}x", "at least 5x"]]
    for r in proto.get("unpinned", []):
        if r["transport"] == "shm" and r["unit"] == "MB/s":
            rows.append([f"{r['metric'].split(' (')[0]} by copy / plain memcpy",
                         f"{r['ratio']:.2f}x", "at least 0.5x"])
    for op, what in (("send", "guest→host"), ("recv", "host→guest")):
        best = max(mbit[("e1000", op)], mbit[("virtio-net-pci", op)])
        rows.append([f"NIC {what}, pciefw-shm / faster of e1000 and virtio-net",
                     f"{mbit[('pciefw-shm', op)] / best:.2f}x", "at least 1x"])
    return table(["figure", "this run", "target"], rows)


def protocol_section(figs):
    parts = []
    for label, recs in figs.items():
        rows = [[r["transport"], r["metric"], r["unit"], f"{r['pciefw']:.2f}",
                 f"{r['raw']:.2f}", f"{r['ratio']:.2f}x"] for r in recs]
        parts.append(f"**{label}**\n\n" + table(
            ["transport", "metric", "unit", "pciefw", "raw socket", "ratio"], rows))
    return "\n\n".join(parts)


def chart(access, path):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = ["in-process", "pciefw-shm", "pciefw-unix", "pciefw-tcp", "vfio-user"]
    series = [("mmio", "read"), ("mmio", "write"), ("io", "read"), ("io", "write")]
    by = {(r["target"], r["kind"], r["op"]): float(r["p50_us"]) for r in access}
    fig, ax = plt.subplots(figsize=(8, 4.5))
    width = 0.2
    for i, (kind, op) in enumerate(series):
        vals = [by.get((t, kind, op), 0) for t in targets]
        ax.bar([x + i * width for x in range(len(targets))], vals, width,
               label=f"{kind.upper()} {op}")
    ax.set_xticks([x + 1.5 * width for x in range(len(targets))], targets)
    ax.set_ylabel("median latency per access (µs)")
    ax.set_title("In-guest register access latency (lower is better)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="tiny counts; for tests")
    ap.add_argument("--out", default=None, help="output directory (default docs/)")
    ap.add_argument("--compare", metavar="REV", default=None,
                    help="compare this tree with git revision REV, side by side")
    args = ap.parse_args()
    out = Path(args.out or (REPO / "docs"))
    if args.smoke and not args.out:
        ap.error("--smoke needs --out: smoke figures never go to docs/")
    out.mkdir(parents=True, exist_ok=True)
    qemu = os.environ.get("PCIEFW_QEMU")
    if not qemu:
        ap.error("PCIEFW_QEMU is not set (./dev bench sets it)")
    if args.compare:
        sys.path.insert(0, str(REPO / "bench"))
        import compare
        text = compare.compare(args.compare, args.smoke, qemu)
        print(text)
        if args.out:
            (out / "compare.md").write_text(text)
        return

    guest = [sys.executable, str(REPO / "bench" / "guest_bench.py")]
    if args.smoke:
        access = run_json_lines(guest + ["access", "--reads", "50"])
        nic = run_json_lines(guest + ["nic", "--mib", "1", "--rr", "20"])
    else:
        access = run_json_lines(guest + ["access", "--reads", "20000"])
        nic = run_json_lines(guest + ["nic", "--mib", "64", "--rr", "2000"])
    require(access, lambda r: (r["target"], r["kind"], r["op"]),
            ACCESS_TARGETS, "access latency")
    require(nic, lambda r: (r["nic"], r["op"]), NIC_TARGETS, "NIC")
    proto = protocol_figures(args.smoke)
    chart(access, out / "benchmarks.png")
    cmd = "./dev bench" + (" --smoke" if args.smoke else "")
    doc = f"""# Benchmarks

Generated by `{cmd}` (`bench/run.py`) on {datetime.date.today().isoformat()},
on this machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}
{platform.release()}; QEMU 10.2.2 under TCG (no KVM), the Debian 6.1 guest
kernel of `tests/guest/`. The machine is shared and noisy: compare the ratios,
which are measured in the same run, more than the absolute figures.
`docs/performance.md` explains where the time goes and what was changed.

## In-guest register access latency

A static program in the guest (`bench/guest/access_lat.c`) times 32-bit
accesses to one register through `/sys/bus/pci/devices/*/resourceN` (MMIO)
or port IO. *in-process* is QEMU's own `pci-testdev`: the floor. *pciefw*
is `-device pciefw` with `pciefw-endpoint --device testdev`. *vfio-user* is
QEMU's `vfio-user-pci` with libvfio-user's `gpio-pci-idio-16` sample (built
from the copy in QEMU's source), whose only BAR is IO. Reads wait for a
completion; pciefw's MMIO writes are posted (they never wait for a round
trip), IO writes are non-posted as in PCIe.

{access_section(access)}

![In-guest access latency](benchmarks.png)

## The shared-memory path against its targets

*pciefw-shm* is the device as users get it on a UNIX socket with guest RAM
in a shared memfd: the session on shared-memory rings both sides poll
(`docs/protocol.md` section 11) and DMA as memory copies (section 10).
*pciefw-unix* is the same endpoint with `shm-rings=off`: every message on
the socket. `docs/performance.md` says where the time goes.

{targets_section(access, nic, proto)}

## NIC throughput

The same guest and the same tool (`bench/guest/tcp_blast.c`) over
user-mode networking (slirp) for each NIC: guest→host and host→guest TCP
bulk transfers ({'1' if args.smoke else '64'} MiB) and 1-byte TCP request/response round trips to
a process on the host. `pciefw` is our NIC model and driver with every
message on the socket and DMA by messages; `pciefw-shm` the same over the
shared-memory rings with guest RAM the endpoint maps;
`pciefw-e1000` the endpoint's e1000 model (`docs/e1000.md`, over the shared-memory path) under Debian's
own `e1000` driver, both running slirp inside the endpoint; `e1000` (QEMU's
in-process model) and virtio-net-pci use QEMU's `-netdev user`.

{nic_section(nic)}

## Protocol level (`pciefw-bench`)

`build/bench/pciefw-bench` drives `testdev` endpoints over UNIX and TCP
through the host library and sets each figure against a raw socket exchange
of the same message sizes on the same transport, in the same run. A
cross-CPU wake-up costs 50-70 µs on this machine and a same-CPU one ~4 µs,
so it runs both unpinned and with everything on one CPU:
`build/bench/pciefw-bench -n 20000 -w 200000 -d 64` and the same with
`--pin 0` (the table: 20000 reads, 200000 posted writes, 64 MiB per DMA
figure). The `shm` rows are DMA with guest RAM shared with the endpoint
(`docs/protocol.md` section 10, a sealed memfd on the UNIX socket): their
baseline column is a plain `memcpy` of the same bytes in the same run, not
a socket.

{protocol_section(proto)}
"""
    (out / "benchmarks.md").write_text(doc)
    print(f"bench: wrote {out / 'benchmarks.md'} and {out / 'benchmarks.png'}")


if __name__ == "__main__":
    main()
