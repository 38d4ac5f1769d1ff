//! Prints the Markdown extracted from a file: `cargo run -p extract --example dump -- FILE`.

fn main() {
    let path = std::env::args().nth(1).expect("usage: dump FILE");
    let bytes = std::fs::read(&path).expect("readable file");
    let Some(format) = extract::detect(&path, None, &bytes) else {
        eprintln!("unsupported file type");
        std::process::exit(2);
    };
    match extract::extract(&bytes, format, &extract::Limits::default()) {
        Ok(doc) => {
            println!(
                "<!-- format: {:?}, title: {:?}, blocks: {}, pages: {:?} -->",
                doc.format,
                doc.title,
                doc.blocks.len(),
                doc.page_count
            );
            println!("{}", doc.markdown);
        }
        Err(e) => {
            eprintln!("error ({}): {e}", e.code());
            std::process::exit(1);
        }
    }
}
