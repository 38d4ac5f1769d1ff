//! The onboarding wizard, driven by the template's onboarding schema: start (plan limit checked
//! first), show the current step hydrated with saved answers, submit a step (validated by the
//! catalog; nothing saved on error; only the current or an earlier step), go back, abandon, and
//! complete — which creates the agent and its first API key in one go.

pub(crate) mod suggest;

use std::net::IpAddr;

use catalog::onboarding::{self as wiz, HydratedStep, KNOWLEDGE_BASE_KEY, KnowledgeBaseChoice};
use catalog::{Answers, Template};
use domain::time::now_ms;
use domain::{KnowledgeBaseId, OnboardingId, Permission, Permissions};
use serde::Serialize;
use serde_json::{Value, json};
use store::{NewKnowledgeBase, OnboardingSession, OnboardingStatus, SyncFrequency};
use utoipa::ToSchema;

use crate::catalog_api::validation;
use crate::{AgentView, App, AppError, CreateKeyInput, CreatedKey, FieldError, Principal};

/// A wizard session with its current step.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OnboardingView {
    pub id: String,
    pub template: String,
    /// `in_progress`, `completed` or `abandoned`.
    pub status: String,
    /// `null` once every step is submitted (ready to complete) or the session is closed.
    pub current_step: Option<String>,
    pub completed_steps: Vec<String>,
    /// Every step id, in order.
    pub steps: Vec<String>,
    pub agent_id: Option<String>,
    /// The current step's fields with saved values and computed visibility.
    #[schema(value_type = Option<Object>)]
    pub step: Option<HydratedStep>,
}

/// The agent made by a completed wizard, with its API key (shown this once).
#[derive(Debug, Clone, Serialize)]
pub struct CompletedOnboarding {
    pub session: OnboardingView,
    pub agent: AgentView,
    pub api_key: CreatedKey,
    /// Default capabilities left off because they need settings the wizard did not ask for.
    pub deferred_capabilities: Vec<String>,
}

fn require_user(p: &Principal) -> Result<domain::UserId, AppError> {
    p.user_id()
        .ok_or_else(|| AppError::forbidden("user_required", "the wizard needs a signed-in user"))
}

fn closed(s: &OnboardingSession) -> Result<(), AppError> {
    match s.status {
        OnboardingStatus::InProgress => Ok(()),
        other => Err(AppError::conflict(
            "session_closed",
            format!("this onboarding session is {}; start a new one", other.as_str()),
        )),
    }
}

fn status_conflict(e: store::StoreError) -> AppError {
    match e {
        store::StoreError::Conflict("status") => {
            AppError::conflict("session_closed", "this onboarding session is no longer in progress")
        }
        other => AppError::from_store("onboarding session")(other),
    }
}

fn answers_of(s: &OnboardingSession) -> Answers {
    s.answers.0.as_object().cloned().unwrap_or_default()
}

impl App {
    fn onboarding_view(&self, s: &OnboardingSession, t: &Template) -> OnboardingView {
        let schema = &t.onboarding_schema;
        let answers = answers_of(s);
        let step = match (s.status, &s.current_step) {
            (OnboardingStatus::InProgress, Some(id)) => {
                wiz::hydrate_step(schema, id, &answers).ok()
            }
            _ => None,
        };
        OnboardingView {
            id: s.id.to_string(),
            template: s.template_slug.clone(),
            status: s.status.as_str().to_owned(),
            current_step: if s.status == OnboardingStatus::InProgress {
                s.current_step.clone()
            } else {
                None
            },
            completed_steps: serde_json::from_value(s.completed_steps.0.clone())
                .unwrap_or_default(),
            steps: schema.steps.iter().map(|s| s.id.clone()).collect(),
            agent_id: s.agent_id.clone(),
            step,
        }
    }

