//! Templates — "agent types", "offerings" and "persona templates" are one concept: what an
//! agent is made from. A template names its capabilities (and which are on by default), its
//! default personality, a system-prompt template, an onboarding wizard, a configuration schema
//! composed from capability schemas, credit costs and the plan tier it needs. The seeded ones
//! ship in the binary; operators and workspaces create more, checked by [`Template::parse`].

use std::collections::{BTreeMap, BTreeSet};

use domain::Slug;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::config::{self, SECTION_CAPABILITY_KEY};
use crate::error::{FieldError, pointer_join, pointer_segment};
use crate::onboarding::OnboardingSchema;
use crate::personality::{Behavior, Personality};
use crate::plan::PlanTier;
use crate::prompt::{PromptContext, check_prompt_template, compose_system_prompt, render_prompt};
use crate::registry::{CAPABILITY_REF_PREFIX, CapabilityRegistry};

/// A template document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Template {
    /// Unique, URL-safe id (`customer-support-agent`).
    pub slug: Slug,
    pub name: String,
    pub description: String,
    /// Emoji or icon identifier shown on the card (the persona seed's "avatar").
    pub icon: String,
    /// Catalog filter: `support`, `sales`, `productivity`, `assistants`, …
    pub category: String,
    /// The role an agent made from it plays ("Executive Assistant").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// Capabilities an agent of this template may enable (universal ones are implied).
    #[serde(default)]
    pub capabilities: Vec<String>,
    /// Capabilities on when an agent is created.
    #[serde(default)]
    pub default_capabilities: Vec<String>,
    /// Integrations to suggest connecting (`gmail`, `google-calendar`).
    #[serde(default)]
    pub suggested_integrations: Vec<String>,
    /// Knowledge to suggest adding ("contract templates").
    #[serde(default)]
    pub suggested_knowledge: Vec<String>,
    #[serde(default)]
    pub default_personality: Personality,
    /// System prompt with `{{variables}}` (Jinja syntax), rendered from onboarding answers.
    pub system_prompt_template: String,
    pub onboarding_schema: OnboardingSchema,
    /// `{"allOf": [{"$ref": "capability:<id>"}, {inline section}, …]}`; inline sections may
    /// carry `"x-capability": "<id>"` to be shown only with that capability.
    pub config_schema: Value,
    /// Config values laid over the capability schemas' defaults for a new agent.
    #[serde(default = "empty_object")]
    pub default_config: Value,
    /// Credits charged per action (`chat_message`, `web_search`); unlisted actions cost 1.
    #[serde(default)]
    pub credit_costs: BTreeMap<String, u32>,
    /// The lowest plan that may use it.
    #[serde(default = "starter")]
    pub required_plan: PlanTier,
    #[serde(default)]
    pub is_featured: bool,
    /// Available for new agents.
    #[serde(default = "yes")]
    pub is_active: bool,
    /// Shipped with EchoForge (true) or made by a workspace or operator (false).
    #[serde(default)]
    pub is_system: bool,
    /// Conversation starters shown after creation ("What's on my calendar today?").
    #[serde(default)]
    pub example_prompts: Vec<String>,
}

fn empty_object() -> Value {
    Value::Object(Default::default())
}

fn starter() -> PlanTier {
    PlanTier::Starter
}

fn yes() -> bool {
    true
}

/// Deserialises `v`, turning a serde error into a `FieldError` at a JSON pointer under `base`.
pub(crate) fn from_value_at<T: DeserializeOwned>(
    v: &Value,
    base: &str,
) -> Result<T, Vec<FieldError>> {
    serde_path_to_error::deserialize(v).map_err(|e| {
        let mut path = base.to_owned();
        for seg in e.path().iter() {
            match seg {
                serde_path_to_error::Segment::Seq { index } => path = pointer_join(&path, index),
                serde_path_to_error::Segment::Map { key } => {
                    path = format!("{path}/{}", pointer_segment(key))
                }
                serde_path_to_error::Segment::Enum { .. }
                | serde_path_to_error::Segment::Unknown => {}
            }
        }
        vec![FieldError::new(path, "invalid", e.into_inner().to_string())]
    })
}

