#!/usr/bin/python3
"""Build a design in Verilog or VHDL into a simulation the RTL bridge runs
(pciefw-endpoint --device rtl,sim=DIR; docs/hdl.md).

  hdl/build.py verilog|vhdl [--top NAME] [--bars 0,2] [--wave vcd|fst] SRC...
      builds and prints the simulation's directory (the last line of stdout)
  hdl/build.py --device hdl-verilog|hdl-vhdl[,src=A.v[:B.v]][,top=NAME][,OPT=V...]
      builds, and prints the --device argument that runs it:
      rtl,sim=DIR,OPT=V...  (./dev try and the tests use this form)

Verilog and SystemVerilog go through Verilator (Debian's verilator 5.006),
VHDL-2008 through GHDL's LLVM back end (ghdl-llvm 2.0): each becomes one
executable, linked with the bridge's runtime (hdl/runtime/).  Builds are
cached in $PCIEFW_CACHE/hdl (default ~/.cache/pciefw/hdl), never in the
clone, keyed by a hash of every input: the sources, the HDL files beside
them (for `include), the runtime, this script, the tool's version and the
options.  An unchanged design is not rebuilt.  What Verilator and GHDL say
about the design reaches you as they print it (file:line); the C++
compiler's output only when it fails.

With --device, src= defaults to the example device in the language
(hdl/verilog/pf_testdev.v, hdl/vhdl/pf_testdev.vhd) and top= to the first
source's file name; barN=SIZE says which BARs have an AXI4-Lite port (BAR0
unless bar0=0), and wave=FILE.fst builds Verilator's FST writer instead of
VCD.  Every option but src= and top= is passed on to the rtl model.
"""

from __future__ import annotations

import argparse
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
RUNTIME = REPO / "hdl" / "runtime"
PROTOCOL = REPO / "protocol"
# The rings of spec 11 (protocol/ring.c, and what it calls) carry the link.
C_RUNTIME = [RUNTIME / "pf_rtl.c", RUNTIME / "rtl_link.c", PROTOCOL / "ring.c",
             PROTOCOL / "shared_fd.c"]
# The interface's Verilog headers (pf_ports.vh ...), on every include path.
VERILOG_INC = REPO / "hdl" / "verilog"
RUNTIME_INPUTS = sorted(RUNTIME.iterdir()) + sorted(VERILOG_INC.glob("*.vh")) + \
    [PROTOCOL / n for n in ("ring.c", "ring.h", "shared_fd.c", "shared_fd.h",
                            "pciefw.h")] + [Path(__file__)]
HDL_EXT = (".v", ".sv", ".vh", ".svh", ".vhd", ".vhdl")
EXAMPLES = {"verilog": REPO / "hdl" / "verilog" / "pf_testdev.v",
            "vhdl": REPO / "hdl" / "vhdl" / "pf_testdev.vhd"}
TOOLS = {"verilog": "verilator", "vhdl": "ghdl-llvm"}
# The project's C flags for the runtime (meson.build); C++ is Verilator's.
CFLAGS = ["-std=gnu11", "-D_GNU_SOURCE", "-O2", "-g", "-Wall", "-Wextra",
          "-Wno-unused-parameter", "-Wshadow", "-Wstrict-prototypes",
          "-Wmissing-prototypes", f"-I{RUNTIME}", f"-I{PROTOCOL}"]

# The testbench's packing of the design's ports (hdl/runtime/pf_rtl_ghdl.c
# has the same tables): (port suffix, width); width 0: one std_logic.
VHDL_BAR_OUTS = [("awready", 0), ("wready", 0), ("bvalid", 0), ("bresp", 2),
                 ("arready", 0), ("rvalid", 0), ("rresp", 2), ("rdata", 32)]
VHDL_BAR_INS = [("awaddr", 32), ("awvalid", 0), ("wdata", 32), ("wstrb", 4),
                ("wvalid", 0), ("bready", 0), ("araddr", 32), ("arvalid", 0),
                ("rready", 0)]
