//! Chat end to end: a real server on port 0 talking to a scripted fake LLM over real HTTP.
//! Conversations, chat as JSON and SSE, tools, pending actions, the no-model fallback, runs,
//! usage, isolation and failures, and the OpenAI-compatible API driven by the official `openai`
//! Python package (`pip install -r tests-requirements.txt`).

use fakellm::{FakeLlm, Reply};
use serde_json::{Value, json};
use testkit::{AgentSpec, Options, Session, TestApp, spawn_app_with};

async fn body(resp: reqwest::Response) -> Value {
    resp.json().await.expect("a JSON body")
}

async fn start(fake: Option<&FakeLlm>) -> (TestApp, Session, String) {
    let app = spawn_app_with(Options {
        llm_base_url: fake.map(|f| f.base_url.clone()),
        ..Options::default()
    })
    .await;
    let s = app.signed_up("chat@example.com").await;
    let agent = app.create_agent(&s.workspace_id, "Sam", "sam", AgentSpec::default()).await;
    (app, s, agent)
}

async fn chat(app: &TestApp, token: &str, agent: &str, body_json: Value) -> reqwest::Response {
    app.post(&format!("/api/v1/agents/{agent}/chat"), Some(token), body_json).await
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

#[tokio::test]
async fn chat_answers_as_json_and_keeps_the_conversation() {
    let fake = FakeLlm::start().await;
    let (app, s, agent) = start(Some(&fake)).await;
    fake.push(Reply::text("Hello there!").with_usage(21, 4));
    let r = chat(&app, &s.access_token, &agent, json!({"message": "  Hi, I need help  "})).await;
    assert_eq!(r.status(), 200);
    let first = body(r).await;
    assert_eq!(first["message"], "Hello there!");
    assert_eq!(first["status"], "completed");
    assert_eq!(first["metadata"]["usage"]["prompt_tokens"], 21);
    assert_eq!(first["metadata"]["usage"]["completion_tokens"], 4);
    assert!(first["metadata"]["execution_time_ms"].is_u64());
    let conv = first["conversation_id"].as_str().unwrap().to_owned();

    fake.push(Reply::text("Of course."));
    let second = body(
        chat(&app, &s.access_token, "sam", json!({"message": "Refunds?", "conversation_id": conv}))
            .await,
    )
    .await;
    assert_eq!(second["conversation_id"], conv.as_str(), "the slug names the agent too");
    // The history reached the model.
    let sent = fake.requests()[1].messages().to_vec();
    let contents: Vec<&str> = sent.iter().filter_map(|m| m["content"].as_str()).collect();
    assert!(contents.contains(&"Hi, I need help"), "{contents:?}");
    assert!(contents.contains(&"Hello there!"), "{contents:?}");
    assert_eq!(*contents.last().unwrap(), "Refunds?");

    let c =
        body(app.get(&format!("/api/v1/conversations/{conv}"), Some(&s.access_token)).await).await;
    assert_eq!(c["title"], "Hi, I need help", "titled after the first message");
    let roles: Vec<&str> =
        c["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant", "user", "assistant"]);
    assert_eq!(c["messages"][1]["content"], "Hello there!");
}

