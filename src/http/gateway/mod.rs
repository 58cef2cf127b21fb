//! The gateway check (DESIGN.md section 5) for nginx `auth_request`, Traefik
//! ForwardAuth and Envoy ext_authz (HTTP service): the original request's token, method
//! and URI in, a status a proxy acts on out. [`read`] reads the request exactly as
//! GitLab will; this module decides and answers.
//!
//! | decision | status |
//! |---|---|
//! | allowed, or a route the catalog skips (except `deprecated`) | 200, `X-Patrol-User-Id`, `X-Patrol-Token-Id`, `X-Patrol-Route`, `X-Patrol-Boundary` |
//! | an original request that cannot be read as GitLab reads it | 400 |
//! | no token, two credentials, `token_invalid`, `token_revoked`, `token_expired` | 401, `WWW-Authenticate` |
//! | `boundary_not_found`, or a boundary the user may not see (the same answer) | 404 |
//! | a removed route | 404 |
//! | any other denial | 403, `X-Accepted-Permissions` |
//!
//! Every answer carries `X-Patrol-Reason`. A store that cannot answer is a 503, which a
//! proxy treats as an error and denies. [`grpc`] serves the same decisions to Envoy's
//! gRPC ext_authz.

pub mod graphql;
pub mod grpc;
pub mod read;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use serde::Serialize;
use utoipa::ToSchema;

use super::{ApiError, AppState};
use crate::catalog::RouteKind;
use crate::config::Gateway;
use crate::engine::Reason;
use crate::service::{Check, CheckAction, Outcome};

pub use read::PREFIX;

pub fn router() -> Router<AppState> {
    Router::new()
        .route(PREFIX, any(check))
        .route("/v1/gateway/check/{*original}", any(check))
}

/// The body of every gateway answer; proxies act on the status and headers alone.
#[derive(Debug, Serialize, ToSchema)]
pub struct GatewayAnswer {
    pub allowed: bool,
    /// `granted`, `skipped_route`, or the reason of the denial (DESIGN.md section 5).
    pub reason: String,
    pub message: String,
}

/// A 401 from the gateway check: the decision on the end user's token (with
/// `WWW-Authenticate`), or the service-key check in front of it.
#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
#[expect(
    dead_code,
    reason = "only describes a 401's two bodies in the OpenAPI document"
)]
pub(crate) enum GatewayUnauthorized {
    /// No token, or one that is invalid, revoked or expired.
    Decision(GatewayAnswer),
    /// No valid `X-Patrol-Key`.
    ServiceKey(super::ErrorBody),
}

/// Decides on the original request a proxy forwards, read as GitLab will read it: the
/// method and URI from `X-Original-Method`/`X-Original-URI` (nginx),
/// `X-Forwarded-Method`/`X-Forwarded-Uri` (Traefik), or this request's own method and
/// the path after `/v1/gateway/check` (Envoy), one convention per request (pinned by
/// `PATROL_GATEWAY`); the token from the place GitLab takes it from (the
/// `private_token` parameter, `PRIVATE-TOKEN`, `access_token`, `Authorization: Bearer`,
/// `bearer_token`, then `job_token`, `token`, `JOB-TOKEN`), and a request that may
/// carry two credentials is refused; the client address from `X-Real-IP` (nginx) or the
/// last `X-Forwarded-For` (Traefik, Envoy).
#[utoipa::path(get, path = "/v1/gateway/check", tag = "decisions",
    params(
        ("X-Original-Method" = Option<String>, Header), ("X-Original-URI" = Option<String>, Header),
        ("X-Forwarded-Method" = Option<String>, Header), ("X-Forwarded-Uri" = Option<String>, Header),
        ("PRIVATE-TOKEN" = Option<String>, Header), ("JOB-TOKEN" = Option<String>, Header),
    ),
    responses(
        (status = 200, body = GatewayAnswer, headers(("X-Patrol-User-Id" = u64), ("X-Patrol-Token-Id" = u64),
            ("X-Patrol-Route" = String), ("X-Patrol-Boundary" = String))),
        (status = 400, body = super::ErrorBody),
        (status = 401, body = GatewayUnauthorized, headers(("WWW-Authenticate" = String))),
        (status = 403, body = GatewayAnswer, headers(("X-Accepted-Permissions" = String))),
        (status = 404, body = GatewayAnswer),
        (status = 503, body = super::ErrorBody)),
    security(("service_key" = [])))]
