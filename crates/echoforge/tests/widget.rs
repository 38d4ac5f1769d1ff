//! The embeddable widget's public surface end to end: `/widget.js`, and the config, chat and
//! history endpoints as a page on an allowed (or refused) origin calls them — a real server on
//! port 0, agents made through the agents API, answers from the scripted fake LLM.

use std::time::Duration;

use fakellm::{FakeLlm, Reply};
use serde_json::{Value, json};
use testkit::{AgentSpec, Options, Session, TestApp, spawn_app_with};

const SHOP: &str = "https://shop.example";

async fn body(resp: reqwest::Response) -> Value {
    resp.json().await.expect("a JSON body")
}

/// An agent made as a user would (customer-support template, widget on by default).
struct Agent {
    id: String,
    public_id: String,
    version: i64,
}

async fn start(fake: Option<&FakeLlm>, name: &str, config: Value) -> (TestApp, Session, Agent) {
    let app = spawn_app_with(Options {
        llm_base_url: fake.map(|f| f.base_url.clone()),
        ..Options::default()
    })
    .await;
    let s = app.signed_up("owner@example.com").await;
    let resp = app
        .post(
            "/api/v1/agents",
            Some(&s.access_token),
            json!({
                "display_name": name,
                "template": "customer-support-agent",
                "answers": {"company_name": "Acme", "greeting": "Hello!"},
                "config": config,
            }),
        )
        .await;
    assert_eq!(resp.status(), 201, "create agent: {}", resp.text().await.unwrap_or_default());
    let a = body(resp).await;
    let agent = Agent {
        id: a["id"].as_str().unwrap().to_owned(),
        public_id: a["public_id"].as_str().unwrap().to_owned(),
        version: a["version"].as_i64().unwrap(),
    };
    assert!(agent.public_id.starts_with("pub_"), "{a}");
    (app, s, agent)
}

fn shop_config() -> Value {
    json!({
        "allowed_domains": ["shop.example"],
        "position": "bottom-left",
        "theme": "dark",
        "size": "large",
        "colors": {"primary": "#112233", "secondary": "#445566"},
        "welcome_message": "Welcome to Acme!",
        "placeholder_text": "Ask Acme…",
        "trigger": {"show_on_mobile": false, "delay_seconds": 3},
    })
}

fn visitor(n: u8) -> String {
    format!("v_visitor{n}_0123456789abcdef")
}

/// A request from a page: `origin` as the browser would send it (`None`: no Origin header).
fn from(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    origin: Option<&str>,
) -> reqwest::RequestBuilder {
    let req = app.client.request(method, app.url(path));
    match origin {
        Some(o) => req.header("origin", o),
        None => req,
    }
}

async fn chat(
    app: &TestApp,
    a: &Agent,
    origin: Option<&str>,
    who: &str,
    message: Value,
) -> reqwest::Response {
    from(app, reqwest::Method::POST, &format!("/api/v1/widget/{}/chat", a.public_id), origin)
        .header("echoforge-visitor", who)
        .json(&message)
        .send()
        .await
        .unwrap()
}

async fn history(
    app: &TestApp,
    a: &Agent,
    origin: Option<&str>,
    who: &str,
    conversation: &str,
) -> reqwest::Response {
    from(
        app,
        reqwest::Method::GET,
        &format!("/api/v1/widget/{}/conversations/{conversation}", a.public_id),
        origin,
    )
    .header("echoforge-visitor", who)
    .send()
    .await
    .unwrap()
}

async fn config(app: &TestApp, a: &Agent, origin: Option<&str>) -> reqwest::Response {
    from(app, reqwest::Method::GET, &format!("/api/v1/widget/{}/config", a.public_id), origin)
        .send()
        .await
        .unwrap()
}

async fn preflight(app: &TestApp, path: &str, origin: &str) -> reqwest::Response {
    from(app, reqwest::Method::OPTIONS, path, Some(origin))
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type, echoforge-visitor")
        .send()
        .await
        .unwrap()
}

fn allow_origin(r: &reqwest::Response) -> Option<&str> {
    r.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap())
}

/// Asserts a refusal the page cannot read: 403 problem+json, no CORS allowance.
async fn assert_refused(r: reqwest::Response, code: &str) {
    assert_eq!(r.status(), 403);
    assert_eq!(allow_origin(&r), None, "a refused origin gets no CORS allowance");
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    assert_eq!(body(r).await["code"], code);
}

