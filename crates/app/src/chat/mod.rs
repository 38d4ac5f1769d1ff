//! Chatting with an agent: loading it as a [`runtime::AgentSnapshot`], loading or starting the
//! conversation, starting (or resuming) a run, and persisting what the run produced — messages,
//! the run and its steps, pending actions, usage — before the terminal event is forwarded, so a
//! client that saw `run.completed` reads a consistent conversation.
//!
//! The knowledge port searches the workspace's knowledge index ([`IndexKnowledge`]); web
//! pages are fetched through the SSRF guard ([`crate::chat::web_fetch::GuardedWebFetch`]). Escalations
//! are recorded as store handoffs ([`StoreHandoffs`]).

pub(crate) mod agent_cache;
pub mod attachments;
pub(crate) mod model_provider;
mod persist;
mod ports;
pub(crate) mod run_writer;
pub mod web_fetch;

pub use persist::{to_llm_history, to_steps};
pub use ports::{IndexKnowledge, NoKnowledge, NoWebFetch, StoreHandoffs};

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Instant;

use catalog::Catalog;
use domain::time::now_ms;
use domain::{AgentId, ConversationId, Permission, RunId};
use llm::ChatModel;
use parking_lot::Mutex;
use runtime::{Ports, RunEvent, RunInput, RunOutcome, Runtime, RuntimeSettings};
use store::{Channel, MessageRole, NewConversation, NewMessage, Store, TenantScope};
use tokio::sync::{mpsc, oneshot};

use crate::auth::access::check_agent_access;
use crate::usage::UsageBuffer;
use crate::{App, AppError, Principal};

/// Settings of the chat surfaces.
#[derive(Debug, Clone)]
pub struct ChatSettings {
    pub runtime: RuntimeSettings,
    /// Runs older than this many days are deleted (0 keeps them forever).
    pub run_retention_days: u32,
    /// Stored messages sent to the runtime as history (it trims them to its token budget).
    pub history_messages: u32,
    /// Which addresses a workspace's own model endpoint (BYOK `base_url`) may reach, checked
    /// when it is set and where each connection is made (the SSRF guard). Public only by
    /// default; `allow_private` for a model server on the LAN (Ollama).
    pub model_hosts: fetch::AddressPolicy,
}

impl Default for ChatSettings {
    fn default() -> Self {
        Self {
            runtime: RuntimeSettings::default(),
            run_retention_days: 30,
            history_messages: 60,
            model_hosts: fetch::AddressPolicy::default(),
        }
    }
}

/// The runtime and what the chat surfaces share.
pub(crate) struct ChatEngine {
    pub(crate) runtime: Runtime,
    pub(crate) model: Option<Arc<dyn ChatModel>>,
    catalog: Arc<Catalog>,
    pub(crate) usage: UsageBuffer,
    /// Group commit of finished runs.
    pub(crate) writer: crate::chat::run_writer::RunWriter,
    /// Agents and their snapshots for the hot path.
    pub(crate) agents: crate::chat::agent_cache::AgentCache,
    /// Runtimes on workspaces' own model providers (BYOK).
    pub(crate) providers: crate::chat::model_provider::ProviderCache,
    ports: Ports,
    /// Live handoff events (operator replies, customers' messages, state changes).
    pub(crate) live: Arc<dyn crate::handoff::HandoffBus>,
    pub(crate) settings: ChatSettings,
    pub(crate) last_retention: Mutex<Option<Instant>>,
}

impl ChatEngine {
    pub(crate) fn new(
        store: Store,
        knowledge: Arc<crate::knowledge::KnowledgeSlot>,
        catalog: Arc<Catalog>,
        model: Option<Arc<dyn ChatModel>>,
        settings: ChatSettings,
    ) -> Self {
        let live: Arc<dyn crate::handoff::HandoffBus> =
            Arc::new(crate::handoff::BroadcastBus::default());
        let ports = Ports {
            knowledge: Arc::new(IndexKnowledge { slot: knowledge.clone() }),
            web: Arc::new(crate::chat::web_fetch::GuardedWebFetch::new(knowledge.clone())),
            handoffs: Arc::new(StoreHandoffs { store: store.clone(), live: live.clone() }),
        };
        let runtime = Runtime::new(model.clone(), ports.clone(), settings.runtime.clone());
        Self {
            runtime,
            model,
            catalog,
            usage: UsageBuffer::default(),
            writer: crate::chat::run_writer::RunWriter::new(store),
            providers: crate::chat::model_provider::ProviderCache::default(),
            agents: crate::chat::agent_cache::AgentCache::default(),
            ports,
            live,
            settings,
            last_retention: Mutex::new(None),
        }
    }
}

