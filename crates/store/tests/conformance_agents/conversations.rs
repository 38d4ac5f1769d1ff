//! Conversations, messages, runs, pending actions, handoffs and usage.

use domain::time::{DAY, now_ms};
use domain::*;
use serde_json::json;
use store::testing::TestDb;
use store::*;

use super::{agent, workspace};

pub fn new_conversation(agent: AgentId, end_user: Option<&str>) -> NewConversation {
    NewConversation {
        id: ConversationId::new(),
        agent_id: agent,
        end_user_id: end_user.map(Into::into),
        channel: Channel::Widget,
        title: None,
    }
}

pub async fn conversations_list_by_activity_and_soft_delete(db: &TestDb) {
    let (_, scope) = workspace(db, "conv@example.com").await;
    let (a, b) = (agent(db, &scope, "a").await, agent(db, &scope, "b").await);
    let now = now_ms();
    let c1 = db
        .store
        .create_conversation(&scope, &new_conversation(a.id, Some("eu-1")), now)
        .await
        .unwrap();
    let c2 = db
        .store
        .create_conversation(&scope, &new_conversation(a.id, Some("eu-2")), now + 1)
        .await
        .unwrap();
    let c3 = db
        .store
        .create_conversation(&scope, &new_conversation(b.id, Some("eu-1")), now + 2)
        .await
        .unwrap();
    assert_eq!((c1.channel, c1.last_message_at, c1.title.clone()), (Channel::Widget, None, None));
    assert!(matches!(
        db.store.create_conversation(&scope, &new_conversation(AgentId::new(), None), now).await,
        Err(StoreError::NotFound)
    ));
    // A message in the oldest conversation makes it the most recent.
    db.store
        .append_messages(&scope, c1.id, &[NewMessage::text(MessageRole::User, "hi")], now + 10)
        .await
        .unwrap();
    let ids = |p: &Page<Conversation>| p.data.iter().map(|c| c.id).collect::<Vec<_>>();
    let all = db
        .store
        .list_conversations(&scope, &ConversationFilter::default(), None, Some(2))
        .await
        .unwrap();
    assert_eq!(ids(&all), [c1.id, c3.id]);
    let rest = db
        .store
        .list_conversations(
            &scope,
            &ConversationFilter::default(),
            Some(ConversationId::parse(all.next_cursor.as_deref().unwrap()).unwrap()),
            Some(2),
        )
        .await
        .unwrap();
    assert_eq!((ids(&rest), rest.next_cursor.clone()), (vec![c2.id], None));
    let of_a = db
        .store
        .list_conversations(
            &scope,
            &ConversationFilter { agent_id: Some(a.id), end_user_id: None },
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(ids(&of_a), [c1.id, c2.id]);
    let of_eu = db
        .store
        .list_conversations(
            &scope,
            &ConversationFilter { agent_id: None, end_user_id: Some("eu-1".into()) },
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(ids(&of_eu), [c1.id, c3.id]);
    let titled =
        db.store.set_conversation_title(&scope, c2.id, "Refund question", now + 20).await.unwrap();
    assert_eq!(titled.title.as_deref(), Some("Refund question"));
    // Soft delete: hidden everywhere, messages included, and cannot be written to.
    db.store.delete_conversation(&scope, c1.id, now + 30).await.unwrap();
    assert!(matches!(db.store.get_conversation(&scope, c1.id).await, Err(StoreError::NotFound)));
    assert!(matches!(
        db.store.delete_conversation(&scope, c1.id, now).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        db.store.set_conversation_title(&scope, c1.id, "x", now).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        db.store
            .append_messages(&scope, c1.id, &[NewMessage::text(MessageRole::User, "x")], now)
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(db.store.list_messages(&scope, c1.id, None, None).await.unwrap().data.is_empty());
    assert!(db.store.recent_messages(&scope, c1.id, 10).await.unwrap().is_empty());
    let all = db
        .store
        .list_conversations(&scope, &ConversationFilter::default(), None, None)
        .await
        .unwrap();
    assert_eq!(ids(&all), [c3.id, c2.id]);
}

pub async fn messages_append_in_order_and_page(db: &TestDb) {
    let (_, scope) = workspace(db, "msg@example.com").await;
    let a = agent(db, &scope, "a").await;
    let now = now_ms();
    let c = db.store.create_conversation(&scope, &new_conversation(a.id, None), now).await.unwrap();
    let run = RunId::new();
    // Ids order messages: the question's id is made before the answer's.
    let question = NewMessage::text(MessageRole::User, "How much?");
    let mut answer = NewMessage::text(MessageRole::Assistant, "Our plans start at $10.");
    answer.citations = json!([{"document_id": "doc_x", "title": "Pricing"}]);
    answer.tool_calls = json!([{"name": "search_knowledge", "arguments": {"query": "pricing"}}]);
    answer.run_id = Some(run);
    answer.tokens = Some(42);
    let first = db.store.append_messages(&scope, c.id, &[question, answer], now + 1).await.unwrap();
    assert_eq!(first.len(), 2);
    assert_eq!(
        (first[1].role, first[1].tokens, first[1].run_id.clone()),
        (MessageRole::Assistant, Some(42), Some(run.to_string()))
    );
    assert_eq!(first[1].citations.0[0]["title"], json!("Pricing"));
    assert_eq!(first[0].attachments.0, json!([]));
    let batch: Vec<NewMessage> = (0..5)
        .map(|i| {
            NewMessage::text(
                if i % 2 == 0 { MessageRole::User } else { MessageRole::Assistant },
                format!("m{i}"),
            )
        })
        .collect();
    db.store.append_messages(&scope, c.id, &batch, now + 2).await.unwrap();
    assert_eq!(
        db.store.get_conversation(&scope, c.id).await.unwrap().last_message_at,
        Some(now + 2)
    );
    // History pages oldest first.
    let contents = |v: &[Message]| v.iter().map(|m| m.content.clone()).collect::<Vec<_>>();
    let p1 = db.store.list_messages(&scope, c.id, None, Some(3)).await.unwrap();
    assert_eq!(contents(&p1.data), ["How much?", "Our plans start at $10.", "m0"]);
    let p2 = db
        .store
        .list_messages(
            &scope,
            c.id,
            Some(MessageId::parse(p1.next_cursor.as_deref().unwrap()).unwrap()),
            Some(3),
        )
        .await
        .unwrap();
    assert_eq!(contents(&p2.data), ["m1", "m2", "m3"]);
    let p3 = db
        .store
        .list_messages(
            &scope,
            c.id,
            Some(MessageId::parse(p2.next_cursor.as_deref().unwrap()).unwrap()),
            Some(3),
        )
        .await
        .unwrap();
    assert_eq!((contents(&p3.data), p3.next_cursor), (vec!["m4".to_owned()], None));
    // The prompt history: the last N, in order.
    assert_eq!(
        contents(&db.store.recent_messages(&scope, c.id, 3).await.unwrap()),
        ["m2", "m3", "m4"]
    );
    assert_eq!(db.store.recent_messages(&scope, c.id, 100).await.unwrap().len(), 7);
    // A batch that fails (duplicate id) leaves nothing behind.
    let dup = NewMessage { id: first[0].id, ..NewMessage::text(MessageRole::User, "dup") };
    assert!(
        db.store
            .append_messages(
                &scope,
                c.id,
                &[NewMessage::text(MessageRole::User, "ok"), dup],
                now + 3
            )
            .await
            .is_err()
    );
    assert_eq!(db.store.recent_messages(&scope, c.id, 100).await.unwrap().len(), 7);
    assert_eq!(
        db.store.get_conversation(&scope, c.id).await.unwrap().last_message_at,
        Some(now + 2)
    );
}

pub async fn conversations_are_invisible_to_other_workspaces(db: &TestDb) {
    let (_, a) = workspace(db, "conv-a@example.com").await;
    let (_, b) = workspace(db, "conv-b@example.com").await;
    let x = agent(db, &a, "x").await;
    let now = now_ms();
    let c =
        db.store.create_conversation(&a, &new_conversation(x.id, Some("eu")), now).await.unwrap();
    db.store
        .append_messages(&a, c.id, &[NewMessage::text(MessageRole::User, "private")], now)
        .await
        .unwrap();
    assert!(
        matches!(
            db.store.create_conversation(&b, &new_conversation(x.id, None), now).await,
            Err(StoreError::NotFound)
        ),
        "A's agent is not B's"
    );
    assert!(matches!(db.store.get_conversation(&b, c.id).await, Err(StoreError::NotFound)));
    assert!(
        db.store
            .list_conversations(&b, &ConversationFilter::default(), None, None)
            .await
            .unwrap()
            .data
            .is_empty()
    );
    assert!(matches!(
        db.store.set_conversation_title(&b, c.id, "x", now).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(db.store.delete_conversation(&b, c.id, now).await, Err(StoreError::NotFound)));
    assert!(matches!(
        db.store.append_messages(&b, c.id, &[NewMessage::text(MessageRole::User, "x")], now).await,
        Err(StoreError::NotFound)
    ));
    assert!(db.store.list_messages(&b, c.id, None, None).await.unwrap().data.is_empty());
    assert!(db.store.recent_messages(&b, c.id, 10).await.unwrap().is_empty());
    assert_eq!(db.store.recent_messages(&a, c.id, 10).await.unwrap().len(), 1, "untouched");
    // Runs, actions and handoffs too.
    let run = db
        .store
        .start_run(
            &a,
            &NewRun { id: RunId::new(), agent_id: x.id, conversation_id: Some(c.id), model: None },
            now,
        )
        .await
        .unwrap();
    assert!(matches!(
        db.store
            .start_run(
                &b,
                &NewRun { id: RunId::new(), agent_id: x.id, conversation_id: None, model: None },
                now
            )
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(db.store.get_run(&b, run.id).await, Err(StoreError::NotFound)));
    assert!(db.store.list_runs(&b, None, None, None).await.unwrap().data.is_empty());
    assert!(matches!(
        db.store.append_run_steps(&b, run.id, &[step("x")], now).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        db.store.set_run_status(&b, run.id, RunStatus::Cancelled, None, None, now).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(db.store.delete_runs_before(Some(&b), now + DAY).await.unwrap(), 0);
    let action = db.store.create_pending_action(&a, &new_action(run.id, c.id), now).await.unwrap();
    assert!(matches!(
        db.store.create_pending_action(&b, &new_action(run.id, c.id), now).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(db.store.get_pending_action(&b, &action.id).await, Err(StoreError::NotFound)));
    assert!(matches!(
        db.store.decide_pending_action(&b, &action.id, ActionStatus::Approved, None, now).await,
        Err(StoreError::NotFound)
    ));
    assert!(db.store.list_pending_actions(&b, c.id).await.unwrap().is_empty());
    let h = db
        .store
        .create_handoff(
            &a,
            &NewHandoff { agent_id: x.id, conversation_id: Some(c.id), reason: "angry".into() },
            now,
        )
        .await
        .unwrap();
    assert!(matches!(
        db.store
            .create_handoff(
                &b,
                &NewHandoff { agent_id: x.id, conversation_id: None, reason: "x".into() },
                now
            )
            .await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(db.store.get_handoff(&b, &h.id).await, Err(StoreError::NotFound)));
    assert!(db.store.list_handoffs(&b, None, None, None).await.unwrap().data.is_empty());
    assert!(matches!(
        db.store.set_handoff_status(&b, &h.id, HandoffStatus::Closed, now).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(db.store.get_run(&a, run.id).await.unwrap().run.status, RunStatus::Running);
    assert_eq!(
        db.store.get_pending_action(&a, &action.id).await.unwrap().status,
        ActionStatus::Pending
    );
    assert_eq!(db.store.get_handoff(&a, &h.id).await.unwrap().status, HandoffStatus::Requested);
}

fn step(name: &str) -> NewRunStep {
    NewRunStep {
        kind: StepKind::ToolCall,
        name: name.into(),
        input: json!({"q": name}),
        output: json!({"hits": 2}),
        latency_ms: 12,
        tokens_in: 0,
        tokens_out: 0,
    }
}

fn new_action(run: RunId, conversation: ConversationId) -> NewPendingAction {
    NewPendingAction {
        run_id: run,
        conversation_id: Some(conversation),
        tool_name: "send_email".into(),
        arguments: json!({"to": "john@client.test"}),
    }
}

pub async fn runs_record_steps_finish_and_expire(db: &TestDb) {
    let (_, scope) = workspace(db, "runs@example.com").await;
    let (a, b) = (agent(db, &scope, "a").await, agent(db, &scope, "b").await);
    let now = now_ms();
    let start = |agent: AgentId| NewRun {
        id: RunId::new(),
        agent_id: agent,
        conversation_id: None,
        model: Some("gpt-test".into()),
    };
    let old = db.store.start_run(&scope, &start(a.id), now - 40 * DAY).await.unwrap();
    let r = db.store.start_run(&scope, &start(a.id), now).await.unwrap();
    assert_eq!(
        (r.status, r.finished_at, r.model.as_deref()),
        (RunStatus::Running, None, Some("gpt-test"))
    );
    let rb = db.store.start_run(&scope, &start(b.id), now).await.unwrap();
    let model_call = NewRunStep {
        kind: StepKind::ModelCall,
        name: "gpt-test".into(),
        input: json!({"messages": 3}),
        output: json!({"finish": "tool_calls"}),
        latency_ms: 80,
        tokens_in: 100,
        tokens_out: 20,
    };
    let first = db
        .store
        .append_run_steps(&scope, r.id, &[model_call, step("search_knowledge")], now)
        .await
        .unwrap();
    assert_eq!(first.iter().map(|s| s.seq).collect::<Vec<_>>(), [1, 2]);
    let paused = db
        .store
        .set_run_status(&scope, r.id, RunStatus::AwaitingAction, None, None, now + 1)
        .await
        .unwrap();
    assert_eq!((paused.status, paused.finished_at), (RunStatus::AwaitingAction, None));
    let more =
        db.store.append_run_steps(&scope, r.id, &[step("send_email")], now + 2).await.unwrap();
    assert_eq!(more[0].seq, 3);
    let usage = json!({"tokens_in": 100, "tokens_out": 20, "tool_calls": 2});
    let done = db
        .store
        .set_run_status(&scope, r.id, RunStatus::Completed, Some(&usage), None, now + 3)
        .await
        .unwrap();
    assert_eq!(
        (done.status, done.finished_at, done.usage.0.clone()),
        (RunStatus::Completed, Some(now + 3), usage)
    );
    // Finished is final.
    assert!(matches!(
        db.store.append_run_steps(&scope, r.id, &[step("late")], now).await,
        Err(StoreError::Conflict("status"))
    ));
    assert!(matches!(
        db.store.set_run_status(&scope, r.id, RunStatus::Failed, None, Some("x"), now).await,
        Err(StoreError::Conflict("status"))
    ));
    let failed = db
        .store
        .set_run_status(&scope, rb.id, RunStatus::Failed, None, Some("provider down"), now)
        .await
        .unwrap();
    assert_eq!(failed.error.as_deref(), Some("provider down"));
    let full = db.store.get_run(&scope, r.id).await.unwrap();
    assert_eq!(
        full.steps.iter().map(|s| (s.seq, s.name.as_str())).collect::<Vec<_>>(),
        [(1, "gpt-test"), (2, "search_knowledge"), (3, "send_email")]
    );
    assert_eq!(
        (full.steps[0].kind, full.steps[0].tokens_in, full.steps[0].latency_ms),
        (StepKind::ModelCall, 100, 80)
    );
    assert_eq!(full.steps[1].output.0, json!({"hits": 2}));
    // Listing, newest first, per agent.
    let ids = |p: Page<Run>| p.data.into_iter().map(|r| r.id).collect::<Vec<_>>();
    assert_eq!(
        ids(db.store.list_runs(&scope, None, None, None).await.unwrap()),
        [rb.id, r.id, old.id]
    );
    assert_eq!(
        ids(db.store.list_runs(&scope, Some(a.id), None, None).await.unwrap()),
        [r.id, old.id]
    );
    let p = db.store.list_runs(&scope, None, None, Some(2)).await.unwrap();
    let rest = db
        .store
        .list_runs(
            &scope,
            None,
            Some(RunId::parse(p.next_cursor.as_deref().unwrap()).unwrap()),
            Some(2),
        )
        .await
        .unwrap();
    assert_eq!(ids(rest), [old.id]);
    // Retention removes old runs with their steps and actions.
    db.store.append_run_steps(&scope, old.id, &[step("x")], now).await.unwrap();
    db.store
        .create_pending_action(
            &scope,
            &NewPendingAction {
                run_id: old.id,
                conversation_id: None,
                tool_name: "t".into(),
                arguments: json!({}),
            },
            now,
        )
        .await
        .unwrap();
    assert_eq!(db.store.delete_runs_before(None, now - 30 * DAY).await.unwrap(), 1);
    assert!(matches!(db.store.get_run(&scope, old.id).await, Err(StoreError::NotFound)));
    assert_eq!(ids(db.store.list_runs(&scope, None, None, None).await.unwrap()), [rb.id, r.id]);
    assert_eq!(db.store.delete_runs_before(Some(&scope), now - 30 * DAY).await.unwrap(), 0);
}

pub async fn pending_actions_are_decided_once(db: &TestDb) {
    let (user, scope) = workspace(db, "act@example.com").await;
    let a = agent(db, &scope, "a").await;
    let now = now_ms();
    let c = db.store.create_conversation(&scope, &new_conversation(a.id, None), now).await.unwrap();
    let run = db
        .store
        .start_run(
            &scope,
            &NewRun { id: RunId::new(), agent_id: a.id, conversation_id: Some(c.id), model: None },
            now,
        )
        .await
        .unwrap();
    let p1 = db.store.create_pending_action(&scope, &new_action(run.id, c.id), now).await.unwrap();
    let p2 = db.store.create_pending_action(&scope, &new_action(run.id, c.id), now).await.unwrap();
    assert!(p1.id.starts_with("act_"));
    assert_eq!(
        (p1.status, p1.arguments.0["to"].as_str(), p1.decided_at),
        (ActionStatus::Pending, Some("john@client.test"), None)
    );
    assert!(matches!(
        db.store.create_pending_action(&scope, &new_action(RunId::new(), c.id), now).await,
        Err(StoreError::NotFound)
    ));
    let open = db.store.list_pending_actions(&scope, c.id).await.unwrap();
    assert_eq!(
        open.iter().map(|p| p.id.clone()).collect::<Vec<_>>(),
        [p1.id.clone(), p2.id.clone()]
    );
    let approved = db
        .store
        .decide_pending_action(&scope, &p1.id, ActionStatus::Approved, Some(user.id), now + 1)
        .await
        .unwrap();
    assert_eq!(
        (approved.status, approved.decided_at, approved.decided_by.clone()),
        (ActionStatus::Approved, Some(now + 1), Some(user.id.to_string()))
    );
    // Decided once: a second decision (even the same one) is refused and changes nothing.
    assert!(matches!(
        db.store.decide_pending_action(&scope, &p1.id, ActionStatus::Rejected, None, now + 2).await,
        Err(StoreError::Conflict("status"))
    ));
    assert!(matches!(
        db.store.decide_pending_action(&scope, &p1.id, ActionStatus::Approved, None, now + 2).await,
        Err(StoreError::Conflict("status"))
    ));
    assert!(matches!(
        db.store.decide_pending_action(&scope, &p2.id, ActionStatus::Pending, None, now).await,
        Err(StoreError::Conflict("status"))
    ));
    assert!(matches!(
        db.store
            .decide_pending_action(&scope, "act_missing", ActionStatus::Approved, None, now)
            .await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        db.store.get_pending_action(&scope, &p1.id).await.unwrap().decided_at,
        Some(now + 1)
    );
    // Two racing decisions: exactly one wins.
    let (s1, s2) = (db.store.clone(), db.store.clone());
    let (id1, id2) = (p2.id.clone(), p2.id.clone());
    let t1 = tokio::spawn(async move {
        s1.decide_pending_action(&scope, &id1, ActionStatus::Approved, None, now).await.is_ok()
    });
    let t2 = tokio::spawn(async move {
        s2.decide_pending_action(&scope, &id2, ActionStatus::Expired, None, now).await.is_ok()
    });
    let wins = [t1.await.unwrap(), t2.await.unwrap()].iter().filter(|w| **w).count();
    assert_eq!(wins, 1);
    assert!(db.store.list_pending_actions(&scope, c.id).await.unwrap().is_empty());
}

pub async fn handoffs_are_requested_and_updated(db: &TestDb) {
    let (_, scope) = workspace(db, "hof@example.com").await;
    let a = agent(db, &scope, "a").await;
    let now = now_ms();
    let c = db
        .store
        .create_conversation(&scope, &new_conversation(a.id, Some("eu")), now)
        .await
        .unwrap();
    let h1 = db
        .store
        .create_handoff(
            &scope,
            &NewHandoff {
                agent_id: a.id,
                conversation_id: Some(c.id),
                reason: "asks for a human".into(),
            },
            now,
        )
        .await
        .unwrap();
    let h2 = db
        .store
        .create_handoff(
            &scope,
            &NewHandoff {
                agent_id: a.id,
                conversation_id: None,
                reason: "refund over limit".into(),
            },
            now,
        )
        .await
        .unwrap();
    assert!(h1.id.starts_with("hof_"));
    assert_eq!(
        (h1.status, h1.conversation_id.clone()),
        (HandoffStatus::Requested, Some(c.id.to_string()))
    );
    assert!(matches!(
        db.store
            .create_handoff(
                &scope,
                &NewHandoff { agent_id: AgentId::new(), conversation_id: None, reason: "x".into() },
                now
            )
            .await,
        Err(StoreError::NotFound)
    ));
    let delivered = db
        .store
        .set_handoff_status(&scope, &h1.id, HandoffStatus::Delivered, now + 5)
        .await
        .unwrap();
    assert_eq!((delivered.status, delivered.updated_at), (HandoffStatus::Delivered, now + 5));
    let ids = |p: Page<Handoff>| p.data.into_iter().map(|h| h.id).collect::<Vec<_>>();
    assert_eq!(
        ids(db.store.list_handoffs(&scope, None, None, None).await.unwrap()),
        [h2.id.clone(), h1.id.clone()]
    );
    assert_eq!(
        ids(db
            .store
            .list_handoffs(&scope, Some(HandoffStatus::Requested), None, None)
            .await
            .unwrap()),
        std::slice::from_ref(&h2.id)
    );
    let p = db.store.list_handoffs(&scope, None, None, Some(1)).await.unwrap();
    assert_eq!(
        ids(db.store.list_handoffs(&scope, None, p.next_cursor.as_deref(), Some(1)).await.unwrap()),
        std::slice::from_ref(&h1.id)
    );
    assert_eq!(
        db.store.get_handoff(&scope, &h1.id).await.unwrap().status,
        HandoffStatus::Delivered
    );
    assert!(matches!(
        db.store.set_handoff_status(&scope, "hof_missing", HandoffStatus::Closed, now).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn usage_increments_sum_across_batches(db: &TestDb) {
    let (_, a) = workspace(db, "use-a@example.com").await;
    let (_, b) = workspace(db, "use-b@example.com").await;
    let x = agent(db, &a, "x").await;
    let inc = |scope: &TenantScope, agent: Option<AgentId>, day: &str, metric: &str, q: i64| {
        UsageIncrement {
            workspace_id: scope.workspace_id(),
            agent_id: agent,
            day: day.into(),
            metric: metric.into(),
            quantity: q,
        }
    };
    db.store.add_usage(&[]).await.unwrap();
    db.store
        .add_usage(&[
            inc(&a, Some(x.id), "2026-11-01", "messages", 1),
            inc(&a, Some(x.id), "2026-11-01", "messages", 1),
            inc(&a, Some(x.id), "2026-11-01", "tokens_in", 100),
            inc(&a, None, "2026-11-01", "messages", 5),
            inc(&b, None, "2026-11-01", "messages", 1000),
        ])
        .await
        .unwrap();
    db.store
        .add_usage(&[
            inc(&a, Some(x.id), "2026-11-01", "messages", 3),
            inc(&a, Some(x.id), "2026-11-02", "messages", 7),
            inc(&a, Some(x.id), "2026-12-01", "messages", 50),
        ])
        .await
        .unwrap();
    // Concurrent flushes of the same counters, listed in different orders, add up too.
    let mut tasks = Vec::new();
    for i in 0..8 {
        let store = db.store.clone();
        let mut batch = vec![
            inc(&a, Some(x.id), "2026-11-02", "tool_calls", 1),
            inc(&a, Some(x.id), "2026-11-03", "messages", 1),
        ];
        if i % 2 == 1 {
            batch.reverse();
        }
        tasks.push(tokio::spawn(async move { store.add_usage(&batch).await.unwrap() }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let totals = db.store.usage_by_metric(&a, "2026-11-01", "2026-11-30").await.unwrap();
    assert_eq!(
        totals,
        [
            UsageTotal { metric: "messages".into(), quantity: 1 + 1 + 5 + 3 + 7 + 8 },
            UsageTotal { metric: "tokens_in".into(), quantity: 100 },
            UsageTotal { metric: "tool_calls".into(), quantity: 8 },
        ]
    );
    let by_agent = db.store.usage_by_agent(&a, "2026-11-01", "2026-11-01").await.unwrap();
    let mut by_agent: Vec<_> =
        by_agent.into_iter().map(|t| (t.agent_id, t.metric, t.quantity)).collect();
    by_agent.sort_by(|l, r| (l.0.is_some(), &l.1).cmp(&(r.0.is_some(), &r.1)));
    assert_eq!(
        by_agent,
        [
            (None, "messages".into(), 5),
            (Some(x.id), "messages".into(), 5),
            (Some(x.id), "tokens_in".into(), 100)
        ]
    );
    let daily =
        db.store.usage_by_day(&a, "2026-11-01", "2026-12-31", Some("messages")).await.unwrap();
    assert_eq!(
        daily.iter().map(|d| (d.day.as_str(), d.quantity)).collect::<Vec<_>>(),
        [("2026-11-01", 10), ("2026-11-02", 7), ("2026-11-03", 8), ("2026-12-01", 50)]
    );
    assert_eq!(
        db.store.usage_by_metric(&b, "2026-11-01", "2026-11-30").await.unwrap(),
        [UsageTotal { metric: "messages".into(), quantity: 1000 }]
    );
    assert!(db.store.usage_by_metric(&b, "2026-10-01", "2026-10-31").await.unwrap().is_empty());
    // Per day and agent, of all agents or one; another workspace's counters never show.
    let rows = |r: Vec<AgentDailyUsage>| {
        r.into_iter().map(|u| (u.day, u.agent_id, u.metric, u.quantity)).collect::<Vec<_>>()
    };
    let all = db.store.usage_by_agent_and_day(&a, "2026-11-01", "2026-11-02", None).await.unwrap();
    assert_eq!(
        rows(all),
        [
            ("2026-11-01".into(), None, "messages".into(), 5),
            ("2026-11-01".into(), Some(x.id), "messages".into(), 5),
            ("2026-11-01".into(), Some(x.id), "tokens_in".into(), 100),
            ("2026-11-02".into(), Some(x.id), "messages".into(), 7),
            ("2026-11-02".into(), Some(x.id), "tool_calls".into(), 8),
        ]
    );
    let one =
        db.store.usage_by_agent_and_day(&a, "2026-11-03", "2026-12-31", Some(x.id)).await.unwrap();
    assert_eq!(
        rows(one),
        [
            ("2026-11-03".into(), Some(x.id), "messages".into(), 8),
            ("2026-12-01".into(), Some(x.id), "messages".into(), 50),
        ]
    );
    assert!(
        db.store
            .usage_by_agent_and_day(&b, "2026-11-01", "2026-12-31", Some(x.id))
            .await
            .unwrap()
            .is_empty()
    );
}
