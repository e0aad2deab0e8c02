#!/usr/bin/python3
"""Guest-level benchmarks (bench/README.md): boots the real guest under the
QEMU we build and measures, in one run:

  nic      guest TCP throughput both ways and 1-byte request/response rate
           over the pciefw NIC, the endpoint's e1000 model (stock driver), QEMU's
           e1000 and virtio-net-pci, all on
           user-mode networking (slirp), same guest, same tool (tcp-blast)
  access   register read/write latency from inside the guest for QEMU's
           in-process pci-testdev (the floor), pciefw+testdev over UNIX and
           TCP, and vfio-user-pci with libvfio-user's gpio sample; with
           --idle S, the CPU each process uses in S quiet seconds
  hdl      testdev beside the same register map in RTL, Verilog under
           Verilator and VHDL under GHDL (docs/hdl.md): register latency,
           DMA copy throughput, simulated cycles per second

Prints one JSON object per measurement on stdout.  nic and access
records carry the CPU seconds QEMU and the endpoint (or vfio-user server)
used in the measured part (cpu_qemu_s, cpu_endpoint_s; bench/cpu.py).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "integration"))
import guestlib  # noqa: E402
import marked_guest  # noqa: E402
import procs  # noqa: E402
from nicnet import UDHCPC, driver_module  # noqa: E402

BUILD = Path(os.environ.get("PCIEFW_BUILD", REPO / "build"))
ENDPOINT = BUILD / "endpoint" / "pciefw-endpoint"
LOGDIR = None       # the run's temporary directory (main)


def Endpoint(device, listen, log_level="warn"):
    """A pciefw-endpoint for one benchmark (procs.Endpoint: stopped by PID,
    its warnings logged in the run's temporary directory)."""
    name = "ep-" + "".join(c if c.isalnum() else "-" for c in listen)
    return procs.Endpoint(str(ENDPOINT), str(LOGDIR), listen, device,
                          ["--log-level", log_level], name=name)


class Peer(threading.Thread):
    """Host end of tcp-blast: sink, source or echo, on an ephemeral port."""

    def __init__(self, mode, size=0):
        super().__init__(daemon=True)
        self.mode, self.size = mode, size
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.sock.settimeout(300)
        self.port = self.sock.getsockname()[1]
        self.start()

    def run(self):
        try:
            conn, _ = self.sock.accept()
        except OSError:
            return
        with conn:
            if self.mode == "sink":
                while conn.recv(1 << 18):
                    pass
            elif self.mode == "source":
                chunk = b"\xa5" * (1 << 18)
                sent = 0
                while sent < self.size:
                    sent += conn.send(chunk[:min(len(chunk), self.size - sent)])
            else:
                while True:
                    b = conn.recv(1)
                    if not b:
                        break
                    conn.sendall(b)
        self.sock.close()


def results(console, **tags):
    for line in console.splitlines():
        if line.startswith("RESULT "):
            rec = dict(kv.split("=", 1) for kv in line.split()[1:])
            rec.update(tags)
            yield rec


def nic_variants(tmp):
    """(name, qemu args, guest commands that bring up eth0, its endpoint
    or None), endpoints."""
    # The guest's peers listen on the host's 127.0.0.1, as with QEMU's user net.
    eps = [Endpoint("nic,host-loopback=on", f"unix:{tmp}/nic.sock"),
           Endpoint("e1000,host-loopback=on", f"unix:{tmp}/e1000.sock")]
    # As users get it by default: rings, and guest RAM the endpoint maps.
    shm = ["-M", "q35,memory-backend=mem",
           "-object", "memory-backend-memfd,id=mem,size=512M,share=on"]
    variants = [
        # Every message on the socket, DMA by messages: the 1.0 path.
        ("pciefw", ["-device", "pcie-root-port,id=rp0,slot=1",
                    "-device", f"pciefw,bus=rp0,path={tmp}/nic.sock,"
                               "shm-rings=off,guest-memory=off"],
         "insmod /lib/modules/extra/pciefw_nic.ko", eps[0]),
        ("pciefw-shm", shm + ["-device", "pcie-root-port,id=rp0,slot=1",
                              "-device", f"pciefw,bus=rp0,path={tmp}/nic.sock"],
         "insmod /lib/modules/extra/pciefw_nic.ko", eps[0]),
        # The endpoint's e1000 model under Debian's own e1000 driver.
        ("pciefw-e1000", shm + ["-device", "pcie-root-port,id=rp0,slot=1",
                                "-device", f"pciefw,bus=rp0,path={tmp}/e1000.sock"],
         "loadmod e1000", eps[1]),
        ("e1000", ["-netdev", "user,id=n0",
                   "-device", "e1000,netdev=n0,romfile="], "loadmod e1000", None),
        ("virtio-net-pci", ["-netdev", "user,id=n0",
                            "-device", "virtio-net-pci,netdev=n0,romfile="],
         "loadmod virtio_pci virtio_net", None),
    ]
    return variants, eps


def bench_nic(qemu, tmp, mib, rr_count):
    variants, eps = nic_variants(tmp)
    files = {str(BUILD / "bench" / "tcp-blast"): "/bin/tcp-blast",
             driver_module(): "/lib/modules/extra/pciefw_nic.ko"}
    try:
        for name, args, load, ep in variants:
            sink, source, echo = Peer("sink"), Peer("source", mib << 20), Peer("echo")
            script = f"""#!/bin/sh
set -e
{load} || exit 1
ip link set eth0 up
udhcpc -i eth0 -n -q -t 10 -T 1 -s {UDHCPC} >/dev/null || exit 2
export BENCH_MARKS=1
tcp-blast send 10.0.2.2 {sink.port} {mib}
tcp-blast recv 10.0.2.2 {source.port}
tcp-blast rr 10.0.2.2 {echo.port} {rr_count}
"""
            initrd = guestlib.make_initramfs(Path(tmp) / name, script, files)
            guest = marked_guest.run(qemu, initrd, args,
                                     {"endpoint": ep.pid} if ep else {},
                                     timeout=600, memory=512)
            if guest.result.status != 0:
                print(guest.result.describe(), file=sys.stderr)
                raise SystemExit(f"guest_bench: {name} run failed")
            recs = list(results(guest.result.console, bench="nic", nic=name))
            marked_guest.attach(recs, guest.blocks, f"nic {name}")
            for rec in recs:
                print(json.dumps(rec), flush=True)
    finally:
        for ep in eps:
            ep.stop()


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["nic", "access", "hdl", "all"])
    ap.add_argument("--qemu", default=os.environ.get("PCIEFW_QEMU"), required=False)
    ap.add_argument("--mib", type=int, default=64, help="MiB per TCP transfer")
    ap.add_argument("--rr", type=int, default=2000, help="request/responses")
    ap.add_argument("--reads", type=int, default=20000, help="register accesses")
    ap.add_argument("--dma-bytes", type=int, default=1 << 20, help="bytes per DMA copy")
    ap.add_argument("--copies", type=int, default=20, help="DMA copies (hdl)")
    ap.add_argument("--idle", type=float, default=0.0, metavar="S",
                    help="access: measure each quiet session's CPU for S seconds")
    args = ap.parse_args()
    if not args.qemu:
        ap.error("--qemu or PCIEFW_QEMU is required (./dev bench sets it)")
    if args.idle < 0:
        ap.error("--idle: seconds, at least 0")
    global LOGDIR
    tmp = Path(subprocess.check_output(["mktemp", "-d", "/tmp/pfb-XXXXXX"],
                                       text=True).strip())
    LOGDIR = tmp
    try:
        if args.what in ("nic", "all"):
            bench_nic(args.qemu, tmp, args.mib, args.rr)
        if args.what in ("access", "all"):
            sys.path.insert(0, str(REPO / "bench"))
            import access_bench
            access_bench.run(args.qemu, tmp, args.reads, results, Endpoint, BUILD,
                             idle_seconds=args.idle)
        if args.what in ("hdl", "all"):
            sys.path.insert(0, str(REPO / "bench"))
            import hdl_bench
            hdl_bench.run(args.qemu, tmp, args.reads, args.dma_bytes, args.copies,
                          results, Endpoint, BUILD)
    finally:
        subprocess.run(["rm", "-rf", str(tmp)])


if __name__ == "__main__":
    main()
