#!/usr/bin/env python3
"""Hostile servers and inputs (issue 12): what the TLS layer accepts, what
a dry run and `check` report, against the real binary and the scripted
popserver (tests/integration/popserver.py).

  host name    a certificate whose subjectAltName does not name the host
               is refused even when its CN does (RFC 9525)
  dry run      a connection lost during TOP is 75, as a fetch would be;
               a server without CAPA gets previews when TOP answers +OK,
               none (and no second try) when it answers -ERR
"""

import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pftest  # noqa: E402
from pftest import eq, ok, contains, not_contains, like  # noqa: E402

T = pftest.Suite(__file__)
CERTS = T.certs()
later = T.later
test = T.test


# ------------------------------------------------------------------ helpers

def gen(n, seed, lo=600, hi=2500):
    return pftest.MailGen(seed).messages(n, lo, hi)


class Box:
    """One popserver, one sandbox, account `work` delivering into Mail/work."""

    def __init__(self, tmp, msgs, host="127.0.0.1", tls=None, cert=None,
                 **knobs):
        self.msgs = list(msgs)
        self.srv = pftest.PopServer(os.path.join(tmp, "srv"), messages=self.msgs,
                                    tls=tls, cert=cert, stall_max=30,
                                    **knobs).start()
        later(self.srv.stop)
        self.pf = pftest.Popfetch(os.path.join(tmp, "pf"))
        self.md = self.pf.path("Mail/work")
        self.opts = {"host": host, "port": self.srv.port, "user": "alice",
                     "password": "secret", "maildir": self.md, "timeout": 10}
        if tls is None:
            self.opts.update(tls="none", allow_plaintext_password=True)
        else:
            self.opts.update(tls="implicit" if tls == "implicit" else "starttls",
                             tls_ca_file=CERTS.ca.cert)
        self.write()

    def write(self):
        self.pf.write_config(pftest.account_conf("work", **self.opts))

    def run(self, *args):
        r = self.pf.run(*args)
        self.srv.wait_closed(10)
        return r


def error_line(r, code):
    """Exit `code`; stderr holds one line `popfetch: work: ...`; returns the
    text after the account name."""
    eq(r.rc, code, "exit code\n%s" % r)
    m = re.search(r"^popfetch: work: ([^\n]+)$", r.stderr, re.M)
    ok(m, "an error line 'popfetch: work: ...'", r.stderr)
    T.diag("error line: " + m.group(0)[:300])
    return m.group(1)


def sent_credentials(srv):
    return [c for c in srv.commands() if c in ("USER", "PASS", "AUTH", "APOP")]


def tops(srv):
    return [ln.decode("latin-1") for ln in srv.client_lines()
            if ln.upper().startswith(b"TOP")]


# ------------------------------------------------------------------ host name

@test("TLS: CN=localhost but subjectAltName only IP:127.0.0.1, host localhost "
      "-> 69 host name mismatch, no credentials (no fallback to the CN)")
def _(tmp):
    box = Box(tmp, gen(2, 1), host="localhost", tls="implicit", cert=CERTS.cnonly)
    text = error_line(box.run("fetch"), 69)
    like(text, r"host name mismatch", "says why")
    eq(sent_credentials(box.srv), [], "no credential sent")
    eq(len(pftest.read_maildir(box.md)), 0, "nothing delivered")


@test("TLS: the same certificate is fine for host 127.0.0.1 (its IP SAN)")
def _(tmp):
    box = Box(tmp, gen(2, 2), host="127.0.0.1", tls="implicit", cert=CERTS.cnonly)
    r = box.run("fetch")
    eq(r.rc, 0, str(r))
    eq(len(pftest.read_maildir(box.md)), 2, "both delivered")


# ------------------------------------------------------------------ check

@test("check on a self-signed certificate: 69, shows fingerprint, subject, "
      "issuer, validity and the tls_fingerprint line; no credential; the "
      "line it prints makes the next check succeed")
