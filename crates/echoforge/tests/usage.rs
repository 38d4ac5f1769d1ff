//! Usage a person can read, end to end: `GET /api/v1/usage` after real chats (the fake model's
//! token counts, a tool call, counters not yet flushed), the CSV export against the JSON, the
//! range and agent checks (422, 404), who may read it, and the Usage page's figures.

use fakellm::{FakeLlm, Reply};
use serde_json::{Value, json};
use testkit::{AgentSpec, Options, Session, TestApp, spawn_app_with};

async fn expect(resp: reqwest::Response, status: u16) -> Value {
    let got = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    assert_eq!(got, status, "{text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

fn today() -> String {
    app::utc_day(domain::time::now_ms())
}

fn days_ago(n: i64) -> String {
    app::utc_day(domain::time::now_ms() - n * domain::time::DAY)
}

/// A server on the fake model, a workspace and two agents: (app, owner, Sam, Ria).
async fn start(fake: &FakeLlm) -> (TestApp, Session, String, String) {
    let app =
        spawn_app_with(Options { llm_base_url: Some(fake.base_url.clone()), ..Options::default() })
            .await;
    let s = app.signed_up("usage@example.com").await;
    let sam =
        app.create_agent(&s.workspace_id, "Sam, \"the\" helper", "sam", AgentSpec::default()).await;
    let spec = AgentSpec { capabilities: vec!["escalation".into()], ..AgentSpec::default() };
    let ria = app.create_agent(&s.workspace_id, "Ria", "ria", spec).await;
    (app, s, sam, ria)
}

async fn chat(app: &TestApp, token: &str, agent: &str, message: &str) {
    expect(
        app.post(&format!("/api/v1/agents/{agent}/chat"), Some(token), json!({"message": message}))
            .await,
        200,
    )
    .await;
}

/// Three chats: Sam twice (11/7 and 5/3 tokens), Ria once with a tool call (two model calls,
/// 20/2 and 30/4 tokens).
async fn three_chats(fake: &FakeLlm, app: &TestApp, s: &Session, sam: &str, ria: &str) {
    fake.push(Reply::text("one").with_usage(11, 7));
    fake.push(Reply::text("two").with_usage(5, 3));
    chat(app, &s.access_token, sam, "first").await;
    chat(app, &s.access_token, sam, "second").await;
    fake.push(Reply::tool_call("escalate_to_human", r#"{"reason":"refund"}"#).with_usage(20, 2));
    fake.push(Reply::text("A human will call you.").with_usage(30, 4));
    chat(app, &s.access_token, ria, "get me a human").await;
}

/// Messages, tokens in and out, tool calls, credits (1 per message and per tool call: the
/// templates name no costs).
fn counts(v: &Value) -> [i64; 5] {
    ["messages", "tokens_in", "tokens_out", "tool_calls", "credits"].map(|k| v[k].as_i64().unwrap())
}

fn agent_in<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["agents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["agent_id"] == id)
        .unwrap_or_else(|| panic!("{id} not in {report}"))
}

async fn usage(app: &TestApp, token: &str, query: &str) -> reqwest::Response {
    app.get(&format!("/api/v1/usage{query}"), Some(token)).await
}

#[tokio::test]
async fn usage_after_real_chats_counts_every_message_token_and_tool_call_flushed_or_not() {
    let fake = FakeLlm::start().await;
    let (app, s, sam, ria) = start(&fake).await;
    let t = s.access_token.as_str();
    // Earlier traffic, already in the store: 5 of Sam's messages 10 days ago.
    app.app
        .store()
        .add_usage(&[store::UsageIncrement {
            workspace_id: domain::WorkspaceId::parse(&s.workspace_id).unwrap(),
            agent_id: Some(domain::AgentId::parse(&sam).unwrap()),
            day: days_ago(10),
            metric: "messages".into(),
            quantity: 5,
        }])
        .await
        .unwrap();
    three_chats(&fake, &app, &s, &sam, &ria).await;

    // Read at once: the runs' counters are (most likely) still in memory, not yet flushed.
    let r = expect(usage(&app, t, "").await, 200).await;
    assert_eq!((r["from"].as_str(), r["to"].as_str()), (Some(&*days_ago(29)), Some(&*today())));
    assert_eq!(counts(&r["totals"]), [8, 66, 16, 1, 4], "{r}");
    assert_eq!(counts(&agent_in(&r, &sam)["totals"]), [7, 16, 10, 0, 2]);
    assert_eq!(counts(&agent_in(&r, &ria)["totals"]), [1, 50, 6, 1, 2]);
    assert_eq!(agent_in(&r, &sam)["display_name"], "Sam, \"the\" helper");
    assert_eq!(agent_in(&r, &ria)["slug"], "ria");
    let days: Vec<(&str, &str, i64)> = r["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            (
                d["day"].as_str().unwrap(),
                d["agent_id"].as_str().unwrap(),
                d["messages"].as_i64().unwrap(),
            )
        })
        .collect();
    let mut want =
        [(days_ago(10), sam.clone(), 5), (today(), sam.clone(), 2), (today(), ria.clone(), 1)];
    want[1..].sort_by(|a, b| a.1.cmp(&b.1));
    let want: Vec<(&str, &str, i64)> =
        want.iter().map(|(d, a, n)| (d.as_str(), a.as_str(), *n)).collect();
    assert_eq!(days, want);
    // This month against the starter plan (the seeded messages count if they are this month).
    let m = &r["this_month"];
    assert_eq!(m["plan"], "starter");
    let month_messages = if days_ago(10)[..7] == today()[..7] { 8 } else { 3 };
    assert_eq!(m["messages"], json!({"used": month_messages, "limit": 1000}), "{m}");
    assert_eq!(m["agents"], json!({"used": 2, "limit": 1}));
    assert_eq!(m["documents"], json!({"used": 0, "limit": 10}));

    // After the flush the same figures: nothing lost, nothing counted twice.
    app.app.flush().await;
    let again = expect(usage(&app, t, "").await, 200).await;
    assert_eq!(again, r);

    // One agent, and a range of today only.
    let only = expect(usage(&app, t, &format!("?agent={ria}&from={}", today())).await, 200).await;
    assert_eq!(only["agent_id"], ria.as_str());
    assert_eq!(counts(&only["totals"]), [1, 50, 6, 1, 2]);
    assert_eq!(only["agents"].as_array().unwrap().len(), 1);
    assert_eq!(only["days"].as_array().unwrap().len(), 1);
    let old = format!("?from={}&to={}", days_ago(12), days_ago(8));
    assert_eq!(counts(&expect(usage(&app, t, &old).await, 200).await["totals"]), [5, 0, 0, 0, 0]);
}

#[tokio::test]
async fn documents_count_in_the_range_and_against_the_plan() {
    let fake = FakeLlm::start().await;
    let (app, s, _, _) = start(&fake).await;
    let t = s.access_token.as_str();
    let kb =
        expect(app.post("/api/v1/knowledge-bases", Some(t), json!({"name": "Docs"})).await, 201)
            .await;
    let files = [
        ("a.md", "text/markdown", b"# A\n\nabc".to_vec()),
        ("b.md", "text/markdown", b"# B\n\nxyz".to_vec()),
    ];
    expect(app.upload_documents(t, kb["id"].as_str().unwrap(), &files).await, 202).await;
    let r = expect(usage(&app, t, "").await, 200).await;
    assert_eq!(r["documents"]["added"], 2, "{r}");
    assert_eq!(r["documents"]["bytes_added"], 16);
    assert_eq!(r["documents"]["days"], json!([{"day": today(), "documents": 2, "bytes": 16}]));
    assert_eq!(r["this_month"]["documents"], json!({"used": 2, "limit": 10}));
    assert_eq!(r["this_month"]["storage_bytes"], 16);
    let yesterday = expect(usage(&app, t, &format!("?to={}", days_ago(1))).await, 200).await;
    assert_eq!(yesterday["documents"]["added"], 0);
}

/// RFC 4180 records (quoted fields with doubled quotes, CRLF or LF line ends).
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let (mut rows, mut row, mut field) = (Vec::new(), Vec::new(), String::new());
    let (mut quoted, mut chars) = (false, text.chars().peekable());
    while let Some(c) = chars.next() {
        match (quoted, c) {
            (true, '"') if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            (true, '"') => quoted = false,
            (true, c) => field.push(c),
            (false, '"') => quoted = true,
            (false, ',') => row.push(std::mem::take(&mut field)),
            (false, '\r') => {}
            (false, '\n') => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            (false, c) => field.push(c),
        }
    }
    assert!(!quoted && field.is_empty() && row.is_empty(), "the CSV ends with a line end");
    rows
}

#[tokio::test]
async fn the_csv_export_has_a_header_and_the_json_rows_escaped() {
    let fake = FakeLlm::start().await;
    let (app, s, sam, ria) = start(&fake).await;
    three_chats(&fake, &app, &s, &sam, &ria).await;
    let t = s.access_token.as_str();
    let json = expect(usage(&app, t, "").await, 200).await;
    let resp = app.get("/api/v1/usage.csv", Some(t)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/csv; charset=utf-8");
    let disposition = resp.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert_eq!(
        disposition,
        format!("attachment; filename=\"usage-{}-{}.csv\"", days_ago(29), today())
    );
    let text = resp.text().await.unwrap();
    assert!(text.contains("\"Sam, \"\"the\"\" helper\""), "quotes doubled, comma quoted: {text}");
    let rows = parse_csv(&text);
    assert_eq!(
        rows[0],
        [
            "day",
            "agent_id",
            "agent_slug",
            "agent_name",
            "messages",
            "tokens_in",
            "tokens_out",
            "tool_calls",
            "credits"
        ]
    );
    let from_json: Vec<Vec<String>> = json["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let a = agent_in(&json, d["agent_id"].as_str().unwrap());
            let mut row: Vec<String> = [&d["day"], &d["agent_id"], &a["slug"], &a["display_name"]]
                .iter()
                .map(|v| v.as_str().unwrap().to_owned())
                .collect();
            row.extend(counts(d).map(|n| n.to_string()));
            row
        })
        .collect();
    assert_eq!(rows[1..], from_json[..]);
    assert_eq!(rows.len(), 3, "one row per agent and day: {rows:?}");
    // The CSV takes the same checks.
    let bad = app.get("/api/v1/usage.csv?from=yesterday", Some(t)).await;
    assert_eq!(bad.status(), 422);
    assert_eq!(bad.headers()["content-type"], "application/problem+json");
}

async fn field_errors(resp: reqwest::Response) -> Vec<(String, String)> {
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let p = expect(resp, 422).await;
    assert_eq!(p["code"], "validation_failed", "{p}");
    p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["path"].as_str().unwrap().to_owned(), e["code"].as_str().unwrap().to_owned()))
        .collect()
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
}

