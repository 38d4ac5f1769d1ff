//! Structural checks of an onboarding schema, run when a template is loaded or created: ids and
//! names are unique and well-formed, select-like fields have options, rules make sense, defaults
//! are valid answers, conditions name real fields without cycles, and the knowledge-base block
//! is consistent with the steps. Errors carry JSON pointers into the schema document.

use std::collections::{BTreeMap, BTreeSet};

use super::{Field, FieldType, OnboardingSchema, RESERVED_NAMES, field_value};
use crate::error::{FieldError, pointer_join};

pub(crate) fn check_schema(schema: &OnboardingSchema, base: &str) -> Result<(), Vec<FieldError>> {
    let mut errors = Vec::new();
    let mut err =
        |path: String, code: &str, msg: String| errors.push(FieldError::new(path, code, msg));
    let steps_path = pointer_join(base, "steps");
    if schema.steps.is_empty() {
        err(steps_path.clone(), "empty", "a wizard needs at least one step".into());
    }
    let name_re = regex::Regex::new("^[a-z][a-z0-9_]{0,63}$").expect("static regex");
    let mut step_ids = BTreeSet::new();
    let mut fields: BTreeMap<&str, (&Field, String)> = BTreeMap::new();
    for (si, step) in schema.steps.iter().enumerate() {
        let sp = pointer_join(&steps_path, si);
        if !name_re.is_match(&step.id) {
            err(
                pointer_join(&sp, "id"),
                "invalid_id",
                format!("step id `{}` must be lowercase letters, digits and _", step.id),
            );
        }
        if !step_ids.insert(step.id.as_str()) {
            err(
                pointer_join(&sp, "id"),
                "duplicate",
                format!("step id `{}` is used twice", step.id),
            );
        }
        if step.sections.is_empty() && !step.knowledge_base {
            err(pointer_join(&sp, "sections"), "empty", "a step needs at least one section".into());
        }
        let mut section_ids = BTreeSet::new();
        for (ci, section) in step.sections.iter().enumerate() {
            let cp = pointer_join(&pointer_join(&sp, "sections"), ci);
            if !section_ids.insert(section.id.as_str()) {
                err(
                    pointer_join(&cp, "id"),
                    "duplicate",
                    format!("section id `{}` is used twice in this step", section.id),
                );
            }
            if section.fields.is_empty() {
                err(
                    pointer_join(&cp, "fields"),
                    "empty",
                    "a section needs at least one field".into(),
                );
            }
            for (fi, field) in section.fields.iter().enumerate() {
                let fp = pointer_join(&pointer_join(&cp, "fields"), fi);
                if !name_re.is_match(&field.name) {
                    err(
                        pointer_join(&fp, "name"),
                        "invalid_name",
                        format!(
                            "field name `{}` must be lowercase letters, digits and _",
                            field.name
                        ),
                    );
                } else if RESERVED_NAMES.contains(&field.name.as_str()) {
                    err(
                        pointer_join(&fp, "name"),
                        "reserved_name",
                        format!("field name `{}` is reserved", field.name),
                    );
                }
                if fields.insert(field.name.as_str(), (field, fp.clone())).is_some() {
                    err(
                        pointer_join(&fp, "name"),
                        "duplicate",
                        format!("field name `{}` is used twice", field.name),
                    );
                }
                for e in check_field(field, &fp) {
                    err(e.path, &e.code, e.message);
                }
            }
        }
    }
    // Conditions: real fields, not the field itself, option values that exist.
    for (name, (field, fp)) in &fields {
        for (key, cond) in [
            ("show_if", &field.show_if),
            ("hide_if", &field.hide_if),
            ("required_if", &field.required_if),
        ] {
            let Some(cond) = cond else { continue };
            let cp = pointer_join(fp, key);
            if cond.0.is_empty() {
                err(cp.clone(), "empty", "a condition needs at least one field".into());
            }
            for (target, expected) in &cond.0 {
                let tp = pointer_join(&cp, target);
                match fields.get(target.as_str()) {
                    None => err(
                        tp,
                        "unknown_field",
                        format!("condition refers to unknown field `{target}`"),
                    ),
                    Some(_) if target == name => err(
                        tp,
                        "self_reference",
                        "a field's condition cannot depend on itself".into(),
                    ),
                    Some((t, _)) if t.kind.has_options() => {
                        for v in expected.compared_values() {
                            if !t.options.iter().any(|o| v.as_str() == Some(o.value.as_str())) {
                                err(
                                    tp.clone(),
                                    "not_an_option",
                                    format!("`{v}` is not an option of `{target}`"),
                                );
                            }
                        }
                    }
                    Some((t, _)) if t.kind == FieldType::Checkbox => {
                        for v in expected.compared_values().into_iter().filter(|v| !v.is_boolean())
                        {
                            err(
                                tp.clone(),
                                "type_mismatch",
                                format!(
                                    "`{target}` is a checkbox: compare it with true or false, not {v}"
                                ),
                            );
                        }
                    }
                    Some(_) => {}
                }
            }
        }
    }
    if let Some(cycle) = visibility_cycle(&fields) {
        err(
            steps_path.clone(),
            "condition_cycle",
            format!("show_if/hide_if conditions form a cycle: {}", cycle.join(" → ")),
        );
    }
    // Knowledge-base block.
    let kb = &schema.knowledge_base;
    let kbp = pointer_join(base, "knowledge_base");
    let kb_steps: Vec<usize> =
        schema.steps.iter().enumerate().filter(|(_, s)| s.knowledge_base).map(|(i, _)| i).collect();
    if kb.required && !kb.enabled {
        err(
            pointer_join(&kbp, "required"),
            "inconsistent",
            "a required knowledge base must also be enabled".into(),
        );
    }
    if kb.enabled {
        if !kb.allow_existing && !kb.allow_create_new {
            err(
                kbp.clone(),
                "inconsistent",
                "an enabled knowledge base must allow choosing an existing one or creating one"
                    .into(),
            );
        }
        match kb_steps.as_slice() {
            [one] if kb.required && !schema.steps[*one].required => err(
                pointer_join(&pointer_join(&steps_path, one), "required"),
                "inconsistent",
                "the knowledge-base step must be required when the knowledge base is".into(),
            ),
            [_] => {}
            _ => err(steps_path.clone(), "knowledge_base_step", "exactly one step must have \"knowledge_base\": true when the knowledge base is enabled".into()),
        }
    } else if let Some(i) = kb_steps.first() {
        err(
            pointer_join(&pointer_join(&steps_path, i), "knowledge_base"),
            "inconsistent",
            "this step hosts the knowledge base, which is not enabled".into(),
        );
    }
    if errors.is_empty() { Ok(()) } else { Err(errors) }
}

