//! A capability: something an agent can do ("Send & read emails", "Knowledge base"), with the
//! JSON Schema of its configuration, the capabilities it depends on, and how it maps to skills
//! through whichever integration the workspace has connected (persona seed §6.1.4, §9.1).

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A capability as shipped in `data/capabilities/*.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Capability {
    /// Stable id (`rag`, `send_emails`).
    pub id: String,
    pub label: String,
    pub description: String,
    pub icon: String,
    /// UI grouping: `knowledge`, `channels`, `communication`, `productivity`, `analysis`, …
    pub category: String,
    /// Universal capabilities (`branding`, `behavior`) belong to every template and are always on.
    #[serde(default)]
    pub universal: bool,
    /// JSON Schema (2020-12) of this capability's part of an agent's configuration. Always an
    /// object schema; its top-level property names are unique across the registry, because
    /// templates compose capability schemas side by side with `allOf`.
    pub schema: Value,
    /// Rendering hints for the configuration form (react-jsonschema-form style).
    #[serde(default)]
    pub ui_schema: Value,
    /// Dependencies as groups: every group must have at least one member enabled
    /// (`[["rag", "api"]]` = "requires rag or api").
    #[serde(default)]
    pub depends_on: Vec<Vec<String>>,
    /// Integrations that provide this capability, in order of preference: the first connected
    /// one wins.
    #[serde(default)]
    pub integrations: Vec<IntegrationSkills>,
    /// Built-in skills used when no listed integration is connected; `None` means the
    /// capability is unavailable without an integration.
    #[serde(default)]
    pub fallback: Option<Vec<String>>,
    /// Things outside the catalog this capability needs before it works, in plain words
    /// ("a knowledge base with at least one document"); shown in the UI, checked by the app.
    #[serde(default)]
    pub prerequisites: Vec<String>,
}

/// The skills one integration provides for a capability.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntegrationSkills {
    /// Integration (provider) id, as in the integrations catalog: `gmail`, `google-calendar`.
    pub integration: String,
    /// Skill ids, `integration:action`.
    pub skills: Vec<String>,
}

/// Whether a capability can be used by a workspace, given its connected integrations
/// (the `GET /capabilities` "with status" shape of persona seed §7.3).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapabilityAvailability {
    pub is_available: bool,
    /// The integration that provides it; `None` when built in or unavailable.
    pub connected_via: Option<String>,
    /// When unavailable: the integrations any one of which would make it available.
    pub requires: Vec<String>,
    /// The skills the agent gets for it (empty when unavailable).
    pub skills: Vec<String>,
}

impl Capability {
    /// Integration ids that can provide this capability, in order of preference.
    pub fn integration_ids(&self) -> Vec<String> {
        self.integrations.iter().map(|i| i.integration.clone()).collect()
    }

    /// Resolves this capability against the connected integrations: the first connected
    /// integration wins, else the built-in fallback, else unavailable with what it requires.
    pub fn availability(&self, connected: &BTreeSet<String>) -> CapabilityAvailability {
        if let Some(found) = self.integrations.iter().find(|i| connected.contains(&i.integration)) {
            return CapabilityAvailability {
                is_available: true,
                connected_via: Some(found.integration.clone()),
                requires: Vec::new(),
                skills: found.skills.clone(),
            };
        }
        match &self.fallback {
            Some(skills) => CapabilityAvailability {
                is_available: true,
                connected_via: None,
                requires: Vec::new(),
                skills: skills.clone(),
            },
            None => CapabilityAvailability {
                is_available: false,
                connected_via: None,
                requires: self.integration_ids(),
                skills: Vec::new(),
            },
        }
    }

    /// Top-level property names of this capability's configuration schema.
    pub fn property_names(&self) -> Vec<String> {
        self.schema
            .get("properties")
            .and_then(Value::as_object)
            .map(|p| p.keys().cloned().collect())
            .unwrap_or_default()
    }
}
