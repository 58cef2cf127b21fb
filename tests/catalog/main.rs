//! `patrol catalog check` and `patrol catalog coverage`: every kind of violation is caught
//! at its file and line, and coverage classifies each operation of a spec.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a broken assumption should fail the test loudly"
)]

mod check;
mod coverage;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}

/// Runs the `patrol` binary.
pub fn patrol(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_patrol"))
        .args(args)
        .output()
        .unwrap()
}
