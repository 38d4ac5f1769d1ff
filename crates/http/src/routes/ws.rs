//! `GET /api/v1/chat/stream` (WebSocket): the first text frame is the request
//! `{"agent_id": "<id or slug>", "message": "…", "conversation_id"?: "…", "end_user_id"?: "…"}`;
//! the server answers with the run's events as JSON text frames (the same objects as the SSE
//! `data:`, with `type` set to the event name), then closes. A refused request is one
//! `{"type": "error", "code", "message"}` frame. Authenticate with `Authorization: Bearer` or,
//! for browsers, `?access_token=`.

use std::collections::HashMap;

use app::{AppError, ChatInput};
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::Response;
use domain::ConversationId;
use serde::Deserialize;
use serde_json::json;
use store::Channel;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::ClientIp;

pub fn router() -> axum::Router<AppState> {
    axum::Router::new().route("/api/v1/chat/stream", axum::routing::get(upgrade))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WsRequest {
    agent_id: String,
    message: String,
    conversation_id: Option<String>,
    end_user_id: Option<String>,
}

async fn upgrade(
    State(s): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned)
        .or_else(|| q.get("access_token").cloned())
        .ok_or_else(|| {
            ApiError(AppError::unauthorized(
                "missing_credentials",
                "send `Authorization: Bearer …` or `?access_token=`",
            ))
        })?;
    let workspace = headers.get("echoforge-workspace").and_then(|v| v.to_str().ok());
    let p = s.app.authenticate(token.trim(), workspace, ip).await?;
    Ok(ws.on_upgrade(move |socket| serve(s, p, socket)))
}

async fn send_error(socket: &mut WebSocket, code: &str, message: &str) {
    let frame = json!({"type": "error", "code": code, "message": message});
    let _ = socket.send(Message::Text(frame.to_string().into())).await;
    let _ = socket.send(Message::Close(None)).await;
}

async fn serve(s: AppState, p: app::Principal, mut socket: WebSocket) {
    let first = loop {
        match socket.recv().await {
            Some(Ok(Message::Text(t))) => break t,
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
            _ => return,
        }
    };
    let req: WsRequest = match serde_json::from_str(first.as_str()) {
        Ok(r) => r,
        Err(e) => return send_error(&mut socket, "invalid_request", &e.to_string()).await,
    };
    let conversation_id = match req.conversation_id.map(|c| ConversationId::parse(&c)) {
        Some(Err(_)) => {
            return send_error(&mut socket, "not_found", "conversation not found").await;
        }
        Some(Ok(c)) => Some(c),
        None => None,
    };
    let input = ChatInput {
        agent: req.agent_id,
        message: req.message,
        conversation_id,
        end_user_id: req.end_user_id,
        channel: Channel::Api,
        history: None,
        attachments: Vec::new(),
    };
    let mut run = match s.app.start_chat(&p, input).await {
        Ok(r) => r,
        Err(e) => {
            let api = ApiError(e);
            let code = match &api.0 {
                AppError::NotFound { .. } => "not_found".to_owned(),
                AppError::Validation(_) => "validation_failed".to_owned(),
                AppError::Forbidden { code, .. }
                | AppError::Conflict { code, .. }
                | AppError::PaymentRequired { code, .. } => (*code).to_owned(),
                AppError::PlanLimit { .. } => "plan_limit_reached".to_owned(),
                _ => "error".to_owned(),
            };
            return send_error(&mut socket, &code, &api.0.to_string()).await;
        }
    };
    while let Some(event) = run.events.recv().await {
        let Ok(text) = serde_json::to_string(&event) else { continue };
        if socket.send(Message::Text(text.into())).await.is_err() {
            // The client left; the run finishes and is persisted in the background.
            return;
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}
