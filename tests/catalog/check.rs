//! `patrol catalog check`: each fixture under `tests/fixtures/catalog/broken/` is a copy of
//! `tests/fixtures/catalog/valid/` with one defect, and the loader must report exactly the
//! violations listed for it, at their file and line, naming what is wrong.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use patrol::catalog::{LoadError, Violation, ViolationKind as V, load_dir};

use crate::{fixture, fixture_arg, patrol, shown};

/// A violation a broken fixture must produce.
#[derive(Debug)]
struct Expected {
    kind: V,
    /// Relative to the fixture's root.
    file: &'static str,
    line: usize,
    /// Texts the message must contain: what is wrong, in backticks.
    names: &'static [&'static str],
}

const fn at(kind: V, file: &'static str, line: usize, names: &'static [&'static str]) -> Expected {
    Expected {
        kind,
        file,
        line,
        names,
    }
}

const ISSUE: &str = "planning/issue.yml";
const MR: &str = "code/merge_request.yml";
const PIPELINE: &str = "ci_cd/pipeline.yml";

/// Every broken fixture and exactly what loading it reports: the violation its defect is
/// about first, then any follow-on violation the loader reports for the same defect.
const BROKEN: &[(&str, &[Expected])] = &[
    // Undefined permissions, in every place that names one.
    (
        "undefined_permission_implies",
        &[at(
            V::UndefinedPermission,
            ISSUE,
            32,
            &["`implies`", "`read_isue`"],
        )],
    ),
    (
        "undefined_permission_requires",
        &[at(
            V::UndefinedPermission,
            PIPELINE,
            30,
            &["`requires`", "`read_pipelines`"],
        )],
    ),
    (
        "undefined_permission_also_requires",
        &[at(
            V::UndefinedPermission,
            MR,
            16,
            &["`also_requires`", "`read_job`"],
        )],
    ),
    (
        "undefined_permission_template",
        &[at(
            V::UndefinedPermission,
            "templates.yml",
            9,
            &["`run_pipeline`"],
        )],
    ),
    // A permission without boundaries; its route then acts on a boundary it lacks.
    (
        "missing_boundary",
        &[
            at(V::MissingBoundary, ISSUE, 19, &["`create_issue`"]),
            at(
                V::BoundaryMismatch,
                ISSUE,
                24,
                &[
                    "`POST /api/v4/projects/:id/issues`",
                    "`create_issue`",
                    "no boundary",
                ],
            ),
        ],
    ),
    // Routes (inferred and explicit boundaries, also_requires) and templates on a boundary
    // their permissions do not apply to.
    (
        "boundary_mismatch",
        &[at(
            V::BoundaryMismatch,
            ISSUE,
            26,
            &["`POST /api/v4/groups/:id/issues`", "`create_issue`"],
        )],
    ),
    (
        "boundary_mismatch_also_requires",
        &[at(
            V::BoundaryMismatch,
            MR,
            17,
            &["`GET /api/v4/groups/:id/merge_requests`", "`read_pipeline`"],
        )],
    ),
    (
        "boundary_mismatch_explicit",
        &[at(
            V::BoundaryMismatch,
            ISSUE,
            14,
            &[
                "`GET /api/v4/projects/:id/issues/:issue_iid`",
                "user",
                "`read_issue`",
            ],
        )],
    ),
    (
        "boundary_mismatch_template",
        &[at(
            V::BoundaryMismatch,
            "templates.yml",
            9,
            &["`ci`", "`create_pipeline`", "`user`"],
        )],
    ),
    // Duplicate routes: the same template, the same shape with other parameter names, and
    // a skipped route that a permission already lists.
    (
        "duplicate_route",
        &[at(
            V::DuplicateRoute,
            ISSUE,
            35,
            &[
                "`GET /api/v4/projects/:id/issues/:issue_iid`",
                "planning/issue.yml:14",
            ],
        )],
    ),
    (
        "duplicate_route_shape",
        &[at(
            V::DuplicateRoute,
            MR,
            26,
            &[
                "`GET /api/v4/projects/:project_id/merge_requests/:iid`",
                "code/merge_request.yml:14",
            ],
        )],
    ),
    (
        "duplicate_route_skipped",
        &[at(
            V::DuplicateRoute,
            "skipped_routes.yml",
            5,
            &[
                "`GET /api/v4/projects/:id/pipelines`",
                "ci_cd/pipeline.yml:12",
            ],
        )],
    ),
    // implies/requires cycles: through implies, through requires, and a permission implying
    // itself. (The cycle is not in backticks: see `LOADER_BUGS`.)
    (
        "cycle",
        &[at(
            V::Cycle,
            ISSUE,
            4,
            &["read_issue -> update_issue -> read_issue"],
        )],
    ),
    (
        "cycle_requires",
        &[at(
            V::Cycle,
            PIPELINE,
            4,
            &["read_pipeline -> cancel_pipeline -> read_pipeline"],
        )],
    ),
    (
        "cycle_self",
        &[at(
            V::Cycle,
            MR,
            4,
            &["read_merge_request -> read_merge_request"],
        )],
    ),
    (
        "unused_permission",
        &[at(V::UnusedPermission, ISSUE, 35, &["`delete_issue`"])],
    ),
    (
        "unknown_feature",
        &[at(V::UnknownFeature, MR, 22, &["`merge_request`"])],
    ),
    // A GraphQL field the catalog's schema does not have.
    (
        "invalid_graphql",
        &[at(V::InvalidGraphql, ISSUE, 18, &["`Project`", "`issuez`"])],
    ),
    (
        "unknown_skip_reason",
        &[at(
            V::UnknownSkipReason,
            "skipped_routes.yml",
            3,
            &["`public`", "public_endpoint"],
        )],
    ),
    // Legacy scopes naming a permission, boundary or action that does not exist.
    (
        "unknown_scope_permission",
        &[at(
            V::UnknownScopeTarget,
            "scopes.yml",
            10,
            &["`write_pipelines`", "`create_pipelines`"],
        )],
    ),
    (
        "unknown_scope_exclude",
        &[at(
            V::UnknownScopeTarget,
            "scopes.yml",
            11,
            &["`write_pipelines`", "`cancel_pipelines`"],
        )],
    ),
    (
        "unknown_scope_boundary",
        &[at(
            V::UnknownScopeTarget,
            "scopes.yml",
            4,
            &["`api`", "`namespace`"],
        )],
    ),
    (
        "unknown_scope_action",
        &[at(
            V::UnknownScopeTarget,
            "scopes.yml",
            7,
            &["`read_api`", "`view`"],
        )],
    ),
    // An unknown role on a permission's only boundary, which its route then lacks; and a
    // role with the wrong level.
    (
        "unknown_role",
        &[
            at(V::UnknownRole, ISSUE, 30, &["`reporterr`"]),
            at(
                V::BoundaryMismatch,
                ISSUE,
                34,
                &[
                    "`PUT /api/v4/projects/:id/issues/:issue_iid`",
                    "`update_issue`",
                    "no boundary",
                ],
            ),
        ],
    ),
    (
        "unknown_role_level",
        &[at(V::UnknownRole, "roles.yml", 6, &["`planner`", "25"])],
    ),
    (
        "unknown_job_token_policy",
        &[at(
            V::UnknownJobTokenPolicy,
            ISSUE,
            11,
            &["`read_workitems`"],
        )],
    ),
    (
        "unknown_job_token_policy_implies",
        &[at(
            V::UnknownJobTokenPolicy,
            "job_token_policies.yml",
            10,
            &["`read_pipeline`"],
        )],
    ),
    (
        "unknown_plan",
        &[at(V::UnknownPlan, MR, 23, &["`platinum`"])],
    ),
    // Route strings that are not `METHOD /path`, and boundaries a route cannot have.
    (
        "invalid_route",
        &[at(
            V::InvalidRoute,
            PIPELINE,
            13,
            &["`FETCH /api/v4/projects/:id/pipelines/:pipeline_id`"],
        )],
    ),
    (
        "invalid_route_path",
        &[at(
            V::InvalidRoute,
            PIPELINE,
            12,
            &["`GET api/v4/projects/:id/pipelines`"],
        )],
    ),
    (
        "invalid_route_skipped",
        &[at(V::InvalidRoute, "skipped_routes.yml", 5, &["`POST`"])],
    ),
    (
        "invalid_route_param",
        &[at(
            V::InvalidRoute,
            ISSUE,
            15,
            &[
                "`GET /api/v4/projects/:id/issues/:issue_iid`",
                "`:project_id`",
            ],
        )],
    ),
    (
        "invalid_route_boundary_type",
        &[at(V::InvalidRoute, ISSUE, 15, &["`namespace`"])],
    ),
    // YAML that does not parse, or does not have the catalog's shape.
    (
        "syntax",
        &[at(
            V::Syntax,
            ISSUE,
            20,
            &["mapping values are not allowed"],
        )],
    ),
    (
        "syntax_duplicate_key",
        &[at(V::Syntax, ISSUE, 11, &["duplicate key", "feature"])],
    ),
    (
        "unknown_field",
        &[at(
            V::Syntax,
            ISSUE,
            29,
            &["unknown field `boundries`", "`boundaries`"],
        )],
    ),
    // Names: defined twice, or not `<action>_<resource>` without an `action`.
    (
        "duplicate_permission",
        &[at(
            V::InvalidName,
            ISSUE,
            35,
            &["`read_issue`", "already defined at", "planning/issue.yml:4"],
        )],
    ),
    (
        "unnamed_action",
        &[at(
            V::InvalidName,
            ISSUE,
            19,
            &["`create_issues`", "`<action>_issue`", "`action`"],
        )],
    ),
    (
        "duplicate_feature",
        &[at(
            V::InvalidName,
            "features.yml",
            8,
            &["`issues`", "defined twice"],
        )],
    ),
    (
        "unknown_access",
        &[at(
            V::UnknownAccess,
            "templates.yml",
            4,
            &["`all_projects`", "`code_review`"],
        )],
    ),
    (
        "unknown_file",
        &[at(V::UnknownFile, "issue.yml", 1, &["category folder"])],
    ),
];

/// Defects the loader misses, places at the wrong line, or reports without naming what is
/// wrong in backticks. Each row is what it should report; `loader_bugs` fails on each
/// until the loader is fixed, and is ignored meanwhile.
const LOADER_BUGS: &[(&str, Expected, &str)] = &[
    (
        "missing_field",
        at(V::Syntax, ISSUE, 19, &["missing field `description`"]),
        "a missing field is placed at the first line that *has* that field (the resource's \
         `description:`, line 2), by `Builder::line_of_field`",
    ),
    (
        "unknown_field_in_route",
        at(V::Syntax, ISSUE, 16, &["unknown field `description`"]),
        "an unknown field is placed at the first line anywhere in the file that sets a key of \
         that name (line 2), not where it is unknown",
    ),
    (
        "unknown_field_in_flow_mapping",
        at(V::Syntax, ISSUE, 15, &["unknown field `parm`"]),
        "an unknown field inside a flow mapping (`{type: project, parm: id}`) is placed at line 1",
    ),
    (
        "syntax_wrong_type",
        at(V::Syntax, MR, 10, &["`public`"]),
        "`public: maybe` is reported as `value was not a boolean`, naming neither the field \
         nor the value",
    ),
    (
        "syntax_duplicate_key",
        at(V::Syntax, ISSUE, 11, &["`feature`"]),
        "a duplicate key is named in double quotes, with bare line:column positions",
    ),
    (
        "cycle",
        at(V::Cycle, ISSUE, 4, &["`read_issue`", "`update_issue`"]),
        "the permissions on a cycle are not in backticks",
    ),
    (
        "duplicate_role",
        at(V::InvalidName, "roles.yml", 7, &["`guest`"]),
        "a role defined twice in roles.yml is accepted (features, scopes, policies and \
         templates defined twice are refused)",
    ),
];

fn violations(name: &str) -> Result<(PathBuf, Vec<Violation>), String> {
    let dir = fixture(&format!("catalog/broken/{name}"));
    match load_dir(&dir) {
        Err(LoadError::Invalid(violations)) => Ok((dir, violations)),
        Err(e) => Err(format!("{name}: not `LoadError::Invalid` but {e}")),
        Ok(_) => Err(format!("{name}: loads without a violation")),
    }
}

fn matches(dir: &Path, v: &Violation, e: &Expected) -> bool {
    v.kind == e.kind && v.origin.file == dir.join(e.file) && v.origin.line == e.line
}

fn listed(violations: &[Violation]) -> String {
    violations
        .iter()
        .map(|v| format!("\n    {v}"))
        .collect::<String>()
}

/// Every message is lower case and has no final period.
fn style(v: &Violation) -> Option<String> {
    let m = &v.message;
    let first = m.chars().next()?;
    (first.is_uppercase() || m.ends_with('.'))
        .then(|| format!("message not lower case or with a final period: {v}"))
}

#[test]
fn each_broken_fixture_reports_exactly_its_violations() {
    let mut failures = Vec::new();
    for (name, expected) in BROKEN {
        let (dir, violations) = match violations(name) {
            Ok(found) => found,
            Err(failure) => {
                failures.push(failure);
                continue;
            }
        };
        let mut unmatched: Vec<&Violation> = violations.iter().collect();
        for e in *expected {
            let Some(i) = unmatched.iter().position(|v| matches(&dir, v, e)) else {
                failures.push(format!(
                    "{name}: no {:?} at {}:{}; got:{}",
                    e.kind,
                    e.file,
                    e.line,
                    listed(&violations)
                ));
                continue;
            };
            let v = unmatched.remove(i);
            for text in e.names {
                if !v.message.contains(text) {
                    failures.push(format!("{name}: the message does not name {text}: {v}"));
                }
            }
        }
        for v in unmatched {
            failures.push(format!("{name}: unexpected violation {v}"));
        }
        failures.extend(
            violations
                .iter()
                .filter_map(style)
                .map(|f| format!("{name}: {f}")),
        );
    }
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n"));
}

#[test]
#[ignore = "loader bugs, reported: run with --ignored once the loader is fixed"]
fn loader_bugs() {
    let mut failures = Vec::new();
    for (name, e, bug) in LOADER_BUGS {
        let found = violations(name).map(|(dir, violations)| {
            let ok = violations
                .iter()
                .any(|v| matches(&dir, v, e) && e.names.iter().all(|t| v.message.contains(t)));
            (ok, violations)
        });
        match found {
            Ok((true, _)) => {}
            Ok((false, violations)) => failures.push(format!(
                "{name}: {bug}\n  want {:?} at {}:{} naming {:?}; got:{}",
                e.kind,
                e.file,
                e.line,
                e.names,
                listed(&violations)
            )),
            Err(failure) => failures.push(format!("{failure}: {bug}")),
        }
    }
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n"));
}

/// The files of a fixture catalog, by path relative to its root.
fn files(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    let mut pending = vec![root.to_owned()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else {
                let relative = path.strip_prefix(root).unwrap().to_owned();
                files.insert(relative, std::fs::read(&path).unwrap());
            }
        }
    }
    files
}

