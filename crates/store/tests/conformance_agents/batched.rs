//! Group-committed runs (`record_runs`) and workspace model providers, on both engines.

use domain::time::now_ms;
use domain::*;
use serde_json::json;
use store::testing::TestDb;
use store::*;

use super::{agent, new_conversation, workspace};

fn record(
    scope: &TenantScope,
    agent: AgentId,
    conversation: ConversationId,
    new: Option<NewConversation>,
) -> RunRecord {
    let now = now_ms();
    RunRecord {
        scope: *scope,
        new_conversation: new,
        conversation_id: conversation,
        run_id: RunId::new(),
        agent_id: agent,
        model: Some("fake-model".into()),
        status: RunStatus::Completed,
        started_at: now - 5,
        finished_at: now,
        usage: json!({"prompt_tokens": 12, "completion_tokens": 3}),
        error: None,
        messages: vec![
            NewMessage::text(MessageRole::User, "hello"),
            NewMessage::text(MessageRole::Assistant, "hi there"),
        ],
        steps: vec![NewRunStep {
            kind: StepKind::ModelCall,
            name: "fake-model".into(),
            input: json!({"messages": 2}),
            output: json!({"text": "hi there"}),
            latency_ms: 4,
            tokens_in: 12,
            tokens_out: 3,
        }],
    }
}

pub async fn batched_runs_are_written_together_and_a_bad_one_alone_fails(db: &TestDb) {
    let (_, scope) = workspace(db, "batch@example.com").await;
    let a = agent(db, &scope, "batch").await;
    // One run starts its conversation; one continues an existing one; one names a conversation
    // that does not exist (it must fail without taking the others down).
    let fresh = new_conversation(a.id, Some("visitor-1"));
    let fresh_id = fresh.id;
    let existing = new_conversation(a.id, None);
    db.store.create_conversation(&scope, &existing, now_ms()).await.unwrap();
    let records = vec![
        record(&scope, a.id, fresh_id, Some(fresh)),
        record(&scope, a.id, existing.id, None),
        record(&scope, a.id, ConversationId::new(), None),
    ];
    let results = db.store.record_runs(&records).await;
    assert!(results[0].is_ok() && results[1].is_ok(), "{results:?}");
    assert!(matches!(results[2], Err(StoreError::NotFound)), "{:?}", results[2]);
    for r in &records[..2] {
        let run = db.store.get_run(&scope, r.run_id).await.unwrap();
        assert_eq!(run.run.status, RunStatus::Completed);
        assert!(run.run.finished_at.is_some());
        assert_eq!(run.steps.len(), 1);
        assert_eq!(run.steps[0].seq, 1);
        let msgs = db.store.list_messages(&scope, r.conversation_id, None, Some(10)).await.unwrap();
        let texts: Vec<&str> = msgs.data.iter().map(|m| m.content.as_str()).collect();
        assert_eq!(texts, ["hello", "hi there"]);
    }
    let c = db.store.get_conversation(&scope, fresh_id).await.unwrap();
    assert_eq!(c.end_user_id.as_deref(), Some("visitor-1"));
    assert!(db.store.get_run(&scope, records[2].run_id).await.is_err(), "the bad run left nothing");
    // Another workspace cannot write into this one's conversation.
    let (_, other) = workspace(db, "batch-other@example.com").await;
    let b = agent(db, &other, "other").await;
    let stray = record(&other, b.id, existing.id, None);
    let results = db.store.record_runs(std::slice::from_ref(&stray)).await;
    assert!(results[0].is_err());
    assert!(db.store.get_run(&scope, stray.run_id).await.is_err());
}

pub async fn model_providers_are_set_replaced_and_removed_per_workspace(db: &TestDb) {
    let (_, scope) = workspace(db, "byok@example.com").await;
    let (_, other) = workspace(db, "byok-other@example.com").await;
    assert!(db.store.get_model_provider(&scope).await.unwrap().is_none());
    let set = |model: &str| SetModelProvider {
        provider: "openai".into(),
        base_url: Some("https://llm.example.com/v1".into()),
        model: model.into(),
        api_key_sealed: format!("sealed-{model}"),
        key_last4: "abcd".into(),
        updated_by: None,
    };
    db.store.set_model_provider(&scope, &set("m1"), now_ms()).await.unwrap();
    let replaced = db.store.set_model_provider(&scope, &set("m2"), now_ms()).await.unwrap();
    assert_eq!(replaced.model, "m2");
    assert_eq!(
        db.store.get_model_provider(&scope).await.unwrap().unwrap().api_key_sealed,
        "sealed-m2"
    );
    assert!(db.store.get_model_provider(&other).await.unwrap().is_none(), "isolated");
    assert!(matches!(db.store.delete_model_provider(&other).await, Err(StoreError::NotFound)));
    db.store.delete_model_provider(&scope).await.unwrap();
    assert!(db.store.get_model_provider(&scope).await.unwrap().is_none());
}

