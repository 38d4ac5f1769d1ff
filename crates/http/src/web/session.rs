//! Signing in and out of the web app, and choosing the workspace it shows.

use app::web_session::SESSION_COOKIE;
use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{ClientIp, JsonBody, UserAuth, WORKSPACE_COOKIE};

pub fn session_router() -> Router<AppState> {
    Router::new()
        .route("/web/login", post(login))
        .route("/web/logout", post(logout))
        .route("/web/workspace", post(choose_workspace))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    email: String,
    password: String,
}

pub(crate) fn set_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    let v = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{secure}");
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

async fn login(
    axum::extract::State(state): axum::extract::State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    JsonBody(body): JsonBody<LoginBody>,
) -> Result<Response, ApiError> {
    let ua = headers.get(header::USER_AGENT).and_then(|v| v.to_str().ok());
    let s = state.app.web_login(&body.email, &body.password, ip, ua).await?;
    let mut resp = (StatusCode::OK, axum::Json(json!({"ok": true}))).into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(SESSION_COOKIE, &s.token, s.max_age_secs, state.app.cookies_secure()),
    );
    Ok(resp)
}

async fn logout(
    axum::extract::State(state): axum::extract::State<AppState>,
    user: UserAuth,
) -> Result<Response, ApiError> {
    state.app.logout(user.session_id).await?;
    let mut resp = StatusCode::NO_CONTENT.into_response();
    let secure = state.app.cookies_secure();
    let h = resp.headers_mut();
    h.append(header::SET_COOKIE, set_cookie(SESSION_COOKIE, "", 0, secure));
    h.append(header::SET_COOKIE, set_cookie(WORKSPACE_COOKIE, "", 0, secure));
    Ok(resp)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkspaceBody {
    workspace_id: String,
}

/// Switches the workspace the web app shows (only one the person belongs to).
async fn choose_workspace(
    axum::extract::State(state): axum::extract::State<AppState>,
    user: UserAuth,
    JsonBody(body): JsonBody<WorkspaceBody>,
) -> Result<Response, ApiError> {
    let me = state.app.me(user.user_id).await?;
    if !me.workspaces.iter().any(|m| m.workspace_id.to_string() == body.workspace_id) {
        return Err(ApiError(app::AppError::NotFound { what: "workspace" }));
    }
    let mut resp = StatusCode::NO_CONTENT.into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        set_cookie(
            WORKSPACE_COOKIE,
            &body.workspace_id,
            60 * 60 * 24 * 365,
            state.app.cookies_secure(),
        ),
    );
    Ok(resp)
}
