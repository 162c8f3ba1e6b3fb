#!/usr/bin/env python3
"""popfetch fetch against a real Dovecot: delivery byte-exact over implicit
TLS and STARTTLS, Maildir names and modes, the summary line, repeated runs,
delete / delete_after_days (with libfaketime), pruning of the seen-list,
max_size / max_messages, --dry-run, two concurrent runs, renaming an
account.  (Authentication, secrets, status/check/accounts and the command
line are in cli.t.)

One Dovecot serves the whole script; every test has its own mail user and
its own popfetch sandbox (HOME, state dir, Maildir).
"""

import email.utils
import json
import os
import re
import socket
import stat
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pftest  # noqa: E402
from pftest import eq, ok, contains, not_contains, like  # noqa: E402

T = pftest.Suite(__file__)
S = {}

HOST = socket.gethostname()

# Maildir file name, popfetch(1): time.M<usec>P<pid>Q<n>.<host>,S=<size>
MD_NAME = re.compile(r"^(\d+)\.M(\d{1,6})P(\d+)Q(\d+)\.([^/:,]+),S=(\d+)$")

# The Received: field, popfetch.conf(5).
RECEIVED = re.compile(
    rb"^Received: from (?P<host>\S+) \(\[(?P<ip>[0-9A-Fa-f.:]+)\]\) by (?P<local>\S+) "
    rb"\(popfetch (?P<version>[^)\s]+)\) with (?P<with>POP3S|POP3 \+ STARTTLS|POP3) "
    rb"id (?P<uidl>\S+); (?P<date>[^\n]+)\n")
RFC5322_DATE = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{1,2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|"
    r"Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d [+-]\d{4}$")


# ------------------------------------------------------------------ helpers

def dovecot():
    if "dc" not in S:
        raise AssertionError("Dovecot did not start (see test 1)")
    return S["dc"]


NUSERS = 40


def new_user():
    """A fresh Dovecot user with an empty mailbox.  The users are made
    before Dovecot starts: it re-reads a changed passwd-file only when its
    mtime moves to another second, so users added in quick succession
    would be unknown for up to a second."""
    S["nuser"] = S.get("nuser", 0) + 1
    ok(S["nuser"] <= NUSERS, "enough users in the pool")
    return "u%02d" % S["nuser"]


class Box:
    """A mail user on the shared Dovecot and a popfetch sandbox for it."""

    def __init__(self, tmp, msgs=(), name="work", tls="implicit", **opts):
        self.dc = dovecot()
        self.user = new_user()
        self.name = name
        self.tls = tls
        if msgs:
            self.dc.add_messages(self.user, list(msgs))
        self.pf = pftest.Popfetch(tmp)
        self.md = self.pf.path("Mail/" + name)
        self.opts = opts
        self.configure()

    def configure(self, name=None, **opts):
        """Rewrite the config (options merged into the first ones)."""
        if name is not None:
            self.name = name
        self.opts.update(opts)
        o = self.dc.account_options(self.user, tls=self.tls)
        o.update(self.opts)
        self.pf.write_config(pftest.account_conf(self.name, maildir=self.md, **o))

    def run(self, *args, **kw):
        return self.pf.run(*args, **kw)

    def maildir(self):
        return pftest.read_maildir(self.md)

    def uidls(self):
        return self.dc.server_uidls(self.user)

    def add(self, msgs):
        self.dc.add_messages(self.user, list(msgs))

    def status_json(self):
        r = self.run("status", "--json").expect(0)
        return json.loads(r.stdout)


def version():
    if "version" not in S:
        r = pftest.Popfetch(T.tmpdir("version")).run("--version", config=False)
        m = re.match(r"popfetch (\S+)\n", r.stdout)
        ok(m, "popfetch --version's first line", r.stdout)
        S["version"] = m.group(1)
    return S["version"]


