use std::collections::BTreeSet;

use catalog::{Capability, CapabilityRegistry, CatalogError};
use serde_json::json;

use crate::catalog;

fn connected(ids: &[&str]) -> BTreeSet<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

#[test]
fn registry_ships_both_seeds_vocabularies() {
    let reg = catalog().registry();
    for id in [
        "rag",
        "widget",
        "api",
        "escalation",
        "web_search",
        "image_gen",
        "voice",
        "file_upload",
        "code_exec",
        "branding",
        "behavior",
        "send_emails",
        "manage_calendar",
        "search_documents",
        "review_documents",
        "send_slack",
        "create_documents",
        "summarize_content",
        "research_web",
    ] {
        let cap = reg.get(id).unwrap_or_else(|| panic!("{id} missing"));
        assert!(!cap.label.is_empty() && !cap.icon.is_empty() && !cap.category.is_empty(), "{id}");
    }
    assert_eq!(reg.all().count(), 19);
    assert_eq!(reg.universal_ids(), vec!["behavior".to_string(), "branding".to_string()]);
}

#[test]
fn first_connected_integration_wins_in_registry_order() {
    let reg = catalog().registry();
    // Both connected: gmail is listed first, so it wins whatever order the set has.
    let a = reg.availability("send_emails", &connected(&["outlook", "gmail"])).unwrap();
    assert!(a.is_available);
    assert_eq!(a.connected_via.as_deref(), Some("gmail"));
    assert!(a.skills.contains(&"gmail:send".to_string()));
    assert!(a.requires.is_empty());
    // Only the alternative connected.
    let b = reg.availability("send_emails", &connected(&["outlook"])).unwrap();
    assert_eq!(b.connected_via.as_deref(), Some("outlook"));
    assert_eq!(b.skills, vec!["outlook:send", "outlook:read", "outlook:draft"]);
}

#[test]
fn builtin_fallback_applies_when_no_integration_is_connected() {
    let reg = catalog().registry();
    let a = reg.availability("create_documents", &connected(&[])).unwrap();
    assert!(a.is_available);
    assert_eq!(a.connected_via, None);
    assert_eq!(a.skills, vec!["document-gen:generate"]);
    // ... but a connected integration still beats the fallback.
    let b = reg.availability("create_documents", &connected(&["notion"])).unwrap();
    assert_eq!(b.connected_via.as_deref(), Some("notion"));
    assert_eq!(b.skills, vec!["notion:create_page", "notion:update_page"]);
    let c = reg.availability("review_documents", &connected(&["gmail"])).unwrap();
    assert_eq!(c.skills, vec!["document-parser:extract", "document-analysis:analyze"]);
}

#[test]
fn unavailable_capability_lists_what_it_requires() {
    let reg = catalog().registry();
    let a = reg.availability("manage_calendar", &connected(&["gmail", "slack"])).unwrap();
    assert!(!a.is_available);
    assert_eq!(a.connected_via, None);
    assert!(a.skills.is_empty());
    assert_eq!(a.requires, vec!["google-calendar", "outlook-calendar"]);
    let s = reg.availability("send_slack", &connected(&[])).unwrap();
    assert_eq!(s.requires, vec!["slack"]);
    assert!(matches!(
        reg.availability("teleport", &connected(&[])),
        Err(CatalogError::UnknownCapability(_))
    ));
}

#[test]
fn skills_resolve_deduplicated_and_skip_unavailable_capabilities() {
    let reg = catalog().registry();
    let caps: Vec<String> = ["send_emails", "research_web", "send_slack", "research_web"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    let skills = reg.resolve_skills(&caps, &connected(&["gmail"])).unwrap();
    assert_eq!(
        skills,
        vec![
            "gmail:send",
            "gmail:read",
            "gmail:draft",
            "gmail:search",
            "web-search:search",
            "web-fetch:fetch"
        ]
    );
}

fn minimal(id: &str, depends_on: serde_json::Value, prop: &str) -> Capability {
    serde_json::from_value(json!({
        "id": id, "label": id, "description": id, "icon": "x", "category": "test",
        "schema": {"type": "object", "properties": {prop: {"type": "string"}}},
        "depends_on": depends_on, "fallback": []
    }))
    .unwrap()
}

#[test]
fn registry_rejects_dependency_cycles_unknown_dependencies_and_shared_properties() {
    let cycle = CapabilityRegistry::from_capabilities(vec![
        minimal("a", json!([["b"]]), "pa"),
        minimal("b", json!([["c", "x"]]), "pb"),
        minimal("c", json!([["a"]]), "pc"),
        minimal("x", json!([]), "px"),
    ]);
    let err = cycle.unwrap_err().to_string();
    assert!(err.contains("dependency cycle") && err.contains("a → b → c → a"), "{err}");

    let unknown =
        CapabilityRegistry::from_capabilities(vec![minimal("a", json!([["ghost"]]), "pa")]);
    assert!(unknown.unwrap_err().to_string().contains("unknown capability `ghost`"));

    let shared = CapabilityRegistry::from_capabilities(vec![
        minimal("a", json!([]), "p"),
        minimal("b", json!([]), "p"),
    ]);
    assert!(shared.unwrap_err().to_string().contains("property `p`"));
}

#[test]
fn registry_rejects_a_schema_that_does_not_compile_or_refers_outside() {
    let mut bad = minimal("a", json!([]), "pa");
    bad.schema = json!({"type": "object", "properties": {"pa": {"type": "strin"}}});
    assert!(
        CapabilityRegistry::from_capabilities(vec![bad])
            .unwrap_err()
            .to_string()
            .contains("does not compile")
    );
    let mut remote = minimal("a", json!([]), "pa");
    remote.schema = json!({"type": "object", "properties": {"pa": {"$ref": "https://example.com/schema.json"}}});
    let err = CapabilityRegistry::from_capabilities(vec![remote]).unwrap_err().to_string();
    assert!(err.contains("does not compile"), "{err}");
}

#[test]
fn every_shipped_capability_is_reachable_from_a_template() {
    let used: BTreeSet<&str> = catalog()
        .templates()
        .iter()
        .flat_map(|t| t.capabilities.iter().map(String::as_str))
        .collect();
    for cap in catalog().registry().all().filter(|c| !c.universal) {
        assert!(used.contains(cap.id.as_str()), "{} is offered by no template", cap.id);
    }
}
