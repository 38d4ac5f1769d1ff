//! Creating, listing, reading, updating and deleting agents.

use std::net::IpAddr;

use catalog::Template;
use domain::time::now_ms;
use domain::{AgentId, Permission};
use serde_json::{Value, json};
use store::{Agent, AgentFields, AgentUpdate, NewAgent};

use super::fields::merge_behavior;
use super::routing::{check_integrations, check_routing_rules};
use super::{
    AgentInput, AgentPatch, AgentView, changed_fields, check_access, own_agent, require_read,
    require_workspace_write, slug_conflict, text,
};
use crate::{App, AppError, FieldError, Principal};

impl App {
    pub async fn create_agent(
        &self,
        p: &Principal,
        input: AgentInput,
        ip: Option<IpAddr>,
    ) -> Result<AgentView, AppError> {
        require_workspace_write(p)?;
        let template = self.usable_template(p, &input.template, "/template").await?;
        self.check_agent_limit(p).await?;
        let mut errors = Vec::new();
        let display_name =
            text("/display_name", &Some(input.display_name.clone()), 100, &mut errors)
                .unwrap_or_default();
        let slug = match &input.slug {
            Some(s) => s.clone(),
            None => self.free_slug(p, &display_name).await?,
        };
        let enabled = input
            .enabled_capabilities
            .clone()
            .unwrap_or_else(|| template.default_capabilities.clone());
        // Given settings are laid over the defaults (capabilities', then the template's).
        let mut config =
            catalog::default_agent_config(self.catalog().registry(), &template, &enabled);
        for layer in [Some(&template.default_config), input.config.as_ref()].into_iter().flatten() {
            match (config.as_object_mut(), layer.as_object()) {
                (Some(c), Some(g)) => c.extend(g.clone()),
                _ => config = layer.clone(),
            }
        }
        if let Some(b) = &input.behavior {
            merge_behavior(&mut config, b, &mut errors);
        }
        let mut fields = AgentFields {
            slug,
            display_name,
            avatar: text("/avatar", &input.avatar, 500, &mut errors),
            role: text("/role", &input.role, 100, &mut errors).or_else(|| template.role.clone()),
            tagline: text("/tagline", &input.tagline, 200, &mut errors),
            description: text("/description", &input.description, 2000, &mut errors),
            template_slug: Some(template.slug.to_string()),
            enabled_capabilities: json!(enabled),
            knowledge_base_ids: Self::parse_kbs(&input.knowledge_base_ids, &mut errors),
            integrations: json!([]),
            personality: input.personality.clone().unwrap_or_else(|| {
                serde_json::to_value(template.default_personality).unwrap_or_default()
            }),
            behavior: json!({}),
            config,
            routing_rules: json!({}),
            model_override: input.model_override.clone().filter(|m| !m.trim().is_empty()),
            system_prompt: String::new(),
            onboarding_answers: Value::Object(input.answers.clone().unwrap_or_default()),
            is_active: input.is_active.unwrap_or(true),
        };
        self.finish_fields(p, &template, &mut fields, errors).await?;
        let agent = self.insert_agent(p, fields).await?;
        let _ = self.inner.store.increment_template_usage(&p.scope(), &input.template).await;
        self.audit(self.agent_audit(
            p,
            "agent.created",
            agent.id.to_string(),
            ip,
            json!({"slug": agent.slug, "template": agent.template_slug}),
        ))
        .await;
        Ok((&agent).into())
    }

    pub(crate) async fn insert_agent(
        &self,
        p: &Principal,
        fields: AgentFields,
    ) -> Result<Agent, AppError> {
        let new = NewAgent {
            id: AgentId::new(),
            public_id: vault::token::generate("pub_"),
            created_by: p.user_id(),
            fields,
        };
        self.inner.store.create_agent(&p.scope(), &new, now_ms()).await.map_err(slug_conflict)
    }

