//! Agents (team members) and their revisions. Every change bumps the agent's `version` and
//! writes a revision (the whole agent after the change) in the same transaction; updates name
//! the version they were made against, so two editors cannot silently overwrite each other.

use domain::time::Millis;
use domain::{AgentId, KnowledgeBaseId, RevisionId, UserId, WorkspaceId};
use serde::{Deserialize, Serialize};

use crate::db::on_db;
use crate::kinds::json;
use crate::{JsonText, Page, Result, Store, StoreError, TenantScope, clamp_limit};

/// An agent as stored. JSON settings (capabilities, personality, …) are kept as the catalog
/// and the app shape them; the store does not interpret them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Agent {
    #[sqlx(try_from = "String")]
    pub id: AgentId,
    #[sqlx(try_from = "String")]
    pub workspace_id: WorkspaceId,
    pub slug: String,
    pub display_name: String,
    pub avatar: Option<String>,
    pub role: Option<String>,
    pub tagline: Option<String>,
    pub description: Option<String>,
    pub template_slug: Option<String>,
    #[sqlx(try_from = "String")]
    pub enabled_capabilities: JsonText,
    /// A JSON array of knowledge base ids; see [`Agent::knowledge_bases`].
    #[sqlx(try_from = "String")]
    pub knowledge_base_ids: JsonText,
    #[sqlx(try_from = "String")]
    pub integrations: JsonText,
    #[sqlx(try_from = "String")]
    pub personality: JsonText,
    #[sqlx(try_from = "String")]
    pub behavior: JsonText,
    /// Branding, widget and per-capability settings.
    #[sqlx(try_from = "String")]
    pub config: JsonText,
    #[sqlx(try_from = "String")]
    pub routing_rules: JsonText,
    pub model_override: Option<String>,
    /// The rendered system prompt.
    pub system_prompt: String,
    #[sqlx(try_from = "String")]
    pub onboarding_answers: JsonText,
    /// The widget's handle for this agent (unique across workspaces).
    pub public_id: String,
    pub is_active: bool,
    /// Starts at 1, grows by one on every change.
    pub version: i64,
    pub created_by: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

/// Everything about an agent that its owners may change.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AgentFields {
    pub slug: String,
    pub display_name: String,
    pub avatar: Option<String>,
    pub role: Option<String>,
    pub tagline: Option<String>,
    pub description: Option<String>,
    pub template_slug: Option<String>,
    pub enabled_capabilities: serde_json::Value,
    pub knowledge_base_ids: Vec<KnowledgeBaseId>,
    pub integrations: serde_json::Value,
    pub personality: serde_json::Value,
    pub behavior: serde_json::Value,
    pub config: serde_json::Value,
    pub routing_rules: serde_json::Value,
    pub model_override: Option<String>,
    pub system_prompt: String,
    pub onboarding_answers: serde_json::Value,
    pub is_active: bool,
}

/// An agent to create.
#[derive(Debug, Clone)]
pub struct NewAgent {
    pub id: AgentId,
    /// The widget handle: an unguessable token the app generates.
    pub public_id: String,
    pub created_by: Option<UserId>,
    pub fields: AgentFields,
}

/// A change to an agent: the new editable fields, made against `expected_version`.
#[derive(Debug, Clone)]
pub struct AgentUpdate {
    /// The version the editor saw; the update fails with `Conflict("version")` if the agent
    /// has changed since.
    pub expected_version: i64,
    pub fields: AgentFields,
    /// The names of the fields that changed, recorded in the revision.
    pub changed_fields: Vec<String>,
    pub actor: Option<UserId>,
}

/// One version of an agent.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct AgentRevision {
    #[sqlx(try_from = "String")]
    pub id: RevisionId,
    #[sqlx(try_from = "String")]
    pub workspace_id: WorkspaceId,
    #[sqlx(try_from = "String")]
    pub agent_id: AgentId,
    pub version: i64,
    /// The whole [`Agent`] after the change (deserialise it to restore).
    #[sqlx(try_from = "String")]
    pub snapshot: JsonText,
    /// The names of the fields that changed (a JSON array of strings).
    #[sqlx(try_from = "String")]
    pub changed_fields: JsonText,
    pub actor_user_id: Option<String>,
    pub created_at: Millis,
}

