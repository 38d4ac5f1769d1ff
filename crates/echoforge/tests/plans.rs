//! Plan limits end to end: the monthly messages limit on every chat surface (REST JSON and
//! SSE, the OpenAI-compatible API, the widget), the documents limit on uploads and URL
//! imports, seats (members plus pending invites) on invites, document storage on uploads. The month's count starts from what `usage_daily` holds, so the tests seed it there
//! (as earlier traffic would have) rather than sending a thousand messages.

use serde_json::{Value, json};
use testkit::{AgentSpec, Options, Session, TestApp, spawn_app, spawn_app_with, token_in};

const SHOP: &str = "https://shop.example";

async fn body(resp: reqwest::Response) -> Value {
    resp.json().await.expect("a JSON body")
}

async fn expect(resp: reqwest::Response, status: u16) -> Value {
    let got = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    assert_eq!(got, status, "{text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// Stores `n` messages of today for the workspace, as flushed traffic would have.
async fn seed_messages(app: &TestApp, s: &Session, agent: &str, n: i64) {
    let now = domain::time::now_ms();
    app.app
        .store()
        .add_usage(&[store::UsageIncrement {
            workspace_id: domain::WorkspaceId::parse(&s.workspace_id).unwrap(),
            agent_id: Some(domain::AgentId::parse(agent).unwrap()),
            day: app::utc_day(now),
            metric: "messages".into(),
            quantity: n,
        }])
        .await
        .expect("usage seeded");
}

/// A widget-enabled agent on `shop.example`; returns (id, slug, public id).
async fn widget_agent(app: &TestApp, s: &Session) -> (String, String, String) {
    let id = app
        .create_agent(
            &s.workspace_id,
            "Shop helper",
            "shop-helper",
            AgentSpec {
                capabilities: vec!["widget".into()],
                config: Some(json!({"allowed_domains": ["shop.example"]})),
                ..AgentSpec::default()
            },
        )
        .await;
    let a = body(app.get(&format!("/api/v1/agents/{id}"), Some(&s.access_token)).await).await;
    (id, a["slug"].as_str().unwrap().to_owned(), a["public_id"].as_str().unwrap().to_owned())
}

async fn rest_chat(app: &TestApp, token: &str, agent: &str, sse: bool) -> reqwest::Response {
    let mut req = app
        .client
        .post(app.url(&format!("/api/v1/agents/{agent}/chat")))
        .bearer_auth(token)
        .json(&json!({"message": "What are your opening hours?"}));
    if sse {
        req = req.header("accept", "text/event-stream");
    }
    req.send().await.unwrap()
}

async fn openai_chat(app: &TestApp, key: &str, model: &str) -> reqwest::Response {
    app.client
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({"model": model, "messages": [{"role": "user", "content": "Hello?"}]}))
        .send()
        .await
        .unwrap()
}

async fn widget_chat(app: &TestApp, public_id: &str) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/api/v1/widget/{public_id}/chat")))
        .header("origin", SHOP)
        .header("echoforge-visitor", "v_visitor1_0123456789abcdef")
        .json(&json!({"message": "Do you ship abroad?"}))
        .send()
        .await
        .unwrap()
}

fn assert_messages_limit(p: &Value) {
    assert_eq!(p["code"], "plan_limit_reached", "{p}");
    assert_eq!(p["limit"], "messages_per_month", "{p}");
    assert_eq!(p["status"], 402, "{p}");
    let detail = p["detail"].as_str().unwrap();
    assert!(
        detail.contains("starter") && detail.contains("1000") && detail.contains("upgrade"),
        "{detail}"
    );
}

