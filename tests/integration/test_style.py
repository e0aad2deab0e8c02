"""Coding style: the Linux driver passes the kernel's checkpatch, the QEMU
device passes QEMU's (as it would have to, to be proposed upstream)."""

import os
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run(args):
    return subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=600)


def test_driver_checkpatch():
    r = run([os.path.join(REPO, "driver", "get-checkpatch.sh")])
    assert r.returncode == 0, r.stdout[-2000:]
    checkpatch = r.stdout.strip().splitlines()[-1]
    names = [os.path.join(d, f) for d in ("", "epf")
             for f in sorted(os.listdir(os.path.join(REPO, "driver", d)))
             if f.endswith((".c", ".h"))]
    assert "pciefw_epc_main.c" in names and "epf/pci_endpoint_main.c" in names
    for name in names:
        r = run([checkpatch, "--no-tree", "--strict", "-f",
                 os.path.join(REPO, "driver", name)])
        assert r.returncode == 0, r.stdout
        assert "total: 0 errors, 0 warnings, 0 checks" in r.stdout, r.stdout


def test_qemu_device_checkpatch(qemu_binary):
    r = run([os.path.join(REPO, "qemu-pciefw", "build-qemu.sh"), "--print-source"])
    assert r.returncode == 0, r.stdout
    checkpatch = os.path.join(r.stdout.strip().splitlines()[-1], "scripts",
                              "checkpatch.pl")
    device_dir = os.path.join(REPO, "qemu-pciefw", "hw", "pciefw")
    sources = sorted(f for f in os.listdir(device_dir) if f.endswith((".c", ".h")))
    assert "pciefw.c" in sources, sources
    for name in sources:
        r = run([checkpatch, "--no-tree", "-f", os.path.join(device_dir, name)])
        assert r.returncode == 0, name + ":\n" + r.stdout
        assert "total: 0 errors, 0 warnings" in r.stdout, name + ":\n" + r.stdout
