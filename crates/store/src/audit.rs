//! The audit log of security events.

use domain::time::Millis;
use domain::{ApiKeyId, AuditEventId, UserId, WorkspaceId};
use serde::Serialize;

use crate::db::on_db;
use crate::{Page, Result, Store, StoreError, TenantScope, clamp_limit};

/// One recorded security event.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AuditEvent {
    #[sqlx(try_from = "String")]
    pub id: AuditEventId,
    pub workspace_id: Option<String>,
    pub actor_user_id: Option<String>,
    pub actor_key_id: Option<String>,
    pub action: String,
    pub target: Option<String>,
    pub ip: Option<String>,
    #[sqlx(try_from = "String")]
    pub detail: crate::JsonText,
    pub created_at: Millis,
}

/// An event to record.
#[derive(Debug, Clone)]
pub struct NewAuditEvent {
    pub workspace_id: Option<WorkspaceId>,
    pub actor_user_id: Option<UserId>,
    pub actor_key_id: Option<ApiKeyId>,
    pub action: &'static str,
    pub target: Option<String>,
    pub ip: Option<String>,
    pub detail: serde_json::Value,
}

impl Store {
    pub async fn record_audit(&self, event: &NewAuditEvent, now: Millis) -> Result<()> {
        let detail =
            serde_json::to_string(&event.detail).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        on_db!(write self, pool => sqlx::query(
            "INSERT INTO audit_events (id, workspace_id, actor_user_id, actor_key_id, action, target, ip, detail, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
            .bind(AuditEventId::new().to_string())
            .bind(event.workspace_id.map(|w| w.to_string()))
            .bind(event.actor_user_id.map(|u| u.to_string()))
            .bind(event.actor_key_id.map(|k| k.to_string()))
            .bind(event.action)
            .bind(event.target.as_deref())
            .bind(event.ip.as_deref())
            .bind(detail)
            .bind(now)
            .execute(pool)
            .await.map(|r| r.rows_affected()))?;
        Ok(())
    }

    /// The workspace's audit events, newest first, optionally filtered by action.
    pub async fn list_audit(
        &self,
        scope: &TenantScope,
        action: Option<&str>,
        cursor: Option<AuditEventId>,
        limit: Option<u32>,
    ) -> Result<Page<AuditEvent>> {
        let limit = clamp_limit(limit);
        let mut rows: Vec<AuditEvent> = on_db!(read self, pool => sqlx::query_as(
            "SELECT id, workspace_id, actor_user_id, actor_key_id, action, target, ip, detail, created_at FROM audit_events
             WHERE workspace_id = $1 AND ($2 IS NULL OR action = $2) AND ($3 IS NULL OR id < $3) ORDER BY id DESC LIMIT $4")
            .bind(scope.workspace_id().to_string())
            .bind(action)
            .bind(cursor.map(|c| c.to_string()))
            .bind(limit + 1)
            .fetch_all(pool)
            .await)?;
        Ok(crate::page(&mut rows, limit, |r| r.id.to_string()))
    }
}
