//! What a run reports: the live [`RunEvent`]s (named exactly as the SSE events of the chat API)
//! and the final [`RunOutcome`] with everything to persist (messages, citations, usage, trace).

use domain::{AgentId, ChunkId, ConversationId, DocumentId, RunId};
use llm::Message;
use serde::{Deserialize, Serialize};

use crate::routing::RouteMatch;

/// A source the answer may cite as `[index]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Citation {
    /// The number the model was shown (`[1]`, `[2]`, …), unique within a run.
    pub index: u32,
    pub chunk_id: ChunkId,
    pub document_id: DocumentId,
    pub document_title: String,
    pub source_url: Option<String>,
    pub page: Option<u32>,
    pub heading: Option<String>,
    /// A short excerpt of the passage.
    pub excerpt: String,
    pub score: f32,
}

/// A tool call waiting for the user's approval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingAction {
    /// `act_<uuid>`; what the user approves or rejects.
    pub id: String,
    /// The model's tool call id (the tool result must quote it).
    pub tool_call_id: String,
    pub tool: String,
    /// The validated arguments, as JSON text.
    pub arguments: String,
}

/// Token and tool counts of a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunUsage {
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    /// Tool executions (routed ones included; pending or rejected ones not).
    pub tool_calls: u32,
    pub model_calls: u32,
}

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Completed,
    Failed,
    /// Paused on [`PendingAction`]s; continue with `Runtime::resume`.
    AwaitingAction,
    Cancelled,
}

/// A run's error, safe to show users.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunError {
    /// Stable code, e.g. `llm_unavailable`.
    pub code: String,
    pub message: String,
}

/// One live event. Serialised with `type` set to the SSE event name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum RunEvent {
    #[serde(rename = "run.started")]
    RunStarted {
        run_id: RunId,
        conversation_id: ConversationId,
        agent_id: AgentId,
        /// The model that will be asked; `None` without a model.
        model: Option<String>,
    },
    /// More text, as the model streams it. This includes text the model says alongside tool
    /// calls ("Let me look that up."), so the concatenated deltas of a run may be longer than
    /// the final answer in `message.completed`.
    #[serde(rename = "message.delta")]
    MessageDelta { delta: String },
    #[serde(rename = "tool.started")]
    ToolStarted { call_id: String, tool: String, arguments: String },
    #[serde(rename = "tool.completed")]
    ToolCompleted {
        call_id: String,
        tool: String,
        /// `false` for failures, timeouts and invalid arguments.
        ok: bool,
        /// A one-line summary of the result or the error.
        summary: String,
        latency_ms: u64,
    },
    /// A new source the answer may cite.
    #[serde(rename = "citation")]
    Citation(Citation),
    #[serde(rename = "action.pending")]
    ActionPending(PendingAction),
    /// The final answer (the last assistant message's text), with every citation of the run.
    /// Not sent for paused, cancelled or failed runs.
    #[serde(rename = "message.completed")]
    MessageCompleted { content: String, citations: Vec<Citation> },
    /// The run ended without error: `completed`, `awaiting_action` or `cancelled`.
    #[serde(rename = "run.completed")]
    RunCompleted { run_id: RunId, status: RunStatus, usage: RunUsage },
    #[serde(rename = "run.failed")]
    RunFailed { run_id: RunId, code: String, message: String },
}

impl RunEvent {
    /// The SSE event name (`event:` line).
    pub fn name(&self) -> &'static str {
        match self {
            Self::RunStarted { .. } => "run.started",
            Self::MessageDelta { .. } => "message.delta",
            Self::ToolStarted { .. } => "tool.started",
            Self::ToolCompleted { .. } => "tool.completed",
            Self::Citation(_) => "citation",
            Self::ActionPending(_) => "action.pending",
            Self::MessageCompleted { .. } => "message.completed",
            Self::RunCompleted { .. } => "run.completed",
            Self::RunFailed { .. } => "run.failed",
        }
    }
}

/// How a tool call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolStatus {
    Ok,
    Error,
    Timeout,
    InvalidArguments,
    UnknownTool,
    AwaitingConfirmation,
    Rejected,
}

/// One tool call of a run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCallRecord {
    pub call_id: String,
    pub tool: String,
    pub arguments: String,
    pub status: ToolStatus,
    pub result_summary: String,
    pub latency_ms: u64,
}

/// One step of a run's trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TraceStep {
    /// Milliseconds since the run started.
    pub at_ms: u64,
    #[serde(flatten)]
    pub kind: StepKind,
}

/// What happened in a trace step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum StepKind {
    /// Routing rules were evaluated (only for agents that have rules); `matched: None` means
    /// no rule matched.
    Routing {
        matched: Option<RouteMatch>,
        fallback_to_llm: bool,
    },
    ModelCall {
        model: String,
        prompt_tokens: u32,
        completion_tokens: u32,
        latency_ms: u64,
        /// Time to the first streamed text, when there was text.
        first_token_ms: Option<u64>,
        tool_calls: usize,
        error: Option<RunError>,
    },
    ToolCall(ToolCallRecord),
    /// Answered from knowledge because no model is configured.
    NoModelFallback {
        hits: usize,
    },
    /// The tool loop hit its iteration cap.
    IterationCap {
        cap: usize,
    },
    /// The event receiver went away; `continued` says whether the run went on in the
    /// background (`true`) or was cancelled (`false`).
    ClientDisconnected {
        continued: bool,
    },
    /// The caller cancelled the run.
    Cancelled {
        reason: String,
    },
    /// The run was resumed after the user decided on pending actions.
    Resumed {
        approved: Vec<String>,
        rejected: Vec<String>,
    },
    Error(RunError),
}

/// A paused run, to store with the conversation and hand back to `Runtime::resume`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PausedRun {
    pub run_id: RunId,
    pub pending: Vec<PendingAction>,
    /// Citations numbered so far, so numbering continues after the resume.
    pub citations: Vec<Citation>,
    /// Model turns used so far (counts towards the iteration cap).
    pub iterations: usize,
}

/// Everything a finished (or paused) run produced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunOutcome {
    pub run_id: RunId,
    pub status: RunStatus,
    /// The final answer text (the last assistant message's text; empty when none).
    pub text: String,
    /// Sources numbered in this run (all knowledge hits shown to the model).
    pub citations: Vec<Citation>,
    pub tool_calls: Vec<ToolCallRecord>,
    pub usage: RunUsage,
    pub trace: Vec<TraceStep>,
    /// Messages to append to the conversation, in order: the user's message (for `run`),
    /// assistant messages with their tool calls, tool results. Every tool call has its result,
    /// except the calls of `paused.pending`.
    pub messages: Vec<Message>,
    /// Set when `status` is `awaiting_action`.
    pub paused: Option<PausedRun>,
    /// Set when `status` is `failed`.
    pub error: Option<RunError>,
    /// The model asked (`None` without a model or when no model call was needed).
    pub model: Option<String>,
    pub duration_ms: u64,
}
