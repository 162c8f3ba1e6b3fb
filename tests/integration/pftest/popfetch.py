"""Run the popfetch binary in isolation, and read what it delivered.

    pf = Popfetch(tmp)                       # HOME, XDG dirs under tmp/home
    pf.write_config(account_conf("work", **dc.account_options("alice"),
                                 maildir=pf.path("Mail/work")))
    r = pf.run("fetch", "-a", "work")        # -c CONFIG is added
    r.rc, r.stdout, r.stderr, r.timed_out
    md = read_maildir(pf.path("Mail/work"))
    md.messages()                            # new/ + cur/, delivery order
    md.tmp                                   # leftovers in tmp/

The binary is $POPFETCH (the Makefile exports it), else
$top_builddir/popfetch.  $POPFETCH_WRAPPER (e.g. "valgrind -q
--error-exitcode=99") is put in front of it when set.
"""

import os
import re
import shlex
import subprocess
import threading
import time

# Variables that could make popfetch read or write outside the sandbox.
_SCRUB = ("POPFETCH_CONFIG", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_DATA_HOME",
          "XDG_CACHE_HOME", "XDG_RUNTIME_DIR", "XDG_CONFIG_DIRS", "XDG_DATA_DIRS",
          "MAIL", "MAILDIR")


def popfetch_binary():
    b = os.environ.get("POPFETCH")
    if b:
        return b
    top = os.environ.get("top_builddir")
    if top:
        return os.path.join(top, "popfetch")
    raise RuntimeError("POPFETCH is not set (run through `make check`, or export "
                       "POPFETCH=/path/to/popfetch)")


_TOOL_NOTE = re.compile(r"(?m)^--\d+-- [^\n]*\n?")


class Result:
    """Outcome of one popfetch run."""

    def __init__(self, args, rc, stdout, stderr, timed_out, duration):
        self.args = args
        self.rc = rc
        self.stdout = stdout
        # Under $POPFETCH_WRAPPER=valgrind, the tool's own notes ("--PID--
        # WARNING: unhandled amd64-linux syscall: 434" for pidfd_open) are
        # not popfetch's output; its errors ("==PID==") stay and also set
        # the exit code.
        self.stderr = _TOOL_NOTE.sub("", stderr)
        self.timed_out = timed_out
        self.duration = duration

    @property
    def output(self):
        return self.stdout + self.stderr

    def __str__(self):
        return ("$ %s\nexit %s%s in %.2f s\n--- stdout ---\n%s--- stderr ---\n%s"
                % (" ".join(shlex.quote(a) for a in self.args), self.rc,
                   " (TIMED OUT, killed)" if self.timed_out else "", self.duration,
                   self.stdout, self.stderr))

    def expect(self, rc):
        """Raise AssertionError (with the whole run) unless exit code is rc."""
        if self.rc != rc:
            raise AssertionError("expected exit %s\n%s" % (rc, self))
        return self