#[tokio::test]
async fn a_starter_workspace_at_its_monthly_messages_is_refused_on_every_chat_surface() {
    let app = spawn_app().await;
    let s = app.signed_up("owner@example.com").await;
    let t = s.access_token.as_str();
    let (agent, slug, public_id) = widget_agent(&app, &s).await;
    let key = app.create_key(&s.workspace_id, None, &["chat"]).await;
    // 996 of the starter plan's 1,000 messages are used: four more pass, one per surface.
    seed_messages(&app, &s, &agent, 996).await;

    expect(rest_chat(&app, t, &agent, false).await, 200).await;
    let sse = rest_chat(&app, t, &slug, true).await;
    assert_eq!(sse.status(), 200);
    let events = sse.text().await.unwrap();
    assert!(events.contains("run.completed"), "{events}");
    let done = expect(openai_chat(&app, &key, &slug).await, 200).await;
    assert_eq!(done["object"], "chat.completion", "{done}");
    expect(widget_chat(&app, &public_id).await, 200).await;

    // At 1,000: every surface refuses before a run starts.
    let p = expect(rest_chat(&app, t, &agent, false).await, 402).await;
    assert_messages_limit(&p);
    let refused = rest_chat(&app, t, &agent, true).await;
    assert_eq!(refused.status(), 402, "SSE is refused before the stream starts");
    assert_eq!(refused.headers()["content-type"], "application/problem+json");
    assert_messages_limit(&body(refused).await);
    let oa = expect(openai_chat(&app, &key, &slug).await, 402).await;
    assert_eq!(oa["error"]["code"], "plan_limit_reached", "{oa}");
    assert_eq!(oa["error"]["limit"], "messages_per_month", "{oa}");
    assert!(oa["error"]["message"].as_str().unwrap().contains("starter"), "{oa}");
    let w = widget_chat(&app, &public_id).await;
    assert_eq!(w.status(), 402);
    assert_eq!(w.headers()["access-control-allow-origin"], SHOP, "the page can read the refusal");
    assert_messages_limit(&body(w).await);

    // Refused messages were not answered, stored or counted.
    let runs = body(app.get("/api/v1/runs", Some(t)).await).await;
    assert_eq!(runs["data"].as_array().unwrap().len(), 4, "{runs}");
    app.app.flush().await;
    let totals = app
        .app
        .store()
        .usage_by_metric(
            &{
                #[allow(clippy::disallowed_methods)] // the test's own workspace
                store::TenantScope::assume(domain::WorkspaceId::parse(&s.workspace_id).unwrap())
            },
            &format!("{}-01", &app::utc_day(domain::time::now_ms())[..7]),
            &format!("{}-31", &app::utc_day(domain::time::now_ms())[..7]),
        )
        .await
        .unwrap();
    let messages = totals.iter().find(|t| t.metric == "messages").unwrap().quantity;
    assert_eq!(messages, 1000);

    // An operator moves the workspace to pro (10,000 a month): chat works again at once.
    app.app.create_operator("op@example.com", "Correct1horse", "Operator").await.unwrap();
    let op = app.login("op@example.com", "Correct1horse").await;
    expect(
        app.patch(
            &format!("/api/v1/admin/workspaces/{}", s.workspace_id),
            Some(&op.access_token),
            json!({"plan": "pro"}),
        )
        .await,
        200,
    )
    .await;
    expect(rest_chat(&app, t, &agent, false).await, 200).await;
}

#[tokio::test]
async fn a_workspace_under_its_monthly_messages_chats_and_another_workspace_is_not_counted() {
    let app = spawn_app().await;
    let a = app.signed_up("a@example.com").await;
    let b = app.signed_up("b@example.com").await;
    let (agent_a, _, _) = widget_agent(&app, &a).await;
    let (agent_b, _, _) = widget_agent(&app, &b).await;
    // B is at its limit; A, one message short of it, still chats once.
    seed_messages(&app, &b, &agent_b, 1000).await;
    seed_messages(&app, &a, &agent_a, 999).await;
    expect(rest_chat(&app, &a.access_token, &agent_a, false).await, 200).await;
    assert_messages_limit(
        &expect(rest_chat(&app, &b.access_token, &agent_b, false).await, 402).await,
    );
    assert_messages_limit(
        &expect(rest_chat(&app, &a.access_token, &agent_a, false).await, 402).await,
    );
}

/// Uploads one small Markdown document per name.
async fn upload(app: &TestApp, s: &Session, kb: &str, names: &[&str]) -> reqwest::Response {
    let files: Vec<(String, &str, Vec<u8>)> = names
        .iter()
        .map(|n| {
            (
                format!("{n}.md"),
                "text/markdown",
                format!("# {n}\n\nSome text about {n}.").into_bytes(),
            )
        })
        .collect();
    app.upload_documents(&s.access_token, kb, &files).await
}

