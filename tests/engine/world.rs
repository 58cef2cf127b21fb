//! A world in plain data (vectors the reference model scans), its translation into an
//! engine `Snapshot` through the public mutation API, and proptest strategies for random
//! small worlds and requests.

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use proptest::collection::vec;
use proptest::option;
use proptest::prelude::*;
use proptest::sample::{Index, select, subsequence};

use patrol::catalog::{Catalog, PolicySet};
use patrol::domain::{AccessKind, AccessLevel, FeatureAccess, Plan, Visibility};
use patrol::engine::{
    AllowlistLink, Grant, GranularScope, GroupId, GroupSpec, JobTokenScope, Owner, ProjectId,
    ProjectSpec, Snapshot, Token, TokenId, TokenPolicy, User, UserId,
};

// ---------------------------------------------------------------------------------------
// The world
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct WUser {
    pub id: u64,
    pub name: String,
    pub blocked: bool,
    pub admin: bool,
}

/// A top-level group's token policy.
#[derive(Debug, Clone, Copy)]
pub struct WPolicy {
    pub enforce: bool,
    pub after: Option<i64>,
}

#[derive(Debug, Clone)]
pub struct WGroup {
    pub id: u64,
    pub parent: Option<u64>,
    pub path: String,
    pub visibility: Visibility,
    /// Set on every group; only the top-level group's counts.
    pub plan: Plan,
    pub policy: Option<WPolicy>,
    /// Created, then removed again (only when everything below it is removed too).
    pub deleted: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WOwner {
    Group(u64),
    User(u64),
}

#[derive(Debug, Clone)]
pub struct WLink {
    pub default_permissions: bool,
    /// Policy names as written, not expanded.
    pub policies: Vec<&'static str>,
}

#[derive(Debug, Clone)]
pub struct WJobScope {
    pub inbound: bool,
    pub fine_grained: bool,
    pub projects: Vec<(u64, WLink)>,
    pub groups: Vec<(u64, WLink)>,
}

#[derive(Debug, Clone)]
pub struct WProject {
    pub id: u64,
    pub owner: WOwner,
    pub path: String,
    pub visibility: Visibility,
    /// Features not listed are enabled.
    pub features: Vec<(&'static str, FeatureAccess)>,
    /// `None`: the defaults (inbound on, fine-grained off, empty allowlist).
    pub job_scope: Option<WJobScope>,
    pub deleted: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WNs {
    Group(u64),
    Project(u64),
}

#[derive(Debug, Clone)]
pub struct WMember {
    pub ns: WNs,
    pub user: u64,
    pub level: u8,
}

#[derive(Debug, Clone)]
pub struct WScope {
    pub access: AccessKind,
    pub projects: Vec<u64>,
    pub groups: Vec<u64>,
    pub permissions: Vec<&'static str>,
}

#[derive(Debug, Clone)]
pub enum WKind {
    Legacy(Vec<&'static str>),
    Fine(Vec<WScope>),
    Job { project: u64 },
}

#[derive(Debug, Clone)]
pub struct WToken {
    pub id: u64,
    pub user: u64,
    pub revoked: bool,
    pub expires_at: Option<i64>,
    pub ips: Vec<IpNet>,
    pub kind: WKind,
}

#[derive(Debug, Clone, Default)]
pub struct World {
    pub users: Vec<WUser>,
    /// Parents always come before their children.
    pub groups: Vec<WGroup>,
    pub projects: Vec<WProject>,
    pub members: Vec<WMember>,
    pub tokens: Vec<WToken>,
    /// Build the snapshot the long way round: temporary names and places first, then
    /// renames and moves, spurious memberships added and removed, revocation by call.
    pub history: bool,
}

impl World {
    /// The full path of a group (deleted or not), by walking parents.
    pub fn group_path(&self, id: u64) -> String {
        let g = self.groups.iter().find(|g| g.id == id).unwrap();
        match g.parent {
            Some(p) => format!("{}/{}", self.group_path(p), g.path),
            None => g.path.clone(),
        }
    }

    /// The full path of a project (deleted or not).
    pub fn project_path(&self, id: u64) -> String {
        let p = self.projects.iter().find(|p| p.id == id).unwrap();
        match p.owner {
            WOwner::Group(g) => format!("{}/{}", self.group_path(g), p.path),
            WOwner::User(u) => format!("{}/{}", self.user_name(u), p.path),
        }
    }

    pub fn user_name(&self, id: u64) -> String {
        self.users.iter().find(|x| x.id == id).unwrap().name.clone()
    }

    fn group_depth(&self, id: u64) -> usize {
        let g = self.groups.iter().find(|g| g.id == id).unwrap();
        1 + g.parent.map_or(0, |p| self.group_depth(p))
    }
}

// ---------------------------------------------------------------------------------------
// World -> Snapshot
// ---------------------------------------------------------------------------------------

fn link(catalog: &Catalog, l: &WLink) -> AllowlistLink {
    let mut policies = PolicySet::default();
    for name in &l.policies {
        let id = catalog.policy_id(name).unwrap();
        // The snapshot keeps links expanded by `implies` (AllowlistLink's contract).
        policies.0 |= catalog.policy(id).implied.0;
    }
    AllowlistLink {
        default_permissions: l.default_permissions,
        policies,
    }
}

pub fn group_spec(g: &WGroup) -> GroupSpec {
    GroupSpec {
        parent: g.parent.map(GroupId),
        path: g.path.clone(),
        visibility: g.visibility,
        plan: g.plan,
    }
}

pub fn project_spec(catalog: &Catalog, p: &WProject) -> ProjectSpec {
    ProjectSpec {
        namespace: match p.owner {
            WOwner::Group(g) => Owner::Group(GroupId(g)),
            WOwner::User(u) => Owner::User(UserId(u)),
        },
        path: p.path.clone(),
        visibility: p.visibility,
        features: p
            .features
            .iter()
            .map(|(name, access)| (catalog.feature_id(name).unwrap(), *access))
            .collect(),
    }
}

pub fn user_spec(u: &WUser, name: String) -> User {
    User {
        username: name,
        blocked: u.blocked,
        admin: u.admin,
    }
}

fn set_member(s: &mut Snapshot, ns: WNs, user: u64, level: Option<AccessLevel>) {
    match ns {
        WNs::Group(g) => s.set_group_member(GroupId(g), UserId(user), level),
        WNs::Project(p) => s.set_project_member(ProjectId(p), UserId(user), level),
    }
    .unwrap();
}

/// The translation of a world into the engine's snapshot, through its public API only.
pub fn snapshot(catalog: &Arc<Catalog>, world: &World) -> Snapshot {
    let mut s = Snapshot::new(catalog.clone());
    let old = |path: &str| format!("old-{path}");

    // Users, groups and projects, possibly at temporary names and places first.
    for u in &world.users {
        let name = if world.history {
            old(&u.name)
        } else {
            u.name.clone()
        };
        s.upsert_user(UserId(u.id), user_spec(u, name)).unwrap();
    }
    for g in &world.groups {
        let spec = if world.history {
            GroupSpec {
                parent: None,
                path: old(&g.path),
                ..group_spec(g)
            }
        } else {
            group_spec(g)
        };
        s.upsert_group(GroupId(g.id), spec).unwrap();
    }
    for p in &world.projects {
        let mut spec = project_spec(catalog, p);
        if world.history {
            // Start in the first user's personal namespace, moved below.
            spec.namespace = Owner::User(UserId(world.users[0].id));
            spec.path = old(&p.path);
            spec.features = Vec::new();
        }
        s.upsert_project(ProjectId(p.id), spec).unwrap();
    }
    if world.history {
        // Spurious memberships, removed again below.
        for m in &world.members {
            set_member(&mut s, m.ns, m.user, Some(AccessLevel::OWNER));
        }
        // Move and rename into place: parents first, so a subtree moves with its root.
        for g in &world.groups {
            s.upsert_group(GroupId(g.id), group_spec(g)).unwrap();
        }
        for p in &world.projects {
            s.upsert_project(ProjectId(p.id), project_spec(catalog, p))
                .unwrap();
        }
        for u in &world.users {
            s.upsert_user(UserId(u.id), user_spec(u, u.name.clone()))
                .unwrap();
        }
        for m in &world.members {
            set_member(&mut s, m.ns, m.user, None);
        }
    }
    for g in &world.groups {
        if let Some(policy) = g.policy {
            let policy = TokenPolicy {
                enforce_fine_grained: policy.enforce,
                enforced_after: policy.after,
            };
            s.set_token_policy(GroupId(g.id), Some(policy)).unwrap();
        }
    }
    for p in &world.projects {
        if let Some(js) = &p.job_scope {
            let scope = JobTokenScope {
                inbound_enabled: js.inbound,
                fine_grained_enabled: js.fine_grained,
                projects: js
                    .projects
                    .iter()
                    .map(|(id, l)| (ProjectId(*id), link(catalog, l)))
                    .collect(),
                groups: js
                    .groups
                    .iter()
                    .map(|(id, l)| (GroupId(*id), link(catalog, l)))
                    .collect(),
            };
            s.set_job_token_scope(ProjectId(p.id), scope).unwrap();
        }
    }
    for m in &world.members {
        let level = AccessLevel::from_number(m.level.into()).unwrap();
        set_member(&mut s, m.ns, m.user, Some(level));
    }
    if world.history {
        // Decoys: every token id first holds an unrestricted legacy token, replaced
        // below; and one more token that is removed again (requests may name its id).
        let decoys = world
            .tokens
            .iter()
            .map(|t| t.id)
            .chain([world.tokens.len() as u64 + 1]);
        for id in decoys {
            s.insert_token(Token {
                id: TokenId(id),
                user_id: UserId(world.users[0].id),
                revoked: false,
                expires_at: None,
                allowed_ips: Vec::new(),
                grant: Grant::legacy(catalog, ["api", "admin_mode"]).unwrap(),
            });
        }
        assert!(
            s.remove_token(TokenId(world.tokens.len() as u64 + 1))
                .is_some()
        );
    }
    for t in &world.tokens {
        let grant = grant(catalog, &t.kind, 1000 + t.id);
        s.insert_token(Token {
            id: TokenId(t.id),
            user_id: UserId(t.user),
            revoked: t.revoked && !world.history,
            expires_at: t.expires_at,
            allowed_ips: t.ips.clone(),
            grant,
        });
        if t.revoked && world.history {
            assert!(s.revoke_token(TokenId(t.id)));
        }
    }
    // Removals: projects, then groups children first.
    for p in world.projects.iter().filter(|p| p.deleted) {
        s.remove_project(ProjectId(p.id)).unwrap();
    }
    for g in world.groups.iter().rev().filter(|g| g.deleted) {
        s.remove_group(GroupId(g.id)).unwrap();
    }
    s
}

/// The engine's grant for a token kind (`job_id` for job tokens).
pub fn grant(catalog: &Catalog, kind: &WKind, job_id: u64) -> Grant {
    match kind {
        WKind::Legacy(scopes) => Grant::legacy(catalog, scopes.iter().copied()).unwrap(),
        WKind::Fine(scopes) => Grant::FineGrained {
            scopes: scopes
                .iter()
                .map(|sc| {
                    GranularScope::new(
                        catalog,
                        sc.access,
                        sc.projects.iter().map(|&p| ProjectId(p)),
                        sc.groups.iter().map(|&g| GroupId(g)),
                        sc.permissions.iter().copied(),
                    )
                    .unwrap()
                })
                .collect(),
        },
        WKind::Job { project } => Grant::Job {
            project: ProjectId(*project),
            job_id,
        },
    }
}

// ---------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------

/// A request in owned, plain form, shared by the engine and the model.
#[derive(Debug, Clone)]
pub struct WRequest {
    /// `None`: a credential the caller could not verify.
    pub token: Option<u64>,
    pub action: WAction,
    pub boundary: Option<WBoundary>,
    pub confidential: bool,
    pub author: Option<u64>,
    pub assignees: Vec<u64>,
    pub ip: Option<IpAddr>,
    pub now: i64,
}

#[derive(Debug, Clone)]
pub enum WAction {
    Permission(String),
    Route(&'static str, String),
}

#[derive(Debug, Clone)]
pub enum WBoundary {
    ProjectId(u64),
    ProjectPath(String),
    GroupId(u64),
    GroupPath(String),
    User,
    Instance,
    Unresolved,
}

// ---------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------

pub const NOW: i64 = 1_000_000;
/// An id that names nothing.
pub const MISSING: u64 = 99;

const VISIBILITIES: [Visibility; 3] = [
    Visibility::Private,
    Visibility::Internal,
    Visibility::Public,
];
const PLANS: [Plan; 3] = [Plan::Free, Plan::Premium, Plan::Ultimate];
const LEVELS: [u8; 7] = [5, 10, 15, 20, 30, 40, 50];
const FEATURES: [&str; 3] = ["issues", "pipelines", "repository"];
const ACCESSES: [FeatureAccess; 3] = [
    FeatureAccess::Enabled,
    FeatureAccess::Private,
    FeatureAccess::Disabled,
];
pub const POLICIES: [&str; 3] = ["read_pipelines", "admin_pipelines", "read_work_items"];
pub const SCOPES: [&str; 6] = [
    "api",
    "read_api",
    "read_repository",
    "write_repository",
    "admin_mode",
    "sudo",
];
/// Every permission of the test catalog.
pub const PERMISSIONS: [&str; 19] = [
    "read_project",
    "delete_project",
    "read_group",
    "read_member",
    "read_issue",
    "update_issue",
    "create_milestone",
    "read_pipeline",
    "create_pipeline",
    "read_security_report",
    "read_vulnerability",
    "read_variable",
    "read_repository",
    "push_repository",
    "read_user",
    "admin_mode",
    "read_setting",
    "read_statistic",
    "read_audit_event",
];
/// Permission names a request may ask for, a few unknown.
const ASKED: [&str; 21] = [
    "read_project",
    "delete_project",
    "read_group",
    "read_member",
    "read_issue",
    "update_issue",
    "create_milestone",
    "read_pipeline",
    "create_pipeline",
    "read_security_report",
    "read_vulnerability",
    "read_variable",
    "read_repository",
    "push_repository",
    "read_user",
    "admin_mode",
    "read_setting",
    "read_statistic",
    "read_audit_event",
    "no_such_permission",
    "",
];

fn nets() -> Vec<IpNet> {
    ["10.0.0.0/8", "192.0.2.0/24", "2001:db8::/32"]
        .into_iter()
        .map(|n| n.parse().unwrap())
        .collect()
}

fn ips() -> Vec<Option<IpAddr>> {
    [
        None,
        Some("10.1.2.3"),
        Some("203.0.113.7"),
        Some("2001:db8::1"),
    ]
    .into_iter()
    .map(|ip| ip.map(|ip| ip.parse().unwrap()))
    .collect()
}

/// A raw group: parent pick, visibility, plan, policy, deleted.
type RawGroup = (Option<Index>, Visibility, Plan, Option<WPolicy>, bool);
/// A raw project: owner pick, visibility, features, job scope, deleted.
type RawProject = (
    Result<Index, Index>,
    Visibility,
    Vec<Option<FeatureAccess>>,
    Option<RawJobScope>,
    bool,
);
type RawJobScope = (bool, bool, Vec<(bool, Index, WLink)>);

fn raw_policy() -> impl Strategy<Value = WPolicy> {
    (
        prop::bool::weighted(0.8),
        option::of((0..100i64).prop_map(|d| NOW - 50 + d)),
    )
        .prop_map(|(enforce, after)| WPolicy { enforce, after })
}

fn raw_group() -> impl Strategy<Value = RawGroup> {
    (
        option::weighted(0.6, any::<Index>()),
        select(VISIBILITIES.to_vec()),
        select(PLANS.to_vec()),
        option::weighted(0.3, raw_policy()),
        prop::bool::weighted(0.1),
    )
}

fn raw_link() -> impl Strategy<Value = WLink> {
    (
        prop::bool::weighted(0.25),
        subsequence(POLICIES.to_vec(), 0..=POLICIES.len()),
    )
        .prop_map(|(default_permissions, policies)| WLink {
            default_permissions,
            policies,
        })
}

fn raw_project() -> impl Strategy<Value = RawProject> {
    let owner = prop_oneof![
        7 => any::<Index>().prop_map(Ok),
        3 => any::<Index>().prop_map(Err),
    ];
    let job_scope = (
        prop::bool::weighted(0.85),
        prop::bool::weighted(0.6),
        vec((any::<bool>(), any::<Index>(), raw_link()), 0..4),
    );
    (
        owner,
        select(VISIBILITIES.to_vec()),
        vec(option::weighted(0.4, select(ACCESSES.to_vec())), 3),
        option::weighted(0.5, job_scope),
        prop::bool::weighted(0.1),
    )
}

/// Ids to put in a scope or link: existing, deleted or missing alike.
fn some_ids(n: usize) -> impl Strategy<Value = Vec<u64>> {
    vec(prop_oneof![9 => 1..=n as u64, 1 => Just(MISSING)], 0..3).prop_map(|mut ids| {
        ids.sort_unstable();
        ids.dedup();
        ids
    })
}

fn scope(projects: usize, groups: usize) -> impl Strategy<Value = WScope> {
    (
        select(AccessKind::ALL.to_vec()),
        some_ids(projects),
        some_ids(groups),
        subsequence(PERMISSIONS.to_vec(), 0..=10),
    )
        .prop_map(|(access, projects, groups, permissions)| WScope {
            access,
            projects,
            groups,
            permissions,
        })
}

pub fn kind(projects: usize, groups: usize) -> impl Strategy<Value = WKind> {
    prop_oneof![
        (
            prop::bool::weighted(0.5),
            subsequence(SCOPES[1..].to_vec(), 0..=3)
        )
            .prop_map(|(api, mut scopes)| {
                if api {
                    scopes.insert(0, "api");
                }
                WKind::Legacy(scopes)
            }),
        vec(scope(projects, groups), 1..=3).prop_map(WKind::Fine),
        prop_oneof![9 => 1..=projects as u64, 1 => Just(MISSING)]
            .prop_map(|project| WKind::Job { project }),
    ]
}

fn raw_token(users: usize, projects: usize, groups: usize) -> impl Strategy<Value = WToken> {
    (
        prop_oneof![39 => 1..=users as u64, 1 => Just(MISSING)],
        prop::bool::weighted(0.05),
        option::weighted(0.15, (0..40i64).prop_map(|d| NOW - 20 + d)),
        option::weighted(0.15, subsequence(nets(), 1..=2)),
        kind(projects, groups),
    )
        .prop_map(|(user, revoked, expires_at, ips, kind)| WToken {
            id: 0,
            user,
            revoked,
            expires_at,
            ips: ips.unwrap_or_default(),
            kind,
        })
}

/// Random small worlds: 1-4 users, 1-6 groups nested up to depth 3 (a child never more
/// visible than its parent), 1-6 projects in groups or personal namespaces, memberships,
/// token policies, job token scopes and 1-5 tokens of every kind.
pub fn world() -> impl Strategy<Value = World> {
    (1..=4usize, 1..=6usize, 1..=6usize)
        .prop_flat_map(|(users, groups, projects)| {
            (
                vec(
                    (prop::bool::weighted(0.1), prop::bool::weighted(0.3)),
                    users,
                ),
                vec(raw_group(), groups),
                vec(raw_project(), projects),
                vec(
                    (
                        any::<bool>(),
                        any::<Index>(),
                        any::<Index>(),
                        select(LEVELS.to_vec()),
                    ),
                    0..14,
                ),
                vec(raw_token(users, projects, groups), 1..=5),
                prop::bool::weighted(0.3),
            )
        })
        .prop_map(build_world)
}

/// Everything a world is built from: users (blocked, admin), groups, projects,
/// memberships (on a group?, namespace pick, user pick, level), tokens, history.
type RawWorld = (
    Vec<(bool, bool)>,
    Vec<RawGroup>,
    Vec<RawProject>,
    Vec<(bool, Index, Index, u8)>,
    Vec<WToken>,
    bool,
);

fn build_world((users, groups, projects, members, tokens, history): RawWorld) -> World {
    let mut w = World {
        history,
        ..World::default()
    };
    for (i, (blocked, admin)) in users.into_iter().enumerate() {
        let id = i as u64 + 1;
        w.users.push(WUser {
            id,
            name: format!("user{id}"),
            blocked,
            admin,
        });
    }
    for (i, (parent, visibility, plan, policy, deleted)) in groups.iter().cloned().enumerate() {
        let id = i as u64 + 1;
        // Parents: earlier groups at depth 1 or 2, so nesting stops at depth 3.
        let candidates: Vec<u64> = w
            .groups
            .iter()
            .map(|g| g.id)
            .filter(|&g| w.group_depth(g) < 3)
            .collect();
        let parent = parent
            .filter(|_| !candidates.is_empty())
            .map(|ix| *ix.get(&candidates));
        let visibility = match parent {
            Some(p) => visibility.min(w.groups[p as usize - 1].visibility),
            None => visibility,
        };
        w.groups.push(WGroup {
            id,
            parent,
            path: format!("g{id}"),
            visibility,
            plan,
            policy: if parent.is_none() { policy } else { None },
            deleted,
        });
    }
    for (i, (owner, visibility, features, job_scope, deleted)) in projects.into_iter().enumerate() {
        let id = i as u64 + 1;
        let owner = match owner {
            Ok(g) => WOwner::Group(g.index(w.groups.len()) as u64 + 1),
            Err(u) => WOwner::User(u.index(w.users.len()) as u64 + 1),
        };
        let visibility = match owner {
            WOwner::Group(g) => visibility.min(w.groups[g as usize - 1].visibility),
            WOwner::User(_) => visibility,
        };
        let features = FEATURES
            .iter()
            .zip(features)
            .filter_map(|(f, a)| a.map(|a| (*f, a)))
            .collect();
        let job_scope = job_scope.map(|(inbound, fine_grained, links)| {
            let mut scope = WJobScope {
                inbound,
                fine_grained,
                projects: Vec::new(),
                groups: Vec::new(),
            };
            for (to_group, ix, link) in links {
                if to_group {
                    let g = ix.index(groups.len()) as u64 + 1;
                    if !scope.groups.iter().any(|(x, _)| *x == g) {
                        scope.groups.push((g, link));
                    }
                } else {
                    let p = ix.index(6) as u64 + 1;
                    if !scope.projects.iter().any(|(x, _)| *x == p) {
                        scope.projects.push((p, link));
                    }
                }
            }
            scope
        });
        w.projects.push(WProject {
            id,
            owner,
            path: format!("p{id}"),
            visibility,
            features,
            job_scope,
            deleted,
        });
    }
    // A group is removed only when everything below it is removed too.
    for i in (0..w.groups.len()).rev() {
        let id = w.groups[i].id;
        let busy = w.groups.iter().any(|g| g.parent == Some(id) && !g.deleted)
            || w.projects
                .iter()
                .any(|p| p.owner == WOwner::Group(id) && !p.deleted);
        if busy {
            w.groups[i].deleted = false;
        }
    }
    for (to_group, ns, user, level) in members {
        let ns = if to_group {
            WNs::Group(ns.index(w.groups.len()) as u64 + 1)
        } else {
            WNs::Project(ns.index(w.projects.len()) as u64 + 1)
        };
        let user = user.index(w.users.len()) as u64 + 1;
        if !w.members.iter().any(|m| m.ns == ns && m.user == user) {
            w.members.push(WMember { ns, user, level });
        }
    }
    for (i, mut t) in tokens.into_iter().enumerate() {
        t.id = i as u64 + 1;
        w.tokens.push(t);
    }
    w
}

/// A request before it is placed in a world: picks are resolved against the world.
#[derive(Debug, Clone)]
pub struct RawRequest {
    /// 0: an invalid credential; 1: the id after the last token's; else a token.
    token: (u8, Index),
    action: Result<&'static str, (usize, u8, Index)>,
    boundary: (u8, Index),
    confidential: bool,
    author: Option<Index>,
    assignees: Vec<Index>,
    ip: Option<IpAddr>,
    now: i64,
}

/// The route templates requests are made of: `{P}` a project reference, `{G}` a group
/// reference, `{N}` a project or group reference.
const ROUTES: [(&str, &str); 23] = [
    ("GET", "/api/v4/projects/{P}/issues?state=opened"),
    ("GET", "/api/v4/groups/{G}/issues"),
    ("PUT", "/api/v4/projects/{P}/issues/7"),
    ("GET", "/api/v4/projects/{P}/pipelines/"),
    ("POST", "/api/v4/projects/{P}/pipeline"),
    ("POST", "/api/v4/projects/{P}/pipeline/retry"),
    ("GET", "/api/v4/projects/{P}/security_reports"),
    ("GET", "/api/v4/projects/{P}/vulnerabilities"),
    ("GET", "/api/v4/projects/{P}/repository/tree"),
    ("POST", "/api/v4/projects/{P}/repository/commits"),
    ("GET", "/api/v4/projects/{P}"),
    ("DELETE", "/api/v4/projects/{P}"),
    ("GET", "/api/v4/groups/{G}"),
    ("POST", "/api/v4/groups/{G}/milestones"),
    ("GET", "/api/v4/namespaces/{N}/members"),
    ("GET", "/api/v4/user"),
    ("GET", "/api/v4/version"),
    ("GET", "/api/v4/application/settings"),
    ("GET", "/api/v4/application/statistics"),
    ("GET", "/api/v4/audit_events"),
    ("GET", "/api/v4/projects/{P}/unknown"),
    ("POST", "/api/v4/user"),
    ("GET", "/api/v4/nothing"),
];

pub fn raw_request() -> impl Strategy<Value = RawRequest> {
    (
        (0..30u8, any::<Index>()),
        prop_oneof![
            3 => select(ASKED.to_vec()).prop_map(Ok),
            1 => (0..ROUTES.len(), 0..11u8, any::<Index>()).prop_map(Err),
        ],
        (0..25u8, any::<Index>()),
        prop::bool::weighted(0.25),
        option::weighted(0.4, any::<Index>()),
        vec(any::<Index>(), 0..3),
        select(ips()),
        (0..60i64).prop_map(|d| NOW - 30 + d),
    )
        .prop_map(
            |(token, action, boundary, confidential, author, assignees, ip, now)| RawRequest {
                token,
                action,
                boundary,
                confidential,
                author,
                assignees,
                ip,
                now,
            },
        )
}

/// A reference to a project or group inside a route: its id (also as `0<id>` or
/// `+<id>`), its full path encoded (`%2F` or `%2f`), or unencoded (which matches a
/// route only for a top-level group).
fn route_ref(w: &World, group: bool, form: u8, ix: &Index) -> String {
    let (n, path): (usize, fn(&World, u64) -> String) = if group {
        (w.groups.len(), World::group_path)
    } else {
        (w.projects.len(), World::project_path)
    };
    let id = ix.index(n + 1) as u64 + 1;
    match form {
        8 => return format!("0{id}"),
        9 => return format!("+{id}"),
        _ if id as usize > n || form < 4 => return id.to_string(),
        _ => {}
    }
    match form {
        4 => path(w, id).replace('/', "%2F"),
        // GitLab finds paths whatever their case.
        5 => path(w, id).to_ascii_uppercase().replace('/', "%2F"),
        6 => path(w, id).replace('/', "%2f"),
        // Any character may be percent-encoded (`g1` as `%671`).
        10 => path(w, id).replacen('g', "%67", 1).replace('/', "%2F"),
        _ => path(w, id),
    }
}

impl RawRequest {
    /// The request in a given world.
    pub fn place(&self, w: &World) -> WRequest {
        let user = |ix: &Index| ix.index(w.users.len() + 1) as u64 + 1;
        let (action, boundary) = match &self.action {
            Ok(name) => (
                WAction::Permission((*name).to_owned()),
                self.place_boundary(w),
            ),
            Err((route, form, ix)) => {
                let (method, template) = ROUTES[*route];
                let path = template
                    .replace("{P}", &route_ref(w, false, *form, ix))
                    .replace("{G}", &route_ref(w, true, *form, ix))
                    .replace("{N}", &route_ref(w, form % 2 == 1, *form, ix));
                (WAction::Route(method, path), None)
            }
        };
        WRequest {
            token: match &self.token {
                (0, _) => None,
                (1, _) => Some(w.tokens.len() as u64 + 1),
                (_, ix) => Some(ix.index(w.tokens.len()) as u64 + 1),
            },
            action,
            boundary,
            confidential: self.confidential,
            author: self.author.as_ref().map(user),
            assignees: self.assignees.iter().map(user).collect(),
            ip: self.ip,
            now: self.now,
        }
    }

    fn place_boundary(&self, w: &World) -> Option<WBoundary> {
        let (choice, ix) = &self.boundary;
        let project = ix.index(w.projects.len()) as u64 + 1;
        let group = ix.index(w.groups.len()) as u64 + 1;
        let user = ix.index(w.users.len()) as u64 + 1;
        Some(match choice {
            0..=7 => WBoundary::ProjectId(project),
            8 => WBoundary::ProjectId(MISSING),
            9 | 10 => WBoundary::ProjectPath(w.project_path(project)),
            11 => WBoundary::ProjectPath(w.group_path(group)),
            12 => WBoundary::ProjectPath(w.user_name(user)),
            13..=15 => WBoundary::GroupId(group),
            16 => WBoundary::GroupId(MISSING),
            17 => WBoundary::GroupPath(w.group_path(group)),
            18 => WBoundary::GroupPath(w.project_path(project)),
            19 => WBoundary::GroupPath(w.user_name(user)),
            20 | 21 => WBoundary::User,
            22 | 23 => WBoundary::Instance,
            24 => WBoundary::Unresolved,
            _ => return None,
        })
    }
}

/// A world and requests in it.
pub fn world_and_requests(requests: usize) -> impl Strategy<Value = (World, Vec<WRequest>)> {
    (world(), vec(raw_request(), requests)).prop_map(|(w, raw)| {
        let requests = raw.iter().map(|r| r.place(&w)).collect();
        (w, requests)
    })
}
