#!/usr/bin/python3
"""Print per-suite results and the final 'N passed, N failed' line.

Reads meson's test logs (*.json, one object per line; TAP subtests are
counted one by one) and pytest's JUnit XML (pytest.xml) from a directory.
"""
import json
import pathlib
import re
import sys
import xml.etree.ElementTree as ET


def meson_counts(path):
    passed = failed = skipped = 0
    failures = []
    for line in path.read_text().splitlines():
        t = json.loads(line)
        ok = t["result"] in ("OK", "EXPECTEDFAIL")
        subtests = re.findall(r"^(not ok|ok)\b(.*)$", t.get("stdout") or "", re.M)
        is_tap = "--tap" in (t.get("command") or [])
        if is_tap and subtests and ok:
            for verdict, rest in subtests:
                if "# SKIP" in rest:
                    skipped += 1
                elif verdict == "ok":
                    passed += 1
                else:
                    failed += 1
                    failures.append(f"{t['name']}{rest}")
        elif t["result"] == "SKIP":
            skipped += 1
        elif ok:
            passed += 1
        else:
            # A crashed TAP binary: count what passed, and the crash.
            passed += sum(1 for v, _ in subtests if v == "ok")
            failed += 1
            failures.append(f"{t['name']} ({t['result']})")
    return passed, failed, skipped, failures


def junit_counts(path):
    passed = failed = skipped = 0
    failures = []
    for case in ET.parse(path).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        if case.find("skipped") is not None:
            skipped += 1
        elif case.find("failure") is not None or case.find("error") is not None:
            failed += 1
            failures.append(name)
        else:
            passed += 1
    return passed, failed, skipped, failures


def main():
    logs = pathlib.Path(sys.argv[1])
    total = [0, 0, 0]
    all_failures = []
    for path in sorted(logs.iterdir()):
        if path.suffix == ".json":
            counts = meson_counts(path)
        elif path.suffix == ".xml":
            counts = junit_counts(path)
        else:
            continue
        p, f, s, failures = counts
        print(f"  {path.stem:8} {p:4} passed, {f} failed, {s} skipped")
        total = [total[0] + p, total[1] + f, total[2] + s]
        all_failures += failures
    for name in all_failures:
        print(f"  FAILED: {name}")
    if total[2]:
        print(f"{total[0]} passed, {total[1]} failed, {total[2]} skipped")
    else:
        print(f"{total[0]} passed, {total[1]} failed")
    return 1 if total[1] or not total[0] else 0


if __name__ == "__main__":
    sys.exit(main())
