//! Live delivery of handoff events: operator replies to the customer's stream, customers'
//! messages and state changes to the operators' inbox. In-process [`BroadcastBus`] behind the
//! small [`HandoffBus`] trait, so a multi-replica deployment can put PostgreSQL
//! `LISTEN`/`NOTIFY` (or anything else) behind the same calls: publish, and subscribe to one
//! conversation or to one workspace's inbox.

use std::collections::HashMap;

use domain::{ConversationId, WorkspaceId};
use parking_lot::Mutex;
use serde::Serialize;
use store::{HandoffState, MessageRole};
use tokio::sync::broadcast;

/// Events a subscriber may fall behind by before it misses some (it then reloads).
const CAPACITY: usize = 64;

/// One live event of a conversation in (or entering) a handoff.
#[derive(Debug, Clone, Serialize)]
pub struct LiveEvent {
    #[serde(skip)]
    pub workspace_id: WorkspaceId,
    pub conversation_id: ConversationId,
    pub handoff_id: Option<String>,
    #[serde(flatten)]
    pub kind: LiveKind,
}

/// What happened.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "type")]
pub enum LiveKind {
    /// The conversation's state changed (or, first on a stream, what it is now).
    #[serde(rename = "handoff.state")]
    State {
        state: HandoffState,
        /// The operator's name while a person has the conversation.
        operator: Option<String>,
        /// The customer's place in the queue while waiting (1: next).
        queue_position: Option<i64>,
    },
    /// A message on the conversation: the customer's (while waiting or with a person) or an
    /// operator's.
    #[serde(rename = "message")]
    Message { message: LiveMessage },
    /// An internal note: only on the workspace's inbox stream, never the customer's.
    #[serde(rename = "handoff.note")]
    Note { author: Option<String>, body: String, created_at: i64 },
}

/// A message as live streams carry it.
#[derive(Debug, Clone, Serialize)]
pub struct LiveMessage {
    pub id: String,
    pub role: MessageRole,
    /// The operator's name, for `human_agent` messages.
    pub author: Option<String>,
    pub content: String,
    pub created_at: i64,
}

impl From<&store::Message> for LiveMessage {
    fn from(m: &store::Message) -> Self {
        Self {
            id: m.id.to_string(),
            role: m.role,
            author: m.author.clone(),
            content: m.content.clone(),
            created_at: m.created_at,
        }
    }
}

impl LiveEvent {
    /// The SSE event name.
    pub fn name(&self) -> &'static str {
        match self.kind {
            LiveKind::State { .. } => "handoff.state",
            LiveKind::Message { .. } => "message",
            LiveKind::Note { .. } => "handoff.note",
        }
    }

    /// Whether the customer's stream carries it (notes stay with the business).
    pub fn is_public(&self) -> bool {
        !matches!(self.kind, LiveKind::Note { .. })
    }
}

/// Where live events go. Delivery is best effort: the stored conversation is the record, a
/// subscriber that lagged reloads it.
pub trait HandoffBus: Send + Sync {
    /// Sends to the conversation's subscribers (public events only) and the workspace's.
    fn publish(&self, event: LiveEvent);
    /// The customer's side: one conversation's public events.
    fn subscribe_conversation(&self, id: ConversationId) -> broadcast::Receiver<LiveEvent>;
    /// The operators' inbox: every event of the workspace's handoffs.
    fn subscribe_workspace(&self, id: WorkspaceId) -> broadcast::Receiver<LiveEvent>;
}

/// [`HandoffBus`] in one process: a `tokio::sync::broadcast` channel per watched
/// conversation and per watched workspace, dropped once nobody listens.
#[derive(Default)]
pub struct BroadcastBus {
    conversations: Mutex<HashMap<ConversationId, broadcast::Sender<LiveEvent>>>,
    workspaces: Mutex<HashMap<WorkspaceId, broadcast::Sender<LiveEvent>>>,
}

fn send<K: std::hash::Hash + Eq>(
    map: &Mutex<HashMap<K, broadcast::Sender<LiveEvent>>>,
    key: &K,
    event: LiveEvent,
) {
    let mut map = map.lock();
    if let Some(tx) = map.get(key)
        && tx.send(event).is_err()
    {
        // Every subscriber went away.
        map.remove(key);
    }
}

fn subscribe<K: std::hash::Hash + Eq>(
    map: &Mutex<HashMap<K, broadcast::Sender<LiveEvent>>>,
    key: K,
) -> broadcast::Receiver<LiveEvent> {
    let mut map = map.lock();
    map.retain(|_, tx| tx.receiver_count() > 0);
    map.entry(key).or_insert_with(|| broadcast::channel(CAPACITY).0).subscribe()
}

impl HandoffBus for BroadcastBus {
    fn publish(&self, event: LiveEvent) {
        if event.is_public() {
            send(&self.conversations, &event.conversation_id, event.clone());
        }
        send(&self.workspaces, &event.workspace_id.clone(), event);
    }

    fn subscribe_conversation(&self, id: ConversationId) -> broadcast::Receiver<LiveEvent> {
        subscribe(&self.conversations, id)
    }

    fn subscribe_workspace(&self, id: WorkspaceId) -> broadcast::Receiver<LiveEvent> {
        subscribe(&self.workspaces, id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(ws: WorkspaceId, c: ConversationId) -> LiveEvent {
        LiveEvent {
            workspace_id: ws,
            conversation_id: c,
            handoff_id: None,
            kind: LiveKind::Note { author: None, body: "internal".into(), created_at: 1 },
        }
    }

    #[tokio::test]
    async fn notes_reach_the_inbox_but_never_the_customer() {
        let bus = BroadcastBus::default();
        let (ws, c) = (WorkspaceId::new(), ConversationId::new());
        let mut customer = bus.subscribe_conversation(c);
        let mut inbox = bus.subscribe_workspace(ws);
        let mut elsewhere = bus.subscribe_workspace(WorkspaceId::new());
        bus.publish(note(ws, c));
        let state = LiveEvent {
            kind: LiveKind::State {
                state: HandoffState::Human,
                operator: None,
                queue_position: None,
            },
            ..note(ws, c)
        };
        bus.publish(state);
        assert_eq!(inbox.recv().await.unwrap().name(), "handoff.note");
        assert_eq!(inbox.recv().await.unwrap().name(), "handoff.state");
        assert_eq!(customer.recv().await.unwrap().name(), "handoff.state");
        assert!(customer.try_recv().is_err() && elsewhere.try_recv().is_err());
    }
}
