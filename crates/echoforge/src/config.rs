//! Configuration: built-in defaults < `echoforge.toml` (`--config`) < environment
//! (`ECHOFORGE__SECTION__KEY`) < command-line flags, into typed settings validated at start.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// All settings. Secrets are `SecretString`: redacted in `Debug` and logs.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub server: ServerSettings,
    /// Where the SQLite database, files, outbox, index and master key live.
    pub data_dir: PathBuf,
    pub database: DatabaseSettings,
    pub smtp: SmtpSettings,
    pub auth: AuthSettings,
    pub log: LogSettings,
    pub knowledge: KnowledgeSettings,
    pub internal: InternalSettings,
    /// The server-wide model provider (none configured: agents answer from knowledge).
    pub llm: LlmSettings,
    pub runs: RunsSettings,
    /// Rate limits of the embeddable widget's public endpoints.
    #[serde(default)]
    pub widget: WidgetSettings,
    /// Integration providers' client credentials and endpoints.
    #[serde(default)]
    pub integrations: IntegrationsSettings,
    /// MCP servers as tool sources: the commands workspaces may run, limits.
    #[serde(default)]
    pub mcp: McpSettings,
    /// Payments through Stripe.
    #[serde(default)]
    pub billing: BillingSettings,
    /// The operator's changes to the shipped plans, by tier: `[plans.starter]
    /// messages_per_month = 5000`, `api_requests_per_minute = -1` (unlimited), `name = "Basic"`;
    /// any limit not named stays as shipped (`ECHOFORGE__PLANS__PRO__SEATS=25` works too).
    #[serde(default)]
    pub plans: std::collections::BTreeMap<catalog::PlanTier, catalog::PlanPatch>,
    /// Live human handoff's targets.
    #[serde(default)]
    pub handoff: HandoffSettings,
}

/// `[handoff]`: whether agents' handoff webhooks may be on loopback or private networks
/// (refused by default, like every URL fetched on a user's behalf).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HandoffSettings {
    pub allow_private_webhooks: bool,
}

/// `[mcp]`: which commands workspaces may run as stdio MCP servers
/// (`[mcp.commands.everything] command = "npx", args = ["-y", "@modelcontextprotocol/server-everything"]`;
/// a workspace names one and may add arguments, never its own command line), whether HTTP
/// servers may be on private networks, and the limits of each tool call.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct McpSettings {
    pub commands: std::collections::BTreeMap<String, McpCommandSettings>,
    pub allow_private_hosts: bool,
    pub call_timeout_secs: u64,
    pub max_result_bytes: usize,
    /// A server unused this long is stopped (started again on the next call).
    pub idle_secs: u64,
    /// How many stdio servers (each a process while in use) one workspace may register.
    pub max_stdio_servers: usize,
}

