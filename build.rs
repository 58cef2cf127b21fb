//! Rebuild when the catalog changes: the binary embeds `permissions/`, and include_dir
//! cannot tell cargo which files it read.
fn main() {
    println!("cargo:rerun-if-changed=permissions");
}
