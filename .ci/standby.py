#!/usr/bin/env python3
"""Reads on a PostgreSQL hot standby, with read-your-writes, checked against a real standby.

Starts its own PostgreSQL primary and hot standby from Debian's PostgreSQL binaries (`initdb`,
`pg_basebackup -R`, under a temporary directory, on free ports; the machine's own service on 5432
is left alone), and two API processes on them with `DATABASE_READ_URL` naming the standby: A with a
lag budget of 60 s, B with 1 s. Then, with the standby's replay paused (`pg_wal_replay_pause()`)
so that lag is certain rather than hoped for:

  * a writer reads its own follow, post and unfollow at once, through both processes;
  * an anonymous reader through A (the standby within A's budget) gets the standby's older answer,
    and the new one once replay resumes;
  * through B the same standby lags more than B's budget, so B takes it out of the rotation and
    the anonymous reader gets the new answer at once;
  * a removed account's token is refused at once by both (the token's user is read from the
    primary);
  * a cursor issued from one node pages on the other;
  * a standby that is stopped while readers hammer both processes costs no request an error, and
    takes reads again once it is back.

With CI=true a missing PostgreSQL installation is a failure, otherwise a skip. Every process is
killed by PID and the directory removed at the end.

`.ci/standby --serve` only starts the primary and the standby, prints their URLs and keeps them
until interrupted, for `bench run --read-url` (bench/README.md).
"""

from __future__ import annotations

import glob
import http.client
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))

sys.dont_write_bytecode = True  # no __pycache__ in .ci/
import e2e  # noqa: E402  (.ci/e2e.py: the HTTP helper)

# The process, database and clean-up helpers are shared with the durability check.
import durability as ci  # noqa: E402


Mismatch, check = ci.Mismatch, ci.require


def postgres_bin() -> str | None:
    """The newest PostgreSQL server binaries Debian installed."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0)
    return os.path.dirname(found[-1]) if found else None


class Cluster:
    """One PostgreSQL server of our own: a data directory and a port."""

    def __init__(self, bindir: str, workdir: str, name: str):
        self.bindir = bindir
        self.name = name
        self.data = os.path.join(workdir, name)
        self.sockets = workdir
        self.log = os.path.join(workdir, f"{name}.log")
        self.port = ci.free_port()
        self.running = False

    def run_as_owner(self, args: list[str], timeout: float = 120) -> str:
        """Runs a PostgreSQL tool as the `postgres` user when we are root (initdb and the server
        refuse root), else as ourselves."""
        command = [os.path.join(self.bindir, args[0])] + args[1:]
        if os.geteuid() == 0:
            command = ["runuser", "-u", "postgres", "--"] + command
        out = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                             stdin=subprocess.DEVNULL)
        if out.returncode != 0:
            raise Mismatch(f"{args[0]} failed: {out.stderr.strip() or out.stdout.strip()}")
        return out.stdout

    def start(self) -> None:
        options = (f"-p {self.port} -k {self.sockets} -c listen_addresses=127.0.0.1 "
                   "-c fsync=off -c full_page_writes=off -c synchronous_commit=off")
        self.run_as_owner(["pg_ctl", "-D", self.data, "-l", self.log, "-o", options, "-w",
                           "-t", "60", "start"])
        self.running = True
        ci.CLEANUP.add(self.stop)

    def stop(self, mode: str = "immediate") -> None:
        if self.running:
            self.running = False
            try:
                self.run_as_owner(["pg_ctl", "-D", self.data, "-m", mode, "-w", "stop"])
            except Mismatch as err:
                print(f"standby: warning: {err}", file=sys.stderr)

    def url(self, database: str) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def sql(self, sql: str, database: str = "social") -> str:
        out = subprocess.run(
            ["psql", self.url(database), "-X", "-A", "-t", "-q", "-v", "ON_ERROR_STOP=1",
             "-c", sql],
            capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
        if out.returncode != 0:
            raise Mismatch(f"psql on {self.name} failed on {sql[:80]!r}: {out.stderr.strip()}")
        return out.stdout.strip()


def wait_for(what: str, condition, timeout: float = 30.0, every: float = 0.05):
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise Mismatch(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def metric(port: int, name: str) -> float | None:
    """One sample of the server's /metrics (from loopback, which the default allows)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("GET", "/metrics")
        text = conn.getresponse().read().decode()
    finally:
        conn.close()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def start_pair(bindir: str, workdir: str) -> tuple[Cluster, Cluster]:
    """A primary with an empty database `social`, and a hot standby streaming from it."""
    primary = Cluster(bindir, workdir, "primary")
    primary.run_as_owner(["initdb", "-D", primary.data, "-U", "postgres", "--auth=trust",
                          "-E", "UTF8", "--no-locale", "--no-sync"])
    primary.start()
    primary.sql("CREATE DATABASE social", database="postgres")
    standby = Cluster(bindir, workdir, "standby")
    primary.run_as_owner(["pg_basebackup", "-h", "127.0.0.1", "-p", str(primary.port),
                          "-U", "postgres", "-D", standby.data, "-R", "-X", "stream",
                          "-c", "fast", "--no-sync"])
    standby.start()
    check(standby.sql("SELECT pg_is_in_recovery()") == "t", "the standby is not in recovery")
    return primary, standby


