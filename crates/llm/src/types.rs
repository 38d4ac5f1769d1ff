//! The provider-neutral vocabulary of a chat call: messages, tools, requests, responses and the
//! typed events of a streamed answer. Providers translate these to and from their wire formats.

use std::time::Duration;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// One message of a conversation, as the model sees it.
///
/// Serialises with a `role` tag (`system`, `user`, `assistant`, `tool`) so the runtime can store
/// histories as JSON without a second type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "lowercase")]
pub enum Message {
    /// Instructions. Anthropic receives all system messages joined as its top-level `system`.
    System { content: String },
    /// What the person said.
    User { content: String },
    /// What the model answered: text, tool calls, or both.
    Assistant {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<ToolCall>,
    },
    /// The result of one tool call, answered back to the model.
    Tool { tool_call_id: String, content: String },
}

impl Message {
    /// A system message.
    pub fn system(content: impl Into<String>) -> Self {
        Self::System { content: content.into() }
    }
    /// A user message.
    pub fn user(content: impl Into<String>) -> Self {
        Self::User { content: content.into() }
    }
    /// An assistant message with text only.
    pub fn assistant(content: impl Into<String>) -> Self {
        Self::Assistant { content: Some(content.into()), tool_calls: Vec::new() }
    }
    /// An assistant message that called tools (with optional text said alongside).
    pub fn assistant_tool_calls(content: Option<String>, tool_calls: Vec<ToolCall>) -> Self {
        Self::Assistant { content, tool_calls }
    }
    /// The answer to the tool call with id `tool_call_id`.
    pub fn tool_result(tool_call_id: impl Into<String>, content: impl Into<String>) -> Self {
        Self::Tool { tool_call_id: tool_call_id.into(), content: content.into() }
    }
    /// The text of this message (empty for an assistant message with only tool calls).
    pub fn text(&self) -> &str {
        match self {
            Self::System { content } | Self::User { content } | Self::Tool { content, .. } => {
                content
            }
            Self::Assistant { content, .. } => content.as_deref().unwrap_or(""),
        }
    }
}

/// A tool call requested by the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's id for this call; the tool result must quote it.
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments as a JSON text, exactly as the model wrote it (it may be invalid JSON: the
    /// runtime validates it against the tool's schema). Never empty: `{}` when the model gave none.
    pub arguments: String,
}

/// A tool the model may call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolSpec {
    /// Name, `^[a-zA-Z0-9_-]{1,64}$` for both vendors.
    pub name: String,
    /// What the tool does, for the model.
    pub description: String,
    /// JSON Schema of the arguments object.
    pub parameters: serde_json::Value,
}

/// Whether and which tools the model may call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum ToolChoice {
    /// The model decides (the default).
    #[default]
    Auto,
    /// No tool call allowed (e.g. the last turn of a tool loop).
    None,
    /// At least one tool call required.
    Required,
    /// This tool must be called.
    Tool(String),
}

/// One chat call.
#[derive(Debug, Clone, Default)]
pub struct ChatRequest {
    /// Model name; `None` uses the provider's configured model (per-agent override otherwise).
    pub model: Option<String>,
    /// The conversation, oldest first.
    pub messages: Vec<Message>,
    /// Tools offered to the model.
    pub tools: Vec<ToolSpec>,
    /// Tool policy (ignored when `tools` is empty).
    pub tool_choice: ToolChoice,
    /// Sampling temperature.
    pub temperature: Option<f32>,
    /// Output cap. Anthropic requires one: the provider uses 4096 when unset.
    pub max_tokens: Option<u32>,
    /// Stop sequences.
    pub stop: Vec<String>,
    /// Overrides the configured overall timeout for this call (for a stream: until its first byte).
    pub timeout: Option<Duration>,
    /// Bring-your-own key for this call, replacing the configured key.
    pub api_key: Option<SecretString>,
}

impl ChatRequest {
    /// A request with these messages and everything else default.
    pub fn new(messages: Vec<Message>) -> Self {
        Self { messages, ..Self::default() }
    }
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// Natural end or a stop sequence.
    Stop,
    /// Hit `max_tokens`.
    Length,
    /// Wants tool results before going on.
    ToolCalls,
    /// Refused by the provider's filter.
    ContentFilter,
    /// Anything else the provider said, verbatim.
    Other(String),
}

impl FinishReason {
    /// Maps an OpenAI `finish_reason`.
    pub fn from_openai(reason: &str) -> Self {
        match reason {
            "stop" => Self::Stop,
            "length" => Self::Length,
            "tool_calls" | "function_call" => Self::ToolCalls,
            "content_filter" => Self::ContentFilter,
            other => Self::Other(other.to_owned()),
        }
    }
    /// Maps an Anthropic `stop_reason`.
    pub fn from_anthropic(reason: &str) -> Self {
        match reason {
            "end_turn" | "stop_sequence" => Self::Stop,
            "max_tokens" => Self::Length,
            "tool_use" => Self::ToolCalls,
            "refusal" => Self::ContentFilter,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// Tokens counted by the provider.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    /// Input tokens.
    pub prompt_tokens: u32,
    /// Output tokens.
    pub completion_tokens: u32,
}

impl Usage {
    /// Input plus output.
    pub fn total_tokens(&self) -> u32 {
        self.prompt_tokens.saturating_add(self.completion_tokens)
    }
}

/// A complete answer.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatResponse {
    /// The model that answered (as the provider reported it).
    pub model: String,
    /// The text said (empty when the model only called tools).
    pub content: String,
    /// Tool calls, in the order the model made them.
    pub tool_calls: Vec<ToolCall>,
    /// Why it stopped.
    pub finish_reason: FinishReason,
    /// Token counts, when the provider reported them.
    pub usage: Option<Usage>,
}

impl ChatResponse {
    /// This answer as an assistant message to append to the history.
    pub fn to_message(&self) -> Message {
        let content = (!self.content.is_empty()).then(|| self.content.clone());
        Message::Assistant { content, tool_calls: self.tool_calls.clone() }
    }
}

/// One event of a streamed answer.
///
/// Order guarantees: a tool call's `ToolCallStart` comes before its deltas and its `ToolCallEnd`;
/// calls of different `index` may interleave; every started call ends before `Finish`; a
/// successful stream ends with exactly one `Finish`, preceded by `Usage` when the provider
/// reported it (some servers report it more than once: the last one counts). A failing stream
/// yields one `Err` and then ends.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// More answer text.
    TextDelta(String),
    /// A tool call began; `index` numbers the calls of this answer from 0.
    ToolCallStart { index: usize, id: String, name: String },
    /// A fragment of the call's JSON arguments.
    ToolCallDelta { index: usize, arguments: String },
    /// The call is complete; `call` holds the assembled arguments.
    ToolCallEnd { index: usize, call: ToolCall },
    /// Token counts.
    Usage(Usage),
    /// The answer is complete.
    Finish { reason: FinishReason, model: String },
}
