"""./dev try (scripts/try.sh, docs/models.md): a model in the test guest
with setpci/devmem, its script's status as the command's, and the
endpoint's trace and log left where the command says."""

import os
import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

SCRIPT = """
echo "TRY-READ: $(devmem $BAR0 32)"
devmem $BAR0 32 0xdeafbeaf
echo "TRY-READ: $(devmem $BAR0 32)"
echo "TRY-CMD: $(setpci -s $BDF COMMAND)"
exit 7
"""


def test_try_runs_a_script(tmp_path, qemu_binary, endpoint_binary):
    script = tmp_path / "s.sh"
    script.write_text(SCRIPT)
    out = tmp_path / "out"
    env = {**os.environ, "PCIEFW_QEMU": qemu_binary, "PCIEFW_TRY_DIR": str(out)}
    r = subprocess.run([str(REPO / "scripts" / "try.sh"), "ex-mmio", "--script",
                        str(script)], cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=400)
    assert r.returncode == 7, r.stdout
    assert "Region 0: Memory at" in r.stdout and "[size=4K]" in r.stdout, r.stdout
    assert "TRY-READ: 0x00000000" in r.stdout and "TRY-READ: 0xDEAFBEAF" in r.stdout
    # Memory decoding on (try enables the device), bus mastering off.
    cmd = int(re.search(r"TRY-CMD: (\w+)", r.stdout).group(1), 16)
    assert cmd & 2 and not cmd & 4, r.stdout
    assert f"trace: {out}/trace.pcapng" in r.stdout, r.stdout
    log = (out / "endpoint.log").read_text()
    assert "MMIO write addr=0x0 size=4 data=0xdeafbeaf" in log, log
    # The trace holds the guest's write as the endpoint received it.
    tool = endpoint_binary.replace("endpoint/pciefw-endpoint", "tools/pciefw-trace")
    t = subprocess.run([tool, "--kind", "mem_write", str(out / "trace.pcapng")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert t.returncode == 0, t.stdout
    assert "mem_write bar=0 offset=0x0 data=afbeafde" in t.stdout, t.stdout


def test_try_refuses_a_bad_device(tmp_path, qemu_binary):
    env = {**os.environ, "PCIEFW_QEMU": qemu_binary, "PCIEFW_TRY_DIR": str(tmp_path)}
    r = subprocess.run([str(REPO / "scripts" / "try.sh"), "ex-gpu,size=3K"], cwd=REPO,
                       env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=120)
    assert r.returncode != 0
    assert "invalid size" in r.stdout or "not a power of two" in r.stdout, r.stdout
