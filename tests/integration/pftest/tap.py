"""A tiny TAP producer with per-script temp dirs.

    T = Suite(__file__)

    @T.test("dovecot starts")
    def _(tmp):                 # tmp: a fresh per-test directory (optional)
        eq(1 + 1, 2, "sum")

    T.done()                    # prints "1..N", cleans up, exits

Every decorated function runs at once and is one TAP test: "ok N - name",
or "not ok N - name" followed by the exception as "# " lines.  done() exits
non-zero if any test failed.  A script that dies before done() still
prints a failing test and a plan (atexit), and SIGTERM is turned into a
normal exit so servers are stopped.

The root temp dir is $TMPDIR/pftest-<script>-XXXXXX (tempfile honours
TMPDIR); it is removed when every test passed and kept (path printed) when
one failed, or always kept with PFTEST_KEEP=1.
"""

import atexit
import inspect
import os
import re
import shutil
import signal
import sys
import tempfile
import traceback


class TestTimeout(Exception):
    """A test ran longer than its timeout."""


def _slug(name):
    return re.sub(r"[^A-Za-z0-9]+", "-", name).strip("-")[:40] or "test"


def _short(v, limit=600):
    r = repr(v)
    return r if len(r) <= limit else r[:limit] + "... (%d chars)" % len(r)


def eq(got, expected, what=""):
    """Assert got == expected with both values in the message."""
    if got != expected:
        raise AssertionError("%s%sgot      %s\nexpected %s" % (
            what, ": " if what else "", _short(got), _short(expected)))


def ok(cond, what="", *details):
    """Assert cond; details are appended to the message."""
    if not cond:
        raise AssertionError(" ".join([what or "condition is false"] +
                                      [_short(d) if not isinstance(d, str) else d
                                       for d in details]))


def contains(haystack, needle, what=""):
    """Assert needle in haystack (str, bytes or list)."""
    if needle not in haystack:
        raise AssertionError("%s%s%s not found in %s" % (
            what, ": " if what else "", _short(needle), _short(haystack, 2000)))


def not_contains(haystack, needle, what=""):
    if needle in haystack:
        raise AssertionError("%s%s%s found in %s" % (
            what, ": " if what else "", _short(needle), _short(haystack, 2000)))


def like(text, regex, what=""):
    """Assert re.search(regex, text)."""
    if re.search(regex, text) is None:
        raise AssertionError("%s%s/%s/ does not match %s" % (
            what, ": " if what else "", regex if isinstance(regex, str) else regex.pattern,
            _short(text, 2000)))


def raises(exc_type, fn, *args, **kw):
    """Assert fn(*args) raises exc_type; returns the exception."""
    try:
        fn(*args, **kw)
    except exc_type as e:
        return e
    raise AssertionError("%s did not raise %s" % (getattr(fn, "__name__", fn),
                                                   exc_type.__name__))


