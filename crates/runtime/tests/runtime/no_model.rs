//! Without a model the agent answers from its knowledge and says so.

use runtime::{RunEvent, RunStatus, StepKind};

use crate::kit::{REFUNDS, has_step, input, kit, names, run};

#[tokio::test]
async fn without_a_model_the_best_passages_are_the_answer_with_citations() {
    let kit = kit().await;
    let rt = kit.runtime_without_model();
    let (events, outcome) = run(&rt, input(&kit.agent(), "refund for my receipt?")).await;

    assert_eq!(outcome.status, RunStatus::Completed);
    assert!(
        outcome.text.starts_with("No language model is configured for this agent"),
        "{}",
        outcome.text
    );
    assert!(outcome.text.contains(&format!("[1] {REFUNDS}")), "{}", outcome.text);
    assert!(outcome.text.contains("Refund policy, page 2"));
    assert_eq!(outcome.citations.len(), 1);
    assert_eq!(outcome.citations[0].chunk_id, kit.chunks[0]);
    assert_eq!(outcome.model, None);
    assert_eq!(outcome.usage.model_calls, 0);
    assert_eq!(kit.fake.request_count(), 0);
    assert!(has_step(&outcome, |k| matches!(k, StepKind::NoModelFallback { hits: 1 })));
    let n = names(&events);
    assert_eq!(
        n,
        vec!["run.started", "citation", "message.delta", "message.completed", "run.completed"]
    );
    assert!(matches!(&events[0], RunEvent::RunStarted { model: None, .. }));
}

#[tokio::test]
async fn without_a_model_and_without_hits_it_says_so_plainly() {
    let kit = kit().await;
    let rt = kit.runtime_without_model();
    let (_, outcome) = run(&rt, input(&kit.agent(), "zebra xylophone")).await;
    assert_eq!(outcome.status, RunStatus::Completed);
    assert_eq!(
        outcome.text,
        "No language model is configured for this agent, and the knowledge base has nothing that matches your question."
    );
    assert!(outcome.citations.is_empty());

    let mut bare = kit.agent();
    bare.knowledge_base_ids.clear();
    let (_, outcome) = run(&rt, input(&bare, "anything")).await;
    assert!(outcome.text.contains("no knowledge base to answer from"), "{}", outcome.text);
}
