use std::sync::Arc;

use domain::{DocumentId, KnowledgeBaseId, WorkspaceId};
use knowledge::{
    KnowledgeError, NoEmbedder, SearchMode, SearchRequest, index::reciprocal_rank_fusion,
};

use crate::fixtures::{ConceptEmbedder, doc_chunks, open_index};

fn request(query: &str, mode: SearchMode) -> SearchRequest {
    SearchRequest { query: query.into(), top_k: 10, min_score: None, mode }
}

#[tokio::test]
async fn added_chunks_are_found_with_their_citation() {
    let dir = tempfile::tempdir().unwrap();
    let index = open_index(dir.path(), Arc::new(NoEmbedder));
    let (ws, kb) = (WorkspaceId::new(), KnowledgeBaseId::new());
    let (doc, chunks) =
        doc_chunks("Refund policy", "Refunds are paid within fourteen days of a return.");
    let chunk_id = chunks[0].chunk_id;
    index.replace_document(ws, kb, doc, chunks).await.unwrap();

    let hits = index
        .search(ws, &[kb], &request("how fast are refunds paid", SearchMode::Lexical))
        .await
        .unwrap();
    assert_eq!(hits.len(), 1);
    let hit = &hits[0];
    assert_eq!(hit.chunk_id, chunk_id);
    assert!(hit.score > 0.0);
    assert_eq!(hit.metadata.document_id, doc);
    assert_eq!(hit.metadata.knowledge_base_id, kb);
    assert_eq!(hit.metadata.document_title, "Refund policy");
    assert_eq!(hit.metadata.source_url.as_deref(), Some("https://example.test/refund-policy"));
    assert_eq!(hit.metadata.page, Some(1));
    assert_eq!(hit.metadata.heading.as_deref(), Some("Refund policy"));
    // Stemming: "refund" finds "Refunds".
    let stemmed = index.search(ws, &[kb], &request("refund", SearchMode::Lexical)).await.unwrap();
    assert_eq!(stemmed.len(), 1);
    // Stop words alone match nothing.
    assert!(
        index
            .search(ws, &[kb], &request("the of a", SearchMode::Lexical))
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn replacing_a_document_swaps_all_its_chunks_and_deleting_it_hides_it_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let index = open_index(dir.path(), Arc::new(ConceptEmbedder));
    let (ws, kb) = (WorkspaceId::new(), KnowledgeBaseId::new());
    let (doc, old) = doc_chunks("Opening hours", "The shop opens at nine on weekdays.");
    index.replace_document(ws, kb, doc, old).await.unwrap();
    let (other, other_chunks) =
        doc_chunks("Parking", "Parking is free on weekdays behind the shop.");
    index.replace_document(ws, kb, other, other_chunks).await.unwrap();

    let mut new = doc_chunks("Opening hours", "The shop now opens at ten, weekends included.").1;
    for c in &mut new {
        c.document_id = doc;
    }
    index.replace_document(ws, kb, doc, new).await.unwrap();
    let hits = index
        .search(ws, &[kb], &request("when does the shop open", SearchMode::Lexical))
        .await
        .unwrap();
    let contents: Vec<&str> =
        hits.iter().filter(|h| h.metadata.document_id == doc).map(|h| h.content.as_str()).collect();
    assert_eq!(contents.len(), 1, "exactly the new chunk: {contents:?}");
    assert!(contents[0].contains("ten"));
    assert_eq!(index.stats(ws, &[kb]).unwrap()[0].chunk_count, 2);

    index.delete_document(ws, kb, doc).await.unwrap();
    for mode in [SearchMode::Lexical, SearchMode::Semantic, SearchMode::Hybrid] {
        let hits = index.search(ws, &[kb], &request("shop opens weekdays", mode)).await.unwrap();
        assert!(
            hits.iter().all(|h| h.metadata.document_id != doc),
            "{mode:?} still finds the deleted doc"
        );
    }
    assert_eq!(index.stats(ws, &[kb]).unwrap()[0].chunk_count, 1);
    assert_eq!(index.vector_count(), 1);
}

#[tokio::test]
async fn chunks_of_another_document_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let index = open_index(dir.path(), Arc::new(NoEmbedder));
    let (_, chunks) = doc_chunks("A", "Some text.");
    let err = index
        .replace_document(WorkspaceId::new(), KnowledgeBaseId::new(), DocumentId::new(), chunks)
        .await
        .unwrap_err();
    assert!(matches!(err, KnowledgeError::InvalidRequest(_)), "{err}");
}