impl ChatEngine {
    /// A runtime like the server's, on another model (a workspace's own provider).
    pub(crate) fn runtime_with(&self, model: Arc<dyn ChatModel>) -> Runtime {
        Runtime::new(Some(model), self.ports.clone(), self.settings.runtime.clone())
    }
}

/// How a run's outcome is written.
pub(crate) enum Persist {
    /// The run row exists (a resumed run): append to it and move its status.
    Existing,
    /// Nothing is written yet: the run (and maybe its conversation) is written at the end.
    New(Box<NewRunWrite>),
}

/// What a new run's final write needs besides the outcome.
pub(crate) struct NewRunWrite {
    pub(crate) new_conversation: Option<NewConversation>,
    /// The user's message was stored when the run started (so a crash cannot lose it); the
    /// run's record leaves it out.
    pub(crate) user_message_stored: bool,
    pub(crate) model: Option<String>,
    pub(crate) started_at: domain::time::Millis,
}

impl NewRunWrite {
    /// The record of a run that failed without an outcome.
    fn record(
        self,
        scope: TenantScope,
        agent_id: AgentId,
        conversation_id: ConversationId,
        run_id: RunId,
        error: &str,
    ) -> store::RunRecord {
        store::RunRecord {
            scope,
            new_conversation: self.new_conversation,
            conversation_id,
            run_id,
            agent_id,
            model: self.model,
            status: store::RunStatus::Failed,
            started_at: self.started_at,
            finished_at: now_ms(),
            usage: serde_json::json!({}),
            error: Some(error.to_owned()),
            messages: Vec::new(),
            steps: Vec::new(),
        }
    }
}

/// One message to answer.
#[derive(Debug, Clone)]
pub struct ChatInput {
    /// The agent's id or slug.
    pub agent: String,
    pub message: String,
    pub conversation_id: Option<ConversationId>,
    pub end_user_id: Option<String>,
    pub channel: Channel,
    /// History given by the caller (OpenAI-compatible API) instead of the stored one.
    pub history: Option<Vec<llm::Message>>,
    /// Files read by [`App::read_attachments`], added to the conversation before the run.
    pub attachments: Vec<crate::chat::attachments::Attachment>,
}

/// A started run: live events (the terminal one arrives after persistence), then the result.
pub struct ChatRun {
    pub conversation_id: ConversationId,
    pub run_id: RunId,
    pub agent: store::Agent,
    pub events: mpsc::Receiver<RunEvent>,
    pub done: oneshot::Receiver<ChatResult>,
    /// Stops the run (it ends `cancelled` and is persisted so).
    pub cancel: runtime::CancellationToken,
}

/// A persisted run.
#[derive(Debug, Clone)]
pub struct ChatResult {
    pub outcome: RunOutcome,
    /// Stored pending actions (`act_…` ids to approve or reject), when the run paused.
    pub pending_actions: Vec<store::PendingAction>,
}

impl ChatRun {
    /// Reads every event, then the result (for non-streaming callers).
    pub async fn finish(mut self) -> Result<ChatResult, AppError> {
        while self.events.recv().await.is_some() {}
        self.done.await.map_err(|_| AppError::Internal("the run task ended early".into()))
    }
}

/// A conversation title from its first message: one line, at most 80 characters.
pub fn title_from(message: &str) -> String {
    let line = message.split_whitespace().collect::<Vec<_>>().join(" ");
    if line.chars().count() <= 80 {
        line
    } else {
        let cut: String = line.chars().take(79).collect();
        format!("{}…", cut.trim_end())
    }
}

impl App {
    pub(crate) fn engine(&self) -> &ChatEngine {
        &self.inner.chat
    }

    /// The default model's name, if a model is configured.
    pub fn model_name(&self) -> Option<String> {
        self.engine().model.as_ref().map(|m| m.model().to_owned())
    }

    /// Loads an agent by id or slug for chatting: needs `chat`, refuses inactive agents.
    pub async fn chat_agent(&self, p: &Principal, agent: &str) -> Result<store::Agent, AppError> {
        Ok(self.chat_agent_cached(p, agent).await?.agent.clone())
    }

