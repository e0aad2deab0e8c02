"""The Linux PCI endpoint framework for the test guests (issue 16).

driver/epf/build-epf.sh builds, once and cached outside the repository,
the framework as one module (pci_endpoint.ko), the kernel's pci-epf-test.ko
and pci_endpoint_test.ko, and a static pcitest; epf_env() returns its
EPF_* variables.  guest_files() maps those (and the guest kernel's own
configfs.ko, which the framework needs) to where the guest scripts find
them, for guestlib.make_initramfs().

The pair (docs/epc.md 9): start_endpoint() boots the endpoint guest, which
creates pci-epf-test's function through configfs and starts the link;
start_pair() then boots the host guest beside it.  Both
tests/integration/test_epf_pair.py and scripts/epf_pair.py
(./dev epf-pair) use them.
"""

from __future__ import annotations

import functools
import os
import re
import shlex
import subprocess
import time
from pathlib import Path

import guestlib

BUILD_EPF = guestlib.REPO / "driver" / "epf" / "build-epf.sh"
# Where the guest scripts find the files (see guest_files()).
GUEST_DIR = "/lib/modules/epf"


@functools.lru_cache(maxsize=1)
def _epf_env_items() -> tuple[tuple[str, str], ...]:
    out = subprocess.run([str(BUILD_EPF), "--print-env"], check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    items = []
    for line in out.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.startswith("EPF_"):
            items.append((key, " ".join(shlex.split(value)) if value else ""))
    return tuple(items)


def epf_env() -> dict[str, str]:
    """Build/refresh the cached endpoint modules; return the EPF_* paths."""
    return dict(_epf_env_items())


def configfs_module() -> Path:
    """The guest kernel's configfs.ko (the framework's configfs interface
    needs it; the base image does not carry it)."""
    env = guestlib.build_guest_env()
    path = (Path(env["GUEST_KERNEL_TREE"]) / "lib" / "modules" /
            env["GUEST_KVER"] / "kernel" / "fs" / "configfs" / "configfs.ko")
    if not path.is_file():
        raise FileNotFoundError(path)
    return path


@functools.lru_cache(maxsize=1)
def epc_driver() -> str:
    """Build driver/pciefw_epc.ko (driver/build.sh --epc) and return it."""
    r = subprocess.run([str(guestlib.REPO / "driver" / "build.sh"), "--epc"],
                       check=True, stdout=subprocess.PIPE, text=True)
    return r.stdout.strip().splitlines()[-1]


def guest_files() -> dict[str, str]:
    """Host path -> guest path of everything the endpoint tests need:
    GUEST_DIR/{configfs,pci_endpoint,pci-epf-test,pci_endpoint_test,
    pciefw_epc,ntb,ntb_transport,ntb_netdev,ntb_hw_epf,pci-epf-vntb}.ko,
    the test helper GUEST_DIR/pciefw_test_epc_irq.ko (built beside
    pciefw_epc.ko), /usr/bin/pcitest and /usr/bin/pcitest.sh."""
    env = epf_env()
    helper = os.path.join(os.path.dirname(epc_driver()), "pciefw_test_epc_irq.ko")
    return {
        helper: f"{GUEST_DIR}/pciefw_test_epc_irq.ko",
        env["EPF_NTB_KO"]: f"{GUEST_DIR}/ntb.ko",
        env["EPF_NTB_TRANSPORT_KO"]: f"{GUEST_DIR}/ntb_transport.ko",
        env["EPF_NTB_NETDEV_KO"]: f"{GUEST_DIR}/ntb_netdev.ko",
        env["EPF_NTB_HW_EPF_KO"]: f"{GUEST_DIR}/ntb_hw_epf.ko",
        env["EPF_VNTB_KO"]: f"{GUEST_DIR}/pci-epf-vntb.ko",
        epc_driver(): f"{GUEST_DIR}/pciefw_epc.ko",
        str(configfs_module()): f"{GUEST_DIR}/configfs.ko",
        env["EPF_FRAMEWORK_KO"]: f"{GUEST_DIR}/pci_endpoint.ko",
        env["EPF_TEST_KO"]: f"{GUEST_DIR}/pci-epf-test.ko",
        env["EPF_HOST_KO"]: f"{GUEST_DIR}/pci_endpoint_test.ko",
        env["EPF_PCITEST"]: "/usr/bin/pcitest",
        env["EPF_PCITEST_SH"]: "/usr/bin/pcitest.sh",
    }


# --------------------------------------------------------------------------
# The pair

EP = "/sys/kernel/config/pci_ep"
PROBLEMS = r"PCIEFW-DMESG-PROBLEMS: $(dmesg | grep -cE 'WARNING:|BUG:|Oops')"

# Load everything, create func1 as the howto does, bind it, start the link.
ENDPOINT_SETUP = r"""#!/bin/sh
d=/lib/modules/epf
insmod $d/configfs.ko || exit 10
mount -t configfs none /sys/kernel/config || exit 11
insmod $d/pci_endpoint.ko || exit 12
insmod $d/pciefw_epc.ko || exit 13
insmod $d/pci-epf-test.ko || exit 14
epc=$(ls @EP@/controllers)
[ -n "$epc" ] || exit 15
f=@EP@/functions/pci_epf_test/func1
mkdir $f || exit 16
echo 0x104c > $f/vendorid
echo 0xb500 > $f/deviceid
echo @MSI@ > $f/msi_interrupts
echo @MSIX@ > $f/msix_interrupts
ln -s $f @EP@/controllers/$epc/ || exit 17
echo 1 > @EP@/controllers/$epc/start || exit 18
echo "PCIEFW-EPC-STARTED $epc"
"""

# Then each line on the console ("stop", "start", anything else to end) is
# a step.
ENDPOINT_SCRIPT = ENDPOINT_SETUP + r"""
while read step; do
	case "$step" in
	stop) echo 0 > @EP@/controllers/$epc/start; echo "PCIEFW-EPC-STOPPED" ;;
	start) echo 1 > @EP@/controllers/$epc/start; echo "PCIEFW-EPC-STARTED" ;;
	*) break ;;
	esac
done
@PROBLEMS@
dmesg | grep pciefw_epc
"""

# The kernel's own tools/pci/pcitest.sh, unchanged, each of its lines on
# the console behind a marker and the guest's uptime when it came (each
# pcitest prints its line as it exits: the difference to the line before
# is what that test took).
PCITEST_SH_SCRIPT = r"""#!/bin/sh
insmod /lib/modules/epf/pci_endpoint_test.ko || exit 10
lspci -nn -s 01:00.0
[ -c /dev/pci-endpoint-test.0 ] || exit 11
t0=$(date +%s)
pcitest.sh 2>&1 | while IFS= read -r line; do
	read up rest < /proc/uptime
	echo "PCIEFW-SH: $up $line"
done
echo "PCIEFW-PCITEST-SH-TIME: $(( $(date +%s) - t0 )) s"
@PROBLEMS@
"""


# pci_endpoint_test's BAR test reads a 1 MiB BAR5 4 bytes at a time in one
# ioctl, each read a round trip between the two QEMUs (about 100 us under
# TCG on a loaded machine): the CPU stays in the kernel for 25 s or more.
# On the endpoint side pci-epf-test copies 1 MB through the outbound window
# with memcpy_fromio() in one work item, each read a round trip the other
# way: 30 s and more with the machine loaded.  Those are the tests' loops,
# not hangs, so both guests' soft-lockup and RCU-stall detectors get 120 s
# and 150 s instead of 20 s and 21 s (docs/epc.md 8); every other warning
# still fails the test.
HOST_APPEND = "watchdog_thresh=60 rcupdate.rcu_cpu_stall_timeout=150"
ENDPOINT_APPEND = HOST_APPEND

# The host QEMU for pcitest.sh.  x86 grants a device more than one MSI
# vector only through interrupt remapping: intel-iommu,intremap=on (under
# TCG nothing else; Linux turns remapping on by itself, DMA remapping
# stays off without intel_iommu=on).  Each x86 CPU has about 200 free
# vectors and pci_endpoint_test requests every MSI-X vector it is granted:
# 2048 need 11 vCPUs here (10 fail the request), 12 leave a CPU of margin
# and cost about 4 s of boot (docs/epc.md 8).
HOST_PCITEST_ARGS = ["-smp", "12", "-device", "intel-iommu,intremap=on"]

# The endpoint QEMU's read-ahead for pcitest.sh (docs/epc.md 5.1):
# pci-epf-test reads host buffers through the window with memcpy_fromio(),
# 4 bytes per round trip without it; it only ever maps host RAM there.
# PCIEFW_EPC_READ_AHEAD=0 runs the suite's pcitest.sh without (the
# "read-ahead 0" column of docs/epc.md 8).
EPC_READ_AHEAD = int(os.environ.get("PCIEFW_EPC_READ_AHEAD", "4096"))


# A guest that runs each line typed on its console as a shell command
# (guest_run()): its output comes back behind "| ", then its status;
# "end" ends the loop.
SHELL_LOOP = r"""
while IFS= read -r cmd; do
	[ "$cmd" = end ] && break
	out=$(sh -c "$cmd" 2>&1); rc=$?
	[ -z "$out" ] || printf '%s\n' "$out" | sed 's/^/| /'
	echo "PCIEFW-RC $rc"
done
@PROBLEMS@
"""

ENDPOINT_SHELL_SCRIPT = ENDPOINT_SETUP + r"""
echo "PCIEFW-EPC $epc"
""" + SHELL_LOOP

HOST_SHELL_SCRIPT = r"""#!/bin/sh
insmod /lib/modules/epf/pci_endpoint_test.ko || exit 10
[ -c /dev/pci-endpoint-test.0 ] || exit 11
echo "PCIEFW-HOST-READY"
""" + SHELL_LOOP


# pci-epf-vntb (docs/epc.md 13): the endpoint guest's function, configured
# as Documentation/PCI/endpoint/pci-vntb-howto.rst says, on a controller
# whose BARs 0, 2 and 4 are 64-bit as NXP i.MX8's (the layout the host's
# ntb_hw_epf expects of 1957:0809); the NTB device on its virtual bus
# carries ntb_transport and an ntb_netdev interface, VNTB_EP_IP.  The host
# guest's ntb_hw_epf binds the function, and its own ntb_netdev interface
# is VNTB_HOST_IP.  Both print PCIEFW-NTB-UP when the interface is set.
VNTB_EP_IP, VNTB_HOST_IP = "10.10.0.1", "10.10.0.2"
VNTB_ENDPOINT_SETUP = r"""#!/bin/sh
d=/lib/modules/epf
insmod $d/configfs.ko || exit 10
mount -t configfs none /sys/kernel/config || exit 11
insmod $d/pci_endpoint.ko || exit 12
insmod $d/pciefw_epc.ko fixed_64bit_bars=0x15 || exit 13
insmod $d/ntb.ko && insmod $d/ntb_transport.ko && insmod $d/pci-epf-vntb.ko ||
	exit 14
epc=$(ls @EP@/controllers)
[ -n "$epc" ] || exit 15
f=@EP@/functions/pci_epf_vntb/func1
mkdir $f || exit 16
echo 0x1957 > $f/vendorid
echo 0x0809 > $f/deviceid
v=$f/pci_epf_vntb.0
echo 4 > $v/db_count
echo 128 > $v/spad_count
echo 1 > $v/num_mws
echo @MW@ > $v/mw1
echo 0x1957 > $v/vntb_vid
echo 0x080a > $v/vntb_pid
echo 0x10 > $v/vbus_number
ln -s $f @EP@/controllers/$epc/ || exit 17
echo 1 > @EP@/controllers/$epc/start || exit 18
echo "PCIEFW-EPC-STARTED $epc"
insmod $d/ntb_netdev.ko || exit 19
ip addr add @EP_IP@/24 dev eth0 && ip link set eth0 up || exit 20
echo "PCIEFW-NTB-UP"
"""

VNTB_HOST_SETUP = r"""#!/bin/sh
d=/lib/modules/epf
insmod $d/ntb.ko && insmod $d/ntb_hw_epf.ko && insmod $d/ntb_transport.ko &&
	insmod $d/ntb_netdev.ko || exit 10
ip addr add @HOST_IP@/24 dev eth0 && ip link set eth0 up || exit 11
echo "PCIEFW-NTB-UP"
"""


def vntb_script(text, mw=0x100000):
    """@text with the vNTB placeholders filled in (@MW@: the memory
    window's size), ready for script()."""
    return (text.replace("@MW@", hex(mw)).replace("@EP_IP@", VNTB_EP_IP)
            .replace("@HOST_IP@", VNTB_HOST_IP))


def guest_run(guest, cmd, timeout=120):
    """Run @cmd in a guest running SHELL_LOOP: (status, output)."""
    start = len(guest.console)
    guest.send(cmd + "\n")
    m = guest.wait_for(r"^PCIEFW-RC (\d+)\n", timeout=timeout)
    out = [line[2:] for line in guest.console[start:m.start()].splitlines()
           if line.startswith("| ")]
    return int(m.group(1)), "\n".join(out)


def wait_stderr(guest, pattern, timeout=120):
    """Wait until QEMU's own output (its -trace lines, its reports) shows
    @pattern; returns the match."""
    rx = re.compile(pattern, re.M)
    deadline = time.monotonic() + timeout
    while True:
        m = rx.search(guest.stderr)
        if m:
            return m
        if not guest.running():
            raise guestlib.GuestError(f"QEMU exited before /{pattern}/")
        if time.monotonic() > deadline:
            raise guestlib.GuestError(f"timeout ({timeout}s) waiting for "
                                      f"/{pattern}/ on QEMU's stderr")
        time.sleep(0.05)


def script(text, msi=32, msix=32):
    """@text with the pair's placeholders filled in: @EP@ (configfs),
    @MSI@/@MSIX@ (the function's vector counts), @PROBLEMS@ (a line that
    counts dmesg's warnings)."""
    return (text.replace("@EP@", EP).replace("@MSIX@", str(msix))
            .replace("@MSI@", str(msi))
            .replace("@PROBLEMS@", "echo \"" + PROBLEMS + "\""))


def start_endpoint(runner, workdir, name="ep", msi=32, msix=32,
                   sock="epc.sock", read_ahead=0, ep_script=ENDPOINT_SCRIPT,
                   device_extra="", qemu_extra=(), append=""):
    """Boot an endpoint guest running @ep_script and serving the function
    on runner.path(@sock) (or as @device_extra says: pciefw-epc properties
    after the path, e.g. a trace); wait until it has started the link.
    @runner: what tests' harness fixture is (qemu_binary, path(name),
    track(thing)); @qemu_extra: more QEMU arguments (-smp 2: a shell that
    runs beside a busy function); @append: more kernel parameters."""
    initrd = Path(workdir) / name / "initrd.cpio.gz"
    if not initrd.exists():
        guestlib.make_initramfs(Path(workdir) / name,
                                script(ep_script, msi, msix),
                                guest_files())
    where = f"path={runner.path(sock)}" if sock else ""
    ep = runner.track(guestlib.Guest(
        runner.qemu_binary, initrd,
        list(qemu_extra) +
        ["-device", f"pciefw-epc,{where}"
         + (f",read-ahead={read_ahead}" if read_ahead else "") + device_extra],
        append_extra=f"{ENDPOINT_APPEND} {append}".strip(),
        log_path=runner.path(name + ".log")))
    ep.start()
    ep.wait_for(r"^PCIEFW-EPC-STARTED", timeout=180)
    return ep


def host_qemu_args(runner, device_extra="", host_args=(), sock="epc.sock"):
    """The host QEMU's device arguments: pciefw behind a root port (on
    runner.path(@sock), or where @device_extra says)."""
    where = f",path={runner.path(sock)}" if sock else ""
    return list(host_args) + [
        "-device", "pcie-root-port,id=rp0",
        "-device", f"pciefw,bus=rp0{where}{device_extra}"]


def host_initramfs(workdir, host_script):
    return guestlib.make_initramfs(Path(workdir) / "host", script(host_script),
                                   guest_files())


def start_pair(runner, workdir, host_script, host_device_extra="",
               host_args=(), host_append="", msi=32, msix=32, read_ahead=0,
               ep_script=ENDPOINT_SCRIPT, ep_device_extra="", ep_qemu_extra=(),
               sock="epc.sock", ep_append=""):
    """Boot the endpoint guest, wait for its link, then boot the host
    running @host_script.  @sock None: both devices' addresses are in
    their @*_device_extra (TCP)."""
    host_initrd = host_initramfs(workdir, host_script)
    ep = start_endpoint(runner, workdir, msi=msi, msix=msix,
                        read_ahead=read_ahead, ep_script=ep_script,
                        device_extra=ep_device_extra,
                        qemu_extra=ep_qemu_extra, sock=sock, append=ep_append)
    host = runner.track(guestlib.Guest(
        runner.qemu_binary, host_initrd,
        host_qemu_args(runner, host_device_extra, host_args, sock=sock),
        append_extra=f"{HOST_APPEND} {host_append}".strip(),
        log_path=runner.path("host.log")))
    host.start()
    return ep, host


# What pcitest.sh prints, in order: it always tries MSI 1-32 and MSI-X
# 1-2048, so with the function at 32 MSI and 2048 MSI-X vectors every test
# line must say OKAY.
PCITEST_SIZES = (1, 1024, 1025, 1024000, 1024001)
PCITEST_SH_HEADERS = {"BAR tests", "Interrupt tests", "Read Tests",
                      "Write Tests", "Copy Tests"}


def pcitest_sh_expected():
    """The labels of pcitest.sh's test lines ("BAR0", "MSI-X7", ...)."""
    labels = [f"BAR{n}" for n in range(6)]
    labels += ["SET IRQ TYPE TO LEGACY", "LEGACY IRQ", "SET IRQ TYPE TO MSI"]
    labels += [f"MSI{n}" for n in range(1, 33)]
    labels += ["SET IRQ TYPE TO MSI-X"]
    labels += [f"MSI-X{n}" for n in range(1, 2049)]
    labels += ["SET IRQ TYPE TO MSI"]
    for kind in ("READ", "WRITE", "COPY"):
        labels += [f"{kind} ({n:7d} bytes)" for n in PCITEST_SIZES]
    return labels


def pcitest_sh_results(console):
    """[(label, result, seconds)] of pcitest.sh's test lines, seconds being
    what the test took; anything else it printed besides its headers comes
    back with result None."""
    out = []
    prev = None
    for up, line in re.findall(r"^PCIEFW-SH: ([0-9.]+) ?(.*)$", console,
                               re.M):
        took = float(up) - prev if prev is not None else 0.0
        prev = float(up)
        line = line.strip()
        if not line or line in PCITEST_SH_HEADERS:
            continue
        m = re.match(r"^(.*?):\t+(.*)$", line)
        out.append((m.group(1), m.group(2), took) if m else
                   (line, None, took))
    return out


def pcitest_sh_times(results):
    """Where pcitest.sh's time went: {what: seconds} for its groups and
    its slowest tests."""
    groups = {"BAR 0-5": r"BAR\d", "MSI 1-32": r"MSI\d+",
              "MSI-X 1-2048": r"MSI-X\d+", "reads": r"READ ",
              "writes": r"WRITE ", "copies": r"COPY "}
    out = {name: round(sum(t for label, _, t in results
                             if re.match(pat, label)), 1)
           for name, pat in groups.items()}
    for label, _, t in results:
        if label == "BAR5" or "1024000" in label or "1024001" in label:
            out[label] = round(t, 1)
    return out
