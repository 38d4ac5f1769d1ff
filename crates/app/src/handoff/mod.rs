//! Live human handoff: a conversation goes from the bot to the business's people and back.
//!
//! - **States** (stored on the conversation, moved by the store's conditional updates):
//!   `bot` → `waiting` (escalated: the `escalate_to_human` tool, a keyword, the customer
//!   asking for a person, or a clearly negative message, see [`triggers`]) → `human` (an operator claimed it; of concurrent
//!   claims exactly one wins) → `bot` (returned) or `closed`. Every move, operator message and
//!   internal note is a stored handoff event with who and when.
//! - **The bot is silent** while a conversation is `waiting` or `human`: `App::chat_as` reads
//!   the state from the conversation row it loads anyway, stores the customer's message, runs
//!   no model, and tells a waiting customer the fallback message and their place in the queue.
//! - **Operators** (workspace members, and workspace keys with `chat`; never agent keys) list,
//!   read, claim, reply, note, return and close; another workspace's handoff is not found.
//! - **Live delivery** through a [`HandoffBus`]: operator replies and state changes reach the
//!   customer's conversation stream, customers' messages and notes the workspace's inbox.
//! - **Targets** besides the inbox ([`targets`]): a created handoff goes to the agent's signed
//!   webhook or team email address through a durable job.

pub mod bus;
mod sentiment;
pub mod targets;
pub(crate) mod triggers;

use std::sync::Arc;

pub use bus::{BroadcastBus, HandoffBus, LiveEvent, LiveKind, LiveMessage};

use domain::time::now_ms;
use domain::{ConversationId, Permission, RunId};
use runtime::{RunEvent, RunOutcome, RunStatus, RunUsage};
use store::{
    Conversation, Handoff, HandoffActor, HandoffEvent, HandoffMove, HandoffState, HandoffStatus,
    Message, MessageRole, NewHandoff, NewMessage, Page, TenantScope,
};
use tokio::sync::{broadcast, mpsc, oneshot};

use crate::auth::access::key_agent;
use crate::{Actor, App, AppError, ChatResult, ChatRun, Principal};

/// Which handoffs an operator lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandoffFilter {
    /// Waiting and with a person: the inbox.
    Open,
    Waiting,
    Human,
    Returned,
    Closed,
}

impl HandoffFilter {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "open" => Self::Open,
            "waiting" => Self::Waiting,
            "human" => Self::Human,
            "returned" => Self::Returned,
            "closed" => Self::Closed,
            _ => return None,
        })
    }

    fn statuses(self) -> &'static [HandoffStatus] {
        match self {
            Self::Open => &[HandoffStatus::Waiting, HandoffStatus::Human],
            Self::Waiting => &[HandoffStatus::Waiting],
            Self::Human => &[HandoffStatus::Human],
            Self::Returned => &[HandoffStatus::Returned],
            Self::Closed => &[HandoffStatus::Closed],
        }
    }
}

/// A handoff as the inbox lists it.
#[derive(Debug, Clone)]
pub struct HandoffItem {
    pub handoff: Handoff,
    /// The conversation (absent for requests made without a stored conversation).
    pub conversation: Option<Conversation>,
    /// The place in the workspace's queue while waiting (1: next), else 0.
    pub queue_position: i64,
}

/// One handoff with its transcript and its events.
#[derive(Debug, Clone)]
pub struct HandoffDetail {
    pub item: HandoffItem,
    /// The conversation's messages, oldest first (up to 200).
    pub messages: Vec<Message>,
    /// Transitions, operator messages and internal notes, oldest first.
    pub events: Vec<HandoffEvent>,
}

/// Operators' messages and notes are at most this long.
const MAX_TEXT_CHARS: usize = 8_000;

impl App {
    fn live(&self) -> &Arc<dyn HandoffBus> {
        &self.engine().live
    }

    /// Operators: anyone of the workspace who may chat (members, admins, owners, and
    /// workspace keys with `chat`); agent keys speak for one agent's customers, not for the
    /// business's people.
    fn require_handoff_operator(&self, p: &Principal) -> Result<(), AppError> {
        p.require(Permission::Chat)?;
        if key_agent(p).is_some() {
            return Err(AppError::forbidden(
                "operator_required",
                "agent keys cannot act on handoffs; use a member's session or a workspace key",
            ));
        }
        Ok(())
    }

