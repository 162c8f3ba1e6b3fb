#!/usr/bin/env python3
"""popfetch's command line against a real Dovecot: authentication modes,
password_command, secrets kept out of output / state / process list,
status (text and JSON), accounts, check, several accounts and their exit
codes, --version / --help / usage errors, configuration errors.

One Dovecot serves the whole script; every test has its own mail user(s)
and its own popfetch sandbox.
"""

import base64
import datetime
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
import zlib

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pftest  # noqa: E402
from pftest import eq, ok, contains, not_contains, like  # noqa: E402

T = pftest.Suite(__file__)
S = {}

# A password that cannot turn up by chance (no ':' for the passwd-file).
SECRET = "Zq7-%s-uNiQuE_pw" % os.urandom(4).hex()
CLIENT_SECRET = "Cs9-%s-oAuTh2_secret" % os.urandom(4).hex()
NUSERS = 80

ISO_Z = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"


# ------------------------------------------------------------------ helpers

def dovecot():
    if "dc" not in S:
        raise AssertionError("Dovecot did not start (see test 1)")
    return S["dc"]


def new_user(secret=False):
    """A fresh user with an empty mailbox; with secret=True one whose
    password is SECRET.  The users are made before Dovecot starts: it
    re-reads a changed passwd-file only when its mtime moves to another
    second, so users added in quick succession would be unknown."""
    while True:
        S["nuser"] = S.get("nuser", 0) + 1
        ok(S["nuser"] <= NUSERS, "enough users in the pool")
        if (S["nuser"] % 2 == 1) == secret:
            return "c%02d" % S["nuser"]


def one(tmp, msgs=(), name="work", tls="implicit", **extra):
    """One user, messages, one account; returns (pf, user, maildir)."""
    user = new_user()
    if msgs:
        dovecot().add_messages(user, list(msgs))
    pf = pftest.Popfetch(tmp)
    md = pf.path("Mail/" + name)
    o = dovecot().account_options(user, tls=tls)
    o.update(extra)
    o = {k: v for k, v in o.items() if v is not None}
    pf.write_config(pftest.account_conf(name, maildir=md, **o))
    return pf, user, md


def summary_like(text, name, new, skipped=0, deleted=0):
    like(text, r"(?m)^%s: %d new, %d skipped, %d deleted, \d+(\.\d+)? [kMG]?B in "
         r"\d+(\.\d+)? s$" % (re.escape(name), new, skipped, deleted),
         "summary of " + name)


def error_line(r, name):
    """stderr is exactly one error line for the account, popfetch(1)."""
    eq(r.stdout, "", "stdout")
    m = re.fullmatch(r"popfetch: %s: (.+)\n" % re.escape(name), r.stderr)
    ok(m, "one error line 'popfetch: %s: ...'" % name, r.stderr)
    return m.group(1)


def no_database(pf, what):
    ok(not os.path.exists(os.path.join(pf.state_dir, "popfetch.db")),
       what + ": no database created", pf.state_dir)
    if os.path.isdir(pf.state_dir):
        eq([f for f in os.listdir(pf.state_dir) if not f.startswith("lock")], [],
           what + ": nothing but a lock file in the state dir")


def trace_lines(stderr, name="work"):
    """The client lines of a -vv protocol trace."""
    return re.findall(r"(?m)^%s: > (.*)$" % re.escape(name), stderr)


def no_secret(text, what, secret=SECRET):
    for form in (secret, base64.b64encode(secret.encode()).decode()):
        not_contains(text, form, what)


def login_methods(user, want=None):
    """Dovecot's log: the login methods used by user, in order.  Dovecot
    logs asynchronously: with want (a count), wait until that many are
    there; without, wait until the log has settled."""
    pat = r"Login: user=<%s>, method=([A-Z0-9-]+)" % re.escape(user)
    dc = dovecot()
    if want is None:
        return re.findall(pat, dc.settled_log())
    pftest.wait_for(lambda: len(re.findall(pat, dc.log())) >= want, 10)
    return re.findall(pat, dc.log())


# ------------------------------------------------------------------ set-up

@T.test("dovecot starts (shared by every test of this script)")
def _(tmp):
    dc = pftest.Dovecot(tmp, T.certs())
    T.add_cleanup(dc.stop)
    for i in range(1, NUSERS + 1):
        dc.add_user("c%02d" % i, SECRET if i % 2 else "pw-c%02d-cli" % i)
    dc.start()
    S["dc"] = dc


# ------------------------------------------------------------------ auth

def auth_test(tmp, auth, mech_trace, dovecot_method, tls="implicit", **extra):
    msgs = pftest.MailGen(zlib.crc32(auth.encode())).messages(2, 800, 2000)
    pf, user, md = one(tmp, msgs, tls=tls, auth=auth, **extra)
    r = pf.run("fetch", "-v", "-v").expect(0)
    cl = trace_lines(r.stderr)
    ok(any(re.match(mech_trace, ln) for ln in cl), "trace shows %s" % mech_trace,
       "\n".join(cl))
    summary_like(r.stderr, "work", 2)
    eq(pftest.read_maildir(md).messages(strip_received=True),
       [pftest.pop3_expected(m) for m in msgs], "delivered")
    eq(login_methods(user, 1), [dovecot_method], "Dovecot's login method")
    return r, cl, md


@T.test("auth = user: USER/PASS over implicit TLS, 'PASS ****' in the trace")
def _(tmp):
    r, cl, md = auth_test(tmp, "user", r"^PASS \*\*\*\*$", "PLAIN")
    not_contains("\n".join(cl), "AUTH ", "no SASL")


@T.test("auth = plain: SASL PLAIN, masked in the trace")
def _(tmp):
    r, cl, md = auth_test(tmp, "plain", r"^AUTH PLAIN( \*\*\*\*)?$", "PLAIN")
    ok(not any(ln.startswith(("USER", "PASS")) for ln in cl), "no USER/PASS", cl)


@T.test("auth = scram-sha-256: SCRAM-SHA-256, masked in the trace")
def _(tmp):
    auth_test(tmp, "scram-sha-256", r"^AUTH SCRAM-SHA-256( \*\*\*\*)?$", "SCRAM-SHA-256")


@T.test("auth = apop over tls = none without allow_plaintext_password")
def _(tmp):
    r, cl, md = auth_test(tmp, "apop", r"^APOP c\d\d \*\*\*\*$", "APOP", tls="none")
    ok(not any(ln.startswith(("PASS", "AUTH")) for ln in cl), "no clear-text password", cl)
    like(pftest.read_maildir(md).messages()[0].decode("utf-8", "replace"),
         r"^Received: .* with POP3 id ", "Received: with POP3")