fn assert_documents_limit(p: &Value) {
    assert_eq!(
        (p["code"].as_str(), p["limit"].as_str()),
        (Some("plan_limit_reached"), Some("knowledge_docs")),
        "{p}"
    );
    let detail = p["detail"].as_str().unwrap();
    assert!(detail.contains("starter") && detail.contains("10"), "{detail}");
}

#[tokio::test]
async fn the_starter_plan_refuses_the_eleventh_document() {
    let app = spawn_app().await;
    let s = app.signed_up("docs@example.com").await;
    let t = s.access_token.as_str();
    let kb =
        body(app.post("/api/v1/knowledge-bases", Some(t), json!({"name": "Docs"})).await).await;
    let kb = kb["id"].as_str().unwrap().to_owned();
    let other =
        body(app.post("/api/v1/knowledge-bases", Some(t), json!({"name": "More"})).await).await;
    let other = other["id"].as_str().unwrap().to_owned();

    // Nine in one base, then a request of two that would make eleven is refused whole.
    let names: Vec<String> = (1..=9).map(|i| format!("doc{i}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    expect(upload(&app, &s, &kb, &names).await, 202).await;
    assert_documents_limit(&expect(upload(&app, &s, &other, &["ten", "eleven"]).await, 402).await);
    // The tenth, in another base, fits; the eleventh does not, by upload or URL import.
    expect(upload(&app, &s, &other, &["ten"]).await, 202).await;
    assert_documents_limit(&expect(upload(&app, &s, &kb, &["eleven"]).await, 402).await);
    let import = app
        .post(
            &format!("/api/v1/knowledge-bases/{kb}/documents"),
            Some(t),
            json!({"urls": ["https://example.com/"]}),
        )
        .await;
    assert_documents_limit(&expect(import, 402).await);
    let listed =
        body(app.get(&format!("/api/v1/knowledge-bases/{kb}/documents"), Some(t)).await).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 9, "nothing stored past the limit");

    // Deleting one makes room again.
    let first = listed["data"][0]["id"].as_str().unwrap();
    expect(
        app.delete(&format!("/api/v1/knowledge-bases/{kb}/documents/{first}"), Some(t)).await,
        204,
    )
    .await;
    expect(upload(&app, &s, &kb, &["eleven"]).await, 202).await;
}

fn assert_limit(p: &Value, limit: &str, words: &[&str]) {
    assert_eq!(
        (p["code"].as_str(), p["limit"].as_str(), p["status"].as_u64()),
        (Some("plan_limit_reached"), Some(limit), Some(402)),
        "{p}"
    );
    let detail = p["detail"].as_str().unwrap();
    for w in words {
        assert!(detail.contains(w), "{w:?} in {detail}");
    }
}

async fn invite(app: &TestApp, s: &Session, email: &str) -> reqwest::Response {
    app.post(
        "/api/v1/workspace/invites",
        Some(&s.access_token),
        json!({"email": email, "role": "member"}),
    )
    .await
}

#[tokio::test]
async fn seats_count_members_and_pending_invites() {
    let app = spawn_app().await;
    let s = app.signed_up("seats@example.com").await;
    // Starter: three seats. The owner holds one, two invites the others.
    let first = expect(invite(&app, &s, "one@example.com").await, 201).await;
    expect(invite(&app, &s, "two@example.com").await, 201).await;
    let p = expect(invite(&app, &s, "three@example.com").await, 402).await;
    assert_limit(
        &p,
        "seats",
        &["starter", "3 seat(s)", "1 member(s)", "2 pending invite(s)", "upgrade"],
    );
    let usage = body(app.get("/api/v1/usage", Some(&s.access_token)).await).await;
    assert_eq!(usage["this_month"]["seats"], json!({"used": 3, "limit": 3}), "{usage}");
    // Revoking an invite frees its seat.
    let id = first["id"].as_str().unwrap();
    expect(
        app.delete(&format!("/api/v1/workspace/invites/{id}"), Some(&s.access_token)).await,
        204,
    )
    .await;
    expect(invite(&app, &s, "three@example.com").await, 201).await;
    // Another workspace's seats are its own.
    let other = app.signed_up("seats-other@example.com").await;
    expect(invite(&app, &other, "one@example.com").await, 201).await;
}

#[tokio::test]
async fn uploads_stop_at_the_plan_s_storage() {
    let app = spawn_app().await;
    let s = app.signed_up("storage@example.com").await;
    let t = s.access_token.as_str();
    let kb = body(app.post("/api/v1/knowledge-bases", Some(t), json!({"name": "Big"})).await).await;
    let kb = kb["id"].as_str().unwrap().to_owned();
    // Earlier uploads left 99.99 MB (of the starter plan's 100 MB), as stored documents would.
    let ws = domain::WorkspaceId::parse(&s.workspace_id).unwrap();
    #[allow(clippy::disallowed_methods)] // the test records its own workspace's earlier uploads
    let scope = store::TenantScope::assume(ws);
    let kb_id = domain::KnowledgeBaseId::parse(&kb).unwrap();
    let big = store::NewDocument {
        id: domain::DocumentId::new(),
        kb_id,
        title: "Archive".into(),
        size_bytes: 100 * 1024 * 1024 - 40,
        ..Default::default()
    };
    let stored = app.app.store().create_document(&scope, &big, domain::time::now_ms()).await;
    stored.expect("a big document recorded");
    let usage = body(app.get("/api/v1/usage", Some(t)).await).await;
    assert_eq!(usage["this_month"]["storage_mb"], json!({"used": 100, "limit": 100}), "{usage}");

    // A file that does not fit is refused whole, with nothing stored; a small one fits.
    let p = expect(upload(&app, &s, &kb, &["a-longer-document-name"]).await, 402).await;
    assert_limit(&p, "storage_mb", &["starter", "100 MB", "this upload adds", "delete documents"]);
    let files = vec![("tiny.md".to_owned(), "text/markdown", b"# T".to_vec())];
    expect(app.upload_documents(t, &kb, &files).await, 202).await;
    let listed =
        body(app.get(&format!("/api/v1/knowledge-bases/{kb}/documents"), Some(t)).await).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 2, "the archive and the tiny file");
    // Full now (within 40 bytes): even before the bytes are sent, the next upload is refused.
    let files = vec![("more.md".to_owned(), "text/markdown", vec![b'x'; 37])];
    expect(app.upload_documents(t, &kb, &files).await, 202).await;
    let files = vec![("last.md".to_owned(), "text/markdown", b"# L".to_vec())];
    let p = expect(app.upload_documents(t, &kb, &files).await, 402).await;
    assert_limit(&p, "storage_mb", &["100 MB"]);
}

