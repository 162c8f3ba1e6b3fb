#!/usr/bin/env python3
"""Tests of the integration-test harness itself (pftest, popserver, mailgen).

These are real tests: each one checks that a piece of the harness does what
the popfetch integration tests rely on, and fails if it does not.
"""

import base64
import os
import poplib
import socket
import ssl
import subprocess
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import pftest  # noqa: E402
from pftest import eq, ok, contains, not_contains, like, raises  # noqa: E402
from popserver import ScramClient  # noqa: E402

T = pftest.Suite(__file__)
S = {}          # shared state between tests: a failed set-up fails its users


def b64(data):
    return base64.b64encode(data if isinstance(data, bytes) else data.encode()).decode()


def retr_bytes(p, n):
    """RETR n with poplib, as the bytes a POP3 client must deliver (poplib
    strips CRLF and undoes dot-stuffing)."""
    _, lines, _ = p.retr(n)
    return b"\n".join(lines) + b"\n"


def tls_client(port, cafile, server_hostname="localhost"):
    """Handshake with a verifying Python client; returns (socket, None) or
    (None, SSLCertVerificationError)."""
    ctx = ssl.create_default_context(cafile=cafile)
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    try:
        return ctx.wrap_socket(raw, server_hostname=server_hostname), None
    except ssl.SSLCertVerificationError as e:
        raw.close()
        return None, e


# ------------------------------------------------------------------ mailgen

@T.test("mailgen: same seed gives the same messages, another seed others")
def _():
    a = pftest.MailGen(42).messages(20, 2048, 10240)
    b = pftest.MailGen(42).messages(20, 2048, 10240)
    c = pftest.MailGen(43).messages(20, 2048, 10240)
    eq(a, b, "seed 42 twice")
    ok(a != c, "seed 43 differs from seed 42")
    for m in a:
        ok(1800 <= len(m) <= 10240 + 200, "size within range", len(m))
        ok(b"\r" not in m, "LF line endings only")
        for h in (b"From: ", b"To: ", b"Subject: ", b"Date: ", b"Message-ID: <"):
            contains(m, b"\n" + h if not m.startswith(h) else h)


@T.test("mailgen: edge-case messages contain each edge case")
def _():
    msgs = pftest.edge_case_messages(1)
    by = dict(zip(pftest.mailgen.EDGE_CASES, msgs))
    lines = {k: m.split(b"\n") for k, m in by.items()}
    contains(lines["dot_line"], b".", "a line that is just '.'")
    ok(any(ln.startswith(b".") and not ln.startswith(b"..") and ln != b"."
           for ln in lines["dot_start"]), "a line starting with '.'")
    contains(lines["double_dot"], b"..", "a line that is '..'")
    contains(lines["double_dot"], b"...three dots")
    by["utf8"].decode("utf-8")
    raises(UnicodeDecodeError, by["latin1"].decode, "utf-8")
    ok(max(len(ln) for ln in lines["long_line"]) > 10000, "a line over 10,000 chars")
    contains(by["empty_lines"], b"\n\n\n\n", "consecutive empty lines")
    ok(not by["no_final_newline"].endswith(b"\n"), "no final newline")
    ok(by["last_line_dot"].endswith(b"\n.\n"), "last line is '.'")
    eq(pftest.pop3_expected(b"a\nb"), b"a\nb\n", "pop3_expected adds the final LF")
    eq(pftest.mailgen.to_pop3_wire(b"x\n.\n..y"), b"x\r\n..\r\n...y\r\n.\r\n", "wire form")


# ------------------------------------------------------------------ certs

@T.test("certs: generated, with openssl's SHA-256 fingerprints")
def _():
    c = T.certs()
    S["certs"] = c
    for name, cert in c.all().items():
        out = subprocess.run(["openssl", "x509", "-in", cert.cert, "-noout",
                              "-fingerprint", "-sha256"], capture_output=True,
                             text=True, check=True).stdout
        eq(cert.fingerprint, "sha256:" + out.strip().split("=", 1)[1].upper(), name)
        like(cert.fingerprint, r"^sha256:([0-9A-F]{2}:){31}[0-9A-F]{2}$", name)
    eq(len({x.fingerprint for x in c.all().values()}), len(c.NAMES), "all distinct")
    v = subprocess.run(["openssl", "verify", "-CAfile", c.ca.cert, c.server.cert,
                        c.server2.cert, c.wronghost.cert], capture_output=True, text=True)
    eq(v.returncode, 0, "CA-signed certs verify: " + v.stdout + v.stderr)


