//! Conversations: starting, listing, reading and deleting them; turning stored messages into
//! model history and run outcomes into stored messages; deciding pending actions.

use domain::time::{Millis, now_ms};
use domain::{AgentId, ConversationId, MessageId, Permission};
use llm::{Message as LlmMessage, ToolCall};
use runtime::{ActionDecision, PausedRun, ResumeInput, RunOutcome, RunStatus};
use serde_json::{Value, json};
use store::{
    ActionStatus, Channel, Conversation, ConversationFilter, Message, MessageRole, NewConversation,
    NewMessage, NewPendingAction, Page, PendingAction, TenantScope,
};

use crate::chat::{ChatRun, check_agent_access, key_agent};
use crate::{App, AppError, Principal};

/// A conversation with its messages and the actions waiting for a decision.
#[derive(Debug, Clone)]
pub struct ConversationDetail {
    pub conversation: Conversation,
    pub messages: Vec<Message>,
    pub pending_actions: Vec<PendingAction>,
}

/// Stored messages as model history (system messages are the agent's, not history's).
pub fn to_llm_history(stored: &[Message]) -> Vec<LlmMessage> {
    stored
        .iter()
        .filter_map(|m| match m.role {
            MessageRole::User => Some(LlmMessage::user(m.content.clone())),
            MessageRole::Assistant => {
                let calls: Vec<ToolCall> =
                    serde_json::from_value(m.tool_calls.0.clone()).unwrap_or_default();
                let content = (!m.content.is_empty()).then(|| m.content.clone());
                Some(LlmMessage::assistant_tool_calls(content, calls))
            }
            MessageRole::Tool => {
                let id = m.tool_calls.0.get(0)?.get("tool_call_id")?.as_str()?.to_owned();
                Some(LlmMessage::tool_result(id, m.content.clone()))
            }
            MessageRole::System => None,
        })
        .collect()
}

/// A run's new messages as stored rows; citations and output tokens go on the final answer.
fn to_stored(outcome: &RunOutcome) -> Vec<NewMessage> {
    let last_answer = outcome.messages.iter().rposition(
        |m| matches!(m, LlmMessage::Assistant { content: Some(c), .. } if !c.is_empty()),
    );
    outcome
        .messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let (role, tool_calls) = match m {
                LlmMessage::System { .. } => (MessageRole::System, Value::Null),
                LlmMessage::User { .. } => (MessageRole::User, Value::Null),
                LlmMessage::Assistant { tool_calls, .. } => {
                    (MessageRole::Assistant, json!(tool_calls))
                }
                LlmMessage::Tool { tool_call_id, .. } => {
                    (MessageRole::Tool, json!([{ "tool_call_id": tool_call_id }]))
                }
            };
            let is_answer = Some(i) == last_answer && outcome.status == RunStatus::Completed;
            NewMessage {
                id: MessageId::new(),
                role,
                content: m.text().to_owned(),
                attachments: Value::Null,
                citations: if is_answer { json!(outcome.citations) } else { Value::Null },
                tool_calls,
                run_id: Some(outcome.run_id),
                tokens: is_answer.then_some(i64::from(outcome.usage.completion_tokens)),
            }
        })
        .collect()
}

/// A run's usage as stored on the run.
fn usage_json(outcome: &RunOutcome) -> Value {
    json!({
        "prompt_tokens": outcome.usage.prompt_tokens,
        "completion_tokens": outcome.usage.completion_tokens,
        "tool_calls": outcome.usage.tool_calls,
        "model_calls": outcome.usage.model_calls,
        "duration_ms": outcome.duration_ms,
    })
}

fn store_status(s: RunStatus) -> store::RunStatus {
    match s {
        RunStatus::Completed => store::RunStatus::Completed,
        RunStatus::Failed => store::RunStatus::Failed,
        RunStatus::AwaitingAction => store::RunStatus::AwaitingAction,
        RunStatus::Cancelled => store::RunStatus::Cancelled,
    }
}

