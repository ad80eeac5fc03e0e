#!/usr/bin/env python3
"""Two API processes on one PostgreSQL database behave as one service.

Both replicas get the same JWT_SECRET and a fresh database; a client alternates between them:

  * a token issued by one (registration, login) is accepted by the other, and a removed account's
    token is refused by both;
  * every write made through one (register, follow, post, PATCH /users/me, unfollow, delete post,
    delete account) is visible through the other on the very next read: profiles and counts,
    follower and following lists, relationships and viewer state, posts, a user's posts, timelines;
  * a page cursor issued by one continues on the other (cursors are keyed from the shared secret);
  * identical follow requests racing through both replicas create one follow (one 201, the rest
    200), and after a mixed concurrent burst through both every count equals its rows (read in the
    database with psql) and both replicas answer the same counts;
  * an event stream opened on one replica receives a post written through the other, and a
    reconnect to the other with `Last-Event-ID` replays what was missed, in order, then goes on
    live;
  * then a long random sequence of writes, each through the replica the previous read did not use,
    each checked through the other against a model of what the state must be;
  * last, two more replicas with REDIS_URL on a throwaway redis-server of their own (a free port;
    the machine's Redis is left alone) count one user's 5 streams between them, draw on one
    login quota between them, and once that Redis
    is stopped each goes on answering with a quota of its own, logging the outage once.

With CI=true an unreachable PostgreSQL is a failure, otherwise a skip. The database is dropped and
both processes are killed by PID at the end.
"""

from __future__ import annotations

import collections
import concurrent.futures
import http.client
import json
import os
import random
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))

sys.dont_write_bytecode = True  # no __pycache__ in .ci/
import e2e  # noqa: E402  (.ci/e2e.py: the HTTP helper and the graph model)

# The process, database and clean-up helpers are shared with the durability check.
import durability as ci  # noqa: E402

Mismatch, check = ci.Mismatch, ci.require


class Client:
    """A client that talks to replica A or B; every call names the replica it goes through."""

    def __init__(self, ports: dict[str, int]):
        self.ports = ports
        self.requests = collections.Counter()

    def call(self, via: str, method: str, path: str, token: str | None = None, body=None,
             headers: dict[str, str] | None = None):
        """(status, headers, parsed body); an answer that is not JSON fails the check."""
        self.requests[via] += 1
        return e2e.request(self.ports[via], method, path, token, body, strict_json=True,
                           headers=headers)

    def expect(self, via, method, path, status, token=None, body=None, what="", headers=None):
        got, headers, parsed = self.call(via, method, path, token, body, headers)
        if got != status:
            raise Mismatch(f"{what or method + ' ' + path} through {via}: expected {status}, "
                           f"got {got} {parsed}")
        return parsed, headers


def other(via: str) -> str:
    return "B" if via == "A" else "A"


def names(items, key="user") -> list[str]:
    return [i[key]["username"] for i in items]


