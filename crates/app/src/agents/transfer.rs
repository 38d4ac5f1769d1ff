//! Export of an agent as a self-contained document (no ids, no secrets), import into a
//! workspace (knowledge bases matched by name), and saving an agent as a workspace template.

use std::net::IpAddr;

use domain::{AgentId, Slug};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use store::AgentFields;
use utoipa::ToSchema;

use super::routing::{check_integrations, check_routing_rules};
use super::{AgentView, require_read, require_workspace_write, text};
use crate::{App, AppError, Principal};

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
    /// Routing rules in their stored form (absent: none).
    #[serde(default)]
    #[schema(value_type = Object)]
    pub routing_rules: Value,
    /// Integration ids the agent uses (connections themselves are never exported).
    #[serde(default)]
    pub integrations: Vec<String>,
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

impl App {
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
            routing_rules: a.routing_rules.0.clone(),
            integrations: serde_json::from_value(a.integrations.0.clone()).unwrap_or_default(),
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
            integrations: check_integrations(
                &doc.integrations,
                self.catalog().registry(),
                &mut errors,
            ),
            personality: doc.personality.clone(),
            behavior: json!({}),
            config: doc.config.clone(),
            routing_rules: match &doc.routing_rules {
                Value::Null => json!({}),
                r => check_routing_rules(r, self.catalog().registry(), &mut errors),
            },
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
