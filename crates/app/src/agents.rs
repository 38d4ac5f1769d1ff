//! Agents (team members): creation and changes validated against their template through the
//! catalog (capabilities, dependencies, configuration schema, personality, prompt rendering),
//! revisions and restore, export and import. An agent-scoped API key sees only its agent.

use std::net::IpAddr;

use catalog::{Behavior, Personality, PromptContext, Template};
use domain::time::now_ms;
use domain::{AgentId, KnowledgeBaseId, Permission, RevisionId, Slug};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use store::{Agent, AgentFields, AgentUpdate, NewAgent, NewAuditEvent};
use utoipa::ToSchema;

use crate::catalog_api::validation;
use crate::{Actor, App, AppError, FieldError, Principal};

/// The agent an agent-scoped key is bound to (an unparsable id matches nothing).
pub(crate) fn own_agent(p: &Principal) -> Option<AgentId> {
    match &p.actor {
        Actor::Key { agent_id: Some(a), .. } => {
            Some(AgentId::parse(a).unwrap_or_else(|_| AgentId::new()))
        }
        _ => None,
    }
}

/// Agent-scoped keys reach only their agent; anything else is "not found".
pub(crate) fn check_access(p: &Principal, id: AgentId) -> Result<(), AppError> {
    match own_agent(p) {
        Some(own) if own != id => Err(AppError::NotFound { what: "agent" }),
        _ => Ok(()),
    }
}

fn require_read(p: &Principal) -> Result<(), AppError> {
    if own_agent(p).is_some() { Ok(()) } else { p.require(Permission::Read) }
}

/// Agent-scoped keys cannot create, delete or import agents.
fn require_workspace_write(p: &Principal) -> Result<(), AppError> {
    if own_agent(p).is_some() {
        return Err(AppError::forbidden("agent_key", "an agent API key cannot do this"));
    }
    p.require(Permission::Write)
}

/// An agent as the API returns it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AgentView {
    pub id: String,
    pub slug: String,
    pub display_name: String,
    pub avatar: Option<String>,
    pub role: Option<String>,
    pub tagline: Option<String>,
    pub description: Option<String>,
    pub template: Option<String>,
    pub enabled_capabilities: Vec<String>,
    pub knowledge_base_ids: Vec<String>,
    #[schema(value_type = Object)]
    pub personality: Value,
    #[schema(value_type = Object)]
    pub behavior: Value,
    #[schema(value_type = Object)]
    pub config: Value,
    pub model_override: Option<String>,
    pub system_prompt: String,
    /// Model settings derived from the personality.
    #[schema(value_type = Object)]
    pub llm_settings: Value,
    pub public_id: String,
    pub is_active: bool,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl From<&Agent> for AgentView {
    fn from(a: &Agent) -> Self {
        let personality: Personality =
            serde_json::from_value(a.personality.0.clone()).unwrap_or_default();
        Self {
            id: a.id.to_string(),
            slug: a.slug.clone(),
            display_name: a.display_name.clone(),
            avatar: a.avatar.clone(),
            role: a.role.clone(),
            tagline: a.tagline.clone(),
            description: a.description.clone(),
            template: a.template_slug.clone(),
            enabled_capabilities: serde_json::from_value(a.enabled_capabilities.0.clone())
                .unwrap_or_default(),
            knowledge_base_ids: a.knowledge_bases().iter().map(ToString::to_string).collect(),
            personality: a.personality.0.clone(),
            behavior: a.behavior.0.clone(),
            config: a.config.0.clone(),
            model_override: a.model_override.clone(),
            system_prompt: a.system_prompt.clone(),
            llm_settings: serde_json::to_value(personality.llm_settings()).unwrap_or_default(),
            public_id: a.public_id.clone(),
            is_active: a.is_active,
            version: a.version,
            created_at: a.created_at,
            updated_at: a.updated_at,
        }
    }
}

