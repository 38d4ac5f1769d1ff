# Shared by the benchmark scripts (sourced from the repository root): the release build of
# `echoforge` and `fakellm` (BIN, FAKE), a fresh data directory, cleanup of started processes,
# `start_stub NAME [fakellm args]` (a fake model in instant mode; sets the URL in $NAME),
# `start_server MODEL_BASE_URL DATA_DIR` (sets PORT, BASE, SPID) and `setup_tenant DATA_DIR`
# (signs up, verifies, creates a `generic-chat` agent and an API key with $KEY_PERMISSIONS,
# default ["chat"], on the enterprise plan; sets SLUG, KEY).
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"
cargo build --release -q -p echoforge -p fakellm
BIN="$CARGO_TARGET_DIR/release/echoforge"
FAKE="$CARGO_TARGET_DIR/release/fakellm"
DATA="$(mktemp -d)"
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$DATA"; }
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
ulimit -n "$(ulimit -Hn)"   # idle streams: every stream is a socket (client side and model side)

start_stub() { # $1 = variable to set to the stub's base URL, then extra fakellm arguments
  local name=$1; shift
  "$FAKE" --port 0 --mode instant "$@" >"$DATA/$name.out" 2>&1 &
  PIDS+=($!)
  until grep -q listening "$DATA/$name.out" 2>/dev/null; do sleep 0.01; done
  printf -v "$name" '%s' "$(sed -n 's/^listening on //p' "$DATA/$name.out")"
}

start_server() { # $1 = model base URL (…/v1), $2 = data dir; sets PORT, BASE, SPID
  PORT=$(free_port)
  BASE="http://127.0.0.1:$PORT"
  mkdir -p "$2"
  ECHOFORGE__LOG__LEVEL=warn ECHOFORGE__LLM__PROVIDER=openai ECHOFORGE__LLM__BASE_URL="$1" \
  ECHOFORGE__LLM__API_KEY=sk-bench ECHOFORGE__LLM__MODEL=fake-model \
  ECHOFORGE__LLM__TIMEOUT_SECS=900 ECHOFORGE__LLM__IDLE_TIMEOUT_SECS=900 \
    "$BIN" serve --bind "127.0.0.1:$PORT" --data-dir "$2" 2>"$2/server.log" &
  SPID=$!
  PIDS+=($SPID)
  until curl -sf "$BASE/readyz" >/dev/null; do sleep 0.01; done
}

setup_tenant() { # signs up, verifies, creates an agent and a chat key; sets SLUG, KEY
  local data=$1
  curl -sf -XPOST "$BASE/api/v1/auth/register" -H 'content-type: application/json' \
    -d '{"email":"bench@example.com","password":"Bench1password","name":"Bench","company_name":"Bench"}' >/dev/null
  for _ in $(seq 1 200); do ls "$data"/outbox/*.eml >/dev/null 2>&1 && break; sleep 0.05; done
  local token access
  token=$(python3 - "$data"/outbox/*.eml <<'PY'
import email, re, sys
msg = email.message_from_binary_file(open(sys.argv[1], "rb"))
print(re.search(r"Verification token: ([A-Za-z0-9_-]+)", msg.get_payload(decode=True).decode()).group(1))
PY
)
  curl -sf -XPOST "$BASE/api/v1/auth/verify-email" -H 'content-type: application/json' -d "{\"token\":\"$token\"}" >/dev/null
  access=$(curl -sf -XPOST "$BASE/api/v1/auth/login" -H 'content-type: application/json' \
    -d '{"email":"bench@example.com","password":"Bench1password"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  SLUG=$(curl -sf -XPOST "$BASE/api/v1/agents" -H "authorization: Bearer $access" -H 'content-type: application/json' \
    -d '{"display_name":"Bench Bot","template":"generic-chat","answers":{"purpose":"Answer questions"}}' \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["slug"])')
  KEY=$(curl -sf -XPOST "$BASE/api/v1/api-keys" -H "authorization: Bearer $access" -H 'content-type: application/json' \
    -d "{\"name\":\"bench\",\"permissions\":${KEY_PERMISSIONS:-[\"chat\"]}}" | python3 -c 'import json,sys; print(json.load(sys.stdin)["secret"])')
  # A starter workspace stops at 1,000 messages a month (402): the load runs on enterprise.
  local ws op
  ws=$(curl -sf "$BASE/api/v1/workspace" -H "authorization: Bearer $access" | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
  ECHOFORGE_OPERATOR_PASSWORD=Bench1operator "$BIN" admin create-operator --data-dir "$data" \
    --email operator@example.com >/dev/null 2>&1
  op=$(curl -sf -XPOST "$BASE/api/v1/auth/login" -H 'content-type: application/json' \
    -d '{"email":"operator@example.com","password":"Bench1operator"}' | python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])')
  curl -sf -XPATCH "$BASE/api/v1/admin/workspaces/$ws" -H "authorization: Bearer $op" \
    -H 'content-type: application/json' -d '{"plan":"enterprise"}' >/dev/null
}

