#!/usr/bin/env python3
"""A browser's EventSource receives a post through a stream ticket, and again after a drop.

The check serves a small page of its own on one port (a second origin, as an app's would be) and
starts the API on another, over a fresh SQLite database, with that page's origin in
CORS_ALLOWED_ORIGINS. The page reaches the API through a TCP relay of the check's own on a third
port, so that the check can drop the connection as a network would. Headless Chromium loads the
page, whose script registers a user, asks `POST /stream/ticket` for a ticket, opens
`new EventSource(api + "/stream?ticket=...")` (which cannot send an Authorization header: the
reason tickets exist), writes a post once the stream is open, and reports to the page's server
what arrived. Then, more than 60 seconds after the ticket's issue (past the time a ticket must be
used in), the check cuts every connection through the relay and refuses new ones, writes a post
straight to the API, and lets connections through again: EventSource reconnects by itself with the
same URL and `Last-Event-ID`, so the stream must reopen with the old ticket and replay the missed
post. The check passes when both posts came back as `post` events with ids. Chromium and the API
are killed by PID at the end.
"""

from __future__ import annotations

import http.server
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.dont_write_bytecode = True

# The process, database and clean-up helpers are shared with the durability check.
import durability as ci  # noqa: E402
import e2e  # noqa: E402

