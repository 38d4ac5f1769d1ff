//! An agent's revision history, and making an old revision current again.

use std::net::IpAddr;

use domain::time::now_ms;
use domain::{AgentId, Permission, RevisionId};
use serde_json::json;
use store::{Agent, AgentUpdate};

use super::{AgentView, RevisionView, changed_fields, require_read, slug_conflict};
use crate::{App, AppError, Principal};

impl App {
    pub async fn agent_revisions(
        &self,
        p: &Principal,
        id: AgentId,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<store::Page<RevisionView>, AppError> {
        require_read(p)?;
        self.load_agent(p, id).await?;
        let cursor = cursor
            .map(RevisionId::parse)
            .transpose()
            .map_err(|e| AppError::bad_request("invalid_cursor", e.to_string()))?;
        let page = self.inner.store.list_agent_revisions(&p.scope(), id, cursor, limit).await?;
        Ok(store::Page {
            data: page
                .data
                .into_iter()
                .map(|r| RevisionView {
                    id: r.id.to_string(),
                    version: r.version,
                    changed_fields: serde_json::from_value(r.changed_fields.0).unwrap_or_default(),
                    actor_user_id: r.actor_user_id,
                    created_at: r.created_at,
                })
                .collect(),
            next_cursor: page.next_cursor,
        })
    }

    /// Makes a revision's content current again (as a new version).
    pub async fn restore_agent_revision(
        &self,
        p: &Principal,
        id: AgentId,
        rev: RevisionId,
        ip: Option<IpAddr>,
    ) -> Result<AgentView, AppError> {
        p.require(Permission::Config)?;
        let agent = self.load_agent(p, id).await?;
        let revision = self
            .inner
            .store
            .get_agent_revision(&p.scope(), id, rev)
            .await
            .map_err(AppError::from_store("revision"))?;
        let snapshot: Agent = serde_json::from_value(revision.snapshot.0)
            .map_err(|e| AppError::Internal(format!("revision snapshot: {e}")))?;
        let mut fields = snapshot.fields();
        let mut kept = Vec::new();
        for kb in fields.knowledge_base_ids {
            if self.inner.store.get_knowledge_base(&p.scope(), kb).await.is_ok() {
                kept.push(kb);
            }
        }
        fields.knowledge_base_ids = kept;
        let changed = changed_fields(&agent.fields(), &fields);
        let update = AgentUpdate {
            expected_version: agent.version,
            fields,
            changed_fields: changed.clone(),
            actor: p.user_id(),
        };
        let updated =
            self.inner.store.update_agent(&p.scope(), id, &update, now_ms()).await.map_err(
                |e| match e {
                    store::StoreError::Conflict("version") => AppError::conflict(
                        "version_conflict",
                        "the agent changed during the restore; try again",
                    ),
                    other => slug_conflict(other),
                },
            )?;
        self.forget_cached_agents(p);
        self.audit(self.agent_audit(
            p,
            "agent.restored",
            id.to_string(),
            ip,
            json!({"from_version": revision.version, "changed": changed}),
        ))
        .await;
        Ok((&updated).into())
    }
}
