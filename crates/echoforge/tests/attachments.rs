//! What a chat message brings in: attached files (read by the extractors, given to the model in that turn and
//! later ones, shown, refused clearly when unreadable) and the message itself, stored before the run.

use base64::Engine as _;
use fakellm::{FakeLlm, Reply};
use serde_json::{Value, json};
use testkit::{AgentSpec, Options, Session, TestApp, spawn_app_with};

/// A server talking to a scripted fake model, a signed-in user and their agent `sam`.
async fn start(email: &str) -> (FakeLlm, TestApp, Session, String) {
    let fake = FakeLlm::start().await;
    let app =
        spawn_app_with(Options { llm_base_url: Some(fake.base_url.clone()), ..Options::default() })
            .await;
    let s = app.signed_up(email).await;
    let agent = app.create_agent(&s.workspace_id, "Sam", "sam", AgentSpec::default()).await;
    (fake, app, s, agent)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[tokio::test]
async fn attached_files_are_read_and_used_in_that_conversation() {
    let (fake, app, s, agent) = start("files@example.com").await;
    let t = Some(s.access_token.as_str());
    let path = format!("/api/v1/agents/{agent}/chat");

    fake.push(Reply::text("The invoice total is 1,250 EUR."));
    let notes = "# Invoice 2026-117\n\nTotal due: 1,250 EUR by 30 November.\n";
    let resp = app
        .post(&path, t, json!({"message": "What is the total?", "attachments": [{"filename": "invoice.md", "content_type": "text/markdown", "data": b64(notes.as_bytes())}]}))
        .await;
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap_or_default());
    let answer: Value = resp.json().await.unwrap();
    let conversation = answer["conversation_id"].as_str().unwrap().to_owned();
    let first = fake.requests().last().unwrap().body.to_string();
    assert!(
        first.contains("[Attached file: invoice.md]") && first.contains("Total due: 1,250 EUR"),
        "{first}"
    );

    // A later turn still has the file in its history.
    fake.push(Reply::text("By 30 November."));
    let resp = app
        .post(&path, t, json!({"message": "When is it due?", "conversation_id": conversation}))
        .await;
    assert_eq!(resp.status(), 200);
    let second = fake.requests().last().unwrap().body.to_string();
    assert!(second.contains("Total due: 1,250 EUR"), "the attachment stays in the conversation");

    // The conversation shows the file as an attachment of its own message.
    let detail: Value =
        app.get(&format!("/api/v1/conversations/{conversation}"), t).await.json().await.unwrap();
    let with_file: Vec<&Value> = detail["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["attachments"].as_array().is_some_and(|a| !a.is_empty()))
        .collect();
    assert_eq!(with_file.len(), 1, "{detail}");
    assert_eq!(with_file[0]["attachments"][0]["filename"], "invoice.md");
    assert_eq!(with_file[0]["attachments"][0]["truncated"], false);
    app.stop().await;
}

#[tokio::test]
async fn unreadable_attachments_are_refused_and_nothing_is_kept() {
    let (fake, app, s, agent) = start("badfiles@example.com").await;
    let t = Some(s.access_token.as_str());
    let path = format!("/api/v1/agents/{agent}/chat");
    let cases = [
        (
            json!([{"filename": "a.md", "data": "%%% not base64"}]),
            "/attachments/0/data",
            "invalid_base64",
        ),
        (
            json!([{"filename": "tool.exe", "data": b64(&[0x4d, 0x5a, 0x90, 0, 3, 0, 0, 0, 0xff, 0xfe])}]),
            "/attachments/0",
            "unsupported_type",
        ),
        (json!([{"filename": "empty.txt", "data": b64(b"   \n")}]), "/attachments/0", "unreadable"),
        (
            json!([{"filename": "broken.pdf", "content_type": "application/pdf", "data": b64(b"%PDF-1.7 this is not really a pdf")}]),
            "/attachments/0",
            "unreadable",
        ),
    ];
    for (files, pointer, code) in cases {
        let resp = app.post(&path, t, json!({"message": "Read this", "attachments": files})).await;
        assert_eq!(resp.status(), 422, "{code}");
        let problem: Value = resp.json().await.unwrap();
        assert_eq!(problem["errors"][0]["path"], pointer, "{problem}");
        assert_eq!(problem["errors"][0]["code"], code, "{problem}");
    }
    let six: Vec<Value> =
        (0..6).map(|i| json!({"filename": format!("{i}.txt"), "data": b64(b"hello")})).collect();
    let resp = app.post(&path, t, json!({"message": "Read these", "attachments": six})).await;
    assert_eq!(resp.status(), 422);
    let list: Value = app.get("/api/v1/conversations", t).await.json().await.unwrap();
    assert_eq!(list["data"], json!([]), "no conversation was started by refused messages");
    assert!(fake.requests().is_empty(), "the model was not called");
    app.stop().await;
}

#[tokio::test]
async fn the_message_is_stored_before_the_answer_so_a_crash_cannot_lose_it() {
    let (fake, app, s, agent) = start("durable@example.com").await;
    let t = s.access_token.clone();
    fake.push(Reply::text("Slow but sure.").delay(std::time::Duration::from_millis(1500)));
    let resp = app
        .client
        .post(app.url(&format!("/api/v1/agents/{agent}/chat")))
        .bearer_auth(&t)
        .header("accept", "text/event-stream")
        .json(&json!({"message": "Please remember this question"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let conversation = resp.headers()["x-conversation-id"].to_str().unwrap().to_owned();
    // While the model is still thinking, the question is already stored.
    let detail: Value = app
        .get(&format!("/api/v1/conversations/{conversation}"), Some(&t))
        .await
        .json()
        .await
        .unwrap();
    let users: Vec<&Value> =
        detail["messages"].as_array().unwrap().iter().filter(|m| m["role"] == "user").collect();
    assert_eq!(users.len(), 1, "{detail}");
    assert_eq!(users[0]["content"], "Please remember this question");
    let _ = resp.text().await.unwrap(); // the run finishes
    let detail: Value = app
        .get(&format!("/api/v1/conversations/{conversation}"), Some(&t))
        .await
        .json()
        .await
        .unwrap();
    let roles: Vec<&str> = detail["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant"], "stored once, answered once: {detail}");
    app.stop().await;
}
