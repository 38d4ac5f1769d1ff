//! MCP servers as tool sources: a connection over stdio (a child process) or streamable HTTP
//! (every request through the SSRF guard), and a [`Pool`] that starts servers lazily, reuses
//! them, restarts a crashed one with backoff and stops idle ones.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rmcp::model::{
    CallToolRequestParams, ClientCapabilities, ClientConfig, ContentBlock, Implementation,
    JsonObject,
};
use rmcp::service::{NotificationContext, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::Value;
use tokio::sync::Mutex;

use crate::http_client::GuardedHttp;

/// How to reach an MCP server.
#[derive(Debug, Clone)]
pub enum ServerSpec {
    /// Streamable HTTP at `url`, with extra headers (a bearer token among them).
    Http { url: String, headers: Vec<(String, String)>, policy: fetch::AddressPolicy },
    /// A child process speaking MCP on stdin/stdout (an operator-approved command).
    Stdio { command: String, args: Vec<String>, env: Vec<(String, String)> },
}

/// A tool an MCP server offers.
#[derive(Debug, Clone, PartialEq)]
pub struct RemoteTool {
    pub name: String,
    pub title: Option<String>,
    pub description: String,
    pub input_schema: Value,
    /// The server's hints (absent: unknown, treated as side-effecting).
    pub read_only: bool,
}

/// A tool call's result as text for the model.
#[derive(Debug, Clone, PartialEq)]
pub struct CallOutcome {
    pub text: String,
    pub is_error: bool,
    /// The result was longer than the cap and was cut.
    pub truncated: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("could not start the MCP server: {0}")]
    Start(String),
    #[error("the MCP server did not answer in {0:?}")]
    Timeout(Duration),
    #[error("the MCP server is not reachable: {0}")]
    Down(String),
    #[error("the MCP server refused the request: {0}")]
    Refused(String),
    #[error("the MCP server restarts too often; next try in {0:?}")]
    Backoff(Duration),
}

/// Our side of a connection: says who we are and hears `tools/list_changed`.
#[derive(Clone)]
struct Watcher {
    on_tools_changed: Arc<dyn Fn() + Send + Sync>,
}

impl ClientHandler for Watcher {
    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("echoforge", env!("CARGO_PKG_VERSION")),
        )
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        (self.on_tools_changed)();
    }
}

/// One live connection to an MCP server.
pub struct Connection {
    service: RunningService<RoleClient, Watcher>,
    pid: Option<u32>,
}

impl Connection {
    /// Connects (and for stdio, starts the process), within `timeout`.
    pub async fn connect(
        spec: &ServerSpec,
        timeout: Duration,
        on_tools_changed: Arc<dyn Fn() + Send + Sync>,
    ) -> Result<Self, ClientError> {
        let watcher = Watcher { on_tools_changed };
        let connecting = async {
            match spec {
                ServerSpec::Stdio { command, args, env } => {
                    let mut cmd = tokio::process::Command::new(command);
                    cmd.args(args).envs(env.iter().map(|(k, v)| (k, v))).kill_on_drop(true);
                    let (child, _) = TokioChildProcess::builder(cmd)
                        .stderr(Stdio::null())
                        .spawn()
                        .map_err(|e| ClientError::Start(format!("{command}: {e}")))?;
                    let pid = child.id();
                    let service = watcher
                        .serve(child)
                        .await
                        .map_err(|e| ClientError::Start(e.to_string()))?;
                    Ok(Self { service, pid })
                }
                ServerSpec::Http { url, headers, policy } => {
                    let client = GuardedHttp::new(policy.clone(), timeout)
                        .map_err(|e| ClientError::Start(e.to_string()))?;
                    let mut config = StreamableHttpClientTransportConfig::with_uri(url.as_str());
                    for (name, value) in headers {
                        let name = http::HeaderName::try_from(name.as_str())
                            .map_err(|e| ClientError::Start(format!("header {name}: {e}")))?;
                        let value = http::HeaderValue::try_from(value.as_str())
                            .map_err(|e| ClientError::Start(format!("header {name}: {e}")))?;
                        config.custom_headers.insert(name, value);
                    }
                    let transport = StreamableHttpClientTransport::with_client(client, config);
                    let service = watcher
                        .serve(transport)
                        .await
                        .map_err(|e| ClientError::Down(e.to_string()))?;
                    Ok(Self { service, pid: None })
                }
            }
        };
        tokio::time::timeout(timeout, connecting)
            .await
            .map_err(|_| ClientError::Timeout(timeout))?
    }

    /// The child's process id (stdio servers).
    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Whether the transport is gone (the process exited, the stream closed).
    pub fn is_closed(&self) -> bool {
        self.service.is_closed() || self.service.peer().is_transport_closed()
    }

