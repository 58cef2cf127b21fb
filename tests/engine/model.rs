//! A deliberately naive reference model of docs/decisions.md: linear scans over the
//! plain `World`, recursion for ancestors and for `implies`, no indexes, no caching.
//! It reads permission metadata from the catalog (names, boundaries, roles, features,
//! plans, `required`, scopes' permission lists, routes), which is not under test, and
//! decides everything else itself, step by step in the order of the spec.

use patrol::catalog::{Catalog, Permission, RouteKind};
use patrol::domain::{AccessKind, BoundaryKind, FeatureAccess, MinRole, Plan, Visibility};
use patrol::engine::Reason;

use crate::world::{
    WAction, WBoundary, WGroup, WKind, WNs, WOwner, WProject, WRequest, WScope, WToken, WUser,
    World,
};

const GUEST: u8 = 10;
const REPORTER: u8 = 20;
const OWNER: u8 = 50;

/// What the model decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub reason: Reason,
    /// The required permission that failed, by name.
    pub failed: Option<String>,
    /// The required permissions `R`, by name, once the action is known (empty before
    /// step 6 and for skipped routes).
    pub required: Vec<String>,
}

impl Verdict {
    pub fn allowed(&self) -> bool {
        self.reason == Reason::Granted
    }
}

/// A resolved boundary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Project(u64),
    Group(u64),
    User,
    Instance,
}

impl Target {
    fn kind(self) -> BoundaryKind {
        match self {
            Target::Project(_) => BoundaryKind::Project,
            Target::Group(_) => BoundaryKind::Group,
            Target::User => BoundaryKind::User,
            Target::Instance => BoundaryKind::Instance,
        }
    }

    fn is_namespace(self) -> bool {
        matches!(self, Target::Project(_) | Target::Group(_))
    }
}

// ---- the directory, by linear scans ----

fn user(w: &World, id: u64) -> Option<&WUser> {
    w.users.iter().find(|u| u.id == id)
}

fn project(w: &World, id: u64) -> Option<&WProject> {
    w.projects.iter().find(|p| p.id == id && !p.deleted)
}

fn group(w: &World, id: u64) -> Option<&WGroup> {
    w.groups.iter().find(|g| g.id == id && !g.deleted)
}

/// `g` and its ancestors, nearest first.
fn group_and_ancestors(w: &World, g: u64) -> Vec<u64> {
    let mut out = vec![g];
    if let Some(parent) = group(w, g).and_then(|x| x.parent) {
        out.extend(group_and_ancestors(w, parent));
    }
    out
}

/// The groups above a namespace (or including it, for a group), nearest first.
fn groups_of(w: &World, t: Target) -> Vec<u64> {
    match t {
        Target::Project(id) => match project(w, id).unwrap().owner {
            WOwner::Group(g) => group_and_ancestors(w, g),
            WOwner::User(_) => Vec::new(),
        },
        Target::Group(id) => group_and_ancestors(w, id),
        Target::User | Target::Instance => Vec::new(),
    }
}

fn top_level_group(w: &World, t: Target) -> Option<&WGroup> {
    groups_of(w, t).last().and_then(|&g| group(w, g))
}

fn membership(w: &World, ns: WNs, u: u64) -> u8 {
    w.members
        .iter()
        .filter(|m| m.ns == ns && m.user == u)
        .map(|m| m.level)
        .max()
        .unwrap_or(0)
}

/// The effective level of user `u` on a project or group.
fn effective_level(w: &World, u: u64, t: Target) -> u8 {
    let mut best = 0;
    if let Target::Project(id) = t {
        if project(w, id).unwrap().owner == WOwner::User(u) {
            return OWNER;
        }
        best = membership(w, WNs::Project(id), u);
    }
    for g in groups_of(w, t) {
        best = best.max(membership(w, WNs::Group(g), u));
    }
    best
}

fn visibility(w: &World, t: Target) -> Visibility {
    match t {
        Target::Project(id) => project(w, id).unwrap().visibility,
        Target::Group(id) => group(w, id).unwrap().visibility,
        Target::User | Target::Instance => Visibility::Private,
    }
}

/// The access of a permission's feature on a project (`enabled` when unlisted, when
/// the permission has no feature, and off projects).
fn feature_access(c: &Catalog, w: &World, t: Target, p: &Permission) -> FeatureAccess {
    let (Target::Project(id), Some(feature)) = (t, p.feature) else {
        return FeatureAccess::Enabled;
    };
    let name = &c.feature(feature).name;
    let mut access = FeatureAccess::Enabled;
    for (f, a) in &project(w, id).unwrap().features {
        if f == name {
            access = *a;
        }
    }
    access
}