def human_to_bytes(num, unit):
    mult = {"B": 1, "kB": 1e3, "KB": 1e3, "KiB": 1024, "MB": 1e6, "MiB": 1024 ** 2,
            "GB": 1e9, "GiB": 1024 ** 3}
    ok(unit in mult, "size unit", unit)
    return float(num) * mult[unit]


def summary(r, name, new, skipped, deleted, nbytes=None):
    """stderr is exactly one summary line (popfetch(1)) with these counts; the
    byte count matches nbytes (within its rounding) when given."""
    eq(r.stdout, "", "stdout of a fetch")
    m = re.fullmatch(r"(\S+): (\d+) new, (\d+) skipped, (\d+) deleted, "
                     r"(\d+(?:\.\d+)?) ([kMG]i?B|B) in (\d+(?:\.\d+)?) s\n", r.stderr)
    ok(m, "summary line format", r.stderr)
    eq((m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4))),
       (name, new, skipped, deleted), "name, new, skipped, deleted in " + r.stderr.strip())
    if nbytes is not None:
        got = human_to_bytes(m.group(5), m.group(6))
        ok(abs(got - nbytes) <= max(0.051 * nbytes, 0.5), "summary bytes %s %s vs %d"
           % (m.group(5), m.group(6), nbytes))
    ok(float(m.group(7)) < 30, "duration", m.group(7))


def maildir_bytes(md):
    c = pftest.read_maildir(md)
    return sum(len(v) for v in list(c.new.values()) + list(c.cur.values()))


def check_delivery(box, msgs, with_, t_before, t_after):
    """Everything about a first fetch of msgs (popfetch(1), popfetch.conf(5))."""
    c = box.maildir()
    eq(c.tmp, [], "nothing left in tmp/")
    eq(sorted(c.cur), [], "nothing in cur/")
    eq(len(c.new), len(msgs), "one file per message in new/")
    uidls = box.uidls()
    names = c.names()
    pids, qs = set(), set()
    for i, (n, m) in enumerate(zip(names, msgs)):
        data = c.new[n]
        path = os.path.join(box.md, "new", n)
        mm = MD_NAME.match(n)
        ok(mm, "Maildir name time.M<usec>P<pid>Q<n>.<host>,S=<size>", n)
        eq(int(mm.group(6)), os.path.getsize(path), "S= is the file size: " + n)
        eq(mm.group(5), HOST, "host part of " + n)
        ok(t_before - 1 <= int(mm.group(1)) <= t_after + 1, "time part of " + n,
           t_before, t_after)
        pids.add(mm.group(3))
        qs.add(mm.group(4))
        eq(stat.S_IMODE(os.stat(path).st_mode), 0o600, "mode of " + n)
        rm = RECEIVED.match(data)
        ok(rm, "message %d starts with a one-line Received: field" % (i + 1), data[:300])
        eq(rm.group("host").decode(), "127.0.0.1", "Received: from HOST")
        eq(rm.group("ip").decode(), "127.0.0.1", "Received: ([IP])")
        eq(rm.group("local").decode(), HOST, "Received: by LOCALHOST")
        eq(rm.group("version").decode(), version(), "Received: (popfetch VERSION)")
        eq(rm.group("with").decode(), with_, "Received: with")
        eq(rm.group("uidl").decode(), uidls[i], "Received: id UIDL of message %d" % (i + 1))
        d = rm.group("date").decode()
        like(d, RFC5322_DATE, "Received: date")
        dt = email.utils.parsedate_to_datetime(d).timestamp()
        ok(t_before - 2 <= dt <= t_after + 2, "Received: date is the delivery time", d)
        rest = data[rm.end():]
        ok(not rest.startswith((b" ", b"\t", b"Received:")), "a single Received: line")
        eq(rest, pftest.pop3_expected(m), "message %d byte-exact" % (i + 1))
        eq(pftest.strip_received_header(data), pftest.pop3_expected(m),
           "strip_received_header agrees")
    eq(len(pids), 1, "one popfetch process wrote them all")
    eq(len(qs), len(msgs), "Q<n> unique")
    for d in ("", "new", "cur", "tmp"):
        eq(stat.S_IMODE(os.stat(os.path.join(box.md, d)).st_mode), 0o700,
           "mode of Maildir/%s" % d)


