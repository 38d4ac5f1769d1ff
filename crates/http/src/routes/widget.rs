//! The embeddable chat widget: `GET /widget.js` (embedded in the binary) and its public
//! endpoints under `/api/v1/widget/{public_id}`, which take no credential. Every request,
//! preflights included, is admitted by [`app::App::widget_access`] (active agent with the
//! widget enabled, page origin in its `allowed_domains`); a refused origin gets a 403 problem
//! without any CORS allowance, so the page cannot read it. Admitted requests answer with CORS
//! headers for exactly that origin (no credentials: the widget uses no cookies).

use std::sync::LazyLock;

use app::WidgetAccess;
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, options};
use domain::ConversationId;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{JsonBody, path_id};
use crate::routes::chat::{respond, wants_sse};

/// The widget script, written by hand: no build step, no CDN.
const SCRIPT: &str = include_str!("../../assets/widget.js");

/// A strong validator for the script, so browsers revalidate cheaply.
static SCRIPT_ETAG: LazyLock<String> = LazyLock::new(|| {
    // FNV-1a: stable across builds and processes (std's hasher is not).
    let hash = SCRIPT
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    format!("\"w-{hash:016x}\"")
});

/// The header carrying the visitor's id (kept in the page's `localStorage`).
const VISITOR_HEADER: &str = "echoforge-visitor";

const CONFIG_PATH: &str = "/api/v1/widget/{public_id}/config";
const CHAT_PATH: &str = "/api/v1/widget/{public_id}/chat";
const CONVERSATION_PATH: &str = "/api/v1/widget/{public_id}/conversations/{conversation}";
const EVENTS_PATH: &str = "/api/v1/widget/{public_id}/conversations/{conversation}/events";

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .route("/widget.js", get(script))
        .routes(routes!(config))
        .routes(routes!(chat))
        .routes(routes!(conversation))
        .routes(routes!(conversation_events))
        .route(CONFIG_PATH, options(preflight))
        .route(CHAT_PATH, options(preflight))
        .route(CONVERSATION_PATH, options(preflight))
        .route(EVENTS_PATH, options(preflight))
}

/// The widget script.
async fn script(headers: HeaderMap) -> Response {
    let etag = SCRIPT_ETAG.as_str();
    let cache = [
        (header::CACHE_CONTROL, "public, max-age=300, stale-while-revalidate=86400"),
        (header::ETAG, etag),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        // Loadable by pages that isolate themselves (`Cross-Origin-Embedder-Policy`).
        (header::HeaderName::from_static("cross-origin-resource-policy"), "cross-origin"),
    ];
    let fresh = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    if fresh {
        return (StatusCode::NOT_MODIFIED, cache).into_response();
    }
    (cache, [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")], SCRIPT).into_response()
}

/// The page's origin: `Origin`, or the origin of `Referer` when a browser sent no `Origin`.
fn page_origin(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok())
}

/// Admits the request or refuses it (no CORS headers on a refusal).
async fn admit(
    s: &AppState,
    public_id: &str,
    headers: &HeaderMap,
) -> Result<WidgetAccess, Response> {
    s.app
        .widget_access(public_id, page_origin(headers))
        .await
        .map_err(|e| public_headers(ApiError(e).into_response()))
}

/// Headers of every widget API response: no MIME sniffing; the answer depends on `Origin`.
fn public_headers(mut resp: Response) -> Response {
    let h = resp.headers_mut();
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.append(header::VARY, HeaderValue::from_static("Origin"));
    resp
}

/// CORS headers for an admitted request from `headers`' `Origin` (none without one: the
/// request did not come from a cross-origin page).
fn allow(headers: &HeaderMap, resp: Response) -> Response {
    let mut resp = public_headers(resp);
    if let Some(origin) = headers.get(header::ORIGIN) {
        let h = resp.headers_mut();
        h.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
        h.insert(
            header::ACCESS_CONTROL_EXPOSE_HEADERS,
            HeaderValue::from_static("retry-after, x-conversation-id"),
        );
    }
    resp
}

fn visitor(headers: &HeaderMap) -> &str {
    headers.get(VISITOR_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default()
}

/// A CORS preflight, admitted like the request it announces.
async fn preflight(
    State(s): State<AppState>,
    Path(params): Path<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let public_id = params.iter().find(|(k, _)| k == "public_id").map(|(_, v)| v.as_str());
    if let Err(refused) = admit(&s, public_id.unwrap_or_default(), &headers).await {
        return refused;
    }
    let mut resp = allow(&headers, StatusCode::NO_CONTENT.into_response());
    let h = resp.headers_mut();
    h.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("GET, POST, OPTIONS"));
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type, accept, echoforge-visitor"),
    );
    h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
    resp
}

/// The widget's public configuration
///
/// Branding and widget settings of an active agent with the widget enabled, for pages on its
/// allowed domains (checked against `Origin`, else `Referer`). No keys, ids or prompts.
#[utoipa::path(get, path = "/api/v1/widget/{public_id}/config", tag = "widget",
    params(("public_id" = String, Path, description = "The agent's public id (`pub_…`)")),
    responses((status = 200, description = "The public configuration"),
        (status = 403, body = crate::error::Problem), (status = 404, body = crate::error::Problem),
        (status = 429, body = crate::error::Problem)))]
