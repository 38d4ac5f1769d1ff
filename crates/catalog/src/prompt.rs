//! System-prompt templates: `{{variables}}` (Jinja syntax) rendered from onboarding answers and
//! agent fields with minijinja in a sandbox — no file access, a fuel limit, a recursion limit —
//! and strictly: an unknown variable, a syntax error, or printing an unanswered field is an
//! error, never a half-rendered prompt.

use std::collections::BTreeSet;

use minijinja::{Environment, ErrorKind, UndefinedBehavior, Value as JValue};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::{CatalogError, FieldError};
use crate::onboarding::{Answers, KNOWLEDGE_BASE_KEY, OnboardingSchema};
use crate::personality::{Behavior, Personality};

/// Instructions one render may execute; prompt templates are small, loops are short.
const FUEL: u64 = 50_000;
/// Longest rendered prompt accepted, in characters.
const MAX_PROMPT_CHARS: usize = 100_000;

/// Agent fields available to prompt templates as `{{ agent.name }}` and so on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentFields {
    pub name: String,
    pub role: String,
    pub tagline: Option<String>,
    pub description: Option<String>,
}

/// Everything a prompt template can read.
#[derive(Debug, Clone, Default)]
pub struct PromptContext {
    pub agent: AgentFields,
    /// Cleaned onboarding answers (see `final_check`).
    pub answers: Answers,
    /// Enabled capability ids, for `{% if "send_emails" in capabilities %}`.
    pub capabilities: Vec<String>,
}

/// Top-level names a prompt may use besides the schema's field names.
const CONTEXT_NAMES: &[&str] = &["agent", "capabilities", KNOWLEDGE_BASE_KEY];

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(FUEL));
    env.set_recursion_limit(16);
    env.set_formatter(|out, state, value| {
        if value.is_none() {
            return Err(minijinja::Error::new(
                ErrorKind::InvalidOperation,
                "prints a field that was not answered; guard it with {% if field %}…{% endif %}",
            ));
        }
        minijinja::escape_formatter(out, state, value)
    });
    env
}

fn prompt_error(e: &minijinja::Error) -> CatalogError {
    let code = match e.kind() {
        ErrorKind::SyntaxError => "syntax",
        ErrorKind::UndefinedError => "undefined",
        ErrorKind::OutOfFuel => "out_of_fuel",
        _ => "render",
    };
    let mut message = e.to_string();
    if let Some(name) = e.name() {
        message = message.replace(&format!(" (in {name}:{})", e.line().unwrap_or_default()), "");
    }
    CatalogError::Prompt { code, message, line: e.line() }
}

/// Names a template reads at top level that the context will not provide.
fn unknown_variables(source: &str, schema: &OnboardingSchema) -> Result<Vec<String>, CatalogError> {
    let env = environment();
    let tmpl = env.template_from_str(source).map_err(|e| prompt_error(&e))?;
    let known: BTreeSet<&str> =
        schema.fields().map(|f| f.name.as_str()).chain(CONTEXT_NAMES.iter().copied()).collect();
    let mut unknown: Vec<String> = tmpl
        .undeclared_variables(false)
        .into_iter()
        .filter(|v| !known.contains(v.as_str()))
        .collect();
    unknown.sort();
    Ok(unknown)
}

/// Checks a prompt template when a template is created: it parses, and every variable it reads
/// is a field of the onboarding schema or `agent`, `capabilities`, `knowledge_base`.
pub fn check_prompt_template(
    source: &str,
    schema: &OnboardingSchema,
    path: &str,
) -> Result<(), Vec<FieldError>> {
    match unknown_variables(source, schema) {
        Ok(unknown) if unknown.is_empty() => Ok(()),
        Ok(unknown) => Err(unknown
            .into_iter()
            .map(|v| FieldError::new(path, "unknown_variable", format!("`{{{{ {v} }}}}` is neither an onboarding field nor agent, capabilities or knowledge_base")))
            .collect()),
        Err(CatalogError::Prompt { code, message, .. }) => Err(vec![FieldError::new(path, code, message)]),
        Err(e) => Err(vec![FieldError::new(path, "prompt", e.to_string())]),
    }
}

/// Renders a prompt template. Every field of `schema` is defined (as `none` when unanswered or
/// hidden), so templates test optional answers with `{% if %}`; anything else undefined,
/// a syntax error, printing `none`, or running out of fuel is an error.
pub fn render_prompt(
    source: &str,
    schema: &OnboardingSchema,
    ctx: &PromptContext,
) -> Result<String, CatalogError> {
    let env = environment();
    let tmpl = env.template_from_str(source).map_err(|e| prompt_error(&e))?;
    let mut vars = serde_json::Map::new();
    for f in schema.fields() {
        vars.insert(f.name.clone(), ctx.answers.get(&f.name).cloned().unwrap_or(Value::Null));
    }
    vars.insert(
        KNOWLEDGE_BASE_KEY.into(),
        ctx.answers.get(KNOWLEDGE_BASE_KEY).cloned().unwrap_or(Value::Null),
    );
    vars.insert("agent".into(), serde_json::to_value(&ctx.agent).expect("serialisable"));
    vars.insert(
        "capabilities".into(),
        serde_json::to_value(&ctx.capabilities).expect("serialisable"),
    );
    let out =
        tmpl.render(JValue::from(minijinja::value::Serde(&vars))).map_err(|e| prompt_error(&e))?;
    if out.chars().count() > MAX_PROMPT_CHARS {
        return Err(CatalogError::Prompt {
            code: "too_long",
            message: format!("rendered prompt exceeds {MAX_PROMPT_CHARS} characters"),
            line: None,
        });
    }
    Ok(out.trim().to_owned())
}

/// The full system prompt: the rendered template, then the personality modifier, then the
/// behaviour sentences, separated by blank lines (empty parts left out).
pub fn compose_system_prompt(
    rendered: &str,
    personality: &Personality,
    behavior: &Behavior,
) -> String {
    [rendered.trim().to_owned(), personality.prompt_modifier(), behavior.prompt_text()]
        .into_iter()
        .filter(|p| !p.is_empty())
        .collect::<Vec<_>>()
        .join("\n\n")
}
