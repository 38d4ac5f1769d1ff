//! The onboarding-schema engine (hub seed §3.3, §4.3): a template's wizard as data — steps made
//! of sections made of fields of 20 types, conditional fields (`show_if`, `hide_if`,
//! `required_if`), and a knowledge-base block — plus the functions the wizard API calls to show
//! a step, validate it, move between steps, and check that the whole thing is complete.
//!
//! Answers are one flat JSON object keyed by field name (names are unique across a schema),
//! plus the reserved key `knowledge_base` for the knowledge-base block.

mod check;
mod condition;
mod field_value;
mod knowledge;
mod wizard;

use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use condition::{Condition, Expected};
pub use knowledge::KnowledgeBaseChoice;
pub use wizard::{
    CleanValues, HydratedField, HydratedKnowledgeBase, HydratedSection, HydratedStep, final_check,
    first_step, hydrate_step, next_step, previous_step, validate_step, visible_fields,
    with_defaults,
};

use crate::error::{CatalogError, FieldError};

/// Answers to an onboarding wizard: field name → value (and `knowledge_base` → choice).
pub type Answers = serde_json::Map<String, Value>;

/// Answer key of the knowledge-base block.
pub const KNOWLEDGE_BASE_KEY: &str = "knowledge_base";

/// Names a field may not take: they are used by the knowledge-base block and by the prompt
/// context (`agent`, `capabilities`).
pub const RESERVED_NAMES: &[&str] =
    &[KNOWLEDGE_BASE_KEY, "agent", "capabilities", "personality", "behavior", "loop", "self"];

/// A template's onboarding wizard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OnboardingSchema {
    #[serde(default = "default_version")]
    pub version: String,
    /// Knowledge-base rules; absent = no knowledge base in this wizard.
    #[serde(default)]
    pub knowledge_base: KnowledgeBaseBlock,
    pub steps: Vec<Step>,
}

fn default_version() -> String {
    "1.0".to_owned()
}

/// How a template's wizard treats knowledge bases (hub seed "Knowledge Base Configuration").
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnowledgeBaseBlock {
    /// Show the knowledge-base step.
    #[serde(default)]
    pub enabled: bool,
    /// A knowledge base must be chosen or created to finish.
    #[serde(default)]
    pub required: bool,
    /// Show a "Recommended" badge.
    #[serde(default)]
    pub recommended: bool,
    /// May pick one of the workspace's existing knowledge bases.
    #[serde(default)]
    pub allow_existing: bool,
    /// May create a new knowledge base inline.
    #[serde(default)]
    pub allow_create_new: bool,
    /// May add URLs to crawl.
    #[serde(default)]
    pub allow_url_import: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help_text: Option<String>,
}

/// One page of the wizard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Step {
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A step with `required: false` may be skipped as a whole (no answers at all).
    #[serde(default = "yes")]
    pub required: bool,
    /// This step hosts the knowledge-base block (exactly one step does when it is enabled).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub knowledge_base: bool,
    #[serde(default)]
    pub sections: Vec<Section>,
}

fn yes() -> bool {
    true
}

/// A titled group of fields within a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Section {
    pub id: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub fields: Vec<Field>,
}

/// One input of the wizard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    /// Answer key; `[a-z][a-z0-9_]*`, unique across the schema.
    pub name: String,
    #[serde(rename = "type")]
    pub kind: FieldType,
    pub label: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub placeholder: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<String>,
    #[serde(default)]
    pub required: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    #[serde(default, skip_serializing_if = "FieldValidation::is_empty")]
    pub validation: FieldValidation,
    /// Choices of `select`, `multi_select` and `radio`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub options: Vec<FieldOption>,
    /// File types accepted by upload fields (`.pdf,.docx`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accept: Option<String>,
    /// Integration providers offered by `oauth_connect` (and the CRM of `crm_user_select`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub providers: Vec<String>,
    /// Source and target field names offered by `field_mapper`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mapping: Option<FieldMapping>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub show_if: Option<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hide_if: Option<Condition>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub required_if: Option<Condition>,
    /// The agent-configuration setting this answer fills, as a JSON pointer
    /// (`/allowed_domains`, `/colors/primary`); see [`crate::answer_mapping`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maps_to: Option<String>,
}