fn plan(w: &World, t: Target) -> Plan {
    top_level_group(w, t).map_or(Plan::Free, |g| g.plan)
}

fn public_path(c: &Catalog, w: &World, p: &Permission, t: Target, signed_in: bool) -> bool {
    p.public
        && t.is_namespace()
        && feature_access(c, w, t, p) == FeatureAccess::Enabled
        && match visibility(w, t) {
            Visibility::Public => true,
            Visibility::Internal => signed_in,
            Visibility::Private => false,
        }
}

// ---- permissions ----

/// Whether holding `held` grants `wanted`: the same permission, or one it implies,
/// transitively (by recursion over `implies`, not the catalog's closure).
fn grants(c: &Catalog, held: &Permission, wanted: &Permission) -> bool {
    held.id == wanted.id
        || held
            .implies
            .iter()
            .any(|&i| grants(c, c.permission(i), wanted))
}

fn legacy_grants(c: &Catalog, scopes: &[&str], p: &Permission) -> bool {
    scopes.iter().any(|s| {
        let scope = c.scope(s).unwrap();
        c.permissions
            .iter()
            .any(|held| scope.permissions.contains(held.id) && grants(c, held, p))
    })
}

fn scope_grants(c: &Catalog, scope: &WScope, p: &Permission) -> bool {
    scope
        .permissions
        .iter()
        .any(|name| grants(c, c.permission_by_name(name).unwrap(), p))
}

fn covers(w: &World, token: &WToken, scope: &WScope, t: Target) -> bool {
    match (scope.access, t) {
        (AccessKind::PersonalProjects, Target::Project(id)) => {
            project(w, id).unwrap().owner == WOwner::User(token.user)
        }
        (AccessKind::AllMemberships, Target::Project(_) | Target::Group(_)) => {
            effective_level(w, token.user, t) >= GUEST
        }
        (AccessKind::SelectedMemberships, Target::Project(id)) => {
            scope.projects.contains(&id) || groups_of(w, t).iter().any(|g| scope.groups.contains(g))
        }
        (AccessKind::SelectedMemberships, Target::Group(_)) => {
            groups_of(w, t).iter().any(|g| scope.groups.contains(g))
        }
        (AccessKind::User, Target::User) | (AccessKind::Instance, Target::Instance) => true,
        _ => false,
    }
}

// ---- boundaries ----

fn resolve(w: &World, b: &WBoundary) -> Option<Target> {
    match b {
        WBoundary::ProjectId(id) => project(w, *id).map(|p| Target::Project(p.id)),
        WBoundary::GroupId(id) => group(w, *id).map(|g| Target::Group(g.id)),
        WBoundary::ProjectPath(path) => w
            .projects
            .iter()
            .find(|p| !p.deleted && w.project_path(p.id).eq_ignore_ascii_case(path))
            .map(|p| Target::Project(p.id)),
        WBoundary::GroupPath(path) => w
            .groups
            .iter()
            .find(|g| !g.deleted && w.group_path(g.id).eq_ignore_ascii_case(path))
            .map(|g| Target::Group(g.id)),
        WBoundary::User => Some(Target::User),
        WBoundary::Instance => Some(Target::Instance),
        WBoundary::Unresolved => None,
    }
}

