//! The conformance suite for agents, templates, onboarding, knowledge, conversations, runs,
//! pending actions, handoffs and usage: every test runs against SQLite, and against PostgreSQL
//! when run with `--ignored` and `ECHOFORGE_TEST_PG_URL` set. Each test gets a fresh database.
#![allow(clippy::disallowed_methods)] // tests mint tenant scopes directly

#[path = "conformance_agents/batched.rs"]
mod batched;
#[path = "conformance_agents/conversations.rs"]
mod conversations;
#[path = "conformance_agents/integrations.rs"]
mod integrations;
#[path = "conformance_agents/knowledge.rs"]
mod knowledge;
#[path = "conformance_agents/live_handoff.rs"]
mod live_handoff;
#[path = "conformance_agents/mcp_servers.rs"]
mod mcp_servers;

use batched::*;
use conversations::*;
use domain::time::now_ms;
use domain::*;
use integrations::*;
use knowledge::*;
use live_handoff::*;
use mcp_servers::*;
use serde_json::json;
use store::testing::TestDb;
use store::*;

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let db = store::testing::TestDb::sqlite().await.expect("fresh SQLite database");
                    super::$name(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                #[ignore = "needs PostgreSQL: set ECHOFORGE_TEST_PG_URL and pass --ignored"]
                async fn $name() {
                    let db = store::testing::TestDb::postgres().await.expect("fresh PostgreSQL database");
                    super::$name(&db).await;
                }
            )*
        }
    };
}

conformance!(
    mcp_servers_tools_and_agent_picks_hold_on_both_engines,
    agents_are_created_found_listed_and_counted,
    agent_slugs_are_unique_per_workspace,
    agent_updates_need_the_current_version_and_write_revisions,
    deleting_an_agent_hides_it_and_its_revisions,
    agents_are_invisible_to_other_workspaces,
    concurrent_agent_updates_have_one_winner,
    concurrent_onboarding_saves_keep_every_answer,
    concurrent_step_appends_number_steps_in_turn,
    templates_resolve_own_before_system_and_retire,
    onboarding_saves_steps_until_completed_or_abandoned,
    onboarding_completion_is_atomic_with_the_agent,
    onboarding_sessions_are_invisible_to_other_workspaces,
    knowledge_bases_crud_and_stats,
    documents_move_through_ingestion_and_deduplicate,
    knowledge_is_invisible_to_other_workspaces,
    url_syncs_fall_due_from_stored_times_and_are_claimed_once,
    conversations_list_by_activity_and_soft_delete,
    messages_append_in_order_and_page,
    conversations_are_invisible_to_other_workspaces,
    runs_record_steps_finish_and_expire,
    pending_actions_are_decided_once,
    handoffs_are_requested_and_updated,
    live_handoffs_move_through_their_states_with_who_and_when,
    concurrent_claims_of_a_handoff_have_exactly_one_winner,
    usage_increments_sum_across_batches,
    batched_runs_are_written_together_and_a_bad_one_alone_fails,
    runs_recorded_at_their_start_are_finished_in_place_or_interrupted,
    model_providers_are_set_replaced_and_removed_per_workspace,
    integration_states_leases_and_links_hold_on_both_engines,
);

/// A fresh user with their own workspace; returns the user and a scope on the workspace.
pub async fn workspace(db: &TestDb, email: &str) -> (User, TenantScope) {
    let ws = NewWorkspace {
        id: WorkspaceId::new(),
        name: format!("{email} Inc"),
        plan: "starter".into(),
    };
    let user = NewUser {
        id: UserId::new(),
        email: Email::parse(email).unwrap(),
        name: "Ada".into(),
        password_hash: "$argon2id$fake".into(),
        verified: true,
        is_operator: false,
    };
    let row = db.store.create_user(&user, Some(&ws), now_ms()).await.unwrap();
    (row, TenantScope::assume(ws.id))
}

