//! The search index: BM25 (tantivy) plus optional dense vectors, fused by reciprocal rank.
//!
//! One [`KnowledgeIndex`] serves every workspace from one directory. Writes go to a dedicated
//! writer thread that applies every queued operation, commits once and reloads the reader
//! before acknowledging: concurrent ingestion is batched into few commits, and a deleted
//! document is gone from search as soon as its delete returns. Searches never take the writer
//! lock: tantivy's reader hands out immutable snapshots, vectors sit behind a read-write lock.

mod schema;
mod search;
mod vectors;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use domain::{ChunkId, DocumentId, KnowledgeBaseId, WorkspaceId};
use serde::{Deserialize, Serialize};
use tantivy::collector::Count;
use tantivy::query::TermQuery;
use tantivy::schema::IndexRecordOption;
use tantivy::{Index, IndexReader, ReloadPolicy};

use crate::{Chunk, Embedder, KnowledgeError};
use schema::{Fields, kb_key};
use vectors::{Quantized, VectorOp, VectorStore};
use writer::{WriteOp, WriterHandle};

pub use search::{RRF_K, reciprocal_rank_fusion};

/// Tuning of the index writer.
#[derive(Debug, Clone, Copy)]
pub struct IndexConfig {
    /// Indexing threads of tantivy's writer (1 leaves a core for searches on small machines).
    pub writer_threads: usize,
    /// Memory budget of the writer, in bytes, across its threads (at least 15 MB per thread).
    pub writer_memory_bytes: usize,
}

impl Default for IndexConfig {
    fn default() -> Self {
        Self { writer_threads: 1, writer_memory_bytes: 64 * 1024 * 1024 }
    }
}

/// How to search.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    /// BM25 only.
    Lexical,
    /// Dense vectors only (needs an embedding model).
    Semantic,
    /// Both, fused by reciprocal rank; lexical alone when no model is configured.
    #[default]
    Hybrid,
}

impl std::str::FromStr for SearchMode {
    type Err = KnowledgeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "lexical" => Ok(Self::Lexical),
            "semantic" => Ok(Self::Semantic),
            "hybrid" => Ok(Self::Hybrid),
            other => Err(KnowledgeError::InvalidRequest(format!(
                "unknown search mode `{other}` (expected lexical, semantic or hybrid)"
            ))),
        }
    }
}

/// A search over some knowledge bases of one workspace.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SearchRequest {
    /// The user's words (no query syntax: it is analysed like the indexed text).
    pub query: String,
    /// How many results at most (1..=1000).
    pub top_k: usize,
    /// Results scoring below this are dropped. Scores are BM25 (lexical), cosine (semantic)
    /// or reciprocal-rank sums (hybrid), so a threshold only makes sense for one mode.
    pub min_score: Option<f32>,
    /// Lexical, semantic or hybrid.
    pub mode: SearchMode,
}

/// Where a chunk comes from: what a citation shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChunkMetadata {
    /// The knowledge base holding the document.
    pub knowledge_base_id: KnowledgeBaseId,
    /// The document.
    pub document_id: DocumentId,
    /// Its title.
    pub document_title: String,
    /// Its source URL or file name.
    pub source_url: Option<String>,
    /// The page the chunk starts on.
    pub page: Option<u32>,
    /// The heading path ("Intro > Setup").
    pub heading: Option<String>,
    /// The chunk's position in the document.
    pub ordinal: u32,
}

/// One search result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    /// The chunk.
    pub chunk_id: ChunkId,
    /// Its text.
    pub content: String,
    /// Its score in the requested mode (higher is better).
    pub score: f32,
    /// Its citation.
    pub metadata: ChunkMetadata,
}

/// Size of one knowledge base in the index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KbStats {
    /// The knowledge base.
    pub knowledge_base_id: KnowledgeBaseId,
    /// Chunks searchable now.
    pub chunk_count: u64,
}

/// The shared state behind a [`KnowledgeIndex`].
pub(crate) struct Shared {
    pub index: Index,
    pub fields: Fields,
    pub reader: IndexReader,
    pub vectors: RwLock<VectorStore>,
    pub embedder: Arc<dyn Embedder>,
}

/// The knowledge index of a whole installation. Cheap to clone; safe from many tasks.
#[derive(Clone)]
pub struct KnowledgeIndex {
    shared: Arc<Shared>,
    writer: WriterHandle,
    dir: PathBuf,
}

impl std::fmt::Debug for KnowledgeIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KnowledgeIndex").field("dir", &self.dir).finish()
    }
}

impl KnowledgeIndex {
    /// Opens the index in `dir` (created if missing). `embedder` embeds chunks on write and
    /// queries on search; pass [`crate::NoEmbedder`] for lexical only.
    pub fn open(
        dir: &Path,
        embedder: Arc<dyn Embedder>,
        config: IndexConfig,
    ) -> Result<Self, KnowledgeError> {
        let text_dir = dir.join("tantivy");
        std::fs::create_dir_all(&text_dir).map_err(KnowledgeError::io(&text_dir))?;
        let (schema, fields) = schema::build_schema();
        let mmap = tantivy::directory::MmapDirectory::open(&text_dir)
            .map_err(|e| KnowledgeError::Index(e.into()))?;
        let index = Index::open_or_create(mmap, schema)?;
        index.tokenizers().register(schema::ANALYZER, schema::english_analyzer());
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        let threads = config.writer_threads.max(1);
        let memory = config.writer_memory_bytes.max(15_000_000 * threads);
        // A handle dropped without `close` releases the lock a moment later: wait a little.
        let mut attempts = 0;
        let tantivy_writer = loop {
            match index.writer_with_num_threads(threads, memory) {
                Err(tantivy::TantivyError::LockFailure(..)) if attempts < 50 => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                Err(tantivy::TantivyError::LockFailure(..)) => {
                    return Err(KnowledgeError::Locked(dir.to_owned()));
                }
                other => break other?,
            }
        };
        let vectors = RwLock::new(VectorStore::open(dir)?);
        let shared = Arc::new(Shared { index, fields, reader, vectors, embedder });
        let writer = writer::spawn(shared.clone(), tantivy_writer);
        Ok(Self { shared, writer, dir: dir.to_owned() })
    }

