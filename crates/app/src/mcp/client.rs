//! Tools from MCP servers: a workspace registers servers (streamable HTTP through the SSRF
//! guard, or stdio running a command the operator approved), their tools are listed on
//! registration, on request and when the server says they changed, and an agent picks which it
//! may call. Each picked tool is a [`runtime::Tool`] like an integration action: validated,
//! confirmed when it may have side effects, timed out, capped and traced by the runtime; a
//! server that is down answers the model with a clear error, never a failed run.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use domain::time::now_ms;
use domain::{AgentId, McpServerId, Permission};
use mcp::{Pool, PoolSettings, RemoteTool, ServerSpec};
use parking_lot::RwLock;
use runtime::{Tool, ToolContext, ToolOutput};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use store::TenantScope;
use utoipa::ToSchema;

use crate::{App, AppError, FieldError, Principal};

/// A command the operator lets workspaces run as a stdio MCP server (`[mcp.commands.<name>]`).
#[derive(Debug, Clone, Default)]
pub struct McpCommand {
    pub command: String,
    pub args: Vec<String>,
}

/// `[mcp]` settings.
#[derive(Debug, Clone)]
pub struct McpSettings {
    /// By name: what `command` in a stdio registration may name.
    pub commands: BTreeMap<String, McpCommand>,
    /// Let HTTP servers be on loopback or private networks (metadata addresses stay blocked).
    pub allow_private_hosts: bool,
    pub call_timeout: Duration,
    /// A tool result longer than this is cut, with a note for the model.
    pub max_result_bytes: usize,
    pub idle_after: Duration,
    /// Stdio servers (each a process while in use) per workspace.
    pub max_stdio_servers: usize,
}

impl Default for McpSettings {
    fn default() -> Self {
        Self {
            commands: BTreeMap::new(),
            allow_private_hosts: false,
            call_timeout: Duration::from_secs(30),
            max_result_bytes: 64 * 1024,
            idle_after: Duration::from_secs(300),
            max_stdio_servers: 5,
        }
    }
}

/// The MCP client side's shared state: settings and the pool of live connections.
pub(crate) struct McpClients {
    settings: RwLock<Arc<McpSettings>>,
    pool: RwLock<Arc<Pool>>,
}

impl Default for McpClients {
    fn default() -> Self {
        Self {
            settings: RwLock::new(Arc::new(McpSettings::default())),
            pool: RwLock::new(Pool::new(PoolSettings::default())),
        }
    }
}

/// What a registration seals: headers (HTTP) or environment variables (stdio).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Secrets {
    #[serde(default)]
    headers: BTreeMap<String, String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
}

/// Registers an MCP server.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct McpServerInput {
    pub name: String,
    /// `http` (streamable HTTP) or `stdio`.
    pub transport: String,
    /// The server's URL (`http`).
    pub url: Option<String>,
    /// Sent with every request (`http`), e.g. `Authorization`; sealed, never shown again.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub headers: BTreeMap<String, String>,
    /// The name of a command the operator approved (`stdio`).
    pub command: Option<String>,
    /// Extra arguments after the approved command's own.
    #[serde(default)]
    pub args: Vec<String>,
    /// Environment variables for the process (`stdio`); sealed, never shown again.
    #[serde(default, deserialize_with = "null_as_empty")]
    pub env: BTreeMap<String, String>,
}

/// `null` is no entries (a form's empty field).
fn null_as_empty<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    Ok(Option::<BTreeMap<String, String>>::deserialize(d)?.unwrap_or_default())
}

/// One of a server's tools.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct McpToolView {
    pub name: String,
    pub title: Option<String>,
    pub description: String,
    #[schema(value_type = Object)]
    pub input_schema: Value,
    /// The server says the tool only reads (agents call it without confirmation).
    pub read_only: bool,
}

/// A registered MCP server.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct McpServerView {
    pub id: String,
    pub name: String,
    pub transport: String,
    pub url: Option<String>,
    pub command: Option<String>,
    pub args: Vec<String>,
    /// Header and environment names (their values are sealed).
    pub secret_names: Vec<String>,
    pub tools: Vec<McpToolView>,
    pub tools_listed_at: Option<i64>,
    /// Why the last connection or listing failed.
    pub last_error: Option<String>,
    /// `ok`, or `error` when the last listing failed.
    pub status: String,
    /// Whether a connection is live now (stdio: the process runs), its process id and restarts.
    pub running: bool,
    pub pid: Option<u32>,
    pub restarts: u32,
    pub created_at: i64,
}

/// Which of a server's tools an agent may call.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentMcpToolsInput {
    /// Tool names of the server (all must exist in its last listing).
    pub tools: Vec<String>,
}

