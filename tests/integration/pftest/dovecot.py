"""A real Dovecot POP3 server in a sandbox, for integration tests.

    dc = Dovecot(workdir, certs)          # certs: pftest.certs.CertSet
    dc.add_user("alice", "secret")
    dc.start()                            # raises DovecotError with the log tail
    dc.add_messages("alice", [b"From: ...\\n\\nbody\\n"])
    dc.port, dc.pop3s_port                # plain/STARTTLS and implicit TLS
    dc.server_uidls("alice"), dc.server_message_count("alice")
    dc.stop()

It runs `dovecot -F -c CONF` with its own base_dir, state_dir and log file,
listening only on 127.0.0.1 (two free ports), protocols = pop3, ssl = yes
with the given certificate, passdb passwd-file with {PLAIN} passwords (so
APOP and SCRAM-SHA-256 work), auth_mechanisms = plain login apop
scram-sha-256, disable_plaintext_auth = no, a static userdb, Maildir
under the sandbox, pop3_uidl_format = %08Xu%08Xv.  Dovecot advertises
PIPELINING itself.  No system configuration is read.

Users: Dovecot refuses to run mail processes as root.
  * As root: mail is owned by an existing unprivileged account, `nobody`
    (override with $PFTEST_MAIL_USER); the mail dirs are chowned to it and
    first/last_valid_uid are pinned to it.  default_internal_user =
    dovecot and default_login_user = dovenull (Debian's dovecot-core
    creates both).  No account is created.
  * As another user: Dovecot's documented rootless set-up, every process
    as the current user.
  Login processes are not chrooted in either case (a chroot needs root and
  buys nothing in a test sandbox).
Because the unprivileged processes must reach the sandbox, as root it must
lie below world-traversable directories; if $TMPDIR is not, the sandbox
goes to /tmp instead.  Unix socket paths are short for the same reason.

Instances are stopped at exit (atexit, then SIGKILL of the process group),
and get SIGTERM from the kernel if the test process dies (PR_SET_PDEATHSIG).
"""

import atexit
import grp
import os
import poplib
import pwd
import shutil
import socket
import ssl
import subprocess
import tempfile
import time

from . import util

DOVECOT = os.environ.get("PFTEST_DOVECOT", "/usr/sbin/dovecot")
DH_FILE = "/usr/share/dovecot/dh.pem"

# Messages with lines over poplib's 2048-byte limit are part of the tests.
poplib._MAXLINE = 1 << 22

_live = []


_sandboxes = []     # sandboxes made outside the test's temp dir


def stop_all():
    """Stop every Dovecot this process started (and remove the sandboxes
    made under /tmp, unless PFTEST_KEEP is set)."""
    for d in list(_live):
        d.stop()
    while _sandboxes and not os.environ.get("PFTEST_KEEP"):
        shutil.rmtree(_sandboxes.pop(), ignore_errors=True)


atexit.register(stop_all)


class DovecotError(Exception):
    """Dovecot failed to start (the message holds the log tail)."""


