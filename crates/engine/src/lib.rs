//! The decision engine: `decide(&Snapshot, &Request) -> Decision`, DESIGN.md section 5.
//! Pure: no I/O, no clock, no allocation on the path. It is the only place that says
//! yes; every check that cannot be completed says no.
#![deny(clippy::indexing_slicing)]

mod decision;
mod mint;
mod request;
mod snapshot;
mod spec;
mod token;

use patrol_catalog::domain::{
    AccessKind, AccessLevel, BoundaryKind, FeatureAccess, MinRole, Visibility,
};
use patrol_catalog::{Catalog, Permission, PermissionId, RouteKind};

pub use decision::{Decision, Reason};
pub use mint::{Excess, exceeds};
pub use patrol_catalog::PermSet;
pub use request::{Action, BoundaryRef, Credential, Request, Resource};
use snapshot::NsKind;
pub use snapshot::{GroupId, NsIdx, ProjectId, Snapshot, SnapshotError, TokenId, UserId};
pub use spec::{AllowlistLink, GroupSpec, JobTokenScope, Owner, ProjectSpec, TokenPolicy, User};
pub use token::{Grant, GranularScope, Token, UnknownName};

/// The boundary, resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Namespace(NsIdx, BoundaryKind),
    User,
    Instance,
}

impl Target {
    fn kind(self) -> BoundaryKind {
        match self {
            Self::Namespace(_, kind) => kind,
            Self::User => BoundaryKind::User,
            Self::Instance => BoundaryKind::Instance,
        }
    }
}