impl Template {
    /// Parses and validates a template document (see [`Template::validate`]).
    pub fn parse(doc: &Value, registry: &CapabilityRegistry) -> Result<Self, Vec<FieldError>> {
        let template: Self = from_value_at(doc, "")?;
        template.validate(registry)?;
        Ok(template)
    }

    /// Credits charged for an action; 1 when the template does not list it.
    pub fn credit_cost(&self, action: &str) -> u32 {
        self.credit_costs.get(action).copied().unwrap_or(1)
    }

    /// The agent's full system prompt: this template's prompt rendered strictly from `ctx`,
    /// followed by the personality modifier and the behaviour sentences.
    pub fn render_system_prompt(
        &self,
        ctx: &PromptContext,
        personality: &Personality,
        behavior: &Behavior,
    ) -> Result<String, crate::CatalogError> {
        let rendered = render_prompt(&self.system_prompt_template, &self.onboarding_schema, ctx)?;
        Ok(compose_system_prompt(&rendered, personality, behavior))
    }

    /// Checks everything a parsed template must satisfy; errors are JSON pointers into the
    /// template document.
    pub fn validate(&self, registry: &CapabilityRegistry) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        for (key, text, max) in [
            ("name", &self.name, 100),
            ("description", &self.description, 2_000),
            ("category", &self.category, 50),
        ] {
            let n = text.trim().chars().count();
            if n == 0 || n > max {
                errors.push(FieldError::new(
                    format!("/{key}"),
                    "length",
                    format!("must be 1 to {max} characters"),
                ));
            }
        }
        let mut seen = BTreeSet::new();
        for (i, id) in self.capabilities.iter().enumerate() {
            let path = pointer_join("/capabilities", i);
            if registry.get(id).is_none() {
                errors.push(FieldError::new(
                    path,
                    "unknown_capability",
                    format!("`{id}` is not a known capability"),
                ));
            } else if !seen.insert(id) {
                errors.push(FieldError::new(path, "duplicate", format!("`{id}` is listed twice")));
            }
        }
        for (i, id) in self.default_capabilities.iter().enumerate() {
            if !self.capabilities.contains(id) {
                errors.push(FieldError::new(
                    pointer_join("/default_capabilities", i),
                    "not_in_capabilities",
                    format!("default capability `{id}` is not one of the template's capabilities"),
                ));
            }
        }
        if errors.is_empty()
            && let Err(e) =
                config::check_enabled_capabilities(registry, self, &self.default_capabilities)
        {
            errors.extend(e.into_iter().map(|mut e| {
                e.path = e.path.replacen("/enabled_capabilities", "/default_capabilities", 1);
                e
            }));
        }
        let schema_ok = match self.onboarding_schema.check("/onboarding_schema") {
            Ok(()) => true,
            Err(e) => {
                errors.extend(e);
                false
            }
        };
        if schema_ok
            && let Err(e) = check_prompt_template(
                &self.system_prompt_template,
                &self.onboarding_schema,
                "/system_prompt_template",
            )
        {
            errors.extend(e);
        }
        errors.extend(self.check_config_schema(registry));
        errors.extend(crate::answer_mapping::check(self, registry));
        for (i, action) in self.credit_costs.keys().enumerate() {
            if action.is_empty() || !action.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                errors.push(FieldError::new(
                    pointer_join("/credit_costs", action),
                    "invalid_action",
                    format!("action #{i} `{action}` must be snake_case"),
                ));
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }

