//! Extractors that turn request parts into typed, validated values, with problem+json errors.

use std::net::{IpAddr, SocketAddr};

use app::{AppError, FieldError, Principal};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
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

/// An authenticated caller inside a workspace (user token or API key).
pub struct Auth(pub Principal);

impl FromRequestParts<AppState> for Auth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let credential = bearer(parts)?;
        let workspace = parts.headers.get("echoforge-workspace").and_then(|v| v.to_str().ok());
        let ip = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        let principal = state.app.authenticate(credential, workspace, ip).await?;
        Ok(Auth(principal))
    }
}

/// A signed-in person (access token), whatever their workspaces.
pub struct UserAuth {
    pub user_id: UserId,
    pub session_id: SessionId,
}

impl FromRequestParts<AppState> for UserAuth {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
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

/// An optional signed-in user: no `Authorization` header is `None`; a bad one is an error.
pub struct MaybeUser(pub Option<UserAuth>);

impl FromRequestParts<AppState> for MaybeUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if parts.headers.get(header::AUTHORIZATION).is_none() {
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
