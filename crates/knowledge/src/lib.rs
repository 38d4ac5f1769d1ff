//! EchoForge's knowledge index: the library that turns extracted documents into searchable,
//! citable chunks.
//!
//! - [`chunking`]: token-sized chunks with overlap that prefer structural boundaries and carry
//!   their citation (document, title, URL, page, heading path).
//! - [`index`]: an embedded BM25 index (tantivy, English stemming and stop words) plus optional
//!   dense vectors kept beside it, fused by reciprocal-rank fusion; every chunk is tagged with
//!   its workspace and knowledge base and every search is filtered on both.
//! - [`embed`]: one [`Embedder`] trait with "none" and OpenAI-compatible implementations (the
//!   local model lives in the `embed-local` crate to keep this one quick to build).
//! - [`eval`]: BEIR-style retrieval evaluation (nDCG@10, recall@100, MRR@10, latency).

pub mod chunking;
pub mod embed;
mod error;
pub mod eval;
pub mod index;

pub use chunking::{Chunk, Chunker, ChunkingConfig, DocBlock, DocumentInput, blocks_from_markdown};
pub use embed::{Embedder, NoEmbedder, OpenAiEmbedder, OpenAiEmbedderConfig};
pub use error::KnowledgeError;
pub use eval::{EvalOptions, EvalPaths, EvalReport, LatencyMs, evaluate_retrieval};
pub use index::{
    ChunkMetadata, IndexConfig, KbStats, KnowledgeIndex, SearchHit, SearchMode, SearchRequest,
};
