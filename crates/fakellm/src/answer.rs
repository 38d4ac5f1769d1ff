//! Turns a request and the next scripted [`Reply`] (or the default echo behaviour) into a
//! protocol-neutral [`Plan`] that the OpenAI and Anthropic renderers put on the wire.

use std::time::Duration;

use serde_json::{Value, json};

use crate::script::{Reply, ReplyKind, split};

/// What the request said, read from either protocol.
#[derive(Debug, Default)]
pub(crate) struct Conversation {
    pub model: String,
    pub stream: bool,
    pub include_usage: bool,
    pub last: Last,
    /// (name, JSON schema) of each offered tool.
    pub tools: Vec<(String, Value)>,
    pub prompt_chars: usize,
}

/// The last turn of the conversation.
#[derive(Debug, Default)]
pub(crate) enum Last {
    #[default]
    Nothing,
    User(String),
    ToolResult(String),
}

#[derive(Debug)]
pub(crate) struct PlannedCall {
    pub id: Option<String>,
    pub name: String,
    pub arguments: String,
    pub fragments: Vec<String>,
}

#[derive(Debug)]
pub(crate) struct Answer {
    pub text: Vec<String>,
    pub calls: Vec<PlannedCall>,
    pub interleave: bool,
    pub usage: (u32, u32),
    pub model: String,
    /// Cut the connection after this many text deltas.
    pub cut_after: Option<usize>,
    pub chunk_delay: Duration,
}

impl Answer {
    pub fn full_text(&self) -> String {
        self.text.concat()
    }
}

#[derive(Debug)]
pub(crate) enum Plan {
    Answer(Answer),
    Error { status: u16, message: String, retry_after: Option<u64> },
    Malformed,
}

fn estimate(chars: usize) -> u32 {
    chars.div_ceil(4).max(1).min(u32::MAX as usize) as u32
}

/// Plans the answer to `conv`: the scripted reply when there is one, else the echo behaviour.
pub(crate) fn plan(conv: &Conversation, reply: Option<Reply>) -> (Plan, Duration) {
    let reply = reply.unwrap_or_else(|| echo(conv));
    let model = reply.model.clone().unwrap_or_else(|| conv.model.clone());
    let (text, calls, interleave, cut_after) = match reply.kind {
        ReplyKind::Error { status, message, retry_after } => {
            return (Plan::Error { status, message, retry_after }, reply.delay);
        }
        ReplyKind::Malformed => return (Plan::Malformed, reply.delay),
        ReplyKind::Text(t) => (t, Vec::new(), false, None),
        ReplyKind::Cut { text, after_chunks } => (text, Vec::new(), false, Some(after_chunks)),
        ReplyKind::ToolCalls { text, calls, interleave } => {
            (text.unwrap_or_default(), calls, interleave, None)
        }
    };
    let calls: Vec<PlannedCall> = calls
        .into_iter()
        .map(|c| PlannedCall {
            fragments: split(&c.arguments, reply.chunks),
            id: c.id,
            name: c.name,
            arguments: c.arguments,
        })
        .collect();
    let out_chars = text.chars().count()
        + calls.iter().map(|c| c.arguments.len() + c.name.len()).sum::<usize>();
    let usage = reply.usage.unwrap_or((estimate(conv.prompt_chars), estimate(out_chars)));
    let answer = Answer {
        text: split(&text, reply.chunks),
        calls,
        interleave,
        usage,
        model,
        cut_after,
        chunk_delay: reply.chunk_delay,
    };
    (Plan::Answer(answer), reply.delay)
}

/// The default behaviour with an empty script, deterministic so tests can assert on it:
/// - after a tool result: `Tool result: <content>`;
/// - when tools are offered and the last user message names one: a call of that tool, with each
///   required argument filled from the message (strings get the message text);
/// - otherwise `Echo: <last user message>`.
pub(crate) fn echo(conv: &Conversation) -> Reply {
    match &conv.last {
        Last::ToolResult(content) => Reply::text(format!("Tool result: {content}")),
        Last::User(text) => {
            let named = conv.tools.iter().find(|(name, _)| mentions(text, name));
            match named {
                Some((name, schema)) => {
                    Reply::tool_call(name.clone(), arguments_for(schema, text).to_string())
                }
                None => Reply::text(format!("Echo: {text}")),
            }
        }
        Last::Nothing => Reply::text("Echo: "),
    }
}

/// Whether `text` names the tool as a whole word.
fn mentions(text: &str, name: &str) -> bool {
    text.split(|c: char| !(c.is_alphanumeric() || c == '_' || c == '-')).any(|w| w == name)
}

