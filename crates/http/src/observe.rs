//! Request metrics and structured request logs.

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::Response;

/// Records `http_requests_total{method,route,status}` and
/// `http_request_duration_seconds{method,route}`, and logs each request with its id.
pub async fn track(req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let request_id =
        req.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let resp = next.run(req).await;
    let elapsed = start.elapsed();
    let status = resp.status().as_u16();
    let labels = [
        ("method", method.as_str().to_owned()),
        ("route", route.clone()),
        ("status", status.to_string()),
    ];
    metrics::counter!("http_requests_total", &labels).increment(1);
    metrics::histogram!("http_request_duration_seconds", &labels[..2])
        .record(elapsed.as_secs_f64());
    if status >= 500 {
        tracing::error!(%method, %route, status, request_id, latency_ms = elapsed.as_secs_f64() * 1e3, "request failed");
    } else {
        tracing::debug!(%method, %route, status, request_id, latency_ms = elapsed.as_secs_f64() * 1e3, "request");
    }
    resp
}
