//! Validating an agent's fields against its template (capabilities and their dependencies,
//! the configuration schema, personality, knowledge bases) and rendering its system prompt.

use std::net::IpAddr;

use catalog::{Behavior, Personality, PromptContext, Template};
use domain::{AgentId, KnowledgeBaseId, Slug};
use serde_json::{Map, Value};
use store::{AgentFields, NewAuditEvent};

use crate::catalog_api::validation;
use crate::{App, AppError, FieldError, Principal};

/// Lays `behavior` settings over the config's behaviour properties.
pub(super) fn merge_behavior(config: &mut Value, behavior: &Value, errors: &mut Vec<FieldError>) {
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
        // `null` clears a setting (GET shows unset ones as null, so a round trip must work).
        if v.is_null() {
            c.remove(key);
        } else {
            c.insert(key.to_owned(), v.clone());
        }
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

    pub(super) fn parse_kbs(ids: &[String], errors: &mut Vec<FieldError>) -> Vec<KnowledgeBaseId> {
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
}
