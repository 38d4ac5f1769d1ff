//! Each of the 20 field types accepts good values (cleaned) and refuses bad ones with a code.

use catalog::FieldError;
use catalog::onboarding::{FieldType, OnboardingSchema, validate_step};
use serde_json::{Value, json};

use crate::answers;

/// A one-step schema holding `field` (named `f`).
fn schema_with(mut field: Value) -> OnboardingSchema {
    field["name"] = json!("f");
    field["label"] = json!("F");
    OnboardingSchema::parse(&json!({"steps": [{"id": "s", "title": "S", "sections": [{"id": "x", "title": "X", "fields": [field]}]}]}))
        .unwrap_or_else(|e| panic!("schema: {e:?}"))
}

fn check(field: &Value, value: Value) -> Result<Value, Vec<FieldError>> {
    let schema = schema_with(field.clone());
    validate_step(&schema, "s", &answers(json!({ "f": value })), &Default::default())
        .map(|mut c| c.remove("f").unwrap_or(Value::Null))
}

fn good(field: &Value, value: Value, cleaned: Value) {
    assert_eq!(
        check(field, value.clone()).unwrap_or_else(|e| panic!("{value} refused: {e:?}")),
        cleaned,
        "{field}"
    );
}

fn bad(field: &Value, value: Value, code: &str) {
    let errs = check(field, value.clone()).expect_err(&format!("{value} accepted by {field}"));
    assert!(errs.iter().any(|e| e.code == code), "{value}: expected {code}, got {errs:?}");
    assert!(errs.iter().all(|e| e.path.starts_with("/f")), "{errs:?}");
}

fn file(name: &str, size: u64) -> Value {
    json!({"file_id": "file_1", "filename": name, "size_bytes": size})
}

#[test]
fn the_field_type_list_is_exactly_the_seeds_twenty() {
    let names: Vec<String> = FieldType::ALL
        .iter()
        .map(|t| serde_json::to_value(t).unwrap().as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        [
            "text",
            "textarea",
            "richtext",
            "email",
            "url",
            "url_list",
            "phone",
            "number",
            "select",
            "multi_select",
            "radio",
            "checkbox",
            "file_upload",
            "file_upload_multi",
            "image_upload",
            "oauth_connect",
            "api_key_input",
            "webhook_config",
            "field_mapper",
            "crm_user_select",
        ]
    );
    assert!(serde_json::from_value::<FieldType>(json!("slider")).is_err());
}

#[test]
fn text_fields_check_length_and_pattern() {
    let f = json!({"type": "text", "validation": {"min_length": 2, "max_length": 5, "pattern": "[a-z]+"}});
    good(&f, json!("  abc "), json!("abc"));
    bad(&f, json!("a"), "min_length");
    bad(&f, json!("abcdef"), "max_length");
    bad(&f, json!("ab1"), "pattern");
    bad(&f, json!(12), "type");
    let ta = json!({"type": "textarea", "validation": {"max_length": 10}});
    good(&ta, json!("line 1\nl2"), json!("line 1\nl2"));
    bad(&ta, json!("x".repeat(11)), "max_length");
    let rt = json!({"type": "richtext"});
    good(&rt, json!("**bold** <em>text</em>"), json!("**bold** <em>text</em>"));
    bad(&rt, json!("x".repeat(50_001)), "max_length");
    bad(&rt, json!(["not", "text"]), "type");
}

#[test]
fn email_url_and_phone_are_checked_and_normalised() {
    let e = json!({"type": "email"});
    good(&e, json!(" Ops@Example.COM "), json!("ops@example.com"));
    bad(&e, json!("not-an-email"), "invalid_email");
    bad(&e, json!("a@b"), "invalid_email");
    let u = json!({"type": "url"});
    good(&u, json!("https://example.com/docs?a=1"), json!("https://example.com/docs?a=1"));
    bad(&u, json!("ftp://example.com"), "invalid_url");
    bad(&u, json!("example.com"), "invalid_url");
    bad(&u, json!("javascript:alert(1)"), "invalid_url");
    let p = json!({"type": "phone"});
    good(&p, json!("+1 (555) 123-4567"), json!("+15551234567"));
    good(&p, json!("030 1234567"), json!("0301234567"));
    bad(&p, json!("12345"), "invalid_phone");
    bad(&p, json!("+1 555 CALL NOW"), "invalid_phone");
}

