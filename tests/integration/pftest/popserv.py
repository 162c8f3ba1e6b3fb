"""Run tests/integration/popserver.py as a subprocess and inspect it.

    srv = PopServer(workdir, messages=[b"...", ...], tls="stls",
                    cert=certs.server, sasl=["PLAIN", "XOAUTH2"],
                    retr_cut_at={2: "data"})
    srv.start()
    ... run the client against 127.0.0.1:srv.port ...
    srv.wait_closed()
    srv.client_lines()          # [b"CAPA", b"STLS", b"USER alice", ...]
    srv.remaining_uidls(), srv.deleted_uidls()
    srv.stop()

    srv = PopServer(workdir, dialogue="S: +OK hi\\nC: CAPA\\n...")  # or a path

Knobs are those of popserver.MAILBOX_DEFAULTS (mailbox mode) plus
tls (None | "implicit" | "stls"), cert (a pftest Cert), stall_max,
read_timeout, tls_min_version / tls_max_version.  configure(**knobs) changes
them for the next connections; add_messages() appends messages.
"""

import atexit
import json
import os
import subprocess
import sys

from . import util

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SCRIPT = os.path.join(HERE, "popserver.py")
if HERE not in sys.path:
    sys.path.insert(0, HERE)
import popserver  # noqa: E402  (tests/integration/popserver.py)

_live = []


def stop_all():
    for s in list(_live):
        s.stop()


atexit.register(stop_all)


class PopServerError(Exception):
    pass


class PopServer:
    host = "127.0.0.1"

    def __init__(self, workdir, messages=None, uidls=None, dialogue=None, tls=None,
                 cert=None, **knobs):
        self.dir = os.path.abspath(workdir)
        os.makedirs(os.path.join(self.dir, "msgs"), exist_ok=True)
        self.proc = None
        self.port = None
        self._nmsg = 0
        cfg = {"tls": tls}
        if cert is not None:
            cfg["cert"], cfg["key"] = cert.cert, cert.key
        if dialogue is not None:
            cfg["mode"] = "dialogue"
            if "\n" not in dialogue:          # a path
                path = os.path.abspath(dialogue)
            else:
                path = os.path.join(self.dir, "dialogue.txt")
                with open(path, "w", encoding="utf-8") as f:
                    f.write(dialogue)
            with open(path, encoding="utf-8") as f:
                self.dialogue = popserver.parse_dialogue(f.read())   # fail early
            cfg["dialogue"] = path
        else:
            cfg["mode"] = "mailbox"
            self.dialogue = None
            unknown = set(knobs) - set(popserver.MAILBOX_DEFAULTS) - set(
                popserver.COMMON_DEFAULTS)
            if unknown:
                raise ValueError("unknown popserver knobs: %s" % ", ".join(sorted(unknown)))
        cfg.update(knobs)
        self.cfg = cfg
        self._write_config()
        popserver.save_mailbox(self.dir, [])
        if messages:
            self.add_messages(messages, uidls)

    def _write_config(self):
        tmp = os.path.join(self.dir, "config.json.tmp")
        with open(tmp, "w") as f:
            json.dump(self.cfg, f, indent=1, default=str)
        os.replace(tmp, os.path.join(self.dir, "config.json"))

    def configure(self, **knobs):
        """Change knobs; they apply from the next connection on."""
        if "cert" in knobs:
            c = knobs.pop("cert")
            self.cfg["cert"], self.cfg["key"] = c.cert, c.key
        self.cfg.update(knobs)
        self._write_config()

    def add_messages(self, messages, uidls=None):
        """Append messages (bytes, LF); UIDLs default to "uid-<n>" with n
        counting every message ever added."""
        path = os.path.join(self.dir, "mailbox.json")
        with open(path) as f:
            entries = json.load(f)
        for i, m in enumerate(messages):
            self._nmsg += 1
            rel = "msgs/%08d.eml" % self._nmsg
            with open(os.path.join(self.dir, rel), "wb") as f:
                f.write(m)
            uidl = uidls[i] if uidls else "uid-%d" % self._nmsg
            entries.append({"file": rel, "uidl": uidl})
        popserver.save_mailbox(self.dir, entries)

    # -- process
    def start(self, timeout=10):
        if self.proc is not None:
            raise PopServerError("already started")
        portfile = os.path.join(self.dir, "port")
        if os.path.exists(portfile):
            os.unlink(portfile)
        err = open(os.path.join(self.dir, "server.stderr"), "wb")
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-B", SCRIPT, "--dir", self.dir],
                stdin=subprocess.DEVNULL, stdout=err, stderr=subprocess.STDOUT,
                start_new_session=True, preexec_fn=util.die_with_parent)
        finally:
            err.close()
        _live.append(self)

        def ready():
            if self.proc.poll() is not None:
                return "dead"
            try:
                with open(portfile) as f:
                    return int(f.read().strip())
            except (OSError, ValueError):
                return None
        r = util.wait_for(ready, timeout)
        if r is None or r == "dead":
            self.stop()
            raise PopServerError("popserver did not start:\n%s" % self.stderr())
        self.port = r
        return self

    def stop(self):
        if self.proc is not None:
            util.kill_group(self.proc, grace=5)
            self.proc = None
        if self in _live:
            _live.remove(self)

    def stderr(self):
        return util.tail(os.path.join(self.dir, "server.stderr"), 60)

    # -- inspection
    @property
    def transcript_path(self):
        return os.path.join(self.dir, "transcript.log")

    def transcript(self):
        """All events, as popserver.Event (conn, kind, data)."""
        return popserver.read_transcript(self.transcript_path)

    def transcript_text(self):
        try:
            with open(self.transcript_path) as f:
                return f.read()
        except OSError:
            return ""

    def connections(self):
        """Numbers of the connections accepted so far."""
        return sorted({e.conn for e in self.transcript() if e.conn > 0})

    def client_lines(self, conn=None):
        """Lines the client sent (bytes, no CRLF), of one connection or all."""
        return [e.data for e in self.transcript()
                if e.kind == "C" and (conn is None or e.conn == conn)]

    def commands(self, conn=None):
        """The command keywords the client sent, upper case."""
        return [ln.split(b" ", 1)[0].decode("latin-1").upper()
                for ln in self.client_lines(conn)]

    def events(self, conn=None):
        """Event texts ('#' lines) of one connection or all."""
        return [e.text for e in self.transcript()
                if e.kind == "#" and (conn is None or e.conn == conn)]

    def mismatches(self):
        return [t for t in self.events() if t.startswith("MISMATCH")]

    def wait_closed(self, timeout=10):
        """Wait until every accepted connection has been closed by the
        server; True if so."""
        def idle():
            ev = self.transcript()
            acc = {e.conn for e in ev if e.kind == "#" and e.text.startswith("accepted")}
            cl = {e.conn for e in ev if e.kind == "#" and e.text == "closed"}
            return acc <= cl
        return bool(util.wait_for(idle, timeout))

    def remaining_uidls(self):
        with open(os.path.join(self.dir, "mailbox.json")) as f:
            return [e["uidl"] for e in json.load(f)]

    def deleted_uidls(self):
        try:
            with open(os.path.join(self.dir, "deleted.log")) as f:
                return [ln.strip() for ln in f if ln.strip()]
        except FileNotFoundError:
            return []
