#!/usr/bin/env python3
"""Real MDAs and a real classifier behind popfetch's `mda` and `filter`
(popfetch.conf(5) mda, filter and the recipes under EXAMPLES; doc/DESIGN.md
§10), against the shared Dovecot on loopback:

  dovecot-lda   as the mda, standalone with a config of its own (-c), into
                a Maildir; with Pigeonhole Sieve's duplicate test on
                X-Popfetch-Id, a message popfetch hands over twice (a run
                killed after the MDA, before the seen commit) is kept once
  maildrop      as the mda, a mailfilter sending a List-Id to a folder
  procmail      as the mda (procmail -m RCFILE), the same rule
  bogofilter    as a filter, with a wordlist the test trains first: spam
                into .Junk/, ham into the inbox, nothing trained at run time
  awk           a filter routing by List-Id to Lists.<id> folders

The packages come from scripts/deps.  A missing one FAILS its test (it is
never skipped): these tests are what says the recipes work.  The spamc
recipe of popfetch.conf(5) is not run here (spamd is a daemon with a rule
set; bogofilter covers "a classifier's verdict to Junk").

Each recipe's text is the man page's: the last test checks that every
command and rule used here stands in doc/popfetch.conf.5 as written.

Running as root (as the suite does in CI), dovecot-lda refuses to deliver
for uid 0 without -d (which would need an auth server), so its command
starts with `setpriv` to Dovecot's mail user (nobody), and the lda's home
is under Dovecot's world-traversable sandbox; as any other user it runs as
the man page shows.  maildrop and procmail take $HOME from the password
database, not the environment, so their rc files here name the sandbox
with absolute paths where the man page says $HOME.
"""

import os
import pwd
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
NUSERS = 16
HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.path.abspath(os.environ.get("top_srcdir") or os.path.join(HERE, "..", ".."))
LDA = "/usr/lib/dovecot/dovecot-lda"

# ------------------------------------------------------------------ recipes
# As in popfetch.conf(5), EXAMPLES, "Filters and MDAs" (checked by the last
# test).

BOGOFILTER = "bogofilter; case $? in 0) echo Junk;; 1|2) ;; *) exit 75;; esac"

LISTID = ("awk -v p=Lists. 'tolower($0) ~ /^list-id:/ && "
          "match($0, /<[A-Za-z0-9_-]+[.]/) "
          "{ print p substr($0, RSTART + 1, RLENGTH - 2); exit } /^$/ { exit }'")

LDA_MDA = LDA + " -c ~/.config/popfetch/dovecot-lda.conf -e"

LDA_CONF = """\
mail_location = maildir:~/Mail/work
log_path = /dev/stderr
info_log_path = /dev/null
protocol lda {
  mail_plugins = sieve
}
plugin {
  sieve = file:~/sieve;active=~/.dovecot.sieve
}
"""

SIEVE_DUP = """\
require "duplicate";
if duplicate :header "X-Popfetch-Id" { discard; stop; }
"""

MAILDROP_RC = """\
DEFAULT="$HOME/Mail/work/"
if (/^List-Id:.*<dev\\.example\\.org>/)
{
    to "$DEFAULT.Lists.dev/"
}
"""

PROCMAIL_RC = """\
MAILDIR=$HOME/Mail/work/
DEFAULT=$MAILDIR
:0
* ^List-Id:.*<dev\\.example\\.org>
.Lists.dev/
"""


# ------------------------------------------------------------------ helpers

def need(*progs):
    """Fail (never skip) when a program of the recipe is missing."""
    for p in progs:
        if p.endswith(".so"):
            found = os.path.isfile(p)
        elif p.startswith("/"):
            found = os.access(p, os.X_OK)
        else:
            found = shutil.which(p)
        ok(found, "%s is installed (scripts/deps installs it)" % p)


def dovecot():
    if "dc" not in S:
        raise AssertionError("Dovecot did not start (see test 1)")
    return S["dc"]


def new_user():
    S["nuser"] = S.get("nuser", 0) + 1
    ok(S["nuser"] <= NUSERS, "enough users in the pool")
    return "m%02d" % S["nuser"]