impl App {
    /// Writes a run's messages, steps, status and pending actions. Failures are logged, not
    /// returned: the answer has already been streamed.
    pub(crate) async fn persist_outcome(
        &self,
        scope: &TenantScope,
        agent: AgentId,
        conversation: ConversationId,
        outcome: &RunOutcome,
        now: Millis,
    ) -> Vec<PendingAction> {
        let store = self.store();
        let messages = to_stored(outcome);
        if !messages.is_empty()
            && let Err(e) = store.append_messages(scope, conversation, &messages, now).await
        {
            tracing::error!(error = %e, run = %outcome.run_id, "could not store the run's messages");
        }
        let steps = crate::runs::to_steps(&outcome.trace);
        if !steps.is_empty()
            && let Err(e) = store.append_run_steps(scope, outcome.run_id, &steps, now).await
        {
            tracing::error!(error = %e, run = %outcome.run_id, "could not store the run's steps");
        }
        let pending = self.store_pending_actions(scope, conversation, outcome, now).await;
        let usage = usage_json(outcome);
        let error = outcome.error.as_ref().map(|e| format!("{}: {}", e.code, e.message));
        if let Err(e) = store
            .set_run_status(
                scope,
                outcome.run_id,
                store_status(outcome.status),
                Some(&usage),
                error.as_deref(),
                now,
            )
            .await
        {
            tracing::error!(error = %e, run = %outcome.run_id, "could not finish the run");
        }
        let _ = agent;
        pending
    }

    /// Records the actions a paused run waits on (the run row must exist).
    async fn store_pending_actions(
        &self,
        scope: &TenantScope,
        conversation: ConversationId,
        outcome: &RunOutcome,
        now: Millis,
    ) -> Vec<PendingAction> {
        let store = self.store();
        let mut pending = Vec::new();
        if let Some(paused) = &outcome.paused {
            for action in &paused.pending {
                let arguments: Value =
                    serde_json::from_str(&action.arguments).unwrap_or(Value::Null);
                let new = NewPendingAction {
                    run_id: outcome.run_id,
                    conversation_id: Some(conversation),
                    tool_name: action.tool.clone(),
                    arguments: json!({
                        "arguments": arguments,
                        "runtime_action_id": action.id,
                        "tool_call_id": action.tool_call_id,
                        "paused": paused,
                    }),
                };
                match store.create_pending_action(scope, &new, now).await {
                    Ok(a) => pending.push(a),
                    Err(e) => tracing::error!(error = %e, "could not store a pending action"),
                }
            }
        }
        pending
    }

    /// Writes a new run (started by this request) in one batched transaction: its
    /// conversation when the run started it, the run with its final status and usage, its
    /// messages and steps; then its pending actions, if it paused.
    pub(crate) async fn persist_new_run(
        &self,
        scope: TenantScope,
        agent: AgentId,
        conversation: ConversationId,
        write: crate::chat::NewRunWrite,
        outcome: &RunOutcome,
        now: Millis,
    ) -> Vec<PendingAction> {
        let record = store::RunRecord {
            scope,
            new_conversation: write.new_conversation,
            conversation_id: conversation,
            run_id: outcome.run_id,
            agent_id: agent,
            model: write.model,
            status: store_status(outcome.status),
            started_at: write.started_at,
            finished_at: now,
            usage: usage_json(outcome),
            error: outcome.error.as_ref().map(|e| format!("{}: {}", e.code, e.message)),
            messages: {
                let mut m = to_stored(outcome);
                if write.user_message_stored
                    && let Some(i) = m.iter().position(|x| x.role == MessageRole::User)
                {
                    m.remove(i);
                }
                m
            },
            steps: crate::runs::to_steps(&outcome.trace),
        };
        if let Err(e) = self.engine().writer.write(record).await {
            tracing::error!(error = %e, run = %outcome.run_id, "could not store the run");
            return Vec::new();
        }
        if outcome.paused.is_some() {
            self.store_pending_actions(&scope, conversation, outcome, now).await
        } else {
            Vec::new()
        }
    }

    /// Starts an empty conversation with an agent (id or slug).
    pub async fn create_conversation(
        &self,
        p: &Principal,
        agent: &str,
        end_user_id: Option<String>,
        title: Option<String>,
    ) -> Result<Conversation, AppError> {
        let agent = self.chat_agent(p, agent).await?;
        let new = NewConversation {
            id: ConversationId::new(),
            agent_id: agent.id,
            end_user_id,
            channel: Channel::Api,
            title: title.map(|t| crate::chat::title_from(&t)).filter(|t| !t.is_empty()),
        };
        Ok(self.store().create_conversation(&p.scope(), &new, now_ms()).await?)
    }

