#!/usr/bin/env python3
"""The guarantees 1-3 of doc/DESIGN.md §8 under SIGKILL, against a real Dovecot.

1. No loss: a message leaves the server only after it is in the Maildir.
2. Exactly once: a kill at any instant never makes the next successful run
   deliver a message twice or lose one; the next run recovers.
3. No partial messages: new/ and cur/ only ever hold complete messages;
   tmp/ leftovers go at the next run.

Random kills: popfetch is SIGKILLed at a random moment (seeded; the seed is
printed, PFTEST_CRASH_SEED repeats it) while fetching a mailbox of mixed
sizes with edge cases, then run to completion; after every kill and every
completed run the Maildir, the state database (status --json) and the
server are checked.  New batches go to the server between iterations so
every run has work to do.  PFTEST_CRASH_ITERATIONS sets the iterations per
mode (default 25, for delete = false and for delete = true).

Deterministic kills: killshim.so (LD_PRELOAD, tests/integration/killshim.c)
SIGKILLs popfetch at an exact point: right after the N-th rename into new/
(before the seen-list commit), at the first rename (after the pending
commit), before the first DELE is sent (after the seen commit), before
QUIT, and right after QUIT was sent.  popfetch has no test switch.
The same shim fails a batch's syncfs with EIO (doc/DESIGN.md §3.4): the
batch must be neither in new/ nor seen.
"""

import json
import os
import random
import re
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pftest  # noqa: E402
from pftest import eq, ok  # noqa: E402

T = pftest.Suite(__file__)
certs = T.certs()

SEED = int(os.environ.get("PFTEST_CRASH_SEED") or random.SystemRandom().randrange(1 << 31))
ITERATIONS = int(os.environ.get("PFTEST_CRASH_ITERATIONS") or 25)
T.diag("seed %d (PFTEST_CRASH_SEED=%d repeats the messages and kill delays)" % (SEED, SEED))
RNG = random.Random(SEED)
GEN = pftest.MailGen(SEED)
ACCOUNT = "acct"
SUMMARY = re.compile(r"^%s: (\d+) new, (\d+) skipped, (\d+) deleted, " % ACCOUNT, re.M)
RECEIVED_ID = re.compile(rb"^Received: [^\n]* id ([!-~]+); [^\n]*\n")
SIZE_FIELD = re.compile(r",S=(\d+)")


def params_define(name, default):
    """A number from lib/params.h (so the test follows a tuned batch size)."""
    top = os.environ.get("top_srcdir") or os.path.join(os.path.dirname(
        os.path.abspath(__file__)), "..", "..")
    try:
        with open(os.path.join(top, "lib", "params.h")) as f:
            m = re.search(r"^#define\s+%s\s+(\d+)\s*$" % name, f.read(), re.M)
            return int(m.group(1)) if m else default
    except OSError:
        return default


SEEN_BATCH = params_define("SEEN_BATCH", 64)

# One Dovecot for the whole script; every test has its own user and sandbox.
# All users go into the passwd-file before Dovecot starts: it re-reads the
# file only when its mtime or size changed, and two users added within one
# second with names of the same length would leave the second one unknown.
USERS = ("calib", "rnd-keep", "rnd-del", "det-after1", "det-after2",
         "det-before1", "det-before2", "det-dele", "det-quit", "det-quitsent",
         "syncfs-1", "syncfs-2", "syncorder")
_DC = {}


def dovecot():
    if "dc" not in _DC:
        dc = pftest.Dovecot(T.tmpdir("dovecot"), certs)
        T.add_cleanup(dc.stop)
        for u in USERS:
            dc.add_user(u, "pw-" + u)
        dc.start()
        _DC["dc"] = dc
    return _DC["dc"]


# Body text for mixed_messages: MailGen makes text word by word, too slow for
# thousands of messages of up to 50 KB, so bodies are slices of one long
# MailGen text (every message still has its own Message-ID and X-Mailgen).
_POOL = GEN.message(size=120000).split(b"\n\n", 1)[1].split(b"\n")[:-1]


