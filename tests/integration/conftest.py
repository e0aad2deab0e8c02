"""Fixtures for the tests that run the real QEMU and the real endpoint.

Binaries:
  PCIEFW_QEMU      qemu-system-x86_64 with the pciefw device; default: the
                   one qemu-pciefw/build-qemu.sh builds (built on first use)
  PCIEFW_ENDPOINT  pciefw-endpoint; default <repo>/build/endpoint/pciefw-endpoint
                   (built with meson/ninja if missing)
  PCIEFW_ENDPOINT_SLEEP_PAUSE
                   its test build with a pause in the rings' sleep;
                   default: build/tests/pciefw-endpoint-sleep-pause beside it

Every process a test starts is registered with the ``harness`` fixture,
which stops exactly those processes, by PID, when the test ends, whether it
passed or not.
"""

import os
import shutil
import signal
import sys
import subprocess
import tempfile

import pytest

from procs import Endpoint
from qtest import Qemu

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SYSTEM_PATH = "/usr/bin:/bin:/usr/sbin:/sbin"
# Helpers the tests share with ./dev's commands (tlscerts: ./dev tls-certs).
sys.path.insert(0, os.path.join(REPO, "scripts"))


def _env_path():
    env = dict(os.environ)
    env["PATH"] = SYSTEM_PATH + ":" + env.get("PATH", "")
    return env


@pytest.fixture(scope="session")
def qemu_binary():
    path = os.environ.get("PCIEFW_QEMU")
    if path:
        if not os.access(path, os.X_OK):
            pytest.fail(f"PCIEFW_QEMU={path} is not an executable")
        return path
    script = os.path.join(REPO, "qemu-pciefw", "build-qemu.sh")
    r = subprocess.run([script, "--print-binary"], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=_env_path(), text=True)
    if r.returncode != 0:
        pytest.fail("qemu-pciefw/build-qemu.sh failed:\n" + r.stderr[-4000:])
    return r.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="session")
def endpoint_binary():
    path = os.environ.get("PCIEFW_ENDPOINT")
    if path:
        if not os.access(path, os.X_OK):
            pytest.fail(f"PCIEFW_ENDPOINT={path} is not an executable")
        return path
    build = os.path.join(REPO, "build")
    path = os.path.join(build, "endpoint", "pciefw-endpoint")
    if not os.access(path, os.X_OK):
        env = _env_path()
        if not os.path.exists(os.path.join(build, "build.ninja")):
            r = subprocess.run(["meson", "setup", build], cwd=REPO, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
            if r.returncode != 0:
                pytest.fail("meson setup build failed:\n" + r.stdout[-4000:])
        r = subprocess.run(["ninja", "-C", build, "endpoint/pciefw-endpoint"],
                           env=env, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True)
        if r.returncode != 0:
            pytest.fail("building pciefw-endpoint failed:\n" + r.stdout[-4000:])
    return path


@pytest.fixture(scope="session")
def sleep_pause_endpoint_binary(endpoint_binary):
    """pciefw-endpoint with a test hook (tests/meson.build): a consumer of
    the rings pauses 1 ms between announcing sleep and looking for bytes.
    Beside PCIEFW_ENDPOINT's build (build/tests/), or
    PCIEFW_ENDPOINT_SLEEP_PAUSE."""
    path = os.environ.get("PCIEFW_ENDPOINT_SLEEP_PAUSE") or os.path.join(
        os.path.dirname(os.path.dirname(endpoint_binary)), "tests",
        "pciefw-endpoint-sleep-pause")
    if not os.access(path, os.X_OK):
        pytest.fail(f"no {path}: build it (ninja -C build, as ./dev build "
                    "does), or set PCIEFW_ENDPOINT_SLEEP_PAUSE")
    return path


@pytest.fixture(scope="session")
def asan_endpoint_binary():
    """pciefw-endpoint built with ASan+UBSan (build-asan/, which ./dev test
    builds), for tests where the guest attacks the endpoint's memory."""
    path = os.environ.get("PCIEFW_ENDPOINT_ASAN") or os.path.join(
        REPO, "build-asan", "endpoint", "pciefw-endpoint")
    if not os.access(path, os.X_OK):
        pytest.fail(f"no ASan endpoint at {path}: build build-asan/ as ./dev test "
                    "does, or set PCIEFW_ENDPOINT_ASAN")
    return path


class Harness:
    def __init__(self, qemu_binary, endpoint_binary, workdir):
        self.qemu_binary = qemu_binary
        self.endpoint_binary = endpoint_binary
        self.workdir = workdir
        self._procs = []

    def path(self, name):
        return os.path.join(self.workdir, name)

    def endpoint(self, name="endpoint", listen=None, device="testdev", args=(),
                 binary=None):
        listen = listen or f"unix:{self.path(name + '.sock')}"
        ep = Endpoint(binary or self.endpoint_binary, self.workdir, listen,
                      device, args, name)
        self._procs.append(ep)
        return ep

    def track(self, thing):
        """Stop @thing (anything with a stop() method) with the rest."""
        self._procs.append(thing)
        return thing

    def qemu(self, args, name="qemu"):
        q = Qemu(self.qemu_binary, self.workdir, args, name)
        self._procs.append(q)
        return q

    def run_qemu(self, args, timeout=30):
        """Run QEMU to completion (for start-up failures); returns (rc, output)."""
        proc = subprocess.Popen([self.qemu_binary, "-display", "none",
                                 "-nodefaults"] + list(args),
                                stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            raise
        return proc.returncode, out.decode(errors="replace")

    def stop_all(self):
        """Stop everything we started; then fail if an endpoint reported a
        sanitizer error (the ASan+UBSan build logs them and may go on)."""
        reports = []
        for p in reversed(self._procs):
            try:
                p.stop()
            except Exception:
                pass
            if isinstance(p, Endpoint):
                reports += sanitizer_reports(p.output())
        self._procs.clear()
        if reports:
            raise AssertionError("endpoint sanitizer report:\n" + "\n".join(reports))


SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                   "runtime error:", "ERROR: UndefinedBehaviorSanitizer")


def sanitizer_reports(log):
    """The lines of @log that report a sanitizer finding (with context)."""
    lines = log.splitlines()
    return ["\n".join(lines[i:i + 12]) for i, l in enumerate(lines)
            if any(m in l for m in SANITIZER_MARKS)]


@pytest.fixture
def harness(qemu_binary, endpoint_binary):
    # UNIX socket paths are limited to 108 bytes: keep the directory short.
    workdir = tempfile.mkdtemp(prefix="pfq-", dir="/tmp")
    h = Harness(qemu_binary, endpoint_binary, workdir)
    try:
        yield h
    finally:
        h.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
