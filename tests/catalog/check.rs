use patrol::catalog::{LoadError, ViolationKind as V, load_dir};

use crate::{fixture, patrol};

/// One broken fixture per violation kind: (fixture, kind, file, line, text the message names).
const BROKEN: &[(&str, V, &str, usize, &str)] = &[
    (
        "undefined_permission",
        V::UndefinedPermission,
        "planning/issue.yml",
        19,
        "`read_isue`",
    ),
    (
        "missing_boundary",
        V::MissingBoundary,
        "planning/issue.yml",
        14,
        "`update_issue`",
    ),
    (
        "boundary_mismatch",
        V::BoundaryMismatch,
        "planning/issue.yml",
        21,
        "`update_issue`",
    ),
    (
        "duplicate_route",
        V::DuplicateRoute,
        "planning/issue.yml",
        22,
        "issue.yml:21",
    ),
    (
        "cycle",
        V::Cycle,
        "planning/issue.yml",
        3,
        "read_issue -> update_issue -> read_issue",
    ),
    (
        "unused_permission",
        V::UnusedPermission,
        "planning/issue.yml",
        22,
        "`delete_issue`",
    ),
    (
        "unknown_feature",
        V::UnknownFeature,
        "planning/issue.yml",
        18,
        "`isues`",
    ),
    (
        "unknown_skip_reason",
        V::UnknownSkipReason,
        "skipped_routes.yml",
        2,
        "`because`",
    ),
    (
        "unknown_scope_target",
        V::UnknownScopeTarget,
        "scopes.yml",
        4,
        "`read_everything`",
    ),
    (
        "unknown_role",
        V::UnknownRole,
        "planning/issue.yml",
        17,
        "`boss`",
    ),
    (
        "unknown_job_token_policy",
        V::UnknownJobTokenPolicy,
        "planning/issue.yml",
        10,
        "`read_workitems`",
    ),
    (
        "unknown_plan",
        V::UnknownPlan,
        "planning/issue.yml",
        10,
        "`platinum`",
    ),
    (
        "invalid_route",
        V::InvalidRoute,
        "planning/issue.yml",
        13,
        "`FETCH /api/v4/groups/:id/issues`",
    ),
    ("syntax", V::Syntax, "planning/issue.yml", 16, ""),
    (
        "unknown_field",
        V::Syntax,
        "planning/issue.yml",
        16,
        "`boundries`",
    ),
    (
        "duplicate_permission",
        V::InvalidName,
        "planning/issue.yml",
        14,
        "`read_issue` is already defined",
    ),
    (
        "unnamed_action",
        V::InvalidName,
        "planning/issue.yml",
        14,
        "`triage_issues`",
    ),
];

#[test]
fn each_broken_fixture_is_caught_at_its_file_and_line() {
    let mut failures = Vec::new();
    for &(name, kind, file, line, names) in BROKEN {
        let dir = fixture(&format!("catalog/broken/{name}"));
        let violations = match load_dir(&dir) {
            Err(LoadError::Invalid(violations)) => violations,
            Err(e) => {
                failures.push(format!("{name}: {e}"));
                continue;
            }
            Ok(_) => {
                failures.push(format!("{name}: loaded without a violation"));
                continue;
            }
        };
        let found = violations.iter().any(|v| {
            v.kind == kind
                && v.origin.file.ends_with(file)
                && v.origin.line == line
                && v.message.contains(names)
        });
        if !found {
            let listed: Vec<String> = violations.iter().map(ToString::to_string).collect();
            failures.push(format!(
                "{name}: no {kind:?} at {file}:{line} naming {names}; got:\n  {}",
                listed.join("\n  ")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_violation_kind_the_issue_names_has_a_fixture() {
    for kind in [
        V::UndefinedPermission,
        V::MissingBoundary,
        V::BoundaryMismatch,
        V::DuplicateRoute,
        V::Cycle,
        V::UnusedPermission,
        V::UnknownFeature,
        V::UnknownSkipReason,
        V::UnknownScopeTarget,
    ] {
        assert!(
            BROKEN.iter().any(|row| row.1 == kind),
            "no fixture for {kind:?}"
        );
    }
}

#[test]
fn the_valid_fixture_and_the_shipped_catalog_load() {
    load_dir(&fixture("catalog/valid")).unwrap();
    let shipped = patrol::catalog::load_embedded().unwrap();
    assert!(shipped.permissions.len() > 100);
}

#[test]
fn the_command_exits_non_zero_with_file_and_line() {
    let dir = fixture("catalog/broken/cycle");
    let out = patrol(&["catalog", "--dir", dir.to_str().unwrap(), "check"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(
        stderr.contains("planning/issue.yml:3: implies/requires cycle"),
        "{stderr}"
    );

    let dir = fixture("catalog/valid");
    let out = patrol(&["catalog", "--dir", dir.to_str().unwrap(), "check"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .starts_with("catalog ok: 2 permissions")
    );
}
