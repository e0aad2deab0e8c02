#!/usr/bin/python3
"""./dev bench: run every benchmark in one go on the same QEMU binary and the
same guest kernel, and write docs/benchmarks.md and docs/benchmarks.png.

  bench/run.py [--smoke] [--out DIR] [--compare REV]

Besides the figures, it reports the CPU time QEMU and the endpoint (or
vfio-user server) used per operation, and the idle CPU of a quiet session
(bench/cpu.py), and runs the latency and NIC benchmarks a second time
with a busy loop pinned to one CPU (bench/contention.py).

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
sys.path.insert(0, str(REPO / "bench"))
import contention  # noqa: E402


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
HDL = ("testdev", "rtl-verilog", "rtl-vhdl")
HDL_TARGETS = [(t, k, op) for t in HDL
               for k, op in (("mmio", "read"), ("mmio", "write"), ("dma", "copy"))] + \
              [(t, "sim", "clock") for t in HDL[1:]]
NICS = ("pciefw", "pciefw-shm", "pciefw-e1000", "e1000", "virtio-net-pci")
NIC_TARGETS = [(n, op) for n in NICS
               for op in ("send", "recv", "rr")]
ACCESS_DEVICES = ("in-process", "pciefw-shm", "pciefw-unix", "pciefw-tcp", "vfio-user")
IDLE_TARGETS = [(t,) for t in ACCESS_DEVICES]
# Devices QEMU runs alone: no endpoint or server process beside it.
QEMU_ONLY = ("in-process", "e1000", "virtio-net-pci")


def roles(device):
    """The processes whose CPU a row of @device reports."""
    return ("qemu",) if device in QEMU_ONLY else ("qemu", "endpoint")


def require(recs, key, wanted, what, why="their guest runs printed no result"):
    """Every @wanted key has a record, or the bench fails naming the gaps:
    a target whose run produced no figures is not left out of the table."""
    have = {key(r) for r in recs}
    missing = [w for w in wanted if w not in have]
    if missing:
        raise SystemExit(f"bench: no {what} figures for "
                         + ", ".join("/".join(m) for m in missing) + f" ({why})")


def with_cpu(recs, device):
    """The records that carry the CPU time of each of their processes."""
    return [r for r in recs if all(f"cpu_{p}_s" in r for p in roles(device(r)))]


def cpu_per(rec, role):
    """@role's CPU seconds per GB moved (a bulk transfer, which reports its
    bytes) or per million operations; None if the row has no such process."""
    secs = rec.get(f"cpu_{role}_s")
    if secs is None:
        return None
    if "bytes" in rec:
        return float(secs) / (int(rec["bytes"]) / 1e9)
    return float(secs) / int(rec["n"]) * 1e6


def cpu_total(rec):
    """Both processes' CPU per unit (QEMU's alone where it runs alone)."""
    return sum(cpu_per(rec, p) or 0.0 for p in ("qemu", "endpoint"))


def fmt(v):
    """A CPU figure with three significant digits or so; "-" for none."""
    if v is None:
        return "-"
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def protocol_figures(smoke):
    n = ["-n", "200", "-w", "500", "-d", "1"] if smoke else \
        ["-n", "20000", "-w", "200000", "-d", "64"]
    out = {}
    for label, extra in (("unpinned", []), ("pinned to CPU 0", ["--pin", "0"])):
        r = subprocess.run([str(BUILD / "bench" / "pciefw-bench"), "--json"] + extra + n,
                           stdout=subprocess.PIPE, text=True, check=True)
        out[label] = json.loads(r.stdout)
    return out


THINK_US = (0, 1, 10, 50, 200)
PLACEMENTS = (("unpinned", []), ("one CPU", ["--pin", "0"]))
THINK_READS = {False: "20000", True: "200"}     # by --smoke


def think_figures(smoke):
    """pciefw-bench's reads at each host think time (issue 23 item 2):
    {(placement, think µs): [records]}."""
    n = ["-n", THINK_READS[smoke]]
    out = {}
    for label, extra in PLACEMENTS:
        for think in THINK_US:
            r = subprocess.run([str(BUILD / "bench" / "pciefw-bench"), "--json", "--no-shm",
                                "-w", "1000", "-d", "1", "-t", str(think)] + extra + n,
                               stdout=subprocess.PIPE, text=True, check=True)
            out[(label, think)] = json.loads(r.stdout)
    return out


def think_section(figs):
    """Rings (binary records) against the same session on the UNIX socket,
    at each think time: p50, p99, CPU per read of both sides."""
    rows = []
    for (label, think), recs in figs.items():
        fig = {(r["transport"], r["metric"]): float(r["pciefw"]) for r in recs}
        cpu = lambda t: (fig[(t, "read CPU, endpoint")] + fig[(t, "read CPU, host")])
        p50 = lambda t: fig[(t, "read latency, median")]
        p99 = lambda t: fig[(t, "read latency, p99")]
        rows.append([label, think, f"{p50('unix'):.2f}", f"{p99('unix'):.2f}",
                     f"{p50('rings'):.2f}", f"{p99('rings'):.2f}",
                     ratio(p50("rings"), p50("unix"), 2), ratio(p99("rings"), p99("unix"), 2),
                     f"{cpu('unix'):.2f}", f"{cpu('rings'):.2f}",
                     "yes" if p50("rings") <= 1.1 * p50("unix") else "no"])
    return table(["placement", "think µs", "socket p50 µs", "socket p99 µs",
                  "rings p50 µs", "rings p99 µs", "p50 rings / socket",
                  "p99 rings / socket", "socket CPU µs / read", "rings CPU µs / read",
                  "rings within 1.1x"], rows)


def table(headers, rows):
    lines = ["| " + " | ".join(headers) + " |",
             "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def ratio(a, b, digits=1):
    return f"{a / b:.{digits}f}x" if b else "-"


def access_section(recs):
    by = {(r["target"], r["kind"], r["op"]): r for r in recs}
    rows = []
    for target in ACCESS_DEVICES:
        for kind in ("mmio", "io"):
            for op in ("read", "write"):
                r = by.get((target, kind, op))
                if not r:
                    continue            # not offered (vfio-user has no MMIO)
                base = by[("in-process", kind, op)]
                p50 = float(r["p50_us"])
                vu = by.get(("vfio-user", kind, op))
                rows.append([target, kind, op, r["mean_us"], r["p50_us"], r["p99_us"],
                             f"{p50 / float(base['p50_us']):.0f}x",
                             f"{p50 / float(vu['p50_us']):.2f}x" if vu else "-",
                             fmt(cpu_per(r, "endpoint")), fmt(cpu_per(r, "qemu")),
                             ratio(cpu_total(r), cpu_total(base))])
    return table(["device", "BAR", "access", "mean µs", "p50 µs", "p99 µs",
                  "p50 / in-process", "p50 / vfio-user", "endpoint CPU s / M",
                  "QEMU CPU s / M", "CPU / in-process"], rows)


def idle_section(recs):
    by = {r["target"]: r for r in recs}
    pct = lambda r, p: f"{float(r[f'cpu_{p}_pct']):.2f}" if f"cpu_{p}_pct" in r else "-"
    rows = [[t, pct(by[t], "endpoint"), pct(by[t], "qemu"), by[t]["seconds"]]
            for t in ACCESS_DEVICES]
    return table(["device", "endpoint, % of a CPU", "QEMU, % of a CPU",
                  "interval s"], rows)


def hdl_section(recs):
    by = {(r["target"], r["kind"], r["op"]): r for r in recs}
    base_rd = float(by[("testdev", "mmio", "read")]["p50_us"])
    base_dma = float(by[("testdev", "dma", "copy")]["mib_s"])
    sims = {"testdev": "- (C)", "rtl-verilog": "Verilator", "rtl-vhdl": "GHDL (LLVM)"}
    rows = []
    for t in HDL:
        rd, wr, dma = (by[(t, k, op)] for k, op in
                       (("mmio", "read"), ("mmio", "write"), ("dma", "copy")))
        clock = by.get((t, "sim", "clock"))
        rows.append([t, sims[t], rd["p50_us"], f"{float(rd['p50_us']) / base_rd:.1f}x",
                     wr["p50_us"], dma["mib_s"],
                     f"{base_dma / float(dma['mib_s']):.0f}x",
                     f"{float(clock['cycles_per_s']) / 1e6:.2f}" if clock else "-"])
    return table(["device", "simulated by", "MMIO read p50 µs", "read / testdev",
                  "MMIO write p50 µs", "DMA copy MiB/s", "testdev's copy / this",
                  "simulated Mcycles/s"], rows)


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


NIC_TRAFFIC = {"send": "guest→host, s per GB", "recv": "host→guest, s per GB",
               "rr": "1-byte round trips, s per M"}


def nic_cpu_section(recs):
    by = {(r["nic"], r["op"]): r for r in recs}
    rows = []
    for nic in NICS:
        for op, what in NIC_TRAFFIC.items():
            r, base = by[(nic, op)], by[("e1000", op)]
            rows.append([nic, what, fmt(cpu_per(r, "endpoint")), fmt(cpu_per(r, "qemu")),
                         fmt(cpu_total(r)), ratio(cpu_total(r), cpu_total(base), 2)])
    return table(["NIC", "traffic", "endpoint CPU", "QEMU CPU", "both",
                  "both / e1000"], rows)


def contention_section(quiet_access, quiet_nic, access, nic):
    """Latency and NIC figures with the hog beside, against the quiet run."""
    q = {(r["target"], r["kind"], r["op"]): r for r in quiet_access}
    rows = []
    for r in sorted(access, key=lambda r: ACCESS_TARGETS.index(
            (r["target"], r["kind"], r["op"]))):
        base = q[(r["target"], r["kind"], r["op"])]
        rows.append([r["target"], r["kind"], r["op"], r["p50_us"], r["p99_us"],
                     ratio(float(r["p50_us"]), float(base["p50_us"]), 2),
                     ratio(float(r["p99_us"]), float(base["p99_us"]), 2)])
    lat = table(["device", "BAR", "access", "p50 µs", "p99 µs", "p50 / quiet",
                 "p99 / quiet"], rows)
    qn = {(r["nic"], r["op"]): r for r in quiet_nic}
    by = {(r["nic"], r["op"]): r for r in nic}
    rows = []
    for n in NICS:
        figs = [(by[(n, op)][f], qn[(n, op)][f]) for op, f in
                (("send", "mbit_s"), ("recv", "mbit_s"), ("rr", "rate_per_s"))]
        rows.append([n] + [v for v, _ in figs]
                    + [ratio(float(v), float(b), 2) for v, b in figs])
    nics = table(["NIC", "guest→host Mbit/s", "host→guest Mbit/s",
                  "1-byte TCP round trips/s", "send / quiet", "recv / quiet",
                  "rr / quiet"], rows)
    return lat + "\n\n" + nics


def targets_section(access, nic, proto, idle):
    """Issue 23's targets, as ratios of this run, each with whether this run
    met it (a target counts as met when two runs meet it: docs/performance.md
    says where the time goes for those missed)."""
    p50 = {(r["target"], r["kind"], r["op"]): float(r["p50_us"]) for r in access}
    p99 = {(r["target"], r["kind"], r["op"]): float(r["p99_us"]) for r in access}
    mbit = {(r["nic"], r["op"]): float(r["mbit_s"]) for r in nic if "mbit_s" in r}
    rr = {r["nic"]: float(r["rate_per_s"]) for r in nic if r["op"] == "rr"}
    rows = []

    def row(what, value, unit, target, met):
        rows.append([what, f"{value:.2f}{unit}", target, "yes" if met else "no"])

    shm = ("pciefw-shm", "mmio", "read")
    v = p50[shm] / p50[("in-process", "mmio", "read")]
    row("MMIO read p50, pciefw-shm / in-process pci-testdev", v, "x", "at most 4x", v <= 4)
    v = p50[("pciefw-shm", "io", "read")] - p50[shm]
    row("IO read p50 less MMIO read p50, pciefw-shm", v, " µs", "at most 0.1 µs", v <= 0.1)
    v = p99[shm] / p50[shm]
    row("MMIO read p99 / its p50, pciefw-shm", v, "x", "at most 4x", v <= 4)
    v = p50[("vfio-user", "io", "read")] / p50[shm]
    row("vfio-user IO read p50 / pciefw-shm MMIO read p50", v, "x", "at least 5x", v >= 5)
    recs = proto.get("unpinned", [])
    by_socket = {r["metric"].split(" (")[0].replace(" to guest", "").replace(" of guest", ""):
                 float(r["pciefw"]) for r in recs
                 if r["transport"] == "unix" and r["unit"] == "MB/s"}
    for r in recs:
        if r["transport"] == "shm" and r["unit"] == "MB/s":
            what = r["metric"].split(" (")[0]
            row(f"{what} by copy / plain memcpy", r["ratio"], "x", "at least 0.8x",
                r["ratio"] >= 0.8)
            sock = by_socket.get(what)
            if sock:
                v = float(r["pciefw"]) / sock
                row(f"{what} by copy / the same by socket messages", v, "x",
                    "at least 1x", v >= 1)
    for n in ("pciefw-shm", "pciefw-e1000"):
        v = rr[n] / rr["e1000"]
        row(f"1-byte TCP round trips/s, {n} / in-process e1000", v, "x", "at least 1x",
            v >= 1)
    for op, what in (("send", "guest→host"), ("recv", "host→guest")):
        best = max(mbit[("e1000", op)], mbit[("virtio-net-pci", op)])
        v = mbit[("pciefw-shm", op)] / best
        row(f"NIC {what}, pciefw-shm / faster of e1000 and virtio-net", v, "x",
            "at least 1.1x", v >= 1.1)
        v = mbit[("pciefw-e1000", op)] / mbit[("e1000", op)]
        row(f"NIC {what}, pciefw-e1000 / in-process e1000", v, "x", "at least 1x", v >= 1)
    quiet = next(r for r in idle if r["target"] == "pciefw-shm")
    for p, what in (("endpoint", "endpoint"), ("qemu", "QEMU")):
        v = float(quiet[f"cpu_{p}_pct"])
        row(f"quiet pciefw-shm session, {what}'s CPU", v, "%", "below 1% of a CPU", v < 1)
    return table(["figure", "this run", "target", "met"], rows)


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
        reads, nic_counts, idle_s = ["--reads", "50"], ["--mib", "1", "--rr", "20"], 1
        hdl_counts = ["--reads", "50", "--copies", "2", "--dma-bytes", "65536"]
    else:
        # 100000 accesses: a block of the cheapest (in-process, ~0.25 µs
        # each) then lasts ~25 ms, against ~0.6 ms of QEMU's CPU for the
        # console exchange of its marks (docs/performance.md).
        reads, nic_counts, idle_s = ["--reads", "100000"], ["--mib", "64", "--rr", "2000"], 10
        hdl_counts = ["--reads", "20000", "--copies", "10", "--dma-bytes", str(1 << 20)]
    access_key = lambda r: (r["target"], r["kind"], r["op"])
    nic_key = lambda r: (r["nic"], r["op"])
    load_start = os.getloadavg()

    recs = run_json_lines(guest + ["access"] + reads + ["--idle", str(idle_s)])
    access = [r for r in recs if r["bench"] == "access"]
    idle = [r for r in recs if r["bench"] == "idle"]
    require(access, access_key, ACCESS_TARGETS, "access latency")
    require(with_cpu(access, lambda r: r["target"]), access_key, ACCESS_TARGETS,
            "CPU per access", "no CPU time sampled around their timed loops")
    require([r for r in idle if all(f"cpu_{p}_pct" in r for p in roles(r["target"]))],
            lambda r: (r["target"],), IDLE_TARGETS, "idle session CPU",
            "their quiet interval was not measured")
    nic = run_json_lines(guest + ["nic"] + nic_counts)
    require(nic, nic_key, NIC_TARGETS, "NIC")
    require(with_cpu(nic, lambda r: r["nic"]), nic_key, NIC_TARGETS, "NIC CPU",
            "no CPU time sampled around their transfers")
    hdl = run_json_lines(guest + ["hdl"] + hdl_counts)
    require(hdl, access_key, HDL_TARGETS, "RTL device")
    proto = protocol_figures(args.smoke)
    think = think_figures(args.smoke)

    # The latency and NIC runs again, a busy loop pinned to one CPU beside.
    hog_cpu = contention.last_cpu()
    with contention.CpuHog(hog_cpu) as hog:
        access_c = run_json_lines(guest + ["access"] + reads)
        nic_c = run_json_lines(guest + ["nic"] + nic_counts)
    if hog.use is None:
        raise SystemExit("bench: the CPU hog exited before the run under contention ended")
    require(access_c, access_key, ACCESS_TARGETS, "access latency under contention")
    require(nic_c, nic_key, NIC_TARGETS, "NIC under contention")
    load_end = os.getloadavg()

    chart(access, out / "benchmarks.png")
    cmd = "./dev bench" + (" --smoke" if args.smoke else "")
    load = lambda a: " / ".join(f"{v:.2f}" for v in a)
    hog_pct = hog.use.percent()["hog"]
    doc = f"""# Benchmarks

