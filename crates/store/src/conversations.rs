//! Conversations with agents and their messages. Deleting a conversation is soft: it and its
//! messages disappear from every read, while runs and usage that refer to it stay intact.

use domain::time::Millis;
use domain::{AgentId, ConversationId, MessageId, RunId, WorkspaceId};
use serde::Serialize;

use crate::db::on_db;
use crate::kinds::{Channel, HandoffState, MessageRole, json};
use crate::{JsonText, Page, Result, Store, StoreError, TenantScope, clamp_limit};

/// A conversation as stored.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Conversation {
    #[sqlx(try_from = "String")]
    pub id: ConversationId,
    #[sqlx(try_from = "String")]
    pub workspace_id: WorkspaceId,
    #[sqlx(try_from = "String")]
    pub agent_id: AgentId,
    /// The caller's own id for the person talking (widget and API callers).
    pub end_user_id: Option<String>,
    #[sqlx(try_from = "String")]
    pub channel: Channel,
    pub title: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub last_message_at: Option<Millis>,
    /// Who answers it: the bot, or a person (live handoff).
    #[sqlx(try_from = "String")]
    pub handoff_state: HandoffState,
}

/// A conversation to start.
#[derive(Debug, Clone)]
pub struct NewConversation {
    pub id: ConversationId,
    pub agent_id: AgentId,
    pub end_user_id: Option<String>,
    pub channel: Channel,
    pub title: Option<String>,
}

/// Which conversations to list.
#[derive(Debug, Clone, Default)]
pub struct ConversationFilter {
    pub agent_id: Option<AgentId>,
    pub end_user_id: Option<String>,
}

/// A message as stored.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Message {
    #[sqlx(try_from = "String")]
    pub id: MessageId,
    #[sqlx(try_from = "String")]
    pub conversation_id: ConversationId,
    #[sqlx(try_from = "String")]
    pub workspace_id: WorkspaceId,
    #[sqlx(try_from = "String")]
    pub role: MessageRole,
    pub content: String,
    #[sqlx(try_from = "String")]
    pub attachments: JsonText,
    #[sqlx(try_from = "String")]
    pub citations: JsonText,
    #[sqlx(try_from = "String")]
    pub tool_calls: JsonText,
    pub run_id: Option<String>,
    pub tokens: Option<i64>,
    pub created_at: Millis,
    /// The person who wrote a `human_agent` message (the operator's name).
    #[sqlx(default)]
    pub author: Option<String>,
}

/// A message to append. Messages are ordered by id, so give a batch ids in order.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub id: MessageId,
    pub role: MessageRole,
    pub content: String,
    /// JSON arrays; `Value::Null` is stored as `[]`.
    pub attachments: serde_json::Value,
    pub citations: serde_json::Value,
    pub tool_calls: serde_json::Value,
    pub run_id: Option<RunId>,
    pub tokens: Option<i64>,
}

impl NewMessage {
    /// A plain text message without attachments, citations or tool calls.
    pub fn text(role: MessageRole, content: impl Into<String>) -> Self {
        Self {
            id: MessageId::new(),
            role,
            content: content.into(),
            attachments: serde_json::Value::Null,
            citations: serde_json::Value::Null,
            tool_calls: serde_json::Value::Null,
            run_id: None,
            tokens: None,
        }
    }
}

fn json_array(v: &serde_json::Value) -> String {
    if v.is_null() { "[]".to_owned() } else { json(v) }
}

macro_rules! conversation_columns {
    () => {
        "id, workspace_id, agent_id, end_user_id, channel, title, created_at, updated_at, last_message_at, handoff_state"
    };
}
macro_rules! message_columns {
    () => {
        "m.id, m.conversation_id, m.workspace_id, m.role, m.content, m.attachments, m.citations, m.tool_calls, m.run_id, m.tokens, m.created_at, m.author"
    };
}

impl Store {
    /// Starts a conversation with one of the workspace's agents (`NotFound` otherwise).
    pub async fn create_conversation(
        &self,
        scope: &TenantScope,
        conv: &NewConversation,
        now: Millis,
    ) -> Result<Conversation> {
        on_db!(write self, pool => sqlx::query_as(concat!("INSERT INTO conversations (id, workspace_id, agent_id, end_user_id, channel, title, created_at, updated_at)
             SELECT $1, $2, $3, $4, $5, $6, $7, $7 FROM agents WHERE id = $3 AND workspace_id = $2 RETURNING ", conversation_columns!()))
            .bind(conv.id.to_string()).bind(scope.workspace_id().to_string()).bind(conv.agent_id.to_string())
            .bind(conv.end_user_id.as_deref()).bind(conv.channel.as_str()).bind(conv.title.as_deref()).bind(now)
            .fetch_optional(pool).await)?
        .ok_or(StoreError::NotFound)
    }

    pub async fn get_conversation(
        &self,
        scope: &TenantScope,
        id: ConversationId,
    ) -> Result<Conversation> {
        on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", conversation_columns!(), " FROM conversations WHERE id = $1 AND workspace_id = $2 AND deleted_at IS NULL"))
            .bind(id.to_string()).bind(scope.workspace_id().to_string())
            .fetch_optional(pool).await)?
        .ok_or(StoreError::NotFound)
    }

    /// Conversations most recently active first (last message, else creation), filtered by
    /// agent and end user. The cursor is the last conversation of the previous page.
    pub async fn list_conversations(
        &self,
        scope: &TenantScope,
        filter: &ConversationFilter,
        cursor: Option<ConversationId>,
        limit: Option<u32>,
    ) -> Result<Page<Conversation>> {
        let limit = clamp_limit(limit);
        let mut rows: Vec<Conversation> = on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", conversation_columns!(),
            " FROM conversations c WHERE workspace_id = $1 AND deleted_at IS NULL
                AND ($2 IS NULL OR agent_id = $2) AND ($3 IS NULL OR end_user_id = $3)
                AND ($4 IS NULL OR (COALESCE(c.last_message_at, c.created_at), c.id) <
                    (SELECT COALESCE(p.last_message_at, p.created_at), p.id FROM conversations p WHERE p.id = $4))
              ORDER BY COALESCE(last_message_at, created_at) DESC, id DESC LIMIT $5"))
            .bind(scope.workspace_id().to_string()).bind(filter.agent_id.map(|a| a.to_string())).bind(filter.end_user_id.as_deref())
            .bind(cursor.map(|c| c.to_string())).bind(limit + 1)
            .fetch_all(pool).await)?;
        Ok(crate::page(&mut rows, limit, |r| r.id.to_string()))
    }

