//! Retrieval evaluation: the metrics by hand, and a small real run on SciFact documents.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use knowledge::eval::{mrr_at, ndcg_at, percentile, read_qrels, recall_at};
use knowledge::{EvalOptions, EvalPaths, NoEmbedder, SearchMode, evaluate_retrieval};

fn ranked(ids: &[&str]) -> Vec<String> {
    ids.iter().map(|s| s.to_string()).collect()
}

#[test]
fn metrics_match_hand_computed_values() {
    let rels: HashMap<String, u32> = [("d1".to_owned(), 1), ("d2".to_owned(), 1)].into();
    let r = ranked(&["x", "d1", "y", "d2"]);
    let dcg = 1.0 / 3f64.log2() + 1.0 / 5f64.log2();
    let idcg = 1.0 + 1.0 / 3f64.log2();
    assert!((ndcg_at(10, &r, &rels) - dcg / idcg).abs() < 1e-12);
    assert_eq!(ndcg_at(1, &r, &rels), 0.0);
    assert_eq!(recall_at(100, &r, &rels), 1.0);
    assert_eq!(recall_at(2, &r, &rels), 0.5);
    assert_eq!(mrr_at(10, &r, &rels), 0.5);
    assert_eq!(mrr_at(1, &r, &rels), 0.0);
    let lat = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0];
    assert_eq!(percentile(&lat, 50.0), 5.0);
    assert_eq!(percentile(&lat, 99.0), 10.0);
}

fn scifact_dir() -> PathBuf {
    let dir = std::env::var_os("ECHOFORGE_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"))
        .join("scifact");
    assert!(
        dir.join("corpus.jsonl").exists(),
        "SciFact data not found at {} (set ECHOFORGE_DATA_DIR to the folder holding scifact/)",
        dir.display()
    );
    dir
}

#[tokio::test]
async fn a_small_scifact_slice_scores_sanely() {
    let data = scifact_dir();
    let qrels = read_qrels(&data.join("qrels/train.tsv")).unwrap();
    // 40 judged queries, their relevant documents, and 300 other documents as distractors.
    let mut query_ids: Vec<&String> = qrels.keys().collect();
    query_ids.sort();
    query_ids.truncate(40);
    let wanted: HashSet<&String> = query_ids.iter().flat_map(|q| qrels[*q].keys()).collect();
    let corpus = std::fs::read_to_string(data.join("corpus.jsonl")).unwrap();
    let mut distractors = 0;
    let slice: Vec<&str> = corpus
        .lines()
        .filter(|l| {
            let id = serde_json::from_str::<serde_json::Value>(l).unwrap()["_id"]
                .as_str()
                .unwrap()
                .to_owned();
            let keep = wanted.contains(&id) || distractors < 300;
            if !wanted.contains(&id) && keep {
                distractors += 1;
            }
            keep
        })
        .collect();
    let tmp = tempfile::tempdir().unwrap();
    let write = |name: &str, lines: Vec<String>| {
        let path = tmp.path().join(name);
        let mut f = std::fs::File::create(&path).unwrap();
        for l in lines {
            writeln!(f, "{l}").unwrap();
        }
        path
    };
    let corpus_path = write("corpus.jsonl", slice.iter().map(|s| s.to_string()).collect());
    let mut qrel_lines = vec!["query-id\tcorpus-id\tscore".to_owned()];
    for q in &query_ids {
        for (d, s) in &qrels[*q] {
            qrel_lines.push(format!("{q}\t{d}\t{s}"));
        }
    }
    let qrels_path = write("qrels.tsv", qrel_lines);
    let paths =
        EvalPaths { corpus: corpus_path, queries: data.join("queries.jsonl"), qrels: qrels_path };
    let options = EvalOptions { mode: SearchMode::Lexical, ..EvalOptions::default() };
    let report = evaluate_retrieval(&paths, &options, Arc::new(NoEmbedder)).await.unwrap();
    assert_eq!(report.queries, 40);
    assert_eq!(report.docs, slice.len());
    assert!(report.chunks >= report.docs);
    // On 40 queries over ~350 documents BM25 finds most relevant abstracts; random order would
    // score nDCG@10 near 0.01.
    assert!(report.ndcg_at_10 > 0.6, "{report:?}");
    assert!(report.recall_at_100 > 0.85, "{report:?}");
    assert!(report.mrr_at_10 > 0.55, "{report:?}");
    assert!(report.query_latency_ms.p50 <= report.query_latency_ms.p99);
    let json = serde_json::to_value(&report).unwrap();
    assert!(json.get("ndcg@10").is_some() && json.get("recall@100").is_some());
}
