use std::path::{Path, PathBuf};

use patrol::catalog::{EMBEDDED, LoadError, load_dir};

/// The worked example of `docs/adding-permissions.md` is the file the catalog ships;
/// added to the rest of the shipped catalog it passes `patrol catalog check`, and its
/// permissions land where the page says.
#[test]
fn worked_example_passes_the_catalog_check() {
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/adding-permissions.md"),
    )
    .unwrap();
    let example = yaml_blocks(&doc)
        .into_iter()
        .find(|block| block.starts_with("# yaml-language-server"))
        .expect("the page has a complete resource file");

    let dir = scratch_dir("adding-permissions");
    EMBEDDED.extract(&dir).unwrap();
    let target = dir.join("code/external_status_check.yml");
    let shipped = std::fs::read_to_string(&target).unwrap_or_default();
    assert!(
        shipped == example,
        "the page's example is not permissions/code/external_status_check.yml as shipped"
    );
    std::fs::write(&target, example).unwrap();

    let catalog = match load_dir(&dir) {
        Ok(catalog) => catalog,
        Err(LoadError::Invalid(violations)) => {
            let listed: Vec<String> = violations.iter().map(ToString::to_string).collect();
            panic!("the worked example fails the check:\n{}", listed.join("\n"))
        }
        Err(e) => panic!("{e}"),
    };
    let update = catalog
        .permission_by_name("update_external_status_check")
        .unwrap();
    assert_eq!(update.category, "code");
    assert_eq!(update.min_plan, Some(patrol::domain::Plan::Ultimate));
    let read = catalog.permission_id("read_external_status_check").unwrap();
    assert!(update.implied.contains(read));
    let path =
        patrol::catalog::RoutePath::parse("/api/v4/projects/42/external_status_checks/7").unwrap();
    let found = catalog.routes.resolve("PUT", &path).unwrap();
    assert_eq!(found.required, [update.id]);
    assert!(
        catalog
            .scope("api")
            .unwrap()
            .permissions
            .contains(update.id)
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// The page's GraphQL example is an entry of the shipped catalog, as the page reads it.
#[test]
fn graphql_example_is_in_the_shipped_catalog() {
    use patrol::catalog::graphql::{GraphqlBoundary, GraphqlTarget};
    let doc = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/adding-permissions.md"),
    )
    .unwrap();
    let example = yaml_blocks(&doc)
        .into_iter()
        .find(|block| block.contains("graphql:"))
        .expect("the page shows a GraphQL entry");
    assert_eq!(
        example,
        "  - name: update_issue\n    graphql:\n      - field: Mutation.issueSetConfidential\n        \
         boundary: {type: project, argument: input.projectPath}\n"
    );
    let catalog = patrol::catalog::load_embedded().unwrap();
    let update = catalog.permission_by_name("update_issue").unwrap();
    let entry = update
        .graphql
        .iter()
        .find(|e| e.target.to_string() == "Mutation.issueSetConfidential")
        .expect("update_issue lists Mutation.issueSetConfidential");
    assert_eq!(
        entry.target,
        GraphqlTarget::Field {
            parent: "Mutation".to_owned(),
            field: "issueSetConfidential".to_owned()
        }
    );
    assert_eq!(
        entry.boundary,
        GraphqlBoundary::Argument {
            kind: patrol::domain::BoundaryKind::Project,
            path: vec!["input".to_owned(), "projectPath".to_owned()]
        }
    );
}

fn yaml_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match (&mut current, line.trim_start()) {
            (None, "```yaml") => current = Some(String::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(block), _) => {
                block.push_str(line);
                block.push('\n');
            }
            (None, _) => {}
        }
    }
    blocks
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("patrol-{name}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
