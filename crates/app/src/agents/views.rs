//! The agent API's shapes: the view returned, the create and patch inputs, revisions.

use catalog::Personality;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use store::Agent;
use utoipa::ToSchema;

/// An agent as the API returns it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AgentView {
    pub id: String,
    pub slug: String,
    pub display_name: String,
    pub avatar: Option<String>,
    pub role: Option<String>,
    pub tagline: Option<String>,
    pub description: Option<String>,
    pub template: Option<String>,
    pub enabled_capabilities: Vec<String>,
    pub knowledge_base_ids: Vec<String>,
    #[schema(value_type = Object)]
    pub personality: Value,
    #[schema(value_type = Object)]
    pub behavior: Value,
    #[schema(value_type = Object)]
    pub config: Value,
    /// `{rules: [{pattern, condition, target}], fallback_to_llm, no_match_answer}`.
    #[schema(value_type = Object)]
    pub routing_rules: Value,
    /// Integration ids the agent uses (`gmail`, `google-calendar`).
    pub integrations: Vec<String>,
    pub model_override: Option<String>,
    pub system_prompt: String,
    /// Model settings derived from the personality.
    #[schema(value_type = Object)]
    pub llm_settings: Value,
    pub public_id: String,
    pub is_active: bool,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<&Agent> for AgentView {
    fn from(a: &Agent) -> Self {
        let personality: Personality =
            serde_json::from_value(a.personality.0.clone()).unwrap_or_default();
        Self {
            id: a.id.to_string(),
            slug: a.slug.clone(),
            display_name: a.display_name.clone(),
            avatar: a.avatar.clone(),
            role: a.role.clone(),
            tagline: a.tagline.clone(),
            description: a.description.clone(),
            template: a.template_slug.clone(),
            enabled_capabilities: serde_json::from_value(a.enabled_capabilities.0.clone())
                .unwrap_or_default(),
            knowledge_base_ids: a.knowledge_bases().iter().map(ToString::to_string).collect(),
            personality: a.personality.0.clone(),
            behavior: a.behavior.0.clone(),
            config: a.config.0.clone(),
            routing_rules: a.routing_rules.0.clone(),
            integrations: serde_json::from_value(a.integrations.0.clone()).unwrap_or_default(),
            model_override: a.model_override.clone(),
            system_prompt: a.system_prompt.clone(),
            llm_settings: serde_json::to_value(personality.llm_settings()).unwrap_or_default(),
            public_id: a.public_id.clone(),
            is_active: a.is_active,
            version: a.version,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

/// Input of `POST /agents`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentInput {
    pub display_name: String,
    pub slug: Option<String>,
    pub template: String,
    pub avatar: Option<String>,
    pub role: Option<String>,
    pub tagline: Option<String>,
    pub description: Option<String>,
    /// Defaults to the template's default capabilities.
    pub enabled_capabilities: Option<Vec<String>>,
    #[serde(default)]
    pub knowledge_base_ids: Vec<String>,
    #[schema(value_type = Option<Object>)]
    pub personality: Option<Value>,
    /// `{tone, language, multilingual, response_length, extra_instructions}`.
    #[schema(value_type = Option<Object>)]
    pub behavior: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
    /// Answers to the template's wizard fields used by its prompt.
    #[schema(value_type = Option<Object>)]
    pub answers: Option<Map<String, Value>>,
    pub model_override: Option<String>,
    pub is_active: Option<bool>,
}

/// Input of `PATCH /agents/{id}`: absent fields are kept.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentPatch {
    /// The version being edited (or send `If-Match`).
    pub version: Option<i64>,
    pub display_name: Option<String>,
    pub slug: Option<String>,
    pub avatar: Option<String>,
    pub role: Option<String>,
    pub tagline: Option<String>,
    pub description: Option<String>,
    pub enabled_capabilities: Option<Vec<String>>,
    pub knowledge_base_ids: Option<Vec<String>>,
    #[schema(value_type = Option<Object>)]
    pub personality: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub behavior: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub answers: Option<Map<String, Value>>,
    pub model_override: Option<String>,
    pub is_active: Option<bool>,
    /// Replaces the routing rules: `{rules: [{pattern, condition: contains|regex, target:
    /// {type: skill, skill} | {type: prompt_override, prompt} | {type: fixed_answer, text}}],
    /// fallback_to_llm, no_match_answer}`. Regex patterns must compile.
    #[schema(value_type = Option<Object>)]
    pub routing_rules: Option<Value>,
    /// Replaces the integrations the agent uses (known integration ids, each once).
    pub integrations: Option<Vec<String>>,
}

/// One revision of an agent.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RevisionView {
    pub id: String,
    pub version: i64,
    pub changed_fields: Vec<String>,
    pub actor_user_id: Option<String>,
    pub created_at: i64,
}
