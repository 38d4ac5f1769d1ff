//! Bring-your-own model keys end to end: a workspace sets its own provider and key; its runs go
//! to that provider with that key (checked on the fake model's recorded `Authorization`
//! header), the key is never returned and not stored in the clear, and removing the provider
//! sends runs back to the server-wide one.

use fakellm::{FakeLlm, Reply};
use serde_json::{Value, json};
use testkit::{AgentSpec, Options, spawn_app_with};

const KEY: &str = "sk-workspace-secret-9876";

#[tokio::test]
async fn a_workspace_key_is_sealed_hidden_and_used_for_its_runs() {
    let server_fake = FakeLlm::start().await;
    let ws_fake = FakeLlm::start().await;
    let app = spawn_app_with(Options {
        llm_base_url: Some(server_fake.base_url.clone()),
        allow_private_model_hosts: true, // the workspace's fake provider listens on 127.0.0.1
        ..Options::default()
    })
    .await;
    let s = app.signed_up("byok@example.com").await;
    let t = s.access_token.as_str();
    app.create_agent(&s.workspace_id, "Sam", "sam", AgentSpec::default()).await;
    let path = "/api/v1/workspace/model-provider";

    assert_eq!(app.get(path, Some(t)).await.status(), 404, "none set yet");

    // Bad input is refused field by field; metadata addresses stay closed.
    let app_ref = &app;
    let bad = |body: Value| async move {
        app_ref.client.put(app_ref.url(path)).bearer_auth(t).json(&body).send().await.unwrap()
    };
    let r = bad(json!({"provider": "gemini", "model": "m", "api_key": "k"})).await;
    assert_eq!(r.status(), 422);
    let r = bad(json!({"provider": "openai", "model": "m", "api_key": ""})).await;
    assert_eq!(r.status(), 422);
    let r = bad(json!({"provider": "openai", "model": "m", "api_key": "k",
        "base_url": "http://169.254.169.254/v1"}))
    .await;
    assert_eq!(r.status(), 422);

    let r = app
        .client
        .put(app.url(path))
        .bearer_auth(t)
        .json(&json!({"provider": "openai", "base_url": ws_fake.base_url, "model": "ws-model", "api_key": KEY}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let text = r.text().await.unwrap();
    assert!(!text.contains(KEY), "the key is never returned: {text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["api_key_set"], true);
    assert_eq!(v["api_key_last4"], "9876");
    assert_eq!(v["model"], "ws-model");
    let got = app.get(path, Some(t)).await.text().await.unwrap();
    assert!(!got.contains(KEY), "{got}");
    assert!(got.contains("\"api_key_last4\":\"9876\""), "{got}");

    // The workspace's runs use its provider, model and key.
    ws_fake.push(Reply::text("From your own provider."));
    let r: Value = app
        .post("/api/v1/agents/sam/chat", Some(t), json!({"message": "Hello"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["message"], "From your own provider.");
    assert_eq!(server_fake.request_count(), 0, "the server-wide provider is not used");
    let seen = ws_fake.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].header("authorization"), Some(format!("Bearer {KEY}").as_str()));
    assert_eq!(seen[0].model(), "ws-model");
    let run: Value = app
        .get(&format!("/api/v1/runs/{}", r["run_id"].as_str().unwrap()), Some(t))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(run["model"], "ws-model");

    // Not in the clear at rest, nor in the server's log.
    let mut at_rest = Vec::new();
    for f in ["echoforge.db", "echoforge.db-wal"] {
        if let Ok(bytes) = std::fs::read(app.data_dir.join(f)) {
            at_rest.extend(bytes);
        }
    }
    assert!(!at_rest.is_empty());
    assert!(!at_rest.windows(KEY.len()).any(|w| w == KEY.as_bytes()), "the key is stored sealed");

    // An API key (even an admin one) cannot manage the provider: owners and admins only.
    let key: Value = app
        .post("/api/v1/api-keys", Some(t), json!({"name": "k", "permissions": ["read", "admin"]}))
        .await
        .json()
        .await
        .unwrap();
    let api_key = key["secret"].as_str().unwrap();
    assert_eq!(app.get(path, Some(api_key)).await.status(), 403);

    // Removed: back to the server-wide provider.
    assert_eq!(app.delete(path, Some(t)).await.status(), 204);
    assert_eq!(app.get(path, Some(t)).await.status(), 404);
    server_fake.push(Reply::text("From the server's provider."));
    let r: Value = app
        .post("/api/v1/agents/sam/chat", Some(t), json!({"message": "Hello again"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(r["message"], "From the server's provider.");
    assert_eq!(ws_fake.request_count(), 1);
    assert_eq!(server_fake.request_count(), 1);
    assert_ne!(
        server_fake.requests()[0].header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
}

#[tokio::test]
async fn a_workspace_endpoint_whose_name_resolves_to_loopback_is_refused_at_connect_time() {
    let server_fake = FakeLlm::start().await;
    let ws_fake = FakeLlm::start().await;
    // URL imports may reach private hosts here; model endpoints may not (separate switches).
    let app = spawn_app_with(Options {
        llm_base_url: Some(server_fake.base_url.clone()),
        allow_private_urls: true,
        ..Options::default()
    })
    .await;
    let s = app.signed_up("ssrf-model@example.com").await;
    let t = s.access_token.as_str();
    app.create_agent(&s.workspace_id, "Sam", "sam", AgentSpec::default()).await;
    let path = "/api/v1/workspace/model-provider";
    let put = |base_url: String| {
        let app = &app;
        async move {
            app.client
                .put(app.url(path))
                .bearer_auth(t)
                .json(&json!({"provider": "openai", "base_url": base_url, "model": "m", "api_key": KEY}))
                .send()
                .await
                .unwrap()
        }
    };
    // An IP literal is refused when set.
    assert_eq!(put(ws_fake.base_url.clone()).await.status(), 422);
    // A name is only known at connect time: `localhost` resolves to loopback, so the run
    // never reaches the workspace's endpoint (nor falls back to the server's).
    let by_name = ws_fake.base_url.replace("127.0.0.1", "localhost");
    assert_ne!(by_name, ws_fake.base_url);
    assert_eq!(put(by_name).await.status(), 200);
    ws_fake.push(Reply::text("You should not see this."));
    let r = app.post("/api/v1/agents/sam/chat", Some(t), json!({"message": "Hello"})).await;
    let status = r.status();
    let text = r.text().await.unwrap();
    assert!(!text.contains("You should not see this."), "{status} {text}");
    assert_eq!(ws_fake.request_count(), 0, "the guard refused the connection: {status} {text}");
    assert_eq!(server_fake.request_count(), 0);
}

#[tokio::test]
async fn a_paused_run_resumes_on_the_workspaces_own_provider() {
    let server_fake = FakeLlm::start().await;
    let ws_fake = FakeLlm::start().await;
    let app = spawn_app_with(Options {
        llm_base_url: Some(server_fake.base_url.clone()),
        allow_private_model_hosts: true,
        ..Options::default()
    })
    .await;
    let s = app.signed_up("byok-resume@example.com").await;
    let t = s.access_token.as_str();
    let spec = AgentSpec {
        capabilities: vec!["escalation".into()],
        config: Some(json!({"requires_confirmation": ["escalate_to_human"]})),
        ..AgentSpec::default()
    };
    app.create_agent(&s.workspace_id, "Careful", "careful", spec).await;
    let r = app
        .client
        .put(app.url("/api/v1/workspace/model-provider"))
        .bearer_auth(t)
        .json(&json!({"provider": "openai", "base_url": ws_fake.base_url, "model": "ws-model", "api_key": KEY}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    ws_fake.push(Reply::tool_call("escalate_to_human", r#"{"reason":"refund"}"#));
    let paused: Value = app
        .post("/api/v1/agents/careful/chat", Some(t), json!({"message": "human please"}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(paused["status"], "awaiting_action", "{paused}");
    let action = paused["pending_actions"][0]["id"].as_str().unwrap();
    let conv = paused["conversation_id"].as_str().unwrap();
    ws_fake.push(Reply::text("Escalated on your own provider."));
    let resumed: Value = app
        .post(
            &format!("/api/v1/conversations/{conv}/actions/{action}"),
            Some(t),
            json!({"approve": true}),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(resumed["message"], "Escalated on your own provider.", "{resumed}");
    assert_eq!(ws_fake.request_count(), 2);
    assert_eq!(server_fake.request_count(), 0, "the server-wide provider is never used");
    assert_eq!(
        ws_fake.requests()[1].header("authorization"),
        Some(format!("Bearer {KEY}").as_str())
    );
}
