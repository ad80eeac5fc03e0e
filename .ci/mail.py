#!/usr/bin/env python3
"""Mail end to end, through the server binary and a real SMTP exchange.

Two API processes (A and B) share one fresh PostgreSQL database and mail through an SMTP server
of this script's own on a free loopback port (the standard library has none any more, so it
speaks the few commands a client needs: EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT):

  * users registered through A and B each get one verification mail (never two: both processes'
    outbox workers claim from one table); its token, used through the other process, verifies the
    address (`email_verified`), and a second use is 400 `invalid_token`;
  * a forgotten password asked through A for a known and an unknown address answers 202 both
    times; one reset mail arrives, for the known one; the reset through B ends the old session
    (401) and the new password logs in;
  * neither process's log holds a token or a line of a message body, though both log at info.

With CI=true an unreachable PostgreSQL is a failure, otherwise a skip. The database is dropped and
both processes are killed by PID at the end.
"""

from __future__ import annotations

import os
import queue
import re
import secrets
import socketserver
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in .ci/
import e2e  # noqa: E402  (.ci/e2e.py: the HTTP helper)
import durability as ci  # noqa: E402  (processes, databases, clean-up)

Mismatch, check = ci.Mismatch, ci.require
TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")
INBOX: "queue.Queue[tuple[list[str], str]]" = queue.Queue()


class Smtp(socketserver.StreamRequestHandler):
    """One SMTP session; each message taken goes to INBOX as (recipients, text)."""

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        self.reply("220 mail.ci ESMTP")
        recipients: list[str] = []
        while True:
            line = self.rfile.readline().decode("utf-8", "replace")
            if not line:
                return
            command = line.strip().upper()
            if command.startswith("EHLO"):
                self.wfile.write(b"250-mail.ci\r\n250 8BITMIME\r\n")
            elif command.startswith(("HELO", "NOOP")):
                self.reply("250 mail.ci")
            elif command.startswith(("MAIL FROM:", "RSET")):
                recipients = []
                self.reply("250 OK")
            elif command.startswith("RCPT TO:"):
                recipients.append(line.strip()[8:].strip().strip("<>"))
                self.reply("250 OK")
            elif command == "DATA":
                self.reply("354 go ahead")
                lines = []
                while True:
                    data = self.rfile.readline().decode("utf-8", "replace")
                    if data in ("", ".\r\n"):
                        break
                    lines.append(data[1:] if data.startswith(".") else data)
                INBOX.put((recipients, "".join(lines)))
                recipients = []
                self.reply("250 OK queued")
            elif command.startswith("QUIT"):
                self.reply("221 bye")
                return
            else:
                self.reply("502 not implemented")


def next_mail(wait: float = 20.0) -> tuple[list[str], str]:
    try:
        return INBOX.get(timeout=wait)
    except queue.Empty:
        raise Mismatch(f"no mail arrived within {wait:.0f} s") from None


def quiet(wait: float) -> bool:
    """Whether no mail arrives within `wait` seconds."""
    try:
        INBOX.get(timeout=wait)
        return False
    except queue.Empty:
        return True


def body_of(text: str) -> str:
    body = text.split("\r\n\r\n", 1)[-1]
    return body.replace("=\r\n", "").replace("=3D", "=")


def token_of(text: str) -> str:
    for line in body_of(text).splitlines():
        if TOKEN.match(line.strip()):
            return line.strip()
    raise Mismatch(f"no token in the mail:\n{text}")


def expect(port: int, method: str, path: str, status: int, token=None, body=None, what=""):
    got, _, parsed = e2e.request(port, method, path, token, body)
    if got != status:
        raise Mismatch(f"{what or method + ' ' + path}: expected {status}, got {got} {parsed}")
    return parsed


