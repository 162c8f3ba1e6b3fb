#!/usr/bin/env python3
"""Exactly once (issue 11): the cases where popfetch used to deliver a
message twice, lose track of one, or deliver part of one; against the real
binary and the scripted popserver (tests/integration/popserver.py).

  identity     two accounts with the same user on 127.0.0.1 and different
               ports (identical UIDL strings, different mail); -j 2; port /
               tls edited; account renamed; a second account on the same
               mailbox; status of a seen-list whose account was removed;
               a pre-v2 (schema version 1) database
  forgetting   a short listing does not make the missing messages new
  UIDL -ERR    a temporary failure (75), never a switch to "no UIDL"
  RETR -ERR    that message is skipped, the rest fetched and deleted, QUIT
               acknowledged, 76, asked for again by every later run
  out of step  an unstuffed "." inside a body: that message is not
               delivered (76), the next run delivers it whole
  no UIDL      QUIT's reply lost: the next run fetches again, delivers
               nothing twice (content digests) and deletes
  SIGKILL      random kills (killshim.so points and timed kills, seeded;
               PFTEST_EXACTLY_SEED repeats) during short listings, refused
               messages and the no-UIDL path; then a clean run: every
               message exactly once

Messages are compared by content (after the Received: field), so a
delivery counts whatever file name or Received: id it has.
"""

import collections
import json
import os
import random
import re
import shutil
import signal
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
CERTS = T.certs()
later = T.later
test = T.test

SEED = int(os.environ.get("PFTEST_EXACTLY_SEED") or
           random.SystemRandom().randrange(1 << 31))
T.diag("seed %d (PFTEST_EXACTLY_SEED=%d repeats the random kills)" % (SEED, SEED))

HOST = "127.0.0.1"
EXIT_MEANING_RE = r"[^,]+"


# ------------------------------------------------------------------ helpers

def gen(n, seed, lo=600, hi=2500):
    return pftest.MailGen(seed).messages(n, lo, hi)


def server(tmp, name, msgs=(), uidls=None, **knobs):
    """A started popserver in tmp/NAME, stopped when the test ends."""
    srv = pftest.PopServer(os.path.join(tmp, name), messages=list(msgs) or None,
                           uidls=uidls, stall_max=30, **knobs).start()
    later(srv.stop)
    return srv


def acct_opts(srv, maildir, **extra):
    """Account options for popserver srv (plain text, user alice)."""
    o = {"host": HOST, "port": srv.port, "user": "alice", "password": "secret",
         "tls": "none", "allow_plaintext_password": True, "maildir": maildir,
         "timeout": 10}
    o.update(extra)
    return {k: v for k, v in o.items() if v is not None}


def write_accounts(pf, accounts):
    """accounts: [(name, options)] in config order."""
    pf.write_config("".join(pftest.account_conf(n, **o) for n, o in accounts))


def run(pf, servers, *args, env=None, timeout=60):
    r = pf.run(*args, env=env, timeout=timeout)
    for s in servers:
        s.wait_closed(10)
    return r


def summary_counts(r, name):
    """(new, skipped, deleted) from the summary line of account NAME."""
    m = re.search(r"^%s: (\d+) new, (\d+) skipped, (\d+) deleted, " % re.escape(name),
                  r.stderr, re.M)
    ok(m, "summary line of %s" % name, r.stderr)
    return tuple(int(x) for x in m.groups())


def summary(r, name, new, skipped=0, deleted=0, rc=0):
    eq(r.rc, rc, "exit code\n%s" % r)
    eq(summary_counts(r, name), (new, skipped, deleted),
       "%s: new, skipped, deleted" % name)


def error_line(r, code, name="work"):
    """Exit `code`; stderr is exactly one line `popfetch: NAME: ...` (no
    summary line); returns the text after the account name."""
    eq(r.rc, code, "exit code\n%s" % r)
    m = re.fullmatch(r"popfetch: %s: ([^\n]+)\n" % re.escape(name), r.stderr)
    ok(m, "stderr is one error line 'popfetch: %s: ...'" % name, r.stderr)
    T.diag("error line: " + r.stderr.rstrip("\n")[:300])
    return m.group(1)


def exactly(md, msgs, what="Maildir"):
    """new/ + cur/ of md hold each of msgs exactly once, byte-exact (after
    the Received: field), and nothing else."""
    c = pftest.read_maildir(md)
    got = collections.Counter(c.messages(strip_received=True))
    want = collections.Counter(pftest.pop3_expected(m) for m in msgs)
    dup = sum(n - 1 for m, n in got.items() if n > 1 and m in want)
    missing = sum(1 for m in want if m not in got)
    extra = sum(n for m, n in got.items() if m not in want)
    ok(dup == 0 and missing == 0 and extra == 0,
       "%s: %d file(s) for %d message(s): %d delivered twice or more, %d missing, "
       "%d not among the expected (partial, corrupt or another mailbox's)"
       % (what, len(c), len(want), dup, missing, extra))
    return c


def status_json(pf, *args):
    r = pf.run("status", "--json", *args)
    eq(r.rc, 0, "status --json\n%s" % r)
    return json.loads(r.stdout)


def status_of(pf, name):
    for o in status_json(pf):
        if o["account"] == name:
            return o
    raise AssertionError("no %r in status --json" % name)


def retrs(srv, conn=None):
    return [ln for ln in srv.client_lines(conn) if ln.startswith(b"RETR")]


