//! The knowledge-base block: required, allowed modes, URL import, and its place in the wizard.

use catalog::onboarding::{OnboardingSchema, final_check, hydrate_step, validate_step};
use serde_json::{Value, json};

use crate::{answers, catalog, codes_at};

fn kb_schema(block: Value) -> OnboardingSchema {
    OnboardingSchema::parse(&json!({"knowledge_base": block, "steps": [
        {"id": "basics", "title": "Basics", "sections": [{"id": "x", "title": "X", "fields": [
            {"name": "agent_name", "type": "text", "label": "Name", "required": true}]}]},
        {"id": "knowledge", "title": "Knowledge", "knowledge_base": true, "required": block["required"] == json!(true), "sections": []}
    ]}))
    .unwrap_or_else(|e| panic!("{e:?}"))
}

const KB_ID: &str = "kb_0192f3a4b5c67d8e9f0a1b2c3d4e5f60";

#[test]
fn a_required_knowledge_base_must_be_chosen() {
    let s = kb_schema(
        json!({"enabled": true, "required": true, "allow_existing": true, "allow_create_new": true}),
    );
    for missing in
        [json!({}), json!({"knowledge_base": null}), json!({"knowledge_base": {"mode": "skip"}})]
    {
        let errs =
            validate_step(&s, "knowledge", &answers(missing), &Default::default()).unwrap_err();
        assert_eq!(codes_at(&errs, "/knowledge_base"), ["knowledge_base_required"]);
    }
    let errs = final_check(&s, &answers(json!({"agent_name": "Ada"}))).unwrap_err();
    assert_eq!(codes_at(&errs, "/knowledge_base"), ["knowledge_base_required"]);
    let ok = final_check(&s, &answers(json!({"agent_name": "Ada", "knowledge_base": {"mode": "existing", "knowledge_base_id": KB_ID}}))).unwrap();
    assert_eq!(ok["knowledge_base"]["mode"], "existing");
    assert!(final_check(&s, &answers(json!({"agent_name": "Ada", "knowledge_base": {"mode": "create_new", "name": "Handbook"}}))).is_ok());
}

#[test]
fn an_optional_knowledge_base_may_be_skipped() {
    let s = kb_schema(
        json!({"enabled": true, "recommended": true, "allow_existing": true, "allow_create_new": true}),
    );
    assert!(final_check(&s, &answers(json!({"agent_name": "Ada"}))).is_ok());
    let clean = validate_step(
        &s,
        "knowledge",
        &answers(json!({"knowledge_base": {"mode": "skip"}})),
        &Default::default(),
    )
    .unwrap();
    assert_eq!(clean["knowledge_base"], json!({"mode": "skip"}));
}

#[test]
fn modes_and_url_import_follow_the_block() {
    let s = kb_schema(
        json!({"enabled": true, "allow_existing": false, "allow_create_new": true, "allow_url_import": false}),
    );
    let v = |a: Value| {
        validate_step(
            &s,
            "knowledge",
            &answers(json!({ "knowledge_base": a })),
            &Default::default(),
        )
    };
    assert_eq!(
        codes_at(
            &v(json!({"mode": "existing", "knowledge_base_id": KB_ID})).unwrap_err(),
            "/knowledge_base/mode"
        ),
        ["not_allowed"]
    );
    assert_eq!(
        codes_at(
            &v(json!({"mode": "create_new", "name": "Docs", "urls": ["https://docs.example"]}))
                .unwrap_err(),
            "/knowledge_base/urls"
        ),
        ["not_allowed"]
    );
    assert_eq!(
        codes_at(
            &v(json!({"mode": "create_new", "name": "D"})).unwrap_err(),
            "/knowledge_base/name"
        ),
        ["length"]
    );
    assert!(v(json!({"mode": "create_new", "name": "Docs"})).is_ok());
    // Malformed choices are reported at the offending key.
    let errs = v(json!({"mode": "existing", "knowledge_base_id": "doc_123"})).unwrap_err();
    assert!(errs[0].path.starts_with("/knowledge_base"), "{errs:?}");
    assert!(v(json!({"mode": "teleport"})).is_err());

    let urls =
        kb_schema(json!({"enabled": true, "allow_create_new": true, "allow_url_import": true}));
    let errs = validate_step(&urls, "knowledge", &answers(json!({"knowledge_base": {"mode": "create_new", "name": "Docs", "urls": ["https://ok.example", "ftp://no"]}})), &Default::default()).unwrap_err();
    assert_eq!(codes_at(&errs, "/knowledge_base/urls/1"), ["invalid_url"]);
}

#[test]
fn the_block_is_consistent_with_the_steps() {
    let no_step = OnboardingSchema::parse(
        &json!({"knowledge_base": {"enabled": true, "allow_existing": true}, "steps": [
        {"id": "a", "title": "A", "sections": [{"id": "x", "title": "X", "fields": [{"name": "n", "type": "text", "label": "N"}]}]}]}),
    );
    assert_eq!(codes_at(&no_step.unwrap_err(), "/steps"), ["knowledge_base_step"]);
    let required_not_enabled = OnboardingSchema::parse(
        &json!({"knowledge_base": {"required": true}, "steps": [
        {"id": "a", "title": "A", "sections": [{"id": "x", "title": "X", "fields": [{"name": "n", "type": "text", "label": "N"}]}]}]}),
    );
    assert_eq!(
        codes_at(&required_not_enabled.unwrap_err(), "/knowledge_base/required"),
        ["inconsistent"]
    );
    let optional_step = OnboardingSchema::parse(
        &json!({"knowledge_base": {"enabled": true, "required": true, "allow_existing": true}, "steps": [
        {"id": "k", "title": "K", "knowledge_base": true, "required": false}]}),
    );
    assert_eq!(codes_at(&optional_step.unwrap_err(), "/steps/0/required"), ["inconsistent"]);
    let kb_on_disabled = OnboardingSchema::parse(
        &json!({"steps": [{"id": "k", "title": "K", "knowledge_base": true}]}),
    );
    assert_eq!(codes_at(&kb_on_disabled.unwrap_err(), "/steps/0/knowledge_base"), ["inconsistent"]);
}

#[test]
fn seeded_templates_follow_the_hub_seeds_knowledge_base_table() {
    let kb =
        |slug: &str| catalog().template(slug).unwrap().onboarding_schema.knowledge_base.clone();
    let support = kb("customer-support-agent");
    assert!(support.enabled && !support.required && support.recommended);
    let knowledge = kb("knowledge-assistant");
    assert!(knowledge.enabled && knowledge.required && knowledge.recommended);
    let sales = kb("sales-assistant");
    assert!(sales.enabled && !sales.required && !sales.recommended);
    let generic = kb("generic-chat");
    assert!(!generic.enabled && !generic.required && !generic.recommended);
    let t = catalog().template("knowledge-assistant").unwrap();
    let h = hydrate_step(&t.onboarding_schema, "knowledge", &Default::default()).unwrap();
    assert!(h.knowledge_base.as_ref().is_some_and(|k| k.block.required));
}
