//! `kill -9` of the real binary, then a restart on the same data: a run in progress is recorded
//! as running while it runs and marked interrupted after the restart (the user's message kept);
//! a mail job killed mid-delivery is delivered after the restart, once. (A crash mid-ingestion
//! is in `knowledge.rs`.)

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fakellm::{FakeLlm, Reply};
use serde_json::{Value, json};

/// What the tests seed straight into a fresh data directory.
struct Seeded {
    dir: PathBuf,
    agent: String,
    key: String,
    email: String,
}

async fn seed() -> Seeded {
    let dir =
        std::env::temp_dir().join(format!("echoforge-crash-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).unwrap();
    let url = format!("sqlite://{}", dir.join("echoforge.db").display());
    let store = store::Store::connect(&url, &store::StoreOptions::default()).await.unwrap();
    let now = domain::time::now_ms();
    let ws = domain::WorkspaceId::new();
    let email = "crash@example.com".to_owned();
    let user = store::NewUser {
        id: domain::UserId::new(),
        email: domain::Email::parse(&email).unwrap(),
        name: "Crash".into(),
        password_hash: "x".into(),
        verified: true,
        is_operator: false,
    };
    let new_ws = store::NewWorkspace { id: ws, name: "Crash Co".into(), plan: "starter".into() };
    store.create_user(&user, Some(&new_ws), now).await.unwrap();
    #[allow(clippy::disallowed_methods)] // test setup: the workspace was just made here
    let scope = store::TenantScope::assume(ws);
    let agent = store::NewAgent {
        id: domain::AgentId::new(),
        public_id: format!("pub_{}", uuid::Uuid::now_v7().simple()),
        created_by: None,
        fields: store::AgentFields {
            slug: "sam".into(),
            display_name: "Sam".into(),
            enabled_capabilities: json!([]),
            integrations: json!([]),
            personality: json!({}),
            behavior: json!({}),
            config: json!({}),
            routing_rules: json!({}),
            system_prompt: "You are Sam.".into(),
            onboarding_answers: json!({}),
            is_active: true,
            ..Default::default()
        },
    };
    let agent = store.create_agent(&scope, &agent, now).await.unwrap();
    let key = vault::token::generate("ef_");
    let new_key = store::NewApiKey {
        id: domain::ApiKeyId::new(),
        agent_id: None,
        name: "crash".into(),
        prefix: key[..11].to_owned(),
        digest: vault::token::digest(&key),
        permissions: domain::Permissions::all(),
        rate_per_minute: None,
        rate_per_day: None,
        ip_allowlist: Vec::new(),
        created_by: None,
    };
    store.create_api_key(&scope, &new_key, now).await.unwrap();
    store.close().await;
    Seeded { dir, agent: agent.id.to_string(), key, email }
}

/// `echoforge serve` on `dir` with extra environment; returns it once `/readyz` answers.
async fn serve(dir: &Path, env: &[(&str, String)]) -> (Child, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_echoforge"));
    cmd.arg("--data-dir")
        .arg(dir)
        .args(["serve", "--bind", &format!("127.0.0.1:{port}")])
        .env_remove("OPENAI_API_KEY")
        .env("ECHOFORGE__LLM__PROVIDER", "none")
        .env("ECHOFORGE__LOG__LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().expect("the server starts");
    let base = format!("http://127.0.0.1:{port}");
    for _ in 0..300 {
        if reqwest::get(format!("{base}/readyz")).await.is_ok_and(|r| r.status() == 200) {
            return (child, base);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the server did not become ready");
}

/// `kill -9`: no graceful shutdown, no lease given back, nothing flushed.
fn kill9(mut child: Child) {
    let status = Command::new("kill").args(["-9", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let _ = child.wait();
}

async fn get(base: &str, key: &str, path: &str) -> Value {
    let r = reqwest::Client::new().get(format!("{base}{path}")).bearer_auth(key).send().await;
    r.unwrap().json().await.unwrap()
}

/// Polls `f` until it returns `Some`, for up to `secs` seconds.
async fn eventually<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_killed_mid_way_shows_as_running_then_as_interrupted_after_a_restart() {
    let s = seed().await;
    let fake = FakeLlm::start().await;
    // Both runs wait on the model until the server dies.
    fake.push_all([Reply::hang(), Reply::hang()]);
    let llm = [
        ("ECHOFORGE__LLM__PROVIDER", "openai".to_owned()),
        ("ECHOFORGE__LLM__BASE_URL", fake.base_url.clone()),
        ("ECHOFORGE__LLM__API_KEY", "test-key".to_owned()),
        ("ECHOFORGE__LLM__MODEL", "fake-model".to_owned()),
    ];
    let (server, base) = serve(&s.dir, &llm).await;
    let client = reqwest::Client::new();
    let conv: Value = client
        .post(format!("{base}/api/v1/conversations"))
        .bearer_auth(&s.key)
        .json(&json!({"agent_id": s.agent}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let conv = conv["id"].as_str().unwrap_or_else(|| panic!("{conv}")).to_owned();
    // A chat in a conversation (the message is stored up front) and a stateless OpenAI one.
    let chat = {
        let (client, base, key, agent, conv) =
            (client.clone(), base.clone(), s.key.clone(), s.agent.clone(), conv.clone());
        tokio::spawn(async move {
            let _ = client
                .post(format!("{base}/api/v1/agents/{agent}/chat"))
                .bearer_auth(key)
                .json(&json!({"message": "Where is my parcel?", "conversation_id": conv}))
                .send()
                .await;
        })
    };
    let openai = {
        let (client, base, key) = (client.clone(), base.clone(), s.key.clone());
        tokio::spawn(async move {
            let _ = client
                .post(format!("{base}/v1/chat/completions"))
                .bearer_auth(key)
                .json(&json!({"model": "sam", "messages": [{"role": "user", "content": "Hello?"}]}))
                .send()
                .await;
        })
    };
    // While they run, both are listed as running.
    let running = eventually(20, "two running runs", || {
        let (base, key) = (base.clone(), s.key.clone());
        async move {
            let runs = get(&base, &key, "/api/v1/runs").await;
            let data = runs["data"].as_array()?.clone();
            (data.len() == 2 && data.iter().all(|r| r["status"] == "running")).then_some(data)
        }
    })
    .await;
    assert_eq!(fake.request_count(), 2, "both runs are waiting on the model");
    kill9(server);
    let _ = (chat.await, openai.await);

    let (server, base) = serve(&s.dir, &[]).await;
    let runs = get(&base, &s.key, "/api/v1/runs").await;
    let data = runs["data"].as_array().unwrap();
    assert_eq!(data.len(), 2, "{runs}");
    for r in data {
        assert_eq!(r["status"], "interrupted", "{r}");
        assert!(r["finished_at"].is_i64(), "{r}");
        assert!(running.iter().any(|x| x["id"] == r["id"]));
    }
    let c = get(&base, &s.key, &format!("/api/v1/conversations/{conv}")).await;
    let messages = c["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{c}");
    assert_eq!(
        (&messages[0]["role"], &messages[0]["content"]),
        (&json!("user"), &json!("Where is my parcel?"))
    );
    kill9(server);
    let _ = std::fs::remove_dir_all(&s.dir);
}

/// An SMTP server that accepts connections and never answers: delivery hangs there.
fn hanging_smtp() -> (u16, Arc<Mutex<usize>>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let connections = Arc::new(Mutex::new(0));
    let seen = connections.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().map_while(Result::ok) {
            *seen.lock().unwrap() += 1;
            held.push(stream);
        }
    });
    (port, connections)
}

/// aiosmtpd printing every message to stdout (as in `api.rs`).
fn real_smtp() -> (Child, u16, Arc<Mutex<String>>) {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new("python3")
        .args(["-u", "-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}")])
        .args(["-c", "aiosmtpd.handlers.Debugging", "stdout"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("python3 -m aiosmtpd runs (pip install aiosmtpd; scripts/test does)");
    let seen = Arc::new(Mutex::new(String::new()));
    let out = child.stdout.take().unwrap();
    let sink = seen.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let mut s = sink.lock().unwrap();
            s.push_str(&line);
            s.push('\n');
        }
    });
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (child, port, seen);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("the SMTP server did not start");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_killed_mid_delivery_is_delivered_once_after_a_restart() {
    let s = seed().await;
    let (hang_port, connections) = hanging_smtp();
    let lease = ("ECHOFORGE__SMTP__LEASE_SECS", "3".to_owned());
    let smtp = ("ECHOFORGE__SMTP__URL", format!("smtp://127.0.0.1:{hang_port}"));
    let (server, base) = serve(&s.dir, &[lease.clone(), smtp]).await;
    let r = reqwest::Client::new()
        .post(format!("{base}/api/v1/auth/password-reset"))
        .json(&json!({"email": s.email}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    // The worker has the job and is mid-delivery (connected, waiting for the greeting).
    eventually(20, "a delivery attempt", || {
        let n = *connections.lock().unwrap();
        async move { (n > 0).then_some(()) }
    })
    .await;
    kill9(server);

    let (mut mail, port, seen) = real_smtp();
    let smtp = ("ECHOFORGE__SMTP__URL", format!("smtp://127.0.0.1:{port}"));
    let (server, _) = serve(&s.dir, &[lease, smtp]).await;
    // Taken over once the dead worker's lease runs out, and delivered.
    eventually(30, "the mail on the real SMTP server", || {
        let found = seen.lock().unwrap().contains(&s.email);
        async move { found.then_some(()) }
    })
    .await;
    // Once: nothing more arrives after a few more lease periods.
    tokio::time::sleep(Duration::from_secs(7)).await;
    let text = seen.lock().unwrap().clone();
    let deliveries = text.matches("---------- MESSAGE FOLLOWS ----------").count();
    assert_eq!(deliveries, 1, "{text}");
    kill9(server);
    let _ = mail.kill();
    let _ = mail.wait();
    let _ = std::fs::remove_dir_all(&s.dir);
}
