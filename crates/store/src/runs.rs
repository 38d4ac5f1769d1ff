//! Run traces (a run and its ordered steps), their retention, and pending actions: tool calls
//! that wait for the user's approval before they run.

use domain::time::Millis;
use domain::{AgentId, ConversationId, RunId, UserId, WorkspaceId};
use serde::Serialize;

use crate::db::on_db;
use crate::kinds::{ActionStatus, RunStatus, StepKind, json};
use crate::{JsonText, Page, Result, Store, StoreError, TenantScope, clamp_limit};

/// A run as stored.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Run {
    #[sqlx(try_from = "String")]
    pub id: RunId,
    #[sqlx(try_from = "String")]
    pub workspace_id: WorkspaceId,
    #[sqlx(try_from = "String")]
    pub agent_id: AgentId,
    pub conversation_id: Option<String>,
    #[sqlx(try_from = "String")]
    pub status: RunStatus,
    pub model: Option<String>,
    pub started_at: Millis,
    pub finished_at: Option<Millis>,
    /// Tokens in/out, tool calls, … as the runtime reports them.
    #[sqlx(try_from = "String")]
    pub usage: JsonText,
    pub error: Option<String>,
}

/// A run to start (status `running`).
#[derive(Debug, Clone)]
pub struct NewRun {
    pub id: RunId,
    pub agent_id: AgentId,
    pub conversation_id: Option<ConversationId>,
    pub model: Option<String>,
}

/// One step of a run.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct RunStep {
    #[sqlx(try_from = "String")]
    pub run_id: RunId,
    /// 1, 2, 3, … in the order appended.
    pub seq: i64,
    #[sqlx(try_from = "String")]
    pub kind: StepKind,
    pub name: String,
    #[sqlx(try_from = "String")]
    pub input: JsonText,
    /// A summary of the output (not necessarily all of it).
    #[sqlx(try_from = "String")]
    pub output: JsonText,
    pub latency_ms: i64,
    pub tokens_in: i64,
    pub tokens_out: i64,
    pub created_at: Millis,
}

/// A step to append.
#[derive(Debug, Clone)]
pub struct NewRunStep {
    pub kind: StepKind,
    pub name: String,
    pub input: serde_json::Value,
    pub output: serde_json::Value,
    pub latency_ms: i64,
    pub tokens_in: i64,
    pub tokens_out: i64,
}

/// A run with its steps in order.
#[derive(Debug, Clone, Serialize)]
pub struct RunWithSteps {
    #[serde(flatten)]
    pub run: Run,
    pub steps: Vec<RunStep>,
}

/// A tool call waiting for the user's decision. Ids are `act_<32 hex>` (no typed id yet).
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct PendingAction {
    pub id: String,
    #[sqlx(try_from = "String")]
    pub workspace_id: WorkspaceId,
    #[sqlx(try_from = "String")]
    pub run_id: RunId,
    pub conversation_id: Option<String>,
    pub tool_name: String,
    #[sqlx(try_from = "String")]
    pub arguments: JsonText,
    #[sqlx(try_from = "String")]
    pub status: ActionStatus,
    pub created_at: Millis,
    pub decided_at: Option<Millis>,
    pub decided_by: Option<String>,
}

/// A pending action to record.
#[derive(Debug, Clone)]
pub struct NewPendingAction {
    pub run_id: RunId,
    pub conversation_id: Option<ConversationId>,
    pub tool_name: String,
    pub arguments: serde_json::Value,
}

macro_rules! run_columns {
    () => {
        "id, workspace_id, agent_id, conversation_id, status, model, started_at, finished_at, usage, error"
    };
}
macro_rules! step_columns {
    () => {
        "run_id, seq, kind, name, input, output, latency_ms, tokens_in, tokens_out, created_at"
    };
}
macro_rules! action_columns {
    () => {
        "id, workspace_id, run_id, conversation_id, tool_name, arguments, status, created_at, decided_at, decided_by"
    };
}

/// A fresh id with `prefix`, in the same shape as the typed ids of `domain`.
pub(crate) fn new_text_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
}

