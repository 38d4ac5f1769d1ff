//! `/api/v1/handoffs`: the operators' side of live human handoff — the inbox (waiting and
//! active conversations), one handoff with its transcript and events, claim, reply, internal
//! note, return to the bot, close, and the inbox's live stream; and
//! `/api/v1/conversations/{conversation_id}/events`, the customer's live stream of a
//! conversation (operator replies and state changes); `/api/v1/handoffs/webhook-secret`, the
//! key handoff webhooks are signed with (`docs/HANDOFF.md` shows how to check them).
//!
//! Streams are Server-Sent Events when the request accepts `text/event-stream` (first the
//! current state, then live events, a heartbeat comment every 15 s); otherwise the current
//! state as JSON, so a plain GET is a cheap poll.

use std::convert::Infallible;
use std::time::Duration;

use app::{HandoffDetail, HandoffFilter, HandoffItem, LiveEvent};
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use domain::ConversationId;
use serde::Deserialize;
use serde_json::{Value, json};
use store::{HandoffEvent, HandoffMove, Message};
use tokio::sync::broadcast;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Auth, JsonBody, path_id};
use crate::routes::chat::wants_sse;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_handoffs))
        .routes(routes!(inbox_stream))
        .routes(routes!(webhook_secret))
        .routes(routes!(get_handoff))
        .routes(routes!(claim))
        .routes(routes!(post_message))
        .routes(routes!(post_note))
        .routes(routes!(return_to_bot))
        .routes(routes!(close))
        .routes(routes!(conversation_events))
}

pub(crate) fn message_json(m: &Message) -> Value {
    json!({
        "id": m.id,
        "role": m.role,
        "author": m.author,
        "content": m.content,
        "citations": m.citations.0,
        "run_id": m.run_id,
        "created_at": m.created_at,
    })
}

fn item_json(i: &HandoffItem) -> Value {
    let h = &i.handoff;
    json!({
        "id": h.id,
        "agent_id": h.agent_id,
        "conversation_id": h.conversation_id,
        "reason": h.reason,
        "status": h.status,
        "assignee": h.assignee_id.as_ref().map(|id| json!({"id": id, "name": h.assignee_name})),
        "queue_position": (i.queue_position > 0).then_some(i.queue_position),
        "conversation": i.conversation.as_ref().map(|c| json!({
            "id": c.id,
            "channel": c.channel,
            "end_user_id": c.end_user_id,
            "title": c.title,
            "handoff_state": c.handoff_state,
            "last_message_at": c.last_message_at,
        })),
        "created_at": h.created_at,
        "updated_at": h.updated_at,
    })
}

fn event_json(e: &HandoffEvent) -> Value {
    json!({
        "id": e.id,
        "kind": e.kind,
        "from_state": e.from_state,
        "to_state": e.to_state,
        "actor": {"kind": e.actor_kind, "id": e.actor_id, "name": e.actor_name},
        "body": e.body,
        "message_id": e.message_id,
        "created_at": e.created_at,
    })
}

fn detail_json(d: &HandoffDetail) -> Value {
    let mut body = item_json(&d.item);
    body["messages"] = d.messages.iter().map(message_json).collect();
    body["events"] = d.events.iter().map(event_json).collect();
    body
}

#[derive(Deserialize, IntoParams)]
pub struct HandoffsQuery {
    /// `open` (waiting and with a person; the default), `waiting`, `human`, `returned` or
    /// `closed`.
    status: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

async fn list(s: &AppState, p: &app::Principal, q: HandoffsQuery) -> Result<Value, ApiError> {
    let filter = match q.status.as_deref() {
        None => HandoffFilter::Open,
        Some(v) => HandoffFilter::parse(v).ok_or_else(|| {
            ApiError(app::AppError::field(
                "/status",
                "invalid",
                "must be open, waiting, human, returned or closed",
            ))
        })?,
    };
    let page = s.app.handoffs(p, filter, q.cursor.as_deref(), q.limit).await?;
    Ok(json!({
        "data": page.data.iter().map(item_json).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor,
    }))
}

/// The handoff inbox, oldest first (needs `chat`; not an agent key)
///
/// Waiting conversations in the order they queued (with each one's place), and those a
/// person has; `status` picks others.
#[utoipa::path(get, path = "/api/v1/handoffs", tag = "handoffs", security(("bearer" = [])), params(HandoffsQuery),
    responses((status = 200, description = "`{data, next_cursor}`")))]
async fn list_handoffs(
    State(s): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<HandoffsQuery>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(list(&s, &p, q).await?))
}

