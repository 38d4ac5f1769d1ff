//! Search: BM25 through tantivy, cosine over the vector store, reciprocal-rank fusion.
//!
//! Every query is wrapped in a tenant filter (workspace id AND one of the `ws/kb` keys); dense
//! search only visits the (workspace, kb) partitions asked for; and each hit's workspace is
//! checked once more when it is read back, so a bug in one layer still leaks nothing.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::hash::Hash;
use std::sync::Arc;

use domain::{ChunkId, KnowledgeBaseId, WorkspaceId};
use tantivy::collector::TopDocs;
use tantivy::query::{BooleanQuery, ConstScoreQuery, Occur, Query, TermQuery};
use tantivy::schema::IndexRecordOption;
use tantivy::{DocAddress, Searcher, TantivyDocument};

use super::schema::{CHUNK_HI, CHUNK_LO, join_uuid, kb_key};
use super::{SearchHit, SearchMode, SearchRequest, Shared};
use crate::KnowledgeError;

/// The `k` of reciprocal-rank fusion (the value of the original paper, used by most engines).
pub const RRF_K: f32 = 60.0;

/// Fuses ranked lists: each item scores Σ 1 / (RRF_K + rank), rank from 1. Best first; ties
/// keep the order of first appearance.
pub fn reciprocal_rank_fusion<T: Copy + Eq + Hash>(lists: &[Vec<T>]) -> Vec<(T, f32)> {
    let mut scores: HashMap<T, (f32, usize)> = HashMap::new();
    let mut seen = 0;
    for list in lists {
        for (rank, item) in list.iter().enumerate() {
            let entry = scores.entry(*item).or_insert_with(|| {
                seen += 1;
                (0.0, seen)
            });
            entry.0 += 1.0 / (RRF_K + rank as f32 + 1.0);
        }
    }
    let mut fused: Vec<(T, f32, usize)> = scores.into_iter().map(|(t, (s, o))| (t, s, o)).collect();
    fused.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.2.cmp(&b.2)));
    fused.into_iter().map(|(t, s, _)| (t, s)).collect()
}

pub(crate) async fn search(
    shared: &Arc<Shared>,
    ws: WorkspaceId,
    kbs: &[KnowledgeBaseId],
    request: &SearchRequest,
) -> Result<Vec<SearchHit>, KnowledgeError> {
    if request.top_k == 0 || request.top_k > 1000 {
        return Err(KnowledgeError::InvalidRequest(format!(
            "top_k must be 1..=1000, got {}",
            request.top_k
        )));
    }
    if kbs.is_empty() || request.query.trim().is_empty() {
        return Ok(Vec::new());
    }
    let embedder_on = shared.embedder.is_enabled();
    let mode = match (request.mode, embedder_on) {
        (SearchMode::Semantic, false) => return Err(KnowledgeError::EmbeddingsUnavailable),
        (SearchMode::Hybrid, false) => SearchMode::Lexical,
        (mode, _) => mode,
    };
    let joined =
        |e: tokio::task::JoinError| KnowledgeError::Write(format!("search task failed: {e}"));
    let searcher = shared.reader.searcher();
    let depth =
        if mode == SearchMode::Hybrid { fusion_depth(request.top_k) } else { request.top_k };
    let kbs = kbs.to_vec();
    // In hybrid mode BM25 runs while the query is being embedded.
    let early_lexical = (mode == SearchMode::Hybrid).then(|| {
        let (shared, searcher, kbs, query) =
            (shared.clone(), searcher.clone(), kbs.clone(), request.query.clone());
        tokio::task::spawn_blocking(move || lexical(&shared, &searcher, ws, &kbs, &query, depth))
    });
    let query_vector = if mode == SearchMode::Lexical {
        None
    } else {
        let mut v = shared.embedder.embed(std::slice::from_ref(&request.query)).await?;
        Some(v.pop().ok_or_else(|| KnowledgeError::Embedding("no vector for the query".into()))?)
    };
    let lexical_hits = match early_lexical {
        Some(task) => Some(task.await.map_err(joined)??),
        None => None,
    };
    let shared = shared.clone();
    let request = request.clone();
    tokio::task::spawn_blocking(move || {
        let ranked = Ranked { mode, depth, lexical: lexical_hits, query_vector };
        search_blocking(&shared, &searcher, ws, &kbs, &request, ranked)
    })
    .await
    .map_err(joined)?
}

/// What a search has (or still needs to compute) before its hits are read.
struct Ranked {
    mode: SearchMode,
    /// Candidates per list.
    depth: usize,
    /// BM25 hits, when already computed.
    lexical: Option<Vec<(ChunkId, f32, DocAddress)>>,
    query_vector: Option<Vec<f32>>,
}

/// Candidates taken from each list before fusion.
fn fusion_depth(top_k: usize) -> usize {
    (top_k * 2).max(100)
}

