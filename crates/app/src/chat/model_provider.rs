//! Bring-your-own model keys: a workspace's own provider (OpenAI-compatible or Anthropic, base
//! URL, model) and API key, used for that workspace's runs instead of the server-wide provider.
//! The key is sealed by the vault (bound to the workspace) before it is stored, and never
//! returned or logged: reads show that a key is set and its last four characters.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::WorkspaceId;
use domain::time::{Millis, now_ms};
use parking_lot::Mutex;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};
use store::{SetModelProvider, TenantScope, WorkspaceModelProvider};

use crate::{App, AppError, Principal};

/// How long a workspace's provider is cached (it is also dropped when changed here).
const CACHE_TTL: Duration = Duration::from_secs(30);

/// What a workspace admin sends.
#[derive(Debug, Clone, Deserialize)]
pub struct ModelProviderInput {
    /// `openai` (any OpenAI-compatible endpoint) or `anthropic`.
    pub provider: String,
    /// The endpoint (OpenAI-compatible: the URL `/chat/completions` is appended to); the
    /// vendor's public endpoint when absent.
    pub base_url: Option<String>,
    pub model: String,
    pub api_key: String,
}

/// What reads show: never the key.
#[derive(Debug, Clone, Serialize)]
pub struct ModelProviderView {
    pub provider: String,
    pub base_url: Option<String>,
    pub model: String,
    pub api_key_set: bool,
    pub api_key_last4: String,
    pub updated_at: Millis,
}

impl From<&WorkspaceModelProvider> for ModelProviderView {
    fn from(p: &WorkspaceModelProvider) -> Self {
        Self {
            provider: p.provider.clone(),
            base_url: p.base_url.clone(),
            model: p.model.clone(),
            api_key_set: !p.api_key_sealed.is_empty(),
            api_key_last4: p.key_last4.clone(),
            updated_at: p.updated_at,
        }
    }
}

/// A workspace's runtime on its own provider (`None`: the server-wide one), and when it was
/// looked up.
type CachedRuntime = (Instant, Option<Arc<runtime::Runtime>>);

/// Workspaces' runtimes built on their own providers.
#[derive(Default)]
pub(crate) struct ProviderCache {
    entries: Mutex<HashMap<WorkspaceId, CachedRuntime>>,
}

impl ProviderCache {
    fn get(&self, ws: WorkspaceId) -> Option<Option<Arc<runtime::Runtime>>> {
        let entries = self.entries.lock();
        let (at, rt) = entries.get(&ws)?;
        (at.elapsed() < CACHE_TTL).then(|| rt.clone())
    }
    fn put(&self, ws: WorkspaceId, rt: Option<Arc<runtime::Runtime>>) {
        self.entries.lock().insert(ws, (Instant::now(), rt));
    }
    fn drop_workspace(&self, ws: WorkspaceId) {
        self.entries.lock().remove(&ws);
    }
}

fn seal_context(ws: WorkspaceId) -> String {
    format!("workspace-model-provider:{ws}")
}

/// The last four characters of a key (fewer for a very short key).
fn last4(key: &str) -> String {
    let chars: Vec<char> = key.chars().collect();
    chars[chars.len().saturating_sub(4)..].iter().collect()
}

impl App {
    /// The workspace's own model provider, if set (owners and admins).
    pub async fn model_provider(&self, p: &Principal) -> Result<ModelProviderView, AppError> {
        p.require_manager()?;
        match self.store().get_model_provider(&p.scope()).await? {
            Some(m) => Ok(ModelProviderView::from(&m)),
            None => Err(AppError::NotFound { what: "model provider" }),
        }
    }

