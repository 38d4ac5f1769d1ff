//! API keys: workspace keys and agent-scoped keys, stored as SHA-256 digests.

use domain::time::Millis;
use domain::{AgentId, ApiKeyId, Permissions, UserId, WorkspaceId};
use serde::Serialize;

use crate::db::on_db;
use crate::{Result, Store, StoreError, TenantScope};

/// A key as listed (never with its secret).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct ApiKey {
    #[sqlx(try_from = "String")]
    pub id: ApiKeyId,
    #[sqlx(try_from = "String")]
    pub workspace_id: WorkspaceId,
    pub agent_id: Option<String>,
    pub name: String,
    pub prefix: String,
    #[sqlx(try_from = "String")]
    pub permissions: Permissions,
    pub rate_per_minute: Option<i64>,
    pub rate_per_day: Option<i64>,
    /// JSON array of CIDR strings; empty means any address.
    pub ip_allowlist: String,
    pub created_by: Option<String>,
    pub created_at: Millis,
    pub last_used_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
}

impl ApiKey {
    pub fn agent(&self) -> Option<AgentId> {
        self.agent_id.as_deref().and_then(|a| AgentId::parse(a).ok())
    }
}

/// A key to create. `digest` is the SHA-256 of the secret, which is never stored.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    pub id: ApiKeyId,
    pub agent_id: Option<AgentId>,
    pub name: String,
    pub prefix: String,
    pub digest: String,
    pub permissions: Permissions,
    pub rate_per_minute: Option<i64>,
    pub rate_per_day: Option<i64>,
    pub ip_allowlist: Vec<String>,
    pub created_by: Option<UserId>,
}

macro_rules! key_columns {
    () => {
        "id, workspace_id, agent_id, name, prefix, permissions, rate_per_minute, rate_per_day, ip_allowlist, created_by, created_at, last_used_at, revoked_at"
    };
}

impl Store {
    pub async fn create_api_key(
        &self,
        scope: &TenantScope,
        key: &NewApiKey,
        now: Millis,
    ) -> Result<ApiKey> {
        let allow = serde_json::to_string(&key.ip_allowlist)
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        on_db!(write self, pool => sqlx::query_as(concat!("INSERT INTO api_keys (id, workspace_id, agent_id, name, prefix, key_hash, permissions, rate_per_minute, rate_per_day, ip_allowlist, created_by, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING ", key_columns!()))
            .bind(key.id.to_string())
            .bind(scope.workspace_id().to_string())
            .bind(key.agent_id.map(|a| a.to_string()))
            .bind(&key.name)
            .bind(&key.prefix)
            .bind(&key.digest)
            .bind(key.permissions.to_csv())
            .bind(key.rate_per_minute)
            .bind(key.rate_per_day)
            .bind(allow)
            .bind(key.created_by.map(|u| u.to_string()))
            .bind(now)
            .fetch_one(pool)
            .await)
        .map_err(Into::into)
    }

    /// Keys of the workspace (or of one agent), newest first, revoked ones included.
    pub async fn list_api_keys(
        &self,
        scope: &TenantScope,
        agent: Option<AgentId>,
    ) -> Result<Vec<ApiKey>> {
        on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", key_columns!(), " FROM api_keys WHERE workspace_id = $1 AND (($2 IS NULL AND agent_id IS NULL) OR agent_id = $2) ORDER BY id DESC"))
            .bind(scope.workspace_id().to_string())
            .bind(agent.map(|a| a.to_string()))
            .fetch_all(pool)
            .await)
        .map_err(Into::into)
    }

    pub async fn get_api_key(&self, scope: &TenantScope, id: ApiKeyId) -> Result<ApiKey> {
        on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", key_columns!(), " FROM api_keys WHERE id = $1 AND workspace_id = $2"))
            .bind(id.to_string())
            .bind(scope.workspace_id().to_string())
            .fetch_optional(pool)
            .await)?
        .ok_or(StoreError::NotFound)
    }

    /// Revokes a key. Revoking a revoked key is `NotFound` (nothing changed).
    pub async fn revoke_api_key(
        &self,
        scope: &TenantScope,
        id: ApiKeyId,
        now: Millis,
    ) -> Result<ApiKey> {
        on_db!(write self, pool => sqlx::query_as(concat!("UPDATE api_keys SET revoked_at = $3 WHERE id = $1 AND workspace_id = $2 AND revoked_at IS NULL RETURNING ", key_columns!()))
            .bind(id.to_string())
            .bind(scope.workspace_id().to_string())
            .bind(now)
            .fetch_optional(pool)
            .await)?
        .ok_or(StoreError::NotFound)
    }

    /// Finds an active key by the digest of its secret (authentication; not tenant-scoped).
    pub async fn find_api_key_by_digest(&self, digest: &str) -> Result<Option<ApiKey>> {
        on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", key_columns!(), " FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL"))
            .bind(digest)
            .fetch_optional(pool)
            .await)
        .map_err(Into::into)
    }

    /// Records when keys were last used, in one transaction for a batch.
    pub async fn touch_api_keys(&self, used: &[(ApiKeyId, Millis)]) -> Result<()> {
        if used.is_empty() {
            return Ok(());
        }
        on_db!(write self, pool => {
            let mut tx = pool.begin().await?;
            for (id, at) in used {
                sqlx::query("UPDATE api_keys SET last_used_at = $2 WHERE id = $1 AND (last_used_at IS NULL OR last_used_at < $2)")
                    .bind(id.to_string())
                    .bind(at)
                    .execute(&mut *tx)
                    .await?;
            }
            tx.commit().await?;
            Ok(())
        })
    }
}
