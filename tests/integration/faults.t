#!/usr/bin/env python3
"""popfetch against servers that misbehave: the faults a real server won't
produce, from the scripted popserver (tests/integration/popserver.py).

Every test runs the real binary and asserts the exit code (popfetch(1), EXIT STATUS), the
error line `popfetch: work: <what failed>: <server's words>` (popfetch(1)), the
Maildir (nothing partial in new/ or cur/; tmp/ empty after the next run) and
the server's state (what was DELEd; deletions only after QUIT).

  TLS           untrusted, wrong host, expired, fingerprint pins, tls_verify
  STARTTLS      not offered, refused, CAPA again after STLS
  response      -ERR [IN-USE], [SYS/TEMP], [LOGIN-DELAY], [AUTH]
  stalls        mid-session and mid-RETR with timeout = 2
  trickles      a byte every 1.5 s (greeting, status lines, message data)
                with timeout = 2; message data at 2 KiB/s is no stall
  oversize      1 MiB status line, endless message data, endless line
  cuts          connection cut mid-RETR at three points, then a clean run
  sizes         LIST size shorter / longer than the message
  garbage       dialogues/*.dlg: malformed UIDL / LIST lines, replies that
                are neither +OK nor -ERR, not a POP3 greeting
  no UIDL       delete = false (76) and delete = true (fetch and delete)
  pipelining    300 messages with 20 ms latency; lock-step without it
  SASL          XOAUTH2 (initial response, two-step, error challenge),
                SCRAM (bad server signature, rejected -> PLAIN)
  disk full     a 256 KiB tmpfs Maildir (root: mount -t tmpfs)
  max_size      skipped, left on the server

Peak memory is read with GNU time (/usr/bin/time -f %M, Debian package
`time`); it is checked only without $POPFETCH_WRAPPER (valgrind's RSS is its
own).
"""

import base64
import os
import re
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pftest  # noqa: E402
import popserver  # noqa: E402
from pftest import eq, ok, contains, not_contains, like  # noqa: E402

T = pftest.Suite(__file__)
CERTS = T.certs()
HERE = os.path.dirname(os.path.abspath(__file__))
DIALOGUES = os.path.join(HERE, "dialogues")
NAME = "work"
CRED_CMDS = ("USER", "PASS", "AUTH", "APOP")
WRAPPED = bool(os.environ.get("POPFETCH_WRAPPER", "").strip())
# Under a wrapper (valgrind) time limits get this much more room.
SLOW = 10.0 if WRAPPED else 0.0

# ------------------------------------------------------------------ helpers

# Per-test cleanups (pftest.Suite.later) and the test decorator.
later = T.later
test = T.test


def gen(n, lo=1500, hi=6000, seed=None):
    return pftest.MailGen(seed if seed is not None else n * 7 + lo).messages(n, lo, hi)


def crlf_size(m):
    """The size a correct server announces for m (CRLF line ends)."""
    return popserver.Message("x", m).size


class Box:
    """A scripted server and a popfetch sandbox with account `work`."""

    def __init__(self, tmp, msgs=(), tls=None, cert=None, host="127.0.0.1",
                 dialogue=None, **knobs):
        self.msgs = list(msgs)
        kw = {}
        if dialogue is None:
            kw = {"messages": self.msgs or None, "stall_max": 30}
        self.srv = pftest.PopServer(os.path.join(tmp, "srv"), tls=tls, cert=cert,
                                    dialogue=dialogue, **kw, **knobs).start()
        later(self.srv.stop)
        self.pf = pftest.Popfetch(os.path.join(tmp, "pf"))
        self.md = self.pf.path("Mail/" + NAME)
        self.opts = {"host": host, "port": self.srv.port, "user": "alice",
                     "password": "secret", "maildir": self.md, "timeout": 10}
        if tls == "implicit":
            self.opts.update(tls="implicit", tls_ca_file=CERTS.ca.cert)
        elif tls == "stls":
            self.opts.update(tls="starttls", tls_ca_file=CERTS.ca.cert)
        else:
            self.opts.update(tls="none", allow_plaintext_password=True)
        self.write()

    def write(self):
        self.pf.write_config(pftest.account_conf(NAME, **self.opts))

    def configure(self, **opts):
        """Change account options (None removes one)."""
        self.opts.update(opts)
        self.write()

    def run(self, *args, timeout=60):
        r = self.pf.run("fetch", *args, timeout=timeout)
        self.srv.wait_closed(10)
        return r

    def maildir(self):
        return pftest.read_maildir(self.md)

    def uidls(self, idx=None):
        all_ = ["uid-%d" % (i + 1) for i in range(len(self.msgs))]
        return all_ if idx is None else [all_[i] for i in idx]

    def client_lines(self):
        return self.srv.client_lines()


def error_line(r, code, what=None, server=None, what_re=None):
    """Exit `code`, nothing on stdout, and stderr exactly one error line
    `popfetch: work: WHAT[: SERVER]`.  `what` is a prefix of the text after
    the account name, `server` the exact end (the server's words)."""
    eq(r.rc, code, "exit code\n%s" % r)
    eq(r.stdout, "", "stdout")
    m = re.fullmatch(r"popfetch: %s: ([^\n]+)\n" % NAME, r.stderr)
    ok(m, "stderr is one error line 'popfetch: %s: ...'" % NAME, r.stderr)
    text = m.group(1)
    T.diag("error line: " + r.stderr.rstrip("\n")[:300])
    if what is not None:
        ok(text.startswith(what), "error text starts with %r" % what, text)
    if what_re is not None:
        like(text, what_re, "error text")
    if server is not None:
        ok(text.endswith(": " + server), "error line ends with the server's words %r"
           % server, text)
    return text


SUMMARY = re.compile(r"^%s: (\d+) new, (\d+) skipped, (\d+) deleted, "
                     r"\d+(?:\.\d+)? (?:[kMG]B|B) in \d+(?:\.\d+)? s$" % NAME, re.M)


def summary(r, new, skipped=0, deleted=0):
    """Exit 0 and a summary line with these counts."""
    eq(r.rc, 0, "exit code\n%s" % r)
    m = SUMMARY.search(r.stderr)
    ok(m, "summary line", r.stderr)
    eq(tuple(int(x) for x in m.groups()), (new, skipped, deleted),
       "new, skipped, deleted in %r" % m.group(0))