pub async fn check(
    State(state): State<AppState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    decide_original(&state, state.gateway, &method, &uri, &headers, &body).await
}

/// The gateway check's decision on a request asked about by `gateway`'s convention,
/// as the answer a proxy acts on (the HTTP check sends it as it is; the gRPC check
/// carries its status, headers and body in a `CheckResponse`).
pub(crate) async fn decide_original(
    state: &AppState,
    gateway: Gateway,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let original = read::original(gateway, method, uri, headers)
        .map_err(|e| ApiError::bad_request(e.field, e.message))?;
    if original.path.as_str() == graphql::PATH {
        let method = original.methods.first().map_or("", String::as_str);
        let method = Method::from_bytes(method.as_bytes()).map_err(|_| ApiError::Internal)?;
        return decide_graphql(state, &method, &original, headers, body).await;
    }
    let catalog = state.service.catalog();

    // The route of each method the request may run as; those the catalog skips need no
    // token (the upstream authenticates them itself, or they are public), and removed
    // ones answer as GitLab does: 404.
    let mut routes: Vec<String> = Vec::new();
    let mut protected: Vec<&str> = Vec::new();
    let mut removed = false;
    for m in &original.methods {
        let Some(found) = catalog.routes.resolve(m, &original.path) else {
            continue;
        };
        routes.push(format!("{} {}", found.entry.method, found.entry.path));
        match found.entry.kind {
            RouteKind::Skipped { reason } => removed |= reason == "deprecated",
            RouteKind::Protected { .. } => protected.push(m),
        }
    }
    if removed {
        return Ok(answer(
            StatusCode::NOT_FOUND,
            "unknown_route",
            "the route was removed from the API",
        ));
    }
    if protected.is_empty() && !routes.is_empty() {
        let mut response = answer(
            StatusCode::OK,
            "skipped_route",
            "the route needs no permission",
        );
        set_list(&mut response, "x-patrol-route", &routes);
        return Ok(response);
    }
    // No route at all: decided on the request line's method, which says `unknown_route`.
    if protected.is_empty() {
        protected.extend(original.methods.first().map(String::as_str));
    }

    let token = match token_of(state, &original.params, headers) {
        Ok(token) => token,
        Err(why) => return Ok(unauthorized(Reason::TokenInvalid.as_str(), &why)),
    };
    let checks: Vec<Check> = protected
        .iter()
        .map(|m| Check {
            token: token.clone(),
            action: CheckAction::Route {
                method: (*m).to_owned(),
                path: original.path.clone(),
            },
            boundary: None,
            confidential: false,
            author_id: None,
            assignee_ids: Vec::new(),
            client_ip: original.client_ip,
        })
        .collect();
    let outcomes = state.service.authorize(&checks).await?;
    // The first denial is the answer; an allow needs every method allowed.
    match outcomes.iter().position(|o| !o.allowed) {
        Some(denied) => Ok(deny(&outcomes[denied])),
        None => {
            let first = outcomes.first().ok_or(ApiError::Internal)?;
            let mut response = allow(first);
            set_list(&mut response, "x-patrol-route", &routes);
            set_boundaries(&mut response, outcomes.iter());
            Ok(response)
        }
    }
}