@T.test("auth = auto picks SCRAM-SHA-256 (-vv trace)")
def _(tmp):
    r, cl, md = auth_test(tmp, "auto", r"^AUTH SCRAM-SHA-256( \*\*\*\*)?$", "SCRAM-SHA-256")
    auths = [ln for ln in cl if ln.startswith(("AUTH", "USER", "APOP"))]
    like(auths[0], r"^AUTH SCRAM-SHA-256", "first mechanism tried")
    eq(len(auths), 1, "one attempt: " + repr(auths))


@T.test("tls = none with USER/PASS and allow_plaintext_password = true works")
def _(tmp):
    auth_test(tmp, "user", r"^PASS \*\*\*\*$", "PLAIN", tls="none",
              allow_plaintext_password=True)


@T.test("tls = none with auth = user and no allow_plaintext_password: 78 "
        "before any connection")
def _(tmp):
    port = pftest.free_port()        # nothing listens: connecting would be 75
    pf, user, md = one(tmp, tls="none", auth="user", port=port)
    r = pf.run("fetch")
    eq(r.rc, 78, str(r))
    contains(r.stderr, "allow_plaintext_password", "names the option")
    ok(not os.path.exists(md), "no Maildir")


@T.test("wrong password: exit 77, one line 'popfetch: NAME: ...', nothing delivered")
def _(tmp):
    pf, user, md = one(tmp, pftest.MailGen(5).messages(2, 800, 2000),
                       password="wrong-" + SECRET)
    r = pf.run("fetch")
    eq(r.rc, 77, str(r))
    what = error_line(r, "work")
    like(what, r"(?i)auth|password|login", "says what failed")
    no_secret(r.stderr, "error line")
    eq(len(pftest.read_maildir(md)), 0, "nothing delivered")
    eq(dovecot().server_message_count(user), 2, "server unchanged")
    # user/pass too
    pf.write_config(pftest.account_conf("work", maildir=md, **dict(
        dovecot().account_options(user), password="wrong", auth="user")))
    r = pf.run("fetch")
    eq(r.rc, 77, str(r))
    error_line(r, "work")


@T.test("a local failure is reported before a network one: Maildir path "
        "taken by a file -> 74 with the server up or down, no password_command "
        "run, no login; the run is recorded")
def _(tmp):
    pf, user, md = one(tmp, pftest.MailGen(21).messages(2, 800, 2000))
    os.makedirs(os.path.dirname(md), exist_ok=True)
    with open(md, "w") as f:
        f.write("not a Maildir\n")
    # The Maildir is opened while popfetch connects (design note, steps 2
    # and 3 side by side): its error still comes first, and alone.
    r = pf.run("fetch")
    eq(r.rc, 74, str(r))
    contains(error_line(r, "work"), md, "the error names the Maildir")
    eq(dovecot().server_message_count(user), 2, "nothing deleted")
    st = json.loads(pf.run("status", "--json").expect(0).stdout)[0]
    eq(st["last_exit"], 74, "status: the run is recorded with its code")
    pf.write_config(pftest.account_conf("work", maildir=md, **dict(
        dovecot().account_options(user), port=pftest.free_port())))
    r = pf.run("fetch")
    eq(r.rc, 74, "server down too: still 74, " + str(r))
    contains(error_line(r, "work"), md, "the error names the Maildir")
    os.unlink(md)
    r = pf.run("fetch")
    eq(r.rc, 75, "Maildir fixed, server down: 75, " + str(r))
    st = json.loads(pf.run("status", "--json").expect(0).stdout)[0]
    eq(st["last_exit"], 75, "status: the connection failure is recorded")
    # A password_command (it may prompt) is not run for a run that
    # cannot go on, and nothing logs in.
    ok(os.path.isdir(os.path.join(md, "new")), "the last run made the Maildir")
    shutil.rmtree(md)
    logins = login_methods(user)     # the test's own (server_message_count)
    with open(md, "w") as f:
        f.write("not a Maildir\n")
    marker = pf.path("password_command-ran")
    o = dovecot().account_options(user)
    o["password_command"] = "touch %s; echo %s" % (marker, o.pop("password"))
    pf.write_config(pftest.account_conf("work", maildir=md, **o))
    r = pf.run("fetch")
    eq(r.rc, 74, "password_command account: " + str(r))
    ok(not os.path.exists(marker), "password_command not run")
    eq(login_methods(user), logins, "no login by popfetch")
    os.unlink(md)
    r = pf.run("fetch")
    eq(r.rc, 0, "Maildir fixed: " + str(r))
    ok(os.path.exists(marker), "password_command run")
    eq(len(pftest.read_maildir(md)), 2, "both messages fetched")


@T.test("password_command: first line of its output is the password")
def _(tmp):
    user = new_user()
    dovecot().add_messages(user, pftest.MailGen(6).messages(2, 800, 2000))
    pwfile = os.path.join(tmp, "pwfile")
    with open(pwfile, "w") as f:
        f.write(dovecot().users[user] + "\nsecond line ignored\n")
    pf = pftest.Popfetch(tmp)
    md = pf.path("Mail/work")
    o = dovecot().account_options(user)
    del o["password"]
    pf.write_config(pftest.account_conf("work", maildir=md,
                                        password_command="cat '%s'" % pwfile, **o))
    r = pf.run("fetch").expect(0)
    summary_like(r.stderr, "work", 2)
    eq(len(pftest.read_maildir(md)), 2, "delivered")


def pwcmd_test(tmp, command, rc):
    user = new_user()
    pf = pftest.Popfetch(tmp)
    md = pf.path("Mail/work")
    o = dovecot().account_options(user)
    del o["password"]
    pf.write_config(pftest.account_conf("work", maildir=md, password_command=command, **o))
    r = pf.run("fetch")
    eq(r.rc, rc, str(r))
    error_line(r, "work")
    eq(login_methods(user), [], "no login")
    return r


@T.test("password_command printing nothing: 77")
def _(tmp):
    pwcmd_test(tmp, "printf ''", 77)


@T.test("password_command failing (exit 3): 78")
def _(tmp):
    pwcmd_test(tmp, "exit 3", 78)


# ------------------------------------------------------------------ secrets

@T.test("the password is in no output at -v -v (PASS/AUTH show ****), "
        "in no file under the state dir or HOME, in no SQLite byte")
