"""A minimal pciefw wire codec written from docs/protocol.md and
protocol/pciefw.proto alone (no C code), for tests that play a host or an
endpoint byte by byte: frames, protobuf fields, the message kinds; and
ScriptedEndpoint, an endpoint that says what no real endpoint says (hostile
or broken peers) and records what QEMU answers."""

import ctypes
import fcntl
import mmap
import os
import select
import socket
import struct
import threading
import time

MAGIC = 0x21574650

# Message oneof field numbers (pciefw.proto)
KINDS = {
    "hello": 1, "config_read": 2, "config_write": 3, "mem_read": 4,
    "mem_write": 5, "io_read": 6, "io_write": 7, "completion": 8,
    "dma_read": 9, "dma_write": 10, "intx": 11, "msi": 12, "msix": 13,
    "device_description": 14, "reset": 15, "goodbye": 16, "error": 17,
    "memory_map": 18, "bus_master": 19, "ring_setup": 20, "ring_ready": 21,
    "interrupt_config": 22,
}
KIND_NAMES = {v: k for k, v in KINDS.items()}
(HELLO, CONFIG_READ, CONFIG_WRITE, MEM_READ, MEM_WRITE, IO_READ, IO_WRITE,
 COMPLETION, DMA_READ, DMA_WRITE, INTX, MSI, MSIX, DEVICE_DESCRIPTION, RESET,
 GOODBYE, ERROR) = range(1, 18)
# Hello.features bits (spec 2.2)
FEATURE_MEM_BURST, FEATURE_CONFIG_EXT, FEATURE_GUEST_MEMORY = 1, 2, 4
FEATURE_SHM_RINGS = 8
FEATURE_INTERRUPT_CONFIG = 16      # protocol 1.3 (spec 12)
FEATURE_REG_RECORDS = 32           # protocol 1.4 (spec 11.7)
# Completion status
SC, UR, CA, CRS = 0, 1, 2, 3
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


def memory_map(*regions):
    """A MemoryMap of (guest_address, size, fd_offset) regions (spec 10.2)."""
    return message("memory_map", *[
        (1, b"".join(field(n, v) for n, v in
                     ((1, ga), (2, size), (3, off)) if v)) for ga, size, off in regions])


def bus_master(enabled):
    return message("bus_master", (1, int(enabled)))


def interrupt_config(msi_enabled=False, msi_vectors=0, msi_address=0,
                     msi_data=0, msi_mask=0, msix_enabled=False,
                     msix_masked=False, entries=()):
    """An InterruptConfig (spec 12.2); @entries: (vector, address, data,
    masked) tuples.  Fields at 0 are left off the wire, as protobuf does."""
    def present(*fields):
        return [(n, int(v) if isinstance(v, bool) else v)
                for n, v in fields if v]
    ents = [(8, b"".join(field(n, v) for n, v in
                         present((1, vec), (2, addr), (3, data), (4, masked))))
            for vec, addr, data, masked in entries]
    return message("interrupt_config", *present(
        (1, msi_enabled), (2, msi_vectors), (3, msi_address), (4, msi_data),
        (5, msi_mask), (6, msix_enabled), (7, msix_masked)), *ents)


def parse_repeated(buf, num):
    """Every occurrence of length-delimited field @num, in order."""
    out, off = [], 0
    while off < len(buf):
        key, off = read_varint(buf, off)
        wire = key & 7
        if wire == 0:
            _, off = read_varint(buf, off)
        elif wire == 2:
            n, off = read_varint(buf, off)
            if key >> 3 == num:
                out.append(buf[off:off + n])
            off += n
        elif wire == 5:
            off += 4
        elif wire == 1:
            off += 8
        else:
            raise ValueError(f"wire type {wire}")
    return out


def parse_interrupt_config(sub):
    """An InterruptConfig body as a dict (spec 12.2), defaults filled in:
    msi_enabled, msi_vectors, msi_address, msi_data, msi_mask,
    msix_enabled, msix_masked, and entries {vector: (address, data,
    masked)}."""
    f = parse_fields(sub)
    names = ["msi_enabled", "msi_vectors", "msi_address", "msi_data",
             "msi_mask", "msix_enabled", "msix_masked"]
    out = {name: f.get(i + 1, 0) for i, name in enumerate(names)}
    out["entries"] = {}
    for e in parse_repeated(sub, 8):
        ef = parse_fields(e)
        out["entries"][ef.get(1, 0)] = (ef.get(2, 0), ef.get(3, 0), ef.get(4, 0))
    return out


