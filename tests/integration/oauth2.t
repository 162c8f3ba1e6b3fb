#!/usr/bin/env python3
"""OAuth2 without a helper script (doc/DESIGN.md §11).

A fake authorization server (pftest.OAuthServer, TLS with the test CA on
127.0.0.1) and the scripted POP3 server (popserver.py, XOAUTH2 and
OAUTHBEARER) stand in for the provider:

  refresh        an expired or nearly expired access token is refreshed
                 before the login, the rotated refresh token stored (0600,
                 atomically), and the fresh token logs in (XOAUTH2 and
                 OAUTHBEARER); a valid one is used as it is
  refusals       invalid_grant -> 77 with `popfetch authorize -a NAME`;
                 5xx, a hanging endpoint -> 75; malformed JSON, no
                 access_token -> 76; a certificate that fails -> 69 with
                 nothing sent; in every case no POP3 login
  token file     missing -> 77 with the command; readable by others -> 78
                 with `chmod 600`; never in output or -vv traces
  -j             two accounts refreshing at once, each its own file
  authorize      device grant (pending, slow_down, expired_token,
                 access_denied) and loopback redirect with PKCE, the test
                 playing the browser
"""
import base64
import os
import re
import stat
import sys
import threading
import time
import urllib.parse
import urllib.request

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pftest  # noqa: E402
from pftest import eq, ok, contains, not_contains, like  # noqa: E402

T = pftest.Suite(__file__)
CERTS = T.certs()
NAME = "work"
later = T.later
test = T.test


class Box:
    """A POP3 server with two messages, a fake OAuth2 server and a
    popfetch sandbox whose account `work` uses them."""

    def __init__(self, tmp, auth="xoauth2", oauth_cert=None, nmsg=2, **opts):
        self.oauth = pftest.OAuthServer(oauth_cert or CERTS.server).start()
        later(self.oauth.stop)
        self.msgs = pftest.MailGen(nmsg).messages(nmsg, 500, 900)
        self.srv = pftest.PopServer(os.path.join(tmp, "srv"), messages=self.msgs,
                                    tls="implicit", cert=CERTS.server,
                                    sasl=["XOAUTH2", "OAUTHBEARER"],
                                    oauth_tokens={}, user_cmd=False).start()
        later(self.srv.stop)
        self.pf = pftest.Popfetch(os.path.join(tmp, "pf"))
        self.opts = {"host": "127.0.0.1", "port": self.srv.port, "user": "alice",
                     "tls": "implicit", "tls_ca_file": CERTS.ca.cert,
                     "auth": auth, "maildir": self.pf.path("Mail/" + NAME),
                     "timeout": 5, "oauth2_provider": pftest.Bare("custom"),
                     "oauth2_client_id": "cid",
                     "oauth2_token_url": self.oauth.url("/token")}
        self.opts.update(opts)
        self.write()

    def write(self, extra=""):
        self.pf.write_config(pftest.account_conf(NAME, **self.opts) + extra)

    def configure(self, **opts):
        self.opts.update(opts)
        self.write()

    @property
    def token_file(self):
        return os.path.join(self.pf.state_dir, "oauth2." + NAME)

    def store(self, access="at-old", expires_in=-10, refresh="rt-1", mode=0o600,
              name=NAME):
        os.makedirs(self.pf.state_dir, mode=0o700, exist_ok=True)
        path = os.path.join(self.pf.state_dir, "oauth2." + name)
        text = "access_token=%s\nexpires_at=%d\n" % (access, int(time.time()) + expires_in)
        if refresh:
            text += "refresh_token=%s\n" % refresh
            self.oauth.refresh_tokens.add(refresh)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(path, mode)

    def tokens(self):
        with open(self.token_file) as f:
            return dict(ln.split("=", 1) for ln in f.read().splitlines()
                        if ln and not ln.startswith("#"))

    def accept(self, *tokens):
        """Let the POP3 server take these access tokens for alice."""
        self.srv.configure(oauth_tokens={"alice": tokens[-1]})

    def run(self, *args, timeout=60):
        r = self.pf.run(*(args or ("fetch",)), timeout=timeout)
        self.srv.wait_closed(10)
        return r

    def auth_lines(self):
        return [ln for ln in self.srv.client_lines() if ln.startswith(b"AUTH")]


