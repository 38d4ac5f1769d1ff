//! Who may do what: membership roles and API-key permissions.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A member's role in a workspace. Ordered by power: `Member < Admin < Owner`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Member,
    Admin,
    Owner,
}

impl Role {
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::Admin => "admin",
            Role::Owner => "owner",
        }
    }

    /// Owners and admins manage the workspace (profile, members, invites, keys, audit log).
    pub const fn can_manage(self) -> bool {
        matches!(self, Role::Owner | Role::Admin)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role or permission name that is not one of ours.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} `{value}` (expected one of: {expected})")]
pub struct UnknownName {
    pub what: &'static str,
    pub value: String,
    pub expected: &'static str,
}

impl FromStr for Role {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        match s {
            "member" => Ok(Role::Member),
            "admin" => Ok(Role::Admin),
            "owner" => Ok(Role::Owner),
            other => Err(UnknownName {
                what: "role",
                value: other.chars().take(32).collect(),
                expected: "owner, admin, member",
            }),
        }
    }
}

impl TryFrom<String> for Role {
    type Error = UnknownName;
    fn try_from(s: String) -> Result<Self, UnknownName> {
        s.parse()
    }
}

/// One thing an API key may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Permission {
    /// Read the workspace's resources.
    Read,
    /// Create and change the workspace's resources.
    Write,
    /// Talk to agents.
    Chat,
    /// Upload documents and attachments.
    Upload,
    /// Change agent configuration.
    Config,
    /// Manage keys, members and the audit log.
    Admin,
}

impl Permission {
    pub const ALL: [Permission; 6] = [
        Permission::Read,
        Permission::Write,
        Permission::Chat,
        Permission::Upload,
        Permission::Config,
        Permission::Admin,
    ];

    const fn bit(self) -> u8 {
        1 << (self as u8)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Write => "write",
            Permission::Chat => "chat",
            Permission::Upload => "upload",
            Permission::Config => "config",
            Permission::Admin => "admin",
        }
    }
}

impl FromStr for Permission {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        Permission::ALL.into_iter().find(|p| p.as_str() == s).ok_or_else(|| UnknownName {
            what: "permission",
            value: s.chars().take(32).collect(),
            expected: "read, write, chat, upload, config, admin",
        })
    }
}

/// A set of permissions, stored as a small bit set (copied freely on the hot path).
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Permissions(u8);

impl Permissions {
    pub const NONE: Permissions = Permissions(0);

    pub fn all() -> Self {
        Permission::ALL.into_iter().collect()
    }

    pub const fn contains(self, p: Permission) -> bool {
        self.0 & p.bit() != 0
    }

    pub fn insert(&mut self, p: Permission) {
        self.0 |= p.bit();
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL.into_iter().filter(move |p| self.contains(*p))
    }

    /// Comma-separated form used in storage (`"chat,upload"`).
    pub fn to_csv(self) -> String {
        self.iter().map(Permission::as_str).collect::<Vec<_>>().join(",")
    }

    pub fn from_csv(s: &str) -> Result<Self, UnknownName> {
        s.split(',').filter(|p| !p.is_empty()).map(str::parse).collect()
    }
}

/// What a key reads besides what its permissions name outright. `read` reads everything of
/// the workspace; each other permission also reads what it works on, so a key that may chat,
/// upload or configure can find the agents and knowledge bases it acts on:
///
/// | permission | also reads |
/// |---|---|
/// | `chat` | agents; conversations and their runs |
/// | `upload` | knowledge bases and their documents |
/// | `config` | agents (and their revisions); knowledge bases and their documents |
///
/// `write` and `admin` read nothing more on their own (give `read` with them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Readable {
    /// Agents, their revisions and exports.
    Agents,
    /// Knowledge bases, their documents and search.
    Knowledge,
    /// Conversations, their messages, pending actions and run traces.
    Conversations,
}

impl Readable {
    /// The permissions that read this, `read` first.
    pub const fn readers(self) -> &'static [Permission] {
        match self {
            Readable::Agents => &[Permission::Read, Permission::Chat, Permission::Config],
            Readable::Knowledge => &[Permission::Read, Permission::Upload, Permission::Config],
            Readable::Conversations => &[Permission::Read, Permission::Chat],
        }
    }
}

impl Permissions {
    /// Whether these permissions read `what` (see [`Readable`]).
    pub fn reads(self, what: Readable) -> bool {
        what.readers().iter().any(|p| self.contains(*p))
    }
}

impl TryFrom<String> for Permissions {
    type Error = UnknownName;
    fn try_from(s: String) -> Result<Self, UnknownName> {
        Self::from_csv(&s)
    }
}

impl FromIterator<Permission> for Permissions {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        let mut set = Permissions::NONE;
        for p in iter {
            set.insert(p);
        }
        set
    }
}

impl fmt::Debug for Permissions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

impl Serialize for Permissions {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

impl<'de> Deserialize<'de> for Permissions {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Vec::<Permission>::deserialize(d)?.into_iter().collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_order_by_power() {
        assert!(Role::Owner > Role::Admin && Role::Admin > Role::Member);
        assert!(Role::Admin.can_manage() && !Role::Member.can_manage());
        assert_eq!("owner".parse::<Role>().unwrap(), Role::Owner);
        assert!("boss".parse::<Role>().is_err());
    }

    #[test]
    fn permissions_round_trip_through_csv_and_json() {
        let set: Permissions = [Permission::Chat, Permission::Upload].into_iter().collect();
        assert_eq!(set.to_csv(), "chat,upload");
        assert_eq!(Permissions::from_csv("chat,upload").unwrap(), set);
        assert!(Permissions::from_csv("chat,fly").is_err());
        let json = serde_json::to_string(&set).unwrap();
        assert_eq!(json, r#"["chat","upload"]"#);
        assert!(set.contains(Permission::Chat) && !set.contains(Permission::Admin));
        assert!(serde_json::from_str::<Permissions>(r#"["fly"]"#).is_err());
    }

    #[test]
    fn each_permission_reads_what_it_works_on() {
        let of = |ps: &[Permission]| ps.iter().copied().collect::<Permissions>();
        let config = of(&[Permission::Config]);
        assert!(config.reads(Readable::Agents) && config.reads(Readable::Knowledge));
        assert!(!config.reads(Readable::Conversations));
        let chat = of(&[Permission::Chat]);
        assert!(chat.reads(Readable::Agents) && chat.reads(Readable::Conversations));
        assert!(!chat.reads(Readable::Knowledge));
        let upload = of(&[Permission::Upload]);
        assert!(upload.reads(Readable::Knowledge) && !upload.reads(Readable::Agents));
        let write = of(&[Permission::Write, Permission::Admin]);
        assert!(!write.reads(Readable::Agents));
        let read = of(&[Permission::Read]);
        assert!(
            [Readable::Agents, Readable::Knowledge, Readable::Conversations]
                .into_iter()
                .all(|r| read.reads(r))
        );
    }
}
