//! Live handoff: a conversation's state (bot → waiting → human → bot | closed) moved by
//! escalation and operators, each move recorded with who and when; concurrent claims have one
//! winner; another workspace finds nothing.

use super::*;
use crate::conversations::new_conversation;

fn operator(n: usize) -> HandoffActor {
    HandoffActor {
        kind: ActorKind::User,
        id: Some(format!("usr_operator{n}")),
        name: Some(format!("Operator {n}")),
    }
}

async fn escalated(db: &TestDb, scope: &TenantScope, a: &Agent) -> (Conversation, Handoff) {
    let c = db
        .store
        .create_conversation(scope, &new_conversation(a.id, Some("visitor-1")), now_ms())
        .await
        .unwrap();
    assert_eq!(c.handoff_state, HandoffState::Bot);
    let new = NewHandoff { agent_id: a.id, conversation_id: Some(c.id), reason: "asks".into() };
    let (h, created) = db
        .store
        .escalate_conversation(scope, &new, &HandoffActor::agent(a.id, "Ada"), now_ms())
        .await
        .unwrap();
    assert!(created);
    (c, h)
}

pub async fn live_handoffs_move_through_their_states_with_who_and_when(db: &TestDb) {
    let (_, scope) = workspace(db, "live@example.com").await;
    let (_, other) = workspace(db, "other-live@example.com").await;
    let a = agent(db, &scope, "a").await;
    let (c, h) = escalated(db, &scope, &a).await;
    assert_eq!(
        (h.status, h.conversation_id.clone()),
        (HandoffStatus::Waiting, Some(c.id.to_string()))
    );
    let state =
        |id| async move { db.store.get_conversation(&scope, id).await.unwrap().handoff_state };
    assert_eq!(state(c.id).await, HandoffState::Waiting);
    // Asking again keeps the open handoff.
    let again = NewHandoff { agent_id: a.id, conversation_id: Some(c.id), reason: "again".into() };
    let (same, created) = db
        .store
        .escalate_conversation(&scope, &again, &HandoffActor::customer(Some("visitor-1")), now_ms())
        .await
        .unwrap();
    assert_eq!((same.id.as_str(), created), (h.id.as_str(), false));
    // A second waiting conversation queues behind.
    let (c2, h2) = escalated(db, &scope, &a).await;
    assert_eq!(db.store.queue_position(&scope, &h).await.unwrap(), 1);
    assert_eq!(db.store.queue_position(&scope, &h2).await.unwrap(), 2);
    let open = [HandoffStatus::Waiting, HandoffStatus::Human];
    let ids = |p: Page<Handoff>| p.data.into_iter().map(|h| h.id).collect::<Vec<_>>();
    assert_eq!(
        ids(db.store.list_handoffs_in(&scope, &open, None, None).await.unwrap()),
        [h.id.clone(), h2.id.clone()]
    );

    // An operator message before anyone claimed it is refused.
    assert!(matches!(
        db.store.add_operator_message(&scope, &h.id, &operator(1), "hi", now_ms()).await,
        Err(StoreError::Conflict("handoff_status"))
    ));
    let t = now_ms();
    let claimed =
        db.store.move_handoff(&scope, &h.id, HandoffMove::Claim, &operator(1), t).await.unwrap();
    assert_eq!(
        (claimed.status, claimed.assignee_name.as_deref(), claimed.updated_at),
        (HandoffStatus::Human, Some("Operator 1"), t)
    );
    assert_eq!(state(c.id).await, HandoffState::Human);
    assert_eq!(db.store.queue_position(&scope, &h2).await.unwrap(), 1, "the queue moved up");
    let (_, m) = db
        .store
        .add_operator_message(&scope, &h.id, &operator(1), "Hello, I am here", now_ms())
        .await
        .unwrap();
    assert_eq!((m.role, m.author.as_deref()), (MessageRole::HumanAgent, Some("Operator 1")));
    let stored = db.store.recent_messages(&scope, c.id, 10).await.unwrap();
    assert_eq!(
        stored.last().map(|m| (m.content.as_str(), m.author.as_deref())),
        Some(("Hello, I am here", Some("Operator 1")))
    );
    db.store.add_handoff_note(&scope, &h.id, &operator(2), "VIP customer", now_ms()).await.unwrap();
    let returned = db
        .store
        .move_handoff(&scope, &h.id, HandoffMove::Return, &operator(1), now_ms())
        .await
        .unwrap();
    assert_eq!(
        (returned.status, returned.assignee_name.as_deref()),
        (HandoffStatus::Returned, Some("Operator 1"))
    );
    assert_eq!(state(c.id).await, HandoffState::Bot);
    assert!(matches!(
        db.store.move_handoff(&scope, &h.id, HandoffMove::Claim, &operator(2), now_ms()).await,
        Err(StoreError::Conflict("handoff_status"))
    ));
    // The second one is closed while still waiting.
    let closed = db
        .store
        .move_handoff(&scope, &h2.id, HandoffMove::Close, &operator(2), now_ms())
        .await
        .unwrap();
    assert_eq!(closed.status, HandoffStatus::Closed);
    assert_eq!(state(c2.id).await, HandoffState::Closed);
    // A closed conversation can be escalated again: a new handoff.
    let anew = NewHandoff { agent_id: a.id, conversation_id: Some(c2.id), reason: "back".into() };
    let (h3, created) = db
        .store
        .escalate_conversation(&scope, &anew, &HandoffActor::customer(Some("visitor-1")), now_ms())
        .await
        .unwrap();
    assert!(created && h3.id != h2.id);

    let events = db.store.list_handoff_events(&scope, &h.id).await.unwrap();
    type Seen<'a> = (&'a str, Option<&'a str>, Option<&'a str>, ActorKind, Option<&'a str>);
    let seen: Vec<Seen> = events
        .iter()
        .map(|e| {
            (
                e.kind.as_str(),
                e.from_state.as_deref(),
                e.to_state.as_deref(),
                e.actor_kind,
                e.actor_name.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        [
            ("requested", Some("bot"), Some("waiting"), ActorKind::Agent, Some("Ada")),
            ("claimed", Some("waiting"), Some("human"), ActorKind::User, Some("Operator 1")),
            ("message", None, None, ActorKind::User, Some("Operator 1")),
            ("note", None, None, ActorKind::User, Some("Operator 2")),
            ("returned", Some("human"), Some("bot"), ActorKind::User, Some("Operator 1")),
        ]
    );
    assert_eq!(events[2].message_id.as_deref(), Some(m.id.to_string().as_str()));
    assert_eq!(events[3].body.as_deref(), Some("VIP customer"));
    assert!(events.windows(2).all(|w| w[0].created_at <= w[1].created_at));
    let closed_events = db.store.list_handoff_events(&scope, &h2.id).await.unwrap();
    assert_eq!(
        closed_events.last().map(|e| (
            e.kind.as_str(),
            e.from_state.as_deref(),
            e.to_state.as_deref()
        )),
        Some(("closed", Some("waiting"), Some("closed")))
    );

    // Another workspace: nothing is there.
    assert!(matches!(
        db.store.move_handoff(&other, &h3.id, HandoffMove::Claim, &operator(9), now_ms()).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        db.store.add_handoff_note(&other, &h3.id, &operator(9), "x", now_ms()).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        db.store.add_operator_message(&other, &h3.id, &operator(9), "x", now_ms()).await,
        Err(StoreError::NotFound)
    ));
    assert!(db.store.list_handoff_events(&other, &h.id).await.unwrap().is_empty());
    assert!(db.store.list_handoffs_in(&other, &open, None, None).await.unwrap().data.is_empty());
    assert!(matches!(
        db.store
            .escalate_conversation(&other, &anew, &HandoffActor::customer(None), now_ms())
            .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(db.store.get_handoff(&scope, &h3.id).await.unwrap().status, HandoffStatus::Waiting);
}

pub async fn concurrent_claims_of_a_handoff_have_exactly_one_winner(db: &TestDb) {
    let (_, scope) = workspace(db, "claims@example.com").await;
    let a = agent(db, &scope, "a").await;
    let (c, h) = escalated(db, &scope, &a).await;
    let tasks: Vec<_> = (0..16)
        .map(|n| {
            let (store, id) = (db.store.clone(), h.id.clone());
            tokio::spawn(async move {
                store.move_handoff(&scope, &id, HandoffMove::Claim, &operator(n), now_ms()).await
            })
        })
        .collect();
    let mut winners = Vec::new();
    let mut conflicts = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(h) => winners.push(h.assignee_name.unwrap()),
            Err(StoreError::Conflict("handoff_status")) => conflicts += 1,
            Err(e) => panic!("a claim failed otherwise: {e}"),
        }
    }
    assert_eq!((winners.len(), conflicts), (1, 15), "winners: {winners:?}");
    let stored = db.store.get_handoff(&scope, &h.id).await.unwrap();
    assert_eq!(stored.assignee_name.as_ref(), winners.first());
    let claims = db.store.list_handoff_events(&scope, &h.id).await.unwrap();
    assert_eq!(claims.iter().filter(|e| e.kind == "claimed").count(), 1);
    assert_eq!(
        db.store.get_conversation(&scope, c.id).await.unwrap().handoff_state,
        HandoffState::Human
    );
}
