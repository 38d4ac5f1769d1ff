//! Persona seed §9.2: sliders → temperature, max tokens and prompt sentences.

use catalog::{Behavior, CatalogError, Personality};
use serde_json::json;

fn p(c: f64, v: f64, f: f64) -> Personality {
    Personality::new(c, v, f).unwrap()
}

#[test]
fn sliders_at_zero_map_to_the_low_end() {
    let s = p(0.0, 0.0, 0.0).llm_settings();
    assert!((s.temperature - 0.1).abs() < 1e-9);
    assert_eq!(s.max_tokens, 512);
    assert_eq!(
        p(0.0, 0.0, 0.0).prompt_modifier(),
        "Use casual, friendly language. Be conversational and approachable. \
         Be concise and to the point. Avoid unnecessary elaboration. \
         Stick to proven approaches and standard procedures."
    );
}

#[test]
fn sliders_at_one_half_map_to_the_middle_with_no_modifier() {
    let s = p(0.5, 0.5, 0.5).llm_settings();
    assert!((s.temperature - 0.5).abs() < 1e-9);
    assert_eq!(s.max_tokens, 512 + 768);
    assert_eq!(p(0.5, 0.5, 0.5).prompt_modifier(), "");
}

#[test]
fn sliders_at_one_map_to_the_high_end() {
    let s = p(1.0, 1.0, 1.0).llm_settings();
    assert!((s.temperature - 0.9).abs() < 1e-9);
    assert_eq!(s.max_tokens, 2048);
    assert_eq!(
        p(1.0, 1.0, 1.0).prompt_modifier(),
        "Use professional, formal language. Address the user respectfully. \
         Provide detailed, comprehensive responses with examples when helpful. \
         Feel free to suggest creative alternatives and think outside the box."
    );
}

#[test]
fn thresholds_are_strict_and_each_slider_is_independent() {
    // 0.7 and 0.3 are not past the thresholds (the seed uses > 0.7 and < 0.3).
    assert_eq!(p(0.3, 0.7, 0.7).prompt_modifier(), "");
    assert_eq!(
        p(0.29, 0.5, 0.71).prompt_modifier(),
        "Use professional, formal language. Address the user respectfully. Stick to proven approaches and standard procedures."
    );
    assert_eq!(p(0.3, 0.5, 0.7).llm_settings().max_tokens, 1280);
    assert_eq!(p(0.3, 0.333, 0.7).llm_settings().max_tokens, 512 + 511, "floor, not round");
}

#[test]
fn out_of_range_values_are_refused_in_code_and_in_json() {
    assert!(matches!(
        Personality::new(1.2, 0.5, 0.5),
        Err(CatalogError::PersonalityOutOfRange { trait_name: "creativity", .. })
    ));
    assert!(Personality::new(0.5, -0.1, 0.5).is_err());
    assert!(Personality::new(0.5, 0.5, f64::NAN).is_err());
    assert!(serde_json::from_value::<Personality>(json!({"creativity": 2})).is_err());
    assert!(serde_json::from_value::<Personality>(json!({"creativity": 0.5, "mood": 1})).is_err());
    let d: Personality = serde_json::from_value(json!({})).unwrap();
    assert_eq!(d, Personality::default());
    assert_eq!((d.creativity(), d.verbosity(), d.formality()), (0.3, 0.5, 0.5));
}

#[test]
fn behaviour_settings_become_prompt_text() {
    let b = Behavior::from_config(&json!({
        "tone": "friendly", "language": "es", "multilingual": false, "response_length": "concise",
        "system_prompt_override": "  Mention our 30-day guarantee when relevant.  "
    }));
    assert_eq!(
        b.extra_instructions.as_deref(),
        Some("Mention our 30-day guarantee when relevant.")
    );
    let text = b.prompt_text();
    assert!(text.contains("warm, friendly tone"));
    assert!(text.contains("Always reply in Spanish."));
    assert!(text.contains("Keep answers short"));
    assert!(
        text.ends_with("Additional instructions:\nMention our 30-day guarantee when relevant.")
    );
    let multi = Behavior::from_config(
        &json!({"language": "de", "multilingual": true, "response_length": "detailed"}),
    )
    .prompt_text();
    assert!(multi.contains("Reply in the language the user writes in; when unsure, use German."));
    assert!(multi.contains("thorough answers"));
    assert!(multi.contains("professional tone"), "default tone");
    assert_eq!(Behavior::from_config(&json!({})), Behavior::default());
}
