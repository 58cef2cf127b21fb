//! `decide` on a realistic snapshot, side by side in one criterion run with the same
//! checks in cedar-policy (attribute-based, and one policy per token) and with a minimal
//! hash-set plus ancestor-walk baseline.
//!
//! The world (deterministic, seeded): 10,000 namespaces (4,000 groups nested up to 8
//! deep, 6,000 projects in them), 10,000 users, 100,000 memberships, 10,000 tokens
//! (legacy `api` and `read_api`; fine-grained `all_memberships`, `selected_memberships`,
//! and both at once). Namespaces are private with every feature enabled, so every engine
//! answers the same question: does a scope of the token that covers the project grant the
//! permission, and does the user's effective role on the project or its ancestors reach
//! the permission's minimum? At setup, patrol, both Cedar encodings and the baseline are
//! checked to give the same answer to every benchmarked request.
//!
//! `cargo bench -p patrol-benches --bench decide`; figures in `docs/performance.md`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    missing_debug_implementations,
    reason = "benchmark setup"
)]

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::hint::black_box;
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Entities, Entity, EntityId, EntityTypeName,
    EntityUid, PolicySet, Request as CedarRequest, RestrictedExpression,
};
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, criterion_group, criterion_main};
use patrol::catalog::{Catalog, RoutePath};
use patrol::domain::{AccessKind, AccessLevel, BoundaryKind, MinRole, Plan, Visibility};
use patrol::engine::{
    Action, BoundaryRef, Credential, Grant, GranularScope, GroupId, GroupSpec, Owner, ProjectId,
    ProjectSpec, Request, Resource, Snapshot, Token, TokenId, User, UserId, decide,
};
use rustc_hash::{FxHashMap, FxHashSet};

const GROUPS: u32 = 4_000;
const PROJECTS: u32 = 6_000;
/// Group nesting: a top-level group is at depth 1, the deepest subgroups at this depth.
const MAX_GROUP_DEPTH: u8 = 8;
const USERS: u64 = 10_000;
const MEMBERSHIPS: usize = 100_000;
const TOKENS: u64 = 10_000;
const REQUESTS: usize = 4_096;
/// The first requests, on which the Cedar policy-per-token variant is checked and timed.
const PER_TOKEN_REQUESTS: usize = 256;
/// Project permissions of the design's table; none has `requires`, all are private-only
/// here (every namespace is private), so the role and the grant decide.
const PERMISSIONS: [&str; 7] = [
    "read_issue",
    "update_issue",
    "read_pipeline",
    "create_pipeline",
    "read_repository",
    "push_repository",
    "read_merge_request",
];
const WRITE_PERMISSIONS: [&str; 3] = ["update_issue", "create_pipeline", "push_repository"];
const READ_PERMISSIONS: [&str; 4] = [
    "read_issue",
    "read_pipeline",
    "read_repository",
    "read_merge_request",
];
/// Membership levels and how often each occurs (minimal access counts for nothing here).
const LEVELS: [(u8, u64); 7] = [
    (5, 3),
    (10, 10),
    (15, 5),
    (20, 20),
    (30, 37),
    (40, 15),
    (50, 10),
];
const ROLES: [(u8, &str); 6] = [
    (10, "guest"),
    (15, "planner"),
    (20, "reporter"),
    (30, "developer"),
    (40, "maintainer"),
    (50, "owner"),
];

