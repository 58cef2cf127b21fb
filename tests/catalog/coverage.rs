//! `patrol catalog coverage` against the fixture catalog `tests/fixtures/catalog/valid`,
//! where every status, percentage and exit code is known exactly.

use std::path::Path;

use patrol::catalog::coverage::{CoverageError, Report, Status, Summary, report};
use patrol::catalog::{Catalog, load_dir};

use crate::{fixture, fixture_arg, patrol, shown};

fn catalog() -> Catalog {
    load_dir(&fixture("catalog/valid")).unwrap()
}

fn spec(name: &str) -> Report {
    report(&catalog(), &fixture(&format!("openapi/{name}"))).unwrap()
}

/// The small OpenAPI 3 spec: every method, `parameters`, `x-` keys, `options` and an
/// extension of the paths object, under a server URL with a trailing slash.
const SMALL_OPENAPI3: &str = "\
covered  GET /api/v4/groups/{id}/issues  read_issue
covered  GET /api/v4/projects/{id}/issues  read_issue
covered  POST /api/v4/projects/{id}/issues  create_issue
missing  DELETE /api/v4/projects/{id}/issues/{issue_iid}
covered  GET /api/v4/projects/{id}/issues/{issue_iid}  read_issue
covered  PUT /api/v4/projects/{id}/issues/{issue_iid}  update_issue
covered  GET /api/v4/projects/{id}/merge_requests  read_merge_request
covered  POST /api/v4/projects/{id}/merge_requests  create_merge_request
covered  GET /api/v4/projects/{id}/merge_requests/{merge_request_iid}/pipelines  read_merge_request, read_pipeline
missing  GET /api/v4/projects/{id}/not_a_real_endpoint
covered  POST /api/v4/projects/{id}/pipeline  create_pipeline
covered  GET /api/v4/projects/{id}/pipelines  read_pipeline
covered  GET /api/v4/projects/{id}/pipelines/{pipeline_id}  read_pipeline
covered  POST /api/v4/projects/{id}/pipelines/{pipeline_id}/cancel  cancel_pipeline, read_pipeline
skipped  POST /api/v4/runners/verify  (authentication)
skipped  GET /api/v4/templates/licenses  (public_endpoint)
16 operations: 12 covered, 2 skipped, 2 missing (87.5% covered or skipped)
";

#[test]
fn openapi_3_yaml_every_operation_and_its_status() {
    let report = spec("small.openapi3.yaml");
    assert_eq!(report.to_string(), SMALL_OPENAPI3);
    assert_eq!(
        report.summary(),
        Summary {
            total: 16,
            covered: 12,
            skipped: 2,
            missing: 2
        }
    );
    assert_eq!(report.percent(), 87.5);
    let missing: Vec<(&str, &str)> = report
        .missing()
        .map(|o| (o.method.as_str(), o.path.as_str()))
        .collect();
    assert_eq!(
        missing,
        [
            ("DELETE", "/api/v4/projects/{id}/issues/{issue_iid}"),
            ("GET", "/api/v4/projects/{id}/not_a_real_endpoint"),
        ]
    );

    // Statuses as data: the route's permission first, then what it also requires.
    let status = |method: &str, path: &str| report.operation(method, path).unwrap().status.clone();
    assert_eq!(
        status(
            "GET",
            "/api/v4/projects/{id}/merge_requests/{merge_request_iid}/pipelines"
        ),
        Status::Covered {
            permissions: vec!["read_merge_request".into(), "read_pipeline".into()]
        }
    );
    assert_eq!(
        status("POST", "/api/v4/runners/verify"),
        Status::Skipped {
            reason: "authentication".into()
        }
    );
    assert_eq!(
        status("DELETE", "/api/v4/projects/{id}/issues/{issue_iid}"),
        Status::Missing
    );

    // Each covered or skipped operation points at the catalog line that decides it.
    let route = |method: &str, path: &str| {
        let origin = report
            .operation(method, path)
            .unwrap()
            .route
            .clone()
            .unwrap();
        (origin.file, origin.line)
    };
    let valid = fixture("catalog/valid");
    assert_eq!(
        route("PUT", "/api/v4/projects/{id}/issues/{issue_iid}"),
        (valid.join("planning/issue.yml"), 34)
    );
    assert_eq!(
        route("GET", "/api/v4/templates/licenses"),
        (valid.join("skipped_routes.yml"), 2)
    );
    assert!(report.missing().all(|o| o.route.is_none()));
}

#[test]
fn swagger_2_json_with_other_parameter_names() {
    let report = spec("small.swagger2.json");
    assert_eq!(
        report.to_string(),
        "\
covered  GET /api/v4/groups/{group_id}/merge_requests/  read_merge_request
covered  GET /api/v4/projects/{project_id}/issues/{iid}  read_issue
covered  PUT /api/v4/projects/{project_id}/issues/{iid}  update_issue
covered  GET /api/v4/projects/{project_id}/merge_requests  read_merge_request
missing  POST /api/v4/projects/{project_id}/pipelines/{pipeline_id}/retry
skipped  GET /api/v4/templates/licenses  (public_endpoint)
6 operations: 4 covered, 1 skipped, 1 missing (83.3% covered or skipped)
"
    );
    assert!((report.percent() - 500.0 / 6.0).abs() < 1e-9);
}

