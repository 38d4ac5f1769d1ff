//! The `echoforge` binary itself: `kb ingest` against a data directory with no server running.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use serde_json::Value;

/// A fresh data directory holding a migrated database with one workspace and knowledge base,
/// made through the store as the server would; returns (data dir, workspace, knowledge base).
async fn data_dir_with_kb() -> (PathBuf, domain::WorkspaceId, domain::KnowledgeBaseId) {
    let dir = std::env::temp_dir().join(format!("echoforge-cli-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("echoforge.db").display());
    let store = store::Store::connect(&url, &store::StoreOptions::default()).await.unwrap();
    let now = domain::time::now_ms();
    let ws = domain::WorkspaceId::new();
    let user = store::NewUser {
        id: domain::UserId::new(),
        email: domain::Email::parse("cli@example.com").unwrap(),
        name: "CLI".into(),
        password_hash: "x".into(),
        verified: true,
        is_operator: false,
    };
    let new_ws = store::NewWorkspace { id: ws, name: "CLI Co".into(), plan: "starter".into() };
    store.create_user(&user, Some(&new_ws), now).await.unwrap();
    #[allow(clippy::disallowed_methods)] // test setup: the workspace was just made here
    let scope = store::TenantScope::assume(ws);
    let kb = store::NewKnowledgeBase {
        id: domain::KnowledgeBaseId::new(),
        name: "Handbook".into(),
        description: None,
        chunk_size: 512,
        chunk_overlap: 50,
        embedding: "none".into(),
        sync_frequency: store::SyncFrequency::Manual,
    };
    let kb = store.create_knowledge_base(&scope, &kb, now).await.unwrap();
    store.close().await;
    (dir, ws, kb.id)
}

/// Runs the built binary on `dir`; returns (exit code, stdout JSON, stderr).
fn ingest(dir: &Path, kb: &str, sources: &[String]) -> (i32, Value, String) {
    ingest_with(dir, kb, sources, &[])
}

fn ingest_with(dir: &Path, kb: &str, sources: &[String], extra: &[&str]) -> (i32, Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_echoforge"))
        .arg("--data-dir")
        .arg(dir)
        .args(["kb", "ingest", kb, "--json", "--timeout", "60"])
        .args(extra)
        .args(sources)
        // Let the crawler reach the test's local site (metadata addresses stay blocked).
        .env("ECHOFORGE__KNOWLEDGE__ALLOW_PRIVATE_URLS", "true")
        .env_remove("OPENAI_API_KEY")
        .env("ECHOFORGE__LLM__PROVIDER", "none")
        .env("ECHOFORGE__LOG__LEVEL", "warn")
        .output()
        .expect("the binary runs");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let json = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {stdout}\nstderr: {stderr}"));
    (out.status.code().unwrap_or(-1), json, stderr)
}

fn status_of<'a>(summary: &'a Value, source_suffix: &str) -> &'a Value {
    summary["documents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["source"].as_str().unwrap_or_default().ends_with(source_suffix))
        .unwrap_or_else(|| panic!("{source_suffix} is not in the summary: {summary}"))
}

/// A two-page local site: the start page links to the second.
async fn local_site() -> String {
    use axum::response::Html;
    let app = axum::Router::new()
        .route("/", axum::routing::get(|| async {
            Html("<html><head><title>Visitors</title></head><body><main><h1>Visitors</h1><p>Visitors sign the guest book at the front desk.</p><a href=\"/wifi\">Wi-Fi</a></main></body></html>")
        }))
        .route("/wifi", axum::routing::get(|| async {
            Html("<html><head><title>Wi-Fi</title></head><body><main><h1>Wi-Fi</h1><p>The guest network password is printed on the meeting room screens.</p></main></body></html>")
        }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kb_ingest_indexes_files_reports_duplicates_and_failures_and_sets_the_exit_code() {
    let (dir, ws, kb) = data_dir_with_kb().await;
    let docs = dir.join("docs");
    std::fs::create_dir_all(docs.join("nested")).unwrap();
    std::fs::write(
        docs.join("onboarding.md"),
        "# Onboarding\n\nNew staff collect their badge from the reception on the first floor.\n",
    )
    .unwrap();
    let leave = "Annual leave: every employee has twenty-five days of paid holiday per year.\n";
    std::fs::write(docs.join("nested/leave.txt"), leave).unwrap();
    std::fs::write(docs.join("nested/leave-copy.txt"), leave).unwrap();
    std::fs::write(docs.join("empty.txt"), "").unwrap();
    std::fs::write(docs.join("blob.xyz"), [0u8, 159, 146, 150, 1, 2, 3]).unwrap();
    let missing = dir.join("no-such-file.pdf");

    let (code, summary, stderr) =
        ingest(&dir, &kb.to_string(), &[docs.display().to_string(), missing.display().to_string()]);
    assert_eq!(code, 1, "failures make the exit code non-zero; stderr: {stderr}");
    assert_eq!(summary["knowledge_base_id"], kb.to_string());
    assert_eq!(
        (&summary["indexed"], &summary["duplicate"], &summary["failed"], &summary["pending"]),
        (&Value::from(2), &Value::from(1), &Value::from(3), &Value::from(0)),
        "{summary}"
    );
    let md = status_of(&summary, "onboarding.md");
    assert_eq!(md["status"], "indexed");
    assert!(md["chunks"].as_i64().unwrap() >= 1);
    // Of two files with the same text, one is indexed and the other reported as its duplicate.
    let pair = [status_of(&summary, "/leave.txt"), status_of(&summary, "leave-copy.txt")];
    let mut statuses: Vec<&str> = pair.iter().map(|d| d["status"].as_str().unwrap()).collect();
    statuses.sort();
    assert_eq!(statuses, ["duplicate", "indexed"], "{summary}");
    let dup = pair.iter().find(|d| d["status"] == "duplicate").unwrap();
    assert!(dup["reason"].as_str().unwrap().contains("already in this knowledge base"));
    assert!(status_of(&summary, "empty.txt")["reason"].as_str().unwrap().contains("empty"));
    assert!(
        status_of(&summary, "blob.xyz")["reason"].as_str().unwrap().contains("unsupported"),
        "{summary}"
    );
    let gone = status_of(&summary, "no-such-file.pdf");
    assert_eq!((gone["status"].as_str(), gone["document_id"].is_null()), (Some("failed"), true));

    // All good: exit code 0; an unknown knowledge base is an error.
    let fresh = dir.join("fresh.txt");
    std::fs::write(&fresh, "Parking: visitors park in bays 10 to 20 behind the building.").unwrap();
    let (code, summary, stderr) = ingest(&dir, &kb.to_string(), &[fresh.display().to_string()]);
    assert_eq!(code, 0, "{summary} {stderr}");
    assert_eq!((summary["indexed"].as_u64(), summary["failed"].as_u64()), (Some(1), Some(0)));
    // URLs: crawled now (here two link levels), each page a document; a metadata address is
    // refused before any fetch and reported as failed.
    let site = local_site().await;
    let blocked = "http://169.254.169.254/latest/meta-data".to_owned();
    let (code, summary, stderr) =
        ingest_with(&dir, &kb.to_string(), &[site.clone(), blocked], &["--crawl-depth", "2"]);
    assert_eq!(code, 1, "{summary} {stderr}");
    assert_eq!((summary["indexed"].as_u64(), summary["failed"].as_u64()), (Some(2), Some(1)));
    assert_eq!(status_of(&summary, &site)["status"], "indexed", "{summary}");
    assert_eq!(status_of(&summary, "/wifi")["status"], "indexed", "{summary}");
    let refused = status_of(&summary, "/latest/meta-data");
    assert!(refused["document_id"].is_null() && refused["reason"].is_string(), "{refused}");
    let out = Command::new(env!("CARGO_BIN_EXE_echoforge"))
        .arg("--data-dir")
        .arg(&dir)
        .args(["kb", "ingest", &domain::KnowledgeBaseId::new().to_string()])
        .arg(&fresh)
        .env("ECHOFORGE__LLM__PROVIDER", "none")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no knowledge base"));
    // Last, once no binary holds the index: the chunks are in the data directory's index, for
    // this workspace and knowledge base only.
    let index = knowledge::KnowledgeIndex::open(
        &dir.join("index"),
        Arc::new(knowledge::NoEmbedder),
        knowledge::IndexConfig::default(),
    )
    .unwrap();
    let request = knowledge::SearchRequest {
        query: "where do I collect my badge".into(),
        top_k: 3,
        min_score: None,
        mode: knowledge::SearchMode::Lexical,
    };
    let hits = index.search(ws, &[kb], &request).await.unwrap();
    assert!(hits.first().is_some_and(|h| h.content.contains("reception")), "{hits:?}");
    let wifi =
        knowledge::SearchRequest { query: "guest network password".into(), ..request.clone() };
    let hits = index.search(ws, &[kb], &wifi).await.unwrap();
    assert!(
        hits.first().is_some_and(|h| h
            .metadata
            .source_url
            .as_deref()
            .is_some_and(|u| u.ends_with("/wifi"))),
        "{hits:?}"
    );
    let elsewhere = index.search(domain::WorkspaceId::new(), &[kb], &request).await.unwrap();
    assert!(elsewhere.is_empty());
    drop(index);
    let _ = std::fs::remove_dir_all(&dir);
}

/// `echoforge serve` on `dir`, on a free port; returns the child once it answers `/readyz`.
async fn serve(dir: &Path) -> (std::process::Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_echoforge"))
        .arg("--data-dir")
        .arg(dir)
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .env_remove("OPENAI_API_KEY")
        .env("ECHOFORGE__LLM__PROVIDER", "none")
        .env("ECHOFORGE__LOG__LEVEL", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the server starts");
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..300 {
        if reqwest::get(format!("{base}/readyz")).await.is_ok_and(|r| r.status() == 200) {
            return (child, base);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the server did not become ready");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_and_kb_ingest_work_beside_a_running_server_on_the_same_data() {
    let (dir, _ws, kb) = data_dir_with_kb().await;
    let (mut server, base) = serve(&dir).await;
    let out = Command::new(env!("CARGO_BIN_EXE_echoforge"))
        .arg("--data-dir")
        .arg(&dir)
        .args(["admin", "create-operator", "--email", "ops@example.com"])
        .env("ECHOFORGE_OPERATOR_PASSWORD", "A long operator passw0rd")
        .env("ECHOFORGE__LLM__PROVIDER", "none")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "create-operator beside the server: {stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("operator ops@example.com created"));
    // The server sees the new operator at once (same database).
    let login = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/login"))
        .json(&serde_json::json!({"email": "ops@example.com", "password": "A long operator passw0rd"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);

    // kb ingest queues for the server's workers and waits for them: indexed, no lock error.
    let file = dir.join("visitors.md");
    std::fs::write(&file, "# Visitors\n\nVisitors sign the guest book at the front desk.\n")
        .unwrap();
    let (code, summary, stderr) = ingest(&dir, &kb.to_string(), &[file.display().to_string()]);
    assert_eq!(code, 0, "{summary} {stderr}");
    assert_eq!(status_of(&summary, "visitors.md")["status"], "indexed", "{summary}");
    assert!(stderr.contains("a server is running"), "{stderr}");
    assert!(!stderr.contains("LockBusy") && !stderr.contains("backtrace"), "{stderr}");
    server.kill().unwrap();
    let _ = server.wait();
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().starts_with(".kb-ingest"))
        .collect();
    assert!(leftovers.is_empty(), "the stand-in index is removed");
    let _ = std::fs::remove_dir_all(&dir);
}