/// The inbox's live stream (needs `chat`; not an agent key)
///
/// With `Accept: text/event-stream`: every live event of the workspace's handoffs —
/// `handoff.state` (escalated, claimed, returned, closed, queue moves), `message` (customers'
/// and operators' messages), `handoff.note` (internal notes), `handoff.lagged` (events were
/// missed: reload). Otherwise the open handoffs, as `GET /api/v1/handoffs` lists them.
#[utoipa::path(get, path = "/api/v1/handoffs/stream", tag = "handoffs", security(("bearer" = [])),
    responses((status = 200, description = "Server-Sent Events, or the open handoffs as JSON")))]
async fn inbox_stream(
    State(s): State<AppState>,
    Auth(p): Auth,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if !wants_sse(&headers) {
        let q = HandoffsQuery { status: None, cursor: None, limit: None };
        return Ok(Json(list(&s, &p, q).await?).into_response());
    }
    let rx = s.app.watch_inbox(&p)?;
    Ok(live_stream(None, rx))
}

/// The workspace's handoff webhook signing secret.
#[derive(serde::Serialize, ToSchema)]
pub struct WebhookSecretBody {
    /// `whsec_…`: the HMAC-SHA256 key of the `EchoForge-Signature` header
    /// (`t=<unix seconds>,v1=<hex HMAC of "<t>.<body>">`). It changes when the operator
    /// rotates the master key.
    secret: String,
    /// The header names a handoff webhook carries.
    signature_header: &'static str,
    event_header: &'static str,
    delivery_header: &'static str,
}

/// The secret handoff webhooks are signed with (owners and admins; workspace keys with `admin`)
///
/// An agent whose `escalation` capability has `handoff_config.method = "webhook"` POSTs each
/// new handoff (`handoff.created`, with the transcript unless `include_transcript` is false)
/// to its `webhook_url`, signed with this secret; failed deliveries are retried with backoff.
#[utoipa::path(get, path = "/api/v1/handoffs/webhook-secret", tag = "handoffs", security(("bearer" = [])),
    responses((status = 200, body = WebhookSecretBody),
        (status = 403, description = "Not an owner or admin, or an agent key", body = crate::error::Problem)))]
async fn webhook_secret(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> Result<Json<WebhookSecretBody>, ApiError> {
    Ok(Json(WebhookSecretBody {
        secret: s.app.handoff_webhook_secret(&p)?,
        signature_header: "EchoForge-Signature",
        event_header: "EchoForge-Event",
        delivery_header: "EchoForge-Delivery",
    }))
}

/// A handoff with its conversation's transcript and its events (needs `chat`)
#[utoipa::path(get, path = "/api/v1/handoffs/{handoff_id}", tag = "handoffs", security(("bearer" = [])),
    params(("handoff_id" = String, Path)),
    responses((status = 200, description = "The handoff, `messages` and `events`"), (status = 404, body = crate::error::Problem)))]
async fn get_handoff(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(handoff_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(detail_json(&s.app.handoff(&p, &handoff_id).await?)))
}

async fn moved(
    s: &AppState,
    p: &app::Principal,
    id: &str,
    mv: HandoffMove,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(item_json(&s.app.move_handoff(p, id, mv).await?)))
}

/// Claim a waiting handoff: the bot stops answering and the customer sees your name
///
/// Of operators claiming at once exactly one gets 200; the others get 409 `handoff_state`.
#[utoipa::path(post, path = "/api/v1/handoffs/{handoff_id}/claim", tag = "handoffs", security(("bearer" = [])),
    params(("handoff_id" = String, Path)),
    responses((status = 200, description = "The claimed handoff"), (status = 404, body = crate::error::Problem),
        (status = 409, description = "Not waiting: claimed by someone else, or ended (`handoff_state`)", body = crate::error::Problem)))]
async fn claim(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(handoff_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    moved(&s, &p, &handoff_id, HandoffMove::Claim).await
}

/// Give the conversation back to the bot
#[utoipa::path(post, path = "/api/v1/handoffs/{handoff_id}/return", tag = "handoffs", security(("bearer" = [])),
    params(("handoff_id" = String, Path)),
    responses((status = 200, description = "The returned handoff"), (status = 404, body = crate::error::Problem),
        (status = 409, description = "Already ended (`handoff_state`)", body = crate::error::Problem)))]
