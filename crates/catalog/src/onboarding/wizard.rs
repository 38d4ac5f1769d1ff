//! The wizard engine (hub seed §4.3): which fields of a step are visible given the answers so
//! far, validating a step's submission (hidden fields dropped, required only when visible),
//! hydrating a step for the API, moving between steps, and the final completeness check.
//!
//! Visibility chains: a hidden field counts as unanswered in other fields' conditions, so
//! hiding a field also hides what depends on it.
//!
//! Conditions read the answers *with defaults*: an unanswered field with a default counts as
//! answered with it (the form shows it pre-filled, and submitting the step stores it). The step
//! view, a step's validation and the final check all use [`with_defaults`], so a field shown and
//! required because of another field's default is shown and required everywhere.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::condition::is_empty;
use super::{
    Answers, Field, FieldType, KNOWLEDGE_BASE_KEY, KnowledgeBaseBlock, OnboardingSchema, Step,
    field_value, knowledge,
};
use crate::error::{CatalogError, FieldError, pointer_join};

/// Validated, cleaned answers: hidden and empty fields dropped, text trimmed, emails
/// lower-cased, the knowledge-base choice normalised.
pub type CleanValues = Answers;

/// A step as the wizard API returns it: definitions, current values and computed state.
#[derive(Debug, Clone, Serialize)]
pub struct HydratedStep {
    pub id: String,
    pub title: String,
    pub description: Option<String>,
    pub required: bool,
    /// Position of the step (0-based) and the number of steps.
    pub index: usize,
    pub total: usize,
    pub previous: Option<String>,
    pub next: Option<String>,
    pub sections: Vec<HydratedSection>,
    /// The knowledge-base block, when this step hosts it.
    pub knowledge_base: Option<HydratedKnowledgeBase>,
}

/// A section of a hydrated step.
#[derive(Debug, Clone, Serialize)]
pub struct HydratedSection {
    pub id: String,
    pub title: String,
    pub description: Option<String>,
    pub fields: Vec<HydratedField>,
}

/// A field with its computed state.
#[derive(Debug, Clone, Serialize)]
pub struct HydratedField {
    #[serde(flatten)]
    pub definition: Field,
    /// Shown, given the current answers.
    pub visible: bool,
    /// Required now (its own `required` or a `required_if` that holds).
    pub is_required: bool,
    /// The current answer, else the field's default; never a secret's value.
    pub value: Option<Value>,
    /// For secret fields: whether a value is stored.
    pub is_set: bool,
}

/// The knowledge-base block with the current choice.
#[derive(Debug, Clone, Serialize)]
pub struct HydratedKnowledgeBase {
    #[serde(flatten)]
    pub block: KnowledgeBaseBlock,
    pub value: Option<Value>,
}

/// `answers` where every unanswered (or blank) field with a default takes its default.
pub fn with_defaults(schema: &OnboardingSchema, answers: &Answers) -> Answers {
    let mut out = answers.clone();
    for f in schema.fields() {
        if let Some(d) = &f.default
            && is_empty(answers.get(&f.name))
        {
            out.insert(f.name.clone(), d.clone());
        }
    }
    out
}

/// Visibility of every field of the schema given `answers` (already [`with_defaults`]). Iterates to a fixpoint; the
/// schema check rules out cycles, so this ends after at most depth + 1 rounds.
fn visibility(schema: &OnboardingSchema, answers: &Answers) -> BTreeMap<String, bool> {
    let fields: Vec<&Field> = schema.fields().collect();
    let mut vis: BTreeMap<String, bool> = fields.iter().map(|f| (f.name.clone(), true)).collect();
    for _ in 0..=fields.len() {
        let lookup = |name: &str| {
            if vis.get(name).copied().unwrap_or(true) { answers.get(name) } else { None }
        };
        let next: BTreeMap<String, bool> = fields
            .iter()
            .map(|f| {
                let shown = f.show_if.as_ref().is_none_or(|c| c.holds(lookup))
                    && !f.hide_if.as_ref().is_some_and(|c| c.holds(lookup));
                (f.name.clone(), shown)
            })
            .collect();
        if next == vis {
            break;
        }
        vis = next;
    }
    vis
}

