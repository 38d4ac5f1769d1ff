//! Personality sliders and behaviour settings → model settings and prompt text, exactly as
//! persona seed §9.2: creativity → temperature 0.1–0.9, verbosity → max tokens 512–2048,
//! and the seed's modifier sentences past the 0.3 / 0.7 thresholds (strict comparisons).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::error::CatalogError;

/// The three sliders, each in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "PersonalityRepr")]
pub struct Personality {
    creativity: f64,
    verbosity: f64,
    formality: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PersonalityRepr {
    #[serde(default = "default_creativity")]
    creativity: f64,
    #[serde(default = "half")]
    verbosity: f64,
    #[serde(default = "half")]
    formality: f64,
}

fn default_creativity() -> f64 {
    0.3
}

fn half() -> f64 {
    0.5
}

impl TryFrom<PersonalityRepr> for Personality {
    type Error = CatalogError;
    fn try_from(r: PersonalityRepr) -> Result<Self, Self::Error> {
        Self::new(r.creativity, r.verbosity, r.formality)
    }
}

impl Default for Personality {
    /// The seed's defaults: creativity 0.3, verbosity 0.5, formality 0.5.
    fn default() -> Self {
        Self { creativity: 0.3, verbosity: 0.5, formality: 0.5 }
    }
}

/// Model settings derived from a personality.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LlmSettings {
    pub temperature: f64,
    pub max_tokens: u32,
}

impl Personality {
    /// A personality; every value must be a number in [0, 1].
    pub fn new(creativity: f64, verbosity: f64, formality: f64) -> Result<Self, CatalogError> {
        for (trait_name, value) in
            [("creativity", creativity), ("verbosity", verbosity), ("formality", formality)]
        {
            if !(0.0..=1.0).contains(&value) {
                return Err(CatalogError::PersonalityOutOfRange { trait_name, value });
            }
        }
        Ok(Self { creativity, verbosity, formality })
    }

    pub fn creativity(&self) -> f64 {
        self.creativity
    }

    pub fn verbosity(&self) -> f64 {
        self.verbosity
    }

    pub fn formality(&self) -> f64 {
        self.formality
    }

    /// `temperature = 0.1 + creativity × 0.8`, `max_tokens = 512 + ⌊verbosity × 1536⌋`.
    pub fn llm_settings(&self) -> LlmSettings {
        LlmSettings {
            temperature: 0.1 + self.creativity * 0.8,
            max_tokens: 512 + (self.verbosity * 1536.0).floor() as u32,
        }
    }

    /// The seed's sentences, in its order (formality, verbosity, creativity), space-joined;
    /// empty when every slider is between 0.3 and 0.7 inclusive.
    pub fn prompt_modifier(&self) -> String {
        let mut parts = Vec::new();
        if self.formality > 0.7 {
            parts.push("Use professional, formal language. Address the user respectfully.");
        } else if self.formality < 0.3 {
            parts.push("Use casual, friendly language. Be conversational and approachable.");
        }
        if self.verbosity > 0.7 {
            parts.push("Provide detailed, comprehensive responses with examples when helpful.");
        } else if self.verbosity < 0.3 {
            parts.push("Be concise and to the point. Avoid unnecessary elaboration.");
        }
        if self.creativity > 0.7 {
            parts.push("Feel free to suggest creative alternatives and think outside the box.");
        } else if self.creativity < 0.3 {
            parts.push("Stick to proven approaches and standard procedures.");
        }
        parts.join(" ")
    }
}

/// Behaviour settings of the `behavior` capability's configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Behavior {
    /// `professional`, `friendly`, `casual` or `formal`.
    pub tone: String,
    /// Primary language code (`en`, `es`, …).
    pub language: String,
    /// Answer in the user's language when it differs.
    pub multilingual: bool,
    /// `concise`, `balanced` or `detailed`.
    pub response_length: String,
    /// Extra instructions appended to the prompt.
    pub extra_instructions: Option<String>,
}

impl Default for Behavior {
    fn default() -> Self {
        Self {
            tone: "professional".into(),
            language: "en".into(),
            multilingual: false,
            response_length: "balanced".into(),
            extra_instructions: None,
        }
    }
}

/// Language names for the codes the `behavior` schema allows.
const LANGUAGES: &[(&str, &str)] = &[
    ("en", "English"),
    ("es", "Spanish"),
    ("fr", "French"),
    ("de", "German"),
    ("pt", "Portuguese"),
    ("zh", "Chinese"),
    ("ja", "Japanese"),
    ("ko", "Korean"),
    ("ar", "Arabic"),
    ("hi", "Hindi"),
];

impl Behavior {
    /// Reads the behaviour settings from an agent config (the `behavior` capability's
    /// properties), with defaults for what is missing.
    pub fn from_config(config: &Value) -> Self {
        let d = Self::default();
        let s = |k: &str, def: String| {
            config.get(k).and_then(Value::as_str).map(str::to_owned).unwrap_or(def)
        };
        Self {
            tone: s("tone", d.tone),
            language: s("language", d.language),
            multilingual: config.get("multilingual").and_then(Value::as_bool).unwrap_or(false),
            response_length: s("response_length", d.response_length),
            extra_instructions: config
                .get("system_prompt_override")
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned),
        }
    }

    /// Prompt sentences for these settings.
    pub fn prompt_text(&self) -> String {
        let mut parts: Vec<String> = Vec::new();
        parts.push(
            match self.tone.as_str() {
                "friendly" => "Keep a warm, friendly tone.",
                "casual" => "Keep a relaxed, casual tone.",
                "formal" => "Keep a formal tone.",
                _ => "Keep a professional tone.",
            }
            .to_owned(),
        );
        let lang = LANGUAGES
            .iter()
            .find(|(c, _)| *c == self.language)
            .map(|(_, n)| *n)
            .unwrap_or("English");
        parts.push(if self.multilingual {
            format!("Reply in the language the user writes in; when unsure, use {lang}.")
        } else {
            format!("Always reply in {lang}.")
        });
        match self.response_length.as_str() {
            "concise" => parts.push("Keep answers short: a few sentences at most.".into()),
            "detailed" => parts.push("Give thorough answers with the relevant details.".into()),
            _ => {}
        }
        if let Some(extra) = &self.extra_instructions {
            parts.push(format!("Additional instructions:\n{extra}"));
        }
        parts.join(" ")
    }
}
