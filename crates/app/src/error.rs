//! The use cases' error: each variant maps to one HTTP status and carries a stable code.

use serde::Serialize;
use store::StoreError;

/// A problem with one field of the input, addressed by a JSON pointer (`/email`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub path: String,
    pub code: String,
    pub message: String,
}

impl FieldError {
    pub fn new(path: &str, code: &str, message: impl Into<String>) -> Self {
        Self { path: path.to_owned(), code: code.to_owned(), message: message.into() }
    }
}

/// What went wrong, in terms a client can act on. 5xx variants never carry internals to the
/// client; their detail goes to the log.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("the request has invalid fields")]
    Validation(Vec<FieldError>),
    #[error("{message}")]
    BadRequest { code: &'static str, message: String },
    #[error("{message}")]
    Unauthorized { code: &'static str, message: String },
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// A limit of the workspace's plan is reached (HTTP 402, `plan_limit_reached`): `limit`
    /// names it (`agents`, `messages_per_month`, `knowledge_docs`), `message` the plan, the
    /// limit and how to upgrade.
    #[error("{message}")]
    PlanLimit { limit: &'static str, message: String },
    /// The workspace must pay before this (HTTP 402): its credits cannot pay for the action
    /// (`credits_exhausted`), or it is past due beyond the grace period and read-only
    /// (`workspace_read_only`).
    #[error("{message}")]
    PaymentRequired { code: &'static str, message: String },
    #[error("{what} not found")]
    NotFound { what: &'static str },
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    #[error("too many attempts; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// The workspace's API keys together made the requests a minute its plan allows
    /// (HTTP 429, `plan_rate_limited`, `limit` = `api_requests_per_minute`); `message` names
    /// the plan, the limit and how to upgrade.
    #[error("{message}")]
    PlanRateLimited { retry_after_secs: u64, message: String },
    #[error("service unavailable: {0}")]
    Unavailable(String),
    #[error("internal error: {0}")]
    Internal(String),
}

impl AppError {
    pub fn field(path: &str, code: &str, message: impl Into<String>) -> Self {
        AppError::Validation(vec![FieldError::new(path, code, message)])
    }

    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        AppError::Unauthorized { code, message: message.into() }
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        AppError::Forbidden { code, message: message.into() }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        AppError::Conflict { code, message: message.into() }
    }

    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        AppError::BadRequest { code, message: message.into() }
    }

    /// Maps a store error for a lookup of `what`.
    pub fn from_store(what: &'static str) -> impl Fn(StoreError) -> AppError {
        move |e| match e {
            StoreError::NotFound => AppError::NotFound { what },
            other => other.into(),
        }
    }
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => AppError::NotFound { what: "resource" },
            StoreError::Conflict(what) => {
                AppError::conflict("already_exists", format!("a {what} like this already exists"))
            }
            StoreError::LastOwner => AppError::conflict(
                "last_owner",
                "the workspace must keep at least one owner; make someone else owner first",
            ),
            StoreError::Database(e) => AppError::Unavailable(e.to_string()),
            other => AppError::Internal(other.to_string()),
        }
    }
}

impl From<vault::VaultError> for AppError {
    fn from(e: vault::VaultError) -> Self {
        AppError::Internal(e.to_string())
    }
}