/// xorshift64*: small, seeded, the same world on every run and machine.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    fn weighted(&mut self, items: &[(u8, u64)]) -> u8 {
        let mut roll = self.below(items.iter().map(|(_, w)| w).sum());
        for &(item, weight) in items {
            if roll < weight {
                return item;
            }
            roll -= weight;
        }
        items[items.len() - 1].0
    }

    /// A non-empty random subset.
    fn subset(&mut self, items: &[&'static str]) -> Vec<&'static str> {
        loop {
            let chosen: Vec<_> = items
                .iter()
                .copied()
                .filter(|_| self.below(2) == 0)
                .collect();
            if !chosen.is_empty() {
                return chosen;
            }
        }
    }
}

/// One granular scope: its access kind, the namespaces of `selected_memberships`, and the
/// permissions as the token's owner picked them (before `implies`).
struct ScopeSpec {
    access: AccessKind,
    namespaces: Vec<u32>,
    permissions: Vec<&'static str>,
}

enum GrantSpec {
    /// A legacy scope name.
    Legacy(&'static str),
    /// At most one scope per access kind, so that the engines below can key on the kind.
    FineGrained(Vec<ScopeSpec>),
}

struct TokenSpec {
    user: u64,
    grant: GrantSpec,
}

/// The world in plain form, from which every engine's data is built. Namespace index `i`
/// is group `i` below `GROUPS` and project `i` from there on.
struct World {
    parents: Vec<Option<u32>>,
    children: Vec<Vec<u32>>,
    members: Vec<(u64, u32, u8)>,
    /// User id -> the namespaces the user is a direct member of, with the level.
    by_user: Vec<Vec<(u32, u8)>>,
    tokens: Vec<TokenSpec>,
}

fn world() -> World {
    let mut rng = Rng(0x5EED_CAFE_F00D_1234);
    let mut parents = Vec::new();
    let mut depth: Vec<u8> = Vec::new();
    for g in 0..GROUPS {
        // A fifth of the groups are top-level, the rest hang below an earlier group.
        let parent = (g > 0 && rng.below(5) > 0)
            .then(|| rng.below(g.into()) as u32)
            .filter(|&p| depth[p as usize] < MAX_GROUP_DEPTH);
        depth.push(parent.map_or(1, |p| depth[p as usize] + 1));
        parents.push(parent);
    }
    for _ in 0..PROJECTS {
        parents.push(Some(rng.below(GROUPS.into()) as u32));
    }
    let mut children = vec![Vec::new(); parents.len()];
    for (i, p) in parents.iter().enumerate() {
        if let Some(p) = p {
            children[*p as usize].push(i as u32);
        }
    }
    let mut seen = FxHashSet::default();
    let mut members = Vec::new();
    let mut by_user = vec![Vec::new(); USERS as usize + 1];
    while members.len() < MEMBERSHIPS {
        let user = 1 + rng.below(USERS);
        let ns = rng.below((GROUPS + PROJECTS).into()) as u32;
        if seen.insert((user, ns)) {
            let level = rng.weighted(&LEVELS);
            members.push((user, ns, level));
            by_user[user as usize].push((ns, level));
        }
    }
    let selected = |rng: &mut Rng, user: u64, n: u64| -> Vec<u32> {
        let mine = &by_user[user as usize];
        let mut chosen: Vec<u32> = (0..1 + rng.below(n))
            .map(|_| match mine.is_empty() {
                true => rng.below((GROUPS + PROJECTS).into()) as u32,
                false => rng.pick(mine).0,
            })
            .collect();
        chosen.sort_unstable();
        chosen.dedup();
        chosen
    };
    let tokens = (0..TOKENS)
        .map(|_| {
            let user = 1 + rng.below(USERS);
            let grant = match rng.below(20) {
                0..8 => GrantSpec::Legacy("api"),
                8..11 => GrantSpec::Legacy("read_api"),
                11..15 => GrantSpec::FineGrained(vec![ScopeSpec {
                    access: AccessKind::AllMemberships,
                    namespaces: vec![],
                    permissions: rng.subset(&PERMISSIONS),
                }]),
                15..18 => GrantSpec::FineGrained(vec![ScopeSpec {
                    access: AccessKind::SelectedMemberships,
                    namespaces: selected(&mut rng, user, 3),
                    permissions: rng.subset(&PERMISSIONS),
                }]),
                // Read everywhere the user is a member, write in a few chosen places.
                _ => GrantSpec::FineGrained(vec![
                    ScopeSpec {
                        access: AccessKind::AllMemberships,
                        namespaces: vec![],
                        permissions: rng.subset(&READ_PERMISSIONS),
                    },
                    ScopeSpec {
                        access: AccessKind::SelectedMemberships,
                        namespaces: selected(&mut rng, user, 2),
                        permissions: rng.subset(&WRITE_PERMISSIONS),
                    },
                ]),
            };
            TokenSpec { user, grant }
        })
        .collect();
    World {
        parents,
        children,
        members,
        by_user,
        tokens,
    }
}

fn scope(catalog: &Catalog, spec: &ScopeSpec) -> GranularScope {
    let (groups, projects): (Vec<u32>, Vec<u32>) =
        spec.namespaces.iter().partition(|&&n| n < GROUPS);
    GranularScope::new(
        catalog,
        spec.access,
        projects.into_iter().map(|n| ProjectId(n.into())),
        groups.into_iter().map(|n| GroupId(n.into())),
        spec.permissions.iter().copied(),
    )
    .unwrap()
}

fn grant(catalog: &Catalog, spec: &GrantSpec) -> Grant {
    match spec {
        GrantSpec::Legacy(name) => Grant::legacy(catalog, [*name]).unwrap(),
        GrantSpec::FineGrained(scopes) => Grant::FineGrained {
            scopes: scopes.iter().map(|s| scope(catalog, s)).collect(),
        },
    }
}

/// What a token grants among `PERMISSIONS`, by how the scope's boundary is decided,
/// expanded by `implies` exactly as patrol expands it. The input of Cedar and the baseline.
#[derive(Default)]
struct Granted {
    /// Legacy: wherever the user's role reaches.
    legacy: Vec<&'static str>,
    /// `all_memberships`: where the user is at least guest.
    member: Vec<&'static str>,
    /// `selected_memberships`: in `boundary` and below.
    selected: Vec<&'static str>,
    boundary: Vec<u32>,
}

fn granted(catalog: &Catalog, spec: &GrantSpec) -> Granted {
    let among = |set: &patrol::engine::PermSet| -> Vec<&'static str> {
        PERMISSIONS
            .iter()
            .copied()
            .filter(|p| set.contains(catalog.permission_id(p).unwrap()))
            .collect()
    };
    let mut out = Granted::default();
    match (spec, grant(catalog, spec)) {
        (GrantSpec::Legacy(_), Grant::Legacy { permissions, .. }) => {
            out.legacy = among(&permissions)
        }
        (GrantSpec::FineGrained(specs), Grant::FineGrained { scopes }) => {
            for (spec, scope) in specs.iter().zip(&scopes) {
                match spec.access {
                    AccessKind::AllMemberships => out.member = among(&scope.permissions),
                    AccessKind::SelectedMemberships => {
                        out.selected = among(&scope.permissions);
                        out.boundary = spec.namespaces.clone();
                    }
                    other => panic!("no {other:?} scopes in this world"),
                }
            }
        }
        _ => unreachable!(),
    }
    out
}

fn snapshot(catalog: &Arc<Catalog>, w: &World) -> Snapshot {
    let mut s = Snapshot::new(catalog.clone());
    for u in 1..=USERS {
        let user = User {
            username: format!("u{u}"),
            blocked: false,
            admin: false,
        };
        s.upsert_user(UserId(u), user).unwrap();
    }
    for g in 0..GROUPS {
        let spec = GroupSpec {
            parent: w.parents[g as usize].map(|p| GroupId(p.into())),
            path: format!("g{g}"),
            visibility: Visibility::Private,
            plan: Plan::Ultimate,
        };
        s.upsert_group(GroupId(g.into()), spec).unwrap();
    }
    for ns in GROUPS..GROUPS + PROJECTS {
        let spec = ProjectSpec {
            namespace: Owner::Group(GroupId(w.parents[ns as usize].unwrap().into())),
            path: format!("p{ns}"),
            visibility: Visibility::Private,
            features: vec![],
        };
        s.upsert_project(ProjectId(ns.into()), spec).unwrap();
    }
    for &(user, ns, level) in &w.members {
        let level = Some(AccessLevel::from_number(level.into()).unwrap());
        if ns < GROUPS {
            s.set_group_member(GroupId(ns.into()), UserId(user), level)
                .unwrap();
        } else {
            s.set_project_member(ProjectId(ns.into()), UserId(user), level)
                .unwrap();
        }
    }
    for (i, t) in w.tokens.iter().enumerate() {
        s.insert_token(Token {
            id: TokenId(i as u64),
            user_id: UserId(t.user),
            revoked: false,
            expires_at: None,
            allowed_ips: vec![],
            grant: grant(catalog, &t.grant),
        });
    }
    s
}

/// The permission's minimum level on a project.
fn min_level(catalog: &Catalog, permission: &str) -> u8 {
    let p = catalog.permission_by_name(permission).unwrap();
    assert_eq!(p.required.len(), 1, "{permission} has `requires`");
    match p.min_role(BoundaryKind::Project) {
        Some(MinRole::Level(level)) => level.number(),
        other => panic!("{permission} has no level on projects: {other:?}"),
    }
}

fn role_name(level: u8) -> &'static str {
    ROLES.iter().find(|(l, _)| *l == level).unwrap().1
}

