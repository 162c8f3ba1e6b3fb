#!/usr/bin/env python3
"""--shard K/N (issue 17, item 4): one configuration split over N workers.

  simulation   M = 40 Dovecot accounts in one configuration; N = 3 and
               N = 7 workers, each with its own state directory (as
               separate machines or Kubernetes Job indexes would have),
               run at the same time with --shard k/N, for several cycles
               with new mail between them (keep mode): each account is
               fetched by exactly one worker per cycle, the one its FNV-1a
               hash names; together the workers fetch all of them; every
               message is delivered exactly once
  dry run      fetch -n --shard lists only the shard's accounts
  selection    --shard with -a: an account of another shard is a usage
               error (64) naming its shard; accounts/status/config honour
               the shard; an empty shard is exit 0 and says so with -v
  usage        bad K/N values are usage errors (64)
  contrib      the Kubernetes YAML parses and agrees with itself; the
               systemd shard units pass systemd-analyze verify
"""

import json
import os
import re
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pftest  # noqa: E402
from pftest import eq, ok, contains, like  # noqa: E402

T = pftest.Suite(__file__)
S = {}
M = 40
CYCLES = 3


def fnv1a64(name):
    """The documented hash (popfetch(1), --shard), computed independently."""
    h = 14695981039346656037
    for b in name.encode("utf-8"):
        h ^= b
        h = (h * 1099511628211) % (1 << 64)
    return h


def names():
    return ["acct%02d" % i for i in range(M)]


def config_text(dc, mailroot):
    out = ["delete = false\n"]
    for i, name in enumerate(names()):
        o = dc.account_options("u%02d" % i, tls="implicit")
        out.append(pftest.account_conf(
            name, maildir=os.path.join(mailroot, name), timeout=20, **o))
    return "".join(out)


def message(name, cycle, j):
    return ("From: sender@example.org\nTo: %s@example.org\n"
            "Subject: cycle %d message %d\nMessage-ID: <%s.%d.%d@test>\n\n"
            "body of %s cycle %d message %d\n" % (
                name, cycle, j, name, cycle, j, name, cycle, j)).encode()


@T.test("dovecot with %d users starts" % M)
def _(tmp):
    dc = pftest.Dovecot(tmp, T.certs())
    T.add_cleanup(dc.stop)
    for i in range(M):
        dc.add_user("u%02d" % i, "pw-u%02d-shard" % i)
    dc.start()
    S["dc"] = dc


def simulate(tmp, n):
    dc = S["dc"]
    mailroot = os.path.join(tmp, "mail")
    workers = [pftest.Popfetch(os.path.join(tmp, "worker%d" % k)) for k in range(n)]
    conf = os.path.join(tmp, "popfetch.conf")
    pftest.write_config(conf, config_text(dc, mailroot))
    want_shard = {a: fnv1a64(a) % n for a in names()}
    ok(len(set(want_shard.values())) > 1, "the accounts spread over shards")
    sent = {a: [] for a in names()}
    tag = "n%d" % n
    for cycle in range(CYCLES):
        # New mail for every account, one to three messages (cycle 0: the
        # mailboxes may already hold the other simulation's mail: that is
        # new to these workers and counted from the server's own list).
        for i, a in enumerate(names()):
            msgs = [message(a + tag, cycle, j) for j in range(1 + (i + cycle) % 3)]
            dc.add_messages("u%02d" % i, msgs)
        procs = [w.spawn("-c", conf, "fetch", "--shard", "%d/%d" % (k, n),
                         "-j", "4", config=False)
                 for k, w in enumerate(workers)]
        fetched_by = {a: [] for a in names()}
        for k, p in enumerate(procs):
            r = pftest.Popfetch.collect(p, timeout=120)
            eq(r.rc, 0, "worker %d/%d cycle %d: exit 0 (%s)" % (k, n, cycle, r.stderr[-2000:]))
            for m in re.finditer(r"^(acct\d\d): \d+ new, ", r.stderr, re.M):
                fetched_by[m.group(1)].append(k)
        for a in names():
            eq(fetched_by[a], [want_shard[a]],
               "cycle %d: %s fetched once, by worker %d" % (cycle, a, want_shard[a]))
        # Every message on the server is in its Maildir exactly once.
        for i, a in enumerate(names()):
            got = pftest.read_maildir(os.path.join(mailroot, a)).messages(strip_received=True)
            on_server = dc.server_message_count("u%02d" % i)
            eq(len(got), on_server, "cycle %d: %s holds every server message" % (cycle, a))
            eq(len(set(got)), len(got), "cycle %d: %s has no duplicate" % (cycle, a))
    # Each worker's state directory knows only its own shard's accounts.
    for k, w in enumerate(workers):
        r = w.run("-c", conf, "status", "--json", config=False)
        eq(r.rc, 0, "worker %d status" % k)
        ran = sorted(o["account"] for o in json.loads(r.stdout)
                     if o.get("last_run_start") is not None)
        eq(ran, sorted(a for a in names() if want_shard[a] == k),
           "worker %d ran exactly the accounts of shard %d/%d" % (k, k, n))


