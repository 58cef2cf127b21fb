//! The directory mirror's vocabulary (DESIGN.md section 2): users, groups, projects,
//! memberships and top-level group token policies as patrol holds them, each valid by
//! construction. Request bodies (`crate::http::directory`) become these at the edge,
//! once; the service writes them, the store keeps them, replicas send them, and the
//! snapshot is built from them. Nothing downstream parses them again.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use time::Date;
use utoipa::ToSchema;

use crate::catalog::Catalog;
use crate::domain::{AccessLevel, FeatureAccess, Plan, Visibility};
use crate::engine::{self, GroupId, GroupSpec, Owner, ProjectSpec, UserId};

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

/// The largest id patrol stores (ids are signed 64-bit in the store).
const MAX_ID: u64 = i64::MAX as u64;

/// `id` if the store can hold it; `field` names it otherwise.
pub fn stored_id(id: u64, field: &str) -> Result<u64, Invalid> {
    if id > MAX_ID {
        return Err(Invalid::new(field, "must be below 2^63"));
    }
    Ok(id)
}

/// A path segment as GitLab allows it: letters, digits, `_`, `-`, `.`; not starting
/// with `-` or `.`, not ending in `.git` or `.atom`, at most 255 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PathSegment(String);

impl PathSegment {
    /// `field` names the path in the error (`path`, `username`).
    pub fn parse(text: &str, field: &str) -> Result<Self, Invalid> {
        let ok = !text.is_empty()
            && text.len() <= 255
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
            && !text.starts_with(['-', '.'])
            && !text.ends_with(".git")
            && !text.ends_with(".atom");
        if ok {
            Ok(Self(text.to_owned()))
        } else {
            Err(Invalid::new(
                field,
                format!(
                    "must be 1 to 255 letters, digits, `_`, `-` or `.`, not starting with `-` or `.`, not `{text}`"
                ),
            ))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for PathSegment {
    type Error = Invalid;

    fn try_from(text: String) -> Result<Self, Invalid> {
        Self::parse(&text, "path")
    }
}

impl From<PathSegment> for String {
    fn from(path: PathSegment) -> String {
        path.0
    }
}

/// A display name: 1 to 255 characters, not only spaces.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct DisplayName(String);

impl DisplayName {
    pub fn parse(text: &str) -> Result<Self, Invalid> {
        if text.trim().is_empty() || text.len() > 255 {
            return Err(Invalid::new("name", "must be 1 to 255 characters"));
        }
        Ok(Self(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for DisplayName {
    type Error = Invalid;

    fn try_from(text: String) -> Result<Self, Invalid> {
        Self::parse(&text)
    }
}

impl From<DisplayName> for String {
    fn from(name: DisplayName) -> String {
        name.0
    }
}

/// A user of the main application.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// Also the path of the user's personal namespace.
    pub username: PathSegment,
    pub blocked: bool,
    pub admin: bool,
}

impl User {
    pub fn to_engine(&self) -> engine::User {
        engine::User {
            username: self.username.as_str().to_owned(),
            blocked: self.blocked,
            admin: self.admin,
        }
    }
}

/// A group; only a top-level group has a plan of its own.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Group {
    pub parent_id: Option<u64>,
    pub path: PathSegment,
    pub name: DisplayName,
    pub visibility: Visibility,
    pub plan: Plan,
}

impl Group {
    /// A group from its parts: a subgroup's plan, if given, must be `free`.
    pub fn new(
        parent_id: Option<u64>,
        path: PathSegment,
        name: DisplayName,
        visibility: Visibility,
        plan: Option<Plan>,
    ) -> Result<Self, Invalid> {
        if let Some(id) = parent_id {
            stored_id(id, "parent_id")?;
        }
        if parent_id.is_some() && plan.is_some_and(|p| p != Plan::Free) {
            return Err(Invalid::new(
                "plan",
                "only top-level groups have a plan; subgroups use their top-level group's",
            ));
        }
        Ok(Self {
            parent_id,
            path,
            name,
            visibility,
            plan: plan.unwrap_or_default(),
        })
    }

    pub fn to_spec(&self) -> GroupSpec {
        GroupSpec {
            parent: self.parent_id.map(GroupId),
            path: self.path.as_str().to_owned(),
            visibility: self.visibility,
            plan: self.plan,
        }
    }
}

/// Where a project lives: a group, or a user's personal namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum ProjectOwner {
    Group(u64),
    User(u64),
}

/// A project, with the access of each project feature that is not `enabled`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Project {
    pub namespace: ProjectOwner,
    pub path: PathSegment,
    pub name: DisplayName,
    pub visibility: Visibility,
    /// By catalog feature name, each one the catalog knows.
    features: BTreeMap<String, FeatureAccess>,
}

impl Project {
    /// A project from its parts; every feature must be one of the catalog's.
    pub fn new(
        namespace: ProjectOwner,
        path: PathSegment,
        name: DisplayName,
        visibility: Visibility,
        features: BTreeMap<String, FeatureAccess>,
        catalog: &Catalog,
    ) -> Result<Self, Invalid> {
        let (ProjectOwner::Group(id) | ProjectOwner::User(id)) = namespace;
        stored_id(id, "namespace.id")?;
        if let Some(name) = features.keys().find(|f| catalog.feature_id(f).is_none()) {
            return Err(unknown_feature(name));
        }
        Ok(Self {
            namespace,
            path,
            name,
            visibility,
            features,
        })
    }

    /// A project as the store kept it. Its features are checked against the catalog
    /// when it enters a snapshot ([`Project::to_spec`]): the store may have been
    /// written under another catalog.
    pub fn restore(
        namespace: ProjectOwner,
        path: PathSegment,
        name: DisplayName,
        visibility: Visibility,
        features: BTreeMap<String, FeatureAccess>,
    ) -> Self {
        Self {
            namespace,
            path,
            name,
            visibility,
            features,
        }
    }

    pub fn features(&self) -> &BTreeMap<String, FeatureAccess> {
        &self.features
    }

    /// The engine's form. `Err` names a feature `catalog` does not know: a project
    /// written under another catalog (a replica, or a store, ahead of this one).
    pub fn to_spec(&self, catalog: &Catalog) -> Result<ProjectSpec, Invalid> {
        let features = self
            .features
            .iter()
            .map(|(name, &access)| {
                catalog
                    .feature_id(name)
                    .map(|id| (id, access))
                    .ok_or_else(|| unknown_feature(name))
            })
            .collect::<Result<_, _>>()?;
        Ok(ProjectSpec {
            namespace: match self.namespace {
                ProjectOwner::Group(id) => Owner::Group(GroupId(id)),
                ProjectOwner::User(id) => Owner::User(UserId(id)),
            },
            path: self.path.as_str().to_owned(),
            visibility: self.visibility,
            features,
        })
    }
}

fn unknown_feature(name: &str) -> Invalid {
    Invalid::new(
        format!("features.{name}"),
        "is not a project feature of the catalog",
    )
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Membership {
    pub of: MemberOf,
    pub namespace_id: u64,
    pub user_id: u64,
    pub access_level: AccessLevel,
}

/// A top-level group's token policy (DESIGN.md section 7): legacy tokens are denied in
/// its hierarchy, from `enforced_after` (00:00 UTC) or at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenPolicy {
    pub enforce_fine_grained: bool,
    #[serde(with = "crate::clock::optional_date")]
    pub enforced_after: Option<Date>,
}

impl TokenPolicy {
    pub fn to_engine(self) -> engine::TokenPolicy {
        engine::TokenPolicy {
            enforce_fine_grained: self.enforce_fine_grained,
            enforced_after: self.enforced_after.map(crate::clock::midnight),
        }
    }
}

/// A batch of the directory: applied in order (users, groups, projects, memberships),
/// all or nothing. Each item carries the name of its place in the request
/// (`users[3]`), for the refusals the snapshot makes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    pub users: Vec<(u64, User)>,
    pub groups: Vec<(u64, Group)>,
    pub projects: Vec<(u64, Project)>,
    pub memberships: Vec<Membership>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.users.len() + self.groups.len() + self.projects.len() + self.memberships.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// What the store holds of the directory, read in one go at start.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Dump {
    pub users: Vec<(u64, User)>,
    /// Parents before their children.
    pub groups: Vec<(u64, Group)>,
    pub projects: Vec<(u64, Project)>,
    pub memberships: Vec<Membership>,
    pub token_policies: Vec<(u64, TokenPolicy)>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_gitlab_rules() {
        for good in ["acme", "web-app", "a.b", "A_1"] {
            assert!(PathSegment::parse(good, "path").is_ok(), "{good}");
        }
        for bad in ["", "-x", ".x", "a/b", "a b", "x.git", "é"] {
            assert_eq!(
                PathSegment::parse(bad, "path").unwrap_err().field,
                "path",
                "{bad}"
            );
        }
    }

    #[test]
    fn subgroups_have_no_plan_of_their_own() {
        let group = Group::new(
            Some(1),
            PathSegment::parse("web", "path").unwrap(),
            DisplayName::parse("Web").unwrap(),
            Visibility::Private,
            Some(Plan::Ultimate),
        );
        assert_eq!(group.unwrap_err().field, "plan");
    }
}
