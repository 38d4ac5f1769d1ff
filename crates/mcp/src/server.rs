//! EchoForge as an MCP server: `POST/GET/DELETE /mcp` over streamable HTTP, on `rmcp`.
//!
//! The tools come from a [`Backend`] (the app: one chat tool per agent, one search tool per
//! knowledge base). The HTTP layer authenticates each request before it reaches the service and
//! puts its caller (`B::Caller`) into the request's extensions; `rmcp` hands the request's
//! [`http::request::Parts`] to the handler, so every `tools/list` and `tools/call` acts as the
//! caller of *that* request (a session id presented with another key gains nothing).

use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, Implementation,
    JsonObject, ListToolsResult, PaginatedRequestParams, ProgressNotificationParam, ProgressToken,
    ServerCapabilities, ServerConfig, Tool, ToolAnnotations,
};
use rmcp::service::{Peer, RequestContext};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// One tool the backend offers a caller.
#[derive(Debug, Clone)]
pub struct ToolDef {
    pub name: String,
    pub title: String,
    pub description: String,
    pub input_schema: Arc<JsonObject>,
    pub output_schema: Option<Arc<JsonObject>>,
    /// Reads only (search); a chat tool writes a conversation.
    pub read_only: bool,
}

impl ToolDef {
    fn to_tool(&self) -> Tool {
        let mut t =
            Tool::new(self.name.clone(), self.description.clone(), self.input_schema.clone())
                .with_title(self.title.clone())
                .with_annotations(
                    ToolAnnotations::new()
                        .read_only(self.read_only)
                        .destructive(false)
                        .idempotent(self.read_only),
                );
        if let Some(schema) = &self.output_schema {
            t = t.with_raw_output_schema(schema.clone());
        }
        t
    }
}

/// What a tool call answered: text for the model, and structured content when it has any.
#[derive(Debug, Clone)]
pub struct ToolReply {
    pub text: String,
    pub structured: Option<Value>,
    /// A tool-level failure the caller's model should see (not a protocol error).
    pub is_error: bool,
}

impl ToolReply {
    pub fn ok(text: impl Into<String>, structured: Option<Value>) -> Self {
        Self { text: text.into(), structured, is_error: false }
    }

    pub fn error(text: impl Into<String>) -> Self {
        Self { text: text.into(), structured: None, is_error: true }
    }
}

/// Why a call could not be made at all (JSON-RPC errors, unlike [`ToolReply::error`]).
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// No such tool for this caller (another workspace's agents are unknown, not forbidden).
    #[error("unknown tool: {0}")]
    UnknownTool(String),
    #[error("invalid arguments: {0}")]
    InvalidParams(String),
    #[error("{0}")]
    Internal(String),
}

/// Progress of a call, sent to the client as `notifications/progress` when it asked for them
/// (a `progressToken` in the request's `_meta`); otherwise a no-op.
pub struct Progress {
    peer: Peer<RoleServer>,
    token: Option<ProgressToken>,
    step: AtomicU32,
}

impl Progress {
    /// Whether the client asked for progress.
    pub fn wanted(&self) -> bool {
        self.token.is_some()
    }

    /// Reports one more step with a message (the total is unknown while a model answers).
    pub async fn report(&self, message: impl Into<String>) {
        let Some(token) = &self.token else { return };
        let n = self.step.fetch_add(1, Ordering::Relaxed) + 1;
        let param = ProgressNotificationParam::new(token.clone(), f64::from(n))
            .with_message(message.into());
        if let Err(e) = self.peer.notify_progress(param).await {
            tracing::debug!(error = %e, "MCP progress notification not delivered");
        }
    }
}

/// The tools behind `/mcp`, for one caller at a time.
#[async_trait::async_trait]
pub trait Backend: Send + Sync + 'static {
    /// Who is calling, as the HTTP layer authenticated them (in the request's extensions).
    type Caller: Clone + Send + Sync + 'static;

    async fn tools(&self, caller: &Self::Caller) -> Result<Vec<ToolDef>, BackendError>;

    /// Calls a tool. `cancel` fires when the client cancels the request (or goes away).
    async fn call(
        &self,
        caller: &Self::Caller,
        name: &str,
        arguments: JsonObject,
        progress: &Progress,
        cancel: CancellationToken,
    ) -> Result<ToolReply, BackendError>;
}

/// The `rmcp` handler over a [`Backend`].
pub struct Handler<B: Backend> {
    backend: Arc<B>,
    info: Arc<ServerConfig>,
}

impl<B: Backend> Clone for Handler<B> {
    fn clone(&self) -> Self {
        Self { backend: self.backend.clone(), info: self.info.clone() }
    }
}

impl<B: Backend> Handler<B> {
    fn caller(context: &RequestContext<RoleServer>) -> Result<B::Caller, ErrorData> {
        context
            .extensions
            .get::<http::request::Parts>()
            .and_then(|parts| parts.extensions.get::<B::Caller>())
            .cloned()
            .ok_or_else(|| ErrorData::internal_error("the request was not authenticated", None))
    }
}

