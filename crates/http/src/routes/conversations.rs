//! `/api/v1/conversations`: conversations with agents, their messages, and decisions on
//! pending actions (which resume the paused run, answered like the chat endpoint).

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use domain::{AgentId, ConversationId};
use serde::Deserialize;
use serde_json::{Value, json};
use store::{Conversation, ConversationFilter, Message};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Auth, JsonBody, path_id};
use crate::routes::chat::{respond, wants_sse};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_conversation, list_conversations))
        .routes(routes!(get_conversation, delete_conversation))
        .routes(routes!(decide_action))
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateConversationBody {
    /// Agent id or slug.
    agent_id: String,
    end_user_id: Option<String>,
    title: Option<String>,
}

pub(crate) fn conversation_json(c: &Conversation) -> Value {
    json!({
        "id": c.id,
        "agent_id": c.agent_id,
        "end_user_id": c.end_user_id,
        "channel": c.channel,
        "title": c.title,
        "created_at": c.created_at,
        "updated_at": c.updated_at,
        "last_message_at": c.last_message_at,
        "handoff_state": c.handoff_state,
    })
}

fn message_json(m: &Message) -> Value {
    json!({
        "id": m.id,
        "role": m.role,
        "author": m.author,
        "content": m.content,
        "citations": m.citations.0,
        "tool_calls": m.tool_calls.0,
        "attachments": m.attachments.0,
        "run_id": m.run_id,
        "tokens": m.tokens,
        "created_at": m.created_at,
    })
}

/// Start a conversation with an agent (needs `chat`)
#[utoipa::path(post, path = "/api/v1/conversations", tag = "conversations", security(("bearer" = [])), request_body = CreateConversationBody,
    responses((status = 201, description = "The conversation"), (status = 404, body = crate::error::Problem)))]
async fn create_conversation(
    State(s): State<AppState>,
    Auth(p): Auth,
    JsonBody(b): JsonBody<CreateConversationBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let c = s.app.create_conversation(&p, &b.agent_id, b.end_user_id, b.title).await?;
    Ok((StatusCode::CREATED, Json(conversation_json(&c))))
}

#[derive(Deserialize, IntoParams)]
pub struct ListQuery {
    agent_id: Option<String>,
    end_user_id: Option<String>,
    cursor: Option<String>,
    limit: Option<u32>,
}

/// Conversations, most recently active first (cursor pagination)
#[utoipa::path(get, path = "/api/v1/conversations", tag = "conversations", security(("bearer" = [])), params(ListQuery),
    responses((status = 200, description = "`{data, next_cursor}`")))]
async fn list_conversations(
    State(s): State<AppState>,
    Auth(p): Auth,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let agent_id = match q.agent_id {
        Some(a) => Some(
            AgentId::parse(&a)
                .map_err(|_| ApiError::bad_request("invalid_agent_id", "agent_id is not an id"))?,
        ),
        None => None,
    };
    let cursor = match q.cursor {
        Some(c) => Some(
            ConversationId::parse(&c)
                .map_err(|_| ApiError::bad_request("invalid_cursor", "the cursor is invalid"))?,
        ),
        None => None,
    };
    let filter = ConversationFilter { agent_id, end_user_id: q.end_user_id };
    let page = s.app.conversations(&p, filter, cursor, q.limit).await?;
    Ok(Json(json!({
        "data": page.data.iter().map(conversation_json).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor,
    })))
}

/// A conversation with its messages and pending actions
#[utoipa::path(get, path = "/api/v1/conversations/{conversation_id}", tag = "conversations", security(("bearer" = [])),
    params(("conversation_id" = String, Path)), responses((status = 200, description = "The conversation"), (status = 404, body = crate::error::Problem)))]
async fn get_conversation(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(conversation_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = path_id(&conversation_id, "conversation", ConversationId::parse)?;
    let d = s.app.conversation(&p, id).await?;
    let mut body = conversation_json(&d.conversation);
    body["messages"] = d.messages.iter().map(message_json).collect();
    body["pending_actions"] = d
        .pending_actions
        .iter()
        .map(|a| {
            json!({
                "id": a.id,
                "run_id": a.run_id,
                "tool": a.tool_name,
                "arguments": a.arguments.0.get("arguments"),
                "status": a.status,
                "created_at": a.created_at,
            })
        })
        .collect();
    Ok(Json(body))
}

/// Delete a conversation and its messages
#[utoipa::path(delete, path = "/api/v1/conversations/{conversation_id}", tag = "conversations", security(("bearer" = [])),
    params(("conversation_id" = String, Path)), responses((status = 204), (status = 404, body = crate::error::Problem)))]
async fn delete_conversation(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path(conversation_id): Path<String>,
) -> Result<StatusCode, ApiError> {
    let id = path_id(&conversation_id, "conversation", ConversationId::parse)?;
    s.app.delete_conversation(&p, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DecisionBody {
    /// `true` runs the action, `false` declines it.
    approve: bool,
}

/// Approve or reject a pending action; the paused run resumes (JSON or SSE, like chat)
#[utoipa::path(post, path = "/api/v1/conversations/{conversation_id}/actions/{action_id}", tag = "conversations", security(("bearer" = [])),
    params(("conversation_id" = String, Path), ("action_id" = String, Path)), request_body = DecisionBody,
    responses((status = 200, description = "The resumed run's answer"), (status = 404, body = crate::error::Problem)))]
async fn decide_action(
    State(s): State<AppState>,
    Auth(p): Auth,
    Path((conversation_id, action_id)): Path<(String, String)>,
    headers: HeaderMap,
    JsonBody(b): JsonBody<DecisionBody>,
) -> Result<Response, ApiError> {
    let id = path_id(&conversation_id, "conversation", ConversationId::parse)?;
    let run = s.app.decide_action(&p, id, &action_id, b.approve).await?;
    respond(run, wants_sse(&headers)).await
}
