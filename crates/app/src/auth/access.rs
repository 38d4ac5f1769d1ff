//! What an agent-scoped API key may reach: one agent, and everything under it. Shared by
//! chat, conversations and runs (and any surface that takes an agent key).

use domain::AgentId;

use crate::{Actor, AppError, Principal};

/// The agent an API key is limited to, if any.
pub(crate) fn key_agent(p: &Principal) -> Option<&str> {
    match &p.actor {
        Actor::Key { agent_id, .. } => agent_id.as_deref(),
        Actor::User { .. } => None,
    }
}

/// Refuses (as not found) agents an agent-scoped key may not use.
pub(crate) fn check_agent_access(p: &Principal, agent: AgentId) -> Result<(), AppError> {
    match key_agent(p) {
        Some(a) if a != agent.to_string() => Err(AppError::NotFound { what: "agent" }),
        _ => Ok(()),
    }
}
