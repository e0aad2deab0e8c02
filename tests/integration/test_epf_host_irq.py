"""What the host's software programmed in the function's MSI and MSI-X
capabilities and table, read back in the endpoint guest (issue 25 item 2;
docs/epc.md 3.4, 10.2; docs/protocol.md 12).

The endpoint guest runs pci-epf-test on pciefw_epc (4 MSI, 8 MSI-X
vectors), the host guest the kernel's pci_endpoint_test, which programs
them as pcitest -i asks; both guests run each command the test types
(epflib.guest_run).  In the endpoint guest a test helper module
(driver/pciefw_test_epc_irq.c) asks the controller through the 6.1 core's
own calls -- pci_epc_get_msi(), pci_epc_get_msix(), pci_epc_map_msi_irq()
-- and reads the function's MSI-X table from its BAR memory.  The test
reads the controller's HOST_* registers in the endpoint guest, and the
host guest's side from its config space (setpci) and its table through
its BAR (devmem on BARs their drivers hold: both guests boot with
iomem=relaxed).
"""

import re
import time

from epflib import (ENDPOINT_SHELL_SCRIPT, GUEST_DIR, HOST_SHELL_SCRIPT,
                    start_pair)
from test_epf_lifecycle import finish, ok, pcitest

HOST_BDF = "01:00.0"
HOST_DEV = "/sys/bus/pci/devices/0000:01:00.0"
HELPER = f"{GUEST_DIR}/pciefw_test_epc_irq.ko"
PREFIX = "pciefw_test_epc_irq: "
MSI, MSIX = 4, 8


def pair(harness, tmp_path):
    """Both guests at their shells; the host gets its 4 MSI vectors through
    interrupt remapping (docs/epc.md 8).  (endpoint guest, host guest, the
    controller's name)."""
    ep, host = start_pair(harness, tmp_path, HOST_SHELL_SCRIPT,
                          host_args=["-device", "intel-iommu,intremap=on"],
                          host_append="iomem=relaxed", msi=MSI, msix=MSIX,
                          ep_script=ENDPOINT_SHELL_SCRIPT,
                          ep_append="iomem=relaxed")
    epc = ep.wait_for(r"^PCIEFW-EPC (\S+)\n", timeout=60, from_start=True)
    host.wait_for(r"^PCIEFW-HOST-READY", timeout=300)
    return ep, host, epc.group(1)


def helper(ep, epc, args):
    """Load the test helper with @args, unload it: its dmesg lines."""
    before = len(helper_lines(ep))
    ok(ep, f"insmod {HELPER} epc={epc} {args} && rmmod pciefw_test_epc_irq")
    lines = helper_lines(ep)[before:]
    assert lines and lines[-1] == "done", lines
    return lines


def helper_lines(ep):
    out = ok(ep, f"dmesg | grep '{PREFIX}' || true")
    return [line.split(PREFIX, 1)[1] for line in out.splitlines()]


def epc_regs(ep, epc, offsets):
    """The controller's registers at @offsets (docs/epc.md), by devmem."""
    out = ok(ep, f"b=$(( $(cut -d' ' -f1 /sys/bus/pci/devices/{epc}/resource"
                 " | head -n1) )); for o in " + " ".join(map(str, offsets)) +
                 "; do devmem $((b + o)) 32; done")
    return [int(v, 16) for v in out.split()]


def host_cfg(host, *regs):
    """setpci reads in the host guest, e.g. "CAP_MSI+4.l"."""
    out = ok(host, f"setpci -s {HOST_BDF} " + " ".join(regs))
    return [int(v, 16) for v in out.split()]


def host_irq_counts(host):
    """{irq: count} of the function's MSI/MSI-X vectors, in vector order."""
    irqs = sorted(int(i) for i in ok(host, f"ls {HOST_DEV}/msi_irqs").split())
    counts = {}
    for line in ok(host, "cat /proc/interrupts").splitlines():
        m = re.match(r"^\s*(\d+):((?:\s+\d+)+)", line)
        if m and int(m.group(1)) in irqs:
            counts[int(m.group(1))] = sum(map(int, m.group(2).split()))
    return [counts[i] for i in irqs]


