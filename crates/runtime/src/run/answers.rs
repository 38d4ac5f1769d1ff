//! Texts the runtime writes itself: no-model answers, numbered passages, summaries.

use crate::events::{Citation, ToolStatus};

pub(crate) const NO_MODEL: &str = "No language model is configured for this agent";

pub(crate) const NO_MODEL_NO_KNOWLEDGE: &str = "No language model is configured for this agent, \
and it has no knowledge base to answer from, so I cannot answer yet.";

pub(crate) const NO_MODEL_SEARCH_FAILED: &str = "No language model is configured for this agent, \
and searching its knowledge base failed, so I cannot answer right now.";

pub(crate) const NO_MATCH: &str =
    "I can only help with a specific set of requests here, and this one is not among them.";

/// Passages shown to the model per hit: long enough to answer from.
const MODEL_PASSAGE_CHARS: usize = 1_500;

/// The first `max` characters of a passage, cut at a word boundary, with an ellipsis.
pub(crate) fn excerpt(text: &str, max: usize) -> String {
    let text = text.trim();
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let cut: String = text.chars().take(max).collect();
    let cut = match cut.rfind(char::is_whitespace) {
        Some(i) if i > max / 2 => &cut[..i],
        _ => cut.as_str(),
    };
    format!("{}…", cut.trim_end())
}

fn source_line(c: &Citation) -> String {
    let mut s = c.document_title.clone();
    if let Some(p) = c.page {
        s.push_str(&format!(", page {p}"));
    }
    if let Some(h) = &c.heading {
        s.push_str(&format!(", \"{h}\""));
    }
    if let Some(u) = &c.source_url {
        s.push_str(&format!(" <{u}>"));
    }
    s
}

/// Search results as the model sees them: numbered passages with their sources.
pub(crate) fn hits_for_model(cited: &[(Citation, String)]) -> String {
    if cited.is_empty() {
        return "No passages in the knowledge base match this query.".to_owned();
    }
    cited
        .iter()
        .map(|(c, content)| {
            format!("[{}] {}\n{}", c.index, source_line(c), excerpt(content, MODEL_PASSAGE_CHARS))
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

/// An answer made of passages, for the user (no model to phrase one).
pub(crate) fn passages(cited: &[(Citation, String)], no_model: bool, max: usize) -> String {
    let lead = if no_model { format!("{NO_MODEL}, ") } else { String::new() };
    if cited.is_empty() {
        let rest = "and the knowledge base has nothing that matches your question.";
        return if no_model {
            format!("{lead}{rest}")
        } else {
            "The knowledge base has nothing that matches your question.".to_owned()
        };
    }
    let head = if no_model {
        format!("{lead}so here are the most relevant passages from the knowledge base:")
    } else {
        "Here are the most relevant passages from the knowledge base:".to_owned()
    };
    let body: Vec<String> = cited
        .iter()
        .map(|(c, content)| {
            format!("[{}] {}\n— {}", c.index, excerpt(content, max), source_line(c))
        })
        .collect();
    format!("{head}\n\n{}", body.join("\n\n"))
}

/// A routed tool's result as the final answer (no model phrasing it).
pub(crate) fn from_tool_result(
    status: &ToolStatus,
    content: &str,
    cited: &[(Citation, String)],
    no_model: bool,
    max: usize,
) -> String {
    match status {
        ToolStatus::Ok if !cited.is_empty() || content.starts_with("No passages") => {
            passages(cited, no_model, max)
        }
        ToolStatus::Ok => content.to_owned(),
        _ => format!("Sorry, I could not do that: {}", content.trim_start_matches("Error: ")),
    }
}

/// One line for traces and `tool.completed`.
pub(crate) fn summary(content: &str) -> String {
    let first = content.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
    excerpt(first, 160)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_cut_at_words_and_mark_the_cut() {
        assert_eq!(excerpt("short", 10), "short");
        assert_eq!(excerpt("one two three four", 12), "one two…");
    }
}
