//! The OpenAI-compatible API: `GET /v1/models` (the agents the key can use) and
//! `POST /v1/chat/completions` where `model` is an agent's slug or id. Authenticated by a
//! workspace or agent API key (or a user token) with `chat`; errors use OpenAI's error body.
//! Each completion is stored as a conversation on the `openai` channel holding the new user
//! message and the answer; the earlier messages the client sends are the run's history.

use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use app::{AppError, ChatInput, Principal};
use axum::Extension;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use domain::Permission;
use runtime::RunEvent;
use serde::Deserialize;
use serde_json::{Value, json};
use store::Channel;
use tokio::sync::mpsc;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::ClientIp;
use crate::rate_headers::RateSlot;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/models", get(models)).route("/v1/chat/completions", post(completions))
}

/// An OpenAI-style error response.
fn oa_error(status: StatusCode, kind: &str, code: &str, message: impl Into<String>) -> Response {
    oa_response(status, oa_body(kind, code, message))
}

/// OpenAI's error object.
fn oa_body(kind: &str, code: &str, message: impl Into<String>) -> Value {
    json!({"error": {"message": message.into(), "type": kind, "param": null, "code": code}})
}

fn oa_response(status: StatusCode, body: Value) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn from_app(e: AppError, model: Option<&str>) -> Response {
    match e {
        AppError::NotFound { what: "agent" } => oa_error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            "model_not_found",
            format!(
                "The model `{}` does not exist or you do not have access to it.",
                model.unwrap_or_default()
            ),
        ),
        AppError::RateLimited { retry_after_secs } => {
            let mut resp = oa_error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                "rate_limited",
                format!("too many requests with this API key; retry in {retry_after_secs} seconds"),
            );
            crate::rate_headers::refused(resp.headers_mut(), retry_after_secs);
            resp
        }
        AppError::PlanRateLimited { retry_after_secs, message } => {
            let mut body = oa_body("rate_limit_error", "plan_rate_limited", message);
            body["error"]["limit"] = "api_requests_per_minute".into();
            let mut resp = oa_response(StatusCode::TOO_MANY_REQUESTS, body);
            crate::rate_headers::refused(resp.headers_mut(), retry_after_secs);
            resp
        }
        AppError::Unauthorized { code, message } => {
            oa_error(StatusCode::UNAUTHORIZED, "authentication_error", code, message)
        }
        AppError::Forbidden { code, message } => {
            oa_error(StatusCode::FORBIDDEN, "permission_error", code, message)
        }
        AppError::Conflict { code, message } => {
            oa_error(StatusCode::CONFLICT, "invalid_request_error", code, message)
        }
        // 402 like the REST API, not OpenAI's 429 `insufficient_quota`: clients retry 429s,
        // and a monthly limit does not go away in seconds.
        AppError::PlanLimit { limit, message } => {
            let mut body = oa_body("insufficient_quota", "plan_limit_reached", message);
            body["error"]["limit"] = limit.into();
            oa_response(StatusCode::PAYMENT_REQUIRED, body)
        }
        AppError::PaymentRequired { code, message } => {
            oa_response(StatusCode::PAYMENT_REQUIRED, oa_body("insufficient_quota", code, message))
        }
        AppError::Validation(errors) => {
            let msg =
                errors.iter().map(|e| format!("{} {}", e.path, e.message)).collect::<Vec<_>>();
            oa_error(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_request_error",
                "invalid_request",
                msg.join("; "),
            )
        }
        other => {
            let api = ApiError(other);
            let status = api.status();
            let (kind, code) = match status {
                StatusCode::NOT_FOUND => ("invalid_request_error", "not_found"),
                StatusCode::TOO_MANY_REQUESTS => ("rate_limit_error", "rate_limited"),
                StatusCode::BAD_REQUEST => ("invalid_request_error", "bad_request"),
                _ => ("server_error", "internal"),
            };
            if status.is_server_error() {
                tracing::error!(error = %api.0, "OpenAI-compatible request failed");
                return oa_error(status, kind, code, "something went wrong on our side");
            }
            oa_error(status, kind, code, api.0.to_string())
        }
    }
}

async fn authenticate(
    s: &AppState,
    headers: &HeaderMap,
    slot: Option<&Extension<RateSlot>>,
    ip: Option<IpAddr>,
) -> Result<Principal, Response> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            oa_error(
                StatusCode::UNAUTHORIZED,
                "authentication_error",
                "missing_api_key",
                "send `Authorization: Bearer <API key>`",
            )
        })?;
    let workspace = headers.get("echoforge-workspace").and_then(|v| v.to_str().ok());
    let p = s.app.authenticate(token, workspace, ip).await.map_err(|e| from_app(e, None))?;
    if let Some(Extension(slot)) = slot {
        slot.note_principal(&p);
    }
    p.require(Permission::Chat).map_err(|e| from_app(e, None))?;
    Ok(p)
}

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

async fn models(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    slot: Option<Extension<RateSlot>>,
    headers: HeaderMap,
) -> Response {
    let p = match authenticate(&s, &headers, slot.as_ref(), ip).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    match s.app.chat_models(&p).await {
        Ok(agents) => {
            let data: Vec<Value> = agents
                .iter()
                .map(|a| {
                    json!({"id": a.slug, "object": "model", "created": a.created_at / 1000,
                        "owned_by": "echoforge", "name": a.display_name, "agent_id": a.id})
                })
                .collect();
            axum::Json(json!({"object": "list", "data": data})).into_response()
        }
        Err(e) => from_app(e, None),
    }
}

