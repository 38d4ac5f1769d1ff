//! Model failures end the run with `run.failed`; the messages stay consistent.

use fakellm::Reply;
use llm::Message;
use runtime::{RunEvent, RunStatus, StepKind};

use crate::kit::{has_step, input, kit, run};

#[tokio::test]
async fn a_model_500_fails_the_run_with_the_safe_message_and_code() {
    let kit = kit().await;
    kit.fake.push(Reply::server_error());
    let (events, outcome) = run(&kit.runtime(), input(&kit.agent(), "hi")).await;

    assert_eq!(outcome.status, RunStatus::Failed);
    let error = outcome.error.clone().unwrap();
    assert_eq!(error.code, "llm_unavailable");
    assert!(error.message.starts_with("the model provider is unavailable"), "{}", error.message);
    match events.last().unwrap() {
        RunEvent::RunFailed { code, message, run_id } => {
            assert_eq!(code, "llm_unavailable");
            assert_eq!(message, &error.message);
            assert_eq!(*run_id, outcome.run_id);
        }
        other => panic!("expected run.failed, got {other:?}"),
    }
    assert!(!events.iter().any(|e| e.name() == "message.completed"));
    assert_eq!(outcome.messages, vec![Message::user("hi")]);
    assert!(has_step(
        &outcome,
        |k| matches!(k, StepKind::ModelCall { error: Some(e), .. } if e.code == "llm_unavailable")
    ));
}

#[tokio::test]
async fn a_failure_after_a_tool_call_leaves_no_call_without_its_result() {
    let kit = kit().await;
    kit.fake.push_all([
        Reply::tool_call("search_knowledge", r#"{"query":"refunds"}"#),
        Reply::server_error(),
    ]);
    let (_, outcome) = run(&kit.runtime(), input(&kit.agent(), "refund?")).await;

    assert_eq!(outcome.status, RunStatus::Failed);
    assert_eq!(outcome.messages.len(), 3);
    let Message::Assistant { tool_calls, .. } = &outcome.messages[1] else {
        panic!("assistant call")
    };
    assert!(
        matches!(&outcome.messages[2], Message::Tool { tool_call_id, .. } if *tool_call_id == tool_calls[0].id)
    );
}

#[tokio::test]
async fn a_stream_cut_midway_fails_without_persisting_the_partial_text() {
    let kit = kit().await;
    kit.fake.push(Reply::cut_after("This answer never finishes properly", 4, 2));
    let (events, outcome) = run(&kit.runtime(), input(&kit.agent(), "hi")).await;
    assert_eq!(outcome.status, RunStatus::Failed);
    assert_eq!(outcome.error.unwrap().code, "llm_stream_interrupted");
    assert!(!crate::kit::deltas(&events).is_empty(), "deltas were forwarded before the cut");
    assert_eq!(outcome.messages, vec![Message::user("hi")]);
}

#[tokio::test]
async fn an_oversized_message_is_refused_without_a_model_call_or_anything_to_persist() {
    let kit = kit().await;
    let mut settings = kit.settings();
    settings.max_message_chars = 100;
    let (events, outcome) =
        run(&kit.runtime_with(settings), input(&kit.agent(), &"x".repeat(101))).await;
    assert_eq!(outcome.status, RunStatus::Failed);
    assert_eq!(outcome.error.unwrap().code, "message_too_long");
    assert!(outcome.messages.is_empty());
    assert_eq!(kit.fake.request_count(), 0);
    assert_eq!(events.last().unwrap().name(), "run.failed");
}
