#!/usr/bin/python3
"""x509 credentials for pciefw over TLS (docs/protocol.md 1.5), made with
GnuTLS's certtool (package gnutls-bin): ./dev tls-certs, and the tests.

Directories follow QEMU's tls-creds-x509 layout (ca-cert.pem,
server-cert.pem/server-key.pem, client-cert.pem/client-key.pem), which is
also what pciefw-endpoint --tls-creds reads.

usage: ./dev tls-certs DIR [--name HOST]... [--days N]
"""

import ipaddress
import os
import shutil
import subprocess
import sys

SERVER_NAMES = ("localhost", "127.0.0.1")


def _certtool(*args):
    subprocess.run(["certtool", *args], check=True, capture_output=True)


def _template(path, lines):
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def _key(path):
    _certtool("--generate-privkey", "--key-type=ecdsa", "--outfile", path)
    os.chmod(path, 0o600)


def make_ca(d, name, days=30):
    """A self-signed CA in @d: ca-cert.pem, ca-key.pem."""
    os.makedirs(d, exist_ok=True)
    _key(f"{d}/ca-key.pem")
    _template(f"{d}/ca.info", [f'cn = "{name}"', "ca", "cert_signing_key",
                               f"expiration_days = {days}"])
    _certtool("--generate-self-signed", "--load-privkey", f"{d}/ca-key.pem",
              "--template", f"{d}/ca.info", "--outfile", f"{d}/ca-cert.pem")


def _name_lines(names):
    """certtool template lines for a server's DNS names and IP addresses."""
    lines = []
    for n in names:
        try:
            ipaddress.ip_address(n)
            lines.append(f'ip_address = "{n}"')
        except ValueError:
            lines.append(f'dns_name = "{n}"')
    return lines


def issue(ca, d, role, expired=False, names=SERVER_NAMES, days=30):
    """A certificate for @role ("server" or "client") signed by the CA in
    @ca, written to @d as ROLE-cert.pem/ROLE-key.pem with the CA's
    certificate as ca-cert.pem.  A server's certificate names @names (DNS
    names or IP addresses); an expired one was valid for a day, in 2025."""
    os.makedirs(d, exist_ok=True)
    shutil.copy(f"{ca}/ca-cert.pem", f"{d}/ca-cert.pem")
    _key(f"{d}/{role}-key.pem")
    lines = [f'cn = "pciefw {role}"', "signing_key", "encryption_key"]
    if role == "server":
        lines += ["tls_www_server", *_name_lines(names)]
    else:
        lines += ["tls_www_client"]
    if expired:
        lines += ['activation_date = "2025-01-01 00:00:00 UTC"',
                  'expiration_date = "2025-01-02 00:00:00 UTC"']
    else:
        lines += [f"expiration_days = {days}"]
    _template(f"{d}/{role}.info", lines)
    _certtool("--generate-certificate", "--load-privkey", f"{d}/{role}-key.pem",
              "--load-ca-certificate", f"{ca}/ca-cert.pem",
              "--load-ca-privkey", f"{ca}/ca-key.pem",
              "--template", f"{d}/{role}.info", "--outfile", f"{d}/{role}-cert.pem")
    os.unlink(f"{d}/{role}.info")


def main(argv):
    import cli  # scripts/cli.py, beside this file
    p = cli.Parser(
        prog="./dev tls-certs",
        description="Make a CA, a server certificate for pciefw-endpoint and a "
        "client certificate for QEMU, in QEMU's tls-creds-x509 layout: "
        "DIR/server/ for 'pciefw-endpoint --tls-creds DIR/server', DIR/client/ "
        "for QEMU's '-object tls-creds-x509,dir=DIR/client,endpoint=client', "
        "DIR/ca/ the CA (keep ca-key.pem private; it signs more).",
        epilog="QEMU checks that the server certificate names the host it "
        "connects to (raddr=, or tls-hostname=): give that name with --name.")
    p.add_argument("dir", metavar="DIR", help="where to make them (must not hold "
                   "certificates yet)")
    p.add_argument("--name", action="append", metavar="HOST",
                   help="a DNS name or IP address the server certificate is "
                   "valid for (repeatable; default: localhost and 127.0.0.1)")
    p.add_argument("--days", type=int, default=365,
                   help="validity of the certificates, in days (default 365)")
    a = p.parse_args(argv)
    if a.days < 1:
        p.error("--days takes a positive number")
    if not shutil.which("certtool"):
        sys.exit("./dev tls-certs: no certtool: install gnutls-bin (./dev setup does)")
    if os.path.isdir(a.dir) and os.listdir(a.dir):
        sys.exit(f"./dev tls-certs: {a.dir} is not empty: choose a new directory "
                 "(nothing is overwritten)")
    names = a.name or SERVER_NAMES
    make_ca(f"{a.dir}/ca", "pciefw CA", a.days)
    issue(f"{a.dir}/ca", f"{a.dir}/server", "server", names=names, days=a.days)
    issue(f"{a.dir}/ca", f"{a.dir}/client", "client", days=a.days)
    os.unlink(f"{a.dir}/ca/ca.info")
    print(f"""made in {a.dir}/, valid {a.days} days, the server's names: {", ".join(names)}
  endpoint: pciefw-endpoint --tls-creds {a.dir}/server ...
  QEMU:     -object tls-creds-x509,id=tls0,dir={a.dir}/client,endpoint=client
            -device pciefw,raddr=HOST,rport=PORT,tls-creds=tls0
  {a.dir}/ca/ca-key.pem signs more certificates: keep it private""")


if __name__ == "__main__":
    main(sys.argv[1:])