/// Mails (read or not) to `to` whose subject contains `subject`.
fn mails_about(app: &TestApp, to: &str, subject: &str) -> usize {
    std::fs::read_dir(app.outbox())
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .filter(|t| {
                    t.lines().any(|l| l.to_lowercase().starts_with("to:") && l.contains(to))
                        && t.lines().any(|l| l.starts_with("Subject:") && l.contains(subject))
                })
                .count()
        })
        .unwrap_or(0)
}

#[tokio::test]
async fn admins_are_mailed_once_at_80_and_at_100_percent_of_the_month_s_messages() {
    let app = spawn_app().await;
    let a = app.signed_up("near@example.com").await;
    let (agent, _, _) = widget_agent(&app, &a).await;
    seed_messages(&app, &a, &agent, 798).await;
    // 799 of 1000: no warning yet.
    expect(rest_chat(&app, &a.access_token, &agent, false).await, 200).await;
    // The 800th message crosses 80 %: one mail; the 801st sends none.
    expect(rest_chat(&app, &a.access_token, &agent, false).await, 200).await;
    let mail =
        app.wait_for_mail("near@example.com", "starter plan's messages this month: 80% used").await;
    let mail = mail.replace("=\r\n", "").replace("=\n", "");
    assert!(mail.contains("limit of 1000 messages this month"), "{mail}");
    assert!(mail.contains("/usage"), "{mail}");
    expect(rest_chat(&app, &a.access_token, &agent, false).await, 200).await;

    // A workspace that jumps to its last message is told it is used up, not also 80 %.
    let b = app.signed_up("full@example.com").await;
    let (agent_b, _, _) = widget_agent(&app, &b).await;
    seed_messages(&app, &b, &agent_b, 999).await;
    expect(rest_chat(&app, &b.access_token, &agent_b, false).await, 200).await;
    let mail = app.wait_for_mail("full@example.com", "messages this month: limit reached").await;
    let mail = mail.replace("=\r\n", "").replace("=\n", "");
    assert!(mail.contains("has reached"), "{mail}");
    assert_messages_limit(
        &expect(rest_chat(&app, &b.access_token, &agent_b, false).await, 402).await,
    );
    assert_eq!(mails_about(&app, "full@example.com", "80% used"), 0);
    assert_eq!(mails_about(&app, "near@example.com", "80% used"), 1, "once");
    assert_eq!(mails_about(&app, "near@example.com", "limit reached"), 0);
}