def _(tmp):
    user = new_user(secret=True)
    eq(dovecot().users[user], SECRET, "a user with the distinctive password")
    dovecot().add_messages(user, pftest.MailGen(7).messages(3, 800, 2000))
    pf = pftest.Popfetch(tmp)
    md = pf.path("Mail/work")
    outputs = []
    for auth, tls in (("user", "implicit"), ("plain", "starttls"),
                      ("scram-sha-256", "implicit"), ("auto", "implicit"),
                      ("apop", "none")):
        pf.write_config(pftest.account_conf("work", maildir=md, auth=auth,
                                            **dovecot().account_options(user, tls=tls)))
        for args in (("fetch", "-v", "-v"), ("check", "-v", "-v"), ("fetch", "-n", "-vv")):
            r = pf.run(*args).expect(0)
            outputs.append(r.stdout + r.stderr)
            for ln in trace_lines(r.stderr):
                if re.match(r"^(PASS|AUTH|APOP)\b", ln):
                    like(ln, r"\*\*\*\*$", "masked: " + ln)
            no_secret(r.stdout + r.stderr, "output of %s with auth = %s" % (args, auth))
        ok(any("****" in ln for ln in trace_lines(outputs[-3])), "masked lines seen")
    # a failing login at -vv too
    pf.write_config(pftest.account_conf("work", maildir=md, auth="user", **dict(
        dovecot().account_options(user), password=SECRET + "x")))
    r = pf.run("fetch", "-vv")
    eq(r.rc, 77, str(r))
    no_secret(r.stdout + r.stderr, "failed login output")
    no_secret(r.stdout + r.stderr, "failed login output", SECRET + "x")
    eq(len(pftest.read_maildir(md)), 3, "fetched once")
    db = os.path.join(pf.state_dir, "popfetch.db")
    ok(os.path.exists(db), "the database exists")
    for f in os.listdir(pf.state_dir):
        with open(os.path.join(pf.state_dir, f), "rb") as fh:
            data = fh.read()
        not_contains(data, SECRET.encode(), "bytes of " + f)
        not_contains(data, SECRET.encode("utf-16-le"), "UTF-16 bytes of " + f)
    eq(pftest.files_containing(pf.home, SECRET), [], "files under HOME")
    # and a SQL dump of the database
    con = sqlite3.connect("file:%s?mode=ro" % db, uri=True)
    try:
        dump = "\n".join(con.iterdump())
    finally:
        con.close()
    not_contains(dump, SECRET, "SQL dump")
    contains(dump, user, "the dump is the seen-list (names the mailbox)")


@T.test("the password is not in the process list (popfetch and its "
        "password_command children)")
def _(tmp):
    user = new_user(secret=True)
    dovecot().add_messages(user, pftest.MailGen(8).messages(20, 800, 4000))
    pwfile = os.path.join(tmp, "pwfile")
    with open(pwfile, "w") as f:
        f.write(SECRET + "\n")
    pf = pftest.Popfetch(tmp)
    md = pf.path("Mail/work")
    o = dovecot().account_options(user)
    del o["password"]
    pf.write_config(pftest.account_conf("work", maildir=md, auth="user",
                                        password_command="sleep 1; cat '%s'" % pwfile, **o))
    p = pf.spawn("fetch", "-v")
    seen_lines = []
    cmdlines = []
    try:
        while p.poll() is None:
            out = subprocess.run(["ps", "-eo", "pid=,ppid=,args="], capture_output=True,
                                 text=True).stdout
            seen_lines.extend(out.splitlines())
            try:
                with open("/proc/%d/cmdline" % p.pid, "rb") as f:
                    cmdlines.append(f.read())
            except OSError:
                pass
            time.sleep(0.02)
    finally:
        r = pf.collect(p)
    eq(r.rc, 0, str(r))
    eq(len(pftest.read_maildir(md)), 20, "fetched")
    mine = [ln for ln in seen_lines if ln.split(None, 2)[0] == str(p.pid)]
    ok(mine, "saw popfetch in the process list")
    kids = [ln for ln in seen_lines if ln.split(None, 2)[1] == str(p.pid)]
    ok(any("sleep 1; cat" in ln for ln in kids), "saw its password_command child", kids[:5])
    ok(cmdlines, "read /proc/PID/cmdline")
    for c in cmdlines:
        not_contains(c, SECRET.encode(), "/proc/%d/cmdline" % p.pid)
    for ln in seen_lines:
        not_contains(ln, SECRET, "ps -eo args")
    no_secret(r.stdout + r.stderr, "output")


# ------------------------------------------------------------------ status

@T.test("status before any run: 'never run' line, JSON zeros and nulls, "
        "no database created")
def _(tmp):
    pf, user, md = one(tmp)
    r = pf.run("status").expect(0)
    eq(r.stdout, "work: 0 seen, 0 B fetched, never run, 0 pending\n", "text line")
    eq(r.stderr, "", "stderr")
    r = pf.run("status", "--json").expect(0)
    eq(json.loads(r.stdout), [{"account": "work", "seen": 0, "bytes": 0,
                               "last_run_start": None, "last_run_end": None,
                               "last_exit": None, "pending": 0}], "JSON")
    no_database(pf, "status")
    ok(not os.path.exists(md), "no Maildir")


@T.test("status after runs: 'N seen, X fetched, last run DATE TIME ok, 0 pending' "
        "in local time; --json keys, types, ISO 8601 Z; a failed run's meaning")
def _(tmp):
    msgs = pftest.MailGen(9).messages(4, 1000, 3000)
    pf, user, md = one(tmp, msgs)
    t0 = time.time()
    pf.run("fetch").expect(0)
    dovecot().add_messages(user, pftest.MailGen(10).messages(1, 1000, 2000))
    pf.run("fetch").expect(0)
    t1 = time.time()
    total = sum(len(v) for v in pftest.read_maildir(md).new.values())
    # text, in local time (TZ given explicitly: UTC+9, no DST)
    r = pf.run("status", env={"TZ": "JST-9"}).expect(0)
    eq(r.stderr, "", "stderr")
    m = re.fullmatch(r"work: 5 seen, (\d+(?:\.\d+)?) ([kMG]?B) fetched, last run "
                     r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) ok, 0 pending\n", r.stdout)
    ok(m, "status line", r.stdout)
    ok(abs(float(m.group(1)) * {"B": 1, "kB": 1e3, "MB": 1e6}[m.group(2)] - total)
       <= 0.051 * total, "fetched bytes", m.group(1), m.group(2), total)
    jst = datetime.timezone(datetime.timedelta(hours=9))
    when = datetime.datetime.strptime(m.group(3), "%Y-%m-%d %H:%M:%S").replace(tzinfo=jst)
    ok(t0 - 2 <= when.timestamp() <= t1 + 2, "last run in local time (TZ=JST-9)",
       m.group(3), t0, t1)
    # JSON
    r = pf.run("status", "--json").expect(0)
    st = json.loads(r.stdout)
    eq(len(st), 1, "one object")
    o = st[0]
    eq(sorted(o), sorted(["account", "seen", "bytes", "last_run_start", "last_run_end",
                          "last_exit", "pending"]), "keys")
    eq((o["account"], o["seen"], o["bytes"], o["last_exit"], o["pending"]),
       ("work", 5, total, 0, 0), "values (bytes = size as delivered)")
    for k in ("seen", "bytes", "last_exit", "pending"):
        ok(type(o[k]) is int, k + " is an integer", o[k])
    for k in ("last_run_start", "last_run_end"):
        like(o[k], ISO_Z, k)
    ts = [datetime.datetime.strptime(o[k], "%Y-%m-%dT%H:%M:%SZ").replace(
        tzinfo=datetime.timezone.utc).timestamp() for k in ("last_run_start", "last_run_end")]
    ok(t0 - 2 <= ts[0] <= ts[1] <= t1 + 2, "start <= end, both during the runs", ts, t0, t1)
    # a failed run
    o2 = dovecot().account_options(user)
    o2["password"] = "wrong"
    pf.write_config(pftest.account_conf("work", maildir=md, **o2))
    eq(pf.run("fetch").rc, 77, "failed run")
    r = pf.run("status").expect(0)
    like(r.stdout, r"^work: 5 seen, \S+ \S+ fetched, last run \d{4}-\d\d-\d\d "
         r"\d\d:\d\d:\d\d authentication rejected, 0 pending\n$", "failed run's meaning")
    o = json.loads(pf.run("status", "--json").expect(0).stdout)[0]
    eq((o["last_exit"], o["seen"], o["bytes"]), (77, 5, total), "JSON after the failure")