    /// Finishes queued writes and merges, and releases the directory (so it can be reopened).
    /// Other clones of this handle get [`KnowledgeError::WriterGone`] on writes afterwards.
    pub async fn close(self) {
        self.writer.close().await;
    }

    /// The embedder in use.
    pub fn embedder(&self) -> &Arc<dyn Embedder> {
        &self.shared.embedder
    }

    /// Replaces every chunk of `document_id` with `chunks`, atomically: searches see either
    /// the old chunks or the new ones, never a mix or neither.
    pub async fn replace_document(
        &self,
        ws: WorkspaceId,
        kb: KnowledgeBaseId,
        document_id: DocumentId,
        chunks: Vec<Chunk>,
    ) -> Result<(), KnowledgeError> {
        self.replace_documents(ws, kb, vec![(document_id, chunks)]).await
    }

    /// Replaces the chunks of many documents in one commit (bulk ingestion).
    pub async fn replace_documents(
        &self,
        ws: WorkspaceId,
        kb: KnowledgeBaseId,
        documents: Vec<(DocumentId, Vec<Chunk>)>,
    ) -> Result<(), KnowledgeError> {
        for (doc, chunks) in &documents {
            if let Some(c) = chunks.iter().find(|c| c.document_id != *doc) {
                return Err(KnowledgeError::InvalidRequest(format!(
                    "chunk {} belongs to {}, not to {doc}",
                    c.chunk_id, c.document_id
                )));
            }
        }
        let vectors = self.embed_chunks(&documents).await?;
        let mut ops = Vec::with_capacity(documents.len());
        let mut vectors = vectors.into_iter();
        for (doc, chunks) in documents {
            let mut vector_ops = vec![VectorOp::DeleteDoc { ws, kb, doc }];
            if self.shared.embedder.is_enabled() {
                for c in &chunks {
                    let v = vectors.next().ok_or_else(|| {
                        KnowledgeError::Embedding("fewer vectors than chunks".into())
                    })?;
                    let vector = Quantized::from_f32(&v);
                    vector_ops.push(VectorOp::Put { ws, kb, doc, chunk: c.chunk_id, vector });
                }
            }
            ops.push(WriteOp::Replace { ws, kb, doc, chunks, vector_ops });
        }
        self.writer.submit(ops).await
    }

    async fn embed_chunks(
        &self,
        documents: &[(DocumentId, Vec<Chunk>)],
    ) -> Result<Vec<Vec<f32>>, KnowledgeError> {
        if !self.shared.embedder.is_enabled() {
            return Ok(Vec::new());
        }
        let texts: Vec<String> =
            documents.iter().flat_map(|(_, cs)| cs.iter().map(|c| c.content.clone())).collect();
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let vectors = self.shared.embedder.embed(&texts).await?;
        if vectors.len() != texts.len() {
            return Err(KnowledgeError::Embedding(format!(
                "asked for {} vectors, got {}",
                texts.len(),
                vectors.len()
            )));
        }
        let store = self.shared.vectors.read().map_err(|_| KnowledgeError::WriterGone)?;
        if let Some(v) = vectors.first() {
            store.check_dim(v.len())?;
        }
        Ok(vectors)
    }

    /// Removes a document's chunks; they are gone from search when this returns.
    pub async fn delete_document(
        &self,
        ws: WorkspaceId,
        kb: KnowledgeBaseId,
        doc: DocumentId,
    ) -> Result<(), KnowledgeError> {
        self.writer.submit(vec![WriteOp::DeleteDocument { ws, kb, doc }]).await
    }

    /// Removes every chunk of a knowledge base.
    pub async fn delete_knowledge_base(
        &self,
        ws: WorkspaceId,
        kb: KnowledgeBaseId,
    ) -> Result<(), KnowledgeError> {
        self.writer.submit(vec![WriteOp::DeleteKnowledgeBase { ws, kb }]).await
    }

    /// Searches the given knowledge bases of `ws`. Knowledge bases of other workspaces match
    /// nothing, whatever ids are passed.
    pub async fn search(
        &self,
        ws: WorkspaceId,
        kbs: &[KnowledgeBaseId],
        request: &SearchRequest,
    ) -> Result<Vec<SearchHit>, KnowledgeError> {
        search::search(&self.shared, ws, kbs, request).await
    }

    /// Chunk counts of the given knowledge bases of `ws`.
    pub fn stats(
        &self,
        ws: WorkspaceId,
        kbs: &[KnowledgeBaseId],
    ) -> Result<Vec<KbStats>, KnowledgeError> {
        let searcher = self.shared.reader.searcher();
        kbs.iter()
            .map(|kb| {
                let term = self.shared.fields.term(self.shared.fields.kb_key, &kb_key(ws, *kb));
                let count =
                    searcher.search(&TermQuery::new(term, IndexRecordOption::Basic), &Count)?;
                Ok(KbStats { knowledge_base_id: *kb, chunk_count: count as u64 })
            })
            .collect()
    }

    /// Live dense vectors in the whole index (all workspaces); for operators and benchmarks.
    pub fn vector_count(&self) -> usize {
        self.shared.vectors.read().map(|v| v.len()).unwrap_or(0)
    }
}
