//! In-memory implementations of the ports, for tests and for demos without a database.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use domain::KnowledgeBaseId;

use crate::ports::{
    FetchedPage, HandoffRequest, HandoffSink, KnowledgeHit, KnowledgeQuery, KnowledgeSearch,
    WebFetcher,
};

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Passages held in memory, scored by how many of the query's words (3+ letters, lower-cased)
/// they contain. Crude on purpose: it makes test expectations obvious.
#[derive(Default)]
pub struct InMemoryKnowledge {
    passages: Mutex<Vec<(KnowledgeBaseId, KnowledgeHit)>>,
    queries: Mutex<Vec<KnowledgeQuery>>,
    delay: Option<Duration>,
    failure: Option<String>,
}

impl InMemoryKnowledge {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
    /// Every search waits this long first (for timeout tests).
    pub fn with_delay(mut self, delay: Duration) -> Self {
        self.delay = Some(delay);
        self
    }
    /// Every search fails with this message.
    pub fn failing(mut self, message: impl Into<String>) -> Self {
        self.failure = Some(message.into());
        self
    }
    /// Adds a passage to a knowledge base (its `score` is replaced at search time).
    pub fn add(&self, kb: KnowledgeBaseId, hit: KnowledgeHit) {
        lock(&self.passages).push((kb, hit));
    }
    /// Every query received, oldest first.
    pub fn queries(&self) -> Vec<KnowledgeQuery> {
        lock(&self.queries).clone()
    }
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 3)
        .map(str::to_lowercase)
        .collect()
}

#[async_trait]
impl KnowledgeSearch for InMemoryKnowledge {
    async fn search(&self, query: &KnowledgeQuery) -> Result<Vec<KnowledgeHit>, String> {
        lock(&self.queries).push(query.clone());
        if let Some(d) = self.delay {
            tokio::time::sleep(d).await;
        }
        if let Some(f) = &self.failure {
            return Err(f.clone());
        }
        let terms = words(&query.query);
        let mut hits: Vec<KnowledgeHit> = lock(&self.passages)
            .iter()
            .filter(|(kb, _)| query.knowledge_base_ids.contains(kb))
            .filter_map(|(_, hit)| {
                let text = hit.content.to_lowercase();
                let matched = terms.iter().filter(|t| text.contains(t.as_str())).count();
                (matched > 0).then(|| KnowledgeHit { score: matched as f32, ..hit.clone() })
            })
            .collect();
        hits.sort_by(|a, b| b.score.total_cmp(&a.score));
        hits.truncate(query.top_k);
        Ok(hits)
    }
}

/// Pages served from a map by exact URL; any other URL is "not reachable".
#[derive(Default)]
pub struct StaticWebFetcher {
    pages: Mutex<HashMap<String, FetchedPage>>,
    fetched: Mutex<Vec<String>>,
}

impl StaticWebFetcher {
    pub fn new() -> Self {
        Self::default()
    }
    /// Serves `text` titled `title` at `url`.
    pub fn add(&self, url: &str, title: &str, text: &str) {
        let page = FetchedPage { url: url.into(), title: title.into(), text: text.into() };
        lock(&self.pages).insert(url.into(), page);
    }
    /// Every URL asked for, oldest first.
    pub fn fetched(&self) -> Vec<String> {
        lock(&self.fetched).clone()
    }
}

#[async_trait]
impl WebFetcher for StaticWebFetcher {
    async fn fetch(&self, url: &str) -> Result<FetchedPage, String> {
        lock(&self.fetched).push(url.to_owned());
        lock(&self.pages).get(url).cloned().ok_or_else(|| format!("{url} is not reachable"))
    }
}

/// Handoff requests kept in a list; ids are `hof_1`, `hof_2`, …
#[derive(Default)]
pub struct InMemoryHandoffs {
    requests: Mutex<Vec<HandoffRequest>>,
}

impl InMemoryHandoffs {
    pub fn new() -> Self {
        Self::default()
    }
    /// Every request recorded, oldest first.
    pub fn requests(&self) -> Vec<HandoffRequest> {
        lock(&self.requests).clone()
    }
}

#[async_trait]
impl HandoffSink for InMemoryHandoffs {
    async fn request_handoff(&self, request: &HandoffRequest) -> Result<String, String> {
        let mut all = lock(&self.requests);
        all.push(request.clone());
        Ok(format!("hof_{}", all.len()))
    }
}
