//! EchoForge's use cases over the store and the vault: registration and sign-in, sessions,
//! workspaces, members, invites, API keys and the audit log — and authorization, the one place
//! that mints [`store::TenantScope`]s.
//!
//! The HTTP layer turns requests into calls on [`App`] and [`AppError`]s into problem+json.

mod accounts;
mod admin;
mod agents;
pub mod auth;
pub mod billing;
mod catalog_api;
pub mod chat;
mod conversations;
mod error;
pub mod handoff;
pub mod integrations;
pub mod knowledge;
pub mod mail;
pub mod mcp;
mod onboarding;
mod plan_limits;
mod tools;
mod usage;
mod widget;
pub mod worker;
mod workspace;

use std::sync::Arc;
use std::time::Duration;

pub use accounts::{LoginResult, Me, RegisterInput, TokenPair};
pub use agents::keys::AgentKeyInput;
pub use agents::{AgentExport, AgentInput, AgentPatch, AgentView, ImportResult, RevisionView};
pub use auth::web_session::{self, WebSession};
pub use auth::{Actor, Principal, RateWindow};
pub use billing::{
    BillingRedirect, BillingView, CreditGrant, CreditsView, StripeSettings, SubscriptionView,
    WebhookReceipt,
};
pub use catalog_api::{CapabilityView, TemplateView};
pub use chat::model_provider::{ModelProviderInput, ModelProviderView};
pub use chat::to_steps;
pub use chat::{ChatInput, ChatResult, ChatRun, ChatSettings, NoKnowledge, NoWebFetch, title_from};
pub use chat::{attachments, to_llm_history};
pub use conversations::ConversationDetail;
pub use error::{AppError, FieldError};
pub use handoff::{HandoffBus, HandoffDetail, HandoffFilter, HandoffItem, LiveEvent, LiveKind};
pub use integrations::internal::ServiceCredentials;
pub use integrations::{
    AgentIntegrationInput, AgentIntegrationView, ConnectStart, ConnectionView, CredentialsInput,
    IntegrationSettings, ProviderSetup, ProviderView,
};
pub use knowledge::console::ConsoleCrawl;
pub use knowledge::sync::SyncIntervals;
pub use onboarding::suggest::{Suggestion, keyword_rank};
pub use onboarding::{CompletedOnboarding, OnboardingView};
pub use usage::report::{
    AgentUsage, DocumentsDay, DocumentsUsage, LimitUsage, PlanUsage, UsageCounts, UsageDay,
    UsageQuery, UsageReport, days_between,
};
pub use usage::utc_day;
pub use widget::{WidgetAccess, WidgetConfig, WidgetConversation, WidgetLimits};
pub use workspace::keys::{CreateKeyInput, CreatedKey};
pub use workspace::{InviteAcceptInput, ProfileInput};

use auth::AuthCaches;
use auth::limiter::FailureLimiter;
use mail::Mailer;
use store::Store;
use vault::Keyring;
use vault::token::Signer;

/// Settings the use cases need (a slice of the binary's configuration).
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// Base URL people reach the web app at, used in emailed links.
    pub public_url: String,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub verification_ttl: Duration,
    pub reset_ttl: Duration,
    pub invite_ttl: Duration,
    pub default_plan: String,
    /// Failed logins allowed per account, and per IP, in `login_window`.
    pub login_failures_per_account: u32,
    pub login_failures_per_ip: u32,
    pub login_window: Duration,
    /// The secret external runtimes present on `/api/internal/*` (unset: the internal API is off).
    pub service_secret: Option<secrecy::SecretString>,
    /// The operator's changes to the shipped plans (`[plans.<tier>]`).
    pub plans: std::collections::BTreeMap<catalog::PlanTier, catalog::PlanPatch>,
    /// Let handoff webhooks be on loopback or private networks (`[handoff]
    /// allow_private_webhooks`; tests, an on-premises helpdesk). Metadata addresses stay blocked.
    pub allow_private_webhooks: bool,
}

impl Default for AppConfig {
    fn default() -> Self {
        Self {
            public_url: "http://127.0.0.1:8080".into(),
            access_token_ttl: Duration::from_secs(15 * 60),
            refresh_token_ttl: Duration::from_secs(30 * 24 * 3600),
            verification_ttl: Duration::from_secs(24 * 3600),
            reset_ttl: Duration::from_secs(3600),
            invite_ttl: Duration::from_secs(7 * 24 * 3600),
            default_plan: "starter".into(),
            login_failures_per_account: 5,
            login_failures_per_ip: 20,
            login_window: Duration::from_secs(15 * 60),
            service_secret: None,
            plans: Default::default(),
            allow_private_webhooks: false,
        }
    }
}

