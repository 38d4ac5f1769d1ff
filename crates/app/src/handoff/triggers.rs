//! When a conversation goes to a person without the model deciding it: the agent's
//! `escalation` settings (the capability's `triggers`), checked on the customer's message
//! before any run. Pure string work on the cached agent: nothing is read per message.

use serde_json::Value;

/// The capability schema's default fallback message.
const DEFAULT_FALLBACK: &str = "I'm connecting you with a human agent. Please hold on...";

/// Ways customers ask for a person (after [`normalise`]), when `explicit_request` is on.
const EXPLICIT_REQUESTS: [&str; 18] = [
    "talk to a human",
    "speak to a human",
    "speak with a human",
    "talk with a human",
    "chat with a human",
    "talk to a person",
    "speak to a person",
    "speak with a person",
    "talk to someone",
    "speak to someone",
    "talk to a real",
    "speak to a real",
    "real person",
    "human agent",
    "live agent",
    "human being",
    "connect me to a human",
    "connect me with a human",
];

/// An agent's escalation settings (present when its `escalation` capability is enabled).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EscalationSettings {
    keywords: Vec<String>,
    explicit_request: bool,
}

impl EscalationSettings {
    /// The settings of an agent whose `escalation` capability is enabled (and not switched
    /// off with `enabled: false`).
    pub(crate) fn of(agent: &store::Agent) -> Option<Self> {
        if !capability_enabled(&agent.enabled_capabilities.0, "escalation") {
            return None;
        }
        let config = &agent.config.0;
        if config.get("enabled").and_then(Value::as_bool) == Some(false) {
            return None;
        }
        let triggers = config.get("triggers");
        let keywords = triggers
            .and_then(|t| t.get("keywords"))
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(normalise)
            .filter(|k| !k.is_empty())
            .collect();
        let explicit_request = triggers
            .and_then(|t| t.get("explicit_request"))
            .and_then(Value::as_bool)
            .unwrap_or(true);
        Some(Self { keywords, explicit_request })
    }

    /// Why this message hands the conversation to a person, if it does.
    pub(crate) fn trigger(&self, message: &str) -> Option<String> {
        let text = format!(" {} ", normalise(message));
        if let Some(k) = self.keywords.iter().find(|k| text.contains(&format!(" {k} "))) {
            return Some(format!("the customer's message has the keyword \"{k}\""));
        }
        if self.explicit_request
            && EXPLICIT_REQUESTS.iter().any(|p| text.contains(&format!(" {p} ")))
        {
            return Some("the customer asked for a person".to_owned());
        }
        None
    }
}

/// The agent's configured fallback message (or the default), for customers who wait.
pub(crate) fn fallback_message(agent: &store::Agent) -> String {
    agent
        .config
        .0
        .get("fallback_message")
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|m| !m.is_empty())
        .unwrap_or(DEFAULT_FALLBACK)
        .to_owned()
}

/// What a waiting customer is told: the fallback message and their place in the queue.
pub(crate) fn waiting_notice(fallback: &str, position: i64) -> String {
    match position {
        p if p <= 0 => fallback.to_owned(),
        1 => format!("{fallback} You are next in the queue."),
        p => format!("{fallback} You are number {p} in the queue."),
    }
}

/// Lower case, letters and digits only, single spaces.
fn normalise(s: &str) -> String {
    let mapped: String =
        s.chars().map(|c| if c.is_alphanumeric() { c.to_ascii_lowercase() } else { ' ' }).collect();
    mapped.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Whether capability `id` is among the enabled ones (a list of ids or `{id}` objects, or a
/// map of id → on).
pub(crate) fn capability_enabled(enabled: &Value, id: &str) -> bool {
    match enabled {
        Value::Array(items) => items
            .iter()
            .any(|i| i.as_str() == Some(id) || i.get("id").and_then(Value::as_str) == Some(id)),
        Value::Object(map) => {
            map.get(id).is_some_and(|v| !v.is_null() && v.as_bool() != Some(false))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(keywords: &[&str], explicit: bool) -> EscalationSettings {
        EscalationSettings {
            keywords: keywords.iter().map(|k| normalise(k)).collect(),
            explicit_request: explicit,
        }
    }

    #[test]
    fn keywords_match_whole_words_whatever_the_case_and_punctuation() {
        let s = settings(&["Help desk", "refund"], false);
        assert!(s.trigger("I need the HELP-DESK, now!").is_some());
        assert!(s.trigger("Refund?").is_some());
        assert!(s.trigger("refunds are slow").is_none(), "whole words only");
        assert!(s.trigger("Can I talk to a human?").is_none(), "explicit requests are off");
    }

    #[test]
    fn explicit_requests_for_a_person_trigger_when_allowed() {
        let s = settings(&[], true);
        assert!(s.trigger("Can I talk to a human, please?").is_some());
        assert!(s.trigger("I want a REAL person").is_some());
        assert!(s.trigger("What are your opening hours?").is_none());
        assert!(s.trigger("A human please").is_none());
    }

    #[test]
    fn the_waiting_notice_says_the_place_in_the_queue() {
        assert_eq!(waiting_notice("Hold on.", 1), "Hold on. You are next in the queue.");
        assert_eq!(waiting_notice("Hold on.", 3), "Hold on. You are number 3 in the queue.");
    }
}
