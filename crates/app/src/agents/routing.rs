//! Validating an agent's routing rules (persona seed §9.3) and the integrations it uses, as
//! edited through the agent API. Errors are JSON pointers into the request
//! (`/routing_rules/rules/0/pattern`); what is stored is the runtime's canonical form, so what
//! was accepted is exactly what runs.

use std::collections::BTreeSet;

use catalog::CapabilityRegistry as Registry;
use runtime::{MatchCondition, RouteTarget, RoutingRule, RoutingRules};
use serde_json::{Map, Value};

use crate::FieldError;

/// The most rules an agent may have: they are tried in order on every message.
const MAX_RULES: usize = 50;
const MAX_PATTERN_CHARS: usize = 500;
const MAX_TEXT_CHARS: usize = 10_000;

/// Tools the runtime offers under their own names (routing targets may name them directly).
const BUILT_IN_TOOLS: [&str; 3] = [
    runtime::tools::SEARCH_KNOWLEDGE,
    runtime::tools::WEB_FETCH,
    runtime::tools::ESCALATE_TO_HUMAN,
];

/// Every skill a routing rule may target: any skill a capability can resolve to (through an
/// integration or its built-in fallback) and the runtime's built-in tool names.
fn known_skills(registry: &Registry) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = BUILT_IN_TOOLS.iter().map(|s| (*s).to_owned()).collect();
    for c in registry.all() {
        out.extend(c.integrations.iter().flat_map(|i| i.skills.iter().cloned()));
        out.extend(c.fallback.iter().flatten().cloned());
    }
    out
}

/// Integration ids the catalog knows (some capability can run through them).
fn known_integrations(registry: &Registry) -> BTreeSet<String> {
    registry.all().flat_map(|c| c.integration_ids()).collect()
}

fn text_field<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    path: &str,
    max: usize,
    errors: &mut Vec<FieldError>,
) -> Option<&'a str> {
    match obj.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => {
            if s.chars().count() > max {
                errors.push(FieldError::new(
                    &format!("{path}/{key}"),
                    "too_long",
                    format!("must be at most {max} characters"),
                ));
            }
            Some(s.as_str())
        }
        Some(Value::String(_)) | None => {
            errors.push(FieldError::new(&format!("{path}/{key}"), "required", "is required"));
            None
        }
        Some(_) => {
            errors.push(FieldError::new(&format!("{path}/{key}"), "type", "must be a string"));
            None
        }
    }
}

fn unknown_keys(obj: &Map<String, Value>, allowed: &[&str], path: &str, e: &mut Vec<FieldError>) {
    for k in obj.keys().filter(|k| !allowed.contains(&k.as_str())) {
        e.push(FieldError::new(&format!("{path}/{k}"), "unknown_property", "is not allowed here"));
    }
}

fn target(
    v: Option<&Value>,
    path: &str,
    skills: &BTreeSet<String>,
    errors: &mut Vec<FieldError>,
) -> Option<RouteTarget> {
    let Some(obj) = v.and_then(Value::as_object) else {
        errors.push(FieldError::new(
            path,
            "required",
            "is required: {\"type\": \"skill\", \"skill\": …}, {\"type\": \"prompt_override\", \"prompt\": …} or {\"type\": \"fixed_answer\", \"text\": …}",
        ));
        return None;
    };
    match obj.get("type").and_then(Value::as_str) {
        Some("skill") => {
            unknown_keys(obj, &["type", "skill"], path, errors);
            let skill = text_field(obj, "skill", path, 200, errors)?;
            if !skills.contains(skill) {
                errors.push(FieldError::new(
                    &format!("{path}/skill"),
                    "unknown_skill",
                    format!("`{skill}` is not a skill or built-in tool"),
                ));
                return None;
            }
            Some(RouteTarget::Skill { skill: skill.to_owned() })
        }
        Some("prompt_override") => {
            unknown_keys(obj, &["type", "prompt"], path, errors);
            let prompt = text_field(obj, "prompt", path, MAX_TEXT_CHARS, errors)?;
            Some(RouteTarget::PromptOverride { prompt: prompt.to_owned() })
        }
        Some("fixed_answer") => {
            unknown_keys(obj, &["type", "text"], path, errors);
            let text = text_field(obj, "text", path, MAX_TEXT_CHARS, errors)?;
            Some(RouteTarget::FixedAnswer { text: text.to_owned() })
        }
        _ => {
            errors.push(FieldError::new(
                &format!("{path}/type"),
                "unknown_target",
                "must be `skill`, `prompt_override` or `fixed_answer`",
            ));
            None
        }
    }
}

