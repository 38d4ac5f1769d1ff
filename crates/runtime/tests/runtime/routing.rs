//! Routing rules, evaluated before any model call.

use fakellm::Reply;
use runtime::{
    MatchCondition, RouteTarget, RoutingRule, RoutingRules, RunStatus, StepKind, ToolStatus,
};

use crate::kit::{has_step, input, kit, roles_and_texts, run};

fn rule(pattern: &str, condition: MatchCondition, target: RouteTarget) -> RoutingRule {
    RoutingRule { pattern: pattern.into(), condition, target }
}

#[tokio::test]
async fn a_contains_rule_calls_its_skill_directly_and_the_model_phrases_the_result() {
    let kit = kit().await;
    let mut agent = kit.agent();
    agent.routing.rules = vec![rule(
        "(refund|return)",
        MatchCondition::Contains,
        RouteTarget::Skill { skill: "knowledge:search".into() },
    )];
    kit.fake.push(Reply::text("Refunds are possible within 30 days [1]."));

    let (_, outcome) = run(&kit.runtime(), input(&agent, "How do REFUNDS work?")).await;

    assert_eq!(outcome.status, RunStatus::Completed);
    assert_eq!(kit.knowledge.queries()[0].query, "How do REFUNDS work?");
    assert_eq!(kit.fake.request_count(), 1, "no model call decided the tool");
    let msgs = roles_and_texts(kit.fake.requests()[0].messages());
    assert_eq!(msgs.last().unwrap().0, "tool");
    assert!(msgs.last().unwrap().1.starts_with("[1] Refund policy"));
    assert_eq!(outcome.citations.len(), 1);
    assert_eq!(outcome.tool_calls[0].status, ToolStatus::Ok);
    assert!(has_step(&outcome, |k| matches!(k,
        StepKind::Routing { matched: Some(m), .. } if m.rule_index == 0 && m.condition == MatchCondition::Contains)));
}

#[tokio::test]
async fn a_regex_rule_with_a_fixed_answer_skips_the_model() {
    let kit = kit().await;
    let mut agent = kit.agent();
    agent.routing.rules = vec![
        rule(
            "(schedule|meeting)",
            MatchCondition::Contains,
            RouteTarget::FixedAnswer { text: "no".into() },
        ),
        rule(
            r"(opening|business)\s+hours",
            MatchCondition::Regex,
            RouteTarget::FixedAnswer { text: "We are open 9 to 5, Monday to Friday.".into() },
        ),
    ];
    let (events, outcome) =
        run(&kit.runtime(), input(&agent, "What are your Opening   Hours?")).await;

    assert_eq!(kit.fake.request_count(), 0);
    assert_eq!(outcome.text, "We are open 9 to 5, Monday to Friday.");
    assert_eq!(crate::kit::deltas(&events).concat(), outcome.text);
    assert!(has_step(
        &outcome,
        |k| matches!(k, StepKind::Routing { matched: Some(m), .. } if m.rule_index == 1)
    ));
    assert_eq!(outcome.usage.model_calls, 0);
}

#[tokio::test]
async fn a_prompt_override_rule_changes_the_system_prompt() {
    let kit = kit().await;
    let mut agent = kit.agent();
    agent.routing.rules = vec![rule(
        "contract",
        MatchCondition::Contains,
        RouteTarget::PromptOverride { prompt: "You review contracts clause by clause.".into() },
    )];
    kit.fake.push(Reply::text("Clause 1 is fine."));
    run(&kit.runtime(), input(&agent, "Look at this contract")).await;
    let system = &roles_and_texts(kit.fake.requests()[0].messages())[0].1;
    assert!(system.starts_with("You review contracts clause by clause."));
    assert!(!system.contains("You are Ava"));
}

#[tokio::test]
async fn without_a_match_the_model_answers_when_fallback_to_llm_is_on_and_not_otherwise() {
    let kit = kit().await;
    let mut agent = kit.agent();
    agent.routing.rules = vec![rule(
        "refund",
        MatchCondition::Contains,
        RouteTarget::FixedAnswer { text: "r".into() },
    )];

    let (_, outcome) = run(&kit.runtime(), input(&agent, "hello")).await;
    assert_eq!(outcome.text, "Echo: hello");
    assert!(has_step(&outcome, |k| matches!(
        k,
        StepKind::Routing { matched: None, fallback_to_llm: true }
    )));

    agent.routing.fallback_to_llm = false;
    agent.routing.no_match_answer = Some("I only handle refunds.".into());
    let (_, outcome) = run(&kit.runtime(), input(&agent, "hello")).await;
    assert_eq!(outcome.text, "I only handle refunds.");
    assert_eq!(kit.fake.request_count(), 1, "the second run made no model call");
}

#[tokio::test]
async fn a_routed_skill_without_fallback_to_llm_answers_with_the_passages_directly() {
    let kit = kit().await;
    let mut agent = kit.agent();
    agent.routing = RoutingRules {
        rules: vec![rule(
            "shipping",
            MatchCondition::Regex,
            RouteTarget::Skill { skill: "search_knowledge".into() },
        )],
        fallback_to_llm: false,
        no_match_answer: None,
    };
    let (_, outcome) = run(&kit.runtime(), input(&agent, "shipping days?")).await;
    assert_eq!(kit.fake.request_count(), 0);
    assert!(outcome.text.starts_with("Here are the most relevant passages"), "{}", outcome.text);
    assert!(outcome.text.contains("[1] Shipping takes 3 to 5 business days"));
    // "days" also matches the refunds passage, ranked second.
    assert_eq!(outcome.citations.len(), 2);
    assert_eq!(outcome.citations[1].document_title, "Refund policy");
    // user, assistant(call), tool result, answer
    assert_eq!(outcome.messages.len(), 4);
}

#[tokio::test]
async fn an_invalid_regex_fails_the_run_clearly() {
    let kit = kit().await;
    let mut agent = kit.agent();
    agent.routing.rules = vec![rule(
        "(unclosed",
        MatchCondition::Regex,
        RouteTarget::FixedAnswer { text: "x".into() },
    )];
    let (events, outcome) = run(&kit.runtime(), input(&agent, "hi")).await;
    assert_eq!(outcome.status, RunStatus::Failed);
    assert_eq!(outcome.error.unwrap().code, "invalid_routing_pattern");
    assert_eq!(events.last().unwrap().name(), "run.failed");
}
