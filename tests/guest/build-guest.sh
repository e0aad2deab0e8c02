#!/usr/bin/env bash
# Build (or refresh) the cached guest image used by the QEMU-level tests:
#   - Debian's current 6.1 kernel, as vmlinuz and as an uncompressed ELF
#     vmlinux (PVH entry: boots in ~2 s under TCG instead of ~5 s);
#   - a base initramfs tree (busybox, lspci, setpci, ethtool, a few NIC driver
#     modules, /init)
#     and the same tree packed as base.cpio.gz for tests/guest/mkinitramfs.sh.
#
# Usage: build-guest.sh [--print-env]
#   --print-env  print GUEST_*=VALUE lines (shell-quoted) for `eval`.
# Progress goes to stderr.  Everything lives under
#   ${PCIEFW_CACHE:-$HOME/.cache/pciefw}/guest/<kernel-abi>/
# and nothing is written inside the repository.  A second run with unchanged
# inputs only checks a stamp and returns.
#
# Environment:
#   PCIEFW_CACHE          cache root (default ~/.cache/pciefw)
#   PCIEFW_GUEST_ABI      force a kernel ABI (e.g. 6.1.0-56) instead of asking apt
#   PCIEFW_GUEST_MODULES  modules to include (default below); deps are added
set -euo pipefail
shopt -s inherit_errexit  # also stop on errors inside $(...)

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF="$HERE/$(basename "${BASH_SOURCE[0]}")"
DEFAULT_MODULES="e1000 e1000e virtio_pci virtio_net"
# udhcpc's default event script in the image: "udhcpc -i eth0" applies
# its lease (without one, busybox's udhcpc leaves a down link down and
# retries forever).
UDHCPC_SCRIPT=$HERE/udhcpc.script
MODULES=${PCIEFW_GUEST_MODULES:-$DEFAULT_MODULES}
# Fixed timestamp for everything packed, so images are byte-for-byte stable.
EPOCH=${SOURCE_DATE_EPOCH:-0}

