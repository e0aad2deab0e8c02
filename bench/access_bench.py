"""In-guest register access latency (bench/guest_bench.py access).

The same static program (bench/guest/access_lat.c) times N reads and N
writes of one device register from inside the same guest kernel, for:

  in-process    QEMU's pci-testdev (BAR0 MMIO, BAR1 IO): the floor
  pciefw-shm    -device pciefw on a UNIX socket as users get it by default:
                shared-memory rings and guest RAM (docs/protocol.md 10, 11)
  pciefw-unix   the same with shm-rings=off: every message on the socket
  pciefw-tcp    the same over TCP loopback
  vfio-user     -device vfio-user-pci with libvfio-user's gpio-pci-idio-16
                sample (its only BAR, BAR2, is IO)

Every guest gets the same shared memfd RAM (vfio-user requires it).

Each record carries the CPU seconds QEMU and the endpoint (or the vfio-user
server) used in its timed loop (bench/marked_guest.py).  With an idle
interval, each guest then sits quiet for that long with the device enabled,
after its accesses (the session has carried traffic, and any polling that
started must have stopped), and a bench=idle record gives each process's
CPU over it as a percentage of one CPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import guestlib
import marked_guest
from procs import stop_process

REPO = Path(__file__).resolve().parents[1]

GUEST = r"""#!/bin/sh
set -e
for d in /sys/bus/pci/devices/*; do
	[ "$(cat $d/vendor):$(cat $d/device)" = "{vendor}:{device}" ] && dev=$d
done
[ -n "$dev" ] || {{ echo "device {vendor}:{device} not found"; exit 10; }}
echo 1 > $dev/enable
{warmup}export BENCH_MARKS=1
{commands}{idle}"""
IDLE = "echo CPU-MARK idle\nread -r _\n"
# Each program runs this many accesses once before it is measured, its
# output dropped: TCG translates its code, and the console exchange of its
# marks (bench/guest/bench_mark.h), then, not in the first measured loop.
WARMUP = 100


def unmeasured(commands):
    return "".join(f"BENCH_MARKS=warmup {line} >/dev/null\n"
                   for line in commands.splitlines())


def mmio(bar, off, n):
    return (f"access-lat mmio $dev/resource{bar} {off} {n} read\n"
            f"access-lat mmio $dev/resource{bar} {off} {n} write\n")


def io(bar, off, n):
    line = bar + 1
    port = f"$(( $(awk 'NR == {line} {{ print $1 }}' $dev/resource) + {off} ))"
    return (f"access-lat io {port} {n} read\n"
            f"access-lat io {port} {n} write\n")


def run(qemu, tmp, n, results, Endpoint, build, idle_seconds=0.0):
    tmp = Path(tmp)
    mem = ["-M", "q35,memory-backend=mem",
           "-object", "memory-backend-memfd,id=mem,size=512M,share=on"]
    files = {str(build / "bench" / "access-lat"): "/bin/access-lat"}
    targets = []        # (name, QEMU args, vendor, device, commands(n), endpoint)
    ep_unix = Endpoint("testdev", f"unix:{tmp}/td.sock")
    ep_tcp = Endpoint("testdev", "tcp:127.0.0.1:0")
    procs = [ep_unix, ep_tcp]
    try:
        targets.append(("in-process", ["-device", "pci-testdev"], "0x1b36", "0x0005",
                        lambda n: mmio(0, 8, n) + io(1, 8, n), None))
        for name, ep, opts in (("pciefw-shm", ep_unix, ""),
                               ("pciefw-unix", ep_unix, ",shm-rings=off"),
                               ("pciefw-tcp", ep_tcp, "")):
            if ep.address.startswith("unix:"):
                dev = f"pciefw,bus=rp0,path={ep.address[5:]}{opts}"
            else:
                host, port = ep.address[4:].rsplit(":", 1)
                dev = f"pciefw,bus=rp0,raddr={host},rport={port}"
            targets.append((name, ["-device", "pcie-root-port,id=rp0,slot=1",
                                   "-device", dev], "0x1234", "0xfe01",
                            lambda n: mmio(0, 4, n) + io(4, 4, n), ep))
        sample = subprocess.run([str(REPO / "bench" / "build-vfio-user.sh")],
                                stdout=subprocess.PIPE, text=True, check=True,
                                env={**os.environ, "PCIEFW_QEMU": qemu}).stdout.split()[-1]
        vsock = tmp / "vfio-user.sock"
        for name, args, vendor, device, cmds, ep in targets + [
                ("vfio-user", None, "0x494f", "0x0dc8", lambda n: io(2, 0, n), None)]:
            server = None
            if name == "vfio-user":
                server = subprocess.Popen([sample, str(vsock)], stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL)
                procs.append(server)
                for _ in range(100):
                    if vsock.exists():
                        break
                    time.sleep(0.05)
                args = ["-device", json.dumps({"driver": "vfio-user-pci", "socket":
                                               {"path": str(vsock), "type": "unix"}})]
            serving = server or ep      # the process beside QEMU, if any
            pids = {"endpoint": serving.pid} if serving else {}
            script = GUEST.format(vendor=vendor, device=device,
                                  warmup=unmeasured(cmds(WARMUP)), commands=cmds(n),
                                  idle=IDLE if idle_seconds else "")
            initrd = guestlib.make_initramfs(tmp / name, script, files)
            guest = marked_guest.run(qemu, initrd, mem + args, pids,
                                     idle_seconds=idle_seconds, timeout=600)
            if guest.result.status != 0:
                raise SystemExit(f"access bench {name} failed:\n{guest.result.describe()}")
            recs = list(results(guest.result.console, bench="access", target=name))
            marked_guest.attach(recs, guest.blocks, f"access {name}")
            for use in guest.idle:
                recs.append({"bench": "idle", "target": name, "seconds": f"{use.wall:.1f}",
                             **{f"cpu_{role}_pct": f"{pct:.3f}"
                                for role, pct in use.percent().items()}})
            for rec in recs:
                print(json.dumps(rec), flush=True)
            if server:
                stop_process(server)
    finally:
        for p in procs:
            if hasattr(p, "stop"):
                p.stop()
            else:
                stop_process(p)