    /// Conversations, most recently active first.
    pub async fn conversations(
        &self,
        p: &Principal,
        mut filter: ConversationFilter,
        cursor: Option<ConversationId>,
        limit: Option<u32>,
    ) -> Result<Page<Conversation>, AppError> {
        p.require(Permission::Read).or_else(|_| p.require(Permission::Chat))?;
        if let Some(a) = key_agent(p) {
            let forced = AgentId::parse(a).map_err(|_| AppError::NotFound { what: "agent" })?;
            if filter.agent_id.is_some_and(|f| f != forced) {
                return Ok(Page { data: Vec::new(), next_cursor: None });
            }
            filter.agent_id = Some(forced);
        }
        Ok(self.store().list_conversations(&p.scope(), &filter, cursor, limit).await?)
    }

    async fn visible_conversation(
        &self,
        p: &Principal,
        id: ConversationId,
    ) -> Result<Conversation, AppError> {
        let c = self
            .store()
            .get_conversation(&p.scope(), id)
            .await
            .map_err(AppError::from_store("conversation"))?;
        check_agent_access(p, c.agent_id)
            .map_err(|_| AppError::NotFound { what: "conversation" })?;
        Ok(c)
    }

    /// A conversation with its messages (up to the first 200) and pending actions.
    pub async fn conversation(
        &self,
        p: &Principal,
        id: ConversationId,
    ) -> Result<ConversationDetail, AppError> {
        p.require(Permission::Read).or_else(|_| p.require(Permission::Chat))?;
        let conversation = self.visible_conversation(p, id).await?;
        let scope = p.scope();
        let messages = self.store().list_messages(&scope, id, None, Some(200)).await?.data;
        let pending_actions = self.store().list_pending_actions(&scope, id).await?;
        Ok(ConversationDetail { conversation, messages, pending_actions })
    }

    pub async fn delete_conversation(
        &self,
        p: &Principal,
        id: ConversationId,
    ) -> Result<(), AppError> {
        p.require(Permission::Chat)?;
        self.visible_conversation(p, id).await?;
        self.store()
            .delete_conversation(&p.scope(), id, now_ms())
            .await
            .map_err(AppError::from_store("conversation"))
    }

    /// Approves or rejects a pending action (by its stored id or the runtime's id from the
    /// `action.pending` event) and resumes the paused run. Other actions of the same run still
    /// pending are rejected: one decision continues the run.
    pub async fn decide_action(
        &self,
        p: &Principal,
        conversation: ConversationId,
        action_id: &str,
        approve: bool,
    ) -> Result<ChatRun, AppError> {
        p.require(Permission::Chat)?;
        let conv = self.visible_conversation(p, conversation).await?;
        let scope = p.scope();
        let pending = self.store().list_pending_actions(&scope, conversation).await?;
        let runtime_id = |a: &PendingAction| {
            a.arguments.0.get("runtime_action_id").and_then(Value::as_str).map(str::to_owned)
        };
        let action = pending
            .iter()
            .find(|a| a.id == action_id || runtime_id(a).as_deref() == Some(action_id))
            .ok_or(AppError::NotFound { what: "pending action" })?;
        let paused: PausedRun = serde_json::from_value(
            action.arguments.0.get("paused").cloned().unwrap_or(Value::Null),
        )
        .map_err(|e| AppError::Internal(format!("stored paused run is invalid: {e}")))?;
        let agent = self
            .store()
            .get_agent(&scope, conv.agent_id)
            .await
            .map_err(AppError::from_store("agent"))?;
        if !agent.is_active {
            return Err(AppError::conflict("agent_inactive", "this agent is paused"));
        }
        let now = now_ms();
        for other in pending.iter().filter(|a| a.run_id == action.run_id) {
            let decision = if other.id == action.id && approve {
                ActionStatus::Approved
            } else {
                ActionStatus::Rejected
            };
            self.store()
                .decide_pending_action(&scope, &other.id, decision, p.user_id(), now)
                .await?;
        }
        let decisions = vec![ActionDecision {
            action_id: runtime_id(action).unwrap_or_default(),
            approved: approve,
        }];
        let n = self.engine().settings.history_messages;
        let stored = self.store().recent_messages(&scope, conversation, n).await?;
        self.store()
            .set_run_status(&scope, action.run_id, store::RunStatus::Running, None, None, now)
            .await?;
        let handle = self
            .engine()
            .runtime
            .resume(ResumeInput {
                conversation_id: conversation,
                agent: self.snapshot(&agent),
                history: to_llm_history(&stored),
                paused,
                decisions,
                api_key: None,
            })
            .map_err(|e| AppError::bad_request(e.code(), e.to_string()))?;
        Ok(self.follow(scope, agent, conversation, action.run_id, handle, 0))
    }
}
