#!/usr/bin/python3
"""Boot the guest of ./dev try (scripts/try.sh) with the device on
TMP/ep.sock: attached to the terminal when interactive, otherwise to
completion, printing its console as it comes and exiting with the script's
status.  QEMU's interrupt trace events (what became of each interrupt the
model raised) go to QEMU_LOG.  PCIEFW_TRY_APPEND: more kernel arguments;
PCIEFW_TRY_TIMEOUT: seconds the guest may run when not interactive.

usage: try_guest.py TMP QEMU_LOG INTERACTIVE(0|1) [HOST:GUEST...]
"""
import os
import sys

sys.path.insert(0, "tests/integration")
import guestlib  # noqa: E402

tmp, qemu_log, interactive = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
files = dict(f.split(":", 1) for f in sys.argv[4:])
initrd = guestlib.make_initramfs(tmp, open(os.path.join(tmp, "test.sh")).read(), files)
args = ["-device", "pcie-root-port,id=rp0,slot=1",
        "-device", "pciefw,bus=rp0,path=%s/ep.sock" % tmp,
        "-trace", "pciefw_msi", "-trace", "pciefw_msix", "-trace", "pciefw_intx",
        "-D", qemu_log]
append = os.environ.get("PCIEFW_TRY_APPEND", "")
timeout = int(os.environ.get("PCIEFW_TRY_TIMEOUT", "300"))
if interactive:
    cmd = guestlib.qemu_command(os.environ["PCIEFW_QEMU"], initrd, args,
                                append_extra=append)
    cmd[cmd.index("stdio")] = "mon:stdio"
    os.execv(cmd[0], cmd)
guest = guestlib.Guest(os.environ["PCIEFW_QEMU"], initrd, args, append_extra=append,
                       echo=sys.stdout)
try:
    guest.start()
    res = guest.wait(timeout)
finally:
    guest.stop()
if res.status is None:
    why = (f"not finished after {timeout} s (--timeout)" if res.timed_out else
           f"QEMU exited ({res.returncode}) before the guest's script ended")
    print(f"try: the guest did not finish: {why}", file=sys.stderr)
    if res.stderr.strip():
        print("--- QEMU said ---\n" + res.stderr.strip(), file=sys.stderr)
    sys.exit(1)
sys.exit(res.status)
