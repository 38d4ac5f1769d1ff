//! Operator-only use cases that act on another workspace than the caller's: changing a
//! workspace's plan (until billing does it).

use std::net::IpAddr;

use catalog::PlanTier;
use domain::WorkspaceId;
use domain::time::now_ms;
use serde_json::{Value, json};
use store::{NewAuditEvent, TenantScope, Workspace, WorkspacePatch};

use crate::{App, AppError, Principal};

/// The scope of a workspace an operator acts on. Minted only after
/// [`App::require_operator`] proved the caller is a platform operator.
#[allow(clippy::disallowed_methods)]
pub(crate) fn operator_scope(workspace_id: WorkspaceId) -> TenantScope {
    TenantScope::assume(workspace_id)
}

impl App {
    /// Moves a workspace to another plan (`starter`, `pro`, `enterprise`): operators only.
    /// The change is audited in the target workspace's log, naming the operator.
    pub async fn set_workspace_plan(
        &self,
        p: &Principal,
        workspace_id: WorkspaceId,
        plan: &str,
        ip: Option<IpAddr>,
    ) -> Result<Workspace, AppError> {
        self.require_operator(p).await?;
        let tier: PlanTier = serde_json::from_value(Value::String(plan.to_owned()))
            .ok()
            .filter(|t| self.catalog().plans().iter().any(|p| p.tier == *t))
            .ok_or_else(|| {
                let known: Vec<String> = self
                    .catalog()
                    .plans()
                    .iter()
                    .filter_map(|p| serde_json::to_value(p.tier).ok())
                    .filter_map(|v| v.as_str().map(str::to_owned))
                    .collect();
                AppError::field(
                    "/plan",
                    "unknown_plan",
                    format!("unknown plan; use one of: {}", known.join(", ")),
                )
            })?;
        let plan = serde_json::to_value(tier)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| plan.to_owned());
        let scope = operator_scope(workspace_id);
        let before = self
            .inner
            .store
            .get_workspace(&scope)
            .await
            .map_err(AppError::from_store("workspace"))?;
        let updated = self
            .inner
            .store
            .update_workspace(
                &scope,
                &WorkspacePatch { plan: Some(plan.clone()), ..Default::default() },
                now_ms(),
            )
            .await
            .map_err(AppError::from_store("workspace"))?;
        self.inner.plan_tiers.forget(workspace_id);
        self.audit(NewAuditEvent {
            workspace_id: Some(workspace_id),
            actor_user_id: p.user_id(),
            actor_key_id: p.key_id(),
            action: "workspace.plan_changed",
            target: Some(workspace_id.to_string()),
            ip: ip.map(|i| i.to_string()),
            detail: json!({"from": before.plan, "to": plan, "operator_workspace_id": p.workspace_id.to_string()}),
        })
        .await;
        Ok(updated)
    }
}
