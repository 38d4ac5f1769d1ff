//! Integrations: the providers a workspace can connect to (catalog data plus the operator's
//! client credentials and base URLs), connecting (OAuth2 authorization code + PKCE + a
//! single-use `state` bound to the person and the workspace; API-key and basic forms checked
//! before saving), the connections (credentials sealed by the vault), disconnecting (RFC 7009
//! revocation at the provider, then the tokens and agent links go), and agents' links to
//! connections, whose provider actions become the agent's tools ([`tool`]).

pub(crate) mod credentials;
pub(crate) mod internal;
pub(crate) mod tool;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use catalog::{AuthType, Provider};
use connectors::{OAuthClient, OAuthEndpoints, Pkce};
use domain::time::{Millis, now_ms};
use domain::{AgentId, ConnectionId, Permission};
use parking_lot::{Mutex, RwLock};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};
use store::{Connection, NewAuditEvent, NewConnection, TenantScope};
use utoipa::ToSchema;

use crate::plan_limits::tier_name;
use crate::{App, AppError, Principal};

/// How long a person has to finish an authorization at the provider.
const STATE_TTL_MS: Millis = 10 * 60 * 1000;

/// The operator's setup of one provider (all optional: the catalog has the public defaults).
#[derive(Debug, Clone, Default)]
pub struct ProviderSetup {
    pub client_id: Option<String>,
    pub client_secret: Option<SecretString>,
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    pub revoke_url: Option<String>,
    pub userinfo_url: Option<String>,
    pub api_base_url: Option<String>,
}

/// The operator's integration settings.
#[derive(Debug, Clone, Default)]
pub struct IntegrationSettings {
    /// By provider slug.
    pub providers: BTreeMap<String, ProviderSetup>,
    /// Let provider endpoints and webhooks be on loopback or private networks (tests, an
    /// on-premises helpdesk). Metadata addresses stay blocked.
    pub allow_private_hosts: bool,
}

/// The integrations' shared state: settings, the guarded client and per-connection refresh
/// locks. Held by the app and by every integration tool.
pub(crate) struct Integrations {
    settings: RwLock<Arc<IntegrationSettings>>,
    http: RwLock<fetch::GuardedClient>,
    refresh_locks: Mutex<HashMap<ConnectionId, Arc<tokio::sync::Mutex<()>>>>,
}

impl Default for Integrations {
    fn default() -> Self {
        Self {
            settings: RwLock::new(Arc::default()),
            http: RwLock::new(guarded(false)),
            refresh_locks: Mutex::default(),
        }
    }
}

fn guarded(allow_private: bool) -> fetch::GuardedClient {
    let config = fetch::FetchConfig {
        policy: fetch::AddressPolicy { allow_private, ..Default::default() },
        respect_robots: false,
        max_redirects: 3,
        timeout: std::time::Duration::from_secs(20),
        max_response_bytes: 4 * 1024 * 1024,
        ..Default::default()
    };
    fetch::GuardedClient::new(config).expect("the integrations HTTP client builds")
}

impl Integrations {
    pub(crate) fn http(&self) -> fetch::GuardedClient {
        self.http.read().clone()
    }

    fn setup(&self, slug: &str) -> ProviderSetup {
        self.settings.read().providers.get(slug).cloned().unwrap_or_default()
    }

    /// The OAuth2 client of a provider, when the operator gave it client credentials.
    pub(crate) fn oauth_client(&self, provider: &Provider) -> Option<OAuthClient> {
        if provider.auth_type != AuthType::Oauth2 {
            return None;
        }
        let s = self.setup(&provider.slug);
        let client_id = s.client_id.filter(|c| !c.is_empty())?;
        let endpoints = OAuthEndpoints {
            authorize_url: s.authorize_url.or_else(|| provider.authorize_url.clone())?,
            token_url: s.token_url.or_else(|| provider.token_url.clone())?,
            revoke_url: s.revoke_url.or_else(|| provider.revoke_url.clone()),
            userinfo_url: s.userinfo_url.or_else(|| provider.userinfo_url.clone()),
            client_id,
            client_secret: s
                .client_secret
                .map(|c| c.expose_secret().to_owned())
                .unwrap_or_default(),
        };
        Some(OAuthClient::new(endpoints, self.http()))
    }

