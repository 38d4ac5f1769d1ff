//! Local sentence-transformers embeddings: a BERT model (all-MiniLM-L6-v2 and its kin) loaded
//! from a directory holding `config.json`, `model.safetensors` and `tokenizer.json`, run on
//! the CPU by a small encoder of our own (`bert.rs`, with its SIMD loops in `kernels.rs`),
//! mean-pooled over the tokens and L2-normalised — the recipe sentence-transformers applies
//! for these models.
//!
//! It lives apart from `knowledge` so that builds without local models never compile the
//! tokenizer. The encoder is slow unoptimised: the workspace builds this crate with
//! `opt-level = 3` even in dev profiles.

mod bert;
mod kernels;
mod model;

pub use model::{LocalEmbedder, LocalEmbedderConfig};

/// Why a local model could not be loaded or run.
#[derive(Debug, thiserror::Error)]
pub enum LocalEmbedError {
    /// A model file is missing or unreadable.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// `config.json` is not a BERT configuration this crate understands.
    #[error("bad model configuration in {path}: {reason}")]
    Config {
        /// The file.
        path: std::path::PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// The tokenizer failed to load or to encode.
    #[error("tokenizer error: {0}")]
    Tokenizer(String),
    /// The encoder's worker threads could not be started.
    #[error("cannot start embedding threads: {0}")]
    Threads(String),
    /// `model.safetensors` is unreadable or lacks a tensor the architecture needs.
    #[error("bad model weights: {0}")]
    Weights(String),
}
