//! Billing end to end against a fake Stripe speaking Stripe's wire format (form-encoded
//! requests with `Authorization: Bearer sk_…` and `Idempotency-Key`, JSON objects with `object`
//! and `id`, Stripe's error bodies, idempotent replays), with webhook deliveries signed by the
//! official `stripe` Python package (`stripe.WebhookSignature.generate_signature_header`).
#![allow(clippy::disallowed_methods)] // tests read their own workspace's usage records

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde_json::{Value, json};
use testkit::{AgentSpec, Options, Session, TestApp, spawn_app_with};

const SECRET_KEY: &str = "sk_test_echoforge";
const WEBHOOK_SECRET: &str = "whsec_test_echoforge_0123456789";

/// One request the fake received: path, form fields, headers that matter.
#[derive(Debug, Clone)]
struct Seen {
    path: String,
    form: Vec<(String, String)>,
    auth: String,
    idempotency_key: String,
}

impl Seen {
    fn field(&self, name: &str) -> Option<&str> {
        self.form.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct Fake {
    requests: Mutex<Vec<Seen>>,
    /// Idempotency key -> the answer given (replayed for the same key, as Stripe does).
    answers: Mutex<HashMap<String, Value>>,
    /// Meter events applied (by identifier), once each.
    meter_events: Mutex<Vec<(String, String, i64)>>,
    /// Answer 500 to this many meter-event requests after applying them (a lost answer).
    fail_meter_answers: Mutex<u32>,
}

type Shared = Arc<Fake>;

fn stripe_error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"error": {"type": "invalid_request_error", "message": message}})))
        .into_response()
}

async fn stripe_post(
    State(fake): State<Shared>,
    Path(path): Path<String>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    let content_type = header("content-type");
    if content_type != "application/x-www-form-urlencoded" {
        return stripe_error(StatusCode::BAD_REQUEST, "expected a form body");
    }
    let form: Vec<(String, String)> =
        url::form_urlencoded::parse(body.as_bytes()).into_owned().collect();
    let seen = Seen {
        path: format!("/{path}"),
        form,
        auth: header("authorization"),
        idempotency_key: header("idempotency-key"),
    };
    fake.requests.lock().unwrap().push(seen.clone());
    if seen.auth != format!("Bearer {SECRET_KEY}") {
        return stripe_error(StatusCode::UNAUTHORIZED, "Invalid API Key provided");
    }
    if seen.path == "/v1/billing/meter_events" && *fake.fail_meter_answers.lock().unwrap() > 0 {
        // Applied (once per key), but the answer is lost: the client must retry.
        *fake.fail_meter_answers.lock().unwrap() -= 1;
        let identifier = seen.field("identifier").unwrap_or("").to_owned();
        let mut events = fake.meter_events.lock().unwrap();
        if !events.iter().any(|(id, _, _)| *id == identifier) {
            let value = seen.field("payload[value]").unwrap_or("").parse().unwrap_or(-1);
            let customer = seen.field("payload[stripe_customer_id]").unwrap_or("").to_owned();
            events.push((identifier.clone(), customer, value));
            fake.answers.lock().unwrap().insert(
                seen.idempotency_key.clone(),
                json!({"object": "billing.meter_event", "identifier": identifier}),
            );
        }
        return stripe_error(StatusCode::INTERNAL_SERVER_ERROR, "An unknown error occurred");
    }
    if let Some(previous) = fake.answers.lock().unwrap().get(&seen.idempotency_key).cloned() {
        let mut resp = Json(previous).into_response();
        resp.headers_mut().insert("idempotent-replayed", "true".parse().unwrap());
        return resp;
    }
    let id = format!("{:x}", uuid::Uuid::now_v7().simple());
    let answer = match seen.path.as_str() {
        "/v1/checkout/sessions" => {
            if seen.field("mode") != Some("subscription") {
                return stripe_error(StatusCode::BAD_REQUEST, "mode must be subscription");
            }
            json!({"id": format!("cs_test_{id}"), "object": "checkout.session", "mode": "subscription",
                   "url": format!("https://checkout.stripe.test/c/pay/cs_test_{id}"),
                   "client_reference_id": seen.field("client_reference_id")})
        }
        "/v1/billing_portal/sessions" => {
            let Some(customer) = seen.field("customer") else {
                return stripe_error(StatusCode::BAD_REQUEST, "Missing required param: customer.");
            };
            json!({"id": format!("bps_{id}"), "object": "billing_portal.session", "customer": customer,
                   "url": format!("https://billing.stripe.test/p/session/{id}")})
        }
        "/v1/billing/meter_events" => {
            let value: i64 = seen.field("payload[value]").unwrap_or("").parse().unwrap_or(-1);
            let identifier = seen.field("identifier").unwrap_or("").to_owned();
            let customer = seen.field("payload[stripe_customer_id]").unwrap_or("").to_owned();
            fake.meter_events.lock().unwrap().push((identifier.clone(), customer, value));
            json!({"object": "billing.meter_event", "identifier": identifier,
                   "event_name": seen.field("event_name"), "payload": {"value": value.to_string()}})
        }
        _ => return stripe_error(StatusCode::NOT_FOUND, "Unrecognized request URL"),
    };
    fake.answers.lock().unwrap().insert(seen.idempotency_key.clone(), answer.clone());
    Json(answer).into_response()
}

