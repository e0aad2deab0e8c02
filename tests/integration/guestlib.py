"""Boot the pciefw test guest under QEMU and watch its serial console.

The guest image comes from tests/guest/build-guest.sh (kernel + base
initramfs, cached outside the repo); tests/guest/mkinitramfs.sh adds a test
script and extra files.  The guest's /init prints ``PCIEFW-GUEST: init``,
runs /test.sh, prints ``PCIEFW-GUEST: exit <status>`` and powers off.

One-shot use::

    env = build_guest_env()
    initrd = make_initramfs(tmp_path, "lspci\\n")
    res = boot_guest(qemu, initrd, ["-device", "e1000"], timeout=60)
    assert res.status == 0, res.console

Interactive use (host-side actions while the guest runs)::

    with Guest(qemu, initrd, extra_args) as g:
        g.wait_for(r"READY", timeout=30)
        ...                      # poke the host side
        g.send("go\\n")          # goes to the guest's console (stdin of /test.sh)
        res = g.wait(timeout=30)

Only the standard library is used (run under /usr/bin/python3 with pytest).
QEMU is started in its own process group; cleanup kills exactly that group
and only while QEMU itself has not been reaped, never by name.
"""

from __future__ import annotations

import codecs
import functools
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Mapping

REPO = Path(__file__).resolve().parents[2]
GUEST_DIR = REPO / "tests" / "guest"
BUILD_GUEST = GUEST_DIR / "build-guest.sh"
MKINITRAMFS = GUEST_DIR / "mkinitramfs.sh"

INIT_MARKER = "PCIEFW-GUEST: init"
EXIT_RE = re.compile(r"PCIEFW-GUEST: exit (\d+)")
# quiet: only warnings reach the console; panic=-1 + -no-reboot: a panic
# ends QEMU instead of hanging; mitigations=off: faster under TCG.
DEFAULT_APPEND = "console=ttyS0 quiet panic=-1 mitigations=off"
# Firmware for a QEMU run from its build tree (SeaBIOS, pvh.bin/linuxboot
# option ROMs, NIC ROMs).  Only the directories that exist are passed.
FIRMWARE_DIRS = ("/usr/share/seabios", "/usr/share/qemu", "/usr/lib/ipxe/qemu")
# After the exit marker, how long QEMU gets to power off by itself.
POWEROFF_GRACE = 10.0


class GuestError(RuntimeError):
    """QEMU exited or timed out before the awaited console output."""


# --------------------------------------------------------------------------
# Image


@functools.lru_cache(maxsize=1)
def _guest_env_items() -> tuple[tuple[str, str], ...]:
    out = subprocess.run(
        [str(BUILD_GUEST), "--print-env"],
        check=True, stdout=subprocess.PIPE, text=True,
    ).stdout
    items = []
    for line in out.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.startswith("GUEST_"):
            # Values are printf %q quoted by the script.
            items.append((key, " ".join(shlex.split(value)) if value else ""))
    return tuple(items)


def build_guest_env() -> dict[str, str]:
    """Build/refresh the cached guest image; return its GUEST_* variables.

    Cached per process: the script runs once, later calls are free.
    """
    return dict(_guest_env_items())


def make_initramfs(
    tmpdir: str | os.PathLike,
    test_script: str,
    extra_files: Mapping[str, str] | None = None,
    name: str = "initrd.cpio.gz",
) -> Path:
    """Pack base image + ``test_script`` (as /test.sh) + extra files.

    ``extra_files`` maps host source paths to absolute guest paths (a guest
    path ending in "/" keeps the source's file name).  Returns the path of
    the gzip'd cpio inside ``tmpdir``.
    """
    tmpdir = Path(tmpdir)
    tmpdir.mkdir(parents=True, exist_ok=True)
    script = tmpdir / "test.sh"
    script.write_text(test_script)
    out = tmpdir / name
    cmd = [str(MKINITRAMFS), str(out), "--test-script", str(script)]
    for src, dest in (extra_files or {}).items():
        cmd += ["--add", f"{src}:{dest}"]
    # Pass the base image location so mkinitramfs.sh need not rerun apt.
    env = {**os.environ, **build_guest_env()}
    subprocess.run(cmd, check=True, env=env)
    return out


# --------------------------------------------------------------------------
# QEMU


