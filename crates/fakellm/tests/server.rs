//! The fake over real HTTP: wire framing, recording, the binary and instant mode, and the
//! official Python clients (`pip install openai anthropic`; set
//! `ECHOFORGE_SKIP_PYTHON_TESTS=1` to skip that one test explicitly).

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use fakellm::{FakeLlm, Mode, Reply};
use serde_json::{Value, json};

async fn post(url: &str, body: Value) -> (u16, String) {
    let resp = reqwest::Client::new().post(url).json(&body).send().await.unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

fn chat_body(stream: bool) -> Value {
    json!({"model": "m", "stream": stream, "stream_options": {"include_usage": true},
           "messages": [{"role": "user", "content": "ping"}]})
}

#[tokio::test]
async fn openai_streams_use_data_frames_and_end_with_done() {
    let fake = FakeLlm::start().await;
    fake.push(Reply::text("abcdef").in_chunks(3));
    let (status, body) =
        post(&format!("{}/chat/completions", fake.base_url), chat_body(true)).await;
    assert_eq!(status, 200);
    let frames: Vec<&str> = body.split("\n\n").filter(|f| !f.is_empty()).collect();
    assert!(frames.iter().all(|f| f.starts_with("data: ")), "{body}");
    assert_eq!(*frames.last().unwrap(), "data: [DONE]");
    let chunks: Vec<Value> = frames[..frames.len() - 1]
        .iter()
        .map(|f| serde_json::from_str(&f["data: ".len()..]).unwrap())
        .collect();
    let text: String =
        chunks.iter().filter_map(|c| c["choices"][0]["delta"]["content"].as_str()).collect();
    assert_eq!(text, "abcdef");
    let usage = chunks.last().unwrap();
    assert_eq!(usage["choices"], json!([]), "usage chunk has no choices");
    assert!(usage["usage"]["total_tokens"].as_u64().unwrap() > 0);
}

#[tokio::test]
async fn anthropic_streams_name_every_event() {
    let fake = FakeLlm::start().await;
    let body = json!({"model": "m", "max_tokens": 10, "stream": true,
                      "messages": [{"role": "user", "content": "ping"}]});
    let (status, text) = post(&format!("{}/v1/messages", fake.root_url), body).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("event: ")).collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(names.last(), Some(&"message_stop"));
    assert!(names.contains(&"content_block_delta") && names.contains(&"message_delta"));
    assert!(text.contains("Echo: ping"));
}

#[tokio::test]
async fn requests_are_recorded_with_headers_and_scripted_errors_carry_retry_after() {
    let fake = FakeLlm::start().await;
    fake.push(Reply::rate_limited(7));
    let resp = reqwest::Client::new()
        .post(format!("{}/chat/completions", fake.base_url))
        .header("authorization", "Bearer k1")
        .json(&chat_body(false))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    assert_eq!(resp.headers()["retry-after"], "7");
    let err: Value = resp.json().await.unwrap();
    assert_eq!(err["error"]["type"], json!("rate_limit_error"));
    let seen = fake.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].header("Authorization"), Some("Bearer k1"));
    assert_eq!(seen[0].model(), "m");
    assert_eq!(seen[0].messages()[0]["content"], json!("ping"));
    assert!(!seen[0].is_stream());
    assert_eq!(fake.pending(), 0);
}

#[tokio::test]
async fn a_body_that_is_not_json_gets_a_400() {
    let fake = FakeLlm::start().await;
    let resp = reqwest::Client::new()
        .post(format!("{}/chat/completions", fake.base_url))
        .body("{nope")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 400);
}

#[tokio::test]
async fn the_binary_prints_its_address_and_answers_instantly_without_recording() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fakellm"))
        .args(["--port", "0", "--mode", "instant"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn fakellm");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let root = line.trim().strip_prefix("listening on ").expect("address line").to_owned();
    let (status, body) = post(&format!("{root}/v1/chat/completions"), chat_body(false)).await;
    let (s_status, streamed) = post(&format!("{root}/v1/chat/completions"), chat_body(true)).await;
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!((status, s_status), (200, 200));
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], json!("OK."));
    assert!(streamed.ends_with("data: [DONE]\n\n"), "{streamed}");
}

