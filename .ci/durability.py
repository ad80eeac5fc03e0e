#!/usr/bin/env python3
"""Crash durability of the API: no acknowledged write is lost, nothing is half-done.

For each backend (default: sqlite, and postgres when reachable; in CI an unreachable PostgreSQL is a
failure), on a fresh database and a free port:

  1. start the server, register USERS users;
  2. drive concurrent follows, unfollows, blocks, unblocks, acceptances of follow requests (the
     last LOCKED_USERS users are locked), posts, post deletions, likes, unlikes, reposts and
     unreposts of acknowledged posts (and a few profile changes, which rewrite the users' rows
     whose counts the others change) from THREADS threads, recording for
     every request when it started, when its answer came and what the answer was;
  3. SIGKILL the server in the middle of the load, while requests are in flight;
  4. restart it on the same database and check, reading the database directly (sqlite3 / psql /
     mariadb), that every acknowledged write is there and nothing else is, and that every count on
     `users` and `posts` equals the rows it counts;
  5. send every post again with its `Idempotency-Key` (posts are written with one): a post that
     was acknowledged, or that reached the database without an answer, must be answered with the
     first answer (`Idempotent-Replayed: true`, the same id) and not written twice; one that never
     committed is written now, once;
  6. run a second, shorter load on the restarted server, let every request finish, check again.

What a request tells us. A 2xx answer means its transaction committed before the answer was sent,
somewhere between the request's start and its answer. A request without an answer (in flight at the
kill, or cut by it) may or may not have happened, at any moment before the restarted server
answers: it is never asserted either way. A definite refusal (404 on a delete that lost a race, a
connection refused by the dead server) did not happen.

The state of a follow pair is decided by the last write on it. A write W could be the last one
unless some acknowledged write started after W was answered (for a write without an answer:
after the restarted server was ready). When every write that could be the last one agrees (all
follows, or all unfollows; no acknowledged write at all counts as "absent"), the row must match;
otherwise both are allowed. A block ends the follows of its pair both ways, so it counts as a
removal on both follow pairs; a follow refused with 403 `blocked` did not happen. A locked user
never unlocks here, so a follow of one makes a request (202) and never a follow; the acceptance of
a request (200) makes the follow, and counts as its write. Blocks are
decided like follows, by the blocks and unblocks of their pair. A like or a repost is decided the
same way, by the likes and unlikes (reposts and unreposts) of its account and post and by the
blocks between that account and the post's author (a block ends them both ways); one refused with
403 (a block), 404 (the post deleted) or 422 (a repost of a locked account's post) did not happen,
and a deleted post has none. Posts have unique bodies, so a post in the database is traced to the
request that wrote it even when that request never got its answer. The counts must match the rows
in every case.

Only the Python standard library and the psql / mariadb command-line clients are used.
"""

from __future__ import annotations

import argparse
import base64
import collections
import hashlib
import http.client
import os
import random
import secrets
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback

sys.dont_write_bytecode = True  # no __pycache__ in .ci/
import e2e  # noqa: E402  (.ci/e2e.py: the HTTP helper and the graph model)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INF = float("inf")

USERS = 20
THREADS = 8
HOT_USERS = 4  # half of the follows target one of these, so their counts and rows are contended
LOCKED_USERS = 3  # the last ones are locked: following them makes requests, which they accept
STARTUP_TIMEOUT = 30.0
REQUEST_TIMEOUT = e2e.REQUEST_TIMEOUT  # load threads are given this long (and a margin) to stop


class Failure(Exception):
    """The run cannot go on (the server does not start, a set-up request fails, ...)."""


class Unreachable(Exception):
    """The backend's database server does not answer."""


class Mismatch(Exception):
    """What a check found differs from what it must be."""


def require(cond: bool, message: str) -> None:
    """A check of the other scripts: `Mismatch(message)` unless `cond`."""
    if not cond:
        raise Mismatch(message)


def server_binary(name: str) -> str | None:
    """The server binary to run (`SOCIAL_BIN`, else the debug build), or None after saying so."""
    source = os.environ.get("SOCIAL_BIN", os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "debug", "social"))
    if not os.access(source, os.X_OK):
        print(f"{name}: FAIL: no server binary at {source} (cargo build --bin social)", flush=True)
        return None
    return source


def start_run(name: str, budget: float, stop_message: str | None = None) -> tuple[str, "Watchdog"]:
    """A check's work directory (removed by CLEANUP), signal handlers that clean up and exit (a
    failure, or with `stop_message` a plain stop), and its started watchdog."""
    workdir = tempfile.mkdtemp(prefix=f"social-{name}-")
    CLEANUP.add(lambda: shutil.rmtree(workdir, ignore_errors=True))

    def on_signal(signum, _frame):
        if stop_message is not None:
            print(f"{name}: {stop_message}", flush=True)
            CLEANUP.run()
            os._exit(0)
        print(f"{name}: FAIL: interrupted by signal {signum}", flush=True)
        CLEANUP.run()
        os._exit(130)

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    watchdog = Watchdog(name, budget)
    watchdog.start()
    return workdir, watchdog


def copy_binary(source: str, workdir: str) -> str:
    """A copy of the server binary in `workdir`, so a rebuild during the run cannot change it."""
    binary = os.path.join(workdir, "social")
    shutil.copy2(source, binary)
    return binary


# --------------------------------------------------------------------------------------------
# processes and clean-up


class Cleanup:
    """Every process this script starts and every database it creates, undone by PID / name."""

    def __init__(self) -> None:
        # Held for the whole clean-up, so a second caller (the watchdog, a signal, the main thread)
        # waits until it is finished; re-entrant for a signal arriving in the middle of it.
        self.lock = threading.RLock()
        self.processes: list[subprocess.Popen] = []
        self.actions: list = []  # callables, run last-in first-out
        self.closed = False  # no more processes: the watchdog fired
        self.done = False

    def add_process(self, proc: subprocess.Popen) -> None:
        with self.lock:
            if self.closed or self.done:  # started as the watchdog fired: undo it at once
                kill_pid(proc)
                raise Failure("stopped by the watchdog")
            self.processes.append(proc)

    def stop_processes(self) -> None:
        with self.lock:
            self.closed = True
            for proc in self.processes:
                kill_pid(proc)

    def add(self, action) -> None:
        with self.lock:
            if self.done:
                action()
                raise Failure("stopped")
            self.actions.append(action)

    def run(self) -> None:
        with self.lock:
            if self.done:
                return
            self.done = True
            for proc in self.processes:
                kill_pid(proc)
            for action in reversed(self.actions):
                try:
                    action()
                except Exception as err:  # best effort; say what was left behind
                    print(f"warning: clean-up step failed: {err}", file=sys.stderr)


