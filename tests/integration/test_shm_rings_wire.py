"""The shared-memory rings (docs/protocol.md 11) against the real
endpoint, from a scripted host written from the spec (pfwire.RingHost):
the switch, requests and completions through the rings, a region the
endpoint must refuse, and a host that writes garbage into the rings.  The
error-table cases (RingSetup unnegotiated, without its fds) are in
test_error_table.py; the real QEMU over the rings in test_shm_rings.py."""

import os
import random
import socket
import struct
import time

import pytest

import pfwire
from pfwire import message
from procs import endpoint_in_tempdir
from testdev_map import ID, REG_ID, REG_SCRATCH, REG_INV

FEATURES = 3 | pfwire.FEATURE_SHM_RINGS


@pytest.fixture
def endpoint(endpoint_binary):
    with endpoint_in_tempdir(endpoint_binary, prefix="pfr-") as ep:
        yield ep


def ring_host(ep, **kw):
    h = pfwire.RingHost(ep.address, **kw)
    h.handshake(minor=2, features=FEATURES, max_payload=4096)
    return h


def read(h, off, tag):
    h.send(message("mem_read", (1, tag), (2, 0), (3, off), (4, 4)))
    kind, f = h.next()
    assert kind == "completion" and f.get(1, 0) == tag, (kind, f)
    return int.from_bytes(f.get(3, b""), "little")


@pytest.mark.parametrize("listen", ["unix", "tcp"])
def test_the_rings_are_offered_only_on_a_unix_socket(harness, listen):
    """Spec 11.1: the endpoint's Hello sets SHM_RINGS, and REG_RECORDS
    with it (11.7), on a UNIX socket only: fds cannot travel over TCP."""
    ep = harness.endpoint(listen="tcp:127.0.0.1:0" if listen == "tcp"
                          else None)
    c = pfwire.Conn(ep.address)
    c.send(pfwire.hello(minor=4, features=FEATURES))
    (kind, theirs), _ = c.until("device_description")
    assert kind == "hello"
    offered = theirs.get(4, 0) & (pfwire.FEATURE_SHM_RINGS |
                                  pfwire.FEATURE_REG_RECORDS)
    assert offered == (0 if listen == "tcp" else
                       pfwire.FEATURE_SHM_RINGS | pfwire.FEATURE_REG_RECORDS)
    c.close()


def test_the_session_moves_to_the_rings(endpoint):
    h = ring_host(endpoint, ring_bytes=4096)
    ready = h.setup()
    assert ready.get(1, 0) == 1, ready
    endpoint.wait_log("shared-memory rings in use")
    assert read(h, REG_ID, 1) == ID
    # Many round trips through a small ring wrap its indices many times.
    for i in range(300):
        value = 0x5A5A0000 | i
        h.send(message("mem_write", (1, 0), (2, REG_SCRATCH),
                       (3, value.to_bytes(4, "little"))))
        assert read(h, REG_INV, 100 + i) == value ^ 0xFFFFFFFF
    assert h.index(pfwire.TO_HOST, pfwire.CTL_TAIL) > 4096
    # Nothing came on the socket after RingReady (spec 11.1).
    h.sock.setblocking(False)
    with pytest.raises(BlockingIOError):
        h.sock.recv(1)
    h.close()
    endpoint.wait_log("host disconnected")


def wait_until(pred, what, timeout=10.0):
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.0002)


def endpoint_idle(h):
    """The endpoint has read everything and its polling has run out: only
    a kick wakes it (still asleep a millisecond later: not about to wake
    on a kick it had already been sent)."""
    if h.room() != h.ring_bytes or not h.endpoint_asleep():
        return False
    time.sleep(0.001)
    return h.endpoint_asleep()


def test_a_host_waiting_for_room_is_kicked(endpoint):
    """Spec 11.4, Room: a host that finds the ring to the endpoint full
    waits on its doorbell, and the endpoint that read from the ring kicks
    it.  QEMU's 1 MiB ring never fills in practice; here a 4 KiB ring is
    filled while the endpoint sleeps, before it is kicked (kicks only to
    a sleeper: no stale kick wakes it), so the host always finds it full,
    announces that it waits, then kicks: the endpoint reads, and must kick
    back.  RingHost waits for room on its doorbell alone, for at most its
    5 s timeout: a missing kick fails the test, where a host that polled
    would not have noticed it."""
    h = ring_host(endpoint, ring_bytes=4096, timeout=5.0, exact_kicks=True)
    assert h.setup().get(1, 0) == 1
    burst = b"".join(
        message("mem_write", (1, 0), (2, REG_SCRATCH),
                (3, (0x7E570000 + i).to_bytes(4, "little")))
        for i in range(1200))
    assert len(burst) > 4 * h.ring_bytes
    for _ in range(4):
        wait_until(lambda: endpoint_idle(h), "the endpoint to sleep")
        n = h.fill(burst)
        assert n == h.ring_bytes
        h.send(burst[n:])
    assert h.room_waits >= 4, h.room_waits
    assert read(h, REG_SCRATCH, 1) == 0x7E570000 + 1199
    h.close()


