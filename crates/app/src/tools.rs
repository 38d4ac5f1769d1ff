//! The tools an agent has beyond the built-in ones (its integrations' actions, its MCP servers'
//! tools), gathered from each source when the agent is loaded for a run. To the runtime they
//! are all [`runtime::Tool`]s: validated against their schemas, confirmed when they have side
//! effects and the agent asks for it, timed out and traced like the built-in tools.

use std::sync::Arc;

use runtime::{AgentTools, Tool};
use store::TenantScope;

use crate::{App, AppError};

impl App {
    /// The agent's own tools. Each source appends its tools here; a source that is down must
    /// still give tools that answer the model with a clear error rather than fail the load.
    pub(crate) async fn agent_tools(
        &self,
        scope: &TenantScope,
        agent: &store::Agent,
    ) -> Result<AgentTools, AppError> {
        let tools: Vec<Arc<dyn Tool>> = Vec::new();
        let _ = (scope, agent);
        Ok(AgentTools::new(tools))
    }
}
