//! Extraction throughput per format over the shared fixtures.
//!
//! `cargo run --release -p extract --example throughput [-- SECONDS_PER_FORMAT]`
//! (fixtures from `ECHOFORGE_DOC_FIXTURES`, else `../../../shared/data/doc_fixtures` beside the
//! clone, else `/work/shared/data/doc_fixtures`).
//! Each format's files are extracted round-robin for the given time (default 2 s) with
//! `extract::extract`, i.e. including the isolation thread each call starts.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

fn main() {
    let seconds: f64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(2.0);
    // Same lookup as the fixture test: env, then `shared/` beside the clone, then /work/shared.
    let dir = std::env::var_os("ECHOFORGE_DOC_FIXTURES").map(PathBuf::from).unwrap_or_else(|| {
        let sibling =
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/doc_fixtures");
        if sibling.exists() { sibling } else { PathBuf::from("/work/shared/data/doc_fixtures") }
    });
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).expect("manifest.json"))
            .expect("JSON");
    let mut by_format: BTreeMap<String, (extract::Format, Vec<Vec<u8>>)> = BTreeMap::new();
    for file in manifest["files"].as_array().expect("files") {
        let name = file["file"].as_str().unwrap_or_default();
        if name.contains("LICENSE") || name.contains("expected_outputs/") {
            continue;
        }
        let bytes = std::fs::read(dir.join(name)).expect("fixture");
        let Some(format) = extract::detect(name, None, &bytes) else { continue };
        if extract::extract(&bytes, format, &extract::Limits::default()).is_err() {
            continue;
        }
        by_format.entry(format!("{format:?}")).or_insert((format, Vec::new())).1.push(bytes);
    }
    println!("| format | files | avg size (KB) | docs/s | MB/s |");
    println!("| --- | --- | --- | --- | --- |");
    let limits = extract::Limits::default();
    for (name, (format, files)) in &by_format {
        bench(name, *format, files, seconds, &limits);
    }
    println!();
    println!("Synthetic large inputs (throughput without per-document overhead):");
    println!();
    println!("| format | files | avg size (KB) | docs/s | MB/s |");
    println!("| --- | --- | --- | --- | --- |");
    for (name, format, bytes) in synthetic() {
        bench(name, format, &[bytes], seconds, &limits);
    }
}

/// Large generated documents: 8 MB of text, 4 MB of CSV, 4 MB of Markdown, 2 MB of HTML.
fn synthetic() -> Vec<(&'static str, extract::Format, Vec<u8>)> {
    let sentence =
        "Retrieval grounded agents cite the passages they use, and every passage keeps its page. ";
    let text: String = (0..8 * 1024 * 1024 / 1000)
        .map(|i| format!("{}\n\n", sentence.repeat(11).replace("page", &format!("page {i}"))))
        .collect();
    let csv: String = std::iter::once("id,name,city,amount\n".to_string())
        .chain(
            (0..110_000)
                .map(|i| format!("{i},customer {i},city {},{}.{:02}\n", i % 97, i * 7, i % 100)),
        )
        .collect();
    let md: String = (0..4 * 1024 * 1024 / 1100)
        .map(|i| format!("## Section {i}\n\n{}\n\n* item one\n* item two\n\n", sentence.repeat(10)))
        .collect();
    let html = format!(
        "<html><head><title>Big</title></head><body><nav>menu</nav><article>{}</article></body></html>",
        (0..2 * 1024 * 1024 / 1000)
            .map(|i| format!("<h2>Part {i}</h2><p>{}</p>", sentence.repeat(10)))
            .collect::<String>()
    );
    vec![
        ("Text (synthetic)", extract::Format::Text, text.into_bytes()),
        ("Csv (synthetic)", extract::Format::Csv, csv.into_bytes()),
        ("Markdown (synthetic)", extract::Format::Markdown, md.into_bytes()),
        ("Html (synthetic)", extract::Format::Html, html.into_bytes()),
    ]
}

fn bench(
    name: &str,
    format: extract::Format,
    files: &[Vec<u8>],
    seconds: f64,
    limits: &extract::Limits,
) {
    let budget = Duration::from_secs_f64(seconds);
    let start = Instant::now();
    let (mut docs, mut bytes) = (0u64, 0u64);
    while start.elapsed() < budget {
        for f in files {
            let doc = extract::extract(f, format, limits).expect("document extracts");
            std::hint::black_box(doc);
            docs += 1;
            bytes += f.len() as u64;
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let avg_kb = files.iter().map(Vec::len).sum::<usize>() as f64 / files.len() as f64 / 1024.0;
    println!(
        "| {name} | {} | {avg_kb:.1} | {:.0} | {:.2} |",
        files.len(),
        docs as f64 / secs,
        bytes as f64 / secs / 1e6
    );
}
