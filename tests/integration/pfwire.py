"""The pciefw wire format, written by hand from protocol/pciefw.proto, for
test peers that must say what no real endpoint says (hostile or broken
endpoints) and read what QEMU answers.

A frame is a little-endian u32 length followed by one protobuf `Message`
(docs/protocol.md 1.2); the Message's oneof field number names its kind.
"""

import socket
import struct
import threading
import time

MAGIC = 0x21574650

# Message oneof field numbers (protocol/pciefw.proto)
HELLO, CONFIG_READ, CONFIG_WRITE, MEM_READ, MEM_WRITE = 1, 2, 3, 4, 5
IO_READ, IO_WRITE, COMPLETION, DMA_READ, DMA_WRITE = 6, 7, 8, 9, 10
INTX, MSI, MSIX, DEVICE_DESCRIPTION, RESET, GOODBYE, ERROR = (
    11, 12, 13, 14, 15, 16, 17)

# Status and error codes
SC, UR, CA, CRS = 0, 1, 2, 3
ERROR_LIMIT = 6


def varint(v):
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field_varint(num, v):
    return varint(num << 3) + varint(v)


def field_bytes(num, payload):
    return varint(num << 3 | 2) + varint(len(payload)) + payload


def frame(kind, body):
    """One frame carrying a Message whose oneof @kind holds @body."""
    m = field_bytes(kind, body)
    return struct.pack("<I", len(m)) + m


def hello(major=1, minor=0, max_payload=65536, features=0, name="test peer"):
    h = (b"\x0d" + struct.pack("<I", MAGIC) + field_varint(2, major)
         + field_varint(3, minor) + field_varint(4, features)
         + field_bytes(5, name.encode()) + field_varint(6, max_payload))
    return frame(HELLO, h)


def bar(index, size, kind=0, prefetchable=False):
    return field_bytes(7, field_varint(1, index) + field_varint(2, kind)
                       + field_varint(3, int(prefetchable))
                       + field_varint(4, size))


def description(vendor=0x1234, device=0xFE01, class_code=0xFF0000,
                bars=None, intx_pin=1, extra=b""):
    """DeviceDescription; default: BAR0 mem32 4 KiB, INTA#."""
    if bars is None:
        bars = bar(0, 4096)
    d = (field_varint(1, vendor) + field_varint(2, device)
         + field_varint(5, class_code) + bars
         + field_varint(14, intx_pin) + extra)
    return frame(DEVICE_DESCRIPTION, d)


def completion(tag, status=SC, data=b""):
    return frame(COMPLETION, field_varint(1, tag) + field_varint(2, status)
                 + (field_bytes(3, data) if data else b""))


def dma_read(tag, address, size):
    return frame(DMA_READ, field_varint(1, tag) + field_varint(2, address)
                 + field_varint(3, size))


def dma_write(address, data):
    return frame(DMA_WRITE, field_varint(1, address) + field_bytes(2, data))


def intx(asserted):
    return frame(INTX, field_varint(1, int(asserted)))


def msix(vector):
    return frame(MSIX, field_varint(1, vector))


def goodbye(reason=0, text="test peer leaves"):
    return frame(GOODBYE, field_varint(1, reason) + field_bytes(2, text.encode()))


def parse_fields(buf):
    """{field number: [values]} of one protobuf message (varints as int,
    fixed32/64 as int, length-delimited as bytes)."""
    out, i = {}, 0
    while i < len(buf):
        key, i = _read_varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _read_varint(buf, i)
        elif wt == 1:
            v, i = struct.unpack_from("<Q", buf, i)[0], i + 8
        elif wt == 5:
            v, i = struct.unpack_from("<I", buf, i)[0], i + 4
        elif wt == 2:
            n, i = _read_varint(buf, i)
            v, i = buf[i:i + n], i + n
        else:
            raise ValueError(f"wire type {wt}")
        out.setdefault(num, []).append(v)
    return out


