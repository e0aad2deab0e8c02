"""One guest test, three implementations of one register map: testdev in C
(docs/testdev.md), pf_testdev in Verilog under Verilator and pf_testdev in
VHDL under GHDL (hdl/, docs/hdl.md 6), each behind the real QEMU in one
booted guest.  The same shell function runs unchanged against each:
register read-back at 1, 2, 4 and 8 bytes and sub-word writes, DMA copy
(aligned and with a ragged tail), fill and sum checked by checksums,
a refused DMA without bus mastering, the completion interrupt after the
data (an MSI-X message aimed at guest RAM, polled, then the data checked,
as the qtest ordering tests do), INTx when MSI-X is off, and at last
MSI-X vectors counted by the guest's kernel (pciefw_irqtest).  Each
implementation's results must be the expected ones, and the same as the
others'."""

import re

import pytest

import guestlib
import rtllib
from conftest import Harness
from nicnet import driver_module

# Reserved by memmap= below: RAM the kernel leaves alone, for the DMA.
AREA = 0x10000000
IMPLS = ("testdev", "verilog", "vhdl")
IRQTEST_KO = "/lib/modules/extra/pciefw_irqtest.ko"

SCRIPT = r"""#!/bin/sh
AREA=@AREA@
SRC=$AREA
DST=$((AREA + 0x10000))
LAND=$((AREA + 0x3f000))
out() { echo "HDLT $NAME $*"; }
reg() { devmem $((B0 + $1)) ${2:-32}; }
setreg() { devmem $((B0 + $1)) 32 $(($2)); }
# md5 of LEN bytes of guest memory at ADDR (reserved RAM: /dev/mem allows it)
md5() {
	if [ $(($1 % 4096)) = 0 ] && [ $(($2 % 4096)) = 0 ]; then
		dd if=/dev/mem bs=4096 skip=$(($1 / 4096)) count=$(($2 / 4096)) 2>/dev/null
	else
		dd if=/dev/mem bs=1 skip=$(($1)) count=$(($2)) 2>/dev/null
	fi | md5sum | cut -d' ' -f1
}
# fill LEN bytes at page ADDR with byte OCTAL (tr's notation)
fill() {
	dd if=/dev/zero bs=4096 count=$(($2 / 4096)) 2>/dev/null | tr '\000' "\\$3" |
		dd of=/dev/mem bs=4096 seek=$(($1 / 4096)) conv=notrunc 2>/dev/null
}
# program a DMA; START with CMD; wait until BUSY clears; print DMA_STATUS
dma() {
	setreg 0x28 6
	setreg 0x10 $1; setreg 0x14 0
	setreg 0x18 $2; setreg 0x1c 0
	setreg 0x20 $3
	setreg 0x24 $4
	n=0
	while st=$(reg 0x28); [ $((st & 1)) = 1 ] && [ $n -lt 100000 ]; do n=$((n + 1)); done
	echo $st
}
# MSI-X vector V aimed at the guest word LAND + 4 V, data 0xD0E0 + V
msix_to_ram() {
	e=$((B1 + 16 * $1))
	devmem $e 32 $((LAND + 4 * $1)); devmem $((e + 4)) 32 0
	devmem $((e + 8)) 32 $((0xD0E0 + $1)); devmem $((e + 12)) 32 0
	setpci -s $BDF CAP_MSIX+2.w=8000:c000
}

check() {
	NAME=$1 BDF=$2
	dev=/sys/bus/pci/devices/$BDF
	echo 1 > $dev/enable
	B0=$(awk 'NR == 1 { print $1 }' $dev/resource)
	B1=$(awk 'NR == 2 { print $1 }' $dev/resource)
	# Registers at every size: the bridge splits 8 bytes, strobes 1 and 2.
	out id $(reg 0)
	setreg 4 0x12345678
	out rd32 $(reg 4) $(reg 8)
	out rd8 $(reg 4 8) $(reg 5 8) $(reg 6 8) $(reg 7 8)
	out rd16 $(reg 4 16) $(reg 6 16)
	out rd64 $(reg 0 64) $(reg 8 64)
	devmem $((B0 + 5)) 8 0xab
	out wr8 $(reg 4) $(reg 8)
	devmem $((B0 + 6)) 16 0xbeef
	out wr16 $(reg 4) $(reg 8)
	devmem $((B0 + 0x40)) 64 0x1122334455667788
	out wr64 $(reg 0x40 64) $(reg 0x40) $(reg 0x44)
	setreg 0x44 0xcafef00d
	out wr32hi $(reg 0x40 64)
	# DMA: bus mastering on; a deterministic source (busybox's first bytes).
	setpci -s $BDF COMMAND=0006:0006
	dd if=/bin/busybox of=/dev/mem bs=4096 seek=$((SRC / 4096)) count=4 conv=notrunc 2>/dev/null
	fill $DST 32768 356
	out copy $(dma $SRC $DST 16384 1) $(md5 $SRC 16384) $(md5 $DST 16384) $(md5 $((DST + 16384)) 4096)
	fill $DST 32768 356
	out copy-ragged $(dma $((SRC + 8)) $DST 1001 1) $(md5 $((SRC + 8)) 1001) $(md5 $DST 1001) $(md5 $((DST + 1001)) 3)
	setreg 4 0x5a
	out fill $(dma 0 $DST 8192 0x11) $(md5 $DST 8192) $(md5 $((DST + 8192)) 4096)
	out sum $(dma $DST 0 8192 0x21) $(reg 0x50)
	# Without bus mastering the host refuses the DMA read: ERROR.
	setpci -s $BDF COMMAND=0002:0006
	out nobm $(dma $SRC $DST 64 1)
	setpci -s $BDF COMMAND=0006:0006
	# The completion MSI-X comes after the data: seen, then the data checked.
	msix_to_ram 2
	devmem $((LAND + 8)) 32 0
	fill $DST 32768 356
	setreg 0x28 6
	setreg 0x2c $((3 | 2 << 8))
	setreg 0x10 $SRC; setreg 0x18 $DST; setreg 0x20 16384
	setreg 0x24 3
	n=0
	while [ "$(devmem $((LAND + 8)) 32)" != 0x0000D0E2 ] && [ $n -lt 100000 ]; do n=$((n + 1)); done
	out msix-after-data $(devmem $((LAND + 8)) 32) $(md5 $DST 16384) $(reg 0x28)
	# MSI-X off: INTx, seen in the status register, cleared by INTX.
	setpci -s $BDF CAP_MSIX+2.w=0000:8000
	setreg 0x2c 1
	st=$(dma $SRC $DST 4096 3)
	out intx $st $(( 0x$(setpci -s $BDF STATUS) >> 3 & 1 )) $(reg 0x38)
	setreg 0x38 0
	reg 0 >/dev/null
	out intx-cleared $(( 0x$(setpci -s $BDF STATUS) >> 3 & 1 )) $(reg 0x38)
}

# Vectors as the guest's kernel counts them: pciefw_irqtest names vector N
# of BDF "BDF-N" in /proc/interrupts.
irqs() {
	grep " $1-[0-9]*$" /proc/interrupts | awk '{ n = split($NF, a, "-")
		printf "%s:%s ", a[n], $2 }'
}
wait_irqs() {
	n=0
	while [ "$(irqs $1)" != "$2" ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
	irqs $1
}
counted() {
	NAME=$1 BDF=$2
	B0=$(awk 'NR == 1 { print $1 }' /sys/bus/pci/devices/$BDF/resource)
	setreg 0x30 1
	out irq-doorbell $(wait_irqs $BDF "0:0 1:1 2:0 3:0 4:0 5:0 6:0 7:0 ")
	setreg 0x2c $((3 | 2 << 8))
	out irq-dma $(dma $SRC $DST 4096 3) $(wait_irqs $BDF "0:0 1:1 2:1 3:0 4:0 5:0 6:0 7:0 ")
}

@CHECKS@
insmod @IRQTEST@ || exit 11
echo "1234 fe01" > /sys/bus/pci/drivers/pciefw_irqtest/new_id
echo "1234 fe11" > /sys/bus/pci/drivers/pciefw_irqtest/new_id
@COUNTS@
"""

