#!/usr/bin/env python3
"""Web Push end to end, through the server binary and web-push-testing, a push service emulator.

web-push-testing plays the browser and its push service: `POST /subscribe` with the server's
`applicationServerKey` (from `GET /push/server_key`) makes a subscription whose endpoint is the
emulator's own; a push to it is accepted (201) only when its VAPID token verifies with that key and
its `aes128gcm` payload decrypts with the subscription's key, and `POST /get-notifications` gives
back the decrypted payloads. So:

  * susan subscribes her session with the emulator's subscription; john follows her and likes her
    post: both pushes arrive, decrypted, naming john and each notification's type, in order;
  * after the emulator expires the subscription, the next push is answered 410 and the server
    removes the subscription (`GET /push/subscription` is 404);
  * the server's log (at info) holds neither the endpoint nor the subscription's keys.

Then nothing due is lost, and nothing is sent twice, with a push service of this script's own
(it answers 500 or 201 as told, and counts what it took per endpoint): on a fresh PostgreSQL
database (SQLite when PostgreSQL is not reachable, outside CI) with two API processes,

  * 20 notifications are made while the push service answers 500: each push fails once; both
    processes are then killed with SIGKILL, with every push due (waiting for its retry);
  * the push service now answers 201 and the processes start again: every push arrives, each
    endpoint's taken exactly once;
  * 20 more notifications with nothing crashing: each taken exactly once, though two workers
    claim from the same table.

The emulator and the server are killed by PID at the end.
"""

from __future__ import annotations

import http.client
import http.server
import json
import threading
import os
import secrets
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in .ci/
import e2e  # noqa: E402  (.ci/e2e.py: the HTTP helper)
import durability as ci  # noqa: E402  (processes, clean-up)

Mismatch, check = ci.Mismatch, ci.require


def expect(port: int, method: str, path: str, status: int, token=None, body=None, what=""):
    got, _, parsed = e2e.request(port, method, path, token, body)
    if got != status:
        raise Mismatch(f"{what or method + ' ' + path}: expected {status}, got {got} {parsed}")
    return parsed


def emulator(port: int, path: str, body: dict) -> tuple[int, dict | None]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("POST", path, body=json.dumps(body).encode(),
                     headers={"content-type": "application/json"})
        resp = conn.getresponse()
        raw = resp.read()
        try:
            return resp.status, json.loads(raw)
        except ValueError:
            return resp.status, None
    finally:
        conn.close()


def messages(port: int, client_hash: str, count: int, wait: float = 20.0) -> list[dict]:
    """The first `count` decrypted payloads the emulator received for `client_hash`."""
    deadline = time.monotonic() + wait
    got: list = []
    while time.monotonic() < deadline:
        status, body = emulator(port, "/get-notifications", {"clientHash": client_hash})
        check(status == 200, f"get-notifications answered {status}: {body}")
        got = body["data"]["messages"]
        if len(got) >= count:
            return [json.loads(m) for m in got]
        time.sleep(0.2)
    raise Mismatch(f"{len(got)} pushes of {count} arrived within {wait:.0f} s: {got}")


class Service(http.server.BaseHTTPRequestHandler):
    """A push service: answers `STATE["answer"]`, counting the POSTs it took (201) per path."""

    protocol_version = "HTTP/1.1"
    STATE: dict = {"answer": 500, "tried": {}, "taken": {}}
    LOCK = threading.Lock()

    def do_POST(self) -> None:  # noqa: N802 (the standard library's name)
        self.rfile.read(int(self.headers.get("content-length", "0")))
        with self.LOCK:
            answer = self.STATE["answer"]
            tried = self.STATE["tried"]
            tried[self.path] = tried.get(self.path, 0) + 1
            if answer == 201:
                taken = self.STATE["taken"]
                taken[self.path] = taken.get(self.path, 0) + 1
        self.send_response(answer)
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, *_args) -> None:
        pass


def wait_for(what: str, condition, wait: float = 40.0) -> None:
    deadline = time.monotonic() + wait
    while not condition():
        check(time.monotonic() < deadline, f"{what}: not within {wait:.0f} s")
        time.sleep(0.1)


