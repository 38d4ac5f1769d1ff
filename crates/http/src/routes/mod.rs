//! Route handlers, one module per API area.

pub mod admin;
pub mod agents;
pub mod audit;
pub mod auth;
pub mod billing;
pub mod capabilities;
pub mod chat;
pub mod conversations;
pub mod handoffs;
pub mod integrations;
pub mod keys;
pub mod knowledge;
pub mod mcp;
pub mod mcp_servers;
pub mod model_provider;
pub mod onboarding;
pub mod openai;
pub mod ops;
pub mod runs;
pub mod templates;
pub mod usage;
pub mod widget;
pub mod workspace;
pub mod ws;

/// Deserialises a present field (even `null`) as `Some(value)`, so PATCH bodies can tell
/// "clear this" (`null`) from "leave it" (absent).
pub(crate) fn double_option<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    serde::Deserialize::deserialize(d).map(Some)
}