    /// Every tool the server offers.
    pub async fn list_tools(&self, timeout: Duration) -> Result<Vec<RemoteTool>, ClientError> {
        let tools = tokio::time::timeout(timeout, self.service.peer().list_all_tools())
            .await
            .map_err(|_| ClientError::Timeout(timeout))?
            .map_err(|e| ClientError::Down(e.to_string()))?;
        Ok(tools
            .into_iter()
            .map(|t| RemoteTool {
                read_only: t.annotations.as_ref().and_then(|a| a.read_only_hint).unwrap_or(false),
                name: t.name.into_owned(),
                title: t.title,
                description: t.description.map(|d| d.into_owned()).unwrap_or_default(),
                input_schema: Value::Object((*t.input_schema).clone()),
            })
            .collect())
    }

    /// Calls a tool; the text of its result, cut at `max_bytes` (with a note saying so).
    pub async fn call(
        &self,
        name: &str,
        arguments: JsonObject,
        timeout: Duration,
        max_bytes: usize,
    ) -> Result<CallOutcome, ClientError> {
        let params = CallToolRequestParams::new(name.to_owned()).with_arguments(arguments);
        let result = tokio::time::timeout(timeout, self.service.peer().call_tool(params))
            .await
            .map_err(|_| ClientError::Timeout(timeout))?
            .map_err(|e| match e {
                rmcp::ServiceError::McpError(e) => ClientError::Refused(e.message.into_owned()),
                other => ClientError::Down(other.to_string()),
            })?;
        let mut text = String::new();
        for block in &result.content {
            if !text.is_empty() {
                text.push('\n');
            }
            push_content(&mut text, block);
        }
        if text.is_empty()
            && let Some(structured) = &result.structured_content
        {
            text = structured.to_string();
        }
        let (text, truncated) = cap(text, max_bytes);
        Ok(CallOutcome { text, is_error: result.is_error.unwrap_or(false), truncated })
    }

    /// Closes the connection (for stdio: closes its stdin, then stops the process).
    pub async fn close(mut self) {
        let _ = self.service.close_with_timeout(Duration::from_secs(2)).await;
    }
}

fn push_content(text: &mut String, block: &ContentBlock) {
    match block {
        ContentBlock::Text(t) => text.push_str(&t.text),
        ContentBlock::Image(i) => text.push_str(&format!("[image {}]", i.mime_type)),
        ContentBlock::Audio(a) => text.push_str(&format!("[audio {}]", a.mime_type)),
        ContentBlock::Resource(r) => match serde_json::to_value(&r.resource) {
            Ok(v) => match v.get("text").and_then(Value::as_str) {
                Some(t) => text.push_str(t),
                None => text.push_str(&format!(
                    "[resource {}]",
                    v.get("uri").and_then(Value::as_str).unwrap_or("")
                )),
            },
            Err(_) => text.push_str("[resource]"),
        },
        ContentBlock::ResourceLink(l) => text.push_str(&format!("[{}]({})", l.name, l.uri)),
        _ => text.push_str("[content]"),
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary, with a note when cut.
pub fn cap(text: String, max: usize) -> (String, bool) {
    if text.len() <= max {
        return (text, false);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let total = text.len();
    let mut out = text;
    out.truncate(end);
    out.push_str(&format!(
        "\n[truncated: the result was {total} bytes; the first {end} are shown]"
    ));
    (out, true)
}

/// Settings of the [`Pool`].
#[derive(Debug, Clone)]
pub struct PoolSettings {
    pub connect_timeout: Duration,
    /// A server unused this long is stopped (started again on the next call).
    pub idle_after: Duration,
    /// The first wait after a failed start; doubled on each failure in a row.
    pub backoff_base: Duration,
    pub backoff_max: Duration,
}

impl Default for PoolSettings {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            idle_after: Duration::from_secs(300),
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(60),
        }
    }
}

struct Slot {
    conn: Option<Arc<Connection>>,
    /// The spec the connection was made with (a changed registration reconnects).
    spec_version: u64,
    last_used: Instant,
    failures: u32,
    retry_at: Option<Instant>,
    restarts: u32,
}

/// What the pool knows of one server.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SlotStatus {
    pub running: bool,
    pub pid: Option<u32>,
    pub restarts: u32,
    pub failures: u32,
}

/// Live connections by server id: started on first use, reused, restarted after a crash (each
/// failed start doubles the wait before the next), stopped after `idle_after` unused.
pub struct Pool {
    slots: Mutex<HashMap<String, Arc<Mutex<Slot>>>>,
    settings: PoolSettings,
}

impl Pool {
    pub fn new(settings: PoolSettings) -> Arc<Self> {
        Arc::new(Self { slots: Mutex::new(HashMap::new()), settings })
    }

