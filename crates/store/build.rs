// Re-embed the migrations when one is added (sqlx::migrate! reads the folders at build time).
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