def edge_msgs(seed):
    """Every MailGen edge case plus ordinary messages."""
    msgs = pftest.edge_case_messages(seed) + pftest.MailGen(seed).messages(6, 500, 6000)
    lines = [ln for m in msgs for ln in m.split(b"\n")]
    # The edge cases the brief names really are there.
    ok(b"." in lines, "a line that is '.'")
    ok(any(ln.startswith(b".") and ln != b"." for ln in lines), "lines starting with '.'")
    ok(any(len(ln) > 10000 for ln in lines), "a line over 10,000 characters")
    ok(any(b >= 0x80 for m in msgs for b in m), "8-bit bytes")
    return msgs


# ------------------------------------------------------------------ set-up

@T.test("dovecot starts (shared by every test of this script)")
def _(tmp):
    dc = pftest.Dovecot(tmp, T.certs())
    T.add_cleanup(dc.stop)
    for i in range(1, NUSERS + 1):
        dc.add_user("u%02d" % i, "pw-u%02d-fetch" % i)
    dc.start()
    S["dc"] = dc
    like(version(), r"^\d+\.\d+")


# ------------------------------------------------------------------ delivery

@T.test("implicit TLS: every message byte-exact (edge cases), Received: POP3S, "
        "Maildir names, modes, nothing in tmp/")
def _(tmp):
    msgs = edge_msgs(11)
    box = Box(tmp, msgs)
    t0 = int(time.time())
    r = box.run("fetch").expect(0)
    t1 = int(time.time()) + 1
    summary(r, "work", len(msgs), 0, 0, maildir_bytes(box.md))
    check_delivery(box, msgs, "POP3S", t0, t1)
    eq(box.dc.server_message_count(box.user), len(msgs), "keep: server unchanged")


@T.test("STARTTLS: every message byte-exact, Received: with POP3 + STARTTLS")
def _(tmp):
    msgs = edge_msgs(12)
    box = Box(tmp, msgs, tls="starttls")
    t0 = int(time.time())
    r = box.run("fetch", "-v", "-v").expect(0)
    t1 = int(time.time()) + 1
    contains(r.stderr, "> STLS", "STLS in the protocol trace")
    i_stls = r.stderr.index("> STLS")
    ok(not re.search(r"> (USER|PASS|AUTH|APOP)\b", r.stderr[:i_stls]),
       "no authentication before STLS", r.stderr[:i_stls])
    like(r.stderr[i_stls:], r"> (USER|PASS|AUTH|APOP)\b", "authentication after STLS")
    check_delivery(box, msgs, "POP3 + STARTTLS", t0, t1)


@T.test("received_header = false: files are exactly the messages")
def _(tmp):
    msgs = edge_msgs(13)
    box = Box(tmp, msgs, received_header=False)
    box.run("fetch").expect(0)
    c = box.maildir()
    eq(c.messages(), [pftest.pop3_expected(m) for m in msgs], "files == messages")
    for n in c.names():
        eq(int(MD_NAME.match(n).group(6)), len(c.new[n]), "S= of " + n)


# ------------------------------------------------------------------ output

@T.test("summary line without a terminal: exactly 'NAME: 3 new, 0 skipped, "
        "0 deleted, X in Y s' on stderr; -q prints nothing")
def _(tmp):
    msgs = pftest.MailGen(21).messages(3, 2000, 3000)
    box = Box(tmp, msgs, name="mybox")
    r = box.run("fetch").expect(0)
    summary(r, "mybox", 3, 0, 0, maildir_bytes(box.md))
    not_contains(r.stderr, "\r", "no progress line without a terminal")
    not_contains(r.stderr, "\033", "no escape sequences without a terminal")
    # -q: nothing at all on success, with and without new mail
    box.add(pftest.MailGen(22).messages(2, 2000, 3000))
    r = box.run("-q", "fetch").expect(0)
    eq((r.stdout, r.stderr), ("", ""), "-q with 2 new messages")
    eq(len(box.maildir()), 5, "-q still fetched them")
    r = box.run("fetch", "--quiet").expect(0)
    eq((r.stdout, r.stderr), ("", ""), "--quiet with no new mail")