def last_conn(srv):
    c = srv.connections()
    ok(c, "the server saw a connection")
    return c[-1]


class Box:
    """One popserver, one sandbox, account `work` delivering into Mail/work."""

    def __init__(self, tmp, msgs, delete=False, name="work", **knobs):
        self.msgs = list(msgs)
        self.srv = server(tmp, "srv", self.msgs, **knobs)
        self.pf = pftest.Popfetch(os.path.join(tmp, "pf"))
        self.name = name
        self.md = self.pf.path("Mail/" + name)
        self.opts = acct_opts(self.srv, self.md, delete=delete)
        self.write()

    def write(self):
        write_accounts(self.pf, [(self.name, self.opts)])

    def configure(self, **opts):
        self.opts.update(opts)
        self.opts = {k: v for k, v in self.opts.items() if v is not None}
        self.write()

    def add(self, msgs):
        self.msgs += msgs
        self.srv.add_messages(msgs)

    def uidl(self, i):
        """UIDL of self.msgs[i] (popserver's default uid-<n>)."""
        return "uid-%d" % (i + 1)

    def run(self, *args, env=None):
        return run(self.pf, [self.srv], "fetch", *args, env=env)


# ------------------------------------------------------------------ identity

@test("two accounts, same user on 127.0.0.1, different ports, identical UIDLs, "
      "different mail: three runs deliver each message once into its own Maildir")
def _(tmp):
    ma, mb = gen(4, 11), gen(5, 12)
    sa, sb = server(tmp, "a", ma), server(tmp, "b", mb)
    eq(sa.remaining_uidls(), sb.remaining_uidls()[:4], "the UIDL strings are the same")
    pf = pftest.Popfetch(os.path.join(tmp, "pf"))
    mda, mdb = pf.path("Mail/work"), pf.path("Mail/home")
    write_accounts(pf, [("work", acct_opts(sa, mda)), ("home", acct_opts(sb, mdb))])
    for i in range(3):
        r = run(pf, [sa, sb], "fetch", "-v")
        eq(r.rc, 0, "run %d\n%s" % (i + 1, r))
        eq(summary_counts(r, "work")[0], 4 if i == 0 else 0, "run %d: work new" % (i + 1))
        eq(summary_counts(r, "home")[0], 5 if i == 0 else 0, "run %d: home new" % (i + 1))
        not_contains(r.stderr, "forgot", "run %d: no UIDL forgotten" % (i + 1))
        exactly(mda, ma, "work after run %d" % (i + 1))
        exactly(mdb, mb, "home after run %d" % (i + 1))
    eq(len(retrs(sa)), 4, "work: each message fetched once in three runs")
    eq(len(retrs(sb)), 5, "home: each message fetched once in three runs")
    eq((status_of(pf, "work")["seen"], status_of(pf, "home")["seen"]), (4, 5),
       "status --json seen of work and home")


@test("two accounts, same user on 127.0.0.1, different ports: fetch -j 2 runs "
      "both (each its own lock), exit 0, each message once")
def _(tmp):
    ma, mb = gen(6, 21), gen(6, 22)
    # Latency keeps both sessions open at the same time.
    sa = server(tmp, "a", ma, latency_ms=30)
    sb = server(tmp, "b", mb, latency_ms=30)
    pf = pftest.Popfetch(os.path.join(tmp, "pf"))
    mda, mdb = pf.path("Mail/work"), pf.path("Mail/home")
    write_accounts(pf, [("work", acct_opts(sa, mda)), ("home", acct_opts(sb, mdb))])
    r = run(pf, [sa, sb], "fetch", "-j", "2")
    eq(r.rc, 0, "fetch -j 2\n%s" % r)
    eq(summary_counts(r, "work")[0], 6, "work new")
    eq(summary_counts(r, "home")[0], 6, "home new")
    not_contains(r.stderr, "already", "no account skipped as locked")
    ea, eb = gen(2, 23), gen(3, 24)
    sa.add_messages(ea)
    sb.add_messages(eb)
    r = run(pf, [sa, sb], "fetch", "-j", "2")
    eq(r.rc, 0, "second fetch -j 2\n%s" % r)
    eq((summary_counts(r, "work")[0], summary_counts(r, "home")[0]), (2, 3),
       "second run: new of work and home")
    exactly(mda, ma + ea, "work")
    exactly(mdb, mb + eb, "home")


@test("editing an account's port, then its tls (same name, same mailbox on "
      "other servers): nothing delivered again")
def _(tmp):
    msgs = gen(5, 31)
    extra = gen(2, 32)
    s1 = server(tmp, "s1", msgs)
    s2 = server(tmp, "s2", msgs + extra[:1])
    s3 = server(tmp, "s3", msgs + extra, tls="implicit", cert=CERTS.server)
    pf = pftest.Popfetch(os.path.join(tmp, "pf"))
    md = pf.path("Mail/work")
    opts = acct_opts(s1, md)
    write_accounts(pf, [("work", opts)])
    summary(run(pf, [s1], "fetch"), "work", 5)
    opts["port"] = s2.port
    write_accounts(pf, [("work", opts)])
    summary(run(pf, [s2], "fetch"), "work", 1)
    eq(retrs(s2), [b"RETR 6"], "new port: only the new message fetched")
    exactly(md, msgs + extra[:1], "after the port edit")
    opts.update(port=s3.port, tls="implicit", tls_ca_file=CERTS.ca.cert)
    write_accounts(pf, [("work", opts)])
    summary(run(pf, [s3], "fetch"), "work", 1)
    eq(retrs(s3), [b"RETR 7"], "tls = implicit: only the new message fetched")
    exactly(md, msgs + extra, "after the tls edit")
    eq(status_of(pf, "work")["seen"], 7, "status --json seen")


