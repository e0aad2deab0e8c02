"""A host that connects and never sends its Hello does not keep the device
(docs/protocol.md 2.1): on every transport -- a UNIX socket (where the
endpoint offers guest memory and the rings), TCP, and TLS after a
completed handshake -- the endpoint closes it at the hello deadline,
telling it why where a session can carry the words, and serves the next
host.  The tests shorten the deadline with --hello-timeout; the default
(10 s) is in the spec."""

import socket
import ssl
import time

import pytest

import pfwire
import tlscerts

HELLO_TIMEOUT = 1.5


@pytest.fixture(scope="module")
def creds(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    tlscerts.make_ca(d / "ca", "pciefw test CA")
    tlscerts.issue(d / "ca", d / "ep", "server")
    return {"ep": str(d / "ep"), "ca": str(d / "ca" / "ca-cert.pem")}


def _connect(ep, transport, creds):
    """A raw connection that says nothing; TLS completes its handshake."""
    if transport == "unix":
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(ep.address[len("unix:"):])
        return s
    host, port = ep.address[len("tcp:"):].rsplit(":", 1)
    s = socket.create_connection((host, int(port)))
    if transport == "tls":
        ctx = ssl.create_default_context(cafile=creds["ca"])
        ctx.check_hostname = False
        s = ctx.wrap_socket(s, server_hostname="localhost")
    return s


def _read_until_closed(s, timeout):
    s.settimeout(timeout)
    data = b""
    while True:
        try:
            chunk = s.recv(65536)
        except (ssl.SSLError, ConnectionResetError) as e:
            raise AssertionError(f"the endpoint reset the connection: {e}")
        if not chunk:
            return data
        data += chunk


@pytest.mark.parametrize("transport", ["unix", "tcp", "tls"])
def test_silent_host_is_closed_at_the_hello_deadline(harness, creds, transport):
    args = ["--hello-timeout", str(HELLO_TIMEOUT)]
    listen = None
    if transport != "unix":
        listen = "tcp:127.0.0.1:0"
    if transport == "tls":
        args += ["--tls-creds", creds["ep"]]
    ep = harness.endpoint(listen=listen, args=args)
    silent = _connect(ep, transport, creds)
    t0 = time.monotonic()
    got = _read_until_closed(silent, 60)
    took = time.monotonic() - t0
    silent.close()
    kinds = [pfwire.decode(f) for f in pfwire.split_frames(got)[0]]
    # Our Hello, then why (spec 2.1, 7.1), then a clean end of stream.
    assert [k for k, _ in kinds] == ["hello", "error"], kinds
    assert pfwire.ERROR_CODES[kinds[-1][1].get(1, 0)] == "ERROR_PROTOCOL"
    assert b"no hello from the host" in kinds[-1][1][2]
    assert took >= HELLO_TIMEOUT * 0.9, took
    ep.wait_log("no hello from the host within")
    # The device is free: the next host is served, not told it is busy.
    s = _connect(ep, transport, creds)
    s.sendall(pfwire.hello())
    s.settimeout(30)
    buf, kinds = b"", []
    while "device_description" not in kinds:
        chunk = s.recv(65536)
        assert chunk, f"closed after {kinds}"
        frames, buf = pfwire.split_frames(buf + chunk)
        kinds += [pfwire.decode(f)[0] for f in frames]
    assert kinds == ["hello", "device_description"], kinds
    s.close()