@T.test("status lists disabled accounts; -a selects")
def _(tmp):
    u1, u2 = new_user(), new_user()
    dovecot().add_messages(u1, pftest.MailGen(11).messages(2, 800, 2000))
    pf = pftest.Popfetch(tmp)
    pf.write_config(
        pftest.account_conf("on", maildir=pf.path("Mail/on"),
                            **dovecot().account_options(u1)) +
        pftest.account_conf("off", maildir=pf.path("Mail/off"), enabled=False,
                            **dovecot().account_options(u2)))
    pf.run("fetch").expect(0)
    r = pf.run("status").expect(0)
    lines = r.stdout.splitlines()
    eq(len(lines), 2, r.stdout)
    like(lines[0], r"^on: 2 seen, .* ok, 0 pending$")
    eq(lines[1], "off: 0 seen, 0 B fetched, never run, 0 pending")
    st = json.loads(pf.run("status", "--json").expect(0).stdout)
    eq([o["account"] for o in st], ["on", "off"], "JSON lists both")
    eq(st[1]["last_run_start"], None, "off never ran")
    r = pf.run("status", "-a", "off").expect(0)
    eq(r.stdout, "off: 0 seen, 0 B fetched, never run, 0 pending\n", "-a off")


# ------------------------------------------------------------------ accounts, check

@T.test("accounts: one line per account: name, user@host:port, TLS mode, Maildir "
        "(or `mda`), ` disabled` for enabled = false")
def _(tmp):
    pf = pftest.Popfetch(tmp)
    conf = (pftest.account_conf("imp", host="127.0.0.1", user="ann", password="x",
                                tls="implicit", maildir=pf.path("Mail/imp")) +
            pftest.account_conf("stls", host="mail.example", user="bob", password="x",
                                tls="starttls", maildir=pf.path("Mail/stls"),
                                enabled=True) +
            pftest.account_conf("clear", host="127.0.0.1", user="cy", password="x",
                                tls="none", port=1110, allow_plaintext_password=True,
                                maildir=pf.path("Mail/clear"), enabled=False) +
            pftest.account_conf("lda", host="127.0.0.1", user="dee", password="x",
                                mda="/usr/lib/dovecot/dovecot-lda -e") +
            pftest.account_conf("both", host="127.0.0.1", user="eve", password="x",
                                maildir=pf.path("Mail/both"), mda="deliver",
                                filter="sort-mail", enabled=False))
    pf.write_config(conf)
    r = pf.run("accounts").expect(0)
    eq(r.stderr, "", "stderr")
    eq(r.stdout,
       "imp ann@127.0.0.1:995 implicit %s\n"
       "stls bob@mail.example:110 starttls %s\n"
       "clear cy@127.0.0.1:1110 none %s disabled\n"
       "lda dee@127.0.0.1:995 implicit mda\n"
       "both eve@127.0.0.1:995 implicit mda disabled\n"
       % (pf.path("Mail/imp"), pf.path("Mail/stls"), pf.path("Mail/clear")),
       "lines (default ports 995 and 110; mda wins over maildir)")
    no_database(pf, "accounts")
    # Top-level defaults: an inherited mda (no maildir needed), an
    # inherited enabled = false, and an account's own enabled = true.
    pf.write_config('mda = "deliver -a \\"$POPFETCH_ACCOUNT\\""\n'
                    'enabled = false\n' +
                    pftest.account_conf("one", host="h1", user="u", password="x") +
                    pftest.account_conf("two", host="h2", user="u", password="x",
                                        enabled=True))
    r = pf.run("accounts").expect(0)
    eq((r.stdout, r.stderr), ("one u@h1:995 implicit mda disabled\n"
                              "two u@h2:995 implicit mda\n", ""), "inherited")
    no_database(pf, "accounts (inherited)")


@T.test("config: every account's effective settings after defaults and the top "
        "level, each with its origin (FILE:LINE, top level, default); the "
        "password and oauth2_client_secret masked and in no output; an OAuth2 "
        "account without password or password_command; -a selects; no database")
