//! Knowledge bases and their documents' ingestion records. The text, chunks and vectors live in
//! the search index (the `knowledge` crate); here is what a person manages and what the
//! ingestion jobs need: settings, status, hashes for de-duplication, source URLs for re-sync.

use domain::time::Millis;
use domain::{DocumentId, KnowledgeBaseId, WorkspaceId};
use serde::Serialize;

use crate::db::on_db;
use crate::kinds::{DocumentStatus, SyncFrequency};
use crate::{Page, Result, Store, StoreError, TenantScope, clamp_limit};

/// A knowledge base as stored.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct KnowledgeBase {
    #[sqlx(try_from = "String")]
    pub id: KnowledgeBaseId,
    #[sqlx(try_from = "String")]
    pub workspace_id: WorkspaceId,
    pub name: String,
    pub description: Option<String>,
    pub chunk_size: i64,
    pub chunk_overlap: i64,
    /// The embedding setting (`none`, a provider/model name, …), interpreted by `knowledge`.
    pub embedding: String,
    #[sqlx(try_from = "String")]
    pub sync_frequency: SyncFrequency,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub last_indexed_at: Option<Millis>,
    /// When the URL sources' last re-sync was queued (or they were last imported).
    pub last_synced_at: Option<Millis>,
    /// The imported URLs and link levels followed from each (JSON `[{"url", "hops"}]`), which
    /// re-syncs crawl again; the app reads and writes it.
    #[serde(skip)]
    pub crawl_roots: Option<String>,
}

/// A knowledge base to create.
#[derive(Debug, Clone)]
pub struct NewKnowledgeBase {
    pub id: KnowledgeBaseId,
    pub name: String,
    pub description: Option<String>,
    pub chunk_size: i64,
    pub chunk_overlap: i64,
    pub embedding: String,
    pub sync_frequency: SyncFrequency,
}

/// A change to a knowledge base: `None` keeps a field, `Some(None)` clears the description.
#[derive(Debug, Clone, Default)]
pub struct KnowledgeBasePatch {
    pub name: Option<String>,
    pub description: Option<Option<String>>,
    pub chunk_size: Option<i64>,
    pub chunk_overlap: Option<i64>,
    pub embedding: Option<String>,
    pub sync_frequency: Option<SyncFrequency>,
}

/// Live figures of a knowledge base.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KnowledgeBaseStats {
    pub documents: i64,
    pub pending: i64,
    pub processing: i64,
    pub indexed: i64,
    pub failed: i64,
    /// The sum of the documents' chunk counts.
    pub chunks: i64,
    pub last_indexed_at: Option<Millis>,
}

/// A document as stored.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct Document {
    #[sqlx(try_from = "String")]
    pub id: DocumentId,
    #[sqlx(try_from = "String")]
    pub workspace_id: WorkspaceId,
    #[sqlx(try_from = "String")]
    pub kb_id: KnowledgeBaseId,
    pub title: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub size_bytes: i64,
    pub source_url: Option<String>,
    /// Where the original file is in the file store.
    pub storage_key: Option<String>,
    /// SHA-256 (hex) of the extracted text, once extracted.
    pub content_sha256: Option<String>,
    #[sqlx(try_from = "String")]
    pub status: DocumentStatus,
    /// Why ingestion failed, in words a person can act on.
    pub error: Option<String>,
    pub chunk_count: i64,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub created_at: Millis,
    pub updated_at: Millis,
    pub indexed_at: Option<Millis>,
}