/// `(event name, data JSON)` pairs of an SSE body.
fn sse_events(text: &str) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for block in text.split("\n\n") {
        let mut name = None;
        let mut data = String::new();
        for line in block.lines() {
            if let Some(n) = line.strip_prefix("event: ") {
                name = Some(n.to_owned());
            } else if let Some(d) = line.strip_prefix("data: ") {
                data.push_str(d);
            }
        }
        if let Some(n) = name {
            out.push((n, serde_json::from_str(&data).expect("data is JSON")));
        }
    }
    out
}

async fn patch_agent(app: &TestApp, s: &Session, a: &mut Agent, patch: Value) {
    let mut patch = patch;
    patch["version"] = json!(a.version);
    let r = app.patch(&format!("/api/v1/agents/{}", a.id), Some(&s.access_token), patch).await;
    assert_eq!(r.status(), 200, "patch agent: {}", r.text().await.unwrap_or_default());
    a.version = body(r).await["version"].as_i64().unwrap();
}

#[tokio::test]
async fn the_script_is_served_from_the_binary_with_cache_headers() {
    let app = spawn_app_with(Options::default()).await;
    let r = app.get("/widget.js", None).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "text/javascript; charset=utf-8");
    assert!(r.headers()["cache-control"].to_str().unwrap().contains("max-age="));
    let etag = r.headers()["etag"].to_str().unwrap().to_owned();
    let js = r.text().await.unwrap();
    assert!(js.contains("attachShadow"), "the widget draws in a shadow root");
    assert!(js.contains("/api/v1/widget/"));
    assert!(!js.contains("innerHTML"), "the widget never parses text as HTML");
    let again = app.client.get(app.url("/widget.js")).header("if-none-match", &etag).send().await;
    assert_eq!(again.unwrap().status(), 304);
    let doc = body(app.get("/api/v1/openapi.json", None).await).await;
    for path in [
        "/api/v1/widget/{public_id}/config",
        "/api/v1/widget/{public_id}/chat",
        "/api/v1/widget/{public_id}/conversations/{conversation}",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }
}

#[tokio::test]
async fn an_allowed_page_gets_the_public_config_and_nothing_private() {
    let (app, s, a) = start(None, "Ava", shop_config()).await;
    let key_resp = app
        .post(
            &format!("/api/v1/agents/{}/keys", a.id),
            Some(&s.access_token),
            json!({"name": "site", "permissions": ["chat"]}),
        )
        .await;
    assert_eq!(key_resp.status(), 201, "{}", key_resp.text().await.unwrap_or_default());
    let key = body(key_resp).await;
    let secret = key["secret"].as_str().unwrap().to_owned();

    let r = config(&app, &a, Some(SHOP)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(allow_origin(&r), Some(SHOP));
    assert_eq!(r.headers()["vary"], "Origin");
    let c = body(r).await;
    assert_eq!(c["name"], "Ava");
    assert_eq!(c["position"], "bottom-left");
    assert_eq!(c["theme"], "dark");
    assert_eq!(c["size"], "large");
    assert_eq!(c["colors"], json!({"primary": "#112233", "secondary": "#445566"}));
    assert_eq!(c["welcome_message"], "Welcome to Acme!");
    assert_eq!(c["placeholder"], "Ask Acme…");
    assert_eq!(c["show_on_mobile"], false);
    assert_eq!(c["open_delay_seconds"], 3);

    let text = c.to_string();
    let private: [&str; 5] = [&a.id, &s.workspace_id, &secret, &secret[..11], "allowed_domains"];
    for p in private.into_iter().chain(["shop.example", "system_prompt", "You are"]) {
        assert!(!text.contains(p), "`{p}` leaked into {text}");
    }
    for field in ["system_prompt", "public_id", "workspace_id", "key", "config", "id"] {
        assert!(c.get(field).is_none(), "`{field}` is private: {c}");
    }
    // Subdomains of an allowed domain are allowed; the Referer stands in for a missing Origin.
    assert_eq!(config(&app, &a, Some("http://www.shop.example:8080")).await.status(), 200);
    let r = app
        .client
        .get(app.url(&format!("/api/v1/widget/{}/config", a.public_id)))
        .header("referer", "https://shop.example/pricing?plan=pro")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn an_allowed_page_gets_answers_as_json_and_as_a_stream() {
    let fake = FakeLlm::start().await;
    let (app, _s, a) = start(Some(&fake), "Ava", shop_config()).await;
    let v = visitor(1);
    fake.push(Reply::text("We open at nine."));
    let r = chat(&app, &a, Some(SHOP), &v, json!({"message": "When do you open?"})).await;
    assert_eq!(r.status(), 200);
    assert_eq!(allow_origin(&r), Some(SHOP));
    let answer = body(r).await;
    assert_eq!(answer["message"], "We open at nine.");
    let conv = answer["conversation_id"].as_str().unwrap().to_owned();

    // The page's preflight for the streamed request is answered for that origin only.
    let p = preflight(&app, &format!("/api/v1/widget/{}/chat", a.public_id), SHOP).await;
    assert_eq!(p.status(), 204);
    assert_eq!(allow_origin(&p), Some(SHOP));
    let allowed_headers = p.headers()["access-control-allow-headers"].to_str().unwrap();
    assert!(allowed_headers.contains("echoforge-visitor"), "{allowed_headers}");

    fake.push(Reply::text("Until six in the evening.").in_chunks(4));
    let r = from(
        &app,
        reqwest::Method::POST,
        &format!("/api/v1/widget/{}/chat", a.public_id),
        Some(SHOP),
    )
    .header("echoforge-visitor", &v)
    .header("accept", "text/event-stream")
    .json(&json!({"message": "And closing?", "conversation_id": conv}))
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(allow_origin(&r), Some(SHOP));
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let events = sse_events(&r.text().await.unwrap());
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"run.started"));
    assert_eq!(names.last(), Some(&"run.completed"));
    assert!(names.iter().filter(|n| **n == "message.delta").count() >= 2, "{names:?}");
    let streamed: String = events
        .iter()
        .filter(|(n, _)| n == "message.delta")
        .map(|(_, d)| d["delta"].as_str().unwrap())
        .collect();
    assert_eq!(streamed, "Until six in the evening.");
    assert_eq!(events[0].1["conversation_id"], conv.as_str(), "the conversation continues");

    // The visitor's history holds both exchanges, questions and answers only.
    let h = body(history(&app, &a, Some(SHOP), &v, &conv).await).await;
    let said = testkit::roles_and_contents(&h["messages"]);
    assert_eq!(
        said,
        [
            ("user", "When do you open?"),
            ("assistant", "We open at nine."),
            ("user", "And closing?"),
            ("assistant", "Until six in the evening."),
        ]
    );
}