impl Default for McpSettings {
    fn default() -> Self {
        Self {
            commands: Default::default(),
            allow_private_hosts: false,
            call_timeout_secs: 30,
            max_result_bytes: 64 * 1024,
            idle_secs: 300,
            max_stdio_servers: 5,
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct McpCommandSettings {
    pub command: String,
    pub args: Vec<String>,
}

impl McpSettings {
    /// The use cases' view of these settings.
    pub fn to_app(&self) -> app::mcp::McpSettings {
        app::mcp::McpSettings {
            commands: self
                .commands
                .iter()
                .map(|(k, c)| {
                    (
                        k.clone(),
                        app::mcp::McpCommand { command: c.command.clone(), args: c.args.clone() },
                    )
                })
                .collect(),
            allow_private_hosts: self.allow_private_hosts,
            call_timeout: std::time::Duration::from_secs(self.call_timeout_secs.max(1)),
            max_result_bytes: self.max_result_bytes.max(1024),
            idle_after: std::time::Duration::from_secs(self.idle_secs.max(1)),
            max_stdio_servers: self.max_stdio_servers,
        }
    }
}

/// `[billing]`: `[billing.stripe]` turns payments on; a workspace whose payments have failed
/// for longer than `past_due_grace_days` is read-only until it pays.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BillingSettings {
    pub stripe: StripeSettings,
    pub past_due_grace_days: u32,
}

impl Default for BillingSettings {
    fn default() -> Self {
        Self { stripe: StripeSettings::default(), past_due_grace_days: 7 }
    }
}

/// `[billing.stripe]`: the operator's Stripe account (`ECHOFORGE__BILLING__STRIPE__SECRET_KEY=…`).
/// Without a secret key the server takes no payments; without a webhook secret Stripe's
/// webhooks are refused.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StripeSettings {
    /// Stripe's API (another base for tests or a proxy).
    pub api_base: String,
    #[serde(serialize_with = "ser_secret_opt")]
    pub secret_key: Option<SecretString>,
    /// The webhook endpoint's signing secret (`whsec_…`).
    #[serde(serialize_with = "ser_secret_opt")]
    pub webhook_secret: Option<SecretString>,
    /// A recurring price id per plan on sale (`[billing.stripe.prices] pro = "price_…"`).
    pub prices: std::collections::BTreeMap<String, String>,
    /// A metered price added to each Checkout, billed from the reported message usage.
    pub metered_price: Option<String>,
    /// The Billing meter's event name usage is reported as.
    pub meter_event: String,
    /// Seconds a webhook signature's timestamp may be off.
    pub tolerance_secs: i64,
    /// Let `api_base` be on loopback or a private network.
    pub allow_private_hosts: bool,
}

impl Default for StripeSettings {
    fn default() -> Self {
        let d = app::StripeSettings::new(String::new().into());
        Self {
            api_base: d.api_base,
            secret_key: None,
            webhook_secret: None,
            prices: d.prices,
            metered_price: None,
            meter_event: d.meter_event,
            tolerance_secs: d.tolerance_secs,
            allow_private_hosts: false,
        }
    }
}

impl StripeSettings {
    /// The use cases' view (`None`: no secret key, no payments).
    pub fn to_app(&self) -> Option<app::StripeSettings> {
        let key = self.secret_key.clone().filter(|k| !k.expose_secret().is_empty())?;
        Some(app::StripeSettings {
            api_base: self.api_base.clone(),
            secret_key: key,
            webhook_secret: self.webhook_secret.clone().filter(|k| !k.expose_secret().is_empty()),
            prices: self.prices.clone(),
            metered_price: self.metered_price.clone().filter(|p| !p.is_empty()),
            meter_event: self.meter_event.clone(),
            tolerance_secs: self.tolerance_secs,
            allow_private_hosts: self.allow_private_hosts,
        })
    }
}

/// `[integrations]`: per provider (`[integrations.providers.slack]`), the OAuth2 client id and
/// secret the operator registered with the vendor, and any endpoint to use instead of the
/// vendor's public one (`ECHOFORGE__INTEGRATIONS__PROVIDERS__SLACK__CLIENT_ID=…`). A provider
/// without a client id is listed as unavailable.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IntegrationsSettings {
    /// Let provider endpoints and workspaces' webhooks be on loopback or private networks.
    /// Metadata addresses stay blocked.
    pub allow_private_hosts: bool,
    pub providers: std::collections::BTreeMap<String, ProviderSettings>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProviderSettings {
    pub client_id: Option<String>,
    #[serde(serialize_with = "ser_secret_opt")]
    pub client_secret: Option<SecretString>,
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    pub revoke_url: Option<String>,
    pub userinfo_url: Option<String>,
    pub api_base_url: Option<String>,
}

impl IntegrationsSettings {
    /// The use cases' view of these settings.
    pub fn to_app(&self) -> app::IntegrationSettings {
        app::IntegrationSettings {
            allow_private_hosts: self.allow_private_hosts,
            providers: self
                .providers
                .iter()
                .map(|(slug, p)| {
                    let setup = app::ProviderSetup {
                        client_id: p.client_id.clone(),
                        client_secret: p.client_secret.clone(),
                        authorize_url: p.authorize_url.clone(),
                        token_url: p.token_url.clone(),
                        revoke_url: p.revoke_url.clone(),
                        userinfo_url: p.userinfo_url.clone(),
                        api_base_url: p.api_base_url.clone(),
                    };
                    (slug.clone(), setup)
                })
                .collect(),
        }
    }
}

/// Widget rate limits (per visitor of one agent, and per agent).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WidgetSettings {
    pub visitor_per_minute: i64,
    pub visitor_per_day: i64,
    pub agent_per_minute: i64,
    pub agent_per_day: i64,
}

impl Default for WidgetSettings {
    fn default() -> Self {
        let d = app::WidgetLimits::default();
        Self {
            visitor_per_minute: d.visitor_per_minute,
            visitor_per_day: d.visitor_per_day,
            agent_per_minute: d.agent_per_minute,
            agent_per_day: d.agent_per_day,
        }
    }
}