# ------------------------------------------------------------------ dovecot

@T.test("dovecot: starts on two free loopback ports")
def _(tmp):
    dc = pftest.Dovecot(tmp, S["certs"])
    T.add_cleanup(dc.stop)
    dc.add_user("alice", "s3cret pass")
    dc.add_user("bob", "hunter2")
    dc.start()
    S["dc"] = dc
    ok(dc.running(), "dovecot running")
    ok(dc.port != dc.pop3s_port, "two ports")
    ok(pftest.port_open(dc.port) and pftest.port_open(dc.pop3s_port), "ports open")
    contains(dc.log_with("starting up for pop3"), "starting up for pop3")


@T.test("dovecot: CAPA lists STLS, PIPELINING, UIDL, TOP, USER, SASL with SCRAM-SHA-256")
def _():
    dc = S["dc"]
    p = dc.connect("none")
    try:
        like(p.getwelcome().decode(), r"^\+OK .*<[^>]+@[^>]+>$", "APOP timestamp in greeting")
        capa = p.capa()
    finally:
        p.quit()
    for c in ("STLS", "PIPELINING", "UIDL", "TOP", "USER", "RESP-CODES", "SASL"):
        contains(capa, c, "CAPA")
    for m in ("SCRAM-SHA-256", "PLAIN"):
        contains(capa["SASL"], m, "SASL")
    p = dc.connect("starttls")
    try:
        capa = p.capa()
        not_contains(capa, "STLS", "after STLS")
        contains(capa, "PIPELINING")
        ok(p.sock.version() in ("TLSv1.2", "TLSv1.3"), p.sock.version())
    finally:
        p.quit()


@T.test("dovecot: messages are served byte-exact over verified implicit TLS (USER/PASS)")
def _():
    dc = S["dc"]
    msgs = pftest.edge_case_messages(7) + pftest.MailGen(7).messages(15, 500, 4000)
    S["msgs"] = msgs
    dc.add_messages("alice", msgs)
    eq(dc.server_message_count("alice"), len(msgs), "STAT count")
    p = dc.connect("implicit")
    try:
        eq(p.sock.getpeercert()["subjectAltName"],
           (("DNS", "localhost"), ("IP Address", "127.0.0.1")), "served cert")
        p.user("alice")
        p.pass_("s3cret pass")
        for i, m in enumerate(msgs, 1):
            eq(retr_bytes(p, i), pftest.pop3_expected(m), "message %d" % i)
        _, lst, _ = p.list()
        eq(len(lst), len(msgs), "LIST lines")
    finally:
        p.quit()
    uidls = dc.server_uidls("alice")
    eq(len(uidls), len(msgs), "UIDL count")
    eq(len(set(uidls)), len(msgs), "UIDLs unique")
    for u in uidls:
        like(u, r"^[0-9A-Fa-f]{16}$", "pop3_uidl_format %08Xu%08Xv")
    eq(dc.server_uidls("alice"), uidls, "UIDLs stable across sessions")


@T.test("dovecot: APOP and SCRAM-SHA-256 logins work with {PLAIN} passwords")
def _():
    dc = S["dc"]
    p = dc.connect("none")
    try:
        like(p.apop("bob", "hunter2").decode(), r"^\+OK")
        eq(p.stat()[0], 0, "bob's mailbox is empty")
    finally:
        p.quit()
    p = dc.connect("starttls")
    try:
        sc = ScramClient("alice", "s3cret pass")
        r1 = p._shortcmd("AUTH SCRAM-SHA-256 " + b64(sc.first())).decode()
        like(r1, r"^\+ ", "server-first challenge")
        r2 = p._shortcmd(b64(sc.final(base64.b64decode(r1[2:]).decode()))).decode()
        like(r2, r"^\+ ", "server-final challenge")
        ok(sc.verify(base64.b64decode(r2[2:]).decode()), "server signature verifies")
        like(p._shortcmd("").decode(), r"^\+OK", "logged in")
        eq(p.stat()[0], len(S["msgs"]), "alice's count after SCRAM")
    finally:
        p.quit()
    contains(dc.log_with("method=SCRAM-SHA-256"), "method=SCRAM-SHA-256")
    contains(dc.log_with("method=APOP"), "method=APOP")