// ---- the baseline ----

struct BaseToken {
    user: u64,
    legacy: FxHashSet<&'static str>,
    member: FxHashSet<&'static str>,
    selected: FxHashSet<&'static str>,
    boundary: FxHashSet<u32>,
}

/// The least any engine must do: the token's permission sets, then one ancestor walk that
/// finds the user's level and whether a selected namespace is on the way. No catalog, no
/// reasons.
struct Baseline {
    tokens: FxHashMap<u64, BaseToken>,
    parents: Vec<Option<u32>>,
    members: FxHashMap<(u64, u32), u8>,
    min: FxHashMap<&'static str, u8>,
}

impl Baseline {
    fn new(catalog: &Catalog, w: &World, granted: &[Granted]) -> Self {
        let tokens = w
            .tokens
            .iter()
            .zip(granted)
            .enumerate()
            .map(|(i, (t, g))| {
                let token = BaseToken {
                    user: t.user,
                    legacy: g.legacy.iter().copied().collect(),
                    member: g.member.iter().copied().collect(),
                    selected: g.selected.iter().copied().collect(),
                    boundary: g.boundary.iter().copied().collect(),
                };
                (i as u64, token)
            })
            .collect();
        Self {
            tokens,
            parents: w.parents.clone(),
            members: w.members.iter().map(|&(u, n, l)| ((u, n), l)).collect(),
            min: PERMISSIONS
                .iter()
                .map(|p| (*p, min_level(catalog, p)))
                .collect(),
        }
    }

