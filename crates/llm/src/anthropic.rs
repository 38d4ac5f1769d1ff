//! The Anthropic Messages API: `x-api-key` + `anthropic-version` headers, the system prompt as a
//! top-level field, `tool_use`/`tool_result` content blocks, and typed SSE events
//! (`message_start`, `content_block_start`/`_delta`/`_stop`, `message_delta`, `message_stop`,
//! `ping`, `error`).

use std::collections::{HashMap, VecDeque};

use async_trait::async_trait;
use bytes::Bytes;
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::config::ProviderConfig;
use crate::sse::SseEvent;
use crate::transport::{Prepared, StreamDecoder, Transport, scrub};
use crate::{
    ChatModel, ChatRequest, ChatResponse, ChatStream, FinishReason, LlmError, Message, StreamEvent,
    ToolCall, ToolChoice, Usage,
};

/// The API version header value this code speaks.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";
/// Output cap used when the request sets none (the API requires one).
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// A provider speaking the Anthropic Messages API.
pub struct Anthropic {
    config: ProviderConfig,
    transport: Transport,
}

impl Anthropic {
    /// Builds the provider (and its HTTP client) from its configuration.
    pub fn new(config: ProviderConfig) -> Result<Self, LlmError> {
        let transport = Transport::new(config.timeouts, config.retry, config.resolver.clone())?;
        Ok(Self { config, transport })
    }

    fn prepare(&self, req: &ChatRequest, stream: bool) -> Result<Prepared, LlmError> {
        let model = req.model.clone().unwrap_or_else(|| self.config.model.clone());
        let body = request_body(req, &model, stream);
        let base = self.config.base_url.trim_end_matches('/');
        let url = if base.ends_with("/v1") {
            format!("{base}/messages")
        } else {
            format!("{base}/v1/messages")
        };
        let key = req.api_key.clone().or_else(|| self.config.api_key.clone());
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(
            HeaderName::from_static("anthropic-version"),
            HeaderValue::from_static(ANTHROPIC_VERSION),
        );
        if let Some(key) = &key {
            let mut value =
                HeaderValue::from_str(key.expose_secret()).map_err(|_| LlmError::Config {
                    message: "the API key contains characters not allowed in a header".into(),
                })?;
            value.set_sensitive(true);
            headers.insert(HeaderName::from_static("x-api-key"), value);
        }
        Ok(Prepared {
            url,
            headers,
            body: Bytes::from(body.to_string()),
            timeout: req.timeout.unwrap_or(self.transport.timeouts.request),
            model,
            key,
        })
    }
}

#[async_trait]
impl ChatModel for Anthropic {
    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let prepared = self.prepare(request, false)?;
        let body = self.transport.post(&prepared).await?;
        parse_response(&body, &prepared.model)
    }

    async fn chat_stream(&self, request: &ChatRequest) -> Result<ChatStream, LlmError> {
        let prepared = self.prepare(request, true)?;
        let decoder = Decoder {
            model: prepared.model.clone(),
            key: prepared.key.clone(),
            ..Decoder::default()
        };
        self.transport.post_stream(&prepared, decoder).await
    }

    fn model(&self) -> &str {
        &self.config.model
    }
}

fn request_body(req: &ChatRequest, model: &str, stream: bool) -> Value {
    let system: Vec<&str> = req
        .messages
        .iter()
        .filter_map(|m| match m {
            Message::System { content } => Some(content.as_str()),
            _ => None,
        })
        .collect();
    let mut body = json!({
        "model": model,
        "max_tokens": req.max_tokens.unwrap_or(DEFAULT_MAX_TOKENS),
        "messages": messages_json(&req.messages),
    });
    if !system.is_empty() {
        body["system"] = json!(system.join("\n\n"));
    }
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters}))
            .collect();
        body["tool_choice"] = match &req.tool_choice {
            ToolChoice::Auto => json!({"type": "auto"}),
            ToolChoice::None => json!({"type": "none"}),
            ToolChoice::Required => json!({"type": "any"}),
            ToolChoice::Tool(name) => json!({"type": "tool", "name": name}),
        };
    }
    if let Some(t) = req.temperature {
        body["temperature"] = json!(t);
    }
    if !req.stop.is_empty() {
        body["stop_sequences"] = json!(req.stop);
    }
    if stream {
        body["stream"] = json!(true);
    }
    body
}

