#!/usr/bin/env python3
"""Filters, Maildir++ folders and MDAs (popfetch.conf(5) filter and mda;
doc/DESIGN.md §10) against a real Dovecot: where each verdict puts a
message, what a filter and an MDA are told and given, what a failing or
hostile one costs (nothing lost, nothing twice), and the summary line.

Filters and MDAs here are small shell scripts written by the tests; real
MDAs and classifiers (dovecot-lda with Sieve, maildrop, procmail,
bogofilter) are in mda.t.
"""

import hashlib
import os
import re
import stat
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pftest  # noqa: E402
from pftest import eq, ok, contains, not_contains, like  # noqa: E402

T = pftest.Suite(__file__)
S = {}
NUSERS = 40


def dovecot():
    if "dc" not in S:
        raise AssertionError("Dovecot did not start (see test 1)")
    return S["dc"]


def new_user():
    S["nuser"] = S.get("nuser", 0) + 1
    ok(S["nuser"] <= NUSERS, "enough users in the pool")
    return "d%02d" % S["nuser"]


class Box:
    """A mail user on the shared Dovecot and a popfetch sandbox for it."""

    def __init__(self, tmp, msgs=(), name="work", **opts):
        self.dc = dovecot()
        self.user = new_user()
        self.name = name
        if msgs:
            self.dc.add_messages(self.user, list(msgs))
        self.pf = pftest.Popfetch(tmp)
        self.md = self.pf.path("Mail/" + name)
        self.opts = {"maildir": self.md}
        self.opts.update(opts)
        self.configure()

    def configure(self, **opts):
        self.opts.update(opts)
        o = self.dc.account_options(self.user)
        o.update(self.opts)
        self.pf.write_config(pftest.account_conf(self.name, **o))

    def run(self, *args, **kw):
        return self.pf.run(*args, **kw)

    def maildir(self, folder=None):
        return pftest.read_maildir(self.md if folder is None else
                                   os.path.join(self.md, "." + folder))

    def script(self, name, body):
        """An executable shell script in the sandbox; its path."""
        path = self.pf.path(name)
        with open(path, "w") as f:
            f.write("#!/bin/sh\n" + body)
        os.chmod(path, 0o755)
        return path

    def server_count(self):
        return self.dc.server_message_count(self.user)


SUMMARY = re.compile(r"(\S+): (\d+) new, (\d+) skipped, (\d+) deleted, "
                     r"(\d+) discarded, \S+ [kMG]?B in \S+ s\n")
SUMMARY_PLAIN = re.compile(r"(\S+): (\d+) new, (\d+) skipped, (\d+) deleted, "
                           r"\S+ [kMG]?B in \S+ s\n")


def summary(r, name, new, skipped, deleted, discarded):
    m = SUMMARY.search(r.stderr)
    ok(m, "summary line with discards", r.stderr)
    eq((m.group(1), int(m.group(2)), int(m.group(3)), int(m.group(4)),
        int(m.group(5))), (name, new, skipped, deleted, discarded),
       "name, new, skipped, deleted, discarded in " + m.group(0).strip())


def msgs_with_subjects(seed, subjects):
    """One message per subject; the body is MailGen's."""
    base = pftest.MailGen(seed).messages(len(subjects), 300, 900)
    return [b"Subject: " + s.encode() + b"\n" + m for s, m in zip(subjects, base)]


# A filter that routes by Subject: "to FOLDER" delivers there, "drop"
# discards, "tempfail" exits 75, "fail" exits 3; it also logs its
# environment and saves its stdin.
ROUTER = r'''
seen="$1"
n="$POPFETCH_UIDL"
cat > "$seen/$n.msg"
printf '%s|%s|%s\n' "$POPFETCH_ACCOUNT" "$POPFETCH_UIDL" "$POPFETCH_SIZE" > "$seen/$n.env"
subj=$(sed -n 's/^Subject: //p' "$seen/$n.msg" | head -n 1)
case "$subj" in
to\ *) echo "${subj#to }"; exit 0 ;;
drop) exit 99 ;;
tempfail) exit 75 ;;
fail) echo "it broke" >&2; exit 3 ;;
*) exit 0 ;;
esac
'''


