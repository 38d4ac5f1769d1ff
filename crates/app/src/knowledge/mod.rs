//! Knowledge bases and their documents: create and manage bases, accept uploads (the file is
//! stored, the document recorded `pending` and an ingestion job queued — durably, so a crash
//! loses nothing accepted), ingest (extract → deduplicate → chunk → index), and search.

pub(crate) mod console;
pub(crate) mod sync;
pub(crate) mod upload;

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use domain::time::now_ms;
use domain::{DocumentId, KnowledgeBaseId, Permission};
use knowledge::{
    Chunker, ChunkingConfig, DocBlock, DocumentInput, KnowledgeIndex, SearchHit, SearchMode,
    SearchRequest,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use store::{
    Document, DocumentIndexed, DocumentStatus, KnowledgeBase, KnowledgeBasePatch,
    KnowledgeBaseStats, NewDocument, NewJob, NewKnowledgeBase, Page, StoreError, SyncFrequency,
    TenantScope,
};

use crate::worker::JobError;
use crate::{App, AppError, FieldError, Principal};

/// The job queue ingestion runs on.
pub const INGEST_QUEUE: &str = "ingest";

/// What the knowledge features need at run time: the search index and the file store.
pub struct KnowledgeServices {
    pub index: KnowledgeIndex,
    pub files_dir: PathBuf,
    pub limits: extract::Limits,
    /// The SSRF-guarded client every URL import goes through.
    pub fetcher: fetch::GuardedClient,
}

#[derive(Serialize, Deserialize)]
pub(crate) struct CrawlPayload {
    pub(crate) workspace_id: domain::WorkspaceId,
    pub(crate) kb_id: KnowledgeBaseId,
    pub(crate) urls: Vec<String>,
    /// Link hops followed from each URL (0 = only the URL itself).
    pub(crate) hops: u8,
}

impl KnowledgeServices {
    /// Writes a document's original file to the file store; returns its storage key.
    async fn save_file(
        &self,
        workspace: domain::WorkspaceId,
        id: DocumentId,
        bytes: &[u8],
    ) -> std::io::Result<String> {
        let key = format!("{workspace}/{id}");
        let path = self.files_dir.join(&key);
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        tokio::fs::write(&path, bytes).await?;
        Ok(key)
    }

    /// Removes a deleted document's chunks from the index (at once) and its file from the store.
    async fn discard(
        &self,
        workspace: domain::WorkspaceId,
        kb: KnowledgeBaseId,
        doc: &Document,
    ) -> Result<(), AppError> {
        self.index
            .delete_document(workspace, kb, doc.id)
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?;
        if let Some(key) = &doc.storage_key {
            let _ = tokio::fs::remove_file(self.files_dir.join(key)).await;
        }
        Ok(())
    }
}

pub(crate) type KnowledgeSlot = OnceLock<Arc<KnowledgeServices>>;

/// Input for creating or changing a knowledge base.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct KnowledgeBaseInput {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub chunk_size: Option<i64>,
    pub chunk_overlap: Option<i64>,
    pub embedding: Option<String>,
    pub sync_frequency: Option<String>,
}

/// A knowledge base with its live figures.
#[derive(Debug, Clone, Serialize)]
pub struct KnowledgeBaseView {
    #[serde(flatten)]
    pub kb: KnowledgeBase,
    pub stats: KnowledgeBaseStats,
}

pub use crate::knowledge::upload::{StageError, StagedFile, StagedUpload, Upload};