/// Whether `field` is required given `answers` (ignoring visibility).
fn is_required(field: &Field, answers: &Answers, vis: &BTreeMap<String, bool>) -> bool {
    field.required
        || field.required_if.as_ref().is_some_and(|c| {
            c.holds(|n| if vis.get(n).copied().unwrap_or(true) { answers.get(n) } else { None })
        })
}

/// The fields of a step that are visible given the answers so far.
pub fn visible_fields<'s>(
    schema: &'s OnboardingSchema,
    step_id: &str,
    answers: &Answers,
) -> Result<Vec<&'s Field>, CatalogError> {
    let step = schema.step(step_id)?;
    let vis = visibility(schema, &with_defaults(schema, answers));
    Ok(step.fields().filter(|f| vis.get(&f.name).copied().unwrap_or(true)).collect())
}

/// All answers with this step's answers replaced by `values`.
fn merged(step: &Step, values: &Answers, all_answers: &Answers) -> Answers {
    let mut out = all_answers.clone();
    for f in step.fields() {
        out.remove(&f.name);
    }
    for (k, v) in values {
        out.insert(k.clone(), v.clone());
    }
    out
}

/// Validates one step's submission. `all_answers` holds the other steps' answers (conditions
/// may read them). Hidden fields are dropped whatever their value; a field is required only
/// when visible; an unanswered visible field with a default takes it; keys that are not fields
/// of this step are errors. Paths are `/<field>`.
pub fn validate_step(
    schema: &OnboardingSchema,
    step_id: &str,
    values: &Answers,
    all_answers: &Answers,
) -> Result<CleanValues, Vec<FieldError>> {
    let step = schema
        .step(step_id)
        .map_err(|e| vec![FieldError::new("", "unknown_step", e.to_string())])?;
    let answers = with_defaults(schema, &merged(step, values, all_answers));
    let vis = visibility(schema, &answers);
    let mut errors = Vec::new();
    let mut clean = CleanValues::new();
    for key in values.keys() {
        let known = step.fields().any(|f| &f.name == key)
            || (step.knowledge_base && key == KNOWLEDGE_BASE_KEY);
        if !known {
            errors.push(FieldError::new(
                pointer_join("", key),
                "unknown_field",
                format!("`{key}` is not a field of step `{step_id}`"),
            ));
        }
    }
    for field in step.fields() {
        if !vis.get(&field.name).copied().unwrap_or(true) {
            continue;
        }
        let path = pointer_join("", &field.name);
        // An unanswered visible field takes its default: the form showed it pre-filled.
        let value =
            values.get(&field.name).filter(|v| !is_empty(Some(v))).or(field.default.as_ref());
        let required = is_required(field, &answers, &vis);
        if is_empty(value) {
            if required {
                errors.push(FieldError::new(
                    path,
                    "required",
                    format!("{} is required", field.label),
                ));
            }
            continue;
        }
        let value = value.expect("non-empty value is present");
        if field.kind == FieldType::Checkbox && required && value == &Value::Bool(false) {
            errors.push(FieldError::new(
                path,
                "required",
                format!("{} must be checked", field.label),
            ));
            continue;
        }
        match field_value::clean(field, value, &path) {
            Ok(v) => {
                clean.insert(field.name.clone(), v);
            }
            Err(e) => errors.extend(e),
        }
    }
    if step.knowledge_base {
        let path = pointer_join("", KNOWLEDGE_BASE_KEY);
        match knowledge::check(&schema.knowledge_base, values.get(KNOWLEDGE_BASE_KEY), &path) {
            Ok(Some(choice)) => {
                clean.insert(
                    KNOWLEDGE_BASE_KEY.to_owned(),
                    serde_json::to_value(choice).expect("serialisable"),
                );
            }
            Ok(None) => {}
            Err(e) => errors.extend(e),
        }
    }
    if errors.is_empty() { Ok(clean) } else { Err(errors) }
}

