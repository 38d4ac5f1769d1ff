//! Assembly of OpenAI-style streamed tool calls.
//!
//! Each `delta.tool_calls[]` item names its call by `index`. The first item of a call normally
//! brings `id`, `type` and `function.name` with empty arguments; later items bring only argument
//! fragments; parallel calls may interleave. Servers differ at the edges (the whole call in one
//! item, a name arriving after the id, no `index` at all, arguments as an object), so the
//! assembler waits for a name before announcing a call and buffers fragments until then.

use std::collections::VecDeque;

use serde_json::Value;

use crate::{LlmError, StreamEvent, ToolCall};

/// Assembles OpenAI's indexed tool-call deltas into start/delta/end events.
#[derive(Debug, Default)]
pub struct ToolCallAssembler {
    /// One slot per call, in order of first appearance; `provider_index` keys them.
    calls: Vec<PartialCall>,
}

#[derive(Debug)]
struct PartialCall {
    provider_index: u64,
    id: Option<String>,
    name: String,
    arguments: String,
    started: bool,
    ended: bool,
}

impl ToolCallAssembler {
    /// Handles one `delta.tool_calls[]` item.
    pub fn push(&mut self, item: &Value, out: &mut VecDeque<Result<StreamEvent, LlmError>>) {
        let id = item.get("id").and_then(Value::as_str).filter(|s| !s.is_empty());
        let provider_index = match item.get("index").and_then(Value::as_u64) {
            Some(i) => i,
            // No index (some servers): a new id opens a new call, otherwise continue the last.
            None => match (id, self.calls.last()) {
                (Some(id), Some(last)) if last.id.as_deref() == Some(id) => last.provider_index,
                (None, Some(last)) => last.provider_index,
                _ => self.calls.len() as u64,
            },
        };
        let slot = match self.calls.iter().position(|c| c.provider_index == provider_index) {
            Some(s) => s,
            None => {
                self.calls.push(PartialCall {
                    provider_index,
                    id: None,
                    name: String::new(),
                    arguments: String::new(),
                    started: false,
                    ended: false,
                });
                self.calls.len() - 1
            }
        };
        let call = &mut self.calls[slot];
        if call.id.is_none() {
            call.id = id.map(str::to_owned);
        }
        let function = item.get("function");
        let fragment = match function.and_then(|f| f.get("arguments")) {
            Some(Value::String(s)) => s.clone(),
            Some(obj @ Value::Object(_)) => obj.to_string(),
            _ => String::new(),
        };
        if !call.started
            && let Some(name) = function.and_then(|f| f.get("name")).and_then(Value::as_str)
        {
            call.name.push_str(name);
        }
        call.arguments.push_str(&fragment);
        if !call.started && !call.name.is_empty() {
            call.started = true;
            let id = call.id.get_or_insert_with(|| format!("call_{slot}")).clone();
            out.push_back(Ok(StreamEvent::ToolCallStart {
                index: slot,
                id,
                name: call.name.clone(),
            }));
            if !call.arguments.is_empty() {
                let arguments = call.arguments.clone();
                out.push_back(Ok(StreamEvent::ToolCallDelta { index: slot, arguments }));
            }
        } else if call.started && !fragment.is_empty() {
            out.push_back(Ok(StreamEvent::ToolCallDelta { index: slot, arguments: fragment }));
        }
    }

    /// Ends every open call (at `finish_reason` or the end of the stream).
    pub fn finish(
        &mut self,
        out: &mut VecDeque<Result<StreamEvent, LlmError>>,
    ) -> Result<(), LlmError> {
        for (index, call) in self.calls.iter_mut().enumerate() {
            if call.ended {
                continue;
            }
            if !call.started {
                return Err(invalid("a streamed tool call never got a name"));
            }
            call.ended = true;
            let arguments = if call.arguments.trim().is_empty() {
                "{}".to_owned()
            } else {
                call.arguments.clone()
            };
            let id = call.id.clone().unwrap_or_default();
            let call = ToolCall { id, name: call.name.clone(), arguments };
            out.push_back(Ok(StreamEvent::ToolCallEnd { index, call }));
        }
        Ok(())
    }