def durability(binary: str, workdir: str, in_ci: bool, log) -> None:
    service = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Service)
    service.daemon_threads = True
    threading.Thread(target=service.serve_forever, daemon=True).start()
    ci.CLEANUP.add(service.shutdown)
    state, lock = Service.STATE, Service.LOCK
    try:
        url = ci.PostgresDb(workdir, prefix="social_webpush").create()
        processes = 2
    except ci.Unreachable as err:
        if in_ci:
            raise Mismatch(f"{err} (in CI that is a failure, not a skip)") from None
        print(f"webpush: note: {err}; the durability part runs on SQLite, one process")
        url, processes = ci.SqliteDb(workdir).create(), 1
    secret = secrets.token_hex(32)
    servers = []
    for i in range(processes):
        server = ci.Server(binary, url, secret, workdir, f"durable-{i}")
        server.env = {"PUSH_ALLOW_PRIVATE_ENDPOINTS": "true"}
        server.start("first")
        servers.append(server)
    ports = [server.port for server in servers]

    def register(name: str, port: int) -> str:
        return expect(port, "POST", "/auth/register", 201, body={
            "username": name, "email": f"{name}@example.com",
            "password": f"password-of-{name}"})["access_token"]

    star = register("star", ports[0])
    fans = [f"fan{i}" for i in range(40)]
    p256dh = expect(ports[0], "GET", "/push/server_key", 200)["public_key"]  # any P-256 point
    for i, fan in enumerate(fans):
        token = register(fan, ports[i % processes])
        expect(ports[i % processes], "PUT", "/push/subscription", 200, token=token, body={
            "endpoint": f"http://127.0.0.1:{service.server_address[1]}/push/{fan}",
            "keys": {"p256dh": p256dh, "auth": "AAECAwQFBgcICQoLDA0ODw"}})

    first, second = fans[:20], fans[20:]
    for i, fan in enumerate(first):
        expect(ports[i % processes], "POST", f"/users/{fan}/follow", 201, token=star)

    def tried(names) -> bool:
        with lock:
            return all(state["tried"].get(f"/push/{n}", 0) >= 1 for n in names)

    wait_for("a first, failed attempt of each push", lambda: tried(first))
    for server in servers:
        server.stop()  # SIGKILL, every push due for a retry
    with lock:
        check(not state["taken"], f"a push was taken while the service refused: {state['taken']}")
        state["answer"] = 201
    log(f"20 pushes failed once (500), then {processes} API process(es) were killed with SIGKILL")

    for server in servers:
        server.start("after")
    ports = [server.port for server in servers]

    def taken(names) -> bool:
        with lock:
            return all(state["taken"].get(f"/push/{n}", 0) >= 1 for n in names)

    wait_for("every push due at the crash, after the restart", lambda: taken(first))
    log("after the restart every push due at the crash arrived")

    for i, fan in enumerate(second):
        expect(ports[i % processes], "POST", f"/users/{fan}/follow", 201, token=star)
    wait_for("every push of the second round", lambda: taken(second))
    time.sleep(1.5)  # a push sent twice would arrive by now
    with lock:
        twice = {path: n for path, n in state["taken"].items() if n != 1}
    check(not twice, f"pushes taken more than once: {twice}")
    check(len(state["taken"]) == len(fans), f"{len(state['taken'])} endpoints of {len(fans)}")
    log(f"{len(fans)} pushes, each taken exactly once by the push service, "
        f"with {processes} worker(s) claiming from one outbox")
    for server in servers:
        check(server.proc.poll() is None, f"{server.name} exited with {server.proc.returncode}")


