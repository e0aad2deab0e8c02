"""The Linux PCI endpoint framework end to end (issue 16, docs/epc.md).

The endpoint guest runs the framework, our pciefw_epc driver on QEMU's
pciefw-epc device and the kernel's pci-epf-test function, configured and
started through configfs as Documentation/PCI/endpoint/pci-test-howto.rst
says.  A second QEMU, the host, meets that function through its ordinary
pciefw device once the endpoint guest has started the link; its guest runs
the kernel's pci_endpoint_test driver and pcitest, both unchanged.
"""

import re
import signal
import subprocess

import epflib
import guestlib

EP = "/sys/kernel/config/pci_ep"
PROBLEMS = r"PCIEFW-DMESG-PROBLEMS: $(dmesg | grep -cE 'WARNING:|BUG:|Oops')"

# Load everything, create func1 as the howto does, bind it, start the link.
# Then each line on the console ("stop", "start", anything else to end) is
# a step.
ENDPOINT_SCRIPT = r"""#!/bin/sh
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

# pcitest's kinds of test, once each.
BASIC_SCRIPT = r"""#!/bin/sh
insmod /lib/modules/epf/pci_endpoint_test.ko || exit 10
lspci -nn -s 01:00.0
[ -c /dev/pci-endpoint-test.0 ] || exit 11
t0=$(date +%s)
echo "PCIEFW-PCITEST -b 5: $(pcitest -b 5 2>&1 | tr '\n' ' ')"
echo "PCIEFW-TIME -b 5: $(( $(date +%s) - t0 )) s"
for cmd in "-b 0" "-b 1" "-b 2" "-b 3" "-b 4" "-i 0" "-l" "-i 1" "-m 1" \
	"-i 2" "-x 1" "-x 2" "-i 1" "-r -s 1" "-r -s 1024" "-w -s 1" "-w -s 1024" \
	"-c -s 1" "-c -s 1025"; do
	echo "PCIEFW-PCITEST $cmd: $(pcitest $cmd 2>&1 | tr '\n' ' ')"
done
for cmd in "-r -s 1024000" "-w -s 1024000" "-c -s 1024001"; do
	t0=$(date +%s)
	echo "PCIEFW-PCITEST $cmd: $(pcitest $cmd 2>&1 | tr '\n' ' ')"
	echo "PCIEFW-TIME $cmd: $(( $(date +%s) - t0 )) s"
done
@PROBLEMS@
"""

# The function goes away and comes back under the host guest's feet.
LINK_SCRIPT = r"""#!/bin/sh
insmod /lib/modules/epf/pci_endpoint_test.ko || exit 10
dev=/sys/bus/pci/devices/0000:01:00.0
echo "PCIEFW-UP: $(pcitest -b 0 2>&1 | tr '\n' ' ')"
read go
echo "PCIEFW-DOWN: $(pcitest -b 0 2>&1 | tr '\n' ' ')"
echo "PCIEFW-DOWN-VENDOR: $(cat $dev/vendor)"
read go
i=0
until pcitest -b 0 2>&1 | grep -q '	OKAY'; do
	i=$((i + 1)); [ $i -le 60 ] || break; sleep 1
done
echo "PCIEFW-BACK: $(pcitest -b 0 2>&1 | tr '\n' ' ')"
echo "PCIEFW-BACK-READ: $(pcitest -r -s 1024 2>&1 | tr '\n' ' ')"
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


def script(text, msi=32, msix=32):
    return (text.replace("@EP@", EP).replace("@MSIX@", str(msix))
            .replace("@MSI@", str(msi)).replace("@PROBLEMS@", "echo \"" + PROBLEMS + "\""))


def start_endpoint(harness, tmp_path, name="ep"):
    """Boot an endpoint guest on the pair's socket; wait for its link."""
    initrd = tmp_path / "ep" / "initrd.cpio.gz"
    if not initrd.exists():
        guestlib.make_initramfs(tmp_path / "ep", script(ENDPOINT_SCRIPT),
                                epflib.guest_files())
    ep = harness.track(guestlib.Guest(
        harness.qemu_binary, initrd,
        ["-device", f"pciefw-epc,path={harness.path('epc.sock')}"],
        append_extra=ENDPOINT_APPEND, log_path=harness.path(name + ".log")))
    ep.start()
    ep.wait_for(r"^PCIEFW-EPC-STARTED", timeout=180)
    return ep


def start_pair(harness, tmp_path, host_script, host_device_extra=""):
    """Boot the endpoint guest, wait for its link, then boot the host."""
    sock = harness.path("epc.sock")
    host_initrd = guestlib.make_initramfs(tmp_path / "host", script(host_script),
                                          epflib.guest_files())
    ep = start_endpoint(harness, tmp_path)
    host = harness.track(guestlib.Guest(
        harness.qemu_binary, host_initrd,
        ["-device", "pcie-root-port,id=rp0",
         "-device", f"pciefw,bus=rp0,path={sock}{host_device_extra}"],
        append_extra=HOST_APPEND, log_path=harness.path("host.log")))
    host.start()
    return ep, host


def okay(line):
    return re.search(r"\tOKAY $", line) is not None


