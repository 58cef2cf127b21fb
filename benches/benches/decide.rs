//! `decide` on a realistic snapshot, side by side in one criterion run with the same
//! checks in cedar-policy and with a minimal hash-set plus ancestor-walk baseline.
//!
//! The world: 10,000 namespaces (4,000 groups nested up to depth 8, 6,000 projects),
//! 100,000 memberships, 10,000 tokens (legacy `api` and `read_api`, fine-grained
//! `all_memberships`). Namespaces are private and features enabled, so every engine
//! answers the same question: does the token grant the permission, and does the user's
//! effective role on the project or its ancestors reach the permission's minimum?
//! At setup, patrol, Cedar and the baseline are checked to agree on every request.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_debug_implementations,
    reason = "benchmark setup"
)]

use std::hint::black_box;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Entities, Entity, EntityId, EntityTypeName,
    EntityUid, PolicySet, Request as CedarRequest, RestrictedExpression,
};
use criterion::{Criterion, criterion_group, criterion_main};
use patrol::catalog::Catalog;
use patrol::domain::{AccessKind, AccessLevel, MinRole, Plan, Visibility};
use patrol::engine::{
    Action, BoundaryRef, Credential, Grant, GranularScope, GroupId, GroupSpec, Owner, ProjectId,
    ProjectSpec, Request, Resource, Snapshot, Token, TokenId, User, UserId, decide,
};
use rustc_hash::{FxHashMap, FxHashSet};