@T.test("dovecot: a wrong password is rejected (USER/PASS, APOP, SCRAM)")
def _():
    dc = S["dc"]
    p = dc.connect("implicit")
    p.user("alice")
    e = raises(poplib.error_proto, p.pass_, "wrong")
    like(str(e), r"-ERR \[AUTH\]")
    p.quit()
    p = dc.connect("none")
    raises(poplib.error_proto, p.apop, "bob", "wrong")
    p.quit()
    p = dc.connect("starttls")
    sc = ScramClient("alice", "wrong")
    r1 = p._shortcmd("AUTH SCRAM-SHA-256 " + b64(sc.first())).decode()
    e = raises(poplib.error_proto, p._shortcmd,
               b64(sc.final(base64.b64decode(r1[2:]).decode())))
    like(str(e), r"-ERR")
    p.quit()


@T.test("dovecot: DELE is committed by QUIT only; stop() ends every process")
def _():
    dc = S["dc"]
    n = dc.server_message_count("alice")
    p = dc.login("alice", "implicit")
    p.dele(1)
    p.close()                           # connection lost: no QUIT
    time.sleep(0.3)
    eq(dc.server_message_count("alice"), n, "no QUIT, nothing deleted")
    p = dc.login("alice", "implicit")
    p.dele(1)
    p.quit()
    eq(dc.server_message_count("alice"), n - 1, "QUIT commits DELE")
    pid = dc.proc.pid
    dc.stop()
    ok(not dc.running(), "stopped")
    ok(not pftest.port_open(dc.port), "port closed")
    eq(pftest.util.group_members(pid), [], "no live process left in dovecot's group")


# ------------------------------------------------------------------ TLS rejections

@T.test("certs: expired, not-yet-valid, wrong-host and self-signed certs are rejected")
def _(tmp):
    c = S["certs"]
    expect = {"expired": (10, "certificate has expired"),
              "notyetvalid": (9, "certificate is not yet valid"),
              "wronghost": (62, "Hostname mismatch"),
              "selfsigned": (18, "self.signed certificate")}
    for name, (code, reason) in expect.items():
        srv = pftest.PopServer(os.path.join(tmp, name), tls="implicit",
                               cert=getattr(c, name)).start()
        try:
            s, err = tls_client(srv.port, c.ca.cert)
            if s is not None:
                s.close()
            ok(err is not None, name + " accepted by a verifying client")
            eq(err.verify_code, code, name + " verify_code")
            like(err.verify_message, reason, name)
            ok(srv.wait_closed(), "server closed")
            like("\n".join(srv.events()), r"tls handshake failed", name)
            eq(srv.client_lines(), [], name + ": no client line before TLS")
        finally:
            srv.stop()
    # Positive controls: the good cert by name and by IP address.
    srv = pftest.PopServer(os.path.join(tmp, "good"), tls="implicit", cert=c.server).start()
    try:
        for host in ("localhost", "127.0.0.1"):
            s, err = tls_client(srv.port, c.ca.cert, host)
            ok(err is None, "server cert for %s: %s" % (host, err))
            like(s.recv(100).decode(), r"^\+OK")
            s.close()
    finally:
        srv.stop()


# ------------------------------------------------------------------ popserver: dialogue

DIALOGUE = r"""
# A small, complete session.
@exit 0
S: +OK dialogue ready
C: CAPA
S: +OK
S: UIDL
S: .
C: USER *
S: +OK
C~ PASS \S+
S: +OK logged in
C: STAT
S: +OK 1 12
C: RETR 1
S: +OK
S: ..dot first
SEND_RAW hello\r\n.\r\n
C: QUIT
S: +OK bye
"""


@T.test("popserver dialogue: serves a poplib client and records the transcript")
def _(tmp):
    srv = pftest.PopServer(tmp, dialogue=DIALOGUE).start()
    try:
        eq(srv.dialogue.meta_get("exit"), "0", "meta")
        p = poplib.POP3("127.0.0.1", srv.port, timeout=10)
        eq(p.capa(), {"UIDL": []})
        p.user("alice")
        p.pass_("secret")
        eq(p.stat(), (1, 12))
        eq(retr_bytes(p, 1), b".dot first\nhello\n", "RETR, dot-unstuffed")
        p.quit()
        ok(srv.wait_closed(), "closed")
        eq(srv.client_lines(1), [b"CAPA", b"USER alice", b"PASS secret", b"STAT",
                                 b"RETR 1", b"QUIT"])
        contains(srv.events(1), "script complete")
        eq(srv.mismatches(), [])
        # The next connection runs the script again; a wrong command is a
        # recorded mismatch answered with -ERR.
        p = poplib.POP3("127.0.0.1", srv.port, timeout=10)
        e = raises(poplib.error_proto, p.noop)
        like(str(e), "unexpected command")
        ok(srv.wait_closed(), "closed after mismatch")
        eq(len(srv.mismatches()), 1, "one mismatch")
        like(srv.mismatches()[0], r"expected 'CAPA' got 'NOOP'")
        eq(srv.connections(), [1, 2])
    finally:
        srv.stop()


