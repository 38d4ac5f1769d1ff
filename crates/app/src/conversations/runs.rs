//! Run traces ("Logs & Monitoring"): a runtime trace as stored steps, listing and reading runs,
//! and the retention sweep.

use std::time::{Duration, Instant};

use domain::time::now_ms;
use domain::{AgentId, RunId};
use store::{Page, Run, RunWithSteps};

use crate::auth::access::{check_agent_access, key_agent};
use crate::{App, AppError, Principal};

/// How often the retention sweep runs at most.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

/// A run still `running` after this long was left by a process that stopped.
const STALE_RUN: Duration = Duration::from_secs(3 * 3600);

impl App {
    /// Runs newest first, optionally one agent's.
    pub async fn runs(
        &self,
        p: &Principal,
        agent: Option<AgentId>,
        cursor: Option<RunId>,
        limit: Option<u32>,
    ) -> Result<Page<Run>, AppError> {
        p.require_read(domain::Readable::Conversations)?;
        let agent = match key_agent(p) {
            Some(a) => {
                let forced = AgentId::parse(a).map_err(|_| AppError::NotFound { what: "agent" })?;
                if agent.is_some_and(|x| x != forced) {
                    return Ok(Page { data: Vec::new(), next_cursor: None });
                }
                Some(forced)
            }
            None => agent,
        };
        Ok(self.store().list_runs(&p.scope(), agent, cursor, limit).await?)
    }

    /// A run with its steps.
    pub async fn run(&self, p: &Principal, id: RunId) -> Result<RunWithSteps, AppError> {
        p.require_read(domain::Readable::Conversations)?;
        let run =
            self.store().get_run(&p.scope(), id).await.map_err(AppError::from_store("run"))?;
        check_agent_access(p, run.run.agent_id).map_err(|_| AppError::NotFound { what: "run" })?;
        Ok(run)
    }

    /// Marks `interrupted` the runs left `running` by a process that stopped (a crash). On
    /// SQLite the serving process is the only one on the database (it holds the data
    /// directory's search index), so at start every such run is one; on PostgreSQL other
    /// replicas may be running theirs, so only runs older than [`STALE_RUN`] (longer than any
    /// run lasts: its model calls and tools all have time limits) are.
    pub async fn interrupt_dead_runs(&self, at_start: bool) {
        let now = now_ms();
        let cutoff = match self.store().backend() {
            store::Backend::Sqlite if at_start => now,
            _ => now - STALE_RUN.as_millis() as i64,
        };
        match self.store().interrupt_runs(cutoff, now).await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                runs = n,
                "runs left running by a stopped server are marked interrupted"
            ),
            Err(e) => tracing::warn!(error = %e, "could not mark interrupted runs"),
        }
    }

    /// Deletes runs past the retention period and marks dead runs interrupted, at most once
    /// an hour (called by `flush`).
    pub(crate) async fn sweep_runs(&self) {
        {
            let mut last = self.engine().last_retention.lock();
            if last.is_some_and(|t| t.elapsed() < RETENTION_EVERY) {
                return;
            }
            *last = Some(Instant::now());
        }
        self.interrupt_dead_runs(false).await;
        let days = self.engine().settings.run_retention_days;
        if days == 0 {
            return;
        }
        let cutoff = now_ms() - i64::from(days) * 86_400_000;
        match self.store().delete_runs_before(None, cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(runs = n, days, "deleted runs past their retention"),
            Err(e) => tracing::warn!(error = %e, "could not delete old runs"),
        }
    }
}
