#!/usr/bin/env bash
# Build a lean qemu-system-x86_64 (QEMU 10.2.2) with the pciefw device in it.
#
#   qemu-pciefw/build-qemu.sh                 fetch, patch, configure, build
#   qemu-pciefw/build-qemu.sh --print-binary  same, then print the binary path
#   qemu-pciefw/build-qemu.sh --print-source  print the QEMU source tree
#                                             (fetched if missing)
#
# Environment:
#   PCIEFW_CACHE  cache root (default ~/.cache/pciefw); the tree goes to
#                 $PCIEFW_CACHE/qemu-10.2.2/src, the build to .../src/build
#   QEMU_SRC      use this QEMU source tree (10.2.x) instead of fetching one;
#                 its hw/Kconfig, hw/meson.build and meson.build get hooks
#   QEMU_BUILD    build directory (default .../src/build, or
#                 $QEMU_SRC/build-pciefw for a user's tree)
#   JOBS          ninja parallelism (default 2)
#
# The device (qemu-pciefw/hw/pciefw/) and the protocol library (protocol/)
# are copied into the tree as hw/pciefw/; a file is copied only when its
# content changed, so ninja recompiles only what changed.  The binary is
# then kept in $PCIEFW_CACHE/qemu-10.2.2/bin/HASH/, keyed on the QEMU version
# and a hash of every input: a run whose inputs were built before returns at
# once, and a binary in use is never overwritten by a build from another
# checkout (builds of the shared tree take a lock).  Progress goes to
# stderr; stdout carries only the path asked for.
set -euo pipefail

QEMU_VERSION=10.2.2
QEMU_DEB_VERSION=1:10.2.2+ds-1
TARGET=x86_64-softmmu
BINARY_NAME=qemu-system-x86_64
JOBS=${JOBS:-2}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
CACHE=${PCIEFW_CACHE:-$HOME/.cache/pciefw}
BASE=$CACHE/qemu-$QEMU_VERSION
SRC=${QEMU_SRC:-$BASE/src}
if [ -n "${QEMU_SRC:-}" ]; then
	# Leave a user's own build/ alone.
	BUILD=${QEMU_BUILD:-$SRC/build-pciefw}
else
	BUILD=${QEMU_BUILD:-$SRC/build}
fi

DEVICE_DIR=$HERE/hw/pciefw
PROTO_DIR=$REPO/protocol
PROTO_FILES=(buf.c buf.h codec.c codec.h description.c description.h frame.c
	     frame.h handshake.c handshake.h msg.c msg.h status.c trace.c
	     trace.h pciefw.h ring.c ring.h shared_fd.c shared_fd.h rx.c rx.h
	     fdpass.c fdpass.h shared_ram.c shared_ram.h regrec.c regrec.h)
FIRMWARE_PATH=/usr/share/qemu:/usr/share/seabios:/usr/lib/ipxe/qemu
DEVICES_NAME=pciefw

CONFIGURE_ARGS=(
	--python=/usr/bin/python3
	--target-list=$TARGET
	--without-default-devices
	--with-devices-x86_64=$DEVICES_NAME
	--disable-debug-info
	--firmwarepath=$FIRMWARE_PATH
	--disable-docs --disable-werror --disable-gtk --disable-sdl
	--disable-opengl --disable-vnc --disable-spice --disable-curses
	--disable-xen --disable-rust --enable-slirp --disable-tools
	--disable-guest-agent --disable-install-blobs --disable-download
)

# Devices of the lean build.  With --without-default-devices "default y"
# and "imply" are ignored, so everything used is listed.
DEVICES_MAK="# pciefw lean device list (written by qemu-pciefw/build-qemu.sh)
CONFIG_Q35=y
CONFIG_I440FX=y
CONFIG_PCIE_PORT=y
CONFIG_PCI_BRIDGE=y
CONFIG_PCIE_PCI_BRIDGE=y
CONFIG_PCIEFW=y
CONFIG_E1000_PCI=y
CONFIG_E1000E_PCI_EXPRESS=y
CONFIG_VIRTIO_PCI=y
CONFIG_VIRTIO_NET=y
CONFIG_EDU=y
CONFIG_PCI_TESTDEV=y
CONFIG_VFIO_PCI=y
CONFIG_VFIO_USER=y
CONFIG_ISA_DEBUG=y
CONFIG_SERIAL_ISA=y
CONFIG_SERIAL_PCI=y
# intel-iommu: interrupt remapping gives an x86 guest more than one MSI
# vector per function (docs/epc.md); an IOMMU in front of pciefw also
# turns shared guest memory off (docs/protocol.md 10).
CONFIG_VTD=y
# PC_ACPI selects ACPI_CXL, whose code calls into hw/cxl: without CXL the
# link fails (cxl_fmws_get_all_sorted) in QEMU 10.2; CXL needs PXB, and
# hw/cxl needs CXL_MEM_DEVICE.
CONFIG_PXB=y
CONFIG_CXL=y
CONFIG_CXL_MEM_DEVICE=y
"