impl Agent {
    /// The knowledge bases the agent reads (ids that do not parse are skipped).
    pub fn knowledge_bases(&self) -> Vec<KnowledgeBaseId> {
        serde_json::from_value::<Vec<KnowledgeBaseId>>(self.knowledge_base_ids.0.clone())
            .unwrap_or_default()
    }

    /// The editable fields, to modify and pass back to [`Store::update_agent`].
    pub fn fields(&self) -> AgentFields {
        AgentFields {
            slug: self.slug.clone(),
            display_name: self.display_name.clone(),
            avatar: self.avatar.clone(),
            role: self.role.clone(),
            tagline: self.tagline.clone(),
            description: self.description.clone(),
            template_slug: self.template_slug.clone(),
            enabled_capabilities: self.enabled_capabilities.0.clone(),
            knowledge_base_ids: self.knowledge_bases(),
            integrations: self.integrations.0.clone(),
            personality: self.personality.0.clone(),
            behavior: self.behavior.0.clone(),
            config: self.config.0.clone(),
            routing_rules: self.routing_rules.0.clone(),
            model_override: self.model_override.clone(),
            system_prompt: self.system_prompt.clone(),
            onboarding_answers: self.onboarding_answers.0.clone(),
            is_active: self.is_active,
        }
    }
}

macro_rules! agent_columns {
    () => {
        "id, workspace_id, slug, display_name, avatar, role, tagline, description, template_slug, enabled_capabilities, knowledge_base_ids, integrations, personality, behavior, config, routing_rules, model_override, system_prompt, onboarding_answers, public_id, is_active, version, created_by, created_at, updated_at"
    };
}
pub(crate) use agent_columns;
macro_rules! revision_columns {
    () => {
        "id, workspace_id, agent_id, version, snapshot, changed_fields, actor_user_id, created_at"
    };
}

/// Binds the 18 editable fields, in `AgentFields` order, to a query.
macro_rules! bind_fields {
    ($query:expr, $f:expr, $kbs:expr) => {
        $query
            .bind(&$f.slug)
            .bind(&$f.display_name)
            .bind($f.avatar.as_deref())
            .bind($f.role.as_deref())
            .bind($f.tagline.as_deref())
            .bind($f.description.as_deref())
            .bind($f.template_slug.as_deref())
            .bind(json(&$f.enabled_capabilities))
            .bind($kbs)
            .bind(json(&$f.integrations))
            .bind(json(&$f.personality))
            .bind(json(&$f.behavior))
            .bind(json(&$f.config))
            .bind(json(&$f.routing_rules))
            .bind($f.model_override.as_deref())
            .bind(&$f.system_prompt)
            .bind(json(&$f.onboarding_answers))
            .bind($f.is_active)
    };
}

/// Inserts an agent at version 1 and its first revision inside the transaction `$tx`;
/// evaluates to the new [`Agent`]. Shared with onboarding completion.
macro_rules! insert_agent_tx {
    ($tx:expr, $ws:expr, $agent:expr, $now:expr) => {{
        let agent: &$crate::agents::NewAgent = $agent;
        let kbs = $crate::agents::kb_json(&agent.fields.knowledge_base_ids);
        let row: $crate::agents::Agent = $crate::agents::bind_fields!(
            sqlx::query_as(concat!(
                "INSERT INTO agents (id, workspace_id, public_id, created_by, version, created_at, updated_at, ",
                "slug, display_name, avatar, role, tagline, description, template_slug, enabled_capabilities, knowledge_base_ids, ",
                "integrations, personality, behavior, config, routing_rules, model_override, system_prompt, onboarding_answers, is_active) ",
                "VALUES ($1, $2, $3, $4, 1, $5, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23) RETURNING ",
                $crate::agents::agent_columns!()
            ))
            .bind(agent.id.to_string())
            .bind($ws)
            .bind(&agent.public_id)
            .bind(agent.created_by.map(|u| u.to_string()))
            .bind($now),
            agent.fields,
            kbs
        )
        .fetch_one(&mut *$tx)
        .await?;
        $crate::agents::insert_revision_tx!($tx, &row, &serde_json::json!([]), agent.created_by, $now);
        row
    }};
}
pub(crate) use {bind_fields, insert_agent_tx};