    /// Sets the workspace's own model provider and key (owners and admins).
    pub async fn set_model_provider(
        &self,
        p: &Principal,
        input: ModelProviderInput,
    ) -> Result<ModelProviderView, AppError> {
        p.require_manager()?;
        let provider = match input.provider.trim().to_ascii_lowercase().as_str() {
            "openai" | "openai-compatible" | "openai_compatible" => "openai",
            "anthropic" => "anthropic",
            _ => {
                return Err(AppError::field(
                    "/provider",
                    "invalid",
                    "must be `openai` (any OpenAI-compatible endpoint) or `anthropic`",
                ));
            }
        };
        let model = input.model.trim().to_owned();
        if model.is_empty() || model.len() > 200 {
            return Err(AppError::field("/model", "invalid", "must be 1 to 200 characters"));
        }
        let key = input.api_key.trim();
        if key.is_empty() || key.len() > 4096 || key.chars().any(char::is_control) {
            return Err(AppError::field(
                "/api_key",
                "invalid",
                "must be 1 to 4096 printable characters",
            ));
        }
        let base_url = match input.base_url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            None => None,
            Some(u) => {
                let parsed = url::Url::parse(u)
                    .ok()
                    .filter(|p| matches!(p.scheme(), "http" | "https") && p.host_str().is_some());
                if parsed.is_none() {
                    return Err(AppError::field("/base_url", "invalid", "must be an http(s) URL"));
                }
                // The SSRF guard: no loopback, private or metadata address unless the operator
                // allowed private model hosts (names are checked again at each connection).
                if let Some(url) = &parsed
                    && let Err(e) =
                        fetch::check_url_address(url, &self.engine().settings.model_hosts)
                {
                    return Err(AppError::field("/base_url", "not_allowed", e.to_string()));
                }
                Some(u.trim_end_matches('/').to_owned())
            }
        };
        let scope = p.scope();
        let ws = scope.workspace_id();
        let sealed = self.keyring().seal(key.as_bytes(), &seal_context(ws));
        let set = SetModelProvider {
            provider: provider.to_owned(),
            base_url,
            model,
            api_key_sealed: sealed,
            key_last4: last4(key),
            updated_by: p.user_id().map(|u| u.to_string()),
        };
        let stored = self.store().set_model_provider(&scope, &set, now_ms()).await?;
        self.engine().providers.drop_workspace(ws);
        Ok(ModelProviderView::from(&stored))
    }

    /// Removes the workspace's own provider: its runs use the server-wide one again.
    pub async fn delete_model_provider(&self, p: &Principal) -> Result<(), AppError> {
        p.require_manager()?;
        let scope = p.scope();
        self.store()
            .delete_model_provider(&scope)
            .await
            .map_err(AppError::from_store("model provider"))?;
        self.engine().providers.drop_workspace(scope.workspace_id());
        Ok(())
    }

    /// The runtime for a workspace's runs: on its own provider when it set one, else `None`
    /// (the server-wide runtime).
    pub(crate) async fn workspace_runtime(
        &self,
        scope: &TenantScope,
    ) -> Result<Option<Arc<runtime::Runtime>>, AppError> {
        let ws = scope.workspace_id();
        if let Some(rt) = self.engine().providers.get(ws) {
            return Ok(rt);
        }
        let rt = match self.store().get_model_provider(scope).await? {
            None => None,
            Some(m) => {
                let key =
                    self.keyring().open(&m.api_key_sealed, &seal_context(ws)).map_err(|_| {
                        AppError::Internal("the workspace's model key cannot be opened".into())
                    })?;
                let key = String::from_utf8(key.to_vec()).map_err(|_| {
                    AppError::Internal("the workspace's model key is corrupt".into())
                })?;
                let key = Some(SecretString::from(key));
                let policy = &self.engine().settings.model_hosts;
                let mut config = if m.provider == "anthropic" {
                    llm::ProviderConfig::anthropic(
                        m.base_url.clone().unwrap_or_else(|| llm::ANTHROPIC_BASE_URL.to_owned()),
                        key,
                        m.model.clone(),
                    )
                } else {
                    llm::ProviderConfig::openai_compatible(
                        m.base_url.clone().unwrap_or_else(|| llm::OPENAI_BASE_URL.to_owned()),
                        key,
                        m.model.clone(),
                    )
                };
                // The endpoint the workspace chose goes through the SSRF guard: an IP literal
                // is checked here, a name where each connection is made.
                let url = url::Url::parse(&config.base_url).map_err(|_| {
                    AppError::Internal("the workspace's model URL is invalid".into())
                })?;
                if let Err(e) = fetch::check_url_address(&url, policy) {
                    return Err(AppError::Unavailable(format!(
                        "the workspace's model endpoint is not allowed: {e}"
                    )));
                }
                config.resolver =
                    Some(llm::GuardedResolver(fetch::guarded_resolver(policy.clone())));
                let model = llm::provider_from_config(config).map_err(|e| {
                    AppError::Internal(format!("the workspace's model provider: {e}"))
                })?;
                Some(Arc::new(self.engine().runtime_with(model)))
            }
        };
        self.engine().providers.put(ws, rt.clone());
        Ok(rt)
    }
}

#[cfg(test)]
mod tests {
    use super::last4;

    #[test]
    fn last4_shows_only_the_end_of_a_key() {
        assert_eq!(last4("sk-abcdef123456"), "3456");
        assert_eq!(last4("ab"), "ab");
    }
}
