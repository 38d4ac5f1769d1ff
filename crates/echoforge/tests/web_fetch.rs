//! The `web_fetch` tool end to end: an agent with `research_web` asks (through the scripted
//! fake model) to read a page on a local HTTP server; the page's main content reaches the model
//! as the tool result, through the SSRF guard. By default a private address is refused.

use axum::Router;
use axum::response::Html;
use axum::routing::get;
use fakellm::{FakeLlm, Reply};
use serde_json::{Value, json};
use testkit::{AgentSpec, Options, TestApp, spawn_app_with};

const PAGE: &str = r#"<!doctype html><html><head><title>Opening hours</title></head><body>
<nav><a href="/">Home</a> | <a href="/shop">Shop</a> | NAVIGATION-CHROME</nav>
<main><article><h1>Opening hours</h1>
<p>The Lisbon store opens at 09:30 on weekdays and at 11:00 on Saturdays. It is closed on Sundays.</p>
<p>Parking is free for customers for the first two hours.</p></article></main>
<footer>FOOTER-CHROME copyright</footer></body></html>"#;

/// A local site on 127.0.0.1 serving `/hours`.
async fn site() -> String {
    let app = Router::new().route("/hours", get(|| async { Html(PAGE) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

async fn start(fake: &FakeLlm, allow_private_urls: bool) -> (TestApp, String) {
    let app = spawn_app_with(Options {
        llm_base_url: Some(fake.base_url.clone()),
        allow_private_urls,
        ..Options::default()
    })
    .await;
    let s = app.signed_up("web@example.com").await;
    let spec = AgentSpec { capabilities: vec!["research_web".into()], ..AgentSpec::default() };
    app.create_agent(&s.workspace_id, "Researcher", "researcher", spec).await;
    (app, s.access_token)
}

/// The tool result the model received in its second request.
fn tool_result(fake: &FakeLlm) -> String {
    let reqs = fake.requests();
    assert_eq!(reqs.len(), 2, "one call for the tool, one for the answer");
    assert!(
        reqs[0].tools().iter().any(|t| t["function"]["name"] == "web_fetch"),
        "web_fetch is offered: {:?}",
        reqs[0].tools()
    );
    let tool: Vec<&Value> = reqs[1].messages().iter().filter(|m| m["role"] == "tool").collect();
    assert_eq!(tool.len(), 1, "{:?}", reqs[1].messages());
    tool[0]["content"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn web_fetch_reads_the_main_content_of_a_page() {
    let fake = FakeLlm::start().await;
    let (app, token) = start(&fake, true).await;
    let url = format!("{}/hours", site().await);
    fake.push(Reply::tool_call("web_fetch", json!({ "url": url }).to_string()));
    fake.push(Reply::text("It opens at 09:30 on weekdays."));
    let r = app
        .post(
            "/api/v1/agents/researcher/chat",
            Some(&token),
            json!({"message": "When does the store open?"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let r: Value = r.json().await.unwrap();
    assert_eq!(r["message"], "It opens at 09:30 on weekdays.");
    assert_eq!(r["metadata"]["tools_used"], json!(["web_fetch"]));

    let result = tool_result(&fake);
    assert!(result.contains("09:30 on weekdays"), "{result}");
    assert!(result.contains("Parking is free"), "{result}");
    assert!(result.contains("Title: Opening hours"), "{result}");
    assert!(!result.contains("NAVIGATION-CHROME"), "navigation is not main content: {result}");
    assert!(!result.contains("<p>"), "markup is removed: {result}");

    let run: Value = app
        .get(&format!("/api/v1/runs/{}", r["run_id"].as_str().unwrap()), Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(run["steps"][1]["name"], "web_fetch");
    assert_eq!(run["steps"][1]["output"]["status"], "ok");
}

#[tokio::test]
async fn web_fetch_refuses_private_addresses_by_default() {
    let fake = FakeLlm::start().await;
    let (app, token) = start(&fake, false).await;
    let url = format!("{}/hours", site().await);
    fake.push(Reply::tool_call("web_fetch", json!({ "url": url }).to_string()));
    fake.push(Reply::text("I could not read that page."));
    let r = app
        .post(
            "/api/v1/agents/researcher/chat",
            Some(&token),
            json!({"message": "When does the store open?"}),
        )
        .await;
    assert_eq!(r.status(), 200);
    let r: Value = r.json().await.unwrap();
    let result = tool_result(&fake);
    assert!(!result.contains("09:30"), "the page must not be read: {result}");
    assert!(result.contains("127.0.0.1"), "the refusal names the URL: {result}");
    let run: Value = app
        .get(&format!("/api/v1/runs/{}", r["run_id"].as_str().unwrap()), Some(&token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(run["steps"][1]["name"], "web_fetch");
    assert_ne!(run["steps"][1]["output"]["status"], "ok", "{run}");
}
