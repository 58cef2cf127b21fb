//! A deliberately naive reference model of docs/decisions.md: linear scans over the
//! plain `World`, recursion for ancestors, no indexes. It reads permission metadata
//! from the catalog (not under test) and decides everything else itself.

use patrol::catalog::{Catalog, Permission, RouteKind};
use patrol::domain::{AccessKind, BoundaryKind, FeatureAccess, MinRole, Visibility};
use patrol::engine::Reason;

use crate::world::{WAction, WBoundary, WKind, WNs, WOwner, WRequest, WToken, World};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Project(u64),
    Group(u64),
    User,
    Instance,
}

/// A namespace on the way up: a project, a group or a user's personal namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Up {
    Project(u64),
    Group(u64),
    Personal(u64),
}

fn ancestors(w: &World, t: Target) -> Vec<Up> {
    fn groups(w: &World, id: u64, out: &mut Vec<Up>) {
        out.push(Up::Group(id));
        if let Some(p) = w.groups.iter().find(|g| g.id == id).and_then(|g| g.parent) {
            groups(w, p, out);
        }
    }
    let mut out = Vec::new();
    match t {
        Target::Project(id) => {
            out.push(Up::Project(id));
            match w.projects.iter().find(|p| p.id == id).unwrap().owner {
                WOwner::Group(g) => groups(w, g, &mut out),
                WOwner::User(u) => out.push(Up::Personal(u)),
            }
        }
        Target::Group(id) => groups(w, id, &mut out),
        _ => {}
    }
    out
}

fn member_level(w: &World, user: u64, t: Target) -> u8 {
    let mut best = 0;
    for up in ancestors(w, t) {
        let level = match up {
            Up::Personal(u) if u == user => 50,
            Up::Personal(_) => 0,
            Up::Project(p) => w
                .members
                .iter()
                .filter(|m| m.0 == WNs::Project(p) && m.1 == user)
                .map(|m| m.2)
                .max()
                .unwrap_or(0),
            Up::Group(g) => w
                .members
                .iter()
                .filter(|m| m.0 == WNs::Group(g) && m.1 == user)
                .map(|m| m.2)
                .max()
                .unwrap_or(0),
        };
        best = best.max(level);
    }
    best
}

fn visibility(w: &World, t: Target) -> Visibility {
    match t {
        Target::Project(id) => w.projects.iter().find(|p| p.id == id).unwrap().visibility,
        Target::Group(id) => w.groups.iter().find(|g| g.id == id).unwrap().visibility,
        _ => Visibility::Private,
    }
}

fn feature(c: &Catalog, w: &World, t: Target, p: &Permission) -> FeatureAccess {
    let (Target::Project(id), Some(f)) = (t, p.feature) else {
        return FeatureAccess::Enabled;
    };
    let name = c.feature(f).name.as_str();
    let project = w.projects.iter().find(|p| p.id == id).unwrap();
    project
        .features
        .iter()
        .rev()
        .find(|(n, _)| *n == name)
        .map_or(FeatureAccess::Enabled, |(_, a)| *a)
}

fn public_path(c: &Catalog, w: &World, p: &Permission, t: Target, signed_in: bool) -> bool {
    if !matches!(t, Target::Project(_) | Target::Group(_)) || !p.public {
        return false;
    }
    feature(c, w, t, p) == FeatureAccess::Enabled
        && match visibility(w, t) {
            Visibility::Public => true,
            Visibility::Internal => signed_in,
            Visibility::Private => false,
        }
}

fn kind(t: Target) -> BoundaryKind {
    match t {
        Target::Project(_) => BoundaryKind::Project,
        Target::Group(_) => BoundaryKind::Group,
        Target::User => BoundaryKind::User,
        Target::Instance => BoundaryKind::Instance,
    }
}

fn resolve(w: &World, b: &WBoundary) -> Option<Target> {
    match b {
        WBoundary::ProjectId(id) => w
            .projects
            .iter()
            .any(|p| p.id == *id)
            .then_some(Target::Project(*id)),
        WBoundary::GroupId(id) => w
            .groups
            .iter()
            .any(|g| g.id == *id)
            .then_some(Target::Group(*id)),
        WBoundary::ProjectPath(path) => w
            .projects
            .iter()
            .find(|p| w.project_path(p.id) == *path)
            .map(|p| Target::Project(p.id)),
        WBoundary::GroupPath(path) => w
            .groups
            .iter()
            .find(|g| w.group_path(g.id) == *path)
            .map(|g| Target::Group(g.id)),
        WBoundary::User => Some(Target::User),
        WBoundary::Instance => Some(Target::Instance),
    }
}

