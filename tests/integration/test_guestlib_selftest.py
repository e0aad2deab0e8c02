"""Self-test of the guest image and guestlib: boots a real guest.

Skipped unless PCIEFW_QEMU names a qemu-system-x86_64 binary, e.g.
    PCIEFW_QEMU=/path/to/qemu-system-x86_64 /usr/bin/python3 -m pytest tests/integration
"""

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import guestlib  # noqa: E402

QEMU = os.environ.get("PCIEFW_QEMU", "")

pytestmark = pytest.mark.skipif(
    not (QEMU and os.access(QEMU, os.X_OK)),
    reason="set PCIEFW_QEMU to a qemu-system-x86_64 binary to boot guests",
)


def test_boot_runs_lspci(tmp_path):
    initrd = guestlib.make_initramfs(tmp_path, "lspci\n")
    res = guestlib.boot_guest(QEMU, initrd, timeout=120)
    assert guestlib.INIT_MARKER in res.console, res.describe()
    assert res.status == 0, res.describe()
    assert "Host bridge" in res.console, res.describe()


def test_interactive_wait_for_and_send(tmp_path):
    # The guest waits for a line typed on its console by the host.
    script = 'echo "GUEST-READY"; read -r word; echo "GUEST-GOT <$word>"; exit 7\n'
    initrd = guestlib.make_initramfs(tmp_path, script)
    with guestlib.Guest(QEMU, initrd) as guest:
        guest.wait_for(r"^GUEST-READY$", timeout=120)
        guest.send("hello\n")
        guest.wait_for(r"GUEST-GOT <hello>", timeout=30)
        res = guest.wait(timeout=30)
    assert res.status == 7, res.describe()
    assert not guest.running()