def hello(major=1, minor=0, features=3, name="pfwire", max_payload=4096,
          magic=MAGIC):
    return message("hello", (1, ("fixed32", magic)), (2, major), (3, minor),
                   (4, features), (5, name), (6, max_payload))


# ---------------------------------------------------------------------------
# Binary register records (spec 11.7): 24 bytes where a frame's length
# prefix would be, marked by bit 31 of that word.

REGREC_SIZE = 24
REGREC_KINDS = {"config_read": 2, "config_write": 3, "mem_read": 4,
                "mem_write": 5, "io_read": 6, "io_write": 7, "completion": 8}


def regrec(kind, tag=0, bar=0, offset=0, size=None, data=b"", status=0,
           marker=0x80, raw_size=None):
    """One record.  @kind a name of REGREC_KINDS or a number; @size the
    bytes read (reads) or, by default, len(@data); @status a completion's.
    @marker and @raw_size let a test write what a broken peer would."""
    k = REGREC_KINDS[kind] if isinstance(kind, str) else kind
    if size is None:
        size = len(data)
    third = status if k == 8 else bar
    rec = struct.pack("<BBBBIQ", k, raw_size if raw_size is not None else size,
                      third, marker, tag, offset)
    return rec + bytes(data).ljust(8, b"\0")[:8]


def decode_regrec(rec):
    """(kind name, {field: value}) of the Message a record stands for,
    numbered as in pciefw.proto, with "record" holding its raw bytes."""
    k, size, third, _, tag, off = struct.unpack_from("<BBBBIQ", rec)
    data = bytes(rec[16:16 + min(size, 8)])
    name = KIND_NAMES.get(k, f"kind{k}")
    if name == "completion":
        f = {1: tag, 2: third, 3: data}
    elif name in ("config_read", "config_write"):
        f = {1: tag, 2: off, 3: size if name == "config_read" else data}
    elif name == "mem_write":
        f = {1: third, 2: off, 3: data}
    else:                       # mem/io read: size; io write: data
        f = {1: tag, 2: third, 3: off,
             4: size if name.endswith("read") else data}
    f["record"] = bytes(rec)
    return name, f


def split_stream(buf, records=True, limit=None):
    """(items, rest of @buf): each complete item is ("frame", body) or,
    with @records, ("record", 24 bytes); at most @limit items."""
    out = []
    while len(buf) >= 4 and (limit is None or len(out) < limit):
        if records and buf[3] & 0x80:
            if len(buf) < REGREC_SIZE:
                break
            out.append(("record", buf[:REGREC_SIZE]))
            buf = buf[REGREC_SIZE:]
            continue
        n = struct.unpack_from("<I", buf)[0]
        if len(buf) < 4 + n:
            break
        out.append(("frame", buf[4:4 + n]))
        buf = buf[4 + n:]
    return out, buf


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
    """(kind name, {field: value}) of one Message body; an InterruptConfig
    as parse_interrupt_config() gives it."""
    top = parse_fields(body)
    (num, sub), = top.items()
    if num == KINDS["interrupt_config"]:
        return "interrupt_config", parse_interrupt_config(sub)
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
        self.records = False        # binary register records may come (11.7)

    def send(self, data):
        self.sock.sendall(data)

    def send_fds(self, data, fds):
        """@data with @fds as SCM_RIGHTS on its first byte (spec 10.2)."""
        n = socket.send_fds(self.sock, [data], list(fds))
        if n < len(data):
            self.sock.sendall(data[n:])

    def next(self):
        """The next message as (kind, fields), or None at a clean EOF.
        ConnectionResetError propagates: a peer must not reset us."""
        while True:
            items, _ = split_stream(self.buf, self.records, 1)
            if items:
                what, item = items[0]
                if what == "record":
                    self.buf = self.buf[REGREC_SIZE:]
                    return decode_regrec(item)
                self.buf = self.buf[4 + len(item):]
                return decode(item)
            data = self._recv()
            if not data:
                self.eof = True
                assert not self.buf, f"EOF inside a frame: {self.buf!r}"
                return None
            self.buf += data

    def _recv(self):
        return self.sock.recv(65536)

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
        """Hello both ways and the endpoint's DeviceDescription; the
        session's minor version and features (spec 2.2) are kept."""
        self.send(hello(**kw))
        got = self.until("device_description")
        kinds = [m[0] for m in got]
        assert kinds == ["hello", "device_description"], kinds
        theirs = got[0][1]
        self.minor = min(kw.get("minor", 0), theirs.get(3, 0))
        self.features = kw.get("features", 3) & theirs.get(4, 0)

    def close(self):
        self.sock.close()