@test("renaming an account (same host, port, user) delivers nothing again; a "
      "new account on the same mailbox gets its own seen-list")
def _(tmp):
    msgs = gen(5, 41)
    srv = server(tmp, "srv", msgs)
    pf = pftest.Popfetch(os.path.join(tmp, "pf"))
    md = pf.path("Mail/work")
    write_accounts(pf, [("work", acct_opts(srv, md))])
    summary(run(pf, [srv], "fetch"), "work", 5)
    more = gen(1, 42)
    srv.add_messages(more)
    write_accounts(pf, [("office", acct_opts(srv, md))])
    summary(run(pf, [srv], "fetch"), "office", 1)
    exactly(md, msgs + more, "after the rename")
    eq([(o["account"], o["seen"]) for o in status_json(pf)], [("office", 6)],
       "status --json: the seen-list moved to the new name (no orphan left)")
    # A second account on the same host, port and user while `office` is
    # still configured: state never merges, it starts empty.
    md2 = pf.path("Mail/copy")
    write_accounts(pf, [("office", acct_opts(srv, md)), ("copy", acct_opts(srv, md2))])
    r = run(pf, [srv], "fetch")
    eq(r.rc, 0, str(r))
    eq(summary_counts(r, "office")[0], 0, "office: nothing new")
    eq(summary_counts(r, "copy")[0], 6, "copy: the whole mailbox, into its own Maildir")
    exactly(md, msgs + more, "office's Maildir")
    exactly(md2, msgs + more, "copy's Maildir")


@test("status: a seen-list whose account was removed is listed "
      "'(not in the configuration)', JSON \"configured\": false; not with -a")
def _(tmp):
    ma, mb = gen(3, 51), gen(2, 52)
    sa, sb = server(tmp, "a", ma), server(tmp, "b", mb)
    pf = pftest.Popfetch(os.path.join(tmp, "pf"))
    write_accounts(pf, [("work", acct_opts(sa, pf.path("Mail/work"))),
                        ("home", acct_opts(sb, pf.path("Mail/home")))])
    eq(run(pf, [sa, sb], "fetch").rc, 0, "fetch")
    write_accounts(pf, [("work", acct_opts(sa, pf.path("Mail/work")))])
    r = pf.run("status")
    eq(r.rc, 0, str(r))
    lines = r.stdout.splitlines()
    eq(len(lines), 2, "status lines: %r" % r.stdout)
    like(lines[0], r"^work: 3 seen, .*, 0 pending$", "configured account first")
    like(lines[1], r"^home: 2 seen, .* fetched, last run \S+ \S+ %s, 0 pending "
         r"\(not in the configuration\)$" % EXIT_MEANING_RE, "the orphan")
    js = status_json(pf)
    eq([o["account"] for o in js], ["work", "home"], "status --json accounts")
    ok(js[0].get("configured", True) is True, "work is configured", js[0])
    eq((js[1].get("configured"), js[1]["seen"], js[1]["pending"]), (False, 2, 0),
       "home: configured, seen, pending")
    r = pf.run("status", "-a", "work")
    eq(r.rc, 0, str(r))
    not_contains(r.stdout, "home", "status -a work")
    eq([o["account"] for o in status_json(pf, "-a", "work")], ["work"],
       "status --json -a work")


def v1_database(pf, rows):
    """A schema-version-1 popfetch.db (store/seen.c migrations[0]) in the
    sandbox's state dir; rows: [(key, [uidls])]."""
    os.makedirs(pf.state_dir, mode=0o700, exist_ok=True)
    path = os.path.join(pf.state_dir, "popfetch.db")
    db = sqlite3.connect(path)
    db.executescript("""
CREATE TABLE mailbox (
  id      INTEGER PRIMARY KEY,
  key     TEXT NOT NULL UNIQUE,
  bytes   INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE seen (
  mailbox INTEGER NOT NULL REFERENCES mailbox(id),
  uidl    TEXT NOT NULL,
  size    INTEGER NOT NULL,
  fetched INTEGER NOT NULL,
  PRIMARY KEY (mailbox, uidl)
) WITHOUT ROWID;
CREATE TABLE pending (
  mailbox INTEGER NOT NULL REFERENCES mailbox(id),
  uidl    TEXT NOT NULL,
  name    TEXT NOT NULL,
  size    INTEGER NOT NULL,
  fetched INTEGER NOT NULL,
  PRIMARY KEY (mailbox, uidl)
) WITHOUT ROWID;
CREATE TABLE run (
  id        INTEGER PRIMARY KEY,
  mailbox   INTEGER NOT NULL REFERENCES mailbox(id),
  started   INTEGER NOT NULL,
  ended     INTEGER,
  fetched   INTEGER,
  skipped   INTEGER,
  deleted   INTEGER,
  bytes     INTEGER,
  exit_code INTEGER
);
CREATE INDEX run_by_mailbox ON run (mailbox, id);
""")
    now = int(time.time()) - 3600
    for i, (key, uidls) in enumerate(rows, 1):
        db.execute("INSERT INTO mailbox (id, key, bytes) VALUES (?, ?, ?)",
                   (i, key, 1000 * len(uidls)))
        for u in uidls:
            db.execute("INSERT INTO seen (mailbox, uidl, size, fetched) "
                       "VALUES (?, ?, 1000, ?)", (i, u, now))
        db.execute("INSERT INTO run (mailbox, started, ended, fetched, skipped, "
                   "deleted, bytes, exit_code) VALUES (?, ?, ?, ?, 0, 0, ?, 0)",
                   (i, now, now + 1, len(uidls), 1000 * len(uidls)))
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    os.chmod(path, 0o600)
    return path