    pub async fn agents(
        &self,
        p: &Principal,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<store::Page<AgentView>, AppError> {
        require_read(p)?;
        if let Some(own) = own_agent(p) {
            let data = match self.inner.store.get_agent(&p.scope(), own).await {
                Ok(a) => vec![(&a).into()],
                Err(_) => Vec::new(),
            };
            return Ok(store::Page { data, next_cursor: None });
        }
        let cursor = cursor
            .map(AgentId::parse)
            .transpose()
            .map_err(|e| AppError::bad_request("invalid_cursor", e.to_string()))?;
        let page = self.inner.store.list_agents(&p.scope(), None, cursor, limit).await?;
        Ok(store::Page {
            data: page.data.iter().map(Into::into).collect(),
            next_cursor: page.next_cursor,
        })
    }

    pub(crate) async fn load_agent(&self, p: &Principal, id: AgentId) -> Result<Agent, AppError> {
        check_access(p, id)?;
        self.inner.store.get_agent(&p.scope(), id).await.map_err(AppError::from_store("agent"))
    }

    pub async fn agent(&self, p: &Principal, id: AgentId) -> Result<AgentView, AppError> {
        require_read(p)?;
        Ok((&self.load_agent(p, id).await?).into())
    }

    pub(super) async fn agent_template(
        &self,
        p: &Principal,
        agent: &Agent,
    ) -> Result<Template, AppError> {
        let slug = agent.template_slug.clone().unwrap_or_default();
        Ok(self
            .resolve_template(p, &slug)
            .await
            .map_err(|_| {
                AppError::conflict(
                    "template_missing",
                    format!("the agent's template `{slug}` no longer exists"),
                )
            })?
            .template)
    }

    pub async fn update_agent(
        &self,
        p: &Principal,
        id: AgentId,
        patch: AgentPatch,
        if_match: Option<i64>,
        ip: Option<IpAddr>,
    ) -> Result<AgentView, AppError> {
        p.require(Permission::Config)?;
        let agent = self.load_agent(p, id).await?;
        let expected = patch.version.or(if_match).ok_or_else(|| {
            AppError::field(
                "/version",
                "required",
                "send the version you edited (in the body or If-Match)",
            )
        })?;
        let template = self.agent_template(p, &agent).await?;
        let before = agent.fields();
        let mut f = agent.fields();
        let mut errors = Vec::new();
        if let Some(n) = &patch.display_name {
            f.display_name =
                text("/display_name", &Some(n.clone()), 100, &mut errors).unwrap_or_default();
        }
        if let Some(s) = &patch.slug {
            f.slug = s.clone();
        }
        if patch.avatar.is_some() {
            f.avatar = text("/avatar", &patch.avatar, 500, &mut errors);
        }
        if patch.role.is_some() {
            f.role = text("/role", &patch.role, 100, &mut errors);
        }
        if patch.tagline.is_some() {
            f.tagline = text("/tagline", &patch.tagline, 200, &mut errors);
        }
        if patch.description.is_some() {
            f.description = text("/description", &patch.description, 2000, &mut errors);
        }
        if let Some(c) = &patch.enabled_capabilities {
            f.enabled_capabilities = json!(c);
            if patch.config.is_none() {
                // Settings of switched-off capabilities go; new ones start from defaults.
                let mut cfg =
                    catalog::strip_disabled(self.catalog().registry(), &template, c, &f.config);
                if let (Some(o), Value::Object(d)) = (
                    cfg.as_object_mut(),
                    catalog::default_agent_config(self.catalog().registry(), &template, c),
                ) {
                    for (k, v) in d {
                        o.entry(k).or_insert(v);
                    }
                }
                f.config = cfg;
            }
        }
        if let Some(k) = &patch.knowledge_base_ids {
            f.knowledge_base_ids = Self::parse_kbs(k, &mut errors);
        }
        if let Some(v) = &patch.personality {
            let mut merged = f.personality.clone();
            match (merged.as_object_mut(), v.as_object()) {
                (Some(m), Some(n)) => m.extend(n.clone()),
                _ => errors.push(FieldError::new("/personality", "type", "must be an object")),
            }
            f.personality = merged;
        }
        if let Some(c) = &patch.config {
            f.config = c.clone();
        }
        if let Some(b) = &patch.behavior {
            merge_behavior(&mut f.config, b, &mut errors);
        }
        if let Some(a) = &patch.answers {
            f.onboarding_answers = Value::Object(a.clone());
        }
        if patch.model_override.is_some() {
            f.model_override = patch.model_override.clone().filter(|m| !m.trim().is_empty());
        }
        if let Some(a) = patch.is_active {
            f.is_active = a;
        }
        if let Some(r) = &patch.routing_rules {
            f.routing_rules = check_routing_rules(r, self.catalog().registry(), &mut errors);
        }
        if let Some(i) = &patch.integrations {
            f.integrations = check_integrations(i, self.catalog().registry(), &mut errors);
        }
        self.finish_fields(p, &template, &mut f, errors).await?;
        let changed = changed_fields(&before, &f);
        let update = AgentUpdate {
            expected_version: expected,
            fields: f,
            changed_fields: changed.clone(),
            actor: p.user_id(),
        };
        let updated =
            self.inner.store.update_agent(&p.scope(), id, &update, now_ms()).await.map_err(
                |e| match e {
                    store::StoreError::Conflict("version") => AppError::conflict(
                        "version_conflict",
                        "the agent was changed since you loaded it; reload and try again",
                    ),
                    other => slug_conflict(other),
                },
            )?;
        self.forget_cached_agents(p);
        self.audit(self.agent_audit(
            p,
            "agent.updated",
            id.to_string(),
            ip,
            json!({"changed": changed, "version": updated.version}),
        ))
        .await;
        Ok((&updated).into())
    }

    pub async fn delete_agent(
        &self,
        p: &Principal,
        id: AgentId,
        ip: Option<IpAddr>,
    ) -> Result<(), AppError> {
        require_workspace_write(p)?;
        let agent = self
            .inner
            .store
            .delete_agent(&p.scope(), id)
            .await
            .map_err(AppError::from_store("agent"))?;
        self.forget_cached_agents(p);
        for key in self.inner.store.list_api_keys(&p.scope(), Some(id)).await? {
            if key.revoked_at.is_none() {
                self.inner.store.revoke_api_key(&p.scope(), key.id, now_ms()).await?;
            }
        }
        self.inner.caches.forget_key(None);
        self.audit(self.agent_audit(
            p,
            "agent.deleted",
            id.to_string(),
            ip,
            json!({"slug": agent.slug}),
        ))
        .await;
        Ok(())
    }
}