/// Input of `POST /agents`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentInput {
    pub display_name: String,
    pub slug: Option<String>,
    pub template: String,
    pub avatar: Option<String>,
    pub role: Option<String>,
    pub tagline: Option<String>,
    pub description: Option<String>,
    /// Defaults to the template's default capabilities.
    pub enabled_capabilities: Option<Vec<String>>,
    #[serde(default)]
    pub knowledge_base_ids: Vec<String>,
    #[schema(value_type = Option<Object>)]
    pub personality: Option<Value>,
    /// `{tone, language, multilingual, response_length, extra_instructions}`.
    #[schema(value_type = Option<Object>)]
    pub behavior: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
    /// Answers to the template's wizard fields used by its prompt.
    #[schema(value_type = Option<Object>)]
    pub answers: Option<Map<String, Value>>,
    pub model_override: Option<String>,
    pub is_active: Option<bool>,
}

/// Input of `PATCH /agents/{id}`: absent fields are kept.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentPatch {
    /// The version being edited (or send `If-Match`).
    pub version: Option<i64>,
    pub display_name: Option<String>,
    pub slug: Option<String>,
    pub avatar: Option<String>,
    pub role: Option<String>,
    pub tagline: Option<String>,
    pub description: Option<String>,
    pub enabled_capabilities: Option<Vec<String>>,
    pub knowledge_base_ids: Option<Vec<String>>,
    #[schema(value_type = Option<Object>)]
    pub personality: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub behavior: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub config: Option<Value>,
    #[schema(value_type = Option<Object>)]
    pub answers: Option<Map<String, Value>>,
    pub model_override: Option<String>,
    pub is_active: Option<bool>,
}

/// One revision of an agent.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RevisionView {
    pub id: String,
    pub version: i64,
    pub changed_fields: Vec<String>,
    pub actor_user_id: Option<String>,
    pub created_at: i64,
}

/// A self-contained agent document: no ids, no secrets.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AgentExport {
    /// `echoforge.agent/v1`.
    pub format: String,
    pub slug: String,
    pub display_name: String,
    pub avatar: Option<String>,
    pub role: Option<String>,
    pub tagline: Option<String>,
    pub description: Option<String>,
    pub template: String,
    pub enabled_capabilities: Vec<String>,
    /// Names of the knowledge bases the agent read; matched by name on import.
    #[serde(default)]
    pub knowledge_bases: Vec<String>,
    #[schema(value_type = Object)]
    pub personality: Value,
    #[schema(value_type = Object)]
    pub config: Value,
    #[serde(default)]
    #[schema(value_type = Object)]
    pub answers: Map<String, Value>,
    pub model_override: Option<String>,
    pub is_active: bool,
}

/// The result of an import.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ImportResult {
    pub agent: AgentView,
    /// Knowledge bases named in the document that this workspace does not have.
    pub dropped_knowledge_bases: Vec<String>,
}

const EXPORT_FORMAT: &str = "echoforge.agent/v1";

fn is_secret_key(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    ["secret", "token", "password", "api_key", "apikey", "credential"].iter().any(|s| k.contains(s))
}

/// Drops values under secret-looking keys, recursively.
fn strip_secrets(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !is_secret_key(k))
                .map(|(k, v)| (k.clone(), strip_secrets(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(strip_secrets).collect()),
        other => other.clone(),
    }
}

fn text(
    path: &str,
    v: &Option<String>,
    max: usize,
    errors: &mut Vec<FieldError>,
) -> Option<String> {
    let t = v.as_deref().map(str::trim).filter(|s| !s.is_empty())?;
    if t.chars().count() > max {
        errors.push(FieldError::new(path, "too_long", format!("must be at most {max} characters")));
    }
    Some(t.to_owned())
}

/// Lays `behavior` settings over the config's behaviour properties.
fn merge_behavior(config: &mut Value, behavior: &Value, errors: &mut Vec<FieldError>) {
    let (Some(c), Some(b)) = (config.as_object_mut(), behavior.as_object()) else {
        if !behavior.is_object() {
            errors.push(FieldError::new("/behavior", "type", "must be an object"));
        }
        return;
    };
    for (k, v) in b {
        let key = match k.as_str() {
            "extra_instructions" => "system_prompt_override",
            "tone" | "language" | "multilingual" | "response_length" => k.as_str(),
            _ => {
                errors.push(FieldError::new(
                    &format!("/behavior/{k}"),
                    "unknown_property",
                    "is not a behaviour setting",
                ));
                continue;
            }
        };
        c.insert(key.to_owned(), v.clone());
    }
}