@test("migration: a pre-v2 database keyed 'alice@127.0.0.1' goes to the first "
      "account with that user@host; nothing delivered again; others start empty")
def _(tmp):
    ma, mb = gen(4, 61), gen(4, 62)
    sa, sb = server(tmp, "a", ma), server(tmp, "b", mb)
    pf = pftest.Popfetch(os.path.join(tmp, "pf"))
    path = v1_database(pf, [("alice@127.0.0.1", sa.remaining_uidls()),
                            ("bob@old.example", ["x1", "x2"])])
    mda, mdb = pf.path("Mail/first"), pf.path("Mail/second")
    write_accounts(pf, [("first", acct_opts(sa, mda)), ("second", acct_opts(sb, mdb))])
    r = run(pf, [sa, sb], "fetch")
    eq(r.rc, 0, "fetch on the old database\n%s" % r)
    eq(summary_counts(r, "first")[0], 0, "first: the old seen-list is its own")
    eq(summary_counts(r, "second")[0], 4,
       "second (same user@host, another port): its own, empty seen-list")
    eq(retrs(sa), [], "first: nothing fetched")
    exactly(mda, [], "first's Maildir")
    exactly(mdb, mb, "second's Maildir")
    db = sqlite3.connect(path)
    try:
        ver = db.execute("PRAGMA user_version").fetchone()[0]
    finally:
        db.close()
    ok(ver >= 2, "schema migrated past version 1 (user_version %d)" % ver)
    js = status_json(pf)
    eq([(o["account"], o["seen"], o.get("configured", True)) for o in js],
       [("first", 4, True), ("second", 4, True), ("bob@old.example", 2, False)],
       "status --json: the unclaimed pre-v2 row under its user@host key")
    r = pf.run("status")
    eq(r.rc, 0, str(r))
    like(r.stdout, r"(?m)^bob@old\.example: 2 seen, .* \(not in the configuration\)$",
         "status text")
    r = run(pf, [sa, sb], "fetch")
    eq((r.rc, summary_counts(r, "first")[0], summary_counts(r, "second")[0]),
       (0, 0, 0), "a second run: exit code, new of first and second\n%s" % r)


# ------------------------------------------------------------------ forgetting

@test("short listing: 10 listed, then only 5, then 10 again: the 5 missing are "
      "not delivered again; status still counts 10 seen")
def _(tmp):
    box = Box(tmp, gen(10, 71))
    summary(box.run(), "work", 10)
    hidden = [box.uidl(i) for i in (1, 4, 5, 7, 9)]
    box.srv.configure(hide_uidls=hidden)
    r = box.run("-v")
    summary(r, "work", 0)
    not_contains(r.stderr, "forgot", "nothing forgotten")
    conn = last_conn(box.srv)
    ok(any(t.startswith("hiding 5") for t in box.srv.events(conn)),
       "the server listed only 5", box.srv.events(conn))
    eq(status_of(box.pf, "work")["seen"], 10, "status --json seen after the short listing")
    r = box.pf.run("status")
    like(r.stdout, r"^work: 10 seen, ", "status text after the short listing")
    box.srv.configure(hide_uidls=[])
    r = box.run()
    summary(r, "work", 0)
    eq(retrs(box.srv, last_conn(box.srv)), [], "full listing again: nothing fetched")
    exactly(box.md, box.msgs)
    eq(status_of(box.pf, "work")["seen"], 10, "status --json seen at the end")


# ------------------------------------------------------------------ UIDL -ERR

UIDL_ERR = "-ERR UIDL unavailable right now"


@test("UIDL -ERR from a server that announces UIDL, seen-list from an earlier "
      "run: 75, nothing fetched or delivered, no switch to 'no UIDL'")
def _(tmp):
    box = Box(tmp, gen(4, 81))
    summary(box.run(), "work", 4)
    box.add(gen(2, 82))
    box.srv.configure(override={"UIDL": [UIDL_ERR]})
    r = box.run()
    text = error_line(r, 75)
    like(text, r"^UIDL failed\b", "error text")
    ok(text.endswith(": " + UIDL_ERR), "ends with the server's words", text)
    not_contains(text, "does not support UIDL")
    conn = last_conn(box.srv)
    contains(box.srv.commands(conn), "UIDL", "UIDL was asked")
    eq(retrs(box.srv, conn), [], "no RETR")
    not_contains(box.srv.commands(conn), "DELE")
    exactly(box.md, box.msgs[:4], "nothing new delivered")
    box.srv.configure(override={})
    summary(box.run(), "work", 2)
    exactly(box.md, box.msgs)


@test("UIDL -ERR without CAPA, seen-list holding UIDLs, delete = true: 75, "
      "nothing fetched, deleted or delivered twice")
