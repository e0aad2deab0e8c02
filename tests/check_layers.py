#!/usr/bin/python3
"""The endpoint's layering, checked from what its object files link to.

  check_layers.py ARCHIVE_OR_OBJECT...

Each object of the endpoint has a floor (LEVELS, lowest first); the
protocol library (libpciefw) is the ground floor.  An object may call what
is defined on its own floor or below, never above: so there is no
call-graph circle between floors, and in particular the connection
(conn.c) and the queue of held requests (defer.c) know nothing of the
device framework (device.c), which knows nothing of the listeners
(server.c).  What an object calls is read with nm: its undefined symbols,
resolved to the objects of the archives given that define them.

An object on no floor fails the check (say where a new file belongs), as
does a call upwards: `conn.c.o calls pf_dev_log (device.c.o, floor
"framework") from floor "connection"`.  Exit status 0: layered.
"""

import os
import subprocess
import sys

# Floors, lowest first; names are source paths with / as _ (meson's).
LEVELS = [
    ("leaves", ["log", "model_registry", "stream", "stream_socket",
                "stream_ring", "tls", "defer", "net_checksum", "net_pcap",
                "device_spec",
                # hdl/runtime's half of the RTL link, built into the endpoint
                ".._hdl_runtime_rtl_link"]),
    ("connection", ["conn", "busy"]),
    ("framework helpers", ["access"]),
    ("framework", ["device"]),
    ("model services", ["options", "net_backend", "net_slirp", "net_socket",
                        "net_tap"]),
    ("models", ["models_*"]),
    ("listeners", ["server"]),
]
GROUND = "protocol"


def floor_of(obj, protocol_objects):
    """(index, name) of @obj's floor; None if it has none."""
    if obj in protocol_objects:
        return (0, GROUND)
    stem = obj[:-len(".c.o")] if obj.endswith(".c.o") else obj
    for i, (name, members) in enumerate(LEVELS, start=1):
        for m in members:
            if stem == m or (m.endswith("*") and stem.startswith(m[:-1])):
                return (i, name)
    return None


def symbols(path):
    """{object: (defined, undefined)} for an archive or an object file."""
    out = subprocess.run(["nm", "-A", path], check=True, capture_output=True,
                         text=True).stdout
    table = {}
    archive = path.endswith(".a")
    for line in out.splitlines():
        # "ARCHIVE:MEMBER:VALUE TYPE NAME", or "OBJECT:VALUE TYPE NAME"
        fields = line.split(":", 2 if archive else 1)
        if len(fields) < (3 if archive else 2):
            continue
        obj = os.path.basename(fields[-2])
        parts = fields[-1].split()
        defined, undefined = table.setdefault(obj, (set(), set()))
        if len(parts) == 2 and parts[0] == "U":
            undefined.add(parts[1])
        elif len(parts) == 3 and parts[1] in "TDBRCGS":
            defined.add(parts[2])
    return table


def main(paths):
    objects, protocol_objects = {}, set()
    for path in paths:
        table = symbols(path)
        if os.path.basename(path).startswith("libpciefw."):
            protocol_objects |= set(table)
        objects.update(table)
    definer = {}
    for obj, (defined, _) in objects.items():
        for sym in defined:
            definer.setdefault(sym, obj)
    problems = []
    for obj in sorted(objects):
        if floor_of(obj, protocol_objects) is None:
            problems.append(f"{obj} is on no floor: add it to LEVELS in "
                            f"{os.path.basename(__file__)}")
    for obj in sorted(objects):
        mine = floor_of(obj, protocol_objects)
        for sym in sorted(objects[obj][1]):
            other = definer.get(sym)
            theirs = other and floor_of(other, protocol_objects)
            if mine and theirs and theirs[0] > mine[0]:
                problems.append(f'{obj} calls {sym} ({other}, floor '
                                f'"{theirs[1]}") from floor "{mine[1]}"')
    for p in problems:
        print(p)
    print(f"{len(objects)} objects, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit("usage: check_layers.py ARCHIVE_OR_OBJECT...")
    sys.exit(main(sys.argv[1:]))
