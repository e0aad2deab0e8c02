"""README.md's command blocks run as written (issue 28), as the error
table drives the spec: every ```sh block carries a marker on the line
before it,

    <!-- readme-test: run -->      run it
    <!-- readme-test: guest -->    run it; it boots guests, which power off
                                   by themselves (pciefw.run=...) and must
                                   report "PCIEFW-GUEST: exit 0"
    <!-- readme-test: skip (why) --> not run here, and why

and the blocks marked run or guest run in README order, from the top of
the clone, under bash -e (a failing command fails the block).  Two things
are changed so that the run is private and parallel runs do not meet:
"/tmp/" becomes a directory of the test's own, and the TCP port 7420 a
free one.  Each block runs in a process group of its own, stopped with
whatever it left running.
"""

import os
import re
import signal
import socket
import subprocess
import tempfile

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
README = os.path.join(REPO, "README.md")
MARK = re.compile(r"^<!-- readme-test: (run|guest|skip \((.+)\)) -->$")
BLOCK_TIMEOUT = 600


def readme_blocks():
    """[(line number, marker, text)] of README's ```sh blocks."""
    lines = open(README).read().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        if lines[i].startswith("```"):
            start, info = i, lines[i][3:].strip()
            i += 1
            while not lines[i].startswith("```"):
                i += 1
            if info == "sh":
                prev = lines[start - 1] if start else ""
                m = MARK.match(prev)
                blocks.append((start + 1, m and m.group(1).split()[0],
                               "\n".join(lines[start + 1:i]) + "\n"))
        i += 1
    return blocks


def test_every_block_is_marked():
    blocks = readme_blocks()
    assert len(blocks) >= 10, blocks
    unmarked = [line for line, mark, _ in blocks if not mark]
    assert not unmarked, f"README.md blocks at lines {unmarked} have no readme-test marker"
    assert sum(mark == "guest" for _, mark, _ in blocks) >= 4


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def by_hand(qemu_binary, endpoint_binary):
    """What ./dev setup leaves for running by hand: build/qemu-system-x86_64
    (this run's QEMU) and build/guest/ (scripts/guest-image.sh)."""
    build = os.path.join(REPO, "build")
    assert os.access(os.path.join(build, "endpoint", "pciefw-endpoint"), os.X_OK)
    link = os.path.join(build, "qemu-system-x86_64")
    if os.path.realpath(link) != os.path.realpath(qemu_binary):
        tmp = link + ".new"
        if os.path.lexists(tmp):
            os.unlink(tmp)
        os.symlink(qemu_binary, tmp)
        os.replace(tmp, link)
    env = dict(os.environ, PATH="/usr/bin:" + os.environ.get("PATH", ""))
    r = subprocess.run([os.path.join(REPO, "scripts", "guest-image.sh")], cwd=REPO,
                       env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:]
    workdir = tempfile.mkdtemp(prefix="pfr-", dir="/tmp")
    try:
        yield workdir
    finally:
        subprocess.run(["rm", "-rf", workdir])


def run_block(text, workdir, port):
    script = text.replace("/tmp/", workdir + "/").replace("7420", str(port))
    env = dict(os.environ, PATH="/usr/bin:" + os.environ.get("PATH", ""))
    # Output to a file, not a pipe: a process the block left behind holding
    # the pipe would keep a failed block waiting for its timeout.
    log = tempfile.TemporaryFile()
    p = subprocess.Popen(["bash", "-e", "-o", "pipefail", "-c", script], cwd=REPO,
                         env=env, stdin=subprocess.DEVNULL, stdout=log,
                         stderr=subprocess.STDOUT, start_new_session=True)
    timed_out = False
    try:
        p.wait(timeout=BLOCK_TIMEOUT)
    except subprocess.TimeoutExpired:
        timed_out = True
    finally:
        # Whatever the block left in its process group (ours: its pgid is
        # the pid of the bash we started).
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.killpg(p.pid, sig)
            except ProcessLookupError:
                break
        p.wait()
    log.seek(0)
    out = log.read().decode(errors="replace")
    log.close()
    return p.returncode, out + ("\n(timed out)" if timed_out else "")


def test_readme_blocks_run_as_written(by_hand):
    port = free_port()
    for line, mark, text in readme_blocks():
        if mark not in ("run", "guest"):
            continue
        rc, out = run_block(text, by_hand, port)
        where = f"README.md block at line {line}"
        assert rc == 0, f"{where} failed ({rc}):\n{out[-6000:]}"
        if mark == "guest":
            boots = len(re.findall(r"^build/qemu-system-x86_64 ", text, re.M))
            exits = re.findall(r"PCIEFW-GUEST: exit (\d+)", out)
            assert boots and exits == ["0"] * boots, f"{where}:\n{out[-6000:]}"
