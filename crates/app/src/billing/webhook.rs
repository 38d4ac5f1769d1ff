//! Stripe's webhook: the signature is verified over the raw body (before anything is parsed),
//! then the event is applied once (its id is recorded in the transaction that applies it) to
//! the workspace's subscription and plan:
//!
//! | event | subscription | workspace plan |
//! |---|---|---|
//! | `checkout.session.completed` | customer, subscription id, plan; `active` when paid | the plan, when paid |
//! | `customer.subscription.created/updated/deleted` | status, period, `cancel_at_period_end`, plan (from the price) | the plan while `active`/`trialing`/`past_due`; the default plan once `canceled`/`unpaid`/`incomplete_expired` |
//! | `invoice.paid` | `past_due`/`unpaid` → `active`, failures cleared | the subscription's plan again after `unpaid` |
//! | `invoice.payment_failed` | `past_due` (since the first failure) | unchanged (a grace period) |
//!
//! Subscription snapshots may arrive out of order: one older than the newest applied is
//! recorded but not applied. Other event types, and events about workspaces this server does
//! not know, are recorded and acknowledged (Stripe would otherwise retry them for days).

use connectors::stripe::{self, Event};
use domain::WorkspaceId;
use domain::time::now_ms;
use serde::Serialize;
use serde_json::{Value, json};
use store::{EventOutcome, NewAuditEvent, StripeEventRecord, SubscriptionChange, TenantScope};
use utoipa::ToSchema;

use crate::{App, AppError};

/// What the webhook did with an event (Stripe only looks at the status).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookReceipt {
    pub received: bool,
    /// Stripe's event id.
    pub event_id: String,
    /// `applied`, `duplicate` (seen before), `stale` (an older snapshot than one applied) or
    /// `ignored` (a type or workspace this server does not act on).
    pub outcome: &'static str,
}

/// The scope of the workspace a verified Stripe event is about. Minted only after the
/// event's signature was verified with the operator's webhook secret, for a workspace the
/// event names (our own `workspace_id` metadata or a customer we recorded).
#[allow(clippy::disallowed_methods)]
fn stripe_scope(workspace_id: WorkspaceId) -> TenantScope {
    TenantScope::assume(workspace_id)
}

fn s(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned)
}

/// An id field that Stripe sends as a string or, when expanded, as an object with `id`.
fn id_of(v: &Value, key: &str) -> Option<String> {
    s(v, key).or_else(|| v.get(key).and_then(|o| s(o, "id")))
}

fn secs_to_ms(v: Option<&Value>) -> Option<i64> {
    v.and_then(Value::as_i64).map(|t| t.saturating_mul(1000))
}

/// Statuses in which the subscription's plan applies.
fn pays_for_plan(status: &str) -> bool {
    matches!(status, "active" | "trialing" | "past_due")
}

/// Statuses after which the workspace falls back to the default plan.
fn ended(status: &str) -> bool {
    matches!(status, "canceled" | "unpaid" | "incomplete_expired")
}

impl App {
    /// Verifies and applies one webhook delivery (the raw body and its `Stripe-Signature`).
    pub async fn stripe_webhook(
        &self,
        payload: &[u8],
        signature: Option<&str>,
    ) -> Result<WebhookReceipt, AppError> {
        let stripe = self.stripe().ok_or_else(|| {
            AppError::conflict("billing_not_configured", "this server does not take payments")
        })?;
        let secret = stripe.settings.webhook_secret.as_ref().ok_or_else(|| {
            AppError::conflict(
                "billing_not_configured",
                "the operator has not set billing.stripe.webhook_secret",
            )
        })?;
        use secrecy::ExposeSecret;
        stripe::verify_signature(
            payload,
            signature,
            secret.expose_secret(),
            now_ms() / 1000,
            stripe.settings.tolerance_secs,
        )
        .map_err(|e| AppError::bad_request("stripe_signature_invalid", e.to_string()))?;
        let event = stripe::parse_event(payload)
            .map_err(|e| AppError::bad_request("invalid_event", e.to_string()))?;
        let change = self.change_for(&stripe.settings, &event).await?;
        let record = StripeEventRecord { id: &event.id, kind: &event.kind };
        let known = change.is_some();
        let outcome = self
            .inner
            .store
            .apply_stripe_event(&record, change.as_ref().map(|(s, c)| (s, c)), now_ms())
            .await?;
        if let Some((scope, _)) = &change {
            self.inner.billing.standing.forget(scope.workspace_id());
        }
        let outcome = match outcome {
            EventOutcome::Duplicate => "duplicate",
            EventOutcome::Applied { stale: true, .. } => "stale",
            EventOutcome::Applied { plan_change, .. } => {
                if let (Some((scope, _)), Some((from, to))) = (&change, plan_change) {
                    let ws = scope.workspace_id();
                    self.inner.plan_tiers.forget(ws);
                    self.audit(NewAuditEvent {
                        workspace_id: Some(ws),
                        actor_user_id: None,
                        actor_key_id: None,
                        action: "workspace.plan_changed",
                        target: Some(ws.to_string()),
                        ip: None,
                        detail: json!({"from": from, "to": to, "source": "stripe", "event_id": event.id, "event_type": event.kind}),
                    })
                    .await;
                }
                if known { "applied" } else { "ignored" }
            }
        };
        tracing::info!(event = %event.id, kind = %event.kind, outcome, "Stripe event");
        Ok(WebhookReceipt { received: true, event_id: event.id, outcome })
    }

