"""The Linux PCI endpoint framework in the test guest (issue 16).

Debian's kernel has no CONFIG_PCI_ENDPOINT; driver/epf/build-epf.sh builds
the framework out of tree as one module.  These tests boot the real guest
kernel with what it built.
"""

import re

import epflib
import guestlib

LOAD_SCRIPT = r"""#!/bin/sh
d=/lib/modules/epf
cfs=/sys/kernel/config/pci_ep
insmod $d/configfs.ko || exit 10
mount -t configfs none /sys/kernel/config || exit 11
insmod $d/pci_endpoint.ko || exit 12
insmod $d/pci-epf-test.ko || exit 13
echo "PCIEFW-FUNCTIONS: $(ls $cfs/functions)"
echo "PCIEFW-CONTROLLERS: $(ls $cfs/controllers | wc -l)"
echo "PCIEFW-EPF-DRIVERS: $(ls /sys/bus/pci-epf/drivers)"
echo "PCIEFW-EPC-CLASS: $(ls -d /sys/class/pci_epc)"
# Our EPC driver links against the framework (no device here: it only
# registers its PCI driver).
insmod $d/pciefw_epc.ko || exit 20
echo "PCIEFW-EPC-DRIVER: $(ls /sys/bus/pci/drivers | grep pciefw_epc)"
rmmod pciefw_epc || exit 21
# A function device, as Documentation/PCI/endpoint/pci-test-howto.rst makes
# it: pci-epf-test fills in its defaults when it binds.
mkdir $cfs/functions/pci_epf_test/func1 || exit 14
echo "PCIEFW-VENDOR: $(cat $cfs/functions/pci_epf_test/func1/vendorid)"
echo "PCIEFW-PIN: $(cat $cfs/functions/pci_epf_test/func1/interrupt_pin)"
rmdir $cfs/functions/pci_epf_test/func1 || exit 15
rmmod pci_epf_test || exit 16
rmmod pci_endpoint || exit 17
[ ! -d $cfs ] || exit 18
# The host side's driver loads on its own (it binds to 104c:b500 & co).
insmod $d/pci_endpoint_test.ko || exit 19
echo "PCIEFW-HOST-DRIVER: $(ls /sys/bus/pci/drivers | grep pci-endpoint-test)"
pcitest -b 0 >/dev/null 2>&1
echo "PCIEFW-PCITEST-NO-DEVICE: $?"
echo "PCIEFW-DMESG-PROBLEMS: $(dmesg | grep -cE 'WARNING:|BUG:|Oops|Unknown symbol|section mismatch')"
"""


def test_framework_modules_load(harness, tmp_path):
    """The one-module framework, pci-epf-test and our pciefw_epc load,
    configfs shows the function driver, a function can be created and removed, everything
    unloads again; pci_endpoint_test loads; pcitest runs (static) and
    fails cleanly without a device."""
    initrd = guestlib.make_initramfs(tmp_path, LOAD_SCRIPT, epflib.guest_files())
    res = guestlib.boot_guest(harness.qemu_binary, initrd, [], timeout=120)
    con = res.console
    assert res.status == 0, res.describe()
    assert "PCIEFW-FUNCTIONS: pci_epf_test\n" in con, con
    assert "PCIEFW-CONTROLLERS: 0\n" in con, con
    assert "PCIEFW-EPF-DRIVERS: pci_epf_test\n" in con, con
    assert "PCIEFW-EPC-CLASS: /sys/class/pci_epc\n" in con, con
    assert "PCIEFW-EPC-DRIVER: pciefw_epc\n" in con, con
    assert "PCIEFW-VENDOR: 0xffff\n" in con, con
    assert "PCIEFW-PIN: 0x0001\n" in con, con
    assert "PCIEFW-HOST-DRIVER: pci-endpoint-test\n" in con, con
    assert re.search(r"PCIEFW-PCITEST-NO-DEVICE: [1-9]", con), con
    assert "PCIEFW-DMESG-PROBLEMS: 0\n" in con, con