@T.test("popserver dialogue: STARTTLS, BIG_LINE, STALL, CLOSE and ACCEPT sections")
def _(tmp):
    c = S["certs"]
    script = r"""
S: +OK first connection
C: CAPA
S: +OK
S: STLS
S: .
C: STLS
S: +OK Begin TLS
STARTTLS
C: CAPA
S: -ERR no capa
C: QUIT
CLOSE
ACCEPT
BIG_LINE 1048576
STALL 30
ACCEPT
S: +OK third
C: *
CLOSE
"""
    srv = pftest.PopServer(tmp, dialogue=script, cert=c.server).start()
    try:
        p = poplib.POP3("127.0.0.1", srv.port, timeout=10)
        p.stls(context=ssl.create_default_context(cafile=c.ca.cert))
        raises(poplib.error_proto, p.capa)
        raises(poplib.error_proto, p.quit)     # the server closes without a reply
        ok(srv.wait_closed(), "first closed")
        ok(any(t.startswith("tls established") for t in srv.events(1)), "TLS")
        # Second connection: a 1 MiB status line, then silence.
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        data = b""
        while not data.endswith(b"\r\n"):
            data += s.recv(65536)
        eq(len(data), 1048576 + 2, "BIG_LINE length")
        s.settimeout(0.5)
        s.sendall(b"NOOP\r\n")
        raises(socket.timeout, s.recv, 10)
        s.close()
        ok(srv.wait_closed(), "second closed")
        eq(srv.client_lines(2), [b"NOOP"], "recorded during the stall")
        contains(srv.events(2), "client closed during stall")
        # Third connection: its own section; CLOSE ends it.
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        eq(s.recv(100), b"+OK third\r\n")
        s.sendall(b"ANYTHING at all\r\n")
        eq(s.recv(100), b"", "closed by CLOSE")
        s.close()
        ok(srv.wait_closed())
        eq(srv.client_lines(3), [b"ANYTHING at all"])
    finally:
        srv.stop()


# ------------------------------------------------------------------ popserver: mailbox

@T.test("popserver mailbox: STLS, CAPA, USER/PASS, byte-exact RETR, TOP, DELE+QUIT")
def _(tmp):
    c = S["certs"]
    msgs = pftest.edge_case_messages(3)
    srv = pftest.PopServer(tmp, messages=msgs, tls="stls", cert=c.server).start()
    try:
        p = poplib.POP3("127.0.0.1", srv.port, timeout=10)
        capa = p.capa()
        for k in ("STLS", "UIDL", "TOP", "PIPELINING", "USER", "SASL"):
            contains(capa, k)
        p.stls(context=ssl.create_default_context(cafile=c.ca.cert))
        not_contains(p.capa(), "STLS", "after STLS")
        p.user("alice")
        p.pass_("secret")
        eq(p.stat()[0], len(msgs))
        _, lines, _ = p.uidl()
        eq(lines, [b"%d uid-%d" % (i, i) for i in range(1, len(msgs) + 1)])
        _, lines, _ = p.list()
        for i, m in enumerate(msgs, 1):
            eq(lines[i - 1], b"%d %d" % (i, len(pftest.pop3_expected(m)
                                             .replace(b"\n", b"\r\n"))), "LIST size")
            eq(retr_bytes(p, i), pftest.pop3_expected(m), "message %d" % i)
        _, top, _ = p.top(1, 0)
        eq(top[-1], b"", "TOP n 0 ends with the empty line")
        contains(top, msgs[0].split(b"\n")[0])
        p.dele(1)
        p.dele(2)
        p.quit()
        ok(srv.wait_closed())
        eq(srv.deleted_uidls(), ["uid-1", "uid-2"])
        eq(srv.remaining_uidls(), ["uid-%d" % i for i in range(3, len(msgs) + 1)])
        # poplib's stls() sends a CAPA of its own first.
        eq(srv.commands(1)[:5], ["CAPA", "CAPA", "STLS", "CAPA", "USER"])
        # DELE without QUIT is not committed.
        p = poplib.POP3("127.0.0.1", srv.port, timeout=10)
        p.stls(context=ssl.create_default_context(cafile=c.ca.cert))
        p.user("alice")
        p.pass_("secret")
        eq(p.uidl(1).split()[-1], b"uid-3", "renumbered after QUIT")
        p.dele(1)
        p.close()
        ok(srv.wait_closed())
        eq(srv.deleted_uidls(), ["uid-1", "uid-2"], "no commit without QUIT")
        eq(len(srv.remaining_uidls()), len(msgs) - 2)
    finally:
        srv.stop()


