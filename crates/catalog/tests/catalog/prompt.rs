//! Strict, sandboxed prompt rendering: errors are reported, never half-rendered.

use catalog::onboarding::OnboardingSchema;
use catalog::prompt::check_prompt_template;
use catalog::{
    AgentFields, Behavior, CatalogError, Personality, PromptContext, compose_system_prompt,
    render_prompt,
};
use serde_json::json;

use crate::answers;

fn schema() -> OnboardingSchema {
    OnboardingSchema::parse(&json!({"steps": [{"id": "s", "title": "S", "sections": [{"id": "x", "title": "X", "fields": [
        {"name": "company", "type": "text", "label": "Company", "required": true},
        {"name": "motto", "type": "text", "label": "Motto"}
    ]}]}]}))
    .unwrap()
}

fn ctx() -> PromptContext {
    PromptContext {
        agent: AgentFields {
            name: "Alex".into(),
            role: "Support Agent".into(),
            tagline: None,
            description: None,
        },
        answers: answers(json!({"company": "Acme"})),
        capabilities: vec!["rag".into()],
    }
}

fn code(r: Result<String, CatalogError>) -> &'static str {
    match r {
        Err(CatalogError::Prompt { code, .. }) => code,
        other => panic!("expected a prompt error, got {other:?}"),
    }
}

#[test]
fn renders_answers_agent_fields_and_capabilities() {
    let out = render_prompt(
        "You are {{ agent.name }}, {{ agent.role }} at {{ company }}.{% if motto %} Motto: {{ motto }}{% endif %}{% if 'rag' in capabilities %} Cite documents.{% endif %}",
        &schema(),
        &ctx(),
    )
    .unwrap();
    assert_eq!(out, "You are Alex, Support Agent at Acme. Cite documents.");
}

#[test]
fn undefined_variables_are_errors() {
    assert_eq!(code(render_prompt("Hello {{ compnay }}", &schema(), &ctx())), "undefined");
    assert_eq!(code(render_prompt("Hello {{ agent.nickname }}", &schema(), &ctx())), "undefined");
    let errs = check_prompt_template(
        "Hi {{ compnay }} {{ company }}",
        &schema(),
        "/system_prompt_template",
    )
    .unwrap_err();
    assert_eq!(errs.len(), 1);
    assert_eq!(
        (errs[0].path.as_str(), errs[0].code.as_str()),
        ("/system_prompt_template", "unknown_variable")
    );
    assert!(errs[0].message.contains("compnay"));
}

#[test]
fn printing_an_unanswered_field_is_an_error_not_a_blank() {
    let r = render_prompt("Motto: {{ motto }}", &schema(), &ctx());
    match r {
        Err(CatalogError::Prompt { code, message, .. }) => {
            assert_eq!(code, "render");
            assert!(message.contains("not answered"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn syntax_errors_are_reported_with_their_line() {
    match render_prompt("line one\n{% if company %}unclosed", &schema(), &ctx()) {
        Err(CatalogError::Prompt { code: "syntax", line, .. }) => assert_eq!(line, Some(2)),
        other => panic!("{other:?}"),
    }
    let errs = check_prompt_template("{{ company ", &schema(), "/p").unwrap_err();
    assert_eq!(errs[0].code, "syntax");
}

#[test]
fn runaway_templates_run_out_of_fuel() {
    let src = "{% for i in range(100000) %}{{ company }}{% endfor %}";
    assert_eq!(code(render_prompt(src, &schema(), &ctx())), "out_of_fuel");
}

#[test]
fn the_sandbox_has_no_file_access_or_includes() {
    assert!(render_prompt("{% include '/etc/passwd' %}", &schema(), &ctx()).is_err());
}

#[test]
fn the_full_prompt_appends_personality_and_behaviour() {
    let full = compose_system_prompt(
        "You are Alex.",
        &Personality::new(0.2, 0.5, 0.9).unwrap(),
        &Behavior::default(),
    );
    assert_eq!(
        full,
        "You are Alex.\n\nUse professional, formal language. Address the user respectfully. Stick to proven approaches and standard procedures.\n\nKeep a professional tone. Always reply in English."
    );
}

#[test]
fn a_template_renders_its_full_system_prompt() {
    let t = crate::catalog().template("generic-chat").unwrap();
    let ctx = PromptContext {
        agent: AgentFields {
            name: "Buddy".into(),
            role: "Assistant".into(),
            tagline: None,
            description: None,
        },
        answers: answers(
            json!({"agent_name": "Buddy", "conversation_style": "balanced", "allow_small_talk": true}),
        ),
        capabilities: vec!["api".into()],
    };
    let full = t
        .render_system_prompt(
            &ctx,
            &t.default_personality,
            &Behavior::from_config(&json!({"language": "fr"})),
        )
        .unwrap();
    assert!(full.starts_with("You are Buddy, a helpful assistant."), "{full}");
    assert!(full.ends_with("Always reply in French."), "{full}");
    // A missing required answer is an error, not a prompt with a hole in it.
    let mut bad = ctx.clone();
    bad.answers.remove("conversation_style");
    assert!(t.render_system_prompt(&bad, &t.default_personality, &Behavior::default()).is_err());
}
