//! The catalog, read-only: `/v1/catalog/...` as JSON and `/docs/permissions` as HTML.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::response::Html;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use utoipa::ToSchema;

use super::{ApiError, AppState};
use crate::catalog::graphql::{GraphqlBoundary, GraphqlEntry, GraphqlTarget};
use crate::catalog::{Catalog, Permission};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/catalog/permissions", get(list_permissions))
        .route("/v1/catalog/permissions/{name}", get(show_permission))
        .route("/v1/catalog/scopes", get(scopes))
        .route("/v1/catalog/job-token-policies", get(job_token_policies))
        .route("/v1/catalog/templates", get(templates))
        .route("/docs/permissions", get(page))
}

/// A permission of the catalog.
#[derive(Debug, Serialize, ToSchema)]
struct PermissionView<'c> {
    name: &'c str,
    action: &'c str,
    resource: &'c str,
    category: &'c str,
    description: &'c str,
    /// Minimum role per boundary.
    boundaries: BTreeMap<&'static str, &'static str>,
    implies: Vec<&'c str>,
    requires: Vec<&'c str>,
    feature: Option<&'c str>,
    public: bool,
    min_plan: Option<&'static str>,
    job_token_policy: Option<&'c str>,
    legacy_scopes: Vec<&'c str>,
    routes: Vec<RouteView<'c>>,
    graphql: Vec<GraphqlView>,
}

/// A GraphQL field or object type that needs the permission, as GitLab's
/// `authorize_granular_token` directive declares it.
#[derive(Debug, Serialize, ToSchema)]
struct GraphqlView {
    /// `Query.project`, `Mutation.createIssue`, `Project.issues` or an object type.
    element: String,
    /// `field` or `type`.
    kind: &'static str,
    /// The boundary's type, when the entry names one; absent, the parent object's.
    boundary_type: Option<&'static str>,
    /// The argument holding the boundary's full path, id or global id
    /// (`input.projectPath`: a field of an input object); absent, the parent object.
    boundary_argument: Option<String>,
}

fn graphql_view(entry: &GraphqlEntry) -> GraphqlView {
    let (boundary_type, boundary_argument) = match &entry.boundary {
        GraphqlBoundary::Parent(kind) => (kind.map(|k| k.as_str()), None),
        GraphqlBoundary::Argument { kind, path } => (Some(kind.as_str()), Some(path.join("."))),
        GraphqlBoundary::Fixed(kind) => (Some(kind.as_str()), None),
    };
    GraphqlView {
        element: entry.target.to_string(),
        kind: match entry.target {
            GraphqlTarget::Field { .. } => "field",
            GraphqlTarget::Type(_) => "type",
        },
        boundary_type,
        boundary_argument,
    }
}

#[derive(Debug, Serialize, ToSchema)]
struct RouteView<'c> {
    method: &'c str,
    path: &'c str,
}

fn view<'c>(catalog: &'c Catalog, p: &'c Permission) -> PermissionView<'c> {
    let names = |ids: &[crate::catalog::PermissionId]| -> Vec<&'c str> {
        ids.iter()
            .map(|&id| catalog.permission(id).name.as_str())
            .collect()
    };
    PermissionView {
        name: &p.name,
        action: &p.action,
        resource: &p.resource,
        category: &p.category,
        description: &p.description,
        boundaries: p
            .boundary_kinds()
            .filter_map(|b| p.min_role(b).map(|r| (b.as_str(), r.name())))
            .collect(),
        implies: names(&p.implies),
        requires: names(&p.requires),
        feature: p.feature.map(|f| catalog.feature(f).name.as_str()),
        public: p.public,
        min_plan: p.min_plan.map(|plan| plan.as_str()),
        job_token_policy: p
            .job_token_policy
            .map(|id| catalog.policy(id).name.as_str()),
        legacy_scopes: catalog
            .scopes_granting(p.id)
            .map(|s| s.name.as_str())
            .collect(),
        routes: p
            .routes
            .iter()
            .map(|(method, path)| RouteView { method, path })
            .collect(),
        graphql: p.graphql.iter().map(graphql_view).collect(),
    }
}

/// Every permission of the catalog.
#[utoipa::path(get, path = "/v1/catalog/permissions", tag = "catalog",
    responses((status = 200, body = [PermissionView])))]
pub async fn list_permissions(State(state): State<AppState>) -> Json<serde_json::Value> {
    let catalog = &state.catalog;
    let all: Vec<PermissionView<'_>> = catalog
        .permissions
        .iter()
        .map(|p| view(catalog, p))
        .collect();
    Json(serde_json::json!(all))
}

/// One permission.
#[utoipa::path(get, path = "/v1/catalog/permissions/{name}", tag = "catalog",
    params(("name" = String, Path)),
    responses((status = 200, body = PermissionView), (status = 404, body = super::ErrorBody)))]
pub async fn show_permission(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let catalog = &state.catalog;
    let p = catalog
        .permission_by_name(&name)
        .ok_or_else(|| ApiError::NotFound(format!("no permission `{name}` in the catalog")))?;
    Ok(Json(serde_json::json!(view(catalog, p))))
}

/// The legacy scopes and the permissions each grants.
#[utoipa::path(get, path = "/v1/catalog/scopes", tag = "catalog",
    responses((status = 200, body = [Object])))]
pub async fn scopes(State(state): State<AppState>) -> Json<serde_json::Value> {
    let catalog = &state.catalog;
    let scopes: Vec<_> = catalog
        .scopes
        .iter()
        .map(|s| {
            let permissions: Vec<&str> =
                s.permissions.iter().map(|id| catalog.permission(id).name.as_str()).collect();
            serde_json::json!({"name": s.name, "description": s.description, "permissions": permissions})
        })
        .collect();
    Json(serde_json::json!(scopes))
}

/// The job token policies.
#[utoipa::path(get, path = "/v1/catalog/job-token-policies", tag = "catalog",
    responses((status = 200, body = [Object])))]
pub async fn job_token_policies(State(state): State<AppState>) -> Json<serde_json::Value> {
    let catalog = &state.catalog;
    let policies: Vec<_> = catalog
        .job_token_policies
        .iter()
        .map(|p| {
            let implies: Vec<&str> = catalog
                .job_token_policies
                .iter()
                .filter(|q| q.id != p.id && p.implied.contains(q.id))
                .map(|q| q.name.as_str())
                .collect();
            serde_json::json!({"name": p.name, "description": p.description, "implies": implies})
        })
        .collect();
    Json(serde_json::json!(policies))
}

/// Named permission sets that prefill a new token.
#[utoipa::path(get, path = "/v1/catalog/templates", tag = "catalog",
    responses((status = 200, body = [Object])))]
pub async fn templates(State(state): State<AppState>) -> Json<serde_json::Value> {
    let catalog = &state.catalog;
    let templates: Vec<_> = catalog
        .templates
        .iter()
        .map(|t| {
            let permissions: Vec<&str> =
                t.permissions.iter().map(|&id| catalog.permission(id).name.as_str()).collect();
            serde_json::json!({"name": t.name, "description": t.description, "access": t.access, "permissions": permissions})
        })
        .collect();
    Json(serde_json::json!(templates))
}

/// The permissions page.
#[utoipa::path(get, path = "/docs/permissions", tag = "catalog",
    responses((status = 200, body = String, content_type = "text/html")))]
pub async fn page(State(state): State<AppState>) -> Html<String> {
    Html(state.permissions_html.to_string())
}
