//! Authentication and authorization: turning a bearer credential into a [`Principal`], and a
//! principal into a [`TenantScope`] — the only place scopes are minted.
//!
//! The hot path (every request) touches no database when caches are warm: API keys are cached
//! by digest for a few seconds, access tokens are verified by signature, and session liveness
//! and memberships are cached briefly. Changes made through this process invalidate the
//! caches at once; the short TTLs bound staleness across replicas.

pub(crate) mod access;
pub(crate) mod key_rate;
pub use key_rate::RateWindow;
pub(crate) mod limiter;
pub mod web_session;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::time::now_ms;
use domain::{ApiKeyId, Permission, Permissions, Role, SessionId, UserId, WorkspaceId};
use parking_lot::Mutex;
use quick_cache::sync::Cache;
use serde::{Deserialize, Serialize};
use store::{ApiKey, MembershipSummary, TenantScope};
use vault::token::{self, Expiring, SignedTokenError};

use crate::{App, AppError};

const CACHE_TTL: Duration = Duration::from_secs(5);

/// Who is calling, after authentication, inside which workspace.
#[derive(Debug, Clone)]
pub struct Principal {
    pub actor: Actor,
    pub workspace_id: WorkspaceId,
    permissions: Permissions,
    /// Where an API key stands against its request limits after this request (the
    /// `RateLimit-*` headers); `None` for people and keys without limits.
    pub rate: Option<RateWindow>,
}

/// The credential behind a principal.
#[derive(Debug, Clone)]
pub enum Actor {
    /// A signed-in person acting with their role in the workspace.
    User { user_id: UserId, session_id: SessionId, role: Role },
    /// An API key (workspace-wide, or scoped to one agent).
    Key { key_id: ApiKeyId, agent_id: Option<String> },
}

impl Principal {
    /// The tenant scope for store calls. Minting it here, after authentication, is what makes
    /// the scope a proof of authorization.
    #[allow(clippy::disallowed_methods)]
    pub fn scope(&self) -> TenantScope {
        TenantScope::assume(self.workspace_id)
    }

    /// The internal service acting inside one workspace (read-only), after it proved the
    /// service secret.
    pub(crate) fn service(workspace_id: WorkspaceId) -> Self {
        Principal {
            actor: Actor::Key { key_id: ApiKeyId::from_uuid(uuid_nil()), agent_id: None },
            workspace_id,
            permissions: [Permission::Read].into_iter().collect(),
            rate: None,
        }
    }

    pub fn user_id(&self) -> Option<UserId> {
        match &self.actor {
            Actor::User { user_id, .. } => Some(*user_id),
            Actor::Key { .. } => None,
        }
    }

    pub fn key_id(&self) -> Option<ApiKeyId> {
        match &self.actor {
            Actor::Key { key_id, .. } => Some(*key_id),
            Actor::User { .. } => None,
        }
    }

    pub fn role(&self) -> Option<Role> {
        match &self.actor {
            Actor::User { role, .. } => Some(*role),
            Actor::Key { .. } => None,
        }
    }

    pub fn can(&self, p: Permission) -> bool {
        self.permissions.contains(p)
    }

    /// Refuses with 403 unless the principal holds `p`.
    pub fn require(&self, p: Permission) -> Result<(), AppError> {
        if self.can(p) {
            Ok(())
        } else {
            Err(AppError::forbidden(
                "permission_denied",
                format!("this action needs the `{}` permission", p.as_str()),
            ))
        }
    }

    /// Refuses with 403 unless the principal reads `what`: `read`, or a permission that works
    /// on it (`domain::Readable` has the table).
    /// Agent keys reach one agent: they read no knowledge base through `upload` or `config`.
    pub fn require_read(&self, what: domain::Readable) -> Result<(), AppError> {
        let agent_key = matches!(self.actor, Actor::Key { agent_id: Some(_), .. });
        if agent_key && what == domain::Readable::Knowledge {
            return self.require(Permission::Read);
        }
        if self.permissions.reads(what) {
            Ok(())
        } else {
            let names: Vec<&str> = what.readers().iter().map(|p| p.as_str()).collect();
            Err(AppError::forbidden(
                "permission_denied",
                format!("reading this needs one of the permissions `{}`", names.join("`, `")),
            ))
        }
    }