pub fn new_agent(slug: &str) -> NewAgent {
    NewAgent {
        id: AgentId::new(),
        public_id: format!("pub-{}", uuid::Uuid::now_v7().simple()),
        created_by: None,
        fields: AgentFields {
            slug: slug.into(),
            display_name: format!("Agent {slug}"),
            avatar: Some("🤖".into()),
            role: Some("Support".into()),
            template_slug: Some("customer-support-agent".into()),
            enabled_capabilities: json!(["rag", "widget"]),
            personality: json!({"creativity": 0.3, "verbosity": 0.5, "formality": 0.7}),
            config: json!({"branding": {"color": "#123456"}}),
            system_prompt: "You help customers.".into(),
            onboarding_answers: json!({"company_name": "Acme"}),
            is_active: true,
            ..Default::default()
        },
    }
}

/// An update of an agent at `version`.
pub fn upd(
    version: i64,
    fields: &AgentFields,
    changed: &[&str],
    actor: Option<UserId>,
) -> AgentUpdate {
    AgentUpdate {
        expected_version: version,
        fields: fields.clone(),
        changed_fields: changed.iter().map(|s| s.to_string()).collect(),
        actor,
    }
}

/// Creates an agent and returns it.
pub async fn agent(db: &TestDb, scope: &TenantScope, slug: &str) -> Agent {
    db.store.create_agent(scope, &new_agent(slug), now_ms()).await.unwrap()
}

async fn agents_are_created_found_listed_and_counted(db: &TestDb) {
    let (user, scope) = workspace(db, "agents@example.com").await;
    let kb = KnowledgeBaseId::new();
    let mut new = new_agent("support");
    new.created_by = Some(user.id);
    new.fields.knowledge_base_ids = vec![kb];
    let a = db.store.create_agent(&scope, &new, now_ms()).await.unwrap();
    assert_eq!((a.version, a.slug.as_str(), a.workspace_id), (1, "support", scope.workspace_id()));
    assert_eq!(a.knowledge_bases(), vec![kb]);
    assert_eq!(a.personality.0["formality"], json!(0.7));
    assert_eq!(a.fields(), new.fields, "fields round-trip");
    assert_eq!(db.store.get_agent(&scope, a.id).await.unwrap(), a);
    assert_eq!(db.store.get_agent_by_slug(&scope, "support").await.unwrap().id, a.id);
    assert_eq!(db.store.get_agent_by_public_id(&a.public_id).await.unwrap().id, a.id);
    assert!(matches!(db.store.get_agent_by_public_id("nope").await, Err(StoreError::NotFound)));
    let mut off = new_agent("sales");
    off.fields.is_active = false;
    let b = db.store.create_agent(&scope, &off, now_ms()).await.unwrap();
    let c = agent(db, &scope, "legal").await;
    assert_eq!(db.store.count_agents(&scope).await.unwrap(), 3);
    let all = db.store.list_agents(&scope, None, None, Some(2)).await.unwrap();
    assert_eq!(all.data.iter().map(|a| a.id).collect::<Vec<_>>(), [c.id, b.id], "newest first");
    let rest = db
        .store
        .list_agents(
            &scope,
            None,
            Some(AgentId::parse(all.next_cursor.as_deref().unwrap()).unwrap()),
            Some(2),
        )
        .await
        .unwrap();
    assert_eq!(rest.data.iter().map(|a| a.id).collect::<Vec<_>>(), [a.id]);
    assert!(rest.next_cursor.is_none());
    let active = db.store.list_agents(&scope, Some(true), None, None).await.unwrap();
    assert_eq!(active.data.len(), 2);
    let inactive = db.store.list_agents(&scope, Some(false), None, None).await.unwrap();
    assert_eq!(inactive.data.iter().map(|a| a.id).collect::<Vec<_>>(), [b.id]);
    // The first revision is written at creation.
    let revs = db.store.list_agent_revisions(&scope, a.id, None, None).await.unwrap();
    assert_eq!(revs.data.len(), 1);
    assert_eq!(
        (revs.data[0].version, revs.data[0].actor_user_id.clone()),
        (1, Some(user.id.to_string()))
    );
}