    async fn session(
        &self,
        p: &Principal,
        id: OnboardingId,
    ) -> Result<(OnboardingSession, Template), AppError> {
        require_user(p)?;
        let s = self
            .inner
            .store
            .get_onboarding(&p.scope(), id)
            .await
            .map_err(AppError::from_store("onboarding session"))?;
        let t = self.resolve_template(p, &s.template_slug).await?.template;
        Ok((s, t))
    }

    pub async fn start_onboarding(
        &self,
        p: &Principal,
        template: &str,
    ) -> Result<OnboardingView, AppError> {
        let user = require_user(p)?;
        p.require(Permission::Write)?;
        let t = self.usable_template(p, template, "/template").await?;
        self.check_agent_limit(p).await?;
        let first = wiz::first_step(&t.onboarding_schema);
        let s = self
            .inner
            .store
            .create_onboarding(
                &p.scope(),
                OnboardingId::new(),
                user,
                t.slug.as_str(),
                first,
                now_ms(),
            )
            .await?;
        Ok(self.onboarding_view(&s, &t))
    }

    pub async fn onboarding(
        &self,
        p: &Principal,
        id: OnboardingId,
    ) -> Result<OnboardingView, AppError> {
        let (s, t) = self.session(p, id).await?;
        Ok(self.onboarding_view(&s, &t))
    }

    /// Validates and saves one step, then moves to the next. Only the current step or an
    /// earlier one may be submitted.
    pub async fn submit_onboarding_step(
        &self,
        p: &Principal,
        id: OnboardingId,
        step_id: &str,
        values: Answers,
    ) -> Result<OnboardingView, AppError> {
        let (s, t) = self.session(p, id).await?;
        closed(&s)?;
        let schema = &t.onboarding_schema;
        let index_of = |sid: &str| schema.steps.iter().position(|st| st.id == sid);
        let Some(index) = index_of(step_id) else {
            return Err(AppError::NotFound { what: "step" });
        };
        let current = s.current_step.as_deref().and_then(index_of).unwrap_or(schema.steps.len());
        if index > current {
            return Err(AppError::conflict(
                "step_out_of_order",
                format!("submit step `{}` first", s.current_step.clone().unwrap_or_default()),
            ));
        }
        let answers = answers_of(&s);
        let clean = wiz::validate_step(schema, step_id, &values, &answers)
            .map_err(|e| validation(e, ""))?;
        if let Some(Value::Object(kb)) = clean.get(KNOWLEDGE_BASE_KEY)
            && let Some(kb_id) = kb.get("knowledge_base_id").and_then(Value::as_str)
        {
            let ok = match KnowledgeBaseId::parse(kb_id) {
                Ok(k) => self.inner.store.get_knowledge_base(&p.scope(), k).await.is_ok(),
                Err(_) => false,
            };
            if !ok {
                return Err(AppError::field(
                    "/knowledge_base/knowledge_base_id",
                    "unknown_knowledge_base",
                    "no such knowledge base in this workspace",
                ));
            }
        }
        // Fields of this step that are not in the clean answers (hidden or emptied) are cleared.
        let step = schema.step(step_id).map_err(|_| AppError::NotFound { what: "step" })?;
        let mut save = clean.clone();
        for f in step.fields() {
            save.entry(f.name.clone()).or_insert(Value::Null);
        }
        if step.knowledge_base {
            save.entry(KNOWLEDGE_BASE_KEY.to_owned()).or_insert(Value::Null);
        }
        let next = wiz::next_step(schema, step_id).ok().flatten();
        let saved = self
            .inner
            .store
            .save_onboarding_step(&p.scope(), id, step_id, &save, next, now_ms())
            .await
            .map_err(status_conflict)?;
        Ok(self.onboarding_view(&saved, &t))
    }

