//! Agents end to end: capabilities, templates, the onboarding wizard for every seeded template,
//! agent validation, revisions, optimistic concurrency, export/import, agent keys, plan limits
//! and workspace isolation — over HTTP against a real server.

use serde_json::{Map, Value, json};
use testkit::{Session, TestApp, spawn_app};

async fn body(resp: reqwest::Response) -> Value {
    resp.json().await.expect("a JSON body")
}

async fn expect(resp: reqwest::Response, status: u16) -> Value {
    let got = resp.status().as_u16();
    let text = resp.text().await.unwrap_or_default();
    assert_eq!(got, status, "unexpected status; body: {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

fn paths(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|a| a.iter().map(|e| e["path"].as_str().unwrap_or_default().to_owned()).collect())
        .unwrap_or_default()
}

/// A verified operator, signed in; its workspace is on the enterprise plan (no agent limit).
async fn operator(app: &TestApp, email: &str) -> Session {
    app.app.create_operator(email, "Correct1horse", "Operator").await.expect("operator created");
    app.login(email, "Correct1horse").await
}

async fn put(app: &TestApp, path: &str, token: &str, b: Value) -> reqwest::Response {
    app.client.put(app.url(path)).bearer_auth(token).json(&b).send().await.expect("request")
}

/// A valid sample for a text field with a pattern, by what the pattern looks like.
fn patterned(pattern: &str) -> &'static str {
    if pattern.contains("#[0-9A-Fa-f]") {
        "#336699"
    } else if pattern.contains(":[0-5]") {
        "09:30"
    } else if pattern.contains('/') {
        "acme/widgets"
    } else {
        "example.com"
    }
}

/// A valid value for a wizard field, derived from its definition alone.
fn fill(field: &Value) -> Value {
    let v = &field["validation"];
    let options: Vec<Value> = field["options"]
        .as_array()
        .map(|o| o.iter().map(|x| x["value"].clone()).collect())
        .unwrap_or_default();
    let min_len = v["min_length"].as_u64().unwrap_or(0) as usize;
    let max_len = v["max_length"].as_u64().unwrap_or(40) as usize;
    match field["type"].as_str().unwrap_or_default() {
        "text" | "textarea" | "richtext" | "crm_user_select" => match v["pattern"].as_str() {
            Some(p) => json!(patterned(p)),
            None => {
                let mut s = "Sample answer".to_owned();
                while s.len() < min_len {
                    s.push('x');
                }
                s.truncate(max_len.max(min_len).max(2));
                json!(s)
            }
        },
        "email" => json!("owner@example.com"),
        "url" => json!("https://example.com/page"),
        "url_list" => json!(["https://example.com/a"]),
        "phone" => json!("+1 555 123 4567"),
        "number" => {
            let min = v["min"].as_f64().unwrap_or(1.0);
            let max = v["max"].as_f64().unwrap_or(min + 10.0);
            json!(((min + max) / 2.0).floor().max(min))
        }
        "select" | "radio" => options.first().cloned().unwrap_or(Value::Null),
        "multi_select" => json!(options.into_iter().take(1).collect::<Vec<_>>()),
        "checkbox" => json!(true),
        "file_upload" | "file_upload_multi" | "image_upload" => {
            let ext = field["validation"]["formats"][0]
                .as_str()
                .map(str::to_owned)
                .or_else(|| {
                    field["accept"]
                        .as_str()
                        .and_then(|a| a.split(',').next())
                        .map(|e| e.trim().trim_start_matches('.').to_owned())
                })
                .unwrap_or_else(|| "png".into());
            let file =
                json!({"file_id": "file_1", "filename": format!("doc.{ext}"), "size_bytes": 1024});
            if field["type"] == "file_upload_multi" { json!([file]) } else { file }
        }
        "oauth_connect" => {
            json!({"provider": field["providers"][0].clone(), "connection_id": "conn_1"})
        }
        "api_key_input" => json!("sk-test-1234567890"),
        "webhook_config" => {
            json!({"url": "https://hooks.example.com/x", "secret": "0123456789abcdef0123"})
        }
        "field_mapper" => {
            let source = field["mapping"]["source_fields"][0].as_str().unwrap_or("name");
            let target = field["mapping"]["target_fields"][0].as_str().unwrap_or("Name");
            json!({source: target})
        }
        other => panic!("no filler for field type {other}"),
    }
}

/// Answers for every field of a hydrated step (hidden ones are dropped by the server, and
/// fields a given answer reveals are filled too), plus a knowledge-base choice.
fn fill_step(step: &Value, kb: Option<Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for section in step["sections"].as_array().expect("sections") {
        for f in section["fields"].as_array().expect("fields") {
            out.insert(f["name"].as_str().unwrap().to_owned(), fill(f));
        }
    }
    if step["knowledge_base"].is_object()
        && let Some(kb) = kb
    {
        out.insert("knowledge_base".into(), kb);
    }
    out
}

/// Walks a session to its end, answering each step from its hydrated definition.
async fn walk(app: &TestApp, token: &str, session: &str, kb: Option<Value>) -> Value {
    for _ in 0..10 {
        let s =
            expect(app.get(&format!("/api/v1/onboarding/{session}"), Some(token)).await, 200).await;
        let Some(step_id) = s["current_step"].as_str() else { return s };
        let values = fill_step(&s["step"], kb.clone());
        expect(
            put(
                app,
                &format!("/api/v1/onboarding/{session}/steps/{step_id}"),
                token,
                Value::Object(values),
            )
            .await,
            200,
        )
        .await;
    }
    panic!("the wizard did not end");
}

async fn start(app: &TestApp, token: &str, template: &str) -> String {
    let s = expect(
        app.post("/api/v1/onboarding", Some(token), json!({"template": template})).await,
        201,
    )
    .await;
    s["id"].as_str().unwrap().to_owned()
}

async fn create_generic(app: &TestApp, token: &str, name: &str) -> Value {
    expect(
        app.post(
            "/api/v1/agents",
            Some(token),
            json!({"display_name": name, "template": "generic-chat", "answers": {"purpose": "Answer questions"}}),
        )
        .await,
        201,
    )
    .await
}

