#!/usr/bin/env bash
# ./dev demo: a guest runs the pciefw NIC driver against the nic model in a
# pciefw-endpoint (user-mode networking), through QEMU's pciefw device.
# It shows lspci -vvv, ip addr, a ping and /proc/interrupts; on a terminal
# it then leaves you at the guest's shell (exit or ^D powers off).
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
export PATH=/usr/bin:$PATH

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

: "${PCIEFW_QEMU:?run through ./dev demo}"
tmp=$(mktemp -d /tmp/pciefw-demo-XXXXXX)
ep_pid=
cleanup() {
	if [ -n "$ep_pid" ]; then
		kill "$ep_pid" 2>/dev/null || true
		wait "$ep_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT

say "building the NIC driver for the guest kernel"
ko=$(driver/build.sh | tail -n1)

mac=52:54:00:12:34:56
say "starting pciefw-endpoint --device nic,mac=$mac (slirp user-mode networking)"
build/endpoint/pciefw-endpoint --listen "unix:$tmp/nic.sock" \
	--device "nic,mac=$mac" --trace "$tmp/demo.pcapng" \
	>"$tmp/ep.out" 2>"$tmp/ep.log" &
ep_pid=$!
for _ in $(seq 100); do
	grep -q listening "$tmp/ep.out" 2>/dev/null && break
	kill -0 "$ep_pid" 2>/dev/null || { cat "$tmp/ep.log"; exit 1; }
	sleep 0.05
done

interactive=0
[ -t 0 ] && [ -t 1 ] && interactive=1

cat >"$tmp/test.sh" <<'GUEST'
#!/bin/sh
step() { echo; echo "### $*"; }
step "insmod pciefw_nic.ko"
insmod /lib/modules/extra/pciefw_nic.ko || exit 1
ip link set eth0 up
step "lspci -vvv -d 1234:fe02"
lspci -vvv -d 1234:fe02
step "udhcpc -i eth0"
udhcpc -i eth0 -n -q -t 10 -T 1 -s /sbin/udhcpc.sh || exit 2
step "ip addr show eth0"
ip addr show eth0
step "ping -c 5 10.0.2.2   (the host, through slirp in the endpoint)"
ping -c 5 10.0.2.2 || exit 3
step "grep eth0 /proc/interrupts"
grep -w eth0 /proc/interrupts
if [ -e /demo-interactive ]; then
	step "you are in the guest: try ping, wget, ethtool -S is not in busybox; exit or ^D powers off"
	setsid cttyhack sh -l
fi
exit 0
GUEST

touch "$tmp/interactive"
say "booting the guest (Debian kernel under TCG, a few seconds)"
/usr/bin/python3 - "$tmp" "$ko" "$interactive" <<'PY'
import os, sys
sys.path.insert(0, "tests/integration")
import guestlib
tmp, ko, interactive = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
files = {ko: "/lib/modules/extra/pciefw_nic.ko",
         "tests/integration/guest_files/udhcpc.sh": "/sbin/udhcpc.sh"}
if interactive:
    files[os.path.join(tmp, "interactive")] = "/demo-interactive"
initrd = guestlib.make_initramfs(tmp, open(os.path.join(tmp, "test.sh")).read(), files)
args = ["-device", "pcie-root-port,id=rp0,slot=1",
        "-device", "pciefw,bus=rp0,path=%s/nic.sock" % tmp]
if interactive:
    cmd = guestlib.qemu_command(os.environ["PCIEFW_QEMU"], initrd, args, memory=512)
    cmd[cmd.index("stdio")] = "mon:stdio"
    os.execv(cmd[0], cmd)
res = guestlib.boot_guest(os.environ["PCIEFW_QEMU"], initrd, args, timeout=180)
print(res.console)
sys.exit(0 if res.status == 0 else 1)
PY
status=$?
say "the endpoint recorded the session: $(du -h "$tmp/demo.pcapng" | cut -f1) of pcapng ($(build/tools/pciefw-trace --stats "$tmp/demo.pcapng" | head -n1))"
exit $status