/// The result of accepting one file.
#[derive(Debug, Clone, Serialize)]
pub struct Accepted {
    pub document: Document,
    /// The document was refused because its type is not supported (it is recorded `failed`).
    pub rejected: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct IngestPayload {
    workspace_id: domain::WorkspaceId,
    document_id: DocumentId,
}

fn validate(input: &KnowledgeBaseInput, creating: bool) -> Result<(), AppError> {
    let mut errors = Vec::new();
    match input.name.as_deref().map(str::trim) {
        None if creating => errors.push(FieldError::new("/name", "required", "is required")),
        Some("") => errors.push(FieldError::new("/name", "required", "cannot be empty")),
        Some(n) if n.chars().count() > 200 => {
            errors.push(FieldError::new("/name", "too_long", "must be at most 200 characters"))
        }
        _ => {}
    }
    if let Some(size) = input.chunk_size
        && !(256..=2048).contains(&size)
    {
        errors.push(FieldError::new(
            "/chunk_size",
            "out_of_range",
            "must be between 256 and 2048 tokens",
        ));
    }
    if let Some(overlap) = input.chunk_overlap
        && !(0..=200).contains(&overlap)
    {
        errors.push(FieldError::new(
            "/chunk_overlap",
            "out_of_range",
            "must be between 0 and 200 tokens",
        ));
    }
    if let Some(freq) = &input.sync_frequency
        && SyncFrequency::parse(freq).is_none()
    {
        errors.push(FieldError::new(
            "/sync_frequency",
            "invalid",
            "must be manual, daily or weekly",
        ));
    }
    if let Some(e) = &input.embedding
        && e.trim().is_empty()
    {
        errors.push(FieldError::new("/embedding", "invalid", "cannot be empty"));
    }
    if errors.is_empty() { Ok(()) } else { Err(AppError::Validation(errors)) }
}

impl App {
    /// Installs the knowledge services (once, at start).
    pub fn set_knowledge(&self, services: KnowledgeServices) {
        let _ = self.inner.knowledge.set(Arc::new(services));
    }

    pub(crate) fn knowledge_services(&self) -> Result<&Arc<KnowledgeServices>, AppError> {
        self.knowledge()
    }

    fn knowledge(&self) -> Result<&Arc<KnowledgeServices>, AppError> {
        self.inner
            .knowledge
            .get()
            .ok_or_else(|| AppError::Unavailable("knowledge services are not configured".into()))
    }

    pub async fn create_knowledge_base(
        &self,
        p: &Principal,
        input: KnowledgeBaseInput,
    ) -> Result<KnowledgeBaseView, AppError> {
        p.require(Permission::Write)?;
        validate(&input, true)?;
        let kb = NewKnowledgeBase {
            id: KnowledgeBaseId::new(),
            name: input.name.unwrap_or_default().trim().to_owned(),
            description: input.description.flatten(),
            chunk_size: input.chunk_size.unwrap_or(512),
            chunk_overlap: input.chunk_overlap.unwrap_or(50),
            embedding: input.embedding.unwrap_or_else(|| "default".into()),
            sync_frequency: input
                .sync_frequency
                .as_deref()
                .and_then(SyncFrequency::parse)
                .unwrap_or(SyncFrequency::Manual),
        };
        let kb = self.inner.store.create_knowledge_base(&p.scope(), &kb, now_ms()).await?;
        Ok(KnowledgeBaseView { kb, stats: KnowledgeBaseStats::default() })
    }

