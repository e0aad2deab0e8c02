"""The kernel sources driver/epf/build-epf.sh builds from are Debian's
linux-source-6.1, unchanged (issue 26; driver/epf/README.md, docs/epc.md
10.3, 13.1): each file compiled is compared with the same file taken
afresh from the Debian package, whose own SHA-256 is the one apt's signed
lists give.  The framework's four core files differ only by the
module_init/module_exit hooks build-epf.sh makes of them (one module)."""

import hashlib
import re
import subprocess
from pathlib import Path

import epflib


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def debian_files(deb, paths, dest):
    """Extract @paths (relative to the source tree) from @deb into @dest."""
    members = [f"linux-source-6.1/{p}" for p in paths]
    cmd = (f"dpkg-deb --fsys-tarfile '{deb}' | tar -xO "
           "./usr/src/linux-source-6.1.tar.xz | xz -dc | "
           f"tar -x -C '{dest}' --strip-components=1 "
           + " ".join(f"'{m}'" for m in members))
    subprocess.run(["bash", "-o", "pipefail", "-c", cmd], check=True)


def hooked(text):
    """What build-epf.sh makes of a framework file: its module_init and
    module_exit become the hooks of pci_endpoint_hooks.h, the exit
    function loses __exit (pci-epc-mem.c has neither: unchanged)."""
    part = None
    if not re.search(r"^module_init\(", text, re.M):
        return text
    init = re.search(r"^module_init\((\w+)\);$", text, re.M).group(1)
    exit_fn = re.search(r"^module_exit\((\w+)\);$", text, re.M).group(1)
    for name, p in (("pci_epc", "epc"), ("pci_epf", "epf"),
                    ("pci_ep_cfs", "cfs")):
        if init.startswith(name):
            part = p
    assert part, init
    text = re.sub(rf"^module_init\({init}\);$",
                  f"int __init pci_endpoint_{part}_init(void) "
                  f"{{ return {init}(); }}", text, flags=re.M)
    text = re.sub(rf"^module_exit\({exit_fn}\);$",
                  f"void pci_endpoint_{part}_exit(void) {{ {exit_fn}(); }}",
                  text, flags=re.M)
    return re.sub(rf"^static void __exit {exit_fn}\(void\)$",
                  f"static void {exit_fn}(void)", text, flags=re.M)


def test_sources_are_debians(tmp_path):
    env = epflib.epf_env()
    deb = env["EPF_SOURCE_DEB"]
    show = subprocess.run(["apt-cache", "show",
                           f"linux-source-6.1={env['EPF_SOURCE_VERSION']}"],
                          check=True, stdout=subprocess.PIPE, text=True).stdout
    assert f"SHA256: {sha256(deb)}" in show, "the .deb is not Debian's"

    framework = env["EPF_FRAMEWORK_FILES"].split()
    unchanged = env["EPF_UNCHANGED_FILES"].split()
    tools = ["tools/pci/pcitest.c", "tools/pci/pcitest.sh",
             "include/uapi/linux/pcitest.h"]
    assert "drivers/pci/endpoint/functions/pci-epf-vntb.c" in unchanged
    debian_files(deb, framework + unchanged + tools, tmp_path)
    build = Path(env["EPF_BUILD_DIR"])
    for path in unchanged:
        assert sha256(build / Path(path).name) == sha256(tmp_path / path), path
    for path in tools:
        assert sha256(Path(env["EPF_SOURCE_DIR"]) / path) == \
            sha256(tmp_path / path), path
    assert sha256(Path(env["EPF_DIR"]) / "pcitest.sh") == \
        sha256(tmp_path / "tools/pci/pcitest.sh")
    changed = []
    for path in framework:
        built = (build / Path(path).name).read_text()
        assert built == hooked((tmp_path / path).read_text()), path
        if built != (tmp_path / path).read_text():
            changed.append(Path(path).name)
    assert changed == ["pci-ep-cfs.c", "pci-epc-core.c", "pci-epf-core.c"]
