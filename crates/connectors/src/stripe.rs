//! Stripe over its REST API (form-encoded requests, JSON answers, `Authorization: Bearer
//! sk_…`): Checkout sessions for a plan's price, customer-portal sessions, meter events for
//! metered usage (with an `Idempotency-Key` and Stripe's own `identifier`, so a retried report is
//! applied once), and the verification of webhook signatures (`Stripe-Signature`:
//! `t=<unix seconds>,v1=<hex HMAC-SHA256 of "t.payload" keyed by the endpoint secret>`, several
//! `v1` allowed while a secret is rolled, a tolerance on `t`).
//!
//! The base URL is the operator's (`https://api.stripe.com` by default), so tests and proxies
//! point it elsewhere; every call goes through the SSRF guard.

use fetch::{ApiRequest, ApiResponse, FetchError, GuardedClient, Method};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::retry;

/// Stripe's default tolerance on a webhook's timestamp, in seconds.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;

/// Why a Stripe call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StripeError {
    /// Stripe refused the request (4xx): bad parameters, unknown price or customer, bad key.
    #[error("Stripe refused the request (HTTP {status}): {message}")]
    Refused { status: u16, message: String },
    /// Stripe is unreachable or failing (5xx, 429, transport); worth retrying.
    #[error("Stripe is unavailable: {0}")]
    Unavailable(String),
    /// Stripe answered something this client does not understand.
    #[error("unexpected answer from Stripe: {0}")]
    Unexpected(String),
}

impl From<FetchError> for StripeError {
    fn from(e: FetchError) -> Self {
        StripeError::Unavailable(e.to_string())
    }
}

/// A Stripe API client (cheap to clone).
#[derive(Clone)]
pub struct StripeClient {
    http: GuardedClient,
    base: String,
    secret_key: String,
}

impl std::fmt::Debug for StripeClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StripeClient").field("base", &self.base).finish_non_exhaustive()
    }
}

/// A Checkout session to create: a subscription to `price` for one workspace.
#[derive(Debug, Clone)]
pub struct CheckoutRequest<'a> {
    pub price: &'a str,
    /// A metered price billed per usage (reported as meter events), if the operator has one.
    pub metered_price: Option<&'a str>,
    /// The workspace's Stripe customer when it has one; otherwise Stripe makes one from
    /// `customer_email`.
    pub customer: Option<&'a str>,
    pub customer_email: Option<&'a str>,
    /// Our reference (the workspace id), echoed back in `checkout.session.completed`.
    pub client_reference_id: &'a str,
    /// Copied to the session's and the subscription's metadata.
    pub metadata: &'a [(&'a str, &'a str)],
    pub success_url: &'a str,
    pub cancel_url: &'a str,
    /// Sent as `Idempotency-Key`.
    pub idempotency_key: &'a str,
}

/// A created Checkout session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckoutSession {
    pub id: String,
    /// Where to send the customer.
    pub url: String,
}

/// One metered usage quantity (a Billing meter event).
#[derive(Debug, Clone)]
pub struct MeterEvent<'a> {
    /// The meter's `event_name`.
    pub event_name: &'a str,
    pub customer: &'a str,
    pub value: i64,
    /// Unique per record: Stripe's dedup `identifier` and our `Idempotency-Key`.
    pub identifier: &'a str,
    /// When the usage happened, in Unix seconds.
    pub timestamp_secs: i64,
}

