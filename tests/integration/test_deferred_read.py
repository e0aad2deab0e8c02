"""A read the endpoint completes only after its own DMA read has been
answered (testdev's FETCH, docs/testdev.md; spec 5.3), driven byte by byte
against a real pciefw-endpoint: requests pipelined behind it wait their
turn and complete in order (spec 5.1), the DMA completion is taken while
they wait, and a reset or a departing host does not leave it hanging."""


import pytest

import pfwire
from procs import endpoint_in_tempdir
from pfwire import message

FETCH_ADDR, FETCH, SCRATCH, INV, RESET_COUNT = 0x58, 0x60, 0x04, 0x08, 0x3C


@pytest.fixture
def endpoint(endpoint_binary):
    with endpoint_in_tempdir(endpoint_binary, prefix="pfd-") as ep:
        yield ep


def write(off, value, size=4):
    return message("mem_write", (1, 0), (2, off), (3, value.to_bytes(size, "little")))


def read(tag, off, size=4):
    return message("mem_read", (1, tag), (2, 0), (3, off), (4, size))


def test_requests_wait_behind_a_deferred_read(endpoint):
    c = pfwire.Conn(endpoint.address)
    c.handshake()
    # FETCH, then a posted write and two reads, all before we serve DMA.
    c.send(write(FETCH_ADDR, 0x5000, 8) + read(1, FETCH) + write(SCRATCH, 0x1234)
           + read(2, INV) + read(3, SCRATCH))
    first = c.until("dma_read")
    assert [m[0] for m in first] == ["dma_read"], first     # nothing completed
    dma = first[-1][1]
    assert dma.get(2) == 0x5000 and dma.get(3) == 4, dma
    # Serve it: FETCH completes with our bytes, then the others, in order,
    # and the write behind FETCH was applied after it, before the reads.
    c.send(message("completion", (1, dma[1]), (3, b"\xef\xbe\xad\xde")))
    got = [c.next() for _ in range(3)]
    assert [(k, f.get(1)) for k, f in got] == [("completion", 1), ("completion", 2),
                                               ("completion", 3)], got
    assert got[0][1][3] == b"\xef\xbe\xad\xde"
    assert got[1][1][3] == (~0x1234 & 0xFFFFFFFF).to_bytes(4, "little")
    assert got[2][1][3] == (0x1234).to_bytes(4, "little")
    c.close()


def test_reset_behind_a_deferred_read_waits(endpoint):
    c = pfwire.Conn(endpoint.address)
    c.handshake()
    c.send(read(1, RESET_COUNT))
    count = int.from_bytes(c.until("completion")[-1][1][3], "little")
    c.send(write(FETCH_ADDR, 0x6000, 8) + read(2, FETCH)
           + message("reset", (1, 3), (2, 1)))
    dma = c.until("dma_read")[-1][1]
    c.send(message("completion", (1, dma[1]), (3, b"\x01\x02\x03\x04")))
    got = [c.next() for _ in range(2)]
    assert [(k, f.get(1)) for k, f in got] == [("completion", 2), ("completion", 3)]
    assert got[0][1][3] == b"\x01\x02\x03\x04"
    c.send(read(4, RESET_COUNT))
    after = c.until("completion")[-1][1]
    assert int.from_bytes(after[3], "little") == count + 1
    c.close()


def test_host_leaving_during_a_deferred_read(endpoint):
    c = pfwire.Conn(endpoint.address)
    c.handshake()
    c.send(write(FETCH_ADDR, 0x7000, 8) + read(1, FETCH) + write(SCRATCH, 9))
    c.until("dma_read")
    c.close()                                   # gone before answering
    for _ in range(100):                        # the endpoint may not know yet
        c = pfwire.Conn(endpoint.address)
        c.send(pfwire.hello())
        first = c.next()
        if first[0] == "hello":
            break
        assert first[0] == "error" and first[1][1] == 4, first      # busy
        c.close()
    assert c.next()[0] == "device_description"
    c.send(read(1, SCRATCH))                    # a fresh device, nothing held
    assert c.until("completion")[-1][1].get(3) == bytes(4)
    assert endpoint.alive()
    c.close()