/// A document to record (status `pending`).
#[derive(Debug, Clone, Default)]
pub struct NewDocument {
    pub id: DocumentId,
    pub kb_id: KnowledgeBaseId,
    pub title: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub size_bytes: i64,
    pub source_url: Option<String>,
    pub storage_key: Option<String>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

/// The outcome of indexing a document. `None` fields keep what is stored.
#[derive(Debug, Clone, Default)]
pub struct DocumentIndexed {
    pub chunk_count: i64,
    pub content_sha256: Option<String>,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
}

macro_rules! kb_columns {
    () => {
        "id, workspace_id, name, description, chunk_size, chunk_overlap, embedding, sync_frequency, created_at, updated_at, last_indexed_at, last_synced_at, crawl_roots"
    };
}
pub(crate) use kb_columns;
macro_rules! doc_columns {
    () => {
        "id, workspace_id, kb_id, title, filename, content_type, size_bytes, source_url, storage_key, content_sha256, status, error, chunk_count, etag, last_modified, created_at, updated_at, indexed_at"
    };
}

impl Store {
    pub async fn create_knowledge_base(
        &self,
        scope: &TenantScope,
        kb: &NewKnowledgeBase,
        now: Millis,
    ) -> Result<KnowledgeBase> {
        on_db!(write self, pool => sqlx::query_as(concat!("INSERT INTO knowledge_bases (id, workspace_id, name, description, chunk_size, chunk_overlap, embedding, sync_frequency, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING ", kb_columns!()))
            .bind(kb.id.to_string()).bind(scope.workspace_id().to_string()).bind(&kb.name).bind(kb.description.as_deref())
            .bind(kb.chunk_size).bind(kb.chunk_overlap).bind(&kb.embedding).bind(kb.sync_frequency.as_str()).bind(now)
            .fetch_one(pool).await)
        .map_err(Into::into)
    }

    /// Finds a knowledge base by id alone, for the internal API whose callers authenticate with
    /// the service secret and name the base (the app derives the tenant scope from the row).
    pub async fn find_knowledge_base_for_service(
        &self,
        id: KnowledgeBaseId,
    ) -> Result<Option<KnowledgeBase>> {
        on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", kb_columns!(), " FROM knowledge_bases WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(pool).await)
        .map_err(Into::into)
    }

