//! Skills resolved by the catalog map to tools; integrations add their own tools with
//! `Runtime::with_tool`; parallel calls really run at the same time.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use catalog::CapabilityRegistry;
use fakellm::{Reply, ScriptedCall};
use llm::ToolSpec;
use runtime::{RunStatus, Tool, ToolContext, ToolOutput, ToolStatus};
use serde_json::{Value, json};
use tokio::sync::Barrier;

use crate::kit::{input, kit, run};

/// Sends nothing; records what it was asked to send.
#[derive(Default)]
struct SendEmail {
    sent: Mutex<Vec<Value>>,
}

#[async_trait]
impl Tool for SendEmail {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "send_email".into(),
            description: "Send an email".into(),
            parameters: json!({"type": "object", "required": ["to", "body"],
                "properties": {"to": {"type": "string"}, "body": {"type": "string"}}}),
        }
    }
    async fn call(&self, arguments: Value, _ctx: &ToolContext) -> Result<ToolOutput, String> {
        self.sent.lock().unwrap().push(arguments);
        Ok(ToolOutput::Text("sent".into()))
    }
}

/// Finishes only when two calls are in flight at once.
struct Rendezvous(Arc<Barrier>);

#[async_trait]
impl Tool for Rendezvous {
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: "rendezvous".into(),
            description: "Meet".into(),
            parameters: json!({"type": "object", "properties": {}}),
        }
    }
    async fn call(&self, _arguments: Value, _ctx: &ToolContext) -> Result<ToolOutput, String> {
        self.0.wait().await;
        Ok(ToolOutput::Text("met".into()))
    }
}

#[tokio::test]
async fn skills_resolved_by_the_catalog_offer_the_matching_tools() {
    let kit = kit().await;
    let registry = CapabilityRegistry::builtin().unwrap();
    let caps: Vec<String> =
        ["rag", "research_web", "escalation", "send_emails"].map(String::from).to_vec();
    let connected = BTreeSet::from(["gmail".to_owned()]);
    let mut agent = kit.agent();
    agent.skills = registry.resolve_skills(&caps, &connected).unwrap();
    assert!(agent.skills.contains(&"gmail:send".to_owned()));
    let email = Arc::new(SendEmail::default());
    let rt =
        kit.runtime().with_tool("gmail:send", email.clone()).with_tool("slack:send_message", email);
    kit.fake.push(Reply::text("ok"));

    run(&rt, input(&agent, "hi")).await;

    let names: BTreeSet<String> = kit.fake.requests()[0]
        .tools()
        .iter()
        .map(|t| t["function"]["name"].as_str().unwrap().to_owned())
        .collect();
    let expected: BTreeSet<String> =
        ["search_knowledge", "web_fetch", "escalate_to_human", "send_email"]
            .map(String::from)
            .into();
    assert_eq!(names, expected, "no slack tool: the agent has no slack skill");
}

#[tokio::test]
async fn an_integration_tool_requiring_confirmation_runs_only_after_approval() {
    let kit = kit().await;
    let email = Arc::new(SendEmail::default());
    let rt = kit.runtime().with_tool("gmail:send", email.clone());
    let mut agent = kit.agent();
    agent.skills.push("gmail:send".into());
    agent.requires_confirmation.insert("send_email".into());
    kit.fake
        .push(Reply::tool_call("send_email", r#"{"to":"john@client.com","body":"NDA attached"}"#));

    let (_, first) = run(&rt, input(&agent, "send the NDA to john@client.com")).await;
    assert_eq!(first.status, RunStatus::AwaitingAction);
    assert!(email.sent.lock().unwrap().is_empty());

    kit.fake.push(Reply::text("Sent."));
    let paused = first.paused.clone().unwrap();
    let resume = runtime::ResumeInput {
        conversation_id: domain::ConversationId::new(),
        agent: agent.clone(),
        history: first.messages.clone(),
        decisions: vec![runtime::ActionDecision {
            action_id: paused.pending[0].id.clone(),
            approved: true,
        }],
        paused,
        api_key: None,
    };
    let (_, done) = rt.resume(resume).unwrap().collect().await;
    assert_eq!(done.status, RunStatus::Completed);
    assert_eq!(done.text, "Sent.");
    assert_eq!(
        *email.sent.lock().unwrap(),
        vec![json!({"to":"john@client.com","body":"NDA attached"})]
    );
}

#[tokio::test]
async fn parallel_tool_calls_run_concurrently() {
    let kit = kit().await;
    let rt = kit.runtime().with_tool("rendezvous", Arc::new(Rendezvous(Arc::new(Barrier::new(2)))));
    let mut agent = kit.agent();
    agent.skills.push("rendezvous".into());
    kit.fake.push_all([
        Reply::tool_calls(vec![
            ScriptedCall::new("rendezvous", "{}"),
            ScriptedCall::new("rendezvous", "{}"),
        ]),
        Reply::text("Both met."),
    ]);
    // Run one after the other, the first call would wait for the second until its timeout.
    let (_, outcome) =
        tokio::time::timeout(Duration::from_secs(10), run(&rt, input(&agent, "meet")))
            .await
            .unwrap();
    assert_eq!(outcome.status, RunStatus::Completed);
    assert_eq!(
        outcome.tool_calls.iter().map(|t| t.status).collect::<Vec<_>>(),
        vec![ToolStatus::Ok, ToolStatus::Ok]
    );
}

/// Sends for real as far as the run can tell: a side-effecting tool.
struct PostMessage(Arc<SendEmail>);

#[async_trait]
impl Tool for PostMessage {
    fn spec(&self) -> ToolSpec {
        ToolSpec { name: "post_message".into(), ..self.0.spec() }
    }
    async fn call(&self, arguments: Value, ctx: &ToolContext) -> Result<ToolOutput, String> {
        self.0.call(arguments, ctx).await
    }
    fn side_effect(&self) -> bool {
        true
    }
}

#[tokio::test]
async fn an_agents_own_tools_are_offered_and_side_effects_wait_for_approval_when_it_asks() {
    let kit = kit().await;
    let sent = Arc::new(SendEmail::default());
    let mut agent = kit.agent();
    agent.tools = runtime::AgentTools::new(vec![Arc::new(PostMessage(sent.clone()))]);
    let call = || {
        Reply::tool_calls(vec![ScriptedCall::new(
            "post_message",
            r##"{"to":"#general","body":"hi"}"##,
        )])
    };

    kit.fake.push(call());
    kit.fake.push(Reply::text("Posted."));
    let (_, outcome) = run(&kit.runtime(), input(&agent, "say hi in general")).await;
    assert_eq!(outcome.status, RunStatus::Completed);
    assert_eq!(outcome.tool_calls[0].status, ToolStatus::Ok);
    assert_eq!(sent.sent.lock().unwrap().len(), 1, "no tool skill needed: the agent owns it");

    agent.confirm_side_effects = true;
    kit.fake.push(call());
    let (_, outcome) = run(&kit.runtime(), input(&agent, "say hi again")).await;
    assert_eq!(outcome.status, RunStatus::AwaitingAction);
    assert_eq!(outcome.tool_calls[0].status, ToolStatus::AwaitingConfirmation);
    assert_eq!(sent.sent.lock().unwrap().len(), 1, "nothing is sent before approval");
}