@T.test("second run fetches nothing ('0 new') and leaves the files unchanged")
def _(tmp):
    msgs = pftest.MailGen(31).messages(4, 1000, 5000)
    box = Box(tmp, msgs)
    box.run("fetch").expect(0)
    before = box.maildir()
    stats = {n: os.stat(os.path.join(box.md, "new", n)) for n in before.new}
    time.sleep(1.1)
    r = box.run("fetch").expect(0)
    summary(r, "work", 0, 0, 0, 0)
    after = box.maildir()
    eq(after.new, before.new, "same names, same bytes")
    eq(after.cur, {}, "cur/ empty")
    eq(after.tmp, [], "tmp/ empty")
    for n, st in stats.items():
        st2 = os.stat(os.path.join(box.md, "new", n))
        eq((st2.st_ino, st2.st_mtime_ns), (st.st_ino, st.st_mtime_ns), "untouched: " + n)
    eq(box.dc.server_message_count(box.user), 4, "server unchanged")


# ------------------------------------------------------------------ deleting

@T.test("delete = true: every message delivered once, server empty afterwards")
def _(tmp):
    msgs = pftest.edge_case_messages(41)
    box = Box(tmp, msgs, delete=True)
    r = box.run("fetch").expect(0)
    summary(r, "work", len(msgs), 0, len(msgs), maildir_bytes(box.md))
    eq(box.dc.server_message_count(box.user), 0, "server empty")
    eq(box.maildir().messages(strip_received=True),
       [pftest.pop3_expected(m) for m in msgs], "delivered, in order, once")
    r = box.run("fetch").expect(0)
    summary(r, "work", 0, 0, 0, 0)
    eq(len(box.maildir()), len(msgs), "nothing more")


@T.test("delete = true also deletes messages fetched by an earlier keep run")
def _(tmp):
    first = pftest.MailGen(42).messages(3, 1000, 3000)
    second = pftest.MailGen(43).messages(2, 1000, 3000)
    box = Box(tmp, first)
    summary(box.run("fetch").expect(0), "work", 3, 0, 0)
    eq(box.dc.server_message_count(box.user), 3, "kept after the first run")
    box.add(second)
    box.configure(delete=True)
    summary(box.run("fetch").expect(0), "work", 2, 0, 5)
    eq(box.dc.server_message_count(box.user), 0, "server empty")
    eq(box.maildir().messages(strip_received=True),
       [pftest.pop3_expected(m) for m in first + second], "each message once")


@T.test("delete_after_days = 2 (libfaketime): deletes only messages fetched "
        ">= 2 days before; new ones stay")
