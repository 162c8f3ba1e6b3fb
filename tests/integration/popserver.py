#!/usr/bin/env python3
"""Scripted POP3 test server, for faults a real server won't produce.

Standard library only.  Runs as a subprocess (what pftest.PopServer does):

    popserver.py --dir WORKDIR [--port N] [--dialogue FILE]

or in-process: serve(workdir, stop_event=ev) in a thread.

WORKDIR holds (pftest.PopServer writes them):
  config.json     mode and knobs; re-read at every new connection, so a test
                  may change the knobs between two runs of the client
  mailbox.json    mailbox mode: [{"file": "msgs/00000001.eml", "uidl": "..."}];
                  rewritten after a QUIT that committed deletions
  deleted.log     one UIDL per line, each message deleted by a committed QUIT
  transcript.log  every line the client sent, the server's status lines and
                  events (format below)
  port            the listening port, written once listening (atomically)

It listens on 127.0.0.1 and serves one connection at a time, then accepts
the next one (a later run of the client).  It exits when its parent dies.

Transcript lines:  "<conn> <kind>: <text>"  with kind
  C   a line received from the client (without CRLF)
  S   a line the server sent (status lines; message data is summarised)
  #   an event: "accepted", "tls established", "tls handshake failed: ...",
      "MISMATCH ...", "script complete", "closed", ...
Text is escaped: "\\\\" for a backslash, "\\xNN" for bytes outside 0x20-0x7e;
read_transcript() undoes it.  Connection 0 holds server-level events.

Dialogue files (one behaviour per file, STYLE.md §12):
  # comment, blank lines ignored
  @key value      metadata for the test (e.g. "@exit 76"); ignored here,
                  except "@tls implicit" which wraps the connection in TLS
  S: text         send "text\\r\\n" ("S:" alone sends an empty line)
  C: glob         read one client line; it must match the glob
                  (fnmatch, case-sensitive: "USER *", "PASS *", "*")
  C~ regex        read one client line; it must match (re.fullmatch)
  SEND_RAW esc    send Python-escaped bytes as they are, e.g.
                  SEND_RAW +OK\\r\\n1 abc\\r\\n  (no CRLF added)
  BIG_LINE n [prefix]   send one line of n bytes (prefix default "+OK ")
                  then CRLF
  STARTTLS        do the server side of the TLS handshake now (after
                  "S: +OK Begin TLS" in answer to "C: STLS")
  SLEEP secs      pause
  STALL [secs]    send nothing more; keep reading (and recording) until the
                  client closes or secs (default stall_max, 120) pass
  CLOSE           close the connection now
  WAIT_EOF        read and record until the client closes
  ACCEPT          starts the script of the next connection; without any
                  ACCEPT the whole script serves every connection; with k
                  sections connection i uses section min(i, k)
  A mismatch is recorded ("# MISMATCH ..."), answered with
  "-ERR popserver: unexpected command" and the connection is closed.  After
  the last step the server records "# script complete" and closes.

Mailbox mode is a correct POP3 server (RFC 1939, 2449, 2595, 5034) over the
messages in mailbox.json, with knobs (see MAILBOX_DEFAULTS): capabilities,
SASL PLAIN / LOGIN / XOAUTH2 / OAUTHBEARER (RFC 7628) / SCRAM-SHA-256 (initial-response and two-step
forms), APOP, STLS, and faults: retr_cut_at, retr_stall_at,
list_size_override, in_use, stall_after, latency_ms, status_line_bytes,
override, endless_retr, endless_line, fault_connections, no_stuff,
hide_uidls, retr_refuse, trickle_on, retr_trickle_at (trickle_bytes every
trickle_interval seconds).
Deletions are committed only by QUIT.
"""

import argparse
import base64
import codecs
import fnmatch
import hashlib
import hmac
import json
import os
import re
import secrets
import socket
import ssl
import sys
import threading
import time
import traceback

CRLF = b"\r\n"
MAX_CLIENT_LINE = 1 << 20

MAILBOX_DEFAULTS = {
    # authentication
    "users": {"alice": "secret"},     # name -> password
    "oauth_tokens": {},               # name -> XOAUTH2/OAUTHBEARER bearer token
    "sasl": ["PLAIN"],                # offered: PLAIN LOGIN XOAUTH2 OAUTHBEARER SCRAM-SHA-256
    "sasl_ir": True,                  # accept AUTH MECH <initial-response>
    "sasl_reject": [],                # mechanisms that always fail at the end
    "scram_iterations": 4096,
    "scram_bad_signature": False,     # send a wrong SCRAM server signature
    "user_cmd": True,                 # USER/PASS available (and "USER" in CAPA)
    "apop": False,                    # APOP timestamp in greeting, APOP accepted
    # capabilities
    "capa": True,                     # False: CAPA answers -ERR
    "uidl": True,
    "top": True,
    "pipelining": True,
    "resp_codes": True,
    "stls": None,                     # None: offered iff tls == "stls"
    "greeting": "popserver ready",
    # faults ({msgno: ...} keys may be strings in JSON)
    "fault_connections": None,        # list of connection numbers, None: all
    "list_size_override": {},         # msgno -> size shown by LIST
    "retr_cut_at": {},                # msgno -> offset|"status"|"data"|"before_dot"
    "retr_stall_at": {},              # same offsets; stall instead of close
    "in_use": False,                  # -ERR [IN-USE] after successful auth
    "stall_after": 0,                 # go silent after N client lines (0: never)
    "latency_ms": 0,                  # each reply leaves >= latency after its command arrived
    "status_line_bytes": 0,           # send a status line this long ...
    "status_line_on": "greeting",     # ... for the greeting or this command keyword
    "override": {},                   # "CMD" or "CMD ARG" -> list of lines to send
                                      # instead ("@CLOSE", "@STALL", "@ENDLESS_DATA",
                                      # "@ENDLESS_LINE" are directives)
    "endless_retr": [],               # msgnos whose RETR never ends (lines forever)
    "endless_line": [],               # msgnos whose RETR is one never-ending line
    "no_stuff": [],                   # msgnos whose RETR data is sent without
                                      # dot-stuffing (a "." body line ends it early)
    "hide_uidls": [],                 # UIDLs of messages this session does not have
                                      # (not listed, not numbered; kept on disk)
    "retr_refuse": {},                # UIDL -> the line RETR of it gets instead
                                      # (e.g. "-ERR broken message")
    "trickle_on": None,               # "greeting" or a command keyword: that
                                      # status line goes out trickled (below)
    "retr_trickle_at": {},            # msgno -> "status" | "data": that part of
                                      # RETR's reply goes out trickled
    "trickle_bytes": 1,               # trickled: this many bytes at a time,
    "trickle_interval": 1.5,          # each this many seconds after the last,
                                      # until the client goes or stall_max passes
    # timing
    "stall_max": 120,                 # seconds a stall lasts at most
    "read_timeout": 120,              # seconds to wait for a client line
}