    fn check_config_schema(&self, registry: &CapabilityRegistry) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let Some(items) = self.config_schema.get("allOf").and_then(Value::as_array) else {
            return vec![FieldError::new(
                "/config_schema/allOf",
                "required",
                "the config schema must be {\"allOf\": [...]}",
            )];
        };
        let allowed: BTreeSet<String> =
            self.capabilities.iter().cloned().chain(registry.universal_ids()).collect();
        let mut owners: BTreeMap<String, String> = BTreeMap::new();
        for (i, item) in items.iter().enumerate() {
            let ip = pointer_join("/config_schema/allOf", i);
            let props: Vec<String> = if let Some(r) = item.get("$ref").and_then(Value::as_str) {
                let rp = pointer_join(&ip, "$ref");
                let Some(id) = r.strip_prefix(CAPABILITY_REF_PREFIX) else {
                    errors.push(FieldError::new(
                        rp,
                        "invalid_ref",
                        format!("`{r}`: only `capability:<id>` references are allowed"),
                    ));
                    continue;
                };
                let Some(cap) = registry.get(id) else {
                    errors.push(FieldError::new(
                        rp,
                        "unknown_capability",
                        format!("`{id}` is not a known capability"),
                    ));
                    continue;
                };
                if !allowed.contains(id) {
                    errors.push(FieldError::new(
                        rp,
                        "capability_not_offered",
                        format!("`{id}` is not one of the template's capabilities"),
                    ));
                }
                cap.property_names()
            } else {
                if item.get("type").and_then(Value::as_str) != Some("object") {
                    errors.push(FieldError::new(
                        pointer_join(&ip, "type"),
                        "invalid",
                        "an inline section must be an object schema",
                    ));
                }
                if let Some(c) = item.get(SECTION_CAPABILITY_KEY)
                    && !c.as_str().is_some_and(|c| self.capabilities.iter().any(|x| x == c))
                {
                    errors.push(FieldError::new(
                        pointer_join(&ip, SECTION_CAPABILITY_KEY),
                        "capability_not_offered",
                        format!("{c} is not one of the template's capabilities"),
                    ));
                }
                item.get("properties")
                    .and_then(Value::as_object)
                    .map(|p| p.keys().cloned().collect())
                    .unwrap_or_default()
            };
            for p in props {
                if let Some(prev) = owners.insert(p.clone(), ip.clone()) {
                    errors.push(FieldError::new(
                        pointer_join(&ip, "properties"),
                        "duplicate_property",
                        format!("property `{p}` is already defined at {prev}"),
                    ));
                }
            }
        }
        if errors.is_empty()
            && let Err(e) = config::compile(registry, &self.config_schema)
        {
            errors.push(FieldError::new("/config_schema", "invalid_schema", e));
        }
        if let Some(defaults) = self.default_config.as_object() {
            for key in defaults.keys().filter(|k| !owners.contains_key(*k)) {
                errors.push(FieldError::new(
                    pointer_join("/default_config", key),
                    "unknown_property",
                    format!("`{key}` is not defined by the config schema"),
                ));
            }
        } else {
            errors.push(FieldError::new("/default_config", "type", "must be an object"));
        }
        errors
    }
}

/// The template data files embedded in the binary.
const BUILTIN: &[(&str, &str)] = &[
    ("executive-assistant", include_str!("../data/templates/executive-assistant.json")),
    ("sales-assistant", include_str!("../data/templates/sales-assistant.json")),
    ("legal-assistant", include_str!("../data/templates/legal-assistant.json")),
    ("research-assistant", include_str!("../data/templates/research-assistant.json")),
    ("support-assistant", include_str!("../data/templates/support-assistant.json")),
    ("customer-support-agent", include_str!("../data/templates/customer-support-agent.json")),
    ("research-agent", include_str!("../data/templates/research-agent.json")),
    ("topic-assistant", include_str!("../data/templates/topic-assistant.json")),
    ("code-assistant", include_str!("../data/templates/code-assistant.json")),
    ("knowledge-assistant", include_str!("../data/templates/knowledge-assistant.json")),
    ("generic-chat", include_str!("../data/templates/generic-chat.json")),
];

/// The seeded templates, parsed and validated.
pub fn builtin_templates(
    registry: &CapabilityRegistry,
) -> Result<Vec<Template>, crate::CatalogError> {
    BUILTIN
        .iter()
        .map(|(name, text)| {
            let file = format!("templates/{name}.json");
            let doc: Value = serde_json::from_str(text).map_err(|e| {
                crate::CatalogError::BuiltinData { file: file.clone(), detail: e.to_string() }
            })?;
            let t = Template::parse(&doc, registry).map_err(|errs| {
                crate::CatalogError::BuiltinData {
                    file: file.clone(),
                    detail: errs
                        .iter()
                        .map(|e| format!("{} [{}] {}", e.path, e.code, e.message))
                        .collect::<Vec<_>>()
                        .join("; "),
                }
            })?;
            if t.slug.as_str() != *name {
                return Err(crate::CatalogError::BuiltinData {
                    file,
                    detail: "slug does not match the file name".into(),
                });
            }
            Ok(t)
        })
        .collect()
}
