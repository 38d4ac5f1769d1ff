//! The EchoForge server, assembled: configuration, telemetry, storage, the vault, mail, job
//! workers and the HTTP API. The binary (`main.rs`) parses the command line and calls in here;
//! the test kit starts the very same server on port 0.

pub mod config;
pub mod eval;
pub mod ingest;
pub mod server;
pub mod telemetry;

pub use config::{CliOverrides, Settings};
pub use server::{Server, build};
