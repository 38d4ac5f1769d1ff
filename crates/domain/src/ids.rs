//! Typed ids: a UUIDv7 shown with a type prefix (`ws_01934f…`), so an id pasted in the wrong
//! place is refused at the edge rather than matched against the wrong table.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use uuid::Uuid;

/// Why a string is not an id of the expected type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{value}` is not a valid {kind} id (expected `{prefix}_` followed by 32 hex digits)")]
pub struct IdError {
    pub kind: &'static str,
    pub prefix: &'static str,
    pub value: String,
}

macro_rules! typed_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal, $kind:literal) => {
        $(#[$doc])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(Uuid);

        impl $name {
            /// The prefix that marks this kind of id.
            pub const PREFIX: &'static str = $prefix;

            /// A fresh, time-ordered id.
            pub fn new() -> Self {
                Self(Uuid::now_v7())
            }

            /// Wraps a raw UUID (from storage).
            pub const fn from_uuid(uuid: Uuid) -> Self {
                Self(uuid)
            }

            /// The raw UUID.
            pub const fn uuid(&self) -> Uuid {
                self.0
            }

            /// Parses `prefix_hex`; anything else is an [`IdError`].
            pub fn parse(s: &str) -> Result<Self, IdError> {
                let err = || IdError { kind: $kind, prefix: $prefix, value: truncate(s) };
                let rest = s
                    .strip_prefix($prefix)
                    .and_then(|r| r.strip_prefix('_'))
                    .ok_or_else(err)?;
                if rest.len() != 32 {
                    return Err(err());
                }
                Uuid::try_parse(rest).map(Self).map_err(|_| err())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                let mut buf = [0u8; 32];
                f.write_str($prefix)?;
                f.write_str("_")?;
                f.write_str(self.0.simple().encode_lower(&mut buf))
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(self, f)
            }
        }

        impl FromStr for $name {
            type Err = IdError;
            fn from_str(s: &str) -> Result<Self, IdError> {
                Self::parse(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = IdError;
            fn try_from(s: String) -> Result<Self, IdError> {
                Self::parse(&s)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                Self::parse(&s).map_err(serde::de::Error::custom)
            }
        }
    };
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

typed_id!(/// A workspace: the tenant that owns everything else.
    WorkspaceId, "ws", "workspace");
typed_id!(/// A person who signs in.
    UserId, "usr", "user");
typed_id!(/// A pending invitation to a workspace.
    InviteId, "inv", "invite");
typed_id!(/// A workspace or agent API key.
    ApiKeyId, "key", "API key");
typed_id!(/// A signed-in session (a refresh-token family).
    SessionId, "ses", "session");
typed_id!(/// An agent (team member).
    AgentId, "agt", "agent");
typed_id!(/// A template (agent type, offering, persona template).
    TemplateId, "tpl", "template");
typed_id!(/// An onboarding wizard session.
    OnboardingId, "onb", "onboarding session");
typed_id!(/// A knowledge base.
    KnowledgeBaseId, "kb", "knowledge base");
typed_id!(/// A document in a knowledge base.
    DocumentId, "doc", "document");
typed_id!(/// A chunk of a document, the unit of search.
    ChunkId, "chk", "chunk");
typed_id!(/// A conversation with an agent.
    ConversationId, "conv", "conversation");
typed_id!(/// A message in a conversation.
    MessageId, "msg", "message");
typed_id!(/// One agent run (a trace).
    RunId, "run", "run");
typed_id!(/// A connection to an outside integration.
    ConnectionId, "con", "connection");
typed_id!(/// An MCP server a workspace registered as a tool source.
    McpServerId, "mcp", "MCP server");
typed_id!(/// A durable background job.
    JobId, "job", "job");
typed_id!(/// An audit event.
    AuditEventId, "aud", "audit event");
typed_id!(/// An agent revision.
    RevisionId, "rev", "revision");

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_through_their_text_form() {
        let id = WorkspaceId::new();
        let text = id.to_string();
        assert!(text.starts_with("ws_"));
        assert_eq!(text.len(), 3 + 32);
        assert_eq!(WorkspaceId::parse(&text).unwrap(), id);
    }

    #[test]
    fn an_id_of_another_kind_is_refused() {
        let user = UserId::new().to_string();
        let err = WorkspaceId::parse(&user).unwrap_err();
        assert_eq!(err.kind, "workspace");
        assert!(WorkspaceId::parse("ws_zz").is_err());
        assert!(WorkspaceId::parse("ws_").is_err());
        assert!(WorkspaceId::parse("").is_err());
    }

    #[test]
    fn ids_are_time_ordered() {
        let a = AgentId::new();
        let b = AgentId::new();
        assert!(a < b);
    }

    #[test]
    fn ids_serialize_as_strings() {
        let id = KnowledgeBaseId::new();
        let json = serde_json::to_string(&id).unwrap();
        assert_eq!(json, format!("\"{id}\""));
        let back: KnowledgeBaseId = serde_json::from_str(&json).unwrap();
        assert_eq!(back, id);
        assert!(serde_json::from_str::<AgentId>(&json).is_err());
    }
}
