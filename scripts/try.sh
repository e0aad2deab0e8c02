#!/usr/bin/env bash
# ./dev try MODEL[,NAME=VALUE...] [--script FILE]: run a device model in
# pciefw-endpoint (with a trace) and boot the test guest with it as a PCIe
# function behind a root port.  On a terminal you land in the guest's shell
# (exit or ^D powers off); with --script FILE the guest runs FILE and the
# command exits with its status.  Walkthrough: docs/models.md.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
export PATH=/usr/bin:$PATH

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
usage() {
	cat <<'EOF_USAGE'
usage: ./dev try MODEL[,NAME=VALUE...] [--script FILE] [--timeout SECONDS]
                [--append ARGS] [--no-net] [--check] [-- ENDPOINT-ARGS...]

  MODEL[,NAME=VALUE...]  a model and its options, as pciefw-endpoint --device
                         takes them (build/endpoint/pciefw-endpoint --list-devices)
  --script FILE          run FILE (a /bin/sh script) in the guest instead of a
                         shell, print the console as it comes, exit with
                         FILE's status
  --timeout SECONDS      with --script, or without a terminal: how long the
                         guest may run before it is stopped and the command
                         fails (default 300)
  --append ARGS          more guest kernel arguments, e.g. 'memmap=4K$0x10000000'
                         (RAM the kernel leaves alone, which devmem may use)
  --no-net               nic and e1000: do not bring the network up first
  --check                only check MODEL and its option names, then exit
                         (./dev try does this before anything else)
  -- ENDPOINT-ARGS       more pciefw-endpoint options, e.g. -- --log-level debug

In the guest: lspci, setpci, devmem; $BDF is the device's address, $BAR0..
$BAR5 its BARs' bus addresses (memory decoding enabled), and
/lib/modules/extra/pciefw_irqtest.ko counts its MSI/MSI-X interrupts
(docs/models.md).  With the nic or the e1000 the guest first loads the
driver (pciefw_nic.ko, Debian's e1000), leases an address from the
endpoint's user-mode network with udhcpc and pings the host, 10.0.2.2
(/usr/share/pciefw/net-up.sh, scripts/guest/net-up.sh).  The endpoint's log
and trace, and QEMU's log of what became of each interrupt, stay in
build/try/; a run that fails before its endpoint starts leaves the last
run's there.
EOF_USAGE
}
bad() {
	echo "dev try: $*" >&2
	exit 2
}

device= script= append= timeout=300 net=1 check=0
ep_args=()
while [ $# -gt 0 ]; do
	case $1 in
	--script) [ $# -ge 2 ] || bad "--script needs a file"; script=$2; shift ;;
	--append) [ $# -ge 2 ] || bad "--append needs kernel arguments"; append=$2; shift ;;
	--timeout)
		[[ ${2:-} =~ ^[1-9][0-9]*$ ]] || bad "--timeout takes a number of seconds"
		timeout=$2
		shift ;;
	--no-net) net=0 ;;
	--check) check=1 ;;
	-h | --help) usage; exit 0 ;;
	--) shift; ep_args=("$@"); break ;;
	-*) bad "unknown option '$1' (try ./dev try --help)" ;;
	*) [ -z "$device" ] || bad "one MODEL only ('$device', then '$1')"; device=$1 ;;
	esac
	shift
done
[ -n "$device" ] || { usage >&2; exit 2; }
[ -z "$script" ] || [ -r "$script" ] || bad "cannot read $script"
model=${device%%,*}

# The model and its option names first: a typo costs nothing here.
check_out=$(build/endpoint/pciefw-endpoint --check --device "$device" \
	"${ep_args[@]}" 2>&1) || { printf '%s\n' "$check_out" | head -n1 >&2; exit 2; }
[ "$check" = 0 ] || exit 0
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
	rm -f "$out/endpoint.log.new"
}
trap cleanup EXIT
mkdir -p "$out"

# The drivers (pciefw_irqtest.ko counts interrupts; pciefw_nic.ko drives
# the nic) and the guest scripts.
files=()
for f in scripts/guest/*.sh; do
	[ "$f" = scripts/guest/run.sh ] || files+=("$f:/usr/share/pciefw/${f##*/}")
done
if ko=$(driver/build.sh 2>"$tmp/driver.log" | tail -n1); then
	files+=("${ko%/*}/pciefw_irqtest.ko:/lib/modules/extra/pciefw_irqtest.ko"
		"$ko:/lib/modules/extra/pciefw_nic.ko")
elif [ "$model" = nic ] && [ "$net" = 1 ]; then
	cat "$tmp/driver.log" >&2
	echo "dev try: the nic needs pciefw_nic.ko, which did not build (above)" >&2
	exit 1
else
	say "no pciefw_irqtest.ko for the guest (see $tmp/driver.log); going on without"
fi

# The last run's log is replaced only once this endpoint runs (a model
# option it refuses leaves it); its trace file is made only then too.
say "starting pciefw-endpoint --device $device"
build/endpoint/pciefw-endpoint --listen "unix:$tmp/ep.sock" --device "$device" \
	--trace "$out/trace.pcapng" "${ep_args[@]}" >"$tmp/ep.out" \
	2>"$out/endpoint.log.new" &
ep_pid=$!
until grep -q listening "$tmp/ep.out" 2>/dev/null; do
	if ! kill -0 "$ep_pid" 2>/dev/null; then
		cat "$out/endpoint.log.new" >&2
		ep_pid=
		exit 1
	fi
	sleep 0.05
done
mv -f "$out/endpoint.log.new" "$out/endpoint.log"
say "endpoint log: $out/endpoint.log   trace: $out/trace.pcapng"

interactive=0
[ -z "$script" ] && [ -t 0 ] && [ -t 1 ] && interactive=1

# The guest's /test.sh: networking for the NICs, describe the device, then
# a shell or the script.
{
	cat <<'GUEST'
#!/bin/sh
BDF=0000:01:00.0
dev=/sys/bus/pci/devices/$BDF
[ -e $dev ] || { echo "try: no device at $BDF"; lspci; exit 99; }
GUEST
	if [ "$net" = 1 ] && { [ "$model" = nic ] || [ "$model" = e1000 ]; }; then
		printf 'echo; echo "### sh /usr/share/pciefw/net-up.sh %s"\n' "$model"
		printf 'sh /usr/share/pciefw/net-up.sh %s || exit 98\n' "$model"
	fi
	cat <<'GUEST'
# Memory/IO decoding on, so devmem reaches the BARs (a driver did it already).
[ "$(cat $dev/enable)" != 0 ] || echo 1 > $dev/enable
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
PCIEFW_TRY_APPEND=$append PCIEFW_TRY_TIMEOUT=$timeout \
	/usr/bin/python3 scripts/try_guest.py "$tmp" "$out/qemu.log" "$interactive" \
	"${files[@]}" || status=$?
say "endpoint log: $out/endpoint.log"
say "QEMU's interrupt log (each interrupt delivered, pending or dropped): $out/qemu.log"
say "trace: $out/trace.pcapng (build/tools/pciefw-trace $out/trace.pcapng)"
exit $status