def router(box):
    seen = box.pf.path("filter-saw")
    os.makedirs(seen, exist_ok=True)
    return box.script("router", ROUTER) + " " + seen, seen


def saw(seen, uidls):
    """What the filter (or MDA) was given for each of uidls, in that order:
    [(stdin bytes, env line)], those it never saw left out.  (Filters run
    two at a time: each writes under its message's UIDL.)"""
    out = []
    for u in uidls:
        p = os.path.join(seen, u + ".msg")
        if not os.path.exists(p):
            continue
        with open(p, "rb") as f:
            data = f.read()
        with open(os.path.join(seen, u + ".env")) as f:
            out.append((data, f.read().strip()))
    return out


# ------------------------------------------------------------------ set-up

@T.test("dovecot starts (shared by every test of this script)")
def _(tmp):
    dc = pftest.Dovecot(tmp, T.certs())
    T.add_cleanup(dc.stop)
    for i in range(1, NUSERS + 1):
        dc.add_user("d%02d" % i, "pw-d%02d-deliver" % i)
    dc.start()
    S["dc"] = dc


# ------------------------------------------------------------------ filter

@T.test("filter: exit 0 with a folder line delivers into .Folder/new/ (made "
        "with tmp/ new/ cur/ maildirfolder, 0700), no line into the inbox; "
        "99 discards; stdin is the message as delivered; POPFETCH_* set")
def _(tmp):
    msgs = msgs_with_subjects(1, ["hello", "to Junk", "to Lists.dev", "drop",
                                  "to Junk"])
    box = Box(tmp, msgs)
    cmd, seen = router(box)
    box.configure(filter=cmd)
    r = box.run("fetch")
    eq(r.rc, 0, str(r))
    summary(r, "work", 5, 0, 0, 1)
    inbox, junk, dev = box.maildir(), box.maildir("Junk"), box.maildir("Lists.dev")
    eq(len(inbox), 1, "one in the inbox")
    eq(len(junk), 2, "two in .Junk")
    eq(len(dev), 1, "one in .Lists.dev")
    for folder in ("Junk", "Lists.dev"):
        base = os.path.join(box.md, "." + folder)
        for sub in ("tmp", "new", "cur"):
            ok(os.path.isdir(os.path.join(base, sub)), "%s/%s" % (folder, sub))
            eq(stat.S_IMODE(os.stat(os.path.join(base, sub)).st_mode), 0o700,
               "mode of .%s/%s" % (folder, sub))
        ok(os.path.isfile(os.path.join(base, "maildirfolder")),
           "maildirfolder in ." + folder)
        eq(box.maildir(folder).tmp, [], "nothing in .%s/tmp" % folder)
    eq(inbox.tmp, [], "nothing left in tmp/")
    delivered = sorted(inbox.messages() + junk.messages() + dev.messages())
    uidls = box.dc.server_uidls(box.user)
    given = saw(seen, uidls)
    eq(len(given), 5, "the filter ran once per message")
    for i, (data, env) in enumerate(given):
        eq(pftest.strip_received_header(data), pftest.pop3_expected(msgs[i]),
           "filter's stdin %d is the message" % i)
        ok(data.startswith(b"Received: "), "with its Received: field")
        eq(env, "work|%s|%d" % (uidls[i], len(data)), "POPFETCH_* of message %d" % i)
    eq(delivered, sorted(d for d, _ in given if b"Subject: drop" not in d),
       "what was delivered is what the filter read, the discarded one aside")
    # Nothing is fetched twice, the discarded one included.
    r = box.run("fetch").expect(0)
    summary(r, "work", 0, 0, 0, 0)
    eq(len(os.listdir(seen)), 10, "no message filtered again")


@T.test("filter: exit 75 and other failures leave the message on the server "
        "(75, the rest delivered, the error names message and UIDL); fixed, "
        "the next run delivers exactly those")
