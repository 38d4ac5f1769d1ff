//! The agent run for EchoForge, as a library with ports.
//!
//! The application layer loads an agent and its conversation, builds a [`RunInput`] and calls
//! [`Runtime::run`]; it forwards the [`RunEvent`]s (SSE, WebSocket, OpenAI chunks) and
//! persists the [`RunOutcome`] (messages, citations, usage, trace). A run:
//!
//! 1. evaluates the agent's routing rules ([`routing`]) before any model call;
//! 2. without a model, answers from knowledge (best passages, numbered, with citations, and a
//!    plain statement that no model is configured);
//! 3. otherwise assembles the prompt ([`prompt`]: agent prompt + personality + behaviour +
//!    grounding instructions; history repaired and trimmed to a token budget) and runs the
//!    tool loop: streamed model turns, tools validated against their schemas, run in parallel
//!    with timeouts, knowledge hits numbered as citations, an iteration cap;
//! 4. pauses on tools that need the user's confirmation ([`PendingAction`]), continued with
//!    [`Runtime::resume`];
//! 5. ends with `run.completed` (status `completed`, `awaiting_action` or `cancelled`) or
//!    `run.failed`, and a [`RunOutcome`] whose messages are always consistent (every tool call
//!    has its result, except the pending ones).
//!
//! Ports ([`KnowledgeSearch`], [`WebFetcher`], [`HandoffSink`]) are traits; [`memory`] has
//! in-memory implementations for tests.
//!
//! ```no_run
//! # async fn demo(model: Option<std::sync::Arc<dyn llm::ChatModel>>, ports: runtime::Ports,
//! #     agent: runtime::AgentSnapshot, history: Vec<llm::Message>) {
//! use runtime::{RunEvent, RunInput, RunStatus, Runtime, RuntimeSettings};
//!
//! let rt = Runtime::new(model, ports, RuntimeSettings::default()); // once, at start
//! let mut handle = rt.run(RunInput {
//!     run_id: domain::RunId::new(),
//!     conversation_id: domain::ConversationId::new(),
//!     agent,                      // AgentSnapshot built from the stored agent
//!     history,                    // stored messages, oldest first
//!     user_message: "Can I get a refund?".into(),
//!     api_key: None,              // BYOK key from the vault, if the workspace has one
//! });
//! while let Some(event) = handle.events.recv().await {
//!     // SSE: `event: {event.name()}` + `data: {serde_json::to_string(&event)}`
//!     if let RunEvent::MessageDelta { delta } = &event { print!("{delta}"); }
//! }
//! let outcome = handle.outcome.await.expect("run task");
//! // persist outcome.messages (citations on the last assistant message), outcome.trace,
//! // outcome.usage; store outcome.paused when outcome.status == RunStatus::AwaitingAction.
//! assert!(outcome.status != RunStatus::AwaitingAction || outcome.paused.is_some());
//! # }
//! ```

pub mod agent;
pub mod error;
pub mod events;
pub mod memory;
pub mod ports;
pub mod prompt;
pub mod routing;
mod run;
mod runtime;
pub mod tools;

pub use agent::AgentSnapshot;
pub use error::RuntimeError;
pub use events::{
    Citation, PausedRun, PendingAction, RunError, RunEvent, RunOutcome, RunStatus, RunUsage,
    StepKind, ToolCallRecord, ToolStatus, TraceStep,
};
pub use ports::{
    FetchedPage, HandoffRequest, HandoffSink, KnowledgeHit, KnowledgeQuery, KnowledgeSearch,
    WebFetcher,
};
pub use routing::{MatchCondition, RouteMatch, RouteTarget, RoutingRule, RoutingRules};
pub use run::DECLINED;
pub use runtime::{
    ActionDecision, CancellationToken, DisconnectPolicy, Ports, ResumeInput, RunHandle, RunInput,
    Runtime, RuntimeSettings,
};
pub use tools::{AgentTools, Tool, ToolContext, ToolOutput, ToolRegistry};