def error_line(r, code, what_re):
    eq(r.rc, code, "exit code\n%s" % r)
    m = re.fullmatch(r"popfetch: %s: ([^\n]+)\n" % NAME, r.stderr)
    ok(m, "stderr is one error line", r.stderr)
    T.diag("error line: " + r.stderr.rstrip("\n")[:300])
    like(m.group(1), what_re, "error text")
    return m.group(1)


def no_secrets(box, r, *extra):
    for s in ["rt-", "at-", "code-", "dc-"] + list(extra):
        not_contains(r.stdout + r.stderr, s, "secret %r in the output" % s)


def no_login(box):
    eq(box.auth_lines(), [], "no AUTH sent to the POP3 server")


# ------------------------------------------------------------------ refresh

@test("refresh: an expired access token is refreshed, the rotated refresh token stored, XOAUTH2 login")
def _(tmp):
    box = Box(tmp)
    box.store(expires_in=-10)
    box.srv.configure(oauth_tokens={"alice": "at-2"})
    r = box.run()
    eq(r.rc, 0, "exit\n%s" % r)
    posts = box.oauth.posts()
    eq(len(posts), 1, "one token request")
    eq(posts[0]["grant_type"], "refresh_token")
    eq(posts[0]["refresh_token"], "rt-1")
    eq(posts[0]["client_id"], "cid")
    t = box.tokens()
    eq(t["access_token"], "at-2", "new access token stored")
    eq(t["refresh_token"], "rt-2", "rotated refresh token stored")
    eq(stat.S_IMODE(os.stat(box.token_file).st_mode), 0o600, "token file mode")
    ok(abs(int(t["expires_at"]) - (time.time() + 3600)) < 30, "expires_at")
    auth = box.auth_lines()
    eq(len(auth), 1, "one AUTH")
    eq(auth[0].split(b" ")[1], b"XOAUTH2")
    eq(base64.b64decode(auth[0].split(b" ")[2]),
       b"user=alice\x01auth=Bearer at-2\x01\x01", "the fresh token")
    eq(len(pftest.read_maildir(box.opts["maildir"]).messages()), 2, "delivered")
    no_secrets(box, r)
    # A temporary file would be oauth2.NAME.XXXXXX (lib/fsutil.c).
    leftovers = [f for f in os.listdir(box.pf.state_dir)
                 if f.startswith("oauth2.%s." % NAME)]
    eq(leftovers, [], "no temporary file left")
    for tok in ("at-2", "rt-2", "rt-1"):
        eq([os.path.basename(f) for f in pftest.files_containing(box.pf.state_dir, tok)
            if not f.endswith("/oauth2." + NAME)], [],
           "%s only in the token file (not in the seen-list)" % tok)
    # The next run uses the stored token: no request.
    r = box.run()
    eq(r.rc, 0, "second run\n%s" % r)
    eq(len(box.oauth.posts()), 1, "no second token request")
    # The old refresh token is gone on the server: rotation was required.
    ok("rt-1" not in box.oauth.refresh_tokens, "rt-1 rotated away")


@test("refresh: a token expiring within 5 minutes is refreshed; one valid for 10 is not")
def _(tmp):
    box = Box(tmp)
    box.store(access="at-valid", expires_in=600)
    box.srv.configure(oauth_tokens={"alice": "at-valid"})
    r = box.run()
    eq(r.rc, 0, "exit\n%s" % r)
    eq(box.oauth.posts(), [], "valid for 10 minutes: no refresh")
    box.store(access="at-valid", expires_in=240)
    box.srv.configure(oauth_tokens={"alice": "at-2"})
    r = box.run()
    eq(r.rc, 0, "exit\n%s" % r)
    eq(len(box.oauth.posts()), 1, "4 minutes left: refreshed")
    eq(box.tokens()["access_token"], "at-2")