@T.test("N = 3 workers over 40 accounts, 3 cycles: each account once per "
        "cycle, by its shard; every message exactly once", timeout=600)
def _(tmp):
    ok("dc" in S, "dovecot started")
    simulate(tmp, 3)


@T.test("N = 7 workers over 40 accounts, 3 cycles: each account once per "
        "cycle, by its shard; every message exactly once", timeout=600)
def _(tmp):
    ok("dc" in S, "dovecot started")
    simulate(tmp, 7)


@T.test("fetch -n --shard lists only the shard's accounts")
def _(tmp):
    dc = S["dc"]
    pf = pftest.Popfetch(tmp)
    pf.write_config(config_text(dc, os.path.join(tmp, "mail")))
    for k in range(3):
        r = pf.run("fetch", "-n", "--shard", "%d/3" % k)
        eq(r.rc, 0, "dry run of shard %d/3 (%s)" % (k, r.stderr[-1000:]))
        listed = set(re.findall(r"^(acct\d\d): would ", r.stdout, re.M))
        want = set(a for a in names() if fnv1a64(a) % 3 == k)
        eq(sorted(listed), sorted(want), "shard %d/3 dry run: its accounts only" % k)
    ok(not os.path.exists(os.path.join(tmp, "mail")), "dry run wrote no Maildir")


@T.test("--shard with -a, accounts, status, config; an empty shard is exit 0")
def _(tmp):
    dc = S["dc"]
    pf = pftest.Popfetch(tmp)
    pf.write_config(config_text(dc, os.path.join(tmp, "mail")))
    a = "acct00"
    mine, other = fnv1a64(a) % 5, (fnv1a64(a) + 1) % 5
    r = pf.run("status", "-a", a, "--shard", "%d/5" % other)
    eq(r.rc, 64, "an account of another shard: usage error")
    contains(r.stderr, "account '%s' is in shard %d/5, not in shard %d/5"
             % (a, mine, other))
    r = pf.run("status", "-a", a, "--shard", "%d/5" % mine)
    eq(r.rc, 0, "an account of this shard may be named")
    like(r.stdout, r"^acct00: ")
    for cmd in ("accounts", "status", "config"):
        r = pf.run(cmd, "--shard", "%d/5" % mine)
        eq(r.rc, 0, cmd)
        got = set(re.findall(r"^(acct\d\d)\b", r.stdout, re.M)) | \
            set(re.findall(r"^account (acct\d\d)\b", r.stdout, re.M))
        eq(sorted(got), sorted(x for x in names() if fnv1a64(x) % 5 == mine),
           "%s --shard %d/5: the shard's accounts" % (cmd, mine))
    # One account: of two shards, one is empty.
    one = pftest.Popfetch(os.path.join(tmp, "one"))
    one.write_config(pftest.account_conf(
        "work", maildir=os.path.join(tmp, "one-mail"),
        **dc.account_options("u00", tls="implicit")))
    empty = 1 - fnv1a64("work") % 2
    r = one.run("fetch", "-v", "--shard", "%d/2" % empty)
    eq(r.rc, 0, "empty shard: exit 0")
    contains(r.stderr, "shard %d/2: none of the 1 configured accounts: nothing to do" % empty)
    ok(not os.path.exists(os.path.join(tmp, "one-mail")), "nothing fetched")