# ---------------------------------------------------------------------------
# Endpoint-side messages

def field_varint(num, v):
    return field(num, int(v))


def field_bytes(num, payload):
    return field(num, bytes(payload))


def bar(index, size, kind=0, prefetchable=False):
    """One DeviceDescription.bars entry (kind: 0 mem32, 1 mem64, 2 IO)."""
    return field(7, field(1, index) + field(2, kind)
                 + field(3, int(prefetchable)) + field(4, size))


def description(vendor=0x1234, device=0xFE01, class_code=0xFF0000,
                bars=None, intx_pin=1, extra=b""):
    """DeviceDescription; default: BAR0 mem32 4 KiB, INTA#; @extra: more
    encoded fields."""
    if bars is None:
        bars = bar(0, 4096)
    d = (field(1, vendor) + field(2, device) + field(5, class_code) + bars
         + field(14, intx_pin) + extra)
    return frame(field(DEVICE_DESCRIPTION, d))


def completion(tag, status=SC, data=b""):
    fields = [(1, tag), (2, status)] + ([(3, bytes(data))] if data else [])
    return message(COMPLETION, *fields)


def dma_read(tag, address, size):
    return message(DMA_READ, (1, tag), (2, address), (3, size))


def dma_write(address, data):
    return message(DMA_WRITE, (1, address), (2, bytes(data)))


def intx(asserted):
    return message(INTX, (1, int(asserted)))


def msix(vector):
    return message(MSIX, (1, vector))


def goodbye(reason=0, text="test peer leaves"):
    return message(GOODBYE, (1, reason), (2, text))


class Msg:
    """A decoded Message: its kind (oneof field number) and body fields;
    for one that came as a binary register record (spec 11.7), the fields
    of the message it stands for and self.record its 24 bytes."""

    def __init__(self, body=None, record=None):
        self.record = record
        if record is not None:
            name, self.fields = decode_regrec(record)
            self.kind = KINDS.get(name, record[0])
            return
        top = parse_fields(body)
        (self.kind, self.body), = top.items()
        self.fields = parse_fields(self.body)

    def get(self, num, default=0):
        return self.fields.get(num, default)

    def __repr__(self):
        return f"Msg({KIND_NAMES.get(self.kind, self.kind)}, {self.fields})"


