//! Tool execution for one model turn: validation, confirmation, parallel calls with
//! per-call timeouts, citations, and one result message per executed call, in call order.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use futures::StreamExt;
use futures::stream::FuturesUnordered;
use llm::{Message, ToolCall};

use super::{CallResult, Run, answers, argument_error_text, ms, record};
use crate::events::{PendingAction, RunEvent, ToolCallRecord, ToolStatus};
use crate::tools::ToolOutput;

impl Run {
    /// Runs `calls` (except those needing confirmation and not in `approved`, which become
    /// pending actions) and appends each result to `conv` and to the messages to persist.
    pub(super) async fn execute_calls(
        &mut self,
        calls: &[ToolCall],
        conv: &mut Vec<Message>,
        approved: &HashSet<String>,
    ) -> (Vec<PendingAction>, Vec<CallResult>) {
        let mut pending = Vec::new();
        let mut results: Vec<Option<CallResult>> = calls.iter().map(|_| None).collect();
        let mut running = FuturesUnordered::new();
        let timeout = self.rt.settings.tool_timeout;
        for (i, call) in calls.iter().enumerate() {
            let validated = self.registry.validate(&call.name, &call.arguments);
            let args = match validated {
                Ok(args) => args,
                Err(e) => {
                    let (content, status) = argument_error_text(&e, &self.registry);
                    self.emit(RunEvent::ToolStarted {
                        call_id: call.id.clone(),
                        tool: call.name.clone(),
                        arguments: call.arguments.clone(),
                    })
                    .await;
                    self.complete(call, status, &content, 0).await;
                    results[i] = Some(CallResult {
                        call_id: call.id.clone(),
                        content,
                        status,
                        cited: Vec::new(),
                    });
                    continue;
                }
            };
            if self.needs_confirmation(&call.name) && !approved.contains(&call.id) {
                let action = PendingAction {
                    id: format!("act_{}", uuid::Uuid::now_v7().simple()),
                    tool_call_id: call.id.clone(),
                    tool: call.name.clone(),
                    arguments: args.to_string(),
                };
                self.emit(RunEvent::ActionPending(action.clone())).await;
                record(
                    self,
                    ToolCallRecord {
                        call_id: call.id.clone(),
                        tool: call.name.clone(),
                        arguments: call.arguments.clone(),
                        status: ToolStatus::AwaitingConfirmation,
                        result_summary: format!("waiting for the user to approve ({})", action.id),
                        latency_ms: 0,
                    },
                );
                pending.push(action);
                continue;
            }
            self.emit(RunEvent::ToolStarted {
                call_id: call.id.clone(),
                tool: call.name.clone(),
                arguments: call.arguments.clone(),
            })
            .await;
            let tool = self.registry.get(&call.name).expect("validated").tool.clone();
            let ctx = self.ctx.clone();
            running.push(async move {
                let started = Instant::now();
                let result = tokio::time::timeout(timeout, tool.call(args, &ctx)).await;
                (i, started, result)
            });
        }
        while let Some((i, started, result)) = running.next().await {
            let call = &calls[i];
            let (content, status, cited) = match result {
                Err(_) => (timeout_text(timeout), ToolStatus::Timeout, Vec::new()),
                Ok(Err(msg)) => (format!("Error: {msg}"), ToolStatus::Error, Vec::new()),
                Ok(Ok(ToolOutput::Text(text))) => (text, ToolStatus::Ok, Vec::new()),
                Ok(Ok(ToolOutput::Hits(hits))) => {
                    let cited = self.cite(hits).await;
                    (answers::hits_for_model(&cited), ToolStatus::Ok, cited)
                }
            };
            self.complete(call, status, &content, ms(started)).await;
            results[i] = Some(CallResult { call_id: call.id.clone(), content, status, cited });
        }
        let results: Vec<CallResult> = results.into_iter().flatten().collect();
        for r in &results {
            let msg = Message::tool_result(r.call_id.clone(), r.content.clone());
            conv.push(msg.clone());
            self.messages.push(msg);
        }
        (pending, results)
    }

    /// Whether a call of `tool` waits for the user's approval: named by the agent, or
    /// side-effecting on an agent that confirms side effects.
    fn needs_confirmation(&self, tool: &str) -> bool {
        self.agent.requires_confirmation.contains(tool)
            || (self.agent.confirm_side_effects
                && self.registry.get(tool).is_some_and(|t| t.tool.side_effect()))
    }

    /// Reports a finished call: event, trace step, usage.
    pub(super) async fn complete(
        &mut self,
        call: &ToolCall,
        status: ToolStatus,
        content: &str,
        latency_ms: u64,
    ) {
        let summary = answers::summary(content);
        self.emit(RunEvent::ToolCompleted {
            call_id: call.id.clone(),
            tool: call.name.clone(),
            ok: status == ToolStatus::Ok,
            summary: summary.clone(),
            latency_ms,
        })
        .await;
        record(
            self,
            ToolCallRecord {
                call_id: call.id.clone(),
                tool: call.name.clone(),
                arguments: call.arguments.clone(),
                status,
                result_summary: summary,
                latency_ms,
            },
        );
    }
}

fn timeout_text(limit: Duration) -> String {
    format!("Error: the tool did not answer within {} ms and was stopped.", limit.as_millis())
}
