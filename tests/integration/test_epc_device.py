"""QEMU's pciefw-epc device (docs/epc.md) driven register by register
through qtest, with this test playing the host side of the protocol byte by
byte (pfwire): no guest kernel, so each rule of the spec is checked where
it is written."""

import socket
import threading
import time

import pfwire

from epcqtest import FN_RAM, HOST_BUF, REGS, WINDOW, program_function, start_epc


def test_start_refused_for_a_bad_function(harness):
    """epc.md 4: vendor ID 0 is refused with ERROR 1; a BAR whose size is
    not a power of two with ERROR 2; a host that connects meanwhile is held
    (nothing is sent to it)."""
    q, qt, addr = start_epc(harness)
    conn = pfwire.Conn(addr, timeout=1.0)
    qt.writel(REGS + 0x010, 1)
    assert qt.readl(REGS + 0x014) == 0x4 and qt.readl(REGS + 0x018) == 1
    program_function(qt)
    qt.writel(REGS + 0x108, 0x1800)
    qt.writel(REGS + 0x010, 1)
    assert qt.readl(REGS + 0x014) == 0x4 and qt.readl(REGS + 0x018) == 2
    try:
        data = conn.sock.recv(16)
    except socket.timeout:
        data = None
    assert data is None, data
    conn.close()


def test_function_served_to_a_host(harness):
    """START describes the function to the held host; its BAR reads and
    writes reach the endpoint guest's memory; RAISE_IRQ sends the MSI-X;
    the window turns CPU writes into DmaWrite and CPU reads into DmaRead
    answered by the host; STOP says goodbye and closes."""
    q, qt, addr = start_epc(harness)
    program_function(qt)
    qt.write(FN_RAM, bytes(range(16)))
    conn = pfwire.Conn(addr)
    qt.writel(REGS + 0x010, 1)
    assert qt.readl(REGS + 0x014) & 1
    conn.send(pfwire.hello())
    (k1, _), (k2, d) = conn.until("device_description")
    assert (k1, k2) == ("hello", "device_description")
    # spec 4.2 fields: IDs, class, revision, the BAR, MSI, MSI-X, pin
    assert (d[1], d[2], d[5], d[6]) == (0x104C, 0xB500, 0xFF0000, 1)
    assert pfwire.parse_fields(d[7]) == {4: 0x1000}      # index 0, mem32
    assert (d[8], d[9], d.get(10, 0), d[11], d[13], d[14]) == \
        (4, 8, 0, 0x800, 0x880, 1)
    assert qt.readl(REGS + 0x014) == 0x3            # STARTED | LINK_UP
    assert qt.readl(REGS + 0x01C) & 1               # EVENTS.LINK_UP

    conn.send(pfwire.message("mem_read", (1, 7), (2, 0), (3, 8), (4, 8)))
    kind, f = conn.next()
    assert kind == "completion" and f[1] == 7 and f.get(2, 0) == 0
    assert f[3] == bytes(range(8, 16))
    conn.send(pfwire.message("mem_read", (1, 9), (2, 0), (3, 2), (4, 12)))
    kind, f = conn.next()                           # a burst, any offset
    assert kind == "completion" and f.get(2, 0) == 0
    assert f[3] == bytes(range(2, 14))
    conn.send(pfwire.message("mem_read", (1, 10), (2, 0), (3, 4), (4, 8)))
    kind, f = conn.next()                           # misaligned single: UR
    assert kind == "completion" and f[2] == pfwire.UR
    conn.send(pfwire.message("mem_write", (1, 0), (2, 0x10), (3, b"\xaa\xbb")))
    conn.send(pfwire.message("mem_read", (1, 8), (2, 0), (3, 0x1000), (4, 4)))
    kind, f = conn.next()                           # past the BAR: UR
    assert kind == "completion" and f[1] == 8 and f[2] == pfwire.UR
    assert qt.read(FN_RAM + 0x10, 2) == b"\xaa\xbb"

    qt.writel(REGS + 0x024, 3 | 5 << 16)            # MSI-X vector 5
    assert conn.next() == ("msix", {1: 5})
    qt.writel(REGS + 0x024, 3 | 8 << 16)            # beyond the 8: nothing
    qt.writel(REGS + 0x024, 2 | 1 << 16)            # MSI vector 1
    assert conn.next() == ("msi", {1: 1})

    qt.writel(REGS + 0x400, 0)                      # region 0: window 0..4K
    qt.writel(REGS + 0x404, 0x1000)
    qt.writel(REGS + 0x408, HOST_BUF)
    qt.writel(REGS + 0x40C, 0)
    qt.writel(REGS + 0x410, 1)
    assert qt.readl(REGS + 0x410) == 1
    qt.writel(WINDOW + 4, 0xDEADBEEF)
    assert conn.next() == ("dma_write", {1: HOST_BUF + 4,
                                         2: b"\xef\xbe\xad\xde"})
    result = {}
    t = threading.Thread(target=lambda: result.update(v=qt.readl(WINDOW + 8)))
    t.start()
    kind, f = conn.next()
    assert kind == "dma_read" and f[2] == HOST_BUF + 8 and f[3] == 4
    conn.send(pfwire.message("completion", (1, f[1]), (3, b"\x11\x22\x33\x44")))
    t.join(30)
    assert result.get("v") == 0x44332211
    assert qt.readl(WINDOW + 0x2000) == 0xFFFFFFFF  # outside every region

    qt.writel(REGS + 0x010, 0)
    assert [m[0] for m in conn.rest()] == ["goodbye"]
    assert qt.readl(REGS + 0x014) == 0
    assert qt.readl(REGS + 0x01C) & 2               # EVENTS.LINK_DOWN