def _(tmp):
    box = Box(tmp, gen(2, 6), host="localhost", tls="implicit",
              cert=CERTS.selfsigned)
    box.opts.pop("tls_ca_file")
    box.write()
    r = box.run("check")
    eq(r.rc, 69, str(r))
    fp = CERTS.selfsigned.fingerprint
    contains(r.stdout, "certificate (not trusted): %s\n" % fp, "the fingerprint")
    like(r.stdout, r"(?m)^    subject: CN=localhost$", "the subject")
    like(r.stdout, r"(?m)^    issuer: CN=localhost$", "the issuer")
    like(r.stdout, r"(?m)^    valid: \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC to "
         r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$", "the validity")
    m = re.search(r'(?m)^    (tls_fingerprint = "sha256:[0-9A-F:]+")$', r.stdout)
    ok(m, "the line that pins it", r.stdout)
    like(r.stderr, r"popfetch: work: .*certificate verify failed", "the error line")
    eq(sent_credentials(box.srv), [], "no credential sent")
    box.opts["tls_fingerprint"] = m.group(1).split('"')[1]
    box.write()
    r = box.run("check")
    eq(r.rc, 0, "pinned with the printed line\n%s" % r)


@test("check with a pin that does not match: 69, shows the certificate the "
      "server presented")
def _(tmp):
    box = Box(tmp, gen(2, 7), host="localhost", tls="implicit", cert=CERTS.server)
    box.opts["tls_fingerprint"] = CERTS.server2.fingerprint
    box.write()
    r = box.run("check")
    eq(r.rc, 69, str(r))
    contains(r.stdout, "certificate (not trusted): %s\n" % CERTS.server.fingerprint,
             "the presented certificate's fingerprint")
    like(r.stdout, r"(?m)^    issuer: CN=pftest CA$", "its issuer")
    eq(sent_credentials(box.srv), [], "no credential sent")


# ------------------------------------------------------------------ dry run

@test("fetch -n: connection lost during TOP -> 75 (as a fetch would), "
      "not 0 with empty previews")
def _(tmp):
    box = Box(tmp, gen(3, 3), override={"TOP": ["@CLOSE"]})
    r = box.run("fetch", "-n")
    text = error_line(r, 75)
    like(text, r"connection lost", "says the connection was lost")
    not_contains(r.stderr, "0 skipped, 0 deleted", "no dry-run summary line")


@test("fetch -n against a server without CAPA whose TOP works (Qpopper "
      "style): From, Subject and Date shown for each message")
def _(tmp):
    msgs = gen(3, 4)
    box = Box(tmp, msgs, capa=False, pipelining=False)
    r = box.run("fetch", "-n")
    eq(r.rc, 0, str(r))
    eq(len(re.findall(r"(?m)^    Subject: \S", r.stdout)), 3,
       "a Subject preview per message\n" + r.stdout)
    eq(len(re.findall(r"(?m)^    From: \S", r.stdout)), 3, "a From preview each")
    eq(tops(box.srv), ["TOP 1 0", "TOP 2 0", "TOP 3 0"], "TOP tried without CAPA")
    eq(len(pftest.read_maildir(box.md)), 0, "nothing delivered")


@test("fetch -n against a server without CAPA and without TOP: one TOP "
      "tried, -ERR, no previews, no second try, exit 0")
def _(tmp):
    box = Box(tmp, gen(3, 5), capa=False, pipelining=False, top=False)
    r = box.run("fetch", "-n")
    eq(r.rc, 0, str(r))
    eq(len(re.findall(r"(?m)^work: would fetch message", r.stdout)), 3,
       "a line per message\n" + r.stdout)
    not_contains(r.stdout, "Subject:", "no preview")
    eq(tops(box.srv), ["TOP 1 0"], "TOP tried once")


# ------------------------------------------------------------------ server text

def raw_run(box, *args):
    p = subprocess.run(box.pf.command(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=box.pf.env(), cwd=box.pf.dir,
                       timeout=60)
    box.srv.wait_closed(10)
    return p


@test("fetch -n: a Subject with raw CSI (0x9B), C1 and invalid UTF-8 is shown "
      "escaped on stdout; valid UTF-8 stays readable")
def _(tmp):
    evil = (b"From: Mallory <m@example.org>\r\n"
            b"Subject: hi \x9b2J \xc2\x9b31m \xff Gr\xc3\xbc\xc3\x9fe\r\n"
            b"Date: Sun, 6 Dec 2026 10:00:00 +0000\r\n\r\nbody\r\n")
    box = Box(tmp, [evil])
    p = raw_run(box, "fetch", "-n")
    eq(p.returncode, 0, p.stderr.decode("utf-8", "replace"))
    out = pftest.terminal_safe(p.stdout, "stdout")
    contains(out, "Subject: hi \\x9b2J \\xc2\\x9b31m \\xff Gr\u00fc\u00dfe",
             "the Subject, escaped")


@test("check: a capability line with raw CSI and C1 bytes is shown escaped")
def _(tmp):
    path = os.path.join(tmp, "capa.dlg")
    with open(path, "w", encoding="ascii") as f:
        f.write("S: +OK popserver ready\n"
                "C: CAPA\n"
                "SEND_RAW +OK\\r\\nUSER\\r\\nX-EVIL \\x9b2J \\xc2\\x9b\\r\\n.\\r\\n\n"
                "C: USER alice\n"
                "S: +OK\n"
                "C: PASS secret\n"
                "S: +OK\n"
                "C: STAT\n"
                "S: +OK 0 0\n"
                "C: QUIT\n"
                "S: +OK bye\n")
    box = Box(tmp, [], dialogue=path)
    p = raw_run(box, "check")
    eq(p.returncode, 0, p.stderr.decode("utf-8", "replace"))
    out = pftest.terminal_safe(p.stdout, "stdout")
    contains(out, "    X-EVIL \\x9b2J \\xc2\\x9b\n", "the line, escaped")
    eq(box.srv.mismatches(), [], "no mismatch")


T.done()
