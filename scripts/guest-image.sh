#!/usr/bin/env bash
# ./dev guest [--print]: the guest for running QEMU by hand (README), in
# build/guest/:
#   vmlinux          the guest kernel: Debian's 6.1 (a link into the cache,
#                    tests/guest/build-guest.sh)
#   initrd.cpio.gz   the test image (busybox, lspci, setpci, devmem, udhcpc
#                    with its event script, e1000 and virtio modules) plus
#                    /lib/modules/extra/pciefw_nic.ko and pciefw_irqtest.ko
#                    and the scripts of scripts/guest/ in /usr/share/pciefw/
# Booted with pciefw.run=NAME on the kernel command line, the guest runs
# /usr/share/pciefw/NAME.sh (testdev, nic, e1000) and powers off; without
# it, it gives you its shell (scripts/guest/run.sh).
#   --print  also print GUEST_KERNEL=PATH and GUEST_INITRD=PATH (absolute)
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
export PATH=/usr/bin:$PATH

print=0
case ${1:-} in
--print) print=1 ;;
"") ;;
-h | --help) sed -n '2,/^set -e/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
*) echo "dev guest: unknown option '$1' (try ./dev guest --help)" >&2; exit 2 ;;
esac

out=$top/build/guest
eval "$(tests/guest/build-guest.sh --print-env)"
export GUEST_BASE GUEST_BASE_CPIO
ko=$(driver/build.sh | tail -n1)
mkdir -p "$out"
ln -sfn "$GUEST_KERNEL" "$out/vmlinux.new"
mv -Tf "$out/vmlinux.new" "$out/vmlinux"
args=(--test-script scripts/guest/run.sh
	--add "$ko:/lib/modules/extra/pciefw_nic.ko"
	--add "${ko%/*}/pciefw_irqtest.ko:/lib/modules/extra/pciefw_irqtest.ko")
for f in scripts/guest/*.sh; do
	[ "$f" = scripts/guest/run.sh ] || args+=(--add "$f:/usr/share/pciefw/")
done
# Written aside and renamed: a guest booting from the old image keeps it.
tests/guest/mkinitramfs.sh "$out/initrd.cpio.gz" "${args[@]}"
if [ "$print" = 1 ]; then
	printf 'GUEST_KERNEL=%q\nGUEST_INITRD=%q\n' "$out/vmlinux" "$out/initrd.cpio.gz"
fi
