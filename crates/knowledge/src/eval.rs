//! Retrieval evaluation with the BEIR protocol: index `title + " " + text` of every corpus
//! document, retrieve the top `top_k` documents per query, score against the qrels.
//!
//! Documents longer than one chunk are split like any other document and ranked by their best
//! chunk (max-pooling), so the figures measure the product's real pipeline.

use std::collections::{HashMap, HashSet};
use std::io::BufRead;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use domain::{DocumentId, KnowledgeBaseId, WorkspaceId};
use serde::{Deserialize, Serialize};

use crate::{
    Chunker, ChunkingConfig, DocBlock, DocumentInput, Embedder, IndexConfig, KnowledgeError,
    KnowledgeIndex, SearchMode, SearchRequest,
};

/// Where the evaluation data is.
#[derive(Debug, Clone)]
pub struct EvalPaths {
    /// JSON lines `{"_id", "title", "text"}`.
    pub corpus: PathBuf,
    /// JSON lines `{"_id", "text"}`.
    pub queries: PathBuf,
    /// TSV `query-id  corpus-id  score` (a header line is allowed).
    pub qrels: PathBuf,
}

/// How to run the evaluation.
#[derive(Debug, Clone)]
pub struct EvalOptions {
    /// Search mode.
    pub mode: SearchMode,
    /// Documents retrieved per query (BEIR: 100).
    pub top_k: usize,
    /// Chunking of the corpus.
    pub chunking: ChunkingConfig,
    /// Documents per ingestion batch (one commit each).
    pub batch_docs: usize,
}

impl Default for EvalOptions {
    fn default() -> Self {
        Self {
            mode: SearchMode::Lexical,
            top_k: 100,
            chunking: ChunkingConfig::default(),
            batch_docs: 1000,
        }
    }
}

/// Query latency percentiles, in milliseconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LatencyMs {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
}

/// The figures of one evaluation run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvalReport {
    /// Search mode used.
    pub mode: SearchMode,
    /// Embedding model (`none` for lexical).
    pub embedding_model: String,
    /// Corpus documents indexed.
    pub docs: usize,
    /// Chunks they became.
    pub chunks: usize,
    /// Queries evaluated (those with at least one judgement).
    pub queries: usize,
    /// Mean nDCG@10.
    #[serde(rename = "ndcg@10")]
    pub ndcg_at_10: f64,
    /// Mean recall@100.
    #[serde(rename = "recall@100")]
    pub recall_at_100: f64,
    /// Mean reciprocal rank of the first relevant document in the top 10.
    #[serde(rename = "mrr@10")]
    pub mrr_at_10: f64,
    /// Per-query search latency (one query at a time, embedding included).
    pub query_latency_ms: LatencyMs,
    /// Seconds to chunk, embed and index the corpus.
    pub indexing_seconds: f64,
}

#[derive(Deserialize)]
struct CorpusLine {
    #[serde(rename = "_id")]
    id: String,
    #[serde(default)]
    title: String,
    text: String,
}

#[derive(Deserialize)]
struct QueryLine {
    #[serde(rename = "_id")]
    id: String,
    text: String,
}

fn read_lines(path: &Path) -> Result<Vec<String>, KnowledgeError> {
    let file = std::fs::File::open(path).map_err(KnowledgeError::io(path))?;
    std::io::BufReader::new(file)
        .lines()
        .filter(|l| !l.as_ref().is_ok_and(|l| l.trim().is_empty()))
        .collect::<Result<_, _>>()
        .map_err(KnowledgeError::io(path))
}

fn parse_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    line: &str,
) -> Result<T, KnowledgeError> {
    serde_json::from_str(line)
        .map_err(|e| KnowledgeError::Corrupt { path: path.to_owned(), reason: e.to_string() })
}

/// Reads qrels: query id → (doc id → relevance).
pub fn read_qrels(path: &Path) -> Result<HashMap<String, HashMap<String, u32>>, KnowledgeError> {
    let mut qrels: HashMap<String, HashMap<String, u32>> = HashMap::new();
    for line in read_lines(path)? {
        let cols: Vec<&str> = line.split('\t').collect();
        let [q, d, s] = cols[..] else {
            return Err(KnowledgeError::Corrupt {
                path: path.to_owned(),
                reason: format!("bad line `{line}`"),
            });
        };
        // The header line (query-id corpus-id score) has no number in its last column.
        let Ok(score) = s.trim().parse::<u32>() else { continue };
        qrels.entry(q.to_owned()).or_default().insert(d.to_owned(), score);
    }
    Ok(qrels)
}

/// nDCG@k with linear gains (trec_eval's `ndcg_cut`).
pub fn ndcg_at(k: usize, ranked: &[String], rels: &HashMap<String, u32>) -> f64 {
    let dcg: f64 = ranked
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, d)| f64::from(*rels.get(d).unwrap_or(&0)) / (i as f64 + 2.0).log2())
        .sum();
    let mut ideal: Vec<u32> = rels.values().copied().filter(|r| *r > 0).collect();
    ideal.sort_unstable_by(|a, b| b.cmp(a));
    let idcg: f64 = ideal
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, r)| f64::from(*r) / (i as f64 + 2.0).log2())
        .sum();
    if idcg == 0.0 { 0.0 } else { dcg / idcg }
}

