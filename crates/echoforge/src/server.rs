//! Building and running the server: data directory, master key, database, mail, workers, HTTP.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use app::mail::{MAIL_QUEUE, Mailer, OutboxMailer, SmtpMailer};
use app::worker::{self, Handler, WorkerSpec};
use app::{App, AppConfig};
use secrecy::ExposeSecret;
use store::{Store, StoreOptions};
use tokio::net::TcpListener;
use tokio::sync::watch;
use vault::{Keyring, KeyringSource};

use crate::config::Settings;

/// A server bound to its port, ready to run.
pub struct Server {
    pub app: App,
    pub listener: TcpListener,
    pub addr: SocketAddr,
    settings: Settings,
    started: Instant,
}

/// Opens the data directory, the keyring, the database (migrating it) and the search index,
/// and binds the port.
pub async fn build(settings: Settings) -> anyhow::Result<Server> {
    let started = Instant::now();
    let listener = TcpListener::bind(settings.bind_addr()?)
        .await
        .with_context(|| format!("could not listen on {}", settings.server.bind))?;
    let addr = listener.local_addr()?;
    let app = open_app(&settings, settings.public_url(addr)).await?;
    let index = open_index(&settings, &settings.data_dir.join("index"))?;
    app.set_knowledge(knowledge_services(&settings, index)?);
    Ok(Server { app, listener, addr, settings, started })
}

/// The application over the data directory, keyring, database (migrated) and mail, without
/// the search index or a port: what commands that do not search or ingest need (they run
/// beside a server that holds the index). `public_url` is the base of links in mail.
pub async fn open_app(settings: &Settings, public_url: String) -> anyhow::Result<App> {
    std::fs::create_dir_all(&settings.data_dir).with_context(|| {
        format!("could not create the data directory {}", settings.data_dir.display())
    })?;
    for sub in ["files", "outbox"] {
        std::fs::create_dir_all(settings.data_dir.join(sub))?;
    }
    let key_path = settings.data_dir.join("master.key");
    let (keyring, source) = Keyring::load_or_generate(&key_path)?;
    if source == KeyringSource::Generated {
        tracing::warn!(
            path = %key_path.display(),
            "GENERATED A NEW MASTER KEY. Every stored secret is encrypted with it: back this file up and keep it private (mode 0600). Losing it loses those secrets."
        );
    }
    let store = Store::connect(
        &settings.database_url(),
        &StoreOptions { max_connections: settings.database.max_connections, ..Default::default() },
    )
    .await
    .with_context(|| {
        format!("could not open the database at {}", store::redact_url(&settings.database_url()))
    })?;
    let mailer: Arc<dyn Mailer> = match &settings.smtp.url {
        Some(url) if !url.expose_secret().is_empty() => {
            Arc::new(SmtpMailer::new(url.expose_secret(), &settings.smtp.from)?)
        }
        _ => Arc::new(OutboxMailer::new(settings.data_dir.join("outbox"), &settings.smtp.from)?),
    };
    let config = AppConfig {
        public_url,
        access_token_ttl: Duration::from_secs(settings.auth.access_token_ttl_secs),
        refresh_token_ttl: Duration::from_secs(settings.auth.refresh_token_ttl_secs),
        login_failures_per_account: settings.auth.login_failures_per_account,
        login_failures_per_ip: settings.auth.login_failures_per_ip,
        login_window: Duration::from_secs(settings.auth.login_window_secs),
        service_secret: settings
            .internal
            .service_secret
            .clone()
            .filter(|s| !s.expose_secret().is_empty()),
        plans: settings.plans.clone(),
        allow_private_webhooks: settings.handoff.allow_private_webhooks,
        ..AppConfig::default()
    };
    let model = settings.chat_model()?;
    match &model {
        Some(m) => tracing::info!(model = m.model(), "chat model configured"),
        None => tracing::warn!(
            "no chat model configured (ECHOFORGE__LLM__* or OPENAI_API_KEY): agents answer from their knowledge only"
        ),
    }
    let chat = app::ChatSettings {
        run_retention_days: settings.runs.retention_days,
        model_hosts: fetch::AddressPolicy {
            allow_private: settings.llm.allow_private_base_urls,
            ..Default::default()
        },
        ..app::ChatSettings::default()
    };
    let app = App::new(store, Arc::new(keyring), mailer, config).with_runtime(model, chat);
    app.set_widget_limits(app::WidgetLimits {
        visitor_per_minute: settings.widget.visitor_per_minute,
        visitor_per_day: settings.widget.visitor_per_day,
        agent_per_minute: settings.widget.agent_per_minute,
        agent_per_day: settings.widget.agent_per_day,
    });
    app.set_integrations(settings.integrations.to_app());
    app.set_mcp(settings.mcp.to_app());
    app.set_stripe(settings.billing.stripe.to_app());
    app.set_past_due_grace(std::time::Duration::from_secs(
        u64::from(settings.billing.past_due_grace_days) * 86_400,
    ));
    Ok(app)
}

