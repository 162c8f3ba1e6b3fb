#!/usr/bin/env python3
"""TLS session resumption across runs against a real Dovecot
(popfetch.conf(5) tls_resume, doc/DESIGN.md §12): the second run resumes
(implicit TLS and STARTTLS), a change of any TLS setting means a full
handshake, tls_resume = false keeps nothing, the file is 0600 and per
account, a corrupt or expired one is ignored, a pin is still checked, and
`check` or a failed verification never keeps a session.

Which handshake a run did is read from its -v line ("TLS session resumed" /
"TLS full handshake"), which says what OpenSSL reports for the connection
(SSL_session_reused); tests/unit/test_net.c checks the same on the server
side, and that a pin is checked on a resumed session.

Dovecot runs its login processes in "high-security mode" by default
(service_count = 1: a new pop3-login process per connection).  Each
process makes its own session-ticket key, so a ticket from one connection
means nothing to the next process and no client can resume.  The shared
Dovecot here runs pop3-login in "high-performance mode" (service_count =
0: long-lived processes, one ticket key), as a server that wants resumption
must; one test runs a default Dovecot to show that popfetch then simply does
full handshakes.
"""

import os
import shutil
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pftest  # noqa: E402
from pftest import eq, ok, contains, not_contains  # noqa: E402

T = pftest.Suite(__file__)
later = T.later
S = {}
CERTS = T.certs()

# One pop3-login process serves every connection: one ticket key.
PERFORMANCE_MODE = """\
service pop3-login {
  service_count = 0
  process_min_avail = 1
}
"""

RESUMED = "TLS session resumed"
FULL = "TLS full handshake"
NUSERS = 20


def dovecot():
    if "dc" not in S:
        raise AssertionError("Dovecot did not start (see test 1)")
    return S["dc"]


def new_user():
    S["nuser"] = S.get("nuser", 0) + 1
    ok(S["nuser"] <= NUSERS, "enough users in the pool")
    return "r%02d" % S["nuser"]


class Box:
    """A mail user on the shared Dovecot and a popfetch sandbox for it."""

    def __init__(self, tmp, name="work", tls="implicit", dc=None, **opts):
        self.dc = dc or dovecot()
        self.user = new_user() if dc is None else "d01"
        self.name = name
        self.tls = tls
        self.pf = pftest.Popfetch(tmp)
        self.md = self.pf.path("Mail/" + name)
        self.opts = opts
        self.configure()

    def configure(self, tls=None, **opts):
        if tls is not None:
            self.tls = tls
            self.opts.pop("port", None)
        self.opts.update(opts)
        o = self.dc.account_options(self.user, tls=self.tls)
        o.update(self.opts)
        self.pf.write_config(pftest.account_conf(self.name, maildir=self.md, **o))

    def run(self, *args, **kw):
        return self.pf.run(*args, **kw)

    def fetch(self, rc=0, env=None):
        return self.run("-v", "fetch", env=env).expect(rc)

    def session_file(self, name=None):
        return os.path.join(self.pf.state_dir, "tls-session." + (name or self.name))


def handshake(r):
    """'resumed' or 'full' from a -v run (exactly one of them)."""
    res, full = RESUMED in r.stderr, FULL in r.stderr
    ok(res != full, "exactly one handshake line", str(r))
    return "resumed" if res else "full"


def private_file(path):
    ok(os.path.isfile(path), "session file exists: " + path)
    st = os.stat(path)
    eq(st.st_mode & 0o7777, 0o600, "mode 0600")
    eq(st.st_uid, os.geteuid(), "owner")
    ok(st.st_size > 100, "not empty", st.st_size)


def no_secret_in(r, path):
    """Nothing of the session file shows in the output: no 16-byte piece
    of it, hex or raw."""
    data = open(path, "rb").read()
    out = r.output
    for i in range(0, len(data) - 16, 16):
        piece = data[i:i + 16]
        not_contains(out, piece.hex(), "session bytes (hex) in the output")
        not_contains(out.lower(), piece.hex(), "session bytes (hex) in the output")


# ------------------------------------------------------------------ set-up

