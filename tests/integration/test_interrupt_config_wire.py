"""The pciefw QEMU device tells its endpoint the function's MSI and MSI-X
settings (docs/protocol.md 12): a scripted endpoint (pfwire, written from
the spec) that offers PCIEFW_FEATURE_INTERRUPT_CONFIG records what QEMU
sends while a qtest guest programs the MSI capability, the MSI-X
capability and the MSI-X table.  Each test starts its own peer and QEMU
on UNIX sockets in a private directory; the harness stops them by PID."""

import os

import pfwire
from pfwire import ScriptedEndpoint
from test_qemu_device import (CAP_MSI, CAP_MSIX, TOPOLOGIES, DeviceUnderTest,
                              wait_for)

IRQCFG = pfwire.KINDS["interrupt_config"]
MSI_ADDR = 0xFEE01004
MSIX_ADDR = 0xFEE02000
TABLE, PBA = 0x800, 0x880              # in BAR0, as the description says


def _greeting(features=3 | pfwire.FEATURE_INTERRUPT_CONFIG, minor=3,
              max_payload=65536):
    """Hello, and a function with 4 MSI and 8 MSI-X vectors (table and PBA
    in its 4 KiB BAR0)."""
    f = pfwire.field
    msi_msix = (f(8, 4) + f(9, 8) + f(10, 0) + f(11, TABLE) + f(12, 0)
                + f(13, PBA))
    return (pfwire.hello(minor=minor, features=features, max_payload=max_payload)
            + pfwire.description(extra=msi_msix))


def _start(harness, greeting=None, dev_opts="", name="peer.sock"):
    path = harness.path(name)
    peer = harness.track(ScriptedEndpoint(path, greeting or _greeting()))
    t = TOPOLOGIES["q35-rootbus"]
    dev = f"pciefw,id=fw0,path={path},bus={t['bus']},addr={t['addr']}"
    if dev_opts:
        dev += "," + dev_opts
    q = harness.qemu(t["machine"] + ["-device", dev], name=name[:-5])
    return peer, q, DeviceUnderTest(q, t)


def _configs(peer, after=0):
    """The InterruptConfigs received (from message number @after on)."""
    return [pfwire.parse_interrupt_config(m.body)
            for m in peer.received[after:] if m.kind == IRQCFG]


def _flush(peer, d, tag_hint="flush"):
    """Make the guest read BAR0 and wait for it: everything QEMU sent
    before that read (posted, spec 5.1) has been received by then."""
    n = len(peer.received)
    d.qt.readl(d.bars[0].addr)
    peer.wait_for(lambda m: m.kind == pfwire.MEM_READ and
                  peer.received.index(m) >= n, what=tag_hint)


def test_msi_settings_reach_the_endpoint(harness):
    """Spec 12.3: each write of the MSI capability that changes it sends the
    whole MSI state; a write that changes nothing sends nothing; 12.4: the
    settings come before the guest's later BAR write."""
    peer, q, d = _start(harness)
    _flush(peer, d)
    assert _configs(peer) == [], "a function in its reset state costs nothing"
    cap = d.pci.caps(d.bdf)[CAP_MSI]
    mark = len(peer.received)
    d.cfg_write(cap + 4, MSI_ADDR)
    d.cfg_write(cap + 8, 0)                       # unchanged: nothing sent
    d.cfg_write(cap + 0xC, 0x4020, 2)
    d.cfg_write(cap + 0x10, 0x2)                  # mask bit of vector 1
    ctrl = d.cfg(cap + 2, 2)
    d.cfg_write(cap + 2, (ctrl & ~0x70) | 2 << 4 | 1, 2)     # 4 vectors, on
    d.qt.writel(d.bars[0].addr + 0x10, 0x1234)    # the "doorbell"
    _flush(peer, d)
    got = _configs(peer, mark)
    assert [c["msi_address"] for c in got] == [MSI_ADDR] * 4, got
    assert [c["msi_data"] for c in got] == [0, 0x4020, 0x4020, 0x4020]
    assert [c["msi_mask"] for c in got] == [0, 0, 2, 2]
    last = got[-1]
    assert (last["msi_enabled"], last["msi_vectors"]) == (1, 4), last
    assert (last["msix_enabled"], last["msix_masked"], last["entries"]) == \
        (0, 0, {}), last
    kinds = [m.kind for m in peer.received[mark:]]
    assert kinds.index(pfwire.MEM_WRITE) > max(
        i for i, k in enumerate(kinds) if k == IRQCFG), kinds
    # Disabled: the vectors read 0 again (12.2), the address stays.
    mark = len(peer.received)
    d.cfg_write(cap + 2, ctrl & ~1, 2)
    _flush(peer, d)
    (off,) = _configs(peer, mark)
    assert (off["msi_enabled"], off["msi_vectors"], off["msi_address"]) == \
        (0, 0, MSI_ADDR), off


