#!/usr/bin/python3
"""Print per-suite results and the final 'N passed, N failed' line.

Reads meson's test logs (gcc.json, asan.json: one object per line; TAP
subtests are counted one by one) and pytest's JUnit XML (pytest.xml) from
each result directory.  Every expected group must be there with at least
one test, or there is no "N passed, N failed" line and the exit status is 1.
"""
import argparse
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


RESULT_FILES = {"gcc": "gcc.json", "asan": "asan.json", "pytest": "pytest.xml",
                "pytest-asan": "pytest-asan.xml"}


def group_counts(path):
    if path.suffix == ".json":
        return meson_counts(path)
    return junit_counts(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--expect", default="gcc asan pytest pytest-asan",
                    help="result groups every directory must hold")
    ap.add_argument("--runner-status", type=int, default=0,
                    help="non-zero if a test runner reported failure")
    ap.add_argument("dirs", nargs="+", type=pathlib.Path,
                    help="result directories (one per run)")
    args = ap.parse_args()
    expected = args.expect.split()
    unknown = [g for g in expected if g not in RESULT_FILES]
    if unknown:
        ap.error(f"unknown result group(s): {' '.join(unknown)}")

    total = [0, 0, 0]
    all_failures, problems = [], []
    for d in args.dirs:
        if len(args.dirs) > 1:
            print(f"{d}:")
        for group in expected:
            path = d / RESULT_FILES[group]
            if not path.is_file():
                problems.append(f"{path}: missing (the {group} tests did not "
                                "run or wrote no results)")
                continue
            try:
                p, f, s, failures = group_counts(path)
            except (ValueError, KeyError, ET.ParseError) as e:
                problems.append(f"{path}: unreadable ({e})")
                continue
            if p + f + s == 0:
                problems.append(f"{path}: no test ran in group {group}")
            print(f"  {group:11} {p:4} passed, {f} failed, {s} skipped")
            total = [total[0] + p, total[1] + f, total[2] + s]
            all_failures += [f"{d.name}: {n}" if len(args.dirs) > 1 else n
                             for n in failures]
    for name in all_failures:
        print(f"  FAILED: {name}")
    if problems:
        for p in problems:
            print(f"summarize: {p}", file=sys.stderr)
        # No "N passed, N failed" line: the counts are not the whole suite.
        print(f"summarize: incomplete results ({len(problems)} problem(s)); "
              "the suite failed")
        return 1
    if args.runner_status and not total[1]:
        # A runner failed without a failing test to show for it (a crash
        # before results, a collection error): count it, so the last line
        # and the exit status agree.
        all_failures.append("a test runner exited non-zero")
        print("  FAILED: a test runner exited non-zero with no failing test")
        total[1] += 1
    if total[2]:
        print(f"{total[0]} passed, {total[1]} failed, {total[2]} skipped")
    else:
        print(f"{total[0]} passed, {total[1]} failed")
    return 1 if total[1] or not total[0] else 0


if __name__ == "__main__":
    sys.exit(main())