#[test]
fn url_lists_check_each_item_size_and_duplicates() {
    let f = json!({"type": "url_list", "validation": {"max_items": 2}});
    good(
        &f,
        json!(["https://a.example", "https://b.example"]),
        json!(["https://a.example", "https://b.example"]),
    );
    bad(&f, json!(["https://a.example", "https://b.example", "https://c.example"]), "max_items");
    bad(&f, json!("https://a.example"), "type");
    bad(&f, json!(["https://a.example", "https://a.example"]), "duplicate");
    let errs = check(&f, json!(["https://ok.example", "nope"])).unwrap_err();
    assert_eq!(errs[0].path, "/f/1");
    assert_eq!(errs[0].code, "invalid_url");
}

#[test]
fn numbers_check_bounds_and_wholeness() {
    let f = json!({"type": "number", "validation": {"min": 1, "max": 30, "integer": true}});
    good(&f, json!(3), json!(3));
    bad(&f, json!(0), "minimum");
    bad(&f, json!(31), "maximum");
    bad(&f, json!(2.5), "integer");
    bad(&f, json!("3"), "type");
    good(&json!({"type": "number"}), json!(-2.75), json!(-2.75));
}

#[test]
fn select_radio_and_multi_select_accept_only_their_options() {
    let opts = json!(["a", {"value": "b", "label": "Bee"}]);
    for t in ["select", "radio"] {
        let f = json!({"type": t, "options": opts});
        good(&f, json!("b"), json!("b"));
        bad(&f, json!("Bee"), "not_an_option");
        bad(&f, json!(["a"]), "type");
    }
    let m = json!({"type": "multi_select", "options": opts, "validation": {"min_items": 1}});
    good(&m, json!(["a", "b"]), json!(["a", "b"]));
    bad(&m, json!(["a", "c"]), "not_an_option");
    bad(&m, json!(["a", "a"]), "duplicate");
    bad(&m, json!("a"), "type");
}

#[test]
fn checkboxes_take_booleans_and_required_ones_must_be_ticked() {
    let f = json!({"type": "checkbox"});
    good(&f, json!(false), json!(false));
    good(&f, json!(true), json!(true));
    bad(&f, json!("yes"), "type");
    let req = json!({"type": "checkbox", "required": true});
    bad(&req, json!(false), "required");
    good(&req, json!(true), json!(true));
}

#[test]
fn file_uploads_check_type_and_size() {
    let f =
        json!({"type": "file_upload", "accept": ".pdf,.docx", "validation": {"max_size_mb": 1}});
    good(&f, file("Contract.PDF", 1000), file("Contract.PDF", 1000));
    bad(&f, file("notes.exe", 1000), "file_type");
    bad(&f, file("big.pdf", 2 * 1024 * 1024), "file_too_large");
    bad(&f, json!({"file_id": "x", "filename": "a.pdf"}), "required");
    bad(
        &f,
        json!({"file_id": "x", "filename": "a.pdf", "size_bytes": 1, "path": "/etc/passwd"}),
        "unknown_key",
    );
    bad(&f, json!("a.pdf"), "type");
    let m =
        json!({"type": "file_upload_multi", "accept": ".md,.txt", "validation": {"max_items": 2}});
    good(
        &m,
        json!([file("a.md", 1), file("b.txt", 2)]),
        json!([file("a.md", 1), file("b.txt", 2)]),
    );
    bad(&m, json!([file("a.md", 1), file("b.md", 1), file("c.md", 1)]), "max_items");
    let errs = check(&m, json!([file("a.md", 1), file("b.doc", 1)])).unwrap_err();
    assert_eq!((errs[0].path.as_str(), errs[0].code.as_str()), ("/f/1/filename", "file_type"));
    let img = json!({"type": "image_upload", "validation": {"max_size_mb": 2}});
    good(&img, file("me.webp", 10), file("me.webp", 10));
    bad(&img, file("me.pdf", 10), "file_type");
    let img_png = json!({"type": "image_upload", "validation": {"formats": ["png"]}});
    bad(&img_png, file("me.jpg", 10), "file_type");
}

