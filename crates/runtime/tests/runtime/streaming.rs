//! Plain answers: streamed deltas, terminal events, outcome, usage and trace.

use std::time::Duration;

use fakellm::Reply;
use llm::Message;
use runtime::{RunEvent, RunStatus, StepKind};

use crate::kit::{deltas, input, kit, names, run};

#[tokio::test]
async fn a_plain_answer_is_streamed_in_deltas_and_completes() {
    let kit = kit().await;
    let answer = "Hello! How can I help you with your order today?";
    kit.fake.push(Reply::text(answer).in_chunks(5).with_usage(40, 12));
    let rt = kit.runtime();
    let agent = kit.agent();

    let (events, outcome) = run(&rt, input(&agent, "Hi there")).await;

    let n = names(&events);
    assert_eq!(n.first(), Some(&"run.started"));
    assert_eq!(n.last(), Some(&"run.completed"));
    assert_eq!(n[n.len() - 2], "message.completed");
    let parts = deltas(&events);
    assert_eq!(parts.len(), 5, "one event per streamed delta");
    assert_eq!(parts.concat(), answer);
    assert!(
        matches!(&events[n.len() - 2], RunEvent::MessageCompleted { content, .. } if content == answer)
    );
    assert_eq!(outcome.status, RunStatus::Completed);
    assert_eq!(outcome.text, answer);
    assert_eq!(outcome.messages, vec![Message::user("Hi there"), Message::assistant(answer)]);
    assert_eq!((outcome.usage.prompt_tokens, outcome.usage.completion_tokens), (40, 12));
    assert_eq!(outcome.usage.model_calls, 1);
    assert_eq!(outcome.model.as_deref(), Some("fake-model"));
    assert!(outcome.trace.iter().any(|s| matches!(&s.kind,
        StepKind::ModelCall { model, prompt_tokens: 40, completion_tokens: 12, error: None, first_token_ms: Some(_), .. }
        if model == "fake-model")));
}

#[tokio::test]
async fn deltas_arrive_while_the_model_is_still_answering() {
    let kit = kit().await;
    kit.fake.push(
        Reply::text("one two three four").in_chunks(4).chunk_delay(Duration::from_millis(300)),
    );
    let rt = kit.runtime();
    let mut handle = rt.run(input(&kit.agent(), "count"));

    let mut first_delta = None;
    while let Some(e) = handle.events.recv().await {
        if let RunEvent::MessageDelta { delta } = e {
            first_delta = Some(delta);
            break;
        }
    }
    // Three more deltas are 900 ms away: the run must not be over yet.
    assert_eq!(first_delta.as_deref(), Some("one t"), "18 characters in 4 deltas of 5");
    assert!(!handle.outcome.is_finished(), "the first delta came before the answer was complete");
    let (_, outcome) = handle.collect().await;
    assert_eq!(outcome.text, "one two three four");
}

#[tokio::test]
async fn events_serialise_with_their_sse_names_as_type() {
    let kit = kit().await;
    kit.fake.push(Reply::text("ok"));
    let (events, _) = run(&kit.runtime(), input(&kit.agent(), "hi")).await;
    for e in &events {
        let v = serde_json::to_value(e).unwrap();
        assert_eq!(v["type"], e.name(), "{v}");
        let back: RunEvent = serde_json::from_value(v).unwrap();
        assert_eq!(&back, e);
    }
    let completed = serde_json::to_value(events.last().unwrap()).unwrap();
    assert_eq!(completed["status"], "completed");
    assert_eq!(completed["usage"]["model_calls"], 1);
}

#[tokio::test]
async fn a_byok_key_is_sent_to_the_provider() {
    let kit = kit().await;
    kit.fake.push(Reply::text("ok"));
    let mut i = input(&kit.agent(), "hi");
    i.api_key = Some("sk-user-own-key".to_owned().into());
    let (_, outcome) = run(&kit.runtime(), i).await;
    assert_eq!(outcome.status, RunStatus::Completed);
    let req = &kit.fake.requests()[0];
    assert_eq!(req.header("authorization"), Some("Bearer sk-user-own-key"));
}
