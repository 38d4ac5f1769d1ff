//! Handoffs: requests that a human take over a conversation, and the live handoff itself —
//! the conversation's `handoff_state` (bot → waiting → human → bot | closed), moved only by
//! conditional updates (of two operators claiming at once exactly one wins), every transition,
//! operator message and internal note recorded as a [`HandoffEvent`] with who and when.

use domain::time::Millis;
use domain::{AgentId, ConversationId, MessageId, WorkspaceId};
use serde::Serialize;

use crate::conversations::Message;
use crate::db::on_db;
use crate::kinds::{ActorKind, HandoffState, HandoffStatus};
use crate::runs::new_text_id;
use crate::{Page, Result, Store, StoreError, TenantScope, clamp_limit};

/// A handoff as stored. Ids are `hof_<32 hex>` (no typed id yet).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Handoff {
    pub id: String,
    #[sqlx(try_from = "String")]
    pub workspace_id: WorkspaceId,
    #[sqlx(try_from = "String")]
    pub agent_id: AgentId,
    pub conversation_id: Option<String>,
    pub reason: String,
    #[sqlx(try_from = "String")]
    pub status: HandoffStatus,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// The operator who claimed it (a user or key id) and their name.
    pub assignee_id: Option<String>,
    pub assignee_name: Option<String>,
}

/// A handoff to request (status `requested`).
#[derive(Debug, Clone)]
pub struct NewHandoff {
    pub agent_id: AgentId,
    pub conversation_id: Option<ConversationId>,
    pub reason: String,
}

macro_rules! handoff_columns {
    () => {
        "id, workspace_id, agent_id, conversation_id, reason, status, created_at, updated_at, assignee_id, assignee_name"
    };
}

macro_rules! event_columns {
    () => {
        "id, handoff_id, conversation_id, kind, from_state, to_state, actor_kind, actor_id, actor_name, body, message_id, created_at"
    };
}

/// Who did something to a handoff: an agent (escalating), an operator (a user or an API key),
/// or the customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HandoffActor {
    pub kind: ActorKind,
    pub id: Option<String>,
    pub name: Option<String>,
}

impl HandoffActor {
    pub fn agent(id: AgentId, name: &str) -> Self {
        Self { kind: ActorKind::Agent, id: Some(id.to_string()), name: Some(name.to_owned()) }
    }

    pub fn customer(end_user_id: Option<&str>) -> Self {
        Self { kind: ActorKind::Customer, id: end_user_id.map(str::to_owned), name: None }
    }
}

/// One recorded thing that happened to a handoff: `requested`, `claimed`, `returned`,
/// `closed` (with the states before and after), `message` (an operator's message, by id) or
/// `note` (internal: never shown to the customer).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct HandoffEvent {
    pub id: String,
    pub handoff_id: String,
    pub conversation_id: Option<String>,
    pub kind: String,
    pub from_state: Option<String>,
    pub to_state: Option<String>,
    #[sqlx(try_from = "String")]
    pub actor_kind: ActorKind,
    pub actor_id: Option<String>,
    pub actor_name: Option<String>,
    pub body: Option<String>,
    pub message_id: Option<String>,
    pub created_at: Millis,
}

/// An operator's move on a live handoff.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandoffMove {
    /// `waiting` → `human`: the operator takes the conversation; the bot stops answering.
    Claim,
    /// `waiting` | `human` → `returned`: the bot answers again.
    Return,
    /// `waiting` | `human` → `closed`.
    Close,
}

impl HandoffMove {
    fn allowed_from(self, status: HandoffStatus) -> bool {
        match self {
            HandoffMove::Claim => status == HandoffStatus::Waiting,
            HandoffMove::Return | HandoffMove::Close => {
                matches!(status, HandoffStatus::Waiting | HandoffStatus::Human)
            }
        }
    }

    fn to(self) -> (HandoffStatus, HandoffState, &'static str) {
        match self {
            HandoffMove::Claim => (HandoffStatus::Human, HandoffState::Human, "claimed"),
            HandoffMove::Return => (HandoffStatus::Returned, HandoffState::Bot, "returned"),
            HandoffMove::Close => (HandoffStatus::Closed, HandoffState::Closed, "closed"),
        }
    }
}

