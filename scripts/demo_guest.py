#!/usr/bin/python3
"""Boot the demo guest (scripts/demo.sh): attached to the terminal when
there is one, otherwise to completion, printing its console."""
import os, sys
sys.path.insert(0, "tests/integration")
import guestlib
tmp, ko, interactive = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
# udhcpc's event script (the lease applied) is the image's own.
files = {ko: "/lib/modules/extra/pciefw_nic.ko"}
if interactive:
    files[os.path.join(tmp, "interactive")] = "/demo-interactive"
initrd = guestlib.make_initramfs(tmp, open(os.path.join(tmp, "test.sh")).read(), files)
args = ["-device", "pcie-root-port,id=rp0,slot=1",
        "-device", "pciefw,bus=rp0,path=%s/nic.sock" % tmp]
if interactive:
    cmd = guestlib.qemu_command(os.environ["PCIEFW_QEMU"], initrd, args, memory=512)
    cmd[cmd.index("stdio")] = "mon:stdio"
    os.execv(cmd[0], cmd)
res = guestlib.boot_guest(os.environ["PCIEFW_QEMU"], initrd, args, timeout=180)
print(res.console)
sys.exit(0 if res.status == 0 else 1)