#[derive(Deserialize)]
struct CompletionRequest {
    model: String,
    messages: Vec<InMessage>,
    #[serde(default)]
    stream: bool,
    stream_options: Option<StreamOptions>,
    user: Option<String>,
}

#[derive(Deserialize)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

#[derive(Deserialize)]
struct InMessage {
    role: String,
    #[serde(default)]
    content: Value,
}

/// A message's text: a string, or the text parts of a content array.
fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

async fn completions(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    slot: Option<Extension<RateSlot>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = match authenticate(&s, &headers, slot.as_ref(), ip).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let req: CompletionRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return oa_error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                "invalid_request",
                format!("the request body is invalid: {e}"),
            );
        }
    };
    let Some((last, earlier)) = req.messages.split_last().filter(|(l, _)| l.role == "user") else {
        return oa_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "invalid_request",
            "`messages` must end with a user message",
        );
    };
    // The agent has its own system prompt; the client's system messages are not used.
    let history = earlier
        .iter()
        .filter_map(|m| match m.role.as_str() {
            "user" => Some(llm::Message::user(text_of(&m.content))),
            "assistant" => Some(llm::Message::assistant(text_of(&m.content))),
            _ => None,
        })
        .collect();
    let input = ChatInput {
        agent: req.model.clone(),
        message: text_of(&last.content),
        conversation_id: None,
        end_user_id: req.user.clone(),
        channel: Channel::OpenAi,
        history: Some(history),
        attachments: Vec::new(),
    };
    let run = match s.app.start_chat(&p, input).await {
        Ok(r) => r,
        Err(e) => return from_app(e, Some(&req.model)),
    };
    let id = format!("chatcmpl-{}", run.run_id.to_string().trim_start_matches("run_"));
    let model = run.agent.slug.clone();
    if req.stream {
        let include_usage = req.stream_options.is_some_and(|o| o.include_usage);
        return stream(run, id, model, include_usage);
    }
    let conversation_id = run.conversation_id;
    let result = match run.finish().await {
        Ok(r) => r,
        Err(e) => return from_app(e, Some(&req.model)),
    };
    let o = &result.outcome;
    if let Some(e) = &o.error {
        return oa_error(StatusCode::BAD_GATEWAY, "api_error", &e.code, e.message.clone());
    }
    let body = json!({
        "id": id,
        "object": "chat.completion",
        "created": now_secs(),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": o.text}, "finish_reason": "stop", "logprobs": null}],
        "usage": {"prompt_tokens": o.usage.prompt_tokens, "completion_tokens": o.usage.completion_tokens,
            "total_tokens": o.usage.prompt_tokens + o.usage.completion_tokens},
        "citations": o.citations,
        "conversation_id": conversation_id,
        "status": o.status,
    });
    axum::Json(body).into_response()
}

fn chunk(id: &str, model: &str, created: u64, delta: Value, finish: Option<&str>) -> String {
    let c = json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": null}]});
    format!("data: {c}\n\n")
}

/// Streams the run as `chat.completion.chunk`s, then `data: [DONE]`.
fn stream(run: app::ChatRun, id: String, model: String, include_usage: bool) -> Response {
    let (tx, mut rx) = mpsc::channel::<String>(64);
    let created = now_secs();
    tokio::spawn(async move {
        let app::ChatRun { mut events, done, conversation_id, .. } = run;
        let first = chunk(&id, &model, created, json!({"role": "assistant", "content": ""}), None);
        let mut open = tx.send(first).await.is_ok();
        let mut failed = false;
        if !open {
            return;
        }
        while let Some(e) = events.recv().await {
            let frame = match e {
                RunEvent::MessageDelta { delta } => {
                    chunk(&id, &model, created, json!({"content": delta}), None)
                }
                RunEvent::RunFailed { code, message, .. } => {
                    failed = true;
                    let err = json!({"error": {"message": message, "type": "api_error", "param": null, "code": code}});
                    format!("data: {err}\n\n")
                }
                _ => continue,
            };
            if open {
                open = tx.send(frame).await.is_ok();
            }
            if !open {
                // The client went away: stop reading, so the run sees it (and traces it).
                return;
            }
        }
        let result = done.await.ok();
        if !failed {
            let outcome = result.as_ref().map(|r| &r.outcome);
            let usage = outcome.map(|o| {
                json!({"prompt_tokens": o.usage.prompt_tokens, "completion_tokens": o.usage.completion_tokens,
                    "total_tokens": o.usage.prompt_tokens + o.usage.completion_tokens})
            });
            let last = json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop", "logprobs": null}],
                "citations": outcome.map(|o| o.citations.clone()).unwrap_or_default(),
                "conversation_id": conversation_id});
            let _ = tx.send(format!("data: {last}\n\n")).await;
            if include_usage {
                let u = json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [], "usage": usage});
                let _ = tx.send(format!("data: {u}\n\n")).await;
            }
        }
        let _ = tx.send("data: [DONE]\n\n".to_owned()).await;
    });
    let body = futures::stream::poll_fn(move |cx| {
        rx.poll_recv(cx).map(|o| o.map(|s| Ok::<_, std::convert::Infallible>(Bytes::from(s))))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(body))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}