/// A server whose plans the operator changed in its configuration (`[plans.<tier>]`).
async fn spawn_with_plans(
    change: impl Fn(&mut std::collections::BTreeMap<catalog::PlanTier, catalog::PlanPatch>)
    + Send
    + Sync
    + 'static,
) -> TestApp {
    let tweak = move |s: &mut echoforge::config::Settings| change(&mut s.plans);
    spawn_app_with(Options { tweak: Some(std::sync::Arc::new(tweak)), ..Options::default() }).await
}

async fn move_to_plan(app: &TestApp, op: &Session, s: &Session, plan: &str) {
    let path = format!("/api/v1/admin/workspaces/{}", s.workspace_id);
    expect(app.patch(&path, Some(&op.access_token), json!({"plan": plan})).await, 200).await;
}

async fn get_with(app: &TestApp, path: &str, key: &str) -> reqwest::Response {
    app.client.get(app.url(path)).bearer_auth(key).send().await.unwrap()
}

fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers().get(name).map(|v| v.to_str().unwrap().to_owned())
}

#[tokio::test]
async fn operators_change_plans_in_the_configuration() {
    let app = spawn_with_plans(|plans| {
        plans.insert(
            catalog::PlanTier::Starter,
            catalog::PlanPatch {
                agents: Some(catalog::Limit::AtMost(2)),
                seats: Some(catalog::Limit::Unlimited),
                ..Default::default()
            },
        );
    })
    .await;
    let s = app.signed_up("configured@example.com").await;
    let t = s.access_token.as_str();
    for name in ["One", "Two"] {
        let b = json!({"display_name": name, "template": "generic-chat"});
        expect(app.post("/api/v1/agents", Some(t), b).await, 201).await;
    }
    let b = json!({"display_name": "Three", "template": "generic-chat"});
    let p = expect(app.post("/api/v1/agents", Some(t), b).await, 402).await;
    assert_limit(&p, "agents", &["starter", "2 agent(s)", "upgrade"]);
    let usage = body(app.get("/api/v1/usage", Some(t)).await).await;
    let m = &usage["this_month"];
    assert_eq!(m["agents"], json!({"used": 2, "limit": 2}), "{usage}");
    assert_eq!(m["seats"]["limit"], Value::Null, "seats made unlimited: {usage}");
    assert_eq!(m["documents"]["limit"], 10, "what is not named stays as shipped: {usage}");
}