def qemu_command(
    qemu_binary: str | os.PathLike,
    initrd: str | os.PathLike,
    extra_args: Iterable[str] = (),
    append_extra: str = "",
    kernel: str | os.PathLike | None = None,
    memory: int = 512,
    shared_ram: bool = True,
) -> list[str]:
    """The QEMU command line used by Guest (handy for logging/debugging).
    Guest RAM is a shared memfd unless @shared_ram is False or @extra_args
    bring their own memory backend: pciefw's fast path (docs/protocol.md
    10, 11) is what users get by default, so it is what guests run on."""
    kernel = kernel or build_guest_env()["GUEST_KERNEL"]
    append = f"{DEFAULT_APPEND} {append_extra}".strip()
    machine = ["-M", "q35"]
    if shared_ram and not any("memory-backend" in a for a in extra_args):
        machine = ["-M", "q35,memory-backend=mem", "-object",
                   f"memory-backend-memfd,id=mem,size={memory}M,share=on"]
    cmd = [
        str(qemu_binary),
        *machine, "-nodefaults", "-display", "none", "-no-reboot",
        "-serial", "stdio", "-m", str(memory),
        "-kernel", str(kernel), "-initrd", str(initrd), "-append", append,
    ]
    for d in FIRMWARE_DIRS:
        if os.path.isdir(d):
            cmd += ["-L", d]
    return cmd + list(extra_args)


@dataclass
class GuestResult:
    console: str            # everything the guest wrote to ttyS0 (no \r)
    status: int | None      # exit status of /test.sh, None if no marker
    returncode: int | None  # QEMU's return code (negative: killed by signal)
    timed_out: bool
    elapsed: float          # seconds from QEMU start to the end
    stderr: str             # QEMU's own messages

    @property
    def ok(self) -> bool:
        return self.status == 0

    def describe(self, tail: int = 4000) -> str:
        """A short report for assertion messages."""
        return (
            f"status={self.status} qemu_rc={self.returncode} "
            f"timed_out={self.timed_out} elapsed={self.elapsed:.1f}s\n"
            f"--- qemu stderr ---\n{self.stderr[-tail:]}\n"
            f"--- console (tail) ---\n{self.console[-tail:]}"
        )


