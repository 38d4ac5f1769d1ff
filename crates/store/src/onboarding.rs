//! Onboarding wizard sessions: answers saved step by step while the session is in progress,
//! and completion that creates the agent and closes the session in one transaction.

use domain::time::Millis;
use domain::{OnboardingId, UserId, WorkspaceId};
use serde::Serialize;

use crate::agents::{Agent, NewAgent, insert_agent_tx};
use crate::db::on_db;
use crate::kinds::{OnboardingStatus, json};
use crate::{JsonText, Page, Result, Store, StoreError, TenantScope, clamp_limit};

/// A session as stored.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct OnboardingSession {
    #[sqlx(try_from = "String")]
    pub id: OnboardingId,
    #[sqlx(try_from = "String")]
    pub workspace_id: WorkspaceId,
    #[sqlx(try_from = "String")]
    pub user_id: UserId,
    pub template_slug: String,
    #[sqlx(try_from = "String")]
    pub status: OnboardingStatus,
    pub current_step: Option<String>,
    /// The flat object of answers so far.
    #[sqlx(try_from = "String")]
    pub answers: JsonText,
    /// The ids of the steps submitted, in first-submission order (a JSON array).
    #[sqlx(try_from = "String")]
    pub completed_steps: JsonText,
    /// The agent created at completion.
    pub agent_id: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
}

macro_rules! session_columns {
    () => {
        "id, workspace_id, user_id, template_slug, status, current_step, answers, completed_steps, agent_id, created_at, updated_at"
    };
}