def _(tmp):
    pf = pftest.Popfetch(tmp)
    pf.write_config(
        "# popfetch, the newcomer's config\n"                      # 1
        'maildir = "~/Mail/${POPFETCH_T_BOX}"\n'                    # 2
        "timeout = 30\n"                                            # 3
        "\n"                                                        # 4
        "account work {\n"                                          # 5
        '    host = "pop.example.com"\n'                            # 6
        '    user = "alice"\n'                                      # 7
        '    password = "%s"\n'                                     # 8
        "    timeout = 5   # a slow server\n"                       # 9
        '    filter = "spamc -c"\n'                                 # 10
        "}\n"                                                       # 11
        "account list {\n"                                          # 12
        '    host = "pop.example.org"\n'                            # 13
        "    tls = starttls\n"                                      # 14
        '    user = "bob"\n'                                        # 15
        '    password_command = "pass show \\"mail/list\\""\n'      # 16
        '    mda = "/usr/bin/procmail -d bob"\n'                    # 17
        "    enabled = false\n"                                     # 18
        '    tls_fingerprint = "%s"\n'                              # 19
        "}\n"                                                       # 20
        "account cloud {\n"                                         # 21
        '    host = "outlook.office365.com"\n'                      # 22
        '    user = "carol@example.com"\n'                          # 23
        "    oauth2_provider = microsoft\n"                         # 24
        '    oauth2_client_secret = "%s"\n'                         # 25
        '    oauth2_tenant = "contoso.onmicrosoft.com"\n'           # 26
        "}\n"                                                       # 27
        'oauth2_client_id = "9e5f94bc-e8a4-4e73-b8be-63364c29d753"\n'  # 28
        'password_command = "pass show mail/default"\n'             # 29
        % (SECRET, "ab" * 32, CLIENT_SECRET))
    env = {"POPFETCH_T_BOX": "inbox"}
    c = pf.config_path
    work = (
        "account work\n"
        '  host = "pop.example.com"                    # %(c)s:6\n'
        "  port = 995                                  # default (tls = implicit)\n"
        "  tls = implicit                              # default\n"
        "  tls_verify = true                           # default\n"
        "  tls_ca_file = (none: the system store)      # default\n"
        "  tls_fingerprint = (none)                    # default\n"
        "  tls_resume = true                           # default\n"
        '  user = "alice"                              # %(c)s:7\n'
        "  password = ********                         # %(c)s:8\n"
        "  auth = auto                                 # default\n"
        "  oauth2_provider = (none)                    # default\n"
        "  allow_plaintext_password = false            # default\n"
        '  maildir = "%(md)s"%(pad)s# top level, %(c)s:2\n'
        '  filter = "spamc -c"                         # %(c)s:10\n'
        "  mda = (none: deliver to maildir)            # default\n"
        "  delete = false                              # default\n"
        "  delete_after_days = 0                       # default\n"
        "  forget_after_days = 30                      # default\n"
        "  max_size = 0                                # default\n"
        "  max_messages = 0                            # default\n"
        "  received_header = true                      # default\n"
        "  enabled = true                              # default\n"
        "  timeout = 5                                 # %(c)s:9\n")
    md = pf.path("Mail/inbox")
    mdline = '  maildir = "%s"' % md
    work %= {"c": c, "md": md, "pad": " " * max(1, 46 - len(mdline))}
    fp = ":".join(["AB"] * 32)
    lst = (
        "account list\n"
        '  host = "pop.example.org"                    # %(c)s:13\n'
        "  port = 110                                  # default (tls = starttls)\n"
        "  tls = starttls                              # %(c)s:14\n"
        "  tls_verify = true                           # default\n"
        "  tls_ca_file = (none: the system store)      # default\n"
        '  tls_fingerprint = "sha256:%(fp)s" # %(c)s:19\n'
        "  tls_resume = true                           # default\n"
        '  user = "bob"                                # %(c)s:15\n'
        '  password_command = "pass show \\"mail/list\\"" # %(c)s:16\n'
        "  auth = auto                                 # default\n"
        "  oauth2_provider = (none)                    # default\n"
        "  allow_plaintext_password = false            # default\n"
        "  maildir = (not used: mda is set)            # top level, %(c)s:2\n"
        "  filter = (none)                             # default\n"
        '  mda = "/usr/bin/procmail -d bob"            # %(c)s:17\n'
        "  delete = false                              # default\n"
        "  delete_after_days = 0                       # default\n"
        "  forget_after_days = 30                      # default\n"
        "  max_size = 0                                # default\n"
        "  max_messages = 0                            # default\n"
        "  received_header = true                      # default\n"
        "  enabled = false                             # %(c)s:18\n"
        "  timeout = 30                                # top level, %(c)s:3\n"
        % {"c": c, "fp": fp})

    def ln(opt, value, origin):
        s_ = "  %s = %s" % (opt, value)
        return "%s%s# %s\n" % (s_, " " * max(1, 46 - len(s_)), origin)
    preset = "(none: the microsoft preset)"
    cloud = ("account cloud\n" +
             ln("host", '"outlook.office365.com"', "%s:22" % c) +
             ln("port", "995", "default (tls = implicit)") +
             ln("tls", "implicit", "default") +
             ln("tls_verify", "true", "default") +
             ln("tls_ca_file", "(none: the system store)", "default") +
             ln("tls_fingerprint", "(none)", "default") +
             ln("tls_resume", "true", "default") +
             ln("user", '"carol@example.com"', "%s:23" % c) +
             ln("auth", "xoauth2", "default") +
             ln("oauth2_provider", "microsoft", "%s:24" % c) +
             ln("oauth2_client_id", '"9e5f94bc-e8a4-4e73-b8be-63364c29d753"',
                "top level, %s:28" % c) +
             ln("oauth2_client_secret", "********", "%s:25" % c) +
             ln("oauth2_tenant", '"contoso.onmicrosoft.com"', "%s:26" % c) +
             ln("oauth2_token_url", preset, "default") +
             ln("oauth2_device_url", preset, "default") +
             ln("oauth2_auth_url", preset, "default") +
             ln("oauth2_scope", preset, "default") +
             ln("allow_plaintext_password", "false", "default") +
             ln("maildir", '"%s"' % md, "top level, %s:2" % c) +
             ln("filter", "(none)", "default") +
             ln("mda", "(none: deliver to maildir)", "default") +
             ln("delete", "false", "default") +
             ln("delete_after_days", "0", "default") +
             ln("forget_after_days", "30", "default") +
             ln("max_size", "0", "default") +
             ln("max_messages", "0", "default") +
             ln("received_header", "true", "default") +
             ln("enabled", "true", "default") +
             ln("timeout", "30", "top level, %s:3" % c))
    sdline = 'state_dir = "%s"' % pf.state_dir
    head = ("# configuration: %s\n%s%s# default\n"
            % (c, sdline, " " * max(1, 46 - len(sdline))))
    r = pf.run("config", env=env).expect(0)
    eq(r.stderr, "", "stderr")
    eq(r.stdout, head + "\n" + work + "\n" + lst + "\n" + cloud,
       "every account, disabled too, in config order")
    for args in (["config"], ["config", "-v"], ["-a", "work", "config"],
                 ["-a", "cloud", "config"], ["-vv", "config"]):
        r = pf.run(*args, env=env).expect(0)
        not_contains(r.stdout + r.stderr, SECRET, "the password, %s" % args)
        not_contains(r.stdout + r.stderr, CLIENT_SECRET,
                     "the oauth2_client_secret, %s" % args)
    r = pf.run("config", "-a", "cloud", env=env).expect(0)
    eq((r.stdout, r.stderr), (head + "\n" + cloud, ""),
       "-a cloud: no password, no password_command (not the top-level one)")
    r = pf.run("config", "-a", "list", env=env).expect(0)
    eq((r.stdout, r.stderr), (head + "\n" + lst, ""), "-a list")
    r = pf.run("config", "-a", "list", "--account", "work", env=env).expect(0)
    eq(r.stdout, head + "\n" + work + "\n" + lst, "-a twice: config order")
    r = pf.run("config", "-a", "nosuch", env=env)
    eq((r.rc, r.stdout), (78, ""), str(r))
    no_database(pf, "config")
    # Configuration errors are reported as by every other command.
    r = pf.run("config")
    eq((r.rc, r.stdout), (78, ""), str(r))
    contains(r.stderr, "%s:2: option maildir: environment variable "
             "POPFETCH_T_BOX is not set" % c, "an error: as for accounts")
    eq(pf.run("config", "-n", env=env).rc, 64, "config -n")
    eq(pf.run("config", "--json", env=env).rc, 64, "config --json")


