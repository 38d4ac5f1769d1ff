//! Reruns the retrieval figures of `docs/benchmarks/knowledge.md`:
//!
//! ```text
//! cargo run --release -p knowledge --example eval_retrieval -- \
//!   --corpus ../shared/data/scifact/corpus.jsonl --queries ../shared/data/scifact/queries.jsonl \
//!   --qrels ../shared/data/scifact/qrels/train.tsv --mode lexical [--top-k 100] \
//!   [--embeddings-url http://127.0.0.1:8080/v1 --embeddings-model NAME]
//! ```
//! Prints the report as JSON. For the local MiniLM model see the `embed-local` crate's example.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use knowledge::{
    Embedder, EvalOptions, EvalPaths, NoEmbedder, OpenAiEmbedder, OpenAiEmbedderConfig,
    evaluate_retrieval,
};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut corpus, mut queries, mut qrels) = (None, None, None);
    let mut options = EvalOptions::default();
    let (mut url, mut model) = (None, None);
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--corpus" => corpus = Some(PathBuf::from(value()?)),
            "--queries" => queries = Some(PathBuf::from(value()?)),
            "--qrels" => qrels = Some(PathBuf::from(value()?)),
            "--mode" => options.mode = value()?.parse()?,
            "--top-k" => options.top_k = value()?.parse()?,
            "--chunk-tokens" => options.chunking.chunk_tokens = value()?.parse()?,
            "--embeddings-url" => url = Some(value()?),
            "--embeddings-model" => model = Some(value()?),
            other => bail!("unknown flag {other}"),
        }
    }
    let paths = EvalPaths {
        corpus: corpus.context("--corpus is required")?,
        queries: queries.context("--queries is required")?,
        qrels: qrels.context("--qrels is required")?,
    };
    let embedder: Arc<dyn Embedder> = match url {
        Some(url) => {
            let mut config = OpenAiEmbedderConfig::new(url, model.context("--embeddings-model")?);
            config.api_key = std::env::var("EMBEDDINGS_API_KEY").ok().map(Into::into);
            Arc::new(OpenAiEmbedder::new(config)?)
        }
        None => Arc::new(NoEmbedder),
    };
    let report = evaluate_retrieval(&paths, &options, embedder).await?;
    println!("{}", serde_json::to_string_pretty(&report)?);
    Ok(())
}
