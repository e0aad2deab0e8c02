"""Guest memory sharing (docs/protocol.md 10) against the real endpoint,
from a scripted host written from the spec (pfwire): the regions an
endpoint must refuse, copies landing in the memory file the host passed,
and the fallbacks to DmaWrite messages.  The error-table cases (bad maps,
missing or excess fds) are in test_error_table.py."""

import fcntl
import mmap
import os

import pytest

import pfwire
from procs import endpoint_in_tempdir
from pfwire import message
from testdev_map import *  # noqa: F401,F403  (docs/testdev.md)

PAGE = 4096
GUEST = 0x10000          # where the shared region sits in "guest" memory
SIZE = 16 * PAGE


def memfd(size, sealed=True):
    fd = os.memfd_create("pfw-test", os.MFD_ALLOW_SEALING)
    os.ftruncate(fd, size)
    if sealed:
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW)
    return fd


@pytest.fixture
def endpoint(endpoint_binary):
    with endpoint_in_tempdir(endpoint_binary, prefix="pfg-") as ep:
        yield ep


class Host:
    """A host that negotiated guest memory and drives testdev's BAR0."""

    def __init__(self, ep):
        self.c = pfwire.Conn(ep.address)
        self.c.handshake(minor=1, features=3 | pfwire.FEATURE_GUEST_MEMORY,
                         max_payload=4096)
        self.tag = 100
        self.seen = []          # endpoint messages other than completions

    def write(self, off, value, size=4):
        self.c.send(message("mem_write", (1, 0), (2, off),
                            (3, value.to_bytes(size, "little"))))

    def read(self, off, size=4):
        """A MemRead of BAR0; DmaReads met meanwhile are refused (CA)."""
        self.tag += 1
        self.c.send(message("mem_read", (1, self.tag), (2, 0), (3, off), (4, size)))
        while True:
            m = self.c.next()
            assert m is not None, "endpoint closed"
            kind, f = m
            if kind == "completion" and f.get(1, 0) == self.tag:
                return int.from_bytes(f.get(3, b""), "little")
            self.seen.append(m)
            if kind == "dma_read":
                self.c.send(pfwire.completion(f.get(1, 0), pfwire.CA))

    def fill(self, addr, length, value):
        """testdev FILL (DMA writes only); returns DMA_STATUS."""
        self.write(REG_DMA_STATUS, ST_DONE | ST_ERROR)
        self.write(REG_SCRATCH, value)
        self.write(REG_DMA_DST, addr, 8)
        self.write(REG_DMA_LEN, length)
        self.write(REG_DMA_CMD, DMA_START | 1 << 4)
        for _ in range(1000):
            st = self.read(REG_DMA_STATUS)
            if not st & ST_BUSY and st & (ST_DONE | ST_ERROR):
                return st
        raise AssertionError("FILL never finished")

    def dma_writes(self):
        out = [f for k, f in self.seen if k == "dma_write"]
        self.seen = []
        return out


def test_copies_land_in_the_passed_memory(endpoint):
    fd = memfd(SIZE)
    mem = mmap.mmap(fd, SIZE)
    h = Host(endpoint)
    h.c.send_fds(pfwire.memory_map((GUEST, SIZE, 0)), [fd])
    os.close(fd)
    endpoint.wait_log("guest memory: 1 of 1 regions mapped")
    # Bus mastering off: the FILL goes by messages (spec 10.3).
    assert h.fill(GUEST, 64, 0x11) & ST_DONE
    writes = h.dma_writes()
    assert writes and writes[0][1] == GUEST, writes
    assert mem[:64] == bytes(64)
    # On: a copy into our memory, no message.  The DmaWrite above was a
    # message, so copies wait until a later DMA read completes (10.4):
    # testdev's COPY reads first; we refuse that read, which still shows
    # the write handled.
    h.c.send(pfwire.bus_master(True))
    h.write(REG_DMA_STATUS, ST_DONE | ST_ERROR)
    h.write(REG_DMA_SRC, GUEST, 8)
    h.write(REG_DMA_DST, GUEST, 8)
    h.write(REG_DMA_LEN, 8)
    h.write(REG_DMA_CMD, DMA_START)
    while not h.read(REG_DMA_STATUS) & (ST_DONE | ST_ERROR):
        pass
    assert any(k == "dma_read" for k, _ in h.seen), h.seen
    h.seen = []
    assert h.fill(GUEST + 0x100, 3 * PAGE, 0x5A) & ST_DONE
    assert h.dma_writes() == []
    assert mem[0x100:0x100 + 3 * PAGE] == b"\x5a" * 3 * PAGE
    assert mem[0x100 + 3 * PAGE] == 0
    # Crossing the region's end, or outside it: messages (10.1).
    assert h.fill(GUEST + SIZE - 8, 16, 0x77) & ST_DONE
    assert [w[1] for w in h.dma_writes()] == [GUEST + SIZE - 8]
    assert mem[SIZE - 8:] == bytes(8)
    # An empty map withdraws it: messages again, and nothing lands here.
    h.c.send(pfwire.memory_map())
    endpoint.wait_log("guest memory: 0 of 0 regions mapped")
    assert h.fill(GUEST, 16, 0x33) & ST_DONE
    assert [w[1] for w in h.dma_writes()] == [GUEST]
    assert mem[:16] == bytes(16)
    mem.close()
    h.c.close()