@T.test("config: maildir missing without mda is 78 naming the file, line, "
        "account and option; an empty filter or mda is 78")
def _(tmp):
    pf = pftest.Popfetch(tmp)
    pf.write_config('filter = "sort-mail"\n\naccount work {\n    host = "h"\n'
                    '    user = "u"\n    password = "x"\n}\n')
    for cmd in ("accounts", "fetch", "status"):
        r = pf.run(cmd)
        eq((r.rc, r.stdout), (78, ""), str(r))
        eq(r.stderr, "popfetch: %s:3: account work: option maildir: missing "
           "(required)\n" % pf.config_path, cmd + ": the error line")
    no_database(pf, "maildir missing")
    for key, where in (("mda", "account"), ("filter", "account"),
                       ("mda", "top"), ("filter", "top")):
        if where == "top":
            text = ('%s = ""\n' % key + pftest.account_conf(
                "work", host="h", user="u", password="x", maildir=pf.path("M")))
            want = "popfetch: %s:1: option %s: must not be empty\n"
        else:
            text = pftest.account_conf("work", host="h", user="u", password="x",
                                       maildir=pf.path("M"), **{key: ""})
            want = "popfetch: %s:6: account work: option %s: must not be empty\n"
        pf.write_config(text)
        r = pf.run("accounts")
        eq((r.rc, r.stdout, r.stderr), (78, "", want % (pf.config_path, key)),
           "empty %s (%s)" % (key, where))


@T.test("check: TLS version, cipher, the certificate's SHA-256 fingerprint, "
        "capabilities, message count; creates no database")
def _(tmp):
    msgs = pftest.MailGen(12).messages(3, 1000, 3000)
    pf, user, md = one(tmp, msgs)
    p = dovecot().login(user)
    try:
        count, size = p.stat()
    finally:
        p.quit()
    r = pf.run("check").expect(0)
    out = r.stdout
    eq(r.stderr, "", "stderr")
    contains(out, "work", "names the account")
    like(out, r"\bTLSv1\.[23]\b", "TLS version")
    like(out, r"TLS_AES_\d+_GCM_SHA\d+|TLS_CHACHA20|ECDHE-", "cipher")
    fp = T.certs().server.fingerprint
    ok(fp.upper() in out.upper() or fp[7:].replace(":", "").upper() in out.upper(),
       "fingerprint %s" % fp, out)
    for c in ("UIDL", "TOP", "PIPELINING", "SASL", "USER"):
        like(out, r"(?m)^\s*%s\b" % c, "capability " + c)
    like(out, r"\b%d messages\b" % count, "message count")
    contains(out, str(size), "mailbox size in bytes")
    no_database(pf, "check")
    ok(not os.path.exists(md), "no Maildir")
    eq(dovecot().server_message_count(user), 3, "server unchanged")
    # STARTTLS too
    pf.write_config(pftest.account_conf("work", maildir=md,
                                        **dovecot().account_options(user, tls="starttls")))
    r = pf.run("check").expect(0)
    like(r.stdout, r"\bTLSv1\.[23]\b", "TLS version after STLS")
    ok(fp.upper() in r.stdout.upper() or fp[7:].replace(":", "").upper()
       in r.stdout.upper(), "fingerprint after STLS", r.stdout)
    no_database(pf, "check over STARTTLS")


# ------------------------------------------------------------------ several accounts

def three_accounts(tmp, order):
    """Accounts 'bad' (wrong password), 'down' (closed port), 'good' in
    the given order; 'good' has 2 messages."""
    ub, ug, ud = new_user(), new_user(), new_user()
    dovecot().add_messages(ug, pftest.MailGen(13).messages(2, 800, 2000))
    dovecot().add_messages(ub, pftest.MailGen(14).messages(1, 800, 2000))
    pf = pftest.Popfetch(tmp)
    defs = {
        "bad": dict(dovecot().account_options(ub), password="wrong-pw",
                    maildir=pf.path("Mail/bad")),
        "down": dict(dovecot().account_options(ud), port=pftest.free_port(),
                     maildir=pf.path("Mail/down")),
        "good": dict(dovecot().account_options(ug), maildir=pf.path("Mail/good")),
    }
    pf.write_config("".join(pftest.account_conf(n, **defs[n]) for n in order))
    return pf, ug


@T.test("several accounts: all attempted; exit code of the first failed in "
        "config order (77 before 75), also with -j 3")
def _(tmp):
    pf, ug = three_accounts(tmp, ["bad", "down", "good"])
    r = pf.run("fetch")
    eq(r.rc, 77, str(r))
    like(r.stderr, r"(?m)^popfetch: bad: .+$", "bad's error line")
    like(r.stderr, r"(?m)^popfetch: down: .+$", "down's error line")
    summary_like(r.stderr, "good", 2)
    eq(len(r.stderr.splitlines()), 3, "three lines")
    eq(len(pftest.read_maildir(pf.path("Mail/good"))), 2, "good fetched")


@T.test("several accounts: unreachable first gives 75; -j 3 gives the same code")
def _(tmp):
    pf, ug = three_accounts(tmp, ["down", "bad", "good"])
    r = pf.run("fetch")
    eq(r.rc, 75, str(r))
    like(r.stderr, r"(?m)^popfetch: down: .+$", "down's error line")
    like(r.stderr, r"(?m)^popfetch: bad: .+$", "bad's error line")
    summary_like(r.stderr, "good", 2)
    for j in ("3", "2"):
        r = pf.run("fetch", "-j", j)
        eq(r.rc, 75, "-j %s: %s" % (j, r))
        like(r.stderr, r"(?m)^popfetch: bad: .+$", "-j: bad's error line")
        summary_like(r.stderr, "good", 0)


