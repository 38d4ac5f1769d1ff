//! MCP both ways: the tools EchoForge serves at `/mcp` ([`server`]).

pub mod server;

pub use server::McpBackend;
