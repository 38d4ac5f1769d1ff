-- MCP servers a workspace registered as tool sources, and which of their tools each agent uses.
--
-- `transport` is `http` (streamable HTTP at `url`) or `stdio` (`command` names a command the
-- operator approved in `[mcp.commands]`; workspaces never give a command line). Headers (a
-- bearer token) and environment variables are sealed by the vault in `secrets_sealed`.
-- `tools` is the last `tools/list` answer (JSON array), refreshed on registration, on request
-- and on `notifications/tools/list_changed`.
CREATE TABLE mcp_servers (
    id               TEXT PRIMARY KEY,
    workspace_id     TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    name             TEXT NOT NULL,
    transport        TEXT NOT NULL,
    url              TEXT,
    command          TEXT,
    args             TEXT NOT NULL DEFAULT '[]',
    secrets_sealed   TEXT NOT NULL,
    tools            TEXT NOT NULL DEFAULT '[]',
    tools_listed_at  BIGINT,
    last_error       TEXT,
    version          BIGINT NOT NULL DEFAULT 1,
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
CREATE INDEX mcp_servers_workspace ON mcp_servers (workspace_id);

-- An agent's use of a server: the tool names it may call (JSON array of strings).
CREATE TABLE agent_mcp_tools (
    agent_id       TEXT NOT NULL REFERENCES agents(id) ON DELETE CASCADE,
    server_id      TEXT NOT NULL REFERENCES mcp_servers(id) ON DELETE CASCADE,
    workspace_id   TEXT NOT NULL REFERENCES workspaces(id) ON DELETE CASCADE,
    tools          TEXT NOT NULL DEFAULT '[]',
    created_at     BIGINT NOT NULL,
    PRIMARY KEY (agent_id, server_id)
);
CREATE INDEX agent_mcp_tools_server ON agent_mcp_tools (server_id);
