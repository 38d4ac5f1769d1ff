//! The web app: pages rendered on the server with minijinja (HTML auto-escaped), one small
//! stylesheet and one small script written here and embedded in the binary. Pages read through
//! the same use cases as the API; forms and buttons call the REST API with the session cookie and
//! the page's CSRF token, so every rule (validation, permissions, tenant isolation) is the API's.

mod assets;
mod handoffs;
mod integrations;
mod pages;
mod session;
mod usage;

use std::sync::LazyLock;

use app::{AppError, Principal};
use axum::Router;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use minijinja::Environment;
use serde_json::Value;
use std::net::SocketAddr;

use crate::AppState;
use crate::extract::{WORKSPACE_COOKIE, cookie};

pub use session::session_router;

macro_rules! templates {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../web/templates/", $name)))),*]
    };
}

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    let all: &[(&str, &str)] = templates!(
        "base.html",
        "macros.html",
        "auth.html",
        "team.html",
        "team_new.html",
        "onboarding.html",
        "welcome.html",
        "member.html",
        "chat.html",
        "knowledge.html",
        "kb.html",
        "settings.html",
        "studio.html",
        "studio_agent.html",
        "run.html",
        "inbox.html",
        "inbox_handoff.html",
        "integrations.html",
        "mcp_servers.html",
        "usage.html",
        "error.html",
    );
    for (name, source) in all {
        env.add_template(name, source).expect("embedded templates parse");
    }
    env.add_filter("datetime", datetime);
    env.add_test("image_url", |v: &str| {
        v.starts_with("https://") || v.starts_with("http://") || v.starts_with('/')
    });
    env.add_filter("tojson_attr", |v: minijinja::Value| {
        serde_json::to_string(&v).unwrap_or_default()
    });
    env
});

/// Epoch milliseconds as `2026-11-22 05:40 UTC`.
fn datetime(ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .map(|t| {
            format!(
                "{:04}-{:02}-{:02} {:02}:{:02} UTC",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute()
            )
        })
        .unwrap_or_default()
}

/// All web routes (pages, assets, session endpoints).
pub fn router() -> Router<AppState> {
    handoffs::router().merge(web_pages())
}

fn web_pages() -> Router<AppState> {
    pages::router()
        .merge(integrations::router())
        .merge(assets::router())
        .merge(session_router())
        .merge(usage::router())
}

/// Renders a page; a template error is a plain 500 (logged), never a half page.
pub(crate) fn render(name: &str, ctx: Value) -> Response {
    render_status(StatusCode::OK, name, ctx)
}

pub(crate) fn render_status(status: StatusCode, name: &str, ctx: Value) -> Response {
    match TEMPLATES
        .get_template(name)
        .and_then(|t| t.render(minijinja::Value::from(minijinja::value::Serde(&ctx))))
    {
        Ok(html) => {
            let mut resp = (status, Html(html)).into_response();
            let h = resp.headers_mut();
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            h.insert("x-frame-options", HeaderValue::from_static("DENY"));
            h.insert("x-content-type-options", HeaderValue::from_static("nosniff"));
            h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
            h.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'self'; img-src 'self' data: https:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
                ),
            );
            resp
        }
        Err(e) => {
            tracing::error!(error = %e, template = name, "page failed to render");
            (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be shown").into_response()
        }
    }
}

/// A signed-in person looking at one workspace, for pages. Without a session the page
/// redirects to the sign-in page and comes back afterwards.
pub(crate) struct WebUser {
    pub principal: Principal,
    pub csrf: String,
    /// What every page's chrome shows: the person, their workspaces, the current one.
    pub chrome: Value,
}

pub(crate) enum WebReject {
    Login(String),
    Error(AppError),
}

impl IntoResponse for WebReject {
    fn into_response(self) -> Response {
        match self {
            WebReject::Login(next) => {
                let mut target = String::from("/login");
                if next != "/" {
                    target.push_str("?next=");
                    target.push_str(&urlencode(&next));
                }
                Redirect::to(&target).into_response()
            }
            WebReject::Error(e) => error_page(e),
        }
    }
}

pub(crate) fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// An error as a page: 404 for anything missing or another workspace's, the message otherwise.
pub(crate) fn error_page(e: AppError) -> Response {
    let (status, message) = match e {
        AppError::NotFound { what } => {
            (StatusCode::NOT_FOUND, format!("This {what} does not exist."))
        }
        AppError::Forbidden { message, .. } => (StatusCode::FORBIDDEN, message),
        AppError::PlanLimit { message, .. } | AppError::PaymentRequired { message, .. } => {
            (StatusCode::PAYMENT_REQUIRED, message)
        }
        AppError::Validation(_) => (StatusCode::BAD_REQUEST, "That request was not valid.".into()),
        // Written for people (an expired link, a refused authorization).
        AppError::BadRequest { message, .. } => (StatusCode::BAD_REQUEST, message),
        AppError::Conflict { message, .. } => (StatusCode::CONFLICT, message),
        other => {
            let status = crate::ApiError(other).into_response().status();
            (status, "Something went wrong; please try again.".into())
        }
    };
    render_status(
        status,
        "error.html",
        serde_json::json!({"status": status.as_u16(), "message": message}),
    )
}

impl FromRequestParts<AppState> for WebUser {
    type Rejection = WebReject;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, WebReject> {
        let next = parts.uri.path_and_query().map(|p| p.as_str().to_owned()).unwrap_or_default();
        let Some(token) = cookie(parts, app::web_session::SESSION_COOKIE) else {
            return Err(WebReject::Login(next));
        };
        let ip = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        let remembered = cookie(parts, WORKSPACE_COOKIE);
        let mut outcome = state.app.authenticate(token, remembered, ip).await;
        if remembered.is_some() && matches!(outcome, Err(AppError::NotFound { .. })) {
            // The remembered workspace is no longer the person's: show their first one.
            outcome = state.app.authenticate(token, None, ip).await;
        }
        let principal = match outcome {
            Ok(p) => p,
            Err(AppError::Forbidden { .. }) => {
                // Signed in but in no workspace (e.g. removed from it): only invites can help.
                return Err(WebReject::Error(AppError::forbidden(
                    "no_workspace",
                    "You are not a member of any workspace. Ask for an invite.",
                )));
            }
            Err(_) => return Err(WebReject::Login(next)),
        };
        let app::Actor::User { user_id, session_id, .. } = principal.actor else {
            return Err(WebReject::Login(next)); // the cookie never holds an API key
        };
        let me = state.app.me(user_id).await.map_err(WebReject::Error)?;
        let csrf = state.app.csrf_token(session_id);
        let chrome = serde_json::json!({
            "user": {"name": me.user.name, "email": me.user.email},
            "workspaces": me.workspaces,
            "workspace_id": principal.workspace_id.to_string(),
            "workspace_name": me.workspaces.iter()
                .find(|m| m.workspace_id == principal.workspace_id)
                .map(|m| m.workspace_name.clone()),
            "role": principal.role().map(|r| r.as_str()),
            "csrf": csrf,
        });
        Ok(WebUser { principal, csrf, chrome })
    }
}

impl WebUser {
    /// The page context: the chrome plus the page's own values under `page`.
    pub(crate) fn ctx(&self, active: &str, page: Value) -> Value {
        let mut ctx = self.chrome.clone();
        ctx["active"] = Value::from(active);
        ctx["page"] = page;
        ctx
    }
}