/// An agent's use of a server.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AgentMcpToolsView {
    pub agent_id: String,
    pub server_id: String,
    pub tools: Vec<String>,
}

/// Servers are configuration: `read` or `config` sees them (never their secrets).
fn read_config(p: &Principal) -> Result<(), AppError> {
    if p.can(Permission::Config) { Ok(()) } else { p.require(Permission::Read) }
}

fn seal_context(ws: domain::WorkspaceId, id: McpServerId) -> String {
    format!("mcp-server:{ws}:{id}")
}

fn tools_of(row: &store::McpServer) -> Vec<McpToolView> {
    serde_json::from_str(&row.tools).unwrap_or_default()
}

impl App {
    /// Applies the `[mcp]` settings (at start).
    pub fn set_mcp(&self, settings: McpSettings) {
        let m = &self.inner.mcp;
        *m.pool.write() =
            Pool::new(PoolSettings { idle_after: settings.idle_after, ..Default::default() });
        *m.settings.write() = Arc::new(settings);
    }

    fn mcp_settings(&self) -> Arc<McpSettings> {
        self.inner.mcp.settings.read().clone()
    }

    fn mcp_pool(&self) -> Arc<Pool> {
        self.inner.mcp.pool.read().clone()
    }

    /// Stops the servers unused for the idle time (called by the periodic maintenance).
    pub async fn reap_idle_mcp_servers(&self) -> usize {
        self.mcp_pool().reap_idle().await
    }

    fn spec_of(&self, scope: &TenantScope, row: &store::McpServer) -> Result<ServerSpec, AppError> {
        let plain = self
            .inner
            .keyring
            .open(&row.secrets_sealed, &seal_context(scope.workspace_id(), row.id))
            .map_err(|e| AppError::Internal(format!("cannot open an MCP server's secrets: {e}")))?;
        let secrets: Secrets = serde_json::from_slice(&plain).unwrap_or_default();
        let settings = self.mcp_settings();
        match row.transport.as_str() {
            "http" => Ok(ServerSpec::Http {
                url: row.url.clone().unwrap_or_default(),
                headers: secrets.headers.into_iter().collect(),
                policy: fetch::AddressPolicy {
                    allow_private: settings.allow_private_hosts,
                    ..Default::default()
                },
            }),
            _ => {
                let name = row.command.clone().unwrap_or_default();
                let approved = settings.commands.get(&name).ok_or_else(|| {
                    AppError::conflict(
                        "mcp_command_not_approved",
                        format!("the operator no longer approves the command `{name}`"),
                    )
                })?;
                let extra: Vec<String> = serde_json::from_str(&row.args).unwrap_or_default();
                Ok(ServerSpec::Stdio {
                    command: approved.command.clone(),
                    args: approved.args.iter().cloned().chain(extra).collect(),
                    env: secrets.env.into_iter().collect(),
                })
            }
        }
    }