CLEANUP = Cleanup()


class Watchdog:
    """Fails a run that takes longer than its budget: kills the servers at once, so the main
    thread's requests fail and it cleans up as usual; if it has not finished 15 s later, cleans up
    from here and exits."""

    def __init__(self, name: str, budget: float):
        self.name = name
        self.budget = budget
        self.fired = threading.Event()
        self.finished = threading.Event()
        self.timer = threading.Timer(budget, self._fire)
        self.timer.daemon = True

    def start(self) -> None:
        self.timer.start()

    def _fire(self) -> None:
        print(f"{self.name}: FAIL: still running after {self.budget:.0f} s; stopping", flush=True)
        self.fired.set()
        CLEANUP.stop_processes()
        if not self.finished.wait(15):
            CLEANUP.run()
            os._exit(1)

    def finish(self) -> None:
        """Called after the clean-up: the run is over, whether or not the watchdog fired."""
        self.timer.cancel()
        self.finished.set()


def kill_pid(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        try:
            os.kill(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        print(f"warning: process {proc.pid} did not exit after SIGKILL", file=sys.stderr)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """One API process: the binary copied into the run's directory, so a relink does not matter."""

    def __init__(self, binary: str, database_url: str, secret: str, workdir: str, name: str):
        self.binary = binary
        self.database_url = database_url
        self.secret = secret
        self.workdir = workdir
        self.name = name
        self.proc: subprocess.Popen | None = None
        self.port = 0
        self.log_path = ""
        # Variables of this server's own, over the ones below (replicas.py's shared limits).
        self.env: dict[str, str] = {}

    def start(self, tag: str) -> None:
        self.port = free_port()
        self.log_path = os.path.join(self.workdir, f"{self.name}-{tag}.log")
        env = dict(os.environ)
        env.update(
            DATABASE_URL=self.database_url,
            BIND_ADDR=f"127.0.0.1:{self.port}",
            JWT_SECRET=self.secret,
            # The Web Push key, derived from the shared secret so that replicas share it too
            # (required on PostgreSQL and MySQL; a SHA-256 is a valid P-256 scalar but for odds
            # of 2^-32).
            VAPID_PRIVATE_KEY=base64.urlsafe_b64encode(
                hashlib.sha256(self.secret.encode()).digest()).rstrip(b"=").decode(),
            RUST_LOG=os.environ.get("DURABILITY_RUST_LOG", "warn"),
            LOG_FORMAT="text",
            # The load is far above the per-user and per-IP limits a person needs.
            RATE_LIMIT_AUTH_PER_MINUTE="100000",
            RATE_LIMIT_WRITES_PER_MINUTE="1000000",
        )
        env.update(self.env)
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [self.binary], env=env, cwd=self.workdir, stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        CLEANUP.add_process(self.proc)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise Failure(f"the server exited with {self.proc.returncode} at start-up:\n"
                              + self.log_tail())
            try:
                status, _, _ = e2e.request(self.port, "GET", "/health/ready", timeout=2)
                if status == 200:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise Failure(f"the server was not ready after {STARTUP_TIMEOUT:.0f} s:\n" + self.log_tail())

    def stop(self) -> None:
        if self.proc is not None:
            kill_pid(self.proc)

    def log_tail(self, lines: int = 30) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return "(no log)"


# --------------------------------------------------------------------------------------------
# databases, read directly


class SqliteDb:
    name = "sqlite"

    def __init__(self, workdir: str):
        self.path = os.path.join(workdir, "durability.db")

    def create(self) -> str:
        return f"sqlite://{self.path}?mode=rwc"

    def query(self, sql: str) -> list[tuple]:
        conn = sqlite3.connect(self.path, timeout=10)
        try:
            return [tuple(r) for r in conn.execute(sql).fetchall()]
        finally:
            conn.close()

    def execute(self, sql: str) -> None:
        conn = sqlite3.connect(self.path, timeout=10)
        try:
            conn.execute(sql)
            conn.commit()
        finally:
            conn.close()

    def extra_checks(self) -> list[str]:
        problems = []
        result = self.query("PRAGMA integrity_check")
        if result != [("ok",)]:
            problems.append(f"PRAGMA integrity_check: {result[:5]}")
        violations = self.query("PRAGMA foreign_key_check")
        if violations:
            problems.append(f"PRAGMA foreign_key_check: {violations[:5]}")
        return problems


class PostgresDb:
    name = "postgres"

    def __init__(self, workdir: str, prefix: str = "social_durability"):
        self.server = os.environ.get("CI_POSTGRES_SERVER", "postgres://postgres@127.0.0.1:5432")
        self.db = f"{prefix}_{int(time.time())}_{os.getpid()}_{secrets.token_hex(3)}"

    def _psql(self, database: str, sql: str, timeout: float = 30) -> str:
        out = subprocess.run(
            ["psql", f"{self.server}/{database}", "-X", "-A", "-t", "-q", "-F", "\t",
             "-v", "ON_ERROR_STOP=1", "-c", sql],
            capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL,
        )
        if out.returncode != 0:
            raise Failure(f"psql failed on {sql[:80]!r}: {out.stderr.strip()}")
        return out.stdout

    def create(self) -> str:
        if shutil.which("psql") is None:
            raise Unreachable("psql is not installed")
        try:
            ready = subprocess.run(["pg_isready", "-q", "-t", "3", "-d", f"{self.server}/postgres"],
                                   timeout=10, stdin=subprocess.DEVNULL).returncode == 0
        except (OSError, subprocess.TimeoutExpired):
            ready = False
        if not ready:
            raise Unreachable(f"PostgreSQL at {self.server} is not reachable")
        try:
            self._psql("postgres", f'CREATE DATABASE "{self.db}"')
        except Failure as err:
            raise Unreachable(str(err)) from err
        CLEANUP.add(self.drop)
        return f"{self.server}/{self.db}"

    def drop(self) -> None:
        self._psql("postgres", f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)')

    def query(self, sql: str) -> list[tuple]:
        text = self._psql(self.db, sql)
        return [tuple(line.split("\t")) for line in text.splitlines() if line != ""]

    def execute(self, sql: str) -> None:
        self._psql(self.db, sql)

    def extra_checks(self) -> list[str]:
        return []


class MysqlDb:
    name = "mysql"

    def __init__(self, workdir: str):
        self.host = os.environ.get("CI_MYSQL_HOST", "127.0.0.1")
        self.port = os.environ.get("CI_MYSQL_PORT", "3306")
        self.user = os.environ.get("CI_MYSQL_USER", "root")
        self.db = f"social_durability_{int(time.time())}_{os.getpid()}_{secrets.token_hex(3)}"

    def _cli(self, sql: str, database: str | None = None) -> str:
        cmd = ["mariadb", "-h", self.host, "-P", self.port, "-u", self.user, "-N", "-B"]
        if database:
            cmd.append(database)
        out = subprocess.run(cmd + ["-e", sql], capture_output=True, text=True, timeout=30,
                             stdin=subprocess.DEVNULL)
        if out.returncode != 0:
            raise Failure(f"mariadb failed on {sql[:80]!r}: {out.stderr.strip()}")
        return out.stdout

    def create(self) -> str:
        if shutil.which("mariadb") is None:
            raise Unreachable("the mariadb client is not installed")
        try:
            self._cli(f"CREATE DATABASE `{self.db}` CHARACTER SET utf8mb4 COLLATE utf8mb4_bin")
        except (Failure, subprocess.TimeoutExpired) as err:
            raise Unreachable(f"MariaDB at {self.host}:{self.port}: {err}") from err
        CLEANUP.add(self.drop)
        return f"mysql://{self.user}@{self.host}:{self.port}/{self.db}"

    def drop(self) -> None:
        self._cli(f"DROP DATABASE IF EXISTS `{self.db}`")

    def query(self, sql: str) -> list[tuple]:
        text = self._cli(sql, self.db)
        return [tuple(line.split("\t")) for line in text.splitlines() if line != ""]

    def execute(self, sql: str) -> None:
        self._cli(sql, self.db)

    def extra_checks(self) -> list[str]:
        return []


BACKENDS = {"sqlite": SqliteDb, "postgres": PostgresDb, "mysql": MysqlDb}


# --------------------------------------------------------------------------------------------
# the load


class Op:
    """One write request and what its answer says about it."""

    __slots__ = ("kind", "actor", "target", "post_id", "body", "start", "end", "status",
                 "outcome", "phase", "latest")

    def __init__(self, kind: str, actor: str, phase: int, target: str | None = None,
                 post_id: int | None = None, body: str | None = None):
        # follow | unfollow | block | unblock | accept | post | delete | profile | like | unlike |
        # repost | unrepost
        self.kind = kind
        self.actor = actor
        self.target = target
        self.post_id = post_id
        self.body = body
        self.phase = phase
        self.start = 0.0
        self.end: float | None = None
        self.status: int | None = None
        # ack: a 2xx answer, it happened; refused: a definite no, it did not happen;
        # unknown: no answer (or a 5xx), it may or may not have happened
        self.outcome = "pending"
        # the latest moment at which it could have taken effect
        self.latest = INF

    def describe(self) -> str:
        what = {"follow": f"{self.actor} follows {self.target}",
                "unfollow": f"{self.actor} unfollows {self.target}",
                "block": f"{self.actor} blocks {self.target}",
                "unblock": f"{self.actor} unblocks {self.target}",
                "accept": f"{self.actor} accepts {self.target}'s request",
                "post": f"{self.actor} posts {self.body!r}" + (f" (id {self.post_id})" if self.post_id else ""),
                "delete": f"{self.actor} deletes post {self.post_id}",
                "like": f"{self.actor} likes post {self.post_id}",
                "unlike": f"{self.actor} unlikes post {self.post_id}",
                "repost": f"{self.actor} reposts post {self.post_id}",
                "unrepost": f"{self.actor} unreposts post {self.post_id}",
                "profile": f"{self.actor} sets display_name {self.body!r}"}[self.kind]
        end = f"{self.end:.3f}" if self.end is not None else "-"
        return f"[phase {self.phase} {self.start:.3f}..{end} {self.status} {self.outcome}] {what}"


# The answers each write may get, and what they mean. Anything else is unexpected.
ACK = {"follow": {200, 201, 202}, "unfollow": {204}, "block": {200, 201}, "unblock": {204},
       "accept": {200}, "post": {201}, "delete": {204}, "profile": {200},
       "like": {200, 201}, "unlike": {204}, "repost": {200, 201}, "unrepost": {204}}
# Another deletion of the same post won the race; one of the two blocks the other; no request
# was pending; the post is gone, or its author blocks (or is blocked by) the caller, or is locked
# and not followed (403), or is locked (422, a repost).
REFUSED = {"delete": {404}, "follow": {403}, "accept": {404}, "like": {403, 404},
           "unlike": {404}, "repost": {403, 404, 422}, "unrepost": {404}}
# An interaction and the write that takes it back.
INTERACTIONS = {"like": "unlike", "repost": "unrepost"}


class Load:
    def __init__(self, users: list[str], tokens: dict[str, str], seed: int):
        self.users = users
        self.tokens = tokens
        self.seed = seed
        self.lock = threading.Lock()
        self.ops: list[Op] = []
        self.posts: list[tuple[int, str]] = []  # acknowledged posts: (id, author)
        self.delete_tried: set[int] = set()
        self.requested: dict[str, set[str]] = collections.defaultdict(set)  # owner -> requesters
        self.unexpected: list[str] = []
        self.body_counter = 0
        self.run_tag = secrets.token_hex(4)

    def next_body(self, actor: str) -> str:
        with self.lock:
            self.body_counter += 1
            return f"durability {self.run_tag} #{self.body_counter} by {actor}"

    def run(self, port: int, phase: int, stop: threading.Event) -> list[threading.Thread]:
        threads = [threading.Thread(target=self.worker, args=(port, phase, stop, i), daemon=True)
                   for i in range(THREADS)]
        for t in threads:
            t.start()
        return threads

    def pick_op(self, rng: random.Random, phase: int) -> Op:
        actor = rng.choice(self.users)
        roll = rng.random()
        if roll < 0.62:
            hot = [u for u in self.users[:HOT_USERS] if u != actor]
            others = [u for u in self.users if u != actor]
            target = rng.choice(hot if rng.random() < 0.5 else others)
            kind = "follow" if roll < 0.36 else "unfollow"
            return Op(kind, actor, phase, target=target)
        if roll < 0.82:
            return Op("post", actor, phase, body=self.next_body(actor))
        if roll < 0.84:
            # A locked user accepts someone who asked (a request answered 202), now and then
            # anyone (404 when nobody asked).
            owner = rng.choice(self.users[-LOCKED_USERS:])
            with self.lock:
                asked = sorted(self.requested.get(owner, ()))
            others = [u for u in self.users if u != owner]
            target = rng.choice(asked if asked and rng.random() < 0.8 else others)
            return Op("accept", owner, phase, target=target)
        if roll < 0.88:
            # Blocks among the same pairs as the follows, so that they end follows under load.
            others = [u for u in self.users if u != actor]
            kind = "block" if roll < 0.86 else "unblock"
            return Op(kind, actor, phase, target=rng.choice(others))
        if roll < 0.90:
            # A profile change rewrites the user's row while others change its counts: a stale
            # full-row write would show up as a count that no longer matches its rows.
            return Op("profile", actor, phase, body=f"{actor} {rng.randrange(1000)}")
        if roll < 0.96:
            # Likes and reposts of acknowledged posts, and taking them back; a few posts get most
            # of them, so identical requests meet.
            with self.lock:
                recent = self.posts[-6:]
            if recent:
                post_id, _ = rng.choice(recent)
                kind = ["like", "unlike", "repost", "unrepost"][
                    0 if roll < 0.925 else 1 if roll < 0.935 else 2 if roll < 0.955 else 3]
                return Op(kind, actor, phase, post_id=post_id)
        with self.lock:
            untried = [p for p in self.posts if p[0] not in self.delete_tried]
            pool = untried if (untried and rng.random() < 0.85) else self.posts
            if pool:
                post_id, author = rng.choice(pool)
                self.delete_tried.add(post_id)
                return Op("delete", author, phase, post_id=post_id)
        return Op("post", actor, phase, body=self.next_body(actor))

    def worker(self, port: int, phase: int, stop: threading.Event, index: int) -> None:
        rng = random.Random(f"{self.seed}-{phase}-{index}")
        while not stop.is_set():
            op = self.pick_op(rng, phase)
            token = self.tokens[op.actor]
            if op.kind == "follow":
                method, path, body = "POST", f"/users/{op.target}/follow", None
            elif op.kind == "unfollow":
                method, path, body = "DELETE", f"/users/{op.target}/follow", None
            elif op.kind == "block":
                method, path, body = "POST", f"/users/{op.target}/block", None
            elif op.kind == "unblock":
                method, path, body = "DELETE", f"/users/{op.target}/block", None
            elif op.kind == "accept":
                method, path, body = ("POST", f"/users/me/follow_requests/{op.target}/accept",
                                      None)
            elif op.kind == "post":
                method, path, body = "POST", "/posts", {"body": op.body}
            elif op.kind == "profile":
                method, path, body = "PATCH", "/users/me", {"display_name": op.body}
            elif op.kind in ("like", "repost"):
                method, path, body = "POST", f"/posts/{op.post_id}/{op.kind}", None
            elif op.kind in ("unlike", "unrepost"):
                method, path, body = "DELETE", f"/posts/{op.post_id}/{op.kind[2:]}", None
            else:
                method, path, body = "DELETE", f"/posts/{op.post_id}", None
            op.start = time.monotonic()
            with self.lock:
                self.ops.append(op)
            headers = {"idempotency-key": idempotency_key(op.body)} if op.kind == "post" else None
            try:
                status, _, parsed = e2e.request(port, method, path, token, body, headers=headers)
            except ConnectionRefusedError:
                op.outcome = "refused"  # no connection, so the server never saw it
                continue
            except (OSError, http.client.HTTPException):
                op.outcome = "unknown"  # no complete answer: it may or may not have happened
                continue
            op.end = time.monotonic()
            op.latest = op.end  # whatever it did, it did before its answer
            op.status = status
            if status in ACK[op.kind]:
                if op.kind == "follow" and status == 202:
                    with self.lock:
                        self.requested[op.target].add(op.actor)
                if op.kind == "post":
                    if not isinstance(parsed, dict) or not isinstance(parsed.get("id"), int) \
                            or parsed.get("body") != op.body:
                        op.outcome = "unknown"
                        self.note(f"POST /posts answered {status} without the post: {parsed!r}")
                        continue
                    op.post_id = parsed["id"]
                    with self.lock:
                        self.posts.append((op.post_id, op.actor))
                op.outcome = "ack"
            elif status in REFUSED.get(op.kind, ()):
                op.outcome = "refused"
            else:
                # A 4xx would mean the write was refused, a 5xx that it may have happened: neither
                # is in the contract for these requests, so both are reported.
                op.outcome = "refused" if 400 <= status < 500 else "unknown"
                code = parsed.get("code") if isinstance(parsed, dict) else parsed
                self.note(f"{method} {path} as {op.actor}: unexpected {status} {code}")

    def note(self, message: str) -> None:
        with self.lock:
            self.unexpected.append(message)


# --------------------------------------------------------------------------------------------
# the check


def last_writes_agree(what: str, by_pair: dict, present: set, creates) -> tuple[int, list[str]]:
    """For each pair, whether the row's presence agrees with every write that could have been the
    last one on it; `creates(op)` says whether a write makes the row. Returns (pairs decided,
    problems)."""
    problems = []
    decided = 0
    for pair in sorted(set(by_pair) | present):
        writes = by_pair.get(pair, [])
        acked = [o for o in writes if o.outcome == "ack"]
        last_acked_start = max((o.start for o in acked), default=-INF)
        # W could be the last write unless an acknowledged write started after W's latest moment.
        could_be_last = [o for o in writes if o.latest >= last_acked_start]
        possible = {creates(o) for o in could_be_last}
        if not acked:
            possible.add(False)  # perhaps none of them happened: the pair never had the row
        is_present = pair in present
        if len(possible) == 1:
            decided += 1
        if is_present not in possible:
            why = (f"an acknowledged {what} is missing" if not is_present
                   else f"a {what} exists that was acknowledged as removed, or never made")
            detail = "\n      ".join(o.describe() for o in sorted(writes, key=lambda o: o.start)[-8:])
            problems.append(f"{what} {pair[0]} -> {pair[1]}: {why}; last writes on the pair:\n"
                            f"      {detail or '(none)'}")
    return decided, problems


def check(db, load: Load, users: list[str]) -> tuple[list[str], dict]:
    """Compares the database with what the answers imply. Returns (problems, statistics)."""
    problems: list[str] = []
    stats: dict = {}
    ops = load.ops

    rows = db.query("SELECT id, username FROM users ORDER BY id")
    names = {int(r[0]): r[1] for r in rows}
    if sorted(names.values()) != sorted(users):
        problems.append(f"users: expected exactly the {len(users)} registered users, "
                        f"found {sorted(names.values())}")

    # Nothing dangling, nothing impossible.
    orphans = db.query(
        "SELECT COUNT(*) FROM follows f WHERE f.follower_id = f.followed_id"
        " OR NOT EXISTS (SELECT 1 FROM users u WHERE u.id = f.follower_id)"
        " OR NOT EXISTS (SELECT 1 FROM users u WHERE u.id = f.followed_id)")
    if int(orphans[0][0]) != 0:
        problems.append(f"follows: {orphans[0][0]} rows are self-follows or point at no user")
    orphans = db.query("SELECT COUNT(*) FROM posts p"
                       " WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = p.author_id)")
    if int(orphans[0][0]) != 0:
        problems.append(f"posts: {orphans[0][0]} rows point at no user")
    problems.extend(db.extra_checks())

    # Every count equals the rows it counts.
    counts = db.query(
        "SELECT u.username, u.followers_count, u.following_count, u.posts_count,"
        " (SELECT COUNT(*) FROM follows f WHERE f.followed_id = u.id),"
        " (SELECT COUNT(*) FROM follows f WHERE f.follower_id = u.id),"
        " (SELECT COUNT(*) FROM posts p WHERE p.author_id = u.id)"
        " FROM users u ORDER BY u.id")
    db_counts = {}
    for name, followers, following, posts, n_followers, n_following, n_posts in counts:
        stored = (int(followers), int(following), int(posts))
        actual = (int(n_followers), int(n_following), int(n_posts))
        db_counts[name] = stored
        if stored != actual:
            problems.append(f"counts of {name}: followers/following/posts stored {stored}, "
                            f"rows {actual}")
    stats["counts"] = db_counts

    # The follows and posts the database holds, in the graph model replicas.py keeps as well. The
    # counts above stay one SQL statement: stored counts and their rows come from one snapshot.
    db_graph = e2e.Graph()

    # Follows: the row must agree with every write that could have been the last one on its pair
    # (a block of the pair, either way, removes it).
    for a, b in db.query(
            "SELECT a.username, b.username FROM follows f"
            " JOIN users a ON a.id = f.follower_id JOIN users b ON b.id = f.followed_id"):
        db_graph.follow(a, b)
    by_pair: dict[tuple[str, str], list[Op]] = collections.defaultdict(list)
    for op in ops:
        if op.outcome not in ("ack", "unknown"):
            continue
        if op.kind == "follow" and op.target in load.users[-LOCKED_USERS:]:
            continue  # a request (or a repeat of an accepted follow): no follow is made
        if op.kind in ("follow", "unfollow"):
            by_pair[(op.actor, op.target)].append(op)
        elif op.kind == "accept":
            by_pair[(op.target, op.actor)].append(op)
        elif op.kind == "block":
            by_pair[(op.actor, op.target)].append(op)
            by_pair[(op.target, op.actor)].append(op)
    decided, pair_problems = last_writes_agree(
        "follow", by_pair, db_graph.follows, lambda op: op.kind in ("follow", "accept"))
    problems.extend(pair_problems)
    stats["pairs_decided"] = decided
    stats["follows_in_db"] = len(db_graph.follows)

    # Blocks, decided the same way by the blocks and unblocks of their pair.
    blocks = {(a, b) for a, b in db.query(
        "SELECT a.username, b.username FROM blocks k"
        " JOIN users a ON a.id = k.blocker_id JOIN users b ON b.id = k.blocked_id")}
    by_block: dict[tuple[str, str], list[Op]] = collections.defaultdict(list)
    for op in ops:
        if op.kind in ("block", "unblock") and op.outcome in ("ack", "unknown"):
            by_block[(op.actor, op.target)].append(op)
    decided, block_problems = last_writes_agree(
        "block", by_block, blocks, lambda op: op.kind == "block")
    problems.extend(block_problems)
    stats["blocks_decided"] = decided
    stats["blocks_in_db"] = len(blocks)
    # And no follow stands where a block does.
    for a, b in sorted(blocks):
        for pair in ((a, b), (b, a)):
            if pair in db_graph.follows:
                problems.append(f"follow {pair[0]} -> {pair[1]} stands beside the block "
                                f"{a} -> {b}")

    # Posts: bodies are unique, so each row is traced to the request that wrote it.
    for post_id, author, body in db.query(
            "SELECT p.id, u.username, p.body FROM posts p JOIN users u ON u.id = p.author_id"):
        db_graph.add_post(int(post_id), author, body)
    creates = {op.body: op for op in ops if op.kind == "post" and op.outcome in ("ack", "unknown")}
    deletes: dict[int, list[Op]] = collections.defaultdict(list)
    for op in ops:
        if op.kind == "delete" and op.outcome in ("ack", "unknown"):
            deletes[op.post_id].append(op)
    seen_bodies = collections.Counter(p.body for p in db_graph.posts.values())
    for body, n in seen_bodies.items():
        if n > 1:
            problems.append(f"post {body!r} is stored {n} times")
    for post_id, (author, body) in sorted(db_graph.posts.items()):
        op = creates.get(body)
        if op is None:
            problems.append(f"post {post_id} {body!r} by {author}: no request wrote it, or its "
                            "writer was refused")
        elif op.actor != author:
            problems.append(f"post {post_id} {body!r}: stored as {author}'s, written by {op.actor}")
        elif op.outcome == "ack" and op.post_id != post_id:
            problems.append(f"post {body!r}: answered with id {op.post_id}, stored as {post_id}")
    must_exist = must_be_gone = 0
    for op in creates.values():
        if op.outcome != "ack":
            continue
        removal = deletes.get(op.post_id, [])
        stored = db_graph.posts.get(op.post_id)
        if stored is not None and stored != (op.actor, op.body):
            problems.append(f"post {op.post_id}: acknowledged as {op.body!r} by {op.actor}, "
                            f"stored as {stored.body!r} by {stored.author}")
            continue
        if any(d.outcome == "ack" for d in removal):
            must_be_gone += 1
            if stored is not None:
                problems.append(f"post {op.post_id} {op.body!r}: its deletion was acknowledged, "
                                "but it is still there")
        elif not removal:
            must_exist += 1
            if stored is None:
                problems.append(f"post {op.post_id} {op.body!r} by {op.actor}: acknowledged, never "
                                "deleted, and missing")
    stats["posts_must_exist"] = must_exist
    stats["posts_must_be_gone"] = must_be_gone
    stats["posts_in_db"] = len(db_graph.posts)

    # Every post's likes and reposts counts equal their rows.
    for post_id, likes, reposts, n_likes, n_reposts in db.query(
            "SELECT p.id, p.likes_count, p.reposts_count,"
            " (SELECT COUNT(*) FROM likes l WHERE l.post_id = p.id),"
            " (SELECT COUNT(*) FROM reposts r WHERE r.post_id = p.id)"
            " FROM posts p ORDER BY p.id"):
        if (int(likes), int(reposts)) != (int(n_likes), int(n_reposts)):
            problems.append(f"counts of post {post_id}: likes/reposts stored "
                            f"{(int(likes), int(reposts))}, rows {(int(n_likes), int(n_reposts))}")
    # Likes and reposts of the posts still there, each decided by its account's and post's last
    # writes, a block between the account and the author counting as a removal.
    blocking = collections.defaultdict(list)
    for op in ops:
        if op.kind == "block" and op.outcome in ("ack", "unknown"):
            blocking[frozenset((op.actor, op.target))].append(op)
    for kind, undo in INTERACTIONS.items():
        table = "likes" if kind == "like" else "reposts"
        present = {(a, int(p)) for a, p in db.query(
            f"SELECT u.username, t.post_id FROM {table} t JOIN users u ON u.id = t.user_id")}
        by_item: dict[tuple[str, int], list[Op]] = collections.defaultdict(list)
        for op in ops:
            if op.kind in (kind, undo) and op.outcome in ("ack", "unknown") \
                    and op.post_id in db_graph.posts:
                by_item[(op.actor, op.post_id)].append(op)
        for (actor, post_id), writes in by_item.items():
            author = db_graph.posts[post_id][0]
            writes.extend(blocking.get(frozenset((actor, author)), []))
        decided, item_problems = last_writes_agree(
            kind, by_item, present, lambda op, kind=kind: op.kind == kind)
        problems.extend(item_problems)
        stats[f"{table}_decided"] = decided
        stats[f"{table}_in_db"] = len(present)
    return problems, stats


def corrupt(db, load: Load) -> None:
    """--corrupt: damages the database the way a lost write would, to prove the check fails."""
    def removed_by(q: Op, o: Op) -> bool:
        """Whether write q may have removed the follow o made."""
        if q.outcome == "refused":
            return False
        same = q.actor == o.actor and q.target == o.target
        reverse = q.actor == o.target and q.target == o.actor
        return (q.kind == "unfollow" and same) or (q.kind == "block" and (same or reverse))

    decided_present = [o for o in load.ops if o.kind == "follow" and o.outcome == "ack"
                       and o.status != 202  # a request, not a follow
                       and not any(removed_by(q, o) for q in load.ops)]
    blocks_present = [o for o in load.ops if o.kind == "block" and o.outcome == "ack"
                      and not any(q.kind == "unblock" and q.outcome != "refused"
                                  and q.actor == o.actor and q.target == o.target
                                  for q in load.ops)]
    kept_posts = [o for o in load.ops if o.kind == "post" and o.outcome == "ack"
                  and not any(q.kind == "delete" and q.post_id == o.post_id for q in load.ops)]
    if decided_present:
        o = decided_present[0]
        db.execute("DELETE FROM follows WHERE"
                   f" follower_id = (SELECT id FROM users WHERE username = '{o.actor}') AND"
                   f" followed_id = (SELECT id FROM users WHERE username = '{o.target}')")
        print(f"corrupt: removed the follow {o.actor} -> {o.target}", flush=True)
    if blocks_present:
        o = blocks_present[0]
        db.execute("DELETE FROM blocks WHERE"
                   f" blocker_id = (SELECT id FROM users WHERE username = '{o.actor}') AND"
                   f" blocked_id = (SELECT id FROM users WHERE username = '{o.target}')")
        print(f"corrupt: removed the block {o.actor} -> {o.target}", flush=True)
    if kept_posts:
        o = kept_posts[0]
        db.execute(f"DELETE FROM posts WHERE id = {o.post_id}")
        print(f"corrupt: removed post {o.post_id}", flush=True)
    db.execute("UPDATE users SET following_count = following_count + 1 WHERE username = 'user05'")
    print("corrupt: raised following_count of user05", flush=True)


def check_api(port: int, db_counts: dict) -> list[str]:
    """The restarted server answers profiles whose counts are the database's."""
    problems = []
    for name, (followers, following, posts) in db_counts.items():
        status, _, body = e2e.request(port, "GET", f"/users/{name}")
        got = (body.get("followers_count"), body.get("following_count"), body.get("posts_count")) \
            if isinstance(body, dict) else None
        if status != 200 or got != (followers, following, posts):
            problems.append(f"GET /users/{name}: {status} {got}, the database has "
                            f"{(followers, following, posts)}")
    return problems


# --------------------------------------------------------------------------------------------
# one backend


def run_backend(backend: str, binary: str, seconds: float, seed: int, workdir: str,
                damage: bool = False) -> tuple[bool, str]:
    began = time.monotonic()
    db = BACKENDS[backend](workdir)
    url = db.create()
    secret = secrets.token_hex(32)
    server = Server(binary, url, secret, workdir, backend)
    server.start("first")

    users = [f"user{i:02d}" for i in range(USERS)]
    tokens = {}
    for name in users:
        status, _, body = e2e.request(server.port, "POST", "/auth/register",
                                      body={"username": name, "email": f"{name}@example.com",
                                            "password": "durability-password"})
        if status != 201 or not isinstance(body, dict) or "access_token" not in body:
            raise Failure(f"registering {name}: {status} {body}")
        tokens[name] = body["access_token"]
    for name in users[-LOCKED_USERS:]:
        status, _, body = e2e.request(server.port, "PATCH", "/users/me", tokens[name],
                                      {"locked": True})
        if status != 200:
            raise Failure(f"locking {name}: {status} {body}")

    rng = random.Random(seed)
    load = Load(users, tokens, seed)

    # Phase 1: load, and SIGKILL in the middle of it.
    stop = threading.Event()
    t0 = time.monotonic()
    threads = load.run(server.port, 1, stop)
    kill_after = seconds * rng.uniform(0.45, 0.75)
    time.sleep(kill_after)
    kill_sent = time.monotonic()
    os.kill(server.proc.pid, signal.SIGKILL)
    stop.set()  # no new requests; those in flight get their connection reset
    server.proc.wait(timeout=10)
    killed_at = time.monotonic()
    for t in threads:
        t.join(timeout=REQUEST_TIMEOUT + 5)
    if any(t.is_alive() for t in threads):
        raise Failure("a load thread did not stop after the kill")
    in_flight = 0
    for op in load.ops:
        if op.outcome == "pending":
            raise Failure(f"a request has no outcome: {op.describe()}")
        if op.start >= killed_at:
            op.outcome = "refused"  # sent to a dead server: it cannot have happened
        elif op.start < kill_sent and op.end is None and op.outcome == "unknown":
            in_flight += 1
    phase1 = summarize(load.ops)
    unexpected_before = list(load.unexpected)

    # Restart on the same database and check what the crash left.
    server.start("restarted")
    for op in load.ops:
        if op.outcome == "unknown":
            # Whatever it did, it did before the restarted server answered (a COMMIT the killed
            # server had sent may still complete in the database just after the kill).
            op.latest = min(op.latest, time.monotonic())
    if damage:
        corrupt(db, load)
    problems, stats = check(db, load, users)
    problems += check_api(server.port, stats["counts"])
    if in_flight == 0:
        problems.append("no request was in flight at the kill; the crash proved nothing")
    for message in unexpected_before:
        problems.append(f"during the load: {message}")
    if problems:
        server.stop()
        return False, report(backend, problems, phase1, in_flight, kill_after, stats, None, began)
    problems, repeats = repeat_posts(server.port, load, db)
    stats["repeats"] = repeats
    if problems:
        server.stop()
        return False, report(backend, problems, phase1, in_flight, kill_after, stats, None, began)

    # Phase 2: the restarted server goes on from the state the crash left, then stops cleanly.
    stop = threading.Event()
    threads = load.run(server.port, 2, stop)
    time.sleep(max(1.0, seconds / 4))
    stop.set()
    for t in threads:
        t.join(timeout=REQUEST_TIMEOUT + 5)
    problems, stats2 = check(db, load, users)
    problems += check_api(server.port, stats2["counts"])
    problems += [f"after the restart: {m}" for m in load.unexpected[len(unexpected_before):]]
    problems += [f"after the restart: {o.describe()} got no answer"
                 for o in load.ops if o.phase == 2 and o.outcome == "unknown"]
    server.stop()
    phase2 = summarize([o for o in load.ops if o.phase == 2])
    return not problems, report(backend, problems, phase1, in_flight, kill_after, stats, phase2,
                                began, stats2)


def idempotency_key(body: str | None) -> str:
    """The `Idempotency-Key` a post is written with: derived from its unique body."""
    return "durability-" + hashlib.sha256((body or "").encode()).hexdigest()[:32]


def repeat_posts(port: int, load: Load, db) -> tuple[list[str], dict]:
    """Sends every post of phase 1 again with its key, after the crash and the restart. An
    acknowledged post must be answered with the first answer (replayed, the same id) and not
    written again; a post without an answer must exist exactly once afterwards, replayed if it had
    committed before the kill, written now if it had not. Updates the load with what it learns."""
    problems = []
    replayed = written = 0
    for op in [o for o in load.ops if o.kind == "post" and o.phase == 1
               and o.outcome in ("ack", "unknown")]:
        status, headers, parsed = e2e.request(port, "POST", "/posts", load.tokens[op.actor],
                                              {"body": op.body},
                                              headers={"idempotency-key": idempotency_key(op.body)})
        again = headers.get("idempotent-replayed") == "true"
        if status != 201 or not isinstance(parsed, dict) or parsed.get("body") != op.body:
            problems.append(f"repeating {op.describe()}: {status} {parsed!r}")
            continue
        if op.outcome == "ack":
            if not again or parsed.get("id") != op.post_id:
                problems.append(f"repeating {op.describe()} wrote it again (id {parsed.get('id')}, "
                                f"replayed: {again})")
            replayed += 1
            continue
        escaped = op.body.replace("'", "''")
        copies = db.query(f"SELECT COUNT(*) FROM posts WHERE body = '{escaped}'")
        if int(copies[0][0]) != 1:
            problems.append(f"after repeating {op.describe()}: {copies[0][0]} copies")
        replayed += again
        written += not again
        # Now it is known: it exists (and phase 2 may delete it).
        op.outcome = "ack"
        op.post_id = parsed["id"]
        op.status = 201
        op.end = time.monotonic()
        op.latest = op.end
        with load.lock:
            load.posts.append((op.post_id, op.actor))
    return problems, {"replayed": replayed, "written": written}


def summarize(ops: list[Op]) -> dict:
    acked = collections.Counter(o.kind for o in ops if o.outcome == "ack")
    return {"requests": len(ops), "acked": sum(acked.values()), "by_kind": dict(acked),
            "unknown": sum(1 for o in ops if o.outcome == "unknown"),
            "refused": sum(1 for o in ops if o.outcome == "refused")}


def report(backend, problems, phase1, in_flight, kill_after, stats, phase2, began, stats2=None):
    kinds = phase1["by_kind"]
    lines = [
        f"{backend}: phase 1: {phase1['requests']} writes, {phase1['acked']} acknowledged "
        f"({kinds.get('follow', 0)} follows, {kinds.get('unfollow', 0)} unfollows, "
        f"{kinds.get('block', 0)} blocks, {kinds.get('unblock', 0)} unblocks, "
        f"{kinds.get('accept', 0)} acceptances, "
        f"{kinds.get('post', 0)} posts, {kinds.get('delete', 0)} deletions, "
        f"{kinds.get('profile', 0)} profile changes, {kinds.get('like', 0)} likes, "
        f"{kinds.get('unlike', 0)} unlikes, {kinds.get('repost', 0)} reposts, "
        f"{kinds.get('unrepost', 0)} unreposts); SIGKILL after "
        f"{kill_after:.1f} s with {in_flight} in flight ({phase1['unknown']} without an answer, "
        f"{phase1['refused']} refused)",
        f"{backend}: after the restart: {stats.get('follows_in_db', '?')} follows and "
        f"{stats.get('posts_in_db', '?')} posts in the database; {stats.get('pairs_decided', '?')} "
        f"follow pairs, {stats.get('blocks_decided', '?')} block pairs "
        f"({stats.get('blocks_in_db', '?')} blocks in the database) and "
        f"{stats.get('posts_must_exist', '?')}+{stats.get('posts_must_be_gone', '?')} "
        f"posts with a decided state checked; {stats.get('likes_decided', '?')} like and "
        f"{stats.get('reposts_decided', '?')} repost pairs decided ({stats.get('likes_in_db', '?')} "
        f"likes, {stats.get('reposts_in_db', '?')} reposts in the database); counts of "
        f"{len(stats.get('counts', {}))} users and of every post",
    ]
    if "repeats" in stats:
        lines.append(f"{backend}: every post of phase 1 sent again with its Idempotency-Key: "
                     f"{stats['repeats']['replayed']} replayed, {stats['repeats']['written']} "
                     f"written now (they had not committed before the kill)")
    if phase2 is not None and stats2 is not None:
        lines.append(f"{backend}: phase 2 on the restarted server: {phase2['requests']} writes, "
                     f"{phase2['acked']} acknowledged; checked again: "
                     f"{stats2.get('follows_in_db')} follows, {stats2.get('posts_in_db')} posts")
    for p in problems[:40]:
        lines.append(f"{backend}: PROBLEM: {p}")
    if len(problems) > 40:
        lines.append(f"{backend}: ... and {len(problems) - 40} more problems")
    lines.append(f"{backend}: {'PASS' if not problems else 'FAIL'} in {time.monotonic() - began:.1f} s")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("backends", nargs="*", metavar="BACKEND",
                        help="sqlite, postgres or mysql (default: sqlite postgres)")
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("DURABILITY_SECONDS", 4)),
                        help="length of the load on each backend (default 4)")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--corrupt", action="store_true",
                        help="damage the database after the restart; the run must then FAIL "
                             "(proves the check can see a lost write)")
    parser.add_argument("--budget", type=float,
                        default=float(os.environ.get("DURABILITY_BUDGET_SECONDS", 110)),
                        help="the whole run is a failure after this many seconds (default 110)")
    args = parser.parse_args()
    for backend in args.backends:
        if backend not in BACKENDS:
            parser.error(f"unknown backend {backend!r}; choose from {', '.join(BACKENDS)}")
    explicit = bool(args.backends)
    backends = args.backends or ["sqlite", "postgres"]
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    in_ci = os.environ.get("CI") == "true"

    binary_source = server_binary("durability")
    if binary_source is None:
        return 1
    workdir, watchdog = start_run("durability", args.budget)
    binary = copy_binary(binary_source, workdir)

    print(f"durability: backends {' '.join(backends)}, {USERS} users, {THREADS} threads, "
          f"{args.seconds:g} s of load each, seed {seed}", flush=True)
    results = []
    try:
        for backend in backends:
            try:
                ok, text = run_backend(backend, binary, args.seconds, seed, workdir, args.corrupt)
                print(text, flush=True)
                results.append((backend, "PASS" if ok else "FAIL"))
            except Unreachable as err:
                if in_ci or explicit:
                    print(f"{backend}: FAIL: {err} (" +
                          ("in CI that is a failure, not a skip" if in_ci else "it was asked for")
                          + ")", flush=True)
                    results.append((backend, "FAIL"))
                else:
                    print(f"{backend}: SKIP: {err} (outside CI this is a skip)", flush=True)
                    results.append((backend, "SKIP"))
            except Failure as err:
                print(f"{backend}: FAIL: {err}", flush=True)
                results.append((backend, "FAIL"))
            except Exception as err:  # a request or a process failing outside the load
                print(f"{backend}: FAIL: {type(err).__name__}: {err}", flush=True)
                if not watchdog.fired.is_set():
                    traceback.print_exc()
                results.append((backend, "FAIL"))
            if watchdog.fired.is_set():
                break
    finally:
        CLEANUP.run()
        watchdog.finish()

    if watchdog.fired.is_set():
        results.append(("watchdog", "FAIL"))
    failed = [b for b, r in results if r == "FAIL"]
    summary = ", ".join(f"{b} {r}" for b, r in results)
    ran = [b for b, r in results if r == "PASS"]
    if failed or not ran:
        print(f"durability: FAIL ({summary}; seed {seed})")
        return 1
    print(f"durability: PASS ({summary}; seed {seed})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