const GROUPS: u64 = 4_000;
const PROJECTS: u64 = 6_000;
const USERS: u64 = 10_000;
const MEMBERSHIPS: usize = 100_000;
const TOKENS: u64 = 10_000;
const REQUESTS: usize = 1_024;
const PERMISSIONS: [&str; 7] = [
    "read_issue",
    "update_issue",
    "read_pipeline",
    "create_pipeline",
    "read_repository",
    "push_repository",
    "read_merge_request",
];
const LEVELS: [u8; 7] = [10, 15, 20, 30, 40, 50, 5];

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The world in plain form, shared by the three engines.
struct World {
    /// Namespace index -> parent index. Groups are 0..GROUPS, projects after them.
    parents: Vec<Option<u32>>,
    members: Vec<(u64, u32, u8)>,
    /// Token id -> (user, legacy?, granted permission names, expanded by implies).
    tokens: Vec<(u64, bool, Vec<&'static str>)>,
}

fn world(catalog: &Catalog) -> World {
    let mut rng = Rng(0x5EED_CAFE_F00D_1234);
    let mut parents = Vec::new();
    let mut depth = Vec::new();
    for g in 0..GROUPS {
        let parent = (g > 0 && rng.below(10) < 8)
            .then(|| rng.below(g) as u32)
            .filter(|&p| depth[p as usize] < 7);
        depth.push(parent.map_or(0, |p| depth[p as usize] + 1));
        parents.push(parent);
    }
    for _ in 0..PROJECTS {
        parents.push(Some(rng.below(GROUPS) as u32));
    }
    let mut seen = FxHashSet::default();
    let mut members = Vec::new();
    while members.len() < MEMBERSHIPS {
        let user = 1 + rng.below(USERS);
        let ns = rng.below(GROUPS + PROJECTS) as u32;
        if seen.insert((user, ns)) {
            members.push((user, ns, LEVELS[rng.below(LEVELS.len() as u64) as usize]));
        }
    }
    let expand = |names: &[&'static str]| -> Vec<&'static str> {
        PERMISSIONS
            .iter()
            .copied()
            .filter(|p| {
                let id = catalog.permission_id(p).unwrap();
                names
                    .iter()
                    .any(|n| catalog.permission_by_name(n).unwrap().implied.contains(id))
            })
            .collect()
    };
    let tokens = (0..TOKENS)
        .map(|_| {
            let user = 1 + rng.below(USERS);
            match rng.below(4) {
                0 | 1 => (user, true, PERMISSIONS.to_vec()),
                2 => (
                    user,
                    true,
                    PERMISSIONS
                        .iter()
                        .copied()
                        .filter(|p| p.starts_with("read_"))
                        .collect(),
                ),
                _ => {
                    let chosen: Vec<&'static str> = PERMISSIONS
                        .iter()
                        .copied()
                        .filter(|_| rng.below(2) == 0)
                        .collect();
                    (user, false, expand(&chosen))
                }
            }
        })
        .collect();
    World {
        parents,
        members,
        tokens,
    }
}

fn snapshot(catalog: &Arc<Catalog>, w: &World) -> Snapshot {
    let mut s = Snapshot::new(catalog.clone());
    for u in 1..=USERS {
        s.upsert_user(
            UserId(u),
            User {
                username: format!("u{u}"),
                blocked: false,
                admin: false,
            },
        )
        .unwrap();
    }
    for g in 0..GROUPS {
        let spec = GroupSpec {
            parent: w.parents[g as usize].map(|p| GroupId(u64::from(p))),
            path: format!("g{g}"),
            visibility: Visibility::Private,
            plan: Plan::Ultimate,
        };
        s.upsert_group(GroupId(g), spec).unwrap();
    }
    for p in 0..PROJECTS {
        let ns = (GROUPS + p) as usize;
        let spec = ProjectSpec {
            namespace: Owner::Group(GroupId(u64::from(w.parents[ns].unwrap()))),
            path: format!("p{p}"),
            visibility: Visibility::Private,
            features: vec![],
        };
        s.upsert_project(ProjectId(ns as u64), spec).unwrap();
    }
    for &(user, ns, level) in &w.members {
        let level = Some(AccessLevel::from_number(level.into()).unwrap());
        if u64::from(ns) < GROUPS {
            s.set_group_member(GroupId(ns.into()), UserId(user), level)
                .unwrap();
        } else {
            s.set_project_member(ProjectId(ns.into()), UserId(user), level)
                .unwrap();
        }
    }
    for (i, (user, legacy, perms)) in w.tokens.iter().enumerate() {
        let grant = if *legacy {
            let scope = if perms.len() == PERMISSIONS.len() {
                "api"
            } else {
                "read_api"
            };
            Grant::legacy(catalog, [scope]).unwrap()
        } else {
            let scope = GranularScope::new(
                catalog,
                AccessKind::AllMemberships,
                [],
                [],
                perms.iter().copied(),
            )
            .unwrap();
            Grant::FineGrained {
                scopes: vec![scope],
            }
        };
        s.insert_token(Token {
            id: TokenId(i as u64),
            user_id: UserId(*user),
            revoked: false,
            expires_at: None,
            allowed_ips: vec![],
            grant,
        });
    }
    s
}

/// The least any engine must do: a token's permission set, then an ancestor walk.
struct Baseline {
    tokens: FxHashMap<u64, (u64, FxHashSet<&'static str>)>,
    parents: Vec<Option<u32>>,
    members: FxHashMap<(u64, u32), u8>,
    min: FxHashMap<&'static str, u8>,
}

impl Baseline {
    fn check(&self, token: u64, permission: &str, ns: u32) -> bool {
        let Some((user, perms)) = self.tokens.get(&token) else {
            return false;
        };
        if !perms.contains(permission) {
            return false;
        }
        let min = self.min.get(permission).copied().unwrap_or(u8::MAX);
        let mut next = Some(ns);
        while let Some(n) = next {
            if self.members.get(&(*user, n)).is_some_and(|&l| l >= min) {
                return true;
            }
            next = self.parents[n as usize];
        }
        false
    }
}

fn uid(kind: &str, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(
        EntityTypeName::from_str(kind).unwrap(),
        EntityId::from_str(id).unwrap(),
    )
}

const CEDAR_LEVELS: [(u8, &str); 6] = [
    (10, "guest"),
    (15, "planner"),
    (20, "reporter"),
    (30, "developer"),
    (40, "maintainer"),
    (50, "owner"),
];

/// Per-permission policies: the token grants it, its scope covers the namespace (legacy:
/// always; all_memberships: the user is at least guest), and the user's role reaches the
/// minimum, through Role entities ordered by level and inherited down the namespace tree.
fn cedar_policies(catalog: &Catalog) -> PolicySet {
    let mut text = String::new();
    for p in PERMISSIONS {
        let Some(MinRole::Level(min)) = catalog
            .permission_by_name(p)
            .unwrap()
            .min_role(patrol::domain::BoundaryKind::Project)
        else {
            panic!("{p} has no level on projects")
        };
        text.push_str(&format!(
            "permit(principal is Token, action == Action::\"{p}\", resource is Namespace) when {{ \
               principal.perms.contains(\"{p}\") && \
               (principal.legacy || principal.user in resource.guest) && \
               principal.user in resource.{} }};\n",
            min.role_name()
        ));
    }
    PolicySet::from_str(&text).unwrap()
}

/// The entities one request needs: the token, its user (member of the roles it holds on
/// the namespace's ancestry), the namespace with its role attributes, and the roles.
fn cedar_entities(w: &World, token: u64, ns: u32) -> Entities {
    let (user, legacy, perms) = &w.tokens[token as usize];
    let mut chain = vec![ns];
    while let Some(p) = w.parents[*chain.last().unwrap() as usize] {
        chain.push(p);
    }
    let role = |n: u32, level: u8| uid("Role", &format!("{n}:{level}"));
    let mut entities = Vec::new();
    for (i, &n) in chain.iter().enumerate() {
        for (j, &(level, _)) in CEDAR_LEVELS.iter().enumerate() {
            // A role implies the roles below it, and the same role on the child namespace.
            let mut parents = std::collections::HashSet::new();
            if j > 0 {
                parents.insert(role(n, CEDAR_LEVELS[j - 1].0));
            }
            if i > 0 {
                parents.insert(role(chain[i - 1], level));
            }
            entities.push(Entity::new_no_attrs(role(n, level), parents));
        }
    }
    let held: std::collections::HashSet<EntityUid> = w
        .members
        .iter()
        .filter(|(u, n, l)| u == user && chain.contains(n) && *l >= 10)
        .map(|&(_, n, l)| {
            role(
                n,
                CEDAR_LEVELS
                    .iter()
                    .rev()
                    .find(|(lv, _)| *lv <= l)
                    .unwrap()
                    .0,
            )
        })
        .collect();
    let user_uid = uid("User", &user.to_string());
    entities.push(Entity::new_no_attrs(user_uid.clone(), held));
    let perms = RestrictedExpression::new_set(
        perms
            .iter()
            .map(|p| RestrictedExpression::new_string((*p).to_owned())),
    );
    let token_attrs = [
        (
            "user".to_owned(),
            RestrictedExpression::new_entity_uid(user_uid),
        ),
        ("legacy".to_owned(), RestrictedExpression::new_bool(*legacy)),
        ("perms".to_owned(), perms),
    ];
    entities.push(
        Entity::new(
            uid("Token", &token.to_string()),
            token_attrs.into_iter().collect(),
            Default::default(),
        )
        .unwrap(),
    );
    let ns_attrs = CEDAR_LEVELS.iter().map(|&(level, name)| {
        (
            name.to_owned(),
            RestrictedExpression::new_entity_uid(role(ns, level)),
        )
    });
    entities.push(
        Entity::new(
            uid("Namespace", &ns.to_string()),
            ns_attrs.collect(),
            Default::default(),
        )
        .unwrap(),
    );
    Entities::from_entities(entities, None).unwrap()
}

struct Check {
    token: u64,
    permission: &'static str,
    ns: u32,
    path: String,
    entities: Entities,
    cedar: CedarRequest,
}

fn bench(c: &mut Criterion) {
    let catalog = Arc::new(patrol::catalog::load_embedded().unwrap());
    let w = world(&catalog);
    let snap = snapshot(&catalog, &w);
    let baseline = Baseline {
        tokens: w
            .tokens
            .iter()
            .enumerate()
            .map(|(i, (u, _, p))| (i as u64, (*u, p.iter().copied().collect())))
            .collect(),
        parents: w.parents.clone(),
        members: w.members.iter().map(|&(u, n, l)| ((u, n), l)).collect(),
        min: PERMISSIONS
            .iter()
            .map(|p| {
                match catalog
                    .permission_by_name(p)
                    .unwrap()
                    .min_role(patrol::domain::BoundaryKind::Project)
                {
                    Some(MinRole::Level(l)) => (*p, l.number()),
                    _ => (*p, u8::MAX),
                }
            })
            .collect(),
    };
    let policies = cedar_policies(&catalog);
    let authorizer = Authorizer::new();

    // Requests: the token's user is a member somewhere in the project's tree half the time.
    let mut rng = Rng(0xDEC1_DE00_0000_0001);
    let mut checks = Vec::new();
    for _ in 0..REQUESTS {
        let token = rng.below(TOKENS);
        let user = w.tokens[token as usize].0;
        let ns = if rng.below(2) == 0 {
            w.members
                .iter()
                .find(|(u, n, _)| *u == user && u64::from(*n) >= GROUPS)
                .map_or(GROUPS as u32, |m| m.1)
        } else {
            (GROUPS + rng.below(PROJECTS)) as u32
        };
        let permission = PERMISSIONS[rng.below(PERMISSIONS.len() as u64) as usize];
        let entities = cedar_entities(&w, token, ns);
        let cedar = CedarRequest::new(
            uid("Token", &token.to_string()),
            uid("Action", permission),
            uid("Namespace", &ns.to_string()),
            Context::empty(),
            None,
        )
        .unwrap();
        checks.push(Check {
            token,
            permission,
            ns,
            path: format!("/api/v4/projects/{ns}/issues"),
            entities,
            cedar,
        });
    }

    let ask = |check: &Check| {
        decide(
            &snap,
            &Request {
                credential: Credential::Token(TokenId(check.token)),
                action: Action::Permission(check.permission),
                boundary: Some(BoundaryRef::ProjectId(ProjectId(check.ns.into()))),
                resource: Resource::default(),
                client_ip: None,
                now: 0,
            },
        )
    };
    // The three engines answer the same question the same way.
    let mut allowed = 0;
    for check in &checks {
        let patrol = ask(check).allowed;
        let cedar = authorizer
            .is_authorized(&check.cedar, &policies, &check.entities)
            .decision()
            == CedarDecision::Allow;
        let base = baseline.check(check.token, check.permission, check.ns);
        assert_eq!(
            (patrol, patrol),
            (cedar, base),
            "engines disagree on {}/{}/{}",
            check.token,
            check.permission,
            check.ns
        );
        allowed += usize::from(patrol);
    }
    println!(
        "{} checks, {allowed} allowed, {} denied",
        checks.len(),
        checks.len() - allowed
    );
    let (allows, denies): (Vec<&Check>, Vec<&Check>) = checks.iter().partition(|c| ask(c).allowed);

    let mut group = c.benchmark_group("decide");
    let mut i = 0;
    group.bench_function("patrol/mixed", |b| {
        b.iter(|| {
            i = (i + 1) % checks.len();
            black_box(ask(black_box(&checks[i])).allowed)
        })
    });
    group.bench_function("patrol/allowed", |b| {
        b.iter(|| {
            i = (i + 1) % allows.len();
            black_box(ask(black_box(allows[i])).allowed)
        })
    });
    group.bench_function("patrol/denied", |b| {
        b.iter(|| {
            i = (i + 1) % denies.len();
            black_box(ask(black_box(denies[i])).allowed)
        })
    });
    group.bench_function("patrol/route", |b| {
        b.iter(|| {
            i = (i + 1) % checks.len();
            let check = &checks[i];
            let request = Request {
                credential: Credential::Token(TokenId(check.token)),
                action: Action::Route {
                    method: "GET",
                    path: &check.path,
                },
                boundary: None,
                resource: Resource::default(),
                client_ip: None,
                now: 0,
            };
            black_box(decide(&snap, black_box(&request)).allowed)
        })
    });
    group.bench_function("patrol/invalid", |b| {
        let request = Request {
            credential: Credential::Invalid,
            action: Action::Permission("read_issue"),
            boundary: Some(BoundaryRef::ProjectId(ProjectId(GROUPS))),
            resource: Resource::default(),
            client_ip: None,
            now: 0,
        };
        b.iter(|| black_box(decide(&snap, black_box(&request)).allowed))
    });
    group.bench_function("baseline/mixed", |b| {
        b.iter(|| {
            i = (i + 1) % checks.len();
            let check = &checks[i];
            black_box(baseline.check(black_box(check.token), check.permission, check.ns))
        })
    });
    group.bench_function("cedar/mixed", |b| {
        b.iter(|| {
            i = (i + 1) % checks.len();
            let check = &checks[i];
            black_box(
                authorizer
                    .is_authorized(&check.cedar, &policies, &check.entities)
                    .decision(),
            )
        })
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
