//! The streamed-answer type and the helper that collects a stream into a full response.

use std::pin::Pin;

use futures::{Stream, StreamExt};

use crate::{ChatResponse, FinishReason, LlmError, StreamEvent, ToolCall};

/// A streamed answer: events in order, ending with `Finish` or with one `Err`.
pub type ChatStream = Pin<Box<dyn Stream<Item = Result<StreamEvent, LlmError>> + Send>>;

/// Reads a stream to its end and assembles the full response (text, tool calls in index order,
/// usage, finish reason). Fails with the stream's error, or `StreamInterrupted` when the stream
/// ended without `Finish`.
pub async fn collect_stream(mut stream: ChatStream) -> Result<ChatResponse, LlmError> {
    let mut content = String::new();
    let mut calls: Vec<(usize, ToolCall)> = Vec::new();
    let mut usage = None;
    while let Some(event) = stream.next().await {
        match event? {
            StreamEvent::TextDelta(text) => content.push_str(&text),
            StreamEvent::ToolCallStart { .. } | StreamEvent::ToolCallDelta { .. } => {}
            StreamEvent::ToolCallEnd { index, call } => calls.push((index, call)),
            StreamEvent::Usage(u) => usage = Some(u),
            StreamEvent::Finish { reason, model } => {
                calls.sort_by_key(|(i, _)| *i);
                let tool_calls: Vec<ToolCall> = calls.into_iter().map(|(_, c)| c).collect();
                // Some servers say "stop" while calling tools; the calls are what matter.
                let finish_reason = if !tool_calls.is_empty() && reason == FinishReason::Stop {
                    FinishReason::ToolCalls
                } else {
                    reason
                };
                return Ok(ChatResponse { model, content, tool_calls, finish_reason, usage });
            }
        }
    }
    Err(LlmError::StreamInterrupted { detail: "the answer ended without finishing".into() })
}