def test_one_host_and_a_silent_one_is_dropped(harness):
    """spec 2.4: a second host is refused with ERROR_BUSY while one is
    connected; epc.md 4: a host that never answers the EPC's Hello is
    dropped after the timeout, and the next one is served."""
    q, qt, addr = start_epc(harness, ",timeout=500")
    program_function(qt)
    silent = pfwire.Conn(addr)
    qt.writel(REGS + 0x010, 1)
    assert silent.next()[0] == "hello"
    second = pfwire.Conn(addr)
    kind, f = second.next()
    assert kind == "error" and pfwire.ERROR_CODES[f[1]] == "ERROR_BUSY", f
    assert second.next() is None
    # Dropped after 500 ms, told why (spec 2.1's hello deadline).
    kind, f = silent.next()
    assert kind == "error" and b"no hello from the host" in f.get(2), (kind, f)
    assert silent.next() is None
    third = pfwire.Conn(addr)
    third.handshake()
    assert qt.readl(REGS + 0x014) == 0x3


def _window_read(qt, conn, addr, answer):
    """Read the window at @addr while the host answers the DmaRead it
    causes with @answer(fields); returns (value, the DmaRead's fields)."""
    result = {}
    t = threading.Thread(target=lambda: result.update(v=qt.readl(addr)))
    t.start()
    kind, f = conn.next()
    assert kind == "dma_read", (kind, f)
    conn.send(answer(f))
    t.join(30)
    return result.get("v"), f