VHDL_OUTS = [("m_dma_awaddr", 64), ("m_dma_awlen", 8), ("m_dma_awsize", 3),
             ("m_dma_awburst", 2), ("m_dma_awvalid", 0), ("m_dma_wdata", 32),
             ("m_dma_wstrb", 4), ("m_dma_wlast", 0), ("m_dma_wvalid", 0),
             ("m_dma_bready", 0), ("m_dma_araddr", 64), ("m_dma_arlen", 8),
             ("m_dma_arsize", 3), ("m_dma_arburst", 2), ("m_dma_arvalid", 0),
             ("m_dma_rready", 0), ("irq_req", 0), ("irq_msi", 0),
             ("irq_vector", 11), ("intx", 0), ("busy", 0)]
VHDL_INS = [("m_dma_awready", 0), ("m_dma_wready", 0), ("m_dma_bvalid", 0),
            ("m_dma_bresp", 2), ("m_dma_arready", 0), ("m_dma_rvalid", 0),
            ("m_dma_rresp", 2), ("m_dma_rlast", 0), ("m_dma_rdata", 32),
            ("irq_ack", 0)]


class BuildError(Exception):
    pass


def cache_root() -> Path:
    base = os.environ.get("PCIEFW_CACHE") or os.path.expanduser("~/.cache/pciefw")
    return Path(base) / "hdl"


def tool_version(lang: str) -> str:
    tool = TOOLS[lang]
    if not shutil.which(tool):
        raise BuildError(f"{tool} is not installed: ./dev setup installs it "
                         f"(apt-get install {'verilator' if lang == 'verilog' else 'ghdl ghdl-llvm'})")
    out = subprocess.run([tool, "--version"], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True).stdout
    return out.splitlines()[0] if out else tool


def run(cmd, cwd=None, quiet=False):
    """Run a build step (in @cwd: the sources' paths as given are relative
    to it, and the tools' messages show them so).  quiet: its output only
    if it fails."""
    if quiet:
        r = subprocess.run(cmd, cwd=cwd, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        if r.returncode:
            sys.stderr.write(r.stdout)
    else:
        r = subprocess.run(cmd, cwd=cwd, stdout=sys.stderr)
    if r.returncode:
        raise BuildError(f"{Path(cmd[0]).name} failed (exit status {r.returncode})")


def input_hash(lang, top, bars, wave, srcs) -> str:
    h = hashlib.sha256()
    h.update(f"{lang}\0{top}\0{sorted(bars)}\0{wave}\0{tool_version(lang)}\0".encode())
    files = set(RUNTIME_INPUTS)
    for s in srcs:
        files.add(s)
        files.update(p for p in s.parent.iterdir() if p.suffix in HDL_EXT)
    for f in sorted(files):
        if f.is_file():
            h.update(str(f.name).encode() + b"\0" + f.read_bytes() + b"\0")
    for s in srcs:             # the order of the sources matters to the tools
        h.update(s.name.encode() + b"\0")
    return h.hexdigest()[:16]


def compile_c(out: Path, sources, extra=()):
    out.mkdir(exist_ok=True)
    objs = []
    for src in sources:
        obj = out / (src.stem + ".o")
        run(["gcc", *CFLAGS, *extra, "-fPIC", "-c", str(src), "-o", str(obj)])
        objs.append(obj)
    return objs


def port_names(bars):
    """Every port of the RTL device interface (docs/hdl.md 2)."""
    names = ["clk", "rst_n"]
    for b in sorted(bars):
        names += [f"s_bar{b}_{n}" for n, _ in VHDL_BAR_OUTS + VHDL_BAR_INS]
    return names + [n for n, _ in VHDL_OUTS + VHDL_INS]


def missing_ports(header: Path, bars):
    """Say which ports a verilated top lacks, before the C++ compiler says it
    less well.  (GHDL's own message names a missing one.)"""
    text = header.read_text(errors="replace")
    have = set(re.findall(r"\b(?:VL_IN|VL_OUT)\w*\(&(\w+),", text))
    missing = [p for p in port_names(bars) if p not in have]
    if missing:
        raise BuildError(f"the top module lacks port{'s' if len(missing) > 1 else ''} "
                         f"{', '.join(missing[:8])}{' ...' if len(missing) > 8 else ''}"
                         f" of the RTL device interface (docs/hdl.md 2)")


# ---- Verilator ----

def verilated_runtime_key(wave: str) -> str:
    return hashlib.sha256(f"{tool_version('verilog')}\0{wave}".encode()).hexdigest()[:16]


def build_verilog(work: Path, top: str, bars, wave: str, srcs, cwd: Path):
    obj, c = work / "obj", work / "c"
    obj.mkdir()
    lib = compile_c(c, C_RUNTIME)
    run(["ar", "rcs", str(c / "libpfrtl.a"), *map(str, lib)])
    (obj / "pf_design.h").write_text(
        f'/* Generated by hdl/build.py: the design the glue drives. */\n'
        f'#include "Vpf.h"\n#define PF_TOP Vpf\n#define PF_TOP_NAME "{top}"\n'
        f'#define PF_BARS(X) {" ".join(f"X({b})" for b in sorted(bars))}\n')
    incdirs = sorted({f"-I{(cwd / s).parent}" for s in srcs}) + [f"-I{VERILOG_INC}"]
    cmd = ["verilator", "--cc", "--exe", "--top-module", top, "--prefix", "Vpf",
           "--Mdir", str(obj), "-O3", "--assert", "-Wno-fatal",
           "--trace-fst" if wave == "fst" else "--trace",
           "-CFLAGS", f"-I{RUNTIME} -I{obj} -DPF_WAVE_FST={int(wave == 'fst')}",
           "-LDFLAGS", str(c / "libpfrtl.a"),
           *incdirs, *map(str, srcs), str(RUNTIME / "verilator_main.cpp")]
    run(cmd, cwd=cwd)
    missing_ports(obj / "Vpf.h", bars)
    # Verilator's own runtime (verilated.cpp ...) is the same for every
    # design: compiled once, then copied in (newer than Vpf.mk: not remade).
    rt_cache = cache_root() / f"verilated-{verilated_runtime_key(wave)}"
    names = ["verilated.o", "verilated_threads.o",
             "verilated_fst_c.o" if wave == "fst" else "verilated_vcd_c.o"]
    if all((rt_cache / n).is_file() for n in names):
        now = time.time()
        for n in names:
            shutil.copy(rt_cache / n, obj / n)
            os.utime(obj / n, (now, now))
    run(["make", "-s", "-C", str(obj), "-f", "Vpf.mk", f"-j{os.cpu_count() or 1}"],
        quiet=True)
    if not rt_cache.is_dir() and all((obj / n).is_file() for n in names):
        tmp = Path(tempfile.mkdtemp(dir=cache_root(), prefix=".verilated-"))
        for n in names:
            shutil.copy(obj / n, tmp / n)
        try:
            tmp.rename(rt_cache)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)      # another build won
    shutil.copy(obj / "Vpf", work / "sim")
    (work / "run").write_text('#!/bin/sh\n# Generated by hdl/build.py (Verilator).\n'
                              'exec "$(dirname "$0")/sim" "$@"\n')
    shutil.rmtree(obj)
    shutil.rmtree(c)


