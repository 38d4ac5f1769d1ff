//! The capability registry: the capabilities shipped in the binary, checked at load (every
//! schema compiles, every dependency names a real capability, no dependency cycles, no two
//! capabilities claim the same configuration property), and resolved against a workspace's
//! connected integrations.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use serde_json::Value;

use crate::capability::{Capability, CapabilityAvailability};
use crate::error::CatalogError;

/// The capability data files embedded in the binary.
const BUILTIN: &[(&str, &str)] = &[
    ("rag", include_str!("../data/capabilities/rag.json")),
    ("widget", include_str!("../data/capabilities/widget.json")),
    ("api", include_str!("../data/capabilities/api.json")),
    ("escalation", include_str!("../data/capabilities/escalation.json")),
    ("web_search", include_str!("../data/capabilities/web_search.json")),
    ("image_gen", include_str!("../data/capabilities/image_gen.json")),
    ("voice", include_str!("../data/capabilities/voice.json")),
    ("file_upload", include_str!("../data/capabilities/file_upload.json")),
    ("code_exec", include_str!("../data/capabilities/code_exec.json")),
    ("branding", include_str!("../data/capabilities/branding.json")),
    ("behavior", include_str!("../data/capabilities/behavior.json")),
    ("send_emails", include_str!("../data/capabilities/send_emails.json")),
    ("manage_calendar", include_str!("../data/capabilities/manage_calendar.json")),
    ("search_documents", include_str!("../data/capabilities/search_documents.json")),
    ("review_documents", include_str!("../data/capabilities/review_documents.json")),
    ("send_slack", include_str!("../data/capabilities/send_slack.json")),
    ("create_documents", include_str!("../data/capabilities/create_documents.json")),
    ("summarize_content", include_str!("../data/capabilities/summarize_content.json")),
    ("research_web", include_str!("../data/capabilities/research_web.json")),
];

/// URI scheme under which capability schemas are referenced from template config schemas.
pub const CAPABILITY_REF_PREFIX: &str = "capability:";

/// All known capabilities, by id. Cheap to clone (shared).
#[derive(Debug, Clone)]
pub struct CapabilityRegistry {
    by_id: Arc<BTreeMap<String, Capability>>,
}

impl CapabilityRegistry {
    /// Loads and checks the capabilities shipped in the binary.
    pub fn builtin() -> Result<Self, CatalogError> {
        let mut caps = Vec::new();
        for (name, text) in BUILTIN {
            let cap: Capability =
                serde_json::from_str(text).map_err(|e| CatalogError::BuiltinData {
                    file: format!("capabilities/{name}.json"),
                    detail: e.to_string(),
                })?;
            if cap.id != *name {
                return Err(CatalogError::BuiltinData {
                    file: format!("capabilities/{name}.json"),
                    detail: format!("id `{}` does not match the file name", cap.id),
                });
            }
            caps.push(cap);
        }
        Self::from_capabilities(caps)
    }

    /// Builds a registry from capabilities, checking them (see the module docs).
    pub fn from_capabilities(caps: Vec<Capability>) -> Result<Self, CatalogError> {
        let mut by_id = BTreeMap::new();
        for cap in caps {
            let id = cap.id.clone();
            if by_id.insert(id.clone(), cap).is_some() {
                return Err(bad(&id, "defined twice".into()));
            }
        }
        let registry = Self { by_id: Arc::new(by_id) };
        registry.check()?;
        Ok(registry)
    }

    fn check(&self) -> Result<(), CatalogError> {
        let mut owners: BTreeMap<String, String> = BTreeMap::new();
        for cap in self.by_id.values() {
            if cap.schema.get("type").and_then(Value::as_str) != Some("object") {
                return Err(bad(&cap.id, "schema must be an object schema".into()));
            }
            crate::config::compile(self, &cap.schema)
                .map_err(|e| bad(&cap.id, format!("schema does not compile: {e}")))?;
            for prop in cap.property_names() {
                if let Some(other) = owners.insert(prop.clone(), cap.id.clone()) {
                    return Err(bad(
                        &cap.id,
                        format!("property `{prop}` is also defined by `{other}`"),
                    ));
                }
            }
            for dep in cap.depends_on.iter().flatten() {
                if !self.by_id.contains_key(dep) {
                    return Err(bad(&cap.id, format!("depends on unknown capability `{dep}`")));
                }
            }
            if cap.depends_on.iter().any(Vec::is_empty) {
                return Err(bad(&cap.id, "has an empty dependency group".into()));
            }
            if cap.integrations.is_empty() && cap.fallback.is_none() {
                return Err(bad(
                    &cap.id,
                    "has neither integrations nor a built-in fallback".into(),
                ));
            }
        }
        if let Some(cycle) = self.find_cycle() {
            return Err(bad(&cycle[0], format!("dependency cycle: {}", cycle.join(" → "))));
        }
        Ok(())
    }