def terminal_safe(data, what):
    """Assert data (bytes) is valid UTF-8 with no control character but LF
    (no C0, DEL or C1 U+0080..U+009F): safe on a terminal.  Returns it as
    text."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        ok(False, "%s is valid UTF-8" % what, "%s in %r" % (e, data))
        return data.decode("utf-8", "replace")
    bad = sorted({"U+%04X" % ord(c) for c in text
                  if (ord(c) < 0x20 and c != "\n") or 0x7f <= ord(c) <= 0x9f})
    eq(bad, [], "%s: no C0, DEL or C1 control" % what)
    return text


class Suite:
    """One TAP stream for one test script."""

    def __init__(self, script=None, name=None):
        script = script or sys.argv[0]
        self.name = name or os.path.splitext(os.path.basename(script))[0]
        self.n = 0
        self.failed = []
        self.finished = False
        self._cleanups = []
        self._test_cleanups = []
        self.root = tempfile.mkdtemp(prefix="pftest-%s-" % _slug(self.name))
        if os.geteuid() == 0:
            # Dovecot's unprivileged processes must traverse into it.
            os.chmod(self.root, 0o755)
        self._certs = None
        atexit.register(self._atexit)
        self._orig_excepthook = sys.excepthook
        sys.excepthook = self._excepthook
        try:
            signal.signal(signal.SIGTERM, self._on_signal)
            signal.signal(signal.SIGHUP, self._on_signal)
        except ValueError:          # not the main thread
            pass
        self._out("# %s: temp dir %s" % (self.name, self.root))

    # -- output
    def _out(self, text):
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    def diag(self, text):
        """Print text as TAP diagnostics ("# " lines)."""
        for ln in str(text).splitlines() or [""]:
            self._out("# " + ln)

    def _result(self, passed, name, diag=None):
        self.n += 1
        name = name.replace("#", "\\#").replace("\n", " ")
        self._out("%s %d - %s" % ("ok" if passed else "not ok", self.n, name))
        if not passed:
            self.failed.append(self.n)
        if diag:
            self.diag(diag)
        return passed

    # -- tests
    def tmpdir(self, name):
        """A fresh directory under the root."""
        d = tempfile.mkdtemp(prefix="%02d-%s-" % (self.n + 1, _slug(name)[:20]), dir=self.root)
        if os.geteuid() == 0:
            os.chmod(d, 0o755)
        return d

    def test(self, name, timeout=120):
        """Decorator: run the function now as one TAP test.  The function
        may take one argument, a fresh temp dir.  Returns True/False."""
        def deco(fn):
            return self.run(name, fn, timeout)
        return deco

    def run(self, name, fn, timeout=120):
        """Run fn (fn() or fn(tmpdir)) as one TAP test; True if it passed."""
        try:
            nparams = len(inspect.signature(fn).parameters)
        except (TypeError, ValueError):
            nparams = 0
        old = None
        try:
            if timeout:
                def _alarm(signum, frame):
                    raise TestTimeout("test timed out after %d s" % timeout)
                old = signal.signal(signal.SIGALRM, _alarm)
                signal.alarm(timeout)
            if nparams:
                fn(self.tmpdir(name))
            else:
                fn()
        except BaseException as e:     # includes SystemExit from a helper
            if timeout:
                signal.alarm(0)
            if isinstance(e, KeyboardInterrupt):
                raise
            tb = traceback.format_exception(type(e), e, e.__traceback__)
            return self._result(False, name, "".join(tb).rstrip())
        finally:
            if timeout:
                signal.alarm(0)
                if old is not None:
                    signal.signal(signal.SIGALRM, old)
            self._run_test_cleanups()
        return self._result(True, name)

    def skip(self, name, reason):
        """A test that cannot run here: "ok N - name # SKIP reason"."""
        self.n += 1
        name = name.replace("#", "\\#").replace("\n", " ")
        self._out("ok %d - %s # SKIP %s" % (self.n, name, reason.replace("\n", " ")))
        return True

    def check(self, cond, name, diag=None):
        """A one-line test: ok if cond is true."""
        return self._result(bool(cond), name, None if cond else diag)

    # -- resources
    def add_cleanup(self, fn):
        """fn() runs at done() / exit, last added first."""
        self._cleanups.append(fn)

    def later(self, fn):
        """fn() runs when the current test ends (pass or fail), last added
        first; a failing one is reported and the others still run."""
        self._test_cleanups.append(fn)

    def _run_test_cleanups(self):
        while self._test_cleanups:
            fn = self._test_cleanups.pop()
            try:
                fn()
            except Exception as e:      # report, keep cleaning
                self.diag("cleanup failed: %r" % (e,))

    def certs(self):
        """The test certificates (generated once per script)."""
        if self._certs is None:
            from . import certs
            self._certs = certs.CertSet(os.path.join(self.root, "certs"))
        return self._certs

    def _run_cleanups(self):
        while self._cleanups:
            fn = self._cleanups.pop()
            try:
                fn()
            except Exception:
                self.diag("cleanup failed:\n" + traceback.format_exc())

    def _finish(self):
        self._run_cleanups()
        # Servers started without add_cleanup are stopped by their modules'
        # atexit hooks; stop them now, before the temp dir goes.
        from . import dovecot, popserv
        dovecot.stop_all()
        popserv.stop_all()
        keep = bool(self.failed) or os.environ.get("PFTEST_KEEP")
        if keep:
            self.diag("kept temp dir: %s" % self.root)
        else:
            shutil.rmtree(self.root, ignore_errors=True)
        self._out("1..%d" % self.n)

    def done(self):
        """Print the plan, clean up and exit (1 if any test failed)."""
        self.finished = True
        self._finish()
        if self.failed:
            self.diag("failed tests: %s" % " ".join(map(str, self.failed)))
        sys.stdout.flush()
        sys.exit(1 if self.failed else 0)

    def _on_signal(self, signum, frame):
        raise SystemExit(128 + signum)

    def _excepthook(self, etype, value, tb):
        self._uncaught = "".join(traceback.format_exception(etype, value, tb))
        self._orig_excepthook(etype, value, tb)

    def _atexit(self):
        if self.finished:
            return
        self.finished = True
        self._result(False, "test script ended before done()",
                     getattr(self, "_uncaught", None))
        self._finish()
        sys.stdout.flush()
        os._exit(1)
