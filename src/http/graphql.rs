//! GraphQL decisions over HTTP (DESIGN.md section 11): `POST /v1/authorize/graphql` takes
//! the request GitLab's `POST /api/graphql` would get and answers each check it needs
//! and the whole. A query patrol cannot decide (a syntax error, a field the schema does
//! not know, over a limit) is a 400 naming the problem.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::post;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::authorize::MAX_TOKEN_LEN;
use super::extract::ApiJson;
use super::{ApiError, AppState, AuthorizeResponse};
use crate::catalog::graphql::plan::{Boundary, PlanError};
use crate::domain::BoundaryKind;
use crate::service::GraphqlOutcome;

pub fn router() -> Router<AppState> {
    Router::new().route("/v1/authorize/graphql", post(authorize_graphql))
}

/// The body of a GraphQL request, with the token that sends it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GraphqlRequest {
    /// The end user's token, as presented.
    pub token: String,
    /// The GraphQL document.
    pub query: String,
    /// The operation to decide; may be left out when the document holds one.
    #[serde(default, rename = "operationName")]
    pub operation_name: Option<String>,
    #[serde(default)]
    pub variables: Option<serde_json::Map<String, serde_json::Value>>,
    /// The end user's address, checked against the token's `allowed_ips`.
    #[serde(default)]
    pub client_ip: Option<String>,
}

/// Where a check is needed; `null` when the query does not say (`boundary_unresolved`).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CheckedBoundary {
    #[serde(rename = "type")]
    pub kind: BoundaryKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GraphqlCheckBody {
    /// The response path of the field that needs the permission, aliases as written.
    pub path: String,
    /// The catalog entry that asked: `Query.project`, `Project.issues` or a type (`Issue`).
    pub element: String,
    /// `null` for a root field no permission of the catalog covers (`unknown_route`).
    pub permission: Option<String>,
    pub boundary: Option<CheckedBoundary>,
    pub allowed: bool,
    pub reason: String,
    pub message: String,
}

/// The decision on the whole operation, as `/v1/authorize` answers one, and each check.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct GraphqlResponse {
    /// `allowed` when every check is; `reason` that of the first check denied, in the
    /// order of the query; `required_permissions` every permission needed, each once.
    #[serde(flatten)]
    pub decision: AuthorizeResponse,
    pub checks: Vec<GraphqlCheckBody>,
}

impl From<GraphqlOutcome> for GraphqlResponse {
    fn from(o: GraphqlOutcome) -> Self {
        let checks = o
            .checks
            .into_iter()
            .map(|c| GraphqlCheckBody {
                path: c.need.path,
                element: c.need.element,
                permission: c.permission,
                boundary: checked(c.need.boundary),
                allowed: c.outcome.allowed,
                reason: c.outcome.reason.as_str().to_owned(),
                message: c.outcome.message,
            })
            .collect();
        Self {
            decision: o.outcome.into(),
            checks,
        }
    }
}

fn checked(boundary: Boundary) -> Option<CheckedBoundary> {
    let (kind, id, path) = match boundary {
        Boundary::ProjectId(id) => (BoundaryKind::Project, Some(id), None),
        Boundary::ProjectPath(path) => (BoundaryKind::Project, None, Some(path)),
        Boundary::GroupId(id) => (BoundaryKind::Group, Some(id), None),
        Boundary::GroupPath(path) => (BoundaryKind::Group, None, Some(path)),
        Boundary::User => (BoundaryKind::User, None, None),
        Boundary::Instance => (BoundaryKind::Instance, None, None),
        Boundary::Unresolved(_) => return None,
    };
    Some(CheckedBoundary { kind, id, path })
}

impl From<PlanError> for ApiError {
    fn from(e: PlanError) -> Self {
        ApiError::bad_request(e.field(), e.to_string())
    }
}

/// May this token run this GraphQL operation? Every field that needs a permission is a
/// check; the operation is allowed only when all of them are.
#[utoipa::path(post, path = "/v1/authorize/graphql", tag = "decisions",
    request_body = GraphqlRequest,
    responses((status = 200, description = "The decision, with each check it needed", body = GraphqlResponse),
        (status = 400, description = "Not a GraphQL request patrol decides (the field and the problem are named)", body = super::ErrorBody),
        (status = 401), (status = 503, body = super::ErrorBody)),
    security(("service_key" = [])))]
pub async fn authorize_graphql(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<GraphqlRequest>,
) -> Result<Json<GraphqlResponse>, ApiError> {
    let client_ip = match request.client_ip {
        Some(ip) => Some(ip.parse().map_err(|_| {
            ApiError::bad_request("client_ip", format!("must be an IP address, not `{ip}`"))
        })?),
        None => None,
    };
    let variables = request.variables.unwrap_or_default();
    let needs = state.service.graphql_needs(
        &request.query,
        request.operation_name.as_deref(),
        &variables,
    )?;
    let mut token = request.token;
    if token.len() > MAX_TOKEN_LEN {
        // Not a token; it will be `token_invalid` without being read.
        token.clear();
    }
    let outcome = state
        .service
        .authorize_graphql(token, client_ip, needs)
        .await?;
    Ok(Json(outcome.into()))
}
