//! Shared helpers: documents, a deterministic test embedder, an index in a temp dir.

use std::sync::Arc;

use async_trait::async_trait;
use domain::DocumentId;
use knowledge::{
    Chunk, Chunker, ChunkingConfig, DocBlock, DocumentInput, Embedder, IndexConfig, KnowledgeError,
    KnowledgeIndex,
};

/// Embeds by concept: each axis is a group of synonyms, so "car" and "automobile" land on the
/// same axis. It lets tests make dense search find what BM25 cannot, deterministically.
pub struct ConceptEmbedder;

const CONCEPTS: &[&[&str]] = &[
    &["car", "automobile", "vehicle"],
    &["repair", "maintenance", "fix", "service"],
    &["dog", "puppy", "canine"],
    &["price", "cost", "invoice", "invoices", "billing"],
    &["password", "login", "credential"],
    &["holiday", "vacation", "leave"],
];

#[async_trait]
impl Embedder for ConceptEmbedder {
    fn model_id(&self) -> &str {
        "concepts"
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, KnowledgeError> {
        Ok(texts
            .iter()
            .map(|t| {
                let words: Vec<String> =
                    t.split(|c: char| !c.is_alphanumeric()).map(str::to_lowercase).collect();
                // A small constant axis keeps texts without concepts from being zero vectors.
                let mut v = vec![0.05f32];
                v.extend(CONCEPTS.iter().map(|group| {
                    words.iter().filter(|w| group.contains(&w.as_str())).count() as f32
                }));
                knowledge::embed::normalize(&mut v);
                v
            })
            .collect())
    }
}

pub fn open_index(dir: &std::path::Path, embedder: Arc<dyn Embedder>) -> KnowledgeIndex {
    KnowledgeIndex::open(dir, embedder, IndexConfig::default()).expect("index opens")
}

/// One-paragraph document chunks, with a title.
pub fn doc_chunks(title: &str, text: &str) -> (DocumentId, Vec<Chunk>) {
    let document_id = DocumentId::new();
    let input = DocumentInput {
        document_id,
        title: title.to_owned(),
        source_url: Some(format!(
            "https://example.test/{}",
            title.to_lowercase().replace(' ', "-")
        )),
        blocks: vec![DocBlock::heading(1, title, Some(1)), DocBlock::text(text, Some(1))],
    };
    let chunks = Chunker::new(ChunkingConfig::default()).unwrap().chunk(&input);
    (document_id, chunks)
}
