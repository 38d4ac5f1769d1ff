#!/usr/bin/env bash
# MCP benchmark: what /mcp adds over /v1/chat/completions for the same agent and answer, and how
# fast tools/list answers. Release build, loopback, SQLite, persistence on, the fake model
# server in instant mode (answers "OK." at once); one keep-alive connection, one request at a
# time (bench/mcp_latency.py):
#   (a) N × POST /v1/chat/completions (non-streaming) and N × tools/call chat_<agent> on /mcp:
#       p50/p99 of each and the difference (MCP overhead)
#   (b) N × tools/list on /mcp: p50/p99
# Usage: bench/mcp.sh [N]   (needs: curl, python3)
set -euo pipefail
cd "$(dirname "$0")/.."
N="${1:-2000}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -q -p echoforge -p fakellm
BIN="$CARGO_TARGET_DIR/release/echoforge"
FAKE="$CARGO_TARGET_DIR/release/fakellm"
source bench/common.sh

"$FAKE" --port 0 --mode instant >"$DATA/fake.out" 2>&1 &
PIDS+=($!)
until grep -q listening "$DATA/fake.out" 2>/dev/null; do sleep 0.01; done
STUB=$(sed -n 's/^listening on //p' "$DATA/fake.out")

start_server "$STUB/v1" "$DATA/a"
KEY_PERMISSIONS='["chat","read"]' setup_tenant "$DATA/a"
python3 bench/mcp_latency.py "$BASE" "$SLUG" "$KEY" "$N"
echo "RSS after: $(( $(awk '/VmRSS/ {print $2}' /proc/$SPID/status) / 1024 )) MiB"
