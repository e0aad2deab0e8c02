#!/bin/sh
# In the guest: bring the network up on a pciefw NIC and check it, as the
# README's NIC and e1000 sections and "./dev try nic|e1000" do.
#   net-up.sh nic     pciefw_nic.ko (driver/pciefw_nic.c), docs/nic.md
#   net-up.sh e1000   Debian's own e1000 driver, docs/e1000.md
# Then DHCP from the endpoint's user-mode network (slirp): busybox udhcpc,
# whose event script (/etc/udhcpc/default.script) brings the link up and
# applies the lease; then a ping of the host, 10.0.2.2.
case "$1" in
nic) insmod /lib/modules/extra/pciefw_nic.ko || exit 1 ;;
e1000) loadmod e1000 || exit 1 ;;
*) echo "usage: net-up.sh nic|e1000" >&2; exit 2 ;;
esac
# The driver registers eth0 as it probes the device.
for _ in $(seq 50); do
	[ -e /sys/class/net/eth0 ] && break
	sleep 0.1
done
udhcpc -i eth0 -n -q -t 10 -T 1 || { echo "net-up: no DHCP lease on eth0"; exit 3; }
ip -4 addr show eth0
ping -c 3 10.0.2.2 || { echo "net-up: no answer from the host, 10.0.2.2"; exit 4; }
