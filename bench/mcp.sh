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
source bench/common.sh
start_stub STUB

start_server "$STUB/v1" "$DATA/a"
KEY_PERMISSIONS='["chat","read"]' setup_tenant "$DATA/a"
python3 bench/mcp_latency.py "$BASE" "$SLUG" "$KEY" "$N"
echo "RSS after: $(( $(awk '/VmRSS/ {print $2}' /proc/$SPID/status) / 1024 )) MiB"