/// Naive `%XX` decoding.
fn percent_decode(s: &str) -> String {
    let hex = |b: u8| char::from(b).to_digit(16);
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((hi * 16 + lo) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A route parameter naming a project or group: a numeric id or an encoded full path.
fn route_boundary(w: &World, kind: BoundaryKind, value: Option<&str>) -> Option<Target> {
    match kind {
        BoundaryKind::User => Some(Target::User),
        BoundaryKind::Instance => Some(Target::Instance),
        BoundaryKind::Project | BoundaryKind::Group => {
            let value = value?;
            // A numeric id: ASCII digits only, as GitLab's (`07` is 7; `+7` is a path).
            let id = (!value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()))
                .then(|| value.parse::<u64>().ok())
                .flatten();
            let b = match (kind, id) {
                (BoundaryKind::Project, Some(id)) => WBoundary::ProjectId(id),
                (BoundaryKind::Project, None) => WBoundary::ProjectPath(percent_decode(value)),
                (_, Some(id)) => WBoundary::GroupId(id),
                (_, None) => WBoundary::GroupPath(percent_decode(value)),
            };
            resolve(w, &b)
        }
    }
}

// ---- the decision ----

/// Decides a request in a world, following docs/decisions.md step by step.
pub fn decide(c: &Catalog, w: &World, r: &WRequest) -> Verdict {
    let mut v = Verdict {
        reason: Reason::Granted,
        failed: None,
        required: Vec::new(),
    };
    macro_rules! deny {
        ($reason:expr) => {{
            v.reason = $reason;
            return v;
        }};
        ($reason:expr, $p:expr) => {{
            v.reason = $reason;
            v.failed = Some($p.name.clone());
            return v;
        }};
    }

    // 1. token_invalid
    let Some(token) = r.token.and_then(|id| w.tokens.iter().find(|t| t.id == id)) else {
        deny!(Reason::TokenInvalid)
    };
    if let WKind::Job { project: source } = token.kind {
        if project(w, source).is_none() {
            deny!(Reason::TokenInvalid)
        }
    }
    // 2. token_revoked
    if token.revoked {
        deny!(Reason::TokenRevoked)
    }
    // 3. token_expired
    if let Some(at) = token.expires_at {
        if r.now >= at {
            deny!(Reason::TokenExpired)
        }
    }
    // 4. user_blocked
    let Some(me) = user(w, token.user).filter(|u| !u.blocked) else {
        deny!(Reason::UserBlocked)
    };
    // 5. ip_not_allowed
    if !token.ips.is_empty() {
        let inside = match r.ip {
            Some(ip) => token.ips.iter().any(|net| net.contains(&ip)),
            None => false,
        };
        if !inside {
            deny!(Reason::IpNotAllowed)
        }
    }
    // 6. unknown_permission / unknown_route, and 7. boundary_not_found
    let (required, target): (Vec<&Permission>, Option<Target>) = match &r.action {
        WAction::Permission(name) => {
            let Some(p) = c.permission_by_name(name) else {
                deny!(Reason::UnknownPermission)
            };
            let required = p.required.iter().map(|&id| c.permission(id)).collect();
            (required, r.boundary.as_ref().and_then(|b| resolve(w, b)))
        }
        WAction::Route(method, path) => {
            let path = crate::routed(path);
            let Some(found) = c.routes.resolve(method, &path) else {
                deny!(Reason::UnknownRoute)
            };
            if let RouteKind::Skipped { .. } = found.entry.kind {
                return v;
            }
            let required = found.required.iter().map(|&id| c.permission(id)).collect();
            // The first boundary that exists; an alternative user boundary only when the
            // route's parameter is the token user's own name (any case).
            let mut target = None;
            let mut named = None;
            for (i, (kind, value)) in found.boundaries().enumerate() {
                if i == 0 {
                    named = value;
                }
                target = match kind {
                    BoundaryKind::User if i > 0 => match named {
                        Some(value) => percent_decode(value)
                            .eq_ignore_ascii_case(&me.name)
                            .then_some(Target::User),
                        None => Some(Target::User),
                    },
                    _ => route_boundary(w, kind, value),
                };
                if target.is_some() {
                    break;
                }
            }
            (required, target)
        }
    };
    v.required = required.iter().map(|p| p.name.clone()).collect();
    if matches!(r.boundary, Some(WBoundary::Unresolved))
        && matches!(r.action, WAction::Permission(_))
    {
        deny!(Reason::BoundaryUnresolved)
    }
    let Some(t) = target else {
        deny!(Reason::BoundaryNotFound)
    };

    // 8. boundary_mismatch
    for p in &required {
        if p.min_role(t.kind()).is_none() {
            deny!(Reason::BoundaryMismatch, p)
        }
    }

    // 9. legacy_token_forbidden
    if let WKind::Legacy(_) = token.kind {
        if let Some(top) = top_level_group(w, t) {
            if let Some(policy) = top.policy {
                if policy.enforce && policy.after.is_none_or(|after| r.now >= after) {
                    deny!(Reason::LegacyTokenForbidden)
                }
            }
        }
    }

    // 10. job_token_scope_denied
    if let WKind::Job { project: source } = token.kind {
        let Target::Project(target_id) = t else {
            deny!(Reason::JobTokenScopeDenied)
        };
        if target_id != source {
            let scope = project(w, target_id).unwrap().job_scope.clone();
            let inbound = scope.as_ref().is_none_or(|s| s.inbound);
            if inbound {
                // The nearest link: the source project, then its groups upwards.
                let mut link = None;
                if let Some(s) = &scope {
                    link = s.projects.iter().find(|(id, _)| *id == source);
                    for g in groups_of(w, Target::Project(source)) {
                        if link.is_none() {
                            link = s.groups.iter().find(|(id, _)| *id == g);
                        }
                    }
                }
                let Some((_, link)) = link else {
                    deny!(Reason::JobTokenScopeDenied)
                };
                let fine_grained = scope.as_ref().is_some_and(|s| s.fine_grained);
                if fine_grained && !link.default_permissions {
                    for p in &required {
                        let Some(policy) = p.job_token_policy else {
                            deny!(Reason::JobTokenScopeDenied, p)
                        };
                        let policy = c.policy(policy).name.as_str();
                        // admin_x implies read_x
                        let admin = policy.strip_prefix("read_").map(|x| format!("admin_{x}"));
                        let allowed = link
                            .policies
                            .iter()
                            .any(|l| *l == policy || Some(*l) == admin.as_deref());
                        if !allowed {
                            deny!(Reason::JobTokenScopeDenied, p)
                        }
                    }
                }
            }
        }
    }

    // 11. outside_token_boundary, and 12. permission_not_granted
    let signed_in = match &token.kind {
        WKind::Legacy(scopes) => {
            for p in &required {
                if !legacy_grants(c, scopes, p) {
                    deny!(Reason::PermissionNotGranted, p)
                }
            }
            true
        }
        WKind::Job { .. } => {
            for p in &required {
                if p.job_token_policy.is_none() {
                    deny!(Reason::PermissionNotGranted, p)
                }
            }
            true
        }
        WKind::Fine(scopes) => {
            let covering: Vec<&WScope> = scopes.iter().filter(|s| covers(w, token, s, t)).collect();
            if covering.is_empty() {
                for p in &required {
                    if !public_path(c, w, p, t, false) {
                        deny!(Reason::OutsideTokenBoundary, p)
                    }
                }
                false
            } else {
                for p in &required {
                    let granted = covering.iter().any(|s| scope_grants(c, s, p));
                    if !granted && !public_path(c, w, p, t, true) {
                        deny!(Reason::PermissionNotGranted, p)
                    }
                }
                true
            }
        }
    };

    // The acting level.
    let admin_mode = me.admin
        && match &token.kind {
            WKind::Legacy(scopes) => c
                .permission_by_name("admin_mode")
                .is_some_and(|am| legacy_grants(c, scopes, am)),
            WKind::Fine(scopes) => c
                .permission_by_name("admin_mode")
                .is_some_and(|am| scopes.iter().any(|s| scope_grants(c, s, am))),
            WKind::Job { .. } => false,
        };
    let level = if !signed_in {
        0
    } else if admin_mode {
        OWNER
    } else {
        match t {
            Target::Project(_) | Target::Group(_) => effective_level(w, token.user, t),
            Target::User => OWNER,
            Target::Instance => 0,
        }
    };

    // 13. feature_disabled
    if let Target::Project(_) = t {
        for p in &required {
            match feature_access(c, w, t, p) {
                FeatureAccess::Enabled => {}
                FeatureAccess::Private if level >= GUEST => {}
                FeatureAccess::Private | FeatureAccess::Disabled => {
                    deny!(Reason::FeatureDisabled, p)
                }
            }
        }
    }

    // 14. plan_required
    if t.is_namespace() {
        let plan = plan(w, t);
        for p in &required {
            if let Some(min) = p.min_plan {
                if plan < min {
                    deny!(Reason::PlanRequired, p)
                }
            }
        }
    }

    // 15. insufficient_role
    for p in &required {
        let ok = match p.min_role(t.kind()).unwrap() {
            MinRole::Level(min) => level >= min.number() || public_path(c, w, p, t, signed_in),
            MinRole::Admin => signed_in && me.admin,
        };
        if !ok {
            deny!(Reason::InsufficientRole, p)
        }
    }

    // 16. confidential_resource
    if r.confidential && level < REPORTER {
        let involved = r.author == Some(token.user) || r.assignees.contains(&token.user);
        if !signed_in || !involved {
            deny!(Reason::ConfidentialResource)
        }
    }

    // 17. granted
    v
}
