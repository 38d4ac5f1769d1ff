//! Extractors that turn request parts into typed, validated values, with problem+json errors.

use std::net::{IpAddr, SocketAddr};

use app::{AppError, FieldError, Principal};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use domain::{SessionId, UserId};
use serde::de::DeserializeOwned;

use crate::AppState;
use crate::error::{ApiError, problem};

/// A JSON body parsed with field paths in its errors: malformed JSON is 400, a body of the
/// wrong shape (missing/unknown fields, wrong types) is 422 naming the field.
pub struct JsonBody<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for JsonBody<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &S) -> Result<Self, Response> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("application/json") || ct.contains("+json"));
        if !is_json {
            return Err(problem(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "send the body as application/json".into(),
                Vec::new(),
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            let status = rejection.status();
            if status == StatusCode::PAYLOAD_TOO_LARGE {
                problem(
                    status,
                    "body_too_large",
                    "the request body is too large".into(),
                    Vec::new(),
                )
            } else {
                problem(status, "unreadable_body", rejection.body_text(), Vec::new())
            }
        })?;
        let de = &mut serde_json::Deserializer::from_slice(&bytes);
        match serde_path_to_error::deserialize::<_, T>(de) {
            Ok(v) => Ok(JsonBody(v)),
            Err(err) => {
                let inner = err.inner();
                if inner.is_syntax() || inner.is_eof() {
                    return Err(problem(
                        StatusCode::BAD_REQUEST,
                        "malformed_json",
                        format!("the body is not valid JSON: {inner}"),
                        Vec::new(),
                    ));
                }
                let path = pointer(&err.path().to_string());
                let message = clean_serde_message(&inner.to_string());
                Err(ApiError(AppError::Validation(vec![FieldError::new(
                    &path, "invalid", message,
                )]))
                .into_response())
            }
        }
    }
}

/// `a.b[0]` → `/a/b/0`; the root is `` (empty pointer).
fn pointer(path: &str) -> String {
    if path == "." {
        return String::new();
    }
    let mut out = String::new();
    for part in path.split('.') {
        for seg in part.split('[') {
            let seg = seg.trim_end_matches(']');
            if !seg.is_empty() {
                out.push('/');
                out.push_str(seg);
            }
        }
    }
    out
}

fn clean_serde_message(msg: &str) -> String {
    // Drop serde's " at line X column Y" suffix: positions mean nothing to a form.
    match msg.find(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg.to_owned(),
    }
}

/// The peer's address.
pub struct ClientIp(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientIp(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())))
    }
}

fn bearer(parts: &Parts) -> Result<&str, ApiError> {
    let value = parts.headers.get(header::AUTHORIZATION).ok_or_else(|| {
        ApiError(AppError::unauthorized(
            "missing_credentials",
            "send `Authorization: Bearer <token or API key>`",
        ))
    })?;
    let value = value.to_str().map_err(|_| {
        ApiError(AppError::unauthorized(
            "invalid_credentials",
            "the Authorization header is not valid text",
        ))
    })?;
    value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            ApiError(AppError::unauthorized("invalid_credentials", "use the Bearer scheme"))
        })
}

/// The value of cookie `name`, if the request carries it.
pub fn cookie<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
        .filter(|v| !v.is_empty())
}

/// The web session cookie, when the request has no `Authorization` header.
fn session_cookie(parts: &Parts) -> Option<&str> {
    if parts.headers.contains_key(header::AUTHORIZATION) {
        return None;
    }
    cookie(parts, app::web_session::SESSION_COOKIE).filter(|t| !t.starts_with("ef_"))
}

/// Cookie-authenticated requests that change something must prove they come from our pages.
fn check_csrf(parts: &Parts, state: &AppState, session: SessionId) -> Result<(), ApiError> {
    if parts.method.is_safe() {
        return Ok(());
    }
    let presented = parts
        .headers
        .get(app::web_session::CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if state.app.csrf_matches(session, presented) {
        Ok(())
    } else {
        Err(ApiError(AppError::forbidden(
            "csrf_failed",
            "this request did not come from an EchoForge page (missing or wrong CSRF token); reload the page",
        )))
    }
}

/// An authenticated caller inside a workspace (user token, API key or web session cookie).
pub struct Auth(pub Principal);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let workspace = parts
            .headers
            .get("echoforge-workspace")
            .and_then(|v| v.to_str().ok())
            .or_else(|| cookie(parts, WORKSPACE_COOKIE));
        let ip = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        let principal = if let Some(token) = session_cookie(parts) {
            let principal = state.app.authenticate(token, workspace, ip).await?;
            if let app::Actor::User { session_id, .. } = principal.actor {
                check_csrf(parts, state, session_id)?;
            }
            principal
        } else {
            let credential = bearer(parts)?;
            state.app.authenticate(credential, workspace, ip).await?
        };
        crate::rate_headers::RateSlot::note(&parts.extensions, &principal);
        if writes(&parts.method, parts.uri.path()) {
            state.app.check_writable(&principal.scope()).await?;
        }
        Ok(Auth(principal))
    }
}

/// Whether a request changes something a read-only (past due) workspace may not change:
/// creations and edits, but not deletions, searches, billing (to pay), sign-in or the
/// operator's API.
fn writes(method: &Method, path: &str) -> bool {
    matches!(*method, Method::POST | Method::PUT | Method::PATCH)
        && !path.starts_with("/api/v1/billing/")
        && !path.starts_with("/api/v1/admin/")
        && !path.starts_with("/api/v1/auth/")
        && !path.ends_with("/search")
}

/// The cookie that remembers which workspace the web app is looking at.
pub const WORKSPACE_COOKIE: &str = "ef_ws";

/// A signed-in person (access token or web session), whatever their workspaces.
pub struct UserAuth {
    pub user_id: UserId,
    pub session_id: SessionId,
}

impl FromRequestParts<AppState> for UserAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if let Some(token) = session_cookie(parts) {
            let (user_id, session_id) = state.app.authenticate_user(token).await?;
            check_csrf(parts, state, session_id)?;
            return Ok(UserAuth { user_id, session_id });
        }
        let credential = bearer(parts)?;
        if credential.starts_with("ef_") {
            return Err(ApiError(AppError::forbidden(
                "user_required",
                "this endpoint needs a signed-in user, not an API key",
            )));
        }
        let (user_id, session_id) = state.app.authenticate_user(credential).await?;
        Ok(UserAuth { user_id, session_id })
    }
}

/// An optional signed-in user: no credentials is `None`; bad ones are an error.
pub struct MaybeUser(pub Option<UserAuth>);

impl FromRequestParts<AppState> for MaybeUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if parts.headers.get(header::AUTHORIZATION).is_none() && session_cookie(parts).is_none() {
            return Ok(MaybeUser(None));
        }
        UserAuth::from_request_parts(parts, state).await.map(|u| MaybeUser(Some(u)))
    }
}

/// Parses a typed id from a path segment; a malformed id is a 404 (it cannot exist).
pub fn path_id<T>(
    raw: &str,
    what: &'static str,
    parse: impl Fn(&str) -> Result<T, domain::IdError>,
) -> Result<T, ApiError> {
    parse(raw).map_err(|_| ApiError(AppError::NotFound { what }))
}

#[cfg(test)]
mod tests {
    #[test]
    fn serde_paths_become_json_pointers() {
        assert_eq!(super::pointer("."), "");
        assert_eq!(super::pointer("email"), "/email");
        assert_eq!(super::pointer("permissions[1]"), "/permissions/1");
        assert_eq!(super::pointer("a.b[0].c"), "/a/b/0/c");
    }
}
