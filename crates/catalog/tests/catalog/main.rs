//! The catalog's integration tests: the shipped data, the onboarding engine, configuration
//! validation, personality mapping, prompt rendering and plans, through the public API.

mod conditions;
mod config;
mod field_types;
mod knowledge_base;
mod personality;
mod plans;
mod prompt;
mod registry;
mod schema_checks;
mod templates;
mod walkthrough;

use std::sync::OnceLock;

use catalog::onboarding::Answers;
use catalog::{Catalog, FieldError};
use serde_json::Value;

/// The built-in catalog, loaded once.
pub fn catalog() -> &'static Catalog {
    static CATALOG: OnceLock<Catalog> = OnceLock::new();
    CATALOG.get_or_init(|| Catalog::builtin().expect("built-in catalog loads"))
}

/// A JSON object literal as `Answers`.
pub fn answers(v: Value) -> Answers {
    v.as_object().expect("an object").clone()
}

/// The error codes at `path`.
pub fn codes_at(errors: &[FieldError], path: &str) -> Vec<String> {
    errors.iter().filter(|e| e.path == path).map(|e| e.code.clone()).collect()
}
