"""The endpoint controller's lifecycle and faults across two guests (issue
25; docs/epc.md 3.2, 10, 11).

The endpoint guest runs pci-epf-test on pciefw_epc, the host guest the
kernel's pci_endpoint_test; both guests run each command the test types
(epflib.guest_run).  Each test says what each guest sees when the function
or its controller goes away under the host: freed memory is never reached,
a function linked again serves its new memory, nothing stays pinned, and
no host waits longer than 6.1's pci_endpoint_test itself makes it wait.
"""

import re
import signal

from epflib import (ENDPOINT_SHELL_SCRIPT, EP, HOST_SHELL_SCRIPT, guest_run,
                    start_pair, wait_stderr)

FUNC = f"{EP}/functions/pci_epf_test/func1"
# The host guest's view of BAR0 through /dev/mem (pci_endpoint_test
# unbound first: the kernel refuses /dev/mem on a claimed BAR).
HOST_DEV = "/sys/bus/pci/devices/0000:01:00.0"
HOST_BAR0 = f"BAR=$(( $(cut -d' ' -f1 {HOST_DEV}/resource | head -n1) ))"
HOST_DRV = "/sys/bus/pci/drivers/pci-endpoint-test"
# The host's pcitest in the background: its pid and, when it ends, its line.
BG = "pcitest {} > /tmp/bg.log 2>&1 & echo $! > /tmp/bg.pid"
# The host's pciefw for the faults mid-transfer: its memory not shared, so
# that the function's writes are DmaWrites (traced as the host takes them),
# slow enough to be caught in the middle; by copies (protocol 10) 4 MB are
# over before the endpoint guest's shell gets to act.
MESSAGES_ONLY = ",reconnect=1,guest-memory=off"


def pair(harness, tmp_path, host_device_extra=",reconnect=1", host_args=(),
         **kw):
    """Both guests at their shells, the function linked and started:
    (endpoint guest, host guest, the controller's configfs directory)."""
    ep, host = start_pair(harness, tmp_path, HOST_SHELL_SCRIPT,
                          host_device_extra, host_args, msi=1, msix=8,
                          ep_script=ENDPOINT_SHELL_SCRIPT, **kw)
    epc = ep.wait_for(r"^PCIEFW-EPC (\S+)\n", timeout=60, from_start=True)
    host.wait_for(r"^PCIEFW-HOST-READY", timeout=300)
    return ep, host, f"{EP}/controllers/{epc.group(1)}"


def ok(guest, cmd, timeout=120):
    rc, out = guest_run(guest, cmd, timeout)
    assert rc == 0, f"{cmd}: {rc}\n{out}"
    return out


def pcitest(host, args, timeout=120):
    """pcitest's verdict line ("OKAY", "NOT OKAY")."""
    out = guest_run(host, f"pcitest {args}", timeout)[1]
    m = re.search(r":\s+((?:NOT )?OKAY)\s*$", out, re.M)
    assert m, out
    return m.group(1)


def bg_state(host):
    """The background pcitest's state letter (/proc/PID/stat), or "gone"."""
    out = guest_run(host, "cat /proc/$(cat /tmp/bg.pid)/stat 2>/dev/null "
                    "|| echo gone")[1]
    return "gone" if out == "gone" else out.split(") ")[1].split()[0]


def finish(ep, host):
    """End both guests; their dmesg's count of warnings (after each's own
    shell loop ends) comes back with the consoles."""
    host.send("end\n")
    host_res = host.wait(timeout=120)
    ep.send("end\n")
    ep_res = ep.wait(timeout=120)
    return ep_res, host_res


def warnings_at(guest):
    """The functions that raised the WARNINGs in a guest's dmesg (the
    console shows none: quiet)."""
    out = guest_run(guest, "dmesg | grep 'WARNING: CPU' || true")[1]
    return re.findall(r"WARNING: CPU: \d+ PID: \d+ at \S+ (\w+)", out)


