//! What the runtime needs to know of an agent: a plain serde snapshot the application layer
//! fills from its stored agent (and revision), independent of the store's row types.

use std::collections::BTreeSet;

use catalog::{Behavior, Personality};
use domain::{AgentId, KnowledgeBaseId, WorkspaceId};
use serde::{Deserialize, Serialize};

use crate::routing::RoutingRules;
use crate::tools::AgentTools;

/// An agent as one run sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AgentSnapshot {
    pub id: AgentId,
    pub workspace_id: WorkspaceId,
    pub name: String,
    /// The system prompt already rendered from the template (`Template::render_system_prompt`).
    pub system_prompt: String,
    /// The sliders; temperature and max tokens come from them (persona seed §9.2).
    #[serde(default)]
    pub personality: Personality,
    /// Tone, language, length and extra instructions.
    #[serde(default)]
    pub behavior: Behavior,
    /// Resolved skill ids (`CapabilityRegistry::resolve_skills`), e.g. `knowledge:search`,
    /// `web-fetch:fetch`, `handoff:escalate`. Tool names (`search_knowledge`, …) are accepted too.
    #[serde(default)]
    pub skills: Vec<String>,
    /// Knowledge bases the agent answers from. Non-empty means `search_knowledge` is offered
    /// even without the `knowledge:search` skill: grounding is the point of attaching them.
    #[serde(default)]
    pub knowledge_base_ids: Vec<KnowledgeBaseId>,
    /// Model name overriding the provider's default.
    #[serde(default)]
    pub model: Option<String>,
    /// Rules evaluated before any model call.
    #[serde(default)]
    pub routing: RoutingRules,
    /// Tool names that must not run before the user approves each call.
    #[serde(default)]
    pub requires_confirmation: BTreeSet<String>,
    /// Every call of a side-effecting tool ([`crate::Tool::side_effect`]) waits for approval.
    #[serde(default)]
    pub confirm_side_effects: bool,
    /// The agent's own tools (integrations, MCP servers), offered whatever its skills.
    #[serde(skip)]
    pub tools: AgentTools,
}

impl AgentSnapshot {
    /// A snapshot with defaults for everything but the identity and the prompt.
    pub fn new(
        id: AgentId,
        workspace_id: WorkspaceId,
        name: impl Into<String>,
        system_prompt: impl Into<String>,
    ) -> Self {
        Self {
            id,
            workspace_id,
            name: name.into(),
            system_prompt: system_prompt.into(),
            personality: Personality::default(),
            behavior: Behavior::default(),
            skills: Vec::new(),
            knowledge_base_ids: Vec::new(),
            model: None,
            routing: RoutingRules::default(),
            requires_confirmation: BTreeSet::new(),
            confirm_side_effects: false,
            tools: AgentTools::default(),
        }
    }
}
