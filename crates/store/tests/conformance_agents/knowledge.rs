//! Knowledge bases and documents.

use domain::time::now_ms;
use domain::*;
use store::testing::TestDb;
use store::*;

use super::workspace;

fn new_kb(name: &str) -> NewKnowledgeBase {
    NewKnowledgeBase {
        id: KnowledgeBaseId::new(),
        name: name.into(),
        description: Some("Product docs".into()),
        chunk_size: 512,
        chunk_overlap: 50,
        embedding: "none".into(),
        sync_frequency: SyncFrequency::Manual,
    }
}

fn new_doc(kb: KnowledgeBaseId, title: &str) -> NewDocument {
    NewDocument {
        id: DocumentId::new(),
        kb_id: kb,
        title: title.into(),
        filename: Some(format!("{title}.pdf")),
        content_type: Some("application/pdf".into()),
        size_bytes: 1234,
        storage_key: Some(format!("files/{title}")),
        ..Default::default()
    }
}

pub async fn knowledge_bases_crud_and_stats(db: &TestDb) {
    let (_, scope) = workspace(db, "kb@example.com").await;
    let now = now_ms();
    let kb = db.store.create_knowledge_base(&scope, &new_kb("Docs"), now).await.unwrap();
    assert_eq!(
        (kb.chunk_size, kb.chunk_overlap, kb.sync_frequency, kb.last_indexed_at),
        (512, 50, SyncFrequency::Manual, None)
    );
    let other = db.store.create_knowledge_base(&scope, &new_kb("Other"), now).await.unwrap();
    let page = db.store.list_knowledge_bases(&scope, None, Some(1)).await.unwrap();
    assert_eq!(page.data[0].id, other.id);
    let rest = db
        .store
        .list_knowledge_bases(
            &scope,
            Some(KnowledgeBaseId::parse(page.next_cursor.as_deref().unwrap()).unwrap()),
            Some(1),
        )
        .await
        .unwrap();
    assert_eq!((rest.data[0].id, rest.next_cursor), (kb.id, None));
    let patch = KnowledgeBasePatch {
        name: Some("Manuals".into()),
        description: Some(None),
        chunk_size: Some(1024),
        sync_frequency: Some(SyncFrequency::Weekly),
        ..Default::default()
    };
    let kb2 = db.store.update_knowledge_base(&scope, kb.id, &patch, now + 1).await.unwrap();
    assert_eq!(
        (
            kb2.name.as_str(),
            kb2.description.clone(),
            kb2.chunk_size,
            kb2.chunk_overlap,
            kb2.sync_frequency
        ),
        ("Manuals", None, 1024, 50, SyncFrequency::Weekly)
    );
    assert_eq!(db.store.get_knowledge_base(&scope, kb.id).await.unwrap().updated_at, now + 1);
    // Stats follow the documents.
    let d1 = db.store.create_document(&scope, &new_doc(kb.id, "a"), now).await.unwrap();
    let d2 = db.store.create_document(&scope, &new_doc(kb.id, "b"), now).await.unwrap();
    let d3 = db.store.create_document(&scope, &new_doc(kb.id, "c"), now).await.unwrap();
    db.store
        .mark_document_indexed(
            &scope,
            d1.id,
            &DocumentIndexed { chunk_count: 7, ..Default::default() },
            now + 5,
        )
        .await
        .unwrap();
    db.store
        .mark_document_indexed(
            &scope,
            d2.id,
            &DocumentIndexed { chunk_count: 3, ..Default::default() },
            now + 6,
        )
        .await
        .unwrap();
    db.store.mark_document_failed(&scope, d3.id, "the PDF is encrypted", now).await.unwrap();
    db.store.create_document(&scope, &new_doc(kb.id, "d"), now).await.unwrap();
    let stats = db.store.knowledge_base_stats(&scope, kb.id).await.unwrap();
    assert_eq!(
        stats,
        KnowledgeBaseStats {
            documents: 4,
            pending: 1,
            processing: 0,
            indexed: 2,
            failed: 1,
            chunks: 10,
            last_indexed_at: Some(now + 6)
        }
    );
    assert_eq!(
        db.store.knowledge_base_stats(&scope, other.id).await.unwrap(),
        KnowledgeBaseStats::default()
    );
    // Deleting the knowledge base takes its documents with it and returns them.
    let gone = db.store.delete_knowledge_base(&scope, kb.id).await.unwrap();
    assert_eq!(gone.len(), 4);
    assert!(matches!(db.store.get_knowledge_base(&scope, kb.id).await, Err(StoreError::NotFound)));
    assert!(matches!(db.store.get_document(&scope, d1.id).await, Err(StoreError::NotFound)));
    assert!(matches!(
        db.store.delete_knowledge_base(&scope, kb.id).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        db.store.create_document(&scope, &new_doc(kb.id, "late"), now).await,
        Err(StoreError::NotFound)
    ));
}