async fn agent_slugs_are_unique_per_workspace(db: &TestDb) {
    let (_, a) = workspace(db, "slug-a@example.com").await;
    let (_, b) = workspace(db, "slug-b@example.com").await;
    agent(db, &a, "support").await;
    let err = db.store.create_agent(&a, &new_agent("support"), now_ms()).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict("slug")), "{err:?}");
    // Another workspace may use the same slug.
    agent(db, &b, "support").await;
    // Public ids are unique everywhere.
    let first = agent(db, &a, "one").await;
    let mut dup = new_agent("two");
    dup.public_id = first.public_id.clone();
    assert!(matches!(
        db.store.create_agent(&b, &dup, now_ms()).await,
        Err(StoreError::Conflict("public_id"))
    ));
    assert_eq!(db.store.count_agents(&a).await.unwrap(), 2);
    // Renaming onto a taken slug is refused too.
    let two = agent(db, &a, "two").await;
    let mut fields = two.fields();
    fields.slug = "support".into();
    let err = db
        .store
        .update_agent(&a, two.id, &upd(two.version, &fields, &["slug"], None), now_ms())
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict("slug")), "{err:?}");
    assert_eq!(db.store.get_agent(&a, two.id).await.unwrap().version, 1, "nothing changed");
}

async fn agent_updates_need_the_current_version_and_write_revisions(db: &TestDb) {
    let (user, scope) = workspace(db, "ver@example.com").await;
    let a = agent(db, &scope, "support").await;
    let mut fields = a.fields();
    fields.display_name = "Alex".into();
    fields.personality = json!({"creativity": 0.9});
    let now = now_ms();
    let v2 = db
        .store
        .update_agent(
            &scope,
            a.id,
            &upd(1, &fields, &["display_name", "personality"], Some(user.id)),
            now,
        )
        .await
        .unwrap();
    assert_eq!((v2.version, v2.display_name.as_str(), v2.updated_at), (2, "Alex", now));
    assert_eq!(v2.created_at, a.created_at);
    // A second editor still holding version 1 loses.
    let mut stale = a.fields();
    stale.tagline = Some("stale".into());
    let err = db
        .store
        .update_agent(&scope, a.id, &upd(1, &stale, &["tagline"], None), now)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict("version")), "{err:?}");
    assert_eq!(db.store.get_agent(&scope, a.id).await.unwrap().tagline, None);
    assert!(matches!(
        db.store.update_agent(&scope, AgentId::new(), &upd(1, &stale, &[], None), now).await,
        Err(StoreError::NotFound)
    ));
    let mut fields = v2.fields();
    fields.is_active = false;
    let v3 = db
        .store
        .update_agent(&scope, a.id, &upd(2, &fields, &["is_active"], Some(user.id)), now + 1)
        .await
        .unwrap();
    assert_eq!(v3.version, 3);
    let revs = db.store.list_agent_revisions(&scope, a.id, None, Some(2)).await.unwrap();
    assert_eq!(revs.data.iter().map(|r| r.version).collect::<Vec<_>>(), [3, 2], "newest first");
    assert_eq!(revs.data[1].changed_fields.0, json!(["display_name", "personality"]));
    assert_eq!(revs.data[1].actor_user_id, Some(user.id.to_string()));
    let older = db
        .store
        .list_agent_revisions(
            &scope,
            a.id,
            Some(RevisionId::parse(revs.next_cursor.as_deref().unwrap()).unwrap()),
            Some(2),
        )
        .await
        .unwrap();
    assert_eq!(older.data.iter().map(|r| r.version).collect::<Vec<_>>(), [1]);
    // A revision's snapshot is the whole agent at that version: restoring is an update with it.
    let rev2 = db.store.get_agent_revision(&scope, a.id, revs.data[1].id).await.unwrap();
    let snapshot: Agent = serde_json::from_value(rev2.snapshot.0.clone()).unwrap();
    assert_eq!(snapshot, v2);
    let restored = db
        .store
        .update_agent(&scope, a.id, &upd(3, &snapshot.fields(), &["is_active"], None), now + 2)
        .await
        .unwrap();
    assert_eq!(
        (restored.version, restored.is_active, restored.display_name.as_str()),
        (4, true, "Alex")
    );
}

