//! Test support: [`spawn_app`] starts the real EchoForge server (the same wiring as
//! `echoforge serve`) on `127.0.0.1:0` with a fresh data directory and SQLite database, and
//! returns a [`TestApp`] to talk HTTP to it and read the mail it sends.

use std::path::{Path, PathBuf};
use std::time::Duration;

use echoforge::config::Settings;
use serde_json::{Value, json};

/// A running server for one test. Dropping it shuts the server down and removes its data.
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub data_dir: PathBuf,
    pub app: app::App,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
}

/// A change to the server's settings before it starts.
pub type SettingsTweak = std::sync::Arc<dyn Fn(&mut Settings) + Send + Sync>;

/// Options for [`spawn_app_with`].
#[derive(Default, Clone)]
pub struct Options {
    /// `ECHOFORGE__SMTP__URL` equivalent.
    pub smtp_url: Option<String>,
    /// A database URL (defaults to SQLite in the data directory).
    pub database_url: Option<String>,
    /// Failed logins allowed per IP (default 20).
    pub login_failures_per_ip: Option<u32>,
    /// The internal API's service secret (unset: the internal API is off).
    pub service_secret: Option<String>,
    /// Let URL imports reach 127.0.0.1 (local test sites).
    pub allow_private_urls: bool,
    /// Largest upload in bytes (default 50 MiB).
    pub max_upload_bytes: Option<usize>,
    /// An OpenAI-compatible base URL (e.g. `fakellm::FakeLlm::base_url`) for the chat model;
    /// without it the server has no model (the environment's `OPENAI_*` are ignored).
    pub llm_base_url: Option<String>,
    /// Seconds between re-syncs of `daily` knowledge bases (default a day).
    pub sync_daily_secs: Option<u64>,
    /// How often the re-sync scheduler looks for due knowledge bases (default a minute).
    pub sync_check_millis: Option<u64>,
    /// Let workspaces' own model endpoints be on loopback (`llm.allow_private_base_urls`).
    pub allow_private_model_hosts: bool,
    /// Any other settings, changed last (integration providers' endpoints, …).
    pub tweak: Option<SettingsTweak>,
}

/// Starts a server with default options.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(Options::default()).await
}

pub async fn spawn_app_with(opts: Options) -> TestApp {
    let data_dir =
        std::env::temp_dir().join(format!("echoforge-it-{}", uuid::Uuid::now_v7().simple()));
    let mut settings = Settings::default();
    settings.server.bind = "127.0.0.1:0".into();
    settings.data_dir = data_dir.clone();
    settings.smtp.url = opts.smtp_url.map(Into::into);
    settings.database.url = opts.database_url.map(Into::into);
    settings.knowledge.allow_private_urls = opts.allow_private_urls;
    settings.llm.allow_private_base_urls = opts.allow_private_model_hosts;
    settings.internal.service_secret = opts.service_secret.map(Into::into);
    if let Some(n) = opts.max_upload_bytes {
        settings.knowledge.max_upload_bytes = n;
    }
    if let Some(n) = opts.sync_daily_secs {
        settings.knowledge.sync_daily_secs = n;
    }
    if let Some(n) = opts.sync_check_millis {
        settings.knowledge.sync_check_millis = n;
    }
    match opts.llm_base_url {
        Some(url) => {
            settings.llm.provider = Some("openai".into());
            settings.llm.base_url = Some(url);
            settings.llm.api_key = Some("test-key".to_owned().into());
            settings.llm.model = Some("fake-model".into());
        }
        None => settings.llm.provider = Some("none".into()),
    }
    if let Some(n) = opts.login_failures_per_ip {
        settings.auth.login_failures_per_ip = n;
    }
    if let Some(tweak) = &opts.tweak {
        tweak(&mut settings);
    }
    let server = echoforge::build(settings).await.expect("the server starts");
    let base = format!("http://{}", server.addr);
    let app = server.app.clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let handle = tokio::spawn(async move {
        server
            .run(async move {
                let _ = rx.await;
            })
            .await
            .expect("the server runs");
    });
    TestApp {
        base,
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client"),
        data_dir,
        app,
        shutdown: Some(tx),
        server: Some(handle),
    }
}

