//! Bodies of the fuzz targets, shared by the binaries in `fuzz_targets/`.
//!
//! What counts as a finding:
//! - a panic in EchoForge's own code (anything outside the crates.io registry), a stack
//!   overflow, an out-of-memory or a hang: libFuzzer reports them as crashes;
//! - an extraction that runs into the guard's wall-clock limit on a small input;
//! - a broken invariant (e.g. the onboarding step view and step validation disagreeing).
//!
//! A panic raised inside a third-party parser (pdf-extract, calamine, cfb, …) is not a crash of
//! the product: the extractor runs those on their own thread behind `catch_unwind` and answers
//! `ParserCrashed`, which the user sees as "the file is probably damaged". Such panics unwind as
//! they do in the server and are listed once per location on stderr.

use std::collections::BTreeSet;
use std::panic::PanicHookInfo;
use std::sync::{Mutex, Once, OnceLock};
use std::time::Duration;

use catalog::OnboardingSchema;
use catalog::onboarding::{self, Answers};

/// Installs the panic policy described in the crate docs (once, after libFuzzer's own hook,
/// which prints the panic and aborts).
fn panic_policy() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let abort_hook = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info: &PanicHookInfo<'_>| match info.location() {
            Some(loc) if is_third_party(loc.file()) => note_contained(info),
            _ => abort_hook(info),
        }));
    });
}

/// Sources of crates.io dependencies live under `$CARGO_HOME/registry/src/`.
fn is_third_party(file: &str) -> bool {
    file.contains("/registry/src/")
}

fn note_contained(info: &PanicHookInfo<'_>) {
    static SEEN: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
    let Some(loc) = info.location() else { return };
    let key = format!("{}:{}", loc.file(), loc.line());
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    if seen.insert(key.clone()) {
        eprintln!("contained third-party panic #{} at {key}", seen.len());
    }
}

/// Limits for fuzzing: the product's guards, scaled to fuzz-sized inputs.
fn limits() -> &'static extract::Limits {
    static LIMITS: OnceLock<extract::Limits> = OnceLock::new();
    LIMITS.get_or_init(|| extract::Limits {
        max_input_bytes: 1024 * 1024,
        max_uncompressed_bytes: 64 * 1024 * 1024,
        max_output_bytes: 16 * 1024 * 1024,
        timeout: Duration::from_secs(10),
        ..extract::Limits::default()
    })
}

/// Extracts `data` as `format`. Any result is fine except a time-out: on inputs this small the
/// guard's limit means a parser that loops.
pub fn extract_as(data: &[u8], format: extract::Format) {
    panic_policy();
    if let Err(extract::ExtractError::TimedOut(d)) = extract::extract(data, format, limits()) {
        panic!("{} extraction of {} bytes hit the {d:?} limit", format.name(), data.len())
    }
}