#[tokio::test]
async fn chat_streams_typed_events_and_persists_before_the_last_one() {
    let fake = FakeLlm::start().await;
    let (app, s, agent) = start(Some(&fake)).await;
    fake.push(Reply::text("Streaming works just fine.").in_chunks(5));
    let resp = app
        .client
        .post(app.url(&format!("/api/v1/agents/{agent}/chat")))
        .bearer_auth(&s.access_token)
        .header("accept", "text/event-stream")
        .json(&json!({"message": "stream please"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let events = sse_events(&resp.text().await.unwrap());
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names.first(), Some(&"run.started"));
    assert_eq!(&names[names.len() - 2..], ["message.completed", "run.completed"]);
    assert!(names.iter().filter(|n| **n == "message.delta").count() >= 2, "{names:?}");
    let joined: String = events
        .iter()
        .filter(|(n, _)| n == "message.delta")
        .map(|(_, d)| d["delta"].as_str().unwrap())
        .collect();
    assert_eq!(joined, "Streaming works just fine.");
    let conv = events[0].1["conversation_id"].as_str().unwrap();
    let c =
        body(app.get(&format!("/api/v1/conversations/{conv}"), Some(&s.access_token)).await).await;
    assert_eq!(c["messages"][1]["content"], "Streaming works just fine.");
}

#[tokio::test]
async fn tool_calls_run_and_are_traced_and_confirmation_pauses_the_run() {
    let fake = FakeLlm::start().await;
    let (app, s, _) = start(Some(&fake)).await;
    let spec = AgentSpec { capabilities: vec!["escalation".into()], ..AgentSpec::default() };
    let agent = app.create_agent(&s.workspace_id, "Esc", "esc", spec).await;
    fake.push(Reply::tool_call("escalate_to_human", r#"{"reason":"angry customer"}"#));
    fake.push(Reply::text("A human will contact you."));
    let r =
        body(chat(&app, &s.access_token, &agent, json!({"message": "get me a human"})).await).await;
    assert_eq!(r["message"], "A human will contact you.");
    assert_eq!(r["metadata"]["tools_used"], json!(["escalate_to_human"]));
    assert_eq!(r["metadata"]["usage"]["tool_calls"], 1);
    let run = body(
        app.get(&format!("/api/v1/runs/{}", r["run_id"].as_str().unwrap()), Some(&s.access_token))
            .await,
    )
    .await;
    assert_eq!(run["status"], "completed");
    let kinds: Vec<&str> =
        run["steps"].as_array().unwrap().iter().map(|s| s["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["model_call", "tool_call", "model_call"]);
    assert_eq!(run["steps"][1]["name"], "escalate_to_human");
    assert_eq!(run["steps"][1]["output"]["status"], "ok");
    assert!(run["steps"][0]["tokens_in"].as_i64().unwrap() > 0);
    let c = body(
        app.get(
            &format!("/api/v1/conversations/{}", r["conversation_id"].as_str().unwrap()),
            Some(&s.access_token),
        )
        .await,
    )
    .await;
    let roles: Vec<&str> =
        c["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user", "assistant", "tool", "assistant"]);
    assert_eq!(c["messages"][1]["tool_calls"][0]["name"], "escalate_to_human");

    // With confirmation required, the run pauses until the user approves.
    let spec = AgentSpec {
        capabilities: vec!["escalation".into()],
        config: Some(json!({"requires_confirmation": ["escalate_to_human"]})),
        ..AgentSpec::default()
    };
    let careful = app.create_agent(&s.workspace_id, "Careful", "careful", spec).await;
    fake.push(Reply::tool_call("escalate_to_human", r#"{"reason":"refund"}"#));
    let paused =
        body(chat(&app, &s.access_token, &careful, json!({"message": "human please"})).await).await;
    assert_eq!(paused["status"], "awaiting_action");
    let action = paused["pending_actions"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(paused["pending_actions"][0]["arguments"]["reason"], "refund");
    let conv = paused["conversation_id"].as_str().unwrap().to_owned();
    fake.push(Reply::text("Escalated as approved."));
    let resumed = app
        .post(
            &format!("/api/v1/conversations/{conv}/actions/{action}"),
            Some(&s.access_token),
            json!({"approve": true}),
        )
        .await;
    assert_eq!(resumed.status(), 200);
    let resumed = body(resumed).await;
    assert_eq!(resumed["message"], "Escalated as approved.");
    assert_eq!(resumed["run_id"], paused["run_id"]);
    let c =
        body(app.get(&format!("/api/v1/conversations/{conv}"), Some(&s.access_token)).await).await;
    assert_eq!(c["pending_actions"], json!([]));
    let again = app
        .post(
            &format!("/api/v1/conversations/{conv}/actions/{action}"),
            Some(&s.access_token),
            json!({"approve": true}),
        )
        .await;
    assert_eq!(again.status(), 404, "an action is decided once");
}

#[tokio::test]
async fn without_a_model_the_agent_says_so() {
    let (app, s, agent) = start(None).await;
    let r = body(chat(&app, &s.access_token, &agent, json!({"message": "hello?"})).await).await;
    assert!(
        r["message"].as_str().unwrap().contains("No language model is configured"),
        "{}",
        r["message"]
    );
    assert_eq!(r["metadata"]["model"], Value::Null);
}

#[tokio::test]
async fn provider_failures_are_502_and_the_conversation_stays_consistent() {
    let fake = FakeLlm::start().await;
    let (app, s, agent) = start(Some(&fake)).await;
    for _ in 0..3 {
        fake.push(Reply::server_error()); // the first attempt and two retries
    }
    let r = chat(&app, &s.access_token, &agent, json!({"message": "are you there?"})).await;
    assert_eq!(r.status(), 502);
    let p = body(r).await;
    assert_eq!(p["code"], "llm_unavailable");
    let list = body(app.get("/api/v1/conversations", Some(&s.access_token)).await).await;
    let conv = list["data"][0]["id"].as_str().unwrap().to_owned();
    let c =
        body(app.get(&format!("/api/v1/conversations/{conv}"), Some(&s.access_token)).await).await;
    let roles: Vec<&str> =
        c["messages"].as_array().unwrap().iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, ["user"], "the question is kept, no half answer");
    let runs = body(app.get("/api/v1/runs", Some(&s.access_token)).await).await;
    assert_eq!(runs["data"][0]["status"], "failed");
    assert!(runs["data"][0]["error"].as_str().unwrap().starts_with("llm_unavailable"));
    // The conversation goes on.
    fake.push(Reply::text("Back now."));
    let r = body(
        chat(&app, &s.access_token, &agent, json!({"message": "again?", "conversation_id": conv}))
            .await,
    )
    .await;
    assert_eq!(r["message"], "Back now.");

    // Streaming: the failure is a run.failed event.
    for _ in 0..3 {
        fake.push(Reply::server_error());
    }
    let resp = app
        .client
        .post(app.url(&format!("/api/v1/agents/{agent}/chat")))
        .bearer_auth(&s.access_token)
        .header("accept", "text/event-stream")
        .json(&json!({"message": "stream fail"}))
        .send()
        .await
        .unwrap();
    let events = sse_events(&resp.text().await.unwrap());
    let (last, data) = events.last().unwrap();
    assert_eq!(last, "run.failed");
    assert_eq!(data["code"], "llm_unavailable");
}

#[tokio::test]
async fn bad_requests_get_clear_errors() {
    let fake = FakeLlm::start().await;
    let (app, s, agent) = start(Some(&fake)).await;
    let t = Some(s.access_token.as_str());
    let long = "x".repeat(40_000);
    let r = app.post(&format!("/api/v1/agents/{agent}/chat"), t, json!({"message": long})).await;
    assert_eq!(r.status(), 422);
    assert_eq!(body(r).await["errors"][0]["path"], "/message");
    let r = app.post("/api/v1/agents/nobody/chat", t, json!({"message": "hi"})).await;
    assert_eq!(r.status(), 404);
    let spec = AgentSpec { inactive: true, ..AgentSpec::default() };
    let paused = app.create_agent(&s.workspace_id, "Off", "off", spec).await;
    let r = app.post(&format!("/api/v1/agents/{paused}/chat"), t, json!({"message": "hi"})).await;
    assert_eq!(r.status(), 409);
    assert_eq!(body(r).await["code"], "agent_inactive");
    let reader = app.create_key(&s.workspace_id, None, &["read"]).await;
    let r = chat(&app, &reader, &agent, json!({"message": "hi"})).await;
    assert_eq!(r.status(), 403);
    assert_eq!(body(r).await["code"], "permission_denied");
    let r = app
        .post(
            "/v1/chat/completions",
            Some(&reader),
            json!({"model": "sam", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(r.status(), 403);
    assert_eq!(body(r).await["error"]["code"], "permission_denied");
    assert_eq!(fake.request_count(), 0, "nothing reached the model");
}

#[tokio::test]
async fn workspaces_cannot_see_each_others_chats() {
    let fake = FakeLlm::start().await;
    let (app, s, agent) = start(Some(&fake)).await;
    fake.push(Reply::text("mine"));
    let r = body(chat(&app, &s.access_token, &agent, json!({"message": "secret"})).await).await;
    let (conv, run) = (r["conversation_id"].as_str().unwrap(), r["run_id"].as_str().unwrap());
    let other = app.signed_up("other@example.com").await;
    let t = Some(other.access_token.as_str());
    for path in [format!("/api/v1/conversations/{conv}"), format!("/api/v1/runs/{run}")] {
        assert_eq!(app.get(&path, t).await.status(), 404, "{path}");
    }
    assert_eq!(app.delete(&format!("/api/v1/conversations/{conv}"), t).await.status(), 404);
    let r = app.post(&format!("/api/v1/agents/{agent}/chat"), t, json!({"message": "hi"})).await;
    assert_eq!(r.status(), 404);
    let r = app.post("/api/v1/conversations", t, json!({"agent_id": agent})).await;
    assert_eq!(r.status(), 404);
    let list = body(app.get("/api/v1/runs", t).await).await;
    assert_eq!(list["data"], json!([]));
}

#[tokio::test]
async fn conversations_are_listed_with_cursors_and_deleted() {
    let (app, s, agent) = start(None).await;
    let t = Some(s.access_token.as_str());
    let mut ids = Vec::new();
    for i in 0..3 {
        let r = app
            .post(
                "/api/v1/conversations",
                t,
                json!({"agent_id": agent, "end_user_id": "u1", "title": format!("c{i}")}),
            )
            .await;
        assert_eq!(r.status(), 201);
        ids.push(body(r).await["id"].as_str().unwrap().to_owned());
    }
    let page = body(
        app.get(&format!("/api/v1/conversations?agent_id={agent}&end_user_id=u1&limit=2"), t).await,
    )
    .await;
    assert_eq!(page["data"].as_array().unwrap().len(), 2);
    let cursor = page["next_cursor"].as_str().unwrap();
    let rest = body(
        app.get(&format!("/api/v1/conversations?agent_id={agent}&limit=2&cursor={cursor}"), t)
            .await,
    )
    .await;
    assert_eq!(rest["data"].as_array().unwrap().len(), 1);
    assert_eq!(rest["next_cursor"], Value::Null);
    let other_user = body(app.get("/api/v1/conversations?end_user_id=u2", t).await).await;
    assert_eq!(other_user["data"], json!([]));
    assert_eq!(app.delete(&format!("/api/v1/conversations/{}", ids[0]), t).await.status(), 204);
    assert_eq!(app.get(&format!("/api/v1/conversations/{}", ids[0]), t).await.status(), 404);
}

#[tokio::test]
async fn runs_and_usage_are_recorded() {
    let fake = FakeLlm::start().await;
    let (app, s, agent) = start(Some(&fake)).await;
    fake.push(Reply::text("one").with_usage(11, 7));
    fake.push(Reply::text("two").with_usage(5, 3));
    for m in ["first", "second"] {
        assert_eq!(chat(&app, &s.access_token, &agent, json!({"message": m})).await.status(), 200);
    }
    let runs =
        body(app.get(&format!("/api/v1/runs?agent_id={agent}"), Some(&s.access_token)).await).await;
    assert_eq!(runs["data"].as_array().unwrap().len(), 2);
    let newest = runs["data"][0]["id"].as_str().unwrap();
    let run = body(app.get(&format!("/api/v1/runs/{newest}"), Some(&s.access_token)).await).await;
    assert_eq!(run["steps"][0]["kind"], "model_call");
    assert_eq!(run["steps"][0]["name"], "fake-model");
    assert_eq!(
        (run["steps"][0]["tokens_in"].as_i64(), run["steps"][0]["tokens_out"].as_i64()),
        (Some(5), Some(3))
    );
    assert_eq!(run["usage"]["prompt_tokens"], 5);

    app.app.flush().await;
    let ws = domain::WorkspaceId::parse(&s.workspace_id).unwrap();
    #[allow(clippy::disallowed_methods)] // reading the test's own workspace
    let scope = store::TenantScope::assume(ws);
    let day = app::utc_day(domain::time::now_ms());
    let totals = app.app.store().usage_by_metric(&scope, &day, &day).await.unwrap();
    let got: Vec<(&str, i64)> = totals.iter().map(|t| (t.metric.as_str(), t.quantity)).collect();
    // Two messages at the default cost of one credit each.
    assert_eq!(got, [("credits", 2), ("messages", 2), ("tokens_in", 16), ("tokens_out", 10)]);
}

#[tokio::test]
async fn openai_models_follow_the_key_scope() {
    let fake = FakeLlm::start().await;
    let (app, s, sam) = start(Some(&fake)).await;
    let _kim = app.create_agent(&s.workspace_id, "Kim", "kim", AgentSpec::default()).await;
    let ws_key = app.create_key(&s.workspace_id, None, &["chat"]).await;
    let sam_key = app.create_key(&s.workspace_id, Some(&sam), &["chat"]).await;
    let ids = |v: Value| -> Vec<String> {
        v["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_owned()).collect()
    };
    let mut all = ids(body(app.get("/v1/models", Some(&ws_key)).await).await);
    all.sort();
    assert_eq!(all, ["kim", "sam"]);
    assert_eq!(ids(body(app.get("/v1/models", Some(&sam_key)).await).await), ["sam"]);
    let r = app
        .post(
            "/v1/chat/completions",
            Some(&sam_key),
            json!({"model": "kim", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .await;
    assert_eq!(r.status(), 404);
    assert_eq!(body(r).await["error"]["code"], "model_not_found");
    let r = app.get("/v1/models", None).await;
    assert_eq!(r.status(), 401);
    assert_eq!(body(r).await["error"]["type"], "authentication_error");
}

const OPENAI_SCRIPT: &str = r#"
import sys, openai
base, key, model = sys.argv[1], sys.argv[2], sys.argv[3]
c = openai.OpenAI(base_url=base, api_key=key, max_retries=0)
r = c.chat.completions.create(model=model, messages=[{"role": "system", "content": "ignored"}, {"role": "user", "content": "Hello python"}])
print("CHAT:" + r.choices[0].message.content)
print("USAGE:%d/%d/%d" % (r.usage.prompt_tokens, r.usage.completion_tokens, r.usage.total_tokens))
s = c.chat.completions.create(model=model, messages=[{"role": "user", "content": "Stream please"}], stream=True, stream_options={"include_usage": True})
parts, usage = [], None
for ch in s:
    if ch.choices and ch.choices[0].delta.content:
        parts.append(ch.choices[0].delta.content)
    if ch.usage:
        usage = ch.usage.total_tokens
print("STREAM:" + "|".join(parts))
print("STREAMUSAGE:%s" % usage)
try:
    c.chat.completions.create(model="no-such-agent", messages=[{"role": "user", "content": "x"}])
except openai.NotFoundError as e:
    print("NOTFOUND:%d" % e.status_code)
print("MODELS:" + ",".join(m.id for m in c.models.list()))
"#;

#[tokio::test]
async fn the_official_openai_python_client_works_unchanged() {
    let fake = FakeLlm::start().await;
    let (app, s, _) = start(Some(&fake)).await;
    let key = app.create_key(&s.workspace_id, None, &["chat"]).await;
    fake.push(Reply::text("Hi from the agent").with_usage(9, 4));
    fake.push(Reply::text("Streamed answer here").in_chunks(3).with_usage(6, 2));
    let out = tokio::process::Command::new("python3")
        .args(["-c", OPENAI_SCRIPT, &app.url("/v1"), &key, "sam"])
        .output()
        .await
        .expect("python3 runs (install: pip install -r tests-requirements.txt)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "python failed:\n{stdout}\n{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines,
        [
            "CHAT:Hi from the agent",
            "USAGE:9/4/13",
            "STREAM:Streame|d answe|r here",
            "STREAMUSAGE:8",
            "NOTFOUND:404",
            "MODELS:sam",
        ],
        "{stderr}"
    );
    // The client's system message is not sent: the agent's own prompt is.
    let sent = &fake.requests()[0];
    assert!(sent.messages()[0]["content"].as_str().unwrap().contains("You are Sam"));
    assert!(!sent.messages().iter().any(|m| m["content"] == "ignored"));
}

/// Every text frame of a WebSocket chat, as JSON, until the server closes.
async fn ws_chat(app: &TestApp, token: &str, request: Value) -> Vec<Value> {
    use futures::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::Message;
    let url =
        format!("{}/api/v1/chat/stream?access_token={token}", app.base.replace("http://", "ws://"));
    let (mut ws, _) = tokio_tungstenite::connect_async(url).await.expect("websocket connects");
    ws.send(Message::Text(request.to_string().into())).await.unwrap();
    let mut frames = Vec::new();
    while let Some(Ok(m)) = ws.next().await {
        match m {
            Message::Text(t) => frames.push(serde_json::from_str(t.as_str()).unwrap()),
            Message::Close(_) => break,
            _ => {}
        }
    }
    frames
}

#[tokio::test]
async fn chat_over_websocket_sends_the_run_events() {
    let fake = FakeLlm::start().await;
    let (app, s, agent) = start(Some(&fake)).await;
    fake.push(Reply::text("Over the socket.").in_chunks(3));
    let frames =
        ws_chat(&app, &s.access_token, json!({"agent_id": agent, "message": "ws hello"})).await;
    let types: Vec<&str> = frames.iter().map(|f| f["type"].as_str().unwrap()).collect();
    assert_eq!(types.first(), Some(&"run.started"));
    assert_eq!(&types[types.len() - 2..], ["message.completed", "run.completed"]);
    let joined: String = frames
        .iter()
        .filter(|f| f["type"] == "message.delta")
        .map(|f| f["delta"].as_str().unwrap())
        .collect();
    assert_eq!(joined, "Over the socket.");
    let conv = frames[0]["conversation_id"].as_str().unwrap();
    let c =
        body(app.get(&format!("/api/v1/conversations/{conv}"), Some(&s.access_token)).await).await;
    assert_eq!(c["messages"][1]["content"], "Over the socket.");
    let refused =
        ws_chat(&app, &s.access_token, json!({"agent_id": "nobody", "message": "hi"})).await;
    assert_eq!(
        refused,
        [json!({"type": "error", "code": "not_found", "message": "agent not found"})]
    );
}
