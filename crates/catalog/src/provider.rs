//! Integration providers as data (`data/providers.json`): who a workspace can connect to, how
//! (OAuth2 with PKCE, an API key or basic credentials), the vendor's endpoints, and the actions
//! each offers as agent tools (a JSON Schema and whether it changes something outside the
//! conversation). The operator supplies client credentials and may override every URL; the
//! data only says what the vendor's public defaults are.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::CatalogError;

const BUILTIN: &str = include_str!("../data/providers.json");

/// How a workspace proves itself to a provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthType {
    /// Authorization code + PKCE, tokens refreshed before they expire.
    Oauth2,
    /// A key (and the fields that go with it), checked by a test call before it is saved.
    ApiKey,
    /// Credentials the workspace types (an SMTP server, a webhook's URL and secret).
    Basic,
}

impl AuthType {
    pub const fn as_str(self) -> &'static str {
        match self {
            AuthType::Oauth2 => "oauth2",
            AuthType::ApiKey => "api_key",
            AuthType::Basic => "basic",
        }
    }
}

/// A credential field of an API-key or basic provider.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialField {
    pub name: String,
    pub label: String,
    /// Sealed by the vault and never shown again.
    pub secret: bool,
}

/// One thing an agent can do through a provider: a tool.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderAction {
    /// The action's id within the provider (`send_message`); the skill is `slack:send_message`.
    pub id: String,
    pub description: String,
    /// Sends, creates or updates something outside the conversation.
    pub side_effect: bool,
    /// JSON Schema of the arguments.
    pub parameters: Value,
}

/// A provider as shipped.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Provider {
    pub slug: String,
    pub name: String,
    pub category: String,
    pub auth_type: AuthType,
    pub logo: String,
    #[serde(default)]
    pub authorize_url: Option<String>,
    #[serde(default)]
    pub token_url: Option<String>,
    /// RFC 7009 revocation endpoint, where the vendor has one.
    #[serde(default)]
    pub revoke_url: Option<String>,
    /// Where the connected account's identity is read after the token exchange.
    #[serde(default)]
    pub userinfo_url: Option<String>,
    #[serde(default)]
    pub api_base_url: Option<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    /// What an API-key or basic provider's form asks for.
    #[serde(default)]
    pub fields: Vec<CredentialField>,
    /// Path (under the API base) of the call that checks API-key credentials before saving.
    #[serde(default)]
    pub test_path: Option<String>,
    pub actions: Vec<ProviderAction>,
}

impl Provider {
    /// The skill id of one of its actions (`slack:send_message`), as capabilities name them.
    pub fn skill(&self, action: &ProviderAction) -> String {
        format!("{}:{}", self.slug, action.id)
    }

    /// The tool name the model sees for one of its actions (`slack_send_message`).
    pub fn tool_name(&self, action: &ProviderAction) -> String {
        format!("{}_{}", self.slug.replace('-', "_"), action.id)
    }

    pub fn action(&self, id: &str) -> Option<&ProviderAction> {
        self.actions.iter().find(|a| a.id == id)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProvidersFile {
    providers: Vec<Provider>,
}

/// Loads and checks the shipped providers: unique slugs, OAuth2 providers with both endpoints,
/// form providers with fields, every action schema an object schema that compiles, unique
/// action ids.
pub fn builtin_providers() -> Result<Vec<Provider>, CatalogError> {
    let bad = |detail: String| CatalogError::BuiltinData { file: "providers.json".into(), detail };
    let file: ProvidersFile = serde_json::from_str(BUILTIN).map_err(|e| bad(e.to_string()))?;
    let mut seen = std::collections::BTreeSet::new();
    for p in &file.providers {
        if !seen.insert(p.slug.as_str()) {
            return Err(bad(format!("provider `{}` appears twice", p.slug)));
        }
        if !p.slug.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            return Err(bad(format!("provider slug `{}` is not lower-case-with-dashes", p.slug)));
        }
        match p.auth_type {
            AuthType::Oauth2 if p.authorize_url.is_none() || p.token_url.is_none() => {
                return Err(bad(format!("oauth2 provider `{}` lacks an endpoint", p.slug)));
            }
            AuthType::ApiKey | AuthType::Basic if p.fields.is_empty() => {
                return Err(bad(format!("provider `{}` has no credential fields", p.slug)));
            }
            _ => {}
        }
        let mut actions = std::collections::BTreeSet::new();
        for a in &p.actions {
            if !actions.insert(a.id.as_str()) {
                return Err(bad(format!("`{}:{}` appears twice", p.slug, a.id)));
            }
            if a.parameters.get("type").and_then(Value::as_str) != Some("object") {
                return Err(bad(format!(
                    "`{}:{}` parameters are not an object schema",
                    p.slug, a.id
                )));
            }
            jsonschema::options()
                .build(&a.parameters)
                .map_err(|e| bad(format!("`{}:{}` schema: {e}", p.slug, a.id)))?;
        }
    }
    Ok(file.providers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_providers_load_and_cover_the_issue_list() {
        let providers = builtin_providers().unwrap();
        for slug in [
            "slack",
            "gmail",
            "google-calendar",
            "google-drive",
            "outlook",
            "outlook-calendar",
            "hubspot",
            "salesforce",
            "zendesk",
            "freshdesk",
            "jira",
            "linear",
            "notion",
            "intercom",
            "webhook",
            "smtp",
        ] {
            assert!(providers.iter().any(|p| p.slug == slug), "{slug} missing");
        }
        let slack = providers.iter().find(|p| p.slug == "slack").unwrap();
        let send = slack.action("send_message").unwrap();
        assert!(send.side_effect);
        assert_eq!(slack.skill(send), "slack:send_message");
        let cal = providers.iter().find(|p| p.slug == "google-calendar").unwrap();
        assert_eq!(
            cal.tool_name(cal.action("create_event").unwrap()),
            "google_calendar_create_event"
        );
    }
}
