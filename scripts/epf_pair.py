#!/usr/bin/python3
"""./dev epf-pair: the Linux PCI endpoint framework over pciefw (issue 16,
docs/epc.md 9).

Boots the endpoint guest (pciefw-epc; the framework, pciefw_epc and
pci-epf-test loaded, func1 created through configfs and started), then the
host guest (pciefw on the endpoint guest's socket, pci_endpoint_test
loaded), with the boot pieces the tests use (tests/integration/epflib.py).
By default the host guest runs the kernel's tools/pci/pcitest.sh as is,
its output is printed with the time it took, and the exit status is 0 if
every line is OKAY.  --shell leaves you at the host guest's shell instead.
Both consoles (and with --trace the bridge's trace) stay in build/epf-pair/.
"""

import os
import re
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..",
                                "tests", "integration"))
import cli  # noqa: E402  (scripts/cli.py)
import epflib  # noqa: E402
import guestlib  # noqa: E402

SHELL_SCRIPT = r"""#!/bin/sh
insmod /lib/modules/epf/pci_endpoint_test.ko || exit 10
lspci -nn -s 01:00.0
echo
echo "### host guest: pci_endpoint_test is loaded; try pcitest -h, pcitest -b 0,"
echo "### pcitest.sh (all of it: minutes); exit or ^D powers off"
setsid cttyhack sh -l
exit 0
"""


class Runner:
    """What epflib's pair functions need: the QEMU binary, where files go
    (sockets in a short private directory, logs in @out) and a list of
    what to stop at the end."""

    def __init__(self, qemu_binary, out):
        self.qemu_binary = qemu_binary
        self.out = out
        self.sockdir = tempfile.mkdtemp(prefix="pciefw-pair-")
        self.things = []

    def path(self, name):
        return os.path.join(self.sockdir if name.endswith(".sock")
                            else self.out, name)

    def track(self, thing):
        self.things.append(thing)
        return thing

    def stop(self):
        for thing in reversed(self.things):
            thing.stop()
        shutil.rmtree(self.sockdir, ignore_errors=True)


def say(msg):
    print(f"\033[1m==> {msg}\033[0m", file=sys.stderr, flush=True)


def end_endpoint(ep):
    """Let the endpoint guest stop the link and power off."""
    if ep.running():
        ep.send("end\n")
        res = ep.wait(timeout=120)
        if "PCIEFW-DMESG-PROBLEMS: 0\n" not in res.console:
            say("the endpoint guest's dmesg has warnings: see endpoint.log")
            return False
    return True


def run_pcitest(runner, work, args):
    device_extra = f",trace={runner.path('host.pcapng')}" if args.trace else ""
    say("booting the endpoint guest, then the host guest (about a minute)")
    ep, host = epflib.start_pair(runner, work, epflib.PCITEST_SH_SCRIPT,
                                 device_extra, epflib.HOST_PCITEST_ARGS,
                                 msix=args.msix, read_ahead=args.read_ahead)
    host.wait_for(r"PCIEFW-GUEST: init", timeout=600)
    say("host guest up: pcitest.sh runs (a few minutes; build/epf-pair/host.log)")
    t0 = time.monotonic()
    res = host.wait(timeout=3600)
    print("".join(m + "\n" for m in re.findall(
        r"^PCIEFW-SH: [0-9.]+ ?(.*)$", res.console, re.M)))
    took = re.search(r"^PCIEFW-PCITEST-SH-TIME: (\d+) s$", res.console, re.M)
    results = epflib.pcitest_sh_results(res.console)
    bad = [label for label, result, _ in results if result != "OKAY"]
    ok = (res.status == 0 and not bad and
          [label for label, _, _ in results] == epflib.pcitest_sh_expected() and
          "PCIEFW-DMESG-PROBLEMS: 0\n" in res.console)
    ok = end_endpoint(ep) and ok
    say(f"pcitest.sh: {len(results)} lines, {len(results) - len(bad)} OKAY, "
        f"{took.group(1) if took else '?'} s "
        f"(host guest {time.monotonic() - t0:.0f} s)")
    say(f"where the time went, seconds: {epflib.pcitest_sh_times(results)}")
    if not ok:
        say("not every line OKAY, or a warning in dmesg: see "
            f"{runner.path('host.log')}")
    if args.trace:
        say(f"trace: build/tools/pciefw-trace --stats {runner.path('host.pcapng')}")
    return 0 if ok else 1


def run_shell(runner, work, args):
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        say("--shell needs a terminal")
        return 2
    device_extra = f",trace={runner.path('host.pcapng')}" if args.trace else ""
    initrd = epflib.host_initramfs(work, SHELL_SCRIPT)
    say("booting the endpoint guest")
    ep = epflib.start_endpoint(runner, work, msix=args.msix,
                               read_ahead=args.read_ahead)
    say("booting the host guest (^A x quits QEMU)")
    cmd = guestlib.qemu_command(
        runner.qemu_binary, initrd,
        epflib.host_qemu_args(runner, device_extra, epflib.HOST_PCITEST_ARGS),
        append_extra=epflib.HOST_APPEND)
    cmd[cmd.index("stdio")] = "mon:stdio"
    status = os.spawnv(os.P_WAIT, cmd[0], cmd)
    end_endpoint(ep)
    return status


def main():
    ap = cli.Parser(
        prog="./dev epf-pair",
        description="Boot the endpoint guest (pci-epf-test through "
        "pciefw-epc) and the host guest (pci_endpoint_test through pciefw) "
        "and run the kernel's pcitest.sh in the host guest (docs/epc.md 9).")
    ap.add_argument("--shell", action="store_true",
                    help="the host guest's shell instead of pcitest.sh")
    ap.add_argument("--msix", type=int, default=2048,
                    help="MSI-X vectors the function offers (default 2048)")
    ap.add_argument("--read-ahead", type=int, default=epflib.EPC_READ_AHEAD,
                    metavar="N", help="bytes an outbound read of the endpoint "
                    "guest fetches (docs/epc.md 5.1; default %(default)s, 0: "
                    "exactly what the CPU reads)")
    ap.add_argument("--trace", action="store_true",
                    help="record the bridge's trace in build/epf-pair/"
                    "host.pcapng (every message: 112 MB for pcitest.sh)")
    args = ap.parse_args()
    if not 1 <= args.msix <= 2048:
        ap.error("--msix takes 1..2048")
    if not 0 <= args.read_ahead <= 65536:
        ap.error("--read-ahead takes 0..65536")
    qemu = os.environ.get("PCIEFW_QEMU")
    if not qemu:
        ap.error("PCIEFW_QEMU is not set: run it as ./dev epf-pair")
    top = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
    out = os.path.join(top, "build", "epf-pair")
    os.makedirs(out, exist_ok=True)
    for name in ("ep.log", "host.log", "host.pcapng"):
        if os.path.exists(os.path.join(out, name)):
            os.unlink(os.path.join(out, name))
    runner = Runner(qemu, out)
    work = tempfile.mkdtemp(prefix="pciefw-pair-work-")
    try:
        if args.shell:
            return run_shell(runner, work, args)
        return run_pcitest(runner, work, args)
    finally:
        runner.stop()
        shutil.rmtree(work, ignore_errors=True)
        say(f"endpoint guest's console: {out}/ep.log" if args.shell else
            f"consoles: {out}/ep.log (endpoint guest), {out}/host.log")


if __name__ == "__main__":
    sys.exit(main())