/// The model provider. Unset values fall back to `ECHOFORGE__LLM__*`, then `OPENAI_API_KEY` /
/// `OPENAI_BASE_URL` (see `llm::ProviderConfig::from_lookup`, which also reads
/// `ECHOFORGE__LLM__TIMEOUT_SECS`, `…__MAX_RETRIES`, `…__API_VERSION`, `…__AUTH`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct LlmSettings {
    /// `openai` (any OpenAI-compatible server), `azure`, `anthropic` or `none`.
    pub provider: Option<String>,
    pub base_url: Option<String>,
    #[serde(serialize_with = "ser_secret_opt")]
    pub api_key: Option<SecretString>,
    /// The default model name.
    pub model: Option<String>,
    /// Let workspaces' own model endpoints (BYOK `base_url`) be on loopback or private
    /// networks (a model server on the LAN, such as Ollama). Metadata addresses stay blocked.
    #[serde(default)]
    pub allow_private_base_urls: bool,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InternalSettings {
    /// The secret external agent runtimes send (`X-Service-Secret`) to `/api/internal/*`;
    /// unset turns the internal API off.
    #[serde(serialize_with = "ser_secret_opt")]
    pub service_secret: Option<SecretString>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnowledgeSettings {
    /// Largest uploaded document, in bytes.
    pub max_upload_bytes: usize,
    /// A local sentence-transformers model directory for dense vectors (hybrid search).
    pub embedding_model_dir: Option<PathBuf>,
    /// An OpenAI-compatible embeddings endpoint (`…/v1`) for dense vectors.
    pub embedding_base_url: Option<String>,
    pub embedding_model: String,
    #[serde(serialize_with = "ser_secret_opt")]
    pub embedding_api_key: Option<SecretString>,
    /// Documents ingested at once.
    pub ingest_concurrency: usize,
    /// Seconds an ingestion job is leased for (renewed while it runs); after a crash, its work
    /// is taken over this long after the last renewal.
    pub ingest_lease_secs: u64,
    /// Let URL imports reach loopback and private networks (intranets, tests). Metadata
    /// addresses stay blocked.
    pub allow_private_urls: bool,
    /// How often the scheduler looks for knowledge bases whose URL sources are due a re-sync.
    #[serde(default = "default_sync_check_millis")]
    pub sync_check_millis: u64,
    /// Seconds between re-syncs of `daily` knowledge bases.
    #[serde(default = "default_sync_daily_secs")]
    pub sync_daily_secs: u64,
    /// Seconds between re-syncs of `weekly` knowledge bases.
    #[serde(default = "default_sync_weekly_secs")]
    pub sync_weekly_secs: u64,
}

fn default_sync_check_millis() -> u64 {
    60_000
}

fn default_sync_daily_secs() -> u64 {
    24 * 3600
}

fn default_sync_weekly_secs() -> u64 {
    7 * 24 * 3600
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunsSettings {
    /// Run traces older than this many days are deleted (0 keeps them forever).
    pub retention_days: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    pub bind: String,
    /// The URL people use to reach this server (for links in emails). Defaults to
    /// `http://<bind>`.
    pub public_url: Option<String>,
    pub max_body_bytes: usize,
    pub request_timeout_secs: u64,
    /// Seconds to let in-flight requests finish on shutdown.
    pub shutdown_grace_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `postgres://…` or `sqlite://…`; empty means SQLite in the data directory.
    #[serde(serialize_with = "ser_secret_opt")]
    pub url: Option<SecretString>,
    pub max_connections: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmtpSettings {
    /// `smtp://user:pass@host:587?tls=required`; empty means mail goes to `<data-dir>/outbox`.
    #[serde(serialize_with = "ser_secret_opt")]
    pub url: Option<SecretString>,
    pub from: String,
    /// Seconds a mail job is leased for (renewed while it is delivered); after a crash, the
    /// mail is delivered by a worker this long after the last renewal.
    #[serde(default = "default_mail_lease_secs")]
    pub lease_secs: u64,
}

fn default_mail_lease_secs() -> u64 {
    60
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    pub access_token_ttl_secs: u64,
    pub refresh_token_ttl_secs: u64,
    pub login_failures_per_account: u32,
    pub login_failures_per_ip: u32,
    pub login_window_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `json` (structured, one object per line) or `pretty`.
    pub format: String,
    /// A tracing filter, e.g. `info` or `echoforge=debug,info`.
    pub level: String,
}

fn ser_secret_opt<S: serde::Serializer>(v: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(secret) => s.serialize_some(secret.expose_secret()),
        None => s.serialize_none(),
    }
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            server: ServerSettings {
                bind: "127.0.0.1:8080".into(),
                public_url: None,
                max_body_bytes: 1024 * 1024,
                request_timeout_secs: 30,
                shutdown_grace_secs: 20,
            },
            data_dir: PathBuf::from("./echoforge-data"),
            database: DatabaseSettings { url: None, max_connections: 16 },
            smtp: SmtpSettings {
                url: None,
                from: "EchoForge <noreply@echoforge.local>".into(),
                lease_secs: default_mail_lease_secs(),
            },
            auth: AuthSettings {
                access_token_ttl_secs: 15 * 60,
                refresh_token_ttl_secs: 30 * 24 * 3600,
                login_failures_per_account: 5,
                login_failures_per_ip: 20,
                login_window_secs: 15 * 60,
            },
            log: LogSettings { format: "json".into(), level: "info".into() },
            knowledge: KnowledgeSettings {
                max_upload_bytes: 50 * 1024 * 1024,
                embedding_model_dir: None,
                embedding_base_url: None,
                embedding_model: "text-embedding-3-small".into(),
                embedding_api_key: None,
                ingest_concurrency: 2,
                allow_private_urls: false,
                ingest_lease_secs: 120,
                sync_check_millis: default_sync_check_millis(),
                sync_daily_secs: default_sync_daily_secs(),
                sync_weekly_secs: default_sync_weekly_secs(),
            },
            internal: InternalSettings::default(),
            llm: LlmSettings::default(),
            runs: RunsSettings { retention_days: 30 },
            widget: WidgetSettings::default(),
            integrations: IntegrationsSettings::default(),
            mcp: McpSettings::default(),
            billing: BillingSettings::default(),
            plans: Default::default(),
            handoff: HandoffSettings::default(),
        }
    }
}

