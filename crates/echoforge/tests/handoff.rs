//! Live human handoff end to end: a real server on port 0, a scripted fake LLM, the REST API,
//! the widget and the live streams. Each transition (bot → waiting → human → bot | closed),
//! the bot silent while people answer, triggers without a model run, operator replies on the
//! customer's stream, concurrent claims with one winner, and another workspace finding
//! nothing.

use std::time::Duration;

use fakellm::{FakeLlm, Reply};
use serde_json::{Value, json};
use testkit::{AgentSpec, Options, Session, TestApp, spawn_app_with};

const SHOP: &str = "https://shop.example";
const VISITOR: &str = "v_handoff_visitor_0123456789";

async fn body(resp: reqwest::Response) -> Value {
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("a JSON body ({status}): {e}: {text}"))
}

async fn start(fake: &FakeLlm, config: Value) -> (TestApp, Session, String) {
    start_with_webhooks(fake, config, false).await
}

fn shop_config() -> Value {
    json!({
        "allowed_domains": ["shop.example"],
        "fallback_message": "A colleague will be with you shortly.",
        "triggers": {"keywords": ["refund"], "explicit_request": true},
    })
}

async fn chat(app: &TestApp, s: &Session, agent: &str, message: &str, conv: Option<&str>) -> Value {
    let mut b = json!({"message": message});
    if let Some(c) = conv {
        b["conversation_id"] = json!(c);
    }
    let r = app.post(&format!("/api/v1/agents/{agent}/chat"), Some(&s.access_token), b).await;
    assert_eq!(r.status(), 200, "chat");
    body(r).await
}

async fn state_of(app: &TestApp, s: &Session, conv: &str) -> Value {
    let c =
        body(app.get(&format!("/api/v1/conversations/{conv}"), Some(&s.access_token)).await).await;
    c["handoff_state"].clone()
}

async fn open_handoffs(app: &TestApp, token: &str) -> Vec<Value> {
    let list = body(app.get("/api/v1/handoffs", Some(token)).await).await;
    list["data"].as_array().unwrap_or_else(|| panic!("{list}")).clone()
}

async fn act(app: &TestApp, token: &str, handoff: &str, what: &str) -> reqwest::Response {
    app.post(&format!("/api/v1/handoffs/{handoff}/{what}"), Some(token), json!({})).await
}

/// Reads Server-Sent Events from a streaming response.
struct Events {
    resp: reqwest::Response,
    buf: String,
}

