//! Loading and running the BERT encoder.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use knowledge::{Embedder, KnowledgeError};
use tokenizers::{Tokenizer, TruncationParams};

use crate::LocalEmbedError;
use crate::bert::{Bert, BertConfig};

/// Settings of a local model.
#[derive(Debug, Clone)]
pub struct LocalEmbedderConfig {
    /// Directory with `config.json`, `model.safetensors`, `tokenizer.json` (and optionally
    /// `sentence_bert_config.json`, whose `max_seq_length` is honoured).
    pub model_dir: PathBuf,
    /// Texts tokenised and encoded per step of a large batch.
    pub batch_size: usize,
    /// Longest input in word pieces; `None` takes `max_seq_length` from
    /// `sentence_bert_config.json`, else 256.
    pub max_tokens: Option<usize>,
}

impl LocalEmbedderConfig {
    /// Defaults for the model in `model_dir`.
    pub fn new(model_dir: impl Into<PathBuf>) -> Self {
        Self { model_dir: model_dir.into(), batch_size: 32, max_tokens: None }
    }
}

struct Inner {
    model: Bert,
    tokenizer: Tokenizer,
    batch_size: usize,
    query_pool: rayon::ThreadPool,
    batch_pool: rayon::ThreadPool,
}

/// A sentence-transformers model on the CPU. Cheap to clone.
#[derive(Clone)]
pub struct LocalEmbedder {
    inner: Arc<Inner>,
    model_id: String,
}

impl std::fmt::Debug for LocalEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalEmbedder").field("model_id", &self.model_id).finish()
    }
}

fn read(path: &Path) -> Result<Vec<u8>, LocalEmbedError> {
    std::fs::read(path).map_err(|source| LocalEmbedError::Io { path: path.to_owned(), source })
}

impl LocalEmbedder {
    /// Loads the model from its directory.
    pub fn load(config: LocalEmbedderConfig) -> Result<Self, LocalEmbedError> {
        let dir = &config.model_dir;
        let config_path = dir.join("config.json");
        let bert_config: BertConfig =
            serde_json::from_slice(&read(&config_path)?).map_err(|e| LocalEmbedError::Config {
                path: config_path.clone(),
                reason: e.to_string(),
            })?;
        let max_tokens = config.max_tokens.unwrap_or_else(|| {
            std::fs::read(dir.join("sentence_bert_config.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .and_then(|v| v["max_seq_length"].as_u64())
                .map_or(256, |n| n as usize)
        });
        // Buffered rather than memory-mapped: mapping needs `unsafe`, which the workspace forbids.
        let weights = read(&dir.join("model.safetensors"))?;
        let model = Bert::load(&config_path, &bert_config, &weights)?;
        drop(weights);
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| LocalEmbedError::Tokenizer(e.to_string()))?;
        // Each text is encoded on its own, so no padding (tokenizer.json of these models asks
        // for fixed-length padding, which would only add work).
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens.min(model.max_positions()),
                ..Default::default()
            }))
            .map_err(|e| LocalEmbedError::Tokenizer(e.to_string()))?;
        let model_id = dir
            .file_name()
            .filter(|n| *n != "model")
            .or_else(|| dir.parent().and_then(|p| p.file_name()))
            .map_or_else(|| "local".to_owned(), |n| n.to_string_lossy().into_owned());
        let pool = |name: &'static str| {
            rayon::ThreadPoolBuilder::new()
                // Zero: `RAYON_NUM_THREADS`, else one thread per core.
                .num_threads(0)
                .thread_name(move |i| format!("{name}-{i}"))
                .build()
                .map_err(|e| LocalEmbedError::Threads(e.to_string()))
        };
        let inner = Inner {
            model,
            tokenizer,
            batch_size: config.batch_size.max(1),
            query_pool: pool("embed-query")?,
            batch_pool: pool("embed-batch")?,
        };
        Ok(Self { inner: Arc::new(inner), model_id })
    }

    /// Length of the vectors.
    pub fn dimensions(&self) -> usize {
        self.inner.model.hidden()
    }

    /// Embeds, blocking the calling thread while the encoder's pools work (call from a
    /// blocking context). A lone text splits its larger products over the cores; a batch
    /// encodes its texts in parallel.
    pub fn embed_blocking(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, LocalEmbedError> {
        let inner = &self.inner;
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(inner.batch_size) {
            let encodings = inner
                .tokenizer
                .encode_batch(batch.iter().map(String::as_str).collect::<Vec<_>>(), true)
                .map_err(|e| LocalEmbedError::Tokenizer(e.to_string()))?;
            let ids: Vec<Vec<u32>> = encodings.iter().map(|e| e.get_ids().to_vec()).collect();
            out.extend(inner.model.embed_many(&ids, &inner.query_pool, &inner.batch_pool)?);
        }
        Ok(out)
    }
}

#[async_trait]
impl Embedder for LocalEmbedder {
    fn model_id(&self) -> &str {
        &self.model_id
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, KnowledgeError> {
        let this = self.clone();
        let texts = texts.to_vec();
        tokio::task::spawn_blocking(move || this.embed_blocking(&texts))
            .await
            .map_err(|e| KnowledgeError::Embedding(format!("embedding task failed: {e}")))?
            .map_err(|e| KnowledgeError::Embedding(e.to_string()))
    }
}
