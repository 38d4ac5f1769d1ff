//! Integrations: a flow's state is used once, a connection's refresh lease has one holder at a
//! time, agents link to their own workspace's connections only, and deleting a connection
//! removes its links; another workspace finds nothing.

use super::*;

fn connection(provider: &str) -> NewConnection {
    NewConnection {
        id: ConnectionId::new(),
        provider: provider.into(),
        name: "ops@example.com".into(),
        auth_type: "oauth2".into(),
        account_id: Some("U1".into()),
        account_email: Some("ops@example.com".into()),
        account_name: None,
        scopes: "chat:write".into(),
        credentials_sealed: "sealed-blob".into(),
        expires_at: Some(now_ms() + 60_000),
        connected_by: None,
    }
}

pub async fn integration_states_leases_and_links_hold_on_both_engines(db: &TestDb) {
    let (user, scope) = workspace(db, "int@example.com").await;
    let (_, other) = workspace(db, "other-int@example.com").await;
    let now = now_ms();

    // A state is used once, and not after it expired.
    db.store
        .create_oauth_state(&scope, "hash-1", user.id, "slack", "v", now, now + 600_000)
        .await
        .unwrap();
    db.store
        .create_oauth_state(&scope, "hash-old", user.id, "slack", "v", now - 700_000, now - 100_000)
        .await
        .unwrap();
    let flow = db.store.take_oauth_state("hash-1", now).await.unwrap();
    assert_eq!(
        (flow.workspace_id, flow.user_id, flow.provider.as_str()),
        (scope.workspace_id(), user.id, "slack")
    );
    assert!(matches!(db.store.take_oauth_state("hash-1", now).await, Err(StoreError::NotFound)));
    assert!(matches!(db.store.take_oauth_state("hash-old", now).await, Err(StoreError::NotFound)));

    // Of concurrent lease takers exactly one wins; the lease goes back with the new tokens.
    let c = db.store.create_connection(&scope, &connection("slack"), now).await.unwrap();
    assert_eq!(c.status, "active");
    let takers =
        (0..12).map(|_| db.store.lease_connection_refresh(&scope, c.id, now, now + 30_000));
    let won = futures::future::join_all(takers)
        .await
        .into_iter()
        .filter(|r| *r.as_ref().unwrap())
        .count();
    assert_eq!(won, 1);
    assert!(!db.store.lease_connection_refresh(&other, c.id, now, now + 30_000).await.unwrap());
    db.store
        .store_refreshed_credentials(&scope, c.id, "sealed-2", Some(now + 3_600_000), now + 1)
        .await
        .unwrap();
    assert!(db.store.lease_connection_refresh(&scope, c.id, now + 2, now + 30_000).await.unwrap());
    let fresh = db.store.get_connection(&scope, c.id).await.unwrap();
    assert_eq!(
        (fresh.credentials_sealed.as_str(), fresh.expires_at),
        ("sealed-2", Some(now + 3_600_000))
    );
    db.store
        .set_connection_status(&scope, c.id, "expired", Some("invalid_grant"), now + 3)
        .await
        .unwrap();
    let expired = db.store.get_connection(&scope, c.id).await.unwrap();
    assert_eq!(
        (expired.status.as_str(), expired.last_error.as_deref()),
        ("expired", Some("invalid_grant"))
    );

    // Links: own agents and own connections only; deleting the connection removes them.
    let a = agent(db, &scope, "ada").await;
    let theirs = agent(db, &other, "bob").await;
    db.store
        .link_agent_connection(
            &scope,
            a.id,
            c.id,
            "post updates",
            r#"{"actions":["send_message"]}"#,
            now,
        )
        .await
        .unwrap();
    let relinked =
        db.store.link_agent_connection(&scope, a.id, c.id, "post news", "{}", now).await.unwrap();
    assert_eq!(relinked.purpose, "post news");
    assert!(matches!(
        db.store.link_agent_connection(&other, theirs.id, c.id, "", "{}", now).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        db.store.link_agent_connection(&scope, theirs.id, c.id, "", "{}", now).await,
        Err(StoreError::NotFound)
    ));
    assert_eq!(db.store.agent_integrations(&scope, a.id).await.unwrap().len(), 1);
    assert_eq!(db.store.agents_using_connection(&scope, c.id).await.unwrap(), vec![a.id]);
    assert!(db.store.list_connections(&other).await.unwrap().is_empty());
    assert!(matches!(db.store.get_connection(&other, c.id).await, Err(StoreError::NotFound)));
    assert!(matches!(db.store.delete_connection(&other, c.id).await, Err(StoreError::NotFound)));
    assert_eq!(db.store.find_connection_workspace(c.id).await.unwrap(), Some(scope.workspace_id()));
    db.store.delete_connection(&scope, c.id).await.unwrap();
    assert!(db.store.agent_integrations(&scope, a.id).await.unwrap().is_empty());
}