def test_window_read_ahead(harness):
    """epc.md 5.1, read-ahead=4096: a window read fetches 4 KiB (never
    past its region), reads forward of it inside what came are served
    without a message, and a read at an address already served, a host
    message, a window write or a refused fetch each go to the host again."""
    q, qt, addr = start_epc(harness, ",read-ahead=4096")
    program_function(qt)
    conn = pfwire.Conn(addr)
    qt.writel(REGS + 0x010, 1)
    conn.handshake()
    qt.writel(REGS + 0x400, 0)                      # region 0: window 0..6K
    qt.writel(REGS + 0x404, 0x1800)
    qt.writel(REGS + 0x408, HOST_BUF)
    qt.writel(REGS + 0x40C, 0)
    qt.writel(REGS + 0x410, 1)

    def data(f, salt=0):
        return bytes((i + salt) & 0xFF for i in range(f[3]))

    def ok(f, salt=0):
        return pfwire.message("completion", (1, f[1]), (3, data(f, salt)))

    v, f = _window_read(qt, conn, WINDOW + 8, ok)
    assert (f[2], f[3]) == (HOST_BUF + 8, 4096)
    assert v == 0x03020100
    assert qt.readl(WINDOW + 12) == 0x07060504      # from what came
    assert qt.readl(WINDOW + 0x1004) == 0xFFFEFDFC  # its last 4 bytes
    # the same address again: a poll sees the host's memory anew
    v, f = _window_read(qt, conn, WINDOW + 0x1004, lambda f: ok(f, 1))
    assert (f[2], f[3]) == (HOST_BUF + 0x1004, 0x7FC)   # to the region's end
    assert v == 0x04030201
    # a host message: what the host did before it must be seen
    conn.send(pfwire.message("mem_write", (1, 0), (2, 0x10), (3, b"\x01")))
    deadline = time.monotonic() + 30
    while qt.read(FN_RAM + 0x10, 1) != b"\x01":     # the EPC has handled it
        assert time.monotonic() < deadline
        time.sleep(0.01)
    v, f = _window_read(qt, conn, WINDOW + 0x1010, lambda f: ok(f, 2))
    assert f[2] == HOST_BUF + 0x1010 and v == 0x05040302
    # a window write
    qt.writel(WINDOW + 0x1400, 0)
    assert conn.next()[0] == "dma_write"
    v, f = _window_read(qt, conn, WINDOW + 0x1404, lambda f: ok(f, 3))
    assert f[2] == HOST_BUF + 0x1404 and v == 0x06050403
    # the host refuses the long read: the read alone goes again
    result = {}
    t = threading.Thread(target=lambda: result.update(v=qt.readl(WINDOW)))
    t.start()
    kind, f = conn.next()
    assert (kind, f[2], f[3]) == ("dma_read", HOST_BUF, 4096)
    conn.send(pfwire.message("completion", (1, f[1]), (2, pfwire.UR)))
    kind, f = conn.next()
    assert (kind, f[2], f[3]) == ("dma_read", HOST_BUF, 4)
    conn.send(pfwire.message("completion", (1, f[1]), (3, b"\xaa\xbb\xcc\xdd")))
    t.join(30)
    assert result.get("v") == 0xDDCCBBAA
    qt.writel(REGS + 0x010, 0)
    assert [m[0] for m in conn.rest()] == ["goodbye"]


def _bar_read(conn, tag, off, size=4):
    """A host MemRead of BAR0: (status, data)."""
    conn.send(pfwire.message("mem_read", (1, tag), (2, 0), (3, off), (4, size)))
    kind, f = conn.next()
    assert kind == "completion" and f[1] == tag, (kind, f)
    return f.get(2, 0), f.get(3, b"")


def test_bars_follow_their_registers(harness):
    """epc.md 3.2: while a host is connected, a BAR serves the memory its
    registers name now: retargeted, it serves the new memory at once;
    disabled (or at bus address 0), the host's reads are UR and its writes
    reach nothing; resized smaller, past the new size is UR; the next host
    is described the new size."""
    q, qt, addr = start_epc(harness)
    program_function(qt)
    qt.writel(REGS + 0x054, 0)                      # no MSI-X table in BAR0
    other = FN_RAM + 0x100000
    qt.write(FN_RAM, b"\x11" * 16)
    qt.write(other, b"\x22" * 16)
    conn = pfwire.Conn(addr)
    qt.writel(REGS + 0x010, 1)
    conn.handshake()
    assert _bar_read(conn, 1, 0) == (pfwire.SC, b"\x11" * 4)
    qt.writel(REGS + 0x100, other)                  # retarget
    assert _bar_read(conn, 2, 0) == (pfwire.SC, b"\x22" * 4)
    qt.writel(REGS + 0x110, 0)                      # clear_bar
    assert _bar_read(conn, 3, 0)[0] == pfwire.UR
    conn.send(pfwire.message("mem_write", (1, 0), (2, 4), (3, b"\x99" * 4)))
    assert _bar_read(conn, 4, 8)[0] == pfwire.UR    # after the write
    assert qt.read(other, 16) == b"\x22" * 16       # it reached nothing
    qt.writel(REGS + 0x100, 0)                      # enabled at address 0
    qt.writel(REGS + 0x110, 0x80000000)
    assert _bar_read(conn, 5, 0)[0] == pfwire.UR
    qt.writel(REGS + 0x110, 0)                      # 2 KiB at FN_RAM
    qt.writel(REGS + 0x100, FN_RAM)
    qt.writel(REGS + 0x108, 0x800)
    qt.writel(REGS + 0x110, 0x80000000)
    assert _bar_read(conn, 6, 0x7FC) == (pfwire.SC, bytes(4))
    assert _bar_read(conn, 7, 0x800)[0] == pfwire.UR
    assert _bar_read(conn, 8, 0) == (pfwire.SC, b"\x11" * 4)
    qt.writel(REGS + 0x010, 0)
    assert [m[0] for m in conn.rest()] == ["goodbye"]
    conn = pfwire.Conn(addr)
    qt.writel(REGS + 0x010, 1)
    conn.send(pfwire.hello())
    (_, _), (kind, d) = conn.until("device_description")
    assert pfwire.parse_fields(d[7]) == {4: 0x800}


