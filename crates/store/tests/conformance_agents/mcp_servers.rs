//! MCP servers: registration, tool lists and errors, agents' tool picks within their own
//! workspace, deletion removing the picks; another workspace finds nothing.

use super::*;

pub async fn mcp_servers_tools_and_agent_picks_hold_on_both_engines(db: &TestDb) {
    let (_, scope) = workspace(db, "mcp@example.com").await;
    let (_, other) = workspace(db, "other-mcp@example.com").await;
    let now = now_ms();
    let a = agent(db, &scope, "tess").await;
    let new = NewMcpServer {
        id: McpServerId::new(),
        name: "Everything".into(),
        transport: "stdio".into(),
        url: None,
        command: Some("everything".into()),
        args: "[]".into(),
        secrets_sealed: "sealed".into(),
    };
    let s = db.store.create_mcp_server(&scope, &new, now).await.unwrap();
    assert_eq!((s.tools.as_str(), s.tools_listed_at, s.version), ("[]", None, 1));
    // A listing is stored; a failed one keeps the tools and says why.
    let listed = db
        .store
        .set_mcp_server_tools(&scope, s.id, Some(r#"[{"name":"echo"}]"#), None, now + 1)
        .await
        .unwrap();
    assert_eq!((listed.tools_listed_at, listed.last_error.as_deref()), (Some(now + 1), None));
    let failed =
        db.store.set_mcp_server_tools(&scope, s.id, None, Some("down"), now + 2).await.unwrap();
    assert_eq!(failed.tools, r#"[{"name":"echo"}]"#);
    assert_eq!(
        (failed.tools_listed_at, failed.last_error.as_deref()),
        (Some(now + 1), Some("down"))
    );
    // Picks: replaced on a second put; another workspace can neither see nor pick.
    db.store.link_agent_mcp_tools(&scope, a.id, s.id, r#"["echo"]"#, now).await.unwrap();
    db.store.link_agent_mcp_tools(&scope, a.id, s.id, r#"[]"#, now).await.unwrap();
    let picks = db.store.agent_mcp_tools(&scope, a.id).await.unwrap();
    assert_eq!(picks.len(), 1);
    assert_eq!(picks[0].tools, "[]");
    let all = db.store.workspace_mcp_tools(&scope).await.unwrap();
    assert_eq!((all.len(), all[0].agent_id, all[0].server_id), (1, a.id, s.id));
    assert!(db.store.workspace_mcp_tools(&other).await.unwrap().is_empty());
    assert!(matches!(db.store.get_mcp_server(&other, s.id).await, Err(StoreError::NotFound)));
    assert!(db.store.list_mcp_servers(&other).await.unwrap().is_empty());
    assert!(matches!(
        db.store.link_agent_mcp_tools(&other, a.id, s.id, "[]", now).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(db.store.delete_mcp_server(&other, s.id).await, Err(StoreError::NotFound)));
    // Deleting the server removes the picks.
    db.store.delete_mcp_server(&scope, s.id).await.unwrap();
    assert!(db.store.agent_mcp_tools(&scope, a.id).await.unwrap().is_empty());
    assert!(matches!(
        db.store.unlink_agent_mcp_tools(&scope, a.id, s.id).await,
        Err(StoreError::NotFound)
    ));
}
