"""QEMU's pciefw-epc device (docs/epc.md) driven register by register
through qtest, with this test playing the host side of the protocol byte by
byte (pfwire): no guest kernel, so each rule of the spec is checked where
it is written."""

import socket
import threading
import time

import pfwire

BDF = (0, 4, 0)
REGS, WINDOW = 0xC0000000, 0xC1000000     # BAR0, BAR2 as firmware would
FN_RAM = 0x01000000                       # where "the function's BAR0" lives
HOST_BUF = 0x12340000                     # a host bus address


def cf8(off):
    bus, dev, fn = BDF
    return 0x80000000 | bus << 16 | dev << 11 | fn << 8 | (off & 0xFC)


def cfg_write(qt, off, val):
    qt.outl(0xCF8, cf8(off))
    qt.outl(0xCFC, val)


def cfg_read(qt, off):
    qt.outl(0xCF8, cf8(off))
    return qt.inl(0xCFC)


def start_epc(harness, props=""):
    sock = harness.path("epc.sock")
    q = harness.qemu(["-M", "q35", "-device",
                      f"pciefw-epc,path={sock},bus=pcie.0,addr=0x4{props}"])
    qt = q.qtest
    assert cfg_read(qt, 0) == 0xFE0C1234
    cfg_write(qt, 0x10, REGS)
    cfg_write(qt, 0x18, WINDOW)
    cfg_write(qt, 0x04, 0x6)                      # memory + bus master
    assert qt.readl(REGS + 0x000) == 0x43504546   # epc.md 2: ID
    assert qt.readl(REGS + 0x008) == 16 << 20     # WINDOW_SIZE
    return q, qt, "unix:" + sock


def program_function(qt):
    """epc.md 3: 104c:b500, BAR0 4 KiB at FN_RAM, 4 MSI, 8 MSI-X in BAR0."""
    qt.writel(REGS + 0x040, 0xB500104C)
    qt.writel(REGS + 0x048, 0xFF000001)
    qt.writel(REGS + 0x04C, 1)
    qt.writel(REGS + 0x050, 4)
    qt.writel(REGS + 0x054, 8)
    qt.writel(REGS + 0x058, 0x800 | 0)
    qt.writel(REGS + 0x05C, 0x880 | 0)
    qt.writel(REGS + 0x100, FN_RAM)
    qt.writel(REGS + 0x104, 0)
    qt.writel(REGS + 0x108, 0x1000)
    qt.writel(REGS + 0x10C, 0)
    qt.writel(REGS + 0x110, 0x80000000)


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