/// A GraphQL request: every operation decided, and allowed only when each is.
async fn decide_graphql(
    state: &AppState,
    method: &Method,
    original: &read::Original,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Response, ApiError> {
    let request = graphql::read(method, original, headers, body)
        .map_err(|e| ApiError::bad_request(e.field, e.message))?;
    let mut params = original.params.clone();
    params.extend(request.body_params);
    let token = match token_of(state, &params, headers) {
        Ok(token) => token,
        Err(why) => return Ok(unauthorized(Reason::TokenInvalid.as_str(), &why)),
    };
    let mut needs = Vec::new();
    for (i, op) in request.operations.iter().enumerate() {
        let planned = state
            .service
            .graphql_needs(&op.query, op.operation_name.as_deref(), &op.variables)
            .map_err(|e| {
                let at = if request.operations.len() > 1 {
                    format!("in operation {i}: ")
                } else {
                    String::new()
                };
                ApiError::bad_request(e.field(), format!("{at}{e}"))
            })?;
        needs.extend(planned);
    }
    let decided = state
        .service
        .authorize_graphql(token, original.client_ip, needs)
        .await?;
    if !decided.outcome.allowed {
        return Ok(deny(&decided.outcome));
    }
    let mut response = allow(&decided.outcome);
    set_list(
        &mut response,
        "x-patrol-route",
        &[format!("{method} {}", graphql::PATH)],
    );
    set_boundaries(&mut response, decided.checks.iter().map(|c| &c.outcome));
    Ok(response)
}

/// The credential GitLab will authenticate the request with, or why there is none
/// patrol can decide on (the message of a 401).
fn token_of(
    state: &AppState,
    params: &[(String, String)],
    headers: &HeaderMap,
) -> Result<String, String> {
    match read::credential(params, headers, &state.service.prefixes().job) {
        Ok(Some(token)) => Ok(token.to_owned()),
        Ok(None) => Err("a token is required".to_owned()),
        Err(e) => Err(e.to_string()),
    }
}

/// `X-Patrol-Boundary`: every boundary decided, each once, in order.
fn set_boundaries<'o>(response: &mut Response, outcomes: impl Iterator<Item = &'o Outcome>) {
    let mut boundaries: Vec<String> = Vec::new();
    for b in outcomes.filter_map(|o| o.boundary.clone()) {
        if !boundaries.contains(&b) {
            boundaries.push(b);
        }
    }
    set_list(response, "x-patrol-boundary", &boundaries);
}

/// `name: a, b` on a response; values are the catalog's and patrol's own, never input.
fn set_list(response: &mut Response, name: &'static str, values: &[String]) {
    if values.is_empty() {
        return;
    }
    if let Ok(value) = HeaderValue::from_str(&values.join(", ")) {
        response.headers_mut().insert(name, value);
    }
}

fn allow(outcome: &Outcome) -> Response {
    let mut response = answer(StatusCode::OK, outcome.reason.as_str(), &outcome.message);
    let headers = response.headers_mut();
    for (name, value) in [
        ("x-patrol-user-id", outcome.user_id),
        ("x-patrol-token-id", outcome.token_id),
    ] {
        if let Some(value) = value {
            headers.insert(name, HeaderValue::from(value));
        }
    }
    response
}

fn unauthorized(reason: &str, message: &str) -> Response {
    let mut response = answer(StatusCode::UNAUTHORIZED, reason, message);
    response.headers_mut().insert(
        "www-authenticate",
        HeaderValue::from_static(
            "Bearer realm=\"patrol\", error=\"invalid_token\", error_description=\"Token is expired, revoked or invalid\"",
        ),
    );
    response
}

/// What a proxy is told of a denial. A boundary that does not exist and one the user
/// may not see get the same answer, byte for byte: the client learns nothing of what
/// exists (`/v1/authorize`, asked by services, keeps the precise reason).
fn deny(outcome: &Outcome) -> Response {
    let reason = outcome.reason.as_str();
    match outcome.reason {
        Reason::TokenInvalid | Reason::TokenRevoked | Reason::TokenExpired => {
            unauthorized(reason, &outcome.message)
        }
        _ if outcome.hidden => answer(
            StatusCode::NOT_FOUND,
            Reason::BoundaryNotFound.as_str(),
            "not found",
        ),
        _ => {
            let mut response = answer(StatusCode::FORBIDDEN, reason, &outcome.message);
            if let Ok(value) = HeaderValue::from_str(&outcome.required_permissions.join(", ")) {
                response
                    .headers_mut()
                    .insert("x-accepted-permissions", value);
            }
            response
        }
    }
}

fn answer(status: StatusCode, reason: &str, message: &str) -> Response {
    let mut response = (
        status,
        Json(GatewayAnswer {
            allowed: status == StatusCode::OK,
            reason: reason.to_owned(),
            message: message.to_owned(),
        }),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(reason) {
        response.headers_mut().insert("x-patrol-reason", value);
    }
    response
}