def main() -> int:
    # `--serve`: start the pair, print their URLs and keep them until interrupted (the
    # benchmark's `run --read-url` measures on them); no API process, no checks.
    serve = "--serve" in sys.argv[1:]
    began = time.monotonic()
    in_ci = os.environ.get("CI") == "true"
    bindir = postgres_bin()
    if bindir is None or shutil.which("psql") is None:
        message = "no PostgreSQL server binaries under /usr/lib/postgresql (Debian's postgresql)"
        print(f"standby: {'FAIL' if in_ci else 'SKIP'}: {message}")
        return 1 if in_ci else 0
    binary_source = None if serve else ci.server_binary("standby")
    if not serve and binary_source is None:
        return 1
    workdir, watchdog = ci.start_run(
        "standby", float(os.environ.get("STANDBY_BUDGET_SECONDS", 180)),
        stop_message="stopped; the directory is removed" if serve else None)
    if os.geteuid() == 0:
        # initdb and the servers run as `postgres`, under this directory.
        owner = pwd.getpwnam("postgres")
        os.chown(workdir, owner.pw_uid, owner.pw_gid)
        os.chmod(workdir, 0o755)
    binary = None if serve else ci.copy_binary(binary_source, workdir)

    def log(message):
        print(f"standby: ok: {message}", flush=True)

    servers: list = []
    result = 1
    try:
        primary, standby = start_pair(bindir, workdir)
        log(f"PostgreSQL primary on :{primary.port} and hot standby on :{standby.port} "
            f"({bindir})")
        if serve:
            print(f"standby: serving until interrupted (Ctrl-C or SIGTERM):\n"
                  f"  primary {primary.url('social')}\n  standby {standby.url('social')}",
                  flush=True)
            watchdog.finish()
            signal.pause()

        secret = secrets.token_hex(32)
        budgets = {"A": 60_000, "B": 1_000}
        for name, budget in budgets.items():
            server = ci.Server(binary, primary.url("social"), secret, workdir, f"api-{name.lower()}")
            server.env = {"DATABASE_READ_URL": standby.url("social"),
                          "READ_LAG_BUDGET_MS": str(budget)}
            server.start("run")
            servers.append(server)
        ports = {"A": servers[0].port, "B": servers[1].port}
        for name, port in ports.items():
            wait_for(f"{name} to put the standby in its rotation",
                     lambda port=port: metric(port, "db_read_standby_in_rotation") == 1.0)
        log(f"API A (budget {budgets['A']} ms) on :{ports['A']}, B (budget {budgets['B']} ms) "
            f"on :{ports['B']}; both read from the standby")

        def call(via, method, path, token=None, body=None):
            return e2e.request(ports[via], method, path, token, body, strict_json=True)

        def expect(via, method, path, status, token=None, body=None):
            got, headers, parsed = call(via, method, path, token, body)
            check(got == status, f"{method} {path} through {via}: {got} {parsed}, not {status}")
            return parsed, headers

        tokens = {}
        for name in ("writer", "target", "fan1", "fan2", "fan3"):
            body, _ = expect("A", "POST", "/auth/register", 201, body={
                "username": name, "email": f"{name}@example.com", "password": f"password-{name}"})
            tokens[name] = body["access_token"]
        writer = tokens["writer"]

        def caught_up():
            # The insert position, not the write position: this primary runs with
            # synchronous_commit=off, so a commit may still sit in the WAL buffers, behind what
            # pg_current_wal_lsn() reports, and a standby "caught up" to that may lack it.
            lsn = primary.sql("SELECT pg_current_wal_insert_lsn()", database="postgres")
            return standby.sql(
                f"SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn", database="postgres") == "t"

        def pause():
            wait_for("the standby to catch up", caught_up)
            standby.sql("SELECT pg_wal_replay_pause()", database="postgres")
            wait_for("replay to pause", lambda: standby.sql(
                "SELECT pg_get_wal_replay_pause_state()", database="postgres") == "paused")

        def resume():
            standby.sql("SELECT pg_wal_replay_resume()", database="postgres")
            wait_for("the standby to catch up", caught_up)

        def anonymous(via):
            """What an anonymous reader sees: target's follower count, writer's followees, and
            writer's posts."""
            target, _ = expect(via, "GET", "/users/target", 200)
            following, _ = expect(via, "GET", "/users/writer/following", 200)
            posts, _ = expect(via, "GET", "/users/writer/posts", 200)
            return (target["followers_count"], [i["user"]["username"] for i in following["items"]],
                    [p["body"] for p in posts["items"]])

        # Cursors: the fans follow target; a page from the primary (a recent writer's reads)
        # goes on from the standby (anonymous), and the other way round.
        for fan in ("fan1", "fan2", "fan3"):
            expect("A", "POST", "/users/target/follow", 201, tokens[fan])
        wait_for("the standby to catch up", caught_up)
        first, _ = expect("A", "GET", "/users/target/followers?limit=2", 200, tokens["fan3"])
        rest, _ = expect("B", "GET", "/users/target/followers?limit=2&cursor="
                         + urllib.parse.quote(first["next_cursor"]), 200)
        names = [i["user"]["username"] for i in first["items"] + rest["items"]]
        check(names == ["fan3", "fan2", "fan1"], f"followers paged primary then standby: {names}")
        first, _ = expect("B", "GET", "/users/target/followers?limit=1", 200)
        rest, _ = expect("A", "GET", "/users/target/followers?limit=5&cursor="
                         + urllib.parse.quote(first["next_cursor"]), 200, tokens["fan1"])
        names = [i["user"]["username"] for i in first["items"] + rest["items"]]
        check(names == ["fan3", "fan2", "fan1"], f"followers paged standby then primary: {names}")
        log("a cursor from the primary pages on the standby, and one from the standby on the "
            "primary")

        # Paused: follow and post.
        before = anonymous("A")
        check(before == (3, [], []), f"before the writes an anonymous reader saw {before}")
        pause()
        expect("A", "POST", "/users/target/follow", 201, writer)
        expect("B", "POST", "/posts", 201, writer, {"body": "while the standby waits"})
        for via in ("A", "B"):
            following, _ = expect(via, "GET", "/users/writer/following", 200, writer)
            check([i["user"]["username"] for i in following["items"]] == ["target"],
                  f"the writer's own follow, read at once through {via}: {following}")
            target, _ = expect(via, "GET", "/users/target", 200, writer)
            check(target["followers_count"] == 4 and target["viewer"]["following"] is True,
                  f"the target's profile as the writer sees it through {via}: {target}")
            timeline, _ = expect(via, "GET", "/timeline", 200, writer)
            check([p["body"] for p in timeline["items"]] == ["while the standby waits"],
                  f"the writer's timeline through {via}: {timeline}")
        log("a writer reads its own follow and post at once through both processes, replay "
            "paused")
        seen = anonymous("A")
        check(seen == (3, [], []), f"an anonymous reader through A (standby within its budget) "
              f"saw {seen}, not the standby's older answer")
        wait_for("B to take the lagging standby out of its rotation",
                 lambda: metric(ports["B"], "db_read_standby_in_rotation") == 0.0, timeout=10)
        new = (4, ["target"], ["while the standby waits"])
        seen = anonymous("B")
        check(seen == new, f"an anonymous reader through B (standby over its 1 s budget) saw "
              f"{seen}, not the primary's {new}")
        check(anonymous("A") == (3, [], []), "A stopped serving the standby's answer")
        lag = metric(ports["A"], "db_read_standby_lag_seconds")
        # B measured over 1 s to take it out; A's last check may be a fraction behind that.
        check(lag is not None and lag > 0.5, f"A's measured lag {lag} s while replay is paused")
        log(f"an anonymous reader gets the standby's older answer through A (lag {lag:.1f} s, "
            f"budget 60 s) and the primary's through B (budget 1 s)")
        resume()
        seen = wait_for("the new answer through A after replay resumed",
                        lambda: anonymous("A") == new and anonymous("A"))
        wait_for("B to take the standby back",
                 lambda: metric(ports["B"], "db_read_standby_in_rotation") == 1.0, timeout=10)
        check(anonymous("B") == new, "B from the standby again")
        log("once replay resumes, the anonymous reader gets the new answer through both")

        # Paused: unfollow, and a removed account.
        pause()
        expect("B", "DELETE", "/users/target/follow", 204, writer)
        for via in ("A", "B"):
            following, _ = expect(via, "GET", "/users/writer/following", 200, writer)
            check(following["items"] == [], f"the writer's unfollow through {via}: {following}")
            target, _ = expect(via, "GET", "/users/target", 200, writer)
            check(target["followers_count"] == 3 and target["viewer"]["following"] is False,
                  f"the target after the writer's unfollow, through {via}: {target}")
        log("a writer reads its own unfollow at once through both processes, replay paused")
        check(anonymous("A") == new, "the anonymous reader through A still has the old answer")
        expect("A", "DELETE", "/users/me", 204, tokens["fan2"], {"password": "password-fan2"})
        for via in ("A", "B"):
            got, _, body = call(via, "GET", "/timeline", tokens["fan2"])
            check(got == 401, f"a removed account's token through {via}: {got} {body}")
        log("a removed account's token is refused at once by both (replay paused)")
        resume()
        wait_for("the unfollow through A after replay resumed",
                 lambda: anonymous("A") == (2, [], ["while the standby waits"]))

        # A standby that stops while readers read.
        stop = threading.Event()
        failures: list[str] = []
        counts = {"A": 0, "B": 0}

        def reader(via):
            while not stop.is_set():
                for path in ("/users/target", "/users/target/followers", "/users/writer/posts"):
                    try:
                        got, _, body = call(via, "GET", path)
                        if got != 200:
                            failures.append(f"{path} through {via}: {got} {body}")
                    except Exception as err:  # noqa: BLE001  (any failure is the finding)
                        failures.append(f"{path} through {via}: {type(err).__name__}: {err}")
                    counts[via] += 1

        threads = [threading.Thread(target=reader, args=(via,)) for via in ("A", "B", "A", "B")]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        standby.stop("fast")
        time.sleep(2.0)
        in_rotation = [metric(ports[via], "db_read_standby_in_rotation") for via in ("A", "B")]
        stopped_counts = dict(counts)
        standby.start()
        for name, port in ports.items():
            wait_for(f"{name} to take the restarted standby back",
                     lambda port=port: metric(port, "db_read_standby_in_rotation") == 1.0)
        time.sleep(0.5)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        check(not failures, f"{len(failures)} reads failed around the standby's stop: "
              f"{failures[:5]}")
        check(in_rotation == [0.0, 0.0], f"with the standby stopped, in rotation: {in_rotation}")
        fallbacks = sum(metric(p, "db_read_standby_fallbacks_total") or 0 for p in ports.values())
        log(f"the standby stopped under {sum(counts.values())} anonymous reads "
            f"({sum(stopped_counts.values())} by the time it restarted): none failed "
            f"({fallbacks:.0f} answered from the primary after failing on the standby); both "
            f"took it back once it was up")

        for server in servers:
            check(server.proc.poll() is None, f"{server.name} exited")
        print(f"standby: PASS ({time.monotonic() - began:.1f} s)")
        result = 0
    except Exception as err:  # noqa: BLE001  (a mismatch, a dead process, a bad answer)
        print(f"standby: FAIL: {type(err).__name__}: {err}")
        for server in servers:
            print(f"--- last lines of {server.name}:\n{server.log_tail(15)}", end="")
    finally:
        ci.CLEANUP.run()
        watchdog.finish()
    return 1 if watchdog.fired.is_set() else result


if __name__ == "__main__":
    sys.exit(main())
