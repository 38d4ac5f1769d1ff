//! The one error type of this crate. Every message is safe to show to a user: it never quotes an
//! API key (provider messages are scrubbed of the key before they land here) nor a request body.

use std::time::Duration;

/// What went wrong talking to a model provider.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    /// The provider refused the key (HTTP 401/403), or no key was given where one is required.
    #[error("the model provider rejected the API key")]
    Unauthorized,
    /// Too many requests, still refused after the configured retries.
    #[error("the model provider is rate limiting requests{}", fmt_retry_after(*.retry_after))]
    RateLimited {
        /// How long the provider asked us to wait, when it said.
        retry_after: Option<Duration>,
    },
    /// The provider refused the request as malformed (HTTP 400/422 and the like).
    #[error("the model provider refused the request: {message}")]
    BadRequest {
        /// The provider's explanation, scrubbed and shortened.
        message: String,
    },
    /// The model does not exist or this key may not use it.
    #[error("the model `{model}` was not found at the provider")]
    ModelNotFound {
        /// The model name that was asked for.
        model: String,
    },
    /// The prompt is longer than the model's context window.
    #[error("the conversation is too long for the model's context window")]
    ContextTooLong,
    /// No answer in time (overall, or no stream chunk within the idle timeout).
    #[error("the model provider did not answer in time")]
    Timeout,
    /// The provider is down or overloaded (5xx, connection refused), still after retries.
    #[error("the model provider is unavailable: {detail}")]
    Unavailable {
        /// A short description (status code or connection failure kind).
        detail: String,
    },
    /// The provider answered something that is not a valid response.
    #[error("the model provider sent an invalid response: {detail}")]
    InvalidResponse {
        /// What was wrong, without the payload.
        detail: String,
    },
    /// A stream broke off after it had started (connection cut, missing end marker).
    #[error("the model's answer was interrupted: {detail}")]
    StreamInterrupted {
        /// What happened.
        detail: String,
    },
    /// The provider configuration is invalid.
    #[error("invalid model provider configuration: {message}")]
    Config {
        /// Which setting is wrong and why.
        message: String,
    },
}

fn fmt_retry_after(retry_after: Option<Duration>) -> String {
    match retry_after {
        Some(d) => format!(" (retry after {}s)", d.as_secs_f64().ceil() as u64),
        None => String::new(),
    }
}

impl LlmError {
    /// A stable machine-readable code, for API error bodies and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthorized => "llm_unauthorized",
            Self::RateLimited { .. } => "llm_rate_limited",
            Self::BadRequest { .. } => "llm_bad_request",
            Self::ModelNotFound { .. } => "llm_model_not_found",
            Self::ContextTooLong => "llm_context_too_long",
            Self::Timeout => "llm_timeout",
            Self::Unavailable { .. } => "llm_unavailable",
            Self::InvalidResponse { .. } => "llm_invalid_response",
            Self::StreamInterrupted { .. } => "llm_stream_interrupted",
            Self::Config { .. } => "llm_config",
        }
    }

    /// Whether trying the same request again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. }
                | Self::Timeout
                | Self::Unavailable { .. }
                | Self::StreamInterrupted { .. }
        )
    }
}