    /// [`App::chat_agent`] with the agent's runtime snapshot, cached for a few seconds (and
    /// dropped when an agent of the workspace changes).
    pub(crate) async fn chat_agent_cached(
        &self,
        p: &Principal,
        agent: &str,
    ) -> Result<Arc<crate::chat::agent_cache::CachedAgent>, AppError> {
        p.require(Permission::Chat)?;
        let scope = p.scope();
        let cache = &self.engine().agents;
        let found = match cache.get(scope.workspace_id(), agent) {
            Some(found) => found,
            None => {
                let row = match AgentId::parse(agent) {
                    Ok(id) => self.store().get_agent(&scope, id).await,
                    Err(_) => self.store().get_agent_by_slug(&scope, agent).await,
                }
                .map_err(AppError::from_store("agent"))?;
                let found = self.cache_entry(&scope, row).await?;
                cache.put(scope.workspace_id(), agent, found.clone());
                found
            }
        };
        check_agent_access(p, found.agent.id)?;
        if !found.agent.is_active {
            return Err(AppError::conflict(
                "agent_inactive",
                format!("{} is paused; activate it before chatting", found.agent.display_name),
            ));
        }
        Ok(found)
    }

    /// What the chat path keeps of a stored agent: its snapshot (with its own tools) and its
    /// escalation settings.
    async fn cache_entry(
        &self,
        scope: &TenantScope,
        row: store::Agent,
    ) -> Result<Arc<crate::chat::agent_cache::CachedAgent>, AppError> {
        let snapshot = self.agent_snapshot(scope, &row).await?;
        let escalation = crate::handoff::triggers::EscalationSettings::of(&row);
        Ok(Arc::new(crate::chat::agent_cache::CachedAgent { agent: row, snapshot, escalation }))
    }

    /// [`App::chat_agent_cached`] for an agent already read and admitted elsewhere (the
    /// widget's public path): the cached entry when it is of this version of the agent.
    pub(crate) async fn cached_agent_row(
        &self,
        scope: &TenantScope,
        row: &store::Agent,
    ) -> Result<Arc<crate::chat::agent_cache::CachedAgent>, AppError> {
        let cache = &self.engine().agents;
        let key = row.id.to_string();
        if let Some(found) = cache.get(scope.workspace_id(), &key)
            && found.agent.version == row.version
            && found.agent.updated_at == row.updated_at
        {
            return Ok(found);
        }
        let found = self.cache_entry(scope, row.clone()).await?;
        cache.put(scope.workspace_id(), &key, found.clone());
        Ok(found)
    }

    /// Drops the cached agents of the caller's workspace (an agent changed or was deleted).
    pub(crate) fn forget_cached_agents(&self, p: &Principal) {
        self.engine().agents.forget_workspace(p.scope().workspace_id());
    }