/// Opens the search index in `dir` with the configured embedder. Only one process may hold
/// it: another gets [`knowledge::KnowledgeError::Locked`] (in the error chain).
pub fn open_index(
    settings: &Settings,
    dir: &std::path::Path,
) -> anyhow::Result<knowledge::KnowledgeIndex> {
    let embedder = crate::eval::EmbeddingArgs {
        embedding_model_dir: settings.knowledge.embedding_model_dir.clone(),
        embedding_base_url: settings.knowledge.embedding_base_url.clone(),
        embedding_model: settings.knowledge.embedding_model.clone(),
        embedding_api_key: settings
            .knowledge
            .embedding_api_key
            .as_ref()
            .map(|k| k.expose_secret().to_owned()),
    }
    .embedder()?;
    knowledge::KnowledgeIndex::open(dir, embedder, knowledge::IndexConfig::default())
        .context("could not open the search index")
}

/// The knowledge services (file store, web fetcher, extraction limits) over `index`.
pub fn knowledge_services(
    settings: &Settings,
    index: knowledge::KnowledgeIndex,
) -> anyhow::Result<app::knowledge::KnowledgeServices> {
    Ok(app::knowledge::KnowledgeServices {
        index,
        files_dir: settings.data_dir.join("files"),
        fetcher: fetch::GuardedClient::new(fetch::FetchConfig {
            policy: fetch::AddressPolicy {
                allow_private: settings.knowledge.allow_private_urls,
                ..Default::default()
            },
            ..Default::default()
        })
        .context("could not build the web fetcher")?,
        limits: extract::Limits {
            max_input_bytes: settings.knowledge.max_upload_bytes as u64,
            ..Default::default()
        },
    })
}

impl Server {
    /// Serves until `shutdown` resolves, then lets in-flight requests finish, stops the
    /// workers (giving back their job leases) and flushes batched writes.
    pub async fn run(
        self,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Server { app, listener, addr, settings, started } = self;
        // Before any new run starts: the runs a crash left `running` are over.
        app.interrupt_dead_runs(true).await;
        let (stop_tx, stop_rx) = watch::channel(false);
        let workers = spawn_workers(&app, &settings, stop_rx.clone());
        let flusher = {
            let app = app.clone();
            let mut stop = stop_rx.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_secs(5));
                loop {
                    tokio::select! {
                        _ = tick.tick() => app.flush().await,
                        _ = stop.changed() => break,
                    }
                }
            })
        };
        let metrics = crate::telemetry::init_metrics();
        let http_config = http_api::HttpConfig {
            max_body_bytes: settings.server.max_body_bytes,
            request_timeout: Duration::from_secs(settings.server.request_timeout_secs),
            max_upload_bytes: settings.knowledge.max_upload_bytes,
        };
        let router = http_api::router(app.clone(), metrics, &http_config);
        tracing::info!(
            address = %addr,
            public_url = %app.config().public_url,
            database = ?app.store().backend(),
            ready_ms = started.elapsed().as_secs_f64() * 1e3,
            "EchoForge is ready"
        );
        let grace = Duration::from_secs(settings.server.shutdown_grace_secs);
        let (signal_tx, signal_rx) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            shutdown.await;
            let _ = signal_tx.send(());
        });
        // No Nagle delay: SSE frames and small answers go out as soon as they are written
        // (otherwise a second small write waits for the client's delayed ACK, ~40 ms).
        let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let serve =
            axum::serve(listener, router.into_make_service_with_connect_info::<SocketAddr>())
                .with_graceful_shutdown(async move {
                    let _ = signal_rx.await;
                    tracing::info!("shutting down: finishing in-flight requests");
                });
        serve.await.context("the HTTP server failed")?;
        let _ = stop_tx.send(true);
        let join_all = async {
            for w in workers {
                let _ = w.await;
            }
            let _ = flusher.await;
        };
        if tokio::time::timeout(grace, join_all).await.is_err() {
            tracing::warn!("workers did not stop within the grace period");
        }
        app.flush().await;
        app.store().close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

