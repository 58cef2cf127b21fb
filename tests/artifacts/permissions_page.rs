use std::path::Path;

use patrol::catalog::docs;

use crate::shipped;

/// `docs/permissions.md` is what `patrol catalog docs` generates today. Regenerate with
/// `cargo run -- catalog docs --out docs/permissions.md` (or run the tests with
/// `PATROL_UPDATE_ARTIFACTS=1`).
#[test]
fn committed_permissions_page_matches_the_catalog() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/permissions.md");
    let generated = docs::markdown(shipped());
    if std::env::var_os("PATROL_UPDATE_ARTIFACTS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/permissions.md is stale: run `cargo run -- catalog docs --out docs/permissions.md`"
    );
}

#[test]
fn every_permission_and_route_is_on_the_page() {
    let catalog = shipped();
    let markdown = docs::markdown(catalog);
    let html = docs::html(catalog);
    for p in &catalog.permissions {
        let name = format!("`{}`", p.name);
        assert!(
            markdown.contains(&name),
            "{} is missing from the Markdown page",
            p.name
        );
        assert!(
            html.contains(&format!("<code>{}</code>", p.name)),
            "{} is missing from the HTML page",
            p.name
        );
        for (method, path) in &p.routes {
            let row = format!("| {method} | `{path}` |");
            assert!(
                markdown.contains(&row),
                "route {method} {path} of {} is missing",
                p.name
            );
        }
    }
    for s in &catalog.skipped_routes {
        assert!(
            markdown.contains(&format!("`{}`", s.path)),
            "skipped route {} is missing",
            s.path
        );
    }
}

#[test]
fn page_groups_by_boundary_in_order() {
    let markdown = docs::markdown(shipped());
    let positions: Vec<usize> = [
        "## Project boundary",
        "## Group boundary",
        "## User boundary",
        "## Instance boundary",
    ]
    .iter()
    .map(|h| {
        markdown
            .find(h)
            .unwrap_or_else(|| panic!("missing heading {h}"))
    })
    .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "boundary sections out of order"
    );
    assert!(markdown.contains(
        "| Permission | Action | Method | Path | Min role | Job token policy | Legacy scopes |"
    ));
}

#[test]
fn html_escapes_and_is_a_document() {
    let html = docs::html(shipped());
    assert!(html.starts_with("<!doctype html>"));
    assert!(html.trim_end().ends_with("</html>"));
    assert!(!html.contains("<script"));
}
