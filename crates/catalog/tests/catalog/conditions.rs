//! `show_if`, `hide_if` and `required_if` with each operator: equals, in list, empty, not.

use catalog::onboarding::{OnboardingSchema, hydrate_step, validate_step, visible_fields};
use serde_json::{Value, json};

use crate::{answers, codes_at};

/// Step `s` with a select `mode` (a/b/c), a multi_select `tags`, an optional text `note`, and
/// a text `target` carrying `condition` under `key`.
fn schema(key: &str, condition: Value) -> OnboardingSchema {
    let mut target = json!({"name": "target", "type": "text", "label": "Target"});
    target[key] = condition;
    OnboardingSchema::parse(&json!({"steps": [{"id": "s", "title": "S", "sections": [{"id": "x", "title": "X", "fields": [
        {"name": "mode", "type": "select", "label": "Mode", "options": ["a", "b", "c"]},
        {"name": "tags", "type": "multi_select", "label": "Tags", "options": ["red", "blue"]},
        {"name": "note", "type": "text", "label": "Note"},
        target
    ]}]}]}))
    .unwrap_or_else(|e| panic!("{e:?}"))
}

fn visible(schema: &OnboardingSchema, a: Value) -> bool {
    visible_fields(schema, "s", &answers(a)).unwrap().iter().any(|f| f.name == "target")
}

/// Whether submitting without `target` reports it as required.
fn required(schema: &OnboardingSchema, a: Value) -> bool {
    match validate_step(schema, "s", &answers(a), &Default::default()) {
        Ok(_) => false,
        Err(e) => codes_at(&e, "/target") == ["required"],
    }
}

#[test]
fn show_if_equals() {
    let s = schema("show_if", json!({"mode": "a"}));
    assert!(visible(&s, json!({"mode": "a"})));
    assert!(!visible(&s, json!({"mode": "b"})));
    assert!(!visible(&s, json!({})));
    // A list answer "equals" a value when it contains it.
    let t = schema("show_if", json!({"tags": "red"}));
    assert!(visible(&t, json!({"tags": ["blue", "red"]})));
    assert!(!visible(&t, json!({"tags": ["blue"]})));
}

#[test]
fn show_if_in_list() {
    let s = schema("show_if", json!({"mode": ["a", "b"]}));
    assert!(visible(&s, json!({"mode": "b"})));
    assert!(!visible(&s, json!({"mode": "c"})));
    assert!(!visible(&s, json!({})));
}

#[test]
fn show_if_empty() {
    let s = schema("show_if", json!({"note": null}));
    assert!(visible(&s, json!({})));
    assert!(visible(&s, json!({"note": ""})));
    assert!(visible(&s, json!({"note": null})));
    assert!(!visible(&s, json!({"note": "hello"})));
    let t = schema("show_if", json!({"tags": null}));
    assert!(visible(&t, json!({"tags": []})));
    assert!(!visible(&t, json!({"tags": ["red"]})));
}

#[test]
fn show_if_not() {
    let s = schema("show_if", json!({"mode": {"not": "a"}}));
    assert!(!visible(&s, json!({"mode": "a"})));
    assert!(visible(&s, json!({"mode": "b"})));
    assert!(visible(&s, json!({})), "not-equals holds when unanswered");
    let filled = schema("show_if", json!({"note": {"not": null}}));
    assert!(visible(&filled, json!({"note": "x"})));
    assert!(!visible(&filled, json!({})));
    let not_in = schema("show_if", json!({"mode": {"not": ["a", "b"]}}));
    assert!(visible(&not_in, json!({"mode": "c"})));
    assert!(!visible(&not_in, json!({"mode": "a"})));
}

#[test]
fn hide_if_with_each_operator() {
    let eq = schema("hide_if", json!({"mode": "a"}));
    assert!(!visible(&eq, json!({"mode": "a"})));
    assert!(visible(&eq, json!({"mode": "b"})));
    let list = schema("hide_if", json!({"mode": ["a", "c"]}));
    assert!(!visible(&list, json!({"mode": "c"})));
    assert!(visible(&list, json!({"mode": "b"})));
    let empty = schema("hide_if", json!({"note": null}));
    assert!(!visible(&empty, json!({})));
    assert!(visible(&empty, json!({"note": "x"})));
    let not = schema("hide_if", json!({"mode": {"not": "a"}}));
    assert!(visible(&not, json!({"mode": "a"})));
    assert!(!visible(&not, json!({"mode": "b"})));
}

