#!/usr/bin/env python3
"""Filters, folders and MDAs (doc/DESIGN.md §10) under SIGKILL, hostile
commands and connection cuts: the guarantees of §3 and §8 still hold once
a command sits between the server and the Maildir.

Everything here runs against the scripted server (popserver.py, mailbox
mode: a correct POP3 server whose deletions are committed only by QUIT),
so a test sees exactly which UIDLs were deleted and can cut connections.
Every message carries an "X-Route:" field that the test's filter reads to
route it: "inbox", a folder name, or "drop" (exit 99, discarded).

- Random kills (seeded: the seed is printed, PFTEST_CRASH_SEED repeats it;
  PFTEST_DELIVER_CRASH_ITERATIONS sets the iterations per mode): with the
  Maildir backend and a filter routing into Maildir++ folders, for
  delete = false and true, popfetch is SIGKILLed at a random moment, then
  run to completion; after every kill nothing is partial, twice or lost
  from the server, and after every completed run each message is exactly
  once in the folder its route names (a discarded one nowhere), every
  tmp/ is empty, status says pending 0, the server is emptied when
  deleting.
- Deterministic kills: killshim.so after the 3rd rename into a new/ (folders
  included); a filter that signals it is running (a file) and sleeps, then
  popfetch is killed; an MDA likewise (at least once for that message,
  nothing else repeated); an MDA that is itself killed (75, left on the
  server, delivered by the next run).
- Hostile commands: a background process holding the command's stdout, a
  flood on stdout and stderr (peak RSS from wait4), a filter that never
  reads a 20 MB message.
- Connection cuts with a filter: the cut message never reaches the filter.
"""

import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pftest  # noqa: E402
from pftest import eq, ok, contains, like, not_contains  # noqa: E402

T = pftest.Suite(__file__)

SEED = int(os.environ.get("PFTEST_CRASH_SEED") or
           random.SystemRandom().randrange(1 << 31))
ITERATIONS = int(os.environ.get("PFTEST_DELIVER_CRASH_ITERATIONS") or 10)
T.diag("seed %d (PFTEST_CRASH_SEED=%d repeats the messages and kill delays)"
       % (SEED, SEED))
RNG = random.Random(SEED)
GEN = pftest.MailGen(SEED)
NAME = "work"
SUMMARY = re.compile(r"^%s: (\d+) new, (\d+) skipped, (\d+) deleted, "
                     r"(\d+) discarded" % NAME, re.M)
RECEIVED_ID = re.compile(rb"^Received: [^\n]* id ([!-~]+); [^\n]*\n")
SIZE_FIELD = re.compile(r",S=(\d+)")
FOLDERS = ("Junk", "Lists.dev")
ROUTES = ("inbox",) * 4 + ("Junk",) * 3 + ("Lists.dev",) * 2 + ("drop",) * 2


# ------------------------------------------------------------------ commands

# The router: reads the whole message, routes it by its X-Route: field.
# With $HOLD_UIDL set, the first time it sees that UIDL it writes its pid
# to $HOLD_FILE (atomically) and sleeps: the test kills popfetch then.
# Every call appends the UIDL to $LOG.
ROUTER = r'''#!/bin/sh
dir="$1"
echo "$POPFETCH_UIDL" >> "$dir/filter.log"
route=$(sed -n '1,/^$/s/^X-Route: //p')
if [ -n "$HOLD_UIDL" ] && [ "$POPFETCH_UIDL" = "$HOLD_UIDL" ] && \
   [ ! -e "$dir/held" ]; then
    echo $$ > "$dir/held.tmp" && mv "$dir/held.tmp" "$dir/held"
    exec sleep 30
fi
case "$route" in
drop) exit 99 ;;
inbox) exit 0 ;;
*) echo "$route"; exit 0 ;;
esac
'''

# An MDA that keeps each message it is given as $dir/got/UIDL.N (N: the
# hand-over's number) and logs the UIDL; with $HOLD_UIDL, holds as above
# after taking the message whole.
MDA = r'''#!/bin/sh
dir="$1"
n=$(wc -l < "$dir/mda.log" 2>/dev/null || echo 0)
n=$((n + 1))
cat > "$dir/got/$POPFETCH_UIDL.$n"
echo "$POPFETCH_UIDL" >> "$dir/mda.log"
if [ -n "$HOLD_UIDL" ] && [ "$POPFETCH_UIDL" = "$HOLD_UIDL" ] && \
   [ ! -e "$dir/held" ]; then
    echo $$ > "$dir/held.tmp" && mv "$dir/held.tmp" "$dir/held"
    exec sleep 30
fi
exit 0
'''


