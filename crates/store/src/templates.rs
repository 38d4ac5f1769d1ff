//! Stored templates: workspace-made ones and operator-managed system ones. The catalog's seeded
//! templates are not stored; a system row with the same slug overrides one, and a workspace's
//! own template shadows a system template of the same slug for that workspace.

use domain::time::Millis;
use domain::{TemplateId, UserId};
use serde::Serialize;

use crate::db::on_db;
use crate::kinds::json;
use crate::{JsonText, Result, Store, StoreError, TenantScope};

/// A template row. `document` is the catalog's template as JSON.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct StoredTemplate {
    #[sqlx(try_from = "String")]
    pub id: TemplateId,
    /// `None` for a system template.
    pub workspace_id: Option<String>,
    pub slug: String,
    #[sqlx(try_from = "String")]
    pub document: JsonText,
    pub is_active: bool,
    pub usage_count: i64,
    pub created_by: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

impl StoredTemplate {
    pub fn is_system(&self) -> bool {
        self.workspace_id.is_none()
    }
}

/// A template to store.
#[derive(Debug, Clone)]
pub struct NewTemplate {
    pub id: TemplateId,
    pub slug: String,
    pub document: serde_json::Value,
    pub created_by: Option<UserId>,
}

macro_rules! template_columns {
    () => {
        "id, workspace_id, slug, document, is_active, usage_count, created_by, created_at, updated_at"
    };
}

// Throughout: `owner` is the workspace for its own templates, `None` for system templates
// (operators only: the app decides who may pass `None`).
fn owner_id(owner: Option<&TenantScope>) -> Option<String> {
    owner.map(|s| s.workspace_id().to_string())
}

impl Store {
    /// Stores a template for a workspace, or a system template when `owner` is `None`.
    /// A slug already used by the same owner is `Conflict("slug")`.
    pub async fn create_template(
        &self,
        owner: Option<&TenantScope>,
        template: &NewTemplate,
        now: Millis,
    ) -> Result<StoredTemplate> {
        on_db!(write self, pool => sqlx::query_as(concat!("INSERT INTO templates (id, workspace_id, slug, document, is_active, usage_count, created_by, created_at, updated_at)
             VALUES ($1, $2, $3, $4, TRUE, 0, $5, $6, $6) RETURNING ", template_columns!()))
            .bind(template.id.to_string()).bind(owner_id(owner)).bind(&template.slug).bind(json(&template.document))
            .bind(template.created_by.map(|u| u.to_string())).bind(now)
            .fetch_one(pool).await)
        .map_err(Into::into)
    }

    /// The template a workspace sees under `slug`: its own first, else the system one (retired
    /// ones included; check `is_active`). `None` when neither is stored.
    pub async fn get_template(
        &self,
        scope: &TenantScope,
        slug: &str,
    ) -> Result<Option<StoredTemplate>> {
        on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", template_columns!(),
            " FROM templates WHERE slug = $1 AND (workspace_id = $2 OR workspace_id IS NULL)
              ORDER BY CASE WHEN workspace_id IS NULL THEN 1 ELSE 0 END LIMIT 1"))
            .bind(slug).bind(scope.workspace_id().to_string())
            .fetch_optional(pool).await)
        .map_err(Into::into)
    }

    /// The system template stored under `slug`, if any.
    pub async fn get_system_template(&self, slug: &str) -> Result<Option<StoredTemplate>> {
        on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", template_columns!(), " FROM templates WHERE slug = $1 AND workspace_id IS NULL"))
            .bind(slug).fetch_optional(pool).await)
        .map_err(Into::into)
    }

    /// System templates plus, given a scope, the workspace's own, ordered by slug (system
    /// first for equal slugs). Retired ones only when `include_retired`.
    pub async fn list_templates(
        &self,
        scope: Option<&TenantScope>,
        include_retired: bool,
    ) -> Result<Vec<StoredTemplate>> {
        on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", template_columns!(),
            " FROM templates WHERE (workspace_id IS NULL OR workspace_id = $1) AND ($2 OR is_active)
              ORDER BY slug, CASE WHEN workspace_id IS NULL THEN 0 ELSE 1 END"))
            .bind(owner_id(scope)).bind(include_retired)
            .fetch_all(pool).await)
        .map_err(Into::into)
    }

    /// Replaces the document of the owner's template `slug`.
    pub async fn update_template(
        &self,
        owner: Option<&TenantScope>,
        slug: &str,
        document: &serde_json::Value,
        now: Millis,
    ) -> Result<StoredTemplate> {
        on_db!(write self, pool => sqlx::query_as(concat!("UPDATE templates SET document = $3, updated_at = $4
             WHERE slug = $1 AND (($2 IS NULL AND workspace_id IS NULL) OR workspace_id = $2) RETURNING ", template_columns!()))
            .bind(slug).bind(owner_id(owner)).bind(json(document)).bind(now)
            .fetch_optional(pool).await)?
        .ok_or(StoreError::NotFound)
    }

    /// Sets whether the owner's template `slug` is offered for new agents (`false` retires it;
    /// agents made from it keep working).
    pub async fn set_template_active(
        &self,
        owner: Option<&TenantScope>,
        slug: &str,
        active: bool,
        now: Millis,
    ) -> Result<StoredTemplate> {
        on_db!(write self, pool => sqlx::query_as(concat!("UPDATE templates SET is_active = $3, updated_at = $4
             WHERE slug = $1 AND (($2 IS NULL AND workspace_id IS NULL) OR workspace_id = $2) RETURNING ", template_columns!()))
            .bind(slug).bind(owner_id(owner)).bind(active).bind(now)
            .fetch_optional(pool).await)?
        .ok_or(StoreError::NotFound)
    }

    /// Deletes the owner's template `slug`.
    pub async fn delete_template(&self, owner: Option<&TenantScope>, slug: &str) -> Result<()> {
        let n = on_db!(write self, pool => sqlx::query("DELETE FROM templates WHERE slug = $1 AND (($2 IS NULL AND workspace_id IS NULL) OR workspace_id = $2)")
            .bind(slug).bind(owner_id(owner))
            .execute(pool).await.map(|r| r.rows_affected()))?;
        if n == 0 { Err(StoreError::NotFound) } else { Ok(()) }
    }

    /// Counts one more agent made from `slug` on the template the workspace sees under it
    /// (its own, else the system one). `false` when no such template is stored (a seeded one).
    pub async fn increment_template_usage(&self, scope: &TenantScope, slug: &str) -> Result<bool> {
        let n = on_db!(write self, pool => sqlx::query(
            "UPDATE templates SET usage_count = usage_count + 1 WHERE id = (
                SELECT id FROM templates WHERE slug = $1 AND (workspace_id = $2 OR workspace_id IS NULL)
                ORDER BY CASE WHEN workspace_id IS NULL THEN 1 ELSE 0 END LIMIT 1)")
            .bind(slug).bind(scope.workspace_id().to_string())
            .execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(n > 0)
    }
}