# ---- GHDL (LLVM back end) ----

def vhdl_pack(prefix: str, table, var: str, pos: int, out: list, put: bool) -> int:
    """Slice assignments, most significant bit first (pf_rtl_ghdl.c)."""
    for name, width in table:
        sig = prefix + name
        part = f"{var}({pos} to {pos + width - 1})" if width else f"{var}({pos})"
        out.append(f"      {part} := {sig};" if put else f"      {sig} <= {part};")
        pos += max(width, 1)
    return pos


def vhdl_testbench(top: str, bars) -> str:
    sigs, ports, outs, ins = [], ["clk => clk", "rst_n => rst_n"], [], ["      rst_n <= i(0);"]
    o, i = 0, 1
    groups = [(f"s_bar{b}_", VHDL_BAR_OUTS, VHDL_BAR_INS) for b in sorted(bars)]
    for prefix, touts, tins in groups:
        o = vhdl_pack(prefix, touts, "o", o, outs, True)
        i = vhdl_pack(prefix, tins, "i", i, ins, False)
    o = vhdl_pack("", VHDL_OUTS, "o", o, outs, True)
    i = vhdl_pack("", VHDL_INS, "i", i, ins, False)
    for prefix, touts, tins in groups + [("", VHDL_OUTS, VHDL_INS)]:
        for name, width in touts + tins:
            sig = prefix + name
            kind = f"std_logic_vector({width - 1} downto 0) := (others => '0')" \
                if width else "std_logic := '0'"
            sigs.append(f"  signal {sig} : {kind};")
            ports.append(f"{sig} => {sig}")
    assert o <= 512 and i <= 768
    mask = sum(1 << b for b in bars)
    return f"""-- Generated by hdl/build.py: the RTL bridge's clock, reset and bus
-- around {top} (docs/hdl.md).  Cycle N's rising edge is at N * 10 ns.
library ieee;
use ieee.std_logic_1164.all;
use work.pf_rtl.all;

entity pf_tb is
end entity;

architecture sim of pf_tb is
  signal clk : std_logic := '0';
  signal rst_n : std_logic := '0';
{chr(10).join(sigs)}
begin
  dut : entity work.{top} port map (
    {(","+chr(10)+"    ").join(ports)});

  bridge : process
    variable o : pf_out_bits := (others => '0');
    variable i : pf_in_bits := (others => '0');
    variable ctl, ok : integer;
  begin
    pf_rtl_ghdl_init({mask}, ok);
    assert ok /= 0 report "not started by the RTL bridge" severity failure;
    wait for 5 ns;
    loop
{chr(10).join(outs)}
      pf_rtl_ghdl_cycle(o, i, ctl);
      exit when ctl mod 2 = 1;
      wait for 5 ns;
      clk <= '1';
      wait for 0 ns;            -- the edge: the design samples old inputs
      if ctl / 2 mod 2 = 1 then
{chr(10).join("  " + l for l in ins)}
      end if;
      wait for 5 ns;
      clk <= '0';
      wait for 0 ns;
    end loop;
    std.env.finish;
    wait;
  end process;
end architecture;
"""