async fn start_fake() -> (Shared, String) {
    let fake: Shared = Arc::default();
    let router = axum::Router::new().route("/{*path}", post(stripe_post)).with_state(fake.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (fake, format!("http://{addr}"))
}

async fn start_app(stripe_base: Option<String>) -> TestApp {
    start_app_tweaked(stripe_base, |_| {}).await
}

async fn start_app_tweaked(
    stripe_base: Option<String>,
    more: impl Fn(&mut echoforge::config::Settings) + Send + Sync + 'static,
) -> TestApp {
    let tweak = move |s: &mut echoforge::config::Settings| {
        more(s);
        if let Some(base) = &stripe_base {
            let st = &mut s.billing.stripe;
            st.api_base = base.clone();
            st.allow_private_hosts = true;
            st.secret_key = Some(SECRET_KEY.to_owned().into());
            st.webhook_secret = Some(WEBHOOK_SECRET.to_owned().into());
            st.prices.insert("pro".into(), "price_pro_monthly".into());
            st.prices.insert("enterprise".into(), "price_enterprise_monthly".into());
            st.metered_price = Some("price_messages_metered".into());
        }
    };
    spawn_app_with(Options { tweak: Some(Arc::new(tweak)), ..Options::default() }).await
}

/// `Stripe-Signature` for `payload` at `t`, made by the official `stripe` package.
fn python_signature(payload: &str, secret: &str, t: i64) -> String {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, stripe; print(stripe.WebhookSignature.generate_signature_header(sys.argv[1], sys.argv[2], int(sys.argv[3])))",
            payload,
            secret,
            &t.to_string(),
        ])
        .output()
        .expect("python3 runs (pip install stripe; scripts/test does)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// Whether the `stripe` package's own verifier accepts `header` for `payload`.
fn python_accepts(payload: &str, header: &str, secret: &str) -> bool {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, stripe\ntry:\n    stripe.WebhookSignature.verify_header(sys.argv[1], sys.argv[2], sys.argv[3], 300)\nexcept stripe.SignatureVerificationError:\n    sys.exit(3)",
            payload,
            header,
            secret,
        ])
        .output()
        .expect("python3 runs");
    match out.status.code() {
        Some(0) => true,
        Some(3) => false,
        _ => panic!("python failed: {}", String::from_utf8_lossy(&out.stderr)),
    }
}

fn now_secs() -> i64 {
    domain::time::now_ms() / 1000
}

fn event(id: &str, kind: &str, created: i64, object: Value) -> String {
    json!({"id": id, "object": "event", "api_version": "2025-03-31.basil", "created": created,
           "livemode": false, "type": kind, "data": {"object": object}})
    .to_string()
}

