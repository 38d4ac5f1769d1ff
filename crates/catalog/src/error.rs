//! The crate's one error enum, and `FieldError`: a problem with a piece of submitted JSON,
//! located by a JSON pointer so the API can return it in a 422 `errors` list unchanged.

use serde::{Deserialize, Serialize};

/// One problem with one place in a JSON document (an onboarding answer, an agent config,
/// a template document). `path` is a JSON pointer (RFC 6901) into the submitted document;
/// `code` is stable and machine-readable; `message` is meant for the person who typed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    pub path: String,
    pub code: String,
    pub message: String,
}

impl FieldError {
    /// A new error at `path` with a stable `code`.
    pub fn new(path: impl Into<String>, code: &str, message: impl Into<String>) -> Self {
        Self { path: path.into(), code: code.to_owned(), message: message.into() }
    }
}

/// Escapes one JSON-pointer segment (`~` → `~0`, `/` → `~1`).
pub fn pointer_segment(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

/// Appends a segment to a JSON pointer.
pub fn pointer_join(base: &str, segment: impl std::fmt::Display) -> String {
    format!("{base}/{}", pointer_segment(&segment.to_string()))
}

/// Everything that can go wrong in the catalog.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// A data file shipped in the binary is broken: a bug caught by the unit tests.
    #[error("built-in catalog data `{file}` is invalid: {detail}")]
    BuiltinData { file: String, detail: String },
    /// A capability id that the registry does not know.
    #[error("unknown capability `{0}`")]
    UnknownCapability(String),
    /// A template slug that the catalog does not know.
    #[error("unknown template `{0}`")]
    UnknownTemplate(String),
    /// An onboarding step id that the schema does not have.
    #[error("unknown onboarding step `{0}`")]
    UnknownStep(String),
    /// A document (template, onboarding schema, agent config) failed validation.
    #[error("{} validation error(s), first: {}", .0.len(), .0.first().map(|e| format!("{} {}", e.path, e.message)).unwrap_or_default())]
    Invalid(Vec<FieldError>),
    /// A personality value outside [0, 1].
    #[error("personality `{trait_name}` must be between 0 and 1, got {value}")]
    PersonalityOutOfRange { trait_name: &'static str, value: f64 },
    /// A prompt template failed to parse or render; never half-rendered.
    #[error("prompt template error ({code}){}: {message}", .line.map(|l| format!(" at line {l}")).unwrap_or_default())]
    Prompt { code: &'static str, message: String, line: Option<usize> },
}