def delivered(box, expected, what="Maildir"):
    """new/ + cur/ hold exactly `expected` (server-side bytes), each once,
    byte-exact (after the Received: line)."""
    c = box.maildir()
    got = c.messages(strip_received=True)
    want = [pftest.pop3_expected(m) for m in expected]
    eq(len(got), len(want), "%s: number of delivered messages" % what)
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            raise AssertionError("%s: message %d differs (%d vs %d bytes)"
                                 % (what, i + 1, len(g), len(w)))
    return c


def no_credentials(box):
    lines = box.client_lines()
    for ln in lines:
        word = ln.split(b" ", 1)[0].decode("latin-1").upper()
        ok(word not in CRED_CMDS, "no credential command sent", lines)
    for f in pftest.files_containing(box.srv.dir, "secret"):
        ok(not f.endswith("transcript.log"), "password not in the transcript")


def server_untouched(box):
    """Nothing DELEd, nothing removed."""
    not_contains(box.srv.commands(), "DELE", "client commands")
    eq(box.srv.deleted_uidls(), [], "deleted on the server")
    eq(box.srv.remaining_uidls(), box.uidls(), "left on the server")


def clean_second_run(box, expected_all, delete=False):
    """The next run against a healthy server: exit 0, every message once,
    tmp/ empty; with delete, the server is emptied."""
    r = box.run()
    eq(r.rc, 0, "second run\n%s" % r)
    c = delivered(box, expected_all, "after the second run")
    eq(c.tmp, [], "tmp/ after the second run")
    if delete:
        eq(sorted(box.srv.deleted_uidls()), sorted(box.uidls()), "deleted after QUIT")
        eq(box.srv.remaining_uidls(), [], "server emptied")
    return r


TIME = "/usr/bin/time"


def run_measured(box, *args, timeout=60):
    """Run `popfetch fetch ARGS` under GNU time (Debian package `time`) and
    return (Result, peak RSS in KiB).  (Python's own wait4() would report
    the forked interpreter's RSS too: Linux carries ru_maxrss over exec.)"""
    ok(os.access(TIME, os.X_OK), "%s is installed (Debian package `time`)" % TIME)
    pf = box.pf
    rss_file = os.path.join(pf.dir, "rss-%d" % time.monotonic_ns())
    argv = [TIME, "-f", "%M", "-o", rss_file, "--"] + pf.command(("fetch",) + args)
    t0 = time.monotonic()
    try:
        p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, env=pf.env(), cwd=pf.dir,
                           timeout=timeout)
        rc, out, err, timed_out = p.returncode, p.stdout, p.stderr, False
    except subprocess.TimeoutExpired as e:
        rc, out, err, timed_out = None, e.stdout or b"", e.stderr or b"", True
    dur = time.monotonic() - t0
    box.srv.wait_closed(10)
    r = pftest.Result(argv, rc, out.decode("utf-8", "replace"),
                      err.decode("utf-8", "replace"), timed_out, dur)
    rss = None
    if not timed_out:
        with open(rss_file) as f:
            lines = f.read().split()
        ok(lines and lines[-1].isdigit(), "GNU time's output", lines)
        rss = int(lines[-1])
    return r, rss


def tmpfs(path, size):
    """Mount a tmpfs of `size` on path (root only) until the test ends."""
    os.makedirs(path, exist_ok=True)
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%s,mode=0755" % size,
                        "tmpfs", path], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    eq(p.returncode, 0, "mount -t tmpfs on %s: %s" % (path, p.stdout.decode(errors="replace")))
    later(lambda: subprocess.run(["umount", "-l", path]))


def rss_bounded(rss, ref, slack_kib, what):
    T.diag("%s: peak RSS %d KiB (reference run %d KiB)" % (what, rss, ref))
    if WRAPPED:
        return
    ok(rss <= ref + slack_kib, "%s: peak RSS %d KiB <= %d + %d KiB"
       % (what, rss, ref, slack_kib))


# ------------------------------------------------------------------ TLS

def tls_refused(tmp, cert, what_re, host="127.0.0.1", mode="implicit",
                handshake_fails=True, **opts):
    box = Box(tmp, gen(2), tls=mode, cert=cert, host=host)
    box.configure(**opts)
    r = box.run()
    text = error_line(r, 69, what_re=what_re)
    no_credentials(box)
    if mode == "implicit":
        eq(box.client_lines(), [], "nothing sent over a refused TLS session")
        if handshake_fails:
            ok(any(e.startswith("tls handshake failed") for e in box.srv.events()),
               "server saw the handshake fail", box.srv.events())
    else:
        eq(box.srv.commands(), ["CAPA", "STLS"], "STARTTLS: only CAPA and STLS in clear")
    eq(len(box.maildir()), 0, "nothing delivered")
    server_untouched(box)
    return text


@test("TLS: self-signed certificate without a CA -> 69, no credentials sent")
def _(tmp):
    tls_refused(tmp, CERTS.selfsigned, r"certificate verify failed: self[- ]signed",
                tls_ca_file=None)


@test("TLS: self-signed certificate after STLS -> 69, no credentials, no fallback")
def _(tmp):
    tls_refused(tmp, CERTS.selfsigned, r"certificate verify failed: self[- ]signed",
                mode="stls", tls_ca_file=None)


@test("TLS: host name mismatch (wronghost cert, trusted CA) -> 69, no credentials")
def _(tmp):
    text = tls_refused(tmp, CERTS.wronghost, r"host name mismatch", host="localhost")
    contains(text, "wrong.example", "names what the certificate is for")


@test("TLS: host name mismatch for an IP address -> 69")
def _(tmp):
    tls_refused(tmp, CERTS.wronghost, r"host name mismatch")


@test("TLS: host name mismatch after STLS -> 69, no credentials")
def _(tmp):
    tls_refused(tmp, CERTS.wronghost, r"host name mismatch", host="localhost",
                mode="stls")


@test("TLS: expired certificate -> 69 'certificate has expired'")
def _(tmp):
    tls_refused(tmp, CERTS.expired, r"certificate has expired")


@test("TLS: one -j 1 run over six accounts: a chain verified for one account is taken "
      "again only for the same chain and host name")