    /// The provider's API base: the operator's, else the catalog's, with `{field}`s filled from
    /// the connection's (non-secret) credential fields.
    pub(crate) fn api_base(
        &self,
        provider: &Provider,
        fields: &BTreeMap<String, String>,
    ) -> String {
        let configured =
            self.settings.read().providers.get(&provider.slug).and_then(|s| s.api_base_url.clone());
        let mut base = configured.or_else(|| provider.api_base_url.clone()).unwrap_or_default();
        for f in provider.fields.iter().filter(|f| !f.secret) {
            if let Some(v) = fields.get(&f.name) {
                base = base.replace(&format!("{{{}}}", f.name), v);
            }
        }
        base
    }

    pub(crate) fn refresh_lock(&self, id: ConnectionId) -> Arc<tokio::sync::Mutex<()>> {
        self.refresh_locks.lock().entry(id).or_default().clone()
    }
}

/// A provider as the API lists it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProviderView {
    pub slug: String,
    pub name: String,
    pub category: String,
    pub auth_type: &'static str,
    pub logo: String,
    /// Whether the operator set it up (OAuth2 providers need client credentials); an
    /// unavailable provider cannot be connected yet.
    pub available: bool,
    pub unavailable_reason: Option<String>,
    pub scopes: Vec<String>,
    pub fields: Vec<FieldView>,
    pub actions: Vec<ActionView>,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct FieldView {
    pub name: String,
    pub label: String,
    pub secret: bool,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ActionView {
    /// `slack:send_message`
    pub skill: String,
    /// The tool name the model sees.
    pub tool: String,
    pub description: String,
    pub side_effect: bool,
}

/// A connection as the API shows it: never its credentials.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConnectionView {
    #[schema(value_type = String)]
    pub id: ConnectionId,
    pub provider: String,
    pub provider_name: String,
    pub name: String,
    pub auth_type: String,
    pub status: String,
    pub account_id: Option<String>,
    pub account_email: Option<String>,
    pub account_name: Option<String>,
    pub scopes: Vec<String>,
    pub expires_at: Option<Millis>,
    pub connected_at: Millis,
    pub last_used_at: Option<Millis>,
    pub last_error: Option<String>,
}

/// The start of an authorization: where to send the person.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ConnectStart {
    pub auth_url: String,
    pub expires_at: Millis,
}

/// A form provider's credentials.
#[derive(Debug, Clone, Deserialize)]
pub struct CredentialsInput {
    pub name: Option<String>,
    pub fields: BTreeMap<String, String>,
}

/// An agent's link to a connection, as the API shows it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AgentIntegrationView {
    #[schema(value_type = String)]
    pub connection_id: ConnectionId,
    pub provider: String,
    pub status: String,
    pub purpose: String,
    #[schema(value_type = Object)]
    pub config: Value,
    /// The tools this link gives the agent.
    pub tools: Vec<String>,
}

/// What an agent link carries.
#[derive(Debug, Clone, Deserialize, Default)]
pub struct AgentIntegrationInput {
    #[serde(default)]
    pub purpose: String,
    /// Field mappings and defaults; `actions` (a list of action ids) limits the tools.
    #[serde(default)]
    pub config: Option<Value>,
}

pub(crate) fn state_hash(state: &str) -> String {
    hex::encode(Sha256::digest(state.as_bytes()))
}

/// Seal context of a connection's credentials (bound to the workspace and the connection).
pub(crate) fn seal_context(ws: domain::WorkspaceId, id: ConnectionId) -> String {
    format!("connection:{ws}:{id}")
}

fn verifier_context(ws: domain::WorkspaceId, hash: &str) -> String {
    format!("oauth-state:{ws}:{hash}")
}

impl App {
    /// Sets the operator's integration settings. Call it at start, before requests.
    pub fn set_integrations(&self, settings: IntegrationSettings) {
        let i = &self.inner.integrations;
        *i.http.write() = guarded(settings.allow_private_hosts);
        *i.settings.write() = Arc::new(settings);
    }

    fn provider_or_404(&self, slug: &str) -> Result<&Provider, AppError> {
        self.catalog().provider(slug).ok_or(AppError::NotFound { what: "integration provider" })
    }