class Box:
    """A mail user on the shared Dovecot and a popfetch sandbox for it
    (deliver.t's, with users m01...)."""

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

    def write(self, rel, text, mode=0o600):
        path = self.pf.path(rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
        os.chmod(path, mode)
        return path

    def server_count(self):
        return self.dc.server_message_count(self.user)


def maildir(path, folder=None):
    return pftest.read_maildir(path if folder is None else
                               os.path.join(path, "." + folder))


X_ID = re.compile(rb"X-Popfetch-Id: [0-9a-f]{32}@popfetch\n")
# Fields an MDA may add on top (dovecot-lda with -f/-a; none is expected
# with the commands here, but they are not popfetch's to judge).
ADDED = re.compile(rb"(?:Return-Path|Delivered-To): [^\n]*\n")


def unwrap(data):
    """A message as an MDA stored it, less what the MDA and popfetch add on
    top (X-Popfetch-Id, then Received:): the message as on the server."""
    while ADDED.match(data):
        data = data[ADDED.match(data).end():]
    m = X_ID.match(data)
    ok(m, "X-Popfetch-Id on top", data[:120])
    return pftest.strip_received_header(data[m.end():])


def popfetch_id(data):
    while ADDED.match(data):
        data = data[ADDED.match(data).end():]
    return X_ID.match(data).group(0)


def msgs_with_headers(seed, headers):
    """One message per header block (b"" for none), MailGen's bodies."""
    base = pftest.MailGen(seed).messages(len(headers), 300, 900)
    return [h + m for h, m in zip(headers, base)]


def byte_exact(got, msgs, what):
    eq(sorted(unwrap(d) for d in got), sorted(pftest.pop3_expected(m) for m in msgs),
       what + ": byte-exact, once each")


# ------------------------------------------------------------------ dovecot-lda

class Lda:
    """dovecot-lda standalone for one user: a home (Maildir ~/Mail/work,
    ~/.dovecot.sieve, ~/.config/popfetch/dovecot-lda.conf) the lda can
    write as the user it runs as, and the mda command line."""

    def __init__(self, box, sieve=None):
        dc = box.dc
        self.home = os.path.join(dc.dir, "lda", box.user)
        os.makedirs(os.path.join(self.home, ".config/popfetch"), exist_ok=True)
        self.conf = os.path.join(self.home, ".config/popfetch/dovecot-lda.conf")
        with open(self.conf, "w") as f:
            f.write(LDA_CONF)
        if sieve is not None:
            with open(os.path.join(self.home, ".dovecot.sieve"), "w") as f:
                f.write(sieve)
        self.md = os.path.join(self.home, "Mail/work")
        as_root = os.geteuid() == 0
        if as_root:
            for d in (os.path.join(dc.dir, "lda"),):
                os.chmod(d, 0o755)
            for d, dirs, files in os.walk(self.home):
                for n in [d] + [os.path.join(d, x) for x in files]:
                    os.chown(n, dc.mail_uid, dc.mail_gid)
        user = pwd.getpwuid(dc.mail_uid).pw_name
        # The man page's command, with HOME (and, as root, the uid) of
        # this sandbox in front: "~" in it is the lda's home.
        prefix = ("setpriv --reuid=%d --regid=%d --clear-groups "
                  % (dc.mail_uid, dc.mail_gid) if as_root else "")
        self.command = (prefix + "env HOME=%s USER=%s " % (self.home, user) +
                        "sh -c 'exec " + LDA_MDA + "'")

    def maildir(self, folder=None):
        return maildir(self.md, folder)


# ------------------------------------------------------------------ set-up

@T.test("dovecot starts (shared by every test of this script); the MDAs "
        "and the classifier are installed")
def _(tmp):
    dc = pftest.Dovecot(tmp, T.certs())
    T.add_cleanup(dc.stop)
    for i in range(1, NUSERS + 1):
        dc.add_user("m%02d" % i, "pw-m%02d-mda" % i)
    dc.start()
    S["dc"] = dc
    os.makedirs(os.path.join(dc.dir, "lda"), exist_ok=True)
    need(LDA, "/usr/lib/dovecot/modules/lib90_sieve_plugin.so", "maildrop",
         "maildirmake", "procmail", "bogofilter", "awk", "setpriv")


# ------------------------------------------------------------------ lda

@T.test("dovecot-lda as the mda (-c its own config): each message arrives "
        "once in its Maildir, byte-exact apart from X-Popfetch-Id; deleted "
        "from the server once delivered")
def _(tmp):
    need(LDA)
    msgs = pftest.MailGen(101).messages(4, 400, 3000)
    box = Box(tmp, msgs, delete=True)
    lda = Lda(box)
    box.configure(maildir=None, mda=lda.command)
    r = box.run("fetch")
    eq(r.rc, 0, str(r))
    eq(r.stderr.count(": mda"), 0, "the lda said nothing: " + r.stderr)
    got = lda.maildir()
    eq(len(got), 4, "four delivered")
    byte_exact(got.messages(), msgs, "dovecot-lda")
    eq(box.server_count(), 0, "deleted from the server")
    ok(not os.path.exists(box.md), "popfetch made no Maildir of its own")


@T.test("dovecot-lda + Sieve duplicate on X-Popfetch-Id: a run killed after "
        "the lda delivered, before popfetch recorded it, hands the message "
        "over again; it is kept once (without the rule: twice)")
def _(tmp):
    need(LDA)
    counts = {}
    for rule in ("duplicate", "none"):
        sub = os.path.join(tmp, rule)
        os.makedirs(sub)
        msgs = pftest.MailGen(102).messages(3, 400, 1500)
        box = Box(sub, msgs)
        lda = Lda(box, sieve=SIEVE_DUP if rule == "duplicate" else "keep;\n")
        flag = box.pf.path("killed")
        # The mda runs as `/bin/sh -c "exec KILLER"`: its parent is
        # popfetch, killed once the first hand-over is delivered.
        killer = box.write("killer", "#!/bin/sh\n%s\nrc=$?\n"
                           "if [ $rc -eq 0 ] && [ ! -e %s ]; then\n"
                           "    : > %s; kill -9 $PPID\nfi\nexit $rc\n"
                           % (lda.command, flag, flag), mode=0o755)
        box.configure(maildir=None, mda="exec " + killer)
        r = box.run("fetch")
        eq(r.rc, -9, "popfetch killed in the MDA's hand-over: " + str(r))
        eq(len(lda.maildir()), 1, "%s: the first delivered before the kill" % rule)
        r = box.run("fetch")
        eq(r.rc, 0, str(r))
        got = lda.maildir().messages()
        counts[rule] = len(got)
        if rule == "duplicate":
            eq(len(got), 3, "the repeat was dropped by Sieve: three, once each")
            byte_exact(got, msgs, "with the duplicate rule")
        else:
            eq(len(got), 4, "without the rule, the repeat is delivered: the "
               "test sees one")
            ids = [popfetch_id(d) for d in got]
            eq(len(set(ids)), 3, "the repeat has the same X-Popfetch-Id")
        r = box.run("fetch").expect(0)
        eq(len(lda.maildir()), counts[rule], "a third run hands nothing over")
    eq(counts, {"duplicate": 3, "none": 4}, "kept once with the rule only")


# ------------------------------------------------------------------ maildrop

@T.test("maildrop as the mda with a mailfilter (0600): a List-Id message "
        "into the Maildir++ folder .Lists.dev/, the other into the inbox")
def _(tmp):
    need("maildrop", "maildirmake")
    msgs = msgs_with_headers(103, [b"List-Id: Dev list <dev.example.org>\n",
                                   b"", b"List-Id: <other.example.org>\n"])
    box = Box(tmp, msgs)
    md = box.pf.path("Mail/work")
    os.makedirs(os.path.dirname(md), exist_ok=True)
    for args in (["maildirmake", md], ["maildirmake", "-f", "Lists.dev", md]):
        subprocess.run(args, check=True, timeout=30)
    rc = box.write(".mailfilter-popfetch",
                   MAILDROP_RC.replace("$HOME", box.pf.home))
    box.configure(maildir=None, mda="maildrop " + rc)
    r = box.run("fetch")
    eq(r.rc, 0, str(r))
    inbox, dev = maildir(md), maildir(md, "Lists.dev")
    eq((len(inbox), len(dev)), (2, 1), "two in the inbox, one in .Lists.dev")
    byte_exact(dev.messages(), msgs[:1], "maildrop, .Lists.dev")
    byte_exact(inbox.messages(), msgs[1:], "maildrop, inbox")
    box.run("fetch").expect(0)
    eq(len(maildir(md)) + len(maildir(md, "Lists.dev")), 3, "nothing twice")


# ------------------------------------------------------------------ procmail

@T.test("procmail -m RCFILE as the mda: Maildir delivery (trailing slash), a "
        "List-Id rule into .Lists.dev/ (made by procmail)")
def _(tmp):
    need("procmail")
    msgs = msgs_with_headers(104, [b"", b"List-Id: Dev list <dev.example.org>\n",
                                   b"List-Id: <dev.example.org.evil>\n"])
    box = Box(tmp, msgs)
    md = box.pf.path("Mail/work")
    os.makedirs(md, exist_ok=True)
    rc = box.write(".procmailrc-popfetch",
                   PROCMAIL_RC.replace("$HOME", box.pf.home))
    box.configure(maildir=None, mda="procmail -m " + rc)
    r = box.run("fetch")
    eq(r.rc, 0, str(r))
    inbox, dev = maildir(md), maildir(md, "Lists.dev")
    eq((len(inbox), len(dev)), (2, 1), "two in the inbox, one in .Lists.dev")
    byte_exact(inbox.messages(), [msgs[0], msgs[2]], "procmail, inbox "
               "(<dev.example.org.evil> is another list)")
    byte_exact(dev.messages(), msgs[1:2], "procmail, .Lists.dev")


# ------------------------------------------------------------------ bogofilter

SPAM_WORDS = ("cheap pills viagra casino bonus lottery winner claim prize "
              "free money offer unsubscribe discount pharmacy replica watches "
              "urgent wire transfer inheritance beneficiary").split()
HAM_WORDS = ("build failed release branch parser patch review meeting notes "
             "tomorrow agenda commit regression benchmark kernel config "
             "deadline refactor compiler warning").split()


def corpus_msg(words, i, subject):
    body = " ".join(words[(i + k) % len(words)] for k in range(3 * len(words)))
    return ("From: sender%d@example.com\nTo: alice@example.com\n"
            "Subject: %s %d\nMessage-ID: <%s%d@example.com>\n\n%s\n"
            % (i, subject, i, subject.split()[0], i, body)).encode()


@T.test("bogofilter as a filter (the man page's recipe), with a wordlist "
        "trained first: spam into .Junk/, ham into the inbox; the wordlist "
        "is not changed by the run; no wordlist at all leaves the mail on "
        "the server (75)")
def _(tmp):
    need("bogofilter")
    spam = [corpus_msg(SPAM_WORDS, i, "cheap offer") for i in range(8)]
    ham = [corpus_msg(HAM_WORDS, i, "release notes") for i in range(8)]
    msgs = [spam[6], ham[6], ham[7], spam[7]]
    box = Box(tmp, msgs, filter=BOGOFILTER)
    env = dict(os.environ, HOME=box.pf.home)
    for flag, corpus in (("-s", spam[:6]), ("-n", ham[:6])):
        for m in corpus:
            subprocess.run(["bogofilter", flag], input=m, env=env, check=True,
                           timeout=30)
    db = box.pf.path(".bogofilter/wordlist.db")
    ok(os.path.isfile(db), "trained: " + db)
    with open(db, "rb") as f:
        before = f.read()
    r = box.run("fetch")
    eq(r.rc, 0, str(r))
    inbox, junk = box.pf.path("Mail/work"), None
    junk = maildir(inbox, "Junk")
    inbox = maildir(inbox)
    eq((len(inbox), len(junk)), (2, 2), "two ham in the inbox, two spam in .Junk")
    eq(sorted(pftest.strip_received_header(m) for m in junk.messages()),
       sorted(pftest.pop3_expected(m) for m in (spam[6], spam[7])), "the spam")
    eq(sorted(pftest.strip_received_header(m) for m in inbox.messages()),
       sorted(pftest.pop3_expected(m) for m in (ham[6], ham[7])), "the ham")
    ok(all(n for n in junk.new), "in .Junk/new")
    with open(db, "rb") as f:
        eq(f.read() == before, True, "the wordlist is as trained")
    # Untrained: bogofilter exits 3, the recipe 75.
    sub = os.path.join(tmp, "untrained")
    os.makedirs(sub)
    box2 = Box(sub, [ham[0]], filter=BOGOFILTER)
    r = box2.run("fetch")
    eq(r.rc, 75, str(r))
    contains(r.stderr, "the filter asked to try again later (exit 75)")
    eq(box2.server_count(), 1, "left on the server")


# ------------------------------------------------------------------ List-Id

@T.test("a List-Id filter (awk one-liner) routes to Lists.<id> folders; no "
        "List-Id, one in the body, or one that is no folder name goes to the "
        "inbox")
def _(tmp):
    need("awk")
    heads = [b"List-Id: Dev list <dev.lists.example.org>\n",
             b"list-id: <Ops_Team.example.net>\n",
             b"",
             b"List-Id: <../etc.example.org>\n",
             b"List-Id: The announcements. <announce.example.com>\n",
             b"X-Note: nothing\n"]
    msgs = msgs_with_headers(105, heads)
    # One whose List-Id: line is in the body only.
    msgs.append(b"Subject: quoted\n\nList-Id: <body.example.org>\n")
    box = Box(tmp, msgs, filter=LISTID)
    r = box.run("fetch")
    eq(r.rc, 0, str(r))
    md = box.md
    folders = sorted(n for n in os.listdir(md) if n.startswith("."))
    eq(folders, [".Lists.Ops_Team", ".Lists.announce", ".Lists.dev"], "folders made")
    eq(maildir(md, "Lists.dev").messages(strip_received=True),
       [pftest.pop3_expected(msgs[0])], "dev")
    eq(maildir(md, "Lists.Ops_Team").messages(strip_received=True),
       [pftest.pop3_expected(msgs[1])], "Ops_Team (header name in any case)")
    eq(maildir(md, "Lists.announce").messages(strip_received=True),
       [pftest.pop3_expected(msgs[4])], "announce (a dot in the phrase)")
    eq(sorted(maildir(md).messages(strip_received=True)),
       sorted(pftest.pop3_expected(msgs[i]) for i in (2, 3, 5, 6)), "the inbox")


# ------------------------------------------------------------------ docs

def man_text():
    with open(os.path.join(SRCDIR, "doc/popfetch.conf.5.in")) as f:
        t = f.read()
    for esc, ch in (("\\-", "-"), ("\\(ti", "~"), ("\\(dq", '"'), ("\\(aq", "'"),
                    ("\\(ha", "^"), ("\\(rs", "\\"), ("\\e", "\\"),
                    ("\\&", "")):
        t = t.replace(esc, ch)
    return t


@T.test("popfetch.conf(5) EXAMPLES shows the recipes tested here, as written")
def _(tmp):
    t = man_text()
    ex = t[t.index(".SH EXAMPLES"):t.index(".SH FILES")]
    ok(".SS Filters and MDAs" in ex, "EXAMPLES has the subsection")
    for what, text in (("bogofilter", 'filter = "%s"' % BOGOFILTER),
                       ("List-Id", 'filter = "%s"' % LISTID),
                       ("dovecot-lda", 'mda = "%s"' % LDA_MDA),
                       ("dovecot-lda.conf", LDA_CONF),
                       ("sieve", SIEVE_DUP),
                       ("maildrop", 'mda = "maildrop ~/.mailfilter-popfetch"'),
                       ("mailfilter", MAILDROP_RC),
                       ("procmail", 'mda = "procmail -m ~/.procmailrc-popfetch"'),
                       ("procmailrc", PROCMAIL_RC)):
        contains(ex, text, "the %s recipe" % what)
    like(ex, r'filter = "r=\$\(spamc -c\)', "the spamc recipe (not run here)")


T.done()