/// Values given on the command line, which win over everything else.
#[derive(Debug, Default, Clone)]
pub struct CliOverrides {
    pub bind: Option<String>,
    pub data_dir: Option<PathBuf>,
}

impl Settings {
    /// Loads settings from the layers (the environment is the process's).
    pub fn load(file: Option<&Path>, cli: &CliOverrides) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(path) = file {
            if !path.exists() {
                bail!("configuration file {} does not exist", path.display());
            }
            figment = figment.merge(Toml::file(path));
        }
        figment = figment.merge(Env::prefixed("ECHOFORGE__").split("__"));
        if let Some(bind) = &cli.bind {
            figment = figment.merge(("server.bind", bind.clone()));
        }
        if let Some(dir) = &cli.data_dir {
            figment = figment.merge(("data_dir", dir.clone()));
        }
        let settings: Settings = figment.extract().context("invalid configuration")?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks what types alone cannot.
    pub fn validate(&self) -> anyhow::Result<()> {
        self.bind_addr()?;
        let stripe = &self.billing.stripe;
        if stripe.tolerance_secs < 1 {
            bail!(
                "billing.stripe.tolerance_secs must be at least 1 (got {})",
                stripe.tolerance_secs
            );
        }
        for plan in stripe.prices.keys() {
            if !["starter", "pro", "enterprise"].contains(&plan.as_str()) {
                bail!("billing.stripe.prices.{plan}: not a plan (use starter, pro or enterprise)");
            }
        }
        let w = &self.widget;
        for (key, v) in [
            ("widget.visitor_per_minute", w.visitor_per_minute),
            ("widget.visitor_per_day", w.visitor_per_day),
            ("widget.agent_per_minute", w.agent_per_minute),
            ("widget.agent_per_day", w.agent_per_day),
        ] {
            if v < 1 {
                bail!("{key} must be at least 1 (got {v})");
            }
        }
        if let Some(url) = &self.server.public_url
            && !(url.starts_with("http://") || url.starts_with("https://"))
        {
            bail!("server.public_url must start with http:// or https:// (got `{url}`)");
        }
        if let Some(url) = &self.database.url {
            let u = url.expose_secret();
            if !(u.is_empty()
                || u.starts_with("postgres://")
                || u.starts_with("postgresql://")
                || u.starts_with("sqlite:"))
            {
                bail!(
                    "database.url must be a postgres:// or sqlite: URL (got `{}`)",
                    store::redact_url(u)
                );
            }
        }
        if let Some(url) = &self.smtp.url {
            let u = url.expose_secret();
            if !(u.is_empty() || u.starts_with("smtp://") || u.starts_with("smtps://")) {
                bail!("smtp.url must be an smtp:// or smtps:// URL");
            }
        }
        if !matches!(self.log.format.as_str(), "json" | "pretty") {
            bail!("log.format must be `json` or `pretty` (got `{}`)", self.log.format);
        }
        if self.server.max_body_bytes < 1024 {
            bail!("server.max_body_bytes must be at least 1024");
        }
        if self.database.max_connections == 0 {
            bail!("database.max_connections must be at least 1");
        }
        Ok(())
    }

