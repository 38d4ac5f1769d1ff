//! MCP both ways, on the official Rust SDK (`rmcp`):
//! - [`server`]: EchoForge's agents and knowledge bases as MCP tools at `/mcp` (streamable HTTP);
//! - [`client`]: tools from MCP servers (stdio child processes and streamable HTTP through the
//!   SSRF guard), with a [`client::Pool`] that starts, reuses, restarts and stops them.
//!
//! Kept out of `app` so the SDK builds once and `app` stays use cases.

pub mod client;
mod http_client;
pub mod server;

pub use client::{
    CallOutcome, ClientError, Connection, Pool, PoolSettings, RemoteTool, ServerSpec,
};
pub use rmcp::model::JsonObject;
pub use server::{Backend, BackendError, Progress, ToolDef, ToolReply};
pub use tokio_util::sync::CancellationToken;