def _(tmp):
    box = Box(tmp, gen(4, 91))
    summary(box.run(), "work", 4)
    box.add(gen(2, 92))
    box.srv.configure(capa=False, override={"UIDL": [UIDL_ERR]})
    box.configure(delete=True)
    r = box.run()
    text = error_line(r, 75)
    like(text, r"^UIDL failed\b", "error text")
    conn = last_conn(box.srv)
    eq(retrs(box.srv, conn), [], "no RETR")
    not_contains(box.srv.commands(conn), "DELE")
    eq(box.srv.deleted_uidls(), [], "nothing deleted on the server")
    exactly(box.md, box.msgs[:4], "nothing delivered again")


# ------------------------------------------------------------------ RETR -ERR

REFUSED = "-ERR broken message"


@test("RETR -ERR for message 2 of 5, delete = true: the others delivered and "
      "deleted, QUIT acknowledged, 76 naming message 2 and its UIDL; asked "
      "again by the next run; delivered once when the server gives it")
def _(tmp):
    box = Box(tmp, gen(5, 101), delete=True, retr_refuse={"uid-2": REFUSED})
    r = box.run()
    text = error_line(r, 76)
    like(text, r"^message 2 \(UIDL uid-2\) refused by the server: ", "error text")
    ok(text.endswith(": " + REFUSED), "ends with the server's words", text)
    exactly(box.md, [m for i, m in enumerate(box.msgs) if i != 1],
            "messages 1, 3, 4, 5 delivered")
    eq(sorted(box.srv.deleted_uidls()), ["uid-1", "uid-3", "uid-4", "uid-5"],
       "deleted by a committed QUIT")
    eq(box.srv.remaining_uidls(), ["uid-2"], "the refused message stays")
    conn = last_conn(box.srv)
    dele = [ln for ln in box.srv.client_lines(conn) if ln.startswith(b"DELE")]
    eq(sorted(dele), [b"DELE 1", b"DELE 3", b"DELE 4", b"DELE 5"], "DELEs")
    ev = [(e.kind, e.text) for e in box.srv.transcript() if e.conn == conn]
    contains(ev, ("S", "+OK Logging out."), "QUIT acknowledged")
    # The message is number 1 now (the others were deleted).
    r = box.run()
    text = error_line(r, 76)
    like(text, r"^message 1 \(UIDL uid-2\) refused by the server: ", "second run")
    conn = last_conn(box.srv)
    eq(retrs(box.srv, conn), [b"RETR 1"], "the second run asks for it again")
    exactly(box.md, [m for i, m in enumerate(box.msgs) if i != 1], "second run")
    box.srv.configure(retr_refuse={})
    summary(box.run(), "work", 1, 0, 1)
    exactly(box.md, box.msgs, "after the server gave it")
    eq(box.srv.remaining_uidls(), [], "server emptied")


@test("RETR -ERR [SYS/TEMP] for message 2 of 4: same skip, the rest fetched, "
      "exit 75")
def _(tmp):
    box = Box(tmp, gen(4, 111), delete=True,
              retr_refuse={"uid-2": "-ERR [SYS/TEMP] try again later"})
    r = box.run()
    text = error_line(r, 75)
    like(text, r"^message 2 \(UIDL uid-2\) refused by the server: ", "error text")
    exactly(box.md, [m for i, m in enumerate(box.msgs) if i != 1], "the others")
    eq(box.srv.remaining_uidls(), ["uid-2"], "the refused message stays")


# ------------------------------------------------------------------ out of step

def dot_message(seed):
    """A message whose body has a line that is just "." followed by more
    lines that are neither +OK nor -ERR."""
    m = pftest.MailGen(seed).message(900)
    head, body = m.split(b"\n\n", 1)
    return (head + b"\n\nFirst part of the body.\n.\nThis line came after a lone dot.\n"
            b"And one more.\n" + body)


def unstuffed(tmp, k, n, **knobs):
    msgs = gen(n, 120 + k)
    msgs[k - 1] = dot_message(130 + k)
    box = Box(tmp, msgs, no_stuff=[k], **knobs)
    r = box.run()
    error_line(r, 76)
    ok(any(t.startswith("RETR %d: sent without dot-stuffing" % k)
           for t in box.srv.events()), "the server sent message %d unstuffed" % k)
    exactly(box.md, msgs[:k - 1], "messages before %d, nothing of %d" % (k, k))
    box.srv.configure(no_stuff=[])
    r = box.run()
    summary(r, "work", n - k + 1)
    c = exactly(box.md, msgs, "after the fault is gone")
    eq(c.tmp, [], "tmp/")
    eq(retrs(box.srv, last_conn(box.srv))[0], b"RETR %d" % k,
       "the next run fetches message %d again" % k)


@test("unstuffed '.' line inside message 3 of 5 (pipelined): 76, message 3 not "
      "delivered (no truncated half), 1-2 are; the next run delivers it whole, once")
def _(tmp):
    unstuffed(tmp, 3, 5)


@test("unstuffed '.' line inside the last message (lock-step): 76, it is not "
      "delivered; the next run delivers it whole, once")
def _(tmp):
    unstuffed(tmp, 4, 4, pipelining=False)


# ------------------------------------------------------------------ no UIDL

@test("server without UIDL, delete = true, QUIT's reply lost (no deletion "
      "committed): the next run fetches again, delivers nothing twice, deletes")