def test_no_wake_up_is_lost_while_the_endpoint_goes_to_sleep(
        sleep_pause_endpoint_binary):
    """Spec 11.3 and 11.4: going to sleep, the endpoint announces it,
    fences, and looks at the ring once more, so a request written at any
    moment is either seen or kicked.  A host that kicks only a sleeper
    (exact_kicks) makes round trips at random moments around the endpoint's
    going to sleep; the endpoint is the test build that pauses 1 ms between
    those two steps, so a request that can slip between them does so in
    every run.  Each round trip must complete within 3 s: one that does not
    lost its wake-up (the endpoint sleeps with the request in its ring)."""
    rng = random.Random(21)
    with endpoint_in_tempdir(sleep_pause_endpoint_binary, prefix="pfs-") as ep:
        h = ring_host(ep, timeout=3.0, exact_kicks=True)
        assert h.setup().get(1, 0) == 1
        to_a_sleeper = 0
        for i in range(150):
            # Idle 0 to 2.5 ms: within the endpoint's polling (10 to 500
            # us), within its pause, or after it.
            time.sleep(rng.uniform(0, 0.0025))
            to_a_sleeper += h.endpoint_asleep()
            value = 0x51EE0000 | i
            h.send(message("mem_write", (1, 0), (2, REG_SCRATCH),
                           (3, value.to_bytes(4, "little"))))
            try:
                got = read(h, REG_INV, i)
            except socket.timeout:
                pytest.fail(f"round trip {i} did not complete within 3 s: "
                            "the endpoint went to sleep with the request in "
                            "its ring and no kick (a lost wake-up)")
            assert got == value ^ 0xFFFFFFFF, (i, hex(got))
        # The sleeping side of the protocol was exercised, not only polling.
        assert to_a_sleeper >= 10, to_a_sleeper
        h.close()


def test_an_unsealed_region_is_refused_and_the_socket_serves(endpoint):
    h = ring_host(endpoint)
    ready = h.setup(sealed=False)
    assert ready.get(1, 0) == 0
    assert b"sealed" in ready.get(2, b""), ready
    assert read(h, REG_ID, 1) == ID        # over the socket, as before
    h.close()


def test_a_doorbell_that_is_not_an_eventfd_is_refused(endpoint):
    h = ring_host(endpoint)
    r, w = os.pipe()
    try:
        fd, mem = pfwire.ring_region(h.ring_bytes)
        ready = h.setup(fds=[fd, r, w])
        os.close(fd)
        mem.close()
    finally:
        os.close(r)
        os.close(w)
    assert ready.get(1, 0) == 0 and b"eventfd" in ready.get(2, b""), ready
    assert read(h, REG_ID, 1) == ID
    h.close()


def assert_endpoint_serves_a_new_host(ep):
    h = ring_host(ep)
    assert h.setup().get(1, 0) == 1
    assert read(h, REG_ID, 7) == ID
    h.close()


@pytest.mark.parametrize("tail", [1 << 20, (1 << 64) - 1],
                         ids=["far-ahead", "behind"])
def test_an_impossible_index_closes_only_that_connection(endpoint, tail):
    """Spec 11.5: the endpoint checks the host's tail on every load; an
    impossible one ends the connection, not the endpoint."""
    h = ring_host(endpoint)
    assert h.setup().get(1, 0) == 1
    assert read(h, REG_ID, 1) == ID
    h.set_index(pfwire.TO_ENDPOINT, pfwire.CTL_TAIL, tail)
    os.eventfd_write(h.ep_bell, 1)
    endpoint.wait_log("closed")
    assert endpoint.alive()
    h.close()
    assert_endpoint_serves_a_new_host(endpoint)


def test_an_impossible_head_closes_only_that_connection(endpoint):
    """The producer side: the host claims to have read more than the
    endpoint wrote; the endpoint's next write must not trust it."""
    h = ring_host(endpoint)
    assert h.setup().get(1, 0) == 1
    h.set_index(pfwire.TO_HOST, pfwire.CTL_HEAD, 1 << 40)
    h.send(message("mem_read", (1, 1), (2, 0), (3, REG_ID), (4, 4)))
    endpoint.wait_log("closed")
    assert endpoint.alive()
    h.close()
    assert_endpoint_serves_a_new_host(endpoint)