#[tokio::test]
async fn streamed_answers_cite_the_agents_documents_without_showing_tool_activity() {
    let fake = FakeLlm::start().await;
    let (app, s, mut a) = start(Some(&fake), "Ava", shop_config()).await;
    let kb = body(
        app.post("/api/v1/knowledge-bases", Some(&s.access_token), json!({"name": "Help"})).await,
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let up = app
        .upload_documents(
            &s.access_token,
            &kb,
            &[(
                "returns.md",
                "text/markdown",
                b"# Returns policy\n\nUnused items can be returned within thirty days for a full refund.\n"
                    .to_vec(),
            )],
        )
        .await;
    let doc = body(up).await["data"][0]["id"].as_str().unwrap().to_owned();
    let mut indexed = false;
    for _ in 0..200 {
        let d = body(
            app.get(
                &format!("/api/v1/knowledge-bases/{kb}/documents/{doc}"),
                Some(&s.access_token),
            )
            .await,
        )
        .await;
        if d["status"] == "indexed" {
            indexed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(indexed, "the document was indexed");
    patch_agent(&app, &s, &mut a, json!({"knowledge_base_ids": [kb]})).await;

    fake.push(Reply::tool_call("search_knowledge", r#"{"query":"returns refund"}"#));
    fake.push(Reply::text("You can return unused items within thirty days [1].").in_chunks(3));
    let r = from(
        &app,
        reqwest::Method::POST,
        &format!("/api/v1/widget/{}/chat", a.public_id),
        Some(SHOP),
    )
    .header("echoforge-visitor", visitor(1))
    .header("accept", "text/event-stream")
    .json(&json!({"message": "Can I return things?"}))
    .send()
    .await
    .unwrap();
    assert_eq!(r.status(), 200);
    let events = sse_events(&r.text().await.unwrap());
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert!(names.contains(&"citation"), "{names:?}");
    assert!(
        !names.iter().any(|n| n.starts_with("tool.")),
        "tool activity stays private: {names:?}"
    );
    let cited = events.iter().find(|(n, _)| n == "citation").unwrap();
    assert_eq!(cited.1["document_title"], "Returns policy");
    let conv = events[0].1["conversation_id"].as_str().unwrap();
    let h = body(history(&app, &a, Some(SHOP), &visitor(1), conv).await).await;
    let answer = &h["messages"][1];
    assert_eq!(answer["content"], "You can return unused items within thirty days [1].");
    assert_eq!(answer["citations"][0]["title"], "Returns policy", "{h}");
    assert_eq!(h["messages"].as_array().unwrap().len(), 2, "no tool messages: {h}");
}

#[tokio::test]
async fn other_origins_are_refused_on_every_endpoint_and_on_every_request() {
    let fake = FakeLlm::start().await;
    let (app, s, mut a) = start(Some(&fake), "Ava", shop_config()).await;
    let v = visitor(1);
    let answer = body(chat(&app, &a, Some(SHOP), &v, json!({"message": "hi"})).await).await;
    let conv = answer["conversation_id"].as_str().unwrap().to_owned();
    let chat_path = format!("/api/v1/widget/{}/chat", a.public_id);

    for evil in [
        "https://evil.example",
        "https://shop.example.evil.example",
        "https://notshop.example",
        "null",
    ] {
        assert_refused(config(&app, &a, Some(evil)).await, "origin_not_allowed").await;
        assert_refused(
            chat(&app, &a, Some(evil), &v, json!({"message": "hi"})).await,
            "origin_not_allowed",
        )
        .await;
        assert_refused(history(&app, &a, Some(evil), &v, &conv).await, "origin_not_allowed").await;
        assert_refused(preflight(&app, &chat_path, evil).await, "origin_not_allowed").await;
    }
    // No Origin (and no Referer): refused too.
    assert_refused(config(&app, &a, None).await, "origin_required").await;
    assert_refused(chat(&app, &a, None, &v, json!({"message": "hi"})).await, "origin_required")
        .await;
    assert_refused(history(&app, &a, None, &v, &conv).await, "origin_required").await;

    // The allowlist changes: the page that was allowed a moment ago is refused at once.
    let mut cfg = shop_config();
    cfg["allowed_domains"] = json!(["other.example"]);
    patch_agent(&app, &s, &mut a, json!({"config": cfg})).await;
    assert_refused(config(&app, &a, Some(SHOP)).await, "origin_not_allowed").await;
    assert_refused(
        chat(&app, &a, Some(SHOP), &v, json!({"message": "hi"})).await,
        "origin_not_allowed",
    )
    .await;
    assert_refused(history(&app, &a, Some(SHOP), &v, &conv).await, "origin_not_allowed").await;
    assert_refused(preflight(&app, &chat_path, SHOP).await, "origin_not_allowed").await;
    assert_eq!(config(&app, &a, Some("https://other.example")).await.status(), 200);
    assert_eq!(fake.requests().len(), 1, "no refused request reached the model");
}

#[tokio::test]
async fn visitors_and_agents_are_rate_limited() {
    let fake = FakeLlm::start().await;
    let (app, _s, a) = start(Some(&fake), "Ava", shop_config()).await;
    app.app.set_widget_limits(app::WidgetLimits {
        visitor_per_minute: 3,
        visitor_per_day: 100,
        agent_per_minute: 8,
        agent_per_day: 100,
    });
    let (v1, v2) = (visitor(1), visitor(2));
    for i in 0..3 {
        let r = chat(&app, &a, Some(SHOP), &v1, json!({"message": format!("question {i}")})).await;
        assert_eq!(r.status(), 200);
    }
    let r = chat(&app, &a, Some(SHOP), &v1, json!({"message": "one more"})).await;
    assert_eq!(r.status(), 429);
    assert_eq!(allow_origin(&r), Some(SHOP), "the page may read why it must wait");
    let wait: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
    assert_eq!(body(r).await["code"], "rate_limited");
    // Another visitor still gets answers, until the agent's own limit is reached.
    assert_eq!(chat(&app, &a, Some(SHOP), &v2, json!({"message": "hello"})).await.status(), 200);
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(config(&app, &a, Some(SHOP)).await.status().as_u16());
    }
    // 3 + 1 + 4 = 8 admitted; the refused one of v1 was not counted.
    assert_eq!(statuses, [200, 200, 200, 200, 429]);
}

#[tokio::test]
async fn a_visitor_reads_and_continues_only_their_own_conversations() {
    let fake = FakeLlm::start().await;
    let (app, s, a) = start(Some(&fake), "Ava", shop_config()).await;
    let (alice, bob) = (visitor(1), visitor(2));
    fake.push(Reply::text("Your order ships tomorrow."));
    let mine =
        body(chat(&app, &a, Some(SHOP), &alice, json!({"message": "Where is order 42?"})).await)
            .await;
    let conv = mine["conversation_id"].as_str().unwrap().to_owned();
    assert_eq!(history(&app, &a, Some(SHOP), &alice, &conv).await.status(), 200);

    let r = history(&app, &a, Some(SHOP), &bob, &conv).await;
    assert_eq!(r.status(), 404);
    let text = r.text().await.unwrap();
    assert!(!text.contains("order 42"), "{text}");
    let r =
        chat(&app, &a, Some(SHOP), &bob, json!({"message": "and mine?", "conversation_id": conv}))
            .await;
    assert_eq!(r.status(), 404, "bob cannot continue alice's conversation");
    assert_eq!(fake.requests().len(), 1);
    // A visitor id is required, and must look like one.
    assert_eq!(history(&app, &a, Some(SHOP), "", &conv).await.status(), 400);
    assert_eq!(history(&app, &a, Some(SHOP), "x", &conv).await.status(), 400);

    // Conversations started elsewhere (the API) are not visible through the widget, even with
    // the same end-user id.
    let api = body(
        app.post(
            &format!("/api/v1/agents/{}/chat", a.id),
            Some(&s.access_token),
            json!({"message": "internal note", "end_user_id": alice}),
        )
        .await,
    )
    .await;
    let api_conv = api["conversation_id"].as_str().unwrap();
    assert_eq!(history(&app, &a, Some(SHOP), &alice, api_conv).await.status(), 404);
    // And the owner sees the widget conversation, on the widget channel, with the visitor id.
    let c =
        body(app.get(&format!("/api/v1/conversations/{conv}"), Some(&s.access_token)).await).await;
    assert_eq!(c["channel"], "widget");
    assert_eq!(c["end_user_id"], alice.as_str());
}

#[tokio::test]
async fn paused_agents_agents_without_the_widget_and_unknown_ids_are_not_found() {
    let fake = FakeLlm::start().await;
    let (app, s, mut a) = start(Some(&fake), "Ava", shop_config()).await;
    assert_eq!(config(&app, &a, Some(SHOP)).await.status(), 200);
    patch_agent(&app, &s, &mut a, json!({"is_active": false})).await;
    assert_eq!(config(&app, &a, Some(SHOP)).await.status(), 404);
    assert_eq!(
        chat(&app, &a, Some(SHOP), &visitor(1), json!({"message": "hi"})).await.status(),
        404
    );
    patch_agent(
        &app,
        &s,
        &mut a,
        json!({"is_active": true, "enabled_capabilities": ["rag", "api"]}),
    )
    .await;
    let r = config(&app, &a, Some(SHOP)).await;
    assert_eq!(r.status(), 404, "the widget is switched off");
    assert_eq!(allow_origin(&r), None);
    assert_eq!(
        chat(&app, &a, Some(SHOP), &visitor(1), json!({"message": "hi"})).await.status(),
        404
    );
    let unknown = Agent { id: String::new(), public_id: "pub_nope".into(), version: 0 };
    assert_eq!(config(&app, &unknown, Some(SHOP)).await.status(), 404);
    assert_eq!(fake.requests().len(), 0);
}

#[tokio::test]
async fn a_persona_name_with_markup_stays_inert_json() {
    let app = spawn_app_with(Options::default()).await;
    let s = app.signed_up("xss@example.com").await;
    let name = "<script>alert('x')</script> & \"Ava\"";
    let spec = AgentSpec {
        capabilities: vec!["rag".into(), "widget".into()],
        config: Some(json!({
            "allowed_domains": ["shop.example"],
            "welcome_message": "<img src=x onerror=alert(1)>",
            "colors": {"primary": "red;background:url(javascript:alert(1))"},
            "avatar": {"type": "url", "url": "javascript:alert(1)"},
        })),
        ..AgentSpec::default()
    };
    let id = app.create_agent(&s.workspace_id, name, "xss", spec).await;
    let agent = body(app.get(&format!("/api/v1/agents/{id}"), Some(&s.access_token)).await).await;
    let a = Agent { id, public_id: agent["public_id"].as_str().unwrap().to_owned(), version: 1 };
    let r = config(&app, &a, Some(SHOP)).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    let c = body(r).await;
    assert_eq!(c["name"], name, "kept as text, for the widget to show with textContent");
    assert_eq!(c["welcome_message"], "<img src=x onerror=alert(1)>");
    assert_eq!(c["colors"]["primary"], "#3B82F6", "a colour that is not #RRGGBB falls back");
    assert_eq!(c["avatar_url"], Value::Null, "only http(s) avatars");
}
