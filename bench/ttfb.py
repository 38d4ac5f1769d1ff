#!/usr/bin/env python3
"""Streaming time-to-first-token of an OpenAI-compatible endpoint, one request at a time over
one keep-alive HTTP/1.1 connection: the time from sending the request to receiving the first
SSE chunk whose delta carries non-empty `content` (an empty role-only first chunk does not
count). Prints p50/p90/p99 in microseconds.

usage: ttfb.py URL MODEL N [API_KEY]     (URL like http://127.0.0.1:PORT/v1/chat/completions)
"""
import json, re, socket, sys, time
from urllib.parse import urlparse

url, model, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
key = sys.argv[4] if len(sys.argv) > 4 else ""
u = urlparse(url)
body = json.dumps({"model": model, "stream": True,
                   "messages": [{"role": "user", "content": "Hello, what are your opening hours?"}]}).encode()
head = (f"POST {u.path} HTTP/1.1\r\nHost: {u.netloc}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n" + (f"authorization: Bearer {key}\r\n" if key else "") + "\r\n").encode()
req = head + body
FIRST = re.compile(rb'"content":"[^"]')

sock = socket.create_connection((u.hostname, u.port))
sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

def one():
    t0 = time.perf_counter_ns()
    sock.sendall(req)
    buf = b""
    ttft = None
    length = None  # body length when the answer has Content-Length
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            raise SystemExit(f"connection closed early after {buf[:300]!r}")
        buf += chunk
        if ttft is None and FIRST.search(buf):
            ttft = time.perf_counter_ns() - t0
        head_end = buf.find(b"\r\n\r\n")
        if head_end < 0:
            continue
        head = buf[:head_end].lower()
        body = buf[head_end + 4:]
        m = re.search(rb"content-length: *(\d+)", head)
        if m:
            length = int(m.group(1))
            if len(body) >= length:
                break
        elif body.endswith(b"0\r\n\r\n") and b"[DONE]" in body:
            break
    if not buf.startswith(b"HTTP/1.1 200"):
        raise SystemExit(f"unexpected answer: {buf[:300]!r}")
    if ttft is None:
        raise SystemExit(f"no content chunk in: {buf[:600]!r}")
    return ttft

for _ in range(min(200, n)):  # warm-up
    one()
xs = sorted(one() for _ in range(n))
pct = lambda p: xs[min(len(xs) - 1, int(len(xs) * p / 100))] / 1000
print(json.dumps({"n": n, "p50_us": round(pct(50)), "p90_us": round(pct(90)), "p99_us": round(pct(99))}))
