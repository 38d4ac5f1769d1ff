#!/usr/bin/env bash
# Foundation benchmark: cold start to ready, idle RSS, and an authenticated read
# (GET /api/v1/api-keys with an API key) at concurrency 32 on loopback, with wrk.
# Usage: bench/foundation.sh [duration-seconds]   (needs: wrk, curl, python3)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-15}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -q -p echoforge
BIN="$CARGO_TARGET_DIR/release/echoforge"
DATA="$(mktemp -d)"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BASE="http://127.0.0.1:$PORT"
export ECHOFORGE__LOG__LEVEL=warn

start=$(date +%s%N)
"$BIN" serve --bind "127.0.0.1:$PORT" --data-dir "$DATA" 2>"$DATA/server.log" &
PID=$!
trap 'kill $PID 2>/dev/null; rm -rf "$DATA"' EXIT
until curl -sf "$BASE/readyz" >/dev/null; do sleep 0.002; done
ready_ms=$(( ($(date +%s%N) - start) / 1000000 ))
sleep 2
idle_rss_kb=$(awk '/VmRSS/ {print $2}' /proc/$PID/status)

curl -sf -XPOST "$BASE/api/v1/auth/register" -H 'content-type: application/json' \
  -d '{"email":"bench@example.com","password":"Bench1password","name":"Bench","company_name":"Bench"}' >/dev/null
for _ in $(seq 1 100); do ls "$DATA"/outbox/*.eml >/dev/null 2>&1 && break; sleep 0.05; done
TOKEN=$(python3 - "$DATA"/outbox/*.eml <<'PY'
import email, re, sys
msg = email.message_from_binary_file(open(sys.argv[1], "rb"))
body = msg.get_payload(decode=True).decode()
print(re.search(r"Verification token: ([A-Za-z0-9_-]+)", body).group(1))
PY
)
curl -sf -XPOST "$BASE/api/v1/auth/verify-email" -H 'content-type: application/json' -d "{\"token\":\"$TOKEN\"}" >/dev/null
ACCESS=$(curl -sf -XPOST "$BASE/api/v1/auth/login" -H 'content-type: application/json' \
  -d '{"email":"bench@example.com","password":"Bench1password"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
KEY=$(curl -sf -XPOST "$BASE/api/v1/api-keys" -H "authorization: Bearer $ACCESS" -H 'content-type: application/json' \
  -d '{"name":"bench","permissions":["read","admin"]}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])')
for i in 1 2 3 4; do
  curl -sf -XPOST "$BASE/api/v1/api-keys" -H "authorization: Bearer $ACCESS" -H 'content-type: application/json' \
    -d "{\"name\":\"extra-$i\",\"permissions\":[\"read\"]}" >/dev/null
done

echo "cold start to ready: ${ready_ms} ms"
echo "idle RSS: $((idle_rss_kb / 1024)) MiB (${idle_rss_kb} kB)"
echo "authenticated read, GET /api/v1/api-keys (5 keys listed), concurrency 32, ${DURATION}s:"
wrk -t2 -c32 -d"${DURATION}s" --latency -H "authorization: Bearer $KEY" "$BASE/api/v1/api-keys" | sed -n '1,20p'
echo "RSS after load: $(( $(awk '/VmRSS/ {print $2}' /proc/$PID/status) / 1024 )) MiB"
