"""A small client for QEMU's qtest and QMP protocols, and a QEMU launcher.

qtest (``-accel qtest -qtest unix:PATH``) is a line protocol: each command
gets one reply line, ``OK [value]`` or ``FAIL reason``; asynchronous lines
``IRQ raise N`` / ``IRQ lower N`` arrive at any time once
``irq_intercept_in`` was given.  QMP is JSON lines; asynchronous events
(``{"event": ...}``) are kept for ``QMP.wait_event``.

``Qemu`` starts qemu-system-x86_64 with both channels on UNIX sockets that
this side listens on (QEMU connects to them, as libqtest does), and stops
exactly the process it started.
"""

import base64
import json
import os
import select
import socket
import subprocess
import time

from procs import stop_process


class QTestError(Exception):
    pass


class _LineSocket:
    def __init__(self, sock):
        self.sock = sock
        self.buf = b""

    def send_line(self, line):
        self.sock.sendall(line.encode() + b"\n")

    def read_line(self, timeout):
        """Next line (without newline), or None on timeout; EOFError on close."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([self.sock], [], [], left)
            if not r:
                return None
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("connection closed by QEMU")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line.decode(errors="replace")

    def close(self):
        self.sock.close()


class QTest:
    """qtest client.  Every call waits for its reply (default 60 s)."""

    def __init__(self, sock, timeout=60.0):
        self.ls = _LineSocket(sock)
        self.timeout = timeout
        self.irq_level = {}     # pin -> bool, from IRQ raise/lower lines
        self.irq_events = []    # ("raise"|"lower", pin) in arrival order

    def _async(self, line):
        parts = line.split()
        if len(parts) == 3 and parts[0] == "IRQ":
            pin = int(parts[2])
            self.irq_level[pin] = parts[1] == "raise"
            self.irq_events.append((parts[1], pin))
            return True
        return False

    def cmd(self, line, timeout=None):
        """Send one command; returns the reply words after OK."""
        self.ls.send_line(line)
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            left = deadline - time.monotonic()
            reply = self.ls.read_line(max(left, 0))
            if reply is None:
                raise QTestError(f"no reply to {line!r}")
            if self._async(reply):
                continue
            if reply.startswith("OK"):
                return reply[2:].strip()
            raise QTestError(f"{line!r} failed: {reply}")

    def poll_async(self, timeout=0.0):
        """Take asynchronous lines that arrive within @timeout seconds."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.ls.read_line(max(deadline - time.monotonic(), 0))
            if line is None:
                return
            if not self._async(line):
                raise QTestError(f"unexpected line {line!r}")

    def wait_irq(self, pin, level, timeout=10.0):
        deadline = time.monotonic() + timeout
        while self.irq_level.get(pin, False) != level:
            left = deadline - time.monotonic()
            if left <= 0:
                raise QTestError(f"IRQ {pin} did not go {'up' if level else 'down'}")
            self.poll_async(min(left, 0.1))

    # Memory
    def _read(self, op, addr):
        return int(self.cmd(f"{op} 0x{addr:x}"), 16)

    def readb(self, addr): return self._read("readb", addr)
    def readw(self, addr): return self._read("readw", addr)
    def readl(self, addr): return self._read("readl", addr)
    def readq(self, addr): return self._read("readq", addr)

    def writeb(self, addr, v): self.cmd(f"writeb 0x{addr:x} 0x{v:x}")
    def writew(self, addr, v): self.cmd(f"writew 0x{addr:x} 0x{v:x}")
    def writel(self, addr, v): self.cmd(f"writel 0x{addr:x} 0x{v:x}")
    def writeq(self, addr, v): self.cmd(f"writeq 0x{addr:x} 0x{v:x}")

    def read(self, addr, size):
        v = self.cmd(f"read 0x{addr:x} 0x{size:x}")
        return bytes.fromhex(v[2:])

    def write(self, addr, data):
        self.cmd(f"write 0x{addr:x} 0x{len(data):x} 0x{bytes(data).hex()}")

    def b64read(self, addr, size):
        return base64.b64decode(self.cmd(f"b64read 0x{addr:x} 0x{size:x}"))

    def b64write(self, addr, data):
        b64 = base64.b64encode(bytes(data)).decode()
        self.cmd(f"b64write 0x{addr:x} 0x{len(data):x} {b64}")

    def memset(self, addr, size, val):
        self.cmd(f"memset 0x{addr:x} 0x{size:x} 0x{val:x}")

    # I/O ports
    def inb(self, port): return self._read("inb", port)
    def inw(self, port): return self._read("inw", port)
    def inl(self, port): return self._read("inl", port)

    def outb(self, port, v): self.cmd(f"outb 0x{port:x} 0x{v:x}")
    def outw(self, port, v): self.cmd(f"outw 0x{port:x} 0x{v:x}")
    def outl(self, port, v): self.cmd(f"outl 0x{port:x} 0x{v:x}")

    def irq_intercept_in(self, qom_path):
        self.cmd(f"irq_intercept_in {qom_path}")

    def close(self):
        self.ls.close()


