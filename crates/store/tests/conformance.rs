//! The store conformance suite: every test runs against SQLite, and against PostgreSQL when
//! run with `--ignored` and `ECHOFORGE_TEST_PG_URL` set (CI does both). Each test gets a fresh
//! database.
#![allow(clippy::disallowed_methods)] // tests mint tenant scopes directly

use domain::time::{DAY, now_ms};
use domain::*;
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
    registration_creates_user_workspace_and_owner_membership,
    emails_are_unique,
    email_tokens_work_once_and_expire,
    refresh_tokens_rotate_and_reuse_revokes_the_family,
    changing_the_password_revokes_other_sessions,
    workspace_profile_patches_set_and_clear_fields,
    the_last_owner_can_be_neither_demoted_nor_removed,
    invites_are_single_use_and_revocable,
    api_keys_are_found_by_digest_until_revoked,
    workspace_rows_are_invisible_to_other_workspaces,
    audit_events_page_newest_first_per_workspace,
    jobs_lease_complete_retry_and_die,
    expired_leases_are_taken_over_and_released_leases_restart,
    concurrent_workers_never_lease_the_same_job,
    documents_added_are_counted_per_utc_day_and_workspace,
    stripe_events_apply_once_in_order_and_move_the_plan,
    metered_usage_is_recorded_with_the_counters_and_reported_once,
    the_credit_ledger_appends_sums_and_grants_each_allowance_once,
    limit_notices_are_recorded_once_per_limit_period_and_threshold,
);

async fn new_user(db: &TestDb, email: &str) -> (User, WorkspaceId) {
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
        verified: false,
        is_operator: false,
    };
    let row = db.store.create_user(&user, Some(&ws), now_ms()).await.unwrap();
    (row, ws.id)
}

async fn registration_creates_user_workspace_and_owner_membership(db: &TestDb) {
    let (user, ws) = new_user(db, "Ada@Example.com").await;
    assert_eq!(user.email, "ada@example.com");
    assert!(!user.is_verified());
    let found = db
        .store
        .find_user_by_email(&Email::parse("ADA@example.com").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, user.id);
    let memberships = db.store.memberships_of(user.id).await.unwrap();
    assert_eq!(memberships.len(), 1);
    assert_eq!(memberships[0].workspace_id, ws);
    assert_eq!(memberships[0].role, Role::Owner);
    let scope = TenantScope::assume(ws);
    let workspace = db.store.get_workspace(&scope).await.unwrap();
    assert_eq!(workspace.plan, "starter");
    db.store.mark_email_verified(user.id, now_ms()).await.unwrap();
    assert!(db.store.get_user(user.id).await.unwrap().is_verified());
}

async fn emails_are_unique(db: &TestDb) {
    new_user(db, "dup@example.com").await;
    let again = NewUser {
        id: UserId::new(),
        email: Email::parse("DUP@example.com").unwrap(),
        name: "Other".into(),
        password_hash: "x".into(),
        verified: false,
        is_operator: false,
    };
    let ws = NewWorkspace { id: WorkspaceId::new(), name: "Other".into(), plan: "starter".into() };
    let err = db.store.create_user(&again, Some(&ws), now_ms()).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict("email")), "{err:?}");
    // Nothing partial: the second workspace was not created either.
    assert!(matches!(
        db.store.get_workspace(&TenantScope::assume(ws.id)).await,
        Err(StoreError::NotFound)
    ));
}

async fn email_tokens_work_once_and_expire(db: &TestDb) {
    let (user, _) = new_user(db, "tok@example.com").await;
    let now = now_ms();
    db.store.insert_email_token(user.id, EmailPurpose::Verify, "d1", now + DAY, now).await.unwrap();
    assert_eq!(
        db.store.consume_email_token(EmailPurpose::Reset, "d1", now).await.unwrap(),
        None,
        "wrong purpose"
    );
    assert_eq!(
        db.store.consume_email_token(EmailPurpose::Verify, "d1", now).await.unwrap(),
        Some(user.id)
    );
    assert_eq!(
        db.store.consume_email_token(EmailPurpose::Verify, "d1", now).await.unwrap(),
        None,
        "single use"
    );
    db.store.insert_email_token(user.id, EmailPurpose::Reset, "d2", now + 10, now).await.unwrap();
    assert_eq!(
        db.store.consume_email_token(EmailPurpose::Reset, "d2", now + 11).await.unwrap(),
        None,
        "expired"
    );
    // A newer token voids the older one.
    db.store.insert_email_token(user.id, EmailPurpose::Reset, "d3", now + DAY, now).await.unwrap();
    db.store.insert_email_token(user.id, EmailPurpose::Reset, "d4", now + DAY, now).await.unwrap();
    assert_eq!(db.store.consume_email_token(EmailPurpose::Reset, "d3", now).await.unwrap(), None);
    assert_eq!(
        db.store.consume_email_token(EmailPurpose::Reset, "d4", now).await.unwrap(),
        Some(user.id)
    );
}

