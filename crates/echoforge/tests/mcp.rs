//! EchoForge as an MCP server (`/mcp`, streamable HTTP): driven by the official `mcp` Python
//! SDK (`pip install -r tests-requirements.txt`) and by raw JSON-RPC over HTTP for the edges
//! (authentication, workspace keys, isolation, malformed messages).

use std::time::Duration;

use fakellm::{FakeLlm, Reply};
use serde_json::{Value, json};
use testkit::{AgentSpec, Options, Session, TestApp, spawn_app_with};

const HANDBOOK: &str = "# Employee handbook\n\n## Holidays\n\nEvery employee gets twenty-eight paid holiday days per year, booked through the people team.\n\n## Expenses\n\nTravel expenses are reimbursed within fourteen days when receipts are attached.\n";

async fn body(resp: reqwest::Response) -> Value {
    resp.json().await.expect("a JSON body")
}

/// A knowledge base holding the handbook, indexed; returns its id.
async fn handbook(app: &TestApp, s: &Session, name: &str) -> String {
    let kb = body(
        app.post("/api/v1/knowledge-bases", Some(&s.access_token), json!({"name": name})).await,
    )
    .await;
    let kb_id = kb["id"].as_str().unwrap().to_owned();
    let up = body(
        app.upload_documents(
            &s.access_token,
            &kb_id,
            &[("handbook.md", "text/markdown", HANDBOOK.as_bytes().to_vec())],
        )
        .await,
    )
    .await;
    let doc = up["data"][0]["id"].as_str().unwrap().to_owned();
    for _ in 0..200 {
        let d = body(
            app.get(
                &format!("/api/v1/knowledge-bases/{kb_id}/documents/{doc}"),
                Some(&s.access_token),
            )
            .await,
        )
        .await;
        if d["status"] == "indexed" {
            return kb_id;
        }
        assert_ne!(d["status"], "failed", "{d}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the handbook was never indexed");
}

/// A server whose model is `fake`.
async fn start(fake: &FakeLlm) -> TestApp {
    spawn_app_with(Options { llm_base_url: Some(fake.base_url.clone()), ..Options::default() })
        .await
}

const CLIENT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/mcp_client.py");

#[tokio::test]
async fn the_official_mcp_python_sdk_chats_in_one_conversation_and_searches() {
    let fake = FakeLlm::start().await;
    let app = start(&fake).await;
    let s = app.signed_up("mcp@example.com").await;
    let kb = handbook(&app, &s, "Handbook").await;
    let agent = app
        .create_agent(
            &s.workspace_id,
            "HR Helper",
            "hr-helper",
            AgentSpec {
                capabilities: vec!["rag".into()],
                knowledge_base_ids: vec![kb],
                ..Default::default()
            },
        )
        .await;
    // Another agent of the workspace: an agent key does not see it.
    app.create_agent(&s.workspace_id, "Other", "other", AgentSpec::default()).await;
    let key = app.create_key(&s.workspace_id, Some(&agent), &["chat"]).await;
    fake.push(Reply::tool_call("search_knowledge", r#"{"query":"holiday days"}"#));
    fake.push(Reply::text("You get twenty-eight days [1].").in_chunks(3));
    fake.push(Reply::text("Expenses are paid within fourteen days."));

    let out = tokio::process::Command::new("python3")
        .args([CLIENT, &app.url("/mcp"), &key, "chat_hr_helper", "search_handbook"])
        .output()
        .await
        .expect("python3 runs (install: pip install -r tests-requirements.txt)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "python failed:\n{stdout}\n{stderr}");
    let line = |name: &str| -> String {
        stdout
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .unwrap_or_else(|| panic!("no {name} line in:\n{stdout}\n{stderr}"))
            .to_owned()
    };
    assert_eq!(line("TOOLS"), "chat_hr_helper,search_handbook");
    assert_eq!(line("ERROR1"), "False");
    assert_eq!(line("ANSWER1"), "You get twenty-eight days [1].");
    assert_eq!(line("CITED"), "Employee handbook");
    assert_eq!(line("TEXT_HAS_SOURCES"), "True");
    let progress = line("PROGRESS");
    assert!(progress.contains("using search_knowledge"), "{progress}");
    assert!(
        progress.replace('|', "").contains("You get twenty-eight days"),
        "the answer streams as progress: {progress}"
    );
    assert_eq!(line("ANSWER2"), "Expenses are paid within fourteen days.");
    assert_eq!(line("SAME_CONVERSATION"), "True");
    assert_eq!(line("SEARCH"), "Employee handbook");
    assert_eq!(line("UNKNOWN"), "-32602", "an unknown tool is an invalid-params error");
    assert_eq!(line("MISSING"), "-32602", "a missing message is an invalid-params error");
    // The second call continued the conversation: its history holds the first exchange.
    let requests = fake.requests();
    assert_eq!(requests.len(), 3);
    let history: Vec<String> =
        requests[2].messages().iter().map(|m| m["content"].to_string()).collect();
    assert!(history.iter().any(|c| c.contains("How many holiday days?")), "{history:?}");
    assert!(history.iter().any(|c| c.contains("twenty-eight days")), "{history:?}");
    // Both messages are on one conversation of the `mcp` channel.
    let list = body(app.get("/api/v1/conversations", Some(&s.access_token)).await).await;
    let convs = list["data"].as_array().unwrap();
    assert_eq!(convs.len(), 1, "{list}");
    assert_eq!(convs[0]["channel"], "mcp");
    // Developer Studio shows the agent's MCP URL, tool name and client configuration.
    let cookie = app.web_login(&s).await;
    let html = reqwest::Client::new()
        .get(app.url(&format!("/studio/agents/{agent}")))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .replace("&#x2f;", "/")
        .replace("&quot;", "\"");
    assert!(html.contains("data-origin-text>/mcp<"), "the MCP URL is shown");
    assert!(html.contains("<code>chat_hr_helper</code>"), "the chat tool is named");
    assert!(html.contains("mcp-remote") && html.contains(".cursor/mcp.json"), "client configs");
}

/// A JSON-RPC exchange over streamable HTTP (legacy sessions: `initialize` first).
struct Rpc<'a> {
    app: &'a TestApp,
    key: String,
    session: Option<String>,
    next: u64,
}

impl<'a> Rpc<'a> {
    async fn open(app: &'a TestApp, key: &str) -> Self {
        let mut rpc = Rpc { app, key: key.to_owned(), session: None, next: 1 };
        let (status, init) = rpc
            .call(
                "initialize",
                json!({"protocolVersion": "2025-06-18", "capabilities": {},
                    "clientInfo": {"name": "test", "version": "1"}}),
            )
            .await;
        assert_eq!(status, 200, "{init}");
        assert_eq!(init["result"]["serverInfo"]["name"], "EchoForge", "{init}");
        let r = rpc.post(json!({"jsonrpc": "2.0", "method": "notifications/initialized"})).await;
        assert!(r.status().is_success(), "{}", r.status());
        rpc
    }

    async fn post(&mut self, message: Value) -> reqwest::Response {
        let mut req = reqwest::Client::new()
            .post(self.app.url("/mcp"))
            .bearer_auth(&self.key)
            .header("accept", "application/json, text/event-stream")
            .header("mcp-protocol-version", "2025-06-18")
            .json(&message);
        if let Some(s) = &self.session {
            req = req.header("mcp-session-id", s);
        }
        let r = req.send().await.unwrap();
        if let Some(s) = r.headers().get("mcp-session-id") {
            self.session = Some(s.to_str().unwrap().to_owned());
        }
        r
    }

    /// Sends a request; its response (the last JSON-RPC message of an SSE body).
    async fn call(&mut self, method: &str, params: Value) -> (u16, Value) {
        let id = self.next;
        self.next += 1;
        let r = self
            .post(json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}))
            .await;
        let status = r.status().as_u16();
        (status, last_message(&r.text().await.unwrap()))
    }

    async fn tools(&mut self) -> Vec<String> {
        let (status, r) = self.call("tools/list", json!({})).await;
        assert_eq!(status, 200, "{r}");
        let mut names: Vec<String> = r["result"]["tools"]
            .as_array()
            .unwrap_or_else(|| panic!("{r}"))
            .iter()
            .map(|t| t["name"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    }
}

/// The last JSON-RPC message of a body (JSON, or the `data:` lines of an SSE stream).
fn last_message(text: &str) -> Value {
    if let Ok(v) = serde_json::from_str::<Value>(text) {
        return v;
    }
    text.lines()
        .rev()
        .filter_map(|l| l.strip_prefix("data:"))
        .filter_map(|d| serde_json::from_str::<Value>(d.trim()).ok())
        .find(|v| v.get("id").is_some())
        .unwrap_or_else(|| panic!("no JSON-RPC response in {text:?}"))
}

#[tokio::test]
async fn keys_decide_what_mcp_shows_and_bad_input_gets_json_rpc_errors() {
    let fake = FakeLlm::start().await;
    let app = start(&fake).await;
    let a = app.signed_up("mcp-a@example.com").await;
    handbook(&app, &a, "Company FAQ").await;
    let sam = app.create_agent(&a.workspace_id, "Sam", "sam", AgentSpec::default()).await;
    app.create_agent(
        &a.workspace_id,
        "Paused",
        "paused",
        AgentSpec { inactive: true, ..Default::default() },
    )
    .await;
    let ws_key = app.create_key(&a.workspace_id, None, &["chat", "read"]).await;
    let chat_only = app.create_key(&a.workspace_id, None, &["chat"]).await;

    // No credential, a bad one: 401 with a Bearer challenge, before any JSON-RPC.
    let r = reqwest::Client::new().post(app.url("/mcp")).json(&json!({})).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers()["www-authenticate"], "Bearer");
    let r = reqwest::Client::new()
        .post(app.url("/mcp"))
        .bearer_auth("ef_not_a_key")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert_eq!(body(r).await["code"], "invalid_api_key");

    // A workspace key sees every active agent and, with `read`, every knowledge base.
    let mut rpc = Rpc::open(&app, &ws_key).await;
    assert_eq!(rpc.tools().await, ["chat_sam", "search_company_faq"]);
    let mut rpc_chat = Rpc::open(&app, &chat_only).await;
    assert_eq!(rpc_chat.tools().await, ["chat_sam"], "no `read`: no search tools");
    // A paused agent cannot be called either.
    let (_, r) = rpc
        .call("tools/call", json!({"name": "chat_paused", "arguments": {"message": "hi"}}))
        .await;
    assert_eq!(r["result"]["isError"], true, "{r}");
    assert!(r["result"]["content"][0]["text"].as_str().unwrap().contains("paused"), "{r}");

    // A chat call answers with structured content.
    fake.push(Reply::text("Hello from Sam"));
    let (_, r) =
        rpc.call("tools/call", json!({"name": "chat_sam", "arguments": {"message": "hi"}})).await;
    assert_eq!(r["result"]["structuredContent"]["answer"], "Hello from Sam", "{r}");
    assert_eq!(r["result"]["structuredContent"]["status"], "completed", "{r}");
    // Bad arguments: a conversation id that is not one, an unknown argument, a bad top_k.
    for args in [
        json!({"name": "chat_sam", "arguments": {"message": "hi", "conversation_id": "nope"}}),
        json!({"name": "chat_sam", "arguments": {"message": "hi", "extra": 1}}),
        json!({"name": "search_company_faq", "arguments": {"query": "x", "top_k": 500}}),
        json!({"name": "search_company_faq", "arguments": {"query": 7}}),
    ] {
        let (status, r) = rpc.call("tools/call", args.clone()).await;
        assert!(status < 500, "{args}: {status}");
        assert_eq!(r["error"]["code"], -32602, "{args}: {r}");
    }
    // A malformed JSON-RPC message is refused, never a server error.
    for raw in ["{not json", r#"{"jsonrpc":"2.0","id":9}"#, "[]"] {
        let r = reqwest::Client::new()
            .post(app.url("/mcp"))
            .bearer_auth(&ws_key)
            .header("accept", "application/json, text/event-stream")
            .header("content-type", "application/json")
            .header("mcp-session-id", rpc.session.clone().unwrap())
            .body(raw)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        assert!(status.is_client_error() || status.is_success(), "{raw}: {status} {text}");
        assert!(!status.is_server_error(), "{raw}: {status} {text}");
        let reply = last_message(&text);
        assert!(reply["error"]["code"].is_i64(), "{raw}: a JSON-RPC error: {status} {text}");
    }

    // Another workspace sees none of A's agents and knowledge bases, and cannot call them.
    let b = app.signed_up("mcp-b@example.com").await;
    let b_key = app.create_key(&b.workspace_id, None, &["chat", "read"]).await;
    let mut rpc_b = Rpc::open(&app, &b_key).await;
    assert!(rpc_b.tools().await.is_empty());
    for name in ["chat_sam", "search_company_faq"] {
        let (_, r) = rpc_b
            .call(
                "tools/call",
                json!({"name": name, "arguments": {"message": "hi", "query": "holiday"}}),
            )
            .await;
        assert_eq!(r["error"]["code"], -32602, "{name}: {r}");
    }
    // Not even with A's session id: every request acts as the key that sends it.
    rpc_b.session = rpc.session.clone();
    assert!(rpc_b.tools().await.is_empty());
    // An agent key of A sees its own agent only.
    let agent_key = app.create_key(&a.workspace_id, Some(&sam), &["chat"]).await;
    let mut rpc_agent = Rpc::open(&app, &agent_key).await;
    assert_eq!(rpc_agent.tools().await, ["chat_sam"]);
    assert_eq!(fake.requests().len(), 1, "no refused call reached the model");
}

#[tokio::test]
async fn cancelling_a_chat_call_cancels_its_run() {
    let fake = FakeLlm::start().await;
    let app = start(&fake).await;
    let a = app.signed_up("mcp-cancel@example.com").await;
    app.create_agent(&a.workspace_id, "Slow", "slow", AgentSpec::default()).await;
    let key = app.create_key(&a.workspace_id, None, &["chat", "read"]).await;
    let mut rpc = Rpc::open(&app, &key).await;

    // The model never answers; the client gives up on the call and says so.
    fake.push(Reply::hang());
    let call = reqwest::Client::new()
        .post(app.url("/mcp"))
        .bearer_auth(&key)
        .header("accept", "application/json, text/event-stream")
        .header("mcp-protocol-version", "2025-06-18")
        .header("mcp-session-id", rpc.session.clone().unwrap())
        .json(&json!({"jsonrpc": "2.0", "id": 77, "method": "tools/call",
            "params": {"name": "chat_slow", "arguments": {"message": "take your time"}}}))
        .send();
    let pending = tokio::spawn(call);
    for _ in 0..200 {
        if fake.request_count() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(fake.request_count(), 1, "the run asked the model");
    let runs_url = app.url("/api/v1/runs");
    let runs = || {
        let (url, key) = (runs_url.clone(), key.clone());
        async move {
            let r = reqwest::Client::new().get(url).bearer_auth(&key).send().await.unwrap();
            assert_eq!(r.status(), 200);
            body(r).await["data"].as_array().cloned().unwrap_or_default()
        }
    };
    let before = runs().await;
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(before[0]["status"], "running", "{before:?}");

    let r = rpc
        .post(json!({"jsonrpc": "2.0", "method": "notifications/cancelled",
            "params": {"requestId": 77, "reason": "the user pressed stop"}}))
        .await;
    assert!(r.status().is_success(), "{}", r.status());
    let mut status = Value::Null;
    for _ in 0..200 {
        status = runs().await[0]["status"].clone();
        if status != "running" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert_eq!(status, "cancelled", "the run stopped with the call");
    pending.abort();
}
