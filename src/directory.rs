//! The directory mirror as the main application pushes it (DESIGN.md section 2): the
//! request bodies, their validation, and their translation into snapshot changes. The
//! same records are what the store keeps, so a restart rebuilds the same snapshot.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::catalog::Catalog;
use crate::domain::{AccessLevel, FeatureAccess, Plan, Visibility};
use crate::engine::{GroupId, GroupSpec, Owner, ProjectSpec, User, UserId};

/// A field that is wrong, and why. Becomes a 422 naming the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{field}` {message}")]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

impl Invalid {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The same problem, one level down (`users[3].username`).
    pub fn within(self, prefix: &str) -> Self {
        Self {
            field: format!("{prefix}.{}", self.field),
            message: self.message,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum UserState {
    #[default]
    Active,
    Blocked,
}

/// `PUT /v1/directory/users/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserBody {
    pub username: String,
    #[serde(default)]
    pub state: UserState,
    #[serde(default)]
    pub admin: bool,
}

/// `PUT /v1/directory/groups/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupBody {
    #[serde(default)]
    pub parent_id: Option<u64>,
    pub path: String,
    pub name: String,
    pub visibility: Visibility,
    /// Top-level groups only; default `free`.
    #[serde(default)]
    pub plan: Option<Plan>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NamespaceKind {
    Group,
    User,
}

/// Where a project lives: a group, or a user's personal namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NamespaceRef {
    pub kind: NamespaceKind,
    pub id: u64,
}

/// `PUT /v1/directory/projects/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectBody {
    pub namespace: NamespaceRef,
    pub path: String,
    pub name: String,
    pub visibility: Visibility,
    /// Project features by catalog name; absent ones are `enabled`.
    #[serde(default)]
    pub features: BTreeMap<String, FeatureAccess>,
}

/// `PUT /v1/directory/{groups|projects}/{id}/members/{user_id}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberBody {
    /// 0, 5, 10, 15, 20, 30, 40 or 50.
    #[schema(value_type = u8)]
    pub access_level: AccessLevel,
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum MemberOf {
    Group,
    Project,
}

/// A membership: the user's level on a group or a project.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Membership {
    pub of: MemberOf,
    pub namespace_id: u64,
    pub user_id: u64,
    pub access_level: AccessLevel,
}

/// A user in a batch: `id` plus the fields of `UserBody`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserItem {
    pub id: u64,
    pub username: String,
    #[serde(default)]
    pub state: UserState,
    #[serde(default)]
    pub admin: bool,
}

/// A group in a batch: `id` plus the fields of `GroupBody`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupItem {
    pub id: u64,
    #[serde(default)]
    pub parent_id: Option<u64>,
    pub path: String,
    pub name: String,
    pub visibility: Visibility,
    #[serde(default)]
    pub plan: Option<Plan>,
}

/// A project in a batch: `id` plus the fields of `ProjectBody`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProjectItem {
    pub id: u64,
    pub namespace: NamespaceRef,
    pub path: String,
    pub name: String,
    pub visibility: Visibility,
    #[serde(default)]
    pub features: BTreeMap<String, FeatureAccess>,
}

impl UserItem {
    pub fn split(self) -> (u64, UserBody) {
        let Self {
            id,
            username,
            state,
            admin,
        } = self;
        (
            id,
            UserBody {
                username,
                state,
                admin,
            },
        )
    }
}

impl GroupItem {
    pub fn split(self) -> (u64, GroupBody) {
        let Self {
            id,
            parent_id,
            path,
            name,
            visibility,
            plan,
        } = self;
        (
            id,
            GroupBody {
                parent_id,
                path,
                name,
                visibility,
                plan,
            },
        )
    }
}

impl ProjectItem {
    pub fn split(self) -> (u64, ProjectBody) {
        let Self {
            id,
            namespace,
            path,
            name,
            visibility,
            features,
        } = self;
        (
            id,
            ProjectBody {
                namespace,
                path,
                name,
                visibility,
                features,
            },
        )
    }
}

/// A membership in a batch: exactly one of `group_id` and `project_id`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MembershipItem {
    #[serde(default)]
    pub group_id: Option<u64>,
    #[serde(default)]
    pub project_id: Option<u64>,
    pub user_id: u64,
    #[schema(value_type = u8)]
    pub access_level: AccessLevel,
}

/// `POST /v1/directory/batch`: applied in order (users, groups, projects, memberships),
/// all or nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Batch {
    #[serde(default)]
    pub users: Vec<UserItem>,
    #[serde(default)]
    pub groups: Vec<GroupItem>,
    #[serde(default)]
    pub projects: Vec<ProjectItem>,
    #[serde(default)]
    pub memberships: Vec<MembershipItem>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.users.len() + self.groups.len() + self.projects.len() + self.memberships.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every id fits the store's signed 64-bit columns.
    pub fn check_ids(&self) -> Result<(), Invalid> {
        let ids = [
            ("users", self.users.iter().map(|u| u.id).collect::<Vec<_>>()),
            ("groups", self.groups.iter().map(|g| g.id).collect()),
            ("projects", self.projects.iter().map(|p| p.id).collect()),
            (
                "memberships",
                self.memberships
                    .iter()
                    .map(|m| m.user_id.max(m.group_id.or(m.project_id).unwrap_or(0)))
                    .collect(),
            ),
        ];
        for (list, ids) in ids {
            if let Some(i) = ids.iter().position(|&id| id > MAX_ID) {
                return Err(Invalid::new(
                    format!("{list}[{i}].id"),
                    "must be below 2^63",
                ));
            }
        }
        Ok(())
    }
}