async fn refresh_tokens_rotate_and_reuse_revokes_the_family(db: &TestDb) {
    let (user, _) = new_user(db, "ref@example.com").await;
    let now = now_ms();
    let sid = SessionId::new();
    db.store
        .create_session(sid, user.id, "r1", Some("127.0.0.1"), None, now + DAY, now)
        .await
        .unwrap();
    let out = db.store.rotate_refresh_token("r1", "r2", now + DAY, now).await.unwrap();
    assert_eq!(out, RefreshOutcome::Rotated { session_id: sid, user_id: user.id });
    let out = db.store.rotate_refresh_token("r2", "r3", now + DAY, now).await.unwrap();
    assert_eq!(out, RefreshOutcome::Rotated { session_id: sid, user_id: user.id });
    // r1 was rotated away: replaying it revokes the family, including the current r3.
    assert_eq!(
        db.store.rotate_refresh_token("r1", "x", now + DAY, now).await.unwrap(),
        RefreshOutcome::Reused { session_id: sid }
    );
    assert_eq!(
        db.store.rotate_refresh_token("r3", "r4", now + DAY, now).await.unwrap(),
        RefreshOutcome::Invalid
    );
    assert!(db.store.get_session(sid).await.unwrap().unwrap().revoked_at.is_some());
    assert_eq!(
        db.store.rotate_refresh_token("never", "x", now + DAY, now).await.unwrap(),
        RefreshOutcome::Invalid
    );
}

async fn changing_the_password_revokes_other_sessions(db: &TestDb) {
    let (user, _) = new_user(db, "pw@example.com").await;
    let now = now_ms();
    let (keep, other) = (SessionId::new(), SessionId::new());
    db.store.create_session(keep, user.id, "k1", None, None, now + DAY, now).await.unwrap();
    db.store.create_session(other, user.id, "o1", None, None, now + DAY, now).await.unwrap();
    db.store.set_password(user.id, "newhash", Some(keep), now).await.unwrap();
    assert_eq!(db.store.get_user(user.id).await.unwrap().password_hash, "newhash");
    assert!(db.store.get_session(keep).await.unwrap().unwrap().revoked_at.is_none());
    assert!(db.store.get_session(other).await.unwrap().unwrap().revoked_at.is_some());
    let revoked = db.store.revoked_sessions_since(now).await.unwrap();
    assert_eq!(revoked, vec![other]);
}

async fn workspace_profile_patches_set_and_clear_fields(db: &TestDb) {
    let (_, ws) = new_user(db, "prof@example.com").await;
    let scope = TenantScope::assume(ws);
    let patch = WorkspacePatch {
        name: Some("Acme".into()),
        phone: Some(Some("+1 555".into())),
        website: Some(Some("https://acme.test".into())),
        ..Default::default()
    };
    let w = db.store.update_workspace(&scope, &patch, now_ms()).await.unwrap();
    assert_eq!(
        (w.name.as_str(), w.phone.as_deref(), w.website.as_deref()),
        ("Acme", Some("+1 555"), Some("https://acme.test"))
    );
    let w = db
        .store
        .update_workspace(
            &scope,
            &WorkspacePatch { phone: Some(None), ..Default::default() },
            now_ms(),
        )
        .await
        .unwrap();
    assert_eq!(
        (w.name.as_str(), w.phone.as_deref(), w.website.as_deref()),
        ("Acme", None, Some("https://acme.test"))
    );
    let w = db
        .store
        .update_workspace(
            &scope,
            &WorkspacePatch { plan: Some("pro".into()), ..Default::default() },
            now_ms(),
        )
        .await
        .unwrap();
    assert_eq!((w.plan.as_str(), w.name.as_str()), ("pro", "Acme"), "the plan changes alone");
}

async fn the_last_owner_can_be_neither_demoted_nor_removed(db: &TestDb) {
    let (owner, ws) = new_user(db, "own@example.com").await;
    let scope = TenantScope::assume(ws);
    let now = now_ms();
    assert!(matches!(
        db.store.set_member_role(&scope, owner.id, Role::Admin, now).await,
        Err(StoreError::LastOwner)
    ));
    assert!(matches!(
        db.store.remove_member(&scope, owner.id, now).await,
        Err(StoreError::LastOwner)
    ));
    // With a second owner, the first may step down.
    let (second, _) = new_user(db, "second@example.com").await;
    db.store
        .create_invite(
            &scope,
            InviteId::new(),
            "second@example.com",
            Role::Owner,
            "inv-d",
            owner.id,
            now + DAY,
            now,
        )
        .await
        .unwrap();
    db.store.accept_invite("inv-d", second.id, now).await.unwrap();
    let m = db.store.set_member_role(&scope, owner.id, Role::Member, now).await.unwrap();
    assert_eq!(m.role, Role::Member);
    assert!(matches!(
        db.store.remove_member(&scope, second.id, now).await,
        Err(StoreError::LastOwner)
    ));
    db.store.remove_member(&scope, owner.id, now).await.unwrap();
    let members = db.store.list_members(&scope).await.unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!(members[0].user_id, second.id);
    assert!(matches!(
        db.store.remove_member(&scope, owner.id, now).await,
        Err(StoreError::NotFound)
    ));
}

