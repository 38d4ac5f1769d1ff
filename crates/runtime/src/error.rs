//! The runtime's one error type, for what the caller got wrong (a run itself never returns an
//! error: model and tool failures are events and a `failed` outcome).

/// What a caller of the runtime got wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RuntimeError {
    /// A routing rule's regex does not compile.
    #[error("routing pattern `{pattern}` is not a valid regular expression: {detail}")]
    InvalidRoutingPattern { pattern: String, detail: String },
    /// A resume named a pending action the paused run does not have.
    #[error("no pending action `{0}` in this run")]
    UnknownAction(String),
}

impl RuntimeError {
    /// A stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidRoutingPattern { .. } => "invalid_routing_pattern",
            Self::UnknownAction(_) => "unknown_action",
        }
    }
}
