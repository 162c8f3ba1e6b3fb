"""Small helpers shared by the harness: ports, waiting, process hygiene."""

import ctypes
import os
import signal
import socket
import time


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago.  (Another
    process may take it before you bind it; tests use fresh ones.)"""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
    finally:
        s.close()


def port_open(port, host="127.0.0.1", timeout=0.5):
    """True if something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_for(pred, timeout, interval=0.05):
    """Poll pred() until it returns a true value (returned) or timeout
    passes (None)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            return None
        time.sleep(interval)


def tail(path, lines=40):
    """The last lines of a text file ('' if missing)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError:
        return ""
    return b"\n".join(data.splitlines()[-lines:]).decode("utf-8", "replace")


_PR_SET_PDEATHSIG = 1


def die_with_parent():
    """preexec_fn: the child gets SIGTERM when the test process dies, even
    by SIGKILL (Linux prctl; silently ignored elsewhere)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def kill_group(proc, grace=10.0):
    """Stop a process started with start_new_session=True: SIGTERM, wait
    `grace` seconds, then SIGKILL its whole process group."""
    if proc is None:
        return
    if proc.poll() is None:
        try:
            proc.terminate()
        except ProcessLookupError:
            pass
        try:
            proc.wait(grace)
        except Exception:
            pass
    if proc.poll() is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            proc.wait(5)
        except Exception:
            pass
    # Children outliving their parent (they stay in its process group):
    # give them a moment to finish, then kill them.
    if not wait_for(lambda: not group_members(proc.pid), 3):
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        wait_for(lambda: not group_members(proc.pid), 3)


def _proc_stats():
    """(pid, fields after comm) of every process in /proc: fields[0] is
    the state, [1] the ppid, [2] the process group."""
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
        except OSError:
            continue
        # pid (comm) state ppid pgrp ... ; comm may contain spaces and ')'.
        yield int(d), st[st.rindex(")") + 2:].split()


def group_members(pgid):
    """PIDs of the live (not zombie) processes in process group pgid."""
    return [pid for pid, f in _proc_stats()
            if int(f[2]) == pgid and f[0] not in ("Z", "X")]


def world_traversable(path):
    """True if every directory from / down to path is o+x (so a process
    running as another unprivileged user can reach it)."""
    path = os.path.abspath(path)
    while True:
        try:
            st = os.stat(path)
        except OSError:
            return False
        if not st.st_mode & 0o001:
            return False
        parent = os.path.dirname(path)
        if parent == path:
            return True
        path = parent


LIBFAKETIME = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1"


def fake_env(offset, fake_stat=True):
    """Environment running popfetch `offset` (e.g. '+60h', or a date) in
    the future under libfaketime (Debian faketime, which scripts/deps
    installs): an AssertionError, so a failed test, where it is missing.
    The monotonic clock stays real.  fake_stat=False leaves file times
    alone (NO_FAKE_STAT)."""
    from .tap import ok
    ok(os.path.exists(LIBFAKETIME), "libfaketime installed", LIBFAKETIME)
    # (An ASan build refuses a preloaded library ahead of its runtime
    # unless told that the order is fine.)
    asan = os.environ.get("ASAN_OPTIONS", "")
    env = {"LD_PRELOAD": LIBFAKETIME, "FAKETIME": offset,
           "FAKETIME_DONT_FAKE_MONOTONIC": "1", "FAKETIME_NO_CACHE": "1",
           "ASAN_OPTIONS": (asan + ":" if asan else "") + "verify_asan_link_order=0"}
    if not fake_stat:
        env["NO_FAKE_STAT"] = "1"
    return env


def children_of(pid):
    """The pids whose parent is pid (from /proc)."""
    return [p for p, f in _proc_stats() if int(f[1]) == pid]
