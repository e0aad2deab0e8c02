"""testdev seen from a real guest (docs/testdev.md): the Debian kernel
enumerates the pciefw device behind a q35 root port, lspci shows what the
endpoint declared, and devmem accesses reach the endpoint."""

import re
import subprocess

import guestlib

SCRIPT = r"""#!/bin/sh
for d in /sys/bus/pci/devices/*; do
	[ "$(cat $d/vendor)" = 0x1234 ] && [ "$(cat $d/device)" = 0xfe01 ] && dev=$d
done
[ -n "$dev" ] || exit 10
echo "PCIEFW-BDF: ${dev##*/}"
lspci -vvv -s ${dev##*/}
echo 1 > $dev/enable
bar0=$(awk 'NR == 1 { print $1 }' $dev/resource)
echo "PCIEFW-ID: $(devmem $bar0 32)"
devmem $((bar0 + 4)) 32 0x12345678
echo "PCIEFW-INV: $(devmem $((bar0 + 8)) 32)"
bar2=$(awk 'NR == 3 { print $1 }' $dev/resource)
devmem $((bar2 + 0x100)) 32 0xcafe0001
echo "PCIEFW-RAM: $(devmem $((bar2 + 0x100)) 32)"
"""


def test_lspci_and_devmem(harness, tmp_path, endpoint_binary):
    trace = harness.path("guest.pcapng")
    ep = harness.endpoint(args=["--trace", trace])
    initrd = guestlib.make_initramfs(tmp_path, SCRIPT)
    path = ep.address[len("unix:"):]
    res = guestlib.boot_guest(harness.qemu_binary, initrd, [
        "-device", "pcie-root-port,id=rp0,slot=1",
        "-device", f"pciefw,bus=rp0,path={path}"], timeout=120)
    con = res.console
    assert res.status == 0, res.describe()
    # Identity and BARs exactly as testdev's DeviceDescription says.
    assert re.search(r"Unassigned class \[ff00\]: Device 1234:fe01 \(rev 01\)", con), con
    assert "Subsystem: Device 1234:0001" in con
    assert re.search(r"Region 0: Memory at \w+ \(32-bit, non-prefetchable\) \[size=4K\]", con)
    assert re.search(r"Region 1: Memory at \w+ \(32-bit, non-prefetchable\) \[size=4K\]", con)
    assert re.search(r"Region 2: Memory at \w+ \(64-bit, prefetchable\) \[size=1M\]", con)
    assert re.search(r"Region 4: I/O ports at \w+ \[size=32\]", con)
    assert "Interrupt: pin A" in con
    # Capabilities the host side emulates, placed at 0x80 and above.
    assert re.search(r"Capabilities: \[[89a-f]\w\] MSI-X: Enable- Count=8", con)
    assert re.search(r"Vector table: BAR=1 offset=00000000", con)
    assert re.search(r"PBA: BAR=1 offset=00000800", con)
    assert re.search(r"Capabilities: \[[89a-f]\w\] MSI: Enable- Count=1/4", con)
    assert re.search(r"Capabilities: \[[89a-f]\w\] Express \(v2\) Endpoint", con)
    # devmem reached the endpoint's registers and RAM.
    assert "PCIEFW-ID: 0x7E57DE01" in con, con
    assert "PCIEFW-INV: 0xEDCBA987" in con, con
    assert "PCIEFW-RAM: 0xCAFE0001" in con, con
    # ...and the endpoint saw them, as its trace shows.
    assert ep.stop() == 0
    tool = endpoint_binary.replace("endpoint/pciefw-endpoint", "tools/pciefw-trace")
    out = subprocess.run([tool, "--kind", "mem_write", trace], stdout=subprocess.PIPE,
                         text=True, check=True).stdout
    assert "mem_write bar=0 offset=0x4 data=78563412" in out, out
    assert "mem_write bar=2 offset=0x100 data=0100feca" in out, out
