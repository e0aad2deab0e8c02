"""./dev try (scripts/try.sh, docs/models.md): a model in the test guest
with setpci/devmem, its script's status as the command's, and the
endpoint's trace and log left where the command says; the nic and the
e1000 up with networking; --timeout; a typo refused before anything else
happens, the last run's files kept (issue 28)."""

import os
import re
import subprocess
from pathlib import Path

import pytest

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
    assert "mem_write bar=0 offset=0x0 data=0xdeafbeaf" in t.stdout, t.stdout


def test_try_refuses_a_bad_device(tmp_path, qemu_binary):
    env = {**os.environ, "PCIEFW_QEMU": qemu_binary, "PCIEFW_TRY_DIR": str(tmp_path)}
    r = subprocess.run([str(REPO / "scripts" / "try.sh"), "ex-gpu,size=3K"], cwd=REPO,
                       env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=120)
    assert r.returncode != 0
    assert "invalid size" in r.stdout or "not a power of two" in r.stdout, r.stdout


def try_run(args, out, qemu_binary, timeout=400, command=("scripts", "try.sh")):
    env = {**os.environ, "PCIEFW_QEMU": qemu_binary, "PCIEFW_TRY_DIR": str(out)}
    return subprocess.run([str(REPO.joinpath(*command)), *args], cwd=REPO, env=env,
                          stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True, timeout=timeout)


NET_CHECK = """
echo "TRY-DRIVER: $(basename "$(readlink /sys/class/net/eth0/device/driver)")"
echo "TRY-ADDR: $(ip -4 -o addr show eth0 | awk '{ print $4 }')"
ping -c 1 -W 5 10.0.2.2 >/dev/null && echo "TRY-PING: ok"
"""


@pytest.mark.parametrize("model, driver", [("nic", "pciefw_nic"), ("e1000", "e1000")])
def test_try_nic_comes_up_with_networking(tmp_path, qemu_binary, model, driver):
    """./dev try nic|e1000: the driver loaded, an address from the
    endpoint's DHCP applied by the image's udhcpc script, the host pinged,
    before the user's script (or shell) starts."""
    script = tmp_path / "net.sh"
    script.write_text(NET_CHECK)
    r = try_run([f"{model},mac=52:54:00:12:34:56", "--script", str(script),
                 "--timeout", "200"], tmp_path / "out", qemu_binary)
    assert r.returncode == 0, r.stdout
    assert f"TRY-DRIVER: {driver}" in r.stdout, r.stdout
    assert "TRY-ADDR: 10.0.2.15/24" in r.stdout, r.stdout
    assert "TRY-PING: ok" in r.stdout, r.stdout


def test_try_timeout(tmp_path, qemu_binary):
    """--timeout bounds a script that never ends, and says so."""
    script = tmp_path / "forever.sh"
    script.write_text("echo TRY-STARTED\nwhile :; do sleep 1; done\n")
    r = try_run(["ex-mmio", "--script", str(script), "--timeout", "20"],
                tmp_path / "out", qemu_binary)
    assert r.returncode == 1, r.stdout
    assert "TRY-STARTED" in r.stdout, r.stdout
    assert "try: the guest did not finish: not finished after 20 s (--timeout)" \
        in r.stdout, r.stdout


def last_run(out):
    """Files as a good run left them in build/try/."""
    out.mkdir()
    files = {"trace.pcapng": b"last run's trace", "qemu.log": b"last run's qemu.log",
             "endpoint.log": b"last run's endpoint.log"}
    for name, data in files.items():
        (out / name).write_bytes(data)
    return files


def test_try_typo_fails_before_setup_and_keeps_the_last_run(tmp_path, qemu_binary):
    out = tmp_path / "out"
    files = last_run(out)
    r = try_run(["try", "nosuch"], out, qemu_binary, command=("dev",))
    assert r.returncode == 2, r.stdout
    assert "unknown device model 'nosuch'" in r.stdout, r.stdout
    # Refused before the set-up (dependencies, QEMU, the guest) ran.
    assert "checking dependencies" not in r.stdout, r.stdout
    assert "building QEMU" not in r.stdout, r.stdout
    assert {f.name: f.read_bytes() for f in out.iterdir()} == files


def test_try_bad_option_value_keeps_the_last_run(tmp_path, qemu_binary):
    """A value the model refuses when it starts: the endpoint never runs,
    and the last run's trace, logs stay as they were."""
    out = tmp_path / "out"
    files = last_run(out)
    r = try_run(["ex-gpu,size=3K"], out, qemu_binary, timeout=120)
    assert r.returncode != 0, r.stdout
    assert "not a power of two" in r.stdout, r.stdout
    assert {f.name: f.read_bytes() for f in out.iterdir()} == files
