//! Local sentence-transformers embeddings: a BERT model (all-MiniLM-L6-v2 and its kin) loaded
//! from a directory holding `config.json`, `model.safetensors` and `tokenizer.json`, run on
//! the CPU with candle, mean-pooled over real tokens and L2-normalised — the recipe
//! sentence-transformers applies for these models.
//!
//! It lives apart from `knowledge` so that builds without local models never compile candle.
//! candle is very slow unoptimised: build it with `opt-level = 3` even in dev profiles.

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
    /// The model failed to load or to run.
    #[error("model error: {0}")]
    Model(#[from] candle_core::Error),
}
