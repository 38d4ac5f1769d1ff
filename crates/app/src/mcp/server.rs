//! The tools behind `/mcp`: one `chat_<agent>` tool per agent the caller may chat with (an
//! agent key: its agent), and one `search_<knowledge base>` tool per knowledge base it may
//! search (an agent key: its agent's; a workspace key: the workspace's, with `read`).
//!
//! A chat call is a run like on every other surface (`App::start_chat`: permissions, plan
//! limits, handoff state, persistence), on the `mcp` channel; its events go out as MCP progress
//! notifications, and a cancelled request cancels the run.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock};

use domain::{ConversationId, KnowledgeBaseId, Permission};
use knowledge::{SearchMode, SearchRequest};
use mcp::{Backend, BackendError, CancellationToken, JsonObject, Progress, ToolDef, ToolReply};
use runtime::RunEvent;
use runtime::RunStatus;
use serde_json::{Value, json};
use store::Channel;

use crate::auth::access::key_agent;
use crate::{App, AppError, ChatInput, Principal};

/// [`Backend`] for the app.
pub struct McpBackend {
    app: App,
}

impl McpBackend {
    pub fn new(app: App) -> Arc<Self> {
        Arc::new(Self { app })
    }
}

static CHAT_INPUT: LazyLock<Arc<JsonObject>> = LazyLock::new(|| {
    mcp::server::schema(json!({
        "type": "object",
        "properties": {
            "message": {"type": "string", "description": "What to ask or tell the agent."},
            "conversation_id": {
                "type": "string",
                "description": "Continue this conversation (the `conversation_id` of an earlier answer)."
            }
        },
        "required": ["message"],
        "additionalProperties": false
    }))
});

static CITATIONS: LazyLock<Value> = LazyLock::new(|| {
    json!({
        "type": "array",
        "items": {
            "type": "object",
            "properties": {
                "index": {"type": "integer"},
                "document_id": {"type": "string"},
                "document_title": {"type": "string"},
                "source_url": {"type": ["string", "null"]},
                "page": {"type": ["integer", "null"]},
                "excerpt": {"type": "string"},
                "score": {"type": "number"}
            },
            "required": ["index", "document_id", "document_title", "excerpt", "score"]
        }
    })
});

static CHAT_OUTPUT: LazyLock<Arc<JsonObject>> = LazyLock::new(|| {
    mcp::server::schema(json!({
        "type": "object",
        "properties": {
            "answer": {"type": "string"},
            "conversation_id": {"type": "string"},
            "run_id": {"type": ["string", "null"]},
            "status": {"type": "string"},
            "citations": *CITATIONS,
            "pending_actions": {"type": "array", "items": {"type": "object"}}
        },
        "required": ["answer", "conversation_id", "status", "citations"]
    }))
});

static SEARCH_INPUT: LazyLock<Arc<JsonObject>> = LazyLock::new(|| {
    mcp::server::schema(json!({
        "type": "object",
        "properties": {
            "query": {"type": "string", "description": "What to look for."},
            "top_k": {"type": "integer", "minimum": 1, "maximum": 20, "default": 5}
        },
        "required": ["query"],
        "additionalProperties": false
    }))
});

static SEARCH_OUTPUT: LazyLock<Arc<JsonObject>> = LazyLock::new(|| {
    mcp::server::schema(json!({
        "type": "object",
        "properties": {"results": *CITATIONS},
        "required": ["results"]
    }))
});

const CHAT_PREFIX: &str = "chat_";
const SEARCH_PREFIX: &str = "search_";

/// A knowledge base the caller may search, with its tool name.
struct Searchable {
    tool: String,
    id: KnowledgeBaseId,
    name: String,
    description: Option<String>,
}