COMMON_DEFAULTS = {
    "mode": "mailbox",                # or "dialogue"
    "tls": None,                      # None | "implicit" | "stls"
    "cert": None,
    "key": None,
    "tls_min_version": None,          # e.g. "TLSv1_2" (ssl.TLSVersion names)
    "tls_max_version": None,
    "dialogue": None,                 # path of the dialogue file
    "read_timeout": 120,
    "stall_max": 120,
}


# ---------------------------------------------------------------- escaping

def escape(data):
    """Bytes -> printable ASCII; reversible with unescape()."""
    out = []
    for b in data:
        if b == 0x5C:
            out.append("\\\\")
        elif 0x20 <= b < 0x7F:
            out.append(chr(b))
        else:
            out.append("\\x%02x" % b)
    return "".join(out)


def unescape(text):
    """Inverse of escape(); also reads the Python escapes SEND_RAW accepts."""
    return codecs.escape_decode(text.encode("latin-1"))[0]


class Event:
    """One transcript line: conn (int), kind ('C', 'S' or '#'), data (bytes)."""

    __slots__ = ("conn", "kind", "data")

    def __init__(self, conn, kind, data):
        self.conn, self.kind, self.data = conn, kind, data

    @property
    def text(self):
        return self.data.decode("utf-8", "replace")

    def __repr__(self):
        return "Event(%d, %r, %r)" % (self.conn, self.kind, self.data)


_LINE_RE = re.compile(r"^(\d+) ([CS#]): ?(.*)$")


def read_transcript(path):
    """Parse a transcript file into a list of Event."""
    events = []
    try:
        with open(path, "r", encoding="ascii", errors="replace") as f:
            for line in f:
                m = _LINE_RE.match(line.rstrip("\n"))
                if m:
                    events.append(Event(int(m.group(1)), m.group(2),
                                        unescape(m.group(3))))
    except FileNotFoundError:
        pass
    return events


class Transcript:
    """Append-only, flushed after every line so tests can read it live."""

    def __init__(self, path):
        self.lock = threading.Lock()
        self.f = open(path, "a", encoding="ascii")

    def write(self, conn, kind, data):
        if isinstance(data, str):
            data = data.encode("utf-8", "replace")
        with self.lock:
            self.f.write("%d %s: %s\n" % (conn, kind, escape(data)))
            self.f.flush()

    def close(self):
        self.f.close()


# ---------------------------------------------------------------- SCRAM

def _h(data):
    return hashlib.sha256(data).digest()


def _hmac(key, data):
    return hmac.new(key, data, hashlib.sha256).digest()


def _xor(a, b):
    return bytes(x ^ y for x, y in zip(a, b))


def _scram_attrs(msg):
    out = {}
    for part in msg.split(","):
        if len(part) >= 2 and part[1] == "=":
            out[part[0]] = part[2:]
    return out


def _saslname_decode(name):
    return name.replace("=2C", ",").replace("=3D", "=")


class ScramClient:
    """Client side of SCRAM-SHA-256 (RFC 5802/7677), for tests:
    first() -> client-first message; final(server_first) -> client-final;
    verify(server_final) -> True if the server's signature is right."""

    def __init__(self, user, password, nonce=None):
        self.user = user
        self.password = password.encode("utf-8") if isinstance(password, str) else password
        self.nonce = nonce or base64.b64encode(secrets.token_bytes(18)).decode()
        self.bare = "n=%s,r=%s" % (user.replace("=", "=3D").replace(",", "=2C"), self.nonce)
        self.server_signature = None

    def first(self):
        return "n,," + self.bare

    def final(self, server_first):
        a = _scram_attrs(server_first)
        if not a.get("r", "").startswith(self.nonce):
            raise ValueError("SCRAM: server nonce does not extend ours")
        salted = hashlib.pbkdf2_hmac("sha256", self.password,
                                     base64.b64decode(a["s"]), int(a["i"]))
        client_key = _hmac(salted, b"Client Key")
        without_proof = "c=biws,r=" + a["r"]
        auth_msg = ("%s,%s,%s" % (self.bare, server_first, without_proof)).encode()
        proof = _xor(client_key, _hmac(_h(client_key), auth_msg))
        self.server_signature = _hmac(_hmac(salted, b"Server Key"), auth_msg)
        return without_proof + ",p=" + base64.b64encode(proof).decode()

    def verify(self, server_final):
        a = _scram_attrs(server_final)
        return ("v" in a and self.server_signature is not None and
                base64.b64decode(a["v"]) == self.server_signature)


# ---------------------------------------------------------------- connection

class ClientGone(Exception):
    """The client closed the connection (or it broke)."""