#[tokio::test]
async fn every_seeded_template_onboards_end_to_end() {
    let app = spawn_app().await;
    let op = operator(&app, "op@example.com").await;
    let t = &op.access_token;
    let templates = expect(app.get("/api/v1/templates", Some(t)).await, 200).await;
    let slugs: Vec<String> = templates["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["slug"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(slugs.len(), 11, "the seeded templates: {slugs:?}");
    for slug in &slugs {
        let detail =
            expect(app.get(&format!("/api/v1/templates/{slug}"), Some(t)).await, 200).await;
        let block = &detail["document"]["onboarding_schema"]["knowledge_base"];
        let kb = block["allow_create_new"]
            .as_bool()
            .unwrap_or(false)
            .then(|| json!({"mode": "create_new", "name": format!("{slug} docs")}));
        let id = start(&app, t, slug).await;
        let done = walk(&app, t, &id, kb.clone()).await;
        assert_eq!(done["status"], "in_progress");
        let completed = done["completed_steps"].as_array().unwrap().len();
        assert_eq!(completed, done["steps"].as_array().unwrap().len(), "{slug}: every step saved");
        let out = expect(
            app.post(&format!("/api/v1/onboarding/{id}/complete"), Some(t), json!({})).await,
            201,
        )
        .await;
        let agent = &out["agent"];
        assert_eq!(agent["template"], slug.as_str());
        assert_eq!(agent["display_name"], "Sample answer", "{slug}: named from the answers");
        let prompt = agent["system_prompt"].as_str().unwrap();
        assert!(prompt.contains("Sample answer"), "{slug}: rendered prompt: {prompt}");
        assert!(!prompt.contains("{{"), "{slug}: never half-rendered");
        assert!(out["api_key"]["secret"].as_str().unwrap().starts_with("ef_"));
        assert_eq!(out["api_key"]["agent_id"], agent["id"]);
        assert_eq!(out["session"]["status"], "completed");
        assert_eq!(
            out["deferred_capabilities"],
            json!([]),
            "{slug}: the wizard asks for what is needed"
        );
        let kbs = agent["knowledge_base_ids"].as_array().unwrap().len();
        assert_eq!(kbs, usize::from(kb.is_some()), "{slug}: knowledge base created with the agent");
    }
    let agents = expect(app.get("/api/v1/agents", Some(t)).await, 200).await;
    assert_eq!(agents["data"].as_array().unwrap().len(), 11);
}

#[tokio::test]
async fn the_knowledge_base_block_is_enforced_and_existing_bases_must_be_ours() {
    let app = spawn_app().await;
    let s = app.signed_up("kb@example.com").await;
    let t = &s.access_token;
    let id = start(&app, t, "knowledge-assistant").await;
    let first = expect(app.get(&format!("/api/v1/onboarding/{id}"), Some(t)).await, 200).await;
    let basics = fill_step(&first["step"], None);
    expect(
        put(&app, &format!("/api/v1/onboarding/{id}/steps/basics"), t, Value::Object(basics)).await,
        200,
    )
    .await;
    let now = expect(app.get(&format!("/api/v1/onboarding/{id}"), Some(t)).await, 200).await;
    assert_eq!(now["current_step"], "knowledge");
    assert_eq!(now["step"]["knowledge_base"]["required"], true);
    let mut values = fill_step(&now["step"], None);
    values.insert("knowledge_base".into(), json!({"mode": "skip"}));
    let p = expect(
        put(
            &app,
            &format!("/api/v1/onboarding/{id}/steps/knowledge"),
            t,
            Value::Object(values.clone()),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(p["errors"][0]["code"], "knowledge_base_required");
    values.insert(
        "knowledge_base".into(),
        json!({"mode": "existing", "knowledge_base_id": "kb_0190f1d3a5b67c8d9e0f1a2b3c4d5e6f"}),
    );
    let p = expect(
        put(
            &app,
            &format!("/api/v1/onboarding/{id}/steps/knowledge"),
            t,
            Value::Object(values.clone()),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(paths(&p), ["/knowledge_base/knowledge_base_id"]);
    let after = expect(app.get(&format!("/api/v1/onboarding/{id}"), Some(t)).await, 200).await;
    assert_eq!(after["current_step"], "knowledge", "nothing saved on error");
    assert_eq!(after["completed_steps"], json!(["basics"]));
    let done = walk(&app, t, &id, Some(json!({"mode": "create_new", "name": "Help centre"}))).await;
    assert!(done["current_step"].is_null());
    let out = expect(
        app.post(&format!("/api/v1/onboarding/{id}/complete"), Some(t), json!({})).await,
        201,
    )
    .await;
    assert_eq!(out["agent"]["knowledge_base_ids"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn conditional_fields_order_and_validation_in_the_wizard() {
    let app = spawn_app().await;
    let op = operator(&app, "op@example.com").await;
    let t = &op.access_token;
    let id = start(&app, t, "code-assistant").await;
    // A later step before the current one is out of order.
    let p = expect(
        put(&app, &format!("/api/v1/onboarding/{id}/steps/repository"), t, json!({})).await,
        409,
    )
    .await;
    assert_eq!(p["code"], "step_out_of_order");
    // Invalid answers: 422 with paths, nothing saved.
    let p = expect(
        put(
            &app,
            &format!("/api/v1/onboarding/{id}/steps/basics"),
            t,
            json!({"agent_name": "x", "nope": 1}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(paths(&p), ["/nope", "/agent_name"]);
    let s = expect(app.get(&format!("/api/v1/onboarding/{id}"), Some(t)).await, 200).await;
    assert_eq!(s["completed_steps"], json!([]));
    assert_eq!(s["current_step"], "basics");
    expect(
        put(
            &app,
            &format!("/api/v1/onboarding/{id}/steps/basics"),
            t,
            json!({"agent_name": "Cody"}),
        )
        .await,
        200,
    )
    .await;
    let s = expect(app.get(&format!("/api/v1/onboarding/{id}"), Some(t)).await, 200).await;
    let stack = fill_step(&s["step"], None);
    expect(
        put(&app, &format!("/api/v1/onboarding/{id}/steps/stack"), t, Value::Object(stack)).await,
        200,
    )
    .await;
    let field = |s: &Value, name: &str| -> Value {
        s["step"]["sections"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|sec| sec["fields"].as_array().unwrap().clone())
            .find(|f| f["name"] == name)
            .unwrap()
    };
    let s = expect(app.get(&format!("/api/v1/onboarding/{id}"), Some(t)).await, 200).await;
    assert_eq!(s["current_step"], "repository");
    assert_eq!(field(&s, "repository")["visible"], false, "hidden until the toggle is on");
    // Toggle on: the conditional field becomes required.
    let p = expect(
        put(
            &app,
            &format!("/api/v1/onboarding/{id}/steps/repository"),
            t,
            json!({"connect_repository": true}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(p["errors"][0]["path"], "/repository");
    assert_eq!(p["errors"][0]["code"], "required");
    let p = expect(
        put(
            &app,
            &format!("/api/v1/onboarding/{id}/steps/repository"),
            t,
            json!({"connect_repository": true, "repository": "not a repo"}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(p["errors"][0]["code"], "pattern");
    expect(put(&app, &format!("/api/v1/onboarding/{id}/steps/repository"), t, json!({"connect_repository": true, "repository": "acme/widgets", "repository_token": "tok-1234567890"})).await, 200)
        .await;
    // Going back shows the saved values (never the secret) with computed visibility.
    let s =
        expect(app.post(&format!("/api/v1/onboarding/{id}/back"), Some(t), json!({})).await, 200)
            .await;
    assert_eq!(s["current_step"], "repository");
    assert_eq!(field(&s, "repository")["visible"], true);
    assert_eq!(field(&s, "repository")["value"], "acme/widgets");
    assert_eq!(field(&s, "repository_token")["value"], Value::Null);
    assert_eq!(field(&s, "repository_token")["is_set"], true);
    // Toggle off: the conditional answers are dropped.
    expect(
        put(
            &app,
            &format!("/api/v1/onboarding/{id}/steps/repository"),
            t,
            json!({"connect_repository": false, "repository": "acme/other"}),
        )
        .await,
        200,
    )
    .await;
    let s =
        expect(app.post(&format!("/api/v1/onboarding/{id}/back"), Some(t), json!({})).await, 200)
            .await;
    assert_eq!(field(&s, "repository")["visible"], false);
    assert_eq!(field(&s, "repository")["value"], Value::Null);
    // An earlier step may be resubmitted (going back by PUT); the wizard moves on from it.
    let s = expect(
        put(
            &app,
            &format!("/api/v1/onboarding/{id}/steps/basics"),
            t,
            json!({"agent_name": "Cody Two"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(s["current_step"], "stack");
    let stack = fill_step(&s["step"], None);
    expect(
        put(&app, &format!("/api/v1/onboarding/{id}/steps/stack"), t, Value::Object(stack)).await,
        200,
    )
    .await;
    let s = expect(
        put(
            &app,
            &format!("/api/v1/onboarding/{id}/steps/repository"),
            t,
            json!({"connect_repository": false}),
        )
        .await,
        200,
    )
    .await;
    let answers = fill_step(&s["step"], None);
    let done = expect(
        put(&app, &format!("/api/v1/onboarding/{id}/steps/answers"), t, Value::Object(answers))
            .await,
        200,
    )
    .await;
    assert!(done["current_step"].is_null());
    let out = expect(
        app.post(&format!("/api/v1/onboarding/{id}/complete"), Some(t), json!({})).await,
        201,
    )
    .await;
    assert_eq!(out["agent"]["display_name"], "Cody Two");
    assert!(!out["agent"]["system_prompt"].as_str().unwrap().contains("acme"));
}

#[tokio::test]
async fn closed_sessions_cannot_be_reused_and_the_starter_plan_allows_one_agent() {
    let app = spawn_app().await;
    let s = app.signed_up("starter@example.com").await;
    let t = &s.access_token;
    let abandoned = start(&app, t, "generic-chat").await;
    expect(
        app.post(&format!("/api/v1/onboarding/{abandoned}/abandon"), Some(t), json!({})).await,
        200,
    )
    .await;
    let p = expect(
        put(
            &app,
            &format!("/api/v1/onboarding/{abandoned}/steps/basics"),
            t,
            json!({"agent_name": "Abe"}),
        )
        .await,
        409,
    )
    .await;
    assert_eq!(p["code"], "session_closed");
    expect(
        app.post(&format!("/api/v1/onboarding/{abandoned}/complete"), Some(t), json!({})).await,
        409,
    )
    .await;
    expect(
        app.post(&format!("/api/v1/onboarding/{abandoned}/abandon"), Some(t), json!({})).await,
        409,
    )
    .await;

    let id = start(&app, t, "generic-chat").await;
    let p = expect(
        app.post(&format!("/api/v1/onboarding/{id}/complete"), Some(t), json!({})).await,
        409,
    )
    .await;
    assert_eq!(p["code"], "steps_remaining");
    walk(&app, t, &id, None).await;
    let out = expect(
        app.post(&format!("/api/v1/onboarding/{id}/complete"), Some(t), json!({})).await,
        201,
    )
    .await;
    expect(app.post(&format!("/api/v1/onboarding/{id}/complete"), Some(t), json!({})).await, 409)
        .await;
    expect(
        put(
            &app,
            &format!("/api/v1/onboarding/{id}/steps/basics"),
            t,
            json!({"agent_name": "Again"}),
        )
        .await,
        409,
    )
    .await;

    // The starter plan's one agent exists: every way to make another is refused.
    let p = expect(
        app.post("/api/v1/onboarding", Some(t), json!({"template": "generic-chat"})).await,
        402,
    )
    .await;
    assert_eq!(p["code"], "plan_limit_reached");
    let detail = p["detail"].as_str().unwrap();
    assert!(detail.contains("starter") && detail.contains('1'), "{detail}");
    let p = expect(
        app.post(
            "/api/v1/agents",
            Some(t),
            json!({"display_name": "Two", "template": "generic-chat"}),
        )
        .await,
        402,
    )
    .await;
    assert_eq!(p["code"], "plan_limit_reached");
    let agent_id = out["agent"]["id"].as_str().unwrap();
    let doc =
        expect(app.get(&format!("/api/v1/agents/{agent_id}/export"), Some(t)).await, 200).await;
    let p = expect(app.post("/api/v1/agents/import", Some(t), doc).await, 402).await;
    assert_eq!(p["code"], "plan_limit_reached");
    // Pro templates are listed as unavailable on starter, and refused.
    let list = expect(app.get("/api/v1/templates", Some(t)).await, 200).await;
    let code = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["slug"] == "code-assistant")
        .unwrap()
        .clone();
    assert_eq!(code["is_available"], false);
    assert_eq!(code["unavailable_reason"], "requires the pro plan");
    let p = expect(
        app.post("/api/v1/onboarding", Some(t), json!({"template": "code-assistant"})).await,
        403,
    )
    .await;
    assert_eq!(p["code"], "plan_required");
    let p =
        expect(app.post("/api/v1/onboarding", Some(t), json!({"template": "no-such"})).await, 422)
            .await;
    assert_eq!(paths(&p), ["/template"]);
}

#[tokio::test]
async fn agents_are_validated_against_their_template() {
    let app = spawn_app().await;
    let s = app.signed_up("v@example.com").await;
    let t = &s.access_token;
    let base = json!({"display_name": "Sam", "template": "customer-support-agent", "answers": {"company_name": "Acme", "greeting": "Hello!"}, "config": {"allowed_domains": ["acme.com"]}});
    let with = |extra: Value| {
        let mut b = base.clone();
        b.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        b
    };
    let p = expect(
        app.post(
            "/api/v1/agents",
            Some(t),
            with(json!({"enabled_capabilities": ["rag", "code_exec"]})),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(p["errors"][0]["path"], "/enabled_capabilities/1");
    assert_eq!(p["errors"][0]["code"], "capability_not_offered");
    let p = expect(
        app.post("/api/v1/agents", Some(t), with(json!({"enabled_capabilities": ["widget"]})))
            .await,
        422,
    )
    .await;
    assert_eq!(p["errors"][0]["code"], "missing_dependency");
    let p = expect(
        app.post("/api/v1/agents", Some(t), with(json!({"enabled_capabilities": ["nope"]}))).await,
        422,
    )
    .await;
    assert_eq!(p["errors"][0]["code"], "unknown_capability");
    let p = expect(
        app.post(
            "/api/v1/agents",
            Some(t),
            with(json!({"enabled_capabilities": ["api"], "config": {"tone": 5}})),
        )
        .await,
        422,
    )
    .await;
    assert!(paths(&p).contains(&"/config/tone".to_owned()), "{p}");
    let p = expect(
        app.post(
            "/api/v1/agents",
            Some(t),
            with(json!({"enabled_capabilities": ["api"], "config": {"chunk_size": 500}})),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(p["errors"][0]["code"], "capability_disabled");
    let p = expect(
        app.post("/api/v1/agents", Some(t), with(json!({"personality": {"creativity": 2}}))).await,
        422,
    )
    .await;
    assert_eq!(paths(&p), ["/personality"]);
    let p = expect(
        app.post(
            "/api/v1/agents",
            Some(t),
            with(json!({"knowledge_base_ids": ["kb_0190f1d3a5b67c8d9e0f1a2b3c4d5e6f"]})),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(paths(&p), ["/knowledge_base_ids/0"]);
    let p = expect(app.post("/api/v1/agents", Some(t), json!({"display_name": "Sam", "template": "customer-support-agent", "config": {"allowed_domains": ["acme.com"]}})).await, 422)
        .await;
    assert_eq!(
        p["errors"][0]["code"], "prompt_render_failed",
        "unanswered prompt fields are reported"
    );
    let list = expect(app.get("/api/v1/agents", Some(t)).await, 200).await;
    assert_eq!(list["data"], json!([]), "nothing saved by refused requests");

    let a = expect(app.post("/api/v1/agents", Some(t), with(json!({"personality": {"creativity": 0.9, "verbosity": 0.0, "formality": 1.0}, "behavior": {"tone": "friendly"}}))).await, 201)
        .await;
    assert_eq!(a["slug"], "sam");
    assert_eq!(a["enabled_capabilities"], json!(["rag", "widget", "api"]));
    assert_eq!(a["config"]["tone"], "friendly");
    assert!((a["llm_settings"]["temperature"].as_f64().unwrap() - 0.82).abs() < 1e-9);
    assert_eq!(a["llm_settings"]["max_tokens"], 512);
    assert!(a["system_prompt"].as_str().unwrap().contains("Acme"));
    assert!(a["system_prompt"].as_str().unwrap().contains("friendly"));

    // What GET shows can be sent back: unset behaviour settings come as null and clear nothing.
    let id = a["id"].as_str().unwrap();
    assert!(a["behavior"].as_object().unwrap().values().any(Value::is_null), "{}", a["behavior"]);
    let b = expect(
        app.patch(
            &format!("/api/v1/agents/{id}"),
            Some(t),
            json!({"version": a["version"], "behavior": a["behavior"], "config": a["config"]}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(b["config"]["tone"], "friendly");
    let c = expect(
        app.patch(
            &format!("/api/v1/agents/{id}"),
            Some(t),
            json!({"version": b["version"], "behavior": {"extra_instructions": "Be brief."}}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(c["config"]["system_prompt_override"], "Be brief.");
    let d = expect(
        app.patch(
            &format!("/api/v1/agents/{id}"),
            Some(t),
            json!({"version": c["version"], "behavior": {"extra_instructions": null}}),
        )
        .await,
        200,
    )
    .await;
    assert!(d["config"].get("system_prompt_override").is_none(), "null clears: {}", d["config"]);
}

#[tokio::test]
async fn revisions_restore_and_optimistic_concurrency() {
    let app = spawn_app().await;
    let s = app.signed_up("rev@example.com").await;
    let t = &s.access_token;
    let a = create_generic(&app, t, "Ada").await;
    let id = a["id"].as_str().unwrap();
    assert_eq!(a["version"], 1);
    let b = expect(
        app.patch(
            &format!("/api/v1/agents/{id}"),
            Some(t),
            json!({"version": 1, "display_name": "Grace"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(b["version"], 2);
    assert!(b["system_prompt"].as_str().unwrap().contains("Ada"), "answers keep the wizard name");
    let p = expect(
        app.patch(
            &format!("/api/v1/agents/{id}"),
            Some(t),
            json!({"version": 1, "tagline": "stale"}),
        )
        .await,
        409,
    )
    .await;
    assert_eq!(p["code"], "version_conflict");
    let p = expect(
        app.patch(&format!("/api/v1/agents/{id}"), Some(t), json!({"tagline": "no version"})).await,
        422,
    )
    .await;
    assert_eq!(paths(&p), ["/version"]);
    let resp = app
        .client
        .patch(app.url(&format!("/api/v1/agents/{id}")))
        .bearer_auth(t)
        .header("If-Match", "\"2\"")
        .json(&json!({"answers": {"agent_name": "Grace", "purpose": "Write poems"}, "enabled_capabilities": ["api", "image_gen"]}))
        .send()
        .await
        .unwrap();
    let c = expect(resp, 200).await;
    assert_eq!(c["version"], 3);
    let prompt = c["system_prompt"].as_str().unwrap();
    assert!(
        prompt.contains("Grace") && prompt.contains("Write poems") && prompt.contains("images"),
        "{prompt}"
    );
    let p = expect(
        app.patch(
            &format!("/api/v1/agents/{id}"),
            Some(t),
            json!({"version": 3, "enabled_capabilities": ["widget"]}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(p["errors"][0]["code"], "missing_dependency");
    let revs = expect(app.get(&format!("/api/v1/agents/{id}/revisions"), Some(t)).await, 200).await;
    let revs = revs["data"].as_array().unwrap().clone();
    assert_eq!(revs.len(), 3);
    assert_eq!(revs[0]["version"], 3);
    assert!(revs[0]["changed_fields"].as_array().unwrap().contains(&json!("enabled_capabilities")));
    assert_eq!(revs[1]["changed_fields"], json!(["display_name"]));
    let first = revs.iter().find(|r| r["version"] == 1).unwrap()["id"].as_str().unwrap().to_owned();
    let r = expect(
        app.post(&format!("/api/v1/agents/{id}/revisions/{first}/restore"), Some(t), json!({}))
            .await,
        200,
    )
    .await;
    assert_eq!(r["version"], 4);
    assert_eq!(r["display_name"], "Ada");
    assert_eq!(r["enabled_capabilities"], json!(["api"]));
    assert_eq!(r["system_prompt"], a["system_prompt"]);
    let revs = expect(app.get(&format!("/api/v1/agents/{id}/revisions"), Some(t)).await, 200).await;
    assert_eq!(revs["data"].as_array().unwrap().len(), 4);
    let audit = expect(app.get("/api/v1/audit-events", Some(t)).await, 200).await;
    let actions: Vec<&str> =
        audit["data"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    for wanted in ["agent.created", "agent.updated", "agent.restored"] {
        assert!(actions.contains(&wanted), "{wanted} in {actions:?}");
    }
    expect(app.delete(&format!("/api/v1/agents/{id}"), Some(t)).await, 204).await;
    expect(app.get(&format!("/api/v1/agents/{id}"), Some(t)).await, 404).await;
}

#[tokio::test]
async fn export_and_import_round_trip_into_another_workspace() {
    let app = spawn_app().await;
    let a = app.signed_up("a@example.com").await;
    let b = app.signed_up("b@example.com").await;
    let agent = expect(
        app.post("/api/v1/agents", Some(&a.access_token), json!({"display_name": "Export Me", "template": "generic-chat", "tagline": "Hi", "answers": {"purpose": "Testing"}, "personality": {"creativity": 0.7, "verbosity": 0.2, "formality": 0.9}})).await,
        201,
    )
    .await;
    let id = agent["id"].as_str().unwrap();
    let doc =
        expect(app.get(&format!("/api/v1/agents/{id}/export"), Some(&a.access_token)).await, 200)
            .await;
    let text = doc.to_string();
    assert!(!text.contains(id) && !text.contains(&a.workspace_id), "no ids: {text}");
    assert!(!text.contains("ef_"), "no secrets");
    assert_eq!(doc["format"], "echoforge.agent/v1");
    let mut bad = doc.clone();
    bad.as_object_mut().unwrap().remove("display_name");
    let p = expect(app.post("/api/v1/agents/import", Some(&b.access_token), bad).await, 422).await;
    assert_eq!(p["errors"][0]["path"], "");
    let mut bad = doc.clone();
    bad["format"] = json!("other/v9");
    let p = expect(app.post("/api/v1/agents/import", Some(&b.access_token), bad).await, 422).await;
    assert_eq!(paths(&p), ["/format"]);
    let mut bad = doc.clone();
    bad["personality"] = json!("loud");
    expect(app.post("/api/v1/agents/import", Some(&b.access_token), bad).await, 422).await;
    let list = expect(app.get("/api/v1/agents", Some(&b.access_token)).await, 200).await;
    assert_eq!(list["data"], json!([]), "malformed imports save nothing");
    let imported =
        expect(app.post("/api/v1/agents/import", Some(&b.access_token), doc.clone()).await, 201)
            .await;
    let new = &imported["agent"];
    assert_ne!(new["id"], agent["id"]);
    assert_ne!(new["public_id"], agent["public_id"]);
    for k in [
        "slug",
        "display_name",
        "tagline",
        "template",
        "enabled_capabilities",
        "personality",
        "config",
        "system_prompt",
    ] {
        assert_eq!(new[k], agent[k], "{k} survives the round trip");
    }
    assert_eq!(new["version"], 1);
    let p = expect(app.post("/api/v1/agents/import", Some(&b.access_token), doc).await, 402).await;
    assert_eq!(p["code"], "plan_limit_reached", "imports count against the plan");
}

#[tokio::test]
async fn agent_keys_reach_only_their_agent_and_are_rate_limited() {
    let app = spawn_app().await;
    let op = operator(&app, "op@example.com").await;
    let t = &op.access_token;
    let one = create_generic(&app, t, "One").await;
    let two = create_generic(&app, t, "Two").await;
    let (id1, id2) = (one["id"].as_str().unwrap(), two["id"].as_str().unwrap());
    let p = expect(
        app.post(
            &format!("/api/v1/agents/{id1}/keys"),
            Some(t),
            json!({"name": "bad", "permissions": ["chat", "admin"]}),
        )
        .await,
        422,
    )
    .await;
    assert_eq!(paths(&p), ["/permissions/1"]);
    let key = expect(
        app.post(
            &format!("/api/v1/agents/{id1}/keys"),
            Some(t),
            json!({"name": "widget", "permissions": ["chat", "config"], "rate_per_minute": 8}),
        )
        .await,
        201,
    )
    .await;
    let secret = key["secret"].as_str().unwrap().to_owned();
    let key_id = key["id"].as_str().unwrap().to_owned();
    let keys = expect(app.get(&format!("/api/v1/agents/{id1}/keys"), Some(t)).await, 200).await;
    assert_eq!(keys["data"].as_array().unwrap().len(), 1);
    let ws_keys = expect(app.get("/api/v1/api-keys", Some(t)).await, 200).await;
    assert_eq!(ws_keys["data"], json!([]), "agent keys are not workspace keys");

    let k = Some(secret.as_str());
    let list = expect(app.get("/api/v1/agents", k).await, 200).await;
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    assert_eq!(list["data"][0]["id"], id1);
    expect(app.get(&format!("/api/v1/agents/{id1}"), k).await, 200).await;
    expect(app.get(&format!("/api/v1/agents/{id2}"), k).await, 404).await;
    expect(
        app.patch(&format!("/api/v1/agents/{id2}"), k, json!({"version": 1, "tagline": "x"})).await,
        404,
    )
    .await;
    expect(
        app.patch(
            &format!("/api/v1/agents/{id1}"),
            k,
            json!({"version": 1, "tagline": "set by key"}),
        )
        .await,
        200,
    )
    .await;
    expect(app.get("/api/v1/api-keys", k).await, 403).await;
    expect(
        app.post("/api/v1/agents", k, json!({"display_name": "X", "template": "generic-chat"}))
            .await,
        403,
    )
    .await;
    expect(app.delete(&format!("/api/v1/agents/{id1}"), k).await, 403).await;
    let mut limited = false;
    for _ in 0..10 {
        let resp = app.get(&format!("/api/v1/agents/{id1}"), k).await;
        if resp.status() == 429 {
            let wait: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
            assert!((1..=60).contains(&wait));
            limited = true;
            break;
        }
        assert_eq!(resp.status(), 200);
    }
    assert!(limited, "8 requests a minute, then 429");
    expect(app.delete(&format!("/api/v1/agents/{id2}/keys/{key_id}"), Some(t)).await, 404).await;
    expect(app.delete(&format!("/api/v1/agents/{id1}/keys/{key_id}"), Some(t)).await, 204).await;
    expect(app.get("/api/v1/agents", k).await, 401).await;
    let audit = expect(app.get("/api/v1/audit-events", Some(t)).await, 200).await;
    let actions: Vec<&str> =
        audit["data"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"agent_key.created") && actions.contains(&"agent_key.revoked"));
}

#[tokio::test]
async fn another_workspaces_agents_sessions_and_keys_are_not_found() {
    let app = spawn_app().await;
    let a = app.signed_up("a@example.com").await;
    let b = app.signed_up("b@example.com").await;
    let agent = create_generic(&app, &a.access_token, "Mine").await;
    let id = agent["id"].as_str().unwrap();
    let key = expect(
        app.post(
            &format!("/api/v1/agents/{id}/keys"),
            Some(&a.access_token),
            json!({"name": "k", "permissions": ["chat"]}),
        )
        .await,
        201,
    )
    .await;
    let key_id = key["id"].as_str().unwrap();
    let rev = expect(
        app.get(&format!("/api/v1/agents/{id}/revisions"), Some(&a.access_token)).await,
        200,
    )
    .await;
    let rev_id = rev["data"][0]["id"].as_str().unwrap();
    let session = start(&app, &b.access_token, "generic-chat").await;
    let bt = Some(b.access_token.as_str());
    let at = Some(a.access_token.as_str());
    for resp in [
        app.get(&format!("/api/v1/agents/{id}"), bt).await,
        app.patch(&format!("/api/v1/agents/{id}"), bt, json!({"version": 1, "tagline": "x"})).await,
        app.get(&format!("/api/v1/agents/{id}/revisions"), bt).await,
        app.post(&format!("/api/v1/agents/{id}/revisions/{rev_id}/restore"), bt, json!({})).await,
        app.get(&format!("/api/v1/agents/{id}/export"), bt).await,
        app.get(&format!("/api/v1/agents/{id}/keys"), bt).await,
        app.post(
            &format!("/api/v1/agents/{id}/keys"),
            bt,
            json!({"name": "k", "permissions": ["chat"]}),
        )
        .await,
        app.delete(&format!("/api/v1/agents/{id}/keys/{key_id}"), bt).await,
        app.post(&format!("/api/v1/agents/{id}/save-as-template"), bt, json!({"slug": "stolen"}))
            .await,
        app.delete(&format!("/api/v1/agents/{id}"), bt).await,
        app.get(&format!("/api/v1/onboarding/{session}"), at).await,
        put(
            &app,
            &format!("/api/v1/onboarding/{session}/steps/basics"),
            &a.access_token,
            json!({"agent_name": "Nope"}),
        )
        .await,
        app.post(&format!("/api/v1/onboarding/{session}/back"), at, json!({})).await,
        app.post(&format!("/api/v1/onboarding/{session}/abandon"), at, json!({})).await,
        app.post(&format!("/api/v1/onboarding/{session}/complete"), at, json!({})).await,
    ] {
        expect(resp, 404).await;
    }
    let list = expect(app.get("/api/v1/agents", bt).await, 200).await;
    assert_eq!(list["data"], json!([]));
    let still = expect(app.get(&format!("/api/v1/agents/{id}"), at).await, 200).await;
    assert_eq!(still["version"], 1);
    let s = expect(app.get(&format!("/api/v1/onboarding/{session}"), bt).await, 200).await;
    assert_eq!(s["status"], "in_progress");
}

#[tokio::test]
async fn operators_manage_system_templates_and_workspaces_their_own() {
    let app = spawn_app().await;
    let op = operator(&app, "op@example.com").await;
    let member = app.signed_up("m@example.com").await;
    let (ot, mt) = (op.access_token.as_str(), member.access_token.as_str());
    let base =
        expect(app.get("/api/v1/templates/generic-chat", Some(ot)).await, 200).await["document"]
            .clone();
    let mut doc = base.clone();
    doc["slug"] = json!("helpdesk-bot");
    doc["name"] = json!("Helpdesk Bot");
    doc["is_featured"] = json!(true);
    let p = expect(
        app.post("/api/v1/templates", Some(mt), json!({"document": doc, "system": true})).await,
        403,
    )
    .await;
    assert_eq!(p["code"], "operator_required");
    let mut broken = doc.clone();
    broken["capabilities"] = json!(["api", "teleport"]);
    broken["name"] = json!("");
    let p = expect(
        app.post("/api/v1/templates", Some(ot), json!({"document": broken, "system": true})).await,
        422,
    )
    .await;
    let ps = paths(&p);
    assert!(
        ps.contains(&"/name".to_owned()) && ps.contains(&"/capabilities/1".to_owned()),
        "{ps:?}"
    );
    let created = expect(
        app.post("/api/v1/templates", Some(ot), json!({"document": doc, "system": true})).await,
        201,
    )
    .await;
    assert_eq!(created["source"], "system");
    let featured =
        expect(app.get("/api/v1/templates?featured=true&category=general", Some(mt)).await, 200)
            .await;
    let slugs: Vec<&str> =
        featured["data"].as_array().unwrap().iter().map(|t| t["slug"].as_str().unwrap()).collect();
    assert_eq!(slugs, ["helpdesk-bot"], "members see the new system template");
    let mut edited = doc.clone();
    edited["name"] = json!("Helpdesk Bot 2");
    let e = expect(
        app.patch(
            "/api/v1/templates/helpdesk-bot",
            Some(ot),
            json!({"document": edited, "system": true}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(e["name"], "Helpdesk Bot 2");
    expect(app.delete("/api/v1/templates/helpdesk-bot?system=true", Some(ot)).await, 204).await;
    let all = expect(app.get("/api/v1/templates", Some(mt)).await, 200).await;
    assert!(all["data"].as_array().unwrap().iter().all(|t| t["slug"] != "helpdesk-bot"), "retired");
    let p = expect(
        app.post("/api/v1/onboarding", Some(mt), json!({"template": "helpdesk-bot"})).await,
        422,
    )
    .await;
    assert_eq!(p["errors"][0]["code"], "template_retired");

    // A member saves an agent as a workspace template and manages it.
    let agent = create_generic(&app, mt, "Saver").await;
    let id = agent["id"].as_str().unwrap();
    let t = expect(
        app.post(
            &format!("/api/v1/agents/{id}/save-as-template"),
            Some(mt),
            json!({"slug": "my-saver", "name": "My Saver"}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(t["source"], "workspace");
    assert_eq!(t["is_system"], false);
    expect(app.get("/api/v1/templates/my-saver", Some(mt)).await, 200).await;
    expect(app.get("/api/v1/templates/my-saver", Some(ot)).await, 404).await;
    expect(app.delete("/api/v1/templates/my-saver", Some(mt)).await, 204).await;
    expect(app.get("/api/v1/templates/my-saver", Some(mt)).await, 404).await;
}

#[tokio::test]
async fn capabilities_report_availability_and_every_route_is_documented() {
    let app = spawn_app().await;
    let s = app.signed_up("c@example.com").await;
    let caps = expect(app.get("/api/v1/capabilities", Some(&s.access_token)).await, 200).await;
    let caps = caps["data"].as_array().unwrap();
    assert_eq!(caps.len(), 19);
    let rag = caps.iter().find(|c| c["id"] == "rag").unwrap();
    assert_eq!(rag["is_available"], true);
    assert_eq!(rag["connected_via"], Value::Null);
    let email = caps.iter().find(|c| c["id"] == "send_emails").unwrap();
    assert_eq!(email["is_available"], false);
    assert_eq!(email["requires"], json!(["gmail", "outlook"]));
    let widget = caps.iter().find(|c| c["id"] == "widget").unwrap();
    assert_eq!(widget["depends_on"], json!([["rag", "api"]]));
    expect(app.get("/api/v1/capabilities", None).await, 401).await;

    let doc = body(app.get("/api/v1/openapi.json", None).await).await;
    for path in [
        "/api/v1/capabilities",
        "/api/v1/templates",
        "/api/v1/templates/{slug}",
        "/api/v1/onboarding",
        "/api/v1/onboarding/{id}",
        "/api/v1/onboarding/{id}/steps/{step_id}",
        "/api/v1/onboarding/{id}/back",
        "/api/v1/onboarding/{id}/abandon",
        "/api/v1/onboarding/{id}/complete",
        "/api/v1/agents",
        "/api/v1/agents/{id}",
        "/api/v1/agents/{id}/revisions",
        "/api/v1/agents/{id}/revisions/{rev}/restore",
        "/api/v1/agents/{id}/export",
        "/api/v1/agents/import",
        "/api/v1/agents/{id}/keys",
        "/api/v1/agents/{id}/keys/{key_id}",
        "/api/v1/agents/{id}/save-as-template",
        "/api/v1/admin/workspaces/{id}",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} is documented");
    }
}

#[tokio::test]
async fn an_operator_upgrades_a_workspace_and_the_pro_agent_limit_applies() {
    let app = spawn_app().await;
    let user = app.signed_up("owner@example.com").await;
    let t = user.access_token.as_str();
    let ws = user.workspace_id.as_str();
    let op = operator(&app, "op@example.com").await;
    let admin_path = format!("/api/v1/admin/workspaces/{ws}");

    // Starter: one agent, then refused on both routes.
    create_generic(&app, t, "One").await;
    let p = expect(
        app.post(
            "/api/v1/agents",
            Some(t),
            json!({"display_name": "Two", "template": "generic-chat"}),
        )
        .await,
        402,
    )
    .await;
    assert_eq!(p["code"], "plan_limit_reached");
    expect(app.post("/api/v1/onboarding", Some(t), json!({"template": "generic-chat"})).await, 402)
        .await;

    // Only operators change plans; unknown plans and workspaces are refused.
    let p = expect(app.patch(&admin_path, Some(t), json!({"plan": "pro"})).await, 403).await;
    assert_eq!(p["code"], "operator_required");
    let p =
        expect(app.patch(&admin_path, Some(&op.access_token), json!({"plan": "gold"})).await, 422)
            .await;
    assert_eq!(paths(&p), vec!["/plan"]);
    let missing = format!("/api/v1/admin/workspaces/{}", domain::WorkspaceId::new());
    expect(app.patch(&missing, Some(&op.access_token), json!({"plan": "pro"})).await, 404).await;
    let still = expect(app.get("/api/v1/workspace", Some(t)).await, 200).await;
    assert_eq!(still["plan"], "starter", "nothing changed by refused requests");

    let w =
        expect(app.patch(&admin_path, Some(&op.access_token), json!({"plan": "pro"})).await, 200)
            .await;
    assert_eq!((w["id"].as_str(), w["plan"].as_str()), (Some(ws), Some("pro")));
    let seen = expect(app.get("/api/v1/workspace", Some(t)).await, 200).await;
    assert_eq!(seen["plan"], "pro");
    let audit =
        expect(app.get("/api/v1/audit-events?action=workspace.plan_changed", Some(t)).await, 200)
            .await;
    let events = audit["data"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{audit}");
    assert_eq!(events[0]["actor_user_id"].as_str(), Some(op.user_id.as_str()));
    assert_eq!(events[0]["detail"]["from"], "starter");
    assert_eq!(events[0]["detail"]["to"], "pro");

    // Pro: five agents. The wizard makes the second; the API the third to fifth.
    let session = start(&app, t, "generic-chat").await;
    walk(&app, t, &session, None).await;
    let done = expect(
        app.post(&format!("/api/v1/onboarding/{session}/complete"), Some(t), json!({})).await,
        201,
    )
    .await;
    assert!(done["agent"]["id"].is_string(), "{done}");
    for name in ["Three", "Four", "Five"] {
        create_generic(&app, t, name).await;
    }
    let listed = expect(app.get("/api/v1/agents", Some(t)).await, 200).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 5);
    let p = expect(
        app.post(
            "/api/v1/agents",
            Some(t),
            json!({"display_name": "Six", "template": "generic-chat"}),
        )
        .await,
        402,
    )
    .await;
    assert_eq!(p["code"], "plan_limit_reached");
    let detail = p["detail"].as_str().unwrap();
    assert!(detail.contains("pro") && detail.contains('5'), "{detail}");
    let p = expect(
        app.post("/api/v1/onboarding", Some(t), json!({"template": "generic-chat"})).await,
        402,
    )
    .await;
    assert_eq!(p["code"], "plan_limit_reached");
    let listed = expect(app.get("/api/v1/agents", Some(t)).await, 200).await;
    assert_eq!(listed["data"].as_array().unwrap().len(), 5, "nothing was created past the limit");
}

#[tokio::test]
async fn routing_rules_and_integrations_are_validated_saved_with_a_revision_and_applied() {
    let app = spawn_app().await;
    let user = app.signed_up("routes@example.com").await;
    let t = user.access_token.as_str();
    let agent = create_generic(&app, t, "Router").await;
    let id = agent["id"].as_str().unwrap();
    let path = format!("/api/v1/agents/{id}");
    assert_eq!(agent["integrations"], json!([]));

    // Every problem is reported at once, by path; nothing is saved.
    let p = expect(
        app.patch(
            &path,
            Some(t),
            json!({"version": 1, "routing_rules": {"rules": [
                {"pattern": "(unclosed", "condition": "regex", "target": {"type": "fixed_answer", "text": "x"}},
                {"pattern": "hi", "condition": "startswith", "target": {"type": "fixed_answer", "text": "x"}},
                {"pattern": "mail", "condition": "contains", "target": {"type": "skill", "skill": "teleport:now"}},
                {"pattern": "", "condition": "contains", "target": {"type": "workflow"}}
            ], "fallback_to_llm": "sometimes"}, "integrations": ["gmail", "carrier-pigeon", "gmail"]}),
        )
        .await,
        422,
    )
    .await;
    let mut got = paths(&p);
    got.sort();
    let mut want = vec![
        "/routing_rules/rules/0/pattern",
        "/routing_rules/rules/1/condition",
        "/routing_rules/rules/2/target/skill",
        "/routing_rules/rules/3/pattern",
        "/routing_rules/rules/3/target/type",
        "/routing_rules/fallback_to_llm",
        "/integrations/1",
        "/integrations/2",
    ];
    want.sort();
    assert_eq!(got, want, "{p}");
    let same = expect(app.get(&path, Some(t)).await, 200).await;
    assert_eq!(same["version"], 1);

    let rules = json!({"rules": [
        {"pattern": "(refund|money back)", "condition": "contains",
         "target": {"type": "fixed_answer", "text": "Refunds take 5 days."}},
        {"pattern": "^opening hours?\\b", "condition": "regex",
         "target": {"type": "prompt_override", "prompt": "Answer only about opening hours."}},
        {"pattern": "human", "condition": "contains",
         "target": {"type": "skill", "skill": "escalate_to_human"}}
    ], "fallback_to_llm": false, "no_match_answer": "I only handle refunds."});
    let saved = expect(
        app.patch(
            &path,
            Some(t),
            json!({"version": 1, "routing_rules": rules, "integrations": ["gmail"]}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(saved["version"], 2);
    assert_eq!(saved["integrations"], json!(["gmail"]));
    assert_eq!(saved["routing_rules"]["rules"], rules["rules"]);
    assert_eq!(saved["routing_rules"]["fallback_to_llm"], false);
    assert_eq!(saved["routing_rules"]["no_match_answer"], "I only handle refunds.");
    let revs = expect(app.get(&format!("{path}/revisions"), Some(t)).await, 200).await;
    let latest = &revs["data"][0];
    assert_eq!(latest["version"], 2);
    let changed: Vec<&str> =
        latest["changed_fields"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    assert!(changed.contains(&"routing_rules") && changed.contains(&"integrations"), "{latest}");

    // The saved rules are what the agent runs (no model configured: only routing answers).
    let r = expect(
        app.post(&format!("{path}/chat"), Some(t), json!({"message": "I want my MONEY BACK"}))
            .await,
        200,
    )
    .await;
    assert_eq!(r["message"], "Refunds take 5 days.");
    let r = expect(
        app.post(&format!("{path}/chat"), Some(t), json!({"message": "what's the weather"})).await,
        200,
    )
    .await;
    assert_eq!(r["message"], "I only handle refunds.");

    // Export carries them; the import validates and keeps them.
    let doc = expect(app.get(&format!("{path}/export"), Some(t)).await, 200).await;
    assert_eq!(doc["integrations"], json!(["gmail"]));
    let other = app.signed_up("routes2@example.com").await;
    let imported = expect(
        app.post("/api/v1/agents/import", Some(&other.access_token), doc.clone()).await,
        201,
    )
    .await;
    assert_eq!(imported["agent"]["routing_rules"], saved["routing_rules"]);
    let mut bad = doc;
    bad["routing_rules"]["rules"][0]["condition"] = json!("fuzzy");
    let third = app.signed_up("routes3@example.com").await;
    let p =
        expect(app.post("/api/v1/agents/import", Some(&third.access_token), bad).await, 422).await;
    assert_eq!(paths(&p), vec!["/routing_rules/rules/0/condition"]);
}

/// Walks a wizard answering from the field definitions, with `overrides` for named fields.
async fn walk_with(
    app: &TestApp,
    token: &str,
    session: &str,
    kb: Option<Value>,
    overrides: &Value,
) -> Value {
    for _ in 0..10 {
        let s =
            expect(app.get(&format!("/api/v1/onboarding/{session}"), Some(token)).await, 200).await;
        let Some(step_id) = s["current_step"].as_str() else { return s };
        let mut values = fill_step(&s["step"], kb.clone());
        for (k, v) in overrides.as_object().unwrap() {
            if values.contains_key(k) {
                values.insert(k.clone(), v.clone());
            }
        }
        expect(
            put(
                app,
                &format!("/api/v1/onboarding/{session}/steps/{step_id}"),
                token,
                Value::Object(values),
            )
            .await,
            200,
        )
        .await;
    }
    panic!("the wizard did not end");
}

#[tokio::test]
async fn wizard_answers_fill_the_settings_their_template_maps_them_to() {
    let app = spawn_app().await;
    let op = operator(&app, "op@example.com").await;
    let t = op.access_token.as_str();

    // The seeded customer-support template maps its widget answers onto widget and branding
    // settings (declared with `maps_to` in its data).
    let detail =
        expect(app.get("/api/v1/templates/customer-support-agent", Some(t)).await, 200).await;
    let mapped: Vec<(String, String)> = detail["document"]["onboarding_schema"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["sections"].as_array().unwrap().iter())
        .flat_map(|s| s["fields"].as_array().unwrap().iter())
        .filter_map(|f| Some((f["name"].as_str()?.to_owned(), f["maps_to"].as_str()?.to_owned())))
        .collect();
    assert!(mapped.contains(&("embed_domain".into(), "/allowed_domains".into())), "{mapped:?}");
    let id = start(&app, t, "customer-support-agent").await;
    let answers = json!({"embed_domain": "shop.example.org", "widget_position": "bottom-left",
        "brand_color": "#112233", "greeting": "Welcome to Acme support!"});
    walk_with(&app, t, &id, Some(json!({"mode": "create_new", "name": "Support docs"})), &answers)
        .await;
    let out = expect(
        app.post(&format!("/api/v1/onboarding/{id}/complete"), Some(t), json!({})).await,
        201,
    )
    .await;
    let config = &out["agent"]["config"];
    assert_eq!(config["allowed_domains"], json!(["shop.example.org"]), "{config}");
    assert_eq!(config["position"], "bottom-left");
    assert_eq!(config["colors"]["primary"], "#112233");
    assert_eq!(config["welcome_message"], "Welcome to Acme support!");
    assert_eq!(out["deferred_capabilities"], json!([]));

    // A template's own (inline) setting is a target too: topic-assistant's instructions.
    let id = start(&app, t, "topic-assistant").await;
    let instructions = "Explain tax rules for freelancers in plain words, with examples.";
    walk_with(&app, t, &id, None, &json!({"custom_instructions": instructions})).await;
    let out = expect(
        app.post(&format!("/api/v1/onboarding/{id}/complete"), Some(t), json!({})).await,
        201,
    )
    .await;
    assert_eq!(out["agent"]["config"]["system_prompt"], instructions);

    // Any template can declare mappings: a workspace template maps generic-chat's `purpose`
    // answer onto the branding welcome message, which no code knows about.
    let mut doc =
        expect(app.get("/api/v1/templates/generic-chat", Some(t)).await, 200).await["document"]
            .clone();
    doc["slug"] = json!("mapped-chat");
    doc["name"] = json!("Mapped chat");
    let (s, c, f) = locate(&doc, "purpose");
    doc["onboarding_schema"]["steps"][s]["sections"][c]["fields"][f]["maps_to"] =
        json!("/welcome_message");
    expect(app.post("/api/v1/templates", Some(t), json!({"document": doc.clone()})).await, 201)
        .await;
    let id = start(&app, t, "mapped-chat").await;
    walk_with(&app, t, &id, None, &json!({"purpose": "Answer billing questions politely"})).await;
    let out = expect(
        app.post(&format!("/api/v1/onboarding/{id}/complete"), Some(t), json!({})).await,
        201,
    )
    .await;
    assert_eq!(out["agent"]["config"]["welcome_message"], "Answer billing questions politely");

    // A mapping must land on a setting of the template's capabilities.
    let pointer = format!("/onboarding_schema/steps/{s}/sections/{c}/fields/{f}/maps_to");
    for (target, code) in
        [("/no_such_setting", "unknown_setting"), ("/sources", "setting_not_in_template")]
    {
        let mut bad = doc.clone();
        bad["slug"] = json!("bad-map");
        bad["onboarding_schema"]["steps"][s]["sections"][c]["fields"][f]["maps_to"] = json!(target);
        let p = expect(app.post("/api/v1/templates", Some(t), json!({"document": bad})).await, 422)
            .await;
        let errs = p["errors"].as_array().unwrap();
        assert!(
            errs.iter()
                .any(|e| e["path"].as_str().unwrap_or_default().ends_with(&pointer)
                    && e["code"] == code),
            "{target}: {p}"
        );
    }
}

/// Indices (step, section, field) of the field named `name` in a template document.
fn locate(doc: &Value, name: &str) -> (usize, usize, usize) {
    for (s, step) in doc["onboarding_schema"]["steps"].as_array().unwrap().iter().enumerate() {
        for (c, sec) in step["sections"].as_array().unwrap().iter().enumerate() {
            for (f, field) in sec["fields"].as_array().unwrap().iter().enumerate() {
                if field["name"] == name {
                    return (s, c, f);
                }
            }
        }
    }
    panic!("no field {name}");
}