#[tokio::test]
async fn instant_mode_in_process_serves_both_protocols() {
    let fake = FakeLlm::start_with(Mode::Instant).await;
    let (_, openai) = post(&format!("{}/chat/completions", fake.base_url), chat_body(false)).await;
    let body =
        json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]});
    let (_, anthropic) = post(&format!("{}/v1/messages", fake.root_url), body).await;
    assert_eq!(serde_json::from_str::<Value>(&openai).unwrap()["object"], json!("chat.completion"));
    assert_eq!(
        serde_json::from_str::<Value>(&anthropic).unwrap()["content"][0]["text"],
        json!("OK.")
    );
    assert_eq!(fake.request_count(), 0, "instant mode records nothing");
}

#[test]
fn the_binary_rejects_unknown_arguments() {
    let out = Command::new(env!("CARGO_BIN_EXE_fakellm")).arg("--bogus").output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("usage"));
}

#[tokio::test]
async fn the_official_python_clients_accept_the_fake() {
    if std::env::var("ECHOFORGE_SKIP_PYTHON_TESTS").is_ok_and(|v| v == "1") {
        eprintln!("skipped: ECHOFORGE_SKIP_PYTHON_TESTS=1");
        return;
    }
    let fake = FakeLlm::start().await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python_clients.py");
    let (base, root) = (fake.base_url.clone(), fake.root_url.clone());
    let out = tokio::task::spawn_blocking(move || {
        Command::new("python3").args([script, &base, &root]).output()
    })
    .await
    .unwrap()
    .expect("python3 must be installed (and: pip install openai anthropic)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python clients failed (needs `pip install openai anthropic`):\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("5 passed, 0 failed"), "{stdout}");
}

#[tokio::test]
async fn the_control_api_scripts_replies_and_returns_recorded_requests() {
    let fake = FakeLlm::start().await;
    let specs = json!([
        {"text": "scripted over http", "chunks": 2, "usage": [3, 4]},
        {"tool_calls": [{"name": "lookup", "arguments": {"id": 7}}], "text": "one sec"},
        {"error": {"status": 429, "retry_after": 2}},
    ]);
    let (status, body) = post(&format!("{}/_fakellm/replies", fake.root_url), specs).await;
    assert_eq!((status, body.as_str()), (200, r#"{"pending":3}"#));
    let url = format!("{}/chat/completions", fake.base_url);
    let (_, first) = post(&url, chat_body(false)).await;
    let first: Value = serde_json::from_str(&first).unwrap();
    assert_eq!(first["choices"][0]["message"]["content"], json!("scripted over http"));
    assert_eq!(first["usage"]["completion_tokens"], json!(4));
    let (_, second) = post(&url, chat_body(false)).await;
    let second: Value = serde_json::from_str(&second).unwrap();
    let call = &second["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["arguments"], json!(r#"{"id":7}"#));
    assert_eq!(post(&url, chat_body(false)).await.0, 429);

    let recorded: Value = reqwest::get(format!("{}/_fakellm/requests", fake.root_url))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(recorded.as_array().unwrap().len(), 3);
    assert_eq!(recorded[0]["body"]["messages"][0]["content"], json!("ping"));
    let resp = reqwest::Client::new()
        .post(format!("{}/_fakellm/reset", fake.root_url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 204);
    assert_eq!(fake.request_count(), 0);
}

#[tokio::test]
async fn the_control_api_refuses_ambiguous_or_unknown_specs() {
    let fake = FakeLlm::start().await;
    let url = format!("{}/_fakellm/replies", fake.root_url);
    assert_eq!(post(&url, json!([{"text": "a", "malformed": true}])).await.0, 422);
    assert_eq!(post(&url, json!([{"txt": "typo"}])).await.0, 422);
    assert_eq!(fake.pending(), 0);
}
