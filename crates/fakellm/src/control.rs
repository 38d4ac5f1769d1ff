//! The control API, for scripting a fake that runs in another process (the `fakellm` binary
//! behind a browser or Python test):
//!
//! - `POST /_fakellm/replies` with a JSON array of [`ReplySpec`]s appends them to the script;
//! - `GET /_fakellm/requests` returns the recorded requests (`[{path, headers, body}]`);
//! - `POST /_fakellm/reset` empties the script and the record.
//!
//! A reply spec is one of `{"text": "…"}`, `{"tool_calls": [{"name", "arguments", "id"?}]}`,
//! `{"error": {"status", "message"?, "retry_after"?}}`, `{"malformed": true}`,
//! `{"hang": true}`, plus optional `chunks`, `chunk_delay_ms`, `delay_ms`, `cut_after`,
//! `interleave`, `usage: [prompt, completion]`, `model`.

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::{Reply, ScriptedCall, Shared, lock};

/// One scripted reply as JSON.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplySpec {
    text: Option<String>,
    tool_calls: Option<Vec<CallSpec>>,
    error: Option<ErrorSpec>,
    #[serde(default)]
    malformed: bool,
    #[serde(default)]
    hang: bool,
    chunks: Option<usize>,
    chunk_delay_ms: Option<u64>,
    delay_ms: Option<u64>,
    cut_after: Option<usize>,
    #[serde(default)]
    interleave: bool,
    usage: Option<[u32; 2]>,
    model: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CallSpec {
    id: Option<String>,
    name: String,
    /// A JSON text, or any JSON value (serialised as the arguments text).
    arguments: Value,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ErrorSpec {
    status: u16,
    message: Option<String>,
    retry_after: Option<u64>,
}

impl ReplySpec {
    /// The reply this spec describes, or why it describes none.
    pub fn into_reply(self) -> Result<Reply, String> {
        let kinds = [
            self.text.is_some() && self.tool_calls.is_none(),
            self.tool_calls.is_some(),
            self.error.is_some(),
            self.malformed,
            self.hang,
        ];
        if kinds.iter().filter(|k| **k).count() != 1 {
            return Err("give exactly one of text, tool_calls, error, malformed, hang".into());
        }
        let chunks = self.chunks.unwrap_or(1);
        let mut reply = if let Some(calls) = self.tool_calls {
            let calls = calls
                .into_iter()
                .map(|c| ScriptedCall {
                    id: c.id,
                    name: c.name,
                    arguments: match c.arguments {
                        Value::String(s) => s,
                        other => other.to_string(),
                    },
                })
                .collect();
            let mut r = Reply::tool_calls(calls);
            if let Some(t) = self.text {
                r = r.with_text(t);
            }
            if self.interleave {
                r = r.interleaved();
            }
            r
        } else if let Some(e) = self.error {
            match (e.status, e.retry_after) {
                (429, Some(secs)) => Reply::rate_limited(secs),
                (status, _) => {
                    Reply::error(status, e.message.unwrap_or_else(|| "scripted error".into()))
                }
            }
        } else if self.malformed {
            Reply::malformed()
        } else if self.hang {
            Reply::hang()
        } else {
            let text = self.text.unwrap_or_default();
            match self.cut_after {
                Some(after) => Reply::cut_after(text, chunks, after),
                None => Reply::text(text),
            }
        };
        reply = reply.in_chunks(chunks);
        if let Some(ms) = self.chunk_delay_ms {
            reply = reply.chunk_delay(Duration::from_millis(ms));
        }
        if let Some(ms) = self.delay_ms {
            reply = reply.delay(Duration::from_millis(ms));
        }
        if let Some([p, c]) = self.usage {
            reply = reply.with_usage(p, c);
        }
        if let Some(m) = self.model {
            reply = reply.with_model(m);
        }
        Ok(reply)
    }
}

pub(crate) async fn push_replies(
    State(s): State<Arc<Shared>>,
    body: axum::body::Bytes,
) -> Response {
    let specs: Vec<ReplySpec> = match serde_json::from_slice(&body) {
        Ok(specs) => specs,
        Err(e) => return (StatusCode::UNPROCESSABLE_ENTITY, e.to_string()).into_response(),
    };
    let replies: Result<Vec<Reply>, String> =
        specs.into_iter().map(ReplySpec::into_reply).collect();
    match replies {
        Ok(replies) => {
            let mut script = lock(&s.script);
            script.extend(replies);
            Json(json!({"pending": script.len()})).into_response()
        }
        Err(e) => (StatusCode::UNPROCESSABLE_ENTITY, e).into_response(),
    }
}

pub(crate) async fn recorded(State(s): State<Arc<Shared>>) -> Json<Value> {
    let requests = lock(&s.requests);
    Json(Value::Array(
        requests
            .iter()
            .map(|r| {
                let headers: serde_json::Map<String, Value> =
                    r.headers.iter().map(|(n, v)| (n.clone(), json!(v))).collect();
                json!({"path": r.path, "headers": headers, "body": r.body})
            })
            .collect(),
    ))
}

pub(crate) async fn reset(State(s): State<Arc<Shared>>) -> StatusCode {
    lock(&s.script).clear();
    lock(&s.requests).clear();
    StatusCode::NO_CONTENT
}