log() { printf 'build-guest: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
# shellcheck source=scripts/apt-lock.sh
. "$HERE/../../scripts/apt-lock.sh"

# Same derivation as scripts/setup.sh: the ABI linux-image-amd64 depends on.
guest_kernel_abi() {
	apt-cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/.*Depends: linux-image-\(6\.[0-9.]*-[0-9]*\)-amd64.*/\1/p' | head -n1
}

find_abi() {
	local abi=${PCIEFW_GUEST_ABI:-}
	[ -n "$abi" ] || abi=$(guest_kernel_abi)
	if [ -z "$abi" ] && [ "$(id -u)" -eq 0 ]; then
		# Fresh machines have empty apt lists; one update fixes that.
		log "apt-get update (no linux-image-amd64 in apt lists)"
		apt_get update -qq
		abi=$(guest_kernel_abi)
	fi
	[ -n "$abi" ] || die "cannot find Debian's linux-image-amd64 (run scripts/setup.sh)"
	printf '%s\n' "$abi"
}

# Download and unpack linux-image-<abi>-amd64 once into $CACHE_DIR/kernel/.
fetch_kernel() {
	local pkg=linux-image-$ABI-amd64
	[ -f "$KTREE/.extracted" ] && return 0
	local tmp
	tmp=$(mktemp -d "$CACHE_DIR/fetch.XXXXXX")
	log "downloading $pkg"
	# apt-get download writes into the current directory.
	(cd "$tmp" && apt-get download -q "$pkg" >&2 2>/dev/null) ||
		(cd "$tmp" && apt-get download "$pkg" >&2) ||
		die "apt-get download $pkg failed"
	log "extracting $pkg"
	dpkg-deb -x "$tmp"/"$pkg"_*.deb "$tmp/tree"
	rm -rf "$KTREE"
	mv "$tmp/tree" "$KTREE"
	rm -rf "$tmp"
	touch "$KTREE/.extracted"
}

# The bzImage carries the kernel as an xz stream: find the xz magic and
# decompress from there.  The first match may be a false positive, so try
# each offset until the output is an ELF file.
extract_vmlinux() {
	local vmlinuz=$1 out=$2 off
	[ -s "$out" ] && [ "$out" -nt "$vmlinuz" ] && return 0
	log "extracting ELF vmlinux from $(basename "$vmlinuz")"
	# shellcheck disable=SC2013 # offsets are plain numbers
	for off in $(LC_ALL=C grep -abo $'\xfd7zXZ' "$vmlinuz" | cut -d: -f1); do
		tail -c +$((off + 1)) "$vmlinuz" |
			xz -dc --single-stream >"$out.tmp" 2>/dev/null || true
		if [ "$(head -c 4 "$out.tmp" | od -An -tx1 | tr -d ' \n')" = 7f454c46 ]; then
			mv "$out.tmp" "$out"
			return 0
		fi
	done
	rm -f "$out.tmp"
	die "no xz-compressed ELF found in $vmlinuz"
}

# Path of a module's .ko in the extracted kernel tree ("-" and "_" are the
# same in module names, but not in file names).
module_path() {
	local name=$1 alt p
	alt=$(printf '%s' "$name" | tr '_-' '-_')
	p=$(find "$KMODS/kernel" \( -name "$name.ko" -o -name "$alt.ko" \) -print -quit)
	[ -n "$p" ] || die "module $name not found in $KMODS/kernel"
	printf '%s\n' "$p"
}

# Emit modules in load order (dependencies first), each once.
declare -A SEEN=()
resolve_module() {
	local name=${1//-/_} path dep
	[ -n "${SEEN[$name]:-}" ] && return 0
	SEEN[$name]=1
	path=$(module_path "$name")
	for dep in $(modinfo -F depends "$path" | tr ',' ' '); do
		resolve_module "$dep"
	done
	printf '%s %s\n' "$name" "$path"
}

# Host tools copied into the image beside busybox: lspci and setpci
# (pciutils), for looking at devices and writing their config space (e.g.
# enabling MSI by hand, docs/models.md); ethtool, for what drivers report
# (ethtool -i, -S).
HOST_TOOLS="lspci setpci ethtool"

# The host files copied into the image: busybox, the host tools and the
# shared libraries they need (ldd lists the dynamic loader by its absolute
# path).
host_inputs() {
	local tool
	printf '%s\n' /bin/busybox /usr/share/misc/pci.ids
	for tool in $HOST_TOOLS; do
		command -v $tool
	done
	host_tool_libs
}

# The shared libraries of the host tools, each once.
host_tool_libs() {
	local tool
	for tool in $HOST_TOOLS; do
		ldd "$(command -v $tool)"
	done | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}' | sort -u
}

# Everything that should trigger a rebuild when it changes: contents, by
# canonical path (where PATH finds a tool, /sbin or /usr/sbin, is no input).
input_stamp() {
	{
		sha256sum "$SELF" "$UDHCPC_SCRIPT" | cut -d' ' -f1
		printf 'abi=%s modules=%s epoch=%s\n' "$ABI" "$MODULES" "$EPOCH"
		host_inputs | xargs readlink -f | LC_ALL=C sort -u | xargs sha256sum
	} | sha256sum | cut -d' ' -f1
}

install_busybox() {
	local root=$1 applet
	install -D -m 0755 /bin/busybox "$root/bin/busybox"
	# --list-full gives each applet's canonical path (bin/sh, sbin/insmod...).
	# modprobe/depmod are left out on purpose: modules load with insmod
	# (see /bin/loadmod), and without /sbin/modprobe the kernel's
	# request_module() fails quietly instead of running a half-working one.
	"$root/bin/busybox" --list-full | while read -r applet; do
		case "$applet" in bin/busybox | */modprobe | */depmod) continue ;; esac
		mkdir -p "$root/$(dirname "$applet")"
		ln -sf /bin/busybox "$root/$applet"
	done
}

install_host_tools() {
	local root=$1 f tool path
	for tool in $HOST_TOOLS; do
		path=$(command -v $tool) || die "$tool not found (scripts/setup.sh installs it)"
		# Replaces busybox's applet of that name if it has one.
		rm -f "$root/usr/bin/$tool" "$root/bin/$tool" "$root/sbin/$tool"
		install -D -m 0755 "$path" "$root/usr/bin/$tool"
	done
	for f in $(host_tool_libs); do
		# Same absolute path in the guest as on the host, dereferenced.
		install -D -m 0755 "$(readlink -f "$f")" "$root$f"
	done
	# lspci reads names from here (compiled-in default path on Debian).
	install -D -m 0644 /usr/share/misc/pci.ids "$root/usr/share/misc/pci.ids"
}