fn rule(
    v: &Value,
    path: &str,
    skills: &BTreeSet<String>,
    errors: &mut Vec<FieldError>,
) -> Option<RoutingRule> {
    let Some(obj) = v.as_object() else {
        errors.push(FieldError::new(path, "type", "must be an object"));
        return None;
    };
    unknown_keys(obj, &["pattern", "condition", "target"], path, errors);
    let pattern = text_field(obj, "pattern", path, MAX_PATTERN_CHARS, errors);
    let condition = match obj.get("condition").and_then(Value::as_str) {
        Some("contains") => Some(MatchCondition::Contains),
        Some("regex") => Some(MatchCondition::Regex),
        _ => {
            errors.push(FieldError::new(
                &format!("{path}/condition"),
                "unknown_condition",
                "must be `contains` or `regex`",
            ));
            None
        }
    };
    let target = target(obj.get("target"), &format!("{path}/target"), skills, errors);
    let rule = RoutingRule { pattern: pattern?.to_owned(), condition: condition?, target: target? };
    if let Err(e) = rule.matches("") {
        errors.push(FieldError::new(&format!("{path}/pattern"), "invalid_regex", e.to_string()));
        return None;
    }
    Some(rule)
}

/// Checks routing rules as sent (`{rules: [{pattern, condition, target}], fallback_to_llm,
/// no_match_answer}`) and returns their canonical stored form.
pub(super) fn check_routing_rules(
    v: &Value,
    registry: &Registry,
    errors: &mut Vec<FieldError>,
) -> Value {
    const PATH: &str = "/routing_rules";
    let Some(obj) = v.as_object() else {
        errors.push(FieldError::new(PATH, "type", "must be an object"));
        return Value::Null;
    };
    unknown_keys(obj, &["rules", "fallback_to_llm", "no_match_answer"], PATH, errors);
    let skills = known_skills(registry);
    let mut out = RoutingRules::default();
    match obj.get("rules") {
        None => {}
        Some(Value::Array(items)) if items.len() > MAX_RULES => errors.push(FieldError::new(
            "/routing_rules/rules",
            "too_many",
            format!("at most {MAX_RULES} rules"),
        )),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                if let Some(r) = rule(item, &format!("{PATH}/rules/{i}"), &skills, errors) {
                    out.rules.push(r);
                }
            }
        }
        Some(_) => errors.push(FieldError::new("/routing_rules/rules", "type", "must be an array")),
    }
    match obj.get("fallback_to_llm") {
        None => {}
        Some(Value::Bool(b)) => out.fallback_to_llm = *b,
        Some(_) => errors.push(FieldError::new(
            "/routing_rules/fallback_to_llm",
            "type",
            "must be true or false",
        )),
    }
    match obj.get("no_match_answer") {
        None | Some(Value::Null) => {}
        Some(_) => {
            out.no_match_answer =
                text_field(obj, "no_match_answer", PATH, MAX_TEXT_CHARS, errors).map(str::to_owned)
        }
    }
    serde_json::to_value(out).unwrap_or(Value::Null)
}

/// Checks the integrations an agent uses: known ids, each once.
pub(super) fn check_integrations(
    ids: &[String],
    registry: &Registry,
    errors: &mut Vec<FieldError>,
) -> Value {
    let known = known_integrations(registry);
    let mut seen = BTreeSet::new();
    for (i, id) in ids.iter().enumerate() {
        if !known.contains(id) {
            errors.push(FieldError::new(
                &format!("/integrations/{i}"),
                "unknown_integration",
                format!("`{id}` is not an integration any capability uses"),
            ));
        } else if !seen.insert(id.as_str()) {
            errors.push(FieldError::new(
                &format!("/integrations/{i}"),
                "duplicate",
                format!("`{id}` is listed twice"),
            ));
        }
    }
    Value::from(ids.to_vec())
}
