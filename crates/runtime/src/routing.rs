//! Routing rules (persona seed §9.3): patterns matched against the user's message before any
//! model call, sending it straight to a skill, to a fixed answer, or to the model with another
//! prompt.
//!
//! `contains` is a case-insensitive substring test. The seed writes its `contains` patterns as
//! alternations (`(schedule|meeting|calendar)`), so a pattern made of `|`-separated words,
//! optionally in one pair of parentheses, matches when any alternative is contained.
//! `regex` is a case-insensitive regular expression searched anywhere in the message.

use regex::RegexBuilder;
use serde::{Deserialize, Serialize};

use crate::error::RuntimeError;

/// An agent's routing rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutingRules {
    /// Tried in order; the first match wins.
    #[serde(default)]
    pub rules: Vec<RoutingRule>,
    /// When no rule matches, let the model answer (the default). When `false`, answer
    /// `no_match_answer` instead. Also decides whether a routed skill's result is handed to
    /// the model to phrase (`true`) or returned as is (`false`).
    #[serde(default = "yes")]
    pub fallback_to_llm: bool,
    /// The answer when no rule matches and `fallback_to_llm` is off.
    #[serde(default)]
    pub no_match_answer: Option<String>,
}

fn yes() -> bool {
    true
}

impl Default for RoutingRules {
    fn default() -> Self {
        Self { rules: Vec::new(), fallback_to_llm: true, no_match_answer: None }
    }
}

/// How a pattern is matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchCondition {
    Contains,
    Regex,
}

/// One rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoutingRule {
    pub pattern: String,
    pub condition: MatchCondition,
    pub target: RouteTarget,
}

/// Where a matching message goes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum RouteTarget {
    /// Call this tool (tool name or skill id) directly with the message.
    Skill { skill: String },
    /// Answer this text; no model call.
    FixedAnswer { text: String },
    /// Let the model answer with this system prompt instead of the agent's rendered one
    /// (personality, behaviour and grounding instructions still apply).
    PromptOverride { prompt: String },
}

/// The rule that matched, for the trace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RouteMatch {
    /// Position of the rule in the list.
    pub rule_index: usize,
    pub pattern: String,
    pub condition: MatchCondition,
    pub target: RouteTarget,
}

impl RoutingRules {
    /// The first rule matching `message`. A rule whose regex does not compile is an error
    /// (agent configuration should have been validated on save; see [`RoutingRules::check`]).
    pub fn evaluate(&self, message: &str) -> Result<Option<RouteMatch>, RuntimeError> {
        for (rule_index, rule) in self.rules.iter().enumerate() {
            if rule.matches(message)? {
                return Ok(Some(RouteMatch {
                    rule_index,
                    pattern: rule.pattern.clone(),
                    condition: rule.condition,
                    target: rule.target.clone(),
                }));
            }
        }
        Ok(None)
    }

    /// Checks every regex compiles (for validating agent configuration on save).
    pub fn check(&self) -> Result<(), RuntimeError> {
        self.rules.iter().try_for_each(|r| r.matches("").map(|_| ()))
    }
}

impl RoutingRule {
    /// Whether this rule matches `message`.
    pub fn matches(&self, message: &str) -> Result<bool, RuntimeError> {
        match self.condition {
            MatchCondition::Contains => {
                let hay = message.to_lowercase();
                let p = self.pattern.trim();
                let inner = p
                    .strip_prefix('(')
                    .and_then(|s| s.strip_suffix(')'))
                    .filter(|s| !s.contains(['(', ')']))
                    .unwrap_or(p);
                Ok(inner
                    .split('|')
                    .map(|alt| alt.trim().to_lowercase())
                    .any(|alt| !alt.is_empty() && hay.contains(&alt)))
            }
            MatchCondition::Regex => {
                let re = RegexBuilder::new(&self.pattern)
                    .case_insensitive(true)
                    .size_limit(1 << 20)
                    .build()
                    .map_err(|e| RuntimeError::InvalidRoutingPattern {
                        pattern: self.pattern.clone(),
                        detail: e.to_string(),
                    })?;
                Ok(re.is_match(message))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(pattern: &str, condition: MatchCondition) -> RoutingRule {
        RoutingRule {
            pattern: pattern.into(),
            condition,
            target: RouteTarget::FixedAnswer { text: "x".into() },
        }
    }

    #[test]
    fn contains_is_case_insensitive_and_understands_the_seeds_alternations() {
        let r = rule("(schedule|meeting|calendar)", MatchCondition::Contains);
        assert!(r.matches("Book a MEETING tomorrow").unwrap());
        assert!(!r.matches("what is the refund policy").unwrap());
        assert!(rule("Refund", MatchCondition::Contains).matches("my refund?").unwrap());
    }

    #[test]
    fn regex_is_case_insensitive_and_bad_patterns_are_errors() {
        let r = rule("(review|analyze).*(contract|nda)", MatchCondition::Regex);
        assert!(r.matches("Please REVIEW this NDA").unwrap());
        assert!(!r.matches("send the nda, then review").unwrap());
        let bad =
            RoutingRules { rules: vec![rule("(", MatchCondition::Regex)], ..Default::default() };
        assert!(matches!(bad.check(), Err(RuntimeError::InvalidRoutingPattern { .. })));
    }

    #[test]
    fn the_first_matching_rule_wins() {
        let rules = RoutingRules {
            rules: vec![
                rule("zebra", MatchCondition::Contains),
                rule("a", MatchCondition::Contains),
            ],
            ..Default::default()
        };
        assert_eq!(rules.evaluate("a zebra").unwrap().unwrap().rule_index, 0);
        assert_eq!(rules.evaluate("cat").unwrap().unwrap().rule_index, 1);
        assert!(rules.evaluate("dog").unwrap().is_none());
    }
}
