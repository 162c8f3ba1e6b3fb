#!/usr/bin/env python3
"""bench-smoke.t: bench/run (issue 6's benchmark) at a tiny scale.

Runs the benchmark on popfetch and the raw limit (and on the peers that
are installed: mpop, fdm, fetchmail + maildrop, getmail6) with one run
per scenario, and checks that it prints its table and that every message
popfetch fetched was verified present exactly once and byte-exact.  Also
checks that the benchmark's verifier catches missing, duplicated and
altered messages, so a broken client cannot pass as verified.
"""
import importlib.machinery
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import pftest  # noqa: E402
from pftest import eq, ok, like  # noqa: E402

T = pftest.Suite(__file__)
SRCDIR = os.environ.get("top_srcdir") or os.path.dirname(os.path.dirname(HERE))
BENCH = os.path.join(SRCDIR, "bench", "run")
SCENARIOS = ("mixed-keep", "nothing-new", "latency")
# The filter scenario runs popfetch only: without a filter and with each
# filter of bench/run's FILTER_VARIANTS.
FILTER_ROWS = ("popfetch", "popfetch+exit0", "popfetch+cat")
PEERS = (("mpop", ("mpop",)), ("fdm", ("fdm",)), ("fetchmail", ("fetchmail", "maildrop")),
         ("getmail", ("getmail",)))


def load_bench():
    loader = importlib.machinery.SourceFileLoader("popfetch_bench", BENCH)
    spec = importlib.util.spec_from_loader("popfetch_bench", loader)
    mod = importlib.util.module_from_spec(spec)
    loader.exec_module(mod)
    return mod


@T.test("bench/run --scale 0.005: table printed, popfetch's mail verified once", timeout=300)
def _(tmp):
    peers = [name for name, bins in PEERS if all(shutil.which(b) for b in bins)]
    clients = ["popfetch", "raw"] + peers
    T.diag("clients: %s" % ", ".join(clients))
    js = os.path.join(tmp, "bench.json")
    work = os.path.join(tmp, "work")
    # --timeout is per client run.  Every run here moves at most 100 small
    # messages (a few seconds even on a loaded machine), but a peer may hang:
    # getmail6 installs its SIGCHLD handler only after fork() (getmailcore/
    # baseclasses.py, ForkingBase.forkchild), so a delivery child that exits
    # first is never noticed and getmail waits until killed.  bench/run
    # records a peer's timeout in its table and carries on (its exit status
    # depends on popfetch and raw only), so the per-run limit must leave
    # room for a hung peer run in every scenario within our own 280 s.
    argv = [sys.executable, "-B", BENCH, "--no-install", "--scale", "0.005", "--runs", "1",
            "--scenarios", ",".join(SCENARIOS + ("filter",)), "--clients", ",".join(clients),
            "--workdir", work, "--json", js, "--timeout", "30"]
    try:
        r = subprocess.run(argv, capture_output=True, text=True, timeout=280,
                           env=dict(os.environ, POPFETCH=pftest.popfetch_binary()))
    except subprocess.TimeoutExpired as e:
        def text(b):
            return b.decode("utf-8", "replace") if isinstance(b, bytes) else (b or "")
        raise AssertionError("bench/run timed out after 280 s; its log so far:\n"
                             + text(e.stderr)[-4000:] + text(e.stdout)[-2000:])
    out = r.stdout
    eq(r.returncode, 0, "bench exit status\n" + out + r.stderr[-3000:])
    like(out, r"(?m)^scenario +client +median s \(min-max\) +MB/s +msg/s +CPU s +"
              r"peak RSS MB +x limit +x popfetch +verified$")
    for scen in SCENARIOS:
        like(out, r"(?m)^%s +popfetch +\d+\.\d{3} \(\d+\.\d{3}-\d+\.\d{3}\) .* ok (\d+)/\1 once$"
             % scen, "popfetch's row for " + scen)
        like(out, r"(?m)^%s +raw +\d+\.\d{3} \(.* server retr \d+$" % scen,
             "the raw limit's row for " + scen)
    like(out, r"(?m)^Targets \(issue 6\):$")
    like(out, r"(?m)^  (PASS|MISS) 1 mixed-keep +popfetch / raw limit = \d+\.\d\d")
    for row in FILTER_ROWS:
        like(out, r"(?m)^filter +%s +\d+\.\d{3} \(\d+\.\d{3}-\d+\.\d{3}\) .* ok (\d+)/\1 once$"
             % re.escape(row), "the filter scenario's row for " + row)
    like(out, r"(?m)^  (PASS|MISS) 6 filter +popfetch filter / no filter = \d+\.\d\d "
              r"\(target <= 1\.20\)$")
    like(out, r"(?m)^  info 6 filter +popfetch filter \"cat >/dev/null\" / no filter = "
              r"\d+\.\d\d$")
    with open(js) as f:
        data = json.load(f)
    sets = data["mailsets"]
    eq(sets["mixed"]["count"], 7 + 3 + 1, "mixed mail set at scale 0.005")
    eq(sets["small"]["count"], 100)
    res = {(x["scenario"], x["client"]): x for x in data["results"]}
    for scen in SCENARIOS:
        want = sets[{"mixed-keep": "mixed", "nothing-new": "small",
                     "latency": "latency"}[scen]]["count"]
        pf = res[(scen, "popfetch")]
        eq(pf["status"], None, scen)
        eq(len(pf["runs"]), 1, scen)
        v = pf["runs"][0]["verify"]
        eq((v["expected"], v["delivered"], v["unique"], v["missing"], v["duplicates"],
            v["differ"], v["unknown"]), (want, want, want, 0, 0, 0, 0),
           "%s: popfetch's Maildir" % scen)
        eq(v["added_fields"], {"Received": want}, "popfetch adds one Received: field")
        raw = res[(scen, "raw")]["runs"][0]
        eq(raw["verify"]["server_retr"], 0 if scen == "nothing-new" else want,
           "%s: messages Dovecot sent to the raw limit" % scen)
        ok(raw["wall"] > 0 and raw["maxrss_kb"] > 0, "raw run measured", raw)
    want = sets["mixed"]["count"]
    for row in FILTER_ROWS:
        pf = res[("filter", row)]
        eq(pf["status"], None, "filter: " + row)
        v = pf["runs"][0]["verify"]
        eq((v["delivered"], v["unique"], v["missing"], v["differ"]), (want, want, 0, 0),
           "filter: %s's Maildir (every message kept, into the inbox)" % row)
    ok(("filter", "raw") not in res, "the filter scenario runs popfetch only")
    ok(os.path.isdir(work) and not os.listdir(os.path.join(work, "runs", "mixed-keep",
                                                         "popfetch")),
       "verified runs are cleaned up")


