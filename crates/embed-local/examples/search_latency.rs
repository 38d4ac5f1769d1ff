//! Search latency on a large synthetic index (see `docs/benchmarks/knowledge.md`):
//!
//! ```text
//! cargo run --release -p embed-local --example search_latency -- \
//!   --corpus …/scifact/corpus.jsonl --queries …/scifact/queries.jsonl \
//!   [--chunks 100000] [--model-dir …/model] [--vector-cache /tmp/scifact-minilm.json]
//!   [--random-doc-vectors]
//! ```
//! `--random-doc-vectors` gives the abstracts random unit vectors instead of embedding them (about
//! 15 minutes on two cores); queries are still embedded by the model, so latency is unchanged
//! but the semantic ranking is meaningless.
//! The index holds `--chunks` chunks: the SciFact abstracts, then copies of them with shuffled
//! sentences and ~15% of words dropped. With `--model-dir`, originals are embedded by the model
//! and each copy gets its original's vector plus noise (re-normalised): the search cost is the
//! same as for real vectors, without hours of embedding on two cores. Queries (SciFact claims,
//! embedded by the real model in hybrid mode) run one at a time; lexical, and with a model also
//! semantic and hybrid, percentiles are printed as JSON.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use anyhow::{Context, bail};
use async_trait::async_trait;
use domain::{ChunkId, DocumentId, KnowledgeBaseId, WorkspaceId};
use embed_local::{LocalEmbedder, LocalEmbedderConfig};
use knowledge::eval::percentile;
use knowledge::{
    Chunk, Embedder, IndexConfig, KnowledgeError, KnowledgeIndex, NoEmbedder, SearchMode,
    SearchRequest,
};

/// Serves precomputed chunk vectors; anything else (queries) goes to the model.
struct Precomputed {
    vectors: HashMap<String, Vec<f32>>,
    /// Query vectors computed before timing, used only while `use_query_cache` is set: that
    /// run measures the index's share of semantic and hybrid latency.
    query_vectors: HashMap<String, Vec<f32>>,
    use_query_cache: AtomicBool,
    model: Arc<dyn Embedder>,
}

#[async_trait]
impl Embedder for Precomputed {
    fn model_id(&self) -> &str {
        self.model.model_id()
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, KnowledgeError> {
        if self.use_query_cache.load(Ordering::Relaxed)
            && let Some(known) =
                texts.iter().map(|t| self.query_vectors.get(t).cloned()).collect::<Option<Vec<_>>>()
        {
            return Ok(known);
        }
        if let Some(known) =
            texts.iter().map(|t| self.vectors.get(t).cloned()).collect::<Option<Vec<_>>>()
        {
            return Ok(known);
        }
        self.model.embed(texts).await
    }
}

/// A tiny deterministic generator (no need for statistical quality here).
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn unit(&mut self) -> f32 {
        (self.next() % 1_000_000) as f32 / 1_000_000.0
    }
}

fn perturb(text: &str, rng: &mut XorShift) -> String {
    let mut sentences: Vec<&str> = text.split(". ").collect();
    for i in (1..sentences.len()).rev() {
        sentences.swap(i, (rng.next() % (i as u64 + 1)) as usize);
    }
    sentences
        .join(". ")
        .split_whitespace()
        .filter(|_| rng.unit() > 0.15)
        .collect::<Vec<_>>()
        .join(" ")
}

