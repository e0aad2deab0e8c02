"""An MSI-X table that does not start on a page, read by a real guest CPU.

pci-epf-test (issue 16) puts its MSI-X table in BAR0 right after its
registers: with 2048 vectors a 32 KiB table at offset 0x80, the PBA at
0x8080.  The table then covers whole pages of guest-physical memory at an
offset within itself that is not a multiple of the page.  QEMU's TCG
keeps a section number in the low bits of each TLB entry and requires
every MMIO section that covers whole pages to start on a page of its
region; the device once mapped QEMU's MSI-X table region there directly,
and the first load from such a page aborted the host QEMU
(iotlb_to_section: section_index < d->map.sections_nb).  The device maps
a page-aligned window over the pages of its MSI-X structures instead
(qemu-pciefw/hw/pciefw/pciefw-msix.c).

A scripted endpoint describes that layout; the guest (TCG, real kernel)
reads and writes the table, the PBA and the forwarded registers around
them with busybox devmem.
"""

import re

import guestlib
import pfwire
from pfwire import ScriptedEndpoint

BAR0_SIZE = 64 * 1024
VECTORS = 2048
TABLE = 0x80                        # pci-epf-test: after its registers
PBA = TABLE + 16 * VECTORS          # 0x8080

_V = pfwire.field_varint

GUEST_SCRIPT = r"""#!/bin/sh
dev=/sys/bus/pci/devices/0000:01:00.0
[ -e $dev ] || exit 10
base=$(( $(head -1 $dev/resource | cut -d' ' -f1) ))
[ $base -ne 0 ] || exit 11
setpci -s 01:00.0 COMMAND=0x2:0x2 || exit 12
rd() { echo "PCIEFW-RD $1: $(devmem $((base + $1)) 32)"; }
rd 0x40
rd 0x100c
devmem $((base + 0x1340)) 32 0x12345678
rd 0x1340
rd 0x807c
rd 0x8080
rd 0x9000
"""


def test_guest_reads_msix_table_off_page(harness, tmp_path):
    """Vector 248's control word (page 1 of BAR0, table offset 0xf8c)
    reads as masked, a written address reads back, the PBA reads 0, and
    the registers beside them reach the endpoint; QEMU keeps running."""
    path = harness.path("peer.sock")
    desc = pfwire.description(
        bars=pfwire.bar(0, BAR0_SIZE),
        extra=_V(9, VECTORS) + _V(10, 0) + _V(11, TABLE) + _V(12, 0)
        + _V(13, PBA))
    peer = harness.track(ScriptedEndpoint(
        path, pfwire.hello(features=0, max_payload=65536) + desc))
    peer.answer_reads_with = (0xC0FFEE01).to_bytes(4, "little")
    initrd = guestlib.make_initramfs(tmp_path, GUEST_SCRIPT)
    res = guestlib.boot_guest(
        harness.qemu_binary, initrd,
        ["-device", "pcie-root-port,id=rp0",
         "-device", f"pciefw,bus=rp0,path={path}"], timeout=300)
    assert res.status == 0, res.describe()
    got = dict(re.findall(r"^PCIEFW-RD (0x[0-9a-f]+): (0x[0-9A-Fa-f]+)$",
                          res.console, re.M))
    assert {k: int(v, 16) for k, v in got.items()} == {
        "0x40": 0xC0FFEE01,         # forwarded, same page as the table
        "0x100c": 1,                # vector 248: masked (reset state)
        "0x1340": 0x12345678,       # vector 300's address, as written
        "0x807c": 1,                # vector 2047: masked
        "0x8080": 0,                # PBA: nothing pending
        "0x9000": 0xC0FFEE01,       # forwarded, past the PBA
    }, res.describe()
    reads = sorted({m.get(3) for m in peer.received
                    if m.kind == pfwire.MEM_READ})
    assert reads == [0x40, 0x9000], reads
    assert not [m for m in peer.received if m.kind == pfwire.MEM_WRITE]
