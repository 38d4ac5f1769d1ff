//! The web app over HTTP: the session cookie and its CSRF protection, pages that need a session,
//! escaping of user-provided text, and workspace isolation of pages. (The same flows in a real
//! browser are in tests/browser/.)

use serde_json::{Value, json};
use testkit::{AgentSpec, TestApp, spawn_app};

fn client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

async fn page(app: &TestApp, cookie: &str, path: &str) -> (u16, String) {
    let resp =
        client().get(app.url(path)).header("cookie", cookie).send().await.expect("page request");
    let status = resp.status().as_u16();
    (status, unescape(&resp.text().await.unwrap_or_default()))
}

/// Undoes minijinja's HTML escaping of the characters tests look for.
fn unescape(html: &str) -> String {
    html.replace("&#x2f;", "/").replace("&quot;", "\"").replace("&#x27;", "'")
}

fn csrf_of(html: &str) -> String {
    let marker = "name=\"csrf-token\" content=\"";
    let start = html.find(marker).expect("a CSRF meta tag") + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

#[tokio::test]
async fn pages_need_a_session_and_redirect_back_after_sign_in() {
    let app = spawn_app().await;
    let resp = client().get(app.url("/team")).send().await.unwrap();
    assert_eq!(resp.status(), 303);
    assert_eq!(resp.headers()["location"], "/login?next=/team");
    let (status, html) = page(&app, "", "/login?next=/knowledge").await;
    assert_eq!(status, 200);
    assert!(html.contains("data-then=\"redirect:/knowledge\""), "{html}");
    // An open redirect through `next` is not followed.
    let (_, html) = page(&app, "", "/login?next=//evil.example/").await;
    assert!(html.contains("data-then=\"redirect:/team\""));
    // A forged cookie is no session.
    let resp = client().get(app.url("/team")).header("cookie", "ef_session=forged").send().await;
    assert_eq!(resp.unwrap().status(), 303);
    app.stop().await;
}

#[tokio::test]
async fn the_email_link_verifies_and_the_session_cookie_signs_in() {
    let app = spawn_app().await;
    let resp = app
        .post("/api/v1/auth/register", None, json!({"email": "web@example.com", "password": "Correct1horse", "name": "Web", "company_name": "Web Co"}))
        .await;
    assert_eq!(resp.status(), 201);
    let mail = app.wait_for_mail("web@example.com", "Verify").await;
    // Undo quoted-printable: soft line breaks and `=3D`.
    let mail = mail.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=");
    let link_start = mail.find("/verify-email?token=").expect("a link in the mail");
    let link: String =
        mail[link_start..].chars().take_while(|c| !c.is_whitespace() && *c != '"').collect();
    let (status, html) = page(&app, "", &link).await;
    assert_eq!(status, 200);
    assert!(html.contains("Email verified"), "{link} {html}");
    let (_, html) = page(&app, "", &link).await;
    assert!(html.contains("That link did not work"), "a link works once");

    let s = app.login("web@example.com", "Correct1horse").await;
    let cookie = app.web_login(&s).await;
    let (status, html) = page(&app, &cookie, "/team").await;
    assert_eq!(status, 200);
    assert!(html.contains("My Team") && html.contains("Add your first team member"));
    for path in [
        "/team/new",
        "/knowledge",
        "/settings",
        "/studio",
        "/studio?tab=keys",
        "/studio?tab=runs",
        "/studio?tab=audit",
        "/studio?tab=api",
        "/studio?tab=knowledge",
    ] {
        let (status, html) = page(&app, &cookie, path).await;
        assert_eq!(status, 200, "{path}: {html}");
    }
    // Signing out ends the cookie's session on the server, not only in the browser.
    let (_, html) = page(&app, &cookie, "/team").await;
    let csrf = csrf_of(&html);
    let resp = client()
        .post(app.url("/web/logout"))
        .header("cookie", &cookie)
        .header("x-csrf-token", csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    assert_eq!(page(&app, &cookie, "/team").await.0, 303);
    app.stop().await;
}

#[tokio::test]
async fn cookie_requests_that_change_things_need_the_csrf_token() {
    let app = spawn_app().await;
    let s = app.signed_up("csrf@example.com").await;
    let cookie = app.web_login(&s).await;
    let body = json!({"name": "Docs"});
    // Reading with the cookie works without a token.
    let resp =
        client().get(app.url("/api/v1/knowledge-bases")).header("cookie", &cookie).send().await;
    assert_eq!(resp.unwrap().status(), 200);
    let resp = client()
        .post(app.url("/api/v1/knowledge-bases"))
        .header("cookie", &cookie)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let problem: Value = resp.json().await.unwrap();
    assert_eq!(problem["code"], "csrf_failed");
    let resp = client()
        .post(app.url("/api/v1/knowledge-bases"))
        .header("cookie", &cookie)
        .header("x-csrf-token", "0".repeat(32))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403, "a wrong token is refused");
    let (_, html) = page(&app, &cookie, "/knowledge").await;
    let resp = client()
        .post(app.url("/api/v1/knowledge-bases"))
        .header("cookie", &cookie)
        .header("x-csrf-token", csrf_of(&html))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    // Nothing was created by the refused requests.
    let list: Value =
        app.get("/api/v1/knowledge-bases", Some(&s.access_token)).await.json().await.unwrap();
    assert_eq!(list["data"].as_array().unwrap().len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn user_text_is_escaped_and_other_workspaces_pages_are_404() {
    let app = spawn_app().await;
    let a = app.signed_up("alice@example.com").await;
    let b = app.signed_up("bob@example.com").await;
    let evil = "<script>alert('x')</script><img src=x onerror=alert(1)>";
    let agent = app.create_agent(&a.workspace_id, evil, "evil", AgentSpec::default()).await;
    let kb: Value = app
        .post("/api/v1/knowledge-bases", Some(&a.access_token), json!({"name": evil}))
        .await
        .json()
        .await
        .unwrap();
    let kb = kb["id"].as_str().unwrap().to_owned();
    let alice = app.web_login(&a).await;
    for path in [
        "/team".to_owned(),
        format!("/team/{agent}"),
        format!("/chat/{agent}"),
        "/knowledge".into(),
        format!("/knowledge/{kb}"),
        format!("/studio/agents/{agent}"),
    ] {
        let (status, html) = page(&app, &alice, &path).await;
        assert_eq!(status, 200, "{path}");
        assert!(!html.contains("<script>alert"), "{path} carries the raw script");
        assert!(!html.contains("<img src=x"), "{path} carries the raw tag");
        assert!(html.contains("&lt;script&gt;") || html.contains("&lt;script"), "{path}");
    }
    let bob = app.web_login(&b).await;
    for path in [
        format!("/team/{agent}"),
        format!("/chat/{agent}"),
        format!("/knowledge/{kb}"),
        format!("/studio/agents/{agent}"),
        "/team/agt_nonsense".into(),
    ] {
        let (status, html) = page(&app, &bob, &path).await;
        assert_eq!(status, 404, "{path}");
        assert!(!html.contains("alert"), "{path} leaks the other workspace's data");
    }
    app.stop().await;
}

#[tokio::test]
async fn onboarding_pages_render_the_templates_conditional_fields() {
    let app = spawn_app().await;
    let s = app.signed_up("wizard@example.com").await;
    let cookie = app.web_login(&s).await;
    let (_, html) =
        page(&app, &cookie, "/team/new?q=answer+employee+questions+from+our+knowledge+base").await;
    assert!(html.contains("data-start-onboarding=\"knowledge-assistant\""));
    assert!(html.contains("suggested"), "the need suggests templates");
    let first = html.find("data-template=\"").expect("template cards");
    assert!(html[first..].starts_with("data-template=\"knowledge-assistant\""), "best match first");
    let started: Value = app
        .post(
            "/api/v1/onboarding",
            Some(&s.access_token),
            json!({"template": "knowledge-assistant"}),
        )
        .await
        .json()
        .await
        .unwrap();
    let id = started["id"].as_str().unwrap().to_owned();
    let (status, html) = page(&app, &cookie, &format!("/onboarding/{id}")).await;
    assert_eq!(status, 200, "{html}");
    assert!(html.contains("data-onboarding=\"") && html.contains("data-step=\""));
    // Walk the wizard through the API and check the page follows each step, including the
    // step whose fields appear only for some answers.
    let mut saw_condition = html.contains("data-show-if=");
    let mut view = started;
    while let Some(step) = view["current_step"].as_str().map(str::to_owned) {
        let (_, html) = page(&app, &cookie, &format!("/onboarding/{id}")).await;
        assert!(html.contains(&format!("data-step=\"{step}\"")), "page shows step {step}");
        saw_condition |= html.contains("data-show-if=");
        let mut answers = serde_json::Map::new();
        for section in view["step"]["sections"].as_array().unwrap() {
            for f in section["fields"].as_array().unwrap() {
                if f["is_required"] == true {
                    let name = f["name"].as_str().unwrap();
                    let v = match f["type"].as_str().unwrap() {
                        "select" | "radio" => f["options"][0]["value"].clone(),
                        "checkbox" => json!(true),
                        _ => json!("Acme Helper"),
                    };
                    answers.insert(name.to_owned(), v);
                }
            }
        }
        if view["step"]["knowledge_base"].is_object() {
            answers.insert(
                "knowledge_base".into(),
                json!({"mode": "create_new", "name": "Acme docs"}),
            );
        }
        let resp = app
            .client
            .put(app.url(&format!("/api/v1/onboarding/{id}/steps/{step}")))
            .bearer_auth(&s.access_token)
            .json(&answers)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "step {step}: {}", resp.text().await.unwrap_or_default());
        view = app
            .get(&format!("/api/v1/onboarding/{id}"), Some(&s.access_token))
            .await
            .json()
            .await
            .unwrap();
    }
    assert!(saw_condition, "the knowledge assistant has conditional fields");
    let (_, html) = page(&app, &cookie, &format!("/onboarding/{id}")).await;
    assert!(html.contains("data-onboarding-complete"), "ready to create");
    app.stop().await;
}

#[tokio::test]
async fn with_a_model_the_need_is_turned_into_a_suggested_template() {
    use fakellm::{FakeLlm, Reply};
    let fake = FakeLlm::start().await;
    let app = testkit::spawn_app_with(testkit::Options {
        llm_base_url: Some(fake.base_url.clone()),
        ..Default::default()
    })
    .await;
    let s = app.signed_up("need@example.com").await;
    let cookie = app.web_login(&s).await;
    fake.push(Reply::text(
        "Here you go:\n```json\n{\"template\": \"sales-assistant\", \"capabilities\": [\"send_emails\", \"teleport\"], \"knowledge\": \"price lists and case studies\", \"reason\": \"it follows up with leads\"}\n```",
    ));
    let (status, html) = page(&app, &cookie, "/team/new?q=chase+our+leads+after+trade+fairs").await;
    assert_eq!(status, 200);
    let first = html.find("data-template=\"").unwrap();
    assert!(
        html[first..].starts_with("data-template=\"sales-assistant\""),
        "the model's choice first"
    );
    assert!(html.contains("data-source=\"model\""));
    assert!(
        html.contains("it follows up with leads") && html.contains("price lists and case studies")
    );
    assert!(
        html.contains("send emails") && !html.contains("teleport"),
        "only the template's capabilities"
    );
    let asked = fake.requests();
    assert!(
        asked.last().unwrap().body.to_string().contains("chase our leads"),
        "the model saw the need"
    );

    // A model answer that names no real template falls back to keywords.
    fake.push(Reply::text("{\"template\": \"astronaut\"}"));
    let (_, html) =
        page(&app, &cookie, "/team/new?q=answer+employee+questions+from+our+knowledge+base").await;
    assert!(
        html.contains("data-source=\"keywords\""),
        "{}",
        &html[html.find("<main").unwrap()..][..1500]
    );
    let first = html.find("data-template=\"").unwrap();
    assert!(html[first..].starts_with("data-template=\"knowledge-assistant\""));
    app.stop().await;
}

#[tokio::test]
async fn an_invite_is_accepted_from_its_page_and_the_workspace_can_be_switched() {
    let app = spawn_app().await;
    let alice = app.signed_up("owner@example.com").await;
    let bob = app.signed_up("guest@example.com").await;
    let resp = app
        .post(
            "/api/v1/workspace/invites",
            Some(&alice.access_token),
            json!({"email": "guest@example.com", "role": "member"}),
        )
        .await;
    assert_eq!(resp.status(), 201);
    let mail = app.wait_for_mail("guest@example.com", "invite").await;
    let mail = mail.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=");
    let at = mail.find("/invites/").expect("an invite link");
    let path: String = mail[at..].chars().take_while(|c| !c.is_whitespace() && *c != '"').collect();
    let bob_cookie = app.web_login(&bob).await;
    let (status, html) = page(&app, &bob_cookie, &path).await;
    assert_eq!(status, 200);
    assert!(html.contains("Accept invitation"), "{html}");
    let csrf = csrf_of(&html);
    let resp = client()
        .post(app.url(&format!("/api{}/accept", path.replacen("/invites", "/v1/invites", 1))))
        .header("cookie", &bob_cookie)
        .header("x-csrf-token", &csrf)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap_or_default());
    let (_, html) = page(&app, &bob_cookie, "/team").await;
    assert!(html.contains("data-workspace-switch"), "two workspaces: a switcher");
    // Switch to Alice's workspace: pages now show it; a workspace Bob is not in is refused.
    let resp = client()
        .post(app.url("/web/workspace"))
        .header("cookie", &bob_cookie)
        .header("x-csrf-token", &csrf)
        .json(&json!({"workspace_id": alice.workspace_id}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 204);
    let ws_cookie = resp
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .unwrap()
        .to_owned();
    let both = format!("{bob_cookie}; {ws_cookie}");
    let (_, html) = page(&app, &both, "/settings").await;
    assert!(html.contains("owner@example.com"), "Alice's workspace members are shown");
    // A remembered workspace the person is not (or no longer) in falls back to their own.
    let stale = format!("{bob_cookie}; ef_ws=ws_01a2020200000000000000000000000");
    let (status, html) = page(&app, &stale, "/settings").await;
    assert_eq!(status, 200);
    assert!(html.contains("guest@example.com Co"), "Bob's own workspace is shown");
    let resp = client()
        .post(app.url("/web/workspace"))
        .header("cookie", &bob_cookie)
        .header("x-csrf-token", &csrf)
        .json(&json!({"workspace_id": "ws_01a2020200000000000000000000000"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
    app.stop().await;
}
