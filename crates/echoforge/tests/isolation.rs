//! The cross-workspace probe, generated from the OpenAPI document: workspace A is seeded with
//! one of everything; then for every documented operation on a path with an id, workspace B
//! (its owner's token, and a key with every permission) calls it with A's ids. Every answer
//! must be 404 — unless the same request with a made-up id answers the same (input checked
//! before any lookup: nothing about A can show) — and A must be exactly as before.
//!
//! New routes are probed as soon as they are in the document. A route whose path parameter
//! has no id of A here fails the test: add A's id for it to `ids_of_a` (and seed it).

use std::collections::BTreeMap;

use fakellm::{FakeLlm, Reply};
use serde_json::{Value, json};
use testkit::{AgentSpec, Options, Session, TestApp, spawn_app_with};

/// Paths probed by other means, with the reason.
const NOT_PROBED: [(&str, &str); 4] = [
    ("/api/v1/invites/", "the emailed token is itself the credential to join (tests in api.rs)"),
    ("/api/v1/admin/", "platform operators act on every workspace by design (tests in agents.rs)"),
    ("/api/v1/widget/", "public ids, reached by any visitor by design (tests in widget.rs)"),
    ("/api/internal/", "the service secret is the platform's own runtime, not a workspace"),
];

/// Path parameters that name something every workspace shares, with the reason.
const GLOBAL_PARAMS: [(&str, &str); 1] =
    [("{provider}", "integration providers are catalog data, the same for every workspace")];

async fn json_of(r: reqwest::Response) -> Value {
    let status = r.status();
    r.json().await.unwrap_or_else(|e| panic!("a JSON body ({status}): {e}"))
}

/// A's state as its owner sees it, for the before/after comparison.
async fn snapshot(app: &TestApp, a: &Session, ids: &BTreeMap<&str, String>) -> Value {
    let t = Some(a.access_token.as_str());
    let mut out = serde_json::Map::new();
    let mut paths = vec![
        "/api/v1/workspace".to_owned(),
        "/api/v1/workspace/members".to_owned(),
        "/api/v1/workspace/invites".to_owned(),
        "/api/v1/workspace/model-provider".to_owned(),
        "/api/v1/api-keys".to_owned(),
        "/api/v1/agents".to_owned(),
        "/api/v1/knowledge-bases".to_owned(),
        "/api/v1/conversations".to_owned(),
        "/api/v1/runs".to_owned(),
        "/api/v1/templates".to_owned(),
        "/api/v1/integrations".to_owned(),
        "/api/v1/mcp-servers".to_owned(),
    ];
    paths.push(format!("/api/v1/agents/{}/integrations", ids["agent"]));
    paths.push(format!("/api/v1/agents/{}/revisions", ids["agent"]));
    paths.push(format!("/api/v1/agents/{}/keys", ids["agent"]));
    paths.push(format!("/api/v1/knowledge-bases/{}/documents", ids["kb"]));
    paths.push(format!("/api/v1/onboarding/{}", ids["onboarding"]));
    for c in ["conversation", "paused_conversation"] {
        paths.push(format!("/api/v1/conversations/{}", ids[c]));
    }
    for p in paths {
        let r = app.get(&p, t).await;
        out.insert(p, json!({"status": r.status().as_u16(), "body": r.json::<Value>().await.ok()}));
    }
    #[allow(clippy::disallowed_methods)] // test: reading A's handoffs straight from the store
    let scope = store::TenantScope::assume(domain::WorkspaceId::parse(&a.workspace_id).unwrap());
    let handoffs = app.app.store().list_handoffs(&scope, None, None, None).await.unwrap();
    out.insert("handoffs".into(), serde_json::to_value(&handoffs.data).unwrap());
    Value::Object(out)
}

