//! `RateLimit-Limit`, `RateLimit-Remaining` and `RateLimit-Reset` (seconds) on every response
//! to an API key with request limits, on every surface (REST, `/v1`, `/mcp`): where the key
//! stands against its tightest limit after the request. A refused request (429) carries
//! `Retry-After` and `RateLimit-Remaining: 0` from the error instead.
//!
//! Only requests that present an API key get a slot (one small allocation); whatever
//! authenticates the key notes the principal's window in it.

use std::sync::{Arc, OnceLock};

use app::{Principal, RateWindow};
use axum::extract::Request;
use axum::http::header::AUTHORIZATION;
use axum::http::header::RETRY_AFTER;
use axum::http::{Extensions, HeaderMap, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// Where a request's key stands, once it is authenticated.
#[derive(Clone, Default)]
pub(crate) struct RateSlot(Arc<OnceLock<RateWindow>>);

impl RateSlot {
    /// Notes `p`'s window for the response, when the request has a slot and the key limits.
    pub(crate) fn note(extensions: &Extensions, p: &Principal) {
        if let Some(slot) = extensions.get::<RateSlot>() {
            slot.note_principal(p);
        }
    }

    pub(crate) fn note_principal(&self, p: &Principal) {
        if let Some(rate) = p.rate {
            let _ = self.0.set(rate);
        }
    }
}

fn presents_key(req: &Request) -> bool {
    req.headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.get(7..))
        .is_some_and(|t| t.trim_start().starts_with("ef_"))
}

pub(crate) async fn headers(mut req: Request, next: Next) -> Response {
    if !presents_key(&req) {
        return next.run(req).await;
    }
    let slot = RateSlot::default();
    req.extensions_mut().insert(slot.clone());
    let mut resp = next.run(req).await;
    if let Some(rate) = slot.0.get() {
        let h = resp.headers_mut();
        h.insert("ratelimit-limit", HeaderValue::from(rate.limit));
        set_remaining(h, rate.remaining, rate.reset_secs);
    }
    resp
}

fn set_remaining(h: &mut HeaderMap, remaining: i64, reset_secs: u64) {
    h.insert("ratelimit-remaining", HeaderValue::from(remaining));
    h.insert("ratelimit-reset", HeaderValue::from(reset_secs));
}

/// The headers of a request refused by a limit (429), whatever the body's shape.
pub(crate) fn refused(h: &mut HeaderMap, retry_after_secs: u64) {
    h.insert(RETRY_AFTER, HeaderValue::from(retry_after_secs));
    set_remaining(h, 0, retry_after_secs);
}