#[test]
fn each_broken_fixture_is_the_valid_one_with_one_file_changed() {
    let valid = files(&fixture("catalog/valid"));
    let broken_root = fixture("catalog/broken");
    let mut names: Vec<String> = std::fs::read_dir(&broken_root)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut failures = Vec::new();
    for name in &names {
        let broken = files(&broken_root.join(name));
        let changed: Vec<String> = valid
            .keys()
            .chain(broken.keys().filter(|k| !valid.contains_key(*k)))
            .filter(|k| valid.get(*k) != broken.get(*k))
            .map(|k| k.display().to_string())
            .collect();
        if changed.len() != 1 {
            failures.push(format!(
                "{name}: {} files differ from valid/: {changed:?}",
                changed.len()
            ));
        }
        let known =
            BROKEN.iter().any(|(n, _)| n == name) || LOADER_BUGS.iter().any(|(n, _, _)| n == name);
        if !known {
            failures.push(format!("{name}: a broken fixture that no table lists"));
        }
    }
    for name in BROKEN
        .iter()
        .map(|(n, _)| *n)
        .chain(LOADER_BUGS.iter().map(|(n, _, _)| *n))
    {
        if !names.iter().any(|n| n == name) {
            failures.push(format!("{name}: listed, but there is no such fixture"));
        }
    }
    assert!(failures.is_empty(), "\n{}\n", failures.join("\n"));
}