fn check_field(field: &Field, fp: &str) -> Vec<FieldError> {
    let mut out = Vec::new();
    let v = &field.validation;
    let vp = pointer_join(fp, "validation");
    if field.kind.has_options() {
        if field.options.is_empty() {
            out.push(FieldError::new(
                pointer_join(fp, "options"),
                "required",
                format!("a {:?} field needs options", field.kind),
            ));
        }
        let mut seen = BTreeSet::new();
        for (i, o) in field.options.iter().enumerate() {
            if !seen.insert(o.value.as_str()) {
                out.push(FieldError::new(
                    pointer_join(&pointer_join(fp, "options"), i),
                    "duplicate",
                    format!("option `{}` is listed twice", o.value),
                ));
            }
        }
    } else if !field.options.is_empty() {
        out.push(FieldError::new(
            pointer_join(fp, "options"),
            "not_applicable",
            "only select, multi_select and radio fields take options",
        ));
    }
    if field.kind == FieldType::OauthConnect && field.providers.is_empty() {
        out.push(FieldError::new(
            pointer_join(fp, "providers"),
            "required",
            "an oauth_connect field needs providers",
        ));
    }
    if let Some(p) = &v.pattern
        && let Err(e) = field_value::anchored(p)
    {
        out.push(FieldError::new(pointer_join(&vp, "pattern"), "invalid_pattern", e));
    }
    if let (Some(a), Some(b)) = (v.min_length, v.max_length)
        && a > b
    {
        out.push(FieldError::new(
            vp.clone(),
            "inconsistent",
            "min_length is greater than max_length",
        ));
    }
    if let (Some(a), Some(b)) = (v.min, v.max)
        && a > b
    {
        out.push(FieldError::new(vp.clone(), "inconsistent", "min is greater than max"));
    }
    if let (Some(a), Some(b)) = (v.min_items, v.max_items)
        && a > b
    {
        out.push(FieldError::new(
            vp.clone(),
            "inconsistent",
            "min_items is greater than max_items",
        ));
    }
    if let Some(d) = &field.default {
        if field.kind.is_secret() {
            out.push(FieldError::new(
                pointer_join(fp, "default"),
                "not_applicable",
                "secret fields cannot have a default",
            ));
        } else if let Err(errs) = field_value::clean(field, d, &pointer_join(fp, "default")) {
            out.extend(errs);
        }
    }
    out
}

/// A cycle among the fields that `show_if`/`hide_if` conditions read, if any.
fn visibility_cycle(fields: &BTreeMap<&str, (&Field, String)>) -> Option<Vec<String>> {
    fn deps(f: &Field) -> impl Iterator<Item = &str> {
        f.show_if.iter().chain(f.hide_if.iter()).flat_map(|c| c.fields())
    }
    fn visit<'a>(
        name: &'a str,
        fields: &BTreeMap<&'a str, (&'a Field, String)>,
        stack: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(pos) = stack.iter().position(|s| *s == name) {
            let mut c: Vec<String> = stack[pos..].iter().map(|s| s.to_string()).collect();
            c.push(name.to_string());
            return Some(c);
        }
        if !done.insert(name) {
            return None;
        }
        let (field, _) = fields.get(name)?;
        stack.push(name);
        for d in deps(field) {
            if let Some(c) = visit(d, fields, stack, done) {
                return Some(c);
            }
        }
        stack.pop();
        None
    }
    let mut done = BTreeSet::new();
    fields.keys().find_map(|name| visit(name, fields, &mut Vec::new(), &mut done))
}
