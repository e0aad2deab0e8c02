"""TLS between QEMU's device and a TCP endpoint (docs/protocol.md 1.5).

The real QEMU, with a tls-creds-x509 object named by the device's
tls-creds property, against the real endpoint started with --tls-creds;
certificates made by certtool for each run.  A session carries config,
MMIO and DMA; a wrong CA, an expired certificate, a client certificate the
endpoint does not trust and a plain-text peer are each refused with one
line that says why.
"""

import os
import re
import socket
import subprocess

import pytest

import tlscerts  # scripts/tlscerts.py (./dev tls-certs), on the path by conftest
from test_qemu_device import (RAM_A, RAM_B, TOPOLOGIES, DeviceUnderTest, _lines,
                              wait_for)
from testdev_map import ID, REG_ID, REG_RESET_COUNT, REG_SCRATCH, ST_DONE, ST_ERROR

TOPO = TOPOLOGIES["q35-rootport"]


@pytest.fixture(scope="module")
def creds(tmp_path_factory):
    """Credential directories, by name:
    ep        the endpoint's: server cert from CA, and the CA
    qemu      QEMU's: client cert from CA, and the CA
    stranger  QEMU's, from another CA (trusts it, not ours)
    nocert    QEMU's, our CA and no client certificate
    expired   the endpoint's, with a server cert that expired in 2025
    """
    d = tmp_path_factory.mktemp("tls")
    tlscerts.make_ca(d / "ca", "pciefw test CA")
    tlscerts.make_ca(d / "other-ca", "another CA")
    tlscerts.issue(d / "ca", d / "ep", "server")
    tlscerts.issue(d / "ca", d / "qemu", "client")
    tlscerts.issue(d / "other-ca", d / "stranger", "client")
    tlscerts.issue(d / "ca", d / "expired", "server", expired=True)
    (d / "nocert").mkdir()
    (d / "nocert" / "ca-cert.pem").write_bytes((d / "ca" / "ca-cert.pem").read_bytes())
    return {name: str(d / name)
            for name in ("ep", "qemu", "stranger", "nocert", "expired")}


def tls_endpoint(harness, creds, *args, name="endpoint"):
    return harness.endpoint(name=name, listen="tcp:127.0.0.1:0",
                            args=["--tls-creds", creds["ep"], *args])


def qemu_args(ep, creds_dir=None):
    """QEMU's arguments for the device on @ep's TCP port, over TLS with
    @creds_dir (None: plain text)."""
    port = int(ep.address.rsplit(":", 1)[1])
    dev = f"pciefw,id=fw0,raddr=127.0.0.1,rport={port},bus={TOPO['bus']}"
    args = TOPO["machine"] + TOPO["extra"]
    if creds_dir:
        args += ["-object", f"tls-creds-x509,id=tls0,dir={creds_dir},endpoint=client"]
        dev += ",tls-creds=tls0"
    return args + ["-device", dev]


def refused(harness, args):
    """QEMU fails to start; its one line of error output."""
    rc, out = harness.run_qemu(args)
    assert rc != 0, out
    lines = _lines(out)
    assert len(lines) == 1, out
    return lines[0]