def _(tmp):
    servers = {}
    for name, cert in (("good", CERTS.server), ("wrong", CERTS.wronghost),
                       ("iponly", CERTS.cnonly)):
        servers[name] = pftest.PopServer(os.path.join(tmp, "srv-" + name), tls="implicit",
                                         cert=cert, messages=gen(1, seed=len(name)),
                                         stall_max=30).start()
        later(servers[name].stop)
    # In the configuration's order, which -j 1 keeps.
    accounts = [
        ("a1", "good", "127.0.0.1", 0),     # verified in full
        ("a2", "good", "127.0.0.1", 0),     # the same chain and name: taken again
        ("a3", "good", "localhost", 0),     # another name: verified in full
        ("b", "wrong", "127.0.0.1", 69),    # another chain, same CA and name: refused
        ("c1", "iponly", "127.0.0.1", 0),   # the IP is in its SAN
        ("c2", "iponly", "localhost", 69),  # the same chain, a name it lacks: refused
    ]
    pf = pftest.Popfetch(os.path.join(tmp, "pf"))
    pf.write_config("".join(pftest.account_conf(
        name, host=host, port=servers[srv].port, user="alice", password="secret",
        maildir=pf.path("Mail/" + name), timeout=10, tls="implicit",
        tls_ca_file=CERTS.ca.cert) for name, srv, host, _ in accounts))
    r = pf.run("-v", "fetch", "-j", "1", timeout=60)
    eq(r.rc, 69, "exit code: the first failure's\n%s" % r)
    reused = re.findall(r"^TLS: (\S+): the same certificate chain as verified "
                        r"earlier in this run$", r.stderr, re.M)
    eq(reused, ["127.0.0.1"], "taken again once, for a2\n" + r.stderr)
    for name, srv, host, code in accounts:
        got = pftest.read_maildir(pf.path("Mail/" + name)).messages(strip_received=True)
        if code == 0:
            ok(re.search(r"^%s: 1 new" % name, r.stderr, re.M), name + ": fetched", r.stderr)
            eq(len(got), 1, name + ": its message")
        else:
            like(r.stderr, r"(?m)^popfetch: %s: .*host name mismatch" % name,
                 name + ": refused")
            eq(len(got), 0, name + ": nothing delivered")
    # Credentials only over a verified session: none to "wrong", c1's alone
    # to "iponly".
    for name, logins in (("wrong", 0), ("iponly", 1)):
        cmds = servers[name].commands()
        eq(sum(1 for c in cmds if c in ("PASS", "AUTH", "APOP")), logins,
           "%s: logins (%s)" % (name, " ".join(cmds)))


@test("TLS: tls_fingerprint matching a self-signed certificate -> success")
def _(tmp):
    msgs = gen(3)
    box = Box(tmp, msgs, tls="implicit", cert=CERTS.selfsigned)
    box.configure(tls_ca_file=None, tls_fingerprint=CERTS.selfsigned.fingerprint)
    r = box.run()
    summary(r, 3)
    delivered(box, msgs)
    # Any case, colons optional, no prefix (popfetch.conf(5)).
    box.configure(tls_fingerprint=CERTS.selfsigned.fingerprint_hex.lower())
    box.srv.add_messages(gen(1, seed=99))
    r = box.run()
    summary(r, 1)


@test("TLS: tls_fingerprint mismatching a CA-valid certificate -> 69")
def _(tmp):
    # The pin is checked once the handshake is done: the server sees a TLS
    # session, and then nothing but the close.
    text = tls_refused(tmp, CERTS.server, r"fingerprint mismatch",
                       handshake_fails=False,
                       tls_fingerprint=CERTS.server2.fingerprint)
    contains(text.upper().replace(":", ""), CERTS.server.fingerprint_hex.upper(),
             "names the fingerprint the server presented")


@test("TLS: tls_verify = false accepts a self-signed certificate")
def _(tmp):
    msgs = gen(2)
    box = Box(tmp, msgs, tls="implicit", cert=CERTS.selfsigned)
    box.configure(tls_ca_file=None, tls_verify=False)
    summary(box.run(), 2)
    delivered(box, msgs)


# ------------------------------------------------------------------ STARTTLS

@test("STARTTLS: server without STLS in CAPA -> 69, no credentials, no fallback")
def _(tmp):
    box = Box(tmp, gen(2))          # plain server, STLS not offered
    box.configure(tls="starttls", tls_ca_file=CERTS.ca.cert,
                  allow_plaintext_password=None)
    r = box.run()
    error_line(r, 69, what_re=r"STARTTLS not offered")
    no_credentials(box)
    ok(set(box.srv.commands()) <= {"CAPA", "QUIT"}, "only CAPA (and QUIT) in clear",
       box.srv.commands())
    eq(len(box.maildir()), 0, "nothing delivered")
    server_untouched(box)


@test("STARTTLS: server answers -ERR to STLS -> 69, no credentials")
def _(tmp):
    box = Box(tmp, gen(2), tls="stls", cert=CERTS.server,
              override={"STLS": ["-ERR TLS is resting today"]})
    r = box.run()
    error_line(r, 69, what="server refused STLS", server="-ERR TLS is resting today")
    no_credentials(box)
    eq([c for c in box.srv.commands() if c != "QUIT"], ["CAPA", "STLS"],
       "commands in clear")
    eq(len(box.maildir()), 0, "nothing delivered")
    server_untouched(box)


@test("STARTTLS: CAPA is asked again after STLS, inside TLS")
def _(tmp):
    msgs = gen(2)
    box = Box(tmp, msgs, tls="stls", cert=CERTS.server)
    summary(box.run(), 2)
    delivered(box, msgs)
    ev = [(e.kind, e.text) for e in box.srv.transcript() if e.conn == 1]
    cmds = [t.split(" ", 1)[0] for k, t in ev if k == "C"]
    eq(cmds[:3], ["CAPA", "STLS", "CAPA"], "first commands")
    i_stls = ev.index(("C", "STLS"))
    i_tls = next(i for i, (k, t) in enumerate(ev) if k == "#" and
                 t.startswith("tls established"))
    i_capa2 = next(i for i, (k, t) in enumerate(ev) if i > i_stls and k == "C"
                   and t == "CAPA")
    ok(i_stls < i_tls < i_capa2, "STLS, handshake, then CAPA", ev[:12])
    i_auth = next(i for i, (k, t) in enumerate(ev) if k == "C" and
                  t.split(" ", 1)[0] in CRED_CMDS)
    ok(i_auth > i_capa2, "credentials only after the second CAPA")


