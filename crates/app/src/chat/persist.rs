//! Persisting what a run produced: stored messages as model history and back, a runtime trace
//! as run steps, a finished run's record (group-committed by the run writer), pending actions.

use domain::time::Millis;
use domain::{AgentId, ConversationId, MessageId};
use llm::{Message as LlmMessage, ToolCall};
use runtime::{RunOutcome, RunStatus, StepKind, TraceStep};
use serde_json::{Value, json};
use store::{
    Message, MessageRole, NewMessage, NewPendingAction, NewRunStep, PendingAction, TenantScope,
};

use crate::App;

/// Stored messages as model history (system messages are the agent's, not history's).
pub fn to_llm_history(stored: &[Message]) -> Vec<LlmMessage> {
    stored
        .iter()
        .filter_map(|m| match m.role {
            MessageRole::User => Some(LlmMessage::user(m.content.clone())),
            MessageRole::Assistant => {
                let calls: Vec<ToolCall> =
                    serde_json::from_value(m.tool_calls.0.clone()).unwrap_or_default();
                let content = (!m.content.is_empty()).then(|| m.content.clone());
                Some(LlmMessage::assistant_tool_calls(content, calls))
            }
            MessageRole::Tool => {
                let id = m.tool_calls.0.get(0)?.get("tool_call_id")?.as_str()?.to_owned();
                Some(LlmMessage::tool_result(id, m.content.clone()))
            }
            // A person of the business answered (live handoff): the bot, answering again
            // later, speaks for the same side.
            MessageRole::HumanAgent => Some(LlmMessage::assistant(m.content.clone())),
            MessageRole::System => None,
        })
        .collect()
}

/// A run's new messages as stored rows; citations and output tokens go on the final answer.
fn to_stored(outcome: &RunOutcome) -> Vec<NewMessage> {
    let last_answer = outcome.messages.iter().rposition(
        |m| matches!(m, LlmMessage::Assistant { content: Some(c), .. } if !c.is_empty()),
    );
    outcome
        .messages
        .iter()
        .enumerate()
        .map(|(i, m)| {
            let (role, tool_calls) = match m {
                LlmMessage::System { .. } => (MessageRole::System, Value::Null),
                LlmMessage::User { .. } => (MessageRole::User, Value::Null),
                LlmMessage::Assistant { tool_calls, .. } => {
                    (MessageRole::Assistant, json!(tool_calls))
                }
                LlmMessage::Tool { tool_call_id, .. } => {
                    (MessageRole::Tool, json!([{ "tool_call_id": tool_call_id }]))
                }
            };
            let is_answer = Some(i) == last_answer && outcome.status == RunStatus::Completed;
            NewMessage {
                id: MessageId::new(),
                role,
                content: m.text().to_owned(),
                attachments: Value::Null,
                citations: if is_answer { json!(outcome.citations) } else { Value::Null },
                tool_calls,
                run_id: Some(outcome.run_id),
                tokens: is_answer.then_some(i64::from(outcome.usage.completion_tokens)),
            }
        })
        .collect()
}

/// A run's usage as stored on the run.
fn usage_json(outcome: &RunOutcome) -> Value {
    json!({
        "prompt_tokens": outcome.usage.prompt_tokens,
        "completion_tokens": outcome.usage.completion_tokens,
        "tool_calls": outcome.usage.tool_calls,
        "model_calls": outcome.usage.model_calls,
        "duration_ms": outcome.duration_ms,
    })
}