#[test]
fn oauth_connect_takes_a_connection_from_a_listed_provider() {
    let f = json!({"type": "oauth_connect", "providers": ["zendesk", "freshdesk"]});
    let c = json!({"provider": "zendesk", "connection_id": "con_1"});
    good(&f, c.clone(), c);
    bad(&f, json!({"provider": "jira", "connection_id": "con_1"}), "unknown_provider");
    bad(&f, json!({"provider": "zendesk"}), "required");
    bad(&f, json!("zendesk"), "type");
}

#[test]
fn api_keys_must_be_long_enough_without_spaces() {
    let f = json!({"type": "api_key_input"});
    good(&f, json!(" ghp_abcdefghij "), json!("ghp_abcdefghij"));
    bad(&f, json!("short"), "min_length");
    bad(&f, json!("has a space inside"), "whitespace");
    let p = json!({"type": "api_key_input", "validation": {"pattern": "sk-[A-Za-z0-9]+"}});
    bad(&p, json!("pk-abcdefgh"), "pattern");
}

#[test]
fn webhook_config_needs_a_web_url_and_a_strong_secret() {
    let f = json!({"type": "webhook_config"});
    let ok = json!({"url": "https://hooks.example.com/x", "secret": "0123456789abcdef"});
    good(&f, ok.clone(), ok);
    good(
        &f,
        json!({"url": "https://hooks.example.com/x"}),
        json!({"url": "https://hooks.example.com/x"}),
    );
    bad(&f, json!({"url": "file:///etc/passwd"}), "invalid_url");
    bad(&f, json!({"url": "https://h.example", "secret": "short"}), "weak_secret");
    bad(&f, json!({"secret": "0123456789abcdef"}), "required");
    bad(&f, json!({"url": "https://h.example", "method": "GET"}), "unknown_key");
}

#[test]
fn field_mapper_maps_known_source_fields_to_known_targets() {
    let f = json!({"type": "field_mapper", "mapping": {"source_fields": ["lead_email", "company"], "target_fields": ["Email", "Company"]}});
    let ok = json!({"lead_email": "Email", "company": "Company"});
    good(&f, ok.clone(), ok);
    bad(&f, json!({"phone": "Email"}), "unknown_source_field");
    bad(&f, json!({"company": "Revenue"}), "unknown_target_field");
    bad(&f, json!({"company": 3}), "type");
    bad(&f, json!(["company"]), "type");
}

#[test]
fn crm_user_select_takes_a_user_id() {
    let f = json!({"type": "crm_user_select", "providers": ["salesforce"]});
    good(&f, json!("005xx000001Sv6A"), json!("005xx000001Sv6A"));
    bad(&f, json!({"id": 5}), "type");
    bad(&f, json!("x".repeat(201)), "max_length");
}

#[test]
fn optional_empty_answers_are_dropped_and_required_ones_reported() {
    let schema = schema_with(json!({"type": "text"}));
    let clean =
        validate_step(&schema, "s", &answers(json!({"f": "   "})), &Default::default()).unwrap();
    assert!(clean.is_empty());
    let schema = schema_with(json!({"type": "text", "required": true}));
    for empty in [json!(null), json!(""), json!("  ")] {
        let errs = validate_step(&schema, "s", &answers(json!({"f": empty})), &Default::default())
            .unwrap_err();
        assert_eq!((errs[0].path.as_str(), errs[0].code.as_str()), ("/f", "required"));
    }
    let errs =
        validate_step(&schema, "s", &answers(json!({"f": "x", "g": 1})), &Default::default())
            .unwrap_err();
    assert_eq!((errs[0].path.as_str(), errs[0].code.as_str()), ("/g", "unknown_field"));
}