#[test]
fn openapi_3_json_with_a_relative_server_and_a_path_item_reference() {
    let report = spec("complete.openapi3.json");
    assert_eq!(
        report.to_string(),
        "\
covered  GET /api/v4/projects/{id}/issues  read_issue
covered  POST /api/v4/projects/{id}/issues  create_issue
covered  POST /api/v4/projects/{id}/pipeline  create_pipeline
skipped  GET /api/v4/templates/licenses  (public_endpoint)
4 operations: 3 covered, 1 skipped, 0 missing (100.0% covered or skipped)
"
    );
    assert_eq!(report.missing().count(), 0);
}

#[test]
fn a_spec_without_operations_is_fully_covered() {
    let report = spec("empty.swagger2.yaml");
    assert!(report.operations.is_empty());
    assert_eq!(report.percent(), 100.0);
    assert_eq!(
        report.to_string(),
        "0 operations: 0 covered, 0 skipped, 0 missing (100.0% covered or skipped)\n"
    );
}

fn error(name: &str) -> (CoverageError, String) {
    let path = fixture(&format!("openapi/{name}"));
    let err = report(&catalog(), &path).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains(&format!("`{}`", path.display())),
        "{name}: the error does not name the file: {message}"
    );
    (err, message)
}

#[test]
fn documents_that_are_not_openapi_are_refused_naming_the_file_and_the_problem() {
    let (err, message) = error("not-openapi.yaml");
    assert!(matches!(err, CoverageError::Spec { .. }), "{err:?}");
    assert!(
        message
            .ends_with("is not an OpenAPI 2 or 3 document: it has neither `swagger` nor `openapi`"),
        "{message}"
    );

    let (err, message) = error("swagger-1.2.json");
    assert!(matches!(err, CoverageError::Spec { .. }), "{err:?}");
    assert!(message.contains("`swagger` is `1.2`"), "{message}");

    let (err, message) = error("malformed.json");
    assert!(
        matches!(err, CoverageError::Parse { format: "JSON", .. }),
        "{err:?}"
    );
    assert!(
        message.contains("is not valid JSON: ") && message.contains("line 5"),
        "{message}"
    );

    let (err, message) = error("malformed.yaml");
    assert!(
        matches!(err, CoverageError::Parse { format: "YAML", .. }),
        "{err:?}"
    );
    assert!(message.contains("is not valid YAML: line "), "{message}");

    let (err, message) = error("no-such-spec.yaml");
    assert!(matches!(err, CoverageError::Read { .. }), "{err:?}");
    assert!(message.starts_with("cannot read `"), "{message}");

    // A directory is not a spec either.
    let err = report(&catalog(), Path::new(env!("CARGO_MANIFEST_DIR"))).unwrap_err();
    assert!(matches!(err, CoverageError::Read { .. }), "{err:?}");
}

/// `patrol catalog --dir <valid fixture> coverage --openapi <spec> [extra]`.
fn coverage(spec: &str, extra: &[&str]) -> std::process::Output {
    let dir = fixture_arg("catalog/valid");
    let spec = fixture_arg(&format!("openapi/{spec}"));
    let mut args = vec!["catalog", "--dir", &dir, "coverage", "--openapi", &spec];
    args.extend_from_slice(extra);
    patrol(&args)
}

#[test]
fn the_command_fails_on_missing_operations_unless_the_minimum_is_met() {
    let out = coverage("small.openapi3.yaml", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout), SMALL_OPENAPI3);
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: 2 operation(s) missing, 87.5% covered or skipped\n"
    );

    for (min, passes) in [
        ("0", true),
        ("80", true),
        ("87.5", true),
        ("87.6", false),
        ("100", false),
    ] {
        let out = coverage("small.openapi3.yaml", &["--min", min]);
        assert_eq!(out.status.success(), passes, "--min {min}: {}", shown(&out));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            SMALL_OPENAPI3,
            "--min {min}"
        );
        if !passes {
            assert!(
                String::from_utf8_lossy(&out.stderr)
                    .contains(&format!("below the minimum of {min}%")),
                "--min {min}: {}",
                shown(&out)
            );
        }
    }
}

#[test]
fn the_command_passes_when_nothing_is_missing() {
    for spec in ["complete.openapi3.json", "empty.swagger2.yaml"] {
        let out = coverage(spec, &[]);
        assert!(out.status.success(), "{spec}: {}", shown(&out));
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("0 missing (100.0% covered or skipped)"),
            "{spec}: {}",
            shown(&out)
        );
        assert!(out.stderr.is_empty(), "{spec}: {}", shown(&out));
    }
}

#[test]
fn the_command_fails_on_a_bad_spec_or_a_bad_catalog() {
    let out = coverage("not-openapi.yaml", &["--min", "0"]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    assert!(out.stdout.is_empty(), "{}", shown(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("error: `")
            && stderr.contains("not-openapi.yaml` is not an OpenAPI 2 or 3 document"),
        "{}",
        shown(&out)
    );

    let dir = fixture_arg("catalog/broken/unknown_feature");
    let spec = fixture_arg("openapi/complete.openapi3.json");
    let out = patrol(&["catalog", "--dir", &dir, "coverage", "--openapi", &spec]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("code/merge_request.yml:22: unknown feature `merge_request`"),
        "{}",
        shown(&out)
    );
}