def split_frames(buf):
    """(complete frame bodies, rest of @buf)."""
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
    I/O and config writes completed), records every message, and sends
    whatever the test hands to send().  Setting @reading False makes it
    stop reading its socket, like a peer that hangs.  With @collect_fds it
    keeps the file descriptors QEMU passes (SCM_RIGHTS) in self.fds; with
    @rings (which implies it) it accepts QEMU's RingSetup and goes on over
    the shared-memory rings (spec 11), as RingEndpoint, and takes QEMU's
    binary register records there if both Hellos offered them (11.7)."""

    def __init__(self, path, greeting=None, accept_timeout=30,
                 collect_fds=False, rings=False):
        super().__init__(daemon=True)
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(1)
        self.greeting = greeting if greeting is not None else \
            hello(features=0, max_payload=65536) + description()
        self.reading = True
        self.answer_reads_with = None    # MemRead data, if not zeros
        self.unanswered = set()          # request kinds left hanging
        self.accept_timeout = accept_timeout
        self.collect_fds = collect_fds or rings
        self.accept_rings = rings
        self.rings = None           # a RingEndpoint once accepted
        self.records = False        # binary register records (11.7) on
        self.reply_records = False  # then answer with completion records
        self.fds = []
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
        buf = b""
        conn.settimeout(0.2)
        while not self._stopping:
            if not self.reading:
                time.sleep(0.05)
                continue
            if self.rings:
                data = self.rings.recv(0.2)
                if data is None:
                    break           # QEMU hung up
                items, buf = split_stream(buf + data, self.records)
                for what, item in items:
                    self._handle(Msg(item) if what == "frame" else
                                 Msg(record=item))
                continue
            try:
                if self.collect_fds:
                    data, fds, _, _ = socket.recv_fds(conn, 65536, 64)
                    with self._cv:
                        self.fds += fds
                else:
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
        if m.kind == KINDS["ring_setup"] and self.accept_rings:
            with self._cv:
                fds, self.fds = self.fds[:3], self.fds[3:]
            self.send(message("ring_ready", (1, 1)))
            self.records = self._records_negotiated()
            self.rings = RingEndpoint(self.conn, fds, m.get(1))
            return
        reply = None
        answer = completion
        if self.records and self.reply_records:
            def answer(tag, status=SC, data=b""):
                return regrec("completion", tag=tag, status=status, data=data)
        if m.kind in self.unanswered:
            pass
        elif m.kind in (CONFIG_READ, IO_READ):
            reply = answer(m.get(1), SC, bytes(m.get(3)))
        elif m.kind == MEM_READ:
            reply = answer(m.get(1), SC, self.answer_reads_with
                           if self.answer_reads_with is not None
                           else bytes(m.get(4)))
        elif m.kind == RESET:
            reply = completion(m.get(1), SC)
        elif m.kind in (IO_WRITE, CONFIG_WRITE):
            reply = answer(m.get(1), SC)
        if reply:
            self.send(reply)

    def _records_negotiated(self):
        """Spec 2.2, 11.7: both Hellos at 1.4 or later, with bit 5 and
        the rings."""
        mine = parse_fields(parse_fields(split_frames(self.greeting)[0][0])
                            [KINDS["hello"]])
        theirs = next((m for m in self.received if m.kind == HELLO), None)
        want = FEATURE_REG_RECORDS | FEATURE_SHM_RINGS
        return bool(theirs) and min(mine.get(3, 0), theirs.get(3)) >= 4 and \
            mine.get(4, 0) & theirs.get(4) & want == want

    def send(self, data, timeout=120.0):
        """Send all of @data.  The socket's own timeout is the reader's
        short poll; a QEMU busy applying what came before may take far
        longer than that to read more (a loaded machine), so only
        @timeout seconds without any progress fail."""
        if self.rings:
            with self._send_lock:
                self.rings.send(data, timeout)
            return
        view = memoryview(data)
        with self._send_lock:
            last = time.monotonic()
            while view:
                try:
                    n = self.conn.send(view)
                except socket.timeout:
                    if time.monotonic() - last > timeout:
                        raise
                    continue
                view = view[n:]
                last = time.monotonic()

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
        for fd in self.fds:
            os.close(fd)
        self.fds = []
        if self.rings:
            self.rings.close()


# ---------------------------------------------------------------------------
# The shared-memory rings (docs/protocol.md 11), written from the spec

RING_MAGIC = 0x47524650
RING_HEADER = 4096
TO_ENDPOINT, TO_HOST = 0, 1
CTL_TAIL, CTL_HEAD, CTL_ASLEEP, CTL_WAITING = 0, 64, 128, 192


def ring_setup(region_size):
    return message("ring_setup", (1, region_size))


def send_ring_setup(h, ring_bytes):
    """Send @h's peer a RingSetup with a fresh, good region and two
    doorbells, as is, and close our copies: for the tests of where one may
    come (spec 11.1), which expect it refused."""
    fd, mem = ring_region(ring_bytes)
    bells = [os.eventfd(0), os.eventfd(0)]
    h.send_fds(ring_setup(RING_HEADER + 2 * ring_bytes), [fd] + bells)
    for x in [fd] + bells:
        os.close(x)
    mem.close()


def ring_region(ring_bytes, sealed=True):
    """A memfd laid out as spec 11.2: (fd, mmap)."""
    size = RING_HEADER + 2 * ring_bytes
    fd = os.memfd_create("pfw-rings", os.MFD_ALLOW_SEALING)
    os.ftruncate(fd, size)
    if sealed:
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW)
    mem = mmap.mmap(fd, size)
    struct.pack_into("<III", mem, 0, RING_MAGIC, 1, ring_bytes)
    for d in (TO_ENDPOINT, TO_HOST):
        struct.pack_into("<I", mem, 64 + 256 * d + CTL_ASLEEP, 1)
    return fd, mem


_libc = ctypes.CDLL(None, use_errno=True)
_fence_word = ctypes.c_int()
_libc.pthread_spin_init(ctypes.byref(_fence_word), 0)


def full_fence():
    """The full fence spec 11.3 puts between a store and a load of
    different shared words.  Python has none of its own; glibc's x86-64
    pthread_spin_lock is a `lock`-prefixed instruction, which on x86 orders
    every earlier store before every later load (this project runs on
    x86-64 only)."""
    _libc.pthread_spin_lock(ctypes.byref(_fence_word))
    _libc.pthread_spin_unlock(ctypes.byref(_fence_word))


class RingHost(Conn):
    """A host that moves its session to the rings: after handshake() and
    setup(), send() writes into the ring to the endpoint and next() reads
    the ring to the host, sleeping on our doorbell.  The socket only shows
    EOF.

    Kicks (spec 11.4): by default send() rings the endpoint's doorbell
    after every write (a spurious kick is allowed); with exact_kicks only
    when the endpoint has announced sleep, as a producer that saves the
    system call does, so a wake-up the endpoint loses is not covered up.
    A full ring is waited for as 11.4 says, on our doorbell only: the
    endpoint must kick it once it has read (no polling covers that up
    either); room_waits counts the waits that slept until a kick.  fill()
    writes without kicking, as a host slow between publishing its tail and
    kicking would: the kick then comes from the wait for room."""

    def __init__(self, address, ring_bytes=65536, timeout=10.0,
                 exact_kicks=False):
        super().__init__(address, timeout)
        self.ring_bytes = ring_bytes
        self.timeout = timeout
        self.exact_kicks = exact_kicks
        self.on_rings = False
        self.room_waits = 0
        self.kick_due = False

    def setup(self, sealed=True, fds=None):
        """RingSetup with a fresh region; returns the RingReady fields."""
        self.fd, self.mem = ring_region(self.ring_bytes, sealed)
        self._words = {}
        self.ep_bell = os.eventfd(0, os.EFD_NONBLOCK)
        self.our_bell = os.eventfd(0, os.EFD_NONBLOCK)
        self.tx_pos = self.rx_pos = 0
        size = RING_HEADER + 2 * self.ring_bytes
        self.send_fds(ring_setup(size), fds or [self.fd, self.ep_bell, self.our_bell])
        kinds = self.until("ring_ready")
        assert [k for k, _ in kinds] == ["ring_ready"], kinds
        ready = kinds[-1][1]
        self.on_rings = bool(ready.get(1, 0))
        # Spec 11.7: records from here on, if 1.4 negotiated them.
        self.records = self.on_rings and self.minor >= 4 and bool(
            self.features & FEATURE_REG_RECORDS)
        return ready

    def ctl(self, d, off):
        return 64 + 256 * d + off

    def _word(self, d, off):
        """The 64-bit index (or 32-bit flag) as one aligned machine word: a
        peer must never see it half written (spec 11.3), which byte copies
        could show."""
        key = (d, off)
        if key not in self._words:
            kind = ctypes.c_uint32 if off in (CTL_ASLEEP, CTL_WAITING) else ctypes.c_uint64
            self._words[key] = kind.from_buffer(self.mem, self.ctl(d, off))
        return self._words[key]

    def set_index(self, d, off, value):
        self._word(d, off).value = value

    def index(self, d, off):
        return self._word(d, off).value

    def endpoint_asleep(self):
        """The endpoint has announced sleep on the ring to it."""
        return self.index(TO_ENDPOINT, CTL_ASLEEP) != 0

    def room(self):
        """Bytes the ring to the endpoint can take now."""
        used = self.tx_pos - self.index(TO_ENDPOINT, CTL_HEAD)
        assert 0 <= used <= self.ring_bytes, f"endpoint wrote head -{used}"
        return self.ring_bytes - used

    def _kick(self):
        """Spec 11.4, Writing: after publishing the tail, fence and kick the
        endpoint if it sleeps (exact_kicks), or kick it anyway."""
        self.kick_due = False
        if self.exact_kicks:
            full_fence()
            if not self.endpoint_asleep():
                return
        os.eventfd_write(self.ep_bell, 1)

    def fill(self, data):
        """Copy what fits of @data and publish it, without a kick yet;
        returns the bytes written."""
        base = RING_HEADER + TO_ENDPOINT * self.ring_bytes
        n = min(self.room(), len(data))
        done = 0
        while done < n:
            at = (self.tx_pos + done) % self.ring_bytes
            k = min(n - done, self.ring_bytes - at)
            self.mem[base + at:base + at + k] = data[done:done + k]
            done += k
        if n:
            self.tx_pos += n
            self.set_index(TO_ENDPOINT, CTL_TAIL, self.tx_pos)
            self.kick_due = True
        return n

    def _write_some(self, data):
        """Copy what fits of @data, publish it, kick; bytes written."""
        n = self.fill(data)
        if n:
            self._kick()
        return n

    def _wait_for_room(self):
        """Spec 11.4, Room: announce that we wait, fence, look again, then
        sleep on our doorbell until the endpoint, having read, kicks it.
        A kick from before the announcement does not count."""
        try:
            os.eventfd_read(self.our_bell)
        except BlockingIOError:
            pass
        self.set_index(TO_ENDPOINT, CTL_WAITING, 1)
        try:
            full_fence()
            if self.kick_due and not self.room():
                self._kick()
            deadline = time.monotonic() + self.timeout
            slept = False
            while not self.room():
                slept = True
                left = max(0, deadline - time.monotonic())
                r, _, _ = select.select([self.our_bell], [], [], left)
                assert r, (
                    "the ring to the endpoint stays full" if not self.room() else
                    "the endpoint read from the full ring but never kicked "
                    "our doorbell (spec 11.4)")
                try:
                    os.eventfd_read(self.our_bell)
                except BlockingIOError:
                    pass
            self.room_waits += slept
        finally:
            self.set_index(TO_ENDPOINT, CTL_WAITING, 0)

    def send(self, data):
        if not self.on_rings:
            return super().send(data)
        view = memoryview(data)
        while view:
            n = self._write_some(view)
            view = view[n:]
            if view and not n:
                self._wait_for_room()

    def _recv(self):
        if not self.on_rings:
            return super()._recv()
        base = RING_HEADER + TO_HOST * self.ring_bytes
        deadline = time.monotonic() + self.timeout
        hung_up = False
        while True:
            avail = self.index(TO_HOST, CTL_TAIL) - self.rx_pos
            assert 0 <= avail <= self.ring_bytes, f"endpoint wrote tail +{avail}"
            if avail:
                out = bytes(self.mem[base + (self.rx_pos + i) % self.ring_bytes]
                            for i in range(avail))
                self.rx_pos += avail
                self.set_index(TO_HOST, CTL_HEAD, self.rx_pos)
                # Spec 11.4, Room: an endpoint waiting for room is kicked.
                full_fence()
                if self.index(TO_HOST, CTL_WAITING):
                    os.eventfd_write(self.ep_bell, 1)
                return out
            # Spec 11.5: what it wrote before hanging up is read first.
            if hung_up:
                return b""
            r, _, _ = select.select([self.our_bell, self.sock], [], [], 0.05)
            if self.sock in r and not self.sock.recv(1, socket.MSG_PEEK):
                hung_up = True
                continue
            if self.our_bell in r:
                try:
                    os.eventfd_read(self.our_bell)
                except BlockingIOError:
                    pass
            if time.monotonic() > deadline:
                raise socket.timeout("nothing in the ring to the host")

    def close(self):
        super().close()
        if hasattr(self, "mem"):
            self._words.clear()
            self.mem.close()
            for fd in (self.fd, self.ep_bell, self.our_bell):
                os.close(fd)


class RingEndpoint:
    """The endpoint's side of the rings (spec 11), for scripted endpoints:
    maps the region QEMU passed with its RingSetup (fds: region, our
    doorbell, QEMU's doorbell), reads the ring to the endpoint and writes
    the ring to the host with slice copies, so a test can keep the ring
    full (a flood) at memory speed.  Every write kicks QEMU's doorbell (a
    spurious kick is allowed, spec 11.4); reading polls our doorbell and
    the socket, whose end of stream says QEMU has gone."""

    def __init__(self, sock, fds, region_size):
        self.sock = sock
        self.fd, self.our_bell, self.host_bell = fds
        self.mem = mmap.mmap(self.fd, region_size)
        magic, version, self.ring_bytes = struct.unpack_from("<III", self.mem, 0)
        assert magic == RING_MAGIC and version == 1, (magic, version)
        self.rx_pos = self.tx_pos = 0
        self._words = {}
        self.kicks = 0

    def _word(self, d, off):
        key = (d, off)
        if key not in self._words:
            self._words[key] = ctypes.c_uint64.from_buffer(
                self.mem, 64 + 256 * d + off)
        return self._words[key]

    def room(self):
        return self.ring_bytes - (self.tx_pos - self._word(TO_HOST, CTL_HEAD).value)

    def write_some(self, data):
        """Copy as much of @data as fits; returns the bytes written."""
        n = min(self.room(), len(data))
        base = RING_HEADER + TO_HOST * self.ring_bytes
        done = 0
        while done < n:
            at = (self.tx_pos + done) % self.ring_bytes
            k = min(n - done, self.ring_bytes - at)
            self.mem[base + at:base + at + k] = data[done:done + k]
            done += k
        if n:
            self.tx_pos += n
            self._word(TO_HOST, CTL_TAIL).value = self.tx_pos
            os.eventfd_write(self.host_bell, 1)
            self.kicks += 1
        return n

    def send(self, data, timeout=30.0):
        view = memoryview(data)
        deadline = time.monotonic() + timeout
        while view:
            n = self.write_some(view)
            view = view[n:]
            if view:
                if time.monotonic() > deadline:
                    raise TimeoutError("the ring to the host stays full")
                select.select([self.our_bell], [], [], 0.001)

    def recv(self, timeout):
        """Bytes QEMU wrote (b"" if none within @timeout), None once QEMU
        has hung up and its last bytes were read (spec 11.5)."""
        base = RING_HEADER + TO_ENDPOINT * self.ring_bytes
        deadline = time.monotonic() + timeout
        hung_up = False
        while True:
            avail = self._word(TO_ENDPOINT, CTL_TAIL).value - self.rx_pos
            assert 0 <= avail <= self.ring_bytes, f"QEMU wrote tail +{avail}"
            if avail:
                at = self.rx_pos % self.ring_bytes
                first = min(avail, self.ring_bytes - at)
                out = bytes(self.mem[base + at:base + at + first]) + \
                    bytes(self.mem[base:base + avail - first])
                self.rx_pos += avail
                self._word(TO_ENDPOINT, CTL_HEAD).value = self.rx_pos
                if self._word(TO_ENDPOINT, CTL_WAITING).value:
                    os.eventfd_write(self.host_bell, 1)
                return out
            # Spec 11.5: what QEMU wrote before hanging up is read first.
            if hung_up:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                return b""
            r, _, _ = select.select([self.our_bell, self.sock], [], [],
                                    min(left, 0.01))
            if self.our_bell in r:
                try:
                    os.eventfd_read(self.our_bell)
                except BlockingIOError:
                    pass
            if self.sock in r:
                try:
                    hung_up = not self.sock.recv(1, socket.MSG_PEEK)
                except OSError:
                    hung_up = True

    def close(self):
        self._words.clear()
        self.mem.close()
        for fd in (self.fd, self.our_bell, self.host_bell):
            os.close(fd)