@test("refresh: no rotation keeps the old refresh token")
def _(tmp):
    box = Box(tmp)
    box.oauth.rotate = False
    box.store()
    box.srv.configure(oauth_tokens={"alice": "at-2"})
    r = box.run()
    eq(r.rc, 0, "exit\n%s" % r)
    eq(box.tokens()["refresh_token"], "rt-1", "kept")


@test("OAUTHBEARER: login with the fresh token (RFC 7628 gs2 header, host, port)")
def _(tmp):
    box = Box(tmp, auth="oauthbearer")
    box.store()
    box.srv.configure(oauth_tokens={"alice": "at-2"})
    r = box.run("-vv", "fetch")
    eq(r.rc, 0, "exit\n%s" % r)
    auth = box.auth_lines()
    eq(len(auth), 1, "one AUTH")
    eq(auth[0].split(b" ")[1], b"OAUTHBEARER")
    eq(base64.b64decode(auth[0].split(b" ")[2]),
       b"n,a=alice,\x01host=127.0.0.1\x01port=%d\x01auth=Bearer at-2\x01\x01"
       % box.srv.port, "client response")
    contains(r.stderr, "AUTH OAUTHBEARER ****", "-vv masks the AUTH line")
    no_secrets(box, r)
    not_contains(r.stderr, auth[0].split(b" ")[2].decode(), "-vv shows no response")


@test("OAUTHBEARER: a refused token gets the error challenge answered with ^A, 77")
def _(tmp):
    box = Box(tmp, auth="oauthbearer")
    box.store(access="at-stale", expires_in=3000)
    box.srv.configure(oauth_tokens={"alice": "at-other"})
    r = box.run()
    error_line(r, 77, r"OAUTHBEARER|authentication")
    lines = box.srv.client_lines()
    i = [j for j, ln in enumerate(lines) if ln.startswith(b"AUTH")][0]
    eq(lines[i + 1], b"AQ==", "answer to the error challenge")
    not_contains(box.srv.events(), "did not answer the error challenge")


@test("invalid_grant: 77 with `popfetch authorize -a work`, no login")
def _(tmp):
    box = Box(tmp)
    box.store(refresh="rt-revoked")
    box.oauth.refresh_tokens.clear()
    r = box.run()
    text = error_line(r, 77, r"invalid_grant")
    contains(text, "run: popfetch authorize -a work")
    no_login(box)
    no_secrets(box, r)
    eq(box.tokens()["refresh_token"], "rt-revoked", "token file untouched")


@test("token endpoint 5xx: 75, no login with the stale token")
def _(tmp):
    box = Box(tmp)
    box.store(access="at-old", expires_in=100)    # still valid, but < 5 min
    box.srv.configure(oauth_tokens={"alice": "at-old"})
    box.oauth.fail["/token"] = (503, "<html>busy</html>")
    r = box.run()
    error_line(r, 75, r"HTTP 503")
    no_login(box)


@test("token endpoint unreachable: 75")
def _(tmp):
    box = Box(tmp)
    box.store()
    box.configure(oauth2_token_url="https://127.0.0.1:%d/token" % pftest.free_port())
    r = box.run()
    error_line(r, 75, r"127\.0\.0\.1")
    no_login(box)


@test("token endpoint that hangs: 75 within the timeout")
def _(tmp):
    box = Box(tmp, timeout=2)
    box.store()
    box.oauth.hang.add("/token")
    t0 = time.monotonic()
    r = box.run(timeout=30)
    error_line(r, 75, r"time|Timeout")
    ok(time.monotonic() - t0 < 10, "bounded by timeout (%.1f s)" % (time.monotonic() - t0))
    no_login(box)


@test("token response that is not JSON, or has no access_token: 76")
def _(tmp):
    box = Box(tmp)
    for body, why in [("{\"access_token\": \"at-9\", ", r"not JSON"),
                      ("{\"token_type\": \"Bearer\"}", r"no access_token"),
                      ("[\"at-9\"]", r"not a JSON object"),
                      ("{\"access_token\": 17}", r"not a string")]:
        box.store()
        box.oauth.fail["/token"] = (200, body)
        r = box.run()
        error_line(r, 76, why)
        no_login(box)
        not_contains(r.stderr, "at-9")


