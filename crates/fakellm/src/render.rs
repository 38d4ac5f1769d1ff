//! Puts a [`Plan`] on the wire in the caller's protocol: JSON bodies, or SSE frames exactly as
//! the vendors frame them (`data: {...}\n\n` and `data: [DONE]` for OpenAI; `event:` + `data:`
//! pairs for Anthropic).

use std::time::Duration;

use bytes::Bytes;
use serde_json::{Value, json};

use crate::answer::{Answer, Plan};

/// The HTTP answer to send.
#[derive(Debug)]
pub(crate) struct Wire {
    pub status: u16,
    pub retry_after: Option<u64>,
    pub content_type: &'static str,
    /// Body pieces, sent with `chunk_delay` between them.
    pub frames: Vec<Bytes>,
    /// Cut the connection after the frames instead of ending the body.
    pub abort: bool,
    pub chunk_delay: Duration,
}

impl Wire {
    fn json(status: u16, body: Value) -> Self {
        Self::raw(status, "application/json", body.to_string().into())
    }
    fn raw(status: u16, content_type: &'static str, body: Bytes) -> Self {
        Self {
            status,
            retry_after: None,
            content_type,
            frames: vec![body],
            abort: false,
            chunk_delay: Duration::ZERO,
        }
    }
}

/// Which vendor's shapes to speak.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    OpenAi,
    Anthropic,
}

fn sse(data: &Value) -> Bytes {
    format!("data: {data}\n\n").into()
}

fn sse_named(event: &str, data: &Value) -> Bytes {
    format!("event: {event}\ndata: {data}\n\n").into()
}

/// Renders the plan; `seq` numbers responses for ids.
pub(crate) fn render(
    protocol: Protocol,
    plan: Plan,
    stream: bool,
    include_usage: bool,
    seq: u64,
) -> Wire {
    match plan {
        Plan::Error { status, message, retry_after } => {
            let body = match protocol {
                Protocol::OpenAi => {
                    json!({"error": {"message": message, "type": error_type(status), "code": null}})
                }
                Protocol::Anthropic => {
                    json!({"type": "error", "error": {"type": error_type(status), "message": message}})
                }
            };
            Wire { retry_after, ..Wire::json(status, body) }
        }
        Plan::Malformed if stream => Wire {
            frames: vec![Bytes::from_static(b"data: {\"choices\": [{\"delta\": nope}\n\n")],
            ..Wire::raw(200, "text/event-stream", Bytes::new())
        },
        Plan::Malformed => Wire::raw(
            200,
            "application/json",
            Bytes::from_static(b"{\"id\": \"x\", \"choices\": ["),
        ),
        Plan::Answer(a) => match (protocol, stream) {
            (Protocol::OpenAi, false) => openai_json(&a, seq),
            (Protocol::OpenAi, true) => openai_stream(&a, include_usage, seq),
            (Protocol::Anthropic, false) => anthropic_json(&a, seq),
            (Protocol::Anthropic, true) => anthropic_stream(&a, seq),
        },
    }
}

fn error_type(status: u16) -> &'static str {
    match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        529 => "overloaded_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}

fn call_id(protocol: Protocol, given: &Option<String>, seq: u64, i: usize) -> String {
    given.clone().unwrap_or_else(|| match protocol {
        Protocol::OpenAi => format!("call_{seq}_{i}"),
        Protocol::Anthropic => format!("toolu_{seq}_{i}"),
    })
}

fn openai_finish(a: &Answer) -> &'static str {
    if a.calls.is_empty() { "stop" } else { "tool_calls" }
}

fn openai_usage(a: &Answer) -> Value {
    let (p, c) = a.usage;
    json!({"prompt_tokens": p, "completion_tokens": c, "total_tokens": p + c})
}

/// A cut plan sends a prefix of its frames and then aborts the connection.
fn cut(mut wire: Wire, a: &Answer, header_frames: usize) -> Wire {
    if let Some(n) = a.cut_after {
        wire.frames.truncate(header_frames + n);
        wire.abort = true;
    }
    wire
}

