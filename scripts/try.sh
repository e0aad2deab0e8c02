#!/usr/bin/env bash
# ./dev try MODEL[,NAME=VALUE...] [--script FILE]: run a device model in
# pciefw-endpoint (with a trace) and boot the test guest with it as a PCIe
# function behind a root port.  On a terminal you land in the guest's shell
# (exit or ^D powers off); with --script FILE the guest runs FILE and the
# command exits with its status.  Walkthrough: docs/models.md; a design in
# Verilog or VHDL (hdl-verilog, hdl-vhdl): docs/hdl.md.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
export PATH=/usr/bin:$PATH

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
usage() {
	cat <<'EOF_USAGE'
usage: ./dev try MODEL[,NAME=VALUE...] [--script FILE] [--append ARGS]
                [-- ENDPOINT-ARGS...]

  MODEL[,NAME=VALUE...]  a model and its options, as pciefw-endpoint --device
                         takes them (build/endpoint/pciefw-endpoint --list-devices)
  hdl-verilog|hdl-vhdl[,src=FILE[:FILE...]][,top=NAME][,NAME=VALUE...]
                         a design in Verilog or VHDL, built when it changed
                         (hdl/build.py) and run by the rtl model (docs/hdl.md);
                         without src=, the example device pf_testdev
  --script FILE          run FILE (a /bin/sh script) in the guest instead of a
                         shell, print the console, exit with FILE's status
  --append ARGS          more guest kernel arguments, e.g. 'memmap=4K$0x10000000'
                         (RAM the kernel leaves alone, which devmem may use)
  -- ENDPOINT-ARGS       more pciefw-endpoint options, e.g. -- --log-level debug

In the guest: lspci, setpci, devmem; $BDF is the device's address, $BAR0..
$BAR5 its BARs' bus addresses (memory decoding enabled), and
/lib/modules/extra/pciefw_irqtest.ko counts its MSI/MSI-X interrupts
(docs/models.md).  The endpoint's log and trace, and QEMU's log of what
became of each interrupt, stay in build/try/.
EOF_USAGE
}

device= script= append=
ep_args=()
while [ $# -gt 0 ]; do
	case $1 in
	--script) script=${2:?--script needs a file}; shift ;;
	--append) append=${2?--append needs kernel arguments}; shift ;;
	-h | --help) usage; exit 0 ;;
	--) shift; ep_args=("$@"); break ;;
	-*) usage >&2; exit 2 ;;
	*) [ -z "$device" ] || { usage >&2; exit 2; }; device=$1 ;;
	esac
	shift
done
[ -n "$device" ] || { usage >&2; exit 2; }
[ -z "$script" ] || [ -r "$script" ] || { echo "dev try: cannot read $script" >&2; exit 2; }
: "${PCIEFW_QEMU:?run through ./dev try}"

out=${PCIEFW_TRY_DIR:-$top/build/try}
tmp=$(mktemp -d /tmp/pciefw-try-XXXXXX)
ep_pid=
cleanup() {
	if [ -n "$ep_pid" ]; then
		kill "$ep_pid" 2>/dev/null || true
		wait "$ep_pid" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$out"
rm -f "$out/trace.pcapng" "$out/endpoint.log" "$out/qemu.log"

# The interrupt-counting module; a model can be tried without it.
files=()
if ko=$(driver/build.sh 2>"$tmp/driver.log" | tail -n1); then
	files+=("${ko%/*}/pciefw_irqtest.ko:/lib/modules/extra/pciefw_irqtest.ko")
else
	say "no pciefw_irqtest.ko for the guest (see $tmp/driver.log); going on without"
fi

case $device in
hdl-*)
	# Verilator's and GHDL's messages reach you as they print them.
	say "building the design (hdl/build.py; cached by its inputs)"
	device=$(/usr/bin/python3 hdl/build.py --device "$device") || exit 1
	;;
esac
say "starting pciefw-endpoint --device $device"
build/endpoint/pciefw-endpoint --listen "unix:$tmp/ep.sock" --device "$device" \
	--trace "$out/trace.pcapng" "${ep_args[@]}" >"$tmp/ep.out" 2>"$out/endpoint.log" &
ep_pid=$!
until grep -q listening "$tmp/ep.out" 2>/dev/null; do
	if ! kill -0 "$ep_pid" 2>/dev/null; then
		cat "$out/endpoint.log" >&2
		ep_pid=
		exit 1
	fi
	sleep 0.05
done
say "endpoint log: $out/endpoint.log   trace: $out/trace.pcapng"

interactive=0
[ -z "$script" ] && [ -t 0 ] && [ -t 1 ] && interactive=1

# The guest's /test.sh: describe the device, then a shell or the script.
{
	cat <<'GUEST'
#!/bin/sh
BDF=0000:01:00.0
dev=/sys/bus/pci/devices/$BDF
[ -e $dev ] || { echo "try: no device at $BDF"; lspci; exit 99; }
echo 1 > $dev/enable    # memory/IO decoding on, so devmem reaches the BARs
for i in 0 1 2 3 4 5; do
	eval "BAR$i=$(awk -v n=$((i + 1)) 'NR == n { print $1 }' $dev/resource)"
done
export BDF BAR0 BAR1 BAR2 BAR3 BAR4 BAR5
echo; echo "### lspci -vv -s \$BDF   (BDF=$BDF)"
lspci -vv -s $BDF
echo "BAR0=$BAR0 BAR1=$BAR1 BAR2=$BAR2 BAR3=$BAR3 BAR4=$BAR4 BAR5=$BAR5"
GUEST
	if [ -n "$script" ]; then
		printf '\n# --script %s\n' "$script"
		printf 'sh /try-script.sh\n'
	elif [ "$interactive" = 1 ]; then
		cat <<'GUEST'
echo
echo "### the guest's shell: devmem \$BAR0 32, setpci -s \$BDF ..., docs/models.md;"
echo "### exit or ^D powers off"
setsid cttyhack sh -l
exit 0
GUEST
	fi
} >"$tmp/test.sh"
[ -z "$script" ] || files+=("$(readlink -f "$script"):/try-script.sh")

say "booting the guest (Debian kernel under TCG, a few seconds)"
status=0
PCIEFW_TRY_APPEND=$append /usr/bin/python3 scripts/try_guest.py "$tmp" \
	"$out/qemu.log" "$interactive" "${files[@]}" || status=$?
say "endpoint log: $out/endpoint.log"
say "QEMU's interrupt log (each interrupt delivered, pending or dropped): $out/qemu.log"
say "trace: $out/trace.pcapng (build/tools/pciefw-trace $out/trace.pcapng)"
exit $status
