//! Decisions over HTTP (DESIGN.md section 5). The decision is data: a deny is a 200 with
//! `allowed: false` and its reason. A malformed request is a 400 naming the field; a
//! store that cannot answer is a 503, never an allow.

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::post;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::extract::ApiJson;
use super::{ApiError, AppState};
use crate::catalog::RoutePath;
use crate::domain::BoundaryKind;
use crate::service::{Check, CheckAction, CheckBoundary, Outcome};

/// The most checks one batch may carry.
pub const MAX_BATCH: usize = 1000;
/// Longer strings cannot be tokens; they are not even looked at.
pub(super) const MAX_TOKEN_LEN: usize = 256;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/authorize", post(authorize))
        .route("/v1/authorize/batch", post(batch))
}

/// One check: a token, a permission (with a boundary) or a route, and optional
/// attributes of the resource and the client.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AuthorizeRequest {
    /// The end user's token, as presented.
    pub token: String,
    /// A catalog permission; give this or `route`.
    #[serde(default)]
    pub permission: Option<String>,
    /// A REST route, resolved through the catalog; give this or `permission`.
    #[serde(default)]
    pub route: Option<RouteBody>,
    /// Required with `permission`.
    #[serde(default)]
    pub boundary: Option<BoundaryBody>,
    #[serde(default)]
    pub resource: Option<ResourceBody>,
    /// The end user's address, checked against the token's `allowed_ips`.
    #[serde(default)]
    pub client_ip: Option<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteBody {
    #[schema(pattern = "^[A-Za-z]+$")]
    pub method: String,
    /// The request path as the application received it (`/api/v4/projects/acme%2Fapp`),
    /// read as GitLab's router reads it; the query string is ignored.
    #[schema(pattern = "^/")]
    pub path: String,
}

/// `{"type":"project","id":42}`, `{"type":"project","path":"acme/app"}`, the same for
/// groups, `{"type":"user"}` (the token's user) or `{"type":"instance"}`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BoundaryBody {
    #[serde(rename = "type")]
    pub kind: BoundaryKind,
    #[serde(default)]
    pub id: Option<u64>,
    #[serde(default)]
    pub path: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResourceBody {
    #[serde(default)]
    pub confidential: bool,
    #[serde(default)]
    pub author_id: Option<u64>,
    #[serde(default)]
    pub assignee_ids: Vec<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AuthorizeResponse {
    pub allowed: bool,
    /// `granted`, or the first reason to deny, in the order of DESIGN.md section 5.
    pub reason: String,
    pub required_permissions: Vec<String>,
    pub token_id: Option<u64>,
    pub user_id: Option<u64>,
    pub message: String,
}

impl From<Outcome> for AuthorizeResponse {
    fn from(o: Outcome) -> Self {
        Self {
            allowed: o.allowed,
            reason: o.reason.as_str().to_owned(),
            required_permissions: o.required_permissions,
            token_id: o.token_id,
            user_id: o.user_id,
            message: o.message,
        }
    }
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    /// Up to 1,000 checks.
    pub checks: Vec<AuthorizeRequest>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct BatchResponse {
    /// One answer per check, in order.
    pub results: Vec<AuthorizeResponse>,
}

impl AuthorizeRequest {
    /// The check this request asks for; the error names the field at fault.
    pub fn check(self) -> Result<Check, ApiError> {
        let action = match (self.permission, self.route) {
            (Some(permission), None) => CheckAction::Permission(permission),
            (None, Some(route)) => {
                if route.method.is_empty() || !route.method.bytes().all(|b| b.is_ascii_alphabetic())
                {
                    return Err(ApiError::bad_request(
                        "route.method",
                        "must be an HTTP method like `GET`",
                    ));
                }
                // The query string plays no part in routing.
                let path = route
                    .path
                    .split_once('?')
                    .map_or(route.path.as_str(), |(p, _)| p);
                let path = RoutePath::parse(path)
                    .map_err(|e| ApiError::bad_request("route.path", e.to_string()))?;
                CheckAction::Route {
                    method: route.method.to_ascii_uppercase(),
                    path,
                }
            }
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_request(
                    "route",
                    "cannot be given with `permission`",
                ));
            }
            (None, None) => {
                return Err(ApiError::bad_request(
                    "permission",
                    "or `route` is required",
                ));
            }
        };
        let boundary = match self.boundary {
            Some(b) => Some(boundary(b)?),
            None if matches!(action, CheckAction::Permission(_)) => {
                return Err(ApiError::bad_request(
                    "boundary",
                    "is required with `permission`",
                ));
            }
            None => None,
        };
        let client_ip = match self.client_ip {
            Some(ip) => Some(ip.parse().map_err(|_| {
                ApiError::bad_request("client_ip", format!("must be an IP address, not `{ip}`"))
            })?),
            None => None,
        };
        let resource = self.resource.unwrap_or_default();
        let mut token = self.token;
        if token.len() > MAX_TOKEN_LEN {
            // Not a token; it will be `token_invalid` without being read.
            token.clear();
        }
        Ok(Check {
            token,
            action,
            boundary,
            confidential: resource.confidential,
            author_id: resource.author_id,
            assignee_ids: resource.assignee_ids,
            client_ip,
        })
    }
}

