#!/usr/bin/env bash
# Install every build and test dependency of pciefw from Debian's archive on
# a bookworm machine.  Idempotent: it adds apt sources only when missing and
# calls apt-get only for packages that are not installed yet.
set -euo pipefail

SUDO=
[ "$(id -u)" -eq 0 ] || SUDO=sudo

log() { printf 'setup: %s\n' "$*" >&2; }
# shellcheck source=scripts/apt-lock.sh
. "$(dirname "${BASH_SOURCE[0]}")/apt-lock.sh"

# Packages from bookworm itself.
BASE_PKGS=(
	build-essential pkg-config ninja-build git
	protobuf-c-compiler libprotobuf-c-dev libev-dev libglib2.0-dev
	clang libclang-rt-14-dev python3-pytest
	libslirp-dev
	# TLS: the endpoint (GnuTLS); certtool makes the tests' certificates
	libgnutls28-dev gnutls-bin
	# vfio-user comparison (bench/): libvfio-user from QEMU's source
	libjson-c-dev libcmocka-dev
	# QEMU build
	dpkg-dev python3-venv flex bison libfdt-dev zlib1g-dev libpixman-1-dev
	# QEMU run time firmware
	seabios qemu-system-data ipxe-qemu
	# guest image
	busybox-static pciutils ethtool cpio xz-utils kmod iproute2
	# trace inspection
	tshark
	# devices in Verilog and VHDL (docs/hdl.md): Verilator, and GHDL with
	# its LLVM back end (hdl/build.py says why); gtkwave only to look
	verilator ghdl ghdl-llvm
)
# Only for ./dev bench (the chart in docs/benchmarks.md).
BENCH_PKGS=(python3-matplotlib)
# Packages we take from bookworm-backports (QEMU 10.2 needs meson >= 1.5).
BACKPORT_PKGS=(meson python3-pycotap)

add_sources() {
	local f=/etc/apt/sources.list.d/pciefw.sources
	[ -f "$f" ] && return 1
	log "adding apt sources: bookworm-backports, deb-src for sid ($f)"
	$SUDO tee "$f" >/dev/null <<'SRC'
# Added by pciefw scripts/setup.sh
Types: deb deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

# Only used by `apt-get source qemu=...`; binary installs stay on bookworm.
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: sid
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
	return 0
}

missing() {
	local p
	for p in "$@"; do
		[ "${p#\#}" = "$p" ] || continue
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
			grep -q '^install ok installed$' || printf '%s\n' "$p"
	done
}

# The guest runs Debian's current 6.1 kernel; the driver is built against
# the matching headers, so both names derive from the same ABI string.
guest_kernel_abi() {
	apt-cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/.*Depends: linux-image-\(6\.[0-9.]*-[0-9]*\)-amd64.*/\1/p' | head -n1
}

updated=0
apt_update() {
	[ "$updated" -eq 1 ] && return
	log "apt-get update"
	apt_get update -qq
	updated=1
}

add_sources && apt_update
# (Capture first: grep -q closing the pipe early would fail under pipefail.)
policy=$(apt-cache policy meson)
case "$policy" in
*backports*) ;;
*) apt_update ;;
esac

abi=$(guest_kernel_abi)
if [ -z "$abi" ]; then
	apt_update
	abi=$(guest_kernel_abi)
fi
[ -n "$abi" ] || { log "cannot find Debian's linux-image-amd64 kernel"; exit 1; }

need=$(missing "${BASE_PKGS[@]}" "linux-headers-$abi-amd64")
if [ -n "$need" ]; then
	apt_update
	log "installing: $(echo $need)"
	apt_get install -y -qq $need
fi

# meson from backports unless a new enough one is already there.
meson_ok() {
	local v
	v=$(dpkg-query -W -f='${Version}' meson 2>/dev/null) || return 1
	dpkg --compare-versions "$v" ge 1.5
}
if ! meson_ok || [ -n "$(missing python3-pycotap)" ]; then
	apt_update
	log "installing from bookworm-backports: ${BACKPORT_PKGS[*]}"
	apt_get install -y -qq -t bookworm-backports "${BACKPORT_PKGS[@]}"
fi

if [ "${1:-}" = --bench ]; then
	need=$(missing "${BENCH_PKGS[@]}")
	if [ -n "$need" ]; then
		apt_update
		log "installing for the benchmarks: $(echo $need)"
		apt_get install -y -qq $need
	fi
fi

log "dependencies present (guest kernel ABI $abi)"