/// A signed-in user, for tests.
#[derive(Debug, Clone)]
pub struct Session {
    pub email: String,
    pub password: String,
    pub user_id: String,
    pub workspace_id: String,
    pub access_token: String,
    pub refresh_token: String,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Stops the server gracefully and waits for it.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(h) = self.server.take() {
            let _ = h.await;
        }
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: Value) -> reqwest::Response {
        let mut req = self.client.post(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request")
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut req = self.client.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request")
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: Value) -> reqwest::Response {
        let mut req = self.client.put(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request")
    }

    /// Signs in through the web app's endpoint; returns the `Cookie` header value
    /// (`ef_session=…`), after checking the cookie is HttpOnly and SameSite=Lax.
    pub async fn web_login(&self, s: &Session) -> String {
        let resp = self
            .client
            .post(self.url("/web/login"))
            .json(&json!({"email": s.email, "password": s.password}))
            .send()
            .await
            .expect("login");
        assert_eq!(resp.status(), 200);
        let set = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().expect("a header value").to_owned())
            .find(|v| v.starts_with("ef_session="))
            .expect("a session cookie");
        assert!(set.contains("HttpOnly"), "{set}");
        assert!(set.contains("SameSite=Lax"), "{set}");
        set.split(';').next().expect("a cookie").to_owned()
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: Value) -> reqwest::Response {
        let mut req = self.client.patch(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request")
    }

    /// Uploads `files` (name, MIME type, bytes) to knowledge base `kb` in one multipart request.
    pub async fn upload_documents<N: AsRef<str>>(
        &self,
        token: &str,
        kb: &str,
        files: &[(N, &str, Vec<u8>)],
    ) -> reqwest::Response {
        let mut form = reqwest::multipart::Form::new();
        for (name, mime, bytes) in files {
            form = form.part(
                "file",
                reqwest::multipart::Part::bytes(bytes.clone())
                    .file_name(name.as_ref().to_owned())
                    .mime_str(mime)
                    .expect("a valid MIME type"),
            );
        }
        self.client
            .post(self.url(&format!("/api/v1/knowledge-bases/{kb}/documents")))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await
            .expect("request")
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut req = self.client.delete(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request")
    }

    pub fn outbox(&self) -> PathBuf {
        self.data_dir.join("outbox")
    }

    /// Waits (up to 10 s) for a mail to `to` whose subject contains `subject`, and returns the
    /// whole message as written to the outbox. Each message is returned once.
    pub async fn wait_for_mail(&self, to: &str, subject: &str) -> String {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(mail) = take_mail(&self.outbox(), to, subject) {
                return mail;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no mail to {to} about `{subject}` arrived"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Registers, verifies (from the outbox) and signs in a new user with a new workspace.
    pub async fn signed_up(&self, email: &str) -> Session {
        let password = "Correct1horse".to_owned();
        let resp = self
            .post("/api/v1/auth/register", None, json!({"email": email, "password": password, "name": "Test User", "company_name": format!("{email} Co")}))
            .await;
        assert_eq!(resp.status(), 201, "register: {}", resp.text().await.unwrap_or_default());
        let mail = self.wait_for_mail(email, "Verify").await;
        let token = token_in(&mail, "Verification token: ");
        let resp = self.post("/api/v1/auth/verify-email", None, json!({"token": token})).await;
        assert_eq!(resp.status(), 200);
        self.login(email, &password).await
    }

    pub async fn login(&self, email: &str, password: &str) -> Session {
        let resp = self
            .post("/api/v1/auth/login", None, json!({"email": email, "password": password}))
            .await;
        assert_eq!(resp.status(), 200, "login: {}", resp.text().await.unwrap_or_default());
        let tokens: Value = resp.json().await.expect("json");
        let access = tokens["access_token"].as_str().expect("access token").to_owned();
        let me: Value =
            self.get("/api/v1/auth/me", Some(&access)).await.json().await.expect("json");
        Session {
            email: email.to_owned(),
            password: password.to_owned(),
            user_id: me["user"]["id"].as_str().expect("user id").to_owned(),
            workspace_id: me["workspaces"][0]["workspace_id"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            access_token: access,
            refresh_token: tokens["refresh_token"].as_str().expect("refresh token").to_owned(),
        }
    }
}

/// Agent settings for [`TestApp::create_agent`] beyond its name and slug.
#[derive(Debug, Clone, Default)]
pub struct AgentSpec {
    /// Capability ids (`escalation`, `rag`, …).
    pub capabilities: Vec<String>,
    /// The agent's `config` JSON (e.g. `{"requires_confirmation": ["escalate_to_human"]}`).
    pub config: Option<Value>,
    pub inactive: bool,
    /// Knowledge bases the agent searches (`kb_…` ids of the same workspace).
    pub knowledge_base_ids: Vec<String>,
}

impl TestApp {
    /// Creates an agent directly in the store (test support until the agents API lands);
    /// returns its id.
    pub async fn create_agent(
        &self,
        workspace_id: &str,
        name: &str,
        slug: &str,
        spec: AgentSpec,
    ) -> String {
        let ws = domain::WorkspaceId::parse(workspace_id).expect("workspace id");
        #[allow(clippy::disallowed_methods)] // test support: the workspace is the test's own
        let scope = store::TenantScope::assume(ws);
        let fields = store::AgentFields {
            slug: slug.to_owned(),
            display_name: name.to_owned(),
            enabled_capabilities: json!(spec.capabilities),
            knowledge_base_ids: spec
                .knowledge_base_ids
                .iter()
                .map(|k| domain::KnowledgeBaseId::parse(k).expect("a knowledge base id"))
                .collect(),
            integrations: json!([]),
            personality: json!({}),
            behavior: json!({}),
            config: spec.config.unwrap_or_else(|| json!({})),
            routing_rules: json!({}),
            system_prompt: format!("You are {name}, a helpful assistant."),
            onboarding_answers: json!({}),
            is_active: !spec.inactive,
            ..Default::default()
        };
        let new = store::NewAgent {
            id: domain::AgentId::new(),
            public_id: format!("pub_{}", uuid::Uuid::now_v7().simple()),
            created_by: None,
            fields,
        };
        let agent = self
            .app
            .store()
            .create_agent(&scope, &new, domain::time::now_ms())
            .await
            .expect("create agent");
        agent.id.to_string()
    }

    /// Creates an API key directly in the store (agent-scoped when `agent_id` is given) and
    /// returns its secret.
    pub async fn create_key(
        &self,
        workspace_id: &str,
        agent_id: Option<&str>,
        permissions: &[&str],
    ) -> String {
        let ws = domain::WorkspaceId::parse(workspace_id).expect("workspace id");
        #[allow(clippy::disallowed_methods)] // test support: the workspace is the test's own
        let scope = store::TenantScope::assume(ws);
        let secret = vault::token::generate("ef_");
        let perms: domain::Permissions = permissions
            .iter()
            .map(|p| p.parse::<domain::Permission>().expect("permission"))
            .collect();
        let new = store::NewApiKey {
            id: domain::ApiKeyId::new(),
            agent_id: agent_id.map(|a| domain::AgentId::parse(a).expect("agent id")),
            name: "test key".into(),
            prefix: secret[..11].to_owned(),
            digest: vault::token::digest(&secret),
            permissions: perms,
            rate_per_minute: None,
            rate_per_day: None,
            ip_allowlist: Vec::new(),
            created_by: None,
        };
        self.app
            .store()
            .create_api_key(&scope, &new, domain::time::now_ms())
            .await
            .expect("create key");
        secret
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = std::fs::remove_dir_all(&self.data_dir);
    }
}

fn take_mail(dir: &Path, to: &str, subject: &str) -> Option<String> {
    let mut entries: Vec<_> =
        std::fs::read_dir(dir).ok()?.filter_map(Result::ok).map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.extension().and_then(|e| e.to_str()) != Some("eml") {
            continue;
        }
        let text = std::fs::read_to_string(&path).ok()?;
        let to_line = text.lines().any(|l| {
            l.to_lowercase().starts_with("to:") && l.to_lowercase().contains(&to.to_lowercase())
        });
        let subject_line = text.lines().any(|l| l.starts_with("Subject:") && l.contains(subject));
        if to_line && subject_line {
            let _ = std::fs::rename(&path, path.with_extension("read"));
            return Some(text);
        }
    }
    None
}

/// `(role, content)` of each message in a JSON array of messages (a history, a transcript).
pub fn roles_and_contents(messages: &Value) -> Vec<(&str, &str)> {
    let list = messages.as_array().expect("a JSON array of messages");
    list.iter()
        .map(|m| (m["role"].as_str().expect("a role"), m["content"].as_str().expect("content")))
        .collect()
}

/// The token that follows `marker` in a mail body.
pub fn token_in(mail: &str, marker: &str) -> String {
    let unfolded = mail.replace("=\r\n", "").replace("=\n", "");
    let start = unfolded.find(marker).unwrap_or_else(|| panic!("`{marker}` not in mail:\n{mail}"))
        + marker.len();
    unfolded[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}
