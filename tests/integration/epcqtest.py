"""QEMU's pciefw-epc device (docs/epc.md) set up through qtest, as the
endpoint guest's firmware and driver would: what the tests that drive it
register by register share (test_epc_device.py, test_error_table.py)."""

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


def start_epc(harness, props="", name="qemu"):
    """QEMU with the EPC (more pciefw-epc properties in @props), its BARs
    placed and enabled: (Qemu, its qtest, the host's address)."""
    sock = harness.path(f"{name}-epc.sock")
    q = harness.qemu(["-M", "q35", "-device",
                      f"pciefw-epc,path={sock},bus=pcie.0,addr=0x4{props}"],
                     name=name)
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
