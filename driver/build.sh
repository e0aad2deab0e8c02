#!/usr/bin/env bash
# Build pciefw_nic.ko (and pciefw_irqtest.ko next to it) for the guest
# kernel, out of the source tree (in build/driver/), and print
# pciefw_nic.ko's path.  Rebuilds only on change.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=${PCIEFW_DRIVER_BUILD:-$top/build/driver}

# The guest runs Debian's 6.1 kernel; its headers are installed by
# scripts/setup.sh (the host's own kernel may differ).
kdir=${KDIR:-$(ls -d /usr/src/linux-headers-6.1.*-amd64 2>/dev/null | sort -V | tail -n1)}
[ -d "$kdir" ] || { echo "driver/build.sh: no guest kernel headers (run scripts/setup.sh)" >&2; exit 1; }

mkdir -p "$out"
for f in Kbuild pciefw_nic.c pciefw_irqtest.c; do
	cmp -s "$top/driver/$f" "$out/$f" || cp "$top/driver/$f" "$out/$f"
done
make -s -C "$kdir" M="$out" modules >&2
echo "$out/pciefw_nic.ko"
