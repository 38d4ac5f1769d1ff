//! A workspace's own model provider (bring-your-own key). The API key arrives sealed by the
//! vault; the store never sees it in the clear.

use domain::WorkspaceId;
use domain::time::Millis;

use crate::db::on_db;
use crate::{Result, Store, StoreError, TenantScope};

/// A workspace's model provider as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct WorkspaceModelProvider {
    #[sqlx(try_from = "String")]
    pub workspace_id: WorkspaceId,
    /// `openai` (any OpenAI-compatible endpoint) or `anthropic`.
    pub provider: String,
    pub base_url: Option<String>,
    pub model: String,
    /// The API key sealed by the vault (context `workspace-model-provider:<workspace id>`).
    pub api_key_sealed: String,
    pub key_last4: String,
    pub updated_by: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// A provider to set.
#[derive(Debug, Clone)]
pub struct SetModelProvider {
    pub provider: String,
    pub base_url: Option<String>,
    pub model: String,
    pub api_key_sealed: String,
    pub key_last4: String,
    pub updated_by: Option<String>,
}

impl Store {
    /// Sets (or replaces) the workspace's model provider.
    pub async fn set_model_provider(
        &self,
        scope: &TenantScope,
        p: &SetModelProvider,
        now: Millis,
    ) -> Result<WorkspaceModelProvider> {
        on_db!(write self, pool => sqlx::query_as(
            "INSERT INTO workspace_model_providers (workspace_id, provider, base_url, model, api_key_sealed, key_last4, updated_by, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
             ON CONFLICT (workspace_id) DO UPDATE SET provider = excluded.provider, base_url = excluded.base_url,
               model = excluded.model, api_key_sealed = excluded.api_key_sealed, key_last4 = excluded.key_last4,
               updated_by = excluded.updated_by, updated_at = excluded.updated_at
             RETURNING workspace_id, provider, base_url, model, api_key_sealed, key_last4, updated_by, created_at, updated_at")
            .bind(scope.workspace_id().to_string()).bind(&p.provider).bind(p.base_url.as_deref()).bind(&p.model)
            .bind(&p.api_key_sealed).bind(&p.key_last4).bind(p.updated_by.as_deref()).bind(now)
            .fetch_one(pool).await).map_err(Into::into)
    }

    /// The workspace's model provider, if it set one.
    pub async fn get_model_provider(
        &self,
        scope: &TenantScope,
    ) -> Result<Option<WorkspaceModelProvider>> {
        on_db!(read self, pool => sqlx::query_as(
            "SELECT workspace_id, provider, base_url, model, api_key_sealed, key_last4, updated_by, created_at, updated_at
             FROM workspace_model_providers WHERE workspace_id = $1")
            .bind(scope.workspace_id().to_string())
            .fetch_optional(pool).await).map_err(Into::into)
    }

    /// Removes the workspace's model provider (`NotFound` if it had none).
    pub async fn delete_model_provider(&self, scope: &TenantScope) -> Result<()> {
        let n = on_db!(write self, pool => sqlx::query("DELETE FROM workspace_model_providers WHERE workspace_id = $1")
            .bind(scope.workspace_id().to_string())
            .execute(pool).await.map(|r| r.rows_affected()))?;
        if n == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }
}