def test_unlink_and_relink_while_the_host_uses_it(harness, tmp_path):
    """The function is unlinked (echo 0 > start not done first) while the
    host's pcitest -r has it write the host's buffer: the unlink waits for
    that command, whose interrupt reaches the host, so its pcitest returns
    (OKAY if it read the result registers before they went, else NOT OKAY;
    without the pci-epf-test fix the endpoint guest panicked), then the
    BARs' memory is freed and the host
    reads all ones from BAR0 and writes nothing into it.  Linked again, the
    function's new (zeroed) BARs reach the host at once, and it serves
    pcitest.  The endpoint guest's only warning is pci-ep-cfs's own for a
    link dropped while started."""
    ep, host, ctrl = pair(harness, tmp_path, MESSAGES_ONLY,
                          ["-trace", "pciefw_dma_write"],
                          ep_qemu_extra=["-smp", "2"])
    assert pcitest(host, "-b 0") == "OKAY"
    ok(host, BG.format("-r -s 4000000"))
    wait_stderr(host, r"pciefw_dma_write ")        # the function is writing
    ok(ep, f"rm {ctrl}/func1")
    ok(host, "while [ ! -s /tmp/bg.log ]; do sleep 0.2; done")
    assert re.search(r"READ \(4000000 bytes\):\s+(NOT )?OKAY",
                     ok(host, "cat /tmp/bg.log"))
    assert pcitest(host, "-b 0") == "NOT OKAY"
    ok(host, f"echo 0000:01:00.0 > {HOST_DRV}/unbind")
    out = ok(host, f"{HOST_BAR0}; devmem $BAR 32; devmem $BAR 32 0x12345678; "
                   "devmem $BAR 32")
    assert out.split() == ["0xFFFFFFFF", "0xFFFFFFFF"], out

    ok(ep, f"ln -s {FUNC} {ctrl}/")
    assert ok(host, f"{HOST_BAR0}; devmem $BAR 32") == "0x00000000"
    ok(host, f"echo 0000:01:00.0 > {HOST_DRV}/bind")
    assert pcitest(host, "-b 0") == "OKAY"
    assert pcitest(host, "-r -s 1024") == "OKAY"

    assert warnings_at(ep) == ["pci_epc_epf_unlink"]
    ep_res, host_res = finish(ep, host)
    assert "PCIEFW-DMESG-PROBLEMS: 0\n" in host_res.console, host_res.describe()
    assert "PCIEFW-DMESG-PROBLEMS: 1\n" in ep_res.console, ep_res.describe()


def test_controller_unbind_and_rmmod_leave_nothing_pinned(harness, tmp_path):
    """Unbinding pciefw_epc while its function is linked, started and used
    unlinks the function first: the host reads all ones, the controller's
    configfs group goes, and func1 is whole: bound again to the controller
    probed anew, it serves the host (which reconnects).  rmmod pciefw_epc
    is refused while pci-epf-test holds the controller's DMA channel (it
    takes it at bind), and succeeds once the function is unlinked;
    afterwards func1 can be removed and pci_epf_test unloaded, and rmmod
    also succeeds right after insmod.  No warning in either guest."""
    ep, host, ctrl = pair(harness, tmp_path)
    bdf = ctrl.rsplit("/", 1)[1]
    drv = "/sys/bus/pci/drivers/pciefw_epc"
    assert pcitest(host, "-b 0") == "OKAY"
    out = ok(ep, f"echo {bdf} > {drv}/unbind; ls {EP}/controllers | wc -l; "
                 f"dmesg | grep 'controller going'")
    assert out.splitlines()[0] == "0", out
    assert f"unlinking {bdf}/func1" in out, out
    assert pcitest(host, "-b 0") == "NOT OKAY"

    ok(ep, f"echo {bdf} > {drv}/bind && ln -s {FUNC} {ctrl}/ && "
           f"echo 1 > {ctrl}/start")
    ok(host, "i=0; until pcitest -b 0 | grep -q '	OKAY'; do "
             "i=$((i + 1)); [ $i -le 60 ] || exit 1; sleep 1; done")
    assert pcitest(host, "-r -s 1024") == "OKAY"

    rc, out = guest_run(ep, "rmmod pciefw_epc")
    assert rc != 0 and "unavailable" in out, out
    assert pcitest(host, "-b 0") == "OKAY"
    ok(ep, f"echo 0 > {ctrl}/start && rm {ctrl}/func1 && rmmod pciefw_epc")
    assert pcitest(host, "-b 0") == "NOT OKAY"
    ok(ep, f"rmdir {FUNC} && rmmod pci_epf_test")
    ok(ep, "insmod /lib/modules/epf/pciefw_epc.ko && rmmod pciefw_epc")

    ep_res, host_res = finish(ep, host)
    assert "PCIEFW-DMESG-PROBLEMS: 0\n" in host_res.console, host_res.describe()
    assert "PCIEFW-DMESG-PROBLEMS: 0\n" in ep_res.console, ep_res.describe()


