"""Test certificates made with the openssl command line (OpenSSL 3.0).

CertSet(dir) creates, with EC P-256 keys:
  ca          the test CA ("pftest CA"); give ca.cert as tls_ca_file
  server      signed by ca, for DNS:localhost and IP:127.0.0.1
  server2     another key and cert like server (same CA, same names):
              its chain verifies but its fingerprint differs
  selfsigned  self-signed, for localhost/127.0.0.1 (untrusted)
  wronghost   signed by ca, only for DNS:wrong.example
  expired     signed by ca, for localhost/127.0.0.1, valid two years ago
              to one year ago
  notyetvalid signed by ca, for localhost/127.0.0.1, valid from next year

Each is a Cert with .cert and .key (paths), .der, .fingerprint
("sha256:AA:BB:..", the form `openssl x509 -fingerprint -sha256` prints)
and .fingerprint_hex (lower case, no colons).

OpenSSL 3.0's `x509` has no -not_before (added in 3.4), so the dates come
from `openssl ca -startdate/-enddate`, which 3.0 supports; no faketime.
"""

import datetime
import hashlib
import os
import ssl
import subprocess

_REQ_CNF = """\
[req]
distinguished_name = dn
prompt = no
[dn]
CN = placeholder
"""

_CA_CNF = """\
[ca]
default_ca = pftest_ca
[pftest_ca]
dir = {dir}
database = {dir}/index.txt
serial = {dir}/serial
new_certs_dir = {dir}/newcerts
certificate = {dir}/ca.pem
private_key = {dir}/ca.key
default_md = sha256
policy = policy_any
unique_subject = no
copy_extensions = none
email_in_dn = no
[policy_any]
commonName = supplied
[leaf]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = @san
[san]
{san}
"""


def fingerprint_of_der(der):
    """'sha256:AA:BB:...' for DER bytes."""
    h = hashlib.sha256(der).hexdigest().upper()
    return "sha256:" + ":".join(h[i:i + 2] for i in range(0, len(h), 2))


def fingerprint(cert_path):
    """'sha256:AA:BB:...' of the first certificate in a PEM file."""
    with open(cert_path) as f:
        return fingerprint_of_der(ssl.PEM_cert_to_DER_cert(f.read()))


class Cert:
    def __init__(self, name, cert, key):
        self.name = name
        self.cert = cert
        self.key = key
        with open(cert) as f:
            self.pem = f.read()
        self.der = ssl.PEM_cert_to_DER_cert(self.pem)
        self.fingerprint = fingerprint_of_der(self.der)
        self.fingerprint_hex = hashlib.sha256(self.der).hexdigest()

    def __repr__(self):
        return "Cert(%s, %s)" % (self.name, self.cert)


def _openssl(args, cwd):
    p = subprocess.run(["openssl"] + args, cwd=cwd, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    if p.returncode != 0:
        raise RuntimeError("openssl %s failed (%d):\n%s" % (
            " ".join(args), p.returncode, p.stderr.decode(errors="replace")))
    return p.stdout


def _utc(dt):
    """ASN.1 UTCTime for `openssl ca -startdate/-enddate` (years < 2050)."""
    return dt.strftime("%y%m%d%H%M%SZ")


class CertSet:
    NAMES = ("ca", "server", "server2", "selfsigned", "wronghost", "expired",
             "notyetvalid", "cnonly")

    def __init__(self, directory):
        self.dir = os.path.abspath(directory)
        os.makedirs(os.path.join(self.dir, "newcerts"), exist_ok=True)
        with open(os.path.join(self.dir, "req.cnf"), "w") as f:
            f.write(_REQ_CNF)
        with open(os.path.join(self.dir, "index.txt"), "w"):
            pass
        with open(os.path.join(self.dir, "serial"), "w") as f:
            f.write("1000\n")
        now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
        day = datetime.timedelta(days=1)
        self._make_ca()
        self.server = self._leaf("server", "localhost", now - day, now + 3650 * day)
        self.server2 = self._leaf("server2", "localhost", now - day, now + 3650 * day)
        self.wronghost = self._leaf("wronghost", "wrong.example", now - day,
                                    now + 3650 * day, san="DNS.1 = wrong.example")
        self.expired = self._leaf("expired", "localhost", now - 730 * day, now - 365 * day)
        self.notyetvalid = self._leaf("notyetvalid", "localhost", now + 365 * day,
                                      now + 730 * day)
        self.selfsigned = self._selfsigned()
        # CN=localhost, but its subjectAltName names only the IP address:
        # not valid for "localhost" (RFC 9525: no fallback to the CN).
        self.cnonly = self._leaf("cnonly", "localhost", now - day,
                                 now + 3650 * day, san="IP.1 = 127.0.0.1")

    def _key(self, name):
        key = os.path.join(self.dir, name + ".key")
        _openssl(["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
                  "-out", key], self.dir)
        os.chmod(key, 0o600)
        return key

    def _make_ca(self):
        key = self._key("ca")
        pem = os.path.join(self.dir, "ca.pem")
        _openssl(["req", "-config", "req.cnf", "-new", "-x509", "-key", key, "-out", pem,
                  "-subj", "/CN=pftest CA", "-days", "3650", "-sha256",
                  "-addext", "basicConstraints=critical,CA:TRUE",
                  "-addext", "keyUsage=critical,keyCertSign,cRLSign"], self.dir)
        self.ca = Cert("ca", pem, key)

    def _leaf(self, name, cn, start, end, san="DNS.1 = localhost\nIP.1 = 127.0.0.1"):
        key = self._key(name)
        csr = os.path.join(self.dir, name + ".csr")
        pem = os.path.join(self.dir, name + ".pem")
        cnf = os.path.join(self.dir, name + ".ca.cnf")
        with open(cnf, "w") as f:
            f.write(_CA_CNF.format(dir=self.dir, san=san))
        _openssl(["req", "-config", "req.cnf", "-new", "-key", key, "-out", csr,
                  "-subj", "/CN=" + cn], self.dir)
        _openssl(["ca", "-batch", "-config", cnf, "-extensions", "leaf", "-notext",
                  "-startdate", _utc(start), "-enddate", _utc(end),
                  "-in", csr, "-out", pem], self.dir)
        return Cert(name, pem, key)

    def _selfsigned(self):
        key = self._key("selfsigned")
        pem = os.path.join(self.dir, "selfsigned.pem")
        _openssl(["req", "-config", "req.cnf", "-new", "-x509", "-key", key, "-out", pem,
                  "-subj", "/CN=localhost", "-days", "3650", "-sha256",
                  "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                  "-addext", "basicConstraints=critical,CA:FALSE"], self.dir)
        return Cert("selfsigned", pem, key)

    def all(self):
        return {n: getattr(self, n) for n in self.NAMES}
