#!/bin/sh
# In the guest: the test device (docs/testdev.md) as Linux sees it: its
# identity and BARs, then its ID register (BAR0 + 0) read with devmem.
dev=$(grep -l 0xfe01 /sys/bus/pci/devices/*/device | head -n1)
dev=${dev%/device}
[ -n "$dev" ] || { echo "testdev: no device 1234:fe01"; lspci; exit 1; }
lspci -vv -s "${dev##*/}"
echo 1 >"$dev/enable"      # memory decoding on, so devmem reaches BAR0
bar0=$(awk 'NR == 1 { print $1 }' "$dev/resource")
echo "testdev ID register: $(devmem "$bar0" 32)   (docs/testdev.md: 0x7E57DE01)"
