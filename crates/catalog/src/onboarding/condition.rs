//! Conditions of `show_if`, `hide_if` and `required_if` (hub seed "Conditional Logic"):
//! `{"field": "value"}` equals, `{"field": ["a", "b"]}` in list, `{"field": null}` is empty,
//! `{"field": {"not": …}}` negates any of these. Several fields in one condition must all hold.
//! When the answer is a list (a `multi_select`), "equals" and "in list" test membership.

use std::collections::BTreeMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

/// A condition: every named field must match its expectation.
#[derive(Debug, Clone, PartialEq)]
pub struct Condition(pub BTreeMap<String, Expected>);

/// What a condition expects of one field's answer.
#[derive(Debug, Clone, PartialEq)]
pub enum Expected {
    /// The answer equals this value (or, for a list answer, contains it).
    Equals(Value),
    /// The answer is one of these values (or, for a list answer, contains one of them).
    InList(Vec<Value>),
    /// The answer is missing, `null`, an empty string, list or object.
    Empty,
    /// The inner expectation does not hold.
    Not(Box<Expected>),
}

impl Expected {
    fn from_json(v: &Value) -> Result<Self, String> {
        Ok(match v {
            Value::Null => Self::Empty,
            Value::Array(items) => Self::InList(items.clone()),
            Value::Object(map) => match (map.len(), map.get("not")) {
                (1, Some(inner)) => Self::Not(Box::new(Self::from_json(inner)?)),
                _ => return Err("an object condition must be exactly {\"not\": …}".to_owned()),
            },
            other => Self::Equals(other.clone()),
        })
    }

    fn to_json(&self) -> Value {
        match self {
            Self::Equals(v) => v.clone(),
            Self::InList(items) => Value::Array(items.clone()),
            Self::Empty => Value::Null,
            Self::Not(inner) => serde_json::json!({ "not": inner.to_json() }),
        }
    }

    /// Whether `answer` (None = not answered, or hidden) meets this expectation.
    pub fn matches(&self, answer: Option<&Value>) -> bool {
        match self {
            Self::Empty => is_empty(answer),
            Self::Equals(expected) => answer.is_some_and(|a| contains_or_eq(a, expected)),
            Self::InList(list) => {
                answer.is_some_and(|a| list.iter().any(|expected| contains_or_eq(a, expected)))
            }
            Self::Not(inner) => !inner.matches(answer),
        }
    }

    /// Values this expectation compares against (for checking them against a field's options).
    pub(crate) fn compared_values(&self) -> Vec<&Value> {
        match self {
            Self::Equals(v) => vec![v],
            Self::InList(items) => items.iter().collect(),
            Self::Empty => Vec::new(),
            Self::Not(inner) => inner.compared_values(),
        }
    }
}

impl Condition {
    /// Whether every field meets its expectation; `answer` looks up an answer by field name.
    pub fn holds<'a>(&self, answer: impl Fn(&str) -> Option<&'a Value>) -> bool {
        self.0.iter().all(|(name, expected)| expected.matches(answer(name)))
    }

    /// Field names this condition reads.
    pub fn fields(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

/// Missing, `null`, blank text, an empty list or an empty object.
pub(crate) fn is_empty(v: Option<&Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
        Some(_) => false,
    }
}

fn contains_or_eq(answer: &Value, expected: &Value) -> bool {
    match answer {
        Value::Array(items) if !expected.is_array() => items.iter().any(|i| json_eq(i, expected)),
        _ => json_eq(answer, expected),
    }
}

/// JSON equality where `1` equals `1.0`.
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        _ => a == b,
    }
}

impl<'de> Deserialize<'de> for Condition {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = BTreeMap::<String, Value>::deserialize(d)?;
        let mut out = BTreeMap::new();
        for (name, v) in map {
            let e = Expected::from_json(&v)
                .map_err(|m| serde::de::Error::custom(format!("condition on `{name}`: {m}")))?;
            out.insert(name, e);
        }
        Ok(Self(out))
    }
}

impl Serialize for Condition {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let map: BTreeMap<&String, Value> = self.0.iter().map(|(k, e)| (k, e.to_json())).collect();
        map.serialize(s)
    }
}