/// A step's definitions with current values and computed visibility, for the wizard API.
pub fn hydrate_step(
    schema: &OnboardingSchema,
    step_id: &str,
    answers: &Answers,
) -> Result<HydratedStep, CatalogError> {
    let step = schema.step(step_id)?;
    let index = schema.steps.iter().position(|s| s.id == step_id).unwrap_or_default();
    let effective = with_defaults(schema, answers);
    let vis = visibility(schema, &effective);
    let sections = step
        .sections
        .iter()
        .map(|section| HydratedSection {
            id: section.id.clone(),
            title: section.title.clone(),
            description: section.description.clone(),
            fields: section
                .fields
                .iter()
                .map(|f| {
                    let answer = answers.get(&f.name).filter(|v| !is_empty(Some(v)));
                    let secret = f.kind.is_secret();
                    HydratedField {
                        definition: f.clone(),
                        visible: vis.get(&f.name).copied().unwrap_or(true),
                        is_required: is_required(f, &effective, &vis),
                        value: if secret { None } else { answer.or(f.default.as_ref()).cloned() },
                        is_set: answer.is_some(),
                    }
                })
                .collect(),
        })
        .collect();
    Ok(HydratedStep {
        id: step.id.clone(),
        title: step.title.clone(),
        description: step.description.clone(),
        required: step.required,
        index,
        total: schema.steps.len(),
        previous: previous_step(schema, step_id)?.map(str::to_owned),
        next: next_step(schema, step_id)?.map(str::to_owned),
        sections,
        knowledge_base: step.knowledge_base.then(|| HydratedKnowledgeBase {
            block: schema.knowledge_base.clone(),
            value: answers.get(KNOWLEDGE_BASE_KEY).cloned(),
        }),
    })
}

/// The first step's id.
pub fn first_step(schema: &OnboardingSchema) -> Option<&str> {
    schema.steps.first().map(|s| s.id.as_str())
}

/// The step after `step_id`, or `None` at the last step.
pub fn next_step<'s>(
    schema: &'s OnboardingSchema,
    step_id: &str,
) -> Result<Option<&'s str>, CatalogError> {
    let i = schema
        .steps
        .iter()
        .position(|s| s.id == step_id)
        .ok_or_else(|| CatalogError::UnknownStep(step_id.to_owned()))?;
    Ok(schema.steps.get(i + 1).map(|s| s.id.as_str()))
}

/// The step before `step_id`, or `None` at the first step.
pub fn previous_step<'s>(
    schema: &'s OnboardingSchema,
    step_id: &str,
) -> Result<Option<&'s str>, CatalogError> {
    let i = schema
        .steps
        .iter()
        .position(|s| s.id == step_id)
        .ok_or_else(|| CatalogError::UnknownStep(step_id.to_owned()))?;
    Ok(i.checked_sub(1).and_then(|p| schema.steps.get(p)).map(|s| s.id.as_str()))
}

/// Checks that the answers complete the wizard: every required step valid, every optional step
/// either skipped (nothing answered) or valid, the knowledge base present when required, and no
/// answer that belongs to no step. Returns all cleaned answers.
pub fn final_check(
    schema: &OnboardingSchema,
    answers: &Answers,
) -> Result<CleanValues, Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut clean = CleanValues::new();
    for key in answers.keys() {
        if schema.step_of(key).is_none() {
            errors.push(FieldError::new(
                pointer_join("", key),
                "unknown_field",
                format!("`{key}` is not a field of this wizard"),
            ));
        }
    }
    for step in &schema.steps {
        let own = |k: &str| {
            step.fields().any(|f| f.name == k) || (step.knowledge_base && k == KNOWLEDGE_BASE_KEY)
        };
        let values: Answers =
            answers.iter().filter(|(k, _)| own(k)).map(|(k, v)| (k.clone(), v.clone())).collect();
        let answered = values.values().any(|v| !is_empty(Some(v)));
        if !step.required && !answered {
            continue;
        }
        match validate_step(schema, &step.id, &values, answers) {
            Ok(c) => clean.extend(c),
            Err(e) => errors.extend(e),
        }
    }
    if errors.is_empty() { Ok(clean) } else { Err(errors) }
}
