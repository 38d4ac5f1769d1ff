//! The runtime's ports as the application fills them: knowledge search over the workspace's
//! index, web fetching (or none), and escalations recorded as store handoffs.

use std::sync::Arc;

use async_trait::async_trait;
use domain::time::now_ms;
use runtime::{
    FetchedPage, HandoffRequest, HandoffSink, KnowledgeHit, KnowledgeQuery, KnowledgeSearch,
    WebFetcher,
};
use store::{ActorKind, HandoffActor, HandoffState, NewHandoff, Store, StoreError, TenantScope};

/// Knowledge search over the workspace's index (hybrid when an embedding model is configured,
/// lexical otherwise). Before the index is installed it finds nothing.
pub struct IndexKnowledge {
    pub(crate) slot: Arc<crate::knowledge::KnowledgeSlot>,
}

#[async_trait]
impl KnowledgeSearch for IndexKnowledge {
    async fn search(&self, q: &KnowledgeQuery) -> Result<Vec<KnowledgeHit>, String> {
        let Some(k) = self.slot.get() else { return Ok(Vec::new()) };
        if q.knowledge_base_ids.is_empty() || q.query.trim().is_empty() {
            return Ok(Vec::new());
        }
        let request = knowledge::SearchRequest {
            query: q.query.clone(),
            top_k: q.top_k.clamp(1, 50),
            min_score: None,
            mode: knowledge::SearchMode::Hybrid,
        };
        let hits = k
            .index
            .search(q.workspace_id, &q.knowledge_base_ids, &request)
            .await
            .map_err(|e| e.to_string())?;
        Ok(hits
            .into_iter()
            .map(|h| KnowledgeHit {
                chunk_id: h.chunk_id,
                content: h.content,
                score: h.score,
                document_id: h.metadata.document_id,
                document_title: h.metadata.document_title,
                source_url: h.metadata.source_url,
                page: h.metadata.page,
                heading: h.metadata.heading,
            })
            .collect())
    }
}

/// Knowledge search that finds nothing (tests and tools without an index).
pub struct NoKnowledge;

#[async_trait]
impl KnowledgeSearch for NoKnowledge {
    async fn search(&self, _: &KnowledgeQuery) -> Result<Vec<KnowledgeHit>, String> {
        Ok(Vec::new())
    }
}

/// Web fetching that refuses every URL (tests and servers without the fetcher).
pub struct NoWebFetch;

#[async_trait]
impl WebFetcher for NoWebFetch {
    async fn fetch(&self, url: &str) -> Result<FetchedPage, String> {
        Err(format!("web fetching is not enabled on this server, so {url} cannot be read"))
    }
}

/// Escalations recorded as handoffs in the store: a stored conversation goes to `waiting`
/// (live handoff: the bot goes silent, the inbox hears of it); a request without one (the
/// stateless OpenAI-compatible API) is recorded as `requested`.
pub struct StoreHandoffs {
    pub(crate) store: Store,
    pub(crate) live: Arc<dyn crate::handoff::HandoffBus>,
}

#[async_trait]
impl HandoffSink for StoreHandoffs {
    async fn request_handoff(&self, r: &HandoffRequest) -> Result<String, String> {
        // The request's workspace comes from the agent the authorized caller is talking to.
        #[allow(clippy::disallowed_methods)]
        let scope = TenantScope::assume(r.workspace_id);
        let new = NewHandoff {
            agent_id: r.agent_id,
            conversation_id: Some(r.conversation_id),
            reason: r.reason.clone(),
        };
        let now = now_ms();
        let actor =
            HandoffActor { kind: ActorKind::Agent, id: Some(r.agent_id.to_string()), name: None };
        let live = self.store.escalate_conversation(&scope, &new, &actor, now).await;
        let recorded = match live {
            Ok((h, created)) => {
                if created {
                    crate::handoff::targets::queue_for_agent(&self.store, &scope, r.agent_id, &h)
                        .await;
                    self.live.publish(crate::handoff::LiveEvent {
                        workspace_id: r.workspace_id,
                        conversation_id: r.conversation_id,
                        handoff_id: Some(h.id.clone()),
                        kind: crate::handoff::LiveKind::State {
                            state: HandoffState::Waiting,
                            operator: None,
                            queue_position: self.store.queue_position(&scope, &h).await.ok(),
                        },
                    });
                }
                Ok(h)
            }
            // Not stored (yet): a request without a live conversation.
            Err(StoreError::NotFound) => self.store.create_handoff(&scope, &new, now).await,
            Err(e) => Err(e),
        };
        recorded.map(|h| h.id).map_err(|e| {
            tracing::warn!(error = %e, "could not record a handoff");
            "the request for a human could not be recorded".to_owned()
        })
    }
}