def _(tmp):
    box = Box(tmp, gen(4, 141), delete=True, uidl=False,
              override={"QUIT": ["@CLOSE"]}, fault_connections=[1])
    r = box.run()
    eq(r.rc, 75, "QUIT's reply lost: connection lost\n%s" % r)
    exactly(box.md, box.msgs, "first run")
    eq(box.srv.deleted_uidls(), [], "nothing deleted (QUIT not carried out)")
    eq(len(box.srv.remaining_uidls()), 4, "all still on the server")
    eq(status_of(box.pf, "work")["seen"], 4, "status --json: the 4 digests are kept")
    box.add(gen(1, 142))
    r = box.run()
    summary(r, "work", 1, 0, 5)
    eq(retrs(box.srv, last_conn(box.srv)), [b"RETR %d" % i for i in range(1, 6)],
       "every message fetched again")
    exactly(box.md, box.msgs, "second run: one copy of each")
    eq(box.srv.remaining_uidls(), [], "server emptied")
    eq(status_of(box.pf, "work")["seen"], 0,
       "status --json: digests forgotten once QUIT acknowledged the DELEs")


@test("server without UIDL, delete = true, two byte-identical messages in one "
      "run: one copy delivered, both deleted in that session; the next run "
      "delivers nothing")
def _(tmp):
    a, b = gen(2, 143)
    box = Box(tmp, [a, a, b], delete=True, uidl=False)
    r = box.run()
    summary(r, "work", 2, 0, 3)
    exactly(box.md, [a, b], "one copy of the twins, one of the other")
    eq(box.srv.remaining_uidls(), [], "all three deleted in the same session")
    r = box.run()
    summary(r, "work", 0, 0, 0)
    exactly(box.md, [a, b], "the next run delivers nothing")


@test("an account renamed while a run under its old name is going on: the new "
      "name waits (75) instead of sharing the seen-list; nothing delivered twice")
def _(tmp):
    box = Box(tmp, gen(3, 151), latency_ms=400)
    summary(box.run(), "work", 3)
    exactly(box.md, box.msgs, "first run, under the old name")
    box.add(gen(12, 152))
    new_conf = os.path.join(tmp, "new.conf")
    pftest.write_config(new_conf, pftest.account_conf("renamed", **box.opts))
    n0 = len(box.srv.connections())
    p1 = box.pf.spawn("fetch")
    ok(pftest.wait_for(lambda: len(box.srv.connections()) > n0, 15),
       "the run under the old name is connected")
    r2 = box.pf.run("fetch", config=new_conf)
    r1 = pftest.Popfetch.collect(p1)
    eq(r1.rc, 0, "the run under the old name\n%s" % r1)
    eq(r2.rc, 75, "the renamed account waits for it\n%s" % r2)
    contains(r2.stderr, "is being fetched by another popfetch",
             "says why")
    exactly(box.md, box.msgs, "every message once")
    box.srv.wait_closed(10)
    r3 = box.pf.run("fetch", config=new_conf)
    box.srv.wait_closed(10)
    summary(r3, "renamed", 0)
    exactly(box.md, box.msgs, "the renamed account takes the state over: "
            "nothing again")


# Never overwrite (DESIGN §7.1): the names popfetch picks cannot be
# predicted from outside; tests/unit/test_maildir.c test_commit_never_replaces.


# ------------------------------------------------------------------ SIGKILL

