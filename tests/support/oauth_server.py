#!/usr/bin/env python3
"""A fake OAuth2 authorization server for collabd's integration tests.

Run: python3 tests/support/oauth_server.py --port 0   (prints "PORT n" as its first line)

Everything lives in memory. Requests are form-encoded (the /control endpoints take JSON),
answers are JSON. The contract, which the Rust side codes against:

  client_id "collabd-test", client_secret "test-secret": given in the form or as HTTP Basic
  auth (RFC 6749 2.3.1, so URL-encoded before base64). A secret, when sent, must match.

  POST /token  grant_type=refresh_token | authorization_code |
               urn:ietf:params:oauth:grant-type:device_code
  POST /device (client_id, scope)
  GET  /authorize?response_type=code&client_id&redirect_uri&state&code_challenge
                 &code_challenge_method=S256&scope   -> 302 to redirect_uri?code&state
  POST /introspect (token)  -> {"active": true, "username": ...} or {"active": false}
  POST /control/grant | /control/approve | /control/revoke | /control/expire |
       /control/config;  GET /control/stats

Python 3.11 standard library only.
"""

import argparse
import base64
import hashlib
import json
import os
import secrets
import signal
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CLIENT_ID = "collabd-test"
CLIENT_SECRET = "test-secret"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEFAULT_SCOPE = "mail offline_access"
CODE_TTL = 600


class OAuthError(Exception):
    """An OAuth2 error answer: HTTP status, `error`, `error_description`."""

    def __init__(self, status, error, description=""):
        super().__init__(error)
        self.status = status
        self.error = error
        self.description = description


class State:
    """All grants and tokens, behind one lock."""

    def __init__(self):
        self.lock = threading.Lock()
        self.access_ttl = 3600
        self.device_ttl = 600
        self.rotate = False
        self.default_user = "partners@brand.example"
        self.fail_token = 0  # the next n /token requests answer 503
        # refresh token -> {"username", "scope", "live"}
        self.refresh = {}
        # access token -> {"username", "scope", "expires_at", "live"}
        self.access = {}
        # device_code -> {"user_code", "scope", "expires_at", "approved", "done"}
        self.devices = {}
        # code -> {"redirect_uri", "challenge", "scope", "username", "expires_at"}
        self.codes = {}
        self.stats = {
            "refreshes": 0,
            "failed_refreshes": 0,
            "introspections": 0,
            "device_polls": 0,
            "code_exchanges": 0,
            "token_requests": 0,
        }

    # Callers hold self.lock.
    def new_refresh(self, username, scope, token=None):
        token = token or "rt-" + secrets.token_urlsafe(24)
        self.refresh[token] = {"username": username, "scope": scope, "live": True}
        return token

    def new_access(self, username, scope):
        token = "at-" + secrets.token_urlsafe(24)
        self.access[token] = {
            "username": username,
            "scope": scope,
            "expires_at": time.time() + self.access_ttl,
            "live": True,
        }
        return token

    def token_answer(self, username, scope, refresh_token=None):
        answer = {
            "access_token": self.new_access(username, scope),
            "token_type": "Bearer",
            "expires_in": int(self.access_ttl),
            "scope": scope,
        }
        if refresh_token:
            answer["refresh_token"] = refresh_token
        return answer


STATE = State()


def b64url_sha256(verifier):
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def check_client(form, headers, require_secret=False):
    """Checks the client credentials from HTTP Basic auth or the form."""
    client_id = form.get("client_id")
    secret = form.get("client_secret")
    auth = headers.get("Authorization", "")
    if auth[:6].lower() == "basic ":
        try:
            raw = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8")
            basic_id, basic_secret = raw.split(":", 1)
        except Exception:
            raise OAuthError(401, "invalid_client", "malformed Basic credentials")
        basic_id = urllib.parse.unquote_plus(basic_id)
        basic_secret = urllib.parse.unquote_plus(basic_secret)
        if client_id is not None and client_id != basic_id:
            raise OAuthError(401, "invalid_client", "client_id differs from Basic auth")
        client_id, secret = basic_id, basic_secret
    if client_id is None:
        raise OAuthError(401, "invalid_client", "no client_id")
    if client_id != CLIENT_ID:
        raise OAuthError(401, "invalid_client", f"unknown client {client_id!r}")
    if secret is not None and secret != CLIENT_SECRET:
        raise OAuthError(401, "invalid_client", "wrong client_secret")
    if require_secret and secret is None:
        raise OAuthError(401, "invalid_client", "client_secret required")


def token_endpoint(form, headers):
    s = STATE
    grant_type = form.get("grant_type", "")
    with s.lock:
        s.stats["token_requests"] += 1
        if grant_type == "refresh_token":
            s.stats["refreshes"] += 1
        elif grant_type == DEVICE_GRANT:
            s.stats["device_polls"] += 1
        elif grant_type == "authorization_code":
            s.stats["code_exchanges"] += 1
    try:
        with s.lock:
            if s.fail_token > 0:
                s.fail_token -= 1
                raise OAuthError(503, "temporarily_unavailable", "injected failure")
        check_client(form, headers)
        with s.lock:
            if grant_type == "refresh_token":
                return refresh_grant(form)
    except OAuthError:
        if grant_type == "refresh_token":
            with s.lock:
                s.stats["failed_refreshes"] += 1
        raise
    with s.lock:
        if grant_type == DEVICE_GRANT:
            return device_grant(form)
        if grant_type == "authorization_code":
            return code_grant(form)
    raise OAuthError(400, "unsupported_grant_type", f"grant_type {grant_type!r}")


