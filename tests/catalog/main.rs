//! `patrol catalog check` and `patrol catalog coverage`.
//!
//! - `check`: every kind of violation is caught at its file and line, one broken copy of
//!   the valid fixture catalog per defect, and the command's exit codes.
//! - `coverage`: OpenAPI 2 and 3 specs (JSON and YAML) against the fixture catalog, with
//!   exact statuses, percentages and exit codes.
//! - `graphql`: GraphQL entries checked against the catalog's schema, and
//!   `coverage --graphql` on the fixture schema and on the shipped one.
//! - `shipped`: the catalog embedded in the binary loads, and covers what the design
//!   guarantees.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: a broken assumption should fail the test loudly"
)]

mod check;
mod coverage;
mod graphql;
mod operations;
mod shipped;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A path under `tests/fixtures`.
pub fn fixture(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(path)
}

/// Every file of a fixture catalog, by its path inside it, with its text.
pub fn fixture_files(root: &Path) -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        for item in std::fs::read_dir(&dir).unwrap() {
            let path = item.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let text = std::fs::read_to_string(&path).unwrap();
                files.push((path.strip_prefix(root).unwrap().to_owned(), text));
            }
        }
    }
    files
}

/// The same, as the string a command line takes.
pub fn fixture_arg(path: &str) -> String {
    let path = fixture(path);
    path.to_str()
        .unwrap_or_else(|| panic!("{} is not UTF-8", path.display()))
        .to_owned()
}

/// Runs the `patrol` binary, without any catalog directory from the environment.
pub fn patrol(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_patrol"))
        .args(args)
        .env_remove("PATROL_CATALOG_DIR")
        .output()
        .unwrap()
}

/// Standard output and error of a run, to show when an assertion fails.
pub fn shown(out: &Output) -> String {
    format!(
        "exit {:?}\n--- stdout\n{}--- stderr\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