async fn config(
    State(s): State<AppState>,
    Path(public_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let access = match admit(&s, &public_id, &headers).await {
        Ok(a) => a,
        Err(refused) => return refused,
    };
    let resp = match s.app.widget_config(&access) {
        Ok(c) => Json(c).into_response(),
        Err(e) => ApiError(e).into_response(),
    };
    allow(&headers, resp)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WidgetChatBody {
    /// What the visitor says.
    message: String,
    /// Continue this conversation of the visitor's; a new one is started when absent.
    conversation_id: Option<String>,
}

/// Chat with an agent through its widget
///
/// The visitor is named by the `EchoForge-Visitor` header. Answers like the agent chat
/// endpoint: JSON, or Server-Sent Events with `Accept: text/event-stream` (without tool and
/// pending-action events). Rate-limited per visitor and per agent (429 with `Retry-After`).
#[utoipa::path(post, path = "/api/v1/widget/{public_id}/chat", tag = "widget", request_body = WidgetChatBody,
    params(("public_id" = String, Path, description = "The agent's public id (`pub_…`)"),
        ("EchoForge-Visitor" = String, Header, description = "The visitor's id")),
    responses((status = 200, description = "The answer (JSON) or its events (text/event-stream)"),
        (status = 400, body = crate::error::Problem), (status = 402, description = "A limit of the plan is reached (`plan_limit_reached`, `limit` names it)", body = crate::error::Problem), (status = 403, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem), (status = 422, body = crate::error::Problem),
        (status = 429, body = crate::error::Problem), (status = 502, body = crate::error::Problem)))]
async fn chat(
    State(s): State<AppState>,
    Path(public_id): Path<String>,
    headers: HeaderMap,
    body: Result<JsonBody<WidgetChatBody>, Response>,
) -> Response {
    let access = match admit(&s, &public_id, &headers).await {
        Ok(a) => a,
        Err(refused) => return refused,
    };
    let resp = match body {
        Err(rejection) => rejection,
        Ok(JsonBody(b)) => {
            answer(&s, &access, &headers, b).await.unwrap_or_else(IntoResponse::into_response)
        }
    };
    allow(&headers, resp)
}

async fn answer(
    s: &AppState,
    access: &WidgetAccess,
    headers: &HeaderMap,
    b: WidgetChatBody,
) -> Result<Response, ApiError> {
    let conversation_id = b
        .conversation_id
        .map(|c| path_id(&c, "conversation", ConversationId::parse))
        .transpose()?;
    let run = s.app.widget_chat(access, visitor(headers), &b.message, conversation_id).await?;
    respond(run, wants_sse(headers)).await
}

/// A visitor's conversation through the widget
///
/// The messages (questions and answers with their sources) of a conversation the visitor
/// named by `EchoForge-Visitor` had with the agent; anyone else's is 404.
#[utoipa::path(get, path = "/api/v1/widget/{public_id}/conversations/{conversation}", tag = "widget",
    params(("public_id" = String, Path, description = "The agent's public id (`pub_…`)"),
        ("conversation" = String, Path, description = "Conversation id"),
        ("EchoForge-Visitor" = String, Header, description = "The visitor's id")),
    responses((status = 200, description = "The conversation"),
        (status = 400, body = crate::error::Problem), (status = 403, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem), (status = 429, body = crate::error::Problem)))]
async fn conversation(
    State(s): State<AppState>,
    Path((public_id, conversation)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let access = match admit(&s, &public_id, &headers).await {
        Ok(a) => a,
        Err(refused) => return refused,
    };
    let resp = async {
        let id = path_id(&conversation, "conversation", ConversationId::parse)?;
        let c = s.app.widget_conversation(&access, visitor(&headers), id).await?;
        Ok::<_, ApiError>(Json(c).into_response())
    }
    .await
    .unwrap_or_else(IntoResponse::into_response);
    allow(&headers, resp)
}

/// A visitor's live stream of their conversation (live human handoff)
///
/// With `Accept: text/event-stream`: `handoff.state` now and on every change (`waiting` with
/// `queue_position`, `human` with the `operator`'s name, `bot`, `closed`), `message` for what
/// people write (operators' `human_agent` messages with their `author`), `handoff.lagged`
/// when events were missed (reload the conversation). Otherwise the state now, as JSON.
#[utoipa::path(get, path = "/api/v1/widget/{public_id}/conversations/{conversation}/events", tag = "widget",
    params(("public_id" = String, Path, description = "The agent's public id (`pub_…`)"),
        ("conversation" = String, Path, description = "Conversation id"),
        ("EchoForge-Visitor" = String, Header, description = "The visitor's id")),
    responses((status = 200, description = "Server-Sent Events, or the state now as JSON"),
        (status = 400, body = crate::error::Problem), (status = 403, body = crate::error::Problem),
        (status = 404, body = crate::error::Problem), (status = 429, body = crate::error::Problem)))]
async fn conversation_events(
    State(s): State<AppState>,
    Path((public_id, conversation)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let access = match admit(&s, &public_id, &headers).await {
        Ok(a) => a,
        Err(refused) => return refused,
    };
    let resp = async {
        let id = path_id(&conversation, "conversation", ConversationId::parse)?;
        let (now, rx) = s.app.widget_watch(&access, visitor(&headers), id).await?;
        Ok::<_, ApiError>(crate::routes::handoffs::watch_response(now, rx, wants_sse(&headers)))
    }
    .await
    .unwrap_or_else(IntoResponse::into_response);
    allow(&headers, resp)
}