def test_msix_table_entries_reach_the_endpoint(harness):
    """Spec 12.3: a write to a table entry that changes it sends that entry
    alone; the MSI-X control bits go with every message."""
    peer, q, d = _start(harness)
    cap = d.pci.caps(d.bdf)[CAP_MSIX]
    table = d.bars[0].addr + TABLE
    mark = len(peer.received)
    ctrl = d.cfg(cap + 2, 2)
    d.cfg_write(cap + 2, ctrl | 0xC000, 2)        # enable, function masked
    e3 = table + 3 * 16
    d.qt.writel(e3, MSIX_ADDR)
    d.qt.writel(e3 + 4, 0x1)                      # a 64-bit address
    d.qt.writel(e3 + 8, 0x4023)
    d.qt.writel(e3 + 12, 1)                       # still masked: no change
    d.qt.writel(e3 + 12, 0)                       # unmasked
    d.qt.writeq(table + 5 * 16, 0xFEE03000)       # 8 bytes at once
    d.cfg_write(cap + 2, (ctrl | 0x8000) & ~0x4000, 2)
    _flush(peer, d)
    got = _configs(peer, mark)
    assert len(got) == 7, got
    assert all(c["msix_enabled"] for c in got), got
    assert [c["msix_masked"] for c in got] == [1] * 6 + [0]
    entries = [c["entries"] for c in got]
    assert entries[0] == {}
    assert entries[1] == {3: (MSIX_ADDR, 0, 1)}
    assert entries[2] == {3: (MSIX_ADDR | 1 << 32, 0, 1)}
    assert entries[3] == {3: (MSIX_ADDR | 1 << 32, 0x4023, 1)}
    assert entries[4] == {3: (MSIX_ADDR | 1 << 32, 0x4023, 0)}
    assert entries[5] == {5: (0xFEE03000, 0, 1)}
    assert entries[6] == {}


def test_a_new_session_gets_what_differs_from_reset(harness):
    """Spec 12.3: an endpoint that comes back (reconnect) is told, after the
    Reset that revives it, the settings and every entry not in its reset
    state -- one entry per message when its max payload is 8 (12.5); a
    guest reset sends nothing and starts again from the reset state."""
    peer, q, d = _start(harness, dev_opts="reconnect=1")
    msi = d.setup_msi(MSI_ADDR, 0x4040, 1)
    table = d.bars[0].addr + TABLE
    for v in (0, 2, 7):
        d.qt.writel(table + 16 * v, MSIX_ADDR + v)
        d.qt.writel(table + 16 * v + 8, 0x100 + v)
    _flush(peer, d)
    peer.stop()
    path = harness.path("peer.sock")
    os.unlink(path)
    back = harness.track(ScriptedEndpoint(path, _greeting(max_payload=8)))
    reset = back.wait_for(lambda m: m.kind == pfwire.RESET, timeout=60,
                          what="the revive reset")
    # The guest is served again once the reset's completion is taken.
    wait_for(lambda: "reconnected to endpoint" in q.output(), timeout=30,
             what="QEMU's reconnection")
    _flush(back, d)
    kinds = [m.kind for m in back.received]
    assert kinds.index(IRQCFG) > kinds.index(pfwire.RESET), kinds
    got = _configs(back)
    assert len(got) == 3, got
    assert all(c["msi_enabled"] and c["msi_vectors"] == 2 and
               c["msi_address"] == MSI_ADDR and c["msi_data"] == 0x4040
               for c in got), got
    assert [c["entries"] for c in got] == [
        {v: (MSIX_ADDR + v, 0x100 + v, 1)} for v in (0, 2, 7)]
    assert reset.get(2) == 1                        # RESET_FUNCTION
    # A guest system reset: both sides hold the reset state, nothing sent.
    mark = len(back.received)
    q.qmp.cmd("system_reset")
    back.wait_for(lambda m: m.kind == pfwire.RESET and
                  back.received.index(m) >= mark, what="the guest's reset")
    d.enumerate()
    _flush(back, d)
    assert _configs(back, mark) == [], back.received[mark:]
    # Programmed anew: sent again, as the difference from the reset state.
    d.cfg_write(msi + 4, MSI_ADDR)
    _flush(back, d)
    (again,) = _configs(back, mark)
    assert (again["msi_enabled"], again["msi_address"], again["msi_data"]) == \
        (0, MSI_ADDR, 0), again


def test_only_with_the_feature(harness):
    """Spec 12.1: the same guest writes are told to an endpoint that
    negotiated the feature, and to no other: one that does not offer it,
    or a 1.2 one that sets the bit."""
    cases = [(_greeting(), True), (_greeting(features=3), False),
             (_greeting(minor=2), False)]
    for i, (greeting, told) in enumerate(cases):
        peer, q, d = _start(harness, greeting, name=f"peer{i}.sock")
        d.setup_msi(MSI_ADDR, 0x4040, 1)
        d.setup_msix(1, MSIX_ADDR, 0x4041)
        _flush(peer, d)
        got = _configs(peer)
        assert bool(got) == told, (i, got, peer.received)
        if told:
            assert got[-1]["entries"] == {} and got[-1]["msix_enabled"]
            assert {1: (MSIX_ADDR, 0x4041, 0)} in [c["entries"] for c in got]
        q.stop()
