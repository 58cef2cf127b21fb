//! The README's walk-through, run as written against a fresh patrol: the only changes
//! are the address (a random port) and `cargo run -q --release --`, which becomes the
//! binary cargo built for this test. Every `# → ...` line must appear in the output.

use std::process::Command;

use crate::on_both_backends;
use crate::support::{Backend, spawn};

on_both_backends!(the_walkthrough_works_as_written);

const BEGIN: &str = "<!-- walkthrough -->\n```sh\n";
const END: &str = "```\n<!-- /walkthrough -->";

fn walkthrough() -> String {
    let readme = include_str!("../../README.md");
    let start = readme
        .find(BEGIN)
        .expect("the README marks its walk-through")
        + BEGIN.len();
    let end = start + readme[start..].find(END).expect("the walk-through ends");
    readme[start..end].to_owned()
}

async fn the_walkthrough_works_as_written(backend: Backend) {
    let script = walkthrough();
    assert!(script.contains("cargo run -q --release -- service-key create"));
    assert!(script.contains("http://127.0.0.1:8080"));
    let expected: Vec<&str> = script
        .lines()
        .filter_map(|line| line.trim().strip_prefix("# → "))
        .collect();
    assert_eq!(expected.len(), 2, "one allowed and one denied decision");

    let app = spawn(backend).await;
    let db_url = app.db.as_ref().unwrap().url.clone();
    let script = script
        .replace("cargo run -q --release --", env!("CARGO_BIN_EXE_patrol"))
        .replace("http://127.0.0.1:8080", &app.address);
    let workdir = std::env::temp_dir();
    let output = tokio::task::spawn_blocking(move || {
        Command::new("bash")
            .args(["-euo", "pipefail", "-c", &script])
            .current_dir(workdir)
            .env_remove("PATROL_ADMIN_KEY")
            .env_remove("PATROL_CATALOG_DIR")
            .env("PATROL_DATABASE_URL", db_url)
            .env("PATROL_ARGON2", "m=256,t=1,p=1")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    for line in expected {
        assert!(
            stdout.contains(line),
            "`{line}` is not in:\n{stdout}\n{stderr}"
        );
    }
    assert!(!stdout.contains("\"error\""), "{stdout}");
    app.finish().await;
}
