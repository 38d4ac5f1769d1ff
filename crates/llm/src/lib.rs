//! Model providers for EchoForge: one object-safe [`ChatModel`] trait, implemented for any
//! OpenAI-compatible Chat Completions endpoint ([`OpenAiCompatible`]) and for the Anthropic
//! Messages API ([`Anthropic`]).
//!
//! - Requests and answers use a provider-neutral vocabulary ([`Message`], [`ToolSpec`],
//!   [`ChatRequest`], [`ChatResponse`]); streams yield typed [`StreamEvent`]s with tool calls
//!   already assembled from each vendor's fragments; [`collect_stream`] folds a stream back into
//!   a [`ChatResponse`].
//! - Transient failures (429, 5xx, connection errors) are retried with exponential backoff and
//!   jitter, honouring `Retry-After`, but only before any answer byte reached the caller.
//! - Errors are one [`LlmError`] enum whose messages are safe to show users: keys are
//!   `SecretString`s, redacted in `Debug` and scrubbed from provider messages.
//! - [`ProviderConfig::from_lookup`] reads `ECHOFORGE__LLM__*` (falling back to `OPENAI_*`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), llm::LlmError> {
//! use futures::StreamExt;
//! use llm::{ChatRequest, Message, ProviderConfig, StreamEvent, provider_from_config};
//!
//! let Some(config) = ProviderConfig::from_lookup(|k| std::env::var(k).ok())? else {
//!     return Ok(()); // no model configured: answer from knowledge only
//! };
//! let model = provider_from_config(config)?; // Arc<dyn ChatModel>, clone it into tasks
//! let mut request = ChatRequest::new(vec![Message::user("Hello")]);
//! request.model = Some("gpt-4o".into()); // per-agent override; `api_key` for BYOK
//! let mut stream = model.chat_stream(&request).await?;
//! while let Some(event) = stream.next().await {
//!     match event? {
//!         StreamEvent::TextDelta(text) => print!("{text}"),
//!         StreamEvent::ToolCallEnd { call, .. } => println!("call {}({})", call.name, call.arguments),
//!         StreamEvent::Finish { reason, .. } => println!("done: {reason:?}"),
//!         _ => {}
//!     }
//! }
//! # Ok(()) }
//! ```

mod anthropic;
mod config;
mod error;
mod openai;
mod sse;
mod stream;
mod tokens;
mod tool_calls;
mod transport;
mod types;

use std::sync::Arc;

use async_trait::async_trait;

pub use anthropic::{ANTHROPIC_VERSION, Anthropic, DEFAULT_MAX_TOKENS};
pub use config::{
    ANTHROPIC_BASE_URL, AuthStyle, GuardedResolver, OPENAI_BASE_URL, ProviderConfig, ProviderKind,
    RetryPolicy, Timeouts,
};
pub use error::LlmError;
pub use openai::OpenAiCompatible;
pub use secrecy::SecretString;
pub use sse::{SseEvent, SseParser};
pub use stream::{ChatStream, collect_stream};
pub use tokens::{estimate_message_tokens, estimate_messages_tokens, estimate_tokens};
pub use tool_calls::ToolCallAssembler;
pub use types::{
    ChatRequest, ChatResponse, FinishReason, Message, StreamEvent, ToolCall, ToolChoice, ToolSpec,
    Usage,
};

/// A chat model provider. Object-safe: share one as `Arc<dyn ChatModel>` across tasks.
#[async_trait]
pub trait ChatModel: Send + Sync {
    /// One complete answer.
    async fn chat(&self, request: &ChatRequest) -> Result<ChatResponse, LlmError>;

    /// A streamed answer. Returns once the provider accepted the request and sent its first
    /// bytes; later failures arrive as one `Err` item ending the stream.
    async fn chat_stream(&self, request: &ChatRequest) -> Result<ChatStream, LlmError>;

    /// The configured default model name (used when a request names none).
    fn model(&self) -> &str;
}

/// Builds the provider a configuration describes.
pub fn provider_from_config(config: ProviderConfig) -> Result<Arc<dyn ChatModel>, LlmError> {
    Ok(match config.kind {
        ProviderKind::OpenAiCompatible => Arc::new(OpenAiCompatible::new(config)?),
        ProviderKind::Anthropic => Arc::new(Anthropic::new(config)?),
    })
}