    fn provider_view(&self, p: &Provider) -> ProviderView {
        let unavailable_reason = match p.auth_type {
            AuthType::Oauth2 if self.inner.integrations.oauth_client(p).is_none() => {
                Some(format!("the operator has not set up {} yet (client id and secret)", p.name))
            }
            _ => None,
        };
        ProviderView {
            slug: p.slug.clone(),
            name: p.name.clone(),
            category: p.category.clone(),
            auth_type: p.auth_type.as_str(),
            logo: p.logo.clone(),
            available: unavailable_reason.is_none(),
            unavailable_reason,
            scopes: p.scopes.clone(),
            fields: p
                .fields
                .iter()
                .map(|f| FieldView {
                    name: f.name.clone(),
                    label: f.label.clone(),
                    secret: f.secret,
                })
                .collect(),
            actions: p
                .actions
                .iter()
                .map(|a| ActionView {
                    skill: p.skill(a),
                    tool: p.tool_name(a),
                    description: a.description.clone(),
                    side_effect: a.side_effect,
                })
                .collect(),
        }
    }

    fn connection_view(&self, c: &Connection) -> ConnectionView {
        ConnectionView {
            id: c.id,
            provider: c.provider.clone(),
            provider_name: self
                .catalog()
                .provider(&c.provider)
                .map_or_else(|| c.provider.clone(), |p| p.name.clone()),
            name: c.name.clone(),
            auth_type: c.auth_type.clone(),
            status: c.status.clone(),
            account_id: c.account_id.clone(),
            account_email: c.account_email.clone(),
            account_name: c.account_name.clone(),
            scopes: c.scopes.split_whitespace().map(str::to_owned).collect(),
            expires_at: c.expires_at,
            connected_at: c.connected_at,
            last_used_at: c.last_used_at,
            last_error: c.last_error.clone(),
        }
    }

    /// Every provider, with whether it can be connected here (members read it).
    pub async fn available_integrations(
        &self,
        p: &Principal,
    ) -> Result<Vec<ProviderView>, AppError> {
        p.require(Permission::Read)?;
        Ok(self.catalog().providers().iter().map(|pr| self.provider_view(pr)).collect())
    }

    /// The workspace's connections.
    pub async fn integrations(&self, p: &Principal) -> Result<Vec<ConnectionView>, AppError> {
        p.require(Permission::Read)?;
        let rows = self.inner.store.list_connections(&p.scope()).await?;
        Ok(rows.iter().map(|c| self.connection_view(c)).collect())
    }

    pub async fn integration(
        &self,
        p: &Principal,
        id: ConnectionId,
    ) -> Result<ConnectionView, AppError> {
        p.require(Permission::Read)?;
        let c = self
            .inner
            .store
            .get_connection(&p.scope(), id)
            .await
            .map_err(AppError::from_store("integration"))?;
        Ok(self.connection_view(&c))
    }

    /// Refuses a new connection past the plan's integrations limit.
    async fn check_integration_limit(&self, scope: &TenantScope) -> Result<(), AppError> {
        let tier = self.scope_tier(scope).await?;
        let limit = self.catalog().plan_limits(tier).integrations;
        let count = self.inner.store.list_connections(scope).await?.len() as u64;
        if limit.allows_one_more(count) {
            return Ok(());
        }
        Err(AppError::PlanLimit {
            limit: "integrations",
            message: format!(
                "the {} plan allows {} integration(s) and this workspace has {count}; upgrade the plan or disconnect an integration",
                tier_name(tier),
                match limit {
                    catalog::Limit::AtMost(n) => n,
                    catalog::Limit::Unlimited => u64::MAX,
                }
            ),
        })
    }