impl Events {
    async fn open(req: reqwest::RequestBuilder) -> Self {
        let resp = req.header("accept", "text/event-stream").send().await.unwrap();
        assert_eq!(resp.status(), 200, "stream");
        let ct = resp.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ct.starts_with("text/event-stream"), "{ct}");
        Self { resp, buf: String::new() }
    }

    /// The next event (name, data), skipping heartbeats; fails after 5 s.
    async fn next(&mut self) -> (String, Value) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        loop {
            if let Some(end) = self.buf.find("\n\n") {
                let block: String = self.buf.drain(..end + 2).collect();
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
                    return (n, serde_json::from_str(&data).expect("data is JSON"));
                }
                continue;
            }
            let chunk = tokio::time::timeout_at(deadline, self.resp.chunk())
                .await
                .expect("an event within 5 s")
                .unwrap()
                .expect("the stream is still open");
            self.buf.push_str(&String::from_utf8_lossy(&chunk));
        }
    }

    /// The next event named `name`, skipping others.
    async fn next_named(&mut self, name: &str) -> Value {
        loop {
            let (n, data) = self.next().await;
            if n == name {
                return data;
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handoff_goes_bot_waiting_human_bot_and_the_bot_is_silent_while_people_answer() {
    let fake = FakeLlm::start().await;
    let (app, s, agent) = start(&fake, shop_config()).await;
    // The model escalates with the tool.
    fake.push(Reply::tool_call("escalate_to_human", r#"{"reason":"wants to change a booking"}"#));
    fake.push(Reply::text("A person will help you."));
    let first = chat(&app, &s, &agent, "I need to change my booking", None).await;
    let conv = first["conversation_id"].as_str().unwrap().to_owned();
    assert_eq!(state_of(&app, &s, &conv).await, "waiting");
    let open = open_handoffs(&app, &s.access_token).await;
    assert_eq!(open.len(), 1, "{open:?}");
    let h = open[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        (&open[0]["status"], &open[0]["queue_position"], &open[0]["conversation"]["id"]),
        (&json!("waiting"), &json!(1), &json!(conv))
    );
    let calls = fake.request_count();

    // Waiting: the customer's message is kept, no model run, the fallback with the place.
    let waiting = chat(&app, &s, &agent, "Are you there?", Some(&conv)).await;
    assert_eq!(
        waiting["message"],
        "A colleague will be with you shortly. You are next in the queue."
    );
    assert_eq!(fake.request_count(), calls, "no model call while waiting");

    // Claimed: the bot is silent.
    let claimed = act(&app, &s.access_token, &h, "claim").await;
    assert_eq!(claimed.status(), 200);
    let claimed = body(claimed).await;
    assert_eq!(
        (&claimed["status"], &claimed["assignee"]["name"]),
        (&json!("human"), &json!("Test User"))
    );
    assert_eq!(state_of(&app, &s, &conv).await, "human");
    let silent = chat(&app, &s, &agent, "Hello?", Some(&conv)).await;
    assert_eq!(silent["message"], "");
    assert_eq!(fake.request_count(), calls, "no model call while a person answers");

    // The operator writes; the customer reads it on the conversation.
    let r = app
        .post(
            &format!("/api/v1/handoffs/{h}/messages"),
            Some(&s.access_token),
            json!({"content": "Hi, Test here. Which booking?"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let m = body(r).await;
    assert_eq!((&m["role"], &m["author"]), (&json!("human_agent"), &json!("Test User")));
    let note = app
        .post(
            &format!("/api/v1/handoffs/{h}/notes"),
            Some(&s.access_token),
            json!({"body": "regular customer"}),
        )
        .await;
    assert_eq!(note.status(), 201);
    let c =
        body(app.get(&format!("/api/v1/conversations/{conv}"), Some(&s.access_token)).await).await;
    let said: Vec<(String, String)> = c["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "user" || m["role"] == "human_agent")
        .map(|m| {
            (m["role"].as_str().unwrap().to_owned(), m["content"].as_str().unwrap().to_owned())
        })
        .collect();
    let pairs = |v: &[(&str, &str)]| {
        v.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect::<Vec<_>>()
    };
    assert_eq!(
        said,
        pairs(&[
            ("user", "I need to change my booking"),
            ("user", "Are you there?"),
            ("user", "Hello?"),
            ("human_agent", "Hi, Test here. Which booking?"),
        ])
    );
    assert!(!c.to_string().contains("regular customer"), "notes are not on the conversation");

    // The handoff's record: each transition and message with who and when.
    let d = body(app.get(&format!("/api/v1/handoffs/{h}"), Some(&s.access_token)).await).await;
    let kinds: Vec<&str> =
        d["events"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["requested", "claimed", "message", "note"]);
    assert_eq!(d["events"][0]["actor"]["kind"], "agent");
    assert_eq!(d["events"][1]["actor"]["name"], "Test User");
    assert!(d["events"][1]["created_at"].as_i64().unwrap() > 0);
    assert_eq!(d["messages"].as_array().unwrap().last().unwrap()["author"], "Test User");

    // Back to the bot: it answers again, and the handoff cannot be claimed any more.
    let back = act(&app, &s.access_token, &h, "return").await;
    assert_eq!(back.status(), 200);
    assert_eq!(state_of(&app, &s, &conv).await, "bot");
    fake.push(Reply::text("I am back. How can I help?"));
    let bot = chat(&app, &s, &agent, "Thanks!", Some(&conv)).await;
    assert_eq!(bot["message"], "I am back. How can I help?");
    assert_eq!(fake.request_count(), calls + 1);
    let again = act(&app, &s.access_token, &h, "claim").await;
    assert_eq!(again.status(), 409);
    assert_eq!(body(again).await["code"], "handoff_state");
    assert!(open_handoffs(&app, &s.access_token).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keywords_and_asking_for_a_person_hand_over_without_a_model_run_and_close_ends_it() {
    let fake = FakeLlm::start().await;
    let (app, s, agent) = start(&fake, shop_config()).await;
    let first = chat(&app, &s, &agent, "I want a REFUND.", None).await;
    assert_eq!(
        first["message"],
        "A colleague will be with you shortly. You are next in the queue."
    );
    let second = chat(&app, &s, &agent, "Can I talk to a human, please?", None).await;
    assert_eq!(
        second["message"],
        "A colleague will be with you shortly. You are number 2 in the queue."
    );
    assert_eq!(fake.request_count(), 0, "triggers need no model");
    let open = open_handoffs(&app, &s.access_token).await;
    let reasons: Vec<&str> = open.iter().map(|h| h["reason"].as_str().unwrap()).collect();
    assert_eq!(
        reasons,
        ["the customer's message has the keyword \"refund\"", "the customer asked for a person"]
    );
    // Closing the first moves the second up; the closed one's next message goes to the bot.
    let h1 = open[0]["id"].as_str().unwrap();
    let conv1 = first["conversation_id"].as_str().unwrap();
    assert_eq!(act(&app, &s.access_token, h1, "close").await.status(), 200);
    assert_eq!(state_of(&app, &s, conv1).await, "closed");
    assert_eq!(open_handoffs(&app, &s.access_token).await[0]["queue_position"], 1);
    assert_eq!(act(&app, &s.access_token, h1, "return").await.status(), 409);
    fake.push(Reply::text("Anything else?"));
    let after = chat(&app, &s, &agent, "ok thanks", Some(conv1)).await;
    assert_eq!(after["message"], "Anything else?");

    // An agent without the escalation capability never hands over by itself.
    let plain = app.create_agent(&s.workspace_id, "Plain", "plain", AgentSpec::default()).await;
    fake.push(Reply::text("I am a bot."));
    let r = chat(&app, &s, &plain, "Can I talk to a human?", None).await;
    assert_eq!(r["message"], "I am a bot.");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_replies_reach_the_widget_visitor_live_and_the_inbox_hears_the_visitor() {
    let fake = FakeLlm::start().await;
    let (app, s, agent) = start(&fake, shop_config()).await;
    let public_id = body(app.get(&format!("/api/v1/agents/{agent}"), Some(&s.access_token)).await)
        .await["public_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let widget = |path: &str| format!("/api/v1/widget/{public_id}{path}");
    let mut inbox = Events::open(
        app.client.get(app.url("/api/v1/handoffs/stream")).bearer_auth(&s.access_token),
    )
    .await;
    // The visitor asks for a person through the widget.
    let r = app
        .client
        .post(app.url(&widget("/chat")))
        .header("origin", SHOP)
        .header("echoforge-visitor", VISITOR)
        .json(&json!({"message": "I'd like to speak to a human"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let conv = body(r).await["conversation_id"].as_str().unwrap().to_owned();
    let escalated = inbox.next_named("handoff.state").await;
    assert_eq!(
        (&escalated["state"], &escalated["conversation_id"]),
        (&json!("waiting"), &json!(conv))
    );
    let h = escalated["handoff_id"].as_str().unwrap().to_owned();

    let mut visitor = Events::open(
        app.client
            .get(app.url(&widget(&format!("/conversations/{conv}/events"))))
            .header("origin", SHOP)
            .header("echoforge-visitor", VISITOR),
    )
    .await;
    let now = visitor.next_named("handoff.state").await;
    assert_eq!((&now["state"], &now["queue_position"]), (&json!("waiting"), &json!(1)));

    assert_eq!(act(&app, &s.access_token, &h, "claim").await.status(), 200);
    let claimed = visitor.next_named("handoff.state").await;
    assert_eq!((&claimed["state"], &claimed["operator"]), (&json!("human"), &json!("Test User")));
    let r = app
        .post(
            &format!("/api/v1/handoffs/{h}/messages"),
            Some(&s.access_token),
            json!({"content": "Hello, how can I help?"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let reply = visitor.next_named("message").await;
    assert_eq!(
        (&reply["message"]["role"], &reply["message"]["author"], &reply["message"]["content"]),
        (&json!("human_agent"), &json!("Test User"), &json!("Hello, how can I help?"))
    );
    // A note stays off the visitor's stream; the visitor's next message reaches the inbox.
    let note = app
        .post(
            &format!("/api/v1/handoffs/{h}/notes"),
            Some(&s.access_token),
            json!({"body": "internal only"}),
        )
        .await;
    assert_eq!(note.status(), 201);
    let r = app
        .client
        .post(app.url(&widget("/chat")))
        .header("origin", SHOP)
        .header("echoforge-visitor", VISITOR)
        .json(&json!({"message": "My order is 1234", "conversation_id": conv}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The inbox heard every message on the conversation, in order.
    let mut heard = Vec::new();
    while heard.last().map(|(_, c): &(Value, Value)| c.clone()) != Some(json!("My order is 1234")) {
        let m = inbox.next_named("message").await;
        heard.push((m["message"]["role"].clone(), m["message"]["content"].clone()));
    }
    assert_eq!(
        heard,
        [
            (json!("user"), json!("I'd like to speak to a human")),
            (json!("human_agent"), json!("Hello, how can I help?")),
            (json!("user"), json!("My order is 1234")),
        ]
    );
    let echoed = visitor.next_named("message").await;
    assert_eq!(echoed["message"]["content"], "My order is 1234", "the note never came first");
    assert_eq!(fake.request_count(), 0);
    // The widget's history shows the operator by name.
    let history = body(
        app.client
            .get(app.url(&widget(&format!("/conversations/{conv}"))))
            .header("origin", SHOP)
            .header("echoforge-visitor", VISITOR)
            .send()
            .await
            .unwrap(),
    )
    .await;
    let op = history["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["role"] == "human_agent")
        .cloned();
    assert_eq!(op.map(|m| m["author"].clone()), Some(json!("Test User")));
    // Returned: the visitor hears it.
    assert_eq!(act(&app, &s.access_token, &h, "return").await.status(), 200);
    assert_eq!(visitor.next_named("handoff.state").await["state"], "bot");
    // Over the API, the same conversation's state as JSON without `Accept: text/event-stream`.
    let now =
        body(app.get(&format!("/api/v1/conversations/{conv}/events"), Some(&s.access_token)).await)
            .await;
    assert_eq!(now["state"], "bot");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn of_concurrent_claims_exactly_one_wins_and_the_others_get_409() {
    let fake = FakeLlm::start().await;
    let (app, s, agent) = start(&fake, shop_config()).await;
    chat(&app, &s, &agent, "refund please", None).await;
    let h = open_handoffs(&app, &s.access_token).await[0]["id"].as_str().unwrap().to_owned();
    let key = app.create_key(&s.workspace_id, None, &["read", "chat"]).await;
    let claims = (0..12).map(|i| {
        let token = if i % 2 == 0 { s.access_token.clone() } else { key.clone() };
        let req = app
            .client
            .post(app.url(&format!("/api/v1/handoffs/{h}/claim")))
            .bearer_auth(token)
            .json(&json!({}));
        async move { req.send().await.unwrap().status().as_u16() }
    });
    let mut statuses = futures::future::join_all(claims).await;
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 409, 409, 409, 409, 409, 409, 409, 409, 409, 409, 409]);
    let d = body(app.get(&format!("/api/v1/handoffs/{h}"), Some(&s.access_token)).await).await;
    let claimed = d["events"].as_array().unwrap().iter().filter(|e| e["kind"] == "claimed").count();
    assert_eq!((claimed, &d["status"]), (1, &json!("human")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_workspace_finds_no_handoff_and_agent_keys_are_not_operators() {
    let fake = FakeLlm::start().await;
    let (app, s, agent) = start(&fake, shop_config()).await;
    let first = chat(&app, &s, &agent, "refund please", None).await;
    let conv = first["conversation_id"].as_str().unwrap().to_owned();
    let h = open_handoffs(&app, &s.access_token).await[0]["id"].as_str().unwrap().to_owned();
    let b = app.signed_up("other@example.com").await;
    let t = Some(b.access_token.as_str());
    assert!(open_handoffs(&app, &b.access_token).await.is_empty());
    assert_eq!(app.get(&format!("/api/v1/handoffs/{h}"), t).await.status(), 404);
    for what in ["claim", "return", "close"] {
        assert_eq!(act(&app, &b.access_token, &h, what).await.status(), 404, "{what}");
    }
    let m = app.post(&format!("/api/v1/handoffs/{h}/messages"), t, json!({"content": "hi"})).await;
    assert_eq!(m.status(), 404);
    let n = app.post(&format!("/api/v1/handoffs/{h}/notes"), t, json!({"body": "hi"})).await;
    assert_eq!(n.status(), 404);
    assert_eq!(app.get(&format!("/api/v1/conversations/{conv}/events"), t).await.status(), 404);
    // An agent key speaks for the agent's customers, not for the business's people.
    let agent_key = app.create_key(&s.workspace_id, Some(&agent), &["chat"]).await;
    let r = act(&app, &agent_key, &h, "claim").await;
    assert_eq!(r.status(), 403);
    assert_eq!(app.get("/api/v1/handoffs", Some(&agent_key)).await.status(), 403);
    // A still waits, untouched.
    let d = body(app.get(&format!("/api/v1/handoffs/{h}"), Some(&s.access_token)).await).await;
    assert_eq!((&d["status"], d["events"].as_array().unwrap().len()), (&json!("waiting"), 1));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_that_did_not_help_n_times_in_a_row_hand_over_before_the_next_one() {
    let fake = FakeLlm::start().await;
    let mut config = shop_config();
    config["triggers"]["unanswered_threshold"] = json!(2);
    let (app, s, agent) = start(&fake, config).await;
    fake.push(Reply::text("Sorry, I don't know that."));
    let first = chat(&app, &s, &agent, "Where is my parcel?", None).await;
    let conv = first["conversation_id"].as_str().unwrap().to_owned();
    fake.push(Reply::text("I'm not sure, I couldn't find it in the documentation."));
    chat(&app, &s, &agent, "It was sent on Monday", Some(&conv)).await;
    assert_eq!(state_of(&app, &s, &conv).await, "bot", "two answers, no handoff yet");
    let third = chat(&app, &s, &agent, "Hello??", Some(&conv)).await;
    assert_eq!(
        third["message"],
        "A colleague will be with you shortly. You are next in the queue."
    );
    assert_eq!(fake.request_count(), 2, "no third model call");
    assert_eq!(state_of(&app, &s, &conv).await, "waiting");
    let open = open_handoffs(&app, &s.access_token).await;
    assert_eq!(open[0]["reason"], "2 answers in a row did not help the customer");
}

async fn web_page(app: &TestApp, cookie: &str, path: &str) -> (u16, String) {
    let resp = app.client.get(app.url(path)).header("cookie", cookie).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.text().await.unwrap().replace("&#x2f;", "/").replace("&#x27;", "'"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_inbox_pages_show_the_queue_and_the_transcript_to_the_workspace_only() {
    let fake = FakeLlm::start().await;
    let (app, s, agent) = start(&fake, shop_config()).await;
    chat(&app, &s, &agent, "Where is my refund?", None).await;
    let h = open_handoffs(&app, &s.access_token).await[0]["id"].as_str().unwrap().to_owned();
    let cookie = app.web_login(&s).await;
    let (status, html) = web_page(&app, &cookie, "/inbox").await;
    assert_eq!(status, 200);
    assert!(html.contains("Waiting (1)") && html.contains(&format!("/inbox/{h}")), "{html}");
    assert!(html.contains(&format!("/api/v1/handoffs/{h}/claim")), "a claim button");
    let (status, html) = web_page(&app, &cookie, &format!("/inbox/{h}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("Where is my refund?"), "the transcript: {html}");
    assert!(html.contains("requested"), "the events");
    let other = app.signed_up("other@example.com").await;
    let other_cookie = app.web_login(&other).await;
    assert_eq!(web_page(&app, &other_cookie, &format!("/inbox/{h}")).await.0, 404);
    let (_, theirs) = web_page(&app, &other_cookie, "/inbox").await;
    assert!(theirs.contains("Waiting (0)") && !theirs.contains(&h));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_furious_message_hands_over_without_a_model_run_and_a_calm_one_is_answered() {
    let fake = FakeLlm::start().await;
    let (app, s, agent) = start(&fake, shop_config()).await;
    fake.push(Reply::text("You can reset your password from the login page."));
    let calm = chat(&app, &s, &agent, "I can't log in, the error says failed", None).await;
    assert_eq!(calm["message"], "You can reset your password from the login page.");
    let calm_conv = calm["conversation_id"].as_str().unwrap().to_owned();
    assert_eq!(state_of(&app, &s, &calm_conv).await, "bot");

    let angry = "This is useless, I'm furious, worst service ever";
    let r = chat(&app, &s, &agent, angry, None).await;
    assert_eq!(r["message"], "A colleague will be with you shortly. You are next in the queue.");
    assert_eq!(fake.request_count(), 1, "no model call for the furious message");
    let conv = r["conversation_id"].as_str().unwrap().to_owned();
    assert_eq!(state_of(&app, &s, &conv).await, "waiting");
    let open = open_handoffs(&app, &s.access_token).await;
    let reason = open[0]["reason"].as_str().unwrap();
    assert!(reason.starts_with("the customer's message is very negative (score -0."), "{reason}");

    // `sentiment_negative: false` turns it off.
    let mut config = shop_config();
    config["triggers"]["sentiment_negative"] = json!(false);
    let spec = AgentSpec {
        capabilities: vec!["escalation".into(), "widget".into()],
        config: Some(config),
        ..AgentSpec::default()
    };
    let kim = app.create_agent(&s.workspace_id, "Kim", "kim", spec).await;
    fake.push(Reply::text("I am sorry to hear that. What went wrong?"));
    let r = chat(&app, &s, &kim, angry, None).await;
    assert_eq!(r["message"], "I am sorry to hear that. What went wrong?");
    let conv = r["conversation_id"].as_str().unwrap().to_owned();
    assert_eq!(state_of(&app, &s, &conv).await, "bot");
}

/// What a webhook receiver in a test saw: each request's headers and body.
type Seen = std::sync::Arc<std::sync::Mutex<Vec<(axum::http::HeaderMap, Vec<u8>)>>>;

/// A webhook receiver on 127.0.0.1 that answers 500 to the first `fail_first` requests, then
/// 200. Returns its URL and what it saw.
async fn receiver(fail_first: usize) -> (String, Seen) {
    let seen: Seen = Default::default();
    let state = seen.clone();
    let hook =
        axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let state = state.clone();
            async move {
                let n = {
                    let mut seen = state.lock().unwrap();
                    seen.push((headers, body.to_vec()));
                    seen.len()
                };
                if n <= fail_first {
                    axum::http::StatusCode::INTERNAL_SERVER_ERROR
                } else {
                    axum::http::StatusCode::OK
                }
            }
        });
    let router = axum::Router::new().route("/hook", hook);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    (format!("http://{addr}/hook"), seen)
}

/// Waits (up to `secs`) until the receiver saw `n` requests.
async fn seen_at_least(seen: &Seen, n: usize, secs: u64) -> Vec<(axum::http::HeaderMap, Vec<u8>)> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let now = seen.lock().unwrap().clone();
        if now.len() >= n {
            return now;
        }
        assert!(tokio::time::Instant::now() < deadline, "{} requests, not {n}", now.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A receiver's check of `EchoForge-Signature: t=…,v1=…`, written from the docs.
fn signature_verifies(secret: &str, header: &str, body: &[u8]) -> bool {
    use hmac::{Hmac, Mac};
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", v)) => t = Some(v),
            Some(("v1", v)) => v1 = Some(v),
            _ => {}
        }
    }
    let (Some(t), Some(v1)) = (t, v1) else { return false };
    let Ok(expected) = hex::decode(v1) else { return false };
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(format!("{t}.").as_bytes());
    mac.update(body);
    mac.verify_slice(&expected).is_ok()
}

async fn start_with_webhooks(
    fake: &FakeLlm,
    config: Value,
    allow_private: bool,
) -> (TestApp, Session, String) {
    let tweak: testkit::SettingsTweak =
        std::sync::Arc::new(move |s| s.handoff.allow_private_webhooks = allow_private);
    let app = spawn_app_with(Options {
        llm_base_url: Some(fake.base_url.clone()),
        tweak: Some(tweak),
        ..Options::default()
    })
    .await;
    let s = app.signed_up("owner@example.com").await;
    let spec = AgentSpec {
        capabilities: vec!["escalation".into(), "widget".into()],
        config: Some(config),
        ..AgentSpec::default()
    };
    let agent = app.create_agent(&s.workspace_id, "Sam", "sam", spec).await;
    (app, s, agent)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_handoff_is_posted_to_the_webhook_signed_with_the_workspace_secret_and_retried() {
    let fake = FakeLlm::start().await;
    let (url, seen) = receiver(1).await;
    let mut config = shop_config();
    config["handoff_config"] = json!({"method": "webhook", "webhook_url": url});
    let (app, s, agent) = start_with_webhooks(&fake, config, true).await;
    let secret =
        body(app.get("/api/v1/handoffs/webhook-secret", Some(&s.access_token)).await).await;
    let secret = secret["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_") && secret.len() == 6 + 64, "{secret}");

    fake.push(Reply::text("Orders ship in two days."));
    let first = chat(&app, &s, &agent, "When do orders ship?", None).await;
    let conv = first["conversation_id"].as_str().unwrap().to_owned();
    chat(&app, &s, &agent, "I want a refund", Some(&conv)).await;
    let h = open_handoffs(&app, &s.access_token).await[0]["id"].as_str().unwrap().to_owned();

    // The first delivery gets a 500; the queue retries it (after about 2 s).
    let got = seen_at_least(&seen, 2, 20).await;
    let (headers, raw) = &got[1];
    assert_eq!(headers["echoforge-event"], "handoff.created");
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["echoforge-delivery"], got[0].0["echoforge-delivery"], "one delivery id");
    let signature = headers["echoforge-signature"].to_str().unwrap();
    assert!(signature_verifies(&secret, signature, raw), "{signature}");
    let mut tampered = raw.clone();
    tampered.extend_from_slice(b" ");
    assert!(!signature_verifies(&secret, signature, &tampered), "a changed body fails");
    assert!(!signature_verifies("whsec_wrong", signature, raw), "another secret fails");

    let hook: Value = serde_json::from_slice(raw).unwrap();
    assert_eq!(
        (&hook["event"], &hook["handoff"]["id"], &hook["handoff"]["reason"]),
        (
            &json!("handoff.created"),
            &json!(h),
            &json!("the customer's message has the keyword \"refund\"")
        )
    );
    assert_eq!((&hook["conversation"]["id"], &hook["agent"]["id"]), (&json!(conv), &json!(agent)));
    assert_eq!(hook["agent"]["name"], "Sam");
    let said = testkit::roles_and_contents(&hook["transcript"]);
    assert_eq!(
        said,
        [
            ("user", "When do orders ship?"),
            ("assistant", "Orders ship in two days."),
            ("user", "I want a refund"),
        ]
    );
    assert!(hook["transcript"][0]["created_at"].as_i64().unwrap() > 0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(seen.lock().unwrap().len(), 2, "delivered once it got a 200");

    // Only owners, admins and workspace keys with `admin` read the secret; each workspace
    // has its own.
    let agent_key = app.create_key(&s.workspace_id, Some(&agent), &["chat"]).await;
    let r = app.get("/api/v1/handoffs/webhook-secret", Some(&agent_key)).await;
    assert_eq!(r.status(), 403);
    let chat_key = app.create_key(&s.workspace_id, None, &["read", "chat"]).await;
    assert_eq!(app.get("/api/v1/handoffs/webhook-secret", Some(&chat_key)).await.status(), 403);
    let b = app.signed_up("other@example.com").await;
    let theirs =
        body(app.get("/api/v1/handoffs/webhook-secret", Some(&b.access_token)).await).await;
    assert_ne!(theirs["secret"].as_str().unwrap(), secret);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_webhook_on_loopback_is_refused_by_default_and_the_failure_is_noted_on_the_handoff() {
    let fake = FakeLlm::start().await;
    let (url, seen) = receiver(0).await;
    let mut config = shop_config();
    config["handoff_config"] = json!({"method": "webhook", "webhook_url": url});
    let (app, s, agent) = start_with_webhooks(&fake, config, false).await;
    chat(&app, &s, &agent, "refund please", None).await;
    let h = open_handoffs(&app, &s.access_token).await[0]["id"].as_str().unwrap().to_owned();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let note = loop {
        let d = body(app.get(&format!("/api/v1/handoffs/{h}"), Some(&s.access_token)).await).await;
        let note = d["events"].as_array().unwrap().iter().find(|e| e["kind"] == "note").cloned();
        if let Some(n) = note {
            break n;
        }
        assert!(tokio::time::Instant::now() < deadline, "no note about the failed delivery");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let text = note["body"].as_str().unwrap();
    assert!(text.starts_with("The handoff could not be delivered by webhook"), "{text}");
    assert!(seen.lock().unwrap().is_empty(), "nothing reached the loopback receiver");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_handoff_is_mailed_to_the_team_address_with_the_reason_link_and_transcript() {
    let fake = FakeLlm::start().await;
    let mut config = shop_config();
    config["handoff_config"] = json!({"method": "email", "email": "team@shop.example"});
    let (app, s, agent) = start(&fake, config).await;
    let r = chat(&app, &s, &agent, "Can I talk to a human, please?", None).await;
    let conv = r["conversation_id"].as_str().unwrap().to_owned();
    let h = open_handoffs(&app, &s.access_token).await[0]["id"].as_str().unwrap().to_owned();
    let mail = app.wait_for_mail("team@shop.example", "Handoff: Sam needs a person").await;
    let text = mail.replace("=\r\n", "").replace("=\n", "").replace("=3D", "=");
    assert!(text.contains("Reason: the customer asked for a person"), "{text}");
    assert!(text.contains(&format!("{}/inbox/{h}", app.base)), "the inbox link: {text}");
    assert!(text.contains("Customer: Can I talk to a human, please?"), "the transcript: {text}");
    assert!(text.contains("Channel: "), "{text}");
    assert_eq!(state_of(&app, &s, &conv).await, "waiting");

    // The model's `escalate_to_human` tool reaches the target too; here without the
    // transcript: the reason and the link only.
    let mut config = shop_config();
    config["handoff_config"] =
        json!({"method": "email", "email": "desk@shop.example", "include_transcript": false});
    let spec = AgentSpec {
        capabilities: vec!["escalation".into(), "widget".into()],
        config: Some(config),
        ..AgentSpec::default()
    };
    let kim = app.create_agent(&s.workspace_id, "Kim", "kim", spec).await;
    fake.push(Reply::tool_call("escalate_to_human", r#"{"reason":"wants to change a booking"}"#));
    fake.push(Reply::text("A person will help you."));
    chat(&app, &s, &kim, "I need to change my booking 4711", None).await;
    let mail = app.wait_for_mail("desk@shop.example", "Handoff: Kim needs a person").await;
    assert!(mail.contains("Reason: wants to change a booking"), "{mail}");
    assert!(!mail.contains("booking 4711"), "no transcript: {mail}");
}
