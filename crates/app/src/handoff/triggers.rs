//! When a conversation goes to a person without the model deciding it: the agent's
//! `escalation` settings (the capability's `triggers`), checked on the customer's message
//! before any run. Pure string work on the cached agent: nothing is read per message.

use serde_json::Value;

/// The capability schema's default fallback message.
const DEFAULT_FALLBACK: &str = "I'm connecting you with a human agent. Please hold on...";

/// Ways customers ask for a person (as [`padded`] makes them), when `explicit_request` is on.
const EXPLICIT_REQUESTS: [&str; 18] = [
    " talk to a human ",
    " speak to a human ",
    " speak with a human ",
    " talk with a human ",
    " chat with a human ",
    " talk to a person ",
    " speak to a person ",
    " speak with a person ",
    " talk to someone ",
    " speak to someone ",
    " talk to a real ",
    " speak to a real ",
    " real person ",
    " human agent ",
    " live agent ",
    " human being ",
    " connect me to a human ",
    " connect me with a human ",
];

/// An agent's escalation settings (present when its `escalation` capability is enabled).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EscalationSettings {
    keywords: Vec<String>,
    explicit_request: bool,
    /// Hand over after this many answers in a row that did not help (`None`: never).
    unanswered_threshold: Option<usize>,
    /// Hand over on a clearly negative message (`triggers.sentiment_negative`, default on).
    sentiment_negative: bool,
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
            .map(padded)
            .filter(|k| !k.trim().is_empty())
            .collect();
        let explicit_request = triggers
            .and_then(|t| t.get("explicit_request"))
            .and_then(Value::as_bool)
            .unwrap_or(true);
        let unanswered_threshold = triggers
            .and_then(|t| t.get("unanswered_threshold"))
            .and_then(Value::as_u64)
            .filter(|n| *n >= 1)
            .map(|n| n.min(50) as usize);
        let sentiment_negative = triggers
            .and_then(|t| t.get("sentiment_negative"))
            .and_then(Value::as_bool)
            .unwrap_or(true);
        Some(Self { keywords, explicit_request, unanswered_threshold, sentiment_negative })
    }

    /// Why this message hands the conversation to a person, if it does.
    pub(crate) fn trigger(&self, message: &str) -> Option<String> {
        let text = padded(message);
        if let Some(k) = self.keywords.iter().find(|k| text.contains(k.as_str())) {
            return Some(format!("the customer's message has the keyword \"{}\"", k.trim()));
        }
        if self.explicit_request && EXPLICIT_REQUESTS.iter().any(|p| text.contains(p)) {
            return Some("the customer asked for a person".to_owned());
        }
        if self.sentiment_negative
            && let Some(score) = super::sentiment::clearly_negative(message)
        {
            return Some(format!("the customer's message is very negative (score {score:.1})"));
        }
        None
    }
}

impl EscalationSettings {
    /// Why the stored conversation should go to a person before the next answer: its last
    /// `unanswered_threshold` answers in a row said the agent did not know.
    pub(crate) fn unanswered(&self, stored: &[store::Message]) -> Option<String> {
        let n = self.unanswered_threshold?;
        // Answers (not tool-call steps), and people's messages, which end a streak: a
        // conversation a person just gave back starts afresh.
        let answers = stored.iter().rev().filter(|m| {
            m.role == store::MessageRole::HumanAgent
                || (m.role == store::MessageRole::Assistant
                    && !m.content.trim().is_empty()
                    && m.tool_calls.0.as_array().is_none_or(|a| a.is_empty()))
        });
        let in_a_row = answers
            .take_while(|m| m.role == store::MessageRole::Assistant && is_unanswered(&m.content))
            .take(n)
            .count();
        (in_a_row >= n).then(|| format!("{n} answers in a row did not help the customer"))
    }
}

/// What an answer that does not help says (as [`padded`] makes it).
const DONT_KNOW: [&str; 12] = [
    " i don t know ",
    " i do not know ",
    " i m not sure ",
    " i am not sure ",
    " i couldn t find ",
    " i could not find ",
    " i can t find ",
    " i cannot find ",
    " i don t have information ",
    " i do not have information ",
    " no information about ",
    " not in the documentation ",
];

/// Whether an answer says the agent does not know.
fn is_unanswered(answer: &str) -> bool {
    let text = padded(answer);
    DONT_KNOW.iter().any(|p| text.contains(p))
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

/// Lower case, letters and digits only, single spaces, and one space at each end, so a phrase
/// made the same way matches whole words with `contains`: one allocation per text.
fn padded(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push(' ');
    for c in s.chars() {
        if c.is_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with(' ') {
            out.push(' ');
        }
    }
    if !out.ends_with(' ') {
        out.push(' ');
    }
    out
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
            keywords: keywords.iter().map(|k| padded(k)).collect(),
            explicit_request: explicit,
            unanswered_threshold: None,
            sentiment_negative: false,
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
    fn clearly_negative_messages_trigger_when_sentiment_is_on() {
        let on = EscalationSettings { sentiment_negative: true, ..settings(&[], false) };
        let angry = "This is useless, I'm furious, worst service ever";
        let reason = on.trigger(angry).expect("a negative message hands over");
        assert!(
            reason.starts_with("the customer's message is very negative (score -0."),
            "{reason}"
        );
        assert!(on.trigger("I can't log in, the error says failed").is_none());
        assert!(settings(&[], false).trigger(angry).is_none(), "off");
    }

    #[test]
    fn explicit_requests_for_a_person_trigger_when_allowed() {
        let s = settings(&[], true);
        assert!(s.trigger("Can I talk to a human, please?").is_some());
        assert!(s.trigger("I want a REAL person").is_some());
        assert!(s.trigger("What are your opening hours?").is_none());
        assert!(s.trigger("A human please").is_none());
    }

    fn answer(content: &str) -> store::Message {
        store::Message {
            id: domain::MessageId::new(),
            conversation_id: domain::ConversationId::new(),
            workspace_id: domain::WorkspaceId::new(),
            role: store::MessageRole::Assistant,
            content: content.into(),
            attachments: store::JsonText(Value::Null),
            citations: store::JsonText(Value::Null),
            tool_calls: store::JsonText(Value::Array(Vec::new())),
            run_id: None,
            tokens: None,
            created_at: 1,
            author: None,
        }
    }

    #[test]
    fn n_answers_in_a_row_that_did_not_help_hand_over() {
        let s = EscalationSettings { unanswered_threshold: Some(2), ..settings(&[], false) };
        let helped = answer("Parcels are kept at the front desk.");
        let no = answer("Sorry, I don't know that.");
        let unsure = answer("I'm not sure, I couldn't find it in the documentation.");
        assert!(s.unanswered(&[helped.clone(), no.clone(), unsure.clone()]).is_some());
        assert!(s.unanswered(&[no.clone(), helped.clone(), unsure.clone()]).is_none(), "in a row");
        assert!(s.unanswered(std::slice::from_ref(&no)).is_none(), "only one");
        assert!(settings(&[], false).unanswered(&[no.clone(), no]).is_none(), "off by default");
    }

    #[test]
    fn the_waiting_notice_says_the_place_in_the_queue() {
        assert_eq!(waiting_notice("Hold on.", 1), "Hold on. You are next in the queue.");
        assert_eq!(waiting_notice("Hold on.", 3), "Hold on. You are number 3 in the queue.");
    }
}