macro_rules! insert_revision_tx {
    ($tx:expr, $agent:expr, $changed:expr, $actor:expr, $now:expr) => {{
        let agent: &$crate::agents::Agent = $agent;
        let snapshot = serde_json::to_string(agent).map_err(|e| $crate::StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO agent_revisions (id, workspace_id, agent_id, version, snapshot, changed_fields, actor_user_id, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(domain::RevisionId::new().to_string())
        .bind(agent.workspace_id.to_string())
        .bind(agent.id.to_string())
        .bind(agent.version)
        .bind(snapshot)
        .bind($crate::kinds::json($changed))
        .bind($actor.map(|u: domain::UserId| u.to_string()))
        .bind($now)
        .execute(&mut *$tx)
        .await?;
    }};
}
pub(crate) use insert_revision_tx;

pub(crate) fn kb_json(ids: &[KnowledgeBaseId]) -> String {
    serde_json::to_string(ids).unwrap_or_else(|_| "[]".into())
}

impl Store {
    /// Creates an agent (version 1) with its first revision. A slug already used in the
    /// workspace is `Conflict("slug")`; a public id already used is `Conflict("public_id")`.
    pub async fn create_agent(
        &self,
        scope: &TenantScope,
        agent: &NewAgent,
        now: Millis,
    ) -> Result<Agent> {
        let ws = scope.workspace_id().to_string();
        on_db!(write self, pool => {
            let mut tx = pool.begin().await?;
            let row = insert_agent_tx!(tx, &ws, agent, now);
            tx.commit().await?;
            Ok(row)
        })
    }

    pub async fn get_agent(&self, scope: &TenantScope, id: AgentId) -> Result<Agent> {
        on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", agent_columns!(), " FROM agents WHERE id = $1 AND workspace_id = $2"))
            .bind(id.to_string()).bind(scope.workspace_id().to_string())
            .fetch_optional(pool).await)?
        .ok_or(StoreError::NotFound)
    }

    pub async fn get_agent_by_slug(&self, scope: &TenantScope, slug: &str) -> Result<Agent> {
        on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", agent_columns!(), " FROM agents WHERE slug = $1 AND workspace_id = $2"))
            .bind(slug).bind(scope.workspace_id().to_string())
            .fetch_optional(pool).await)?
        .ok_or(StoreError::NotFound)
    }

    /// The widget's entry point: finds an agent by its public id in any workspace. Not tenant
    /// scoped — the public id is the authorization; the caller must check `is_active`.
    pub async fn get_agent_by_public_id(&self, public_id: &str) -> Result<Agent> {
        on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", agent_columns!(), " FROM agents WHERE public_id = $1"))
            .bind(public_id)
            .fetch_optional(pool).await)?
        .ok_or(StoreError::NotFound)
    }

    /// The workspace's agents newest first, optionally only active (or inactive) ones.
    pub async fn list_agents(
        &self,
        scope: &TenantScope,
        active: Option<bool>,
        cursor: Option<AgentId>,
        limit: Option<u32>,
    ) -> Result<Page<Agent>> {
        let limit = clamp_limit(limit);
        let mut rows: Vec<Agent> = on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", agent_columns!(),
            " FROM agents WHERE workspace_id = $1 AND ($2 IS NULL OR is_active = $2) AND ($3 IS NULL OR id < $3) ORDER BY id DESC LIMIT $4"))
            .bind(scope.workspace_id().to_string()).bind(active).bind(cursor.map(|c| c.to_string())).bind(limit + 1)
            .fetch_all(pool).await)?;
        Ok(crate::page(&mut rows, limit, |r| r.id.to_string()))
    }

    /// How many agents the workspace has (for plan limits).
    pub async fn count_agents(&self, scope: &TenantScope) -> Result<i64> {
        let (n,): (i64,) = on_db!(read self, pool => sqlx::query_as("SELECT COUNT(*) FROM agents WHERE workspace_id = $1")
            .bind(scope.workspace_id().to_string()).fetch_one(pool).await)?;
        Ok(n)
    }

    /// Replaces an agent's editable fields if it is still at `expected_version`, bumps the
    /// version and records a revision naming `changed_fields`, atomically. A stale version is
    /// `Conflict("version")`; a slug taken by another agent is `Conflict("slug")`.
    pub async fn update_agent(
        &self,
        scope: &TenantScope,
        id: AgentId,
        update: &AgentUpdate,
        now: Millis,
    ) -> Result<Agent> {
        let ws = scope.workspace_id().to_string();
        let AgentUpdate { expected_version, fields, changed_fields, actor } = update;
        let (expected_version, actor) = (*expected_version, *actor);
        let kbs = kb_json(&fields.knowledge_base_ids);
        let changed = serde_json::json!(changed_fields);
        on_db!(write self, pool => {
            let mut tx = pool.begin().await?;
            let row: Option<Agent> = bind_fields!(
                sqlx::query_as(concat!("UPDATE agents SET version = version + 1, updated_at = $4, ",
                    "slug = $5, display_name = $6, avatar = $7, role = $8, tagline = $9, description = $10, template_slug = $11, ",
                    "enabled_capabilities = $12, knowledge_base_ids = $13, integrations = $14, personality = $15, behavior = $16, ",
                    "config = $17, routing_rules = $18, model_override = $19, system_prompt = $20, onboarding_answers = $21, is_active = $22 ",
                    "WHERE id = $1 AND workspace_id = $2 AND version = $3 RETURNING ", agent_columns!()))
                    .bind(id.to_string()).bind(&ws).bind(expected_version).bind(now),
                fields, kbs)
                .fetch_optional(&mut *tx).await?;
            let Some(row) = row else {
                let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM agents WHERE id = $1 AND workspace_id = $2")
                    .bind(id.to_string()).bind(&ws).fetch_one(&mut *tx).await?;
                return Err(if n == 0 { StoreError::NotFound } else { StoreError::Conflict("version") });
            };
            insert_revision_tx!(tx, &row, &changed, actor, now);
            tx.commit().await?;
            Ok(row)
        })
    }

    /// Deletes an agent with its revisions, conversations, runs and handoffs (API keys naming
    /// it are the app's to revoke). Returns the deleted agent.
    pub async fn delete_agent(&self, scope: &TenantScope, id: AgentId) -> Result<Agent> {
        on_db!(write self, pool => sqlx::query_as(concat!("DELETE FROM agents WHERE id = $1 AND workspace_id = $2 RETURNING ", agent_columns!()))
            .bind(id.to_string()).bind(scope.workspace_id().to_string())
            .fetch_optional(pool).await)?
        .ok_or(StoreError::NotFound)
    }

    /// An agent's revisions, newest first.
    pub async fn list_agent_revisions(
        &self,
        scope: &TenantScope,
        agent: AgentId,
        cursor: Option<RevisionId>,
        limit: Option<u32>,
    ) -> Result<Page<AgentRevision>> {
        let limit = clamp_limit(limit);
        let mut rows: Vec<AgentRevision> = on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", revision_columns!(),
            " FROM agent_revisions WHERE agent_id = $1 AND workspace_id = $2 AND ($3 IS NULL OR id < $3) ORDER BY id DESC LIMIT $4"))
            .bind(agent.to_string()).bind(scope.workspace_id().to_string()).bind(cursor.map(|c| c.to_string())).bind(limit + 1)
            .fetch_all(pool).await)?;
        Ok(crate::page(&mut rows, limit, |r| r.id.to_string()))
    }

    pub async fn get_agent_revision(
        &self,
        scope: &TenantScope,
        agent: AgentId,
        id: RevisionId,
    ) -> Result<AgentRevision> {
        on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", revision_columns!(), " FROM agent_revisions WHERE id = $1 AND agent_id = $2 AND workspace_id = $3"))
            .bind(id.to_string()).bind(agent.to_string()).bind(scope.workspace_id().to_string())
            .fetch_optional(pool).await)?
        .ok_or(StoreError::NotFound)
    }
}
