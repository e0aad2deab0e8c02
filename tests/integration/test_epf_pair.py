"""The Linux PCI endpoint framework end to end (issue 16, docs/epc.md).

The endpoint guest runs the framework, our pciefw_epc driver on QEMU's
pciefw-epc device and the kernel's pci-epf-test function, configured and
started through configfs as Documentation/PCI/endpoint/pci-test-howto.rst
says.  A second QEMU, the host, meets that function through its ordinary
pciefw device once the endpoint guest has started the link; its guest runs
the kernel's pci_endpoint_test driver and pcitest, both unchanged.
"""

import re
import signal
import subprocess

import guestlib
from epflib import (EPC_READ_AHEAD, HOST_PCITEST_ARGS, PCITEST_SH_SCRIPT,
                    pcitest_sh_expected, pcitest_sh_results, pcitest_sh_times,
                    start_endpoint, start_pair)

# The function goes away and comes back under the host guest's feet.
LINK_SCRIPT = r"""#!/bin/sh
insmod /lib/modules/epf/pci_endpoint_test.ko || exit 10
dev=/sys/bus/pci/devices/0000:01:00.0
echo "PCIEFW-UP: $(pcitest -b 0 2>&1 | tr '\n' ' ')"
read go
echo "PCIEFW-DOWN: $(pcitest -b 0 2>&1 | tr '\n' ' ')"
echo "PCIEFW-DOWN-VENDOR: $(cat $dev/vendor)"
read go
i=0
until pcitest -b 0 2>&1 | grep -q '	OKAY'; do
	i=$((i + 1)); [ $i -le 60 ] || break; sleep 1
done
echo "PCIEFW-BACK: $(pcitest -b 0 2>&1 | tr '\n' ' ')"
echo "PCIEFW-BACK-READ: $(pcitest -r -s 1024 2>&1 | tr '\n' ' ')"
@PROBLEMS@
"""


def okay(line):
    return re.search(r"\tOKAY $", line) is not None


def trace_text(path):
    """pciefw-trace's listing of @path (and its --stats run clean)."""
    tool = str(guestlib.REPO / "build" / "tools" / "pciefw-trace")
    r = subprocess.run([tool, "--stats", path], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True)
    assert r.returncode == 0, r.stdout
    r = subprocess.run([tool, path], stdout=subprocess.PIPE, text=True)
    assert r.returncode == 0
    return r.stdout


def test_pcitest_sh(harness, tmp_path):
    """The kernel's tools/pci/pcitest.sh, unchanged, in the host guest
    against pci-epf-test in the endpoint guest (32 MSI, 2048 MSI-X
    vectors): BARs 0-5, legacy IRQ, MSI 1-32, MSI-X 1-2048, reads, writes
    and copies of 1 byte to 1 MB, every line OKAY; no warning in either
    guest (docs/epc.md 8)."""
    ep, host = start_pair(harness, tmp_path, PCITEST_SH_SCRIPT,
                          host_args=HOST_PCITEST_ARGS, msix=2048,
                          read_ahead=EPC_READ_AHEAD)
    res = host.wait(timeout=1800)
    ep.send("end\n")
    ep_res = ep.wait(timeout=120)
    took = re.search(r"^PCIEFW-PCITEST-SH-TIME: (\d+) s$", res.console, re.M)
    print(f"pcitest.sh: {took.group(1) if took else '?'} s")
    assert res.status == 0, res.describe()
    assert "[104c:b500]" in res.console, res.describe()
    results = pcitest_sh_results(res.console)
    print("pcitest.sh, seconds:", pcitest_sh_times(results))
    labels = [label for label, _, _ in results]
    bad = [f"{label}: {result}" for label, result, _ in results
           if result != "OKAY"]
    assert labels == pcitest_sh_expected(), (len(labels), labels[:40])
    assert not bad, "\n".join(bad[:40])
    assert took, res.describe()
    assert "PCIEFW-DMESG-PROBLEMS: 0\n" in res.console, res.describe()
    assert ep_res.status == 0, ep_res.describe()
    assert "PCIEFW-DMESG-PROBLEMS: 0\n" in ep_res.console, ep_res.describe()