def test_raise_status_and_intx_level(harness):
    """epc.md 3.3: RAISE_STATUS says whether an interrupt went out (no
    host, not declared, sent); INTX is a level, sent when it changes and
    to a host that connects while it is asserted."""
    q, qt, addr = start_epc(harness)
    program_function(qt)
    qt.writel(REGS + 0x024, 3 | 1 << 16)            # MSI-X, no host yet
    assert qt.readl(REGS + 0x028) == 1
    qt.writel(REGS + 0x02C, 1)                      # INTx asserted, kept
    assert qt.readl(REGS + 0x028) == 1 and qt.readl(REGS + 0x02C) == 1
    conn = pfwire.Conn(addr)
    qt.writel(REGS + 0x010, 1)
    conn.send(pfwire.hello())
    kinds = conn.until("device_description")
    assert kinds[-1][0] == "device_description", kinds
    assert conn.next() == ("intx", {1: 1})          # the level, at once
    qt.writel(REGS + 0x02C, 1)                      # no change: nothing
    assert qt.readl(REGS + 0x028) == 0
    qt.writel(REGS + 0x02C, 0)
    assert conn.next() == ("intx", {})              # deasserted
    assert qt.readl(REGS + 0x028) == 0
    qt.writel(REGS + 0x024, 3 | 8 << 16)            # beyond the 8 vectors
    assert qt.readl(REGS + 0x028) == 2
    qt.writel(REGS + 0x024, 3 | 5 << 16)
    assert qt.readl(REGS + 0x028) == 0
    assert conn.next() == ("msix", {1: 5})
    qt.writel(REGS + 0x010, 0)
    assert [m[0] for m in conn.rest()] == ["goodbye"]


def _host_bar0_size(qt):
    """Size BAR0 of the host's device at 00:04.0 as firmware does."""
    bdf = 0x80000000 | 4 << 11
    qt.outl(0xCF8, bdf | 0x10)
    qt.outl(0xCFC, 0xFFFFFFFF)
    qt.outl(0xCF8, bdf | 0x10)
    return (~(qt.inl(0xCFC) & 0xFFFFFFF0) & 0xFFFFFFFF) + 1