@T.test("popserver mailbox: RETR cut in the status line, the data, before the dot")
def _(tmp):
    msgs = pftest.MailGen(9).messages(3, 3000, 5000)
    srv = pftest.PopServer(tmp, messages=msgs).start()
    try:
        for where in ("status", "data", "before_dot", 100):
            srv.configure(retr_cut_at={2: where})
            p = poplib.POP3("127.0.0.1", srv.port, timeout=10)
            p.user("alice")
            p.pass_("secret")
            eq(retr_bytes(p, 1), pftest.pop3_expected(msgs[0]), "message 1 intact")
            p.dele(1)
            e = raises((poplib.error_proto, OSError), p.retr, 2)
            like(str(e), r"EOF|line|closed|reset|-ERR", "poplib sees the cut (%s)" % where)
            p.close()
            ok(srv.wait_closed())
            conn = srv.connections()[-1]
            ok(any("RETR 2: sent" in t and "then cut" in t for t in srv.events(conn)),
               "cut recorded", srv.events(conn))
            eq(srv.commands(conn), ["USER", "PASS", "RETR", "DELE", "RETR"])
        eq(srv.deleted_uidls(), [], "a cut session commits nothing")
        eq(len(srv.remaining_uidls()), 3)
    finally:
        srv.stop()


@T.test("popserver mailbox: fault knobs (in_use, no UIDL, LIST override, huge status line,"
        " stall, override, fault_connections)")
def _(tmp):
    msgs = pftest.MailGen(2).messages(2, 500, 900)
    srv = pftest.PopServer(tmp, messages=msgs, in_use=True).start()
    try:
        p = poplib.POP3("127.0.0.1", srv.port, timeout=10)
        p.user("alice")
        e = raises(poplib.error_proto, p.pass_, "secret")
        like(str(e), r"-ERR \[IN-USE\]")
        p.close()
        srv.configure(in_use=False, uidl=False, list_size_override={"1": 99999},
                      override={"STAT": ["-ERR [SYS/TEMP] busy"]})
        p = poplib.POP3("127.0.0.1", srv.port, timeout=10)
        not_contains(p.capa(), "UIDL")
        p.user("alice")
        p.pass_("secret")
        raises(poplib.error_proto, p.uidl)
        like(p.list(1).decode(), r"^\+OK 1 99999$")
        e = raises(poplib.error_proto, p.stat)
        like(str(e), "SYS/TEMP")
        p.quit()
        # fault_connections: the faults apply to the next connection only.
        n = len(srv.connections())
        srv.configure(uidl=True, list_size_override={}, override={},
                      status_line_bytes=1 << 20, fault_connections=[n + 1])
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        data = b""
        while not data.endswith(b"\r\n"):
            chunk = s.recv(1 << 16)
            if not chunk:
                break
            data += chunk
        eq(len(data), (1 << 20) + 2, "1 MiB status line")
        s.close()
        p = poplib.POP3("127.0.0.1", srv.port, timeout=10)
        like(p.getwelcome().decode(), r"^\+OK popserver ready")
        p.quit()
        # stall_after: silence after the 2nd command.
        srv.configure(status_line_bytes=0, fault_connections=None, stall_after=2, stall_max=20)
        p = poplib.POP3("127.0.0.1", srv.port, timeout=1)
        p.user("alice")
        p.pass_("secret")
        raises(OSError, p.stat)
        p.close()
        ok(srv.wait_closed(15))
        eq(srv.commands(srv.connections()[-1]), ["USER", "PASS", "STAT"])
    finally:
        srv.stop()


@T.test("popserver mailbox: latency_ms delays replies but not pipelined ones in series")
def _(tmp):
    srv = pftest.PopServer(tmp, messages=[b"Subject: x\n\nbody\n"], latency_ms=300).start()
    try:
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        f = s.makefile("rb")
        f.readline()
        t0 = time.monotonic()
        s.sendall(b"NOOP\r\n")
        eq(f.readline(), b"-ERR Unknown command in AUTHORIZATION state\r\n")
        one = time.monotonic() - t0
        ok(one >= 0.28, "one reply delayed", one)
        t0 = time.monotonic()
        s.sendall(b"USER alice\r\nPASS secret\r\nSTAT\r\nNOOP\r\n")
        for _ in range(4):
            like(f.readline().decode(), r"^\+OK")
        four = time.monotonic() - t0
        ok(0.28 <= four < 0.9, "four pipelined replies take about one latency", four)
        s.close()
    finally:
        srv.stop()