impl App {
    /// Validates `fields` against `template` and renders the system prompt into them.
    pub(crate) async fn finish_fields(
        &self,
        p: &Principal,
        template: &Template,
        fields: &mut AgentFields,
        mut errors: Vec<FieldError>,
    ) -> Result<(), AppError> {
        let registry = self.catalog().registry();
        if fields.display_name.is_empty() {
            errors.push(FieldError::new("/display_name", "required", "is required"));
        }
        if Slug::parse(&fields.slug).is_err() {
            errors.push(FieldError::new(
                "/slug",
                "invalid_slug",
                "use lowercase letters, digits and single dashes",
            ));
        }
        let enabled: Vec<String> =
            serde_json::from_value(fields.enabled_capabilities.clone()).unwrap_or_default();
        if let Err(e) = catalog::check_enabled_capabilities(registry, template, &enabled) {
            errors.extend(e.into_iter().map(|e| FieldError::new(&e.path, &e.code, e.message)));
        }
        let personality = match serde_json::from_value::<Personality>(fields.personality.clone()) {
            Ok(pers) => pers,
            Err(e) => {
                errors.push(FieldError::new("/personality", "out_of_range", e.to_string()));
                Personality::default()
            }
        };
        fields.personality = serde_json::to_value(personality).unwrap_or_default();
        if errors.is_empty()
            && let Err(e) =
                catalog::validate_agent_config(registry, template, &enabled, &fields.config)
        {
            let AppError::Validation(v) = validation(e, "/config") else { unreachable!() };
            errors.extend(v);
        }
        for (i, kb) in fields.knowledge_base_ids.iter().enumerate() {
            if self.inner.store.get_knowledge_base(&p.scope(), *kb).await.is_err() {
                errors.push(FieldError::new(
                    &format!("/knowledge_base_ids/{i}"),
                    "unknown_knowledge_base",
                    "no such knowledge base in this workspace",
                ));
            }
        }
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        let behavior = Behavior::from_config(&fields.config);
        fields.behavior = serde_json::to_value(&behavior).unwrap_or_default();
        let mut answers: Map<String, Value> =
            fields.onboarding_answers.as_object().cloned().unwrap_or_default();
        if template.onboarding_schema.field("agent_name").is_some()
            && !answers.contains_key("agent_name")
        {
            answers.insert("agent_name".into(), Value::String(fields.display_name.clone()));
        }
        for f in template.onboarding_schema.fields() {
            if let (false, Some(d)) = (answers.contains_key(&f.name), &f.default) {
                answers.insert(f.name.clone(), d.clone());
            }
        }
        let ctx = PromptContext {
            agent: catalog::AgentFields {
                name: fields.display_name.clone(),
                role: fields.role.clone().unwrap_or_default(),
                tagline: fields.tagline.clone(),
                description: fields.description.clone(),
            },
            answers: answers.clone(),
            capabilities: enabled,
        };
        fields.system_prompt =
            template.render_system_prompt(&ctx, &personality, &behavior).map_err(|e| {
                AppError::field(
                    "/answers",
                    "prompt_render_failed",
                    format!("the system prompt cannot be rendered: {e}"),
                )
            })?;
        fields.onboarding_answers = Value::Object(answers);
        Ok(())
    }

    fn parse_kbs(ids: &[String], errors: &mut Vec<FieldError>) -> Vec<KnowledgeBaseId> {
        ids.iter()
            .enumerate()
            .filter_map(|(i, s)| match KnowledgeBaseId::parse(s) {
                Ok(id) => Some(id),
                Err(_) => {
                    errors.push(FieldError::new(
                        &format!("/knowledge_base_ids/{i}"),
                        "unknown_knowledge_base",
                        "no such knowledge base in this workspace",
                    ));
                    None
                }
            })
            .collect()
    }