/// Converts the history to content blocks, merging consecutive turns of one role: parallel tool
/// results must travel in one user message, right after the assistant's `tool_use` blocks.
fn messages_json(messages: &[Message]) -> Vec<Value> {
    let mut out: Vec<(&'static str, Vec<Value>)> = Vec::new();
    for m in messages {
        let (role, blocks) = match m {
            Message::System { .. } => continue,
            Message::User { content } => ("user", text_block(content)),
            Message::Assistant { content, tool_calls } => {
                let mut blocks = text_block(content.as_deref().unwrap_or(""));
                for c in tool_calls {
                    let input = serde_json::from_str::<Value>(&c.arguments)
                        .ok()
                        .filter(Value::is_object)
                        .unwrap_or_else(|| json!({"raw_arguments": c.arguments}));
                    blocks.push(
                        json!({"type": "tool_use", "id": c.id, "name": c.name, "input": input}),
                    );
                }
                ("assistant", blocks)
            }
            Message::Tool { tool_call_id, content } => (
                "user",
                vec![
                    json!({"type": "tool_result", "tool_use_id": tool_call_id, "content": content}),
                ],
            ),
        };
        match out.last_mut() {
            Some((last, prev)) if *last == role => prev.extend(blocks),
            _ => out.push((role, blocks)),
        }
    }
    out.into_iter()
        .filter(|(_, blocks)| !blocks.is_empty())
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect()
}

/// The API rejects empty text blocks, so empty text is no block at all.
fn text_block(text: &str) -> Vec<Value> {
    if text.is_empty() { Vec::new() } else { vec![json!({"type": "text", "text": text})] }
}

fn invalid(detail: impl Into<String>) -> LlmError {
    LlmError::InvalidResponse { detail: detail.into() }
}

fn u32_at(v: &Value, key: &str) -> Option<u32> {
    v.get(key).and_then(Value::as_u64).map(|n| n.min(u32::MAX as u64) as u32)
}

fn parse_response(body: &[u8], model: &str) -> Result<ChatResponse, LlmError> {
    let v: Value = serde_json::from_slice(body).map_err(|_| invalid("the answer is not JSON"))?;
    let blocks = v
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("the answer has no content"))?;
    let mut content = String::new();
    let mut tool_calls = Vec::new();
    for b in blocks {
        match b.get("type").and_then(Value::as_str) {
            Some("text") => content.push_str(b.get("text").and_then(Value::as_str).unwrap_or("")),
            Some("tool_use") => {
                let id = b
                    .get("id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid("tool_use without id"))?;
                let name = b
                    .get("name")
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid("tool_use without name"))?;
                let input = b.get("input").cloned().unwrap_or_else(|| json!({}));
                tool_calls.push(ToolCall {
                    id: id.into(),
                    name: name.into(),
                    arguments: input.to_string(),
                });
            }
            _ => {}
        }
    }
    let finish_reason = v
        .get("stop_reason")
        .and_then(Value::as_str)
        .map_or(FinishReason::Stop, FinishReason::from_anthropic);
    let usage = v.get("usage").map(|u| Usage {
        prompt_tokens: u32_at(u, "input_tokens").unwrap_or(0),
        completion_tokens: u32_at(u, "output_tokens").unwrap_or(0),
    });
    let model = v.get("model").and_then(Value::as_str).unwrap_or(model).to_owned();
    Ok(ChatResponse { model, content, tool_calls, finish_reason, usage })
}

#[derive(Default)]
struct Decoder {
    model: String,
    key: Option<secrecy::SecretString>,
    /// Content-block index → (tool-call ordinal, call being assembled).
    open_tools: HashMap<u64, (usize, ToolCall)>,
    tool_count: usize,
    usage: Option<Usage>,
    finish: Option<FinishReason>,
}

