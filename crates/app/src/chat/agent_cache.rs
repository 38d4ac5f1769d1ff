//! Agents as the chat hot path needs them (the stored row and its runtime snapshot), cached
//! per workspace and id-or-slug for a few seconds and dropped whenever this process changes or
//! deletes an agent of that workspace. Another process sharing the database (PostgreSQL) sees
//! a change within the TTL, like the API-key cache.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::WorkspaceId;
use parking_lot::Mutex;

const TTL: Duration = Duration::from_secs(5);

/// A stored agent, its runtime snapshot and its escalation settings (parsed once, read on
/// every message).
pub(crate) struct CachedAgent {
    pub(crate) agent: store::Agent,
    pub(crate) snapshot: runtime::AgentSnapshot,
    pub(crate) escalation: Option<crate::handoff::triggers::EscalationSettings>,
}

type Entry = (Instant, Arc<CachedAgent>);

#[derive(Default)]
pub(crate) struct AgentCache {
    entries: Mutex<HashMap<WorkspaceId, HashMap<String, Entry>>>,
}

impl AgentCache {
    pub(crate) fn get(&self, ws: WorkspaceId, key: &str) -> Option<Arc<CachedAgent>> {
        let entries = self.entries.lock();
        let (at, agent) = entries.get(&ws)?.get(key)?;
        (at.elapsed() < TTL).then(|| agent.clone())
    }

    pub(crate) fn put(&self, ws: WorkspaceId, key: &str, agent: Arc<CachedAgent>) {
        let mut entries = self.entries.lock();
        let map = entries.entry(ws).or_default();
        if map.len() > 1_000 {
            map.retain(|_, (at, _)| at.elapsed() < TTL);
        }
        map.insert(key.to_owned(), (Instant::now(), agent));
    }

    /// Drops every cached agent of the workspace (after an agent changed or was deleted).
    pub(crate) fn forget_workspace(&self, ws: WorkspaceId) {
        self.entries.lock().remove(&ws);
    }
}
