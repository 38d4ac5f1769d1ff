//! MCP servers a workspace registered as tool sources (secrets sealed by the vault before they
//! reach here), their last tool list, and which of their tools each agent may call.

use domain::time::Millis;
use domain::{AgentId, McpServerId, WorkspaceId};
use serde::Serialize;

use crate::db::on_db;
use crate::{Result, Store, StoreError, TenantScope};

/// A registered MCP server as stored.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct McpServer {
    #[sqlx(try_from = "String")]
    pub id: McpServerId,
    #[sqlx(try_from = "String")]
    pub workspace_id: WorkspaceId,
    pub name: String,
    /// `http` or `stdio`.
    pub transport: String,
    pub url: Option<String>,
    /// The operator-approved command's name (`[mcp.commands.<name>]`).
    pub command: Option<String>,
    /// Extra arguments (JSON array of strings).
    pub args: String,
    /// Headers / environment sealed by the vault; never serialised.
    #[serde(skip)]
    pub secrets_sealed: String,
    /// The last `tools/list` answer (JSON array).
    pub tools: String,
    pub tools_listed_at: Option<Millis>,
    pub last_error: Option<String>,
    pub version: i64,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// A server to record.
#[derive(Debug, Clone)]
pub struct NewMcpServer {
    pub id: McpServerId,
    pub name: String,
    pub transport: String,
    pub url: Option<String>,
    pub command: Option<String>,
    pub args: String,
    pub secrets_sealed: String,
}

/// An agent's use of a server's tools.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AgentMcpTools {
    #[sqlx(try_from = "String")]
    pub agent_id: AgentId,
    #[sqlx(try_from = "String")]
    pub server_id: McpServerId,
    /// Tool names (JSON array of strings).
    pub tools: String,
    pub created_at: Millis,
}

macro_rules! server_columns {
    () => {
        "id, workspace_id, name, transport, url, command, args, secrets_sealed, tools, tools_listed_at,
         last_error, version, created_at, updated_at"
    };
}

impl Store {
    pub async fn create_mcp_server(
        &self,
        scope: &TenantScope,
        new: &NewMcpServer,
        now: Millis,
    ) -> Result<McpServer> {
        on_db!(write self, pool => sqlx::query_as(concat!(
            "INSERT INTO mcp_servers (id, workspace_id, name, transport, url, command, args, secrets_sealed, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING ", server_columns!()))
            .bind(new.id.to_string()).bind(scope.workspace_id().to_string()).bind(&new.name)
            .bind(&new.transport).bind(&new.url).bind(&new.command).bind(&new.args)
            .bind(&new.secrets_sealed).bind(now)
            .fetch_one(pool).await)
        .map_err(Into::into)
    }

    pub async fn list_mcp_servers(&self, scope: &TenantScope) -> Result<Vec<McpServer>> {
        on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", server_columns!(),
            " FROM mcp_servers WHERE workspace_id = $1 ORDER BY id"))
            .bind(scope.workspace_id().to_string())
            .fetch_all(pool).await)
        .map_err(Into::into)
    }

    pub async fn get_mcp_server(&self, scope: &TenantScope, id: McpServerId) -> Result<McpServer> {
        on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", server_columns!(),
            " FROM mcp_servers WHERE id = $1 AND workspace_id = $2"))
            .bind(id.to_string()).bind(scope.workspace_id().to_string())
            .fetch_optional(pool).await)?
        .ok_or(StoreError::NotFound)
    }

    /// Records a `tools/list` answer (`tools`, `error` None) or why listing failed.
    pub async fn set_mcp_server_tools(
        &self,
        scope: &TenantScope,
        id: McpServerId,
        tools: Option<&str>,
        error: Option<&str>,
        now: Millis,
    ) -> Result<McpServer> {
        on_db!(write self, pool => sqlx::query_as(concat!(
            "UPDATE mcp_servers SET tools = COALESCE($3, tools), tools_listed_at = CASE WHEN $3 IS NULL THEN tools_listed_at ELSE $5 END,
             last_error = $4, updated_at = $5 WHERE id = $1 AND workspace_id = $2 RETURNING ", server_columns!()))
            .bind(id.to_string()).bind(scope.workspace_id().to_string()).bind(tools).bind(error).bind(now)
            .fetch_optional(pool).await)?
        .ok_or(StoreError::NotFound)
    }

    pub async fn delete_mcp_server(&self, scope: &TenantScope, id: McpServerId) -> Result<()> {
        let n = on_db!(write self, pool => sqlx::query("DELETE FROM mcp_servers WHERE id = $1 AND workspace_id = $2")
            .bind(id.to_string()).bind(scope.workspace_id().to_string())
            .execute(pool).await.map(|r| r.rows_affected()))?;
        if n == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    /// Lets one of the workspace's agents call `tools` (JSON array) of one of its servers.
    pub async fn link_agent_mcp_tools(
        &self,
        scope: &TenantScope,
        agent: AgentId,
        server: McpServerId,
        tools: &str,
        now: Millis,
    ) -> Result<AgentMcpTools> {
        on_db!(write self, pool => sqlx::query_as(
            "INSERT INTO agent_mcp_tools (agent_id, server_id, workspace_id, tools, created_at)
             SELECT a.id, m.id, a.workspace_id, $4, $5 FROM agents a JOIN mcp_servers m ON m.workspace_id = a.workspace_id
             WHERE a.id = $1 AND m.id = $2 AND a.workspace_id = $3
             ON CONFLICT (agent_id, server_id) DO UPDATE SET tools = excluded.tools
             RETURNING agent_id, server_id, tools, created_at")
            .bind(agent.to_string()).bind(server.to_string()).bind(scope.workspace_id().to_string())
            .bind(tools).bind(now)
            .fetch_optional(pool).await)?
        .ok_or(StoreError::NotFound)
    }

    pub async fn unlink_agent_mcp_tools(
        &self,
        scope: &TenantScope,
        agent: AgentId,
        server: McpServerId,
    ) -> Result<()> {
        let n = on_db!(write self, pool => sqlx::query(
            "DELETE FROM agent_mcp_tools WHERE agent_id = $1 AND server_id = $2 AND workspace_id = $3")
            .bind(agent.to_string()).bind(server.to_string()).bind(scope.workspace_id().to_string())
            .execute(pool).await.map(|r| r.rows_affected()))?;
        if n == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    pub async fn agent_mcp_tools(
        &self,
        scope: &TenantScope,
        agent: AgentId,
    ) -> Result<Vec<AgentMcpTools>> {
        on_db!(read self, pool => sqlx::query_as(
            "SELECT agent_id, server_id, tools, created_at FROM agent_mcp_tools
             WHERE agent_id = $1 AND workspace_id = $2 ORDER BY created_at, server_id")
            .bind(agent.to_string()).bind(scope.workspace_id().to_string())
            .fetch_all(pool).await)
        .map_err(Into::into)
    }

    /// Every agent's use of every server of the workspace (for the MCP servers page).
    pub async fn workspace_mcp_tools(&self, scope: &TenantScope) -> Result<Vec<AgentMcpTools>> {
        on_db!(read self, pool => sqlx::query_as(
            "SELECT agent_id, server_id, tools, created_at FROM agent_mcp_tools
             WHERE workspace_id = $1 ORDER BY created_at, agent_id, server_id")
            .bind(scope.workspace_id().to_string())
            .fetch_all(pool).await)
        .map_err(Into::into)
    }
}
