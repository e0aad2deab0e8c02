"""Full-size VLAN-tagged frames through the NIC (docs/nic.md 5.1).

Two guests, each running our driver against its own nic endpoint, are
wired together by the endpoints' dgram backends. Each puts an 802.1Q
interface (VLAN 5, the guest kernel's 8021q module) on eth0 and pings the
other with full-size payloads: at MTU 1500 (1518-byte tagged frames) and
at the largest MTU, 9000 (9018-byte tagged frames, MAX_FRAME's upper
bound). Every ping must come back, no counter may show a drop, and the
endpoint's capture must show tagged frames of exactly those sizes both
ways.
"""

import re
import struct

import guestlib
from nicnet import DRIVER_KO, guest_files, kernel_modules, nic_device_args

VID = 5
ETH_P_8021Q = 0x8100
# (MTU, ping payload): IPv4 20 + ICMP 8 + payload = MTU, so the tagged
# frame is MTU + 18 bytes.
SIZES = ((1500, 1472), (9000, 8972))
STATS = ("tx_dropped", "tx_errors", "rx_dropped", "rx_errors")

# Wait for an interface's operstate to be "up" (the carrier comes back
# through linkwatch after a restart), at most 30 s.
WAIT_UP = """
wait_up() {
	i=0
	while [ "$(cat /sys/class/net/$1/operstate)" != up ]; do
		i=$((i + 1)); [ $i -le 300 ] || return 1; sleep 0.1
	done
}
"""


def guest_script(me, peer, modules):
    s = "#!/bin/sh\n" + WAIT_UP
    s += "".join(f"insmod {m} || exit 9\n" for m in modules)
    s += f"""insmod {DRIVER_KO} || exit 10
ip link set eth0 up || exit 11
vconfig add eth0 {VID} || exit 12
ip addr add {me}/24 dev eth0.{VID} || exit 13
ip link set eth0.{VID} up || exit 14
"""
    for mtu, payload in SIZES:
        # An MTU change restarts the running device (pfn_reconfigure).
        s += f"""ip link set eth0 mtu {mtu} || exit 15
ip link set eth0.{VID} mtu {mtu} || exit 16
wait_up eth0 || exit 17
wait_up eth0.{VID} || exit 18
echo "PCIEFW-READY {mtu}"
read go
ping -c 5 -s {payload} {peer} > /tmp/ping.txt; cat /tmp/ping.txt
echo "PCIEFW-PING {mtu} $(grep -c '^{payload + 8} bytes from {peer}' /tmp/ping.txt)"
read go
"""
    s += f"""for i in eth0 eth0.{VID}; do
	for c in {' '.join(STATS)}; do
		echo "PCIEFW-STAT $i $c $(cat /sys/class/net/$i/statistics/$c)"
	done
done
echo "PCIEFW-DONE"
read go
"""
    return s


def tagged_frames(pcap_path):
    """(source MAC, VLAN id, frame length) of each 802.1Q frame in a
    classic pcap file (either timestamp resolution, little-endian)."""
    data = open(pcap_path, "rb").read()
    magic = struct.unpack_from("<I", data)[0]
    assert magic in (0xa1b2c3d4, 0xa1b23c4d), hex(magic)
    out, off = [], 24
    while off + 16 <= len(data):
        caplen, origlen = struct.unpack_from("<II", data, off + 8)
        frame = data[off + 16:off + 16 + caplen]
        off += 16 + caplen
        if len(frame) >= 18 and struct.unpack_from(">H", frame, 12)[0] == ETH_P_8021Q:
            vid = struct.unpack_from(">H", frame, 14)[0] & 0xfff
            out.append((frame[6:12].hex(":"), vid, origlen))
    return out


def test_vlan_full_size_frames_both_ways(harness, tmp_path):
    mods, order = kernel_modules("8021q")
    files = {**guest_files(), **mods}
    a_sock, b_sock = harness.path("wire-a"), harness.path("wire-b")
    sides = (("192.168.5.1", "192.168.5.2", a_sock, b_sock, "52:54:00:05:00:01"),
             ("192.168.5.2", "192.168.5.1", b_sock, a_sock, "52:54:00:05:00:02"))
    guests, eps, pcaps = [], [], []
    for me, peer, mine, theirs, mac in sides:
        pcap = harness.path(f"nic-{me[-1]}.pcap")
        ep = harness.endpoint(
            name=f"nic-{me[-1]}",
            device=(f"nic,mac={mac},backend=dgram,local=unix:{mine},"
                    f"remote=unix:{theirs},pcap={pcap}"))
        initrd = guestlib.make_initramfs(tmp_path / me, guest_script(me, peer, order),
                                         files)
        guests.append(guestlib.Guest(harness.qemu_binary, initrd,
                                     nic_device_args(ep.address), memory=256))
        eps.append(ep)
        pcaps.append(pcap)
    try:
        for g in guests:
            g.start()
        # Both VLAN interfaces are up before either pings, and neither
        # changes its MTU (which restarts its device, dropping what arrives
        # meanwhile) before both have their replies.
        for mtu, _ in SIZES:
            for step in (rf"^PCIEFW-READY {mtu}$", rf"^PCIEFW-PING {mtu} \d+$"):
                for g in guests:
                    g.wait_for(step, timeout=300)
                for g in guests:
                    g.send("go\n")
        for g in guests:
            g.wait_for(r"^PCIEFW-DONE$", timeout=300)
        for g in guests:
            g.send("go\n")
        results = [g.wait(120) for g in guests]
    finally:
        for g in guests:
            g.stop()
    for r in results:
        assert r.status == 0, r.describe()
        # Every full-size ping came back, in each direction and size.
        for mtu, _ in SIZES:
            assert f"PCIEFW-PING {mtu} 5" in r.console, r.describe()
        stats = re.findall(r"^PCIEFW-STAT (\S+) (\S+) (\d+)$", r.console, re.M)
        assert len(stats) == 2 * len(STATS), r.describe()
        assert all(v == "0" for _, _, v in stats), stats

    # The wire carried tagged frames of exactly MTU + 18 bytes, both ways.
    for ep in eps:
        ep.stop()                     # flushes the capture
    frames = tagged_frames(pcaps[0])
    for mtu, _ in SIZES:
        for *_, mac in sides:
            n = sum(1 for src, vid, length in frames
                    if src == mac and vid == VID and length == mtu + 18)
            assert n >= 5, (mtu, mac, sorted(set(frames)))