    /// Whether any call was seen.
    pub fn any(&self) -> bool {
        !self.calls.is_empty()
    }
}

fn invalid(detail: &str) -> LlmError {
    LlmError::InvalidResponse { detail: detail.to_owned() }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn run(items: &[Value]) -> Result<Vec<StreamEvent>, LlmError> {
        let mut asm = ToolCallAssembler::default();
        let mut out = VecDeque::new();
        for item in items {
            asm.push(item, &mut out);
        }
        asm.finish(&mut out)?;
        out.into_iter().collect()
    }

    fn ends(events: &[StreamEvent]) -> Vec<ToolCall> {
        events
            .iter()
            .filter_map(|e| match e {
                StreamEvent::ToolCallEnd { call, .. } => Some(call.clone()),
                _ => None,
            })
            .collect()
    }

    fn call(id: &str, name: &str, arguments: &str) -> ToolCall {
        ToolCall { id: id.into(), name: name.into(), arguments: arguments.into() }
    }

    #[test]
    fn a_name_arriving_after_the_id_delays_the_start_and_keeps_early_fragments() {
        let ev = run(&[
            json!({"index": 0, "id": "c1", "function": {"arguments": "{\"a\""}}),
            json!({"index": 0, "function": {"name": "f", "arguments": ":1}"}}),
        ])
        .unwrap();
        assert_eq!(
            ev[0],
            StreamEvent::ToolCallStart { index: 0, id: "c1".into(), name: "f".into() }
        );
        assert_eq!(
            ev[1],
            StreamEvent::ToolCallDelta { index: 0, arguments: "{\"a\":1}".into() },
            "buffered and new fragment announced together"
        );
        assert_eq!(ends(&ev), vec![call("c1", "f", "{\"a\":1}")]);
    }

    #[test]
    fn a_whole_call_in_one_item_and_object_arguments_are_accepted() {
        let ev = run(&[
            json!({"index": 0, "id": "c1", "function": {"name": "f", "arguments": "{\"x\":2}"}}),
            json!({"index": 1, "id": "c2", "function": {"name": "g", "arguments": {"y": 3}}}),
        ])
        .unwrap();
        assert_eq!(ends(&ev), vec![call("c1", "f", "{\"x\":2}"), call("c2", "g", "{\"y\":3}")]);
    }

    #[test]
    fn items_without_index_are_told_apart_by_id() {
        let ev = run(&[
            json!({"id": "c1", "function": {"name": "f", "arguments": "{"}}),
            json!({"function": {"arguments": "}"}}),
            json!({"id": "c2", "function": {"name": "g", "arguments": ""}}),
        ])
        .unwrap();
        assert_eq!(ends(&ev), vec![call("c1", "f", "{}"), call("c2", "g", "{}")]);
    }

    #[test]
    fn missing_ids_are_generated_and_a_nameless_call_is_invalid() {
        let ev = run(&[json!({"index": 3, "function": {"name": "f"}})]).unwrap();
        assert_eq!(ends(&ev), vec![call("call_0", "f", "{}")]);
        let err = run(&[json!({"index": 0, "id": "c", "function": {"arguments": "{}"}})]);
        assert!(matches!(err, Err(LlmError::InvalidResponse { .. })));
    }

    #[test]
    fn finish_twice_ends_each_call_once() {
        let mut asm = ToolCallAssembler::default();
        let mut out = VecDeque::new();
        asm.push(&json!({"index": 0, "id": "c", "function": {"name": "f"}}), &mut out);
        asm.finish(&mut out).unwrap();
        asm.finish(&mut out).unwrap();
        let ends = out.iter().filter(|e| matches!(e, Ok(StreamEvent::ToolCallEnd { .. }))).count();
        assert_eq!(ends, 1);
    }
}
