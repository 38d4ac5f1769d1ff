//! Wizard answers that fill agent-configuration settings, declared in the template data: an
//! onboarding field's `maps_to` names a setting by JSON pointer (`"maps_to":
//! "/allowed_domains"`). Templates are checked at load so every pointer lands in the schema
//! of one of the template's capabilities; at completion the answers are written there, a
//! single answer becoming a one-item list where the setting is a list.

use serde_json::{Map, Value};

use crate::error::FieldError;
use crate::registry::CapabilityRegistry;
use crate::template::Template;

/// The schema of the setting at `pointer` (`/colors/primary`): a property of a capability's
/// schema (returned with the capability's id) or of the template's own inline settings (an
/// object schema in its `config_schema.allOf`, always on; returned with no id).
pub fn setting_schema<'a>(
    registry: &'a CapabilityRegistry,
    template: &'a Template,
    pointer: &str,
) -> Option<(Option<&'a str>, &'a Value)> {
    let segments: Vec<String> = pointer.strip_prefix('/')?.split('/').map(unescape).collect();
    let (first, rest) = segments.split_first()?;
    let (owner, top) = match registry.owner_of_property(first) {
        Some(c) => (Some(c.id.as_str()), c.schema.get("properties")?.get(first)?),
        None => {
            let inline = template.config_schema.get("allOf")?.as_array()?;
            let top = inline.iter().find_map(|s| s.get("properties")?.get(first))?;
            (None, top)
        }
    };
    let mut schema = top;
    for seg in rest {
        schema = schema.get("properties")?.get(seg)?;
    }
    Some((owner, schema))
}

fn unescape(seg: &str) -> String {
    seg.replace("~1", "/").replace("~0", "~")
}

/// Checks every `maps_to` of a template: a pointer to a setting of one of its capabilities.
pub(crate) fn check(template: &Template, registry: &CapabilityRegistry) -> Vec<FieldError> {
    let mut errors = Vec::new();
    for (s, step) in template.onboarding_schema.steps.iter().enumerate() {
        for (c, section) in step.sections.iter().enumerate() {
            for (f, field) in section.fields.iter().enumerate() {
                let Some(pointer) = &field.maps_to else { continue };
                let path = format!("/onboarding_schema/steps/{s}/sections/{c}/fields/{f}/maps_to");
                match setting_schema(registry, template, pointer) {
                    None => errors.push(FieldError::new(
                        path,
                        "unknown_setting",
                        format!("`{pointer}` is not a configuration setting of any capability"),
                    )),
                    Some((Some(owner), _))
                        if !template.capabilities.iter().any(|c| c == owner)
                            && !registry.get(owner).is_some_and(|c| c.universal) =>
                    {
                        errors.push(FieldError::new(
                            path,
                            "setting_not_in_template",
                            format!(
                                "`{pointer}` belongs to capability `{owner}`, which this template does not offer"
                            ),
                        ))
                    }
                    Some(_) => {}
                }
            }
        }
    }
    errors
}

/// Writes the answers of fields with `maps_to` into `config`, for settings of `enabled`
/// capabilities (or universal ones). Blank answers are skipped. Returns the pointers written.
pub fn apply(
    registry: &CapabilityRegistry,
    template: &Template,
    enabled: &[String],
    answers: &Map<String, Value>,
    config: &mut Value,
) -> Vec<String> {
    let mut written = Vec::new();
    for field in template.onboarding_schema.fields() {
        let Some(pointer) = &field.maps_to else { continue };
        let Some(answer) = answers.get(&field.name) else { continue };
        if answer.is_null() || answer.as_str().is_some_and(|s| s.trim().is_empty()) {
            continue;
        }
        let Some((owner, schema)) = setting_schema(registry, template, pointer) else { continue };
        let on = match owner {
            None => true,
            Some(id) => {
                registry.get(id).is_some_and(|c| c.universal) || enabled.iter().any(|e| e == id)
            }
        };
        if !on {
            continue;
        }
        let value = match (schema.get("type").and_then(Value::as_str), answer) {
            (Some("array"), Value::Array(_)) => answer.clone(),
            (Some("array"), single) => Value::Array(vec![single.clone()]),
            _ => answer.clone(),
        };
        if set(config, pointer, value) {
            written.push(pointer.clone());
        }
    }
    written
}

/// Sets `value` at `pointer`, creating objects on the way; false if a non-object is in the way.
fn set(target: &mut Value, pointer: &str, value: Value) -> bool {
    let segments: Vec<String> = pointer.trim_start_matches('/').split('/').map(unescape).collect();
    let Some((last, parents)) = segments.split_last() else { return false };
    let mut node = target;
    for seg in parents {
        let Some(obj) = node.as_object_mut() else { return false };
        node = obj.entry(seg.clone()).or_insert_with(|| Value::Object(Map::new()));
    }
    match node.as_object_mut() {
        Some(obj) => {
            obj.insert(last.clone(), value);
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn set_creates_parents_and_refuses_to_write_through_scalars() {
        let mut v = json!({"colors": {"secondary": "#000000"}, "n": 1});
        assert!(set(&mut v, "/colors/primary", json!("#ffffff")));
        assert!(set(&mut v, "/a/b", json!(2)));
        assert!(!set(&mut v, "/n/x", json!(3)));
        assert_eq!(
            v,
            json!({"colors": {"secondary": "#000000", "primary": "#ffffff"}, "n": 1, "a": {"b": 2}})
        );
    }

    #[test]
    fn settings_are_found_through_their_capability_or_the_template() {
        let catalog = crate::Catalog::builtin().unwrap();
        let registry = catalog.registry();
        let topic = catalog.template("topic-assistant").unwrap();
        let (owner, schema) = setting_schema(registry, topic, "/allowed_domains").unwrap();
        assert_eq!((owner, schema["type"].as_str()), (Some("widget"), Some("array")));
        assert_eq!(setting_schema(registry, topic, "/colors/primary").unwrap().0, Some("branding"));
        let (owner, schema) = setting_schema(registry, topic, "/system_prompt").unwrap();
        assert_eq!((owner, schema["type"].as_str()), (None, Some("string")));
        assert!(setting_schema(registry, topic, "/no_such_setting").is_none());
        assert!(
            setting_schema(registry, topic, "allowed_domains").is_none(),
            "pointers start with /"
        );
    }
}
