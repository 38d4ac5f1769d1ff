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

    /// Deletes runs past the retention period, at most once an hour (called by `flush`).
    pub(crate) async fn sweep_runs(&self) {
        let days = self.engine().settings.run_retention_days;
        if days == 0 {
            return;
        }
        {
            let mut last = self.engine().last_retention.lock();
            if last.is_some_and(|t| t.elapsed() < RETENTION_EVERY) {
                return;
            }
            *last = Some(Instant::now());
        }
        let cutoff = now_ms() - i64::from(days) * 86_400_000;
        match self.store().delete_runs_before(None, cutoff).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(runs = n, days, "deleted runs past their retention"),
            Err(e) => tracing::warn!(error = %e, "could not delete old runs"),
        }
    }
}