    /// Depth-first search over every dependency edge; returns a cycle if there is one.
    fn find_cycle(&self) -> Option<Vec<String>> {
        fn visit<'a>(
            reg: &'a CapabilityRegistry,
            id: &'a str,
            stack: &mut Vec<&'a str>,
            done: &mut BTreeSet<&'a str>,
        ) -> Option<Vec<String>> {
            if let Some(pos) = stack.iter().position(|s| *s == id) {
                let mut cycle: Vec<String> = stack[pos..].iter().map(|s| s.to_string()).collect();
                cycle.push(id.to_string());
                return Some(cycle);
            }
            if done.contains(id) {
                return None;
            }
            stack.push(id);
            let cap = reg.by_id.get(id)?;
            for dep in cap.depends_on.iter().flatten() {
                if let Some(c) = visit(reg, dep, stack, done) {
                    return Some(c);
                }
            }
            stack.pop();
            done.insert(id);
            None
        }
        let mut done = BTreeSet::new();
        for id in self.by_id.keys() {
            if let Some(c) = visit(self, id, &mut Vec::new(), &mut done) {
                return Some(c);
            }
        }
        None
    }

    /// The capability with this id.
    pub fn get(&self, id: &str) -> Option<&Capability> {
        self.by_id.get(id)
    }

    /// The capability with this id, or `UnknownCapability`.
    pub fn require(&self, id: &str) -> Result<&Capability, CatalogError> {
        self.get(id).ok_or_else(|| CatalogError::UnknownCapability(id.to_owned()))
    }

    /// All capabilities, ordered by id.
    pub fn all(&self) -> impl Iterator<Item = &Capability> {
        self.by_id.values()
    }

    /// Ids of the universal capabilities (on for every agent).
    pub fn universal_ids(&self) -> Vec<String> {
        self.all().filter(|c| c.universal).map(|c| c.id.clone()).collect()
    }

    /// The capability owning a top-level configuration property.
    pub fn owner_of_property(&self, property: &str) -> Option<&Capability> {
        self.all().find(|c| c.property_names().iter().any(|p| p == property))
    }

    /// Availability of one capability given the workspace's connected integration ids.
    pub fn availability(
        &self,
        id: &str,
        connected: &BTreeSet<String>,
    ) -> Result<CapabilityAvailability, CatalogError> {
        Ok(self.require(id)?.availability(connected))
    }

    /// Availability of every capability, ordered by id (for `GET /capabilities`).
    pub fn availability_all(
        &self,
        connected: &BTreeSet<String>,
    ) -> Vec<(&Capability, CapabilityAvailability)> {
        self.all().map(|c| (c, c.availability(connected))).collect()
    }

    /// The skills an agent gets for its capabilities: each resolved, deduplicated, in order.
    /// Unavailable capabilities contribute nothing; unknown ids are an error.
    pub fn resolve_skills(
        &self,
        capabilities: &[String],
        connected: &BTreeSet<String>,
    ) -> Result<Vec<String>, CatalogError> {
        let mut seen = BTreeSet::new();
        let mut skills = Vec::new();
        for id in capabilities {
            for skill in self.availability(id, connected)?.skills {
                if seen.insert(skill.clone()) {
                    skills.push(skill);
                }
            }
        }
        Ok(skills)
    }

    /// Schema of the capability named by a `capability:<id>` URI, for the local retriever.
    pub(crate) fn schema_for_uri(&self, uri: &str) -> Option<&Value> {
        let id = uri.strip_prefix(CAPABILITY_REF_PREFIX)?;
        self.get(id).map(|c| &c.schema)
    }
}

fn bad(id: &str, detail: String) -> CatalogError {
    CatalogError::BuiltinData { file: format!("capabilities/{id}.json"), detail }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_registry_passes_its_load_checks() {
        // Every schema compiles, every dependency exists, no cycles, no shared properties.
        let reg = CapabilityRegistry::builtin().expect("built-in capabilities are valid");
        assert_eq!(reg.all().count(), BUILTIN.len());
        assert_eq!(
            reg.get("widget").unwrap().depends_on,
            vec![vec!["rag".to_string(), "api".to_string()]]
        );
    }
}