fn scope_covers(
    w: &World,
    token: &WToken,
    access: AccessKind,
    projects: &[u64],
    groups: &[u64],
    t: Target,
) -> bool {
    match (access, t) {
        (AccessKind::User, Target::User) | (AccessKind::Instance, Target::Instance) => true,
        (AccessKind::PersonalProjects, Target::Project(id)) => {
            w.projects.iter().find(|p| p.id == id).unwrap().owner == WOwner::User(token.user)
        }
        (AccessKind::AllMemberships, Target::Project(_) | Target::Group(_)) => {
            member_level(w, token.user, t) >= 10
        }
        (AccessKind::SelectedMemberships, Target::Project(_) | Target::Group(_)) => {
            ancestors(w, t).iter().any(|up| match up {
                Up::Project(p) => projects.contains(p),
                Up::Group(g) => groups.contains(g),
                Up::Personal(_) => false,
            })
        }
        _ => false,
    }
}

/// The reason, and the name of the required permission that failed when one did.
pub fn decide(c: &Catalog, w: &World, r: &WRequest) -> (Reason, Option<String>) {
    let deny = |reason| (reason, None);
    let Some(token) = r.token.and_then(|id| w.tokens.iter().find(|t| t.id == id)) else {
        return deny(Reason::TokenInvalid);
    };
    if let WKind::Job { project } = token.kind {
        if !w.projects.iter().any(|p| p.id == project) {
            return deny(Reason::TokenInvalid);
        }
    }
    if token.revoked {
        return deny(Reason::TokenRevoked);
    }
    if token.expires_at.is_some_and(|at| r.now >= at) {
        return deny(Reason::TokenExpired);
    }
    let Some(user) = w.users.iter().find(|u| u.id == token.user && !u.blocked) else {
        return deny(Reason::UserBlocked);
    };
    if !token.ips.is_empty()
        && !r
            .ip
            .is_some_and(|ip| token.ips.iter().any(|n| n.contains(&ip)))
    {
        return deny(Reason::IpNotAllowed);
    }

    // The required permissions and the target.
    let (required, target): (Vec<&Permission>, Option<Target>) = match &r.action {
        WAction::Permission(name) => {
            let Some(p) = c.permission_by_name(name) else {
                return deny(Reason::UnknownPermission);
            };
            let required = p.required.iter().map(|&id| c.permission(id)).collect();
            (required, r.boundary.as_ref().and_then(|b| resolve(w, b)))
        }
        WAction::Route(method, path) => {
            let Some(found) = c.routes.resolve(method, path) else {
                return deny(Reason::UnknownRoute);
            };
            if matches!(found.entry.kind, RouteKind::Skipped { .. }) {
                return (Reason::Granted, None);
            }
            let required = found.required.iter().map(|&id| c.permission(id)).collect();
            let target = found.boundaries().find_map(|(kind, value)| match kind {
                BoundaryKind::User => Some(Target::User),
                BoundaryKind::Instance => Some(Target::Instance),
                _ => {
                    let value = value?;
                    let b = match (kind, value.parse::<u64>()) {
                        (BoundaryKind::Project, Ok(id)) => WBoundary::ProjectId(id),
                        (_, Ok(id)) => WBoundary::GroupId(id),
                        (BoundaryKind::Project, Err(_)) => {
                            WBoundary::ProjectPath(value.replace("%2F", "/"))
                        }
                        (_, Err(_)) => WBoundary::GroupPath(value.replace("%2F", "/")),
                    };
                    resolve(w, &b)
                }
            });
            (required, target)
        }
    };
    let Some(t) = target else {
        return deny(Reason::BoundaryNotFound);
    };
    let fail = |reason, p: &Permission| (reason, Some(p.name.clone()));

    for p in &required {
        if p.min_role(kind(t)).is_none() {
            return fail(Reason::BoundaryMismatch, p);
        }
    }

    let ups = ancestors(w, t);
    if matches!(token.kind, WKind::Legacy(_)) {
        if let Some(Up::Group(top)) = ups.last() {
            let g = w.groups.iter().find(|g| g.id == *top).unwrap();
            if let Some((true, after)) = g.policy {
                if after.is_none_or(|a| r.now >= a) {
                    return deny(Reason::LegacyTokenForbidden);
                }
            }
        }
    }

    if let WKind::Job { project: source } = token.kind {
        let Target::Project(target_id) = t else {
            return deny(Reason::JobTokenScopeDenied);
        };
        if target_id != source {
            let scope = w
                .projects
                .iter()
                .find(|p| p.id == target_id)
                .unwrap()
                .job_scope
                .clone();
            let (inbound, fine, links_p, links_g) = match scope {
                Some(s) => (s.inbound, s.fine_grained, s.projects, s.groups),
                None => (true, false, vec![], vec![]),
            };
            if inbound {
                let link =
                    ancestors(w, Target::Project(source))
                        .into_iter()
                        .find_map(|up| match up {
                            Up::Project(p) => links_p
                                .iter()
                                .find(|(id, _)| *id == p)
                                .map(|(_, l)| l.clone()),
                            Up::Group(g) => links_g
                                .iter()
                                .find(|(id, _)| *id == g)
                                .map(|(_, l)| l.clone()),
                            Up::Personal(_) => None,
                        });
                let Some(link) = link else {
                    return deny(Reason::JobTokenScopeDenied);
                };
                if fine && !link.default_permissions {
                    for p in &required {
                        let Some(policy) = p.job_token_policy else {
                            return fail(Reason::JobTokenScopeDenied, p);
                        };
                        let name = c.policy(policy).name.as_str();
                        // admin_x implies read_x
                        let allowed = link.policies.iter().any(|l| {
                            *l == name
                                || (name
                                    .strip_prefix("read_")
                                    .is_some_and(|x| *l == format!("admin_{x}")))
                        });
                        if !allowed {
                            return fail(Reason::JobTokenScopeDenied, p);
                        }
                    }
                }
            }
        }
    }

    let holds_admin_mode = match &token.kind {
        WKind::Legacy(scopes) => scopes.contains(&"admin_mode"),
        WKind::Fine(scopes) => scopes.iter().any(|s| s.permissions.contains(&"admin_mode")),
        WKind::Job { .. } => false,
    };
    let admin_mode = user.admin && holds_admin_mode;

    let signed_in = match &token.kind {
        WKind::Legacy(scopes) => {
            for p in &required {
                let granted = scopes
                    .iter()
                    .any(|s| c.scope(s).unwrap().permissions.contains(p.id));
                if !granted {
                    return fail(Reason::PermissionNotGranted, p);
                }
            }
            true
        }
        WKind::Job { .. } => {
            for p in &required {
                if p.job_token_policy.is_none() {
                    return fail(Reason::PermissionNotGranted, p);
                }
            }
            true
        }
        WKind::Fine(scopes) => {
            let covering: Vec<_> = scopes
                .iter()
                .filter(|s| scope_covers(w, token, s.access, &s.projects, &s.groups, t))
                .collect();
            if covering.is_empty() {
                for p in &required {
                    if !public_path(c, w, p, t, false) {
                        return fail(Reason::OutsideTokenBoundary, p);
                    }
                }
                false
            } else {
                for p in &required {
                    // A scope grants what it lists and everything that implies.
                    let granted = covering.iter().any(|s| {
                        s.permissions
                            .iter()
                            .any(|name| c.permission_by_name(name).unwrap().implied.contains(p.id))
                    });
                    if !granted && !public_path(c, w, p, t, true) {
                        return fail(Reason::PermissionNotGranted, p);
                    }
                }
                true
            }
        }
    };

    let level = if !signed_in {
        0
    } else if admin_mode {
        50
    } else {
        match t {
            Target::Project(_) | Target::Group(_) => member_level(w, token.user, t),
            Target::User => 50,
            Target::Instance => 0,
        }
    };

    if let Target::Project(_) = t {
        for p in &required {
            let closed = match feature(c, w, t, p) {
                FeatureAccess::Enabled => false,
                FeatureAccess::Private => level < 10,
                FeatureAccess::Disabled => true,
            };
            if closed {
                return fail(Reason::FeatureDisabled, p);
            }
        }
    }

    if let Some(top) = ups.last() {
        let plan = match top {
            Up::Group(g) => w.groups.iter().find(|x| x.id == *g).unwrap().plan,
            _ => Default::default(),
        };
        for p in &required {
            if p.min_plan.is_some_and(|min| plan < min) {
                return fail(Reason::PlanRequired, p);
            }
        }
    }

    for p in &required {
        let ok = match p.min_role(kind(t)) {
            Some(MinRole::Level(min)) => {
                level >= min.number() || public_path(c, w, p, t, signed_in)
            }
            Some(MinRole::Admin) => signed_in && user.admin,
            None => false,
        };
        if !ok {
            return fail(Reason::InsufficientRole, p);
        }
    }

    if r.confidential
        && level < 20
        && !(signed_in && (r.author == Some(token.user) || r.assignees.contains(&token.user)))
    {
        return deny(Reason::ConfidentialResource);
    }
    (Reason::Granted, None)
}
