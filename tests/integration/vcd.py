"""A small reader of Value Change Dump files (IEEE 1364 section 18), as
Verilator and GHDL write them, so the tests need no GTKWave tools."""

import re
from bisect import bisect_left
from collections import defaultdict

_UNITS = {"s": 1e9, "ms": 1e6, "us": 1e3, "ns": 1.0, "ps": 1e-3, "fs": 1e-6}


class Vcd:
    def __init__(self, path):
        self.vars = {}                          # name -> [(depth, id, width)]
        self.changes = defaultdict(list)        # id -> [(time ns, value)]
        self.scale = 1.0                        # ns per VCD time unit
        self._parse(path)

    def _parse(self, path):
        with open(path, errors="replace") as f:
            text = f.read()
        head, sep, body = text.partition("$enddefinitions")
        if not sep:
            raise ValueError(f"{path}: no $enddefinitions: not a VCD file")
        m = re.search(r"\$timescale\s+(\d+)\s*(\w+)\s+\$end", head)
        if m:
            self.scale = int(m.group(1)) * _UNITS[m.group(2)]
        depth = 0
        for tok in re.finditer(r"\$(scope|upscope|var)\b(.*?)\$end", head, re.S):
            if tok.group(1) == "scope":
                depth += 1
            elif tok.group(1) == "upscope":
                depth -= 1
            else:
                parts = tok.group(2).split()
                width, code, name = int(parts[1]), parts[2], parts[3]
                self.vars.setdefault(name.split("[")[0], []).append((depth, code, width))
        now = 0.0
        for line in body.split("\n")[1:]:
            line = line.strip()
            if not line or line.startswith("$"):
                continue
            if line[0] == "#":
                now = int(line[1:]) * self.scale
            elif line[0] in "bBrR":
                value, code = line[1:].split()
                self.changes[code].append((now, value))
            else:
                self.changes[line[1:]].append((now, line[0]))

    def _code(self, name):
        """The signal @name nearest the top of the hierarchy."""
        if name not in self.vars:
            raise KeyError(f"no signal {name} in the waveform")
        return min(self.vars[name])[1]

    def before(self, name, t_ns):
        """The value of @name just before time @t_ns, as an int (None if it
        had any bit not 0 or 1 then)."""
        ch = self.changes[self._code(name)]
        i = bisect_left([c[0] for c in ch], t_ns) - 1
        if i < 0:
            return None
        v = ch[i][1].lower()
        if v in ("h",):
            v = "1"
        if v in ("l",):
            v = "0"
        return int(v, 2) if set(v) <= {"0", "1"} else None
