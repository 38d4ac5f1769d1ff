//! Integrations end to end: connecting Slack through a real OAuth2 server (oauth2-mock-server
//! from npm: authorization code + PKCE, refresh, revocation, userinfo), single-use states,
//! tokens that never reach the database in the clear, one refresh for many concurrent reads,
//! a refused refresh that marks the connection expired, a Zendesk connection checked before it
//! is saved, and an agent that posts to Slack through its tools — with and without confirmation.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use fakellm::{FakeLlm, Reply};
use serde_json::{Value, json};
use testkit::{AgentSpec, Options, Session, TestApp, spawn_app_with};
use tokio::io::{AsyncBufReadExt, BufReader};

const SECRET: &str = "integration-service-secret";

/// The OAuth2 server, run by Node from `tests/servers` (installed by `scripts/test`).
struct OAuthServer {
    issuer: String,
    control: String,
    _child: tokio::process::Child,
}

impl OAuthServer {
    async fn start() -> Self {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/servers");
        assert!(
            dir.join("node_modules/oauth2-mock-server").is_dir(),
            "oauth2-mock-server is not installed: run scripts/test (it runs `npm ci` in tests/servers)"
        );
        let mut child = tokio::process::Command::new("node")
            .arg("oauth2.mjs")
            .current_dir(&dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("node starts");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).await.expect("a line");
        let v: Value = serde_json::from_str(&line).expect("the server prints its addresses");
        let issuer = v["issuer"].as_str().unwrap().replace("localhost", "127.0.0.1");
        Self { issuer, control: v["control"].as_str().unwrap().to_owned(), _child: child }
    }

    async fn state(&self) -> Value {
        reqwest::get(&self.control).await.unwrap().json().await.unwrap()
    }

    async fn set(&self, path: &str) {
        reqwest::Client::new().post(format!("{}{path}", self.control)).send().await.unwrap();
    }
}

/// A Slack Web API stand-in: `chat.postMessage` and `conversations.list`, as Slack's reference
/// documents them (bearer token, `ok` in every answer).
#[derive(Clone, Default)]
struct Slack {
    posts: Arc<Mutex<Vec<(String, Value)>>>,
}

