//! The OpenAI Chat Completions protocol, spoken by OpenAI, Azure OpenAI, Ollama, vLLM, llama.cpp
//! server, LiteLLM and most gateways.
//!
//! Streamed tool calls arrive as `delta.tool_calls[]` items keyed by `index`: the first item of a
//! call carries its `id` and `function.name`, later ones only `function.arguments` fragments, and
//! parallel calls may interleave. [`ToolCallAssembler`] (in `tool_calls`) turns that into
//! start/delta/end events.

use std::collections::VecDeque;

use async_trait::async_trait;
use bytes::Bytes;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderMap, HeaderValue};
use secrecy::ExposeSecret;
use serde_json::{Value, json};

use crate::config::{AuthStyle, ProviderConfig};
use crate::sse::SseEvent;
use crate::tool_calls::ToolCallAssembler;
use crate::transport::{Prepared, StreamDecoder, Transport, provider_message, scrub};
use crate::{
    ChatModel, ChatRequest, ChatResponse, ChatStream, FinishReason, LlmError, Message, StreamEvent,
    ToolCall, ToolChoice, Usage,
};

/// A provider speaking OpenAI Chat Completions.
pub struct OpenAiCompatible {
    config: ProviderConfig,
    transport: Transport,
}

impl OpenAiCompatible {
    /// Builds the provider (and its HTTP client) from its configuration.
    pub fn new(config: ProviderConfig) -> Result<Self, LlmError> {
        let transport = Transport::new(config.timeouts, config.retry, config.resolver.clone())?;
        Ok(Self { config, transport })
    }