async fn deliver(app: &TestApp, payload: &str, signature: Option<&str>) -> (u16, Value) {
    let mut req = app
        .client
        .post(app.url("/api/v1/billing/stripe/webhook"))
        .header("content-type", "application/json")
        .body(payload.to_owned());
    if let Some(sig) = signature {
        req = req.header("stripe-signature", sig);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Delivers `payload` signed by the `stripe` package now.
async fn deliver_signed(app: &TestApp, payload: &str) -> Value {
    let sig = python_signature(payload, WEBHOOK_SECRET, now_secs());
    let (status, body) = deliver(app, payload, Some(&sig)).await;
    assert_eq!(status, 200, "{body}");
    body
}

async fn settings_page(app: &TestApp, s: &Session) -> String {
    let cookie = app.web_login(s).await;
    let r = app.client.get(app.url("/settings")).header("cookie", cookie).send().await.unwrap();
    assert_eq!(r.status(), 200);
    r.text().await.unwrap()
}

async fn billing(app: &TestApp, s: &Session) -> Value {
    let resp = app.get("/api/v1/billing", Some(&s.access_token)).await;
    assert_eq!(resp.status(), 200);
    resp.json().await.unwrap()
}

/// An invoice of `customer`'s subscription `sub` as Stripe sends it in an event.
fn invoice(id: &str, customer: &str, sub: &str, status: &str) -> Value {
    json!({"id": id, "object": "invoice", "customer": customer, "subscription": sub, "status": status})
}

fn subscription_object(s: &Session, status: &str, price: &str, cancel: bool, start: i64) -> Value {
    json!({"id": "sub_123", "object": "subscription", "customer": "cus_123", "status": status,
           "cancel_at_period_end": cancel, "metadata": {"workspace_id": s.workspace_id},
           "items": {"object": "list", "data": [{"id": "si_1", "object": "subscription_item",
               "price": {"id": price, "object": "price"},
               "current_period_start": start, "current_period_end": start + 30 * 86_400}]}})
}

#[tokio::test]
async fn checkout_and_webhooks_keep_the_subscription_and_plan_in_step_with_stripe() {
    let (fake, base) = start_fake().await;
    let app = start_app(Some(base)).await;
    let s = app.signed_up("owner@billing.test").await;

    let before = billing(&app, &s).await;
    assert_eq!(before["plan"], "starter");
    assert_eq!(before["stripe_enabled"], true);
    assert_eq!(before["plans_for_sale"], json!(["enterprise", "pro"]));
    assert_eq!(before["subscription"], Value::Null);
    // The Settings page offers the plans on sale other than the current one.
    let html = settings_page(&app, &s).await;
    assert!(html.contains("on the <strong>starter</strong> plan"), "{html}");
    assert!(
        html.contains(r#"data-checkout="pro""#) && html.contains(r#"data-checkout="enterprise""#)
    );
    assert!(!html.contains("data-portal"), "no customer yet: no portal");

    // Checkout: a form-encoded session for the plan's price, bound to the workspace.
    let resp =
        app.post("/api/v1/billing/checkout", Some(&s.access_token), json!({"plan": "pro"})).await;
    assert_eq!(resp.status(), 200);
    let checkout: Value = resp.json().await.unwrap();
    assert!(checkout["url"].as_str().unwrap().starts_with("https://checkout.stripe.test/"));
    let seen = fake.requests.lock().unwrap().last().cloned().unwrap();
    assert_eq!(seen.path, "/v1/checkout/sessions");
    assert_eq!(seen.auth, format!("Bearer {SECRET_KEY}"));
    assert!(!seen.idempotency_key.is_empty());
    assert_eq!(seen.field("line_items[0][price]"), Some("price_pro_monthly"));
    assert_eq!(seen.field("line_items[0][quantity]"), Some("1"));
    assert_eq!(seen.field("line_items[1][price]"), Some("price_messages_metered"));
    assert_eq!(seen.field("client_reference_id"), Some(s.workspace_id.as_str()));
    assert_eq!(seen.field("metadata[plan]"), Some("pro"));
    assert_eq!(
        seen.field("subscription_data[metadata][workspace_id]"),
        Some(s.workspace_id.as_str())
    );
    assert_eq!(seen.field("customer_email"), Some("owner@billing.test"));
    assert!(seen.field("success_url").unwrap().starts_with("http"));
    // Paying changes nothing until Stripe says so.
    assert_eq!(billing(&app, &s).await["plan"], "starter");

    let t = now_secs();
    let completed = event(
        "evt_checkout_1",
        "checkout.session.completed",
        t,
        json!({"id": checkout["id"], "object": "checkout.session", "mode": "subscription",
               "payment_status": "paid", "client_reference_id": s.workspace_id,
               "customer": "cus_123", "subscription": "sub_123",
               "metadata": {"workspace_id": s.workspace_id, "plan": "pro"}}),
    );
    assert_eq!(deliver_signed(&app, &completed).await["outcome"], "applied");
    let after = billing(&app, &s).await;
    assert_eq!(after["plan"], "pro", "{after}");
    assert_eq!(after["subscription"]["status"], "active");
    assert_eq!(after["subscription"]["has_customer"], true);
    // The same event again (a replay or a redelivery) is acknowledged, not applied twice.
    assert_eq!(deliver_signed(&app, &completed).await["outcome"], "duplicate");

    // The plan limits follow at once: pro allows 5 agents.
    let agents = app.get("/api/v1/usage", Some(&s.access_token)).await;
    let usage: Value = agents.json().await.unwrap();
    assert_eq!(usage["this_month"]["plan"], "pro", "{usage}");

    // A subscription update: the period, cancel_at_period_end, the plan from the price.
    let updated = event(
        "evt_sub_2",
        "customer.subscription.updated",
        t + 10,
        subscription_object(&s, "active", "price_enterprise_monthly", true, t),
    );
    assert_eq!(deliver_signed(&app, &updated).await["outcome"], "applied");
    let sub = billing(&app, &s).await;
    assert_eq!(sub["plan"], "enterprise");
    assert_eq!(sub["subscription"]["plan"], "enterprise");
    assert_eq!(sub["subscription"]["cancel_at_period_end"], true);
    assert_eq!(sub["subscription"]["current_period_start"], t * 1000);
    assert_eq!(sub["subscription"]["current_period_end"], (t + 30 * 86_400) * 1000);

    // An older snapshot delivered late does not undo the newer one.
    let late = event(
        "evt_sub_1",
        "customer.subscription.updated",
        t + 5,
        subscription_object(&s, "canceled", "price_pro_monthly", false, t),
    );
    assert_eq!(deliver_signed(&app, &late).await["outcome"], "stale");
    assert_eq!(billing(&app, &s).await["plan"], "enterprise");

    // A failed payment: past_due, the plan kept (a grace period); paid again: active.
    let failed = event(
        "evt_inv_1",
        "invoice.payment_failed",
        t + 20,
        invoice("in_1", "cus_123", "sub_123", "open"),
    );
    assert_eq!(deliver_signed(&app, &failed).await["outcome"], "applied");
    let due = billing(&app, &s).await;
    assert_eq!(due["subscription"]["status"], "past_due");
    assert!(due["subscription"]["past_due_since"].is_i64());
    assert_eq!(due["plan"], "enterprise");
    let paid =
        event("evt_inv_2", "invoice.paid", t + 30, invoice("in_1", "cus_123", "sub_123", "paid"));
    assert_eq!(deliver_signed(&app, &paid).await["outcome"], "applied");
    let ok = billing(&app, &s).await;
    assert_eq!(ok["subscription"]["status"], "active");
    assert_eq!(ok["subscription"]["past_due_since"], Value::Null);

    // The customer portal for the recorded customer.
    let resp = app.post("/api/v1/billing/portal", Some(&s.access_token), json!({})).await;
    assert_eq!(resp.status(), 200);
    let portal: Value = resp.json().await.unwrap();
    assert!(portal["url"].as_str().unwrap().starts_with("https://billing.stripe.test/"));
    let seen = fake.requests.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        (seen.path.as_str(), seen.field("customer")),
        ("/v1/billing_portal/sessions", Some("cus_123"))
    );

    // Deleted: back to the default plan, never deleting the workspace.
    let deleted = event(
        "evt_sub_3",
        "customer.subscription.deleted",
        t + 40,
        subscription_object(&s, "canceled", "price_enterprise_monthly", false, t),
    );
    assert_eq!(deliver_signed(&app, &deleted).await["outcome"], "applied");
    let gone = billing(&app, &s).await;
    assert_eq!(gone["plan"], "starter");
    assert_eq!(gone["subscription"]["status"], "canceled");

    // Each plan change is in the workspace's audit log, from Stripe.
    let audit: Value =
        app.get("/api/v1/audit-events?limit=50", Some(&s.access_token)).await.json().await.unwrap();
    let changes: Vec<(String, String)> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "workspace.plan_changed")
        .map(|e| {
            (
                e["detail"]["to"].as_str().unwrap().to_owned(),
                e["detail"]["source"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    assert_eq!(changes.len(), 3, "{audit}");
    assert!(changes.iter().all(|(_, source)| source == "stripe"));

    // Events of other types, or about no workspace we know, are acknowledged and ignored.
    let other =
        event("evt_other", "charge.succeeded", t, json!({"id": "ch_1", "object": "charge"}));
    assert_eq!(deliver_signed(&app, &other).await["outcome"], "ignored");
    let stranger = event(
        "evt_stranger",
        "customer.subscription.updated",
        t + 50,
        json!({"id": "sub_x", "object": "subscription", "customer": "cus_unknown", "status": "active"}),
    );
    assert_eq!(deliver_signed(&app, &stranger).await["outcome"], "ignored");
}

#[tokio::test]
async fn webhook_signatures_are_checked_as_the_stripe_package_makes_them() {
    let (_fake, base) = start_fake().await;
    let app = start_app(Some(base)).await;
    let s = app.signed_up("sig@billing.test").await;
    let t = now_secs();
    let payload = event(
        "evt_sig_1",
        "checkout.session.completed",
        t,
        json!({"id": "cs_1", "object": "checkout.session", "mode": "subscription", "payment_status": "paid",
               "client_reference_id": s.workspace_id, "customer": "cus_sig", "subscription": "sub_sig",
               "metadata": {"workspace_id": s.workspace_id, "plan": "pro"}}),
    );
    let good = python_signature(&payload, WEBHOOK_SECRET, t);
    let refused = |r: (u16, Value)| {
        assert_eq!(r.0, 400, "{}", r.1);
        assert_eq!(r.1["code"], "stripe_signature_invalid", "{}", r.1);
        r.1["detail"].as_str().unwrap().to_owned()
    };

    // Tampered: the same signature over a changed body.
    let tampered = payload.replace("\"pro\"", "\"enterprise\"");
    assert_ne!(tampered, payload);
    refused(deliver(&app, &tampered, Some(&good)).await);
    // Signed with another secret.
    refused(deliver(&app, &payload, Some(&python_signature(&payload, "whsec_other", t))).await);
    // Stale: signed 301 seconds ago (beyond the 300 s tolerance), and far ahead.
    let detail = refused(
        deliver(&app, &payload, Some(&python_signature(&payload, WEBHOOK_SECRET, t - 301))).await,
    );
    assert!(detail.contains("tolerance"), "{detail}");
    refused(
        deliver(&app, &payload, Some(&python_signature(&payload, WEBHOOK_SECRET, t + 600))).await,
    );
    // Missing or malformed headers.
    refused(deliver(&app, &payload, None).await);
    refused(deliver(&app, &payload, Some("v1=deadbeef")).await);
    refused(deliver(&app, &payload, Some(&good.replace("v1=", "v0="))).await);
    assert_eq!(billing(&app, &s).await["plan"], "starter", "nothing refused was applied");

    // Several v1 signatures (a secret being rolled): one matching is enough.
    let rolled = format!("t={t},v1={},{}", "0".repeat(64), good.split(',').nth(1).unwrap());
    let (status, body) = deliver(&app, &payload, Some(&rolled)).await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("applied")), "{body}");
    assert_eq!(billing(&app, &s).await["plan"], "pro");
    // Signed well and on time, but a replay of an applied event: acknowledged, not applied.
    let (status, body) = deliver(&app, &payload, Some(&good)).await;
    assert_eq!((status, body["outcome"].as_str()), (200, Some("duplicate")));

    // And the other way round: the package's verifier accepts our signer's headers.
    let ours = connectors::stripe::sign(payload.as_bytes(), WEBHOOK_SECRET, t);
    assert!(python_accepts(&payload, &ours, WEBHOOK_SECRET));
    assert!(!python_accepts(&tampered, &ours, WEBHOOK_SECRET));

    // A signed body that is not an event is refused too.
    let not_event = json!({"id": "ch_1", "object": "charge"}).to_string();
    let sig = python_signature(&not_event, WEBHOOK_SECRET, t);
    let (status, body) = deliver(&app, &not_event, Some(&sig)).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_event")), "{body}");
}

#[tokio::test]
async fn checkout_refuses_unknown_plans_keys_and_servers_without_stripe() {
    let (fake, base) = start_fake().await;
    let app = start_app(Some(base)).await;
    let s = app.signed_up("rules@billing.test").await;
    let problem = |status: u16| {
        move |r: (u16, Value)| {
            assert_eq!(r.0, status, "{}", r.1);
            r.1["code"].as_str().unwrap_or("").to_owned()
        }
    };
    let checkout = |plan: &'static str| {
        let app = &app;
        let token = s.access_token.clone();
        async move {
            let r = app.post("/api/v1/billing/checkout", Some(&token), json!({"plan": plan})).await;
            (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let r = checkout("gold").await;
    assert_eq!(r.1["errors"][0]["code"], "unknown_plan", "{}", r.1);
    assert_eq!(problem(422)(r), "validation_failed");
    let r = checkout("starter").await;
    assert_eq!(r.1["errors"][0]["code"], "plan_not_for_sale", "{}", r.1);
    assert_eq!(problem(422)(r), "validation_failed");
    let r = app
        .post("/api/v1/billing/checkout", Some(&s.access_token), json!({"plan": "pro", "extra": 1}))
        .await;
    assert_eq!(r.status(), 422);

    // A portal link needs a customer first.
    let r = app.post("/api/v1/billing/portal", Some(&s.access_token), json!({})).await;
    let r = (r.status().as_u16(), r.json::<Value>().await.unwrap());
    assert_eq!(problem(409)(r), "no_stripe_customer");

    // API keys do not buy plans.
    let key = app.create_key(&s.workspace_id, None, &["read", "write", "chat", "admin"]).await;
    let r = app.post("/api/v1/billing/checkout", Some(&key), json!({"plan": "pro"})).await;
    assert_eq!(r.status(), 403);
    assert!(fake.requests.lock().unwrap().is_empty(), "nothing refused reached Stripe");

    // A server without Stripe says so.
    let plain = start_app(None).await;
    let p = plain.signed_up("plain@billing.test").await;
    let view = billing(&plain, &p).await;
    assert_eq!(view["stripe_enabled"], false);
    let r =
        plain.post("/api/v1/billing/checkout", Some(&p.access_token), json!({"plan": "pro"})).await;
    let r = (r.status().as_u16(), r.json::<Value>().await.unwrap());
    assert_eq!(problem(409)(r), "billing_not_configured");
    let (status, body) = deliver(&plain, "{}", Some("t=1,v1=00")).await;
    assert_eq!((status, body["code"].as_str()), (409, Some("billing_not_configured")));
}

/// Subscribes the workspace (customer `cus_meter`) as Stripe's Checkout would.
async fn subscribe(app: &TestApp, s: &Session) {
    let completed = event(
        "evt_meter_checkout",
        "checkout.session.completed",
        now_secs(),
        json!({"id": "cs_m", "object": "checkout.session", "mode": "subscription", "payment_status": "paid",
               "client_reference_id": s.workspace_id, "customer": "cus_meter", "subscription": "sub_meter",
               "metadata": {"workspace_id": s.workspace_id, "plan": "pro"}}),
    );
    assert_eq!(deliver_signed(app, &completed).await["outcome"], "applied");
}

async fn chat(app: &TestApp, s: &Session, agent: &str, n: usize) {
    for _ in 0..n {
        let r = app
            .post(
                &format!("/api/v1/agents/{agent}/chat"),
                Some(&s.access_token),
                json!({"message": "Opening hours?"}),
            )
            .await;
        assert_eq!(r.status(), 200, "{}", r.text().await.unwrap_or_default());
    }
}

/// Waits until the workspace's usage records add up to `messages` and are all reported;
/// returns them, oldest first. (The server also flushes on its own every few seconds, so a
/// batch of chats may be one record or several.)
async fn reported(app: &TestApp, s: &Session, messages: i64) -> Vec<store::UsageRecord> {
    let scope = store::TenantScope::assume(domain::WorkspaceId::parse(&s.workspace_id).unwrap());
    for _ in 0..300 {
        let mut records = app.app.store().usage_records(&scope, 100).await.unwrap();
        let sum: i64 = records.iter().map(|r| r.quantity).sum();
        if sum == messages && records.iter().all(|r| r.reported_to_stripe.is_some()) {
            records.reverse();
            return records;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("usage records did not add up to {messages} reported messages");
}

#[tokio::test]
async fn metered_usage_reaches_stripe_once_even_when_the_report_is_retried() {
    let (fake, base) = start_fake().await;
    let app = start_app(Some(base)).await;
    let s = app.signed_up("meter@billing.test").await;
    let free = app.signed_up("free@billing.test").await;
    subscribe(&app, &s).await;
    let agent =
        app.create_agent(&s.workspace_id, "Sam", "sam", testkit::AgentSpec::default()).await;
    let free_agent =
        app.create_agent(&free.workspace_id, "Fay", "fay", testkit::AgentSpec::default()).await;

    // Stripe applies the first report but its answer is lost three times: the connector's
    // retries and then the job's own retry send the same idempotency key again.
    *fake.fail_meter_answers.lock().unwrap() = 3;
    chat(&app, &s, &agent, 3).await;
    chat(&app, &free, &free_agent, 2).await;
    app.app.flush().await;
    let first = reported(&app, &s, 3).await;
    assert!(first.iter().all(|r| r.metric == "messages"));

    chat(&app, &s, &agent, 2).await;
    app.app.flush().await;
    let all = reported(&app, &s, 5).await;
    assert_eq!(all[..first.len()], first[..], "reported records are left alone");

    // Stripe applied each record once, to the workspace's customer, though it heard the
    // first one four times; the workspace without a subscription reported nothing.
    let applied = fake.meter_events.lock().unwrap().clone();
    let expected: Vec<(String, String, i64)> =
        all.iter().map(|r| (r.id.clone(), "cus_meter".to_owned(), r.quantity)).collect();
    assert_eq!(applied, expected);
    let requests: Vec<Seen> = fake
        .requests
        .lock()
        .unwrap()
        .iter()
        .filter(|r| r.path == "/v1/billing/meter_events")
        .cloned()
        .collect();
    let sent = |id: &str| requests.iter().filter(|r| r.idempotency_key == id).count();
    assert_eq!(sent(&all[0].id), 4, "three lost answers, then the replay");
    assert!(all[1..].iter().all(|r| sent(&r.id) == 1), "the others once each");
    assert_eq!(requests.len(), all.len() + 3);
    for r in &requests {
        assert_eq!(r.field("identifier"), Some(r.idempotency_key.as_str()));
        assert_eq!(r.field("event_name"), Some("echoforge_messages"));
    }
}

#[tokio::test]
async fn credits_are_spent_per_message_refused_when_gone_and_granted_by_operators() {
    let app = start_app(None).await;
    app.app.create_operator("op@billing.test", "Correct1horse", "Operator").await.unwrap();
    let op = app.login("op@billing.test", "Correct1horse").await;
    let s = app.signed_up("spender@billing.test").await;
    let agent =
        app.create_agent(&s.workspace_id, "Sam", "sam", testkit::AgentSpec::default()).await;
    let ws = domain::WorkspaceId::parse(&s.workspace_id).unwrap();
    // Earlier traffic spent all but 2 of the starter plan's 2000 monthly credits.
    app.app
        .store()
        .append_credits(
            &[store::NewCreditEntry {
                workspace_id: ws,
                kind: "spend".into(),
                amount: -1998,
                action: Some("chat_message".into()),
                quantity: 1998,
                reference: None,
                note: String::new(),
                actor: None,
            }],
            domain::time::now_ms(),
        )
        .await
        .unwrap();

    chat(&app, &s, &agent, 2).await;
    let refused = app
        .post(
            &format!("/api/v1/agents/{agent}/chat"),
            Some(&s.access_token),
            json!({"message": "And now?"}),
        )
        .await;
    assert_eq!(refused.status(), 402);
    assert_eq!(refused.headers()["content-type"], "application/problem+json");
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["code"], "credits_exhausted", "{problem}");
    let detail = problem["detail"].as_str().unwrap();
    assert!(detail.contains("0 credit(s) left") && detail.contains("starter"), "{detail}");
    // The same on the OpenAI-compatible API.
    let key = app.create_key(&s.workspace_id, None, &["chat"]).await;
    let resp = app
        .client
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&json!({"model": "sam", "messages": [{"role": "user", "content": "Hello?"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 402);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["error"]["code"], "credits_exhausted", "{body}");

    // Usage and billing show the credits, flushed or not.
    let usage: Value = app.get("/api/v1/usage", Some(&s.access_token)).await.json().await.unwrap();
    let credits = &usage["this_month"]["credits"];
    assert_eq!(
        (credits["balance"].as_i64(), credits["monthly_allowance"].as_i64()),
        (Some(0), Some(2000)),
        "{usage}"
    );
    assert_eq!(credits["spent_this_month"], 2000);
    app.app.flush().await;
    assert_eq!(billing(&app, &s).await["credits"]["spent_this_month"], 2000);

    // Operators grant credits through the admin API; others cannot; bad amounts are refused.
    let path = format!("/api/v1/admin/workspaces/{}/credits", s.workspace_id);
    let r = app.post(&path, Some(&s.access_token), json!({"amount": 5})).await;
    assert_eq!(r.status(), 403);
    let r = app.post(&path, Some(&op.access_token), json!({"amount": 0})).await;
    assert_eq!(r.status(), 422);
    let r = app.post(&path, Some(&op.access_token), json!({"amount": 5, "kind": "gift"})).await;
    assert_eq!(r.status(), 422);
    let missing = format!("/api/v1/admin/workspaces/{}/credits", domain::WorkspaceId::new());
    assert_eq!(
        app.post(&missing, Some(&op.access_token), json!({"amount": 5})).await.status(),
        404
    );
    let r = app
        .post(
            &path,
            Some(&op.access_token),
            json!({"amount": 5, "kind": "top_up", "note": "goodwill"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.json::<Value>().await.unwrap()["balance"], 5);
    chat(&app, &s, &agent, 1).await;
    app.app.flush().await;

    // The ledger holds every movement, appended: allowance, the spends, the top-up.
    let scope = store::TenantScope::assume(ws);
    let ledger = app.app.store().credit_ledger(&scope, 50).await.unwrap();
    let kinds: Vec<&str> = ledger.iter().rev().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["spend", "allowance", "spend", "top_up", "spend"], "{ledger:?}");
    assert_eq!(app.app.store().credit_balance(&scope).await.unwrap(), 4);
    let spends: i64 = ledger.iter().filter(|e| e.kind == "spend").map(|e| e.quantity).sum();
    assert_eq!(spends, 1998 + 2 + 1, "one credit per message");
    let audit: Value =
        app.get("/api/v1/audit-events", Some(&s.access_token)).await.json().await.unwrap();
    assert!(
        audit["data"].as_array().unwrap().iter().any(|e| e["action"] == "credits.granted"),
        "{audit}"
    );
}

#[tokio::test]
async fn a_workspace_past_due_beyond_its_grace_is_read_only_until_it_pays() {
    let (_fake, base) = start_fake().await;
    // No grace at all: the first failed payment makes the workspace read-only.
    let app = start_app_tweaked(Some(base), |s| s.billing.past_due_grace_days = 0).await;
    let s = app.signed_up("late-payer@example.com").await;
    let agent = app.create_agent(&s.workspace_id, "Ada", "ada", AgentSpec::default()).await;
    let key = app.create_key(&s.workspace_id, None, &["chat", "read"]).await;
    subscribe(&app, &s).await;
    chat(&app, &s, &agent, 1).await;
    let t = Some(s.access_token.as_str());

    let failed = event(
        "evt_late_1",
        "invoice.payment_failed",
        now_secs(),
        invoice("in_late", "cus_meter", "sub_meter", "open"),
    );
    assert_eq!(deliver_signed(&app, &failed).await["outcome"], "applied");
    let read_only = |r: (u16, Value)| {
        assert_eq!(r.0, 402, "{}", r.1);
        assert_eq!(r.1["code"], "workspace_read_only", "{}", r.1);
        let detail = r.1["detail"].as_str().unwrap();
        assert!(detail.contains("read-only") && detail.contains("nothing is deleted"), "{detail}");
    };
    let answer = |r: reqwest::Response| async move {
        (r.status().as_u16(), r.json::<Value>().await.unwrap_or(Value::Null))
    };
    // Writes and chats are refused on the REST API, and on /v1 in OpenAI's shape.
    let r = app.post(&format!("/api/v1/agents/{agent}/chat"), t, json!({"message": "Hi"})).await;
    read_only(answer(r).await);
    read_only(answer(app.post("/api/v1/knowledge-bases", t, json!({"name": "New"})).await).await);
    let r = app
        .client
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(&key)
        .json(&json!({"model": "ada", "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .unwrap();
    let (status, body) = answer(r).await;
    assert_eq!(status, 402, "{body}");
    assert_eq!(body["error"]["code"], "workspace_read_only", "{body}");
    // Reads work, nothing is gone, and the owner can still go and pay.
    let agents = answer(app.get("/api/v1/agents", t).await).await;
    assert_eq!((agents.0, agents.1["data"].as_array().map(Vec::len)), (200, Some(1)));
    let convs = answer(app.get("/api/v1/conversations", t).await).await;
    assert_eq!((convs.0, convs.1["data"].as_array().map(Vec::len)), (200, Some(1)));
    assert_eq!(app.post("/api/v1/billing/portal", t, json!({})).await.status(), 200);
    let html = settings_page(&app, &s).await;
    assert!(html.contains("data-read-only") && html.contains("read-only"), "{html}");
    assert!(html.contains("data-portal"), "the owner can go and pay: {html}");

    // Paid: writable again at once.
    let paid = event(
        "evt_late_2",
        "invoice.paid",
        now_secs(),
        invoice("in_late", "cus_meter", "sub_meter", "paid"),
    );
    assert_eq!(deliver_signed(&app, &paid).await["outcome"], "applied");
    chat(&app, &s, &agent, 1).await;
    let kb = app.post("/api/v1/knowledge-bases", t, json!({"name": "New"})).await;
    assert_eq!(kb.status(), 201);
}