async fn slack_post(
    State(s): State<Slack>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Json<Value> {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    if !auth.starts_with("Bearer ") {
        return Json(json!({"ok": false, "error": "not_authed"}));
    }
    s.posts.lock().unwrap().push((auth, body.clone()));
    Json(
        json!({"ok": true, "channel": "C0123", "ts": "1700000000.000100", "message": {"text": body["text"]}}),
    )
}

async fn serve(router: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    format!("http://{addr}")
}

async fn start(oauth: &OAuthServer, slack_base: Option<String>, llm: Option<&FakeLlm>) -> TestApp {
    let issuer = oauth.issuer.clone();
    let tweak = move |s: &mut echoforge::config::Settings| {
        s.integrations.allow_private_hosts = true;
        let slack = s.integrations.providers.entry("slack".into()).or_default();
        slack.client_id = Some("echoforge-test".into());
        slack.client_secret = Some("test-client-secret".to_owned().into());
        slack.authorize_url = Some(format!("{issuer}/authorize"));
        slack.token_url = Some(format!("{issuer}/token"));
        slack.revoke_url = Some(format!("{issuer}/revoke"));
        slack.userinfo_url = Some(format!("{issuer}/userinfo"));
        slack.api_base_url = slack_base.clone();
    };
    spawn_app_with(Options {
        service_secret: Some(SECRET.into()),
        llm_base_url: llm.map(|f| f.base_url.clone()),
        tweak: Some(Arc::new(tweak)),
        ..Options::default()
    })
    .await
}

/// A server whose Zendesk API is at `api_base` (a stand-in on loopback).
async fn start_with_zendesk(api_base: String, llm: Option<&FakeLlm>) -> TestApp {
    let tweak = move |s: &mut echoforge::config::Settings| {
        s.integrations.allow_private_hosts = true;
        s.integrations.providers.entry("zendesk".into()).or_default().api_base_url =
            Some(api_base.clone());
    };
    spawn_app_with(Options {
        llm_base_url: llm.map(|f| f.base_url.clone()),
        tweak: Some(Arc::new(tweak)),
        ..Options::default()
    })
    .await
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// Connects Slack the way a browser does; returns the connection id and the callback URL used.
async fn connect_slack(app: &TestApp, s: &Session, cookie: &str) -> (String, String) {
    let start =
        app.post("/api/v1/integrations/slack/connect", Some(&s.access_token), json!({})).await;
    assert_eq!(start.status(), 200);
    let auth_url = start.json::<Value>().await.unwrap()["auth_url"].as_str().unwrap().to_owned();
    let parsed = url::Url::parse(&auth_url).unwrap();
    let q: std::collections::HashMap<_, _> = parsed.query_pairs().into_owned().collect();
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["code_challenge"].len(), 43);
    assert_eq!(q["redirect_uri"], app.url("/integrations/slack/callback"));
    assert_eq!(q["client_id"], "echoforge-test");
    // The provider's authorization page answers with a redirect back to us.
    let back = no_redirects().get(&auth_url).send().await.unwrap();
    assert_eq!(back.status(), 302);
    let callback = back.headers()["location"].to_str().unwrap().to_owned();
    assert!(callback.starts_with(&app.url("/integrations/slack/callback")), "{callback}");
    let done = no_redirects().get(&callback).header("cookie", cookie).send().await.unwrap();
    assert_eq!(done.status(), 303, "{}", done.text().await.unwrap());
    let location = done.headers()["location"].to_str().unwrap().to_owned();
    let id =
        location.strip_prefix("/integrations?connected=").expect("back on the page").to_owned();
    (id, callback)
}

fn database_bytes(app: &TestApp) -> Vec<u8> {
    let mut all = Vec::new();
    for name in ["echoforge.db", "echoforge.db-wal"] {
        if let Ok(b) = std::fs::read(app.data_dir.join(name)) {
            all.extend(b);
        }
    }
    assert!(!all.is_empty(), "the database files are where the test looks");
    all
}

#[tokio::test]
async fn slack_connects_through_a_real_oauth2_server_and_disconnects_with_revocation() {
    let oauth = OAuthServer::start().await;
    let app = start(&oauth, None, None).await;
    let s = app.signed_up("owner@example.com").await;
    let cookie = app.web_login(&s).await;

    let available: Value = app
        .get("/api/v1/integrations/available", Some(&s.access_token))
        .await
        .json()
        .await
        .unwrap();
    let find = |slug: &str| {
        available["data"].as_array().unwrap().iter().find(|p| p["slug"] == slug).unwrap().clone()
    };
    assert_eq!(find("slack")["available"], true);
    assert_eq!(find("gmail")["available"], false, "no client credentials: unavailable, not broken");
    assert!(find("gmail")["unavailable_reason"].as_str().unwrap().contains("operator"));
    let gmail =
        app.post("/api/v1/integrations/gmail/connect", Some(&s.access_token), json!({})).await;
    assert_eq!(gmail.status(), 409);

    let (id, callback) = connect_slack(&app, &s, &cookie).await;
    let list: Value =
        app.get("/api/v1/integrations", Some(&s.access_token)).await.json().await.unwrap();
    let c = &list["data"][0];
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(c["id"], id.as_str());
    assert_eq!(c["status"], "active");
    assert_eq!(c["account_email"], "johndoe@example.com", "the account was read from userinfo");
    assert!(c["expires_at"].is_i64());
    assert!(c.get("credentials_sealed").is_none() && !c.to_string().contains("access_token"));
    let state = oauth.state().await;
    assert_eq!(state["counts"]["authorization_code"], 1);
    let grant = &state["grants"][0];
    assert_eq!(grant["code_verifier"], true, "the PKCE verifier was sent");
    assert_eq!(grant["has_secret"], true);

    // The tokens are sealed: neither is in the database file or its WAL.
    let db = database_bytes(&app);
    for token in state["tokens"].as_array().unwrap().iter().filter_map(Value::as_str) {
        assert!(
            !db.windows(token.len()).any(|w| w == token.as_bytes()),
            "a token is stored in the clear"
        );
    }

    // A used state does not work twice, and nothing more is stored.
    let replay = no_redirects().get(&callback).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(replay.status(), 400);
    assert!(replay.text().await.unwrap().contains("already used"));
    let list: Value =
        app.get("/api/v1/integrations", Some(&s.access_token)).await.json().await.unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);

    // Disconnecting revokes at the provider (RFC 7009) and deletes the connection.
    let gone = app.delete(&format!("/api/v1/integrations/{id}"), Some(&s.access_token)).await;
    assert_eq!(gone.status(), 204);
    assert_eq!(oauth.state().await["counts"]["revoke"], 1);
    assert_eq!(
        app.get(&format!("/api/v1/integrations/{id}"), Some(&s.access_token)).await.status(),
        404
    );
}