impl McpBackend {
    /// The knowledge bases the caller may search, each with a unique tool name.
    async fn searchable(&self, p: &Principal) -> Result<Vec<Searchable>, AppError> {
        let scope = p.scope();
        let store = self.app.store();
        // The agent's knowledge bases, or all of them for a workspace key: one listing, filtered.
        let only: Option<HashSet<KnowledgeBaseId>> = match key_agent(p) {
            Some(agent) => {
                if !p.can(Permission::Chat) {
                    return Ok(Vec::new());
                }
                let cached = self.app.chat_agent_cached(p, agent).await?;
                if cached.snapshot.knowledge_base_ids.is_empty() {
                    return Ok(Vec::new());
                }
                Some(cached.snapshot.knowledge_base_ids.iter().copied().collect())
            }
            None => {
                if p.require_read(domain::Readable::Knowledge).is_err() {
                    return Ok(Vec::new());
                }
                None
            }
        };
        let mut rows = Vec::new();
        let mut cursor = None;
        loop {
            let page = store.list_knowledge_bases(&scope, cursor, Some(200)).await?;
            rows.extend(
                page.data.into_iter().filter(|kb| only.as_ref().is_none_or(|o| o.contains(&kb.id))),
            );
            match page.next_cursor.and_then(|c| KnowledgeBaseId::parse(&c).ok()) {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        let mut taken = HashSet::new();
        Ok(rows
            .into_iter()
            .map(|kb| {
                let base = format!("{SEARCH_PREFIX}{}", mcp::server::tool_name_part(&kb.name, 48));
                let mut tool = base.clone();
                let mut n = 2;
                while !taken.insert(tool.clone()) {
                    tool = format!("{base}_{n}");
                    n += 1;
                }
                Searchable { tool, id: kb.id, name: kb.name, description: kb.description }
            })
            .collect())
    }

    async fn chat(
        &self,
        p: &Principal,
        agent_slug: String,
        mut args: JsonObject,
        progress: &Progress,
        cancel: CancellationToken,
    ) -> Result<ToolReply, BackendError> {
        let message = match args.remove("message") {
            Some(Value::String(m)) => m,
            Some(_) => {
                return Err(BackendError::InvalidParams("`message` must be a string".into()));
            }
            None => return Err(BackendError::InvalidParams("`message` is required".into())),
        };
        let conversation_id = match args.remove("conversation_id") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(ConversationId::parse(&s).map_err(|_| {
                BackendError::InvalidParams(format!(
                    "`conversation_id` is not a conversation id: {s}"
                ))
            })?),
            Some(_) => {
                return Err(BackendError::InvalidParams(
                    "`conversation_id` must be a string".into(),
                ));
            }
        };
        if let Some(extra) = args.keys().next() {
            return Err(BackendError::InvalidParams(format!("unknown argument `{extra}`")));
        }
        let input = ChatInput {
            agent: agent_slug,
            message,
            conversation_id,
            end_user_id: None,
            channel: Channel::Mcp,
            history: None,
            attachments: Vec::new(),
        };
        let mut run = match self.app.start_chat(p, input).await {
            Ok(run) => run,
            Err(e) => return refused(e),
        };
        let conversation_id = run.conversation_id;
        loop {
            tokio::select! {
                event = run.events.recv() => match event {
                    Some(RunEvent::MessageDelta { delta }) if progress.wanted() => {
                        progress.report(delta).await;
                    }
                    Some(RunEvent::ToolStarted { tool, .. }) => {
                        progress.report(format!("using {tool}")).await;
                    }
                    Some(_) => {}
                    None => break,
                },
                () = cancel.cancelled() => {
                    run.cancel.cancel();
                    // The run ends `cancelled` and is persisted in its own task.
                    return Ok(ToolReply::error("cancelled"));
                }
            }
        }
        let result = run
            .done
            .await
            .map_err(|_| BackendError::Internal("the run task ended early".into()))?;
        let outcome = &result.outcome;
        let citations: Vec<Value> = outcome
            .citations
            .iter()
            .map(|c| {
                json!({"index": c.index, "document_id": c.document_id, "document_title": c.document_title,
                    "source_url": c.source_url, "page": c.page, "excerpt": c.excerpt, "score": c.score})
            })
            .collect();
        let pending: Vec<Value> = result
            .pending_actions
            .iter()
            .map(|a| json!({"id": a.id, "tool": a.tool_name, "arguments": a.arguments.0}))
            .collect();
        let mut text = outcome.text.clone();
        if outcome.status == RunStatus::Failed {
            let reason = outcome.error.as_ref().map(|e| e.message.as_str()).unwrap_or("unknown");
            return Ok(ToolReply::error(format!("the agent could not answer: {reason}")));
        }
        if !pending.is_empty() {
            let names: Vec<&str> =
                result.pending_actions.iter().map(|a| a.tool_name.as_str()).collect();
            text.push_str(&format!(
                "\n\n(The agent is waiting for approval to run {}; approve or reject it in EchoForge.)",
                names.join(", ")
            ));
        }
        if !outcome.citations.is_empty() {
            text.push_str("\n\nSources:");
            for c in &outcome.citations {
                text.push_str(&format!("\n[{}] {}", c.index, c.document_title));
                if let Some(url) = &c.source_url {
                    text.push_str(&format!(" ({url})"));
                }
            }
        }
        text.push_str(&format!("\n\n(conversation_id: {conversation_id})"));
        Ok(ToolReply::ok(
            text,
            Some(json!({
                "answer": outcome.text,
                "conversation_id": conversation_id,
                "run_id": run.run_id,
                "status": outcome.status,
                "citations": citations,
                "pending_actions": pending,
            })),
        ))
    }

    async fn search(
        &self,
        p: &Principal,
        kb: &Searchable,
        mut args: JsonObject,
    ) -> Result<ToolReply, BackendError> {
        let query = match args.remove("query") {
            Some(Value::String(q)) if !q.trim().is_empty() => q,
            Some(Value::String(_)) | None => {
                return Err(BackendError::InvalidParams("`query` is required".into()));
            }
            Some(_) => return Err(BackendError::InvalidParams("`query` must be a string".into())),
        };
        let top_k = match args.remove("top_k") {
            None | Some(Value::Null) => 5,
            Some(v) => match v.as_u64() {
                Some(n @ 1..=20) => n as usize,
                _ => {
                    return Err(BackendError::InvalidParams(
                        "`top_k` must be an integer from 1 to 20".into(),
                    ));
                }
            },
        };
        if let Some(extra) = args.keys().next() {
            return Err(BackendError::InvalidParams(format!("unknown argument `{extra}`")));
        }
        let services = match self.app.knowledge_services() {
            Ok(s) => s,
            Err(e) => return refused(e),
        };
        let request = SearchRequest { query, top_k, min_score: None, mode: SearchMode::Hybrid };
        let hits = services
            .index
            .search(p.workspace_id, &[kb.id], &request)
            .await
            .map_err(|e| BackendError::Internal(e.to_string()))?;
        let mut text = String::new();
        let results: Vec<Value> = hits
            .iter()
            .enumerate()
            .map(|(i, h)| {
                let m = &h.metadata;
                text.push_str(&format!("[{}] {}", i + 1, m.document_title));
                if let Some(page) = m.page {
                    text.push_str(&format!(", page {page}"));
                }
                text.push_str(&format!("\n{}\n\n", h.content.trim()));
                json!({"index": i + 1, "document_id": m.document_id, "document_title": m.document_title,
                    "source_url": m.source_url, "page": m.page, "excerpt": h.content, "score": h.score})
            })
            .collect();
        if results.is_empty() {
            text = format!("Nothing in {} matches that.", kb.name);
        }
        Ok(ToolReply::ok(text.trim_end().to_owned(), Some(json!({ "results": results }))))
    }
}

/// An app refusal as the tool's answer (the caller's model reads why), or a protocol error for
/// bad arguments and faults.
fn refused(e: AppError) -> Result<ToolReply, BackendError> {
    match e {
        AppError::Validation(errors) => Err(BackendError::InvalidParams(
            errors
                .iter()
                .map(|e| format!("{} {}", e.path, e.message))
                .collect::<Vec<_>>()
                .join("; "),
        )),
        AppError::NotFound { what } => {
            Err(BackendError::InvalidParams(format!("{what} not found")))
        }
        AppError::Internal(m) => Err(BackendError::Internal(m)),
        other => Ok(ToolReply::error(other.to_string())),
    }
}

#[async_trait::async_trait]
impl Backend for McpBackend {
    type Caller = Principal;

