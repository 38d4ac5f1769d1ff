//! Agent configuration: the template's config schema (capability schemas composed with
//! `allOf` and `{"$ref": "capability:<id>"}`), filtered to the capabilities an agent has
//! enabled, compiled with a local retriever (never the network), and used to validate an
//! agent's config JSON with errors at JSON-pointer paths. Also: which capabilities an agent may
//! enable (a subset of its template's, with their dependencies met).

use std::collections::BTreeSet;

use jsonschema::error::ValidationErrorKind;
use jsonschema::{Draft, Retrieve, Uri, Validator};
use serde_json::{Map, Value, json};

use crate::error::{FieldError, pointer_join};
use crate::registry::{CAPABILITY_REF_PREFIX, CapabilityRegistry};
use crate::template::Template;

/// Key on an inline `allOf` section that ties it to a capability, so it is filtered with it.
pub const SECTION_CAPABILITY_KEY: &str = "x-capability";

/// Resolves `capability:<id>` references from the registry; refuses everything else, so a
/// schema can never make the server fetch a URL.
struct CapabilityRetriever(CapabilityRegistry);

impl Retrieve for CapabilityRetriever {
    fn retrieve(
        &self,
        uri: &Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        match self.0.schema_for_uri(uri.as_str()) {
            Some(schema) => Ok(schema.clone()),
            None => Err(format!("`{}` is not a known capability schema; only `capability:<id>` references are resolved, and only locally", uri.as_str()).into()),
        }
    }
}

/// Compiles a schema (2020-12), resolving `capability:*` references locally.
pub(crate) fn compile(registry: &CapabilityRegistry, schema: &Value) -> Result<Validator, String> {
    jsonschema::options()
        .with_draft(Draft::Draft202012)
        .should_validate_formats(true)
        .with_retriever(CapabilityRetriever(registry.clone()))
        .build(schema)
        .map_err(|e| e.to_string())
}

/// The capability an `allOf` item belongs to: the id of a `capability:<id>` reference, or the
/// `x-capability` of an inline section; `None` for inline sections that always apply.
pub(crate) fn item_capability(item: &Value) -> Option<&str> {
    if let Some(r) = item.get("$ref").and_then(Value::as_str) {
        return r.strip_prefix(CAPABILITY_REF_PREFIX).or(Some(r));
    }
    item.get(SECTION_CAPABILITY_KEY).and_then(Value::as_str)
}

/// The `allOf` items of a template's config schema.
pub(crate) fn all_of(template: &Template) -> &[Value] {
    template.config_schema.get("allOf").and_then(Value::as_array).map(Vec::as_slice).unwrap_or(&[])
}

/// Capabilities switched on for an agent: its enabled ones plus the universal ones.
fn effective(registry: &CapabilityRegistry, enabled: &[String]) -> BTreeSet<String> {
    let mut on: BTreeSet<String> = enabled.iter().cloned().collect();
    on.extend(registry.universal_ids());
    on
}

/// The template's config schema restricted to the enabled capabilities (universal ones always
/// included), as a standalone 2020-12 schema ready for a form renderer or the validator.
pub fn agent_config_schema(
    registry: &CapabilityRegistry,
    template: &Template,
    enabled: &[String],
) -> Value {
    let on = effective(registry, enabled);
    let kept: Vec<Value> = all_of(template)
        .iter()
        .filter(|item| item_capability(item).is_none_or(|c| on.contains(c)))
        .cloned()
        .collect();
    json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "allOf": kept,
    })
}

/// Same as [`agent_config_schema`] but with every `capability:*` reference replaced by the
/// capability's schema, for clients that cannot resolve custom references.
pub fn agent_config_schema_inlined(
    registry: &CapabilityRegistry,
    template: &Template,
    enabled: &[String],
) -> Value {
    let mut schema = agent_config_schema(registry, template, enabled);
    if let Some(items) = schema.get_mut("allOf").and_then(Value::as_array_mut) {
        for item in items {
            let inlined = item
                .get("$ref")
                .and_then(Value::as_str)
                .and_then(|r| registry.schema_for_uri(r))
                .cloned();
            if let Some(s) = inlined {
                *item = s;
            }
        }
    }
    schema
}