/// Recall@k over documents with relevance > 0.
pub fn recall_at(k: usize, ranked: &[String], rels: &HashMap<String, u32>) -> f64 {
    let relevant: HashSet<&String> = rels.iter().filter(|(_, r)| **r > 0).map(|(d, _)| d).collect();
    if relevant.is_empty() {
        return 0.0;
    }
    let found = ranked.iter().take(k).filter(|d| relevant.contains(d)).count();
    found as f64 / relevant.len() as f64
}

/// Reciprocal rank of the first relevant document within the top k.
pub fn mrr_at(k: usize, ranked: &[String], rels: &HashMap<String, u32>) -> f64 {
    ranked
        .iter()
        .take(k)
        .position(|d| rels.get(d).is_some_and(|r| *r > 0))
        .map_or(0.0, |i| 1.0 / (i as f64 + 1.0))
}

/// Nearest-rank percentile of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Runs a BEIR-style evaluation in a fresh temporary index.
pub async fn evaluate_retrieval(
    paths: &EvalPaths,
    options: &EvalOptions,
    embedder: Arc<dyn Embedder>,
) -> Result<EvalReport, KnowledgeError> {
    if options.top_k == 0 || options.top_k > 500 {
        return Err(KnowledgeError::InvalidConfig("top_k must be 1..=500".into()));
    }
    let qrels = read_qrels(&paths.qrels)?;
    let queries: Vec<QueryLine> = read_lines(&paths.queries)?
        .iter()
        .map(|l| parse_json::<QueryLine>(&paths.queries, l))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|q| qrels.contains_key(&q.id))
        .collect();
    let corpus = read_lines(&paths.corpus)?;
    let dir = tempfile::tempdir().map_err(KnowledgeError::io(std::env::temp_dir()))?;
    let index = KnowledgeIndex::open(dir.path(), embedder.clone(), IndexConfig::default())?;
    let (ws, kb) = (WorkspaceId::new(), KnowledgeBaseId::new());
    let chunker = Chunker::new(options.chunking)?;

    let started = Instant::now();
    let mut corpus_ids: HashMap<DocumentId, String> = HashMap::with_capacity(corpus.len());
    let mut chunk_total = 0;
    for lines in corpus.chunks(options.batch_docs.max(1)) {
        let mut batch = Vec::with_capacity(lines.len());
        for line in lines {
            let doc: CorpusLine = parse_json(&paths.corpus, line)?;
            let document_id = DocumentId::new();
            let input = DocumentInput {
                document_id,
                title: doc.title.clone(),
                source_url: None,
                blocks: vec![DocBlock::text(format!("{} {}", doc.title, doc.text), None)],
            };
            let chunks = chunker.chunk(&input);
            chunk_total += chunks.len();
            corpus_ids.insert(document_id, doc.id);
            batch.push((document_id, chunks));
        }
        index.replace_documents(ws, kb, batch).await?;
    }
    let indexing_seconds = started.elapsed().as_secs_f64();

    // Ask for more chunks than documents so long documents' extra chunks do not crowd out others.
    let chunk_k = (options.top_k * 2).min(1000);
    let (mut ndcg, mut recall, mut mrr) = (0.0, 0.0, 0.0);
    let mut latencies = Vec::with_capacity(queries.len());
    for q in &queries {
        let request = SearchRequest {
            query: q.text.clone(),
            top_k: chunk_k,
            min_score: None,
            mode: options.mode,
        };
        let t = Instant::now();
        let hits = index.search(ws, &[kb], &request).await?;
        latencies.push(t.elapsed().as_secs_f64() * 1000.0);
        let mut seen = HashSet::new();
        let ranked: Vec<String> = hits
            .iter()
            .filter(|h| seen.insert(h.metadata.document_id))
            .filter_map(|h| corpus_ids.get(&h.metadata.document_id).cloned())
            .take(options.top_k)
            .collect();
        let rels = &qrels[&q.id];
        ndcg += ndcg_at(10, &ranked, rels);
        recall += recall_at(100, &ranked, rels);
        mrr += mrr_at(10, &ranked, rels);
    }
    latencies.sort_by(f64::total_cmp);
    let n = queries.len().max(1) as f64;
    Ok(EvalReport {
        mode: options.mode,
        embedding_model: embedder.model_id().to_owned(),
        docs: corpus_ids.len(),
        chunks: chunk_total,
        queries: queries.len(),
        ndcg_at_10: ndcg / n,
        recall_at_100: recall / n,
        mrr_at_10: mrr / n,
        query_latency_ms: LatencyMs {
            p50: percentile(&latencies, 50.0),
            p95: percentile(&latencies, 95.0),
            p99: percentile(&latencies, 99.0),
        },
        indexing_seconds,
    })
}