/// The 20 field types of hub seed §3.3 "Supported Field Types", exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    Text,
    Textarea,
    Richtext,
    Email,
    Url,
    UrlList,
    Phone,
    Number,
    Select,
    MultiSelect,
    Radio,
    Checkbox,
    FileUpload,
    FileUploadMulti,
    ImageUpload,
    OauthConnect,
    ApiKeyInput,
    WebhookConfig,
    FieldMapper,
    CrmUserSelect,
}

impl FieldType {
    /// Every field type, in the seed's order.
    pub const ALL: [FieldType; 20] = [
        Self::Text,
        Self::Textarea,
        Self::Richtext,
        Self::Email,
        Self::Url,
        Self::UrlList,
        Self::Phone,
        Self::Number,
        Self::Select,
        Self::MultiSelect,
        Self::Radio,
        Self::Checkbox,
        Self::FileUpload,
        Self::FileUploadMulti,
        Self::ImageUpload,
        Self::OauthConnect,
        Self::ApiKeyInput,
        Self::WebhookConfig,
        Self::FieldMapper,
        Self::CrmUserSelect,
    ];

    /// Whether the field chooses among `options`.
    pub fn has_options(self) -> bool {
        matches!(self, Self::Select | Self::MultiSelect | Self::Radio)
    }

    /// Whether the value holds a secret that must never be sent back to a client.
    pub fn is_secret(self) -> bool {
        matches!(self, Self::ApiKeyInput | Self::WebhookConfig)
    }
}

/// One choice of a select-like field; written as `"value"` or `{"value": …, "label": …}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "OptionRepr")]
pub struct FieldOption {
    pub value: String,
    pub label: String,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OptionRepr {
    Bare(String),
    Full { value: String, label: String },
}

impl From<OptionRepr> for FieldOption {
    fn from(r: OptionRepr) -> Self {
        match r {
            OptionRepr::Bare(v) => Self { label: v.clone(), value: v },
            OptionRepr::Full { value, label } => Self { value, label },
        }
    }
}

/// Source/target names a `field_mapper` maps between; empty lists accept any name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldMapping {
    #[serde(default)]
    pub source_fields: Vec<String>,
    #[serde(default)]
    pub target_fields: Vec<String>,
}

/// Validation rules; which apply depends on the field type.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldValidation {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_length: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_length: Option<usize>,
    /// A regular expression the whole text must match.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// Numbers must be whole.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub integer: bool,
    /// Bounds on list sizes (url_list, multi_select, file_upload_multi, field_mapper).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_items: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_items: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_size_mb: Option<f64>,
    /// Allowed file extensions, without dots (`["jpg", "png"]`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub formats: Vec<String>,
}

impl FieldValidation {
    fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl OnboardingSchema {
    /// Parses and checks a schema; errors are JSON pointers into `doc`.
    pub fn parse(doc: &Value) -> Result<Self, Vec<FieldError>> {
        let schema: Self = crate::template::from_value_at(doc, "")?;
        schema.check("")?;
        Ok(schema)
    }

    /// Checks a parsed schema; error paths are prefixed with `base` (a JSON pointer).
    pub fn check(&self, base: &str) -> Result<(), Vec<FieldError>> {
        check::check_schema(self, base)
    }

    /// The step with this id.
    pub fn step(&self, id: &str) -> Result<&Step, CatalogError> {
        self.steps
            .iter()
            .find(|s| s.id == id)
            .ok_or_else(|| CatalogError::UnknownStep(id.to_owned()))
    }

    /// Every field of the schema, in order.
    pub fn fields(&self) -> impl Iterator<Item = &Field> {
        self.steps.iter().flat_map(Step::fields)
    }

    /// The field with this name.
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields().find(|f| f.name == name)
    }

    /// The id of the step holding the field (or the knowledge-base block) named `name`.
    pub fn step_of(&self, name: &str) -> Option<&str> {
        self.steps
            .iter()
            .find(|s| {
                s.fields().any(|f| f.name == name)
                    || (name == KNOWLEDGE_BASE_KEY && s.knowledge_base)
            })
            .map(|s| s.id.as_str())
    }
}

impl Step {
    /// The step's fields across its sections, in order.
    pub fn fields(&self) -> impl Iterator<Item = &Field> {
        self.sections.iter().flat_map(|s| s.fields.iter())
    }
}