async fn return_to_bot(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(handoff_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    moved(&s, &p, &handoff_id, HandoffMove::Return).await
}

/// Close the handoff and its conversation (a later customer message is answered by the bot)
#[utoipa::path(post, path = "/api/v1/handoffs/{handoff_id}/close", tag = "handoffs", security(("bearer" = [])),
    params(("handoff_id" = String, Path)),
    responses((status = 200, description = "The closed handoff"), (status = 404, body = crate::error::Problem),
        (status = 409, description = "Already ended (`handoff_state`)", body = crate::error::Problem)))]
async fn close(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(handoff_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    moved(&s, &p, &handoff_id, HandoffMove::Close).await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OperatorMessageBody {
    /// What the operator says to the customer.
    content: String,
}

/// Write to the customer (the handoff must be claimed)
///
/// Stored on the conversation as a `human_agent` message with your name as `author`, and
/// delivered live on the customer's stream.
#[utoipa::path(post, path = "/api/v1/handoffs/{handoff_id}/messages", tag = "handoffs", security(("bearer" = [])),
    params(("handoff_id" = String, Path)), request_body = OperatorMessageBody,
    responses((status = 201, description = "The stored message"), (status = 404, body = crate::error::Problem),
        (status = 409, description = "Not claimed (`handoff_state`)", body = crate::error::Problem)))]
async fn post_message(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(handoff_id): Path<String>,
    JsonBody(b): JsonBody<OperatorMessageBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let m = s.app.post_operator_message(&p, &handoff_id, &b.content).await?;
    Ok((StatusCode::CREATED, Json(message_json(&m))))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NoteBody {
    /// The note, for the workspace's people only.
    body: String,
}

/// Add an internal note (never shown to the customer)
#[utoipa::path(post, path = "/api/v1/handoffs/{handoff_id}/notes", tag = "handoffs", security(("bearer" = [])),
    params(("handoff_id" = String, Path)), request_body = NoteBody,
    responses((status = 201, description = "The note as a handoff event"), (status = 404, body = crate::error::Problem)))]
async fn post_note(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(handoff_id): Path<String>,
    JsonBody(b): JsonBody<NoteBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let e = s.app.add_handoff_note(&p, &handoff_id, &b.body).await?;
    Ok((StatusCode::CREATED, Json(event_json(&e))))
}

/// A conversation's live stream: operator replies and handoff state (needs `read` or `chat`)
///
/// With `Accept: text/event-stream`: `handoff.state` now (`bot`, `waiting` with
/// `queue_position`, `human` with the `operator`'s name, `closed`) and on every change,
/// `message` for each message people write on it, `handoff.lagged` when events were missed
/// (reload the conversation). Otherwise the current state as JSON.
#[utoipa::path(get, path = "/api/v1/conversations/{conversation_id}/events", tag = "conversations", security(("bearer" = [])),
    params(("conversation_id" = String, Path)),
    responses((status = 200, description = "Server-Sent Events, or the `handoff.state` now as JSON"), (status = 404, body = crate::error::Problem)))]
async fn conversation_events(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(conversation_id): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let id = path_id(&conversation_id, "conversation", ConversationId::parse)?;
    let (now, rx) = s.app.watch_conversation(&p, id).await?;
    Ok(watch_response(now, rx, wants_sse(&headers)))
}

/// The current state as JSON, or it and the live events as SSE.
pub(crate) fn watch_response(
    now: LiveEvent,
    rx: broadcast::Receiver<LiveEvent>,
    sse: bool,
) -> Response {
    if sse { live_stream(Some(now), rx) } else { Json(now).into_response() }
}

fn sse_event(e: &LiveEvent) -> Event {
    Event::default()
        .event(e.name())
        .json_data(e)
        .unwrap_or_else(|_| Event::default().comment("an event could not be encoded"))
}

/// Live events as SSE, `first` before them.
fn live_stream(first: Option<LiveEvent>, rx: broadcast::Receiver<LiveEvent>) -> Response {
    let first = first.map(|e| Ok::<_, Infallible>(sse_event(&e)));
    let live = futures::stream::unfold(rx, |mut rx| async move {
        let event = match rx.recv().await {
            Ok(e) => sse_event(&e),
            Err(broadcast::error::RecvError::Lagged(n)) => {
                Event::default().event("handoff.lagged").data(json!({"missed": n}).to_string())
            }
            Err(broadcast::error::RecvError::Closed) => return None,
        };
        Some((Ok::<_, Infallible>(event), rx))
    });
    let stream = futures::StreamExt::chain(futures::stream::iter(first), live);
    Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)).text("heartbeat"))
        .into_response()
}
