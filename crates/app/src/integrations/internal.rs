//! The internal API's credentials read (`/api/internal/integration/{id}/credentials`): for the
//! platform's own external runtimes, authenticated by the service secret, refreshed first when
//! due, and audited on every read.

use domain::ConnectionId;
use serde::Serialize;
use store::NewAuditEvent;
use utoipa::ToSchema;

use super::credentials::{CredentialError, fresh};
use crate::{App, AppError};

/// A connection's usable credentials.
#[derive(Serialize, ToSchema)]
pub struct ServiceCredentials {
    #[schema(value_type = String)]
    pub connection_id: ConnectionId,
    pub provider: String,
    pub auth_type: String,
    /// OAuth2: the access token (fresh for at least 5 minutes).
    pub access_token: Option<String>,
    pub expires_at: Option<i64>,
    /// API-key and basic providers: the fields.
    #[schema(value_type = Option<Object>)]
    pub fields: Option<std::collections::BTreeMap<String, String>>,
    /// Where the provider's API is.
    pub api_base_url: String,
}

impl App {
    /// Checks the service secret external runtimes present (`NotFound` when none is set up).
    pub(crate) fn require_service_secret(&self, secret: &str) -> Result<(), AppError> {
        let Some(expected) =
            self.inner.config.service_secret.as_ref().map(secrecy::ExposeSecret::expose_secret)
        else {
            return Err(AppError::NotFound {
                what: "internal API (no service secret is configured)",
            });
        };
        if !vault::token::constant_time_eq(secret, expected) {
            return Err(AppError::unauthorized(
                "invalid_service_secret",
                "the service secret is wrong",
            ));
        }
        Ok(())
    }

    /// A connection's credentials for an external runtime.
    pub async fn service_credentials(
        &self,
        secret: &str,
        id: ConnectionId,
    ) -> Result<ServiceCredentials, AppError> {
        self.require_service_secret(secret)?;
        let ws = self
            .inner
            .store
            .find_connection_workspace(id)
            .await?
            .ok_or(AppError::NotFound { what: "integration" })?;
        let scope = crate::auth::job_scope(ws);
        let c = self
            .inner
            .store
            .get_connection(&scope, id)
            .await
            .map_err(AppError::from_store("integration"))?;
        let provider = self
            .catalog()
            .provider(&c.provider)
            .ok_or(AppError::NotFound { what: "integration provider" })?;
        let (c, creds) = fresh(
            &self.inner.store,
            self.keyring(),
            &self.inner.integrations,
            provider,
            &scope,
            id,
            false,
        )
        .await
        .map_err(|e| match e {
            CredentialError::Disconnected(m) => AppError::conflict("integration_disconnected", m),
            CredentialError::Failed(m) => AppError::Unavailable(m),
        })?;
        self.audit(NewAuditEvent {
            workspace_id: Some(ws),
            actor_user_id: None,
            actor_key_id: None,
            action: "integration.credentials_read",
            target: Some(id.to_string()),
            ip: None,
            detail: serde_json::json!({"provider": c.provider, "by": "service"}),
        })
        .await;
        let (access_token, fields) = match creds {
            connectors::Credentials::Bearer(t) => (Some(t), None),
            connectors::Credentials::Fields(f) => (None, Some(f)),
        };
        let api_base_url = self
            .inner
            .integrations
            .api_base(provider, fields.as_ref().unwrap_or(&Default::default()));
        Ok(ServiceCredentials {
            connection_id: c.id,
            provider: c.provider,
            auth_type: c.auth_type,
            access_token,
            expires_at: c.expires_at,
            fields,
            api_base_url,
        })
    }
}