PRINT_BINARY=0
PRINT_SOURCE=0
KEEP_BINARIES=4
KEEP_MINUTES=$((24 * 60))

log() { printf 'build-qemu: %s\n' "$*" >&2; }
die() { printf 'build-qemu: error: %s\n' "$*" >&2; exit 1; }

usage() {
	sed -n '2,25s/^# \{0,1\}//p' "${BASH_SOURCE[0]}"
}

for arg in "$@"; do
	case $arg in
	--print-binary) PRINT_BINARY=1 ;;
	--print-source) PRINT_SOURCE=1 ;;
	-h|--help) usage; exit 0 ;;
	*) usage >&2; die "unknown argument '$arg'" ;;
	esac
done

PATH=/usr/bin:/bin:/usr/sbin:/sbin:$PATH
export PATH

need_tool() {
	command -v "$1" >/dev/null 2>&1 ||
		die "'$1' not found: run scripts/setup.sh (package $2)"
}

# Copy $1 to $2 only if the content differs, keeping ninja's view of
# unchanged files intact.
sync_file() {
	if ! cmp -s "$1" "$2"; then
		mkdir -p "$(dirname "$2")"
		cp "$1" "$2.tmp.$$" && mv -f "$2.tmp.$$" "$2"
		log "updated ${2#"$SRC"/}"
	fi
}

inputs_hash() {
	{
		echo "qemu $QEMU_VERSION"
		printf '%s\n' "${CONFIGURE_ARGS[@]}"
		printf '%s' "$DEVICES_MAK"
		# Contents only, not where this checkout lives.
		sha256sum <"${BASH_SOURCE[0]}"
		(cd "$DEVICE_DIR" && find . -type f | LC_ALL=C sort | xargs sha256sum)
		(cd "$PROTO_DIR" && sha256sum "${PROTO_FILES[@]}" pciefw.proto)
		echo "src $SRC build $BUILD"
	} | sha256sum | cut -d' ' -f1
}

fetch_source() {
	[ -n "${QEMU_SRC:-}" ] && {
		[ -f "$SRC/VERSION" ] || die "QEMU_SRC=$SRC is not a QEMU source tree"
		return
	}
	[ -f "$SRC/VERSION" ] && return
	need_tool apt-get apt
	need_tool dpkg-source dpkg-dev
	local tmp
	mkdir -p "$BASE"
	tmp=$(mktemp -d "$BASE/fetch.XXXXXX")
	log "fetching QEMU source: apt-get source qemu=$QEMU_DEB_VERSION"
	if ! (cd "$tmp" && apt-get source -q "qemu=$QEMU_DEB_VERSION") >"$BASE/fetch.log" 2>&1; then
		tail -n 20 "$BASE/fetch.log" >&2
		rm -rf "$tmp"
		die "apt-get source qemu=$QEMU_DEB_VERSION failed (log: $BASE/fetch.log): is the sid deb-src entry configured (scripts/setup.sh) and 'apt-get update' done?"
	fi
	local dir
	dir=$(find "$tmp" -mindepth 1 -maxdepth 1 -type d -name 'qemu-*' | head -n1)
	[ -n "$dir" ] && [ -f "$dir/VERSION" ] || { rm -rf "$tmp"; die "no QEMU tree in the fetched source"; }
	mv "$dir" "$SRC"
	rm -rf "$tmp"
	log "QEMU source in $SRC ($(cat "$SRC/VERSION"))"
}

# Insert line $3 after the line matching $2 in file $1, once.
hook_after() {
	local file=$1 anchor=$2 line=$3
	grep -qxF -- "$line" "$file" && return
	grep -qE -- "$anchor" "$file" || die "cannot hook into $file: no line matches '$anchor'"
	log "hooking $line into ${file#"$SRC"/}"
	ANCHOR=$anchor LINE=$line /usr/bin/python3 - "$file" <<'PY'
import os, re, sys
path = sys.argv[1]
anchor, line = re.compile(os.environ["ANCHOR"]), os.environ["LINE"]
with open(path) as f:
    lines = f.read().split("\n")
for i, l in enumerate(lines):
    if anchor.search(l):
        lines.insert(i + 1, line)
        break
with open(path, "w") as f:
    f.write("\n".join(lines))
PY
}