def _wait_for(what, cond, timeout=30):
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_bar_size_change_needs_a_new_host(harness):
    """epc.md 3.2 with the real host QEMU: a BAR given another size while
    the host is connected keeps the host's size (its BAR stays 4 KiB, past
    the new 2 KiB is all ones); when the link comes back the host's pciefw
    refuses the function that now describes other BARs and reads all ones;
    a pciefw device created anew enumerates the new size."""
    q, qt, addr = start_epc(harness)
    program_function(qt)
    qt.writel(REGS + 0x054, 0)                      # no MSI-X table in BAR0
    qt.write(FN_RAM, b"\x5a" * 0x1000)
    qt.writel(REGS + 0x010, 1)
    sock = addr[5:]
    host_args = ["-M", "q35", "-device",
                 f"pciefw,path={sock},bus=pcie.0,addr=0x4,reconnect=1"]
    h = harness.qemu(host_args, name="host")
    hq = h.qtest
    assert _host_bar0_size(hq) == 0x1000
    hq.outl(0xCF8, 0x80000000 | 4 << 11 | 0x10)
    hq.outl(0xCFC, 0xE0000000)
    hq.outl(0xCF8, 0x80000000 | 4 << 11 | 0x04)
    hq.outl(0xCFC, 0x6)
    assert hq.readl(0xE0000FFC) == 0x5A5A5A5A
    qt.writel(REGS + 0x110, 0)                      # clear_bar, set 2 KiB
    qt.writel(REGS + 0x108, 0x800)
    qt.writel(REGS + 0x110, 0x80000000)
    assert hq.readl(0xE00007FC) == 0x5A5A5A5A
    assert hq.readl(0xE0000800) == 0xFFFFFFFF       # past the new size
    assert _host_bar0_size(hq) == 0x1000            # the host's BAR stays
    qt.writel(REGS + 0x010, 0)                      # the link goes and
    qt.writel(REGS + 0x010, 1)                      # comes back
    _wait_for("the host's refusal",
              lambda: "different device" in h.output())
    hq.outl(0xCF8, 0x80000000 | 4 << 11 | 0x10)
    hq.outl(0xCFC, 0xE0000000)
    assert hq.readl(0xE00007FC) == 0xFFFFFFFF
    h.stop()
    h2 = harness.qemu(host_args, name="host2")       # enumerated anew
    assert _host_bar0_size(h2.qtest) == 0x800


# epc.md 12: the DMA engine's registers
DMA_SRC, DMA_DST, DMA_LEN, DMA_CTRL = 0x800, 0x808, 0x810, 0x814
DMA_STATUS, DMA_ERROR, DMA_COUNT = 0x818, 0x81C, 0x820
EV_DMA = 0x8


def dma_go(qt, src, dst, length):
    qt.writel(REGS + DMA_SRC, src & 0xFFFFFFFF)
    qt.writel(REGS + DMA_SRC + 4, src >> 32)
    qt.writel(REGS + DMA_DST, dst & 0xFFFFFFFF)
    qt.writel(REGS + DMA_DST + 4, dst >> 32)
    qt.writel(REGS + DMA_LEN, length)
    qt.writel(REGS + 0x01C, EV_DMA)                 # EVENTS.DMA cleared
    qt.writel(REGS + DMA_CTRL, 1)


def dma_wait(qt):
    """(DMA_STATUS, DMA_ERROR, DMA_COUNT) once the transfer has ended,
    which EVENTS.DMA says."""
    deadline = time.monotonic() + 30
    while not qt.readl(REGS + 0x01C) & EV_DMA:
        assert time.monotonic() < deadline, hex(qt.readl(REGS + DMA_STATUS))
        time.sleep(0.01)
    return tuple(qt.readl(REGS + r) for r in (DMA_STATUS, DMA_ERROR,
                                             DMA_COUNT))


def pattern(n, salt=0):
    return bytes((i * 7 + salt) & 0xFF for i in range(n))


def serve_dma_reads(conn, host_mem, count=None):
    """Answer the engine's DmaReads from @host_mem ({address: byte}) until
    @count bytes were asked for; returns the reads' sizes."""
    sizes = []
    while count is None or sum(sizes) < count:
        kind, f = conn.next()
        assert kind == "dma_read", (kind, f)
        data = bytes(host_mem.get(f[2] + i, 0) for i in range(f[3]))
        conn.send(pfwire.message("completion", (1, f[1]), (3, data)))
        sizes.append(f[3])
    return sizes


def collect_dma_writes(conn, count):
    """{address: byte} of the DmaWrites until @count bytes came."""
    got = {}
    while len(got) < count:
        kind, f = conn.next()
        assert kind == "dma_write", (kind, f)
        got.update((f[1] + i, b) for i, b in enumerate(f[2]))
    return got


