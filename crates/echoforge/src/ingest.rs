//! `echoforge kb ingest <kb> <paths or urls…>`: adds files (directories are walked) and web
//! pages to a knowledge base straight through the configured database and file store — no
//! server needed — runs the ingestion workers in-process until every document is settled, and
//! prints what was indexed, what was a duplicate and what failed, with the reasons.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use app::knowledge::{INGEST_QUEUE, Upload};
use app::worker::{self, Handler, WorkerSpec};
use domain::{DocumentId, KnowledgeBaseId};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use store::{Document, DocumentStatus};
use tokio::sync::watch;

use crate::config::Settings;

/// What `kb ingest` was asked to do.
pub struct IngestArgs {
    pub kb: String,
    pub sources: Vec<String>,
    /// Give up waiting after this long (the queued work stays queued for the server).
    pub timeout: Duration,
    /// Print the summary as JSON instead of text.
    pub json: bool,
    /// Link levels crawled from each URL: 1 is the pages themselves (as the API's
    /// `crawl_depth`, 1–3).
    pub crawl_depth: u8,
}

/// How one source ended.
#[derive(Debug, Serialize)]
pub struct Outcome {
    /// The path or URL given (or found under a given directory).
    pub source: String,
    pub document_id: Option<String>,
    /// `indexed`, `duplicate`, `failed` or `pending` (still queued at the timeout).
    pub status: &'static str,
    pub chunks: i64,
    pub reason: Option<String>,
}

/// The summary printed at the end.
#[derive(Debug, Serialize)]
pub struct Summary {
    pub knowledge_base_id: String,
    pub indexed: usize,
    pub duplicate: usize,
    pub failed: usize,
    pub pending: usize,
    pub documents: Vec<Outcome>,
}

impl Summary {
    /// Whether the command should fail: a document failed, or did not finish in time.
    pub fn has_failures(&self) -> bool {
        self.failed > 0 || self.pending > 0
    }
}

fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// Files under `path` (itself when a file), sorted; hidden entries are skipped.
fn files_under(path: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> =
            std::fs::read_dir(path)?.filter_map(Result::ok).map(|e| e.path()).collect();
        entries.sort();
        for e in entries {
            if e.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.')) {
                continue;
            }
            files_under(&e, out)?;
        }
    } else {
        out.push(path.to_path_buf());
    }
    Ok(())
}

/// Runs `kb ingest`; returns the summary (already printed).
pub async fn run(settings: Settings, args: IngestArgs) -> anyhow::Result<Summary> {
    let kb_id = KnowledgeBaseId::parse(&args.kb)
        .map_err(|_| anyhow::anyhow!("`{}` is not a knowledge base id (kb_…)", args.kb))?;
    anyhow::ensure!(!args.sources.is_empty(), "give at least one path or URL");
    let concurrency = settings.knowledge.ingest_concurrency.max(1);
    let lease = Duration::from_secs(settings.knowledge.ingest_lease_secs.max(3));
    let max_bytes = settings.knowledge.max_upload_bytes;
    let public_url = settings
        .server
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{}", settings.server.bind));
    let app = crate::server::open_app(&settings, public_url).await?;
    // The index takes one writer. A running server holds it: then the documents are queued
    // for the server's own workers (same database and file store) and this command waits for
    // them, rather than indexing here.
    let scratch = settings.data_dir.join(format!(".kb-ingest-{}", std::process::id()));
    let beside_server = match crate::server::open_index(&settings, &settings.data_dir.join("index"))
    {
        Ok(index) => {
            app.set_knowledge(crate::server::knowledge_services(&settings, index)?);
            false
        }
        Err(e) if is_locked(&e) => {
            // Uploads and crawls never touch the index; this one stands in, empty, unused.
            let stand_in = crate::server::open_index(&settings, &scratch)?;
            app.set_knowledge(crate::server::knowledge_services(&settings, stand_in)?);
            eprintln!(
                "a server is running on {}: the documents are queued for its workers",
                settings.data_dir.display()
            );
            true
        }
        Err(e) => return Err(e),
    };
    let summary = ingest(&app, kb_id, &args, concurrency, lease, max_bytes, beside_server).await;
    let _ = std::fs::remove_dir_all(&scratch);
    summary
}

fn is_locked(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<knowledge::KnowledgeError>(),
            Some(knowledge::KnowledgeError::Locked(_))
        )
    })
}