    fn check(&self, token: u64, permission: &str, ns: u32) -> bool {
        let Some(t) = self.tokens.get(&token) else {
            return false;
        };
        let legacy = t.legacy.contains(permission);
        let member = t.member.contains(permission);
        let selected = t.selected.contains(permission);
        if !(legacy || member || selected) {
            return false;
        }
        let Some(&min) = self.min.get(permission) else {
            return false;
        };
        let (mut level, mut inside) = (0, false);
        let mut next = Some(ns);
        while let Some(n) = next {
            if let Some(&l) = self.members.get(&(t.user, n)) {
                level = level.max(l);
            }
            inside = inside || (selected && t.boundary.contains(&n));
            if level >= min && (legacy || (member && level >= 10) || inside) {
                return true;
            }
            next = self.parents[n as usize];
        }
        false
    }
}

// ---- Cedar ----

fn uid(kind: &str, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(
        EntityTypeName::from_str(kind).unwrap(),
        EntityId::from_str(id).unwrap(),
    )
}

fn ns_uid(n: u32) -> EntityUid {
    uid("Namespace", &n.to_string())
}

fn entity_set(uids: impl IntoIterator<Item = EntityUid>) -> RestrictedExpression {
    RestrictedExpression::new_set(uids.into_iter().map(RestrictedExpression::new_entity_uid))
}