def test_dma_engine_moves_data(harness):
    """epc.md 12: the engine copies the endpoint guest's memory to the host
    (posted DmaWrites of at most max payload), the host's to the guest's
    (DmaReads, several in flight, answered while the device goes on
    serving the host's BAR reads), and host to host through the window;
    each transfer ends with DONE, its byte count and EVENTS.DMA."""
    q, qt, addr = start_epc(harness)
    program_function(qt)
    conn = pfwire.Conn(addr)
    qt.writel(REGS + 0x010, 1)
    conn.handshake()                                # max payload 4096
    qt.writel(REGS + 0x400, 0)                      # window 0..128K
    qt.writel(REGS + 0x404, 0x20000)
    qt.writel(REGS + 0x408, HOST_BUF)
    qt.writel(REGS + 0x410, 1)
    local_a, local_b, n = FN_RAM + 0x10000, FN_RAM + 0x40000, 10000

    qt.write(local_a, pattern(n))
    dma_go(qt, local_a, WINDOW + 0x100, n)
    got = collect_dma_writes(conn, n)
    assert bytes(got[HOST_BUF + 0x100 + i] for i in range(n)) == pattern(n)
    assert dma_wait(qt) == (0x2, 0, n)

    n = 40000                                       # more than 8 reads
    host_mem = {HOST_BUF + 0x8000 + i: b for i, b in enumerate(pattern(n, 3))}
    dma_go(qt, WINDOW + 0x8000, local_b, n)
    first = [conn.next() for _ in range(8)]         # 8 in flight at most
    assert [k for k, _ in first] == ["dma_read"] * 8, first
    tag = 77                                        # the device still serves
    conn.send(pfwire.message("mem_read", (1, tag), (2, 0), (3, 0), (4, 4)))
    kind, f = conn.next()
    assert (kind, f[1]) == ("completion", tag), (kind, f)
    for kind, f in first:
        data = bytes(host_mem[f[2] + i] for i in range(f[3]))
        conn.send(pfwire.message("completion", (1, f[1]), (3, data)))
    rest = serve_dma_reads(conn, host_mem, n - sum(f[3] for _, f in first))
    assert max(rest) <= 4096
    assert dma_wait(qt) == (0x2, 0, n)
    assert qt.read(local_b, n) == pattern(n, 3)

    dma_go(qt, WINDOW + 0x8000, WINDOW + 0x18000, 5000)      # host to host
    moved = {}
    while len(moved) < 5000:
        kind, f = conn.next()
        if kind == "dma_read":
            data = bytes(host_mem[f[2] + i] for i in range(f[3]))
            conn.send(pfwire.message("completion", (1, f[1]), (3, data)))
        else:
            assert kind == "dma_write", (kind, f)
            moved.update((f[1] + i, b) for i, b in enumerate(f[2]))
    assert bytes(moved[HOST_BUF + 0x18000 + i] for i in range(5000)) == \
        pattern(n, 3)[:5000]
    assert dma_wait(qt) == (0x2, 0, 5000)
    qt.writel(REGS + 0x010, 0)


def test_dma_engine_failures(harness):
    """epc.md 12, DMA_ERROR: LEN 0 (1); a window address no region maps
    (3); the host refusing a read (5); ABORT (6), after which the aborted
    reads' completions are dropped; the host gone mid-transfer (4)."""
    q, qt, addr = start_epc(harness)
    program_function(qt)
    conn = pfwire.Conn(addr)
    qt.writel(REGS + 0x010, 1)
    conn.handshake()
    qt.writel(REGS + 0x400, 0)
    qt.writel(REGS + 0x404, 0x10000)
    qt.writel(REGS + 0x408, HOST_BUF)
    qt.writel(REGS + 0x410, 1)
    local = FN_RAM + 0x10000

    dma_go(qt, local, WINDOW, 0)
    assert dma_wait(qt) == (0x4, 1, 0)
    dma_go(qt, local, WINDOW + 0x20000, 16)         # past region 0
    assert dma_wait(qt) == (0x4, 3, 0)
    dma_go(qt, WINDOW, local, 16)
    kind, f = conn.next()
    conn.send(pfwire.message("completion", (1, f[1]), (2, pfwire.UR)))
    assert dma_wait(qt)[:2] == (0x4, 5)
    dma_go(qt, WINDOW, local, 20000)                # aborted with reads out
    out = [conn.next() for _ in range(5)]           # 20000 B in 4 KiB reads
    assert [k for k, _ in out] == ["dma_read"] * 5
    qt.writel(REGS + DMA_CTRL, 2)
    assert dma_wait(qt)[:2] == (0x4, 6)
    for _, f in out:                                # late: dropped quietly
        conn.send(pfwire.message("completion", (1, f[1]),
                                 (3, bytes(f[3]))))
    dma_go(qt, local, WINDOW, 8)                    # the session goes on
    assert collect_dma_writes(conn, 8)
    assert dma_wait(qt)[:2] == (0x2, 0)
    dma_go(qt, WINDOW, local, 20000)
    conn.next()
    conn.close()                                    # the host goes
    assert dma_wait(qt)[:2] == (0x4, 4)


