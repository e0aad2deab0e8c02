#!/bin/sh
# In the guest: the e1000 model (docs/e1000.md) under Debian's own driver,
# an address from DHCP and a ping of the host.
sh /usr/share/pciefw/net-up.sh e1000
