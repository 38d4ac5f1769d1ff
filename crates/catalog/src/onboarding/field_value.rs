//! Validation of one answer against its field's type and rules. Each function returns the
//! cleaned value (trimmed text, lower-cased email, compact phone number) or the errors, with
//! JSON pointers under the field's own path. Emptiness and `required` are decided by the caller.

use serde_json::{Map, Value};

use super::{Field, FieldType, FieldValidation};
use crate::error::{FieldError, pointer_join};

/// Image formats accepted by `image_upload` when the field does not list its own.
const IMAGE_FORMATS: &[&str] = &["jpg", "jpeg", "png", "gif", "webp"];

type Checked = Result<Value, Vec<FieldError>>;

fn fail(path: &str, code: &str, message: impl Into<String>) -> Checked {
    Err(vec![FieldError::new(path, code, message)])
}

/// Validates and cleans a non-empty answer for `field`.
pub(crate) fn clean(field: &Field, value: &Value, path: &str) -> Checked {
    let v = &field.validation;
    match field.kind {
        FieldType::Text => text(value, path, v, 1_000, true),
        FieldType::Textarea => text(value, path, v, 10_000, false),
        FieldType::Richtext => text(value, path, v, 50_000, false),
        FieldType::Email => email(value, path),
        FieldType::Url => url(value, path),
        FieldType::UrlList => list(value, path, v, 50, url),
        FieldType::Phone => phone(value, path),
        FieldType::Number => number(value, path, v),
        FieldType::Select | FieldType::Radio => option(field, value, path),
        FieldType::MultiSelect => {
            list(value, path, v, field.options.len(), |item, p| option(field, item, p))
        }
        FieldType::Checkbox => match value {
            Value::Bool(_) => Ok(value.clone()),
            _ => fail(path, "type", "must be true or false"),
        },
        FieldType::FileUpload => file(field, value, path, &[]),
        FieldType::FileUploadMulti => list(value, path, v, 20, |item, p| file(field, item, p, &[])),
        FieldType::ImageUpload => file(field, value, path, IMAGE_FORMATS),
        FieldType::OauthConnect => oauth(field, value, path),
        FieldType::ApiKeyInput => api_key(value, path, v),
        FieldType::WebhookConfig => webhook(value, path),
        FieldType::FieldMapper => mapper(field, value, path),
        FieldType::CrmUserSelect => text(value, path, v, 200, true),
    }
}

fn as_str<'a>(value: &'a Value, path: &str) -> Result<&'a str, Vec<FieldError>> {
    value.as_str().ok_or_else(|| vec![FieldError::new(path, "type", "must be text")])
}

fn text(value: &Value, path: &str, v: &FieldValidation, cap: usize, trim: bool) -> Checked {
    let raw = as_str(value, path)?;
    let s = if trim { raw.trim() } else { raw };
    let len = s.chars().count();
    let max = v.max_length.unwrap_or(cap).min(cap);
    if let Some(min) = v.min_length.filter(|m| len < *m) {
        return fail(path, "min_length", format!("must be at least {min} characters"));
    }
    if len > max {
        return fail(path, "max_length", format!("must be at most {max} characters"));
    }
    if let Some(p) = &v.pattern {
        let re = anchored(p).map_err(|e| vec![FieldError::new(path, "pattern", e)])?;
        if !re.is_match(s) {
            return fail(path, "pattern", "is not in the expected format");
        }
    }
    Ok(Value::String(s.to_owned()))
}

/// Compiles a field pattern so it must match the whole text.
pub(crate) fn anchored(pattern: &str) -> Result<regex::Regex, String> {
    regex::Regex::new(&format!("^(?:{pattern})$")).map_err(|e| format!("invalid pattern: {e}"))
}

fn email(value: &Value, path: &str) -> Checked {
    match domain::Email::parse(as_str(value, path)?) {
        Ok(e) => Ok(Value::String(e.as_str().to_owned())),
        Err(_) => fail(path, "invalid_email", "is not a valid email address"),
    }
}

/// An absolute `http`/`https` URL with a host.
pub(crate) fn is_web_url(s: &str) -> bool {
    url::Url::parse(s).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty())
    })
}

fn url(value: &Value, path: &str) -> Checked {
    let s = as_str(value, path)?.trim();
    if is_web_url(s) {
        Ok(Value::String(s.to_owned()))
    } else {
        fail(path, "invalid_url", "must be a web address starting with http:// or https://")
    }
}

