"""A stdio MCP server on the official `mcp` Python SDK whose tool list changes: calling `unlock`
adds a read-only `reveal` tool and sends notifications/tools/list_changed to the session (the
notification protocol versions before 2026 use; tests/mcp_client.rs)."""

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import ToolAnnotations

server = MCPServer("changing")


def reveal() -> str:
    """Tells the secret."""
    return "The secret is 42."


@server.tool()
async def unlock(ctx: Context) -> str:
    """Adds the reveal tool."""
    server.add_tool(reveal, annotations=ToolAnnotations(readOnlyHint=True))
    await ctx.session.send_tool_list_changed()
    return "Unlocked: reveal is available now."


if __name__ == "__main__":
    server.run("stdio")