@T.test("popserver mailbox: SASL PLAIN, XOAUTH2 (both forms, error challenge), SCRAM, APOP")
def _(tmp):
    srv = pftest.PopServer(tmp, messages=[b"Subject: s\n\nx\n"],
                           sasl=["PLAIN", "LOGIN", "XOAUTH2", "SCRAM-SHA-256"],
                           oauth_tokens={"alice": "tok123"}, apop=True).start()
    xo = b64("user=alice\x01auth=Bearer tok123\x01\x01")
    xo_bad = b64("user=alice\x01auth=Bearer nope\x01\x01")

    def conn():
        return poplib.POP3("127.0.0.1", srv.port, timeout=10)
    try:
        p = conn()
        like(p._shortcmd("AUTH XOAUTH2 " + xo).decode(), r"^\+OK", "XOAUTH2 initial response")
        p.quit()
        p = conn()
        eq(p._shortcmd("AUTH XOAUTH2").decode(), "+ ", "two-step: empty challenge")
        like(p._shortcmd(xo).decode(), r"^\+OK", "XOAUTH2 two-step")
        p.quit()
        p = conn()
        ch = p._shortcmd("AUTH XOAUTH2 " + xo_bad).decode()
        like(base64.b64decode(ch[2:]).decode(), r'"status": "401"', "error challenge")
        e = raises(poplib.error_proto, p._shortcmd, "")
        like(str(e), r"-ERR \[AUTH\]")
        p.quit()
        p = conn()
        like(p._shortcmd("AUTH PLAIN " + b64("\0alice\0secret")).decode(), r"^\+OK")
        p.quit()
        p = conn()
        sc = ScramClient("alice", "secret")
        r1 = p._shortcmd("AUTH SCRAM-SHA-256 " + b64(sc.first())).decode()
        r2 = p._shortcmd(b64(sc.final(base64.b64decode(r1[2:]).decode()))).decode()
        ok(sc.verify(base64.b64decode(r2[2:]).decode()), "SCRAM server signature")
        like(p._shortcmd("").decode(), r"^\+OK")
        p.quit()
        p = conn()
        like(p.apop("alice", "secret").decode(), r"^\+OK")
        p.quit()
        p = conn()
        raises(poplib.error_proto, p.apop, "alice", "wrong")
        p.quit()
        # No initial responses; a rejected mechanism; a bad SCRAM signature.
        srv.configure(sasl_ir=False, sasl_reject=["PLAIN"], scram_bad_signature=True)
        p = conn()
        raises(poplib.error_proto, p._shortcmd, "AUTH PLAIN " + b64("\0alice\0secret"))
        eq(p._shortcmd("AUTH PLAIN").decode(), "+ ")
        raises(poplib.error_proto, p._shortcmd, b64("\0alice\0secret"))
        sc = ScramClient("alice", "secret")
        eq(p._shortcmd("AUTH SCRAM-SHA-256").decode(), "+ ")
        r1 = p._shortcmd(b64(sc.first())).decode()
        r2 = p._shortcmd(b64(sc.final(base64.b64decode(r1[2:]).decode()))).decode()
        ok(not sc.verify(base64.b64decode(r2[2:]).decode()), "bad signature detected")
        e = raises(poplib.error_proto, p._shortcmd, "*")
        like(str(e), "cancelled")
        p.close()
        ok(srv.wait_closed())
        lines = srv.client_lines()
        contains(lines, b"AUTH XOAUTH2 " + xo.encode(), "transcript keeps AUTH lines")
        contains(lines, b"", "the empty answer to the error challenge")
    finally:
        srv.stop()


@T.test("popserver: STLS refused by a client that rejects the cert: no credentials recorded")
def _(tmp):
    c = S["certs"]
    srv = pftest.PopServer(tmp, messages=[], tls="stls", cert=c.selfsigned).start()
    try:
        p = poplib.POP3("127.0.0.1", srv.port, timeout=10)
        raises(ssl.SSLCertVerificationError, p.stls,
               context=ssl.create_default_context(cafile=c.ca.cert))
        p.file.close()          # poplib's socket went with the failed wrap
        ok(srv.wait_closed())
        eq(srv.commands(), ["CAPA", "STLS"])
        like("\n".join(srv.events()), r"tls handshake failed")
    finally:
        srv.stop()


# ------------------------------------------------------------------ popfetch runner, maildir

