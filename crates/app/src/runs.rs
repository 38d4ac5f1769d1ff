//! Run traces ("Logs & Monitoring"): a runtime trace as stored steps, listing and reading runs,
//! and the retention sweep.

use std::time::{Duration, Instant};

use domain::time::now_ms;
use domain::{AgentId, Permission, RunId};
use runtime::{StepKind, TraceStep};
use serde_json::json;
use store::{NewRunStep, Page, Run, RunWithSteps};

use crate::chat::{check_agent_access, key_agent};
use crate::{App, AppError, Principal};

/// How often the retention sweep runs at most.
const RETENTION_EVERY: Duration = Duration::from_secs(3600);

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A runtime trace as store steps. The store knows four kinds; control steps (no-model
/// fallback, resume) are recorded as `routing`, and cap/cancel/disconnect as `error`, each
/// named after the runtime step.
pub fn to_steps(trace: &[TraceStep]) -> Vec<NewRunStep> {
    use store::StepKind as K;
    trace
        .iter()
        .map(|t| {
            let at = json!({ "at_ms": t.at_ms });
            let (kind, name, input, output, latency, tin, tout) = match &t.kind {
                StepKind::ModelCall {
                    model,
                    prompt_tokens,
                    completion_tokens,
                    latency_ms,
                    first_token_ms,
                    tool_calls,
                    error,
                } => (
                    K::ModelCall,
                    model.clone(),
                    json!({ "at_ms": t.at_ms, "first_token_ms": first_token_ms }),
                    json!({ "tool_calls": tool_calls, "error": error }),
                    *latency_ms,
                    i64::from(*prompt_tokens),
                    i64::from(*completion_tokens),
                ),
                StepKind::ToolCall(r) => (
                    K::ToolCall,
                    r.tool.clone(),
                    json!({ "at_ms": t.at_ms, "call_id": r.call_id, "arguments": r.arguments }),
                    json!({ "status": r.status, "summary": r.result_summary }),
                    r.latency_ms,
                    0,
                    0,
                ),
                StepKind::Routing { matched, fallback_to_llm } => (
                    K::Routing,
                    "routing".into(),
                    at,
                    json!({ "matched": matched, "fallback_to_llm": fallback_to_llm }),
                    0,
                    0,
                    0,
                ),
                StepKind::NoModelFallback { hits } => {
                    (K::Routing, "no_model_fallback".into(), at, json!({ "hits": hits }), 0, 0, 0)
                }
                StepKind::Resumed { approved, rejected } => (
                    K::Routing,
                    "resumed".into(),
                    at,
                    json!({ "approved": approved, "rejected": rejected }),
                    0,
                    0,
                    0,
                ),
                StepKind::IterationCap { cap } => {
                    (K::Error, "iteration_cap".into(), at, json!({ "cap": cap }), 0, 0, 0)
                }
                StepKind::ClientDisconnected { continued } => (
                    K::Error,
                    "client_disconnected".into(),
                    at,
                    json!({ "continued": continued }),
                    0,
                    0,
                    0,
                ),
                StepKind::Cancelled { reason } => {
                    (K::Error, "cancelled".into(), at, json!({ "reason": reason }), 0, 0, 0)
                }
                StepKind::Error(e) => (
                    K::Error,
                    e.code.clone(),
                    at,
                    json!({ "code": e.code, "message": e.message }),
                    0,
                    0,
                    0,
                ),
            };
            NewRunStep {
                kind,
                name,
                input,
                output,
                latency_ms: to_i64(latency),
                tokens_in: tin,
                tokens_out: tout,
            }
        })
        .collect()
}

impl App {
    /// Runs newest first, optionally one agent's.
    pub async fn runs(
        &self,
        p: &Principal,
        agent: Option<AgentId>,
        cursor: Option<RunId>,
        limit: Option<u32>,
    ) -> Result<Page<Run>, AppError> {
        p.require(Permission::Read)?;
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
        p.require(Permission::Read)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traces_become_steps_with_tokens_latency_and_names() {
        let trace = vec![
            TraceStep {
                at_ms: 1,
                kind: StepKind::ModelCall {
                    model: "m".into(),
                    prompt_tokens: 12,
                    completion_tokens: 5,
                    latency_ms: 40,
                    first_token_ms: Some(3),
                    tool_calls: 1,
                    error: None,
                },
            },
            TraceStep { at_ms: 2, kind: StepKind::NoModelFallback { hits: 0 } },
        ];
        let steps = to_steps(&trace);
        assert_eq!(steps[0].kind, store::StepKind::ModelCall);
        assert_eq!((steps[0].tokens_in, steps[0].tokens_out, steps[0].latency_ms), (12, 5, 40));
        assert_eq!(steps[0].name, "m");
        assert_eq!(steps[1].name, "no_model_fallback");
        assert_eq!(steps[1].output, json!({"hits": 0}));
    }
}
