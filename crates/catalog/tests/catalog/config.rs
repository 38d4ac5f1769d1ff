//! Agent configuration: capability subsets, dependencies, and config JSON validated against
//! the template's composed schema with errors at JSON pointers.

use catalog::{
    agent_config_schema, agent_config_schema_inlined, check_enabled_capabilities,
    default_agent_config, strip_disabled, validate_agent_config,
};
use serde_json::{Value, json};

use crate::{catalog, codes_at};

fn caps(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

fn support() -> &'static catalog::Template {
    catalog().template("customer-support-agent").unwrap()
}

fn valid_support_config() -> Value {
    json!({
        "agent_name": "Acme Help",
        "tone": "friendly",
        "sources": [{"type": "url", "url": "https://docs.acme.example", "crawl_depth": 2}],
        "position": "bottom-left",
        "theme": "dark",
        "allowed_domains": ["acme.example", "www.acme.example"],
        "rate_limit": {"requests_per_minute": 30},
        "handoff_config": {"method": "email", "email": "help@acme.example"}
    })
}

#[test]
fn enabled_capabilities_must_be_offered_by_the_template() {
    let reg = catalog().registry();
    let errs = check_enabled_capabilities(reg, support(), &caps(&["rag", "send_emails", "warp"]))
        .unwrap_err();
    assert_eq!(codes_at(&errs, "/enabled_capabilities/1"), ["capability_not_offered"]);
    assert_eq!(codes_at(&errs, "/enabled_capabilities/2"), ["unknown_capability"]);
    // Universal capabilities are always allowed.
    assert!(check_enabled_capabilities(reg, support(), &caps(&["rag", "branding"])).is_ok());
}

#[test]
fn a_capability_needs_its_dependencies_enabled() {
    let reg = catalog().registry();
    let errs =
        check_enabled_capabilities(reg, support(), &caps(&["widget", "escalation"])).unwrap_err();
    assert_eq!(errs.len(), 1);
    assert_eq!(errs[0].path, "/enabled_capabilities/0");
    assert_eq!(errs[0].code, "missing_dependency");
    assert!(errs[0].message.contains("`rag` or `api`"), "{}", errs[0].message);
    assert!(check_enabled_capabilities(reg, support(), &caps(&["widget", "api"])).is_ok());
    assert!(check_enabled_capabilities(reg, support(), &caps(&["rag", "widget"])).is_ok());
}

#[test]
fn a_valid_config_passes_and_the_filtered_schema_keeps_only_enabled_capabilities() {
    let reg = catalog().registry();
    let enabled = caps(&["rag", "widget", "api", "escalation"]);
    validate_agent_config(reg, support(), &enabled, &valid_support_config()).unwrap();
    let schema = agent_config_schema(reg, support(), &caps(&["api"]));
    let refs: Vec<&str> =
        schema["allOf"].as_array().unwrap().iter().map(|i| i["$ref"].as_str().unwrap()).collect();
    assert_eq!(refs, ["capability:branding", "capability:behavior", "capability:api"]);
    let inlined = agent_config_schema_inlined(reg, support(), &caps(&["api"]));
    assert!(inlined["allOf"][2]["properties"]["rate_limit"].is_object());
    assert!(inlined.to_string().find("capability:").is_none());
}

#[test]
fn schema_violations_come_back_at_json_pointer_paths() {
    let reg = catalog().registry();
    let enabled = caps(&["rag", "widget", "api", "escalation"]);
    let mut config = valid_support_config();
    config["chunk_size"] = json!(100);
    config["allowed_domains"] = json!(["acme.example", "not a domain"]);
    config["trigger"] = json!({"delay_seconds": 90});
    config["colors"] = json!({"primary": "blue"});
    config["sources"] = json!([{"type": "url", "url": "https://x.example", "crawl_depth": 9}]);
    config.as_object_mut().unwrap().remove("theme");
    let errs = validate_agent_config(reg, support(), &enabled, &config).unwrap_err();
    assert_eq!(codes_at(&errs, "/chunk_size"), ["minimum"]);
    assert_eq!(codes_at(&errs, "/allowed_domains/1"), ["pattern"]);
    assert_eq!(codes_at(&errs, "/trigger/delay_seconds"), ["maximum"]);
    assert_eq!(codes_at(&errs, "/colors/primary"), ["pattern"]);
    assert_eq!(codes_at(&errs, "/theme"), ["required"]);
    assert!(errs.iter().any(|e| e.path.starts_with("/sources/0")), "{errs:?}");
}