#[tokio::test]
async fn deleting_a_knowledge_base_removes_only_its_chunks() {
    let dir = tempfile::tempdir().unwrap();
    let index = open_index(dir.path(), Arc::new(ConceptEmbedder));
    let ws = WorkspaceId::new();
    let (kb1, kb2) = (KnowledgeBaseId::new(), KnowledgeBaseId::new());
    for kb in [kb1, kb2] {
        let docs = (0..3)
            .map(|i| doc_chunks(&format!("Doc {i}"), "Vacation requests go to the manager."))
            .collect();
        index.replace_documents(ws, kb, docs).await.unwrap();
    }
    let counts: Vec<u64> =
        index.stats(ws, &[kb1, kb2]).unwrap().iter().map(|s| s.chunk_count).collect();
    assert_eq!(counts, vec![3, 3]);
    index.delete_knowledge_base(ws, kb1).await.unwrap();
    let counts: Vec<u64> =
        index.stats(ws, &[kb1, kb2]).unwrap().iter().map(|s| s.chunk_count).collect();
    assert_eq!(counts, vec![0, 3]);
    let hits = index
        .search(ws, &[kb1, kb2], &request("holiday requests", SearchMode::Hybrid))
        .await
        .unwrap();
    assert_eq!(hits.len(), 3);
    assert!(hits.iter().all(|h| h.metadata.knowledge_base_id == kb2));
}

#[tokio::test]
async fn a_workspace_never_sees_another_workspaces_chunks_even_with_its_kb_id() {
    let dir = tempfile::tempdir().unwrap();
    let index = open_index(dir.path(), Arc::new(ConceptEmbedder));
    let (alice, mallory) = (WorkspaceId::new(), WorkspaceId::new());
    let secret_kb = KnowledgeBaseId::new();
    let (doc, chunks) =
        doc_chunks("Secrets", "The admin password is hunter2 and the login is root.");
    index.replace_document(alice, secret_kb, doc, chunks).await.unwrap();
    // Mallory even stores her own chunks under the same kb id.
    let (mdoc, mchunks) = doc_chunks("Mine", "My own password notes.");
    index.replace_document(mallory, secret_kb, mdoc, mchunks).await.unwrap();

    for mode in [SearchMode::Lexical, SearchMode::Semantic, SearchMode::Hybrid] {
        let hits = index
            .search(mallory, &[secret_kb], &request("admin password login hunter2", mode))
            .await
            .unwrap();
        assert!(hits.iter().all(|h| h.metadata.document_id == mdoc), "{mode:?} leaked: {hits:?}");
        assert!(!hits.is_empty(), "{mode:?} should find Mallory's own chunk");
        let alice_hits =
            index.search(alice, &[secret_kb], &request("admin password", mode)).await.unwrap();
        assert!(alice_hits.iter().all(|h| h.metadata.document_id == doc), "{mode:?}");
    }
    assert_eq!(index.stats(mallory, &[secret_kb]).unwrap()[0].chunk_count, 1);
    // Deleting "her" kb or Alice's document id from Mallory's workspace touches nothing of Alice's.
    index.delete_document(mallory, secret_kb, doc).await.unwrap();
    index.delete_knowledge_base(mallory, secret_kb).await.unwrap();
    let hits =
        index.search(alice, &[secret_kb], &request("password", SearchMode::Hybrid)).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].metadata.document_id, doc);
}

#[test]
fn rrf_ranks_items_found_by_both_lists_first() {
    let fused = reciprocal_rank_fusion(&[vec!['a', 'b', 'c'], vec!['b', 'c', 'd']]);
    let order: Vec<char> = fused.iter().map(|(c, _)| *c).collect();
    assert_eq!(order, vec!['b', 'c', 'a', 'd']);
    assert!((fused[0].1 - (1.0 / 61.0 + 1.0 / 62.0)).abs() < 1e-6);
}

