"""The example models (endpoint/models/examples/, docs/models.md) seen from
a real guest through the real QEMU: each answers as its tutorial's device
does, and each interrupt vector they raise arrives at the guest's CPU, as
counted in /proc/interrupts with the pciefw_irqtest module bound.  The
interrupt delivery rules of device.h / spec 3.2 are checked on the way:
disabled MSI-X drops, a masked function leaves the vector pending until
unmasked, Bus Master Enable clear drops.
"""

import re
import struct

import guestlib
from nicnet import driver_module

# Shell helpers for the guest scripts: find a function by vendor/device,
# the bus address of its BAR N, the interrupt count of each of its vectors.
HELPERS = r"""#!/bin/sh
find_dev() {
	for d in /sys/bus/pci/devices/*; do
		[ "$(cat $d/vendor)" = 0x$1 ] && [ "$(cat $d/device)" = 0x$2 ] && echo ${d##*/}
	done
}
bar() { awk -v n=$(($2 + 1)) 'NR == n { print $1 }' /sys/bus/pci/devices/$1/resource; }
# "vector:count ..." for every vector of $1 in /proc/interrupts (one CPU):
# pciefw_irqtest names vector N of BDF "BDF-N".
irqs() {
	grep " $1-[0-9]*$" /proc/interrupts | awk '{ n = split($NF, a, "-")
		printf "%s:%s ", a[n], $2 }'
	echo
}
# Wait until irqs $1 prints $2 (the interrupt follows the posted write).
wait_irqs() {
	n=0
	while [ "$(irqs $1)" != "$2" ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n + 1)); done
	echo "PCIEFW-IRQS $3: $(irqs $1)"
}
"""

IDENTITY_SCRIPT = HELPERS + r"""
for id in 11e8 11e9 1337; do
	bdf=$(find_dev 1234 $id)
	[ -n "$bdf" ] || exit 10
	echo "PCIEFW-LSPCI-N: $(lspci -n -s $bdf)"
	lspci -vv -s $bdf
done
# ex-mmio: the tutorial's devmem2 session.
bdf=$(find_dev 1234 11e9)
echo 1 > /sys/bus/pci/devices/$bdf/enable
b=$(bar $bdf 0)
echo "PCIEFW-MMIO: $(devmem $b 32)"
devmem $b 32 0xdeafbeaf
echo "PCIEFW-MMIO: $(devmem $b 32)"
devmem $((b + 0xffc)) 16 0x1234
echo "PCIEFW-MMIO: $(devmem $((b + 0xffc)) 32)"
# ex-gpu: the tutorial's 16-bit session, then 8/16/32 bits mixed.
bdf=$(find_dev 1234 1337)
echo 1 > /sys/bus/pci/devices/$bdf/enable
b=$(bar $bdf 0)
echo "PCIEFW-GPU: $(devmem $b 16)"
devmem $b 16 4
echo "PCIEFW-GPU: $(devmem $b 16)"
devmem $((b + 0xffffc)) 32 0x11223344
echo "PCIEFW-GPU: $(devmem $((b + 0xffffd)) 8) $(devmem $((b + 0xffffe)) 16)"
devmem $((b + 0x80001)) 8 0xab
echo "PCIEFW-GPU: $(devmem $((b + 0x80000)) 32)"
"""


