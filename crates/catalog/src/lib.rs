//! The permission catalog: every permission, route, legacy scope, job token policy and
//! template, loaded from YAML into an immutable, indexed structure, and the vocabulary
//! it shares with the engine (`domain`). It owns naming and validation of permissions;
//! it never looks at tokens or the directory, and depends on no runtime, store or HTTP
//! crate.

mod check;
pub mod coverage;
pub mod docs;
pub mod domain;
pub mod gitlab;
pub mod graphql;
mod load;
mod permset;
mod routes;
pub mod source;

use std::fmt;
use std::path::PathBuf;

use rustc_hash::FxHashMap;

use crate::domain::{AccessKind, BoundaryKind, MinRole, Plan};

pub use check::{Violation, ViolationKind};
pub use load::{EMBEDDED, LoadError, load_dir, load_embedded, load_files};
pub use permset::PermSet;
pub use routes::percent_decode;
pub use routes::{
    PathError, RouteBoundary, RouteEntry, RouteKind, RouteMatch, RoutePath, RouteTable,
    SKIP_REASONS, split_route,
};

/// Index of a permission in its catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PermissionId(pub u16);

impl PermissionId {
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// Index of a project feature in its catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FeatureId(pub u16);

impl FeatureId {
    pub fn index(self) -> usize {
        usize::from(self.0)
    }
}

/// Index of a job token policy in its catalog (at most 64 policies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PolicyId(pub u8);

/// A set of job token policies, one bit per policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct PolicySet(pub u64);

impl PolicySet {
    pub fn contains(self, id: PolicyId) -> bool {
        self.0 >> id.0 & 1 == 1
    }
    pub fn insert(&mut self, id: PolicyId) {
        self.0 |= 1 << id.0;
    }
}

/// Where something was written: a file under the catalog directory and a line.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Origin {
    pub file: PathBuf,
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

#[derive(Debug)]
pub struct Permission {
    pub id: PermissionId,
    pub name: String,
    pub action: String,
    pub resource: String,
    pub category: String,
    pub description: String,
    /// The minimum role per boundary kind, indexed by `BoundaryKind::index`; `None`
    /// where the permission does not apply.
    pub boundaries: [Option<MinRole>; 4],
    pub implies: Vec<PermissionId>,
    pub requires: Vec<PermissionId>,
    /// This permission and everything it implies, transitively.
    pub implied: PermSet,
    /// This permission first, then everything it requires, transitively, each once.
    pub required: Vec<PermissionId>,
    pub feature: Option<FeatureId>,
    pub public: bool,
    pub min_plan: Option<Plan>,
    pub job_token_policy: Option<PolicyId>,
    pub routes: Vec<(String, String)>,
    /// GraphQL fields and object types that need this permission.
    pub graphql: Vec<graphql::GraphqlEntry>,
    /// Other names it answers to (GitLab's, where GitLab names it differently).
    pub aliases: Vec<String>,
    pub origin: Origin,
}

impl Permission {
    pub fn min_role(&self, boundary: BoundaryKind) -> Option<MinRole> {
        self.boundaries[boundary.index()]
    }

    pub fn boundary_kinds(&self) -> impl Iterator<Item = BoundaryKind> + '_ {
        BoundaryKind::ALL
            .into_iter()
            .filter(|b| self.boundaries[b.index()].is_some())
    }
}

#[derive(Debug)]
pub struct Feature {
    pub id: FeatureId,
    pub name: String,
    pub description: String,
}

#[derive(Debug)]
pub struct Role {
    pub name: String,
    pub role: MinRole,
    pub description: String,
}

#[derive(Debug)]
pub struct LegacyScope {
    /// Its index in `Catalog::scopes`, its bit in a [`ScopeSet`].
    pub index: u8,
    pub name: String,
    pub description: String,
    /// What the scope grants, closed under `implies`.
    pub permissions: PermSet,
    /// Given only to administrators, whoever asks (`sudo`, `admin_mode`).
    pub admin_only: bool,
}

/// A set of legacy scopes, one bit per scope of the catalog (at most 64 scopes).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ScopeSet(pub u64);

