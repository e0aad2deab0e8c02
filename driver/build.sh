#!/usr/bin/env bash
# Build pciefw_nic.ko (and pciefw_irqtest.ko next to it) for the guest
# kernel, out of the source tree (in build/driver/), and print
# pciefw_nic.ko's path.  Rebuilds only on change.
#
# --epc: also build pciefw_epc.ko (and the test helper
# pciefw_test_epc_irq.ko next to it) against the PCI endpoint framework
# that driver/epf/build-epf.sh builds (and caches), and print
# pciefw_epc.ko's path instead.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
out=${PCIEFW_DRIVER_BUILD:-$top/build/driver}
epc=0
case "${1:-}" in
--epc) epc=1 ;;
"") ;;
*) echo "usage: driver/build.sh [--epc]" >&2; exit 2 ;;
esac

# The guest runs Debian's 6.1 kernel; its headers are installed by
# scripts/setup.sh (the host's own kernel may differ).
kdir=${KDIR:-$(ls -d /usr/src/linux-headers-6.1.*-amd64 2>/dev/null | sort -V | tail -n1)}
[ -d "$kdir" ] || { echo "driver/build.sh: no guest kernel headers (run scripts/setup.sh)" >&2; exit 1; }

symvers=
if [ $epc = 1 ]; then
	symvers=$("$top/driver/epf/build-epf.sh" --print-dir)/Module.symvers
fi

mkdir -p "$out"
for f in "$top"/driver/Kbuild "$top"/driver/*.[ch]; do
	cmp -s "$f" "$out/${f##*/}" || cp "$f" "$out/"
done
make -s -C "$kdir" M="$out" PCIEFW_EPF_SYMVERS="$symvers" modules >&2
if [ $epc = 1 ]; then
	echo "$out/pciefw_epc.ko"
else
	echo "$out/pciefw_nic.ko"
fi