async fn deleting_an_agent_hides_it_and_its_revisions(db: &TestDb) {
    let (_, scope) = workspace(db, "del@example.com").await;
    let a = agent(db, &scope, "gone").await;
    let rev = db.store.list_agent_revisions(&scope, a.id, None, None).await.unwrap().data[0].id;
    let conv = db
        .store
        .create_conversation(&scope, &new_conversation(a.id, None), now_ms())
        .await
        .unwrap();
    assert_eq!(db.store.delete_agent(&scope, a.id).await.unwrap().id, a.id);
    assert!(matches!(db.store.get_agent(&scope, a.id).await, Err(StoreError::NotFound)));
    assert!(matches!(
        db.store.get_agent_by_public_id(&a.public_id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        db.store.get_agent_revision(&scope, a.id, rev).await,
        Err(StoreError::NotFound)
    ));
    assert!(db.store.list_agent_revisions(&scope, a.id, None, None).await.unwrap().data.is_empty());
    assert!(matches!(db.store.get_conversation(&scope, conv.id).await, Err(StoreError::NotFound)));
    assert!(matches!(db.store.delete_agent(&scope, a.id).await, Err(StoreError::NotFound)));
    assert_eq!(db.store.count_agents(&scope).await.unwrap(), 0);
    // The slug is free again.
    agent(db, &scope, "gone").await;
}

async fn agents_are_invisible_to_other_workspaces(db: &TestDb) {
    let (_, a) = workspace(db, "iso-a@example.com").await;
    let (_, b) = workspace(db, "iso-b@example.com").await;
    let x = agent(db, &a, "support").await;
    let rev = db.store.list_agent_revisions(&a, x.id, None, None).await.unwrap().data[0].id;
    assert!(matches!(db.store.get_agent(&b, x.id).await, Err(StoreError::NotFound)));
    assert!(matches!(db.store.get_agent_by_slug(&b, "support").await, Err(StoreError::NotFound)));
    assert!(db.store.list_agents(&b, None, None, None).await.unwrap().data.is_empty());
    assert_eq!(db.store.count_agents(&b).await.unwrap(), 0);
    assert!(matches!(
        db.store.update_agent(&b, x.id, &upd(1, &x.fields(), &[], None), now_ms()).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(db.store.delete_agent(&b, x.id).await, Err(StoreError::NotFound)));
    assert!(db.store.list_agent_revisions(&b, x.id, None, None).await.unwrap().data.is_empty());
    assert!(matches!(db.store.get_agent_revision(&b, x.id, rev).await, Err(StoreError::NotFound)));
    assert_eq!(db.store.get_agent(&a, x.id).await.unwrap().version, 1, "untouched");
}

async fn templates_resolve_own_before_system_and_retire(db: &TestDb) {
    let (user, a) = workspace(db, "tpl-a@example.com").await;
    let (_, b) = workspace(db, "tpl-b@example.com").await;
    let now = now_ms();
    let tpl = |slug: &str, name: &str| NewTemplate {
        id: TemplateId::new(),
        slug: slug.into(),
        document: json!({"slug": slug, "name": name}),
        created_by: None,
    };
    let sys = db.store.create_template(None, &tpl("support", "System Support"), now).await.unwrap();
    assert!(sys.is_system());
    assert!(matches!(
        db.store.create_template(None, &tpl("support", "again"), now).await,
        Err(StoreError::Conflict("slug"))
    ));
    let mut own = tpl("support", "Our Support");
    own.created_by = Some(user.id);
    let mine = db.store.create_template(Some(&a), &own, now).await.unwrap();
    assert!(matches!(
        db.store.create_template(Some(&a), &tpl("support", "dup"), now).await,
        Err(StoreError::Conflict("slug"))
    ));
    db.store.create_template(Some(&a), &tpl("faq", "FAQ"), now).await.unwrap();
    // A's own shadows the system one; B sees the system one.
    assert_eq!(db.store.get_template(&a, "support").await.unwrap().unwrap().id, mine.id);
    assert_eq!(db.store.get_template(&b, "support").await.unwrap().unwrap().id, sys.id);
    assert!(db.store.get_template(&b, "faq").await.unwrap().is_none(), "A's template is A's");
    assert_eq!(db.store.get_system_template("support").await.unwrap().unwrap().id, sys.id);
    let slugs = |v: Vec<StoredTemplate>| {
        v.into_iter().map(|t| (t.slug, t.workspace_id.is_none())).collect::<Vec<_>>()
    };
    assert_eq!(
        slugs(db.store.list_templates(Some(&a), false).await.unwrap()),
        [("faq".into(), false), ("support".into(), true), ("support".into(), false)]
    );
    assert_eq!(
        slugs(db.store.list_templates(Some(&b), false).await.unwrap()),
        [("support".into(), true)]
    );
    assert_eq!(
        slugs(db.store.list_templates(None, false).await.unwrap()),
        [("support".into(), true)]
    );
    // Usage counts land on the template the workspace sees.
    assert!(db.store.increment_template_usage(&a, "support").await.unwrap());
    assert!(db.store.increment_template_usage(&b, "support").await.unwrap());
    assert!(db.store.increment_template_usage(&b, "support").await.unwrap());
    assert!(!db.store.increment_template_usage(&b, "seeded-only").await.unwrap());
    assert_eq!(db.store.get_template(&a, "support").await.unwrap().unwrap().usage_count, 1);
    assert_eq!(db.store.get_system_template("support").await.unwrap().unwrap().usage_count, 2);
    // Updates and retirement touch only the owner's row.
    let edited = db
        .store
        .update_template(Some(&a), "support", &json!({"name": "Edited"}), now + 1)
        .await
        .unwrap();
    assert_eq!((edited.id, edited.document.0["name"].as_str()), (mine.id, Some("Edited")));
    assert!(matches!(
        db.store.update_template(Some(&b), "faq", &json!({}), now).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(
        db.store.get_system_template("support").await.unwrap().unwrap().document.0["name"],
        json!("System Support")
    );
    let retired = db.store.set_template_active(None, "support", false, now + 2).await.unwrap();
    assert!(!retired.is_active);
    assert!(db.store.list_templates(Some(&b), false).await.unwrap().is_empty());
    assert_eq!(db.store.list_templates(Some(&b), true).await.unwrap().len(), 1);
    assert!(!db.store.get_template(&b, "support").await.unwrap().unwrap().is_active);
    assert!(matches!(
        db.store.delete_template(Some(&b), "support").await,
        Err(StoreError::NotFound)
    ));
    db.store.delete_template(Some(&a), "support").await.unwrap();
    assert_eq!(
        db.store.get_template(&a, "support").await.unwrap().unwrap().id,
        sys.id,
        "falls back to the system one"
    );
}

async fn onboarding_saves_steps_until_completed_or_abandoned(db: &TestDb) {
    let (user, scope) = workspace(db, "onb@example.com").await;
    let now = now_ms();
    let s = db
        .store
        .create_onboarding(
            &scope,
            OnboardingId::new(),
            user.id,
            "customer-support-agent",
            Some("basics"),
            now,
        )
        .await
        .unwrap();
    assert_eq!(
        (s.status, s.current_step.as_deref(), &s.answers.0),
        (OnboardingStatus::InProgress, Some("basics"), &json!({}))
    );
    let answers = |v: serde_json::Value| v.as_object().unwrap().clone();
    let s = db
        .store
        .save_onboarding_step(
            &scope,
            s.id,
            "basics",
            &answers(json!({"company": "Acme", "tone": "warm"})),
            Some("knowledge"),
            now,
        )
        .await
        .unwrap();
    assert_eq!(s.current_step.as_deref(), Some("knowledge"));
    // Going back and resubmitting a step replaces its answers and does not repeat it.
    let s = db.store.set_onboarding_step(&scope, s.id, "basics", now).await.unwrap();
    assert_eq!(s.current_step.as_deref(), Some("basics"));
    let s = db
        .store
        .save_onboarding_step(
            &scope,
            s.id,
            "basics",
            &answers(json!({"tone": "formal"})),
            Some("knowledge"),
            now,
        )
        .await
        .unwrap();
    let s = db
        .store
        .save_onboarding_step(
            &scope,
            s.id,
            "knowledge",
            &answers(json!({"kb": {"enabled": true}})),
            Some("review"),
            now + 1,
        )
        .await
        .unwrap();
    assert_eq!(s.answers.0, json!({"company": "Acme", "tone": "formal", "kb": {"enabled": true}}));
    assert_eq!(s.completed_steps.0, json!(["basics", "knowledge"]));
    assert_eq!(s.updated_at, now + 1);
    // Resuming later: the saved state is there, and listed among the user's open sessions.
    let again = db.store.get_onboarding(&scope, s.id).await.unwrap();
    assert_eq!(
        (again.answers.0.clone(), again.current_step.clone()),
        (s.answers.0.clone(), Some("review".to_owned()))
    );
    let open = db
        .store
        .list_onboarding(&scope, Some(user.id), Some(OnboardingStatus::InProgress), None, None)
        .await
        .unwrap();
    assert_eq!(open.data.len(), 1);
    // Abandoned: nothing more can be saved.
    let gone = db.store.abandon_onboarding(&scope, s.id, now + 2).await.unwrap();
    assert_eq!(gone.status, OnboardingStatus::Abandoned);
    let err = db
        .store
        .save_onboarding_step(&scope, s.id, "review", &answers(json!({"x": 1})), None, now + 3)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict("status")), "{err:?}");
    assert!(matches!(
        db.store.abandon_onboarding(&scope, s.id, now).await,
        Err(StoreError::Conflict("status"))
    ));
    assert!(matches!(
        db.store.set_onboarding_step(&scope, s.id, "basics", now).await,
        Err(StoreError::Conflict("status"))
    ));
    let after = db.store.get_onboarding(&scope, s.id).await.unwrap();
    assert_eq!((after.answers.0.get("x"), after.updated_at), (None, now + 2), "nothing saved");
    assert!(
        db.store
            .list_onboarding(&scope, None, Some(OnboardingStatus::InProgress), None, None)
            .await
            .unwrap()
            .data
            .is_empty()
    );
    assert!(matches!(
        db.store
            .save_onboarding_step(&scope, OnboardingId::new(), "a", &answers(json!({})), None, now)
            .await,
        Err(StoreError::NotFound)
    ));
}

async fn onboarding_completion_is_atomic_with_the_agent(db: &TestDb) {
    let (user, scope) = workspace(db, "done@example.com").await;
    let now = now_ms();
    agent(db, &scope, "taken").await;
    let s = db
        .store
        .create_onboarding(&scope, OnboardingId::new(), user.id, "generic-chat", Some("name"), now)
        .await
        .unwrap();
    db.store
        .save_onboarding_step(
            &scope,
            s.id,
            "name",
            serde_json::json!({"name": "Taken"}).as_object().unwrap(),
            None,
            now,
        )
        .await
        .unwrap();
    // A slug clash at completion: no agent, and the session stays in progress.
    let err = db
        .store
        .complete_onboarding_with_agent(&scope, s.id, &new_agent("taken"), now)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict("slug")), "{err:?}");
    let still = db.store.get_onboarding(&scope, s.id).await.unwrap();
    assert_eq!((still.status, still.agent_id.clone()), (OnboardingStatus::InProgress, None));
    assert_eq!(db.store.count_agents(&scope).await.unwrap(), 1);
    // With a free slug it completes, and the agent exists with its first revision.
    let mut new = new_agent("fresh");
    new.created_by = Some(user.id);
    let (session, created) =
        db.store.complete_onboarding_with_agent(&scope, s.id, &new, now + 1).await.unwrap();
    assert_eq!(
        (session.status, session.agent_id.clone()),
        (OnboardingStatus::Completed, Some(created.id.to_string()))
    );
    assert_eq!(db.store.get_agent(&scope, created.id).await.unwrap().slug, "fresh");
    assert_eq!(
        db.store.list_agent_revisions(&scope, created.id, None, None).await.unwrap().data.len(),
        1
    );
    // Completed is final: no second agent, no more steps.
    let err = db
        .store
        .complete_onboarding_with_agent(&scope, s.id, &new_agent("another"), now + 2)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict("status")), "{err:?}");
    let err = db
        .store
        .save_onboarding_step(
            &scope,
            s.id,
            "name",
            serde_json::json!({"name": "x"}).as_object().unwrap(),
            None,
            now + 2,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict("status")), "{err:?}");
    assert!(matches!(
        db.store.abandon_onboarding(&scope, s.id, now).await,
        Err(StoreError::Conflict("status"))
    ));
    assert_eq!(db.store.count_agents(&scope).await.unwrap(), 2);
}

