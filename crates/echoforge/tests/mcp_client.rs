//! Tools from MCP servers: `@modelcontextprotocol/server-everything` (npm, installed in
//! tests/servers by scripts/test) over stdio and over streamable HTTP, registered by a
//! workspace, its tools given to an agent, called by the scripted model; a killed stdio server
//! is started again on the next call; a server that is down answers the model with an error;
//! long and slow results are cut and timed out; a server on the official `mcp` Python SDK whose
//! tool list changes is listed again when it says so.

use std::sync::Arc;
use std::time::Duration;

use fakellm::{FakeLlm, Reply};
use serde_json::{Value, json};
use testkit::{AgentSpec, Options, Session, TestApp, spawn_app_with};

const EVERYTHING: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/servers/node_modules/@modelcontextprotocol/server-everything/dist/index.js"
);

async fn body(resp: reqwest::Response) -> Value {
    resp.json().await.expect("a JSON body")
}

async fn start(fake: &FakeLlm) -> TestApp {
    start_tweaked(fake, |_| {}).await
}

async fn start_tweaked(
    fake: &FakeLlm,
    more: impl Fn(&mut echoforge::config::Settings) + Send + Sync + 'static,
) -> TestApp {
    assert!(
        std::path::Path::new(EVERYTHING).exists(),
        "server-everything is missing: run `npm ci` in tests/servers (scripts/test does)"
    );
    spawn_app_with(Options {
        llm_base_url: Some(fake.base_url.clone()),
        tweak: Some(Arc::new(move |s: &mut echoforge::config::Settings| {
            s.mcp.commands.insert(
                "everything".into(),
                echoforge::config::McpCommandSettings {
                    command: "node".into(),
                    args: vec![EVERYTHING.into(), "stdio".into()],
                },
            );
            s.mcp.allow_private_hosts = true;
            more(s);
        })),
        ..Options::default()
    })
    .await
}

/// Asks the agent; the answer's JSON.
async fn ask(app: &TestApp, s: &Session, agent: &str, message: &str) -> Value {
    let r = app
        .post(
            &format!("/api/v1/agents/{agent}/chat"),
            Some(&s.access_token),
            json!({"message": message}),
        )
        .await;
    assert_eq!(r.status(), 200);
    body(r).await
}

/// Registers an MCP server for the workspace of `t`.
async fn register(app: &TestApp, t: Option<&str>, server: Value) -> reqwest::Response {
    app.post("/api/v1/mcp-servers", t, server).await
}

/// Lets `agent` call `tools` (a JSON array) of server `id`.
async fn pick(
    app: &TestApp,
    t: Option<&str>,
    agent: &str,
    id: &str,
    tools: Value,
) -> reqwest::Response {
    app.put(&format!("/api/v1/agents/{agent}/mcp-servers/{id}"), t, json!({ "tools": tools })).await
}