fn chunk(doc: DocumentId, content: String) -> Chunk {
    Chunk {
        chunk_id: ChunkId::new(),
        document_id: doc,
        document_title: String::new(),
        source_url: None,
        page: None,
        heading: None,
        ordinal: 0,
        token_count: 0,
        content,
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut corpus, mut queries, mut model_dir, mut cache) = (None, None, None, None);
    let mut total = 100_000usize;
    let mut random_vectors = false;
    while let Some(flag) = args.next() {
        let mut value = || args.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--corpus" => corpus = Some(PathBuf::from(value()?)),
            "--queries" => queries = Some(PathBuf::from(value()?)),
            "--model-dir" => model_dir = Some(PathBuf::from(value()?)),
            "--vector-cache" => cache = Some(PathBuf::from(value()?)),
            "--chunks" => total = value()?.parse()?,
            "--random-doc-vectors" => random_vectors = true,
            other => bail!("unknown flag {other}"),
        }
    }
    let read = |p: PathBuf| -> anyhow::Result<Vec<serde_json::Value>> {
        std::fs::read_to_string(&p)
            .with_context(|| format!("reading {}", p.display()))?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| Ok(serde_json::from_str(l)?))
            .collect()
    };
    let originals: Vec<String> = read(corpus.context("--corpus is required")?)?
        .iter()
        .map(|d| {
            format!("{} {}", d["title"].as_str().unwrap_or(""), d["text"].as_str().unwrap_or(""))
        })
        .collect();
    let queries: Vec<String> = read(queries.context("--queries is required")?)?
        .iter()
        .filter_map(|q| q["text"].as_str().map(str::to_owned))
        .collect();

    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let texts: Vec<String> = (0..total)
        .map(|i| {
            let original = &originals[i % originals.len()];
            if i < originals.len() {
                original.clone()
            } else {
                format!("{} {i}", perturb(original, &mut rng))
            }
        })
        .collect();

    let mut precomputed: Option<Arc<Precomputed>> = None;
    let embedder: Arc<dyn Embedder> = match &model_dir {
        None => Arc::new(NoEmbedder),
        Some(dir) => {
            let model: Arc<dyn Embedder> =
                Arc::new(LocalEmbedder::load(LocalEmbedderConfig::new(dir))?);
            let base: Vec<Vec<f32>> = match cache.as_ref().filter(|c| c.exists()) {
                Some(c) => serde_json::from_str(&std::fs::read_to_string(c)?)?,
                // Random unit vectors cost the same to search as real ones.
                None if random_vectors => (0..originals.len())
                    .map(|_| {
                        let mut v: Vec<f32> = (0..384).map(|_| rng.unit() - 0.5).collect();
                        knowledge::embed::normalize(&mut v);
                        v
                    })
                    .collect(),
                None => {
                    let t = Instant::now();
                    let v = model.embed(&originals).await?;
                    eprintln!(
                        "embedded {} originals in {:.1}s",
                        originals.len(),
                        t.elapsed().as_secs_f64()
                    );
                    if let Some(c) = &cache {
                        std::fs::write(c, serde_json::to_string(&v)?)?;
                    }
                    v
                }
            };
            let mut vectors = HashMap::with_capacity(total);
            for (i, text) in texts.iter().enumerate() {
                let mut v = base[i % originals.len()].clone();
                if i >= originals.len() {
                    v.iter_mut().for_each(|x| *x += (rng.unit() - 0.5) * 0.04);
                    knowledge::embed::normalize(&mut v);
                }
                vectors.insert(text.clone(), v);
            }
            let query_vectors = queries.iter().cloned().zip(model.embed(&queries).await?).collect();
            precomputed = Some(Arc::new(Precomputed {
                vectors,
                query_vectors,
                use_query_cache: AtomicBool::new(false),
                model,
            }));
            precomputed.clone().expect("just set")
        }
    };

    let dir = tempfile::tempdir()?;
    let index = KnowledgeIndex::open(dir.path(), embedder.clone(), IndexConfig::default())?;
    let (ws, kb) = (WorkspaceId::new(), KnowledgeBaseId::new());
    let started = Instant::now();
    for batch in texts.chunks(5_000) {
        let docs = batch
            .iter()
            .map(|t| {
                let doc = DocumentId::new();
                (doc, vec![chunk(doc, t.clone())])
            })
            .collect();
        index.replace_documents(ws, kb, docs).await?;
    }
    let indexing_seconds = started.elapsed().as_secs_f64();
    let chunks = index.stats(ws, &[kb])?[0].chunk_count;

    let mut runs = vec![(SearchMode::Lexical, false)];
    if model_dir.is_some() {
        runs.extend([
            (SearchMode::Semantic, false),
            (SearchMode::Hybrid, false),
            (SearchMode::Semantic, true),
            (SearchMode::Hybrid, true),
        ]);
    }
    let mut results = serde_json::Map::new();
    for (mode, cached) in runs {
        if let Some(p) = &precomputed {
            p.use_query_cache.store(cached, Ordering::Relaxed);
        }
        let mut latencies = Vec::with_capacity(queries.len());
        for q in &queries {
            let request = SearchRequest { query: q.clone(), top_k: 10, min_score: None, mode };
            let t = Instant::now();
            let hits = index.search(ws, &[kb], &request).await?;
            latencies.push(t.elapsed().as_secs_f64() * 1000.0);
            anyhow::ensure!(!hits.is_empty() || mode == SearchMode::Lexical, "no hits for {q}");
        }
        latencies.sort_by(f64::total_cmp);
        let name = serde_json::to_value(mode)?.as_str().unwrap_or("?").to_owned();
        results.insert(
            if cached { format!("{name}_query_vector_precomputed") } else { name },
            serde_json::json!({
                "queries": latencies.len(),
                "p50_ms": percentile(&latencies, 50.0),
                "p95_ms": percentile(&latencies, 95.0),
                "p99_ms": percentile(&latencies, 99.0),
                "max_ms": latencies.last().copied().unwrap_or(0.0),
            }),
        );
    }
    if let Some(p) = &precomputed {
        p.use_query_cache.store(false, Ordering::Relaxed);
    }
    if model_dir.is_some() {
        // The model's share of semantic and hybrid latency.
        let mut latencies = Vec::with_capacity(queries.len());
        for q in &queries {
            let t = Instant::now();
            embedder.embed(std::slice::from_ref(q)).await?;
            latencies.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        latencies.sort_by(f64::total_cmp);
        results.insert(
            "query_embedding_only".into(),
            serde_json::json!({
                "p50_ms": percentile(&latencies, 50.0),
                "p95_ms": percentile(&latencies, 95.0),
                "p99_ms": percentile(&latencies, 99.0),
            }),
        );
    }
    let report = serde_json::json!({
        "chunks": chunks,
        "vectors": index.vector_count(),
        "indexing_seconds": indexing_seconds,
        "latency": results,
    });
    println!("{}", serde_json::to_string_pretty(&report)?);
    index.close().await;
    Ok(())
}
