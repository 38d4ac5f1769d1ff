//! "Describe what you need": turns a sentence into a suggested template, capabilities and
//! knowledge. With a model configured the model chooses among the templates available to the
//! workspace (its answer is checked against them); without one, or when the model's answer is
//! unusable, templates are ranked by the words they share with the sentence.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::catalog_api::TemplateView;
use crate::{App, AppError, Principal};

/// A suggestion for a need.
#[derive(Debug, Clone, Serialize)]
pub struct Suggestion {
    /// Template slugs, best first (only templates available on the workspace's plan).
    pub templates: Vec<String>,
    /// Capabilities to turn on (of the first template).
    pub capabilities: Vec<String>,
    /// What to put in the knowledge base, in words.
    pub knowledge: Option<String>,
    /// Why, in one sentence.
    pub reason: Option<String>,
    /// `model` or `keywords`.
    pub source: &'static str,
}

#[derive(Deserialize)]
struct ModelChoice {
    template: String,
    #[serde(default)]
    capabilities: Vec<String>,
    knowledge: Option<String>,
    reason: Option<String>,
}

const STOP: &[&str] = &[
    "the",
    "and",
    "for",
    "our",
    "with",
    "that",
    "this",
    "who",
    "can",
    "help",
    "need",
    "want",
    "someone",
    "something",
    "from",
    "about",
    "all",
    "any",
];

/// Templates that share words with `need`, best first. A crude stem (the first six letters)
/// lets "documentation" find "documents".
pub fn keyword_rank(templates: &[TemplateView], need: &str) -> Vec<String> {
    let words: Vec<String> = need
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() > 2)
        .map(str::to_lowercase)
        .filter(|w| !STOP.contains(&w.as_str()))
        .map(|w| w.chars().take(6).collect())
        .collect();
    let mut ranked: Vec<(&str, usize)> = templates
        .iter()
        .map(|t| {
            let hay = format!(
                "{} {} {} {} {}",
                t.name,
                t.role.as_deref().unwrap_or(""),
                t.description,
                t.category,
                t.capabilities.join(" ")
            )
            .to_lowercase();
            (t.slug.as_str(), words.iter().filter(|w| hay.contains(w.as_str())).count())
        })
        .filter(|(_, score)| *score > 0)
        .collect();
    ranked.sort_by_key(|r| std::cmp::Reverse(r.1));
    ranked.into_iter().map(|(slug, _)| slug.to_owned()).collect()
}

/// The first JSON object in a model's answer (models like to wrap JSON in prose or fences).
fn json_object(text: &str) -> Option<&str> {
    let start = text.find('{')?;
    let end = text.rfind('}')?;
    (end > start).then(|| &text[start..=end])
}

impl App {
    /// Suggests templates for a need described in a sentence.
    pub async fn suggest_templates(
        &self,
        p: &Principal,
        need: &str,
    ) -> Result<Suggestion, AppError> {
        let need = need.trim();
        if need.is_empty() || need.chars().count() > 1000 {
            return Err(AppError::field(
                "/need",
                "invalid",
                "describe the need in one sentence (up to 1000 characters)",
            ));
        }
        let templates: Vec<TemplateView> =
            self.templates(p, None, None).await?.into_iter().filter(|t| t.is_available).collect();
        if let Some(s) = self.ask_model(&templates, need).await {
            return Ok(s);
        }
        let ranked = keyword_rank(&templates, need);
        let capabilities = ranked
            .first()
            .and_then(|slug| templates.iter().find(|t| t.slug == *slug))
            .map(|t| t.default_capabilities.clone())
            .unwrap_or_default();
        Ok(Suggestion {
            templates: ranked,
            capabilities,
            knowledge: None,
            reason: None,
            source: "keywords",
        })
    }

    async fn ask_model(&self, templates: &[TemplateView], need: &str) -> Option<Suggestion> {
        let model = self.engine().model.clone()?;
        let mut catalogue = String::new();
        for t in templates {
            catalogue.push_str(&format!(
                "- {}: {} — {} (capabilities: {})\n",
                t.slug,
                t.name,
                t.description,
                t.capabilities.join(", ")
            ));
        }
        let request = llm::ChatRequest {
            messages: vec![
                llm::Message::system(
                    "You help a business owner add an AI team member. Choose the one template that best fits their need from the list, the capabilities to turn on (only from that template's list), and what documents its knowledge base should hold. Reply with JSON only: {\"template\": \"<slug>\", \"capabilities\": [\"…\"], \"knowledge\": \"…\", \"reason\": \"…\"}.",
                ),
                llm::Message::user(format!("Templates:\n{catalogue}\nNeed: {need}")),
            ],
            temperature: Some(0.0),
            max_tokens: Some(300),
            timeout: Some(Duration::from_secs(15)),
            ..Default::default()
        };
        let answer = match model.chat(&request).await {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(error = %e, "template suggestion: the model failed; using keywords");
                return None;
            }
        };
        let choice: ModelChoice = json_object(&answer.content)
            .and_then(|j| serde_json::from_str(j).ok())
            .or_else(|| {
                tracing::warn!("template suggestion: the model's answer is not the JSON asked for");
                None
            })?;
        let chosen = templates.iter().find(|t| t.slug == choice.template)?;
        let capabilities: Vec<String> =
            choice.capabilities.into_iter().filter(|c| chosen.capabilities.contains(c)).collect();
        let mut ranked = vec![chosen.slug.clone()];
        ranked.extend(keyword_rank(templates, need).into_iter().filter(|s| *s != chosen.slug));
        Some(Suggestion {
            templates: ranked,
            capabilities: if capabilities.is_empty() {
                chosen.default_capabilities.clone()
            } else {
                capabilities
            },
            knowledge: choice.knowledge.filter(|k| !k.trim().is_empty()),
            reason: choice.reason.filter(|r| !r.trim().is_empty()),
            source: "model",
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn json_is_found_inside_prose_and_fences() {
        assert_eq!(super::json_object("```json\n{\"a\": 1}\n```"), Some("{\"a\": 1}"));
        assert_eq!(super::json_object("no json here"), None);
    }
}