class Conn:
    """A client connection (plain or TLS) with a line reader that remembers
    when each line arrived (for latency emulation)."""

    def __init__(self, sock, tr, num):
        self.sock = sock
        self.tr = tr
        self.num = num
        self.buf = b""
        self.marks = []          # [(end offset in buf, arrival time)]
        self.tls = False
        self.closed = False
        self.eof = False

    def event(self, text):
        self.tr.write(self.num, "#", text)

    def _recv(self, timeout):
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            raise
        except (ssl.SSLError, OSError) as e:
            self.event("recv failed: %s" % (e,))
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        self.marks.append((len(self.buf), time.monotonic()))
        return True

    def readline(self, timeout, record=True):
        """Next client line without its CRLF, and its arrival time; None at
        EOF; raises socket.timeout."""
        deadline = time.monotonic() + timeout
        while True:
            i = self.buf.find(b"\n")
            if i >= 0:
                line, self.buf = self.buf[:i + 1], self.buf[i + 1:]
                t = time.monotonic()
                for end, at in self.marks:
                    if end >= i + 1:
                        t = at
                        break
                self.marks = [(end - i - 1, at) for end, at in self.marks if end > i + 1]
                line = line[:-1]
                if line.endswith(b"\r"):
                    line = line[:-1]
                if record:
                    self.tr.write(self.num, "C", line)
                return line, t
            if len(self.buf) > MAX_CLIENT_LINE:
                self.event("client line longer than %d bytes" % MAX_CLIENT_LINE)
                raise ClientGone()
            if self.eof:
                if self.buf:
                    line, self.buf = self.buf, b""
                    if record:
                        self.tr.write(self.num, "C", line)
                    self.event("partial line at EOF")
                    return line, time.monotonic()
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout("timed out waiting for a client line")
            self._recv(left)

    def send(self, data, record=None):
        """Send bytes; record them as S lines (record=True), as a byte count
        (record="data") or not at all (record=None -> S lines if short)."""
        try:
            self.sock.sendall(data)
        except (ssl.SSLError, OSError) as e:
            self.event("send failed: %s" % (e,))
            raise ClientGone()
        if record == "data":
            self.event("sent %d bytes of data" % len(data))
        elif record is not False:
            for ln in data.split(CRLF):
                if ln:
                    self.tr.write(self.num, "S", ln[:200] + (b"..." if len(ln) > 200 else b""))

    def send_line(self, text):
        if isinstance(text, str):
            text = text.encode("utf-8")
        self.send(text + CRLF)

    def starttls(self, ctx, timeout=30):
        if self.buf:
            self.event("client sent %d bytes after STLS before the handshake (discarded)"
                       % len(self.buf))
            self.buf, self.marks = b"", []
        return self._handshake(ctx, timeout)

    def _handshake(self, ctx, timeout):
        s = None
        try:
            self.sock.settimeout(timeout)
            s = ctx.wrap_socket(self.sock, server_side=True,
                                do_handshake_on_connect=False)
            s.do_handshake()
        except (ssl.SSLError, OSError) as e:
            self.event("tls handshake failed: %s" % (e,))
            # wrap_socket() took over the descriptor: close it here.
            (s or self.sock).close()
            self.closed = True
            self.event("closed")
            return False
        self.sock = s
        self.tls = True
        self.event("tls established %s %s" % (s.version(), s.cipher()[0]))
        return True

    def stall(self, seconds):
        """Send nothing; record whatever the client sends until it closes."""
        self.event("stalling for up to %g s" % seconds)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                if self.readline(max(0.05, deadline - time.monotonic())) is None:
                    self.event("client closed during stall")
                    return
            except (socket.timeout, TimeoutError):
                break
            except ClientGone:
                return
        self.event("stall ended")

    def drain(self, seconds):
        """Record client lines until EOF or `seconds` pass."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                if self.readline(max(0.05, deadline - time.monotonic())) is None:
                    return
            except (socket.timeout, TimeoutError, ClientGone):
                return

    def close(self, drain=2.0):
        """Half-close (FIN, no RST), record what the client still sends,
        then close."""
        if self.closed:
            return
        self.closed = True
        try:
            # The plain socket's shutdown, also under TLS: no close_notify
            # (a cut is a cut), and SSLSocket.shutdown() would drop the TLS
            # state we still need to read what the client sends.
            socket.socket.shutdown(self.sock, socket.SHUT_WR)
        except OSError:
            pass
        if drain and not self.eof:
            self.drain(drain)
        try:
            self.sock.close()
        except OSError:
            pass
        self.event("closed")


def make_tls_context(cfg):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if not cfg.get("cert") or not cfg.get("key"):
        raise ValueError("TLS requested but no cert/key configured")
    ctx.load_cert_chain(cfg["cert"], cfg["key"])
    lo, hi = cfg.get("tls_min_version"), cfg.get("tls_max_version")
    if lo or hi:
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        if lo:
            ctx.minimum_version = getattr(ssl.TLSVersion, lo)
        if hi:
            ctx.maximum_version = getattr(ssl.TLSVersion, hi)
    return ctx


# ---------------------------------------------------------------- dialogue

class Step:
    __slots__ = ("op", "arg", "lineno")

    def __init__(self, op, arg, lineno):
        self.op, self.arg, self.lineno = op, arg, lineno

    def __repr__(self):
        return "Step(%r, %r, line %d)" % (self.op, self.arg, self.lineno)


class Dialogue:
    """A parsed dialogue: sections (list of list of Step) and meta."""

    def __init__(self, sections, meta):
        self.sections = sections
        self.meta = meta              # [(key, value)] in file order

    def meta_get(self, key, default=None):
        for k, v in self.meta:
            if k == key:
                return v
        return default

    def section_for(self, conn_num):
        return self.sections[min(conn_num, len(self.sections)) - 1]


def parse_dialogue(text):
    """Parse dialogue text; raises ValueError naming the line on errors."""
    sections = [[]]
    meta = []
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip("\r")
        s = line.strip()
        if not s or s.startswith("#"):
            continue
        if s.startswith("@"):
            k, _, v = s[1:].partition(" ")
            meta.append((k, v.strip()))
            continue
        if line.startswith("S:"):
            sections[-1].append(Step("S", line[3:] if line.startswith("S: ") else line[2:], n))
            continue
        if line.startswith("C:"):
            sections[-1].append(Step("C", line[3:] if line.startswith("C: ") else line[2:], n))
            continue
        if line.startswith("C~"):
            pat = line[3:] if line.startswith("C~ ") else line[2:]
            try:
                re.compile(pat)
            except re.error as e:
                raise ValueError("line %d: bad regex: %s" % (n, e))
            sections[-1].append(Step("C~", pat, n))
            continue
        word, _, rest = s.partition(" ")
        rest = rest.strip()
        try:
            if word == "SEND_RAW":
                sections[-1].append(Step("SEND_RAW", unescape(rest), n))
            elif word == "BIG_LINE":
                num, _, prefix = rest.partition(" ")
                sections[-1].append(Step("BIG_LINE", (int(num), prefix or "+OK "), n))
            elif word in ("SLEEP",):
                sections[-1].append(Step(word, float(rest), n))
            elif word == "STALL":
                sections[-1].append(Step(word, float(rest) if rest else None, n))
            elif word in ("CLOSE", "STARTTLS", "WAIT_EOF"):
                sections[-1].append(Step(word, None, n))
            elif word == "ACCEPT":
                if sections[-1]:
                    sections.append([])
            else:
                raise ValueError("unknown directive %r" % word)
        except ValueError as e:
            raise ValueError("line %d: %s" % (n, e))
    return Dialogue(sections, meta)


def run_dialogue(conn, dialogue, cfg):
    steps = dialogue.section_for(conn.num)
    ctx = None
    for st in steps:
        if st.op == "S":
            conn.send_line(st.arg)
        elif st.op in ("C", "C~"):
            try:
                got = conn.readline(cfg["read_timeout"])
            except (socket.timeout, TimeoutError):
                conn.event("timeout waiting for client line matching %r (script line %d)"
                           % (st.arg, st.lineno))
                return
            if got is None:
                conn.event("EOF while expecting %r (script line %d)" % (st.arg, st.lineno))
                return
            text = got[0].decode("latin-1")
            ok = (fnmatch.fnmatchcase(text, st.arg) if st.op == "C"
                  else re.fullmatch(st.arg, text) is not None)
            if not ok:
                conn.event("MISMATCH script line %d: expected %r got %r"
                           % (st.lineno, st.arg, text))
                conn.send_line("-ERR popserver: unexpected command")
                return
        elif st.op == "SEND_RAW":
            conn.send(st.arg)
        elif st.op == "BIG_LINE":
            n, prefix = st.arg
            p = prefix.encode()
            conn.send(p + b"x" * max(0, n - len(p)) + CRLF, record=False)
            conn.event("sent BIG_LINE of %d bytes" % max(n, len(p)))
        elif st.op == "STARTTLS":
            if ctx is None:
                ctx = make_tls_context(cfg)
            if not conn.starttls(ctx):
                return
        elif st.op == "SLEEP":
            time.sleep(st.arg)
        elif st.op == "STALL":
            conn.stall(st.arg if st.arg is not None else cfg["stall_max"])
            return
        elif st.op == "CLOSE":
            conn.event("script CLOSE (line %d)" % st.lineno)
            return
        elif st.op == "WAIT_EOF":
            conn.drain(cfg["read_timeout"])
            return
    conn.event("script complete")


# ---------------------------------------------------------------- mailbox

def _crlf(msg):
    msg = msg.replace(b"\r\n", b"\n")
    if not msg.endswith(b"\n"):
        msg += b"\n"
    return msg.replace(b"\n", b"\r\n")


def _stuff(crlf_msg):
    lines = crlf_msg.split(CRLF)[:-1]
    return b"".join((b"." + ln if ln.startswith(b".") else ln) + CRLF for ln in lines)


class Message:
    def __init__(self, uidl, data):
        self.uidl = uidl
        self.data = data            # as stored (LF)
        self.crlf = _crlf(data)
        self.size = len(self.crlf)
        self.deleted = False


def load_mailbox(workdir):
    path = os.path.join(workdir, "mailbox.json")
    try:
        with open(path) as f:
            entries = json.load(f)
    except FileNotFoundError:
        entries = []
    msgs = []
    for e in entries:
        with open(os.path.join(workdir, e["file"]), "rb") as f:
            msgs.append(Message(e["uidl"], f.read()))
    return entries, msgs


def save_mailbox(workdir, entries):
    path = os.path.join(workdir, "mailbox.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(entries, f, indent=1)
    os.replace(tmp, path)


def _intkeys(d):
    return {int(k): v for k, v in (d or {}).items()}


class MailboxSession:
    """One POP3 session over the mailbox (RFC 1939 with CAPA, STLS, AUTH)."""

    def __init__(self, conn, cfg, workdir):
        self.conn = conn
        self.cfg = cfg
        self.workdir = workdir
        self.faulty = (cfg["fault_connections"] is None or
                       conn.num in cfg["fault_connections"])
        self.entries, self.msgs = load_mailbox(workdir)
        self.all_entries = list(self.entries)
        hide = set(cfg["hide_uidls"] or ()) if self.faulty else set()
        if hide:
            pairs = [(e, m) for e, m in zip(self.entries, self.msgs)
                     if m.uidl not in hide]
            self.entries = [e for e, _ in pairs]
            self.msgs = [m for _, m in pairs]
            conn.event("hiding %d message(s)" % (len(self.all_entries) - len(pairs)))
        self.state = "auth"
        self.user = None
        self.ncmds = 0
        self.arrival = time.monotonic()
        self.stls = cfg["stls"] if cfg["stls"] is not None else cfg["tls"] == "stls"
        self.timestamp = "<%d.%d@popserver>" % (os.getpid(), int(time.time() * 1000))
        self.ctx = None
        self.done = False

    # -- output helpers
    def wait_latency(self):
        lat = self.cfg["latency_ms"] / 1000.0
        if lat > 0:
            d = self.arrival + lat - time.monotonic()
            if d > 0:
                time.sleep(d)

    def reply(self, text, cmd_keyword=None):
        """Send a status line (or the oversized one this command is meant
        to get, or trickle it)."""
        self.wait_latency()
        n = self.cfg["status_line_bytes"]
        on = self.cfg["status_line_on"].upper()
        if n and self.faulty and on == (cmd_keyword or "GREETING"):
            body = b"+OK " + b"x" * max(0, n - 4)
            self.conn.send(body + CRLF, record=False)
            self.conn.event("sent a status line of %d bytes" % len(body))
            return
        tr = self.cfg["trickle_on"]
        if tr and self.faulty and tr.upper() == (cmd_keyword or "GREETING"):
            if isinstance(text, str):
                text = text.encode("utf-8")
            if not self.trickle(text + CRLF, "%s status line" % tr):
                self.done = True
            return
        self.conn.send_line(text)

    def reply_multi(self, status, lines, cmd):
        self.reply(status, cmd)
        if self.done:
            return
        data = b"".join((ln.encode() if isinstance(ln, str) else ln) + CRLF for ln in lines)
        self.conn.send(data + b"." + CRLF, record=(len(lines) <= 20) or "data")

    def trickle(self, data, what):
        """Send data trickle_bytes at a time, trickle_interval seconds
        apart (the first after one interval too); stop when the client
        closes or stall_max passes.  True if all of it went out."""
        c = self.cfg
        step, gap = max(1, int(c["trickle_bytes"])), float(c["trickle_interval"])
        deadline = time.monotonic() + c["stall_max"]
        self.conn.event("trickling %s: %d bytes, %d every %g s" % (what, len(data), step, gap))
        for i in range(0, len(data), step):
            if time.monotonic() + gap > deadline:
                self.conn.event("trickle stopped at stall_max after %d bytes" % i)
                return False
            if not self._pause(gap):
                self.conn.event("client closed during trickle after %d bytes" % i)
                return False
            try:
                self.conn.sock.sendall(data[i:i + step])
            except (ssl.SSLError, OSError) as e:
                self.conn.event("trickle stopped after %d bytes: %s" % (i, e))
                return False
        self.conn.event("trickled all %d bytes" % len(data))
        return True

    def _pause(self, seconds):
        """Wait `seconds`, recording what the client sends meanwhile;
        False if it closed the connection."""
        end = time.monotonic() + seconds
        while not self.conn.eof:
            left = end - time.monotonic()
            if left <= 0:
                return True
            try:
                self.conn._recv(left)
            except (socket.timeout, TimeoutError):
                return True
        return False

    # -- message numbers
    def msg(self, arg):
        try:
            n = int(arg)
        except (TypeError, ValueError):
            return None, None
        if n < 1 or n > len(self.msgs) or self.msgs[n - 1].deleted:
            return None, None
        return n, self.msgs[n - 1]

    def capa_lines(self):
        c = self.cfg
        out = ["CAPA"]
        if c["top"]:
            out.append("TOP")
        if c["uidl"]:
            out.append("UIDL")
        if c["resp_codes"]:
            out += ["RESP-CODES", "AUTH-RESP-CODE"]
        if c["pipelining"]:
            out.append("PIPELINING")
        if self.stls and not self.conn.tls and self.state == "auth":
            out.append("STLS")
        if c["user_cmd"] and self.state == "auth":
            out.append("USER")
        if c["sasl"] and self.state == "auth":
            out.append("SASL " + " ".join(c["sasl"]))
        return out

    # -- the session
    def run(self):
        c = self.cfg
        greet = "+OK " + c["greeting"]
        if c["apop"]:
            greet += " " + self.timestamp
        self.reply(greet, None)
        while not self.done and not self.conn.closed:
            try:
                got = self.conn.readline(c["read_timeout"])
            except (socket.timeout, TimeoutError):
                self.conn.event("timeout waiting for a command")
                return
            if got is None:
                self.conn.event("client closed the connection")
                return
            line, self.arrival = got
            self.ncmds += 1
            if c["stall_after"] and self.faulty and self.ncmds > c["stall_after"]:
                self.conn.stall(c["stall_max"])
                return
            self.command(line.decode("latin-1"))

    def override_for(self, text):
        ov = self.cfg["override"]
        if not ov or not self.faulty:
            return None
        key = text.strip().upper()
        if key in ov:
            return ov[key]
        kw = key.split(" ", 1)[0]
        return ov.get(kw)

    def send_endless(self, one_line):
        self.conn.event("sending endless %s" % ("line" if one_line else "data"))
        deadline = time.monotonic() + self.cfg["stall_max"]
        chunk = (b"A" * 8192) if one_line else (b"x" * 70 + CRLF) * 100
        sent = 0
        try:
            while time.monotonic() < deadline:
                self.conn.sock.sendall(chunk)
                sent += len(chunk)
        except (ssl.SSLError, OSError) as e:
            self.conn.event("endless send stopped after %d bytes: %s" % (sent, e))
            return
        self.conn.event("endless send timed out after %d bytes" % sent)

    def do_override(self, lines, cmd):
        self.wait_latency()
        for ln in lines:
            if ln == "@CLOSE":
                self.conn.event("override: close")
                self.done = True
                return
            if ln == "@STALL":
                self.conn.stall(self.cfg["stall_max"])
                self.done = True
                return
            if ln in ("@ENDLESS_DATA", "@ENDLESS_LINE"):
                self.send_endless(ln == "@ENDLESS_LINE")
                self.done = True
                return
            self.conn.send_line(ln)
        if cmd == "QUIT":
            self.conn.event("override of QUIT: deletions not committed")
            self.done = True

    def command(self, text):
        parts = text.split(" ")
        cmd = parts[0].upper()
        args = parts[1:]
        ov = self.override_for(text)
        if ov is not None:
            self.do_override(ov, cmd)
            return
        handler = getattr(self, "cmd_" + cmd, None) if cmd.isalpha() else None
        if handler is None:
            self.reply("-ERR Unknown command: %s" % cmd[:40], cmd)
            return
        if self.state == "auth" and cmd not in ("CAPA", "STLS", "USER", "PASS", "APOP",
                                                 "AUTH", "QUIT"):
            self.reply("-ERR Unknown command in AUTHORIZATION state", cmd)
            return
        if self.state == "trans" and cmd in ("STLS", "USER", "PASS", "APOP", "AUTH"):
            self.reply("-ERR Already logged in", cmd)
            return
        handler(args)

    # -- AUTHORIZATION state
    def cmd_CAPA(self, args):
        if not self.cfg["capa"]:
            self.reply("-ERR Unknown command: CAPA", "CAPA")
            return
        self.reply_multi("+OK Capability list follows", self.capa_lines()[1:], "CAPA")

    def cmd_STLS(self, args):
        if not self.stls or self.conn.tls:
            self.reply("-ERR STLS not available", "STLS")
            return
        self.reply("+OK Begin TLS negotiation now.", "STLS")
        if self.ctx is None:
            self.ctx = make_tls_context(self.cfg)
        if not self.conn.starttls(self.ctx):
            self.done = True

    def cmd_USER(self, args):
        if not self.cfg["user_cmd"]:
            self.reply("-ERR Unknown command: USER", "USER")
            return
        self.user = " ".join(args)
        self.reply("+OK", "USER")

    def cmd_PASS(self, args):
        if not self.cfg["user_cmd"] or self.user is None:
            self.reply("-ERR No USER given", "PASS")
            return
        pw = " ".join(args)
        self.login(self.cfg["users"].get(self.user) == pw and self.user in self.cfg["users"],
                   "PASS")

    def cmd_APOP(self, args):
        if not self.cfg["apop"] or len(args) != 2:
            self.reply("-ERR APOP not available", "APOP")
            return
        user, digest = args
        pw = self.cfg["users"].get(user)
        ok = pw is not None and hashlib.md5(
            (self.timestamp + pw).encode("utf-8")).hexdigest() == digest.lower()
        self.user = user
        self.login(ok, "APOP")

    def login(self, ok, cmd, mech=None):
        if ok and mech and mech in self.cfg["sasl_reject"]:
            ok = False
        if not ok:
            self.conn.event("authentication failed")
            self.reply("-ERR [AUTH] Authentication failed.", cmd)
            return
        if self.cfg["in_use"] and self.faulty:
            self.conn.event("authenticated; answering IN-USE")
            self.reply("-ERR [IN-USE] Mailbox is locked by another POP3 session.", cmd)
            return
        self.state = "trans"
        self.conn.event("authenticated as %s" % self.user)
        self.reply("+OK Logged in.", cmd)

    def challenge(self, data):
        """Send '+ base64(data)'; return the decoded answer, or None after a
        cancel or EOF."""
        self.wait_latency()
        self.conn.send_line(b"+ " + base64.b64encode(data))
        try:
            got = self.conn.readline(self.cfg["read_timeout"])
        except (socket.timeout, TimeoutError):
            self.conn.event("timeout in SASL exchange")
            self.done = True
            return None
        if got is None:
            self.done = True
            return None
        line, self.arrival = got
        if line.strip() == b"*":
            self.reply("-ERR Authentication cancelled.", "AUTH")
            return None
        try:
            return base64.b64decode(line.strip(), validate=True)
        except ValueError:
            self.reply("-ERR Invalid base64 data.", "AUTH")
            return None

    def cmd_AUTH(self, args):
        c = self.cfg
        if not args:
            self.reply_multi("+OK", c["sasl"], "AUTH")
            return
        mech = args[0].upper()
        if mech not in [m.upper() for m in c["sasl"]]:
            self.reply("-ERR Unsupported authentication mechanism.", "AUTH")
            return
        ir = None
        if len(args) > 1:
            if not c["sasl_ir"]:
                self.conn.event("initial response refused (sasl_ir = false)")
                self.reply("-ERR Initial response not supported.", "AUTH")
                return
            try:
                ir = b"" if args[1] == "=" else base64.b64decode(args[1], validate=True)
            except ValueError:
                self.reply("-ERR Invalid base64 data.", "AUTH")
                return
        getattr(self, "sasl_" + mech.replace("-", "_"))(ir)

    def _first(self, ir, prompt=b""):
        return ir if ir is not None else self.challenge(prompt)

    def sasl_PLAIN(self, ir):
        data = self._first(ir)
        if data is None:
            return
        parts = data.split(b"\0")
        if len(parts) != 3:
            self.reply("-ERR [AUTH] Invalid PLAIN response.", "AUTH")
            return
        user, pw = parts[1].decode("utf-8", "replace"), parts[2].decode("utf-8", "replace")
        self.user = user
        self.login(c_ok(self.cfg, user, pw), "AUTH", "PLAIN")

    def sasl_LOGIN(self, ir):
        user = self._first(ir, b"Username:")
        if user is None:
            return
        pw = self.challenge(b"Password:")
        if pw is None:
            return
        self.user = user.decode("utf-8", "replace")
        self.login(c_ok(self.cfg, self.user, pw.decode("utf-8", "replace")), "AUTH", "LOGIN")

    def sasl_XOAUTH2(self, ir):
        data = self._first(ir)
        if data is None:
            return
        fields = {}
        for part in data.split(b"\x01"):
            k, _, v = part.partition(b"=")
            if k:
                fields[k.decode("latin-1")] = v.decode("utf-8", "replace")
        user = fields.get("user", "")
        token = fields.get("auth", "")
        self.user = user
        good = (token.startswith("Bearer ") and
                self.cfg["oauth_tokens"].get(user) == token[7:] and
                "XOAUTH2" not in self.cfg["sasl_reject"])
        if good:
            self.login(True, "AUTH", "XOAUTH2")
            return
        err = json.dumps({"status": "401", "schemes": "bearer",
                          "scope": "https://mail.example/"}).encode()
        answer = self.challenge(err)
        if answer is None and self.done:
            return
        if answer not in (None, b""):
            self.conn.event("XOAUTH2: client answered the error challenge with data")
        if answer is not None:
            self.reply("-ERR [AUTH] Authentication failed.", "AUTH")

    def sasl_OAUTHBEARER(self, ir):
        # RFC 7628: gs2-header "n,a=USER," ^A kvpairs (host=, port=,
        # auth=Bearer TOKEN) each ended by ^A, then ^A.
        data = self._first(ir)
        if data is None:
            return
        head, sep, rest = data.partition(b",\x01")
        gs2 = head.split(b",")
        fields = {}
        ok_form = (bool(sep) and len(gs2) == 2 and gs2[0] in (b"n", b"y") and
                   gs2[1].startswith(b"a=") and rest.endswith(b"\x01\x01"))
        for part in rest[:-2].split(b"\x01") if ok_form else []:
            k, eq, v = part.partition(b"=")
            if not eq:
                ok_form = False
            fields[k.decode("latin-1")] = v.decode("utf-8", "replace")
        if not ok_form:
            self.conn.event("OAUTHBEARER: malformed client response")
            self.reply("-ERR [AUTH] Invalid OAUTHBEARER response.", "AUTH")
            return
        user = _saslname_decode(gs2[1][2:].decode("utf-8", "replace"))
        token = fields.get("auth", "")
        self.user = user
        self.conn.event("OAUTHBEARER: host=%s port=%s" % (fields.get("host"),
                                                          fields.get("port")))
        good = (token.startswith("Bearer ") and
                self.cfg["oauth_tokens"].get(user) == token[7:] and
                "OAUTHBEARER" not in self.cfg["sasl_reject"])
        if good:
            self.login(True, "AUTH", "OAUTHBEARER")
            return
        err = json.dumps({"status": "invalid_token",
                          "scope": "https://mail.example/"}).encode()
        answer = self.challenge(err)
        if answer is None and self.done:
            return
        if answer not in (None, b"\x01"):
            self.conn.event("OAUTHBEARER: client did not answer the error challenge with ^A")
        if answer is not None:
            self.reply("-ERR [AUTH] Authentication failed.", "AUTH")

    def sasl_SCRAM_SHA_256(self, ir):
        c = self.cfg
        first = self._first(ir)
        if first is None:
            return
        first = first.decode("utf-8", "replace")
        gs2, _, rest = first.partition(",")
        authzid, _, bare = rest.partition(",")
        if gs2 not in ("n", "y") or not bare:
            self.reply("-ERR [AUTH] Invalid SCRAM message.", "AUTH")
            return
        a = _scram_attrs(bare)
        user = _saslname_decode(a.get("n", ""))
        cnonce = a.get("r", "")
        self.user = user
        pw = c["users"].get(user)
        salt = hashlib.sha256(b"pftest-salt:" + user.encode()).digest()[:16]
        iters = int(c["scram_iterations"])
        # An unknown user still gets a full exchange (no user enumeration).
        salted = hashlib.pbkdf2_hmac("sha256", (pw or secrets.token_hex(8)).encode(),
                                     salt, iters)
        nonce = cnonce + base64.b64encode(secrets.token_bytes(18)).decode()
        server_first = "r=%s,s=%s,i=%d" % (nonce, base64.b64encode(salt).decode(), iters)
        final = self.challenge(server_first.encode())
        if final is None:
            return
        final = final.decode("utf-8", "replace")
        without_proof, _, proof_part = final.rpartition(",p=")
        fa = _scram_attrs(without_proof)
        auth_msg = ("%s,%s,%s" % (bare, server_first, without_proof)).encode()
        client_key = _hmac(salted, b"Client Key")
        stored = _h(client_key)
        try:
            proof = base64.b64decode(proof_part, validate=True)
        except ValueError:
            proof = b""
        ok = (pw is not None and fa.get("r") == nonce and len(proof) == 32 and
              _h(_xor(proof, _hmac(stored, auth_msg))) == stored)
        if not ok or "SCRAM-SHA-256" in c["sasl_reject"]:
            self.login(False, "AUTH", "SCRAM-SHA-256")
            return
        sig = _hmac(_hmac(salted, b"Server Key"), auth_msg)
        if c["scram_bad_signature"]:
            sig = bytes(32)
        ans = self.challenge(b"v=" + base64.b64encode(sig))
        if ans is None:
            return
        self.login(True, "AUTH", "SCRAM-SHA-256")

    # -- TRANSACTION state
    def live(self):
        return [(i, m) for i, m in enumerate(self.msgs, 1) if not m.deleted]

    def cmd_STAT(self, args):
        lv = self.live()
        self.reply("+OK %d %d" % (len(lv), sum(m.size for _, m in lv)), "STAT")

    def list_size(self, n, m):
        ov = _intkeys(self.cfg["list_size_override"]) if self.faulty else {}
        return ov.get(n, m.size)

    def cmd_LIST(self, args):
        if args:
            n, m = self.msg(args[0])
            if m is None:
                self.reply("-ERR There's no message %s." % args[0][:20], "LIST")
                return
            self.reply("+OK %d %d" % (n, self.list_size(n, m)), "LIST")
            return
        lv = self.live()
        self.reply_multi("+OK %d messages:" % len(lv),
                         ["%d %d" % (n, self.list_size(n, m)) for n, m in lv], "LIST")

    def cmd_UIDL(self, args):
        if not self.cfg["uidl"]:
            self.reply("-ERR Unknown command: UIDL", "UIDL")
            return
        if args:
            n, m = self.msg(args[0])
            if m is None:
                self.reply("-ERR There's no message %s." % args[0][:20], "UIDL")
                return
            self.reply("+OK %d %s" % (n, m.uidl), "UIDL")
            return
        self.reply_multi("+OK", ["%d %s" % (n, m.uidl) for n, m in self.live()], "UIDL")

    def _cut_offset(self, spec, status, body):
        total = len(status) + len(body) + 3
        if spec == "status":
            return min(3, len(status))
        if spec == "data":
            return len(status) + len(body) // 2
        if spec == "before_dot":
            return total - 3
        spec = int(spec)
        return spec if spec >= 0 else total + spec

    def cmd_RETR(self, args):
        n, m = self.msg(args[0] if args else None)
        if m is None:
            self.reply("-ERR There's no message %s." % (args[0][:20] if args else ""), "RETR")
            return
        f = self.faulty
        if f and n in [int(x) for x in self.cfg["endless_retr"]]:
            self.reply("+OK %d octets" % m.size, "RETR")
            self.send_endless(False)
            self.done = True
            return
        if f and n in [int(x) for x in self.cfg["endless_line"]]:
            self.reply("+OK %d octets" % m.size, "RETR")
            self.send_endless(True)
            self.done = True
            return
        refuse = (self.cfg["retr_refuse"] or {}).get(m.uidl) if f else None
        if refuse is not None:
            self.conn.event("RETR %d: refused (%s)" % (n, m.uidl))
            self.reply(refuse, "RETR")
            return
        status = b"+OK %d octets" % m.size + CRLF
        if f and n in [int(x) for x in self.cfg["no_stuff"]]:
            self.conn.event("RETR %d: sent without dot-stuffing" % n)
            body = m.crlf
        else:
            body = _stuff(m.crlf)
        cut = _intkeys(self.cfg["retr_cut_at"]).get(n) if f else None
        stall = _intkeys(self.cfg["retr_stall_at"]).get(n) if f else None
        slow = _intkeys(self.cfg["retr_trickle_at"]).get(n) if f else None
        self.wait_latency()
        if slow is not None:
            tail = body + b"." + CRLF
            if slow == "status":
                ok = self.trickle(status, "RETR %d status line" % n)
                if ok:
                    self.conn.send(tail, record="data")
            else:
                self.conn.send(status)
                ok = self.trickle(tail, "RETR %d data" % n)
            if not ok:
                self.done = True
            return
        if cut is not None or stall is not None:
            off = self._cut_offset(cut if cut is not None else stall, status, body)
            wire = status + body + b"." + CRLF
            self.conn.send(wire[:off], record=False)
            self.conn.event("RETR %d: sent %d of %d bytes, then %s"
                            % (n, off, len(wire), "cut" if cut is not None else "stall"))
            if stall is not None:
                self.conn.stall(self.cfg["stall_max"])
            self.done = True
            return
        n_status = self.cfg["status_line_bytes"]
        if n_status and f and self.cfg["status_line_on"].upper() == "RETR":
            self.reply("", "RETR")
        else:
            self.conn.send(status)
        self.conn.send(body + b"." + CRLF, record="data")

    def cmd_TOP(self, args):
        if not self.cfg["top"]:
            self.reply("-ERR Unknown command: TOP", "TOP")
            return
        n, m = self.msg(args[0] if args else None)
        try:
            nlines = int(args[1])
        except (IndexError, ValueError):
            nlines = -1
        if m is None or nlines < 0:
            self.reply("-ERR Invalid arguments.", "TOP")
            return
        lines = m.crlf.split(CRLF)[:-1]
        try:
            hdr_end = lines.index(b"")
        except ValueError:
            hdr_end = len(lines)
        out = lines[:hdr_end + 1] + lines[hdr_end + 1:hdr_end + 1 + nlines]
        self.wait_latency()
        self.conn.send(b"+OK" + CRLF)
        self.conn.send(_stuff(b"".join(ln + CRLF for ln in out)) + b"." + CRLF, record="data")

    def cmd_DELE(self, args):
        n, m = self.msg(args[0] if args else None)
        if m is None:
            self.reply("-ERR There's no message %s." % (args[0][:20] if args else ""), "DELE")
            return
        m.deleted = True
        self.reply("+OK Marked to be deleted.", "DELE")

    def cmd_RSET(self, args):
        for m in self.msgs:
            m.deleted = False
        self.reply("+OK", "RSET")

    def cmd_NOOP(self, args):
        self.reply("+OK", "NOOP")

    def cmd_QUIT(self, args):
        if self.state == "trans":
            gone = [m.uidl for m in self.msgs if m.deleted]
            if gone:
                gone_files = {e["file"] for e, m in zip(self.entries, self.msgs)
                              if m.deleted}
                # Hidden messages (hide_uidls) stay, in their places.
                keep = [e for e in self.all_entries if e["file"] not in gone_files]
                save_mailbox(self.workdir, keep)
                with open(os.path.join(self.workdir, "deleted.log"), "a") as f:
                    for u in gone:
                        f.write(u + "\n")
                self.conn.event("QUIT committed %d deletions" % len(gone))
        self.reply("+OK Logging out.", "QUIT")
        self.done = True


def c_ok(cfg, user, pw):
    return user in cfg["users"] and cfg["users"][user] == pw


# ---------------------------------------------------------------- server

def load_config(workdir):
    with open(os.path.join(workdir, "config.json")) as f:
        cfg = json.load(f)
    out = dict(COMMON_DEFAULTS)
    if cfg.get("mode", "mailbox") == "mailbox":
        out.update(MAILBOX_DEFAULTS)
    out.update(cfg)
    return out


def handle(sock, num, workdir, tr):
    conn = Conn(sock, tr, num)
    cfg = None
    try:
        cfg = load_config(workdir)
        dialogue = None
        if cfg["mode"] == "dialogue":
            with open(cfg["dialogue"], encoding="utf-8") as f:
                dialogue = parse_dialogue(f.read())
            if dialogue.meta_get("tls") == "implicit" and not cfg["tls"]:
                cfg["tls"] = "implicit"
        if cfg["tls"] == "implicit":
            if not conn._handshake(make_tls_context(cfg), cfg["read_timeout"]):
                return
        if dialogue is not None:
            run_dialogue(conn, dialogue, cfg)
        else:
            MailboxSession(conn, cfg, workdir).run()
    except ClientGone:
        pass
    except Exception as e:                      # keep serving the next client
        conn.event("server error: %s: %s" % (type(e).__name__, e))
        traceback.print_exc()
    finally:
        conn.close(drain=2.0)


def _watch_parent(ppid):
    while True:
        time.sleep(0.5)
        if os.getppid() != ppid:
            os._exit(0)


def serve(workdir, port=0, stop_event=None, ready=None):
    """Listen on 127.0.0.1:port and serve connections one at a time until
    stop_event is set.  Writes WORKDIR/port once listening."""
    tr = Transcript(os.path.join(workdir, "transcript.log"))
    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", port))
    ls.listen(16)
    ls.settimeout(0.5)
    real_port = ls.getsockname()[1]
    tmp = os.path.join(workdir, "port.tmp")
    with open(tmp, "w") as f:
        f.write("%d\n" % real_port)
    os.replace(tmp, os.path.join(workdir, "port"))
    tr.write(0, "#", "listening on 127.0.0.1:%d" % real_port)
    if ready:
        ready(real_port)
    num = 0
    try:
        while stop_event is None or not stop_event.is_set():
            try:
                s, addr = ls.accept()
            except (socket.timeout, TimeoutError):
                continue
            num += 1
            tr.write(num, "#", "accepted from %s:%d" % addr)
            handle(s, num, workdir, tr)
    finally:
        ls.close()
        tr.close()


def main(argv=None):
    ap = argparse.ArgumentParser(description="Scripted POP3 test server.")
    ap.add_argument("--dir", required=True, help="work directory (config.json, ...)")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--dialogue", help="write a dialogue-mode config.json for this file")
    ap.add_argument("--cert")
    ap.add_argument("--key")
    ap.add_argument("--tls", choices=("implicit", "stls"))
    a = ap.parse_args(argv)
    os.makedirs(a.dir, exist_ok=True)
    if a.dialogue:
        cfg = {"mode": "dialogue", "dialogue": os.path.abspath(a.dialogue),
               "tls": a.tls, "cert": a.cert, "key": a.key}
        with open(os.path.join(a.dir, "config.json"), "w") as f:
            json.dump(cfg, f)
    threading.Thread(target=_watch_parent, args=(os.getppid(),), daemon=True).start()
    try:
        serve(a.dir, a.port)
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
