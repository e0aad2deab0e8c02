#!/usr/bin/env bash
# ./dev demo: an endpoint serving testdev, a QEMU guest that sees it as a
# PCIe device, lspci and register accesses from inside the guest.
# Without a QEMU build, the same endpoint is driven by the host library.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
export PATH=/usr/bin:$PATH

say() { printf '\033[1m==> %s\033[0m\n' "$*"; }

tmp=$(mktemp -d /tmp/pciefw-demo-XXXXXX)
ep_pid=
cleanup() {
	[ -n "$ep_pid" ] && kill "$ep_pid" 2>/dev/null && wait "$ep_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

say "starting pciefw-endpoint --device testdev on unix:$tmp/testdev.sock"
build/endpoint/pciefw-endpoint --listen "unix:$tmp/testdev.sock" \
	--device testdev --trace "$tmp/demo.pcapng" >"$tmp/ep.out" 2>"$tmp/ep.log" &
ep_pid=$!
for _ in $(seq 100); do grep -q listening "$tmp/ep.out" && break; sleep 0.05; done

if [ -z "${PCIEFW_QEMU:-}" ] || [ -z "${GUEST_KERNEL:-}" ]; then
	say "no QEMU build: driving the endpoint with pciefw-bench instead"
	kill "$ep_pid"; wait "$ep_pid" 2>/dev/null || true; ep_pid=
	build/bench/pciefw-bench -n 2000 -w 20000 -d 16
	exit 0
fi

cat >"$tmp/test.sh" <<'GUEST'
#!/bin/sh
dev=$(grep -l 0xfe01 /sys/bus/pci/devices/*/device | head -n1)
dev=${dev%/device}
echo "== lspci -vvv (the device as testdev describes it)"
lspci -vvv -s "${dev##*/}"
bar0=$(head -n1 "$dev/resource" | cut -d' ' -f1)
echo 1 > "$dev/enable" 2>/dev/null || true
setpci -s "${dev##*/}" COMMAND=0x0006 2>/dev/null || true
echo "== devmem: BAR0 ID register at $bar0"
devmem "$bar0" 32
echo "== devmem: write 0x12345678 to SCRATCH, read INV (= ~SCRATCH)"
devmem $((bar0 + 4)) 32 0x12345678
devmem $((bar0 + 8)) 32
GUEST

say "booting a guest with -device pciefw (TCG, a few seconds)"
/usr/bin/python3 - "$tmp" <<'PY'
import os, sys
sys.path.insert(0, "tests/integration")
import guestlib
tmp = sys.argv[1]
initrd = guestlib.make_initramfs(tmp, open(os.path.join(tmp, "test.sh")).read(), {})
res = guestlib.boot_guest(os.environ["PCIEFW_QEMU"], initrd, [
    "-device", "pcie-root-port,id=rp0,slot=1",
    "-device", "pciefw,bus=rp0,path=%s/testdev.sock" % tmp], timeout=120)
print(res.console)
sys.exit(0 if res.status == 0 else 1)
PY
say "the endpoint recorded the session: $(du -h "$tmp/demo.pcapng" | cut -f1) of pcapng"
