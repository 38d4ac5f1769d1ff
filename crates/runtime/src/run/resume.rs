//! Continuing a run paused on pending actions: approved calls run, rejected ones are answered
//! "the user declined", and the tool loop goes on.

use std::collections::HashSet;

use llm::{Message, ToolCall};

use super::{CallResult, End, Run, answers};
use crate::events::{StepKind, ToolStatus};
use crate::prompt::repair_history;
use crate::runtime::{ResumeInput, decisions_by_id};

/// What the model is told about a rejected action.
pub const DECLINED: &str =
    "The user declined this action, so it was not carried out. Do not try it again unless asked.";

impl Run {
    pub(super) async fn resume(&mut self, input: ResumeInput) -> End {
        let paused = input.paused;
        self.citations = paused.citations;
        self.iterations = paused.iterations;
        let open: HashSet<String> = paused.pending.iter().map(|a| a.tool_call_id.clone()).collect();
        let history = repair_history(&input.history, &open);
        let decisions = decisions_by_id(&input.decisions);
        let (approved, rejected): (Vec<_>, Vec<_>) = paused
            .pending
            .iter()
            .partition(|a| decisions.get(a.id.as_str()).copied().unwrap_or(false));
        self.step(StepKind::Resumed {
            approved: approved.iter().map(|a| a.id.clone()).collect(),
            rejected: rejected.iter().map(|a| a.id.clone()).collect(),
        });
        // The paused turn (the assistant message with the pending calls, and what followed)
        // is sent whole: trimming it would orphan the results added below.
        let split = history
            .iter()
            .rposition(|m| match m {
                Message::Assistant { tool_calls, .. } => {
                    tool_calls.iter().any(|c| open.contains(&c.id))
                }
                _ => false,
            })
            .unwrap_or(history.len());
        let base = self.agent.system_prompt.clone();
        let mut conv = self.conversation(&base, &history[..split], None);
        conv.extend_from_slice(&history[split..]);
        let mut results: Vec<CallResult> = Vec::new();
        for action in &rejected {
            let call = ToolCall {
                id: action.tool_call_id.clone(),
                name: action.tool.clone(),
                arguments: action.arguments.clone(),
            };
            self.complete(&call, ToolStatus::Rejected, DECLINED, 0).await;
            let msg = Message::tool_result(call.id.clone(), DECLINED);
            conv.push(msg.clone());
            self.messages.push(msg);
            results.push(CallResult {
                call_id: call.id,
                content: DECLINED.into(),
                status: ToolStatus::Rejected,
                cited: Vec::new(),
            });
        }
        let calls: Vec<ToolCall> = approved
            .iter()
            .map(|a| ToolCall {
                id: a.tool_call_id.clone(),
                name: a.tool.clone(),
                arguments: a.arguments.clone(),
            })
            .collect();
        let ids: HashSet<String> = calls.iter().map(|c| c.id.clone()).collect();
        let (_, executed) = self.execute_calls(&calls, &mut conv, &ids).await;
        results.extend(executed);
        // A paused routed skill without `fallback_to_llm` answers with its result, as it would
        // have without the pause.
        let routed_only = open.iter().all(|id| id.starts_with(super::ROUTED_CALL_PREFIX))
            && !self.agent.routing.fallback_to_llm;
        if self.rt.model.is_none() || routed_only {
            let no_model = self.rt.model.is_none();
            let text = results
                .iter()
                .map(|r| {
                    answers::from_tool_result(
                        &r.status,
                        &r.content,
                        &r.cited,
                        no_model,
                        self.rt.settings.excerpt_chars,
                    )
                })
                .collect::<Vec<_>>()
                .join("\n\n");
            return self.answer(text).await;
        }
        self.tool_loop(conv).await
    }
}