/// The largest id patrol stores (ids are signed 64-bit in the store).
pub const MAX_ID: u64 = i64::MAX as u64;

impl MembershipItem {
    pub fn membership(&self) -> Result<Membership, Invalid> {
        let (of, namespace_id) = match (self.group_id, self.project_id) {
            (Some(id), None) => (MemberOf::Group, id),
            (None, Some(id)) => (MemberOf::Project, id),
            _ => {
                return Err(Invalid::new(
                    "group_id",
                    "exactly one of `group_id` and `project_id` must be given",
                ));
            }
        };
        Ok(Membership {
            of,
            namespace_id,
            user_id: self.user_id,
            access_level: self.access_level,
        })
    }
}

/// A path segment as GitLab allows it: letters, digits, `_`, `-`, `.`; not starting
/// with `-` or `.`, not ending in `.git` or `.atom`, at most 255 characters.
fn check_path(path: &str) -> Result<(), Invalid> {
    let ok = !path.is_empty()
        && path.len() <= 255
        && path
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
        && !path.starts_with(['-', '.'])
        && !path.ends_with(".git")
        && !path.ends_with(".atom");
    if ok {
        Ok(())
    } else {
        Err(Invalid::new(
            "path",
            format!(
                "must be 1 to 255 letters, digits, `_`, `-` or `.`, not starting with `-` or `.`, not `{path}`"
            ),
        ))
    }
}

fn check_name(name: &str) -> Result<(), Invalid> {
    if name.trim().is_empty() || name.len() > 255 {
        return Err(Invalid::new("name", "must be 1 to 255 characters"));
    }
    Ok(())
}

impl UserBody {
    pub fn to_user(&self) -> Result<User, Invalid> {
        check_path(&self.username).map_err(|e| Invalid::new("username", e.message))?;
        Ok(User {
            username: self.username.clone(),
            blocked: self.state == UserState::Blocked,
            admin: self.admin,
        })
    }
}

impl GroupBody {
    pub fn to_spec(&self) -> Result<GroupSpec, Invalid> {
        check_path(&self.path)?;
        check_name(&self.name)?;
        if self.parent_id.is_some() && self.plan.is_some_and(|p| p != Plan::Free) {
            return Err(Invalid::new(
                "plan",
                "only top-level groups have a plan; subgroups use their top-level group's",
            ));
        }
        Ok(GroupSpec {
            parent: self.parent_id.map(GroupId),
            path: self.path.clone(),
            visibility: self.visibility,
            plan: self.plan.unwrap_or_default(),
        })
    }
}

impl ProjectBody {
    pub fn to_spec(&self, catalog: &Catalog) -> Result<ProjectSpec, Invalid> {
        check_path(&self.path)?;
        check_name(&self.name)?;
        let features = self
            .features
            .iter()
            .map(|(name, &access)| {
                catalog
                    .feature_id(name)
                    .map(|id| (id, access))
                    .ok_or_else(|| {
                        Invalid::new(
                            format!("features.{name}"),
                            "is not a project feature of the catalog",
                        )
                    })
            })
            .collect::<Result<_, _>>()?;
        Ok(ProjectSpec {
            namespace: match self.namespace.kind {
                NamespaceKind::Group => Owner::Group(GroupId(self.namespace.id)),
                NamespaceKind::User => Owner::User(UserId(self.namespace.id)),
            },
            path: self.path.clone(),
            visibility: self.visibility,
            features,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_gitlab_rules() {
        for good in ["acme", "web-app", "a.b", "A_1"] {
            assert!(check_path(good).is_ok(), "{good}");
        }
        for bad in ["", "-x", ".x", "a/b", "a b", "x.git", "é"] {
            assert_eq!(check_path(bad).unwrap_err().field, "path", "{bad}");
        }
    }

    #[test]
    fn subgroups_have_no_plan_of_their_own() {
        let body = GroupBody {
            parent_id: Some(1),
            path: "web".into(),
            name: "Web".into(),
            visibility: Visibility::Private,
            plan: Some(Plan::Ultimate),
        };
        assert_eq!(body.to_spec().unwrap_err().field, "plan");
    }

    #[test]
    fn a_batch_membership_names_exactly_one_namespace() {
        let item = |group_id, project_id| MembershipItem {
            group_id,
            project_id,
            user_id: 1,
            access_level: AccessLevel::GUEST,
        };
        assert!(item(Some(1), None).membership().is_ok());
        assert!(item(None, Some(1)).membership().is_ok());
        assert!(item(None, None).membership().is_err());
        assert!(item(Some(1), Some(1)).membership().is_err());
    }
}