# ------------------------------------------------------------------ -ERR codes

def login_err(tmp, code, server_line, what=None, **knobs):
    box = Box(tmp, gen(2), **knobs)
    r = box.run()
    error_line(r, code, what=what, server=server_line)
    eq(len(box.maildir()), 0, "nothing delivered")
    not_contains(box.srv.commands(), "RETR")
    server_untouched(box)
    return box


@test("-ERR [IN-USE] at login -> 75, 'mailbox in use', not 'authentication failed'")
def _(tmp):
    login_err(tmp, 75, "-ERR [IN-USE] Mailbox is locked by another POP3 session.",
              what="mailbox in use by another client (the server said [IN-USE])",
              in_use=True)


@test("-ERR [IN-USE] to PASS (USER/PASS login) -> 75, 'mailbox in use'")
def _(tmp):
    login_err(tmp, 75, "-ERR [IN-USE] Mailbox is locked by another POP3 session.",
              what="mailbox in use by another client (the server said [IN-USE])",
              in_use=True, sasl=[])


@test("-ERR [SYS/TEMP] at login -> 75")
def _(tmp):
    login_err(tmp, 75, "-ERR [SYS/TEMP] Authentication backend unavailable",
              override={"AUTH": ["-ERR [SYS/TEMP] Authentication backend unavailable"]})


@test("-ERR [LOGIN-DELAY] at login -> 75")
def _(tmp):
    login_err(tmp, 75, "-ERR [LOGIN-DELAY] Come back in 5 minutes",
              sasl=[], override={"PASS": ["-ERR [LOGIN-DELAY] Come back in 5 minutes"]})


@test("-ERR [AUTH] at login (wrong password) -> 77, one attempt")
def _(tmp):
    box = login_err(tmp, 77, "-ERR [AUTH] Authentication failed.",
                    users={"alice": "other"})
    eq(len([c for c in box.srv.commands() if c in CRED_CMDS]), 1, "one login attempt")


# ------------------------------------------------------------------ stalls

@test("stall mid-session (after login) with timeout = 2 -> 75 in 2-4 s")
def _(tmp):
    msgs = gen(3)
    box = Box(tmp, msgs, stall_after=2, fault_connections=[1])
    box.configure(timeout=2)
    r = box.run(timeout=30)
    error_line(r, 75, what_re=r"timed out after 2 s")
    ok(1.8 <= r.duration <= 4.5 + SLOW, "duration %.2f s within ~2-4 s" % r.duration)
    contains(box.srv.events(1), "authenticated as alice")
    eq(len(box.maildir()), 0, "nothing delivered")
    server_untouched(box)
    clean_second_run(box, msgs)


@test("stall mid-RETR (message 2 of 3) with timeout = 2 -> 75 in 2-4 s")
def _(tmp):
    msgs = gen(3)
    box = Box(tmp, msgs, retr_stall_at={2: "data"}, fault_connections=[1])
    box.configure(timeout=2, delete=True)
    r = box.run(timeout=30)
    error_line(r, 75, what_re=r"stalled: less than 1 KiB/s for 2 s in message 2$")
    ok(1.8 <= r.duration <= 4.5 + SLOW, "duration %.2f s within ~2-4 s" % r.duration)
    c = delivered(box, msgs[:1], "after the stall")
    eq(c.cur, {}, "cur/")
    server_untouched(box)
    clean_second_run(box, msgs, delete=True)


# ------------------------------------------------------------------ trickles
# DESIGN §5.4: a status or listing line must be whole within `timeout` of
# the wait for it (one deadline per line, not per read), and message data
# must come at 1 KiB/s or more over `timeout`.  The server sends a byte
# every 1.5 s, each within timeout = 2: before, the 21-byte greeting alone
# held the run for over 30 s, and message data for as long as the message.

def trickled(tmp, what_re, delivered_first=False, **knobs):
    msgs = gen(3)
    box = Box(tmp, msgs, fault_connections=[1], **knobs)
    box.configure(timeout=2, delete=True)
    r = box.run(timeout=90)
    T.diag("trickle %r: %.2f s" % (knobs, r.duration))
    error_line(r, 75, what_re=what_re)
    ok(1.8 <= r.duration <= 4.5 + SLOW, "duration %.2f s within ~2-4 s" % r.duration)
    ok(any(e.startswith("trickling") for e in box.srv.events(1)),
       "the server trickled", box.srv.events(1))
    c = delivered(box, msgs[:1] if delivered_first else [], "after the trickle")
    eq(c.cur, {}, "cur/")
    server_untouched(box)
    clean_second_run(box, msgs, delete=True)


@test("greeting trickled, a byte every 1.5 s, timeout = 2 -> 75 in ~2 s")
def _(tmp):
    trickled(tmp, r"timed out after 2 s$", trickle_on="greeting")


@test("UIDL's status line trickled, timeout = 2 -> 75 in ~2 s")
def _(tmp):
    trickled(tmp, r"timed out after 2 s$", trickle_on="UIDL")


@test("RETR's status line of message 2 trickled, timeout = 2 -> 75 in ~2 s")
def _(tmp):
    trickled(tmp, r"timed out after 2 s$", delivered_first=True,
             retr_trickle_at={2: "status"})


@test("message 2's data trickled, timeout = 2 -> 75 'stalled' in ~2 s")
def _(tmp):
    trickled(tmp, r"stalled: less than 1 KiB/s for 2 s in message 2$",
             delivered_first=True, retr_trickle_at={2: "data"})


@test("message data at 2 KiB/s for ~7 s, timeout = 2 -> not a stall")
def _(tmp):
    g = pftest.MailGen(11)
    msgs = [g.message(2000), g.message(14000)]
    box = Box(tmp, msgs, retr_trickle_at={2: "data"}, trickle_bytes=3072)
    box.configure(timeout=2)
    r = box.run(timeout=90)
    T.diag("2 KiB/s: %.2f s" % r.duration)
    summary(r, 2)
    delivered(box, msgs)
    ok(r.duration >= 6, "the message took %.2f s, three timeouts" % r.duration)