def refresh_grant(form):
    s = STATE
    token = form.get("refresh_token", "")
    grant = s.refresh.get(token)
    if grant is None or not grant["live"]:
        raise OAuthError(400, "invalid_grant", "unknown, rotated or revoked refresh token")
    scope = form.get("scope") or grant["scope"]
    new_refresh = None
    if s.rotate:
        grant["live"] = False
        new_refresh = s.new_refresh(grant["username"], grant["scope"])
    return s.token_answer(grant["username"], scope, new_refresh)


def device_grant(form):
    s = STATE
    device = s.devices.get(form.get("device_code", ""))
    if device is None or device["done"]:
        raise OAuthError(400, "invalid_grant", "unknown or used device_code")
    if time.time() >= device["expires_at"]:
        raise OAuthError(400, "expired_token", "the device code expired")
    if not device["approved"]:
        raise OAuthError(400, "authorization_pending", "the user has not approved yet")
    device["done"] = True
    username = s.default_user
    return s.token_answer(username, device["scope"], s.new_refresh(username, device["scope"]))


def code_grant(form):
    s = STATE
    code = s.codes.pop(form.get("code", ""), None)  # one use only
    if code is None or time.time() >= code["expires_at"]:
        raise OAuthError(400, "invalid_grant", "unknown, used or expired code")
    if form.get("redirect_uri") != code["redirect_uri"]:
        raise OAuthError(400, "invalid_grant", "redirect_uri differs from the authorization")
    verifier = form.get("code_verifier")
    if not verifier or b64url_sha256(verifier) != code["challenge"]:
        raise OAuthError(400, "invalid_grant", "PKCE code_verifier does not match")
    username = code["username"]
    return s.token_answer(username, code["scope"], s.new_refresh(username, code["scope"]))


def device_endpoint(form, headers, base_url):
    check_client(form, headers)
    s = STATE
    with s.lock:
        device_code = "dc-" + secrets.token_urlsafe(24)
        letters = "BCDFGHJKLMNPQRSTVWXZ"
        user_code = "".join(secrets.choice(letters) for _ in range(8))
        user_code = user_code[:4] + "-" + user_code[4:]
        s.devices[device_code] = {
            "user_code": user_code,
            "scope": form.get("scope") or DEFAULT_SCOPE,
            "expires_at": time.time() + s.device_ttl,
            "approved": False,
            "done": False,
        }
        return {
            "device_code": device_code,
            "user_code": user_code,
            "verification_uri": base_url + "/activate",
            "verification_uri_complete": base_url + "/activate?user_code=" + user_code,
            "expires_in": s.device_ttl,
            "interval": 1,
        }


def authorize_endpoint(query):
    """Plays the user consenting at once; returns the redirect location."""
    if query.get("response_type") != "code":
        raise OAuthError(400, "unsupported_response_type", "response_type must be code")
    if query.get("client_id") != CLIENT_ID:
        raise OAuthError(400, "invalid_client", "unknown client_id")
    redirect_uri = query.get("redirect_uri")
    if not redirect_uri:
        raise OAuthError(400, "invalid_request", "redirect_uri missing")
    challenge = query.get("code_challenge")
    if not challenge or query.get("code_challenge_method") != "S256":
        raise OAuthError(400, "invalid_request", "PKCE with S256 is required")
    s = STATE
    with s.lock:
        code = "ac-" + secrets.token_urlsafe(24)
        s.codes[code] = {
            "redirect_uri": redirect_uri,
            "challenge": challenge,
            "scope": query.get("scope") or DEFAULT_SCOPE,
            "username": s.default_user,
            "expires_at": time.time() + CODE_TTL,
        }
    params = {"code": code}
    if "state" in query:
        params["state"] = query["state"]
    sep = "&" if "?" in redirect_uri else "?"
    return redirect_uri + sep + urllib.parse.urlencode(params)


def introspect_endpoint(form, headers):
    token = form.get("token")
    auth = headers.get("Authorization", "")
    if token is None and auth[:7].lower() == "bearer ":
        token = auth[7:].strip()
    s = STATE
    with s.lock:
        s.stats["introspections"] += 1
        a = s.access.get(token or "")
        if a is None or not a["live"] or time.time() >= a["expires_at"]:
            return {"active": False}
        return {
            "active": True,
            "username": a["username"],
            "scope": a["scope"],
            "client_id": CLIENT_ID,
            "token_type": "Bearer",
            "exp": int(a["expires_at"]),
        }