def main() -> int:
    began = time.monotonic()
    in_ci = os.environ.get("CI") == "true"
    binary_source = ci.server_binary("mail")
    if binary_source is None:
        return 1
    workdir, watchdog = ci.start_run("mail", float(os.environ.get("MAIL_BUDGET_SECONDS", 90)))
    binary = ci.copy_binary(binary_source, workdir)
    smtp = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Smtp)
    smtp.daemon_threads = True
    threading.Thread(target=smtp.serve_forever, daemon=True).start()
    ci.CLEANUP.add(smtp.shutdown)

    def log(message):
        print(f"mail: ok: {message}", flush=True)

    result = 1
    tokens_seen: list[str] = []
    try:
        db = ci.PostgresDb(workdir, prefix="social_mail")
        try:
            url = db.create()
        except ci.Unreachable as err:
            if in_ci:
                print(f"mail: FAIL: {err} (in CI that is a failure, not a skip)")
                return 1
            print(f"mail: SKIP: {err} (outside CI this is a skip)")
            return 0
        secret = secrets.token_hex(32)
        servers = []
        for name in ("mail-a", "mail-b"):
            server = ci.Server(binary, url, secret, workdir, name)
            server.env = {
                "SMTP_URL": f"smtp://127.0.0.1:{smtp.server_address[1]}",
                "MAIL_FROM": "Social CI <no-reply@social.ci>",
                "PUBLIC_URL": "https://app.ci",
                "RUST_LOG": "info",
            }
            server.start("run")
            servers.append(server)
        a, b = (server.port for server in servers)

        users = [f"mailer{i}" for i in range(6)]
        sessions = {}
        for i, name in enumerate(users):
            body = expect(a if i % 2 == 0 else b, "POST", "/auth/register", 201, body={
                "username": name, "email": f"{name}@example.com",
                "password": f"password-of-{name}"})
            check(body["user"]["email_verified"] is False, f"{name} is verified at registration")
            sessions[name] = body["access_token"]
        mails = {}
        for _ in users:
            recipients, text = next_mail()
            check(len(recipients) == 1, f"one recipient: {recipients}")
            check(recipients[0] not in mails, f"{recipients[0]} was mailed twice")
            mails[recipients[0]] = token_of(text)
        check(quiet(1.0), "a mail more than the registrations")
        log(f"{len(users)} registrations through A and B, one verification mail each")

        for i, name in enumerate(users):
            token = mails[f"{name}@example.com"]
            tokens_seen.append(token)
            port = b if i % 2 == 0 else a  # the other process than the one that registered
            expect(port, "POST", "/auth/email/verify", 204, body={"token": token})
            expect(port, "POST", "/auth/email/verify", 400, body={"token": token},
                   what=f"a second use of {name}'s token")
            me = expect(a, "GET", "/users/me", 200, token=sessions[name])
            check(me["email_verified"] is True, f"{name} is not verified: {me}")
        log("each token verified its address through the other process, once")

        expect(a, "POST", "/auth/password/forgot", 202, body={"email": "MAILER0@example.com"})
        expect(a, "POST", "/auth/password/forgot", 202, body={"email": "nobody@example.com"})
        recipients, text = next_mail()
        check(recipients == ["mailer0@example.com"], f"the reset went to {recipients}")
        check("https://app.ci/reset?token=" in body_of(text), f"no link in:\n{text}")
        reset = token_of(text)
        tokens_seen.append(reset)
        check(quiet(1.5), "a mail for an address without an account")
        expect(b, "POST", "/auth/password/reset", 204,
               body={"token": reset, "new_password": "a new password for ci"})
        expect(a, "GET", "/users/me", 401, token=sessions["mailer0"], what="the old session")
        expect(b, "POST", "/auth/login", 200,
               body={"username": "mailer0", "password": "a new password for ci"})
        log("forgot answered 202 for a known and an unknown address, mailed the known one; the "
            "reset ended the old session")

        for server in servers:
            check(server.proc.poll() is None, f"{server.name} exited with {server.proc.returncode}")
            with open(server.log_path, encoding="utf-8", errors="replace") as f:
                logged = f.read()
            for token in tokens_seen:
                check(token not in logged, f"{server.name} logged a token")
            for words in ("Use this code", "ignore this mail", "a new password for ci"):
                check(words not in logged, f"{server.name} logged {words!r}")
        log("no token, message body or password in either log")
        print(f"mail: PASS ({time.monotonic() - began:.1f} s)")
        result = 0
    except Exception as err:
        print(f"mail: FAIL: {type(err).__name__}: {err}")
        for name in ("mail-a-run.log", "mail-b-run.log"):
            path = os.path.join(workdir, name)
            if os.path.exists(path):
                with open(path, encoding="utf-8", errors="replace") as f:
                    tail = f.readlines()[-10:]
                if tail:
                    print(f"--- last lines of {name}:\n" + "".join(tail), end="")
    finally:
        ci.CLEANUP.run()
        watchdog.finish()
    return result


if __name__ == "__main__":
    sys.exit(main())