/// Takes the session's row lock (PostgreSQL; SQLite has one writer) if it is still in
/// progress, so the read-merge-write that follows cannot interleave with another save.
/// Evaluates to `Err(Conflict("status"))` / `Err(NotFound)` when it is not.
macro_rules! lock_in_progress {
    ($tx:expr, $id:expr, $ws:expr, $now:expr) => {{
        let n = sqlx::query("UPDATE onboarding_sessions SET updated_at = $3 WHERE id = $1 AND workspace_id = $2 AND status = 'in_progress'")
            .bind($id).bind($ws).bind($now)
            .execute(&mut *$tx).await?.rows_affected();
        if n == 0 {
            let (exists,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM onboarding_sessions WHERE id = $1 AND workspace_id = $2")
                .bind($id).bind($ws).fetch_one(&mut *$tx).await?;
            return Err(if exists == 0 { StoreError::NotFound } else { StoreError::Conflict("status") });
        }
    }};
}

impl Store {
    /// Starts a session on `template_slug` at `first_step`.
    pub async fn create_onboarding(
        &self,
        scope: &TenantScope,
        id: OnboardingId,
        user: UserId,
        template_slug: &str,
        first_step: Option<&str>,
        now: Millis,
    ) -> Result<OnboardingSession> {
        on_db!(write self, pool => sqlx::query_as(concat!("INSERT INTO onboarding_sessions (id, workspace_id, user_id, template_slug, status, current_step, answers, completed_steps, created_at, updated_at)
             VALUES ($1, $2, $3, $4, 'in_progress', $5, '{}', '[]', $6, $6) RETURNING ", session_columns!()))
            .bind(id.to_string()).bind(scope.workspace_id().to_string()).bind(user.to_string()).bind(template_slug).bind(first_step).bind(now)
            .fetch_one(pool).await)
        .map_err(Into::into)
    }

    pub async fn get_onboarding(
        &self,
        scope: &TenantScope,
        id: OnboardingId,
    ) -> Result<OnboardingSession> {
        on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", session_columns!(), " FROM onboarding_sessions WHERE id = $1 AND workspace_id = $2"))
            .bind(id.to_string()).bind(scope.workspace_id().to_string())
            .fetch_optional(pool).await)?
        .ok_or(StoreError::NotFound)
    }

    /// The workspace's sessions newest first, optionally one user's and/or one status.
    pub async fn list_onboarding(
        &self,
        scope: &TenantScope,
        user: Option<UserId>,
        status: Option<OnboardingStatus>,
        cursor: Option<OnboardingId>,
        limit: Option<u32>,
    ) -> Result<Page<OnboardingSession>> {
        let limit = clamp_limit(limit);
        let mut rows: Vec<OnboardingSession> = on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", session_columns!(),
            " FROM onboarding_sessions WHERE workspace_id = $1 AND ($2 IS NULL OR user_id = $2) AND ($3 IS NULL OR status = $3) AND ($4 IS NULL OR id < $4) ORDER BY id DESC LIMIT $5"))
            .bind(scope.workspace_id().to_string()).bind(user.map(|u| u.to_string())).bind(status.map(|s| s.as_str()))
            .bind(cursor.map(|c| c.to_string())).bind(limit + 1)
            .fetch_all(pool).await)?;
        Ok(crate::page(&mut rows, limit, |r| r.id.to_string()))
    }

    /// Saves one step: merges `answers` into the saved ones (keys given replace keys saved),
    /// records `step_id` as completed and moves to `next_step`, atomically. A session that is
    /// no longer in progress is `Conflict("status")` and is not changed.
    pub async fn save_onboarding_step(
        &self,
        scope: &TenantScope,
        id: OnboardingId,
        step_id: &str,
        answers: &serde_json::Map<String, serde_json::Value>,
        next_step: Option<&str>,
        now: Millis,
    ) -> Result<OnboardingSession> {
        let (sid, ws) = (id.to_string(), scope.workspace_id().to_string());
        on_db!(write self, pool => {
            let mut tx = pool.begin().await?;
            lock_in_progress!(tx, &sid, &ws, now);
            let (saved, steps): (String, String) = sqlx::query_as("SELECT answers, completed_steps FROM onboarding_sessions WHERE id = $1")
                .bind(&sid).fetch_one(&mut *tx).await?;
            let (merged, steps) = merge_step(&saved, &steps, step_id, answers)?;
            let row: OnboardingSession = sqlx::query_as(concat!("UPDATE onboarding_sessions SET answers = $2, completed_steps = $3, current_step = $4, updated_at = $5
                 WHERE id = $1 RETURNING ", session_columns!()))
                .bind(&sid).bind(merged).bind(steps).bind(next_step).bind(now)
                .fetch_one(&mut *tx).await?;
            tx.commit().await?;
            Ok(row)
        })
    }

    /// Moves the wizard to `step` without saving answers (going back).
    pub async fn set_onboarding_step(
        &self,
        scope: &TenantScope,
        id: OnboardingId,
        step: &str,
        now: Millis,
    ) -> Result<OnboardingSession> {
        let (sid, ws) = (id.to_string(), scope.workspace_id().to_string());
        on_db!(write self, pool => {
            let mut tx = pool.begin().await?;
            lock_in_progress!(tx, &sid, &ws, now);
            let row: OnboardingSession = sqlx::query_as(concat!("UPDATE onboarding_sessions SET current_step = $2 WHERE id = $1 RETURNING ", session_columns!()))
                .bind(&sid).bind(step).fetch_one(&mut *tx).await?;
            tx.commit().await?;
            Ok(row)
        })
    }

    /// Abandons an in-progress session (`Conflict("status")` otherwise).
    pub async fn abandon_onboarding(
        &self,
        scope: &TenantScope,
        id: OnboardingId,
        now: Millis,
    ) -> Result<OnboardingSession> {
        let (sid, ws) = (id.to_string(), scope.workspace_id().to_string());
        on_db!(write self, pool => {
            let mut tx = pool.begin().await?;
            lock_in_progress!(tx, &sid, &ws, now);
            let row: OnboardingSession = sqlx::query_as(concat!("UPDATE onboarding_sessions SET status = 'abandoned' WHERE id = $1 RETURNING ", session_columns!()))
                .bind(&sid).fetch_one(&mut *tx).await?;
            tx.commit().await?;
            Ok(row)
        })
    }

    /// Completes an in-progress session by creating its agent: the agent (with its first
    /// revision) is inserted and the session marked completed with the agent's id in ONE
    /// transaction. A session not in progress is `Conflict("status")`; an agent conflict (e.g.
    /// `Conflict("slug")`) leaves the session in progress and no agent behind.
    pub async fn complete_onboarding_with_agent(
        &self,
        scope: &TenantScope,
        id: OnboardingId,
        agent: &NewAgent,
        now: Millis,
    ) -> Result<(OnboardingSession, Agent)> {
        let (sid, ws) = (id.to_string(), scope.workspace_id().to_string());
        on_db!(write self, pool => {
            let mut tx = pool.begin().await?;
            lock_in_progress!(tx, &sid, &ws, now);
            let created = insert_agent_tx!(tx, &ws, agent, now);
            let session: OnboardingSession = sqlx::query_as(concat!("UPDATE onboarding_sessions SET status = 'completed', agent_id = $2, current_step = NULL WHERE id = $1 RETURNING ", session_columns!()))
                .bind(&sid).bind(created.id.to_string()).fetch_one(&mut *tx).await?;
            tx.commit().await?;
            Ok((session, created))
        })
    }
}

/// Merges a step's answers into the saved object and appends the step to the completed list.
fn merge_step(
    saved: &str,
    steps: &str,
    step_id: &str,
    answers: &serde_json::Map<String, serde_json::Value>,
) -> Result<(String, String)> {
    let corrupt = |e: serde_json::Error| StoreError::Corrupt(e.to_string());
    let mut merged: serde_json::Map<String, serde_json::Value> =
        serde_json::from_str(saved).map_err(corrupt)?;
    merged.extend(answers.iter().map(|(k, v)| (k.clone(), v.clone())));
    let mut steps: Vec<String> = serde_json::from_str(steps).map_err(corrupt)?;
    if !steps.iter().any(|s| s == step_id) {
        steps.push(step_id.to_owned());
    }
    Ok((json(&serde_json::Value::Object(merged)), serde_json::to_string(&steps).map_err(corrupt)?))
}
