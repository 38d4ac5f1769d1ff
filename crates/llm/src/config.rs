//! Provider settings, and how they are read from environment conventions.
//!
//! [`ProviderConfig::from_lookup`] is a pure function over a lookup closure so the binary's config
//! layer can feed it from the real environment (or a file) and tests can feed it a map.

use std::time::Duration;

use secrecy::SecretString;

use crate::LlmError;

/// Which wire protocol the provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProviderKind {
    /// OpenAI Chat Completions and everything compatible (Azure, Ollama, vLLM, llama.cpp, LiteLLM…).
    OpenAiCompatible,
    /// The Anthropic Messages API.
    Anthropic,
}

/// How an OpenAI-compatible endpoint wants the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthStyle {
    /// `Authorization: Bearer <key>` (OpenAI and most servers).
    Bearer,
    /// `api-key: <key>` (Azure OpenAI).
    ApiKeyHeader,
}

/// Time limits of one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// TCP + TLS connect.
    pub connect: Duration,
    /// A whole non-streaming call; for a stream, until its first byte.
    pub request: Duration,
    /// Longest silence between two chunks of a stream.
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            request: Duration::from_secs(120),
            idle: Duration::from_secs(60),
        }
    }
}

/// Retries of transient failures (429, 5xx, connection errors) before any answer byte was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first attempt (0 = try once).
    pub max_retries: u32,
    /// First backoff; doubles each retry, with full jitter.
    pub initial_backoff: Duration,
    /// Cap of one backoff, and of an honoured `Retry-After`: a provider asking for a longer wait
    /// gets `RateLimited` back at once rather than a stalled request.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_retries: 2,
            initial_backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(20),
        }
    }
}

/// Everything needed to talk to one provider.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// Wire protocol.
    pub kind: ProviderKind,
    /// For OpenAI-compatible: the URL that `/chat/completions` is appended to, usually ending in
    /// `/v1`. For Anthropic: the host root (a trailing `/v1` is tolerated).
    pub base_url: String,
    /// The key, when the endpoint needs one (local servers often do not).
    pub api_key: Option<SecretString>,
    /// Default model name.
    pub model: String,
    /// Key header style (OpenAI-compatible only).
    pub auth_style: AuthStyle,
    /// Azure's `api-version` query parameter, when set.
    pub api_version: Option<String>,
    /// Time limits.
    pub timeouts: Timeouts,
    /// Retries.
    pub retry: RetryPolicy,
    /// Resolves the endpoint's host name and refuses addresses it must not reach (the SSRF
    /// guard, for endpoints a workspace chose); with one, redirects and proxies are off too.
    /// `None`: the system resolver (the operator's own endpoint).
    pub resolver: Option<GuardedResolver>,
}

/// A DNS resolver that refuses some addresses (see [`ProviderConfig::resolver`]).
#[derive(Clone)]
pub struct GuardedResolver(pub std::sync::Arc<dyn reqwest::dns::Resolve>);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        self.0.resolve(name)
    }
}

impl std::fmt::Debug for GuardedResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GuardedResolver")
    }
}

/// OpenAI's public endpoint.
pub const OPENAI_BASE_URL: &str = "https://api.openai.com/v1";
/// Anthropic's public endpoint.
pub const ANTHROPIC_BASE_URL: &str = "https://api.anthropic.com";
const OPENAI_DEFAULT_MODEL: &str = "gpt-4o-mini";
const ANTHROPIC_DEFAULT_MODEL: &str = "claude-sonnet-4-5";

impl ProviderConfig {
    /// An OpenAI-compatible provider with default timeouts and retries.
    pub fn openai_compatible(
        base_url: impl Into<String>,
        api_key: Option<SecretString>,
        model: impl Into<String>,
    ) -> Self {
        let base_url = base_url.into();
        let auth_style = guess_auth_style(&base_url);
        Self {
            kind: ProviderKind::OpenAiCompatible,
            base_url,
            api_key,
            model: model.into(),
            auth_style,
            api_version: None,
            timeouts: Timeouts::default(),
            retry: RetryPolicy::default(),
            resolver: None,
        }
    }

    /// An Anthropic provider with default timeouts and retries.
    pub fn anthropic(
        base_url: impl Into<String>,
        api_key: Option<SecretString>,
        model: impl Into<String>,
    ) -> Self {
        Self {
            kind: ProviderKind::Anthropic,
            auth_style: AuthStyle::Bearer,
            ..Self::openai_compatible(base_url, api_key, model)
        }
    }