fn boundary(b: BoundaryBody) -> Result<CheckBoundary, ApiError> {
    let one_of = || {
        ApiError::bad_request(
            "boundary.id",
            format!(
                "or `boundary.path` (exactly one) is required for a `{}` boundary",
                b.kind
            ),
        )
    };
    match b.kind {
        BoundaryKind::Project | BoundaryKind::Group => {
            let is_project = b.kind == BoundaryKind::Project;
            match (b.id, b.path.clone()) {
                (Some(id), None) if is_project => Ok(CheckBoundary::ProjectId(id)),
                (Some(id), None) => Ok(CheckBoundary::GroupId(id)),
                (None, Some(path)) if is_project => Ok(CheckBoundary::ProjectPath(path)),
                (None, Some(path)) => Ok(CheckBoundary::GroupPath(path)),
                _ => Err(one_of()),
            }
        }
        BoundaryKind::User | BoundaryKind::Instance => {
            if b.id.is_some() || b.path.is_some() {
                return Err(ApiError::bad_request(
                    "boundary.id",
                    format!(
                        "and `boundary.path` are not taken by a `{}` boundary",
                        b.kind
                    ),
                ));
            }
            Ok(if b.kind == BoundaryKind::User {
                CheckBoundary::User
            } else {
                CheckBoundary::Instance
            })
        }
    }
}

/// May this token do this? Answers from memory; a token seen before costs no store or
/// argon2 work.
#[utoipa::path(post, path = "/v1/authorize", tag = "decisions",
    request_body = AuthorizeRequest,
    responses((status = 200, description = "The decision (allowed or denied, with its reason)", body = AuthorizeResponse),
        (status = 400, body = super::ErrorBody), (status = 401), (status = 503, body = super::ErrorBody)),
    security(("service_key" = [])))]
pub async fn authorize(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<AuthorizeRequest>,
) -> Result<Json<AuthorizeResponse>, ApiError> {
    let check = request.check()?;
    let outcome = state
        .service
        .authorize(std::slice::from_ref(&check))
        .await?
        .into_iter()
        .next()
        .ok_or(ApiError::Internal)?;
    Ok(Json(outcome.into()))
}

/// Up to 1,000 checks, answered in order.
#[utoipa::path(post, path = "/v1/authorize/batch", tag = "decisions",
    request_body = BatchRequest,
    responses((status = 200, body = BatchResponse), (status = 400, body = super::ErrorBody),
        (status = 401), (status = 503, body = super::ErrorBody)),
    security(("service_key" = [])))]
pub async fn batch(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<BatchRequest>,
) -> Result<Json<BatchResponse>, ApiError> {
    if request.checks.len() > MAX_BATCH {
        return Err(ApiError::bad_request(
            "checks",
            format!(
                "may hold at most {MAX_BATCH} checks, not {}",
                request.checks.len()
            ),
        ));
    }
    let checks = request
        .checks
        .into_iter()
        .enumerate()
        .map(|(i, r)| {
            r.check().map_err(|e| match e {
                ApiError::BadRequest { field, message } => ApiError::BadRequest {
                    field: Some(format!("checks[{i}].{}", field.unwrap_or_default())),
                    message: format!("in `checks[{i}]`: {message}"),
                },
                other => other,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let results = state
        .service
        .authorize(&checks)
        .await?
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(Json(BatchResponse { results }))
}
