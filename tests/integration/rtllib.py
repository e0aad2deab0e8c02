"""Designs for the RTL bridge's tests (docs/hdl.md): built by hdl/build.py,
cached by input hash in ~/.cache/pciefw/hdl (never in the clone), and
returned as the --device argument of pciefw-endpoint's rtl model."""

import functools
import os
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUILD = REPO / "hdl" / "build.py"
# The broken designs the hostile-RTL tests run.
HOSTILE = REPO / "tests" / "hdl"

# The example device in each language: one register map (docs/hdl.md 6).
EXAMPLES = {"verilog": "hdl-verilog", "vhdl": "hdl-vhdl"}


@functools.lru_cache(maxsize=None)
def device(spec: str) -> str:
    """hdl-LANG[,src=...][,OPT=V...] built; 'rtl,sim=DIR,OPT=V...'."""
    r = subprocess.run(["/usr/bin/python3", str(BUILD), "--device", spec],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       env=dict(os.environ, PATH="/usr/bin:/bin:" + os.environ["PATH"]))
    if r.returncode:
        raise RuntimeError(f"hdl/build.py --device {spec} failed:\n{r.stderr[-4000:]}")
    return r.stdout.strip().splitlines()[-1]


def example(lang: str, opts: str = "") -> str:
    """The example device in @lang (verilog, vhdl), with rtl options."""
    return device(EXAMPLES[lang] + ("," + opts if opts else ""))


def hostile(name: str, opts: str = "") -> str:
    """A broken design of tests/hdl/ (Verilog), with rtl options."""
    return device(f"hdl-verilog,src={HOSTILE / (name + '.v')}" + ("," + opts if opts else ""))


def sim_pid(endpoint) -> int:
    """The simulation's pid, from the endpoint's 'simulating ... (pid N)'."""
    m = re.findall(r"rtl: simulating .* \(pid (\d+)\)", endpoint.output())
    assert m, endpoint.output()
    return int(m[-1])


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of @pid so far (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