def minor_faults(pid):
    with open(f"/proc/{pid}/stat") as f:
        return int(f.read().rsplit(")", 1)[1].split()[7])


def test_map_prefaulted_where_the_file_holds_pages(endpoint):
    """When a map comes, the endpoint fills, while idle, the page tables of
    the pages the memory file already holds: DMA there then takes no page
    fault.  Pages the file does not hold stay unallocated (filling those
    would allocate all of guest RAM)."""
    half = 4 << 20
    fd = memfd(2 * half)
    mem = mmap.mmap(fd, 2 * half)
    mem[:half] = b"\x01" * half                     # the second half: a hole
    h = Host(endpoint)
    h.c.send_fds(pfwire.memory_map((GUEST, 2 * half, 0)), [fd])
    h.c.send(pfwire.bus_master(True))
    log = endpoint.wait_log("page tables filled")
    assert "page tables filled for the 4 MiB the memory file holds" in log, log
    assert os.fstat(fd).st_blocks * 512 == half
    before = minor_faults(endpoint.pid)
    assert h.fill(GUEST, half, 0x5A) & ST_DONE
    faults = minor_faults(endpoint.pid) - before
    assert h.dma_writes() == []
    assert mem[:half] == b"\x5a" * half
    # The same FILL into the hole, whose pages nothing filled: each of its
    # 1024 pages faults on its first store.  Set against that, not against
    # a constant: an endpoint built with ASan also faults in the shadow of
    # each range it stores to (128 pages per 4 MiB), the same for both.
    before = minor_faults(endpoint.pid)
    assert h.fill(GUEST + half, half, 0x5A) & ST_DONE
    hole_faults = minor_faults(endpoint.pid) - before
    assert mem[half:] == b"\x5a" * half
    assert hole_faults - faults >= 1024 - 64, (faults, hole_faults)
    mem.close()
    os.close(fd)
    h.c.close()


def test_unsafe_regions_are_refused(endpoint):
    """Each region the endpoint cannot map safely is refused on its own,
    with a reason in the log; the session goes on (spec 10.2)."""
    r, w = os.pipe()
    loose = memfd(PAGE, sealed=False)
    short = memfd(PAGE)
    good = memfd(PAGE)
    h = Host(endpoint)
    h.c.send_fds(pfwire.memory_map((0x1000, PAGE, 0), (0x2000, PAGE, 0),
                                   (0x3000, 2 * PAGE, 0), (0x8000, PAGE, 0),
                                   (0x9000, PAGE, 1 << 40)),
                 [r, loose, short, good, good])
    for fd in (r, w, loose, short, good):
        os.close(fd)
    log = endpoint.wait_log("guest memory: 1 of 5 regions mapped")
    assert "0x1000+0x1000 refused (not a regular or memory file)" in log, log
    assert "0x2000+0x1000 refused (the file is not sealed" in log, log
    assert "0x3000+0x2000 refused (the file has 4096 bytes" in log, log
    assert "0x9000+0x1000 refused (the file has 4096 bytes" in log, log
    assert h.read(REG_ID) == ID
    h.c.close()


def test_fds_pair_with_their_map_across_splits(endpoint):
    """Two maps in one write, each with its fd: the second replaces the
    first, and the fd of each goes with its own map (spec 10.2)."""
    a, b = memfd(PAGE), memfd(2 * PAGE)
    h = Host(endpoint)
    first = pfwire.memory_map((GUEST, PAGE, 0))
    second = pfwire.memory_map((GUEST, 2 * PAGE, 0))
    h.c.send_fds(first, [a])
    h.c.send_fds(second, [b])
    os.close(a)
    log = endpoint.wait_log("guest memory: 1 of 1 regions mapped (0 MiB)")
    h.c.send(pfwire.bus_master(True))
    assert h.fill(GUEST + PAGE, 16, 0x42) & ST_DONE
    assert h.dma_writes() == []
    with mmap.mmap(b, 2 * PAGE) as m:
        assert m[PAGE:PAGE + 16] == b"\x42" * 16
    os.close(b)
    assert "refused" not in log, log
    h.c.close()
