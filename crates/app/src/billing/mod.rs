//! Billing through Stripe: the operator's Stripe setup (`[billing.stripe]`), a workspace's
//! billing status, Checkout for a plan's price, the customer-portal link, the webhook that
//! keeps the workspace's subscription and plan in step with Stripe ([`webhook`]), and the
//! job that reports metered usage ([`metered`]).
//!
//! Vendor wire details live in `connectors::stripe`; this module decides what they mean.

pub(crate) mod credits;
pub(crate) mod metered;
pub(crate) mod standing;
pub(crate) mod webhook;

use std::collections::BTreeMap;
use std::sync::Arc;

use catalog::PlanTier;
use connectors::stripe::{CheckoutRequest, StripeClient, StripeError};
use parking_lot::RwLock;
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::Value;
use store::Subscription;
use utoipa::ToSchema;

use crate::plan_limits::tier_name;
use crate::{App, AppError, Principal};

pub use credits::{CreditGrant, CreditsView};
pub use webhook::WebhookReceipt;

/// The operator's Stripe account and prices.
#[derive(Debug, Clone)]
pub struct StripeSettings {
    /// `https://api.stripe.com` unless the operator points it elsewhere.
    pub api_base: String,
    pub secret_key: SecretString,
    /// The webhook endpoint's signing secret (`whsec_…`); unset: webhooks are refused.
    pub webhook_secret: Option<SecretString>,
    /// A recurring price id per plan (`pro = "price_…"`): the plans on sale.
    pub prices: BTreeMap<String, String>,
    /// A metered price added to every Checkout, billed from the reported usage.
    pub metered_price: Option<String>,
    /// The Billing meter's `event_name` metered usage is reported as.
    pub meter_event: String,
    /// Seconds a webhook's signature timestamp may be off (Stripe's default: 300).
    pub tolerance_secs: i64,
    /// Let `api_base` be on loopback or a private network (tests, a proxy).
    pub allow_private_hosts: bool,
}

impl StripeSettings {
    /// Settings with Stripe's defaults around a secret key.
    pub fn new(secret_key: SecretString) -> Self {
        Self {
            api_base: "https://api.stripe.com".into(),
            secret_key,
            webhook_secret: None,
            prices: BTreeMap::new(),
            metered_price: None,
            meter_event: "echoforge_messages".into(),
            tolerance_secs: connectors::stripe::DEFAULT_TOLERANCE_SECS,
            allow_private_hosts: false,
        }
    }
}

/// Stripe as set up by the operator, with its client.
pub(crate) struct StripeSetup {
    pub(crate) settings: StripeSettings,
    pub(crate) client: StripeClient,
}

/// Billing's shared state: Stripe's setup, if any.
#[derive(Default)]
pub(crate) struct Billing {
    stripe: RwLock<Option<Arc<StripeSetup>>>,
    pub(crate) credits: credits::Credits,
    pub(crate) standing: standing::Standing,
}

/// A workspace's subscription as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct SubscriptionView {
    /// The plan the subscription pays for.
    pub plan: String,
    /// Stripe's status: `active`, `trialing`, `past_due`, `canceled`, `unpaid`, `incomplete`, …
    pub status: String,
    /// The current period, epoch milliseconds.
    pub current_period_start: Option<i64>,
    pub current_period_end: Option<i64>,
    /// The subscription ends when the current period does.
    pub cancel_at_period_end: bool,
    /// Since when payments have been failing (epoch ms; `null`: paid up).
    pub past_due_since: Option<i64>,
    /// Whether the workspace has a Stripe customer (the portal link works).
    pub has_customer: bool,
}

impl From<Subscription> for SubscriptionView {
    fn from(s: Subscription) -> Self {
        Self {
            plan: s.plan,
            status: s.status,
            current_period_start: s.current_period_start,
            current_period_end: s.current_period_end,
            cancel_at_period_end: s.cancel_at_period_end,
            past_due_since: s.past_due_since,
            has_customer: s.stripe_customer_id.is_some(),
        }
    }
}

/// A workspace's billing status.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BillingView {
    /// The workspace's plan now.
    pub plan: String,
    /// Whether this server takes payments through Stripe.
    pub stripe_enabled: bool,
    /// The plans that can be bought (`POST /api/v1/billing/checkout`).
    pub plans_for_sale: Vec<String>,
    /// `null`: never subscribed.
    pub subscription: Option<SubscriptionView>,
    /// The credits ledger's balance and this month's spend.
    pub credits: CreditsView,
}

/// Where to send the person next (a Stripe-hosted page).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct BillingRedirect {
    pub url: String,
    /// The Checkout session's id (`cs_…`), for Checkout.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

pub(crate) fn stripe_error(e: StripeError) -> AppError {
    match e {
        StripeError::Refused { status, message } => {
            tracing::error!(status, %message, "Stripe refused a request");
            AppError::conflict(
                "stripe_refused",
                "Stripe refused the request; the operator's Stripe setup (prices, keys) needs a look",
            )
        }
        other => AppError::Unavailable(other.to_string()),
    }
}

fn not_configured() -> AppError {
    AppError::conflict(
        "billing_not_configured",
        "this server does not take payments (Stripe is not set up)",
    )
}