# ------------------------------------------------------------------ oversize

@test("1 MiB greeting line -> 76 quickly, bounded memory")
def _(tmp):
    msgs = gen(2)
    box = Box(tmp, msgs, status_line_bytes=1 << 20, status_line_on="greeting",
              fault_connections=[1])
    r, rss = run_measured(box)
    error_line(r, 76, what="status line longer than 8192 octets: +OK xxxx")
    ok(len(r.stderr) < 1000, "error line is cut", len(r.stderr))
    ok(r.duration < 5 + SLOW, "quick: %.2f s" % r.duration)
    eq(len(box.maildir()), 0, "nothing delivered")
    r2, rss2 = run_measured(box)
    eq(r2.rc, 0, str(r2))
    delivered(box, msgs)
    # A reader that kept the line would hold >= 1 MiB more than a whole
    # successful fetch (which does SQLite and Maildir work on top).
    rss_bounded(rss, rss2, 512, "1 MiB greeting")


@test("1 MiB status line in answer to RETR -> 76, nothing delivered")
def _(tmp):
    msgs = gen(2)
    box = Box(tmp, msgs, status_line_bytes=1 << 20, status_line_on="RETR",
              fault_connections=[1])
    box.configure(delete=True)
    r, rss = run_measured(box)
    error_line(r, 76, what="status line longer than 8192 octets: +OK xxxx")
    ok(r.duration < 5 + SLOW, "quick: %.2f s" % r.duration)
    c = box.maildir()
    eq(len(c), 0, "nothing delivered")
    server_untouched(box)
    r2, rss2 = run_measured(box)
    eq(r2.rc, 0, str(r2))
    delivered(box, msgs)
    eq(box.maildir().tmp, [], "tmp/ after the second run")
    rss_bounded(rss, rss2, 512, "1 MiB RETR status line")


def endless(tmp, knob):
    msgs = gen(3, 1000, 2000)
    box = Box(tmp, msgs, fault_connections=[1], **{knob: [2]})
    box.configure(delete=True)
    r, rss = run_measured(box, timeout=90)
    limit = 2 * crlf_size(msgs[1]) + 64 * 1024 * 1024
    error_line(r, 76, what="message 2 does not end: more than %d octets where LIST "
               "announced %d" % (limit, crlf_size(msgs[1])))
    T.diag("%s: %.2f s" % (knob, r.duration))
    c = delivered(box, msgs[:1], "after the runaway")
    eq(c.cur, {}, "cur/")
    server_untouched(box)
    r2, rss2 = run_measured(box)
    eq(r2.rc, 0, str(r2))
    delivered(box, msgs, "after the second run")
    eq(box.maildir().tmp, [], "tmp/ after the second run")
    eq(sorted(box.srv.deleted_uidls()), box.uidls(), "deleted after the second run")
    # Streamed: 64 MiB went through, memory did not grow with it.
    rss_bounded(rss, rss2, 8 * 1024, knob)


@test("endless message data -> 76 past 2 x LIST size + 64 MiB, bounded memory")
def _(tmp):
    endless(tmp, "endless_retr")


@test("endless single line in a message -> 76, bounded memory")
def _(tmp):
    endless(tmp, "endless_line")


# ------------------------------------------------------------------ cuts

def cut_test(tmp, where, tls=None):
    n, k = 5, 3
    msgs = gen(n, 3000, 9000)
    cert = CERTS.server if tls else None
    box = Box(tmp, msgs, tls=tls, cert=cert, retr_cut_at={k: where},
              fault_connections=[1])
    box.configure(delete=True)
    r = box.run()
    error_line(r, 75, what_re=r"connection (lost|closed)")
    ok(any(e.startswith("RETR %d: sent" % k) for e in box.srv.events(1)),
       "the server cut RETR %d" % k, box.srv.events(1))
    c = delivered(box, msgs[:k - 1], "after the cut")
    eq(c.cur, {}, "cur/")
    for name in c.new:
        ok(c.new[name].endswith(b"\n"), "complete file " + name)
    server_untouched(box)
    not_contains(box.srv.commands(), "QUIT", "no QUIT after a cut")
    r2 = clean_second_run(box, msgs, delete=True)
    summary(r2, n - (k - 1), 0, n)
    retr2 = [ln for ln in box.srv.client_lines(2) if ln.startswith(b"RETR")]
    eq(retr2, [b"RETR %d" % i for i in range(k, n + 1)], "second run RETRs only the rest")


@test("connection cut in the RETR status line of message 3 of 5 -> 75, then exactly once")
def _(tmp):
    cut_test(tmp, "status")


@test("connection cut in the data of message 3 of 5 -> 75, then exactly once")
def _(tmp):
    cut_test(tmp, "data")


@test("connection cut just before the final dot of message 3 of 5 -> 75, then exactly once")
def _(tmp):
    cut_test(tmp, "before_dot")


@test("connection cut in the data of message 3 of 5 over TLS -> 75, then exactly once")
def _(tmp):
    cut_test(tmp, "data", tls="implicit")


# ------------------------------------------------------------------ LIST sizes

def list_size_test(tmp, delta):
    msgs = gen(3, 2000, 4000)
    real = crlf_size(msgs[1])
    box = Box(tmp, msgs, list_size_override={2: real + delta})
    r = box.run("-v")
    eq(r.rc, 0, str(r))
    delivered(box, msgs)
    m = re.search(r"^popfetch: %s: message 2 has (\d+) octets, LIST said (\d+)$" % NAME,
                  r.stderr, re.M)
    ok(m, "-v mentions the size difference", r.stderr)
    eq((int(m.group(1)), int(m.group(2))), (real, real + delta), "sizes in the note")
    not_contains(r.stderr, "message 1 has", "no note for a right size")
    summary(r, 3)
    r = box.run()
    summary(r, 0)
    not_contains(r.stderr, "LIST said", "without -v: no note")


@test("LIST size shorter than the message: delivered as sent, once, -v notes it")
def _(tmp):
    list_size_test(tmp, -700)


@test("LIST size longer than the message: delivered as sent, once, -v notes it")
def _(tmp):
    list_size_test(tmp, +5000)


# ------------------------------------------------------------------ dialogues

