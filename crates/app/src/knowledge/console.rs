//! Knowledge ingestion from the command line (`echoforge kb ingest`). Whoever runs the binary
//! against the database holds the data itself, so there is no principal: the knowledge base
//! named on the command line decides the workspace. The work goes through the same durable
//! path as uploads over HTTP (file store → `pending` document → `document.ingest` job).

use domain::{DocumentId, KnowledgeBaseId, WorkspaceId};
use store::{Document, KnowledgeBase, TenantScope};

use crate::knowledge::{Accepted, Upload};
use crate::{App, AppError};

/// The scope of the knowledge base's own workspace, for the console (see the module docs).
#[allow(clippy::disallowed_methods)]
fn console_scope(workspace_id: WorkspaceId) -> TenantScope {
    TenantScope::assume(workspace_id)
}

/// URLs the console crawled: the documents recorded, and the URLs refused before fetching.
#[derive(Debug, Default)]
pub struct ConsoleCrawl {
    pub documents: Vec<DocumentId>,
    /// `(url, reason)` for URLs refused up front (malformed, blocked address).
    pub refused: Vec<(String, String)>,
}

impl App {
    /// The knowledge base with this id, whichever workspace it is in.
    pub async fn console_knowledge_base(
        &self,
        id: KnowledgeBaseId,
    ) -> Result<KnowledgeBase, AppError> {
        self.inner
            .store
            .find_knowledge_base_for_service(id)
            .await?
            .ok_or(AppError::NotFound { what: "knowledge base" })
    }

    /// Stores files and queues their ingestion, as an upload would.
    pub async fn console_add_files(
        &self,
        kb: &KnowledgeBase,
        files: Vec<Upload>,
    ) -> Result<Vec<Accepted>, AppError> {
        self.accept_uploads(&console_scope(kb.workspace_id), kb.id, files).await
    }

    /// Crawls `urls` now (`hops` levels of same-site links beyond them) and queues each
    /// page's ingestion; URLs the fetch guard refuses are reported, not fetched.
    pub async fn console_crawl(
        &self,
        kb: &KnowledgeBase,
        urls: &[String],
        hops: u8,
    ) -> Result<ConsoleCrawl, AppError> {
        let k = self.knowledge_services()?;
        let mut out = ConsoleCrawl::default();
        let mut allowed = Vec::new();
        for url in urls {
            match k.fetcher.check_url(url) {
                Ok(_) => allowed.push(url.clone()),
                Err(e) => out.refused.push((url.clone(), e.to_string())),
            }
        }
        if !allowed.is_empty() {
            out.documents = self
                .crawl_now(kb.workspace_id, kb.id, &allowed, hops.min(2), false)
                .await
                .map_err(|e| AppError::Unavailable(e.to_string()))?;
        }
        Ok(out)
    }

    /// The current state of some documents of a knowledge base (deleted ones are left out).
    pub async fn console_documents(
        &self,
        kb: &KnowledgeBase,
        ids: &[DocumentId],
    ) -> Result<Vec<Document>, AppError> {
        let scope = console_scope(kb.workspace_id);
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            match self.inner.store.get_document(&scope, *id).await {
                Ok(d) => out.push(d),
                Err(store::StoreError::NotFound) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(out)
    }
}
