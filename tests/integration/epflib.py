"""The Linux PCI endpoint framework for the test guests (issue 16).

driver/epf/build-epf.sh builds, once and cached outside the repository,
the framework as one module (pci_endpoint.ko), the kernel's pci-epf-test.ko
and pci_endpoint_test.ko, and a static pcitest; epf_env() returns its
EPF_* variables.  guest_files() maps those (and the guest kernel's own
configfs.ko, which the framework needs) to where the guest scripts find
them, for guestlib.make_initramfs().
"""

from __future__ import annotations

import functools
import shlex
import subprocess
from pathlib import Path

import guestlib

BUILD_EPF = guestlib.REPO / "driver" / "epf" / "build-epf.sh"
# Where the guest scripts find the files (see guest_files()).
GUEST_DIR = "/lib/modules/epf"


@functools.lru_cache(maxsize=1)
def _epf_env_items() -> tuple[tuple[str, str], ...]:
    out = subprocess.run([str(BUILD_EPF), "--print-env"], check=True,
                         stdout=subprocess.PIPE, text=True).stdout
    items = []
    for line in out.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.startswith("EPF_"):
            items.append((key, " ".join(shlex.split(value)) if value else ""))
    return tuple(items)


def epf_env() -> dict[str, str]:
    """Build/refresh the cached endpoint modules; return the EPF_* paths."""
    return dict(_epf_env_items())


def configfs_module() -> Path:
    """The guest kernel's configfs.ko (the framework's configfs interface
    needs it; the base image does not carry it)."""
    env = guestlib.build_guest_env()
    path = (Path(env["GUEST_KERNEL_TREE"]) / "lib" / "modules" /
            env["GUEST_KVER"] / "kernel" / "fs" / "configfs" / "configfs.ko")
    if not path.is_file():
        raise FileNotFoundError(path)
    return path


@functools.lru_cache(maxsize=1)
def epc_driver() -> str:
    """Build driver/pciefw_epc.ko (driver/build.sh --epc) and return it."""
    r = subprocess.run([str(guestlib.REPO / "driver" / "build.sh"), "--epc"],
                       check=True, stdout=subprocess.PIPE, text=True)
    return r.stdout.strip().splitlines()[-1]


def guest_files() -> dict[str, str]:
    """Host path -> guest path of everything the endpoint tests need:
    GUEST_DIR/{configfs,pci_endpoint,pci-epf-test,pci_endpoint_test,
    pciefw_epc}.ko, /usr/bin/pcitest and /usr/bin/pcitest.sh."""
    env = epf_env()
    return {
        epc_driver(): f"{GUEST_DIR}/pciefw_epc.ko",
        str(configfs_module()): f"{GUEST_DIR}/configfs.ko",
        env["EPF_FRAMEWORK_KO"]: f"{GUEST_DIR}/pci_endpoint.ko",
        env["EPF_TEST_KO"]: f"{GUEST_DIR}/pci-epf-test.ko",
        env["EPF_HOST_KO"]: f"{GUEST_DIR}/pci_endpoint_test.ko",
        env["EPF_PCITEST"]: "/usr/bin/pcitest",
        env["EPF_PCITEST_SH"]: "/usr/bin/pcitest.sh",
    }
