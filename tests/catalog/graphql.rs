//! GraphQL in the catalog: entries checked against the catalog's schema, and
//! `patrol catalog coverage --graphql` on the fixture schema (every status known
//! exactly) and on the shipped one (GitLab's, against its target).

use patrol::catalog::coverage::Status;
use patrol::catalog::graphql::{ElementKind, GraphqlBoundary, GraphqlTarget, report, report_file};
use patrol::catalog::{LoadError, ViolationKind, load_dir, load_embedded, load_files};
use patrol::domain::BoundaryKind;

use crate::{fixture, fixture_arg, patrol, shown};

/// The fixture catalog's schema, against the fixture catalog, whose one entry is
/// `Project.issues` (`read_issue`): the `Issue`s it returns through the structural
/// `IssueConnection` are covered by it; `Project`, returned by no field that needs a
/// permission, is missing.
const FIXTURE_REPORT: &str = "\
missing  query field  Query.echo
missing  query field  Query.project
missing  mutation  Mutation.createIssue
skipped  object type  CreateIssuePayload  (structural)
covered  object type  Issue  read_issue
skipped  object type  IssueConnection  (structural)
missing  object type  Project
2 query fields: 0 covered, 0 skipped, 2 missing
1 mutations: 0 covered, 0 skipped, 1 missing
4 object types: 1 covered, 2 skipped, 1 missing
3 query fields and mutations: 0 covered, 0 skipped, 3 missing (0.0% covered or skipped)
";

#[test]
fn the_fixture_schema_element_by_element() {
    let catalog = load_dir(&fixture("catalog/valid")).unwrap();
    let report = report_file(&catalog, &fixture("catalog/valid/graphql/schema.graphql")).unwrap();
    assert_eq!(report.to_string(), FIXTURE_REPORT);
    assert_eq!(report.percent(), 0.0);
    let read_issue = catalog.permission_by_name("read_issue").unwrap();
    assert_eq!(read_issue.graphql.len(), 1);
    assert_eq!(
        read_issue.graphql[0].target,
        GraphqlTarget::Field {
            parent: "Project".to_owned(),
            field: "issues".to_owned()
        }
    );
    assert_eq!(
        read_issue.graphql[0].boundary,
        GraphqlBoundary::Parent(None)
    );
}