fn to_error(e: BackendError) -> ErrorData {
    match e {
        BackendError::UnknownTool(name) => {
            ErrorData::invalid_params(format!("unknown tool: {name}"), None)
        }
        BackendError::InvalidParams(m) => ErrorData::invalid_params(m, None),
        BackendError::Internal(m) => {
            tracing::error!(error = %m, "MCP tool call failed");
            ErrorData::internal_error("something went wrong on our side", None)
        }
    }
}

impl<B: Backend> ServerHandler for Handler<B> {
    fn get_info(&self) -> ServerConfig {
        (*self.info).clone()
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        let caller = Self::caller(&context)?;
        let tools = self.backend.tools(&caller).await.map_err(to_error)?;
        Ok(ListToolsResult::with_all_items(tools.iter().map(ToolDef::to_tool).collect()))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let caller = Self::caller(&context)?;
        let progress = Progress {
            peer: context.peer.clone(),
            token: context.meta.get_progress_token(),
            step: AtomicU32::new(0),
        };
        let arguments = request.arguments.unwrap_or_default();
        let reply = self
            .backend
            .call(&caller, &request.name, arguments, &progress, context.ct.clone())
            .await
            .map_err(to_error)?;
        let content = vec![ContentBlock::text(reply.text)];
        let mut result = if reply.is_error {
            CallToolResult::error(content)
        } else {
            CallToolResult::success(content)
        };
        result.structured_content = reply.structured;
        Ok(result.into())
    }
}

/// The streamable-HTTP service to mount at `/mcp` (behind the caller's authentication).
/// `Host` checks are off: the server is reached by its public name and every request carries
/// an API key; sessions live in this process (a session-less 2026-07-28 client needs none).
pub fn http_service<B: Backend>(
    backend: Arc<B>,
    name: &str,
    version: &str,
    instructions: &str,
    max_body_bytes: usize,
    cancel: CancellationToken,
) -> StreamableHttpService<Handler<B>, LocalSessionManager> {
    let info = Arc::new(
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new(name, version))
            .with_instructions(instructions),
    );
    let handler = Handler { backend, info };
    StreamableHttpService::new(
        move || Ok(handler.clone()),
        Arc::new(LocalSessionManager::default()),
        StreamableHttpServerConfig::default()
            .disable_allowed_hosts()
            .with_max_request_body_bytes(max_body_bytes)
            .with_cancellation_token(cancel),
    )
}

/// The JSON-RPC error answering a POST body that is not one client message, `None` when it is
/// one: not JSON is a parse error (-32700), JSON that is not a request, notification or
/// response is an invalid request (-32600). (`rmcp` answers those with plain text.)
pub fn malformed(body: &[u8]) -> Option<Value> {
    // The common case, a well-formed message, costs one parse; a bad one is looked at again.
    if serde_json::from_slice::<rmcp::model::ClientJsonRpcMessage>(body).is_ok() {
        return None;
    }
    let value: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => return Some(rpc_error(Value::Null, -32700, format!("parse error: {e}"))),
    };
    let id = value.get("id").cloned().unwrap_or(Value::Null);
    match serde_json::from_value::<rmcp::model::ClientJsonRpcMessage>(value) {
        Ok(_) => None,
        Err(e) => Some(rpc_error(id, -32600, format!("invalid request: {e}"))),
    }
}

fn rpc_error(id: Value, code: i64, message: String) -> Value {
    serde_json::json!({"jsonrpc": "2.0", "id": id, "error": {"code": code, "message": message}})
}

/// A JSON Schema object from a `serde_json::json!` literal (which must be an object).
pub fn schema(value: Value) -> Arc<JsonObject> {
    match value {
        Value::Object(map) => Arc::new(map),
        other => panic!("a JSON Schema must be an object, got {other}"),
    }
}

/// A tool name from free text: lowercase ASCII letters, digits and `_`, at most `max` bytes.
pub fn tool_name_part(text: &str, max: usize) -> Cow<'_, str> {
    let ok = text.len() <= max
        && !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len().min(max));
    for c in text.chars() {
        if out.len() >= max {
            break;
        }
        let c = c.to_ascii_lowercase();
        if c.is_ascii_alphanumeric() {
            out.push(c);
        } else if !out.ends_with('_') && !out.is_empty() {
            out.push('_');
        }
    }
    while out.ends_with('_') {
        out.pop();
    }
    if out.is_empty() {
        out.push('x');
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn malformed_messages_get_json_rpc_errors() {
        assert_eq!(malformed(b"{not json").unwrap()["error"]["code"], -32700);
        let e = malformed(br#"{"jsonrpc":"2.0","id":9}"#).unwrap();
        assert_eq!((e["error"]["code"].as_i64(), e["id"].as_i64()), (Some(-32600), Some(9)));
        assert_eq!(malformed(b"[]").unwrap()["error"]["code"], -32600);
        assert!(malformed(br#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#).is_none());
        assert!(malformed(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#).is_none());
    }

    #[test]
    fn tool_names_are_safe_identifiers() {
        assert_eq!(tool_name_part("support", 40), "support");
        assert_eq!(tool_name_part("Sam's FAQ — 2024", 40), "sam_s_faq_2024");
        assert_eq!(tool_name_part("---", 40), "x");
        assert_eq!(tool_name_part("abcdefghij", 4), "abcd");
    }
}