def dialogue_meta(path):
    with open(path, encoding="utf-8") as f:
        d = popserver.parse_dialogue(f.read())
    meta = {}
    for k, v in d.meta:
        meta.setdefault(k, []).append(v)
    return meta


def conf_value(v):
    if v in ("true", "false"):
        return v == "true"
    if re.fullmatch(r"\d+", v):
        return int(v)
    return v


def dialogue_test(fname):
    """Run popfetch against dialogues/FNAME.  Metadata:
         @exit N            exit code
         @error TEXT        the error line is exactly `popfetch: work: TEXT`
         @error_re RE       ... or matches RE (re.fullmatch on TEXT)
         @message ESC       a delivered message (Python escapes; repeat, in order)
         @conf KEY VALUE    an account option
         @never CMD         the client never sends CMD
         @complete          the server reached the end of the script
    """
    path = os.path.join(DIALOGUES, fname)
    meta = dialogue_meta(path)

    @test("dialogue %s: %s" % (fname, meta.get("title", [""])[0]))
    def _(tmp):
        box = Box(tmp, dialogue=path)
        for kv in meta.get("conf", []):
            k, _, v = kv.partition(" ")
            box.configure(**{k: conf_value(v.strip())})
        r = box.run()
        code = int(meta["exit"][0])
        if "error" in meta:
            eq(error_line(r, code), meta["error"][0], "error text")
        elif "error_re" in meta:
            text = error_line(r, code)
            ok(re.fullmatch(meta["error_re"][0], text), "error text matches",
               meta["error_re"][0], text)
        else:
            eq(r.rc, code, str(r))
        eq(box.srv.mismatches(), [], "no mismatch")
        want = [popserver.unescape(m) for m in meta.get("message", [])]
        c = box.maildir()
        eq(c.messages(strip_received=True), want, "delivered messages")
        eq(c.tmp, [], "tmp/")
        for cmd in meta.get("never", []):
            not_contains(box.srv.commands(), cmd, "client commands")
        if "complete" in meta:
            contains(box.srv.events(), "script complete")


for _f in ("pipelining-commands-sent-before-replies.dlg",
           "uidl-line-with-space-in-unique-id.dlg",
           "uidl-line-without-unique-id.dlg",
           "list-line-with-bad-size.dlg",
           "list-line-long-junk-is-cut-in-error.dlg",
           "retr-reply-neither-ok-nor-err.dlg",
           "uidl-reply-neither-ok-nor-err.dlg",
           "greeting-not-pop3.dlg"):
    dialogue_test(_f)


# ------------------------------------------------------------------ no UIDL

@test("server without UIDL, delete = false -> 76 with a clear message")
def _(tmp):
    box = Box(tmp, gen(3), uidl=False)
    r = box.run()
    text = error_line(r, 76, what_re=r"does not support UIDL")
    contains(text, "delete = true", "says what to do")
    eq(len(box.maildir()), 0, "nothing delivered")
    not_contains(box.srv.commands(), "RETR")
    server_untouched(box)


@test("server without UIDL, delete = true -> every message fetched and deleted")
def _(tmp):
    msgs = gen(4)
    box = Box(tmp, msgs, uidl=False)
    box.configure(delete=True)
    r = box.run()
    summary(r, 4, 0, 4)
    c = delivered(box, msgs)
    eq(c.tmp, [], "tmp/")
    eq(box.srv.deleted_uidls(), box.uidls(), "all deleted after QUIT")
    eq(box.srv.remaining_uidls(), [], "server empty")
    cmds = box.srv.commands()
    ok(cmds.index("QUIT") > max(i for i, c in enumerate(cmds) if c == "DELE"),
       "DELEs before QUIT")
    summary(box.run(), 0, 0, 0)
    delivered(box, msgs, "after an empty second run")


# ------------------------------------------------------------------ pipelining

def latency_run(tmp, n, pipelining):
    """Fetch n small messages from a server answering each command 20 ms
    after it arrived; the sandbox is on a tmpfs so that fsync costs nothing
    and the time measured is the protocol's."""
    tmpfs(os.path.join(tmp, "pf"), "64m")
    msgs = gen(n, 400, 1200, seed=5)
    box = Box(tmp, msgs, latency_ms=20, pipelining=pipelining)
    r = box.run(timeout=120)
    summary(r, n)
    delivered(box, msgs)
    retr = [ln for ln in box.client_lines() if ln.startswith(b"RETR")]
    eq(retr, [b"RETR %d" % i for i in range(1, n + 1)], "RETRs in order, once each")
    return r.duration


@test("PIPELINING: 300 messages with 20 ms latency, much faster than lock-step")
def _(tmp):
    n, lat = 300, 0.020
    t = latency_run(tmp, n, True)
    T.diag("pipelined: %d messages in %.2f s" % (n, t))
    # Lock-step pays the latency once per command: at least n x 20 ms = 6 s.
    ok(t < n * lat / 3 + SLOW, "pipelined: %.2f s < a third of lock-step's minimum "
       "%.1f s" % (t, n * lat))


@test("no PIPELINING: lock-step (each command waits for its reply), still correct")
def _(tmp):
    n, lat = 60, 0.020
    t = latency_run(tmp, n, False)
    T.diag("lock-step: %d messages in %.2f s" % (n, t))
    # Had the client pipelined anyway, the replies' latencies would overlap.
    ok(t >= n * lat, "lock-step: %.2f s >= %d x 20 ms" % (t, n))


# ------------------------------------------------------------------ XOAUTH2

TOKEN = "ya29.a0AfH6SMB-test-token_0123456789"


def xoauth2_box(tmp, token_printed, **knobs):
    msgs = gen(2)
    box = Box(tmp, msgs, tls="implicit", cert=CERTS.server, sasl=["XOAUTH2"],
              oauth_tokens={"alice": TOKEN}, user_cmd=False, **knobs)
    box.configure(auth="xoauth2", password=None,
                  password_command="printf '%%s\\n' '%s'" % token_printed)
    return box, msgs


def xoauth2_blob(token):
    return b"user=alice\x01auth=Bearer " + token.encode() + b"\x01\x01"


