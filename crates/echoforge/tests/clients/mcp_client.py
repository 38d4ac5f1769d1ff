"""Drives EchoForge's /mcp with the official `mcp` Python SDK (tests-requirements.txt).

argv: URL, API key, chat tool, search tool. Prints one `NAME:value` line per check; the Rust
test (crates/echoforge/tests/mcp.rs) compares them.
"""
import asyncio
import sys

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

url, key, chat_tool, search_tool = sys.argv[1:5]


async def main() -> None:
    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {key}"}, timeout=30)
    async with Client(streamable_http_client(url, http_client=http)) as c:
        tools = await c.list_tools()
        print("TOOLS:" + ",".join(sorted(t.name for t in tools.tools)))
        progress: list[str] = []

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            progress.append(message or "")

        first = await c.call_tool(chat_tool, {"message": "How many holiday days?"}, progress_callback=on_progress)
        sc = first.structured_content
        print("ERROR1:" + str(bool(first.is_error)))
        print("ANSWER1:" + sc["answer"])
        print("CITED:" + sc["citations"][0]["document_title"])
        print("TEXT_HAS_SOURCES:" + str("Sources:" in first.content[0].text))
        print("PROGRESS:" + "|".join(progress))
        second = await c.call_tool(chat_tool, {"message": "And expenses?", "conversation_id": sc["conversation_id"]})
        print("ANSWER2:" + second.structured_content["answer"])
        print("SAME_CONVERSATION:" + str(second.structured_content["conversation_id"] == sc["conversation_id"]))
        found = await c.call_tool(search_tool, {"query": "paid holiday days", "top_k": 3})
        print("SEARCH:" + found.structured_content["results"][0]["document_title"])
        try:
            await c.call_tool("chat_nobody_here", {"message": "hi"})
            print("UNKNOWN:accepted")
        except MCPError as e:
            print("UNKNOWN:%d" % e.code)
        try:
            await c.call_tool(chat_tool, {})
            print("MISSING:accepted")
        except MCPError as e:
            print("MISSING:%d" % e.code)
    await http.aclose()


asyncio.run(main())