class QMP:
    def __init__(self, sock, timeout=60.0):
        self.ls = _LineSocket(sock)
        self.timeout = timeout
        self.events = []
        greeting = self._read_msg(timeout)
        if "QMP" not in greeting:
            raise QTestError(f"bad QMP greeting {greeting}")
        self.cmd("qmp_capabilities")

    def _read_msg(self, timeout):
        line = self.ls.read_line(timeout)
        if line is None:
            raise QTestError("QMP timeout")
        return json.loads(line)

    def cmd(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.ls.send_line(json.dumps(msg))
        deadline = time.monotonic() + self.timeout
        while True:
            m = self._read_msg(max(deadline - time.monotonic(), 0))
            if "event" in m:
                self.events.append(m)
                continue
            if "error" in m:
                raise QTestError(f"QMP {name}: {m['error'].get('desc')}")
            return m.get("return")

    def wait_event(self, name, timeout=30.0):
        deadline = time.monotonic() + timeout
        while True:
            for i, e in enumerate(self.events):
                if e["event"] == name:
                    return self.events.pop(i)
            left = deadline - time.monotonic()
            if left <= 0:
                raise QTestError(f"no QMP event {name}")
            try:
                m = self._read_msg(left)
            except QTestError:
                continue
            if "event" in m:
                self.events.append(m)

    def close(self):
        self.ls.close()


def _listen_unix(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(1)
    return s


class Qemu:
    """One qemu-system-x86_64 under qtest, with a qtest and a QMP channel."""

    def __init__(self, binary, workdir, args, name="qemu", timeout=60.0):
        self.workdir = workdir
        self.log_path = os.path.join(workdir, f"{name}.log")
        qtest_path = os.path.join(workdir, f"{name}.qtest")
        qmp_path = os.path.join(workdir, f"{name}.qmp")
        for p in (qtest_path, qmp_path):
            if os.path.exists(p):
                os.unlink(p)
        lq = _listen_unix(qtest_path)
        lm = _listen_unix(qmp_path)
        self.qtest = None
        self.qmp = None
        self.log = open(self.log_path, "wb")
        cmdline = [binary, "-accel", "qtest", "-qtest", f"unix:{qtest_path}",
                   "-qmp", f"unix:{qmp_path}", "-display", "none",
                   "-nodefaults"] + list(args)
        self.cmdline = cmdline
        self.proc = subprocess.Popen(cmdline, stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        try:
            self.qtest = QTest(self._accept(lq, timeout), timeout)
            self.qmp = QMP(self._accept(lm, timeout), timeout)
        except Exception:
            self.stop()
            raise
        finally:
            lq.close()
            lm.close()
            os.unlink(qtest_path)
            os.unlink(qmp_path)

    def _accept(self, lsock, timeout):
        deadline = time.monotonic() + timeout
        while True:
            r, _, _ = select.select([lsock], [], [], 0.1)
            if r:
                conn, _ = lsock.accept()
                return conn
            if self.proc.poll() is not None:
                raise QTestError(f"QEMU exited with {self.proc.returncode}:\n"
                                 + self.output())
            if time.monotonic() > deadline:
                raise QTestError("QEMU did not connect")

    def output(self):
        self.log.flush()
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        """Stop the process we started (by its PID) and reap it."""
        if self.proc.poll() is None:
            try:
                if self.qmp:
                    self.qmp.ls.send_line('{"execute": "quit"}')
                self.proc.wait(timeout=5)
            except Exception:
                pass
        stop_process(self.proc)
        for c in (self.qtest, self.qmp):
            if c:
                c.close()
        self.log.close()
        return self.proc.returncode