/// Answers "may this credential do this action on this boundary?" (DESIGN.md section 5).
pub fn decide<'c>(snapshot: &'c Snapshot, request: &Request<'_>) -> Decision<'c> {
    let catalog: &'c Catalog = &snapshot.catalog;

    // 1-5: the credential.
    let Credential::Token(token_id) = request.credential else {
        return Decision::deny(Reason::TokenInvalid);
    };
    let Some(token) = snapshot.token(token_id) else {
        return Decision::deny(Reason::TokenInvalid);
    };
    let job_source = match token.grant {
        Grant::Job { project, .. } => match snapshot.projects.get(&project) {
            Some(&idx) => Some(idx),
            // A job token of a project that no longer exists belongs to nothing.
            None => return Decision::deny(Reason::TokenInvalid),
        },
        _ => None,
    };
    let mut decision = Decision {
        token_id: Some(token.id),
        user_id: Some(token.user_id),
        ..Decision::deny(Reason::TokenInvalid)
    };
    let deny = |mut d: Decision<'c>, reason, failed| {
        d.reason = reason;
        d.failed = failed;
        d
    };
    if token.revoked {
        return deny(decision, Reason::TokenRevoked, None);
    }
    if token.expires_at.is_some_and(|at| request.now >= at) {
        return deny(decision, Reason::TokenExpired, None);
    }
    let Some(account) = snapshot.account(token.user_id).filter(|a| !a.user.blocked) else {
        return deny(decision, Reason::UserBlocked, None);
    };
    let user = &account.user;
    if !token.ip_allowed(request.client_ip) {
        return deny(decision, Reason::IpNotAllowed, None);
    }

    // 6-7: what, and where.
    let (required, target): (&'c [PermissionId], Option<Target>) = match request.action {
        Action::Permission(name) => {
            let Some(id) = catalog.permission_id(name) else {
                return deny(decision, Reason::UnknownPermission, None);
            };
            let required = catalog.permission(id).required.as_slice();
            if request.boundary == Some(BoundaryRef::Unresolved) {
                decision.required = required;
                return deny(decision, Reason::BoundaryUnresolved, None);
            }
            (
                required,
                request.boundary.and_then(|b| resolve(snapshot, b)),
            )
        }
        Action::Authenticate => {
            decision.allowed = true;
            decision.reason = Reason::Granted;
            return decision;
        }
        Action::Route { method, path } => {
            let Some(found) = catalog.routes.resolve(method, path) else {
                return deny(decision, Reason::UnknownRoute, None);
            };
            if let RouteKind::Skipped { .. } = found.entry.kind {
                // Needs no permission: a valid token is enough.
                decision.allowed = true;
                decision.reason = Reason::Granted;
                return decision;
            }
            // The route's boundary, else its alternatives in order. An alternative user
            // boundary (`/namespaces/:id`: a group, or a user's namespace) stands only
            // when the parameter names the token user's own namespace: a parameter that
            // names nothing else is not found, never decided on another boundary.
            let mut boundaries = found.boundaries();
            let primary = boundaries.next();
            let target = primary
                .and_then(|(kind, value)| resolve_route_boundary(snapshot, kind, value))
                .or_else(|| {
                    let named = primary.and_then(|(_, value)| value);
                    boundaries.find_map(|(kind, value)| match kind {
                        BoundaryKind::User => named
                            .is_none_or(|v| names_user(v, &user.username))
                            .then_some(Target::User),
                        _ => resolve_route_boundary(snapshot, kind, value),
                    })
                });
            (found.required, target)
        }
    };
    decision.required = required;
    let Some(target) = target else {
        return deny(decision, Reason::BoundaryNotFound, None);
    };
    decision.boundary = Some(target.kind());
    if let Target::Namespace(idx, _) = target {
        decision.namespace = Some(idx);
    }
    let permissions = || required.iter().map(|&id| (id, catalog.permission(id)));

    // 8: the permission applies to this kind of boundary.
    if let Some((id, _)) = permissions().find(|(_, p)| p.min_role(target.kind()).is_none()) {
        return deny(decision, Reason::BoundaryMismatch, Some(id));
    }
    let ns = match target {
        Target::Namespace(idx, _) => Some(idx),
        _ => None,
    };

    // The top-level group is read only by the licensed-features step (its token policy,
    // for legacy tokens, is in a small map of its own); the user's level, a walk up the
    // tree, is worked out only when a step needs it, and then once.
    let top = || ns.map(|idx| snapshot.top_level(idx));
    let mut member_level_cache = None;
    let mut member_level = || {
        *member_level_cache.get_or_insert_with(|| match ns {
            Some(idx) => snapshot.level_of(account, idx),
            None => AccessLevel::NONE,
        })
    };

    // 9: top-level groups that enforce fine-grained tokens.
    if matches!(token.grant, Grant::Legacy { .. })
        && let Some(policy) = ns.and_then(|idx| snapshot.token_policy(idx))
        && policy.enforce_fine_grained
        && policy.enforced_after.is_none_or(|at| request.now >= at)
    {
        return deny(decision, Reason::LegacyTokenForbidden, None);
    }

    // 10: job tokens outside their own project.
    if let Some(source) = job_source
        && let Some(id) = job_scope_denial(snapshot, source, target, permissions())
    {
        return deny(decision, Reason::JobTokenScopeDenied, id);
    }

    // 11-12: the token's own grant, or the public path.
    let admin_mode = user.admin
        && catalog
            .admin_mode()
            .is_some_and(|admin| token.holds_anywhere(admin));
    let standing = match &token.grant {
        Grant::Legacy {
            permissions: granted,
            ..
        } => {
            if let Some((id, _)) = permissions().find(|&(id, _)| !granted.contains(id)) {
                return deny(decision, Reason::PermissionNotGranted, Some(id));
            }
            Standing::SignedIn
        }
        Grant::Job { .. } => {
            if let Some((id, _)) = permissions().find(|(_, p)| p.job_token_policy.is_none()) {
                return deny(decision, Reason::PermissionNotGranted, Some(id));
            }
            Standing::SignedIn
        }
        Grant::FineGrained { scopes } => {
            let needs_level = scopes
                .iter()
                .any(|s| s.access == AccessKind::AllMemberships);
            let level = if needs_level {
                member_level()
            } else {
                AccessLevel::NONE
            };
            let coverage = Coverage::of(snapshot, token.user_id, level, scopes, target);
            if coverage.is_empty() {
                // A visitor: only what an anonymous user could do.
                if let Some((id, _)) =
                    permissions().find(|(_, p)| !public_path(snapshot, p, target, false))
                {
                    return deny(decision, Reason::OutsideTokenBoundary, Some(id));
                }
                Standing::Visitor
            } else {
                if let Some((id, _)) = permissions().find(|&(id, p)| {
                    !coverage.grants(id) && !public_path(snapshot, p, target, true)
                }) {
                    return deny(decision, Reason::PermissionNotGranted, Some(id));
                }
                Standing::SignedIn
            }
        }
    };
    let level = match (standing, target) {
        (Standing::Visitor, _) => AccessLevel::NONE,
        (Standing::SignedIn, _) if admin_mode => AccessLevel::OWNER,
        (Standing::SignedIn, Target::Namespace(..)) => member_level(),
        (Standing::SignedIn, Target::User) => AccessLevel::OWNER,
        (Standing::SignedIn, Target::Instance) => AccessLevel::NONE,
    };
    let signed_in = standing == Standing::SignedIn;

    // 13: project features.
    if let Some(idx) = ns.filter(|&i| matches!(snapshot.ns(i).kind, NsKind::Project(_))) {
        let project = snapshot.ns(idx);
        let closed = |p: &Permission| match p.feature.map(|f| project.feature(f)) {
            None | Some(FeatureAccess::Enabled) => false,
            Some(FeatureAccess::Private) => level < AccessLevel::GUEST,
            Some(FeatureAccess::Disabled) => true,
        };
        if let Some((id, _)) = permissions().find(|(_, p)| closed(p)) {
            return deny(decision, Reason::FeatureDisabled, Some(id));
        }
    }

    // 14: licensed features.
    let unlicensed = |p: &Permission| {
        p.min_plan
            .is_some_and(|min| top().is_some_and(|top| top.plan < min))
    };
    if let Some((id, _)) = permissions().find(|(_, p)| unlicensed(p)) {
        return deny(decision, Reason::PlanRequired, Some(id));
    }

    // 15: the user's role, or the public path.
    let role_ok = |p: &Permission| match p.min_role(target.kind()) {
        Some(MinRole::Level(min)) => level >= min || public_path(snapshot, p, target, signed_in),
        Some(MinRole::Admin) => signed_in && user.admin,
        None => false,
    };
    if let Some((id, _)) = permissions().find(|(_, p)| !role_ok(p)) {
        return deny(decision, Reason::InsufficientRole, Some(id));
    }

    // 16: confidential resources.
    let resource = &request.resource;
    if resource.confidential
        && level < AccessLevel::REPORTER
        && !(signed_in
            && (resource.author_id == Some(token.user_id)
                || resource.assignee_ids.contains(&token.user_id)))
    {
        return deny(decision, Reason::ConfidentialResource, None);
    }

    decision.allowed = true;
    decision.reason = Reason::Granted;
    decision
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Standing {
    /// Acts as its user.
    SignedIn,
    /// A fine-grained token outside its scopes: an anonymous visitor.
    Visitor,
}