def _(tmp):
    a = pftest.MailGen(51).messages(3, 1000, 3000)
    b = pftest.MailGen(52).messages(2, 1000, 3000)
    c = pftest.MailGen(53).messages(2, 1000, 3000)
    box = Box(tmp, a)
    # Sanity: libfaketime really moves popfetch's clock.
    p = subprocess.run(["date", "+%s"], capture_output=True, text=True,
                       env=box.pf.env(pftest.util.fake_env("+60h")))
    ok(abs(int(p.stdout) - (time.time() + 60 * 3600)) < 120, "faketime works", p.stdout)

    # t0: fetch A (no delete option yet: popfetch.conf(5) says the recorded time counts).
    summary(box.run("fetch").expect(0), "work", 3, 0, 0)
    ua = box.uidls()
    box.add(b)
    box.configure(delete_after_days=2)
    # t0 + 1 day: B is new; A is 1 day old: nothing deleted.
    summary(box.run("fetch", env=pftest.util.fake_env("+24h")).expect(0), "work", 2, 0, 0)
    eq(box.uidls(), ua + box.uidls()[3:], "nothing deleted after one day")
    ub = box.uidls()[3:]
    eq(len(ub), 2, "B listed")
    box.add(c)
    # t0 + 2.5 days: C is new, A (2.5 days) is deleted, B (1.5 days) stays.
    r = box.run("fetch", env=pftest.util.fake_env("+60h")).expect(0)
    summary(r, "work", 2, 0, 3)
    left = box.uidls()
    eq(left[:2], ub, "B stays on the server")
    eq(len(left), 4, "B and C stay")
    for u in ua:
        not_contains(left, u, "A deleted")
    eq(box.maildir().messages(strip_received=True),
       [pftest.pop3_expected(m) for m in a + b + c], "each message delivered once")
    # t0 + 4 days: B (3 days) and C (1.5 days): B goes.
    summary(box.run("fetch", env=pftest.util.fake_env("+96h")).expect(0), "work", 0, 0, 2)
    eq(len(box.uidls()), 2, "C stays")


@T.test("delete_after_days = 2 at the boundary (clock stopped by libfaketime): "
        "not at 48 h - 1 s, deleted at 48 h exactly")
def _(tmp):
    a = pftest.MailGen(54).messages(2, 1000, 3000)
    box = Box(tmp, a, delete_after_days=2)
    # A fixed (standing) clock, an hour ahead of now, whole seconds.
    base = int(time.time()) + 3600

    def at(t):
        env = pftest.util.fake_env(time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(t)))
        env["TZ"] = "UTC"
        return env
    p = subprocess.run(["date", "+%s"], capture_output=True, text=True,
                       env=box.pf.env(at(base)))
    eq(p.stdout.strip(), str(base), "faketime's standing clock")
    summary(box.run("fetch", env=at(base)).expect(0), "work", 2, 0, 0)
    summary(box.run("fetch", env=at(base + 2 * 86400 - 1)).expect(0), "work", 0, 0, 0)
    eq(box.dc.server_message_count(box.user), 2, "kept at 48 h - 1 s")
    summary(box.run("fetch", env=at(base + 2 * 86400)).expect(0), "work", 0, 0, 2)
    eq(box.dc.server_message_count(box.user), 0, "deleted at 48 h")
    eq(len(box.maildir()), 2, "delivered once")


@T.test("forgetting: UIDLs the server no longer lists stay forget_after_days, "
        "then leave the seen-list")
def _(tmp):
    msgs = pftest.MailGen(61).messages(5, 1000, 3000)
    box = Box(tmp, msgs)
    box.run("fetch").expect(0)
    eq(box.status_json()[0]["seen"], 5, "seen after the first run")
    uidls = box.uidls()
    p = box.dc.login(box.user)
    try:
        p.dele(2)
        p.dele(4)
    finally:
        p.quit()
    eq(box.uidls(), [uidls[0], uidls[2], uidls[4]], "two deleted on the server")
    summary(box.run("fetch").expect(0), "work", 0, 0, 0)
    eq(box.status_json()[0]["seen"], 5,
       "missing UIDLs are remembered (forget_after_days = 30)")
    box.configure(forget_after_days=0)
    summary(box.run("fetch").expect(0), "work", 0, 0, 0)
    eq(box.status_json()[0]["seen"], 3, "forget_after_days = 0: pruned to "
       "what is listed")
    eq(len(box.maildir()), 5, "local files stay")
    box.dc.clear_mailbox(box.user)
    summary(box.run("fetch").expect(0), "work", 0, 0, 0)
    eq(box.status_json()[0]["seen"], 0, "empty server: empty seen-list")


# ------------------------------------------------------------------ limits

@T.test("max_size: larger messages skipped (counted), left on the server, "
        "fetched once the limit is lifted")
