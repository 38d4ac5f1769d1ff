//! `echoforge`: the command line.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use echoforge::config::{CliOverrides, Settings};

#[derive(Parser)]
#[command(
    name = "echoforge",
    version,
    about = "EchoForge: build and run your AI team, in one binary."
)]
struct Cli {
    /// Configuration file (TOML). Environment variables `ECHOFORGE__SECTION__KEY` override it.
    #[arg(long, global = true, env = "ECHOFORGE_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (database, files, outbox, master key).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (HTTP API, web app and background workers).
    Serve {
        /// Address to listen on (default 127.0.0.1:8080).
        #[arg(long)]
        bind: Option<String>,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Measurements.
    Eval {
        #[command(subcommand)]
        command: EvalCommand,
    },
    /// Operator tasks.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Knowledge bases, straight on the configured database (no server needed).
    Kb {
        #[command(subcommand)]
        command: KbCommand,
    },
}

#[derive(Subcommand)]
enum KbCommand {
    /// Add files (directories are walked) and web pages to a knowledge base, wait for
    /// indexing, and print what was indexed, duplicate or failed. Exits non-zero if any failed.
    Ingest {
        /// The knowledge base id (`kb_…`).
        kb: String,
        /// Files, directories or http(s) URLs.
        #[arg(required = true)]
        sources: Vec<String>,
        /// Seconds to wait for indexing before giving up (queued work stays queued).
        #[arg(long, default_value_t = 600)]
        timeout: u64,
        /// Print the summary as JSON.
        #[arg(long)]
        json: bool,
        /// Link levels crawled from each URL (1 = the pages themselves, up to 3).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=3))]
        crawl_depth: u8,
    },
}

#[derive(Subcommand)]
enum EvalCommand {
    /// Retrieval quality on a BEIR-format set (corpus.jsonl, queries.jsonl, qrels.tsv).
    Retrieval {
        #[arg(long)]
        corpus: PathBuf,
        #[arg(long)]
        queries: PathBuf,
        #[arg(long)]
        qrels: PathBuf,
        /// lexical, semantic or hybrid.
        #[arg(long, default_value = "lexical")]
        mode: String,
        #[arg(long, default_value_t = 100)]
        top_k: usize,
        #[command(flatten)]
        embedding: echoforge::eval::EmbeddingArgs,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create the platform operator account (verified, with its own workspace).
    CreateOperator {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "Operator")]
        name: String,
        /// The password; read from ECHOFORGE_OPERATOR_PASSWORD if not given.
        #[arg(long, env = "ECHOFORGE_OPERATOR_PASSWORD", hide_env_values = true)]
        password: String,
    },
    /// Add a new master key and re-wrap every stored secret under it.
    RotateMasterKey,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let bind = match &cli.command {
        Command::Serve { bind } => bind.clone(),
        _ => None,
    };
    let overrides = CliOverrides { bind, data_dir: cli.data_dir.clone() };
    let settings = Settings::load(cli.config.as_deref(), &overrides)?;
    echoforge::telemetry::init_logs(&settings.log);
    match cli.command {
        Command::Serve { .. } => {
            let server = echoforge::build(settings).await?;
            server.run(echoforge::server::shutdown_signal()).await
        }
        Command::Migrate => {
            std::fs::create_dir_all(&settings.data_dir)?;
            let store =
                store::Store::connect(&settings.database_url(), &store::StoreOptions::default())
                    .await
                    .context("could not migrate the database")?;
            println!("migrations applied ({:?})", store.backend());
            Ok(())
        }
        Command::Eval {
            command: EvalCommand::Retrieval { corpus, queries, qrels, mode, top_k, embedding },
        } => echoforge::eval::retrieval(corpus, queries, qrels, &mode, top_k, &embedding).await,
        Command::Admin { command } => admin(settings, command).await,
        Command::Kb { command: KbCommand::Ingest { kb, sources, timeout, json, crawl_depth } } => {
            let args = echoforge::ingest::IngestArgs {
                kb,
                sources,
                timeout: std::time::Duration::from_secs(timeout),
                json,
                crawl_depth,
            };
            let summary = echoforge::ingest::run(settings, args).await?;
            if summary.has_failures() {
                std::process::exit(1);
            }
            Ok(())
        }
    }
}

async fn admin(settings: Settings, command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::CreateOperator { email, name, password } => {
            // No port and no search index: this runs beside a server on the same data.
            let public_url = settings
                .server
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{}", settings.server.bind));
            let app = echoforge::server::open_app(&settings, public_url).await?;
            let created = app.create_operator(&email, &password, &name).await;
            app.store().close().await;
            match created {
                Ok(user) => {
                    println!("operator {} created ({})", user.email, user.id);
                    Ok(())
                }
                Err(app::AppError::Validation(errors)) => {
                    let msgs: Vec<String> = errors
                        .iter()
                        .map(|e| format!("{}: {}", e.path.trim_start_matches('/'), e.message))
                        .collect();
                    anyhow::bail!("could not create the operator: {}", msgs.join("; "))
                }
                Err(e) => anyhow::bail!("could not create the operator: {e}"),
            }
        }
        AdminCommand::RotateMasterKey => {
            let path = settings.data_dir.join("master.key");
            let mut keyring = vault::Keyring::load(&path).context("no master key to rotate")?;
            let store =
                store::Store::connect(&settings.database_url(), &store::StoreOptions::default())
                    .await?;
            let new_id = keyring.rotate()?;
            let mut rewrapped = 0;
            for (id, payload) in store.sealed_job_payloads().await? {
                let mut value: serde_json::Value = serde_json::from_str(&payload)?;
                let Some(sealed) = value["sealed"].as_str() else { continue };
                // An error here stops the rotation before old keys are dropped: nothing is lost.
                if let Some(new) = keyring
                    .rewrap(sealed)
                    .with_context(|| format!("could not re-wrap the secret of job {id}"))?
                {
                    value["sealed"] = serde_json::Value::String(new);
                    store.set_job_payload(id, &value.to_string()).await?;
                    rewrapped += 1;
                }
            }
            keyring.retire_old_keys()?;
            println!("master key rotated to {new_id}; {rewrapped} stored secrets re-wrapped");
            Ok(())
        }
    }
}
