"""The NIC's TAP backend (docs/nic.md section 7): the endpoint runs in a
network namespace of the test's own, its TAP device gets an address there,
and the guest pings it through the pciefw NIC.  Nothing leaves that
namespace."""

import os
import shutil
import signal
import subprocess

import pytest

import guestlib
from nicnet import DRIVER_KO, guest_files, nic_device_args

NS_ADDR, GUEST_ADDR = "192.168.231.1", "192.168.231.2"


def sh(*args):
    subprocess.run(args, check=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


@pytest.mark.skipif(os.geteuid() != 0 or not os.path.exists("/dev/net/tun")
                    or not shutil.which("ip"), reason="needs root, TUN and ip(8)")
def test_ping_through_tap(harness, tmp_path, endpoint_binary):
    ns = f"pfns{os.getpid()}"
    sh("ip", "netns", "add", ns)
    ep = None
    try:
        sock = harness.path("tap.sock")
        log = open(harness.path("tap.log"), "wb")
        # `ip netns exec` execs the endpoint: ep.pid is the endpoint's.
        ep = subprocess.Popen(["ip", "netns", "exec", ns, endpoint_binary,
                               "--listen", f"unix:{sock}", "--device",
                               "nic,backend=tap,ifname=pftap0"],
                              stdout=subprocess.PIPE, stderr=log)
        assert ep.stdout.readline().startswith(b"listening on "), \
            open(harness.path("tap.log")).read()
        sh("ip", "netns", "exec", ns, "ip", "addr", "add", f"{NS_ADDR}/24",
           "dev", "pftap0")
        sh("ip", "netns", "exec", ns, "ip", "link", "set", "pftap0", "up")
        script = f"""#!/bin/sh
insmod {DRIVER_KO} || exit 10
ip link set eth0 up
ip addr add {GUEST_ADDR}/24 dev eth0
ping -c 5 -w 30 {NS_ADDR} || exit 11
"""
        initrd = guestlib.make_initramfs(tmp_path, script, guest_files())
        res = guestlib.boot_guest(harness.qemu_binary, initrd,
                                  nic_device_args(f"unix:{sock}"), timeout=120)
        assert res.status == 0, res.describe()
        assert "5 packets received" in res.console
    finally:
        if ep is not None and ep.poll() is None:
            os.kill(ep.pid, signal.SIGTERM)
            ep.wait(10)
        if ep is not None:
            ep.stdout.close()
        subprocess.run(["ip", "netns", "del", ns])
