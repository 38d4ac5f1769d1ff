//! MCP both ways: the tools EchoForge serves at `/mcp` ([`server`]), and tools from the MCP
//! servers a workspace registers ([`client`]).

pub mod client;
pub mod server;

pub use client::{
    AgentMcpToolsInput, AgentMcpToolsView, McpCommand, McpServerInput, McpServerView, McpSettings,
    McpToolView,
};

pub use server::McpBackend;