    async fn tools(&self, p: &Principal) -> Result<Vec<ToolDef>, BackendError> {
        let internal = |e: AppError| BackendError::Internal(e.to_string());
        let mut tools = Vec::new();
        if p.can(Permission::Chat) {
            for a in self.app.chat_models(p).await.map_err(internal)? {
                let about = a.description.as_deref().unwrap_or_default();
                tools.push(ToolDef {
                    name: format!("{CHAT_PREFIX}{}", a.slug.replace('-', "_")),
                    title: format!("Chat with {}", a.display_name),
                    description: format!(
                        "Ask {name}, an EchoForge agent{sep}{about}. Send `message`; pass the \
                         `conversation_id` of an earlier answer to continue that conversation. \
                         Answers cite their sources as [n].",
                        name = a.display_name,
                        sep = if about.is_empty() { "" } else { ": " },
                    ),
                    input_schema: CHAT_INPUT.clone(),
                    output_schema: Some(CHAT_OUTPUT.clone()),
                    read_only: false,
                });
            }
        }
        for kb in self.searchable(p).await.map_err(internal)? {
            tools.push(ToolDef {
                title: format!("Search {}", kb.name),
                description: format!(
                    "Search the knowledge base \"{}\"{}{} for passages (hybrid keyword and \
                     semantic search), with their documents and pages.",
                    kb.name,
                    if kb.description.is_some() { ": " } else { "" },
                    kb.description.as_deref().unwrap_or_default(),
                ),
                name: kb.tool,
                input_schema: SEARCH_INPUT.clone(),
                output_schema: Some(SEARCH_OUTPUT.clone()),
                read_only: true,
            });
        }
        Ok(tools)
    }

    async fn call(
        &self,
        p: &Principal,
        name: &str,
        arguments: JsonObject,
        progress: &Progress,
        cancel: CancellationToken,
    ) -> Result<ToolReply, BackendError> {
        if let Some(slug) = name.strip_prefix(CHAT_PREFIX) {
            let slug = slug.replace('_', "-");
            if domain::Slug::parse(&slug).is_err() || !p.can(Permission::Chat) {
                return Err(BackendError::UnknownTool(name.to_owned()));
            }
            // An agent this caller may not see is unknown, whatever the reason.
            match self.app.chat_agent_cached(p, &slug).await {
                Ok(_) => {}
                Err(AppError::NotFound { .. }) => {
                    return Err(BackendError::UnknownTool(name.to_owned()));
                }
                Err(e) => return refused(e),
            }
            return self.chat(p, slug, arguments, progress, cancel).await;
        }
        if name.starts_with(SEARCH_PREFIX) {
            let searchable =
                self.searchable(p).await.map_err(|e| BackendError::Internal(e.to_string()))?;
            if let Some(kb) = searchable.iter().find(|kb| kb.tool == name) {
                return self.search(p, kb, arguments).await;
            }
        }
        Err(BackendError::UnknownTool(name.to_owned()))
    }
}
