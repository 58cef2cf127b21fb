//! Rebuild when embedded files change: the binary embeds `permissions/` (include_dir)
//! and `migrations/` (sqlx::migrate!), and neither can tell cargo which files it read.
fn main() {
    println!("cargo:rerun-if-changed=permissions");
    println!("cargo:rerun-if-changed=migrations");
}