    /// The workspace an event is about: our `workspace_id` metadata (or the Checkout's
    /// `client_reference_id`), else the customer we recorded; `None` when it names neither or
    /// the workspace is gone.
    async fn event_workspace(
        &self,
        object: &Value,
        customer: Option<&str>,
    ) -> Result<Option<TenantScope>, AppError> {
        let named = object
            .get("metadata")
            .and_then(|m| s(m, "workspace_id"))
            .or_else(|| s(object, "client_reference_id"))
            .and_then(|w| WorkspaceId::parse(&w).ok());
        let ws = match (named, customer) {
            (Some(ws), _) => Some(ws),
            (None, Some(c)) => self.inner.store.workspace_of_stripe_customer(c).await?,
            (None, None) => None,
        };
        let Some(ws) = ws else { return Ok(None) };
        let scope = stripe_scope(ws);
        match self.inner.store.get_workspace(&scope).await {
            Ok(_) => Ok(Some(scope)),
            Err(store::StoreError::NotFound) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// What `event` changes, and for which workspace (`None`: nothing to apply).
    async fn change_for(
        &self,
        settings: &super::StripeSettings,
        event: &Event,
    ) -> Result<Option<(TenantScope, SubscriptionChange)>, AppError> {
        let o = &event.object;
        let customer = id_of(o, "customer");
        let event_at = event.created.saturating_mul(1000);
        let default_plan = self.config().default_plan.clone();
        let change = match event.kind.as_str() {
            "checkout.session.completed" => {
                if o.get("mode").and_then(Value::as_str).is_some_and(|m| m != "subscription") {
                    return Ok(None);
                }
                let paid = matches!(
                    o.get("payment_status").and_then(Value::as_str),
                    Some("paid" | "no_payment_required")
                );
                let plan =
                    o.get("metadata").and_then(|m| s(m, "plan")).filter(|p| self.known_plan(p));
                SubscriptionChange {
                    customer_id: customer.clone(),
                    subscription_id: id_of(o, "subscription"),
                    status: Some(if paid { "active" } else { "incomplete" }.into()),
                    workspace_plan: if paid { plan.clone() } else { None },
                    plan,
                    past_due: paid.then_some(false),
                    event_at,
                    ..Default::default()
                }
            }
            "customer.subscription.created"
            | "customer.subscription.updated"
            | "customer.subscription.deleted" => {
                let status = s(o, "status").unwrap_or_else(|| "incomplete".into());
                let item = &o["items"]["data"][0];
                let price = item.get("price").and_then(|p| s(p, "id"));
                // The plan from the price (the operator's table), else our metadata.
                let plan = price
                    .and_then(|id| settings.prices.iter().find(|(_, p)| **p == id))
                    .map(|(plan, _)| plan.clone())
                    .or_else(|| o.get("metadata").and_then(|m| s(m, "plan")))
                    .filter(|p| self.known_plan(p));
                let period = |k: &str| secs_to_ms(o.get(k).or_else(|| item.get(k)));
                let workspace_plan = if pays_for_plan(&status) {
                    plan.clone()
                } else if ended(&status) {
                    Some(default_plan)
                } else {
                    None
                };
                SubscriptionChange {
                    customer_id: customer.clone(),
                    subscription_id: s(o, "id"),
                    plan,
                    current_period_start: period("current_period_start"),
                    current_period_end: period("current_period_end"),
                    cancel_at_period_end: o.get("cancel_at_period_end").and_then(Value::as_bool),
                    past_due: match status.as_str() {
                        "past_due" => Some(true),
                        "active" | "trialing" => Some(false),
                        _ => None,
                    },
                    status: Some(status),
                    ordered: true,
                    event_at,
                    workspace_plan,
                }
            }
            "invoice.paid" | "invoice.payment_failed" => {
                let Some(scope) = self.event_workspace(o, customer.as_deref()).await? else {
                    return Ok(None);
                };
                let current = self.inner.store.get_subscription(&scope).await?;
                let status = current.as_ref().map(|c| c.status.as_str()).unwrap_or("");
                let change = if event.kind == "invoice.paid" {
                    let recovering = matches!(status, "past_due" | "unpaid");
                    SubscriptionChange {
                        customer_id: customer.clone(),
                        status: recovering.then(|| "active".into()),
                        workspace_plan: if status == "unpaid" {
                            current.as_ref().map(|c| c.plan.clone())
                        } else {
                            None
                        },
                        past_due: Some(false),
                        event_at,
                        ..Default::default()
                    }
                } else {
                    SubscriptionChange {
                        customer_id: customer.clone(),
                        status: matches!(status, "active" | "trialing").then(|| "past_due".into()),
                        past_due: Some(true),
                        event_at,
                        ..Default::default()
                    }
                };
                return Ok(Some((scope, change)));
            }
            _ => return Ok(None),
        };
        Ok(self.event_workspace(o, customer.as_deref()).await?.map(|scope| (scope, change)))
    }

    fn known_plan(&self, plan: &str) -> bool {
        self.catalog().plans().iter().any(|p| {
            serde_json::to_value(p.tier).ok().and_then(|v| v.as_str().map(|t| t == plan))
                == Some(true)
        })
    }
}
