//! Tokens made by tokens (DESIGN.md section 4): whether everything a new grant would
//! allow, its maker allows too. Pure, like `decide`; it never looks at expiry or
//! addresses, which the service compares itself.
//!
//! The rule must hold now and after any change to the directory, so a new grant is
//! within its maker only where the two are judged by the same facts:
//! - a legacy grant reaches everything its user can, so only a legacy maker holding each
//!   of its scopes (by name, or every permission the scope grants) makes one;
//! - a scope of the same access kind (`all_memberships`, `personal_projects`, `user`,
//!   `instance`) covers what it covers, and `all_memberships` covers the user's personal
//!   projects, where the user is always owner;
//! - a selected project or group is within its maker only when the maker selects that
//!   same project or group: a project below a selected group may move out of it, and a
//!   membership may end, while the new token would still name it;
//! - a selected group covers the projects below it, so its project permissions count;
//! - covering a namespace makes a token a signed-in user there, so the maker must cover
//!   each reach itself, whatever the permissions;
//! - a legacy maker holds each permission it grants wherever its user may act, but makes
//!   a fine-grained token only when it holds every `public` permission, which any
//!   fine-grained token may use as a visitor.

use patrol_catalog::domain::{AccessKind, BoundaryKind};
use patrol_catalog::{Catalog, Permission, PermissionId};

use super::Snapshot;
use super::snapshot::{GroupId, ProjectId};
use super::token::{Grant, GranularScope, Token};
use patrol_catalog::PermSet;

/// Where a new grant would act, as far as comparing it with its maker goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Reach {
    Project(ProjectId),
    /// The group, its subgroups and every project below them.
    Group(GroupId),
    /// Wherever the user is a member (`all_memberships`).
    Memberships,
    /// The user's personal projects.
    Personal,
    User,
    Instance,
}

impl Reach {
    fn applies_to(self, permission: &Permission) -> bool {
        let kinds: &[BoundaryKind] = match self {
            Self::Project(_) => &[BoundaryKind::Project],
            Self::Group(_) => &[BoundaryKind::Group, BoundaryKind::Project],
            Self::Memberships => AccessKind::AllMemberships.boundaries(),
            Self::Personal => AccessKind::PersonalProjects.boundaries(),
            Self::User => AccessKind::User.boundaries(),
            Self::Instance => AccessKind::Instance.boundaries(),
        };
        permission
            .boundary_kinds()
            .any(|kind| kinds.contains(&kind))
    }

    fn describe(self) -> String {
        match self {
            Self::Project(id) => format!("project {}", id.0),
            Self::Group(id) => format!("group {} and everything below it", id.0),
            Self::Memberships => "all memberships".to_owned(),
            Self::Personal => "personal projects".to_owned(),
            Self::User => "user".to_owned(),
            Self::Instance => "instance".to_owned(),
        }
    }

    /// Whether a scope of the maker covers all of this reach, whatever the directory
    /// becomes.
    fn within(self, scope: &GranularScope) -> bool {
        match self {
            Self::Project(id) => {
                scope.access == AccessKind::SelectedMemberships && scope.project_ids.contains(&id)
            }
            Self::Group(id) => {
                scope.access == AccessKind::SelectedMemberships && scope.group_ids.contains(&id)
            }
            Self::Memberships => scope.access == AccessKind::AllMemberships,
            Self::Personal => matches!(
                scope.access,
                AccessKind::AllMemberships | AccessKind::PersonalProjects
            ),
            Self::User => scope.access == AccessKind::User,
            Self::Instance => scope.access == AccessKind::Instance,
        }
    }
}

/// What a new grant would hold where the token making it does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Excess {
    /// A permission, or for a legacy grant a scope.
    pub permission: String,
    /// Where: `project 43`, `group 8 and everything below it`, `all memberships`,
    /// `personal projects`, `user`, `instance`, or everything the user can reach.
    pub at: String,
}

const EVERYWHERE: &str = "everything its user can reach (a legacy token)";