def test_identity_mmio_gpu(harness, tmp_path):
    """ex-basic, ex-mmio and ex-gpu: lspci shows what each declares, and
    devmem at 8/16/32 bits reads back what it wrote, as in the tutorials."""
    eps = [harness.endpoint(name=m, device=m) for m in ("ex-basic", "ex-mmio", "ex-gpu")]
    res = guestlib.boot_guest(harness.qemu_binary,
                              guestlib.make_initramfs(tmp_path, IDENTITY_SCRIPT),
                              root_ports(eps), timeout=180)
    con = res.console
    assert res.status == 0, res.describe()
    # Class and IDs as the tutorials' lspci shows them.
    assert re.search(r"PCIEFW-LSPCI-N: \S+ 0200: 1234:11e8\n", con), con
    assert re.search(r"PCIEFW-LSPCI-N: \S+ 0200: 1234:11e9\n", con), con
    assert re.search(r"PCIEFW-LSPCI-N: \S+ 00ff: 1234:1337\n", con), con
    assert len(re.findall(r"Subsystem: Red Hat, Inc\.", con)) == 3, con
    assert re.search(r"Region 0: Memory at \w+ \(32-bit, non-prefetchable\) \[size=4K\]", con)
    assert re.search(r"Region 0: Memory at \w+ \(32-bit, non-prefetchable\) \[size=1M\]", con)
    assert re.findall(r"PCIEFW-MMIO: (\S+)", con) == ["0x00000000", "0xDEAFBEAF",
                                                      "0x00001234"], con
    assert re.findall(r"PCIEFW-GPU: (.+)", con) == ["0x0000", "0x0004", "0x33 0x1122",
                                                    "0x0000AB00"], con
    # The accesses reached the endpoint, which logs them like the tutorial.
    assert "MMIO write addr=0x0 size=4 data=0xdeafbeaf" in eps[1].output()
    for ep in eps:
        assert ep.stop() == 0, ep.output()


def root_ports(endpoints):
    """QEMU arguments: one pciefw device behind its own root port each."""
    args = []
    for i, ep in enumerate(endpoints, 1):
        args += ["-device", f"pcie-root-port,id=rp{i},slot={i}",
                 "-device", f"pciefw,bus=rp{i},path={ep.address[len('unix:'):]}"]
    return args


IRQTEST_KO = "/lib/modules/extra/pciefw_irqtest.ko"
# Reserved by memmap= below: RAM the kernel leaves alone, for the RX buffer.
RX_PAGE = 0x10000000

IRQ_SCRIPT = HELPERS + r"""
# Two ex-irq, told apart by their capability: irq=msix and irq=msi.
for d in $(find_dev 1234 11ea); do
	lspci -v -s $d | grep -q "MSI-X:" && x=$d || m=$d
done
r=$(find_dev 1234 11eb)    # ex-rx
[ -n "$x" ] && [ -n "$m" ] && [ -n "$r" ] || exit 10
# MSI-X not enabled yet: the doorbell's vector is dropped, not pending.
echo 1 > /sys/bus/pci/devices/$x/enable
xb=$(bar $x 0)
devmem $xb 32 2
echo "PCIEFW-EARLY: $(devmem $xb 32)"
insmod IRQTEST_KO || exit 11
echo "1234 11ea" > /sys/bus/pci/drivers/pciefw_irqtest/new_id
echo "1234 11eb" > /sys/bus/pci/drivers/pciefw_irqtest/new_id
lspci -vv -s $x | grep -A2 MSI-X
lspci -vv -s $m | grep -A1 "MSI:"
wait_irqs $x "0:0 1:0 2:0 3:0 " msix-bound
# The tutorial: writing N to BAR0 fires vector N.
want=""
for v in 0 1 2 3; do
	devmem $xb 32 $v
	want=""
	for i in 0 1 2 3; do [ $i -le $v ] && want="$want$i:1 " || want="$want$i:0 "; done
	wait_irqs $x "$want" msix-$v
done
# Function masked: the vector waits in the PBA and arrives on unmask.
xp=$(($(bar $x 1) + 0x800))
setpci -s $x CAP_MSIX+2.w=4000:4000
devmem $xb 32 3
devmem $xb 32 >/dev/null    # a read completes after the MSI-X (spec 5.1)
echo "PCIEFW-PBA: $(devmem $xp 32) $(irqs $x)"
setpci -s $x CAP_MSIX+2.w=0000:4000
wait_irqs $x "0:1 1:1 2:1 3:2 " msix-unmasked
echo "PCIEFW-PBA: $(devmem $xp 32)"
# Bus mastering off: the message (a memory write) is dropped for good.
setpci -s $x COMMAND=0000:0004
devmem $xb 32 1
echo "PCIEFW-NOBM: $(devmem $xb 32)"
setpci -s $x COMMAND=0004:0004
devmem $xb 32 0
wait_irqs $x "0:2 1:1 2:1 3:2 " msix-busmaster
echo "PCIEFW-PBA: $(devmem $xp 32)"
# MSI: x86 grants one vector without interrupt remapping; vectors alias.
mb=$(bar $m 0)
for v in 0 1 2 3; do
	devmem $mb 32 $v
	wait_irqs $m "0:$((v + 1)) " msi-$v
done
# ex-rx: post a buffer, "receive" two packets; each is DMA'd, then MSI-X 1.
rb=$(bar $r 0)
devmem $rb 32 RX_PAGE
devmem $((rb + 4)) 32 0
devmem $((rb + 8)) 32 64
for n in 1 2; do
	devmem $((rb + 0xc)) 32 1
	wait_irqs $r "0:0 1:$n 2:0 3:0 " rx-$n
	echo "PCIEFW-RX:" $(devmem $((rb + 0x10)) 32) $(devmem $((rb + 0x14)) 32) \
		$(for o in 0 4 8 12 16 20; do devmem $((RX_PAGE + o)) 32; done)
done
"""


