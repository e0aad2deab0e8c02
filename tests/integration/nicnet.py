"""Host-side helpers for the NIC end-to-end tests: the driver module, the
guest's shell snippets, and TCP peers that check transfers by digest."""

from __future__ import annotations

import hashlib
import os
import re
import socket
import subprocess
import threading
from pathlib import Path

import guestlib

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
DRIVER_KO = "/lib/modules/extra/pciefw_nic.ko"
# The image's own udhcpc event script (tests/guest/udhcpc.script).
UDHCPC = "/etc/udhcpc/default.script"


def driver_module() -> str:
    """Build driver/pciefw_nic.ko (out of the source tree) and return it."""
    path = os.environ.get("PCIEFW_DRIVER")
    if path:
        return path
    r = subprocess.run([str(REPO / "driver" / "build.sh")], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True)
    if r.returncode:
        raise RuntimeError("building the driver failed:\n" + r.stderr[-4000:])
    return r.stdout.strip().splitlines()[-1]


def guest_files() -> dict[str, str]:
    return {driver_module(): DRIVER_KO}


def kernel_modules(*names: str) -> tuple[dict[str, str], list[str]]:
    """Modules of the guest kernel that the base image lacks (e.g. 8021q),
    with their dependencies: ({host .ko: guest path}, guest paths in load
    order). They come from the unpacked kernel package (GUEST_KERNEL_TREE)."""
    env = guestlib.build_guest_env()
    root = Path(env["GUEST_KERNEL_TREE"]) / "lib" / "modules" / env["GUEST_KVER"] / "kernel"
    files, order = {}, []

    def add(name):
        name = name.replace("-", "_")
        found = [p for p in root.rglob("*.ko")
                 if p.stem.replace("-", "_") == name]
        if len(found) != 1:
            raise RuntimeError(f"guest kernel module {name}: found {found}")
        dest = f"/lib/modules/extra/{name}.ko"
        if dest in order:
            return
        deps = subprocess.run(["modinfo", "-F", "depends", str(found[0])], check=True,
                              stdout=subprocess.PIPE, text=True).stdout.strip()
        for dep in filter(None, deps.split(",")):
            add(dep)
        if dest not in order:
            files[str(found[0])] = dest
            order.append(dest)

    for n in names:
        add(n)
    return files, order


def nic_device_args(endpoint_address: str, props: str = "") -> list[str]:
    """QEMU arguments: the pciefw device behind a PCIe root port; ``props``
    adds device properties (e.g. "reconnect=1")."""
    path = endpoint_address[len("unix:"):]
    extra = f",{props}" if props else ""
    return ["-device", "pcie-root-port,id=rp0,slot=1",
            "-device", f"pciefw,bus=rp0,path={path}{extra}"]


class _Peer:
    """A host process end on an ephemeral loopback port, serving one
    connection from the guest in a thread (the guest sees 10.0.2.2)."""

    def __init__(self, size: int):
        self.size = size
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(1)
        self.sock.settimeout(600)
        self.port = self.sock.getsockname()[1]
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        raise NotImplementedError


class Sink(_Peer):
    """Accepts one TCP connection, reads exactly ``size`` bytes, digests them."""

    def __init__(self, size: int):
        super().__init__(size)
        self.digest = None
        self.received = 0
        self.thread.start()

    def _run(self):
        try:
            conn, _ = self.sock.accept()
            h = hashlib.md5()
            with conn:
                conn.settimeout(120)
                while self.received < self.size:
                    data = conn.recv(1 << 16)
                    if not data:
                        break
                    h.update(data)
                    self.received += len(data)
            self.digest = h.hexdigest()
        except Exception as e:  # reported by the test
            self.error = e
        finally:
            self.sock.close()

    def join(self, timeout):
        self.thread.join(timeout)
        return self.digest


class Source(_Peer):
    """Accepts one TCP connection and sends ``size`` random bytes."""

    def __init__(self, size: int):
        super().__init__(size)
        self.sent = 0
        self.data = os.urandom(size)
        self.digest = hashlib.md5(self.data).hexdigest()
        self.thread.start()

    def _run(self):
        try:
            conn, _ = self.sock.accept()
            with conn:
                conn.settimeout(120)
                view = memoryview(self.data)
                while self.sent < self.size:
                    self.sent += conn.send(view[self.sent:self.sent + (1 << 16)])
                conn.shutdown(socket.SHUT_WR)
        except Exception as e:
            self.error = e
        finally:
            self.sock.close()

    def join(self, timeout):
        self.thread.join(timeout)


def both_ways(sink: Sink, source: Source, mib: int) -> str:
    """Guest shell lines: @mib MiB of random bytes to @sink, then @source's
    bytes in, each side's MD5 on the console (check_both_ways)."""
    return f"""dd if=/dev/urandom of=/tmp/out bs=1M count={mib} 2>/dev/null
echo "PCIEFW-OUT-MD5: $(md5sum /tmp/out | cut -d' ' -f1)"
nc 10.0.2.2 {sink.port} < /tmp/out || echo "PCIEFW-OUT-NC: failed"
rm /tmp/out
nc 10.0.2.2 {source.port} > /tmp/in || echo "PCIEFW-IN-NC: failed"
echo "PCIEFW-IN-MD5: $(md5sum /tmp/in | cut -d' ' -f1)"
rm /tmp/in
"""


def check_both_ways(res, sink: Sink, source: Source) -> None:
    """Both directions of a both_ways() run arrived whole: all the bytes,
    and the digests agree at both ends.  @res: the guest's result."""
    assert sink.join(60) is not None, sink.error
    source.join(60)
    out = re.search(r"PCIEFW-OUT-MD5: ([0-9a-f]{32})", res.console)
    inn = re.search(r"PCIEFW-IN-MD5: ([0-9a-f]{32})", res.console)
    assert out and inn, res.describe()
    assert sink.received == sink.size and out.group(1) == sink.digest, \
        res.describe()
    assert source.sent == source.size and inn.group(1) == source.digest, \
        res.describe()