impl StripeClient {
    pub fn new(http: GuardedClient, base: &str, secret_key: &str) -> Self {
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            secret_key: secret_key.to_owned(),
        }
    }

    async fn post(
        &self,
        path: &str,
        form: &[(&str, &str)],
        idempotency_key: &str,
    ) -> Result<Value, StripeError> {
        let url = format!("{}{path}", self.base);
        let request = ApiRequest::new(Method::POST, &url)
            .bearer(&self.secret_key)
            .header("idempotency-key", idempotency_key)
            .form(form);
        // Retrying is safe: the idempotency key makes Stripe apply the request once.
        answer(retry::send(&self.http, &request).await?)
    }

    /// Creates a Checkout session (mode `subscription`) and returns its id and URL.
    pub async fn create_checkout_session(
        &self,
        r: &CheckoutRequest<'_>,
    ) -> Result<CheckoutSession, StripeError> {
        let mut form: Vec<(String, &str)> = vec![
            ("mode".into(), "subscription"),
            ("line_items[0][price]".into(), r.price),
            ("line_items[0][quantity]".into(), "1"),
            ("client_reference_id".into(), r.client_reference_id),
            ("success_url".into(), r.success_url),
            ("cancel_url".into(), r.cancel_url),
        ];
        if let Some(metered) = r.metered_price {
            form.push(("line_items[1][price]".into(), metered));
        }
        match (r.customer, r.customer_email) {
            (Some(c), _) => form.push(("customer".into(), c)),
            (None, Some(e)) => form.push(("customer_email".into(), e)),
            (None, None) => {}
        }
        for (k, v) in r.metadata {
            form.push((format!("metadata[{k}]"), v));
            form.push((format!("subscription_data[metadata][{k}]"), v));
        }
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        let v = self.post("/v1/checkout/sessions", &pairs, r.idempotency_key).await?;
        match (v["id"].as_str(), v["url"].as_str()) {
            (Some(id), Some(url)) => Ok(CheckoutSession { id: id.to_owned(), url: url.to_owned() }),
            _ => Err(StripeError::Unexpected("a checkout session without id or url".into())),
        }
    }

    /// Creates a customer-portal session for `customer` and returns its URL.
    pub async fn create_portal_session(
        &self,
        customer: &str,
        return_url: &str,
        idempotency_key: &str,
    ) -> Result<String, StripeError> {
        let v = self
            .post(
                "/v1/billing_portal/sessions",
                &[("customer", customer), ("return_url", return_url)],
                idempotency_key,
            )
            .await?;
        v["url"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| StripeError::Unexpected("a portal session without url".into()))
    }

    /// Reports one metered quantity (`POST /v1/billing/meter_events`).
    pub async fn report_meter_event(&self, e: &MeterEvent<'_>) -> Result<(), StripeError> {
        let (value, timestamp) = (e.value.to_string(), e.timestamp_secs.to_string());
        let v = self
            .post(
                "/v1/billing/meter_events",
                &[
                    ("event_name", e.event_name),
                    ("payload[stripe_customer_id]", e.customer),
                    ("payload[value]", &value),
                    ("identifier", e.identifier),
                    ("timestamp", &timestamp),
                ],
                e.identifier,
            )
            .await?;
        if v["object"].as_str() == Some("billing.meter_event") {
            Ok(())
        } else {
            Err(StripeError::Unexpected("not a billing.meter_event".into()))
        }
    }
}

/// A 2xx JSON body, or Stripe's error (`{"error": {"message", "type", "code"}}`) as a
/// [`StripeError`].
fn answer(r: ApiResponse) -> Result<Value, StripeError> {
    let body = r.json();
    if r.is_success() {
        return Ok(body);
    }
    let message = body["error"]["message"].as_str().unwrap_or("no message").to_owned();
    if r.status >= 500 || r.status == 429 {
        Err(StripeError::Unavailable(format!("HTTP {}: {message}", r.status)))
    } else {
        Err(StripeError::Refused { status: r.status, message })
    }
}

/// Why a webhook's signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the Stripe-Signature header is missing")]
    Missing,
    #[error("the Stripe-Signature header has no timestamp (`t=`) or no v1 signature")]
    Malformed,
    #[error("no v1 signature matches the payload")]
    Mismatch,
    #[error(
        "the signature's timestamp is {age_secs} s from now, beyond the {tolerance_secs} s tolerance"
    )]
    Stale { age_secs: i64, tolerance_secs: i64 },
}

/// Verifies a `Stripe-Signature` header over the raw `payload`: any `v1` signature must be the
/// hex HMAC-SHA256 of `"{t}.{payload}"` keyed by `secret` (the whole `whsec_…` string, as
/// Stripe does), and `t` within `tolerance_secs` of `now_secs` (either side).
pub fn verify_signature(
    payload: &[u8],
    header: Option<&str>,
    secret: &str,
    now_secs: i64,
    tolerance_secs: i64,
) -> Result<(), SignatureError> {
    let header = header.filter(|h| !h.trim().is_empty()).ok_or(SignatureError::Missing)?;
    let mut timestamp: Option<i64> = None;
    let mut signatures: Vec<Vec<u8>> = Vec::new();
    for item in header.split(',') {
        let Some((key, value)) = item.trim().split_once('=') else { continue };
        match key {
            "t" if timestamp.is_none() => timestamp = value.parse().ok(),
            // A signature that is not hex cannot match; it is skipped, not an error.
            "v1" => signatures.extend(hex::decode(value).ok()),
            _ => {}
        }
    }
    let t = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    let matches = signatures.iter().any(|sig| {
        let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
        mac.update(t.to_string().as_bytes());
        mac.update(b".");
        mac.update(payload);
        mac.verify_slice(sig).is_ok() // constant-time
    });
    if !matches {
        return Err(SignatureError::Mismatch);
    }
    let age = now_secs - t;
    if age.abs() > tolerance_secs {
        return Err(SignatureError::Stale { age_secs: age, tolerance_secs });
    }
    Ok(())
}