def killshim_path():
    """$top_builddir/tests/integration/killshim.so (make check builds it),
    else built into the temp dir from the source."""
    top = os.environ.get("top_builddir")
    if top:
        p = os.path.join(top, "tests", "integration", "killshim.so")
        if os.path.exists(p):
            return p
    out = os.path.join(T.root, "killshim.so")
    if not os.path.exists(out):
        src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "killshim.c")
        r = subprocess.run([os.environ.get("CC", "cc"), "-shared", "-fPIC", "-o", out,
                            src, "-ldl"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if r.returncode != 0:
            raise RuntimeError("cannot build killshim.so: %s" % r.stdout.decode())
        T.diag("built %s (not found in top_builddir)" % out)
    return out


RNG = random.Random(SEED)


class KillBox(Box):
    """A Box whose messages are known by UIDL; checks after every kill."""

    def __init__(self, tmp, scenario, delete, **knobs):
        self.scenario = scenario
        self.seq = 0
        self.gen = pftest.MailGen(SEED ^ zlib.crc32(scenario.encode()))
        super().__init__(tmp, [], delete=delete, latency_ms=2, **knobs)
        self.by_uidl = {}
        self.log = []

    def add_new(self, n):
        new = [self.gen.message(RNG.randint(400, 3000)) for _ in range(n)]
        first = len(self.msgs)
        self.add(new)
        uidls = [self.uidl(first + i) for i in range(n)]
        for u, m in zip(uidls, new):
            self.by_uidl[u] = m
        return uidls

    def check(self, where, final=False):
        """No partial or foreign file, nothing twice; nothing gone from the
        server that is not in the Maildir; with final: everything once."""
        c = pftest.read_maildir(self.md)
        got = collections.Counter(c.messages(strip_received=True))
        want = {pftest.pop3_expected(m): u for u, m in self.by_uidl.items()}
        bad = sum(n for m, n in got.items() if m not in want)
        dup = sorted(want[m] for m, n in got.items() if n > 1 and m in want)
        on_server = set(self.srv.remaining_uidls())
        delivered = {want[m] for m in got if m in want}
        lost = sorted(u for u in self.by_uidl if u not in on_server and u not in delivered)
        missing = sorted(u for u in self.by_uidl if u not in delivered) if final else []
        if bad or dup or lost or missing:
            raise AssertionError(
                "%s: %s after %s: %d partial/foreign file(s), delivered twice: %s, "
                "gone from the server but not delivered: %s, missing after the "
                "clean run: %s\nkills so far: %s"
                % (self.scenario, where, "the clean run" if final else "a kill",
                   bad, dup, lost, missing, "; ".join(self.log[-8:])))
        return c

    def kill_run(self, allowed, npending):
        """One popfetch run killed at a random point: a killshim point or
        a timed SIGKILL.  npending: messages it may fetch (to pick a rename)."""
        how = RNG.random()
        env = None
        delay = None
        if how < 0.5:
            shim_log = os.path.join(self.pf.dir, "killshim.log")
            env = {"LD_PRELOAD": killshim_path(), "KILLSHIM_LOG": shim_log,
                   "ASAN_OPTIONS": (os.environ.get("ASAN_OPTIONS", "") +
                                    ":verify_asan_link_order=0").lstrip(":")}
            points = [("KILLSHIM_AFTER_RENAMES", str(RNG.randint(1, max(1, npending)))),
                      ("KILLSHIM_BEFORE_RENAME", str(RNG.randint(1, max(1, npending)))),
                      ("KILLSHIM_SEND_MATCH", "RETR "),
                      ("KILLSHIM_SEND_MATCH", "QUIT")]
            if self.opts.get("delete"):
                points.append(("KILLSHIM_SEND_MATCH", "DELE "))
            k, v = RNG.choice(points)
            env[k] = v
            if k == "KILLSHIM_SEND_MATCH":
                env["KILLSHIM_SEND_WHEN"] = RNG.choice(("before", "after"))
            what = "%s=%s%s" % (k, v, " " + env["KILLSHIM_SEND_WHEN"]
                                if "KILLSHIM_SEND_WHEN" in env else "")
        else:
            delay = RNG.uniform(0, 0.05 + 0.01 * npending)
            what = "SIGKILL after %.3f s" % delay
        p = self.pf.spawn("fetch", env=env)
        if delay is not None:
            time.sleep(delay)
            try:
                p.send_signal(signal.SIGKILL)
            except ProcessLookupError:
                pass
        res = self.pf.collect(p, timeout=60)
        self.srv.wait_closed(10)
        self.log.append("%s -> exit %s" % (what, res.rc))
        ok(res.rc == -signal.SIGKILL or res.rc in allowed,
           "%s: a run that was not killed (%s) exits with one of %s"
           % (self.scenario, what, allowed), str(res))
        return res

    def clean_run(self, allowed):
        r = self.run()
        self.log.append("complete run -> exit %s" % r.rc)
        ok(r.rc in allowed, "%s: a complete run after kills exits with one of %s"
           % (self.scenario, allowed), str(r))
        return r


def kill_scenario(tmp, scenario, delete, rounds, mutate, allowed, final_fix,
                  **knobs):
    box = KillBox(tmp, scenario, delete, **knobs)
    for i in range(rounds):
        n = RNG.randint(3, 7)
        box.add_new(n)
        mutate(box)
        for _ in range(RNG.choice((1, 1, 2))):
            box.kill_run(allowed, n)
            box.check("round %d" % (i + 1))
        if RNG.random() < 0.3:
            box.clean_run(allowed)
            box.check("round %d, complete run" % (i + 1))
    final_fix(box)
    r = box.clean_run((0,))
    c = box.check("the end", final=True)
    eq(c.tmp, [], "%s: tmp/ after the clean run" % scenario)
    if delete:
        eq(box.srv.remaining_uidls(), [], "%s: server emptied" % scenario)
    T.diag("%s: %d messages; %s" % (scenario, len(box.by_uidl), "; ".join(box.log)))
    return box, r


ROUNDS = 10


@test("SIGKILL at random points during short listings (delete = false), then "
      "a clean run with the full listing: every message exactly once")
def _(tmp):
    def mutate(box):
        u = list(box.by_uidl)
        box.srv.configure(hide_uidls=RNG.sample(u, len(u) // 2))

    box, r = kill_scenario(tmp, "short listing", False, ROUNDS, mutate, (0,),
                           lambda b: b.srv.configure(hide_uidls=[]))
    eq(box.srv.deleted_uidls(), [], "delete = false: nothing deleted")
    eq(status_of(box.pf, "work")["seen"], len(box.by_uidl), "status --json seen")


@test("SIGKILL at random points while the server refuses messages (RETR -ERR, "
      "delete = true), then a clean run: every message exactly once, server empty")
def _(tmp):
    def mutate(box):
        left = box.srv.remaining_uidls()
        refuse = RNG.sample(left, min(len(left), RNG.randint(1, 2)))
        box.srv.configure(retr_refuse={u: REFUSED for u in refuse})

    kill_scenario(tmp, "refused message", True, ROUNDS, mutate, (0, 76),
                  lambda b: b.srv.configure(retr_refuse={}))


@test("SIGKILL at random points on a server without UIDL (digests, delete = "
      "true), then a clean run: every message exactly once, server empty")
def _(tmp):
    def mutate(box):
        pass

    kill_scenario(tmp, "no UIDL", True, ROUNDS, mutate, (0,), lambda b: None,
                  uidl=False)


# ------------------------------------------------------------------ §7.2 Maildir edited

# A batch of NKEPT + the rest, all in one batch (fewer than SEEN_BATCH): the
# kill comes right after rename NKEPT into new/, after the pending commit
# (6a) and before the seen commit (6c), so every row is still pending, NKEPT
# files are in the old new/ and the rest in the old tmp/.
NEDIT, NKEPT = 6, 3


def exactly_across(mds, msgs, what):
    """new/ + cur/ of the Maildirs mds together hold each of msgs exactly
    once, byte-exact (after the Received: field), and nothing else."""
    got = collections.Counter()
    for md in mds:
        got.update(pftest.read_maildir(md).messages(strip_received=True))
    want = collections.Counter(pftest.pop3_expected(m) for m in msgs)
    dup = sum(n - 1 for m, n in got.items() if n > 1 and m in want)
    missing = sum(1 for m in want if m not in got)
    extra = sum(n for m, n in got.items() if m not in want)
    ok(dup == 0 and missing == 0 and extra == 0,
       "%s: %d file(s) for %d message(s): %d delivered twice or more, %d missing, "
       "%d not among the expected" % (what, sum(got.values()), len(want), dup,
                                      missing, extra))


def killed_mid_batch(tmp, seed, delete=False):
    """A Box with NEDIT messages, its fetch SIGKILLed (killshim.so) right
    after the NKEPT-th rename into new/; checks that the kill left what the
    tests below start from."""
    box = Box(tmp, gen(NEDIT, seed), delete=delete)
    log = os.path.join(box.pf.dir, "killshim.log")
    env = {"LD_PRELOAD": killshim_path(), "KILLSHIM_LOG": log,
           "KILLSHIM_AFTER_RENAMES": str(NKEPT),
           "ASAN_OPTIONS": (os.environ.get("ASAN_OPTIONS", "") +
                            ":verify_asan_link_order=0").lstrip(":")}
    r = box.run(env=env)
    eq(r.rc, -signal.SIGKILL, "killed by the shim\n%s" % r)
    with open(log) as f:
        contains(f.read(), "killed after rename into %s/new/"
                 % os.path.realpath(box.md),
                 "the shim fired after a rename into the account's new/")
    c = exactly(box.md, box.msgs[:NKEPT],
                "after the kill: the first %d messages in new/" % NKEPT)
    eq(len(c.tmp), NEDIT - NKEPT, "after the kill: the rest in tmp/")
    st = status_of(box.pf, "work")
    eq((st["pending"], st["seen"]), (NEDIT, 0),
       "after the kill: status --json pending and seen (before the seen commit)")
    eq(box.srv.deleted_uidls(), [], "after the kill: nothing deleted")
    return box


def no_pending(box, seen):
    st = status_of(box.pf, "work")
    eq((st["pending"], st["seen"]), (0, seen), "status --json pending and seen")
    r = box.pf.run("status")
    eq(r.rc, 0, str(r))
    like(r.stdout, r"^work: %d seen, .*, 0 pending\n$" % seen, "status")


@test("§7.2: SIGKILL after %d of %d renames into new/ (before the seen commit), "
      "then the account's maildir edited to a new path: exit 0; the %d found in "
      "the old Maildir are not delivered again, the rest go to the new one; "
      "0 pending" % (NKEPT, NEDIT, NKEPT))
def _(tmp):
    box = killed_mid_batch(tmp, 151)
    old, new = box.md, box.pf.path("Mail/moved")
    box.configure(maildir=new)
    r = box.run()
    summary(r, "work", NEDIT - NKEPT)
    eq(retrs(box.srv, last_conn(box.srv)),
       [b"RETR %d" % i for i in range(NKEPT + 1, NEDIT + 1)],
       "only the messages that never reached new/ are fetched again")
    exactly(old, box.msgs[:NKEPT], "the old Maildir, untouched")
    exactly(new, box.msgs[NKEPT:], "the new Maildir")
    exactly_across([old, new], box.msgs, "old and new Maildir together")
    eq(sorted(os.listdir(os.path.join(old, "tmp"))), [],
       "the killed run's leftovers in the old tmp/ are removed")
    no_pending(box, NEDIT)


@test("§7.2: same kill, then the old Maildir removed and maildir edited to a "
      "new path (delete = true): exit 0, every message delivered again into the "
      "new one, the old one not recreated, server emptied, 0 pending")
def _(tmp):
    box = killed_mid_batch(tmp, 161, delete=True)
    old, new = box.md, box.pf.path("Mail/moved")
    shutil.rmtree(old)
    box.configure(maildir=new)
    r = box.run()
    summary(r, "work", NEDIT, 0, NEDIT)
    eq(retrs(box.srv, last_conn(box.srv)),
       [b"RETR %d" % i for i in range(1, NEDIT + 1)], "everything fetched again")
    ok(not os.path.exists(old), "the removed Maildir is not recreated", old)
    exactly(new, box.msgs, "the new Maildir")
    eq(box.srv.remaining_uidls(), [], "server emptied")
    no_pending(box, 0)


@test("§7.2 control: same kill, maildir not edited: exit 0, the %d in new/ "
      "recovered, the rest fetched once; tmp/ cleaned, 0 pending" % NKEPT)
def _(tmp):
    box = killed_mid_batch(tmp, 171)
    r = box.run()
    summary(r, "work", NEDIT - NKEPT)
    eq(retrs(box.srv, last_conn(box.srv)),
       [b"RETR %d" % i for i in range(NKEPT + 1, NEDIT + 1)],
       "only the messages that never reached new/ are fetched again")
    c = exactly(box.md, box.msgs)
    eq(c.tmp, [], "tmp/ (leftovers of the killed run removed)")
    no_pending(box, NEDIT)


T.done()