@test("XOAUTH2: token from password_command, initial-response form")
def _(tmp):
    box, msgs = xoauth2_box(tmp, TOKEN)
    r = box.run()
    summary(r, 2)
    delivered(box, msgs)
    auth = [ln for ln in box.client_lines() if ln.startswith(b"AUTH")]
    eq(len(auth), 1, "one AUTH")
    word, mech, ir = auth[0].split(b" ")
    eq(mech, b"XOAUTH2")
    eq(base64.b64decode(ir), xoauth2_blob(TOKEN), "initial response")
    not_contains(r.stderr, TOKEN)


@test("XOAUTH2: two-step form with a server that refuses initial responses")
def _(tmp):
    # A JWT-sized token (as Microsoft's): the AUTH line would pass 255
    # octets, so the two-step form is used, which this server requires.
    long_token = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9." + "A" * 1200 + ".sig"
    box, msgs = xoauth2_box(tmp, long_token, sasl_ir=False)
    box.srv.configure(oauth_tokens={"alice": long_token})
    r = box.run()
    summary(r, 2)
    lines = box.client_lines()
    i = lines.index(b"AUTH XOAUTH2")
    eq(base64.b64decode(lines[i + 1]), xoauth2_blob(long_token), "response to '+ '")
    not_contains(box.srv.events(), "initial response refused (sasl_ir = false)")


@test("XOAUTH2: two-step form with a short token (server without SASL-IR)")
def _(tmp):
    # The server lists SASL and AUTH-RESP-CODE in CAPA, yet answers the
    # initial response with a bare -ERR: popfetch.conf(5), the two-step form.
    box, msgs = xoauth2_box(tmp, TOKEN, sasl_ir=False)
    r = box.run()
    summary(r, 2)
    delivered(box, msgs)
    lines = box.client_lines()
    auth = [ln for ln in lines if ln.startswith(b"AUTH")]
    eq(auth, [b"AUTH XOAUTH2 " + base64.b64encode(xoauth2_blob(TOKEN)), b"AUTH XOAUTH2"],
       "initial response, then the two-step form")
    contains(box.srv.events(), "initial response refused (sasl_ir = false)")
    i = lines.index(b"AUTH XOAUTH2")
    eq(base64.b64decode(lines[i + 1]), xoauth2_blob(TOKEN), "response to '+ '")
    not_contains(r.stderr, TOKEN)


@test("XOAUTH2: bare -ERR to the initial response without AUTH-RESP-CODE -> 77, one AUTH")
def _(tmp):
    # Without AUTH-RESP-CODE a bare -ERR may be a rejected token: final.
    box, msgs = xoauth2_box(tmp, TOKEN, sasl_ir=False, resp_codes=False)
    r = box.run()
    error_line(r, 77, what="authentication failed (XOAUTH2)",
               server="-ERR Initial response not supported.")
    eq(len([ln for ln in box.client_lines() if ln.startswith(b"AUTH")]), 1, "one AUTH")
    eq(len(box.maildir()), 0, "nothing delivered")
    server_untouched(box)


@test("XOAUTH2: error challenge answered with an empty line -> 77")
def _(tmp):
    box, msgs = xoauth2_box(tmp, "expired-token-123")
    r = box.run()
    error_line(r, 77, server="-ERR [AUTH] Authentication failed.")
    lines = box.client_lines()
    auth = [i for i, ln in enumerate(lines) if ln.startswith(b"AUTH")]
    eq(len(auth), 1, "one AUTH")
    eq(lines[auth[0] + 1], b"", "the error challenge is answered with an empty line")
    not_contains(box.srv.events(), "XOAUTH2: client answered the error challenge with data")
    eq(len(box.maildir()), 0, "nothing delivered")
    not_contains(r.stderr, "expired-token-123")
    server_untouched(box)


# ------------------------------------------------------------------ SCRAM

@test("SCRAM: wrong server signature -> 77, never logged in, no other mechanism")
def _(tmp):
    box = Box(tmp, gen(2), tls="implicit", cert=CERTS.server,
              sasl=["SCRAM-SHA-256", "PLAIN"], scram_bad_signature=True)
    r = box.run()
    error_line(r, 77, what_re=r"signature")
    auth = [ln.split(b" ")[1] for ln in box.client_lines() if ln.startswith(b"AUTH")]
    eq(auth, [b"SCRAM-SHA-256"], "no fallback to a mechanism revealing the password")
    not_contains(box.srv.commands(), "USER")
    not_contains(box.srv.events(), "authenticated as alice")
    eq(len(box.maildir()), 0, "nothing delivered")
    server_untouched(box)


@test("SCRAM rejected inside TLS (auth = auto) -> one attempt with PLAIN succeeds")
def _(tmp):
    msgs = gen(2)
    box = Box(tmp, msgs, tls="implicit", cert=CERTS.server,
              sasl=["SCRAM-SHA-256", "PLAIN"], sasl_reject=["SCRAM-SHA-256"])
    r = box.run()
    summary(r, 2)
    delivered(box, msgs)
    auth = [ln.split(b" ")[1] for ln in box.client_lines() if ln.startswith(b"AUTH")]
    eq(auth, [b"SCRAM-SHA-256", b"PLAIN"], "SCRAM, then PLAIN")
    eq(box.srv.events().count("authentication failed"), 1, "one rejection")


@test("SCRAM rejected and PLAIN rejected inside TLS -> 77 after two attempts")
def _(tmp):
    box = Box(tmp, gen(2), tls="implicit", cert=CERTS.server,
              sasl=["SCRAM-SHA-256", "PLAIN"], sasl_reject=["SCRAM-SHA-256", "PLAIN"])
    r = box.run()
    error_line(r, 77, server="-ERR [AUTH] Authentication failed.")
    auth = [ln.split(b" ")[1] for ln in box.client_lines() if ln.startswith(b"AUTH")]
    eq(auth, [b"SCRAM-SHA-256", b"PLAIN"], "exactly two attempts")
    not_contains(box.srv.commands(), "USER", "no third attempt")


# ------------------------------------------------------------------ disk full

