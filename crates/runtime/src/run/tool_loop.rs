//! The tool loop: ask the model (streaming deltas through as they arrive), run the tools it
//! calls, feed the results back, until it answers, a call needs confirmation, the iteration
//! cap is hit, the model fails or the run is cancelled.

use std::collections::HashSet;
use std::time::Instant;

use futures::StreamExt;
use llm::{ChatRequest, LlmError, Message, StreamEvent, ToolCall};

use super::{End, Run, Turn, llm_error, ms, request};
use crate::events::{RunError, RunEvent, StepKind};

impl Run {
    pub(super) async fn tool_loop(&mut self, mut conv: Vec<Message>) -> End {
        loop {
            if self.cancel.is_cancelled() {
                return End::Cancelled("cancelled before a model call".into());
            }
            let cap = self.rt.settings.max_iterations;
            if self.iterations >= cap {
                self.step(StepKind::IterationCap { cap });
                let text = format!(
                    "I stopped after {cap} steps without reaching a final answer. \
                     Please try asking in a simpler or more specific way."
                );
                return self.answer(text).await;
            }
            self.iterations += 1;
            let req = request(self, conv.clone());
            match self.model_turn(&req).await {
                Turn::Failed(e) => return End::Failed(e),
                Turn::Cancelled(partial) => {
                    // Keep what the user already saw; no tool call survives without a result.
                    if !partial.is_empty() {
                        self.messages.push(Message::assistant(partial.clone()));
                        self.text = partial;
                    }
                    return End::Cancelled("cancelled while the model was answering".into());
                }
                Turn::Done { text, calls } if calls.is_empty() => {
                    self.messages.push(Message::assistant(text.clone()));
                    self.text = text;
                    return End::Completed;
                }
                Turn::Done { text, calls } => {
                    let said = (!text.is_empty()).then_some(text);
                    let turn = Message::assistant_tool_calls(said, calls.clone());
                    conv.push(turn.clone());
                    self.messages.push(turn);
                    let (pending, _) = self.execute_calls(&calls, &mut conv, &HashSet::new()).await;
                    if !pending.is_empty() {
                        return End::Awaiting(pending);
                    }
                }
            }
        }
    }

    /// One streamed model call; text deltas go out as they arrive.
    async fn model_turn(&mut self, req: &ChatRequest) -> Turn {
        let model = self.rt.model.clone().expect("the tool loop runs only with a model");
        let started = Instant::now();
        let mut name = req.model.clone().unwrap_or_else(|| model.model().to_owned());
        let opened = tokio::select! {
            biased;
            () = self.cancel.cancelled() => return Turn::Cancelled(String::new()),
            r = model.chat_stream(req) => r,
        };
        let mut stream = match opened {
            Ok(s) => s,
            Err(e) => return self.model_failed(name, started, None, &e),
        };
        let mut text = String::new();
        let mut calls: Vec<(usize, ToolCall)> = Vec::new();
        let mut usage = None;
        let mut first_token = None;
        loop {
            let next = tokio::select! {
                biased;
                () = self.cancel.cancelled() => {
                    self.model_step(name, started, first_token, usage, 0, None);
                    return Turn::Cancelled(text);
                }
                n = stream.next() => n,
            };
            match next {
                Some(Ok(StreamEvent::TextDelta(delta))) => {
                    first_token.get_or_insert_with(|| ms(started));
                    text.push_str(&delta);
                    self.emit(RunEvent::MessageDelta { delta }).await;
                }
                Some(Ok(StreamEvent::ToolCallEnd { index, call })) => calls.push((index, call)),
                Some(Ok(StreamEvent::Usage(u))) => usage = Some(u),
                Some(Ok(StreamEvent::Finish { model, .. })) => {
                    if !model.is_empty() {
                        name = model;
                    }
                    break;
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return self.model_failed(name, started, first_token, &e),
                None => {
                    let e = LlmError::StreamInterrupted {
                        detail: "the answer ended without finishing".into(),
                    };
                    return self.model_failed(name, started, first_token, &e);
                }
            }
        }
        calls.sort_by_key(|(i, _)| *i);
        let calls: Vec<ToolCall> = calls.into_iter().map(|(_, c)| c).collect();
        self.model_name = Some(name.clone());
        self.model_step(name, started, first_token, usage, calls.len(), None);
        Turn::Done { text, calls }
    }

    fn model_failed(
        &mut self,
        name: String,
        started: Instant,
        first_token: Option<u64>,
        e: &LlmError,
    ) -> Turn {
        let err = llm_error(e);
        self.model_step(name, started, first_token, None, 0, Some(err.clone()));
        Turn::Failed(err)
    }

    fn model_step(
        &mut self,
        model: String,
        started: Instant,
        first_token_ms: Option<u64>,
        usage: Option<llm::Usage>,
        tool_calls: usize,
        error: Option<RunError>,
    ) {
        let u = usage.unwrap_or_default();
        self.usage.prompt_tokens += u.prompt_tokens;
        self.usage.completion_tokens += u.completion_tokens;
        self.usage.model_calls += 1;
        self.step(StepKind::ModelCall {
            model,
            prompt_tokens: u.prompt_tokens,
            completion_tokens: u.completion_tokens,
            latency_ms: ms(started),
            first_token_ms,
            tool_calls,
            error,
        });
    }
}
