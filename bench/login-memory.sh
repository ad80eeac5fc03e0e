#!/usr/bin/env bash
# Peak memory of the server across password hashing: starts SERVER_BIN (default
# target/release/social) on a fresh SQLite database, registers one user, logs in 30 times,
# three at a time, and prints VmHWM/VmRSS after start and after the logins.
# Usage: bench/login-memory.sh [SERVER_BIN]
set -euo pipefail
bin=${1:-target/release/social}
dir=$(mktemp -d)
port=18089
DATABASE_URL="sqlite://$dir/m.db?mode=rwc" BIND_ADDR=127.0.0.1:$port \
  RATE_LIMIT_AUTH_PER_MINUTE=100000 RUST_LOG=warn "$bin" >"$dir/log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -rf "$dir"' EXIT
for _ in $(seq 100); do
  curl -sf "127.0.0.1:$port/health/ready" >/dev/null 2>&1 && break
  sleep 0.2
done
memory() { grep -E "VmHWM|VmRSS" "/proc/$server/status" | tr -s ' \t\n' ' '; echo "($1)"; }
memory "after start"
curl -sf -o /dev/null -X POST "127.0.0.1:$port/auth/register" -H 'content-type: application/json' \
  -d '{"username":"memuser","email":"m@example.com","password":"correct horse battery"}'
for _ in $(seq 10); do
  pids=()
  for _ in 1 2 3; do
    curl -sf -o /dev/null -X POST "127.0.0.1:$port/auth/login" -H 'content-type: application/json' \
      -d '{"username":"memuser","password":"correct horse battery"}' &
    pids+=($!)
  done
  wait "${pids[@]}"
done
memory "after 30 logins"
