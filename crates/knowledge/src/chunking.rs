//! Chunking: a document's blocks become token-sized chunks that prefer structural boundaries.
//!
//! A document is a list of [`DocBlock`]s (what extraction produces: paragraphs and headings with
//! page numbers). Headings open sections; a chunk never spans two sections, so its heading path
//! ("Intro > Setup") is exact. Inside a section, text-splitter cuts at the largest boundary that
//! fits (paragraph, then sentence, then word) with a cl100k token budget and overlap. Each chunk
//! takes the page of the block it starts in.

use domain::{ChunkId, DocumentId};
use serde::{Deserialize, Serialize};
use text_splitter::{ChunkConfig, TextSplitter};
use tiktoken_rs::CoreBPE;

use crate::KnowledgeError;

/// One block of extracted text: a paragraph (or list, table, …) or a heading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocBlock {
    /// The block's text (Markdown is fine).
    pub text: String,
    /// The 1-based page the block is on, when the format has pages.
    pub page: Option<u32>,
    /// `Some(1..=6)` when the block is a heading of that level.
    pub heading_level: Option<u8>,
}

impl DocBlock {
    /// A body block.
    pub fn text(text: impl Into<String>, page: Option<u32>) -> Self {
        Self { text: text.into(), page, heading_level: None }
    }

    /// A heading block.
    pub fn heading(level: u8, text: impl Into<String>, page: Option<u32>) -> Self {
        Self { text: text.into(), page, heading_level: Some(level) }
    }
}

/// A document ready to be chunked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DocumentInput {
    /// The document the chunks belong to.
    pub document_id: DocumentId,
    /// Its title, shown in citations.
    pub title: String,
    /// Where it came from (URL or file name), shown in citations.
    pub source_url: Option<String>,
    /// Its text, in reading order.
    pub blocks: Vec<DocBlock>,
}

/// Chunk size and overlap, in cl100k tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkingConfig {
    /// Target (and maximum) tokens per chunk: 256..=2048, default 512.
    pub chunk_tokens: usize,
    /// Tokens shared by neighbouring chunks of a section: 0..=200, default 50.
    pub overlap_tokens: usize,
}

impl Default for ChunkingConfig {
    fn default() -> Self {
        Self { chunk_tokens: 512, overlap_tokens: 50 }
    }
}

impl ChunkingConfig {
    /// Checks the ranges the product allows.
    pub fn validate(&self) -> Result<(), KnowledgeError> {
        if !(256..=2048).contains(&self.chunk_tokens) {
            return Err(KnowledgeError::InvalidConfig(format!(
                "chunk size must be 256..=2048 tokens, got {}",
                self.chunk_tokens
            )));
        }
        if self.overlap_tokens > 200 {
            return Err(KnowledgeError::InvalidConfig(format!(
                "chunk overlap must be 0..=200 tokens, got {}",
                self.overlap_tokens
            )));
        }
        Ok(())
    }
}

/// A chunk with everything a citation needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Chunk {
    /// This chunk's id.
    pub chunk_id: ChunkId,
    /// The document it comes from.
    pub document_id: DocumentId,
    /// That document's title.
    pub document_title: String,
    /// That document's source.
    pub source_url: Option<String>,
    /// The page the chunk starts on.
    pub page: Option<u32>,
    /// The heading path, e.g. "Intro > Setup"; `None` before the first heading.
    pub heading: Option<String>,
    /// Position of the chunk in its document, from 0.
    pub ordinal: u32,
    /// Its length in cl100k tokens.
    pub token_count: u32,
    /// Its text.
    pub content: String,
}

/// Counts cl100k tokens.
pub fn count_tokens(text: &str) -> usize {
    tiktoken_rs::cl100k_base_singleton().encode_ordinary(text).len()
}

/// Splits documents into chunks; cheap to share (build once, reuse).
pub struct Chunker {
    config: ChunkingConfig,
    splitter: TextSplitter<&'static CoreBPE>,
}

impl std::fmt::Debug for Chunker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunker").field("config", &self.config).finish()
    }
}

/// A run of blocks under one heading path; chunks never cross sections.
struct Section {
    heading: Option<String>,
    text: String,
    /// (byte offset in `text`, page) for each block, in order.
    pages: Vec<(usize, Option<u32>)>,
}

impl Section {
    fn page_at(&self, offset: usize) -> Option<u32> {
        let i = self.pages.partition_point(|(start, _)| *start <= offset);
        self.pages[i.saturating_sub(1)].1
    }

    fn push(&mut self, text: &str, page: Option<u32>) {
        if !self.text.is_empty() {
            self.text.push_str("\n\n");
        }
        self.pages.push((self.text.len(), page));
        self.text.push_str(text);
    }
}

impl Chunker {
    /// A chunker for `config` (validated).
    pub fn new(config: ChunkingConfig) -> Result<Self, KnowledgeError> {
        config.validate()?;
        let bpe = tiktoken_rs::cl100k_base_singleton();
        let chunk_config = ChunkConfig::new(config.chunk_tokens)
            .with_sizer(bpe)
            .with_overlap(config.overlap_tokens)
            .map_err(|e| KnowledgeError::InvalidConfig(e.to_string()))?;
        Ok(Self { config, splitter: TextSplitter::new(chunk_config) })
    }