fn store_status(s: RunStatus) -> store::RunStatus {
    match s {
        RunStatus::Completed => store::RunStatus::Completed,
        RunStatus::Failed => store::RunStatus::Failed,
        RunStatus::AwaitingAction => store::RunStatus::AwaitingAction,
        RunStatus::Cancelled => store::RunStatus::Cancelled,
    }
}

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
    /// Writes a run's messages, steps, status and pending actions. Failures are logged, not
    /// returned: the answer has already been streamed.
    pub(crate) async fn persist_outcome(
        &self,
        scope: &TenantScope,
        agent: AgentId,
        conversation: ConversationId,
        outcome: &RunOutcome,
        now: Millis,
    ) -> Vec<PendingAction> {
        let store = self.store();
        let messages = to_stored(outcome);
        if !messages.is_empty()
            && let Err(e) = store.append_messages(scope, conversation, &messages, now).await
        {
            tracing::error!(error = %e, run = %outcome.run_id, "could not store the run's messages");
        }
        let steps = to_steps(&outcome.trace);
        if !steps.is_empty()
            && let Err(e) = store.append_run_steps(scope, outcome.run_id, &steps, now).await
        {
            tracing::error!(error = %e, run = %outcome.run_id, "could not store the run's steps");
        }
        let pending = self.store_pending_actions(scope, conversation, outcome, now).await;
        let usage = usage_json(outcome);
        let error = outcome.error.as_ref().map(|e| format!("{}: {}", e.code, e.message));
        if let Err(e) = store
            .set_run_status(
                scope,
                outcome.run_id,
                store_status(outcome.status),
                Some(&usage),
                error.as_deref(),
                now,
            )
            .await
        {
            tracing::error!(error = %e, run = %outcome.run_id, "could not finish the run");
        }
        let _ = agent;
        pending
    }

    /// Records the actions a paused run waits on (the run row must exist).
    async fn store_pending_actions(
        &self,
        scope: &TenantScope,
        conversation: ConversationId,
        outcome: &RunOutcome,
        now: Millis,
    ) -> Vec<PendingAction> {
        let store = self.store();
        let mut pending = Vec::new();
        if let Some(paused) = &outcome.paused {
            for action in &paused.pending {
                let arguments: Value =
                    serde_json::from_str(&action.arguments).unwrap_or(Value::Null);
                let new = NewPendingAction {
                    run_id: outcome.run_id,
                    conversation_id: Some(conversation),
                    tool_name: action.tool.clone(),
                    arguments: json!({
                        "arguments": arguments,
                        "runtime_action_id": action.id,
                        "tool_call_id": action.tool_call_id,
                        "paused": paused,
                    }),
                };
                match store.create_pending_action(scope, &new, now).await {
                    Ok(a) => pending.push(a),
                    Err(e) => tracing::error!(error = %e, "could not store a pending action"),
                }
            }
        }
        pending
    }

    /// Writes a new run (started by this request) in one batched transaction: its
    /// conversation when the run started it, the run with its final status and usage, its
    /// messages and steps; then its pending actions, if it paused.
    pub(crate) async fn persist_new_run(
        &self,
        scope: TenantScope,
        agent: AgentId,
        conversation: ConversationId,
        write: crate::chat::NewRunWrite,
        outcome: &RunOutcome,
        now: Millis,
    ) -> Vec<PendingAction> {
        let record = store::RunRecord {
            scope,
            new_conversation: write.new_conversation,
            conversation_id: conversation,
            run_id: outcome.run_id,
            agent_id: agent,
            model: write.model,
            status: store_status(outcome.status),
            started_at: write.started_at,
            finished_at: now,
            usage: usage_json(outcome),
            error: outcome.error.as_ref().map(|e| format!("{}: {}", e.code, e.message)),
            messages: {
                let mut m = to_stored(outcome);
                if write.user_message_stored
                    && let Some(i) = m.iter().position(|x| x.role == MessageRole::User)
                {
                    m.remove(i);
                }
                m
            },
            steps: to_steps(&outcome.trace),
        };
        if let Err(e) = self.engine().writer.write(record).await {
            tracing::error!(error = %e, run = %outcome.run_id, "could not store the run");
            return Vec::new();
        }
        if outcome.paused.is_some() {
            self.store_pending_actions(&scope, conversation, outcome, now).await
        } else {
            Vec::new()
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
