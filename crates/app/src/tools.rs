//! The tools an agent has beyond the built-in ones (its integrations' actions, its MCP servers'
//! tools), gathered from each source when the agent is loaded for a run. To the runtime they
//! are all [`runtime::Tool`]s: validated against their schemas, confirmed when they have side
//! effects and the agent asks for it, timed out and traced like the built-in tools.

use std::collections::BTreeSet;
use std::sync::Arc;

use runtime::{AgentTools, Tool};
use serde_json::Value;
use store::TenantScope;

use crate::integrations::tool::{IntegrationTool, enabled_actions, offer};
use crate::{App, AppError};

impl App {
    /// The agent's own tools. Each source appends its tools here; a source that is down must
    /// still give tools that answer the model with a clear error rather than fail the load.
    pub(crate) async fn agent_tools(
        &self,
        scope: &TenantScope,
        agent: &store::Agent,
    ) -> Result<AgentTools, AppError> {
        let mut tools: Vec<Arc<dyn Tool>> = Vec::new();
        let mut names = BTreeSet::new();
        let links = self.inner.store.agent_integrations(scope, agent.id).await?;
        if !links.is_empty() {
            let connections = self.inner.store.list_connections(scope).await?;
            for link in &links {
                let Some(c) = connections.iter().find(|c| c.id == link.connection_id) else {
                    continue;
                };
                let Some(provider) = self.catalog().provider(&c.provider) else { continue };
                let config: Value = serde_json::from_str(&link.config).unwrap_or(Value::Null);
                let defaults =
                    config.get("defaults").and_then(Value::as_object).cloned().unwrap_or_default();
                for action in enabled_actions(provider, &config) {
                    // A second connection of the same provider gets numbered names.
                    let base = provider.tool_name(action);
                    let name = (1..)
                        .map(|n| if n == 1 { base.clone() } else { format!("{base}_{n}") })
                        .find(|n| !names.contains(n))
                        .expect("some name is free");
                    names.insert(name.clone());
                    let spec = offer(provider, action, name, &link.purpose, &defaults);
                    tools.push(Arc::new(IntegrationTool {
                        store: self.inner.store.clone(),
                        keyring: self.inner.keyring.clone(),
                        integrations: self.inner.integrations.clone(),
                        scope: *scope,
                        connection: c.id,
                        provider: provider.clone(),
                        action: action.clone(),
                        defaults: defaults.clone(),
                        spec,
                    }));
                }
            }
        }
        tools.extend(self.agent_mcp_tools(scope, agent.id, &mut names).await?);
        Ok(AgentTools::new(tools))
    }
}
