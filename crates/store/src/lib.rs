//! EchoForge's persistence API with two real backends: SQLite (embedded, the default) and
//! PostgreSQL. The same SQL runs on both wherever the engines agree (`$N` placeholders,
//! `RETURNING`, `ON CONFLICT`, ids as TEXT, epoch-ms BIGINT times, JSON as TEXT); where they do
//! not (the job queue's lease), each backend gets its own statement.
//!
//! Every method on workspace-owned data takes a [`TenantScope`], which only the authorization
//! code in `app` mints, so a query that forgets its tenant does not compile.
//!
//! SQLite runs in WAL mode with one writer connection and a pool of readers: writes are
//! serialised in-process instead of fighting over the file lock.

mod accounts;
mod api_keys;
mod audit;
mod billing;
mod db;
mod jobs;
pub mod testing;
mod workspaces;
// Agents, knowledge, conversations, runs and usage.
mod agents;
mod conversations;
mod handoffs;
mod integrations;
mod kinds;
mod knowledge;
mod mcp;
mod model_providers;
mod onboarding;
mod run_records;
mod runs;
mod templates;
mod url_sync;
mod usage;

pub use accounts::{EmailPurpose, NewUser, RefreshOutcome, Session, User};
pub use api_keys::{ApiKey, NewApiKey};
pub use audit::{AuditEvent, NewAuditEvent};
pub use billing::{
    BILLING_QUEUE, CreditEntry, EventOutcome, METERED_METRIC, NewCreditEntry, REPORT_USAGE_JOB,
    StripeEventRecord, Subscription, SubscriptionChange, UsageRecord, UsageToReport,
};
pub use db::{Backend, Store, StoreOptions, redact_url};
pub use jobs::{Job, JobStatus, NewJob, backoff_ms};
pub use workspaces::{Invite, Member, MembershipSummary, NewWorkspace, Workspace, WorkspacePatch};
// Agents, knowledge, conversations, runs and usage.
pub use agents::{Agent, AgentFields, AgentRevision, AgentUpdate, NewAgent};
pub use conversations::{Conversation, ConversationFilter, Message, NewConversation, NewMessage};
pub use handoffs::{Handoff, HandoffActor, HandoffEvent, HandoffMove, NewHandoff};
pub use integrations::{AgentIntegration, Connection, NewConnection, OAuthState};
pub use kinds::{
    ActionStatus, ActorKind, Channel, DocumentStatus, HandoffState, HandoffStatus, MessageRole,
    OnboardingStatus, RunStatus, StepKind, SyncFrequency,
};
pub use knowledge::{
    Document, DocumentIndexed, KnowledgeBase, KnowledgeBasePatch, KnowledgeBaseStats, NewDocument,
    NewKnowledgeBase,
};
pub use mcp::{AgentMcpTools, McpServer, NewMcpServer};
pub use model_providers::{SetModelProvider, WorkspaceModelProvider};
pub use onboarding::OnboardingSession;
pub use run_records::RunRecord;
pub use runs::{NewPendingAction, NewRun, NewRunStep, PendingAction, Run, RunStep, RunWithSteps};
pub use templates::{NewTemplate, StoredTemplate};
pub use usage::{AgentDailyUsage, AgentUsageTotal, DailyUsage, UsageIncrement, UsageTotal};

use domain::WorkspaceId;

/// Proof that the caller was authorized to act inside one workspace. Store methods on
/// workspace-owned rows take it and filter by it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TenantScope {
    workspace_id: WorkspaceId,
}

impl TenantScope {
    /// Mints a scope. Only the authorization code (and tests) may call this; clippy's
    /// `disallowed-methods` enforces it elsewhere.
    #[doc(hidden)]
    pub fn assume(workspace_id: WorkspaceId) -> Self {
        Self { workspace_id }
    }

    pub fn workspace_id(&self) -> WorkspaceId {
        self.workspace_id
    }
}

/// A page of a list, newest first, with the cursor for the next page.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub data: Vec<T>,
    pub next_cursor: Option<String>,
}

/// What can go wrong in storage.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("not found")]
    NotFound,
    /// A unique constraint was violated; the string names what was duplicated.
    #[error("already exists: {0}")]
    Conflict(&'static str),
    #[error("the workspace must keep at least one owner")]
    LastOwner,
    #[error("database URL `{0}` is not supported (use sqlite://… or postgres://…)")]
    UnsupportedUrl(String),
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        match &e {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                let msg = db.message().to_owned() + db.constraint().unwrap_or("");
                StoreError::Conflict(conflict_name(&msg))
            }
            sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => {
                StoreError::Corrupt(e.to_string())
            }
            _ => StoreError::Database(e),
        }
    }
}

/// Names the duplicated thing from the engine's message (SQLite: `users.email`; PostgreSQL:
/// `users_email_key`).
fn conflict_name(msg: &str) -> &'static str {
    const KNOWN: [(&str, &str); 8] = [
        ("email", "email"),
        ("key_hash", "api_key"),
        ("token_hash", "token"),
        ("memberships", "membership"),
        ("slug", "slug"),
        ("public_id", "public_id"),
        ("content_sha256", "duplicate"),
        ("agent_revisions", "version"),
    ];
    KNOWN.iter().find(|(needle, _)| msg.contains(needle)).map(|(_, name)| *name).unwrap_or("row")
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// Keyset pagination over time-ordered ids: decodes a cursor (the last id seen).
pub(crate) fn clamp_limit(limit: Option<u32>) -> i64 {
    i64::from(limit.unwrap_or(50).clamp(1, 200))
}

/// Cuts a `limit + 1` fetch down to a page and derives its next cursor.
pub(crate) fn page<T>(rows: &mut Vec<T>, limit: i64, cursor_of: impl Fn(&T) -> String) -> Page<T> {
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next_cursor = if more { rows.last().map(cursor_of) } else { None };
    Page { data: std::mem::take(rows), next_cursor }
}

/// A JSON value stored as TEXT (portable across both engines).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct JsonText(pub serde_json::Value);

impl TryFrom<String> for JsonText {
    type Error = serde_json::Error;
    fn try_from(s: String) -> std::result::Result<Self, serde_json::Error> {
        serde_json::from_str(&s).map(JsonText)
    }
}