@T.test("bench verifier: missing, duplicated and altered messages are caught")
def _(tmp):
    b = load_bench()
    msgs = pftest.MailGen(3).messages(4, 2000, 3000)
    ms = b.MailSet("t", msgs)
    md = os.path.join(tmp, "Maildir")
    for sub in ("new", "cur", "tmp"):
        os.makedirs(os.path.join(md, sub))

    def put(name, data):
        with open(os.path.join(md, "new", name), "wb") as f:
            f.write(data)
    exp = [pftest.pop3_expected(m) for m in msgs]
    put("1", b"Received: from x\n\tby y; date\n" + exp[0])
    put("2", exp[1])
    put("3", b"Return-Path: <a@b>\nDelivered-To: c\n" + exp[2])
    put("4", exp[3])
    v = b.verify_maildir(md, ms)
    ok(v["ok"], "a correct Maildir passes", v)
    eq(v["added_fields"], {"Received": 1, "(none)": 2, "Return-Path+Delivered-To": 1})
    put("5", exp[1])                                      # a duplicate
    os.unlink(os.path.join(md, "new", "4"))               # a missing one
    put("3", exp[2].replace(b"\n", b"\r\n"))              # CRLF kept
    put("1", b"Received: x\n" + exp[0][:-40] + exp[0][-39:])   # a byte lost
    put("6", b"not a generated message\n")
    v = b.verify_maildir(md, ms)
    ok(not v["ok"])
    eq((v["missing"], v["duplicates"], v["differ"], v["unknown"]), (1, 1, 2, 1), v)
    ok(any("CRLF line endings kept" in p for p in v["problems"]), v["problems"])
    eq(b.verify_summary(v), "FAIL 1 missing, 1 duplicates, 2 differ, 1 unknown")
    # A prefix that is not header fields is a difference, not an addition.
    os.unlink(os.path.join(md, "new", "5"))
    os.unlink(os.path.join(md, "new", "6"))
    put("1", b"garbage line\n" + exp[0])
    put("3", exp[2])
    put("4", exp[3])
    v = b.verify_maildir(md, ms)
    eq((v["missing"], v["duplicates"], v["differ"]), (0, 0, 1), v)


T.done()
