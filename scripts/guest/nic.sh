#!/bin/sh
# In the guest: the pciefw NIC (docs/nic.md) with its driver, an address
# from DHCP and a ping of the host.
sh /usr/share/pciefw/net-up.sh nic