def _(tmp):
    g = pftest.MailGen(71)
    small = [g.message(size=1200) for _ in range(3)]
    big = [g.message(size=9000) for _ in range(2)]
    msgs = [small[0], big[0], small[1], big[1], small[2]]
    box = Box(tmp, msgs, max_size=5000)
    summary(box.run("fetch").expect(0), "work", 3, 2, 0)
    eq(box.maildir().messages(strip_received=True),
       [pftest.pop3_expected(m) for m in small], "the small ones")
    eq(box.dc.server_message_count(box.user), 5, "all on the server")
    summary(box.run("fetch").expect(0), "work", 0, 2, 0)
    box.configure(max_size=0)
    summary(box.run("fetch").expect(0), "work", 2, 0, 0)
    got = sorted(box.maildir().messages(strip_received=True))
    eq(got, sorted(pftest.pop3_expected(m) for m in msgs), "all five, once each")
    # max_size with delete = true: the big one is left on the server
    box.add([g.message(size=9000), g.message(size=1000)])
    box.configure(max_size=5000, delete=True)
    summary(box.run("fetch").expect(0), "work", 1, 1, 6)
    eq(box.dc.server_message_count(box.user), 1, "the skipped one is left")


@T.test("max_messages: lowest message numbers first, the rest skipped (-v: a "
        "line each) and fetched by later runs")
def _(tmp):
    msgs = pftest.MailGen(72).messages(5, 1000, 3000)
    box = Box(tmp, msgs, max_messages=2)
    uidls = box.uidls()

    def ids():
        return [RECEIVED.match(m).group("uidl").decode()
                for m in box.maildir().messages()]
    summary(box.run("fetch").expect(0), "work", 2, 3, 0)
    eq(ids(), uidls[:2], "messages 1 and 2")
    r = box.run("-v", "fetch").expect(0)
    # popfetch(1), -v: a line per skipped message, as for max_size.
    eq([ln for ln in r.stderr.splitlines() if "skipping" in ln],
       ["work: skipping message 5 (UIDL %s): over max_messages (2 per run)"
        % uidls[4]], "-v: the message held back by max_messages: " + r.stderr)
    like(r.stderr, r"(?m)^work: 2 new, 1 skipped, 0 deleted, ", "summary")
    eq(ids(), uidls[:4], "then 3 and 4")
    box.configure(max_messages=0)
    summary(box.run("fetch").expect(0), "work", 1, 0, 0)
    eq(box.maildir().messages(strip_received=True),
       [pftest.pop3_expected(m) for m in msgs], "all, once, in order")
    eq(box.dc.server_message_count(box.user), 5, "all still on the server")


@T.test("max_messages: lowest message numbers first even when the server "
        "lists them in another order")
def _(tmp):
    msgs = [pftest.MailGen(73).message(size=800, subject="Order %d" % i)
            for i in range(1, 5)]
    uidls = ["ord-%d" % i for i in range(1, 5)]
    sizes = [len(pftest.pop3_expected(m).replace(b"\n", b"\r\n")) for m in msgs]
    listing = ["+OK"] + ["%d %d" % (n, sizes[n - 1]) for n in (4, 2, 3, 1)] + ["."]
    uidl = ["+OK"] + ["%d %s" % (n, uidls[n - 1]) for n in (3, 1, 4, 2)] + ["."]
    srv = pftest.PopServer(tmp, messages=msgs, uidls=uidls, tls="implicit",
                           cert=T.certs().server,
                           override={"LIST": listing, "UIDL": uidl}).start()
    T.add_cleanup(srv.stop)
    pf = pftest.Popfetch(tmp)
    md = pf.path("Mail/work")
    pf.write_config(pftest.account_conf(
        "work", host="127.0.0.1", port=srv.port, user="alice", password="secret",
        tls_ca_file=T.certs().ca.cert, maildir=md, max_messages=2))
    summary(pf.run("fetch").expect(0), "work", 2, 2, 0)
    got = [RECEIVED.match(m).group("uidl").decode()
           for m in pftest.read_maildir(md).messages()]
    eq(sorted(got), ["ord-1", "ord-2"], "messages 1 and 2, not the first listed")
    eq([ln for ln in srv.client_lines() if ln.startswith(b"RETR")],
       [b"RETR 1", b"RETR 2"], "RETRs in message-number order")