    /// The configuration in force.
    pub fn config(&self) -> ChunkingConfig {
        self.config
    }

    /// Cuts a document into chunks, numbered from 0 in reading order.
    pub fn chunk(&self, doc: &DocumentInput) -> Vec<Chunk> {
        let bpe = tiktoken_rs::cl100k_base_singleton();
        let mut chunks = Vec::new();
        for section in sections(&doc.blocks) {
            let mut emit = |offset: usize, content: &str, tokens: usize| {
                chunks.push(Chunk {
                    chunk_id: ChunkId::new(),
                    document_id: doc.document_id,
                    document_title: doc.title.clone(),
                    source_url: doc.source_url.clone(),
                    page: section.page_at(offset),
                    heading: section.heading.clone(),
                    ordinal: chunks.len() as u32,
                    token_count: tokens as u32,
                    content: content.to_owned(),
                });
            };
            let whole = section.text.trim();
            if whole.is_empty() {
                continue;
            }
            // Most sections fit in one chunk: one tokenisation instead of the splitter's search.
            let tokens = bpe.encode_ordinary(whole).len();
            if tokens <= self.config.chunk_tokens {
                let offset = whole.as_ptr() as usize - section.text.as_ptr() as usize;
                emit(offset, whole, tokens);
                continue;
            }
            for (offset, piece) in self.splitter.chunk_indices(&section.text) {
                emit(offset, piece, bpe.encode_ordinary(piece).len());
            }
        }
        chunks
    }
}

/// Groups blocks into sections, tracking the heading path.
fn sections(blocks: &[DocBlock]) -> Vec<Section> {
    let mut path: Vec<(u8, String)> = Vec::new();
    let mut out: Vec<Section> = Vec::new();
    let mut current = Section { heading: None, text: String::new(), pages: Vec::new() };
    for block in blocks {
        let text = block.text.trim();
        if text.is_empty() {
            continue;
        }
        if let Some(level) = block.heading_level {
            out.push(std::mem::replace(
                &mut current,
                Section { heading: None, text: String::new(), pages: Vec::new() },
            ));
            path.retain(|(l, _)| *l < level);
            path.push((level, text.trim_start_matches('#').trim().to_owned()));
            current.heading =
                Some(path.iter().map(|(_, t)| t.as_str()).collect::<Vec<_>>().join(" > "));
            // The heading's words belong to its section's text: they are often the best match.
            current.push(text.trim_start_matches('#').trim(), block.page);
        } else {
            current.push(text, block.page);
        }
    }
    out.push(current);
    out.retain(|s| !s.text.trim().is_empty());
    out
}

/// Parses Markdown into blocks: `#` headings (outside code fences), blank-line separated
/// paragraphs, and page markers `<!-- page: N -->` (or `<!-- page N -->`) or form feeds, which
/// move to page N (or the next page).
pub fn blocks_from_markdown(markdown: &str) -> Vec<DocBlock> {
    let mut blocks = Vec::new();
    let mut page: Option<u32> = None;
    let mut para = String::new();
    let mut in_fence = false;
    let flush = |para: &mut String, blocks: &mut Vec<DocBlock>, page: Option<u32>| {
        if !para.trim().is_empty() {
            blocks.push(DocBlock::text(para.trim_end().to_owned(), page));
        }
        para.clear();
    };
    for raw in markdown.split_inclusive('\n') {
        for (i, line) in raw.split('\u{c}').enumerate() {
            if i > 0 {
                flush(&mut para, &mut blocks, page);
                page = Some(page.map_or(2, |p| p + 1));
            }
            let trimmed = line.trim();
            if trimmed.starts_with("```") || trimmed.starts_with("~~~") {
                in_fence = !in_fence;
            }
            if !in_fence {
                if let Some(n) = page_marker(trimmed) {
                    flush(&mut para, &mut blocks, page);
                    page = Some(n);
                    continue;
                }
                if let Some((level, title)) = heading(trimmed) {
                    flush(&mut para, &mut blocks, page);
                    blocks.push(DocBlock::heading(level, title, page));
                    continue;
                }
                if trimmed.is_empty() {
                    flush(&mut para, &mut blocks, page);
                    continue;
                }
            }
            para.push_str(line);
        }
    }
    flush(&mut para, &mut blocks, page);
    blocks
}

fn page_marker(line: &str) -> Option<u32> {
    let inner = line.strip_prefix("<!--")?.strip_suffix("-->")?.trim();
    let rest = inner.strip_prefix("page")?.trim_start_matches([':', ' ']);
    rest.trim().parse().ok()
}

fn heading(line: &str) -> Option<(u8, &str)> {
    let hashes = line.bytes().take_while(|b| *b == b'#').count();
    if !(1..=6).contains(&hashes) {
        return None;
    }
    let rest = &line[hashes..];
    if !rest.starts_with(' ') {
        return None;
    }
    let title = rest.trim().trim_end_matches('#').trim();
    (!title.is_empty()).then_some((hashes as u8, title))
}