    /// A slug not yet used in the workspace, starting from `base`.
    pub(crate) async fn free_slug(&self, p: &Principal, base: &str) -> Result<String, AppError> {
        let base = Slug::slugify(base).to_string();
        for n in 1..100 {
            let candidate = if n == 1 { base.clone() } else { format!("{base}-{n}") };
            match self.inner.store.get_agent_by_slug(&p.scope(), &candidate).await {
                Err(store::StoreError::NotFound) => return Ok(candidate),
                Err(e) => return Err(e.into()),
                Ok(_) => {}
            }
        }
        Ok(format!("{base}-{}", &AgentId::new().to_string()[3..11]))
    }

    pub(crate) fn agent_audit(
        &self,
        p: &Principal,
        action: &'static str,
        target: String,
        ip: Option<IpAddr>,
        detail: Value,
    ) -> NewAuditEvent {
        NewAuditEvent {
            workspace_id: Some(p.workspace_id),
            actor_user_id: p.user_id(),
            actor_key_id: p.key_id(),
            action,
            target: Some(target),
            ip: ip.map(|i| i.to_string()),
            detail,
        }
    }

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

    async fn agent_template(&self, p: &Principal, agent: &Agent) -> Result<Template, AppError> {
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

    pub async fn export_agent(&self, p: &Principal, id: AgentId) -> Result<AgentExport, AppError> {
        require_read(p)?;
        let a = self.load_agent(p, id).await?;
        let template = self.agent_template(p, &a).await.ok();
        let mut kbs = Vec::new();
        for kb in a.knowledge_bases() {
            if let Ok(k) = self.inner.store.get_knowledge_base(&p.scope(), kb).await {
                kbs.push(k.name);
            }
        }
        let mut answers: Map<String, Value> =
            a.onboarding_answers.0.as_object().cloned().unwrap_or_default();
        answers.remove(catalog::onboarding::KNOWLEDGE_BASE_KEY);
        if let Some(t) = &template {
            answers.retain(|k, _| t.onboarding_schema.field(k).is_none_or(|f| !f.kind.is_secret()));
        }
        let Value::Object(answers) = strip_secrets(&Value::Object(answers)) else { unreachable!() };
        Ok(AgentExport {
            format: EXPORT_FORMAT.into(),
            slug: a.slug.clone(),
            display_name: a.display_name.clone(),
            avatar: a.avatar.clone(),
            role: a.role.clone(),
            tagline: a.tagline.clone(),
            description: a.description.clone(),
            template: a.template_slug.clone().unwrap_or_default(),
            enabled_capabilities: serde_json::from_value(a.enabled_capabilities.0.clone())
                .unwrap_or_default(),
            knowledge_bases: kbs,
            personality: a.personality.0.clone(),
            config: strip_secrets(&a.config.0),
            answers,
            model_override: a.model_override.clone(),
            is_active: a.is_active,
        })
    }

    pub async fn import_agent(
        &self,
        p: &Principal,
        doc: AgentExport,
        ip: Option<IpAddr>,
    ) -> Result<ImportResult, AppError> {
        require_workspace_write(p)?;
        if doc.format != EXPORT_FORMAT {
            return Err(AppError::field(
                "/format",
                "unsupported_format",
                format!("expected `{EXPORT_FORMAT}`"),
            ));
        }
        let template = self.usable_template(p, &doc.template, "/template").await?;
        self.check_agent_limit(p).await?;
        let existing =
            self.inner.store.list_knowledge_bases(&p.scope(), None, Some(100)).await?.data;
        let mut kb_ids = Vec::new();
        let mut dropped = Vec::new();
        for name in &doc.knowledge_bases {
            match existing.iter().find(|k| &k.name == name) {
                Some(k) => kb_ids.push(k.id),
                None => dropped.push(name.clone()),
            }
        }
        let mut errors = Vec::new();
        let display_name = text("/display_name", &Some(doc.display_name.clone()), 100, &mut errors)
            .unwrap_or_default();
        let slug = if Slug::parse(&doc.slug).is_ok() {
            self.free_slug(p, &doc.slug).await?
        } else {
            doc.slug.clone()
        };
        let mut fields = AgentFields {
            slug,
            display_name,
            avatar: text("/avatar", &doc.avatar, 500, &mut errors),
            role: text("/role", &doc.role, 100, &mut errors),
            tagline: text("/tagline", &doc.tagline, 200, &mut errors),
            description: text("/description", &doc.description, 2000, &mut errors),
            template_slug: Some(template.slug.to_string()),
            enabled_capabilities: json!(doc.enabled_capabilities),
            knowledge_base_ids: kb_ids,
            integrations: json!([]),
            personality: doc.personality.clone(),
            behavior: json!({}),
            config: doc.config.clone(),
            routing_rules: json!({}),
            model_override: doc.model_override.clone(),
            system_prompt: String::new(),
            onboarding_answers: Value::Object(doc.answers.clone()),
            is_active: doc.is_active,
        };
        self.finish_fields(p, &template, &mut fields, errors).await?;
        let agent = self.insert_agent(p, fields).await?;
        self.audit(self.agent_audit(
            p,
            "agent.imported",
            agent.id.to_string(),
            ip,
            json!({"slug": agent.slug, "dropped_knowledge_bases": dropped}),
        ))
        .await;
        Ok(ImportResult { agent: (&agent).into(), dropped_knowledge_bases: dropped })
    }

    /// Saves an agent's setup as a workspace template under `slug`.
    pub async fn save_agent_as_template(
        &self,
        p: &Principal,
        id: AgentId,
        slug: &str,
        name: Option<&str>,
    ) -> Result<crate::TemplateView, AppError> {
        require_workspace_write(p)?;
        let a = self.load_agent(p, id).await?;
        let template = self.agent_template(p, &a).await?;
        let mut doc = serde_json::to_value(&template).unwrap_or_default();
        if let Some(o) = doc.as_object_mut() {
            o.insert("slug".into(), json!(slug));
            o.insert("name".into(), json!(name.unwrap_or(&a.display_name)));
            o.insert("default_capabilities".into(), a.enabled_capabilities.0.clone());
            o.insert("default_personality".into(), a.personality.0.clone());
            o.insert("default_config".into(), strip_secrets(&a.config.0));
            o.insert("is_featured".into(), json!(false));
            o.insert("is_active".into(), json!(true));
            if let Some(d) = &a.description {
                o.insert("description".into(), json!(d));
            }
        }
        self.create_template(p, doc, false).await
    }
}

fn slug_conflict(e: store::StoreError) -> AppError {
    match e {
        store::StoreError::Conflict(_) => {
            AppError::field("/slug", "slug_taken", "another agent in this workspace has this slug")
        }
        other => AppError::from_store("agent")(other),
    }
}

fn changed_fields(a: &AgentFields, b: &AgentFields) -> Vec<String> {
    let mut out = Vec::new();
    let mut cmp = |name: &str, same: bool| {
        if !same {
            out.push(name.to_owned())
        }
    };
    cmp("slug", a.slug == b.slug);
    cmp("display_name", a.display_name == b.display_name);
    cmp("avatar", a.avatar == b.avatar);
    cmp("role", a.role == b.role);
    cmp("tagline", a.tagline == b.tagline);
    cmp("description", a.description == b.description);
    cmp("enabled_capabilities", a.enabled_capabilities == b.enabled_capabilities);
    cmp("knowledge_base_ids", a.knowledge_base_ids == b.knowledge_base_ids);
    cmp("personality", a.personality == b.personality);
    cmp("behavior", a.behavior == b.behavior);
    cmp("config", a.config == b.config);
    cmp("model_override", a.model_override == b.model_override);
    cmp("system_prompt", a.system_prompt == b.system_prompt);
    cmp("onboarding_answers", a.onboarding_answers == b.onboarding_answers);
    cmp("is_active", a.is_active == b.is_active);
    out
}
