//! Workspace API keys: created with a visible prefix, shown once, stored as a digest.

use std::net::IpAddr;
use std::sync::Arc;

use domain::time::now_ms;
use domain::{ApiKeyId, Permission, Permissions};
use serde::Serialize;
use store::{ApiKey, NewApiKey, NewAuditEvent};
use vault::token;

use crate::{App, AppError, FieldError, Principal};

/// Every EchoForge key starts with this, so scanners and people recognise it.
pub const KEY_PREFIX: &str = "ef_";

/// Permissions of a workspace key created without `permissions`: it reads everything and
/// talks to agents, and changes nothing.
pub const DEFAULT_KEY_PERMISSIONS: [Permission; 2] = [Permission::Read, Permission::Chat];

/// Input of `POST /api-keys`.
#[derive(Debug, Clone, Default)]
pub struct CreateKeyInput {
    pub name: String,
    /// `None`: the default of the kind of key ([`DEFAULT_KEY_PERMISSIONS`] for a workspace key).
    pub permissions: Option<Vec<String>>,
    pub rate_per_minute: Option<i64>,
    pub rate_per_day: Option<i64>,
    pub ip_allowlist: Vec<String>,
}

/// A new key with its secret — the only time the secret is shown.
#[derive(Debug, Clone, Serialize)]
pub struct CreatedKey {
    #[serde(flatten)]
    pub key: ApiKey,
    pub secret: String,
}

/// Validates a key request into permissions (`default` when none are named); errors name the
/// offending field.
pub fn validate_key_input(
    input: &CreateKeyInput,
    default: &[Permission],
) -> Result<Permissions, AppError> {
    let mut errors = Vec::new();
    let name = input.name.trim();
    if name.is_empty() {
        errors.push(FieldError::new("/name", "required", "is required"));
    } else if name.chars().count() > 100 {
        errors.push(FieldError::new("/name", "too_long", "must be at most 100 characters"));
    }
    let mut perms = Permissions::NONE;
    let named = match &input.permissions {
        Some(list) => list.clone(),
        None => default.iter().map(|p| p.as_str().to_owned()).collect(),
    };
    if named.is_empty() {
        errors.push(FieldError::new("/permissions", "required", "name at least one permission"));
    }
    for (i, p) in named.iter().enumerate() {
        match p.parse::<Permission>() {
            Ok(p) => perms.insert(p),
            Err(e) => errors.push(FieldError::new(
                &format!("/permissions/{i}"),
                "unknown_permission",
                e.to_string(),
            )),
        }
    }
    for (path, v) in
        [("/rate_per_minute", input.rate_per_minute), ("/rate_per_day", input.rate_per_day)]
    {
        if v.is_some_and(|v| v < 1) {
            errors.push(FieldError::new(path, "out_of_range", "must be at least 1"));
        }
    }
    for (i, cidr) in input.ip_allowlist.iter().enumerate() {
        if cidr.parse::<ipnet::IpNet>().is_err() && cidr.parse::<IpAddr>().is_err() {
            errors.push(FieldError::new(
                &format!("/ip_allowlist/{i}"),
                "invalid_cidr",
                "must be an IP address or CIDR block",
            ));
        }
    }
    if errors.is_empty() { Ok(perms) } else { Err(AppError::Validation(errors)) }
}

impl App {
    pub async fn create_api_key(
        &self,
        p: &Principal,
        input: CreateKeyInput,
        ip: Option<IpAddr>,
    ) -> Result<CreatedKey, AppError> {
        p.require(Permission::Admin)?;
        let permissions = validate_key_input(&input, &DEFAULT_KEY_PERMISSIONS)?;
        // A key cannot grant what its creator does not hold.
        if let Some(missing) = permissions.iter().find(|perm| !p.can(*perm)) {
            return Err(AppError::forbidden(
                "permission_denied",
                format!("you cannot grant `{}`", missing.as_str()),
            ));
        }
        let secret = token::generate(KEY_PREFIX);
        let new = NewApiKey {
            id: ApiKeyId::new(),
            agent_id: None,
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
        self.inner.caches.key_lists.remove(&p.workspace_id);
        self.audit(NewAuditEvent {
            workspace_id: Some(p.workspace_id),
            actor_user_id: p.user_id(),
            actor_key_id: p.key_id(),
            action: "api_key.created",
            target: Some(key.id.to_string()),
            ip: ip.map(|i| i.to_string()),
            detail: serde_json::json!({"name": key.name, "permissions": key.permissions}),
        })
        .await;
        Ok(CreatedKey { key, secret })
    }

    pub async fn api_keys(&self, p: &Principal) -> Result<Arc<Vec<ApiKey>>, AppError> {
        p.require(Permission::Read)?;
        let lists = &self.inner.caches.key_lists;
        if let Some(list) = lists.get(&p.workspace_id) {
            return Ok(list);
        }
        let list = Arc::new(self.inner.store.list_api_keys(&p.scope(), None).await?);
        lists.insert(p.workspace_id, list.clone());
        Ok(list)
    }

    pub async fn revoke_api_key(
        &self,
        p: &Principal,
        id: ApiKeyId,
        ip: Option<IpAddr>,
    ) -> Result<(), AppError> {
        p.require(Permission::Admin)?;
        self.inner
            .store
            .revoke_api_key(&p.scope(), id, now_ms())
            .await
            .map_err(AppError::from_store("API key"))?;
        // The key cache is keyed by digest, which we do not have here: drop all entries.
        self.inner.caches.forget_key(None);
        self.inner.caches.key_lists.remove(&p.workspace_id);
        self.audit(NewAuditEvent {
            workspace_id: Some(p.workspace_id),
            actor_user_id: p.user_id(),
            actor_key_id: p.key_id(),
            action: "api_key.revoked",
            target: Some(id.to_string()),
            ip: ip.map(|i| i.to_string()),
            detail: serde_json::json!({}),
        })
        .await;
        Ok(())
    }
}
