//! What the model receives: system prompt parts, sampling settings, tools, trimmed history.

use catalog::{Behavior, Personality};
use fakellm::Reply;
use llm::{Message, ToolCall};
use runtime::RunStatus;
use runtime::prompt::{GROUNDING_INSTRUCTIONS, MISSING_RESULT};

use crate::kit::{input, kit, roles_and_texts, run};

#[tokio::test]
async fn the_system_prompt_has_the_agent_prompt_personality_behaviour_and_grounding() {
    let kit = kit().await;
    kit.fake.push(Reply::text("ok"));
    let mut agent = kit.agent();
    agent.personality = Personality::new(0.0, 0.1, 0.9).unwrap();
    agent.behavior =
        Behavior { tone: "friendly".into(), language: "fr".into(), ..Behavior::default() };
    agent.model = Some("agent-model".into());

    let (_, outcome) = run(&kit.runtime(), input(&agent, "Bonjour")).await;
    assert_eq!(outcome.status, RunStatus::Completed);

    let req = &kit.fake.requests()[0];
    let msgs = roles_and_texts(req.messages());
    assert_eq!(msgs[0].0, "system");
    let system = &msgs[0].1;
    assert!(system.starts_with("You are Ava, the support assistant of Acme."));
    assert!(system.contains("Use professional, formal language."), "{system}");
    assert!(system.contains("Be concise and to the point."), "{system}");
    assert!(system.contains("Stick to proven approaches"), "{system}");
    assert!(system.contains("Keep a warm, friendly tone."), "{system}");
    assert!(system.contains("Always reply in French."), "{system}");
    assert!(system.contains(GROUNDING_INSTRUCTIONS), "{system}");
    assert!(system.contains("[1], [2]"));
    assert_eq!(msgs.last().unwrap(), &("user".to_owned(), "Bonjour".to_owned()));
    // Personality mapping (persona seed §9.2): temperature 0.1 + 0 × 0.8, 512 + ⌊0.1 × 1536⌋.
    let t = req.body["temperature"].as_f64().unwrap();
    assert!((t - 0.1).abs() < 1e-6, "{t}");
    assert_eq!(req.body["max_tokens"], 512 + 153);
    assert_eq!(req.model(), "agent-model");
    let tools: Vec<&str> =
        req.tools().iter().map(|t| t["function"]["name"].as_str().unwrap()).collect();
    assert_eq!(tools, vec!["search_knowledge"]);
}

#[tokio::test]
async fn an_agent_without_knowledge_gets_no_grounding_instructions_and_no_tools() {
    let kit = kit().await;
    kit.fake.push(Reply::text("ok"));
    let mut agent = kit.agent();
    agent.skills.clear();
    agent.knowledge_base_ids.clear();
    run(&kit.runtime(), input(&agent, "hi")).await;
    let req = &kit.fake.requests()[0];
    assert!(!roles_and_texts(req.messages())[0].1.contains(GROUNDING_INSTRUCTIONS));
    assert!(req.tools().is_empty());
}

#[tokio::test]
async fn history_is_trimmed_to_the_budget_keeping_the_newest_messages() {
    let kit = kit().await;
    kit.fake.push(Reply::text("ok"));
    let mut settings = kit.settings();
    settings.history_token_budget = 200;
    let rt = kit.runtime_with(settings);
    let mut i = input(&kit.agent(), "and now?");
    // 40 messages of ~50 tokens each: about 4 fit in 200.
    i.history = (0..40)
        .map(|n| {
            let text = format!("message {n} {}", "x".repeat(180));
            if n % 2 == 0 { Message::user(text) } else { Message::assistant(text) }
        })
        .collect();

    run(&rt, i).await;

    let msgs = roles_and_texts(kit.fake.requests()[0].messages());
    let history: Vec<&(String, String)> = msgs[1..msgs.len() - 1].iter().collect();
    assert!(!history.is_empty() && history.len() < 6, "{} history messages kept", history.len());
    assert!(history.last().unwrap().1.starts_with("message 39 "));
    assert!(!msgs.iter().any(|(_, t)| t.starts_with("message 0 ")));
    let est: usize = history.iter().map(|(_, t)| llm::estimate_tokens(t) + 4).sum();
    assert!(est <= 200, "{est} estimated tokens of history");
}

#[tokio::test]
async fn a_stored_tool_call_without_result_is_answered_before_the_history_is_sent() {
    let kit = kit().await;
    kit.fake.push(Reply::text("ok"));
    let mut i = input(&kit.agent(), "hello again");
    let call = ToolCall {
        id: "call_old".into(),
        name: "escalate_to_human".into(),
        arguments: "{}".into(),
    };
    i.history =
        vec![Message::user("get me a human"), Message::assistant_tool_calls(None, vec![call])];
    let (_, outcome) = run(&kit.runtime(), i).await;
    assert_eq!(outcome.status, RunStatus::Completed);
    let msgs = kit.fake.requests()[0].messages().to_vec();
    let tool = msgs.iter().find(|m| m["role"] == "tool").expect("a tool result was added");
    assert_eq!(tool["tool_call_id"], "call_old");
    assert_eq!(tool["content"], MISSING_RESULT);
}