impl ScopeSet {
    pub fn contains(self, index: u8) -> bool {
        index < 64 && self.0 >> index & 1 == 1
    }
    pub fn insert(&mut self, index: u8) {
        if index < 64 {
            self.0 |= 1 << index;
        }
    }
    /// The indices in the set, lowest first.
    pub fn iter(self) -> impl Iterator<Item = u8> {
        (0..64u8).filter(move |&i| self.contains(i))
    }
}

#[derive(Debug)]
pub struct JobTokenPolicy {
    pub id: PolicyId,
    pub name: String,
    pub description: String,
    /// This policy and everything it implies (admin_x implies read_x).
    pub implied: PolicySet,
}

#[derive(Debug)]
pub struct Template {
    pub name: String,
    pub description: String,
    pub access: AccessKind,
    pub permissions: Vec<PermissionId>,
}

#[derive(Debug)]
pub struct SkippedRoute {
    pub method: String,
    pub path: String,
    pub reason: String,
    pub note: Option<String>,
}

/// The loaded, validated catalog. Immutable once built; share it behind an `Arc`.
#[derive(Debug)]
pub struct Catalog {
    pub permissions: Vec<Permission>,
    pub features: Vec<Feature>,
    pub roles: Vec<Role>,
    pub scopes: Vec<LegacyScope>,
    pub job_token_policies: Vec<JobTokenPolicy>,
    pub templates: Vec<Template>,
    pub skipped_routes: Vec<SkippedRoute>,
    pub skipped_graphql: Vec<graphql::SkippedGraphql>,
    /// The GraphQL schema the catalog's entries are written against
    /// (`graphql/schema.graphql`), if it ships one.
    pub graphql_schema: Option<apollo_compiler::validation::Valid<apollo_compiler::Schema>>,
    /// The GraphQL entries by the schema element they name, for decisions.
    pub graphql_index: graphql::plan::Index,
    pub routes: RouteTable,
    permission_by_name: FxHashMap<String, PermissionId>,
    feature_by_name: FxHashMap<String, FeatureId>,
    scope_by_name: FxHashMap<String, usize>,
    policy_by_name: FxHashMap<String, PolicyId>,
    admin_mode: Option<PermissionId>,
}

impl Catalog {
    pub fn permission(&self, id: PermissionId) -> &Permission {
        &self.permissions[id.index()]
    }

    pub fn permission_id(&self, name: &str) -> Option<PermissionId> {
        self.permission_by_name.get(name).copied()
    }

    pub fn permission_by_name(&self, name: &str) -> Option<&Permission> {
        self.permission_id(name).map(|id| self.permission(id))
    }

    pub fn feature_id(&self, name: &str) -> Option<FeatureId> {
        self.feature_by_name.get(name).copied()
    }

    pub fn feature(&self, id: FeatureId) -> &Feature {
        &self.features[id.index()]
    }

    pub fn scope(&self, name: &str) -> Option<&LegacyScope> {
        self.scope_by_name.get(name).map(|&i| &self.scopes[i])
    }

    pub fn policy_id(&self, name: &str) -> Option<PolicyId> {
        self.policy_by_name.get(name).copied()
    }

    pub fn policy(&self, id: PolicyId) -> &JobTokenPolicy {
        &self.job_token_policies[usize::from(id.0)]
    }

    pub fn template(&self, name: &str) -> Option<&Template> {
        self.templates.iter().find(|t| t.name == name)
    }

    /// The `admin_mode` permission, if the catalog defines it.
    pub fn admin_mode(&self) -> Option<PermissionId> {
        self.admin_mode
    }

    /// An empty permission set sized for this catalog.
    pub fn empty_set(&self) -> PermSet {
        PermSet::with_capacity(self.permissions.len())
    }

    /// The permissions that grant `id` once expanded by `implies` (`id` among them), in
    /// catalog order.
    pub fn permissions_granting(&self, id: PermissionId) -> impl Iterator<Item = &Permission> {
        self.permissions
            .iter()
            .filter(move |p| p.implied.contains(id))
    }

    /// The legacy scopes that grant a permission, in catalog order.
    pub fn scopes_granting(&self, id: PermissionId) -> impl Iterator<Item = &LegacyScope> {
        self.scopes
            .iter()
            .filter(move |s| s.permissions.contains(id))
    }
}
