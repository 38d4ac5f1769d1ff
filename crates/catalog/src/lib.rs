//! EchoForge's catalog: what agents are made of. Pure logic and data, no IO.
//!
//! - [`registry`]: capabilities (shipped as JSON in the binary) and their resolution to skills
//!   through a workspace's connected integrations;
//! - [`template`]: templates (agent types, offerings, persona templates) and their validation;
//! - [`onboarding`]: the onboarding-schema engine behind the creation wizard;
//! - [`config`]: agent configuration schemas composed from capability schemas, and validation;
//! - [`personality`]: sliders and behaviour settings → model settings and prompt text;
//! - [`prompt`]: strict, sandboxed rendering of system-prompt templates;
//! - [`plan`]: plans and their limits;
//! - [`answer_mapping`]: wizard answers that fill configuration settings (`maps_to`).
//!
//! [`Catalog::builtin`] loads and checks everything shipped in the binary once at start.

pub mod answer_mapping;
pub mod capability;
pub mod config;
pub mod error;
pub mod onboarding;
pub mod personality;
pub mod plan;
pub mod prompt;
pub mod provider;
pub mod registry;
pub mod template;

pub use capability::{Capability, CapabilityAvailability, IntegrationSkills};
pub use config::{
    agent_config_schema, agent_config_schema_inlined, agent_config_ui_schema,
    check_enabled_capabilities, default_agent_config, strip_disabled, validate_agent_config,
};
pub use error::{CatalogError, FieldError};
pub use onboarding::{Answers, OnboardingSchema};
pub use personality::{Behavior, LlmSettings, Personality};
pub use plan::{Limit, Plan, PlanLimits, PlanPatch, PlanTier, plan_allows};
pub use prompt::{AgentFields, PromptContext, compose_system_prompt, render_prompt};
pub use provider::{AuthType, CredentialField, Provider, ProviderAction};
pub use registry::CapabilityRegistry;
pub use template::Template;

/// Everything the catalog ships: capabilities, seeded templates and plans.
#[derive(Debug, Clone)]
pub struct Catalog {
    registry: CapabilityRegistry,
    templates: Vec<Template>,
    plans: Vec<Plan>,
    providers: Vec<Provider>,
}

impl Catalog {
    /// Loads and checks the built-in data; an error here is a bug in the shipped data.
    pub fn builtin() -> Result<Self, CatalogError> {
        let registry = CapabilityRegistry::builtin()?;
        let templates = template::builtin_templates(&registry)?;
        let plans = plan::builtin_plans()?;
        for tier in [PlanTier::Starter, PlanTier::Pro, PlanTier::Enterprise] {
            if !plans.iter().any(|p| p.tier == tier) {
                return Err(CatalogError::BuiltinData {
                    file: "plans.json".into(),
                    detail: format!("no plan for {tier:?}"),
                });
            }
        }
        let providers = provider::builtin_providers()?;
        Ok(Self { registry, templates, plans, providers })
    }

    /// The integration providers a workspace can connect to.
    pub fn providers(&self) -> &[Provider] {
        &self.providers
    }

    /// A provider by slug.
    pub fn provider(&self, slug: &str) -> Option<&Provider> {
        self.providers.iter().find(|p| p.slug == slug)
    }

    pub fn registry(&self) -> &CapabilityRegistry {
        &self.registry
    }

    /// The seeded templates.
    pub fn templates(&self) -> &[Template] {
        &self.templates
    }

    /// A seeded template by slug.
    pub fn template(&self, slug: &str) -> Result<&Template, CatalogError> {
        self.templates
            .iter()
            .find(|t| t.slug.as_str() == slug)
            .ok_or_else(|| CatalogError::UnknownTemplate(slug.to_owned()))
    }

    /// Parses and validates a template document submitted by an operator or a workspace.
    pub fn parse_template(&self, doc: &serde_json::Value) -> Result<Template, Vec<FieldError>> {
        Template::parse(doc, &self.registry)
    }

    /// The catalog with the operator's changes to its plans.
    pub fn with_plan_patches<'a>(
        mut self,
        patches: impl IntoIterator<Item = (&'a PlanTier, &'a PlanPatch)>,
    ) -> Self {
        for (tier, patch) in patches {
            if let Some(plan) = self.plans.iter_mut().find(|p| p.tier == *tier) {
                patch.apply(plan);
            }
        }
        self
    }

    pub fn plans(&self) -> &[Plan] {
        &self.plans
    }

    /// The limits of a tier.
    pub fn plan_limits(&self, tier: PlanTier) -> PlanLimits {
        plan::limits(&self.plans, tier).expect("every tier has a plan (checked at load)")
    }

    /// How many agents a tier may have.
    pub fn agent_limit(&self, tier: PlanTier) -> Limit {
        self.plan_limits(tier).agents
    }
}