@T.test("dovecot starts in high-performance login mode (service_count = 0)")
def _(tmp):
    dc = pftest.Dovecot(tmp, CERTS, extra_conf=PERFORMANCE_MODE)
    T.add_cleanup(dc.stop)
    for i in range(1, NUSERS + 1):
        dc.add_user("r%02d" % i, "pw-r%02d-resume" % i)
    dc.start()
    S["dc"] = dc


# ------------------------------------------------------------------ resumption

@T.test("implicit TLS: the first run does a full handshake and keeps the "
        "session (0600, nothing of it printed); the next runs resume and fetch")
def _(tmp):
    box = Box(tmp)
    r = box.fetch()
    eq(handshake(r), "full", "first run")
    contains(r.stderr, "no TLS session to resume (no session file)", "why")
    private_file(box.session_file())
    no_secret_in(r, box.session_file())
    for i in range(2):
        box.dc.add_messages(box.user, pftest.MailGen(10 + i).messages(1, 800, 1200))
        r = box.fetch()
        eq(handshake(r), "resumed", "run %d" % (i + 2))
        contains(r.stderr, "1 new", "the message came over the resumed session")
        private_file(box.session_file())
        no_secret_in(r, box.session_file())
    eq(len(pftest.read_maildir(box.md)), 2, "both delivered")
    # Only the file itself: no temporary file left behind.
    eq(sorted(f for f in os.listdir(box.pf.state_dir) if "tls" in f),
       ["tls-session.work"], "state_dir")


@T.test("STARTTLS: the second run resumes the session of the first")
def _(tmp):
    box = Box(tmp, tls="starttls")
    eq(handshake(box.fetch()), "full", "first run")
    private_file(box.session_file())
    eq(handshake(box.fetch()), "resumed", "second run")
    eq(handshake(box.fetch()), "resumed", "third run")


@T.test("--dry-run offers the stored session but writes none "
        "(popfetch(1): a dry run writes nothing)")
def _(tmp):
    box = Box(tmp)
    r = box.run("-v", "fetch", "--dry-run").expect(0)
    eq(handshake(r), "full", "dry run, nothing stored")
    ok(not os.path.exists(box.session_file()), "a dry run keeps no session")
    eq(handshake(box.fetch()), "full", "first real run")
    before = open(box.session_file(), "rb").read()
    st = os.stat(box.session_file())
    r = box.run("-v", "fetch", "--dry-run").expect(0)
    eq(handshake(r), "resumed", "dry run")
    eq(open(box.session_file(), "rb").read(), before, "file unchanged")
    eq(os.stat(box.session_file()).st_ino, st.st_ino, "not replaced")
    box.configure(tls_resume=False)
    box.run("-v", "fetch", "--dry-run").expect(0)
    ok(os.path.exists(box.session_file()),
       "tls_resume = false: a dry run does not remove the file either")


@T.test("two accounts with the same user on the same server: a file each, "
        "each resumes its own")
def _(tmp):
    box = Box(tmp)
    o = box.dc.account_options(box.user)
    box.pf.write_config(
        pftest.account_conf("a", maildir=box.pf.path("Mail/a"), **o) +
        pftest.account_conf("b", maildir=box.pf.path("Mail/b"), **o))
    r = box.run("-v", "fetch").expect(0)
    ok(r.stderr.count(FULL) == 2, "two full handshakes", str(r))
    private_file(box.session_file("a"))
    private_file(box.session_file("b"))
    ok(open(box.session_file("a"), "rb").read() !=
       open(box.session_file("b"), "rb").read(), "two different sessions")
    r = box.run("-v", "fetch").expect(0)
    ok(r.stderr.count(RESUMED) == 2, "both resumed", str(r))
    # b's file under a's name: a's settings digest differs (the account
    # name is part of it), so it is not used.
    shutil.copy(box.session_file("b"), box.session_file("a"))
    r = box.run("-v", "fetch", "-a", "a").expect(0)
    eq(handshake(r), "full", "a does not take b's session")
    contains(r.stderr, "TLS settings changed", "why")


# ------------------------------------------------------------------ invalidation

