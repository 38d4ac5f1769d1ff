#!/usr/bin/env python3
"""Opens N streaming chat completions that stay open and idle (the model behind them has not
answered yet), checks every one got `200` and its first SSE bytes, waits for the server to
settle, then reads the server's RSS from /proc and checks the streams are all still open.

usage: idle_streams.py URL MODEL N SERVER_PID [API_KEY]
"""
import asyncio, json, sys
from urllib.parse import urlparse

url, model, n, pid = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
key = sys.argv[5] if len(sys.argv) > 5 else ""
u = urlparse(url)
body = json.dumps({"model": model, "stream": True,
                   "messages": [{"role": "user", "content": "Hello, are you there?"}]}).encode()
req = (f"POST {u.path} HTTP/1.1\r\nHost: {u.netloc}\r\ncontent-type: application/json\r\n"
       f"content-length: {len(body)}\r\n" + (f"authorization: Bearer {key}\r\n" if key else "") +
       "\r\n").encode() + body

def rss_kb():
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

async def open_one(sem, streams):
    async with sem:
        r, w = await asyncio.open_connection(u.hostname, u.port)
        w.write(req)
        await w.drain()
        first = b""
        while b"data: " not in first and len(first) < 65536:
            more = await asyncio.wait_for(r.read(4096), 60)
            if not more:
                break
            first += more
        if not first.startswith(b"HTTP/1.1 200") or b"data: " not in first:
            raise SystemExit(f"stream not opened: {first[:300]!r}")
        streams.append((r, w))

async def main():
    before = rss_kb()
    sem = asyncio.Semaphore(200)
    streams = []
    await asyncio.gather(*(open_one(sem, streams) for _ in range(n)))
    opened = len(streams)
    await asyncio.sleep(5)
    after = rss_kb()
    # Still open and idle: nothing more has arrived and no stream was closed.
    closed = 0
    for r, _ in streams:
        try:
            data = await asyncio.wait_for(r.read(1), 0.001)
            if data == b"":
                closed += 1
        except asyncio.TimeoutError:
            pass
    print(json.dumps({"streams": opened, "closed_after_settle": closed,
                      "rss_before_kb": before, "rss_with_streams_kb": after,
                      "per_stream_kb": round((after - before) / max(opened, 1), 1)}))
    for _, w in streams:
        w.close()

asyncio.run(main())