# Copy modules (uncompressed, flat) to /lib/modules/<kver>/ with:
#   load-order  every module, dependencies first
#   deps        "name: dep1 dep2 ..." (all transitive deps, in load order)
install_modules() {
	local root=$1 dst=$1/lib/modules/$KVER name path m
	mkdir -p "$dst"
	: >"$dst/load-order"
	: >"$dst/deps"
	local order
	for m in $MODULES; do
		order=$(resolve_module "$m")
		printf '%s: %s\n' "${m//-/_}" \
			"$(printf '%s\n' "$order" | sed '$d' | cut -d' ' -f1 | tr '\n' ' ' | sed 's/ $//')" \
			>>"$dst/deps"
		while read -r name path; do
			[ -f "$dst/$name.ko" ] && continue
			cp "$path" "$dst/$name.ko"
			printf '%s\n' "$name" >>"$dst/load-order"
		done <<<"$order"
	done
	# Index files (modules.dep.bin, modules.alias.bin, ...) for just these
	# modules: lspci -v/-k reads them through libkmod to print "Kernel
	# modules:", and fails with "Unable to load libkmod resources" without.
	cp "$KMODS/modules.builtin" "$KMODS/modules.builtin.modinfo" "$dst/"
	sed 's/$/.ko/' "$dst/load-order" >"$dst/modules.order"
	depmod -b "$root" "$KVER"
	# Only needed by depmod (for modules.builtin.alias.bin); large.
	rm -f "$dst/modules.builtin.modinfo"
	# Stable path for tests: /lib/modules/current -> <kver>.
	ln -sfn "$KVER" "$root/lib/modules/current"
}

# PID 1.  Prints marker lines the host-side harness (guestlib.py) waits for.
write_init() {
	cat >"$1" <<'INIT'
#!/bin/sh
# pciefw test guest init: run /test.sh (or a shell with pciefw.shell=1),
# report its status as "PCIEFW-GUEST: exit N", then power off.
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
# Re-open the console in case the kernel found no /dev/console in the cpio.
exec </dev/console >/dev/console 2>&1
mkdir -p /dev/pts /dev/shm
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /run
hostname guest
ip link set lo up
echo "PCIEFW-GUEST: init"

status=0
if grep -qw 'pciefw.shell=1' /proc/cmdline; then
	echo "PCIEFW-GUEST: shell (exit or ^D powers off)"
	# cttyhack makes the console our controlling tty so ^C works.
	setsid cttyhack sh -l
	status=$?
elif [ -f /test.sh ]; then
	sh /test.sh
	status=$?
else
	echo "PCIEFW-GUEST: no /test.sh"
fi
sync
echo "PCIEFW-GUEST: exit $status"
poweroff -f
# PID 1 must never exit (that panics); fall back to sysrq power-off.
sleep 5
echo o >/proc/sysrq-trigger
while :; do sleep 60; done
INIT
	chmod 0755 "$1"
}

# insmod a module and its dependencies, by name, skipping loaded ones.
write_loadmod() {
	cat >"$1" <<'LOADMOD'
#!/bin/sh
# usage: loadmod NAME...   (e.g. loadmod virtio_net)
dir=/lib/modules/$(uname -r)
for m in "$@"; do
	m=$(echo "$m" | tr - _)
	[ -f "$dir/$m.ko" ] || { echo "loadmod: no module $m in $dir" >&2; exit 1; }
	for d in $(sed -n "s/^$m: *//p" "$dir/deps") "$m"; do
		[ -d "/sys/module/$d" ] && continue
		insmod "$dir/$d.ko" || exit 1
	done
done
LOADMOD
	chmod 0755 "$1"
}

install_scripts() {
	local root=$1
	write_init "$root/init"
	write_loadmod "$root/bin/loadmod"
	install -D -m 0755 "$UDHCPC_SCRIPT" "$root/etc/udhcpc/default.script"
	cat >"$root/etc/profile" <<'PROFILE'
export PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root
PS1='guest# '
cd /root
PROFILE
}

make_skeleton() {
	local root=$1 d
	for d in proc sys dev tmp run root etc mnt var/tmp; do mkdir -p "$root/$d"; done
	chmod 1777 "$root/tmp" "$root/var/tmp"
	# The kernel opens /dev/console before /init runs; without the node
	# /init starts with no stdio (it re-opens the console after mounting
	# devtmpfs, so this is a belt-and-braces step that needs root).
	mknod -m 0600 "$root/dev/console" c 5 1 2>/dev/null || true
	printf 'root:x:0:0:root:/root:/bin/sh\n' >"$root/etc/passwd"
	printf 'root:x:0:\n' >"$root/etc/group"
	printf 'guest\n' >"$root/etc/hostname"
}