def big_message(size):
    """A message of about `size` bytes, quickly (MailGen's filler text goes
    word by word)."""
    line = b"a line of a big message, to fill it up with some text 0123456789"
    return GEN.message(size=0, body_lines=[line] * (size // (len(line) + 1)))


def routed_messages(n, lo=1000, hi=20000, routes=None, edges_every=6):
    """n messages with an X-Route: field on top; [(route, bytes)]."""
    out = []
    for i in range(n):
        route = routes[i] if routes is not None else RNG.choice(ROUTES)
        edges = ()
        if RNG.randrange(edges_every) == 0:
            edges = tuple(RNG.sample(pftest.mailgen.EDGE_CASES, RNG.randint(1, 2)))
        m = GEN.message(size=RNG.randint(lo, hi), edges=edges)
        out.append((route, b"X-Route: " + route.encode() + b"\n" + m))
    return out


# ------------------------------------------------------------------ the box

class Box:
    """A scripted server, a popfetch sandbox with account `work`, and what
    the server was given (UIDL -> (route, bytes a correct delivery holds))."""

    def __init__(self, tmp, delete=False, backend="maildir", filter=True, **opts):
        self.tmp = tmp
        self.srv = pftest.PopServer(os.path.join(tmp, "srv"), stall_max=30).start()
        T.add_cleanup(self.srv.stop)
        self.pf = pftest.Popfetch(os.path.join(tmp, "pf"))
        self.md = self.pf.path("Mail/" + NAME)
        self.dir = self.pf.path("cmd")
        os.makedirs(os.path.join(self.dir, "got"))
        self.delete = delete
        self.content = {}
        self.route = {}
        self.order = []
        self.holders = []
        self._cache = {}
        self.opts = {"host": "127.0.0.1", "port": self.srv.port, "user": "alice",
                     "password": "secret", "tls": "none",
                     "allow_plaintext_password": True, "delete": delete,
                     "timeout": 10}
        if backend == "maildir":
            self.opts["maildir"] = self.md
        else:
            self.opts["mda"] = self.script("mda", MDA) + " " + self.dir
        if filter:
            self.opts["filter"] = self.script("router", ROUTER) + " " + self.dir
        self.configure(**opts)

    def script(self, name, body):
        path = self.pf.path(name)
        with open(path, "w") as f:
            f.write(body if body.startswith("#!") else "#!/bin/sh\n" + body)
        os.chmod(path, 0o755)
        return path

    def configure(self, **opts):
        self.opts.update(opts)
        self.pf.write_config(pftest.account_conf(NAME, **self.opts))

    def add(self, routed):
        """Put [(route, bytes)] on the server; their UIDLs."""
        first = len(self.order) + 1
        self.srv.add_messages([m for _, m in routed])
        new = ["uid-%d" % (first + i) for i in range(len(routed))]
        for u, (route, m) in zip(new, routed):
            self.content[u] = pftest.pop3_expected(m)
            self.route[u] = route
            self.order.append(u)
        return new

    def run(self, *args, env=None, timeout=60):
        r = self.pf.run("fetch", *args, env=env, timeout=timeout)
        self.srv.wait_closed(10)
        return r

    def spawn(self, env=None):
        return self.pf.spawn("fetch", env=env)

    def collect(self, p, timeout=60):
        r = self.pf.collect(p, timeout=timeout)
        self.srv.wait_closed(10)
        return r

    def server(self):
        return self.srv.remaining_uidls()

    def status(self):
        r = self.pf.run("status", "--json")
        eq(r.rc, 0, "status --json\n%s" % r)
        arr = json.loads(r.stdout)
        eq(len(arr), 1, "status --json accounts")
        return arr[0]

    def log(self, which="filter"):
        try:
            with open(os.path.join(self.dir, which + ".log")) as f:
                return f.read().split()
        except FileNotFoundError:
            return []

    def wait_held(self, p, timeout=20):
        """Wait until the command holding $HOLD_UIDL says so; its pid."""
        path = os.path.join(self.dir, "held")

        def ready():
            if os.path.exists(path):
                return True
            return "gone" if p.poll() is not None else None
        r = pftest.wait_for(ready, timeout, 0.01)
        ok(r is True, "the command signalled that it runs (popfetch %s)" %
           ("exited %s" % p.poll() if r == "gone" else "still running"))
        with open(path) as f:
            pid = int(f.read().strip())
        self.holders.append(pid)
        return pid

    def kill_holders(self):
        """SIGKILL the process groups of commands left behind (each one's
        shell is its group leader: popfetch gives it its own group)."""
        for pid in self.holders:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.holders = []

    # -- the Maildir and its folders
    def _verify(self, path, rel, folder):
        """(uidl, problem) of one delivered file (cached while the file is
        the same)."""
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None, None
        key = (path, st.st_ino, st.st_size, st.st_mtime_ns)
        if key not in self._cache:
            self._cache[key] = self._verify_file(path, rel, folder)
        return self._cache[key]

    def _verify_file(self, path, rel, folder):
        with open(path, "rb") as f:
            data = f.read()
        m = RECEIVED_ID.match(data)
        if not m:
            return None, "no Received: ... id UIDL; field (%r)" % data[:80]
        uidl = m.group(1).decode("ascii")
        want = self.content.get(uidl)
        if want is None:
            return uidl, "UIDL %s was never on the server" % uidl
        if pftest.strip_received_header(data) != want:
            return uidl, "UIDL %s: %d bytes, not the message (partial or corrupt)" % (
                uidl, len(data))
        sm = SIZE_FIELD.search(rel.split(":", 1)[0])
        if not sm or int(sm.group(1)) != len(data):
            return uidl, "S= of the name is not the size %d" % len(data)
        route = self.route[uidl]
        if route == "drop":
            return uidl, "UIDL %s was discarded by the filter, yet delivered" % uidl
        if route != folder and self.opts.get("filter"):
            return uidl, "UIDL %s routed to %s, delivered into %s" % (uidl, route, folder)
        return uidl, None

    def scan(self):
        """{uidl: [relpaths]}, [problems], [files in any tmp/]."""
        where, problems, tmp = {}, [], []
        dirs = [("inbox", self.md)]
        try:
            for e in sorted(os.listdir(self.md)):
                if e.startswith("."):
                    dirs.append((e[1:], os.path.join(self.md, e)))
        except FileNotFoundError:
            pass
        for folder, d in dirs:
            if folder != "inbox" and folder not in FOLDERS:
                problems.append("unexpected folder %s" % d)
            for sub in ("new", "cur"):
                try:
                    names = sorted(os.listdir(os.path.join(d, sub)))
                except FileNotFoundError:
                    continue
                for n in names:
                    rel = os.path.relpath(os.path.join(d, sub, n), self.md)
                    uidl, p = self._verify(os.path.join(d, sub, n), rel, folder)
                    if p:
                        problems.append("%s: %s" % (rel, p))
                    if uidl:
                        where.setdefault(uidl, []).append(rel)
            try:
                tmp += [os.path.relpath(os.path.join(d, "tmp", n), self.md)
                        for n in os.listdir(os.path.join(d, "tmp"))]
            except FileNotFoundError:
                pass
        return where, problems, tmp

    def check_after_kill(self):
        """Nothing partial, nothing twice, nothing gone from the server that
        is neither delivered nor discarded.  [violations]"""
        where, problems, _ = self.scan()
        v = list(problems)
        v += ["UIDL %s delivered %d times: %s" % (u, len(r), r)
              for u, r in sorted(where.items()) if len(r) > 1]
        on_server = set(self.server())
        for u in self.order:
            if u in on_server:
                continue
            if not self.delete:
                v.append("delete = false, yet %s is gone from the server" % u)
            elif u not in where and self.route[u] != "drop":
                v.append("%s deleted from the server, not delivered" % u)
        return v

    def check_complete(self, r):
        """After a run that must succeed: each message exactly once where its
        route says, every tmp/ empty, pending 0, the server as it should be."""
        where, problems, tmp = self.scan()
        v = list(problems)
        if r.rc != 0:
            v.append("the run failed: exit %s\n%s" % (r.rc, r))
        for u in self.order:
            n = len(where.get(u, []))
            want = 0 if self.route[u] == "drop" else 1
            if n != want:
                v.append("UIDL %s (route %s) delivered %d times: %s" % (
                    u, self.route[u], n, where.get(u)))
        if tmp:
            v.append("tmp/ not empty: %s" % tmp[:10])
        st = self.status()
        if st.get("pending") != 0:
            v.append("status: pending %r" % st.get("pending"))
        server = self.server()
        if self.delete and server:
            v.append("server not emptied: %s" % server[:10])
        if not self.delete:
            if sorted(server) != sorted(self.order):
                v.append("delete = false, the server lists %d of %d" % (
                    len(server), len(self.order)))
            if st.get("seen") != len(self.order):
                v.append("status: seen %r, expected %d" % (st.get("seen"),
                                                           len(self.order)))
        return v


def complete(box, what):
    r = box.run()
    v = box.check_complete(r)
    ok(not v, "%s: exactly once:\n  %s" % (what, "\n  ".join(v)))
    return r


# ------------------------------------------------------------------ random kills

def random_kills(tmp, delete):
    box = Box(tmp, delete=delete)
    # Calibration: one complete run gives the time per message; each
    # completed run after that refines it.
    box.add(routed_messages(60))
    r = complete(box, "calibration run")
    per_msg = [r.duration / 60]
    hist, kills, t_all, scale = {}, 0, time.monotonic(), [1.0]
    for it in range(ITERATIONS):
        # Up to 300 messages: more than 2 x SEEN_BATCH (256: a full batch
        # commits once the next one is full), so that kills also land in
        # the group commits made while messages still arrive.
        batch = box.add(routed_messages(RNG.randint(20, 300)))
        for k in range(2 if RNG.random() < 0.3 else 1):
            # Half the kills anywhere in the run, half near its end, where
            # the last group commits, the DELEs and QUIT are.
            # The estimate of the run's length is scaled by feedback: a kill
            # after the end shrinks it, one before any commit grows it, so
            # the kills spread over the whole run whatever the load.
            per = sorted(per_msg[-6:])[len(per_msg[-6:]) // 2]
            est = scale[0] * (0.03 + per * len(batch))
            delay = (RNG.uniform(0, 1.1 * est) if RNG.random() < 0.5 else
                     RNG.uniform(0.5 * est, 1.1 * est))
            before = set(box.scan()[0])
            p = box.spawn()
            # Waiting rather than sleeping tells when a run that ended
            # before its kill ended: the estimate is then set to what
            # that run took, not only shrunk by a step.
            ran = None
            try:
                p.wait(timeout=delay)
                ran = time.monotonic() - p.pftest_t0
            except subprocess.TimeoutExpired:
                p.send_signal(signal.SIGKILL)
            res = box.collect(p)
            kills += 1
            where = ("finished" if res.rc == 0 else "killed" if res.rc == -9
                     else "failed")
            if where == "killed":
                st = box.status()
                if st.get("pending"):
                    where = "killed in a group commit"
                elif set(box.scan()[0]) - before:
                    where = "killed after a commit"
                else:
                    where = "killed before any commit"
            hist[where] = hist.get(where, 0) + 1
            if where == "finished":
                scale[0] *= 0.8
                if ran is not None:
                    scale[0] = min(scale[0], ran / (0.03 + per * len(batch)))
            elif where == "killed before any commit":
                scale[0] *= 1.15
            v = box.check_after_kill()
            if res.rc not in (0, -signal.SIGKILL):
                v.append("the killed run failed by itself\n%s" % res)
            ok(not v, "delete = %s, iteration %d, kill %d after %.3f s (%s):\n  %s"
               % (delete, it + 1, k + 1, delay, where, "\n  ".join(v)))
        r = complete(box, "delete = %s, iteration %d, the run after the kill"
                     % (delete, it + 1))
        m = SUMMARY.search(r.stderr)
        ok(m, "summary line", r.stderr)
        if int(m.group(1)) + int(m.group(4)) >= 20:
            per_msg.append(r.duration / (int(m.group(1)) + int(m.group(4))))
    T.diag("delete = %s: %d iterations, %d kills, %d messages, %.1f s, kill "
           "window scaled by %.2f; %s" % (
        delete, ITERATIONS, kills, len(box.order), time.monotonic() - t_all, scale[0],
        "; ".join("%s %d" % kv for kv in sorted(hist.items()))))
    killed = sum(n for w, n in hist.items() if w.startswith("killed"))
    ok(killed * 3 >= kills, "at least a third of the kills hit a running "
       "popfetch (else the kill window is wrong)", hist)


@T.test("random SIGKILL, filter routing into folders and discarding, delete = "
        "false: after each kill nothing partial or twice, nothing deleted; "
        "after each next run every message exactly once in its folder, "
        "discarded ones nowhere, no tmp/ file, pending 0", timeout=300)
def _(tmp):
    random_kills(tmp, False)


@T.test("random SIGKILL, filter routing into folders and discarding, delete = "
        "true: as above, nothing deleted before it is delivered or discarded, "
        "the server emptied by each next run", timeout=300)
def _(tmp):
    random_kills(tmp, True)


# ------------------------------------------------------------------ deterministic kills

def killshim_path():
    top = os.environ.get("top_builddir")
    if top:
        p = os.path.join(top, "tests", "integration", "killshim.so")
        if os.path.exists(p):
            return p
    src = os.path.join(os.path.dirname(os.path.abspath(__file__)), "killshim.c")
    out = os.path.join(T.root, "killshim.so")
    if not os.path.exists(out):
        r = subprocess.run([os.environ.get("CC", "cc"), "-shared", "-fPIC", "-o",
                            out, src, "-ldl"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        if r.returncode != 0:
            raise RuntimeError("cannot build killshim.so: %s" % r.stdout.decode())
    return out


@T.test("SIGKILL right after the 3rd rename into a new/ (inbox or folder), "
        "before the seen commit: what is in a new/ counts, the rest is "
        "fetched again; exactly once, discards included")
def _(tmp):
    box = Box(tmp, delete=True)
    routes = ["Junk", "drop", "inbox", "Lists.dev", "Junk", "drop", "inbox",
              "Junk", "inbox", "Lists.dev"]
    box.add(routed_messages(len(routes), routes=routes))
    log = os.path.join(tmp, "killshim.log")
    asan = os.environ.get("ASAN_OPTIONS", "")
    r = box.run(env={"LD_PRELOAD": killshim_path(), "KILLSHIM_LOG": log,
                     "KILLSHIM_AFTER_RENAMES": "3",
                     "ASAN_OPTIONS": (asan + ":" if asan else "") +
                     "verify_asan_link_order=0"})
    eq(r.rc, -signal.SIGKILL, "killed by the shim\n%s" % r)
    with open(log) as f:
        shim = f.read()
    contains(shim, "killed after rename into", "the shim fired")
    v = box.check_after_kill()
    ok(not v, "right after the kill:\n  " + "\n  ".join(v))
    where = box.scan()[0]
    eq(len(where), 3, "three files in new/ directories: %s" % where)
    ok(box.status()["pending"] > 0, "the batch is pending")
    eq(sorted(box.server()), sorted(box.order), "nothing deleted")
    complete(box, "the run after the kill")


@T.test("SIGKILL while the filter runs (it signals, then sleeps): no pending "
        "row, nothing deleted; the next run (the held filter still alive) "
        "filters that message again and delivers everything exactly once")
def _(tmp):
    box = Box(tmp, delete=True)
    routes = ["inbox", "Junk", "drop", "Lists.dev", "inbox", "Junk"]
    uidls = box.add(routed_messages(len(routes), routes=routes))
    hold = uidls[3]
    try:
        p = box.spawn(env={"HOLD_UIDL": hold})
        box.wait_held(p)
        p.send_signal(signal.SIGKILL)
        r = box.collect(p)
        eq(r.rc, -signal.SIGKILL, "popfetch killed\n%s" % r)
        v = box.check_after_kill()
        ok(not v, "right after the kill:\n  " + "\n  ".join(v))
        eq(box.status()["pending"], 0, "status: no pending row (the filter "
           "decides before step 6a)")
        eq(sorted(box.server()), sorted(box.order), "nothing deleted")
        ok(hold in box.log(), "the filter had the message", box.log())
        # The next run, while the held filter still sleeps.
        complete(box, "the run after the kill")
        eq(box.log().count(hold), 2, "the held message was filtered again")
    finally:
        box.kill_holders()


@T.test("mda: SIGKILL while the MDA runs (it signals, then sleeps): the next "
        "run hands that message over again (same X-Popfetch-Id), nothing "
        "else is handed over twice, nothing lost")
def _(tmp):
    box = Box(tmp, delete=True, backend="mda", filter=False)
    uidls = box.add(routed_messages(5, routes=["inbox"] * 5))
    hold = uidls[2]
    try:
        p = box.spawn(env={"HOLD_UIDL": hold})
        box.wait_held(p)
        p.send_signal(signal.SIGKILL)
        r = box.collect(p)
        eq(r.rc, -signal.SIGKILL, "popfetch killed\n%s" % r)
        box.kill_holders()
        eq(sorted(box.server()), sorted(uidls), "nothing deleted")
        first = box.log("mda")
        T.diag("handed over before the kill: %s" % first)
        r = box.run()
        eq(r.rc, 0, str(r))
        eq(box.server(), [], "server emptied")
        eq(box.status()["pending"], 0, "status: pending 0")
        log = box.log("mda")
        ok(hold in log[len(first):], "the message in the MDA at the kill is "
           "handed over again", log)
        got = {}
        for n in sorted(os.listdir(os.path.join(box.dir, "got"))):
            u = n.rsplit(".", 1)[0]
            with open(os.path.join(box.dir, "got", n), "rb") as f:
                got.setdefault(u, []).append(f.read())
        for u in uidls:
            ok(u in got, "%s handed over" % u)
            for data in got[u]:
                m = re.match(rb"X-Popfetch-Id: ([0-9a-f]{32}@popfetch)\n", data)
                ok(m, "X-Popfetch-Id on top", data[:80])
                eq(pftest.strip_received_header(data[m.end():]), box.content[u],
                   "%s handed over whole" % u)
        ids = {re.match(rb"X-Popfetch-Id: (\S+)\n", d).group(1) for d in got[hold]}
        eq(len(ids), 1, "the repeat has the same X-Popfetch-Id")
        eq({u: log.count(u) for u in uidls if u != hold},
           {u: 1 for u in uidls if u != hold},
           "hand-overs of every message but the one in the MDA at the kill "
           "(log: %s)" % log)
    finally:
        box.kill_holders()


@T.test("mda: an MDA killed by SIGKILL mid-message leaves that message on the "
        "server, exit 75 with a clear error; the others are delivered and "
        "deleted; the next run delivers it, nothing twice")
def _(tmp):
    box = Box(tmp, delete=True, backend="mda", filter=False)
    mid = box.script("mda-mid", r'''
dir="$1"
if [ "$POPFETCH_UIDL" = "$HOLD_UIDL" ] && [ ! -e "$dir/held" ]; then
    IFS= read -r first
    echo $$ > "$dir/held.tmp" && mv "$dir/held.tmp" "$dir/held"
    exec sleep 30
fi
cat > "$dir/got/$POPFETCH_UIDL.$$"
echo "$POPFETCH_UIDL" >> "$dir/mda.log"
''')
    box.configure(mda=mid + " " + box.dir)
    msgs = routed_messages(3, routes=["inbox"] * 3)
    msgs[1] = ("inbox", big_message(400000))    # more than a pipe holds
    uidls = box.add(msgs)
    try:
        p = box.spawn(env={"HOLD_UIDL": uidls[1]})
        pid = box.wait_held(p)
        os.kill(pid, signal.SIGKILL)
        r = box.collect(p, timeout=30)
        eq(r.rc, 75, "exit 75\n%s" % r)
        # The MDA runs under `sh -c`: killed, it is that shell's child, and
        # the shell exits 128 + 9 (dash), or is replaced by it (then the
        # signal is seen as such).
        like(r.stderr, r"popfetch: work: message 2 \(UIDL uid-2\) not delivered: "
             r"the mda (was killed by signal 9|failed \(exit 137\))\n",
             "the error names message, UIDL and what ended the MDA")
        eq(box.server(), [uidls[1]], "only that message left on the server")
        eq(box.status()["pending"], 0, "status: pending 0")
        eq(sorted(box.log("mda")), sorted([uidls[0], uidls[2]]), "the others "
           "handed over")
        r = box.run()
        eq(r.rc, 0, str(r))
        eq(box.server(), [], "server emptied")
        eq(sorted(box.log("mda")), sorted(uidls), "each handed over once")
        data = [open(os.path.join(box.dir, "got", n), "rb").read()
                for n in os.listdir(os.path.join(box.dir, "got"))
                if n.startswith(uidls[1] + ".")]
        eq(len(data), 1, "one hand-over of %s" % uidls[1])
        body = data[0].split(b"\n", 1)[1]
        eq(pftest.strip_received_header(body), box.content[uidls[1]], "whole")
    finally:
        box.kill_holders()


# ------------------------------------------------------------------ hostile commands

def measured(box, timeout=120):
    """Run fetch; (Result, popfetch's peak RSS in KiB): VmHWM of
    /proc/PID/status, read until it exits (Popen returns after the exec, so
    this is popfetch's memory, not the forked test's; wait4's ru_maxrss
    would count the latter)."""
    p = box.spawn()
    peak, end = 0, time.monotonic() + timeout
    while p.poll() is None:
        try:
            with open("/proc/%d/status" % p.pid) as f:
                for ln in f:
                    if ln.startswith("VmHWM:"):
                        peak = max(peak, int(ln.split()[1]))
        except (OSError, ValueError):
            pass
        if time.monotonic() > end:
            p.kill()
        time.sleep(0.002)
    return box.collect(p), peak


@T.test("a filter and an MDA that leave a background process holding their "
        "stdout ((sleep 30 &)) delay nothing")
def _(tmp):
    for backend in ("maildir", "mda"):
        sub = os.path.join(tmp, backend)
        box = Box(sub, delete=True, backend=backend, filter=True)
        bg = box.script("bg-filter", '''
echo $$ >> "%s/bg.pids"
cat >/dev/null
(sleep 30 &)
echo Junk
''' % box.dir)
        box.configure(filter=bg, timeout=20)
        if backend == "mda":
            box.configure(mda=box.script("bg-mda", '''
echo $$ >> "%s/bg.pids"
cat > "%s/got/$POPFETCH_UIDL"
(sleep 30 &)
''' % (box.dir, box.dir)))
        box.add(routed_messages(4, routes=["Junk"] * 4))
        try:
            r = box.run(timeout=60)
            eq(r.rc, 0, str(r))
            ok(r.duration < 5, "%s: done in %.1f s, not held by the "
               "background processes" % (backend, r.duration))
            eq(box.server(), [], "delivered and deleted")
            if backend == "maildir":
                eq(len(pftest.read_maildir(os.path.join(box.md, ".Junk"))), 4,
                   "four in .Junk")
            else:
                eq(len(os.listdir(os.path.join(box.dir, "got"))), 4, "four handed over")
        finally:
            with open(os.path.join(box.dir, "bg.pids")) as f:
                box.holders += [int(x) for x in f.read().split()]
            box.kill_holders()


FLOOD = '''
cat >/dev/null
echo Junk
head -c 100000000 /dev/zero | tr '\\0' x
yes 'flooding stderr' | head -c 100000000 >&2
exit 0
'''


@T.test("a filter and an MDA that flood stdout and stderr (100 MB each) keep "
        "popfetch's peak RSS under 40 MB and within 16 MB of a quiet run, its "
        "own stderr short; the messages are delivered")
def _(tmp):
    wrapped = bool(os.environ.get("POPFETCH_WRAPPER"))
    # Under AddressSanitizer the shadow memory counts in RSS: only the
    # comparison with a quiet run means something there.
    sanitized = "ASAN_OPTIONS" in os.environ
    for backend in ("maildir", "mda"):
        box = Box(os.path.join(tmp, backend), backend=backend, filter=True)
        quiet = box.script("quiet", "cat >/dev/null\necho Junk\n")
        flood = box.script("flood", FLOOD)
        key = "filter" if backend == "maildir" else "mda"
        if backend == "mda":
            box.configure(filter=None)
        box.configure(timeout=60, **{key: quiet})
        box.add(routed_messages(2, routes=["Junk"] * 2))
        r, base = measured(box)
        eq(r.rc, 0, str(r))
        box.configure(**{key: flood})
        box.add(routed_messages(2, routes=["Junk"] * 2))
        r, rss = measured(box)
        T.diag("%s: peak RSS %d KiB (quiet run: %d KiB), %.1f s, stderr %d bytes"
               % (backend, rss, base, r.duration, len(r.stderr)))
        eq(r.rc, 0, str(r)[:3000])
        if not wrapped:
            if not sanitized:
                ok(0 < rss < 40 * 1024, "%s: peak RSS %d KiB < 40 MiB"
                   % (backend, rss))
            ok(rss < base + 16 * 1024, "%s: peak RSS %d KiB within 16 MiB of a "
               "quiet run's %d KiB" % (backend, rss, base))
        ok(len(r.stderr) < 200 * 1024, "%s: stderr %d bytes" % (backend, len(r.stderr)))
        like(r.stderr, r"more lines on stderr not logged", "the rest is counted")
        if backend == "maildir":
            eq(len(pftest.read_maildir(os.path.join(box.md, ".Junk"))), 4, ".Junk")
        eq(box.status()["seen"], 4, "all four seen")


@T.test("a filter that never reads a 20 MB message nor exits is killed after "
        "`timeout` (75, the message stays, the others are delivered); one that "
        "exits without reading it delivers it")
def _(tmp):
    box = Box(tmp, delete=True)
    routes = ["inbox", "Junk", "inbox"]
    msgs = routed_messages(3, routes=routes)
    big = big_message(20 * 1000 * 1000)
    msgs[1] = ("Junk", b"X-Route: Junk\n" + big)
    uidls = box.add(msgs)
    box.configure(timeout=3, filter=box.script("noread", '''
echo $$ >> "%s/bg.pids"
case "$POPFETCH_UIDL" in
%s) exec sleep 60 ;;
esac
cat >/dev/null
[ "$POPFETCH_UIDL" = uid-2 ] && echo Junk
exit 0
''' % (box.dir, uidls[1])))
    try:
        r = box.run(timeout=60)
        eq(r.rc, 75, str(r))
        ok(r.duration < 20, "ended in %.1f s" % r.duration)
        contains(r.stderr, "message 2 (UIDL uid-2) not delivered: the filter did "
                 "not finish within 3 s")
        eq(box.server(), [uidls[1]], "only the 20 MB message left on the server")
        eq(len(pftest.read_maildir(box.md)), 2, "the others delivered")
    finally:
        with open(os.path.join(box.dir, "bg.pids")) as f:
            box.holders += [int(x) for x in f.read().split()]
        box.kill_holders()
    box.configure(filter=box.script("noread2", "exit 0\n"))
    r = box.run(timeout=60)
    eq(r.rc, 0, str(r))
    eq(box.server(), [], "delivered, deleted")
    md = pftest.read_maildir(box.md)
    eq(len(md), 3, "three in the inbox")
    ok(box.content[uidls[1]] in md.messages(strip_received=True), "byte-exact")


# ------------------------------------------------------------------ connection cuts

def cut_test(tmp, where):
    box = Box(tmp, delete=True)
    routes = ["Junk", "inbox", "Lists.dev", "drop", "inbox"]
    uidls = box.add(routed_messages(5, 3000, 9000, routes=routes))
    box.srv.configure(retr_cut_at={3: where}, fault_connections=[1])
    r = box.run()
    eq(r.rc, 75, str(r))
    like(r.stderr, r"connection (lost|closed)", "the error")
    ok(any(e.startswith("RETR 3: sent") for e in box.srv.events(1)),
       "the server cut RETR 3", box.srv.events(1))
    eq(sorted(box.log()), sorted(uidls[:2]), "the filter saw the first two, "
       "never the cut one")
    where_ = box.scan()[0]
    eq(sorted(where_), sorted(uidls[:2]), "the first two delivered")
    eq(box.srv.deleted_uidls(), [], "nothing deleted (no QUIT after a cut)")
    eq(sorted(box.server()), sorted(uidls), "the server untouched")
    v = box.check_after_kill()
    ok(not v, "\n  ".join(v))
    complete(box, "the run after the cut")
    log = box.log()
    eq(sorted(log), sorted(uidls), "the filter saw each message once")
    eq(sorted(box.srv.deleted_uidls()), sorted(uidls), "all deleted")


@T.test("connection cut in the data of message 3 of 5, filter on, delete = "
        "true: the cut message never reaches the filter, the first two are "
        "delivered once, nothing deleted; the next run delivers the rest once")
def _(tmp):
    cut_test(tmp, "data")


@T.test("connection cut just before the final dot of message 3 of 5, filter on: "
        "as above (the almost whole copy never reaches the filter)")
def _(tmp):
    cut_test(tmp, "before_dot")


T.done()
