//! The built-in tools: `search_knowledge`, `web_fetch` and `escalate_to_human`, each a thin
//! adapter over one port.

use std::sync::Arc;

use async_trait::async_trait;
use llm::ToolSpec;
use serde_json::{Value, json};

use super::{ESCALATE_TO_HUMAN, SEARCH_KNOWLEDGE, Tool, ToolContext, ToolOutput, WEB_FETCH};
use crate::ports::{HandoffRequest, HandoffSink, KnowledgeQuery, KnowledgeSearch, WebFetcher};

/// Most page text handed to the model: enough for an article, not a whole site.
const MAX_PAGE_CHARS: usize = 8_000;

/// Searches the agent's knowledge bases.
pub struct SearchKnowledge {
    port: Arc<dyn KnowledgeSearch>,
}

impl SearchKnowledge {
    pub fn new(port: Arc<dyn KnowledgeSearch>) -> Self {
        Self { port }
    }
}

#[async_trait]
impl Tool for SearchKnowledge {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: SEARCH_KNOWLEDGE.into(),
            description: "Search the knowledge base for passages relevant to a question. \
                Results are numbered; cite them as [1], [2], …"
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "query": {"type": "string", "minLength": 1, "description": "What to look for"},
                    "top_k": {"type": "integer", "minimum": 1, "maximum": 20,
                              "description": "How many passages (default 5)"}
                },
                "required": ["query"],
                "additionalProperties": false
            }),
        }
    }

    async fn call(&self, arguments: Value, ctx: &ToolContext) -> Result<ToolOutput, String> {
        let query = arguments["query"].as_str().unwrap_or_default().to_owned();
        let top_k = arguments["top_k"].as_u64().map_or(ctx.top_k, |k| k as usize);
        let q = KnowledgeQuery {
            workspace_id: ctx.workspace_id,
            knowledge_base_ids: ctx.knowledge_base_ids.clone(),
            query,
            top_k,
        };
        self.port.search(&q).await.map(ToolOutput::Hits)
    }
}

/// Fetches a web page's main text.
pub struct WebFetch {
    port: Arc<dyn WebFetcher>,
}

impl WebFetch {
    pub fn new(port: Arc<dyn WebFetcher>) -> Self {
        Self { port }
    }
}

#[async_trait]
impl Tool for WebFetch {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: WEB_FETCH.into(),
            description: "Fetch a web page and return its title and main text.".into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "url": {"type": "string", "pattern": "^https?://", "description": "http(s) URL"}
                },
                "required": ["url"],
                "additionalProperties": false
            }),
        }
    }

    async fn call(&self, arguments: Value, _ctx: &ToolContext) -> Result<ToolOutput, String> {
        let url = arguments["url"].as_str().unwrap_or_default();
        let page = self.port.fetch(url).await?;
        let mut text: String = page.text.chars().take(MAX_PAGE_CHARS).collect();
        if text.len() < page.text.len() {
            text.push_str("\n[truncated]");
        }
        Ok(ToolOutput::Text(format!("Title: {}\nURL: {}\n\n{text}", page.title, page.url)))
    }
}

/// Asks for a human to take over the conversation.
pub struct EscalateToHuman {
    port: Arc<dyn HandoffSink>,
}

impl EscalateToHuman {
    pub fn new(port: Arc<dyn HandoffSink>) -> Self {
        Self { port }
    }
}

#[async_trait]
impl Tool for EscalateToHuman {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: ESCALATE_TO_HUMAN.into(),
            description: "Hand the conversation over to a human colleague, when the user asks \
                for one or you cannot help."
                .into(),
            parameters: json!({
                "type": "object",
                "properties": {
                    "reason": {"type": "string", "minLength": 1, "description": "Why a human is needed"}
                },
                "required": ["reason"],
                "additionalProperties": false
            }),
        }
    }

    async fn call(&self, arguments: Value, ctx: &ToolContext) -> Result<ToolOutput, String> {
        let request = HandoffRequest {
            workspace_id: ctx.workspace_id,
            agent_id: ctx.agent_id,
            conversation_id: ctx.conversation_id,
            reason: arguments["reason"].as_str().unwrap_or_default().to_owned(),
        };
        let id = self.port.request_handoff(&request).await?;
        Ok(ToolOutput::Text(format!(
            "Handoff requested (id {id}). A human colleague will take over this conversation."
        )))
    }
}
