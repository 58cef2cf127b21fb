use patrol::catalog::coverage::{Status, report};

use crate::{fixture, patrol};

fn status(permission: &str) -> Status {
    Status::Covered {
        permissions: vec![permission.to_owned()],
    }
}

#[test]
fn openapi_3_yaml_against_the_shipped_catalog() {
    let catalog = patrol::catalog::load_embedded().unwrap();
    let report = report(&catalog, &fixture("openapi/gitlab-v4.openapi3.yaml")).unwrap();
    let of = |method: &str, path: &str| {
        report
            .operations
            .iter()
            .find(|o| o.method == method && o.path == path)
            .unwrap_or_else(|| panic!("{method} {path} is not in the report"))
            .status
            .clone()
    };
    assert_eq!(
        of("GET", "/api/v4/projects/{id}/issues"),
        status("read_issue")
    );
    assert_eq!(
        of("POST", "/api/v4/projects/{id}/issues"),
        status("create_issue")
    );
    assert_eq!(
        of("PUT", "/api/v4/projects/{id}/issues/{issue_iid}"),
        status("update_issue")
    );
    assert_eq!(
        of("GET", "/api/v4/groups/{id}/issues"),
        status("read_issue")
    );
    assert_eq!(
        of("POST", "/api/v4/projects/{id}/pipeline"),
        status("create_pipeline")
    );
    assert_eq!(
        of("GET", "/api/v4/templates/gitignores"),
        Status::Skipped {
            reason: "public_endpoint".into()
        }
    );
    assert_eq!(
        of("GET", "/api/v4/projects/{id}/not_a_real_endpoint"),
        Status::Missing
    );
    assert_eq!(of("POST", "/api/v4/made_up/{thing}"), Status::Missing);
    assert_eq!(report.operations.len(), 18);
    assert_eq!(report.missing().count(), 2);
    assert!((report.percent() - 16.0 * 100.0 / 18.0).abs() < 1e-9);
    assert!(
        report.to_string().ends_with(
            "18 operations: 15 covered, 1 skipped, 2 missing (88.9% covered or skipped)\n"
        )
    );
}

#[test]
fn swagger_2_json_with_other_parameter_names() {
    let catalog = patrol::catalog::load_embedded().unwrap();
    let report = report(&catalog, &fixture("openapi/gitlab-v4.swagger2.json")).unwrap();
    let statuses: Vec<(&str, &str, &Status)> = report
        .operations
        .iter()
        .map(|o| (o.method.as_str(), o.path.as_str(), &o.status))
        .collect();
    assert!(statuses.contains(&(
        "PUT",
        "/api/v4/projects/{id}/issues/{iid}",
        &status("update_issue")
    )));
    assert!(statuses.contains(&(
        "GET",
        "/api/v4/projects/{project_id}/merge_requests",
        &status("read_merge_request")
    )));
    assert_eq!(
        report.operations.len(),
        7,
        "parameters and x- keys are not operations"
    );
    assert_eq!(report.missing().count(), 1);
}

#[test]
fn the_command_fails_on_gaps_unless_the_minimum_is_met() {
    let spec = fixture("openapi/gitlab-v4.openapi3.yaml");
    let spec = spec.to_str().unwrap();
    let run = |extra: &[&str]| {
        let mut args = vec!["catalog", "coverage", "--openapi", spec];
        args.extend_from_slice(extra);
        patrol(&args)
    };
    let out = run(&[]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("missing  GET /api/v4/projects/{id}/not_a_real_endpoint")
    );
    assert!(run(&["--min", "80"]).status.success());
    assert!(!run(&["--min", "99.9"]).status.success());
}

#[test]
fn a_document_that_is_not_openapi_is_refused_by_name() {
    let catalog = patrol::catalog::load_embedded().unwrap();
    let not_openapi = fixture("catalog/valid/features.yml");
    let err = report(&catalog, &not_openapi).unwrap_err().to_string();
    assert!(
        err.contains("features.yml") && err.contains("neither `swagger` nor `openapi`"),
        "{err}"
    );
    let missing = report(&catalog, &fixture("openapi/nope.yaml"))
        .unwrap_err()
        .to_string();
    assert!(missing.contains("cannot read"), "{missing}");
}