/// The conversation state a handoff status stands for.
fn state_of(status: HandoffStatus) -> HandoffState {
    match status {
        HandoffStatus::Waiting | HandoffStatus::Requested => HandoffState::Waiting,
        HandoffStatus::Human | HandoffStatus::Delivered => HandoffState::Human,
        HandoffStatus::Returned => HandoffState::Bot,
        HandoffStatus::Closed => HandoffState::Closed,
    }
}

impl Store {
    /// Records a request for a human, for one of the workspace's agents (`NotFound` otherwise).
    pub async fn create_handoff(
        &self,
        scope: &TenantScope,
        handoff: &NewHandoff,
        now: Millis,
    ) -> Result<Handoff> {
        on_db!(write self, pool => sqlx::query_as(concat!("INSERT INTO handoffs (id, workspace_id, agent_id, conversation_id, reason, status, created_at, updated_at)
             SELECT $1, $2, $3, $4, $5, 'requested', $6, $6 FROM agents WHERE id = $3 AND workspace_id = $2 RETURNING ", handoff_columns!()))
            .bind(new_text_id("hof")).bind(scope.workspace_id().to_string()).bind(handoff.agent_id.to_string())
            .bind(handoff.conversation_id.map(|c| c.to_string())).bind(&handoff.reason).bind(now)
            .fetch_optional(pool).await)?
        .ok_or(StoreError::NotFound)
    }

    pub async fn get_handoff(&self, scope: &TenantScope, id: &str) -> Result<Handoff> {
        on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", handoff_columns!(), " FROM handoffs WHERE id = $1 AND workspace_id = $2"))
            .bind(id).bind(scope.workspace_id().to_string())
            .fetch_optional(pool).await)?
        .ok_or(StoreError::NotFound)
    }

    /// The workspace's handoffs newest first, optionally in one status.
    pub async fn list_handoffs(
        &self,
        scope: &TenantScope,
        status: Option<HandoffStatus>,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<Handoff>> {
        let limit = clamp_limit(limit);
        let mut rows: Vec<Handoff> = on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", handoff_columns!(),
            " FROM handoffs WHERE workspace_id = $1 AND ($2 IS NULL OR status = $2) AND ($3 IS NULL OR id < $3) ORDER BY id DESC LIMIT $4"))
            .bind(scope.workspace_id().to_string()).bind(status.map(|s| s.as_str())).bind(cursor).bind(limit + 1)
            .fetch_all(pool).await)?;
        Ok(crate::page(&mut rows, limit, |r| r.id.clone()))
    }

    pub async fn set_handoff_status(
        &self,
        scope: &TenantScope,
        id: &str,
        status: HandoffStatus,
        now: Millis,
    ) -> Result<Handoff> {
        on_db!(write self, pool => sqlx::query_as(concat!("UPDATE handoffs SET status = $3, updated_at = $4 WHERE id = $1 AND workspace_id = $2 RETURNING ", handoff_columns!()))
            .bind(id).bind(scope.workspace_id().to_string()).bind(status.as_str()).bind(now)
            .fetch_optional(pool).await)?
        .ok_or(StoreError::NotFound)
    }
}

/// The `INSERT` of one handoff event (binds: id, ws, handoff, conversation, kind, from, to,
/// actor kind, actor id, actor name, body, message id, now).
const INSERT_EVENT: &str = concat!("INSERT INTO handoff_events (id, workspace_id, handoff_id, conversation_id, kind, from_state, to_state, actor_kind, actor_id, actor_name, body, message_id, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING ", event_columns!());

