#!/bin/sh
# /test.sh of the by-hand guest image (build/guest/initrd.cpio.gz, made by
# ./dev guest): with pciefw.run=NAME on the kernel command line it runs
# /usr/share/pciefw/NAME.sh (testdev, nic, e1000) and the guest powers off
# with that script's status; without it, the guest's shell (exit or ^D
# powers off).
name=$(sed -n 's/.*pciefw\.run=\([A-Za-z0-9_-]*\).*/\1/p' /proc/cmdline)
if [ -n "$name" ]; then
	[ -f "/usr/share/pciefw/$name.sh" ] || {
		echo "pciefw.run=$name: no /usr/share/pciefw/$name.sh"
		ls /usr/share/pciefw
		exit 2
	}
	echo "### /usr/share/pciefw/$name.sh"
	sh "/usr/share/pciefw/$name.sh"
	exit $?
fi
echo "### the guest's shell: sh /usr/share/pciefw/nic.sh (or e1000.sh, testdev.sh),"
echo "### lspci, devmem; exit or ^D powers off"
setsid cttyhack sh -l
exit 0
