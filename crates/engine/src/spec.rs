//! What the main application's directory tells the snapshot: users, groups, projects,
//! group token policies and project job token scopes, each as the engine needs it.

use rustc_hash::FxHashMap;

use patrol_catalog::domain::{FeatureAccess, Plan, Visibility};
use patrol_catalog::{FeatureId, PolicySet};

use crate::snapshot::{GroupId, ProjectId, UserId};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub username: String,
    pub blocked: bool,
    pub admin: bool,
}

/// A group as pushed by the main application.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSpec {
    pub parent: Option<GroupId>,
    pub path: String,
    pub visibility: Visibility,
    /// Meaningful on top-level groups only.
    pub plan: Plan,
}

/// Where a project lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    Group(GroupId),
    User(UserId),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProjectSpec {
    pub namespace: Owner,
    pub path: String,
    pub visibility: Visibility,
    /// Features not listed are `enabled`.
    pub features: Vec<(FeatureId, FeatureAccess)>,
}

/// A top-level group's rule for legacy tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenPolicy {
    pub enforce_fine_grained: bool,
    /// Unix seconds from which enforcement applies; `None` applies at once.
    pub enforced_after: Option<i64>,
}

/// A link in a project's job token allowlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AllowlistLink {
    /// The job token acts with its user's role, without fine-grained restriction.
    pub default_permissions: bool,
    /// The link's policies, expanded by `implies`.
    pub policies: PolicySet,
}

/// A project's inbound job token settings and allowlist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobTokenScope {
    pub inbound_enabled: bool,
    pub fine_grained_enabled: bool,
    pub projects: FxHashMap<ProjectId, AllowlistLink>,
    pub groups: FxHashMap<GroupId, AllowlistLink>,
}

impl Default for JobTokenScope {
    fn default() -> Self {
        Self {
            inbound_enabled: true,
            fine_grained_enabled: false,
            projects: FxHashMap::default(),
            groups: FxHashMap::default(),
        }
    }
}