async fn invites_are_single_use_and_revocable(db: &TestDb) {
    let (owner, ws) = new_user(db, "boss@example.com").await;
    let (guest, _) = new_user(db, "guest@example.com").await;
    let scope = TenantScope::assume(ws);
    let now = now_ms();
    let inv = db
        .store
        .create_invite(
            &scope,
            InviteId::new(),
            "guest@example.com",
            Role::Admin,
            "t1",
            owner.id,
            now + 7 * DAY,
            now,
        )
        .await
        .unwrap();
    assert_eq!(db.store.list_pending_invites(&scope, now).await.unwrap().len(), 1);
    assert_eq!(
        db.store.count_seats(&scope, now).await.unwrap(),
        (1, 1),
        "the owner and the invite"
    );
    assert_eq!(db.store.find_invite_by_token("t1").await.unwrap().unwrap().id, inv.id);
    db.store.accept_invite("t1", guest.id, now).await.unwrap();
    assert!(matches!(db.store.accept_invite("t1", guest.id, now).await, Err(StoreError::NotFound)));
    assert!(db.store.list_pending_invites(&scope, now).await.unwrap().is_empty());
    assert_eq!(db.store.count_seats(&scope, now).await.unwrap(), (2, 0), "accepted: a member");
    let roles: Vec<_> = db
        .store
        .memberships_of(guest.id)
        .await
        .unwrap()
        .into_iter()
        .map(|m| (m.workspace_id, m.role))
        .collect();
    assert!(roles.contains(&(ws, Role::Admin)));
    assert!(db.store.is_member_email(&scope, "guest@example.com").await.unwrap());
    // Revoked and expired invites cannot be used.
    let inv2 = db
        .store
        .create_invite(
            &scope,
            InviteId::new(),
            "x@example.com",
            Role::Member,
            "t2",
            owner.id,
            now + DAY,
            now,
        )
        .await
        .unwrap();
    db.store.revoke_invite(&scope, inv2.id, now).await.unwrap();
    assert!(matches!(
        db.store.revoke_invite(&scope, inv2.id, now).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(db.store.accept_invite("t2", guest.id, now).await, Err(StoreError::NotFound)));
    db.store
        .create_invite(
            &scope,
            InviteId::new(),
            "y@example.com",
            Role::Member,
            "t3",
            owner.id,
            now + 5,
            now,
        )
        .await
        .unwrap();
    assert_eq!(db.store.count_seats(&scope, now).await.unwrap(), (2, 1), "revoked: no seat");
    assert_eq!(db.store.count_seats(&scope, now + 10).await.unwrap(), (2, 0), "expired: none");
    assert!(matches!(
        db.store.accept_invite("t3", guest.id, now + 10).await,
        Err(StoreError::NotFound)
    ));
    // An existing member accepting another invite is a conflict, and the invite stays usable.
    db.store
        .create_invite(
            &scope,
            InviteId::new(),
            "guest@example.com",
            Role::Member,
            "t4",
            owner.id,
            now + DAY,
            now,
        )
        .await
        .unwrap();
    assert!(matches!(
        db.store.accept_invite("t4", guest.id, now).await,
        Err(StoreError::Conflict("membership"))
    ));
    assert!(db.store.find_invite_by_token("t4").await.unwrap().unwrap().accepted_at.is_none());
    let page = db.store.list_invites(&scope, None, Some(2)).await.unwrap();
    assert_eq!(page.data.len(), 2);
    let rest = db
        .store
        .list_invites(
            &scope,
            Some(InviteId::parse(page.next_cursor.as_deref().unwrap()).unwrap()),
            Some(10),
        )
        .await
        .unwrap();
    assert_eq!(rest.data.len(), 2);
    assert!(rest.next_cursor.is_none());
}

fn key(name: &str, digest: &str) -> NewApiKey {
    NewApiKey {
        id: ApiKeyId::new(),
        agent_id: None,
        name: name.into(),
        prefix: "ef_abcd".into(),
        digest: digest.into(),
        permissions: [Permission::Read, Permission::Chat].into_iter().collect(),
        rate_per_minute: Some(60),
        rate_per_day: None,
        ip_allowlist: vec!["10.0.0.0/8".into()],
        created_by: None,
    }
}

async fn api_keys_are_found_by_digest_until_revoked(db: &TestDb) {
    let (_, ws) = new_user(db, "keys@example.com").await;
    let scope = TenantScope::assume(ws);
    let now = now_ms();
    let k = db.store.create_api_key(&scope, &key("ci", "digest-1"), now).await.unwrap();
    assert!(k.permissions.contains(Permission::Chat) && !k.permissions.contains(Permission::Admin));
    assert_eq!(k.ip_allowlist, r#"["10.0.0.0/8"]"#);
    let found = db.store.find_api_key_by_digest("digest-1").await.unwrap().unwrap();
    assert_eq!(found.id, k.id);
    assert!(matches!(
        db.store.create_api_key(&scope, &key("dup", "digest-1"), now).await,
        Err(StoreError::Conflict("api_key"))
    ));
    db.store.touch_api_keys(&[(k.id, now + 5)]).await.unwrap();
    assert_eq!(db.store.get_api_key(&scope, k.id).await.unwrap().last_used_at, Some(now + 5));
    let agent = AgentId::new();
    let mut agent_key = key("agent", "digest-2");
    agent_key.agent_id = Some(agent);
    db.store.create_api_key(&scope, &agent_key, now).await.unwrap();
    assert_eq!(db.store.list_api_keys(&scope, None).await.unwrap().len(), 1);
    assert_eq!(db.store.list_api_keys(&scope, Some(agent)).await.unwrap().len(), 1);
    db.store.revoke_api_key(&scope, k.id, now).await.unwrap();
    assert!(db.store.find_api_key_by_digest("digest-1").await.unwrap().is_none());
    assert!(matches!(db.store.revoke_api_key(&scope, k.id, now).await, Err(StoreError::NotFound)));
}

async fn workspace_rows_are_invisible_to_other_workspaces(db: &TestDb) {
    let (owner_a, ws_a) = new_user(db, "a@example.com").await;
    let (_, ws_b) = new_user(db, "b@example.com").await;
    let (a, b) = (TenantScope::assume(ws_a), TenantScope::assume(ws_b));
    let now = now_ms();
    let k = db.store.create_api_key(&a, &key("a", "digest-a"), now).await.unwrap();
    assert!(matches!(db.store.get_api_key(&b, k.id).await, Err(StoreError::NotFound)));
    assert!(matches!(db.store.revoke_api_key(&b, k.id, now).await, Err(StoreError::NotFound)));
    assert!(db.store.list_api_keys(&b, None).await.unwrap().is_empty());
    let inv = db
        .store
        .create_invite(
            &a,
            InviteId::new(),
            "z@example.com",
            Role::Member,
            "tz",
            owner_a.id,
            now + DAY,
            now,
        )
        .await
        .unwrap();
    assert!(matches!(db.store.revoke_invite(&b, inv.id, now).await, Err(StoreError::NotFound)));
    assert!(db.store.list_pending_invites(&b, now).await.unwrap().is_empty());
    assert!(matches!(
        db.store.set_member_role(&b, owner_a.id, Role::Member, now).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(db.store.remove_member(&b, owner_a.id, now).await, Err(StoreError::NotFound)));
    assert_eq!(db.store.list_members(&b).await.unwrap().len(), 1);
}

async fn audit_events_page_newest_first_per_workspace(db: &TestDb) {
    let (_, ws_a) = new_user(db, "aud-a@example.com").await;
    let (_, ws_b) = new_user(db, "aud-b@example.com").await;
    let now = now_ms();
    for i in 0..5 {
        let event = NewAuditEvent {
            workspace_id: Some(ws_a),
            actor_user_id: None,
            actor_key_id: None,
            action: if i % 2 == 0 { "login.succeeded" } else { "key.created" },
            target: Some(format!("t{i}")),
            ip: Some("127.0.0.1".into()),
            detail: serde_json::json!({"i": i}),
        };
        db.store.record_audit(&event, now + i).await.unwrap();
    }
    let a = TenantScope::assume(ws_a);
    let first = db.store.list_audit(&a, None, None, Some(3)).await.unwrap();
    assert_eq!(
        first.data.iter().map(|e| e.target.clone().unwrap()).collect::<Vec<_>>(),
        ["t4", "t3", "t2"]
    );
    assert_eq!(first.data[0].detail.0, serde_json::json!({"i": 4}));
    let cursor = AuditEventId::parse(first.next_cursor.as_deref().unwrap()).unwrap();
    let second = db.store.list_audit(&a, None, Some(cursor), Some(3)).await.unwrap();
    assert_eq!(second.data.len(), 2);
    assert!(second.next_cursor.is_none());
    assert_eq!(
        db.store.list_audit(&a, Some("key.created"), None, None).await.unwrap().data.len(),
        2
    );
    assert!(
        db.store
            .list_audit(&TenantScope::assume(ws_b), None, None, None)
            .await
            .unwrap()
            .data
            .is_empty()
    );
}

fn job(max_attempts: i64, run_at: i64) -> NewJob {
    NewJob {
        queue: "test".into(),
        kind: "echo".into(),
        payload: serde_json::json!({"n": 1}),
        workspace_id: None,
        max_attempts,
        run_at,
    }
}

async fn jobs_lease_complete_retry_and_die(db: &TestDb) {
    let now = now_ms();
    let id = db.store.enqueue_job(&job(2, now), now).await.unwrap();
    assert!(db.store.lease_job("other-queue", "w1", 1_000, now).await.unwrap().is_none());
    let leased = db.store.lease_job("test", "w1", 30_000, now).await.unwrap().unwrap();
    assert_eq!((leased.id, leased.attempts, leased.status), (id, 1, JobStatus::Running));
    assert!(
        db.store.lease_job("test", "w2", 30_000, now).await.unwrap().is_none(),
        "leased jobs are not handed out twice"
    );
    // First failure: retried after a backoff.
    assert_eq!(db.store.fail_job(id, "w1", "boom", false, now).await.unwrap(), JobStatus::Queued);
    assert!(
        db.store.lease_job("test", "w1", 30_000, now).await.unwrap().is_none(),
        "not before the backoff"
    );
    let later = now + backoff_ms(1);
    let again = db.store.lease_job("test", "w1", 30_000, later).await.unwrap().unwrap();
    assert_eq!(again.attempts, 2);
    assert_eq!(again.last_error.as_deref(), Some("boom"));
    // Second failure exhausts max_attempts: dead.
    assert_eq!(
        db.store.fail_job(id, "w1", "boom again", false, later).await.unwrap(),
        JobStatus::Dead
    );
    assert_eq!(db.store.get_job(id).await.unwrap().status, JobStatus::Dead);
    assert!(db.store.lease_job("test", "w1", 30_000, later + 10_000_000).await.unwrap().is_none());
    // A job that succeeds.
    let ok = db.store.enqueue_job(&job(3, now), now).await.unwrap();
    let leased = db.store.lease_job("test", "w1", 30_000, now).await.unwrap().unwrap();
    assert_eq!(leased.id, ok);
    assert!(
        !db.store.complete_job(ok, "someone-else", now).await.unwrap(),
        "only the lease holder completes"
    );
    assert!(db.store.complete_job(ok, "w1", now).await.unwrap());
    assert_eq!(db.store.count_jobs("test", JobStatus::Done).await.unwrap(), 1);
    assert_eq!(db.store.count_jobs("test", JobStatus::Dead).await.unwrap(), 1);
    // A permanent failure is dead at once.
    let perm = db.store.enqueue_job(&job(5, now), now).await.unwrap();
    db.store.lease_job("test", "w1", 30_000, now).await.unwrap().unwrap();
    assert_eq!(
        db.store.fail_job(perm, "w1", "unsupported file", true, now).await.unwrap(),
        JobStatus::Dead
    );
}

async fn expired_leases_are_taken_over_and_released_leases_restart(db: &TestDb) {
    let now = now_ms();
    let id = db.store.enqueue_job(&job(3, now), now).await.unwrap();
    db.store.lease_job("test", "crashed", 1_000, now).await.unwrap().unwrap();
    assert!(db.store.lease_job("test", "w2", 1_000, now + 500).await.unwrap().is_none());
    let taken = db.store.lease_job("test", "w2", 1_000, now + 1_001).await.unwrap().unwrap();
    assert_eq!((taken.id, taken.attempts, taken.lease_owner.as_deref()), (id, 2, Some("w2")));
    assert!(
        !db.store.complete_job(id, "crashed", now + 1_002).await.unwrap(),
        "the dead worker lost its lease"
    );
    assert!(db.store.extend_job_lease(id, "w2", 60_000, now + 1_002).await.unwrap());
    // Graceful shutdown: the lease is given back and the attempt not counted.
    assert_eq!(db.store.release_job_leases("w2", now + 1_003).await.unwrap(), 1);
    let again = db.store.lease_job("test", "w3", 1_000, now + 1_003).await.unwrap().unwrap();
    assert_eq!((again.id, again.attempts), (id, 2));
    // A job whose worker keeps dying is buried after its last attempt.
    let _ = db.store.lease_job("test", "w4", 1_000, now + 3_000).await.unwrap().unwrap();
    assert_eq!(db.store.bury_exhausted_jobs(now + 5_000).await.unwrap(), 1);
    assert_eq!(db.store.get_job(id).await.unwrap().status, JobStatus::Dead);
}

async fn concurrent_workers_never_lease_the_same_job(db: &TestDb) {
    let now = now_ms();
    for _ in 0..20 {
        db.store.enqueue_job(&job(3, now), now).await.unwrap();
    }
    let mut tasks = Vec::new();
    for w in 0..4 {
        let store = db.store.clone();
        tasks.push(tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(j) =
                store.lease_job("test", &format!("w{w}"), 60_000, now).await.unwrap()
            {
                got.push(j.id);
            }
            got
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let total = all.len();
    all.sort();
    all.dedup();
    assert_eq!((total, all.len()), (20, 20));
}

async fn documents_added_are_counted_per_utc_day_and_workspace(db: &TestDb) {
    let (_, a) = new_user(db, "docs-a@example.com").await;
    let (_, b) = new_user(db, "docs-b@example.com").await;
    let (a, b) = (TenantScope::assume(a), TenantScope::assume(b));
    let kb = |name: &str| NewKnowledgeBase {
        id: KnowledgeBaseId::new(),
        name: name.into(),
        description: None,
        chunk_size: 512,
        chunk_overlap: 50,
        embedding: "none".into(),
        sync_frequency: SyncFrequency::Manual,
    };
    let kb_a = db.store.create_knowledge_base(&a, &kb("A docs"), now_ms()).await.unwrap();
    let kb_b = db.store.create_knowledge_base(&b, &kb("B docs"), now_ms()).await.unwrap();
    let doc = |kb: KnowledgeBaseId, size: i64| NewDocument {
        id: DocumentId::new(),
        kb_id: kb,
        title: "a file".into(),
        size_bytes: size,
        ..Default::default()
    };
    // 2026-11-01T00:00Z and the last millisecond of that day, then 2026-11-03, in A; B apart.
    let nov1 = 1_793_491_200_000;
    for (at, size) in [(nov1, 100), (nov1 + DAY - 1, 20), (nov1 + 2 * DAY, 3)] {
        db.store.create_document(&a, &doc(kb_a.id, size), at).await.unwrap();
    }
    db.store.create_document(&b, &doc(kb_b.id, 9999), nov1).await.unwrap();
    db.store.create_document(&a, &doc(kb_a.id, 7), nov1 - 1).await.unwrap(); // 2026-10-31

    let got = db.store.documents_added_by_day(&a, "2026-11-01", "2026-11-30").await.unwrap();
    let got: Vec<(&str, &str, i64)> =
        got.iter().map(|u| (u.day.as_str(), u.metric.as_str(), u.quantity)).collect();
    assert_eq!(
        got,
        [
            ("2026-11-01", "document_bytes", 120),
            ("2026-11-01", "documents", 2),
            ("2026-11-03", "document_bytes", 3),
            ("2026-11-03", "documents", 1),
        ]
    );
    let oct = db.store.documents_added_by_day(&a, "2026-10-31", "2026-10-31").await.unwrap();
    assert_eq!(oct.iter().map(|u| u.quantity).collect::<Vec<_>>(), [7, 1]);
    assert!(
        db.store.documents_added_by_day(&a, "2026-12-01", "2026-12-31").await.unwrap().is_empty()
    );
    assert!(db.store.documents_added_by_day(&a, "2026-1x-01", "2026-12-31").await.is_err());

    let storage = db.store.document_storage(&a).await.unwrap();
    assert_eq!(
        storage,
        [
            UsageTotal { metric: "document_bytes".into(), quantity: 130 },
            UsageTotal { metric: "documents".into(), quantity: 4 },
        ]
    );
    let empty = new_user(db, "docs-c@example.com").await.1;
    let storage = db.store.document_storage(&TenantScope::assume(empty)).await.unwrap();
    assert_eq!(storage.iter().map(|u| u.quantity).collect::<Vec<_>>(), [0, 0]);
}

fn sub_change(status: &str, plan: &str, event_at: i64) -> SubscriptionChange {
    SubscriptionChange {
        customer_id: Some("cus_1".into()),
        subscription_id: Some("sub_1".into()),
        plan: Some(plan.into()),
        status: Some(status.into()),
        current_period_start: Some(1_000),
        current_period_end: Some(2_000),
        cancel_at_period_end: Some(false),
        ordered: true,
        event_at,
        workspace_plan: Some(plan.into()),
        ..Default::default()
    }
}

async fn stripe_events_apply_once_in_order_and_move_the_plan(db: &TestDb) {
    let (_, ws) = new_user(db, "stripe@example.com").await;
    let (_, other) = new_user(db, "other@example.com").await;
    let scope = TenantScope::assume(ws);
    let now = now_ms();
    assert_eq!(db.store.get_subscription(&scope).await.unwrap(), None);
    let e1 = StripeEventRecord { id: "evt_1", kind: "customer.subscription.created" };
    let out = db
        .store
        .apply_stripe_event(&e1, Some((&scope, &sub_change("active", "pro", 10_000))), now)
        .await
        .unwrap();
    assert_eq!(
        out,
        EventOutcome::Applied { plan_change: Some(("starter".into(), "pro".into())), stale: false }
    );
    let sub = db.store.get_subscription(&scope).await.unwrap().unwrap();
    assert_eq!((sub.plan.as_str(), sub.status.as_str()), ("pro", "active"));
    assert_eq!((sub.current_period_start, sub.cancel_at_period_end), (Some(1_000), false));
    assert_eq!(db.store.get_workspace(&scope).await.unwrap().plan, "pro");
    assert_eq!(db.store.workspace_of_stripe_customer("cus_1").await.unwrap(), Some(ws));
    assert_eq!(db.store.workspace_of_stripe_customer("cus_2").await.unwrap(), None);
    // The same event id again changes nothing, even with other content.
    let out = db
        .store
        .apply_stripe_event(&e1, Some((&scope, &sub_change("canceled", "starter", 20_000))), now)
        .await
        .unwrap();
    assert_eq!(out, EventOutcome::Duplicate);
    assert!(db.store.stripe_event_seen("evt_1").await.unwrap());
    assert_eq!(db.store.get_workspace(&scope).await.unwrap().plan, "pro");
    // An older snapshot is recorded but not applied.
    let e0 = StripeEventRecord { id: "evt_0", kind: "customer.subscription.updated" };
    let out = db
        .store
        .apply_stripe_event(&e0, Some((&scope, &sub_change("canceled", "starter", 5_000))), now)
        .await
        .unwrap();
    assert_eq!(out, EventOutcome::Applied { plan_change: None, stale: true });
    assert_eq!(db.store.get_subscription(&scope).await.unwrap().unwrap().status, "active");
    // Unordered changes (invoices) leave what they do not name; past_due keeps its first time.
    let failed = SubscriptionChange {
        status: Some("past_due".into()),
        past_due: Some(true),
        event_at: 1,
        ..Default::default()
    };
    for (id, at) in [("evt_f1", now), ("evt_f2", now + 5_000)] {
        let e = StripeEventRecord { id, kind: "invoice.payment_failed" };
        db.store.apply_stripe_event(&e, Some((&scope, &failed)), at).await.unwrap();
    }
    let sub = db.store.get_subscription(&scope).await.unwrap().unwrap();
    assert_eq!((sub.status.as_str(), sub.past_due_since), ("past_due", Some(now)));
    assert_eq!((sub.plan.as_str(), sub.stripe_customer_id.as_deref()), ("pro", Some("cus_1")));
    let paid = SubscriptionChange {
        status: Some("active".into()),
        past_due: Some(false),
        ..Default::default()
    };
    let e = StripeEventRecord { id: "evt_p", kind: "invoice.paid" };
    db.store.apply_stripe_event(&e, Some((&scope, &paid)), now).await.unwrap();
    let sub = db.store.get_subscription(&scope).await.unwrap().unwrap();
    assert_eq!((sub.status.as_str(), sub.past_due_since), ("active", None));
    // An event about no workspace is only recorded; another workspace is untouched.
    let e = StripeEventRecord { id: "evt_x", kind: "charge.succeeded" };
    assert_eq!(
        db.store.apply_stripe_event(&e, None, now).await.unwrap(),
        EventOutcome::Applied { plan_change: None, stale: false }
    );
    assert_eq!(db.store.get_subscription(&TenantScope::assume(other)).await.unwrap(), None);
    // A customer id belongs to one workspace.
    let e = StripeEventRecord { id: "evt_dup_customer", kind: "checkout.session.completed" };
    let taken = db
        .store
        .apply_stripe_event(
            &e,
            Some((&TenantScope::assume(other), &sub_change("active", "pro", 1))),
            now,
        )
        .await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
    assert!(!db.store.stripe_event_seen("evt_dup_customer").await.unwrap(), "rolled back");
}

async fn metered_usage_is_recorded_with_the_counters_and_reported_once(db: &TestDb) {
    let (_, billed) = new_user(db, "billed@example.com").await;
    let (_, free) = new_user(db, "free@example.com").await;
    let scope = TenantScope::assume(billed);
    let e = StripeEventRecord { id: "evt_m", kind: "customer.subscription.created" };
    db.store
        .apply_stripe_event(&e, Some((&scope, &sub_change("active", "pro", 1))), now_ms())
        .await
        .unwrap();
    let inc = |ws: WorkspaceId, day: &str, metric: &str, n: i64| UsageIncrement {
        workspace_id: ws,
        agent_id: Some(AgentId::new()),
        day: day.into(),
        metric: metric.into(),
        quantity: n,
    };
    db.store
        .add_usage(&[
            inc(billed, "2026-12-01", "messages", 3),
            inc(billed, "2026-12-02", "messages", 4),
            inc(billed, "2026-12-02", "tokens_in", 500),
            inc(free, "2026-12-02", "messages", 9),
        ])
        .await
        .unwrap();
    let records = db.store.usage_records(&scope, 10).await.unwrap();
    assert_eq!(records.len(), 1, "one record per workspace and batch: {records:?}");
    let r = &records[0];
    assert_eq!((r.metric.as_str(), r.quantity), ("messages", 7));
    assert_eq!((r.period_start.as_str(), r.period_end.as_str()), ("2026-12-01", "2026-12-02"));
    assert_eq!(r.reported_to_stripe, None);
    assert!(db.store.usage_records(&TenantScope::assume(free), 10).await.unwrap().is_empty());
    // The report job was queued in the same transaction.
    let job = db.store.lease_job(BILLING_QUEUE, "w", 10_000, now_ms() + 1).await.unwrap().unwrap();
    assert_eq!(job.kind, REPORT_USAGE_JOB);
    // A batch without messages writes no record and queues nothing.
    db.store.add_usage(&[inc(billed, "2026-12-03", "tokens_out", 5)]).await.unwrap();
    assert_eq!(db.store.usage_records(&scope, 10).await.unwrap().len(), 1);
    assert!(db.store.lease_job(BILLING_QUEUE, "w", 10_000, now_ms() + 1).await.unwrap().is_none());
    // Unreported records carry their customer; marking is once.
    let todo = db.store.unreported_usage(10).await.unwrap();
    assert_eq!(todo.len(), 1);
    assert_eq!(
        (todo[0].id.as_str(), todo[0].stripe_customer_id.as_str()),
        (r.id.as_str(), "cus_1")
    );
    assert!(db.store.mark_usage_reported(&r.id, 42).await.unwrap());
    assert!(!db.store.mark_usage_reported(&r.id, 43).await.unwrap());
    assert!(db.store.unreported_usage(10).await.unwrap().is_empty());
    assert_eq!(db.store.usage_records(&scope, 10).await.unwrap()[0].reported_to_stripe, Some(42));
}

async fn the_credit_ledger_appends_sums_and_grants_each_allowance_once(db: &TestDb) {
    let (_, ws) = new_user(db, "credits@example.com").await;
    let (_, other) = new_user(db, "nocredits@example.com").await;
    let scope = TenantScope::assume(ws);
    let entry = |kind: &str, amount: i64, reference: Option<&str>| NewCreditEntry {
        workspace_id: ws,
        kind: kind.into(),
        amount,
        action: (kind == "spend").then(|| "chat_message".to_owned()),
        quantity: if kind == "spend" { -amount } else { 1 },
        reference: reference.map(Into::into),
        note: String::new(),
        actor: None,
    };
    let allowance = entry("allowance", 100, Some("allowance:2026-12"));
    assert_eq!(db.store.append_credits(std::slice::from_ref(&allowance), 1_000).await.unwrap(), 1);
    assert_eq!(db.store.append_credits(&[allowance], 2_000).await.unwrap(), 0, "once a month");
    let batch = [entry("grant", 50, None), entry("spend", -7, None), entry("spend", -3, None)];
    assert_eq!(db.store.append_credits(&batch, 5_000).await.unwrap(), 3);
    assert_eq!(db.store.credit_balance(&scope).await.unwrap(), 140);
    assert_eq!(db.store.credits_spent_since(&scope, 0).await.unwrap(), 10);
    assert_eq!(db.store.credits_spent_since(&scope, 5_001).await.unwrap(), 0);
    let ledger = db.store.credit_ledger(&scope, 10).await.unwrap();
    assert_eq!(ledger.len(), 4);
    assert_eq!(ledger.last().unwrap().kind, "allowance", "newest first");
    assert_eq!(ledger[0].action.as_deref(), Some("chat_message"));
    let other = TenantScope::assume(other);
    assert_eq!(db.store.credit_balance(&other).await.unwrap(), 0);
    assert!(db.store.credit_ledger(&other, 10).await.unwrap().is_empty());
}

async fn limit_notices_are_recorded_once_per_limit_period_and_threshold(db: &TestDb) {
    let (_, a) = new_user(db, "notice-a@example.com").await;
    let (_, b) = new_user(db, "notice-b@example.com").await;
    let (a, b) = (TenantScope::assume(a), TenantScope::assume(b));
    let now = now_ms();
    let note = |scope, limit, period, threshold| {
        db.store.record_limit_notice(scope, limit, period, threshold, now)
    };
    assert!(note(&a, "messages_per_month", "2026-12", 80).await.unwrap());
    assert!(!note(&a, "messages_per_month", "2026-12", 80).await.unwrap(), "once");
    assert!(note(&a, "messages_per_month", "2026-12", 100).await.unwrap());
    assert!(note(&a, "messages_per_month", "2027-01", 80).await.unwrap(), "a new period");
    assert!(note(&a, "knowledge_docs", "2026-12", 80).await.unwrap(), "another limit");
    assert!(note(&b, "messages_per_month", "2026-12", 80).await.unwrap(), "another workspace");
}
