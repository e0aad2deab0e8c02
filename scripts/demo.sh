#!/usr/bin/env bash
# ./dev demo: a guest runs the pciefw NIC driver against the nic model in a
# pciefw-endpoint (user-mode networking), through QEMU's pciefw device.
# It shows lspci -vvv, ip addr, a ping and /proc/interrupts; on a terminal
# it then leaves you at the guest's shell (exit or ^D powers off).  The
# endpoint's trace of the session and its log stay in build/demo/.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
export PATH=/usr/bin:$PATH

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

: "${PCIEFW_QEMU:?run through ./dev demo}"
out=${PCIEFW_DEMO_DIR:-$top/build/demo}
tmp=$(mktemp -d /tmp/pciefw-demo-XXXXXX)
ep_pid=
stop_endpoint() {
	if [ -n "$ep_pid" ]; then
		kill "$ep_pid" 2>/dev/null || true
		wait "$ep_pid" 2>/dev/null || true
	fi
	ep_pid=
}
cleanup() {
	stop_endpoint
	rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$out"
rm -f "$out/demo.pcapng" "$out/endpoint.log"

say "building the NIC driver for the guest kernel"
ko=$(driver/build.sh | tail -n1)

mac=52:54:00:12:34:56
say "starting pciefw-endpoint --device nic,mac=$mac (slirp user-mode networking)"
build/endpoint/pciefw-endpoint --listen "unix:$tmp/nic.sock" \
	--device "nic,mac=$mac" --trace "$out/demo.pcapng" \
	>"$tmp/ep.out" 2>"$out/endpoint.log" &
ep_pid=$!
for _ in $(seq 100); do
	grep -q listening "$tmp/ep.out" 2>/dev/null && break
	kill -0 "$ep_pid" 2>/dev/null || { cat "$out/endpoint.log"; exit 1; }
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
udhcpc -i eth0 -n -q -t 10 -T 1 || exit 2
step "ip addr show eth0"
ip addr show eth0
step "ping -c 5 10.0.2.2   (the host, through slirp in the endpoint)"
ping -c 5 10.0.2.2 || exit 3
step "grep eth0 /proc/interrupts"
grep -w eth0 /proc/interrupts
if [ -e /demo-interactive ]; then
	step "you are in the guest: try ping 10.0.2.2, wget, ls /sys/class/net/eth0/statistics; exit or ^D powers off"
	setsid cttyhack sh -l
fi
exit 0
GUEST

touch "$tmp/interactive"
say "booting the guest (Debian kernel under TCG, a few seconds)"
# Not a here-document: on a terminal QEMU must inherit our stdin.
status=0
/usr/bin/python3 scripts/demo_guest.py "$tmp" "$ko" "$interactive" || status=$?
# The endpoint closes the trace as it exits.
stop_endpoint
trace=${out#"$top"/}/demo.pcapng
say "the endpoint recorded the session in $trace: $(du -h "$out/demo.pcapng" | cut -f1) of pcapng ($(build/tools/pciefw-trace --stats "$out/demo.pcapng" | head -n1))"
cat <<EOF_OPEN
   read it, transaction by transaction:  build/tools/pciefw-trace $trace | less
   or in Wireshark:                      wireshark -X lua_script:tools/wireshark/pciefw.lua $trace
   (the endpoint's log is ${out#"$top"/}/endpoint.log)
EOF_OPEN
exit $status
