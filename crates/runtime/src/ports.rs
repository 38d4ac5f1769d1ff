//! The runtime's ports: what it needs from the rest of the system, as object-safe traits.
//! The knowledge crate implements [`KnowledgeSearch`], the SSRF-guarded fetcher implements
//! [`WebFetcher`], and the store (or the integrations) implements [`HandoffSink`]. In-memory
//! implementations for tests live in [`crate::memory`].

use async_trait::async_trait;
use domain::{AgentId, ChunkId, ConversationId, DocumentId, KnowledgeBaseId, WorkspaceId};
use serde::{Deserialize, Serialize};

/// One search over a set of knowledge bases.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnowledgeQuery {
    /// The workspace that owns the knowledge bases (every store query is scoped by it).
    pub workspace_id: WorkspaceId,
    /// Knowledge bases to search; an empty list finds nothing.
    pub knowledge_base_ids: Vec<KnowledgeBaseId>,
    /// What to look for.
    pub query: String,
    /// At most this many hits.
    pub top_k: usize,
}

/// One passage found by a knowledge search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnowledgeHit {
    pub chunk_id: ChunkId,
    /// The passage text.
    pub content: String,
    /// Relevance, higher is better (scale depends on the backend).
    pub score: f32,
    pub document_id: DocumentId,
    pub document_title: String,
    pub source_url: Option<String>,
    /// Page number in the source, when it has pages.
    pub page: Option<u32>,
    /// The section heading the passage sits under, when known.
    pub heading: Option<String>,
}

/// Searches knowledge bases. Errors are plain messages, shown to the model as a tool error.
#[async_trait]
pub trait KnowledgeSearch: Send + Sync {
    /// The best hits for the query, best first.
    async fn search(&self, query: &KnowledgeQuery) -> Result<Vec<KnowledgeHit>, String>;
}

/// A fetched web page, reduced to its main text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchedPage {
    /// The final URL (after redirects).
    pub url: String,
    pub title: String,
    /// The main text, without navigation and markup.
    pub text: String,
}

/// Fetches a URL on the user's behalf. The real implementation goes through the SSRF guard;
/// refusals and failures are plain messages, shown to the model as a tool error.
#[async_trait]
pub trait WebFetcher: Send + Sync {
    async fn fetch(&self, url: &str) -> Result<FetchedPage, String>;
}

/// A request to hand the conversation over to a human.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandoffRequest {
    pub workspace_id: WorkspaceId,
    pub agent_id: AgentId,
    pub conversation_id: ConversationId,
    /// Why, in the model's (or the routing rule's) words.
    pub reason: String,
}

/// Records escalation requests; the integrations deliver them to people.
#[async_trait]
pub trait HandoffSink: Send + Sync {
    /// Records the request and returns the handoff's id.
    async fn request_handoff(&self, request: &HandoffRequest) -> Result<String, String>;
}