install_device() {
	local dst=$SRC/hw/pciefw f gen

	for f in "$DEVICE_DIR"/*; do
		sync_file "$f" "$dst/$(basename "$f")"
	done
	for f in "${PROTO_FILES[@]}"; do
		sync_file "$PROTO_DIR/$f" "$dst/protocol/$f"
	done
	need_tool protoc-c protobuf-c-compiler
	gen=$(mktemp -d)
	protoc-c --proto_path="$PROTO_DIR" --c_out="$gen" "$PROTO_DIR/pciefw.proto" ||
		{ rm -rf "$gen"; die "protoc-c failed on protocol/pciefw.proto"; }
	sync_file "$gen/pciefw.pb-c.c" "$dst/protocol/pciefw.pb-c.c"
	sync_file "$gen/pciefw.pb-c.h" "$dst/protocol/pciefw.pb-c.h"
	rm -rf "$gen"

	hook_after "$SRC/hw/Kconfig" '^source pci/Kconfig$' 'source pciefw/Kconfig'
	hook_after "$SRC/hw/meson.build" "^subdir\\('pci-host'\\)" "subdir('pciefw')"
	hook_after "$SRC/meson.build" "^ *'hw/pci-host',$" "    'hw/pciefw',"

	local mak=$SRC/configs/devices/$TARGET/$DEVICES_NAME.mak tmpmak
	tmpmak=$(mktemp)
	printf '%s' "$DEVICES_MAK" >"$tmpmak"
	sync_file "$tmpmak" "$mak"
	rm -f "$tmpmak"
}

configure_tree() {
	local want have=
	want=$(printf '%s\n' "${CONFIGURE_ARGS[@]}")
	[ -f "$BUILD/.pciefw-configure" ] && have=$(cat "$BUILD/.pciefw-configure")
	if [ -f "$BUILD/build.ninja" ] && [ "$want" = "$have" ]; then
		return
	fi
	need_tool ninja ninja-build
	need_tool meson meson
	log "configuring QEMU in $BUILD"
	mkdir -p "$BUILD"
	if ! (cd "$BUILD" && "$SRC/configure" "${CONFIGURE_ARGS[@]}" >"$BUILD/.pciefw-configure.log" 2>&1); then
		tail -n 30 "$BUILD/.pciefw-configure.log" >&2
		die "QEMU configure failed (full log: $BUILD/.pciefw-configure.log); run scripts/setup.sh for the build dependencies"
	fi
	printf '%s\n' "$want" >"$BUILD/.pciefw-configure"
}

# The binary looks for firmware under qemu-bundle/<firmwarepath> when run
# from its build directory; point those at the system's firmware packages.
link_firmware() {
	local d
	IFS=: read -ra dirs <<<"$FIRMWARE_PATH"
	for d in "${dirs[@]}"; do
		[ -d "$d" ] || continue
		if [ -L "$BUILD/qemu-bundle$d" ] || [ ! -e "$BUILD/qemu-bundle$d" ]; then
			mkdir -p "$(dirname "$BUILD/qemu-bundle$d")"
			ln -sfn "$d" "$BUILD/qemu-bundle$d"
		fi
	done
}

build() {
	log "building $BINARY_NAME (ninja -j$JOBS)"
	if ! ninja -C "$BUILD" -j"$JOBS" "$BINARY_NAME" >"$BUILD/.pciefw-ninja.log" 2>&1; then
		grep -E -A12 '^FAILED' "$BUILD/.pciefw-ninja.log" | head -n 60 >&2 || true
		die "QEMU build failed (full log: $BUILD/.pciefw-ninja.log)"
	fi
	grep -E 'hw/pciefw/.*warning' "$BUILD/.pciefw-ninja.log" >&2 || true
}

# Keep the binary built from inputs $1 where no later build overwrites it.
keep_binary() {
	local dir=$BASE/bin/$1 old
	mkdir -p "$dir"
	cp "$BUILD/$BINARY_NAME" "$dir/$BINARY_NAME.tmp.$$"
	mv -f "$dir/$BINARY_NAME.tmp.$$" "$dir/$BINARY_NAME"
	# The most recent few stay, and any used within a day: a long test
	# run in another checkout must not lose its binary under it (each use
	# refreshes the directory's time, see main).  Older ones go.
	for old in $(ls -1td "$BASE"/bin/*/ 2>/dev/null | tail -n +$((KEEP_BINARIES + 1))); do
		if [ -z "$(find "$old" -maxdepth 0 -mmin -$((KEEP_MINUTES)))" ]; then
			rm -rf "$old"
		fi
	done
}

main() {
	local hash kept
	if [ "$PRINT_SOURCE" -eq 1 ]; then
		fetch_source
		printf '%s\n' "$SRC"
		return
	fi
	hash=$(inputs_hash)
	kept=$BASE/bin/$hash/$BINARY_NAME
	if [ -x "$kept" ]; then
		touch "$BASE/bin/$hash"
		log "up to date: $kept"
	else
		mkdir -p "$BASE"
		exec 9>"$BASE/.build.lock"
		flock 9
		fetch_source
		install_device
		configure_tree
		build
		link_firmware
		# The inputs as they were when copied in: a file edited during the
		# build gives another hash, and the next run builds again.
		keep_binary "$hash"
		exec 9>&-
		log "built $kept"
	fi
	if [ "$PRINT_BINARY" -eq 1 ]; then
		printf '%s\n' "$kept"
	fi
}
main