class Guest:
    """A running QEMU guest whose serial console is collected in memory.

    Use as a context manager (starts on enter, stops on exit) or call
    start()/stop() yourself.  Set PCIEFW_GUEST_ECHO=1 to copy the console
    to stderr live, pass ``echo`` (a text stream) to copy it there, or
    ``log_path`` to keep it in a file.
    """

    def __init__(
        self,
        qemu_binary: str | os.PathLike,
        initrd: str | os.PathLike,
        extra_args: Iterable[str] = (),
        append_extra: str = "",
        kernel: str | os.PathLike | None = None,
        memory: int = 512,
        log_path: str | os.PathLike | None = None,
        shared_ram: bool = True,
        echo=None,
    ):
        self.cmd = qemu_command(qemu_binary, initrd, extra_args, append_extra,
                                kernel, memory, shared_ram)
        self.log_path = log_path
        self.proc: subprocess.Popen | None = None
        self._cond = threading.Condition()
        self._console: list[str] = []
        self._console_len = 0
        self._stderr: list[str] = []
        self._readers: list[threading.Thread] = []
        self._cursor = 0          # where the next wait_for() starts searching
        self._start_time = 0.0
        self._end_time: float | None = None
        self._timed_out = False
        self._echo = echo or (sys.stderr if os.environ.get("PCIEFW_GUEST_ECHO") == "1"
                              else None)
        self._log = None

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> "Guest":
        if self.log_path:
            self._log = open(self.log_path, "w", encoding="utf-8")
        self._start_time = time.monotonic()
        self.proc = subprocess.Popen(
            self.cmd,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # own process group: we kill only it
        )
        for stream, sink in ((self.proc.stdout, self._console),
                             (self.proc.stderr, self._stderr)):
            t = threading.Thread(target=self._read, args=(stream, sink),
                                 daemon=True)
            t.start()
            self._readers.append(t)
        return self

    def stop(self, grace: float = 5.0) -> None:
        """Ask QEMU to quit (SIGTERM), then SIGKILL its process group."""
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                proc.wait(grace)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                proc.wait()
        self._finish()

    def _signal_group(self, sig: int) -> None:
        # Only while QEMU is unreaped (poll() is None) is its pid, and so
        # its process group id, guaranteed to still be ours.
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass

    def _finish(self) -> None:
        if self._end_time is None:
            self._end_time = time.monotonic()
        for t in self._readers:
            t.join(timeout=5)
        if self.proc and self.proc.stdin and not self.proc.stdin.closed:
            try:
                self.proc.stdin.close()
            except OSError:
                pass
        if self._log:
            self._log.close()
            self._log = None

    def __enter__(self) -> "Guest":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- console -----------------------------------------------------------

    def _read(self, stream, sink: list[str]) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        fd = stream.fileno()
        while True:
            try:
                data = os.read(fd, 65536)
            except OSError:
                data = b""
            text = decoder.decode(data, final=not data).replace("\r", "")
            if text:
                with self._cond:
                    sink.append(text)
                    if sink is self._console:
                        self._console_len += len(text)
                    self._cond.notify_all()
                if sink is self._console:
                    if self._echo:
                        self._echo.write(text)
                        self._echo.flush()
                    if self._log:
                        self._log.write(text)
                        self._log.flush()
            if not data:
                with self._cond:
                    self._cond.notify_all()
                return

    @property
    def console(self) -> str:
        with self._cond:
            if len(self._console) > 1:  # join lazily, keep one chunk
                self._console[:] = ["".join(self._console)]
            return self._console[0] if self._console else ""

    @property
    def stderr(self) -> str:
        with self._cond:
            return "".join(self._stderr)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def send(self, text: str) -> None:
        """Type ``text`` on the guest's serial console."""
        assert self.proc and self.proc.stdin
        self.proc.stdin.write(text.encode())
        self.proc.stdin.flush()

    def wait_for(self, pattern: str | re.Pattern, timeout: float = 60.0,
                 from_start: bool = False) -> re.Match:
        """Wait until ``pattern`` (regex, MULTILINE) appears on the console.

        Searches from the end of the previous wait_for() match (or from the
        start with ``from_start``), so repeated calls see successive lines.
        Raises GuestError if QEMU exits or ``timeout`` passes first.
        """
        rx = re.compile(pattern, re.MULTILINE) if isinstance(pattern, str) \
            else pattern
        deadline = time.monotonic() + timeout
        pos = 0 if from_start else self._cursor
        while True:
            with self._cond:
                seen = self._console_len
                # Checked before reading the text: once the console reader
                # has hit EOF, the text read next is complete.
                closed = not self._readers[0].is_alive()
            text = self.console
            m = rx.search(text, pos)
            if m:
                self._cursor = m.end()
                return m
            if closed:
                raise GuestError(self._why(f"QEMU exited before /{rx.pattern}/"))
            left = deadline - time.monotonic()
            if left <= 0:
                raise GuestError(self._why(f"timeout ({timeout}s) waiting for /{rx.pattern}/"))
            with self._cond:
                if self._console_len == seen:
                    self._cond.wait(min(left, 0.5))

    def _why(self, what: str) -> str:
        return (f"{what}\n--- qemu stderr ---\n{self.stderr[-2000:]}\n"
                f"--- console (tail) ---\n{self.console[-4000:]}")

    # -- completion --------------------------------------------------------

    def wait(self, timeout: float = 120.0) -> GuestResult:
        """Wait for the exit marker (or QEMU's exit, or timeout); stop QEMU.

        Never raises for guest failures: inspect the returned GuestResult.
        """
        try:
            self.wait_for(EXIT_RE, timeout, from_start=True)
        except GuestError:
            self._timed_out = self.running()
        if self.running() and not self._timed_out:
            # Marker seen: poweroff -f follows; give it a moment.
            try:
                self.proc.wait(POWEROFF_GRACE)
            except subprocess.TimeoutExpired:
                pass
        self.stop()
        return self.result()

    def result(self) -> GuestResult:
        console = self.console
        marks = EXIT_RE.findall(console)
        end = self._end_time if self._end_time is not None else time.monotonic()
        return GuestResult(
            console=console,
            status=int(marks[-1]) if marks else None,
            returncode=self.proc.returncode if self.proc else None,
            timed_out=self._timed_out,
            elapsed=end - self._start_time,
            stderr=self.stderr,
        )


def boot_guest(
    qemu_binary: str | os.PathLike,
    initrd: str | os.PathLike,
    extra_args: Iterable[str] = (),
    timeout: float = 120.0,
    append_extra: str = "",
    **kwargs,
) -> GuestResult:
    """Boot, run /test.sh to completion, return the result.

    QEMU is always gone when this returns (killed on timeout or on any
    exception, including KeyboardInterrupt).
    """
    guest = Guest(qemu_binary, initrd, extra_args, append_extra, **kwargs)
    try:
        guest.start()
        return guest.wait(timeout)
    finally:
        guest.stop()
