//! `POST /api/v1/agents/{id}/chat`: one message to an agent, answered as JSON or, when the
//! request accepts `text/event-stream`, as Server-Sent Events named after the run events
//! (`run.started`, `message.delta`, `tool.started`, `tool.completed`, `citation`,
//! `action.pending`, `message.completed`, `run.completed` / `run.failed`) with a heartbeat
//! comment every 15 seconds.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::time::Duration;

use app::{ChatInput, ChatResult, ChatRun};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use domain::ConversationId;
use serde::Deserialize;
use serde_json::{Value, json};
use store::Channel;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::{ApiError, problem};
use crate::extract::{Auth, JsonBody, path_id};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(chat))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ChatBody {
    /// What the person says.
    message: String,
    /// Continue this conversation; a new one is started when absent.
    conversation_id: Option<String>,
    /// The caller's own id for the person (widget and API callers).
    end_user_id: Option<String>,
    /// Files for this message (read like knowledge documents and kept in the conversation).
    /// The whole JSON body is capped by the server's body limit (1 MiB by default).
    #[serde(default)]
    attachments: Vec<AttachmentBody>,
}

/// An attached file.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachmentBody {
    filename: String,
    content_type: Option<String>,
    /// The file's bytes, base64.
    data: String,
}

/// Decodes attached files; a bad one is a 422 naming it.
pub(crate) fn decode_attachments(
    files: Vec<AttachmentBody>,
) -> Result<Vec<app::attachments::AttachmentUpload>, ApiError> {
    use base64::Engine as _;
    files
        .into_iter()
        .enumerate()
        .map(|(i, f)| {
            let bytes =
                base64::engine::general_purpose::STANDARD.decode(f.data.trim()).map_err(|_| {
                    ApiError(app::AppError::field(
                        &format!("/attachments/{i}/data"),
                        "invalid_base64",
                        "must be the file's bytes in base64",
                    ))
                })?;
            Ok(app::attachments::AttachmentUpload {
                filename: f.filename,
                content_type: f.content_type,
                bytes,
            })
        })
        .collect()
}

/// Whether the client asked for Server-Sent Events.
pub(crate) fn wants_sse(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("text/event-stream"))
}

/// Chat with an agent (needs `chat`)
///
/// The agent is named by id or slug. With `Accept: text/event-stream` the answer streams as
/// typed events; otherwise the JSON body carries the answer, its citations and metadata. A
/// failing model is a 502 problem whose code is the provider error's.
#[utoipa::path(post, path = "/api/v1/agents/{agent}/chat", tag = "chat", security(("bearer" = [])), request_body = ChatBody,
    params(("agent" = String, Path, description = "Agent id or slug")),
    responses((status = 200, description = "The answer (JSON) or its events (text/event-stream)"),
        (status = 402, description = "A limit of the plan is reached (`plan_limit_reached`, `limit` names it)", body = crate::error::Problem),
        (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem),
        (status = 409, body = crate::error::Problem), (status = 422, body = crate::error::Problem),
        (status = 502, body = crate::error::Problem)))]
async fn chat(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(agent): Path<String>,
    headers: HeaderMap,
    JsonBody(b): JsonBody<ChatBody>,
) -> Result<Response, ApiError> {
    let conversation_id = b
        .conversation_id
        .map(|c| path_id(&c, "conversation", ConversationId::parse))
        .transpose()?;
    let attachments = if b.attachments.is_empty() {
        Vec::new()
    } else {
        s.app.read_attachments(decode_attachments(b.attachments)?).await?
    };
    let input = ChatInput {
        agent,
        message: b.message,
        conversation_id,
        end_user_id: b.end_user_id,
        channel: Channel::Api,
        history: None,
        attachments,
    };
    let run = s.app.start_chat(&p, input).await?;
    respond(run, wants_sse(&headers)).await
}

/// Answers with the run's events (SSE) or, once it is persisted, its result (JSON).
pub(crate) async fn respond(run: ChatRun, sse: bool) -> Result<Response, ApiError> {
    if sse {
        return Ok(sse_response(run));
    }
    let conversation_id = run.conversation_id;
    let result = run.finish().await?;
    Ok(json_result(conversation_id, &result))
}

fn sse_response(run: ChatRun) -> Response {
    let conversation = run.conversation_id.to_string();
    let stream = futures::stream::unfold(run.events, |mut rx| async move {
        let e = rx.recv().await?;
        let event = Event::default()
            .event(e.name())
            .json_data(&e)
            .unwrap_or_else(|_| Event::default().comment("an event could not be encoded"));
        Some((Ok::<_, Infallible>(event), rx))
    });
    let mut resp = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)).text("heartbeat"))
        .into_response();
    if let Ok(v) = conversation.parse() {
        resp.headers_mut().insert("x-conversation-id", v);
    }
    resp
}

/// The JSON answer; a failed run is a 502 problem with the run error's code.
pub(crate) fn json_result(conversation_id: ConversationId, r: &ChatResult) -> Response {
    let o = &r.outcome;
    if let Some(e) = &o.error {
        let status = if e.code == "message_too_long" {
            StatusCode::UNPROCESSABLE_ENTITY
        } else {
            StatusCode::BAD_GATEWAY
        };
        return problem(status, &e.code, e.message.clone(), Vec::new());
    }
    let tools_used: BTreeSet<&str> = o.tool_calls.iter().map(|c| c.tool.as_str()).collect();
    let pending: Vec<Value> = r
        .pending_actions
        .iter()
        .map(|a| {
            json!({
                "id": a.id,
                "tool": a.tool_name,
                "arguments": a.arguments.0.get("arguments"),
                "status": a.status,
            })
        })
        .collect();
    let body = json!({
        "conversation_id": conversation_id,
        "run_id": o.run_id,
        "status": o.status,
        "message": o.text,
        "citations": o.citations,
        "pending_actions": pending,
        "metadata": {
            "tools_used": tools_used,
            "usage": {
                "prompt_tokens": o.usage.prompt_tokens,
                "completion_tokens": o.usage.completion_tokens,
                "total_tokens": o.usage.prompt_tokens + o.usage.completion_tokens,
                "tool_calls": o.usage.tool_calls,
                "model_calls": o.usage.model_calls,
            },
            "execution_time_ms": o.duration_ms,
            "model": o.model,
        },
    });
    Json(body).into_response()
}