# ------------------------------------------------------------------ dry run

@T.test("--dry-run: UIDL, size, From, Subject, Date per message; the summary "
        "counts the bytes it would fetch; writes nothing (no Maildir, no "
        "database); server unchanged")
def _(tmp):
    g = pftest.MailGen(81)
    msgs = [g.message(size=1500, subject="Dry subject %d" % i,
                      from_addr="Sender %d <s%d@dry.example>" % (i, i)) for i in range(3)]
    msgs.append(g.message(size=9000, subject="Too big"))
    box = Box(tmp, msgs, max_size=5000, delete=True)
    uidls = box.uidls()
    p = box.dc.login(box.user)
    try:
        sizes = [int(ln.split()[1]) for ln in p.list()[1]]
    finally:
        p.quit()
    r = box.run("fetch", "--dry-run").expect(0)
    out = r.stdout
    blocks = re.split(r"(?m)^(?=\S)", out)
    blocks = [b for b in blocks if b]
    eq(len(blocks), 4, "one entry per message:\n" + out)
    for i in range(4):
        b = blocks[i]
        contains(b, uidls[i], "UIDL of message %d" % (i + 1))
        like(b, r"\b%d\b" % sizes[i], "size of message %d" % (i + 1))
        hdr = msgs[i].split(b"\n\n", 1)[0].decode()
        for field in ("From", "Subject", "Date"):
            v = re.search(r"(?m)^%s: (.*)$" % field, hdr).group(1)
            like(b, r"(?m)^\s*%s:\s*%s\s*$" % (field, re.escape(v)),
                 "%s of message %d" % (field, i + 1))
    like(blocks[3], r"skip", "the big one would be skipped")
    for i in range(3):
        not_contains(blocks[i], "skip", "message %d would be fetched" % (i + 1))
        like(blocks[i], r"delete", "delete = true: message %d would be deleted" % (i + 1))
    not_contains(r.stderr, "popfetch:", "no error")
    # The summary shows what it would fetch: 3 new, the sizes LIST gave.
    m = re.match(r"work: 3 new, 1 skipped, 3 deleted, (\d+(?:\.\d+)?) (k?B) in ",
                 r.stderr)
    ok(m, "dry-run summary: " + r.stderr)
    got = human_to_bytes(m.group(1), m.group(2))
    ok(abs(got - sum(sizes[:3])) <= 0.051 * sum(sizes[:3]),
       "dry-run summary bytes %s %s ~ %d" % (m.group(1), m.group(2), sum(sizes[:3])))
    ok(not os.path.exists(box.md), "no Maildir created")
    ok(not os.path.exists(os.path.dirname(box.md)), "not even its parent")
    left = os.listdir(box.pf.state_dir) if os.path.isdir(box.pf.state_dir) else []
    eq([f for f in left if not f.startswith("lock")], [],
       "state dir holds at most a lock file")
    eq(box.uidls(), uidls, "server unchanged")
    # After a real run, a dry run changes nothing either.
    box.configure(delete=False)
    box.run("fetch").expect(0)
    db = sorted(os.listdir(box.pf.state_dir))
    # -shm is SQLite's shared index, where every reader marks its place.
    snap = {f: open(os.path.join(box.pf.state_dir, f), "rb").read() for f in db
            if not f.startswith("lock") and not f.endswith("-shm")}
    before = box.maildir()
    # The database stays in WAL mode between runs, with its side files
    # (doc/DESIGN.md §3.4): no checkpoint, no fsync in a run with nothing new.
    eq([f for f in db if not f.startswith("lock")],
       ["popfetch.db", "popfetch.db-shm", "popfetch.db-wal", "tls-session.work"],
       "after a real run: the database, its WAL and the TLS session")
    box.configure(delete=True)
    r = box.run("fetch", "-n").expect(0)
    blocks = [b for b in re.split(r"(?m)^(?=\S)", r.stdout) if b]
    dele = [b for b in blocks if re.match(r"\S.*delete", b)]
    eq(len(dele), 3, "three fetched messages would be deleted:\n" + r.stdout)
    # Every message listed shows its From, Subject and Date (popfetch(1)),
    # also those that would only be deleted.
    for i, b in enumerate(dele):
        hdr = msgs[i].split(b"\n\n", 1)[0].decode()
        contains(b, uidls[i], "UIDL of deleted message %d" % (i + 1))
        for field in ("From", "Subject", "Date"):
            v = re.search(r"(?m)^%s: (.*)$" % field, hdr).group(1)
            like(b, r"(?m)^\s*%s:\s*%s\s*$" % (field, re.escape(v)),
                 "%s of deleted message %d" % (field, i + 1))
    eq(box.uidls(), uidls, "server unchanged by the second dry run")
    eq(box.maildir().new, before.new, "Maildir unchanged")
    # "The state directory and a lock file in it may be created; nothing
    # else": no new file at all.  status neither.
    box.run("status").expect(0)
    box.run("status", "--json").expect(0)
    eq(sorted(os.listdir(box.pf.state_dir)), db, "no new state files")
    for f, data in snap.items():
        eq(open(os.path.join(box.pf.state_dir, f), "rb").read(), data, f + " unchanged")


