//! A connection's credentials: sealed by the vault (bound to the workspace and the connection),
//! opened only to make a call, and — for OAuth2 — refreshed 5 minutes before they expire, once
//! per connection however many calls want it at the same time: a lock per connection in this
//! process and a row lease in the database for other processes. A refused refresh marks the
//! connection `expired`.

use std::collections::BTreeMap;
use std::time::Duration;

use catalog::{AuthType, Provider};
use connectors::Credentials;
use domain::ConnectionId;
use domain::time::{Millis, now_ms};
use serde::{Deserialize, Serialize};
use store::{Connection, Store, TenantScope};
use vault::Keyring;

use super::{Integrations, seal_context};
use crate::AppError;

/// Refresh this long before the access token expires.
const REFRESH_AHEAD_MS: Millis = 5 * 60 * 1000;
/// How long a refresh may hold the row lease.
const LEASE_MS: Millis = 30 * 1000;
/// How long a caller waits for another process's refresh.
const WAIT_FOR_OTHER: Duration = Duration::from_secs(15);

/// What is sealed.
#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub(crate) enum Stored {
    Tokens { access_token: String, refresh_token: Option<String> },
    Fields { fields: BTreeMap<String, String> },
}

/// Why credentials could not be had; the text is for the model and the connection's status.
#[derive(Debug)]
pub(crate) enum CredentialError {
    /// The connection needs a person to reconnect it.
    Disconnected(String),
    /// Something failed that may pass (the provider is down).
    Failed(String),
}

fn seal(keyring: &Keyring, scope: &TenantScope, id: ConnectionId, stored: &Stored) -> String {
    let json = serde_json::to_vec(stored).expect("credentials serialise");
    keyring.seal(&json, &seal_context(scope.workspace_id(), id))
}

pub(crate) fn seal_tokens(
    keyring: &Keyring,
    scope: &TenantScope,
    id: ConnectionId,
    access: &str,
    refresh: Option<&str>,
) -> String {
    let stored = Stored::Tokens {
        access_token: access.to_owned(),
        refresh_token: refresh.map(str::to_owned),
    };
    seal(keyring, scope, id, &stored)
}

pub(crate) fn seal_fields(
    keyring: &Keyring,
    scope: &TenantScope,
    id: ConnectionId,
    fields: &BTreeMap<String, String>,
) -> String {
    seal(keyring, scope, id, &Stored::Fields { fields: fields.clone() })
}

pub(crate) fn open(
    keyring: &Keyring,
    scope: &TenantScope,
    c: &Connection,
) -> Result<Stored, AppError> {
    let plain = keyring
        .open(&c.credentials_sealed, &seal_context(scope.workspace_id(), c.id))
        .map_err(|_| AppError::Internal("a connection's credentials could not be opened".into()))?;
    serde_json::from_slice(&plain)
        .map_err(|_| AppError::Internal("a connection's credentials are unreadable".into()))
}

/// Checks a form provider's credentials with one call before they are saved.
pub(crate) async fn test_credentials(
    integrations: &Integrations,
    provider: &Provider,
    fields: &BTreeMap<String, String>,
) -> Result<(), AppError> {
    let base = integrations.api_base(provider, fields);
    let creds = Credentials::Fields(fields.clone());
    connectors::check_credentials(&integrations.http(), &provider.slug, &base, &creds)
        .await
        .map_err(|e| {
            let message = match e {
                connectors::ActionError::Unauthorized => {
                    format!("{} did not accept these credentials", provider.name)
                }
                connectors::ActionError::Transport(
                    fetch::FetchError::InvalidUrl(_)
                    | fetch::FetchError::UnsupportedScheme(_)
                    | fetch::FetchError::BlockedAddress { .. },
                ) => {
                    return AppError::field("/fields/url", "invalid", e.to_string());
                }
                other => format!("{} could not be reached: {other}", provider.name),
            };
            AppError::field("/fields", "rejected", message)
        })
}