def test_link_stopped_mid_transfer(harness, tmp_path):
    """echo 0 > start while the function writes the host's buffer (pcitest
    -r; its posted writes leave the endpoint guest's shell room to run,
    where a read through the window holds the endpoint QEMU's lock for
    each round trip): the function finishes its command with its writes
    dropped, and its interrupt is not sent (raise_irq: -ENOLINK); the host
    reads all ones, keeps its config space, and its pcitest waits in D
    state for the interrupt that never comes (6.1's pci_endpoint_test has
    no timeout), also after the link comes back and the host's pciefw
    reconnects.  No warning in either guest."""
    ep, host, ctrl = pair(harness, tmp_path, MESSAGES_ONLY,
                          ["-trace", "pciefw_dma_write"],
                          ep_qemu_extra=["-smp", "2"])
    ok(host, BG.format("-r -s 4000000"))
    wait_stderr(host, r"pciefw_dma_write ")        # the function is writing
    ok(ep, f"echo 0 > {ctrl}/start")
    ok(ep, "until dmesg | grep -q 'WRITE => Size: 4000000'; do sleep 0.2; "
           "done")
    assert bg_state(host) == "D"
    assert ok(host, "cat /tmp/bg.log") == ""
    assert ok(host, f"cat {HOST_DEV}/vendor") == "0x104c"
    ok(ep, f"echo 1 > {ctrl}/start")
    wait_stderr(host, r"reconnected to endpoint")
    assert bg_state(host) == "D"
    assert "link down" in ok(ep, "dmesg | grep pciefw_epc")

    ep_res, host_res = finish(ep, host)
    assert "PCIEFW-DMESG-PROBLEMS: 0\n" in ep_res.console, ep_res.describe()
    assert "PCIEFW-DMESG-PROBLEMS: 0\n" in host_res.console, host_res.describe()


def test_endpoint_killed_mid_read(harness, tmp_path):
    """The endpoint QEMU SIGKILLed while the function writes the host's
    buffer (pcitest -r): the host's pciefw reports the endpoint gone, the
    device reads all ones with its config space intact, the host guest runs
    on, and its pcitest waits in D state (6.1's pci_endpoint_test has no
    timeout).  No warning in the host guest."""
    ep, host, ctrl = pair(harness, tmp_path, ",guest-memory=off",
                          ["-trace", "pciefw_dma_write"], read_ahead=4096)
    ok(host, BG.format("-r -s 4000000"))
    wait_stderr(host, r"pciefw_dma_write ")        # the function is writing
    ep._signal_group(signal.SIGKILL)
    ep.stop()
    wait_stderr(host, r"pciefw: endpoint \S+: .*reads return all ones")
    assert bg_state(host) == "D"
    assert ok(host, "cat /tmp/bg.log") == ""
    assert ok(host, f"cat {HOST_DEV}/vendor") == "0x104c"
    host.send("end\n")
    host_res = host.wait(timeout=120)
    assert "PCIEFW-DMESG-PROBLEMS: 0\n" in host_res.console, host_res.describe()