fn openai_json(a: &Answer, seq: u64) -> Wire {
    let calls: Vec<Value> = a
        .calls
        .iter()
        .enumerate()
        .map(|(i, c)| {
            json!({"id": call_id(Protocol::OpenAi, &c.id, seq, i), "type": "function",
                             "function": {"name": c.name, "arguments": c.arguments}})
        })
        .collect();
    let text = a.full_text();
    let mut message = json!({"role": "assistant", "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { json!(text) }});
    if !calls.is_empty() {
        message["tool_calls"] = json!(calls);
    }
    let body = json!({
        "id": format!("chatcmpl-{seq}"), "object": "chat.completion", "created": 1_700_000_000u64,
        "model": a.model,
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": openai_finish(a)}],
        "usage": openai_usage(a),
    });
    let mut wire = Wire::json(200, body);
    if a.cut_after.is_some() {
        // A non-streamed answer cut mid-way: half a body, then the connection drops.
        let full = wire.frames.remove(0);
        wire.frames.push(full.slice(..full.len() / 2));
        wire.abort = true;
    }
    wire
}

fn openai_stream(a: &Answer, include_usage: bool, seq: u64) -> Wire {
    let id = format!("chatcmpl-{seq}");
    let chunk = |delta: Value, finish: Value| {
        sse(&json!({"id": id, "object": "chat.completion.chunk", "created": 1_700_000_000u64,
                    "model": a.model, "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]}))
    };
    let mut frames = vec![chunk(json!({"role": "assistant", "content": ""}), Value::Null)];
    for t in &a.text {
        frames.push(chunk(json!({"content": t}), Value::Null));
    }
    let start = |i: usize| {
        let c = &a.calls[i];
        chunk(
            json!({"tool_calls": [{"index": i, "id": call_id(Protocol::OpenAi, &c.id, seq, i), "type": "function",
                                   "function": {"name": c.name, "arguments": ""}}]}),
            Value::Null,
        )
    };
    let fragment = |i: usize, f: &str| {
        chunk(json!({"tool_calls": [{"index": i, "function": {"arguments": f}}]}), Value::Null)
    };
    if a.interleave {
        for i in 0..a.calls.len() {
            frames.push(start(i));
        }
        let longest = a.calls.iter().map(|c| c.fragments.len()).max().unwrap_or(0);
        for k in 0..longest {
            for (i, c) in a.calls.iter().enumerate() {
                if let Some(f) = c.fragments.get(k) {
                    frames.push(fragment(i, f));
                }
            }
        }
    } else {
        for (i, c) in a.calls.iter().enumerate() {
            frames.push(start(i));
            for f in &c.fragments {
                frames.push(fragment(i, f));
            }
        }
    }
    frames.push(chunk(json!({}), json!(openai_finish(a))));
    if include_usage {
        frames.push(sse(
            &json!({"id": id, "object": "chat.completion.chunk", "created": 1_700_000_000u64,
                                "model": a.model, "choices": [], "usage": openai_usage(a)}),
        ));
    }
    frames.push(Bytes::from_static(b"data: [DONE]\n\n"));
    let wire = Wire {
        frames,
        chunk_delay: a.chunk_delay,
        ..Wire::raw(200, "text/event-stream", Bytes::new())
    };
    cut(wire, a, 1)
}

fn anthropic_stop(a: &Answer) -> &'static str {
    if a.calls.is_empty() { "end_turn" } else { "tool_use" }
}

fn anthropic_json(a: &Answer, seq: u64) -> Wire {
    let mut content = Vec::new();
    let text = a.full_text();
    if !text.is_empty() {
        content.push(json!({"type": "text", "text": text}));
    }
    for (i, c) in a.calls.iter().enumerate() {
        let input: Value = serde_json::from_str(&c.arguments).unwrap_or_else(|_| json!({}));
        content.push(json!({"type": "tool_use", "id": call_id(Protocol::Anthropic, &c.id, seq, i), "name": c.name, "input": input}));
    }
    let body = json!({
        "id": format!("msg_{seq}"), "type": "message", "role": "assistant", "model": a.model,
        "content": content, "stop_reason": anthropic_stop(a), "stop_sequence": null,
        "usage": {"input_tokens": a.usage.0, "output_tokens": a.usage.1},
    });
    let mut wire = Wire::json(200, body);
    if a.cut_after.is_some() {
        let full = wire.frames.remove(0);
        wire.frames.push(full.slice(..full.len() / 2));
        wire.abort = true;
    }
    wire
}

fn anthropic_stream(a: &Answer, seq: u64) -> Wire {
    let mut frames = vec![sse_named(
        "message_start",
        &json!({"type": "message_start", "message": {
            "id": format!("msg_{seq}"), "type": "message", "role": "assistant", "content": [], "model": a.model,
            "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": a.usage.0, "output_tokens": 1}}}),
    )];
    let mut block = 0usize;
    if !a.text.is_empty() {
        frames.push(sse_named("content_block_start", &json!({"type": "content_block_start", "index": block, "content_block": {"type": "text", "text": ""}})));
        frames.push(sse_named("ping", &json!({"type": "ping"})));
        for t in &a.text {
            frames.push(sse_named("content_block_delta", &json!({"type": "content_block_delta", "index": block, "delta": {"type": "text_delta", "text": t}})));
        }
        frames.push(sse_named(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": block}),
        ));
        block += 1;
    }
    for (i, c) in a.calls.iter().enumerate() {
        frames.push(sse_named("content_block_start", &json!({"type": "content_block_start", "index": block,
            "content_block": {"type": "tool_use", "id": call_id(Protocol::Anthropic, &c.id, seq, i), "name": c.name, "input": {}}})));
        for f in &c.fragments {
            frames.push(sse_named("content_block_delta", &json!({"type": "content_block_delta", "index": block, "delta": {"type": "input_json_delta", "partial_json": f}})));
        }
        frames.push(sse_named(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": block}),
        ));
        block += 1;
    }
    frames.push(sse_named("message_delta", &json!({"type": "message_delta",
        "delta": {"stop_reason": anthropic_stop(a), "stop_sequence": null}, "usage": {"output_tokens": a.usage.1}})));
    frames.push(sse_named("message_stop", &json!({"type": "message_stop"})));
    let wire = Wire {
        frames,
        chunk_delay: a.chunk_delay,
        ..Wire::raw(200, "text/event-stream", Bytes::new())
    };
    // Header frames before the first text delta: message_start, content_block_start, ping.
    cut(wire, a, 3)
}