def main() -> int:
    began = time.monotonic()
    script = sys.argv[1]
    binary_source = ci.server_binary("webpush")
    if binary_source is None:
        return 1
    workdir, watchdog = ci.start_run("webpush", float(os.environ.get("WEBPUSH_BUDGET_SECONDS", 90)))
    binary = ci.copy_binary(binary_source, workdir)

    def log(message):
        print(f"webpush: ok: {message}", flush=True)

    result = 1
    try:
        push_port = ci.free_port()
        peer_log = open(os.path.join(workdir, "web-push-testing.log"), "wb")
        peer = subprocess.Popen(["node", script, str(push_port)], cwd=workdir, stdout=peer_log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        ci.CLEANUP.add_process(peer)
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = http.client.HTTPConnection("127.0.0.1", push_port, timeout=2)
                conn.request("POST", "/status")
                if conn.getresponse().status == 200:
                    break
            except OSError:
                pass
            check(peer.poll() is None, f"web-push-testing exited with {peer.returncode}")
            check(time.monotonic() < deadline, "web-push-testing did not start within 30 s")
            time.sleep(0.2)

        server = ci.Server(binary, ci.SqliteDb(workdir).create(), secrets.token_hex(32), workdir,
                           "api")
        server.env = {"PUSH_ALLOW_PRIVATE_ENDPOINTS": "true", "RUST_LOG": "info"}
        server.start("run")
        api = server.port
        key = expect(api, "GET", "/push/server_key", 200)["public_key"]

        status, created = emulator(push_port, "/subscribe",
                                   {"userVisibleOnly": "true", "applicationServerKey": key})
        check(status == 200, f"subscribe answered {status}: {created}")
        sub = created["data"]
        susan = expect(api, "POST", "/auth/register", 201, body={
            "username": "susan", "email": "susan@example.com", "password": "password-of-susan"})
        john = expect(api, "POST", "/auth/register", 201, body={
            "username": "john", "email": "john@example.com", "password": "password-of-john",
            "display_name": "John"})
        expect(api, "PUT", "/push/subscription", 200, token=susan["access_token"], body={
            "endpoint": sub["endpoint"], "keys": sub["keys"]})
        log(f"susan subscribed with the emulator's subscription ({sub['endpoint']})")

        expect(api, "POST", "/users/susan/follow", 201, token=john["access_token"])
        post = expect(api, "POST", "/posts", 201, token=susan["access_token"],
                      body={"body": "pushed to a phone"})
        expect(api, "POST", f"/posts/{post['id']}/like", 201, token=john["access_token"])
        follow, like = messages(push_port, sub["clientHash"], 2)
        check(follow["type"] == "follow" and follow["account"]["username"] == "john",
              f"the first push: {follow}")
        check(follow["body"] == "John followed you", f"the first push's body: {follow}")
        check(like["type"] == "like" and like["post_id"] == post["id"], f"the second push: {like}")
        log("a follow and a like arrived, VAPID-verified and decrypted by the emulator")

        status, body = emulator(push_port, f"/expire-subscription/{sub['clientHash']}", {})
        check(status == 200, f"expire-subscription answered {status}: {body}")
        other = expect(api, "POST", "/posts", 201, token=susan["access_token"],
                       body={"body": "pushed to nobody"})
        expect(api, "POST", f"/posts/{other['id']}/like", 201, token=john["access_token"])
        deadline = time.monotonic() + 20
        while True:
            got, _, _ = e2e.request(api, "GET", "/push/subscription", susan["access_token"])
            if got == 404:
                break
            check(time.monotonic() < deadline, "the expired subscription is still there after 20 s")
            time.sleep(0.2)
        log("the emulator's 410 for an expired subscription removed it")
        with open(server.log_path, encoding="utf-8", errors="replace") as f:
            logged = f.read()
        for what, value in (("endpoint", sub["clientHash"]), ("auth secret", sub["keys"]["auth"]),
                            ("p256dh key", sub["keys"]["p256dh"])):
            check(value not in logged, f"the server logged the subscription's {what}")
        log("neither the endpoint nor the keys are in the server's log, though it logs at info")
        server.stop()

        durability(binary, workdir, os.environ.get("CI") == "true", log)
        print(f"webpush: PASS ({time.monotonic() - began:.1f} s)")
        result = 0
    except Exception as err:
        print(f"webpush: FAIL: {type(err).__name__}: {err}")
        for name in ("api-run.log", "web-push-testing.log", "durable-0-first.log",
                     "durable-0-after.log", "durable-1-after.log"):
            path = os.path.join(workdir, name)
            if os.path.exists(path):
                with open(path, encoding="utf-8", errors="replace") as f:
                    tail = f.readlines()[-15:]
                if tail:
                    print(f"--- last lines of {name}:\n" + "".join(tail), end="")
    finally:
        ci.CLEANUP.run()
        watchdog.finish()
    return result


if __name__ == "__main__":
    sys.exit(main())