# What each implementation must print (docs/testdev.md).
EXPECTED = {
    "id": "0x7E57DE01",
    "rd32": "0x12345678 0xEDCBA987",
    "rd8": "0x78 0x56 0x34 0x12",
    "rd16": "0x5678 0x1234",
    # 8 bytes at 0x8: INV, then the undefined 0x0c, which reads 0.
    "rd64": "0x123456787E57DE01 0x00000000EDCBA987",
    "wr8": "0x1234AB78 0xEDCB5487",
    "wr16": "0xBEEFAB78 0x41105487",
    "wr64": "0x1122334455667788 0x55667788 0x11223344",
    "wr32hi": "0xCAFEF00D55667788",
    "nobm": "0x00000004",
    "intx": "0x00000002 1 0x00000001",
    "intx-cleared": "0 0x00000000",
    "irq-doorbell": "0:0 1:1 2:0 3:0 4:0 5:0 6:0 7:0",
    "irq-dma": "0x00000002 0:0 1:1 2:1 3:0 4:0 5:0 6:0 7:0",
}


# md5 of 8 KiB of 0x5a (FILL with SCRATCH 0x5a), of 0xEE bytes (untouched).
MD5_Z_8K = "517826e17a9f106236f100a7db13e0a5"
MD5_EE_4K = "85a0bd9e5c984f5d1786e9309dd7930e"
MD5_EE_3 = "edefd32fea11116fdbebc3b64b524d35"