fn resolve(snapshot: &Snapshot, boundary: BoundaryRef<'_>) -> Option<Target> {
    let live = |idx: NsIdx| snapshot.ns(idx).alive.then_some(idx);
    match boundary {
        BoundaryRef::ProjectId(id) => snapshot
            .projects
            .get(&id)
            .copied()
            .and_then(live)
            .map(|i| Target::Namespace(i, BoundaryKind::Project)),
        BoundaryRef::GroupId(id) => snapshot
            .groups
            .get(&id)
            .copied()
            .and_then(live)
            .map(|i| Target::Namespace(i, BoundaryKind::Group)),
        BoundaryRef::ProjectPath(path) => snapshot
            .paths
            .get(path)
            .and_then(live)
            .filter(|&i| matches!(snapshot.ns(i).kind, NsKind::Project(_)))
            .map(|i| Target::Namespace(i, BoundaryKind::Project)),
        BoundaryRef::GroupPath(path) => snapshot
            .paths
            .get(path)
            .and_then(live)
            .filter(|&i| matches!(snapshot.ns(i).kind, NsKind::Group(_)))
            .map(|i| Target::Namespace(i, BoundaryKind::Group)),
        BoundaryRef::User => Some(Target::User),
        BoundaryRef::Instance => Some(Target::Instance),
        BoundaryRef::Unresolved => None,
    }
}

/// A route's boundary parameter (`42` or `acme%2Fweb%2Fapp`) to a target.
fn resolve_route_boundary(
    snapshot: &Snapshot,
    kind: BoundaryKind,
    value: Option<&str>,
) -> Option<Target> {
    let by_path = |path: &str| match kind {
        BoundaryKind::Project => resolve(snapshot, BoundaryRef::ProjectPath(path)),
        _ => resolve(snapshot, BoundaryRef::GroupPath(path)),
    };
    match kind {
        BoundaryKind::User => Some(Target::User),
        BoundaryKind::Instance => Some(Target::Instance),
        BoundaryKind::Project | BoundaryKind::Group => {
            let value = value?;
            // GitLab's numeric ids are digits only (`+42` is a path, and names nothing).
            if let Some(id) = numeric_id(value) {
                return resolve(
                    snapshot,
                    match kind {
                        BoundaryKind::Project => BoundaryRef::ProjectId(ProjectId(id)),
                        _ => BoundaryRef::GroupId(GroupId(id)),
                    },
                );
            }
            match percent_encoding::percent_decode_str(value).decode_utf8() {
                Ok(path) => by_path(&path),
                Err(_) => None,
            }
        }
    }
}

/// A parameter that is all ASCII digits, as a number (leading zeros allowed, as GitLab
/// allows them).
fn numeric_id(value: &str) -> Option<u64> {
    (!value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()))
        .then(|| value.parse().ok())
        .flatten()
}

/// Whether a route parameter (`alice`, `Alice`) names a user's personal namespace.
fn names_user(value: &str, username: &str) -> bool {
    percent_encoding::percent_decode_str(value)
        .decode_utf8()
        .is_ok_and(|v| v.eq_ignore_ascii_case(username))
}

