//! The extracted document: a list of typed blocks (with page numbers) and its Markdown rendering.

use serde::{Deserialize, Serialize};

use crate::Format;

/// What kind of structure a block is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum BlockKind {
    /// A heading; `text` holds its words without the `#` marks.
    Heading {
        /// 1 for a title/`#`, up to 6.
        level: u8,
    },
    /// Running text (inline Markdown allowed).
    Paragraph,
    /// One or more list items, as Markdown.
    List,
    /// A Markdown table (header row, `| --- |` row, data rows).
    Table,
    /// Preformatted code; `text` holds the code without fences.
    Code {
        /// Language tag of the fence, if known.
        language: Option<String>,
    },
    /// A block quote, as Markdown (`> ` lines).
    Quote,
    /// An image reference `![alt](name)`; never inline data.
    Image,
}

/// One structural piece of a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Block {
    /// What the block is.
    pub kind: BlockKind,
    /// Its text (see [`BlockKind`] for what each kind holds).
    pub text: String,
    /// 1-based page (PDF), slide (PPTX) or sheet (spreadsheets) the block is on, when the format has pages.
    pub page: Option<u32>,
}

impl Block {
    /// The block as Markdown.
    pub fn to_markdown(&self) -> String {
        match &self.kind {
            BlockKind::Heading { level } => {
                format!("{} {}", "#".repeat(usize::from(*level)), self.text)
            }
            BlockKind::Code { language } => {
                let fence = if self.text.contains("```") { "~~~~" } else { "```" };
                format!("{fence}{}\n{}\n{fence}", language.as_deref().unwrap_or(""), self.text)
            }
            _ => self.text.clone(),
        }
    }
}

/// The result of extracting one document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extracted {
    /// The format that was read.
    pub format: Format,
    /// The document's title (metadata, first title-styled heading, or `<title>`), if any.
    pub title: Option<String>,
    /// The document in reading order.
    pub blocks: Vec<Block>,
    /// Number of pages/slides/sheets, when the format has them.
    pub page_count: Option<u32>,
    /// The whole document as Markdown (the blocks joined by blank lines).
    pub markdown: String,
}

impl Extracted {
    /// For each block (same index as [`Extracted::blocks`]), the headings it sits under, outermost
    /// first; a heading's own path ends with itself. A chunker uses this to label chunks.
    pub fn heading_paths(&self) -> Vec<Vec<String>> {
        let mut stack: Vec<(u8, String)> = Vec::new();
        self.blocks
            .iter()
            .map(|b| {
                if let BlockKind::Heading { level } = b.kind {
                    stack.retain(|(l, _)| *l < level);
                    stack.push((level, b.text.clone()));
                }
                stack.iter().map(|(_, t)| t.clone()).collect()
            })
            .collect()
    }
}

/// Collects blocks while a converter walks a document.
#[derive(Debug, Default)]
pub(crate) struct DocBuilder {
    pub title: Option<String>,
    pub blocks: Vec<Block>,
    pub page: Option<u32>,
    pub page_count: Option<u32>,
}

impl DocBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a block unless its text is blank.
    pub fn push(&mut self, kind: BlockKind, text: impl Into<String>) {
        let text = text.into();
        let text = text.trim_matches('\n').trim_end();
        if text.trim().is_empty() {
            return;
        }
        self.blocks.push(Block { kind, text: text.to_string(), page: self.page });
    }

    pub fn heading(&mut self, level: u8, text: impl Into<String>) {
        let text = collapse_ws(&text.into());
        self.push(BlockKind::Heading { level: level.clamp(1, 6) }, text);
    }

    pub fn paragraph(&mut self, text: impl Into<String>) {
        self.push(BlockKind::Paragraph, text);
    }

    /// Adds a table from rows of cells; the first row is the header.
    pub fn table(&mut self, rows: &[Vec<String>]) {
        if let Some(md) = markdown_table(rows) {
            self.push(BlockKind::Table, md);
        }
    }

    /// Splits Markdown into blocks and adds them (all on the current page).
    pub fn markdown(&mut self, md: &str) {
        for (kind, text) in split_markdown(md) {
            self.push(kind, text);
        }
    }

    pub fn finish(self, format: Format) -> Extracted {
        let markdown = self.blocks.iter().map(Block::to_markdown).collect::<Vec<_>>().join("\n\n");
        let title = self.title.map(|t| collapse_ws(&t)).filter(|t| !t.is_empty()).or_else(|| {
            self.blocks.iter().find_map(|b| match b.kind {
                BlockKind::Heading { level: 1 } => Some(b.text.clone()),
                _ => None,
            })
        });
        Extracted { format, title, blocks: self.blocks, page_count: self.page_count, markdown }
    }
}