#[tokio::test]
async fn a_bad_state_another_persons_state_or_a_refused_code_store_nothing() {
    let oauth = OAuthServer::start().await;
    let app = start(&oauth, None, None).await;
    let s = app.signed_up("owner@example.com").await;
    let cookie = app.web_login(&s).await;

    let forged = app.url("/integrations/slack/callback?code=abc&state=forged");
    let r = no_redirects().get(&forged).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status(), 400);

    // A state started by someone else does not finish for this person.
    let start =
        app.post("/api/v1/integrations/slack/connect", Some(&s.access_token), json!({})).await;
    let auth_url = start.json::<Value>().await.unwrap()["auth_url"].as_str().unwrap().to_owned();
    let callback = no_redirects().get(&auth_url).send().await.unwrap().headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    let other = app.signed_up("other@example.com").await;
    let other_cookie = app.web_login(&other).await;
    let r = no_redirects().get(&callback).header("cookie", &other_cookie).send().await.unwrap();
    assert_eq!(r.status(), 400);
    // … and it was used up by that attempt.
    let r = no_redirects().get(&callback).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status(), 400);

    // A code the provider refuses (not the one it issued for this challenge).
    let start =
        app.post("/api/v1/integrations/slack/connect", Some(&s.access_token), json!({})).await;
    let auth_url = start.json::<Value>().await.unwrap()["auth_url"].as_str().unwrap().to_owned();
    let callback = no_redirects().get(&auth_url).send().await.unwrap().headers()["location"]
        .to_str()
        .unwrap()
        .to_owned();
    let mut wrong = url::Url::parse(&callback).unwrap();
    let state = wrong.query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    wrong.set_query(Some(&format!("code=not-the-code&state={state}")));
    let r = no_redirects().get(wrong.as_str()).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let page = r.text().await.unwrap();
    assert!(page.contains("did not accept"), "{page}");

    // The person declining at the provider.
    let declined =
        app.url("/integrations/slack/callback?error=access_denied&error_description=no+thanks");
    let r = no_redirects().get(&declined).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(r.status(), 400);
    let list: Value =
        app.get("/api/v1/integrations", Some(&s.access_token)).await.json().await.unwrap();
    assert_eq!(list["data"], json!([]), "nothing was stored");

    // No session: sign in first, then back to the same callback.
    let r = no_redirects().get(&callback).send().await.unwrap();
    assert_eq!(r.status(), 303);
    assert!(r.headers()["location"].to_str().unwrap().starts_with("/login?next="));
}