@test("disk full: 256 KiB tmpfs Maildir -> 74, nothing partial, nothing deleted")
def _(tmp):
    mnt = os.path.join(tmp, "small")
    tmpfs(mnt, "256k")
    g = pftest.MailGen(42)
    # The first message is over MAILDIR_WRITE_BUF, so it is written while
    # it arrives, before the second fills the disk.  (A smaller one is
    # written by a sync thread, which can lose the race for the last free
    # blocks to the second: then it too is fetched again next run, with
    # a second error line; nothing is lost either way.)
    msgs = [g.message(80000), g.message(600000), g.message(20000)]
    box = Box(tmp, msgs)
    box.configure(maildir=os.path.join(mnt, "Mail"), delete=True)
    box.md = os.path.join(mnt, "Mail")
    r = box.run()
    text = error_line(r, 74, what_re=r"No space left on device")
    c = delivered(box, msgs[:1], "after the failure")
    eq(c.cur, {}, "cur/")
    T.diag("tmp/ after the failure: %r" % (c.tmp,))
    ok(len(c.tmp) <= 1, "at most one leftover in tmp/", c.tmp)
    server_untouched(box)
    not_contains(box.srv.commands(), "QUIT")
    T.diag(text)
    p = subprocess.run(["mount", "-o", "remount,size=4m", mnt],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    eq(p.returncode, 0, "remount: %s" % p.stdout.decode(errors="replace"))
    r2 = clean_second_run(box, msgs, delete=True)
    summary(r2, 2, 0, 3)


# ------------------------------------------------------------------ max_size

@test("max_size: a larger message is skipped and stays on the server")
def _(tmp):
    g = pftest.MailGen(7)
    msgs = [g.message(2000), g.message(12000), g.message(3000)]
    box = Box(tmp, msgs)
    box.configure(max_size=8000, delete=True)
    r = box.run()
    summary(r, 2, 1, 2)
    delivered(box, [msgs[0], msgs[2]])
    not_contains(box.client_lines(), b"RETR 2")
    not_contains(box.client_lines(), b"DELE 2")
    eq(box.srv.deleted_uidls(), ["uid-1", "uid-3"], "deleted")
    eq(box.srv.remaining_uidls(), ["uid-2"], "the big one stays")
    r = box.run()
    summary(r, 0, 1, 0)
    eq(box.srv.remaining_uidls(), ["uid-2"], "still there")


# ------------------------------------------------------------------ server bytes on the terminal
# Issue 12, item 2: a server's C1 controls (0x9B is the 8-bit CSI, ESC [),
# invalid UTF-8 and C0 controls must not reach the terminal or the log raw.
# Every such byte is shown as \xNN, a backslash the server sent as \\, and
# valid UTF-8 stays readable.  stderr is read as bytes here: Result decodes
# it with errors="replace", which would hide a raw 0x9B.

HOSTILE_PASS_REPLY = (r"-ERR [AUTH] \x9b2J \xc2\x9b31m \xff\xfe\xc0\xaf "
                      r"Gr\xc3\xbc\xc3\x9fe \\x9b\r\n")
# ... as the error line must show it (Python text: "\\" is one backslash).
HOSTILE_PASS_SHOWN = ("-ERR [AUTH] \\x9b2J \\xc2\\x9b31m \\xff\\xfe\\xc0\\xaf "
                      "Gr\u00fc\u00dfe \\\\x9b")


def hostile_dialogue(tmp, reply):
    """A dialogue file in tmp: login with USER/PASS, PASS answered by the
    raw bytes `reply` (SEND_RAW escapes)."""
    path = os.path.join(tmp, "hostile.dlg")
    with open(path, "w", encoding="ascii") as f:
        f.write("S: +OK popserver ready\n"
                "C: CAPA\n"
                "S: +OK Capability list follows\n"
                "S: USER\n"
                "S: .\n"
                "C: USER alice\n"
                "S: +OK\n"
                "C: PASS secret\n"
                "SEND_RAW " + reply + "\n"
                "WAIT_EOF\n")
    return path


def raw_run(box, *args):
    """box.run(), with stdout and stderr kept as bytes."""
    p = subprocess.run(box.pf.command(("fetch",) + args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, env=box.pf.env(), cwd=box.pf.dir,
                       timeout=60)
    box.srv.wait_closed(10)
    return p


def raw_error_line(p, code, server):
    """error_line() on a raw run, after checking its bytes."""
    err = pftest.terminal_safe(p.stderr, "stderr")
    r = pftest.Result(p.args, p.returncode, p.stdout.decode("utf-8", "replace"),
                      err, False, 0.0)
    return error_line(r, code, server=server)


@test("-ERR with raw CSI 0x9B, C1 in UTF-8, invalid UTF-8 -> 77, all escaped, UTF-8 kept")
def _(tmp):
    box = Box(tmp, dialogue=hostile_dialogue(tmp, HOSTILE_PASS_REPLY))
    p = raw_run(box)
    raw_error_line(p, 77, HOSTILE_PASS_SHOWN)
    not_contains(p.stderr, b"\x9b", "no raw CSI byte")
    contains(p.stderr, "Gr\u00fc\u00dfe".encode(), "valid UTF-8 shown as it is")
    eq(box.srv.mismatches(), [], "no mismatch")


@test("-ERR with ESC [2J, OSC and BEL in a status line -> 76, escaped")
def _(tmp):
    box = Box(tmp, dialogue=hostile_dialogue(
        tmp, r"-ERR \x1b[2J\x1b]0;owned\x07 \x9b0c bye\r\n"))
    p = raw_run(box)
    raw_error_line(p, 76, "-ERR \\x1b[2J\\x1b]0;owned\\x07 \\x9b0c bye")
    not_contains(p.stderr, b"\x1b", "no raw ESC")
    not_contains(p.stderr, b"\x07", "no raw BEL")


@test("-vv: trace lines of hostile server bytes are escaped too")
def _(tmp):
    box = Box(tmp, dialogue=hostile_dialogue(tmp, HOSTILE_PASS_REPLY))
    p = raw_run(box, "-vv")
    eq(p.returncode, 77, "exit code")
    text = pftest.terminal_safe(p.stderr, "stderr with -vv")
    # The trace keeps backslashes (lib/log.c): the server's literal "\x9b"
    # stays "\x9b"; the error line (escaped at its source) doubles it.
    contains(text, "%s: < -ERR [AUTH] \\x9b2J \\xc2\\x9b31m \\xff\\xfe\\xc0\\xaf "
             "Gr\u00fc\u00dfe \\x9b\n" % NAME, "the PASS reply's trace line")
    contains(text, ": " + HOSTILE_PASS_SHOWN + "\n", "the error line")


T.done()
