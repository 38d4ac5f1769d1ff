#!/usr/bin/env bash
# Runtime benchmark: EchoForge's own overhead on POST /v1/chat/completions (persistence on),
# against the fake model server in instant mode (answers "OK." at once, records nothing).
#   (a) non-streaming throughput at concurrency 32          (wrk, bench/chat.lua)
#   (b) platform overhead at concurrency 1: latency through EchoForge minus latency straight
#       to the stub, same request, same wrk settings, p50 and p99
#   (c) streaming time-to-first-token overhead p50           (bench/ttfb.py, both paths)
#   (d) 10,000 concurrent idle SSE streams: streaming chats whose model has not answered yet
#       (a second stub that waits 10 minutes), EchoForge RSS from /proc (bench/idle_streams.py)
# Usage: bench/runtime.sh [duration-seconds] [idle-streams]   (needs: wrk, curl, python3)
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10}"
STREAMS="${2:-10000}"
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
source bench/common.sh

# The stubs: one instant, one that holds every request for 10 minutes (idle streams).
start_stub STUB
start_stub SLOW --delay-ms 600000

start_server "$STUB/v1" "$DATA/a"
setup_tenant "$DATA/a"
# One request each way, so a broken setup fails loudly here.
curl -sf "$BASE/v1/chat/completions" -H "authorization: Bearer $KEY" -H 'content-type: application/json' \
  -d "{\"model\":\"$SLUG\",\"messages\":[{\"role\":\"user\",\"content\":\"Hi\"}]}" | grep -q '"OK."'
curl -sf "$STUB/v1/chat/completions" -H 'content-type: application/json' \
  -d '{"model":"fake-model","messages":[{"role":"user","content":"Hi"}]}' | grep -q '"OK."'

wrk_run() { # $1 = connections, $2 = URL, $3 = model, $4 = key
  BENCH_MODEL="$3" BENCH_KEY="$4" wrk -t"$(( $1 < 2 ? 1 : 2 ))" -c"$1" -d"${DURATION}s" --latency -s bench/chat.lua "$2"
}
pct() { awk -v p="$1" '$1==p {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; print v}'; }

echo "== (a) non-streaming, concurrency 32, ${DURATION}s, through EchoForge =="
wrk_run 32 "$BASE/v1/chat/completions" "$SLUG" "$KEY" | tee "$DATA/a.txt" | sed -n '1,20p'
echo "rows: $(python3 - "$DATA/a/echoforge.db" <<'PY' 2>/dev/null || true
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
print({t: c.execute(f"select count(*) from {t}").fetchone()[0] for t in ("conversations", "messages", "runs", "run_steps")})
PY
)"

echo "== (b) latency at concurrency 1, ${DURATION}s: straight to the stub, then through EchoForge =="
wrk_run 1 "$STUB/v1/chat/completions" fake-model "" >"$DATA/b-direct.txt"
wrk_run 1 "$BASE/v1/chat/completions" "$SLUG" "$KEY" >"$DATA/b-ef.txt"
for f in b-direct b-ef; do echo "-- $f"; sed -n '/Latency Distribution/,/Requests\/sec/p' "$DATA/$f.txt"; done
for p in 50% 99%; do
  d=$(pct "$p" <"$DATA/b-direct.txt"); e=$(pct "$p" <"$DATA/b-ef.txt")
  echo "overhead p${p%\%}: $(python3 -c "print(f'{$e - $d:.3f} ms  (through EchoForge {$e:.3f} ms, direct {$d:.3f} ms)')")"
done

echo "== (c) streaming time to first content token, 2000 requests one at a time =="
direct=$(python3 bench/ttfb.py "$STUB/v1/chat/completions" fake-model 2000)
through=$(python3 bench/ttfb.py "$BASE/v1/chat/completions" "$SLUG" 2000 "$KEY")
echo "direct:  $direct"; echo "through: $through"
python3 -c "import json,sys; d=json.loads(sys.argv[1]); t=json.loads(sys.argv[2]); print('TTFT overhead p50: %d us, p99: %d us' % (t['p50_us']-d['p50_us'], t['p99_us']-d['p99_us']))" "$direct" "$through"
echo "RSS after (a)-(c): $(( $(awk '/VmRSS/ {print $2}' /proc/$SPID/status) / 1024 )) MiB"

echo "== (d) ${STREAMS} concurrent idle SSE streams (model holds every request for 10 min) =="
kill "$SPID"; wait "$SPID" 2>/dev/null || true
start_server "$SLOW/v1" "$DATA/d"
setup_tenant "$DATA/d"
python3 bench/idle_streams.py "$BASE/v1/chat/completions" "$SLUG" "$STREAMS" "$SPID" "$KEY"
