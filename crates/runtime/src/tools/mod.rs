//! Tools the model may call: the [`Tool`] trait, the built-in tools, and the [`ToolRegistry`]
//! that maps an agent's resolved skills to tools and checks every call's arguments against the
//! tool's JSON schema before it runs.

mod builtin;

use std::sync::Arc;

use async_trait::async_trait;
use domain::{AgentId, ConversationId, KnowledgeBaseId, WorkspaceId};
use jsonschema::{Draft, Validator};
use llm::ToolSpec;
use serde_json::Value;

pub use builtin::{EscalateToHuman, SearchKnowledge, WebFetch};

use crate::agent::AgentSnapshot;
use crate::ports::KnowledgeHit;
use crate::runtime::Ports;

/// Tool name of the knowledge search.
pub const SEARCH_KNOWLEDGE: &str = "search_knowledge";
/// Tool name of the web fetcher.
pub const WEB_FETCH: &str = "web_fetch";
/// Tool name of the escalation.
pub const ESCALATE_TO_HUMAN: &str = "escalate_to_human";

/// What a tool call knows of its surroundings.
#[derive(Debug, Clone)]
pub struct ToolContext {
    pub workspace_id: WorkspaceId,
    pub agent_id: AgentId,
    pub conversation_id: ConversationId,
    pub knowledge_base_ids: Vec<KnowledgeBaseId>,
    /// Default number of knowledge hits.
    pub top_k: usize,
}

/// What a tool returns.
#[derive(Debug, Clone, PartialEq)]
pub enum ToolOutput {
    /// Text for the model.
    Text(String),
    /// Knowledge passages: the runtime numbers them, shows them to the model and makes them
    /// citations.
    Hits(Vec<KnowledgeHit>),
}

/// A tool. Errors are plain messages, returned to the model as a tool error.
#[async_trait]
pub trait Tool: Send + Sync {
    /// Name, description and argument schema, as offered to the model.
    fn spec(&self) -> ToolSpec;
    /// Runs the call with arguments already validated against `spec().parameters`.
    async fn call(&self, arguments: Value, ctx: &ToolContext) -> Result<ToolOutput, String>;
    /// Whether a call changes something outside the conversation (sends, creates, updates).
    /// Agents with `confirm_side_effects` pause such calls for the user's approval.
    fn side_effect(&self) -> bool {
        false
    }
}

/// Tools an agent has beyond the built-in ones (its integrations' actions, its MCP servers'
/// tools), resolved by the application when it builds the agent's snapshot. Compared and
/// printed by name.
#[derive(Clone, Default)]
pub struct AgentTools(pub Arc<[Arc<dyn Tool>]>);

