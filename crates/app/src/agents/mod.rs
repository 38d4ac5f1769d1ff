//! Agents (team members): creation and changes validated against their template through the
//! catalog (capabilities, dependencies, configuration schema, personality, prompt rendering),
//! revisions and restore, export and import. An agent-scoped API key sees only its agent.
//!
//! - [`views`]: what the API takes and returns.
//! - [`fields`]: validating an agent's fields against its template and rendering its prompt.
//! - [`lifecycle`]: create, list, read, update and delete.
//! - [`revisions`]: the revision history and restoring a revision.
//! - [`routing`]: validating routing rules and the integrations an agent uses.
//! - [`transfer`]: export, import and saving an agent as a workspace template.

mod fields;
pub(crate) mod keys;
mod lifecycle;
mod revisions;
mod routing;
mod transfer;
mod views;

use domain::{AgentId, Permission};
use store::AgentFields;

pub use transfer::{AgentExport, ImportResult};
pub use views::{AgentInput, AgentPatch, AgentView, RevisionView};

use crate::{Actor, AppError, FieldError, Principal};

/// The agent an agent-scoped key is bound to (an unparsable id matches nothing).
pub(crate) fn own_agent(p: &Principal) -> Option<AgentId> {
    match &p.actor {
        Actor::Key { agent_id: Some(a), .. } => {
            Some(AgentId::parse(a).unwrap_or_else(|_| AgentId::new()))
        }
        _ => None,
    }
}

/// Agent-scoped keys reach only their agent; anything else is "not found".
pub(crate) fn check_access(p: &Principal, id: AgentId) -> Result<(), AppError> {
    match own_agent(p) {
        Some(own) if own != id => Err(AppError::NotFound { what: "agent" }),
        _ => Ok(()),
    }
}

fn require_read(p: &Principal) -> Result<(), AppError> {
    if own_agent(p).is_some() { Ok(()) } else { p.require_read(domain::Readable::Agents) }
}

/// Agent-scoped keys cannot create, delete or import agents.
fn require_workspace_write(p: &Principal) -> Result<(), AppError> {
    if own_agent(p).is_some() {
        return Err(AppError::forbidden("agent_key", "an agent API key cannot do this"));
    }
    p.require(Permission::Write)
}

fn text(
    path: &str,
    v: &Option<String>,
    max: usize,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    let t = v.as_deref().map(str::trim).filter(|s| !s.is_empty())?;
    if t.chars().count() > max {
        errors.push(FieldError::new(path, "too_long", format!("must be at most {max} characters")));
    }
    Some(t.to_owned())
}

fn slug_conflict(e: store::StoreError) -> AppError {
    match e {
        store::StoreError::Conflict(_) => {
            AppError::field("/slug", "slug_taken", "another agent in this workspace has this slug")
        }
        other => AppError::from_store("agent")(other),
    }
}

fn changed_fields(a: &AgentFields, b: &AgentFields) -> Vec<String> {
    let mut out = Vec::new();
    let mut cmp = |name: &str, same: bool| {
        if !same {
            out.push(name.to_owned())
        }
    };
    cmp("slug", a.slug == b.slug);
    cmp("display_name", a.display_name == b.display_name);
    cmp("avatar", a.avatar == b.avatar);
    cmp("role", a.role == b.role);
    cmp("tagline", a.tagline == b.tagline);
    cmp("description", a.description == b.description);
    cmp("enabled_capabilities", a.enabled_capabilities == b.enabled_capabilities);
    cmp("knowledge_base_ids", a.knowledge_base_ids == b.knowledge_base_ids);
    cmp("personality", a.personality == b.personality);
    cmp("behavior", a.behavior == b.behavior);
    cmp("config", a.config == b.config);
    cmp("routing_rules", a.routing_rules == b.routing_rules);
    cmp("integrations", a.integrations == b.integrations);
    cmp("model_override", a.model_override == b.model_override);
    cmp("system_prompt", a.system_prompt == b.system_prompt);
    cmp("onboarding_answers", a.onboarding_answers == b.onboarding_answers);
    cmp("is_active", a.is_active == b.is_active);
    out
}
