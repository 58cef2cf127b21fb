//! The catalog as written: serde types for the YAML files under `permissions/`, with
//! the source position of every value so that validation can name the file and line.
//! Nothing here is checked beyond its YAML shape; `load` turns these into a `Catalog`.

use marked_yaml::Spanned;
use serde::Deserialize;

/// Text with the position it was read from.
pub type Text = Spanned<String>;

/// `permissions/<category>/<resource>.yml`: one resource and its permissions.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceFile {
    pub resource: Text,
    #[serde(default)]
    pub description: Option<Text>,
    pub permissions: Vec<PermissionSource>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PermissionSource {
    /// `<action>_<resource>`, e.g. `read_issue`.
    pub name: Text,
    /// Only needed when the name is not `<action>_<resource>`.
    #[serde(default)]
    pub action: Option<Text>,
    /// Other names the permission answers to: GitLab's, where it names the permission
    /// differently (docs/gitlab-vocabulary.md).
    #[serde(default)]
    pub aliases: Vec<Text>,
    pub description: Text,
    /// The minimum role per boundary; a permission applies only to the boundaries listed.
    #[serde(default)]
    pub boundaries: BoundariesSource,
    #[serde(default)]
    pub implies: Vec<Text>,
    #[serde(default)]
    pub requires: Vec<Text>,
    #[serde(default)]
    pub feature: Option<Text>,
    #[serde(default)]
    pub public: Option<Spanned<bool>>,
    #[serde(default)]
    pub min_plan: Option<Text>,
    #[serde(default)]
    pub job_token_policy: Option<Text>,
    #[serde(default)]
    pub routes: Vec<RouteSource>,
    /// GraphQL fields and object types that need this permission, with where each one's
    /// boundary comes from (GitLab's `authorize_granular_token` directive).
    #[serde(default)]
    pub graphql: Vec<GraphqlSource>,
}

/// `{field: Query.project, boundary: {type: project, argument: fullPath}}`, or
/// `{type: Issue}`: exactly one of `field` and `type`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphqlSource {
    /// `Type.field`, where `Type` is an object type or a root (`Query`, `Mutation`).
    #[serde(default)]
    pub field: Option<Text>,
    /// An object type: the permission is needed wherever one is selected.
    #[serde(default, rename = "type")]
    pub object: Option<Text>,
    /// Absent: the boundary of the object the field is selected on.
    #[serde(default)]
    pub boundary: Option<GraphqlBoundarySource>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphqlBoundarySource {
    #[serde(rename = "type")]
    pub kind: Text,
    /// The argument holding a full path, a numeric id or a global id; `input.projectPath`
    /// names a field of the input object argument `input`. Project and group only.
    #[serde(default)]
    pub argument: Option<Text>,
}

/// `boundaries: {project: guest, group: guest}`: role names (or `admin`) per boundary.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoundariesSource {
    #[serde(default)]
    pub project: Option<Text>,
    #[serde(default)]
    pub group: Option<Text>,
    #[serde(default)]
    pub user: Option<Text>,
    #[serde(default)]
    pub instance: Option<Text>,
}

/// A REST route that requires the permission it is listed under.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteSource {
    /// `METHOD /api/v4/path/:param`.
    pub route: Text,
    /// Which path parameter names the boundary, and what kind it is. When absent it is
    /// inferred from the path: `/projects/:id` project, `/groups/:id` group,
    /// `/user` and `/users/:id` user, anything else instance.
    #[serde(default)]
    pub boundary: Option<BoundarySource>,
    /// Boundaries tried in order when the first does not exist (e.g. a namespace id
    /// that may be a group or a user's personal namespace).
    #[serde(default)]
    pub alternative_boundaries: Vec<BoundarySource>,
    /// Further permissions the route needs besides the one it is listed under.
    #[serde(default)]
    pub also_requires: Vec<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BoundarySource {
    #[serde(rename = "type")]
    pub kind: Text,
    /// The path parameter holding the id or URL-encoded full path (project and group).
    #[serde(default)]
    pub param: Option<Text>,
}

/// `permissions/roles.yml`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolesFile {
    pub roles: Vec<RoleSource>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RoleSource {
    pub name: Text,
    /// The access level; absent only for `admin`.
    #[serde(default)]
    pub level: Option<Spanned<u64>>,
    pub description: Text,
}

/// `permissions/features.yml`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeaturesFile {
    pub features: Vec<NamedSource>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedSource {
    pub name: Text,
    pub description: Text,
}

/// `permissions/scopes.yml`: the legacy scopes and the permissions each one grants.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopesFile {
    pub scopes: Vec<ScopeSource>,
}

/// A scope grants the union of its selectors, less `exclude`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScopeSource {
    pub name: Text,
    pub description: Text,
    /// Every permission that applies to any of these boundaries.
    #[serde(default)]
    pub all_with_boundary: Vec<Text>,
    /// Every permission with any of these actions.
    #[serde(default)]
    pub all_with_action: Vec<Text>,
    #[serde(default)]
    pub permissions: Vec<Text>,
    #[serde(default)]
    pub exclude: Vec<Text>,
    /// Only administrators may hold it (`sudo`, `admin_mode`).
    #[serde(default)]
    pub admin_only: bool,
}

/// `permissions/job_token_policies.yml`
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobTokenPoliciesFile {
    pub policies: Vec<PolicySource>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicySource {
    pub name: Text,
    pub description: Text,
    #[serde(default)]
    pub implies: Vec<Text>,
}

/// `permissions/templates.yml`: named permission sets that prefill a new token.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplatesFile {
    pub templates: Vec<TemplateSource>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateSource {
    pub name: Text,
    pub description: Text,
    /// The access kind the template suggests (`all_memberships`, ...).
    pub access: Text,
    pub permissions: Vec<Text>,
}

/// `permissions/skipped_routes.yml`: routes that need no permission, each with a reason.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkippedRoutesFile {
    pub skipped_routes: Vec<SkippedRouteSource>,
}

/// `permissions/skipped_graphql.yml`: GraphQL schema elements that need no permission.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkippedGraphqlFile {
    pub skipped_graphql: Vec<SkippedGraphqlSource>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkippedGraphqlSource {
    /// `Query.field`, `Mutation.field` or an object type.
    pub element: Text,
    pub reason: Text,
    #[serde(default)]
    pub note: Option<Text>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkippedRouteSource {
    pub route: Text,
    pub reason: Text,
    #[serde(default)]
    pub note: Option<Text>,
}