#[tokio::test]
async fn bad_ranges_are_422_with_field_errors_and_other_agents_are_not_found() {
    let fake = FakeLlm::start().await;
    let (app, s, sam, _) = start(&fake).await;
    let t = s.access_token.as_str();
    assert_eq!(
        field_errors(usage(&app, t, "?from=2026-02-30&to=soon").await).await,
        pairs(&[("/from", "invalid_date"), ("/to", "invalid_date")])
    );
    assert_eq!(
        field_errors(usage(&app, t, "?from=2026-11-02&to=2026-11-01").await).await,
        pairs(&[("/from", "after_to")])
    );
    assert_eq!(
        field_errors(usage(&app, t, "?from=2025-01-01&to=2026-01-02").await).await,
        pairs(&[("/to", "range_too_long")])
    );
    expect(usage(&app, t, "?from=2024-01-01&to=2024-12-31").await, 200).await; // 366 days

    // Another workspace's agent, a made-up one and a malformed id: not found.
    let other = app.signed_up("other@example.com").await;
    let theirs =
        app.create_agent(&other.workspace_id, "Theirs", "theirs", AgentSpec::default()).await;
    for agent in [theirs.as_str(), "agt_0190f3a4-0000-7000-8000-000000000000", "nonsense"] {
        let p = expect(usage(&app, t, &format!("?agent={agent}")).await, 404).await;
        assert_eq!(p["code"], "not_found", "{p}");
        expect(app.get(&format!("/api/v1/usage.csv?agent={agent}"), Some(t)).await, 404).await;
    }
    // Their usage is theirs: the other workspace sees none of ours.
    let mine = expect(usage(&app, t, &format!("?agent={sam}")).await, 200).await;
    assert_eq!(mine["agent_id"], sam.as_str());
    expect(usage(&app, &other.access_token, &format!("?agent={sam}")).await, 404).await;
}