/// The text of the tool results the model was sent in request `i`.
fn tool_results(fake: &FakeLlm, i: usize) -> String {
    fake.requests()[i]
        .messages()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

fn names(server: &Value) -> Vec<String> {
    server["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn a_stdio_server_s_tools_answer_the_agent_and_a_killed_server_restarts() {
    let fake = FakeLlm::start().await;
    let app = start(&fake).await;
    let s = app.signed_up("mcp-stdio@example.com").await;
    let agent = app.create_agent(&s.workspace_id, "Tess", "tess", AgentSpec::default()).await;
    let t = Some(s.access_token.as_str());

    // Only approved commands run.
    let r =
        register(&app, t, json!({"name": "Shell", "transport": "stdio", "command": "bash"})).await;
    assert_eq!(r.status(), 422);
    assert_eq!(body(r).await["errors"][0]["path"], "/command");

    let r = register(
        &app,
        t,
        json!({"name": "Everything", "transport": "stdio", "command": "everything",
            "env": {"EXAMPLE_TOKEN": "sealed-value"}}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let server = body(r).await;
    assert_eq!(server["status"], "ok", "{server}");
    let tools = names(&server);
    assert!(
        tools.contains(&"echo".to_owned()) && tools.contains(&"get-sum".to_owned()),
        "{tools:?}"
    );
    assert_eq!(server["secret_names"], json!(["EXAMPLE_TOKEN"]));
    assert!(!server.to_string().contains("sealed-value"), "secrets are never shown");
    let id = server["id"].as_str().unwrap().to_owned();

    // The agent may call two of its tools, no more; unknown names are refused.
    let r = pick(&app, t, &agent, &id, json!(["nope"])).await;
    assert_eq!(r.status(), 422);
    let r = pick(&app, t, &agent, &id, json!(["echo", "get-sum"])).await;
    assert_eq!(r.status(), 200);

    fake.push(Reply::tool_call("mcp_echo", r#"{"message":"hello over stdio"}"#));
    fake.push(Reply::text("It echoed."));
    let a = ask(&app, &s, &agent, "Echo something").await;
    assert_eq!(a["message"], "It echoed.", "{a}");
    let offered: Vec<String> = fake.requests()[0]
        .tools()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(
        offered.contains(&"mcp_echo".to_owned()) && offered.contains(&"mcp_get_sum".to_owned()),
        "{offered:?}"
    );
    assert!(!offered.iter().any(|n| n.contains("toggle")), "only the picked tools: {offered:?}");
    assert!(
        tool_results(&fake, 1).contains("Echo: hello over stdio"),
        "{}",
        tool_results(&fake, 1)
    );

    // Kill the process: the next call starts it again.
    let before = body(app.get(&format!("/api/v1/mcp-servers/{id}"), t).await).await;
    assert_eq!(before["running"], true, "{before}");
    let pid = before["pid"].as_u64().expect("a pid") as i32;
    let killed =
        std::process::Command::new("kill").args(["-9", &pid.to_string()]).status().unwrap();
    assert!(killed.success());
    for _ in 0..100 {
        if body(app.get(&format!("/api/v1/mcp-servers/{id}"), t).await).await["running"] == false {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    fake.push(Reply::tool_call("mcp_get_sum", r#"{"a":2,"b":3}"#));
    fake.push(Reply::text("Five."));
    let a = ask(&app, &s, &agent, "Add 2 and 3").await;
    assert_eq!(a["message"], "Five.", "{a}");
    assert!(
        tool_results(&fake, 3).contains("The sum of 2 and 3 is 5."),
        "{}",
        tool_results(&fake, 3)
    );
    let after = body(app.get(&format!("/api/v1/mcp-servers/{id}"), t).await).await;
    assert_eq!(after["running"], true, "{after}");
    assert_ne!(after["pid"].as_u64().unwrap() as i32, pid, "a new process");
    assert_eq!(after["restarts"], 1, "{after}");

    // Removing the server takes its tools from the agent and stops the process.
    assert_eq!(app.delete(&format!("/api/v1/mcp-servers/{id}"), t).await.status(), 204);
    fake.push(Reply::text("No tools now."));
    ask(&app, &s, &agent, "Anything?").await;
    assert!(fake.requests()[4].tools().iter().all(|t| !t.to_string().contains("mcp_")));
    let new_pid = after["pid"].as_u64().unwrap().to_string();
    let mut gone = false;
    for _ in 0..100 {
        let alive =
            std::process::Command::new("kill").args(["-0", &new_pid]).status().unwrap().success();
        if !alive {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(gone, "the server's process stopped");
}

#[tokio::test]
async fn a_streamable_http_server_serves_tools_and_a_down_one_answers_with_an_error() {
    let fake = FakeLlm::start().await;
    let app = start(&fake).await;
    let s = app.signed_up("mcp-http@example.com").await;
    let agent = app.create_agent(&s.workspace_id, "Hal", "hal", AgentSpec::default()).await;
    let t = Some(s.access_token.as_str());
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut child = tokio::process::Command::new("node")
        .args([EVERYTHING, "streamableHttp"])
        .env("PORT", port.to_string())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs");
    let mut up = false;
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(up, "server-everything listens on {port}");

    let r = register(&app, t, json!({"name": "Everything over HTTP", "transport": "http",
            "url": format!("http://127.0.0.1:{port}/mcp"), "headers": {"Authorization": "Bearer not-needed"}})).await;
    assert_eq!(r.status(), 201);
    let server = body(r).await;
    assert_eq!(server["status"], "ok", "{server}");
    assert!(names(&server).contains(&"echo".to_owned()), "{server}");
    let id = server["id"].as_str().unwrap().to_owned();
    let r = pick(&app, t, &agent, &id, json!(["echo"])).await;
    assert_eq!(r.status(), 200);

    // The MCP servers page shows the server, its tools and who may use which.
    let page = |cookie: String| {
        let url = app.url("/mcp-servers");
        async move {
            let r = reqwest::Client::new().get(url).header("cookie", cookie).send().await.unwrap();
            assert_eq!(r.status(), 200);
            r.text().await.unwrap()
        }
    };
    let html = page(app.web_login(&s).await).await;
    assert!(html.contains("Everything over HTTP") && html.contains("Answering"), "{html}");
    assert!(html.contains(&format!("data-mcp-server=\"{id}\"")), "{html}");
    assert!(html.contains("sealed: Authorization"), "the sealed header's name is shown");
    assert!(!html.contains("not-needed"), "never its value");
    let member = html
        .split(&format!("data-mcp-member=\"{agent}\""))
        .nth(1)
        .and_then(|rest| rest.split("</form>").next())
        .expect("a form for the team member");
    assert!(member.contains(r#"value="echo" checked"#), "{member}");
    assert!(!member.contains(r#"value="get-sum" checked"#), "{member}");
    let other = app.signed_up("mcp-http-page@example.com").await;
    let html = page(app.web_login(&other).await).await;
    assert!(!html.contains("Everything over HTTP") && html.contains("No MCP servers yet"));

    fake.push(Reply::tool_call("mcp_echo", r#"{"message":"hello over http"}"#));
    fake.push(Reply::text("Echoed over HTTP."));
    assert_eq!(ask(&app, &s, &agent, "Echo").await["message"], "Echoed over HTTP.");
    assert!(tool_results(&fake, 1).contains("Echo: hello over http"), "{}", tool_results(&fake, 1));

    // The server goes away: the model gets a clear tool error, the run still completes.
    child.kill().await.unwrap();
    let _ = child.wait().await;
    fake.push(Reply::tool_call("mcp_echo", r#"{"message":"anyone?"}"#));
    fake.push(Reply::text("The tool is down."));
    let a = ask(&app, &s, &agent, "Echo again").await;
    assert_eq!(a["message"], "The tool is down.", "{a}");
    assert_eq!(a["status"], "completed", "{a}");
    let results = tool_results(&fake, 3);
    assert!(results.contains("not available"), "{results}");

    // A server that cannot be reached is registered with the reason; a blocked address is not.
    let r = register(
        &app,
        t,
        json!({"name": "Nobody", "transport": "http",
            "url": format!("http://127.0.0.1:{port}/mcp")}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let down = body(r).await;
    assert_eq!(down["status"], "error", "{down}");
    assert!(down["last_error"].as_str().is_some_and(|e| !e.is_empty()), "{down}");
    let r = register(
        &app,
        t,
        json!({"name": "Metadata", "transport": "http",
            "url": "http://169.254.169.254/mcp"}),
    )
    .await;
    assert_eq!(r.status(), 422, "metadata addresses stay blocked");
    // Another workspace sees none of it.
    let b = app.signed_up("mcp-http-b@example.com").await;
    let r = app.get(&format!("/api/v1/mcp-servers/{id}"), Some(&b.access_token)).await;
    assert_eq!(r.status(), 404);
    let list = body(app.get("/api/v1/mcp-servers", Some(&b.access_token)).await).await;
    assert_eq!(list["data"], json!([]));
}

const CHANGING: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/clients/mcp_changing_server.py");

#[tokio::test]
async fn results_are_capped_slow_calls_time_out_and_a_changed_tool_list_is_listed_again() {
    let fake = FakeLlm::start().await;
    let app = start_tweaked(&fake, |s| {
        s.mcp.max_result_bytes = 1024;
        s.mcp.call_timeout_secs = 2;
        s.mcp.max_stdio_servers = 2;
        s.mcp.commands.insert(
            "changing".into(),
            echoforge::config::McpCommandSettings {
                command: "python3".into(),
                args: vec![CHANGING.into()],
            },
        );
    })
    .await;
    let s = app.signed_up("mcp-limits@example.com").await;
    let agent = app.create_agent(&s.workspace_id, "Lim", "lim", AgentSpec::default()).await;
    let t = Some(s.access_token.as_str());
    let r = register(
        &app,
        t,
        json!({"name": "Everything", "transport": "stdio", "command": "everything"}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let everything = body(r).await;
    let id = everything["id"].as_str().unwrap().to_owned();
    let r = pick(&app, t, &agent, &id, json!(["echo", "trigger-long-running-operation"])).await;
    assert_eq!(r.status(), 200, "{}", body(r).await);

    // A result longer than the cap reaches the model cut, with a note saying so.
    let long = "x".repeat(3000);
    fake.push(Reply::tool_call("mcp_echo", json!({"message": long}).to_string()));
    fake.push(Reply::text("That was long."));
    let a = ask(&app, &s, &agent, "Echo a lot").await;
    assert_eq!(a["message"], "That was long.", "{a}");
    let results = tool_results(&fake, 1);
    assert!(results.contains("[truncated: the result was 3006 bytes"), "{results}");
    assert!(!results.contains(&long), "the whole result never reaches the model");

    // A call slower than the timeout is a tool error for the model; the run completes.
    fake.push(Reply::tool_call(
        "mcp_trigger_long_running_operation",
        r#"{"duration": 20, "steps": 2}"#,
    ));
    fake.push(Reply::text("It took too long."));
    let started = std::time::Instant::now();
    let a = ask(&app, &s, &agent, "Run the long operation").await;
    assert_eq!(a["message"], "It took too long.", "{a}");
    assert_eq!(a["status"], "completed", "{a}");
    assert!(started.elapsed() < Duration::from_secs(15), "the timeout cut the call short");
    let results = tool_results(&fake, 3);
    assert!(results.contains("did not answer in"), "{results}");

    // A server whose tools change: `unlock` adds `reveal` and says so; it is listed again.
    let r =
        register(&app, t, json!({"name": "Changing", "transport": "stdio", "command": "changing"}))
            .await;
    assert_eq!(r.status(), 201);
    let changing = body(r).await;
    assert_eq!(names(&changing), ["unlock"], "{changing}");
    let cid = changing["id"].as_str().unwrap().to_owned();
    let r = pick(&app, t, &agent, &cid, json!(["reveal"])).await;
    assert_eq!(r.status(), 422, "not listed yet");
    let r = pick(&app, t, &agent, &cid, json!(["unlock"])).await;
    assert_eq!(r.status(), 200);
    // `unlock` is not marked read-only: the run asks first, and nothing is called before.
    fake.push(Reply::tool_call("mcp_unlock", "{}"));
    fake.push(Reply::text("Unlocked."));
    let paused = ask(&app, &s, &agent, "Unlock it").await;
    assert_eq!(paused["status"], "awaiting_action", "{paused}");
    let before = body(app.get(&format!("/api/v1/mcp-servers/{cid}"), t).await).await;
    assert_eq!(names(&before), ["unlock"], "not called before approval: {before}");
    let conv = paused["conversation_id"].as_str().unwrap();
    let action = paused["pending_actions"][0]["id"].as_str().unwrap();
    let done = app
        .post(
            &format!("/api/v1/conversations/{conv}/actions/{action}"),
            t,
            json!({"approve": true}),
        )
        .await;
    assert_eq!(done.status(), 200);
    assert_eq!(body(done).await["message"], "Unlocked.");
    assert!(
        tool_results(&fake, 5).contains("reveal is available now"),
        "{}",
        tool_results(&fake, 5)
    );
    let mut listed = Value::Null;
    for _ in 0..100 {
        listed = body(app.get(&format!("/api/v1/mcp-servers/{cid}"), t).await).await;
        if names(&listed).contains(&"reveal".to_owned()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut now = names(&listed);
    now.sort();
    assert_eq!(now, ["reveal", "unlock"], "listed again after list_changed: {listed}");
    let reveal =
        listed["tools"].as_array().unwrap().iter().find(|t| t["name"] == "reveal").unwrap();
    assert_eq!(reveal["read_only"], true, "{reveal}");
    let r = pick(&app, t, &agent, &cid, json!(["unlock", "reveal"])).await;
    assert_eq!(r.status(), 200);
    fake.push(Reply::tool_call("mcp_reveal", "{}"));
    fake.push(Reply::text("It is 42."));
    assert_eq!(ask(&app, &s, &agent, "What is the secret?").await["message"], "It is 42.");
    assert!(tool_results(&fake, 7).contains("The secret is 42."), "{}", tool_results(&fake, 7));

    // The operator's limit on stdio servers per workspace holds.
    let r = register(
        &app,
        t,
        json!({"name": "One more", "transport": "stdio", "command": "everything"}),
    )
    .await;
    assert_eq!(r.status(), 409);
    let refused = body(r).await;
    assert_eq!(refused["code"], "mcp_stdio_limit", "{refused}");
    assert!(refused["detail"].as_str().unwrap().contains("max_stdio_servers = 2"), "{refused}");
}
