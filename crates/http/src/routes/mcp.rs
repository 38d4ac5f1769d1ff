//! `POST/GET/DELETE /mcp`: EchoForge as an MCP server (streamable HTTP, `rmcp`).
//!
//! Every request is authenticated here first — a workspace or agent API key (or a user access
//! token) as `Authorization: Bearer`, with the same rate limits, IP allowlists and permissions
//! as the other surfaces — and its [`app::Principal`] travels in the request's extensions to
//! the tools (`app::mcp::McpBackend`). No or a bad credential is a 401 with
//! `WWW-Authenticate: Bearer` before any JSON-RPC is read. `docs/MCP.md` has the details.

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use tower::ServiceExt;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::ClientIp;

const INSTRUCTIONS: &str = "EchoForge agents and knowledge bases. `chat_<agent>` asks an agent \
    (pass the returned conversation_id to continue a conversation); `search_<knowledge base>` \
    finds passages in a knowledge base.";

pub fn router(app: &app::App, max_body_bytes: usize) -> Router<AppState> {
    let service = mcp::server::http_service(
        app::mcp::McpBackend::new(app.clone()),
        "EchoForge",
        env!("CARGO_PKG_VERSION"),
        INSTRUCTIONS,
        max_body_bytes,
        mcp::CancellationToken::new(),
    );
    Router::new().route(
        "/mcp",
        any(move |State(s): State<AppState>, ClientIp(ip): ClientIp, mut req: Request| {
            let service = service.clone();
            async move {
                let token = req
                    .headers()
                    .get(header::AUTHORIZATION)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
                    .map(str::trim)
                    .filter(|t| !t.is_empty());
                let Some(token) = token else {
                    return unauthorized(app::AppError::unauthorized(
                        "missing_credentials",
                        "send `Authorization: Bearer <API key>`",
                    ));
                };
                let workspace = req.headers().get("echoforge-workspace").and_then(|v| v.to_str().ok());
                let principal = match s.app.authenticate(token, workspace, ip).await {
                    Ok(p) => p,
                    Err(e @ app::AppError::Unauthorized { .. }) => return unauthorized(e),
                    Err(e) => return ApiError(e).into_response(),
                };
                crate::rate_headers::RateSlot::note(req.extensions(), &principal);
                req.extensions_mut().insert(principal);
                // A malformed message gets a JSON-RPC error, not rmcp's plain-text 4xx.
                let req = if req.method() == axum::http::Method::POST {
                    let (parts, body) = req.into_parts();
                    let bytes = match axum::body::to_bytes(body, max_body_bytes).await {
                        Ok(b) => b,
                        Err(_) => {
                            return (
                                axum::http::StatusCode::PAYLOAD_TOO_LARGE,
                                axum::Json(serde_json::json!({"jsonrpc": "2.0", "id": null,
                                    "error": {"code": -32600, "message": "the message is too large"}})),
                            )
                                .into_response();
                        }
                    };
                    if let Some(error) = mcp::server::malformed(&bytes) {
                        return (axum::http::StatusCode::BAD_REQUEST, axum::Json(error)).into_response();
                    }
                    Request::from_parts(parts, Body::from(bytes))
                } else {
                    req
                };
                match service.oneshot(req).await {
                    Ok(r) => r.map(Body::new),
                    Err(never) => match never {},
                }
            }
        }),
    )
}

fn unauthorized(e: app::AppError) -> Response {
    let mut r = ApiError(e).into_response();
    r.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    r
}