/// Which of a fine-grained token's scopes cover the target, worked out once per
/// decision: the first 64 scopes are remembered in a mask, any further ones (which
/// tokens rarely have) are asked again.
struct Coverage<'s> {
    snapshot: &'s Snapshot,
    user: UserId,
    member_level: AccessLevel,
    target: Target,
    scopes: &'s [GranularScope],
    mask: u64,
}

impl<'s> Coverage<'s> {
    fn of(
        snapshot: &'s Snapshot,
        user: UserId,
        member_level: AccessLevel,
        scopes: &'s [GranularScope],
        target: Target,
    ) -> Self {
        let mut coverage = Self {
            snapshot,
            user,
            member_level,
            target,
            scopes,
            mask: 0,
        };
        for (i, scope) in scopes.iter().enumerate().take(64) {
            if coverage.scope_covers(scope) {
                coverage.mask |= 1 << i;
            }
        }
        coverage
    }

    fn scope_covers(&self, scope: &GranularScope) -> bool {
        covers(
            self.snapshot,
            self.user,
            self.member_level,
            scope,
            self.target,
        )
    }

    fn covered(&self, i: usize, scope: &GranularScope) -> bool {
        if i < 64 {
            self.mask >> i & 1 == 1
        } else {
            self.scope_covers(scope)
        }
    }

    fn is_empty(&self) -> bool {
        !self
            .scopes
            .iter()
            .enumerate()
            .any(|(i, s)| self.covered(i, s))
    }

    /// Whether a scope that covers the target grants the permission.
    fn grants(&self, id: PermissionId) -> bool {
        self.scopes
            .iter()
            .enumerate()
            .any(|(i, s)| s.permissions.contains(id) && self.covered(i, s))
    }
}

/// Whether a granular scope's boundary covers the target. `member_level` is the
/// user's effective level on the target when it is a namespace.
fn covers(
    snapshot: &Snapshot,
    user: UserId,
    member_level: AccessLevel,
    scope: &GranularScope,
    target: Target,
) -> bool {
    match (scope.access, target) {
        (AccessKind::User, Target::User) | (AccessKind::Instance, Target::Instance) => true,
        (AccessKind::PersonalProjects, Target::Namespace(idx, BoundaryKind::Project)) => snapshot
            .parent(idx)
            .is_some_and(|p| snapshot.ns(p).kind == NsKind::User(user)),
        (AccessKind::AllMemberships, Target::Namespace(..)) => member_level >= AccessLevel::GUEST,
        (AccessKind::SelectedMemberships, Target::Namespace(idx, _)) => {
            snapshot.ancestry(idx).any(|(_, ns)| match ns.kind {
                NsKind::Project(p) => scope.project_ids.contains(&p),
                NsKind::Group(g) => scope.group_ids.contains(&g),
                NsKind::User(_) => false,
            })
        }
        _ => false,
    }
}

/// The public path: a `public` permission on a public namespace (or an internal one for a
/// signed-in user) whose feature, if any, is `enabled`.
fn public_path(
    snapshot: &Snapshot,
    permission: &Permission,
    target: Target,
    signed_in: bool,
) -> bool {
    let Target::Namespace(idx, _) = target else {
        return false;
    };
    let ns = snapshot.ns(idx);
    let feature_open = match (ns.kind, permission.feature) {
        (NsKind::Project(_), Some(f)) => ns.feature(f) == FeatureAccess::Enabled,
        _ => true,
    };
    permission.public
        && feature_open
        && match ns.visibility {
            Visibility::Public => true,
            Visibility::Internal => signed_in,
            Visibility::Private => false,
        }
}

/// Section 8: a job token towards another project. `Some(failed)` when denied.
fn job_scope_denial<'p>(
    snapshot: &Snapshot,
    source: NsIdx,
    target: Target,
    mut permissions: impl Iterator<Item = (PermissionId, &'p Permission)>,
) -> Option<Option<PermissionId>> {
    let Target::Namespace(target, BoundaryKind::Project) = target else {
        // Job tokens reach projects only.
        return Some(None);
    };
    if target == source {
        return None;
    }
    let default_scope = JobTokenScope::default();
    let scope = snapshot
        .job_token_scopes
        .get(&target)
        .unwrap_or(&default_scope);
    if !scope.inbound_enabled {
        return None;
    }
    // The nearest link wins: the source project itself, then its groups, nearest first.
    let link = snapshot.ancestry(source).find_map(|(_, ns)| match ns.kind {
        NsKind::Project(p) => scope.projects.get(&p),
        NsKind::Group(g) => scope.groups.get(&g),
        NsKind::User(_) => None,
    });
    let Some(link) = link else {
        return Some(None);
    };
    if !scope.fine_grained_enabled || link.default_permissions {
        return None;
    }
    permissions
        .find(|(_, p)| {
            !p.job_token_policy
                .is_some_and(|policy| link.policies.contains(policy))
        })
        .map(|(id, _)| Some(id))
}