    /// The configured chat model, if any: these settings first, then the environment
    /// conventions of `llm::ProviderConfig::from_lookup`.
    pub fn chat_model(&self) -> anyhow::Result<Option<std::sync::Arc<dyn llm::ChatModel>>> {
        let l = &self.llm;
        let lookup = |k: &str| -> Option<String> {
            let own = match k {
                "ECHOFORGE__LLM__PROVIDER" => l.provider.clone(),
                "ECHOFORGE__LLM__BASE_URL" => l.base_url.clone(),
                "ECHOFORGE__LLM__API_KEY" => {
                    l.api_key.as_ref().map(|s| s.expose_secret().to_owned())
                }
                "ECHOFORGE__LLM__MODEL" => l.model.clone(),
                _ => None,
            };
            own.or_else(|| std::env::var(k).ok())
        };
        let Some(config) =
            llm::ProviderConfig::from_lookup(lookup).context("invalid [llm] settings")?
        else {
            return Ok(None);
        };
        Ok(Some(llm::provider_from_config(config).context("could not set up the model provider")?))
    }

    pub fn bind_addr(&self) -> anyhow::Result<SocketAddr> {
        self.server.bind.parse().with_context(|| {
            format!("server.bind `{}` is not an address like 127.0.0.1:8080", self.server.bind)
        })
    }

    /// The database URL: the configured one, or SQLite in the data directory.
    pub fn database_url(&self) -> String {
        match &self.database.url {
            Some(u) if !u.expose_secret().is_empty() => u.expose_secret().to_owned(),
            _ => format!("sqlite://{}", self.data_dir.join("echoforge.db").display()),
        }
    }

