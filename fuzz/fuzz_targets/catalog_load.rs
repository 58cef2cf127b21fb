//! `patrol::catalog::load_files` on arbitrary YAML.
//!
//! Input: one or more files separated by the byte 0xFF (never part of UTF-8 text, so
//! it cannot clash with YAML). A file's text is its bytes read as lossy UTF-8. A file
//! that starts with the line `#path: <relative path>` (a YAML comment) is given that
//! name; otherwise the n-th file is named after `DEFAULT_NAMES[n % len]`, which covers
//! every special top-level file (`roles`, `features`, `scopes`, `job_token_policies`,
//! `templates`, `skipped_routes`), resource files in a category folder, an unknown
//! top-level file, a `.yaml` file and a file that is not YAML (ignored by the loader).
//!
//! Properties: `load_files` never panics and never hangs (run with `-timeout=`); errors
//! are fine. Every violation it reports can be formatted. A catalog it accepts has
//! routes that resolve to themselves.
#![no_main]

use std::path::{Path, PathBuf};
use std::sync::LazyLock;

use libfuzzer_sys::fuzz_target;
use patrol::catalog::{LoadError, load_files};

const SEPARATOR: u8 = 0xFF;
/// At most this many files per input: more adds nothing but time.
const MAX_FILES: usize = 16;

const DEFAULT_NAMES: [&str; 12] = [
    "roles.yml",
    "features.yml",
    "scopes.yml",
    "job_token_policies.yml",
    "templates.yml",
    "skipped_routes.yml",
    "projects/x.yml",
    "planning/issue.yml",
    "code/deep/nested.yaml",
    "unknown.yml",
    "notes.txt",
    "roles.yaml",
];

/// `PATROL_FUZZ_DEBUG=1` prints each violation (to check what the seeds reach).
static DEBUG: LazyLock<bool> = LazyLock::new(|| std::env::var_os("PATROL_FUZZ_DEBUG").is_some());

fuzz_target!(|data: &[u8]| {
    let files: Vec<(PathBuf, String)> = data
        .split(|&b| b == SEPARATOR)
        .take(MAX_FILES)
        .enumerate()
        .map(|(i, chunk)| {
            let text = String::from_utf8_lossy(chunk).into_owned();
            let named = text
                .strip_prefix("#path:")
                .and_then(|rest| rest.split_once('\n'))
                .map(|(name, _)| name.trim())
                .filter(|name| !name.is_empty())
                .map(PathBuf::from);
            let name =
                named.unwrap_or_else(|| PathBuf::from(DEFAULT_NAMES[i % DEFAULT_NAMES.len()]));
            (name, text)
        })
        .collect();

    match load_files(Path::new("permissions"), files) {
        Ok(catalog) => {
            if *DEBUG {
                eprintln!("accepted: {} routes", catalog.routes.entries().len());
                for e in catalog.routes.entries() {
                    eprintln!("  route `{} {}`", e.method, e.path);
                }
            }
            // Every route of an accepted catalog is reachable through the router.
            for entry in catalog.routes.entries() {
                if entry.path.contains('*') || entry.path.contains("{{") {
                    continue;
                }
                let concrete: String = entry
                    .path
                    .split('/')
                    .map(|s| {
                        if s.starts_with(':') || (s.starts_with('{') && s.ends_with('}')) {
                            "1"
                        } else {
                            s
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("/");
                if *DEBUG {
                    for path in [
                        concrete.clone(),
                        format!("{concrete}/"),
                        format!("{concrete}x"),
                    ] {
                        let found = patrol::catalog::RoutePath::parse(&path)
                            .ok()
                            .and_then(|p| {
                                catalog
                                    .routes
                                    .resolve(&entry.method, &p)
                                    .map(|m| (m.entry.path.clone(), m.param("id").map(str::to_owned)))
                            });
                        eprintln!(
                            "  resolve {path:?} -> {:?}",
                            found
                        );
                    }
                }
                let concrete_path = patrol::catalog::RoutePath::parse(&concrete);
                assert!(
                    concrete_path
                        .as_ref()
                        .is_ok_and(|p| catalog.routes.resolve(&entry.method, p).is_some()),
                    "accepted route `{} {}` does not resolve ({concrete})",
                    entry.method,
                    entry.path
                );
            }
        }
        Err(LoadError::Invalid(violations)) => {
            assert!(
                !violations.is_empty(),
                "an invalid catalog with no violation"
            );
            for v in &violations {
                let line = v.to_string();
                if *DEBUG {
                    eprintln!("{line}");
                }
            }
        }
        Err(e @ LoadError::Io { .. }) => panic!("load_files does no I/O, yet: {e}"),
    }
});