    /// Reads the provider from environment conventions through `lookup` (an env var reader).
    ///
    /// - `ECHOFORGE__LLM__PROVIDER`: `openai` / `openai-compatible` / `azure` / `anthropic` /
    ///   `none`; when unset, `openai` if any key or base URL below is set, else no provider.
    /// - `ECHOFORGE__LLM__BASE_URL`, else `OPENAI_BASE_URL` (OpenAI) or `ANTHROPIC_BASE_URL`,
    ///   else the vendor's public URL.
    /// - `ECHOFORGE__LLM__API_KEY`, else `OPENAI_API_KEY` (OpenAI) or `ANTHROPIC_API_KEY`.
    /// - `ECHOFORGE__LLM__MODEL`, else a vendor default.
    /// - `ECHOFORGE__LLM__API_VERSION` (Azure), `ECHOFORGE__LLM__AUTH` (`bearer`/`api-key`),
    ///   `ECHOFORGE__LLM__TIMEOUT_SECS`, `…__CONNECT_TIMEOUT_SECS`, `…__IDLE_TIMEOUT_SECS`,
    ///   `ECHOFORGE__LLM__MAX_RETRIES`.
    ///
    /// Returns `Ok(None)` when no model is configured (the product then answers without one).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Option<Self>, LlmError> {
        let get = |name: &str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let provider = get("ECHOFORGE__LLM__PROVIDER").map(|p| p.to_ascii_lowercase());
        let own_key = get("ECHOFORGE__LLM__API_KEY");
        let own_url = get("ECHOFORGE__LLM__BASE_URL");
        let kind = match provider.as_deref() {
            Some("none" | "off" | "disabled") => return Ok(None),
            Some("anthropic" | "claude") => ProviderKind::Anthropic,
            Some(
                "openai" | "openai-compatible" | "openai_compatible" | "azure" | "ollama" | "vllm"
                | "litellm" | "llamacpp" | "llama.cpp",
            ) => ProviderKind::OpenAiCompatible,
            Some(other) => {
                return Err(LlmError::Config {
                    message: format!(
                        "ECHOFORGE__LLM__PROVIDER `{other}` is not one of openai, azure, anthropic, none"
                    ),
                });
            }
            None => {
                let any = own_key.is_some()
                    || own_url.is_some()
                    || get("OPENAI_API_KEY").is_some()
                    || get("OPENAI_BASE_URL").is_some();
                if !any {
                    return Ok(None);
                }
                ProviderKind::OpenAiCompatible
            }
        };
        let (vendor_key, vendor_url, default_url, default_model) = match kind {
            ProviderKind::OpenAiCompatible => {
                ("OPENAI_API_KEY", "OPENAI_BASE_URL", OPENAI_BASE_URL, OPENAI_DEFAULT_MODEL)
            }
            ProviderKind::Anthropic => (
                "ANTHROPIC_API_KEY",
                "ANTHROPIC_BASE_URL",
                ANTHROPIC_BASE_URL,
                ANTHROPIC_DEFAULT_MODEL,
            ),
        };
        let base_url =
            own_url.or_else(|| get(vendor_url)).unwrap_or_else(|| default_url.to_owned());
        if !(base_url.starts_with("http://") || base_url.starts_with("https://")) {
            return Err(LlmError::Config {
                message: "ECHOFORGE__LLM__BASE_URL must start with http:// or https://".into(),
            });
        }
        let api_key = own_key.or_else(|| get(vendor_key)).map(SecretString::from);
        let model = get("ECHOFORGE__LLM__MODEL").unwrap_or_else(|| default_model.to_owned());
        let mut config = match kind {
            ProviderKind::OpenAiCompatible => Self::openai_compatible(base_url, api_key, model),
            ProviderKind::Anthropic => Self::anthropic(base_url, api_key, model),
        };
        if provider.as_deref() == Some("azure") {
            config.auth_style = AuthStyle::ApiKeyHeader;
        }
        match get("ECHOFORGE__LLM__AUTH").map(|a| a.to_ascii_lowercase()).as_deref() {
            None => {}
            Some("bearer") => config.auth_style = AuthStyle::Bearer,
            Some("api-key" | "api_key" | "apikey") => config.auth_style = AuthStyle::ApiKeyHeader,
            Some(_) => {
                return Err(LlmError::Config {
                    message: "ECHOFORGE__LLM__AUTH must be `bearer` or `api-key`".into(),
                });
            }
        }
        config.api_version = get("ECHOFORGE__LLM__API_VERSION");
        let secs = |name: &str| -> Result<Option<Duration>, LlmError> {
            get(name)
                .map(|v| {
                    v.parse::<f64>()
                        .ok()
                        .filter(|s| s.is_finite() && *s > 0.0)
                        .map(Duration::from_secs_f64)
                        .ok_or_else(|| LlmError::Config {
                            message: format!("{name} must be a positive number of seconds"),
                        })
                })
                .transpose()
        };
        if let Some(d) = secs("ECHOFORGE__LLM__TIMEOUT_SECS")? {
            config.timeouts.request = d;
        }
        if let Some(d) = secs("ECHOFORGE__LLM__CONNECT_TIMEOUT_SECS")? {
            config.timeouts.connect = d;
        }
        if let Some(d) = secs("ECHOFORGE__LLM__IDLE_TIMEOUT_SECS")? {
            config.timeouts.idle = d;
        }
        if let Some(n) = get("ECHOFORGE__LLM__MAX_RETRIES") {
            config.retry.max_retries = n.parse().map_err(|_| LlmError::Config {
                message: "ECHOFORGE__LLM__MAX_RETRIES must be a whole number".into(),
            })?;
        }
        Ok(Some(config))
    }
}