def changed_means_full(box, what, **change):
    """After a resumed run, a change means a full handshake (with the
    reason), after which the next run resumes again."""
    eq(handshake(box.fetch()), "resumed", "resumed before changing " + what)
    box.configure(**change)
    r = box.fetch()
    eq(handshake(r), "full", "after changing " + what)
    contains(r.stderr, "TLS settings changed", "why, after changing " + what)
    eq(handshake(box.fetch()), "resumed", "resumed again after " + what)


@T.test("changing tls_ca_file, the CA file itself, tls_fingerprint, tls "
        "and port each mean a full handshake")
def _(tmp):
    box = Box(tmp)
    eq(handshake(box.fetch()), "full", "first run")
    copy = os.path.join(tmp, "ca-copy.pem")
    shutil.copy(box.dc.ca_file, copy)
    changed_means_full(box, "tls_ca_file", tls_ca_file=copy)
    # The same path with new contents: a new trust.
    with open(copy, "a") as f:
        f.write("\n")
    st = os.stat(copy)
    os.utime(copy, ns=(st.st_atime_ns, st.st_mtime_ns + 1000000000))
    r = box.fetch()
    eq(handshake(r), "full", "after rewriting the CA file")
    contains(r.stderr, "TLS settings changed", "why")
    changed_means_full(box, "tls_fingerprint",
                       tls_fingerprint=box.dc.cert.fingerprint)
    changed_means_full(box, "tls and port", tls="starttls")
    changed_means_full(box, "tls and port back", tls="implicit")


@T.test("a pin that no longer matches fails on a session that was resumable "
        "(69) and removes the file; tls_verify = false keeps nothing")
def _(tmp):
    box = Box(tmp, tls_fingerprint=dovecot().cert.fingerprint)
    eq(handshake(box.fetch()), "full", "first run")
    eq(handshake(box.fetch()), "resumed", "second run, pinned")
    box.configure(tls_fingerprint=CERTS.server2.fingerprint)
    r = box.fetch(rc=69)
    contains(r.stderr, "fingerprint mismatch", "the pin")
    ok(not os.path.exists(box.session_file()), "session file removed")
    # No pin, no verification: nothing verified, nothing kept.
    box.configure(tls_fingerprint=None, tls_verify=False)
    r = box.fetch()
    eq(handshake(r), "full", "tls_verify = false")
    eq(handshake(box.fetch()), "full", "tls_verify = false, again")
    ok(not os.path.exists(box.session_file()), "no session file")


@T.test("a certificate that no longer verifies: 69, the file is removed "
        "by a fetch; check (which changes nothing) leaves it")
def _(tmp):
    box = Box(tmp)
    eq(handshake(box.fetch()), "full", "first run")
    before = open(box.session_file(), "rb").read()
    # A CA that did not sign the server's certificate.
    box.configure(tls_ca_file=CERTS.selfsigned.cert)
    r = box.run("-v", "check").expect(69)
    contains(r.stdout + r.stderr, "certificate verify failed", "check refused")
    eq(open(box.session_file(), "rb").read(), before, "check left the file")
    r = box.fetch(rc=69)
    contains(r.stderr, "certificate verify failed", "refused")
    ok(not os.path.exists(box.session_file()), "removed after the failure")
    r = box.run("-v", "check").expect(69)
    ok(not os.path.exists(box.session_file()), "check kept nothing")


@T.test("check does a full handshake and neither uses nor keeps a session")
def _(tmp):
    box = Box(tmp)
    r = box.run("-v", "check").expect(0)
    eq(handshake(r), "full", "check")
    ok(not os.path.exists(box.session_file()), "check keeps nothing")
    box.fetch()
    before = open(box.session_file(), "rb").read()
    r = box.run("-v", "check").expect(0)
    eq(handshake(r), "full", "check with a session stored")
    eq(open(box.session_file(), "rb").read(), before, "file untouched")


@T.test("tls_resume = false: no file written, an old one removed, never "
        "resumed; popfetch config shows the setting")