/// The whole world as Cedar entities, built once:
/// - `Namespace::"i"`, member of its parent namespace (so `in` walks the group tree);
/// - `Action::"read_issue"`, member of `Action::"min_reporter"` etc. (its minimum role);
/// - `User::"u"` with one attribute per role: the namespaces where the user is a direct
///   member with at least that role (`resource in principal.user.reporter` is then "the
///   effective role on the resource reaches reporter");
/// - `Token::"t"` with its user and, per kind of boundary, the actions it grants
///   (`legacy`, `member`, `selected`), and the namespaces of its selected scope.
fn cedar_entities(catalog: &Catalog, w: &World, granted: &[Granted]) -> Entities {
    let mut out = Vec::new();
    for (_, role) in ROLES {
        out.push(Entity::new_no_attrs(
            uid("Action", &format!("min_{role}")),
            HashSet::new(),
        ));
    }
    for p in PERMISSIONS {
        let group = uid(
            "Action",
            &format!("min_{}", role_name(min_level(catalog, p))),
        );
        out.push(Entity::new_no_attrs(uid("Action", p), [group].into()));
    }
    for (i, parent) in w.parents.iter().enumerate() {
        let parents = parent.iter().map(|&p| ns_uid(p)).collect();
        out.push(Entity::new_no_attrs(ns_uid(i as u32), parents));
    }
    for u in 1..=USERS {
        let mine = &w.by_user[u as usize];
        let attrs: HashMap<String, RestrictedExpression> = ROLES
            .iter()
            .map(|&(level, role)| {
                let at_least = mine.iter().filter(|(_, l)| *l >= level);
                (
                    role.to_owned(),
                    entity_set(at_least.map(|&(n, _)| ns_uid(n))),
                )
            })
            .collect();
        out.push(Entity::new(uid("User", &u.to_string()), attrs, HashSet::new()).unwrap());
    }
    let actions = |names: &[&str]| entity_set(names.iter().map(|p| uid("Action", p)));
    for (i, (t, g)) in w.tokens.iter().zip(granted).enumerate() {
        let attrs: HashMap<String, RestrictedExpression> = [
            (
                "user",
                RestrictedExpression::new_entity_uid(uid("User", &t.user.to_string())),
            ),
            ("legacy", actions(&g.legacy)),
            ("member", actions(&g.member)),
            ("selected", actions(&g.selected)),
            (
                "boundary",
                entity_set(g.boundary.iter().map(|&n| ns_uid(n))),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        out.push(Entity::new(uid("Token", &i.to_string()), attrs, HashSet::new()).unwrap());
    }
    Entities::from_entities(out, None).unwrap()
}

/// The condition under which a scope of the token grants `action` on `resource`.
const CEDAR_GRANT: &str = "(principal.legacy.contains(action) \
     || (principal.member.contains(action) && resource in principal.user.guest) \
     || (principal.selected.contains(action) && resource in principal.boundary))";

/// One static policy, whatever the number of permissions or tokens: a scope whose
/// boundary covers the namespace grants the action, and the user's effective role on the
/// namespace or an ancestor reaches the action's minimum. Cedar evaluates every policy
/// of the set on every request, so one policy is the fastest way to write this.
fn cedar_policy() -> PolicySet {
    let roles: Vec<String> = ROLES
        .iter()
        .map(|(_, role)| {
            format!("(action in Action::\"min_{role}\" && resource in principal.user.{role})")
        })
        .collect();
    let text = format!(
        "permit(principal is Token, action, resource is Namespace) when {{ {CEDAR_GRANT} && ({}) }};",
        roles.join(" || ")
    );
    PolicySet::from_str(&text).unwrap()
}

/// The same, as one policy per minimum role (`action in Action::"min_reporter"` in the
/// policy's scope): what a policy author would more likely write.
fn cedar_policies_by_role() -> PolicySet {
    let mut text = String::new();
    for (_, role) in ROLES {
        writeln!(
            text,
            "permit(principal is Token, action in Action::\"min_{role}\", resource is Namespace) \
             when {{ {CEDAR_GRANT} && resource in principal.user.{role} }};"
        )
        .unwrap();
    }
    PolicySet::from_str(&text).unwrap()
}

/// The other way to write it: one `permit` per token scope (its actions in the policy's
/// scope, its boundary in the condition) and one `forbid` per minimum role.
fn cedar_policies_per_token(granted: &[Granted]) -> PolicySet {
    let mut text = String::new();
    let actions = |names: &[&str]| {
        names
            .iter()
            .map(|p| format!("Action::\"{p}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (i, g) in granted.iter().enumerate() {
        let head = |names: &[&str]| {
            format!(
                "permit(principal == Token::\"{i}\", action in [{}], resource is Namespace)",
                actions(names)
            )
        };
        if !g.legacy.is_empty() {
            writeln!(text, "{};", head(&g.legacy)).unwrap();
        }
        if !g.member.is_empty() {
            writeln!(
                text,
                "{} when {{ resource in principal.user.guest }};",
                head(&g.member)
            )
            .unwrap();
        }
        if !g.selected.is_empty() {
            let boundary: Vec<String> = g
                .boundary
                .iter()
                .map(|n| format!("Namespace::\"{n}\""))
                .collect();
            writeln!(
                text,
                "{} when {{ resource in [{}] }};",
                head(&g.selected),
                boundary.join(", ")
            )
            .unwrap();
        }
    }
    for (_, role) in ROLES {
        writeln!(
            text,
            "forbid(principal is Token, action in Action::\"min_{role}\", resource is Namespace) \
             unless {{ resource in principal.user.{role} }};"
        )
        .unwrap();
    }
    PolicySet::from_str(&text).unwrap()
}

// ---- the checks ----

struct Check {
    token: u64,
    permission: &'static str,
    ns: u32,
    /// The route path, read as the gateway reads it before it asks the engine.
    path: RoutePath,
    cedar: CedarRequest,
}

impl Check {
    fn request(&self) -> Request<'_> {
        Request {
            credential: Credential::Token(TokenId(self.token)),
            action: Action::Permission(self.permission),
            boundary: Some(BoundaryRef::ProjectId(ProjectId(self.ns.into()))),
            resource: Resource::default(),
            client_ip: None,
            now: 0,
        }
    }

    fn route(&self) -> Request<'_> {
        Request {
            credential: Credential::Token(TokenId(self.token)),
            action: Action::Route {
                method: "GET",
                path: &self.path,
            },
            boundary: None,
            resource: Resource::default(),
            client_ip: None,
            now: 0,
        }
    }
}

/// A third of the requests go to a project the token's user is a direct member of, a
/// third to a project somewhere below a group the user is a member of, a third anywhere.
fn checks(w: &World) -> Vec<Check> {
    let mut rng = Rng(0xDEC1_DE00_0000_0001);
    let random_project = |rng: &mut Rng| GROUPS + rng.below(PROJECTS.into()) as u32;
    (0..REQUESTS)
        .map(|_| {
            let token = rng.below(TOKENS);
            let mine = &w.by_user[w.tokens[token as usize].user as usize];
            let projects: Vec<u32> = mine
                .iter()
                .map(|&(n, _)| n)
                .filter(|&n| n >= GROUPS)
                .collect();
            let groups: Vec<u32> = mine
                .iter()
                .map(|&(n, _)| n)
                .filter(|&n| n < GROUPS)
                .collect();
            let ns = match rng.below(3) {
                0 if !projects.is_empty() => *rng.pick(&projects),
                1 if !groups.is_empty() => {
                    // Down the tree to a project, if the branch has one.
                    let mut n = *rng.pick(&groups);
                    while n < GROUPS && !w.children[n as usize].is_empty() {
                        n = *rng.pick(&w.children[n as usize]);
                    }
                    if n < GROUPS {
                        random_project(&mut rng)
                    } else {
                        n
                    }
                }
                _ => random_project(&mut rng),
            };
            let permission = *rng.pick(&PERMISSIONS);
            let cedar = CedarRequest::new(
                uid("Token", &token.to_string()),
                uid("Action", permission),
                ns_uid(ns),
                Context::empty(),
                None,
            )
            .unwrap();
            Check {
                token,
                permission,
                ns,
                path: RoutePath::parse(&format!("/api/v4/projects/{ns}/issues"))
                    .expect("a plain path reads"),
                cedar,
            }
        })
        .collect()
}

/// The world's shape, printed at setup for docs/performance.md.
fn describe(w: &World) -> String {
    let chain = |mut n: u32| {
        let mut len = 1;
        while let Some(p) = w.parents[n as usize] {
            n = p;
            len += 1;
        }
        len
    };
    let mut depths = [0; MAX_GROUP_DEPTH as usize + 1];
    for g in 0..GROUPS {
        depths[chain(g)] += 1;
    }
    let chains: usize = (GROUPS..GROUPS + PROJECTS).map(chain).sum();
    let mut kinds: FxHashMap<String, usize> = FxHashMap::default();
    for t in &w.tokens {
        let kind = match &t.grant {
            GrantSpec::Legacy(scope) => format!("legacy {scope}"),
            GrantSpec::FineGrained(scopes) => {
                let names: Vec<_> = scopes.iter().map(|s| format!("{:?}", s.access)).collect();
                names.join("+")
            }
        };
        *kinds.entry(kind).or_default() += 1;
    }
    let mut kinds: Vec<_> = kinds.into_iter().collect();
    kinds.sort();
    format!(
        "{} namespaces, groups by depth 1..={MAX_GROUP_DEPTH}: {:?}, a project and its \
         ancestors: {:.2} namespaces on average; {} memberships; tokens: {kinds:?}",
        w.parents.len(),
        &depths[1..],
        chains as f64 / f64::from(PROJECTS),
        w.members.len(),
    )
}

fn cycle<'a, T, R>(
    group: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    items: &'a [T],
    mut f: impl FnMut(&'a T) -> R,
) {
    assert!(!items.is_empty(), "{name}: nothing to run");
    group.bench_function(name, |b| {
        let mut i = 0;
        b.iter(|| {
            i += 1;
            if i == items.len() {
                i = 0;
            }
            f(black_box(&items[i]))
        });
    });
}

fn load_catalog() -> Catalog {
    match patrol::catalog::load_embedded() {
        Ok(catalog) => catalog,
        Err(e) => {
            let dir =
                Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/engine_catalog");
            eprintln!(
                "NOTICE: the embedded catalog does not load ({e}); using {} instead",
                dir.display()
            );
            patrol::catalog::load_dir(&dir).unwrap()
        }
    }
}

fn bench(c: &mut Criterion) {
    let catalog = Arc::new(load_catalog());
    let w = world();
    let granted: Vec<Granted> = w
        .tokens
        .iter()
        .map(|t| granted(&catalog, &t.grant))
        .collect();
    let snap = snapshot(&catalog, &w);
    let baseline = Baseline::new(&catalog, &w, &granted);
    let entities = cedar_entities(&catalog, &w, &granted);
    let policy = cedar_policy();
    let by_role = cedar_policies_by_role();
    let per_token = cedar_policies_per_token(&granted);
    let authorizer = Authorizer::new();
    let checks = checks(&w);
    println!("{}", describe(&w));
    // Per-token policies cost milliseconds a check: they are checked and timed on a slice.
    let per_token_checks = &checks[..PER_TOKEN_REQUESTS];

    // Every engine answers every benchmarked request the same way.
    let cedar = |check: &Check, policies: &PolicySet| {
        let response = authorizer.is_authorized(&check.cedar, policies, &entities);
        let errors: Vec<_> = response.diagnostics().errors().collect();
        assert!(errors.is_empty(), "cedar errors: {errors:?}");
        response.decision() == CedarDecision::Allow
    };
    let mut reasons: FxHashMap<&str, usize> = FxHashMap::default();
    for (i, check) in checks.iter().enumerate() {
        let decision = decide(&snap, &check.request());
        *reasons.entry(decision.reason.as_str()).or_default() += 1;
        let answers = [
            decision.allowed,
            cedar(check, &policy),
            cedar(check, &by_role),
            match i < PER_TOKEN_REQUESTS {
                true => cedar(check, &per_token),
                false => decision.allowed,
            },
            baseline.check(check.token, check.permission, check.ns),
        ];
        assert!(
            answers.iter().all(|&a| a == decision.allowed),
            "engines disagree (patrol, cedar, cedar by role, cedar per token, baseline) = {answers:?} on \
             {} on {} by token {} (legacy {:?}, member {:?}, selected {:?} in {:?}): {:?}",
            check.permission,
            check.ns,
            check.token,
            granted[check.token as usize].legacy,
            granted[check.token as usize].member,
            granted[check.token as usize].selected,
            granted[check.token as usize].boundary,
            decision.reason
        );
        // The route names the same permission, `read_issue`, and the same project.
        let by_route = decide(&snap, &check.route());
        let by_name = decide(
            &snap,
            &Request {
                action: Action::Permission("read_issue"),
                ..check.request()
            },
        );
        assert_eq!(
            (by_route.allowed, by_route.reason),
            (by_name.allowed, by_name.reason)
        );
    }
    let (allowed, denied): (Vec<&Check>, Vec<&Check>) = checks
        .iter()
        .partition(|c| decide(&snap, &c.request()).allowed);
    let mut reasons: Vec<_> = reasons.into_iter().collect();
    reasons.sort();
    println!(
        "{} requests: {} allowed, {} denied; reasons {reasons:?}; {} Cedar policies per token",
        checks.len(),
        allowed.len(),
        denied.len(),
        per_token.policies().count()
    );

    // Pre-built requests, so that only `decide` is timed.
    fn requests<'a>(checks: &[&'a Check]) -> Vec<Request<'a>> {
        checks.iter().map(|c| c.request()).collect()
    }
    let all: Vec<&Check> = checks.iter().collect();
    let mixed_requests = requests(&all);
    let allowed_requests = requests(&allowed);
    let denied_requests = requests(&denied);
    let route_requests: Vec<Request<'_>> = checks.iter().map(Check::route).collect();
    let invalid = [Request {
        credential: Credential::Invalid,
        ..checks[0].request()
    }];

    let mut group = c.benchmark_group("decide");
    cycle(&mut group, "patrol/mixed", &mixed_requests, |r| {
        decide(&snap, r).allowed
    });
    cycle(&mut group, "patrol/allowed", &allowed_requests, |r| {
        decide(&snap, r).allowed
    });
    cycle(&mut group, "patrol/denied", &denied_requests, |r| {
        decide(&snap, r).allowed
    });
    cycle(&mut group, "patrol/route", &route_requests, |r| {
        decide(&snap, r).allowed
    });
    cycle(&mut group, "patrol/invalid", &invalid, |r| {
        decide(&snap, r).allowed
    });
    cycle(&mut group, "baseline", &checks, |c| {
        baseline.check(c.token, c.permission, c.ns)
    });
    cycle(&mut group, "baseline/allowed", &allowed, |c| {
        baseline.check(c.token, c.permission, c.ns)
    });
    cycle(&mut group, "baseline/denied", &denied, |c| {
        baseline.check(c.token, c.permission, c.ns)
    });
    cycle(&mut group, "cedar/attributes", &checks, |c| {
        authorizer
            .is_authorized(&c.cedar, &policy, &entities)
            .decision()
    });
    cycle(&mut group, "cedar/attributes/allowed", &allowed, |c| {
        authorizer
            .is_authorized(&c.cedar, &policy, &entities)
            .decision()
    });
    cycle(&mut group, "cedar/attributes/denied", &denied, |c| {
        authorizer
            .is_authorized(&c.cedar, &policy, &entities)
            .decision()
    });
    cycle(&mut group, "cedar/attributes_by_role", &checks, |c| {
        authorizer
            .is_authorized(&c.cedar, &by_role, &entities)
            .decision()
    });
    group.finish();

    // Thousands of policies per request: fewer, longer samples.
    let mut group = c.benchmark_group("decide_cedar_policy_per_token");
    group.sample_size(10);
    cycle(&mut group, "cedar_per_token/mixed", per_token_checks, |c| {
        authorizer
            .is_authorized(&c.cedar, &per_token, &entities)
            .decision()
    });
    group.finish();
}

/// What a token's first use after a restart spends on its secret: verifying the stored
/// salted digest, against argon2id at the default cost (how tokens were stored before).
fn secrets(c: &mut Criterion) {
    let secret = "S".repeat(30);
    let digest = patrol::secret::digest_secret(&secret).unwrap();
    let argon2 =
        patrol::secret::hash_secret(patrol::secret::Argon2Params::default(), &secret).unwrap();
    assert!(patrol::secret::verify_secret(&digest, &secret));
    assert!(patrol::secret::verify_secret(&argon2, &secret));
    let mut group = c.benchmark_group("verify_secret");
    group.bench_function("digest (hmac-sha256, salted)", |b| {
        b.iter(|| patrol::secret::verify_secret(black_box(&digest), black_box(&secret)));
    });
    group.sample_size(10);
    group.bench_function("argon2id m=19456,t=2,p=1", |b| {
        b.iter(|| patrol::secret::verify_secret(black_box(&argon2), black_box(&secret)));
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(50)
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    targets = bench, secrets
}
criterion_main!(benches);