def control(path, body):
    s = STATE
    with s.lock:
        if path == "/control/grant":
            username = body.get("username") or s.default_user
            scope = body.get("scope") or DEFAULT_SCOPE
            token = s.new_refresh(username, scope, body.get("refresh_token"))
            return {"refresh_token": token, "username": username, "scope": scope}
        if path == "/control/approve":
            for device in s.devices.values():
                if device["user_code"] == body.get("user_code"):
                    device["approved"] = True
                    return {"approved": True}
            raise OAuthError(404, "not_found", "no such user_code")
        if path == "/control/revoke":
            n = 0
            for table in (s.refresh, s.access):
                for t in table.values():
                    if t["username"] == body.get("username") and t["live"]:
                        t["live"] = False
                        n += 1
            return {"revoked": n}
        if path == "/control/expire":
            n = 0
            now = time.time()
            for t in s.access.values():
                if t["username"] == body.get("username") and t["expires_at"] > now:
                    t["expires_at"] = now
                    n += 1
            return {"expired": n}
        if path == "/control/config":
            if "access_ttl" in body:
                s.access_ttl = body["access_ttl"]
            if "device_ttl" in body:
                s.device_ttl = body["device_ttl"]
            if "rotate" in body:
                s.rotate = bool(body["rotate"])
            if "default_user" in body:
                s.default_user = body["default_user"]
            if "fail_token" in body:
                s.fail_token = int(body["fail_token"])
            return config_view()
    raise OAuthError(404, "not_found", path)


def config_view():
    s = STATE
    return {
        "access_ttl": s.access_ttl,
        "device_ttl": s.device_ttl,
        "rotate": s.rotate,
        "default_user": s.default_user,
        "fail_token": s.fail_token,
    }


def stats_view():
    s = STATE
    with s.lock:
        now = time.time()
        live = {}
        for token, t in s.refresh.items():
            if t["live"]:
                live.setdefault(t["username"], []).append(token)
        access = {}
        for t in s.access.values():
            if t["live"] and t["expires_at"] > now:
                access[t["username"]] = access.get(t["username"], 0) + 1
        return dict(s.stats, live_refresh_tokens=live, live_access_tokens=access,
                    config=config_view())


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "collabd-fake-oauth/1"
    verbose = False

    def log_message(self, fmt, *args):
        if self.verbose:
            sys.stderr.write("oauth_server: " + (fmt % args) + "\n")

    def log_request(self, code="-", size="-"):
        # The path only, never a query string (it can carry codes).
        if self.verbose:
            path = self.path.split("?", 1)[0]
            sys.stderr.write(f"oauth_server: {self.command} {path} -> {code}\n")

    def send_json(self, status, obj, extra_headers=()):
        data = json.dumps(obj).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Length", str(len(data)))
        for k, v in extra_headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def send_error_json(self, e):
        body = {"error": e.error}
        if e.description:
            body["error_description"] = e.description
        headers = []
        if e.status == 401:
            headers.append(("WWW-Authenticate", 'Basic realm="collabd-test"'))
        self.send_json(e.status, body, headers)

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def base_url(self):
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def do_POST(self):
        raw = self.read_body()
        path = self.path.split("?", 1)[0]
        try:
            if path.startswith("/control/"):
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    raise OAuthError(400, "invalid_request", "body must be JSON")
                self.send_json(200, control(path, body))
                return
            form = dict(urllib.parse.parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
            if path == "/token":
                self.send_json(200, token_endpoint(form, self.headers))
            elif path == "/device":
                self.send_json(200, device_endpoint(form, self.headers, self.base_url()))
            elif path == "/introspect":
                self.send_json(200, introspect_endpoint(form, self.headers))
            else:
                raise OAuthError(404, "not_found", path)
        except OAuthError as e:
            self.send_error_json(e)

    def do_GET(self):
        path, _, qs = self.path.partition("?")
        query = dict(urllib.parse.parse_qsl(qs, keep_blank_values=True))
        try:
            if path == "/authorize":
                location = authorize_endpoint(query)
                self.send_response(302)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif path == "/control/stats":
                self.send_json(200, stats_view())
            elif path == "/activate":
                self.send_json(200, {"message": "approve with POST /control/approve"})
            elif path == "/introspect":
                self.send_json(200, introspect_endpoint(query, self.headers))
            else:
                raise OAuthError(404, "not_found", path)
        except OAuthError as e:
            self.send_error_json(e)


def exit_with_parent():
    """Ends the server when the test process that started it is gone."""
    parent = os.getppid()
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(0)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--access-ttl", type=int, default=3600)
    p.add_argument("--rotate", action="store_true")
    p.add_argument("--default-user", default="partners@brand.example")
    p.add_argument("--verbose", action="store_true", help="log each request to stderr")
    args = p.parse_args()
    STATE.access_ttl = args.access_ttl
    STATE.rotate = args.rotate
    STATE.default_user = args.default_user
    Handler.verbose = args.verbose

    server = ThreadingHTTPServer((args.host, args.port), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    threading.Thread(target=exit_with_parent, daemon=True).start()
    print(f"PORT {server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
