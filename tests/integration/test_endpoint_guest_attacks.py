"""A hostile guest against the endpoint (issue 11), through the real QEMU
pciefw device and a real guest kernel, with the endpoint built with
ASan+UBSan: plain register writes with busybox devmem must neither corrupt
the endpoint's memory nor make it hold unbounded memory.

Bus mastering stays off in these guests: the device's DMA is refused by
QEMU, so nothing the endpoint does can touch the guest's own memory.
"""

import os
import signal

import guestlib

# Find our device ($1 = device ID), enable its memory decoding, print BAR0.
FIND = r"""
for d in /sys/bus/pci/devices/*; do
	[ "$(cat $d/vendor)" = 0x1234 ] && [ "$(cat $d/device)" = $1 ] && dev=$d
done
[ -n "$dev" ] || exit 10
echo 1 > $dev/enable
bar0=$(awk 'NR == 1 { print $1 }' $dev/resource)
"""

# nic registers (docs/nic.md 2).
NIC_SCRIPT = "#!/bin/sh\nset -- 0xfe02\n" + FIND + r"""
echo "PCIEFW-READY"
read -r go
devmem $((bar0 + 0x208)) 32 4096        # TX_SIZE
devmem $((bar0 + 0x200)) 32 0x2000000   # TX_BASE_LO
devmem $((bar0 + 0x204)) 32 0           # TX_BASE_HI
devmem $((bar0 + 0x000)) 32 4           # CTRL.TX_EN
devmem $((bar0 + 0x210)) 32 4095        # TX_TAIL: fetch 4095 descriptors
devmem $((bar0 + 0x208)) 32 8           # TX_SIZE shrinks under the fetch
echo "PCIEFW-WRITTEN"
read -r go
echo "PCIEFW-TX-SIZE: $(devmem $((bar0 + 0x208)) 32)"
echo "PCIEFW-TX-HEAD: $(devmem $((bar0 + 0x20c)) 32)"
"""


def memory_errors(log):
    return [line for line in log.splitlines()
            if "AddressSanitizer" in line or "runtime error" in line]


def test_nic_ring_resize_under_fetch(harness, tmp_path, asan_endpoint_binary):
    """Issue 11 item 1: TX_SIZE shrunk while a 4095-descriptor fetch is in
    flight overflowed the endpoint's heap.  The endpoint is stopped while the
    guest writes, so all six writes reach it in one batch, before the
    fetch's completion: the order the bug needs, every time."""
    ep = harness.endpoint(name="nic", device="nic", binary=asan_endpoint_binary)
    initrd = guestlib.make_initramfs(tmp_path, NIC_SCRIPT)
    path = ep.address[len("unix:"):]
    with guestlib.Guest(harness.qemu_binary, initrd, [
            "-device", "pcie-root-port,id=rp0,slot=1",
            "-device", f"pciefw,bus=rp0,path={path}"]) as g:
        g.wait_for(r"^PCIEFW-READY", timeout=300)
        os.kill(ep.pid, signal.SIGSTOP)
        try:
            g.send("go\n")
            g.wait_for(r"^PCIEFW-WRITTEN", timeout=120)
        finally:
            os.kill(ep.pid, signal.SIGCONT)
        g.send("go\n")
        res = g.wait(timeout=120)
    log = ep.output()
    assert ep.alive(), log[-6000:]
    assert not memory_errors(log), log[-6000:]
    assert res.status == 0, res.describe()
    assert "PCIEFW-TX-SIZE: 0x00000008" in res.console, res.describe()
    assert "PCIEFW-TX-HEAD: 0x00000000" in res.console, res.describe()


# testdev registers (docs/testdev.md): 150 FILLs of 16 MiB, posted.
FILL_SCRIPT = "#!/bin/sh\nset -- 0xfe01\n" + FIND + r"""
devmem $((bar0 + 0x18)) 32 0x0       # DMA_DST
devmem $((bar0 + 0x20)) 32 0x1000000 # DMA_LEN 16 MiB
i=0
while [ $i -lt 150 ]; do
	devmem $((bar0 + 0x24)) 32 0x11  # DMA_CMD: FILL | START
	i=$((i + 1))
done
echo "PCIEFW-STATUS: $(devmem $((bar0 + 0x28)) 32)"
"""


def peak_rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) // 1024
    raise AssertionError("no VmHWM")


def test_testdev_fill_storm(harness, tmp_path, asan_endpoint_binary):
    """Issue 11 item 4: 150 posted FILL commands of 16 MiB took the endpoint
    to 4.1 GiB.  Output above the queue cap stops the endpoint reading, so
    its memory stays bounded, and every FILL still completes."""
    ep = harness.endpoint(binary=asan_endpoint_binary)
    initrd = guestlib.make_initramfs(tmp_path, FILL_SCRIPT)
    path = ep.address[len("unix:"):]
    # The status read waits behind up to 2.4 GB of DMA writes (ordering):
    # on a loaded machine that takes longer than the default 5 s
    # completion timeout, which bounds liveness, not this volume.
    res = guestlib.boot_guest(harness.qemu_binary, initrd, [
        "-device", "pcie-root-port,id=rp0,slot=1",
        "-device", f"pciefw,bus=rp0,path={path},timeout=60000"], timeout=600)
    log = ep.output()
    assert ep.alive(), log[-6000:]
    peak = peak_rss_mib(ep.pid)
    # The cap is 4 MiB plus one request's 16 MiB; ASan's own overhead on top.
    assert peak < 256, f"endpoint peak RSS {peak} MiB"
    assert not memory_errors(log), log[-6000:]
    assert res.status == 0, res.describe()
    assert "PCIEFW-STATUS: 0x00000002" in res.console, res.describe()  # DONE
