"""A CPU hog beside a bench run (./dev bench's run under contention): a
busy shell loop pinned to one CPU with taskset, started and stopped by PID.
Its own CPU time over the run (bench/cpu.py) says how much of that CPU it
took from the benchmark, on a machine that other work shares too.

    with CpuHog(cpu=1) as hog:
        ...                         # the benchmark
    hog.use.percent()["hog"]        # % of one CPU the loop had
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import cpu

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "integration"))
from procs import stop_process  # noqa: E402

LOOP = "while :; do :; done"


def last_cpu() -> int:
    """The highest-numbered CPU this process may run on."""
    return max(os.sched_getaffinity(0))


class CpuHog:
    def __init__(self, cpu_index: int):
        self.cpu = cpu_index
        self.proc: subprocess.Popen | None = None
        self.use: cpu.CpuUse | None = None

    def __enter__(self) -> "CpuHog":
        # taskset execs sh: the PID we hold is the loop's own.
        self.proc = subprocess.Popen(["taskset", "-c", str(self.cpu), "sh", "-c", LOOP],
                                     stdin=subprocess.DEVNULL)
        self._meter = cpu.CpuMeter({"hog": self.proc.pid})
        self._meter.begin()
        return self

    def __exit__(self, *exc) -> None:
        try:
            if self.proc.poll() is None:
                self.use = self._meter.end()
        finally:
            stop_process(self.proc)