/// Arguments satisfying the schema's required properties, derived from the message.
fn arguments_for(schema: &Value, text: &str) -> Value {
    let mut args = serde_json::Map::new();
    let props = schema.get("properties");
    for key in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
        let Some(key) = key.as_str() else { continue };
        let kind =
            props.and_then(|p| p.get(key)).and_then(|p| p.get("type")).and_then(Value::as_str);
        let value = match kind {
            Some("integer") | Some("number") => json!(1),
            Some("boolean") => json!(true),
            Some("array") => json!([]),
            Some("object") => json!({}),
            _ => json!(text),
        };
        args.insert(key.to_owned(), value);
    }
    Value::Object(args)
}

/// Text of an OpenAI `content` (string or parts) or an Anthropic one (string or blocks).
pub(crate) fn content_text(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| match p.get("type").and_then(Value::as_str) {
                Some("text") => p.get("text").and_then(Value::as_str).map(str::to_owned),
                Some("tool_result") => Some(content_text(p.get("content"))),
                _ => None,
            })
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

/// Reads the neutral conversation from an OpenAI Chat Completions request body.
pub(crate) fn from_openai(body: &Value) -> Conversation {
    let mut conv = Conversation { model: str_at(body, "model"), ..Conversation::default() };
    conv.stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    conv.include_usage = body
        .get("stream_options")
        .and_then(|o| o.get("include_usage"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    for m in body.get("messages").and_then(Value::as_array).into_iter().flatten() {
        let text = content_text(m.get("content"));
        conv.prompt_chars += text.chars().count();
        conv.last = match m.get("role").and_then(Value::as_str) {
            Some("user") => Last::User(text),
            Some("tool") => Last::ToolResult(text),
            _ => Last::Nothing,
        };
    }
    for t in body.get("tools").and_then(Value::as_array).into_iter().flatten() {
        let f = t.get("function").unwrap_or(t);
        conv.tools.push((str_at(f, "name"), f.get("parameters").cloned().unwrap_or(Value::Null)));
    }
    conv
}

/// Reads the neutral conversation from an Anthropic Messages request body.
pub(crate) fn from_anthropic(body: &Value) -> Conversation {
    let mut conv = Conversation { model: str_at(body, "model"), ..Conversation::default() };
    conv.stream = body.get("stream").and_then(Value::as_bool).unwrap_or(false);
    conv.include_usage = true;
    conv.prompt_chars = content_text(body.get("system")).chars().count();
    for m in body.get("messages").and_then(Value::as_array).into_iter().flatten() {
        let content = m.get("content");
        let text = content_text(content);
        conv.prompt_chars += text.chars().count();
        let is_tool_result = content.and_then(Value::as_array).is_some_and(|blocks| {
            blocks.iter().any(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
        });
        conv.last = match m.get("role").and_then(Value::as_str) {
            Some("user") if is_tool_result => Last::ToolResult(text),
            Some("user") => Last::User(text),
            _ => Last::Nothing,
        };
    }
    for t in body.get("tools").and_then(Value::as_array).into_iter().flatten() {
        conv.tools.push((str_at(t, "name"), t.get("input_schema").cloned().unwrap_or(Value::Null)));
    }
    conv
}

fn str_at(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or("").to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_of(body: Value) -> Answer {
        match plan(&from_openai(&body), None).0 {
            Plan::Answer(a) => a,
            other => panic!("expected an answer, got {other:?}"),
        }
    }

    #[test]
    fn echo_repeats_the_last_user_message() {
        let a = plan_of(
            json!({"model": "m", "messages": [{"role": "user", "content": "hello there"}]}),
        );
        assert_eq!(a.full_text(), "Echo: hello there");
        assert!(a.calls.is_empty());
        assert_eq!(a.model, "m");
    }

    #[test]
    fn echo_calls_a_tool_the_user_names_with_required_arguments_filled() {
        let a = plan_of(json!({
            "model": "m",
            "messages": [{"role": "user", "content": "please search_docs for refunds"}],
            "tools": [{"type": "function", "function": {"name": "search_docs", "parameters": {
                "type": "object", "required": ["query", "limit"],
                "properties": {"query": {"type": "string"}, "limit": {"type": "integer"}}}}}]
        }));
        assert_eq!(a.calls.len(), 1);
        assert_eq!(a.calls[0].name, "search_docs");
        let args: Value = serde_json::from_str(&a.calls[0].arguments).unwrap();
        assert_eq!(args, json!({"query": "please search_docs for refunds", "limit": 1}));
    }

    #[test]
    fn echo_reports_a_tool_result_back() {
        let a = plan_of(json!({"model": "m", "messages": [
            {"role": "user", "content": "x"},
            {"role": "tool", "tool_call_id": "c", "content": "42 results"}]}));
        assert_eq!(a.full_text(), "Tool result: 42 results");
    }
}