@pytest.fixture(scope="module")
def guest(qemu_binary, endpoint_binary, tmp_path_factory):
    """One guest, the three implementations behind three root ports."""
    workdir = tmp_path_factory.mktemp("hdl")
    h = Harness(qemu_binary, endpoint_binary, str(workdir))
    devices = {"testdev": "testdev", "verilog": rtllib.example("verilog"),
               "vhdl": rtllib.example("vhdl")}
    try:
        eps = {n: h.endpoint(name=n, device=devices[n]) for n in IMPLS}
        args, checks, counts = [], [], []
        for i, n in enumerate(IMPLS, 1):
            args += ["-device", f"pcie-root-port,id=rp{i},slot={i}",
                     "-device", f"pciefw,bus=rp{i},path={eps[n].address[5:]}"]
            checks.append(f"check {n} 0000:0{i}:00.0")
            counts.append(f"counted {n} 0000:0{i}:00.0")
        script = (SCRIPT.replace("@AREA@", hex(AREA))
                  .replace("@CHECKS@", "\n".join(checks))
                  .replace("@COUNTS@", "\n".join(counts))
                  .replace("@IRQTEST@", IRQTEST_KO))
        ko = str(driver_module()).replace("pciefw_nic.ko", "pciefw_irqtest.ko")
        initrd = guestlib.make_initramfs(workdir, script, {ko: IRQTEST_KO})
        res = guestlib.boot_guest(qemu_binary, initrd, args, timeout=600,
                                  append_extra=f"memmap=256K${AREA:#x}")
        logs = {n: eps[n].output() for n in IMPLS}
        yield res, logs
    finally:
        h.stop_all()


def results(console, name):
    return {m.group(1): m.group(2).strip()
            for m in re.finditer(rf"^HDLT {name} (\S+) ?(.*)$", console, re.M)}


@pytest.mark.parametrize("impl", IMPLS)
def test_register_map_in_a_guest(guest, impl):
    """Each implementation gives the results docs/testdev.md says."""
    res, logs = guest
    assert res.status == 0, res.describe()
    r = results(res.console, impl)
    for key, want in EXPECTED.items():
        assert r.get(key) == want, f"{impl} {key}: {r.get(key)!r}\n{res.console}"
    # Copies: the destination's checksum is the source's, nothing beyond.
    st, src, dst, tail = r["copy"].split()
    assert st == "0x00000002" and src == dst, r["copy"]
    st, src, dst, tail3 = r["copy-ragged"].split()
    assert st == "0x00000002" and src == dst, r["copy-ragged"]
    st, data, tail2 = r["fill"].split()
    assert st == "0x00000002", r["fill"]
    # 8192 bytes of 0x5a ('Z'), and the 0xEE beyond untouched.
    assert data == MD5_Z_8K, r["fill"]
    assert tail == tail2 == MD5_EE_4K, (r["copy"], r["fill"])
    assert tail3 == MD5_EE_3, r["copy-ragged"]
    assert r["sum"] == "0x00000002 0x000B4000", r["sum"]     # 0x5a * 8192
    marker, data, st = r["msix-after-data"].split()
    assert marker == "0x0000D0E2" and data == r["copy"].split()[1], r
    assert st == "0x00000002", r


def test_same_results_everywhere(guest):
    """The three implementations printed exactly the same lines."""
    res, _ = guest
    assert res.status == 0, res.describe()
    base = results(res.console, "testdev")
    assert len(base) == 19, base
    for impl in IMPLS[1:]:
        assert results(res.console, impl) == base, (impl, res.console)