def host_msix_table(host):
    """The host's MSI-X table, read through its BAR: [(address, data,
    control)]."""
    (table,) = host_cfg(host, "CAP_MSIX+4.l")
    bir, off = table & 7, table & ~7
    out = ok(host, f"b=$(( $(sed -n {bir + 1}p {HOST_DEV}/resource | cut -d' ' -f1)"
                   f" + {off} )); i=0; while [ $i -lt {MSIX * 4} ]; do "
                   "devmem $((b + 4 * i)) 32; i=$((i + 1)); done")
    d = [int(v, 16) for v in out.split()]
    return [(d[4 * v] | d[4 * v + 1] << 32, d[4 * v + 2], d[4 * v + 3])
            for v in range(MSIX)]


def test_endpoint_guest_reads_what_the_host_programmed(harness, tmp_path):
    """MSI (pcitest -i 1): get_msi counts the vectors the host enabled, the
    HOST_* registers hold its address and data, map_msi_irq maps that
    address and gives its data, and a write through the mapping raises the
    chosen vector in the host guest (/proc/interrupts).  Legacy (-i 0):
    get_msi says 0.  MSI-X (-i 2): get_msix counts the table, and the
    function's table in its BAR memory holds exactly what the host's
    kernel wrote into its own; pcitest -x, which pci-epf-test checks
    against get_msix, works."""
    ep, host, epc = pair(harness, tmp_path)

    assert pcitest(host, "-i 1") == "OKAY"
    flags, lo, hi, data = host_cfg(host, "CAP_MSI+2.w", "CAP_MSI+4.l",
                                   "CAP_MSI+8.l", "CAP_MSI+0xc.w")
    assert flags & 1 and (flags >> 4) & 7 == 2, hex(flags)   # 4 enabled
    assert epc_regs(ep, epc, [0x80, 0x84, 0x88, 0x8C, 0x94]) == \
        [1 | MSI << 8, lo, hi, data, 0]
    before = host_irq_counts(host)
    assert len(before) == MSI, before
    lines = helper(ep, epc, "op=msi vector=2")
    assert lines[0] == f"msi vectors {MSI}", lines
    m = re.match(r"map_msi_irq 0 data (0x[0-9a-f]+|0) offset (0x[0-9a-f]+|0)$",
                 lines[1])
    assert m, lines
    assert int(m.group(1), 16) == data & ~(MSI - 1), (lines, hex(data))
    assert int(m.group(2), 16) == lo & 0xFFF, (lines, hex(lo))
    assert lines[2] == "raised vector 2", lines
    print(f"host MSI address {hi:#x}:{lo:#x} data {data:#x};", *lines[:3],
          sep="\n  ")
    deadline = time.monotonic() + 60
    while True:
        after = host_irq_counts(host)
        if after[2] > before[2] or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert after[2] == before[2] + 1, (before, after)
    assert [after[v] for v in (0, 1, 3)] == [before[v] for v in (0, 1, 3)]

    assert pcitest(host, "-i 0") == "OKAY"
    assert helper(ep, epc, "op=msi")[0] == "msi vectors 0"
    assert epc_regs(ep, epc, [0x80]) == [0]

    assert pcitest(host, "-i 2") == "OKAY"
    (table,) = epc_regs(ep, epc, [0x58])            # FN_MSIX_TABLE
    lines = helper(ep, epc, f"op=msix bar={table & 7} offset={table & ~7} "
                            f"entries={MSIX}")
    assert lines[0] == f"msix vectors {MSIX}", lines
    theirs = host_msix_table(host)
    assert all(ctrl == 0 for _, _, ctrl in theirs), theirs   # all in use
    ours = []
    for line in lines[1:1 + MSIX]:
        m = re.match(r"msix entry (\d+) address (\S+) data (\S+) control (\S+)$",
                     line)
        assert m, lines
        ours.append(tuple(int(v, 16) for v in m.groups()[1:]))
    assert ours == theirs, (ours, theirs)
    print("host MSI-X table, as the function's memory holds it:",
          [(hex(a), hex(d), c) for a, d, c in ours])
    assert epc_regs(ep, epc, [0x80, 0x94]) == [0, 1]
    assert helper(ep, epc, "op=msi")[0] == "msi vectors 0"
    assert pcitest(host, "-x 3") == "OKAY"

    ep_res, host_res = finish(ep, host)
    assert "PCIEFW-DMESG-PROBLEMS: 0\n" in host_res.console, host_res.describe()
    assert "PCIEFW-DMESG-PROBLEMS: 0\n" in ep_res.console, ep_res.describe()