impl Store {
    /// Hands a conversation to the people of the workspace: its state moves to `waiting` and a
    /// handoff (status `waiting`) records who asked and why. A conversation already waiting or
    /// with a person keeps its open handoff, which is returned with `false`.
    pub async fn escalate_conversation(
        &self,
        scope: &TenantScope,
        handoff: &NewHandoff,
        actor: &HandoffActor,
        now: Millis,
    ) -> Result<(Handoff, bool)> {
        let ws = scope.workspace_id().to_string();
        let conversation = handoff.conversation_id.ok_or(StoreError::NotFound)?;
        let cid = conversation.to_string();
        on_db!(write self, pool => {
            let mut tx = pool.begin().await?;
            let state: Option<(String,)> = sqlx::query_as("SELECT handoff_state FROM conversations WHERE id = $1 AND workspace_id = $2 AND deleted_at IS NULL")
                .bind(&cid).bind(&ws).fetch_optional(&mut *tx).await?;
            let state = HandoffState::try_from(state.ok_or(StoreError::NotFound)?.0)?;
            let open = |tx| sqlx::query_as(concat!("SELECT ", handoff_columns!(), " FROM handoffs WHERE conversation_id = $1 AND workspace_id = $2 AND status IN ('waiting', 'human') ORDER BY id DESC LIMIT 1"))
                .bind(&cid).bind(&ws).fetch_optional(tx);
            if matches!(state, HandoffState::Waiting | HandoffState::Human)
                && let Some(h) = open(&mut *tx).await?
            {
                return Ok((h, false));
            }
            let moved = sqlx::query("UPDATE conversations SET handoff_state = 'waiting', updated_at = $3 WHERE id = $1 AND workspace_id = $2 AND handoff_state = $4")
                .bind(&cid).bind(&ws).bind(now).bind(state.as_str()).execute(&mut *tx).await?.rows_affected();
            if moved == 0 {
                // Escalated meanwhile by another request.
                drop(tx);
                let h = self.open_handoff(scope, conversation).await?;
                return h.map(|h| (h, false)).ok_or(StoreError::NotFound);
            }
            let h: Handoff = sqlx::query_as(concat!("INSERT INTO handoffs (id, workspace_id, agent_id, conversation_id, reason, status, created_at, updated_at)
                 SELECT $1, $2, $3, $4, $5, 'waiting', $6, $6 FROM agents WHERE id = $3 AND workspace_id = $2 RETURNING ", handoff_columns!()))
                .bind(new_text_id("hof")).bind(&ws).bind(handoff.agent_id.to_string())
                .bind(&cid).bind(&handoff.reason).bind(now)
                .fetch_optional(&mut *tx).await?.ok_or(StoreError::NotFound)?;
            let _: HandoffEvent = sqlx::query_as(INSERT_EVENT)
                .bind(new_text_id("hev")).bind(&ws).bind(&h.id).bind(&cid).bind("requested")
                .bind(state.as_str()).bind(HandoffState::Waiting.as_str())
                .bind(actor.kind.as_str()).bind(actor.id.as_deref()).bind(actor.name.as_deref())
                .bind(&handoff.reason).bind(None::<String>).bind(now)
                .fetch_one(&mut *tx).await?;
            tx.commit().await?;
            Ok((h, true))
        })
    }

    /// Moves a handoff (and its conversation) as an operator: claim, return to the bot, close.
    /// Conditional on the status it was read in, so of concurrent moves exactly one wins; the
    /// others get `Conflict("handoff_status")`, as does a move its status does not allow.
    pub async fn move_handoff(
        &self,
        scope: &TenantScope,
        id: &str,
        mv: HandoffMove,
        actor: &HandoffActor,
        now: Millis,
    ) -> Result<Handoff> {
        let ws = scope.workspace_id().to_string();
        let (to, conversation_state, kind) = mv.to();
        let assignee = (mv == HandoffMove::Claim).then_some(actor);
        on_db!(write self, pool => {
            let mut tx = pool.begin().await?;
            let current: Handoff = sqlx::query_as(concat!("SELECT ", handoff_columns!(), " FROM handoffs WHERE id = $1 AND workspace_id = $2"))
                .bind(id).bind(&ws).fetch_optional(&mut *tx).await?.ok_or(StoreError::NotFound)?;
            if !mv.allowed_from(current.status) || current.conversation_id.is_none() {
                return Err(StoreError::Conflict("handoff_status"));
            }
            let h: Handoff = sqlx::query_as(concat!("UPDATE handoffs SET status = $3, updated_at = $4, assignee_id = COALESCE($5, assignee_id), assignee_name = COALESCE($6, assignee_name)
                 WHERE id = $1 AND workspace_id = $2 AND status = $7 RETURNING ", handoff_columns!()))
                .bind(id).bind(&ws).bind(to.as_str()).bind(now)
                .bind(assignee.and_then(|a| a.id.as_deref())).bind(assignee.and_then(|a| a.name.as_deref()))
                .bind(current.status.as_str())
                .fetch_optional(&mut *tx).await?.ok_or(StoreError::Conflict("handoff_status"))?;
            sqlx::query("UPDATE conversations SET handoff_state = $3, updated_at = $4 WHERE id = $1 AND workspace_id = $2")
                .bind(&h.conversation_id).bind(&ws).bind(conversation_state.as_str()).bind(now)
                .execute(&mut *tx).await?;
            let _: HandoffEvent = sqlx::query_as(INSERT_EVENT)
                .bind(new_text_id("hev")).bind(&ws).bind(&h.id).bind(&h.conversation_id).bind(kind)
                .bind(state_of(current.status).as_str()).bind(conversation_state.as_str())
                .bind(actor.kind.as_str()).bind(actor.id.as_deref()).bind(actor.name.as_deref())
                .bind(None::<String>).bind(None::<String>).bind(now)
                .fetch_one(&mut *tx).await?;
            tx.commit().await?;
            Ok(h)
        })
    }

    /// Stores an operator's message on the handoff's conversation (role `human_agent`, with
    /// their name as `author`) and records it. Only while the handoff is with a person
    /// (`human`): `Conflict("handoff_status")` otherwise.
    pub async fn add_operator_message(
        &self,
        scope: &TenantScope,
        id: &str,
        actor: &HandoffActor,
        content: &str,
        now: Millis,
    ) -> Result<(Handoff, Message)> {
        let ws = scope.workspace_id().to_string();
        on_db!(write self, pool => {
            let mut tx = pool.begin().await?;
            let current: Handoff = sqlx::query_as(concat!("SELECT ", handoff_columns!(), " FROM handoffs WHERE id = $1 AND workspace_id = $2"))
                .bind(id).bind(&ws).fetch_optional(&mut *tx).await?.ok_or(StoreError::NotFound)?;
            // Touching the row takes its lock: a concurrent return or close is decided first.
            let h: Handoff = sqlx::query_as(concat!("UPDATE handoffs SET updated_at = $3 WHERE id = $1 AND workspace_id = $2 AND status = 'human' RETURNING ", handoff_columns!()))
                .bind(id).bind(&ws).bind(now)
                .fetch_optional(&mut *tx).await?.ok_or(StoreError::Conflict("handoff_status"))?;
            let cid = current.conversation_id.ok_or(StoreError::Conflict("handoff_status"))?;
            let n = sqlx::query("UPDATE conversations SET last_message_at = $3, updated_at = $3 WHERE id = $1 AND workspace_id = $2 AND deleted_at IS NULL")
                .bind(&cid).bind(&ws).bind(now).execute(&mut *tx).await?.rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            let m: Message = sqlx::query_as("INSERT INTO messages (id, conversation_id, workspace_id, role, content, attachments, citations, tool_calls, run_id, tokens, created_at, author)
                 VALUES ($1, $2, $3, 'human_agent', $4, '[]', '[]', '[]', NULL, NULL, $5, $6)
                 RETURNING id, conversation_id, workspace_id, role, content, attachments, citations, tool_calls, run_id, tokens, created_at, author")
                .bind(MessageId::new().to_string()).bind(&cid).bind(&ws).bind(content).bind(now).bind(actor.name.as_deref())
                .fetch_one(&mut *tx).await?;
            let _: HandoffEvent = sqlx::query_as(INSERT_EVENT)
                .bind(new_text_id("hev")).bind(&ws).bind(&h.id).bind(&cid).bind("message")
                .bind(None::<String>).bind(None::<String>)
                .bind(actor.kind.as_str()).bind(actor.id.as_deref()).bind(actor.name.as_deref())
                .bind(None::<String>).bind(m.id.to_string()).bind(now)
                .fetch_one(&mut *tx).await?;
            tx.commit().await?;
            Ok((h, m))
        })
    }

    /// Records an internal note on a handoff (for the workspace's people only).
    pub async fn add_handoff_note(
        &self,
        scope: &TenantScope,
        id: &str,
        actor: &HandoffActor,
        body: &str,
        now: Millis,
    ) -> Result<HandoffEvent> {
        on_db!(write self, pool => sqlx::query_as(concat!("INSERT INTO handoff_events (id, workspace_id, handoff_id, conversation_id, kind, from_state, to_state, actor_kind, actor_id, actor_name, body, message_id, created_at)
             SELECT $1, workspace_id, id, conversation_id, 'note', NULL, NULL, $3, $4, $5, $6, NULL, $7 FROM handoffs WHERE id = $2 AND workspace_id = $8 RETURNING ", event_columns!()))
            .bind(new_text_id("hev")).bind(id).bind(actor.kind.as_str()).bind(actor.id.as_deref()).bind(actor.name.as_deref())
            .bind(body).bind(now).bind(scope.workspace_id().to_string())
            .fetch_optional(pool).await)?
        .ok_or(StoreError::NotFound)
    }

    /// A handoff's events, oldest first (at most 1,000).
    pub async fn list_handoff_events(
        &self,
        scope: &TenantScope,
        id: &str,
    ) -> Result<Vec<HandoffEvent>> {
        Ok(
            on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", event_columns!(), " FROM handoff_events WHERE handoff_id = $1 AND workspace_id = $2 ORDER BY id LIMIT 1000"))
            .bind(id).bind(scope.workspace_id().to_string())
            .fetch_all(pool).await)?,
        )
    }

    /// The conversation's open handoff (`waiting` or `human`), if any.
    pub async fn open_handoff(
        &self,
        scope: &TenantScope,
        conversation: ConversationId,
    ) -> Result<Option<Handoff>> {
        Ok(
            on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", handoff_columns!(), " FROM handoffs WHERE conversation_id = $1 AND workspace_id = $2 AND status IN ('waiting', 'human') ORDER BY id DESC LIMIT 1"))
            .bind(conversation.to_string()).bind(scope.workspace_id().to_string())
            .fetch_optional(pool).await)?,
        )
    }

    /// The workspace's handoffs in any of `statuses` (at most four), oldest first (the queue's
    /// order).
    pub async fn list_handoffs_in(
        &self,
        scope: &TenantScope,
        statuses: &[HandoffStatus],
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<Handoff>> {
        let limit = clamp_limit(limit);
        // Up to four statuses, padded with the first (none matches nothing).
        let mut slots = [""; 4];
        for (i, slot) in slots.iter_mut().enumerate() {
            *slot = statuses.get(i).or(statuses.first()).map_or("", |s| s.as_str());
        }
        let mut rows: Vec<Handoff> = on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", handoff_columns!(),
            " FROM handoffs WHERE workspace_id = $1 AND status IN ($4, $5, $6, $7) AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"))
            .bind(scope.workspace_id().to_string()).bind(cursor).bind(limit + 1)
            .bind(slots[0]).bind(slots[1]).bind(slots[2]).bind(slots[3])
            .fetch_all(pool).await)?;
        Ok(crate::page(&mut rows, limit, |r| r.id.clone()))
    }

    /// A waiting handoff's place in its workspace's queue (1: next), 0 when it is not waiting.
    pub async fn queue_position(&self, scope: &TenantScope, handoff: &Handoff) -> Result<i64> {
        if handoff.status != HandoffStatus::Waiting {
            return Ok(0);
        }
        let (n,): (i64,) = on_db!(read self, pool => sqlx::query_as("SELECT COUNT(*) FROM handoffs WHERE workspace_id = $1 AND status = 'waiting' AND id <= $2")
            .bind(scope.workspace_id().to_string()).bind(&handoff.id)
            .fetch_one(pool).await)?;
        Ok(n)
    }
}
