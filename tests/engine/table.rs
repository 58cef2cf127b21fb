//! Hand-written cases over one small world: every reason, every access kind, the public
//! path, features, plans, confidentiality, admin mode, group enforcement and job tokens.
//! Each row is checked against the engine and the reference model.

use patrol::domain::{AccessKind, FeatureAccess, Plan, Visibility};
use patrol::engine::Reason::{self, *};

use crate::world::*;
use crate::{catalog, engine, model};

const NOW: i64 = 1_000_000;

fn user(id: u64, name: &str, blocked: bool, admin: bool) -> WUser {
    WUser {
        id,
        name: name.into(),
        blocked,
        admin,
    }
}

fn group(id: u64, parent: Option<u64>, path: &str, visibility: Visibility, plan: Plan) -> WGroup {
    WGroup {
        id,
        parent,
        path: path.into(),
        visibility,
        plan,
        policy: None,
    }
}

fn project(id: u64, owner: WOwner, path: &str, visibility: Visibility) -> WProject {
    WProject {
        id,
        owner,
        path: path.into(),
        visibility,
        features: vec![],
        job_scope: None,
    }
}

fn token(id: u64, user: u64, kind: WKind) -> WToken {
    WToken {
        id,
        user,
        revoked: false,
        expires_at: None,
        ips: vec![],
        kind,
    }
}

