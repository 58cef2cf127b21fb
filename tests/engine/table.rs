//! Hand-written cases over one small world: every reason, every access kind, the public
//! path, implies and requires, features, plans, confidentiality, admin mode, group
//! enforcement, job tokens and routes. Each row is checked against the engine and the
//! reference model, and a failure names the row.

use patrol::domain::{AccessKind, FeatureAccess, Plan, Visibility};
use patrol::engine::Reason::{self, *};

use crate::world::*;
use crate::{catalog, engine, model};

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
        deleted: false,
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
        deleted: false,
    }
}

fn member(ns: WNs, user: u64, level: u8) -> WMember {
    WMember { ns, user, level }
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

fn scope(
    access: AccessKind,
    projects: &[u64],
    groups: &[u64],
    permissions: &[&'static str],
) -> WScope {
    WScope {
        access,
        projects: projects.to_vec(),
        groups: groups.to_vec(),
        permissions: permissions.to_vec(),
    }
}

fn fine(
    access: AccessKind,
    projects: &[u64],
    groups: &[u64],
    permissions: &[&'static str],
) -> WKind {
    WKind::Fine(vec![scope(access, projects, groups, permissions)])
}

fn legacy(scopes: &[&'static str]) -> WKind {
    WKind::Legacy(scopes.to_vec())
}

fn link(default_permissions: bool, policies: &[&'static str]) -> WLink {
    WLink {
        default_permissions,
        policies: policies.to_vec(),
    }
}

// Users
/// Developer in acme, reporter on corp/secret, maintainer on corp/target, owner of
/// alice/personal.
const ALICE: u64 = 1;
/// An admin without memberships.
const BOB: u64 = 2;
/// Blocked.
const CAROL: u64 = 3;
/// No memberships.
const DAVE: u64 = 4;
/// Guest on acme/web/app.
const ERIN: u64 = 5;
/// Reporter on acme/web/app, planner in acme.
const FRANK: u64 = 6;
/// Not in the directory.
const NOBODY: u64 = 77;

// Groups
const ACME: u64 = 1; // public, ultimate
const WEB: u64 = 2; // acme/web, public, free (a subgroup's plan does not count)
const CORP: u64 = 3; // private, premium, enforces fine-grained tokens
const LATER: u64 = 4; // internal, free, enforces from NOW + 100
const DEEP: u64 = 5; // acme/web/deep
const GONE: u64 = 6; // deleted
const TEAM: u64 = 7; // corp/team
const LAX: u64 = 8; // public, a policy that does not enforce
const SHARED: u64 = 10; // private; the same number as project acme/web/app

// Projects
const APP: u64 = 10; // acme/web/app, public
const CLOSED: u64 = 11; // acme/web/closed: issues disabled, pipelines private, inbound off
const SECRET: u64 = 12; // corp/secret, allowlists acme, fine-grained off
const PERSONAL: u64 = 13; // alice/personal, private
const TOOL: u64 = 14; // later/tool, internal
const CI: u64 = 15; // acme/ci, public
const TARGET: u64 = 16; // corp/target: CI read_pipelines, acme admin_pipelines
const DEPLOY: u64 = 17; // acme/deploy: acme with default permissions
const INNER: u64 = 18; // acme/web/deep/inner, public
const DROPPED: u64 = 19; // acme/dropped, deleted
const SVC: u64 = 20; // corp/team/svc, private
const OPEN: u64 = 21; // lax/open, public
const OWN: u64 = 22; // dave/own, public, allowlists nothing

fn world() -> World {
    use AccessKind::*;
    use Visibility::*;
    let users = vec![
        user(ALICE, "alice", false, false),
        user(BOB, "bob", false, true),
        user(CAROL, "carol", true, false),
        user(DAVE, "dave", false, false),
        user(ERIN, "erin", false, false),
        user(FRANK, "frank", false, false),
    ];
    let mut corp = group(CORP, None, "corp", Private, Plan::Premium);
    corp.policy = Some(WPolicy {
        enforce: true,
        after: None,
    });
    let mut later = group(LATER, None, "later", Internal, Plan::Free);
    later.policy = Some(WPolicy {
        enforce: true,
        after: Some(NOW + 100),
    });
    let mut lax = group(LAX, None, "lax", Public, Plan::Free);
    lax.policy = Some(WPolicy {
        enforce: false,
        after: None,
    });
    let mut gone = group(GONE, None, "gone", Public, Plan::Free);
    gone.deleted = true;
    let groups = vec![
        group(ACME, None, "acme", Public, Plan::Ultimate),
        group(WEB, Some(ACME), "web", Public, Plan::Free),
        corp,
        later,
        group(DEEP, Some(WEB), "deep", Public, Plan::Free),
        gone,
        group(TEAM, Some(CORP), "team", Private, Plan::Ultimate),
        lax,
        group(SHARED, None, "shared", Private, Plan::Free),
    ];

    let mut closed = project(CLOSED, WOwner::Group(WEB), "closed", Public);
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
    let mut secret = project(SECRET, WOwner::Group(CORP), "secret", Private);
    secret.job_scope = Some(WJobScope {
        inbound: true,
        fine_grained: false,
        projects: vec![],
        groups: vec![(ACME, link(false, &[]))],
    });
    let mut target = project(TARGET, WOwner::Group(CORP), "target", Private);
    target.job_scope = Some(WJobScope {
        inbound: true,
        fine_grained: true,
        projects: vec![(CI, link(false, &["read_pipelines"]))],
        groups: vec![(ACME, link(false, &["admin_pipelines", "read_work_items"]))],
    });
    let mut deploy = project(DEPLOY, WOwner::Group(ACME), "deploy", Public);
    deploy.job_scope = Some(WJobScope {
        inbound: true,
        fine_grained: true,
        projects: vec![],
        groups: vec![(ACME, link(true, &[]))],
    });
    let mut dropped = project(DROPPED, WOwner::Group(ACME), "dropped", Public);
    dropped.deleted = true;
    let projects = vec![
        project(APP, WOwner::Group(WEB), "app", Public),
        closed,
        secret,
        project(PERSONAL, WOwner::User(ALICE), "personal", Private),
        project(TOOL, WOwner::Group(LATER), "tool", Internal),
        project(CI, WOwner::Group(ACME), "ci", Public),
        target,
        deploy,
        project(INNER, WOwner::Group(DEEP), "inner", Public),
        dropped,
        project(SVC, WOwner::Group(TEAM), "svc", Private),
        project(OPEN, WOwner::Group(LAX), "open", Public),
        project(OWN, WOwner::User(DAVE), "own", Public),
    ];
    let members = vec![
        member(WNs::Group(ACME), ALICE, 30),
        member(WNs::Project(SECRET), ALICE, 20),
        member(WNs::Project(TARGET), ALICE, 40),
        member(WNs::Project(SVC), ALICE, 30),
        member(WNs::Project(APP), ERIN, 10),
        member(WNs::Project(APP), FRANK, 20),
        member(WNs::Group(ACME), FRANK, 15),
    ];
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
            ips: vec![
                "10.0.0.0/8".parse().unwrap(),
                "2001:db8::/32".parse().unwrap(),
            ],
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
                &[WEB],
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
        token(14, ALICE, WKind::Job { project: CI }),
        token(15, ALICE, WKind::Job { project: APP }),
        token(
            16,
            DAVE,
            fine(AllMemberships, &[], &[], &["read_issue", "read_project"]),
        ),
        token(
            17,
            ALICE,
            fine(SelectedMemberships, &[TOOL], &[], &["read_project"]),
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
            ..token(22, ALICE, WKind::Job { project: CI })
        },
        token(23, CAROL, WKind::Job { project: CI }),
        token(
            24,
            ALICE,
            fine(
                SelectedMemberships,
                &[],
                &[ACME],
                &["read_issue", "push_repository"],
            ),
        ),
        token(25, ALICE, WKind::Job { project: DROPPED }),
        token(26, NOBODY, legacy(&["api"])),
        token(27, DAVE, fine(Instance, &[], &[], &["read_statistic"])),
        token(28, BOB, fine(Instance, &[], &[], &["read_audit_event"])),
        token(29, FRANK, legacy(&["api"])),
        token(
            30,
            ALICE,
            fine(
                AllMemberships,
                &[],
                &[],
                &["read_vulnerability", "read_security_report"],
            ),
        ),
        token(
            31,
            BOB,
            WKind::Fine(vec![
                scope(SelectedMemberships, &[APP], &[], &["delete_project"]),
                scope(Instance, &[], &[], &["admin_mode"]),
            ]),
        ),
        token(
            32,
            BOB,
            fine(SelectedMemberships, &[APP], &[], &["delete_project"]),
        ),
        token(
            33,
            ALICE,
            fine(AllMemberships, &[], &[], &["read_variable"]),
        ),
        token(34, ALICE, legacy(&["read_repository"])),
        token(35, ALICE, legacy(&["write_repository"])),
        token(36, DAVE, WKind::Job { project: OWN }),
        token(
            37,
            ALICE,
            WKind::Fine(vec![
                scope(SelectedMemberships, &[APP], &[], &["create_pipeline"]),
                scope(AllMemberships, &[], &[], &["push_repository"]),
            ]),
        ),
        token(38, DAVE, fine(AllMemberships, &[], &[], &["read_group"])),
        token(39, FRANK, WKind::Job { project: APP }),
        token(
            40,
            ALICE,
            fine(SelectedMemberships, &[], &[GONE], &["read_issue"]),
        ),
    ];
    World {
        users,
        groups,
        projects,
        members,
        tokens,
        history: false,
    }
}

struct Row {
    name: &'static str,
    request: WRequest,
    expect: (Reason, Option<&'static str>),
}

impl Row {
    /// The required permission the decision should name as failed.
    fn failing(mut self, permission: &'static str) -> Self {
        self.expect.1 = Some(permission);
        self
    }

    fn at(mut self, now: i64) -> Self {
        self.request.now = now;
        self
    }

    fn from(mut self, ip: &str) -> Self {
        self.request.ip = Some(ip.parse().unwrap());
        self
    }

    fn confidential(mut self, author: Option<u64>, assignees: &[u64]) -> Self {
        self.request.confidential = true;
        self.request.author = author;
        self.request.assignees = assignees.to_vec();
        self
    }
}

fn ask(token: Option<u64>, action: WAction, boundary: Option<WBoundary>) -> WRequest {
    WRequest {
        token,
        action,
        boundary,
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
        request: ask(
            Some(t),
            WAction::Permission(permission.into()),
            Some(boundary),
        ),
        expect: (expect, None),
    }
}

fn route(name: &'static str, t: u64, method: &'static str, path: &str, expect: Reason) -> Row {
    Row {
        name,
        request: ask(Some(t), WAction::Route(method, path.into()), None),
        expect: (expect, None),
    }
}

#[expect(clippy::too_many_lines, reason = "one table")]
fn rows() -> Vec<Row> {
    use WBoundary::*;
    let p = ProjectId;
    let g = GroupId;
    vec![
        // 1-5: the credential
        Row {
            name: "invalid credential",
            request: ask(None, WAction::Permission("read_issue".into()), Some(p(APP))),
            expect: (TokenInvalid, None),
        },
        row("unknown token id", 999, "read_issue", p(APP), TokenInvalid),
        row(
            "job token of a deleted project",
            25,
            "read_pipeline",
            p(CI),
            TokenInvalid,
        ),
        row("revoked", 3, "read_issue", p(APP), TokenRevoked),
        row(
            "job token: job finished",
            22,
            "read_pipeline",
            p(CI),
            TokenRevoked,
        ),
        row("expired at midnight", 4, "read_issue", p(APP), TokenExpired).at(NOW),
        row("not yet expired", 4, "read_issue", p(APP), Granted).at(NOW - 1),
        row("blocked user", 5, "read_issue", p(APP), UserBlocked),
        row("unknown user", 26, "read_issue", p(APP), UserBlocked),
        row(
            "job token: user blocked",
            23,
            "read_pipeline",
            p(CI),
            UserBlocked,
        ),
        row(
            "ip list without a client ip",
            6,
            "read_issue",
            p(APP),
            IpNotAllowed,
        ),
        row("ip inside the list", 6, "read_issue", p(APP), Granted).from("10.1.2.3"),
        row("ipv6 inside the list", 6, "read_issue", p(APP), Granted).from("2001:db8::7"),
        row("ip outside the list", 6, "read_issue", p(APP), IpNotAllowed).from("203.0.113.7"),
        // 6-8: permission, route, boundary
        row(
            "unknown permission",
            1,
            "read_nothing",
            p(APP),
            UnknownPermission,
        ),
        route(
            "unknown route",
            1,
            "GET",
            "/api/v4/projects/10/nothing",
            UnknownRoute,
        ),
        route(
            "known path, unknown method",
            1,
            "POST",
            "/api/v4/user",
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
            "deleted project",
            1,
            "read_issue",
            p(DROPPED),
            BoundaryNotFound,
        ),
        row("deleted group", 1, "read_issue", g(GONE), BoundaryNotFound),
        row(
            "a boundary nobody named",
            1,
            "read_issue",
            Unresolved,
            BoundaryUnresolved,
        ),
        row(
            "deleted group by path",
            1,
            "read_issue",
            GroupPath("gone".into()),
            BoundaryNotFound,
        ),
        Row {
            name: "a permission without a boundary",
            request: ask(Some(1), WAction::Permission("read_issue".into()), None),
            expect: (BoundaryNotFound, None),
        },
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
            "a group path is not a project",
            1,
            "read_project",
            ProjectPath("acme/web".into()),
            BoundaryNotFound,
        ),
        row(
            "a personal namespace is not a group",
            1,
            "read_issue",
            GroupPath("alice".into()),
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
            "personal project path",
            1,
            "delete_project",
            ProjectPath("alice/personal".into()),
            Granted,
        ),
        row(
            "group path",
            1,
            "read_group",
            GroupPath("acme/web".into()),
            Granted,
        ),
        row(
            "update_issue on a group",
            1,
            "update_issue",
            g(ACME),
            BoundaryMismatch,
        )
        .failing("update_issue"),
        row(
            "read_user on a project",
            10,
            "read_user",
            p(APP),
            BoundaryMismatch,
        )
        .failing("read_user"),
        row(
            "a required permission does not apply to groups",
            1,
            "read_vulnerability",
            g(ACME),
            BoundaryMismatch,
        )
        // R is read_vulnerability, then what it requires in catalog order: read_pipeline
        // (ci_cd/pipeline.yml) before read_security_report.
        .failing("read_pipeline"),
        // 9: top-level enforcement
        row(
            "legacy token in an enforcing group",
            1,
            "read_project",
            p(SECRET),
            LegacyTokenForbidden,
        ),
        row(
            "legacy token in an enforcing group's subgroup",
            1,
            "read_project",
            p(SVC),
            LegacyTokenForbidden,
        ),
        row(
            "legacy token on a subgroup of an enforcing group",
            1,
            "read_group",
            g(TEAM),
            LegacyTokenForbidden,
        ),
        row(
            "fine-grained token in an enforcing group",
            7,
            "read_issue",
            p(SECRET),
            Granted,
        ),
        row(
            "enforcement not yet in force",
            1,
            "read_project",
            p(TOOL),
            Granted,
        )
        .at(NOW + 99),
        row(
            "enforcement in force",
            1,
            "read_project",
            p(TOOL),
            LegacyTokenForbidden,
        )
        .at(NOW + 100),
        row(
            "a policy that does not enforce",
            18,
            "read_project",
            p(OPEN),
            Granted,
        ),
        row(
            "enforcement does not reach the instance",
            13,
            "read_setting",
            Instance,
            Granted,
        ),
        // 11-12: access kinds
        row(
            "all memberships: a member's project",
            7,
            "update_issue",
            p(APP),
            Granted,
        ),
        row(
            "all memberships: a project by inherited membership",
            7,
            "read_issue",
            p(INNER),
            Granted,
        ),
        row(
            "all memberships: not a member of a private project",
            7,
            "read_issue",
            p(TOOL),
            OutsideTokenBoundary,
        )
        .failing("read_issue"),
        row(
            "selected group: a project in it",
            8,
            "push_repository",
            p(APP),
            Granted,
        ),
        row(
            "selected group: a subgroup of it",
            24,
            "read_issue",
            g(WEB),
            Granted,
        ),
        row(
            "selected group: a project two subgroups down",
            24,
            "push_repository",
            p(INNER),
            Granted,
        ),
        row(
            "selected group: not a sibling",
            8,
            "push_repository",
            p(CI),
            OutsideTokenBoundary,
        )
        .failing("push_repository"),
        row(
            "selected group: not its parent, where a visitor may still read",
            8,
            "read_issue",
            g(ACME),
            Granted,
        ),
        row(
            "selected group that was deleted covers nothing",
            40,
            "read_issue",
            p(SECRET),
            OutsideTokenBoundary,
        )
        .failing("read_issue"),
        row("selected project", 17, "read_project", p(TOOL), Granted),
        row(
            "outside a private project",
            8,
            "read_issue",
            p(SECRET),
            OutsideTokenBoundary,
        )
        .failing("read_issue"),
        row(
            "personal projects: the user's own",
            9,
            "delete_project",
            p(PERSONAL),
            Granted,
        ),
        row(
            "personal projects: not a group's",
            9,
            "delete_project",
            p(APP),
            OutsideTokenBoundary,
        )
        .failing("delete_project"),
        row(
            "personal projects: not another user's",
            9,
            "delete_project",
            p(OWN),
            OutsideTokenBoundary,
        )
        .failing("delete_project"),
        row("user access", 10, "read_user", User, Granted),
        row(
            "user access does not cover projects",
            10,
            "read_project",
            p(SECRET),
            OutsideTokenBoundary,
        )
        .failing("read_project"),
        row(
            "instance access with admin mode",
            11,
            "read_setting",
            Instance,
            Granted,
        ),
        row(
            "instance access, any signed-in user",
            27,
            "read_statistic",
            Instance,
            Granted,
        ),
        row(
            "instance access does not cover the user",
            27,
            "read_user",
            User,
            OutsideTokenBoundary,
        )
        .failing("read_user"),
        row(
            "a scope covers, the permission is missing",
            7,
            "delete_project",
            p(APP),
            PermissionNotGranted,
        )
        .failing("delete_project"),
        route(
            "two covering scopes grant their union",
            37,
            "POST",
            "/api/v4/projects/10/pipeline/retry",
            Granted,
        ),
        row(
            "read_api cannot write",
            2,
            "update_issue",
            p(APP),
            PermissionNotGranted,
        )
        .failing("update_issue"),
        row("read_api reads", 2, "read_pipeline", p(APP), Granted),
        row(
            "explicit legacy scope",
            34,
            "read_repository",
            p(APP),
            Granted,
        ),
        row(
            "explicit legacy scope, nothing else",
            34,
            "read_issue",
            p(APP),
            PermissionNotGranted,
        )
        .failing("read_issue"),
        row(
            "legacy scope closed under implies",
            35,
            "read_repository",
            p(APP),
            Granted,
        ),
        // implies and requires
        row(
            "implies: update_issue grants read_issue",
            7,
            "read_issue",
            p(SECRET),
            Granted,
        ),
        row(
            "requires: the required permission fails",
            19,
            "read_security_report",
            p(CLOSED),
            PermissionNotGranted,
        )
        .failing("read_pipeline"),
        row(
            "requires, transitively",
            30,
            "read_vulnerability",
            p(CLOSED),
            PermissionNotGranted,
        )
        .failing("read_pipeline"),
        row(
            "requires met through implies",
            7,
            "read_security_report",
            p(APP),
            Granted,
        ),
        row(
            "api does not grant admin mode",
            12,
            "read_setting",
            Instance,
            PermissionNotGranted,
        )
        .failing("admin_mode"),
        // the public path
        row(
            "visitor reads a public project",
            16,
            "read_issue",
            p(APP),
            Granted,
        ),
        row(
            "visitor reads a public group",
            38,
            "read_group",
            g(ACME),
            Granted,
        ),
        row(
            "visitor cannot read an internal project",
            16,
            "read_project",
            p(TOOL),
            OutsideTokenBoundary,
        )
        .failing("read_project"),
        row(
            "visitor cannot read an internal group",
            38,
            "read_group",
            g(LATER),
            OutsideTokenBoundary,
        )
        .failing("read_group"),
        row(
            "visitor: only public permissions",
            16,
            "update_issue",
            p(APP),
            OutsideTokenBoundary,
        )
        .failing("update_issue"),
        row(
            "visitor: a feature that is not enabled",
            16,
            "read_issue",
            p(CLOSED),
            OutsideTokenBoundary,
        )
        .failing("read_issue"),
        row(
            "covered token, permission not held, public path",
            7,
            "read_project",
            p(CI),
            Granted,
        ),
        row(
            "signed-in fine-grained reads an internal project",
            17,
            "read_project",
            p(TOOL),
            Granted,
        ),
        row(
            "legacy token reads an internal group",
            18,
            "read_group",
            g(LATER),
            Granted,
        ),
        row(
            "legacy token reads a public project it is not a member of",
            18,
            "read_issue",
            p(APP),
            Granted,
        ),
        row(
            "legacy token, private project, not a member",
            18,
            "read_project",
            p(PERSONAL),
            InsufficientRole,
        )
        .failing("read_project"),
        // 13: features
        row(
            "feature disabled",
            1,
            "read_issue",
            p(CLOSED),
            FeatureDisabled,
        )
        .failing("read_issue"),
        row(
            "feature disabled, even for admin mode",
            13,
            "read_issue",
            p(CLOSED),
            FeatureDisabled,
        )
        .failing("read_issue"),
        row(
            "feature private, not a member",
            18,
            "read_pipeline",
            p(CLOSED),
            FeatureDisabled,
        )
        .failing("read_pipeline"),
        row(
            "feature private, a member",
            1,
            "read_pipeline",
            p(CLOSED),
            Granted,
        ),
        row(
            "feature private, admin mode",
            13,
            "read_pipeline",
            p(CLOSED),
            Granted,
        ),
        row("feature enabled", 18, "read_pipeline", p(APP), Granted),
        // 14: plans
        row(
            "plan below the permission's",
            7,
            "read_security_report",
            p(SECRET),
            PlanRequired,
        )
        .failing("read_security_report"),
        row(
            "the top-level plan counts, not the subgroup's",
            7,
            "read_security_report",
            p(APP),
            Granted,
        ),
        row(
            "personal namespaces are free",
            1,
            "read_security_report",
            p(PERSONAL),
            PlanRequired,
        )
        .failing("read_security_report"),
        row(
            "plan on a group boundary",
            1,
            "create_milestone",
            g(LATER),
            PlanRequired,
        )
        .failing("create_milestone"),
        row(
            "premium permission on ultimate",
            29,
            "create_milestone",
            g(ACME),
            Granted,
        ),
        // 15: roles
        row(
            "developer cannot delete the project",
            1,
            "delete_project",
            p(APP),
            InsufficientRole,
        )
        .failing("delete_project"),
        row(
            "no role in the group cannot plan",
            20,
            "create_milestone",
            g(ACME),
            InsufficientRole,
        )
        .failing("create_milestone"),
        row(
            "maintainer reads variables",
            33,
            "read_variable",
            p(TARGET),
            Granted,
        ),
        row(
            "developer cannot read variables",
            33,
            "read_variable",
            p(APP),
            InsufficientRole,
        )
        .failing("read_variable"),
        row(
            "admin without admin mode is not owner",
            12,
            "delete_project",
            p(APP),
            InsufficientRole,
        )
        .failing("delete_project"),
        row(
            "admin with admin mode is owner",
            13,
            "delete_project",
            p(APP),
            Granted,
        ),
        row(
            "fine-grained admin with admin_mode in another scope is owner",
            31,
            "delete_project",
            p(APP),
            Granted,
        ),
        row(
            "fine-grained admin without admin_mode",
            32,
            "delete_project",
            p(APP),
            InsufficientRole,
        )
        .failing("delete_project"),
        row(
            "admin mode needs an admin",
            21,
            "read_setting",
            Instance,
            InsufficientRole,
        )
        .failing("read_setting"),
        row(
            "an admin role needs an admin user, not admin mode",
            28,
            "read_audit_event",
            Instance,
            Granted,
        ),
        row(
            "an admin role on a project",
            12,
            "read_audit_event",
            p(APP),
            Granted,
        ),
        row(
            "an admin role, not an admin",
            18,
            "read_audit_event",
            Instance,
            InsufficientRole,
        )
        .failing("read_audit_event"),
        // 16: confidential resources
        row(
            "confidential: guest",
            20,
            "read_issue",
            p(APP),
            ConfidentialResource,
        )
        .confidential(None, &[]),
        row(
            "confidential: guest author",
            20,
            "read_issue",
            p(APP),
            Granted,
        )
        .confidential(Some(ERIN), &[]),
        row(
            "confidential: guest assignee",
            20,
            "read_issue",
            p(APP),
            Granted,
        )
        .confidential(None, &[ALICE, ERIN]),
        row("confidential: reporter", 29, "read_issue", p(APP), Granted).confidential(None, &[]),
        row("confidential: developer", 1, "read_issue", p(APP), Granted).confidential(None, &[]),
        row(
            "confidential: non-member on a public project",
            18,
            "read_issue",
            p(APP),
            ConfidentialResource,
        )
        .confidential(Some(ALICE), &[]),
        row(
            "confidential: visitor, even as author",
            16,
            "read_issue",
            p(APP),
            ConfidentialResource,
        )
        .confidential(Some(DAVE), &[DAVE]),
        row(
            "confidential: admin mode",
            13,
            "read_issue",
            p(APP),
            Granted,
        )
        .confidential(None, &[]),
        // job tokens
        row(
            "job token in its own project",
            14,
            "read_pipeline",
            p(CI),
            Granted,
        ),
        row(
            "job token in its own project: the user's role bounds",
            39,
            "create_pipeline",
            p(APP),
            InsufficientRole,
        )
        .failing("create_pipeline"),
        row(
            "job token: a permission without policy, own project",
            14,
            "push_repository",
            p(CI),
            PermissionNotGranted,
        )
        .failing("push_repository"),
        row(
            "job token: allowlisted project link",
            14,
            "read_pipeline",
            p(TARGET),
            Granted,
        ),
        row(
            "job token: project link overrides group link",
            14,
            "create_pipeline",
            p(TARGET),
            JobTokenScopeDenied,
        )
        .failing("create_pipeline"),
        row(
            "job token: project link overrides group link (issues)",
            14,
            "read_issue",
            p(TARGET),
            JobTokenScopeDenied,
        )
        .failing("read_issue"),
        row(
            "job token: ancestor group link, admin implies read",
            15,
            "read_pipeline",
            p(TARGET),
            Granted,
        ),
        row(
            "job token: ancestor group link, admin policy",
            15,
            "create_pipeline",
            p(TARGET),
            Granted,
        ),
        row(
            "job token: no policy means deny",
            15,
            "push_repository",
            p(TARGET),
            JobTokenScopeDenied,
        )
        .failing("push_repository"),
        row(
            "job token: fine-grained off, allowlist only",
            14,
            "read_pipeline",
            p(SECRET),
            Granted,
        ),
        row(
            "job token: fine-grained off, still the user's role",
            14,
            "create_pipeline",
            p(SECRET),
            InsufficientRole,
        )
        .failing("create_pipeline"),
        row(
            "job token: fine-grained off, still only permissions with a policy",
            14,
            "push_repository",
            p(SECRET),
            PermissionNotGranted,
        )
        .failing("push_repository"),
        row(
            "job token: not allowlisted",
            14,
            "read_pipeline",
            p(TOOL),
            JobTokenScopeDenied,
        ),
        row(
            "job token: no scope set means inbound on, empty allowlist",
            14,
            "read_pipeline",
            p(APP),
            JobTokenScopeDenied,
        ),
        row(
            "job token: a personal project allowlisted nowhere",
            36,
            "read_pipeline",
            p(CI),
            JobTokenScopeDenied,
        ),
        row(
            "job token: inbound scope disabled",
            14,
            "read_pipeline",
            p(CLOSED),
            Granted,
        ),
        row(
            "job token: default permissions link",
            14,
            "create_pipeline",
            p(DEPLOY),
            Granted,
        ),
        row(
            "job token: group boundary",
            14,
            "read_issue",
            g(ACME),
            JobTokenScopeDenied,
        ),
        row(
            "job token: instance boundary",
            14,
            "read_statistic",
            Instance,
            JobTokenScopeDenied,
        ),
        // routes
        route(
            "route with an encoded full path",
            1,
            "GET",
            "/api/v4/projects/acme%2Fweb%2Fapp/issues?state=opened",
            Granted,
        ),
        route(
            "route with a lower-case encoded full path",
            1,
            "GET",
            "/api/v4/projects/acme%2fweb%2fapp/issues",
            Granted,
        ),
        route(
            "group route by encoded path",
            1,
            "GET",
            "/api/v4/groups/acme%2Fweb/issues",
            Granted,
        ),
        route("group route", 1, "GET", "/api/v4/groups/1/issues/", Granted),
        route(
            "route on a missing project",
            1,
            "GET",
            "/api/v4/projects/999/issues",
            BoundaryNotFound,
        ),
        route(
            "route on a missing project path",
            1,
            "GET",
            "/api/v4/projects/acme%2Fnone/issues",
            BoundaryNotFound,
        ),
        route("skipped route", 2, "GET", "/api/v4/version", Granted),
        route(
            "skipped route, revoked token",
            3,
            "GET",
            "/api/v4/version",
            TokenRevoked,
        ),
        route(
            "route also_requires",
            7,
            "POST",
            "/api/v4/projects/10/pipeline/retry",
            PermissionNotGranted,
        )
        .failing("push_repository"),
        route(
            "route also_requires, met",
            1,
            "POST",
            "/api/v4/projects/10/pipeline/retry",
            Granted,
        ),
        route(
            "route: first boundary that exists (project)",
            18,
            "GET",
            "/api/v4/namespaces/10/members",
            Granted,
        ),
        route(
            "route: first boundary that exists (group)",
            18,
            "GET",
            "/api/v4/namespaces/1/members",
            Granted,
        ),
        route(
            "route: no boundary exists",
            18,
            "GET",
            "/api/v4/namespaces/99/members",
            BoundaryNotFound,
        ),
        route(
            "route: group by path when no project has it",
            18,
            "GET",
            "/api/v4/namespaces/shared/members",
            InsufficientRole,
        )
        .failing("read_member"),
        route("user route", 10, "GET", "/api/v4/user", Granted),
        route(
            "instance route",
            13,
            "GET",
            "/api/v4/application/settings",
            Granted,
        ),
    ]
}

#[test]
fn table_of_decisions() {
    let catalog = catalog();
    let world = world();
    let snapshot = snapshot(&catalog, &world);
    let history = World {
        history: true,
        ..world.clone()
    };
    let rebuilt = crate::world::snapshot(&catalog, &history);
    let mut failures = Vec::new();
    for row in rows() {
        for (built, snap) in [("", &snapshot), (" (built the long way)", &rebuilt)] {
            let decision = engine(snap, &row.request);
            let failed = decision
                .failed
                .map(|id| catalog.permission(id).name.clone());
            let got = (decision.reason, failed.as_deref());
            if got != row.expect {
                failures.push(format!(
                    "{}{built}: engine said {got:?}, expected {:?}",
                    row.name, row.expect
                ));
            }
            if decision.allowed != (row.expect.0 == Granted) {
                failures.push(format!(
                    "{}{built}: allowed is {}",
                    row.name, decision.allowed
                ));
            }
            assert!(!decision.message(&catalog).is_empty());
        }
        let verdict = model::decide(&catalog, &world, &row.request);
        if (verdict.reason, verdict.failed.as_deref()) != row.expect {
            failures.push(format!(
                "{}: model said {:?}, expected {:?}",
                row.name,
                (verdict.reason, verdict.failed),
                row.expect
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} row(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn table_rows_have_distinct_names() {
    let mut names: Vec<&str> = rows().iter().map(|r| r.name).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "two rows share a name");
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