# Pack a tree as a deterministic gzip'd newc cpio (sorted names, fixed
# owner and time, no inode numbers).  Shared with mkinitramfs.sh.
pack_cpio() {
	local root=$1 out=$2
	find "$root" -exec touch -h -d "@$EPOCH" {} +
	(cd "$root" && find . -mindepth 1 | LC_ALL=C sort |
		cpio --quiet -o -H newc -R 0:0 --reproducible) | gzip -n -6 >"$out.tmp"
	mv "$out.tmp" "$out"
}

# Build the base into $1 (a new directory): rootfs/ and base.cpio.gz.
build_rootfs() {
	local dir=$1 tmp=$1.tmp
	rm -rf "$tmp"
	mkdir -p "$tmp/rootfs"
	make_skeleton "$tmp/rootfs"
	install_busybox "$tmp/rootfs"
	install_host_tools "$tmp/rootfs"
	install_modules "$tmp/rootfs"
	install_scripts "$tmp/rootfs"
	pack_cpio "$tmp/rootfs" "$tmp/base.cpio.gz"
	mv "$tmp" "$dir"
}

# Bases live under base/STAMP/ and are never rebuilt in place: a test run
# in one checkout keeps reading its base while another checkout (another
# script, other host tools) builds its own.  The newest few stay, and any
# used within a day (each use refreshes it); older ones go.
prune_bases() {
	local old
	for old in $(ls -1td "$CACHE_DIR"/base/*/ 2>/dev/null | tail -n +5); do
		if [ -z "$(find "$old" -maxdepth 0 -mmin -$((24 * 60)))" ]; then
			rm -rf "$old"
		fi
	done
}

# KEY=VALUE lines, %q-quoted so callers can eval them.
print_env() {
	local vmlinuz=$1
	emit() { printf '%s=%q\n' "$1" "$2"; }
	emit GUEST_ABI "$ABI"
	emit GUEST_KVER "$KVER"
	emit GUEST_KERNEL "$CACHE_DIR/vmlinux"
	emit GUEST_VMLINUZ "$vmlinuz"
	emit GUEST_BASE "$BASE_DIR/rootfs"
	emit GUEST_BASE_CPIO "$BASE_DIR/base.cpio.gz"
	emit GUEST_MODULES_DIR "/lib/modules/$KVER" # path inside the guest
	emit GUEST_KERNEL_TREE "$KTREE"
	emit GUEST_CACHE_DIR "$CACHE_DIR"
}

main() {
	local want_env=0
	case "${1:-}" in
	--print-env) want_env=1 ;;
	"") ;;
	-h | --help) sed -n '2,/^set -e/p' "$SELF" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument: $1" ;;
	esac

	ABI=$(find_abi)
	KVER=$ABI-amd64
	CACHE_DIR=${PCIEFW_CACHE:-$HOME/.cache/pciefw}/guest/$ABI
	KTREE=$CACHE_DIR/kernel
	KMODS=$KTREE/lib/modules/$KVER
	mkdir -p "$CACHE_DIR"
	# Parallel test runs share the cache: one builder at a time.
	exec 9>"$CACHE_DIR/.lock"
	flock 9

	fetch_kernel
	local vmlinuz=$KTREE/boot/vmlinuz-$KVER
	[ -f "$vmlinuz" ] || die "missing $vmlinuz"
	extract_vmlinux "$vmlinuz" "$CACHE_DIR/vmlinux"

	BASE_DIR=$CACHE_DIR/base/$(input_stamp)
	if [ -d "$BASE_DIR/rootfs" ] && [ -f "$BASE_DIR/base.cpio.gz" ]; then
		touch "$BASE_DIR"
		log "up to date: $BASE_DIR"
	else
		log "building base rootfs (modules: $MODULES)"
		build_rootfs "$BASE_DIR"
		prune_bases
		log "built $BASE_DIR/base.cpio.gz ($(du -h "$BASE_DIR/base.cpio.gz" | cut -f1))"
	fi

	[ "$want_env" -eq 0 ] || print_env "$vmlinuz"
}

main "$@"
