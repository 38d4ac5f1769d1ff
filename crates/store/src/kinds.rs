//! The closed vocabularies stored as TEXT (statuses, roles, channels): one enum each, written
//! with its lowercase name and refused as `Corrupt` when the database holds anything else.

use serde::{Deserialize, Serialize};

use crate::StoreError;

macro_rules! text_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident => $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),*
        }

        impl $name {
            /// The stored (and serialised) name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),*
                }
            }

            /// Parses the stored name.
            pub fn parse(s: &str) -> Option<Self> {
                match s {
                    $($text => Some($name::$variant),)*
                    _ => None,
                }
            }
        }

        impl TryFrom<String> for $name {
            type Error = StoreError;
            fn try_from(s: String) -> Result<Self, StoreError> {
                Self::parse(&s).ok_or_else(|| StoreError::Corrupt(format!("{} `{s}`", stringify!($name))))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

text_enum!(/// Where an onboarding wizard session is.
    OnboardingStatus { InProgress => "in_progress", Completed => "completed", Abandoned => "abandoned" });
text_enum!(/// Where a document is in ingestion.
    DocumentStatus { Pending => "pending", Processing => "processing", Indexed => "indexed", Failed => "failed" });
text_enum!(/// How often URL sources of a knowledge base are re-synced.
    SyncFrequency { Manual => "manual", Daily => "daily", Weekly => "weekly" });
text_enum!(/// The surface a conversation came through.
    Channel { Web => "web", Api => "api", Widget => "widget", OpenAi => "openai", Mcp => "mcp" });
text_enum!(/// Who wrote a message.
    MessageRole { User => "user", Assistant => "assistant", System => "system", Tool => "tool", HumanAgent => "human_agent" });
text_enum!(/// Where an agent run is.
    RunStatus { Running => "running", Completed => "completed", Failed => "failed", Cancelled => "cancelled", AwaitingAction => "awaiting_action", Interrupted => "interrupted" });
text_enum!(/// What one step of a run did.
    StepKind { ModelCall => "model_call", ToolCall => "tool_call", Routing => "routing", Error => "error" });
text_enum!(/// The user's decision on a side-effecting tool call.
    ActionStatus { Pending => "pending", Approved => "approved", Rejected => "rejected", Expired => "expired" });
text_enum!(/// Where a request for a human is: `waiting` for an operator, taken by one (`human`), then
    /// `returned` to the bot or `closed`. (`requested`/`delivered`: handoffs without a live
    /// conversation, and rows from before live handoff.)
    HandoffStatus { Requested => "requested", Delivered => "delivered", Closed => "closed", Waiting => "waiting", Human => "human", Returned => "returned" });
text_enum!(/// Who answers a conversation: the `bot`, nobody yet (`waiting` for an operator), a person
    /// (`human`), or nobody any more (`closed` by an operator; the bot answers a later message).
    HandoffState { Bot => "bot", Waiting => "waiting", Human => "human", Closed => "closed" });
text_enum!(/// Who did something to a handoff.
    ActorKind { Agent => "agent", User => "user", Key => "key", Customer => "customer" });

impl RunStatus {
    /// Whether the run is over (no more steps, no status change). `interrupted`: the process
    /// running it stopped (a crash) before it ended.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Completed
                | RunStatus::Failed
                | RunStatus::Cancelled
                | RunStatus::Interrupted
        )
    }
}

/// Serialises a JSON value for a TEXT column.
pub(crate) fn json(value: &serde_json::Value) -> String {
    value.to_string()
}