FAKE = r"""#!/bin/sh
# Stands in for popfetch: shows what the harness gives it.
echo "args: $*"
echo "home=$HOME"
echo "xdg_config=$XDG_CONFIG_HOME"
echo "xdg_state=$XDG_STATE_HOME"
echo "popfetch_config=${POPFETCH_CONFIG-unset}"
if test -t 2; then echo "stderr is a tty" >&2; else echo "stderr is not a tty" >&2; fi
case "$*" in *sleep*) sleep 30 ;; esac
touch "$HOME/was-here"
exit 3
"""


@T.test("runner: isolated HOME/XDG, config 0600, exit code, timeout, tty")
def _(tmp):
    fake = os.path.join(tmp, "fake-popfetch")
    with open(fake, "w") as f:
        f.write(FAKE)
    os.chmod(fake, 0o755)
    pf = pftest.Popfetch(os.path.join(tmp, "sb"), binary=fake)
    pf.write_config(pftest.account_conf("work", host="127.0.0.1", port=995, tls="implicit",
                                        user="alice", password='pa"ss', delete=False,
                                        maildir=pf.path("Mail/work")))
    eq(os.stat(pf.config_path).st_mode & 0o777, 0o600, "config mode")
    with open(pf.config_path) as f:
        text = f.read()
    contains(text, "    tls = implicit\n")
    contains(text, '    password = "pa\\"ss"\n')
    contains(text, "    delete = false\n")
    os.environ["POPFETCH_CONFIG"] = "/nonexistent/should-not-leak"
    try:
        r = pf.run("fetch", "-a", "work")
    finally:
        del os.environ["POPFETCH_CONFIG"]
    eq(r.rc, 3, str(r))
    contains(r.stdout, "args: -c %s fetch -a work" % pf.config_path)
    contains(r.stdout, "home=%s\n" % pf.home)
    contains(r.stdout, "xdg_config=%s/.config\n" % pf.home)
    contains(r.stdout, "xdg_state=%s/.local/state\n" % pf.home)
    contains(r.stdout, "popfetch_config=unset")
    contains(r.stderr, "stderr is not a tty")
    ok(os.path.exists(os.path.join(pf.home, "was-here")), "wrote into the sandbox HOME")
    r.expect(3)
    raises(AssertionError, r.expect, 0)
    r = pf.run("sleep", timeout=1)
    ok(r.timed_out and r.rc is None and r.duration < 10, "timeout kills", str(r))
    r = pf.run("x", tty=True)
    contains(r.stderr, "stderr is a tty")
    eq(r.rc, 3)
    p = pf.spawn("x", config=False)
    r = pf.collect(p)
    eq(r.rc, 3)
    contains(r.stdout, "args: x\n")


@T.test("maildir reader: new/ + cur/ in delivery order, tmp/ leftovers, Received: strip")
def _(tmp):
    md = os.path.join(tmp, "Maildir")
    for sub in ("new", "cur", "tmp"):
        os.makedirs(os.path.join(md, sub))
    files = {"new/1700000000.M5P9Q2.h,S=3": b"two",
             "cur/1700000000.M5P9Q1.h,S=3:2,S": b"one",
             "new/1700000001.M1P9Q3.h": b"three",
             "new/999.M99P1Q1.h": b"zero",
             "tmp/1700000002.M1P9Q4.h": b"partial"}
    for name, data in files.items():
        with open(os.path.join(md, name), "wb") as f:
            f.write(data)
    m = pftest.read_maildir(md)
    eq(m.messages(), [b"zero", b"one", b"two", b"three"])
    eq(m.tmp, ["1700000002.M1P9Q4.h"])
    eq(len(m), 4)
    ok(m.exists)
    ok(not pftest.read_maildir(os.path.join(tmp, "nope")).exists)
    eq(pftest.strip_received_header(b"Received: from a\n\tby b; date\nFrom: x\n\nb\n"),
       b"From: x\n\nb\n")
    eq(pftest.strip_received_header(b"From: x\n"), b"From: x\n")
    eq(pftest.files_containing(tmp, "partial"), [os.path.join(md, "tmp/1700000002.M1P9Q4.h")])


# ------------------------------------------------------------------ the TAP layer itself

CHILD = r"""
import os, sys
sys.dont_write_bytecode = True
sys.path.insert(0, %(here)r)
import pftest
T = pftest.Suite(__file__, name="child")
@T.test("passes")
def _():
    pftest.eq(1, 1)
@T.test("fails an assertion")
def _():
    pftest.eq("got", "expected", "what")
@T.test("raises")
def _(tmp):
    open(os.path.join(tmp, "marker"), "w").close()
    raise KeyError("boom")
%(extra)s
T.done()
"""