impl App {
    /// Sets up Stripe (`None`: no payments). Call at start.
    pub fn set_stripe(&self, settings: Option<StripeSettings>) {
        let setup = settings.map(|settings| {
            let http = fetch::GuardedClient::new(fetch::FetchConfig {
                policy: fetch::AddressPolicy {
                    allow_private: settings.allow_private_hosts,
                    ..Default::default()
                },
                respect_robots: false,
                max_redirects: 0,
                timeout: std::time::Duration::from_secs(20),
                max_response_bytes: 1024 * 1024,
                ..Default::default()
            })
            .expect("the Stripe HTTP client builds");
            let client =
                StripeClient::new(http, &settings.api_base, settings.secret_key.expose_secret());
            Arc::new(StripeSetup { settings, client })
        });
        *self.inner.billing.stripe.write() = setup;
    }

    pub(crate) fn stripe(&self) -> Option<Arc<StripeSetup>> {
        self.inner.billing.stripe.read().clone()
    }

    /// The workspace's plan, subscription and what can be bought (`read`, not an agent key).
    pub async fn billing(&self, p: &Principal) -> Result<BillingView, AppError> {
        if crate::auth::access::key_agent(p).is_some() {
            return Err(AppError::forbidden(
                "workspace_key_required",
                "billing belongs to the workspace; an agent key cannot read it",
            ));
        }
        p.require(domain::Permission::Read)?;
        let scope = p.scope();
        let ws = self.inner.store.get_workspace(&scope).await?;
        let subscription = self.inner.store.get_subscription(&scope).await?;
        let stripe = self.stripe();
        Ok(BillingView {
            plan: ws.plan,
            stripe_enabled: stripe.is_some(),
            plans_for_sale: stripe
                .map(|s| s.settings.prices.keys().cloned().collect())
                .unwrap_or_default(),
            subscription: subscription.map(Into::into),
            credits: self.credits_view(&scope).await?,
        })
    }

    /// Starts a Stripe Checkout for `plan` (owners and admins, signed in): the URL to send the
    /// person to. The workspace's plan changes when Stripe reports the payment (webhook).
    pub async fn billing_checkout(
        &self,
        p: &Principal,
        plan: &str,
    ) -> Result<BillingRedirect, AppError> {
        p.require_manager()?;
        let stripe = self.stripe().ok_or_else(not_configured)?;
        let tier: PlanTier =
            serde_json::from_value(Value::String(plan.to_owned())).map_err(|_| {
                AppError::field(
                    "/plan",
                    "unknown_plan",
                    "unknown plan; use starter, pro or enterprise",
                )
            })?;
        let plan = tier_name(tier);
        let Some(price) = stripe.settings.prices.get(plan) else {
            let on_sale: Vec<&str> = stripe.settings.prices.keys().map(String::as_str).collect();
            return Err(AppError::field(
                "/plan",
                "plan_not_for_sale",
                format!(
                    "the {plan} plan cannot be bought here; plans for sale: {}",
                    on_sale.join(", ")
                ),
            ));
        };
        let scope = p.scope();
        let ws = scope.workspace_id().to_string();
        let customer =
            self.inner.store.get_subscription(&scope).await?.and_then(|s| s.stripe_customer_id);
        let email = match p.user_id() {
            Some(uid) => Some(self.inner.store.get_user(uid).await?.email),
            None => None,
        };
        let base = self.config().public_url.trim_end_matches('/').to_owned();
        let success = format!("{base}/usage?checkout=success");
        let cancel = format!("{base}/usage?checkout=cancelled");
        let key = format!("checkout-{}", uuid::Uuid::now_v7().simple());
        let session = stripe
            .client
            .create_checkout_session(&CheckoutRequest {
                price,
                metered_price: stripe.settings.metered_price.as_deref(),
                customer: customer.as_deref(),
                customer_email: if customer.is_some() { None } else { email.as_deref() },
                client_reference_id: &ws,
                metadata: &[("workspace_id", &ws), ("plan", plan)],
                success_url: &success,
                cancel_url: &cancel,
                idempotency_key: &key,
            })
            .await
            .map_err(stripe_error)?;
        Ok(BillingRedirect { url: session.url, id: Some(session.id) })
    }

    /// A link to Stripe's customer portal (owners and admins): change the card, cancel, see
    /// invoices. Needs a Stripe customer (after a first Checkout).
    pub async fn billing_portal(&self, p: &Principal) -> Result<BillingRedirect, AppError> {
        p.require_manager()?;
        let stripe = self.stripe().ok_or_else(not_configured)?;
        let customer = self
            .inner
            .store
            .get_subscription(&p.scope())
            .await?
            .and_then(|s| s.stripe_customer_id)
            .ok_or_else(|| {
                AppError::conflict(
                    "no_stripe_customer",
                    "this workspace has not subscribed yet; start with POST /api/v1/billing/checkout",
                )
            })?;
        let base = self.config().public_url.trim_end_matches('/').to_owned();
        let key = format!("portal-{}", uuid::Uuid::now_v7().simple());
        let url = stripe
            .client
            .create_portal_session(&customer, &format!("{base}/usage"), &key)
            .await
            .map_err(stripe_error)?;
        Ok(BillingRedirect { url, id: None })
    }
}