# ---------------------------------------------------------------------------
# The host's MSI and MSI-X settings (epc.md 3.4, spec 12)

HOST_MSI_CTRL, HOST_MSI_ADDR_LO, HOST_MSI_ADDR_HI = 0x080, 0x084, 0x088
HOST_MSI_DATA, HOST_MSI_MASK, HOST_MSIX_CTRL = 0x08C, 0x090, 0x094
EV_HOST_RESET, EV_HOST_IRQ_CONFIG = 0x4, 0x10
TABLE = FN_RAM + 0x800                  # program_function's MSI-X table


def host_irq_regs(qt):
    return [qt.readl(REGS + r) for r in (HOST_MSI_CTRL, HOST_MSI_ADDR_LO,
                                         HOST_MSI_ADDR_HI, HOST_MSI_DATA,
                                         HOST_MSI_MASK, HOST_MSIX_CTRL)]


def table_entry(qt, v):
    """Entry @v of the function's MSI-X table in its memory: (address,
    data, vector control)."""
    raw = qt.read(TABLE + 16 * v, 16)
    lo, hi, data, ctrl = (int.from_bytes(raw[i:i + 4], "little")
                          for i in range(0, 16, 4))
    return hi << 32 | lo, data, ctrl


def irq_host(harness, qt, addr):
    """The function programmed and started, and a 1.3 host that offers
    the interrupt settings (spec 12.1) connected to it."""
    program_function(qt)
    qt.memset(TABLE, 9 * 16, 0xAA)                # not what the EPC writes
    conn = pfwire.Conn(addr)
    qt.writel(REGS + 0x010, 1)
    conn.handshake(minor=3, features=3 | pfwire.FEATURE_INTERRUPT_CONFIG)
    return conn


def flush(conn, tag):
    """A read of the function's BAR0: the host's messages before it have
    been handled once its completion is back (spec 5.1)."""
    conn.send(pfwire.message("mem_read", (1, tag), (2, 0), (3, 0), (4, 4)))
    kind, f = conn.next()
    assert kind == "completion" and f[1] == tag, (kind, f)