impl Store {
    /// Starts a run (status `running`) for one of the workspace's agents (`NotFound` otherwise).
    pub async fn start_run(&self, scope: &TenantScope, run: &NewRun, now: Millis) -> Result<Run> {
        on_db!(write self, pool => sqlx::query_as(concat!("INSERT INTO runs (id, workspace_id, agent_id, conversation_id, status, model, started_at, usage)
             SELECT $1, $2, $3, $4, 'running', $5, $6, '{}' FROM agents WHERE id = $3 AND workspace_id = $2 RETURNING ", run_columns!()))
            .bind(run.id.to_string()).bind(scope.workspace_id().to_string()).bind(run.agent_id.to_string())
            .bind(run.conversation_id.map(|c| c.to_string())).bind(run.model.as_deref()).bind(now)
            .fetch_optional(pool).await)?
        .ok_or(StoreError::NotFound)
    }

    /// Records that a run started, in one transaction with the user's message when given (the
    /// chat surfaces store it before the run, so a crash loses neither) and with the
    /// conversation when it is new (`new_conversation`, whose id is `run.conversation_id`): the
    /// message is appended to `run.conversation_id` (`NotFound` if that is not the workspace's,
    /// or was deleted) and the run row written as `running` (`NotFound` for another
    /// workspace's agent).
    pub async fn begin_run(
        &self,
        scope: &TenantScope,
        run: &NewRun,
        new_conversation: Option<&crate::NewConversation>,
        user_message: Option<&crate::NewMessage>,
        now: Millis,
    ) -> Result<()> {
        let ws = scope.workspace_id().to_string();
        let cid = run.conversation_id.map(|c| c.to_string());
        on_db!(write self, pool => {
            let mut tx = pool.begin().await?;
            if let Some(conv) = new_conversation {
                let n = sqlx::query("INSERT INTO conversations (id, workspace_id, agent_id, end_user_id, channel, title, created_at, updated_at)
                     SELECT $1, $2, $3, $4, $5, $6, $7, $7 FROM agents WHERE id = $3 AND workspace_id = $2")
                    .bind(conv.id.to_string()).bind(&ws).bind(conv.agent_id.to_string())
                    .bind(conv.end_user_id.as_deref()).bind(conv.channel.as_str()).bind(conv.title.as_deref()).bind(now)
                    .execute(&mut *tx).await?.rows_affected();
                if n == 0 {
                    return Err(StoreError::NotFound);
                }
            }
            if let Some(m) = user_message {
                let n = sqlx::query("UPDATE conversations SET last_message_at = $3, updated_at = $3 WHERE id = $1 AND workspace_id = $2 AND deleted_at IS NULL")
                    .bind(&cid).bind(&ws).bind(now).execute(&mut *tx).await?.rows_affected();
                if n == 0 {
                    return Err(StoreError::NotFound);
                }
                sqlx::query("INSERT INTO messages (id, conversation_id, workspace_id, role, content, attachments, citations, tool_calls, run_id, tokens, created_at)
                     VALUES ($1, $2, $3, $4, $5, '[]', '[]', '[]', NULL, NULL, $6)")
                    .bind(m.id.to_string()).bind(&cid).bind(&ws).bind(m.role.as_str()).bind(&m.content).bind(now)
                    .execute(&mut *tx).await?;
            }
            let n = sqlx::query("INSERT INTO runs (id, workspace_id, agent_id, conversation_id, status, model, started_at, usage)
                 SELECT $1, $2, $3, $4, 'running', $5, $6, '{}' FROM agents WHERE id = $3 AND workspace_id = $2")
                .bind(run.id.to_string()).bind(&ws).bind(run.agent_id.to_string())
                .bind(&cid).bind(run.model.as_deref()).bind(now)
                .execute(&mut *tx).await?.rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            tx.commit().await?;
            Ok(())
        })
    }

    /// Marks `interrupted` every run still `running` that started before `started_before`, in
    /// every workspace: the process running them stopped (a crash) before they ended. Called at
    /// start (and by a sweep) with a cutoff no live run can predate. Returns how many.
    pub async fn interrupt_runs(&self, started_before: Millis, now: Millis) -> Result<u64> {
        let n = on_db!(write self, pool => sqlx::query("UPDATE runs SET status = 'interrupted', finished_at = $2, error = 'interrupted: the server stopped while this run was in progress' WHERE status = 'running' AND started_at < $1")
            .bind(started_before).bind(now)
            .execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(n)
    }

    /// Appends steps after the run's last one, in one transaction; returns them with their
    /// sequence numbers. A finished run takes no more steps (`Conflict("status")`).
    pub async fn append_run_steps(
        &self,
        scope: &TenantScope,
        run: RunId,
        steps: &[NewRunStep],
        now: Millis,
    ) -> Result<Vec<RunStep>> {
        let (rid, ws) = (run.to_string(), scope.workspace_id().to_string());
        on_db!(write self, pool => {
            let mut tx = pool.begin().await?;
            // A no-op update takes the run's row lock, so concurrent appends number in turn.
            let n = sqlx::query("UPDATE runs SET status = status WHERE id = $1 AND workspace_id = $2 AND status IN ('running', 'awaiting_action')")
                .bind(&rid).bind(&ws).execute(&mut *tx).await?.rows_affected();
            if n == 0 {
                let (exists,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM runs WHERE id = $1 AND workspace_id = $2")
                    .bind(&rid).bind(&ws).fetch_one(&mut *tx).await?;
                return Err(if exists == 0 { StoreError::NotFound } else { StoreError::Conflict("status") });
            }
            let (last,): (i64,) = sqlx::query_as("SELECT CAST(COALESCE(MAX(seq), 0) AS BIGINT) FROM run_steps WHERE run_id = $1")
                .bind(&rid).fetch_one(&mut *tx).await?;
            let mut out = Vec::with_capacity(steps.len());
            for (i, s) in steps.iter().enumerate() {
                let row: RunStep = sqlx::query_as(concat!("INSERT INTO run_steps (", step_columns!(), ") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING ", step_columns!()))
                    .bind(&rid).bind(last + 1 + i as i64).bind(s.kind.as_str()).bind(&s.name)
                    .bind(json(&s.input)).bind(json(&s.output)).bind(s.latency_ms).bind(s.tokens_in).bind(s.tokens_out).bind(now)
                    .fetch_one(&mut *tx).await?;
                out.push(row);
            }
            tx.commit().await?;
            Ok(out)
        })
    }

    /// Moves an unfinished run to `status`. A terminal status (completed, failed, cancelled)
    /// stamps `finished_at`; `usage` and `error` are recorded when given. A run already
    /// finished is `Conflict("status")`.
    pub async fn set_run_status(
        &self,
        scope: &TenantScope,
        run: RunId,
        status: RunStatus,
        usage: Option<&serde_json::Value>,
        error: Option<&str>,
        now: Millis,
    ) -> Result<Run> {
        let (rid, ws) = (run.to_string(), scope.workspace_id().to_string());
        let finished = status.is_terminal().then_some(now);
        let row: Option<Run> = on_db!(write self, pool => sqlx::query_as(concat!("UPDATE runs SET status = $3, finished_at = $4, usage = COALESCE($5, usage), error = COALESCE($6, error)
             WHERE id = $1 AND workspace_id = $2 AND status IN ('running', 'awaiting_action') RETURNING ", run_columns!()))
            .bind(&rid).bind(&ws).bind(status.as_str()).bind(finished).bind(usage.map(json)).bind(error)
            .fetch_optional(pool).await)?;
        match row {
            Some(row) => Ok(row),
            None => {
                self.get_run_row(scope, run).await?;
                Err(StoreError::Conflict("status"))
            }
        }
    }

    async fn get_run_row(&self, scope: &TenantScope, id: RunId) -> Result<Run> {
        on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", run_columns!(), " FROM runs WHERE id = $1 AND workspace_id = $2"))
            .bind(id.to_string()).bind(scope.workspace_id().to_string())
            .fetch_optional(pool).await)?
        .ok_or(StoreError::NotFound)
    }

    /// A run with its steps.
    pub async fn get_run(&self, scope: &TenantScope, id: RunId) -> Result<RunWithSteps> {
        let run = self.get_run_row(scope, id).await?;
        let steps: Vec<RunStep> = on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", step_columns!(), " FROM run_steps WHERE run_id = $1 ORDER BY seq"))
            .bind(id.to_string()).fetch_all(pool).await)?;
        Ok(RunWithSteps { run, steps })
    }

    /// The workspace's runs newest first, optionally one agent's.
    pub async fn list_runs(
        &self,
        scope: &TenantScope,
        agent: Option<AgentId>,
        cursor: Option<RunId>,
        limit: Option<u32>,
    ) -> Result<Page<Run>> {
        let limit = clamp_limit(limit);
        let mut rows: Vec<Run> = on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", run_columns!(),
            " FROM runs WHERE workspace_id = $1 AND ($2 IS NULL OR agent_id = $2) AND ($3 IS NULL OR id < $3) ORDER BY id DESC LIMIT $4"))
            .bind(scope.workspace_id().to_string()).bind(agent.map(|a| a.to_string())).bind(cursor.map(|c| c.to_string())).bind(limit + 1)
            .fetch_all(pool).await)?;
        Ok(crate::page(&mut rows, limit, |r| r.id.to_string()))
    }

    /// Retention: deletes runs (with their steps and pending actions) started before `cutoff`,
    /// in every workspace or only in `scope`'s. Returns how many runs.
    pub async fn delete_runs_before(
        &self,
        scope: Option<&TenantScope>,
        cutoff: Millis,
    ) -> Result<u64> {
        let n = on_db!(write self, pool => sqlx::query("DELETE FROM runs WHERE started_at < $1 AND ($2 IS NULL OR workspace_id = $2)")
            .bind(cutoff).bind(scope.map(|s| s.workspace_id().to_string()))
            .execute(pool).await.map(|r| r.rows_affected()))?;
        Ok(n)
    }

    /// Records a tool call awaiting the user's decision, on one of the workspace's runs.
    pub async fn create_pending_action(
        &self,
        scope: &TenantScope,
        action: &NewPendingAction,
        now: Millis,
    ) -> Result<PendingAction> {
        on_db!(write self, pool => sqlx::query_as(concat!("INSERT INTO pending_actions (id, workspace_id, run_id, conversation_id, tool_name, arguments, status, created_at)
             SELECT $1, $2, $3, $4, $5, $6, 'pending', $7 FROM runs WHERE id = $3 AND workspace_id = $2 RETURNING ", action_columns!()))
            .bind(new_text_id("act")).bind(scope.workspace_id().to_string()).bind(action.run_id.to_string())
            .bind(action.conversation_id.map(|c| c.to_string())).bind(&action.tool_name).bind(json(&action.arguments)).bind(now)
            .fetch_optional(pool).await)?
        .ok_or(StoreError::NotFound)
    }

    pub async fn get_pending_action(&self, scope: &TenantScope, id: &str) -> Result<PendingAction> {
        on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", action_columns!(), " FROM pending_actions WHERE id = $1 AND workspace_id = $2"))
            .bind(id).bind(scope.workspace_id().to_string())
            .fetch_optional(pool).await)?
        .ok_or(StoreError::NotFound)
    }

    /// Decides a pending action once (approved, rejected or expired); deciding it again, or
    /// "deciding" `Pending`, is `Conflict("status")`.
    pub async fn decide_pending_action(
        &self,
        scope: &TenantScope,
        id: &str,
        decision: ActionStatus,
        by: Option<UserId>,
        now: Millis,
    ) -> Result<PendingAction> {
        if decision == ActionStatus::Pending {
            return Err(StoreError::Conflict("status"));
        }
        let row: Option<PendingAction> = on_db!(write self, pool => sqlx::query_as(concat!("UPDATE pending_actions SET status = $3, decided_at = $4, decided_by = $5
             WHERE id = $1 AND workspace_id = $2 AND status = 'pending' RETURNING ", action_columns!()))
            .bind(id).bind(scope.workspace_id().to_string()).bind(decision.as_str()).bind(now).bind(by.map(|u| u.to_string()))
            .fetch_optional(pool).await)?;
        match row {
            Some(row) => Ok(row),
            None => {
                self.get_pending_action(scope, id).await?;
                Err(StoreError::Conflict("status"))
            }
        }
    }

    /// The actions of a conversation still waiting for a decision, oldest first.
    pub async fn list_pending_actions(
        &self,
        scope: &TenantScope,
        conversation: ConversationId,
    ) -> Result<Vec<PendingAction>> {
        on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", action_columns!(),
            " FROM pending_actions WHERE conversation_id = $1 AND workspace_id = $2 AND status = 'pending' ORDER BY id"))
            .bind(conversation.to_string()).bind(scope.workspace_id().to_string())
            .fetch_all(pool).await)
        .map_err(Into::into)
    }
}