#[tokio::test]
async fn usage_needs_read_and_agent_keys_read_none() {
    let fake = FakeLlm::start().await;
    let (app, s, sam, _) = start(&fake).await;
    let reader = app.create_key(&s.workspace_id, None, &["read"]).await;
    expect(usage(&app, &reader, "").await, 200).await;
    let chatter = app.create_key(&s.workspace_id, None, &["chat", "upload"]).await;
    let p = expect(usage(&app, &chatter, "").await, 403).await;
    assert_eq!(p["code"], "permission_denied", "{p}");
    let agent_key = app.create_key(&s.workspace_id, Some(&sam), &["chat"]).await;
    for path in ["/api/v1/usage", "/api/v1/usage.csv"] {
        let p = expect(app.get(&format!("{path}?agent={sam}"), Some(&agent_key)).await, 403).await;
        assert_eq!(p["code"], "agent_key", "{p}");
    }
    expect(app.get("/api/v1/usage", None).await, 401).await;
}

#[tokio::test]
async fn usage_is_documented_in_the_openapi_document() {
    let fake = FakeLlm::start().await;
    let (app, _, _, _) = start(&fake).await;
    let doc = expect(app.get("/api/v1/openapi.json", None).await, 200).await;
    let get = &doc["paths"]["/api/v1/usage"]["get"];
    for status in ["200", "401", "403", "404", "422"] {
        assert!(get["responses"][status].is_object(), "{status} undocumented: {get}");
    }
    let params: Vec<&str> =
        get["parameters"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(params, ["from", "to", "agent"]);
    let csv = &doc["paths"]["/api/v1/usage.csv"]["get"]["responses"]["200"]["content"];
    assert!(csv["text/csv"].is_object(), "{csv}");
    assert!(doc["components"]["schemas"]["UsageReport"].is_object());
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

#[tokio::test]
async fn the_usage_page_shows_the_month_against_the_plan_and_a_chart_per_agent() {
    let fake = FakeLlm::start().await;
    let (app, s, sam, ria) = start(&fake).await;
    three_chats(&fake, &app, &s, &sam, &ria).await;
    let cookie = app.web_login(&s).await;
    let resp = client().get(app.url("/usage")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let csp = resp.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    let html = resp.text().await.unwrap();
    assert!(
        html.contains(r#"<a href="/usage" aria-current="page">Usage</a>"#),
        "linked from the navigation"
    );
    assert!(html.contains("against the starter plan"), "{html}");
    assert!(html.contains("<strong>3</strong> of 1000"), "messages this month against the limit");
    assert!(html.contains("<strong>2</strong> of 1"), "agents against the limit");
    assert!(html.contains(r#"<svg class="meter over""#), "two agents on a one-agent plan is over");
    assert!(html.contains(r#"data-total="tokens_in">66<"#), "{html}");
    assert!(html.contains(r#"data-total="tool_calls">1<"#));
    assert!(html.contains(r#"data-total="credits">4<"#), "credits spent in the range");
    assert!(html.contains("data-credits"), "the balance against the allowance");
    // One chart per agent, 30 bars each; today's bar says what it counts.
    assert_eq!(html.matches(r#"<svg class="chart""#).count(), 2);
    assert_eq!(html.matches(r#"<rect class="bar""#).count(), 60);
    let today = today();
    assert!(
        html.contains(&format!(
            "<title>{today}: 2 messages, 16 tokens in, 10 out, 0 tool calls</title>"
        )),
        "{html}"
    );
    assert!(
        html.contains(&format!(
            "<title>{today}: 1 message, 50 tokens in, 6 out, 1 tool call</title>"
        ))
    );
    assert!(html.contains("Sam, &quot;the&quot; helper"), "names are escaped");
    assert!(!html.contains("<script>") && !html.contains("cdn"), "no inline or remote script");
    // The page's CSV link works with the same cookie.
    let csv = client()
        .get(app.url(&format!("/api/v1/usage.csv?from={}&to={today}", days_ago(29))))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), 200);
    assert_eq!(parse_csv(&csv.text().await.unwrap()).len(), 3);
}