    /// Refuses unless the caller is a signed-in owner or admin (member management, invites).
    pub fn require_manager(&self) -> Result<(), AppError> {
        match self.role() {
            Some(r) if r.can_manage() => Ok(()),
            Some(_) => Err(AppError::forbidden(
                "owner_or_admin_required",
                "only owners and admins can do this",
            )),
            None => Err(AppError::forbidden(
                "user_required",
                "this action needs a signed-in user, not an API key",
            )),
        }
    }
}

fn uuid_nil() -> uuid::Uuid {
    uuid::Uuid::nil()
}

/// The scope accepting an invite acts in: the invite's workspace (a valid, unused invite
/// token is the authorization to join it).
#[allow(clippy::disallowed_methods)]
pub(crate) fn invite_scope(workspace_id: WorkspaceId) -> TenantScope {
    TenantScope::assume(workspace_id)
}

/// The scope a background job acts in: the workspace that was authorized when the job was
/// queued (jobs carry their workspace id and are only created by authorized use cases).
#[allow(clippy::disallowed_methods)]
pub(crate) fn job_scope(workspace_id: WorkspaceId) -> TenantScope {
    TenantScope::assume(workspace_id)
}

/// What a user's role lets them do, expressed as key permissions.
pub fn role_permissions(role: Role) -> Permissions {
    match role {
        Role::Owner | Role::Admin => Permissions::all(),
        Role::Member => [
            Permission::Read,
            Permission::Write,
            Permission::Chat,
            Permission::Upload,
            Permission::Config,
        ]
        .into_iter()
        .collect(),
    }
}

/// Claims of an access token.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct AccessClaims {
    pub sub: UserId,
    pub sid: SessionId,
    /// Expiry, epoch milliseconds.
    pub exp: i64,
}

impl Expiring for AccessClaims {
    fn expires_at_ms(&self) -> i64 {
        self.exp
    }
}

pub(crate) struct AuthCaches {
    keys: Cache<String, (Option<Arc<CachedKey>>, Instant)>,
    sessions: Cache<SessionId, (bool, Instant)>,
    memberships: Cache<UserId, (Arc<Vec<MembershipSummary>>, Instant)>,
    /// Workspace key lists (read on every `GET /api-keys`); dropped when a key is created or
    /// revoked and when last-used times are flushed, so they are never staler than the batch.
    pub(crate) key_lists: Cache<WorkspaceId, Arc<Vec<ApiKey>>>,
    last_used: Mutex<HashMap<ApiKeyId, i64>>,
}

impl AuthCaches {
    pub fn new() -> Self {
        Self {
            keys: Cache::new(10_000),
            sessions: Cache::new(10_000),
            memberships: Cache::new(10_000),
            key_lists: Cache::new(10_000),
            last_used: Mutex::new(HashMap::new()),
        }
    }

    pub fn take_last_used(&self) -> Vec<(ApiKeyId, i64)> {
        std::mem::take(&mut *self.last_used.lock()).into_iter().collect()
    }

    pub fn forget_key(&self, digest_or_all: Option<&str>) {
        match digest_or_all {
            Some(d) => {
                self.keys.remove(d);
            }
            None => self.keys.clear(),
        }
    }

    pub fn forget_session(&self, id: SessionId) {
        self.sessions.remove(&id);
    }

    pub fn forget_all_sessions(&self) {
        self.sessions.clear();
    }

    pub fn forget_memberships(&self, user: UserId) {
        self.memberships.remove(&user);
    }
}

/// Of two windows, the one with less left (what the `RateLimit-*` headers report).
fn tighter(
    a: Option<key_rate::RateWindow>,
    b: Option<key_rate::RateWindow>,
) -> Option<key_rate::RateWindow> {
    match (a, b) {
        (Some(a), Some(b)) => Some(if b.remaining < a.remaining { b } else { a }),
        (a, b) => a.or(b),
    }
}

fn fresh<T: Clone>(entry: Option<(T, Instant)>) -> Option<T> {
    entry.filter(|(_, at)| at.elapsed() < CACHE_TTL).map(|(v, _)| v)
}

impl App {
    /// Authenticates `Authorization: Bearer <credential>`; `workspace` is the optional
    /// `EchoForge-Workspace` header (users in several workspaces pick one per request).
    pub async fn authenticate(
        &self,
        credential: &str,
        workspace: Option<&str>,
        ip: Option<IpAddr>,
    ) -> Result<Principal, AppError> {
        if credential.starts_with(crate::workspace::keys::KEY_PREFIX) {
            self.authenticate_key(credential, workspace, ip).await
        } else {
            self.authenticate_access_token(credential, workspace).await
        }
    }