def write_config(path, text, mode=0o600):
    """Write a config file with the given mode (0600: popfetch refuses a
    readable file that holds a password)."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(path, mode)
    return path


class Bare(str):
    """A config value written without quotes."""


_BARE_KEYS = ("tls", "auth")


def conf_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, Bare):
        return str(v)
    s = str(v)
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def conf_options(opts, indent=""):
    out = []
    for k, v in opts.items():
        if v is None:
            continue
        if k in _BARE_KEYS and isinstance(v, str) and re.fullmatch(r"[a-z0-9-]+", v):
            v = Bare(v)
        out.append("%s%s = %s\n" % (indent, k, conf_value(v)))
    return "".join(out)


def account_conf(name, **opts):
    """An `account NAME { ... }` block; None values are left out, tls and
    auth are written bare (tls = implicit), strings quoted."""
    return "account %s {\n%s}\n" % (name, conf_options(opts, "    "))


class Popfetch:
    """A sandbox for running popfetch: its own HOME and XDG directories."""

    def __init__(self, tmpdir, binary=None):
        self.dir = os.path.abspath(tmpdir)
        self.home = os.path.join(self.dir, "home")
        self.binary = binary
        for d in ("", ".config", ".local/state", ".local/share", ".cache"):
            os.makedirs(os.path.join(self.home, d), exist_ok=True)
        self.runtime_dir = os.path.join(self.dir, "run")
        os.makedirs(self.runtime_dir, mode=0o700, exist_ok=True)
        self.config_path = os.path.join(self.dir, "popfetch.conf")
        self.state_dir = os.path.join(self.home, ".local/state/popfetch")

    def path(self, rel):
        """A path under the sandbox HOME."""
        return os.path.join(self.home, rel)

    def write_config(self, text, path=None, mode=0o600):
        """Write the config file (mode 0600) exactly as given.  (state_dir
        defaults to $XDG_STATE_HOME/popfetch = self.state_dir, inside the
        sandbox.)"""
        return write_config(path or self.config_path, text, mode)

    def env(self, extra=None):
        e = {k: v for k, v in os.environ.items() if k not in _SCRUB}
        e.update({
            "HOME": self.home,
            "XDG_CONFIG_HOME": os.path.join(self.home, ".config"),
            "XDG_STATE_HOME": os.path.join(self.home, ".local/state"),
            "XDG_DATA_HOME": os.path.join(self.home, ".local/share"),
            "XDG_CACHE_HOME": os.path.join(self.home, ".cache"),
            "XDG_RUNTIME_DIR": self.runtime_dir,
            "LC_ALL": "C",
        })
        if extra:
            for k, v in extra.items():
                if v is None:
                    e.pop(k, None)
                else:
                    e[k] = v
        return e

    def command(self, args, config=True):
        argv = shlex.split(os.environ.get("POPFETCH_WRAPPER", ""))
        argv.append(self.binary or popfetch_binary())
        if config is True:
            argv += ["-c", self.config_path]
        elif config:
            argv += ["-c", config]
        return argv + [str(a) for a in args]

    def run(self, *args, config=True, timeout=60, env=None, input=None, tty=False):
        """Run popfetch ARGS (with -c CONFIG unless config=False or a path)
        and wait.  tty=True gives it a pseudo-terminal as stderr.  On timeout
        the process is killed and timed_out is set (rc is then its -signal)."""
        argv = self.command(args, config)
        t0 = time.monotonic()
        if tty:
            return self._run_tty(argv, timeout, env, input, t0)
        try:
            p = subprocess.run(argv, input=input, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=self.env(env), cwd=self.dir,
                               timeout=timeout)
            return Result(argv, p.returncode, p.stdout.decode("utf-8", "replace"),
                          p.stderr.decode("utf-8", "replace"), False,
                          time.monotonic() - t0)
        except subprocess.TimeoutExpired as e:
            return Result(argv, None, (e.stdout or b"").decode("utf-8", "replace"),
                          (e.stderr or b"").decode("utf-8", "replace"), True,
                          time.monotonic() - t0)

    def _run_tty(self, argv, timeout, env, input, t0):
        import pty
        master, slave = pty.openpty()
        chunks = []

        def reader():
            while True:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    break
                if not data:
                    break
                chunks.append(data)
        p = subprocess.Popen(argv, stdin=subprocess.PIPE if input else subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=slave, env=self.env(env),
                             cwd=self.dir)
        os.close(slave)
        th = threading.Thread(target=reader, daemon=True)
        th.start()
        timed_out = False
        try:
            out, _ = p.communicate(input=input, timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, _ = p.communicate()
            timed_out = True
        th.join(5)
        os.close(master)
        return Result(argv, None if timed_out else p.returncode,
                      out.decode("utf-8", "replace"),
                      b"".join(chunks).decode("utf-8", "replace"), timed_out,
                      time.monotonic() - t0)

    def spawn(self, *args, config=True, env=None):
        """Start popfetch in the background (for kill tests): a Popen with
        stdout/stderr going to files; finish it with collect()."""
        argv = self.command(args, config)
        n = len([f for f in os.listdir(self.dir) if f.startswith("spawn-")])
        base = os.path.join(self.dir, "spawn-%d" % n)
        out = open(base + ".out", "wb")
        err = open(base + ".err", "wb")
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                             env=self.env(env), cwd=self.dir)
        out.close()
        err.close()
        p.pftest_files = (base + ".out", base + ".err")
        p.pftest_argv = argv
        p.pftest_t0 = time.monotonic()
        return p

    @staticmethod
    def collect(p, timeout=60):
        """Wait for a spawned popfetch and return its Result."""
        timed_out = False
        try:
            p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
            timed_out = True
        texts = []
        for fn in p.pftest_files:
            with open(fn, "rb") as f:
                texts.append(f.read().decode("utf-8", "replace"))
        return Result(p.pftest_argv, None if timed_out else p.returncode,
                      texts[0], texts[1], timed_out, time.monotonic() - p.pftest_t0)


_MD_NAME = re.compile(r"^(\d+)\.(?:M(\d+))?(?:P(\d+))?(?:Q(\d+))?")


def _md_key(name):
    m = _MD_NAME.match(name)
    if not m:
        return (1, 0, 0, 0, name)
    return (0, int(m.group(1)), int(m.group(2) or 0), int(m.group(4) or 0), name)


class MaildirContents:
    """Snapshot of a Maildir: new and cur as {name: bytes}, tmp as names."""

    def __init__(self, path):
        self.path = path
        self.exists = os.path.isdir(path)
        self.new = self._read("new")
        self.cur = self._read("cur")
        try:
            self.tmp = sorted(os.listdir(os.path.join(path, "tmp")))
        except OSError:
            self.tmp = []

    def _read(self, sub):
        out = {}
        d = os.path.join(self.path, sub)
        try:
            names = os.listdir(d)
        except OSError:
            return out
        for n in names:
            p = os.path.join(d, n)
            if os.path.isfile(p):
                with open(p, "rb") as f:
                    out[n] = f.read()
        return out

    def names(self):
        """new/ and cur/ file names, in delivery order (Maildir name time,
        then M<usec>, then Q<n>)."""
        return sorted(list(self.new) + list(self.cur), key=_md_key)

    def messages(self, strip_received=False):
        """Delivered messages as bytes in delivery order."""
        allm = dict(self.cur)
        allm.update(self.new)
        out = [allm[n] for n in self.names()]
        return [strip_received_header(m) for m in out] if strip_received else out

    def __len__(self):
        return len(self.new) + len(self.cur)


def read_maildir(path):
    return MaildirContents(path)


def strip_received_header(msg):
    """Remove one leading Received: field (with its continuation lines)."""
    if not msg.lower().startswith(b"received:"):
        return msg
    i = msg.find(b"\n")
    while i >= 0 and msg[i + 1:i + 2] in (b" ", b"\t"):
        i = msg.find(b"\n", i + 1)
    return msg[i + 1:] if i >= 0 else b""


def files_containing(root, needle):
    """Paths of files under root whose bytes contain needle (for 'the
    password never appears anywhere' checks)."""
    if isinstance(needle, str):
        needle = needle.encode("utf-8")
    hits = []
    for d, _, files in os.walk(root):
        for fn in files:
            p = os.path.join(d, fn)
            try:
                with open(p, "rb") as f:
                    if needle in f.read():
                        hits.append(p)
            except OSError:
                pass
    return hits