/// The `Stripe-Signature` header Stripe would send for `payload` at `t` (for tests and tools).
pub fn sign(payload: &[u8], secret: &str, t: i64) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{t}.").as_bytes());
    mac.update(payload);
    format!("t={t},v1={}", hex::encode(mac.finalize().into_bytes()))
}

/// A webhook event (`{"id": "evt_…", "object": "event", "type", "created", "data": {"object"}}`).
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub id: String,
    pub kind: String,
    /// Unix seconds.
    pub created: i64,
    /// `data.object`: the checkout session, subscription or invoice.
    pub object: Value,
}

/// Parses a verified webhook payload.
pub fn parse_event(payload: &[u8]) -> Result<Event, StripeError> {
    let v: Value = serde_json::from_slice(payload)
        .map_err(|e| StripeError::Unexpected(format!("the event is not JSON: {e}")))?;
    if v["object"].as_str() != Some("event") {
        return Err(StripeError::Unexpected("the payload is not an event (`object`)".into()));
    }
    match (v["id"].as_str(), v["type"].as_str(), v["data"]["object"].is_object()) {
        (Some(id), Some(kind), true) => Ok(Event {
            id: id.to_owned(),
            kind: kind.to_owned(),
            created: v["created"].as_i64().unwrap_or(0),
            object: v["data"]["object"].clone(),
        }),
        _ => Err(StripeError::Unexpected("an event needs `id`, `type` and `data.object`".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";

    #[test]
    fn a_signed_payload_verifies_and_a_changed_one_does_not() {
        let payload = br#"{"id":"evt_1","object":"event"}"#;
        let header = sign(payload, SECRET, 1_000);
        assert_eq!(verify_signature(payload, Some(&header), SECRET, 1_010, 300), Ok(()));
        assert_eq!(
            verify_signature(
                br#"{"id":"evt_2","object":"event"}"#,
                Some(&header),
                SECRET,
                1_010,
                300
            ),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify_signature(payload, Some(&header), "whsec_other", 1_010, 300),
            Err(SignatureError::Mismatch)
        );
    }

    #[test]
    fn any_of_several_v1_signatures_may_match_and_v0_is_ignored() {
        let payload = b"{}";
        let good = sign(payload, SECRET, 50);
        let sig = good.split("v1=").nth(1).unwrap();
        let header = format!("t=50,v0={sig},v1={},v1={sig}", "ab".repeat(32));
        assert_eq!(verify_signature(payload, Some(&header), SECRET, 60, 300), Ok(()));
        let only_v0 = format!("t=50,v0={sig}");
        assert_eq!(
            verify_signature(payload, Some(&only_v0), SECRET, 60, 300),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn stale_missing_and_malformed_headers_are_refused() {
        let payload = b"{}";
        let header = sign(payload, SECRET, 1_000);
        assert_eq!(
            verify_signature(payload, Some(&header), SECRET, 1_301, 300),
            Err(SignatureError::Stale { age_secs: 301, tolerance_secs: 300 })
        );
        assert_eq!(
            verify_signature(payload, None, SECRET, 1_000, 300),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify_signature(payload, Some("v1=abcd"), SECRET, 1_000, 300),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify_signature(payload, Some("t=1000"), SECRET, 1_000, 300),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn events_need_id_type_and_an_object() {
        let e = parse_event(
            br#"{"id":"evt_1","object":"event","type":"invoice.paid","created":7,"data":{"object":{"id":"in_1"}}}"#,
        )
        .unwrap();
        assert_eq!((e.id.as_str(), e.kind.as_str(), e.created), ("evt_1", "invoice.paid", 7));
        assert!(parse_event(br#"{"id":"evt_1","object":"charge"}"#).is_err());
        assert!(parse_event(b"not json").is_err());
    }
}