    pub fn public_url(&self, bound: SocketAddr) -> String {
        self.server
            .public_url
            .clone()
            .unwrap_or_else(|| format!("http://{bound}"))
            .trim_end_matches('/')
            .to_owned()
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closure signature, not ours
mod tests {
    use super::*;

    #[test]
    fn layers_apply_in_order_defaults_file_env_cli() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("echoforge.toml", "data_dir = \"/from-file\"\n[server]\nbind = \"127.0.0.1:9000\"\nmax_body_bytes = 4096\n")?;
            jail.set_env("ECHOFORGE__SERVER__BIND", "127.0.0.1:9100");
            jail.set_env("ECHOFORGE__DATABASE__URL", "postgres://u:hunter2@db/ef");
            let s = Settings::load(Some(Path::new("echoforge.toml")), &CliOverrides::default())
                .unwrap();
            assert_eq!(s.server.bind, "127.0.0.1:9100", "env beats file");
            assert_eq!(s.server.max_body_bytes, 4096, "file beats defaults");
            assert_eq!(s.data_dir, PathBuf::from("/from-file"));
            assert_eq!(s.server.request_timeout_secs, 30, "defaults fill the rest");
            assert!(!format!("{s:?}").contains("hunter2"), "secrets are redacted in Debug");
            let cli = CliOverrides {
                bind: Some("127.0.0.1:9200".into()),
                data_dir: Some("/from-cli".into()),
            };
            let s = Settings::load(Some(Path::new("echoforge.toml")), &cli).unwrap();
            assert_eq!(
                (s.server.bind.as_str(), s.data_dir.as_path()),
                ("127.0.0.1:9200", Path::new("/from-cli")),
                "CLI beats env"
            );
            Ok(())
        });
    }

    #[test]
    fn widget_limits_come_from_the_file_and_env_and_are_checked() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("echoforge.toml", "[widget]\nvisitor_per_minute = 7\n")?;
            jail.set_env("ECHOFORGE__WIDGET__AGENT_PER_DAY", "900");
            let s = Settings::load(Some(Path::new("echoforge.toml")), &CliOverrides::default())
                .unwrap();
            assert_eq!((s.widget.visitor_per_minute, s.widget.agent_per_day), (7, 900));
            let d = app::WidgetLimits::default();
            assert_eq!(s.widget.agent_per_minute, d.agent_per_minute, "defaults fill the rest");
            jail.set_env("ECHOFORGE__WIDGET__AGENT_PER_MINUTE", "0");
            let err = Settings::load(None, &CliOverrides::default()).unwrap_err();
            assert!(format!("{err:#}").contains("widget.agent_per_minute"), "{err:#}");
            Ok(())
        });
    }

    #[test]
    fn plans_are_changed_by_the_file_and_env_and_unknown_tiers_refused() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "echoforge.toml",
                "[plans.starter]\nname = \"Basic\"\nmessages_per_month = 5000\n",
            )?;
            jail.set_env("ECHOFORGE__PLANS__PRO__API_REQUESTS_PER_MINUTE", "-1");
            let s = Settings::load(Some(Path::new("echoforge.toml")), &CliOverrides::default())
                .unwrap();
            let starter = &s.plans[&catalog::PlanTier::Starter];
            assert_eq!(starter.name.as_deref(), Some("Basic"));
            assert_eq!(starter.messages_per_month, Some(catalog::Limit::AtMost(5000)));
            assert_eq!(starter.seats, None, "what is not named stays as shipped");
            let pro = &s.plans[&catalog::PlanTier::Pro];
            assert_eq!(pro.api_requests_per_minute, Some(catalog::Limit::Unlimited));
            jail.set_env("ECHOFORGE__PLANS__GOLD__SEATS", "3");
            let err = Settings::load(None, &CliOverrides::default()).unwrap_err();
            assert!(format!("{err:#}").contains("gold"), "{err:#}");
            Ok(())
        });
    }

    #[test]
    fn invalid_settings_are_refused_with_a_clear_message() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("ECHOFORGE__SERVER__BIND", "not-an-address");
            let err = Settings::load(None, &CliOverrides::default()).unwrap_err();
            assert!(format!("{err:#}").contains("server.bind"), "{err:#}");
            jail.set_env("ECHOFORGE__SERVER__BIND", "127.0.0.1:1");
            jail.set_env("ECHOFORGE__DATABASE__URL", "mysql://x");
            let err = Settings::load(None, &CliOverrides::default()).unwrap_err();
            assert!(format!("{err:#}").contains("database.url"), "{err:#}");
            jail.set_env("ECHOFORGE__DATABASE__URL", "");
            jail.set_env("ECHOFORGE__SERVER__NO_SUCH_KEY", "1");
            let err = Settings::load(None, &CliOverrides::default()).unwrap_err();
            assert!(format!("{err:#}").contains("no_such_key"), "{err:#}");
            Ok(())
        });
    }

    #[test]
    fn llm_settings_come_from_env_and_file_and_build_a_provider() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("echoforge.toml", "[llm]\nmodel = \"from-file\"\n")?;
            jail.set_env("ECHOFORGE__LLM__BASE_URL", "http://127.0.0.1:9/v1");
            jail.set_env("ECHOFORGE__LLM__API_KEY", "sk-hidden");
            jail.set_env("ECHOFORGE__LLM__TIMEOUT_SECS", "5");
            jail.set_env("ECHOFORGE__RUNS__RETENTION_DAYS", "7");
            let s = Settings::load(Some(Path::new("echoforge.toml")), &CliOverrides::default())
                .unwrap();
            assert_eq!(s.runs.retention_days, 7);
            assert!(!format!("{s:?}").contains("sk-hidden"), "the key is redacted");
            let model = s.chat_model().unwrap().expect("a provider");
            assert_eq!(model.model(), "from-file");
            jail.set_env("ECHOFORGE__LLM__PROVIDER", "none");
            let s = Settings::load(None, &CliOverrides::default()).unwrap();
            assert!(s.chat_model().unwrap().is_none());
            jail.set_env("ECHOFORGE__LLM__PROVIDER", "gemini");
            let s = Settings::load(None, &CliOverrides::default()).unwrap();
            let Err(e) = s.chat_model() else { panic!("an unknown provider is refused") };
            assert!(format!("{e:#}").contains("PROVIDER"), "{e:#}");
            Ok(())
        });
    }

    #[test]
    fn a_missing_config_file_is_an_error() {
        assert!(
            Settings::load(
                Some(Path::new("/nonexistent/echoforge.toml")),
                &CliOverrides::default()
            )
            .is_err()
        );
    }
}
