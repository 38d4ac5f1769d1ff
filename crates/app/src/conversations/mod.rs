//! Conversations: starting, listing, reading and deleting them; turning stored messages into
//! model history and run outcomes into stored messages; deciding pending actions.

pub(crate) mod runs;

use domain::time::now_ms;
use domain::{AgentId, ConversationId, Permission};
use runtime::{ActionDecision, PausedRun, ResumeInput};
use serde_json::Value;
use store::{
    ActionStatus, Channel, Conversation, ConversationFilter, Message, NewConversation, Page,
    PendingAction,
};

use crate::auth::access::{check_agent_access, key_agent};
use crate::chat::{ChatRun, to_llm_history};
use crate::{App, AppError, Principal};

/// A conversation with its messages and the actions waiting for a decision.
#[derive(Debug, Clone)]
pub struct ConversationDetail {
    pub conversation: Conversation,
    pub messages: Vec<Message>,
    pub pending_actions: Vec<PendingAction>,
}

impl App {
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
        p.require_read(domain::Readable::Conversations)?;
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
        p.require_read(domain::Readable::Conversations)?;
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
        let snapshot = self.agent_snapshot(&scope, &agent).await?;
        // The run resumes on the provider it started on: the workspace's own, if it set one.
        let own = self.workspace_runtime(&scope).await?;
        let runtime = own.as_deref().unwrap_or(&self.engine().runtime);
        let handle = runtime
            .resume(ResumeInput {
                conversation_id: conversation,
                agent: snapshot,
                history: to_llm_history(&stored),
                paused,
                decisions,
                api_key: None,
            })
            .map_err(|e| AppError::bad_request(e.code(), e.to_string()))?;
        Ok(self.follow(scope, agent, conversation, action.run_id, handle, 0))
    }
}
