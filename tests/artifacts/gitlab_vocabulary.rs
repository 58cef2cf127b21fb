use std::path::Path;

use patrol::catalog::gitlab::{RouteVerdict, compare, read_facts};

use crate::shipped;

/// `docs/gitlab-vocabulary.md` is what `patrol catalog gitlab` writes from the facts
/// read from GitLab's source (`tests/fixtures/gitlab/authz.yml`). Regenerate with
/// `cargo run -- catalog gitlab tests/fixtures/gitlab/authz.yml --out
/// docs/gitlab-vocabulary.md` (or run the tests with `PATROL_UPDATE_ARTIFACTS=1`).
#[test]
fn committed_gitlab_comparison_matches_the_catalog_and_the_facts() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let facts = read_facts(&root.join("tests/fixtures/gitlab/authz.yml")).unwrap();
    let comparison = compare(shipped(), &facts);
    let generated = comparison.markdown();
    let path = root.join("docs/gitlab-vocabulary.md");
    if std::env::var_os("PATROL_UPDATE_ARTIFACTS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/gitlab-vocabulary.md is stale: run `cargo run -- catalog gitlab tests/fixtures/gitlab/authz.yml --out docs/gitlab-vocabulary.md`"
    );
    // Not vacuous: the facts reach every verdict, and an alias is found by its name.
    let verdict =
        |f: fn(&RouteVerdict) -> bool| comparison.routes.iter().filter(|r| f(&r.verdict)).count();
    assert!(verdict(|v| *v == RouteVerdict::Agrees) > 100);
    assert!(verdict(|v| matches!(v, RouteVerdict::Differs(_))) > 0);
    assert!(verdict(|v| *v == RouteVerdict::GitlabOnly) > 0);
    assert!(
        comparison
            .aliased
            .contains(&("read_storage".to_owned(), "read_project_storage".to_owned())),
        "{:?}",
        comparison.aliased
    );
}

/// GitLab's name for a permission is accepted wherever the catalog's is.
#[test]
fn an_alias_names_its_permission() {
    let catalog = shipped();
    let by_alias = catalog.permission_id("read_storage").unwrap();
    assert_eq!(catalog.permission(by_alias).name, "read_project_storage");
    assert_eq!(
        catalog.permission_id("read_project_storage"),
        Some(by_alias)
    );
}
