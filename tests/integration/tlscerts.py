"""x509 credentials for the TLS tests, made with GnuTLS's certtool.

Directories follow QEMU's tls-creds-x509 layout (ca-cert.pem,
server-cert.pem/server-key.pem, client-cert.pem/client-key.pem), which is
also what pciefw-endpoint --tls-creds reads.
"""

import os
import shutil
import subprocess


def _certtool(*args):
    subprocess.run(["certtool", *args], check=True, capture_output=True)


def _template(path, lines):
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def _key(path):
    _certtool("--generate-privkey", "--key-type=ecdsa", "--outfile", path)


def make_ca(d, name):
    """A self-signed CA in @d: ca-cert.pem, ca-key.pem."""
    os.makedirs(d, exist_ok=True)
    _key(f"{d}/ca-key.pem")
    _template(f"{d}/ca.info", [f'cn = "{name}"', "ca", "cert_signing_key",
                               "expiration_days = 30"])
    _certtool("--generate-self-signed", "--load-privkey", f"{d}/ca-key.pem",
              "--template", f"{d}/ca.info", "--outfile", f"{d}/ca-cert.pem")


def issue(ca, d, role, expired=False):
    """A certificate for @role ("server" or "client") signed by the CA in
    @ca, written to @d as ROLE-cert.pem/ROLE-key.pem with the CA's
    certificate as ca-cert.pem.  The server's names are localhost and
    127.0.0.1; an expired one was valid for a day, a year ago."""
    os.makedirs(d, exist_ok=True)
    shutil.copy(f"{ca}/ca-cert.pem", f"{d}/ca-cert.pem")
    _key(f"{d}/{role}-key.pem")
    lines = [f'cn = "pciefw test {role}"', "signing_key", "encryption_key"]
    if role == "server":
        lines += ["tls_www_server", 'dns_name = "localhost"', 'ip_address = "127.0.0.1"']
    else:
        lines += ["tls_www_client"]
    if expired:
        lines += ['activation_date = "2025-01-01 00:00:00 UTC"',
                  'expiration_date = "2025-01-02 00:00:00 UTC"']
    else:
        lines += ["expiration_days = 30"]
    _template(f"{d}/{role}.info", lines)
    _certtool("--generate-certificate", "--load-privkey", f"{d}/{role}-key.pem",
              "--load-ca-certificate", f"{ca}/ca-cert.pem",
              "--load-ca-privkey", f"{ca}/ca-key.pem",
              "--template", f"{d}/{role}.info", "--outfile", f"{d}/{role}-cert.pem")
