"""The e1000 model checked against QEMU's own e1000 (docs/e1000.md 10,
docs/models.md 8): one guest with our e1000 behind pciefw and three of
QEMU's in-process e1000s; the static devdiff program drives them in pairs
through the same sequence.

- Registers: every register of docs/e1000.md's table with zeros, ones,
  walking ones and the Linux driver's self-test patterns, read-to-clear
  counters, reserved bits, the EEPROM bit by bit and through EERD, the PHY
  through MDIC, each interrupt cause through ICS with its IMS bit seen (or
  not) as INTx, the driver's own interrupt test, CTRL.RST, the IO window.
- The wire: the same TX packets (TSO over IPv4, checksum offload, VLAN
  insertion, a jumbo frame) and RX frames (good and bad checksums, VLAN
  tags stripped, a jumbo frame, filtered ones) through both; captures
  (the endpoint's pcap, QEMU's filter-dump) compared frame by frame and
  the descriptors' write-backs and the counters compared.

Each difference between ours and QEMU's must be listed in docs/e1000.md 10
(with its reason) and every listed one must still occur; ours must meet
the references the register list gives (SDM widths, the driver's
self-test). QEMU's e1000 against another of its own shows no difference at
all: the harness itself adds none. One boot serves every assertion here.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest

import devdiff
import guestlib
from conftest import Harness

REPO = Path(__file__).resolve().parents[2]
PAGE = REPO / "docs" / "e1000.md"
REGS = REPO / "tools" / "devdiff" / "e1000.regs"
MAC = "52:54:00:e1:00:0d"
MEMBASE = 0x10000000            # 4 MiB the guest kernel leaves alone (memmap=)
OURS, QEMU_A, QEMU_B, QEMU_C = (f"0000:0{i}:00.0" for i in range(1, 5))

SCRIPT = f"""#!/bin/sh
devdiff wire e1000 /e1000.regs {MEMBASE:#x} {OURS} {QEMU_A} || exit 10
devdiff wire e1000 /e1000.regs {MEMBASE:#x} {QEMU_B} {QEMU_C} || exit 11
devdiff regs /e1000.regs {OURS} {QEMU_A} || exit 12
devdiff regs /e1000.regs {QEMU_B} {QEMU_C} || exit 13
"""


@dataclass
class Run:
    console: str
    wire: devdiff.Pair
    wire_self: devdiff.Pair
    regs: devdiff.Pair
    regs_self: devdiff.Pair
    captures: dict          # BDF -> frames
    frames: list            # (tag, name, frame) sent to each device


def _bind(path: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    return s


@pytest.fixture(scope="module")
def run(qemu_binary, endpoint_binary):
    workdir = tempfile.mkdtemp(prefix="pfdd-", dir="/tmp")
    h = Harness(qemu_binary, endpoint_binary, workdir)
    wd = Path(workdir)
    peers = []
    try:
        # Each device's wire: the test's socket at "-peer", the device's at ".sock".
        names = {OURS: "ours", QEMU_A: "qa", QEMU_B: "qb", QEMU_C: "qc"}
        peers = [_bind(str(wd / f"{n}-peer.sock")) for n in names.values()]
        h.endpoint(name="e1000", device=(
            f"e1000,mac={MAC},backend=dgram,local=unix:{wd}/ours.sock,"
            f"remote=unix:{wd}/ours-peer.sock,pcap={wd}/ours.pcap"))
        args = ["-device", "pcie-root-port,id=rp0,slot=1",
                "-device", f"pciefw,bus=rp0,path={wd}/e1000.sock"]
        for i, n in enumerate(("qa", "qb", "qc"), start=1):
            args += ["-device", f"pcie-root-port,id=rp{i},slot={i + 1}",
                     "-netdev", f"dgram,id={n},local.type=unix,local.path={wd}/{n}.sock,"
                                f"remote.type=unix,remote.path={wd}/{n}-peer.sock",
                     "-object", f"filter-dump,id=d{n},netdev={n},file={wd}/{n}.pcap",
                     "-device", f"e1000,bus=rp{i},netdev={n},mac={MAC},romfile="]
        initrd = guestlib.make_initramfs(wd / "guest", SCRIPT, {
            devdiff.program(): "/bin/devdiff", str(REGS): "/e1000.regs"})
        frames = devdiff.rx_frames(bytes.fromhex(MAC.replace(":", "")))
        sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        guest = guestlib.Guest(qemu_binary, initrd, args, memory=512,
                               append_extra=f"memmap=4M${MEMBASE:#x}")
        try:
            guest.start()
            for _ in range(2):
                # The newline: a line still arriving would match "$" at its end.
                m = guest.wait_for(r"^RX-READY (\S+) (\S+)\n", timeout=300)
                for bdf in m.groups():
                    for _, _, f in frames:
                        sender.sendto(f, str(wd / f"{names[bdf]}.sock"))
            res = guest.wait(600)
        finally:
            guest.stop()
            sender.close()
        h.stop_all()               # the endpoint writes out its capture
        assert res.status == 0, res.describe()
        pairs = devdiff.parse(res.console)
        assert [p.what for p in pairs] == ["wire", "wire", "regs", "regs"], res.describe()
        assert all(p.done for p in pairs), res.describe()
        captures = {bdf: devdiff.read_pcap(str(wd / f"{n}.pcap")) for bdf, n in names.items()}
        yield Run(res.console, *pairs, captures, frames)
    finally:
        for s in peers:
            s.close()
        h.stop_all()
        shutil.rmtree(workdir, ignore_errors=True)


def _report(title: str, pair: devdiff.Pair, rows, decls=None) -> str:
    listed = None if decls is None else (lambda r: any(devdiff.matches(d, r) for d in decls))
    return (f"\n== {title}: {len(pair.compared)} names, {pair.observations} observations, "
            f"{len(rows)} differences\n" + devdiff.diff_table(rows, listed=listed))


def _print_compared(title: str, pair: devdiff.Pair):
    """Every name the run compared, and what it left alone and why."""
    print(f"\n{title}: compared {', '.join(pair.compared)}")
    for name, why in pair.skips:
        print(f"  not written: {name} ({why})")


def _check_against_page(title, pair, rows, heading):
    decls = devdiff.declared(PAGE, heading)
    report = _report(title, pair, rows, decls)
    print(report)
    unexplained, unused = devdiff.explain(rows, decls)
    ours_refs = [r for r in pair.refs if r.side == "A"]
    problems = []
    if unexplained:
        problems.append("differences docs/e1000.md does not list:\n" +
                        devdiff.diff_table(unexplained, per_name=8))
    if unused:
        problems.append("listed in docs/e1000.md but not seen:\n" +
                        "\n".join(d.text for d in unused))
    if ours_refs:
        problems.append("ours breaks the reference (SDM, the driver's self-test):\n" +
                        devdiff.ref_table(ours_refs))
    theirs = [r for r in pair.refs if r.side == "B"]
    if theirs:
        print(f"\n(QEMU's e1000 breaks the reference in {len(theirs)} places, "
              f"{len({r.name for r in theirs})} registers:)\n" + devdiff.ref_table(theirs, 1))
    assert not problems, report + "\n\n" + "\n\n".join(problems)


def _wire_rows(run: Run, pair: devdiff.Pair, a: str, b: str) -> list[devdiff.Row]:
    """The descriptors' and counters' differences, then the captures'."""
    names = {f"rx-frame[{t}]": n for t, n, _ in run.frames}
    rows = [devdiff.Row(names.get(r.name, r.name), r.step, r.a, r.b) for r in pair.diffs]
    mac = bytes.fromhex(MAC.replace(":", ""))
    for what, keep in (("tx-frame", lambda f: f[6:12] == mac),
                       ("rx-capture", lambda f: f[6:12] != mac)):
        ours = [devdiff.normalise(f, mac) for f in run.captures[a] if keep(f)]
        theirs = [devdiff.normalise(f, mac) for f in run.captures[b] if keep(f)]
        print(f"\n{what}s compared ({len(ours)} and {len(theirs)}):\n" +
              "\n".join(f"  {what}[{i}]: {devdiff.describe(f)}" for i, f in enumerate(ours)))
        rows += devdiff.compare_frames(ours, theirs, what)
    return rows


def test_registers_against_qemus_e1000(run):
    """Every register difference from QEMU's e1000 is listed in docs/e1000.md
    10.1 with its reason, and ours meets the SDM widths and the Linux
    driver's self-test (FCAH's 16 bits, IMS/ICS bits 5 and 8, ...)."""
    _print_compared("registers", run.regs)
    _check_against_page("registers, ours vs QEMU's e1000", run.regs, run.regs.diffs,
                        "10.1")


def test_registers_qemu_against_itself(run):
    """The harness adds nothing: two of QEMU's e1000s agree everywhere."""
    print(_report("registers, QEMU's e1000 vs QEMU's e1000", run.regs_self,
                  run.regs_self.diffs))
    assert run.regs_self.compared == run.regs.compared
    assert not run.regs_self.diffs, devdiff.diff_table(run.regs_self.diffs)


def test_wire_against_qemus_e1000(run):
    """TX frames on the wire, RX write-backs, counters: every difference
    from QEMU's e1000 is listed in docs/e1000.md 10.2."""
    _print_compared("the wire", run.wire)
    rows = _wire_rows(run, run.wire, OURS, QEMU_A)
    _check_against_page("the wire, ours vs QEMU's e1000", run.wire, rows, "10.2")


def test_wire_qemu_against_itself(run):
    rows = _wire_rows(run, run.wire_self, QEMU_B, QEMU_C)
    print(_report("the wire, QEMU's e1000 vs QEMU's e1000", run.wire_self, rows))
    assert not rows, devdiff.diff_table(rows)


# RX descriptor status and errors (SDM 3.2.3.1-2)
VP, TCPCS, IPCS = 0x08, 0x20, 0x40
TCPE, IPE = 0x20, 0x40


def test_rx_offload_flags_what_arrives(run):
    """What the stock driver sees in ours' RX descriptors (e1000_rx_checksum,
    VLAN): bad TCP/UDP and IP checksums flagged, good ones passed, tags
    stripped into the special field with VP."""
    names = {n: t for t, n, _ in run.frames}

    def field(name, step):
        row = run.wire.values(f"rx-frame[{names[name]}]", step)
        assert row is not None, (name, step)
        return row.a

    want = {   # name: (status bits set, status bits clear, errors, special)
        "rx-tcp-good": (IPCS | TCPCS, 0, 0, 0),
        "rx-tcp-bad-csum": (IPCS | TCPCS, 0, TCPE, 0),
        "rx-ip-bad-csum": (IPCS | TCPCS, 0, IPE, 0),
        "rx-udp-good": (IPCS | TCPCS, 0, 0, 0),
        "rx-udp-bad-csum": (IPCS | TCPCS, 0, TCPE, 0),
        "rx-udp-no-csum": (IPCS, TCPCS, 0, 0),
        "rx-vlan-tcp-good": (VP | IPCS | TCPCS, 0, 0, 0x6005),
        "rx-vlan-tcp-bad-csum": (VP | IPCS | TCPCS, 0, TCPE, 0x0005),
        "rx-vlan-priority-only": (VP | IPCS | TCPCS, 0, 0, 0xa000),
        "rx-ip-fragment": (IPCS, TCPCS, 0, 0),
        "rx-ipv6-tcp": (0, IPCS | TCPCS, 0, 0),
    }
    bad = []
    for name, (st_set, st_clear, errors, special) in want.items():
        got = (field(name, "received"), field(name, "status"), field(name, "errors"),
               field(name, "special"))
        if (got[0] != 1 or got[1] & st_set != st_set or got[1] & st_clear
                or got[2] != errors or got[3] != special):
            bad.append(f"{name}: received {got[0]} status {got[1]:#04x} errors "
                       f"{got[2]:#04x} special {got[3]:#06x}; want status with "
                       f"{st_set:#04x} without {st_clear:#04x}, errors {errors:#04x}, "
                       f"special {special:#06x}")
    for name in ("rx-other-unicast", "rx-unlisted-multicast"):
        if field(name, "received"):
            bad.append(f"{name}: received, the filters should drop it")
    assert not bad, "\n".join(bad)