/// Each kind once; the match fails to compile when a kind is added, so that it gets a
/// fixture too.
const ALL_KINDS: [V; 18] = [
    V::Syntax,
    V::UnknownFile,
    V::InvalidName,
    V::UndefinedPermission,
    V::MissingBoundary,
    V::BoundaryMismatch,
    V::InvalidRoute,
    V::DuplicateRoute,
    V::Cycle,
    V::UnusedPermission,
    V::UnknownFeature,
    V::UnknownRole,
    V::UnknownPlan,
    V::UnknownJobTokenPolicy,
    V::UnknownSkipReason,
    V::UnknownScopeTarget,
    V::UnknownAccess,
    V::InvalidGraphql,
];

const fn listed_in_all_kinds(kind: V) -> bool {
    match kind {
        V::Syntax
        | V::UnknownFile
        | V::InvalidName
        | V::UndefinedPermission
        | V::MissingBoundary
        | V::BoundaryMismatch
        | V::InvalidRoute
        | V::DuplicateRoute
        | V::Cycle
        | V::UnusedPermission
        | V::UnknownFeature
        | V::UnknownRole
        | V::UnknownPlan
        | V::UnknownJobTokenPolicy
        | V::UnknownSkipReason
        | V::UnknownScopeTarget
        | V::UnknownAccess
        | V::InvalidGraphql => true,
    }
}