    /// The active agents the caller may chat with (an agent key sees only its agent).
    pub async fn chat_models(&self, p: &Principal) -> Result<Vec<store::Agent>, AppError> {
        p.require(Permission::Chat)?;
        let mut agents = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.store().list_agents(&p.scope(), Some(true), cursor, Some(200)).await?;
            agents.extend(page.data.into_iter().filter(|a| check_agent_access(p, a.id).is_ok()));
            match page.next_cursor.and_then(|c| AgentId::parse(&c).ok()) {
                Some(c) => cursor = Some(c),
                None => break,
            }
        }
        Ok(agents)
    }

    /// Answers a message: starts the run and returns its live events and result.
    pub async fn start_chat(&self, p: &Principal, input: ChatInput) -> Result<ChatRun, AppError> {
        let message = self.chat_message(&input.message)?;
        let cached = self.chat_agent_cached(p, &input.agent).await?;
        self.chat_as(p.scope(), cached, message, input).await
    }

    /// The message to answer, trimmed; refuses empty and too long ones.
    pub(crate) fn chat_message(&self, raw: &str) -> Result<String, AppError> {
        let message = raw.trim().to_owned();
        if message.is_empty() {
            return Err(AppError::field("/message", "required", "is required"));
        }
        let limit = self.engine().settings.runtime.max_message_chars;
        if message.chars().count() > limit {
            return Err(AppError::field(
                "/message",
                "too_long",
                format!("must be at most {limit} characters"),
            ));
        }
        Ok(message)
    }

    /// Starts the run for an agent the caller was authorized to chat with in `scope` (the
    /// signed-in or key path above, or the widget's origin-checked public path).
    pub(crate) async fn chat_as(
        &self,
        scope: TenantScope,
        cached: Arc<crate::chat::agent_cache::CachedAgent>,
        message: String,
        input: ChatInput,
    ) -> Result<ChatRun, AppError> {
        let agent = cached.agent.clone();
        let snapshot = cached.snapshot.clone();
        let escalation = cached.escalation.as_ref();
        // Every surface starts its runs here, so a read-only (past due) workspace and the
        // plan's monthly messages are checked once for all of them (from memory: see
        // `billing::standing` and `plan_limits`).
        self.check_writable(&scope).await?;
        self.check_message_limit(&scope).await?;
        let message_cost =
            self.credit_cost(agent.template_slug.as_deref(), crate::billing::credits::CHAT_MESSAGE);
        self.check_credits(&scope, message_cost).await?;
        let now = now_ms();
        // A new conversation on the OpenAI-compatible API is only named in the response, so it
        // is written with the run (one batched write per completion); the other surfaces hand
        // its id out while the run streams, so it is written with the run's start, before the
        // run's first event (`begun`), in the transaction that stores the user's message.
        let mut new_conversation = None;
        let mut begun = None;
        let mut handoff_state = store::HandoffState::Bot;
        let conversation_id = match input.conversation_id {
            Some(id) => {
                let c = self
                    .store()
                    .get_conversation(&scope, id)
                    .await
                    .map_err(AppError::from_store("conversation"))?;
                if c.agent_id != agent.id {
                    return Err(AppError::conflict(
                        "conversation_agent_mismatch",
                        "this conversation belongs to another agent",
                    ));
                }
                if c.title.is_none() {
                    self.store()
                        .set_conversation_title(&scope, id, &title_from(&message), now)
                        .await?;
                }
                handoff_state = c.handoff_state;
                c.id
            }
            None => {
                let new = NewConversation {
                    id: ConversationId::new(),
                    agent_id: agent.id,
                    end_user_id: input.end_user_id.clone(),
                    channel: input.channel,
                    title: Some(title_from(&message)),
                };
                let id = new.id;
                if input.channel == Channel::OpenAi {
                    new_conversation = Some(new);
                } else {
                    begun = Some(new);
                }
                id
            }
        };
        if !input.attachments.is_empty() {
            if new_conversation.is_some() {
                return Err(AppError::field(
                    "/attachments",
                    "unsupported",
                    "attachments are not taken on this endpoint",
                ));
            }
            if let Some(new) = begun.take() {
                self.store().create_conversation(&scope, &new, now).await?;
            }
            self.store_attachments(&scope, conversation_id, &input.attachments).await?;
        }
        // Live handoff: while people answer the conversation the bot stays silent (the state
        // is on the row read above; nothing more is read for conversations the bot answers).
        // A conversation not written yet is new: only a trigger in this message hands it over.
        let may_hand_over = match &begun {
            Some(_) => escalation.is_some_and(|s| s.trigger(&message).is_some()),
            None => new_conversation.is_none(),
        };
        if may_hand_over && let Some(new) = begun.take() {
            self.store().create_conversation(&scope, &new, now).await?;
        }
        if may_hand_over
            && let Some(run) = self
                .answer_by_people(
                    &scope,
                    &agent,
                    escalation,
                    conversation_id,
                    handoff_state,
                    &message,
                    input.end_user_id.as_deref(),
                )
                .await?
        {
            return Ok(run);
        }
        let history = match input.history {
            Some(h) => h,
            // A new conversation has no history (nor unanswered turns) to read.
            None if begun.is_some() => Vec::new(),
            None => {
                let n = self.engine().settings.history_messages;
                let stored = self.store().recent_messages(&scope, conversation_id, n).await?;
                // Live handoff: the agent's answers did not help N times in a row.
                if let Some(run) = self
                    .answer_when_unanswered(
                        &scope,
                        &agent,
                        escalation,
                        conversation_id,
                        &stored,
                        &message,
                        input.end_user_id.as_deref(),
                    )
                    .await?
                {
                    return Ok(run);
                }
                to_llm_history(&stored)
            }
        };
        let run_id = RunId::new();
        let own = self.workspace_runtime(&scope).await?;
        let runtime = own.as_deref().unwrap_or(&self.engine().runtime);
        let default_model = match &own {
            Some(_) => runtime.model_name(),
            None => self.model_name(),
        };
        let model = default_model.map(|m| agent.model_override.clone().unwrap_or(m));
        // The run is recorded as `running` before it starts, so it shows in `GET /runs` while
        // it runs and a crash leaves it to be marked `interrupted` at the next start.
        // On the surfaces that hand out the conversation while the run streams, the user's
        // message is stored in the same transaction, so a crash mid-run cannot lose what was
        // accepted. (The OpenAI-compatible API is stateless: its caller holds the history; its
        // run's start goes through the group-commit writer, not waited for.)
        let user_message_stored = new_conversation.is_none();
        if user_message_stored {
            let run = store::NewRun {
                id: run_id,
                agent_id: agent.id,
                conversation_id: Some(conversation_id),
                model: model.clone(),
            };
            let user = NewMessage::text(MessageRole::User, message.clone());
            let conversation = begun.as_ref();
            let began = self.store().begin_run(&scope, &run, conversation, Some(&user), now).await;
            began.map_err(|e| match e {
                store::StoreError::NotFound => AppError::NotFound { what: "conversation" },
                other => other.into(),
            })?;
        } else {
            self.engine().writer.start(store::RunRecord {
                scope,
                new_conversation: None,
                conversation_id,
                run_id,
                agent_id: agent.id,
                model: model.clone(),
                status: store::RunStatus::Running,
                started_at: now,
                finished_at: now,
                usage: serde_json::json!({}),
                error: None,
                messages: Vec::new(),
                steps: Vec::new(),
            });
        }
        let handle = runtime.run(RunInput {
            run_id,
            conversation_id,
            agent: snapshot,
            history,
            user_message: message,
            api_key: None,
        });
        // The run is finished when it ends, with its steps and messages, in one batched
        // transaction (see `run_writer`).
        let persist = Persist::New(Box::new(NewRunWrite {
            new_conversation,
            user_message_stored,
            model,
            started_at: now,
        }));
        Ok(self.follow_with(scope, agent, conversation_id, run_id, handle, 1, persist))
    }

    /// Forwards the events of a run whose row exists (a resumed run) and persists its outcome.
    pub(crate) fn follow(
        &self,
        scope: TenantScope,
        agent: store::Agent,
        conversation_id: ConversationId,
        run_id: RunId,
        handle: runtime::RunHandle,
        messages: i64,
    ) -> ChatRun {
        self.follow_with(scope, agent, conversation_id, run_id, handle, messages, Persist::Existing)
    }

    /// Forwards a run's events and persists its outcome in a task of its own, so the run is
    /// recorded even when the client goes away.
    #[allow(clippy::too_many_arguments)]
    fn follow_with(
        &self,
        scope: TenantScope,
        agent: store::Agent,
        conversation_id: ConversationId,
        run_id: RunId,
        mut handle: runtime::RunHandle,
        messages: i64,
        persist: Persist,
    ) -> ChatRun {
        let (tx, events) = mpsc::channel(64);
        let (done_tx, done) = oneshot::channel();
        let cancel = handle.cancel.clone();
        let app = self.clone();
        let agent_id = agent.id;
        let template = agent.template_slug.as_deref();
        let message_cost = self.credit_cost(template, crate::billing::credits::CHAT_MESSAGE);
        let tool_cost = self.credit_cost(template, crate::billing::credits::TOOL_CALL);
        tokio::spawn(async move {
            let mut terminal = None;
            while let Some(e) = handle.events.recv().await {
                if matches!(e, RunEvent::RunCompleted { .. } | RunEvent::RunFailed { .. }) {
                    terminal = Some(e);
                } else if tx.send(e).await.is_err() {
                    // The client went away: stop reading so the runtime sees it. It traces a
                    // `client_disconnected` step and finishes (or cancels, per its policy).
                    break;
                }
            }
            handle.events.close();
            let outcome = match handle.outcome.await {
                Ok(o) => o,
                Err(e) => {
                    tracing::error!(error = %e, %run_id, "the run task failed");
                    const FAILED: &str = "internal: the run task failed";
                    match persist {
                        Persist::Existing => {
                            let _ = app
                                .store()
                                .set_run_status(
                                    &scope,
                                    run_id,
                                    store::RunStatus::Failed,
                                    None,
                                    Some(FAILED),
                                    now_ms(),
                                )
                                .await;
                        }
                        Persist::New(w) => {
                            let record = w.record(scope, agent_id, conversation_id, run_id, FAILED);
                            let _ = app.engine().writer.write(record).await;
                        }
                    }
                    let _ = tx
                        .send(RunEvent::RunFailed {
                            run_id,
                            code: "internal".into(),
                            message: "the run failed unexpectedly".into(),
                        })
                        .await;
                    return;
                }
            };
            let now = now_ms();
            let pending_actions = match persist {
                Persist::Existing => {
                    app.persist_outcome(&scope, agent_id, conversation_id, &outcome, now).await
                }
                Persist::New(w) => {
                    app.persist_new_run(scope, agent_id, conversation_id, *w, &outcome, now).await
                }
            };
            let tools = i64::from(outcome.usage.tool_calls);
            let credits = message_cost * messages + tool_cost * tools;
            app.engine().usage.record(
                scope.workspace_id(),
                agent_id,
                now,
                messages,
                &outcome.usage,
                credits,
            );
            let ws = scope.workspace_id();
            app.spend_credits(ws, crate::billing::credits::CHAT_MESSAGE, message_cost, messages);
            app.spend_credits(ws, crate::billing::credits::TOOL_CALL, tool_cost, tools);
            if let Some(t) = terminal {
                let _ = tx.send(t).await;
            }
            let _ = done_tx.send(ChatResult { outcome, pending_actions });
        });
        ChatRun { conversation_id, run_id, agent, events, done, cancel }
    }

    /// The runtime's view of a stored agent, with its own tools (see [`crate::tools`]).
    pub(crate) async fn agent_snapshot(
        &self,
        scope: &TenantScope,
        a: &store::Agent,
    ) -> Result<runtime::AgentSnapshot, AppError> {
        let mut s = self.snapshot(a);
        s.tools = self.agent_tools(scope, a).await?;
        Ok(s)
    }

    /// The runtime's view of a stored agent's settings (no tools of its own).
    pub fn snapshot(&self, a: &store::Agent) -> runtime::AgentSnapshot {
        let mut s =
            runtime::AgentSnapshot::new(a.id, a.workspace_id, &a.display_name, &a.system_prompt);
        s.personality = serde_json::from_value(a.personality.0.clone()).unwrap_or_default();
        s.behavior = serde_json::from_value(a.behavior.0.clone()).unwrap_or_default();
        s.skills = self.skills(&a.enabled_capabilities.0);
        s.knowledge_base_ids = a.knowledge_bases();
        s.model = a.model_override.clone().filter(|m| !m.trim().is_empty());
        s.routing = match &a.routing_rules.0 {
            serde_json::Value::Array(rules) => runtime::RoutingRules {
                rules: serde_json::from_value(serde_json::Value::Array(rules.clone()))
                    .unwrap_or_default(),
                ..Default::default()
            },
            v @ serde_json::Value::Object(_) => {
                serde_json::from_value(v.clone()).unwrap_or_default()
            }
            _ => runtime::RoutingRules::default(),
        };
        s.requires_confirmation = a
            .config
            .0
            .get("requires_confirmation")
            .and_then(|v| v.as_array())
            .map(|names| names.iter().filter_map(|n| n.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        // Actions that send, create or update outside the conversation wait for approval
        // unless the agent's config turns that off.
        s.confirm_side_effects = a
            .config
            .0
            .get("confirm_side_effects")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(true);
        s
    }

    /// Skills of the enabled capabilities (built-in fallbacks only: no integrations yet).
    fn skills(&self, enabled: &serde_json::Value) -> Vec<String> {
        let ids: Vec<String> = match enabled {
            serde_json::Value::Array(items) => items
                .iter()
                .filter_map(|i| {
                    i.as_str()
                        .map(str::to_owned)
                        .or_else(|| i.get("id").and_then(|v| v.as_str()).map(str::to_owned))
                })
                .collect(),
            serde_json::Value::Object(map) => map
                .iter()
                .filter(|(_, v)| v.as_bool() != Some(false) && !v.is_null())
                .map(|(k, _)| k.clone())
                .collect(),
            _ => Vec::new(),
        };
        let catalog = &self.engine().catalog;
        let connected = BTreeSet::new();
        let mut skills = Vec::new();
        for id in ids {
            match catalog.registry().resolve_skills(std::slice::from_ref(&id), &connected) {
                Ok(found) => {
                    for s in found {
                        if !skills.contains(&s) {
                            skills.push(s);
                        }
                    }
                }
                // Tool names and skill ids given directly are accepted by the runtime.
                Err(_) => skills.push(id),
            }
        }
        skills
    }
}