pub async fn runs_recorded_at_their_start_are_finished_in_place_or_interrupted(db: &TestDb) {
    let (_, scope) = workspace(db, "begin@example.com").await;
    let a = agent(db, &scope, "begin").await;
    let conv = new_conversation(a.id, None);
    db.store.create_conversation(&scope, &conv, now_ms()).await.unwrap();
    // Started with the user's message, in one transaction: running, and listed.
    let user = NewMessage::text(MessageRole::User, "hello");
    let finished = record(&scope, a.id, conv.id, None);
    let run = NewRun {
        id: finished.run_id,
        agent_id: a.id,
        conversation_id: Some(conv.id),
        model: Some("fake-model".into()),
    };
    db.store.begin_run(&scope, &run, None, Some(&user), finished.started_at).await.unwrap();
    let listed = db.store.list_runs(&scope, None, None, None).await.unwrap();
    assert_eq!(listed.data.len(), 1);
    assert_eq!(listed.data[0].status, RunStatus::Running);
    // Its final record finishes the same row (no duplicate), with the rest of its messages.
    let mut finished = finished;
    finished.messages.remove(0);
    let results = db.store.record_runs(std::slice::from_ref(&finished)).await;
    assert!(results[0].is_ok(), "{results:?}");
    let run = db.store.get_run(&scope, finished.run_id).await.unwrap();
    assert_eq!((run.run.status, run.steps.len()), (RunStatus::Completed, 1));
    let msgs = db.store.list_messages(&scope, conv.id, None, Some(10)).await.unwrap();
    let texts: Vec<&str> = msgs.data.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(texts, ["hello", "hi there"]);
    assert_eq!(db.store.list_runs(&scope, None, None, None).await.unwrap().data.len(), 1);
    // A start record and its finish in one batch; and a start left alone, then interrupted.
    let mut start = record(&scope, a.id, conv.id, None);
    start.status = RunStatus::Running;
    start.messages.clear();
    start.steps.clear();
    let mut done = start.clone();
    done.status = RunStatus::Failed;
    let mut orphan = record(&scope, a.id, conv.id, None);
    orphan.status = RunStatus::Running;
    orphan.messages.clear();
    orphan.steps.clear();
    let batch = [orphan.clone(), done.clone()];
    assert!(db.store.record_runs(&batch).await.iter().all(Result::is_ok));
    assert_eq!(db.store.get_run(&scope, done.run_id).await.unwrap().run.status, RunStatus::Failed);
    // A start for another workspace's agent is refused.
    let (_, other) = workspace(db, "begin-other@example.com").await;
    let stray = NewRun { id: RunId::new(), agent_id: a.id, conversation_id: None, model: None };
    assert!(matches!(
        db.store.begin_run(&other, &stray, None, None, now_ms()).await,
        Err(StoreError::NotFound)
    ));
    // Interrupted: only runs still running that started before the cutoff.
    assert_eq!(db.store.interrupt_runs(orphan.started_at, now_ms()).await.unwrap(), 0);
    assert_eq!(db.store.interrupt_runs(now_ms() + 1, now_ms()).await.unwrap(), 1);
    let run = db.store.get_run(&scope, orphan.run_id).await.unwrap().run;
    assert_eq!(run.status, RunStatus::Interrupted);
    assert!(run.finished_at.is_some() && run.error.is_some());
    assert_eq!(db.store.get_run(&scope, done.run_id).await.unwrap().run.status, RunStatus::Failed);
    // A new conversation begun with its run and first message, in the same transaction; one
    // for another workspace's agent leaves nothing behind.
    let fresh = new_conversation(a.id, Some("visitor-9"));
    let first =
        NewRun { id: RunId::new(), agent_id: a.id, conversation_id: Some(fresh.id), model: None };
    let hi = NewMessage::text(MessageRole::User, "first words");
    db.store.begin_run(&scope, &first, Some(&fresh), Some(&hi), now_ms()).await.unwrap();
    let c = db.store.get_conversation(&scope, fresh.id).await.unwrap();
    assert_eq!((c.agent_id, c.end_user_id.as_deref()), (a.id, Some("visitor-9")));
    assert!(c.last_message_at.is_some());
    let msgs = db.store.list_messages(&scope, fresh.id, None, Some(10)).await.unwrap();
    assert_eq!(msgs.data.iter().map(|m| m.content.as_str()).collect::<Vec<_>>(), ["first words"]);
    assert_eq!(db.store.get_run(&scope, first.id).await.unwrap().run.status, RunStatus::Running);
    let stray_conv = new_conversation(a.id, None);
    let stray = NewRun {
        id: RunId::new(),
        agent_id: a.id,
        conversation_id: Some(stray_conv.id),
        model: None,
    };
    assert!(matches!(
        db.store.begin_run(&other, &stray, Some(&stray_conv), Some(&hi), now_ms()).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        db.store.get_conversation(&other, stray_conv.id).await,
        Err(StoreError::NotFound)
    ));
}
