//! Bad onboarding schemas and bad template documents are refused with JSON-pointer paths.

use catalog::onboarding::OnboardingSchema;
use serde_json::{Value, json};

use crate::{catalog, codes_at};

fn one_step(fields: Value) -> Value {
    json!({"steps": [{"id": "s", "title": "S", "sections": [{"id": "x", "title": "X", "fields": fields}]}]})
}

#[test]
fn onboarding_schema_mistakes_are_located() {
    let errs = OnboardingSchema::parse(&one_step(json!([
        {"name": "mode", "type": "select", "label": "Mode"},
        {"name": "mode", "type": "text", "label": "Again"},
        {"name": "Bad Name", "type": "text", "label": "Bad"},
        {"name": "agent", "type": "text", "label": "Reserved"},
        {"name": "n", "type": "number", "label": "N", "validation": {"min": 5, "max": 1}},
        {"name": "p", "type": "text", "label": "P", "validation": {"pattern": "("}},
        {"name": "c", "type": "text", "label": "C", "show_if": {"ghost": "x"}},
        {"name": "d", "type": "radio", "label": "D", "options": ["a"], "default": "b"},
        {"name": "o", "type": "oauth_connect", "label": "O"},
        {"name": "e", "type": "text", "label": "E", "show_if": {"d": "z"}},
        {"name": "cb", "type": "checkbox", "label": "CB"},
        {"name": "g", "type": "text", "label": "G", "show_if": {"cb": "true"}}
    ])))
    .unwrap_err();
    assert_eq!(codes_at(&errs, "/steps/0/sections/0/fields/0/options"), ["required"]);
    assert_eq!(codes_at(&errs, "/steps/0/sections/0/fields/1/name"), ["duplicate"]);
    assert_eq!(codes_at(&errs, "/steps/0/sections/0/fields/2/name"), ["invalid_name"]);
    assert_eq!(codes_at(&errs, "/steps/0/sections/0/fields/3/name"), ["reserved_name"]);
    assert_eq!(codes_at(&errs, "/steps/0/sections/0/fields/4/validation"), ["inconsistent"]);
    assert_eq!(
        codes_at(&errs, "/steps/0/sections/0/fields/5/validation/pattern"),
        ["invalid_pattern"]
    );
    assert_eq!(codes_at(&errs, "/steps/0/sections/0/fields/6/show_if/ghost"), ["unknown_field"]);
    assert_eq!(codes_at(&errs, "/steps/0/sections/0/fields/7/default"), ["not_an_option"]);
    assert_eq!(codes_at(&errs, "/steps/0/sections/0/fields/8/providers"), ["required"]);
    assert_eq!(codes_at(&errs, "/steps/0/sections/0/fields/9/show_if/d"), ["not_an_option"]);
    assert_eq!(codes_at(&errs, "/steps/0/sections/0/fields/11/show_if/cb"), ["type_mismatch"]);
}

#[test]
fn unknown_types_and_keys_are_located_by_the_parser() {
    let errs =
        OnboardingSchema::parse(&one_step(json!([{"name": "a", "type": "slider", "label": "A"}])))
            .unwrap_err();
    assert_eq!(errs[0].path, "/steps/0/sections/0/fields/0/type");
    assert!(errs[0].message.contains("slider"));
    let errs = OnboardingSchema::parse(&one_step(
        json!([{"name": "a", "type": "text", "label": "A", "visible_if": {}}]),
    ))
    .unwrap_err();
    assert!(errs[0].path.starts_with("/steps/0/sections/0/fields/0"), "{errs:?}");
    assert!(errs[0].message.contains("visible_if"));
    let errs = OnboardingSchema::parse(&one_step(
        json!([{"name": "a", "type": "text", "label": "A", "show_if": {"b": {"gt": 1}}}]),
    ))
    .unwrap_err();
    assert!(errs[0].path.starts_with("/steps/0/sections/0/fields/0/show_if"), "{errs:?}");
}

