//! A client that goes away mid-stream: the run finishes in the background, its answer is
//! stored, and its trace records the disconnect (a `client_disconnected` step saying the run
//! continued).

use std::time::Duration;

use fakellm::{FakeLlm, Reply};
use serde_json::{Value, json};
use testkit::{AgentSpec, Options, spawn_app_with};

#[tokio::test]
async fn a_client_leaving_mid_stream_is_traced_and_the_run_finishes() {
    let fake = FakeLlm::start().await;
    let app =
        spawn_app_with(Options { llm_base_url: Some(fake.base_url.clone()), ..Options::default() })
            .await;
    let s = app.signed_up("gone@example.com").await;
    let agent = app.create_agent(&s.workspace_id, "Sam", "sam", AgentSpec::default()).await;
    let t = s.access_token.as_str();
    fake.push(
        Reply::text("one two three four five six seven eight")
            .in_chunks(8)
            .chunk_delay(Duration::from_millis(100)),
    );
    let mut resp = app
        .client
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(t)
        .json(&json!({"model": "sam", "stream": true,
            "messages": [{"role": "user", "content": "Count slowly"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let first = resp.chunk().await.unwrap().expect("a first chunk");
    assert!(String::from_utf8_lossy(&first).contains("data: "));
    drop(resp); // the client goes away while the model is still answering

    let mut run = Value::Null;
    for _ in 0..100 {
        let runs: Value =
            app.get(&format!("/api/v1/runs?agent_id={agent}"), Some(t)).await.json().await.unwrap();
        // Listed as `running` from its start; wait for it to end.
        if let Some(r) = runs["data"].as_array().and_then(|d| d.first())
            && r["status"] != "running"
        {
            run = app
                .get(&format!("/api/v1/runs/{}", r["id"].as_str().unwrap()), Some(t))
                .await
                .json()
                .await
                .unwrap();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(run["status"], "completed", "the run finished in the background: {run}");
    let steps = run["steps"].as_array().unwrap();
    let gone: Vec<&Value> = steps.iter().filter(|s| s["name"] == "client_disconnected").collect();
    assert_eq!(gone.len(), 1, "the trace records the disconnect once: {steps:?}");
    assert_eq!(gone[0]["output"]["continued"], true);

    // The whole answer was stored although the client never read it.
    let conv = run["conversation_id"].as_str().unwrap();
    let c: Value =
        app.get(&format!("/api/v1/conversations/{conv}"), Some(t)).await.json().await.unwrap();
    let last = c["messages"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["role"], "assistant");
    assert!(last["content"].as_str().unwrap().contains("seven eight"), "{last}");
}
