#!/usr/bin/env python3
"""Many accounts on one host (issue 17): what a run with nothing new costs,
and many accounts at once on one state database.

  idle      after a first fetch, a run that finds nothing new makes at most
            one sync (fsync, fdatasync, syncfs, sync_file_range, sync,
            msync) in all: nothing it records must be durable
            (doc/DESIGN.md §3.4); counted by syncshim.so (LD_PRELOAD,
            tests/integration/syncshim.c).  A run that delivers still
            fsyncs the message and commits the seen-list durably, also
            right after an idle account in the same run (the connection
            they share last wrote history at synchronous = NORMAL).
  -j 64     NACC accounts, one configuration and one state database, at
            -j 64: a first fetch, a second with one new message each, and
            one with nothing new all exit 0 (no account fails with 75 on
            the shared database) and leave every message exactly once.
  -j 1      one worker thread runs each account's local start in turn
            (fetcher/run.c): accounts whose start fails cost the next
            ones nothing, password_command included.

One Dovecot serves the script, its process limits raised for 64 logins at
once.
"""

import collections
import json
import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pftest  # noqa: E402
from pftest import eq, ok  # noqa: E402

T = pftest.Suite(__file__)
S = {}
NACC = 80
PASSWORD = "scale-Secret-1"
KEY_RE = re.compile(rb"^X-Mailgen: seed=(\d+) n=(\d+)\r?$", re.M)
LIMITS = """
default_process_limit = 300
default_client_limit = 3000
service pop3-login {
  process_limit = 300
}
service pop3 {
  process_limit = 300
}
"""