/// Form hints (react-jsonschema-form `ui_schema`) of the capabilities in the filtered schema,
/// merged into one object keyed by top-level property (names are unique across capabilities).
pub fn agent_config_ui_schema(
    registry: &CapabilityRegistry,
    template: &Template,
    enabled: &[String],
) -> Value {
    let on = effective(registry, enabled);
    let mut out = Map::new();
    for item in all_of(template) {
        let Some(cap) = item
            .get("$ref")
            .and_then(Value::as_str)
            .and_then(|r| r.strip_prefix(CAPABILITY_REF_PREFIX))
        else {
            continue;
        };
        let hints =
            registry.get(cap).filter(|_| on.contains(cap)).and_then(|c| c.ui_schema.as_object());
        for (k, v) in hints.into_iter().flatten() {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

/// Default values from the enabled capabilities' schemas (top-level `default`s), as the
/// starting config of a new agent; the template's `default_config` is laid over them.
pub fn default_agent_config(
    registry: &CapabilityRegistry,
    template: &Template,
    enabled: &[String],
) -> Value {
    let mut out = Map::new();
    let schema = agent_config_schema_inlined(registry, template, enabled);
    for item in schema.get("allOf").and_then(Value::as_array).into_iter().flatten() {
        for (name, prop) in item.get("properties").and_then(Value::as_object).into_iter().flatten()
        {
            if let Some(d) = prop.get("default") {
                out.insert(name.clone(), d.clone());
            }
        }
    }
    if let Some(defaults) = template.default_config.as_object() {
        for (k, v) in defaults {
            out.insert(k.clone(), v.clone());
        }
    }
    Value::Object(out)
}

/// Checks the capabilities an agent enables: each is known, offered by its template (or
/// universal), and has its dependencies enabled too. Errors point into the `enabled` list.
pub fn check_enabled_capabilities(
    registry: &CapabilityRegistry,
    template: &Template,
    enabled: &[String],
) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    let on = effective(registry, enabled);
    for (i, id) in enabled.iter().enumerate() {
        let path = pointer_join("/enabled_capabilities", i);
        let Some(cap) = registry.get(id) else {
            errors.push(FieldError::new(
                path,
                "unknown_capability",
                format!("`{id}` is not a known capability"),
            ));
            continue;
        };
        if !cap.universal && !template.capabilities.contains(id) {
            errors.push(FieldError::new(
                path.clone(),
                "capability_not_offered",
                format!("template `{}` does not offer capability `{id}`", template.slug),
            ));
        }
        for group in &cap.depends_on {
            if !group.iter().any(|d| on.contains(d)) {
                let names = group.iter().map(|d| format!("`{d}`")).collect::<Vec<_>>().join(" or ");
                errors.push(FieldError::new(
                    path.clone(),
                    "missing_dependency",
                    format!("capability `{id}` requires {names} to be enabled"),
                ));
            }
        }
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

/// Validates an agent's config against the template's schema filtered to `enabled`.
/// Top-level properties must belong to an enabled capability (or an always-on inline
/// section); errors carry JSON pointers into `config`.
pub fn validate_agent_config(
    registry: &CapabilityRegistry,
    template: &Template,
    enabled: &[String],
    config: &Value,
) -> Result<(), Vec<FieldError>> {
    check_enabled_capabilities(registry, template, enabled)?;
    let Some(object) = config.as_object() else {
        return Err(vec![FieldError::new("", "type", "configuration must be a JSON object")]);
    };
    let mut errors = Vec::new();
    let on = effective(registry, enabled);
    let owners = property_owners(registry, template);
    for key in object.keys() {
        let path = pointer_join("", key);
        match owners.iter().find(|(p, _)| p == key) {
            None => errors.push(FieldError::new(
                path,
                "unknown_property",
                format!("`{key}` is not a configuration setting of this template"),
            )),
            Some((_, Some(cap))) if !on.contains(cap) => errors.push(FieldError::new(
                path,
                "capability_disabled",
                format!("`{key}` belongs to capability `{cap}`, which is not enabled"),
            )),
            Some(_) => {}
        }
    }
    let schema = agent_config_schema(registry, template, enabled);
    match compile(registry, &schema) {
        Ok(validator) => errors.extend(validator.iter_errors(config).map(|e| {
            let mut path = e.instance_path().as_str().to_owned();
            if let ValidationErrorKind::Required { property } = e.kind() {
                path = pointer_join(&path, property.as_str().unwrap_or_default());
            }
            FieldError::new(path, e.kind().keyword(), e.to_string())
        })),
        Err(e) => errors.push(FieldError::new(
            "",
            "schema",
            format!("template config schema does not compile: {e}"),
        )),
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

/// Drops top-level config properties owned by capabilities that are not enabled (kept data from
/// a capability the user switched off) and properties no schema knows.
pub fn strip_disabled(
    registry: &CapabilityRegistry,
    template: &Template,
    enabled: &[String],
    config: &Value,
) -> Value {
    let on = effective(registry, enabled);
    let owners = property_owners(registry, template);
    let Some(object) = config.as_object() else { return config.clone() };
    let kept = object
        .iter()
        .filter(|(k, _)| {
            owners.iter().any(|(p, cap)| p == *k && cap.as_ref().is_none_or(|c| on.contains(c)))
        })
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Value::Object(kept)
}

/// Every top-level property the template's config schema defines, with the capability owning
/// it (`None` for always-on inline sections).
pub(crate) fn property_owners(
    registry: &CapabilityRegistry,
    template: &Template,
) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    for item in all_of(template) {
        let cap = item_capability(item).map(str::to_owned);
        let props = match item.get("$ref").and_then(Value::as_str) {
            Some(r) => registry.schema_for_uri(r).and_then(|s| s.get("properties")),
            None => item.get("properties"),
        };
        for name in props.and_then(Value::as_object).into_iter().flat_map(|p| p.keys()) {
            out.push((name.clone(), cap.clone()));
        }
    }
    out
}