#[test]
fn escalation_requires_a_handoff_target_for_its_method() {
    let reg = catalog().registry();
    let enabled = caps(&["rag", "api", "escalation"]);
    let base = json!({"agent_name": "Acme"});
    let errs = validate_agent_config(reg, support(), &enabled, &base).unwrap_err();
    assert_eq!(codes_at(&errs, "/handoff_config"), ["required"]);
    for (method, target, value) in [
        ("webhook", "webhook_url", json!("https://hooks.acme.example/handoff")),
        ("email", "email", json!("team@acme.example")),
        ("zendesk", "zendesk_subdomain", json!("acme")),
        ("freshdesk", "freshdesk_domain", json!("acme.freshdesk.com")),
        ("intercom", "intercom_app_id", json!("abc123")),
    ] {
        let mut c = base.clone();
        c["handoff_config"] = json!({ "method": method });
        let errs = validate_agent_config(reg, support(), &enabled, &c).unwrap_err();
        assert_eq!(
            codes_at(&errs, &format!("/handoff_config/{target}")),
            ["required"],
            "{method}: {errs:?}"
        );
        c["handoff_config"][target] = value;
        validate_agent_config(reg, support(), &enabled, &c)
            .unwrap_or_else(|e| panic!("{method}: {e:?}"));
    }
    let mut bad_email = base.clone();
    bad_email["handoff_config"] = json!({"method": "email", "email": "not-an-email"});
    let errs = validate_agent_config(reg, support(), &enabled, &bad_email).unwrap_err();
    assert_eq!(codes_at(&errs, "/handoff_config/email"), ["format"]);
}

#[test]
fn settings_of_disabled_capabilities_and_unknown_settings_are_refused() {
    let reg = catalog().registry();
    let enabled = caps(&["rag", "api"]);
    let config = json!({"agent_name": "Acme", "allowed_domains": ["acme.example"], "favourite_colour": "teal"});
    let errs = validate_agent_config(reg, support(), &enabled, &config).unwrap_err();
    assert_eq!(codes_at(&errs, "/allowed_domains"), ["capability_disabled"]);
    assert!(errs.iter().any(|e| e.message.contains("`widget`")));
    assert_eq!(codes_at(&errs, "/favourite_colour"), ["unknown_property"]);
    let stripped = strip_disabled(reg, support(), &enabled, &config);
    assert_eq!(stripped, json!({"agent_name": "Acme"}));
    validate_agent_config(reg, support(), &enabled, &stripped).unwrap();
    let errs = validate_agent_config(reg, support(), &enabled, &json!([1])).unwrap_err();
    assert_eq!(codes_at(&errs, ""), ["type"]);
}

#[test]
fn inline_sections_tagged_with_a_capability_follow_it_and_untagged_ones_always_apply() {
    let reg = catalog().registry();
    let research = catalog().template("research-agent").unwrap();
    // output_format is an always-on inline section; search_sources belongs to web_search.
    let config = json!({"output_format": "report", "search_sources": ["arxiv"]});
    validate_agent_config(reg, research, &caps(&["web_search", "api"]), &config).unwrap();
    let errs = validate_agent_config(reg, research, &caps(&["api"]), &config).unwrap_err();
    assert_eq!(codes_at(&errs, "/search_sources"), ["capability_disabled"]);
    let errs =
        validate_agent_config(reg, research, &caps(&["api"]), &json!({"output_format": "poem"}))
            .unwrap_err();
    assert_eq!(codes_at(&errs, "/output_format"), ["enum"]);
    let topic = catalog().template("topic-assistant").unwrap();
    let errs =
        validate_agent_config(reg, topic, &caps(&["api"]), &json!({"role": "Python Expert"}))
            .unwrap_err();
    assert_eq!(codes_at(&errs, "/system_prompt"), ["required"]);
}

#[test]
fn default_config_collects_schema_defaults_and_the_templates_overrides() {
    let reg = catalog().registry();
    let d = default_agent_config(reg, support(), &caps(&["rag", "widget", "api"]));
    assert_eq!(d["tone"], "friendly", "template default_config wins");
    assert_eq!(d["chunk_size"], 512);
    assert_eq!(d["position"], "bottom-right");
    assert!(d.get("handoff_config").is_none(), "escalation is not enabled");
    // The seed makes allowed_domains required with no default: a fresh widget config is incomplete.
    let errs =
        validate_agent_config(reg, support(), &caps(&["rag", "widget", "api"]), &d).unwrap_err();
    assert_eq!(codes_at(&errs, "/allowed_domains"), ["required"]);
}

#[test]
fn every_templates_full_config_schema_compiles_and_accepts_its_defaults() {
    let reg = catalog().registry();
    for t in catalog().templates() {
        // Defaults for the default capabilities validate, except where a capability has a
        // required setting without a default (widget's allowed_domains, escalation's target).
        let d = default_agent_config(reg, t, &t.default_capabilities);
        let result = validate_agent_config(reg, t, &t.default_capabilities, &d);
        if let Err(errs) = result {
            for e in &errs {
                assert!(
                    ["/allowed_domains", "/handoff_config", "/role", "/system_prompt"]
                        .contains(&e.path.as_str())
                        && e.code == "required",
                    "{}: {e:?}",
                    t.slug
                );
            }
        }
    }
}

#[test]
fn ui_hints_follow_the_enabled_capabilities() {
    let reg = catalog().registry();
    let ui = catalog::agent_config_ui_schema(reg, support(), &caps(&["rag", "api"]));
    assert_eq!(ui["sources"]["ui:widget"], "DocumentSourcesWidget");
    assert_eq!(ui["keys"]["ui:widget"], "ApiKeysWidget");
    assert_eq!(
        ui["welcome_message"]["ui:widget"], "textarea",
        "universal branding hints are always there"
    );
    assert!(ui.get("allowed_domains").is_none(), "widget is not enabled");
}