@test("token endpoint certificate fails (wrong host, unknown CA): 69, nothing sent")
def _(tmp):
    for cert, name in [(CERTS.wronghost, "wronghost"), (CERTS.selfsigned, "selfsigned")]:
        sub = os.path.join(tmp, name)
        os.makedirs(sub)
        box = Box(sub, oauth_cert=cert)
        box.store()
        r = box.run()
        error_line(r, 69, r"TLS")
        eq(box.oauth.requests, [], "no request reached the endpoint")
        no_login(box)


@test("token file: missing -> 77 with the command; readable by others -> 78 with chmod")
def _(tmp):
    box = Box(tmp)
    r = box.run()
    text = error_line(r, 77, r"no OAuth2 tokens")
    contains(text, "popfetch authorize -a work")
    box.store(mode=0o644)
    r = box.run()
    text = error_line(r, 78, r"token file")
    contains(text, "chmod 600 " + box.token_file)
    no_login(box)
    eq(box.oauth.posts(), [], "no request")


@test("-j 2: two accounts refresh at once, each with its own token file")
def _(tmp):
    box = Box(tmp)
    box.store(refresh="rt-a")
    box.store(refresh="rt-b", name="other")
    box.srv.configure(oauth_tokens={"alice": "x"})
    other = dict(box.opts, maildir=box.pf.path("Mail/other"))
    box.write(pftest.account_conf("other", **other))
    box.oauth.rotate = True
    r = box.pf.run("fetch", "-j", "2")
    # Both refreshed exactly once; logins fail (the POP3 server wants x).
    posts = box.oauth.posts()
    eq(sorted(p["refresh_token"] for p in posts), ["rt-a", "rt-b"], "one refresh each")
    ok(r.rc == 77, "exit\n%s" % r)
    a = open(box.token_file).read()
    b = open(os.path.join(box.pf.state_dir, "oauth2.other")).read()
    ok(a != b, "two token files")


@test("token lock: a refresh waits for another holder (authorize, a -j sibling), 75 past the timeout")
def _(tmp):
    import fcntl
    box = Box(tmp, timeout=3)
    box.store()
    box.srv.configure(oauth_tokens={"alice": "at-2"})
    os.makedirs(box.pf.state_dir, exist_ok=True)
    fd = os.open(os.path.join(box.pf.state_dir, "oauth2-lock." + NAME),
                 os.O_RDWR | os.O_CREAT, 0o600)
    later(lambda: os.close(fd))
    fcntl.flock(fd, fcntl.LOCK_EX)
    threading.Timer(1.0, lambda: fcntl.flock(fd, fcntl.LOCK_UN)).start()
    t0 = time.monotonic()
    r = box.run()
    eq(r.rc, 0, "waited, then refreshed\n%s" % r)
    ok(time.monotonic() - t0 >= 0.9, "it waited for the lock")
    eq(len(box.oauth.posts()), 1, "one refresh")
    box.store(refresh="rt-9")
    fcntl.flock(fd, fcntl.LOCK_EX)
    r = box.run()
    error_line(r, 75, r"being renewed by another popfetch")
    eq(len(box.oauth.posts()), 1, "no second refresh while locked")
    eq(len(box.auth_lines()), 1, "no login in the locked-out run")


@test("password_command printing a token keeps working with auth = xoauth2")
def _(tmp):
    box = Box(tmp)
    for k in ("oauth2_provider", "oauth2_client_id", "oauth2_token_url"):
        box.opts.pop(k)
    box.configure(password_command="echo at-cmd")
    box.srv.configure(oauth_tokens={"alice": "at-cmd"})
    r = box.run()
    eq(r.rc, 0, "exit\n%s" % r)
    eq(box.oauth.requests, [], "no OAuth2 request")


# ------------------------------------------------------------------ authorize