class Dovecot:
    host = "127.0.0.1"

    def __init__(self, workdir, certs=None, cert=None, mail_user=None,
                 auth_mechanisms="plain login apop scram-sha-256",
                 uidl_format="%08Xu%08Xv", extra_conf=""):
        """workdir: a directory for the sandbox (made if missing);
        certs: a CertSet (cert defaults to certs.server, the CA to certs.ca);
        cert: a Cert to serve instead; extra_conf: appended to dovecot.conf."""
        if certs is None and cert is None:
            raise ValueError("Dovecot needs certs (ssl = yes)")
        self.certs = certs
        self.cert = cert or certs.server
        self.ca_file = certs.ca.cert if certs is not None else None
        self.auth_mechanisms = auth_mechanisms
        self.uidl_format = uidl_format
        self.extra_conf = extra_conf
        self.as_root = os.geteuid() == 0
        os.makedirs(workdir, exist_ok=True)
        workdir = os.path.abspath(workdir)
        self._own_sandbox = False
        if self.as_root and not util.world_traversable(workdir):
            workdir = tempfile.mkdtemp(prefix="pftest-dovecot-", dir="/tmp")
            os.chmod(workdir, 0o755)
            self._own_sandbox = True
            _sandboxes.append(workdir)
        self.dir = os.path.join(workdir, "dovecot") if not self._own_sandbox else workdir
        os.makedirs(self.dir, exist_ok=True)
        self.base_dir = os.path.join(self.dir, "run")
        # Sockets: sun_path is 108 bytes; a long path gets a short
        # directory under /tmp, made by start() and removed by stop().
        self._short_base = len(self.base_dir) > 70
        self.state_dir = os.path.join(self.dir, "state")
        self.mail_root = os.path.join(self.dir, "mail")
        self.home_root = os.path.join(self.dir, "home")
        self.passwd_file = os.path.join(self.dir, "passwd")
        self.conf_file = os.path.join(self.dir, "dovecot.conf")
        self.log_file = os.path.join(self.dir, "dovecot.log")
        self.out_file = os.path.join(self.dir, "dovecot.out")
        for d in (self.state_dir, self.mail_root, self.home_root):
            os.makedirs(d, exist_ok=True)
        if self.as_root:
            name = mail_user or os.environ.get("PFTEST_MAIL_USER") or "nobody"
            try:
                pw = pwd.getpwnam(name)
            except KeyError:
                raise DovecotError("mail user %r does not exist (set PFTEST_MAIL_USER)"
                                   % name)
            self.mail_uid, self.mail_gid = pw.pw_uid, pw.pw_gid
            self.internal_user, self.login_user = "dovecot", "dovenull"
            self.internal_group = "dovecot"
            for u in (self.internal_user, self.login_user):
                try:
                    pwd.getpwnam(u)
                except KeyError:
                    raise DovecotError("user %r missing (install dovecot-core)" % u)
            for d in (self.dir, self.mail_root, self.home_root):
                os.chmod(d, 0o755)
            os.chown(self.mail_root, self.mail_uid, self.mail_gid)
            os.chown(self.home_root, self.mail_uid, self.mail_gid)
        else:
            self.mail_uid, self.mail_gid = os.getuid(), os.getgid()
            me = pwd.getpwuid(self.mail_uid).pw_name
            self.internal_user = self.login_user = me
            self.internal_group = grp.getgrgid(self.mail_gid).gr_name
        self.port = util.free_port()
        self.pop3s_port = util.free_port()
        while self.pop3s_port == self.port:
            self.pop3s_port = util.free_port()
        self.users = {}
        self.proc = None
        self._seq = 0
        self._write_passwd()

    # -- configuration
    def config_text(self):
        dh = "ssl_dh = <%s\n" % DH_FILE if os.path.exists(DH_FILE) else ""
        return f"""\
# Generated by pftest for one test run; no system configuration is read.
base_dir = {self.base_dir}
state_dir = {self.state_dir}
instance_name = pftest-{os.getpid()}-{self.port}
log_path = {self.log_file}
info_log_path = {self.log_file}
protocols = pop3
listen = 127.0.0.1
shutdown_clients = yes
ssl = yes
ssl_cert = <{self.cert.cert}
ssl_key = <{self.cert.key}
{dh}ssl_min_protocol = TLSv1.2
disable_plaintext_auth = no
auth_mechanisms = {self.auth_mechanisms}
auth_verbose = yes
auth_failure_delay = 0
default_internal_user = {self.internal_user}
default_login_user = {self.login_user}
default_internal_group = {self.internal_group}
first_valid_uid = {self.mail_uid}
last_valid_uid = {self.mail_uid}
first_valid_gid = {self.mail_gid}
last_valid_gid = {self.mail_gid}
mail_location = maildir:{self.mail_root}/%u
pop3_uidl_format = {self.uidl_format}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.passwd_file}
}}
userdb {{
  driver = static
  args = uid={self.mail_uid} gid={self.mail_gid} home={self.home_root}/%u
}}
service pop3-login {{
  chroot =
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {self.port}
  }}
  inet_listener pop3s {{
    address = 127.0.0.1
    port = {self.pop3s_port}
    ssl = yes
  }}
}}
service anvil {{
  chroot =
  # No growing delay after failed logins from 127.0.0.1: tests fail
  # logins on purpose (auth_failure_delay = 0 drops the fixed delay).
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
{self.extra_conf}
"""

    def _write_passwd(self):
        tmp = self.passwd_file + ".tmp"
        with open(tmp, "w") as f:
            for name, pw in self.users.items():
                f.write("%s:{PLAIN}%s\n" % (name, pw))
        # Read by the auth process (default_internal_user): test passwords only.
        os.chmod(tmp, 0o644)
        os.replace(tmp, self.passwd_file)

    def add_user(self, name, password):
        """Add (or change) a user; works while Dovecot runs (passwd-file is
        re-read when it changes).  Creates the user's Maildir."""
        if ":" in name or "\n" in name or ":" in password or "\n" in password:
            raise ValueError("':' and newlines cannot go into a passwd-file")
        self.users[name] = password
        self._write_passwd()
        md = self.maildir(name)
        for sub in ("", "new", "cur", "tmp"):
            p = os.path.join(md, sub)
            os.makedirs(p, exist_ok=True)
            os.chmod(p, 0o700)
            if self.as_root:
                os.chown(p, self.mail_uid, self.mail_gid)

    def maildir(self, user):
        return os.path.join(self.mail_root, user)

    def add_messages(self, user, messages, sizes_in_names=False):
        """Deliver messages (bytes, LF line endings, not dot-stuffed) into
        the user's Maildir new/, in order: Dovecot numbers them in this
        order.  Returns the file paths.

        sizes_in_names: name the files as Dovecot's own delivery does,
        with ,S=<size>,W=<size with CRLF line ends>, so Dovecot takes
        every size from the name instead of reading each file when a
        session first needs them (the bench's 20,000-message mailbox)."""
        if user not in self.users:
            raise KeyError("unknown user %r (add_user first)" % user)
        md = self.maildir(user)
        paths = []
        now = int(time.time())
        for msg in messages:
            if not isinstance(msg, (bytes, bytearray)):
                raise TypeError("messages are bytes")
            self._seq += 1
            # Dovecot gives new files UIDs sorted by the time and M<usec>
            # parts of the name, so these keep the given order.
            name = "%d.M%06dP%dQ%d.pftest" % (now, self._seq, os.getpid(), self._seq)
            if sizes_in_names:
                name += ",S=%d,W=%d" % (len(msg), len(msg) + msg.count(b"\n")
                                        - msg.count(b"\r\n"))
            tmp = os.path.join(md, "tmp", name)
            with open(tmp, "wb") as f:
                f.write(msg)
            os.chmod(tmp, 0o600)
            if self.as_root:
                os.chown(tmp, self.mail_uid, self.mail_gid)
            dst = os.path.join(md, "new", name)
            os.rename(tmp, dst)
            paths.append(dst)
        return paths

    # -- process
    def start(self, timeout=20):
        """Start Dovecot and wait until both ports answer."""
        if self.proc is not None:
            raise DovecotError("already started")
        if not os.path.exists(DOVECOT):
            raise DovecotError("%s not found (apt-get install dovecot-pop3d)" % DOVECOT)
        if self._short_base:
            self.base_dir = tempfile.mkdtemp(prefix="pfdc-", dir="/tmp")
        with open(self.conf_file, "w") as f:
            f.write(self.config_text())
        out = open(self.out_file, "wb")
        try:
            self.proc = subprocess.Popen([DOVECOT, "-F", "-c", self.conf_file],
                                         stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, cwd=self.dir,
                                         start_new_session=True,
                                         preexec_fn=util.die_with_parent)
        finally:
            out.close()
        _live.append(self)
        deadline = time.monotonic() + timeout
        ready = {self.port: False, self.pop3s_port: False}
        while True:
            if self.proc.poll() is not None:
                rc = self.proc.returncode
                diag = self.diagnostics()
                self.stop()
                raise DovecotError("dovecot exited with status %s during start-up\n%s"
                                   % (rc, diag))
            for p in ready:
                if not ready[p]:
                    ready[p] = self._probe(p, p == self.pop3s_port)
            if all(ready.values()):
                return self
            if time.monotonic() > deadline:
                diag = self.diagnostics()
                self.stop()
                raise DovecotError("dovecot did not accept connections within %g s\n%s"
                                   % (timeout, diag))
            time.sleep(0.05)

    def _probe(self, port, tls):
        try:
            with socket.create_connection((self.host, port), timeout=2) as s:
                if tls:
                    # Only "is it up?": verification is the tests' business.
                    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                    ctx.check_hostname = False
                    ctx.verify_mode = ssl.CERT_NONE
                    with ctx.wrap_socket(s) as t:
                        return t.recv(100).startswith(b"+OK")
                return s.recv(100).startswith(b"+OK")
        except OSError:
            return False

    def _cleanup_proc(self):
        if self in _live:
            _live.remove(self)

    def stop(self):
        """Stop Dovecot (SIGTERM, then SIGKILL of its process group)."""
        if self.proc is None:
            return
        util.kill_group(self.proc, grace=10)
        self.proc = None
        self._cleanup_proc()
        if self._short_base and os.path.basename(self.base_dir).startswith("pfdc-"):
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        """Dovecot's log so far."""
        try:
            with open(self.log_file, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def log_with(self, text, timeout=10):
        """Dovecot's log once it holds text, or as it is after timeout.
        Dovecot's log process writes asynchronously: a login's line can
        land after the session that caused it has ended, on a loaded
        machine well after."""
        util.wait_for(lambda: text in self.log(), timeout)
        return self.log()

    def settled_log(self, quiet=0.5, timeout=10):
        """Dovecot's log once it has stopped growing for quiet seconds:
        for checking that something did NOT log in, or for a baseline to
        compare with later."""
        last = [None, time.monotonic()]

        def still():
            size = len(self.log())
            now = time.monotonic()
            if size != last[0]:
                last[0], last[1] = size, now
                return False
            return now - last[1] >= quiet
        util.wait_for(still, timeout)
        return self.log()

    def diagnostics(self, lines=30):
        return "--- %s (tail) ---\n%s\n--- %s ---\n%s" % (
            self.log_file, util.tail(self.log_file, lines),
            self.out_file, util.tail(self.out_file, lines))

    # -- speaking POP3 (poplib)
    def ssl_context(self):
        """A verifying client context trusting the test CA."""
        return ssl.create_default_context(cafile=self.ca_file)

    def connect(self, tls="implicit", timeout=10):
        """A poplib client, not logged in: tls = implicit | starttls | none."""
        if tls == "implicit":
            return poplib.POP3_SSL(self.host, self.pop3s_port, timeout=timeout,
                                   context=self.ssl_context())
        p = poplib.POP3(self.host, self.port, timeout=timeout)
        if tls == "starttls":
            p.stls(context=self.ssl_context())
        elif tls != "none":
            raise ValueError("tls must be implicit, starttls or none")
        return p

    def login(self, user, tls="none", password=None):
        p = self.connect(tls)
        p.user(user)
        p.pass_(self.users[user] if password is None else password)
        return p

    def server_uidls(self, user):
        """The UIDLs the server lists for user, in message order."""
        p = self.login(user)
        try:
            _, lines, _ = p.uidl()
            return [ln.split(None, 1)[1].decode("ascii") for ln in lines]
        finally:
            p.quit()

    def server_message_count(self, user):
        p = self.login(user)
        try:
            return p.stat()[0]
        finally:
            p.quit()

    def clear_mailbox(self, user):
        """Delete every message of user (DELE all, QUIT)."""
        p = self.login(user)
        try:
            for i in range(1, p.stat()[0] + 1):
                p.dele(i)
        finally:
            p.quit()

    def account_options(self, user, tls="implicit", **extra):
        """Options for a popfetch account on this server (pftest.account_conf)."""
        opts = {"host": self.host, "user": user, "tls": tls,
                "port": self.pop3s_port if tls == "implicit" else self.port,
                "password": self.users[user]}
        if self.ca_file:
            opts["tls_ca_file"] = self.ca_file
        opts.update(extra)
        return opts