def test_pcitest_each_kind(harness, tmp_path):
    """BARs 0-5, INTx, MSI, MSI-X, reads, writes and copies from 1 byte to
    1 MB: every pcitest line OKAY, no warning in either guest."""
    ep, host = start_pair(harness, tmp_path, BASIC_SCRIPT)
    res = host.wait(timeout=900)
    ep.send("end\n")
    ep_res = ep.wait(timeout=120)
    assert res.status == 0, res.describe()
    assert "[104c:b500]" in res.console, res.describe()
    lines = re.findall(r"^PCIEFW-PCITEST (.*)$", res.console, re.M)
    bad = [line for line in lines if not okay(line)]
    assert len(lines) == 23 and not bad, "\n".join(lines)
    assert "PCIEFW-DMESG-PROBLEMS: 0\n" in res.console, res.describe()
    assert ep_res.status == 0, ep_res.describe()
    assert "PCIEFW-DMESG-PROBLEMS: 0\n" in ep_res.console, ep_res.describe()


def test_link_down_and_back(harness, tmp_path):
    """`echo 0 > start` in the endpoint guest: the host guest keeps running
    and reads all ones (pcitest fails, config space stays); `echo 1 >
    start`: the host's pciefw reconnects (reconnect=1) and the function
    works again, without reloading anything in either guest."""
    trace = harness.path("host.pcapng")
    ep, host = start_pair(harness, tmp_path, LINK_SCRIPT,
                          f",reconnect=1,trace={trace}")
    up = host.wait_for(r"^PCIEFW-UP: (.*)\n", timeout=300)
    assert okay(up.group(1)), host.console
    ep.send("stop\n")
    ep.wait_for(r"^PCIEFW-EPC-STOPPED", timeout=60)
    host.send("go\n")
    down = host.wait_for(r"^PCIEFW-DOWN: (.*)\n", timeout=120)
    assert "NOT OKAY" in down.group(1), host.console
    host.wait_for(r"^PCIEFW-DOWN-VENDOR: 0x104c\n", timeout=60)
    ep.send("start\n")
    ep.wait_for(r"^PCIEFW-EPC-STARTED", timeout=60)
    host.send("go\n")
    res = host.wait(timeout=300)
    ep.send("end\n")
    ep_res = ep.wait(timeout=120)
    assert res.status == 0, res.describe()
    back = re.search(r"^PCIEFW-BACK: (.*)$", res.console, re.M)
    read = re.search(r"^PCIEFW-BACK-READ: (.*)$", res.console, re.M)
    assert back and okay(back.group(1)), res.describe()
    assert read and okay(read.group(1)), res.describe()
    assert "PCIEFW-DMESG-PROBLEMS: 0\n" in res.console, res.describe()
    assert "PCIEFW-DMESG-PROBLEMS: 0\n" in ep_res.console, ep_res.describe()
    assert "link down" in ep_res.console, ep_res.describe()

    # The bridge's trace opens in pciefw-trace: two sessions (the link went
    # down once), the host's BAR accesses, the function's DMA into host
    # memory (pcitest -r) and its interrupts.
    host.stop()
    r = subprocess.run([str(guestlib.REPO / "build" / "tools" / "pciefw-trace"),
                        "--stats", trace], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    assert r.returncode == 0, r.stdout
    r = subprocess.run([str(guestlib.REPO / "build" / "tools" / "pciefw-trace"),
                        trace], stdout=subprocess.PIPE, text=True)
    assert r.returncode == 0
    text = r.stdout
    assert len(re.findall(r"---  session: ", text)) == 2, text[:4000]
    for d, kind in (("H>E", "mem_write"), ("H>E", "mem_read"),
                    ("E>H", "dma_write"), ("E>H", "msi")):
        assert re.search(rf"{d}\s+{kind} ", text), (kind, text[:4000])


def test_endpoint_killed_and_restarted(harness, tmp_path):
    """The endpoint QEMU SIGKILLed: the host guest keeps running with the
    device reading all ones; a new endpoint QEMU (a fresh endpoint guest
    that configures and starts the same function) brings it back."""
    ep, host = start_pair(harness, tmp_path, LINK_SCRIPT, ",reconnect=1")
    up = host.wait_for(r"^PCIEFW-UP: (.*)\n", timeout=300)
    assert okay(up.group(1)), host.console
    ep._signal_group(signal.SIGKILL)
    ep.stop()
    host.send("go\n")
    down = host.wait_for(r"^PCIEFW-DOWN: (.*)\n", timeout=120)
    assert "NOT OKAY" in down.group(1), host.console
    ep2 = start_endpoint(harness, tmp_path, "ep2")
    host.send("go\n")
    res = host.wait(timeout=300)
    ep2.send("end\n")
    ep_res = ep2.wait(timeout=120)
    assert res.status == 0, res.describe()
    back = re.search(r"^PCIEFW-BACK: (.*)$", res.console, re.M)
    read = re.search(r"^PCIEFW-BACK-READ: (.*)$", res.console, re.M)
    assert back and okay(back.group(1)), res.describe()
    assert read and okay(read.group(1)), res.describe()
    assert "PCIEFW-DMESG-PROBLEMS: 0\n" in res.console, res.describe()
    assert "PCIEFW-DMESG-PROBLEMS: 0\n" in ep_res.console, ep_res.describe()