/// Seeds A with one of each resource; returns A's ids by kind.
async fn seed_a(app: &TestApp, fake: &FakeLlm, a: &Session) -> BTreeMap<&'static str, String> {
    let t = Some(a.access_token.as_str());
    let mut ids = BTreeMap::new();
    // The wizard first: the plan's agent limit is checked when it starts.
    let onboarding =
        json_of(app.post("/api/v1/onboarding", t, json!({"template": "generic-chat"})).await).await;
    ids.insert(
        "onboarding",
        onboarding["id"].as_str().unwrap_or_else(|| panic!("{onboarding}")).to_owned(),
    );
    let step = onboarding["current_step"].as_str().or(onboarding["step"]["id"].as_str());
    ids.insert("step", step.unwrap_or_else(|| panic!("{onboarding}")).to_owned());
    let kb = json_of(app.post("/api/v1/knowledge-bases", t, json!({"name": "A's handbook"})).await)
        .await;
    ids.insert("kb", kb["id"].as_str().unwrap().to_owned());
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(b"Parcels are kept at the front desk.".to_vec())
            .file_name("parcels.txt")
            .mime_str("text/plain")
            .unwrap(),
    );
    let docs = app
        .client
        .post(app.url(&format!("/api/v1/knowledge-bases/{}/documents", ids["kb"])))
        .bearer_auth(&a.access_token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    let docs = json_of(docs).await;
    let doc = docs["data"][0]["id"].as_str().or(docs["documents"][0]["id"].as_str());
    let doc = doc.unwrap_or_else(|| panic!("{docs}")).to_owned();
    // Settled before the snapshot (ingestion would change A's figures on its own).
    for _ in 0..200 {
        let path = format!("/api/v1/knowledge-bases/{}/documents/{doc}", ids["kb"]);
        let d = json_of(app.get(&path, t).await).await;
        if d["status"] == "indexed" || d["status"] == "failed" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    ids.insert("doc", doc);
    let agent = json_of(
        app.post(
            "/api/v1/agents",
            t,
            json!({"display_name": "Ada", "template": "generic-chat",
            "answers": {"purpose": "Answer questions"}}),
        )
        .await,
    )
    .await;
    let agent = agent["id"].as_str().unwrap_or_else(|| panic!("{agent}")).to_owned();
    ids.insert("agent", agent.clone());
    // Agents that escalate (one asks first), straight in the store.
    let escalates = AgentSpec { capabilities: vec!["escalation".into()], ..AgentSpec::default() };
    let helper = app.create_agent(&a.workspace_id, "Helper", "helper", escalates).await;
    let careful = AgentSpec {
        capabilities: vec!["escalation".into()],
        config: Some(json!({"requires_confirmation": ["escalate_to_human"]})),
        ..AgentSpec::default()
    };
    let careful = app.create_agent(&a.workspace_id, "Careful", "careful", careful).await;
    // A second revision, and a workspace template made from the agent.
    let patched = app
        .patch(&format!("/api/v1/agents/{agent}"), t, json!({"version": 1, "tagline": "Helps"}))
        .await;
    assert_eq!(patched.status(), 200, "{}", patched.text().await.unwrap());
    let tpl = app
        .post(
            &format!("/api/v1/agents/{agent}/save-as-template"),
            t,
            json!({"slug": "ada-template"}),
        )
        .await;
    assert_eq!(tpl.status(), 201, "{}", tpl.text().await.unwrap());
    ids.insert("template", "ada-template".into());
    // A conversation with a run that escalated (a handoff), and one paused on an action.
    fake.push(Reply::tool_call("escalate_to_human", r#"{"reason":"refund"}"#));
    fake.push(Reply::text("A person will help you."));
    let chat = json_of(
        app.post(&format!("/api/v1/agents/{helper}/chat"), t, json!({"message": "A human please"}))
            .await,
    )
    .await;
    ids.insert("conversation", chat["conversation_id"].as_str().unwrap().to_owned());
    ids.insert("run", chat["run_id"].as_str().unwrap().to_owned());
    fake.push(Reply::tool_call("escalate_to_human", r#"{"reason":"refund"}"#));
    let paused = json_of(
        app.post(&format!("/api/v1/agents/{careful}/chat"), t, json!({"message": "Refund"})).await,
    )
    .await;
    assert_eq!(paused["status"], "awaiting_action", "{paused}");
    ids.insert("paused_conversation", paused["conversation_id"].as_str().unwrap().to_owned());
    ids.insert("action", paused["pending_actions"][0]["id"].as_str().unwrap().to_owned());
    #[allow(clippy::disallowed_methods)] // test: reading A's handoff id straight from the store
    let scope = store::TenantScope::assume(domain::WorkspaceId::parse(&a.workspace_id).unwrap());
    let handoffs = app.app.store().list_handoffs(&scope, None, None, None).await.unwrap();
    ids.insert("handoff", handoffs.data.first().expect("the escalation made a handoff").id.clone());
    // A connected integration (a signed webhook), used by the agent.
    let connection = app
        .post(
            "/api/v1/integrations/webhook/credentials",
            t,
            json!({"fields": {"url": "https://hooks.example.com/echoforge", "signing_secret": "whsec_a"}}),
        )
        .await;
    assert_eq!(connection.status(), 201);
    let connection = json_of(connection).await["id"].as_str().unwrap().to_owned();
    let link = app
        .put(
            &format!("/api/v1/agents/{agent}/integrations/{connection}"),
            Some(&a.access_token),
            json!({"purpose": "tell A's systems"}),
        )
        .await;
    assert_eq!(link.status(), 200);
    ids.insert("connection", connection);
    // An MCP server (registered though it cannot be reached), linked to the agent.
    let server = app
        .post(
            "/api/v1/mcp-servers",
            t,
            json!({"name": "A's tools", "transport": "http", "url": "http://mcp.invalid/mcp"}),
        )
        .await;
    assert_eq!(server.status(), 201);
    let server = json_of(server).await["id"].as_str().unwrap().to_owned();
    let link = app
        .put(&format!("/api/v1/agents/{agent}/mcp-servers/{server}"), t, json!({"tools": []}))
        .await;
    assert_eq!(link.status(), 200);
    ids.insert("mcp_server", server);
    // Keys, an invite, an onboarding session.
    let key = json_of(app.post("/api/v1/api-keys", t, json!({"name": "A's key"})).await).await;
    ids.insert("key", key["id"].as_str().unwrap().to_owned());
    let agent_key = json_of(
        app.post(&format!("/api/v1/agents/{agent}/keys"), t, json!({"name": "A's agent key"}))
            .await,
    )
    .await;
    ids.insert("agent_key", agent_key["id"].as_str().unwrap().to_owned());
    let invite = json_of(
        app.post(
            "/api/v1/workspace/invites",
            t,
            json!({"email": "guest@example.com", "role": "member"}),
        )
        .await,
    )
    .await;
    ids.insert("invite", invite["id"].as_str().unwrap().to_owned());
    ids.insert("user", a.user_id.clone());
    ids
}

/// A's id for a path parameter, by its name (and, for a bare `{id}`, the collection before it).
fn id_for(ids: &BTreeMap<&str, String>, path: &str, param: &str) -> Option<String> {
    let kind = match param {
        "id" => {
            let before = path.split("/{id}").next()?.rsplit('/').next()?;
            match before {
                "agents" => "agent",
                "onboarding" => "onboarding",
                "integrations" => "connection",
                _ => return None,
            }
        }
        "agent" => "agent",
        "kb_id" => "kb",
        "doc_id" => "doc",
        "conversation_id" | "conversation" => "conversation",
        "action_id" => "action",
        "run_id" => "run",
        "key_id" if path.starts_with("/api/v1/agents/") => "agent_key",
        "key_id" => "key",
        "invite_id" => "invite",
        "user_id" => "user",
        "slug" => "template",
        "step_id" => "step",
        "handoff_id" | "handoff" => "handoff",
        "connection_id" => "connection",
        "server_id" => "mcp_server",
        "rev" => return Some("1".into()),
        _ => return None,
    };
    // A pending action lives in its own (paused) conversation.
    if param == "conversation_id" && path.contains("/actions/") {
        return ids.get("paused_conversation").cloned();
    }
    ids.get(kind).cloned()
}

/// A made-up id of the same kind (same prefix), for the comparison.
fn made_up(id: &str) -> String {
    match id.split_once('_') {
        Some((prefix, _)) if !id.contains('-') => {
            format!("{prefix}_{}", uuid::Uuid::now_v7().simple())
        }
        _ if id.chars().all(|c| c.is_ascii_digit()) => "999".into(),
        _ => format!("{id}-made-up"),
    }
}

/// A valid body for the operations that take one, so the probe gets past validation.
fn body_for(method: &str, path: &str) -> Option<Value> {
    let b = match (method, path) {
        ("patch", "/api/v1/agents/{id}") => json!({"version": 2, "tagline": "B was here"}),
        ("post", "/api/v1/agents/{agent}/chat") => json!({"message": "hello"}),
        ("put", "/api/v1/agents/{id}/integrations/{connection_id}") => json!({"purpose": "B's"}),
        ("put", "/api/v1/agents/{id}/mcp-servers/{server_id}") => json!({"tools": []}),
        ("post", "/api/v1/agents/{id}/keys") => json!({"name": "B's", "permissions": ["chat"]}),
        ("post", "/api/v1/agents/{id}/save-as-template") => json!({"slug": "b-copy"}),
        ("post", p) if p.ends_with("/actions/{action_id}") => json!({"approve": true}),
        ("patch", "/api/v1/knowledge-bases/{kb_id}") => json!({"name": "B was here"}),
        ("post", "/api/v1/knowledge-bases/{kb_id}/documents") => {
            json!({"urls": ["https://example.com/"]})
        }
        ("post", p) if p.ends_with("/search") => json!({"query": "parcels"}),
        ("put", "/api/v1/onboarding/{id}/steps/{step_id}") => json!({}),
        ("patch", "/api/v1/templates/{slug}") => json!({"is_active": false}),
        ("patch", "/api/v1/workspace/members/{user_id}") => json!({"role": "member"}),
        ("post" | "put" | "patch", _) => json!({}),
        _ => return None,
    };
    Some(b)
}

async fn call(
    app: &TestApp,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, String) {
    let m = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
    let mut req = app.client.request(m, app.url(path)).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(b);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workspace_b_finds_none_of_workspace_a_resources_on_any_route() {
    let fake = FakeLlm::start().await;
    let app =
        spawn_app_with(Options { llm_base_url: Some(fake.base_url.clone()), ..Options::default() })
            .await;
    let a = app.signed_up("probe-a@example.com").await;
    let b = app.signed_up("probe-b@example.com").await;
    let ids = seed_a(&app, &fake, &a).await;
    let b_key = json_of(
        app.post("/api/v1/api-keys", Some(&b.access_token), json!({"name": "B all", "permissions": ["read", "write", "chat", "upload", "config", "admin"]}))
            .await,
    )
    .await["secret"]
    .as_str()
    .unwrap()
    .to_owned();
    let before = snapshot(&app, &a, &ids).await;

    let doc = json_of(app.get("/api/v1/openapi.json", None).await).await;
    let mut probes = 0;
    let mut not_found = 0;
    let mut same_as_made_up = 0;
    let mut failures = Vec::new();
    let mut unmapped = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        if !path.contains('{')
            || NOT_PROBED.iter().any(|(p, _)| path.starts_with(p))
            || GLOBAL_PARAMS.iter().any(|(p, _)| path.contains(p))
        {
            continue;
        }
        // {param} → A's id (and a made-up one of the same kind).
        let params: Vec<&str> =
            path.split('{').skip(1).filter_map(|s| s.split('}').next()).collect();
        let mut real = path.clone();
        let mut fake_path = path.clone();
        let mut missing = false;
        for p in &params {
            match id_for(&ids, path, p) {
                Some(id) => {
                    real = real.replace(&format!("{{{p}}}"), &id);
                    fake_path = fake_path.replace(&format!("{{{p}}}"), &made_up(&id));
                }
                None => missing = true,
            }
        }
        if missing {
            unmapped.push(path.clone());
            continue;
        }
        for method in item.as_object().unwrap().keys() {
            let body = body_for(method, path);
            // The probe means something only if the ids are real: A reads them.
            if method == "get" {
                let (status, text) = call(&app, &a.access_token, method, &real, None).await;
                assert_eq!(status, 200, "A itself cannot read {real}: {text}");
            }
            for (who, token) in
                [("B's owner", b.access_token.as_str()), ("B's key", b_key.as_str())]
            {
                probes += 1;
                let (status, text) = call(&app, token, method, &real, body.as_ref()).await;
                if status == 404 {
                    not_found += 1;
                    continue;
                }
                // Refused before any lookup? Then a made-up id gets the very same answer.
                let (fake_status, fake_text) =
                    call(&app, token, method, &fake_path, body.as_ref()).await;
                let leaks =
                    |t: &str| ids.values().any(|id| id.len() > 3 && t.contains(id.as_str()));
                if status == fake_status && status != 200 && status < 500 && !leaks(&text) {
                    same_as_made_up += 1;
                    println!(
                        "  {} {path} as {who}: {status}, as for a made-up id",
                        method.to_uppercase()
                    );
                } else {
                    failures.push(format!(
                        "{} {real} as {who}: {status} {text} (a made-up id: {fake_status} {fake_text})",
                        method.to_uppercase()
                    ));
                }
            }
        }
    }
    let after = snapshot(&app, &a, &ids).await;
    println!(
        "cross-workspace probe: {probes} probes, {not_found} 404, {same_as_made_up} refused as for a made-up id, {} leaks",
        failures.len()
    );
    assert!(
        unmapped.is_empty(),
        "no id of A for these paths; add it to `id_for`/`seed_a`: {unmapped:#?}"
    );
    assert!(failures.is_empty(), "B reached A's resources:\n{}", failures.join("\n"));
    assert!(probes >= 60, "only {probes} probes: is the document complete?");
    if before != after {
        let (b, a) = (before.as_object().unwrap(), after.as_object().unwrap());
        let changed: Vec<&String> = b.keys().filter(|k| b[*k] != a[*k]).collect();
        panic!("A changed under B's probes: {changed:?}\nbefore: {before}\nafter: {after}");
    }
}