Generated by `{cmd}` (`bench/run.py`) on {datetime.date.today().isoformat()},
on this machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}
{platform.release()}; QEMU 10.2.2 under TCG (no KVM), the Debian 6.1 guest
kernel of `tests/guest/`. The machine is shared and noisy: compare the ratios,
which are measured in the same run, more than the absolute figures.
Load average (1 / 5 / 15 min) {load(load_start)} when the run started and
{load(load_end)} when it ended.
`docs/performance.md` explains where the time goes and what was changed.

## In-guest register access latency

A static program in the guest (`bench/guest/access_lat.c`) times 32-bit
accesses to one register through `/sys/bus/pci/devices/*/resourceN` (MMIO)
or port IO. *in-process* is QEMU's own `pci-testdev`: the floor. *pciefw*
is `-device pciefw` with `pciefw-endpoint --device testdev`. *vfio-user* is
QEMU's `vfio-user-pci` with libvfio-user's `gpio-pci-idio-16` sample (built
from the copy in QEMU's source), whose only BAR is IO. Reads wait for a
completion; pciefw's MMIO writes are posted (they never wait for a round
trip), IO writes are non-posted as in PCIe. Each row is {reads[1]} accesses,
after 100 unmeasured ones (so that TCG has translated the program).

*endpoint CPU* and *QEMU CPU* are the CPU seconds per million accesses
(so, µs per access) that the endpoint (for vfio-user, its server) and
QEMU used, user + system time of all their threads as `/proc/PID/stat`
counts it, sampled just before and just after the timed loop: the guest
program stops at a mark on its console while the host samples
(`bench/cpu.py`, `bench/marked_guest.py`; `docs/performance.md`, "How CPU
is measured"). QEMU's figure includes the guest's own loop, the same in
every row. *CPU / in-process* is both processes' sum over in-process
`pci-testdev`'s.

{access_section(access)}

![In-guest access latency](benchmarks.png)

## Idle CPU of a quiet session

Each guest of the table above, once its accesses are done, sits in `read`
on its console for {idle_s} s with the device still enabled and connected,
and nothing running: no driver is bound to any of these devices (the
guest loads none for them), and any polling the accesses started must
have stopped. Each process's CPU time over that interval, as a percentage
of one CPU; QEMU's includes the idle guest kernel's timer ticks.

{idle_section(idle)}

## The shared-memory path against its targets

*pciefw-shm* is the device as users get it on a UNIX socket with guest RAM
in a shared memfd: the session on shared-memory rings both sides poll
(`docs/protocol.md` section 11) and DMA as memory copies (section 10).
*pciefw-unix* is the same endpoint with `shm-rings=off`: every message on
the socket. `docs/performance.md` says where the time goes.

{targets_section(access, nic, proto, idle)}

## Devices in RTL beside testdev

One register map in three implementations (`docs/hdl.md` 6), each in its
own guest behind `-device pciefw` as users get it (shared-memory rings,
guest RAM shared): `testdev` in C, and the example device `pf_testdev` in
Verilog under Verilator and in VHDL under GHDL, behind the RTL bridge
(`--device rtl`). In the guest, `bench/guest/access_lat.c` times 32-bit
reads and writes of `SCRATCH`, and `bench/guest/dma_bench.c` times DMA
copies of {'64 KiB' if args.smoke else '1 MiB'} between two reserved areas
(start, then poll `DMA_STATUS`). *Simulated Mcycles/s* is the endpoint's
count of cycles over the wall time the simulation spent clocking them (the
`rtl` model logs both); an idle simulation sleeps and is not counted.
`docs/hdl.md` section 10 says where the time goes.

{hdl_section(hdl)}

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

CPU per traffic, sampled around each transfer as for the register
accesses (from before the guest's `connect()` to the end of the transfer):
CPU seconds per GB (10^9 bytes) moved for the bulk transfers, per million
round trips for the 1-byte ones. The endpoint runs the NIC model and slirp;
for `e1000` and virtio-net-pci QEMU runs both. The host end of the TCP
connections is the bench itself, the same for every NIC, and not counted.

{nic_cpu_section(nic)}

## Under contention

The register access and NIC benchmarks of this run once more, with a busy
loop (`sh -c 'while :; do :; done'`) pinned by `taskset` to CPU {hog_cpu}
from before the first guest to after the last (started and stopped by its
PID, `bench/contention.py`); it had {hog_pct:.0f}% of a CPU over those
{hog.use.wall:.0f} s. QEMU and the endpoints are not pinned: they share the
other CPU, and this one with the loop. The quiet figures are those of the
tables above.

{contention_section(access, nic, access_c, nic_c)}

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

## Rings against the socket by host think time

The polling rule of `docs/protocol.md` 11.4 against a host that works
between its reads: `pciefw-bench -t T` reads `SCRATCH` with a busy loop of
T µs between two reads, {THINK_READS[args.smoke]} reads per row, over the shared-memory
rings with binary register records (11.7) and over the same endpoint's
UNIX socket, unpinned and with everything on CPU 0. *CPU µs / read* is
the endpoint's and the host's CPU time per read, both together, less the
host's think time (`/proc/self/stat` and `/proc/PID/stat` around the timed
reads). The target: the rings no slower than the socket (p50 within 1.1x)
at every think time.

{think_section(think)}
"""
    (out / "benchmarks.md").write_text(doc)
    print(f"bench: wrote {out / 'benchmarks.md'} and {out / 'benchmarks.png'}")


if __name__ == "__main__":
    main()
