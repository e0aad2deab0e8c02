"""The Linux PCI endpoint framework end to end (issue 16, docs/epc.md).

The endpoint guest runs the framework, our pciefw_epc driver on QEMU's
pciefw-epc device and the kernel's pci-epf-test function, configured and
started through configfs as Documentation/PCI/endpoint/pci-test-howto.rst
says.  A second QEMU, the host, meets that function through its ordinary
pciefw device; its guest runs the kernel's pci_endpoint_test driver and
pcitest.
"""

import re

import epflib
import guestlib

EP = "/sys/kernel/config/pci_ep"

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
read go
echo "PCIEFW-DMESG-PROBLEMS: $(dmesg | grep -cE 'WARNING:|BUG:|Oops')"
dmesg | grep -iE 'epc|epf|pci_ep' | tail -20
"""

HOST_SCRIPT = r"""#!/bin/sh
insmod /lib/modules/epf/pci_endpoint_test.ko || exit 10
lspci -nn
[ -c /dev/pci-endpoint-test.0 ] || exit 11
for cmd in "-b 0" "-b 1" "-b 2" "-b 3" "-b 4" "-b 5" "-i 0" "-l" "-i 1" "-m 1" \
	"-i 2" "-x 1" "-x 2" "-i 1" "-r -s 1" "-r -s 1024" "-w -s 1" "-w -s 1024" \
	"-c -s 1" "-c -s 1025"; do
	echo "PCIEFW-PCITEST $cmd: $(pcitest $cmd 2>&1 | tr '\n' ' ')"
done
for cmd in "-r -s 1024000" "-w -s 1024000" "-c -s 1024001"; do
	t0=$(date +%s)
	echo "PCIEFW-BIG $cmd: $(pcitest $cmd 2>&1 | tr '\n' ' ') $(( $(date +%s) - t0 )) s"
done
echo "PCIEFW-DMESG-PROBLEMS: $(dmesg | grep -cE 'WARNING:|BUG:|Oops')"
"""


def endpoint_script(msi=32, msix=32):
    return (ENDPOINT_SCRIPT.replace("@EP@", EP).replace("@MSIX@", str(msix))
            .replace("@MSI@", str(msi)))


def test_pcitest_basic(harness, tmp_path):
    """A first pass over pcitest's kinds of test: BARs, each interrupt
    kind, small reads, writes and copies."""
    sock = harness.path("epc.sock")
    files = epflib.guest_files()
    ep_initrd = guestlib.make_initramfs(tmp_path / "ep", endpoint_script(), files)
    host_initrd = guestlib.make_initramfs(tmp_path / "host", HOST_SCRIPT, files)
    ep = guestlib.Guest(harness.qemu_binary, ep_initrd,
                        ["-device", f"pciefw-epc,path={sock}"],
                        log_path=harness.path("ep.log"))
    host = guestlib.Guest(harness.qemu_binary, host_initrd,
                          ["-device", "pcie-root-port,id=rp0",
                           "-device", f"pciefw,bus=rp0,path={sock}"],
                          log_path=harness.path("host.log"))
    harness.track(ep)
    harness.track(host)
    ep.start()
    ep.wait_for(r"PCIEFW-EPC-STARTED", timeout=120)
    host.start()
    res = host.wait(timeout=600)
    ep.send("go\n")
    ep_res = ep.wait(timeout=60)
    print(res.console)
    print(ep_res.console)
    assert res.status == 0, res.describe()
    lines = re.findall(r"^PCIEFW-PCITEST (.*)$", res.console, re.M)
    bad = [l for l in lines if "OKAY" not in l]
    assert len(lines) == 20 and not bad, "\n".join(lines)