#[tokio::test]
async fn a_workspace_s_keys_share_its_plan_s_requests_per_minute() {
    let app = spawn_with_plans(|plans| {
        let patch = catalog::PlanPatch {
            api_requests_per_minute: Some(catalog::Limit::AtMost(5)),
            ..Default::default()
        };
        plans.insert(catalog::PlanTier::Starter, patch);
    })
    .await;
    // The counters are per UTC minute: start early in one so the test stays inside it.
    let into_minute = domain::time::now_ms().rem_euclid(60_000);
    if into_minute > 40_000 {
        tokio::time::sleep(std::time::Duration::from_millis((60_100 - into_minute) as u64)).await;
    }
    let s = app.signed_up("rpm@example.com").await;
    let a = app.create_key(&s.workspace_id, None, &["read"]).await;
    let b = app.create_key(&s.workspace_id, None, &["read"]).await;
    // Five requests between the two keys: each answered, with the workspace's window.
    let mut remaining = Vec::new();
    for key in [&a, &b, &a, &b, &a] {
        let resp = get_with(&app, "/api/v1/agents", key).await;
        assert_eq!(header(&resp, "ratelimit-limit").as_deref(), Some("5"));
        remaining.push(header(&resp, "ratelimit-remaining").unwrap());
        expect(resp, 200).await;
    }
    assert_eq!(remaining, ["4", "3", "2", "1", "0"]);
    // The sixth, by either key and on any surface, is refused until the minute is over.
    let resp = get_with(&app, "/api/v1/agents", &b).await;
    let retry: u64 = header(&resp, "retry-after").expect("Retry-After").parse().unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    let p = expect(resp, 429).await;
    assert_eq!(
        (p["code"].as_str(), p["limit"].as_str()),
        (Some("plan_rate_limited"), Some("api_requests_per_minute")),
        "{p}"
    );
    let detail = p["detail"].as_str().unwrap();
    for w in ["starter", "5 API requests a minute", "upgrade"] {
        assert!(detail.contains(w), "{w:?} in {detail}");
    }
    let resp = get_with(&app, "/v1/models", &a).await;
    assert!(header(&resp, "retry-after").is_some());
    let e = expect(resp, 429).await;
    assert_eq!(e["error"]["code"], "plan_rate_limited", "{e}");
    // People in the web app and other workspaces' keys are not held back by these keys.
    let usage = expect(app.get("/api/v1/usage", Some(&s.access_token)).await, 200).await;
    assert_eq!(usage["this_month"]["api_requests_per_minute"], json!({"used": 5, "limit": 5}));
    let other = app.signed_up("rpm-other@example.com").await;
    let c = app.create_key(&other.workspace_id, None, &["read"]).await;
    expect(get_with(&app, "/api/v1/agents", &c).await, 200).await;
    // On enterprise (no limit) the same keys are answered again at once.
    app.app.create_operator("op@example.com", "Correct1horse", "Operator").await.unwrap();
    let op = app.login("op@example.com", "Correct1horse").await;
    move_to_plan(&app, &op, &s, "enterprise").await;
    let resp = get_with(&app, "/api/v1/agents", &b).await;
    assert_eq!(header(&resp, "ratelimit-limit"), None, "no limit, no headers");
    expect(resp, 200).await;
}

async fn accept_invite(app: &TestApp, token: &str) -> reqwest::Response {
    let path = format!("/api/v1/invites/{token}/accept");
    app.post(&path, None, json!({"name": "Invited", "password": "Joiner1pass"})).await
}

#[tokio::test]
async fn an_invite_cannot_be_accepted_past_the_seats_of_a_lowered_plan() {
    let app = spawn_app().await;
    app.app.create_operator("op@example.com", "Correct1horse", "Operator").await.unwrap();
    let op = app.login("op@example.com", "Correct1horse").await;
    let s = app.signed_up("lowered@example.com").await;
    move_to_plan(&app, &op, &s, "pro").await;
    // On pro (ten seats) the owner invites three people: four seats.
    let mut tokens = Vec::new();
    for who in ["a", "b", "c"] {
        let email = format!("{who}@example.com");
        expect(invite(&app, &s, &email).await, 201).await;
        tokens.push(token_in(&app.wait_for_mail(&email, "invited").await, "Invite token: "));
    }
    expect(accept_invite(&app, &tokens[0]).await, 200).await;
    // Back on starter (three seats): a second member fits, a fourth does not.
    move_to_plan(&app, &op, &s, "starter").await;
    expect(accept_invite(&app, &tokens[1]).await, 200).await;
    let p = expect(accept_invite(&app, &tokens[2]).await, 402).await;
    assert_limit(&p, "seats", &["starter", "3 seat(s)", "3 member(s)", "upgrade"]);
    // Nothing was made for the refused invitee: no account, and the invite still open.
    let login = app
        .post(
            "/api/v1/auth/login",
            None,
            json!({"email": "c@example.com", "password": "Joiner1pass"}),
        )
        .await;
    assert_eq!(login.status(), 401);
    let members =
        expect(app.get("/api/v1/workspace/members", Some(&s.access_token)).await, 200).await;
    assert_eq!(members["data"].as_array().map(Vec::len), Some(3), "{members}");
    let invites =
        expect(app.get("/api/v1/workspace/invites", Some(&s.access_token)).await, 200).await;
    let open: Vec<&str> = invites["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["accepted_at"].is_null())
        .filter_map(|i| i["email"].as_str())
        .collect();
    assert_eq!(open, ["c@example.com"], "{invites}");
}
