"""Where pciefw-endpoint listens (issue 28): a second endpoint on a UNIX
socket path where one answers does not take it over (exit 2, one line
naming the listener); a socket file nobody answers on is replaced; a file
that is no socket is never deleted."""

import os
import socket
import subprocess

import pfwire
from procs import stop_process


def start(endpoint_binary, path, *args):
    return subprocess.Popen([endpoint_binary, "--listen", f"unix:{path}",
                             "--device", "testdev", *args],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def refused(endpoint_binary, path):
    """An endpoint started on @path that must not start: its one line."""
    p = start(endpoint_binary, path)
    try:
        out, err = p.communicate(timeout=30)
    finally:
        stop_process(p)
    assert p.returncode == 2, (p.returncode, out, err)
    assert "listening on" not in out, out
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


def test_second_endpoint_on_a_live_path_is_refused(harness, endpoint_binary):
    first = harness.endpoint()
    path = first.address[len("unix:"):]
    host = pfwire.Conn(first.address)
    host.handshake()
    line = refused(endpoint_binary, path)
    assert f"cannot listen on unix:{path}: another process (pid {first.pid}) " \
        "is listening there; stop it or choose another path" in line, line
    # The first still serves its host, and new ones at its path.
    host.send(pfwire.message("mem_read", (1, 7), (2, 0), (3, 0), (4, 4)))
    assert host.until("completion")[-1][1][1] == 7
    host.close()
    again = pfwire.Conn(first.address)
    again.handshake()
    again.close()
    assert first.alive()


def test_stale_socket_file_is_replaced(harness, endpoint_binary):
    first = harness.endpoint()
    path = first.address[len("unix:"):]
    first.kill()                      # SIGKILL: the socket file stays
    assert os.path.exists(path)
    with socket.socket(socket.AF_UNIX) as s:
        assert s.connect_ex(path) != 0     # nobody answers there
    p = start(endpoint_binary, path)
    try:
        assert p.stdout.readline().strip() == f"listening on unix:{path}"
        c = pfwire.Conn(f"unix:{path}")
        c.handshake()
        c.close()
    finally:
        assert stop_process(p) == 0, p.stderr.read()


def test_a_file_that_is_no_socket_is_left_alone(tmp_path, endpoint_binary):
    path = tmp_path / "notes.txt"
    path.write_text("my notes\n")
    line = refused(endpoint_binary, str(path))
    assert f"cannot listen on unix:{path}: the file exists and is not a socket" \
        in line, line
    assert path.read_text() == "my notes\n"