async fn ingest(
    app: &app::App,
    kb_id: KnowledgeBaseId,
    args: &IngestArgs,
    concurrency: usize,
    lease: Duration,
    max_bytes: usize,
    beside_server: bool,
) -> anyhow::Result<Summary> {
    let kb = match app.console_knowledge_base(kb_id).await {
        Ok(kb) => kb,
        Err(app::AppError::NotFound { .. }) => anyhow::bail!("no knowledge base {kb_id}"),
        Err(e) => return Err(e).context("could not read the knowledge base"),
    };

    // Sources → documents (or an outcome at once when refused up front).
    let mut outcomes: Vec<Outcome> = Vec::new();
    let mut tracked: Vec<(String, DocumentId)> = Vec::new();
    let (urls, paths): (Vec<String>, Vec<String>) =
        args.sources.iter().cloned().partition(|s| is_url(s));
    let mut files = Vec::new();
    for p in &paths {
        let path = PathBuf::from(p);
        if !path.exists() {
            outcomes.push(refused(p, "no such file or directory"));
            continue;
        }
        files_under(&path, &mut files).with_context(|| format!("could not read {p}"))?;
    }
    for file in files {
        let source = file.display().to_string();
        let staged = match app.stage_local_file(&file, max_bytes as u64).await {
            Ok(f) => f,
            Err(e) => {
                outcomes.push(refused(&source, &e));
                continue;
            }
        };
        let filename = file.file_name().and_then(|n| n.to_str()).unwrap_or("document").to_owned();
        let upload = Upload { filename, content_type: None, file: staged };
        let accepted = app
            .console_add_files(&kb, vec![upload])
            .await
            .with_context(|| format!("could not add {source}"))?;
        for a in accepted {
            tracked.push((source.clone(), a.document.id));
        }
    }
    if !urls.is_empty() {
        let hops = args.crawl_depth.clamp(1, 3) - 1;
        let crawl =
            app.console_crawl(&kb, &urls, hops).await.context("could not fetch the URLs")?;
        for (url, reason) in crawl.refused {
            outcomes.push(refused(&url, &reason));
        }
        for id in crawl.documents {
            tracked.push((String::new(), id));
        }
    }

    // The ingestion workers, in-process, until every tracked document is settled.
    let (stop_tx, stop_rx) = watch::channel(false);
    let worker_app = app.clone();
    let handler: Handler = Arc::new(move |job| {
        let app = worker_app.clone();
        Box::pin(async move { app.knowledge_job(&job.kind, &job.payload).await })
    });
    let workers = if beside_server {
        Vec::new()
    } else {
        worker::spawn(
            app.store().clone(),
            format!("cli-{}-{}", std::process::id(), domain::JobId::new()),
            WorkerSpec {
                queue: INGEST_QUEUE,
                concurrency,
                lease,
                idle_poll: Duration::from_millis(100),
            },
            handler,
            stop_rx,
        )
    };
    let bar = ProgressBar::new(tracked.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("{spinner} indexing [{bar:30}] {pos}/{len} {wide_msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    let ids: Vec<DocumentId> = tracked.iter().map(|(_, id)| *id).collect();
    let deadline = Instant::now() + args.timeout;
    let docs = loop {
        let docs = app.console_documents(&kb, &ids).await.context("could not read documents")?;
        let done = docs.iter().filter(|d| settled(d)).count();
        bar.set_position(done as u64);
        if let Some(d) = docs.iter().find(|d| !settled(d)) {
            bar.set_message(d.title.clone());
        }
        if done == docs.len() || Instant::now() >= deadline {
            break docs;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    bar.finish_and_clear();
    let _ = stop_tx.send(true);
    for w in workers {
        let _ = w.await;
    }
    app.flush().await;

    for (source, id) in &tracked {
        let Some(d) = docs.iter().find(|d| d.id == *id) else { continue };
        let source = if source.is_empty() {
            d.source_url.clone().unwrap_or_else(|| d.title.clone())
        } else {
            source.clone()
        };
        outcomes.push(outcome_of(source, d));
    }
    let count = |s: &str| outcomes.iter().filter(|o| o.status == s).count();
    let summary = Summary {
        knowledge_base_id: kb.id.to_string(),
        indexed: count("indexed"),
        duplicate: count("duplicate"),
        failed: count("failed"),
        pending: count("pending"),
        documents: outcomes,
    };
    print(&summary, args.json);
    app.store().close().await;
    Ok(summary)
}

fn settled(d: &Document) -> bool {
    matches!(d.status, DocumentStatus::Indexed | DocumentStatus::Failed)
}

fn refused(source: &str, reason: &str) -> Outcome {
    Outcome {
        source: source.to_owned(),
        document_id: None,
        status: "failed",
        chunks: 0,
        reason: Some(reason.to_owned()),
    }
}

fn outcome_of(source: String, d: &Document) -> Outcome {
    let (status, reason) = match d.status {
        DocumentStatus::Indexed => ("indexed", None),
        DocumentStatus::Failed => {
            let reason = d.error.clone().unwrap_or_else(|| "failed".into());
            if reason.starts_with("duplicate") {
                ("duplicate", Some(reason))
            } else {
                ("failed", Some(reason))
            }
        }
        DocumentStatus::Pending | DocumentStatus::Processing => {
            ("pending", Some("not finished in time; the server will finish it".into()))
        }
    };
    Outcome { source, document_id: Some(d.id.to_string()), status, chunks: d.chunk_count, reason }
}

fn print(s: &Summary, json: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(s).unwrap_or_default());
        return;
    }
    for o in &s.documents {
        match &o.reason {
            Some(r) => println!("{:<9} {}: {r}", o.status, o.source),
            None => println!("{:<9} {} ({} chunks)", o.status, o.source, o.chunks),
        }
    }
    println!(
        "{} indexed, {} duplicate, {} failed{} in knowledge base {}",
        s.indexed,
        s.duplicate,
        s.failed,
        if s.pending > 0 { format!(", {} still pending", s.pending) } else { String::new() },
        s.knowledge_base_id
    );
}