#[tokio::test]
async fn twenty_concurrent_credential_reads_make_one_refresh_and_a_refused_refresh_expires_the_connection()
 {
    let oauth = OAuthServer::start().await;
    let app = start(&oauth, None, None).await;
    let s = app.signed_up("owner@example.com").await;
    let cookie = app.web_login(&s).await;
    // A token granted for one second: due for a refresh by the time it is read.
    oauth.set("/expires-in?value=1").await;
    let (id, _) = connect_slack(&app, &s, &cookie).await;
    oauth.set("/expires-in?value=3600").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let url = app.url(&format!("/api/internal/integration/{id}/credentials"));
    let reads = (0..20).map(|i| {
        let url = url.clone();
        async move {
            let req = reqwest::Client::new().get(&url);
            // Both ways of presenting the secret work.
            let req = if i % 2 == 0 {
                req.header("x-service-secret", SECRET)
            } else {
                req.bearer_auth(SECRET)
            };
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.json::<Value>().await.unwrap()
        }
    });
    let answers = futures::future::join_all(reads).await;
    assert_eq!(oauth.state().await["counts"]["refresh_token"], 1, "one refresh for twenty readers");
    let first = answers[0]["access_token"].as_str().unwrap().to_owned();
    assert!(answers.iter().all(|a| a["access_token"] == first.as_str()));
    let issued = oauth.state().await["tokens"].as_array().unwrap().clone();
    assert_eq!(issued[issued.len() - 2], first.as_str(), "the refreshed token is served");
    let fresh =
        reqwest::Client::new().get(&url).header("x-service-secret", SECRET).send().await.unwrap();
    assert_eq!(fresh.json::<Value>().await.unwrap()["access_token"], first.as_str());
    assert_eq!(oauth.state().await["counts"]["refresh_token"], 1, "a fresh token is not refreshed");

    let wrong =
        reqwest::Client::new().get(&url).header("x-service-secret", "nope").send().await.unwrap();
    assert_eq!(wrong.status(), 401);

    // Another connection whose token is due, and a provider that refuses the refresh: the
    // connection expires.
    oauth.set("/expires-in?value=1").await;
    let (second, _) = connect_slack(&app, &s, &cookie).await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    oauth.set("/fail-refresh?value=true").await;
    let url = app.url(&format!("/api/internal/integration/{second}/credentials"));
    let r =
        reqwest::Client::new().get(&url).header("x-service-secret", SECRET).send().await.unwrap();
    assert_eq!(r.status(), 409);
    let c: Value = app
        .get(&format!("/api/v1/integrations/{second}"), Some(&s.access_token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(c["status"], "expired");
    assert!(c["last_error"].as_str().unwrap().contains("invalid_grant"));
    // The page shows the reconnect banner.
    let page = reqwest::Client::new()
        .get(app.url("/integrations"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("data-reconnect-banner"), "{page}");
}

#[tokio::test]
async fn an_agent_posts_to_slack_after_approval_or_directly_and_degrades_when_disconnected() {
    let oauth = OAuthServer::start().await;
    let slack = Slack::default();
    let slack_base = serve(
        axum::Router::new()
            .route("/api/chat.postMessage", post(slack_post))
            .route(
                "/api/conversations.list",
                get(|| async {
                    Json(json!({"ok": true, "channels": [{"id": "C0123", "name": "support"}]}))
                }),
            )
            .with_state(slack.clone()),
    )
    .await;
    let fake = FakeLlm::start().await;
    let app = start(&oauth, Some(format!("{slack_base}/api")), Some(&fake)).await;
    let s = app.signed_up("owner@example.com").await;
    let cookie = app.web_login(&s).await;
    let (id, _) = connect_slack(&app, &s, &cookie).await;

    let careful =
        app.create_agent(&s.workspace_id, "Careful", "careful", AgentSpec::default()).await;
    let link = app.put(&format!("/api/v1/agents/{careful}/integrations/{id}"), Some(&s.access_token), json!({"purpose": "tell the team about refunds", "config": {"defaults": {"channel": "#support"}}})).await;
    assert_eq!(link.status(), 200);
    let link: Value = link.json().await.unwrap();
    assert_eq!(link["tools"], json!(["slack_send_message", "slack_list_channels"]));

    // Side effects wait for approval by default.
    fake.push(Reply::tool_call("slack_send_message", r#"{"text":"Refund approved for order 42"}"#));
    let paused: Value = app
        .post(
            &format!("/api/v1/agents/{careful}/chat"),
            Some(&s.access_token),
            json!({"message": "Tell the team"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(paused["status"], "awaiting_action", "{paused}");
    assert!(slack.posts.lock().unwrap().is_empty(), "nothing is sent before approval");
    let offered = &fake.requests()[0];
    let tool = offered
        .tools()
        .iter()
        .find(|t| t["function"]["name"] == "slack_send_message")
        .expect("offered");
    assert!(tool["function"]["description"].as_str().unwrap().contains("refunds"));
    let conv = paused["conversation_id"].as_str().unwrap();
    let action = paused["pending_actions"][0]["id"].as_str().unwrap();
    fake.push(Reply::text("Posted it."));
    let done = app
        .post(
            &format!("/api/v1/conversations/{conv}/actions/{action}"),
            Some(&s.access_token),
            json!({"approve": true}),
        )
        .await;
    assert_eq!(done.status(), 200);
    let issued = oauth.state().await; // the bearer is the token the provider issued
    {
        let posts = slack.posts.lock().unwrap();
        assert_eq!(posts.len(), 1);
        assert_eq!(
            posts[0].1,
            json!({"channel": "#support", "text": "Refund approved for order 42"})
        );
        assert!(
            issued["tokens"]
                .as_array()
                .unwrap()
                .iter()
                .any(|t| posts[0].0 == format!("Bearer {}", t.as_str().unwrap_or("")))
        );
    }
    // The tool result reached the model.
    let last = fake.requests().last().unwrap().messages().to_vec();
    assert!(
        last.iter().any(|m| m["role"] == "tool"
            && m["content"].as_str().unwrap_or("").contains("Posted to C0123"))
    );

    // An agent that does not ask first posts at once; its run trace has the call.
    let quick = app
        .create_agent(
            &s.workspace_id,
            "Quick",
            "quick",
            AgentSpec {
                config: Some(json!({"confirm_side_effects": false})),
                ..Default::default()
            },
        )
        .await;
    let link = app
        .put(
            &format!("/api/v1/agents/{quick}/integrations/{id}"),
            Some(&s.access_token),
            json!({"config": {"actions": ["send_message"]}}),
        )
        .await;
    assert_eq!(link.json::<Value>().await.unwrap()["tools"], json!(["slack_send_message"]));
    fake.push(Reply::tool_call("slack_send_message", r##"{"channel":"#general","text":"Hello"}"##));
    fake.push(Reply::text("Done."));
    let r: Value = app
        .post(
            &format!("/api/v1/agents/{quick}/chat"),
            Some(&s.access_token),
            json!({"message": "Say hello"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["status"], "completed", "{r}");
    assert_eq!(slack.posts.lock().unwrap().len(), 2);
    let used: Value = app
        .get(&format!("/api/v1/integrations/{id}"), Some(&s.access_token))
        .await
        .json()
        .await
        .unwrap();
    assert!(used["last_used_at"].is_i64());

    // Disconnected: the agent keeps working without the tool.
    assert_eq!(
        app.delete(&format!("/api/v1/integrations/{id}"), Some(&s.access_token)).await.status(),
        204
    );
    fake.push(Reply::text("I can still help."));
    let r: Value = app
        .post(
            &format!("/api/v1/agents/{quick}/chat"),
            Some(&s.access_token),
            json!({"message": "Hi"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["status"], "completed");
    let offered = fake.requests().last().unwrap().tools().to_vec();
    assert!(
        offered.iter().all(|t| t["function"]["name"] != "slack_send_message"),
        "the tool went with the connection"
    );
    let links: Value = app
        .get(&format!("/api/v1/agents/{quick}/integrations"), Some(&s.access_token))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(links["data"], json!([]));
}

#[tokio::test]
async fn zendesk_credentials_are_checked_before_they_are_saved() {
    async fn me(headers: HeaderMap) -> Json<Value> {
        use base64::Engine;
        let good = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode("agent@acme.test/token:good-token")
        );
        let ok = headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(good.as_str());
        // Zendesk answers an anonymous user for credentials it does not know.
        Json(if ok {
            json!({"user": {"id": 42, "email": "agent@acme.test"}})
        } else {
            json!({"user": {"id": null}})
        })
    }
    let base = serve(axum::Router::new().route("/api/v2/users/me.json", get(me))).await;
    let app = start_with_zendesk(format!("{base}/api/v2"), None).await;
    let s = app.signed_up("owner@example.com").await;
    let post = |fields: Value| {
        let app = &app;
        let token = s.access_token.clone();
        async move {
            app.post(
                "/api/v1/integrations/zendesk/credentials",
                Some(&token),
                json!({"fields": fields}),
            )
            .await
        }
    };
    let missing = post(json!({"subdomain": "acme"})).await;
    assert_eq!(missing.status(), 422);
    let body: Value = missing.json().await.unwrap();
    assert!(
        body["errors"].as_array().unwrap().iter().any(|e| e["path"] == "/fields/api_token"),
        "{body}"
    );
    let bad =
        post(json!({"subdomain": "acme", "email": "agent@acme.test", "api_token": "wrong"})).await;
    assert_eq!(bad.status(), 422);
    let good =
        post(json!({"subdomain": "acme", "email": "agent@acme.test", "api_token": "good-token"}))
            .await;
    assert_eq!(good.status(), 201);
    let c: Value = good.json().await.unwrap();
    assert_eq!(
        (c["provider"].as_str(), c["status"].as_str(), c["auth_type"].as_str()),
        (Some("zendesk"), Some("active"), Some("api_key"))
    );
    assert!(!c.to_string().contains("good-token"));
    // A second starter-plan integration is allowed (2), a third is not.
    let second =
        post(json!({"subdomain": "acme", "email": "agent@acme.test", "api_token": "good-token"}))
            .await;
    assert_eq!(second.status(), 201);
    let third =
        post(json!({"subdomain": "acme", "email": "agent@acme.test", "api_token": "good-token"}))
            .await;
    assert_eq!(third.status(), 402);
    assert_eq!(third.json::<Value>().await.unwrap()["limit"], "integrations");
    // Another workspace sees none of it.
    let other = app.signed_up("other@example.com").await;
    let id = c["id"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/api/v1/integrations/{id}"), Some(&other.access_token)).await.status(),
        404
    );
    assert_eq!(
        app.delete(&format!("/api/v1/integrations/{id}"), Some(&other.access_token)).await.status(),
        404
    );
}

#[tokio::test]
async fn an_agent_creates_a_zendesk_ticket_through_a_provider_that_fails_once() {
    #[derive(Clone, Default)]
    struct Zd {
        calls: Arc<Mutex<Vec<Value>>>,
    }
    async fn me() -> Json<Value> {
        Json(json!({"user": {"id": 42, "email": "agent@acme.test"}}))
    }
    async fn create(State(z): State<Zd>, Json(body): Json<Value>) -> axum::response::Response {
        use axum::response::IntoResponse;
        let mut calls = z.calls.lock().unwrap();
        calls.push(body.clone());
        if calls.len() == 1 {
            // The first attempt meets an outage; the connector retries.
            return (axum::http::StatusCode::SERVICE_UNAVAILABLE, "maintenance").into_response();
        }
        let t = &body["ticket"];
        Json(json!({"ticket": {"id": 1234, "subject": t["subject"], "status": "new"}}))
            .into_response()
    }
    let zd = Zd::default();
    let base = serve(
        axum::Router::new()
            .route("/api/v2/users/me.json", get(me))
            .route("/api/v2/tickets.json", post(create))
            .with_state(zd.clone()),
    )
    .await;
    let fake = FakeLlm::start().await;
    let app = start_with_zendesk(format!("{base}/api/v2"), Some(&fake)).await;
    let s = app.signed_up("owner@example.com").await;
    let fields = json!({"subdomain": "acme", "email": "agent@acme.test", "api_token": "tok"});
    let c = app
        .post(
            "/api/v1/integrations/zendesk/credentials",
            Some(&s.access_token),
            json!({"fields": fields}),
        )
        .await;
    assert_eq!(c.status(), 201);
    let id = c.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let spec =
        AgentSpec { config: Some(json!({"confirm_side_effects": false})), ..Default::default() };
    let agent = app.create_agent(&s.workspace_id, "Desk", "desk", spec).await;
    let link = app
        .put(
            &format!("/api/v1/agents/{agent}/integrations/{id}"),
            Some(&s.access_token),
            json!({"config": {"actions": ["create_ticket"]}}),
        )
        .await;
    assert_eq!(link.json::<Value>().await.unwrap()["tools"], json!(["zendesk_create_ticket"]));
    fake.push(Reply::tool_call(
        "zendesk_create_ticket",
        r#"{"subject":"Broken blender","comment":"It sparks.","requester_email":"pat@example.com","priority":"high"}"#,
    ));
    fake.push(Reply::text("I opened ticket 1234 for you."));
    let r: Value = app
        .post(
            &format!("/api/v1/agents/{agent}/chat"),
            Some(&s.access_token),
            json!({"message": "My blender sparks"}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["status"], "completed", "{r}");
    let calls = zd.calls.lock().unwrap().clone();
    assert_eq!(calls.len(), 2, "one 503, then the retry");
    assert_eq!(
        calls[1],
        json!({"ticket": {"subject": "Broken blender", "comment": {"body": "It sparks."},
            "requester": {"email": "pat@example.com"}, "priority": "high"}})
    );
    let last = fake.requests().last().unwrap().messages().to_vec();
    assert!(
        last.iter().any(|m| m["role"] == "tool"
            && m["content"].as_str().unwrap_or("").contains("Created Zendesk ticket #1234")),
        "{last:?}"
    );
}