/// The onboarding engine on `{"schema": …, "answers": {…}}`: parsing never panics, and for an
/// accepted schema every step hydrates, and the step view agrees with step validation about
/// which fields are shown and required.
pub fn onboarding(data: &[u8]) {
    panic_policy();
    let Ok(serde_json::Value::Object(doc)) = serde_json::from_slice::<serde_json::Value>(data)
    else {
        return;
    };
    let Some(schema_doc) = doc.get("schema") else { return };
    let Ok(schema) = OnboardingSchema::parse(schema_doc) else { return };
    let answers: Answers = match doc.get("answers") {
        Some(serde_json::Value::Object(a)) => a.clone(),
        _ => Answers::new(),
    };
    for step in &schema.steps {
        let view = onboarding::hydrate_step(&schema, &step.id, &answers)
            .expect("a step of an accepted schema hydrates");
        let shown: Vec<&str> = view
            .sections
            .iter()
            .flat_map(|s| &s.fields)
            .filter(|f| f.visible)
            .map(|f| f.definition.name.as_str())
            .collect();
        let visible: Vec<&str> = onboarding::visible_fields(&schema, &step.id, &answers)
            .expect("known step")
            .into_iter()
            .map(|f| f.name.as_str())
            .collect();
        assert_eq!(shown, visible, "the step view and visible_fields disagree");
        let _ = onboarding::next_step(&schema, &step.id).expect("known step");
        let _ = onboarding::previous_step(&schema, &step.id).expect("known step");
        let own: Answers = answers
            .iter()
            .filter(|(k, _)| {
                step.fields().any(|f| &f.name == *k)
                    || (step.knowledge_base && *k == onboarding::KNOWLEDGE_BASE_KEY)
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let errors = onboarding::validate_step(&schema, &step.id, &own, &answers).err();
        let required_error = |name: &str| {
            let path = catalog::error::pointer_join("", name);
            errors.iter().flatten().any(|e| e.path == path && e.code == "required")
        };
        for field in view.sections.iter().flat_map(|s| &s.fields) {
            let name = &field.definition.name;
            if !field.visible {
                assert!(!required_error(name), "`{name}` is hidden in the step view but required");
            } else if field.is_required && field.value.is_none() && !field.is_set {
                assert!(required_error(name), "`{name}` is shown required and empty but accepted");
            }
        }
    }
    let _ = onboarding::final_check(&schema, &answers);
}

/// The schema and context prompt templates are checked and rendered against: the legal
/// assistant's schema (conditions, defaults, every kind of field) with its defaults as answers.
fn prompt_setup() -> &'static (OnboardingSchema, catalog::PromptContext) {
    static SETUP: OnceLock<(OnboardingSchema, catalog::PromptContext)> = OnceLock::new();
    SETUP.get_or_init(|| {
        let catalog = catalog::Catalog::builtin().expect("built-in catalog");
        let schema =
            catalog.template("legal-assistant").expect("legal-assistant").onboarding_schema.clone();
        let ctx = catalog::PromptContext {
            agent: catalog::AgentFields {
                name: "Lex".into(),
                role: "Legal assistant".into(),
                tagline: None,
                description: Some("Answers contract questions".into()),
            },
            answers: onboarding::with_defaults(&schema, &Answers::new()),
            capabilities: vec!["rag".into(), "escalation".into()],
        };
        (schema, ctx)
    })
}

/// A prompt template (the input as UTF-8) checked and rendered in the sandbox: errors are fine,
/// panics and runaway renders are not.
pub fn prompt(data: &[u8]) {
    panic_policy();
    let Ok(source) = std::str::from_utf8(data) else { return };
    let (schema, ctx) = prompt_setup();
    let _ = catalog::prompt::check_prompt_template(source, schema, "/system_prompt_template");
    if let Ok(out) = catalog::render_prompt(source, schema, ctx) {
        assert!(out.chars().count() <= 100_000, "rendered prompt over the limit");
    }
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread().build().expect("a tokio runtime")
    })
}

/// The upload route's multipart parser (axum's `Multipart`, as `POST …/documents` uses it):
/// the first line of the input is the boundary, the rest the body. Every field and chunk is
/// read, and each file's type detected as the upload does.
pub fn multipart(data: &[u8]) {
    use axum::extract::{FromRequest, Multipart, Request};
    use axum::http::header::CONTENT_TYPE;
    panic_policy();
    let Some(nl) = data.iter().position(|b| *b == b'\n') else { return };
    let Ok(boundary) = std::str::from_utf8(&data[..nl]) else { return };
    let body = data[nl + 1..].to_vec();
    runtime().block_on(async move {
        let Ok(req) = Request::builder()
            .method("POST")
            .uri("/api/v1/knowledge-bases/kb/documents")
            .header(CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}"))
            .body(axum::body::Body::from(body))
        else {
            return;
        };
        let Ok(mut form) = Multipart::from_request(req, &()).await else { return };
        while let Ok(Some(mut field)) = form.next_field().await {
            let name = field.file_name().map(str::to_owned);
            let content_type = field.content_type().map(str::to_owned);
            // The upload detects the type from the first 8 KiB (app::knowledge::upload).
            let mut head = Vec::new();
            while let Ok(Some(chunk)) = field.chunk().await {
                if head.len() < 8192 {
                    head.extend_from_slice(&chunk[..chunk.len().min(8192 - head.len())]);
                }
            }
            if let Some(name) = name {
                let _ = extract::detect(&name, content_type.as_deref(), &head);
            }
        }
    });
}
