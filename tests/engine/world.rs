//! A world in plain data (vectors the reference model scans), its translation into an
//! engine `Snapshot`, and a seeded random generator of worlds and requests.

use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use patrol::catalog::{Catalog, PolicySet};
use patrol::domain::{AccessKind, AccessLevel, FeatureAccess, Plan, Visibility};
use patrol::engine::{
    AllowlistLink, Grant, GranularScope, GroupId, GroupSpec, JobTokenScope, Owner, ProjectId,
    ProjectSpec, Snapshot, Token, TokenId, TokenPolicy, User, UserId,
};

#[derive(Debug, Clone)]
pub struct WUser {
    pub id: u64,
    pub name: String,
    pub blocked: bool,
    pub admin: bool,
}

#[derive(Debug, Clone)]
pub struct WGroup {
    pub id: u64,
    pub parent: Option<u64>,
    pub path: String,
    pub visibility: Visibility,
    pub plan: Plan,
    /// (enforce_fine_grained, enforced_after)
    pub policy: Option<(bool, Option<i64>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WOwner {
    Group(u64),
    User(u64),
}

#[derive(Debug, Clone)]
pub struct WLink {
    pub default_permissions: bool,
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
    pub features: Vec<(&'static str, FeatureAccess)>,
    pub job_scope: Option<WJobScope>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WNs {
    Group(u64),
    Project(u64),
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
    pub members: Vec<(WNs, u64, u8)>,
    pub tokens: Vec<WToken>,
}

/// The translation of a world into the engine's snapshot, through its public API only.
pub fn snapshot(catalog: &Arc<Catalog>, world: &World) -> Snapshot {
    let mut s = Snapshot::new(catalog.clone());
    for u in &world.users {
        let user = User {
            username: u.name.clone(),
            blocked: u.blocked,
            admin: u.admin,
        };
        s.upsert_user(UserId(u.id), user).unwrap();
    }
    for g in &world.groups {
        let spec = GroupSpec {
            parent: g.parent.map(GroupId),
            path: g.path.clone(),
            visibility: g.visibility,
            plan: g.plan,
        };
        s.upsert_group(GroupId(g.id), spec).unwrap();
        if let Some((enforce, after)) = g.policy {
            let policy = TokenPolicy {
                enforce_fine_grained: enforce,
                enforced_after: after,
            };
            s.set_token_policy(GroupId(g.id), Some(policy)).unwrap();
        }
    }
    for p in &world.projects {
        let spec = ProjectSpec {
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
        };
        s.upsert_project(ProjectId(p.id), spec).unwrap();
        if let Some(js) = &p.job_scope {
            let link = |l: &WLink| AllowlistLink {
                default_permissions: l.default_permissions,
                policies: l
                    .policies
                    .iter()
                    .fold(PolicySet::default(), |mut set, name| {
                        let id = catalog.policy_id(name).unwrap();
                        set.0 |= catalog.policy(id).implied.0;
                        set
                    }),
            };
            let scope = JobTokenScope {
                inbound_enabled: js.inbound,
                fine_grained_enabled: js.fine_grained,
                projects: js
                    .projects
                    .iter()
                    .map(|(id, l)| (ProjectId(*id), link(l)))
                    .collect(),
                groups: js
                    .groups
                    .iter()
                    .map(|(id, l)| (GroupId(*id), link(l)))
                    .collect(),
            };
            s.set_job_token_scope(ProjectId(p.id), scope).unwrap();
        }
    }
    for &(ns, user, level) in &world.members {
        let level = Some(AccessLevel::from_number(level.into()).unwrap());
        match ns {
            WNs::Group(g) => s.set_group_member(GroupId(g), UserId(user), level).unwrap(),
            WNs::Project(p) => s
                .set_project_member(ProjectId(p), UserId(user), level)
                .unwrap(),
        }
    }
    for t in &world.tokens {
        let grant = match &t.kind {
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
                job_id: t.id,
            },
        };
        s.insert_token(Token {
            id: TokenId(t.id),
            user_id: UserId(t.user),
            revoked: t.revoked,
            expires_at: t.expires_at,
            allowed_ips: t.ips.clone(),
            grant,
        });
    }
    s
}

/// A request in owned, plain form, shared by the engine and the model.
#[derive(Debug, Clone)]
pub struct WRequest {
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
}

/// A small deterministic generator (xorshift64*), so a proptest seed names a world.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    pub fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())].clone()
    }
}

const VISIBILITIES: [Visibility; 3] = [
    Visibility::Private,
    Visibility::Internal,
    Visibility::Public,
];
const LEVELS: [u8; 8] = [0, 5, 10, 15, 20, 30, 40, 50];
const FEATURES: [&str; 3] = ["issues", "pipelines", "repository"];
const ACCESSES: [FeatureAccess; 3] = [
    FeatureAccess::Enabled,
    FeatureAccess::Private,
    FeatureAccess::Disabled,
];
const POLICIES: [&str; 3] = ["read_pipelines", "admin_pipelines", "read_work_items"];
const SCOPES: [&str; 4] = ["api", "read_api", "read_repository", "admin_mode"];
pub const PERMISSIONS: [&str; 15] = [
    "read_project",
    "delete_project",
    "read_group",
    "read_issue",
    "update_issue",
    "read_pipeline",
    "create_pipeline",
    "read_security_report",
    "read_repository",
    "push_repository",
    "read_user",
    "admin_mode",
    "read_setting",
    "read_statistic",
    "no_such_permission",
];
const NOW: i64 = 1_000_000;

/// A random visibility no wider than the parent's.
fn visibility_at_most(rng: &mut Rng, max: Visibility) -> Visibility {
    let allowed: Vec<Visibility> = VISIBILITIES.into_iter().filter(|v| *v <= max).collect();
    rng.pick(&allowed)
}

fn subset(rng: &mut Rng, items: &[&'static str], percent: u64) -> Vec<&'static str> {
    items
        .iter()
        .copied()
        .filter(|_| rng.chance(percent))
        .collect()
}

fn nets() -> [IpNet; 2] {
    [
        "10.0.0.0/8".parse().unwrap(),
        "2001:db8::/32".parse().unwrap(),
    ]
}

impl World {
    pub fn random(rng: &mut Rng) -> Self {
        let mut w = World::default();
        for id in 1..=(1 + rng.below(4) as u64) {
            w.users.push(WUser {
                id,
                name: format!("user{id}"),
                blocked: rng.chance(10),
                admin: rng.chance(25),
            });
        }
        let user_ids: Vec<u64> = w.users.iter().map(|u| u.id).collect();
        for id in 1..=(1 + rng.below(6) as u64) {
            let parent = if id > 1 && rng.chance(60) {
                Some(1 + rng.below(id as usize - 1) as u64)
            } else {
                None
            };
            let max = parent
                .and_then(|p| w.groups.iter().find(|g| g.id == p))
                .map_or(Visibility::Public, |g| g.visibility);
            let visibility = visibility_at_most(rng, max);
            let policy = (parent.is_none() && rng.chance(30)).then(|| {
                (
                    rng.chance(80),
                    rng.chance(50).then(|| NOW - 50 + rng.below(100) as i64),
                )
            });
            let plan = rng.pick(&[Plan::Free, Plan::Premium, Plan::Ultimate]);
            w.groups.push(WGroup {
                id,
                parent,
                path: format!("g{id}"),
                visibility,
                plan,
                policy,
            });
        }
        let group_ids: Vec<u64> = w.groups.iter().map(|g| g.id).collect();
        for id in 1..=(1 + rng.below(6) as u64) {
            let owner = if rng.chance(70) {
                WOwner::Group(rng.pick(&group_ids))
            } else {
                WOwner::User(rng.pick(&user_ids))
            };
            let max = match owner {
                WOwner::Group(g) => w
                    .groups
                    .iter()
                    .find(|x| x.id == g)
                    .map_or(Visibility::Public, |g| g.visibility),
                WOwner::User(_) => Visibility::Public,
            };
            let visibility = visibility_at_most(rng, max);
            let mut features = Vec::new();
            for f in FEATURES {
                if rng.chance(40) {
                    features.push((f, rng.pick(&ACCESSES)));
                }
            }
            w.projects.push(WProject {
                id,
                owner,
                path: format!("p{id}"),
                visibility,
                features,
                job_scope: None,
            });
        }
        let project_ids: Vec<u64> = w.projects.iter().map(|p| p.id).collect();
        for p in 0..w.projects.len() {
            if rng.chance(50) {
                let link = |rng: &mut Rng| WLink {
                    default_permissions: rng.chance(25),
                    policies: subset(rng, &POLICIES, 40),
                };
                let mut projects = Vec::new();
                for &id in &project_ids {
                    if rng.chance(30) {
                        projects.push((id, link(rng)));
                    }
                }
                let mut groups = Vec::new();
                for &id in &group_ids {
                    if rng.chance(30) {
                        groups.push((id, link(rng)));
                    }
                }
                w.projects[p].job_scope = Some(WJobScope {
                    inbound: rng.chance(85),
                    fine_grained: rng.chance(60),
                    projects,
                    groups,
                });
            }
        }
        for _ in 0..rng.below(10) {
            let ns = if rng.chance(50) {
                WNs::Group(rng.pick(&group_ids))
            } else {
                WNs::Project(rng.pick(&project_ids))
            };
            let user = rng.pick(&user_ids);
            if !w.members.iter().any(|(n, u, _)| *n == ns && *u == user) {
                w.members.push((ns, user, rng.pick(&LEVELS[1..])));
            }
        }
        for id in 1..=(1 + rng.below(4) as u64) {
            let kind = match rng.below(3) {
                0 => WKind::Legacy(subset(rng, &SCOPES, 40)),
                1 => WKind::Fine(
                    (0..1 + rng.below(3))
                        .map(|_| WScope {
                            access: rng.pick(&AccessKind::ALL),
                            projects: project_ids
                                .iter()
                                .copied()
                                .filter(|_| rng.chance(30))
                                .collect(),
                            groups: group_ids
                                .iter()
                                .copied()
                                .filter(|_| rng.chance(30))
                                .collect(),
                            permissions: subset(rng, &PERMISSIONS[..14], 35),
                        })
                        .collect(),
                ),
                _ => WKind::Job {
                    project: rng.pick(&project_ids),
                },
            };
            let ips = if rng.chance(20) {
                vec![rng.pick(&nets())]
            } else {
                Vec::new()
            };
            w.tokens.push(WToken {
                id,
                user: rng.pick(&user_ids),
                revoked: rng.chance(8),
                expires_at: rng.chance(30).then(|| NOW - 20 + rng.below(40) as i64),
                ips,
                kind,
            });
        }
        w
    }

    /// The full path of a group, by walking parents.
    pub fn group_path(&self, id: u64) -> String {
        let g = self.groups.iter().find(|g| g.id == id).unwrap();
        match g.parent {
            Some(p) => format!("{}/{}", self.group_path(p), g.path),
            None => g.path.clone(),
        }
    }

    pub fn project_path(&self, id: u64) -> String {
        let p = self.projects.iter().find(|p| p.id == id).unwrap();
        match p.owner {
            WOwner::Group(g) => format!("{}/{}", self.group_path(g), p.path),
            WOwner::User(u) => format!(
                "{}/{}",
                self.users.iter().find(|x| x.id == u).unwrap().name,
                p.path
            ),
        }
    }

    pub fn random_request(&self, rng: &mut Rng) -> WRequest {
        let token = if rng.chance(95) {
            Some(1 + rng.below(self.tokens.len() + 1) as u64)
        } else {
            None
        };
        let project = 1 + rng.below(self.projects.len() + 1) as u64;
        let group = 1 + rng.below(self.groups.len() + 1) as u64;
        let (action, boundary) = if rng.chance(80) {
            let boundary = match rng.below(7) {
                0 | 1 => WBoundary::ProjectId(project),
                2 => WBoundary::ProjectPath(if project as usize <= self.projects.len() {
                    self.project_path(project)
                } else {
                    "nowhere/p".into()
                }),
                3 => WBoundary::GroupId(group),
                4 => WBoundary::GroupPath(if group as usize <= self.groups.len() {
                    self.group_path(group)
                } else {
                    "nowhere".into()
                }),
                5 => WBoundary::User,
                _ => WBoundary::Instance,
            };
            (
                WAction::Permission(rng.pick(&PERMISSIONS).to_owned()),
                Some(boundary),
            )
        } else {
            let id = if project as usize <= self.projects.len() && rng.chance(30) {
                self.project_path(project).replace('/', "%2F")
            } else {
                project.to_string()
            };
            let route = match rng.below(8) {
                0 => ("GET", format!("/api/v4/projects/{id}/issues?state=opened")),
                1 => ("GET", format!("/api/v4/groups/{group}/issues")),
                2 => ("POST", format!("/api/v4/projects/{id}/pipeline/retry")),
                3 => ("GET", format!("/api/v4/projects/{id}/security_reports/")),
                4 => ("GET", "/api/v4/user".to_owned()),
                5 => ("GET", "/api/v4/version".to_owned()),
                6 => ("GET", "/api/v4/application/settings".to_owned()),
                _ => ("GET", format!("/api/v4/projects/{id}/unknown")),
            };
            (WAction::Route(route.0, route.1), None)
        };
        let users = self.users.len();
        WRequest {
            token,
            action,
            boundary,
            confidential: rng.chance(25),
            author: rng.chance(40).then(|| 1 + rng.below(users) as u64),
            assignees: (0..rng.below(3))
                .map(|_| 1 + rng.below(users) as u64)
                .collect(),
            ip: rng.pick(&[
                None,
                Some("10.1.2.3".parse().unwrap()),
                Some("203.0.113.7".parse().unwrap()),
            ]),
            now: NOW - 30 + rng.below(60) as i64,
        }
    }
}