# ------------------------------------------------------------------ locking

@T.test("two concurrent runs of one account: the second exits 75 at once "
        "naming the first's pid; the first completes; each message once")
def _(tmp):
    msgs = pftest.MailGen(91).messages(6, 1000, 4000)
    box = Box(tmp, msgs)
    pwfile = os.path.join(tmp, "pw")
    with open(pwfile, "w") as f:
        f.write(box.dc.users[box.user] + "\n")
    o = box.dc.account_options(box.user)
    del o["password"]
    box.pf.write_config(pftest.account_conf(
        "work", maildir=box.md, password_command="sleep 4; cat '%s'" % pwfile, **o))
    p1 = box.pf.spawn("fetch")
    try:
        ok(pftest.wait_for(lambda: pftest.children_of(p1.pid), 20),
           "the first run is in its password_command")
        t = time.monotonic()
        r2 = box.run("fetch", timeout=30)
        dt = time.monotonic() - t
        # It did not wait for the lock: the first is still in its
        # password_command (4 s) when the second has ended.
        still = pftest.children_of(p1.pid)
    finally:
        r1 = box.pf.collect(p1)
    eq(r2.rc, 75, str(r2))
    ok(still and dt < 3, "the second run gave up at once (%.2f s)" % dt)
    like(r2.stderr, r"^popfetch: work: .*\b%d\b" % p1.pid, "names the other pid")
    eq(r1.rc, 0, str(r1))
    summary(r1, "work", 6, 0, 0)
    eq(box.maildir().messages(strip_received=True),
       [pftest.pop3_expected(m) for m in msgs], "each message once")
    summary(box.run("fetch", timeout=30).expect(0), "work", 0, 0, 0)


@T.test("renaming the account does not refetch (its state follows the rename)")
def _(tmp):
    msgs = pftest.MailGen(92).messages(3, 1000, 3000)
    box = Box(tmp, msgs)
    box.run("fetch").expect(0)
    before = box.maildir().new
    box.add(pftest.MailGen(93).messages(1, 1000, 2000))
    box.configure(name="office")
    summary(box.run("fetch").expect(0), "office", 1, 0, 0)
    eq(len(box.maildir()), 4, "only the new one")
    for n, data in before.items():
        eq(box.maildir().new.get(n), data, "kept " + n)
    st = box.status_json()
    eq((st[0]["account"], st[0]["seen"]), ("office", 4), "status under the new name")


T.done()
