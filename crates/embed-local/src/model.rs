//! Loading and running the BERT encoder.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use candle_core::{DType, Device, Tensor};
use candle_nn::VarBuilder;
use candle_transformers::models::bert::{BertModel, Config};
use knowledge::{Embedder, KnowledgeError};
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::LocalEmbedError;

/// Settings of a local model.
#[derive(Debug, Clone)]
pub struct LocalEmbedderConfig {
    /// Directory with `config.json`, `model.safetensors`, `tokenizer.json` (and optionally
    /// `sentence_bert_config.json`, whose `max_seq_length` is honoured).
    pub model_dir: PathBuf,
    /// Texts per forward pass.
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
    model: BertModel,
    tokenizer: Tokenizer,
    device: Device,
    batch_size: usize,
    dimensions: usize,
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
        let bert_config: Config = serde_json::from_slice(&read(&config_path)?).map_err(|e| {
            LocalEmbedError::Config { path: config_path.clone(), reason: e.to_string() }
        })?;
        let dims: serde_json::Value =
            serde_json::from_slice(&read(&config_path)?).map_err(|e| LocalEmbedError::Config {
                path: config_path.clone(),
                reason: e.to_string(),
            })?;
        let dimensions = dims["hidden_size"].as_u64().ok_or_else(|| LocalEmbedError::Config {
            path: config_path.clone(),
            reason: "no hidden_size".into(),
        })? as usize;
        let max_tokens = config.max_tokens.unwrap_or_else(|| {
            std::fs::read(dir.join("sentence_bert_config.json"))
                .ok()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
                .and_then(|v| v["max_seq_length"].as_u64())
                .map_or(256, |n| n as usize)
        });
        let device = Device::Cpu;
        // Buffered rather than memory-mapped: mapping needs `unsafe`, which the workspace forbids.
        let weights = read(&dir.join("model.safetensors"))?;
        let vb = VarBuilder::from_buffered_safetensors(weights, DType::F32, &device)?;
        let model = BertModel::load(vb, &bert_config)?;
        let mut tokenizer = Tokenizer::from_file(dir.join("tokenizer.json"))
            .map_err(|e| LocalEmbedError::Tokenizer(e.to_string()))?;
        // tokenizer.json of these models pads every input to a fixed length; pad per batch.
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..Default::default()
        }));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: max_tokens,
                ..Default::default()
            }))
            .map_err(|e| LocalEmbedError::Tokenizer(e.to_string()))?;
        let model_id = dir
            .file_name()
            .filter(|n| *n != "model")
            .or_else(|| dir.parent().and_then(|p| p.file_name()))
            .map_or_else(|| "local".to_owned(), |n| n.to_string_lossy().into_owned());
        let inner =
            Inner { model, tokenizer, device, batch_size: config.batch_size.max(1), dimensions };
        Ok(Self { inner: Arc::new(inner), model_id })
    }

    /// Length of the vectors.
    pub fn dimensions(&self) -> usize {
        self.inner.dimensions
    }

    /// Embeds on the calling thread (it keeps the CPU busy: call from a blocking context).
    pub fn embed_blocking(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, LocalEmbedError> {
        // Similar lengths batched together waste less work on padding.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|i| texts[*i].len());
        let mut out = vec![Vec::new(); texts.len()];
        for batch in order.chunks(self.inner.batch_size) {
            let inputs: Vec<&str> = batch.iter().map(|i| texts[*i].as_str()).collect();
            for (slot, v) in batch.iter().zip(self.embed_batch(&inputs)?) {
                out[*slot] = v;
            }
        }
        Ok(out)
    }

    fn embed_batch(&self, texts: &[&str]) -> Result<Vec<Vec<f32>>, LocalEmbedError> {
        let inner = &self.inner;
        let encodings = inner
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| LocalEmbedError::Tokenizer(e.to_string()))?;
        let ids: Vec<Tensor> = encodings
            .iter()
            .map(|e| Tensor::new(e.get_ids(), &inner.device))
            .collect::<Result<_, _>>()?;
        let masks: Vec<Tensor> = encodings
            .iter()
            .map(|e| Tensor::new(e.get_attention_mask(), &inner.device))
            .collect::<Result<_, _>>()?;
        let ids = Tensor::stack(&ids, 0)?;
        let mask = Tensor::stack(&masks, 0)?;
        let type_ids = ids.zeros_like()?;
        let hidden = inner.model.forward(&ids, &type_ids, Some(&mask))?;
        // Mean over real tokens only: padding must not dilute short texts.
        let mask = mask.to_dtype(DType::F32)?.unsqueeze(2)?;
        let summed = hidden.broadcast_mul(&mask)?.sum(1)?;
        let counts = mask.sum(1)?.clamp(1e-9, f64::MAX)?;
        let mean = summed.broadcast_div(&counts)?;
        let norms = mean.sqr()?.sum_keepdim(1)?.sqrt()?.clamp(1e-12, f64::MAX)?;
        Ok(mean.broadcast_div(&norms)?.to_vec2::<f32>()?)
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