#[test]
fn every_violation_kind_has_a_broken_fixture_of_its_own() {
    for kind in ALL_KINDS {
        assert!(listed_in_all_kinds(kind));
        assert!(
            BROKEN.iter().any(|(_, expected)| expected[0].kind == kind),
            "no fixture for {kind:?}"
        );
    }
}

#[test]
fn the_valid_fixture_loads() {
    let catalog = load_dir(&fixture("catalog/valid")).unwrap();
    let names: Vec<&str> = catalog
        .permissions
        .iter()
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(
        names,
        [
            "read_pipeline",
            "create_pipeline",
            "cancel_pipeline",
            "read_merge_request",
            "create_merge_request",
            "read_issue",
            "create_issue",
            "update_issue",
        ]
    );
    let cancel = catalog.permission_by_name("cancel_pipeline").unwrap();
    assert_eq!(
        (cancel.action.as_str(), cancel.category.as_str()),
        ("cancel", "ci_cd")
    );
    assert_eq!(catalog.routes.entries().len(), 16);
    assert_eq!(catalog.skipped_routes.len(), 2);
    assert_eq!(catalog.scopes.len(), 3);
    assert_eq!(catalog.job_token_policies.len(), 4);
    assert_eq!(catalog.templates.len(), 2);
    assert_eq!(catalog.roles.len(), 9);
}