pub async fn documents_move_through_ingestion_and_deduplicate(db: &TestDb) {
    let (_, scope) = workspace(db, "docs@example.com").await;
    let now = now_ms();
    let kb = db.store.create_knowledge_base(&scope, &new_kb("Docs"), now).await.unwrap();
    let kb_b = db.store.create_knowledge_base(&scope, &new_kb("Other"), now).await.unwrap();
    let mut page_doc = new_doc(kb.id, "pricing");
    page_doc.source_url = Some("https://acme.test/pricing".into());
    page_doc.etag = Some("\"v1\"".into());
    let d = db.store.create_document(&scope, &page_doc, now).await.unwrap();
    assert_eq!(
        (d.status, d.chunk_count, d.content_sha256.clone(), d.size_bytes),
        (DocumentStatus::Pending, 0, None, 1234)
    );
    assert_eq!(
        db.store.mark_document_processing(&scope, d.id, now).await.unwrap().status,
        DocumentStatus::Processing
    );
    let failed = db.store.mark_document_failed(&scope, d.id, "timed out", now).await.unwrap();
    assert_eq!(
        (failed.status, failed.error.as_deref()),
        (DocumentStatus::Failed, Some("timed out"))
    );
    let retry = db.store.mark_document_pending(&scope, d.id, now).await.unwrap();
    assert_eq!((retry.status, retry.error), (DocumentStatus::Pending, None));
    let sha = "a".repeat(64);
    let indexed = db
        .store
        .mark_document_indexed(
            &scope,
            d.id,
            &DocumentIndexed {
                chunk_count: 4,
                content_sha256: Some(sha.clone()),
                etag: Some("\"v2\"".into()),
                last_modified: None,
            },
            now + 9,
        )
        .await
        .unwrap();
    assert_eq!(
        (indexed.status, indexed.chunk_count, indexed.indexed_at, indexed.etag.as_deref()),
        (DocumentStatus::Indexed, 4, Some(now + 9), Some("\"v2\""))
    );
    assert_eq!(
        db.store.get_knowledge_base(&scope, kb.id).await.unwrap().last_indexed_at,
        Some(now + 9)
    );
    // The same text again in the same knowledge base is a duplicate; elsewhere it is fine.
    assert_eq!(
        db.store.find_document_by_sha256(&scope, kb.id, &sha).await.unwrap().unwrap().id,
        d.id
    );
    let twin = db.store.create_document(&scope, &new_doc(kb.id, "copy"), now).await.unwrap();
    let err = db.store.set_document_sha256(&scope, twin.id, &sha, now).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict("duplicate")), "{err:?}");
    let err = db
        .store
        .mark_document_indexed(
            &scope,
            twin.id,
            &DocumentIndexed {
                chunk_count: 4,
                content_sha256: Some(sha.clone()),
                ..Default::default()
            },
            now,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict("duplicate")), "{err:?}");
    assert_eq!(
        db.store.get_document(&scope, twin.id).await.unwrap().status,
        DocumentStatus::Pending,
        "nothing changed"
    );
    let elsewhere = db.store.create_document(&scope, &new_doc(kb_b.id, "copy"), now).await.unwrap();
    db.store.set_document_sha256(&scope, elsewhere.id, &sha, now).await.unwrap();
    assert!(
        db.store.find_document_by_sha256(&scope, kb.id, &"b".repeat(64)).await.unwrap().is_none()
    );
    // The plan's document limit counts every document of the workspace, in any base and
    // status; another workspace has none of them.
    assert_eq!(db.store.count_documents(&scope).await.unwrap(), 3);
    let (_, other) = workspace(db, "docs-other@example.com").await;
    assert_eq!(db.store.count_documents(&other).await.unwrap(), 0);
    // Re-sync finds documents by their source.
    assert_eq!(
        db.store
            .find_document_by_source_url(&scope, kb.id, "https://acme.test/pricing")
            .await
            .unwrap()
            .unwrap()
            .id,
        d.id
    );
    assert!(
        db.store
            .find_document_by_source_url(&scope, kb_b.id, "https://acme.test/pricing")
            .await
            .unwrap()
            .is_none()
    );
    // Listing pages newest first, with a status filter.
    let all = db.store.list_documents(&scope, kb.id, None, None, Some(1)).await.unwrap();
    assert_eq!(all.data[0].id, twin.id);
    let next = db
        .store
        .list_documents(
            &scope,
            kb.id,
            None,
            Some(DocumentId::parse(all.next_cursor.as_deref().unwrap()).unwrap()),
            Some(1),
        )
        .await
        .unwrap();
    assert_eq!((next.data[0].id, next.next_cursor), (d.id, None));
    let pending = db
        .store
        .list_documents(&scope, kb.id, Some(DocumentStatus::Pending), None, None)
        .await
        .unwrap();
    assert_eq!(pending.data.iter().map(|d| d.id).collect::<Vec<_>>(), [twin.id]);
    // Deleting frees the hash.
    assert_eq!(db.store.delete_document(&scope, d.id).await.unwrap().id, d.id);
    assert!(matches!(db.store.delete_document(&scope, d.id).await, Err(StoreError::NotFound)));
    db.store.set_document_sha256(&scope, twin.id, &sha, now).await.unwrap();
}