fn fine(
    access: AccessKind,
    projects: &[u64],
    groups: &[u64],
    permissions: &[&'static str],
) -> WKind {
    WKind::Fine(vec![WScope {
        access,
        projects: projects.to_vec(),
        groups: groups.to_vec(),
        permissions: permissions.to_vec(),
    }])
}

fn link(default_permissions: bool, policies: &[&'static str]) -> WLink {
    WLink {
        default_permissions,
        policies: policies.to_vec(),
    }
}

// Users
const ALICE: u64 = 1; // developer in acme, reporter on corp/secret, maintainer on corp/target
const BOB: u64 = 2; // admin, no memberships
const CAROL: u64 = 3; // blocked
const DAVE: u64 = 4; // no memberships
const ERIN: u64 = 5; // guest on acme/web/app

fn world() -> World {
    use Visibility::*;
    let users = vec![
        user(ALICE, "alice", false, false),
        user(BOB, "bob", false, true),
        user(CAROL, "carol", true, false),
        user(DAVE, "dave", false, false),
        user(ERIN, "erin", false, false),
    ];
    let mut corp = group(3, None, "corp", Private, Plan::Premium);
    corp.policy = Some((true, None));
    let mut later = group(4, None, "later", Internal, Plan::Free);
    later.policy = Some((true, Some(NOW + 100)));
    let groups = vec![
        group(1, None, "acme", Public, Plan::Ultimate),
        group(2, Some(1), "web", Public, Plan::Free),
        corp,
        later,
    ];
    let mut closed = project(11, WOwner::Group(2), "closed", Public);
    closed.features = vec![
        ("issues", FeatureAccess::Disabled),
        ("pipelines", FeatureAccess::Private),
    ];
    closed.job_scope = Some(WJobScope {
        inbound: false,
        fine_grained: true,
        projects: vec![],
        groups: vec![],
    });
    let mut secret = project(12, WOwner::Group(3), "secret", Private);
    secret.job_scope = Some(WJobScope {
        inbound: true,
        fine_grained: false,
        projects: vec![],
        groups: vec![(1, link(false, &[]))],
    });
    let mut target = project(16, WOwner::Group(3), "target", Private);
    target.job_scope = Some(WJobScope {
        inbound: true,
        fine_grained: true,
        projects: vec![(15, link(false, &["read_pipelines"]))],
        groups: vec![(1, link(false, &["admin_pipelines"]))],
    });
    let mut deploy = project(17, WOwner::Group(1), "deploy", Public);
    deploy.job_scope = Some(WJobScope {
        inbound: true,
        fine_grained: true,
        projects: vec![],
        groups: vec![(1, link(true, &[]))],
    });
    let projects = vec![
        project(10, WOwner::Group(2), "app", Public),
        closed,
        secret,
        project(13, WOwner::User(ALICE), "personal", Private),
        project(14, WOwner::Group(4), "tool", Internal),
        project(15, WOwner::Group(1), "ci", Public),
        target,
        deploy,
    ];
    let members = vec![
        (WNs::Group(1), ALICE, 30),
        (WNs::Project(12), ALICE, 20),
        (WNs::Project(16), ALICE, 40),
        (WNs::Project(10), ERIN, 10),
    ];
    let legacy = |scopes: &[&'static str]| WKind::Legacy(scopes.to_vec());
    use AccessKind::*;
    let tokens = vec![
        token(1, ALICE, legacy(&["api"])),
        token(2, ALICE, legacy(&["read_api"])),
        WToken {
            revoked: true,
            ..token(3, ALICE, legacy(&["api"]))
        },
        WToken {
            expires_at: Some(NOW),
            ..token(4, ALICE, legacy(&["api"]))
        },
        token(5, CAROL, legacy(&["api"])),
        WToken {
            ips: vec!["10.0.0.0/8".parse().unwrap()],
            ..token(6, ALICE, legacy(&["api"]))
        },
        token(
            7,
            ALICE,
            fine(
                AllMemberships,
                &[],
                &[],
                &[
                    "read_issue",
                    "update_issue",
                    "create_pipeline",
                    "read_security_report",
                ],
            ),
        ),
        token(
            8,
            ALICE,
            fine(
                SelectedMemberships,
                &[],
                &[2],
                &["read_issue", "push_repository"],
            ),
        ),
        token(
            9,
            ALICE,
            fine(
                PersonalProjects,
                &[],
                &[],
                &["read_issue", "delete_project"],
            ),
        ),
        token(10, ALICE, fine(User, &[], &[], &["read_user"])),
        token(
            11,
            BOB,
            fine(Instance, &[], &[], &["admin_mode", "read_setting"]),
        ),
        token(12, BOB, legacy(&["api"])),
        token(13, BOB, legacy(&["api", "admin_mode"])),
        token(14, ALICE, WKind::Job { project: 15 }),
        token(15, ALICE, WKind::Job { project: 10 }),
        token(
            16,
            DAVE,
            fine(AllMemberships, &[], &[], &["read_issue", "read_project"]),
        ),
        token(
            17,
            ALICE,
            fine(SelectedMemberships, &[14], &[], &["read_project"]),
        ),
        token(18, DAVE, legacy(&["api"])),
        token(
            19,
            ALICE,
            fine(AllMemberships, &[], &[], &["read_security_report"]),
        ),
        token(20, ERIN, legacy(&["api"])),
        token(21, ALICE, legacy(&["api", "admin_mode"])),
        WToken {
            revoked: true,
            ..token(22, ALICE, WKind::Job { project: 15 })
        },
        token(23, CAROL, WKind::Job { project: 15 }),
    ];
    World {
        users,
        groups,
        projects,
        members,
        tokens,
    }
}

struct Row {
    name: &'static str,
    request: WRequest,
    expect: (Reason, Option<&'static str>),
}

fn ask(token: Option<u64>, permission: &str, boundary: WBoundary) -> WRequest {
    WRequest {
        token,
        action: WAction::Permission(permission.into()),
        boundary: Some(boundary),
        confidential: false,
        author: None,
        assignees: vec![],
        ip: None,
        now: NOW - 1,
    }
}

fn row(name: &'static str, t: u64, permission: &str, boundary: WBoundary, expect: Reason) -> Row {
    Row {
        name,
        request: ask(Some(t), permission, boundary),
        expect: (expect, None),
    }
}

fn failing(mut r: Row, permission: &'static str) -> Row {
    r.expect.1 = Some(permission);
    r
}

fn route(name: &'static str, t: u64, method: &'static str, path: &str, expect: Reason) -> Row {
    let mut request = ask(Some(t), "", WBoundary::Instance);
    request.action = WAction::Route(method, path.into());
    request.boundary = None;
    Row {
        name,
        request,
        expect: (expect, None),
    }
}

fn rows() -> Vec<Row> {
    use WBoundary::*;
    let p = ProjectId;
    let mut rows = vec![
        // 1-5: the credential
        Row {
            name: "invalid credential",
            request: ask(None, "read_issue", p(10)),
            expect: (TokenInvalid, None),
        },
        row("unknown token id", 999, "read_issue", p(10), TokenInvalid),
        row("revoked", 3, "read_issue", p(10), TokenRevoked),
        row("blocked user", 5, "read_issue", p(10), UserBlocked),
        row(
            "ip list without client ip",
            6,
            "read_issue",
            p(10),
            IpNotAllowed,
        ),
        // 6-8: permission, route, boundary
        row(
            "unknown permission",
            1,
            "read_nothing",
            p(10),
            UnknownPermission,
        ),
        route(
            "unknown route",
            1,
            "GET",
            "/api/v4/projects/10/nothing",
            UnknownRoute,
        ),
        row(
            "unknown project id",
            1,
            "read_issue",
            p(999),
            BoundaryNotFound,
        ),
        row(
            "unknown project path",
            1,
            "read_issue",
            ProjectPath("acme/none".into()),
            BoundaryNotFound,
        ),
        row(
            "a project path is not a group",
            1,
            "read_group",
            GroupPath("acme/web/app".into()),
            BoundaryNotFound,
        ),
        row(
            "project path",
            1,
            "read_issue",
            ProjectPath("acme/web/app".into()),
            Granted,
        ),
        row(
            "group path",
            1,
            "read_group",
            GroupPath("acme/web".into()),
            Granted,
        ),
        failing(
            row(
                "update_issue on a group",
                1,
                "update_issue",
                GroupId(1),
                BoundaryMismatch,
            ),
            "update_issue",
        ),
        // 9: top-level enforcement
        row(
            "legacy token in an enforcing group",
            1,
            "read_project",
            p(12),
            LegacyTokenForbidden,
        ),
        row(
            "fine-grained token in an enforcing group",
            7,
            "read_issue",
            p(12),
            Granted,
        ),
        row(
            "enforcement not yet in force",
            1,
            "read_project",
            p(14),
            Granted,
        ),
        // 11-12: the token's grant
        row(
            "selected group covers a project below a subgroup",
            8,
            "read_issue",
            p(10),
            Granted,
        ),
        row(
            "selected group: push with developer role",
            8,
            "push_repository",
            p(10),
            Granted,
        ),
        failing(
            row(
                "selected group does not cover a sibling",
                8,
                "push_repository",
                p(15),
                OutsideTokenBoundary,
            ),
            "push_repository",
        ),
        failing(
            row(
                "outside a private project",
                8,
                "read_issue",
                p(12),
                OutsideTokenBoundary,
            ),
            "read_issue",
        ),
        row(
            "personal projects cover the user's own",
            9,
            "delete_project",
            p(13),
            Granted,
        ),
        failing(
            row(
                "personal projects do not cover a group's",
                9,
                "delete_project",
                p(10),
                OutsideTokenBoundary,
            ),
            "delete_project",
        ),
        row("user access", 10, "read_user", User, Granted),
        failing(
            row(
                "user access does not cover projects",
                10,
                "read_issue",
                p(12),
                OutsideTokenBoundary,
            ),
            "read_issue",
        ),
        row(
            "instance access with admin mode",
            11,
            "read_setting",
            Instance,
            Granted,
        ),
        failing(
            row(
                "a scope covers, the permission is missing",
                7,
                "delete_project",
                p(10),
                PermissionNotGranted,
            ),
            "delete_project",
        ),
        failing(
            row(
                "read_api cannot write",
                2,
                "update_issue",
                p(10),
                PermissionNotGranted,
            ),
            "update_issue",
        ),
        row(
            "implies: update_issue grants read_issue",
            7,
            "read_issue",
            p(12),
            Granted,
        ),
        failing(
            row(
                "requires names the required permission",
                19,
                "read_security_report",
                p(11),
                PermissionNotGranted,
            ),
            "read_pipeline",
        ),
        failing(
            row(
                "api does not grant admin mode",
                12,
                "read_setting",
                Instance,
                PermissionNotGranted,
            ),
            "admin_mode",
        ),
        // the public path
        row(
            "visitor reads a public project",
            16,
            "read_issue",
            p(10),
            Granted,
        ),
        failing(
            row(
                "visitor cannot read an internal project",
                16,
                "read_project",
                p(14),
                OutsideTokenBoundary,
            ),
            "read_project",
        ),
        row(
            "signed-in reads an internal project",
            17,
            "read_project",
            p(14),
            Granted,
        ),
        row(
            "legacy token reads a public project it is not a member of",
            18,
            "read_issue",
            p(10),
            Granted,
        ),
        // 13-16
        failing(
            row("feature disabled", 1, "read_issue", p(11), FeatureDisabled),
            "read_issue",
        ),
        failing(
            row(
                "feature private, not a member",
                18,
                "read_pipeline",
                p(11),
                FeatureDisabled,
            ),
            "read_pipeline",
        ),
        row(
            "feature private, a member",
            1,
            "read_pipeline",
            p(11),
            Granted,
        ),
        failing(
            row(
                "plan below the permission's",
                7,
                "read_security_report",
                p(12),
                PlanRequired,
            ),
            "read_security_report",
        ),
        row(
            "ultimate plan, developer",
            7,
            "read_security_report",
            p(10),
            Granted,
        ),
        failing(
            row(
                "developer cannot delete the project",
                1,
                "delete_project",
                p(10),
                InsufficientRole,
            ),
            "delete_project",
        ),
        failing(
            row(
                "non-member on a private project",
                18,
                "read_project",
                p(13),
                InsufficientRole,
            ),
            "read_project",
        ),
        failing(
            row(
                "admin without admin mode",
                12,
                "delete_project",
                p(10),
                InsufficientRole,
            ),
            "delete_project",
        ),
        row(
            "admin with admin mode is owner",
            13,
            "delete_project",
            p(10),
            Granted,
        ),
        failing(
            row(
                "admin mode needs an admin",
                21,
                "read_setting",
                Instance,
                InsufficientRole,
            ),
            "read_setting",
        ),
        // job tokens
        row(
            "job token in its own project",
            14,
            "read_pipeline",
            p(15),
            Granted,
        ),
        failing(
            row(
                "job token: permission without policy",
                14,
                "push_repository",
                p(15),
                PermissionNotGranted,
            ),
            "push_repository",
        ),
        row(
            "job token: allowlisted project link",
            14,
            "read_pipeline",
            p(16),
            Granted,
        ),
        failing(
            row(
                "job token: project link overrides group link",
                14,
                "create_pipeline",
                p(16),
                JobTokenScopeDenied,
            ),
            "create_pipeline",
        ),
        row(
            "job token: ancestor group link, admin implies read",
            15,
            "read_pipeline",
            p(16),
            Granted,
        ),
        row(
            "job token: group link admin policy",
            15,
            "create_pipeline",
            p(16),
            Granted,
        ),
        row(
            "job token: fine-grained off, allowlist only",
            14,
            "read_pipeline",
            p(12),
            Granted,
        ),
        failing(
            row(
                "job token: the user's role still bounds",
                14,
                "create_pipeline",
                p(12),
                InsufficientRole,
            ),
            "create_pipeline",
        ),
        row(
            "job token: not allowlisted",
            14,
            "read_pipeline",
            p(14),
            JobTokenScopeDenied,
        ),
        row(
            "job token: inbound scope disabled",
            14,
            "read_pipeline",
            p(11),
            Granted,
        ),
        row(
            "job token: default permissions link",
            14,
            "create_pipeline",
            p(17),
            Granted,
        ),
        row(
            "job token: group boundary",
            14,
            "read_issue",
            GroupId(1),
            JobTokenScopeDenied,
        ),
        row(
            "job token: job finished",
            22,
            "read_pipeline",
            p(15),
            TokenRevoked,
        ),
        row(
            "job token: user blocked",
            23,
            "read_pipeline",
            p(15),
            UserBlocked,
        ),
        // routes
        route(
            "route with an encoded full path",
            1,
            "GET",
            "/api/v4/projects/acme%2Fweb%2Fapp/issues?state=opened",
            Granted,
        ),
        route("group route", 1, "GET", "/api/v4/groups/1/issues/", Granted),
        route("skipped route", 2, "GET", "/api/v4/version", Granted),
        route(
            "route on a missing project",
            1,
            "GET",
            "/api/v4/projects/999/issues",
            BoundaryNotFound,
        ),
    ];
    let mut r = route(
        "route also_requires",
        7,
        "POST",
        "/api/v4/projects/10/pipeline/retry",
        PermissionNotGranted,
    );
    r.expect.1 = Some("push_repository");
    rows.push(r);

    let mut expired = row("expired at midnight", 4, "read_issue", p(10), TokenExpired);
    expired.request.now = NOW;
    rows.push(expired);
    let mut before = row("not yet expired", 4, "read_issue", p(10), Granted);
    before.request.now = NOW - 1;
    rows.push(before);
    let mut ip_ok = row("ip inside the list", 6, "read_issue", p(10), Granted);
    ip_ok.request.ip = Some("10.1.2.3".parse().unwrap());
    rows.push(ip_ok);
    let mut ip_bad = row("ip outside the list", 6, "read_issue", p(10), IpNotAllowed);
    ip_bad.request.ip = Some("203.0.113.7".parse().unwrap());
    rows.push(ip_bad);
    let mut enforced = row(
        "enforcement in force",
        1,
        "read_project",
        p(14),
        LegacyTokenForbidden,
    );
    enforced.request.now = NOW + 100;
    rows.push(enforced);

    let confidential = |name, t, author: Option<u64>, assignees: &[u64], expect| {
        let mut r = row(name, t, "read_issue", p(10), expect);
        r.request.confidential = true;
        r.request.author = author;
        r.request.assignees = assignees.to_vec();
        r
    };
    rows.push(confidential(
        "confidential: guest",
        20,
        None,
        &[],
        ConfidentialResource,
    ));
    rows.push(confidential(
        "confidential: guest author",
        20,
        Some(ERIN),
        &[],
        Granted,
    ));
    rows.push(confidential(
        "confidential: guest assignee",
        20,
        None,
        &[ALICE, ERIN],
        Granted,
    ));
    rows.push(confidential(
        "confidential: developer",
        1,
        None,
        &[],
        Granted,
    ));
    rows.push(confidential(
        "confidential: visitor, even as author",
        16,
        Some(DAVE),
        &[],
        ConfidentialResource,
    ));
    rows
}

#[test]
fn table_of_decisions() {
    let catalog = catalog();
    let world = world();
    let snapshot = snapshot(&catalog, &world);
    let mut failures = Vec::new();
    for row in rows() {
        let decision = engine(&snapshot, &row.request);
        let failed = decision
            .failed
            .map(|id| catalog.permission(id).name.clone());
        let got = (decision.reason, failed.as_deref());
        if got != row.expect {
            failures.push(format!(
                "{}: engine said {:?}, expected {:?}",
                row.name, got, row.expect
            ));
        }
        let (reason, failed) = model::decide(&catalog, &world, &row.request);
        if (reason, failed.as_deref()) != row.expect {
            failures.push(format!(
                "{}: model said {:?}, expected {:?}",
                row.name,
                (reason, failed),
                row.expect
            ));
        }
        if decision.allowed && decision.required.is_empty() && row.name != "skipped route" {
            failures.push(format!(
                "{}: allowed without naming its required permissions",
                row.name
            ));
        }
        assert!(!decision.message(&catalog).is_empty());
    }
    assert!(
        failures.is_empty(),
        "{} row(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn table_reaches_every_reason() {
    let reached: std::collections::BTreeSet<Reason> = rows().iter().map(|r| r.expect.0).collect();
    let missing: Vec<_> = Reason::ALL
        .iter()
        .filter(|r| !reached.contains(r))
        .collect();
    assert!(missing.is_empty(), "no row for {missing:?}");
}
