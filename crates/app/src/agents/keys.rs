//! Agent API keys: workspace keys bound to one agent, with only `chat`, `upload` and `config`
//! permissions. Same storage and secrets rules as workspace keys.

use std::net::IpAddr;

use domain::time::now_ms;
use domain::{AgentId, ApiKeyId, Permission};
use serde_json::json;
use store::{ApiKey, NewApiKey};
use vault::token;

use crate::workspace::keys::{KEY_PREFIX, validate_key_input};
use crate::{App, AppError, CreateKeyInput, CreatedKey, FieldError, Principal};

/// Input of `POST /agents/{id}/keys` (same shape as a workspace key).
pub type AgentKeyInput = CreateKeyInput;

const AGENT_PERMISSIONS: [Permission; 3] =
    [Permission::Chat, Permission::Upload, Permission::Config];

/// Permissions of an agent key created without `permissions` (as onboarding gives its key).
pub const DEFAULT_AGENT_KEY_PERMISSIONS: [Permission; 2] = [Permission::Chat, Permission::Upload];

impl App {
    /// Creates a key for `agent`; needs `admin` from a signed-in user or workspace key.
    pub async fn create_agent_key(
        &self,
        p: &Principal,
        agent: AgentId,
        input: AgentKeyInput,
        ip: Option<IpAddr>,
    ) -> Result<CreatedKey, AppError> {
        if crate::agents::own_agent(p).is_some() {
            return Err(AppError::forbidden("agent_key", "an agent API key cannot create keys"));
        }
        p.require(Permission::Admin)?;
        self.load_agent(p, agent).await?;
        let permissions = validate_key_input(&input, &DEFAULT_AGENT_KEY_PERMISSIONS)?;
        let bad: Vec<FieldError> = input
            .permissions
            .iter()
            .flatten()
            .enumerate()
            .filter(|(_, s)| {
                s.parse::<Permission>().is_ok_and(|perm| !AGENT_PERMISSIONS.contains(&perm))
            })
            .map(|(i, s)| {
                FieldError::new(
                    &format!("/permissions/{i}"),
                    "not_an_agent_permission",
                    format!("agent keys take `chat`, `upload` or `config`, not `{s}`"),
                )
            })
            .collect();
        if !bad.is_empty() {
            return Err(AppError::Validation(bad));
        }
        self.create_agent_key_unchecked(p, agent, input, permissions, ip).await
    }

    /// Stores a validated agent key (also used by onboarding completion).
    pub(crate) async fn create_agent_key_unchecked(
        &self,
        p: &Principal,
        agent: AgentId,
        input: AgentKeyInput,
        permissions: domain::Permissions,
        ip: Option<IpAddr>,
    ) -> Result<CreatedKey, AppError> {
        let secret = token::generate(KEY_PREFIX);
        let new = NewApiKey {
            id: ApiKeyId::new(),
            agent_id: Some(agent),
            name: input.name.trim().to_owned(),
            prefix: secret[..KEY_PREFIX.len() + 8].to_owned(),
            digest: token::digest(&secret),
            permissions,
            rate_per_minute: input.rate_per_minute,
            rate_per_day: input.rate_per_day,
            ip_allowlist: input.ip_allowlist,
            created_by: p.user_id(),
        };
        let key = self.inner.store.create_api_key(&p.scope(), &new, now_ms()).await?;
        let event = self.agent_audit(
            p,
            "agent_key.created",
            key.id.to_string(),
            ip,
            json!({"agent_id": agent.to_string(), "name": key.name, "permissions": key.permissions}),
        );
        self.audit(event).await;
        Ok(CreatedKey { key, secret })
    }

    pub async fn agent_keys(&self, p: &Principal, agent: AgentId) -> Result<Vec<ApiKey>, AppError> {
        if crate::agents::own_agent(p).is_some() {
            return Err(AppError::forbidden("agent_key", "an agent API key cannot list keys"));
        }
        p.require(Permission::Read)?;
        self.load_agent(p, agent).await?;
        Ok(self.inner.store.list_api_keys(&p.scope(), Some(agent)).await?)
    }

    pub async fn revoke_agent_key(
        &self,
        p: &Principal,
        agent: AgentId,
        key: ApiKeyId,
        ip: Option<IpAddr>,
    ) -> Result<(), AppError> {
        if crate::agents::own_agent(p).is_some() {
            return Err(AppError::forbidden("agent_key", "an agent API key cannot revoke keys"));
        }
        p.require(Permission::Admin)?;
        self.load_agent(p, agent).await?;
        let stored = self
            .inner
            .store
            .get_api_key(&p.scope(), key)
            .await
            .map_err(AppError::from_store("API key"))?;
        if stored.agent() != Some(agent) {
            return Err(AppError::NotFound { what: "API key" });
        }
        self.inner
            .store
            .revoke_api_key(&p.scope(), key, now_ms())
            .await
            .map_err(AppError::from_store("API key"))?;
        self.inner.caches.forget_key(None);
        let event = self.agent_audit(
            p,
            "agent_key.revoked",
            key.to_string(),
            ip,
            json!({"agent_id": agent.to_string()}),
        );
        self.audit(event).await;
        Ok(())
    }
}