    /// A live connection to a stored server; a tool-list change re-lists in the background.
    async fn mcp_connection(
        &self,
        scope: &TenantScope,
        row: &store::McpServer,
    ) -> Result<Arc<mcp::Connection>, AppError> {
        let pool = self.mcp_pool();
        let key = row.id.to_string();
        if let Some(conn) = pool.live(&key, row.version as u64).await {
            return Ok(conn);
        }
        let spec = self.spec_of(scope, row)?;
        let app = self.clone();
        let (scope_c, id) = (*scope, row.id);
        let on_change: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
            tokio::spawn(relist_later(app.clone(), scope_c, id));
        });
        pool.get(&key, row.version as u64, &spec, on_change)
            .await
            .map_err(|e| AppError::bad_request("mcp_server_unavailable", e.to_string()))
    }

    /// Lists a server's tools and stores the answer (or why it failed).
    async fn relist_mcp_tools(
        &self,
        scope: &TenantScope,
        id: McpServerId,
    ) -> Result<store::McpServer, AppError> {
        let row = self
            .inner
            .store
            .get_mcp_server(scope, id)
            .await
            .map_err(AppError::from_store("MCP server"))?;
        let timeout = self.mcp_settings().call_timeout;
        let listed = match self.mcp_connection(scope, &row).await {
            Ok(conn) => conn.list_tools(timeout).await.map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        let now = now_ms();
        let row = match listed {
            Ok(tools) => {
                let views: Vec<McpToolView> = tools.into_iter().map(view_of).collect();
                let json = serde_json::to_string(&views).expect("tools serialise");
                self.inner.store.set_mcp_server_tools(scope, id, Some(&json), None, now).await?
            }
            Err(e) => self.inner.store.set_mcp_server_tools(scope, id, None, Some(&e), now).await?,
        };
        self.engine().agents.forget_workspace(scope.workspace_id());
        Ok(row)
    }

    async fn mcp_view(&self, row: store::McpServer) -> McpServerView {
        let status = self.mcp_pool().status(&row.id.to_string()).await;
        let secrets: Secrets = self
            .inner
            .keyring
            .open(&row.secrets_sealed, &seal_context(row.workspace_id, row.id))
            .ok()
            .and_then(|p| serde_json::from_slice(&p).ok())
            .unwrap_or_default();
        let secret_names = secrets.headers.keys().chain(secrets.env.keys()).cloned().collect();
        McpServerView {
            id: row.id.to_string(),
            tools: tools_of(&row),
            name: row.name,
            status: if row.last_error.is_some() { "error".into() } else { "ok".into() },
            transport: row.transport,
            url: row.url,
            command: row.command,
            args: serde_json::from_str(&row.args).unwrap_or_default(),
            secret_names,
            tools_listed_at: row.tools_listed_at,
            last_error: row.last_error,
            running: status.running,
            pid: status.pid,
            restarts: status.restarts,
            created_at: row.created_at,
        }
    }

    /// Registers a server (`config`), then connects and lists its tools: a server that cannot
    /// be reached is still registered, with the reason in `last_error`.
    pub async fn register_mcp_server(
        &self,
        p: &Principal,
        input: McpServerInput,
    ) -> Result<McpServerView, AppError> {
        p.require(Permission::Config)?;
        let scope = p.scope();
        let settings = self.mcp_settings();
        let mut errors = Vec::new();
        let name = input.name.trim().to_owned();
        if name.is_empty() || name.chars().count() > 100 {
            errors.push(FieldError::new("/name", "invalid", "must be 1 to 100 characters"));
        }
        let (url, command) = match input.transport.as_str() {
            "http" => {
                let url = input.url.clone().unwrap_or_default();
                match fetch::Url::parse(&url) {
                    Ok(u) => {
                        let policy = fetch::AddressPolicy {
                            allow_private: settings.allow_private_hosts,
                            ..Default::default()
                        };
                        if let Err(e) = fetch::check_url_address(&u, &policy) {
                            errors.push(FieldError::new("/url", "blocked", e.to_string()));
                        }
                    }
                    Err(_) => {
                        errors.push(FieldError::new("/url", "invalid", "must be an http(s) URL"))
                    }
                }
                if input.command.is_some() || !input.env.is_empty() || !input.args.is_empty() {
                    errors.push(FieldError::new(
                        "/command",
                        "unexpected",
                        "only for stdio servers",
                    ));
                }
                (Some(url), None)
            }
            "stdio" => {
                let command = input.command.clone().unwrap_or_default();
                if !settings.commands.contains_key(&command) {
                    let names: Vec<&str> = settings.commands.keys().map(String::as_str).collect();
                    errors.push(FieldError::new(
                        "/command",
                        "not_approved",
                        if names.is_empty() {
                            "the operator has approved no commands ([mcp.commands])".to_owned()
                        } else {
                            format!("must be one of the approved commands: {}", names.join(", "))
                        },
                    ));
                }
                if input.url.is_some() || !input.headers.is_empty() {
                    errors.push(FieldError::new("/url", "unexpected", "only for http servers"));
                }
                (None, Some(command))
            }
            _ => {
                errors.push(FieldError::new("/transport", "invalid", "must be http or stdio"));
                (None, None)
            }
        };
        for (k, v) in &input.headers {
            if reqwest::header::HeaderName::try_from(k.as_str()).is_err()
                || reqwest::header::HeaderValue::try_from(v.as_str()).is_err()
            {
                errors.push(FieldError::new(
                    &format!("/headers/{k}"),
                    "invalid",
                    "is not a valid HTTP header",
                ));
            }
        }
        if input.args.len() > 32 || input.args.iter().any(|a| a.len() > 1024) {
            errors.push(FieldError::new("/args", "too_long", "at most 32 arguments of 1024 bytes"));
        }
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        if input.transport == "stdio" {
            let registered = self.inner.store.list_mcp_servers(&scope).await?;
            let stdio = registered.iter().filter(|s| s.transport == "stdio").count();
            if stdio >= settings.max_stdio_servers {
                return Err(AppError::conflict(
                    "mcp_stdio_limit",
                    format!(
                        "this workspace already has {stdio} stdio MCP servers, the most the \
                         operator allows ([mcp] max_stdio_servers = {}); delete one first",
                        settings.max_stdio_servers
                    ),
                ));
            }
        }
        let id = McpServerId::new();
        let secrets = Secrets { headers: input.headers, env: input.env };
        let sealed = self.inner.keyring.seal(
            &serde_json::to_vec(&secrets).expect("secrets serialise"),
            &seal_context(scope.workspace_id(), id),
        );
        let new = store::NewMcpServer {
            id,
            name,
            transport: input.transport,
            url,
            command,
            args: serde_json::to_string(&input.args).expect("args serialise"),
            secrets_sealed: sealed,
        };
        self.inner.store.create_mcp_server(&scope, &new, now_ms()).await?;
        let row = self.relist_mcp_tools(&scope, id).await?;
        Ok(self.mcp_view(row).await)
    }

    /// The names of the commands the operator approved for stdio servers.
    pub fn mcp_commands(&self) -> Vec<String> {
        self.mcp_settings().commands.keys().cloned().collect()
    }

    /// Which tools of which server each agent of the workspace may call.
    pub async fn mcp_agent_tools(&self, p: &Principal) -> Result<Vec<AgentMcpToolsView>, AppError> {
        read_config(p)?;
        Ok(self
            .inner
            .store
            .workspace_mcp_tools(&p.scope())
            .await?
            .into_iter()
            .map(|l| AgentMcpToolsView {
                agent_id: l.agent_id.to_string(),
                server_id: l.server_id.to_string(),
                tools: serde_json::from_str(&l.tools).unwrap_or_default(),
            })
            .collect())
    }

    pub async fn mcp_servers(&self, p: &Principal) -> Result<Vec<McpServerView>, AppError> {
        read_config(p)?;
        let rows = self.inner.store.list_mcp_servers(&p.scope()).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            out.push(self.mcp_view(row).await);
        }
        Ok(out)
    }

    pub async fn mcp_server(
        &self,
        p: &Principal,
        id: McpServerId,
    ) -> Result<McpServerView, AppError> {
        read_config(p)?;
        let row = self
            .inner
            .store
            .get_mcp_server(&p.scope(), id)
            .await
            .map_err(AppError::from_store("MCP server"))?;
        Ok(self.mcp_view(row).await)
    }

    /// Connects (starting the process if needed) and lists the server's tools again.
    pub async fn refresh_mcp_server(
        &self,
        p: &Principal,
        id: McpServerId,
    ) -> Result<McpServerView, AppError> {
        p.require(Permission::Config)?;
        let row = self.relist_mcp_tools(&p.scope(), id).await?;
        Ok(self.mcp_view(row).await)
    }

    /// Deletes a server (its agents lose its tools) and stops its connection.
    pub async fn delete_mcp_server(&self, p: &Principal, id: McpServerId) -> Result<(), AppError> {
        p.require(Permission::Config)?;
        let scope = p.scope();
        self.inner
            .store
            .delete_mcp_server(&scope, id)
            .await
            .map_err(AppError::from_store("MCP server"))?;
        self.mcp_pool().stop(&id.to_string()).await;
        self.engine().agents.forget_workspace(scope.workspace_id());
        Ok(())
    }

    /// Lets an agent call some of a server's tools (replacing its earlier choice).
    pub async fn set_agent_mcp_tools(
        &self,
        p: &Principal,
        agent: AgentId,
        server: McpServerId,
        input: AgentMcpToolsInput,
    ) -> Result<AgentMcpToolsView, AppError> {
        p.require(Permission::Config)?;
        crate::auth::access::check_agent_access(p, agent)?;
        let scope = p.scope();
        self.inner.store.get_agent(&scope, agent).await.map_err(AppError::from_store("agent"))?;
        let row = self
            .inner
            .store
            .get_mcp_server(&scope, server)
            .await
            .map_err(AppError::from_store("MCP server"))?;
        let known: BTreeSet<String> = tools_of(&row).into_iter().map(|t| t.name).collect();
        let errors: Vec<FieldError> = input
            .tools
            .iter()
            .enumerate()
            .filter(|(_, t)| !known.contains(*t))
            .map(|(i, t)| {
                FieldError::new(
                    &format!("/tools/{i}"),
                    "unknown_tool",
                    format!("`{t}` is not one of the server's tools"),
                )
            })
            .collect();
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        let json = serde_json::to_string(&input.tools).expect("names serialise");
        self.inner
            .store
            .link_agent_mcp_tools(&scope, agent, server, &json, now_ms())
            .await
            .map_err(AppError::from_store("agent"))?;
        self.engine().agents.forget_workspace(scope.workspace_id());
        Ok(AgentMcpToolsView {
            agent_id: agent.to_string(),
            server_id: server.to_string(),
            tools: input.tools,
        })
    }

    pub async fn remove_agent_mcp_tools(
        &self,
        p: &Principal,
        agent: AgentId,
        server: McpServerId,
    ) -> Result<(), AppError> {
        p.require(Permission::Config)?;
        crate::auth::access::check_agent_access(p, agent)?;
        let scope = p.scope();
        self.inner
            .store
            .unlink_agent_mcp_tools(&scope, agent, server)
            .await
            .map_err(AppError::from_store("agent MCP server"))?;
        self.engine().agents.forget_workspace(scope.workspace_id());
        Ok(())
    }

    /// The agent's MCP tools for the runtime (appended to its integration tools).
    pub(crate) async fn agent_mcp_tools(
        &self,
        scope: &TenantScope,
        agent: AgentId,
        names: &mut BTreeSet<String>,
    ) -> Result<Vec<Arc<dyn Tool>>, AppError> {
        let links = self.inner.store.agent_mcp_tools(scope, agent).await?;
        if links.is_empty() {
            return Ok(Vec::new());
        }
        let servers = self.inner.store.list_mcp_servers(scope).await?;
        let mut out: Vec<Arc<dyn Tool>> = Vec::new();
        for link in links {
            let Some(server) = servers.iter().find(|s| s.id == link.server_id) else { continue };
            let enabled: Vec<String> = serde_json::from_str(&link.tools).unwrap_or_default();
            for tool in tools_of(server).into_iter().filter(|t| enabled.contains(&t.name)) {
                let base = format!("mcp_{}", mcp::server::tool_name_part(&tool.name, 48));
                let name = (1..)
                    .map(|n| if n == 1 { base.clone() } else { format!("{base}_{n}") })
                    .find(|n| !names.contains(n))
                    .expect("some name is free");
                names.insert(name.clone());
                let mut parameters = tool.input_schema.clone();
                if !parameters.is_object() {
                    parameters = serde_json::json!({"type": "object"});
                }
                out.push(Arc::new(McpTool {
                    app: self.clone(),
                    scope: *scope,
                    server: server.clone(),
                    remote: tool.name.clone(),
                    read_only: tool.read_only,
                    spec: llm::ToolSpec {
                        name,
                        description: format!("{} (from {})", tool.description, server.name),
                        parameters,
                    },
                }));
            }
        }
        Ok(out)
    }
}

