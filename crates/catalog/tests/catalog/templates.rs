//! The seeded templates: all present, well-formed, and consistent with the seeds.

use catalog::PlanTier;

use crate::catalog;

#[test]
fn all_eleven_seeded_templates_load() {
    let slugs: Vec<&str> = catalog().templates().iter().map(|t| t.slug.as_str()).collect();
    assert_eq!(
        slugs,
        [
            "executive-assistant",
            "sales-assistant",
            "legal-assistant",
            "research-assistant",
            "support-assistant",
            "customer-support-agent",
            "research-agent",
            "topic-assistant",
            "code-assistant",
            "knowledge-assistant",
            "generic-chat",
        ]
    );
    for t in catalog().templates() {
        assert!(t.is_system && t.is_active, "{}", t.slug);
        assert!(t.onboarding_schema.steps.len() >= 2, "{} needs several steps", t.slug);
        let conditional = t
            .onboarding_schema
            .fields()
            .filter(|f| f.show_if.is_some() || f.hide_if.is_some() || f.required_if.is_some())
            .count();
        assert!(conditional >= 1, "{} has no conditional field", t.slug);
        assert!(!t.example_prompts.is_empty(), "{}", t.slug);
        // Re-validating the parsed template passes (the config schema compiles, the prompt checks).
        t.validate(catalog().registry()).unwrap();
    }
}

#[test]
fn persona_templates_match_appendix_a() {
    let expect = [
        (
            "executive-assistant",
            "productivity",
            vec!["send_emails", "manage_calendar", "search_documents"],
            vec!["gmail", "google-calendar", "google-drive"],
        ),
        (
            "sales-assistant",
            "sales",
            vec!["send_emails", "manage_calendar", "research_web"],
            vec!["gmail", "google-calendar", "salesforce"],
        ),
        (
            "legal-assistant",
            "legal",
            vec!["review_documents", "search_documents", "send_emails"],
            vec!["gmail", "google-drive"],
        ),
        (
            "research-assistant",
            "research",
            vec!["research_web", "summarize_content", "create_documents"],
            vec!["google-drive", "notion"],
        ),
        (
            "support-assistant",
            "support",
            vec!["send_emails", "search_documents", "summarize_content"],
            vec!["gmail", "zendesk", "intercom"],
        ),
    ];
    for (slug, category, defaults, integrations) in expect {
        let t = catalog().template(slug).unwrap();
        assert_eq!(t.category, category);
        assert_eq!(t.default_capabilities, defaults, "{slug}");
        assert_eq!(t.suggested_integrations, integrations, "{slug}");
    }
    let legal = catalog().template("legal-assistant").unwrap().default_personality;
    assert_eq!((legal.creativity(), legal.verbosity(), legal.formality()), (0.2, 0.7, 0.8));
}

#[test]
fn offering_templates_match_the_capability_seed() {
    let t = |s: &str| catalog().template(s).unwrap();
    let support = t("customer-support-agent");
    assert_eq!(support.capabilities, ["rag", "widget", "api", "escalation"]);
    assert_eq!(support.default_capabilities, ["rag", "widget", "api"]);
    assert_eq!(
        (
            support.credit_cost("chat_message"),
            support.credit_cost("document_upload"),
            support.credit_cost("escalation")
        ),
        (2, 5, 0)
    );
    assert_eq!(support.credit_cost("something_unlisted"), 1, "the seed's default cost");
    assert_eq!(t("research-agent").capabilities, ["web_search", "api", "file_upload"]);
    assert_eq!(t("research-agent").credit_cost("web_search"), 2);
    assert_eq!(t("topic-assistant").capabilities, ["api"]);
    assert_eq!(t("code-assistant").capabilities, ["api", "code_exec"]);
    assert_eq!(t("code-assistant").required_plan, PlanTier::Pro);
    assert!(t("knowledge-assistant").onboarding_schema.knowledge_base.required);
    assert!(!t("generic-chat").capabilities.contains(&"rag".to_string()));
}

#[test]
fn the_seeded_wizards_use_all_twenty_field_types() {
    use catalog::onboarding::FieldType;
    let used: std::collections::BTreeSet<String> = catalog()
        .templates()
        .iter()
        .flat_map(|t| {
            t.onboarding_schema.fields().map(|f| format!("{:?}", f.kind)).collect::<Vec<_>>()
        })
        .collect();
    for t in FieldType::ALL {
        assert!(used.contains(&format!("{t:?}")), "{t:?} is used by no seeded template");
    }
}