def mixed_messages(n, edges_every=10):
    """n messages of 1-50 KB; about one in edges_every has edge cases."""
    out = []
    for _ in range(n):
        edges = ()
        if RNG.randrange(edges_every) == 0:
            edges = tuple(RNG.sample(pftest.mailgen.EDGE_CASES, RNG.randint(1, 3)))
        size = RNG.randint(1000, 50000)
        lines, used, i = [], 0, RNG.randrange(len(_POOL))
        while used < size - 700:
            ln = _POOL[i % len(_POOL)]
            lines.append(ln)
            used += len(ln) + 1
            i += 1
        out.append(GEN.message(size=size, edges=edges, body_lines=lines))
    return out


class Violations(Exception):
    """A guarantee was broken; .items is [(guarantee, text)]."""

    def __init__(self, items, where):
        self.items = items
        self.where = where
        super().__init__("%s:\n%s" % (where, self.summary()))

    def summary(self, guarantee=None, limit=12):
        """The violations (of one guarantee), at most `limit` lines each."""
        out = []
        for g in sorted(set(g for g, _ in self.items)):
            if guarantee is not None and g != guarantee:
                continue
            texts = [t for gg, t in self.items if gg == g]
            out += ["  %s: %s" % (g, t) for t in texts[:limit]]
            if len(texts) > limit:
                out.append("  %s: ... and %d more" % (g, len(texts) - limit))
        return "\n".join(out)


def _short_list(items, limit=15):
    items = list(items)
    s = ", ".join(str(x) for x in items[:limit])
    return s + (" ... (%d in all)" % len(items) if len(items) > limit else "")


class Scan:
    """One look at the Maildir: every file in new/ and cur/ verified."""

    def __init__(self, files, tmp):
        self.files = files      # [(relpath, uidl or None, problem or None)]
        self.tmp = tmp          # names in tmp/
        self.by_uidl = {}
        for rel, uidl, problem in files:
            if uidl is not None and problem is None:
                self.by_uidl.setdefault(uidl, []).append(rel)

    def problems(self):
        return [(rel, p) for rel, _, p in self.files if p is not None]

    def duplicates(self):
        return {u: rels for u, rels in self.by_uidl.items() if len(rels) > 1}