    /// The operator as recorded on what they do: a user by name, a key by its name.
    async fn handoff_operator(&self, p: &Principal) -> Result<HandoffActor, AppError> {
        Ok(match &p.actor {
            Actor::User { user_id, .. } => {
                let user = self.store().get_user(*user_id).await?;
                HandoffActor {
                    kind: store::ActorKind::User,
                    id: Some(user_id.to_string()),
                    name: Some(user.name),
                }
            }
            Actor::Key { key_id, .. } => {
                let key = self.store().get_api_key(&p.scope(), *key_id).await?;
                HandoffActor {
                    kind: store::ActorKind::Key,
                    id: Some(key_id.to_string()),
                    name: Some(key.name),
                }
            }
        })
    }

    async fn handoff_item(
        &self,
        scope: &TenantScope,
        handoff: Handoff,
    ) -> Result<HandoffItem, AppError> {
        let conversation = match handoff.conversation_id.as_deref().map(ConversationId::parse) {
            Some(Ok(id)) => match self.store().get_conversation(scope, id).await {
                Ok(c) => Some(c),
                Err(store::StoreError::NotFound) => None,
                Err(e) => return Err(e.into()),
            },
            _ => None,
        };
        let queue_position = self.store().queue_position(scope, &handoff).await?;
        Ok(HandoffItem { handoff, conversation, queue_position })
    }