pub async fn knowledge_is_invisible_to_other_workspaces(db: &TestDb) {
    let (_, a) = workspace(db, "kb-a@example.com").await;
    let (_, b) = workspace(db, "kb-b@example.com").await;
    let now = now_ms();
    let kb = db.store.create_knowledge_base(&a, &new_kb("Docs"), now).await.unwrap();
    let mut nd = new_doc(kb.id, "secret");
    nd.source_url = Some("https://a.test/".into());
    let d = db.store.create_document(&a, &nd, now).await.unwrap();
    db.store.set_document_sha256(&a, d.id, &"c".repeat(64), now).await.unwrap();
    assert!(matches!(db.store.get_knowledge_base(&b, kb.id).await, Err(StoreError::NotFound)));
    assert!(db.store.list_knowledge_bases(&b, None, None).await.unwrap().data.is_empty());
    assert!(matches!(
        db.store.update_knowledge_base(&b, kb.id, &KnowledgeBasePatch::default(), now).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(db.store.knowledge_base_stats(&b, kb.id).await, Err(StoreError::NotFound)));
    assert!(matches!(
        db.store.create_document(&b, &new_doc(kb.id, "intruder"), now).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(db.store.get_document(&b, d.id).await, Err(StoreError::NotFound)));
    assert!(db.store.list_documents(&b, kb.id, None, None, None).await.unwrap().data.is_empty());
    assert!(matches!(
        db.store.mark_document_processing(&b, d.id, now).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        db.store.mark_document_failed(&b, d.id, "x", now).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        db.store.mark_document_indexed(&b, d.id, &DocumentIndexed::default(), now).await,
        Err(StoreError::NotFound)
    ));
    assert!(matches!(
        db.store.set_document_sha256(&b, d.id, "x", now).await,
        Err(StoreError::NotFound)
    ));
    assert!(db.store.find_document_by_sha256(&b, kb.id, &"c".repeat(64)).await.unwrap().is_none());
    assert!(
        db.store.find_document_by_source_url(&b, kb.id, "https://a.test/").await.unwrap().is_none()
    );
    assert!(matches!(db.store.delete_document(&b, d.id).await, Err(StoreError::NotFound)));
    assert!(matches!(db.store.delete_knowledge_base(&b, kb.id).await, Err(StoreError::NotFound)));
    assert_eq!(
        db.store.get_document(&a, d.id).await.unwrap().status,
        DocumentStatus::Pending,
        "untouched"
    );
}

pub async fn url_syncs_fall_due_from_stored_times_and_are_claimed_once(db: &TestDb) {
    let (_, scope) = workspace(db, "sync@example.com").await;
    let ws = scope.workspace_id();
    let now = now_ms();
    let (day, week) = (86_400_000, 7 * 86_400_000);
    let daily = NewKnowledgeBase { sync_frequency: SyncFrequency::Daily, ..new_kb("Daily") };
    let daily = db.store.create_knowledge_base(&scope, &daily, now).await.unwrap();
    let manual = db.store.create_knowledge_base(&scope, &new_kb("Manual"), now).await.unwrap();
    let empty = NewKnowledgeBase { sync_frequency: SyncFrequency::Daily, ..new_kb("No URLs") };
    db.store.create_knowledge_base(&scope, &empty, now).await.unwrap();
    for (kb, url) in [
        (daily.id, "https://a.example/1"),
        (daily.id, "https://a.example/2"),
        (daily.id, "https://a.example/1"),
        (manual.id, "https://b.example/"),
    ] {
        let doc = NewDocument { source_url: Some(url.into()), ..new_doc(kb, "page") };
        db.store.create_document(&scope, &doc, now).await.unwrap();
    }
    assert_eq!(
        db.store.url_sources(&scope, daily.id, 10).await.unwrap(),
        ["https://a.example/1", "https://a.example/2"]
    );
    // Never synced: due a day after creation; manual bases and bases without URLs never.
    assert!(db.store.due_url_syncs(now + day - 1, day, week, 10).await.unwrap().is_empty());
    let due = db.store.due_url_syncs(now + day, day, week, 10).await.unwrap();
    let ids: Vec<_> = due.iter().map(|k| k.id).collect();
    assert_eq!(ids, [daily.id]);
    assert_eq!(due[0].last_synced_at, None);
    let job = NewJob {
        queue: "ingest".into(),
        kind: "kb.crawl".into(),
        payload: serde_json::json!({}),
        workspace_id: Some(ws.to_string()),
        max_attempts: 2,
        run_at: now + day,
    };
    // A claim against a stale reading loses; the first claim wins and queues its job.
    let at = now + day;
    assert!(db.store.claim_url_sync(&scope, daily.id, Some(1), &job, at).await.unwrap().is_none());
    let won = db.store.claim_url_sync(&scope, daily.id, None, &job, at).await.unwrap();
    let job_id = won.expect("the first claim wins");
    assert_eq!(db.store.get_job(job_id).await.unwrap().kind, "kb.crawl");
    assert!(db.store.claim_url_sync(&scope, daily.id, None, &job, at).await.unwrap().is_none());
    assert_eq!(db.store.count_jobs("ingest", JobStatus::Queued).await.unwrap(), 1);
    assert!(db.store.due_url_syncs(at + day - 1, day, week, 10).await.unwrap().is_empty());
    let due = db.store.due_url_syncs(at + day, day, week, 10).await.unwrap();
    assert_eq!(due[0].last_synced_at, Some(at));
    // Another tenant cannot claim it.
    let (_, other) = workspace(db, "other-sync@example.com").await;
    assert!(
        db.store
            .claim_url_sync(&other, daily.id, Some(at), &job, at + day)
            .await
            .unwrap()
            .is_none()
    );
    db.store.record_url_import(&scope, daily.id, "[]", at + 5 * day).await.unwrap();
    assert!(db.store.due_url_syncs(at + 5 * day, day, week, 10).await.unwrap().is_empty());
    // Crawl roots alone make a base due (its pages may all have failed or been deleted).
    let roots = r#"[{"url":"https://c.example/","hops":1}]"#;
    let weekly = NewKnowledgeBase { sync_frequency: SyncFrequency::Weekly, ..new_kb("Roots") };
    let weekly = db.store.create_knowledge_base(&scope, &weekly, now).await.unwrap();
    db.store.record_url_import(&scope, weekly.id, roots, now).await.unwrap();
    let due = db.store.due_url_syncs(now + week, day, week, 10).await.unwrap();
    let found = due.iter().find(|k| k.id == weekly.id).expect("due by its roots");
    assert_eq!((found.crawl_roots.as_deref(), found.last_synced_at), (Some(roots), Some(now)));
}