    /// Moves back one step (answers are kept).
    pub async fn onboarding_back(
        &self,
        p: &Principal,
        id: OnboardingId,
    ) -> Result<OnboardingView, AppError> {
        let (s, t) = self.session(p, id).await?;
        closed(&s)?;
        let schema = &t.onboarding_schema;
        let target = match &s.current_step {
            Some(cur) => wiz::previous_step(schema, cur).ok().flatten(),
            None => schema.steps.last().map(|st| st.id.as_str()),
        }
        .ok_or_else(|| AppError::conflict("first_step", "this is already the first step"))?
        .to_owned();
        let saved = self
            .inner
            .store
            .set_onboarding_step(&p.scope(), id, &target, now_ms())
            .await
            .map_err(status_conflict)?;
        Ok(self.onboarding_view(&saved, &t))
    }

    pub async fn abandon_onboarding(
        &self,
        p: &Principal,
        id: OnboardingId,
    ) -> Result<OnboardingView, AppError> {
        let (s, t) = self.session(p, id).await?;
        closed(&s)?;
        let saved = self
            .inner
            .store
            .abandon_onboarding(&p.scope(), id, now_ms())
            .await
            .map_err(status_conflict)?;
        Ok(self.onboarding_view(&saved, &t))
    }

    /// Creates the agent from the answers, closes the session and issues the agent's key.
    pub async fn complete_onboarding(
        &self,
        p: &Principal,
        id: OnboardingId,
        ip: Option<IpAddr>,
    ) -> Result<CompletedOnboarding, AppError> {
        let (s, t) = self.session(p, id).await?;
        closed(&s)?;
        if s.current_step.is_some() {
            return Err(AppError::conflict(
                "steps_remaining",
                "submit every step before completing",
            ));
        }
        let clean = wiz::final_check(&t.onboarding_schema, &answers_of(&s))
            .map_err(|e| validation(e, "/answers"))?;
        self.check_agent_limit(p).await?;
        let name =
            clean.get("agent_name").and_then(Value::as_str).unwrap_or(t.name.as_str()).to_owned();
        let enabled = t.default_capabilities.clone();
        let mut kb_ids = Vec::new();
        let choice: Option<KnowledgeBaseChoice> =
            clean.get(KNOWLEDGE_BASE_KEY).and_then(|v| serde_json::from_value(v.clone()).ok());
        match &choice {
            Some(KnowledgeBaseChoice::Existing { knowledge_base_id, .. }) => {
                kb_ids.push(*knowledge_base_id)
            }
            Some(KnowledgeBaseChoice::CreateNew { name, .. }) => {
                let kb = NewKnowledgeBase {
                    id: KnowledgeBaseId::new(),
                    name: name.clone(),
                    description: Some(format!("Created with agent {}", name)),
                    chunk_size: 512,
                    chunk_overlap: 64,
                    embedding: "none".into(),
                    sync_frequency: SyncFrequency::Manual,
                };
                kb_ids.push(
                    self.inner.store.create_knowledge_base(&p.scope(), &kb, now_ms()).await?.id,
                );
            }
            _ => {}
        }
        let mut fields = store::AgentFields {
            slug: self.free_slug(p, &name).await?,
            display_name: name.chars().take(100).collect(),
            avatar: None,
            role: t.role.clone(),
            tagline: None,
            description: None,
            template_slug: Some(t.slug.to_string()),
            enabled_capabilities: json!(enabled),
            knowledge_base_ids: kb_ids,
            integrations: json!([]),
            personality: serde_json::to_value(t.default_personality).unwrap_or_default(),
            behavior: json!({}),
            config: {
                let mut c = catalog::default_agent_config(self.catalog().registry(), &t, &enabled);
                if let (Some(o), Some(d)) = (c.as_object_mut(), t.default_config.as_object()) {
                    o.extend(d.clone());
                }
                c
            },
            routing_rules: json!({}),
            model_override: None,
            system_prompt: String::new(),
            onboarding_answers: Value::Object(clean),
            is_active: true,
        };
        let deferred = self.settle_config(&t, &mut fields);
        self.finish_fields(p, &t, &mut fields, Vec::<FieldError>::new()).await?;
        let new = store::NewAgent {
            id: domain::AgentId::new(),
            public_id: vault::token::generate("pub_"),
            created_by: p.user_id(),
            fields,
        };
        let (session, agent) = self
            .inner
            .store
            .complete_onboarding_with_agent(&p.scope(), id, &new, now_ms())
            .await
            .map_err(status_conflict)?;
        let _ = self.inner.store.increment_template_usage(&p.scope(), t.slug.as_str()).await;
        self.audit(self.agent_audit(p, "agent.created", agent.id.to_string(), ip, json!({"slug": agent.slug, "template": agent.template_slug, "onboarding": id.to_string()}))).await;
        let perms: Permissions = [Permission::Chat, Permission::Upload].into_iter().collect();
        let input = CreateKeyInput {
            name: format!("{} key", agent.display_name),
            permissions: Some(vec!["chat".into(), "upload".into()]),
            ..Default::default()
        };
        let api_key = self.create_agent_key_unchecked(p, agent.id, input, perms, ip).await?;
        Ok(CompletedOnboarding {
            session: self.onboarding_view(&session, &t),
            agent: (&agent).into(),
            api_key,
            deferred_capabilities: deferred,
        })
    }