class Box:
    """A Dovecot user, a popfetch sandbox and account for it, and what the
    server was given (UIDL -> the bytes a correct delivery holds)."""

    def __init__(self, tmp, user, delete, tls="implicit", **opts):
        self.dc = dovecot()
        self.user = user
        self.delete = delete
        if user not in self.dc.users:
            raise ValueError("add %r to USERS" % user)
        self.pf = pftest.Popfetch(tmp)
        self.md = self.pf.path("Mail/" + user)
        self.pf.write_config(pftest.account_conf(
            ACCOUNT, maildir=self.md, delete=delete,
            **self.dc.account_options(user, tls=tls, **opts)))
        self.content = {}
        self.order = []
        self._cache = {}

    def add(self, msgs):
        """Put msgs on the server and learn their UIDLs (Dovecot numbers
        them in the order given; the first and last are checked with TOP)."""
        self.dc.add_messages(self.user, msgs)
        p = self.dc.login(self.user)
        try:
            listed = [ln.split(None, 1)[1].decode("ascii") for ln in p.uidl()[1]]
            new = [u for u in listed if u not in self.content]
            eq(len(new), len(msgs), "UIDLs of the %d messages just added" % len(msgs))
            for u, m in zip(new, msgs):
                self.content[u] = pftest.pop3_expected(m)
                self.order.append(u)
            for u in (new[0], new[-1]):
                _, lines, _ = p.top(listed.index(u) + 1, 0)
                want = [ln for ln in self.content[u].split(b"\n")
                        if ln.startswith(b"X-Mailgen:")]
                ok(want and want[0] in lines, "UIDL %s is message %s" % (u, want))
        finally:
            p.quit()
        return new

    def server(self):
        return self.dc.server_uidls(self.user)

    def status(self):
        r = self.pf.run("status", "--json")
        eq(r.rc, 0, "status --json exit code\n%s" % r)
        arr = json.loads(r.stdout)
        eq(len(arr), 1, "status --json accounts")
        return arr[0]

    def _verify(self, path, rel):
        """(uidl, problem) of one file in new/ or cur/."""
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            return None, "unreadable: %s" % e
        m = RECEIVED_ID.match(data)
        if not m:
            return None, "no Received: ... id UIDL; header (%d bytes: %r)" % (
                len(data), data[:80])
        uidl = m.group(1).decode("ascii")
        want = self.content.get(uidl)
        if want is None:
            return uidl, "UIDL %s was never on the server" % uidl
        body = pftest.strip_received_header(data)
        if body != want:
            i = next((k for k in range(min(len(body), len(want)))
                      if body[k] != want[k]), min(len(body), len(want)))
            return uidl, ("UIDL %s: %d bytes, expected %d, first difference at "
                          "byte %d (partial or corrupt)" % (uidl, len(body), len(want), i))
        sm = SIZE_FIELD.search(rel.split(":", 1)[0])
        if not sm:
            return uidl, "no ,S=<size> in the name"
        if int(sm.group(1)) != len(data):
            return uidl, "S=%s but the file has %d bytes" % (sm.group(1), len(data))
        return uidl, None

    def scan(self):
        files = []
        for sub in ("new", "cur"):
            d = os.path.join(self.md, sub)
            try:
                names = sorted(os.listdir(d))
            except FileNotFoundError:
                names = []
            for n in names:
                path = os.path.join(d, n)
                rel = sub + "/" + n
                try:
                    st = os.stat(path)
                except FileNotFoundError:
                    continue
                key = (st.st_ino, st.st_size, st.st_mtime_ns)
                hit = self._cache.get(rel)
                if hit is None or hit[0] != key:
                    hit = (key,) + self._verify(path, rel)
                    self._cache[rel] = hit
                files.append((rel, hit[1], hit[2]))
        try:
            tmp = sorted(os.listdir(os.path.join(self.md, "tmp")))
        except FileNotFoundError:
            tmp = []
        return Scan(files, tmp)

    # -- the checks; each returns [(guarantee, text)]
    def _common(self, sc):
        v = []
        for rel, p in sc.problems():
            v.append(("§8.3 no partial messages", "%s: %s" % (rel, p)))
        for u, rels in sorted(sc.duplicates().items()):
            v.append(("§8.2 exactly once", "UIDL %s delivered %d times: %s"
                      % (u, len(rels), ", ".join(rels))))
        return v

    def check_after_kill(self, sc, server):
        """Right after a SIGKILL: nothing partial, nothing twice, nothing
        gone from the server that is not in the Maildir."""
        v = self._common(sc)
        on_server = set(server)
        gone = [u for u in self.order if u not in on_server]
        if self.delete:
            lost = [u for u in gone if u not in sc.by_uidl]
            if lost:
                v.append(("§8.1 no loss", "deleted from the server but not in the "
                          "Maildir: UIDLs %s" % _short_list(lost)))
        elif gone:
            v.append(("§8.1 no loss", "delete = false, yet gone from the server: "
                      "UIDLs %s" % _short_list(gone)))
        return v

    def check_complete(self, sc, server, st, r, nfiles_before):
        """After a run that must have succeeded: everything exactly once."""
        v = self._common(sc)
        if r.rc != 0:
            v.append(("§8.2 exactly once", "the run after the kill failed "
                      "(recovery?): exit %s\n%s" % (r.rc, r)))
        missing = [u for u in self.order if u not in sc.by_uidl]
        if missing:
            v.append(("§8.1 no loss", "not in the Maildir after a completed run: "
                      "UIDLs %s" % _short_list(missing)))
        if sc.tmp:
            v.append(("§8.3 no partial messages", "tmp/ not empty after a completed "
                      "run: %s" % _short_list(sc.tmp)))
        if st.get("pending") != 0:
            v.append(("§8.2 exactly once", "status --json after a completed run: "
                      "pending %r, expected 0" % st.get("pending")))
        m = SUMMARY.search(r.stderr)
        added = len(sc.files) - nfiles_before
        if r.rc == 0 and (m is None or int(m.group(1)) != added):
            v.append(("§8.2 exactly once", "summary says %r, but %d file(s) were "
                      "added to the Maildir" % (m.group(0) if m else r.stderr, added)))
        if self.delete:
            if server:
                v.append(("delete = true", "server not empty after a completed run: "
                          "UIDLs %s" % _short_list(server)))
        else:
            if st.get("seen") != len(self.order):
                v.append(("§8.2 exactly once", "status --json seen %r, expected %d"
                          % (st.get("seen"), len(self.order))))
            if sorted(server) != sorted(self.order):
                v.append(("§8.1 no loss", "delete = false, server lists %d of %d "
                          "messages" % (len(server), len(self.order))))
        return v


