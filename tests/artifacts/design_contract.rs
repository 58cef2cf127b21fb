use patrol::catalog::Permission;
use patrol::domain::{AccessLevel, BoundaryKind, MinRole};

use crate::shipped;

fn permission(name: &str) -> &'static Permission {
    shipped()
        .permission_by_name(name)
        .unwrap_or_else(|| panic!("the catalog must define `{name}` (DESIGN.md section 3)"))
}

const P: BoundaryKind = BoundaryKind::Project;
const G: BoundaryKind = BoundaryKind::Group;
const U: BoundaryKind = BoundaryKind::User;
const I: BoundaryKind = BoundaryKind::Instance;

fn level(l: AccessLevel) -> MinRole {
    MinRole::Level(l)
}

/// A row of the table of DESIGN.md section 3: name, boundaries, minimum role, feature, public.
type Row = (
    &'static str,
    &'static [BoundaryKind],
    MinRole,
    Option<&'static str>,
    bool,
);

#[test]
fn design_table_permissions_have_their_boundaries_roles_features_and_visibility() {
    use AccessLevel as L;
    let rows: &[Row] = &[
        ("read_project", &[P], level(L::GUEST), None, true),
        ("delete_project", &[P], level(L::OWNER), None, false),
        ("read_group", &[G], level(L::GUEST), None, true),
        ("read_issue", &[P, G], level(L::GUEST), Some("issues"), true),
        ("create_issue", &[P], level(L::GUEST), Some("issues"), false),
        (
            "update_issue",
            &[P],
            level(L::REPORTER),
            Some("issues"),
            false,
        ),
        ("delete_issue", &[P], level(L::OWNER), Some("issues"), false),
        (
            "read_merge_request",
            &[P, G],
            level(L::REPORTER),
            Some("merge_requests"),
            true,
        ),
        (
            "create_merge_request",
            &[P],
            level(L::DEVELOPER),
            Some("merge_requests"),
            false,
        ),
        (
            "read_repository",
            &[P],
            level(L::REPORTER),
            Some("repository"),
            true,
        ),
        (
            "push_repository",
            &[P],
            level(L::DEVELOPER),
            Some("repository"),
            false,
        ),
        (
            "read_pipeline",
            &[P],
            level(L::REPORTER),
            Some("pipelines"),
            true,
        ),
        (
            "create_pipeline",
            &[P],
            level(L::DEVELOPER),
            Some("pipelines"),
            false,
        ),
        (
            "read_job",
            &[P],
            level(L::REPORTER),
            Some("pipelines"),
            true,
        ),
        (
            "cancel_job",
            &[P],
            level(L::DEVELOPER),
            Some("pipelines"),
            false,
        ),
        ("read_ci_variable", &[P], level(L::MAINTAINER), None, false),
        ("read_member", &[P, G], level(L::GUEST), None, true),
        ("read_user", &[U], level(L::NONE), None, false),
        (
            "read_personal_access_token",
            &[U],
            level(L::NONE),
            None,
            false,
        ),
        (
            "rotate_personal_access_token",
            &[U],
            level(L::NONE),
            None,
            false,
        ),
        (
            "revoke_personal_access_token",
            &[U],
            level(L::NONE),
            None,
            false,
        ),
        ("admin_mode", &[I], MinRole::Admin, None, false),
    ];
    for &(name, boundaries, min, feature, public) in rows {
        let p = permission(name);
        let actual: Vec<BoundaryKind> = p.boundary_kinds().collect();
        assert_eq!(actual, boundaries, "{name}: boundaries");
        for &b in boundaries {
            assert_eq!(p.min_role(b), Some(min), "{name}: minimum role on {b}");
        }
        let actual_feature = p.feature.map(|f| shipped().feature(f).name.as_str());
        assert_eq!(actual_feature, feature, "{name}: feature");
        assert_eq!(p.public, public, "{name}: public");
    }
}

/// read_deployment ... read_terraform_state: project, reporter, their own feature, not public.
#[test]
fn design_table_reporter_reads_are_project_only_and_private() {
    for name in [
        "read_deployment",
        "read_environment",
        "read_package",
        "read_release",
        "read_secure_file",
        "read_terraform_state",
    ] {
        let p = permission(name);
        assert_eq!(
            p.boundary_kinds().collect::<Vec<_>>(),
            [P],
            "{name}: boundaries"
        );
        assert_eq!(
            p.min_role(P),
            Some(level(AccessLevel::REPORTER)),
            "{name}: minimum role"
        );
        assert!(!p.public, "{name}: must not be public");
    }
}

/// Every create_/update_/delete_/cancel_/push_ permission implies the read_ of its resource.
#[test]
fn writes_imply_the_read_of_their_resource() {
    let catalog = shipped();
    for p in &catalog.permissions {
        if !["create", "update", "delete", "cancel", "push"].contains(&p.action.as_str()) {
            continue;
        }
        let read = format!("read_{}", p.resource);
        let read = catalog
            .permission_id(&read)
            .unwrap_or_else(|| panic!("{}: its resource has no `{read}`", p.name));
        assert!(
            p.implied.contains(read),
            "{} must imply read_{}",
            p.name,
            p.resource
        );
    }
    let update_issue = permission("update_issue");
    assert!(update_issue.implied.contains(permission("read_issue").id));
}

/// The legacy scope mapping lives in the catalog and keeps GitLab's meaning.
#[test]
fn legacy_scopes_keep_their_meaning() {
    let catalog = shipped();
    for name in [
        "api",
        "read_api",
        "read_user",
        "read_repository",
        "write_repository",
        "read_registry",
        "write_registry",
        "create_runner",
        "manage_runner",
        "k8s_proxy",
        "self_rotate",
        "sudo",
        "admin_mode",
        "ai_features",
    ] {
        assert!(
            catalog.scope(name).is_some(),
            "legacy scope `{name}` is missing"
        );
    }
    let scope = |name: &str| &catalog.scope(name).unwrap().permissions;
    for p in &catalog.permissions {
        let on_namespace_or_user = [P, G, U].iter().any(|&b| p.min_role(b).is_some());
        if on_namespace_or_user {
            assert!(scope("api").contains(p.id), "`api` must grant {}", p.name);
        }
        if p.action == "read" {
            assert!(
                scope("read_api").contains(p.id),
                "`read_api` must grant {}",
                p.name
            );
        }
    }
    let names = |name: &str| -> Vec<&str> {
        scope(name)
            .iter()
            .map(|id| catalog.permission(id).name.as_str())
            .collect()
    };
    assert_eq!(names("read_repository"), ["read_repository"]);
    let mut write = names("write_repository");
    write.sort_unstable();
    assert_eq!(write, ["push_repository", "read_repository"]);
    assert_eq!(names("self_rotate"), ["rotate_personal_access_token"]);
    assert!(names("admin_mode").contains(&"admin_mode"));
    assert!(
        !scope("api").contains(permission("admin_mode").id),
        "`api` must not grant admin mode"
    );
    for id in scope("read_api").iter() {
        let p = catalog.permission(id);
        assert_eq!(
            p.action, "read",
            "`read_api` must grant reads only, not {}",
            p.name
        );
    }
}
