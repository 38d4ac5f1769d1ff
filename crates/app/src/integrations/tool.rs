//! A provider action through one connection, as a runtime tool: credentials fresh from
//! [`super::credentials`], the call by [`connectors::execute`], a refused token refreshed and
//! the call tried once more, and a disconnected integration answered to the model in words
//! ("Slack is disconnected: …") instead of failing the run.

use std::sync::Arc;

use async_trait::async_trait;
use catalog::{Provider, ProviderAction};
use connectors::{ActionError, Credentials};
use domain::ConnectionId;
use domain::time::now_ms;
use runtime::{Tool, ToolContext, ToolOutput};
use serde_json::Value;
use store::{Store, TenantScope};
use vault::Keyring;

use super::Integrations;
use super::credentials::{CredentialError, fresh};

/// The actions a link enables: all of the provider's, or the ids in the link's
/// `config.actions`.
pub(crate) fn enabled_actions<'a>(
    provider: &'a Provider,
    config: &'a Value,
) -> impl Iterator<Item = &'a ProviderAction> + 'a {
    let only: Option<Vec<&str>> = config
        .get("actions")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect());
    provider
        .actions
        .iter()
        .filter(move |a| only.as_ref().is_none_or(|ids| ids.contains(&a.id.as_str())))
}

pub(crate) struct IntegrationTool {
    pub(crate) store: Store,
    pub(crate) keyring: Arc<Keyring>,
    pub(crate) integrations: Arc<Integrations>,
    pub(crate) scope: TenantScope,
    pub(crate) connection: ConnectionId,
    pub(crate) provider: Provider,
    pub(crate) action: ProviderAction,
    /// Defaults from the link's config (`defaults`), used where the model gave no value.
    pub(crate) defaults: serde_json::Map<String, Value>,
    /// What the model is offered, built once (see [`IntegrationTool::offer`]).
    pub(crate) spec: llm::ToolSpec,
}

/// The tool as the model is offered it: named `name` (unique within the agent), the link's
/// purpose after the action's description, and arguments the link gives defaults for made
/// optional (they are filled in `call`).
pub(crate) fn offer(
    provider: &Provider,
    action: &ProviderAction,
    name: String,
    purpose: &str,
    defaults: &serde_json::Map<String, Value>,
) -> llm::ToolSpec {
    let mut description = format!("{} ({})", action.description, provider.name);
    if !purpose.is_empty() {
        description.push_str(". Use it for: ");
        description.push_str(purpose);
    }
    let mut parameters = action.parameters.clone();
    if let Some(required) = parameters.get_mut("required").and_then(Value::as_array_mut) {
        required.retain(|r| r.as_str().is_none_or(|k| !defaults.contains_key(k)));
    }
    if let Some(props) = parameters.get_mut("properties").and_then(Value::as_object_mut) {
        for (k, v) in defaults {
            if let Some(Value::Object(p)) = props.get_mut(k) {
                p.insert("default".into(), v.clone());
            }
        }
    }
    llm::ToolSpec { name, description, parameters }
}

impl IntegrationTool {
    async fn run(
        &self,
        args: &Value,
        creds: &Credentials,
        base: &str,
    ) -> Result<String, ActionError> {
        let call = connectors::actions::ActionCall {
            provider: &self.provider.slug,
            action: &self.action.id,
            base_url: base,
            credentials: creds,
            args,
            now_secs: now_ms() / 1000,
        };
        connectors::execute(&self.integrations.http(), call).await
    }

    fn base(&self, creds: &Credentials) -> String {
        let empty = Default::default();
        let fields = match creds {
            Credentials::Fields(f) => f,
            Credentials::Bearer(_) => &empty,
        };
        self.integrations.api_base(&self.provider, fields)
    }

    async fn creds(&self, force: bool) -> Result<Credentials, String> {
        fresh(
            &self.store,
            &self.keyring,
            &self.integrations,
            &self.provider,
            &self.scope,
            self.connection,
            force,
        )
        .await
        .map(|(_, c)| c)
        .map_err(|e| match e {
            CredentialError::Disconnected(m) | CredentialError::Failed(m) => m,
        })
    }
}

#[async_trait]
impl Tool for IntegrationTool {
    fn spec(&self) -> llm::ToolSpec {
        self.spec.clone()
    }

    fn side_effect(&self) -> bool {
        self.action.side_effect
    }

    async fn call(&self, arguments: Value, _ctx: &ToolContext) -> Result<ToolOutput, String> {
        let mut args = arguments;
        if let Value::Object(map) = &mut args {
            for (k, v) in &self.defaults {
                map.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        let creds = self.creds(false).await?;
        let mut result = self.run(&args, &creds, &self.base(&creds)).await;
        if matches!(result, Err(ActionError::Unauthorized))
            && matches!(creds, Credentials::Bearer(_))
        {
            let creds = self.creds(true).await?;
            result = self.run(&args, &creds, &self.base(&creds)).await;
        }
        let error = match &result {
            Ok(_) => None,
            Err(ActionError::Unauthorized) => {
                let msg = "the provider refused the connection's credentials";
                let _ = self
                    .store
                    .set_connection_status(
                        &self.scope,
                        self.connection,
                        "expired",
                        Some(msg),
                        now_ms(),
                    )
                    .await;
                Some(msg.to_owned())
            }
            Err(e) => Some(e.to_string()),
        };
        if let Err(e) = self
            .store
            .touch_connection(&self.scope, self.connection, error.as_deref(), now_ms())
            .await
        {
            tracing::warn!(error = %e, "could not record a connection's use");
        }
        match result {
            Ok(text) => Ok(ToolOutput::Text(text)),
            Err(ActionError::Unauthorized) => Err(format!(
                "{} is disconnected: tell the user an admin needs to reconnect it on the Integrations page",
                self.provider.name
            )),
            Err(e) => Err(e.to_string()),
        }
    }
}