impl StreamDecoder for Decoder {
    fn event(
        &mut self,
        event: SseEvent,
        out: &mut VecDeque<Result<StreamEvent, LlmError>>,
    ) -> Result<bool, LlmError> {
        if event.data.trim().is_empty() {
            return Ok(false);
        }
        let v: Value =
            serde_json::from_str(&event.data).map_err(|_| invalid("a stream event is not JSON"))?;
        let kind = v.get("type").and_then(Value::as_str).or(event.event.as_deref()).unwrap_or("");
        let block_index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
        match kind {
            "message_start" => {
                let m = v.get("message");
                if let Some(model) = m.and_then(|m| m.get("model")).and_then(Value::as_str) {
                    self.model = model.to_owned();
                }
                if let Some(u) = m.and_then(|m| m.get("usage")) {
                    let usage = self.usage.get_or_insert_with(Usage::default);
                    usage.prompt_tokens = u32_at(u, "input_tokens").unwrap_or(0);
                    usage.completion_tokens = u32_at(u, "output_tokens").unwrap_or(0);
                }
            }
            "content_block_start" => {
                let block =
                    v.get("content_block").ok_or_else(|| invalid("block start without block"))?;
                match block.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        let text = block.get("text").and_then(Value::as_str).unwrap_or("");
                        if !text.is_empty() {
                            out.push_back(Ok(StreamEvent::TextDelta(text.to_owned())));
                        }
                    }
                    Some("tool_use") => {
                        let id = block
                            .get("id")
                            .and_then(Value::as_str)
                            .ok_or_else(|| invalid("tool_use without id"))?;
                        let name = block
                            .get("name")
                            .and_then(Value::as_str)
                            .ok_or_else(|| invalid("tool_use without name"))?;
                        let index = self.tool_count;
                        self.tool_count += 1;
                        out.push_back(Ok(StreamEvent::ToolCallStart {
                            index,
                            id: id.into(),
                            name: name.into(),
                        }));
                        let call =
                            ToolCall { id: id.into(), name: name.into(), arguments: String::new() };
                        self.open_tools.insert(block_index, (index, call));
                    }
                    _ => {}
                }
            }
            "content_block_delta" => {
                let delta = v.get("delta").ok_or_else(|| invalid("block delta without delta"))?;
                match delta.get("type").and_then(Value::as_str) {
                    Some("text_delta") => {
                        let text = delta.get("text").and_then(Value::as_str).unwrap_or("");
                        if !text.is_empty() {
                            out.push_back(Ok(StreamEvent::TextDelta(text.to_owned())));
                        }
                    }
                    Some("input_json_delta") => {
                        let part = delta.get("partial_json").and_then(Value::as_str).unwrap_or("");
                        let (index, call) = self
                            .open_tools
                            .get_mut(&block_index)
                            .ok_or_else(|| invalid("input_json_delta for no open tool_use"))?;
                        call.arguments.push_str(part);
                        if !part.is_empty() {
                            out.push_back(Ok(StreamEvent::ToolCallDelta {
                                index: *index,
                                arguments: part.into(),
                            }));
                        }
                    }
                    _ => {}
                }
            }
            "content_block_stop" => {
                if let Some((index, mut call)) = self.open_tools.remove(&block_index) {
                    if call.arguments.trim().is_empty() {
                        call.arguments = "{}".into();
                    }
                    out.push_back(Ok(StreamEvent::ToolCallEnd { index, call }));
                }
            }
            "message_delta" => {
                if let Some(r) =
                    v.get("delta").and_then(|d| d.get("stop_reason")).and_then(Value::as_str)
                {
                    self.finish = Some(FinishReason::from_anthropic(r));
                }
                if let Some(n) = v.get("usage").and_then(|u| u32_at(u, "output_tokens")) {
                    self.usage.get_or_insert_with(Usage::default).completion_tokens = n;
                }
            }
            "message_stop" => {
                if !self.open_tools.is_empty() {
                    return Err(invalid("the message ended inside a tool_use block"));
                }
                if let Some(u) = self.usage {
                    out.push_back(Ok(StreamEvent::Usage(u)));
                }
                let reason = self.finish.take().unwrap_or(FinishReason::Stop);
                out.push_back(Ok(StreamEvent::Finish { reason, model: self.model.clone() }));
                return Ok(true);
            }
            "error" => {
                let err = v.get("error");
                let etype = err.and_then(|e| e.get("type")).and_then(Value::as_str).unwrap_or("");
                let message =
                    err.and_then(|e| e.get("message")).and_then(Value::as_str).unwrap_or("");
                let detail = scrub(message, self.key.as_ref());
                return Err(match etype {
                    "rate_limit_error" => LlmError::RateLimited { retry_after: None },
                    "overloaded_error" | "api_error" => LlmError::Unavailable { detail },
                    _ => LlmError::InvalidResponse { detail },
                });
            }
            _ => {} // ping and future event types
        }
        Ok(false)
    }

    fn eof(&mut self, _out: &mut VecDeque<Result<StreamEvent, LlmError>>) -> Result<(), LlmError> {
        Err(LlmError::StreamInterrupted { detail: "the stream ended before message_stop".into() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(events: &[&str]) -> Vec<Result<StreamEvent, LlmError>> {
        let mut d = Decoder { key: Some("sk-ant-secret".to_owned().into()), ..Decoder::default() };
        let mut out = VecDeque::new();
        for data in events {
            let ev = SseEvent { event: None, data: (*data).to_owned() };
            match d.event(ev, &mut out) {
                Ok(false) => {}
                Ok(true) => break,
                Err(e) => {
                    out.push_back(Err(e));
                    break;
                }
            }
        }
        out.into_iter().collect()
    }

    #[test]
    fn an_overloaded_error_event_mid_stream_is_unavailable_and_scrubbed() {
        let out = feed(&[
            r#"{"type":"message_start","message":{"model":"claude-x","usage":{"input_tokens":5}}}"#,
            r#"{"type":"ping"}"#,
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#,
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded (key sk-ant-secret)"}}"#,
        ]);
        assert_eq!(out[0], Ok(StreamEvent::TextDelta("Hi".into())));
        assert_eq!(
            out[1],
            Err(LlmError::Unavailable { detail: "Overloaded (key [redacted])".into() })
        );
    }

    #[test]
    fn a_tool_use_without_input_deltas_gets_empty_object_arguments() {
        let out = feed(&[
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"t1","name":"now","input":{}}}"#,
            r#"{"type":"content_block_stop","index":1}"#,
            r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":9}}"#,
            r#"{"type":"message_stop"}"#,
        ]);
        let call = ToolCall { id: "t1".into(), name: "now".into(), arguments: "{}".into() };
        assert_eq!(out[1], Ok(StreamEvent::ToolCallEnd { index: 0, call }));
        assert_eq!(
            out[2],
            Ok(StreamEvent::Usage(Usage { prompt_tokens: 0, completion_tokens: 9 }))
        );
        assert!(matches!(&out[3], Ok(StreamEvent::Finish { reason: FinishReason::ToolCalls, .. })));
    }
}
