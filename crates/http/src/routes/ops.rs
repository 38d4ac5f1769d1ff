//! Health, readiness, metrics, the OpenAPI document, and the 404 fallback.

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::problem;

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz)).routes(routes!(metrics))
}

/// Liveness: the process is up
#[utoipa::path(get, path = "/healthz", tag = "operations", responses((status = 200, body = String)))]
async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the database answers
#[utoipa::path(get, path = "/readyz", tag = "operations", responses((status = 200, body = String), (status = 503, body = crate::error::Problem)))]
async fn readyz(State(s): State<AppState>) -> Response {
    match s.app.store().ping().await {
        Ok(()) => "ready".into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_ready",
                "the database is not reachable".into(),
                Vec::new(),
            )
        }
    }
}

/// Prometheus metrics
#[utoipa::path(get, path = "/metrics", tag = "operations", responses((status = 200, body = String, content_type = "text/plain")))]
async fn metrics(State(s): State<AppState>) -> Response {
    match &s.metrics {
        Some(handle) => {
            ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], handle.render()).into_response()
        }
        None => problem(
            StatusCode::NOT_FOUND,
            "metrics_disabled",
            "metrics are not enabled".into(),
            Vec::new(),
        ),
    }
}

pub async fn openapi(State(s): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], s.openapi.as_str().to_owned()).into_response()
}

pub async fn not_found() -> Response {
    problem(StatusCode::NOT_FOUND, "not_found", "no such endpoint".into(), Vec::new())
}