def _(tmp):
    msgs = msgs_with_subjects(2, ["a", "tempfail", "b", "fail", "c"])
    box = Box(tmp, msgs, delete=True)
    cmd, seen = router(box)
    box.configure(filter=cmd)
    uidls = box.dc.server_uidls(box.user)
    r = box.run("fetch")
    eq(r.rc, 75, str(r))
    like(r.stderr, r"work: message 2 \(UIDL %s\) not delivered: the filter "
         r"asked to try again later \(exit 75\)" % re.escape(uidls[1]))
    like(r.stderr, r"work: message 4 \(UIDL %s\) not delivered: the filter "
         r"failed \(exit 3\)" % re.escape(uidls[3]))
    contains(r.stderr, "popfetch: work: filter: it broke", "the filter's stderr")
    eq(len(box.maildir()), 3, "the other three delivered")
    eq(box.server_count(), 2, "only those two left on the server")
    box.configure(filter=box.script("ok", "cat >/dev/null\n"))
    r = box.run("fetch").expect(0)
    summary(r, "work", 2, 0, 2, 0)
    eq(len(box.maildir()), 5, "all five, once each")
    eq(sorted(box.maildir().messages(strip_received=True)),
       sorted(pftest.pop3_expected(m) for m in msgs), "byte-exact")


@T.test("filter: a hostile folder name ('../x', '.hidden', 'a/b', control "
        "character, '..') fails the filter: 75, nothing outside the Maildir")
def _(tmp):
    for i, name in enumerate(["../x", ".hidden", "a/b", "bad\x1bname", "a..b"]):
        sub = os.path.join(tmp, "h%d" % i)
        os.makedirs(sub)
        box = Box(sub, pftest.MailGen(30 + i).messages(1, 300, 600))
        f = box.script("hostile", "cat >/dev/null\nprintf '%s\\n' " +
                       "'" + name + "'\n")
        box.configure(filter=f)
        r = box.run("fetch")
        eq(r.rc, 75, "%r: %s" % (name, r))
        contains(r.stderr, "which is not a folder name", repr(name))
        pftest.terminal_safe(r.stderr.encode(), "stderr for %r" % name)
        eq(len(box.maildir()), 0, "nothing delivered for %r" % name)
        eq(sorted(os.listdir(box.md)), ["cur", "new", "tmp"],
           "no folder made for %r" % name)
        ok(not os.path.exists(os.path.join(sub, "x")), "nothing at ../x")
        eq(box.server_count(), 1, "left on the server")


@T.test("filter: a filter that cannot be run is 78; one that hangs is killed "
        "after timeout (75); one that floods its output or does not read "
        "its input costs nothing")
def _(tmp):
    msgs = pftest.MailGen(40).messages(2, 300, 600)
    box = Box(tmp, msgs, timeout=2)
    box.configure(filter=box.pf.path("no-such-filter"))
    r = box.run("fetch")
    eq(r.rc, 78, str(r))
    contains(r.stderr, "the filter command cannot be run")
    eq(len(box.maildir()), 0, "nothing delivered")
    box.configure(filter=box.script("hang", "cat >/dev/null; sleep 60\n"))
    t0 = time.time()
    r = box.run("fetch", timeout=40)
    eq(r.rc, 75, str(r))
    ok(time.time() - t0 < 20, "killed after the timeout", time.time() - t0)
    contains(r.stderr, "the filter did not finish within 2 s")
    box.configure(filter=box.script(
        "flood", "cat >/dev/null\nhead -c 20000000 /dev/zero | tr '\\0' x\n"
        "yes | head -c 2000000 1>&2\nexit 0\n"))
    r = box.run("fetch", timeout=60)
    eq(r.rc, 75, "a 20 MB first line is no folder name: " + str(r))
    contains(r.stderr, "which is not a folder name")
    ok(len(r.stderr) < 100000, "stderr lines logged are bounded", len(r.stderr))
    box.configure(filter=box.script("noread", "exit 0\n"))
    r = box.run("fetch").expect(0)
    eq(len(box.maildir()), 2, "not reading stdin is no error")


# ------------------------------------------------------------------ mda

MDA = r'''
out="$1"
n="$POPFETCH_UIDL"
cat > "$out/$n.msg"
printf '%s|%s|%s|%s\n' "$POPFETCH_ACCOUNT" "$POPFETCH_UIDL" "$POPFETCH_SIZE" "$POPFETCH_FOLDER" > "$out/$n.env"
if [ -f "$out/exit" ]; then exit $(cat "$out/exit"); fi
exit 0
'''