fn phone(value: &Value, path: &str) -> Checked {
    let s = as_str(value, path)?.trim();
    let body = s.strip_prefix('+').unwrap_or(s);
    let allowed = body.chars().all(|c| c.is_ascii_digit() || " -.()".contains(c));
    let digits: String = body.chars().filter(char::is_ascii_digit).collect();
    if !allowed || !(7..=15).contains(&digits.len()) {
        return fail(
            path,
            "invalid_phone",
            "must be a phone number of 7 to 15 digits, optionally starting with +",
        );
    }
    let plus = if s.starts_with('+') { "+" } else { "" };
    Ok(Value::String(format!("{plus}{digits}")))
}

fn number(value: &Value, path: &str, v: &FieldValidation) -> Checked {
    let Some(n) = value.as_f64() else { return fail(path, "type", "must be a number") };
    if v.integer && n.fract() != 0.0 {
        return fail(path, "integer", "must be a whole number");
    }
    if let Some(min) = v.min.filter(|m| n < *m) {
        return fail(path, "minimum", format!("must be at least {min}"));
    }
    if let Some(max) = v.max.filter(|m| n > *m) {
        return fail(path, "maximum", format!("must be at most {max}"));
    }
    Ok(value.clone())
}

fn option(field: &Field, value: &Value, path: &str) -> Checked {
    let s = as_str(value, path)?;
    if field.options.iter().any(|o| o.value == s) {
        Ok(value.clone())
    } else {
        let allowed = field.options.iter().map(|o| o.value.as_str()).collect::<Vec<_>>().join(", ");
        fail(path, "not_an_option", format!("must be one of: {allowed}"))
    }
}

fn list(
    value: &Value,
    path: &str,
    v: &FieldValidation,
    cap: usize,
    item: impl Fn(&Value, &str) -> Checked,
) -> Checked {
    let Some(items) = value.as_array() else { return fail(path, "type", "must be a list") };
    let max = v.max_items.unwrap_or(cap).min(cap.max(1));
    if let Some(min) = v.min_items.filter(|m| items.len() < *m) {
        return fail(path, "min_items", format!("needs at least {min} item(s)"));
    }
    if items.len() > max {
        return fail(path, "max_items", format!("takes at most {max} item(s)"));
    }
    let mut out = Vec::with_capacity(items.len());
    let mut errors = Vec::new();
    for (i, it) in items.iter().enumerate() {
        let p = pointer_join(path, i);
        match item(it, &p) {
            Ok(clean) if out.contains(&clean) => {
                errors.push(FieldError::new(p, "duplicate", "appears more than once"))
            }
            Ok(clean) => out.push(clean),
            Err(e) => errors.extend(e),
        }
    }
    if errors.is_empty() { Ok(Value::Array(out)) } else { Err(errors) }
}

/// Checks that an object has only `allowed` keys.
fn only_keys(
    obj: &Map<String, Value>,
    allowed: &[&str],
    path: &str,
) -> Result<(), Vec<FieldError>> {
    let unknown: Vec<FieldError> = obj
        .keys()
        .filter(|k| !allowed.contains(&k.as_str()))
        .map(|k| {
            FieldError::new(
                pointer_join(path, k),
                "unknown_key",
                format!("`{k}` is not expected here"),
            )
        })
        .collect();
    if unknown.is_empty() { Ok(()) } else { Err(unknown) }
}

fn required_str<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<&'a str, Vec<FieldError>> {
    match obj.get(key).and_then(Value::as_str).map(str::trim) {
        Some(s) if !s.is_empty() => Ok(s),
        _ => Err(vec![FieldError::new(
            pointer_join(path, key),
            "required",
            format!("`{key}` is required"),
        )]),
    }
}

