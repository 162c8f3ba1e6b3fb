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


T.done()