/// Re-lists a server's tools after it said they changed (boxed: the listing itself connects,
/// and the connection is what hears the change).
fn relist_later(
    app: App,
    scope: TenantScope,
    id: McpServerId,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> {
    Box::pin(async move {
        if let Err(e) = app.relist_mcp_tools(&scope, id).await {
            tracing::warn!(server = %id, error = %e, "re-listing an MCP server's tools failed");
        }
    })
}

fn view_of(t: RemoteTool) -> McpToolView {
    McpToolView {
        name: t.name,
        title: t.title,
        description: t.description,
        input_schema: t.input_schema,
        read_only: t.read_only,
    }
}

/// One tool of an MCP server, as the runtime sees it.
struct McpTool {
    app: App,
    scope: TenantScope,
    server: store::McpServer,
    remote: String,
    read_only: bool,
    spec: llm::ToolSpec,
}

#[async_trait]
impl Tool for McpTool {
    fn spec(&self) -> llm::ToolSpec {
        self.spec.clone()
    }

    /// Unless the server says a tool only reads, calling it may change something.
    fn side_effect(&self) -> bool {
        !self.read_only
    }

    async fn call(&self, arguments: Value, _ctx: &ToolContext) -> Result<ToolOutput, String> {
        let settings = self.app.mcp_settings();
        let args = match arguments {
            Value::Object(map) => map,
            Value::Null => serde_json::Map::new(),
            other => return Err(format!("arguments must be an object, got {other}")),
        };
        let down = |e: String| format!("the MCP server {} is not available: {e}", self.server.name);
        let conn = self
            .app
            .mcp_connection(&self.scope, &self.server)
            .await
            .map_err(|e| down(e.to_string()))?;
        let outcome = conn
            .call(&self.remote, args, settings.call_timeout, settings.max_result_bytes)
            .await
            .map_err(|e| match e {
                // It is up but slow, or it refused this call: say so, not that it is down.
                mcp::ClientError::Timeout(_) | mcp::ClientError::Refused(_) => {
                    format!("{e} ({})", self.server.name)
                }
                other => down(other.to_string()),
            })?;
        if outcome.is_error {
            return Err(outcome.text);
        }
        Ok(ToolOutput::Text(outcome.text))
    }
}
