//! The tantivy schema, the English analyzer, and conversions between chunks and tantivy docs.
//!
//! Tenant keys are stored as composite strings (`ws/kb`, `ws/kb/doc`) so that a filter or a
//! delete on a knowledge base or a document can never reach another workspace's chunks, even if
//! two workspaces somehow held the same kb id.

use domain::{ChunkId, DocumentId, KnowledgeBaseId, WorkspaceId};
use tantivy::schema::{
    FAST, Field, INDEXED, IndexRecordOption, STORED, STRING, Schema, TextFieldIndexing,
    TextOptions, Value,
};
use tantivy::tokenizer::{
    Language, LowerCaser, RemoveLongFilter, SimpleTokenizer, Stemmer, StopWordFilter, TextAnalyzer,
};
use tantivy::{TantivyDocument, Term};

use crate::Chunk;
use crate::index::{ChunkMetadata, SearchHit};

/// Name under which the analyzer is registered with the index.
pub(crate) const ANALYZER: &str = "echoforge_en";

/// The English analyzer: split on non-alphanumerics, drop overlong tokens, lowercase, drop
/// stop words, Snowball-stem (Lucene's EnglishAnalyzer does the same steps).
pub(crate) fn english_analyzer() -> TextAnalyzer {
    let builder = TextAnalyzer::builder(SimpleTokenizer::default())
        .filter(RemoveLongFilter::limit(40))
        .filter(LowerCaser);
    match StopWordFilter::new(Language::English) {
        Some(stop) => builder.filter(stop).filter(Stemmer::new(Language::English)).build(),
        None => builder.filter(Stemmer::new(Language::English)).build(),
    }
}

pub(crate) const CHUNK_HI: &str = "chunk_hi";
pub(crate) const CHUNK_LO: &str = "chunk_lo";

pub(crate) fn split_uuid(id: ChunkId) -> (u64, u64) {
    let n = id.uuid().as_u128();
    ((n >> 64) as u64, n as u64)
}

pub(crate) fn join_uuid(hi: u64, lo: u64) -> ChunkId {
    ChunkId::from_uuid(uuid::Uuid::from_u128((u128::from(hi) << 64) | u128::from(lo)))
}

/// Handles to every field.
#[derive(Clone, Copy)]
pub(crate) struct Fields {
    pub chunk_id: Field,
    /// The chunk id's UUID as two u64 fast fields: lexical hits are keyed for fusion without
    /// reading stored documents.
    pub chunk_hi: Field,
    pub chunk_lo: Field,
    pub workspace_id: Field,
    pub kb_id: Field,
    pub kb_key: Field,
    pub doc_key: Field,
    pub document_id: Field,
    pub document_title: Field,
    pub source_url: Field,
    pub page: Field,
    pub heading: Field,
    pub ordinal: Field,
    pub token_count: Field,
    pub content: Field,
}

pub(crate) fn build_schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = TextOptions::default()
        .set_indexing_options(
            TextFieldIndexing::default()
                .set_tokenizer(ANALYZER)
                .set_index_option(IndexRecordOption::WithFreqs),
        )
        .set_stored();
    let fields = Fields {
        chunk_id: b.add_text_field("chunk_id", STRING | STORED),
        chunk_hi: b.add_u64_field(CHUNK_HI, FAST),
        chunk_lo: b.add_u64_field(CHUNK_LO, FAST),
        workspace_id: b.add_text_field("workspace_id", STRING | STORED),
        kb_id: b.add_text_field("kb_id", STORED),
        kb_key: b.add_text_field("kb_key", STRING),
        doc_key: b.add_text_field("doc_key", STRING),
        document_id: b.add_text_field("document_id", STORED),
        document_title: b.add_text_field("document_title", STORED),
        source_url: b.add_text_field("source_url", STORED),
        page: b.add_u64_field("page", STORED),
        heading: b.add_text_field("heading", STORED),
        ordinal: b.add_u64_field("ordinal", STORED | INDEXED),
        token_count: b.add_u64_field("token_count", STORED),
        content: b.add_text_field("content", text),
    };
    (b.build(), fields)
}

pub(crate) fn kb_key(ws: WorkspaceId, kb: KnowledgeBaseId) -> String {
    format!("{ws}/{kb}")
}

pub(crate) fn doc_key(ws: WorkspaceId, kb: KnowledgeBaseId, doc: DocumentId) -> String {
    format!("{ws}/{kb}/{doc}")
}

impl Fields {
    pub(crate) fn term(&self, field: Field, value: &str) -> Term {
        Term::from_field_text(field, value)
    }

    pub(crate) fn chunk_document(
        &self,
        ws: WorkspaceId,
        kb: KnowledgeBaseId,
        c: &Chunk,
    ) -> TantivyDocument {
        let mut d = TantivyDocument::default();
        d.add_text(self.chunk_id, c.chunk_id.to_string());
        let (hi, lo) = split_uuid(c.chunk_id);
        d.add_u64(self.chunk_hi, hi);
        d.add_u64(self.chunk_lo, lo);
        d.add_text(self.workspace_id, ws.to_string());
        d.add_text(self.kb_id, kb.to_string());
        d.add_text(self.kb_key, kb_key(ws, kb));
        d.add_text(self.doc_key, doc_key(ws, kb, c.document_id));
        d.add_text(self.document_id, c.document_id.to_string());
        d.add_text(self.document_title, &c.document_title);
        if let Some(url) = &c.source_url {
            d.add_text(self.source_url, url);
        }
        if let Some(page) = c.page {
            d.add_u64(self.page, u64::from(page));
        }
        if let Some(heading) = &c.heading {
            d.add_text(self.heading, heading);
        }
        d.add_u64(self.ordinal, u64::from(c.ordinal));
        d.add_u64(self.token_count, u64::from(c.token_count));
        d.add_text(self.content, &c.content);
        d
    }

    fn text(&self, d: &TantivyDocument, f: Field) -> Option<String> {
        d.get_first(f).and_then(|v| v.as_str()).map(str::to_owned)
    }

    fn number(&self, d: &TantivyDocument, f: Field) -> Option<u64> {
        d.get_first(f).and_then(|v| v.as_u64())
    }

    /// The workspace a stored chunk belongs to (checked again before anything is returned).
    pub(crate) fn workspace_of(&self, d: &TantivyDocument) -> Option<WorkspaceId> {
        self.text(d, self.workspace_id).and_then(|s| WorkspaceId::parse(&s).ok())
    }

    pub(crate) fn read_hit(&self, d: &TantivyDocument, score: f32) -> Option<SearchHit> {
        Some(SearchHit {
            chunk_id: ChunkId::parse(&self.text(d, self.chunk_id)?).ok()?,
            content: self.text(d, self.content).unwrap_or_default(),
            score,
            metadata: ChunkMetadata {
                knowledge_base_id: KnowledgeBaseId::parse(&self.text(d, self.kb_id)?).ok()?,
                document_id: DocumentId::parse(&self.text(d, self.document_id)?).ok()?,
                document_title: self.text(d, self.document_title).unwrap_or_default(),
                source_url: self.text(d, self.source_url),
                page: self.number(d, self.page).and_then(|p| u32::try_from(p).ok()),
                heading: self.text(d, self.heading),
                ordinal: self.number(d, self.ordinal).unwrap_or(0) as u32,
            },
        })
    }
}