    async fn authenticate_key(
        &self,
        secret: &str,
        workspace: Option<&str>,
        ip: Option<IpAddr>,
    ) -> Result<Principal, AppError> {
        let digest = token::digest(secret);
        let caches = &self.inner.caches;
        let key = match fresh(caches.keys.get(&digest)) {
            Some(k) => k,
            None => {
                let k = self.inner.store.find_api_key_by_digest(&digest).await?;
                let k = k.map(|key| Arc::new(CachedKey::new(key)));
                caches.keys.insert(digest, (k.clone(), Instant::now()));
                k
            }
        };
        let cached = key.ok_or_else(|| {
            AppError::unauthorized("invalid_api_key", "the API key is invalid or revoked")
        })?;
        let key = &cached.key;
        if let Some(ws) = workspace
            && ws != key.workspace_id.to_string()
        {
            return Err(AppError::forbidden(
                "workspace_mismatch",
                "this API key belongs to another workspace",
            ));
        }
        if !cached.allows(ip) {
            return Err(AppError::forbidden(
                "ip_not_allowed",
                "requests with this API key are not allowed from this address",
            ));
        }
        let now = now_ms();
        let rate = self
            .inner
            .key_rates
            .hit_window(key.id, key.rate_per_minute, key.rate_per_day, now)
            .map_err(|retry_after_secs| AppError::RateLimited { retry_after_secs })?;
        let mut principal = Principal {
            actor: Actor::Key { key_id: key.id, agent_id: key.agent_id.clone() },
            workspace_id: key.workspace_id,
            permissions: key.permissions,
            rate,
        };
        let plan_rate = self.hit_plan_rate(&principal, now).await?;
        principal.rate = tighter(principal.rate, plan_rate);
        caches.last_used.lock().insert(key.id, now);
        Ok(principal)
    }

    /// Counts one API-key request against the workspace plan's `api_requests_per_minute`
    /// (every key of the workspace together); refuses with `plan_rate_limited` when the
    /// minute's requests are spent. The tier comes from memory (a few seconds old at most).
    async fn hit_plan_rate(
        &self,
        p: &Principal,
        now: i64,
    ) -> Result<Option<key_rate::RateWindow>, AppError> {
        let tier = self.cached_tier(&p.scope()).await?;
        let catalog::Limit::AtMost(max) = self.catalog().plan_limits(tier).api_requests_per_minute
        else {
            return Ok(None);
        };
        let max = i64::try_from(max).unwrap_or(i64::MAX);
        self.inner.workspace_rates.hit_window(p.workspace_id, Some(max), None, now).map_err(
            |retry_after_secs| AppError::PlanRateLimited {
                retry_after_secs,
                message: format!(
                    "the {} plan allows {max} API requests a minute for all of a workspace's keys together; retry in {retry_after_secs} seconds or {}",
                    crate::plan_limits::tier_name(tier),
                    crate::plan_limits::upgrade_hint(tier)
                ),
            },
        )
    }

    /// The workspace's API requests in the current minute, for the usage report.
    pub(crate) fn plan_rate_used(&self, workspace_id: WorkspaceId) -> u64 {
        self.inner.workspace_rates.minute_count(workspace_id, now_ms())
    }

    async fn authenticate_access_token(
        &self,
        token: &str,
        workspace: Option<&str>,
    ) -> Result<Principal, AppError> {
        let claims: AccessClaims =
            self.inner.signer.verify(token, now_ms()).map_err(|e| match e {
                SignedTokenError::Expired => AppError::unauthorized(
                    "token_expired",
                    "the access token has expired; refresh it",
                ),
                _ => AppError::unauthorized("invalid_token", "the access token is invalid"),
            })?;
        if !self.session_active(claims.sid).await? {
            return Err(AppError::unauthorized(
                "session_revoked",
                "this session has been signed out",
            ));
        }
        let memberships = self.memberships(claims.sub).await?;
        let chosen = match workspace {
            Some(ws) => memberships
                .iter()
                .find(|m| m.workspace_id.to_string() == ws)
                .ok_or(AppError::NotFound { what: "workspace" })?,
            None => memberships.first().ok_or_else(|| {
                AppError::forbidden("no_workspace", "you are not a member of any workspace")
            })?,
        };
        Ok(Principal {
            actor: Actor::User { user_id: claims.sub, session_id: claims.sid, role: chosen.role },
            workspace_id: chosen.workspace_id,
            permissions: role_permissions(chosen.role),
            rate: None,
        })
    }

