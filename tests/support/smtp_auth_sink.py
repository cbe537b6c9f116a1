#!/usr/bin/env python3
"""An SMTP sink for collabd's tests that requires AUTH: XOAUTH2 or PLAIN, no TLS.

Run: python3 tests/support/smtp_auth_sink.py --port 0 --maildir DIR --auth-log FILE \
         --introspect http://127.0.0.1:N/introspect [--user U --password P]
(prints "PORT n" as its first line).

XOAUTH2 is accepted when the token server's /introspect calls the bearer token active
and names the same user as the SASL `user=`; PLAIN when user and password match the
arguments. Everything else gets 535. Each AUTH attempt becomes one line of the auth log,
`MECHANISM user=USER accepted` or `MECHANISM user=USER rejected: REASON` (never a token or
password). Delivered messages land in a Maildir, as with aiosmtpd.handlers.Mailbox, with
an `X-Auth-User` header naming who sent them.
"""

import argparse
import asyncio
import base64
import json
import os
import signal
import sys
import threading
import time
import urllib.parse
import urllib.request

from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import MISSING, SMTP, AuthResult

TEMPFAIL = "454 4.7.0 Temporary authentication failure"


class AuthLog:
    def __init__(self, path):
        self.path = path
        self.lock = threading.Lock()
        open(path, "a").close()

    def write(self, mechanism, user, ok, reason=""):
        line = f"{mechanism} user={user} " + ("accepted" if ok else f"rejected: {reason}")
        with self.lock, open(self.path, "a") as f:
            f.write(line + "\n")


def introspect(url, token):
    """The token server's verdict: (active, username)."""
    data = urllib.parse.urlencode({"token": token}).encode()
    req = urllib.request.Request(url, data=data, method="POST")
    req.add_header("Content-Type", "application/x-www-form-urlencoded")
    with urllib.request.urlopen(req, timeout=10) as resp:
        answer = json.load(resp)
    return answer.get("active") is True, answer.get("username")


class Handler(Mailbox):
    def __init__(self, maildir, introspect_url, log, user, password, google_errors):
        super().__init__(maildir)
        self.introspect_url = introspect_url
        self.log = log
        self.user = user
        self.password = password
        self.google_errors = google_errors

    def prepare_message(self, session, envelope):
        message = super().prepare_message(session, envelope)
        if session.authenticated:
            message["X-Auth-User"] = str(session.auth_data)
        return message

    async def auth_XOAUTH2(self, server, args):
        """SASL XOAUTH2: base64("user=U\\x01auth=Bearer T\\x01\\x01")."""
        if len(args) == 1:
            blob = await server.challenge_auth("")
            if blob is MISSING:
                self.log.write("XOAUTH2", "-", False, "aborted or not base64")
                return AuthResult(success=False, handled=True)
        else:
            try:
                blob = base64.b64decode(args[1], validate=True)
            except ValueError:
                self.log.write("XOAUTH2", "-", False, "not base64")
                await server.push("501 5.5.2 Can't decode base64")
                return AuthResult(success=False, handled=True)
        fields = {}
        for part in blob.decode("utf-8", "replace").split("\x01"):
            key, sep, value = part.partition("=")
            if sep:
                fields[key] = value
        user = fields.get("user", "-")
        auth = fields.get("auth", "")
        if auth[:7].lower() != "bearer ":
            self.log.write("XOAUTH2", user, False, "malformed")
            return AuthResult(success=False, handled=False)
        try:
            active, owner = await asyncio.to_thread(
                introspect, self.introspect_url, auth[7:].strip()
            )
        except Exception as e:  # the token server is down or answers nonsense
            self.log.write("XOAUTH2", user, False, f"introspection failed ({type(e).__name__})")
            return AuthResult(success=False, handled=False, message=TEMPFAIL)
        if active and owner == user:
            self.log.write("XOAUTH2", user, True)
            return AuthResult(success=True, auth_data=user)
        reason = "inactive token" if not active else f"token belongs to {owner}"
        self.log.write("XOAUTH2", user, False, reason)
        if self.google_errors:
            # Gmail's way: a 334 carrying a JSON error, the client answers with an empty
            # line, then the final 535.
            error = {"status": "401", "schemes": "Bearer", "scope": "https://mail.google.com/"}
            answer = await server.challenge_auth(json.dumps(error))
            if answer is MISSING:
                return AuthResult(success=False, handled=True)
        return AuthResult(success=False, handled=False)

    def authenticate_plain(self, server, session, envelope, mechanism, auth_data):
        """The `authenticator` for aiosmtpd's built-in PLAIN."""
        user = auth_data.login.decode("utf-8", "replace")
        ok = (
            self.user is not None
            and user == self.user
            and auth_data.password.decode("utf-8", "replace") == self.password
        )
        self.log.write(mechanism, user, ok, "wrong user or password")
        return AuthResult(success=ok, handled=False, auth_data=user if ok else None)


def exit_with_parent():
    parent = os.getppid()
    while True:
        time.sleep(0.5)
        if os.getppid() != parent:
            os._exit(0)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--maildir", required=True)
    p.add_argument("--auth-log", required=True)
    p.add_argument("--introspect", required=True, help="the token server's /introspect URL")
    p.add_argument("--user", help="the one user PLAIN accepts")
    p.add_argument("--password", help="that user's password")
    p.add_argument("--no-require-auth", action="store_true", help="take mail without AUTH")
    p.add_argument(
        "--google-errors",
        action="store_true",
        help="on a refused XOAUTH2, send Gmail's 334 JSON challenge before the 535",
    )
    args = p.parse_args()

    handler = Handler(
        args.maildir,
        args.introspect,
        AuthLog(args.auth_log),
        args.user,
        args.password,
        args.google_errors,
    )
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)

    def factory():
        return SMTP(
            handler,
            hostname="sink.collabd.test",
            auth_require_tls=False,
            auth_required=not args.no_require_auth,
            auth_exclude_mechanism=["LOGIN"],
            authenticator=handler.authenticate_plain,
            loop=loop,
        )

    server = loop.run_until_complete(loop.create_server(factory, args.host, args.port))
    port = server.sockets[0].getsockname()[1]
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    threading.Thread(target=exit_with_parent, daemon=True).start()
    print(f"PORT {port}", flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()


if __name__ == "__main__":
    # aiosmtpd warns that AUTH without TLS is unsafe; this sink lives on loopback.
    import warnings

    warnings.simplefilter("ignore")
    import logging

    logging.getLogger("mail.log").setLevel(logging.ERROR)
    sys.exit(main())