/// Collapses runs of whitespace (including newlines) to single spaces.
pub(crate) fn collapse_ws(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Renders rows as a Markdown table (first row = header), padding short rows.
pub(crate) fn markdown_table(rows: &[Vec<String>]) -> Option<String> {
    let width = rows.iter().map(Vec::len).max().unwrap_or(0);
    if width == 0 {
        return None;
    }
    let cell = |s: &str| collapse_ws(s).replace('|', "\\|");
    let line = |row: &Vec<String>| {
        let cells: Vec<String> =
            (0..width).map(|i| row.get(i).map(|c| cell(c)).unwrap_or_default()).collect();
        format!("| {} |", cells.join(" | "))
    };
    let mut out = vec![line(&rows[0]), format!("| {} |", vec!["---"; width].join(" | "))];
    out.extend(rows[1..].iter().map(line));
    Some(out.join("\n"))
}

/// Splits Markdown text into blocks, line by line. Good enough for structure, not a full parser.
pub(crate) fn split_markdown(md: &str) -> Vec<(BlockKind, String)> {
    let mut out = Vec::new();
    let mut cur: Option<(BlockKind, Vec<&str>)> = None;
    let mut lines = md.lines().peekable();
    let flush = |cur: &mut Option<(BlockKind, Vec<&str>)>, out: &mut Vec<(BlockKind, String)>| {
        if let Some((kind, lines)) = cur.take() {
            out.push((kind, lines.join("\n")));
        }
    };
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        if let Some(fence) = ["```", "~~~"].into_iter().find(|f| t.starts_with(f)) {
            flush(&mut cur, &mut out);
            let lang = t.trim_start_matches(fence.chars().next().unwrap_or('`')).trim();
            let mut body = Vec::new();
            for l in lines.by_ref() {
                if l.trim_start().starts_with(fence) {
                    break;
                }
                body.push(l);
            }
            let language = (!lang.is_empty()).then(|| lang.to_string());
            out.push((BlockKind::Code { language }, body.join("\n")));
            continue;
        }
        if t.is_empty() {
            flush(&mut cur, &mut out);
            continue;
        }
        let hashes = t.bytes().take_while(|b| *b == b'#').count();
        if (1..=6).contains(&hashes) && t[hashes..].starts_with(' ') && !line.starts_with("    ") {
            flush(&mut cur, &mut out);
            let text = t[hashes..].trim().trim_end_matches('#').trim_end();
            out.push((BlockKind::Heading { level: hashes as u8 }, text.to_string()));
            continue;
        }
        // A setext underline turns the one-line paragraph above it into a heading.
        if let Some((BlockKind::Paragraph, para)) = &cur
            && para.len() == 1
            && t.len() >= 3
            && (t.bytes().all(|b| b == b'=') || t.bytes().all(|b| b == b'-'))
        {
            let level = if t.starts_with('=') { 1 } else { 2 };
            out.push((BlockKind::Heading { level }, para[0].trim().to_string()));
            cur = None;
            continue;
        }
        let kind = line_kind(t);
        match &mut cur {
            Some((k, v)) if *k == kind || (*k == BlockKind::List && line.starts_with(' ')) => {
                v.push(line)
            }
            Some((BlockKind::Paragraph, v)) if kind == BlockKind::Paragraph => v.push(line),
            _ => {
                flush(&mut cur, &mut out);
                cur = Some((kind, vec![line]));
            }
        }
    }
    flush(&mut cur, &mut out);
    out
}

fn line_kind(t: &str) -> BlockKind {
    let digits = t.bytes().take_while(u8::is_ascii_digit).count();
    if t.starts_with('|') {
        BlockKind::Table
    } else if t.starts_with('>') {
        BlockKind::Quote
    } else if t.starts_with("* ")
        || t.starts_with("- ")
        || t.starts_with("+ ")
        || (digits > 0 && (t[digits..].starts_with(". ") || t[digits..].starts_with(") ")))
    {
        BlockKind::List
    } else if t.starts_with("![") && t.ends_with(')') {
        BlockKind::Image
    } else {
        BlockKind::Paragraph
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn markdown_splits_into_typed_blocks_with_heading_paths() {
        let mut b = DocBuilder::new();
        b.markdown("# Top\n\nintro\n\n## Sub\n\n* a\n* b\n\n| x |\n| --- |\n| 1 |\n\n```rust\nfn f() {}\n```");
        let doc = b.finish(Format::Markdown);
        let kinds: Vec<_> = doc.blocks.iter().map(|b| b.kind.clone()).collect();
        assert_eq!(
            kinds,
            vec![
                BlockKind::Heading { level: 1 },
                BlockKind::Paragraph,
                BlockKind::Heading { level: 2 },
                BlockKind::List,
                BlockKind::Table,
                BlockKind::Code { language: Some("rust".into()) },
            ]
        );
        assert_eq!(doc.heading_paths()[4], vec!["Top".to_string(), "Sub".to_string()]);
        assert_eq!(doc.title.as_deref(), Some("Top"));
        assert!(doc.markdown.contains("```rust\nfn f() {}\n```"));
    }
}