def wait_output(p, pattern, timeout=20):
    """Wait until the spawned popfetch's stdout matches; the match."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        with open(p.pftest_files[0]) as f:
            m = re.search(pattern, f.read())
        if m:
            return m
        ok(p.poll() is None, "popfetch still running while waiting for %r" % pattern)
        time.sleep(0.05)
    raise AssertionError("no %r in stdout within %d s" % (pattern, timeout))


def device_box(tmp, polls):
    box = Box(tmp, oauth2_device_url=None)
    box.configure(oauth2_device_url=box.oauth.url("/device"), oauth2_scope="pop offline")
    box.oauth.device_polls = list(polls)
    return box


@test("authorize, device grant: code printed at once; pending, slow_down (+5 s), tokens stored; fetch logs in")
def _(tmp):
    box = device_box(tmp, ["authorization_pending", "slow_down", "ok"])
    p = box.pf.spawn("authorize", "-a", NAME)
    m = wait_output(p, r"open (\S+)\nand enter the code (\S+)\n")
    eq(m.group(1), box.oauth.url("/verify"))
    eq(m.group(2), "WDJB-MJHT")
    ok(p.poll() is None, "printed while still waiting")
    r = box.pf.collect(p, timeout=60)
    eq(r.rc, 0, "authorize\n%s" % r)
    dev = box.oauth.posts("/device")
    eq(dev, [{"client_id": "cid", "scope": "pop offline"}], "device request")
    polls = box.oauth.posts("/token")
    eq(len(polls), 3, "three polls")
    for f in polls:
        eq(f["grant_type"], "urn:ietf:params:oauth:grant-type:device_code")
        eq(f["device_code"], box.oauth.device_code)
    times = box.oauth.times[1:]
    ok(times[1] - times[0] >= 0.9, "interval 1 s honoured")
    ok(times[2] - times[1] >= 5.5, "slow_down adds 5 s (%.1f)" % (times[2] - times[1]))
    contains(r.stdout, "Account work is authorized")
    like(r.stderr, r"waiting for sign-in, \d+:\d\d left", "countdown shown")
    no_secrets(box, r)
    eq(stat.S_IMODE(os.stat(box.token_file).st_mode), 0o600, "token file mode")
    t = box.tokens()
    at = box.oauth.access_tokens[-1]
    eq(t["access_token"], at)
    ok(t["refresh_token"].startswith("rt-"), "refresh token stored")
    # The stored token logs in, no refresh needed.
    box.srv.configure(oauth_tokens={"alice": at})
    r = box.run()
    eq(r.rc, 0, "fetch\n%s" % r)
    eq(len(box.oauth.posts("/token")), 3, "no refresh")


@test("authorize, device grant: expired_token and access_denied are 77")
def _(tmp):
    for step, why in [("expired_token", r"expired"), ("access_denied", r"declined")]:
        sub = os.path.join(tmp, step)
        os.makedirs(sub)
        box = device_box(sub, ["authorization_pending", step])
        r = box.pf.run("authorize", "-a", NAME, timeout=60)
        eq(r.rc, 77, "exit\n%s" % r)
        like(r.stderr, r"popfetch: work: .*" + why, "error line")
        ok(not os.path.exists(box.token_file), "no token file")
        if step == "expired_token":
            contains(r.stderr, "popfetch authorize -a work")


@test("authorize, device grant: the code's lifetime bounds the wait")
def _(tmp):
    box = device_box(tmp, ["authorization_pending"] * 100)
    box.oauth.device_expires = 3
    r = box.pf.run("authorize", "-a", NAME, timeout=30)
    eq(r.rc, 77, "exit\n%s" % r)
    like(r.stderr, r"expired", "error")


@test("authorize: usage and configuration errors")
def _(tmp):
    box = Box(tmp)
    r = box.pf.run("authorize")
    eq(r.rc, 64, "no -a\n%s" % r)
    contains(r.stderr, "popfetch authorize -a NAME")
    r = box.pf.run("authorize", "-a", NAME, "-a", "x")
    eq(r.rc, 64, "two -a\n%s" % r)
    r = box.pf.run("authorize", "-a", "nosuch")
    eq(r.rc, 78, "unknown account\n%s" % r)
    # custom with only a token URL: nothing to authorize with.
    r = box.pf.run("authorize", "-a", NAME)
    eq(r.rc, 78, "no device or auth URL\n%s" % r)
    contains(r.stderr, "oauth2_device_url or oauth2_auth_url")
    box.write(pftest.account_conf("plain", host="h", user="u", password_command="echo x",
                                  maildir=box.pf.path("Mail/p")))
    r = box.pf.run("authorize", "-a", "plain")
    eq(r.rc, 78, "no provider\n%s" % r)
    contains(r.stderr, "no oauth2_provider")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None


def play_browser(box, url):
    """Open the printed URL at the fake provider; follow its redirect to
    popfetch's loopback listener by hand; return popfetch's page."""
    import ssl
    import urllib.error
    ctx = ssl.create_default_context(cafile=CERTS.ca.cert)
    opener = urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx),
                                         NoRedirect())
    try:
        opener.open(url, timeout=10)
        raise AssertionError("no redirect from the authorization endpoint")
    except urllib.error.HTTPError as e:
        eq(e.code, 302, "redirect")
        loc = e.headers["Location"]
    like(loc, r"^http://127\.0\.0\.1:\d+/\?", "redirect to the loopback listener")
    with urllib.request.urlopen(loc, timeout=10) as resp:
        return resp.status, resp.read().decode()


def loopback_box(tmp):
    box = Box(tmp)
    box.configure(oauth2_auth_url=box.oauth.url("/authorize"), oauth2_scope="https://mail.example/")
    return box


@test("authorize, loopback redirect with PKCE: URL printed at once, the browser's redirect, tokens stored; OAUTHBEARER login")
def _(tmp):
    box = loopback_box(tmp)
    box.configure(auth="oauthbearer")
    p = box.pf.spawn("authorize", "-a", NAME)
    m = wait_output(p, r"open this URL in a browser on this machine:\n(\S+)\n")
    url = m.group(1)
    ok(url.startswith(box.oauth.url("/authorize") + "?"), "the authorization endpoint")
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
    eq(q["response_type"], "code")
    eq(q["client_id"], "cid")
    eq(q["code_challenge_method"], "S256")
    eq(len(q["code_challenge"]), 43, "S256 challenge, base64url")
    eq(q["scope"], "https://mail.example/")
    like(q["redirect_uri"], r"^http://127\.0\.0\.1:\d+/$", "loopback redirect URI")
    ok(len(q["state"]) >= 16, "state")
    status, page = play_browser(box, url)
    eq(status, 200)
    contains(page, "you may close this window")
    r = box.pf.collect(p, timeout=30)
    eq(r.rc, 0, "authorize\n%s" % r)
    ok(not box.oauth.bad_exchange, "the code exchange passed the PKCE check")
    ex = box.oauth.posts("/token")
    eq(len(ex), 1)
    eq(ex[0]["grant_type"], "authorization_code")
    eq(ex[0]["redirect_uri"], q["redirect_uri"])
    ok(43 <= len(ex[0]["code_verifier"]) <= 128, "verifier length")
    no_secrets(box, r)
    t = box.tokens()
    at = box.oauth.access_tokens[-1]
    eq(t["access_token"], at)
    box.srv.configure(oauth_tokens={"alice": at})
    r = box.run()
    eq(r.rc, 0, "fetch\n%s" % r)
    eq(box.auth_lines()[0].split(b" ")[1], b"OAUTHBEARER")


@test("authorize, loopback: a redirect with a wrong state is ignored; access_denied is 77")
def _(tmp):
    import urllib.error
    box = loopback_box(tmp)
    box.oauth.deny = True
    p = box.pf.spawn("authorize", "-a", NAME)
    m = wait_output(p, r"browser on this machine:\n(\S+)\n")
    q = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(m.group(1)).query))
    try:
        urllib.request.urlopen(q["redirect_uri"] + "?code=forged&state=nope", timeout=10)
        raise AssertionError("a forged redirect was accepted")
    except urllib.error.HTTPError as e:
        eq(e.code, 400, "forged redirect refused")
    ok(p.poll() is None, "still waiting after a forged redirect")
    play_browser(box, m.group(1))
    r = box.pf.collect(p, timeout=30)
    eq(r.rc, 77, "exit\n%s" % r)
    contains(r.stderr, "access_denied")
    eq(box.oauth.posts("/token"), [], "no code exchange")
    ok(not os.path.exists(box.token_file), "no token file")


T.done()