/// Whether `holder` holds everything `wanted` would grant, reach by reach: the first
/// permission (or legacy scope) it would not is the answer. A job token holds nothing
/// to give, and no token makes one.
pub fn exceeds(snapshot: &Snapshot, holder: &Token, wanted: &Grant) -> Option<Excess> {
    let catalog = snapshot.catalog();
    match (wanted, &holder.grant) {
        (Grant::Job { .. }, _) | (_, Grant::Job { .. }) => Some(Excess {
            permission: "job token policies".to_owned(),
            at: "a job's project".to_owned(),
        }),
        (Grant::Legacy { scopes, .. }, held) => {
            let holds = |index: u8| match held {
                Grant::Legacy {
                    permissions,
                    scopes: own,
                } => {
                    own.contains(index)
                        || catalog.scopes.get(usize::from(index)).is_some_and(|scope| {
                            !scope.permissions.is_empty()
                                && scope.permissions.is_subset(permissions)
                        })
                }
                _ => false,
            };
            let missing = scopes.iter().find(|&index| !holds(index))?;
            Some(Excess {
                permission: catalog
                    .scopes
                    .get(usize::from(missing))
                    .map_or_else(String::new, |scope| scope.name.clone()),
                at: EVERYWHERE.to_owned(),
            })
        }
        (Grant::FineGrained { scopes }, held) => {
            // Any fine-grained token may read what a visitor may (`public` permissions);
            // a legacy token only what its scopes grant.
            if let Grant::Legacy { permissions, .. } = held
                && let Some(public) = catalog
                    .permissions
                    .iter()
                    .find(|p| p.public && !permissions.contains(p.id))
            {
                return Some(Excess {
                    permission: public.name.clone(),
                    at: "public and internal namespaces (any fine-grained token reads there as a visitor or member)".to_owned(),
                });
            }
            // `admin_mode` counts wherever a token holds it.
            if let Some(admin) = catalog.admin_mode()
                && wanted.holds_anywhere(admin)
                && !held.holds_anywhere(admin)
            {
                return Some(Excess {
                    permission: catalog.permission(admin).name.clone(),
                    at: Reach::Instance.describe(),
                });
            }
            scopes.iter().find_map(|scope| {
                reaches(scope).into_iter().find_map(|reach| {
                    // Covering a namespace at all makes a token a signed-in user there
                    // (the public path on internal namespaces), whatever it holds.
                    let covered = match held {
                        Grant::FineGrained { scopes: own } => own.iter().any(|s| reach.within(s)),
                        _ => true,
                    };
                    let missing = if covered {
                        first_missing(catalog, holder, reach, &scope.permissions)
                            .map(|id| catalog.permission(id).name.clone())
                    } else {
                        Some(scope.permissions.iter().next().map_or_else(
                            || "a scope".to_owned(),
                            |id| catalog.permission(id).name.clone(),
                        ))
                    };
                    missing.map(|permission| Excess {
                        permission,
                        at: reach.describe(),
                    })
                })
            })
        }
    }
}

/// Where a scope acts; selected projects and groups in id order, so that the first
/// excess named is the same on every run.
fn reaches(scope: &GranularScope) -> Vec<Reach> {
    match scope.access {
        AccessKind::AllMemberships => vec![Reach::Memberships],
        AccessKind::PersonalProjects => vec![Reach::Personal],
        AccessKind::User => vec![Reach::User],
        AccessKind::Instance => vec![Reach::Instance],
        AccessKind::SelectedMemberships => {
            let mut projects: Vec<ProjectId> = scope.project_ids.iter().copied().collect();
            let mut groups: Vec<GroupId> = scope.group_ids.iter().copied().collect();
            projects.sort_unstable_by_key(|p| p.0);
            groups.sort_unstable_by_key(|g| g.0);
            projects
                .into_iter()
                .map(Reach::Project)
                .chain(groups.into_iter().map(Reach::Group))
                .collect()
        }
    }
}

/// The first permission of `wanted` that applies to `reach` and that `holder` does not
/// hold over all of it.
fn first_missing(
    catalog: &Catalog,
    holder: &Token,
    reach: Reach,
    wanted: &PermSet,
) -> Option<PermissionId> {
    wanted
        .iter()
        .find(|&id| reach.applies_to(catalog.permission(id)) && !holds(holder, id, reach))
}

fn holds(holder: &Token, id: PermissionId, reach: Reach) -> bool {
    match &holder.grant {
        Grant::Legacy { permissions, .. } => permissions.contains(id),
        Grant::Job { .. } => false,
        Grant::FineGrained { scopes } => scopes
            .iter()
            .any(|scope| scope.permissions.contains(id) && reach.within(scope)),
    }
}