    pub async fn get_knowledge_base(
        &self,
        scope: &TenantScope,
        id: KnowledgeBaseId,
    ) -> Result<KnowledgeBase> {
        on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", kb_columns!(), " FROM knowledge_bases WHERE id = $1 AND workspace_id = $2"))
            .bind(id.to_string()).bind(scope.workspace_id().to_string())
            .fetch_optional(pool).await)?
        .ok_or(StoreError::NotFound)
    }

    /// The workspace's knowledge bases, newest first.
    pub async fn list_knowledge_bases(
        &self,
        scope: &TenantScope,
        cursor: Option<KnowledgeBaseId>,
        limit: Option<u32>,
    ) -> Result<Page<KnowledgeBase>> {
        let limit = clamp_limit(limit);
        let mut rows: Vec<KnowledgeBase> = on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", kb_columns!(),
            " FROM knowledge_bases WHERE workspace_id = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3"))
            .bind(scope.workspace_id().to_string()).bind(cursor.map(|c| c.to_string())).bind(limit + 1)
            .fetch_all(pool).await)?;
        Ok(crate::page(&mut rows, limit, |r| r.id.to_string()))
    }

    pub async fn update_knowledge_base(
        &self,
        scope: &TenantScope,
        id: KnowledgeBaseId,
        patch: &KnowledgeBasePatch,
        now: Millis,
    ) -> Result<KnowledgeBase> {
        on_db!(write self, pool => sqlx::query_as(concat!("UPDATE knowledge_bases SET
                name = COALESCE($3, name),
                description = CASE WHEN $4 THEN $5 ELSE description END,
                chunk_size = COALESCE($6, chunk_size),
                chunk_overlap = COALESCE($7, chunk_overlap),
                embedding = COALESCE($8, embedding),
                sync_frequency = COALESCE($9, sync_frequency),
                updated_at = $10
             WHERE id = $1 AND workspace_id = $2 RETURNING ", kb_columns!()))
            .bind(id.to_string()).bind(scope.workspace_id().to_string())
            .bind(patch.name.as_deref())
            .bind(patch.description.is_some()).bind(patch.description.clone().flatten())
            .bind(patch.chunk_size).bind(patch.chunk_overlap).bind(patch.embedding.as_deref())
            .bind(patch.sync_frequency.map(|s| s.as_str())).bind(now)
            .fetch_optional(pool).await)?
        .ok_or(StoreError::NotFound)
    }

    /// Deletes a knowledge base and all its documents; returns the documents that were in it
    /// (their files and index entries are the caller's to remove).
    pub async fn delete_knowledge_base(
        &self,
        scope: &TenantScope,
        id: KnowledgeBaseId,
    ) -> Result<Vec<Document>> {
        let (kb, ws) = (id.to_string(), scope.workspace_id().to_string());
        on_db!(write self, pool => {
            let mut tx = pool.begin().await?;
            let docs: Vec<Document> = sqlx::query_as(concat!("DELETE FROM documents WHERE kb_id = $1 AND workspace_id = $2 RETURNING ", doc_columns!()))
                .bind(&kb).bind(&ws).fetch_all(&mut *tx).await?;
            let n = sqlx::query("DELETE FROM knowledge_bases WHERE id = $1 AND workspace_id = $2")
                .bind(&kb).bind(&ws).execute(&mut *tx).await?.rows_affected();
            if n == 0 {
                return Err(StoreError::NotFound);
            }
            tx.commit().await?;
            Ok(docs)
        })
    }

    /// Document counts by status, total chunks and the last indexing time.
    pub async fn knowledge_base_stats(
        &self,
        scope: &TenantScope,
        id: KnowledgeBaseId,
    ) -> Result<KnowledgeBaseStats> {
        let kb = self.get_knowledge_base(scope, id).await?;
        let rows: Vec<(String, i64, i64)> = on_db!(read self, pool => sqlx::query_as(
            "SELECT status, COUNT(*), CAST(COALESCE(SUM(chunk_count), 0) AS BIGINT) FROM documents WHERE kb_id = $1 AND workspace_id = $2 GROUP BY status")
            .bind(id.to_string()).bind(scope.workspace_id().to_string())
            .fetch_all(pool).await)?;
        let mut stats =
            KnowledgeBaseStats { last_indexed_at: kb.last_indexed_at, ..Default::default() };
        for (status, n, chunks) in rows {
            stats.documents += n;
            stats.chunks += chunks;
            match DocumentStatus::try_from(status)? {
                DocumentStatus::Pending => stats.pending += n,
                DocumentStatus::Processing => stats.processing += n,
                DocumentStatus::Indexed => stats.indexed += n,
                DocumentStatus::Failed => stats.failed += n,
            }
        }
        Ok(stats)
    }

    /// How many documents the workspace has in all its knowledge bases, whatever their
    /// status (for the plan's document limit; read through the knowledge bases' indexes).
    pub async fn count_documents(&self, scope: &TenantScope) -> Result<i64> {
        let (n,): (i64,) = on_db!(read self, pool => sqlx::query_as(
            "SELECT COUNT(*) FROM documents WHERE workspace_id = $1
             AND kb_id IN (SELECT id FROM knowledge_bases WHERE workspace_id = $1)")
            .bind(scope.workspace_id().to_string()).fetch_one(pool).await)?;
        Ok(n)
    }

    /// Records a document (status `pending`) in one of the workspace's knowledge bases
    /// (`NotFound` if the knowledge base is not the workspace's).
    pub async fn create_document(
        &self,
        scope: &TenantScope,
        doc: &NewDocument,
        now: Millis,
    ) -> Result<Document> {
        on_db!(write self, pool => sqlx::query_as(concat!("INSERT INTO documents (id, workspace_id, kb_id, title, filename, content_type, size_bytes, source_url, storage_key, etag, last_modified, status, chunk_count, created_at, updated_at)
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'pending', 0, $12, $12 FROM knowledge_bases WHERE id = $3 AND workspace_id = $2
             RETURNING ", doc_columns!()))
            .bind(doc.id.to_string()).bind(scope.workspace_id().to_string()).bind(doc.kb_id.to_string()).bind(&doc.title)
            .bind(doc.filename.as_deref()).bind(doc.content_type.as_deref()).bind(doc.size_bytes).bind(doc.source_url.as_deref())
            .bind(doc.storage_key.as_deref()).bind(doc.etag.as_deref()).bind(doc.last_modified.as_deref()).bind(now)
            .fetch_optional(pool).await)?
        .ok_or(StoreError::NotFound)
    }

    pub async fn get_document(&self, scope: &TenantScope, id: DocumentId) -> Result<Document> {
        on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", doc_columns!(), " FROM documents WHERE id = $1 AND workspace_id = $2"))
            .bind(id.to_string()).bind(scope.workspace_id().to_string())
            .fetch_optional(pool).await)?
        .ok_or(StoreError::NotFound)
    }

    /// A knowledge base's documents newest first, optionally in one status.
    pub async fn list_documents(
        &self,
        scope: &TenantScope,
        kb: KnowledgeBaseId,
        status: Option<DocumentStatus>,
        cursor: Option<DocumentId>,
        limit: Option<u32>,
    ) -> Result<Page<Document>> {
        let limit = clamp_limit(limit);
        let mut rows: Vec<Document> = on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", doc_columns!(),
            " FROM documents WHERE kb_id = $1 AND workspace_id = $2 AND ($3 IS NULL OR status = $3) AND ($4 IS NULL OR id < $4) ORDER BY id DESC LIMIT $5"))
            .bind(kb.to_string()).bind(scope.workspace_id().to_string()).bind(status.map(|s| s.as_str()))
            .bind(cursor.map(|c| c.to_string())).bind(limit + 1)
            .fetch_all(pool).await)?;
        Ok(crate::page(&mut rows, limit, |r| r.id.to_string()))
    }

    /// Sends a document back to `pending` (re-index), clearing its error.
    pub async fn mark_document_pending(
        &self,
        scope: &TenantScope,
        id: DocumentId,
        now: Millis,
    ) -> Result<Document> {
        self.set_document_status(scope, id, DocumentStatus::Pending, None, now).await
    }

    pub async fn mark_document_processing(
        &self,
        scope: &TenantScope,
        id: DocumentId,
        now: Millis,
    ) -> Result<Document> {
        self.set_document_status(scope, id, DocumentStatus::Processing, None, now).await
    }

    /// Marks a document failed with a reason a person can act on.
    pub async fn mark_document_failed(
        &self,
        scope: &TenantScope,
        id: DocumentId,
        error: &str,
        now: Millis,
    ) -> Result<Document> {
        let error: String = error.chars().take(2_000).collect();
        self.set_document_status(scope, id, DocumentStatus::Failed, Some(&error), now).await
    }

    async fn set_document_status(
        &self,
        scope: &TenantScope,
        id: DocumentId,
        status: DocumentStatus,
        error: Option<&str>,
        now: Millis,
    ) -> Result<Document> {
        on_db!(write self, pool => sqlx::query_as(concat!("UPDATE documents SET status = $3, error = $4, updated_at = $5 WHERE id = $1 AND workspace_id = $2 RETURNING ", doc_columns!()))
            .bind(id.to_string()).bind(scope.workspace_id().to_string()).bind(status.as_str()).bind(error).bind(now)
            .fetch_optional(pool).await)?
        .ok_or(StoreError::NotFound)
    }

    /// Records the hash of a document's extracted text. Another document of the same knowledge
    /// base with that hash is `Conflict("duplicate")` (see [`Store::find_document_by_sha256`]).
    pub async fn set_document_sha256(
        &self,
        scope: &TenantScope,
        id: DocumentId,
        sha256: &str,
        now: Millis,
    ) -> Result<Document> {
        on_db!(write self, pool => sqlx::query_as(concat!("UPDATE documents SET content_sha256 = $3, updated_at = $4 WHERE id = $1 AND workspace_id = $2 RETURNING ", doc_columns!()))
            .bind(id.to_string()).bind(scope.workspace_id().to_string()).bind(sha256).bind(now)
            .fetch_optional(pool).await)?
        .ok_or(StoreError::NotFound)
    }

    /// Marks a document indexed with its chunk count (and hash, fetch validators when given),
    /// and stamps the knowledge base's last indexing time, atomically.
    pub async fn mark_document_indexed(
        &self,
        scope: &TenantScope,
        id: DocumentId,
        outcome: &DocumentIndexed,
        now: Millis,
    ) -> Result<Document> {
        let ws = scope.workspace_id().to_string();
        on_db!(write self, pool => {
            let mut tx = pool.begin().await?;
            let doc: Option<Document> = sqlx::query_as(concat!("UPDATE documents SET status = 'indexed', error = NULL, chunk_count = $3,
                    content_sha256 = COALESCE($4, content_sha256), etag = COALESCE($5, etag), last_modified = COALESCE($6, last_modified),
                    indexed_at = $7, updated_at = $7
                 WHERE id = $1 AND workspace_id = $2 RETURNING ", doc_columns!()))
                .bind(id.to_string()).bind(&ws).bind(outcome.chunk_count).bind(outcome.content_sha256.as_deref())
                .bind(outcome.etag.as_deref()).bind(outcome.last_modified.as_deref()).bind(now)
                .fetch_optional(&mut *tx).await?;
            let Some(doc) = doc else { return Err(StoreError::NotFound) };
            sqlx::query("UPDATE knowledge_bases SET last_indexed_at = $2 WHERE id = $1")
                .bind(doc.kb_id.to_string()).bind(now).execute(&mut *tx).await?;
            tx.commit().await?;
            Ok(doc)
        })
    }

    /// The document of `kb` whose extracted text hashes to `sha256`, if any.
    pub async fn find_document_by_sha256(
        &self,
        scope: &TenantScope,
        kb: KnowledgeBaseId,
        sha256: &str,
    ) -> Result<Option<Document>> {
        on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", doc_columns!(), " FROM documents WHERE kb_id = $1 AND workspace_id = $2 AND content_sha256 = $3"))
            .bind(kb.to_string()).bind(scope.workspace_id().to_string()).bind(sha256)
            .fetch_optional(pool).await)
        .map_err(Into::into)
    }

    /// The newest document of `kb` fetched from `url`, if any (for re-sync).
    pub async fn find_document_by_source_url(
        &self,
        scope: &TenantScope,
        kb: KnowledgeBaseId,
        url: &str,
    ) -> Result<Option<Document>> {
        on_db!(read self, pool => sqlx::query_as(concat!("SELECT ", doc_columns!(), " FROM documents WHERE kb_id = $1 AND workspace_id = $2 AND source_url = $3 ORDER BY id DESC LIMIT 1"))
            .bind(kb.to_string()).bind(scope.workspace_id().to_string()).bind(url)
            .fetch_optional(pool).await)
        .map_err(Into::into)
    }

    /// Deletes a document; returns it (its file and index entries are the caller's to remove).
    pub async fn delete_document(&self, scope: &TenantScope, id: DocumentId) -> Result<Document> {
        on_db!(write self, pool => sqlx::query_as(concat!("DELETE FROM documents WHERE id = $1 AND workspace_id = $2 RETURNING ", doc_columns!()))
            .bind(id.to_string()).bind(scope.workspace_id().to_string())
            .fetch_optional(pool).await)?
        .ok_or(StoreError::NotFound)
    }
}
