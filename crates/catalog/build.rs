//! Rebuild when the embedded catalog changes: include_dir cannot tell cargo which files
//! it read.
fn main() {
    println!("cargo:rerun-if-changed=../../permissions");
}