@T.test("-a selects accounts; unknown -a name is 78; a disabled account is "
        "skipped unless named")
def _(tmp):
    u1, u2, u3 = new_user(), new_user(), new_user()
    for u in (u1, u2, u3):
        dovecot().add_messages(u, pftest.MailGen(15).messages(2, 800, 2000))
    pf = pftest.Popfetch(tmp)
    pf.write_config(
        pftest.account_conf("a1", maildir=pf.path("Mail/a1"), **dovecot().account_options(u1)) +
        pftest.account_conf("a2", maildir=pf.path("Mail/a2"), **dovecot().account_options(u2)) +
        pftest.account_conf("off", maildir=pf.path("Mail/off"), enabled=False,
                            **dovecot().account_options(u3)))
    r = pf.run("fetch", "-a", "a2").expect(0)
    summary_like(r.stderr, "a2", 2)
    eq(len(r.stderr.splitlines()), 1, "only a2: " + r.stderr)
    ok(not os.path.exists(pf.path("Mail/a1")), "a1 not fetched")
    r = pf.run("fetch", "-a", "nosuch")
    eq(r.rc, 78, str(r))
    contains(r.stderr, "nosuch", "names the unknown account")
    r = pf.run("fetch", "-a", "a1", "--account", "nosuch")
    eq(r.rc, 78, str(r))
    ok(not os.path.exists(pf.path("Mail/a1")), "nothing fetched when a name is unknown")
    r = pf.run("fetch").expect(0)
    summary_like(r.stderr, "a1", 2)
    summary_like(r.stderr, "a2", 0)
    not_contains(r.stderr, "off", "disabled account not fetched")
    ok(not os.path.exists(pf.path("Mail/off")), "no Maildir for off")
    eq(login_methods(u3), [], "off's server not contacted")
    r = pf.run("fetch", "-a", "off").expect(0)
    summary_like(r.stderr, "off", 2)
    eq(len(pftest.read_maildir(pf.path("Mail/off"))), 2, "off fetched when named")


# ------------------------------------------------------------------ CLI basics

@T.test("--version: popfetch, OpenSSL, SQLite, libConfuse versions; --help exits 0")
def _(tmp):
    pf = pftest.Popfetch(tmp)
    r = pf.run("--version", config=False).expect(0)
    eq(r.stderr, "", "stderr")
    like(r.stdout, r"(?m)^popfetch \d+\.\d+\S*$", "popfetch version")
    ossl = subprocess.run(["openssl", "version"], capture_output=True, text=True).stdout
    like(r.stdout, r"(?m)^OpenSSL 3\.\d+\.\d+", "OpenSSL version")
    m = re.search(r"(?m)^OpenSSL (\S+)", r.stdout)
    contains(ossl, m.group(1), "the OpenSSL it runs with")
    like(r.stdout, r"(?m)^SQLite %s$" % re.escape(sqlite3.sqlite_version), "SQLite version")
    like(r.stdout, r"(?m)^libConfuse \d+\.\d+", "libConfuse version")
    r = pf.run("--help", config=False).expect(0)
    like(r.stdout, r"(?i)usage: popfetch", "help text")
    for w in ("fetch", "check", "status", "accounts", "config", "--dry-run",
              "--jobs", "--json"):
        contains(r.stdout, w, "help mentions " + w)
    eq(r.stderr, "", "stderr of --help")
    eq(pf.run("-h", config=False).rc, 0, "-h")


@T.test("usage errors exit 64: unknown option, unknown command, -j 0, --json "
        "with fetch, -n with status")
def _(tmp):
    pf = pftest.Popfetch(tmp)
    # No config exists: a usage error must be found first (not 78).
    for args in (["--bogus"], ["-Z"], ["frobnicate"], ["fetch", "-j", "0"],
                 ["-j", "x"], ["fetch", "--json"], ["status", "-n"],
                 ["fetch", "extra"], ["fetch", "-a"]):
        r = pf.run(*args, config=False)
        eq(r.rc, 64, str(r))
        eq(r.stdout, "", "stdout of %s" % args)
        like(r.stderr, r"^popfetch: ", "error line of %s" % args)


@T.test("global options in any position, also with POSIXLY_CORRECT set; usage "
        "errors name the option as typed")
def _(tmp):
    pf = pftest.Popfetch(tmp)
    pf.write_config(pftest.account_conf("work", host="127.0.0.1", user="u",
                                        password_command="echo x",
                                        maildir=pf.path("Mail/work")) +
                    pftest.account_conf("two", host="127.0.0.1", user="v",
                                        password_command="echo x",
                                        maildir=pf.path("Mail/two")))
    never = "work: 0 seen, 0 B fetched, never run, 0 pending\n"
    for env in (None, {"POSIXLY_CORRECT": "1"}):
        for args in (["-c", pf.config_path, "-q", "status", "-a", "work"],
                     ["status", "-c", pf.config_path, "-a", "work", "-q"],
                     ["-a", "work", "status", "--config", pf.config_path],
                     ["status", "-a", "work", "--syslog", "-c", pf.config_path]):
            r = pf.run(*args, config=False, env=env)
            eq((r.rc, r.stdout, r.stderr), (0, never, ""), "%s %s" % (env, args))
        r = pf.run("accounts", "-q", env=env).expect(0)
        eq(len(r.stdout.splitlines()), 2, "accounts -q")
    for args, msg in ((["status", "--json=1"], "option '--json' takes no argument"),
                      (["--verbose=2"], "option '--verbose' takes no argument"),
                      (["status", "--config"], "option '--config' needs an argument"),
                      (["status", "-c"], "option '-c' needs an argument"),
                      (["-qZ"], "unknown option '-Z'"),
                      (["--frob=1"], "unknown option '--frob=1'"),
                      (["status", "--", "-q"], "unexpected argument '-q'"),
                      (["status", "-n"], "option '-n' applies only to 'fetch'"),
                      (["check", "-qn"], "option '-n' applies only to 'fetch'"),
                      (["status", "--dry-run"],
                       "option '--dry-run' applies only to 'fetch'"),
                      (["check", "--jobs=2"], "option '--jobs' applies only to 'fetch'"),
                      (["status", "--no-progress", "-j", "2"],
                       "option '--no-progress' applies only to 'fetch'"),
                      (["accounts", "-a", "x"], "option '-a' does not apply to 'accounts'"),
                      (["fetch", "--json"], "option '--json' applies only to 'status'")):
        r = pf.run(*args, config=False)
        eq((r.rc, r.stdout), (64, ""), str(r))
        eq(r.stderr.splitlines()[0], "popfetch: " + msg, "first line for %s" % args)


@T.test("config error on a one-line account: an unknown key after a quoted "
        "password is named (78), the password is not shown")
