#!/usr/bin/env python3
"""A browser's EventSource receives a post through a stream ticket.

The check serves a small page of its own on one port (a second origin, as an app's would be) and
starts the API on another, over a fresh SQLite database, with that page's origin in
CORS_ALLOWED_ORIGINS. Headless Chromium loads the page, whose script registers a user, asks
`POST /stream/ticket` for a ticket, opens `new EventSource(api + "/stream?ticket=...")` (which
cannot send an Authorization header: the reason tickets exist), writes a post once the stream is
open, and reports to the page's server what arrived. The check passes when the post's body came
back as a `post` event whose `id` is set. Chromium and the API are killed by PID at the end.
"""

from __future__ import annotations

import http.server
import json
import os
import secrets
import shutil
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

PAGE = """<!doctype html>
<meta charset="utf-8">
<title>stream check</title>
<pre id="log"></pre>
<script>
const api = "http://127.0.0.1:%(api_port)d";
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
  source.addEventListener("post", (event) => {
    const post = JSON.parse(event.data);
    log("post event: " + post.body);
    source.close();
    report({ok: post.body === body, body: post.body, id: event.lastEventId});
  });
  source.onerror = () => log("EventSource error, readyState " + source.readyState);
  source.onopen = async () => {
    log("stream open");
    const posted = await fetch(api + "/posts", {method: "POST",
      headers: {...auth, ...json}, body: JSON.stringify({body})});
    log("POST /posts answered " + posted.status);
  };
}
main().catch((err) => report({ok: false, error: String(err)}));
</script>
"""


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
    watchdog = ci.Watchdog("browser", float(os.environ.get("BROWSER_BUDGET_SECONDS", 90)))
    watchdog.start()

    result: dict = {}
    arrived = threading.Event()

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the standard library's name)
            page = (PAGE % {"api_port": api.port}).encode()
            self.send_response(200)
            self.send_header("content-type", "text/html; charset=utf-8")
            self.send_header("content-length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def do_POST(self):  # noqa: N802
            length = int(self.headers.get("content-length", "0"))
            result.update(json.loads(self.rfile.read(length)))
            self.send_response(204)
            self.end_headers()
            arrived.set()

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
        profile = os.path.join(workdir, "chromium-profile")
        browser = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={profile}", f"{origin}/"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        )
        ci.CLEANUP.add_process(browser)
        if not arrived.wait(60):
            print("browser: FAIL: the page reported nothing within 60 s\n" + api.log_tail())
        elif not result.get("ok") or not result.get("id"):
            print(f"browser: FAIL: the page reported {result}\n" + api.log_tail())
        else:
            print(f"browser: PASS: Chromium's EventSource, opened with a stream ticket from "
                  f"another origin, received {result['body']!r} as a post event with an id "
                  f"({time.monotonic() - began:.1f} s)")
            status = 0
    finally:
        ci.CLEANUP.run()
        watchdog.finish()
    return 1 if watchdog.fired.is_set() else status


if __name__ == "__main__":
    sys.exit(main())
