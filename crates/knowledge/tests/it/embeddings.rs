//! The OpenAI-compatible client against a real HTTP server speaking `/v1/embeddings`.

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use domain::{KnowledgeBaseId, WorkspaceId};
use knowledge::{
    Embedder, KnowledgeError, OpenAiEmbedder, OpenAiEmbedderConfig, SearchMode, SearchRequest,
};
use serde_json::{Value, json};

#[derive(Clone, Default)]
struct Seen {
    batches: Arc<Mutex<Vec<usize>>>,
    auth: Arc<Mutex<Vec<Option<String>>>>,
}

/// A deterministic "model": [count of 'a', count of 'e', length / 10], unnormalised, listed in
/// reverse order so the client must honour `index`.
async fn embeddings(
    State(seen): State<Seen>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok()).map(str::to_owned);
    seen.auth.lock().unwrap().push(auth);
    if body["model"] != "broken-model" && body["encoding_format"] == "float" {
        let inputs: Vec<String> = serde_json::from_value(body["input"].clone()).unwrap();
        seen.batches.lock().unwrap().push(inputs.len());
        let data: Vec<Value> = inputs
            .iter()
            .enumerate()
            .rev()
            .map(|(i, t)| {
                let count = |c| t.chars().filter(|x| *x == c).count() as f32;
                json!({"object": "embedding", "index": i, "embedding": [count('a'), count('e'), t.len() as f32 / 10.0]})
            })
            .collect();
        return (
            StatusCode::OK,
            Json(
                json!({"object": "list", "data": data, "model": body["model"], "usage": {"prompt_tokens": 1, "total_tokens": 1}}),
            ),
        );
    }
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": {"message": "model not found", "type": "invalid_request_error"}})),
    )
}

async fn spawn_server() -> (String, Seen) {
    let seen = Seen::default();
    let app = Router::new().route("/v1/embeddings", post(embeddings)).with_state(seen.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/v1"), seen)
}

#[tokio::test]
async fn the_client_batches_orders_and_normalises_vectors() {
    let (base_url, seen) = spawn_server().await;
    let mut config = OpenAiEmbedderConfig::new(base_url, "test-model");
    config.batch_size = 2;
    config.api_key = Some("sk-test-123".to_owned().into());
    let embedder = OpenAiEmbedder::new(config).unwrap();
    let texts: Vec<String> =
        ["aaa", "eee", "ae", "banana", "x"].iter().map(|s| s.to_string()).collect();
    let vectors = embedder.embed(&texts).await.unwrap();
    assert_eq!(seen.batches.lock().unwrap().clone(), vec![2, 2, 1]);
    assert!(seen.auth.lock().unwrap().iter().all(|a| a.as_deref() == Some("Bearer sk-test-123")));
    assert_eq!(vectors.len(), 5);
    for v in &vectors {
        let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5);
    }
    // "aaa" is mostly the 'a' axis, "eee" the 'e' axis: order was kept despite the reversed reply.
    assert!(vectors[0][0] > 0.9 && vectors[1][1] > 0.9);
    assert!(vectors[3][0] > vectors[3][1]);
}

#[tokio::test]
async fn an_error_answer_becomes_an_embedding_error() {
    let (base_url, _) = spawn_server().await;
    let embedder =
        OpenAiEmbedder::new(OpenAiEmbedderConfig::new(base_url, "broken-model")).unwrap();
    let err = embedder.embed(&["hello".to_owned()]).await.unwrap_err();
    let KnowledgeError::Embedding(message) = err else { panic!("wrong error {err:?}") };
    assert!(message.contains("400") && message.contains("model not found"), "{message}");
}

#[tokio::test]
async fn semantic_search_works_through_the_endpoint() {
    let (base_url, _) = spawn_server().await;
    let embedder =
        Arc::new(OpenAiEmbedder::new(OpenAiEmbedderConfig::new(base_url, "test-model")).unwrap());
    let dir = tempfile::tempdir().unwrap();
    let index = crate::fixtures::open_index(dir.path(), embedder);
    let (ws, kb) = (WorkspaceId::new(), KnowledgeBaseId::new());
    let (a_doc, a) = crate::fixtures::doc_chunks("Banana", "a banana salad, a papaya, a java bar");
    let (e_doc, e) = crate::fixtures::doc_chunks("Eel", "three eels never flee the deep");
    index.replace_documents(ws, kb, vec![(a_doc, a), (e_doc, e)]).await.unwrap();
    let request = SearchRequest {
        query: "aaaaaa".into(),
        top_k: 2,
        min_score: None,
        mode: SearchMode::Semantic,
    };
    let hits = index.search(ws, &[kb], &request).await.unwrap();
    assert_eq!(hits[0].metadata.document_id, a_doc);
    assert!(hits[0].score > hits[1].score);
}
