#!/bin/sh
# udhcpc event script for the test guest: configure the lease with ip(8).
case "$1" in
deconfig)
	ip addr flush dev "$interface"
	ip link set "$interface" up
	;;
bound|renew)
	ip addr flush dev "$interface"
	ip addr add "$ip/${mask:-24}" dev "$interface"
	[ -n "$router" ] && ip route add default via "${router%% *}" dev "$interface"
	echo "PCIEFW-DHCP: $interface $ip"
	;;
esac
exit 0
