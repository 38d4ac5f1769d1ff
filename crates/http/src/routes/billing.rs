//! `/api/v1/billing`: the workspace's plan and subscription, Stripe Checkout for a plan, the
//! customer-portal link, and Stripe's webhook (unauthenticated: the `Stripe-Signature` header
//! is what proves it is Stripe).

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::error::ApiError;
use crate::extract::{Auth, JsonBody};

pub fn router() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(status))
        .routes(routes!(checkout))
        .routes(routes!(portal))
        .routes(routes!(stripe_webhook))
}

/// The plan to buy.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutRequest {
    /// `pro` or `enterprise` (see `plans_for_sale`)
    plan: String,
}

/// The workspace's plan, its subscription, and the plans on sale
#[utoipa::path(get, path = "/api/v1/billing", tag = "billing", security(("bearer" = [])),
    responses((status = 200, body = app::BillingView), (status = 401, body = crate::error::Problem),
        (status = 403, description = "An agent key, or a key without `read`", body = crate::error::Problem)))]
async fn status(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> Result<Json<app::BillingView>, ApiError> {
    Ok(Json(s.app.billing(&p).await?))
}

/// Start a Stripe Checkout for a plan (owners and admins): send the browser to `url`. The
/// plan changes when Stripe confirms the payment (webhook)
#[utoipa::path(post, path = "/api/v1/billing/checkout", tag = "billing", security(("bearer" = [])),
    request_body = CheckoutRequest,
    responses((status = 200, body = app::BillingRedirect), (status = 401, body = crate::error::Problem),
        (status = 403, body = crate::error::Problem),
        (status = 409, description = "Stripe is not set up (`billing_not_configured`) or refused (`stripe_refused`)", body = crate::error::Problem),
        (status = 422, description = "Unknown plan or not for sale", body = crate::error::Problem),
        (status = 503, description = "Stripe is unreachable", body = crate::error::Problem)))]
async fn checkout(
    State(s): State<AppState>,
    Auth(p): Auth,
    JsonBody(r): JsonBody<CheckoutRequest>,
) -> Result<Json<app::BillingRedirect>, ApiError> {
    Ok(Json(s.app.billing_checkout(&p, &r.plan).await?))
}

/// A link to Stripe's customer portal (owners and admins; after a first Checkout)
#[utoipa::path(post, path = "/api/v1/billing/portal", tag = "billing", security(("bearer" = [])),
    responses((status = 200, body = app::BillingRedirect), (status = 401, body = crate::error::Problem),
        (status = 403, body = crate::error::Problem),
        (status = 409, description = "Stripe is not set up, or the workspace has no Stripe customer yet (`no_stripe_customer`)", body = crate::error::Problem),
        (status = 503, description = "Stripe is unreachable", body = crate::error::Problem)))]
async fn portal(
    State(s): State<AppState>,
    Auth(p): Auth,
) -> Result<Json<app::BillingRedirect>, ApiError> {
    Ok(Json(s.app.billing_portal(&p).await?))
}

/// Stripe's webhook (no authentication: the `Stripe-Signature` header is verified over the
/// raw body, 300 s tolerance; an event id already applied is acknowledged, not applied again)
#[utoipa::path(post, path = "/api/v1/billing/stripe/webhook", tag = "billing",
    params(("Stripe-Signature" = String, Header, description = "`t=<unix seconds>,v1=<hex HMAC-SHA256>`")),
    request_body(content = Object, content_type = "application/json", description = "A Stripe event"),
    responses((status = 200, body = app::WebhookReceipt),
        (status = 400, description = "Bad or stale signature (`stripe_signature_invalid`) or not an event (`invalid_event`)", body = crate::error::Problem),
        (status = 409, description = "Stripe webhooks are not set up (`billing_not_configured`)", body = crate::error::Problem)))]
async fn stripe_webhook(
    State(s): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Json<app::WebhookReceipt>, ApiError> {
    let signature = headers.get("stripe-signature").and_then(|v| v.to_str().ok());
    Ok(Json(s.app.stripe_webhook(&body, signature).await?))
}