def _(tmp):
    pf = pftest.Popfetch(tmp)
    pf.write_config('account work { host = "127.0.0.1" user = "u" password = "%s" '
                    'maildir = "%s" colour = 1 }\n' % (SECRET, pf.path("Mail/work")))
    r = pf.run("accounts")
    eq(r.rc, 78, str(r))
    eq(r.stderr, "popfetch: %s:1: account work: unknown option 'colour'\n"
       % pf.config_path, "the error line")
    no_secret(r.stderr, "config error")


@T.test("config: ${VAR} unset is 78 naming it, the file, line, account and "
        "option (after comments); set, it is expanded; '${VAR}' is literal")
def _(tmp):
    pf = pftest.Popfetch(tmp)
    pf.write_config('# mail\n/* two\n   lines */\naccount work {  // office\n'
                    '  host = "${POPFETCH_TEST_HOST}"\n  user = \'${u}\'\n'
                    '  password = "p${POPFETCH_TEST_PW}w"\n  maildir = "%s"\n}\n'
                    % pf.path("Mail/work"))
    r = pf.run("accounts", env={"POPFETCH_TEST_HOST": "127.0.0.1",
                                "POPFETCH_TEST_PW": None})
    eq((r.rc, r.stdout), (78, ""), str(r))
    eq(r.stderr, "popfetch: %s:7: account work: option password: environment "
       "variable POPFETCH_TEST_PW is not set\n" % pf.config_path, "the error line")
    r = pf.run("accounts", env={"POPFETCH_TEST_HOST": "127.0.0.1",
                                "POPFETCH_TEST_PW": "x"}).expect(0)
    eq(r.stdout.split(), ["work", "${u}@127.0.0.1:995", "implicit",
                          pf.path("Mail/work")], "host expanded, user literal")


@T.test("config errors: missing -c file 78; $POPFETCH_CONFIG missing 78; "
        "0644 with a password 78 with 'chmod 600 FILE'")
def _(tmp):
    pf = pftest.Popfetch(tmp)
    missing = os.path.join(tmp, "no-such.conf")
    for cmd in ("fetch", "status", "accounts", "check"):
        r = pf.run(cmd, config=missing)
        eq(r.rc, 78, str(r))
        contains(r.stderr, missing, "names the file")
    r = pf.run("accounts", config=False, env={"POPFETCH_CONFIG": missing})
    eq(r.rc, 78, str(r))
    contains(r.stderr, missing, "names the file")
    conf = pftest.account_conf("work", host="127.0.0.1", user="u", password=SECRET,
                               maildir=pf.path("Mail/work"))
    path = pf.write_config(conf, mode=0o644)
    for cmd in ("fetch", "accounts", "status"):
        r = pf.run(cmd)
        eq(r.rc, 78, str(r))
        contains(r.stderr, "chmod 600 " + path, "the fix")
        no_secret(r.stderr, "config error")
    no_database(pf, "refused config")
    # 0644 without a password (password_command) is fine
    pf.write_config(pftest.account_conf("work", host="127.0.0.1", user="u",
                                        password_command="echo x",
                                        maildir=pf.path("Mail/work")), mode=0o644)
    r = pf.run("accounts").expect(0)
    like(r.stdout, r"^work u@127\.0\.0\.1:995 implicit ")


@T.test("config without an account section: 78 for every command, saying so")
def _(tmp):
    pf = pftest.Popfetch(tmp)
    for text in ("", "# nothing yet\ntimeout = 30\n"):
        pf.write_config(text)
        for cmd in (["fetch"], ["fetch", "-n"], ["check"], ["status"],
                    ["status", "--json"], ["accounts"]):
            r = pf.run(*cmd)
            eq((r.rc, r.stdout), (78, ""), "%r %s: %s" % (text, cmd, r))
            eq(r.stderr, "popfetch: %s: no account section: nothing to fetch "
               "(add one: account NAME { host = ... })\n" % pf.config_path,
               "%s: the error line" % cmd)
    no_database(pf, "no account section")


@T.test("mkdir failing under a file: the error line names the setting "
        "(maildir / state_dir), 74")
def _(tmp):
    pf = pftest.Popfetch(tmp)
    afile = pf.path("afile")
    with open(afile, "w") as f:
        f.write("not a directory\n")
    o = dict(host="127.0.0.1", port=pftest.free_port(), user="u", tls="none",
             password_command="echo x", allow_plaintext_password=True)
    pf.write_config(pftest.account_conf("work", maildir=afile + "/Mail", **o))
    r = pf.run("fetch")
    eq((r.rc, r.stderr), (74, "popfetch: work: maildir %s/Mail: mkdir(%s): Not a "
                              "directory\n" % (afile, afile)), str(r))
    pf.write_config('state_dir = "%s/state"\n' % afile +
                    pftest.account_conf("work", maildir=pf.path("Mail"), **o))
    for cmd in (["fetch"], ["fetch", "-n"]):
        r = pf.run(*cmd)
        eq((r.rc, r.stderr), (74, "popfetch: work: state_dir %s/state: mkdir(%s): "
                                  "Not a directory\n" % (afile, afile)), str(r))


@T.test("'popfetch work' with an account work: 64, did you mean 'popfetch -a "
        "work'?; a mistyped configuration key: the nearest known one")
def _(tmp):
    pf = pftest.Popfetch(tmp)
    pf.write_config(pftest.account_conf("work", host="127.0.0.1", user="u",
                                        password_command="echo x",
                                        maildir=pf.path("Mail/work")))
    plain = "popfetch: unknown command '%s' (expected fetch, check, status, accounts, config or authorize)"
    r = pf.run("work")
    eq((r.rc, r.stdout), (64, ""), str(r))
    eq(r.stderr.splitlines()[0], (plain % "work") +
       "; did you mean 'popfetch -a work'?", "an account's name")
    for args in (["home"], ["-c", os.path.join(tmp, "missing.conf"), "work"]):
        r = pf.run(*args, config=args[0] != "-c")
        eq((r.rc, r.stdout), (64, ""), str(r))
        eq(r.stderr.splitlines()[0], plain % args[-1],
           "no account of that name, or no configuration: %s" % args)
    pf.write_config(pftest.account_conf("work", host="127.0.0.1", user="u",
                                        password_command="echo x",
                                        maildir=pf.path("Mail/work")) +
                    "delte = true\n")
    r = pf.run("accounts")
    eq((r.rc, r.stdout), (78, ""), str(r))
    like(r.stderr, r"^popfetch: %s:\d+: unknown option 'delte'; did you mean "
         r"'delete'\?\n$" % re.escape(pf.config_path), "the nearest key")


T.done()
