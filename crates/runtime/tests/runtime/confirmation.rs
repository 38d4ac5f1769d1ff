//! Side-effecting tools wait for the user's approval; resume runs or declines them.

use fakellm::{Reply, ScriptedCall};
use llm::Message;
use runtime::{
    ActionDecision, AgentSnapshot, DECLINED, ResumeInput, RunEvent, RunOutcome, RunStatus,
    RuntimeError, StepKind, ToolStatus,
};

use crate::kit::{Kit, has_step, input, kit, names, run};

fn escalating_agent(kit: &Kit) -> AgentSnapshot {
    let mut agent = kit.agent();
    agent.skills.push("handoff:escalate".into());
    agent.requires_confirmation.insert("escalate_to_human".into());
    agent
}

async fn paused(kit: &Kit, agent: &AgentSnapshot) -> (Vec<RunEvent>, RunOutcome) {
    kit.fake.push(
        Reply::tool_calls(vec![
            ScriptedCall::new("escalate_to_human", r#"{"reason":"wants a manager"}"#)
                .with_id("esc"),
        ])
        .with_text("Let me get a colleague."),
    );
    run(&kit.runtime(), input(agent, "I want to talk to a manager")).await
}

fn resume_input(agent: &AgentSnapshot, first: &RunOutcome, approved: bool) -> ResumeInput {
    let paused = first.paused.clone().expect("paused");
    ResumeInput {
        conversation_id: domain::ConversationId::new(),
        agent: agent.clone(),
        history: first.messages.clone(),
        decisions: vec![ActionDecision { action_id: paused.pending[0].id.clone(), approved }],
        paused,
        api_key: None,
    }
}

#[tokio::test]
async fn a_tool_requiring_confirmation_pauses_the_run_with_a_pending_action() {
    let kit = kit().await;
    let agent = escalating_agent(&kit);
    let (events, outcome) = paused(&kit, &agent).await;

    assert_eq!(outcome.status, RunStatus::AwaitingAction);
    assert!(kit.handoffs.requests().is_empty(), "nothing happens before approval");
    let n = names(&events);
    assert!(n.contains(&"action.pending"));
    assert!(!n.contains(&"tool.started"));
    assert!(!n.contains(&"message.completed"));
    assert!(matches!(
        events.last(),
        Some(RunEvent::RunCompleted { status: RunStatus::AwaitingAction, .. })
    ));
    let pending = &outcome.paused.as_ref().unwrap().pending;
    assert_eq!(pending.len(), 1);
    assert_eq!(
        (pending[0].tool.as_str(), pending[0].tool_call_id.as_str()),
        ("escalate_to_human", "esc")
    );
    assert_eq!(pending[0].arguments, r#"{"reason":"wants a manager"}"#);
    assert!(pending[0].id.starts_with("act_"));
    let event_action = events.iter().find_map(|e| match e {
        RunEvent::ActionPending(a) => Some(a.clone()),
        _ => None,
    });
    assert_eq!(event_action.as_ref(), Some(&pending[0]));
    // The call is persisted, its result is not (yet).
    assert_eq!(outcome.messages.len(), 2);
    assert!(
        matches!(&outcome.messages[1], Message::Assistant { content: Some(t), tool_calls } if t == "Let me get a colleague." && tool_calls.len() == 1)
    );
    assert_eq!(outcome.tool_calls[0].status, ToolStatus::AwaitingConfirmation);
}

#[tokio::test]
async fn approving_runs_the_tool_and_the_model_answers_from_its_result() {
    let kit = kit().await;
    let agent = escalating_agent(&kit);
    let (_, first) = paused(&kit, &agent).await;
    kit.fake.push(Reply::text("A manager will take over shortly."));

    let handle = kit.runtime().resume(resume_input(&agent, &first, true)).unwrap();
    let (events, outcome) = handle.collect().await;

    assert_eq!(outcome.status, RunStatus::Completed, "{:?}", outcome.error);
    assert_eq!(outcome.text, "A manager will take over shortly.");
    let handoffs = kit.handoffs.requests();
    assert_eq!(handoffs.len(), 1);
    assert_eq!(handoffs[0].reason, "wants a manager");
    assert_eq!(handoffs[0].agent_id, agent.id);
    let n = names(&events);
    assert!(n.contains(&"tool.started") && n.contains(&"tool.completed"));
    let req = kit.fake.requests().last().unwrap().clone();
    let tool = req.messages().iter().find(|m| m["role"] == "tool").unwrap().clone();
    assert_eq!(tool["tool_call_id"], "esc");
    assert!(tool["content"].as_str().unwrap().contains("Handoff requested (id hof_1)"));
    // Resumed messages: the tool result, then the answer.
    assert!(
        matches!(&outcome.messages[0], Message::Tool { tool_call_id, .. } if tool_call_id == "esc")
    );
    assert_eq!(outcome.messages[1], Message::assistant("A manager will take over shortly."));
    assert!(has_step(
        &outcome,
        |k| matches!(k, StepKind::Resumed { approved, rejected } if approved.len() == 1 && rejected.is_empty())
    ));
    assert_eq!(outcome.run_id, first.run_id);
}

#[tokio::test]
async fn rejecting_tells_the_model_the_user_declined() {
    let kit = kit().await;
    let agent = escalating_agent(&kit);
    let (_, first) = paused(&kit, &agent).await;
    kit.fake.push(Reply::text("Understood, I will keep helping you myself."));

    let (_, outcome) =
        kit.runtime().resume(resume_input(&agent, &first, false)).unwrap().collect().await;

    assert_eq!(outcome.status, RunStatus::Completed);
    assert!(kit.handoffs.requests().is_empty());
    let req = kit.fake.requests().last().unwrap().clone();
    let tool = req.messages().iter().find(|m| m["role"] == "tool").unwrap().clone();
    assert_eq!(tool["content"], DECLINED);
    assert_eq!(outcome.tool_calls[0].status, ToolStatus::Rejected);
    assert_eq!(outcome.usage.tool_calls, 0);
}

#[tokio::test]
async fn resuming_with_an_unknown_action_is_refused() {
    let kit = kit().await;
    let agent = escalating_agent(&kit);
    let (_, first) = paused(&kit, &agent).await;
    let mut bad = resume_input(&agent, &first, true);
    bad.decisions[0].action_id = "act_nope".into();
    let err = kit.runtime().resume(bad).err().expect("refused");
    assert_eq!(err, RuntimeError::UnknownAction("act_nope".into()));
}

#[tokio::test]
async fn the_paused_turn_survives_history_trimming_on_resume() {
    let kit = kit().await;
    let agent = escalating_agent(&kit);
    let (_, first) = paused(&kit, &agent).await;
    kit.fake.push(Reply::text("Done."));
    let mut settings = kit.settings();
    settings.history_token_budget = 1;

    let (_, outcome) = kit
        .runtime_with(settings)
        .resume(resume_input(&agent, &first, true))
        .unwrap()
        .collect()
        .await;

    assert_eq!(outcome.status, RunStatus::Completed, "{:?}", outcome.error);
    let msgs = kit.fake.requests().last().unwrap().messages().to_vec();
    let roles: Vec<&str> = msgs.iter().map(|m| m["role"].as_str().unwrap()).collect();
    assert_eq!(roles, vec!["system", "assistant", "tool"]);
    assert_eq!(msgs[1]["tool_calls"][0]["id"], "esc");
}

#[tokio::test]
async fn a_routed_side_effect_waits_for_approval_too() {
    let kit = kit().await;
    let mut agent = escalating_agent(&kit);
    agent.routing = runtime::RoutingRules {
        rules: vec![runtime::RoutingRule {
            pattern: "(human|manager)".into(),
            condition: runtime::MatchCondition::Contains,
            target: runtime::RouteTarget::Skill { skill: "handoff:escalate".into() },
        }],
        fallback_to_llm: false,
        no_match_answer: None,
    };
    let (_, first) = run(&kit.runtime(), input(&agent, "a human please")).await;
    assert_eq!(first.status, RunStatus::AwaitingAction);
    assert!(kit.handoffs.requests().is_empty());

    let (_, outcome) =
        kit.runtime().resume(resume_input(&agent, &first, true)).unwrap().collect().await;
    assert_eq!(outcome.status, RunStatus::Completed);
    assert_eq!(kit.handoffs.requests()[0].reason, "a human please");
    assert!(outcome.text.starts_with("Handoff requested"), "{}", outcome.text);
    assert_eq!(kit.fake.request_count(), 0, "routing without fallback never asks the model");
}