def test_link_down_and_back(harness, tmp_path):
    """`echo 0 > start` in the endpoint guest: the host guest keeps running
    and reads all ones (pcitest fails, config space stays); `echo 1 >
    start`: the host's pciefw reconnects (reconnect=1) and the function
    works again, without reloading anything in either guest."""
    trace = harness.path("host.pcapng")
    ep_trace = harness.path("ep.pcapng")
    ep, host = start_pair(harness, tmp_path, LINK_SCRIPT,
                          f",reconnect=1,trace={trace}",
                          ep_device_extra=f",trace={ep_trace}")
    up = host.wait_for(r"^PCIEFW-UP: (.*)\n", timeout=300)
    assert okay(up.group(1)), host.console
    ep.send("stop\n")
    ep.wait_for(r"^PCIEFW-EPC-STOPPED", timeout=60)
    host.send("go\n")
    down = host.wait_for(r"^PCIEFW-DOWN: (.*)\n", timeout=120)
    assert "NOT OKAY" in down.group(1), host.console
    host.wait_for(r"^PCIEFW-DOWN-VENDOR: 0x104c\n", timeout=60)
    ep.send("start\n")
    ep.wait_for(r"^PCIEFW-EPC-STARTED", timeout=60)
    host.send("go\n")
    res = host.wait(timeout=300)
    ep.send("end\n")
    ep_res = ep.wait(timeout=120)
    assert res.status == 0, res.describe()
    back = re.search(r"^PCIEFW-BACK: (.*)$", res.console, re.M)
    read = re.search(r"^PCIEFW-BACK-READ: (.*)$", res.console, re.M)
    assert back and okay(back.group(1)), res.describe()
    assert read and okay(read.group(1)), res.describe()
    assert "PCIEFW-DMESG-PROBLEMS: 0\n" in res.console, res.describe()
    assert "PCIEFW-DMESG-PROBLEMS: 0\n" in ep_res.console, ep_res.describe()
    assert "link down" in ep_res.console, ep_res.describe()

    # Both ends' traces open in pciefw-trace: two sessions each (the link
    # went down once), the host's BAR accesses and the function's
    # interrupts; the function's DMA into host memory (pcitest -r) went as
    # copies into the host's shared RAM (spec 10), which only the
    # endpoint's trace shows (10.5), and both sessions ran on the rings.
    host.stop()
    ep.stop()
    host_text, ep_text = trace_text(trace), trace_text(ep_trace)
    for text in (host_text, ep_text):
        assert len(re.findall(r"---  session: ", text)) == 2, text[:4000]
        assert text.count("session continues over shared-memory rings") == 2
        for d, kind in (("H>E", "mem_write"), ("H>E", "mem_read"),
                        ("E>H", "msi")):
            assert re.search(rf"{d}\s+{kind} ", text), (kind, text[:4000])
    assert re.search(r"E>H\s+dma_write .*\n.*shared memory: copied", ep_text)


def test_endpoint_killed_and_restarted(harness, tmp_path):
    """The endpoint QEMU SIGKILLed: the host guest keeps running with the
    device reading all ones; a new endpoint QEMU (a fresh endpoint guest
    that configures and starts the same function) brings it back."""
    ep, host = start_pair(harness, tmp_path, LINK_SCRIPT, ",reconnect=1")
    up = host.wait_for(r"^PCIEFW-UP: (.*)\n", timeout=300)
    assert okay(up.group(1)), host.console
    ep._signal_group(signal.SIGKILL)
    ep.stop()
    host.send("go\n")
    down = host.wait_for(r"^PCIEFW-DOWN: (.*)\n", timeout=120)
    assert "NOT OKAY" in down.group(1), host.console
    ep2 = start_endpoint(harness, tmp_path, "ep2")
    host.send("go\n")
    res = host.wait(timeout=300)
    ep2.send("end\n")
    ep_res = ep2.wait(timeout=120)
    assert res.status == 0, res.describe()
    back = re.search(r"^PCIEFW-BACK: (.*)$", res.console, re.M)
    read = re.search(r"^PCIEFW-BACK-READ: (.*)$", res.console, re.M)
    assert back and okay(back.group(1)), res.describe()
    assert read and okay(read.group(1)), res.describe()
    assert "PCIEFW-DMESG-PROBLEMS: 0\n" in res.console, res.describe()
    assert "PCIEFW-DMESG-PROBLEMS: 0\n" in ep_res.console, ep_res.describe()


TLS_SCRIPT = r"""#!/bin/sh
insmod /lib/modules/epf/pci_endpoint_test.ko || exit 10
for t in "-b 0" "-r -s 4096" "-w -s 4096" "-c -s 4096"; do
	echo "PCIEFW-T: pcitest $t: $(pcitest $t 2>&1 | tr '\n' ' ')"
done
@PROBLEMS@
"""


def test_pair_over_tls(harness, tmp_path):
    """The pair over TCP inside TLS (docs/protocol.md 1.5): pciefw-epc
    listens with server credentials, the host's pciefw connects with
    client credentials and checks the endpoint's certificate; BAR, read,
    write and copy tests pass across it."""
    import socket

    import tlscerts
    tlscerts.make_ca(tmp_path / "ca", "pciefw pair CA")
    tlscerts.issue(tmp_path / "ca", tmp_path / "ep-creds", "server")
    tlscerts.issue(tmp_path / "ca", tmp_path / "host-creds", "client")
    with socket.socket() as s:          # a free port for the endpoint
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ep, host = start_pair(
        harness, tmp_path, TLS_SCRIPT, sock=None,
        host_device_extra=f",raddr=127.0.0.1,rport={port},tls-creds=tls0",
        host_args=["-object", "tls-creds-x509,id=tls0,endpoint=client,"
                   f"dir={tmp_path / 'host-creds'}"],
        ep_device_extra=f"laddr=127.0.0.1,lport={port},tls-creds=tls0",
        ep_qemu_extra=["-object", "tls-creds-x509,id=tls0,endpoint=server,"
                       f"dir={tmp_path / 'ep-creds'}"])
    res = host.wait(timeout=600)
    ep.send("end\n")
    ep_res = ep.wait(timeout=120)
    assert res.status == 0, res.describe()
    results = re.findall(r"^PCIEFW-T: (pcitest [^:]*): (.*)$", res.console,
                         re.M)
    assert len(results) == 4, res.describe()
    for what, out in results:
        assert okay(out), (what, out)
    assert "PCIEFW-DMESG-PROBLEMS: 0\n" in res.console, res.describe()
    assert "PCIEFW-DMESG-PROBLEMS: 0\n" in ep_res.console, ep_res.describe()
