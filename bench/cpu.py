"""CPU time that processes use around a measured block (./dev bench;
docs/performance.md, "How CPU is measured").

    meter = CpuMeter({"qemu": qemu_pid, "endpoint": endpoint_pid})
    meter.begin()
    ...                              # the measured part
    use = meter.end()                # use.seconds["qemu"], use.wall

    with CpuMeter({"hog": pid}) as meter:
        ...
    meter.use.percent()              # {"hog": 98.7}: % of one CPU

A process's CPU time is its utime + stime: every thread, live or already
exited, as /proc/PID/stat reports it (fields 14 and 15, in clock ticks of
10 ms).  It is read here from the process's CPU-time clock, the clock
clock_getcpuclockid(3) names, which is the same kernel sum in nanoseconds:
the bench's block of 100000 in-process reads lasts ~25 ms, under three
ticks.  Each reading is checked against /proc/PID/stat, so the two cannot
drift apart unseen.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass

TICK = 1.0 / os.sysconf("SC_CLK_TCK")


def _stat_seconds(pid: int) -> float:
    """utime + stime from /proc/PID/stat, in seconds (tick resolution)."""
    with open(f"/proc/{pid}/stat") as f:
        # The command name (field 2) may hold spaces: split after its ')'.
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * TICK   # fields 14, 15


def _process_clock(pid: int) -> int:
    """clock_getcpuclockid(pid): the kernel's MAKE_PROCESS_CPUCLOCK(pid,
    CPUCLOCK_SCHED), the whole process's run time (Python has no wrapper)."""
    return ((~pid) << 3) | 2


def process_cpu_seconds(pid: int) -> float:
    """CPU seconds (user + system, all threads) that process @pid has used."""
    try:
        secs = time.clock_gettime(_process_clock(pid))
        ticks = _stat_seconds(pid)
    except OSError as e:
        raise RuntimeError(f"bench: cannot read the CPU time of process {pid}: "
                           f"{e.strerror} (has it exited?)") from None
    # /proc/PID/stat truncates to whole ticks and is read a moment later.
    if not -TICK <= secs - ticks <= 3 * TICK:
        raise RuntimeError(f"bench: CPU time of process {pid}: {secs:.3f} s by its "
                           f"clock, {ticks:.2f} s in /proc/{pid}/stat")
    return secs


@dataclass
class CpuUse:
    seconds: dict[str, float]   # CPU seconds per process, by role
    wall: float                 # wall-clock seconds of the block

    def percent(self) -> dict[str, float]:
        """Each process's CPU as a percentage of one CPU over the block."""
        return {role: 100.0 * s / self.wall for role, s in self.seconds.items()}


class CpuMeter:
    """CPU time of some processes (role -> PID) between begin() and end()."""

    def __init__(self, pids: dict[str, int]):
        self.pids = dict(pids)
        self._start: dict[str, float] | None = None
        self._t0 = 0.0
        self.use: CpuUse | None = None

    def _sample(self) -> dict[str, float]:
        return {role: process_cpu_seconds(pid) for role, pid in self.pids.items()}

    def begin(self) -> None:
        self._start = self._sample()
        self._t0 = time.monotonic()

    def end(self) -> CpuUse:
        if self._start is None:
            raise RuntimeError("bench: CPU-MARK end without a begin")
        now, wall = self._sample(), time.monotonic() - self._t0
        self.use = CpuUse({r: now[r] - self._start[r] for r in self.pids}, wall)
        self._start = None
        return self.use

    def __enter__(self) -> "CpuMeter":
        self.begin()
        return self

    def __exit__(self, *exc) -> None:
        if exc[0] is None:
            self.end()
