"""What a guest on the nic's default slirp backend can reach (docs/nic.md
section 7, issue 11 items 2 and 10), with a real guest, our driver, the real
QEMU pciefw device and the endpoint:

- by default the guest cannot open a TCP connection to a listener on the
  host's 127.0.0.1 through 10.0.2.2 (other endpoints listen there);
  ``host-loopback=on`` allows it;
- ``hostfwd`` forwards into the guest work either way;
- a guest with hundreds of connections open does not starve slirp's older
  sockets, the ``hostfwd`` listener among them.
"""

import socket
import threading

import pytest

import guestlib
from nicnet import DRIVER_KO, UDHCPC, guest_files, nic_device_args

MAC = "52:54:00:a1:b2:c4"
GUEST_PORT = 7777

BRING_UP = f"""#!/bin/sh
insmod {DRIVER_KO} irq_mode=msix || exit 10
ip link set eth0 up || exit 11
udhcpc -i eth0 -n -q -t 10 -T 1 -s {UDHCPC} || exit 12
"""

# The guest takes one forwarded connection and prints what came.
FORWARDED = f"""
sleep 600 | nc -l -p {GUEST_PORT} > /tmp/fwd &
# Listening (state 0A; busybox nc may take IPv6) before the host connects.
until grep -q ":{GUEST_PORT:04X} [0-9A-F]*:0000 0A" /proc/net/tcp /proc/net/tcp6; do
	sleep 0.1
done
echo "PCIEFW-LISTENING"
read -r go
i=0
while [ ! -s /tmp/fwd ] && [ $i -lt 60 ]; do sleep 1; i=$((i + 1)); done
echo "PCIEFW-FWD: $(cat /tmp/fwd)"
"""


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Listener(threading.Thread):
    """A TCP listener on the host's 127.0.0.1: counts the connections it
    accepts and keeps what the first one sends."""

    def __init__(self):
        super().__init__(daemon=True)
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(512)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.data = b""
        self.conns = []
        self.cond = threading.Condition()
        self.start()

    def run(self):
        try:
            while True:
                conn, _ = self.sock.accept()
                if not self.accepted:
                    # The first one sends a line and waits for our close.
                    conn.settimeout(10)
                    try:
                        self.data = conn.recv(100)
                    except OSError:
                        pass
                    conn.close()
                    conn = None
                with self.cond:
                    if conn:
                        self.conns.append(conn)
                    self.accepted += 1
                    self.cond.notify_all()
        except OSError:
            pass                          # closed by the test

    def wait_accepted(self, n, timeout):
        with self.cond:
            self.cond.wait_for(lambda: self.accepted >= n, timeout)
            return self.accepted

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


def forward_into_guest(port):
    with socket.create_connection(("127.0.0.1", port), timeout=30) as c:
        c.sendall(b"hello-guest\n")


def run_guest(harness, tmp_path, device, body, steps):
    """Boot the guest; @steps(guest) plays the host's part."""
    ep = harness.endpoint(name="nic", device=device)
    initrd = guestlib.make_initramfs(tmp_path, BRING_UP + body, guest_files())
    with guestlib.Guest(harness.qemu_binary, initrd, nic_device_args(ep.address),
                        memory=768) as g:
        steps(g)
        res = g.wait(timeout=300)
    assert ep.alive(), ep.output()[-4000:]
    return res


@pytest.mark.parametrize("loopback", ["default", "on"])
def test_host_loopback(harness, tmp_path, loopback):
    host = Listener()
    fwd = free_port()
    device = f"nic,mac={MAC},hostfwd=tcp:127.0.0.1:{fwd}-:{GUEST_PORT}"
    if loopback == "on":
        device += ",host-loopback=on"
    body = f"""
if echo hello-host | nc -w 10 10.0.2.2 {host.port}; then
	echo "PCIEFW-NC: ok"
else
	echo "PCIEFW-NC: failed"
fi
""" + FORWARDED

    def steps(g):
        g.wait_for(r"^PCIEFW-LISTENING", timeout=300)
        forward_into_guest(fwd)
        g.send("go\n")

    try:
        res = run_guest(harness, tmp_path, device, body, steps)
    finally:
        host.close()
    assert res.status == 0, res.describe()
    assert "PCIEFW-FWD: hello-guest" in res.console, res.describe()
    if loopback == "on":
        assert "PCIEFW-NC: ok" in res.console, res.describe()
        assert host.accepted == 1 and host.data == b"hello-host\n", host.data
    else:
        assert "PCIEFW-NC: failed" in res.console, res.describe()
        assert host.accepted == 0


def test_many_connections_do_not_starve_hostfwd(harness, tmp_path):
    """320 connections from the guest: slirp's poll table held 256, the
    newest first, so the hostfwd listener (the oldest socket) was never
    polled again and forwards into the guest hung."""
    n = 320
    host = Listener()
    fwd = free_port()
    device = (f"nic,mac={MAC},host-loopback=on,"
              f"hostfwd=tcp:127.0.0.1:{fwd}-:{GUEST_PORT}")
    body = f"""
i=0
while [ $i -lt {n} ]; do
	sleep 600 | nc 10.0.2.2 {host.port} > /dev/null &
	i=$((i + 1))
done
echo "PCIEFW-OPENED"
read -r go
""" + FORWARDED

    def steps(g):
        g.wait_for(r"^PCIEFW-OPENED", timeout=300)
        assert host.wait_accepted(n, 300) == n
        g.send("go\n")
        g.wait_for(r"^PCIEFW-LISTENING", timeout=120)
        forward_into_guest(fwd)
        g.send("go\n")

    try:
        res = run_guest(harness, tmp_path, device, body, steps)
    finally:
        host.close()
    assert res.status == 0, res.describe()
    assert "PCIEFW-FWD: hello-guest" in res.console, res.describe()
