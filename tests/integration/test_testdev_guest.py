"""testdev seen from a real guest (docs/testdev.md): the Debian kernel
enumerates the pciefw device behind a q35 root port, lspci shows what the
endpoint declared, devmem accesses reach the endpoint, and a read of FETCH,
whose completion waits for the DMA read it issues, returns what the guest
wrote to its memory (the deadlock-freedom test of spec 5.3)."""

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
# FETCH: bus mastering on (command register: IO, memory, bus master), a
# value in the page the kernel command line reserved (so /dev/mem may
# write it), FETCH_ADDR pointing at it, then a read of FETCH.
printf '\007' | dd of=$dev/config bs=1 seek=4 count=1 conv=notrunc 2>/dev/null
page=FETCH_PAGE
for v in 0xC0FFEE42 0x5EED1234; do
	devmem $page 32 $v
	echo "PCIEFW-MEM: $(devmem $page 32)"
	devmem $((bar0 + 0x58)) 32 $page
	devmem $((bar0 + 0x5c)) 32 0
	echo "PCIEFW-FETCH: $(devmem $((bar0 + 0x60)) 32)"
done
"""
# Reserved by memmap= below: RAM the kernel leaves alone, at a known address.
FETCH_PAGE = 0x10000000


def test_lspci_and_devmem(harness, tmp_path, endpoint_binary):
    trace = harness.path("guest.pcapng")
    ep = harness.endpoint(args=["--trace", trace])
    initrd = guestlib.make_initramfs(
        tmp_path, SCRIPT.replace("FETCH_PAGE", hex(FETCH_PAGE)))
    path = ep.address[len("unix:"):]
    res = guestlib.boot_guest(harness.qemu_binary, initrd, [
        "-device", "pcie-root-port,id=rp0,slot=1",
        "-device", f"pciefw,bus=rp0,path={path}"], timeout=120,
        append_extra=f"memmap=4K${FETCH_PAGE:#x}")
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
    # FETCH returned what the guest had just written to its memory.
    assert re.findall(r"PCIEFW-MEM: (0x\w+)", con) == ["0xC0FFEE42", "0x5EED1234"], con
    assert re.findall(r"PCIEFW-FETCH: (0x\w+)", con) == ["0xC0FFEE42", "0x5EED1234"], con
    # ...and the endpoint saw them, as its trace shows.
    assert ep.stop() == 0
    tool = endpoint_binary.replace("endpoint/pciefw-endpoint", "tools/pciefw-trace")
    out = subprocess.run([tool, "--kind", "mem_write", trace], stdout=subprocess.PIPE,
                         text=True, check=True).stdout
    assert "mem_write bar=0 offset=0x4 data=0x12345678" in out, out
    assert "mem_write bar=2 offset=0x100 data=0xcafe0001" in out, out
    out = subprocess.run([tool, "--kind", "dma_read,completion", trace],
                         stdout=subprocess.PIPE, text=True, check=True).stdout
    assert out.count(f"dma_read tag=") == 2, out
    assert f"address={FETCH_PAGE:#x} size=4" in out, out