def test_garbage_in_the_ring_is_a_framing_error(endpoint):
    h = ring_host(endpoint)
    assert h.setup().get(1, 0) == 1
    h.send(struct.pack("<I", 0x7FFFFFF0) + os.urandom(64))
    rest = h.rest()
    assert [k for k, _ in rest] == ["error"], rest
    assert pfwire.ERROR_CODES[rest[0][1].get(1, 0)] == "ERROR_LIMIT"
    h.close()
    assert_endpoint_serves_a_new_host(endpoint)


@pytest.mark.parametrize("data", [b"\x01", b"\x00", b"\x00\x00"],
                         ids=["non-zero", "zero-without-fds", "two-zeros"])
def test_bytes_on_the_socket_after_the_switch_are_refused(endpoint, data):
    """Spec 11.1: beside the rings the socket carries one zero byte with
    each batch of fds, nothing else; anything else is answered with an
    Error, through the rings (7.1)."""
    h = ring_host(endpoint)
    assert h.setup().get(1, 0) == 1
    h.sock.sendall(data)
    rest = h.rest()
    assert [k for k, _ in rest] == ["error"], rest
    assert pfwire.ERROR_CODES[rest[0][1].get(1, 0)] == "ERROR_PROTOCOL"
    assert b"socket beside the rings" in rest[0][1].get(2, b"")
    h.close()
    assert_endpoint_serves_a_new_host(endpoint)


def test_a_socket_kept_full_of_fds_is_a_limit_not_a_stall(endpoint):
    """Zero bytes with fds, faster than any map claims them: the endpoint
    reads one batch at a time and stops at the fd limit (10.2)."""
    h = ring_host(endpoint)
    assert h.setup().get(1, 0) == 1
    r, w = os.pipe()
    try:
        for _ in range(70):
            h.send_fds(b"\x00", [r])
        # A request through the rings makes it look at the socket.
        h.send(message("mem_read", (1, 1), (2, 0), (3, REG_ID), (4, 4)))
        rest = h.rest()
    finally:
        os.close(r)
        os.close(w)
    assert rest and rest[-1][0] == "error", rest
    assert pfwire.ERROR_CODES[rest[-1][1].get(1, 0)] == "ERROR_LIMIT"
    h.close()
    assert_endpoint_serves_a_new_host(endpoint)


def test_ring_setup_only_first_after_the_description(endpoint):
    """Spec 11.1: RingSetup is the host's first message after the
    description or not at all."""
    h = ring_host(endpoint)
    assert read(h, REG_ID, 1) == ID
    pfwire.send_ring_setup(h, h.ring_bytes)
    rest = h.rest()               # a clean end of stream, not a reset (13)
    assert [k for k, _ in rest] == ["error"], rest
    assert pfwire.ERROR_CODES[rest[0][1].get(1, 0)] == "ERROR_UNEXPECTED"
    h.close()


def test_one_ring_setup_per_session_even_refused(endpoint):
    """A refused RingSetup leaves the session on the socket; a second one
    is ERROR_UNEXPECTED, and the connection ends cleanly although its fds
    byte was never read by a handler (no ECONNRESET)."""
    h = ring_host(endpoint)
    assert h.setup(sealed=False).get(1, 0) == 0
    pfwire.send_ring_setup(h, h.ring_bytes)
    h.on_rings = False
    rest = h.rest()
    assert [k for k, _ in rest] == ["error"], rest
    assert pfwire.ERROR_CODES[rest[0][1].get(1, 0)] == "ERROR_UNEXPECTED"
    h.close()


@pytest.mark.parametrize("word", [(pfwire.TO_ENDPOINT, pfwire.CTL_TAIL),
                                  (pfwire.TO_HOST, pfwire.CTL_HEAD)],
                         ids=["tail-to-endpoint", "head-to-host"])
def test_indices_not_zero_at_setup_are_refused(endpoint, word):
    """Spec 11.2: both sides count from 0; a region set up otherwise is
    refused and the session stays on the socket."""
    h = ring_host(endpoint)
    fd, mem = pfwire.ring_region(h.ring_bytes)
    struct.pack_into("<Q", mem, 64 + 256 * word[0] + word[1], 100)
    bells = [os.eventfd(0, os.EFD_NONBLOCK), os.eventfd(0, os.EFD_NONBLOCK)]
    h.send_fds(pfwire.ring_setup(4096 + 2 * h.ring_bytes), [fd] + bells)
    ready = h.until("ring_ready")[-1][1]
    for x in [fd] + bells:
        os.close(x)
    mem.close()
    assert ready.get(1, 0) == 0 and b"at setup" in ready.get(2, b""), ready
    assert read(h, REG_ID, 1) == ID
    h.close()