/// The fixture catalog with `planning/issue.yml`'s GraphQL entry replaced by `entry`
/// (YAML lines under `graphql:`), loaded: the messages of its GraphQL violations.
fn with_entry(entry: &str) -> Result<Vec<String>, String> {
    let root = fixture("catalog/valid");
    let mut files = crate::fixture_files(&root);
    let issue = files
        .iter_mut()
        .find(|(p, _)| p.ends_with("planning/issue.yml"))
        .unwrap();
    let replaced = issue.1.replace("      - field: Project.issues\n", entry);
    assert_ne!(replaced, issue.1, "the fixture no longer has the entry");
    issue.1 = replaced;
    match load_files(&root, files) {
        Ok(_) => Ok(Vec::new()),
        Err(LoadError::Invalid(violations)) => Err(violations
            .into_iter()
            .map(|v| {
                assert_eq!(v.kind, ViolationKind::InvalidGraphql, "{v}");
                v.message
            })
            .collect::<Vec<_>>()
            .join("\n")),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn entries_are_checked_against_the_schema() {
    // Accepted: a root field with its argument, a mutation reaching into its input
    // object, an object type from its parent, a parent of a stated kind.
    for good in [
        "      - field: Query.project\n        boundary: {type: project, argument: fullPath}\n",
        "      - field: Mutation.createIssue\n        boundary: {type: project, argument: input.projectPath}\n",
        "      - type: Issue\n",
        "      - field: Project.issues\n        boundary: {type: group}\n",
    ] {
        assert_eq!(with_entry(good), Ok(Vec::new()), "{good}");
    }
    for (bad, wanted) in [
        (
            "      - field: Project.issuez\n",
            "`Project` has no field `issuez`",
        ),
        (
            "      - field: Query.project.issues\n",
            "is not `Type.field`",
        ),
        ("      - type: Isue\n", "no object type `Isue`"),
        (
            "      - field: Query.project\n        boundary: {type: project, argument: path}\n",
            "`project` has no argument `path`",
        ),
        (
            "      - field: Mutation.createIssue\n        boundary: {type: project, argument: input.path}\n",
            "input `CreateIssueInput` has no field `path`",
        ),
        (
            "      - field: Query.project\n        boundary: {type: project, argument: fullPath.x}\n",
            "not an input object",
        ),
        (
            "      - field: Query.project\n        boundary: {type: instance}\n",
            "not one of `read_issue`'s boundaries",
        ),
        (
            "      - field: Query.project\n        boundary: {type: wiki}\n",
            "not a boundary type",
        ),
        (
            "      - field: Query.project\n        type: Project\n",
            "exactly one of `field` and `type`",
        ),
    ] {
        let got = with_entry(bad).expect_err(bad);
        assert!(got.contains(wanted), "{bad}: {got}");
    }
}

/// The target of issue 16 on GitLab's schema as the catalog ships it: at least 75% of
/// its query fields and mutations covered or skipped.
#[test]
fn the_shipped_schema_meets_its_target() {
    let catalog = load_embedded().unwrap();
    let schema = catalog
        .graphql_schema
        .as_ref()
        .expect("the catalog ships graphql/schema.graphql");
    let report = report(&catalog, schema);
    let missing: Vec<&str> = report.missing().map(|e| e.name.as_str()).collect();
    assert!(
        report.percent() >= 75.0,
        "{:.1}% of query fields and mutations covered or skipped; missing: {missing:?}",
        report.percent()
    );
    let operations = report.operations();
    assert_eq!(
        operations.total,
        report.summary(ElementKind::QueryField).total + report.summary(ElementKind::Mutation).total
    );
    assert!(
        operations.skipped * 4 <= operations.total,
        "more than a quarter skipped:\n{report}"
    );
    for (name, permission) in [
        ("Query.project", "read_project"),
        ("Query.group", "read_group"),
        ("Issue", "read_issue"),
        ("MergeRequest", "read_merge_request"),
    ] {
        match &report.element(name).map(|e| &e.status) {
            Some(Status::Covered { permissions }) => assert!(
                permissions.iter().any(|p| p == permission),
                "{name}: {permissions:?}"
            ),
            other => panic!("{name}: {other:?}"),
        }
    }
    // Root fields take their boundary from the argument GitLab's directive names.
    let read_project = catalog.permission_by_name("read_project").unwrap();
    assert!(
        read_project
            .graphql
            .iter()
            .any(|e| e.target.to_string() == "Query.project"
                && e.boundary
                    == GraphqlBoundary::Argument {
                        kind: BoundaryKind::Project,
                        path: vec!["fullPath".to_owned()]
                    })
    );
}

#[test]
fn the_command_prints_the_report_and_fails_on_gaps_unless_the_minimum_is_met() {
    let dir = fixture_arg("catalog/valid");
    let schema = fixture_arg("catalog/valid/graphql/schema.graphql");
    let out = patrol(&["catalog", "--dir", &dir, "coverage", "--graphql", &schema]);
    assert!(!out.status.success(), "{}", shown(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), FIXTURE_REPORT);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("3 query field(s) and mutation(s) missing"),
        "{}",
        shown(&out)
    );
    let out = patrol(&[
        "catalog",
        "--dir",
        &dir,
        "coverage",
        "--graphql",
        &schema,
        "--min",
        "0",
    ]);
    assert!(out.status.success(), "{}", shown(&out));
    // Not a schema: a parse error naming the file, exit 1.
    let not_sdl = fixture_arg("openapi/malformed.json");
    let out = patrol(&["catalog", "--dir", &dir, "coverage", "--graphql", &not_sdl]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is not valid GraphQL SDL"),
        "{}",
        shown(&out)
    );
    // The shipped catalog on its own schema meets the target.
    let shipped = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/permissions/graphql/schema.graphql"
    );
    let out = patrol(&["catalog", "coverage", "--graphql", shipped, "--min", "75"]);
    assert!(out.status.success(), "{}", shown(&out));
}
