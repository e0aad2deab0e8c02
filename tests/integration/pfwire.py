"""A minimal pciefw wire codec written from docs/protocol.md and
protocol/pciefw.proto alone (no C code), for tests that play a host or an
endpoint byte by byte: frames, protobuf fields, the message kinds."""

import socket
import struct

MAGIC = 0x21574650

# Message oneof field numbers (pciefw.proto)
KINDS = {
    "hello": 1, "config_read": 2, "config_write": 3, "mem_read": 4,
    "mem_write": 5, "io_read": 6, "io_write": 7, "completion": 8,
    "dma_read": 9, "dma_write": 10, "intx": 11, "msi": 12, "msix": 13,
    "device_description": 14, "reset": 15, "goodbye": 16, "error": 17,
}
KIND_NAMES = {v: k for k, v in KINDS.items()}
ERROR_CODES = ["ERROR_PROTOCOL", "ERROR_VERSION", "ERROR_UNEXPECTED",
               "ERROR_BAD_FRAME", "ERROR_BUSY", "ERROR_UNKNOWN_TAG",
               "ERROR_LIMIT", "ERROR_INTERNAL"]


def varint(v):
    v &= (1 << 64) - 1
    out = b""
    while True:
        b = v & 0x7F
        v >>= 7
        if v:
            out += bytes([b | 0x80])
        else:
            return out + bytes([b])


def field(num, value):
    """One protobuf field: int -> varint, bytes/str -> length-delimited,
    ("fixed32", v) -> fixed32."""
    if isinstance(value, tuple) and value[0] == "fixed32":
        return varint(num << 3 | 5) + struct.pack("<I", value[1])
    if isinstance(value, str):
        value = value.encode()
    if isinstance(value, (bytes, bytearray)):
        return varint(num << 3 | 2) + varint(len(value)) + bytes(value)
    return varint(num << 3) + varint(value)


def message(kind, *fields):
    """A framed Message of @kind with (number, value) @fields."""
    body = b"".join(field(n, v) for n, v in fields)
    m = field(KINDS[kind] if isinstance(kind, str) else kind, body)
    return frame(m)


def frame(body):
    return struct.pack("<I", len(body)) + body


def hello(major=1, minor=0, features=3, name="pfwire", max_payload=4096,
          magic=MAGIC):
    return message("hello", (1, ("fixed32", magic)), (2, major), (3, minor),
                   (4, features), (5, name), (6, max_payload))


def read_varint(buf, off):
    v = shift = 0
    while True:
        b = buf[off]
        off += 1
        v |= (b & 0x7F) << shift
        if b < 0x80:
            return v, off
        shift += 7


def parse_fields(buf):
    """{field number: value} (the last occurrence wins)."""
    out, off = {}, 0
    while off < len(buf):
        key, off = read_varint(buf, off)
        num, wire = key >> 3, key & 7
        if wire == 0:
            out[num], off = read_varint(buf, off)
        elif wire == 2:
            n, off = read_varint(buf, off)
            out[num], off = buf[off:off + n], off + n
        elif wire == 5:
            out[num], off = struct.unpack_from("<I", buf, off)[0], off + 4
        elif wire == 1:
            out[num], off = struct.unpack_from("<Q", buf, off)[0], off + 8
        else:
            raise ValueError(f"wire type {wire}")
    return out


def decode(body):
    """(kind name, {field: value}) of one Message body."""
    top = parse_fields(body)
    (num, sub), = top.items()
    return KIND_NAMES.get(num, f"kind{num}"), parse_fields(sub)


class Conn:
    """A raw connection: send bytes, read whole frames, see how it ends."""

    def __init__(self, address, timeout=10.0):
        if address.startswith("unix:"):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(address[5:])
        else:
            host, port = address[4:].rsplit(":", 1)
            self.sock = socket.create_connection((host, int(port)))
        self.sock.settimeout(timeout)
        self.buf = b""
        self.eof = False

    def send(self, data):
        self.sock.sendall(data)

    def next(self):
        """The next message as (kind, fields), or None at a clean EOF.
        ConnectionResetError propagates: a peer must not reset us."""
        while True:
            if len(self.buf) >= 4:
                n = struct.unpack_from("<I", self.buf)[0]
                if len(self.buf) >= 4 + n:
                    body, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
                    return decode(body)
            data = self.sock.recv(65536)
            if not data:
                self.eof = True
                assert not self.buf, f"EOF inside a frame: {self.buf!r}"
                return None
            self.buf += data

    def until(self, kind):
        """Messages up to and including the first of @kind."""
        seen = []
        while True:
            m = self.next()
            assert m is not None, f"EOF before {kind}; got {seen}"
            seen.append(m)
            if m[0] == kind:
                return seen

    def rest(self):
        """Every message until the peer closes."""
        out = []
        while True:
            m = self.next()
            if m is None:
                return out
            out.append(m)

    def handshake(self, **kw):
        """Hello both ways and the endpoint's DeviceDescription."""
        self.send(hello(**kw))
        kinds = [m[0] for m in self.until("device_description")]
        assert kinds == ["hello", "device_description"], kinds

    def close(self):
        self.sock.close()
