"""A fake OAuth2 authorization server over TLS on 127.0.0.1, for tests.

    srv = OAuthServer(cert=certs.server).start()      # a thread
    srv.url("/token")                                  # https://127.0.0.1:PORT/token
    srv.refresh_tokens = {"rt-1"}                      # valid refresh tokens
    srv.rotate = True                                  # each refresh: a new one
    srv.fail = {"/token": (503, "...")}                # canned answers by path
    srv.hang = {"/token"}                              # never answer these
    srv.device_polls = ["authorization_pending", "slow_down", "ok"]
    srv.requests                                       # [(method, path, form)]
    srv.stop()

Endpoints (RFC 6749, RFC 8628, RFC 7636):
  POST /token    grant_type refresh_token | device_code |
                 authorization_code (PKCE S256 checked, redirect_uri too)
  POST /device   a device authorization response (user_code "WDJB-MJHT")
  GET  /authorize  records the query, 302 to redirect_uri?code=..&state=..
Issued access tokens are "at-N", refresh tokens "rt-N" (N counts up);
issued() lists access tokens in order, for the POP server's oauth_tokens.
"""

import base64
import hashlib
import http.server
import json
import ssl
import threading
import time
import urllib.parse


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):      # quiet
        pass

    def _send(self, status, obj=None, body=None, headers=()):
        if body is None:
            body = json.dumps(obj).encode() if obj is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _canned(self, path):
        srv = self.server.oauth
        if path in srv.hang:
            time.sleep(srv.hang_seconds)
            return True
        if path in srv.fail:
            status, body = srv.fail[path]
            self._send(status, body=body.encode() if isinstance(body, str) else body)
            return True
        return False

    def do_GET(self):
        srv = self.server.oauth
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query))
        with srv.lock:
            srv.requests.append(("GET", u.path, q))
        if self._canned(u.path):
            return
        if u.path != "/authorize":
            self._send(404, {"error": "not_found"})
            return
        srv.auth_query = q
        if srv.deny:
            loc = "%s?error=access_denied&state=%s" % (
                q.get("redirect_uri", ""), urllib.parse.quote(q.get("state", "")))
        else:
            code = "code-%d" % srv.next()
            srv.codes[code] = q
            loc = "%s?code=%s&state=%s" % (q.get("redirect_uri", ""), code,
                                           urllib.parse.quote(q.get("state", "")))
        self._send(302, body=b"", headers=[("Location", loc)])

    def do_POST(self):
        srv = self.server.oauth
        n = int(self.headers.get("Content-Length", "0"))
        raw = self.rfile.read(n).decode()
        form = dict(urllib.parse.parse_qsl(raw, keep_blank_values=True))
        path = urllib.parse.urlsplit(self.path).path
        with srv.lock:
            srv.requests.append(("POST", path, form))
            srv.times.append(time.monotonic())
        if self._canned(path):
            return
        if path == "/device":
            srv.device_code = "dc-%d" % srv.next()
            self._send(200, {"device_code": srv.device_code, "user_code": "WDJB-MJHT",
                             "verification_uri": srv.url("/verify"),
                             "expires_in": srv.device_expires,
                             "interval": srv.device_interval})
            return
        if path != "/token":
            self._send(404, {"error": "not_found"})
            return
        if form.get("client_id") != srv.client_id:
            self._send(401, {"error": "invalid_client"})
            return
        gt = form.get("grant_type")
        if gt == "refresh_token":
            rt = form.get("refresh_token")
            if rt not in srv.refresh_tokens:
                self._send(400, {"error": "invalid_grant",
                                 "error_description": "AADSTS70000: grant expired"})
                return
            if srv.rotate:
                srv.refresh_tokens.discard(rt)
            self._issue(refresh=srv.rotate)
        elif gt == "urn:ietf:params:oauth:grant-type:device_code":
            if form.get("device_code") != srv.device_code:
                self._send(400, {"error": "invalid_grant"})
                return
            step = srv.device_polls.pop(0) if srv.device_polls else "ok"
            if step == "ok":
                self._issue(refresh=True)
            else:
                self._send(400, {"error": step})
        elif gt == "authorization_code":
            q = srv.codes.pop(form.get("code"), None)
            verifier = form.get("code_verifier", "")
            challenge = base64.urlsafe_b64encode(
                hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if (q is None or q.get("code_challenge") != challenge or
                    q.get("code_challenge_method") != "S256" or
                    q.get("redirect_uri") != form.get("redirect_uri")):
                srv.bad_exchange = True
                self._send(400, {"error": "invalid_grant"})
                return
            self._issue(refresh=True)
        else:
            self._send(400, {"error": "unsupported_grant_type"})

    def _issue(self, refresh):
        srv = self.server.oauth
        n = srv.next()
        at = "at-%d" % n
        srv.access_tokens.append(at)
        obj = {"access_token": at, "token_type": "Bearer", "expires_in": srv.expires_in}
        if refresh:
            rt = "rt-%d" % n
            srv.refresh_tokens.add(rt)
            obj["refresh_token"] = rt
        self._send(200, obj)


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):   # TLS refusals: quiet
        self.oauth.handshake_errors += 1


class OAuthServer:
    def __init__(self, cert, client_id="cid"):
        self.cert = cert
        self.client_id = client_id
        self.lock = threading.Lock()
        self.requests = []
        self.times = []
        self.refresh_tokens = set()
        self.rotate = True
        self.expires_in = 3600
        self.fail = {}
        self.hang = set()
        self.hang_seconds = 30
        self.device_polls = []
        self.device_code = None
        self.device_expires = 900
        self.device_interval = 1
        self.codes = {}
        self.auth_query = None
        self.deny = False
        self.bad_exchange = False
        self.access_tokens = []
        self.handshake_errors = 0
        self._n = 1
        self.httpd = None
        self.port = None

    def next(self):
        with self.lock:
            self._n += 1
            return self._n

    def url(self, path):
        return "https://127.0.0.1:%d%s" % (self.port, path)

    def start(self):
        self.httpd = _Server(("127.0.0.1", 0), _Handler)
        self.httpd.oauth = self
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(self.cert.cert, self.cert.key)
        self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True,
                                            do_handshake_on_connect=False)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever,
                                       kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()
        return self

    def stop(self):
        if self.httpd is not None:
            self.httpd.shutdown()
            self.httpd.server_close()
            self.httpd = None

    def posts(self, path="/token"):
        with self.lock:
            return [f for (m, p, f) in self.requests if m == "POST" and p == path]
