//! Knowledge bases end to end: upload, durable ingestion, search with citations metadata.

use std::time::Duration;

use serde_json::{Value, json};
use testkit::{Session, TestApp, spawn_app};

async fn body(resp: reqwest::Response) -> Value {
    resp.json().await.expect("a JSON body")
}

async fn wait_for_status(app: &TestApp, s: &Session, kb: &str, doc: &str, want: &[&str]) -> Value {
    for _ in 0..200 {
        let d = body(
            app.get(
                &format!("/api/v1/knowledge-bases/{kb}/documents/{doc}"),
                Some(&s.access_token),
            )
            .await,
        )
        .await;
        if want.contains(&d["status"].as_str().unwrap_or("")) {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("document {doc} never reached {want:?}");
}

/// Regular files under `dir`, recursively (the file store, its staging area included).
fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else { return out };
    for e in entries.filter_map(Result::ok) {
        let path = e.path();
        if path.is_dir() {
            out.extend(files_in(&path));
        } else {
            out.push(path.display().to_string());
        }
    }
    out.sort();
    out
}

const HANDBOOK: &str = "# Employee handbook\n\n## Holidays\n\nEvery employee gets twenty-eight paid holiday days per year, booked through the people team.\n\n## Expenses\n\nTravel expenses are reimbursed within fourteen days when receipts are attached.\n";

#[tokio::test]
async fn uploaded_documents_are_ingested_and_searchable_with_citation_metadata() {
    let app = spawn_app().await;
    let s = app.signed_up("kb@example.com").await;
    let kb = body(
        app.post(
            "/api/v1/knowledge-bases",
            Some(&s.access_token),
            json!({"name": "Policies", "description": "HR"}),
        )
        .await,
    )
    .await;
    assert_eq!((kb["chunk_size"].as_i64(), kb["chunk_overlap"].as_i64()), (Some(512), Some(50)));
    let kb_id = kb["id"].as_str().unwrap().to_owned();

    let resp = app
        .upload_documents(
            &s.access_token,
            &kb_id,
            &[
                ("handbook.md", "text/markdown", HANDBOOK.as_bytes().to_vec()),
                ("photo.bin", "application/octet-stream", vec![0, 159, 146, 150, 1, 2, 3]),
                ("empty.txt", "text/plain", Vec::new()),
            ],
        )
        .await;
    assert_eq!(resp.status(), 202);
    let accepted = body(resp).await;
    let docs = accepted["data"].as_array().unwrap();
    assert_eq!(docs[0]["status"], "pending");
    assert_eq!(docs[1]["status"], "failed");
    assert!(docs[1]["rejected"].as_str().unwrap().contains("unsupported file type"));
    assert_eq!(docs[2]["status"], "failed");
    assert!(docs[2]["error"].as_str().unwrap().contains("empty"));
    let doc_id = docs[0]["id"].as_str().unwrap().to_owned();

    let doc = wait_for_status(&app, &s, &kb_id, &doc_id, &["indexed", "failed"]).await;
    assert_eq!(doc["status"], "indexed", "{doc}");
    assert!(doc["chunk_count"].as_i64().unwrap() >= 1);
    let stats =
        body(app.get(&format!("/api/v1/knowledge-bases/{kb_id}"), Some(&s.access_token)).await)
            .await;
    assert_eq!(stats["stats"]["indexed"], 1);
    assert_eq!(stats["stats"]["failed"], 2);

    let found = body(
        app.post(
            &format!("/api/v1/knowledge-bases/{kb_id}/search"),
            Some(&s.access_token),
            json!({"query": "how many holiday days", "top_k": 3, "mode": "lexical"}),
        )
        .await,
    )
    .await;
    let top = &found["results"][0];
    assert!(top["content"].as_str().unwrap().contains("twenty-eight"), "{found}");
    assert_eq!(top["metadata"]["document_id"], doc_id.as_str());
    assert_eq!(top["metadata"]["document_title"], "Employee handbook");
    assert!(top["metadata"]["heading"].as_str().unwrap_or("").contains("Holidays"), "{top}");

    // The same content again is recognised as a duplicate and not indexed twice.
    let again = body(
        app.upload_documents(
            &s.access_token,
            &kb_id,
            &[("copy.md", "text/markdown", HANDBOOK.as_bytes().to_vec())],
        )
        .await,
    )
    .await;
    let copy_id = again["data"][0]["id"].as_str().unwrap().to_owned();
    let copy = wait_for_status(&app, &s, &kb_id, &copy_id, &["indexed", "failed"]).await;
    assert_eq!(copy["status"], "failed");
    assert!(copy["error"].as_str().unwrap().starts_with("duplicate"), "{copy}");

    // Deleting the document takes its chunks out of search at once.
    assert_eq!(
        app.delete(
            &format!("/api/v1/knowledge-bases/{kb_id}/documents/{doc_id}"),
            Some(&s.access_token)
        )
        .await
        .status(),
        204
    );
    let found = body(
        app.post(
            &format!("/api/v1/knowledge-bases/{kb_id}/search"),
            Some(&s.access_token),
            json!({"query": "holiday days", "mode": "lexical"}),
        )
        .await,
    )
    .await;
    assert!(found["results"].as_array().unwrap().is_empty(), "{found}");
}

#[tokio::test]
async fn knowledge_input_is_validated_and_other_workspaces_see_nothing() {
    let app = testkit::spawn_app_with(testkit::Options {
        max_upload_bytes: Some(1024),
        ..Default::default()
    })
    .await;
    let a = app.signed_up("kb-a@example.com").await;
    let b = app.signed_up("kb-b@example.com").await;
    let resp = app.post("/api/v1/knowledge-bases", Some(&a.access_token), json!({"name": "", "chunk_size": 100, "chunk_overlap": 500, "sync_frequency": "hourly"})).await;
    assert_eq!(resp.status(), 422);
    let p = body(resp).await;
    let paths: Vec<&str> =
        p["errors"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["/name", "/chunk_size", "/chunk_overlap", "/sync_frequency"]);
    let kb = body(
        app.post("/api/v1/knowledge-bases", Some(&a.access_token), json!({"name": "Private"}))
            .await,
    )
    .await;
    let kb_id = kb["id"].as_str().unwrap();

    // Over the limit: 413 while streaming, alone or after a good file in the same request,
    // and nothing is left behind (no document, no staged or stored file).
    let resp = app
        .upload_documents(&a.access_token, kb_id, &[("big.txt", "text/plain", vec![b'a'; 4096])])
        .await;
    assert_eq!(resp.status(), 413);
    assert_eq!(body(resp).await["code"], "file_too_large");
    let resp = app
        .upload_documents(
            &a.access_token,
            kb_id,
            &[
                ("small.txt", "text/plain", b"fits".to_vec()),
                ("big.txt", "text/plain", vec![b'a'; 1025]),
            ],
        )
        .await;
    assert_eq!(resp.status(), 413);
    let listed = body(
        app.get(&format!("/api/v1/knowledge-bases/{kb_id}/documents"), Some(&a.access_token)).await,
    )
    .await;
    assert!(
        listed["data"].as_array().unwrap().is_empty(),
        "a refused upload leaves nothing behind"
    );
    assert_eq!(files_in(&app.data_dir.join("files")), Vec::<String>::new());
    // Exactly at the limit is accepted; the stored file is the bytes sent, hashed as sent.
    let exact = vec![b'b'; 1024];
    let resp = app
        .upload_documents(&a.access_token, kb_id, &[("exact.txt", "text/plain", exact.clone())])
        .await;
    assert_eq!(resp.status(), 202);
    let doc = body(resp).await["data"][0].clone();
    assert_eq!(doc["size_bytes"], 1024);
    let stored = files_in(&app.data_dir.join("files"));
    assert_eq!(stored.len(), 1, "{stored:?}");
    assert_eq!(std::fs::read(&stored[0]).unwrap(), exact);
    // Another workspace's upload is refused before any byte is received or stored.
    let resp = app
        .upload_documents(&b.access_token, kb_id, &[("intruder.txt", "text/plain", b"x".to_vec())])
        .await;
    assert_eq!(resp.status(), 404);
    assert_eq!(files_in(&app.data_dir.join("files")), stored);
    {
        use sha2::Digest;
        assert_eq!(doc["etag"].as_str(), Some(hex::encode(sha2::Sha256::digest(&exact)).as_str()));
    }

    for (method, path) in [
        ("GET", format!("/api/v1/knowledge-bases/{kb_id}")),
        ("DELETE", format!("/api/v1/knowledge-bases/{kb_id}")),
        ("GET", format!("/api/v1/knowledge-bases/{kb_id}/documents")),
    ] {
        let req = if method == "GET" {
            app.client.get(app.url(&path))
        } else {
            app.client.delete(app.url(&path))
        };
        assert_eq!(
            req.bearer_auth(&b.access_token).send().await.unwrap().status(),
            404,
            "{method} {path}"
        );
    }
    assert_eq!(
        app.post(
            &format!("/api/v1/knowledge-bases/{kb_id}/search"),
            Some(&b.access_token),
            json!({"query": "x"})
        )
        .await
        .status(),
        404
    );
    assert_eq!(
        app.upload_documents(&b.access_token, kb_id, &[("a.txt", "text/plain", b"hello".to_vec())])
            .await
            .status(),
        404
    );
    assert!(
        body(app.get("/api/v1/knowledge-bases", Some(&b.access_token)).await).await["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let p = body(
        app.post(
            &format!("/api/v1/knowledge-bases/{kb_id}/search"),
            Some(&a.access_token),
            json!({"query": " ", "top_k": 0, "mode": "fuzzy"}),
        )
        .await,
    )
    .await;
    assert_eq!(p["errors"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn an_agent_without_a_model_answers_from_its_documents_with_citations() {
    let app = spawn_app().await;
    let s = app.signed_up("grounded@example.com").await;
    let kb = body(
        app.post("/api/v1/knowledge-bases", Some(&s.access_token), json!({"name": "Handbook"}))
            .await,
    )
    .await;
    let kb_id = kb["id"].as_str().unwrap().to_owned();
    let up = body(
        app.upload_documents(
            &s.access_token,
            &kb_id,
            &[("handbook.md", "text/markdown", HANDBOOK.as_bytes().to_vec())],
        )
        .await,
    )
    .await;
    let doc_id = up["data"][0]["id"].as_str().unwrap().to_owned();
    assert_eq!(
        wait_for_status(&app, &s, &kb_id, &doc_id, &["indexed", "failed"]).await["status"],
        "indexed"
    );
    let agent = app
        .create_agent(
            &s.workspace_id,
            "HR Helper",
            "hr-helper",
            testkit::AgentSpec {
                capabilities: vec!["rag".into()],
                knowledge_base_ids: vec![kb_id.clone()],
                ..Default::default()
            },
        )
        .await;
    let resp = app
        .post(
            &format!("/api/v1/agents/{agent}/chat"),
            Some(&s.access_token),
            json!({"message": "How many holiday days do employees get?"}),
        )
        .await;
    assert_eq!(resp.status(), 200);
    let answer = body(resp).await;
    let text = answer["message"]
        .as_str()
        .or_else(|| answer["message"]["content"].as_str())
        .unwrap_or_default()
        .to_owned();
    assert!(
        text.to_lowercase().contains("no language model is configured")
            || text.to_lowercase().contains("no model"),
        "{answer}"
    );
    assert!(text.contains("twenty-eight"), "the best passage is quoted: {answer}");
    let citations = answer["citations"].as_array().unwrap();
    assert!(!citations.is_empty(), "{answer}");
    assert_eq!(citations[0]["document_id"], doc_id.as_str());
    assert_eq!(citations[0]["document_title"], "Employee handbook");
}

#[tokio::test]
async fn external_runtimes_search_with_the_service_secret_only() {
    let app = testkit::spawn_app_with(testkit::Options {
        service_secret: Some("s3rvice-secret".into()),
        ..Default::default()
    })
    .await;
    let s = app.signed_up("internal@example.com").await;
    let kb = body(
        app.post("/api/v1/knowledge-bases", Some(&s.access_token), json!({"name": "Ops"})).await,
    )
    .await;
    let kb_id = kb["id"].as_str().unwrap().to_owned();
    let up = body(
        app.upload_documents(
            &s.access_token,
            &kb_id,
            &[("handbook.md", "text/markdown", HANDBOOK.as_bytes().to_vec())],
        )
        .await,
    )
    .await;
    wait_for_status(&app, &s, &kb_id, up["data"][0]["id"].as_str().unwrap(), &["indexed"]).await;
    let url = app.url(&format!("/api/internal/knowledge/{kb_id}/search"));
    let query = json!({"query": "travel expenses reimbursed", "top_k": 2, "mode": "lexical"});
    let ok = app
        .client
        .post(&url)
        .header("x-service-secret", "s3rvice-secret")
        .json(&query)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let found = body(ok).await;
    assert!(found["results"][0]["content"].as_str().unwrap().contains("fourteen days"), "{found}");
    let wrong = app
        .client
        .post(&url)
        .header("x-service-secret", "guess")
        .json(&query)
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);
    let none = app.client.post(&url).json(&query).send().await.unwrap();
    assert_eq!(none.status(), 401);
    let user =
        app.client.post(&url).bearer_auth(&s.access_token).json(&query).send().await.unwrap();
    assert_eq!(user.status(), 401, "a user token is not the service secret");
    let missing = app
        .client
        .post(app.url("/api/internal/knowledge/kb_00000000000000000000000000000000/search"))
        .header("x-service-secret", "s3rvice-secret")
        .json(&query)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn the_internal_api_is_off_without_a_service_secret() {
    let app = spawn_app().await;
    let resp = app
        .client
        .post(app.url("/api/internal/knowledge/kb_00000000000000000000000000000000/search"))
        .header("x-service-secret", "")
        .json(&json!({"query": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 404);
}

/// A small local site: a start page linking to a second page and off-site, and a robots.txt
/// that forbids one path.
async fn local_site() -> String {
    use axum::response::Html;
    let app = axum::Router::new()
        .route("/robots.txt", axum::routing::get(|| async { "User-agent: *\nDisallow: /private\n" }))
        .route("/", axum::routing::get(|| async {
            Html("<html><head><title>Acme Help</title></head><body><nav>Home | Pricing</nav><main><h1>Acme Help</h1><p>Our support desk answers within two business days of a request being filed.</p><a href=\"/returns\">Returns</a> <a href=\"/private\">Private</a> <a href=\"https://elsewhere.example/\">Elsewhere</a></main></body></html>")
        }))
        .route("/returns", axum::routing::get(|| async {
            Html("<html><head><title>Returns policy</title></head><body><main><h1>Returns policy</h1><p>Unused items can be returned within thirty days for a full refund to the original card.</p></main></body></html>")
        }))
        .route("/private", axum::routing::get(|| async { Html("<html><body><p>secret internal notes</p></body></html>") }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test]
async fn imported_urls_are_crawled_on_site_within_robots_and_become_searchable_pages() {
    let site = local_site().await;
    let app = testkit::spawn_app_with(testkit::Options {
        allow_private_urls: true,
        ..Default::default()
    })
    .await;
    let s = app.signed_up("crawl@example.com").await;
    let kb = body(
        app.post("/api/v1/knowledge-bases", Some(&s.access_token), json!({"name": "Site"})).await,
    )
    .await;
    let kb_id = kb["id"].as_str().unwrap().to_owned();
    let resp = app
        .post(
            &format!("/api/v1/knowledge-bases/{kb_id}/documents"),
            Some(&s.access_token),
            json!({"urls": [format!("{site}/")], "crawl_depth": 2}),
        )
        .await;
    assert_eq!(resp.status(), 202);
    let mut docs = Vec::new();
    for _ in 0..200 {
        docs = body(
            app.get(&format!("/api/v1/knowledge-bases/{kb_id}/documents"), Some(&s.access_token))
                .await,
        )
        .await["data"]
            .as_array()
            .unwrap()
            .clone();
        if docs.len() >= 3
            && docs.iter().all(|d| d["status"] == "indexed" || d["status"] == "failed")
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let urls: Vec<&str> = docs.iter().map(|d| d["source_url"].as_str().unwrap_or("")).collect();
    assert!(
        urls.contains(&format!("{site}/").as_str())
            && urls.contains(&format!("{site}/returns").as_str()),
        "{docs:?}"
    );
    assert!(!urls.iter().any(|u| u.contains("elsewhere")), "off-site links are not followed");
    for d in &docs {
        let url = d["source_url"].as_str().unwrap_or("");
        if url.ends_with("/private") {
            // robots.txt forbids it: recorded as failed with the reason, never fetched.
            assert_eq!(d["status"], "failed", "{d}");
            assert!(d["error"].as_str().unwrap().contains("robots"), "{d}");
        } else {
            assert_eq!(d["status"], "indexed", "{d}");
        }
    }
    let secret = body(
        app.post(
            &format!("/api/v1/knowledge-bases/{kb_id}/search"),
            Some(&s.access_token),
            json!({"query": "secret internal notes", "mode": "lexical"}),
        )
        .await,
    )
    .await;
    assert!(!secret.to_string().contains("secret internal"), "{secret}");
    let found = body(
        app.post(
            &format!("/api/v1/knowledge-bases/{kb_id}/search"),
            Some(&s.access_token),
            json!({"query": "return unused items refund", "mode": "lexical"}),
        )
        .await,
    )
    .await;
    assert_eq!(found["results"][0]["metadata"]["source_url"], format!("{site}/returns"));
    assert!(!found.to_string().contains("Pricing"), "navigation is not part of the page text");
}

#[tokio::test]
async fn url_imports_refuse_private_addresses_and_bad_depths() {
    let app = spawn_app().await;
    let s = app.signed_up("ssrf@example.com").await;
    let kb = body(
        app.post("/api/v1/knowledge-bases", Some(&s.access_token), json!({"name": "Site"})).await,
    )
    .await;
    let kb_id = kb["id"].as_str().unwrap().to_owned();
    let resp = app.post(&format!("/api/v1/knowledge-bases/{kb_id}/documents"), Some(&s.access_token), json!({"urls": ["http://127.0.0.1:9/", "http://169.254.169.254/latest/meta-data", "ftp://example.com/x"], "crawl_depth": 4})).await;
    assert_eq!(resp.status(), 422);
    let p = body(resp).await;
    let paths: Vec<&str> =
        p["errors"].as_array().unwrap().iter().map(|e| e["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["/urls/0", "/urls/1", "/urls/2", "/crawl_depth"], "{p}");
    let listed = body(
        app.get(&format!("/api/v1/knowledge-bases/{kb_id}/documents"), Some(&s.access_token)).await,
    )
    .await;
    assert!(listed["data"].as_array().unwrap().is_empty());
}

/// Starts the real `echoforge` binary on `data_dir`; returns the process and its base URL.
fn start_binary(data_dir: &std::path::Path) -> (std::process::Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_echoforge"))
        .args(["serve", "--bind", &format!("127.0.0.1:{port}"), "--data-dir"])
        .arg(data_dir)
        .env("ECHOFORGE__LOG__LEVEL", "warn")
        .env("ECHOFORGE__KNOWLEDGE__INGEST_LEASE_SECS", "3")
        .env("ECHOFORGE__LLM__PROVIDER", "none")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("the echoforge binary starts");
    (child, format!("http://127.0.0.1:{port}"))
}

async fn wait_ready(client: &reqwest::Client, base: &str) {
    for _ in 0..200 {
        if client.get(format!("{base}/readyz")).send().await.is_ok_and(|r| r.status() == 200) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server did not become ready");
}

#[tokio::test]
async fn killing_the_server_mid_ingestion_loses_and_duplicates_nothing() {
    let data =
        std::env::temp_dir().join(format!("echoforge-kill-{}", uuid::Uuid::now_v7().simple()));
    let client = reqwest::Client::new();
    let (mut server, base) = start_binary(&data);
    wait_ready(&client, &base).await;
    let post = |path: String, token: Option<String>, body: Value| {
        let client = client.clone();
        let base = base.clone();
        async move {
            let mut req = client.post(format!("{base}{path}")).json(&body);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            req.send().await.unwrap()
        }
    };
    assert_eq!(post("/api/v1/auth/register".into(), None, json!({"email": "k@example.com", "password": "Correct1horse", "name": "K", "company_name": "K"})).await.status(), 201);
    let mut token = None;
    for _ in 0..200 {
        if let Some(entry) = std::fs::read_dir(data.join("outbox"))
            .unwrap()
            .filter_map(Result::ok)
            .find(|e| e.path().extension().is_some_and(|x| x == "eml"))
        {
            token = Some(testkit::token_in(
                &std::fs::read_to_string(entry.path()).unwrap(),
                "Verification token: ",
            ));
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        post(
            "/api/v1/auth/verify-email".into(),
            None,
            json!({"token": token.expect("a verification mail")})
        )
        .await
        .status(),
        200
    );
    let login = |base: String| {
        let client = client.clone();
        async move {
            let r: Value = client
                .post(format!("{base}/api/v1/auth/login"))
                .json(&json!({"email": "k@example.com", "password": "Correct1horse"}))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            r["access_token"].as_str().unwrap().to_owned()
        }
    };
    let access = login(base.clone()).await;
    let kb: Value =
        post("/api/v1/knowledge-bases".into(), Some(access.clone()), json!({"name": "Crashy"}))
            .await
            .json()
            .await
            .unwrap();
    let kb_id = kb["id"].as_str().unwrap().to_owned();
    let mut form = reqwest::multipart::Form::new();
    // Ten files: the starter plan's document limit.
    for i in 0..10 {
        let text = format!(
            "# Report {i}\n\nThe unique marker for this report is zebra{i}quokka. {}\n",
            "Filler sentence about operations. ".repeat(200)
        );
        form = form.part(
            "file",
            reqwest::multipart::Part::bytes(text.into_bytes())
                .file_name(format!("report-{i}.md"))
                .mime_str("text/markdown")
                .unwrap(),
        );
    }
    let resp = client
        .post(format!("{base}/api/v1/knowledge-bases/{kb_id}/documents"))
        .bearer_auth(&access)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 202, "every file is accepted before the crash");
    server.kill().expect("kill -9");
    let _ = server.wait();

    let (mut server, base) = start_binary(&data);
    wait_ready(&client, &base).await;
    let access = login(base.clone()).await;
    let mut docs = Vec::new();
    for _ in 0..400 {
        let page: Value = client
            .get(format!("{base}/api/v1/knowledge-bases/{kb_id}/documents?limit=100"))
            .bearer_auth(&access)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        docs = page["data"].as_array().unwrap().clone();
        if docs.iter().all(|d| d["status"] == "indexed" || d["status"] == "failed") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(docs.len(), 10, "every accepted document is still there");
    assert!(docs.iter().all(|d| d["status"] == "indexed"), "{docs:?}");
    for i in 0..10 {
        let found: Value = client
            .post(format!("{base}/api/v1/knowledge-bases/{kb_id}/search"))
            .bearer_auth(&access)
            .json(&json!({"query": format!("zebra{i}quokka"), "mode": "lexical", "top_k": 20}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let hits: Vec<&Value> = found["results"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["content"].as_str().unwrap().contains(&format!("zebra{i}quokka")))
            .collect();
        assert_eq!(hits.len(), 1, "report {i} is indexed exactly once: {found}");
    }
    let _ = server.kill();
    let _ = server.wait();
    let _ = std::fs::remove_dir_all(&data);
}

/// A one-page site whose text can be changed, counting the page's fetches.
async fn changing_site(
    text: &str,
) -> (
    String,
    std::sync::Arc<std::sync::Mutex<String>>,
    std::sync::Arc<std::sync::atomic::AtomicUsize>,
) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};
    let page = Arc::new(Mutex::new(text.to_owned()));
    let hits = Arc::new(AtomicUsize::new(0));
    let (p, h) = (page.clone(), hits.clone());
    let app = axum::Router::new().route(
        "/news",
        axum::routing::get(move || {
            let (p, h) = (p.clone(), h.clone());
            async move {
                h.fetch_add(1, Ordering::SeqCst);
                let body = p.lock().unwrap().clone();
                axum::response::Html(format!(
                    "<html><head><title>News</title></head><body><main><h1>News</h1><p>{body}</p></main></body></html>"
                ))
            }
        }),
    )
    .route(
        "/extra",
        axum::routing::get(|| async {
            axum::response::Html("<html><head><title>Breakfast</title></head><body><main><h1>Breakfast</h1><p>Breakfast is served until ten o'clock on weekdays.</p></main></body></html>")
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (format!("http://{addr}/news"), page, hits)
}

async fn documents_of(app: &TestApp, s: &Session, kb: &str) -> Vec<Value> {
    body(app.get(&format!("/api/v1/knowledge-bases/{kb}/documents"), Some(&s.access_token)).await)
        .await["data"]
        .as_array()
        .unwrap()
        .clone()
}

async fn import(
    app: &TestApp,
    s: &Session,
    name: &str,
    freq: &str,
    url: &str,
    crawl_depth: u8,
) -> String {
    let kb = body(
        app.post(
            "/api/v1/knowledge-bases",
            Some(&s.access_token),
            json!({"name": name, "sync_frequency": freq}),
        )
        .await,
    )
    .await;
    let kb = kb["id"].as_str().unwrap().to_owned();
    let resp = app
        .post(
            &format!("/api/v1/knowledge-bases/{kb}/documents"),
            Some(&s.access_token),
            json!({"urls": [url], "crawl_depth": crawl_depth}),
        )
        .await;
    assert_eq!(resp.status(), 202);
    kb
}

#[tokio::test]
async fn daily_url_sources_re_sync_when_due_and_manual_ones_do_not() {
    use std::sync::atomic::Ordering;
    let (daily_url, daily_page, daily_hits) =
        changing_site("The cafeteria opens at eight in the morning.").await;
    let (manual_url, _manual_page, manual_hits) =
        changing_site("The library opens at nine in the morning.").await;
    let app = testkit::spawn_app_with(testkit::Options {
        allow_private_urls: true,
        sync_daily_secs: Some(1),
        sync_check_millis: Some(100),
        ..Default::default()
    })
    .await;
    let s = app.signed_up("sync@example.com").await;
    let daily = import(&app, &s, "Daily news", "daily", &daily_url, 2).await;
    let manual = import(&app, &s, "Manual news", "manual", &manual_url, 1).await;
    for kb in [&daily, &manual] {
        for _ in 0..100 {
            let docs = documents_of(&app, &s, kb).await;
            if docs.len() == 1 && docs[0]["status"] == "indexed" {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // The page changes and links a new page; within a few (one-second) days the scheduler
    // crawls the imported URL again, as deep as it was imported.
    *daily_page.lock().unwrap() =
        "The cafeteria now opens at seven thirty sharp. <a href=\"/extra\">Breakfast</a>".into();
    let search = |kb: String, q: &'static str| {
        let (app, token) = (&app, s.access_token.clone());
        async move {
            body(
                app.post(
                    &format!("/api/v1/knowledge-bases/{kb}/search"),
                    Some(&token),
                    json!({"query": q, "mode": "lexical"}),
                )
                .await,
            )
            .await
        }
    };
    let mut found = Value::Null;
    for _ in 0..100 {
        found = search(daily.clone(), "seven thirty sharp").await;
        if found["results"].as_array().is_some_and(|r| !r.is_empty()) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        found["results"][0]["content"].as_str().unwrap_or("").contains("seven thirty"),
        "{found}"
    );
    let stale = search(daily.clone(), "eight in the morning").await;
    assert!(
        !stale.to_string().contains("eight in the morning"),
        "the replaced page's old text left the index: {stale}"
    );
    let mut docs = Vec::new();
    for _ in 0..100 {
        docs = documents_of(&app, &s, &daily).await;
        if docs.len() == 2 && docs.iter().all(|d| d["status"] == "indexed") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut urls: Vec<&str> = docs.iter().map(|d| d["source_url"].as_str().unwrap()).collect();
    urls.sort();
    let extra = daily_url.replace("/news", "/extra");
    assert_eq!(
        urls,
        [extra.as_str(), daily_url.as_str()],
        "the changed page replaced, the new one added"
    );
    let breakfast = search(daily.clone(), "breakfast served until ten").await;
    assert_eq!(breakfast["results"][0]["metadata"]["source_url"], extra.as_str(), "{breakfast}");
    assert!(daily_hits.load(Ordering::SeqCst) >= 2);
    let kb =
        body(app.get(&format!("/api/v1/knowledge-bases/{daily}"), Some(&s.access_token)).await)
            .await;
    assert!(kb["last_synced_at"].as_i64().is_some(), "{kb}");
    // The manual base was fetched once, at import, and never again.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(manual_hits.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn re_sync_due_ness_comes_from_stored_times_so_passes_neither_lose_nor_repeat() {
    let (url, _page, _hits) = changing_site("Opening hours are nine to five.").await;
    // The server's own scheduler uses the default intervals; this test drives the clock.
    let app = testkit::spawn_app_with(testkit::Options {
        allow_private_urls: true,
        ..Default::default()
    })
    .await;
    let s = app.signed_up("clock@example.com").await;
    let weekly = import(&app, &s, "Weekly", "weekly", &url, 1).await;
    let kb =
        body(app.get(&format!("/api/v1/knowledge-bases/{weekly}"), Some(&s.access_token)).await)
            .await;
    let synced = kb["last_synced_at"].as_i64().expect("the import counts as a sync");
    for _ in 0..100 {
        if !documents_of(&app, &s, &weekly).await.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let day = 24 * 3600 * 1000;
    let intervals = app::SyncIntervals::default();
    // Not due within the week; due after it, exactly once however often the scheduler runs
    // (concurrent passes, or a fresh process reading the same database, see the same row).
    assert_eq!(app.app.schedule_url_syncs(synced + 6 * day, intervals).await.unwrap(), 0);
    let at = synced + 7 * day;
    let (a, b) = tokio::join!(
        app.app.schedule_url_syncs(at, intervals),
        app.app.schedule_url_syncs(at, intervals)
    );
    assert_eq!(a.unwrap() + b.unwrap(), 1, "one sync is queued, not two");
    assert_eq!(app.app.schedule_url_syncs(at + day, intervals).await.unwrap(), 0);
    let kb =
        body(app.get(&format!("/api/v1/knowledge-bases/{weekly}"), Some(&s.access_token)).await)
            .await;
    assert_eq!(kb["last_synced_at"].as_i64(), Some(at), "the claim moved the stored time");
    assert_eq!(app.app.schedule_url_syncs(at + 7 * day, intervals).await.unwrap(), 1);
    // A knowledge base without URL sources is never due.
    let empty = body(
        app.post(
            "/api/v1/knowledge-bases",
            Some(&s.access_token),
            json!({"name": "No URLs", "sync_frequency": "daily"}),
        )
        .await,
    )
    .await;
    assert!(empty["id"].is_string());
    assert_eq!(app.app.schedule_url_syncs(at + 30 * day, intervals).await.unwrap(), 1);
}
