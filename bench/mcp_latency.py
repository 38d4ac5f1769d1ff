#!/usr/bin/env python3
"""Latency of the same answer through /v1/chat/completions and through /mcp (tools/call of the
agent's chat tool), and of tools/list, one request at a time over one keep-alive HTTP/1.1
connection per surface. Prints each figure's p50/p99 in milliseconds and the MCP overhead.

usage: mcp_latency.py BASE_URL AGENT_SLUG API_KEY N
"""
import http.client, json, sys, time
from urllib.parse import urlparse

base, slug, key, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
u = urlparse(base)
auth = {"authorization": f"Bearer {key}", "content-type": "application/json"}
MCP = {**auth, "accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-06-18"}


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100))]


def timed(conn, path, body, headers, check):
    raw = json.dumps(body).encode()
    t0 = time.perf_counter_ns()
    conn.request("POST", path, raw, headers)
    r = conn.getresponse()
    data = r.read()
    dt = (time.perf_counter_ns() - t0) / 1e6
    if r.status >= 300 or not check(data):
        sys.exit(f"{path}: {r.status} {data[:300]!r}")
    return dt, r


def last_rpc(data):
    """The JSON-RPC response of a JSON or SSE body."""
    text = data.decode()
    try:
        return json.loads(text)
    except ValueError:
        msgs = [json.loads(l[5:]) for l in text.splitlines() if l.startswith("data:") and l[5:].strip()]
        return [m for m in msgs if "id" in m][-1]


v1 = http.client.HTTPConnection(u.hostname, u.port)
mcp = http.client.HTTPConnection(u.hostname, u.port)
_, r = timed(mcp, "/mcp", {"jsonrpc": "2.0", "id": 0, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "bench", "version": "1"}}},
    MCP, lambda d: b"serverInfo" in d)
session = r.getheader("mcp-session-id")
if session:
    MCP["mcp-session-id"] = session
mcp.request("POST", "/mcp", json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}), MCP)
mcp.getresponse().read()

chat = {"model": slug, "messages": [{"role": "user", "content": "Hello, what are your opening hours?"}]}
tool = f"chat_{slug.replace('-', '_')}"
ok_v1 = lambda d: b'"OK."' in d
ok_call = lambda d: last_rpc(d).get("result", {}).get("structuredContent", {}).get("answer") == "OK."
ok_list = lambda d: tool in json.dumps(last_rpc(d).get("result", {}))

# Warm both paths (caches, connections), then alternate so drift hits both alike.
for i in range(50):
    timed(v1, "/v1/chat/completions", chat, auth, ok_v1)
    timed(mcp, "/mcp", {"jsonrpc": "2.0", "id": i + 1, "method": "tools/call",
                        "params": {"name": tool, "arguments": {"message": "Hello"}}}, MCP, ok_call)
a, b, c = [], [], []
for i in range(n):
    a.append(timed(v1, "/v1/chat/completions", chat, auth, ok_v1)[0])
    b.append(timed(mcp, "/mcp", {"jsonrpc": "2.0", "id": 1000 + i, "method": "tools/call",
                                 "params": {"name": tool, "arguments": {
                                     "message": "Hello, what are your opening hours?"}}}, MCP, ok_call)[0])
    c.append(timed(mcp, "/mcp", {"jsonrpc": "2.0", "id": 10 ** 6 + i, "method": "tools/list",
                                 "params": {}}, MCP, ok_list)[0])
out = {
    "n": n,
    "v1_p50_ms": round(pct(a, 50), 3), "v1_p99_ms": round(pct(a, 99), 3),
    "mcp_call_p50_ms": round(pct(b, 50), 3), "mcp_call_p99_ms": round(pct(b, 99), 3),
    "mcp_overhead_p50_ms": round(pct(b, 50) - pct(a, 50), 3),
    "mcp_overhead_p99_ms": round(pct(b, 99) - pct(a, 99), 3),
    "tools_list_p50_ms": round(pct(c, 50), 3), "tools_list_p99_ms": round(pct(c, 99), 3),
}
print(json.dumps(out, indent=1))