def _read_varint(buf, i):
    v = shift = 0
    while True:
        b = buf[i]
        i += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, i


class Msg:
    """A decoded Message: its kind (oneof field number) and body fields."""

    def __init__(self, payload):
        top = parse_fields(payload)
        (self.kind, bodies), = top.items()
        self.fields = parse_fields(bodies[0])

    def get(self, num, default=0):
        return self.fields.get(num, [default])[0]

    def __repr__(self):
        return f"Msg(kind={self.kind}, fields={self.fields})"


def split_frames(buf):
    """(complete frame payloads, rest of @buf)."""
    out = []
    while len(buf) >= 4:
        n = struct.unpack_from("<I", buf)[0]
        if len(buf) < 4 + n:
            break
        out.append(buf[4:4 + n])
        buf = buf[4 + n:]
    return out, buf


class ScriptedEndpoint(threading.Thread):
    """A test endpoint on a UNIX socket: it greets with @greeting (Hello and
    DeviceDescription by default), answers QEMU's requests the way a device
    with nothing behind its registers would (reads of zeros, resets and
    I/O writes completed), records every message, and sends whatever the
    test hands to send().  With @serve False it neither reads nor answers
    after the greeting, like a peer that stopped reading its socket."""

    def __init__(self, path, greeting=None, serve=True, accept_timeout=30):
        super().__init__(daemon=True)
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(1)
        self.greeting = hello() + description() if greeting is None else greeting
        self.serve = serve
        self.reading = True
        self.accept_timeout = accept_timeout
        self.conn = None
        self.received = []
        self.closed = False
        self._cv = threading.Condition()
        self._send_lock = threading.Lock()
        self._stopping = False
        self.start()

    def run(self):
        self.srv.settimeout(self.accept_timeout)
        try:
            conn, _ = self.srv.accept()
        except OSError:
            return
        finally:
            self.srv.close()
        with self._cv:
            self.conn = conn
            self._cv.notify_all()
        conn.sendall(self.greeting)
        if not self.serve:
            return
        buf = b""
        conn.settimeout(0.2)
        while not self._stopping:
            if not self.reading:
                time.sleep(0.05)
                continue
            try:
                data = conn.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            if not data:
                break
            frames, buf = split_frames(buf + data)
            for f in frames:
                self._handle(Msg(f))
        with self._cv:
            self.closed = True
            self._cv.notify_all()

    def _handle(self, m):
        with self._cv:
            self.received.append(m)
            self._cv.notify_all()
        reply = None
        if m.kind in (CONFIG_READ, IO_READ):
            reply = completion(m.get(1), SC, bytes(m.get(3)))
        elif m.kind == MEM_READ:
            reply = completion(m.get(1), SC, bytes(m.get(4)))
        elif m.kind in (RESET, IO_WRITE, CONFIG_WRITE):
            reply = completion(m.get(1), SC)
        if reply:
            self.send(reply)

    def wait_connected(self, timeout=30):
        with self._cv:
            if not self._cv.wait_for(lambda: self.conn is not None, timeout):
                raise TimeoutError("QEMU did not connect")

    def send(self, data):
        with self._send_lock:
            self.conn.sendall(data)

    def wait_for(self, pred, timeout=30, what="message"):
        """The first received message for which @pred is true."""
        deadline = time.monotonic() + timeout
        with self._cv:
            while True:
                for m in self.received:
                    if pred(m):
                        return m
                left = deadline - time.monotonic()
                if left <= 0 or self.closed:
                    raise TimeoutError(f"no {what}: got {self.received}")
                self._cv.wait(left)

    def wait_closed(self, timeout=30):
        with self._cv:
            return self._cv.wait_for(lambda: self.closed, timeout)

    def stop(self):
        self._stopping = True
        if self.conn:
            try:
                self.conn.close()
            except OSError:
                pass
        self.join(5)