fn search_blocking(
    shared: &Shared,
    searcher: &Searcher,
    ws: WorkspaceId,
    kbs: &[KnowledgeBaseId],
    request: &SearchRequest,
    ranked: Ranked,
) -> Result<Vec<SearchHit>, KnowledgeError> {
    let Ranked { mode, depth, lexical: early, query_vector } = ranked;
    let lexical = match early {
        Some(hits) => hits,
        None if mode == SearchMode::Semantic => Vec::new(),
        None => lexical(shared, searcher, ws, kbs, &request.query, depth)?,
    };
    let dense = match query_vector.as_deref() {
        Some(q) => {
            shared.vectors.read().map_err(|_| KnowledgeError::WriterGone)?.search(ws, kbs, q, depth)
        }
        None => Vec::new(),
    };
    let mut addresses: HashMap<ChunkId, DocAddress> =
        lexical.iter().map(|(id, _, addr)| (*id, *addr)).collect();
    let ranked: Vec<(ChunkId, f32)> = match mode {
        SearchMode::Lexical => lexical.iter().map(|(id, s, _)| (*id, *s)).collect(),
        SearchMode::Semantic => dense,
        SearchMode::Hybrid => reciprocal_rank_fusion(&[
            lexical.iter().map(|(id, _, _)| *id).collect(),
            dense.iter().map(|(id, _)| *id).collect(),
        ]),
    };
    let mut hits = Vec::with_capacity(request.top_k);
    for (chunk_id, score) in ranked {
        if hits.len() == request.top_k {
            break;
        }
        if request.min_score.is_some_and(|min| score < min) {
            continue;
        }
        let address = match addresses.remove(&chunk_id) {
            Some(a) => Some(a),
            None => locate(shared, searcher, chunk_id)?,
        };
        // A vector whose chunk is not (or no longer) in the text index is skipped.
        let Some(address) = address else { continue };
        let doc: TantivyDocument = searcher.doc(address)?;
        if shared.fields.workspace_of(&doc) != Some(ws) {
            continue;
        }
        if let Some(hit) = shared.fields.read_hit(&doc, score)
            && kbs.contains(&hit.metadata.knowledge_base_id)
        {
            hits.push(hit);
        }
    }
    Ok(hits)
}

fn tenant_filter(shared: &Shared, ws: WorkspaceId, kbs: &[KnowledgeBaseId]) -> Box<dyn Query> {
    let f = shared.fields;
    let term_query = |field, value: &str| -> Box<dyn Query> {
        Box::new(TermQuery::new(f.term(field, value), IndexRecordOption::Basic))
    };
    let any_kb = BooleanQuery::new(
        kbs.iter().map(|kb| (Occur::Should, term_query(f.kb_key, &kb_key(ws, *kb)))).collect(),
    );
    Box::new(BooleanQuery::new(vec![
        (Occur::Must, term_query(f.workspace_id, &ws.to_string())),
        (Occur::Must, Box::new(any_kb)),
    ]))
}

/// BM25 top `n` within the tenant filter: (chunk, score, address).
fn lexical(
    shared: &Shared,
    searcher: &Searcher,
    ws: WorkspaceId,
    kbs: &[KnowledgeBaseId],
    query: &str,
    n: usize,
) -> Result<Vec<(ChunkId, f32, DocAddress)>, KnowledgeError> {
    let f = shared.fields;
    let mut analyzer = shared.index.tokenizer_for_field(f.content)?;
    let mut terms: Vec<Box<dyn Query>> = Vec::new();
    let mut stream = analyzer.token_stream(query);
    while stream.advance() {
        let term = f.term(f.content, &stream.token().text);
        terms.push(Box::new(TermQuery::new(term, IndexRecordOption::WithFreqs)));
    }
    if terms.is_empty() {
        return Ok(Vec::new());
    }
    let text = BooleanQuery::new(terms.into_iter().map(|q| (Occur::Should, q)).collect());
    let query = BooleanQuery::new(vec![
        (Occur::Must, Box::new(text) as Box<dyn Query>),
        (Occur::Must, Box::new(ConstScoreQuery::new(tenant_filter(shared, ws, kbs), 0.0))),
    ]);
    let top = searcher.search(&query, &TopDocs::with_limit(n).order_by_score())?;
    let mut columns = HashMap::new();
    let mut out = Vec::with_capacity(top.len());
    for (score, address) in top {
        let seg = address.segment_ord;
        let (hi, lo) = match columns.entry(seg) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => {
                let fast = searcher.segment_reader(seg).fast_fields();
                e.insert((fast.u64(CHUNK_HI)?, fast.u64(CHUNK_LO)?))
            }
        };
        if let (Some(h), Some(l)) = (hi.first(address.doc_id), lo.first(address.doc_id)) {
            out.push((join_uuid(h, l), score, address));
        }
    }
    Ok(out)
}

/// Finds a chunk's document by its id.
fn locate(
    shared: &Shared,
    searcher: &Searcher,
    chunk_id: ChunkId,
) -> Result<Option<DocAddress>, KnowledgeError> {
    let f = shared.fields;
    let query = TermQuery::new(f.term(f.chunk_id, &chunk_id.to_string()), IndexRecordOption::Basic);
    let top = searcher.search(&query, &TopDocs::with_limit(1).order_by_score())?;
    Ok(top.first().map(|(_, a)| *a))
}