def syncshim_path():
    """$top_builddir/tests/integration/syncshim.so (make check builds it);
    built into the temp dir from the source when missing."""
    top = os.environ.get("top_builddir")
    if top:
        p = os.path.join(top, "tests", "integration", "syncshim.so")
        if os.path.exists(p):
            return p
    if "shim" in S:
        return S["shim"]
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "syncshim.c")
    out = os.path.join(T.root, "syncshim.so")
    r = subprocess.run([os.environ.get("CC", "cc"), "-shared", "-fPIC", "-o", out, src,
                        "-ldl"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        raise RuntimeError("cannot build syncshim.so: %s" % r.stdout.decode())
    T.diag("built %s (not found in top_builddir)" % out)
    S["shim"] = out
    return out


def synced(pf, *args):
    """Run popfetch ARGS under syncshim.so: (result, the sync lines)."""
    log = os.path.join(pf.dir, "syncshim.log")
    if os.path.exists(log):
        os.unlink(log)
    asan = os.environ.get("ASAN_OPTIONS", "")
    r = pf.run(*args, env={"LD_PRELOAD": syncshim_path(), "SYNCSHIM_LOG": log,
                           "ASAN_OPTIONS": (asan + ":" if asan else "")
                           + "verify_asan_link_order=0"}, timeout=120)
    lines = []
    if os.path.exists(log):
        with open(log) as f:
            lines = [ln.rstrip("\n") for ln in f]
    return r, lines


def keys_in(md):
    """X-Mailgen keys of the files in a Maildir's new/ and cur/: a Counter."""
    got = collections.Counter()
    for sub in ("new", "cur"):
        d = os.path.join(md, sub)
        for name in os.listdir(d) if os.path.isdir(d) else ():
            with open(os.path.join(d, name), "rb") as f:
                m = KEY_RE.search(f.read())
            got[(int(m.group(1)), int(m.group(2))) if m else None] += 1
    return got


def key_of(msg):
    m = KEY_RE.search(msg)
    return (int(m.group(1)), int(m.group(2)))


@T.test("a Dovecot for %d users, 64 logins at once" % NACC)
def _(tmp):
    dc = pftest.Dovecot(tmp, T.certs(), extra_conf=LIMITS)
    for i in range(NACC):
        dc.add_user("s%03d" % i, PASSWORD)
    dc.add_user("idle", PASSWORD)
    for i in range(6):      # before the start: see tests/integration/cli.t new_user
        dc.add_user("w%d" % i, PASSWORD)
    dc.add_user("quiet", PASSWORD)
    dc.add_user("busy", PASSWORD)
    dc.start()
    T.add_cleanup(dc.stop)
    S["dc"] = dc


def dovecot():
    if "dc" not in S:
        raise AssertionError("Dovecot did not start (see test 1)")
    return S["dc"]


@T.test("an idle account: at most one sync per run; a delivering run still syncs")
def _(tmp):
    dc = dovecot()
    gen = pftest.MailGen(1701)
    dc.add_messages("idle", gen.messages(2, 2000, 4000))
    pf = pftest.Popfetch(tmp)
    md = os.path.join(tmp, "Maildir")
    pf.write_config(pftest.account_conf("idle", **dc.account_options(
        "idle", maildir=md)))
    r, first = synced(pf, "fetch")
    r.expect(0)
    ok(len(first) > 0, "the shim sees the first fetch's syncs", first)
    for i in range(3):
        r, lines = synced(pf, "fetch")
        r.expect(0)
        ok(len(lines) <= 1, "idle run %d: %d syncs (at most 1)" % (i + 1, len(lines)),
           "\n".join(lines))
    eq(sum(keys_in(md).values()), 2, "the two messages, once")
    # The control: nothing durable is skipped when a message arrives.
    new = gen.messages(1, 2000, 4000)
    dc.add_messages("idle", new)
    r, lines = synced(pf, "fetch")
    r.expect(0)
    text = "\n".join(lines)
    # Its file is fsynced, or the Maildir's file system is synced with
    # syncfs before the rename (doc/DESIGN.md §3.4).
    ok(any(re.search(r"(fsync|fdatasync) %s/(tmp|new)/" % re.escape(md), ln) or
           re.search(r"syncfs %s/(tmp|new)$" % re.escape(md), ln) for ln in lines),
       "the new message's file is synced", text)
    ok(any(re.search(r"fdatasync \S*popfetch\.db(-wal)?$", ln) for ln in lines),
       "the seen-list's commit is synced", text)
    eq(keys_in(md)[key_of(new[0])], 1, "the new one, once")


@T.test("-j 1: after an idle account, the next account's delivery is still "
        "committed durably (synced after the message's file)")
def _(tmp):
    dc = dovecot()
    gen = pftest.MailGen(1704)
    for u in ("quiet", "busy"):
        dc.add_messages(u, gen.messages(2, 2000, 4000))
    pf = pftest.Popfetch(tmp)
    md = {u: os.path.join(tmp, "Maildir-" + u) for u in ("quiet", "busy")}
    # quiet first: -j 1 runs the accounts in the configuration's order.
    pf.write_config("".join(pftest.account_conf(u, **dc.account_options(
        u, maildir=md[u])) for u in ("quiet", "busy")))
    synced(pf, "fetch", "-j", "1")[0].expect(0)
    new = gen.messages(1, 2000, 4000)
    dc.add_messages("busy", new)
    r, lines = synced(pf, "fetch", "-j", "1")
    r.expect(0)
    ok(re.search(r"^quiet: 0 new", r.stderr, re.M) and
       re.search(r"^busy: 1 new", r.stderr, re.M), "quiet idle, then busy delivers",
       r.stderr)
    text = "\n".join(lines)
    file_sync = [i for i, ln in enumerate(lines)
                 if re.search(r"(fsync|fdatasync) %s/(tmp|new)/" % re.escape(md["busy"]), ln)
                 or re.search(r"syncfs %s/(tmp|new)$" % re.escape(md["busy"]), ln)]
    ok(file_sync, "busy's new message's file is synced", text)
    ok(file_sync and any(re.search(r"fdatasync \S*popfetch\.db-wal$", ln)
                         for ln in lines[file_sync[0] + 1:]),
       "then the seen-list's commit syncs the WAL", text)
    eq(keys_in(md["busy"])[key_of(new[0])], 1, "the new one, once")


@T.test("-j 64 over %d accounts on one state database: none fails, each message once"
        % NACC, timeout=300)
def _(tmp):
    dc = dovecot()
    gen = pftest.MailGen(1702)
    want = {}
    users = ["s%03d" % i for i in range(NACC)]
    for u in users:
        msgs = gen.messages(2, 1500, 4000)
        dc.add_messages(u, msgs)
        want[u] = [key_of(m) for m in msgs]
    pf = pftest.Popfetch(tmp)
    root = os.path.join(tmp, "mail")
    pf.write_config("".join(pftest.account_conf(u, **dc.account_options(
        u, maildir=os.path.join(root, u))) for u in users))

    def check(what):
        bad = []
        for u in users:
            got = keys_in(os.path.join(root, u))
            if sorted(got) != sorted(want[u]) or any(c != 1 for c in got.values()):
                bad.append("%s: %s, want %s" % (u, dict(got), want[u]))
        eq(bad, [], what + ": every message exactly once")

    r = pf.run("-q", "fetch", "-j", "64", timeout=240)
    eq((r.rc, r.stderr), (0, ""), "first fetch at -j 64: exit 0, no account failed")
    check("first fetch")
    for u in users:
        msgs = gen.messages(1, 1500, 4000)
        dc.add_messages(u, msgs)
        want[u].append(key_of(msgs[0]))
    r = pf.run("-q", "fetch", "-j", "64", timeout=240)
    eq((r.rc, r.stderr), (0, ""), "one new each at -j 64: exit 0, no account failed")
    check("one new each")
    r = pf.run("-q", "fetch", "-j", "64", timeout=240)
    eq((r.rc, r.stderr), (0, ""), "nothing new at -j 64: exit 0, no account failed")
    check("nothing new")


@T.test("-j 1: one worker thread serves every account's local start; accounts "
        "whose start fails (Maildir path taken by a file) cost the others nothing")
def _(tmp):
    dc = dovecot()
    gen = pftest.MailGen(1703)
    users = ["w%d" % i for i in range(6)]
    bad = {"w1", "w3", "w4"}
    want = {}
    for u in users:
        msgs = gen.messages(2, 1500, 4000)
        dc.add_messages(u, msgs)
        want[u] = sorted(key_of(m) for m in msgs)
    pf = pftest.Popfetch(tmp)
    root = os.path.join(tmp, "mail")
    os.makedirs(root)
    marker = {u: os.path.join(tmp, "ran-" + u) for u in users}
    text = ""
    for u in users:
        o = dc.account_options(u, maildir=os.path.join(root, u))
        if u in ("w2", "w3"):
            # Waits for the first part of the start (run.c prep_failed).
            o["password_command"] = "touch %s; echo %s" % (marker[u], o.pop("password"))
        text += pftest.account_conf(u, **o)
        if u in bad:
            with open(os.path.join(root, u), "w") as f:
                f.write("not a Maildir\n")
    pf.write_config(text)

    def check(what, rc, failing):
        r = pf.run("fetch", "-j", "1", timeout=120)
        eq(r.rc, rc, what + ": exit code\n" + str(r))
        for u in users:
            if u in failing:
                ok(re.search(r"^popfetch: %s: .*%s" % (u, re.escape(os.path.join(root, u))),
                             r.stderr, re.M), what + ": %s's error names its Maildir" % u,
                   r.stderr)
            else:
                eq(sorted(keys_in(os.path.join(root, u)).elements()), want[u],
                   what + ": %s has its messages, once" % u)
        st = {a["account"]: a["last_exit"]
              for a in json.loads(pf.run("status", "--json").expect(0).stdout)}
        eq(st, {u: 74 if u in failing else 0 for u in users}, what + ": runs recorded")

    check("first run", 74, bad)
    ok(os.path.exists(marker["w2"]) and not os.path.exists(marker["w3"]),
       "password_command run for w2, not for w3 (its start failed)")
    check("nothing new", 74, bad)
    for u in bad:
        os.unlink(os.path.join(root, u))
    check("Maildirs fixed", 0, set())


T.done()