#[test]
fn the_command_prints_each_violation_with_its_file_and_line() {
    let dir = fixture_arg("catalog/broken/unknown_role");
    let out = patrol(&["catalog", "--dir", &dir, "check"]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for line in [
        "planning/issue.yml:30: unknown role `reporterr` [unknown_role]",
        "planning/issue.yml:34: route `PUT /api/v4/projects/:id/issues/:issue_iid` acts on",
        "error: the catalog has 2 violation(s)",
    ] {
        assert!(stderr.contains(line), "no `{line}` in:\n{}", shown(&out));
    }
    assert!(out.stdout.is_empty(), "{}", shown(&out));

    // `--dir` may also follow the subcommand.
    let dir = fixture_arg("catalog/broken/cycle");
    let out = patrol(&["catalog", "check", "--dir", &dir]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("planning/issue.yml:4: implies/requires cycle"),
        "{}",
        shown(&out)
    );
}

#[test]
fn the_command_passes_the_valid_fixture() {
    let dir = fixture_arg("catalog/valid");
    let out = patrol(&["catalog", "--dir", &dir, "check"]);
    assert!(out.status.success(), "{}", shown(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "catalog ok: 8 permissions, 16 routes (2 skipped), 3 legacy scopes, 4 job token policies, 2 templates\n"
    );
}

#[test]
fn the_command_fails_on_a_directory_it_cannot_read() {
    let dir = fixture_arg("catalog/no_such_catalog");
    let out = patrol(&["catalog", "--dir", &dir, "check"]);
    assert_eq!(out.status.code(), Some(1), "{}", shown(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("cannot read the catalog at `") && stderr.contains("no_such_catalog`"),
        "{}",
        shown(&out)
    );
}
