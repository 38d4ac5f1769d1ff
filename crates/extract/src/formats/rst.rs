//! reStructuredText: section titles (underlined, optionally overlined) become headings, levels
//! in the order their adornment styles first appear; the rest is kept as text.

use crate::document::DocBuilder;
use crate::text::decode;
use crate::{ExtractError, Extracted, Format};

pub(crate) fn convert(bytes: &[u8]) -> Result<Extracted, ExtractError> {
    let text = decode(bytes).replace("\r\n", "\n");
    let lines: Vec<&str> = text.lines().collect();
    let mut styles: Vec<(char, bool)> = Vec::new();
    let mut md = String::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let overline = adornment(line);
        // Overlined title: ===, Title, ===
        if let Some(c) = overline
            && i + 2 < lines.len()
            && adornment(lines[i + 2]) == Some(c)
            && !lines[i + 1].trim().is_empty()
        {
            md.push_str(&heading(&mut styles, (c, true), lines[i + 1].trim()));
            i += 3;
            continue;
        }
        if !line.trim().is_empty()
            && overline.is_none()
            && i + 1 < lines.len()
            && let Some(c) = adornment(lines[i + 1])
            && lines[i + 1].trim().chars().count() >= line.trim().chars().count().min(3)
        {
            md.push_str(&heading(&mut styles, (c, false), line.trim()));
            i += 2;
            continue;
        }
        md.push_str(&convert_line(line));
        md.push('\n');
        i += 1;
    }
    let mut doc = DocBuilder::new();
    doc.markdown(&md);
    Ok(doc.finish(Format::Rst))
}

fn heading(styles: &mut Vec<(char, bool)>, style: (char, bool), title: &str) -> String {
    let level = match styles.iter().position(|s| *s == style) {
        Some(p) => p + 1,
        None => {
            styles.push(style);
            styles.len()
        }
    };
    format!("\n{} {}\n\n", "#".repeat(level.min(6)), title)
}

/// The adornment character if `line` is a run (≥ 3) of one punctuation character.
fn adornment(line: &str) -> Option<char> {
    let t = line.trim_end();
    let c = t.chars().next()?;
    (t.chars().count() >= 3 && c.is_ascii_punctuation() && t.chars().all(|x| x == c)).then_some(c)
}

/// Turns the most common inline/directive forms into their Markdown equivalents.
fn convert_line(line: &str) -> String {
    let t = line.trim_start();
    if let Some(rest) = t.strip_prefix(".. code-block::").or_else(|| t.strip_prefix(".. code::")) {
        return format!("```{}", rest.trim());
    }
    if t.starts_with(".. ") && t.ends_with("::") {
        return String::new();
    }
    line.replace("``", "`")
}