def run_child(tmp, extra=""):
    path = os.path.join(tmp, "child-%d.py" % len(os.listdir(tmp)))
    with open(path, "w") as f:
        f.write(CHILD % {"here": HERE, "extra": extra})
    env = dict(os.environ, TMPDIR=tmp)
    env.pop("PFTEST_KEEP", None)
    return subprocess.run([sys.executable, "-B", path], capture_output=True, text=True,
                          env=env, timeout=120)


@T.test("TAP: failures and exceptions are 'not ok' with diagnostics; exit 1; dir kept")
def _(tmp):
    r = run_child(tmp)
    out = r.stdout
    eq(r.returncode, 1, out + r.stderr)
    like(out, r"(?m)^ok 1 - passes$")
    like(out, r"(?m)^not ok 2 - fails an assertion$")
    like(out, r"(?m)^# .*got      'got'$")
    like(out, r"(?m)^not ok 3 - raises$")
    like(out, r"(?m)^# KeyError: 'boom'$")
    like(out, r"(?m)^1\.\.3$")
    kept = [ln.split(": ", 1)[1] for ln in out.splitlines() if ln.startswith("# kept temp dir:")]
    eq(len(kept), 1, "kept dir printed")
    ok(kept[0].startswith(tmp), "under $TMPDIR", kept[0])
    ok(any(os.path.exists(os.path.join(kept[0], d, "marker")) for d in os.listdir(kept[0])),
       "per-test dir kept")


@T.test("TAP: a passing script exits 0 and removes its temp dir")
def _(tmp):
    path = os.path.join(tmp, "pass.py")
    with open(path, "w") as f:
        f.write("import sys\nsys.path.insert(0, %r)\nimport pftest\n"
                "T = pftest.Suite(__file__)\nT.check(True, 'fine')\nT.done()\n" % HERE)
    r = subprocess.run([sys.executable, "-B", path], capture_output=True, text=True,
                       env=dict(os.environ, TMPDIR=tmp), timeout=60)
    eq(r.returncode, 0, r.stdout + r.stderr)
    like(r.stdout, r"(?m)^ok 1 - fine\n1\.\.1$")
    eq([d for d in os.listdir(tmp) if d.startswith("pftest-")], [], "temp dir removed")


@T.test("TAP: a server that cannot start gives 'not ok' with its log; a crash too")
def _(tmp):
    extra = r"""
@T.test("dovecot with a bad setting")
def _(tmp):
    dc = pftest.Dovecot(tmp, T.certs(), extra_conf="no_such_setting_pftest = 1")
    dc.start()
@T.test("popserver with a missing dialogue file")
def _(tmp):
    pftest.PopServer(tmp, dialogue="/nonexistent/dialogue.txt").start()
raise RuntimeError("script crashed")
"""
    r = run_child(tmp, extra)
    out = r.stdout
    ok(r.returncode != 0, "exit status", r.returncode)
    like(out, r"(?m)^not ok 4 - dovecot with a bad setting$")
    like(out, r"no_such_setting_pftest", "Dovecot's complaint in the diagnostics")
    like(out, r"(?m)^not ok 5 - popserver with a missing dialogue file$")
    like(out, r"(?m)^not ok 6 - test script ended before done\(\)$")
    like(out, r"RuntimeError: script crashed")
    like(out, r"(?m)^1\.\.6$")


@T.test("Suite.later: per-test cleanups run when the test ends, pass or fail, "
        "last first; a failing one is reported and the rest still run")
def _():
    ran, lines = [], []
    # A bare Suite (no temp dir, no exit hooks) whose TAP output is kept.
    sub = pftest.Suite.__new__(pftest.Suite)
    sub.n, sub.failed, sub._test_cleanups = 0, [], []
    sub._out = lines.append

    def failing():
        sub.later(lambda: ran.append("first"))
        sub.later(lambda: 1 / 0)
        sub.later(lambda: ran.append("last"))
        raise AssertionError("the test fails")
    eq(sub.run("a failing test", failing, timeout=0), False, "result")
    eq(ran, ["last", "first"], "cleanups of the failing test")
    contains("\n".join(lines), "# cleanup failed: ZeroDivisionError", "output")
    sub.later(lambda: ran.append("passing"))
    eq(sub.run("a passing test", lambda: None, timeout=0), True, "result")
    eq(ran, ["last", "first", "passing"], "cleanup of the passing test")

T.done()