    /// Starts connecting an OAuth2 provider (owners and admins): a `state` bound to the person
    /// and the workspace, valid 10 minutes, and a PKCE pair whose verifier is sealed.
    pub async fn connect_integration(
        &self,
        p: &Principal,
        slug: &str,
    ) -> Result<ConnectStart, AppError> {
        p.require_manager()?;
        let user = p.user_id().ok_or_else(|| {
            AppError::forbidden(
                "person_required",
                "connecting an account is done by a signed-in person",
            )
        })?;
        let provider = self.provider_or_404(slug)?;
        if provider.auth_type != AuthType::Oauth2 {
            return Err(AppError::bad_request(
                "credentials_required",
                format!(
                    "{} is connected with credentials: POST them to /api/v1/integrations/{slug}/credentials",
                    provider.name
                ),
            ));
        }
        let client = self.inner.integrations.oauth_client(provider).ok_or_else(|| {
            AppError::conflict(
                "provider_unavailable",
                format!("{} is not set up on this server yet: ask the operator", provider.name),
            )
        })?;
        let scope = p.scope();
        self.check_integration_limit(&scope).await?;
        let state = connectors::oauth2::random_state();
        let hash = state_hash(&state);
        let pkce = Pkce::generate();
        let sealed = self
            .keyring()
            .seal(pkce.verifier.as_bytes(), &verifier_context(scope.workspace_id(), &hash));
        let now = now_ms();
        let expires_at = now + STATE_TTL_MS;
        self.inner
            .store
            .create_oauth_state(&scope, &hash, user, slug, &sealed, now, expires_at)
            .await?;
        let auth_url = client
            .authorize_url(&self.redirect_uri(slug), &provider.scopes, &state, &pkce.challenge)
            .map_err(|e| AppError::Unavailable(e.to_string()))?;
        Ok(ConnectStart { auth_url, expires_at })
    }

    /// Where providers send the browser back.
    pub fn redirect_uri(&self, slug: &str) -> String {
        format!("{}/integrations/{slug}/callback", self.config().public_url.trim_end_matches('/'))
    }

    /// Finishes an authorization: the state must be unused, unexpired, for this provider and
    /// started by this person in this workspace; then the code is exchanged (with the PKCE
    /// verifier), the account read, and the connection stored with sealed tokens. Nothing is
    /// stored when any step fails.
    pub async fn finish_integration(
        &self,
        p: &Principal,
        slug: &str,
        state: &str,
        code: &str,
    ) -> Result<ConnectionView, AppError> {
        let provider = self.provider_or_404(slug)?;
        let invalid = || {
            AppError::bad_request(
                "invalid_state",
                "this authorization link is invalid, expired or already used: start connecting again",
            )
        };
        if state.is_empty() || state.len() > 200 {
            return Err(invalid());
        }
        let hash = state_hash(state);
        let flow =
            self.inner.store.take_oauth_state(&hash, now_ms()).await.map_err(|_| invalid())?;
        if flow.provider != slug || Some(flow.user_id) != p.user_id() {
            return Err(invalid());
        }
        if flow.workspace_id != p.workspace_id {
            return Err(AppError::bad_request(
                "wrong_workspace",
                "this authorization was started in another workspace: switch to it and connect again",
            ));
        }
        p.require_manager()?;
        if code.is_empty() || code.len() > 4096 {
            return Err(AppError::bad_request(
                "invalid_code",
                "the provider sent no authorization code",
            ));
        }
        let client = self.inner.integrations.oauth_client(provider).ok_or_else(|| {
            AppError::Unavailable(format!("{} is no longer set up", provider.name))
        })?;
        let verifier = self
            .keyring()
            .open(&flow.verifier_sealed, &verifier_context(flow.workspace_id, &hash))
            .map_err(|_| {
                AppError::Internal("the authorization's verifier could not be opened".into())
            })?;
        let verifier = String::from_utf8_lossy(&verifier).into_owned();
        let tokens =
            client.exchange_code(code, &self.redirect_uri(slug), &verifier).await.map_err(|e| {
                AppError::bad_request(
                    "token_exchange_failed",
                    format!("{} did not accept the authorization: {e}", provider.name),
                )
            })?;
        let account = client.userinfo(&tokens.access_token).await.unwrap_or_else(|e| {
            tracing::warn!(provider = slug, error = %e, "could not read the connected account");
            Value::Null
        });
        let text = |k: &str| account.get(k).and_then(Value::as_str).map(str::to_owned);
        let account_email = text("email");
        let account_name = text("name").or_else(|| text("user")).or_else(|| text("team"));
        let scope = p.scope();
        let id = ConnectionId::new();
        let now = now_ms();
        let sealed = credentials::seal_tokens(
            self.keyring(),
            &scope,
            id,
            &tokens.access_token,
            tokens.refresh_token.as_deref(),
        );
        let new = NewConnection {
            id,
            provider: slug.to_owned(),
            name: account_email
                .clone()
                .or_else(|| account_name.clone())
                .unwrap_or_else(|| provider.name.clone()),
            auth_type: "oauth2".into(),
            account_id: text("sub").or_else(|| text("user_id")).or_else(|| text("id")),
            account_email,
            account_name,
            scopes: tokens.scope.clone().unwrap_or_else(|| provider.scopes.join(" ")),
            credentials_sealed: sealed,
            expires_at: tokens.expires_in.map(|s| now + s.max(0) * 1000),
            connected_by: p.user_id(),
        };
        let c = self.inner.store.create_connection(&scope, &new, now).await?;
        self.audit_integration(p, "integration.connected", &c).await;
        Ok(self.connection_view(&c))
    }