def test_host_interrupt_settings_reach_the_endpoint_guest(harness):
    """epc.md 3.4: the settings an InterruptConfig carries read back in the
    HOST_* registers, with EVENTS.HOST_IRQ_CONFIG; its MSI-X entries are
    written into the function's table in its memory, the others left as a
    session starts them (masked); a host Reset and the host's going each
    bring the reset state back (spec 12.3)."""
    q, qt, addr = start_epc(harness)
    assert qt.readl(REGS + 0x004) == 0x00010002   # VERSION 1.2
    conn = irq_host(harness, qt, addr)
    assert host_irq_regs(qt) == [0] * 6
    assert not qt.readl(REGS + 0x01C) & EV_HOST_IRQ_CONFIG
    assert [table_entry(qt, v) for v in range(8)] == [(0, 0, 1)] * 8
    assert qt.read(TABLE + 8 * 16, 4) == b"\xaa" * 4   # only the table

    conn.send(pfwire.interrupt_config(
        msi_enabled=True, msi_vectors=4, msi_address=0x1FEE01004,
        msi_data=0x4020, msi_mask=0x2, msix_enabled=True, msix_masked=True,
        entries=[(3, 0x2FEE02000, 0x4023, False), (7, 0xFEE03000, 7, True)])
        + pfwire.message("mem_write", (1, 0), (2, 0x10), (3, b"\x01\x00")))
    flush(conn, 1)
    assert host_irq_regs(qt) == [1 | 4 << 8, 0xFEE01004, 1, 0x4020, 0x2, 3]
    assert qt.readl(REGS + 0x01C) & EV_HOST_IRQ_CONFIG
    assert table_entry(qt, 3) == (0x2FEE02000, 0x4023, 0)
    assert table_entry(qt, 7) == (0xFEE03000, 7, 1)
    assert [table_entry(qt, v) for v in (0, 1, 2, 4, 5, 6)] == [(0, 0, 1)] * 6
    qt.writel(REGS + 0x01C, EV_HOST_IRQ_CONFIG)

    # The next one replaces the MSI state and the control bits; entry 3
    # keeps what it had (12.2).
    conn.send(pfwire.interrupt_config(msix_enabled=True,
                                      entries=[(5, 0xFEE05000, 5, False)]))
    flush(conn, 2)
    assert host_irq_regs(qt) == [0, 0, 0, 0, 0, 1]
    assert table_entry(qt, 3) == (0x2FEE02000, 0x4023, 0)
    assert table_entry(qt, 5) == (0xFEE05000, 5, 0)

    conn.send(pfwire.message("reset", (1, 3), (2, 1)))
    assert conn.next() == ("completion", {1: 3})
    assert host_irq_regs(qt) == [0] * 6
    assert qt.readl(REGS + 0x01C) & (EV_HOST_RESET | EV_HOST_IRQ_CONFIG) == \
        EV_HOST_RESET | EV_HOST_IRQ_CONFIG
    assert [table_entry(qt, v) for v in range(8)] == [(0, 0, 1)] * 8

    conn.send(pfwire.interrupt_config(msi_enabled=True, msi_vectors=1))
    flush(conn, 4)
    assert qt.readl(REGS + HOST_MSI_CTRL) == 1 | 1 << 8
    conn.close()
    deadline = time.monotonic() + 30
    while qt.readl(REGS + 0x014) & 2:               # LINK_UP clears
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert host_irq_regs(qt) == [0] * 6


def test_host_msix_table_where_the_function_has_no_memory(harness):
    """epc.md 3.4: with the table's BAR disabled, or at bus address 0,
    nothing is written to memory (the registers still follow), and a BAR
    retargeted afterwards gets no copy of the entries written before."""
    q, qt, addr = start_epc(harness)
    conn = irq_host(harness, qt, addr)
    qt.writel(REGS + 0x110, 0)                      # BAR0 disabled
    conn.send(pfwire.interrupt_config(msix_enabled=True,
                                      entries=[(1, 0xFEE01000, 1, False)]))
    conn.send(pfwire.message("config_read", (1, 1), (2, 0x40), (3, 4)))
    assert conn.next()[0] == "completion"
    assert qt.readl(REGS + HOST_MSIX_CTRL) == 1
    assert table_entry(qt, 1) == (0, 0, 1)
    qt.writel(REGS + 0x100, 0)                      # enabled at address 0
    qt.writel(REGS + 0x110, 0x80000000)
    conn.send(pfwire.interrupt_config(entries=[(2, 0xFEE02000, 2, False)]))
    conn.send(pfwire.message("config_read", (1, 2), (2, 0x40), (3, 4)))
    assert conn.next()[0] == "completion"
    assert qt.readl(REGS + HOST_MSIX_CTRL) == 0
    assert table_entry(qt, 2) == (0, 0, 1)
    qt.writel(REGS + 0x110, 0)                      # retargeted to FN_RAM
    qt.writel(REGS + 0x100, FN_RAM)
    qt.writel(REGS + 0x110, 0x80000000)
    flush(conn, 3)
    assert [table_entry(qt, v) for v in (1, 2)] == [(0, 0, 1)] * 2
    conn.send(pfwire.interrupt_config(entries=[(4, 0xFEE04000, 4, False)]))
    flush(conn, 4)
    assert table_entry(qt, 4) == (0xFEE04000, 4, 0)