/// Azure OpenAI hosts want `api-key`; everything else a bearer token.
fn guess_auth_style(base_url: &str) -> AuthStyle {
    let host = base_url.split("://").nth(1).unwrap_or("").split(['/', ':', '?']).next();
    match host {
        Some(h)
            if h.ends_with(".openai.azure.com") || h.ends_with(".cognitiveservices.azure.com") =>
        {
            AuthStyle::ApiKeyHeader
        }
        _ => AuthStyle::Bearer,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use secrecy::ExposeSecret;

    use super::*;

    fn from(vars: &[(&str, &str)]) -> Result<Option<ProviderConfig>, LlmError> {
        let map: HashMap<String, String> =
            vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        ProviderConfig::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn nothing_set_means_no_provider() {
        assert!(from(&[]).unwrap().is_none());
        assert!(
            from(&[("ECHOFORGE__LLM__PROVIDER", "none"), ("OPENAI_API_KEY", "k")])
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn openai_env_fallbacks_apply_when_echoforge_vars_are_unset() {
        let c = from(&[("OPENAI_API_KEY", "sk-1"), ("OPENAI_BASE_URL", "http://h:1/v1")])
            .unwrap()
            .unwrap();
        assert_eq!(c.kind, ProviderKind::OpenAiCompatible);
        assert_eq!(c.base_url, "http://h:1/v1");
        assert_eq!(c.api_key.unwrap().expose_secret(), "sk-1");
        assert_eq!(c.model, OPENAI_DEFAULT_MODEL);
    }

    #[test]
    fn echoforge_vars_win_over_vendor_vars() {
        let c = from(&[
            ("ECHOFORGE__LLM__API_KEY", "mine"),
            ("OPENAI_API_KEY", "theirs"),
            ("ECHOFORGE__LLM__BASE_URL", "http://ollama:11434/v1"),
            ("ECHOFORGE__LLM__MODEL", "llama3"),
            ("ECHOFORGE__LLM__MAX_RETRIES", "5"),
            ("ECHOFORGE__LLM__IDLE_TIMEOUT_SECS", "2.5"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(c.api_key.unwrap().expose_secret(), "mine");
        assert_eq!(c.base_url, "http://ollama:11434/v1");
        assert_eq!(c.model, "llama3");
        assert_eq!(c.retry.max_retries, 5);
        assert_eq!(c.timeouts.idle, Duration::from_millis(2500));
    }

    #[test]
    fn anthropic_uses_its_own_defaults_and_key_var() {
        let c = from(&[("ECHOFORGE__LLM__PROVIDER", "anthropic"), ("ANTHROPIC_API_KEY", "a")])
            .unwrap()
            .unwrap();
        assert_eq!(c.kind, ProviderKind::Anthropic);
        assert_eq!(c.base_url, ANTHROPIC_BASE_URL);
        assert_eq!(c.api_key.unwrap().expose_secret(), "a");
    }

    #[test]
    fn azure_hosts_and_provider_name_use_the_api_key_header() {
        let c = from(&[
            ("ECHOFORGE__LLM__BASE_URL", "https://x.openai.azure.com/openai/deployments/d"),
            ("ECHOFORGE__LLM__API_VERSION", "2024-10-21"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(c.auth_style, AuthStyle::ApiKeyHeader);
        assert_eq!(c.api_version.as_deref(), Some("2024-10-21"));
        let c = from(&[
            ("ECHOFORGE__LLM__PROVIDER", "azure"),
            ("ECHOFORGE__LLM__BASE_URL", "https://proxy/v1"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(c.auth_style, AuthStyle::ApiKeyHeader);
    }

    #[test]
    fn bad_values_are_config_errors_that_name_the_variable() {
        let e = from(&[("ECHOFORGE__LLM__PROVIDER", "gemini")]).unwrap_err();
        assert!(e.to_string().contains("ECHOFORGE__LLM__PROVIDER"));
        let e =
            from(&[("OPENAI_API_KEY", "k"), ("ECHOFORGE__LLM__TIMEOUT_SECS", "-1")]).unwrap_err();
        assert!(e.to_string().contains("ECHOFORGE__LLM__TIMEOUT_SECS"));
        let e = from(&[("ECHOFORGE__LLM__BASE_URL", "ftp://x")]).unwrap_err();
        assert!(matches!(e, LlmError::Config { .. }));
    }
}