def test_vectors_arrive(harness, tmp_path):
    """Every vector ex-irq (MSI-X and MSI) and ex-rx raise arrives at the
    guest's CPU, and QEMU applies enable, mask and bus mastering as device.h
    and spec 3.2 say."""
    msix = harness.endpoint(name="msix", device="ex-irq")
    msi = harness.endpoint(name="msi", device="ex-irq,irq=msi")
    rx = harness.endpoint(name="rx", device="ex-rx,payload=PCIEFW rx test")
    script = (IRQ_SCRIPT.replace("IRQTEST_KO", IRQTEST_KO)
              .replace("RX_PAGE", hex(RX_PAGE)))
    ko = str(driver_module()).replace("pciefw_nic.ko", "pciefw_irqtest.ko")
    initrd = guestlib.make_initramfs(tmp_path, script, {ko: IRQTEST_KO})
    res = guestlib.boot_guest(harness.qemu_binary, initrd, root_ports([msix, msi, rx]),
                              timeout=240, append_extra=f"memmap=4K${RX_PAGE:#x}")
    con = res.console
    assert res.status == 0, res.describe()
    irqs = dict(re.findall(r"PCIEFW-IRQS (\S+): (.*)", con))
    assert "MSI-X: Enable+ Count=4 Masked-" in con, con
    # Disabled MSI-X dropped the early doorbell: nothing pending, no count.
    assert irqs["msix-bound"] == "0:0 1:0 2:0 3:0 ", con
    for v in range(4):
        want = " ".join(f"{i}:{int(i <= v)}" for i in range(4)) + " "
        assert irqs[f"msix-{v}"] == want, con
    # Masked: pending bit 3, no interrupt; unmasked: delivered, bit clear.
    pba = re.findall(r"PCIEFW-PBA: (\S+)(.*)", con)
    assert pba[0] == ("0x00000008", " 0:1 1:1 2:1 3:1 "), con
    assert irqs["msix-unmasked"] == "0:1 1:1 2:1 3:2 ", con
    assert pba[1][0] == "0x00000000" and pba[2][0] == "0x00000000", con
    # Without bus mastering vector 1 was dropped, not left pending.
    assert irqs["msix-busmaster"] == "0:2 1:1 2:1 3:2 ", con
    # Every doorbell reached the endpoint, delivered or not.
    log = msix.output()
    assert len(re.findall(r"doorbell: MSI-X vector", log)) == 8, log
    for v in range(4):
        assert irqs[f"msi-{v}"] == f"0:{v + 1} ", con
    # Each packet was in guest memory with its sequence number and payload
    # when its interrupt arrived.
    rxs = re.findall(r"PCIEFW-RX: (.*)", con)
    payload = b"PCIEFW rx test"
    for n, line in enumerate(rxs, 1):
        words = [int(w, 16) for w in line.split()]
        assert words[0] == n and words[1] == 4 + len(payload), con
        data = struct.pack("<6I", *words[2:])
        assert data[:4 + len(payload)] == struct.pack("<I", n) + payload, con
    assert len(rxs) == 2, con
    for ep in (msix, msi, rx):
        assert ep.stop() == 0, ep.output()