GHDL_RUN = """#!/bin/sh
# Generated by hdl/build.py (GHDL): --wave FILE as GHDL takes it.
sim="$(dirname "$0")/sim"
case "$1:$2" in
--wave:*.vcd) exec "$sim" --ieee-asserts=disable-at-0 --vcd="$2" ;;
--wave:*.ghw) exec "$sim" --ieee-asserts=disable-at-0 --wave="$2" ;;
--wave:*.fst) exec "$sim" --ieee-asserts=disable-at-0 --fst="$2" ;;
--wave:*) echo "$0: waves are .vcd, .ghw or .fst files, not $2" >&2; exit 2 ;;
:) exec "$sim" --ieee-asserts=disable-at-0 ;;
*) echo "usage: $0 [--wave FILE.vcd|.ghw|.fst]" >&2; exit 2 ;;
esac
"""


def build_vhdl(work: Path, top: str, bars, wave: str, srcs, cwd: Path):
    ver = tool_version("vhdl")
    m = re.search(r"GHDL (\S+)", ver)
    objs = compile_c(work / "c", C_RUNTIME + [RUNTIME / "pf_rtl_ghdl.c"],
                     [f'-DPF_TOP_NAME="{top}"',
                      f'-DPF_GHDL_VERSION="{m.group(1) if m else "?"} (LLVM)"'])
    lib = work / "lib"
    lib.mkdir()
    tb = work / "pf_tb.vhd"
    tb.write_text(vhdl_testbench(top, bars))
    common = ["--std=08", f"--workdir={lib}"]
    run(["ghdl-llvm", "-a", *common, str(RUNTIME / "pf_rtl_pkg.vhd"),
         *map(str, srcs)], cwd=cwd)
    run(["ghdl-llvm", "-a", *common, str(tb)])
    run(["ghdl-llvm", "-e", *common, "-o", str(work / "sim"),
         *[f"-Wl,{o}" for o in objs], "pf_tb"])
    (work / "run").write_text(GHDL_RUN)
    shutil.rmtree(lib)
    shutil.rmtree(work / "c")
    for o in work.glob("e~*.o"):
        o.unlink()


# ---- Driver ----