@T.test("bad --shard values are usage errors (64)")
def _(tmp):
    pf = pftest.Popfetch(tmp)
    pf.write_config(pftest.account_conf("work", host="127.0.0.1", user="u",
                                        password="p", maildir="Mail"))
    for bad in ("3/3", "4/3", "0/0", "-1/3", "1/", "/3", "x", "", "1/3x",
                " 1/3", "1/10001", "99999999999999999999/3"):
        r = pf.run("fetch", "--shard", bad)
        eq(r.rc, 64, "--shard %r" % bad)
        contains(r.stderr, "invalid shard")
    r = pf.run("authorize", "-a", "work", "--shard", "0/1")
    eq(r.rc, 64, "authorize --shard")
    r = pf.run("fetch", "--shard")
    eq(r.rc, 64, "--shard without a value")


@T.test("contrib/kubernetes: the YAML parses; Indexed CronJob, completions = "
        "parallelism = N of --shard, Forbid, one state directory per index")
def _(tmp):
    try:
        import yaml
    except ImportError:
        T.diag("python3-yaml missing: YAML not checked")
        return
    kdir = os.path.join(os.environ["top_srcdir"], "contrib", "kubernetes")
    files = sorted(f for f in os.listdir(kdir) if f.endswith(".yaml"))
    ok(len(files) >= 2, "two examples")
    for f in files:
        with open(os.path.join(kdir, f)) as fh:
            docs = list(yaml.safe_load_all(fh))
        jobs = [d for d in docs if d["kind"] == "CronJob"]
        eq(len(jobs), 1, f + ": one CronJob")
        cj = jobs[0]["spec"]
        eq(cj["concurrencyPolicy"], "Forbid", f + ": no overlapping runs")
        js = cj["jobTemplate"]["spec"]
        c = js["template"]["spec"]["containers"][0]
        args = c["args"]
        shard = args[args.index("--shard") + 1]
        k, n = shard.split("/")
        mounts = {m["name"]: m for m in c["volumeMounts"]}
        env = {e["name"]: e.get("value") for e in c["env"]}
        eq(env.get("XDG_STATE_HOME"), mounts["state"]["mountPath"],
           f + ": the state directory is on the state volume")
        if js.get("completionMode") == "Indexed":
            eq(k, "$(JOB_COMPLETION_INDEX)", f + ": K is the completion index")
            eq(js["completions"], int(n), f + ": completions = N")
            eq(js["parallelism"], int(n), f + ": parallelism = N")
            eq(mounts["state"].get("subPathExpr"), "$(JOB_COMPLETION_INDEX)",
               f + ": a state subdirectory per index")
        else:
            ok(0 <= int(k) < int(n), f + ": a fixed shard")


@T.test("contrib/systemd/popfetch-shard@: systemd-analyze verify accepts the "
        "units; ExecStart passes the instance as K")
def _(tmp):
    unit = os.path.join(os.environ["top_builddir"], "contrib", "systemd",
                        "popfetch-shard@.service")
    timer = os.path.join(os.environ["top_srcdir"], "contrib", "systemd",
                         "popfetch-shard@.timer")
    ok(os.path.exists(unit), "the unit is built")
    with open(unit) as fh:
        text = fh.read()
    contains(text, "--shard %i/${POPFETCH_SHARDS}")
    if shutil.which("systemd-analyze") is None:
        T.diag("systemd-analyze missing: units not verified")
        return
    d = os.path.join(tmp, "units")
    os.makedirs(d)
    # Verify against the binary under test (the unit names the installed one).
    text = re.sub(r"(?m)^ExecStart=\S+", "ExecStart=" + pftest.popfetch_binary(), text)
    with open(os.path.join(d, "popfetch-shard@.service"), "w") as fh:
        fh.write(text)
    shutil.copy(timer, d)
    p = subprocess.run(["systemd-analyze", "verify", "--man=no",
                        "popfetch-shard@3.service", "popfetch-shard@3.timer"],
                       cwd=d, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    eq(p.returncode, 0, "systemd-analyze verify: " + p.stdout.decode(errors="replace"))


T.done()
