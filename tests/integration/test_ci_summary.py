"""The suite's own honesty: .ci/run finds the README's test command or fails
saying so, and tests/summarize.py prints "N passed, N failed" only when it
has every group's results, with an exit status that agrees."""

import json
import os
import re
import shutil
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SUMMARIZE = os.path.join(REPO, "tests", "summarize.py")
LAST_LINE = re.compile(r"^\d+ passed, \d+ failed(, \d+ skipped)?$")


def _ci_run(tmp_path, quick_start):
    """.ci/run and ./dev in a scratch tree whose README has @quick_start."""
    os.makedirs(tmp_path / ".ci")
    shutil.copy(os.path.join(REPO, ".ci", "run"), tmp_path / ".ci" / "run")
    shutil.copy(os.path.join(REPO, "dev"), tmp_path / "dev")
    (tmp_path / "README.md").write_text(
        "# x\n\n## Quick start\n\n```sh\n" + quick_start + "```\n\n## More\n\n"
        "```sh\n./dev test --nonsense\n```\n")
    return subprocess.run(["bash", str(tmp_path / ".ci" / "run")],
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, timeout=60)


def test_ci_run_skips_comments_and_blank_lines(tmp_path):
    r = _ci_run(tmp_path, "# the demo:\n./dev demo\n\n# then the tests:\n"
                "./dev test --help   # all of them\n")
    assert r.returncode == 0, r.stdout
    assert ".ci/run: ./dev test --help" in r.stdout
    assert "--repeat N" in r.stdout                     # dev's usage ran


@pytest.mark.parametrize("block", ["./dev demo\n# ./dev test\n", "./dev demo\n",
                                   "./dev demo\nmake check\n", ""])
def test_ci_run_refuses_a_missing_test_command(tmp_path, block):
    r = _ci_run(tmp_path, block)
    assert r.returncode != 0, r.stdout
    assert r.stdout.startswith(".ci/run: ") and "test command" in r.stdout, r.stdout


def _meson_json(path, results):
    path.write_text("".join(json.dumps({"name": n, "result": r, "command": ["x"]})
                            + "\n" for n, r in results))


def _junit(path, cases):
    body = "".join(f'<testcase classname="t" name="{n}">'
                   + ('<failure message="x"/>' if failed else "") + "</testcase>"
                   for n, failed in cases)
    path.write_text(f'<testsuites><testsuite name="pytest">{body}</testsuite></testsuites>')


def _summarize(*args):
    r = subprocess.run(["/usr/bin/python3", SUMMARIZE] + [str(a) for a in args],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return r.returncode, r.stdout.strip().splitlines(), r.stderr


def _complete(d):
    _meson_json(d / "gcc.json", [("a", "OK"), ("b", "OK")])
    _meson_json(d / "asan.json", [("a", "OK")])
    _junit(d / "pytest.xml", [("t1", False), ("t2", False)])
    _junit(d / "pytest-asan.xml", [("t1", False)])


def test_summary_of_a_complete_run(tmp_path):
    _complete(tmp_path)
    rc, out, _ = _summarize(tmp_path)
    assert rc == 0 and out[-1] == "6 passed, 0 failed", out


def test_summary_counts_failures(tmp_path):
    _complete(tmp_path)
    _junit(tmp_path / "pytest.xml", [("t1", False), ("t2", True)])
    rc, out, _ = _summarize(tmp_path)
    assert rc == 1 and out[-1] == "5 passed, 1 failed", out
    assert "  FAILED: t::t2" in out


@pytest.mark.parametrize("gone", ["gcc.json", "asan.json", "pytest.xml",
                                  "pytest-asan.xml"])
def test_summary_refuses_a_missing_group(tmp_path, gone):
    _complete(tmp_path)
    os.unlink(tmp_path / gone)
    rc, out, err = _summarize(tmp_path)
    assert rc == 1
    assert not LAST_LINE.match(out[-1]), out
    assert gone in err and "missing" in err


def test_summary_refuses_a_group_that_ran_nothing(tmp_path):
    _complete(tmp_path)
    (tmp_path / "gcc.json").write_text("")
    rc, out, err = _summarize(tmp_path)
    assert rc == 1 and not LAST_LINE.match(out[-1]) and "no test ran" in err


def test_summary_agrees_with_a_failed_runner(tmp_path):
    _complete(tmp_path)
    rc, out, _ = _summarize("--runner-status", 1, tmp_path)
    assert rc == 1 and out[-1] == "6 passed, 1 failed", out


def test_summary_sums_repeated_runs(tmp_path):
    dirs = [tmp_path / f"run-{i}" for i in (1, 2, 3)]
    for d in dirs:
        d.mkdir()
        _complete(d)
    rc, out, _ = _summarize(*dirs)
    assert rc == 0 and out[-1] == "18 passed, 0 failed", out
