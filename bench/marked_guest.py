"""Run a benchmark guest whose programs mark their measured parts, and
sample the CPU time of QEMU and of the other given processes at each mark
(bench/cpu.py).

The guest's programs print "CPU-MARK begin" and "CPU-MARK end" around
what they time (bench/guest/bench_mark.h, with BENCH_MARKS=1) and wait for
a newline on the console; the host samples, then answers.  A warm-up run
(BENCH_MARKS=warmup) prints "CPU-MARK warmup" instead: answered at once.  A guest script
prints "CPU-MARK idle" to have its quiet session measured: the host samples,
waits IDLE seconds while the guest sits in `read`, samples again, answers.

    run = marked_guest.run(qemu, initrd, args, {"endpoint": ep.pid},
                           idle_seconds=10, timeout=600)
    run.result      guestlib.GuestResult, as boot_guest returns it
    run.blocks      a cpu.CpuUse per begin/end pair, in order
    run.idle        a cpu.CpuUse per idle mark, in order
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field

import cpu
import guestlib

MARK = re.compile(r"^CPU-MARK (begin|end|idle|warmup)$|PCIEFW-GUEST: exit \d+",
                  re.MULTILINE)


@dataclass
class MarkedRun:
    result: guestlib.GuestResult
    blocks: list[cpu.CpuUse] = field(default_factory=list)
    idle: list[cpu.CpuUse] = field(default_factory=list)


def run(qemu, initrd, extra_args, pids: dict[str, int], idle_seconds: float = 0.0,
        timeout: float = 600.0, **guest_kw) -> MarkedRun:
    """Boot the guest, answer its marks, return when /test.sh is done.
    QEMU is always gone when this returns (as with guestlib.boot_guest)."""
    guest = guestlib.Guest(qemu, initrd, extra_args, **guest_kw)
    blocks, idle = [], []
    deadline = time.monotonic() + timeout
    try:
        guest.start()
        meter = cpu.CpuMeter({"qemu": guest.proc.pid, **pids})
        while True:
            try:
                m = guest.wait_for(MARK, timeout=max(1.0, deadline - time.monotonic()))
            except guestlib.GuestError:
                break               # QEMU gone or timed out: result() says so
            if m.group(1) is None:
                break               # /test.sh is done
            if m.group(1) == "begin":
                meter.begin()
            elif m.group(1) == "end":
                blocks.append(meter.end())
            elif m.group(1) == "idle":
                meter.begin()
                time.sleep(idle_seconds)    # the measured interval itself
                idle.append(meter.end())
            guest.send("\n")
        result = guest.wait(max(1.0, deadline - time.monotonic()))
        return MarkedRun(result, blocks, idle)
    finally:
        guest.stop()


def attach(records: list[dict], blocks: list[cpu.CpuUse], what: str) -> None:
    """Give each RESULT record the CPU of its marked block (a program marks
    its block before it prints its RESULT, so they pair in order), as
    cpu_<role>_s fields.  A guest whose programs mark nothing (an older
    build under bench --compare) leaves the records without CPU figures."""
    if not blocks:
        return
    if len(blocks) != len(records):
        raise SystemExit(f"bench: {what}: {len(blocks)} marked blocks for "
                         f"{len(records)} results")
    for rec, use in zip(records, blocks):
        for role, secs in use.seconds.items():
            rec[f"cpu_{role}_s"] = f"{secs:.6f}"
        rec["cpu_wall_s"] = f"{use.wall:.6f}"