fn spawn_workers(
    app: &App,
    settings: &Settings,
    stop: watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let owner = format!("{}-{}", std::process::id(), domain::JobId::new());
    let mail_app = app.clone();
    let mail: Handler = Arc::new(move |job| {
        let app = mail_app.clone();
        Box::pin(async move { app.deliver_mail_job(&job.payload).await })
    });
    let mut handles = worker::spawn(
        app.store().clone(),
        owner.clone(),
        WorkerSpec {
            queue: MAIL_QUEUE,
            concurrency: 2,
            lease: Duration::from_secs(settings.smtp.lease_secs.max(3)),
            idle_poll: Duration::from_millis(250),
        },
        mail,
        stop.clone(),
    );
    let ingest_app = app.clone();
    let ingest: Handler = Arc::new(move |job| {
        let app = ingest_app.clone();
        Box::pin(async move { app.knowledge_job(&job.kind, &job.payload).await })
    });
    handles.extend(worker::spawn(
        app.store().clone(),
        owner,
        WorkerSpec {
            queue: app::knowledge::INGEST_QUEUE,
            concurrency: settings.knowledge.ingest_concurrency.max(1),
            lease: Duration::from_secs(settings.knowledge.ingest_lease_secs.max(3)),
            idle_poll: Duration::from_millis(200),
        },
        ingest,
        stop.clone(),
    ));
    let billing_app = app.clone();
    let billing: Handler = Arc::new(move |job| {
        let app = billing_app.clone();
        Box::pin(async move {
            match job.kind.as_str() {
                store::REPORT_USAGE_JOB => app.report_usage_job().await,
                other => Err(worker::JobError::Permanent(format!("unknown billing job `{other}`"))),
            }
        })
    });
    handles.extend(worker::spawn(
        app.store().clone(),
        format!("{}-{}", std::process::id(), domain::JobId::new()),
        WorkerSpec {
            queue: store::BILLING_QUEUE,
            concurrency: 1,
            lease: Duration::from_secs(60),
            idle_poll: Duration::from_millis(250),
        },
        billing,
        stop.clone(),
    ));
    let handoff_app = app.clone();
    let handoff: Handler = Arc::new(move |job| {
        let app = handoff_app.clone();
        Box::pin(async move { app.handoff_target_job(&job).await })
    });
    handles.extend(worker::spawn(
        app.store().clone(),
        format!("{}-{}", std::process::id(), domain::JobId::new()),
        WorkerSpec {
            queue: app::handoff::targets::HANDOFF_QUEUE,
            concurrency: 2,
            lease: Duration::from_secs(60),
            idle_poll: Duration::from_millis(250),
        },
        handoff,
        stop.clone(),
    ));
    handles.push(spawn_sync_scheduler(app, settings, stop));
    handles
}

/// Queues scheduled re-syncs of URL sources as they fall due (see `app::SyncIntervals`).
fn spawn_sync_scheduler(
    app: &App,
    settings: &Settings,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    let app = app.clone();
    let every = Duration::from_millis(settings.knowledge.sync_check_millis.max(10));
    let intervals = app::SyncIntervals {
        daily: Duration::from_secs(settings.knowledge.sync_daily_secs.max(1)),
        weekly: Duration::from_secs(settings.knowledge.sync_weekly_secs.max(1)),
    };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {
                    if let Err(e) = app.schedule_url_syncs(domain::time::now_ms(), intervals).await {
                        tracing::warn!(error = %e, "could not schedule URL re-syncs");
                    }
                }
                _ = stop.changed() => break,
            }
        }
    })
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}