    /// The user behind an access token, without choosing a workspace (for `/auth/me` and
    /// accepting invites, which work for users in no workspace yet).
    pub async fn authenticate_user(&self, token: &str) -> Result<(UserId, SessionId), AppError> {
        let claims: AccessClaims = self.inner.signer.verify(token, now_ms()).map_err(|_| {
            AppError::unauthorized("invalid_token", "the access token is invalid or expired")
        })?;
        if !self.session_active(claims.sid).await? {
            return Err(AppError::unauthorized(
                "session_revoked",
                "this session has been signed out",
            ));
        }
        Ok((claims.sub, claims.sid))
    }

    async fn session_active(&self, id: SessionId) -> Result<bool, AppError> {
        let caches = &self.inner.caches;
        if let Some(active) = fresh(caches.sessions.get(&id)) {
            return Ok(active);
        }
        let now = now_ms();
        let active = self
            .inner
            .store
            .get_session(id)
            .await?
            .is_some_and(|s| s.revoked_at.is_none() && s.expires_at > now);
        caches.sessions.insert(id, (active, Instant::now()));
        Ok(active)
    }

    pub(crate) async fn memberships(
        &self,
        user: UserId,
    ) -> Result<Arc<Vec<MembershipSummary>>, AppError> {
        let caches = &self.inner.caches;
        if let Some(m) = fresh(caches.memberships.get(&user)) {
            return Ok(m);
        }
        let m = Arc::new(self.inner.store.memberships_of(user).await?);
        caches.memberships.insert(user, (m.clone(), Instant::now()));
        Ok(m)
    }
}

/// An API key as the cache keeps it: the row, and its IP allowlist parsed once (not on every
/// request).
pub(crate) struct CachedKey {
    key: ApiKey,
    /// `None`: any address; otherwise the networks the key may be used from (a list that
    /// does not parse, or entries that do not, allow nothing).
    allow: Option<Vec<ipnet::IpNet>>,
}

impl CachedKey {
    fn new(key: ApiKey) -> Self {
        let allow = parse_allowlist(&key.ip_allowlist);
        Self { key, allow }
    }

    fn allows(&self, ip: Option<IpAddr>) -> bool {
        allowed(self.allow.as_deref(), ip)
    }
}

fn allowed(allow: Option<&[ipnet::IpNet]>, ip: Option<IpAddr>) -> bool {
    match allow {
        None => true,
        Some(nets) => ip.is_some_and(|ip| nets.iter().any(|n| n.contains(&ip))),
    }
}

/// A key's stored allowlist (a JSON list of CIDR blocks or single addresses; empty: anywhere).
fn parse_allowlist(json: &str) -> Option<Vec<ipnet::IpNet>> {
    if json.is_empty() || json == "[]" {
        return None;
    }
    let Ok(list) = serde_json::from_str::<Vec<String>>(json) else { return Some(Vec::new()) };
    if list.is_empty() {
        return None;
    }
    let single = |ip: IpAddr| ipnet::IpNet::new(ip, if ip.is_ipv4() { 32 } else { 128 }).ok();
    Some(
        list.iter()
            .filter_map(|e| {
                e.parse::<ipnet::IpNet>().ok().or_else(|| e.parse().ok().and_then(single))
            })
            .collect(),
    )
}

#[cfg(test)]
fn ip_allowed(allowlist_json: &str, ip: Option<IpAddr>) -> bool {
    allowed(parse_allowlist(allowlist_json).as_deref(), ip)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_allowlists_match_cidrs_and_single_addresses() {
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert!(ip_allowed("[]", None));
        assert!(ip_allowed(r#"["10.0.0.0/8"]"#, ip("10.1.2.3")));
        assert!(!ip_allowed(r#"["10.0.0.0/8"]"#, ip("11.1.2.3")));
        assert!(ip_allowed(r#"["127.0.0.1"]"#, ip("127.0.0.1")));
        assert!(!ip_allowed(r#"["127.0.0.1"]"#, None));
        assert!(ip_allowed(r#"["::1", "bogus"]"#, ip("::1")));
        assert!(
            !ip_allowed(r#"["bogus"]"#, ip("127.0.0.1")),
            "an entry that does not parse allows nothing"
        );
        assert!(!ip_allowed("not json", ip("127.0.0.1")));
    }

    #[test]
    fn members_cannot_administer() {
        assert!(!role_permissions(Role::Member).contains(Permission::Admin));
        assert!(role_permissions(Role::Admin).contains(Permission::Admin));
    }
}
