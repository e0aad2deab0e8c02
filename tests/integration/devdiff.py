"""Host side of tools/devdiff (docs/models.md 8): the guest program's
output as tables, the differences a model's page declares intentional,
pcap captures compared frame by frame, and the frames the wire comparison
sends.

Only the standard library (run under /usr/bin/python3 with pytest).
"""

from __future__ import annotations

import os
import re
import struct
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def program() -> str:
    """build/tools/devdiff, built with ninja if it is missing."""
    build = REPO / "build"
    path = build / "tools" / "devdiff"
    if not os.access(path, os.X_OK):
        env = dict(os.environ, PATH="/usr/bin:/bin:" + os.environ.get("PATH", ""))
        if not (build / "build.ninja").exists():
            subprocess.run(["meson", "setup", str(build)], cwd=REPO, env=env, check=True,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        subprocess.run(["ninja", "-C", str(build), "tools/devdiff"], env=env, check=True,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    return str(path)


# --------------------------------------------------------------------------
# The guest program's output


@dataclass
class Row:
    name: str
    step: str
    a: int
    b: int

    @property
    def key(self) -> str:
        return f"{self.name} {self.step}"


@dataclass
class Ref:
    side: str
    name: str
    step: str
    want: int
    mask: int
    got: int


@dataclass
class Pair:
    what: str
    a: str
    b: str
    compared: list = field(default_factory=list)   # names, in order
    diffs: list = field(default_factory=list)      # Row
    same: list = field(default_factory=list)       # Row (wire: everything else)
    refs: list = field(default_factory=list)       # Ref
    skips: list = field(default_factory=list)      # (name, why)
    observations: int = 0
    done: bool = False

    def values(self, name: str, step: str) -> Row | None:
        for r in self.diffs + self.same:
            if r.name == name and r.step == step:
                return r
        return None


def parse(console: str) -> list[Pair]:
    """Every PAIR ... DONE block of @console, in order."""
    pairs, skips, cur = [], [], None
    for line in console.splitlines():
        if line.startswith("SKIP "):
            m = re.match(r"SKIP (\S+) \S+ ?(.*)", line)
            skips.append((m.group(1), m.group(2)))
        elif line.startswith("PAIR "):
            m = re.match(r"PAIR (\S+) A=(\S+) B=(\S+)", line)
            cur = Pair(m.group(1), m.group(2), m.group(3), skips=skips)
            skips = []
            pairs.append(cur)
        elif cur is None:
            continue
        elif line.startswith("CMP "):
            cur.compared.append(line.split()[1])
        elif line.startswith(("DIFF ", "SAME ")):
            name, step, a, b = [f.strip() for f in line[5:].split("|")]
            (cur.diffs if line.startswith("DIFF") else cur.same).append(
                Row(name, step, int(a, 16), int(b, 16)))
        elif line.startswith("REF "):
            m = re.match(r"REF (\S) (.+?) \| (.+?) \| want (\S+) mask (\S+) \| got (\S+)", line)
            cur.refs.append(Ref(m.group(1), m.group(2), m.group(3), int(m.group(4), 16),
                                int(m.group(5), 16), int(m.group(6), 16)))
        elif line.startswith("DONE "):
            cur.observations = int(re.search(r"observations=(\d+)", line).group(1))
            cur.done = True
            cur = None
    return pairs


def table(rows: list[list[str]], headers: list[str]) -> str:
    """A plain-text table, columns aligned."""
    cells = [headers] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def diff_table(rows: list[Row], labels=("ours", "QEMU's"), per_name: int = 4,
               listed=None) -> str:
    """The differences, at most @per_name rows per name (the rest counted);
    with @listed (a key -> bool), whether docs list each as intentional."""
    out, shown = [], {}
    for r in rows:
        n = shown.get(r.name, 0)
        shown[r.name] = n + 1
        if n < per_name:
            extra = [] if listed is None else ["yes" if listed(r) else "NO"]
            out.append([r.name, r.step, f"0x{r.a:08x}", f"0x{r.b:08x}"] + extra)
        elif n == per_name:
            more = sum(1 for x in rows if x.name == r.name) - per_name
            out.append([r.name, f"(+{more} more)", "", ""] + ([""] if listed else []))
    headers = ["register", "written / step", labels[0], labels[1]]
    return table(out, headers + ([] if listed is None else ["listed"]))


def ref_table(refs: list[Ref], per_name: int = 2) -> str:
    out, shown = [], {}
    for r in refs:
        n = shown.get(r.name, 0)
        shown[r.name] = n + 1
        if n < per_name:
            out.append([r.name, r.step, f"0x{r.want:08x}/0x{r.mask:08x}", f"0x{r.got:08x}"])
        elif n == per_name:
            out.append([r.name, f"(+{sum(1 for x in refs if x.name == r.name) - per_name} more)",
                        "", ""])
    return table(out, ["register", "written / step", "want/mask", "got"])


# --------------------------------------------------------------------------
# What a model's page declares intentional


@dataclass
class Declared:
    patterns: list      # globs (matches()): "NAME" matches a name, "NAME STEP" a name and step
    text: str           # the row, for messages


def declared(page: Path, heading: str) -> list[Declared]:
    """The rows of the first table under the Markdown heading that starts
    with @heading: its first column's `backticked` patterns."""
    lines = page.read_text().splitlines()
    try:
        start = next(i for i, l in enumerate(lines)
                     if l.startswith("#") and l.lstrip("#").strip().startswith(heading))
    except StopIteration:
        raise AssertionError(f"{page}: no heading '{heading}'")
    rows, in_table = [], False
    for l in lines[start + 1:]:
        if l.startswith("#"):
            break
        if l.startswith("|"):
            in_table = True
            first = l.split("|")[1]
            pats = re.findall(r"`([^`]+)`", first)
            if pats and not set(first.strip()) <= set("-: "):
                rows.append(Declared(pats, l))
        elif in_table:
            break
    if not rows:
        raise AssertionError(f"{page}: no table rows under '{heading}'")
    return rows


def _glob(pattern: str) -> re.Pattern:
    """"*" any text, "?" one character; everything else literal (names
    have brackets: `RAH[*]`)."""
    return re.compile("".join(".*" if c == "*" else "." if c == "?" else re.escape(c)
                              for c in pattern) + r"\Z")


def matches(decl: Declared, row: Row) -> bool:
    """A pattern with a space matches "NAME STEP", one without the name."""
    return any(_glob(p).match(row.key if " " in p else row.name) for p in decl.patterns)


def explain(rows: list[Row], decls: list[Declared]):
    """(rows no declaration covers, declarations that covered nothing)."""
    unexplained = [r for r in rows if not any(matches(d, r) for d in decls)]
    unused = [d for d in decls if not any(matches(d, r) for r in rows)]
    return unexplained, unused


# --------------------------------------------------------------------------
# Captures


def read_pcap(path: str) -> list[bytes]:
    """The frames of a classic pcap file (either byte order)."""
    data = Path(path).read_bytes()
    if len(data) < 24:
        raise AssertionError(f"{path}: not a pcap file ({len(data)} bytes)")
    magic = struct.unpack("<I", data[:4])[0]
    endian = "<" if magic in (0xa1b2c3d4, 0xa1b23c4d) else ">"
    frames, off = [], 24
    while off + 16 <= len(data):
        _, _, incl, _ = struct.unpack(endian + "IIII", data[off:off + 16])
        frames.append(data[off + 16:off + 16 + incl])
        off += 16 + incl
    return frames


def normalise(frame: bytes, own_mac: bytes) -> bytes:
    """What legitimately differs between two devices' captures: their own
    MAC addresses (timestamps are not compared at all)."""
    head = frame[:12].replace(own_mac, b"\xaa" * 6)
    return head + frame[12:]


def describe(frame: bytes) -> str:
    """A short name for a frame: protocol, lengths, TCP sequence and flags."""
    et, off, tag = struct.unpack(">H", frame[12:14])[0], 14, ""
    if et == 0x8100:
        tag = f"VLAN {struct.unpack('>H', frame[14:16])[0]:#06x} "
        et, off = struct.unpack(">H", frame[16:18])[0], 18
    if et != 0x0800 or len(frame) < off + 20:
        return f"{tag}ethertype {et:#06x} {len(frame)} bytes"
    ihl = (frame[off] & 0xf) * 4
    proto = frame[off + 9]
    l4 = off + ihl
    if proto == 6 and len(frame) >= l4 + 20:
        seq = struct.unpack(">I", frame[l4 + 4:l4 + 8])[0]
        return f"{tag}TCP {len(frame)} bytes seq {seq:#x} flags {frame[l4 + 13]:#04x}"
    return f"{tag}IPv4 proto {proto} {len(frame)} bytes"


def compare_frames(ours: list[bytes], theirs: list[bytes], what: str) -> list[Row]:
    """Frame by frame: a row per frame that differs (first differing byte)."""
    rows = []
    for i in range(max(len(ours), len(theirs))):
        a = ours[i] if i < len(ours) else None
        b = theirs[i] if i < len(theirs) else None
        if a == b:
            continue
        if a is None or b is None:
            rows.append(Row(f"{what}[{i}]", "present", int(a is not None), int(b is not None)))
            continue
        if len(a) != len(b):
            rows.append(Row(f"{what}[{i}]", "length", len(a), len(b)))
            continue
        at = next(j for j in range(len(a)) if a[j] != b[j])
        rows.append(Row(f"{what}[{i}]", f"byte {at}", a[at], b[at]))
    return rows


# --------------------------------------------------------------------------
# Frames the wire comparison sends (each carries "PFDD" and a tag byte)


def _csum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f">{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff


def _ipv4(proto: int, l4: bytes, bad_ip=False, frag=False) -> bytes:
    src, dst = bytes([10, 0, 78, 2]), bytes([10, 0, 78, 1])
    hdr = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(l4), 0x2222,
                      0x2000 if frag else 0x4000, 64, proto, 0, src, dst)
    c = _csum(hdr) ^ (0x1111 if bad_ip else 0)
    return hdr[:10] + struct.pack(">H", c) + hdr[12:] + l4


def _l4(proto: int, payload: bytes, bad=False, no_csum=False) -> bytes:
    src, dst = bytes([10, 0, 78, 2]), bytes([10, 0, 78, 1])
    if proto == 6:
        hdr = struct.pack(">HHIIBBHHH", 5001, 40000, 0x01020304, 0x10203040,
                          0x50, 0x18, 0xffff, 0, 0)
    else:
        hdr = struct.pack(">HHHH", 5002, 40001, 8 + len(payload), 0)
    seg = hdr + payload
    pseudo = src + dst + struct.pack(">BBH", 0, proto, len(seg))
    c = 0 if no_csum else (_csum(pseudo + seg) ^ (0x5555 if bad else 0))
    at = 16 if proto == 6 else 6
    return seg[:at] + struct.pack(">H", c) + seg[at + 2:]


def _eth(dst: bytes, et: int, body: bytes, vlan: int | None = None) -> bytes:
    src = bytes.fromhex("525400dd0002")
    tag = struct.pack(">HH", 0x8100, vlan) if vlan is not None else b""
    return dst + src + tag + struct.pack(">H", et) + body


def _payload(tag: int, n: int) -> bytes:
    body = b"PFDD" + bytes([tag])
    return body + bytes((i * 7 + tag) & 0xff for i in range(n - len(body)))


def rx_frames(mac: bytes) -> list[tuple[int, str, bytes]]:
    """(tag, name, frame) in the order sent; the last, tag 0xff, ends it."""
    ipv6_src, ipv6_dst = bytes(15) + b"\2", bytes(15) + b"\1"
    tcp6 = _l4(6, _payload(14, 100), no_csum=True)
    c6 = _csum(ipv6_src + ipv6_dst + struct.pack(">IxxxB", len(tcp6), 6) + tcp6)
    tcp6 = tcp6[:16] + struct.pack(">H", c6) + tcp6[18:]
    ipv6 = struct.pack(">IHBB", 0x60000000, len(tcp6), 6, 64) + ipv6_src + ipv6_dst + tcp6
    frames = [
        (1, "rx-tcp-good", _eth(mac, 0x0800, _ipv4(6, _l4(6, _payload(1, 200))))),
        (2, "rx-tcp-bad-csum", _eth(mac, 0x0800, _ipv4(6, _l4(6, _payload(2, 200), bad=True)))),
        (3, "rx-ip-bad-csum", _eth(mac, 0x0800, _ipv4(6, _l4(6, _payload(3, 200)), bad_ip=True))),
        (4, "rx-udp-good", _eth(mac, 0x0800, _ipv4(17, _l4(17, _payload(4, 300))))),
        (5, "rx-udp-bad-csum", _eth(mac, 0x0800, _ipv4(17, _l4(17, _payload(5, 300), bad=True)))),
        (6, "rx-udp-no-csum", _eth(mac, 0x0800, _ipv4(17, _l4(17, _payload(6, 300), no_csum=True)))),
        (7, "rx-vlan-tcp-good", _eth(mac, 0x0800, _ipv4(6, _l4(6, _payload(7, 200))), vlan=0x6005)),
        (8, "rx-vlan-tcp-bad-csum",
         _eth(mac, 0x0800, _ipv4(6, _l4(6, _payload(8, 200), bad=True)), vlan=0x0005)),
        (9, "rx-vlan-priority-only", _eth(mac, 0x0800, _ipv4(17, _l4(17, _payload(9, 100))),
                                          vlan=0xa000)),
        (10, "rx-jumbo-udp", _eth(mac, 0x0800, _ipv4(17, _l4(17, _payload(10, 9014 - 42))))),
        (11, "rx-broadcast", _eth(b"\xff" * 6, 0x0806, _payload(11, 46))),
        (12, "rx-other-unicast", _eth(bytes.fromhex("525400999999"), 0x0800,
                                      _ipv4(17, _l4(17, _payload(12, 100))))),
        (13, "rx-unlisted-multicast", _eth(bytes.fromhex("01005e0000fb"), 0x0800,
                                           _ipv4(17, _l4(17, _payload(13, 100))))),
        (14, "rx-ipv6-tcp", _eth(mac, 0x86dd, ipv6)),
        (15, "rx-ip-fragment", _eth(mac, 0x0800, _ipv4(17, _l4(17, _payload(15, 100)),
                                                        frag=True))),
        (16, "rx-tcp-1514", _eth(mac, 0x0800, _ipv4(6, _l4(6, _payload(16, 1460))))),
        (0xff, "rx-end", _eth(mac, 0x0800, _ipv4(17, _l4(17, _payload(0xff, 64))))),
    ]
    return frames