/// Credentials for a call, refreshed first when due (or when `force`, after the provider
/// refused the current token).
pub(crate) async fn fresh(
    store: &Store,
    keyring: &Keyring,
    integrations: &Integrations,
    provider: &Provider,
    scope: &TenantScope,
    id: ConnectionId,
    force: bool,
) -> Result<(Connection, Credentials), CredentialError> {
    let failed = |e: &dyn std::fmt::Display| CredentialError::Failed(e.to_string());
    let c = store.get_connection(scope, id).await.map_err(|e| failed(&e))?;
    if c.status != "active" {
        return Err(disconnected(provider));
    }
    // Due 5 minutes before expiry, or at half-life for tokens granted for less than 10 minutes
    // (else a short-lived token would be refreshed on every call).
    let due = |c: &Connection| {
        c.expires_at.is_some_and(|e| {
            let lifetime = (e - c.updated_at).max(0);
            e - now_ms() < REFRESH_AHEAD_MS.min(lifetime / 2)
        })
    };
    if provider.auth_type != AuthType::Oauth2 || (!force && !due(&c)) {
        return usable(keyring, scope, c);
    }
    // One refresh per connection in this process …
    let lock = integrations.refresh_lock(id);
    let _guard = lock.lock().await;
    let seen = c.updated_at;
    let c = store.get_connection(scope, id).await.map_err(|e| failed(&e))?;
    if c.status != "active" {
        return Err(disconnected(provider));
    }
    if c.updated_at != seen || (!force && !due(&c)) {
        // Someone refreshed while this caller waited.
        return usable(keyring, scope, c);
    }
    // … and across processes, by the row lease.
    let started = std::time::Instant::now();
    loop {
        let now = now_ms();
        if store
            .lease_connection_refresh(scope, id, now, now + LEASE_MS)
            .await
            .map_err(|e| failed(&e))?
        {
            break;
        }
        if started.elapsed() > WAIT_FOR_OTHER {
            return Err(CredentialError::Failed(format!(
                "{} is being reconnected; try again shortly",
                provider.name
            )));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now_c = store.get_connection(scope, id).await.map_err(|e| failed(&e))?;
        if now_c.updated_at != c.updated_at {
            if now_c.status != "active" {
                return Err(disconnected(provider));
            }
            return usable(keyring, scope, now_c);
        }
    }
    let stored = open(keyring, scope, &c).map_err(|e| failed(&e))?;
    let Stored::Tokens { refresh_token: Some(refresh), .. } = stored else {
        let msg = "the access token expired and there is no refresh token";
        let _ = store.set_connection_status(scope, id, "expired", Some(msg), now_ms()).await;
        return Err(disconnected(provider));
    };
    let Some(client) = integrations.oauth_client(provider) else {
        let _ = store
            .set_connection_status(
                scope,
                id,
                "active",
                Some("the provider is no longer set up"),
                now_ms(),
            )
            .await;
        return Err(CredentialError::Failed(format!(
            "{} is not set up on this server",
            provider.name
        )));
    };
    match client.refresh(&refresh).await {
        Ok(tokens) => {
            let now = now_ms();
            let refresh = tokens.refresh_token.as_deref().unwrap_or(&refresh);
            let sealed = seal_tokens(keyring, scope, id, &tokens.access_token, Some(refresh));
            let expires_at = tokens.expires_in.map(|s| now + s.max(0) * 1000);
            store
                .store_refreshed_credentials(scope, id, &sealed, expires_at, now)
                .await
                .map_err(|e| failed(&e))?;
            tracing::info!(connection = %id, provider = %provider.slug, "refreshed a connection's token");
            let c = store.get_connection(scope, id).await.map_err(|e| failed(&e))?;
            Ok((c, Credentials::Bearer(tokens.access_token)))
        }
        Err(e) if e.is_grant_revoked() => {
            let msg = format!("the refresh was refused: {e}");
            let _ = store.set_connection_status(scope, id, "expired", Some(&msg), now_ms()).await;
            tracing::warn!(connection = %id, provider = %provider.slug, error = %e, "a connection expired");
            Err(disconnected(provider))
        }
        Err(e) => {
            let _ = store
                .set_connection_status(scope, id, "active", Some(&e.to_string()), now_ms())
                .await;
            Err(CredentialError::Failed(format!(
                "{} could not refresh its access: {e}",
                provider.name
            )))
        }
    }
}

fn disconnected(provider: &Provider) -> CredentialError {
    CredentialError::Disconnected(format!(
        "{} is disconnected: tell the user an admin needs to reconnect it on the Integrations page",
        provider.name
    ))
}

/// The connection with its credentials opened for a call.
fn usable(
    keyring: &Keyring,
    scope: &TenantScope,
    c: Connection,
) -> Result<(Connection, Credentials), CredentialError> {
    let creds =
        match open(keyring, scope, &c).map_err(|e| CredentialError::Failed(e.to_string()))? {
            Stored::Tokens { access_token, .. } => Credentials::Bearer(access_token),
            Stored::Fields { fields } => Credentials::Fields(fields),
        };
    Ok((c, creds))
}