def build(lang: str, top: str | None, bars, wave: str, srcs, cwd=None) -> Path:
    cwd = Path(cwd or ".").resolve()
    srcs = [Path(s) for s in srcs]
    for s in srcs:
        if not (cwd / s).is_file():
            raise BuildError(f"no such source file: {s}")
    if not srcs:
        raise BuildError("no source files")
    top = top or srcs[0].stem
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]*", top):
        raise BuildError(f"top={top!r} is not a module or entity name")
    if wave not in ("vcd", "fst"):
        raise BuildError(f"--wave {wave}: vcd or fst")
    if lang == "vhdl":
        wave = "vcd"            # GHDL picks its writer at run time
    absrcs = [(cwd / s).resolve() for s in srcs]
    key = input_hash(lang, top, bars, wave, absrcs)
    root = cache_root()
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"{lang}-{top}-{key}"
    if (final / "run").is_file():
        return final
    with open(root / f".lock-{key}", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (final / "run").is_file():
            return final
        print(f"hdl/build.py: building {top} ({lang}) into {final}", file=sys.stderr)
        work = Path(tempfile.mkdtemp(dir=root, prefix=f".build-{key}-"))
        try:
            (build_verilog if lang == "verilog" else build_vhdl)(
                work, top, bars, wave, srcs, cwd)
            (work / "run").chmod(0o755)
            work.rename(final)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    prune(root, f"{lang}-{top}-")
    return final


def prune(root: Path, prefix: str, keep: int = 4):
    """Older builds of the same design go; the newest few stay (other
    work trees may be using them)."""
    builds = sorted((d for d in root.glob(prefix + "*") if d.is_dir()),
                    key=lambda d: d.stat().st_mtime, reverse=True)
    for d in builds[keep:]:
        shutil.rmtree(d, ignore_errors=True)
        (root / f".lock-{d.name.rsplit('-', 1)[-1]}").unlink(missing_ok=True)


def parse_bars(text: str):
    try:
        bars = {int(b) for b in text.split(",") if b}
    except ValueError:
        raise BuildError(f"--bars {text}: BAR numbers 0-5, comma-separated")
    if not bars or not bars <= set(range(6)):
        raise BuildError(f"--bars {text}: BAR numbers 0-5, comma-separated")
    return bars


def device(spec: str) -> str:
    """hdl-LANG,src=...,top=...,OPT=V... -> rtl,sim=DIR,OPT=V..."""
    name, _, rest = spec.partition(",")
    langs = {"hdl-verilog": "verilog", "hdl-vhdl": "vhdl"}
    if name not in langs:
        raise BuildError(f"{name}: hdl-verilog or hdl-vhdl")
    lang = langs[name]
    srcs, top, passed, sizes = [], None, [], {}
    for opt in filter(None, rest.split(",")):
        k, eq, v = opt.partition("=")
        if not eq:
            raise BuildError(f"{name}: option '{opt}' is not NAME=VALUE")
        if k == "src":
            srcs += [s for s in v.split(":") if s]
        elif k == "top":
            top = v
        else:
            passed.append(opt)
            if re.fullmatch(r"bar[0-5]", k):
                sizes[int(k[3])] = v
    if not srcs:
        srcs = [str(EXAMPLES[lang])]
    bars = {b for b in range(6)
            if sizes.get(b, "4K" if b == 0 else "0").lower() not in ("0", "0x0")}
    if not bars:
        raise BuildError(f"{name}: the design needs at least one BAR (barN=SIZE)")
    wave = "vcd"
    for opt in passed:
        if opt.startswith("wave=") and opt.endswith(".fst"):
            wave = "fst"
    sim = build(lang, top, bars, wave, srcs, os.environ.get("PCIEFW_CALLER_DIR"))
    return ",".join(["rtl", f"sim={sim}"] + passed)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("lang", nargs="?", choices=["verilog", "vhdl"])
    ap.add_argument("srcs", nargs="*", metavar="SRC")
    ap.add_argument("--top", help="top module or entity (default: the first "
                    "source's file name)")
    ap.add_argument("--bars", default="0", help="BARs with an AXI4-Lite port "
                    "(default 0)")
    ap.add_argument("--wave", default="vcd", help="Verilator's wave writer: vcd "
                    "(default) or fst")
    ap.add_argument("--device", metavar="SPEC", help="hdl-verilog|hdl-vhdl[,src=..."
                    "][,top=...][,OPT=V...]: build, print the rtl --device argument")
    args = ap.parse_args()
    try:
        if args.device:
            if args.lang or args.srcs:
                ap.error("--device takes no other arguments")
            print(device(args.device))
        else:
            if not args.lang:
                ap.error("verilog or vhdl, and the sources")
            print(build(args.lang, args.top, parse_bars(args.bars), args.wave,
                        args.srcs))
    except BuildError as e:
        print(f"hdl/build.py: {e}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