    fn prepare(&self, req: &ChatRequest, stream: bool) -> Result<Prepared, LlmError> {
        let model = req.model.clone().unwrap_or_else(|| self.config.model.clone());
        let body = request_body(req, &model, stream);
        let mut url = format!("{}/chat/completions", self.config.base_url.trim_end_matches('/'));
        // Azure-style base URLs may already carry `?api-version=`; keep their query at the end.
        if let Some((path, query)) = self.config.base_url.split_once('?') {
            url = format!("{}/chat/completions?{query}", path.trim_end_matches('/'));
        }
        if let Some(v) = &self.config.api_version {
            url.push(if url.contains('?') { '&' } else { '?' });
            url.push_str("api-version=");
            url.push_str(v);
        }
        let key = req.api_key.clone().or_else(|| self.config.api_key.clone());
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(key) = &key {
            let (name, value) = match self.config.auth_style {
                AuthStyle::Bearer => (AUTHORIZATION, format!("Bearer {}", key.expose_secret())),
                AuthStyle::ApiKeyHeader => (
                    reqwest::header::HeaderName::from_static("api-key"),
                    key.expose_secret().to_owned(),
                ),
            };
            let mut value = HeaderValue::from_str(&value).map_err(|_| LlmError::Config {
                message: "the API key contains characters not allowed in a header".into(),
            })?;
            value.set_sensitive(true);
            headers.insert(name, value);
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
impl ChatModel for OpenAiCompatible {
    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let prepared = self.prepare(request, false)?;
        let body = self.transport.post(&prepared).await?;
        parse_response(&body, &prepared)
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
    let messages: Vec<Value> = req.messages.iter().map(message_json).collect();
    let mut body = json!({ "model": model, "messages": messages });
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|t| {
                json!({"type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.parameters }})
            })
            .collect();
        body["tool_choice"] = match &req.tool_choice {
            ToolChoice::Auto => json!("auto"),
            ToolChoice::None => json!("none"),
            ToolChoice::Required => json!("required"),
            ToolChoice::Tool(name) => json!({"type": "function", "function": {"name": name}}),
        };
    }
    if let Some(t) = req.temperature {
        body["temperature"] = json!(t);
    }
    if let Some(m) = req.max_tokens {
        body["max_tokens"] = json!(m);
    }
    if !req.stop.is_empty() {
        body["stop"] = json!(req.stop);
    }
    if stream {
        body["stream"] = json!(true);
        body["stream_options"] = json!({"include_usage": true});
    }
    body
}

fn message_json(m: &Message) -> Value {
    match m {
        Message::System { content } => json!({"role": "system", "content": content}),
        Message::User { content } => json!({"role": "user", "content": content}),
        Message::Assistant { content, tool_calls } => {
            let mut v = json!({"role": "assistant", "content": content});
            if !tool_calls.is_empty() {
                v["tool_calls"] = tool_calls
                    .iter()
                    .map(|c| {
                        json!({"id": c.id, "type": "function",
                               "function": {"name": c.name, "arguments": c.arguments}})
                    })
                    .collect();
            }
            v
        }
        Message::Tool { tool_call_id, content } => {
            json!({"role": "tool", "tool_call_id": tool_call_id, "content": content})
        }
    }
}

fn invalid(detail: impl Into<String>) -> LlmError {
    LlmError::InvalidResponse { detail: detail.into() }
}

/// An `error` object inside a 200 answer (some gateways do this) becomes an error.
fn embedded_error(v: &Value, prepared: &Prepared) -> Option<LlmError> {
    v.get("error").filter(|e| !e.is_null())?;
    let (message, _) = provider_message(v.to_string().as_bytes());
    Some(LlmError::Unavailable { detail: scrub(&message, prepared.key.as_ref()) })
}

fn usage_of(v: &Value) -> Option<Usage> {
    let u = v.get("usage").filter(|u| u.is_object())?;
    let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0).min(u32::MAX as u64) as u32;
    Some(Usage { prompt_tokens: n("prompt_tokens"), completion_tokens: n("completion_tokens") })
}

fn parse_response(body: &[u8], prepared: &Prepared) -> Result<ChatResponse, LlmError> {
    let v: Value = serde_json::from_slice(body).map_err(|_| invalid("the answer is not JSON"))?;
    if let Some(e) = embedded_error(&v, prepared) {
        return Err(e);
    }
    let choice = v
        .get("choices")
        .and_then(|c| c.get(0))
        .ok_or_else(|| invalid("the answer has no choices"))?;
    let message = choice.get("message").ok_or_else(|| invalid("the choice has no message"))?;
    let content = message.get("content").and_then(Value::as_str).unwrap_or("").to_owned();
    let mut tool_calls = Vec::new();
    for (i, c) in
        message.get("tool_calls").and_then(Value::as_array).into_iter().flatten().enumerate()
    {
        let f = c.get("function").ok_or_else(|| invalid("a tool call has no function"))?;
        let name = f.get("name").and_then(Value::as_str).filter(|n| !n.is_empty());
        let name = name.ok_or_else(|| invalid("a tool call has no name"))?.to_owned();
        let id =
            c.get("id").and_then(Value::as_str).map_or_else(|| format!("call_{i}"), str::to_owned);
        let arguments = match f.get("arguments") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
            // Some servers (Ollama's native shape) send an object instead of a JSON string.
            Some(obj @ Value::Object(_)) => obj.to_string(),
            _ => "{}".to_owned(),
        };
        tool_calls.push(ToolCall { id, name, arguments });
    }
    let finish_reason = match choice.get("finish_reason").and_then(Value::as_str) {
        Some(r) => FinishReason::from_openai(r),
        None if !tool_calls.is_empty() => FinishReason::ToolCalls,
        None => FinishReason::Stop,
    };
    let model = v.get("model").and_then(Value::as_str).unwrap_or(&prepared.model).to_owned();
    Ok(ChatResponse { model, content, tool_calls, finish_reason, usage: usage_of(&v) })
}

#[derive(Default)]
struct Decoder {
    model: String,
    key: Option<secrecy::SecretString>,
    model_seen: bool,
    tools: ToolCallAssembler,
    finish: Option<FinishReason>,
}

impl Decoder {
    fn complete(
        &mut self,
        out: &mut VecDeque<Result<StreamEvent, LlmError>>,
    ) -> Result<(), LlmError> {
        self.tools.finish(out)?;
        let reason = self.finish.take().unwrap_or(if self.tools.any() {
            FinishReason::ToolCalls
        } else {
            FinishReason::Stop
        });
        out.push_back(Ok(StreamEvent::Finish { reason, model: self.model.clone() }));
        Ok(())
    }
}

impl StreamDecoder for Decoder {
    fn event(
        &mut self,
        event: SseEvent,
        out: &mut VecDeque<Result<StreamEvent, LlmError>>,
    ) -> Result<bool, LlmError> {
        let data = event.data.trim();
        if data == "[DONE]" {
            self.complete(out)?;
            return Ok(true);
        }
        if data.is_empty() {
            return Ok(false);
        }
        let v: Value =
            serde_json::from_str(data).map_err(|_| invalid("a stream chunk is not JSON"))?;
        if v.get("error").is_some_and(|e| !e.is_null()) {
            let (message, _) = provider_message(data.as_bytes());
            return Err(LlmError::Unavailable { detail: scrub(&message, self.key.as_ref()) });
        }
        if !self.model_seen
            && let Some(m) = v.get("model").and_then(Value::as_str).filter(|m| !m.is_empty())
        {
            self.model = m.to_owned();
            self.model_seen = true;
        }
        if let Some(choice) = v.get("choices").and_then(|c| c.get(0)) {
            let delta = choice.get("delta");
            if let Some(text) = delta.and_then(|d| d.get("content")).and_then(Value::as_str)
                && !text.is_empty()
            {
                out.push_back(Ok(StreamEvent::TextDelta(text.to_owned())));
            }
            let items = delta.and_then(|d| d.get("tool_calls")).and_then(Value::as_array);
            for item in items.into_iter().flatten() {
                self.tools.push(item, out);
            }
            if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
                self.finish = Some(FinishReason::from_openai(reason));
                self.tools.finish(out)?;
            }
        }
        if let Some(usage) = usage_of(&v) {
            out.push_back(Ok(StreamEvent::Usage(usage)));
        }
        Ok(false)
    }

    fn eof(&mut self, out: &mut VecDeque<Result<StreamEvent, LlmError>>) -> Result<(), LlmError> {
        // Tolerated: servers that end the body after `finish_reason` without `[DONE]`.
        if self.finish.is_some() {
            return self.complete(out);
        }
        Err(LlmError::StreamInterrupted {
            detail: "the stream ended before the answer finished".into(),
        })
    }
}
