"""Every program's command line as a newcomer types it (issue 28):
--version, an unknown option answered with one line and where the help is,
and out-of-range values that say the range."""

import os
import subprocess

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOLS = ("endpoint/pciefw-endpoint", "tools/pciefw-trace", "tools/pciefw-replay",
         "bench/pciefw-bench")


def build_dir(endpoint_binary):
    return os.path.dirname(os.path.dirname(endpoint_binary))


def run(args, **kw):
    return subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=60, **kw)


@pytest.mark.parametrize("tool", TOOLS)
def test_version(endpoint_binary, tool):
    r = run([os.path.join(build_dir(endpoint_binary), tool), "--version"])
    name = os.path.basename(tool)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(f"{name} 0.") and "(protocol 1." in r.stdout, r.stdout


@pytest.mark.parametrize("tool", TOOLS)
def test_unknown_option_is_one_line_and_where_help_is(endpoint_binary, tool):
    path = os.path.join(build_dir(endpoint_binary), tool)
    name = os.path.basename(tool)
    r = run([path, "--frobnicate"])
    assert r.returncode == 2 and not r.stdout, (r.stdout, r.stderr)
    assert r.stderr.splitlines() == [f"{path}: unrecognized option '--frobnicate'",
                                     f"Try '{name} --help'."], r.stderr


def test_trace_without_a_file(endpoint_binary):
    r = run([os.path.join(build_dir(endpoint_binary), "tools/pciefw-trace")])
    assert r.returncode == 2
    assert r.stderr.splitlines() == ["pciefw-trace: no trace FILE given",
                                     "Try 'pciefw-trace --help'."], r.stderr


@pytest.mark.parametrize("value", ["5", "2000000", "lots"])
def test_max_payload_says_the_range(endpoint_binary, value):
    r = run([endpoint_binary, "--device", "testdev", "--listen", "tcp:127.0.0.1:0",
             f"--max-payload={value}"])
    assert r.returncode == 2
    assert r.stderr.splitlines()[0] == \
        f"pciefw-endpoint: invalid --max-payload '{value}' (bytes, 8 to 1048576)", r.stderr


@pytest.mark.parametrize("command", [["tls-certs", "/nonexistent/dir", "--frobnicate"]])
def test_dev_python_commands_unknown_option(command):
    """The Python commands behind ./dev answer as the C tools do
    (scripts/cli.py; ./dev epf-pair's parser is the same)."""
    r = run([os.path.join(REPO, "dev"), *command])
    assert r.returncode == 2
    assert r.stderr.splitlines()[-2:] == [
        f"./dev {command[0]}: unrecognized arguments: --frobnicate",
        f"Try './dev {command[0]} --help'."], r.stderr


@pytest.mark.parametrize("command", [["test", "--frobnicate"], ["try", "--frobnicate"]])
def test_dev_unknown_option(command):
    r = run([os.path.join(REPO, "dev"), *command])
    assert r.returncode == 2
    # (./dev try builds first: a MODEL it checks may be new.)
    assert r.stderr.splitlines()[-1:] == [
        f"dev {command[0]}: unknown option '--frobnicate' (try ./dev {command[0]} "
        "--help)"], r.stderr
