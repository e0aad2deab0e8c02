"""Building designs for the RTL bridge (hdl/build.py, docs/hdl.md): what
Verilator and GHDL say about a broken design reaches the user as they say
it (file:line); a top without the interface's ports is named; builds are
cached by their inputs and redone when one changes; the examples are
Verilator --assert -Wall lint clean and GHDL --std=08 clean; and
./dev try runs a design in a guest."""

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

import rtllib

REPO = rtllib.REPO
BUILD = [str(rtllib.BUILD)]
PY = "/usr/bin/python3"


def build(*args, cwd=None, env=None):
    return subprocess.run([PY, *BUILD, *args], cwd=cwd, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def cache(tmp_path):
    """A cache of its own: a first build is a first build."""
    return dict(os.environ, PCIEFW_CACHE=str(tmp_path / "cache"))


def test_errors_as_the_tools_print_them(tmp_path, cache):
    (tmp_path / "broken.v").write_text("module broken(input wire clk);\n"
                                       "  wire a\n  assign a = clk;\nendmodule\n")
    (tmp_path / "broken.vhd").write_text("entity broken is\nend entity\n"
                                         "architecture a of broken is begin end;\n")
    r = build("verilog", "broken.v", cwd=tmp_path, env=cache)
    assert r.returncode == 1 and not r.stdout
    assert re.search(r"%Error: \S*broken\.v:3:3: syntax error", r.stderr), r.stderr
    r = build("vhdl", "broken.vhd", cwd=tmp_path, env=cache)
    assert r.returncode == 1 and not r.stdout
    assert 'broken.vhd:2:11: missing ";" at end of entity' in r.stderr, r.stderr
    # Nothing half-built is left in the cache.
    assert not list((tmp_path / "cache" / "hdl").glob("*-broken-*"))


def test_missing_ports_named(tmp_path, cache):
    (tmp_path / "bare.v").write_text("module bare(input wire clk, input wire rst_n);\n"
                                     "endmodule\n")
    r = build("verilog", "bare.v", cwd=tmp_path, env=cache)
    assert r.returncode == 1
    assert "the top module lacks ports s_bar0_awready, s_bar0_wready" in r.stderr, r.stderr
    (tmp_path / "bare.vhd").write_text(
        "library ieee;\nuse ieee.std_logic_1164.all;\n"
        "entity bare is port (clk, rst_n : in std_logic);\nend entity;\n"
        "architecture a of bare is begin end;\n")
    r = build("vhdl", "bare.vhd", cwd=tmp_path, env=cache)
    assert r.returncode == 1
    assert re.search(r"pf_tb\.vhd:\d+:\d+: .*s_bar0_aw", r.stderr), r.stderr


def test_cached_by_inputs(tmp_path, cache):
    src = tmp_path / "pf_testdev.vhd"
    shutil.copy(REPO / "hdl" / "vhdl" / "pf_testdev.vhd", src)
    first = build("vhdl", str(src), env=cache)
    assert first.returncode == 0, first.stderr
    assert "building pf_testdev" in first.stderr
    sim = first.stdout.strip()
    assert sim.startswith(str(tmp_path / "cache" / "hdl"))
    assert os.access(os.path.join(sim, "run"), os.X_OK)
    again = build("vhdl", str(src), env=cache)
    assert again.returncode == 0 and again.stdout.strip() == sim
    assert not again.stderr, again.stderr             # not rebuilt
    src.write_text(src.read_text().replace("x\"7e57de01\"", "x\"7e57de02\""))
    changed = build("vhdl", str(src), env=cache)
    assert changed.returncode == 0 and "building" in changed.stderr
    assert changed.stdout.strip() != sim
    # Nothing in the clone: no new file, ignored or not, under hdl/.
    st = subprocess.run(["git", "status", "--porcelain", "--ignored",
                         "--untracked-files=all", "hdl"], cwd=REPO,
                        stdout=subprocess.PIPE, text=True).stdout
    assert not [l for l in st.splitlines() if l[:2] in ("??", "!!")], st


def test_examples_lint_clean(tmp_path):
    """Verilator's lint with --assert -Wall and GHDL's VHDL-2008 analysis
    say nothing about the examples, the runtime package and the broken
    designs of the hostile tests (broken on purpose at run time only)."""
    verilog = sorted((REPO / "hdl" / "verilog").glob("*.v")) + \
        sorted(rtllib.HOSTILE.glob("*.v"))
    for src in verilog:
        r = subprocess.run(["verilator", "--lint-only", "-Wall", "--assert",
                            f"-I{REPO / 'hdl' / 'verilog'}", str(src)],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert r.returncode == 0 and not r.stdout, (src, r.stdout)
    r = subprocess.run(["ghdl-llvm", "-a", "--std=08", f"--workdir={tmp_path}",
                        str(REPO / "hdl" / "runtime" / "pf_rtl_pkg.vhd"),
                        *map(str, sorted((REPO / "hdl" / "vhdl").glob("*.vhd"))),
                        *map(str, sorted(rtllib.HOSTILE.glob("*.vhd")))],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert r.returncode == 0 and not r.stdout, r.stdout


TRY_SCRIPT = """
echo "TRY-ID: $(devmem $BAR0 32)"
devmem $((BAR0 + 4)) 32 0x600dcafe
echo "TRY-INV: $(devmem $((BAR0 + 8)) 32)"
"""


@pytest.mark.parametrize("lang", ["verilog", "vhdl"])
def test_dev_try(tmp_path, qemu_binary, lang):
    """./dev try hdl-LANG builds the example (or finds it built), runs it
    in the guest, and leaves the endpoint's log and trace."""
    script = tmp_path / "s.sh"
    script.write_text(TRY_SCRIPT)
    out = tmp_path / "out"
    env = {**os.environ, "PCIEFW_QEMU": qemu_binary, "PCIEFW_TRY_DIR": str(out)}
    r = subprocess.run([str(REPO / "scripts" / "try.sh"), f"hdl-{lang}", "--script",
                        str(script)], cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout
    assert "Device 1234:fe11" in r.stdout, r.stdout
    assert "TRY-ID: 0x7E57DE01" in r.stdout and "TRY-INV: 0x9FF23501" in r.stdout
    log = (out / "endpoint.log").read_text()
    assert "Verilator" in log if lang == "verilog" else "GHDL" in log, log