# How long after the ticket's issue the drop comes: past the 60 s within which a ticket must open
# its stream.
DROP_AFTER_SECONDS = 63

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>stream check</title>
<pre id="log"></pre>
<script>
const api = "http://127.0.0.1:%(relay_port)d";
const log = (line) => { document.getElementById("log").textContent += line + "\\n"; };
const report = (result) => fetch("/result", {method: "POST", body: JSON.stringify(result)});
const json = {"content-type": "application/json"};
async function main() {
  const name = "browser_" + Math.floor(Math.random() * 1e9);
  const registered = await fetch(api + "/auth/register", {method: "POST", headers: json,
    body: JSON.stringify({username: name, email: name + "@example.com", password: "password-of-" + name})});
  if (registered.status !== 201) throw new Error("register answered " + registered.status);
  const token = (await registered.json()).access_token;
  const auth = {"authorization": "Bearer " + token};
  const issued = await fetch(api + "/stream/ticket", {method: "POST", headers: auth});
  if (issued.status !== 201) throw new Error("ticket answered " + issued.status);
  const ticket = (await issued.json()).ticket;
  const body = "posted from a browser " + name;
  const source = new EventSource(api + "/stream?ticket=" + encodeURIComponent(ticket));
  let posted = false;
  let seen = 0;
  source.addEventListener("post", (event) => {
    const post = JSON.parse(event.data);
    seen += 1;
    log("post event " + seen + ": " + post.body);
    if (seen === 1) {
      report({phase: "first", ok: post.body === body, body: post.body, id: event.lastEventId,
              token: token});
    } else {
      source.close();
      report({phase: "second", body: post.body, id: event.lastEventId});
    }
  });
  source.onerror = () => log("EventSource error, readyState " + source.readyState);
  source.onopen = async () => {
    log("stream open");
    if (posted) return;
    posted = true;
    const answer = await fetch(api + "/posts", {method: "POST",
      headers: {...auth, ...json}, body: JSON.stringify({body})});
    log("POST /posts answered " + answer.status);
  };
}
main().catch((err) => report({phase: "first", ok: false, error: String(err)}));
</script>
"""


class Relay:
    """A TCP relay on loopback in front of the API. `cut` drops every connection through it, as a
    network that goes away would, and closes new ones at once until `restore`."""

    def __init__(self, target_port: int):
        self.target_port = target_port
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.refusing = threading.Event()
        self.lock = threading.Lock()
        self.sockets: set[socket.socket] = set()
        self.closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            if self.refusing.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        for s in (source, sink):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self) -> None:
        self.refusing.set()
        with self.lock:
            sockets, self.sockets = self.sockets, set()
        for s in sockets:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def restore(self) -> None:
        self.refusing.clear()

    def close(self) -> None:
        self.cut()
        self.listener.close()


def main() -> int:
    began = time.monotonic()
    chromium = shutil.which("chromium")
    if chromium is None:
        print("browser: FAIL: no chromium (.ci/browser installs Debian's package)")
        return 1
    binary_source = os.environ.get("SOCIAL_BIN", os.path.join(
        os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target")), "debug", "social"))
    workdir = tempfile.mkdtemp(prefix="social-browser-")
    ci.CLEANUP.add(lambda: shutil.rmtree(workdir, ignore_errors=True))
    binary = os.path.join(workdir, "social")
    shutil.copy2(binary_source, binary)
    watchdog = ci.Watchdog("browser", float(os.environ.get("BROWSER_BUDGET_SECONDS", 180)))
    watchdog.start()

    results: dict[str, dict] = {}
    arrived = {"first": threading.Event(), "second": threading.Event()}

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the standard library's name)
            page = (PAGE % {"relay_port": relay.port}).encode()
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def do_POST(self):  # noqa: N802
            length = int(self.headers.get("content-length", "0"))
            result = json.loads(self.rfile.read(length))
            phase = result.get("phase", "first")
            results[phase] = result
            self.send_response(204)
            self.end_headers()
            arrived.get(phase, arrived["first"]).set()

        def log_message(self, *_):
            pass

    status = 1
    try:
        page_server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
        ci.CLEANUP.add(page_server.shutdown)
        threading.Thread(target=page_server.serve_forever, daemon=True).start()
        origin = f"http://127.0.0.1:{page_server.server_address[1]}"
        os.environ["CORS_ALLOWED_ORIGINS"] = origin
        api = ci.Server(binary, f"sqlite://{workdir}/browser.db?mode=rwc", secrets.token_hex(32),
                        workdir, "api")
        api.start("browser")
        relay = Relay(api.port)
        ci.CLEANUP.add(relay.close)
        profile = os.path.join(workdir, "chromium-profile")
        browser = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={profile}", f"{origin}/"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        )
        ci.CLEANUP.add_process(browser)
        if not arrived["first"].wait(60):
            print("browser: FAIL: the page reported nothing within 60 s\n" + api.log_tail())
            return 1
        # The ticket was issued before the first post was written, so at least this long ago.
        ticket_issued = time.monotonic()
        first = results["first"]
        if not first.get("ok") or not first.get("id"):
            print(f"browser: FAIL: the page reported {first}\n" + api.log_tail())
            return 1
        print(f"browser: the first post arrived ({time.monotonic() - began:.1f} s); dropping "
              f"the connection {DROP_AFTER_SECONDS} s after the ticket's issue")
        time.sleep(max(0.0, ticket_issued + DROP_AFTER_SECONDS - time.monotonic()))
        relay.cut()
        missed = f"written while the browser was cut off {secrets.token_hex(4)}"
        status_code, _, _ = e2e.request(api.port, "POST", "/posts", first["token"],
                                        {"body": missed})
        # Past EventSource's 2 s retry, so that its reconnect comes only after the post.
        time.sleep(3)
        relay.restore()
        if status_code != 201:
            print(f"browser: FAIL: POST /posts answered {status_code}\n" + api.log_tail())
            return 1
        if not arrived["second"].wait(30):
            print("browser: FAIL: the post written during the drop did not arrive within 30 s "
                  "of the reconnect\n" + api.log_tail())
            return 1
        second = results["second"]
        if second.get("body") != missed or not second.get("id"):
            print(f"browser: FAIL: after the drop the page reported {second}, expected "
                  f"{missed!r}\n" + api.log_tail())
            return 1
        print(f"browser: PASS: Chromium's EventSource, opened with a stream ticket from another "
              f"origin, received {first['body']!r} as a post event with an id, and after a drop "
              f"{DROP_AFTER_SECONDS} s after the ticket's issue reconnected by itself with the "
              f"same ticket and Last-Event-ID and received {missed!r} "
              f"({time.monotonic() - began:.1f} s)")
        status = 0
    finally:
        ci.CLEANUP.run()
        watchdog.finish()
    return 1 if watchdog.fired.is_set() else status


if __name__ == "__main__":
    sys.exit(main())
