//! One run as a task: routing, the no-model fallback, the tool loop with streaming, tool
//! execution with validation, timeouts and confirmation, and the outcome. Every path ends in
//! [`Run::finish`], which sends the terminal event and assembles the [`RunOutcome`].

use std::time::Instant;

use domain::{ConversationId, RunId};
use llm::{ChatRequest, LlmError, Message, SecretString, ToolCall};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::agent::AgentSnapshot;
use crate::events::{
    Citation, PausedRun, PendingAction, RunError, RunEvent, RunOutcome, RunStatus, RunUsage,
    StepKind, ToolCallRecord, ToolStatus, TraceStep,
};
use crate::prompt::{system_prompt, trim_history};
use crate::runtime::{DisconnectPolicy, ResumeInput, RunInput, Runtime};
use crate::tools::{ArgumentError, SEARCH_KNOWLEDGE, ToolContext, ToolRegistry};

mod answers;
mod exec;
mod resume;
mod start;
mod tool_loop;

pub use resume::DECLINED;

/// Tool call ids of calls made by routing rules rather than by the model.
pub(crate) const ROUTED_CALL_PREFIX: &str = "route_";

/// How a run was started.
pub(crate) enum Start {
    New(RunInput),
    Resume(ResumeInput),
}

/// How a run ended, before the outcome is assembled.
pub(crate) enum End {
    Completed,
    Failed(RunError),
    Awaiting(Vec<PendingAction>),
    Cancelled(String),
}

/// One model turn's result.
enum Turn {
    Done { text: String, calls: Vec<ToolCall> },
    Failed(RunError),
    Cancelled(String),
}

/// One executed (or refused) tool call, in call order.
struct CallResult {
    call_id: String,
    content: String,
    status: ToolStatus,
    /// Numbered hits, for `search_knowledge`.
    cited: Vec<(Citation, String)>,
}

pub(crate) struct Run {
    rt: Runtime,
    tx: mpsc::Sender<RunEvent>,
    cancel: CancellationToken,
    disconnected: bool,
    started: Instant,
    run_id: RunId,
    conversation_id: ConversationId,
    agent: AgentSnapshot,
    api_key: Option<SecretString>,
    registry: ToolRegistry,
    ctx: ToolContext,
    trace: Vec<TraceStep>,
    usage: RunUsage,
    citations: Vec<Citation>,
    tool_calls: Vec<ToolCallRecord>,
    messages: Vec<Message>,
    model_name: Option<String>,
    text: String,
    iterations: usize,
}

pub(crate) fn llm_error(e: &LlmError) -> RunError {
    RunError { code: e.code().to_owned(), message: e.to_string() }
}

fn ms(since: Instant) -> u64 {
    since.elapsed().as_millis().min(u64::MAX as u128) as u64
}

impl Run {
    pub(crate) fn new(
        rt: Runtime,
        tx: mpsc::Sender<RunEvent>,
        cancel: CancellationToken,
        start: &Start,
    ) -> Self {
        let (run_id, conversation_id, agent, api_key) = match start {
            Start::New(i) => (i.run_id, i.conversation_id, i.agent.clone(), i.api_key.clone()),
            Start::Resume(i) => {
                (i.paused.run_id, i.conversation_id, i.agent.clone(), i.api_key.clone())
            }
        };
        let registry = ToolRegistry::for_agent(&agent, &rt.ports, &rt.extra_tools);
        let ctx = ToolContext {
            workspace_id: agent.workspace_id,
            agent_id: agent.id,
            conversation_id,
            knowledge_base_ids: agent.knowledge_base_ids.clone(),
            top_k: rt.settings.top_k,
        };
        Self {
            rt,
            tx,
            cancel,
            disconnected: false,
            started: Instant::now(),
            run_id,
            conversation_id,
            agent,
            api_key,
            registry,
            ctx,
            trace: Vec::new(),
            usage: RunUsage::default(),
            citations: Vec::new(),
            tool_calls: Vec::new(),
            messages: Vec::new(),
            model_name: None,
            text: String::new(),
            iterations: 0,
        }
    }

    pub(crate) async fn execute(mut self, start: Start) -> RunOutcome {
        let model = self
            .rt
            .model
            .as_ref()
            .map(|m| self.agent.model.clone().unwrap_or_else(|| m.model().to_owned()));
        self.model_name = model.clone();
        self.emit(RunEvent::RunStarted {
            run_id: self.run_id,
            conversation_id: self.conversation_id,
            agent_id: self.agent.id,
            model,
        })
        .await;
        let end = match start {
            Start::New(input) => self.start_new(input).await,
            Start::Resume(input) => self.resume(input).await,
        };
        self.finish(end).await
    }

    fn step(&mut self, kind: StepKind) {
        self.trace.push(TraceStep { at_ms: ms(self.started), kind });
    }