    /// The workspace's handoffs, oldest first (the queue's order).
    pub async fn handoffs(
        &self,
        p: &Principal,
        filter: HandoffFilter,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<HandoffItem>, AppError> {
        self.require_handoff_operator(p)?;
        let scope = p.scope();
        let page = self.store().list_handoffs_in(&scope, filter.statuses(), cursor, limit).await?;
        let mut data = Vec::with_capacity(page.data.len());
        for h in page.data {
            data.push(self.handoff_item(&scope, h).await?);
        }
        Ok(Page { data, next_cursor: page.next_cursor })
    }

    /// One handoff with its conversation's transcript and its events.
    pub async fn handoff(&self, p: &Principal, id: &str) -> Result<HandoffDetail, AppError> {
        self.require_handoff_operator(p)?;
        let scope = p.scope();
        let h =
            self.store().get_handoff(&scope, id).await.map_err(AppError::from_store("handoff"))?;
        let item = self.handoff_item(&scope, h).await?;
        let messages = match &item.conversation {
            Some(c) => self.store().list_messages(&scope, c.id, None, Some(200)).await?.data,
            None => Vec::new(),
        };
        let events = self.store().list_handoff_events(&scope, id).await?;
        Ok(HandoffDetail { item, messages, events })
    }

    /// Claims, returns to the bot, or closes a handoff. A move its state does not allow (the
    /// losers of concurrent claims among them) is a 409 `handoff_state`.
    pub async fn move_handoff(
        &self,
        p: &Principal,
        id: &str,
        mv: HandoffMove,
    ) -> Result<HandoffItem, AppError> {
        self.require_handoff_operator(p)?;
        let scope = p.scope();
        let actor = self.handoff_operator(p).await?;
        let h =
            self.store().move_handoff(&scope, id, mv, &actor, now_ms()).await.map_err(
                |e| match e {
                    store::StoreError::NotFound => AppError::NotFound { what: "handoff" },
                    store::StoreError::Conflict(_) => {
                        AppError::conflict("handoff_state", conflict_message(mv))
                    }
                    other => other.into(),
                },
            )?;
        let item = self.handoff_item(&scope, h).await?;
        if let Some(c) = &item.conversation {
            self.live().publish(self.state_event(&scope, c, Some(&item.handoff)).await);
            // Someone else in the queue moved up.
            if mv == HandoffMove::Claim || item.handoff.status == HandoffStatus::Closed {
                self.announce_queue(&scope).await;
            }
        }
        Ok(item)
    }

    /// Posts an operator's message to the customer (the handoff must be claimed: `human`).
    pub async fn post_operator_message(
        &self,
        p: &Principal,
        id: &str,
        content: &str,
    ) -> Result<Message, AppError> {
        self.require_handoff_operator(p)?;
        let content = operator_text(content, "/content")?;
        let scope = p.scope();
        let actor = self.handoff_operator(p).await?;
        let (h, m) = self
            .store()
            .add_operator_message(&scope, id, &actor, &content, now_ms())
            .await
            .map_err(|e| match e {
                store::StoreError::NotFound => AppError::NotFound { what: "handoff" },
                store::StoreError::Conflict(_) => AppError::conflict(
                    "handoff_state",
                    "claim the handoff before writing to the customer",
                ),
                other => other.into(),
            })?;
        self.live().publish(LiveEvent {
            workspace_id: scope.workspace_id(),
            conversation_id: m.conversation_id,
            handoff_id: Some(h.id),
            kind: LiveKind::Message { message: LiveMessage::from(&m) },
        });
        Ok(m)
    }

    /// Adds an internal note (the workspace's people see it; the customer never does).
    pub async fn add_handoff_note(
        &self,
        p: &Principal,
        id: &str,
        body: &str,
    ) -> Result<HandoffEvent, AppError> {
        self.require_handoff_operator(p)?;
        let body = operator_text(body, "/body")?;
        let scope = p.scope();
        let actor = self.handoff_operator(p).await?;
        let e = self
            .store()
            .add_handoff_note(&scope, id, &actor, &body, now_ms())
            .await
            .map_err(AppError::from_store("handoff"))?;
        if let Some(Ok(c)) = e.conversation_id.as_deref().map(ConversationId::parse) {
            self.live().publish(LiveEvent {
                workspace_id: scope.workspace_id(),
                conversation_id: c,
                handoff_id: Some(e.handoff_id.clone()),
                kind: LiveKind::Note {
                    author: e.actor_name.clone(),
                    body: body.clone(),
                    created_at: e.created_at,
                },
            });
        }
        Ok(e)
    }

    /// The operators' inbox stream: every live event of the workspace's handoffs.
    pub fn watch_inbox(&self, p: &Principal) -> Result<broadcast::Receiver<LiveEvent>, AppError> {
        self.require_handoff_operator(p)?;
        Ok(self.live().subscribe_workspace(p.scope().workspace_id()))
    }

    /// The customer's stream of a conversation the caller may read: its state now, then live
    /// operator messages and state changes.
    pub async fn watch_conversation(
        &self,
        p: &Principal,
        id: ConversationId,
    ) -> Result<(LiveEvent, broadcast::Receiver<LiveEvent>), AppError> {
        p.require_read(domain::Readable::Conversations)?;
        let scope = p.scope();
        let c = self
            .store()
            .get_conversation(&scope, id)
            .await
            .map_err(AppError::from_store("conversation"))?;
        crate::auth::access::check_agent_access(p, c.agent_id)
            .map_err(|_| AppError::NotFound { what: "conversation" })?;
        Ok(self.conversation_watch(&scope, &c).await)
    }

    /// Subscribes first (so nothing between the read and the subscription is lost), then
    /// reads the state.
    pub(crate) async fn conversation_watch(
        &self,
        scope: &TenantScope,
        c: &Conversation,
    ) -> (LiveEvent, broadcast::Receiver<LiveEvent>) {
        let rx = self.live().subscribe_conversation(c.id);
        let now = match self.store().get_conversation(scope, c.id).await {
            Ok(fresh) => fresh,
            Err(_) => c.clone(),
        };
        (self.state_event(scope, &now, None).await, rx)
    }

    /// The conversation's state as a live event (with the operator or the queue position).
    async fn state_event(
        &self,
        scope: &TenantScope,
        c: &Conversation,
        handoff: Option<&Handoff>,
    ) -> LiveEvent {
        let open = match handoff {
            Some(h) => Some(h.clone()),
            None if matches!(c.handoff_state, HandoffState::Waiting | HandoffState::Human) => {
                self.store().open_handoff(scope, c.id).await.ok().flatten()
            }
            None => None,
        };
        let queue_position = match (&open, c.handoff_state) {
            (Some(h), HandoffState::Waiting) => self.store().queue_position(scope, h).await.ok(),
            _ => None,
        };
        let operator = match c.handoff_state {
            HandoffState::Human => open.as_ref().and_then(|h| h.assignee_name.clone()),
            _ => None,
        };
        LiveEvent {
            workspace_id: scope.workspace_id(),
            conversation_id: c.id,
            handoff_id: open.map(|h| h.id),
            kind: LiveKind::State { state: c.handoff_state, operator, queue_position },
        }
    }

    /// Tells every waiting customer of the workspace their new place (after one left the
    /// queue).
    async fn announce_queue(&self, scope: &TenantScope) {
        let Ok(waiting) =
            self.store().list_handoffs_in(scope, &[HandoffStatus::Waiting], None, Some(200)).await
        else {
            return;
        };
        for (i, h) in waiting.data.iter().enumerate() {
            let Some(Ok(c)) = h.conversation_id.as_deref().map(ConversationId::parse) else {
                continue;
            };
            self.live().publish(LiveEvent {
                workspace_id: scope.workspace_id(),
                conversation_id: c,
                handoff_id: Some(h.id.clone()),
                kind: LiveKind::State {
                    state: HandoffState::Waiting,
                    operator: None,
                    queue_position: Some(i as i64 + 1),
                },
            });
        }
    }

    /// Hands a conversation to the workspace's people and tells the inbox and the customer.
    /// The handoff, and whether this made it (not an open one already there): the caller
    /// queues its targets once the customer's message is stored.
    pub(crate) async fn escalate(
        &self,
        scope: &TenantScope,
        new: &NewHandoff,
        actor: &HandoffActor,
    ) -> Result<(Handoff, bool), store::StoreError> {
        let (h, created) = self.store().escalate_conversation(scope, new, actor, now_ms()).await?;
        if created && let Some(c) = new.conversation_id {
            let c = self.store().get_conversation(scope, c).await?;
            self.live().publish(self.state_event(scope, &c, Some(&h)).await);
        }
        Ok((h, created))
    }

    /// Hands the conversation to people before the bot answers again when its last answers
    /// (in `stored`, the history the run would get) did not help N times in a row
    /// (`triggers.unanswered_threshold`); `None`: the bot answers.
    pub(crate) async fn answer_when_unanswered(
        &self,
        scope: &TenantScope,
        agent: &store::Agent,
        escalation: Option<&triggers::EscalationSettings>,
        conversation_id: ConversationId,
        stored: &[Message],
        message: &str,
        end_user_id: Option<&str>,
    ) -> Result<Option<ChatRun>, AppError> {
        let Some(reason) = escalation.and_then(|s| s.unanswered(stored)) else {
            return Ok(None);
        };
        let new = NewHandoff { agent_id: agent.id, conversation_id: Some(conversation_id), reason };
        let (h, created) = self.escalate(scope, &new, &HandoffActor::customer(end_user_id)).await?;
        let waiting = Waiting { state: HandoffState::Waiting, created: created.then_some(h) };
        self.answer_while_people_do(scope, agent, conversation_id, waiting, message).await
    }

    /// The customer's message when people, not the bot, answer the conversation: a waiting
    /// or claimed one, or one this message escalates (a keyword, a request for a person, or a
    /// clearly negative message).
    /// `None`: the bot answers. Reads nothing for conversations the bot answers.
    pub(crate) async fn answer_by_people(
        &self,
        scope: &TenantScope,
        agent: &store::Agent,
        escalation: Option<&triggers::EscalationSettings>,
        conversation_id: ConversationId,
        state: HandoffState,
        message: &str,
        end_user_id: Option<&str>,
    ) -> Result<Option<ChatRun>, AppError> {
        let mut people = Waiting { state, created: None };
        if !matches!(state, HandoffState::Waiting | HandoffState::Human) {
            let Some(settings) = escalation else { return Ok(None) };
            let Some(reason) = settings.trigger(message) else { return Ok(None) };
            let new =
                NewHandoff { agent_id: agent.id, conversation_id: Some(conversation_id), reason };
            let (h, created) =
                self.escalate(scope, &new, &HandoffActor::customer(end_user_id)).await?;
            people = Waiting { state: HandoffState::Waiting, created: created.then_some(h) };
        }
        self.answer_while_people_do(scope, agent, conversation_id, people, message).await
    }

    /// Stores the customer's message on a conversation people answer, tells the inbox, queues
    /// a just created handoff's targets (now that the transcript has the message) and answers
    /// with the waiting notice (or nothing).
    async fn answer_while_people_do(
        &self,
        scope: &TenantScope,
        agent: &store::Agent,
        conversation_id: ConversationId,
        waiting: Waiting,
        message: &str,
    ) -> Result<Option<ChatRun>, AppError> {
        let Waiting { state, created } = waiting;
        let now = now_ms();
        let stored = self
            .store()
            .append_messages(
                scope,
                conversation_id,
                &[NewMessage::text(MessageRole::User, message)],
                now,
            )
            .await
            .map_err(AppError::from_store("conversation"))?;
        if let Some(h) = &created {
            targets::queue(self.store(), scope, agent, h).await;
        }
        let open = self.store().open_handoff(scope, conversation_id).await?;
        if let Some(m) = stored.first() {
            self.live().publish(LiveEvent {
                workspace_id: scope.workspace_id(),
                conversation_id,
                handoff_id: open.as_ref().map(|h| h.id.clone()),
                kind: LiveKind::Message { message: LiveMessage::from(m) },
            });
        }
        let notice = match (state, &open) {
            (HandoffState::Waiting, Some(h)) => {
                let position = self.store().queue_position(scope, h).await?;
                triggers::waiting_notice(&triggers::fallback_message(agent), position)
            }
            (HandoffState::Waiting, None) => triggers::fallback_message(agent),
            _ => String::new(),
        };
        Ok(Some(silent_run(agent.clone(), conversation_id, notice)))
    }
}

/// The conversation's state when people answer it, and the handoff this message created.
struct Waiting {
    state: HandoffState,
    created: Option<Handoff>,
}

/// A "run" without a model: the events the chat surfaces expect, carrying the notice for a
/// waiting customer (or nothing while a person answers). Its id is not recorded as a run:
/// none happened.
fn silent_run(agent: store::Agent, conversation_id: ConversationId, notice: String) -> ChatRun {
    let run_id = RunId::new();
    let (tx, events) = mpsc::channel(8);
    let (done_tx, done) = oneshot::channel();
    let mut out =
        vec![RunEvent::RunStarted { run_id, conversation_id, agent_id: agent.id, model: None }];
    if !notice.is_empty() {
        out.push(RunEvent::MessageDelta { delta: notice.clone() });
        out.push(RunEvent::MessageCompleted { content: notice.clone(), citations: Vec::new() });
    }
    out.push(RunEvent::RunCompleted {
        run_id,
        status: RunStatus::Completed,
        usage: RunUsage::default(),
    });
    for e in out {
        // The channel holds them all; a receiver already gone needs none.
        let _ = tx.try_send(e);
    }
    let outcome = RunOutcome {
        run_id,
        status: RunStatus::Completed,
        text: notice,
        citations: Vec::new(),
        tool_calls: Vec::new(),
        usage: RunUsage::default(),
        trace: Vec::new(),
        messages: Vec::new(),
        paused: None,
        error: None,
        model: None,
        duration_ms: 0,
    };
    let _ = done_tx.send(ChatResult { outcome, pending_actions: Vec::new() });
    ChatRun {
        conversation_id,
        run_id,
        agent,
        events,
        done,
        cancel: runtime::CancellationToken::new(),
    }
}

fn conflict_message(mv: HandoffMove) -> &'static str {
    match mv {
        HandoffMove::Claim => {
            "this handoff is not waiting: another operator claimed it, or it ended"
        }
        HandoffMove::Return | HandoffMove::Close => "this handoff has already ended",
    }
}

/// An operator's text, trimmed; refuses empty and too long ones.
fn operator_text(raw: &str, path: &str) -> Result<String, AppError> {
    let text = raw.trim();
    if text.is_empty() {
        return Err(AppError::field(path, "required", "is required"));
    }
    if text.chars().count() > MAX_TEXT_CHARS {
        return Err(AppError::field(
            path,
            "too_long",
            format!("must be at most {MAX_TEXT_CHARS} characters"),
        ));
    }
    Ok(text.to_owned())
}
