//! The one error type of the crate.

use std::path::PathBuf;

/// Everything that can go wrong in chunking, indexing, embedding or evaluation.
#[derive(Debug, thiserror::Error)]
pub enum KnowledgeError {
    /// A chunking, search or embedding setting is out of its allowed range.
    #[error("invalid configuration: {0}")]
    InvalidConfig(String),
    /// A search request is malformed (empty kb list, zero top_k, …).
    #[error("invalid search request: {0}")]
    InvalidRequest(String),
    /// Semantic search was asked for but no embedding model is configured.
    #[error("semantic search needs an embedding model, and none is configured")]
    EmbeddingsUnavailable,
    /// The embedding provider failed or answered something unusable.
    #[error("embedding provider error: {0}")]
    Embedding(String),
    /// Another process (a running server, most likely) holds the index's writer lock.
    #[error("the search index at {0} is in use by another EchoForge process (a running server?)")]
    Locked(PathBuf),
    /// The tantivy index failed.
    #[error("search index error: {0}")]
    Index(#[from] tantivy::TantivyError),
    /// A file of the index or of an evaluation could not be read or written.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A stored file is not in the expected format.
    #[error("corrupt data in {path}: {reason}")]
    Corrupt {
        /// The file concerned.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// A batch of writes failed and was rolled back.
    #[error("index write failed: {0}")]
    Write(String),
    /// The index's writer thread has stopped (the index is shutting down or it panicked).
    #[error("the index writer has stopped")]
    WriterGone,
}

impl KnowledgeError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}
