//! Cancellation by the caller and client disconnects.

use std::time::Duration;

use fakellm::Reply;
use llm::Message;
use runtime::{DisconnectPolicy, RunEvent, RunStatus, StepKind};

use crate::kit::{has_step, input, kit};

fn slow_answer() -> Reply {
    Reply::text("a b c d e f g h i j k l m n o p q r s t")
        .in_chunks(20)
        .chunk_delay(Duration::from_millis(100))
}

#[tokio::test]
async fn cancelling_mid_stream_ends_the_run_cancelled_and_keeps_the_partial_text() {
    let kit = kit().await;
    kit.fake.push(slow_answer());
    let mut handle = kit.runtime().run(input(&kit.agent(), "talk"));
    let mut seen = String::new();
    while let Some(e) = handle.events.recv().await {
        if let RunEvent::MessageDelta { delta } = e {
            seen.push_str(&delta);
            if seen.len() >= 4 {
                break;
            }
        }
    }
    handle.cancel.cancel();
    let (rest, outcome) =
        tokio::time::timeout(Duration::from_secs(5), handle.collect()).await.unwrap();

    assert_eq!(outcome.status, RunStatus::Cancelled);
    assert!(matches!(
        rest.last(),
        Some(RunEvent::RunCompleted { status: RunStatus::Cancelled, .. })
    ));
    assert!(has_step(
        &outcome,
        |k| matches!(k, StepKind::Cancelled { reason } if reason.contains("while the model was answering"))
    ));
    assert!(outcome.text.len() < "a b c d e f g h i j k l m n o p q r s t".len());
    assert!(outcome.text.starts_with(&seen));
    assert_eq!(outcome.messages.len(), 2);
    assert!(
        matches!(&outcome.messages[1], Message::Assistant { tool_calls, .. } if tool_calls.is_empty())
    );
}

#[tokio::test]
async fn a_dropped_receiver_cancels_the_run_under_the_cancel_policy() {
    let kit = kit().await;
    kit.fake.push(slow_answer());
    let mut settings = kit.settings();
    settings.on_disconnect = DisconnectPolicy::Cancel;
    let mut handle = kit.runtime_with(settings).run(input(&kit.agent(), "talk"));
    while let Some(e) = handle.events.recv().await {
        if matches!(e, RunEvent::MessageDelta { .. }) {
            break;
        }
    }
    drop(handle.events);
    let outcome =
        tokio::time::timeout(Duration::from_secs(5), handle.outcome).await.unwrap().unwrap();

    assert_eq!(outcome.status, RunStatus::Cancelled);
    assert!(has_step(&outcome, |k| matches!(k, StepKind::ClientDisconnected { continued: false })));
    assert!(has_step(&outcome, |k| matches!(k, StepKind::Cancelled { .. })));
}

#[tokio::test]
async fn a_dropped_receiver_lets_the_run_finish_under_the_default_policy() {
    let kit = kit().await;
    kit.fake.push(slow_answer().chunk_delay(Duration::from_millis(20)));
    let mut handle = kit.runtime().run(input(&kit.agent(), "talk"));
    while let Some(e) = handle.events.recv().await {
        if matches!(e, RunEvent::MessageDelta { .. }) {
            break;
        }
    }
    drop(handle.events);
    let outcome =
        tokio::time::timeout(Duration::from_secs(5), handle.outcome).await.unwrap().unwrap();

    assert_eq!(outcome.status, RunStatus::Completed);
    assert_eq!(outcome.text, "a b c d e f g h i j k l m n o p q r s t");
    assert!(has_step(&outcome, |k| matches!(k, StepKind::ClientDisconnected { continued: true })));
    assert_eq!(outcome.messages.len(), 2);
}
