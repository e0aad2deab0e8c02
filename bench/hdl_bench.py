"""Devices in RTL beside testdev (bench/guest_bench.py hdl; docs/hdl.md).

One guest per implementation of the same register map: testdev (C), the
example device in Verilog (Verilator) and in VHDL (GHDL), each behind
-device pciefw as users get it (shared-memory rings, guest RAM shared).
In the guest, bench/guest/access_lat.c times reads and writes of SCRATCH
and bench/guest/dma_bench.c times DMA copies between two reserved areas.
For the RTL devices the endpoint's log gives the simulated cycles and the
wall time spent clocking them (rtl model: "N cycles simulated in S s").
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import guestlib

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))
import rtllib  # noqa: E402

AREA = 0x10000000           # memmap= reserves 4 MiB here
GUEST = r"""#!/bin/sh
set -e
dev=/sys/bus/pci/devices/0000:01:00.0
echo 1 > $dev/enable
setpci -s 0000:01:00.0 COMMAND=0006:0006
access-lat mmio $dev/resource0 4 {n} read
access-lat mmio $dev/resource0 4 {n} write
dma-bench $dev/resource0 {src} {dst} {bytes} {copies}
"""
IMPLS = ("testdev", "rtl-verilog", "rtl-vhdl")


def run(qemu, tmp, n, bytes_, copies, results, Endpoint, build):
    tmp = Path(tmp)
    mem = ["-M", "q35,memory-backend=mem",
           "-object", "memory-backend-memfd,id=mem,size=512M,share=on"]
    files = {str(build / "bench" / "access-lat"): "/bin/access-lat",
             str(build / "bench" / "dma-bench"): "/bin/dma-bench"}
    devices = {"testdev": "testdev", "rtl-verilog": rtllib.example("verilog"),
               "rtl-vhdl": rtllib.example("vhdl")}
    for name in IMPLS:
        ep = Endpoint(devices[name], f"unix:{tmp}/{name}.sock", log_level="info")
        try:
            script = GUEST.format(n=n, src=hex(AREA), dst=hex(AREA + (2 << 20)),
                                  bytes=bytes_, copies=copies)
            initrd = guestlib.make_initramfs(tmp / name, script, files)
            res = guestlib.boot_guest(qemu, initrd, mem + [
                "-device", "pcie-root-port,id=rp0,slot=1",
                "-device", f"pciefw,bus=rp0,path={ep.address[5:]}"],
                timeout=900, append_extra=f"memmap=4M${AREA:#x}")
            if res.status != 0:
                raise SystemExit(f"hdl bench {name} failed:\n{res.describe()}")
            recs = list(results(res.console, bench="hdl", target=name))
        finally:
            ep.stop()
        m = re.findall(r"(\d+) cycles simulated in ([\d.]+) s of clocking",
                       ep.output())
        if name != "testdev":
            if not m:
                raise SystemExit(f"hdl bench {name}: no cycle count in the "
                                 f"endpoint's log:\n{ep.output()[-2000:]}")
            cycles, secs = int(m[-1][0]), float(m[-1][1])
            recs.append({"bench": "hdl", "target": name, "kind": "sim",
                         "op": "clock", "cycles": str(cycles),
                         "cycles_per_s": f"{cycles / secs:.0f}" if secs else "0"})
        for rec in recs:
            print(json.dumps(rec), flush=True)