impl AgentTools {
    pub fn new(tools: Vec<Arc<dyn Tool>>) -> Self {
        Self(tools.into())
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn Tool>> {
        self.0.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    fn names(&self) -> Vec<String> {
        self.0.iter().map(|t| t.spec().name).collect()
    }
}

impl std::fmt::Debug for AgentTools {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl PartialEq for AgentTools {
    fn eq(&self, other: &Self) -> bool {
        self.names() == other.names()
    }
}

/// A tool with its compiled argument schema.
#[derive(Clone)]
pub struct RegisteredTool {
    pub tool: Arc<dyn Tool>,
    pub spec: ToolSpec,
    validator: Arc<Validator>,
}

/// Why a tool call's arguments were refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArgumentError {
    UnknownTool(String),
    /// Not JSON, or not matching the schema; the message is for the model.
    Invalid(String),
}

/// The tools of one agent.
#[derive(Clone, Default)]
pub struct ToolRegistry {
    tools: Vec<RegisteredTool>,
}

impl ToolRegistry {
    /// The built-in tools an agent's skills (and knowledge bases) call for, `extra` tools
    /// registered under a skill id that the agent has, and the agent's own [`AgentTools`].
    pub fn for_agent(
        agent: &AgentSnapshot,
        ports: &Ports,
        extra: &[(String, Arc<dyn Tool>)],
    ) -> Self {
        let has = |ids: &[&str]| agent.skills.iter().any(|s| ids.contains(&s.as_str()));
        let mut registry = Self::default();
        if has(&["knowledge:search", SEARCH_KNOWLEDGE]) || !agent.knowledge_base_ids.is_empty() {
            registry.add(Arc::new(SearchKnowledge::new(ports.knowledge.clone())));
        }
        if has(&["web-fetch:fetch", "web-search:search", WEB_FETCH]) {
            registry.add(Arc::new(WebFetch::new(ports.web.clone())));
        }
        if has(&["handoff:escalate", ESCALATE_TO_HUMAN]) {
            registry.add(Arc::new(EscalateToHuman::new(ports.handoffs.clone())));
        }
        for (skill, tool) in extra {
            if has(&[skill.as_str()]) {
                registry.add(tool.clone());
            }
        }
        for tool in agent.tools.iter() {
            registry.add(tool.clone());
        }
        registry
    }

    /// Adds a tool (replacing one of the same name). Panics on a schema that does not compile:
    /// tool schemas are code, not input.
    pub fn add(&mut self, tool: Arc<dyn Tool>) {
        let spec = tool.spec();
        let validator = jsonschema::options()
            .with_draft(Draft::Draft202012)
            .build(&spec.parameters)
            .unwrap_or_else(|e| panic!("tool `{}` has an invalid schema: {e}", spec.name));
        self.tools.retain(|t| t.spec.name != spec.name);
        self.tools.push(RegisteredTool { tool, spec, validator: Arc::new(validator) });
    }

    /// Specs to offer the model.
    pub fn specs(&self) -> Vec<ToolSpec> {
        self.tools.iter().map(|t| t.spec.clone()).collect()
    }

    /// Whether there are no tools.
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }

    /// A tool by name.
    pub fn get(&self, name: &str) -> Option<&RegisteredTool> {
        self.tools.iter().find(|t| t.spec.name == name)
    }

    /// The tool a routing rule's skill names: a tool name, or a skill id of a built-in tool.
    pub fn for_skill(&self, skill: &str) -> Option<&RegisteredTool> {
        let name = match skill {
            "knowledge:search" => SEARCH_KNOWLEDGE,
            "web-fetch:fetch" | "web-search:search" => WEB_FETCH,
            "handoff:escalate" => ESCALATE_TO_HUMAN,
            other => other,
        };
        self.get(name)
    }

    /// Parses and checks a call's arguments.
    pub fn validate(&self, name: &str, arguments: &str) -> Result<Value, ArgumentError> {
        let tool = self.get(name).ok_or_else(|| ArgumentError::UnknownTool(name.to_owned()))?;
        let raw = if arguments.trim().is_empty() { "{}" } else { arguments };
        let value: Value = serde_json::from_str(raw).map_err(|e| {
            ArgumentError::Invalid(format!("the arguments are not valid JSON ({e})"))
        })?;
        let problems: Vec<String> = tool
            .validator
            .iter_errors(&value)
            .take(5)
            .map(|e| {
                let path = e.instance_path().to_string();
                if path.is_empty() { e.to_string() } else { format!("{path}: {e}") }
            })
            .collect();
        if problems.is_empty() {
            Ok(value)
        } else {
            Err(ArgumentError::Invalid(format!(
                "the arguments do not match the schema: {}",
                problems.join("; ")
            )))
        }
    }
}

/// Arguments for calling `spec` directly with a user's message (routing rules): every required
/// string property gets the message; `web_fetch` gets the first URL in it.
pub(crate) fn arguments_from_message(spec: &ToolSpec, message: &str) -> Option<Value> {
    if spec.name == WEB_FETCH {
        let url = message
            .split_whitespace()
            .find(|w| w.starts_with("http://") || w.starts_with("https://"))?;
        let url = url.trim_end_matches(['.', ',', ')', '!', '?']);
        return Some(serde_json::json!({ "url": url }));
    }
    let props = spec.parameters.get("properties");
    let mut args = serde_json::Map::new();
    for key in spec.parameters.get("required").and_then(Value::as_array).into_iter().flatten() {
        let key = key.as_str()?;
        let kind = props.and_then(|p| p.get(key)).and_then(|p| p.get("type"));
        if kind.and_then(Value::as_str) != Some("string") {
            return None;
        }
        args.insert(key.to_owned(), Value::String(message.to_owned()));
    }
    Some(Value::Object(args))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memory::{InMemoryHandoffs, InMemoryKnowledge, StaticWebFetcher};

    fn registry() -> ToolRegistry {
        let ports = Ports {
            knowledge: Arc::new(InMemoryKnowledge::new()),
            web: Arc::new(StaticWebFetcher::new()),
            handoffs: Arc::new(InMemoryHandoffs::new()),
        };
        let mut agent = AgentSnapshot::new(AgentId::new(), WorkspaceId::new(), "A", "You are A.");
        agent.skills = vec!["web-fetch:fetch".into(), "handoff:escalate".into()];
        ToolRegistry::for_agent(&agent, &ports, &[])
    }

    #[test]
    fn skills_map_to_built_in_tools_and_knowledge_needs_a_skill_or_a_base() {
        let r = registry();
        let names: Vec<String> = r.specs().into_iter().map(|s| s.name).collect();
        assert_eq!(names, vec![WEB_FETCH, ESCALATE_TO_HUMAN]);
        assert_eq!(r.for_skill("handoff:escalate").unwrap().spec.name, ESCALATE_TO_HUMAN);
        assert!(r.for_skill("knowledge:search").is_none());
    }

    #[test]
    fn arguments_are_parsed_and_checked_against_the_schema() {
        let r = registry();
        assert_eq!(
            r.validate(WEB_FETCH, r#"{"url":"https://a.test"}"#).unwrap(),
            serde_json::json!({"url": "https://a.test"})
        );
        let bad_url = r.validate(WEB_FETCH, r#"{"url":"file:///etc/passwd"}"#);
        assert!(matches!(bad_url, Err(ArgumentError::Invalid(m)) if m.contains("/url")));
        let extra = r.validate(ESCALATE_TO_HUMAN, r#"{"reason":"x","admin":true}"#);
        assert!(matches!(extra, Err(ArgumentError::Invalid(_))));
        assert!(
            matches!(r.validate(ESCALATE_TO_HUMAN, ""), Err(ArgumentError::Invalid(m)) if m.contains("reason"))
        );
        assert_eq!(r.validate("nope", "{}"), Err(ArgumentError::UnknownTool("nope".into())));
    }

    #[test]
    fn routed_calls_take_their_arguments_from_the_message() {
        let r = registry();
        let fetch = &r.get(WEB_FETCH).unwrap().spec;
        assert_eq!(
            arguments_from_message(fetch, "read https://a.test/x, please"),
            Some(serde_json::json!({"url": "https://a.test/x"}))
        );
        assert_eq!(arguments_from_message(fetch, "no link here"), None);
        let esc = &r.get(ESCALATE_TO_HUMAN).unwrap().spec;
        assert_eq!(
            arguments_from_message(esc, "human please"),
            Some(serde_json::json!({"reason": "human please"}))
        );
    }
}
