//! The catalog shipped in `permissions/` and embedded in the binary. It grows with the
//! product, so coverage is checked only for what the design guarantees: the contract's
//! routes are covered by their permissions and invented operations are missing.

use patrol::catalog::coverage::{Report, Status, report};
use patrol::catalog::{Catalog, LoadError, load_dir, load_embedded};

use crate::{fixture, fixture_arg, patrol, shown};

fn loaded(result: Result<Catalog, LoadError>) -> Catalog {
    match result {
        Ok(catalog) => catalog,
        Err(LoadError::Invalid(violations)) => {
            let listed: Vec<String> = violations.iter().map(ToString::to_string).collect();
            panic!(
                "the shipped catalog has {} violation(s):\n{}",
                violations.len(),
                listed.join("\n")
            )
        }
        Err(e) => panic!("{e}"),
    }
}

fn shipped() -> Catalog {
    loaded(load_embedded())
}

#[test]
fn the_shipped_catalog_loads_without_violations() {
    let embedded = shipped();
    let on_disk = loaded(load_dir(
        &std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("permissions"),
    ));
    assert_eq!(embedded.permissions.len(), on_disk.permissions.len());
    for name in [
        "read_issue",
        "create_issue",
        "update_issue",
        "delete_issue",
        "create_pipeline",
    ] {
        assert!(embedded.permission_id(name).is_some(), "no `{name}`");
    }
}

