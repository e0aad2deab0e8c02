"""The shared-memory rings (docs/protocol.md 11.1) as QEMU's pciefw-epc
keeps them, from a scripted host written from the spec (pfwire.RingHost)
driving the EPC through qtest: the switch, a refused region leaving the
socket serving, a RingSetup that is not the host's first message after the
description, and one per session even when refused.  The same rules against pciefw-endpoint are in
test_shm_rings_wire.py; the EPF pair over the rings in test_epf_pair.py."""


import pfwire
from pfwire import message

from epcqtest import FN_RAM, REGS, program_function, start_epc

FEATURES = 3 | pfwire.FEATURE_SHM_RINGS


def ring_host(harness):
    """The EPC started with its function, and a host past the description
    that negotiated the rings."""
    q, qt, addr = start_epc(harness)
    program_function(qt)
    qt.write(FN_RAM, bytes(range(16)))
    h = pfwire.RingHost(addr)
    qt.writel(REGS + 0x010, 1)                      # START
    h.handshake(minor=2, features=FEATURES, max_payload=4096)
    assert h.features & pfwire.FEATURE_SHM_RINGS, "the EPC offers no rings"
    return h


def read(h, tag):
    h.send(message("mem_read", (1, tag), (2, 0), (3, 4), (4, 4)))
    kind, f = h.next()
    assert kind == "completion" and f.get(1, 0) == tag, (kind, f)
    return f.get(3, b"")


def assert_unexpected(h):
    rest = h.rest()
    assert [k for k, _ in rest] == ["error"], rest
    assert pfwire.ERROR_CODES[rest[0][1].get(1, 0)] == "ERROR_UNEXPECTED"


def test_the_epc_moves_to_the_rings(harness):
    h = ring_host(harness)
    assert h.setup().get(1, 0) == 1
    for tag in range(1, 50):
        assert read(h, tag) == bytes(range(4, 8))
    # Nothing came on the socket after RingReady (spec 11.1).
    h.sock.setblocking(False)
    try:
        h.sock.recv(1)
        raise AssertionError("bytes on the socket after ring_ready")
    except BlockingIOError:
        pass
    h.close()


def test_ring_setup_only_first_after_the_description(harness):
    """Spec 11.1: after a request, RingSetup is ERROR_UNEXPECTED."""
    h = ring_host(harness)
    assert read(h, 1) == bytes(range(4, 8))
    pfwire.send_ring_setup(h, h.ring_bytes)
    assert_unexpected(h)
    h.close()


def test_a_refused_ring_setup_leaves_the_socket_serving(harness):
    h = ring_host(harness)
    ready = h.setup(sealed=False)
    assert ready.get(1, 0) == 0 and b"seal" in ready.get(2, b""), ready
    for tag in range(1, 10):
        assert read(h, tag) == bytes(range(4, 8))
    h.close()


def test_one_ring_setup_per_session_even_refused(harness):
    """Spec 11.1: a second RingSetup, straight after a refused one, is
    ERROR_UNEXPECTED."""
    h = ring_host(harness)
    assert h.setup(sealed=False).get(1, 0) == 0
    pfwire.send_ring_setup(h, h.ring_bytes)
    assert_unexpected(h)
    h.close()
