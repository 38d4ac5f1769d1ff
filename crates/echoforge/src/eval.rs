//! `echoforge eval retrieval`: index a BEIR-format set into a scratch knowledge base and score
//! it (nDCG@10, recall@100, MRR@10, query latency percentiles), printed as JSON.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use knowledge::{
    Embedder, EvalOptions, EvalPaths, NoEmbedder, OpenAiEmbedder, OpenAiEmbedderConfig, SearchMode,
};

/// Where query and document embeddings come from.
#[derive(Debug, Clone, clap::Args)]
pub struct EmbeddingArgs {
    /// A local sentence-transformers model directory (config.json, model.safetensors,
    /// tokenizer.json), e.g. all-MiniLM-L6-v2.
    #[arg(long)]
    pub embedding_model_dir: Option<PathBuf>,
    /// An OpenAI-compatible embeddings endpoint base URL (…/v1).
    #[arg(long)]
    pub embedding_base_url: Option<String>,
    #[arg(long, default_value = "text-embedding-3-small")]
    pub embedding_model: String,
    #[arg(long, env = "ECHOFORGE_EMBEDDING_API_KEY", hide_env_values = true)]
    pub embedding_api_key: Option<String>,
}

impl EmbeddingArgs {
    pub fn embedder(&self) -> anyhow::Result<Arc<dyn Embedder>> {
        if let Some(dir) = &self.embedding_model_dir {
            return local(dir);
        }
        if let Some(url) = &self.embedding_base_url {
            let mut config = OpenAiEmbedderConfig::new(url.clone(), self.embedding_model.clone());
            config.api_key = self.embedding_api_key.clone().map(Into::into);
            return Ok(Arc::new(OpenAiEmbedder::new(config)?));
        }
        Ok(Arc::new(NoEmbedder))
    }
}

#[cfg(feature = "local-embeddings")]
fn local(dir: &std::path::Path) -> anyhow::Result<Arc<dyn Embedder>> {
    let model =
        embed_local::LocalEmbedder::load(embed_local::LocalEmbedderConfig::new(dir.to_owned()))
            .with_context(|| format!("could not load the embedding model in {}", dir.display()))?;
    Ok(Arc::new(model))
}

#[cfg(not(feature = "local-embeddings"))]
fn local(_: &std::path::Path) -> anyhow::Result<Arc<dyn Embedder>> {
    bail!("this build has no local embeddings (built without the `local-embeddings` feature)")
}

/// Runs the evaluation and prints the report.
pub async fn retrieval(
    corpus: PathBuf,
    queries: PathBuf,
    qrels: PathBuf,
    mode: &str,
    top_k: usize,
    embedding: &EmbeddingArgs,
) -> anyhow::Result<()> {
    let mode: SearchMode = mode.parse().map_err(|e| anyhow::anyhow!("--mode: {e}"))?;
    let embedder = embedding.embedder()?;
    if mode != SearchMode::Lexical && !embedder.is_enabled() {
        bail!(
            "--mode {mode:?} needs embeddings: pass --embedding-model-dir or --embedding-base-url"
        );
    }
    let options = EvalOptions { mode, top_k, ..EvalOptions::default() };
    let report =
        knowledge::evaluate_retrieval(&EvalPaths { corpus, queries, qrels }, &options, embedder)
            .await
            .context("the evaluation failed")?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
