//! EchoForge's HTTP surface (axum): REST under `/api/v1` with problem+json errors, the OpenAPI
//! document generated from the handlers, health, readiness and Prometheus metrics.
//!
//! Every route is registered through [`utoipa_axum`] so the OpenAPI document at
//! `/api/v1/openapi.json` cannot drift from the router.

mod error;
mod extract;
mod observe;
mod openapi;
mod rate_headers;
mod routes;
mod web;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use metrics_exporter_prometheus::PrometheusHandle;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;

pub use error::ApiError;

/// HTTP-level settings.
#[derive(Debug, Clone)]
pub struct HttpConfig {
    /// Largest request body accepted, in bytes (JSON endpoints).
    pub max_body_bytes: usize,
    /// Time allowed for one request (streams excepted).
    pub request_timeout: Duration,
    /// Largest uploaded file, in bytes.
    pub max_upload_bytes: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            max_upload_bytes: 50 * 1024 * 1024,
        }
    }
}

/// Shared state of every handler.
#[derive(Clone)]
pub struct AppState {
    pub app: app::App,
    pub metrics: Option<PrometheusHandle>,
    pub openapi: Arc<String>,
    pub max_upload_bytes: usize,
}

#[derive(OpenApi)]
#[openapi(
    info(title = "EchoForge API", description = "Build and run your AI team: accounts, workspaces, keys, agents, knowledge and conversations."),
    components(schemas(error::Problem, error::ProblemFieldError)),
    modifiers(&SecurityAddon),
    tags(
        (name = "auth", description = "Registration, sign-in and sessions"),
        (name = "workspace", description = "The workspace profile, members and invites"),
        (name = "api-keys", description = "Workspace API keys"),
        (name = "audit", description = "The audit log of security events"),
        (name = "knowledge", description = "Knowledge bases, documents, ingestion and search"),
        (name = "capabilities", description = "What agents can do, and what is available"),
        (name = "templates", description = "Agent templates: seeded, operator and workspace-made"),
        (name = "onboarding", description = "The wizard that makes an agent from a template"),
        (name = "agents", description = "Agents, revisions, export/import and agent API keys"),
        (name = "operations", description = "Health, readiness and metrics"),
        (name = "chat", description = "Chatting with agents (JSON or Server-Sent Events)"),
        (name = "conversations", description = "Conversations, messages and pending actions"),
        (name = "handoffs", description = "Live human handoff: the operators' inbox, claim, reply, notes, return, close"),
        (name = "runs", description = "Run traces with their steps"),
        (name = "widget", description = "The embeddable chat widget's public endpoints"),
        (name = "admin", description = "Platform-operator tasks on any workspace"),
        (name = "mcp", description = "MCP servers as tool sources for agents (the MCP endpoint itself is /mcp, see docs/MCP.md)"),
        (name = "usage", description = "Usage per agent and day, and this month against the plan"),
        (name = "billing", description = "Plans bought through Stripe: Checkout, the customer portal, the webhook"),
    )
)]
struct ApiDoc;

struct SecurityAddon;

/// Who may call what (Markdown), kept beside the routes.
pub const PERMISSIONS: &str = include_str!("permissions.md");

impl utoipa::Modify for SecurityAddon {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        // The permissions × routes matrix, published in the reference's introduction.
        let intro = openapi.info.description.take().unwrap_or_default();
        openapi.info.description = Some(format!("{intro}\n\n{PERMISSIONS}"));
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A user access token, or an API key (`ef_…`)"))
                    .build(),
            ),
        );
    }
}

/// Builds the router with its middleware. `metrics` is the Prometheus recorder's handle, if
/// one is installed (the binary installs it; tests may not).
pub fn router(app: app::App, metrics: Option<PrometheusHandle>, config: &HttpConfig) -> Router {
    let (api, mut openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(routes::auth::router())
        .merge(routes::workspace::router())
        .merge(routes::keys::router())
        .merge(routes::audit::router())
        .merge(routes::knowledge::router(config.max_upload_bytes))
        .merge(routes::capabilities::router())
        .merge(routes::templates::router())
        .merge(routes::onboarding::router())
        .merge(routes::agents::router())
        .merge(routes::ops::router())
        .merge(routes::chat::router())
        .merge(routes::conversations::router())
        .merge(routes::handoffs::router())
        .merge(routes::runs::router())
        .merge(routes::widget::router())
        .merge(routes::admin::router())
        .merge(routes::model_provider::router())
        .merge(routes::integrations::router())
        .merge(routes::mcp_servers::router())
        .merge(routes::usage::router())
        .merge(routes::billing::router())
        .split_for_parts();
    utoipa::Modify::modify(&openapi::ProblemResponses, &mut openapi);
    let openapi = Arc::new(openapi.to_pretty_json().unwrap_or_else(|_| "{}".into()));
    let mcp = routes::mcp::router(&app, config.max_body_bytes);
    let state = AppState { app, metrics, openapi, max_upload_bytes: config.max_upload_bytes };
    api.route("/api/v1/openapi.json", axum::routing::get(routes::ops::openapi))
        .merge(routes::openai::router())
        .merge(routes::ws::router())
        .merge(mcp)
        .merge(web::router())
        .route_layer(axum::middleware::from_fn(rate_headers::headers))
        .route_layer(axum::middleware::from_fn(observe::track))
        .fallback(routes::ops::not_found)
        .with_state(state)
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            config.request_timeout,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(error::panic_response))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}