def mda(box):
    out = box.pf.path("mda-got")
    os.makedirs(out, exist_ok=True)
    return box.script("mda", MDA) + " " + out, out


@T.test("mda: each message piped with X-Popfetch-Id on top and POPFETCH_* "
        "set, no Maildir made; recorded, deleted when configured; the id is "
        "the same in every run")
def _(tmp):
    msgs = pftest.MailGen(50).messages(3, 500, 2000)
    box = Box(tmp, msgs, delete=True)
    cmd, out = mda(box)
    box.configure(maildir=None, mda=cmd)
    server_uidls = box.dc.server_uidls(box.user)
    r = box.run("fetch")
    eq(r.rc, 0, str(r))
    ok(not os.path.exists(box.md), "no Maildir")
    got = saw(out, server_uidls)
    eq(len(got), 3, "three hand-overs")
    uidls = ["x"] * 3
    ids = []
    for i, (data, env) in enumerate(got):
        m = re.match(rb"X-Popfetch-Id: ([0-9a-f]{32}@popfetch)\n", data)
        ok(m, "X-Popfetch-Id on top", data[:80])
        ids.append(m.group(1))
        rest = data[m.end():]
        eq(pftest.strip_received_header(rest), pftest.pop3_expected(msgs[i]),
           "the message follows")
        acct, uidl, size, folder = env.split("|")
        eq((acct, int(size), folder), ("work", len(data), ""), "env of %d" % i)
        uidls[i] = uidl
    eq(len(set(ids)), 3, "ids differ")
    exp = hashlib.sha256(("%s@127.0.0.1:%d\n%s" % (
        box.user, box.dc.pop3s_port, uidls[0])).encode()).hexdigest()[:32]
    eq(ids[0].decode(), exp + "@popfetch", "the id: SHA-256 of mailbox and UIDL")
    eq(box.server_count(), 0, "deleted after delivery")
    st = box.run("status", "--json").expect(0)
    head = len("X-Popfetch-Id: %s\n" % ids[0].decode())
    contains(st.stdout, '"bytes": %d' % sum(len(d) - head for d, _ in got),
             "recorded: the bytes handed over, less X-Popfetch-Id")


@T.test("mda: exit 75 and other failures leave the message (75); an mda that "
        "cannot be run is 78; with a filter, POPFETCH_FOLDER is its folder")
def _(tmp):
    msgs = msgs_with_subjects(3, ["to Junk", "plain"])
    box = Box(tmp, msgs, delete=True)
    server_uidls = box.dc.server_uidls(box.user)
    cmd, out = mda(box)
    with open(os.path.join(out, "exit"), "w") as f:
        f.write("75\n")
    box.configure(maildir=None, mda=cmd)
    r = box.run("fetch")
    eq(r.rc, 75, str(r))
    contains(r.stderr, "not delivered: the mda asked to try again later (exit 75)")
    eq(box.server_count(), 2, "both left")
    with open(os.path.join(out, "exit"), "w") as f:
        f.write("1\n")
    r = box.run("fetch")
    eq(r.rc, 75, str(r))
    contains(r.stderr, "not delivered: the mda failed (exit 1)")
    box.configure(mda=box.pf.path("no-such-mda"))
    r = box.run("fetch")
    eq(r.rc, 78, str(r))
    contains(r.stderr, "the mda command cannot be run")
    eq(box.server_count(), 2, "still both")
    os.unlink(os.path.join(out, "exit"))
    for n in os.listdir(out):
        os.unlink(os.path.join(out, n))
    fcmd, _seen = router(box)
    box.configure(mda=cmd, filter=fcmd)
    r = box.run("fetch")
    eq(r.rc, 0, str(r))
    summary(r, "work", 2, 0, 2, 0)
    folders = [env.split("|")[3] for _, env in saw(out, server_uidls)]
    eq(folders, ["Junk", ""], "POPFETCH_FOLDER")
    eq(box.server_count(), 0, "deleted once delivered")


T.done()
