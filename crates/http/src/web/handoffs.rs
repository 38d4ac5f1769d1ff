//! The operators' inbox pages: `/inbox` (waiting conversations in queue order, and those a
//! person has) and `/inbox/{handoff_id}` (the transcript, the handoff's events, claim, reply,
//! internal note, return to the bot, close). Buttons and forms post to `/api/v1/handoffs`, so
//! every rule is the API's; another workspace's handoff is a 404 page.

use app::{HandoffFilter, HandoffItem};
use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};

use super::{WebUser, error_page, render};
use crate::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/inbox", get(inbox)).route("/inbox/{handoff_id}", get(handoff))
}

fn item(i: &HandoffItem) -> Value {
    let h = &i.handoff;
    json!({
        "id": h.id,
        "reason": h.reason,
        "status": h.status,
        "assignee": h.assignee_name,
        "queue_position": i.queue_position,
        "agent_id": h.agent_id,
        "channel": i.conversation.as_ref().map(|c| c.channel.as_str()),
        "customer": i.conversation.as_ref().and_then(|c| c.end_user_id.clone()),
        "title": i.conversation.as_ref().and_then(|c| c.title.clone()),
        "created_at": h.created_at,
        "updated_at": h.updated_at,
    })
}

async fn inbox(State(state): State<AppState>, user: WebUser) -> Response {
    let page = match state.app.handoffs(&user.principal, HandoffFilter::Open, None, Some(200)).await
    {
        Ok(p) => p,
        Err(e) => return error_page(e),
    };
    let (waiting, active): (Vec<&HandoffItem>, Vec<&HandoffItem>) =
        page.data.iter().partition(|i| i.handoff.status == store::HandoffStatus::Waiting);
    render(
        "inbox.html",
        user.ctx(
            "inbox",
            json!({
                "waiting": waiting.into_iter().map(item).collect::<Vec<_>>(),
                "active": active.into_iter().map(item).collect::<Vec<_>>(),
            }),
        ),
    )
}

async fn handoff(
    State(state): State<AppState>,
    user: WebUser,
    Path(handoff_id): Path<String>,
) -> Response {
    let d = match state.app.handoff(&user.principal, &handoff_id).await {
        Ok(d) => d,
        Err(e) => return error_page(e),
    };
    let messages: Vec<Value> = d
        .messages
        .iter()
        .filter(|m| !m.content.trim().is_empty())
        .filter(|m| {
            matches!(
                m.role,
                store::MessageRole::User
                    | store::MessageRole::Assistant
                    | store::MessageRole::HumanAgent
            )
        })
        .map(|m| {
            json!({"role": m.role, "author": m.author, "content": m.content, "created_at": m.created_at})
        })
        .collect();
    let events: Vec<Value> = d
        .events
        .iter()
        .map(|e| {
            json!({"kind": e.kind, "from": e.from_state, "to": e.to_state, "actor": e.actor_name,
                "actor_kind": e.actor_kind, "body": e.body, "created_at": e.created_at})
        })
        .collect();
    render(
        "inbox_handoff.html",
        user.ctx(
            "inbox",
            json!({"handoff": item(&d.item), "messages": messages, "events": events}),
        ),
    )
}