#[test]
fn condition_cycles_are_refused() {
    let errs = OnboardingSchema::parse(&one_step(json!([
        {"name": "a", "type": "text", "label": "A", "show_if": {"b": "x"}},
        {"name": "b", "type": "text", "label": "B", "hide_if": {"a": null}}
    ])))
    .unwrap_err();
    assert_eq!(codes_at(&errs, "/steps"), ["condition_cycle"]);
}

fn template_doc() -> Value {
    serde_json::to_value(catalog().template("customer-support-agent").unwrap()).unwrap()
}

#[test]
fn a_seeded_template_round_trips_through_json() {
    let doc = template_doc();
    let again = catalog().parse_template(&doc).unwrap();
    assert_eq!(&again, catalog().template("customer-support-agent").unwrap());
}

#[test]
fn template_documents_are_checked_with_json_pointer_errors() {
    let mut doc = template_doc();
    doc["capabilities"] = json!(["rag", "widget", "hologram", "api"]);
    doc["default_capabilities"] = json!(["rag", "escalation"]);
    doc["system_prompt_template"] = json!("Hi {{ agent_name }} {% if %}");
    doc["onboarding_schema"]["steps"][0]["sections"][0]["fields"][0]["type"] = json!("text");
    doc["onboarding_schema"]["steps"][0]["sections"][0]["fields"][1]["show_if"] =
        json!({"nobody": 1});
    doc["config_schema"]["allOf"][5] = json!({"$ref": "https://evil.example/schema.json"});
    doc["config_schema"]["allOf"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "object", "properties": {"tone": {"type": "string"}}}));
    let errs = catalog().parse_template(&doc).unwrap_err();
    assert_eq!(codes_at(&errs, "/capabilities/2"), ["unknown_capability"]);
    assert_eq!(codes_at(&errs, "/default_capabilities/1"), ["not_in_capabilities"]);
    assert_eq!(
        codes_at(&errs, "/onboarding_schema/steps/0/sections/0/fields/1/show_if/nobody"),
        ["unknown_field"]
    );
    assert_eq!(codes_at(&errs, "/config_schema/allOf/5/$ref"), ["invalid_ref"]);
    assert_eq!(codes_at(&errs, "/config_schema/allOf/6/properties"), ["duplicate_property"]);
    // The prompt is only checked once the onboarding schema is sound.
    assert!(codes_at(&errs, "/system_prompt_template").is_empty());
}

#[test]
fn template_prompts_and_dependencies_are_checked() {
    let mut doc = template_doc();
    doc["system_prompt_template"] = json!("Hi {{ agent_name }} {% if %}");
    let errs = catalog().parse_template(&doc).unwrap_err();
    assert_eq!(codes_at(&errs, "/system_prompt_template"), ["syntax"]);
    doc["system_prompt_template"] = json!("Hi {{ agent_nmae }}");
    let errs = catalog().parse_template(&doc).unwrap_err();
    assert_eq!(codes_at(&errs, "/system_prompt_template"), ["unknown_variable"]);
    let mut doc = template_doc();
    doc["default_capabilities"] = json!(["widget"]);
    let errs = catalog().parse_template(&doc).unwrap_err();
    assert_eq!(codes_at(&errs, "/default_capabilities/0"), ["missing_dependency"]);
    let mut doc = template_doc();
    doc["slug"] = json!("Not A Slug");
    let errs = catalog().parse_template(&doc).unwrap_err();
    assert_eq!(errs[0].path, "/slug");
    let mut doc = template_doc();
    doc["credit_costs"] = json!({"chat_message": -1});
    let errs = catalog().parse_template(&doc).unwrap_err();
    assert_eq!(errs[0].path, "/credit_costs/chat_message");
    let mut doc = template_doc();
    doc["default_config"] = json!({"tone": "friendly", "warp_speed": 9});
    let errs = catalog().parse_template(&doc).unwrap_err();
    assert_eq!(codes_at(&errs, "/default_config/warp_speed"), ["unknown_property"]);
}