    async fn slot(&self, id: &str, spec_version: u64) -> Arc<Mutex<Slot>> {
        let mut slots = self.slots.lock().await;
        slots
            .entry(id.to_owned())
            .or_insert_with(|| {
                Arc::new(Mutex::new(Slot {
                    conn: None,
                    spec_version,
                    last_used: Instant::now(),
                    failures: 0,
                    retry_at: None,
                    restarts: 0,
                }))
            })
            .clone()
    }

    /// The connection to server `id` when it is up with this registration, without starting
    /// one (the caller then needs no spec: no secrets are opened on the common path).
    pub async fn live(&self, id: &str, spec_version: u64) -> Option<Arc<Connection>> {
        let slot = self.slots.lock().await.get(id).cloned()?;
        let mut s = slot.lock().await;
        let conn = s.conn.as_ref().filter(|c| !c.is_closed() && s.spec_version == spec_version)?;
        let conn = conn.clone();
        s.last_used = Instant::now();
        Some(conn)
    }

    /// The live connection to server `id`, started (or restarted) when needed. One start at a
    /// time per server: concurrent callers wait for it.
    pub async fn get(
        &self,
        id: &str,
        spec_version: u64,
        spec: &ServerSpec,
        on_tools_changed: Arc<dyn Fn() + Send + Sync>,
    ) -> Result<Arc<Connection>, ClientError> {
        let slot = self.slot(id, spec_version).await;
        let mut s = slot.lock().await;
        s.last_used = Instant::now();
        if let Some(conn) = &s.conn {
            if !conn.is_closed() && s.spec_version == spec_version {
                return Ok(conn.clone());
            }
            let was_running = !conn.is_closed();
            if let Some(old) = s.conn.take() {
                if was_running {
                    tracing::info!(server = id, "MCP server registration changed; reconnecting");
                } else {
                    tracing::warn!(server = id, "MCP server stopped; restarting");
                    s.restarts += 1;
                }
                if let Ok(old) = Arc::try_unwrap(old) {
                    tokio::spawn(old.close());
                }
            }
        }
        if let Some(at) = s.retry_at {
            let now = Instant::now();
            if at > now {
                return Err(ClientError::Backoff(at - now));
            }
        }
        s.spec_version = spec_version;
        match Connection::connect(spec, self.settings.connect_timeout, on_tools_changed).await {
            Ok(conn) => {
                let conn = Arc::new(conn);
                s.conn = Some(conn.clone());
                s.failures = 0;
                s.retry_at = None;
                Ok(conn)
            }
            Err(e) => {
                let wait = self
                    .settings
                    .backoff_base
                    .saturating_mul(1 << s.failures.min(16))
                    .min(self.settings.backoff_max);
                s.failures += 1;
                s.retry_at = Some(Instant::now() + wait);
                Err(e)
            }
        }
    }

    /// What the pool holds for server `id`.
    pub async fn status(&self, id: &str) -> SlotStatus {
        let Some(slot) = self.slots.lock().await.get(id).cloned() else {
            return SlotStatus::default();
        };
        let s = slot.lock().await;
        let live = s.conn.as_ref().filter(|c| !c.is_closed());
        SlotStatus {
            running: live.is_some(),
            pid: live.and_then(|c| c.pid()),
            restarts: s.restarts,
            failures: s.failures,
        }
    }

    /// Stops server `id` (deleted or changed registration).
    pub async fn stop(&self, id: &str) {
        let slot = self.slots.lock().await.remove(id);
        if let Some(slot) = slot
            && let Some(conn) = slot.lock().await.conn.take()
            && let Ok(conn) = Arc::try_unwrap(conn)
        {
            conn.close().await;
        }
    }

    /// Stops the servers unused for `idle_after` (called periodically).
    pub async fn reap_idle(&self) -> usize {
        let slots: Vec<(String, Arc<Mutex<Slot>>)> =
            self.slots.lock().await.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        let mut stopped = 0;
        for (id, slot) in slots {
            let Ok(mut s) = slot.try_lock() else { continue };
            if s.conn.is_some() && s.last_used.elapsed() >= self.settings.idle_after {
                if let Some(conn) = s.conn.take() {
                    tracing::info!(server = %id, "stopping idle MCP server");
                    if let Ok(conn) = Arc::try_unwrap(conn) {
                        tokio::spawn(conn.close());
                    }
                }
                stopped += 1;
            }
        }
        stopped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_results_are_cut_on_a_character_boundary_with_a_note() {
        let (t, cut) = cap("héllo".to_owned(), 2);
        assert!(cut);
        assert!(t.starts_with('h') && !t.starts_with("hé"), "{t}");
        assert!(t.contains("truncated: the result was 6 bytes"), "{t}");
        assert_eq!(cap("short".to_owned(), 10), ("short".to_owned(), false));
    }
}