def test_tls_session_carries_config_mmio_and_dma(harness, creds):
    """Client certificates verified (--tls-verify-peer), then a session:
    the identity, a register written and read back, and a 1 MiB DMA copy
    (many TLS records each way, input held in the session's buffers)."""
    ep = tls_endpoint(harness, creds, "--tls-verify-peer")
    q = harness.qemu(qemu_args(ep, creds["qemu"]))
    d = DeviceUnderTest(q, TOPO)
    assert d.reg(REG_ID) == ID
    d.set_reg(REG_SCRATCH, 0xC0FFEE11)
    assert d.reg(REG_SCRATCH) == 0xC0FFEE11
    size = 1 << 20
    pattern = (bytes(range(251)) * (size // 251 + 1))[:size]
    d.qt.b64write(RAM_A, pattern)
    st = d.dma(RAM_A, RAM_B, size)
    assert st & ST_DONE and not st & ST_ERROR, hex(st)
    assert d.qt.b64read(RAM_B, size) == pattern
    log = ep.output()
    assert "connection 1: accepted on tcp (TLS)" in log, log
    assert "connection 1: TLS session established" in log, log
    assert q.alive()


def test_qemu_refuses_an_endpoint_certificate_from_another_ca(harness, creds):
    ep = tls_endpoint(harness, creds)
    line = refused(harness, qemu_args(ep, creds["stranger"]))
    assert re.search(r"pciefw endpoint at tcp:127\.0\.0\.1:\d+: TLS: the "
                     r"endpoint's certificate is refused: The certificate "
                     r"hasn't got a known issuer$", line), line


def test_endpoint_refuses_an_expired_certificate_at_start(harness, creds):
    with pytest.raises(RuntimeError) as e:
        harness.endpoint(name="expired", listen="tcp:127.0.0.1:0",
                         args=["--tls-creds", creds["expired"]])
    lines = [l for l in str(e.value).splitlines() if "pciefw-endpoint: " in l]
    assert len(lines) == 1, str(e.value)
    assert re.search(r"--tls-creds: .*/expired/server-cert.pem expired on "
                     r"2025-01-02", lines[0]), lines[0]


@pytest.mark.parametrize("client, why", [
    ("stranger", r"the host's certificate is not trusted: .*issuer"),
    ("nocert", r"the host sent no certificate \(--tls-verify-peer requires one\)"),
])
def test_endpoint_refuses_an_untrusted_client(harness, creds, client, why):
    """With --tls-verify-peer: a client certificate from another CA, or
    none.  QEMU does not check the endpoint here (verify-peer=off), so the
    endpoint's refusal is what stops it, and QEMU reads why."""
    ep = tls_endpoint(harness, creds, "--tls-verify-peer")
    args = qemu_args(ep, creds[client])
    args[args.index("-object") + 1] += ",verify-peer=off"
    line = refused(harness, args)
    assert re.search(r"endpoint reported an error \(ERROR_PROTOCOL: " + why, line), line
    out = ep.wait_log("refused:")
    refusals = [l for l in out.splitlines() if "refused" in l]
    assert len(refusals) == 1, out
    assert re.search(r"connection 1: closed: refused: " + why, refusals[0]), out


def test_plain_text_qemu_against_a_tls_endpoint(harness, creds):
    ep = tls_endpoint(harness, creds)
    line = refused(harness, qemu_args(ep))
    assert re.search(r"endpoint reported an error \(ERROR_PROTOCOL: the host does "
                     r"not speak TLS .*give QEMU's device tls-creds=\)\)$", line), line
    out = ep.wait_log("refused:")
    assert re.search(r"connection 1: closed: refused: the host does not speak TLS",
                     out), out


def test_tls_qemu_against_a_plain_text_endpoint(harness, creds):
    ep = harness.endpoint(listen="tcp:127.0.0.1:0")
    line = refused(harness, qemu_args(ep, creds["qemu"]))
    assert "TLS handshake failed (is the endpoint started with --tls-creds?)" \
        in line, line
    out = ep.wait_log("closed:")
    assert re.search(r"the host speaks TLS: start the endpoint with --tls-creds",
                     out), out


def test_tls_creds_only_for_tcp(harness, creds, tmp_path):
    line = refused(harness, ["-M", "q35", "-object",
                             f"tls-creds-x509,id=tls0,dir={creds['qemu']},endpoint=client",
                             "-device", f"pciefw,path={tmp_path}/x.sock,tls-creds=tls0"])
    assert "tls-creds is for TCP" in line, line
    line = refused(harness, ["-M", "q35", "-device",
                             "pciefw,raddr=127.0.0.1,rport=1,tls-creds=nosuch"])
    assert "no TLS credentials object 'nosuch'" in line, line


def test_warning_once_when_listening_beyond_loopback_without_tls(harness, creds):
    """Two non-loopback listeners without TLS: one warning.  With TLS, or on
    loopback only, none."""
    ep = harness.endpoint(name="open", listen="tcp:0.0.0.0:0",
                          args=["--listen", "tcp:[::]:0"])
    ep.wait_log("serving device")
    warnings = [l for l in ep.output().splitlines() if "without TLS" in l]
    assert len(warnings) == 1, ep.output()
    assert re.search(r"warn: listening on tcp:0\.0\.0\.0:\d+ without TLS: anyone "
                     r"who can reach it drives the device", warnings[0]), warnings
    for name, listen, args in (("lo", "tcp:127.0.0.1:0", []),
                               ("tls", "tcp:0.0.0.0:0", ["--tls-creds", creds["ep"]])):
        ep = harness.endpoint(name=name, listen=listen, args=args)
        assert "without TLS" not in ep.wait_log("serving device"), ep.output()


def test_tls_reconnect_to_a_returning_endpoint(harness, creds):
    """The background reconnection (fd handlers, not realize's wait) runs
    the handshake too: the endpoint killed, a new one on the same port,
    and the device is back with a fresh, reset function."""
    ep = tls_endpoint(harness, creds)
    args = qemu_args(ep, creds["qemu"])
    args[-1] += ",reconnect=1"
    q = harness.qemu(args)
    d = DeviceUnderTest(q, TOPO)
    d.set_reg(REG_SCRATCH, 0x1234)
    ep.kill()
    assert d.reg(REG_ID) == 0xFFFFFFFF
    ep2 = harness.endpoint(name="endpoint2", listen=ep.address,
                           args=["--tls-creds", creds["ep"]])
    wait_for(lambda: d.reg(REG_ID) == ID, timeout=30, what="reconnect")
    assert d.reg(REG_RESET_COUNT) == 1
    assert d.reg(REG_SCRATCH) == 0
    assert "TLS session established" in ep2.output(), ep2.output()
    assert "reconnected" in q.output(), q.output()


def test_second_tls_host_is_told_the_device_is_busy(harness, creds):
    """One host per device (spec 2.4) holds over TLS too: the second QEMU
    reads ERROR_BUSY inside its session, and the first is still served."""
    ep = tls_endpoint(harness, creds)
    q = harness.qemu(qemu_args(ep, creds["qemu"]))
    d = DeviceUnderTest(q, TOPO)
    line = refused(harness, qemu_args(ep, creds["qemu"]))
    assert re.search(r"endpoint reported an error \(ERROR_BUSY: device testdev is "
                     r"busy: it already serves a host \(connection 1\)\)$", line), line
    assert "refused a second host" in ep.output(), ep.output()
    assert d.reg(REG_ID) == ID


def test_second_plain_text_host_is_told_busy_in_plain_text(harness, creds):
    """A second host that does not speak TLS, while a TLS host is served:
    it reads Error{ERROR_BUSY} in plain text (spec 1.5, 2.4), not a TLS
    record it cannot read nor a bare close, and the first is still
    served."""
    ep = tls_endpoint(harness, creds)
    q = harness.qemu(qemu_args(ep, creds["qemu"]))
    d = DeviceUnderTest(q, TOPO)
    line = refused(harness, qemu_args(ep))
    assert re.search(r"endpoint reported an error \(ERROR_BUSY: device testdev is "
                     r"busy: it already serves a host \(connection 1\)\)$", line), line
    assert "refused a second host" in ep.output(), ep.output()
    assert d.reg(REG_ID) == ID


def test_silent_host_does_not_keep_a_tls_endpoint(harness, creds):
    """A host that connects and never starts its TLS handshake is dropped
    after the deadline (spec 1.5); the device then serves the next host."""
    ep = tls_endpoint(harness, creds)
    port = int(ep.address.rsplit(":", 1)[1])
    silent = socket.create_connection(("127.0.0.1", port))
    try:
        ep.wait_log("connection 1: closed: no TLS handshake from the host "
                    "within 10 s", timeout=60)
    finally:
        silent.close()
    q = harness.qemu(qemu_args(ep, creds["qemu"]))
    assert DeviceUnderTest(q, TOPO).reg(REG_ID) == ID


REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_dev_tls_certs_make_credentials_both_sides_take(harness, tmp_path):
    """./dev tls-certs DIR: a CA, DIR/server for the endpoint, DIR/client
    for QEMU; a session runs on them, QEMU checking the endpoint's name.
    A second run on the same DIR overwrites nothing."""
    d = tmp_path / "tls"
    r = subprocess.run([os.path.join(REPO, "dev"), "tls-certs", str(d), "--name",
                        "localhost", "--name", "127.0.0.1"], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=120)
    assert r.returncode == 0, r.stdout
    for f in ("ca/ca-cert.pem", "ca/ca-key.pem", "server/ca-cert.pem",
              "server/server-cert.pem", "server/server-key.pem", "client/ca-cert.pem",
              "client/client-cert.pem", "client/client-key.pem"):
        assert (d / f).is_file(), f
    assert (d / "server" / "server-key.pem").stat().st_mode & 0o077 == 0
    ep = harness.endpoint(listen="tcp:127.0.0.1:0",
                          args=["--tls-creds", str(d / "server"), "--tls-verify-peer"])
    q = harness.qemu(qemu_args(ep, str(d / "client")))
    assert DeviceUnderTest(q, TOPO).reg(REG_ID) == ID
    assert "connection 1: TLS session established" in ep.output(), ep.output()
    before = (d / "ca" / "ca-key.pem").read_bytes()
    r = subprocess.run([os.path.join(REPO, "dev"), "tls-certs", str(d)],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=60)
    assert r.returncode != 0 and "is not empty" in r.stdout, r.stdout
    assert (d / "ca" / "ca-key.pem").read_bytes() == before


def test_tls_creds_with_only_unix_listeners_is_refused(harness, creds):
    """UNIX sockets never use TLS (1.5): --tls-creds there would be
    ignored, so the endpoint refuses to start and says why."""
    with pytest.raises(RuntimeError) as e:
        harness.endpoint(name="unixtls", args=["--tls-creds", creds["ep"]])
    assert "--tls-creds is for TCP listeners, and every --listen here is a UNIX " \
        "socket, which never uses TLS" in str(e.value), str(e.value)


@pytest.mark.parametrize("reconnect", ["", ",reconnect=1"])
def test_endpoint_says_why_a_host_left_after_the_handshake(harness, creds, reconnect):
    """QEMU refuses the endpoint's certificate (it names another host) and
    drops the connection, with a reset when it would reconnect: the
    endpoint's log points at its certificate, not 'Protocol error'."""
    ep = tls_endpoint(harness, creds)
    args = qemu_args(ep, creds["qemu"])
    args[-1] += ",tls-hostname=wrong.example.org" + reconnect
    line = refused(harness, args)
    assert "Certificate does not match the hostname wrong.example.org" in line, line
    out = ep.wait_log("connection 1: closed:")
    assert "connection 1: closed: host disconnected right after the TLS handshake " \
        "(did it refuse our certificate? its log says why)" in out, out
    assert "Protocol error" not in out, out
