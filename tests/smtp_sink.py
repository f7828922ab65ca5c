#!/usr/bin/python3
"""An SMTP server for the live mail tests of cuentas (Debian's python3-aiosmtpd).

    smtp_sink.py HOST PORT MAILDIR CERT KEY [LOGIN PASSWORD | --xoauth2 MAILBOX TOKENS]

Requires STARTTLS with the given certificate (and, given LOGIN and PASSWORD, AUTH with them,
answering 535 to any other; given --xoauth2, AUTH XOAUTH2 only, as Microsoft 365 and Gmail
take it, for MAILBOX with a bearer token that is a line of the file TOKENS at that moment,
answering 535 to any other), stores every message it accepts in MAILDIR, and
answers 550 for any recipient whose address contains "rechazado", as a mail server does for a
mailbox that does not exist, and 554 to every message while a file MAILDIR.bloqueo exists, as a
relay does that refuses us by policy. Prints "ready" once it listens; stops on SIGTERM.
"""
import base64
import mailbox
import os
import signal
import ssl
import sys

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


class Sink:
    def __init__(self, maildir):
        self.box = mailbox.Maildir(maildir, create=True)
        self.block = maildir.rstrip("/") + ".bloqueo"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if "rechazado" in address.lower():
            return "550 5.1.1 <%s>: Recipient address rejected: User unknown" % address
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if os.path.exists(self.block):
            return "554 5.7.1 Message refused by policy"
        self.box.add(envelope.original_content or envelope.content)
        return "250 Message accepted for delivery"


class Login:
    def __init__(self, login, password):
        self.login = login.encode()
        self.password = password.encode()

    def __call__(self, server, session, envelope, mechanism, auth_data):
        ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
            self.login,
            self.password,
        )
        # handled=False: aiosmtpd answers 535 itself (True would leave the client waiting).
        return AuthResult(success=ok, handled=False)


class Xoauth2Sink(Sink):
    """A relay that takes only OAuth 2.0 tokens: the ones its token endpoint issued and has not
    revoked (the lines of a file the endpoint writes)."""

    def __init__(self, maildir, mailbox_name, tokens):
        super().__init__(maildir)
        self.mailbox_name = mailbox_name
        self.tokens = tokens

    async def auth_XOAUTH2(self, server, args):
        try:
            text = base64.b64decode(args[1], validate=True).decode()
        except Exception:
            return AuthResult(success=False, handled=False)
        fields = dict(p.split("=", 1) for p in text.split("\x01") if "=" in p)
        bearer = fields.get("auth", "")
        token = bearer[len("Bearer "):] if bearer.startswith("Bearer ") else ""
        try:
            with open(self.tokens) as f:
                valid = set(f.read().split())
        except FileNotFoundError:
            valid = set()
        ok = fields.get("user") == self.mailbox_name and token in valid
        return AuthResult(success=ok, handled=False, auth_data=fields.get("user"))


def main():
    host, port, maildir, cert, key = sys.argv[1:6]
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    login = {}
    handler = Sink(maildir)
    if len(sys.argv) == 9 and sys.argv[6] == "--xoauth2":
        handler = Xoauth2Sink(maildir, sys.argv[7], sys.argv[8])
        login = dict(auth_required=True, auth_require_tls=True, auth_exclude_mechanism=["LOGIN", "PLAIN"])
    elif len(sys.argv) == 8:
        login = dict(authenticator=Login(*sys.argv[6:8]), auth_required=True, auth_require_tls=True)
    controller = Controller(
        handler,
        hostname=host,
        port=int(port),
        tls_context=context,
        require_starttls=True,
        **login,
    )
    controller.start()
    print("ready", flush=True)
    signal.sigwait([signal.SIGTERM, signal.SIGINT])
    controller.stop()


if __name__ == "__main__":
    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM, signal.SIGINT])
    main()
