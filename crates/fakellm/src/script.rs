//! What a test scripts: a queue of [`Reply`]s, each served once, in order, to the next chat
//! request (OpenAI or Anthropic alike; the server renders each reply in the caller's protocol).

use std::time::Duration;

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Reply {
    pub(crate) kind: ReplyKind,
    /// Text (and each tool call's arguments) is streamed in this many deltas.
    pub(crate) chunks: usize,
    /// Pause before each streamed delta after the first.
    pub(crate) chunk_delay: Duration,
    /// Pause before the response headers.
    pub(crate) delay: Duration,
    /// Reported usage; estimated from the texts (chars / 4) when unset.
    pub(crate) usage: Option<(u32, u32)>,
    /// Model name to report; the requested one when unset.
    pub(crate) model: Option<String>,
}

#[derive(Debug, Clone)]
pub(crate) enum ReplyKind {
    Text(String),
    ToolCalls { text: Option<String>, calls: Vec<ScriptedCall>, interleave: bool },
    Error { status: u16, message: String, retry_after: Option<u64> },
    Malformed,
    Cut { text: String, after_chunks: usize },
}

/// A scripted tool call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptedCall {
    /// Call id; generated (`call_N` / `toolu_N`) when `None`.
    pub id: Option<String>,
    /// Tool name.
    pub name: String,
    /// Arguments JSON text, sent as-is (so a test may script invalid JSON).
    pub arguments: String,
}

impl ScriptedCall {
    /// A call with a generated id.
    pub fn new(name: impl Into<String>, arguments: impl Into<String>) -> Self {
        Self { id: None, name: name.into(), arguments: arguments.into() }
    }
    /// Sets the id.
    pub fn with_id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }
}

impl Reply {
    fn of(kind: ReplyKind) -> Self {
        Self {
            kind,
            chunks: 1,
            chunk_delay: Duration::ZERO,
            delay: Duration::ZERO,
            usage: None,
            model: None,
        }
    }

    /// Answers this text (`finish_reason: stop`).
    pub fn text(text: impl Into<String>) -> Self {
        Self::of(ReplyKind::Text(text.into()))
    }

    /// Calls one tool (`finish_reason: tool_calls`).
    pub fn tool_call(name: impl Into<String>, arguments: impl Into<String>) -> Self {
        Self::tool_calls(vec![ScriptedCall::new(name, arguments)])
    }

    /// Calls several tools in parallel.
    pub fn tool_calls(calls: Vec<ScriptedCall>) -> Self {
        Self::of(ReplyKind::ToolCalls { text: None, calls, interleave: false })
    }

    /// Says `text` before the tool calls (only for replies built with `tool_call(s)`).
    pub fn with_text(mut self, said: impl Into<String>) -> Self {
        if let ReplyKind::ToolCalls { text, .. } = &mut self.kind {
            *text = Some(said.into());
        }
        self
    }

    /// Streams the argument fragments of parallel calls interleaved (call 0 fragment, call 1
    /// fragment, …) instead of one call after the other (OpenAI protocol only; Anthropic's
    /// content blocks never interleave).
    pub fn interleaved(mut self) -> Self {
        if let ReplyKind::ToolCalls { interleave, .. } = &mut self.kind {
            *interleave = true;
        }
        self
    }

    /// An HTTP error with a vendor-shaped error body.
    pub fn error(status: u16, message: impl Into<String>) -> Self {
        Self::of(ReplyKind::Error { status, message: message.into(), retry_after: None })
    }

    /// HTTP 429 with `Retry-After: secs`.
    pub fn rate_limited(retry_after_secs: u64) -> Self {
        Self::of(ReplyKind::Error {
            status: 429,
            message: "Rate limit reached, slow down".into(),
            retry_after: Some(retry_after_secs),
        })
    }

    /// HTTP 500.
    pub fn server_error() -> Self {
        Self::error(500, "The server had an error while processing your request")
    }

    /// HTTP 200 with a body that is not valid JSON (or, streaming, a chunk that is not).
    pub fn malformed() -> Self {
        Self::of(ReplyKind::Malformed)
    }

    /// Starts answering `text` in `total_chunks` deltas, then cuts the connection after
    /// `after_chunks` of them, without an end marker.
    pub fn cut_after(text: impl Into<String>, total_chunks: usize, after_chunks: usize) -> Self {
        let mut r = Self::of(ReplyKind::Cut { text: text.into(), after_chunks });
        r.chunks = total_chunks.max(1);
        r
    }

    /// A reply that never comes (delays the headers by an hour): for timeout tests.
    pub fn hang() -> Self {
        Self::text("too late").delay(Duration::from_secs(3600))
    }

    /// Streams the text (and each call's arguments) in `n` deltas.
    pub fn in_chunks(mut self, n: usize) -> Self {
        self.chunks = n.max(1);
        self
    }

    /// Waits this long before each streamed delta after the first.
    pub fn chunk_delay(mut self, d: Duration) -> Self {
        self.chunk_delay = d;
        self
    }

    /// Waits this long before sending the response headers.
    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }

    /// Reports this usage instead of the estimate.
    pub fn with_usage(mut self, prompt_tokens: u32, completion_tokens: u32) -> Self {
        self.usage = Some((prompt_tokens, completion_tokens));
        self
    }

    /// Reports this model name instead of the requested one.
    pub fn with_model(mut self, model: impl Into<String>) -> Self {
        self.model = Some(model.into());
        self
    }
}

/// Splits `text` into at most `n` non-empty pieces of near-equal character counts.
pub(crate) fn split(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return Vec::new();
    }
    let size = chars.len().div_ceil(n.max(1));
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_every_character_in_order() {
        let parts = split("héllo wörld", 4);
        assert_eq!(parts.len(), 4);
        assert_eq!(parts.concat(), "héllo wörld");
        assert_eq!(split("ab", 5), vec!["a", "b"]);
        assert!(split("", 3).is_empty());
    }
}
