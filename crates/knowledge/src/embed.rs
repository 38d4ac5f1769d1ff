//! Embeddings behind one trait: none (lexical only), any OpenAI-compatible `/v1/embeddings`
//! endpoint, or (in the `embed-local` crate) a local sentence-transformers model.
//!
//! Vectors leave every embedder L2-normalised, so the index can score by dot product.

use std::time::Duration;

use async_trait::async_trait;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::KnowledgeError;

/// Turns texts into unit-length vectors.
#[async_trait]
pub trait Embedder: Send + Sync {
    /// A stable name of the model (stored with the index, shown in reports).
    fn model_id(&self) -> &str;

    /// `false` for [`NoEmbedder`]: the index then stores no vectors and searches lexically.
    fn is_enabled(&self) -> bool {
        true
    }

    /// One L2-normalised vector per text, in order.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, KnowledgeError>;
}

/// No embedding model: lexical search only (the default).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoEmbedder;

#[async_trait]
impl Embedder for NoEmbedder {
    fn model_id(&self) -> &str {
        "none"
    }

    fn is_enabled(&self) -> bool {
        false
    }

    async fn embed(&self, _texts: &[String]) -> Result<Vec<Vec<f32>>, KnowledgeError> {
        Err(KnowledgeError::EmbeddingsUnavailable)
    }
}

/// Scales a vector to unit length in place (a zero vector stays zero).
pub fn normalize(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
}

/// Settings of an OpenAI-compatible embeddings endpoint.
#[derive(Debug, Clone)]
pub struct OpenAiEmbedderConfig {
    /// Base URL up to and including the version, e.g. `https://api.openai.com/v1`; the client
    /// posts to `{base_url}/embeddings`.
    pub base_url: String,
    /// Bearer token; `None` for local servers that need none.
    pub api_key: Option<SecretString>,
    /// Model name sent in each request.
    pub model: String,
    /// Texts per request (providers cap this; 64 is safe everywhere).
    pub batch_size: usize,
    /// Optional `dimensions` parameter (for models that can shorten their vectors).
    pub dimensions: Option<usize>,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl OpenAiEmbedderConfig {
    /// Settings with defaults for everything but the endpoint and model.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            base_url: base_url.into(),
            api_key: None,
            model: model.into(),
            batch_size: 64,
            dimensions: None,
            timeout: Duration::from_secs(60),
        }
    }
}

/// A client of any OpenAI-compatible `/v1/embeddings` endpoint.
#[derive(Debug, Clone)]
pub struct OpenAiEmbedder {
    config: OpenAiEmbedderConfig,
    http: reqwest::Client,
}

#[derive(Serialize)]
struct EmbeddingsRequest<'a> {
    model: &'a str,
    input: &'a [String],
    encoding_format: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    dimensions: Option<usize>,
}

#[derive(Deserialize)]
struct EmbeddingsResponse {
    data: Vec<EmbeddingItem>,
}

#[derive(Deserialize)]
struct EmbeddingItem {
    embedding: Vec<f32>,
    index: usize,
}

impl OpenAiEmbedder {
    /// A client with its own connection pool.
    pub fn new(config: OpenAiEmbedderConfig) -> Result<Self, KnowledgeError> {
        if config.batch_size == 0 {
            return Err(KnowledgeError::InvalidConfig("embedding batch size must be > 0".into()));
        }
        let http = reqwest::Client::builder()
            .timeout(config.timeout)
            .build()
            .map_err(|e| KnowledgeError::InvalidConfig(format!("HTTP client: {e}")))?;
        Ok(Self { config, http })
    }

    async fn embed_batch(&self, batch: &[String]) -> Result<Vec<Vec<f32>>, KnowledgeError> {
        let url = format!("{}/embeddings", self.config.base_url.trim_end_matches('/'));
        let body = EmbeddingsRequest {
            model: &self.config.model,
            input: batch,
            encoding_format: "float",
            dimensions: self.config.dimensions,
        };
        let mut request = self.http.post(&url).json(&body);
        if let Some(key) = &self.config.api_key {
            request = request.bearer_auth(key.expose_secret());
        }
        let response = request
            .send()
            .await
            .map_err(|e| KnowledgeError::Embedding(format!("request to {url} failed: {e}")))?;
        let status = response.status();
        if !status.is_success() {
            // The body may echo input; keep only a short prefix for the operator.
            let text = response.text().await.unwrap_or_default();
            let snippet: String = text.chars().take(300).collect();
            return Err(KnowledgeError::Embedding(format!("{url} answered {status}: {snippet}")));
        }
        let parsed: EmbeddingsResponse = response
            .json()
            .await
            .map_err(|e| KnowledgeError::Embedding(format!("unreadable response: {e}")))?;
        let mut slots: Vec<Option<Vec<f32>>> = vec![None; batch.len()];
        for item in parsed.data {
            let slot = slots.get_mut(item.index).ok_or_else(|| {
                KnowledgeError::Embedding(format!("response index {} out of range", item.index))
            })?;
            *slot = Some(item.embedding);
        }
        slots
            .into_iter()
            .enumerate()
            .map(|(i, v)| {
                let mut v = v.ok_or_else(|| {
                    KnowledgeError::Embedding(format!("response lacks the embedding for input {i}"))
                })?;
                normalize(&mut v);
                Ok(v)
            })
            .collect()
    }
}

#[async_trait]
impl Embedder for OpenAiEmbedder {
    fn model_id(&self) -> &str {
        &self.config.model
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, KnowledgeError> {
        let mut out = Vec::with_capacity(texts.len());
        for batch in texts.chunks(self.config.batch_size) {
            out.extend(self.embed_batch(batch).await?);
        }
        if let Some(first) = out.first()
            && out.iter().any(|v| v.len() != first.len())
        {
            return Err(KnowledgeError::Embedding("vectors of different lengths".into()));
        }
        Ok(out)
    }
}