    /// Sends an event unless the receiver is gone; a disconnect is traced once and, with
    /// [`DisconnectPolicy::Cancel`], cancels the run.
    async fn emit(&mut self, event: RunEvent) {
        if self.disconnected {
            return;
        }
        let delivered = if self.cancel.is_cancelled() {
            // Cancelled runs do not wait for a slow reader; only a closed channel matters.
            !matches!(self.tx.try_send(event), Err(mpsc::error::TrySendError::Closed(_)))
        } else {
            tokio::select! {
                r = self.tx.send(event.clone()) => r.is_ok(),
                () = self.cancel.cancelled() => {
                    !matches!(self.tx.try_send(event), Err(mpsc::error::TrySendError::Closed(_)))
                }
            }
        };
        if !delivered {
            self.disconnected = true;
            let cancel = self.rt.settings.on_disconnect == DisconnectPolicy::Cancel;
            self.step(StepKind::ClientDisconnected {
                continued: !cancel && !self.cancel.is_cancelled(),
            });
            if cancel {
                self.cancel.cancel();
            }
        }
    }

    /// The conversation sent to the model: system prompt, trimmed history, the new message.
    fn conversation(&self, base: &str, history: &[Message], user: Option<&str>) -> Vec<Message> {
        let grounded = self.registry.get(SEARCH_KNOWLEDGE).is_some();
        let mut conv = vec![Message::system(system_prompt(&self.agent, base, grounded))];
        conv.extend(trim_history(history, self.rt.settings.history_token_budget));
        if let Some(u) = user {
            conv.push(Message::user(u));
        }
        conv
    }
}

fn request(run: &Run, messages: Vec<Message>) -> ChatRequest {
    let settings = run.agent.personality.llm_settings();
    ChatRequest {
        model: run.agent.model.clone(),
        messages,
        tools: run.registry.specs(),
        temperature: Some(settings.temperature as f32),
        max_tokens: Some(settings.max_tokens),
        api_key: run.api_key.clone(),
        ..ChatRequest::default()
    }
}

fn record(run: &mut Run, record: ToolCallRecord) {
    if matches!(record.status, ToolStatus::Ok | ToolStatus::Error | ToolStatus::Timeout) {
        run.usage.tool_calls += 1;
    }
    run.tool_calls.push(record.clone());
    run.step(StepKind::ToolCall(record));
}

fn status_of(end: &End) -> RunStatus {
    match end {
        End::Completed => RunStatus::Completed,
        End::Failed(_) => RunStatus::Failed,
        End::Awaiting(_) => RunStatus::AwaitingAction,
        End::Cancelled(_) => RunStatus::Cancelled,
    }
}

impl Run {
    async fn finish(mut self, end: End) -> RunOutcome {
        let status = status_of(&end);
        let mut error = None;
        let mut paused = None;
        match end {
            End::Completed => {
                let citations = self.citations.clone();
                self.emit(RunEvent::MessageCompleted { content: self.text.clone(), citations })
                    .await;
            }
            End::Awaiting(pending) => {
                paused = Some(PausedRun {
                    run_id: self.run_id,
                    pending,
                    citations: self.citations.clone(),
                    iterations: self.iterations,
                });
            }
            End::Cancelled(reason) => self.step(StepKind::Cancelled { reason }),
            End::Failed(e) => {
                self.step(StepKind::Error(e.clone()));
                error = Some(e);
            }
        }
        let terminal = match &error {
            Some(e) => RunEvent::RunFailed {
                run_id: self.run_id,
                code: e.code.clone(),
                message: e.message.clone(),
            },
            None => RunEvent::RunCompleted { run_id: self.run_id, status, usage: self.usage },
        };
        self.emit(terminal).await;
        RunOutcome {
            run_id: self.run_id,
            status,
            text: self.text,
            citations: self.citations,
            tool_calls: self.tool_calls,
            usage: self.usage,
            trace: self.trace,
            messages: self.messages,
            paused,
            error,
            model: self.model_name,
            duration_ms: ms(self.started),
        }
    }
}

/// The message for a refused call's arguments.
fn argument_error_text(e: &ArgumentError, registry: &ToolRegistry) -> (String, ToolStatus) {
    match e {
        ArgumentError::UnknownTool(name) => {
            let names: Vec<String> = registry.specs().into_iter().map(|s| s.name).collect();
            (
                format!(
                    "Error: there is no tool named `{name}`. Available tools: {}.",
                    names.join(", ")
                ),
                ToolStatus::UnknownTool,
            )
        }
        ArgumentError::Invalid(msg) => (
            format!("Error: {msg}. Correct the arguments and call the tool again."),
            ToolStatus::InvalidArguments,
        ),
    }
}