def _(tmp):
    box = Box(tmp)
    r = box.run("config").expect(0)
    contains(r.stdout, "tls_resume = true ", "default shown")
    eq(handshake(box.fetch()), "full", "first run")
    ok(os.path.exists(box.session_file()), "kept while on")
    box.configure(tls_resume=False)
    r = box.run("config").expect(0)
    contains(r.stdout, "tls_resume = false ", "setting shown")
    for i in range(3):
        r = box.fetch()
        eq(handshake(r), "full", "run %d with tls_resume = false" % (i + 1))
        ok(not os.path.exists(box.session_file()), "no file (run %d)" % (i + 1))
    eq([f for f in os.listdir(box.pf.state_dir) if "tls" in f], [], "no file at all")


@T.test("a corrupt session file (cut, garbage, a changed byte, empty) is "
        "ignored: a full handshake, exit 0, and a good file again")
def _(tmp):
    box = Box(tmp)
    box.fetch()
    good = open(box.session_file(), "rb").read()
    bad = {
        "cut": good[:len(good) // 2],
        "garbage": b"\x00garbage\xff" * 50,
        "changed byte": good[:200] + bytes([good[200] ^ 0x01]) + good[201:],
        "empty": b"",
    }
    for what, data in bad.items():
        with open(box.session_file(), "wb") as f:
            f.write(data)
        os.chmod(box.session_file(), 0o600)
        r = box.fetch()
        eq(handshake(r), "full", what)
        contains(r.stderr, "corrupt", "why: " + what)
        private_file(box.session_file())
        eq(handshake(box.fetch()), "resumed", "resumed after " + what)
    # Readable by others: not ours to trust; replaced by a private one.
    os.chmod(box.session_file(), 0o644)
    r = box.fetch()
    eq(handshake(r), "full", "group/other-readable file")
    private_file(box.session_file())


@T.test("a stored session past its lifetime (libfaketime, +2 days) is not "
        "offered")
def _(tmp):
    box = Box(tmp)
    box.fetch()
    # The CA file's mtime is part of the settings digest: file times real.
    r = box.fetch(env=pftest.util.fake_env("+2d", fake_stat=False))
    eq(handshake(r), "full", "two days later")
    contains(r.stderr, "expired", "why")


@T.test("Dovecot's default login mode (service_count = 1): offered, not "
        "resumed, every run still works; after 3 declines none offered for a day")
def _(tmp):
    dc = pftest.Dovecot(tmp, CERTS)
    later(dc.stop)
    dc.add_user("d01", "pw-d01")
    dc.start()
    box = Box(os.path.join(tmp, "pf"), dc=dc)
    eq(handshake(box.fetch()), "full", "first run")
    for i in range(3):
        r = box.fetch()
        eq(handshake(r), "full", "run %d: a new login process, a new ticket key"
           % (i + 2))
        not_contains(r.stderr, "no TLS session to resume", "it was offered")
        contains(r.stderr, "the server did not resume the session offered",
                 "and the -v line says so")
    # Three declined in a row (TLS_RESUME_DECLINES): for a day nothing is
    # offered, nor parsed, nor stored; the file stays as it is.
    path = box.session_file()
    before = (os.stat(path).st_ino, os.stat(path).st_mtime_ns, open(path, "rb").read())
    for i in range(2):
        r = box.fetch()
        eq(handshake(r), "full", "muted run %d" % (i + 1))
        contains(r.stderr, "no TLS session to resume (the server declined the "
                 "last 3 sessions offered", "muted run %d: not offered" % (i + 1))
        eq((os.stat(path).st_ino, os.stat(path).st_mtime_ns, open(path, "rb").read()),
           before, "muted run %d: the file untouched" % (i + 1))
    # A day later: the stored session has expired (a full handshake, a new
    # one stored), and the run after that offers it again.
    env = pftest.util.fake_env("+2d", fake_stat=False)
    r = box.fetch(env=env)
    contains(r.stderr, "expired", "a day later: the old session expired")
    ok(open(path, "rb").read() != before[2], "a new session stored")
    r = box.fetch(env=env)
    contains(r.stderr, "the server did not resume the session offered",
             "a day later: offered again")
    r = box.fetch(env=env)
    contains(r.stderr, "the server declined the last 3 sessions offered",
             "declined again: muted again")


T.done()