#[tokio::test]
async fn hybrid_search_fuses_lexical_and_semantic_rankings() {
    let dir = tempfile::tempdir().unwrap();
    let index = open_index(dir.path(), Arc::new(ConceptEmbedder));
    let (ws, kb) = (WorkspaceId::new(), KnowledgeBaseId::new());
    // Only "both" matches the query's words and its concepts; "synonyms" matches concepts only;
    // "words" matches a query word but the wrong concept.
    let (both, c1) = doc_chunks("Both", "Car repair: bring the car to the workshop for repair.");
    let (synonyms, c2) = doc_chunks("Synonyms", "Automobile maintenance plans.");
    let (words, c3) = doc_chunks("Words", "Repair of a broken dog kennel, dog owners welcome.");
    index.replace_documents(ws, kb, vec![(both, c1), (synonyms, c2), (words, c3)]).await.unwrap();

    let ids = |hits: &[knowledge::SearchHit]| {
        hits.iter().map(|h| h.metadata.document_id).collect::<Vec<_>>()
    };
    let lexical =
        index.search(ws, &[kb], &request("car repair", SearchMode::Lexical)).await.unwrap();
    assert_eq!(ids(&lexical), vec![both, words], "BM25 cannot see synonyms");
    let semantic =
        index.search(ws, &[kb], &request("car repair", SearchMode::Semantic)).await.unwrap();
    let top_two = &ids(&semantic)[..2];
    assert!(top_two.contains(&both) && top_two.contains(&synonyms), "concept matches first");
    let hybrid = index.search(ws, &[kb], &request("car repair", SearchMode::Hybrid)).await.unwrap();
    assert_eq!(ids(&hybrid)[0], both, "first in both lists, first fused");
    assert!(ids(&hybrid).contains(&synonyms) && ids(&hybrid).contains(&words));
    assert!(hybrid.windows(2).all(|w| w[0].score >= w[1].score));
    // "both" scores at least 1/61 + 1/62 = 0.03252; "words" at most 1/62 + 1/63 = 0.03200.
    let strict =
        SearchRequest { min_score: Some(0.0323), ..request("car repair", SearchMode::Hybrid) };
    assert_eq!(ids(&index.search(ws, &[kb], &strict).await.unwrap()), vec![both]);
}

#[tokio::test]
async fn without_a_model_semantic_is_refused_and_hybrid_falls_back_to_lexical() {
    let dir = tempfile::tempdir().unwrap();
    let index = open_index(dir.path(), Arc::new(NoEmbedder));
    let (ws, kb) = (WorkspaceId::new(), KnowledgeBaseId::new());
    let (doc, chunks) = doc_chunks("Pets", "Dogs are allowed in the office on Fridays.");
    index.replace_document(ws, kb, doc, chunks).await.unwrap();
    let err = index.search(ws, &[kb], &request("dogs", SearchMode::Semantic)).await.unwrap_err();
    assert!(matches!(err, KnowledgeError::EmbeddingsUnavailable));
    let hybrid = index.search(ws, &[kb], &request("dogs", SearchMode::Hybrid)).await.unwrap();
    let lexical = index.search(ws, &[kb], &request("dogs", SearchMode::Lexical)).await.unwrap();
    assert_eq!(hybrid, lexical);
    let bad = SearchRequest { top_k: 0, ..request("dogs", SearchMode::Lexical) };
    assert!(matches!(index.search(ws, &[kb], &bad).await, Err(KnowledgeError::InvalidRequest(_))));
}

#[tokio::test]
async fn the_index_and_its_vectors_survive_a_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let (ws, kb) = (WorkspaceId::new(), KnowledgeBaseId::new());
    let (keep, gone) = (
        doc_chunks("Keep", "Invoices are sent monthly."),
        doc_chunks("Gone", "Billing disputes by email."),
    );
    {
        let index = open_index(dir.path(), Arc::new(ConceptEmbedder));
        index.replace_documents(ws, kb, vec![keep.clone(), gone.clone()]).await.unwrap();
        index.delete_document(ws, kb, gone.0).await.unwrap();
        index.close().await;
    }
    let index = open_index(dir.path(), Arc::new(ConceptEmbedder));
    assert_eq!(index.vector_count(), 1);
    let hits = index.search(ws, &[kb], &request("price", SearchMode::Semantic)).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert_eq!(hits[0].metadata.document_id, keep.0);
    assert!(hits[0].score > 0.9);
}

#[tokio::test]
async fn many_tasks_can_ingest_and_search_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let index = open_index(dir.path(), Arc::new(NoEmbedder));
    let (ws, kb) = (WorkspaceId::new(), KnowledgeBaseId::new());
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let index = index.clone();
            tokio::spawn(async move {
                let (doc, chunks) = doc_chunks(
                    &format!("Note {i}"),
                    &format!("Ticket number t{i}x is about printers."),
                );
                index.replace_document(ws, kb, doc, chunks).await.unwrap();
                // Our own write is visible as soon as it returns.
                let hits = index
                    .search(ws, &[kb], &request(&format!("t{i}x"), SearchMode::Lexical))
                    .await
                    .unwrap();
                assert_eq!(hits.len(), 1);
                assert_eq!(hits[0].metadata.document_id, doc);
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(index.stats(ws, &[kb]).unwrap()[0].chunk_count, 32);
}