    pub async fn knowledge_bases(
        &self,
        p: &Principal,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<KnowledgeBaseView>, AppError> {
        p.require_read(domain::Readable::Knowledge)?;
        let cursor = cursor
            .map(KnowledgeBaseId::parse)
            .transpose()
            .map_err(|e| AppError::bad_request("invalid_cursor", e.to_string()))?;
        let page = self.inner.store.list_knowledge_bases(&p.scope(), cursor, limit).await?;
        let mut data = Vec::with_capacity(page.data.len());
        for kb in page.data {
            let stats = self.inner.store.knowledge_base_stats(&p.scope(), kb.id).await?;
            data.push(KnowledgeBaseView { kb, stats });
        }
        Ok(Page { data, next_cursor: page.next_cursor })
    }

    pub async fn knowledge_base(
        &self,
        p: &Principal,
        id: KnowledgeBaseId,
    ) -> Result<KnowledgeBaseView, AppError> {
        p.require_read(domain::Readable::Knowledge)?;
        let scope = p.scope();
        let kb = self
            .inner
            .store
            .get_knowledge_base(&scope, id)
            .await
            .map_err(AppError::from_store("knowledge base"))?;
        let stats = self.inner.store.knowledge_base_stats(&scope, id).await?;
        Ok(KnowledgeBaseView { kb, stats })
    }

    pub async fn update_knowledge_base(
        &self,
        p: &Principal,
        id: KnowledgeBaseId,
        input: KnowledgeBaseInput,
    ) -> Result<KnowledgeBaseView, AppError> {
        p.require(Permission::Write)?;
        validate(&input, false)?;
        let patch = KnowledgeBasePatch {
            name: input.name.map(|n| n.trim().to_owned()),
            description: input.description,
            chunk_size: input.chunk_size,
            chunk_overlap: input.chunk_overlap,
            embedding: input.embedding,
            sync_frequency: input.sync_frequency.as_deref().and_then(SyncFrequency::parse),
        };
        self.inner
            .store
            .update_knowledge_base(&p.scope(), id, &patch, now_ms())
            .await
            .map_err(AppError::from_store("knowledge base"))?;
        self.knowledge_base(p, id).await
    }

    pub async fn delete_knowledge_base(
        &self,
        p: &Principal,
        id: KnowledgeBaseId,
    ) -> Result<(), AppError> {
        p.require(Permission::Write)?;
        let docs = self
            .inner
            .store
            .delete_knowledge_base(&p.scope(), id)
            .await
            .map_err(AppError::from_store("knowledge base"))?;
        let k = self.knowledge()?;
        k.index
            .delete_knowledge_base(p.workspace_id, id)
            .await
            .map_err(|e| AppError::Internal(e.to_string()))?;
        for doc in docs {
            if let Some(key) = doc.storage_key {
                let _ = tokio::fs::remove_file(k.files_dir.join(key)).await;
            }
        }
        Ok(())
    }

    /// Stores each file, records it `pending` and queues its ingestion. A file of an
    /// unsupported type is recorded `failed` with the reason, and the others go on.
    pub async fn upload_documents(
        &self,
        p: &Principal,
        kb: KnowledgeBaseId,
        files: Vec<Upload>,
    ) -> Result<Vec<Accepted>, AppError> {
        p.require(Permission::Upload)?;
        // The plan's document limit binds the API; the operator's `kb ingest` is not held to it.
        self.check_document_limit(&p.scope(), files.len()).await?;
        self.check_storage_limit(&p.scope(), files.iter().map(|f| f.file.size.max(1)).sum())
            .await?;
        let cost = self.credit_cost(None, crate::billing::credits::DOCUMENT_UPLOAD);
        self.check_credits(&p.scope(), cost * files.len() as i64).await?;
        let accepted = self.accept_uploads(&p.scope(), kb, files).await?;
        let n = accepted.iter().filter(|a| a.rejected.is_none()).count() as i64;
        self.spend_credits(
            p.scope().workspace_id(),
            crate::billing::credits::DOCUMENT_UPLOAD,
            cost,
            n,
        );
        Ok(accepted)
    }

    /// Checks the caller may upload to `kb` (it exists in their workspace), before any bytes
    /// are received.
    pub async fn check_upload_target(
        &self,
        p: &Principal,
        kb: KnowledgeBaseId,
    ) -> Result<(), AppError> {
        p.require(Permission::Upload)?;
        self.inner
            .store
            .get_knowledge_base(&p.scope(), kb)
            .await
            .map_err(AppError::from_store("knowledge base"))?;
        // Refused before any bytes arrive when the plan has no room for one more document.
        self.check_document_limit(&p.scope(), 1).await?;
        self.check_storage_limit(&p.scope(), 0).await?;
        Ok(())
    }

    /// [`App::upload_documents`] once the caller is authorized for `scope`.
    pub(crate) async fn accept_uploads(
        &self,
        scope: &TenantScope,
        kb: KnowledgeBaseId,
        files: Vec<Upload>,
    ) -> Result<Vec<Accepted>, AppError> {
        let scope = *scope;
        self.inner
            .store
            .get_knowledge_base(&scope, kb)
            .await
            .map_err(AppError::from_store("knowledge base"))?;
        if files.is_empty() {
            return Err(AppError::field("/files", "required", "attach at least one file"));
        }
        let k = self.knowledge()?;
        let mut out = Vec::with_capacity(files.len());
        for file in files {
            let id = DocumentId::new();
            let key = format!("{}/{id}", scope.workspace_id());
            let (size, sha256, head) =
                (file.file.size, file.file.sha256.clone(), file.file.head.clone());
            file.file
                .keep_as(&k.files_dir.join(&key))
                .await
                .map_err(|e| AppError::Internal(format!("could not store the upload: {e}")))?;
            let title = file
                .filename
                .rsplit_once('.')
                .map(|(stem, _)| stem)
                .unwrap_or(&file.filename)
                .to_owned();
            let doc = NewDocument {
                id,
                kb_id: kb,
                title,
                filename: Some(file.filename.clone()),
                content_type: file.content_type.clone(),
                size_bytes: size as i64,
                storage_key: Some(key),
                // The uploaded bytes' SHA-256, computed while they streamed in.
                etag: Some(sha256),
                ..Default::default()
            };
            let document = self.inner.store.create_document(&scope, &doc, now_ms()).await?;
            let rejected = if size == 0 {
                Some("the file is empty".to_owned())
            } else if extract::detect(&file.filename, file.content_type.as_deref(), &head).is_none()
            {
                Some(format!(
                    "unsupported file type `{}`: upload PDF, Word, PowerPoint, Excel, HTML, Markdown, text, CSV, JSON, EPUB, RST or email files",
                    file.filename
                ))
            } else {
                None
            };
            let document = match &rejected {
                Some(reason) => {
                    self.inner.store.mark_document_failed(&scope, id, reason, now_ms()).await?
                }
                None => {
                    self.enqueue_ingest(&scope, id).await?;
                    document
                }
            };
            out.push(Accepted { document, rejected });
        }
        Ok(out)
    }

    async fn enqueue_ingest(&self, scope: &TenantScope, id: DocumentId) -> Result<(), AppError> {
        let payload = serde_json::to_value(IngestPayload {
            workspace_id: scope.workspace_id(),
            document_id: id,
        })
        .map_err(|e| AppError::Internal(e.to_string()))?;
        let now = now_ms();
        self.inner
            .store
            .enqueue_job(
                &NewJob {
                    queue: INGEST_QUEUE.into(),
                    kind: "document.ingest".into(),
                    payload,
                    workspace_id: Some(scope.workspace_id().to_string()),
                    max_attempts: 3,
                    run_at: now,
                },
                now,
            )
            .await?;
        Ok(())
    }

    pub async fn documents(
        &self,
        p: &Principal,
        kb: KnowledgeBaseId,
        status: Option<&str>,
        cursor: Option<&str>,
        limit: Option<u32>,
    ) -> Result<Page<Document>, AppError> {
        p.require_read(domain::Readable::Knowledge)?;
        let scope = p.scope();
        self.inner
            .store
            .get_knowledge_base(&scope, kb)
            .await
            .map_err(AppError::from_store("knowledge base"))?;
        let status = status
            .map(|s| {
                DocumentStatus::parse(s).ok_or_else(|| {
                    AppError::bad_request(
                        "invalid_status",
                        "status must be pending, processing, indexed or failed",
                    )
                })
            })
            .transpose()?;
        let cursor = cursor
            .map(DocumentId::parse)
            .transpose()
            .map_err(|e| AppError::bad_request("invalid_cursor", e.to_string()))?;
        Ok(self.inner.store.list_documents(&scope, kb, status, cursor, limit).await?)
    }

    pub async fn document(
        &self,
        p: &Principal,
        kb: KnowledgeBaseId,
        id: DocumentId,
    ) -> Result<Document, AppError> {
        p.require_read(domain::Readable::Knowledge)?;
        let doc = self
            .inner
            .store
            .get_document(&p.scope(), id)
            .await
            .map_err(AppError::from_store("document"))?;
        if doc.kb_id != kb {
            return Err(AppError::NotFound { what: "document" });
        }
        Ok(doc)
    }

    /// Deletes a document; its chunks leave the index before this returns.
    pub async fn delete_document(
        &self,
        p: &Principal,
        kb: KnowledgeBaseId,
        id: DocumentId,
    ) -> Result<(), AppError> {
        p.require(Permission::Write)?;
        self.document(p, kb, id).await?;
        let doc = self
            .inner
            .store
            .delete_document(&p.scope(), id)
            .await
            .map_err(AppError::from_store("document"))?;
        self.knowledge()?.discard(p.workspace_id, kb, &doc).await
    }

    /// Queues a document for ingestion again.
    pub async fn reindex_document(
        &self,
        p: &Principal,
        kb: KnowledgeBaseId,
        id: DocumentId,
    ) -> Result<Document, AppError> {
        p.require(Permission::Write)?;
        self.document(p, kb, id).await?;
        let scope = p.scope();
        let doc = self.inner.store.mark_document_pending(&scope, id, now_ms()).await?;
        self.enqueue_ingest(&scope, id).await?;
        Ok(doc)
    }

    /// Searches one knowledge base of the caller's workspace.
    pub async fn search_knowledge(
        &self,
        p: &Principal,
        kb: KnowledgeBaseId,
        query: &str,
        top_k: Option<usize>,
        min_score: Option<f32>,
        mode: Option<&str>,
    ) -> Result<Vec<SearchHit>, AppError> {
        p.require_read(domain::Readable::Knowledge)?;
        self.inner
            .store
            .get_knowledge_base(&p.scope(), kb)
            .await
            .map_err(AppError::from_store("knowledge base"))?;
        let mut errors = Vec::new();
        if query.trim().is_empty() {
            errors.push(FieldError::new("/query", "required", "is required"));
        }
        let top_k = top_k.unwrap_or(5);
        if !(1..=100).contains(&top_k) {
            errors.push(FieldError::new("/top_k", "out_of_range", "must be between 1 and 100"));
        }
        let mode = match mode {
            None => SearchMode::Hybrid,
            Some(m) => m.parse().unwrap_or_else(|_| {
                errors.push(FieldError::new(
                    "/mode",
                    "invalid",
                    "must be lexical, semantic or hybrid",
                ));
                SearchMode::Hybrid
            }),
        };
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        let k = self.knowledge()?;
        let request = SearchRequest { query: query.to_owned(), top_k, min_score, mode };
        k.index.search(p.workspace_id, &[kb], &request).await.map_err(|e| match e {
            knowledge::KnowledgeError::EmbeddingsUnavailable => AppError::bad_request(
                "embeddings_unavailable",
                "semantic search needs an embedding model; use lexical or hybrid",
            ),
            knowledge::KnowledgeError::InvalidRequest(m) => {
                AppError::bad_request("invalid_search", m)
            }
            other => AppError::Internal(other.to_string()),
        })
    }

    /// Queues a crawl of `urls` (same site, `crawl_depth` 1–3 levels: 1 is the pages
    /// themselves). Each fetched page becomes a document that is then ingested; pages that
    /// cannot be fetched (blocked address, robots.txt, 404…) are recorded `failed` with the
    /// reason. Literal private addresses are refused at once.
    pub async fn import_urls(
        &self,
        p: &Principal,
        kb: KnowledgeBaseId,
        urls: &[String],
        crawl_depth: Option<u8>,
    ) -> Result<usize, AppError> {
        p.require(Permission::Upload)?;
        let scope = p.scope();
        let base = self
            .inner
            .store
            .get_knowledge_base(&scope, kb)
            .await
            .map_err(AppError::from_store("knowledge base"))?;
        let k = self.knowledge()?;
        let mut errors = Vec::new();
        if urls.is_empty() || urls.len() > 20 {
            errors.push(FieldError::new("/urls", "invalid", "give between 1 and 20 URLs"));
        }
        for (i, url) in urls.iter().enumerate() {
            if let Err(e) = k.fetcher.check_url(url) {
                errors.push(FieldError::new(&format!("/urls/{i}"), e.code(), e.to_string()));
            }
        }
        let depth = crawl_depth.unwrap_or(1);
        if !(1..=3).contains(&depth) {
            errors.push(FieldError::new("/crawl_depth", "out_of_range", "must be 1, 2 or 3"));
        }
        if !errors.is_empty() {
            return Err(AppError::Validation(errors));
        }
        // Pages past the limit are not kept when the crawl runs (see `crawl_now`).
        self.check_document_limit(&scope, 1).await?;
        let payload = serde_json::to_value(CrawlPayload {
            workspace_id: p.workspace_id,
            kb_id: kb,
            urls: urls.to_vec(),
            hops: depth - 1,
        })
        .map_err(|e| AppError::Internal(e.to_string()))?;
        let now = now_ms();
        self.inner
            .store
            .enqueue_job(
                &NewJob {
                    queue: INGEST_QUEUE.into(),
                    kind: "kb.crawl".into(),
                    payload,
                    workspace_id: Some(p.workspace_id.to_string()),
                    max_attempts: 2,
                    run_at: now,
                },
                now,
            )
            .await?;
        // Re-syncs crawl these roots again, and count from this import.
        let roots =
            crate::knowledge::sync::merge_roots(base.crawl_roots.as_deref(), urls, depth - 1);
        self.inner.store.record_url_import(&scope, kb, &roots, now).await?;
        Ok(urls.len())
    }

    /// Runs one knowledge job (`document.ingest` or `kb.crawl`).
    pub async fn knowledge_job(&self, kind: &str, payload: &str) -> Result<(), JobError> {
        match kind {
            "kb.crawl" => self.crawl_job(payload).await,
            _ => self.ingest_job(payload).await,
        }
    }

    async fn crawl_job(&self, payload: &str) -> Result<(), JobError> {
        let p: CrawlPayload =
            serde_json::from_str(payload).map_err(|e| JobError::Permanent(e.to_string()))?;
        self.crawl_now(p.workspace_id, p.kb_id, &p.urls, p.hops, true).await.map(|_| ())
    }

    /// Crawls `urls` now (`hops` link levels beyond them): each fetched page becomes a
    /// document queued for ingestion (unchanged re-synced pages are skipped), each page that
    /// could not be fetched a `failed` document. Returns the documents recorded. With
    /// `limit_documents`, new pages past the plan's document limit are not kept.
    pub(crate) async fn crawl_now(
        &self,
        workspace_id: domain::WorkspaceId,
        kb_id: KnowledgeBaseId,
        urls: &[String],
        hops: u8,
        limit_documents: bool,
    ) -> Result<Vec<DocumentId>, JobError> {
        let p = CrawlPayload { workspace_id, kb_id, urls: urls.to_vec(), hops };
        let mut recorded = Vec::new();
        let scope = crate::auth::job_scope(p.workspace_id);
        let store = &self.inner.store;
        let k = self.knowledge().map_err(|e| JobError::Retry(e.to_string()))?;
        let limits =
            fetch::CrawlLimits { max_depth: p.hops, max_pages: 50, max_bytes: 50 * 1024 * 1024 };
        let starts: Vec<&str> = p.urls.iter().map(String::as_str).collect();
        let report = match fetch::crawl(&k.fetcher, &starts, &limits).await {
            Ok(r) => r,
            Err(e) => fetch::CrawlReport {
                failed: vec![(url_or_blank(&p.urls), e)],
                ..Default::default()
            },
        };
        // New pages past the plan's document limit are not kept (re-synced ones replace
        // their document, so they need no room; the operator's console is not limited).
        let mut room = if limit_documents {
            self.documents_left(&scope).await.map_err(|e| JobError::Retry(e.to_string()))?
        } else {
            None
        };
        let mut over_limit = 0usize;
        let mut take_room = |room: &mut Option<u64>| match room {
            Some(0) => {
                over_limit += 1;
                false
            }
            Some(n) => {
                *n -= 1;
                true
            }
            None => true,
        };
        for page in report.pages {
            let source = page.final_url.to_string();
            if let Ok(Some(existing)) =
                store.find_document_by_source_url(&scope, p.kb_id, &source).await
            {
                // Re-sync: unchanged pages are left alone; changed ones are re-ingested.
                if existing.etag.as_deref() == Some(page.content_hash.as_str()) {
                    continue;
                }
                if let Ok(gone) = store.delete_document(&scope, existing.id).await {
                    k.discard(p.workspace_id, p.kb_id, &gone)
                        .await
                        .map_err(|e| JobError::Retry(e.to_string()))?;
                }
            } else if !take_room(&mut room) {
                continue;
            }
            let id = DocumentId::new();
            let key = k
                .save_file(p.workspace_id, id, &page.bytes)
                .await
                .map_err(|e| JobError::Retry(e.to_string()))?;
            let filename = page_filename(&page.final_url, page.content_type.as_deref());
            let doc = NewDocument {
                id,
                kb_id: p.kb_id,
                title: page
                    .title
                    .clone()
                    .filter(|t| !t.trim().is_empty())
                    .unwrap_or_else(|| source.clone()),
                filename: Some(filename),
                content_type: page.content_type.clone(),
                size_bytes: page.bytes.len() as i64,
                source_url: Some(source),
                storage_key: Some(key),
                // The body hash stands in for an ETag so a re-sync can tell what changed.
                etag: Some(page.content_hash.clone()),
                last_modified: page.last_modified.clone(),
            };
            store
                .create_document(&scope, &doc, now_ms())
                .await
                .map_err(|e| JobError::Retry(e.to_string()))?;
            self.enqueue_ingest(&scope, id).await.map_err(|e| JobError::Retry(e.to_string()))?;
            recorded.push(id);
        }
        for (url, err) in report.failed {
            let reason = format!("could not fetch {url}: {err}");
            // A page that fails again on a re-sync keeps its one record: a failed one gets the
            // new reason; an indexed one keeps its last good content.
            if let Ok(Some(existing)) =
                store.find_document_by_source_url(&scope, p.kb_id, url.as_str()).await
            {
                if existing.status == DocumentStatus::Failed {
                    let _ =
                        store.mark_document_failed(&scope, existing.id, &reason, now_ms()).await;
                }
                recorded.push(existing.id);
                continue;
            }
            if !take_room(&mut room) {
                continue;
            }
            let doc = NewDocument {
                id: DocumentId::new(),
                kb_id: p.kb_id,
                title: url.to_string(),
                source_url: Some(url.to_string()),
                ..Default::default()
            };
            if let Ok(d) = store.create_document(&scope, &doc, now_ms()).await {
                recorded.push(d.id);
                let _ = store.mark_document_failed(&scope, d.id, &reason, now_ms()).await;
            }
        }
        if over_limit > 0 {
            tracing::warn!(%workspace_id, %kb_id, pages = over_limit, "crawled pages not kept: the plan's document limit is reached");
        }
        Ok(recorded)
    }

    /// Search for external runtimes (`/api/internal/knowledge/{kb}/search`): the caller proved
    /// the service secret; the knowledge base's own workspace scopes the search.
    pub async fn service_search(
        &self,
        secret: &str,
        kb: KnowledgeBaseId,
        query: &str,
        top_k: Option<usize>,
        min_score: Option<f32>,
        mode: Option<&str>,
    ) -> Result<Vec<SearchHit>, AppError> {
        self.require_service_secret(secret)?;
        let row = self
            .inner
            .store
            .find_knowledge_base_for_service(kb)
            .await?
            .ok_or(AppError::NotFound { what: "knowledge base" })?;
        let principal = Principal::service(row.workspace_id);
        self.search_knowledge(&principal, kb, query, top_k, min_score, mode).await
    }

    /// The ingestion job: extract → deduplicate → chunk → index.
    pub async fn ingest_job(&self, payload: &str) -> Result<(), JobError> {
        let p: IngestPayload =
            serde_json::from_str(payload).map_err(|e| JobError::Permanent(e.to_string()))?;
        let scope = crate::auth::job_scope(p.workspace_id);
        let store = &self.inner.store;
        let k = self.knowledge().map_err(|e| JobError::Retry(e.to_string()))?;
        let doc = match store.get_document(&scope, p.document_id).await {
            Ok(doc) => doc,
            Err(StoreError::NotFound) => return Ok(()), // deleted meanwhile: nothing to do
            Err(e) => return Err(JobError::Retry(e.to_string())),
        };
        let kb = store
            .get_knowledge_base(&scope, doc.kb_id)
            .await
            .map_err(|e| JobError::Retry(e.to_string()))?;
        let now = now_ms();
        store
            .mark_document_processing(&scope, doc.id, now)
            .await
            .map_err(|e| JobError::Retry(e.to_string()))?;
        let fail = |reason: String| async move {
            let _ = store.mark_document_failed(&scope, doc.id, &reason, now_ms()).await;
            JobError::Permanent(reason)
        };
        let Some(key) = &doc.storage_key else {
            return Err(fail("the document has no stored file".into()).await);
        };
        let bytes = match tokio::fs::read(k.files_dir.join(key)).await {
            Ok(b) => b,
            Err(e) => return Err(fail(format!("the stored file could not be read: {e}")).await),
        };
        let filename = doc.filename.clone().unwrap_or_default();
        let Some(format) = extract::detect(
            &filename,
            doc.content_type.as_deref(),
            &bytes[..bytes.len().min(8192)],
        ) else {
            return Err(fail(format!("unsupported file type `{filename}`")).await);
        };
        let extracted = match extract::extract_async(bytes, format, k.limits.clone()).await {
            Ok(x) => x,
            Err(e) => return Err(fail(format!("could not read the file: {e}")).await),
        };
        let sha = hex::encode(Sha256::digest(extracted.markdown.as_bytes()));
        if let Some(existing) = store
            .find_document_by_sha256(&scope, kb.id, &sha)
            .await
            .map_err(|e| JobError::Retry(e.to_string()))?
            && existing.id != doc.id
        {
            return Err(fail(format!(
                "duplicate: the same content is already in this knowledge base as “{}” ({})",
                existing.title, existing.id
            ))
            .await);
        }
        match store.set_document_sha256(&scope, doc.id, &sha, now_ms()).await {
            Ok(_) => {}
            Err(StoreError::Conflict(_)) => {
                return Err(fail(
                    "duplicate: the same content is already in this knowledge base".into(),
                )
                .await);
            }
            Err(e) => return Err(JobError::Retry(e.to_string())),
        }
        let blocks: Vec<DocBlock> = extracted
            .blocks
            .iter()
            .map(|b| match b.kind {
                extract::BlockKind::Heading { level } => {
                    DocBlock::heading(level, b.text.clone(), b.page)
                }
                _ => DocBlock::text(b.to_markdown(), b.page),
            })
            .collect();
        let title = extracted
            .title
            .clone()
            .filter(|t| !t.trim().is_empty())
            .unwrap_or_else(|| doc.title.clone());
        let chunker = Chunker::new(ChunkingConfig {
            chunk_tokens: kb.chunk_size as usize,
            overlap_tokens: kb.chunk_overlap as usize,
        })
        .map_err(|e| JobError::Permanent(e.to_string()))?;
        let chunks = chunker.chunk(&DocumentInput {
            document_id: doc.id,
            title,
            source_url: doc.source_url.clone(),
            blocks,
        });
        if chunks.is_empty() {
            return Err(
                fail("no text could be found in the file (is it a scanned image?)".into()).await
            );
        }
        let count = chunks.len() as i64;
        k.index
            .replace_document(p.workspace_id, kb.id, doc.id, chunks)
            .await
            .map_err(|e| JobError::Retry(e.to_string()))?;
        store
            .mark_document_indexed(
                &scope,
                doc.id,
                &DocumentIndexed {
                    chunk_count: count,
                    content_sha256: Some(sha),
                    ..Default::default()
                },
                now_ms(),
            )
            .await
            .map_err(|e| JobError::Retry(e.to_string()))?;
        Ok(())
    }
}

fn url_or_blank(urls: &[String]) -> url::Url {
    urls.first()
        .and_then(|u| url::Url::parse(u).ok())
        .unwrap_or_else(|| url::Url::parse("about:blank").expect("a valid URL"))
}

/// A file name for a fetched page, so type detection sees its kind (`page.html`, `report.pdf`).
fn page_filename(url: &url::Url, content_type: Option<&str>) -> String {
    let last = url
        .path_segments()
        .and_then(|mut s| s.next_back())
        .filter(|s| s.contains('.'))
        .map(str::to_owned);
    match (last, content_type) {
        (Some(name), _) => name,
        (None, Some(ct)) if ct.contains("pdf") => "page.pdf".into(),
        (None, Some(ct)) if ct.contains("json") => "page.json".into(),
        (None, Some(ct)) if ct.starts_with("text/plain") => "page.txt".into(),
        _ => "page.html".into(),
    }
}