def run_complete(box, what):
    """Run popfetch to completion and check everything; raises Violations."""
    n0 = len(box.scan().files)
    r = box.pf.run("fetch")
    sc = box.scan()
    v = box.check_complete(sc, box.server(), box.status(), r, n0)
    if v:
        raise Violations(v, what)
    return r


# ---------------------------------------------------------------- calibration

CAL = {}


@T.test("calibration: a full run of 300 mixed messages (1-50 KB, edge cases) "
        "delivers each exactly once, byte-exact")
def _(tmp):
    box = Box(tmp, "calib", delete=False)
    box.add(pftest.edge_case_messages(SEED) + mixed_messages(290))
    r = run_complete(box, "first run")
    eq(int(SUMMARY.search(r.stderr).group(1)), 300, "summary: 300 new")
    full = r.duration
    idle = min(run_complete(box, "run %d" % i).duration for i in (2, 3))
    CAL["idle"] = min(idle, full)
    CAL["per_msg"] = [max(full - idle, 0.01) / 300]
    T.diag("full run of 300 messages: %.3f s; run with nothing new: %.3f s" % (full, idle))


def kill_window(nmsgs):
    """The typical duration of a run that fetches nmsgs messages: the
    start-up time plus a low estimate (the lower third) of the time per
    message of the calibration run and the last completed runs, so that a
    moment of load on the machine does not make most kills land after the
    run has ended."""
    per = sorted(CAL.get("per_msg", [0.003])[-9:])
    return CAL.get("idle", 0.1) + per[len(per) // 3] * nmsgs


def learn_duration(r):
    """Record the time per message of a completed run that fetched enough."""
    m = SUMMARY.search(r.stderr)
    if m and int(m.group(1)) >= 30 and "idle" in CAL:
        CAL.setdefault("per_msg", []).append(
            max(r.duration - CAL["idle"], 0.001) / int(m.group(1)))


# ---------------------------------------------------------------- random kills

VIOLATIONS = {"§8.1 no loss": [], "§8.2 exactly once": [],
              "§8.3 no partial messages": []}
KILLS = {"total": 0}


def classify(box, p_rc, sc_before, sc, st):
    """Where did the kill land?  For the coverage report."""
    if p_rc == 0:
        return "after the run had finished"
    if p_rc != -signal.SIGKILL:
        return "popfetch failed on its own (exit %s)" % p_rc
    if st.get("pending"):
        return "during a group commit (pending > 0)"
    if len(sc.files) > len(sc_before.files) and all(u in sc.by_uidl for u in box.order):
        return "after the last commit (DELE, QUIT, summary)"
    if len(sc.files) > len(sc_before.files):
        return "after a commit (delivered, not all done)"
    if sc.tmp:
        return "while receiving (files in tmp/ only)"
    return "before the first delivery"


def random_kills(tmp, delete, iterations):
    box = Box(tmp, "rnd-" + ("del" if delete else "keep"), delete=delete)
    where_hist = {}
    kills = 0
    t0 = time.monotonic()
    for it in range(iterations):
        if it == 0:
            batch = pftest.edge_case_messages(SEED + 1) + mixed_messages(290)
        else:
            batch = mixed_messages(RNG.randint(50, 200 if delete else 150))
        box.add(batch)
        # Sometimes kill twice before completing (the second kill may land in
        # the recovery of the first).
        nkills = 2 if RNG.random() < 0.3 else 1
        for k in range(nkills):
            delay = RNG.uniform(0, kill_window(len(batch)))
            sc_before = box.scan()
            p = box.pf.spawn("fetch")
            time.sleep(delay)
            try:
                p.send_signal(signal.SIGKILL)
            except ProcessLookupError:
                pass
            res = box.pf.collect(p, timeout=60)
            kills += 1
            KILLS["total"] += 1
            sc = box.scan()
            st = box.status()
            where = classify(box, res.rc, sc_before, sc, st)
            where_hist[where] = where_hist.get(where, 0) + 1
            v = box.check_after_kill(sc, box.server())
            if res.rc not in (0, -signal.SIGKILL):
                v.append(("§8.2 exactly once", "the killed run failed by itself\n%s" % res))
            if v:
                raise Violations(v, "delete = %s, iteration %d (%d new messages), "
                                 "kill %d after %.3f s (%s)" % (
                                     delete, it + 1, len(batch), k + 1, delay, where))
        learn_duration(run_complete(
            box, "delete = %s, iteration %d: the run after %d kill(s)"
            % (delete, it + 1, nkills)))
    T.diag("delete = %s: %d iterations, %d kills, %d messages, %.1f s; kills landed: %s"
           % (delete, iterations, kills, len(box.order), time.monotonic() - t0,
              "; ".join("%s %d" % kv for kv in sorted(where_hist.items()))))
    landed = sum(n for w, n in where_hist.items() if not w.startswith("after the run")
                 and not w.startswith("popfetch failed"))
    ok(landed * 4 >= kills, "at least a quarter of the kills hit a running popfetch "
       "(else the kill window is wrong)", where_hist)
    RAN[delete] = True


RAN = {}


def random_test(delete):
    def body(tmp):
        try:
            random_kills(tmp, delete, ITERATIONS)
        except Violations as e:
            for g in set(g for g, _ in e.items):
                VIOLATIONS.setdefault(g, []).append("%s:\n%s" % (e.where, e.summary(g)))
            raise
    return body


T.run("random SIGKILL x %d iterations, delete = false: every run after a kill "
      "completes; checked after each kill and run" % ITERATIONS, random_test(False),
      timeout=300)
T.run("random SIGKILL x %d iterations, delete = true: every run after a kill "
      "completes, the server ends empty" % ITERATIONS, random_test(True), timeout=300)

for g, name in (("§8.1 no loss", "no message deleted from the server before it "
                 "was in the Maildir, none missing after a completed run"),
                ("§8.2 exactly once", "no message delivered twice, pending 0 and "
                 "the summary's count right after each completed run"),
                ("§8.3 no partial messages", "new/ and cur/ only ever held complete, "
                 "byte-exact messages; tmp/ empty after each completed run")):
    T.check(not VIOLATIONS[g] and len(RAN) == 2,
            "guarantee %s under %d random SIGKILLs: %s" % (g, KILLS["total"], name),
            "\n".join(VIOLATIONS[g]) or "not fully exercised: a random kill test "
            "stopped early (see above)")


# ---------------------------------------------------------------- deterministic kills

def killshim_path():
    """$top_builddir/tests/integration/killshim.so (make check builds it);
    built into the temp dir from the source when missing."""
    top = os.environ.get("top_builddir")
    if top:
        p = os.path.join(top, "tests", "integration", "killshim.so")
        if os.path.exists(p):
            return p
    if "shim" in _DC:
        return _DC["shim"]
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "killshim.c")
    out = os.path.join(T.root, "killshim.so")
    cc = os.environ.get("CC", "cc")
    r = subprocess.run([cc, "-shared", "-fPIC", "-o", out, src, "-ldl"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if r.returncode != 0:
        raise RuntimeError("cannot build killshim.so: %s" % r.stdout.decode())
    T.diag("built %s (not found in top_builddir)" % out)
    _DC["shim"] = out
    return out


def shim_env(box, **settings):
    log = os.path.join(box.pf.dir, "killshim.log")
    asan = os.environ.get("ASAN_OPTIONS", "")
    env = {"LD_PRELOAD": killshim_path(), "KILLSHIM_LOG": log,
           "ASAN_OPTIONS": (asan + ":" if asan else "") + "verify_asan_link_order=0"}
    env.update({k: str(v) for k, v in settings.items()})
    return env, log


# Two batches, the second one partial (100 when SEEN_BATCH was 64).
NDET = SEEN_BATCH + 36


def deterministic(tmp, user, settings, expect_log, expect):
    """Fetch NDET messages (delete = true, tls = none, APOP) under killshim
    with `settings`; check the state right after the kill against `expect`
    (new: files in new/, tmp: files in tmp/, pending, seen, server: messages
    still on the server; a number, a (lo, hi) range, or None), then complete
    and check exactly once."""
    box = Box(tmp, user, delete=True, tls="none", auth="apop")
    box.add(mixed_messages(NDET, edges_every=5))
    env, log = shim_env(box, **settings)
    r = box.pf.run("fetch", env=env)
    try:
        with open(log) as f:
            shim_log = f.read()
    except FileNotFoundError:
        shim_log = ""
    eq(r.rc, -signal.SIGKILL, "killed by the shim (%s)\n%s" % (settings, r))
    ok(expect_log in shim_log, "the shim fired where asked:", shim_log)
    sc = box.scan()
    st = box.status()
    server = box.server()
    v = box.check_after_kill(sc, server)
    if v:
        raise Violations(v, "right after the kill")
    got = {"new": len(sc.files), "tmp": len(sc.tmp), "pending": st["pending"],
           "seen": st["seen"], "server": len(server)}
    want = dict(got)
    want.update({k: v for k, v in expect.items() if k in want and v is not None})
    for k, v in expect.items():
        # (lo, hi): how far the fsync threads got is up to the scheduler.
        if k in want and isinstance(v, tuple):
            want[k] = got[k] if v[0] <= got[k] <= v[1] else v
    eq(got, want, "state right after the kill (files in new/, in tmp/, status "
       "pending and seen, messages on the server)")
    eq(st["last_exit"], None, "status --json: last_exit of the killed run")
    if expect.get("first_files"):
        eq([u for _, u, _ in sorted(sc.files, key=lambda f: box.order.index(f[1]))],
           box.order[:expect["new"]], "the files in new/ are the first messages")
    T.diag("after the kill: %s; %s" % (got, shim_log.strip().split(": ", 1)[-1]))
    r = run_complete(box, "the run after the kill")
    sc = box.scan()
    eq(len(sc.files), NDET, "messages in the Maildir")
    m = SUMMARY.search(r.stderr)
    eq(int(m.group(3)), expect["deleted_next"] if "deleted_next" in expect else NDET,
       "summary: deleted by the run after the kill\n%s" % r)


B = SEEN_BATCH


# A full batch commits once the next one is full or the last message is in,
# so the first batch's renames find the files of the messages after it in
# tmp/ already, or on their way there (written by the fsync threads).
@T.test("SIGKILL right after the 1st rename into new/ (before the seen commit): "
        "the file counts as delivered, the rest of the batch is fetched again, once")
def _(tmp):
    deterministic(tmp, "det-after1", {"KILLSHIM_AFTER_RENAMES": 1},
                  "killed after rename into",
                  {"new": 1, "tmp": (min(B, NDET) - 1, NDET - 1),
                   "pending": min(B, NDET),
                   "seen": 0, "server": NDET, "first_files": True})


@T.test("SIGKILL right after rename %d into new/ (second batch, before its seen "
        "commit): exactly once" % (B + 6))
def _(tmp):
    ok(NDET > B + 6, "the mailbox spans two batches")
    deterministic(tmp, "det-after2", {"KILLSHIM_AFTER_RENAMES": B + 6},
                  "killed after rename into",
                  {"new": B + 6, "tmp": NDET - B - 6, "pending": NDET - B,
                   "seen": B, "server": NDET, "first_files": True})


@T.test("SIGKILL at the first rename, after the pending commit (nothing in new/ "
        "yet): pending rows dropped, tmp/ cleaned, everything fetched once")
def _(tmp):
    deterministic(tmp, "det-before1", {"KILLSHIM_BEFORE_RENAME": 1},
                  "killed before rename into",
                  {"new": 0, "tmp": (min(B, NDET), NDET), "pending": min(B, NDET),
                   "seen": 0, "server": NDET})


@T.test("SIGKILL at the first rename of the second batch: first batch seen, "
        "second fetched again, exactly once")
def _(tmp):
    deterministic(tmp, "det-before2", {"KILLSHIM_BEFORE_RENAME": B + 1},
                  "killed before rename into",
                  {"new": B, "tmp": NDET - B, "pending": NDET - B,
                   "seen": B, "server": NDET, "first_files": True})


@T.test("SIGKILL after the seen commit, before the first DELE is sent: all "
        "delivered and seen, nothing deleted; the next run deletes, fetches nothing")
def _(tmp):
    deterministic(tmp, "det-dele", {"KILLSHIM_SEND_MATCH": "DELE "},
                  "killed before sending DELE",
                  {"new": NDET, "tmp": 0, "pending": 0, "seen": NDET,
                   "server": NDET})


@T.test("SIGKILL after every DELE was acknowledged, before QUIT: the server "
        "deletes nothing (no QUIT), the next run deletes, fetches nothing")
def _(tmp):
    deterministic(tmp, "det-quit", {"KILLSHIM_SEND_MATCH": "QUIT"},
                  "killed before sending QUIT",
                  {"new": NDET, "tmp": 0, "pending": 0, "seen": NDET,
                   "server": NDET})


def batch_syncfs_here(path):
    """Does popfetch make a batch durable with syncfs for a Maildir under
    path (doc/DESIGN.md §3.4: a local file system, Linux >= 5.8)?"""
    try:
        kind = subprocess.run(["stat", "-f", "-c", "%T", path], capture_output=True,
                              text=True).stdout.strip()
        major, minor = (int(x) for x in os.uname().release.split(".")[:2])
    except (OSError, ValueError):
        return False
    return (major, minor) >= (5, 8) and kind in (
        "ext2/ext3", "ext4", "xfs", "btrfs", "f2fs", "tmpfs")


def syncfs_fails(tmp, user, call, nmsgs):
    """The call-th syncfs fails (EIO): that batch and every later one is
    not placed (nothing of them in new/, nothing of them seen), the run
    fails 74, and the next run fetches those messages once.  Which batch
    makes the call-th syncfs depends on how far the sync threads got (a
    syncfs covers every file written before it), except for the first."""
    box = Box(tmp, user, delete=True, tls="none", auth="apop")
    if not batch_syncfs_here(box.pf.dir):
        return "no batch syncfs on this file system or kernel"
    box.add(mixed_messages(nmsgs, edges_every=5))
    env, log = shim_env(box, KILLSHIM_SYNCFS_EIO=call)
    r = box.pf.run("fetch", env=env)
    with open(log) as f:
        shim_log = f.read()
    ok("failed syncfs with EIO: call %d" % call in shim_log, "the shim failed syncfs",
       shim_log)
    eq(r.rc, 74, "a failed syncfs fails the run like a failed fsync\n%s" % r)
    ok("syncfs(" in r.stderr and "Input/output error" in r.stderr,
       "the error names syncfs", r.stderr)
    sc = box.scan()
    st = box.status()
    placed = len(sc.files)
    if call == 1:
        eq(placed, 0, "files in new/ after the first syncfs failed")
    ok(placed % B == 0 and placed < nmsgs, "whole batches before the failed one "
       "in new/ (%d files)" % placed)
    eq(st["seen"], placed, "status --json seen: the files in new/, no more")
    eq(sorted(u for _, u, _ in sc.files), sorted(box.order[:placed]),
       "the files in new/ are the first batches' messages")
    ok(len(box.server()) >= nmsgs - placed, "nothing unseen was deleted from the server")
    T.diag("syncfs call %d failed: %d of %d messages placed" % (call, placed, nmsgs))
    run_complete(box, "the run after the failed syncfs")
    eq(len(box.scan().files), nmsgs, "messages in the Maildir")
    return None


@T.test("a syncfs that fails (EIO) on the first batch: nothing renamed into new/, "
        "nothing seen, 74; the next run fetches everything once")
def _(tmp):
    why = syncfs_fails(tmp, "syncfs-1", 1, NDET)
    if why:
        T.diag("not tested: " + why)


@T.test("a syncfs that fails later (the second call, 300 messages): the batches "
        "before are seen, none after is placed; the next run fetches them once")
def _(tmp):
    why = syncfs_fails(tmp, "syncfs-2", 2, 3 * NDET)
    if why:
        T.diag("not tested: " + why)


def syncshim_path():
    """$top_builddir/tests/integration/syncshim.so, or built from source."""
    top = os.environ.get("top_builddir")
    if top:
        p = os.path.join(top, "tests", "integration", "syncshim.so")
        if os.path.exists(p):
            return p
    if "syncshim" not in _DC:
        src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "syncshim.c")
        out = os.path.join(T.root, "syncshim.so")
        r = subprocess.run([os.environ.get("CC", "cc"), "-shared", "-fPIC", "-o", out,
                            src, "-ldl"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if r.returncode != 0:
            raise RuntimeError("cannot build syncshim.so: %s" % r.stdout.decode())
        _DC["syncshim"] = out
    return _DC["syncshim"]


@T.test("power loss (doc/DESIGN.md §3.1): no sync of the state database "
        "while a name renamed into new/ is not durable yet (a syncfs begun after "
        "the rename, or an fsync of new/, comes first)")
def _(tmp):
    # A SIGKILL keeps what the kernel has; only this order keeps a power cut
    # from leaving a key seen whose file's name in new/ was lost.  The last
    # batch is short, so the flush follows the previous renames closely.
    box = Box(tmp, "syncorder", delete=False, tls="none", auth="apop")
    n = 4 * B + 5
    box.add(mixed_messages(n, edges_every=5))
    log = os.path.join(box.pf.dir, "syncshim.log")
    asan = os.environ.get("ASAN_OPTIONS", "")
    env = {"LD_PRELOAD": syncshim_path(), "SYNCSHIM_LOG": log, "SYNCSHIM_RENAMES": "1",
           "ASAN_OPTIONS": (asan + ":" if asan else "") + "verify_asan_link_order=0"}
    r = box.pf.run("fetch", env=env)
    eq(r.rc, 0, "the fetch under syncshim.so\n%s" % r)
    with open(log) as f:
        lines = [ln.rstrip("\n").split(" ", 2) for ln in f]
    renames = uncovered = db_syncs = 0
    bad = []
    for i, (_, call, path) in enumerate(lines):
        if call == "rename" and path.endswith("/new"):
            renames += 1
            uncovered += 1
        elif call == "syncfs" or (call == "fsync" and path.endswith("/new")):
            uncovered = 0
        elif call in ("fsync", "fdatasync") and path.startswith(box.pf.state_dir):
            db_syncs += 1
            if uncovered:
                bad.append("line %d: %s %s after %d rename(s) not yet durable"
                           % (i + 1, call, path, uncovered))
    eq(renames, n, "renames into new/ seen by the shim")
    ok(db_syncs >= 2, "syncs of the state database seen by the shim (%d)" % db_syncs)
    ok(not bad, "every sync of the state database after renames into new/ comes "
       "after they are durable", "\n".join(bad[:10]))
    eq(len(box.scan().files), n, "messages in the Maildir")


def deterministic_after_quit(tmp, user):
    """The server may or may not have carried out QUIT when it saw the
    connection close: either is fine, as long as what it removed is in the
    Maildir."""
    box = Box(tmp, user, delete=True, tls="none", auth="apop")
    box.add(mixed_messages(NDET, edges_every=5))
    env, log = shim_env(box, KILLSHIM_SEND_MATCH="QUIT", KILLSHIM_SEND_WHEN="after")
    r = box.pf.run("fetch", env=env)
    with open(log) as f:
        shim_log = f.read()
    eq(r.rc, -signal.SIGKILL, "killed by the shim\n%s" % r)
    ok("killed after sending QUIT" in shim_log, "the shim fired where asked:", shim_log)
    sc = box.scan()
    st = box.status()
    eq((len(sc.files), len(sc.tmp), st["pending"], st["seen"]), (NDET, 0, 0, NDET),
       "files in new/, in tmp/, status pending and seen after the kill")
    # Let the server finish what the QUIT started, then check no loss.
    pftest.wait_for(lambda: len(box.server()) in (0, NDET), 5)
    left = box.server()
    v = box.check_after_kill(sc, left)
    if v:
        raise Violations(v, "right after the kill")
    T.diag("after the kill: %d of %d messages still on the server" % (len(left), NDET))
    r = run_complete(box, "the run after the kill")
    m = SUMMARY.search(r.stderr)
    eq(int(m.group(1)), 0, "summary: nothing new after the kill\n%s" % r)
    eq(len(box.scan().files), NDET, "messages in the Maildir")


@T.test("SIGKILL right after QUIT was sent: whatever the server removed is in "
        "the Maildir; the next run fetches nothing and the server ends empty")
def _(tmp):
    deterministic_after_quit(tmp, "det-quitsent")


T.done()