/// An uploaded file reference: `{file_id, filename, size_bytes, content_type?}`; the bytes were
/// uploaded separately and the app checks `file_id` belongs to the workspace.
fn file(field: &Field, value: &Value, path: &str, default_formats: &[&str]) -> Checked {
    let Some(obj) = value.as_object() else {
        return fail(path, "type", "must be an uploaded file {file_id, filename, size_bytes}");
    };
    only_keys(obj, &["file_id", "filename", "size_bytes", "content_type"], path)?;
    required_str(obj, "file_id", path)?;
    let filename = required_str(obj, "filename", path)?;
    let Some(size) = obj.get("size_bytes").and_then(Value::as_u64) else {
        return fail(
            &pointer_join(path, "size_bytes"),
            "required",
            "`size_bytes` must be a whole number",
        );
    };
    let ext = filename.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
    let mut formats: Vec<String> =
        field.validation.formats.iter().map(|f| f.to_ascii_lowercase()).collect();
    if let Some(accept) = &field.accept {
        formats.extend(
            accept.split(',').map(|a| a.trim().trim_start_matches('.').to_ascii_lowercase()),
        );
    }
    if formats.is_empty() {
        formats.extend(default_formats.iter().map(|f| f.to_string()));
    }
    if !formats.is_empty() && !formats.contains(&ext) {
        return fail(
            &pointer_join(path, "filename"),
            "file_type",
            format!("must be one of: {}", formats.join(", ")),
        );
    }
    if let Some(mb) = field.validation.max_size_mb
        && size as f64 > mb * 1024.0 * 1024.0
    {
        return fail(
            &pointer_join(path, "size_bytes"),
            "file_too_large",
            format!("must be at most {mb} MB"),
        );
    }
    Ok(value.clone())
}

/// A connected account: `{provider, connection_id}`; the app checks the connection exists.
fn oauth(field: &Field, value: &Value, path: &str) -> Checked {
    let Some(obj) = value.as_object() else {
        return fail(path, "type", "must be a connection {provider, connection_id}");
    };
    only_keys(obj, &["provider", "connection_id"], path)?;
    let provider = required_str(obj, "provider", path)?;
    required_str(obj, "connection_id", path)?;
    if !field.providers.iter().any(|p| p == provider) {
        return fail(
            &pointer_join(path, "provider"),
            "unknown_provider",
            format!("must be one of: {}", field.providers.join(", ")),
        );
    }
    Ok(value.clone())
}

fn api_key(value: &Value, path: &str, v: &FieldValidation) -> Checked {
    let s = as_str(value, path)?.trim();
    if s.chars().any(char::is_whitespace) {
        return fail(path, "whitespace", "an API key cannot contain spaces");
    }
    let rules = FieldValidation { min_length: Some(v.min_length.unwrap_or(8)), ..v.clone() };
    text(&Value::String(s.to_owned()), path, &rules, 512, true)
}

/// `{url, secret?}`: where to POST, and the shared secret used to sign the requests.
fn webhook(value: &Value, path: &str) -> Checked {
    let Some(obj) = value.as_object() else { return fail(path, "type", "must be {url, secret}") };
    only_keys(obj, &["url", "secret"], path)?;
    let u = required_str(obj, "url", path)?;
    if !is_web_url(u) {
        return fail(
            &pointer_join(path, "url"),
            "invalid_url",
            "must be a web address starting with http:// or https://",
        );
    }
    if let Some(secret) = obj.get("secret") {
        match secret.as_str() {
            Some(s) if s.chars().count() >= 16 && !s.chars().any(char::is_whitespace) => {}
            _ => {
                return fail(
                    &pointer_join(path, "secret"),
                    "weak_secret",
                    "must be at least 16 characters without spaces",
                );
            }
        }
    }
    Ok(value.clone())
}

/// `{"source field": "target field", …}`.
fn mapper(field: &Field, value: &Value, path: &str) -> Checked {
    let Some(obj) = value.as_object() else {
        return fail(path, "type", "must map field names to field names");
    };
    let m = field.mapping.clone().unwrap_or_default();
    let v = &field.validation;
    if let Some(min) = v.min_items.filter(|n| obj.len() < *n) {
        return fail(path, "min_items", format!("needs at least {min} mapping(s)"));
    }
    if let Some(max) = v.max_items.filter(|n| obj.len() > *n) {
        return fail(path, "max_items", format!("takes at most {max} mapping(s)"));
    }
    let mut errors = Vec::new();
    for (source, target) in obj {
        let p = pointer_join(path, source);
        if !m.source_fields.is_empty() && !m.source_fields.contains(source) {
            errors.push(FieldError::new(
                &p,
                "unknown_source_field",
                format!("`{source}` is not a source field"),
            ));
        }
        match target.as_str() {
            Some(t) if m.target_fields.is_empty() || m.target_fields.iter().any(|f| f == t) => {}
            Some(t) => errors.push(FieldError::new(
                &p,
                "unknown_target_field",
                format!("`{t}` is not a target field"),
            )),
            None => errors.push(FieldError::new(&p, "type", "must be a field name")),
        }
    }
    if errors.is_empty() { Ok(value.clone()) } else { Err(errors) }
}
