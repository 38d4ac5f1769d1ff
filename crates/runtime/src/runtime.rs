//! The entry points: a [`Runtime`] holds the model (if any), the ports and the settings, and
//! starts runs ([`Runtime::run`]) and resumes paused ones ([`Runtime::resume`]). Each run is a
//! spawned task reporting [`RunEvent`]s on a bounded channel and ending with a [`RunOutcome`].
//!
//! Disconnection: when the event receiver is dropped (the client went away), the run follows
//! [`DisconnectPolicy`] — by default it finishes in the background so the answer is persisted
//! (trace step `client_disconnected {continued: true}`); with `Cancel` it stops at the next
//! event and ends `cancelled`. The caller can always stop a run through its
//! [`CancellationToken`]; it then ends `cancelled` with a `cancelled` trace step, keeping the
//! messages consistent (partial text kept, no tool call without a result).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use domain::{ConversationId, RunId};
use llm::{ChatModel, Message, SecretString};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
pub use tokio_util::sync::CancellationToken;

use crate::agent::AgentSnapshot;
use crate::error::RuntimeError;
use crate::events::{PausedRun, RunEvent, RunOutcome};
use crate::ports::{HandoffSink, KnowledgeSearch, WebFetcher};
use crate::run::{Run, Start};
use crate::tools::Tool;

/// The runtime's outside world.
#[derive(Clone)]
pub struct Ports {
    pub knowledge: Arc<dyn KnowledgeSearch>,
    pub web: Arc<dyn WebFetcher>,
    pub handoffs: Arc<dyn HandoffSink>,
}

/// What a run does when its event receiver is dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DisconnectPolicy {
    /// Finish in the background (events are discarded, the outcome is complete).
    #[default]
    Finish,
    /// Stop as if cancelled.
    Cancel,
}

/// Limits and defaults of every run.
#[derive(Debug, Clone)]
pub struct RuntimeSettings {
    /// Model turns per run (a resumed run continues the count).
    pub max_iterations: usize,
    /// Each tool call's time limit.
    pub tool_timeout: Duration,
    /// Estimated tokens of earlier conversation sent to the model.
    pub history_token_budget: usize,
    /// Knowledge hits per search (the model may ask for another number).
    pub top_k: usize,
    /// Characters of a passage in citations and no-model answers.
    pub excerpt_chars: usize,
    pub on_disconnect: DisconnectPolicy,
    /// Longest user message accepted (the HTTP layer should refuse longer ones first, with 413).
    pub max_message_chars: usize,
    /// Capacity of the event channel; a slow reader slows the run (backpressure).
    pub event_buffer: usize,
}

impl Default for RuntimeSettings {
    fn default() -> Self {
        Self {
            max_iterations: 6,
            tool_timeout: Duration::from_secs(30),
            history_token_budget: 6_000,
            top_k: 5,
            excerpt_chars: 300,
            on_disconnect: DisconnectPolicy::Finish,
            max_message_chars: 32_000,
            event_buffer: 256,
        }
    }
}

/// One new user message to answer.
#[derive(Debug, Clone)]
pub struct RunInput {
    pub run_id: RunId,
    pub conversation_id: ConversationId,
    pub agent: AgentSnapshot,
    /// Earlier messages of the conversation, oldest first (as stored; repaired and trimmed here).
    pub history: Vec<Message>,
    pub user_message: String,
    /// Bring-your-own key for this run's model calls.
    pub api_key: Option<SecretString>,
}

/// The user's decision on one pending action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionDecision {
    pub action_id: String,
    pub approved: bool,
}

/// Continues a paused run.
#[derive(Debug, Clone)]
pub struct ResumeInput {
    pub conversation_id: ConversationId,
    pub agent: AgentSnapshot,
    /// The conversation as stored, including the paused run's messages.
    pub history: Vec<Message>,
    /// From the paused run's outcome.
    pub paused: PausedRun,
    /// One per pending action; an action without a decision counts as rejected.
    pub decisions: Vec<ActionDecision>,
    pub api_key: Option<SecretString>,
}

/// A started run: its events, its outcome and its cancel switch.
pub struct RunHandle {
    /// Live events; the last is `run.completed` or `run.failed`.
    pub events: mpsc::Receiver<RunEvent>,
    /// The outcome, once the run ends (an `Err` only if the run task panicked).
    pub outcome: JoinHandle<RunOutcome>,
    /// Cancels the run.
    pub cancel: CancellationToken,
}

impl RunHandle {
    /// Reads every event, then the outcome (for non-streaming callers and tests).
    pub async fn collect(mut self) -> (Vec<RunEvent>, RunOutcome) {
        let mut events = Vec::new();
        while let Some(e) = self.events.recv().await {
            events.push(e);
        }
        let outcome = self.outcome.await.expect("the run task does not panic");
        (events, outcome)
    }
}

/// Runs agents.
#[derive(Clone)]
pub struct Runtime {
    pub(crate) model: Option<Arc<dyn ChatModel>>,
    pub(crate) ports: Ports,
    pub(crate) settings: RuntimeSettings,
    pub(crate) extra_tools: Vec<(String, Arc<dyn Tool>)>,
}

impl Runtime {
    /// A runtime; `model: None` means no model is configured (answers come from knowledge).
    pub fn new(model: Option<Arc<dyn ChatModel>>, ports: Ports, settings: RuntimeSettings) -> Self {
        Self { model, ports, settings, extra_tools: Vec::new() }
    }

    /// Offers `tool` to agents that have `skill` (for integrations' tools).
    pub fn with_tool(mut self, skill: impl Into<String>, tool: Arc<dyn Tool>) -> Self {
        self.extra_tools.push((skill.into(), tool));
        self
    }

    /// The default model's name, if a model is configured.
    pub fn model_name(&self) -> Option<String> {
        self.model.as_ref().map(|m| m.model().to_owned())
    }

    /// Answers a new user message. Must be called inside a Tokio runtime.
    pub fn run(&self, input: RunInput) -> RunHandle {
        self.spawn(Start::New(input))
    }

    /// Continues a run paused on pending actions with the user's decisions.
    pub fn resume(&self, input: ResumeInput) -> Result<RunHandle, RuntimeError> {
        let ids: Vec<&str> = input.paused.pending.iter().map(|a| a.id.as_str()).collect();
        if let Some(d) = input.decisions.iter().find(|d| !ids.contains(&d.action_id.as_str())) {
            return Err(RuntimeError::UnknownAction(d.action_id.clone()));
        }
        Ok(self.spawn(Start::Resume(input)))
    }

    fn spawn(&self, start: Start) -> RunHandle {
        let (tx, rx) = mpsc::channel(self.settings.event_buffer.max(1));
        let cancel = CancellationToken::new();
        let run = Run::new(self.clone(), tx, cancel.clone(), &start);
        let outcome = tokio::spawn(run.execute(start));
        RunHandle { events: rx, outcome, cancel }
    }
}

/// Decisions by action id.
pub(crate) fn decisions_by_id(decisions: &[ActionDecision]) -> HashMap<&str, bool> {
    decisions.iter().map(|d| (d.action_id.as_str(), d.approved)).collect()
}