async fn onboarding_sessions_are_invisible_to_other_workspaces(db: &TestDb) {
    let (user, a) = workspace(db, "onb-a@example.com").await;
    let (_, b) = workspace(db, "onb-b@example.com").await;
    let now = now_ms();
    let s = db
        .store
        .create_onboarding(&a, OnboardingId::new(), user.id, "generic-chat", None, now)
        .await
        .unwrap();
    let empty = serde_json::Map::new();
    assert!(matches!(db.store.get_onboarding(&b, s.id).await, Err(StoreError::NotFound)));
    assert!(matches!(
        db.store.save_onboarding_step(&b, s.id, "x", &empty, None, now).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        db.store.set_onboarding_step(&b, s.id, "x", now).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(db.store.abandon_onboarding(&b, s.id, now).await, Err(StoreError::NotFound)));
    assert!(matches!(
        db.store.complete_onboarding_with_agent(&b, s.id, &new_agent("x"), now).await,
        Err(StoreError::NotFound)
    ));
    assert!(db.store.list_onboarding(&b, None, None, None, None).await.unwrap().data.is_empty());
    assert_eq!(db.store.count_agents(&b).await.unwrap(), 0, "no agent made in B");
    assert_eq!(
        db.store.get_onboarding(&a, s.id).await.unwrap().status,
        OnboardingStatus::InProgress
    );
}

async fn concurrent_agent_updates_have_one_winner(db: &TestDb) {
    let (_, scope) = workspace(db, "race@example.com").await;
    let a = agent(db, &scope, "support").await;
    let mut tasks = Vec::new();
    for i in 0..4 {
        let store = db.store.clone();
        let mut fields = a.fields();
        fields.tagline = Some(format!("editor {i}"));
        tasks.push(tokio::spawn(async move {
            store.update_agent(&scope, a.id, &upd(1, &fields, &["tagline"], None), now_ms()).await
        }));
    }
    let mut wins = 0;
    for t in tasks {
        match t.await.unwrap() {
            Ok(agent) => {
                wins += 1;
                assert_eq!(agent.version, 2);
            }
            Err(StoreError::Conflict("version")) => {}
            Err(e) => panic!("unexpected {e:?}"),
        }
    }
    assert_eq!(wins, 1);
    let revs = db.store.list_agent_revisions(&scope, a.id, None, None).await.unwrap();
    assert_eq!(revs.data.iter().map(|r| r.version).collect::<Vec<_>>(), [2, 1]);
}

async fn concurrent_onboarding_saves_keep_every_answer(db: &TestDb) {
    let (user, scope) = workspace(db, "race-onb@example.com").await;
    let s = db
        .store
        .create_onboarding(&scope, OnboardingId::new(), user.id, "generic-chat", None, now_ms())
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..6 {
        let store = db.store.clone();
        tasks.push(tokio::spawn(async move {
            let answers = json!({ format!("q{i}"): i }).as_object().unwrap().clone();
            store
                .save_onboarding_step(&scope, s.id, &format!("step{i}"), &answers, None, now_ms())
                .await
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    let done = db.store.get_onboarding(&scope, s.id).await.unwrap();
    let answers = done.answers.0.as_object().unwrap();
    assert_eq!(answers.len(), 6, "no save lost another's answers: {answers:?}");
    assert_eq!(done.completed_steps.0.as_array().unwrap().len(), 6);
}

async fn concurrent_step_appends_number_steps_in_turn(db: &TestDb) {
    let (_, scope) = workspace(db, "race-run@example.com").await;
    let a = agent(db, &scope, "a").await;
    let run = NewRun { id: RunId::new(), agent_id: a.id, conversation_id: None, model: None };
    let run = db.store.start_run(&scope, &run, now_ms()).await.unwrap();
    let mut tasks = Vec::new();
    for i in 0..4 {
        let store = db.store.clone();
        tasks.push(tokio::spawn(async move {
            let steps: Vec<NewRunStep> = (0..3)
                .map(|j| NewRunStep {
                    kind: StepKind::ToolCall,
                    name: format!("t{i}-{j}"),
                    input: json!({}),
                    output: json!({}),
                    latency_ms: 1,
                    tokens_in: 0,
                    tokens_out: 0,
                })
                .collect();
            store.append_run_steps(&scope, run.id, &steps, now_ms()).await.unwrap()
        }));
    }
    for t in tasks {
        let got = t.await.unwrap();
        // Each batch is numbered contiguously.
        assert_eq!(got[2].seq - got[0].seq, 2);
    }
    let full = db.store.get_run(&scope, run.id).await.unwrap();
    assert_eq!(full.steps.iter().map(|s| s.seq).collect::<Vec<_>>(), (1..=12).collect::<Vec<_>>());
}
