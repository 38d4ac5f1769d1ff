//! The tool loop: knowledge search and citations, parallel calls, invalid arguments, the
//! iteration cap and tool timeouts.

use std::time::Duration;

use fakellm::{Reply, ScriptedCall};
use llm::Message;
use runtime::memory::InMemoryKnowledge;
use runtime::{RunEvent, RunStatus, StepKind, ToolStatus};
use serde_json::Value;

use crate::kit::{REFUNDS, has_step, input, kit, kit_with, names, run};

/// Tool messages of the n-th request the fake received.
fn tool_results(kit: &crate::kit::Kit, n: usize) -> Vec<(String, String)> {
    kit.fake.requests()[n]
        .messages()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| {
            (
                m["tool_call_id"].as_str().unwrap().to_owned(),
                m["content"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn a_knowledge_search_feeds_numbered_passages_and_its_hits_become_citations() {
    let kit = kit().await;
    kit.fake.push_all([
        Reply::tool_calls(vec![
            ScriptedCall::new("search_knowledge", r#"{"query":"refunds purchase receipt"}"#)
                .with_id("call_s"),
        ]),
        Reply::text("You can get a refund within 30 days [1]."),
    ]);
    let (events, outcome) = run(&kit.runtime(), input(&kit.agent(), "Can I get a refund?")).await;

    assert_eq!(outcome.status, RunStatus::Completed, "{:?}", outcome.error);
    assert_eq!(outcome.text, "You can get a refund within 30 days [1].");
    // The in-memory search finds only the refunds passage for these words.
    assert_eq!(outcome.citations.len(), 1);
    let c = &outcome.citations[0];
    assert_eq!((c.index, c.chunk_id), (1, kit.chunks[0]));
    assert_eq!(c.document_title, "Refund policy");
    assert_eq!(c.page, Some(2));
    assert_eq!(c.excerpt, REFUNDS);
    let cited: Vec<_> = events
        .iter()
        .filter_map(|e| if let RunEvent::Citation(c) = e { Some(c.clone()) } else { None })
        .collect();
    assert_eq!(cited, outcome.citations);
    let completed = events.iter().find_map(|e| match e {
        RunEvent::MessageCompleted { citations, .. } => Some(citations.clone()),
        _ => None,
    });
    assert_eq!(completed, Some(outcome.citations.clone()));
    let n = names(&events);
    let pos = |name| n.iter().position(|x| *x == name).unwrap();
    assert!(pos("tool.started") < pos("tool.completed"));
    assert!(pos("tool.completed") < pos("message.completed"));

    // The model saw the passage numbered [1] with its source.
    let results = tool_results(&kit, 1);
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].0, "call_s");
    assert!(results[0].1.starts_with("[1] Refund policy, page 2"), "{}", results[0].1);
    assert!(results[0].1.contains(REFUNDS));
    let q = &kit.knowledge.queries()[0];
    assert_eq!(
        (q.query.as_str(), q.knowledge_base_ids.clone()),
        ("refunds purchase receipt", vec![kit.kb])
    );

    // Messages to persist: user, assistant with the call, tool result, answer.
    assert_eq!(outcome.messages.len(), 4);
    assert!(
        matches!(&outcome.messages[1], Message::Assistant { tool_calls, .. } if tool_calls[0].id == "call_s")
    );
    assert!(
        matches!(&outcome.messages[2], Message::Tool { tool_call_id, .. } if tool_call_id == "call_s")
    );
    assert_eq!(outcome.usage.tool_calls, 1);
    assert_eq!(outcome.usage.model_calls, 2);
    assert_eq!(outcome.tool_calls[0].status, ToolStatus::Ok);
}

#[tokio::test]
async fn two_parallel_tool_calls_both_run_and_answer_in_call_order() {
    let kit = kit().await;
    kit.web.add("https://acme.test/about", "About Acme", "Acme sells anvils since 1949.");
    let mut agent = kit.agent();
    agent.skills.push("web-fetch:fetch".into());
    kit.fake.push_all([
        Reply::tool_calls(vec![
            ScriptedCall::new("web_fetch", r#"{"url":"https://acme.test/about"}"#).with_id("a"),
            ScriptedCall::new("search_knowledge", r#"{"query":"shipping days"}"#).with_id("b"),
        ])
        .interleaved()
        .in_chunks(3),
        Reply::text("Acme has sold anvils since 1949 and ships in 3-5 days [1]."),
    ]);

    let (events, outcome) = run(&kit.runtime(), input(&agent, "Tell me about Acme")).await;

    assert_eq!(outcome.status, RunStatus::Completed);
    let results = tool_results(&kit, 1);
    assert_eq!(results.iter().map(|r| r.0.as_str()).collect::<Vec<_>>(), vec!["a", "b"]);
    assert!(
        results[0].1.contains("Title: About Acme") && results[0].1.contains("anvils since 1949")
    );
    assert!(results[1].1.starts_with("[1] Shipping"));
    assert_eq!(kit.web.fetched(), vec!["https://acme.test/about"]);
    assert_eq!(names(&events).iter().filter(|n| **n == "tool.completed").count(), 2);
    assert_eq!(outcome.usage.tool_calls, 2);
    // "days" matches the refunds passage too, ranked second.
    assert_eq!(outcome.citations.len(), 2);
}

#[tokio::test]
async fn invalid_tool_arguments_go_back_to_the_model_and_the_loop_continues() {
    let kit = kit().await;
    kit.fake.push_all([
        Reply::tool_calls(vec![ScriptedCall::new("search_knowledge", "{not json").with_id("bad1")]),
        Reply::tool_calls(vec![
            ScriptedCall::new("search_knowledge", r#"{"query": 5}"#).with_id("bad2"),
        ]),
        Reply::tool_calls(vec![ScriptedCall::new("delete_everything", "{}").with_id("bad3")]),
        Reply::text("Sorry, I could not search."),
    ]);
    let (events, outcome) = run(&kit.runtime(), input(&kit.agent(), "refund?")).await;

    assert_eq!(outcome.status, RunStatus::Completed);
    assert_eq!(outcome.text, "Sorry, I could not search.");
    let r1 = tool_results(&kit, 1);
    assert!(r1[0].1.starts_with("Error: the arguments are not valid JSON"), "{}", r1[0].1);
    let r2 = tool_results(&kit, 2);
    assert!(
        r2[1].1.contains("do not match the schema") && r2[1].1.contains("/query"),
        "{}",
        r2[1].1
    );
    let r3 = tool_results(&kit, 3);
    assert!(r3[2].1.contains("no tool named `delete_everything`"), "{}", r3[2].1);
    let statuses: Vec<ToolStatus> = outcome.tool_calls.iter().map(|t| t.status).collect();
    assert_eq!(
        statuses,
        vec![ToolStatus::InvalidArguments, ToolStatus::InvalidArguments, ToolStatus::UnknownTool]
    );
    assert!(kit.knowledge.queries().is_empty(), "no search ran with bad arguments");
    assert!(events.iter().any(|e| matches!(e, RunEvent::ToolCompleted { ok: false, .. })));
    assert_eq!(outcome.usage.tool_calls, 0);
}

#[tokio::test]
async fn the_iteration_cap_ends_the_loop_with_a_clear_message() {
    let kit = kit().await;
    for i in 0..10 {
        kit.fake.push(Reply::tool_calls(vec![
            ScriptedCall::new("search_knowledge", format!(r#"{{"query":"refunds {i}"}}"#))
                .with_id(format!("c{i}")),
        ]));
    }
    let mut settings = kit.settings();
    settings.max_iterations = 3;
    let (_, outcome) = run(&kit.runtime_with(settings), input(&kit.agent(), "loop")).await;

    assert_eq!(kit.fake.request_count(), 3);
    assert_eq!(outcome.status, RunStatus::Completed);
    assert!(outcome.text.contains("stopped after 3 steps"), "{}", outcome.text);
    assert!(has_step(&outcome, |k| matches!(k, StepKind::IterationCap { cap: 3 })));
    // Every call has its result: user + 3 × (call, result) + final message.
    assert_eq!(outcome.messages.len(), 1 + 3 * 2 + 1);
    assert_eq!(outcome.messages.iter().filter(|m| matches!(m, Message::Tool { .. })).count(), 3);
}

#[tokio::test]
async fn a_tool_that_times_out_is_reported_to_the_model_and_traced() {
    let kit = kit_with(InMemoryKnowledge::new().with_delay(Duration::from_secs(10))).await;
    kit.fake.push_all([
        Reply::tool_call("search_knowledge", r#"{"query":"refunds"}"#),
        Reply::text("The search is slow right now."),
    ]);
    let mut settings = kit.settings();
    settings.tool_timeout = Duration::from_millis(200);
    let started = std::time::Instant::now();
    let (_, outcome) = run(&kit.runtime_with(settings), input(&kit.agent(), "refund?")).await;

    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(outcome.status, RunStatus::Completed);
    let r = tool_results(&kit, 1);
    assert!(r[0].1.contains("did not answer within 200 ms"), "{}", r[0].1);
    assert_eq!(outcome.tool_calls[0].status, ToolStatus::Timeout);
    assert!(has_step(
        &outcome,
        |k| matches!(k, StepKind::ToolCall(t) if t.status == ToolStatus::Timeout)
    ));
}

#[tokio::test]
async fn a_failing_tool_is_reported_to_the_model_as_an_error() {
    let kit = kit_with(InMemoryKnowledge::new().failing("index unavailable")).await;
    kit.fake.push_all([
        Reply::tool_call("search_knowledge", r#"{"query":"refunds"}"#),
        Reply::text("I cannot search right now."),
    ]);
    let (_, outcome) = run(&kit.runtime(), input(&kit.agent(), "refund?")).await;
    assert_eq!(outcome.status, RunStatus::Completed);
    assert_eq!(tool_results(&kit, 1)[0].1, "Error: index unavailable");
    assert_eq!(outcome.tool_calls[0].status, ToolStatus::Error);
    let trace = serde_json::to_value(&outcome.trace).unwrap();
    let tool_step = trace.as_array().unwrap().iter().find(|s| s["kind"] == "tool_call").unwrap();
    assert_eq!(tool_step["status"], "error");
    assert!(tool_step["arguments"].as_str().unwrap().contains("refunds"));
    assert!(tool_step["latency_ms"].is_u64());
    assert!(matches!(tool_step["at_ms"], Value::Number(_)));
}

#[tokio::test]
async fn the_tool_loop_works_the_same_over_the_anthropic_protocol() {
    let kit = kit().await;
    kit.fake.push_all([
        Reply::tool_call("search_knowledge", r#"{"query":"refunds receipt"}"#).in_chunks(3),
        Reply::text("Within 30 days [1].").in_chunks(2),
    ]);
    let (events, outcome) = run(&kit.runtime_anthropic(), input(&kit.agent(), "refund?")).await;

    assert_eq!(outcome.status, RunStatus::Completed, "{:?}", outcome.error);
    assert_eq!(outcome.text, "Within 30 days [1].");
    assert_eq!(outcome.citations.len(), 1);
    assert_eq!(crate::kit::deltas(&events).len(), 2);
    let second = &kit.fake.requests()[1];
    assert_eq!(second.path, "/v1/messages");
    assert!(
        second.body["system"].as_str().unwrap_or_default().contains("You are Ava")
            || second.body["system"].to_string().contains("You are Ava")
    );
    assert_eq!(outcome.model.as_deref(), Some("claude-fake"));
}