    /// Fills config settings from wizard answers — the fields the template maps to a setting
    /// (`maps_to`), then any still-missing required setting from an answer of the same name —
    /// and leaves off default capabilities whose required settings are still missing, so
    /// completion never fails on a setting the wizard did not ask for. Returns the
    /// capabilities left off.
    fn settle_config(&self, t: &Template, fields: &mut store::AgentFields) -> Vec<String> {
        let registry = self.catalog().registry();
        let mut enabled: Vec<String> =
            serde_json::from_value(fields.enabled_capabilities.clone()).unwrap_or_default();
        let answers = fields.onboarding_answers.as_object().cloned().unwrap_or_default();
        catalog::answer_mapping::apply(registry, t, &enabled, &answers, &mut fields.config);
        let answer_for = |setting: &str| answers.get(setting).cloned();
        let mut deferred = Vec::new();
        for _ in 0..8 {
            let Err(errors) = catalog::validate_agent_config(registry, t, &enabled, &fields.config)
            else {
                break;
            };
            let mut filled = false;
            if let Some(cfg) = fields.config.as_object_mut() {
                for e in errors.iter().filter(|e| e.code == "required") {
                    let setting = e.path.trim_start_matches('/');
                    if !setting.contains('/')
                        && !cfg.contains_key(setting)
                        && let Some(v) = answer_for(setting)
                    {
                        cfg.insert(setting.to_owned(), v);
                        filled = true;
                    }
                }
            }
            if filled {
                continue;
            }
            let mut missing: Vec<String> = errors
                .iter()
                .filter(|e| e.code == "required")
                .filter_map(|e| registry.owner_of_property(e.path.trim_start_matches('/')))
                .filter(|c| !c.universal && enabled.contains(&c.id))
                .map(|c| c.id.clone())
                .collect();
            missing.dedup();
            if missing.is_empty() {
                break;
            }
            enabled.retain(|c| !missing.contains(c));
            deferred.extend(missing);
            // What depended on a capability left off goes too.
            while let Err(e) = catalog::check_enabled_capabilities(registry, t, &enabled) {
                let drop: Vec<String> = e
                    .iter()
                    .filter_map(|e| e.path.rsplit('/').next()?.parse::<usize>().ok())
                    .filter_map(|i| enabled.get(i).cloned())
                    .collect();
                if drop.is_empty() {
                    break;
                }
                enabled.retain(|c| !drop.contains(c));
                deferred.extend(drop);
            }
            fields.config = catalog::strip_disabled(registry, t, &enabled, &fields.config);
        }
        fields.enabled_capabilities = json!(enabled);
        deferred
    }
}