def scripted(c: Client, log) -> None:
    """The walk-through: each write through one replica, each read through the other."""
    pw = "replicas-password"

    def register(via, name):
        body, _ = c.expect(via, "POST", "/auth/register", 201,
                           body={"username": name, "email": f"{name}@example.com", "password": pw})
        return body["access_token"]

    # Tokens cross replicas.
    alice = register("A", "alice")
    me, _ = c.expect("B", "GET", "/users/me", 200, alice, what="alice's token from A, on B")
    check(me["username"] == "alice", f"B says the token is {me['username']}")
    bob = register("B", "bob")
    c.expect("A", "GET", "/users/me", 200, bob, what="bob's token from B, on A")
    login, _ = c.expect("B", "POST", "/auth/login", 200, body={"username": "alice", "password": pw})
    c.expect("A", "GET", "/users/me", 200, login["access_token"], what="a login token from B, on A")
    login, _ = c.expect("A", "POST", "/auth/login", 200,
                        body={"username": "bob@example.com", "password": pw})
    c.expect("B", "GET", "/users/me", 200, login["access_token"], what="a login token from A, on B")
    # A registration through A is seen by B's uniqueness check.
    got, _, body = c.call("B", "POST", "/auth/register", None,
                          {"username": "ALICE", "email": "other@example.com", "password": pw})
    check(got == 409 and body.get("code") == "username_taken",
          f"registering ALICE through B after alice through A: {got} {body}")
    log("tokens issued by either replica work on both; registrations are seen by both")

    # Follow through A, read through B.
    rel, _ = c.expect("A", "POST", "/users/bob/follow", 201, alice)
    followed_at = rel["followed_at"]
    prof, _ = c.expect("B", "GET", "/users/bob", 200, alice)
    check(prof["followers_count"] == 1 and prof["viewer"]["following"],
          f"B after alice follows bob through A: {prof}")
    prof, _ = c.expect("B", "GET", "/users/alice", 200)
    check(prof["following_count"] == 1, f"B: alice's following_count {prof['following_count']}")
    page, _ = c.expect("B", "GET", "/users/bob/followers", 200)
    check(names(page["items"]) == ["alice"], f"B: bob's followers {page}")
    page, _ = c.expect("B", "GET", "/users/alice/following", 200)
    check(names(page["items"]) == ["bob"], f"B: alice's following {page}")
    rels, _ = c.expect("B", "GET", "/relationships?users=bob", 200, alice)
    check(rels[0]["following"] and rels[0]["followed_at"] == followed_at,
          f"B: relationships {rels}")
    rel, _ = c.expect("B", "POST", "/users/bob/follow", 200, alice, what="repeat follow through B")
    check(rel["followed_at"] == followed_at, "the repeat through B changed followed_at")
    log("a follow through one replica is on the other's profile, lists and relationships")

    # Post through B, read through A.
    post, headers = c.expect("B", "POST", "/posts", 201, bob, {"body": "hello from B"})
    pid = post["id"]
    check(headers.get("location") == f"/posts/{pid}", f"Location {headers.get('location')}")
    got, _ = c.expect("A", "GET", f"/posts/{pid}", 200)
    check(got["body"] == "hello from B", f"A: post {got}")
    page, _ = c.expect("A", "GET", "/timeline", 200, alice)
    check([p["id"] for p in page["items"]] == [pid], f"A: alice's timeline {page}")
    page, _ = c.expect("A", "GET", "/users/bob/posts", 200)
    check([p["id"] for p in page["items"]] == [pid], f"A: bob's posts {page}")
    prof, _ = c.expect("A", "GET", "/users/bob", 200)
    check(prof["posts_count"] == 1, f"A: bob's posts_count {prof['posts_count']}")
    log("a post through one replica is in the other's post, lists, timeline and counts")

    # PATCH through B, read through A.
    c.expect("B", "PATCH", "/users/me", 200, alice, {"display_name": "Alice A.", "bio": "hi"})
    prof, _ = c.expect("A", "GET", "/users/alice", 200)
    check((prof["display_name"], prof["bio"]) == ("Alice A.", "hi"), f"A: alice {prof}")
    page, _ = c.expect("A", "GET", "/users/bob/followers", 200)
    check(page["items"][0]["user"]["display_name"] == "Alice A.", f"A: card {page}")
    c.expect("A", "PATCH", "/users/me", 200, alice, {"bio": None})
    prof, _ = c.expect("B", "GET", "/users/me", 200, alice)
    check((prof["display_name"], prof["bio"]) == ("Alice A.", None), f"B: alice {prof}")
    log("profile changes through one replica are read back through the other")

    # An Idempotency-Key is shared: a repeat through the other replica replays the first answer.
    key = {"idempotency-key": "replicas-key-1"}
    first, first_headers = c.expect("A", "POST", "/posts", 201, bob, {"body": "once only"},
                                    headers=key)
    again, again_headers = c.expect("B", "POST", "/posts", 201, bob, {"body": "once only"},
                                    headers=key)
    check(again == first and again_headers.get("idempotent-replayed") == "true"
          and again_headers.get("location") == first_headers.get("location"),
          f"B replays A's answer: {again} {again_headers}")
    c.expect("B", "POST", "/posts", 422, bob, {"body": "another"}, headers=key,
             what="the key with another body through B")
    c.expect("A", "DELETE", f"/posts/{first['id']}", 204, bob)
    log("an Idempotency-Key written through one replica is replayed through the other")

    # Cursors cross replicas.
    ids = [pid]
    for i in range(3):
        via = "AB"[i % 2]
        post, _ = c.expect(via, "POST", "/posts", 201, bob, {"body": f"page {i}"})
        ids.append(post["id"])
    seen = []
    path, via = "/users/bob/posts?limit=1", "A"
    while path:
        page, headers = c.expect(via, "GET", path, 200, what=f"GET {path}")
        seen += [p["id"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor:
            check(f"rel=\"next\"" in headers.get("link", ""), f"no Link header: {headers}")
        path = f"/users/bob/posts?limit=1&cursor={urllib.parse.quote(cursor)}" if cursor else None
        via = other(via)
    check(seen == list(reversed(ids)), f"paging across replicas gave {seen}, expected "
                                       f"{list(reversed(ids))}")
    log("cursors issued by one replica continue on the other")

    # Unfollow through A, read through B.
    c.expect("A", "DELETE", "/users/bob/follow", 204, alice)
    prof, _ = c.expect("B", "GET", "/users/bob", 200, alice)
    check(prof["followers_count"] == 0 and not prof["viewer"]["following"], f"B: bob {prof}")
    page, _ = c.expect("B", "GET", "/users/bob/followers", 200)
    check(page["items"] == [], f"B: bob's followers {page}")
    page, _ = c.expect("B", "GET", "/timeline", 200, alice)
    check(page["items"] == [], f"B: alice's timeline after the unfollow {page}")
    log("an unfollow through one replica is gone from the other's lists and timeline")

    # Delete a post through A, read through B.
    c.expect("A", "DELETE", f"/posts/{pid}", 204, bob)
    c.expect("B", "GET", f"/posts/{pid}", 404, what="the deleted post through B")
    prof, _ = c.expect("B", "GET", "/users/bob", 200)
    check(prof["posts_count"] == 3, f"B: bob's posts_count {prof['posts_count']}")
    c.expect("B", "DELETE", f"/posts/{pid}", 404, bob, what="deleting it again through B")
    log("a deleted post is gone through the other replica")

    # Remove an account through B: its token is refused by A at once.
    carol = register("A", "carol")
    c.expect("B", "POST", "/users/alice/follow", 201, carol)
    c.expect("B", "DELETE", "/users/me", 204, carol)
    c.expect("A", "GET", "/users/me", 401, carol, what="a removed account's token on A")
    c.expect("A", "GET", "/users/carol", 404)
    prof, _ = c.expect("A", "GET", "/users/alice", 200)
    check(prof["followers_count"] == 0, f"A: alice's followers_count {prof['followers_count']}")
    log("a removed account's token is refused by the other replica; its follows are gone")


def racing(c: Client, db, log) -> None:
    """Writes racing through both replicas."""
    pw = "replicas-password"
    users = [f"racer{i}" for i in range(6)]
    tokens = {}
    for i, name in enumerate(users):
        body, _ = c.expect("AB"[i % 2], "POST", "/auth/register", 201,
                           body={"username": name, "email": f"{name}@example.com", "password": pw})
        tokens[name] = body["access_token"]

    # Identical follows through both replicas: one 201, the others 200.
    with concurrent.futures.ThreadPoolExecutor(12) as pool:
        statuses = list(pool.map(
            lambda i: c.call("AB"[i % 2], "POST", "/users/racer1/follow", tokens["racer0"])[0],
            range(12)))
    check(sorted(statuses) == [200] * 11 + [201], f"12 identical follows: {sorted(statuses)}")
    for via in "AB":
        prof, _ = c.expect(via, "GET", "/users/racer1", 200)
        check(prof["followers_count"] == 1, f"{via}: racer1 followers_count {prof}")

    # A mixed burst through both replicas, then counts against rows.
    stop = time.monotonic() + 2.0
    errors = []

    def burst(i: int) -> None:
        rng = random.Random(i)
        while time.monotonic() < stop:
            via = rng.choice("AB")
            a, b = rng.sample(users, 2)
            roll = rng.random()
            if roll < 0.4:
                req = ("POST", f"/users/{b}/follow", None, {200, 201})
            elif roll < 0.7:
                req = ("DELETE", f"/users/{b}/follow", None, {204})
            elif roll < 0.85:
                req = ("POST", "/posts", {"body": f"burst {i}"}, {201})
            else:
                req = ("PATCH", "/users/me", {"display_name": f"{a} {i}"}, {200})
            method, path, body, ok = req
            status, _, parsed = c.call(via, method, path, tokens[a], body)
            if status not in ok:
                errors.append(f"{method} {path} through {via}: {status} {parsed}")

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        list(pool.map(burst, range(8)))
    check(not errors, "errors in the burst: " + "; ".join(errors[:5]))
    rows = db.query(
        "SELECT u.username, u.followers_count, u.following_count, u.posts_count,"
        " (SELECT COUNT(*) FROM follows f WHERE f.followed_id = u.id),"
        " (SELECT COUNT(*) FROM follows f WHERE f.follower_id = u.id),"
        " (SELECT COUNT(*) FROM posts p WHERE p.author_id = u.id) FROM users u")
    for name, *nums in rows:
        stored, actual = tuple(map(int, nums[:3])), tuple(map(int, nums[3:]))
        check(stored == actual, f"counts of {name}: stored {stored}, rows {actual}")
        for via in "AB":
            prof, _ = c.expect(via, "GET", f"/users/{name}", 200)
            got = (prof["followers_count"], prof["following_count"], prof["posts_count"])
            check(got == stored, f"{via}: {name} answers {got}, the database has {stored}")
    log(f"12 identical follows through both: one 201; a 2 s burst through both: counts of "
        f"{len(rows)} users equal their rows, and both replicas answer them")


class EventStream:
    """`GET /stream` on one replica, read as Server-Sent Events."""

    def __init__(self, port: int, token: str, last_event_id: str | None = None):
        self.conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        headers = {"authorization": f"Bearer {token}", "accept": "text/event-stream"}
        if last_event_id:
            headers["last-event-id"] = last_event_id
        self.conn.request("GET", "/stream", headers=headers)
        self.resp = self.conn.getresponse()
        check(self.resp.status == 200, f"GET /stream answered {self.resp.status}")
        check(self.resp.getheader("content-type") == "text/event-stream",
              f"GET /stream is {self.resp.getheader('content-type')}")
        self.buffer = b""

    def next(self, within: float = 10.0) -> dict:
        """The next event (comments and `retry` skipped): {"event", "id", "data"}."""
        deadline = time.monotonic() + within
        while True:
            while b"\n\n" in self.buffer:
                block, self.buffer = self.buffer.split(b"\n\n", 1)
                event = {}
                for line in block.decode().split("\n"):
                    name, _, value = line.partition(": ")
                    if name in ("event", "id", "data"):
                        event[name] = json.loads(value) if name == "data" else value
                if "event" in event:
                    return event
            left = deadline - time.monotonic()
            check(left > 0, f"no event within {within} s")
            self.conn.sock.settimeout(left)
            chunk = self.resp.read1(65536)
            check(chunk != b"", "the stream ended")
            self.buffer += chunk

    def close(self) -> None:
        self.conn.close()


def streams(c: Client, log) -> None:
    """A stream on one replica sees what is written through the other, and a reconnect to the other
    replays what was missed."""
    tokens = {}
    for name in ("streamer", "poster"):
        body, _ = c.expect("A", "POST", "/auth/register", 201, body={
            "username": name, "email": f"{name}@example.com", "password": f"password-of-{name}"})
        tokens[name] = body["access_token"]
    c.expect("A", "POST", "/users/poster/follow", 201, tokens["streamer"])
    stream = EventStream(c.ports["A"], tokens["streamer"])
    c.expect("B", "POST", "/posts", 201, tokens["poster"], {"body": "written through B"})
    event = stream.next()
    check(event["event"] == "post" and event["data"]["body"] == "written through B",
          f"A's stream got {event}, expected the post written through B")
    stream.close()
    for body in ("missed one", "missed two"):
        c.expect("A", "POST", "/posts", 201, tokens["poster"], {"body": body})
    stream = EventStream(c.ports["B"], tokens["streamer"], last_event_id=event["id"])
    got = [stream.next()["data"]["body"] for _ in range(2)]
    check(got == ["missed one", "missed two"], f"B replayed {got} from A's id")
    c.expect("A", "POST", "/posts", 201, tokens["poster"], {"body": "live again"})
    got = stream.next()["data"]["body"]
    check(got == "live again", f"B's stream then got {got!r}")
    stream.close()
    log("a stream on A received a post written through B; a reconnect to B with A's "
        "Last-Event-ID replayed the two missed posts in order, then went on live")


def random_walk(c: Client, steps: int, seed: int, log) -> None:
    """Random writes, each through one replica and read back at once through the other, against a
    model of the state (the client is sequential here, so the model is exact)."""
    rng = random.Random(seed)
    pw = "replicas-password"
    graph = e2e.Graph()
    tokens = graph.tokens  # every user the walk registered, with their token
    via = "A"
    counts = collections.Counter()

    def read_profile(reader, name):
        prof, _ = c.expect(reader, "GET", f"/users/{name}", 200)
        want = (*graph.counts(name), graph.display[name])
        got = (prof["followers_count"], prof["following_count"], prof["posts_count"],
               prof["display_name"])
        check(got == want, f"{reader}: profile of {name} is {got}, expected {want}")

    for step in range(steps):
        reader = other(via)
        kinds = ["register"] if len(tokens) < 3 else \
            ["register", "follow", "follow", "unfollow", "post", "post", "delete", "patch"]
        kind = rng.choice(kinds)
        counts[kind] += 1
        if kind == "register":
            name = f"walker{len(tokens)}"
            body, _ = c.expect(via, "POST", "/auth/register", 201,
                               body={"username": name, "email": f"{name}@example.com", "password": pw})
            graph.add_user(name, body["access_token"])
            c.expect(reader, "GET", "/users/me", 200, tokens[name])
            read_profile(reader, name)
        elif kind in ("follow", "unfollow"):
            a, b = rng.sample(sorted(tokens), 2)
            if kind == "follow":
                want = 200 if (a, b) in graph.follows else 201
                c.expect(via, "POST", f"/users/{b}/follow", want, tokens[a])
                graph.follow(a, b)
            else:
                c.expect(via, "DELETE", f"/users/{b}/follow", 204, tokens[a])
                graph.unfollow(a, b)
            page, _ = c.expect(reader, "GET", f"/users/{b}/followers?limit=100", 200)
            want_names = sorted(graph.followers(b))
            check(sorted(names(page["items"])) == want_names,
                  f"{reader}: followers of {b} {sorted(names(page['items']))}, expected {want_names}")
            rels, _ = c.expect(reader, "GET", f"/relationships?users={b}", 200, tokens[a])
            check(rels[0]["following"] == ((a, b) in graph.follows),
                  f"{reader}: relationship {a}->{b}")
            read_profile(reader, a)
        elif kind == "post":
            a = rng.choice(sorted(tokens))
            text = f"walk {step}"
            post, _ = c.expect(via, "POST", "/posts", 201, tokens[a], {"body": text})
            graph.add_post(post["id"], a, text)
            c.expect(reader, "GET", f"/posts/{post['id']}", 200)
            read_profile(reader, a)
        elif kind == "delete" and graph.posts:
            pid = rng.choice(sorted(graph.posts))
            a = graph.delete_post(pid).author
            c.expect(via, "DELETE", f"/posts/{pid}", 204, tokens[a])
            c.expect(reader, "GET", f"/posts/{pid}", 404)
            read_profile(reader, a)
        elif kind == "patch":
            a = rng.choice(sorted(tokens))
            value = rng.choice([None, f"{a} at step {step}"])
            c.expect(via, "PATCH", "/users/me", 200, tokens[a], {"display_name": value})
            graph.display[a] = value
            read_profile(reader, a)
        # After any write, a follower's timeline through the reader holds exactly what it must.
        if len(tokens) >= 3:
            a = rng.choice(sorted(tokens))
            page, _ = c.expect(reader, "GET", "/timeline?limit=100", 200, tokens[a])
            want_ids = graph.timeline(a, limit=100)
            got_ids = sorted((p["id"] for p in page["items"]), reverse=True)
            check(got_ids == want_ids, f"{reader}: timeline of {a} {got_ids}, expected {want_ids}")
        via = reader
    log(f"random walk: {steps} writes alternating between replicas ({dict(counts)}), each read back "
        "through the other")


def stream_status(port: int, token: str) -> tuple[int, dict | None]:
    """The status of `GET /stream` on one replica and, when it is not a stream, its body."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/stream", headers={"authorization": f"Bearer {token}"})
        resp = conn.getresponse()
        return resp.status, (None if resp.status == 200 else json.loads(resp.read()))
    finally:
        conn.close()


def shared_limits(binary: str, url: str, secret: str, workdir: str, token: str, log) -> None:
    """One login quota across two replicas through Redis; per-process quotas once it is gone.
    Before that, one count of a user's 5 streams across both (`token` is that user's)."""
    if shutil.which("redis-server") is None:
        raise Mismatch("redis-server is not installed (Debian's redis-server package)")
    port = ci.free_port()
    redis = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", workdir],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    ci.CLEANUP.add_process(redis)
    deadline = time.monotonic() + 10
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                break
        except OSError:
            if time.monotonic() > deadline:
                raise Mismatch("the throwaway redis-server did not start")
            time.sleep(0.05)
    quota = 6
    servers = {}
    for name in ("C", "D"):
        server = ci.Server(binary, url, secret, workdir, f"limits-{name.lower()}")
        server.env = {"REDIS_URL": f"redis://127.0.0.1:{port}",
                      "RATE_LIMIT_AUTH_PER_MINUTE": str(quota)}
        server.start("run")
        servers[name] = server

    # 3 streams on C and 2 on D are the user's 5: a sixth is refused by either, and a stream
    # closed on C frees a place on D.
    open_streams = {"C": [EventStream(servers["C"].port, token) for _ in range(3)],
                    "D": [EventStream(servers["D"].port, token) for _ in range(2)]}
    for via in ("C", "D"):
        status, body = stream_status(servers[via].port, token)
        check(status == 429 and body["code"] == "too_many_streams",
              f"a sixth stream through {via}: {status} {body}, not 429 too_many_streams")
    open_streams["C"].pop().close()
    deadline = time.monotonic() + 5
    while True:
        try:
            open_streams["D"].append(EventStream(servers["D"].port, token))
            break
        except Mismatch:
            check(time.monotonic() < deadline, "a stream closed on C did not free a place on D")
            time.sleep(0.1)
    for stream in open_streams["C"] + open_streams["D"]:
        stream.close()
    log(f"one count of a user's 5 streams across two replicas through Redis on :{port}")

    def login(via: str) -> int:
        # A registration without its fields: on the per-address login quota, refused before any
        # password is hashed. (Refreshes have a quota of their own, per session.)
        status, _, _ = e2e.request(servers[via].port, "POST", "/auth/register", body={})
        return status

    answers = [login("C" if i % 2 == 0 else "D") for i in range(quota)]
    check(answers == [422] * quota, f"logins within the shared quota: {answers}")
    for via in ("C", "D"):
        status = login(via)
        check(status == 429, f"the {quota + 1}th login through {via}: {status}, not 429")
    log(f"one login quota of {quota} across two replicas through Redis on :{port}")

    ci.kill_pid(redis)
    for via in ("C", "D"):
        answers = [login(via) for _ in range(quota + 1)]
        check(answers == [422] * quota + [429],
              f"{via} without Redis: {answers} (its own quota of {quota}, then 429, never a 5xx)")
    for server in servers.values():
        with open(server.log_path, encoding="utf-8", errors="replace") as f:
            warnings = f.read().count("Redis does not answer")
        check(warnings == 1, f"{server.name} logged the Redis outage {warnings} times, not once")
        server.stop()
    log("with Redis stopped each replica limits on its own and logs it once")


def main() -> int:
    began = time.monotonic()
    steps = int(os.environ.get("REPLICAS_STEPS", 150))
    seed = int(os.environ.get("REPLICAS_SEED", random.randrange(1 << 30)))
    budget = float(os.environ.get("REPLICAS_BUDGET_SECONDS", 90))
    in_ci = os.environ.get("CI") == "true"

    binary_source = ci.server_binary("replicas")
    if binary_source is None:
        return 1
    workdir, watchdog = ci.start_run("replicas", budget)
    binary = ci.copy_binary(binary_source, workdir)

    def log(message):
        print(f"replicas: ok: {message}", flush=True)

    result = 1
    try:
        db = ci.PostgresDb(workdir, prefix="social_replicas")
        try:
            url = db.create()
        except ci.Unreachable as err:
            if in_ci:
                print(f"replicas: FAIL: {err} (in CI that is a failure, not a skip)")
                return 1
            print(f"replicas: SKIP: {err} (outside CI this is a skip)")
            return 0
        secret = secrets.token_hex(32)
        a = ci.Server(binary, url, secret, workdir, "replica-a")
        b = ci.Server(binary, url, secret, workdir, "replica-b")
        # One after the other: both run the migrations at start-up.
        a.start("run")
        b.start("run")
        print(f"replicas: A on :{a.port} (pid {a.proc.pid}), B on :{b.port} (pid {b.proc.pid}), "
              f"one database {db.db}, seed {seed}", flush=True)
        c = Client({"A": a.port, "B": b.port})
        scripted(c, log)
        racing(c, db, log)
        streams(c, log)
        random_walk(c, steps, seed, log)
        body, _ = c.expect("A", "POST", "/auth/register", 201, body={
            "username": "many_streams", "email": "many_streams@example.com",
            "password": "password-of-many-streams"})
        shared_limits(binary, url, secret, workdir, body["access_token"], log)
        for server in (a, b):
            if server.proc.poll() is not None:
                raise Mismatch(f"{server.name} exited with {server.proc.returncode}")
        print(f"replicas: PASS ({c.requests['A']} requests through A, {c.requests['B']} through B; "
              f"{time.monotonic() - began:.1f} s; seed {seed})")
        result = 0
    except Exception as err:  # a mismatch, or an answer of the wrong shape, or a dead replica
        print(f"replicas: FAIL: {type(err).__name__}: {err} (seed {seed})")
        for name in ("replica-a-run.log", "replica-b-run.log"):
            path = os.path.join(workdir, name)
            if os.path.exists(path):
                with open(path, encoding="utf-8", errors="replace") as f:
                    tail = f.readlines()[-10:]
                if tail:
                    print(f"--- last lines of {name}:\n" + "".join(tail), end="")
    finally:
        ci.CLEANUP.run()
        watchdog.finish()
    return 1 if watchdog.fired.is_set() else result


if __name__ == "__main__":
    sys.exit(main())