    /// Soft-deletes a conversation: it and its messages are hidden from then on.
    pub async fn delete_conversation(
        &self,
        scope: &TenantScope,
        id: ConversationId,
        now: Millis,
    ) -> Result<()> {
        let n = on_db!(write self, pool => sqlx::query("UPDATE conversations SET deleted_at = $3, updated_at = $3 WHERE id = $1 AND workspace_id = $2 AND deleted_at IS NULL")
            .bind(id.to_string()).bind(scope.workspace_id().to_string()).bind(now)
            .execute(pool).await.map(|r| r.rows_affected()))?;
        if n == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    pub async fn set_conversation_title(
        &self,
        scope: &TenantScope,
        id: ConversationId,
        title: &str,
        now: Millis,
    ) -> Result<Conversation> {
        on_db!(write self, pool => sqlx::query_as(concat!("UPDATE conversations SET title = $3, updated_at = $4 WHERE id = $1 AND workspace_id = $2 AND deleted_at IS NULL RETURNING ", conversation_columns!()))
            .bind(id.to_string()).bind(scope.workspace_id().to_string()).bind(title).bind(now)
            .fetch_optional(pool).await)?
        .ok_or(StoreError::NotFound)
    }

    /// Appends messages in one transaction and moves the conversation's last activity to `now`.
    /// `NotFound` if the conversation is not the workspace's or was deleted.
    pub async fn append_messages(
        &self,
        scope: &TenantScope,
        conversation: ConversationId,
        messages: &[NewMessage],
        now: Millis,
    ) -> Result<Vec<Message>> {
        let (cid, ws) = (conversation.to_string(), scope.workspace_id().to_string());
        on_db!(write self, pool => {
            let mut tx = pool.begin().await?;
            let n = sqlx::query("UPDATE conversations SET last_message_at = $3, updated_at = $3 WHERE id = $1 AND workspace_id = $2 AND deleted_at IS NULL")
                .bind(&cid).bind(&ws).bind(now).execute(&mut *tx).await?.rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            let mut out = Vec::with_capacity(messages.len());
            for m in messages {
                let row: Message = sqlx::query_as(
                    "INSERT INTO messages (id, conversation_id, workspace_id, role, content, attachments, citations, tool_calls, run_id, tokens, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                     RETURNING id, conversation_id, workspace_id, role, content, attachments, citations, tool_calls, run_id, tokens, created_at")
                    .bind(m.id.to_string()).bind(&cid).bind(&ws).bind(m.role.as_str()).bind(&m.content)
                    .bind(json_array(&m.attachments)).bind(json_array(&m.citations)).bind(json_array(&m.tool_calls))
                    .bind(m.run_id.map(|r| r.to_string())).bind(m.tokens).bind(now)
                    .fetch_one(&mut *tx).await?;
                out.push(row);
            }
            tx.commit().await?;
            Ok(out)
        })
    }

    /// A conversation's messages oldest first, after the cursor (the last message seen).
    /// Empty for a conversation that is not the workspace's or was deleted.
    pub async fn list_messages(
        &self,
        scope: &TenantScope,
        conversation: ConversationId,
        after: Option<MessageId>,
        limit: Option<u32>,
    ) -> Result<Page<Message>> {
        let limit = clamp_limit(limit);
        let mut rows: Vec<Message> = on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", message_columns!(),
            " FROM messages m JOIN conversations c ON c.id = m.conversation_id AND c.deleted_at IS NULL
              WHERE m.conversation_id = $1 AND m.workspace_id = $2 AND ($3 IS NULL OR m.id > $3) ORDER BY m.id LIMIT $4"))
            .bind(conversation.to_string()).bind(scope.workspace_id().to_string()).bind(after.map(|c| c.to_string())).bind(limit + 1)
            .fetch_all(pool).await)?;
        Ok(crate::page(&mut rows, limit, |r| r.id.to_string()))
    }

    /// The last `n` messages of a conversation in chronological order (the prompt history).
    pub async fn recent_messages(
        &self,
        scope: &TenantScope,
        conversation: ConversationId,
        n: u32,
    ) -> Result<Vec<Message>> {
        let mut rows: Vec<Message> = on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", message_columns!(),
            " FROM messages m JOIN conversations c ON c.id = m.conversation_id AND c.deleted_at IS NULL
              WHERE m.conversation_id = $1 AND m.workspace_id = $2 ORDER BY m.id DESC LIMIT $3"))
            .bind(conversation.to_string()).bind(scope.workspace_id().to_string()).bind(i64::from(n))
            .fetch_all(pool).await)?;
        rows.reverse();
        Ok(rows)
    }
}