/// (method, path as the spec writes it, the permission the route is listed under).
type Guaranteed = [(&'static str, &'static str, &'static str)];

/// Checks the operations the contract guarantees, that the invented ones are missing,
/// that the routes `permissions/skipped_routes.yml` lists are skipped with their reason,
/// and that the percentage is what the counts make it.
fn check(
    report: &Report,
    operations: usize,
    covered: &Guaranteed,
    skipped: &Guaranteed,
    invented: &[(&str, &str)],
) {
    let mut failures = Vec::new();
    assert_eq!(report.operations.len(), operations, "{report}");
    for (method, path, permission) in covered {
        match report.operation(method, path).map(|o| &o.status) {
            Some(Status::Covered { permissions })
                if permissions.first().map(String::as_str) == Some(permission) => {}
            other => failures.push(format!(
                "{method} {path}: want covered by `{permission}`, got {other:?}"
            )),
        }
    }
    for (method, path, reason) in skipped {
        match report.operation(method, path).map(|o| &o.status) {
            Some(Status::Skipped { reason: r }) if r == reason => {}
            other => failures.push(format!(
                "{method} {path}: want skipped as `{reason}`, got {other:?}"
            )),
        }
    }
    for (method, path) in invented {
        match report.operation(method, path).map(|o| &o.status) {
            Some(Status::Missing) => {}
            other => failures.push(format!("{method} {path}: want missing, got {other:?}")),
        }
    }
    let mut seen: Vec<(&str, &str)> = report
        .operations
        .iter()
        .map(|o| (o.method.as_str(), o.path.as_str()))
        .collect();
    seen.dedup();
    if seen.len() != report.operations.len() {
        failures.push("an operation is listed twice".to_owned());
    }
    let summary = report.summary();
    assert_eq!(
        summary.covered + summary.skipped + summary.missing,
        summary.total
    );
    assert!(summary.missing >= invented.len(), "{report}");
    assert!(summary.covered >= covered.len(), "{report}");
    assert!(summary.skipped >= skipped.len(), "{report}");
    let want = (summary.total - summary.missing) as f64 * 100.0 / summary.total as f64;
    assert!(
        (report.percent() - want).abs() < 1e-9,
        "percent {} != {want}",
        report.percent()
    );
    let last = format!(
        "{} operations: {} covered, {} skipped, {} missing ({want:.1}% covered or skipped)\n",
        summary.total, summary.covered, summary.skipped, summary.missing
    );
    assert!(
        report.to_string().ends_with(&last),
        "no `{last}` in:\n{report}"
    );
    assert!(failures.is_empty(), "\n{}\n\n{report}", failures.join("\n"));
}

#[test]
fn openapi_3_yaml_of_gitlab_against_the_shipped_catalog() {
    let report = report(&shipped(), &fixture("openapi/gitlab-v4.openapi3.yaml")).unwrap();
    check(
        &report,
        38,
        &[
            ("GET", "/api/v4/projects/{id}/issues", "read_issue"),
            (
                "GET",
                "/api/v4/projects/{id}/issues/{issue_iid}",
                "read_issue",
            ),
            ("GET", "/api/v4/groups/{id}/issues", "read_issue"),
            ("POST", "/api/v4/projects/{id}/issues", "create_issue"),
            (
                "PUT",
                "/api/v4/projects/{id}/issues/{issue_iid}",
                "update_issue",
            ),
            (
                "DELETE",
                "/api/v4/projects/{id}/issues/{issue_iid}",
                "delete_issue",
            ),
            ("POST", "/api/v4/projects/{id}/pipeline", "create_pipeline"),
        ],
        &[
            ("POST", "/api/v4/markdown", "public_endpoint"),
            ("GET", "/api/v4/templates/gitignores", "public_endpoint"),
        ],
        &[
            ("GET", "/api/v4/projects/{id}/not_a_real_endpoint"),
            ("POST", "/api/v4/projects/{id}/issues/{issue_iid}/teleport"),
            ("DELETE", "/api/v4/made_up/{thing}"),
        ],
    );
}

#[test]
fn swagger_2_json_of_gitlab_with_other_parameter_names_against_the_shipped_catalog() {
    let report = report(&shipped(), &fixture("openapi/gitlab-v4.swagger2.json")).unwrap();
    check(
        &report,
        25,
        &[
            ("GET", "/api/v4/projects/{project_id}/issues", "read_issue"),
            (
                "GET",
                "/api/v4/projects/{project_id}/issues/{iid}",
                "read_issue",
            ),
            ("GET", "/api/v4/groups/{group_id}/issues", "read_issue"),
            (
                "POST",
                "/api/v4/projects/{project_id}/issues",
                "create_issue",
            ),
            (
                "PUT",
                "/api/v4/projects/{project_id}/issues/{iid}",
                "update_issue",
            ),
            (
                "DELETE",
                "/api/v4/projects/{project_id}/issues/{iid}",
                "delete_issue",
            ),
            (
                "POST",
                "/api/v4/projects/{project_id}/pipeline",
                "create_pipeline",
            ),
        ],
        &[("GET", "/api/v4/templates/licenses", "public_endpoint")],
        &[
            ("GET", "/api/v4/projects/{project_id}/not_a_real_endpoint"),
            ("POST", "/api/v4/groups/{group_id}/issues/{iid}/summon"),
        ],
    );
}

#[test]
fn the_command_on_the_embedded_catalog_fails_on_invented_operations_unless_the_minimum_is_met() {
    let spec = fixture_arg("openapi/gitlab-v4.openapi3.yaml");
    let out = patrol(&["catalog", "coverage", "--openapi", &spec]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    for line in [
        "\ncovered  GET /api/v4/projects/{id}/issues  read_issue\n",
        "\ncovered  POST /api/v4/projects/{id}/pipeline  create_pipeline",
        "\nmissing  GET /api/v4/projects/{id}/not_a_real_endpoint\n",
        "\n38 operations: ",
    ] {
        assert!(
            stdout.contains(line),
            "no `{}` in:\n{}",
            line.trim(),
            shown(&out)
        );
    }
    for (min, ok) in [("0", true), ("50", true), ("99.9", false), ("100", false)] {
        let out = patrol(&["catalog", "coverage", "--openapi", &spec, "--min", min]);
        assert_eq!(out.status.success(), ok, "--min {min}: {}", shown(&out));
    }
    // Swagger 2 JSON through the command too.
    let spec = fixture_arg("openapi/gitlab-v4.swagger2.json");
    let out = patrol(&["catalog", "coverage", "--openapi", &spec]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    for (min, ok) in [("50", true), ("99.9", false)] {
        let out = patrol(&["catalog", "coverage", "--openapi", &spec, "--min", min]);
        assert_eq!(out.status.success(), ok, "--min {min}: {}", shown(&out));
    }
}
