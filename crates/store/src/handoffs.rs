//! Handoffs: an agent's requests that a human take over a conversation.

use domain::time::Millis;
use domain::{AgentId, ConversationId, WorkspaceId};
use serde::Serialize;

use crate::db::on_db;
use crate::kinds::HandoffStatus;
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
        "id, workspace_id, agent_id, conversation_id, reason, status, created_at, updated_at"
    };
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