/// The application: cheap to clone, shared by every request handler and worker.
#[derive(Clone)]
pub struct App {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    keyring: Arc<Keyring>,
    signer: Signer,
    mailer: Arc<dyn Mailer>,
    config: AppConfig,
    caches: AuthCaches,
    account_failures: FailureLimiter,
    ip_failures: FailureLimiter,
    knowledge: Arc<knowledge::KnowledgeSlot>,
    catalog: Arc<catalog::Catalog>,
    key_rates: auth::key_rate::KeyRateLimiter,
    /// Each workspace's API-key requests this minute, against its plan.
    workspace_rates: auth::key_rate::KeyRateLimiter<domain::WorkspaceId>,
    chat: chat::ChatEngine,
    widget: widget::WidgetGate,
    plan_tiers: plan_limits::PlanTiers,
    integrations: Arc<integrations::Integrations>,
    mcp: mcp::client::McpClients,
    billing: billing::Billing,
}

impl App {
    pub fn new(
        store: Store,
        keyring: Arc<Keyring>,
        mailer: Arc<dyn Mailer>,
        config: AppConfig,
    ) -> Self {
        let signer = Signer::new(&keyring.derive("access-token"));
        let account_failures =
            FailureLimiter::new(config.login_failures_per_account, config.login_window);
        let ip_failures = FailureLimiter::new(config.login_failures_per_ip, config.login_window);
        let store_for_chat = store.clone();
        let knowledge_slot: Arc<knowledge::KnowledgeSlot> = Arc::default();
        // Loaded once (it compiles every capability schema) and shared with the chat engine.
        let catalog = Arc::new(
            catalog::Catalog::builtin()
                .expect("the built-in catalog data is valid")
                .with_plan_patches(&config.plans),
        );
        Self {
            inner: Arc::new(Inner {
                store,
                keyring,
                signer,
                mailer,
                config,
                caches: AuthCaches::new(),
                account_failures,
                ip_failures,
                knowledge: knowledge_slot.clone(),
                catalog: catalog.clone(),
                key_rates: auth::key_rate::KeyRateLimiter::new(),
                workspace_rates: auth::key_rate::KeyRateLimiter::new(),
                chat: chat::ChatEngine::new(
                    store_for_chat,
                    knowledge_slot,
                    catalog,
                    None,
                    chat::ChatSettings::default(),
                ),
                widget: widget::WidgetGate::default(),
                plan_tiers: plan_limits::PlanTiers::default(),
                integrations: Arc::default(),
                mcp: Default::default(),
                billing: billing::Billing::default(),
            }),
        }
    }

    /// Sets the chat model (`None`: answers come from knowledge) and the chat settings.
    /// Call it right after [`App::new`], before the app is cloned.
    pub fn with_runtime(
        mut self,
        model: Option<Arc<dyn llm::ChatModel>>,
        settings: ChatSettings,
    ) -> Self {
        let store = self.inner.store.clone();
        let inner = Arc::get_mut(&mut self.inner)
            .expect("App::with_runtime is called before the app is shared");
        inner.chat = chat::ChatEngine::new(
            store,
            inner.knowledge.clone(),
            inner.catalog.clone(),
            model,
            settings,
        );
        self
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn keyring(&self) -> &Keyring {
        &self.inner.keyring
    }

    pub fn config(&self) -> &AppConfig {
        &self.inner.config
    }

    /// Writes batched bookkeeping (API-key last-used times, usage counters) and sweeps old runs. Called periodically and at
    /// shutdown.
    pub async fn flush(&self) {
        self.reap_idle_mcp_servers().await;
        let used = self.inner.caches.take_last_used();
        if !used.is_empty() {
            if let Err(e) = self.inner.store.touch_api_keys(&used).await {
                tracing::warn!(error = %e, keys = used.len(), "could not record API key last-used times");
            }
            self.inner.caches.key_lists.clear();
        }
        self.flush_usage().await;
        self.flush_credits().await;
        self.sweep_runs().await;
    }
}

fn ttl_ms(d: Duration) -> i64 {
    d.as_millis() as i64
}