    /// Connects an API-key or basic provider after a test call (owners and admins).
    pub async fn connect_with_credentials(
        &self,
        p: &Principal,
        slug: &str,
        input: CredentialsInput,
    ) -> Result<ConnectionView, AppError> {
        p.require_manager()?;
        let provider = self.provider_or_404(slug)?;
        if provider.auth_type == AuthType::Oauth2 {
            return Err(AppError::bad_request(
                "oauth_required",
                format!(
                    "{} is connected through its sign-in page: POST /api/v1/integrations/{slug}/connect",
                    provider.name
                ),
            ));
        }
        let mut errors = Vec::new();
        for f in &provider.fields {
            match input.fields.get(&f.name).map(|v| v.trim()) {
                Some(v) if !v.is_empty() && v.len() <= 2048 && !v.chars().any(char::is_control) => {
                }
                _ => errors.push(crate::FieldError::new(
                    &format!("/fields/{}", f.name),
                    "required",
                    format!("{} is required (at most 2048 printable characters)", f.label),
                )),
            }
        }
        if let Some(k) =
            input.fields.keys().find(|k| !provider.fields.iter().any(|f| &f.name == *k))
        {
            errors.push(crate::FieldError::new(
                &format!("/fields/{k}"),
                "unknown",
                format!("{} has no field `{k}`", provider.name),
            ));
        }
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        let fields: BTreeMap<String, String> =
            input.fields.into_iter().map(|(k, v)| (k, v.trim().to_owned())).collect();
        let scope = p.scope();
        self.check_integration_limit(&scope).await?;
        credentials::test_credentials(&self.inner.integrations, provider, &fields).await?;
        let id = ConnectionId::new();
        let account = fields
            .get("email")
            .or_else(|| fields.get("username"))
            .or_else(|| fields.get("url"))
            .cloned();
        let name = input
            .name
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty())
            .or_else(|| account.clone())
            .unwrap_or_else(|| provider.name.clone());
        let new = NewConnection {
            id,
            provider: slug.to_owned(),
            name: name.chars().take(200).collect(),
            auth_type: provider.auth_type.as_str().into(),
            account_id: None,
            account_email: fields.get("email").cloned(),
            account_name: account,
            scopes: String::new(),
            credentials_sealed: credentials::seal_fields(self.keyring(), &scope, id, &fields),
            expires_at: None,
            connected_by: p.user_id(),
        };
        let c = self.inner.store.create_connection(&scope, &new, now_ms()).await?;
        self.audit_integration(p, "integration.connected", &c).await;
        Ok(self.connection_view(&c))
    }

    /// Disconnects (owners and admins): revokes at the provider where it can (a failure there
    /// is logged, not fatal: the tokens go either way), deletes the credentials and the agent
    /// links; agents keep working without those tools.
    pub async fn disconnect_integration(
        &self,
        p: &Principal,
        id: ConnectionId,
    ) -> Result<(), AppError> {
        p.require_manager()?;
        let scope = p.scope();
        let c = self
            .inner
            .store
            .get_connection(&scope, id)
            .await
            .map_err(AppError::from_store("integration"))?;
        if let Some(provider) = self.catalog().provider(&c.provider)
            && let Some(client) = self.inner.integrations.oauth_client(provider)
            && let Ok(creds) = credentials::open(self.keyring(), &scope, &c)
            && let credentials::Stored::Tokens { access_token, refresh_token } = creds
        {
            let (token, hint) = match &refresh_token {
                Some(r) => (r.as_str(), "refresh_token"),
                None => (access_token.as_str(), "access_token"),
            };
            if let Err(e) = client.revoke(token, hint).await {
                tracing::warn!(provider = %c.provider, error = %e, "the provider did not confirm the revocation");
            }
        }
        self.inner
            .store
            .delete_connection(&scope, id)
            .await
            .map_err(AppError::from_store("integration"))?;
        self.engine().agents.forget_workspace(scope.workspace_id());
        self.audit_integration(p, "integration.disconnected", &c).await;
        Ok(())
    }

    async fn audit_integration(&self, p: &Principal, action: &'static str, c: &Connection) {
        self.audit(NewAuditEvent {
            workspace_id: Some(p.workspace_id),
            actor_user_id: p.user_id(),
            actor_key_id: p.key_id(),
            action,
            target: Some(c.id.to_string()),
            ip: None,
            detail: serde_json::json!({"provider": c.provider}),
        })
        .await;
    }

    /// The agent's links to connections.
    pub async fn agent_integrations(
        &self,
        p: &Principal,
        agent: AgentId,
    ) -> Result<Vec<AgentIntegrationView>, AppError> {
        p.require_read(domain::Readable::Agents)?;
        let scope = p.scope();
        self.inner.store.get_agent(&scope, agent).await.map_err(AppError::from_store("agent"))?;
        self.agent_integration_views(&scope, agent).await
    }

    async fn agent_integration_views(
        &self,
        scope: &TenantScope,
        agent: AgentId,
    ) -> Result<Vec<AgentIntegrationView>, AppError> {
        let links = self.inner.store.agent_integrations(scope, agent).await?;
        let connections = self.inner.store.list_connections(scope).await?;
        Ok(links
            .iter()
            .filter_map(|l| {
                let c = connections.iter().find(|c| c.id == l.connection_id)?;
                let config: Value = serde_json::from_str(&l.config).unwrap_or(Value::Null);
                let tools = self
                    .catalog()
                    .provider(&c.provider)
                    .map(|pr| tool::enabled_actions(pr, &config).map(|a| pr.tool_name(a)).collect())
                    .unwrap_or_default();
                Some(AgentIntegrationView {
                    connection_id: c.id,
                    provider: c.provider.clone(),
                    status: c.status.clone(),
                    purpose: l.purpose.clone(),
                    config,
                    tools,
                })
            })
            .collect())
    }

    /// Links (or re-links) a connection to an agent (`config` permission).
    pub async fn link_agent_integration(
        &self,
        p: &Principal,
        agent: AgentId,
        connection: ConnectionId,
        input: AgentIntegrationInput,
    ) -> Result<AgentIntegrationView, AppError> {
        p.require(Permission::Config)?;
        let scope = p.scope();
        let config = input.config.unwrap_or_else(|| serde_json::json!({}));
        if !config.is_object() {
            return Err(AppError::field("/config", "invalid", "must be an object"));
        }
        if input.purpose.chars().count() > 500 {
            return Err(AppError::field("/purpose", "too_long", "must be at most 500 characters"));
        }
        let c = self
            .inner
            .store
            .get_connection(&scope, connection)
            .await
            .map_err(AppError::from_store("integration"))?;
        if let (Some(pr), Some(actions)) =
            (self.catalog().provider(&c.provider), config.get("actions"))
        {
            let ok = actions.as_array().is_some_and(|a| {
                a.iter().all(|x| x.as_str().is_some_and(|id| pr.action(id).is_some()))
            });
            if !ok {
                return Err(AppError::field(
                    "/config/actions",
                    "invalid",
                    format!("must list action ids of {}", pr.name),
                ));
            }
        }
        self.inner
            .store
            .link_agent_connection(
                &scope,
                agent,
                connection,
                &input.purpose,
                &config.to_string(),
                now_ms(),
            )
            .await
            .map_err(AppError::from_store("agent"))?;
        self.engine().agents.forget_workspace(scope.workspace_id());
        self.agent_integration_views(&scope, agent)
            .await?
            .into_iter()
            .find(|v| v.connection_id == connection)
            .ok_or(AppError::NotFound { what: "integration" })
    }

    pub async fn unlink_agent_integration(
        &self,
        p: &Principal,
        agent: AgentId,
        connection: ConnectionId,
    ) -> Result<(), AppError> {
        p.require(Permission::Config)?;
        let scope = p.scope();
        self.inner
            .store
            .unlink_agent_connection(&scope, agent, connection)
            .await
            .map_err(AppError::from_store("integration"))?;
        self.engine().agents.forget_workspace(scope.workspace_id());
        Ok(())
    }
}
