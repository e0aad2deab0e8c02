"""Processes that tests and benchmarks start, and how they stop: by PID,
only the ones we started, whether the test passed or not.

  stop_process(proc)   SIGCONT (a stopped process must see the signal),
                       SIGTERM, then SIGKILL after a grace period; reaps it
  Endpoint             a pciefw-endpoint serving one device model, its
                       stderr in a log file, its address from "listening on"
  endpoint_in_tempdir  an Endpoint on a UNIX socket in a directory of its
                       own, stopped and removed afterwards
"""

import contextlib
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time


def stop_process(proc, grace=5.0):
    """Stop @proc (a subprocess.Popen we started) and reap it; returns its
    exit status."""
    if proc.poll() is None:
        try:
            os.kill(proc.pid, signal.SIGCONT)
            os.kill(proc.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode


class Endpoint:
    """A pciefw-endpoint process serving one device model."""

    def __init__(self, binary, workdir, listen, device="testdev", args=(),
                 name="endpoint"):
        self.listen = listen
        self.log_path = os.path.join(workdir, f"{name}.log")
        if listen.startswith("unix:") and os.path.exists(listen[5:]):
            os.unlink(listen[5:])
        self.log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [binary, "--listen", listen, "--device", device] + list(args),
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self.log)
        self.address = self._wait_listening(10.0)

    def _wait_listening(self, timeout):
        """The address from the 'listening on ADDR' line on stdout."""
        deadline = time.monotonic() + timeout
        buf = b""
        fd = self.proc.stdout.fileno()
        while time.monotonic() < deadline:
            r, _, _ = select.select([fd], [], [], 0.1)
            if r:
                data = os.read(fd, 4096)
                if not data:
                    break
                buf += data
                for line in buf.decode(errors="replace").splitlines():
                    if line.startswith("listening on "):
                        return line[len("listening on "):].strip()
            elif self.proc.poll() is not None:
                break
        self.stop()
        raise RuntimeError(f"endpoint did not start listening on {self.listen}: "
                           f"{buf.decode(errors='replace')}\n{self.output()}")

    @property
    def pid(self):
        return self.proc.pid

    def output(self):
        if not self.log.closed:
            self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def alive(self):
        return self.proc.poll() is None

    def wait_log(self, text, timeout=30.0):
        """Wait until the endpoint has logged @text (an event it reports),
        or fail; returns the log."""
        deadline = time.monotonic() + timeout
        while text not in (out := self.output()):
            if not self.alive() or time.monotonic() > deadline:
                raise AssertionError(f"endpoint never logged {text!r}:\n{out}")
            time.sleep(0.02)
        return out

    def kill(self):
        """SIGKILL: the endpoint dies without a goodbye."""
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def stop(self):
        stop_process(self.proc)
        if self.proc.stdout:
            self.proc.stdout.close()
        self.log.close()
        return self.proc.returncode


@contextlib.contextmanager
def endpoint_in_tempdir(binary, device="testdev", prefix="pfe-"):
    """An Endpoint on a UNIX socket in a directory of its own (short: a
    socket path is at most 108 bytes); stopped and removed afterwards."""
    workdir = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    ep = Endpoint(binary, workdir, f"unix:{workdir}/ep.sock", device)
    try:
        yield ep
    finally:
        ep.stop()
        shutil.rmtree(workdir, ignore_errors=True)
