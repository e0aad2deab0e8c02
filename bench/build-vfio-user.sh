#!/usr/bin/env bash
# Build libvfio-user's gpio-pci-idio-16 sample (a vfio-user server with an
# IO BAR) from the libvfio-user copy inside the QEMU source we build, for the
# vfio-user column of the access-latency benchmark.  Prints the sample's path.
set -euo pipefail
export PATH=/usr/bin:$PATH
src=$("$(dirname "$0")/../qemu-pciefw/build-qemu.sh" --print-source)/subprojects/libvfio-user
[ -f "$src/meson.build" ] || { echo "build-vfio-user.sh: no libvfio-user in $src" >&2; exit 1; }
out=${PCIEFW_CACHE:-$HOME/.cache/pciefw}/libvfio-user
if [ ! -f "$out/build.ninja" ]; then
	meson setup "$out" "$src" --buildtype=release >&2
fi
ninja -C "$out" samples/gpio-pci-idio-16 >&2
echo "$out/samples/gpio-pci-idio-16"