#[test]
fn required_if_with_each_operator() {
    let eq = schema("required_if", json!({"mode": "a"}));
    assert!(required(&eq, json!({"mode": "a"})));
    assert!(!required(&eq, json!({"mode": "b"})));
    let list = schema("required_if", json!({"mode": ["a", "b"]}));
    assert!(required(&list, json!({"mode": "b"})));
    assert!(!required(&list, json!({"mode": "c"})));
    let empty = schema("required_if", json!({"note": null}));
    assert!(required(&empty, json!({})));
    assert!(!required(&empty, json!({"note": "given"})));
    let not = schema("required_if", json!({"mode": {"not": "c"}}));
    assert!(required(&not, json!({"mode": "a"})));
    assert!(!required(&not, json!({"mode": "c"})));
    // Answering the field satisfies it.
    assert!(
        validate_step(
            &eq,
            "s",
            &answers(json!({"mode": "a", "target": "ok"})),
            &Default::default()
        )
        .is_ok()
    );
}

#[test]
fn hidden_fields_are_dropped_and_never_required() {
    let mut s = schema("show_if", json!({"mode": "a"}));
    s.steps[0].sections[0].fields[3].required = true;
    // Hidden: the (invalid-looking) value is dropped, and missing is fine.
    let clean =
        validate_step(&s, "s", &answers(json!({"mode": "b", "target": 42})), &Default::default())
            .unwrap();
    assert_eq!(clean.get("target"), None);
    assert_eq!(clean.get("mode"), Some(&json!("b")));
    assert!(validate_step(&s, "s", &answers(json!({"mode": "b"})), &Default::default()).is_ok());
    // Visible: required and validated.
    let errs =
        validate_step(&s, "s", &answers(json!({"mode": "a"})), &Default::default()).unwrap_err();
    assert_eq!(codes_at(&errs, "/target"), ["required"]);
    let errs =
        validate_step(&s, "s", &answers(json!({"mode": "a", "target": 42})), &Default::default())
            .unwrap_err();
    assert_eq!(codes_at(&errs, "/target"), ["type"]);
}

#[test]
fn conditions_read_other_steps_answers_and_hidden_fields_count_as_unanswered() {
    let schema = OnboardingSchema::parse(&json!({"steps": [
        {"id": "one", "title": "One", "sections": [{"id": "x", "title": "X", "fields": [
            {"name": "has_team", "type": "checkbox", "label": "Team?"},
            {"name": "team_size", "type": "number", "label": "Size", "show_if": {"has_team": true}}
        ]}]},
        {"id": "two", "title": "Two", "sections": [{"id": "y", "title": "Y", "fields": [
            {"name": "team_lead", "type": "email", "label": "Lead", "show_if": {"team_size": {"not": null}}, "required": true}
        ]}]}
    ]}))
    .unwrap();
    let prior = answers(json!({"has_team": true, "team_size": 4}));
    let errs = validate_step(&schema, "two", &answers(json!({})), &prior).unwrap_err();
    assert_eq!(codes_at(&errs, "/team_lead"), ["required"]);
    // team_size still has a stale value, but it is hidden (has_team false), so team_lead hides too.
    let prior = answers(json!({"has_team": false, "team_size": 4}));
    assert!(validate_step(&schema, "two", &answers(json!({})), &prior).is_ok());
    let hydrated = hydrate_step(&schema, "one", &prior).unwrap();
    let size = &hydrated.sections[0].fields[1];
    assert!(!size.visible);
}

#[test]
fn a_condition_on_another_fields_default_holds_in_the_view_the_step_and_the_final_check() {
    let schema = OnboardingSchema::parse(&json!({"steps": [{"id": "s", "title": "S", "sections": [{"id": "x", "title": "X", "fields": [
        {"name": "escalate", "type": "checkbox", "label": "Escalate", "default": true},
        {"name": "counsel", "type": "email", "label": "Counsel",
         "show_if": {"escalate": true}, "required_if": {"escalate": true}}
    ]}]}]}))
    .unwrap();
    // Nothing answered yet: the view shows the field required, as the default makes it.
    let view = hydrate_step(&schema, "s", &answers(json!({}))).unwrap();
    let counsel = &view.sections[0].fields[1];
    assert!(counsel.visible && counsel.is_required, "{counsel:?}");
    assert!(
        visible_fields(&schema, "s", &answers(json!({})))
            .unwrap()
            .iter()
            .any(|f| f.name == "counsel")
    );
    // Submitting the step without it is refused, exactly as the final check would.
    let errs = validate_step(&schema, "s", &answers(json!({})), &Default::default()).unwrap_err();
    assert_eq!(codes_at(&errs, "/counsel"), ["required"]);
    let errs =
        catalog::onboarding::final_check(&schema, &answers(json!({"escalate": true}))).unwrap_err();
    assert_eq!(codes_at(&errs, "/counsel"), ["required"]);
    // Unticking the default hides it everywhere.
    let off = answers(json!({"escalate": false}));
    assert!(!hydrate_step(&schema, "s", &off).unwrap().sections[0].fields[1].visible);
    assert!(validate_step(&schema, "s", &off, &Default::default()).is_ok());
    assert!(catalog::onboarding::final_check(&schema, &off).is_ok());
}
